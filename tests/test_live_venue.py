"""Venue mode: orders go to a LiveBroker (the in-process SimulatedVenue), fills come back."""

from __future__ import annotations

import math

import pytest
from conftest import bar_panels, examples
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mlbacktest import BacktestConfig, BacktestEngine, PolarsDataFeed, Strategy
from mlbacktest.errors import ConfigError
from mlbacktest.live import (
    ErrorEvent,
    LiveEngine,
    OrderUpdate,
    ReplayFeed,
    SimulatedVenue,
    VenueFill,
)
from tests.live_strategies import LimitsAndStops, NextOpenMarket, SliceMarket, gappy_bars
from tests.test_live_paper import assert_same_run

CASH = 1_000_000.0
CFG = BacktestConfig(initial_cash=CASH, allow_short=True, history_window=20)


def venue_run(df, strategy, cfg=CFG, venue=None, **kw):
    venue = SimulatedVenue(CASH) if venue is None else venue
    feed = venue.watch(ReplayFeed(df, speed=math.inf))
    run = LiveEngine(feed, strategy, cfg, broker=venue, run_id="t1", **kw)
    return run, run.run(), venue


@pytest.mark.parametrize("cls", [NextOpenMarket, SliceMarket, LimitsAndStops],
                         ids=lambda c: c.__name__)
def test_venue_mode_equals_backtest_with_next_open_fills(cls):
    df = gappy_bars(seed=11)
    bt = BacktestEngine(PolarsDataFeed(df), cls(), CFG).run(progress=False)
    assert bt.fills.height > 5
    run, lv, venue = venue_run(df, cls())
    if cls is LimitsAndStops:
        # the same fills; within a timestamp the venue's order of limit and stop fills
        # of different assets need not be the simulator's (it has no intrabar path)
        key = ["timestamp", "order_id"]
        cols = ["timestamp", "asset", "order_id", "quantity", "price"]
        assert bt.fills.sort(key)[cols].equals(lv.fills.sort(key)[cols])
        assert bt.orders.equals(lv.orders)
        assert math.isclose(bt.final_equity, lv.final_equity, rel_tol=1e-12)
    else:
        assert_same_run(bt, lv)
    # every order the strategy placed reached the venue once, with its deterministic id
    assert venue.duplicates == 0
    ids = [o.client_order_id for o in venue.submissions]
    assert len(ids) == len(set(ids)) and all(i.startswith("t1-") for i in ids)
    # the venue's account and the run's ledger agree
    acct = venue.account()
    final = lv.equity.row(-1, named=True)
    assert math.isclose(acct.cash, final["cash"], rel_tol=0, abs_tol=1e-6)
    pos = lv.fills.group_by("asset").agg(q=__import__("polars").col("quantity").sum())
    held = {a: q for a, q in pos.iter_rows() if q != 0}
    assert held == dict(acct.positions)


@pytest.mark.filterwarnings("ignore::mlbacktest.errors.RejectedOrdersWarning")
def test_venue_rejections_cancels_and_unknown_reports():
    df = gappy_bars(n_assets=3, n_bars=30, seed=2)
    got = []

    class Trader(Strategy):
        def on_start(self):
            self.n = 0

        def on_slice(self, view, context):
            self.n += 1
            if self.n == 2:
                self.buy("A000", 1)       # rejected by the venue
                self.lim = self.order("A001", 1, order_type="limit", limit_price=0.01)
                self.order("A002", 1, order_type="trailing_stop", trail_percent=0.1)
            if self.n == 4:
                self.cancel(self.lim.order_id)

        def on_error(self, event):
            got.append((event.kind, event.order_id))

    venue = SimulatedVenue(CASH, reject_assets=["A000"])
    run, res, venue = venue_run(df, Trader(), venue=venue)
    orders = res.orders
    status = dict(zip(orders["order_id"].to_list(), orders["status"].to_list(), strict=True))
    assert status == {0: "rejected", 1: "cancelled", 2: "rejected"}
    assert ("rejected", "t1-0") in got and ("rejected", "t1-2") in got
    assert [o.client_order_id for o in venue.submissions] == ["t1-0", "t1-1"]
    assert venue.account().open_orders == ()  # the cancel reached the venue
    assert res.fills.height == 0


def test_venue_fills_are_deduplicated_and_unknown_orders_reported():
    df = gappy_bars(n_assets=1, n_bars=6, seed=2)

    class Once(Strategy):
        def on_start(self):
            self.done = False
            self.errors = []

        def on_slice(self, view, context):
            if not self.done:
                self.done = True
                self.buy("A000", 2)

        def on_error(self, event):
            self.errors.append(event.kind)

    class Echo(SimulatedVenue):
        def poll_events(self, timeout=0.0):
            out = super().poll_events(timeout)
            extra = []
            for ev in out:
                if isinstance(ev, VenueFill):
                    extra.append(ev)  # the same execution reported twice
                    extra.append(VenueFill("other-7", "X1", ev.ts, "A000", 1.0, 1.0))
                    extra.append(ErrorEvent(ev.ts, "broker", "rate_limited", "429", attempt=1))
            return out + extra

    strat = Once()
    run, res, venue = venue_run(df, strat, venue=Echo(CASH))
    assert res.fills["quantity"].to_list() == [2.0]
    assert strat.errors == ["venue", "rate_limited"]


def test_venue_mode_refuses_simulator_only_rules():
    df = gappy_bars(n_bars=5)
    venue = SimulatedVenue(CASH)
    for cfg in ({"latency_bars": 1}, {"fill_at": "next_close"},
                {"position_rules": {"stop_loss": 0.1}}):
        with pytest.raises(ConfigError):
            LiveEngine(ReplayFeed(df), Strategy(), cfg, broker=venue)


def test_order_update_statuses_map_to_the_book():
    df = gappy_bars(n_assets=1, n_bars=8, seed=4)

    class Place(Strategy):
        def on_slice(self, view, context):
            if not self.open_orders() and not self.get_position("A000"):
                self.order("A000", 1, order_type="limit", limit_price=0.5, time_in_force="day")

    res = venue_run(df, Place())[1]
    status = res.orders["status"].to_list()
    assert len(status) >= 3 and set(status[:-1]) == {"expired"} and status[-1] == "accepted"
    assert OrderUpdate("x", "expired", 0).status == "expired"


class _RandomMarket(Strategy):
    def __init__(self, seed):
        self.seed = seed

    def on_start(self):
        import random

        self.rnd = random.Random(self.seed)

    def on_market_data(self, event, context):
        r = self.rnd.random()
        if r < 0.3:
            self.buy(event.asset, self.rnd.choice([1, 2, 5]))
        elif r < 0.5:
            self.sell(event.asset, self.rnd.choice([1, 3]))
        elif r < 0.6 and self.get_position(event.asset):
            self.close_position(event.asset)


@settings(max_examples=examples(20), deadline=None,
          suppress_health_check=[HealthCheck.too_slow])
@given(panel=bar_panels(max_ts=25, intraday=True), seed=st.integers(0, 10**6))
def test_property_venue_market_orders_equal_backtest(panel, seed):
    df = panel.frame()
    bt = BacktestEngine(PolarsDataFeed(df), _RandomMarket(seed), CFG).run(progress=False)
    _, lv, venue = venue_run(df, _RandomMarket(seed))
    assert_same_run(bt, lv)
    assert venue.duplicates == 0
