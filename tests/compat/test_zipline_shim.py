"""The pieces of the zipline shim, each against a hand-computed expectation."""

from __future__ import annotations

import sys
import types
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

pytest.importorskip("exchange_calendars", reason="zipline-reloaded is in the test extra")

sys.path.insert(0, str(Path(__file__).parent))
import zipline_oracle as oracle  # noqa: E402

import mlbacktest.compat.zipline as shim  # noqa: E402
from mlbacktest.compat.zipline import PerOrderCommission, api, run_algorithm  # noqa: E402
from mlbacktest.compat.zipline._algorithm import round_order  # noqa: E402
from mlbacktest.compat.zipline.finance import commission, slippage  # noqa: E402

START, END = "2014-01-02", "2014-03-31"


@pytest.fixture(scope="module")
def frame():
    return oracle.synthetic_frame(["AAPL", "MSFT"], START, END, seed=5)


def test_per_order_commission_charges_the_minimum_once_per_order():
    m = PerOrderCommission(per_share=0.005, min_trade_cost=1.0)
    m.reset(1)
    m.expect(0, 7, 400.0)
    assert m.compute(0, 100.0, 10.0, 0) == 1.0          # first fill: the minimum
    m.record_fill(0, 100.0, 10.0, 0)
    assert m.compute(0, 100.0, 10.0, 0) == 0.0          # 200 * 0.005 = 1.0: still the minimum
    m.record_fill(0, 100.0, 10.0, 0)
    assert m.compute(0, 200.0, 10.0, 0) == pytest.approx(1.0)   # 400 * 0.005 - 1.0 paid
    m.record_fill(0, 200.0, 10.0, 0)
    assert m.paid[7] == pytest.approx(2.0)
    assert m._open[0] == []                             # the order filled completely
    assert m.compute(0, 10.0, 10.0, 0) == 1.0           # an unannounced fill: a whole order
    m.expect(0, 8, -50.0)
    m.forget(8)
    assert m._open[0] == []
    trade = PerOrderCommission(per_trade=2.5)
    trade.expect(0, 1, 10.0)
    assert trade.compute(0, 4.0, 10.0, 0) == 2.5
    trade.record_fill(0, 4.0, 10.0, 0)
    assert trade.compute(0, 6.0, 10.0, 0) == 0.0


def test_zipline_models_translate():
    assert isinstance(commission.PerShare().to_model(), PerOrderCommission)
    assert commission.PerDollar(0.002).to_model().rate == 0.002
    fixed = slippage.FixedBasisPointsSlippage()
    assert (fixed.to_model().bps, fixed.volume_limit) == (5.0, 0.1)
    vs = slippage.VolumeShareSlippage()
    assert (vs.to_model().price_impact, vs.volume_limit) == (0.1, 0.025)
    assert slippage.FixedSlippage(0.02).to_model().amount == 0.01
    cfg = shim.zipline_config(1e5)
    assert (cfg.fill_at, cfg.fractional, cfg.max_volume_participation) == ("next_close", False,
                                                                          0.1)
    assert cfg.slippage_model.bps == 5.0 and cfg.commission_model.cost_per_share == 0.001


def test_round_order_is_zipline_s():
    assert [round_order(x) for x in (3.99995, 5.5, -5.5, 2.0001, -0.99999)] == [4, 5, -5, 2, -1]


def test_install_is_reversible_and_never_shadows_silently(monkeypatch):
    # a "real" zipline already imported (zipline-reloaded lives in its own environment)
    real = types.ModuleType("zipline")
    real.__file__ = "/site-packages/zipline/__init__.py"
    real_data = types.ModuleType("zipline.data")
    monkeypatch.setitem(sys.modules, "zipline", real)
    monkeypatch.setitem(sys.modules, "zipline.data", real_data)
    with pytest.raises(ImportError, match=r"a real zipline is imported already "
                                          r"\(/site-packages/zipline/__init__.py\).*replace=True"):
        shim.install()
    assert sys.modules["zipline"] is real
    shim.install(replace=True)
    try:
        import zipline
        import zipline.api
        from zipline.finance import commission as comm

        assert zipline is shim and zipline.api is api and comm is commission
        assert shim.installed() and "zipline.data" not in sys.modules
    finally:
        shim.uninstall()
    assert not shim.installed()
    assert sys.modules["zipline"] is real and sys.modules["zipline.data"] is real_data
    assert "zipline.api" not in sys.modules


def test_install_without_zipline_then_uninstall(monkeypatch):
    for name in [n for n in sys.modules if n == "zipline" or n.startswith("zipline.")]:
        monkeypatch.delitem(sys.modules, name)
    with shim.installed_as_zipline():
        from zipline.api import order_target_percent

        assert order_target_percent is api.order_target_percent
    assert "zipline" not in sys.modules and "zipline.api" not in sys.modules


