"""Golden scenarios for the order types and broker knobs beyond plain market/limit/stop.

Same style as tests/test_golden.py: tiny hand-written bars, every expected
number worked out in the test from the rules of docs/semantics.md. Bars are
``(open, high, low, close)``, bar ``i`` is stamped ``day(i)``; an order placed
in ``on_slice`` at step ``i`` is matched from bar ``i + 1`` on.

The intrabar path (docs/semantics.md, "The price path of a bar") is written
out next to each bar where it matters: ``adaptive`` takes the extreme nearer
the open first (high first on a tie).
"""

from __future__ import annotations

import datetime as dt
import math

import polars as pl
import pytest
from helpers import Recorder, Scripted, bars, day, fill_rows, run

from mlbacktest import BacktestConfig, ConfigError, LookAheadWarning

FLAT = (100, 101, 99, 100)
OCO_REASON = "cancelled: another order of its OCO group filled"
REPLACED_REASON = "cancelled: replaced by a new order"
STRATEGY_REASON = "cancelled by the strategy"


def approx(x):
    return pytest.approx(x, rel=1e-12)


def cash(result) -> list[float]:
    return result.equity["cash"].to_list()


def equity(result) -> list[float]:
    return result.equity["equity"].to_list()


def statuses(result) -> list[str]:
    return result.orders["status"].to_list()


def reasons(result) -> list[str | None]:
    return result.orders["reason"].to_list()


# ============================================================== stop-limit
def test_buy_stop_limit_triggered_intrabar_fills_at_the_stop():
    # day 1 adaptive path: open 100, low 99 (1 away) first, high 106, close 105.
    # The stop 103 trades between 99 and 106 -> triggered at 103; the limit 104
    # already holds at 103 (103 <= 104) -> filled at the stop, 103.
    data = bars({"A": [FLAT, (100, 106, 99, 105), (105, 106, 104, 105)]})
    seen = {}
    strat = Scripted({0: lambda s, v: seen.update(o=s.buy("A", 10, stop_price=103,
                                                          limit_price=104))})
    res = run(data, strat, initial_cash=10_000, commission=0.001)

    c = 0.001 * 10 * 103  # 1.03
    assert fill_rows(res) == [(day(1), "A", 0, 10.0, 103.0, approx(c))]
    o = seen["o"]
    assert (o.order_type, o.status, o.avg_fill_price) == ("stop_limit", "filled", 103.0)
    expected_cash = 10_000 - 10 * 103 - c  # 8968.97
    assert cash(res) == [10_000, approx(expected_cash), approx(expected_cash)]
    assert equity(res) == [10_000, approx(expected_cash + 10 * 105),
                           approx(expected_cash + 10 * 105)]
    assert res.final_equity == approx(10_018.97)


def test_buy_stop_limit_gapped_above_stop_below_limit_fills_at_the_open():
    # day 1 opens at 104: the stop 103 already holds at the open -> triggered at
    # 104; the limit 105 holds at 104 too -> filled at the open, 104.
    data = bars({"A": [FLAT, (104, 106, 103.5, 105)]})
    strat = Scripted({0: lambda s, v: s.buy("A", 10, stop_price=103, limit_price=105)})
    res = run(data, strat, initial_cash=10_000, commission=0.001)

    c = 0.001 * 10 * 104  # 1.04
    assert fill_rows(res) == [(day(1), "A", 0, 10.0, 104.0, approx(c))]
    assert statuses(res) == ["filled"]
    assert res.final_equity == approx(10_000 - 10 * 104 - c + 10 * 105)  # 10008.96


def test_buy_stop_limit_gapped_above_limit_rests_as_a_limit_and_fills_later():
    # day 1 opens at 107 >= stop 103: triggered, but 107 > limit 105 and the
    # bar never comes back to 105 (low 106) -> no fill, the order rests as a
    # buy limit 105. Day 2: open 106 > 105; adaptive path 106, high 107 (1
    # away) first, low 104, close 106 -> the limit trades on the way down to
    # 104 -> filled at 105.
    # Day 3 would trigger the stop again at the open (103.5 >= 103) but the
    # order is done.
    data = bars({"A": [FLAT, (107, 108, 106, 107), (106, 107, 104, 106),
                       (103.5, 104, 103, 103.5)]})
    seen = {}
    strat = Scripted({
        0: lambda s, v: seen.update(o=s.buy("A", 10, stop_price=103, limit_price=105)),
        1: lambda s, v: seen.update(after_gap=(seen["o"].status, seen["o"].filled_quantity)),
    })
    res = run(data, strat, initial_cash=10_000, commission=0.001)

    assert seen["after_gap"] == ("accepted", 0.0)
    c = 0.001 * 10 * 105  # 1.05
    assert fill_rows(res) == [(day(2), "A", 0, 10.0, 105.0, approx(c))]
    expected_cash = 10_000 - 10 * 105 - c  # 8948.95
    assert cash(res) == [10_000, 10_000, approx(expected_cash), approx(expected_cash)]
    assert res.final_equity == approx(expected_cash + 10 * 103.5)  # 9983.95


