"""The Strategy API: order validation, live order views, state getters, history,
events and slice views, and BacktestConfig validation and loading."""

from __future__ import annotations

import math

import numpy as np
import pytest
from helpers import Scripted, bars, day, fill_rows, run

import mlbacktest
from mlbacktest import (
    BacktestConfig,
    BacktestEngine,
    ConfigError,
    FillEvent,
    OrderError,
    PerShareCommission,
    PolarsDataFeed,
    Strategy,
)

FLAT = (100, 101, 99, 100)
NAN = float("nan")
INF = float("inf")


def _run_step0(call, **knobs):
    """Run ``call(strategy)`` in on_slice at the first timestamp; returns (outcome, result)."""
    outcome = {}

    def step(s, v):
        outcome["returned"] = call(s)

    res = run(bars({"A": [FLAT, FLAT], "B": [FLAT, FLAT]}), Scripted({0: step}),
              initial_cash=10_000, **knobs)
    return outcome, res


# ----------------------------------------------------------------- order validation
BAD_ORDERS = {
    "unknown asset name": (lambda s: s.order("ZZZ", 1), "unknown asset 'ZZZ'"),
    "unknown asset id": (lambda s: s.order(2, 1), "unknown asset id 2"),
    "negative asset id": (lambda s: s.order(-1, 1), "unknown asset id -1"),
    "asset neither str nor int": (lambda s: s.order(1.0, 1), "an asset is a name"),
    "bool asset": (lambda s: s.order(True, 1), "an asset is a name"),
    "NaN quantity": (lambda s: s.order("A", NAN), "quantity must be a finite number"),
    "inf quantity": (lambda s: s.order("A", INF), "quantity must be a finite number"),
    "-inf quantity": (lambda s: s.order("A", -INF), "quantity must be a finite number"),
    "zero quantity": (lambda s: s.order("A", 0), "non-zero"),
    "non-numeric quantity": (lambda s: s.order("A", "ten"), "quantity must be a number"),
    "negative limit price": (lambda s: s.order("A", 1, limit_price=-5.0), "limit price"),
    "zero limit price": (lambda s: s.order("A", 1, limit_price=0.0), "limit price"),
    "NaN limit price": (lambda s: s.order("A", 1, limit_price=NAN), "limit_price"),
    "NaN stop price": (lambda s: s.order("A", 1, stop_price=NAN), "stop_price"),
    "negative stop price": (lambda s: s.order("A", -1, stop_price=-1.0), "stop price"),
    "both limit and stop": (lambda s: s.order("A", 1, limit_price=99.0, stop_price=101.0),
                            "stop-limit"),
    "buy negative quantity": (lambda s: s.buy("A", -1), "buy quantity must be > 0"),
    "buy zero quantity": (lambda s: s.buy("A", 0), "buy quantity must be > 0"),
    "sell negative quantity": (lambda s: s.sell("A", -1), "sell quantity must be > 0"),
    "buy NaN quantity": (lambda s: s.buy("A", NAN), "finite"),
    "buy with a bad limit": (lambda s: s.buy("A", 1, limit_price=-1.0), "limit price"),
}


@pytest.mark.parametrize("case", list(BAD_ORDERS))
def test_bad_order_raises_order_error_at_the_call(case):
    call, message = BAD_ORDERS[case]

    def attempt(s):
        with pytest.raises(OrderError, match=message) as info:
            call(s)
        assert isinstance(info.value, ValueError)  # OrderError is a ValueError too
        return "raised"

    outcome, res = _run_step0(attempt)
    assert outcome == {"returned": "raised"}
    assert res.orders.height == 0 and res.fills.height == 0  # nothing was stored


def test_fractional_quantity_refused_when_fractional_false():
    def attempt(s):
        with pytest.raises(OrderError, match="fractional=False"):
            s.buy("A", 1.5)
        with pytest.raises(OrderError, match="fractional=False"):
            s.order("A", -0.25, limit_price=100.0)
        return s.buy("A", 2.0).quantity  # whole floats are fine

    outcome, res = _run_step0(attempt, fractional=False)
    assert outcome == {"returned": 2.0}
    assert res.orders.height == 1


