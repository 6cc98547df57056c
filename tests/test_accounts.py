"""Accounts and risk, golden scenarios computed by hand: margin, margin calls, borrow
fees, position rules, portfolio limits, drawdown halt, presets and config files."""

from __future__ import annotations

import json
import warnings

import pytest
from helpers import Scripted, bars, day, run

from mlbacktest import BacktestConfig, ConfigError, LookAheadWarning
from mlbacktest.config import PRESETS, PositionRules

FLAT = (100, 100, 100, 100)


def _orders(result):
    o = result.orders
    return list(zip(o["status"].to_list(), o["origin"].to_list(), o["reason"].to_list(),
                    strict=True))


# ---------------------------------------------------------------- margin account
def test_margin_account_lends_up_to_the_initial_requirement():
    # equity 10,000, initial margin 0.5: up to 20,000 of gross exposure.
    def d0(s, view):
        s.buy("A", 200)  # 20,000 at the open of day 1: 0.5 x 20,000 = 10,000 <= equity 10,000
        s.buy("B", 1)  # one more unit of exposure: rejected for margin

    data = bars({"A": [FLAT, FLAT], "B": [FLAT, FLAT]})
    res = run(data, Scripted({0: d0}), initial_cash=10_000, account="margin",
              initial_margin=0.5, maintenance_margin=0.25)
    statuses = res.orders["status"].to_list()
    assert statuses == ["filled", "rejected"]
    reason = res.orders["reason"][1]
    # needs 0.5 x (20,000 + 100) = 10,050 of margin with equity 10,000
    assert "insufficient margin" in reason and "10050.00" in reason and "10000.00" in reason
    assert res.equity["cash"].to_list() == [10_000.0, 10_000.0 - 20_000.0]
    assert res.final_equity == 10_000.0


@pytest.mark.filterwarnings("ignore::mlbacktest.errors.RejectedOrdersWarning")
def test_cash_account_rejects_what_a_margin_account_accepts():
    def d0(s, view):
        s.buy("A", 150)

    data = bars({"A": [FLAT, FLAT]})
    cash = run(data, Scripted({0: d0}), initial_cash=10_000)
    margin = run(data, Scripted({0: d0}), initial_cash=10_000, account="margin")
    assert cash.orders["status"].to_list() == ["rejected"]
    assert margin.orders["status"].to_list() == ["filled"]
    assert margin.equity["cash"][-1] == 10_000.0 - 15_000.0


def test_margin_call_cuts_positions_back_to_the_initial_requirement():
    # Buy 200 @ 100 with 10,000: cash -10,000.
    # day 1 close 70: equity -10,000 + 14,000 = 4,000 >= 0.25 x 14,000 = 3,500: fine.
    # day 2 close 60: equity 2,000 < 0.25 x 12,000 = 3,000: margin call.
    #   keep = 200 x 2,000 / (0.5 x 12,000) = 66.67 -> 66 whole shares: sell 134 at day 3's open.
    def d0(s, view):
        s.buy("A", 200)

    data = bars({"A": [FLAT, (100, 100, 70, 70), (70, 70, 60, 60), (60, 61, 59, 60)]})
    res = run(data, Scripted({0: d0}), initial_cash=10_000, account="margin",
              fractional=False)
    f = res.fills
    assert f["quantity"].to_list() == [200.0, -134.0]
    assert f["price"].to_list() == [100.0, 60.0]
    assert f["timestamp"].to_list() == [day(1), day(3)]
    assert res.orders["origin"].to_list() == ["strategy", "margin_call"]
    assert res.equity["cash"][-1] == -10_000.0 + 134 * 60.0
    assert res.final_equity == -10_000.0 + 134 * 60.0 + 66 * 60.0


def test_margin_interest_accrues_on_negative_cash():
    def d0(s, view):
        s.buy("A", 150)  # cash -5,000 from day 1

    data = bars({"A": [FLAT] * 4})
    res = run(data, Scripted({0: d0}), initial_cash=10_000, account="margin",
              margin_rate=0.0365)
    # 3.65 % a year on the debit balance, for one day: debit x 0.0001, compounding daily.
    cash = res.equity["cash"].to_list()
    assert cash[1] == -5_000.0
    assert cash[2] == pytest.approx(-5_000.0 * (1 + 0.0365 / 365), rel=1e-12)
    assert cash[3] == pytest.approx(-5_000.0 * (1 + 0.0365 / 365) ** 2, rel=1e-12)