def test_sell_stop_limit_gapped_below_limit_rests_then_fills_at_the_limit():
    # Mirror image on a long: sell stop 95, limit 94. Day 1 opens at 92 <= 95:
    # triggered, but 92 < 94 and the high 93 never gets back to 94 -> no fill.
    # Day 2: path 93, high 95 (2 away; low 92.5 is 0.5 away -> low first:
    # 93, 92.5, 95, 94) -> reaches 94 on the way up -> filled at 94.
    data = bars({"A": [FLAT, (92, 93, 91, 92), (93, 95, 92.5, 94)]})
    strat = Scripted({0: lambda s, v: s.sell("A", 10, stop_price=95, limit_price=94)},
                     start=lambda s: s.buy("A", 10))
    res = run(data, strat, initial_cash=10_000)

    assert fill_rows(res) == [
        (day(0), "A", 0, 10.0, 100.0, 0.0),
        (day(2), "A", 1, -10.0, 94.0, 0.0),
    ]
    assert cash(res) == [9_000, 9_000, 9_000 + 10 * 94]
    assert equity(res) == [9_000 + 10 * 100, 9_000 + 10 * 92, 9_940]
    assert res.trades["pnl"].to_list() == [10 * (94 - 100)]


# ============================================================== trailing stops
def test_trailing_stop_by_amount_on_a_long_follows_closes_and_fills_at_its_level():
    # Placed at day 0's close 100 with trail_amount 5 -> level 100 - 5 = 95.
    # day 1 close 104 -> level 99; day 2 close 102 < 104 -> stays 99 (never
    # moves down). The intrabar highs (105, 104) are ignored: closes only.
    # day 3: open 101 > 99, low 97 <= 99 -> filled at the level, 99.
    data = bars({"A": [FLAT, (101, 105, 100, 104), (103, 104, 101, 102),
                       (101, 102, 97, 98)]})
    levels = []
    seen = {}

    def watch(s, v):
        levels.append(seen["o"].stop_price)

    strat = Scripted({
        0: lambda s, v: (seen.update(o=s.sell("A", 10, trail_amount=5)), watch(s, v)),
        1: watch,
        2: watch,
        3: watch,
    }, start=lambda s: s.buy("A", 10))
    res = run(data, strat, initial_cash=10_000, commission=0.001)

    assert levels == [100 - 5, 104 - 5, 104 - 5, 104 - 5]
    c_buy, c_sell = 0.001 * 10 * 100, 0.001 * 10 * 99
    assert fill_rows(res) == [
        (day(0), "A", 0, 10.0, 100.0, approx(c_buy)),
        (day(3), "A", 1, -10.0, 99.0, approx(c_sell)),
    ]
    o = seen["o"]
    assert (o.order_type, o.status, o.trail_amount) == ("trailing_stop", "filled", 5.0)
    assert math.isnan(o.trail_percent)
    expected_cash = 10_000 - 10 * 100 - c_buy + 10 * 99 - c_sell  # 9988.01
    assert cash(res)[-1] == approx(expected_cash)
    assert res.final_equity == approx(9_988.01)


def test_trailing_stop_by_percent_on_a_long_gapped_fills_at_the_open():
    # trail_percent 0.05 from day 0's close 100 -> 95; day 1 close 110 ->
    # 110 * 0.95 = 104.5; day 2 close 105 -> stays 104.5 (low 105 > 104.5: no
    # trigger). Day 3 opens at 100 <= 104.5 -> gapped through: filled at 100.
    data = bars({"A": [FLAT, (101, 111, 100, 110), (109, 110, 105, 105),
                       (100, 101, 98, 99)]})
    levels = []
    seen = {}
    strat = Scripted({
        0: lambda s, v: seen.update(o=s.order("A", -10, trail_percent=0.05)),
        1: lambda s, v: levels.append(seen["o"].stop_price),
        2: lambda s, v: levels.append(seen["o"].stop_price),
    }, start=lambda s: s.buy("A", 10))
    res = run(data, strat, initial_cash=10_000)

    assert levels == [110 * (1 - 0.05), 110 * (1 - 0.05)]
    assert fill_rows(res) == [
        (day(0), "A", 0, 10.0, 100.0, 0.0),
        (day(3), "A", 1, -10.0, 100.0, 0.0),
    ]
    assert seen["o"].avg_fill_price == 100.0
    assert res.final_equity == 10_000 == 10_000 - 10 * 100 + 10 * 100


def test_trailing_stop_by_amount_on_a_short():
    # Short 10 at day 0's open 100; buy trailing stop, amount 5, from day 0's
    # close 100 -> level 105. day 1 close 96 -> 101; day 2 close 98 > 96 ->
    # stays 101 (never moves up against the short). day 3: open 99 < 101,
    # high 102 >= 101 -> filled at the level, 101.
    data = bars({"A": [FLAT, (99, 100, 95, 96), (97, 100, 96, 98), (99, 102, 98, 101)]})
    levels = []
    seen = {}
    strat = Scripted({
        0: lambda s, v: seen.update(o=s.buy("A", 10, trail_amount=5)),
        1: lambda s, v: levels.append(seen["o"].stop_price),
        2: lambda s, v: levels.append(seen["o"].stop_price),
    }, start=lambda s: s.sell("A", 10))
    res = run(data, strat, allow_short=True, initial_cash=10_000)

    assert levels == [96 + 5, 96 + 5]
    assert fill_rows(res) == [
        (day(0), "A", 0, -10.0, 100.0, 0.0),
        (day(3), "A", 1, 10.0, 101.0, 0.0),
    ]
    short_cash = 10_000 + 10 * 100  # proceeds credited
    assert cash(res) == [short_cash] * 3 + [short_cash - 10 * 101]
    assert equity(res) == [short_cash - 10 * 100, short_cash - 10 * 96, short_cash - 10 * 98,
                           9_990]
    assert res.trades["pnl"].to_list() == [10 * (100 - 101)]


