"""mlbacktest.research.walk_forward: folds, a brute-force reference, and no leakage."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest
from research_strategies import Momentum

from mlbacktest import BacktestConfig, run_backtest
from mlbacktest.data.synthetic import synthetic_bars
from mlbacktest.research import walk_forward
from mlbacktest.research.walk import CARRY_ORDER_ID, make_folds

GRID = {"lookback": [2, 5, 10], "top": [1, 2]}
PARAMS = [{"lookback": lb, "top": t} for lb in (2, 5, 10) for t in (1, 2)]


@pytest.fixture(scope="module")
def bars() -> pl.DataFrame:
    return synthetic_bars(n_assets=3, n_bars=170, seed=5)


@pytest.fixture(scope="module")
def wf(bars):
    return walk_forward(Momentum, GRID, bars, train=60, test=30, embargo=2, purge=3,
                        progress=False)


def reference(bars: pl.DataFrame, train: int, test: int, embargo: int, purge: int):
    """Walk-forward written plainly: per-fold arg-max of plain runs, stitched OOS equity."""
    cal = bars["timestamp"].unique().sort().to_list()
    cfg = BacktestConfig()
    chosen, equity, stamps = [], [], []
    start_equity = cfg.initial_cash
    k = 0
    while train + k * test + embargo < len(cal):
        lo, hi = k * test, train + k * test
        fit = bars.filter(pl.col("timestamp").is_between(cal[lo], cal[hi - purge - 1]))
        sharpes = []
        for p in PARAMS:
            s = run_backtest(fit, Momentum(**p), cfg).metrics["sharpe"]
            sharpes.append(-np.inf if np.isnan(s) else s)
        best = int(np.argmax(sharpes))
        chosen.append(PARAMS[best])
        t_lo, t_hi = hi + embargo, min(hi + embargo + test, len(cal))
        oos = bars.filter(pl.col("timestamp").is_between(cal[lo], cal[t_hi - 1]))
        # Warmed on the training window's bars, trading from the test window's first bar.
        run = run_backtest(oos, Momentum(**PARAMS[best]), cfg, trade_from=cal[t_lo])
        e = run.equity
        assert e["timestamp"][0] == cal[t_lo] and e["equity"][0] == cfg.initial_cash
        c = start_equity / cfg.initial_cash
        cash = e["cash"].to_numpy() * c
        value = e["positions_value"].to_numpy() * c
        equity.append(cash + value)
        stamps += e["timestamp"].to_list()
        start_equity = float(equity[-1][-1])
        k += 1
    return chosen, np.concatenate(equity), stamps


def test_equals_a_brute_force_serial_reference(wf, bars):
    chosen, equity, stamps = reference(bars, 60, 30, 2, 3)
    assert wf.folds.select("lookback", "top").to_dicts() == chosen
    got = wf.result.equity
    assert got["timestamp"].to_list() == stamps
    assert np.array_equal(got["equity"].to_numpy(), equity)  # bit for bit
    assert wf.folds.height == len(chosen) == 4


def test_the_fold_table(wf, bars):
    cal = bars["timestamp"].unique().sort().to_list()
    f = wf.folds.head(3)
    assert f["train_start"].to_list() == [cal[0], cal[30], cal[60]]
    assert f["train_end"].to_list() == [cal[56], cal[86], cal[116]]  # purge 3
    assert f["test_start"].to_list() == [cal[62], cal[92], cal[122]]  # embargo 2
    assert f["test_end"].to_list() == [cal[91], cal[121], cal[151]]
    assert f["warmup_start"].to_list() == f["train_start"].to_list()
    for k in range(3):
        row = f.row(k, named=True)
        ins = wf.in_sample[k].row(row["run"], named=True)
        assert row["is_sharpe"] == ins["sharpe"] == max(
            x for x in wf.in_sample[k]["sharpe"] if x is not None)
        assert row["oos_sharpe"] == wf.fold_results[k].metrics["sharpe"]
        assert wf.fold_results[k].equity["timestamp"][0] == row["test_start"]


def test_each_fold_starts_flat_and_ends_with_bookkeeping_closes(wf):
    fills = wf.result.fills
    carry = fills.filter(pl.col("order_id") == CARRY_ORDER_ID)
    assert carry.height > 0 and (carry["commission"] == 0).all()
    # Closes only: at the end of each test window but the last, none at a window's start.
    assert set(carry["timestamp"].to_list()) <= set(wf.folds["test_end"][:-1].to_list())
    eq = wf.result.equity
    for k in range(wf.folds.height):
        row = eq.filter(pl.col("timestamp") == wf.folds["test_start"][k]).row(0, named=True)
        assert row["positions_value"] == 0.0 and row["cash"] == row["equity"]
        if k:  # the fold opens at the equity where the previous one closed
            prev = eq.filter(pl.col("timestamp") == wf.folds["test_end"][k - 1])
            assert row["equity"] == prev["equity"][0]
    # Every fold but the last ends flat: the positions of the stitched fills net to zero there.
    for k in range(2):
        end = wf.folds["test_end"][k]
        held = fills.filter(pl.col("timestamp") <= end).group_by("asset").agg(
            pl.col("quantity").sum())
        assert np.allclose(held["quantity"].to_numpy(), 0.0, atol=1e-6)


def test_every_executor_gives_the_same_walk_forward(wf, bars):
    other = walk_forward(Momentum, GRID, bars, train=60, test=30, embargo=2, purge=3,
                         executor="processes:2", progress=False)
    assert other.folds.equals(wf.folds)
    assert other.result.equity.equals(wf.result.equity)
    assert other.result.fills.equals(wf.result.fills)


def test_no_leakage(bars):
    """Rewriting bars after a fold's training window changes neither its choice nor earlier
    fills."""
    kw = dict(train=50, test=25, progress=False)
    grid = {"lookback": [2, 5, 10], "top": [1, 2]}
    base = walk_forward(Momentum, grid, bars, **kw)
    cal = bars["timestamp"].unique().sort()
    rng = np.random.default_rng(3)
    for k in range(base.folds.height):
        cut = cal[50 + 25 * k]  # the first bar after fold k's training window
        late = pl.col("timestamp") >= cut
        factor = pl.Series(rng.uniform(0.7, 1.3, bars.height))
        changed = bars.with_columns(
            [pl.when(late).then(pl.col(c) * factor).otherwise(pl.col(c)).alias(c)
             for c in ("open", "high", "low", "close")])
        assert not changed.equals(bars)
        other = walk_forward(Momentum, grid, changed, **kw)
        assert other.folds["run"][: k + 1].to_list() == base.folds["run"][: k + 1].to_list()
        before = pl.col("timestamp") < cut
        assert other.result.fills.filter(before).equals(base.result.fills.filter(before))
        assert other.result.equity.filter(before).equals(base.result.equity.filter(before))
        # Fold k's out-of-sample run saw the changed bars only from its test window on, and
        # traded nothing during its warm-up.
        seg = other.fold_results[k]
        assert seg.fills.height == 0 or seg.fills["timestamp"].min() > other.folds["test_start"][k]
        assert seg.equity["equity"][0] == BacktestConfig().initial_cash


# -- folds ------------------------------------------------------------------------------------


def _cal(n: int, every_ns: int = 86_400 * 10**9) -> np.ndarray:
    return np.arange(n, dtype=np.int64) * every_ns


def test_rolling_anchored_and_step_folds():
    f = make_folds(_cal(100), 40, 20)
    assert [(x.train_lo, x.train_hi, x.test_lo, x.test_hi) for x in f] == [
        (0, 40, 40, 60), (20, 60, 60, 80), (40, 80, 80, 100)]
    f = make_folds(_cal(100), 40, 20, anchored=True, step=30)
    assert [(x.train_lo, x.train_hi, x.test_lo, x.test_hi) for x in f] == [
        (0, 40, 40, 60), (0, 70, 70, 90)]
    f = make_folds(_cal(95), 40, 20, purge=2, embargo=3, warmup=10)
    assert [(x.fit_hi, x.test_lo, x.test_hi, x.warm_lo) for x in f] == [
        (38, 43, 63, 33), (58, 63, 83, 53), (78, 83, 95, 73)]


def test_durations_and_mixed_purge():
    day = 86_400 * 10**9
    f = make_folds(_cal(100), "40d", "20d", purge="2d", embargo=3, warmup="5d")
    assert [(x.train_lo, x.train_hi, x.fit_hi, x.test_lo, x.test_hi, x.warm_lo)
            for x in f][0] == (0, 40, 38, 43, 63, 38)
    # Durations on an irregular calendar: windows are time spans, not bar counts.
    cal = np.cumsum(np.r_[0, np.where(np.arange(99) % 5 == 4, 3, 1)]).astype(np.int64) * day
    f = make_folds(cal, "30d", "10d")
    assert len(f) == (cal[-1] - 30 * day) // (10 * day) + 1 == 11
    for k, x in enumerate(f):  # bars in [10d * k, 10d * k + 30d), then the next 10 days
        s, e = k * 10 * day, k * 10 * day + 30 * day
        inside = np.flatnonzero((cal >= s) & (cal < e))
        assert (x.train_lo, x.train_hi) == (inside[0], inside[-1] + 1)
        test = np.flatnonzero((cal >= e) & (cal < e + 10 * day))
        assert (x.test_lo, x.test_hi) == (test[0], test[-1] + 1)




class Fails(Momentum):
    def on_start(self):
        raise RuntimeError("model file missing")


def test_a_fold_whose_training_runs_all_fail_is_named(bars):
    with pytest.raises(ValueError, match="walk_forward fold 0: no run of the sweep succeeded"):
        walk_forward(Fails, {"lookback": [2, 3]}, bars, train=60, test=30, progress=False)
