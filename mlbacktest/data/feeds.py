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

import dataclasses
import errno
import functools
import glob as _glob
import operator
import os
import sys
import warnings
from collections.abc import Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import numpy as np
import polars as pl

from mlbacktest.data.files import READ_ERRORS, FileSet, file_format, scan_frame
from mlbacktest.data.panel import BAR_FIELDS, BarPanel
from mlbacktest.data.signals import (
    SignalRows,
    SignalTiming,
    align_signals,
    check_signal_names,
    visibility,
)
from mlbacktest.data.validate import (
    _NS_PER_DAY,
    _NS_PER_UNIT,
    RowLocator,
    asset_strings,
    bar_fields,
    bound_to_ns,
    check_available_at,
    check_columns,
    check_not_null,
    check_python_datetimes,
    check_unique_keys,
    signal_matrix,
    timestamps_to_ns,
)
from mlbacktest.errors import DataError

__all__ = ["DataFeed", "PolarsDataFeed", "ParquetDataFeed", "FrameLike", "TimeLike", "open_feed"]

#: Anything :class:`PolarsDataFeed` accepts as data.
FrameLike = Any  # pl.DataFrame | pl.LazyFrame | Mapping[str, Sequence] | pandas.DataFrame
#: A ``start`` / ``end`` bound: datetime, date, ISO-8601 string or numpy.datetime64.
TimeLike = Any

# Name of the row-number column added to the input; never visible to users.
_ROW = "__mlbacktest_source_row__"
_GLOB_CHARS = frozenset("*?[")


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
        _check_layout(panel)
        self.panel = panel

    def calendar(self) -> np.ndarray:
        """Every distinct timestamp of the feed (int64 ns), ascending."""
        ts = self.panel.ts
        if ts.size == 0:
            return ts.copy()
        new = np.empty(ts.size, dtype=bool)
        new[0] = True
        np.not_equal(ts[1:], ts[:-1], out=new[1:])
        return ts[new]

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


def _check_layout(panel: BarPanel) -> None:
    """Check dtypes, shapes and contiguity of a panel's arrays."""
    n = panel.ts.shape[0]
    want: dict[str, type[np.generic]] = {"ts": np.int64, "asset": np.int32, "source_row": np.int64}
    want.update(dict.fromkeys(BAR_FIELDS, np.float64))
    for name, dtype in want.items():
        a = getattr(panel, name)
        if not (
            isinstance(a, np.ndarray)
            and a.dtype == dtype
            and a.shape == (n,)
            and a.flags.c_contiguous
        ):
            raise DataError(
                f"BarPanel.{name} must be a C-contiguous {np.dtype(dtype)} array of shape ({n},)"
            )
    s = panel.signals
    k = len(panel.signal_names)
    if not (
        isinstance(s, np.ndarray)
        and s.dtype == np.float64
        and s.shape == (n, k)
        and s.flags.c_contiguous
    ):
        raise DataError(
            f"BarPanel.signals must be a C-contiguous float64 array of shape ({n}, {k})"
        )


# --------------------------------------------------------------------------- #
# Input conversion (shared with ContextFrame)
# --------------------------------------------------------------------------- #
def as_lazyframe(
    data: FrameLike,
    timestamp_column: str,
    asset_column: str | None = None,
    other_time_columns: Sequence[str] = (),
) -> pl.LazyFrame:
    """Convert supported inputs to a polars LazyFrame.

    Parameters
    ----------
    data : polars.DataFrame, polars.LazyFrame, dict of columns, pandas.DataFrame or path
        The input. For a dict or a pandas frame, a timestamp column of Python
        ``datetime`` objects is checked for mixed time zones first, because
        polars would silently coerce them to one zone. A pandas frame whose
        timestamp (or asset) is in the index is reset first. A path (str or
        path-like) is scanned by its suffix with
        :func:`~mlbacktest.data.files.scan_frame`.
    timestamp_column : str
        Name of the timestamp column.
    asset_column : str, optional
        Name of the asset column (used to name the asset in messages).
    other_time_columns : sequence of str, optional
        Further columns checked for mixed time zones like the timestamp.

    Returns
    -------
    polars.LazyFrame

    Raises
    ------
    DataError
        Mixed time zones, polars cannot build a frame from the input, or a
        path has an unknown suffix.
    FileNotFoundError
        A path names no file.
    TypeError
        `data` has an unsupported type.
    """
    if isinstance(data, (str, os.PathLike)):
        return scan_frame(data)
    if isinstance(data, pl.LazyFrame):
        return data
    if isinstance(data, pl.DataFrame):
        return data.lazy()
    pd = sys.modules.get("pandas")  # a pandas frame implies pandas is imported
    try:
        if pd is not None and isinstance(data, pd.DataFrame):
            index_names = [n for n in data.index.names if n is not None]
            if timestamp_column not in data.columns and timestamp_column in index_names:
                data = data.reset_index()
            assets = data[asset_column] if asset_column in data.columns else None
            for c in (timestamp_column, *other_time_columns):
                if c in data.columns:
                    check_python_datetimes(data[c], c, assets)
            return pl.from_pandas(data).lazy()
        if isinstance(data, Mapping):
            assets = data.get(asset_column) if asset_column is not None else None
            for c in (timestamp_column, *other_time_columns):
                if c in data:
                    check_python_datetimes(data[c], c, assets)
            return pl.DataFrame(dict(data)).lazy()
    except pl.exceptions.PolarsError as exc:
        raise DataError(f"cannot build a frame from the input: {exc}") from exc
    raise TypeError(
        "data must be a polars DataFrame or LazyFrame, a dict of columns, a pandas "
        f"DataFrame or the path of a file, got {type(data).__name__}"
    )


