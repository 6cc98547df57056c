"""Orders that cannot be accepted as written raise OrderError at the call.

Nothing is stored when a call raises: the run's order count is the same as
without the bad call. BacktestConfig knobs of the broker raise ConfigError
naming the knob.
"""

from __future__ import annotations

import datetime as dt

import numpy as np
import pytest
from helpers import Scripted, bars, day, run

from mlbacktest import BacktestConfig, ConfigError, OrderError

FLAT = (100, 101, 99, 100)


def attempt_at_step(step: int, setup, call, message: str, *, n_bars: int = 4,
                    data=None, **knobs):
    """Run ``setup(s)`` at step 0 (returns a dict of orders), then ``call(s, orders)`` at
    ``step``, expecting an OrderError matching ``message``; returns the result and a record
    of the orders stored just before and just after the failed call."""
    state = {"orders": {}}

    def first(s, v):
        if setup is not None:
            state["orders"] = setup(s) or {}
        if step == 0:
            second(s, v)

    def second(s, v):
        before = len(s._broker)
        with pytest.raises(OrderError, match=message) as info:
            call(s, state["orders"])
        state["error"] = str(info.value)
        state["counts"] = (before, len(s._broker))
        state["open_after"] = [o.order_id for o in s.open_orders()]

    steps = {0: first}
    if step != 0:
        steps[step] = second
    if data is None:
        data = bars({"A": [FLAT] * n_bars, "B": [None] + [FLAT] * (n_bars - 1)})
    knobs.setdefault("initial_cash", 10_000)
    res = run(data, Scripted(steps), **knobs)
    assert "counts" in state, "the bad call was never attempted"
    before, after = state["counts"]
    assert after == before, "an order was stored although the call raised"
    return res, state


