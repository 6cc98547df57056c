"""Bar feeds: turn user data into a validated :class:`~mlbacktest.data.panel.BarPanel`.

A feed reads *long-format* data -- one row per (timestamp, asset) with the
columns ``timestamp``, ``asset``, ``open``, ``high``, ``low``, ``close``,
``volume`` and any number of numeric signal columns -- validates it, sorts it
stably by (timestamp, asset id) and stores it as read-only numpy columns.
All of this happens in the constructor, so bad data fails before a run
starts. See :mod:`mlbacktest.data.validate` for the checks.

Time zones
----------
``BarPanel.ts`` holds int64 nanoseconds since the Unix epoch. For
time-zone-aware input these are UTC instants and ``tz`` names the input's
zone (use it to display local times); for naive input they are the wall-clock
values as given and ``tz`` is ``None``. ISO-8601 strings that all carry a UTC
offset give ``tz == "UTC"``. Dates are read as naive midnight.
"""

from __future__ import annotations

import functools
import operator
import os
import re
import textwrap
from collections.abc import Callable, Iterable, Sequence
from typing import Any, TypeVar

import numpy as np
import polars as pl

from mlbacktest.data.files import FileSet, file_format, resolve_path, scan_frame, warn_absent
from mlbacktest.data.frames import (
    ROW,
    FrameLike,
    TimeLike,
    as_lazyframe,
    attach_signals,
    build_panel,
    check_delay_columns,
    check_layout,
    collect_frame,
    collect_schema,
    distinct_timestamps,
    plan_signals,
    signal_rows,
)
from mlbacktest.data.panel import BAR_FIELDS, BarPanel
from mlbacktest.data.signals import SignalTiming
from mlbacktest.data.streaming import Stream, time_predicates
from mlbacktest.errors import DataError

__all__ = ["DataFeed", "PolarsDataFeed", "ParquetDataFeed", "FrameLike", "TimeLike", "open_feed"]


#: The "Parameters" entries :class:`PolarsDataFeed` and :class:`ParquetDataFeed` share, written
#: once; :func:`_with_common_parameters` puts them in place of ``{common_parameters}`` in each
#: class docstring, filling ``{signals_type}`` and ``{signals_intro}`` for the class.
_COMMON_PARAMETERS = """\
timestamp_column : str, default: ``"timestamp"``
    ``Datetime`` (any unit and time zone), ``Date`` (midnight) or
    ISO-8601 strings (all with a UTC offset, or all without).
asset_column : str, default: ``"asset"``
    Asset names: strings, categoricals or integers (converted to str).
signals : {signals_type}, optional
{signals_intro}
    It holds one row per (timestamp, asset) prediction, with the same
    `timestamp_column` and `asset_column` as the prices, the signal columns
    and optionally `available_at_column`. Its timestamps need not match the
    bars': each bar shows the newest row of its asset visible at the bar's
    timestamp (as-of, backward; see ``docs/signals.md``), NaN before the
    first. Every row is validated: duplicates of (timestamp, asset), an
    asset absent from the prices, an ``available_at`` earlier than the
    timestamp, or a time zone other than the prices' is a ``DataError``
    naming the row (0-based, in the frame as given), asset and timestamp.
available_at_column : str, optional
    Column holding when each signal row was published: the row becomes
    visible at ``max(timestamp, available_at)``. It belongs to the
    signal frame when `signals` is given, to the price frame otherwise.
signal_delay : int, str, datetime.timedelta or numpy.timedelta64, optional
    Push visibility back further. An ``int`` *n* shows at each bar what
    the asset's *n*-th earlier bar would have shown; a duration (such as
    ``"1d"``, ``"30m"``) is added to each row's publication time.
embargo : str, datetime.timedelta or numpy.timedelta64, optional
    A signal row is never visible before ``timestamp + embargo``. Unlike
    a duration `signal_delay`, it does not add to ``available_at``: a
    row published later than ``timestamp + embargo`` is unaffected.
delay_columns : sequence of str, optional
    Signal columns that `signal_delay` and `embargo` apply to (default:
    all). Leave out columns that are not predictions, such as bid/ask
    quotes read by a slippage model.
"""

