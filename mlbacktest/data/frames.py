"""From a frame to a :class:`~mlbacktest.data.panel.BarPanel`: the builders the feeds share.

:class:`~mlbacktest.data.feeds.PolarsDataFeed`,
:class:`~mlbacktest.data.feeds.ParquetDataFeed` (in memory or streamed) and
:class:`~mlbacktest.data.context.ContextFrame` all read their input through
this module:

* :func:`as_lazyframe` turns a supported input (polars, pandas, a dict of
  columns, a path) into a ``LazyFrame``; :func:`collect_frame` and
  :func:`collect_schema` read it, turning polars' errors into ``DataError``;
* :func:`plan_signals` decides which signal column comes from which frame
  (:class:`SignalPlan`), :func:`signal_rows` validates a separate signal
  frame and :func:`attach_signals` aligns the signals point in time;
* :func:`build_panel` validates a collected frame and turns it into a
  read-only, sorted :class:`~mlbacktest.data.panel.BarPanel`;
  :func:`check_layout` checks the arrays of a panel built by other means.

These names are the data package's own; users call the feeds.
"""

from __future__ import annotations

import dataclasses
import os
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import polars as pl

from mlbacktest.data.files import scan_frame
from mlbacktest.data.panel import BAR_FIELDS, BarPanel
from mlbacktest.data.signals import (
    SignalRows,
    SignalTiming,
    align_signals,
    check_signal_names,
    visibility,
)
from mlbacktest.data.validate import (
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

__all__ = [
    "ROW",
    "FrameLike",
    "SignalPlan",
    "TimeLike",
    "as_lazyframe",
    "attach_signals",
    "build_panel",
    "check_delay_columns",
    "check_layout",
    "collect_frame",
    "collect_schema",
    "distinct_timestamps",
    "plan_signals",
    "readonly",
    "signal_rows",
]

#: Anything :class:`~mlbacktest.data.feeds.PolarsDataFeed` accepts as data.
FrameLike = Any  # pl.DataFrame | pl.LazyFrame | Mapping[str, Sequence] | pandas.DataFrame
#: A ``start`` / ``end`` bound: datetime, date, ISO-8601 string or numpy.datetime64.
TimeLike = Any

#: Name of the row-number column added to the input; never visible to users.
ROW = "__mlbacktest_source_row__"


def check_layout(panel: BarPanel) -> None:
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


def distinct_timestamps(ts: np.ndarray) -> np.ndarray:
    """Every distinct value of the ascending int64 array `ts`, ascending (a new array)."""
    if ts.size == 0:
        return ts.copy()
    new = np.empty(ts.size, dtype=bool)
    new[0] = True
    np.not_equal(ts[1:], ts[:-1], out=new[1:])
    return ts[new]


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


def collect_frame(lf: pl.LazyFrame, where: str = "") -> pl.DataFrame:
    """Collect `lf`; a polars error or panic is a ``DataError`` prefixed by `where`."""
    try:
        return lf.collect()
    except (pl.exceptions.PolarsError, pl.exceptions.PanicException) as exc:
        raise DataError(f"{where}cannot read the input: {exc}") from exc


def collect_schema(lf: pl.LazyFrame) -> pl.Schema:
    """The schema of `lf`; a polars error is a ``DataError``."""
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
    if ROW in names:
        raise DataError(f"{where}column name {ROW!r} is reserved by mlbacktest")
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
class SignalPlan:
    """Where each signal column comes from, and in which order they are stored."""

    price_columns: tuple[str, ...]  # signal columns read from the price frame
    frame_columns: tuple[str, ...]  # signal columns read from the signal frame
    names: tuple[str, ...]  # every signal column, in panel order
    price_available_at: str | None  # available_at column of the price frame


def plan_signals(
    price_schema: pl.Schema,
    frame_schema: pl.Schema | None,
    timestamp_column: str,
    asset_column: str,
    signal_columns: Sequence[str] | None,
    available_at_column: str | None,
) -> SignalPlan:
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
        return SignalPlan(price, (), price, avail)

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
    return SignalPlan(price, frame, names, None)


def signal_rows(
    df: pl.DataFrame,
    panel: BarPanel,
    timestamp_column: str,
    asset_column: str,
    plan: SignalPlan,
    available_at_column: str | None,
) -> SignalRows:
    """Validate the collected signal frame `df` against `panel` (assets, time zone)."""
    return SignalRows.from_frame(
        df,
        row_column=ROW,
        timestamp_column=timestamp_column,
        asset_column=asset_column,
        columns=plan.frame_columns,
        available_at_column=available_at_column,
        asset_names=panel.asset_names,
        tz=panel.tz,
    )


def check_delay_columns(
    delay_columns: Sequence[str] | None, names: Sequence[str]
) -> frozenset[str]:
    """The signal columns ``delay_columns=`` names (all of `names` for ``None``), checked."""
    if delay_columns is None:
        return frozenset(names)
    cols = [delay_columns] if isinstance(delay_columns, str) else list(delay_columns)
    unknown = [c for c in cols if c not in names]
    if unknown:
        raise DataError(
            f"delay_columns {unknown} are not signal columns; signal columns: {list(names)}"
        )
    return frozenset(cols)


def attach_signals(
    panel: BarPanel,
    price_available_at: np.ndarray | None,
    frame_rows: SignalRows | None,
    plan: SignalPlan,
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
    return dataclasses.replace(panel, signals=readonly(out, np.float64), signal_names=plan.names)


def readonly(a: np.ndarray, dtype: Any) -> np.ndarray:
    """`a` as a C-contiguous array of `dtype`, made read-only (`a` itself if it already is one)."""
    out = np.ascontiguousarray(a, dtype=dtype)
    out.flags.writeable = False
    return out


def build_panel(
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
        Input rows in input order, with the row-number column ``ROW``.
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
    source_row = df[ROW].cast(pl.Int64).to_numpy()
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
        ts=readonly(ts, np.int64),
        asset=readonly(asset, np.int32),
        open=readonly(fields["open"], np.float64),
        high=readonly(fields["high"], np.float64),
        low=readonly(fields["low"], np.float64),
        close=readonly(fields["close"], np.float64),
        volume=readonly(fields["volume"], np.float64),
        signals=readonly(signals, np.float64),
        signal_names=signal_names,
        asset_names=asset_names,
        tz=tz,
        source_row=readonly(source_row, np.int64),
    )
    return panel, avail

