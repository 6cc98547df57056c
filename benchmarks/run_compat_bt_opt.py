"""backtrader's ``optstrategy`` through mlbacktest.compat.backtrader: one process against several.

The SMA crossover of ``run_compat_bt.py`` (``bt.ind.CrossOver`` of two SMAs
per data feed) over a grid of 8 parameter sets, on N assets x B daily bars,
run with ``maxcpus=1`` (this process) and with ``maxcpus=2`` (two local
processes of the research sweep executor, process start-up included), side
by side in one command; prints both wall times and the ratio, and checks
that every set's result is the same on both.

Run: ``python benchmarks/run_compat_bt_opt.py [n_assets] [n_bars]``.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from run_compat_bt import SOURCE, frames  # noqa: E402

GRID = {"fast": (5, 10, 15, 20), "slow": (30, 40)}


def optimise(bt: Any, dfs: list[Any], **run: Any) -> tuple[float, list[Any]]:
    ns: dict[str, Any] = {"bt": bt}
    exec(SOURCE, ns)  # noqa: S102
    t0 = time.perf_counter()
    cerebro = bt.Cerebro(stdstats=False)
    for i, df in enumerate(dfs):
        cerebro.adddata(bt.feeds.PandasData(dataname=df), name=f"A{i:03d}")
    cerebro.broker.setcash(1_000_000.0)
    cerebro.addanalyzer(bt.analyzers.Returns, _name="ret")
    cerebro.optstrategy(ns["S"], **GRID)
    out = cerebro.run(**run)
    elapsed = time.perf_counter() - t0
    return elapsed, [(r.p.fast, r.p.slow, r.analyzers.ret.get_analysis()["rtot"])
                     for (r,) in out]


def main() -> None:
    import mlbacktest.compat.backtrader as shim

    n_assets = int(sys.argv[1]) if len(sys.argv) > 1 else 100
    n_bars = int(sys.argv[2]) if len(sys.argv) > 2 else 1260
    dfs = frames(n_assets, n_bars)
    optimise(shim, [df.iloc[:100] for df in dfs[:5]], maxcpus=1)  # warm-up: imports
    t1, r1 = optimise(shim, dfs, maxcpus=1)
    t2, r2 = optimise(shim, dfs, maxcpus=2)
    print(f"{n_assets} assets x {n_bars} bars, {len(r1)} parameter sets of the SMA crossover")
    print(f"maxcpus=1 (this process):      {t1:8.2f} s")
    print(f"maxcpus=2 (2 local processes): {t2:8.2f} s")
    print(f"ratio: {t1 / t2:.2f}x")
    assert r1 == r2, "the results differ between the executors"


if __name__ == "__main__":
    main()
