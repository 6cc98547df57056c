"""Golden scenarios: tiny hand-written bars, expected numbers computed by hand.

Every scenario writes its arithmetic out (``expected_cash = 10_000 - 10 * 102 ...``)
from the rules of docs/semantics.md, so a failure points at a rule, not at a
number copied from an earlier run. Bars are ``(open, high, low, close)`` and
bar ``i`` is stamped ``day(i)`` (daily from 2024-01-01).
"""

from __future__ import annotations

import math

import pytest
from helpers import Scripted, bars, day, fill_rows, run

from mlbacktest import (
    BacktestConfig,
    LookAheadWarning,
    OrderError,
    PerShareCommission,
    Strategy,
)

FLAT = (100, 101, 99, 100)


def approx(x):
    return pytest.approx(x, rel=1e-12)


def cash(result) -> list[float]:
    return result.equity["cash"].to_list()


def equity(result) -> list[float]:
    return result.equity["equity"].to_list()


def statuses(result) -> list[str]:
    return result.orders["status"].to_list()


# --------------------------------------------------------------------------- 1
def test_buy_and_hold():
    data = bars({"A": [(100, 101, 99, 100), (102, 104, 101, 103), (105, 106, 104, 105),
                       (104, 108, 103, 107)]})
    # on_start orders carry the first timestamp and fill at the first bar's open.
    strat = Scripted(start=lambda s: s.buy("A", 10))
    res = run(data, strat, initial_cash=10_000)

    assert fill_rows(res) == [(day(0), "A", 0, 10.0, 100.0, 0.0)]
    expected_cash = 10_000 - 10 * 100
    assert cash(res) == [expected_cash] * 4
    assert res.equity["positions_value"].to_list() == [10 * 100, 10 * 103, 10 * 105, 10 * 107]
    assert equity(res) == [expected_cash + 10 * c for c in (100, 103, 105, 107)]
    assert res.final_equity == 9_000 + 10 * 107 == 10_070
    assert res.trades.height == 0
    assert res.open_positions["quantity"].to_list() == [10.0]
    assert statuses(res) == ["filled"]


# --------------------------------------------------------------------------- 2
def test_round_trip_with_percentage_commission():
    data = bars({"A": [(100, 101, 99, 100), (102, 103, 101, 102), (103, 105, 102, 104),
                       (104, 106, 103, 105)]})
    strat = Scripted({0: lambda s, v: s.buy("A", 10), 2: lambda s, v: s.sell("A", 10)})
    res = run(data, strat, initial_cash=10_000, commission=0.001)

    c_buy = 0.001 * 10 * 102  # 1.02, at day 1's open
    c_sell = 0.001 * 10 * 104  # 1.04, at day 3's open
    assert fill_rows(res) == [
        (day(1), "A", 0, 10.0, 102.0, approx(c_buy)),
        (day(3), "A", 1, -10.0, 104.0, approx(c_sell)),
    ]
    cash_after_buy = 10_000 - 10 * 102 - c_buy  # 8978.98
    expected_cash = cash_after_buy + 10 * 104 - c_sell  # 10017.94
    assert cash(res) == [10_000, approx(cash_after_buy), approx(cash_after_buy),
                         approx(expected_cash)]
    assert equity(res) == [
        10_000,
        approx(cash_after_buy + 10 * 102),
        approx(cash_after_buy + 10 * 104),
        approx(expected_cash),
    ]
    assert res.final_equity == approx(10_017.94)

    t = res.trades
    assert t.height == 1
    row = t.row(0, named=True)
    assert row["direction"] == "long"
    assert (row["entry_timestamp"], row["exit_timestamp"]) == (day(1), day(3))
    assert (row["quantity"], row["entry_price"], row["exit_price"]) == (10.0, 102.0, 104.0)
    assert row["pnl"] == 10 * (104 - 102)
    assert row["commission"] == approx(c_buy + c_sell)
    assert row["net_pnl"] == approx(20 - 2.06)
    assert row["return_pct"] == approx(104 / 102 - 1)