# ----------------------------------------------------------------- single calls
BAD_CALLS = {
    "buy stop-limit, limit below stop": (
        lambda s: s.order("A", 10, stop_price=101, limit_price=100), "wrong side"),
    "sell stop-limit, limit above stop": (
        lambda s: s.order("A", -10, stop_price=99, limit_price=100), "wrong side"),
    "buy() stop-limit, limit below stop": (
        lambda s: s.buy("A", 10, stop_price=101, limit_price=100), "wrong side"),
    "sell() stop-limit, limit above stop": (
        lambda s: s.sell("A", 10, stop_price=99, limit_price=100), "wrong side"),
    "trail_amount zero": (lambda s: s.sell("A", 10, trail_amount=0), "trail_amount"),
    "trail_amount negative": (lambda s: s.sell("A", 10, trail_amount=-1), "trail_amount"),
    "trail_percent zero": (lambda s: s.sell("A", 10, trail_percent=0.0), "trail_percent"),
    "trail_percent one": (lambda s: s.sell("A", 10, trail_percent=1.0), "trail_percent"),
    "trail_percent above one": (lambda s: s.sell("A", 10, trail_percent=1.5), "trail_percent"),
    "trail_percent negative": (lambda s: s.sell("A", 10, trail_percent=-0.1), "trail_percent"),
    "trail_amount NaN": (lambda s: s.sell("A", 10, trail_amount=float("nan")), "trail_amount"),
    "both trailing distances": (
        lambda s: s.sell("A", 10, trail_amount=1.0, trail_percent=0.01),
        "exactly one of trail_amount and trail_percent"),
    "trailing stop with a stop price": (
        lambda s: s.order("A", -10, stop_price=95, trail_amount=1.0), "takes no"),
    "trailing stop with a limit price": (
        lambda s: s.order("A", -10, limit_price=95, trail_amount=1.0), "takes no"),
    "trailing stop before the asset has a price": (
        lambda s: s.sell("B", 10, trail_amount=1.0), "no bar yet"),
    "GTD expiry in the past": (
        lambda s: s.buy("A", 1, limit_price=90, expire_at=day(0) - dt.timedelta(hours=1)),
        "in the past"),
    "GTD expiry equal to now": (
        lambda s: s.order("A", 1, limit_price=90, time_in_force="gtd", expire_at=day(0)),
        "in the past"),
    "GTD without an expiry": (
        lambda s: s.order("A", 1, limit_price=90, time_in_force="gtd"), "expire_at"),
    "expire_at with DAY": (
        lambda s: s.order("A", 1, limit_price=90, time_in_force="day", expire_at=day(3)),
        "only GTD orders"),
    "expire_at with IOC": (
        lambda s: s.order("A", 1, limit_price=90, time_in_force="ioc", expire_at=day(3)),
        "only GTD orders"),
    "expire_at with FOK": (
        lambda s: s.order("A", 1, time_in_force="fok", expire_at=day(3)), "only GTD orders"),
    "expire_at not a time": (
        lambda s: s.order("A", 1, limit_price=90, expire_at="not a date"), "expire_at"),
    "unknown order_type": (lambda s: s.order("A", 1, order_type="iceberg"), "unknown order_type"),
    "unknown time_in_force": (
        lambda s: s.order("A", 1, time_in_force="forever"), "unknown time_in_force"),
    "time_in_force in capitals": (
        lambda s: s.order("A", 1, time_in_force="GTC"), "unknown time_in_force"),
    "order_type limit without a limit price": (
        lambda s: s.order("A", 1, order_type="limit"), "does not match"),
    "order_type market with a limit price": (
        lambda s: s.order("A", 1, limit_price=90, order_type="market"), "does not match"),
    "order_type stop with a limit price": (
        lambda s: s.order("A", 1, limit_price=90, order_type="stop"), "does not match"),
    "order_type stop_limit with only a stop": (
        lambda s: s.order("A", 1, stop_price=110, order_type="stop_limit"), "does not match"),
    "order_type market_on_close with a limit price": (
        lambda s: s.order("A", 1, limit_price=90, order_type="market_on_close"),
        "does not match"),
    "order_type trailing_stop without a distance": (
        lambda s: s.order("A", -1, order_type="trailing_stop"), "does not match"),
    "buy negative quantity": (lambda s: s.buy("A", -5), "buy quantity must be > 0"),
    "buy zero quantity": (lambda s: s.buy("A", 0), "buy quantity must be > 0"),
    "sell negative quantity": (lambda s: s.sell("A", -5), "sell quantity must be > 0"),
    "sell zero quantity": (lambda s: s.sell("A", 0), "sell quantity must be > 0"),
    "unknown parent id": (lambda s: s.order("A", -1, stop_price=90, parent=99), "no parent"),
    "oco of no order": (lambda s: s.oco(), "at least two"),
    "replace an unknown id": (lambda s: s.replace(99, limit_price=90), "no order with id 99"),
    "bracket with no legs": (lambda s: s.bracket("A", 10), "needs a stop_loss"),
    "bracket with a limit entry and no legs": (
        lambda s: s.bracket("A", 10, limit_price=99), "needs a stop_loss"),
    "bracket with stop_loss and trail_amount": (
        lambda s: s.bracket("A", 10, stop_loss=95, trail_amount=2.0), "not both"),
    "bracket with stop_loss and trail_percent": (
        lambda s: s.bracket("A", 10, stop_loss=95, take_profit=110, trail_percent=0.02),
        "not both"),
    "bracket with a negative take_profit": (
        lambda s: s.bracket("A", 10, take_profit=-1.0), "take_profit must be > 0"),
    "bracket with a zero stop_loss": (
        lambda s: s.bracket("A", 10, stop_loss=0.0), "stop_loss must be > 0"),
    # Types and ranges of quantities, ids and parents: what was expected is named.
    "buy a string quantity": (lambda s: s.buy("A", "10"), r"quantity must be a number .*str"),
    "buy a bool quantity": (lambda s: s.buy("A", True), r"quantity must be a number .*bool"),
    "buy a numpy bool quantity": (
        lambda s: s.buy("A", np.True_), r"quantity must be a number .*bool"),
    "order a string quantity": (lambda s: s.order("A", "10"), "quantity must be a number"),
    "buy a quantity too large for a float": (
        lambda s: s.buy("A", 10**400), "too large for a float"),
    "buy an infinite quantity": (lambda s: s.buy("A", float("inf")), "finite"),
    "buy a NaN quantity": (lambda s: s.buy("A", float("nan")), "finite"),
    "limit price as a string": (
        lambda s: s.buy("A", 1, limit_price="99"), "limit_price must be a number"),
    "target as a bool": (
        lambda s: s.order_target_quantity("A", False), "target must be a number"),
    "cancel a string": (lambda s: s.cancel("abc"), r"OrderEvent or an order id .*str"),
    "cancel an id too large": (lambda s: s.cancel(2**70), "no order with id"),
    "cancel a negative id": (lambda s: s.cancel(-3), "id must be >= 0, got -3"),
    "cancel a bool": (lambda s: s.cancel(True), "OrderEvent or an order id"),
    "get_order of an unknown id": (lambda s: s.get_order(2**70), "no order with id"),
    "parent -5": (lambda s: s.order("A", -1, stop_price=90, parent=-5), "parent id must be >= 0"),
    "parent as a string": (
        lambda s: s.order("A", -1, stop_price=90, parent="0"), "parent must be an OrderEvent"),
    "parent as a bool": (
        lambda s: s.order("A", -1, stop_price=90, parent=True), "parent must be an OrderEvent"),
    "parent too large": (
        lambda s: s.order("A", -1, stop_price=90, parent=2**70), "no parent order with id"),
    "oco with a float id": (lambda s: s.oco(0.0, 1.0), "OrderEvent or an order id"),
    "replace a string id": (lambda s: s.replace("0", limit_price=90), "OrderEvent or an order id"),
    "order_many id beyond int32": (
        lambda s: s.order_many([2**32 + 1], [1.0]), r"unknown asset id 4294967297 at position 0"),
    "order_many negative id": (lambda s: s.order_many([0, -1], [1.0, 1.0]), "unknown asset id -1"),
    "order_many float ids": (
        lambda s: s.order_many(np.array([0.7, 1.9]), [1.0, 1.0]), "dtype float64"),
    "order_many float ids in a list": (
        lambda s: s.order_many([0.7, 1.9], [1.0, 1.0]), "dtype float64"),
    "order_many bool ids": (lambda s: s.order_many([True, False], [1.0, 1.0]), "dtype bool"),
    "order_many a bool among mixed ids": (
        lambda s: s.order_many(["A", True], [1.0, 1.0]), "an asset is a name"),
    "order_many 2-d ids": (
        lambda s: s.order_many(np.array([[0, 1]]), np.array([[1.0, 1.0]])), "one-dimensional"),
    "order_many 2-d quantities": (
        lambda s: s.order_many([0], np.array([[1.0]])), "one-dimensional"),
    "order_many string quantities": (
        lambda s: s.order_many([0, 1], ["1", "2"]), "quantities must be numbers"),
    "order_many bool quantities": (
        lambda s: s.order_many([0, 1], [True, True]), "quantities must be numbers"),
    "order_many infinite quantity": (
        lambda s: s.order_many([0, 1], [1.0, float("inf")]),
        "finite numbers, got inf at position 1"),
    "order_many huge int quantity": (
        lambda s: s.order_many([0], [10**400]), "too large for a float"),
    "order_many length mismatch": (
        lambda s: s.order_many([0, 1], [1.0]), "same length"),
}


