"""Strategy.schedule and the calendar rules of mlbacktest.schedule."""

from __future__ import annotations

import datetime as dt

import numpy as np
import polars as pl
import pytest
from helpers import run

import mlbacktest
from mlbacktest import Strategy
from mlbacktest.schedule import RULES, firing_times, parse_at, parse_every

# US-style business days, January to March 2024, without four holidays.
HOLIDAYS = {dt.date(2024, 1, 1), dt.date(2024, 1, 15), dt.date(2024, 2, 19), dt.date(2024, 3, 29)}
BDAYS = [d for d in (dt.date(2024, 1, 1) + dt.timedelta(days=i) for i in range(91))
         if d.weekday() < 5 and d not in HOLIDAYS]


def _ns(values) -> np.ndarray:
    return np.array([np.datetime64(v, "ns") for v in values]).astype(np.int64)


def _dates(ns: np.ndarray) -> list:
    return [np.datetime64(int(t), "ns").astype("datetime64[us]").item() for t in ns]


def _midnight(d: dt.date) -> dt.datetime:
    return dt.datetime(d.year, d.month, d.day)


DAILY = _ns([_midnight(d) for d in BDAYS])


def _d(*ymd: int) -> dt.datetime:
    return dt.datetime(*ymd)


# ----------------------------------------------------------------- calendar rules
def test_month_end_is_the_last_trading_day_of_each_month_in_the_data():
    assert _dates(firing_times(DAILY, rule="month_end")) == [
        _d(2024, 1, 31), _d(2024, 2, 29), _d(2024, 3, 28)]  # 29 March is a holiday


def test_month_and_year_starts_skip_holidays():
    assert _dates(firing_times(DAILY, rule="month_start")) == [
        _d(2024, 1, 2), _d(2024, 2, 1), _d(2024, 3, 1)]
    month_starts = _dates(firing_times(DAILY, rule="month_start"))
    assert _dates(firing_times(DAILY, every="1mo")) == month_starts
    assert _dates(firing_times(DAILY, rule="year_start")) == [_d(2024, 1, 2)]
    assert _dates(firing_times(DAILY, rule="quarter_end")) == [_d(2024, 3, 28)]


def test_week_start_and_end_follow_iso_weeks_and_holidays():
    starts = _dates(firing_times(DAILY, rule="week_start"))
    assert starts[:5] == [_d(2024, 1, 2), _d(2024, 1, 8), _d(2024, 1, 16), _d(2024, 1, 22),
                          _d(2024, 1, 29)]
    assert _d(2024, 2, 20) in starts and len(starts) == 13
    assert _dates(firing_times(DAILY, every="1w")) == starts
    ends = _dates(firing_times(DAILY, rule="week_end"))
    assert ends[0] == _d(2024, 1, 5) and ends[-1] == _d(2024, 3, 28) and len(ends) == 13
    assert _dates(firing_times(DAILY, every="2w")) == starts[::2]


def test_every_day_fires_on_each_trading_day_and_at_a_wall_clock_time():
    assert _dates(firing_times(DAILY, every="1d")) == [_midnight(d) for d in BDAYS]
    at = _dates(firing_times(DAILY, every="1d", at="15:55"))
    assert at == [_midnight(d) + dt.timedelta(hours=15, minutes=55) for d in BDAYS]
    assert _dates(firing_times(DAILY, rule="month_end", at=dt.time(15, 55))) == [
        _d(2024, 1, 31, 15, 55), _d(2024, 2, 29, 15, 55), _d(2024, 3, 28, 15, 55)]


def test_start_and_end_keep_firing_times_inside_the_window():
    got = _dates(firing_times(DAILY, rule="week_start", start="2024-02-01", end=_d(2024, 2, 26)))
    assert got == [_d(2024, 2, 5), _d(2024, 2, 12), _d(2024, 2, 20), _d(2024, 2, 26)]


# Half-hourly bars 09:30 ... 15:30 on three days (naive wall clock).
DAYS3 = [dt.date(2024, 3, 4), dt.date(2024, 3, 5), dt.date(2024, 3, 6)]
INTRADAY = _ns([_midnight(d) + dt.timedelta(hours=9, minutes=30 + 30 * k)
                for d in DAYS3 for k in range(13)])