def _collect(lf: pl.LazyFrame, where: str = "") -> pl.DataFrame:
    try:
        return lf.collect()
    except (pl.exceptions.PolarsError, pl.exceptions.PanicException) as exc:
        raise DataError(f"{where}cannot read the input: {exc}") from exc


def _schema(lf: pl.LazyFrame) -> pl.Schema:
    try:
        return lf.collect_schema()
    except pl.exceptions.PolarsError as exc:
        raise DataError(f"cannot read the input's columns: {exc}") from exc


def _resolve_signals(
    schema: pl.Schema,
    timestamp_column: str,
    asset_column: str,
    signal_columns: Sequence[str] | None,
    exclude: Sequence[str] = (),
    required: Sequence[str] = BAR_FIELDS,
    where: str = "",
) -> tuple[str, ...]:
    """Check the columns of `schema` and return the signal column names.

    `exclude` names columns that are never signals (``available_at``): left
    out of the default selection, an error when requested. `required` are the
    columns that must exist besides the keys; `where` prefixes messages.
    """
    names = schema.names()
    if _ROW in names:
        raise DataError(f"{where}column name {_ROW!r} is reserved by mlbacktest")
    try:
        signals = check_columns(
            names, timestamp_column, asset_column, signal_columns, required=required
        )
    except DataError as exc:
        raise DataError(f"{where}{exc}") from None
    if signal_columns is None:
        signals = tuple(c for c in signals if c not in exclude and c not in required)
        other = [c for c in signals if not (schema[c].is_numeric() or schema[c] == pl.Boolean)]
        if other:
            hint = ""
            if any(isinstance(schema[c], (pl.Datetime, pl.Date)) for c in other):
                hint = " (a publication-time column goes in available_at_column=...)"
            raise DataError(
                f"{where}column{'s' if len(other) > 1 else ''} "
                f"{', '.join(repr(c) for c in other)} "
                f"{'are' if len(other) > 1 else 'is'} neither a bar field nor a numeric "
                "signal; pass signal_columns=[...] to "
                f"choose the signal columns (other columns are then ignored){hint}"
            )
    else:
        for c in signals:
            if c in exclude:
                raise DataError(f"{where}column {c!r} is the available_at column, not a signal")
    return signals


@dataclass(frozen=True)
class _SignalPlan:
    """Where each signal column comes from, and in which order they are stored."""

    price_columns: tuple[str, ...]  # signal columns read from the price frame
    frame_columns: tuple[str, ...]  # signal columns read from the signal frame
    names: tuple[str, ...]  # every signal column, in panel order
    price_available_at: str | None  # available_at column of the price frame


def _plan_signals(
    price_schema: pl.Schema,
    frame_schema: pl.Schema | None,
    timestamp_column: str,
    asset_column: str,
    signal_columns: Sequence[str] | None,
    available_at_column: str | None,
) -> _SignalPlan:
    """Resolve `signal_columns` against the price frame and the signal frame."""
    avail = available_at_column
    if avail is not None and not isinstance(avail, str):
        raise TypeError(f"available_at_column must be a str, got {type(avail).__name__}")
    if avail is not None and avail in (timestamp_column, asset_column):
        raise DataError("available_at_column must differ from the timestamp and asset columns")
    if isinstance(signal_columns, str):
        signal_columns = [signal_columns]
    if signal_columns is not None:
        signal_columns = list(signal_columns)
        seen: set[str] = set()
        for c in signal_columns:
            if c in seen:
                raise DataError(f"signal column {c!r} is requested more than once")
            seen.add(c)
    exclude = (avail,) if avail is not None else ()
    if avail is not None and signal_columns is not None and avail in signal_columns:
        raise DataError(f"column {avail!r} is the available_at column, not a signal")

    if frame_schema is None:
        required = (*BAR_FIELDS, *exclude)
        price = _resolve_signals(
            price_schema, timestamp_column, asset_column, signal_columns, exclude, required
        )
        return _SignalPlan(price, (), price, avail)

    where = "signal frame: "
    frame_names = frame_schema.names()
    keys = {timestamp_column, asset_column, *exclude}
    price_names = set(price_schema.names()) - set(BAR_FIELDS) - {timestamp_column, asset_column}
    if signal_columns is None:
        price = _resolve_signals(
            price_schema, timestamp_column, asset_column, None, exclude, BAR_FIELDS
        )
        frame = _resolve_signals(
            frame_schema, timestamp_column, asset_column, None, exclude, exclude, where
        )
        both = [c for c in frame if c in price]
        if both:
            raise DataError(
                f"column{'s' if len(both) > 1 else ''} {', '.join(repr(c) for c in both)} "
                "of the signal frame also in the price frame; pass signal_columns=[...] to "
                "say which signals to use (each from one frame)"
            )
        names = price + frame
    else:
        frame_req = [c for c in signal_columns if c in frame_names and c not in keys]
        price_req = [c for c in signal_columns if c not in frame_req]
        both = [c for c in frame_req if c in price_names]
        if both:
            raise DataError(
                f"signal column{'s' if len(both) > 1 else ''} "
                f"{', '.join(repr(c) for c in both)} "
                f"{'are' if len(both) > 1 else 'is'} in both the price frame and the signal "
                "frame; rename one of them"
            )
        unknown = [c for c in price_req if c not in price_schema.names()]
        if unknown:
            raise DataError(
                f"signal column{'s' if len(unknown) > 1 else ''} "
                f"{', '.join(repr(c) for c in unknown)} not found in the price frame "
                f"({price_schema.names()}) nor in the signal frame ({frame_names})"
            )
        price = _resolve_signals(
            price_schema, timestamp_column, asset_column, price_req, exclude, BAR_FIELDS
        )
        frame = _resolve_signals(
            frame_schema, timestamp_column, asset_column, frame_req, exclude, exclude, where
        )
        names = tuple(signal_columns)
    check_signal_names(frame, where)
    return _SignalPlan(price, frame, names, None)