@pytest.mark.parametrize("case", list(BAD_CALLS))
def test_bad_call_raises_order_error_and_stores_nothing(case):
    call, message = BAD_CALLS[case]
    res, state = attempt_at_step(0, None, lambda s, o: call(s), message)
    assert res.orders.height == 0 and res.fills.height == 0
    assert state["open_after"] == []


def test_wrong_side_messages_name_both_prices():
    _, state = attempt_at_step(0, None,
                               lambda s, o: s.order("A", 10, stop_price=101, limit_price=100),
                               "wrong side")
    assert "100" in state["error"] and "101" in state["error"]


def test_a_stop_limit_with_limit_equal_to_stop_is_accepted():
    def place(s, v):
        s.order("A", 10, stop_price=100.5, limit_price=100.5)
        s.order("A", -10, stop_price=99.5, limit_price=99.5)

    res = run(bars({"A": [FLAT, FLAT]}), Scripted({0: place}), initial_cash=10_000)
    assert res.orders["type"].to_list() == ["stop_limit", "stop_limit"]


def test_trailing_stop_in_on_start_has_no_price_yet():
    seen = {}

    def start(s):
        with pytest.raises(OrderError, match="no bar yet"):
            s.sell("A", 10, trail_percent=0.05)
        seen["raised"] = True

    res = run(bars({"A": [FLAT, FLAT]}), Scripted(start=start), initial_cash=10_000)
    assert seen == {"raised": True}
    assert res.orders.height == 0