def test_fractional_quantity_accepted_by_default():
    outcome, res = _run_step0(lambda s: s.buy("A", 1.5).quantity)
    assert outcome == {"returned": 1.5}
    assert fill_rows(res) == [(day(1), "A", 0, 1.5, 100.0, 0.0)]


def test_order_by_asset_id_and_numpy_integer():
    def place(s):
        return [s.buy(1, 1).asset, s.buy(np.int64(0), 2).asset]

    outcome, res = _run_step0(place)
    assert outcome == {"returned": ["B", "A"]}
    assert res.fills["asset"].to_list() == ["B", "A"]


def test_orders_cannot_be_placed_in_on_end():
    class LateOrder(Strategy):
        def on_end(self):
            with pytest.raises(OrderError, match="finished"):
                self.buy("A", 1)
            self.checked = True

    strat = LateOrder()
    res = run(bars({"A": [FLAT]}), strat)
    assert strat.checked and res.orders.height == 0


def test_strategy_not_attached_raises():
    with pytest.raises(RuntimeError, match="not attached"):
        Strategy().get_cash()


# ----------------------------------------------------------------- live order views
def test_order_event_is_live_open_then_filled():
    data = bars({"A": [FLAT, (103, 104, 102, 103), FLAT]})
    seen = {}

    def place(s, v):
        o = s.buy("A", 10)
        seen["open"] = (o.status, o.is_open, o.order_type, o.quantity, o.filled_quantity,
                        math.isnan(o.avg_fill_price), o.closed, o.created, o.asset, o.asset_id,
                        math.isnan(o.limit_price), math.isnan(o.stop_price))
        seen["order"] = o

    class Watch(Scripted):
        def on_fill(self, fill):
            super().on_fill(fill)
            seen["in_on_fill"] = self.get_order(fill.order_id).status

    strat = Watch({0: place, 1: lambda s, v: seen.update(
        filled=(seen["order"].status, seen["order"].filled_quantity,
                seen["order"].avg_fill_price, seen["order"].closed, seen["order"].is_open))})
    run(data, strat, initial_cash=10_000)
    assert seen["open"] == ("accepted", True, "market", 10.0, 0.0, True, None, day(0), "A", 0,
                            True, True)
    assert seen["in_on_fill"] == "filled"
    assert seen["filled"] == ("filled", 10.0, 103.0, day(1), False)
    assert seen["order"].order_id == strat.fills[0].order_id == 0


def test_cancel_open_limit_never_fills():
    data = bars({"A": [FLAT, (100, 101, 95, 100), (90, 91, 85, 90)]})
    seen = {}

    def place(s, v):
        seen["limit"] = s.buy("A", 10, limit_price=90)  # day 1 low 95: not reached

    def cancel(s, v):
        lim = seen["limit"]
        seen["open_before"] = s.open_orders()
        seen["first"] = s.cancel(lim)
        seen["status"] = lim.status
        seen["again"] = s.cancel(lim.order_id)  # by id; no longer open
        seen["open_after"] = s.open_orders()

    res = run(data, Scripted({0: place, 1: cancel}), initial_cash=10_000)
    assert seen["open_before"] == [seen["limit"]]
    assert (seen["first"], seen["status"], seen["again"]) == (True, "cancelled", False)
    assert seen["open_after"] == []
    assert res.fills.height == 0  # day 2 opens at 90 <= 90, but the order is gone
    o = res.orders.row(0, named=True)
    assert o["status"] == "cancelled" and o["closed_timestamp"] == day(1)
    assert o["reason"] == "cancelled by the strategy"


