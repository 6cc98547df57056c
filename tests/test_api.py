"""One vocabulary for the public API: exports, names, signatures and their deprecated aliases.

Bad inputs of these helpers are in ``test_order_errors.py``; this file checks
what they do with good ones, and that every renamed name keeps an alias that
warns with the new name.
"""

from __future__ import annotations

import inspect
import warnings

import numpy as np
import pytest
from helpers import Scripted, bars, day, run

import mlbacktest
from mlbacktest import Strategy, models

FLAT = (100, 101, 99, 100)


# ----------------------------------------------------------------- exports
def test_every_public_model_class_is_exported_at_top_level():
    classes = [n for n in models.__all__ if inspect.isclass(getattr(models, n))]
    assert "TieredCommission" in classes and "AlmgrenChrissImpact" in classes
    missing = [n for n in classes if n not in mlbacktest.__all__]
    assert missing == []
    for name in classes:
        assert getattr(mlbacktest, name) is getattr(models, name)


@pytest.mark.parametrize("name", ["PositionRules", "Bracket", "NoCommission", "NoSlippage",
                                  "SquareRootImpact", "LinearImpact", "TieredCommission"])
def test_configurable_things_are_importable_from_the_package(name):
    assert name in mlbacktest.__all__
    assert getattr(mlbacktest, name) is not None


def test_all_names_resolve():
    for name in mlbacktest.__all__:
        assert hasattr(mlbacktest, name), name


# ----------------------------------------------------------------- reserved names
@pytest.mark.parametrize("name", ["assets", "weights", "history", "now", "order", "rebalance",
                                  "signal_names", "get_position"])
def test_assigning_a_helper_name_in_init_is_refused_with_its_name(name):
    class Shadowing(Strategy):
        def __init__(self):
            setattr(self, name, [1, 2, 3])

    with pytest.raises(AttributeError, match=rf"self\.{name}: '{name}' is a Strategy helper"):
        Shadowing()


def test_assigning_a_hook_on_the_instance_is_refused():
    s = Strategy()
    with pytest.raises(AttributeError, match="'on_fill' is a Strategy hook; define it in the "
                                             "class body"):
        s.on_fill = print


def test_the_guard_is_compiled_so_ordinary_assignments_cost_no_python_call():
    from mlbacktest._guard import Guarded, reserved
    from mlbacktest.strategy import RESERVED_NAMES

    assert issubclass(Strategy, Guarded) and "__setattr__" not in vars(Strategy)
    assert type(Guarded.__setattr__).__name__ == "wrapper_descriptor"  # a C slot
    assert reserved() == RESERVED_NAMES
    assert {"weights", "weights_dict", "order_value", "on_slice", "assets"} <= RESERVED_NAMES


def test_own_state_is_stored_as_usual_and_helpers_stay_reachable():
    class Counting(Strategy):
        def __init__(self):
            self.n = 0
            self.my_weights = None

        def on_slice(self, view, context):
            self.n += 1
            self.my_weights = self.weights(view)

    s = Counting()
    run(bars({"A": [FLAT] * 3}), s)
    assert s.n == 3 and s.my_weights.tolist() == [0.0]


# ----------------------------------------------------------------- sizing family
ORDER_KEYWORDS = ["limit_price", "stop_price", "trail_amount", "trail_percent", "order_type",
                  "time_in_force", "expire_at", "parent"]


@pytest.mark.parametrize("method", ["buy", "sell", "order_value", "order_percent"])
def test_order_family_shows_the_keywords_of_order(method):
    params = inspect.signature(getattr(Strategy, method)).parameters
    assert list(params)[3:] == ORDER_KEYWORDS
    assert not any(p.kind is p.VAR_KEYWORD for p in params.values())
    assert list(inspect.signature(Strategy.order).parameters)[3:] == ORDER_KEYWORDS


def test_order_value_and_order_percent_add_to_the_position():
    out = {}

    def step0(s, v):
        out["value"] = s.order_value("A", 1_050)            # 10.5 units at the close of 100
        out["percent"] = s.order_percent("B", -0.1)         # -10 % of 100k at 50: -200 units
        out["limit"] = s.order_value("A", 500, 95.0)        # a limit buy of 5
        out["zero"] = s.order_percent("A", 1e-9)            # rounds to nothing (whole units)

    data = bars({"A": [FLAT] * 3, "B": [(50, 51, 49, 50)] * 3})
    res = run(data, Scripted({0: step0}), initial_cash=100_000, fractional=False,
              allow_short=True)
    assert out["value"].quantity == 10 and out["value"].order_type == "market"
    assert out["percent"].quantity == -200
    assert out["limit"].quantity == 5 and out["limit"].limit_price == 95.0
    assert out["zero"] is None
    assert res.orders.height == 3


def test_buy_and_sell_take_prices_positionally_like_order():
    out = {}

    def step0(s, v):
        out["buy"] = s.buy("A", 3, 95.0)
        out["sell"] = s.sell("A", 2, None, 90.0, time_in_force="day")

    run(bars({"A": [FLAT] * 2}), Scripted({0: step0}), allow_short=True)
    assert (out["buy"].order_type, out["buy"].limit_price) == ("limit", 95.0)
    assert (out["sell"].order_type, out["sell"].stop_price) == ("stop", 90.0)
    assert out["sell"].quantity == -2 and out["sell"].time_in_force == "day"


# ----------------------------------------------------------------- target tolerance
def _drifting(n: int = 6) -> dict:
    """A rises 1 % a bar (A's 50 % weight drifts up), B flat."""
    a = [(100 * 1.01**i,) * 4 for i in range(n)]
    return {"A": a, "B": [FLAT] * n}