def test_order_sizing_from_portfolio_value_at_the_current_price(frame):
    seen = {}

    def handle_data(context, data):
        if "pv" not in seen:
            seen["pv"] = context.portfolio.portfolio_value
            seen["price"] = data.current(context.asset, "price")
            seen["id"] = api.order_target_percent(context.asset, 0.5)

    def init(context):
        context.asset = api.symbol("MSFT")

    perf = run_algorithm(START, END, init, 1e5, handle_data=handle_data, data=frame)
    txn = perf.transactions.iloc[1][0]
    assert txn["amount"] == int(0.5 * seen["pv"] / seen["price"])
    # next session's close, 5 bps against the buy
    close = frame[(frame.asset == "MSFT")].close.iloc[1]
    assert txn["price"] == pytest.approx(close * 1.0005, rel=1e-12)
    order = perf.orders.iloc[1][0]
    assert order["commission"] == pytest.approx(0.001 * txn["amount"], rel=1e-12)
    assert order["id"] == seen["id"] and order["status"] == 1


def test_date_rules_follow_the_exchange_calendar(frame):
    fired = {"week": [], "month_end_1": [], "order": []}

    def init(context):
        api.schedule_function(lambda c, d: fired["week"].append(api.get_datetime().date()),
                              api.date_rules.week_start(), api.time_rules.market_open())
        api.schedule_function(lambda c, d: fired["month_end_1"].append(api.get_datetime().date()),
                              api.date_rules.month_end(days_offset=1))

    def handle_data(context, data):
        fired["order"].append("handle_data")

    # starts on a Wednesday: that week's start (Monday) is before the run
    run_algorithm("2014-01-08", END, init, 1e5, handle_data=handle_data, data=frame)
    assert fired["week"][0] == pd.Timestamp("2014-01-13").date()
    assert pd.Timestamp("2014-01-21").date() in fired["week"]   # Monday 20th is a holiday
    assert fired["month_end_1"] == [pd.Timestamp(d).date() for d in
                                    ("2014-01-30", "2014-02-27", "2014-03-28")]


def test_before_trading_start_sees_the_previous_close(frame):
    seen = []

    def init(context):
        context.asset = api.symbol("AAPL")

    def bts(context, data):
        seen.append(("bts", data.current(context.asset, "price"),
                     len(data.history(context.asset, "close", 1, "1d"))))

    def handle_data(context, data):
        seen.append(("hd", data.current(context.asset, "price"), 0))

    run_algorithm("2014-01-03", "2014-01-07", init, 1e5, handle_data=handle_data,
                  before_trading_start=bts, data=frame)
    closes = frame[frame.asset == "AAPL"].close.to_numpy()
    assert [s[0] for s in seen] == ["bts", "hd"] * 3
    assert [s[1] for s in seen] == [closes[0], closes[1], closes[1], closes[2], closes[2],
                                    closes[3]]


def test_history_shapes_and_point_in_time(frame):
    out = {}

    def init(context):
        context.assets = api.symbols("AAPL", "MSFT")

    def handle_data(context, data):
        if api.get_datetime().date() == pd.Timestamp("2014-02-03").date():
            a = context.assets[0]
            out["series"] = data.history(a, "price", 5, "1d")
            out["by_asset"] = data.history(context.assets, "close", 5, "1d")
            out["by_field"] = data.history(a, ["open", "volume"], 5, "1d")
            out["both"] = data.history(context.assets, ["close", "volume"], 5, "1d")
            out["current"] = data.current(context.assets, "close")
            out["can_trade"] = data.can_trade(context.assets)
            out["stale"] = data.is_stale(a)

    run_algorithm(START, END, init, 1e5, handle_data=handle_data, data=frame)
    aapl = frame[frame.asset == "AAPL"].set_index("timestamp")
    upto = aapl.loc[:"2014-02-03"].tail(5)
    assert isinstance(out["series"], pd.Series)
    np.testing.assert_array_equal(out["series"].to_numpy(), upto.close.to_numpy())
    assert out["series"].index[-1] == pd.Timestamp("2014-02-03", tz="UTC")
    assert out["by_asset"].shape == (5, 2) and out["by_field"].shape == (5, 2)
    np.testing.assert_array_equal(out["by_field"]["volume"].to_numpy(), upto.volume.to_numpy())
    assert out["both"].shape == (10, 2)
    assert out["current"].iloc[0] == upto.close.iloc[-1]
    assert out["can_trade"].all() and out["stale"] is False