def test_borrow_fee_accrues_on_short_value_over_calendar_time():
    def d0(s, view):
        s.sell("A", 100)

    data = bars({"A": [FLAT, FLAT, (100, 100, 90, 90), FLAT]})
    res = run(data, Scripted({0: d0}), allow_short=True, initial_cash=10_000,
              borrow_rate={"A": 0.0365})
    cash = res.equity["cash"].to_list()
    # short 100 @ 100 at day 1: cash 20,000; fee per day = 100 x last close x 0.0365 / 365
    assert cash[1] == 20_000.0
    assert cash[2] == pytest.approx(20_000.0 - 1.0, rel=1e-12)  # day1 -> day2 at close 100
    assert cash[3] == pytest.approx(20_000.0 - 1.0 - 0.9, rel=1e-12)  # day2 -> day3 at close 90


def test_borrow_rate_for_an_unknown_asset_is_a_config_error():
    with pytest.raises(ConfigError, match="unknown asset 'ZZZ'"):
        run(bars({"A": [FLAT, FLAT]}), Scripted(), borrow_rate={"ZZZ": 0.01})


# ---------------------------------------------------------------- position rules
def _buy_at_day1(s, view):
    s.buy("A", 10)


@pytest.mark.parametrize(
    ("bar2", "price", "origin"),
    [
        ((99, 101, 94, 96), 100 * (1 - 0.05), "stop_loss"),  # the low crosses the stop at 95
        ((90, 92, 88, 91), 90.0, "stop_loss"),  # gaps below the stop: fills at the open
        ((105, 112, 104, 111), 100 * (1 + 0.10), "take_profit"),  # the high crosses 110
        ((113, 115, 112, 114), 113.0, "take_profit"),  # gaps above: the better open
    ],
)
def test_stop_loss_and_take_profit_rules(bar2, price, origin):
    data = bars({"A": [FLAT, FLAT, bar2, FLAT]})
    rules = PositionRules(stop_loss=0.05, take_profit=0.10)
    res = run(data, Scripted({0: _buy_at_day1}), initial_cash=10_000, position_rules=rules)
    f = res.fills
    assert f["quantity"].to_list() == [10.0, -10.0]
    assert f["price"].to_list() == [100.0, price]
    assert f["timestamp"][1] == day(2)
    assert res.orders["origin"].to_list() == ["strategy", origin]
    assert res.final_equity == 10_000 + 10 * (price - 100)


def test_rule_hit_on_both_sides_of_one_bar_follows_the_intrabar_path():
    bar2 = (100, 111, 94, 100)  # reaches 110 (TP) and 95 (SL)
    data = bars({"A": [FLAT, FLAT, bar2, FLAT]})
    rules = {"stop_loss": 0.05, "take_profit": 0.10}
    hi = run(data, Scripted({0: _buy_at_day1}), position_rules=rules, intrabar_path="ohlc")
    lo = run(data, Scripted({0: _buy_at_day1}), position_rules=rules, intrabar_path="olhc")
    assert hi.fills["price"][1] == 100 * (1 + 0.10) and hi.orders["origin"][1] == "take_profit"
    assert lo.fills["price"][1] == 100 * (1 - 0.05) and lo.orders["origin"][1] == "stop_loss"


def test_trailing_stop_rule_follows_the_best_close():
    # entry 100; closes 100, 120 -> level 120 x 0.9 = 108; day 3 trades down through 108.
    data = bars({"A": [FLAT, FLAT, (100, 121, 100, 120), (115, 116, 107, 110)]})
    res = run(data, Scripted({0: _buy_at_day1}), position_rules={"trailing_stop": 0.1})
    assert res.fills["price"].to_list() == [100.0, 120 * (1 - 0.1)]
    assert res.orders["origin"].to_list() == ["strategy", "trailing_stop"]