def _clock(ns: np.ndarray, day: dt.date) -> list[str]:
    return [t.strftime("%H:%M") for t in _dates(ns) if t.date() == day]


def test_duration_grid_is_anchored_at_the_first_timestamp_and_skips_nights():
    hourly = firing_times(INTRADAY, every="1h")
    for d in DAYS3:
        assert _clock(hourly, d) == ["09:30", "10:30", "11:30", "12:30", "13:30", "14:30",
                                     "15:30"]
    assert hourly.size == 21  # nothing between 15:30 and the next 09:30
    grid = firing_times(INTRADAY, every="45m")
    assert _clock(grid, DAYS3[0]) == ["09:30", "10:15", "11:00", "11:45", "12:30", "13:15",
                                      "14:00", "14:45", "15:30"]
    # The grid point after a bar fires, even past the last bar of a day.
    assert _clock(firing_times(INTRADAY, every="1h", at="10:00"), DAYS3[1]) == [
        "10:00", "11:00", "12:00", "13:00", "14:00", "15:00", "16:00"]
    assert np.array_equal(firing_times(INTRADAY, every="90m"),
                          firing_times(INTRADAY, every=np.timedelta64(90, "m")))
    assert np.array_equal(firing_times(INTRADAY, every="90m"),
                          firing_times(INTRADAY, every=dt.timedelta(minutes=90)))


def test_calendar_periods_on_intraday_bars():
    assert [t.strftime("%d %H:%M") for t in _dates(firing_times(INTRADAY, every="1d"))] == [
        "04 09:30", "05 09:30", "06 09:30"]
    assert [t.strftime("%d %H:%M") for t in _dates(firing_times(INTRADAY, rule="day_end"))] == [
        "04 15:30", "05 15:30", "06 15:30"]
    # at before the first bar of the run: dropped (nothing to act on yet).
    assert [t.strftime("%d %H:%M") for t in _dates(firing_times(INTRADAY, every="1d",
                                                                at="08:00"))] == [
        "05 08:00", "06 08:00"]


def test_wall_clock_times_follow_daylight_saving_in_the_feeds_zone():
    zone = "America/New_York"
    days = [dt.date(2024, 3, 7), dt.date(2024, 3, 8), dt.date(2024, 3, 11), dt.date(2024, 3, 12)]
    local = pl.Series([_midnight(d) + dt.timedelta(hours=h) for d in days for h in (9.5, 15.5)])
    utc = local.dt.replace_time_zone(zone).dt.convert_time_zone("UTC").dt.replace_time_zone(None)
    run_ts = utc.cast(pl.Datetime("ns")).cast(pl.Int64).to_numpy()
    got = _dates(firing_times(run_ts, zone, every="1d", at="15:55"))
    assert [t.strftime("%m-%d %H:%M") for t in got] == [  # UTC: EST is -5, EDT -4
        "03-07 20:55", "03-08 20:55", "03-11 19:55", "03-12 19:55"]
    # A 1h grid is a grid of instants: it keeps 09:30 and 15:30 local before and after.
    hourly = firing_times(run_ts, zone, every="1h")
    assert np.array_equal(hourly, run_ts)
    assert [t.strftime("%m-%d %H:%M") for t in _dates(firing_times(run_ts, zone,
                                                                   rule="week_end"))] == [
        "03-08 20:30", "03-12 19:30"]


@pytest.mark.parametrize("kwargs, match", [
    ({}, "exactly one of"),
    ({"every": "1d", "rule": "month_end"}, "exactly one of"),
    ({"every": "1x"}, "cannot read every"),
    ({"every": "0d"}, "positive"),
    ({"every": 5}, "every=5 is a bare number"),
    ({"every": 1.5}, "cannot read every=1.5"),
    ({"every": "1H"}, "units are lower case"),
    ({"every": "1h30"}, "cannot read every='1h30'"),
    ({"every": dt.timedelta(0)}, "positive duration"),
    ({"rule": "month_middle"}, "unknown schedule rule"),
    ({"every": "1d", "at": "25:00"}, "cannot read at"),
    ({"every": "1d", "at": 1555}, "time of day"),
])
def test_bad_arguments_are_value_errors(kwargs, match):
    with pytest.raises(ValueError, match=match):
        firing_times(DAILY, **kwargs)