_COMMON_PLACEHOLDER = re.compile(r"^( *)\{common_parameters\}\n", re.M)

_T = TypeVar("_T", bound=type)


def _with_common_parameters(signals_type: str, signals_intro: str) -> Callable[[_T], _T]:
    """Write :data:`_COMMON_PARAMETERS` into a class docstring, at ``{common_parameters}``.

    Parameters
    ----------
    signals_type : str
        The type line of the class's `signals` parameter (before ``, optional``).
    signals_intro : str
        The first sentence of its description (what `signals` may be).

    Returns
    -------
    callable
        A class decorator; the class's docstring must hold the placeholder on
        a line of its own (indented like the entries around it).
    """

    def put(cls: _T) -> _T:
        doc = cls.__doc__
        if doc is None:  # docstrings stripped (python -OO)
            return cls
        found = _COMMON_PLACEHOLDER.search(doc)
        if found is None:
            raise ValueError(f"the docstring of {cls.__name__} has no {{common_parameters}} line")
        intro = textwrap.fill(signals_intro, 76, initial_indent="    ", subsequent_indent="    ")
        text = _COMMON_PARAMETERS.format(signals_type=signals_type, signals_intro=intro)
        cls.__doc__ = doc[: found.start()] + textwrap.indent(text, found.group(1)) + doc[
            found.end():]
        return cls

    return put


# --------------------------------------------------------------------------- #
# Base class
# --------------------------------------------------------------------------- #
class DataFeed:
    """A validated bar feed, ready for the engine.

    Subclasses build the :class:`~mlbacktest.data.panel.BarPanel` from some
    source; this base class can also wrap a panel built by other means.

    Parameters
    ----------
    panel : BarPanel
        The bars. Its array layout (dtypes, shapes, C order) is checked; its
        values are trusted, so build panels with :class:`PolarsDataFeed` or
        :class:`ParquetDataFeed` unless they are already validated.

    Attributes
    ----------
    panel : BarPanel
        Validated bars sorted by (timestamp, asset id), read-only arrays.
    """

    panel: BarPanel
    #: Parsed ``signal_delay`` / ``embargo`` the panel's signals were aligned with.
    signal_timing: SignalTiming = SignalTiming()
    #: Whether the feed reads its bars chunk by chunk during the run (no ``panel``).
    streaming: bool = False

    def __init__(self, panel: BarPanel) -> None:
        check_layout(panel)
        self.panel = panel

    def calendar(self) -> np.ndarray:
        """Every distinct timestamp of the feed (int64 ns), ascending."""
        return distinct_timestamps(self.panel.ts)

    def window_edges(self) -> list[tuple[int, int]]:
        """The time windows ``[lo, hi)`` (ns) the feed is read in; one for an in-memory feed."""
        ts = self.panel.ts
        return [(int(ts[0]), int(ts[-1]) + 1)] if ts.size else []

    def window(self, lo: int, hi: int) -> BarPanel:
        """The feed's bars with ``lo <= timestamp < hi`` (int64 ns), as a panel.

        Asset ids index :attr:`asset_names` (the whole feed's assets).
        """
        p = self.panel
        a, b = (int(i) for i in np.searchsorted(p.ts, [lo, hi], side="left"))
        if a == 0 and b == len(p):
            return p
        return BarPanel(
            ts=p.ts[a:b], asset=p.asset[a:b],
            **{f: getattr(p, f)[a:b] for f in BAR_FIELDS},
            signals=p.signals[a:b], signal_names=p.signal_names, asset_names=p.asset_names,
            tz=p.tz, source_row=p.source_row[a:b],
        )

    @property
    def signal_names(self) -> tuple[str, ...]:
        """Names of the signal columns, in the column order of ``panel.signals``."""
        return self.panel.signal_names

    @property
    def asset_names(self) -> tuple[str, ...]:
        """Sorted asset names; an asset's id is its index here."""
        return self.panel.asset_names

    @property
    def tz(self) -> str | None:
        """Time zone of the timestamps, or ``None`` for naive (wall-clock) timestamps."""
        return self.panel.tz

    def __len__(self) -> int:
        return len(self.panel)

    def __repr__(self) -> str:
        p = self.panel
        return (
            f"{type(self).__name__}(rows={len(p)}, assets={p.n_assets}, "
            f"signals={list(p.signal_names)}, tz={p.tz!r})"
        )

    def to_polars(self) -> pl.DataFrame:
        """Return the bars as a polars DataFrame, in panel order.

        Returns
        -------
        polars.DataFrame
            Columns ``timestamp`` (``Datetime("ns", tz)``), ``asset`` (str),
            the bar fields, the signals and ``source_row``.
        """
        p = self.panel
        ts = pl.Series("timestamp", p.ts, dtype=pl.Int64).cast(pl.Datetime("ns"))
        if p.tz is not None:
            ts = ts.dt.replace_time_zone("UTC").dt.convert_time_zone(p.tz)
        names = pl.Series(p.asset_names, dtype=pl.String)
        cols = [ts, names.gather(p.asset).alias("asset")]
        cols += [pl.Series(f, getattr(p, f)) for f in BAR_FIELDS]
        cols += [pl.Series(s, p.signals[:, j]) for j, s in enumerate(p.signal_names)]
        cols.append(pl.Series("source_row", p.source_row))
        return pl.DataFrame(cols)



