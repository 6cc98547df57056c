"""Conversions between user-facing timestamps and the engine's int64 nanoseconds."""

from __future__ import annotations

import datetime as _dt
from typing import Any

import numpy as np

__all__ = ["to_ns"]

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
    """
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