def test_gtd_expiry_in_the_past_from_on_start():
    seen = {}

    def start(s):
        # on_start orders carry the first timestamp: an expiry at it is not after it
        with pytest.raises(OrderError, match="in the past"):
            s.buy("A", 1, limit_price=90, expire_at=day(0))
        seen["raised"] = True

    res = run(bars({"A": [FLAT, FLAT]}), Scripted(start=start), initial_cash=10_000)
    assert seen == {"raised": True} and res.orders.height == 0


# ----------------------------------------------------------------- calls that need earlier orders
def _filled_and_cancelled(s):
    filled = s.buy("A", 1)  # fills at day 1's open
    cancelled = s.buy("A", 1, limit_price=50)
    s.cancel(cancelled)
    return {"filled": filled, "cancelled": cancelled}


@pytest.mark.parametrize("which", ["filled", "cancelled"])
def test_parent_that_has_ended_is_refused(which):
    res, state = attempt_at_step(
        1, _filled_and_cancelled,
        lambda s, o: s.order("A", -1, stop_price=90, parent=o[which]),
        f"parent order {0 if which == 'filled' else 1} is no longer working")
    assert res.orders.height == 2


@pytest.mark.parametrize("which", ["filled", "cancelled"])
def test_replace_of_an_order_that_has_ended_is_refused(which):
    res, state = attempt_at_step(
        1, _filled_and_cancelled, lambda s, o: s.replace(o[which], quantity=2),
        "no longer working and cannot be replaced")
    assert res.orders.height == 2
    assert res.orders["status"].to_list() == ["filled", "cancelled"]


def test_replace_of_a_partly_filled_order_is_refused():
    data = bars({"A": [FLAT] * 3}, volume=1_000)
    res, state = attempt_at_step(
        1, lambda s: {"o": s.buy("A", 250)}, lambda s, o: s.replace(o["o"], quantity=300),
        "partly filled", data=data, max_volume_participation=0.1, initial_cash=100_000)
    assert res.orders.height == 1
    assert res.fills["quantity"].to_list() == [100.0, 100.0]  # it keeps working


def test_oco_of_a_single_order_is_refused():
    res, state = attempt_at_step(0, lambda s: {"o": s.buy("A", 1, limit_price=90)},
                                 lambda s, o: s.oco(o["o"]), "at least two")
    assert state["orders"]["o"].oco_group is None


def test_oco_with_an_order_already_in_a_group_is_refused():
    def setup(s):
        a = s.buy("A", 1, limit_price=90)
        b = s.buy("A", 1, limit_price=80)
        c = s.buy("A", 1, limit_price=70)
        s.oco(a, b)
        return {"a": a, "b": b, "c": c}

    res, state = attempt_at_step(0, setup, lambda s, o: s.oco(o["c"], o["a"]),
                                 "order 0 is already in OCO group 0")
    # c was not put in a group by the failed call
    c = state["orders"]["c"]
    assert c.oco_group is None


def test_oco_with_a_filled_order_or_twice_the_same_order_is_refused():
    def setup(s):
        return {"filled": s.buy("A", 1), "rest": s.buy("A", 1, limit_price=50)}

    attempt_at_step(1, setup, lambda s, o: s.oco(o["filled"], o["rest"]), "no longer working")
    attempt_at_step(1, setup, lambda s, o: s.oco(o["rest"], o["rest"]), "twice")


@pytest.mark.parametrize("leg", [{"trail_percent": 5.0}, {"trail_percent": 0.0},
                                 {"trail_amount": -1.0}])
def test_bracket_with_a_bad_trailing_leg_places_nothing(leg):
    # The protective leg is invalid: the whole bracket call must fail without
    # leaving its entry working (it would open an unprotected position).
    res, state = attempt_at_step(0, None, lambda s, o: s.bracket("A", 10, **leg),
                                 "trail_")
    assert res.orders.height == 0 and res.fills.height == 0