def _signal_rows(
    df: pl.DataFrame,
    panel: BarPanel,
    timestamp_column: str,
    asset_column: str,
    plan: _SignalPlan,
    available_at_column: str | None,
) -> SignalRows:
    return SignalRows.from_frame(
        df,
        row_column=_ROW,
        timestamp_column=timestamp_column,
        asset_column=asset_column,
        columns=plan.frame_columns,
        available_at_column=available_at_column,
        asset_names=panel.asset_names,
        tz=panel.tz,
    )


def _check_delay_columns(
    delay_columns: Sequence[str] | None, names: Sequence[str]
) -> frozenset[str]:
    if delay_columns is None:
        return frozenset(names)
    cols = [delay_columns] if isinstance(delay_columns, str) else list(delay_columns)
    unknown = [c for c in cols if c not in names]
    if unknown:
        raise DataError(
            f"delay_columns {unknown} are not signal columns; signal columns: {list(names)}"
        )
    return frozenset(cols)


def _attach_signals(
    panel: BarPanel,
    price_available_at: np.ndarray | None,
    frame_rows: SignalRows | None,
    plan: _SignalPlan,
    timing: SignalTiming,
    delayed: frozenset[str],
) -> BarPanel:
    """Replace the panel's signals by their point-in-time alignment (see :mod:`.signals`)."""
    if (
        frame_rows is None
        and price_available_at is None
        and (timing.is_identity or not delayed.intersection(plan.price_columns))
    ):
        return panel  # every price signal is shown on its own bar, as given
    out = np.empty((len(panel), len(plan.names)), dtype=np.float64)
    col = {c: j for j, c in enumerate(plan.names)}
    none = SignalTiming()
    sources: list[tuple[tuple[str, ...], Any]] = []
    if plan.price_columns:
        sources.append((plan.price_columns, None))
    if frame_rows is not None and plan.frame_columns:
        sources.append((plan.frame_columns, frame_rows))
    for columns, rows in sources:
        for tm in (none, timing):
            cols = [c for c in columns if (c in delayed) == (tm is timing)]
            if not cols:
                continue
            if rows is None:  # the price frame: one signal row per bar
                vals = panel.signals[:, [panel.signal_names.index(c) for c in cols]]
                if tm.is_identity and price_available_at is None:
                    res = vals
                else:
                    vis = visibility(panel.ts, price_available_at, tm)
                    res = align_signals(
                        panel.ts, panel.asset, panel.ts, vis, panel.asset, vals, tm.delay_bars
                    )
            else:
                sub = SignalRows(
                    rows.ts,
                    rows.available_at,
                    rows.asset,
                    rows.values[:, [rows.names.index(c) for c in cols]],
                    tuple(cols),
                    rows.source_row,
                )
                res = sub.aligned(panel.ts, panel.asset, tm)
            out[:, [col[c] for c in cols]] = res
    return dataclasses.replace(panel, signals=_readonly(out, np.float64), signal_names=plan.names)


def _readonly(a: np.ndarray, dtype: Any) -> np.ndarray:
    out = np.ascontiguousarray(a, dtype=dtype)
    out.flags.writeable = False
    return out


