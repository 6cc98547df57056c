"""Edge cases of the broker and the ledger: float residue, partial parents, trailing legs.

Every scenario here is a regression test of a case where a quantity or a
level was lost to float arithmetic or to the order of events.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pytest
from helpers import Scripted, bars, run

from mlbacktest import BacktestConfig
from mlbacktest._portfolio import QTY_RTOL, round_whole, round_whole_array
from mlbacktest.results.trades import QTY_RTOL as RESULTS_QTY_RTOL

FLAT = (10.0, 10.0, 10.0, 10.0)


# ---------------------------------------------------------------- one tolerance
def test_results_use_the_ledger_tolerance() -> None:
    assert RESULTS_QTY_RTOL == QTY_RTOL == 1e-9


@pytest.mark.parametrize(
    ("quantity", "expected"),
    [
        (48.99999999999999, 49.0),  # 49 * 1.31 / 1.31
        (-0.9999999999999999, -1.0),  # -49 * (1 / 49)
        (99.99999999999999, 100.0),
        (2.5, 2.0),  # a real fraction truncates toward zero
        (-2.5, -2.0),
        (0.4, 0.0),
        (7.0, 7.0),
        (1e12 - 1e-4, 1e12),  # within the relative tolerance of a whole number
        (1e6 - 1e-2, 1e6 - 1.0),  # outside it: truncated
    ],
)
def test_round_whole(quantity: float, expected: float) -> None:
    assert round_whole(quantity) == expected
    assert round_whole_array(np.array([quantity]))[0] == expected


# ---------------------------------------------------------------- item: partial parent
def test_bracket_child_covers_a_partial_parent_fill_with_whole_shares() -> None:
    """49 ordered, 1 filled under a volume cap, parent cancelled: the stop covers 1 share."""
    data = bars({"A": [FLAT, FLAT, FLAT, FLAT]}, volume=10.0)
    legs: dict[str, Any] = {}

    def place(s: Scripted, view: Any) -> None:
        legs["b"] = s.bracket("A", 49, stop_loss=5.0)

    def cancel(s: Scripted, view: Any) -> None:
        assert s.get_position("A") == 1.0
        s.cancel(legs["b"].entry)

    strat = Scripted({0: place, 1: cancel})
    result = run(data, strat, fractional=False, max_volume_participation=0.1)
    stop = legs["b"].stop_loss
    assert legs["b"].entry.status == "cancelled"
    assert stop.quantity == -1.0
    assert stop.status == "accepted"  # working: the share is protected
    assert result.orders.filter(result.orders["order_id"] == stop.order_id)["status"][0] \
        == "accepted"


def test_scaled_child_keeps_its_share_with_whole_units() -> None:
    """A child that is not the parent's mirror scales by filled / ordered without losing a unit."""
    data = bars({"A": [FLAT, FLAT, FLAT, FLAT]}, volume=10.0)
    kept: dict[str, Any] = {}

    def place(s: Scripted, view: Any) -> None:
        parent = s.buy("A", 49)
        kept["parent"] = parent
        kept["child"] = s.order("A", -98, limit_price=20.0, parent=parent)

    def cancel(s: Scripted, view: Any) -> None:
        s.cancel(kept["parent"])

    run(data, Scripted({0: place, 1: cancel}), fractional=False, max_volume_participation=0.1)
    assert kept["child"].quantity == -2.0  # -98 x 1 / 49
    assert kept["child"].status == "accepted"


# ---------------------------------------------------------------- item: sizing residue
def test_order_target_value_does_not_lose_a_share_to_residue() -> None:
    close = 1.31
    assert math.trunc(49 * close / close) == 48  # the float residue this guards against
    data = bars({"A": [(close, close, close, close)] * 3})

    def step(s: Scripted, view: Any) -> None:
        s.order_target_value("A", 49 * close)

    result = run(data, Scripted({0: step}), fractional=False)
    assert result.fills["quantity"].to_list() == [49.0]


def test_order_target_percent_and_buy_percent_do_not_lose_a_share() -> None:
    close = 1.36
    data = bars({"A": [(close, close, close, close)] * 3, "B": [(close, close, close, close)] * 3})

    def step(s: Scripted, view: Any) -> None:
        equity = s.get_equity()
        s.order_target_percent("A", 100 * close / equity)
        s.buy_percent("B", 100 * close / equity)

    result = run(data, Scripted({0: step}), fractional=False, initial_cash=10_000.0)
    assert result.fills["quantity"].to_list() == [100.0, 100.0]