def test_trailing_stop_by_percent_on_a_short_gapped_fills_at_the_open():
    # 10 % from day 0's close 100 -> 110; day 1 close 90 -> 90 * 1.1 = 99.
    # Day 2 opens at 102 >= 99 -> gapped through: filled at the open, 102.
    data = bars({"A": [FLAT, (95, 96, 89, 90), (102, 104, 101, 103)]})
    seen = {}
    strat = Scripted({
        0: lambda s, v: seen.update(o=s.buy("A", 10, trail_percent=0.1)),
        1: lambda s, v: seen.update(level=seen["o"].stop_price),
    }, start=lambda s: s.sell("A", 10))
    res = run(data, strat, allow_short=True, initial_cash=10_000)

    assert seen["level"] == 90 * (1 + 0.1)
    assert fill_rows(res) == [
        (day(0), "A", 0, -10.0, 100.0, 0.0),
        (day(2), "A", 1, 10.0, 102.0, 0.0),
    ]
    assert res.final_equity == 10_000 + 10 * 100 - 10 * 102 == 9_980


# ============================================================== MOO / MOC
MOO_MOC_BARS = {"A": [(100, 102, 99, 101), (103, 105, 102, 104), (104, 106, 103, 105)]}


def test_market_on_open_and_market_on_close_with_next_open():
    def place(s, v):
        s.order("A", 10, order_type="market_on_open")  # day 1's open 103
        s.order("A", 5, order_type="market_on_close")  # day 1's close 104, not day 2's open

    res = run(bars(MOO_MOC_BARS), Scripted({0: place}), initial_cash=10_000,
              commission=0.001)
    c_moo, c_moc = 0.001 * 10 * 103, 0.001 * 5 * 104
    assert fill_rows(res) == [
        (day(1), "A", 0, 10.0, 103.0, approx(c_moo)),
        (day(1), "A", 1, 5.0, 104.0, approx(c_moc)),
    ]
    assert res.orders["type"].to_list() == ["market_on_open", "market_on_close"]
    expected_cash = 10_000 - 10 * 103 - c_moo - 5 * 104 - c_moc  # 8448.45
    assert cash(res) == [10_000, approx(expected_cash), approx(expected_cash)]
    assert equity(res)[1] == approx(expected_cash + 15 * 104)
    assert res.final_equity == approx(expected_cash + 15 * 105)


def test_market_on_open_and_on_close_ignore_fill_at_close():
    with pytest.warns(LookAheadWarning):
        cfg = BacktestConfig(initial_cash=10_000, fill_at="close")

    def place(s, v):
        s.order("A", 10, order_type="market_on_open")  # still day 1's open 103
        s.order("A", 5, order_type="market_on_close")  # day 1's close 104
        s.buy("A", 1)  # a plain market order: day 0's close 101 (the look-ahead mode)

    res = run(bars(MOO_MOC_BARS), Scripted({0: place}), cfg)
    assert fill_rows(res) == [
        (day(0), "A", 2, 1.0, 101.0, 0.0),
        (day(1), "A", 0, 10.0, 103.0, 0.0),
        (day(1), "A", 1, 5.0, 104.0, 0.0),
    ]
    assert res.final_equity == 10_000 - 101 - 10 * 103 - 5 * 104 + 16 * 105 == 10_029


# ============================================================== brackets
# Entry fills at day 1's open (quiet bar); day 2 reaches both the take-profit
# 105 (high) and the stop 95 (low). The path decides which trades first.
BRACKET_CASES = {
    # path, day-2 bar, winner, winner's price; paths written out:
    "ohlc": ("ohlc", (100, 106, 94, 100), "take_profit", 105.0),  # 100, 106, 94, 100
    "olhc": ("olhc", (100, 106, 94, 100), "stop_loss", 95.0),  # 100, 94, 106, 100
    # |106 - 100| = 6 == |100 - 94| -> a tie: high first
    "adaptive-tie": ("adaptive", (100, 106, 94, 100), "take_profit", 105.0),
    # |108 - 100| = 8 > |100 - 94| = 6 -> low nearer, first: 100, 94, 108, 100
    "adaptive-low-nearer": ("adaptive", (100, 108, 94, 100), "stop_loss", 95.0),
    # |106 - 100| = 6 < |100 - 92| = 8 -> high nearer, first: 100, 106, 92, 100
    "adaptive-high-nearer": ("adaptive", (100, 106, 92, 100), "take_profit", 105.0),
    # priced like ohlc, but the triggered orders fill in submission order:
    # the stop (id 1) was placed before the target (id 2)
    "submission": ("submission", (100, 106, 94, 100), "stop_loss", 95.0),
}