# --------------------------------------------------------------------------- #
# Feeds
# --------------------------------------------------------------------------- #
@_with_common_parameters(
    signals_type="polars.DataFrame, polars.LazyFrame, dict of columns or pandas.DataFrame",
    signals_intro="A separate signal frame.",
)
class PolarsDataFeed(DataFeed):
    """Bars from an in-memory frame in long format.

    Parameters
    ----------
    data : polars.DataFrame, polars.LazyFrame, dict of columns or pandas.DataFrame
        One row per (timestamp, asset) with the columns `timestamp_column`,
        `asset_column`, ``open``, ``high``, ``low``, ``close``, ``volume`` and
        the signal columns. Rows may come in any order. A pandas frame is
        converted through polars (``pyarrow`` is needed for that).
    signal_columns : sequence of str, optional
        Numeric columns to carry as signals, in this order. By default every
        column that is not a key or bar column; a non-numeric such column is
        then an error (pass `signal_columns` to leave it out).
    {common_parameters}

    Attributes
    ----------
    panel : BarPanel
        The validated bars; ``panel.signals`` holds the value each bar
        shows, point in time.
    signal_timing : SignalTiming
        The parsed `signal_delay` and `embargo`.

    Raises
    ------
    DataError
        The data fails validation (see :mod:`mlbacktest.data.validate` and
        :mod:`mlbacktest.data.signals`).
    ConfigError
        A bad `signal_delay` or `embargo`.

    Notes
    -----
    Integer price and volume columns are cast to float64. Nulls in signal
    columns become NaN, which means "no prediction for this bar". Nothing
    else is filled, dropped or clipped. ``panel.source_row`` is the 0-based
    row of each bar in `data` as given.

    Signal columns are taken from the price frame and, with `signals`, from
    the signal frame: by default every non-key column of both, price
    columns first; with `signal_columns`, the names given, in that order.
    A signal name that is a column of both frames is an error.

    Examples
    --------
    >>> import polars as pl
    >>> from datetime import date
    >>> feed = PolarsDataFeed(
    ...     pl.DataFrame({
    ...         "timestamp": [date(2024, 1, 2), date(2024, 1, 2)],
    ...         "asset": ["MSFT", "AAPL"],
    ...         "open": [370.0, 187.0], "high": [371.0, 188.0],
    ...         "low": [369.0, 186.0], "close": [370.5, 187.5],
    ...         "volume": [1e6, 2e6], "pred": [0.1, None],
    ...     })
    ... )
    >>> feed.asset_names, feed.panel.asset.tolist(), feed.panel.source_row.tolist()
    (('AAPL', 'MSFT'), [0, 1], [1, 0])
    """

    def __init__(
        self,
        data: FrameLike,
        signal_columns: Sequence[str] | None = None,
        *,
        timestamp_column: str = "timestamp",
        asset_column: str = "asset",
        signals: FrameLike | None = None,
        available_at_column: str | None = None,
        signal_delay: int | str | Any | None = None,
        embargo: str | Any | None = None,
        delay_columns: Sequence[str] | None = None,
    ) -> None:
        timing = SignalTiming.from_args(signal_delay, embargo)
        avail = (available_at_column,) if available_at_column is not None else ()
        lf = as_lazyframe(
            data, timestamp_column, asset_column, () if signals is not None else avail
        )
        sig_lf = None
        if signals is not None:
            sig_lf = as_lazyframe(signals, timestamp_column, asset_column, avail)
        plan = plan_signals(
            collect_schema(lf),
            None if sig_lf is None else collect_schema(sig_lf),
            timestamp_column,
            asset_column,
            signal_columns,
            available_at_column,
        )
        delayed = check_delay_columns(delay_columns, plan.names)
        price_avail = (plan.price_available_at,) if plan.price_available_at is not None else ()
        lf = lf.with_row_index(ROW).select(
            [ROW, timestamp_column, asset_column, *BAR_FIELDS, *plan.price_columns, *price_avail]
        )
        panel, avail_ns = build_panel(
            collect_frame(lf),
            timestamp_column,
            asset_column,
            plan.price_columns,
            available_at_column=plan.price_available_at,
        )
        rows = None
        if sig_lf is not None:
            sig_lf = sig_lf.with_row_index(ROW).select(
                [ROW, timestamp_column, asset_column, *avail, *plan.frame_columns]
            )
            rows = signal_rows(
                collect_frame(sig_lf, "signal frame: "),
                panel,
                timestamp_column,
                asset_column,
                plan,
                available_at_column,
            )
        self.signal_timing = timing
        super().__init__(attach_signals(panel, avail_ns, rows, plan, timing, delayed))