def test_parsers():
    assert parse_every("30m") == ("duration", 30 * 60 * 10**9)
    assert parse_every("1h30m") == ("duration", 90 * 60 * 10**9)  # the package's one grammar
    assert parse_every("90min") == parse_every("1.5h") == parse_every(dt.timedelta(minutes=90))
    assert parse_every("1d12h") == ("duration", 36 * 3600 * 10**9)  # compound: a fixed grid
    assert parse_every("1mo") == ("month", 1)
    assert parse_every("2W") == ("week", 2)
    assert parse_every("1q") == ("quarter", 1)
    assert parse_at("15:55") == (15 * 60 + 55) * 60 * 10**9
    assert "month_end" in RULES and "week_start" in RULES
    assert firing_times(DAILY[:0], rule="month_end").size == 0


# ----------------------------------------------------------------- in a run
def _frame(stamps: list[dt.datetime], assets=("A", "B")) -> pl.DataFrame:
    rows = []
    for i, t in enumerate(stamps):
        for j, a in enumerate(assets):
            p = 100.0 + i + 10 * j
            rows.append((t, a, p, p + 0.5, p - 0.5, p + 0.25))
    frame = pl.DataFrame(rows, schema=["timestamp", "asset", "open", "high", "low", "close"],
                         orient="row")
    return frame.with_columns(pl.col("timestamp").cast(pl.Datetime("ns")),
                              pl.lit(1e6).alias("volume"))


class Calendar(Strategy):
    def __init__(self, **kwargs):
        self.kwargs = kwargs
        self.log: list = []
        self.planned = None

    def on_start(self):
        self.planned = self.schedule(self.fire, **self.kwargs)

    def on_slice(self, view, context):
        self.log.append(("slice", self.now))

    def fire(self, context):
        assert isinstance(context, dict)
        self.log.append(("fire", self.now))


def test_callbacks_fire_at_the_planned_times_after_the_bars_of_that_timestamp():
    stamps = [_midnight(d) for d in BDAYS[:30]]
    strat = Calendar(rule="week_end")
    run(_frame(stamps), strat)
    fired = [t for kind, t in strat.log if kind == "fire"]
    assert fired == _dates(strat.planned.astype(np.int64))
    assert fired[:3] == [_d(2024, 1, 5), _d(2024, 1, 12), _d(2024, 1, 19)]
    for t in fired:  # each firing comes right after on_slice of its timestamp
        i = strat.log.index(("fire", t))
        assert strat.log[i - 1] == ("slice", t)
    assert not strat.planned.flags.writeable


def test_orders_placed_in_a_callback_between_bars_fill_at_the_next_bar():
    stamps = [_midnight(d) + dt.timedelta(hours=h) for d in BDAYS[:3] for h in (9.5, 15.5)]

    class Trader(Strategy):
        def on_start(self):
            self.fills = []
            self.seen = []
            self.schedule(self.trade, "1d", at="15:55")

        def trade(self, context):
            self.seen.append((self.now, self.history_panel("close", 1).tolist()))
            self.rebalance({"A": 0.1 * len(self.seen)})

        def on_fill(self, fill):
            self.fills.append((fill.timestamp, fill.asset, fill.quantity, fill.price))

    strat = Trader()
    res = run(_frame(stamps), strat, initial_cash=100_000)
    assert [t for t, _ in strat.seen] == [_midnight(d) + dt.timedelta(hours=15, minutes=55)
                                          for d in BDAYS[:3]]
    # At 15:55 the strategy sees the 15:30 bar's closes (index 1: 101.25 and 111.25).
    assert strat.seen[0][1] == [[101.25, 111.25]]
    # The order of the first day's 15:55 fills at the next bar: day 2's 09:30 open (102).
    t, asset, q, price = strat.fills[0]
    assert (t, asset, price) == (_midnight(BDAYS[1]) + dt.timedelta(hours=9.5), "A", 102.0)
    assert q == pytest.approx(10_000 / 101.25)
    assert res.orders.height == 3  # the last one never fills (no bar after it)