def test_cancelled_market_order_no_longer_counts_toward_targets():
    seen = {}

    def place(s):
        o = s.order_target_quantity("A", 5)
        seen["repeat"] = s.order_target_quantity("A", 5)  # the open order counts
        s.cancel(o)
        return s.order_target_quantity("A", 5).quantity  # back to the full gap

    outcome, res = _run_step0(place)
    assert seen == {"repeat": None}
    assert outcome == {"returned": 5.0}
    assert res.orders["status"].to_list() == ["cancelled", "filled"]
    assert res.fills["quantity"].to_list() == [5.0]


def test_cancel_unknown_order_id_raises():
    def attempt(s):
        with pytest.raises(OrderError, match="no order with id 7"):
            s.cancel(7)
        return "ok"

    assert _run_step0(attempt)[0] == {"returned": "ok"}


def test_open_orders_listing_in_submission_order():
    data = bars({"A": [FLAT, FLAT, FLAT], "B": [FLAT, FLAT, FLAT]})
    seen = {}

    def place(s, v):
        o1 = s.buy("A", 1, limit_price=90)
        o2 = s.sell("B", 1, stop_price=50)
        o3 = s.buy("A", 1)
        seen["orders"] = (o1, o2, o3)
        seen["all"] = s.open_orders()
        seen["A"] = s.open_orders("A")
        seen["B_by_id"] = s.open_orders(1)

    strat = Scripted({0: place, 1: lambda s, v: seen.update(later=s.open_orders())})
    run(data, strat, initial_cash=10_000)
    o1, o2, o3 = seen["orders"]
    assert seen["all"] == [o1, o2, o3]
    assert [o.order_id for o in seen["all"]] == [0, 1, 2]
    assert seen["A"] == [o1, o3]
    assert seen["B_by_id"] == [o2]
    assert seen["later"] == [o1, o2]  # the market order filled on day 1


# ----------------------------------------------------------------- state getters
def test_state_getters_at_known_points():
    data = bars({"A": [(100, 103, 99, 102), (104, 106, 103, 105)],
                 "B": [(50, 51, 49, 50), (50, 51, 47, 48)]})
    seen = {}

    def start(s):
        seen["start"] = (s.now, s.get_cash(), s.get_equity(), s.get_position("A"),
                         math.isnan(s.get_last_price("A")), s.get_positions())
        s.buy("A", 10)  # fills at day 0's open, 100
        s.sell("B", 4)  # short at day 0's open, 50

    def day0(s, v):
        seen["day0"] = dict(
            now=s.now, cash=s.get_cash(), equity=s.get_equity(), pos=s.get_position("A"),
            pos_b=s.get_position(1), positions=s.get_positions(), last=s.get_last_price("A"),
            upnl_a=s.get_unrealized_pnl("A"), upnl_b=s.get_unrealized_pnl("B"),
            upnl=s.get_unrealized_pnl(), realized=s.get_realized_pnl(),
            assets=s.assets, signal_names=s.signal_names)

    run(data, Scripted({0: day0}, start=start), allow_short=True, initial_cash=10_000)
    assert seen["start"] == (None, 10_000.0, 10_000.0, 0.0, True, {})
    cash = 10_000 - 10 * 100 + 4 * 50  # 9200
    assert seen["day0"] == dict(
        now=day(0), cash=cash, equity=cash + 10 * 102 - 4 * 50, pos=10.0, pos_b=-4.0,
        positions={"A": 10.0, "B": -4.0}, last=102.0,
        upnl_a=10 * (102 - 100), upnl_b=-4 * (50 - 50), upnl=20.0, realized=0.0,
        assets=("A", "B"), signal_names=())