def test_time_exit_after_max_bars():
    # entry at day 1's open; held on days 1 and 2 -> exit at day 3's open.
    data = bars({"A": [FLAT, FLAT, FLAT, (101, 102, 100, 101), FLAT]})
    res = run(data, Scripted({0: _buy_at_day1}), position_rules={"max_bars": 2})
    assert res.fills["timestamp"].to_list() == [day(1), day(3)]
    assert res.fills["price"].to_list() == [100.0, 101.0]
    assert res.orders["origin"].to_list() == ["strategy", "time_exit"]


def test_rules_per_asset_override_the_config():
    def d0(s, view):
        s.set_position_rules("B", stop_loss=0.2)
        s.buy("A", 1)
        s.buy("B", 1)

    drop = (99, 99, 85, 90)  # -15 %: A's 10 % stop triggers, B's 20 % does not
    data = bars({"A": [FLAT, FLAT, drop], "B": [FLAT, FLAT, drop]})
    res = run(data, Scripted({0: d0}), position_rules={"stop_loss": 0.10})
    exits = res.fills.filter(res.fills["quantity"] < 0)
    assert exits["asset"].to_list() == ["A"]
    assert exits["price"].to_list() == [90.0]


# ---------------------------------------------------------------- portfolio limits
def test_max_open_positions_rejects_a_new_position_but_not_an_add():
    def d0(s, view):
        s.buy("A", 1)
        s.buy("B", 1)

    def d1(s, view):
        s.buy("A", 1)  # adding to an open position is fine

    data = bars({"A": [FLAT] * 3, "B": [FLAT] * 3})
    res = run(data, Scripted({0: d0, 1: d1}), max_open_positions=1)
    assert res.orders["status"].to_list() == ["filled", "rejected", "filled"]
    assert "max_open_positions" in res.orders["reason"][1]


def test_max_gross_leverage_rejects_fills_that_add_exposure():
    def d0(s, view):
        s.buy("A", 60)  # 6,000 / 10,000 = 0.6x: fine
        s.buy("B", 50)  # would make 11,000 / 10,000 = 1.1x: rejected

    def d1(s, view):
        s.sell("A", 60)  # reducing always passes

    data = bars({"A": [FLAT] * 3, "B": [FLAT] * 3})
    res = run(data, Scripted({0: d0, 1: d1}), initial_cash=10_000, account="margin",
              max_gross_leverage=1.0)
    assert res.orders["status"].to_list() == ["filled", "rejected", "filled"]
    assert "max_gross_leverage" in res.orders["reason"][1]


def test_max_drawdown_halts_trading_and_liquidates():
    # all-in at 100; close 75 on day 2: equity 7,500 <= 0.8 x 10,000 -> halt.
    def d0(s, view):
        s.buy("A", 100)

    def d2(s, view):
        s.buy("A", 1, limit_price=200)  # placed the bar trading halts: cancelled

    def d3(s, view):
        s.buy("A", 1)  # after the halt: rejected at the fill

    data = bars({"A": [FLAT, FLAT, (100, 100, 75, 75), (76, 77, 75, 76), FLAT]})
    res = run(data, Scripted({0: d0, 2: d2, 3: d3}), initial_cash=10_000, max_drawdown=0.2)
    o = res.orders
    assert o["origin"].to_list() == ["strategy", "strategy", "drawdown_halt", "strategy"]
    assert o["status"].to_list() == ["filled", "cancelled", "filled", "rejected"]
    assert "halted" in o["reason"][1] and "halted" in o["reason"][3]
    assert res.fills["price"].to_list() == [100.0, 76.0]
    assert res.final_equity == 10_000 - 100 * 100 + 100 * 76


# ---------------------------------------------------------------- config
def test_maintenance_above_initial_margin_is_a_config_error():
    with pytest.raises(ConfigError, match="maintenance_margin"):
        BacktestConfig(account="margin", initial_margin=0.3, maintenance_margin=0.4)


@pytest.mark.parametrize(
    ("knob", "value"),
    [("account", "broker"), ("initial_margin", 0), ("margin_rate", -1), ("max_drawdown", 1.5),
     ("max_open_positions", 0), ("max_gross_leverage", 0), ("position_rules", {"stop": 0.1}),
     ("borrow_rate", -0.1)],
)
def test_bad_risk_knobs_are_config_errors(knob, value):
    with pytest.raises(ConfigError, match=knob.split("_")[0] if knob != "position_rules" else "stop"):
        BacktestConfig(**{knob: value})


