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

import errno
import functools
import glob as _glob
import operator
import os
import sys
import warnings
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import numpy as np
import polars as pl

from mlbacktest.data.panel import BAR_FIELDS, BarPanel
from mlbacktest.data.validate import (
    _NS_PER_DAY,
    _NS_PER_UNIT,
    RowLocator,
    asset_strings,
    bar_fields,
    bound_to_ns,
    check_columns,
    check_not_null,
    check_python_datetimes,
    check_unique_keys,
    signal_matrix,
    timestamps_to_ns,
)
from mlbacktest.errors import DataError

__all__ = ["DataFeed", "PolarsDataFeed", "ParquetDataFeed", "FrameLike", "TimeLike"]

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

    def __init__(self, panel: BarPanel) -> None:
        _check_layout(panel)
        self.panel = panel

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
    data : polars.DataFrame, polars.LazyFrame, dict of columns or pandas.DataFrame
        The input. For a dict or a pandas frame, a timestamp column of Python
        ``datetime`` objects is checked for mixed time zones first, because
        polars would silently coerce them to one zone. A pandas frame whose
        timestamp (or asset) is in the index is reset first.
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
        Mixed time zones, or polars cannot build a frame from the input.
    TypeError
        `data` has an unsupported type.
    """
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
        "data must be a polars DataFrame or LazyFrame, a dict of columns or a pandas "
        f"DataFrame, got {type(data).__name__}"
    )


def _collect(lf: pl.LazyFrame) -> pl.DataFrame:
    try:
        return lf.collect()
    except pl.exceptions.PolarsError as exc:
        raise DataError(f"cannot read the input: {exc}") from exc


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
) -> tuple[str, ...]:
    """Check the columns of `schema` and return the signal column names."""
    names = schema.names()
    if _ROW in names:
        raise DataError(f"column name {_ROW!r} is reserved by mlbacktest")
    signals = check_columns(names, timestamp_column, asset_column, signal_columns)
    if signal_columns is None:
        other = [c for c in signals if not (schema[c].is_numeric() or schema[c] == pl.Boolean)]
        if other:
            raise DataError(
                f"column{'s' if len(other) > 1 else ''} {', '.join(repr(c) for c in other)} "
                f"{'are' if len(other) > 1 else 'is'} neither a bar field nor a numeric "
                "signal; pass signal_columns=[...] to "
                "choose the signal columns (other columns are then ignored)"
            )
    return signals


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
) -> BarPanel:
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
    check_unique_keys(
        ts, asset, source_row, asset_names, tz, f"{timestamp_column!r}, {asset_column!r}"
    )

    return BarPanel(
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

    Attributes
    ----------
    panel : BarPanel
        The validated bars.

    Raises
    ------
    DataError
        The data fails validation (see :mod:`mlbacktest.data.validate`).

    Notes
    -----
    Integer price and volume columns are cast to float64. Nulls in signal
    columns become NaN, which means "no prediction for this bar". Nothing
    else is filled, dropped or clipped. ``panel.source_row`` is the 0-based
    row of each bar in `data` as given.

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
    ) -> None:
        lf = as_lazyframe(data, timestamp_column, asset_column)
        signals = _resolve_signals(_schema(lf), timestamp_column, asset_column, signal_columns)
        lf = lf.with_row_index(_ROW).select(
            [_ROW, timestamp_column, asset_column, *BAR_FIELDS, *signals]
        )
        panel = _build_panel(_collect(lf), timestamp_column, asset_column, signals)
        super().__init__(panel)


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

    Attributes
    ----------
    panel : BarPanel
        The validated bars. ``source_row`` is the row in the scanned data
        (all files concatenated in path order), before filtering.
    path : str or list of str
        The path(s) given.

    Raises
    ------
    FileNotFoundError
        `path` does not exist or matches no file.
    DataError
        The data fails validation, or no row is left after filtering.

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
    ) -> None:
        self.path = _resolve_path(path)
        lf = pl.scan_parquet(self.path, row_index_name=_ROW)
        schema = pl.Schema([(k, v) for k, v in _schema(lf).items() if k != _ROW])
        signals = _resolve_signals(schema, timestamp_column, asset_column, signal_columns)

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
        lf = lf.select([_ROW, timestamp_column, asset_column, *BAR_FIELDS, *signals])
        self._query = lf

        filters = [
            f"{k}={v!r}"
            for k, v in (("start", start), ("end", end), ("assets", asset_list))
            if v is not None
        ]
        empty = f"no rows in {self.path!r}" + (f" with {', '.join(filters)}" if filters else "")
        panel = _build_panel(
            _collect(lf), timestamp_column, asset_column, signals, (start, end), empty
        )
        super().__init__(panel)

        if asset_list is not None:
            absent = sorted(set(asset_list) - set(panel.asset_names))
            if absent:
                warnings.warn(
                    f"requested assets without rows in {self.path!r}: {absent}",
                    UserWarning,
                    stacklevel=2,
                )

    def query_plan(self, optimized: bool = True) -> str:
        """Return the polars query plan used to read the files.

        Parameters
        ----------
        optimized : bool, default: True
            Show the plan after optimisation, where pushed-down filters
            appear as ``SELECTION`` of the Parquet scan and the columns read
            as ``PROJECT k/n COLUMNS``.

        Returns
        -------
        str
            The output of :meth:`polars.LazyFrame.explain`.
        """
        return self._query.explain(optimized=optimized)


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
