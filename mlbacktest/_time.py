"""Conversions between user-facing times and the engine's int64 nanoseconds.

:func:`to_ns` reads timestamps; :func:`parse_duration` reads every duration
argument of the package (``latency``, ``embargo``, a duration
``signal_delay``, ``chunk``, a fixed-grid ``every``, a signal source's
``latency``) with one grammar, described in docs/guide/time.md.
"""

from __future__ import annotations

import datetime as _dt
import re
import warnings
from typing import Any

import numpy as np

from mlbacktest.errors import ConfigError, DataError

__all__ = ["TS_MAX", "TS_MIN", "TS_RANGE_TEXT", "DURATION_UNITS", "MAX_DURATION_NS",
           "duration_knob_ns", "parse_duration", "to_ns"]

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


#: Units of a duration string, in ns. ``m`` and ``min`` are minutes, ``d`` 24
#: hours and ``w`` 7 days; calendar periods (``mo``, ``q``, ``y``) are no
#: durations (only ``Strategy.schedule(every=...)`` reads them).
DURATION_UNITS: dict[str, int] = {
    "ns": 1,
    "us": 1_000,
    "ms": 1_000_000,
    "s": 1_000_000_000,
    "m": 60_000_000_000,
    "min": 60_000_000_000,
    "h": 3_600_000_000_000,
    "d": 86_400_000_000_000,
    "w": 7 * 86_400_000_000_000,
}
#: Longest duration accepted, in ns (about 146 years): a timestamp of the
#: supported range plus a duration must fit in int64 nanoseconds.
MAX_DURATION_NS: int = 2**62
_PART = r"(\d+(?:\.\d*)?|\.\d+)\s*(ns|us|ms|min|s|m|h|d|w)"
_DURATION_RE = re.compile(rf"\s*(?:{_PART}\s*)+")
_CALENDAR_RE = re.compile(r"\s*\d*\s*(mo|q|y)\s*")
_UNITS_TEXT = "units ns, us, ms, s, m or min = minutes, h, d = 24 hours, w = 7 days"
_GRAMMAR = f"write it like '250ms', '30m', '1h30m' or '1.5d' ({_UNITS_TEXT})"


def parse_duration(value: Any, name: str) -> int:
    """Read a duration as int nanoseconds: the one grammar of every duration argument.

    Parameters
    ----------
    value : str, datetime.timedelta or numpy.timedelta64
        A string of one or more ``<number><unit>`` parts, summed
        (``"250ms"``, ``"30m"``, ``"1h30m"``, ``"1.5d"``, ``"2w"``; spaces
        allowed between parts); units ``ns``, ``us``, ``ms``, ``s``, ``m`` or
        ``min`` (minutes), ``h``, ``d`` (24 hours), ``w`` (7 days). The
        integer ``0`` is accepted (zero in any unit); any other bare number
        is refused, since it would be ambiguous between nanoseconds and
        bars.
    name : str
        The argument's name, for messages.

    Returns
    -------
    int
        Nanoseconds, in ``[0, MAX_DURATION_NS]``; a fractional ns of a
        decimal string is rounded to the nearest.

    Raises
    ------
    ConfigError
        A bare number, a calendar unit (``"1mo"``, ``"1q"``, ``"1y"``), an
        unreadable string, a negative, NaT or month-based duration, or one
        longer than ``MAX_DURATION_NS``. (``ConfigError`` is a
        ``ValueError``.)
    """
    if isinstance(value, np.timedelta64):
        if np.isnat(value):
            raise ConfigError(f"{name} is NaT, not a duration")
        if np.datetime_data(value.dtype)[0] in ("M", "Y", "generic"):
            raise ConfigError(
                f"{name} must be a fixed duration with a unit (not months or years): {value!r}"
            )
        out = int(value.astype("timedelta64[ns]").astype(np.int64))
    elif isinstance(value, _dt.timedelta):
        out = (value.days * 86_400 + value.seconds) * 1_000_000_000 + value.microseconds * 1_000
    elif isinstance(value, str):
        if _DURATION_RE.fullmatch(value) is None:
            if _CALENDAR_RE.fullmatch(value.lower()):
                raise ConfigError(
                    f"{name}={value!r} is a calendar period, not a duration (months, quarters "
                    f"and years have no fixed length; only schedule(every=...) reads them): "
                    f"{_GRAMMAR}")
            if _DURATION_RE.fullmatch(value.lower()):
                raise ConfigError(f"{name}={value!r}: duration units are lower case (write "
                                  f"{value.lower()!r}; 'M' would read as months elsewhere)")
            raise ConfigError(f"{name}={value!r} is not a duration: {_GRAMMAR}")
        out = 0
        for num, unit in re.findall(_PART, value):
            whole, _, frac = num.partition(".")
            ns = DURATION_UNITS[unit]
            out += int(whole or 0) * ns
            if frac.strip("0"):
                out += round(int(frac) * ns / 10 ** len(frac))
    elif isinstance(value, (int, np.integer)) and not isinstance(value, (bool, np.bool_)):
        if value == 0:
            return 0
        raise ConfigError(
            f"{name}={value!r} is a bare number, and {name} is a duration: write it with a "
            f"unit, e.g. '{value}ns' or '{value}s' ({_UNITS_TEXT})")
    else:
        raise ConfigError(
            f"{name} must be a duration (a string such as '1h30m', a datetime.timedelta or a "
            f"numpy.timedelta64), got {type(value).__name__} {value!r}"
        )
    if out < 0:
        raise ConfigError(f"{name} must not be negative, got {value!r}")
    if out > MAX_DURATION_NS:
        raise ConfigError(
            f"{name} must be at most 2**62 ns (about 146 years; a timestamp plus the {name} "
            f"must fit in int64 nanoseconds), got {value!r}"
        )
    return out


def duration_knob_ns(value: Any, name: str, bars_knob: str | None = None) -> int:
    """A duration knob in ns (see :func:`parse_duration`).

    A bare non-zero int is still read as nanoseconds for one release, with a
    :class:`DeprecationWarning` naming the written form (and ``bars_knob``,
    the knob that counts bars, if there is one).
    """
    if isinstance(value, int) and not isinstance(value, bool) and value != 0:
        if value < 0:
            raise ConfigError(f"{name} must be >= 0, got {value!r}")
        if value > MAX_DURATION_NS:
            raise ConfigError(
                f"{name} must be at most 2**62 ns (about 146 years; a timestamp plus the {name} "
                f"must fit in int64 nanoseconds), got {value!r}")
        bars = f", or {bars_knob}={value} for a number of bars" if bars_knob else ""
        warnings.warn(
            f"{name}={value} (a bare int) is read as {value} ns; bare ints for durations are "
            f"deprecated and will be refused in the next release: write {name}='{value}ns'"
            f"{bars}", DeprecationWarning, stacklevel=4)
        return value
    return parse_duration(value, name)