def test_presets_set_their_knobs_and_take_overrides():
    bt = BacktestConfig.preset("backtrader", initial_cash=5_000)
    assert (bt.fill_at, bt.fractional, bt.intrabar_path, bt.linked_orders_same_bar) == (
        "next_open", False, "submission", False)
    assert bt.initial_cash == 5_000
    zl = BacktestConfig.preset("zipline")
    assert zl.fill_at == "next_close" and zl.max_volume_participation == 0.1
    assert zl.commission_model.per_share == 0.001 and zl.commission_model.minimum == 0.0
    assert zl.slippage_model.bps == 5.0
    with pytest.warns(LookAheadWarning):
        vb = BacktestConfig.preset("vectorbt")
    assert vb.fill_at == "close"
    with pytest.raises(ConfigError, match="unknown preset"):
        BacktestConfig.preset("quantopian")
    assert set(PRESETS) == {"backtrader", "vectorbt", "zipline"}


def test_zipline_preset_fills_market_orders_at_the_next_close():
    def d0(s, view):
        s.buy("A", 10)

    data = bars({"A": [FLAT, (101, 103, 100, 102), FLAT]})
    res = run(data, Scripted({0: d0}), BacktestConfig.preset("zipline", initial_cash=10_000))
    assert res.fills["price"].to_list() == [pytest.approx(102.0 * 1.0005, rel=1e-12)]
    assert res.fills["commission"].to_list() == [pytest.approx(0.01)]


def test_config_files_round_trip(tmp_path):
    cfg = BacktestConfig(initial_cash=5_000, account="margin", borrow_rate={"A": 0.02},
                         position_rules={"stop_loss": 0.05}, max_drawdown=0.3)
    path = tmp_path / "cfg.json"
    path.write_text(json.dumps(cfg.to_dict()))
    back = BacktestConfig.from_file(path)
    assert back == cfg
    yaml = pytest.importorskip("yaml", reason="PyYAML is in the test extra")
    ypath = tmp_path / "cfg.yaml"
    ypath.write_text(yaml.safe_dump({"backtest": cfg.to_dict()}))
    assert BacktestConfig.from_file(ypath) == cfg
    bad = tmp_path / "bad.yaml"
    bad.write_text("initial_cash: 1000\nslipage_bps: 3\n")
    with pytest.raises(ConfigError, match="slipage_bps"):
        BacktestConfig.from_file(bad)


# ---------------------------------------------------------------- shorting and finiteness
def _short_attempts(calls, **knobs):
    """Run ``calls(s)`` at step 0 over flat bars; the orders it placed and the result."""
    placed = {}

    def step(s, v):
        placed.update(calls(s))

    res = run(bars({"A": [FLAT] * 4}), Scripted({0: step}), initial_cash=100_000, **knobs)
    return placed, res


@pytest.mark.filterwarnings("ignore::mlbacktest.errors.RejectedOrdersWarning")  # on purpose
@pytest.mark.parametrize("call", [
    lambda s: s.sell("A", 1e20),
    lambda s: s.order_target_percent("A", -5),
    lambda s: s.sell("A", 1),
])
def test_a_cash_account_cannot_short_by_default(call):
    placed, res = _short_attempts(lambda s: {"o": call(s)})
    assert placed["o"].status == "rejected"
    assert "short selling is not allowed" in placed["o"].reason
    assert res.fills.height == 0
    assert res.final_equity == 100_000


def test_allow_short_follows_the_account_and_the_presets():
    assert BacktestConfig().allow_short is None
    assert not BacktestConfig().shorting_allowed
    assert BacktestConfig(account="margin").shorting_allowed
    assert not BacktestConfig(account="margin", allow_short=False).shorting_allowed
    assert BacktestConfig(allow_short=True).shorting_allowed
    for name in PRESETS:  # backtrader, vectorbt and zipline let a cash account short
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", LookAheadWarning)  # the vectorbt preset warns
            assert BacktestConfig.preset(name).shorting_allowed, name
    with pytest.raises(ConfigError, match="allow_short must be True, False or None"):
        BacktestConfig(allow_short="no")


