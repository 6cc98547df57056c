"""Strategy.rebalance and position weights: hand-computed targets give exact orders."""

from __future__ import annotations

import importlib.util
import math
import subprocess
import sys
from pathlib import Path

import numpy as np
import polars as pl
import pytest
from helpers import Scripted, bars, day, run

import mlbacktest
from mlbacktest import BacktestConfig, OrderError, PolarsDataFeed

PRICE = {"A": 100.0, "B": 50.0, "C": 20.0, "D": 10.0}
N = 5


def _flat(prices=PRICE, n=N, missing=None):
    """Constant bars; ``missing`` maps an asset to bar indices it has no bar at."""
    missing = missing or {}
    return bars({a: [None if i in missing.get(a, ()) else (p, p, p, p) for i in range(n)]
                 for a, p in prices.items()})


def _orders(result):
    """(asset, quantity) of every order, in submission order."""
    o = result.orders.sort("order_id")
    return list(zip(o["asset"].to_list(), o["quantity"].to_list(), strict=True))


def _steps(**steps):
    out = {}

    def wrap(fn, key):
        def step(s, v):
            out[key] = fn(s, v)
        return step

    return out, {int(k[1:]): wrap(fn, k) for k, fn in steps.items()}


def test_dict_targets_become_exact_quantities_and_fill_next_open():
    out, steps = _steps(s0=lambda s, v: s.rebalance({"A": 0.5, "B": -0.25}),
                        s2=lambda s, v: (s.weights(v).tolist(), s.weights_dict(), s.weights()))
    strat = Scripted(steps)
    res = run(_flat(), strat, allow_short=True, initial_cash=100_000)
    assert _orders(res) == [("A", 500.0), ("B", -500.0)]
    ids = out["s0"]
    assert ids.dtype == np.int64 and ids.tolist() == [0, 1]
    assert [f.timestamp for f in strat.fills] == [day(1), day(1)]
    assert [f.price for f in strat.fills] == [100.0, 50.0]
    view_w, dict_w, all_w = out["s2"]
    assert view_w == [0.5, -0.25, 0.0, 0.0]
    assert dict_w == {"A": 0.5, "B": -0.25}
    assert all_w.tolist() == [0.5, -0.25, 0.0, 0.0]


def test_exits_and_reductions_are_submitted_first_and_unmentioned_assets_close():
    def first(s, v):
        return s.rebalance({"A": 0.5, "B": 0.3, "D": 0.1})

    def second(s, v):
        # A adds 100, B reduces by 400, C opens 1000, D (not mentioned) closes.
        return s.rebalance({"B": 0.1, "C": 0.2, "A": 0.6})

    out, steps = _steps(s0=first, s2=second)
    res = run(_flat(), Scripted(steps), initial_cash=100_000)
    assert _orders(res)[3:] == [("B", -400.0), ("D", -1000.0), ("A", 100.0), ("C", 1000.0)]
    assert out["s2"].tolist() == [3, 4, 5, 6]
    assert res.fills.filter(pl.col("order_id") >= 3).height == 4
    assert res.final_equity == 100_000


def test_a_short_cover_and_a_reversal_count_as_reductions():
    out, steps = _steps(s0=lambda s, v: s.rebalance({"A": 0.2, "B": -0.2}),
                        s2=lambda s, v: s.rebalance({"C": 0.1, "A": -0.1, "B": 0.0}))
    res = run(_flat(), Scripted(steps), allow_short=True, initial_cash=100_000)
    assert _orders(res)[2:] == [("A", -300.0), ("B", 400.0), ("C", 500.0)]


def test_keep_others_leaves_unmentioned_positions_alone():
    out, steps = _steps(s0=lambda s, v: s.rebalance({"A": 0.2, "D": 0.1}),
                        s2=lambda s, v: s.rebalance({"A": 0.3}, keep_others=True))
    res = run(_flat(), Scripted(steps), initial_cash=100_000)
    assert _orders(res) == [("A", 200.0), ("D", 1000.0), ("A", 100.0)]


def test_tolerance_skips_small_changes_but_always_closes_a_zero_target():
    def second(s, v):
        # A: 0.5 -> 0.505 (skip), B: 0.3 -> 0.29 (|d| = 0.01, not < tol: trade),
        # C: 0 -> 0.005 (skip), D: 0.005 -> 0 (closes).
        return s.rebalance({"A": 0.505, "B": 0.29, "C": 0.005}, tolerance=0.01)

    out, steps = _steps(s0=lambda s, v: s.rebalance({"A": 0.5, "B": 0.3, "D": 0.005}),
                        s2=second)
    res = run(_flat(), Scripted(steps), initial_cash=100_000)
    assert _orders(res)[3:] == [("B", -20.0), ("D", -50.0)]