@pytest.mark.parametrize("case", list(BRACKET_CASES))
def test_bracket_stop_and_target_on_one_bar_decided_by_the_intrabar_path(case):
    path, wide_bar, winner, price = BRACKET_CASES[case]
    data = bars({"A": [FLAT, FLAT, wide_bar, FLAT]})
    seen = {}
    strat = Scripted({0: lambda s, v: seen.update(
        b=s.bracket("A", 10, stop_loss=95, take_profit=105))})
    res = run(data, strat, initial_cash=10_000, commission=0.001, intrabar_path=path)

    b = seen["b"]
    assert (b.entry.order_id, b.stop_loss.order_id, b.take_profit.order_id) == (0, 1, 2)
    win = getattr(b, winner)
    lose = b.stop_loss if winner == "take_profit" else b.take_profit
    c_entry, c_exit = 0.001 * 10 * 100, 0.001 * 10 * price
    assert fill_rows(res) == [
        (day(1), "A", 0, 10.0, 100.0, approx(c_entry)),
        (day(2), "A", win.order_id, -10.0, price, approx(c_exit)),
    ]
    assert (win.status, win.avg_fill_price) == ("filled", price)
    assert (lose.status, lose.reason) == ("cancelled", OCO_REASON)
    assert lose.closed == day(2)
    expected_cash = 10_000 - 10 * 100 - c_entry + 10 * price - c_exit
    assert cash(res) == [10_000, approx(10_000 - 1_000 - c_entry), approx(expected_cash),
                         approx(expected_cash)]
    assert res.final_equity == approx(expected_cash)
    assert res.trades["pnl"].to_list() == [10 * (price - 100)]


def test_bracket_children_work_on_the_entry_bars_remaining_path():
    # day 1: the entry fills at the open 100; adaptive path 100, high 101 (1
    # away) first, low 96, close 98. The stop 97 is armed from the open on and
    # trades on the way down to 96 -> filled at 97 on the same bar; the
    # take-profit 110 is cancelled by the OCO link.
    data = bars({"A": [FLAT, (100, 101, 96, 98), FLAT]})
    seen = {}
    strat = Scripted({0: lambda s, v: seen.update(
        b=s.bracket("A", 10, stop_loss=97, take_profit=110))})
    res = run(data, strat, initial_cash=10_000)

    assert fill_rows(res) == [
        (day(1), "A", 0, 10.0, 100.0, 0.0),
        (day(1), "A", 1, -10.0, 97.0, 0.0),
    ]
    assert statuses(res) == ["filled", "filled", "cancelled"]
    assert reasons(res) == [None, None, OCO_REASON]
    assert res.orders["closed_timestamp"].to_list() == [day(1)] * 3
    assert cash(res) == [10_000, 10_000 - 10 * 100 + 10 * 97, 9_970]
    assert res.final_equity == 9_970


def test_bracket_take_profit_on_the_entry_bar_after_a_gap_open():
    # A limit entry at 100 fills at the better open 98 (day 1); the children
    # start from that fill, at 98. ohlc path: 98, high 104, low 97, 99: the
    # take-profit 103 trades on the way up -> 103; the stop 96 is cancelled.
    data = bars({"A": [FLAT, (98, 104, 97, 99), FLAT]})
    strat = Scripted({0: lambda s, v: s.bracket("A", 10, limit_price=100, stop_loss=96,
                                                take_profit=103)})
    res = run(data, strat, initial_cash=10_000, intrabar_path="ohlc")
    assert fill_rows(res) == [
        (day(1), "A", 0, 10.0, 98.0, 0.0),
        (day(1), "A", 2, -10.0, 103.0, 0.0),
    ]
    assert statuses(res) == ["filled", "cancelled", "filled"]
    assert res.final_equity == 10_000 + 10 * (103 - 98) == 10_050


def test_bracket_whose_entry_never_fills_cancels_its_children_with_the_parent_reason():
    # The entry limit 90 is never reached (lows 99); the strategy cancels it at
    # step 2 -> the waiting children are cancelled with it.
    data = bars({"A": [FLAT, FLAT, FLAT, FLAT]})
    seen = {}

    def before(s, v):
        b = seen["b"]
        seen["waiting"] = (b.entry.status, b.stop_loss.status, b.take_profit.status)
        s.cancel(b.entry)

    strat = Scripted({
        0: lambda s, v: seen.update(b=s.bracket("A", 10, limit_price=90, stop_loss=85,
                                                take_profit=110)),
        2: before,
    })
    res = run(data, strat, initial_cash=10_000)

    assert seen["waiting"] == ("accepted", "submitted", "submitted")
    assert res.fills.height == 0
    assert statuses(res) == ["cancelled"] * 3
    parent_reason = "cancelled: its parent order 0 ended without filling"
    assert reasons(res) == [STRATEGY_REASON, parent_reason, parent_reason]
    assert res.orders["closed_timestamp"].to_list() == [day(2)] * 3
    b = seen["b"]
    assert (b.stop_loss.parent_id, b.take_profit.parent_id) == (0, 0)
    assert cash(res) == [10_000] * 4


def test_bracket_whose_entry_is_rejected_cancels_its_children():
    # 200 * 100 = 20_000 > 10_000 of cash: the entry is rejected at day 1.
    data = bars({"A": [FLAT, FLAT, FLAT]})
    res = run(data, Scripted({0: lambda s, v: s.bracket("A", 200, stop_loss=95,
                                                         take_profit=120)}),
              initial_cash=10_000)
    assert res.fills.height == 0
    assert statuses(res) == ["rejected", "cancelled", "cancelled"]
    parent_reason = "cancelled: its parent order 0 ended without filling"
    assert reasons(res) == [
        "insufficient cash: the fill needed 20000.00 but only 10000.00 was available",
        parent_reason, parent_reason]
    assert res.final_equity == 10_000