def test_rebalance_does_not_lose_a_share() -> None:
    close = 1.31
    data = bars({"A": [(close, close, close, close)] * 3})

    def step(s: Scripted, view: Any) -> None:
        s.rebalance({"A": 49 * close / s.get_equity()})

    result = run(data, Scripted({0: step}), fractional=False, initial_cash=1_000.0)
    assert result.fills["quantity"].to_list() == [49.0]


# ---------------------------------------------------------------- item: one "flat"
def test_rounding_dust_is_flat_everywhere() -> None:
    """0.1 + 0.2 - 0.3 leaves no position: it does not count under max_open_positions."""
    assert 0.1 + 0.2 - 0.3 != 0.0
    data = bars({"A": [FLAT] * 6, "B": [FLAT] * 6})
    seen: dict[str, Any] = {}

    def buy1(s: Scripted, view: Any) -> None:
        s.buy("A", 0.1)

    def buy2(s: Scripted, view: Any) -> None:
        s.buy("A", 0.2)

    def sell(s: Scripted, view: Any) -> None:
        s.sell("A", 0.3)

    def other(s: Scripted, view: Any) -> None:
        seen["position"] = s.get_position("A")
        seen["positions"] = s.get_positions()
        seen["order"] = s.buy("B", 1.0)

    result = run(data, Scripted({0: buy1, 1: buy2, 2: sell, 3: other}), max_open_positions=1)
    assert seen["position"] == 0.0  # exactly: the ledger snapped the residue
    assert seen["positions"] == {}
    assert seen["order"].status == "filled"
    assert result.open_positions["asset"].to_list() == ["B"]


def test_a_sale_leaving_flat_residue_is_not_a_short_in_a_cash_account() -> None:
    """Selling 0.1 + 0.2 against a position of 0.3 closes it; the residue is not a short."""
    assert 0.3 - (0.1 + 0.2) < 0.0
    data = bars({"A": [FLAT] * 4})
    seen: dict[str, Any] = {}

    def buy(s: Scripted, view: Any) -> None:
        s.buy("A", 0.3)

    def sell(s: Scripted, view: Any) -> None:
        seen["order"] = s.sell("A", 0.1 + 0.2)

    def look(s: Scripted, view: Any) -> None:
        seen["position"] = s.get_position("A")

    run(data, Scripted({0: buy, 1: sell, 2: look}))  # a cash account: no shorting
    assert seen["order"].status == "filled"
    assert seen["position"] == 0.0


def test_a_real_small_remainder_stays_open() -> None:
    """The tolerance is relative: 1e-6 left of a 0.3 position is a position."""
    data = bars({"A": [FLAT] * 4})

    def buy(s: Scripted, view: Any) -> None:
        s.buy("A", 0.3)

    def sell(s: Scripted, view: Any) -> None:
        s.sell("A", 0.3 - 1e-6)

    result = run(data, Scripted({0: buy, 1: sell}))
    assert result.open_positions["quantity"].to_list() == pytest.approx([1e-6])


# ---------------------------------------------------------------- item: trailing leg
def test_bracket_trailing_leg_trails_from_the_entry_fill() -> None:
    """A limit entry at 95 after a rally to 120 does not exit at once: the leg trails from 95."""
    data = bars({"A": [
        (100, 100, 100, 100),
        (110, 120, 110, 120),  # the entry waits while price rallies
        (118, 118, 94, 95),  # the limit entry fills at 95
        (96, 97, 94, 96),
        (96, 97, 84, 85),  # 10 % under the best close since the fill (96): 86.4
    ]})
    legs: dict[str, Any] = {}

    def place(s: Scripted, view: Any) -> None:
        legs["b"] = s.bracket("A", 10, limit_price=95.0, trail_percent=0.1)

    run(data, Scripted({0: place}), config=BacktestConfig())
    entry, stop = legs["b"].entry, legs["b"].stop_loss
    assert entry.status == "filled" and entry.avg_fill_price == 95.0
    assert stop.status == "filled"
    assert stop.closed == data["timestamp"][4]
    assert stop.avg_fill_price == pytest.approx(96 * 0.9)


def test_waiting_trailing_leg_starts_from_its_parents_fill() -> None:
    """While the entry waits the leg's level does not move; at the fill it is set from there."""
    data = bars({"A": [
        (100, 100, 100, 100),
        (110, 120, 110, 120),
        (118, 118, 94, 95),
    ]})
    legs: dict[str, Any] = {}
    levels: list[float] = []

    def place(s: Scripted, view: Any) -> None:
        legs["b"] = s.bracket("A", 10, limit_price=95.0, trail_amount=5.0)

    def look(s: Scripted, view: Any) -> None:
        levels.append(legs["b"].stop_loss.stop_price)

    run(data, Scripted({0: place, 1: look, 2: look}))
    # not trailing the rally to 120 while waiting; from the fill at 95 (close 95): 90
    assert levels[1] == 90.0
    assert legs["b"].stop_loss.status == "accepted"


