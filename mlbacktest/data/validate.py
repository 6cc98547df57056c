"""Vectorised validation and normalisation of bar and context data.

Every check runs over whole columns (polars or numpy); Python code only runs
to format the message of a failure. Every failure raises
:class:`~mlbacktest.errors.DataError` with a message that names the column,
the number of affected rows, and the first offending row: its 0-based row
number in the input as given, its asset and its timestamp, for example::

    DataError: column 'low' is greater than 'high' in 3 rows; first at row 17
    (asset 'AAPL', timestamp 2024-01-05 00:00:00): low=101.0, high=100.5

Nothing is silently dropped, filled or clipped: input is either accepted as
it is (after a stable sort) or rejected.

Timestamps
----------
A timestamp column may be a polars ``Datetime`` (any unit, any time zone), a
``Date`` (read as midnight) or ISO-8601 strings. They are normalised to int64
nanoseconds since the Unix epoch: UTC instants for time-zone-aware input,
wall-clock time for naive input. Strings that all carry a UTC offset (or
``Z``) are unambiguous instants and are converted to UTC (time zone
``"UTC"``); strings that mix offset-bearing and naive values are rejected.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from datetime import date, datetime, timedelta, tzinfo
from typing import Any

import numpy as np
import polars as pl

from mlbacktest._time import TS_MAX, TS_MIN, TS_RANGE_TEXT
from mlbacktest.data.panel import BAR_FIELDS, PRICE_FIELDS
from mlbacktest.errors import DataError, suggest

__all__ = [
    "MAX_PRICE",
    "MAX_VOLUME",
    "REQUIRED_COLUMNS",
    "RowLocator",
    "TS_MAX",
    "TS_MIN",
    "TimestampText",
    "asset_strings",
    "bar_fields",
    "bound_to_ns",
    "check_available_at",
    "check_columns",
    "check_not_null",
    "check_python_datetimes",
    "check_same_timezone",
    "check_ts_range",
    "check_unique_keys",
    "format_timestamp",
    "missing_columns_hint",
    "signal_matrix",
    "timestamps_to_ns",
]

#: Columns, besides the timestamp and asset columns, that every bar feed needs.
REQUIRED_COLUMNS: tuple[str, ...] = BAR_FIELDS

#: Column names (case-folded) that usually hold the timestamps, suggested for
#: ``timestamp_column=`` when the timestamp column is missing.
TIMESTAMP_NAMES: tuple[str, ...] = (
    "timestamp", "date", "datetime", "time", "ts", "dt", "date_time", "trade_date", "bar_time",
)
#: Column names (case-folded) that usually hold the asset, suggested for ``asset_column=``.
ASSET_NAMES: tuple[str, ...] = (
    "asset", "ticker", "symbol", "instrument", "security", "sid", "permno", "isin", "cusip",
    "stock", "code", "name",
)


def _key_candidate(missing: str, names: Sequence[str], aliases: tuple[str, ...]) -> str | None:
    """The column that most likely holds a missing key column: a case variant, an alias
    or a close match; None when there is none."""
    close = suggest(missing, names, 1)
    if close and close[0].casefold() == missing.casefold():
        return close[0]
    for c in names:
        if c.casefold() in aliases:
            return c
    return close[0] if close else None


def missing_columns_hint(
    missing: Sequence[str],
    names: Sequence[str],
    timestamp_column: str,
    asset_column: str | None,
) -> str:
    """What to do about missing columns: the option for a key column, a rename for a field.

    Parameters
    ----------
    missing : sequence of str
        The missing columns (keys and bar fields).
    names : sequence of str
        The columns of the input.
    timestamp_column, asset_column : str
        The key column names asked for (`asset_column` ``None`` for data
        without assets, such as a context frame).

    Returns
    -------
    str
        A message tail starting with ``"; "``, or ``""`` when there is no hint.
        A frame that looks wide (a timestamp column, no asset column and none
        of the bar fields) gets the "data must be long" hint with a polars
        ``unpivot`` recipe.

    Examples
    --------
    >>> missing_columns_hint(["close"], ["timestamp", "asset", "Close"], "timestamp", "asset")
    "; did you mean 'Close'? rename it: df.rename({'Close': 'close'})"
    """
    hints: list[str] = []
    folded = {c.casefold() for c in names}
    if (asset_column is not None and asset_column in missing
            and not any(f in folded for f in BAR_FIELDS)
            and not any(f in folded for f in ASSET_NAMES)):
        ts = timestamp_column if timestamp_column in names else _key_candidate(
            timestamp_column, names, TIMESTAMP_NAMES)
        others = [c for c in names if c != ts]
        if ts is not None and len(others) >= 2:
            shown = ", ".join(repr(c) for c in others[:5]) + (", ..." if len(others) > 5 else "")
            return (
                f"; the data look wide (one column per asset: {shown}): data must be long, one "
                f"row per timestamp and asset with open, high, low, close and volume columns. "
                f"For a matrix of closes: df.unpivot(index={ts!r}, variable_name="
                f"{asset_column!r}, value_name='close').with_columns(open=pl.col('close'), "
                "high=pl.col('close'), low=pl.col('close'), volume=pl.lit(0.0))"
                + ("" if ts == timestamp_column else f", and pass timestamp_column={ts!r}")
            )
    renames: dict[str, str] = {}
    for col in missing:
        if col == timestamp_column or col == asset_column:
            aliases = TIMESTAMP_NAMES if col == timestamp_column else ASSET_NAMES
            option = "timestamp_column" if col == timestamp_column else "asset_column"
            found = _key_candidate(col, names, aliases)
            if found is not None:
                flag = "--" + option.replace("_", "-")
                hints.append(f"the {option.split('_')[0]}s look like they are in column "
                             f"{found!r}: pass {option}={found!r} ({flag} {found} on the "
                             "command line)")
            continue
        close = suggest(col, names, 1)
        if close:
            renames[close[0]] = col
    if renames:
        hints.append(
            f"did you mean {', '.join(repr(c) for c in renames)}? rename "
            f"{'it' if len(renames) == 1 else 'them'}: df.rename({renames!r})"
        )
    return "".join(f"; {h}" for h in hints)

#: Nanoseconds per unit of a polars ``Datetime`` column (its ``time_unit``).
NS_PER_UNIT = {"ns": 1, "us": 1_000, "ms": 1_000_000}
#: Nanoseconds per day (the unit of a polars ``Date`` column).
NS_PER_DAY = 86_400 * 1_000_000_000
_INT64_MAX = np.iinfo(np.int64).max

#: Largest magnitude accepted for a price (open, high, low, close). Any quantity up to
#: 1e290 can then be multiplied by a price without overflowing float64, and cash sums
#: keep a resolution far below a cent.
MAX_PRICE: float = 1e15
#: Largest volume accepted for a bar.
MAX_VOLUME: float = 1e18


# An ISO-8601 date, optionally followed by a time and, after a time, a UTC offset.
_ISO_RE = (
    r"^\d{4}-\d{2}-\d{2}"
    r"(?:[T ]\d{2}:\d{2}(?::\d{2}(?:[.,]\d{1,9})?)?"
    r"\s*(?:[Zz]|[+-]\d{2}(?::?\d{2})?)?)?$"
)
# Matches only strings whose time part carries an offset or ``Z``.
_OFFSET_RE = r"\d{2}:\d{2}(?::\d{2}(?:[.,]\d{1,9})?)?\s*(?:[Zz]|[+-]\d{2}(?::?\d{2})?)$"
# The parts of an ISO-8601 string: date, hour, minute, second, fraction, offset.
_ISO_PARTS_RE = (
    r"^(\d{4}-\d{2}-\d{2})"
    r"(?:[T ](\d{2}):(\d{2})(?::(\d{2})(?:[.,](\d{1,9}))?)?"
    r"\s*([Zz]|[+-]\d{2}(?::?\d{2})?)?)?$"
)
# Every accepted ISO-8601 layout is rewritten to this one before parsing, so the
# format is never inferred (inference fails on a whole column of invalid dates).
_CANONICAL_FMT = "%Y-%m-%dT%H:%M:%S%.9f"


# --------------------------------------------------------------------------- #
# Message formatting
# --------------------------------------------------------------------------- #
def format_timestamp(ns: int, tz: str | None) -> str:
    """Format one normalised timestamp for an error message.

    Parameters
    ----------
    ns : int
        Nanoseconds since the epoch (a UTC instant when `tz` is set, wall
        clock when it is ``None``).
    tz : str or None
        Time zone to display the instant in.

    Returns
    -------
    str
        ``"2024-01-05 00:00:00"`` for naive timestamps,
        ``"2024-01-05 09:30:00-05:00"`` for aware ones; a fractional second
        is shown only when it is not zero.
    """
    s = pl.Series([int(ns)], dtype=pl.Int64).cast(pl.Datetime("ns"))
    if tz is None:
        return str(s.dt.to_string("%Y-%m-%d %H:%M:%S%.f").item())
    s = s.dt.replace_time_zone("UTC").dt.convert_time_zone(tz)
    return str(s.dt.to_string("%Y-%m-%d %H:%M:%S%.f%:z").item())


class TimestampText:
    """Index-able view of int64 ns timestamps that yields their printed form.

    Pass it in the ``values`` of :meth:`RowLocator.error` to show a timestamp
    column's value at the offending row.
    """

    def __init__(self, ts: np.ndarray, tz: str | None) -> None:
        self.ts = ts
        self.tz = tz

    def __getitem__(self, i: int) -> str:
        return format_timestamp(int(self.ts[i]), self.tz)


def _plural(n: int, word: str = "row") -> str:
    return f"{n} {word}" + ("" if n == 1 else "s")


def _fmt_value(v: Any) -> str:
    if v is None:
        return "null"
    if isinstance(v, (float, np.floating)):
        return repr(float(v))
    return repr(v)


def _tz_label(tz: str | None) -> str:
    return "naive (no time zone)" if tz is None else repr(tz)


class RowLocator:
    """Describe rows of a frame being validated, for error messages.

    Parameters
    ----------
    source_row : ndarray of int64
        Row number in the user's input of each position of the frame.
    asset : polars.Series or None
        Asset name of each position (``None`` for data without assets, such
        as context series).
    raw_timestamp : polars.Series
        The timestamp column as given, used until :meth:`set_timestamps`
        supplies the normalised values.
    """

    def __init__(
        self,
        source_row: np.ndarray,
        asset: pl.Series | None,
        raw_timestamp: pl.Series,
    ) -> None:
        self.source_row = source_row
        self.asset = asset
        self.raw_timestamp = raw_timestamp
        self.ts: np.ndarray | None = None
        self.tz: str | None = None

    def set_timestamps(self, ts: np.ndarray, tz: str | None) -> None:
        """Use normalised timestamps (int64 ns) in later messages."""
        self.ts = ts
        self.tz = tz

    def timestamp_text(self, i: int) -> str:
        """Timestamp of position `i` as printed in messages."""
        if self.ts is not None:
            return format_timestamp(int(self.ts[i]), self.tz)
        raw = self.raw_timestamp[i]
        return "null" if raw is None else str(raw)

    def describe(self, i: int) -> str:
        """``"row 17 (asset 'AAPL', timestamp 2024-01-05 00:00:00)"`` for position `i`."""
        parts = []
        if self.asset is not None:
            a = self.asset[i]
            parts.append("asset null" if a is None else f"asset {a!r}")
        parts.append(f"timestamp {self.timestamp_text(i)}")
        return f"row {int(self.source_row[i])} ({', '.join(parts)})"

    def error(
        self,
        mask: np.ndarray,
        head: str,
        values: dict[str, Any] | None = None,
        *,
        tail: str = "",
    ) -> DataError:
        """Build the error for the rows selected by `mask`.

        Parameters
        ----------
        mask : ndarray of bool
            Offending positions; at least one must be set.
        head : str
            What is wrong, e.g. ``"column 'low' is greater than 'high'"``.
        values : dict of str to ndarray or polars.Series, optional
            Columns whose values at the first offending row are appended.
        tail : str, optional
            Appended to the message (a hint on how to fix the data).

        Returns
        -------
        DataError
            ``"<head> in N rows; first at row R (asset ..., timestamp ...): a=1.0"``.
        """
        positions = np.flatnonzero(mask)
        first = int(positions[0])
        msg = f"{head} in {_plural(len(positions))}; first at {self.describe(first)}"
        if values:
            msg += ": " + ", ".join(f"{k}={_fmt_value(v[first])}" for k, v in values.items())
        return DataError(msg + tail)


# --------------------------------------------------------------------------- #
# Columns
# --------------------------------------------------------------------------- #
def check_columns(
    available: Sequence[str],
    timestamp_column: str,
    asset_column: str | None,
    signal_columns: Sequence[str] | None,
    required: Sequence[str] = REQUIRED_COLUMNS,
) -> tuple[str, ...]:
    """Check that the needed columns exist and resolve the signal columns.

    Parameters
    ----------
    available : sequence of str
        Column names of the input.
    timestamp_column, asset_column : str
        Names of the timestamp and asset columns (`asset_column` may be
        ``None`` for data without assets).
    signal_columns : sequence of str or None
        Requested signal columns; ``None`` means every column that is not a
        timestamp, asset or bar column.
    required : sequence of str, default: ``REQUIRED_COLUMNS``
        Further columns that must exist.

    Returns
    -------
    tuple of str
        The signal column names, in order.

    Raises
    ------
    DataError
        A required or requested column is missing (the message lists the
        available columns), or a signal column is requested twice or is also
        the timestamp or asset column or a bar field.
    """
    names = list(available)
    have = set(names)
    key_cols = [timestamp_column] + ([asset_column] if asset_column is not None else [])
    needed = key_cols + list(required)
    missing = [c for c in needed if c not in have]
    if missing:
        raise DataError(
            f"missing required column{'s' if len(missing) > 1 else ''} "
            f"{', '.join(repr(c) for c in missing)}; available columns: {names}"
            + missing_columns_hint(missing, names, timestamp_column, asset_column)
        )
    if signal_columns is None:
        taken = set(needed)
        return tuple(c for c in names if c not in taken)
    if isinstance(signal_columns, str):
        signal_columns = [signal_columns]
    signals = tuple(signal_columns)
    for c in signals:
        if not isinstance(c, str):
            raise DataError(f"signal column names must be str, got {c!r}")
    unknown = [c for c in signals if c not in have]
    if unknown:
        close = {c: suggest(c, names, 1) for c in unknown}
        hint = "".join(f"; did you mean {m[0]!r} for {c!r}?" for c, m in close.items() if m)
        raise DataError(
            f"signal column{'s' if len(unknown) > 1 else ''} "
            f"{', '.join(repr(c) for c in unknown)} not found; available columns: {names}"
            + hint
        )
    seen: set[str] = set()
    for c in signals:
        if c in seen:
            raise DataError(f"signal column {c!r} is requested more than once")
        if c in key_cols:
            raise DataError(f"column {c!r} is the timestamp or asset column, not a signal")
        if c in BAR_FIELDS:
            raise DataError(
                f"column {c!r} is a bar field ({', '.join(BAR_FIELDS)}) and cannot also be a "
                "signal column; the strategy reads it as a bar field already (copy it under "
                "another name to use it as a signal)"
            )
        seen.add(c)
    return signals


def asset_strings(col: pl.Series, column: str) -> pl.Series:
    """Return the asset column as strings.

    Parameters
    ----------
    col : polars.Series
        Asset column: strings, categoricals, enums or integers.
    column : str
        Its name, for messages.

    Returns
    -------
    polars.Series
        The same values as ``String`` (nulls kept).

    Raises
    ------
    DataError
        The column has another dtype.
    """
    dt = col.dtype
    if dt == pl.String:
        return col
    if isinstance(dt, (pl.Categorical, pl.Enum)) or dt.is_integer():
        return col.cast(pl.String)
    raise DataError(
        f"column {column!r} has dtype {dt}; asset names must be strings, categoricals or integers"
    )


def check_not_null(col: pl.Series, column: str, rows: RowLocator) -> None:
    """Raise :class:`DataError` if `col` holds nulls."""
    n = col.null_count()
    if n:
        raise rows.error(col.is_null().to_numpy(), f"column {column!r} is null")


# --------------------------------------------------------------------------- #
# Time
# --------------------------------------------------------------------------- #
def _tz_key(tz: tzinfo | None) -> Any:
    """A hashable identity for a ``tzinfo``: zones by name, fixed offsets by offset."""
    if tz is None:
        return None
    key = getattr(tz, "key", None) or getattr(tz, "zone", None)  # zoneinfo / pytz
    if isinstance(key, str):
        return ("zone", "UTC" if key in ("UTC", "Etc/UTC") else key)
    off = tz.utcoffset(None)
    if off is not None:
        return ("zone", "UTC") if off == timedelta(0) else ("offset", off)
    return ("object", id(tz))


def _tz_name(v: datetime) -> str:
    tz = v.tzinfo
    if tz is None:
        return "naive (no time zone)"
    key = getattr(tz, "key", None) or getattr(tz, "zone", None)
    return f"time zone {key if isinstance(key, str) else tz.tzname(v)!r}"


def check_python_datetimes(
    values: Iterable[Any],
    column: str,
    assets: Sequence[Any] | None = None,
) -> None:
    """Reject Python ``datetime`` objects whose time zones differ.

    polars silently converts a list of datetimes with different ``tzinfo``
    (or naive mixed with aware) to one time zone, so this check must run on
    the Python objects, before the data reaches polars.

    Parameters
    ----------
    values : iterable
        The timestamp column as given (list, tuple, object array, pandas
        object Series). Arrays of a non-object dtype are skipped: they
        cannot mix time zones.
    column : str
        Its name, for messages.
    assets : sequence, optional
        The asset column, to name the asset of the offending row.

    Raises
    ------
    DataError
        Two datetimes have different time zones; the message names the
        first row whose time zone differs from the first row's.
    """
    if isinstance(values, np.ndarray) and values.dtype != object:
        return
    if not isinstance(values, (list, tuple, np.ndarray)):
        to_numpy = getattr(values, "to_numpy", None)  # pandas Series
        if to_numpy is None or getattr(getattr(values, "dtype", None), "kind", None) != "O":
            return
        values = to_numpy()
    seq = list(values)
    # One pass over the objects collects the distinct tzinfo instances; keys are
    # computed per distinct tzinfo only.
    tzinfos = {v.tzinfo for v in seq if isinstance(v, datetime)}
    keys = {_tz_key(t) for t in tzinfos}
    if len(keys) <= 1:
        return
    # Error path only: find the first row that differs from the first datetime.
    dts = [(i, v) for i, v in enumerate(seq) if isinstance(v, datetime)]
    i0, v0 = dts[0]
    k0 = _tz_key(v0.tzinfo)
    bad = [(i, v) for i, v in dts if _tz_key(v.tzinfo) != k0]
    i, v = bad[0]
    asset = f"asset {list(assets)[i]!r}, " if assets is not None else ""
    n_bad = len(bad)
    raise DataError(
        f"column {column!r} mixes time zones: {_plural(n_bad)} "
        f"differ{'s' if n_bad == 1 else ''} from row {i0} ({_tz_name(v0)}); first at "
        f"row {i} ({asset}timestamp {v}), which is {_tz_name(v)}; "
        "give every timestamp the same time zone"
    )


def _check_ns_range(phys: pl.Series, factor: int, column: str, rows: RowLocator) -> None:
    """Reject values that overflow int64 nanoseconds once scaled by `factor`."""
    if factor == 1:
        return
    bound = _INT64_MAX // factor
    arr = phys.to_numpy()
    bad = np.abs(np.nan_to_num(arr.astype(np.float64))) > bound
    if bad.any():
        raise rows.error(
            bad,
            f"column {column!r} is outside the range representable in nanoseconds "
            "(years 1677-2262)",
        )


def timestamps_to_ns(
    col: pl.Series, column: str, rows: RowLocator
) -> tuple[np.ndarray, str | None]:
    """Normalise a timestamp column to int64 nanoseconds.

    Parameters
    ----------
    col : polars.Series
        ``Datetime`` (any unit, any time zone), ``Date`` or ISO-8601 strings.
    column : str
        Its name, for messages.
    rows : RowLocator
        Describes rows in error messages.

    Returns
    -------
    ts : ndarray of int64
        Nanoseconds since the epoch: UTC instants when `tz` is set, wall
        clock when it is ``None``.
    tz : str or None
        Time zone: the column's for ``Datetime``, ``"UTC"`` for strings with
        offsets, ``None`` for naive values and dates.

    Raises
    ------
    DataError
        Another dtype; strings that are not ISO-8601, are not valid dates
        or times (``"2020-13-45"``) or mix offset-bearing and naive values;
        nulls; values outside ``[TS_MIN, TS_MAX]``.
    """
    dt: pl.DataType = col.dtype
    if isinstance(dt, (pl.Categorical, pl.Enum)):
        col = col.cast(pl.String)
        dt = col.dtype
    if isinstance(dt, pl.Datetime):
        tz = dt.time_zone
        check_not_null(col, column, rows)
        _check_ns_range(col.to_physical(), NS_PER_UNIT[dt.time_unit], column, rows)
        out = col.dt.cast_time_unit("ns").to_physical()
    elif dt == pl.Date:
        tz = None
        check_not_null(col, column, rows)
        phys = col.to_physical().cast(pl.Int64)
        _check_ns_range(phys, NS_PER_DAY, column, rows)
        out = phys * NS_PER_DAY
    elif dt == pl.String:
        out, tz = _parse_iso(col, column, rows)
    else:
        raise DataError(
            f"column {column!r} has dtype {dt}; timestamps must be Datetime, Date "
            "or ISO-8601 strings"
        )
    ts = np.ascontiguousarray(out.cast(pl.Int64).to_numpy(), dtype=np.int64)
    bad = (ts > TS_MAX) | (ts < TS_MIN)
    if bad.any():
        raise rows.error(
            bad,
            f"column {column!r} is outside the supported time range {TS_RANGE_TEXT}",
            {column: TimestampText(ts, tz)},
        )
    return ts, tz


def check_ts_range(ns: int, what: str) -> int:
    """Refuse a timestamp (int64 ns) outside ``[TS_MIN, TS_MAX]``.

    Parameters
    ----------
    ns : int
        Nanoseconds since the epoch.
    what : str
        What the timestamp is, for the message (``"start='2200-01-01'"``).

    Returns
    -------
    int
        `ns`, unchanged.

    Raises
    ------
    DataError
        `ns` is outside the range; the message gives the range.
    """
    if not TS_MIN <= ns <= TS_MAX:
        raise DataError(f"{what} is outside the supported time range {TS_RANGE_TEXT}")
    return ns


def _iso_to_datetime(text: pl.Series, with_offset: bool) -> pl.Series:
    """Parse stripped ISO-8601 strings (already matched by ``_ISO_RE``) to ``Datetime("ns")``.

    Each string is rewritten to one canonical layout and parsed with an explicit
    format, so every string is read the same way whatever the others look like.
    Strings that look like ISO-8601 but are not valid dates or times
    (``"2020-13-45"``, ``"2020-02-30T25:00"``) become null. With `with_offset`,
    every string carries an offset and the result is in UTC.
    """
    name = text.name
    parts = text.rename("s").to_frame().select(
        pl.col("s").str.extract_groups(_ISO_PARTS_RE).struct.unnest()
    )
    g = [pl.col(str(i)) for i in range(1, 7)]
    canonical = pl.concat_str(
        g[0], pl.lit("T"), g[1].fill_null("00"), pl.lit(":"), g[2].fill_null("00"),
        pl.lit(":"), g[3].fill_null("00"), pl.lit("."), g[4].fill_null("").str.pad_end(9, "0"),
    )
    fmt = _CANONICAL_FMT
    if with_offset:
        off = g[5].str.to_uppercase().str.replace("Z", "+00:00", literal=True)
        off = off.str.replace(r"^([+-]\d{2})$", "${1}:00").str.replace(
            r"^([+-]\d{2})(\d{2})$", "${1}:${2}"
        )
        canonical = pl.concat_str(canonical, off)
        fmt += "%:z"
    out = parts.select(canonical.alias("c"))["c"].str.to_datetime(
        fmt, time_unit="ns", time_zone="UTC" if with_offset else None, strict=False
    )
    return out.rename(name)


def _parse_iso(col: pl.Series, column: str, rows: RowLocator) -> tuple[pl.Series, str | None]:
    check_not_null(col, column, rows)
    text = col.str.strip_chars()
    not_iso = ~text.str.contains(_ISO_RE)
    if not_iso.any():
        raise rows.error(
            not_iso.to_numpy(),
            f"column {column!r} holds strings that are not ISO-8601 timestamps",
            {column: col},
        )
    has_offset = text.str.contains(_OFFSET_RE).to_numpy()
    if has_offset.all():
        parsed, tz = _iso_to_datetime(text, True), "UTC"
    elif not has_offset.any():
        parsed, tz = _iso_to_datetime(text, False), None
    else:
        differs = has_offset != has_offset[0]
        kind = "without" if has_offset[0] else "with"
        raise rows.error(
            differs,
            f"column {column!r} mixes time zones: timestamps {kind} a UTC offset "
            f"(unlike row {int(rows.source_row[0])}, {col[0]!r})",
            tail="; give every timestamp a UTC offset or none",
        )
    bad = parsed.is_null()
    if bad.any():
        raise rows.error(
            bad.to_numpy(),
            f"column {column!r} holds strings that are not valid dates",
            {column: col},
        )
    return parsed.to_physical(), tz


def bound_to_ns(value: Any, tz: str | None, name: str) -> int:
    """Convert a ``start``/``end`` bound to int64 ns in a column's convention.

    Parameters
    ----------
    value : datetime, date, str, numpy.datetime64
        The bound. Naive values are wall clock in `tz` (for an aware column)
        or compared as they are (for a naive column).
    tz : str or None
        Time zone of the data.
    name : str
        ``"start"`` or ``"end"``, for messages.

    Returns
    -------
    int
        Nanoseconds since the epoch.

    Raises
    ------
    DataError
        The bound is time-zone aware but the data is naive, it cannot be
        read as a timestamp, or it is outside ``[TS_MIN, TS_MAX]``.
    """
    if isinstance(value, np.datetime64):  # naive, like a naive datetime
        if np.isnat(value):
            raise DataError(f"{name} is NaT")
        ns = int(value.astype("datetime64[ns]").astype(np.int64))
        s = pl.Series([ns], dtype=pl.Int64).cast(pl.Datetime("ns"))
    elif isinstance(value, datetime):
        s = pl.Series([value])
    elif isinstance(value, date):
        s = pl.Series([value]).cast(pl.Datetime("ns"))
    elif isinstance(value, str):
        if not re.match(_ISO_RE, value.strip()):
            raise DataError(f"{name}={value!r} is not an ISO-8601 timestamp")
        text = pl.Series([value.strip()])
        s = _iso_to_datetime(text, bool(text.str.contains(_OFFSET_RE).item()))
        if s.null_count():
            raise DataError(
                f"{name}={value!r} is not a valid date and time (a month, day, hour, minute "
                "or second out of range)"
            )
    else:
        raise DataError(
            f"{name} must be a datetime, date, ISO-8601 string or numpy.datetime64, "
            f"got {type(value).__name__}"
        )
    bound_tz = s.dtype.time_zone if isinstance(s.dtype, pl.Datetime) else None
    s = s.cast(pl.Datetime("ns", bound_tz))
    if bound_tz is not None and tz is None:
        raise DataError(
            f"{name}={value!r} has a time zone but the timestamps are naive; pass a naive {name}"
        )
    if bound_tz is None and tz is not None:
        s = s.dt.replace_time_zone(
            tz, ambiguous="earliest" if name == "start" else "latest", non_existent="null"
        )
        if s.null_count():
            raise DataError(f"{name}={value!r} does not exist in time zone {tz!r}")
    return check_ts_range(int(s.to_physical().item()), f"{name}={value!r}")


def check_available_at(
    frame: pl.DataFrame,
    column: str,
    timestamp_column: str,
    ts: np.ndarray,
    tz: str | None,
    rows: RowLocator,
) -> np.ndarray:
    """Validate a publication-time column against the rows' timestamps.

    Parameters
    ----------
    frame : polars.DataFrame
        Holds `column`, in the same row order as `ts`.
    column : str
        The ``available_at`` column: ``Datetime``, ``Date`` or ISO-8601 strings.
    timestamp_column : str
        Name of the timestamp column, for messages.
    ts : ndarray of int64
        The rows' normalised timestamps.
    tz : str or None
        Their time zone.
    rows : RowLocator
        Describes rows in error messages.

    Returns
    -------
    ndarray of int64
        ``available_at`` in ns, same convention as `ts`.

    Raises
    ------
    DataError
        A null or unparseable value; a time zone that differs from the
        timestamps'; a value earlier than the row's timestamp (a prediction
        cannot be published before the time it is stamped).
    """
    avail, avail_tz = timestamps_to_ns(frame[column], column, rows)
    check_same_timezone([tz, avail_tz], [timestamp_column, column])
    early = avail < ts
    if early.any():
        raise rows.error(
            early,
            f"column {column!r} is earlier than {timestamp_column!r} (a prediction cannot "
            "be published before the time it is stamped)",
            {column: TimestampText(avail, tz)},
        )
    return avail


def check_same_timezone(feeds_or_tzs: Sequence[Any], names: Sequence[str]) -> str | None:
    """Check that several feeds or frames share one time zone.

    Parameters
    ----------
    feeds_or_tzs : sequence
        Objects with a ``tz`` attribute (feeds, panels, context frames) or
        time-zone names (``str`` or ``None`` for naive).
    names : sequence of str
        A name for each entry, used in the message (e.g. ``"prices"``,
        ``"context"``).

    Returns
    -------
    str or None
        The common time zone (``None`` when all are naive, or when no entry
        is given).

    Raises
    ------
    DataError
        Two entries differ; the message names both and their time zones.
    """
    items = list(feeds_or_tzs)
    labels = list(names)
    if len(items) != len(labels):
        raise ValueError("feeds_or_tzs and names must have the same length")
    tzs = [x if (x is None or isinstance(x, str)) else x.tz for x in items]
    for i in range(1, len(tzs)):
        if tzs[i] != tzs[0]:
            raise DataError(
                f"time zones differ: {labels[0]!r} is {_tz_label(tzs[0])} but "
                f"{labels[i]!r} is {_tz_label(tzs[i])}; convert them to one time zone"
            )
    return tzs[0] if tzs else None


# --------------------------------------------------------------------------- #
# Bars
# --------------------------------------------------------------------------- #
def _numeric(col: pl.Series, column: str, what: str) -> pl.Series:
    dt = col.dtype
    if dt.is_numeric() or (what == "signal" and dt == pl.Boolean):
        return col.cast(pl.Float64)
    raise DataError(f"{what} column {column!r} has dtype {dt}; expected a numeric column")


def bar_fields(frame: pl.DataFrame, rows: RowLocator) -> dict[str, np.ndarray]:
    """Validate the OHLCV columns and return them as float64 arrays.

    Parameters
    ----------
    frame : polars.DataFrame
        Holds the columns of :data:`REQUIRED_COLUMNS`, in input order.
    rows : RowLocator
        Describes rows in error messages.

    Returns
    -------
    dict of str to ndarray of float64
        One C-contiguous array per bar field.

    Raises
    ------
    DataError
        A non-numeric column; a null, NaN, infinite, zero or negative price,
        or one above :data:`MAX_PRICE`; ``high < low``; ``open`` or ``close``
        outside ``[low, high]``; a null, NaN, infinite or negative volume, or
        one above :data:`MAX_VOLUME`.
    """
    out: dict[str, np.ndarray] = {}
    for name in BAR_FIELDS:
        col = _numeric(frame[name], name, "bar")
        check_not_null(col, name, rows)
        arr = np.ascontiguousarray(col.to_numpy(), dtype=np.float64)
        bad = ~np.isfinite(arr)
        if bad.any():
            raise rows.error(bad, f"column {name!r} is NaN or infinite", {name: arr})
        if name in PRICE_FIELDS:
            bad = arr <= 0.0
            if bad.any():
                raise rows.error(bad, f"column {name!r} is zero or negative", {name: arr})
            bound = MAX_PRICE
        else:
            bad = arr < 0.0
            if bad.any():
                raise rows.error(bad, f"column {name!r} is negative", {name: arr})
            bound = MAX_VOLUME
        bad = arr > bound
        if bad.any():
            raise rows.error(
                bad, f"column {name!r} is above the largest accepted value {bound:g}", {name: arr},
                tail=" (larger values overflow or lose precision once multiplied by a position)",
            )
        out[name] = arr
    o, h, lo, c = out["open"], out["high"], out["low"], out["close"]
    bad = lo > h
    if bad.any():
        raise rows.error(bad, "column 'low' is greater than 'high'", {"low": lo, "high": h})
    for name, arr in (("open", o), ("close", c)):
        bad = (arr < lo) | (arr > h)
        if bad.any():
            raise rows.error(
                bad, f"column {name!r} is outside [low, high]", {name: arr, "low": lo, "high": h}
            )
    return out


def signal_matrix(frame: pl.DataFrame, names: Sequence[str]) -> np.ndarray:
    """Return the signal columns as a C-contiguous float64 matrix.

    Parameters
    ----------
    frame : polars.DataFrame
        Holds the signal columns.
    names : sequence of str
        Signal columns, in order.

    Returns
    -------
    ndarray of float64, shape (n, len(names))
        Nulls become NaN ("no prediction"); booleans become 0.0 / 1.0.

    Raises
    ------
    DataError
        A signal column is not numeric or boolean.
    """
    n = frame.height
    if not names:
        return np.empty((n, 0), dtype=np.float64)
    cols = [_numeric(frame[c], c, "signal").fill_null(float("nan")) for c in names]
    mat = pl.DataFrame(cols).to_numpy(order="c")
    return np.ascontiguousarray(mat, dtype=np.float64)


def check_unique_keys(
    ts: np.ndarray,
    asset: np.ndarray | None,
    source_row: np.ndarray,
    asset_names: Sequence[str] | None,
    tz: str | None,
    columns: str,
) -> None:
    """Reject repeated keys in data sorted by (timestamp, asset).

    Parameters
    ----------
    ts : ndarray of int64
        Sorted timestamps.
    asset : ndarray of int32 or None
        Asset ids, sorted within each timestamp (``None`` for data keyed by
        timestamp only).
    source_row : ndarray of int64
        Input row of each position; a stable sort keeps repeated keys in
        input order.
    asset_names : sequence of str or None
        Names of the asset ids.
    tz : str or None
        Time zone of `ts`.
    columns : str
        The key columns, for messages (e.g. ``"'timestamp', 'asset'"``).

    Raises
    ------
    DataError
        Two rows share a key; the message names both input rows, the asset
        and the timestamp, and the number of repeated rows.
    """
    if ts.shape[0] < 2:
        return
    dup = ts[1:] == ts[:-1]
    if asset is not None:
        dup &= asset[1:] == asset[:-1]
    if not dup.any():
        return
    later = np.flatnonzero(dup) + 1  # position of the repeating row of each pair
    k = int(later[np.argmin(source_row[later])])  # the repeat that comes first in the input
    parts = []
    if asset is not None and asset_names is not None:
        parts.append(f"asset {asset_names[int(asset[k])]!r}")
    parts.append(f"timestamp {format_timestamp(int(ts[k]), tz)}")
    raise DataError(
        f"duplicate rows for columns ({columns}) in {_plural(len(later))}; first at row "
        f"{int(source_row[k])} ({', '.join(parts)}), which repeats row {int(source_row[k - 1])}"
    )