# --------------------------------------------------------------------------- 3
def test_per_share_commission_with_minimum():
    data = bars({"A": [(10, 11, 9, 10), (10, 11, 9, 10), (12, 13, 11, 12), (12, 14, 11, 13)]})
    strat = Scripted({1: lambda s, v: s.buy("A", 200)}, start=lambda s: s.buy("A", 50))
    res = run(data, strat, initial_cash=10_000,
              commission=PerShareCommission(0.01, minimum=1.0))

    c1 = max(0.01 * 50, 1.0)  # 0.50 per share-cost -> the 1.00 minimum binds
    c2 = max(0.01 * 200, 1.0)  # 2.00 -> above the minimum
    assert (c1, c2) == (1.0, 2.0)
    assert fill_rows(res) == [
        (day(0), "A", 0, 50.0, 10.0, c1),
        (day(2), "A", 1, 200.0, 12.0, c2),
    ]
    expected_cash = 10_000 - 50 * 10 - c1 - 200 * 12 - c2  # 7097
    assert cash(res)[-1] == expected_cash == 7_097
    assert res.final_equity == expected_cash + 250 * 13 == 10_347


# --------------------------------------------------------------------------- 4
def test_short_round_trip_profits_when_price_falls():
    data = bars({"A": [(100, 101, 99, 100), (100, 101, 97, 98), (95, 96, 93, 94),
                       (90, 92, 89, 91)]})
    seen = {}
    strat = Scripted({
        0: lambda s, v: s.sell("A", 10),
        1: lambda s, v: seen.update(pos=s.get_position("A"), upnl=s.get_unrealized_pnl("A")),
        2: lambda s, v: s.buy("A", 10),
    })
    res = run(data, strat, allow_short=True, initial_cash=10_000)

    assert fill_rows(res) == [
        (day(1), "A", 0, -10.0, 100.0, 0.0),
        (day(3), "A", 1, 10.0, 90.0, 0.0),
    ]
    assert seen == {"pos": -10.0, "upnl": -10 * (98 - 100)}  # +20 while short
    short_cash = 10_000 + 10 * 100  # proceeds credited
    assert cash(res) == [10_000, short_cash, short_cash, short_cash - 10 * 90]
    assert equity(res) == [10_000, short_cash - 10 * 98, short_cash - 10 * 94, 10_100]
    t = res.trades.row(0, named=True)
    assert t["direction"] == "short"
    assert (t["entry_price"], t["exit_price"], t["quantity"]) == (100.0, 90.0, 10.0)
    assert t["pnl"] == 10 * (100 - 90) == 100
    assert res.final_equity == 10_100


# --------------------------------------------------------------------------- 5
def test_buy_limit_fills_at_limit_when_traded_through_intrabar():
    data = bars({"A": [(100, 101, 99, 100), (100, 101, 96, 99), (98, 99, 97, 98)]})
    orders = {}

    def place(s, v):
        orders["hit"] = s.buy("A", 10, limit_price=97)  # day 1: open 100 > 97, low 96 <= 97
        orders["rest"] = s.buy("A", 5, limit_price=95)  # lows 96, 97: never reached

    res = run(data, Scripted({0: place}), initial_cash=10_000)
    assert fill_rows(res) == [(day(1), "A", 0, 10.0, 97.0, 0.0)]
    assert orders["hit"].status == "filled" and orders["hit"].avg_fill_price == 97.0
    assert orders["rest"].status == "accepted"  # good till cancelled
    assert statuses(res) == ["filled", "accepted"]
    assert res.final_equity == 10_000 - 10 * 97 + 10 * 98


