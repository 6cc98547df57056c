"""Calendar rules behind :meth:`Strategy.schedule`: when a scheduled callback fires.

Every firing time is computed once, before the timers are handed to the
clock, from the run's bar timestamps and the calendar in the feed's time
zone (naive timestamps are wall-clock time). Nothing here depends on prices,
so the same data always gives the same firing times.

Two kinds of schedule:

* **Calendar periods** (``every="1d" | "1w" | "1mo" | "1q" | "1y"`` and the
  rules ``"day_start"`` ... ``"year_end"``): a *trading* period is a calendar
  day, ISO week (Monday to Sunday), month, quarter or year that holds at least
  one bar. A ``*_start`` rule (and ``every``) fires at the first bar
  timestamp of each trading period, a ``*_end`` rule at the last one. With
  ``at="HH:MM"`` it fires instead at that wall-clock time on the first (or
  last) trading *day* of the period, whether or not a bar is stamped then.
  ``every="2w"`` keeps every second trading week, counted from the first.
* **Durations** (``every="30m" | "1h" | "15s" | ...``): a fixed grid of
  instants ``anchor + k * step`` (``k`` any integer), anchored at the run's
  first bar timestamp, or at ``at`` on the run's first day. A grid point fires
  when at least one bar timestamp lies in ``(point - step, point]``: points in
  which nothing new happened (nights, weekends, halts) are skipped, and the
  point that closes a session's last interval fires after that session's
  last bar.

Firing times before the run's first bar are dropped (there is nothing to act
on yet); ``start`` and ``end`` keep only firing times inside ``[start, end]``.
"""

from __future__ import annotations

import datetime as _dt
import re
from typing import Any

import numpy as np

from mlbacktest._time import parse_duration, to_ns

__all__ = ["RULES", "firing_times", "parse_every", "parse_at"]

DAY_NS = 86_400_000_000_000
_PERIODS = {"d": "day", "w": "week", "mo": "month", "q": "quarter", "y": "year"}
#: Calendar rules accepted by ``Strategy.schedule(rule=...)``.
RULES = tuple(f"{p}_{side}" for p in ("day", "week", "month", "quarter", "year")
              for side in ("start", "end"))
_PERIOD = re.compile(r"\s*(\d*)\s*(d|w|mo|q|y)\s*")


def parse_every(every: Any) -> tuple[str, int]:
    """Parse ``every`` into ``("duration", step_ns)`` or ``(period, k)``.

    ``"1d"``, ``"1w"``, ``"1mo"``, ``"1q"``, ``"1y"`` (one unit, with any
    whole multiple) are calendar periods; anything else is a duration in the
    package's one grammar (:func:`mlbacktest._time.parse_duration`:
    ``"30m"``, ``"1h30m"``, ``"500ms"``, a ``datetime.timedelta`` or a
    ``numpy.timedelta64``), a fixed grid. ``m`` is minutes, ``mo`` months.
    """
    if isinstance(every, str):
        match = _PERIOD.fullmatch(every.lower())
        if match is not None:
            num = int(match.group(1) or 1)
            if num <= 0:
                raise ValueError(f"every must be a positive period, got {every!r}")
            return _PERIODS[match.group(2)], num
    try:
        step = parse_duration(every, "every")
    except ValueError as exc:
        raise ValueError(
            f"cannot read every={every!r}: use a calendar period ('1d', '1w', '1mo', '1q', '1y') "
            f"or a duration ('30s', '15m', '1h30m'); 'm' is minutes, 'mo' months ({exc})"
        ) from None
    if step <= 0:
        raise ValueError(f"every must be a positive duration, got {every!r}")
    return "duration", step


def parse_at(at: Any) -> int:
    """Parse a time of day (``"15:55"``, ``"09:30:15"``, ``datetime.time``) as ns after 00:00."""
    if isinstance(at, str):
        try:
            at = _dt.time.fromisoformat(at.strip())
        except ValueError:
            raise ValueError(
                f"cannot read at={at!r}: use a wall-clock time such as '15:55'") from None
    if not isinstance(at, _dt.time):
        raise ValueError(f"at must be a time of day such as '15:55', got {at!r}")
    if at.tzinfo is not None:
        raise ValueError("at is a wall-clock time in the feed's time zone; give it without a zone")
    return ((at.hour * 60 + at.minute) * 60 + at.second) * 1_000_000_000 + at.microsecond * 1_000


def _to_wall(ts: np.ndarray, tz: str | None) -> np.ndarray:
    """Wall-clock ns (in ``tz``) of UTC instants; identity for naive data."""
    if tz is None or tz == "UTC" or ts.size == 0:
        return ts
    import polars as pl

    local = (pl.Series(ts).cast(pl.Datetime("ns", "UTC")).dt.convert_time_zone(tz)
             .dt.replace_time_zone(None))
    return local.cast(pl.Int64).to_numpy()