def test_whole_shares_truncate_each_order_toward_zero():
    prices = {"A": 30.0, "B": 70.0, "C": 3.0}

    def first(s, v):
        # 0.1 * 1e5 / 30 = 333.3 -> 333; -0.1 * 1e5 / 70 = -142.86 -> -142;
        # 0.3 * 1e5 / 3 = 10000 (float noise must not make it 9999).
        return s.rebalance({"A": 0.1, "B": -0.1, "C": 0.3})

    def second(s, v):
        # A: target 166.67, held 333 -> sell 166.33 -> 166 (never past the target).
        return s.rebalance({"A": 0.05, "B": -0.1, "C": 0.3})

    out, steps = _steps(s0=first, s2=second)
    res = run(_flat(prices), Scripted(steps), allow_short=True, initial_cash=100_000,
              fractional=False)
    assert _orders(res) == [("A", 333.0), ("B", -142.0), ("C", 10_000.0), ("A", -166.0)]


def test_fractional_quantities_are_kept_to_a_billionth_of_a_unit():
    out, steps = _steps(s0=lambda s, v: s.rebalance({"A": 1 / 3, "B": 0.29}))
    res = run(_flat({"A": 30.0, "B": 50.0}), Scripted(steps), initial_cash=100_000)
    # 0.29 * 1e5 / 50 is 579.9999999999999 in floating point.
    assert _orders(res) == [("A", 1111.111111111), ("B", 580.0)]


def test_an_empty_dict_closes_every_position_exactly():
    out, steps = _steps(s0=lambda s, v: (s.order("A", 100 / 3), s.order("B", -1e-10)),
                        s2=lambda s, v: s.rebalance({}),
                        s4=lambda s, v: s.get_positions())
    res = run(_flat(), Scripted(steps), allow_short=True, initial_cash=100_000)
    assert _orders(res)[2:] == [("A", -100 / 3), ("B", 1e-10)]
    assert out["s4"] == {}


def test_repeated_calls_do_not_stack_orders():
    def twice(s, v):
        first = s.rebalance({"A": 0.5, "B": -0.2})
        again = s.rebalance({"A": 0.5, "B": -0.2})
        return first.tolist(), again.tolist()

    out, steps = _steps(s0=twice, s1=lambda s, v: s.rebalance({"A": 0.5, "B": -0.2}).tolist())
    # One bar of latency: the orders are still working at step 1.
    res = run(_flat(), Scripted(steps), initial_cash=100_000, latency_bars=1)
    assert out["s0"] == ([0, 1], [])
    assert out["s1"] == []
    assert _orders(res) == [("A", 500.0), ("B", -400.0)]


def test_dict_array_and_explicit_alignments_agree_on_a_ragged_panel():
    # B has no bar at step 1, so the view there holds A, C, D.
    data = _flat(missing={"B": {1}})
    target = {"A": 0.2, "C": -0.1, "D": 0.05}
    results = {}

    def by(kind):
        def step(s, v):
            assert v.assets.tolist() == ["A", "C", "D"]
            if kind == "dict":
                return s.rebalance(target)
            if kind == "view":
                return s.rebalance(np.array([target[a] for a in v.assets]))
            if kind == "all":
                return s.rebalance([0.2, 0.0, -0.1, 0.05])
            if kind == "names":
                return s.rebalance([0.05, 0.2, -0.1], assets=["D", "A", "C"])
            return s.rebalance(np.array([0.2, -0.1, 0.05]), assets=v)
        return step

    for kind in ("dict", "view", "all", "names", "explicit"):
        res = run(data, Scripted({1: by(kind)}), initial_cash=100_000)
        results[kind] = sorted(_orders(res))
    assert results["dict"] == [("A", 200.0), ("C", -500.0), ("D", 500.0)]
    assert all(r == results["dict"] for r in results.values()), results


def test_user_prices_size_the_orders():
    out, steps = _steps(s0=lambda s, v: s.rebalance({"A": 0.5, "B": 0.1},
                                                    prices={"A": 125.0}))
    res = run(_flat(), Scripted(steps), initial_cash=100_000)
    assert _orders(res) == [("A", 400.0), ("B", 200.0)]


def test_bad_weights_raise_order_error_and_place_nothing():
    seen = []

    def attempt(s, v):
        cases = [
            ({"A": math.nan}, "weight of asset 'A' is nan"),
            ({"A": 0.1, "B": math.inf}, "weight of asset 'B' is inf"),
            ([0.1, math.nan, 0.0, 0.0], "weight of asset 'B'"),
            ({"A": 0.1, 0: 0.2}, "names asset 'A' twice"),
            ({"ZZZ": 0.1}, "unknown asset"),
            ([0.1, 0.2, 0.3], "has 3 values"),
            ([[0.1, 0.2]], "1-d"),
            (["x", 0, 0, 0], "must be numbers"),
        ]
        for weights, match in cases:
            with pytest.raises(OrderError, match=match):
                s.rebalance(weights)
        with pytest.raises(OrderError, match="tolerance must be >= 0"):
            s.rebalance({"A": 0.1}, tolerance=-0.1)
        with pytest.raises(OrderError, match="prices must be 'close'"):
            s.rebalance({"A": 0.1}, prices="open")
        with pytest.raises(OrderError, match="price of asset 'A'"):
            s.rebalance({"A": 0.1}, prices={"A": -1.0})
        with pytest.raises(OrderError, match="drop assets="):
            s.rebalance({"A": 0.1}, assets=["A"])
        assert s.open_orders() == []
        seen.append("ok")

    run(_flat(), Scripted({1: attempt}), initial_cash=100_000)
    assert seen == ["ok"]