@_with_common_parameters(
    signals_type="frame or str or path-like",
    signals_intro="A separate signal frame, or the path of Parquet file(s) holding one (a file, "
    "a directory or a glob, read lazily).",
)
class ParquetDataFeed(DataFeed):
    """Bars from Parquet files, read lazily with filter and column pushdown.

    Parameters
    ----------
    path : str or path-like or sequence of them
        A file, a directory (every file below it is read; hive partitions
        such as ``asset=AAPL/`` become columns) or a glob such as
        ``"bars/*.parquet"``.
    signal_columns : sequence of str, optional
        Signal columns to read; by default every non-key, non-bar column.
        Only the key, bar and signal columns are read from disk.
    start, end : datetime, date, str or numpy.datetime64, optional
        Inclusive time bounds. A naive bound is wall-clock time in the data's
        time zone; an aware bound is an instant (and is an error for naive
        data). For ``Datetime`` and ``Date`` columns the bounds are pushed
        into the scan (row groups outside them are skipped); string
        timestamps are filtered after parsing.
    assets : sequence of str, optional
        Only read these assets (pushed into the scan). A requested asset
        that has no rows gives a ``UserWarning``.
    {common_parameters}
    chunk : str or datetime.timedelta, optional
        Stream the bars instead of loading them: the run reads one time
        window of this length at a time (``"1d"``, ``"1w"``, ``"6h"``, or
        ``"all"`` for one window), so memory is bounded by the window, not
        by the study. Windows start at multiples of the length since the
        epoch. The constructor still reads every window once to validate the
        whole study (so bad data fails before the run) and to learn its
        assets and timestamps, holding one window at a time; the run then
        reads each window again. Results do not depend on the chunk size.
        Needs a ``Datetime`` or ``Date`` timestamp column; files sorted (or
        partitioned) by time read fastest, since each window skips the row
        groups outside it. A separate `signals` frame is held in memory.
        `signal_delay` and `embargo` work as in memory: the rows a delayed
        signal still needs are carried from window to window (bounded by
        the delay). An `available_at_column` on the price frame is refused
        (a row could become visible any number of windows later: pass the
        predictions as a `signals` frame). See ``docs/streaming.md``.

    Attributes
    ----------
    panel : BarPanel
        The validated bars. ``source_row`` is the row in the scanned data
        (all files concatenated in path order), before filtering.
    path : str or list of str
        The path(s) given.
    signal_timing : SignalTiming
        The parsed `signal_delay` and `embargo`.

    Raises
    ------
    FileNotFoundError
        `path` does not exist or matches no file.
    DataError
        The data fails validation, or no row is left after filtering; a
        file is not Parquet; the files' timestamp columns differ in time
        zone (the message names two such files). While a streamed feed is
        read, a file changed, added or deleted since validation, or a read
        that fails in polars (see :mod:`mlbacktest.data.files`).

    Notes
    -----
    Rows with a null timestamp or asset are never filtered out by `start`,
    `end` or `assets`: they are read and rejected by validation.

    `assets` and (for ``Datetime``/``Date`` timestamps) `end` also filter
    the signal frame: rows after `end` could never be visible and are not
    read.
    """

    def __init__(
        self,
        path: str | os.PathLike[str] | Sequence[str | os.PathLike[str]],
        signal_columns: Sequence[str] | None = None,
        *,
        start: TimeLike | None = None,
        end: TimeLike | None = None,
        assets: Iterable[str] | str | None = None,
        timestamp_column: str = "timestamp",
        asset_column: str = "asset",
        signals: FrameLike | str | os.PathLike[str] | None = None,
        available_at_column: str | None = None,
        signal_delay: int | str | Any | None = None,
        embargo: str | Any | None = None,
        delay_columns: Sequence[str] | None = None,
        chunk: str | Any | None = None,
    ) -> None:
        timing = SignalTiming.from_args(signal_delay, embargo)
        avail = (available_at_column,) if available_at_column is not None else ()
        self._stream: Stream | None = None
        self.path = resolve_path(path)
        files = FileSet(self.path)
        files.check_timezones([timestamp_column, available_at_column if signals is None else None])
        sig_files: FileSet | None = None
        lf = pl.scan_parquet(self.path, row_index_name=ROW)
        schema = pl.Schema([(k, v) for k, v in collect_schema(lf).items() if k != ROW])
        sig_lf: pl.LazyFrame | None = None
        sig_schema: pl.Schema | None = None
        if signals is not None:
            if (isinstance(signals, (str, os.PathLike)) or (
                isinstance(signals, (list, tuple))
                and signals
                and all(isinstance(x, (str, os.PathLike)) for x in signals)
            )) and file_format(signals) == "parquet":  # other formats: read as a frame
                sig_path = resolve_path(signals)
                sig_files = FileSet(sig_path, "signal frame: ")
                sig_files.check_timezones([timestamp_column, available_at_column])
                sig_lf = pl.scan_parquet(sig_path, row_index_name=ROW)
            else:
                sig_lf = as_lazyframe(signals, timestamp_column, asset_column, avail)
                sig_schema = collect_schema(sig_lf)  # a column named like ROW is refused below
                sig_lf = sig_lf.with_row_index(ROW, offset=0) if ROW not in sig_schema else sig_lf
            if sig_schema is None:
                sig_schema = pl.Schema(
                    [(k, v) for k, v in collect_schema(sig_lf).items() if k != ROW]
                )
        plan = plan_signals(
            schema,
            sig_schema,
            timestamp_column,
            asset_column,
            signal_columns,
            available_at_column,
        )
        delayed = check_delay_columns(delay_columns, plan.names)
        price_avail = (plan.price_available_at,) if plan.price_available_at is not None else ()

        asset_list: list[str] | None = None
        if assets is not None:
            asset_list = [assets] if isinstance(assets, str) else [str(a) for a in assets]
        predicates = time_predicates(schema[timestamp_column], timestamp_column, start, end)
        if asset_list is not None:
            col = pl.col(asset_column)
            if schema[asset_column] != pl.String:
                col = col.cast(pl.String)
            predicates.append(col.is_in(asset_list) | pl.col(asset_column).is_null())
        if predicates:
            lf = lf.filter(functools.reduce(operator.and_, predicates))
        lf = lf.select(
            [ROW, timestamp_column, asset_column, *BAR_FIELDS, *plan.price_columns, *price_avail]
        )
        self._query = lf
        if sig_lf is not None and sig_schema is not None:
            sig_preds = time_predicates(sig_schema[timestamp_column], timestamp_column, None, end)
            if asset_list is not None:
                col = pl.col(asset_column)
                if sig_schema[asset_column] != pl.String:
                    col = col.cast(pl.String)
                sig_preds.append(col.is_in(asset_list) | pl.col(asset_column).is_null())
            if sig_preds:
                sig_lf = sig_lf.filter(functools.reduce(operator.and_, sig_preds))
            sig_lf = sig_lf.select(
                [ROW, timestamp_column, asset_column, *avail, *plan.frame_columns]
            )
        self._signal_query = sig_lf

        filters = [
            f"{k}={v!r}"
            for k, v in (("start", start), ("end", end), ("assets", asset_list))
            if v is not None
        ]
        empty = f"no rows in {self.path!r}" + (f" with {', '.join(filters)}" if filters else "")
        if chunk is not None:
            self.signal_timing = timing
            self._stream = Stream.scan(
                lf, sig_lf, schema[timestamp_column], chunk, timestamp_column, asset_column,
                plan, timing, delayed, available_at_column, empty, files,
            )
            if sig_files is not None:
                sig_files.verify()
            if asset_list is not None:
                warn_absent(asset_list, self._stream.asset_names, self.path)
            return
        panel, avail_ns = build_panel(
            collect_frame(lf),
            timestamp_column,
            asset_column,
            plan.price_columns,
            (start, end),
            empty,
            available_at_column=plan.price_available_at,
        )
        rows = None
        if sig_lf is not None:
            rows = signal_rows(
                collect_frame(sig_lf, "signal frame: "),
                panel,
                timestamp_column,
                asset_column,
                plan,
                available_at_column,
            )
        for fs in (files, sig_files):  # the data read is the data validated
            if fs is not None:
                fs.verify()
        self.signal_timing = timing
        super().__init__(attach_signals(panel, avail_ns, rows, plan, timing, delayed))

        if asset_list is not None:
            warn_absent(asset_list, panel.asset_names, self.path)

    # -- streaming (chunk=...) ------------------------------------------------
    @property
    def streaming(self) -> bool:  # type: ignore[override]
        """Whether the feed reads its bars window by window during the run."""
        return self._stream is not None

    @property
    def panel(self) -> BarPanel:  # type: ignore[override]
        """The validated bars (not available for a streaming feed)."""
        if self._stream is not None:
            raise AttributeError(
                "a streaming ParquetDataFeed (chunk=...) holds no panel; the engine reads it "
                "window by window (see window())"
            )
        return self._panel

    @panel.setter
    def panel(self, value: BarPanel) -> None:
        self._panel = value

    @property
    def signal_names(self) -> tuple[str, ...]:
        return self._stream.plan.names if self._stream is not None else self.panel.signal_names

    @property
    def asset_names(self) -> tuple[str, ...]:
        return self._stream.asset_names if self._stream is not None else self.panel.asset_names

    @property
    def tz(self) -> str | None:
        return self._stream.tz if self._stream is not None else self.panel.tz

    def __len__(self) -> int:
        return self._stream.n_rows if self._stream is not None else len(self.panel)

    def __repr__(self) -> str:
        if self._stream is None:
            return super().__repr__()
        st = self._stream
        return (
            f"ParquetDataFeed(rows={st.n_rows}, assets={len(st.asset_names)}, "
            f"signals={list(st.plan.names)}, tz={st.tz!r}, windows={len(st.windows)})"
        )

    def to_polars(self) -> pl.DataFrame:
        if self._stream is not None:
            raise AttributeError("a streaming ParquetDataFeed (chunk=...) is not loaded in memory")
        return super().to_polars()

    def calendar(self) -> np.ndarray:
        return self._stream.calendar if self._stream is not None else super().calendar()

    def window_edges(self) -> list[tuple[int, int]]:
        return list(self._stream.windows) if self._stream is not None else super().window_edges()

    def window(self, lo: int, hi: int) -> BarPanel:
        return self._stream.read(lo, hi) if self._stream is not None else super().window(lo, hi)

    def query_plan(self, optimized: bool = True, *, signals: bool = False) -> str:
        """Return the polars query plan used to read the files.

        Parameters
        ----------
        optimized : bool, default: True
            Show the plan after optimisation, where pushed-down filters
            appear as ``SELECTION`` of the Parquet scan and the columns read
            as ``PROJECT k/n COLUMNS``.
        signals : bool, default: False
            Show the plan that read the signal frame instead of the bars.

        Returns
        -------
        str
            The output of :meth:`polars.LazyFrame.explain`.

        Raises
        ------
        ValueError
            `signals` is True but the feed has no signal frame.
        """
        if signals:
            if self._signal_query is None:
                raise ValueError("this feed has no signal frame")
            return self._signal_query.explain(optimized=optimized)
        return self._query.explain(optimized=optimized)


