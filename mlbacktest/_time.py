"""Conversions between user-facing timestamps and the engine's int64 nanoseconds."""

from __future__ import annotations

import datetime as _dt
from typing import Any

import numpy as np

from mlbacktest.errors import DataError

__all__ = ["TS_MAX", "TS_MIN", "TS_RANGE_TEXT", "to_ns"]

#: Latest timestamp the engine accepts, in ns since the epoch (2116-02-20 23:53:38.427387903).
#: The compiled broker orders matching passes by the int64 key ``2 * timestamp + phase``
#: (phase 0 or 1), which must neither overflow nor reach the ``INT64_MIN`` "never" marker.
TS_MAX: int = 2**62 - 1
#: Earliest timestamp the engine accepts, in ns since the epoch (1823-11-12 00:06:21.572612097).
TS_MIN: int = -(2**62 - 1)
#: The accepted range, as printed in error messages.
TS_RANGE_TEXT = (
    "[1823-11-12 00:06:21.572612097, 2116-02-20 23:53:38.427387903] "
    "(|ns since the epoch| <= 2**62 - 1; the engine keys events by 2 * timestamp + phase "
    "in int64)"
)

_EPOCH = _dt.datetime(1970, 1, 1)
_EPOCH_UTC = _dt.datetime(1970, 1, 1, tzinfo=_dt.timezone.utc)


def _zone(tz: str) -> _dt.tzinfo:
    if tz == "UTC":
        return _dt.timezone.utc
    from zoneinfo import ZoneInfo

    return ZoneInfo(tz)


def to_ns(value: Any, tz: str | None) -> int:
    """Convert a timestamp to int64 nanoseconds in the convention of a feed.

    Parameters
    ----------
    value : datetime, date, str, numpy.datetime64 or int
        An ``int`` is taken as nanoseconds already. A naive datetime or ISO
        string is wall-clock time in ``tz`` (or naive when ``tz`` is None).
    tz : str or None
        The feed's time zone.

    Returns
    -------
    int
        Nanoseconds since the epoch (UTC instants when ``tz`` is set).

    Raises
    ------
    DataError
        The timestamp is outside ``[TS_MIN, TS_MAX]``.
    """
    ns = _to_ns(value, tz)
    if not TS_MIN <= ns <= TS_MAX:
        raise DataError(f"timestamp {value!r} is outside the supported time range {TS_RANGE_TEXT}")
    return ns


def _to_ns(value: Any, tz: str | None) -> int:
    if isinstance(value, (int, np.integer)) and not isinstance(value, bool):
        return int(value)
    if isinstance(value, np.datetime64):
        if tz is None:
            return int(value.astype("datetime64[ns]").astype(np.int64))
        value = value.astype("datetime64[us]").item()
    if isinstance(value, str):
        value = _dt.datetime.fromisoformat(value)
    if isinstance(value, _dt.date) and not isinstance(value, _dt.datetime):
        value = _dt.datetime(value.year, value.month, value.day)
    if not isinstance(value, _dt.datetime):
        raise TypeError(f"cannot interpret {value!r} as a timestamp")
    if tz is None:
        if value.tzinfo is not None:
            raise ValueError(
                f"timestamp {value} has a time zone but the data's timestamps are naive"
            )
        delta = value - _EPOCH
    else:
        if value.tzinfo is None:
            value = value.replace(tzinfo=_zone(tz))
        delta = value - _EPOCH_UTC
    return (delta.days * 86_400 + delta.seconds) * 1_000_000_000 + delta.microseconds * 1_000