# ----------------------------------------------------------------- history
def test_history_is_a_read_only_view_ending_at_the_current_bar():
    closes = [100.0, 101.0, 102.0, 103.0, 104.0]
    data = bars({"A": [(c, c + 1, c - 1, c) for c in closes],
                 "B": [None, None, (50, 51, 49, 50), (51, 52, 50, 51), None]})
    seen = []

    def check(s, v):
        i = s.step_index
        a_close = float(v.close[list(v.assets).index("A")])
        h = s.history("A", "close", 3)
        assert h[-1] == a_close == closes[i]
        assert len(h) == min(3, i + 1)
        assert h.tolist() == closes[max(0, i - 2): i + 1]
        assert not h.flags.writeable
        with pytest.raises(ValueError):
            h[-1] = 0.0
        assert s.history(0, "close", 100).tolist() == closes[: i + 1]
        assert s.history("A", "open", 1).tolist() == [closes[i]]
        assert s.history("A", "high", 2).tolist() == [c + 1 for c in closes[max(0, i - 1): i + 1]]
        hb = s.history("B", "close", 5)
        seen.append(hb.tolist())

    strat = Scripted(dict.fromkeys(range(5), check),
                     start=lambda s: seen.append(s.history("A", "close", 3).tolist()))
    run(data, strat)
    # before the run: empty; B before its first bar: empty; B's gap on day 4: ends at day 3
    assert seen == [[], [], [], [50.0], [50.0, 51.0], [50.0, 51.0]]


@pytest.mark.parametrize("n", [0, -1, 1.5, True, "3"])
def test_history_bad_n_raises_value_error(n):
    def attempt(s):
        with pytest.raises(ValueError, match="n > 0"):
            s.history("A", "close", n)
        return "ok"

    assert _run_step0(attempt)[0] == {"returned": "ok"}


def test_history_unknown_field_raises_value_error():
    def attempt(s):
        with pytest.raises(ValueError, match="unknown history field 'vwap'"):
            s.history("A", "vwap", 2)
        with pytest.raises(OrderError, match="unknown asset"):  # OrderError is a ValueError
            s.history("ZZZ", "close", 2)
        return "ok"

    assert _run_step0(attempt)[0] == {"returned": "ok"}


def test_history_of_a_signal():
    data = bars({"A": [FLAT, FLAT, FLAT]}, signals={"pred": {"A": [0.1, None, 0.3]}})
    seen = {}
    strat = Scripted({2: lambda s, v: seen.update(h=s.history("A", "pred", 3).tolist())})
    run(data, strat)
    assert seen["h"][0] == 0.1 and math.isnan(seen["h"][1]) and seen["h"][2] == 0.3


# ----------------------------------------------------------------- events and views
def test_market_event_signals_read_the_bars_signal():
    data = bars({"A": [FLAT, (101, 102, 100, 101)], "B": [FLAT, FLAT]},
                signals={"pred": {"A": [0.5, -0.25], "B": [None, 2.0]}})
    seen = []

    class Reader(Strategy):
        def on_market_data(self, event, context):
            sig = event.signals
            seen.append((event.timestamp, event.asset, event.asset_id, event.close,
                         sig["pred"], sig[0], sig.get("nope"), "pred" in sig, list(sig.keys())))

    run(data, Reader())
    rows = [(t, a, i, c, p if not math.isnan(p) else "nan", p0 if not math.isnan(p0) else "nan",
             g, inside, keys) for t, a, i, c, p, p0, g, inside, keys in seen]
    assert rows == [
        (day(0), "A", 0, 100.0, 0.5, 0.5, None, True, ["pred"]),
        (day(0), "B", 1, 100.0, "nan", "nan", None, True, ["pred"]),  # null -> NaN
        (day(1), "A", 0, 101.0, -0.25, -0.25, None, True, ["pred"]),
        (day(1), "B", 1, 100.0, 2.0, 2.0, None, True, ["pred"]),
    ]


def test_market_event_unknown_signal_raises_key_error():
    data = bars({"A": [FLAT]}, signals={"pred": {"A": [0.5]}})

    class Reader(Strategy):
        def on_market_data(self, event, context):
            with pytest.raises(KeyError, match="no signal named 'x'"):
                event.signals["x"]
            self.ok = True

    strat = Reader()
    run(data, strat)
    assert strat.ok


VIEW_ARRAYS = ("assets", "asset_ids", "open", "high", "low", "close", "volume", "signals",
               "positions")