def test_bracket_entry_cancelled_after_a_partial_fill_activates_children_for_the_filled_part():
    # Volume 1000, cap 0.1: the entry of 250 fills 100 at day 1's open 100;
    # the strategy cancels the rest at step 1. The children now cover 100:
    # day 2 quiet; day 3 path 96, high 97 (1 away), low 94 -> the stop 95
    # trades -> sells 100 at 95; the target is cancelled by the OCO link.
    data = bars({"A": [FLAT, FLAT, FLAT, (96, 97, 94, 95), FLAT]}, volume=1_000)
    seen = {}

    def cancel(s, v):
        s.cancel(seen["b"].entry)
        b = seen["b"]
        seen["children"] = [(o.status, o.quantity) for o in (b.stop_loss, b.take_profit)]

    strat = Scripted({
        0: lambda s, v: seen.update(b=s.bracket("A", 250, stop_loss=95, take_profit=120)),
        1: cancel,
    })
    res = run(data, strat, initial_cash=100_000, max_volume_participation=0.1,
              commission=0.001)
    assert seen["children"] == [("accepted", -100.0), ("accepted", -100.0)]
    c_buy, c_sell = 0.001 * 100 * 100, 0.001 * 100 * 95  # 10, 9.5
    assert fill_rows(res) == [
        (day(1), "A", 0, 100.0, 100.0, approx(c_buy)),
        (day(3), "A", 1, -100.0, 95.0, approx(c_sell)),
    ]
    o = res.orders
    assert statuses(res) == ["cancelled", "filled", "cancelled"]
    assert reasons(res) == [STRATEGY_REASON, None, OCO_REASON]
    assert o["filled_quantity"].to_list() == [100.0, -100.0, 0.0]
    expected_cash = 100_000 - 100 * 100 - c_buy + 100 * 95 - c_sell  # 99480.5
    assert res.final_equity == approx(expected_cash)
    assert res.final_equity == approx(99_480.5)


def test_oco_partial_fill_shrinks_the_other_order():
    # Two entries linked OCO: buy limit 150 @ 99.5 and buy stop 150 @ 101.5,
    # volume cap 0.1 * 1000 = 100 a bar. Day 1 (path 100, 101, 99, 100: tie ->
    # high first) fills 100 of the limit at 99.5 -> the stop shrinks by 100,
    # to 50. Day 2: low 100 > 99.5; path 100, low 100 (0 away) first, high
    # 102 -> the stop fills its 50 at 101.5 -> complete: the limit (50 left)
    # is cancelled.
    data = bars({"A": [FLAT, (100, 101, 99, 100), (100, 102, 100, 101), FLAT]}, volume=1_000)
    seen = {}

    def place(s, v):
        a = s.buy("A", 150, limit_price=99.5)
        b = s.buy("A", 150, stop_price=101.5)
        s.oco(a, b)
        seen.update(a=a, b=b)

    strat = Scripted({0: place, 1: lambda s, v: seen.update(
        shrunk=(seen["b"].quantity, seen["b"].status))})
    res = run(data, strat, initial_cash=100_000, max_volume_participation=0.1)
    assert seen["shrunk"] == (50.0, "accepted")
    assert fill_rows(res) == [
        (day(1), "A", 0, 100.0, 99.5, 0.0),
        (day(2), "A", 1, 50.0, 101.5, 0.0),
    ]
    assert statuses(res) == ["cancelled", "filled"]
    assert reasons(res) == [OCO_REASON, None]
    assert res.orders["filled_quantity"].to_list() == [100.0, 50.0]
    expected_cash = 100_000 - 100 * 99.5 - 50 * 101.5  # 84975
    assert res.final_equity == expected_cash + 150 * 100 == 99_975


# ============================================================== volume cap
def test_partial_fills_under_max_volume_participation():
    # volume 1000 per bar, cap 0.1 -> at most 100 a bar: 250 fills 100, 100, 50
    # at the opens 100, 102, 104 (a market order's remainder fills at each
    # next open).
    data = bars({"A": [FLAT, (100, 101, 99, 101), (102, 103, 101, 103), (104, 105, 103, 105),
                       (105, 106, 104, 105)]}, volume=1_000)
    seen = {}

    def snap(s, v):
        o = seen["o"]
        seen.setdefault("states", []).append((o.status, o.filled_quantity))

    strat = Scripted({0: lambda s, v: seen.update(o=s.buy("A", 250)), 1: snap, 2: snap, 3: snap})
    res = run(data, strat, initial_cash=100_000, commission=0.001,
              max_volume_participation=0.1)

    c1, c2, c3 = 0.001 * 100 * 100, 0.001 * 100 * 102, 0.001 * 50 * 104  # 10, 10.2, 5.2
    assert fill_rows(res) == [
        (day(1), "A", 0, 100.0, 100.0, approx(c1)),
        (day(2), "A", 0, 100.0, 102.0, approx(c2)),
        (day(3), "A", 0, 50.0, 104.0, approx(c3)),
    ]
    assert seen["states"] == [("partially_filled", 100.0), ("partially_filled", 200.0),
                              ("filled", 250.0)]
    avg = (100 * 100 + 100 * 102 + 50 * 104) / 250  # 101.6
    assert seen["o"].avg_fill_price == approx(avg)
    assert res.orders["avg_fill_price"].to_list() == [approx(101.6)]
    assert res.orders["closed_timestamp"].to_list() == [day(3)]
    cash1 = 100_000 - 100 * 100 - c1
    cash2 = cash1 - 100 * 102 - c2
    cash3 = cash2 - 50 * 104 - c3  # 74574.6
    assert cash(res) == [100_000, approx(cash1), approx(cash2), approx(cash3), approx(cash3)]
    assert equity(res)[1:4] == [approx(cash1 + 100 * 101), approx(cash2 + 200 * 103),
                                approx(cash3 + 250 * 105)]
    assert res.final_equity == approx(74_574.6 + 250 * 105)