@pytest.mark.parametrize("tolerance, n_orders", [(0.0, 5), (0.05, 1), (0.002, 5)])
def test_target_percent_tolerance_skips_drift_within_the_band(tolerance, n_orders):
    def every_bar(s, v):
        s.order_target_percent("A", 0.5, tolerance=tolerance)

    res = run(bars(_drifting()), Scripted({i: every_bar for i in range(5)}),
              initial_cash=100_000)
    assert res.orders.height == n_orders


def test_target_tolerance_trades_beyond_the_band_and_always_closes():
    out = {}

    def step0(s, v):
        out[0] = s.order_target_quantity("A", 100)

    def step1(s, v):  # held 100 at 100 of ~100k equity: a 10-unit gap is 1 % of equity
        out["q_within"] = s.order_target_quantity("A", 110, tolerance=0.02)
        out["v_within"] = s.order_target_value("A", 11_000, tolerance=0.02)
        out["p_within"] = s.order_target_percent("A", 0.11, tolerance=0.02)
        out["beyond"] = s.order_target_quantity("A", 130, tolerance=0.02)

    def step2(s, v):
        out["close"] = s.order_target_percent("A", 0.0, tolerance=0.5)

    run(bars({"A": [FLAT] * 4}), Scripted({0: step0, 1: step1, 2: step2}),
        initial_cash=100_000)
    assert out["q_within"] is None and out["v_within"] is None and out["p_within"] is None
    assert out["beyond"].quantity == 30
    assert out["close"].quantity == -130


def test_target_tolerance_matches_rebalance():
    def via(helper):
        def step(s, v):
            if helper:
                s.order_target_percent("A", 0.5, tolerance=0.01)
            else:
                s.rebalance({"A": 0.5}, tolerance=0.01)
        res = run(bars(_drifting(8)), Scripted({i: step for i in range(7)}),
                  initial_cash=100_000)
        return [(t, round(q, 6)) for t, q in res.orders.select("timestamp", "quantity").rows()]

    trades = via(True)
    assert 1 < len(trades) < 7 and trades == via(False)


# ----------------------------------------------------------------- weights
def test_weights_and_weights_dict_agree_and_get_weights_is_a_deprecated_alias():
    out = {}

    def step1(s, v):
        out["array"] = s.weights().tolist()
        out["dict"] = s.weights_dict()
        with pytest.warns(DeprecationWarning, match=r"use Strategy\.weights_dict\(\)"):
            out["alias"] = s.get_weights()

    run(bars({"A": [FLAT] * 3, "B": [FLAT] * 3}),
        Scripted({0: lambda s, v: s.buy("A", 100), 1: step1}), initial_cash=100_000)
    assert out["array"] == [0.1, 0.0]
    assert out["dict"] == out["alias"] == {"A": 0.1}


def test_weights_are_nan_when_equity_is_not_positive_in_both_apis():
    up = [(100, 100, 100, 100), (100, 400, 100, 400), (400, 400, 400, 400)]
    out = {}

    def probe(s, v):
        out["strategy"] = s.weights(v).tolist()
        out["view"] = v.weights.tolist()
        out["dict"] = s.weights_dict()

    run(bars({"A": up}), Scripted({0: lambda s, v: s.sell("A", 100), 2: probe}),
        allow_short=True, initial_cash=10_000)
    assert np.isnan(out["strategy"]).all() and np.isnan(out["view"]).all()
    assert np.isnan(out["dict"]["A"])


# ----------------------------------------------------------------- timers
def test_schedule_at_takes_the_callback_first_like_schedule():
    fired = []

    class Timed(Strategy):
        def on_start(self):
            self.schedule_at(self.mark, day(1))

        def mark(self, context):
            fired.append(self.now)

    run(bars({"A": [FLAT] * 3}), Timed())
    assert fired == [day(1)]


def test_schedule_at_in_the_former_order_warns_and_still_works():
    fired = []

    class Timed(Strategy):
        def on_start(self):
            with pytest.warns(DeprecationWarning, match=r"use schedule_at\(fn, when\)"):
                self.schedule_at(day(2), self.mark)

        def mark(self, context):
            fired.append(self.now)

    run(bars({"A": [FLAT] * 3}), Timed())
    assert fired == [day(2)]


def test_schedule_at_without_a_callable_is_a_type_error():
    class Timed(Strategy):
        def on_start(self):
            with pytest.raises(TypeError, match="fn must be callable"):
                self.schedule_at(day(1), day(2))
            self.ok = True

    s = Timed()
    run(bars({"A": [FLAT] * 3}), s)
    assert s.ok


def test_new_names_do_not_warn():
    def step(s, v):
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            s.weights_dict()
            s.schedule_at(lambda ctx: None, day(2))

    run(bars({"A": [FLAT] * 3}), Scripted({0: step}))


# ----------------------------------------------------------------- the universe
def test_assets_are_the_whole_universe_known_in_advance():
    """Documented: ``assets`` and ``weights()`` cover assets that list later (docs/semantics.md)."""
    seen = {}

    class Probe(Strategy):
        def on_start(self):
            seen["start"] = self.assets

        def on_slice(self, view, context):
            seen.setdefault("first", (self.assets, list(view.assets), self.weights().size))

    run(bars({"A": [FLAT] * 3, "LATE": [None, None, FLAT]}), Probe())
    assert seen["start"] == ("A", "LATE")
    assert seen["first"] == (("A", "LATE"), ["A"], 2)


def test_readme_claims_only_what_is_guaranteed():
    from pathlib import Path

    text = (Path(__file__).parents[1] / "README.md").read_text()
    assert "impossible by construction" not in text
    assert "survivorship" in text and "known in" in text