def test_buy_limit_fills_at_better_gap_open():
    data = bars({"A": [(100, 101, 99, 100), (99, 100, 98, 99), (93, 96, 92, 95)]})
    res = run(data, Scripted({0: lambda s, v: s.buy("A", 10, limit_price=97)}),
              initial_cash=10_000)
    # day 1: open 99 > 97 and low 98 > 97 -> rests; day 2 opens at 93 <= 97 -> fills at 93.
    assert fill_rows(res) == [(day(2), "A", 0, 10.0, 93.0, 0.0)]
    assert cash(res) == [10_000, 10_000, 10_000 - 10 * 93]
    assert res.orders["avg_fill_price"].to_list() == [93.0]
    assert res.final_equity == 10_000 - 10 * 93 + 10 * 95


def test_sell_limit_at_limit_and_at_gap_open():
    data = bars({"A": [(100, 101, 99, 100), (101, 106, 100, 104), (110, 111, 108, 109)]})
    strat = Scripted(
        {0: lambda s, v: s.sell("A", 4, limit_price=105),  # day 1: high 106 >= 105 -> 105
         1: lambda s, v: s.sell("A", 6, limit_price=108)},  # day 2 opens 110 >= 108 -> 110
        start=lambda s: s.buy("A", 10),
    )
    res = run(data, strat, initial_cash=10_000)
    assert fill_rows(res) == [
        (day(0), "A", 0, 10.0, 100.0, 0.0),
        (day(1), "A", 1, -4.0, 105.0, 0.0),
        (day(2), "A", 2, -6.0, 110.0, 0.0),
    ]
    assert res.final_equity == 10_000 - 10 * 100 + 4 * 105 + 6 * 110 == 10_080


# --------------------------------------------------------------------------- 6
def test_sell_stop_gapped_through_fills_at_open():
    data = bars({"A": [(100, 101, 99, 100), (97, 98, 96, 97), (90, 92, 88, 91),
                       (91, 93, 90, 92)]})
    strat = Scripted({0: lambda s, v: s.sell("A", 10, stop_price=95)},
                     start=lambda s: s.buy("A", 10))
    res = run(data, strat, initial_cash=10_000)
    # day 1: open 97 > 95, low 96 > 95 -> rests; day 2 opens at 90 <= 95 -> fills at 90.
    assert fill_rows(res) == [
        (day(0), "A", 0, 10.0, 100.0, 0.0),
        (day(2), "A", 1, -10.0, 90.0, 0.0),
    ]
    assert cash(res) == [9_000, 9_000, 9_000 + 10 * 90, 9_900]
    assert res.final_equity == 10_000 - 10 * 100 + 10 * 90 == 9_900
    assert res.trades["pnl"].to_list() == [10 * (90 - 100)]


# --------------------------------------------------------------------------- 7
def test_stops_touched_intrabar_fill_at_the_stop():
    data = bars({
        "A": [(100, 101, 99, 100), (97, 98, 94, 96), (96, 97, 95, 96)],
        "B": [(50, 51, 49, 50), (52, 56, 51, 54), (54, 55, 53, 54)],
    })

    def place(s, v):
        s.sell("A", 10, stop_price=95)  # day 1: open 97 > 95, low 94 <= 95 -> 95
        s.buy("B", 10, stop_price=55)  # day 1: open 52 < 55, high 56 >= 55 -> 55

    res = run(data, Scripted({0: place}, start=lambda s: s.buy("A", 10)), initial_cash=10_000)
    assert fill_rows(res) == [
        (day(0), "A", 0, 10.0, 100.0, 0.0),
        (day(1), "A", 1, -10.0, 95.0, 0.0),
        (day(1), "B", 2, 10.0, 55.0, 0.0),
    ]
    expected_cash = 10_000 - 10 * 100 + 10 * 95 - 10 * 55  # 9400
    assert cash(res)[-1] == expected_cash == 9_400
    assert res.final_equity == expected_cash + 10 * 54 == 9_940