# ---------------------------------------------------------------- OCO groups
def _oco_run(steps: dict[int, Any], data: Any, **knobs: Any) -> dict[str, Any]:
    kept: dict[str, Any] = {}

    def wrap(fn: Any) -> Any:
        return lambda s, v: fn(s, kept)

    run(data, Scripted({k: wrap(f) for k, f in steps.items()}), **knobs)
    return kept


def test_oco_member_cancelled_by_the_strategy_leaves_the_others_working() -> None:
    data = bars({"A": [(100, 100, 100, 100)] * 2 + [(90, 90, 79, 85)]})

    def place(s: Scripted, k: dict[str, Any]) -> None:
        k["a"], k["b"] = s.buy("A", 1, limit_price=90.0), s.buy("A", 1, limit_price=80.0)
        s.oco(k["a"], k["b"])

    kept = _oco_run({0: place, 1: lambda s, k: s.cancel(k["a"])}, data)
    assert kept["a"].status == "cancelled" and kept["a"].reason == "cancelled by the strategy"
    assert kept["b"].status == "filled" and kept["b"].avg_fill_price == 80.0


def test_oco_member_rejected_leaves_the_others_working() -> None:
    data = bars({"A": [(100, 100, 100, 100), (100, 100, 89, 95)]})

    def place(s: Scripted, k: dict[str, Any]) -> None:
        k["a"] = s.buy("A", 1_000, limit_price=95.0)  # cash cannot pay: rejected at the fill
        k["b"] = s.buy("A", 1, limit_price=90.0)
        s.oco(k["a"], k["b"])

    kept = _oco_run({0: place}, data, initial_cash=1_000)
    assert kept["a"].status == "rejected" and "insufficient cash" in kept["a"].reason
    assert kept["b"].status == "filled" and kept["b"].avg_fill_price == 90.0


def test_oco_member_expired_leaves_the_others_working() -> None:
    data = bars({"A": [(100, 100, 100, 100)] * 3 + [(90, 90, 84, 86)]})

    def place(s: Scripted, k: dict[str, Any]) -> None:
        k["a"] = s.buy("A", 1, limit_price=80.0, time_in_force="day")
        k["b"] = s.buy("A", 1, limit_price=85.0)
        s.oco(k["a"], k["b"])

    kept = _oco_run({0: place}, data)
    assert kept["a"].status == "expired"
    assert kept["b"].status == "filled" and kept["b"].avg_fill_price == 85.0


def test_oco_partial_fill_shrinks_the_others_and_a_complete_fill_cancels_them() -> None:
    data = bars({"A": [(100, 101, 99, 100)] * 4}, volume=50.0)  # 5 units per bar at 10 %
    seen: list[tuple[float, str]] = []

    def place(s: Scripted, k: dict[str, Any]) -> None:
        k["a"], k["b"] = s.buy("A", 10, limit_price=100.0), s.buy("A", 10, limit_price=100.0)
        s.oco(k["a"], k["b"])

    def look(s: Scripted, k: dict[str, Any]) -> None:
        seen.append((k["b"].quantity, k["b"].status))

    kept = _oco_run({0: place, 1: look, 2: look}, data, max_volume_participation=0.1)
    assert kept["a"].status == "filled" and kept["a"].filled_quantity == 10.0
    # after a's first 5: b shrank by 5; after a's last 5: b cancelled
    assert seen == [(5.0, "accepted"), (5.0, "cancelled")]
    assert kept["b"].reason == "cancelled: another order of its OCO group filled"


def test_bracket_leg_cancelled_by_the_strategy_leaves_the_other_leg_working() -> None:
    data = bars({"A": [(100, 100, 100, 100)] * 3 + [(100, 111, 100, 110)]})

    def place(s: Scripted, k: dict[str, Any]) -> None:
        k["b"] = s.bracket("A", 1, stop_loss=90.0, take_profit=110.0)

    kept = _oco_run({0: place, 2: lambda s, k: s.cancel(k["b"].stop_loss)}, data)
    assert kept["b"].stop_loss.status == "cancelled"
    assert kept["b"].take_profit.status == "filled"