def test_runs_are_deterministic():
    stamps = [_midnight(d) + dt.timedelta(hours=h) for d in BDAYS[:10] for h in (9.5, 12, 15.5)]
    frame = _frame(stamps, assets=("A", "B", "C"))

    class Mixed(Strategy):
        def on_start(self):
            self.log = []
            self.schedule(self.one, "150m")  # 09:30, 12:00, 14:30, 17:00 on day 1
            self.schedule(self.two, rule="week_end", at="15:55")
            self.schedule(self.three, "1d", at="12:00")

        def one(self, context):
            self.log.append(("one", self.now))
            k = len(self.log) % 3
            self.rebalance({"A": 0.1 * k, "B": -0.05 * k}, tolerance=0.01)

        def two(self, context):
            self.log.append(("two", self.now))
            self.rebalance({"C": 0.2})

        def three(self, context):
            self.log.append(("three", self.now))

    a, b = Mixed(), Mixed()
    ra, rb = run(frame, a, commission=0.001), run(frame, b, commission=0.001)
    assert a.log == b.log and len(a.log) > 20
    assert ra.fills.equals(rb.fills) and ra.equity.equals(rb.equity)
    # Two schedules at one timestamp run in the order they were made.
    noon = [kind for kind, t in a.log if t == stamps[1]]
    assert noon == ["one", "three"]


def test_scheduling_during_the_run_only_adds_future_times():
    stamps = [_midnight(d) for d in BDAYS[:12]]

    class Late(Strategy):
        def on_start(self):
            self.fired = []
            self.planned = None

        def on_slice(self, view, context):
            if self.now == stamps[5]:
                self.planned = self.schedule(lambda ctx: self.fired.append(self.now), "1d")

    strat = Late()
    run(_frame(stamps), strat)
    assert strat.fired == stamps[6:]
    assert _dates(strat.planned.astype(np.int64)) == stamps[6:]


def test_schedule_arguments_are_checked_at_the_call():
    errors = []

    class Bad(Strategy):
        def on_start(self):
            with pytest.raises(TypeError, match="callable"):
                self.schedule("not a function", "1d")
            with pytest.raises(ValueError, match="exactly one of"):
                self.schedule(print)
            with pytest.raises(ValueError, match="cannot read every"):
                self.schedule(print, "1 fortnight")
            errors.append("ok")

    run(_frame([_midnight(d) for d in BDAYS[:3]]), Bad())
    assert errors == ["ok"]


def test_a_callback_error_names_the_callback_and_time():
    class Boom(Strategy):
        def on_start(self):
            self.schedule(self.explode, rule="month_end")

        def explode(self, context):
            raise KeyError("boom")

    with pytest.raises(KeyError) as info:
        run(_frame([_midnight(d) for d in BDAYS[:30]]), Boom())
    assert any("explode() at timestamp 2024-01-31" in n for n in info.value.__notes__)


def test_tz_aware_feed_schedules_on_its_wall_clock():
    zone = "America/New_York"
    days = [dt.date(2024, 3, 8), dt.date(2024, 3, 11)]
    stamps = [_midnight(d) + dt.timedelta(hours=h) for d in days for h in (9.5, 15.5)]
    frame = _frame(stamps).with_columns(pl.col("timestamp").dt.replace_time_zone(zone))
    fired = []

    class Local(Strategy):
        def on_start(self):
            self.schedule(lambda ctx: fired.append(self.now), "1d", at="15:55")

    mlbacktest.run_backtest(frame, Local())
    assert [(t.strftime("%m-%d %H:%M"), t.utcoffset()) for t in fired] == [
        ("03-08 15:55", dt.timedelta(hours=-5)), ("03-11 15:55", dt.timedelta(hours=-4))]