def test_replace_with_invalid_prices_leaves_the_order_as_it_was():
    def setup(s):
        return {"o": s.buy("A", 10, stop_price=110, limit_price=111)}

    res, state = attempt_at_step(1, setup, lambda s, o: s.replace(o["o"], limit_price=100),
                                 "wrong side")
    o = state["orders"]["o"]
    assert (o.status, o.limit_price, o.stop_price) == ("accepted", 111.0, 110.0)
    assert res.orders.height == 1


def test_bracket_with_a_trailing_leg_before_the_asset_has_a_price_places_nothing():
    # B has no bar yet at day 0: the trailing leg cannot be set up. The whole
    # bracket call must fail without leaving its entry behind.
    res, state = attempt_at_step(0, None, lambda s, o: s.bracket("B", 10, trail_amount=2.0),
                                 "no bar yet")
    assert res.orders.height == 0 and res.fills.height == 0


# ----------------------------------------------------------------- config
@pytest.mark.parametrize("knob, value", [
    ("intrabar_path", "hloc"),
    ("intrabar_path", "OHLC"),
    ("intrabar_path", None),
    ("max_volume_participation", 0),
    ("max_volume_participation", 0.0),
    ("max_volume_participation", 1.5),
    ("max_volume_participation", -0.1),
    ("max_volume_participation", float("nan")),
    ("max_volume_participation", True),
    ("max_volume_participation", "0.1"),
    ("latency", "abc"),
    ("latency", -1),
    ("latency", "5 parsecs"),
    ("latency", "-1s"),
    ("latency", dt.timedelta(seconds=-1)),
    ("latency", 1.5),
    ("latency", True),
    ("latency_bars", -1),
    ("latency_bars", 1.5),
    ("latency_bars", True),
    ("same_bar_reentry", 1),
    ("same_bar_reentry", "yes"),
])
def test_config_rejects_bad_broker_knob_naming_it(knob, value):
    with pytest.raises(ConfigError, match=knob):
        BacktestConfig(**{knob: value})


@pytest.mark.parametrize("knobs", [
    {"intrabar_path": "ohlc"}, {"intrabar_path": "olhc"}, {"intrabar_path": "adaptive"},
    {"intrabar_path": "submission"},
    {"max_volume_participation": 1}, {"max_volume_participation": 0.25},
    {"max_volume_participation": None},
    {"latency": 0}, {"latency": "250ms"}, {"latency": "36h"}, {"latency": "1.5d"},
    {"latency": dt.timedelta(minutes=5)}, {"latency": "1000000000ns"},
    {"latency_bars": 0}, {"latency_bars": 3},
    {"same_bar_reentry": True},
])
def test_config_accepts_good_broker_knobs(knobs):
    BacktestConfig(**knobs)


@pytest.mark.parametrize("value, ns", [
    ("250ms", 250_000_000), ("1s", 10**9), ("5m", 300 * 10**9), ("36h", 36 * 3_600 * 10**9),
    ("1.5d", 36 * 3_600 * 10**9), (dt.timedelta(hours=1, microseconds=1), 3_600 * 10**9 + 1_000),
    ("42ns", 42), ("1h30m", 5_400 * 10**9), ("1w", 7 * 86_400 * 10**9),
])
def test_config_latency_in_nanoseconds(value, ns):
    assert BacktestConfig(latency=value).latency_ns == ns


def test_config_from_dict_validates_broker_knobs():
    with pytest.raises(ConfigError, match="max_volume_participation"):
        BacktestConfig.from_dict({"max_volume_participation": 2})
    cfg = BacktestConfig.from_dict({"intrabar_path": "olhc", "latency": "1s", "latency_bars": 2,
                                    "same_bar_reentry": True, "max_volume_participation": 0.5})
    assert BacktestConfig.from_dict(cfg.to_dict()) == cfg


# ----------------------------------------------------------------- unknown assets
def test_unknown_asset_suggests_the_close_match_and_lists_the_assets():
    data = bars({"AAPL": [FLAT] * 2, "MSFT": [FLAT] * 2, "TSLQ": [FLAT] * 2})
    _, state = attempt_at_step(0, None, lambda s, o: s.order("TSLA", 1), "unknown asset 'TSLA'",
                               data=data)
    assert "did you mean 'TSLQ'?" in state["error"]
    assert "available assets: 'AAPL', 'MSFT', 'TSLQ'" in state["error"]
    _, state = attempt_at_step(0, None, lambda s, o: s.get_position("msft"), "unknown asset",
                               data=data)
    assert "did you mean 'MSFT'?" in state["error"]