def _assert_read_only(view):
    for name in VIEW_ARRAYS:
        arr = getattr(view, name)
        assert not arr.flags.writeable, name
        with pytest.raises(ValueError):
            arr[0] = arr[0]


def test_slice_view_fields_are_correct_and_read_only():
    data = bars({"A": [(100, 103, 99, 102), (104, 106, 103, 105)],
                 "B": [(50, 51, 49, 50), (50, 52, 47, 48)]},
                signals={"pred": {"A": [0.1, 0.2], "B": [0.3, 0.4]}, "z": {"A": [1, 2]}})
    seen = {}

    def look(s, v):
        seen[s.step_index] = dict(
            ts=v.timestamp, n=len(v), assets=v.assets.tolist(), ids=v.asset_ids.tolist(),
            ids_dtype=v.asset_ids.dtype, open=v.open.tolist(), high=v.high.tolist(),
            low=v.low.tolist(), close=v.close.tolist(), volume=v.volume.tolist(),
            signals=v.signals.tolist(), names=v.signal_names, pred=v.signal("pred").tolist(),
            positions=v.positions.tolist())
        _assert_read_only(v)

    run(data, Scripted({0: look, 1: look}, start=lambda s: s.sell("B", 3)), allow_short=True,
        initial_cash=10_000)
    v0, v1 = seen[0], seen[1]
    assert v0["ts"] == day(0) and v0["n"] == 2
    assert v0["assets"] == ["A", "B"] and v0["ids"] == [0, 1] and v0["ids_dtype"] == np.int32
    assert (v0["open"], v0["high"], v0["low"], v0["close"]) == (
        [100, 50], [103, 51], [99, 49], [102, 50])
    assert v0["volume"] == [1_000_000.0] * 2
    assert v0["names"] == ("pred", "z")
    assert v0["signals"][0] == [0.1, 1.0]
    assert v0["signals"][1][0] == 0.3 and math.isnan(v0["signals"][1][1])
    assert v0["pred"] == [0.1, 0.3]
    assert v0["positions"] == [0.0, -3.0]  # the on_start short filled at day 0's open
    assert v1["close"] == [105, 48] and v1["low"] == [103, 47] and v1["pred"] == [0.2, 0.4]


def test_slice_view_of_several_feeds_is_read_only():
    daily = PolarsDataFeed(bars({"A": [FLAT, FLAT]}))
    other = PolarsDataFeed(bars({"B": [(50, 51, 49, 50), (60, 61, 59, 60)]}))
    seen = []

    def look(s, v):
        seen.append((v.assets.tolist(), v.close.tolist()))
        _assert_read_only(v)

    BacktestEngine([daily, other], Scripted({0: look, 1: look})).run()
    assert seen == [(["A", "B"], [100.0, 50.0]), (["A", "B"], [100.0, 60.0])]


def test_hook_not_overridden_is_not_called(monkeypatch):
    calls = []

    def spy(self, *args):
        calls.append(args)

    for hook in ("on_market_data", "on_fill"):
        monkeypatch.setattr(Strategy, hook, spy)

    class SliceOnly(Strategy):
        def on_start(self):
            self.buy("A", 1)

        def on_slice(self, view, context):
            calls.append("slice")

    res = run(bars({"A": [FLAT, FLAT]}), SliceOnly())
    assert res.fills.height == 1  # a fill happened, yet on_fill was not called
    assert calls == ["slice", "slice"]


def test_on_fill_receives_fill_events():
    data = bars({"A": [FLAT, (103, 104, 102, 103)]})
    strat = Scripted({0: lambda s, v: s.buy("A", 10)})
    res = run(data, strat, initial_cash=10_000, commission=PerShareCommission(0.01, minimum=1.0))
    assert len(strat.fills) == 1
    f = strat.fills[0]
    assert isinstance(f, FillEvent) and isinstance(f, mlbacktest.FillEvent)
    assert (f.timestamp, f.asset, f.asset_id, f.order_id, f.quantity, f.price, f.commission,
            f.slippage) == (day(1), "A", 0, 0, 10.0, 103.0, 1.0, 0.0)
    assert f.ts == res.fills["timestamp"].cast(int)[0]
    with pytest.raises(TypeError):
        FillEvent()