def test_perf_frame_is_shaped_like_zipline_s(frame):
    def init(context):
        context.asset = api.symbol("AAPL")

    def handle_data(context, data):
        api.order(context.asset, 3)
        api.record(price=data.current(context.asset, "price"))

    perf = run_algorithm(START, END, init, 1e5, handle_data=handle_data, data=frame)
    for col in ("portfolio_value", "returns", "pnl", "ending_cash", "starting_cash",
                "capital_used", "positions", "transactions", "orders", "price",
                "algorithm_period_return", "gross_leverage"):
        assert col in perf.columns
    assert str(perf.index.tz) == "UTC" and len(perf) == 61
    pv = perf.portfolio_value.to_numpy()
    np.testing.assert_allclose(perf.returns.to_numpy()[1:], pv[1:] / pv[:-1] - 1, rtol=0,
                               atol=1e-15)
    assert perf.transactions.iloc[0] == [] and len(perf.transactions.iloc[1]) == 1
    assert perf.positions.iloc[-1][0]["amount"] == 3 * 60


def _pipeline_outputs(frame, start="2014-01-24", end=END):
    from mlbacktest.compat.zipline.pipeline import RSI, Pipeline, Returns, SimpleMovingAverage

    seen = {}

    def init(context):
        r = Returns(window_length=5)
        api.attach_pipeline(Pipeline({
            "r": r, "sma": SimpleMovingAverage(inputs=[api_pricing().close], window_length=7),
            "rsi": RSI(), "top": r.top(1), "rank": r.rank(ascending=False)}), "p")

    def bts(context, data):
        seen[api.get_datetime().date()] = api.pipeline_output("p").copy()

    run_algorithm(start, end, init, 1e5, before_trading_start=bts, data=frame)
    return seen


def api_pricing():
    from mlbacktest.compat.zipline.pipeline import USEquityPricing

    return USEquityPricing


def test_pipeline_is_point_in_time(frame):
    """The output of session D is the same whatever the bars of D and later say."""
    full = _pipeline_outputs(frame)
    cut = pd.Timestamp("2014-02-14")
    rng = np.random.default_rng(0)
    changed = frame.copy()
    later = changed["timestamp"] >= cut
    scale = rng.uniform(0.5, 1.5, later.sum())
    for col in ("open", "high", "low", "close"):
        changed.loc[later, col] = changed.loc[later, col] * scale
    altered = _pipeline_outputs(changed)
    days = sorted(full)
    assert days[0] == pd.Timestamp("2014-01-24").date()
    for d in days:
        if d <= cut.date():
            pd.testing.assert_frame_equal(full[d], altered[d])
    assert not full[days[-1]].equals(altered[days[-1]])


def test_pipeline_values_by_hand(frame):
    out = _pipeline_outputs(frame, start="2014-02-03", end="2014-02-03")
    table = out[pd.Timestamp("2014-02-03").date()]
    closes = frame.pivot(index="timestamp", columns="asset", values="close")
    before = closes.loc[:"2014-01-31"]                     # the sessions before D
    r = (before.iloc[-1] - before.iloc[-5]) / before.iloc[-5]
    assert [a.symbol for a in table.index] == ["AAPL", "MSFT"]
    np.testing.assert_array_equal(table["r"].to_numpy(), r.to_numpy())
    np.testing.assert_allclose(table["sma"].to_numpy(), before.iloc[-7:].mean().to_numpy(),
                               rtol=1e-15)
    diffs = before.iloc[-15:].diff().iloc[1:]
    ups, downs = diffs.clip(lower=0).mean(), -diffs.clip(upper=0).mean()
    np.testing.assert_allclose(table["rsi"].to_numpy(), (100 - 100 / (1 + ups / downs)).to_numpy(),
                               rtol=1e-12)
    best = r.to_numpy().argmax()
    assert table["top"].tolist() == [i == best for i in range(2)]
    assert table["rank"].tolist() == [1.0 if i == best else 2.0 for i in range(2)]


def test_ordinal_rank_with_ties_nan_and_mask():
    from mlbacktest.compat.zipline.pipeline import Factor, PipelineContext

    class Fixed(Factor):
        def evaluate(self, ctx):
            return np.array([3.0, np.nan, 1.0, 3.0, 2.0])

    exists = np.array([True, True, True, True, False])
    ctx = PipelineContext(lambda c, n: np.empty((0, 5)), exists, "2014-01-02")
    up = Fixed().rank().evaluate(ctx)
    np.testing.assert_array_equal(up, [2.0, np.nan, 1.0, 3.0, np.nan])   # ties by position
    down = Fixed().rank(ascending=False).evaluate(ctx)
    np.testing.assert_array_equal(down, [1.0, np.nan, 3.0, 2.0, np.nan])
    assert Fixed().top(2).evaluate(ctx).tolist() == [True, False, False, True, False]
    assert Fixed().bottom(1).evaluate(ctx).tolist() == [False, False, True, False, False]