def test_volume_cap_is_shared_by_the_orders_of_one_asset_on_one_bar():
    # Two buys of 80 with a cap of 100 a bar: the first (lower id) takes 80,
    # the second only the 20 left; its 60 remaining fill on day 2.
    data = bars({"A": [FLAT, FLAT, (101, 102, 100, 101)]}, volume=1_000)

    def place(s, v):
        s.buy("A", 80)
        s.buy("A", 80)

    res = run(data, Scripted({0: place}), initial_cash=100_000, max_volume_participation=0.1)
    assert fill_rows(res) == [
        (day(1), "A", 0, 80.0, 100.0, 0.0),
        (day(1), "A", 1, 20.0, 100.0, 0.0),
        (day(2), "A", 1, 60.0, 101.0, 0.0),
    ]
    assert res.orders["avg_fill_price"].to_list() == [100.0, approx((20 * 100 + 60 * 101) / 80)]
    assert statuses(res) == ["filled", "filled"]


def test_volume_cap_with_fill_at_close_is_refused():
    # A remainder left at the close would have no defined next fill: refused.
    with pytest.raises(ConfigError, match="max_volume_participation cannot be combined"):
        BacktestConfig(initial_cash=100_000, fill_at="close", max_volume_participation=0.1)


# ============================================================== same-bar re-entry
REENTRY_BARS = {"A": [FLAT, (97, 98, 92, 94), (94, 95, 92, 93), (93, 94, 92, 93)]}


@pytest.mark.parametrize("reentry", [False, True])
def test_same_bar_reentry_after_a_stop_out(reentry):
    # Long 10 at day 0's open 100. Step 0: a protective sell stop 95 and a buy
    # limit 93 to re-enter lower. Day 1 adaptive path: 97, high 98 (1 away),
    # low 92, close 94: both trigger at the low; the stop (an exit) goes first
    # -> sold at 95. The limit would fill at 93 on the same bar:
    # - same_bar_reentry=False: it must wait for day 2: open 94 > 93, low 92
    #   -> filled at 93 on day 2;
    # - same_bar_reentry=True: filled at 93 on day 1.
    def place(s, v):
        s.sell("A", 10, stop_price=95)
        s.buy("A", 10, limit_price=93)

    res = run(bars(REENTRY_BARS), Scripted({0: place}, start=lambda s: s.buy("A", 10)),
              initial_cash=10_000, same_bar_reentry=reentry)
    reentry_day = day(1) if reentry else day(2)
    assert fill_rows(res) == [
        (day(0), "A", 0, 10.0, 100.0, 0.0),
        (day(1), "A", 1, -10.0, 95.0, 0.0),
        (reentry_day, "A", 2, 10.0, 93.0, 0.0),
    ]
    after_stop = 10_000 - 10 * 100 + 10 * 95  # 9950
    after_reentry = after_stop - 10 * 93  # 9020
    if reentry:
        assert cash(res) == [9_000, after_reentry, after_reentry, after_reentry]
        assert equity(res) == [10_000, after_reentry + 10 * 94, 9_950, 9_950]
    else:
        assert cash(res) == [9_000, after_stop, after_reentry, after_reentry]
        assert equity(res) == [10_000, 9_950, after_reentry + 10 * 93, 9_950]
    assert res.final_equity == 9_950


def test_no_same_bar_reentry_does_not_block_other_assets_or_a_limit_exit():
    # The stop-out of A on day 1 blocks only A's entries: B's limit fills.
    data = bars({"A": REENTRY_BARS["A"][:3], "B": [FLAT, (100, 101, 95, 97), FLAT]})

    def place(s, v):
        s.sell("A", 10, stop_price=95)
        s.buy("B", 10, limit_price=96)  # day 1: 100, 101, 95 -> 96

    res = run(data, Scripted({0: place}, start=lambda s: s.buy("A", 10)), initial_cash=10_000)
    assert fill_rows(res) == [
        (day(0), "A", 0, 10.0, 100.0, 0.0),
        (day(1), "A", 1, -10.0, 95.0, 0.0),
        (day(1), "B", 2, 10.0, 96.0, 0.0),
    ]


