"""zipline's ``date_rules``, ``time_rules`` and ``calendars`` for ``schedule_function``."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd  # type: ignore[import-untyped,unused-ignore]

from mlbacktest.errors import PortingError

__all__ = ["date_rules", "time_rules", "calendars", "DateRule", "TimeRule", "firing_sessions"]


class DateRule:
    """The sessions a scheduled function runs on: the ``n``-th (or ``n``-th last) of a period.

    ``period`` is ``"day"``, ``"week"`` (ISO weeks) or ``"month"``; ``from_end``
    counts from the period's last session. Periods are those of the exchange
    calendar's sessions, as in zipline, so the first week of a run that
    starts on a Wednesday has no ``week_start``.
    """

    def __init__(self, period: str, offset: int = 0, from_end: bool = False) -> None:
        if isinstance(offset, bool) or not isinstance(offset, (int, np.integer)) or offset < 0:
            raise ValueError(f"days_offset must be a whole number >= 0, got {offset!r}")
        limit = {"day": 1, "week": 5, "month": 23}[period]
        if offset >= limit:
            raise ValueError(f"days_offset must be < {limit} for a {period} rule, got {offset}")
        self.period = period
        self.offset = int(offset)
        self.from_end = from_end

    def sessions(self, calendar_sessions: pd.DatetimeIndex) -> set[Any]:
        """The dates (``datetime.date``) among ``calendar_sessions`` the rule fires on."""
        s = pd.Series(calendar_sessions, index=calendar_sessions)
        if self.period == "day":
            return {d.date() for d in calendar_sessions}
        if self.period == "week":
            iso = calendar_sessions.isocalendar()
            keys = [iso["year"].to_numpy(), iso["week"].to_numpy()]
        else:
            keys = [calendar_sessions.year, calendar_sessions.month]
        nth = -self.offset - 1 if self.from_end else self.offset
        picked = s.groupby(keys).nth(nth)
        return {d.date() for d in pd.DatetimeIndex(picked.to_numpy())}

    def __repr__(self) -> str:
        end = "end" if self.from_end else "start"
        return f"date_rules.{self.period}_{end}(days_offset={self.offset})"


class TimeRule:
    """A time of day: ignored in daily mode, as zipline does (functions run at the bar).

    In minute mode ``market_open`` fires at the session's first minute plus
    ``offset`` minus one minute (``market_open()`` and ``minutes=1``: the
    first minute), ``market_close`` at the session's last minute minus
    ``offset`` (``market_close()``: the last minute but one), and
    ``every_minute`` at the session's first minute (zipline runs every
    scheduled function at most once per day).
    """

    def __init__(self, anchor: str, offset: pd.Timedelta) -> None:
        self.anchor = anchor
        self.offset = offset

    def __repr__(self) -> str:
        return f"time_rules.{self.anchor}(offset={self.offset})"


def _offset(offset: Any, hours: int | None, minutes: int | None) -> pd.Timedelta:
    """zipline's offset: one minute when none is given, else between 1 minute and 12 hours."""
    if offset is not None and (hours is not None or minutes is not None):
        raise ValueError("give either offset or hours/minutes, not both")
    if offset is None and hours is None and minutes is None:
        return pd.Timedelta(minutes=1)
    if offset is not None:
        td = pd.Timedelta(offset)
    else:
        td = pd.Timedelta(hours=hours or 0, minutes=minutes or 0)
    if not pd.Timedelta(minutes=1) <= td <= pd.Timedelta(hours=12):
        raise ValueError(f"offset must be in between 1 minute and 12 hours, inclusive; got {td}")
    if td % pd.Timedelta(minutes=1):
        raise PortingError(f"time rule offset {td} is not a whole number of minutes: the "
                           "zipline shim fires scheduled functions at whole minutes")
    return td


class date_rules:  # noqa: N801 - zipline's name
    """zipline's date rules: ``every_day``, ``week_start/end``, ``month_start/end``."""

    @staticmethod
    def every_day() -> DateRule:
        """Every session."""
        return DateRule("day")

    @staticmethod
    def week_start(days_offset: int = 0) -> DateRule:
        """The ``days_offset``-th session of each week (0: the first)."""
        return DateRule("week", days_offset)

    @staticmethod
    def week_end(days_offset: int = 0) -> DateRule:
        """The ``days_offset``-th session before the last of each week (0: the last)."""
        return DateRule("week", days_offset, from_end=True)

    @staticmethod
    def month_start(days_offset: int = 0) -> DateRule:
        """The ``days_offset``-th session of each month (0: the first)."""
        return DateRule("month", days_offset)

    @staticmethod
    def month_end(days_offset: int = 0) -> DateRule:
        """The ``days_offset``-th session before the last of each month (0: the last)."""
        return DateRule("month", days_offset, from_end=True)


class time_rules:  # noqa: N801 - zipline's name
    """zipline's time rules; a daily run ignores them, as zipline does."""

    @staticmethod
    def market_open(offset: Any = None, hours: int | None = None,
                    minutes: int | None = None) -> TimeRule:
        """``offset`` (default 1 minute) after the open, counted so that 1 minute is the
        first minute (ignored in daily mode)."""
        return TimeRule("market_open", _offset(offset, hours, minutes))

    @staticmethod
    def market_close(offset: Any = None, hours: int | None = None,
                     minutes: int | None = None) -> TimeRule:
        """``offset`` (default 1 minute) before the session's last minute (ignored in
        daily mode)."""
        return TimeRule("market_close", _offset(offset, hours, minutes))

    @staticmethod
    def every_minute() -> TimeRule:
        """Every minute; zipline fires a function at most once a day, so at the session's
        first minute (in daily mode: the bar)."""
        return TimeRule("every_minute", pd.Timedelta(0))


class calendars:  # noqa: N801 - zipline's name
    """zipline's calendar names for ``schedule_function(calendar=...)``."""

    US_EQUITIES = "XNYS"
    US_FUTURES = "us_futures"


def firing_sessions(rule: DateRule, calendar_sessions: pd.DatetimeIndex) -> set[Any]:
    """The dates a rule fires on among ``calendar_sessions``."""
    if not isinstance(rule, DateRule):
        raise PortingError(
            f"schedule_function date rule {rule!r} is not one of zipline's date_rules "
            "(every_day, week_start, week_end, month_start, month_end): use "
            "mlbacktest.Strategy.schedule(fn, rule=...) for other calendars")
    return rule.sessions(calendar_sessions)