# ----------------------------------------------------------------- config
@pytest.mark.parametrize("cash", [-1.0, 0, float("nan"), float("inf"), "1000", True])
def test_config_rejects_bad_initial_cash(cash):
    with pytest.raises(ConfigError, match="initial_cash"):
        BacktestConfig(initial_cash=cash)


def test_config_rejects_bad_fill_at():
    with pytest.raises(ConfigError, match="fill_at"):
        BacktestConfig(fill_at="tomorrow")


@pytest.mark.parametrize("knobs", [
    {"commission": -0.1}, {"commission": "ten"}, {"slippage_bps": -1.0},
    {"fractional": 1}, {"allow_short": "no"}, {"periods_per_year": 0}, {"risk_free": -1.0},
])
def test_config_rejects_other_bad_knobs(knobs):
    with pytest.raises(ConfigError):
        BacktestConfig(**knobs)


def test_config_errors_are_value_errors():
    assert issubclass(ConfigError, ValueError)


def test_from_dict_unknown_key_names_it():
    with pytest.raises(ConfigError, match="'comission'"):
        BacktestConfig.from_dict({"initial_cash": 1_000, "comission": 0.001})


def test_from_dict_bad_commission_table():
    with pytest.raises(ConfigError, match="commission"):
        BacktestConfig.from_dict({"commission": {"per_shares": 0.01}})


def test_engine_accepts_a_mapping_config():
    res = BacktestEngine(PolarsDataFeed(bars({"A": [FLAT]})), Strategy(),
                         {"initial_cash": 5_000}).run()
    assert res.final_equity == 5_000


def _toml_value(v):
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, str):
        return '"' + v + '"'
    if isinstance(v, float):
        return "inf" if v == INF else repr(v)
    if isinstance(v, dict):
        return "{ " + ", ".join(f"{k} = {_toml_value(x)}" for k, x in v.items()) + " }"
    return str(v)


@pytest.mark.parametrize("table", [False, True])
def test_from_toml_round_trip(tmp_path, table):
    cfg = BacktestConfig(initial_cash=50_000, commission=PerShareCommission(0.005, minimum=1.0),
                         slippage_bps=5.0, fractional=False, allow_short=False,
                         periods_per_year=252.0, risk_free=0.02)
    lines = ["[backtest]"] if table else []
    lines += [f"{k} = {_toml_value(v)}" for k, v in cfg.to_dict().items() if v is not None]
    path = tmp_path / "bt.toml"
    path.write_text("\n".join(lines) + "\n")
    loaded = BacktestConfig.from_toml(path)
    assert loaded == cfg
    assert loaded.commission_model == cfg.commission_model
    assert loaded.commission_model.minimum == 1.0
    assert loaded.to_dict() == cfg.to_dict()


def test_from_toml_unknown_key(tmp_path):
    path = tmp_path / "bad.toml"
    path.write_text('initial_cash = 1000.0\nfill = "close"\n')
    with pytest.raises(ConfigError, match="'fill'"):
        BacktestConfig.from_toml(path)


def test_order_many_is_all_or_nothing():
    from mlbacktest import OrderError
    from helpers import Scripted, bars, run

    def at0(s, view):
        with pytest.raises(OrderError, match="position 1"):
            s.order_many(["A", "A"], [1.0, float("nan")])
        assert s.open_orders() == []
        ids = s.order_many(["A", "A"], [2.0, 0.0])
        assert list(ids[1:]) == [-1]

    result = run(bars({"A": [(10, 11, 9, 10), (10, 11, 9, 10)]}), Scripted({0: at0}))
    assert result.fills["quantity"].to_list() == [2.0]