# --------------------------------------------------------------------------- 8
@pytest.mark.filterwarnings("ignore::mlbacktest.errors.RejectedOrdersWarning")
def test_insufficient_cash_is_rejected_and_cash_unchanged():
    data = bars({"A": [FLAT, FLAT, FLAT]})
    seen = {}
    strat = Scripted({
        0: lambda s, v: seen.update(order=s.buy("A", 11)),  # needs 11 * 100 = 1100 > 1000
        1: lambda s, v: seen.update(status=seen["order"].status, cash=s.get_cash()),
    })
    res = run(data, strat, initial_cash=1_000)
    assert res.fills.height == 0
    assert seen["status"] == "rejected" and seen["cash"] == 1_000
    o = res.orders.row(0, named=True)
    assert o["status"] == "rejected" and o["filled_quantity"] == 0.0
    assert o["closed_timestamp"] == day(1)
    assert "insufficient cash" in o["reason"]
    assert o["reason"] == (
        "insufficient cash: the fill needed 1100.00 but only 1000.00 was available")
    assert cash(res) == [1_000, 1_000, 1_000]
    assert res.final_equity == 1_000


@pytest.mark.filterwarnings("ignore::mlbacktest.errors.RejectedOrdersWarning")
def test_commission_counts_toward_the_cash_check():
    data = bars({"A": [FLAT, FLAT]})
    res = run(data, Scripted(start=lambda s: s.buy("A", 10)), initial_cash=1_000,
              commission=0.001)
    # 10 * 100 = 1000 would fit exactly, but + 0.001 * 1000 = 1.00 commission does not.
    assert statuses(res) == ["rejected"]
    assert "needed 1001.00 but only 1000.00" in res.orders["reason"][0]
    assert res.final_equity == 1_000


@pytest.mark.filterwarnings("ignore::mlbacktest.errors.RejectedOrdersWarning")
def test_buy_sized_to_full_equity_is_rejected_when_price_gaps_up():
    data = bars({"A": [(100, 101, 99, 100), (101, 102, 100, 101)]})
    res = run(data, Scripted({0: lambda s, v: s.order_target_percent("A", 1.0)}),
              initial_cash=10_000)
    # sized at the last close: 10_000 / 100 = 100 shares; 100 * 101 = 10_100 > 10_000
    assert res.orders["quantity"].to_list() == [100.0]
    assert statuses(res) == ["rejected"]
    assert "needed 10100.00 but only 10000.00" in res.orders["reason"][0]


@pytest.mark.filterwarnings("ignore::mlbacktest.errors.RejectedOrdersWarning")
def test_short_rejected_when_shorting_disallowed():
    data = bars({"A": [FLAT, FLAT]})
    res = run(data, Scripted(start=lambda s: s.sell("A", 5)), initial_cash=10_000,
              allow_short=False)
    assert res.fills.height == 0
    assert statuses(res) == ["rejected"]
    assert "short selling is not allowed" in res.orders["reason"][0]


# --------------------------------------------------------------------------- 9
def test_partial_exit_gives_two_trades_with_exact_pnl():
    data = bars({"A": [FLAT, (100, 101, 99, 100), (110, 111, 109, 110), (90, 91, 89, 90)]})
    realized = {}
    strat = Scripted({
        0: lambda s, v: s.buy("A", 10),  # day 1 @ 100, commission 1.00
        1: lambda s, v: s.sell("A", 4),  # day 2 @ 110, commission 0.44
        2: lambda s, v: s.sell("A", 6),  # day 3 @ 90, commission 0.54
        3: lambda s, v: realized.update(pnl=s.get_realized_pnl("A"), pos=s.get_position("A")),
    })
    res = run(data, strat, initial_cash=10_000, commission=0.001)

    c_buy, c_s1, c_s2 = 0.001 * 10 * 100, 0.001 * 4 * 110, 0.001 * 6 * 90
    assert fill_rows(res) == [
        (day(1), "A", 0, 10.0, 100.0, approx(c_buy)),
        (day(2), "A", 1, -4.0, 110.0, approx(c_s1)),
        (day(3), "A", 2, -6.0, 90.0, approx(c_s2)),
    ]
    t = res.trades
    assert t["quantity"].to_list() == [4.0, 6.0]
    assert t["entry_price"].to_list() == [100.0, 100.0]
    assert t["exit_price"].to_list() == [110.0, 90.0]
    assert t["pnl"].to_list() == [4 * (110 - 100), 6 * (90 - 100)]  # +40, -60
    # the entry commission is pro-rated by quantity: 4/10 and 6/10 of 1.00
    assert t["commission"].to_list() == [approx(0.4 * c_buy + c_s1), approx(0.6 * c_buy + c_s2)]
    assert t["net_pnl"].to_list() == [approx(40 - 0.84), approx(-60 - 1.14)]
    assert t["entry_order_id"].to_list() == [0, 0]
    assert t["exit_order_id"].to_list() == [1, 2]
    assert t["exit_timestamp"].to_list() == [day(2), day(3)]
    assert realized == {"pnl": 40 - 60, "pos": 0.0}
    expected_cash = 10_000 - 10 * 100 - c_buy + 4 * 110 - c_s1 + 6 * 90 - c_s2  # 9978.02
    assert res.final_equity == approx(expected_cash)
    assert res.final_equity == approx(9_978.02)