def test_a_limit_exit_does_not_block_same_bar_reentry():
    # Only a stop, stop-limit or trailing stop exit blocks re-entry. Day 1
    # path 100, low 98 (2 away) first, high 103: the buy limit 99 triggers at
    # the low, the sell limit 102 at the high; exits first -> sold at 102,
    # then bought back at 99 on the same bar.
    def place(s, v):
        s.sell("A", 10, limit_price=102)
        s.buy("A", 10, limit_price=99)

    res = run(bars({"A": [FLAT, (100, 103, 98, 100), FLAT]}),
              Scripted({0: place}, start=lambda s: s.buy("A", 10)), initial_cash=10_000)
    assert fill_rows(res) == [
        (day(0), "A", 0, 10.0, 100.0, 0.0),
        (day(1), "A", 1, -10.0, 102.0, 0.0),
        (day(1), "A", 2, 10.0, 99.0, 0.0),
    ]
    assert res.final_equity == 10_000 + 10 * (102 - 100) + 10 * (100 - 99) == 10_030


# ============================================================== latency
def test_latency_bars_one_market_order_skips_a_bar():
    data = bars({"A": [(100, 101, 99, 100), (101, 102, 100, 101), (102, 103, 101, 102),
                       (103, 104, 102, 103)]})
    seen = {}
    strat = Scripted({
        0: lambda s, v: seen.update(o=s.buy("A", 10)),
        1: lambda s, v: seen.update(day1=seen["o"].status),
    })
    res = run(data, strat, initial_cash=10_000, latency_bars=1)
    # sits out day 1 (open 101) -> fills at day 2's open, 102
    assert seen["day1"] == "submitted"
    assert fill_rows(res) == [(day(2), "A", 0, 10.0, 102.0, 0.0)]
    assert cash(res) == [10_000, 10_000, 10_000 - 10 * 102, 8_980]
    assert res.final_equity == 8_980 + 10 * 103


def test_latency_bars_counts_the_assets_own_bars():
    # B has no bar on day 1: the bar it sits out is its day-2 bar.
    data = bars({"A": [FLAT] * 4, "B": [(50, 51, 49, 50), None, (52, 53, 51, 52),
                                        (53, 54, 52, 53)]})
    res = run(data, Scripted({0: lambda s, v: s.buy("B", 10)}), initial_cash=10_000,
              latency_bars=1)
    assert fill_rows(res) == [(day(3), "B", 0, 10.0, 53.0, 0.0)]


@pytest.mark.parametrize("latency, fill_day", [
    ("36h", 2),  # reaches the broker at day 1 12:00: day 1's bar (00:00) is too early
    ("24h", 1),  # reaches it at day 1 00:00, before that timestamp's bars
    (dt.timedelta(hours=23), 1),
    (0, 1),
])
def test_latency_in_time_on_daily_bars(latency, fill_day):
    data = bars({"A": [(100, 101, 99, 100), (101, 102, 100, 101), (102, 103, 101, 102),
                       (103, 104, 102, 103)]})
    res = run(data, Scripted({0: lambda s, v: s.buy("A", 10)}), initial_cash=10_000,
              latency=latency)
    price = 100 + fill_day  # the opens are 100, 101, 102, 103
    assert fill_rows(res) == [(day(fill_day), "A", 0, 10.0, float(price), 0.0)]
    # the arrival at 12:00 adds no row to the equity curve
    assert res.equity["timestamp"].to_list() == [day(i) for i in range(4)]
    assert res.final_equity == 10_000 - 10 * price + 10 * 103


def test_latency_applies_to_limit_orders_too():
    # A limit 100.5 placed at day 0 with latency 36h: day 1's low 100 would
    # fill it, but the order is not at the broker yet; day 2 opens at 100.2
    # -> filled at the better open.
    data = bars({"A": [FLAT, (101, 102, 100, 101), (100.2, 101, 100, 100.5)]})
    res = run(data, Scripted({0: lambda s, v: s.buy("A", 10, limit_price=100.5)}),
              initial_cash=10_000, latency="36h")
    assert fill_rows(res) == [(day(2), "A", 0, 10.0, 100.2, 0.0)]


def test_trailing_stop_follows_the_closes_while_it_waits_for_latency():
    # latency_bars=1. The buy from on_start sits out day 0 and fills at day
    # 1's open 101. The trailing sell (amount 5) is placed at day 0's close
    # 100 -> level 95; it sits out day 1 but its level follows the closes
    # since placement: day 1 closes at 110 -> 105. Day 2: open 106 > 105,
    # low 100 -> filled at 105.
    data = bars({"A": [FLAT, (101, 111, 100, 110), (106, 107, 100, 101), FLAT]})
    seen = {}
    strat = Scripted({
        0: lambda s, v: seen.update(o=s.sell("A", 10, trail_amount=5)),
        1: lambda s, v: seen.update(level=seen["o"].stop_price, status=seen["o"].status),
    }, start=lambda s: s.buy("A", 10))
    res = run(data, strat, initial_cash=10_000, latency_bars=1)
    assert seen["status"] == "submitted"
    assert seen["level"] == 110 - 5
    assert fill_rows(res) == [
        (day(1), "A", 0, 10.0, 101.0, 0.0),
        (day(2), "A", 1, -10.0, 105.0, 0.0),
    ]
    assert res.final_equity == 10_000 + 10 * (105 - 101) == 10_040