#: Options of :class:`ParquetDataFeed` that only a Parquet scan can honour.
_PARQUET_ONLY = ("start", "end", "assets", "chunk")


def open_feed(
    path: str | os.PathLike[str] | Sequence[str | os.PathLike[str]],
    signal_columns: Sequence[str] | None = None,
    **options: Any,
) -> DataFeed:
    """The feed of bars stored in file(s), read by suffix.

    Parquet (a file, a directory or a glob; see
    :func:`~mlbacktest.data.files.file_format`) gives a
    :class:`ParquetDataFeed`, which pushes filters into the scan and can
    stream; CSV, TSV and Arrow IPC / Feather files give a
    :class:`PolarsDataFeed` of the scanned frame. :func:`~mlbacktest.run_backtest`
    and ``mlbacktest run --data`` read their paths with it.

    Parameters
    ----------
    path : str, path-like or sequence of them
        The bars.
    signal_columns : sequence of str, optional
        As for the feeds.
    **options
        Keyword arguments of the feed (``signals=``, ``timestamp_column=``,
        ...). ``start``, ``end``, ``assets`` and ``chunk`` need Parquet data.

    Returns
    -------
    DataFeed

    Raises
    ------
    DataError
        The suffix is unknown (the message names the path and the supported
        suffixes), a Parquet-only option is given for another format, or the
        data fail validation.
    FileNotFoundError
        The path names no file.
    """
    fmt = file_format(path)
    if fmt == "parquet":
        return ParquetDataFeed(path, signal_columns, **options)
    given = [k for k in _PARQUET_ONLY if options.get(k) is not None]
    if given:
        shown = ([os.fspath(p) for p in path] if isinstance(path, (list, tuple))
                 else os.fspath(path))  # type: ignore[arg-type]
        raise DataError(
            f"{', '.join(f'{k}=' for k in given)}: these options need parquet data, but "
            f"{shown!r} is {fmt.upper()}; filter the frame yourself "
            "(pl.scan_csv(...).filter(...)) or convert the file to parquet "
            "(pl.scan_csv(...).sink_parquet(...))"
        )
    options = {k: v for k, v in options.items() if k not in _PARQUET_ONLY}
    return PolarsDataFeed(scan_frame(path), signal_columns, **options)