def test_an_asset_without_a_price_cannot_get_a_weight():
    seen = []

    def start(s):
        with pytest.raises(OrderError, match="has no price yet"):
            s.rebalance({"A": 0.1})
        # Weights outside on_slice without bars: one per asset, by id.
        assert s.rebalance([0.0, 0.0, 0.0, 0.0]).tolist() == []
        seen.append("ok")

    run(_flat(), Scripted(start=start), initial_cash=100_000)
    assert seen == ["ok"]


def test_ambiguous_array_alignment_with_several_feeds_is_refused():
    one = pl.DataFrame({"timestamp": [day(0), day(1)], "asset": ["B", "B"],
                        "open": [50.0] * 2, "high": [50.0] * 2, "low": [50.0] * 2,
                        "close": [50.0] * 2, "volume": [1e6] * 2})
    two = one.with_columns(pl.lit("A").alias("asset"), pl.lit(100.0).alias("close"),
                           pl.lit(100.0).alias("open"), pl.lit(100.0).alias("high"),
                           pl.lit(100.0).alias("low"))
    one, two = (f.with_columns(pl.col("timestamp").cast(pl.Datetime("ns"))) for f in (one, two))
    seen = []

    def attempt(s, v):
        assert v.assets.tolist() == ["B", "A"]
        with pytest.raises(OrderError, match="pass assets="):
            s.rebalance([0.1, 0.2])
        seen.append(s.rebalance([0.1, 0.2], assets=v).tolist())

    strat = Scripted({0: attempt})
    res = mlbacktest.BacktestEngine([PolarsDataFeed(one), PolarsDataFeed(two)], strat,
                                    BacktestConfig(initial_cash=100_000)).run()
    assert seen == [[0, 1]]
    # Both are entries: submitted by asset id.
    assert _orders(res) == [("A", 200.0), ("B", 200.0)]


def test_weights_are_nan_free_and_follow_prices():
    data = bars({"A": [(100, 100, 100, 100), (100, 120, 100, 120), (120, 120, 120, 120)],
                 "B": [None, (50, 50, 50, 50), (50, 50, 50, 50)]})
    out, steps = _steps(s0=lambda s, v: s.order("A", 100),
                        s1=lambda s, v: (s.weights(v).tolist(), s.weights(["B", "A"]).tolist()))
    run(data, Scripted(steps), initial_cash=10_000)
    # At step 1: 100 A at 120 = 12,000; cash 0; equity 12,000 -> weight 1.0; B flat.
    assert out["s1"] == ([1.0, 0.0], [0.0, 1.0])


# ----------------------------------------------------------------- the example
EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "long_short_topk.py"


def test_long_short_example_runs_in_one_command():
    proc = subprocess.run(
        [sys.executable, str(EXAMPLE), "--assets", "20", "--bars", "60", "--k", "3"],
        capture_output=True, text=True, timeout=120, check=False,
    )
    assert proc.returncode == 0, proc.stderr
    assert "Backtest summary" in proc.stdout and "rebalances" in proc.stdout


def test_long_short_example_holds_k_names_per_side(capsys):
    spec = importlib.util.spec_from_file_location("long_short_topk", EXAMPLE)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    res = module.main(["--assets", "12", "--bars", "40", "--k", "2", "--tolerance", "0"])
    assert "long-short top-2/bottom-2" in capsys.readouterr().out
    assert res.metrics["num_rejected"] == 0 and res.metrics["total_commission"] > 0
    held = res.open_positions  # one row per open lot
    books = held.group_by("direction").agg(pl.col("asset").n_unique()).sort("direction")
    assert books.rows() == [("long", 2), ("short", 2)]
    assert (res.orders["quantity"] % 1 == 0).all()  # whole shares


def test_slice_view_weights_match_the_strategy_helper():
    from helpers import Scripted, bars, run

    seen = []

    def buy(s, v):
        s.buy("A", 10)
        s.sell("B", 5)

    def look(s, v):
        seen.append((v.weights.copy(), s.weights(v), v.positions * v.close / s.get_equity()))

    data = bars({"A": [(100, 101, 99, 100), (100, 102, 99, 101), (101, 103, 100, 102)],
                 "B": [(50, 51, 49, 50), (50, 51, 48, 49), (49, 50, 48, 48)]})
    run(data, Scripted({0: buy, 2: look}), allow_short=True, initial_cash=10_000)
    (w, helper, by_hand), = seen
    assert w[0] > 0 > w[1]
    np.testing.assert_array_equal(w, helper)
    np.testing.assert_allclose(w, by_hand, rtol=1e-15)