def test_unknown_asset_among_many_lists_the_first_ten_and_the_count():
    names = [f"S{i:03d}" for i in range(40)]
    data = bars({n: [FLAT] * 2 for n in names})
    _, state = attempt_at_step(0, None, lambda s, o: s.order("ZZZZZZ", 1), "unknown asset",
                               data=data)
    assert "did you mean" not in state["error"]
    assert "available assets: 'S000', 'S001'" in state["error"]
    assert "'S009', ... and 30 more" in state["error"]
    assert "'S010'" not in state["error"]


# ----------------------------------------------------------------- sizing helpers
SIZING_BAD_CALLS = {
    "order_value NaN": (lambda s: s.order_value("A", float("nan")), "value must be a finite"),
    "order_value before the asset's first bar": (
        lambda s: s.order_value("B", 1_000), "'B' has no price yet"),
    "order_percent a string": (lambda s: s.order_percent("A", "0.1"), "percent must be a number"),
    "order_percent bad limit": (
        lambda s: s.order_percent("A", 0.1, limit_price=-1), "limit"),
    "target tolerance negative": (
        lambda s: s.order_target_percent("A", 0.5, tolerance=-0.01), "tolerance must be >= 0"),
    "target tolerance NaN": (
        lambda s: s.order_target_quantity("A", 5, tolerance=float("nan")),
        "tolerance must be a finite"),
    "target tolerance a string": (
        lambda s: s.order_target_value("A", 500, tolerance="1%"), "tolerance must be a number"),
}


@pytest.mark.parametrize("case", list(SIZING_BAD_CALLS))
def test_bad_sizing_call_raises_order_error_and_stores_nothing(case):
    call, message = SIZING_BAD_CALLS[case]
    res, state = attempt_at_step(0, None, lambda s, o: call(s), message)
    assert res.orders.height == 0


@pytest.mark.parametrize("method", ["buy", "sell", "order", "order_value", "order_percent",
                                    "order_target_percent"])
def test_unknown_keyword_to_an_order_helper_is_a_type_error(method):
    def call(s, v):
        with pytest.raises(TypeError, match="limit"):
            getattr(s, method)("A", 1, limit=99.0)
        seen.append(len(s._broker))

    seen = []
    run(bars({"A": [FLAT] * 2}), Scripted({0: call}))
    assert seen == [0]


def test_percent_sizing_with_equity_not_positive_raises():
    # A short squeezed far enough takes equity below zero; percent sizing is then refused.
    up = [(100, 100, 100, 100), (100, 400, 100, 400), (400, 400, 400, 400), (400, 400, 400, 400)]
    errors = {}

    def probe(s, v):
        for name, call in (("order_percent", lambda: s.order_percent("A", 0.1)),
                           ("order_target_percent", lambda: s.order_target_percent("A", 0.1))):
            with pytest.raises(OrderError, match="equity is -") as info:
                call()
            errors[name] = str(info.value)
        errors["weights"] = s.weights().tolist()

    run(bars({"A": up}), Scripted({0: lambda s, v: s.sell("A", 100), 2: probe}),
        allow_short=True, initial_cash=10_000)
    assert set(errors) == {"order_percent", "order_target_percent", "weights"}
    assert np.isnan(errors["weights"]).all()


# ----------------------------------------------------------------- indicator declarations
# Every refused declaration of mlbacktest.indicators: a bad window or parameter at the call
# that declares it; a bad name, an unknown input, a cycle or a custom function that looks
# ahead at the end of on_start, before the first bar (no hook ever sees a bar).
from mlbacktest import (  # noqa: E402
    BacktestEngine,
    IndicatorError,
    ParquetDataFeed,
    PolarsDataFeed,
    Strategy,
)
from mlbacktest import indicators as ind  # noqa: E402