def test_bracket_children_with_latency_bars_work_every_bar_after_the_entry():
    # latency_bars=1: the bracket's entry sits out day 1 and fills at day 2's
    # open 100; its children work from there on (day 2 quiet). Day 3: path
    # 100, high 101 (1 away), low 94 -> the stop 96 trades -> 96 on day 3.
    data = bars({"A": [FLAT, FLAT, FLAT, (100, 101, 94, 95), (95, 96, 94, 95), FLAT]})
    res = run(data, Scripted({0: lambda s, v: s.bracket("A", 10, stop_loss=96,
                                                         take_profit=120)}),
              initial_cash=10_000, latency_bars=1)
    assert fill_rows(res) == [
        (day(2), "A", 0, 10.0, 100.0, 0.0),
        (day(3), "A", 1, -10.0, 96.0, 0.0),
    ]
    assert res.final_equity == 10_000 + 10 * (96 - 100) == 9_960


# ============================================================== replace
def test_replace_a_resting_limit_keeps_its_oco_membership():
    # Long 10 at day 0's open 100. Step 0: take-profit sell limit 110 and
    # protective stop 90, linked OCO. Step 1: the target is lowered to 105.
    # Day 2 adaptive path: 104, low 103 (1 away) first, high 106, close 105
    # -> the new limit trades at 105; the stop is cancelled by the OCO link.
    data = bars({"A": [FLAT, (100, 104, 99, 103), (104, 106, 103, 105), FLAT]})
    seen = {}

    def place(s, v):
        seen["tp"] = s.sell("A", 10, limit_price=110)
        seen["sl"] = s.sell("A", 10, stop_price=90)
        seen["group"] = s.oco(seen["tp"], seen["sl"])

    def lower(s, v):
        seen["new"] = s.replace(seen["tp"], limit_price=105)
        seen["after"] = (seen["tp"].status, seen["new"].status, seen["new"].oco_group)

    strat = Scripted({0: place, 1: lower}, start=lambda s: s.buy("A", 10))
    res = run(data, strat, initial_cash=10_000, commission=0.001)

    new = seen["new"]
    assert new.order_id == 3
    assert seen["after"] == ("cancelled", "accepted", seen["group"])
    assert (new.order_type, new.quantity, new.limit_price) == ("limit", -10.0, 105.0)
    c_buy, c_sell = 0.001 * 10 * 100, 0.001 * 10 * 105
    assert fill_rows(res) == [
        (day(0), "A", 0, 10.0, 100.0, approx(c_buy)),
        (day(2), "A", 3, -10.0, 105.0, approx(c_sell)),
    ]
    assert statuses(res) == ["filled", "cancelled", "cancelled", "filled"]
    assert reasons(res) == [None, REPLACED_REASON, OCO_REASON, None]
    o = res.orders
    assert o["closed_timestamp"].to_list() == [day(0), day(1), day(2), day(2)]
    assert o["timestamp"].to_list()[3] == day(1)
    assert seen["sl"].oco_group == new.oco_group == seen["group"]
    expected_cash = 10_000 - 10 * 100 - c_buy + 10 * 105 - c_sell  # 10047.95
    assert res.final_equity == approx(expected_cash)


def test_replace_the_entry_of_a_bracket_moves_its_children():
    # The entry limit 95 is replaced by a limit 99 at step 1; the children now
    # wait for the new entry. Day 2: open 100, high 101 (1 away) first, low 98
    # -> the entry fills at 99 and the stop 97 / target 110 stay working.
    data = bars({"A": [FLAT, FLAT, (100, 101, 98, 100), (100, 102, 96, 97)]})
    seen = {}

    def lower(s, v):
        seen["new"] = s.replace(seen["b"].entry, limit_price=99)

    strat = Scripted({
        0: lambda s, v: seen.update(b=s.bracket("A", 10, limit_price=95, stop_loss=97,
                                                take_profit=110)),
        1: lower,
    })
    res = run(data, strat, initial_cash=10_000)
    assert seen["new"].order_id == 3
    # day 3: 100, high 102 (2 away), low 96 (4 away): the stop 97 trades -> 97
    assert fill_rows(res) == [
        (day(2), "A", 3, 10.0, 99.0, 0.0),
        (day(3), "A", 1, -10.0, 97.0, 0.0),
    ]
    b = seen["b"]
    assert (b.stop_loss.parent_id, b.take_profit.parent_id, seen["new"].parent_id) == (3, 3, None)
    assert statuses(res) == ["cancelled", "filled", "cancelled", "filled"]
    assert reasons(res) == [REPLACED_REASON, None, OCO_REASON, None]
    assert res.final_equity == 10_000 + 10 * (97 - 99) == 9_980


# ============================================================== on_order in a golden run
def test_bracket_status_sequence_on_the_entry_bar():
    # Same bars as test_bracket_children_work_on_the_entry_bars_remaining_path.
    data = bars({"A": [FLAT, (100, 101, 96, 98), FLAT]})
    strat = Recorder({0: lambda s, v: s.bracket("A", 10, stop_loss=97, take_profit=110)})
    run(data, strat, initial_cash=10_000)
    assert strat.orders == [
        (0, "submitted", day(0), ""),
        (0, "accepted", day(0), ""),
        (1, "submitted", day(0), ""),
        (2, "submitted", day(0), ""),
        (0, "filled", day(1), ""),
        (1, "accepted", day(1), ""),
        (2, "accepted", day(1), ""),
        (1, "filled", day(1), ""),
        (2, "cancelled", day(1), OCO_REASON),
    ]