# --------------------------------------------------------------------------- 10
def test_two_assets_share_cash_second_buy_rejected():
    data = bars({"A": [FLAT] * 3, "B": [FLAT] * 3})

    def place(s, v):
        s.buy("A", 8)  # id 0: 800 -> leaves 200
        s.buy("B", 5)  # id 1: needs 500 > 200

    res = run(data, Scripted({0: place}), initial_cash=1_000)
    assert fill_rows(res) == [(day(1), "A", 0, 8.0, 100.0, 0.0)]
    assert statuses(res) == ["filled", "rejected"]
    assert res.orders["reason"][1] == (
        "insufficient cash: the fill needed 500.00 but only 200.00 was available")
    assert cash(res) == [1_000, 200, 200]
    assert res.final_equity == 200 + 8 * 100


def test_exits_first_sale_funds_a_buy_with_a_lower_order_id():
    data = bars({"A": [FLAT, FLAT, (105, 106, 104, 105)], "B": [FLAT, FLAT, FLAT]})

    def rotate(s, v):
        s.buy("B", 9)  # id 1: needs 900, only 200 in cash before the sale
        s.sell("A", 8)  # id 2: an exit -> matched first although its id is higher

    res = run(data, Scripted({0: lambda s, v: s.buy("A", 8), 1: rotate}), initial_cash=1_000)
    assert fill_rows(res) == [
        (day(1), "A", 0, 8.0, 100.0, 0.0),
        (day(2), "A", 2, -8.0, 105.0, 0.0),  # exit recorded before the entry
        (day(2), "B", 1, 9.0, 100.0, 0.0),
    ]
    assert statuses(res) == ["filled"] * 3
    expected_cash = 1_000 - 8 * 100 + 8 * 105 - 9 * 100  # 140
    assert cash(res) == [1_000, 200, expected_cash]
    assert res.final_equity == expected_cash + 9 * 100 == 1_040


# --------------------------------------------------------------------------- 11
class _BuyOnFirstBar(Strategy):
    def __init__(self):
        self.fill_times = []
        self.pos_in_hook = None

    def on_market_data(self, event, context):
        if self.pos_in_hook is None:
            self.buy(event.asset, 10)
            self.pos_in_hook = self.get_position(event.asset)

    def on_fill(self, fill):
        self.fill_times.append(fill.timestamp)


SAME_VS_NEXT = {"A": [(100, 102, 99, 101), (103, 104, 102, 103), (104, 105, 103, 104)]}


def test_next_bar_fill_is_at_the_next_open():
    strat = _BuyOnFirstBar()
    res = run(bars(SAME_VS_NEXT), strat, initial_cash=10_000)
    assert fill_rows(res) == [(day(1), "A", 0, 10.0, 103.0, 0.0)]
    assert strat.fill_times == [day(1)]
    c = 10_000 - 10 * 103
    assert cash(res) == [10_000, c, c]
    assert equity(res) == [10_000, c + 10 * 103, c + 10 * 104]