def _build_panel(
    df: pl.DataFrame,
    timestamp_column: str,
    asset_column: str,
    signal_names: tuple[str, ...],
    bounds: tuple[TimeLike, TimeLike] | None = None,
    empty_message: str = "the data has no rows",
    available_at_column: str | None = None,
) -> tuple[BarPanel, np.ndarray | None]:
    """Validate a collected frame and turn it into a :class:`BarPanel`.

    Parameters
    ----------
    df : polars.DataFrame
        Input rows in input order, with the row-number column ``_ROW``.
    timestamp_column, asset_column : str
        Key columns.
    signal_names : tuple of str
        Signal columns, already checked to exist.
    bounds : (start, end), optional
        Inclusive time bounds (either may be ``None``), applied once the
        timestamps are normalised (so string timestamps can be filtered too).
    empty_message : str
        Message of the error raised when no rows are left.
    available_at_column : str, optional
        Publication time of each row's signals; validated (not null, same
        time zone as the timestamps, not earlier than them).

    Returns
    -------
    panel : BarPanel
    available_at : ndarray of int64 or None
        The `available_at_column` in panel order (ns), or ``None``.
    """
    if df.height == 0:
        raise DataError(empty_message)
    source_row = df[_ROW].cast(pl.Int64).to_numpy()
    asset_s = asset_strings(df[asset_column], asset_column)
    rows = RowLocator(source_row, asset_s, df[timestamp_column])
    ts, tz = timestamps_to_ns(df[timestamp_column], timestamp_column, rows)

    if bounds is not None and (bounds[0] is not None or bounds[1] is not None):
        keep = np.ones(ts.shape[0], dtype=bool)
        if bounds[0] is not None:
            keep &= ts >= bound_to_ns(bounds[0], tz, "start")
        if bounds[1] is not None:
            keep &= ts <= bound_to_ns(bounds[1], tz, "end")
        if not keep.all():
            df = df.filter(pl.Series(keep))
            if df.height == 0:
                raise DataError(empty_message)
            source_row, ts = source_row[keep], ts[keep]
            asset_s = asset_s.filter(pl.Series(keep))
            rows = RowLocator(source_row, asset_s, df[timestamp_column])
    rows.set_timestamps(ts, tz)

    check_not_null(asset_s, asset_column, rows)
    avail = None
    if available_at_column is not None:
        avail = check_available_at(df, available_at_column, timestamp_column, ts, tz, rows)
    fields = bar_fields(df, rows)
    signals = signal_matrix(df, signal_names)

    names = asset_s.unique().sort()
    asset = asset_s.cast(pl.Enum(names)).to_physical().cast(pl.Int32).to_numpy()
    asset_names = tuple(names.to_list())

    # Stable sort by (timestamp, asset id); skipped when the input is already sorted.
    if ts.shape[0] > 1:
        t0, t1 = ts[:-1], ts[1:]
        in_order = bool(np.all((t1 > t0) | ((t1 == t0) & (asset[1:] >= asset[:-1]))))
    else:
        in_order = True
    if not in_order:
        order = np.lexsort((asset, ts))
        ts, asset, source_row = ts[order], asset[order], source_row[order]
        fields = {k: v[order] for k, v in fields.items()}
        signals = signals[order]
        if avail is not None:
            avail = avail[order]
    check_unique_keys(
        ts, asset, source_row, asset_names, tz, f"{timestamp_column!r}, {asset_column!r}"
    )

    panel = BarPanel(
        ts=_readonly(ts, np.int64),
        asset=_readonly(asset, np.int32),
        open=_readonly(fields["open"], np.float64),
        high=_readonly(fields["high"], np.float64),
        low=_readonly(fields["low"], np.float64),
        close=_readonly(fields["close"], np.float64),
        volume=_readonly(fields["volume"], np.float64),
        signals=_readonly(signals, np.float64),
        signal_names=signal_names,
        asset_names=asset_names,
        tz=tz,
        source_row=_readonly(source_row, np.int64),
    )
    return panel, avail


