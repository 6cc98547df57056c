"""Several feeds merged by the heap clock; timers scheduled through it."""

from __future__ import annotations

import datetime as dt

import numpy as np
import polars as pl
import pytest

from mlbacktest import BacktestEngine, DataError, PolarsDataFeed, Strategy


def _frame(asset, times, price=100.0, **signals):
    n = len(times)
    data = {
        "timestamp": times,
        "asset": [asset] * n,
        "open": [price] * n,
        "high": [price + 1] * n,
        "low": [price - 1] * n,
        "close": [price] * n,
        "volume": [1000.0] * n,
    }
    data.update(signals)
    return pl.DataFrame(data)


D = dt.datetime(2024, 1, 1)


class Log(Strategy):
    def __init__(self):
        self.calls = []

    def on_slice(self, view, context):
        self.calls.append((view.timestamp, tuple(view.assets), view.signals.shape))


def test_two_feeds_interleave_by_timestamp_with_union_of_assets_and_signals():
    hourly = PolarsDataFeed(_frame("FAST", [D + dt.timedelta(hours=h) for h in range(0, 48, 12)]))
    daily = PolarsDataFeed(
        _frame("SLOW", [D, D + dt.timedelta(days=1)], pred=[0.5, -0.5]), signal_columns=["pred"]
    )
    strat = Log()
    result = BacktestEngine([hourly, daily], strat).run()
    assert [c[0] for c in strat.calls] == [D + dt.timedelta(hours=h) for h in range(0, 48, 12)]
    # at equal timestamps the first feed's bars come first
    assert strat.calls[0][1] == ("FAST", "SLOW")
    assert strat.calls[1][1] == ("FAST",)
    assert all(shape[1] == 1 for _, _, shape in strat.calls)
    assert strat.assets == ("FAST", "SLOW")
    assert len(result.equity) == 4


def test_feed_without_a_signal_column_sees_nan_for_it():
    seen = []

    class S(Strategy):
        def on_market_data(self, event, context):
            seen.append((event.asset, event.signals["pred"]))

    a = PolarsDataFeed(_frame("A", [D]))
    b = PolarsDataFeed(_frame("B", [D], pred=[1.5]), signal_columns=["pred"])
    BacktestEngine([a, b], S()).run()
    assert seen[0][0] == "A" and np.isnan(seen[0][1])
    assert seen[1] == ("B", 1.5)


def test_same_bar_in_two_feeds_is_rejected():
    a = PolarsDataFeed(_frame("A", [D, D + dt.timedelta(days=1)]))
    b = PolarsDataFeed(_frame("A", [D + dt.timedelta(days=1)]))
    with pytest.raises(DataError, match=r"'A'.*2024-01-02.*two feeds"):
        BacktestEngine([a, b], Log())


def test_feeds_in_different_time_zones_are_rejected():
    a = PolarsDataFeed(_frame("A", [D]))
    b = PolarsDataFeed(_frame("B", [D.replace(tzinfo=dt.timezone.utc)]))
    with pytest.raises(DataError, match="time zones"):
        BacktestEngine([a, b], Log())


def test_timer_fires_after_the_bars_of_its_timestamp_and_between_bars():
    events = []

    class Timed(Strategy):
        def on_start(self):
            self.schedule_at(lambda ctx: events.append(("timer1", self.now)), D + dt.timedelta(days=1))
            self.schedule_at(self.midday, D + dt.timedelta(days=1, hours=6))

        def midday(self, ctx):
            events.append(("timer2", self.now))
            self.buy("A", 1)

        def on_slice(self, view, context):
            events.append(("slice", view.timestamp))

    feed = PolarsDataFeed(_frame("A", [D + dt.timedelta(days=i) for i in range(3)]))
    result = BacktestEngine(feed, Timed()).run()
    assert events == [
        ("slice", D),
        ("slice", D + dt.timedelta(days=1)),
        ("timer1", D + dt.timedelta(days=1)),
        ("timer2", D + dt.timedelta(days=1, hours=6)),
        ("slice", D + dt.timedelta(days=2)),
    ]
    # the order placed by the midday timer fills at the next bar's open
    assert result.fills["timestamp"].to_list() == [D + dt.timedelta(days=2)]
    # a timer-only timestamp records no equity row
    assert len(result.equity) == 3


def test_timer_in_the_past_is_rejected():
    class Bad(Strategy):
        def on_slice(self, view, context):
            self.schedule_at(lambda ctx: None, view.timestamp)

    with pytest.raises(ValueError, match="after the current timestamp"):
        BacktestEngine(PolarsDataFeed(_frame("A", [D])), Bad()).run()