def test_same_bar_fill_is_at_the_close_the_strategy_saw():
    with pytest.warns(LookAheadWarning):
        cfg = BacktestConfig(initial_cash=10_000, fill_at="close")
    strat = _BuyOnFirstBar()
    res = run(bars(SAME_VS_NEXT), strat, cfg)
    assert fill_rows(res) == [(day(0), "A", 0, 10.0, 101.0, 0.0)]
    assert strat.pos_in_hook == 0.0  # the fill comes after the hooks of the timestamp
    assert strat.fill_times == [day(0)]
    c = 10_000 - 10 * 101
    assert cash(res) == [c, c, c]
    assert equity(res) == [c + 10 * 101, c + 10 * 103, c + 10 * 104]
    assert res.final_equity == 10_030


# --------------------------------------------------------------------------- 12
def test_order_target_percent_rebalance():
    data = bars({
        "A": [(100, 101, 99, 100), (100, 126, 99, 125), (125, 126, 124, 125)],
        "B": [(50, 51, 49, 50), (50, 51, 49, 50), (52, 53, 51, 52)],
    })
    seen = {}

    def half_half(s, v):
        s.order_target_percent("A", 0.5)  # 0.5 * 10_000 / 100 = 50
        s.order_target_percent("B", 0.5)  # 0.5 * 10_000 / 50 = 100

    def eighty_twenty(s, v):
        seen["equity"] = s.get_equity()  # 0 + 50 * 125 + 100 * 50 = 11_250
        s.order_target_percent("A", 0.8)  # 0.8 * 11_250 / 125 = 72 -> buy 22
        s.order_target_percent("B", 0.2)  # 0.2 * 11_250 / 50 = 45 -> sell 55
        # open market orders count toward the target: a repeat does not stack
        seen["repeat"] = s.order_target_percent("A", 0.8)

    res = run(data, Scripted({0: half_half, 1: eighty_twenty}), initial_cash=10_000)
    assert seen == {"equity": 11_250.0, "repeat": None}
    assert fill_rows(res) == [
        (day(1), "A", 0, 50.0, 100.0, 0.0),
        (day(1), "B", 1, 100.0, 50.0, 0.0),
        (day(2), "B", 3, -55.0, 52.0, 0.0),  # exit first: funds the buy of A
        (day(2), "A", 2, 22.0, 125.0, 0.0),
    ]
    cash1 = 10_000 - 50 * 100 - 100 * 50  # 0: exactly all the cash is spent
    cash2 = cash1 + 55 * 52 - 22 * 125  # 110
    assert cash(res) == [10_000, cash1, cash2]
    assert equity(res) == [10_000, cash1 + 50 * 125 + 100 * 50, cash2 + 72 * 125 + 45 * 52]
    assert res.final_equity == 11_450


# --------------------------------------------------------------------------- 13
def test_late_starting_asset():
    data = bars({
        "A": [FLAT] * 5,
        "B": [None, None, None, (20, 21, 19, 20), (21, 22, 20, 21)],
    })
    seen = {}

    def before(s, v):
        seen["price_before"] = s.get_last_price("B")
        seen["assets_day1"] = list(v.assets)
        with pytest.raises(OrderError, match="no price yet"):
            s.order_target_value("B", 100)
        seen["order"] = s.buy("B", 5)

    strat = Scripted({
        1: before,
        2: lambda s, v: seen.update(status_day2=seen["order"].status),
        3: lambda s, v: seen.update(price_day3=s.get_last_price("B")),
    })
    res = run(data, strat, initial_cash=10_000)
    assert math.isnan(seen["price_before"])
    assert seen["assets_day1"] == ["A"]
    assert seen["status_day2"] == "accepted"  # B has no bar on day 2: the order waits
    assert seen["price_day3"] == 20.0
    assert fill_rows(res) == [(day(3), "B", 0, 5.0, 20.0, 0.0)]  # B's first open
    assert cash(res) == [10_000] * 3 + [10_000 - 5 * 20] * 2
    # B's unknown price before its first bar does not leak NaN into the equity
    assert equity(res) == [10_000] * 3 + [9_900 + 5 * 20, 9_900 + 5 * 21]
    assert res.final_equity == 10_000 - 5 * 20 + 5 * 21 == 10_005