@pytest.mark.parametrize("make, message", [
    (lambda: ind.SMA("close", 0), "SMA window must be >= 1, got 0"),
    (lambda: ind.EMA("close", -3), "EMA window must be >= 1, got -3"),
    (lambda: ind.RSI("close", 2.5), r"RSI window must be a whole number of bars \(int\), "
                                    "got float 2.5"),
    (lambda: ind.ATR(True), "ATR window must be a whole number of bars.*got bool True"),
    (lambda: ind.StdDev("close", "20"), "StdDev window must be a whole number.*got str '20'"),
    (lambda: ind.Highest("close", None), "Highest window must be a whole number.*NoneType"),
    (lambda: ind.StdDev("close", 3, ddof=3), "StdDev ddof must be < window, got ddof=3"),
    (lambda: ind.ZScore("close", 1, ddof=1), "ZScore ddof must be < window"),
    (lambda: ind.Bollinger("close", 20, k=float("nan")), "Bollinger k must be finite"),
    (lambda: ind.SMA(42, 3), r"SMA input must be a column name \(str\) or an indicator, "
                             "got int 42"),
    (lambda: ind.SMA("", 3), "SMA input is an empty column name"),
    (lambda: ind.CrossOver("close", [1, 2]), "CrossOver second input must be a column name"),
    (lambda: ind.CrossOver("close", float("inf")), "CrossOver level must be finite"),
    (lambda: ind.Custom("not a function"), "Custom needs a callable, got str"),
    (lambda: ind.Custom(np.cumsum, lookback=0), "Custom 'cumsum' lookback must be >= 1"),
])
def test_a_bad_indicator_parameter_is_refused_at_the_declaration(make, message):
    with pytest.raises(IndicatorError, match=message):
        make()


def test_a_declared_series_has_no_truth_value():
    with pytest.raises(TypeError, match="declared series, not a value"):
        bool(ind.SMA("close", 3) > ind.SMA("close", 5))


def _decl_data():
    return bars({"A": [FLAT] * 5, "B": [FLAT] * 5},
                signals={"pred": {"A": [0.1] * 5, "B": [0.2] * 5}})


def _refused(strategy, message, feed=None, **knobs):
    """The run raises IndicatorError matching ``message`` before any bar reaches a hook."""
    feed = PolarsDataFeed(_decl_data(), signal_columns=["pred"]) if feed is None else feed
    with pytest.raises(IndicatorError, match=message) as info:
        BacktestEngine(feed, strategy, BacktestConfig(**knobs)).run(progress=False)
    assert type(strategy).seen == [], "a bar reached the strategy before the refusal"
    return str(info.value)


def _declaring(on_start=None, **attrs):
    """A Strategy class with indicator class attributes ``attrs`` and an ``on_start``."""
    seen: list[int] = []
    body = dict(attrs, seen=seen,
                on_market_data=lambda self, event, context: seen.append(event.ts))
    if on_start is not None:
        body["on_start"] = on_start
    return type("Declaring", (Strategy,), body)


@pytest.mark.parametrize("cls, message", [
    (lambda: _declaring(lambda s: s.add_indicator("a", ind.EMA("close", 3)),
                        a=ind.SMA("close", 3)), "indicator 'a' is declared twice"),
    (lambda: _declaring(lambda s: s.add_indicator("close", ind.SMA("open", 3))),
     "indicator name 'close' shadows a bar field or signal"),
    (lambda: _declaring(pred=ind.SMA("close", 3)),
     "indicator name 'pred' shadows a bar field or signal"),
    (lambda: _declaring(lambda s: s.add_indicator("buy", ind.SMA("close", 3))),
     "indicator name 'buy' is a Strategy helper or hook"),
    (lambda: _declaring(history=ind.SMA("close", 3)),
     "indicator name 'history' is a Strategy helper or hook"),
    (lambda: _declaring(lambda s: s.add_indicator("my sma", ind.SMA("close", 3))),
     "an indicator name must be a Python identifier"),
    (lambda: _declaring(lambda s: s.add_indicator("x", 3)),
     "indicator 'x' must be a declaration of mlbacktest.indicators, got int"),
    (lambda: _declaring(s=ind.SMA("clsoe", 3)),
     r"indicator 's' reads unknown column 'clsoe'.*did you mean 'close'"),
    (lambda: _declaring(s=ind.SMA(ind.EMA("prde", 3), 3)), "reads unknown column 'prde'"),
    (lambda: _declaring(a=ind.SMA("b", 2), b=ind.EMA("a", 2)),
     "indicators depend on each other in a cycle: a -> b -> a"),
    (lambda: _declaring(a=ind.SMA("a", 2)), "cycle: a -> a"),
    (lambda: _declaring(lambda s: s.add_indicator("b", s.a), a=ind.SMA("close", 2)),
     "the same indicator object is declared as both 'a' and 'b'"),
    (lambda: _declaring(c=ind.Custom(lambda x: np.roll(x, -1), name="tomorrow")),
     r"custom indicator 'tomorrow' looks ahead: on a synthetic sample, its value at "
     r"index 94 is .* computed from the first 95 bars but .* from all 96"),
    (lambda: _declaring(c=ind.Custom(lambda x: np.convolve(x, np.ones(3) / 3, "same"),
                                     name="centred")),
     "custom indicator 'centred' looks ahead"),
    (lambda: _declaring(c=ind.Custom(lambda x: x - x.mean(), name="demean")),
     r"'demean' looks ahead.*a value may use only the bars up to its own"),
    (lambda: _declaring(c=ind.Custom(lambda x: x[1:], name="short")),
     r"custom indicator 'short' returned shape \(95,\) for 96 bars"),
    (lambda: _declaring(c=ind.Custom(lambda x: x > 100, name="flag")),
     "custom indicator 'flag' returned an array of dtype bool"),
    (lambda: _declaring(c=ind.Custom(lambda x: np.cumsum(x), lookback=3, name="cum")),
     "custom indicator 'cum' depends on more than lookback=3 bars"),
])
def test_a_bad_declaration_is_refused_before_the_first_bar(cls, message):
    _refused(cls()(), message)