def _from_wall(wall: np.ndarray, tz: str | None) -> np.ndarray:
    """UTC instants of wall-clock ns in ``tz``.

    An ambiguous wall time (the repeated hour when clocks go back) is its
    first occurrence; a wall time that does not exist (the hour skipped
    when clocks go forward) is read with the offset before the change, so it
    lands after the gap by the gap's length (02:30 becomes 03:30).
    """
    if tz is None or tz == "UTC" or wall.size == 0:
        return wall
    import polars as pl

    utc = (pl.Series(wall).cast(pl.Datetime("ns"))
           .dt.replace_time_zone(tz, ambiguous="earliest", non_existent="null")
           .dt.convert_time_zone("UTC").cast(pl.Int64))
    missing = np.flatnonzero(utc.is_null().to_numpy())
    result = utc.fill_null(0).to_numpy().astype(np.int64, copy=True)
    if missing.size:
        from zoneinfo import ZoneInfo

        zone = ZoneInfo(tz)
        epoch = _dt.datetime(1970, 1, 1)
        for i in missing:
            w = int(wall[i])
            naive = epoch + _dt.timedelta(microseconds=w // 1000)
            offset = naive.replace(tzinfo=zone, fold=0).utcoffset()
            assert offset is not None
            off_ns = (offset.days * 86_400 + offset.seconds) * 1_000_000_000
            result[i] = w - off_ns
    return result


def _period_keys(wall: np.ndarray, period: str) -> np.ndarray:
    days = np.floor_divide(wall, DAY_NS)
    if period == "day":
        return days
    if period == "week":  # ISO weeks: 1970-01-01 was a Thursday, so Monday weeks start at day -3
        return np.floor_divide(days + 3, 7)
    months = days.astype("datetime64[D]").astype("datetime64[M]").astype(np.int64)
    if period == "month":
        return months
    if period == "quarter":
        return np.floor_divide(months, 3)
    return np.floor_divide(months, 12)  # year


def firing_times(
    run_ts: np.ndarray,
    tz: str | None = None,
    *,
    every: Any = None,
    at: Any = None,
    rule: str | None = None,
    start: Any = None,
    end: Any = None,
) -> np.ndarray:
    """The timestamps (int64 ns, ascending, unique) at which a schedule fires.

    Parameters
    ----------
    run_ts : ndarray of int64
        The run's distinct bar timestamps, ascending (UTC instants for
        tz-aware data, wall clock for naive data).
    tz : str or None
        The feed's time zone; calendar days, weeks, months and ``at`` are
        read on its wall clock.
    every : str, timedelta or numpy.timedelta64, optional
        A calendar period (``"1d"``, ``"1w"``, ``"1mo"``, ``"1q"``, ``"1y"``,
        or multiples) or a duration (``"30m"``, ``"1h"``, ...).
    at : str or datetime.time, optional
        Wall-clock time of day: for calendar periods, the time to fire on
        the chosen day; for durations, the grid's anchor on the first day.
    rule : str, optional
        One of :data:`RULES` (``"month_end"``, ``"week_start"``, ...), in
        place of ``every``.
    start, end : datetime, str or int ns, optional
        Keep only firing times in ``[start, end]``.

    Returns
    -------
    ndarray of int64
        Firing times, none before ``run_ts[0]``.
    """
    if (every is None) == (rule is None):
        raise ValueError("give exactly one of every= (e.g. '1d', '1w', '30m') or rule= "
                         f"(one of {list(RULES)})")
    at_ns = None if at is None else parse_at(at)
    if rule is not None:
        if rule not in RULES:
            raise ValueError(f"unknown schedule rule {rule!r}; rules are {list(RULES)}")
        period, side = rule.rsplit("_", 1)
        kind, k = period, 1
    else:
        kind, k = parse_every(every)
        side = "start"
    start_ns = None if start is None else to_ns(start, tz)
    end_ns = None if end is None else to_ns(end, tz)
    run_ts = np.ascontiguousarray(run_ts, dtype=np.int64)
    if run_ts.size == 0:
        return run_ts.copy()
    wall = _to_wall(run_ts, tz)
    if kind == "duration":
        step = k
        if at_ns is None:
            anchor = int(run_ts[0])
        else:
            first_day = int(np.floor_divide(wall[0], DAY_NS)) * DAY_NS
            anchor = int(_from_wall(np.array([first_day + at_ns], dtype=np.int64), tz)[0])
        # Each bar is covered by the first grid point at or after it.
        cover = -np.floor_divide(anchor - run_ts, step)
        times = anchor + np.unique(cover) * step
    else:
        keys = _period_keys(wall, kind)
        if side == "start":
            picks = np.unique(keys, return_index=True)[1]
        else:
            picks = keys.size - 1 - np.unique(keys[::-1], return_index=True)[1]
        picks = np.sort(picks)[::k]
        if at_ns is None:
            times = run_ts[picks]
        else:
            day_start = np.floor_divide(wall[picks], DAY_NS) * DAY_NS
            times = _from_wall(day_start + at_ns, tz)
    times = np.unique(times)
    keep = times >= run_ts[0]
    if start_ns is not None:
        keep &= times >= start_ns
    if end_ns is not None:
        keep &= times <= end_ns
    return times[keep]