# --------------------------------------------------------------------------- #
# Feeds
# --------------------------------------------------------------------------- #
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
    timestamp_column : str, default: ``"timestamp"``
        ``Datetime`` (any unit and time zone), ``Date`` (midnight) or
        ISO-8601 strings (all with a UTC offset, or all without).
    asset_column : str, default: ``"asset"``
        Asset names: strings, categoricals or integers (converted to str).
    signals : polars.DataFrame, polars.LazyFrame, dict of columns or pandas.DataFrame, optional
        A separate signal frame: one row per (timestamp, asset)
        prediction, with the same `timestamp_column` and `asset_column` as
        the prices, the signal columns and optionally `available_at_column`.
        Its timestamps need not match the bars': each bar shows the newest
        row of its asset visible at the bar's timestamp (as-of, backward;
        see ``docs/signals.md``), NaN before the first. Every row is
        validated: duplicates of (timestamp, asset), an asset absent from
        the prices, an ``available_at`` earlier than the timestamp, or a time
        zone other than the prices' is a ``DataError`` naming the row
        (0-based, in the frame as given), asset and timestamp.
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
        plan = _plan_signals(
            _schema(lf),
            None if sig_lf is None else _schema(sig_lf),
            timestamp_column,
            asset_column,
            signal_columns,
            available_at_column,
        )
        delayed = _check_delay_columns(delay_columns, plan.names)
        price_avail = (plan.price_available_at,) if plan.price_available_at is not None else ()
        lf = lf.with_row_index(_ROW).select(
            [_ROW, timestamp_column, asset_column, *BAR_FIELDS, *plan.price_columns, *price_avail]
        )
        panel, avail_ns = _build_panel(
            _collect(lf),
            timestamp_column,
            asset_column,
            plan.price_columns,
            available_at_column=plan.price_available_at,
        )
        rows = None
        if sig_lf is not None:
            sig_lf = sig_lf.with_row_index(_ROW).select(
                [_ROW, timestamp_column, asset_column, *avail, *plan.frame_columns]
            )
            rows = _signal_rows(
                _collect(sig_lf, "signal frame: "),
                panel,
                timestamp_column,
                asset_column,
                plan,
                available_at_column,
            )
        self.signal_timing = timing
        super().__init__(_attach_signals(panel, avail_ns, rows, plan, timing, delayed))


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
    timestamp_column, asset_column : str
        As for :class:`PolarsDataFeed`.
    signals : frame or str or path-like, optional
        A separate signal frame, or the path of parquet file(s) holding one (a file, a
        directory or a glob, read lazily): one row per (timestamp, asset)
        prediction, with the same `timestamp_column` and `asset_column` as
        the prices, the signal columns and optionally `available_at_column`.
        Its timestamps need not match the bars': each bar shows the newest
        row of its asset visible at the bar's timestamp (as-of, backward;
        see ``docs/signals.md``), NaN before the first. Every row is
        validated: duplicates of (timestamp, asset), an asset absent from
        the prices, an ``available_at`` earlier than the timestamp, or a time
        zone other than the prices' is a ``DataError`` naming the row
        (0-based, in the frame as given), asset and timestamp.
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
        `assets` and (for ``Datetime``/``Date`` timestamps) `end` also
        filter the signal frame: rows after `end` could never be visible
        and are not read.
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
        self._stream: _Stream | None = None
        self.path = _resolve_path(path)
        files = FileSet(self.path)
        files.check_timezones([timestamp_column, available_at_column if signals is None else None])
        sig_files: FileSet | None = None
        lf = pl.scan_parquet(self.path, row_index_name=_ROW)
        schema = pl.Schema([(k, v) for k, v in _schema(lf).items() if k != _ROW])
        sig_lf: pl.LazyFrame | None = None
        sig_schema: pl.Schema | None = None
        if signals is not None:
            if (isinstance(signals, (str, os.PathLike)) or (
                isinstance(signals, (list, tuple))
                and signals
                and all(isinstance(x, (str, os.PathLike)) for x in signals)
            )) and file_format(signals) == "parquet":  # other formats: read as a frame
                sig_path = _resolve_path(signals)
                sig_files = FileSet(sig_path, "signal frame: ")
                sig_files.check_timezones([timestamp_column, available_at_column])
                sig_lf = pl.scan_parquet(sig_path, row_index_name=_ROW)
            else:
                sig_lf = as_lazyframe(signals, timestamp_column, asset_column, avail)
                sig_schema = _schema(sig_lf)  # a column named like _ROW is refused below
                sig_lf = sig_lf.with_row_index(_ROW, offset=0) if _ROW not in sig_schema else sig_lf
            if sig_schema is None:
                sig_schema = pl.Schema([(k, v) for k, v in _schema(sig_lf).items() if k != _ROW])
        plan = _plan_signals(
            schema,
            sig_schema,
            timestamp_column,
            asset_column,
            signal_columns,
            available_at_column,
        )
        delayed = _check_delay_columns(delay_columns, plan.names)
        price_avail = (plan.price_available_at,) if plan.price_available_at is not None else ()

        asset_list: list[str] | None = None
        if assets is not None:
            asset_list = [assets] if isinstance(assets, str) else [str(a) for a in assets]
        predicates = _time_predicates(schema[timestamp_column], timestamp_column, start, end)
        if asset_list is not None:
            col = pl.col(asset_column)
            if schema[asset_column] != pl.String:
                col = col.cast(pl.String)
            predicates.append(col.is_in(asset_list) | pl.col(asset_column).is_null())
        if predicates:
            lf = lf.filter(functools.reduce(operator.and_, predicates))
        lf = lf.select(
            [_ROW, timestamp_column, asset_column, *BAR_FIELDS, *plan.price_columns, *price_avail]
        )
        self._query = lf
        if sig_lf is not None and sig_schema is not None:
            sig_preds = _time_predicates(sig_schema[timestamp_column], timestamp_column, None, end)
            if asset_list is not None:
                col = pl.col(asset_column)
                if sig_schema[asset_column] != pl.String:
                    col = col.cast(pl.String)
                sig_preds.append(col.is_in(asset_list) | pl.col(asset_column).is_null())
            if sig_preds:
                sig_lf = sig_lf.filter(functools.reduce(operator.and_, sig_preds))
            sig_lf = sig_lf.select(
                [_ROW, timestamp_column, asset_column, *avail, *plan.frame_columns]
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
            self._stream = _Stream.scan(
                lf, sig_lf, schema[timestamp_column], chunk, timestamp_column, asset_column,
                plan, timing, delayed, available_at_column, empty, files,
            )
            if sig_files is not None:
                sig_files.verify()
            if asset_list is not None:
                _warn_absent(asset_list, self._stream.asset_names, self.path)
            return
        panel, avail_ns = _build_panel(
            _collect(lf),
            timestamp_column,
            asset_column,
            plan.price_columns,
            (start, end),
            empty,
            available_at_column=plan.price_available_at,
        )
        rows = None
        if sig_lf is not None:
            rows = _signal_rows(
                _collect(sig_lf, "signal frame: "),
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
        super().__init__(_attach_signals(panel, avail_ns, rows, plan, timing, delayed))

        if asset_list is not None:
            _warn_absent(asset_list, panel.asset_names, self.path)

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


def _resolve_path(
    path: str | os.PathLike[str] | Sequence[str | os.PathLike[str]],
) -> str | list[str]:
    """Check that `path` names existing files; return it in the form polars takes."""
    if isinstance(path, (str, os.PathLike)):
        p = os.fspath(path)
        if _GLOB_CHARS & set(p):
            if not _glob.glob(p, recursive=True):
                raise FileNotFoundError(errno.ENOENT, "no file matches the pattern", p)
        elif os.path.isdir(p):
            if not any(files for _, _, files in os.walk(p)):
                raise FileNotFoundError(errno.ENOENT, "directory holds no file", p)
        elif not os.path.isfile(p):
            raise FileNotFoundError(errno.ENOENT, os.strerror(errno.ENOENT), p)
        return p
    paths = [os.fspath(x) for x in path]
    if not paths:
        raise FileNotFoundError(errno.ENOENT, "no path given", "")
    for p in paths:
        if not os.path.isfile(p):
            raise FileNotFoundError(errno.ENOENT, os.strerror(errno.ENOENT), p)
    return paths


def _time_predicates(
    dtype: pl.DataType, column: str, start: TimeLike | None, end: TimeLike | None
) -> list[pl.Expr]:
    """Scan predicates for `start`/`end` on a ``Datetime`` or ``Date`` column.

    Literals are built in the column's own type (rounded inwards), so the
    comparison can be pushed into the Parquet reader and checked against
    row-group statistics. Other dtypes (strings) get no predicate here; they
    are filtered after parsing.
    """
    preds: list[pl.Expr] = []
    col = pl.col(column)
    for bound, name in ((start, "start"), (end, "end")):
        if bound is None:
            continue
        if isinstance(dtype, pl.Datetime):
            ns = bound_to_ns(bound, dtype.time_zone, name)
            f = _NS_PER_UNIT[dtype.time_unit]
            v = -(-ns // f) if name == "start" else ns // f
            lit = pl.lit(v, dtype=pl.Int64).cast(dtype)
        elif dtype == pl.Date:
            ns = bound_to_ns(bound, None, name)
            v = -(-ns // _NS_PER_DAY) if name == "start" else ns // _NS_PER_DAY
            lit = pl.lit(v, dtype=pl.Int32).cast(pl.Date)
        else:
            continue
        cmp = col >= lit if name == "start" else col <= lit
        preds.append(cmp | col.is_null())
    return preds


def _warn_absent(asset_list: Sequence[str], names: Sequence[str], path: Any) -> None:
    absent = sorted(set(asset_list) - set(names))
    if absent:
        warnings.warn(
            f"requested assets without rows in {path!r}: {absent}", UserWarning, stacklevel=3
        )


def _validation_bar(total: int) -> Any:
    """A progress bar over the validation pass, shown in a terminal once it has lasted 2 s."""
    if not sys.stderr.isatty():
        return None
    from tqdm.auto import tqdm  # type: ignore[import-untyped]

    return tqdm(total=total, unit="window", desc="mlbacktest: validating", delay=2.0,
                mininterval=0.5, leave=False, file=sys.stderr)


def _chunk_ns(chunk: Any) -> int | None:
    """Window length of ``chunk=`` in ns; ``None`` for ``"all"`` (one window)."""
    from mlbacktest.data.signals import parse_duration

    if isinstance(chunk, str) and chunk.strip().lower() == "all":
        return None
    ns = parse_duration(chunk, "chunk")
    if ns <= 0:
        raise ValueError(f"chunk must be a positive duration or 'all', got {chunk!r}")
    return ns


def _window_predicate(dtype: pl.DataType, column: str, lo: int, hi: int) -> pl.Expr:
    """``lo <= column < hi`` (ns bounds) with literals in the column's own type (pushed down)."""
    col = pl.col(column)
    if isinstance(dtype, pl.Datetime):
        f = _NS_PER_UNIT[dtype.time_unit]
        a, b = -(-lo // f), -(-hi // f)
        return (col >= pl.lit(a, dtype=pl.Int64).cast(dtype)) & (
            col < pl.lit(b, dtype=pl.Int64).cast(dtype)
        )
    a, b = -(-lo // _NS_PER_DAY), -(-hi // _NS_PER_DAY)
    return (col >= pl.lit(a, dtype=pl.Int32).cast(pl.Date)) & (
        col < pl.lit(b, dtype=pl.Int32).cast(pl.Date)
    )


@dataclass
class _Stream:
    """What a streaming ParquetDataFeed knows after its validation pass."""

    lf: pl.LazyFrame  # the filtered, projected scan of the bars
    dtype: pl.DataType  # type of the timestamp column
    timestamp_column: str
    asset_column: str
    plan: _SignalPlan
    timing: SignalTiming
    delayed: frozenset[str]
    rows: SignalRows | None  # the validated signal frame, held in memory
    windows: list[tuple[int, int]]  # non-empty windows [lo, hi) in ns, ascending
    asset_names: tuple[str, ...]  # every asset of the study, sorted
    tz: str | None
    calendar: np.ndarray  # every distinct timestamp, ascending
    n_rows: int
    files: FileSet  # the files validated, with their fingerprints
    carry: _Carry | None = None  # what delayed signals need from earlier windows

    @classmethod
    def scan(
        cls,
        lf: pl.LazyFrame,
        sig_lf: pl.LazyFrame | None,
        dtype: pl.DataType,
        chunk: Any,
        timestamp_column: str,
        asset_column: str,
        plan: _SignalPlan,
        timing: SignalTiming,
        delayed: frozenset[str],
        available_at_column: str | None,
        empty: str,
        files: FileSet,
    ) -> _Stream:
        """Check that the bars can be streamed, then validate every window once."""
        if not isinstance(dtype, (pl.Datetime, pl.Date)):
            raise DataError(
                f"streaming (chunk=...) needs a Datetime or Date timestamp column; "
                f"{timestamp_column!r} is {dtype}: convert it, or read the data in memory"
            )
        if plan.price_available_at is not None:
            raise DataError(
                "streaming (chunk=...) cannot take available_at_column on the price frame: a "
                "row may become visible in a later window; pass the signals as signals=..."
            )
        width = _chunk_ns(chunk)
        col = pl.col(timestamp_column)
        span = _collect(lf.select(
            col.min().dt.epoch("ns").alias("lo"), col.max().dt.epoch("ns").alias("hi")
        ))
        lo, hi = span["lo"][0], span["hi"][0]
        if lo is None:
            # no rows, or only null timestamps: read what there is and let validation say
            _build_panel(_collect(lf), timestamp_column, asset_column, plan.price_columns,
                         empty_message=empty)
            raise DataError(empty)  # pragma: no cover - validation raises above
        if width is None:
            edges = [(int(lo), int(hi) + 1)]
        else:
            first = (int(lo) // width) * width
            edges = [(a, a + width) for a in range(first, int(hi) + 1, width)]
        nulls = col.is_null()

        def check(k: int) -> tuple[tuple[str, ...], str | None, int, np.ndarray] | None:
            a, b = edges[k]
            pred = _window_predicate(dtype, timestamp_column, a, b)
            if k == 0:
                pred = pred | nulls  # null timestamps are read (and refused) once
            df = _collect(lf.filter(pred))
            if df.height == 0:
                return None
            panel, _ = _build_panel(df, timestamp_column, asset_column, plan.price_columns,
                                    empty_message=empty)
            return panel.asset_names, panel.tz, len(panel), DataFeed(panel).calendar()

        names: set[str] = set()
        calendars: list[np.ndarray] = []
        windows: list[tuple[int, int]] = []
        n_rows = 0
        tz: str | None = None
        # Two windows in flight (polars releases the GIL while it reads); results are
        # taken in window order, so the first bad window is the one reported.
        bar = _validation_bar(len(edges))
        with ThreadPoolExecutor(max_workers=2) as pool:
            pending = [pool.submit(check, k) for k in range(min(2, len(edges)))]
            for k in range(len(edges)):
                try:
                    out = pending.pop(0).result()
                except BaseException:
                    for f in pending:
                        f.cancel()
                    if bar is not None:
                        bar.close()
                    raise
                if k + 2 < len(edges):
                    pending.append(pool.submit(check, k + 2))
                if bar is not None:
                    bar.update(1)
                if out is None:
                    continue
                window_names, tz, n, calendar = out
                names.update(window_names)
                calendars.append(calendar)
                windows.append(edges[k])
                n_rows += n
        if bar is not None:
            bar.close()
        asset_names = tuple(sorted(names))
        rows = None
        if sig_lf is not None:
            rows = SignalRows.from_frame(
                _collect(sig_lf, "signal frame: "),
                row_column=_ROW,
                timestamp_column=timestamp_column,
                asset_column=asset_column,
                columns=plan.frame_columns,
                available_at_column=available_at_column,
                asset_names=asset_names,
                tz=tz,
            )
        files.verify()  # no file changed while it was validated window by window
        return cls(lf, dtype, timestamp_column, asset_column, plan, timing, delayed, rows,
                   windows, asset_names, tz, np.concatenate(calendars), n_rows, files)

    def read(self, lo: int, hi: int) -> BarPanel:
        """The bars of ``[lo, hi)`` with study-wide asset ids.

        The window was validated by :meth:`scan`, so this only converts:
        the same conversions as :func:`_build_panel`, without its checks.
        The files are checked against their fingerprints before the read
        (fully at the first window) and after it: a file changed, added or
        deleted since validation is a ``DataError`` naming it.
        """
        self.files.verify(full=bool(self.windows) and lo <= self.windows[0][0])
        try:
            df = self.lf.filter(_window_predicate(self.dtype, self.timestamp_column, lo, hi)
                                ).collect()
        except READ_ERRORS as exc:
            self.files.verify(full=True)  # names the file that changed, if one did
            raise DataError(f"cannot read {self.files.path!r}: {exc}") from exc
        self.files.verify()
        if df.height == 0:
            return _empty_panel(self.plan.names, self.asset_names, self.tz)
        ts = df[self.timestamp_column].dt.epoch("ns").to_numpy()
        names = pl.Enum(self.asset_names)
        asset = (asset_strings(df[self.asset_column], self.asset_column).cast(names)
                 .to_physical().cast(pl.Int32).to_numpy())
        fields = {f: np.ascontiguousarray(df[f].cast(pl.Float64).to_numpy(), dtype=np.float64)
                  for f in BAR_FIELDS}
        signals = signal_matrix(df, self.plan.price_columns)
        source_row = df[_ROW].cast(pl.Int64).to_numpy()
        del df
        if ts.shape[0] > 1 and not bool(np.all(
                (ts[1:] > ts[:-1]) | ((ts[1:] == ts[:-1]) & (asset[1:] >= asset[:-1])))):
            order = np.lexsort((asset, ts))
            ts, asset, source_row = ts[order], asset[order], source_row[order]
            signals = signals[order]
            fields = {k: v[order] for k, v in fields.items()}
        panel = BarPanel(
            ts=_readonly(ts, np.int64),
            asset=_readonly(asset, np.int32),
            **{f: _readonly(fields[f], np.float64) for f in BAR_FIELDS},
            signals=_readonly(signals, np.float64),
            signal_names=self.plan.price_columns,
            asset_names=self.asset_names,
            tz=self.tz,
            source_row=_readonly(source_row, np.int64),
        )
        if self.timing.delay_bars == 0 and (
                self.timing.is_identity or not self.delayed.intersection(self.plan.price_columns)):
            # every delay is a duration applied per bar to the signal frame: no state
            return _attach_signals(panel, None, self.rows, self.plan, self.timing, self.delayed)
        if self.carry is None or lo < self.carry.hi:
            if lo > self.calendar[0]:  # rows before lo were never seen
                raise ValueError("the windows of a feed with delayed signals must be read in "
                                 "time order, from the first")
            self.carry = _Carry(len(self.asset_names))
        return self.carry.align(panel, lo, hi, self)


class _Carry:
    """Delayed signals across windows: what each one needs from the windows before it.

    Price-frame columns delayed by a duration ``D`` (``signal_delay`` plus
    ``embargo``) show at a bar stamped ``t`` the asset's latest row stamped at
    or before ``t - D``: that row is in the window, among the rows kept from
    ``[lo - D, lo)``, or it is the asset's last row before ``lo - D``, kept per
    asset. An integer ``signal_delay`` of ``n`` bars then shows at each bar
    what the asset's ``n``-th earlier bar showed: the last ``n`` of those per
    asset are kept. Everything kept is bounded by ``D`` and ``n``, not by the
    study. Windows must come in time order (the engine reads them so).
    """

    def __init__(self, n_assets: int) -> None:
        self.hi = np.iinfo(np.int64).min  # end of the last window read
        self.recent_ts = np.empty(0, dtype=np.int64)  # raw delayed price rows with ts >= cut
        self.recent_asset = np.empty(0, dtype=np.int32)
        self.recent_values: np.ndarray | None = None
        self.before = None if n_assets == 0 else np.full((n_assets, 0), np.nan)
        self.has_before = np.zeros(n_assets, dtype=bool)  # an asset row older than the cut exists
        self.tail_asset = np.empty(0, dtype=np.int32)  # last n shown rows of each asset
        self.tail_values: np.ndarray | None = None

    def align(self, panel: BarPanel, lo: int, hi: int, stream: _Stream) -> BarPanel:
        plan, timing = stream.plan, stream.timing
        no_bars = dataclasses.replace(timing, delay_bars=0)
        frame_delayed = stream.delayed - set(plan.price_columns)
        # The signal frame's duration delays and every undelayed column, per bar.
        out_panel = _attach_signals(panel, None, stream.rows, plan, no_bars, frame_delayed)
        out = np.array(out_panel.signals, dtype=np.float64)
        names = out_panel.signal_names
        price_cols = [c for c in plan.price_columns if c in stream.delayed]
        if price_cols and not no_bars.is_identity:
            raw = panel.signals[:, [panel.signal_names.index(c) for c in price_cols]]
            out[:, [names.index(c) for c in price_cols]] = self._shifted_rows(
                panel, raw, lo, no_bars)
        if timing.delay_bars:
            cols = [names.index(c) for c in names if c in stream.delayed]
            out[:, cols] = self._shifted_bars(panel.asset, out[:, cols], timing.delay_bars)
        self.hi = hi
        return dataclasses.replace(panel, signals=_readonly(out, np.float64), signal_names=names)

    def _shifted_rows(self, panel: BarPanel, raw: np.ndarray, lo: int,
                      timing: SignalTiming) -> np.ndarray:
        k = raw.shape[1]
        if self.recent_values is None:
            self.recent_values = np.empty((0, k))
            self.before = np.full((self.has_before.size, k), np.nan)
        assert self.before is not None
        shift = visibility(np.zeros(1, dtype=np.int64), None, timing)[0]
        cut = lo - int(shift) if lo > np.iinfo(np.int64).min + int(shift) else lo
        old = self.recent_ts < cut
        if old.any():  # rows no longer needed one by one: keep each asset's latest
            a = self.recent_asset[old]
            last = len(a) - 1 - np.unique(a[::-1], return_index=True)[1]
            self.before[a[last]] = self.recent_values[old][last]
            self.has_before[a[last]] = True
        ts = np.concatenate((self.recent_ts[~old], panel.ts))
        asset = np.concatenate((self.recent_asset[~old], panel.asset))
        values = np.concatenate((self.recent_values[~old], raw))
        marked = np.hstack((values, np.ones((values.shape[0], 1))))
        got = align_signals(panel.ts, panel.asset, ts, visibility(ts, None, timing), asset, marked)
        miss = np.isnan(got[:, -1])
        res = got[:, :-1]
        res[miss] = self.before[panel.asset[miss]]
        self.recent_ts, self.recent_asset, self.recent_values = ts, asset, values
        return res

    def _shifted_bars(self, asset: np.ndarray, shown: np.ndarray, n: int) -> np.ndarray:
        if self.tail_values is None:
            self.tail_values = np.empty((0, shown.shape[1]))
        all_asset = np.concatenate((self.tail_asset, asset))
        all_values = np.concatenate((self.tail_values, shown))
        src = (pl.DataFrame({"asset": all_asset, "i": np.arange(all_asset.size)})
               .select(pl.col("i").shift(n).over("asset"))["i"]
               .fill_null(-1).to_numpy()[self.tail_asset.size:])
        res = np.full(shown.shape, np.nan)
        hit = src >= 0
        res[hit] = all_values[src[hit]]
        # keep the last n rows of each asset
        by_asset = np.argsort(all_asset, kind="stable")
        ends = np.cumsum(np.bincount(all_asset, minlength=int(all_asset.max(initial=0)) + 1))
        from_end = ends[all_asset[by_asset]] - 1 - np.arange(all_asset.size)
        keep = np.sort(by_asset[from_end < n])
        self.tail_asset, self.tail_values = all_asset[keep], all_values[keep]
        return res


def _empty_panel(signal_names: tuple[str, ...], asset_names: tuple[str, ...],
                 tz: str | None) -> BarPanel:
    f = _readonly(np.empty(0), np.float64)
    return BarPanel(
        ts=_readonly(np.empty(0), np.int64), asset=_readonly(np.empty(0), np.int32),
        open=f, high=f, low=f, close=f, volume=f,
        signals=_readonly(np.empty((0, len(signal_names))), np.float64),
        signal_names=signal_names, asset_names=asset_names, tz=tz,
        source_row=_readonly(np.empty(0), np.int64),
    )
