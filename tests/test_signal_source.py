"""SignalSource: predictions delivered through the heap clock at their own timestamps."""

from __future__ import annotations

import datetime as dt

import polars as pl
import pytest
from helpers import bars, day, run

from mlbacktest import BacktestEngine, DataError, PolarsDataFeed, SignalSource, Strategy

FLAT = (100, 100, 100, 100)


class Listener(Strategy):
    def __init__(self, trade=False):
        self.log = []
        self.trade = trade

    def on_slice(self, view, context):
        self.log.append(("slice", view.timestamp))

    def on_signal(self, event, context):
        self.log.append(("signal", event.timestamp, event.asset, event["pred"]))
        if self.trade and event["pred"] > 0:
            self.buy(event.asset, 1)


def _source(rows, **kw):
    return SignalSource(
        pl.DataFrame(rows, schema=["timestamp", "asset", "pred"], orient="row"), **kw
    )


def _engine(strategy, source, n=4):
    feed = PolarsDataFeed(bars({"A": [FLAT] * n, "B": [FLAT] * n}))
    return BacktestEngine(feed, strategy, sources=source)


def test_signals_arrive_after_the_bars_of_their_timestamp_and_between_bars():
    src = _source([
        (day(1), "B", 0.5),
        (day(1), "A", -0.5),
        (day(1) + dt.timedelta(hours=6), "A", 0.7),
    ])
    strat = Listener()
    _engine(strat, src).run()
    assert strat.log[:6] == [
        ("slice", day(0)),
        ("slice", day(1)),
        ("signal", day(1), "A", -0.5),  # same arrival time: by asset
        ("signal", day(1), "B", 0.5),
        ("signal", day(1) + dt.timedelta(hours=6), "A", 0.7),
        ("slice", day(2)),
    ]


def test_latency_delays_delivery_and_orders_fill_on_a_later_bar():
    src = _source([(day(1), "A", 1.0)], latency="30h")  # arrives day 2, 06:00
    strat = Listener(trade=True)
    res = _engine(strat, src).run()
    assert ("signal", day(2) + dt.timedelta(hours=6), "A", 1.0) in strat.log
    assert res.fills["timestamp"].to_list() == [day(3)]


def test_signal_for_an_unknown_asset_is_a_data_error():
    src = _source([(day(1), "A", 1.0), (day(2), "ZZZ", 1.0)])
    with pytest.raises(DataError, match=r"row 1 names asset 'ZZZ'"):
        _engine(Listener(), src)


def test_duplicate_signal_rows_are_a_data_error_naming_both_rows():
    with pytest.raises(DataError, match=r"rows 0 and 2 \(asset 'A'"):
        _source([(day(1), "A", 1.0), (day(1), "B", 1.0), (day(1), "A", 2.0)])


def test_a_strategy_without_on_signal_is_not_affected_by_sources():
    src = _source([(day(1) + dt.timedelta(hours=6), "A", 1.0)])
    with_source = _engine(Listener(), src).run()
    without = _engine(Listener(), None).run()
    assert with_source.equity.equals(without.equity)


def test_on_signal_exception_keeps_its_type_and_names_the_time():
    class Boom(Strategy):
        def on_signal(self, event, context):
            raise LookupError("bad")

    src = _source([(day(2), "B", 1.0)])
    with pytest.raises(LookupError) as info:
        _engine(Boom(), src).run()
    assert any("on_signal" in n and "2024-01-03" in n and "'B'" in n for n in info.value.__notes__)


def test_run_helper_accepts_sources_through_the_engine():
    # the one-call helper goes through BacktestEngine, which owns the sources
    src = _source([(day(0), "A", 1.0)])
    strat = Listener(trade=True)
    data = bars({"A": [FLAT] * 3})
    res = BacktestEngine(PolarsDataFeed(data), strat, sources=[src]).run()
    assert res.fills["timestamp"].to_list() == [day(1)]
    assert run(data, Strategy()).final_equity == 100_000.0


def test_run_backtest_passes_feed_options_and_sources():
    from mlbacktest import run_backtest

    data = bars({"A": [FLAT] * 3})
    signals = pl.DataFrame({"timestamp": [day(0)], "asset": ["A"], "pred": [2.0]})
    seen = []

    class S(Strategy):
        def on_slice(self, view, context):
            seen.append(float(view.signal("pred")[0]))

    run_backtest(data, S(), signals=signals, signal_columns=["pred"], signal_delay=1)
    assert seen[0] != seen[0] and seen[1:] == [2.0, 2.0]  # NaN on the first bar: delayed a bar
    with pytest.raises(TypeError, match="feed options"):
        run_backtest(PolarsDataFeed(data), S(), signal_delay=1)
