"""Kill switches: a limit hit cancels the open orders, tells on_error and stops the run."""

from __future__ import annotations

import math

import numpy as np
import pytest

from mlbacktest import Strategy
from mlbacktest.errors import ConfigError
from mlbacktest.live import KillSwitches, LiveEngine, ReplayFeed, SimulatedVenue
from tests.test_live_paper import _batch, _Batches

SEC = 10**9


def falling(n=10):
    # asset A falls 10 a bar from 100; B flat
    return [_batch(k * 10 * SEC, [(0, 100 - 10 * k, 101 - 10 * k, 99 - 10 * k, 100 - 10 * k),
                                  (1, 50, 51, 49, 50)]) for k in range(n)]


class Recorder(Strategy):
    def on_start(self):
        self.errors, self.ended, self.bars = [], False, []

    def on_slice(self, view, context):
        self.bars.append(int(view.ts))

    def on_error(self, event):
        self.errors.append(event)

    def on_end(self):
        self.ended = True


def test_max_loss_fraction_stops_the_run_and_cancels_open_orders():
    class Loser(Recorder):
        def on_slice(self, view, context):
            super().on_slice(view, context)
            if len(self.bars) == 1:
                self.buy("A", 50)  # fills at 90 on the next bar
                self.order("B", 1, order_type="limit", limit_price=1.0)  # never fills

    s = Loser()
    res = LiveEngine(_Batches(falling()), s, {"initial_cash": 10_000},
                     kill_switches={"max_loss_fraction": 0.1}).run()
    # equity: 10_000 - 50 * 90 + 50 * close; loss >= 1000 once close <= 70 (bar 3)
    assert s.bars == [0, 10 * SEC, 20 * SEC, 30 * SEC]
    [ev] = s.errors
    assert ev.kind == "kill_switch" and ev.source == "kill_switch" and ev.ts == 30 * SEC
    assert "max_loss_fraction" in ev.message
    assert s.ended
    assert res.equity.height == 4
    assert res.orders["status"].to_list() == ["filled", "cancelled"]


def test_max_loss_absolute():
    class Loser(Recorder):
        def on_slice(self, view, context):
            super().on_slice(view, context)
            if len(self.bars) == 1:
                self.buy("A", 10)

    s = Loser()
    LiveEngine(_Batches(falling()), s, {"initial_cash": 10_000},
               kill_switches=KillSwitches(max_loss=250.0)).run()
    # filled at 90 on bar 1; loss = 10 * (90 - close): 200 at bar 3, 300 at bar 4
    assert s.bars[-1] == 40 * SEC and [e.kind for e in s.errors] == ["kill_switch"]


def test_max_orders_per_minute_counts_bar_time():
    class Busy(Recorder):
        def on_slice(self, view, context):
            super().on_slice(view, context)
            self.order("B", 1, order_type="limit", limit_price=1.0)
            self.order("B", 1, order_type="limit", limit_price=1.0)

    s = Busy()
    res = LiveEngine(_Batches(falling(20)), s, {"initial_cash": 10_000},
                     kill_switches={"max_orders_per_minute": 11}).run()
    # bars 10 s apart: the minute up to bar k holds bars k-5..k, 2 orders each -> 12 at bar 5
    assert s.bars[-1] == 50 * SEC
    assert "12 orders" in s.errors[0].message
    assert set(res.orders["status"].to_list()) == {"cancelled"}


def test_max_position_at_a_venue_cancels_there_and_sends_nothing_more():
    df_batches = falling(12)

    class Stacker(Recorder):
        def on_slice(self, view, context):
            super().on_slice(view, context)
            self.buy("B", 1)
            self.order("B", 1, order_type="limit", limit_price=1.0)

    venue = SimulatedVenue(10_000.0)
    s = Stacker()
    res = LiveEngine(venue.watch(_Batches(df_batches)), s, {"initial_cash": 10_000.0},
                     broker=venue, kill_switches={"max_position": {"B": 3}}).run()
    assert venue.positions["B"] == 4 and res.fills.height == 4
    assert venue.account().open_orders == ()  # the limit orders were cancelled there
    # the orders of the stopping timestamp never left
    assert len(venue.submissions) == 2 * 4
    assert s.errors[0].kind == "kill_switch" and "B holds 4" in s.errors[0].message


def test_max_position_value():
    class Buyer(Recorder):
        def on_slice(self, view, context):
            super().on_slice(view, context)
            self.buy("B", 10)

    s = Buyer()
    LiveEngine(_Batches(falling()), s, {"initial_cash": 100_000},
               kill_switches={"max_position_value": 1_200}).run()
    assert "max_position_value" in s.errors[0].message and s.bars[-1] == 30 * SEC


def test_kill_switch_arguments_are_checked():
    with pytest.raises(ConfigError, match="max_loss"):
        KillSwitches(max_loss=-1)
    with pytest.raises(ConfigError, match="unknown kill"):
        KillSwitches.coerce({"max_drawdown": 0.1})
    with pytest.raises(ConfigError, match="max_orders_per_minute"):
        KillSwitches(max_orders_per_minute=0)
    with pytest.raises(ConfigError, match="max_batch"):
        LiveEngine(_Batches(falling()), Strategy(), kill_switches={"max_loss": 1.0}, max_batch=5)
    with pytest.raises(ConfigError, match="'Z'"):
        LiveEngine(_Batches(falling()), Strategy(), kill_switches={"max_position": {"Z": 1}}).run()
    assert np is not None and math is not None and ReplayFeed is not None