# --------------------------------------------------------------------------- 14
def test_whole_shares_truncate_order_target_value():
    data = bars({"A": [FLAT, FLAT], "B": [(40, 41, 39, 40), (40, 41, 39, 40)]})
    seen = {}

    def place(s, v):
        s.order_target_value("A", 1_050)  # 1050 / 100 = 10.5 -> 10
        s.order_target_value("B", -1_050)  # -1050 / 40 = -26.25 -> -26 (toward zero)
        with pytest.raises(OrderError, match="fractional"):
            s.buy("A", 1.5)
        seen["placed"] = True

    res = run(data, Scripted({0: place}), allow_short=True, initial_cash=10_000, fractional=False)
    assert seen == {"placed": True}
    # both orders open a position from flat (no exit): matched in order-id order
    assert fill_rows(res) == [
        (day(1), "A", 0, 10.0, 100.0, 0.0),
        (day(1), "B", 1, -26.0, 40.0, 0.0),
    ]
    assert res.final_equity == 10_000 - 10 * 100 + 26 * 40 + 10 * 100 - 26 * 40 == 10_000
    assert cash(res)[-1] == 10_000 - 10 * 100 + 26 * 40 == 10_040


# --------------------------------------------------------------------------- 15
def test_slippage_on_market_orders_and_limit_capped_at_its_price():
    data = bars({"A": [FLAT, FLAT, (99.95, 101, 99.9, 100), FLAT]})
    strat = Scripted({
        0: lambda s, v: s.buy("A", 10),  # day 1 open 100 -> pays 100 * (1 + 10/1e4)
        1: lambda s, v: s.buy("A", 10, limit_price=100),  # day 2 open 99.95 -> capped at 100
        2: lambda s, v: s.sell("A", 20),  # day 3 open 100 -> receives 100 * (1 - 10/1e4)
    })
    res = run(data, strat, initial_cash=10_000, slippage_bps=10, commission=0.001)

    p1 = 100 * (1 + 10 / 1e4)  # 100.1
    p2 = min(99.95 * (1 + 10 / 1e4), 100)  # 100.04995 -> 100: a limit never fills worse
    p3 = 100 * (1 - 10 / 1e4)  # 99.9
    assert p2 == 100
    f = res.fills
    assert f["timestamp"].to_list() == [day(1), day(2), day(3)]
    assert f["quantity"].to_list() == [10.0, 10.0, -20.0]
    assert f["price"].to_list() == [approx(p1), p2, approx(p3)]
    # commission is charged on the price after slippage
    c1, c2, c3 = 0.001 * 10 * p1, 0.001 * 10 * p2, 0.001 * 20 * p3
    assert f["commission"].to_list() == [approx(c1), approx(c2), approx(c3)]
    # slippage recorded = |q| * |fill price - price before slippage|
    assert f["slippage"].to_list() == [approx(10 * 0.1), approx(10 * 0.05), approx(20 * 0.1)]
    expected_cash = 10_000 - 10 * p1 - c1 - 10 * p2 - c2 + 20 * p3 - c3  # 9993.001
    assert res.final_equity == approx(expected_cash)
    assert res.final_equity == approx(9_993.001)