def test_reading_an_event_by_an_unknown_name_or_a_non_str_key_is_refused():
    class Reads(Strategy):
        fast = ind.SMA("close", 3)

        def on_start(self):
            self.checked = False

        def on_market_data(self, event, context):
            if self.checked:
                return
            with pytest.raises(KeyError, match=r"no bar field, signal or indicator named 'fsat'"
                                                r".*indicators \['fast'\]"):
                event["fsat"]
            with pytest.raises(TypeError, match="read by column name \\(str\\), got int 0"):
                event[0]
            with pytest.raises(KeyError, match=r"no indicator named 'close'"):
                event.indicators["close"]
            self.checked = True

    s = Reads()
    BacktestEngine(PolarsDataFeed(_decl_data()), s).run(progress=False)
    assert s.checked


def test_add_indicator_after_on_start_is_refused():
    class Late(Strategy):
        def on_slice(self, view, context):
            self.add_indicator("late", ind.SMA("close", 3))

    with pytest.raises(IndicatorError, match="add_indicator.*called after on_start"):
        BacktestEngine(PolarsDataFeed(_decl_data()), Late()).run(progress=False)


def test_add_indicator_in_init_is_refused_naming_on_start():
    class Early(Strategy):
        def __init__(self):
            self.add_indicator("early", ind.SMA("close", 3))

    with pytest.raises(IndicatorError, match="declare indicators in on_start or as class"):
        Early()


def test_a_custom_indicator_in_a_streamed_run_needs_a_lookback_within_the_window(tmp_path):
    path = tmp_path / "bars.parquet"
    _decl_data().write_parquet(path)

    def feed():
        return ParquetDataFeed(path, chunk="1d", signal_columns=["pred"])

    cum = _declaring(c=ind.Custom(np.cumsum))
    msg = _refused(cum(), "custom indicator 'cumsum' needs a lookback in a streamed run",
                   feed=feed(), history_window=5)
    assert "Custom(fn, ..., lookback=n)" in msg
    long = _declaring(c=ind.Custom(lambda x: x, lookback=9, name="ident"))
    _refused(long(), "'ident' has lookback 9 but the streamed run carries 5 bars per asset.*"
                     "raise BacktestConfig.history_window to at least 9",
             feed=feed(), history_window=5)


def test_a_lookback_that_holds_only_up_to_rounding_is_refused_naming_bit_for_bit():
    # (x + len) - len: the value of one bar, rounded differently for each length of input
    shifted = _declaring(c=ind.Custom(lambda x: (x + x.size) - x.size, lookback=1,
                                      name="shifted"))
    msg = _refused(shifted(), "custom indicator 'shifted' gives .* the same value up to rounding")
    assert "bit for bit" in msg