def test_a_margin_account_shorts_within_its_margin():
    placed, res = _short_attempts(lambda s: {
        "ok": s.sell("A", 100), "huge": s.sell("A", 1e20)}, account="margin")
    assert placed["ok"].status == "filled"
    assert placed["huge"].status == "rejected"
    assert "insufficient margin" in placed["huge"].reason


@pytest.mark.filterwarnings("ignore::mlbacktest.errors.RejectedOrdersWarning")  # on purpose
@pytest.mark.parametrize("knobs", [
    {"allow_short": True},  # a cash account that shorts (backtrader's convention)
    {"account": "margin"},
    {"account": "margin", "initial_margin": 1e-300, "maintenance_margin": 1e-300},
    {"allow_short": True, "max_gross_leverage": 1e300},
])
def test_no_fill_makes_cash_or_equity_non_finite(knobs):
    import math

    placed, res = _short_attempts(lambda s: {
        "short": s.sell("A", 1e307), "long": s.buy("A", 1e307)}, **knobs)
    for order in placed.values():
        assert order.status == "rejected", knobs
        assert order.reason.startswith("not representable"), order.reason
    eq = res.equity
    for col in ("cash", "equity", "positions_value"):
        assert all(math.isfinite(x) for x in eq[col].to_list()), col
    assert res.final_equity == 100_000


@pytest.mark.filterwarnings("ignore::mlbacktest.errors.RejectedOrdersWarning")  # on purpose
def test_the_non_finite_reason_names_the_amounts():
    placed, _ = _short_attempts(lambda s: {"o": s.sell("A", 1e307)}, allow_short=True)
    assert "cash inf" in placed["o"].reason


# ---------------------------------------------------------------- running exposure totals
def test_running_exposure_totals_match_a_full_recomputation():
    import numpy as np

    from mlbacktest._portfolio import Portfolio

    rng = np.random.default_rng(7)
    pf = Portfolio(3_000, 1e9)
    for _ in range(20_000):
        a = int(rng.integers(3_000))
        q = float(np.round(rng.normal(0, 50), 3)) or 1.0
        pf.book(a, q, float(rng.uniform(1, 500)))
        if rng.random() < 0.01:
            net, gross = pf.exposures_now()
            assert pf.net_value == pytest.approx(net, rel=1e-9, abs=1e-3)
            assert pf.gross_value == pytest.approx(gross, rel=1e-9, abs=1e-3)
    net, gross = pf.exposures_now()
    assert pf.net_value == pytest.approx(net, rel=1e-9, abs=1e-3)
    pf.recompute_exposures()
    assert (pf.net_value, pf.gross_value) == (net, gross)  # exactly, after a resync


def test_running_totals_are_resynchronised_at_every_equity_record():
    from mlbacktest import BacktestEngine, PolarsDataFeed
    from mlbacktest.data.synthetic import synthetic_bars

    class Churn(Scripted):
        def on_slice(self, view, context):
            w = view.signal("pred")
            self.rebalance(np.clip(w, -0.2, 0.2) / max(len(w), 1))
            net, gross = self._portfolio.exposures_now()
            self.gaps.append(abs(self._portfolio.net_value - net))

    import numpy as np

    frame = synthetic_bars(n_assets=20, n_bars=40, seed=3)
    cfg = BacktestConfig(account="margin", max_gross_leverage=1.5, commission=0.001)
    results = []
    for _ in range(2):
        strat = Churn()
        strat.gaps = []
        engine = BacktestEngine(PolarsDataFeed(frame, signal_columns=["pred"]), strat, cfg)
        results.append(engine.run(progress=False))
        pf = engine.strategy._portfolio
        assert (pf.net_value, pf.gross_value) == pf.exposures_now()
    # bit for bit the same on a repeat
    assert results[0].equity.equals(results[1].equity)
    assert results[0].fills.equals(results[1].fills)
    eq = results[0].equity
    assert eq["gross_exposure"].to_list() == results[1].equity["gross_exposure"].to_list()