# --------------------------------------------------------------------------- 16
def test_reversal_through_zero_average_cost_and_fifo_trades():
    data = bars({"A": [FLAT, FLAT, (110, 111, 109, 110), (120, 121, 117, 118)]})
    seen = {}
    strat = Scripted({
        0: lambda s, v: s.buy("A", 10),  # day 1 @ 100
        1: lambda s, v: s.buy("A", 10),  # day 2 @ 110 -> average cost 105
        2: lambda s, v: s.sell("A", 25),  # day 3 @ 120: closes 20, opens a short of 5 @ 120
        3: lambda s, v: seen.update(realized=s.get_realized_pnl("A"),
                                    unrealized=s.get_unrealized_pnl("A"),
                                    pos=s.get_position("A")),
    })
    res = run(data, strat, allow_short=True, initial_cash=10_000)
    avg = (10 * 100 + 10 * 110) / 20  # 105
    assert seen == {
        "realized": 20 * (120 - avg),  # 300, against the average cost
        "unrealized": -5 * (118 - 120),  # +10 on the new short, priced at the fill
        "pos": -5.0,
    }
    t = res.trades
    assert t["quantity"].to_list() == [10.0, 10.0]  # FIFO lots
    assert t["entry_price"].to_list() == [100.0, 110.0]
    assert t["pnl"].to_list() == [10 * (120 - 100), 10 * (120 - 110)]
    lots = res.open_positions.row(0, named=True)
    assert (lots["direction"], lots["quantity"], lots["entry_price"]) == ("short", 5.0, 120.0)
    expected_cash = 10_000 - 10 * 100 - 10 * 110 + 25 * 120  # 10_900
    assert cash(res)[-1] == expected_cash
    assert res.final_equity == expected_cash - 5 * 118 == 10_310


# --------------------------------------------------------------------------- 17
def test_cover_that_cash_cannot_pay_for_is_rejected():
    data = bars({"A": [FLAT, FLAT, (201, 202, 200, 201)]})
    strat = Scripted({0: lambda s, v: s.sell("A", 10), 1: lambda s, v: s.buy("A", 10)})
    res = run(data, strat, allow_short=True, initial_cash=1_000)
    # the short credits 10 * 100: cash 2000; covering at 201 needs 2010
    assert fill_rows(res) == [(day(1), "A", 0, -10.0, 100.0, 0.0)]
    assert statuses(res) == ["filled", "rejected"]
    assert res.orders["reason"][1] == (
        "insufficient cash: the fill needed 2010.00 but only 2000.00 was available")
    assert cash(res) == [1_000, 2_000, 2_000]
    assert res.final_equity == 2_000 - 10 * 201 == -10


# --------------------------------------------------------------------------- 18
def test_slippage_moves_stop_fills_against_the_order():
    data = bars({"A": [FLAT, (102, 106, 101, 104), (100, 101, 95, 96)]})
    strat = Scripted({
        0: lambda s, v: s.buy("A", 10, stop_price=105),  # day 1: high 106 -> 105, + 20 bps
        1: lambda s, v: s.sell("A", 10, stop_price=97),  # day 2: low 95 -> 97, - 20 bps
    })
    res = run(data, strat, initial_cash=10_000, slippage_bps=20)
    p_buy, p_sell = 105 * (1 + 20 / 1e4), 97 * (1 - 20 / 1e4)  # 105.21, 96.806
    assert res.fills["price"].to_list() == [approx(p_buy), approx(p_sell)]
    assert res.fills["slippage"].to_list() == [approx(10 * 105 * 0.002), approx(10 * 97 * 0.002)]
    assert res.final_equity == approx(10_000 - 10 * p_buy + 10 * p_sell)


def test_commission_maximum_caps_a_fill():
    data = bars({"A": [(10, 11, 9, 10), (10, 11, 9, 10)]})
    res = run(data, Scripted(start=lambda s: s.buy("A", 1_000)), initial_cash=100_000,
              commission=PerShareCommission(0.01, minimum=1.0, maximum=5.0))
    assert res.fills["commission"].to_list() == [min(0.01 * 1_000, 5.0)]  # 10 -> capped at 5
    assert res.final_equity == 100_000 - 1_000 * 10 - 5.0 + 1_000 * 10
