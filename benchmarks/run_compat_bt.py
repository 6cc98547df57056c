"""backtrader's SMA crossover through mlbacktest.compat.backtrader and real backtrader.

One strategy source (``bt.ind.CrossOver`` of two SMAs per data feed) on 100
assets x 1,260 daily bars, run with ``bt`` bound to each engine; prints both
wall times (building the feeds and Cerebro included; the shim after a small
warm-up run that pays its one-off imports) and the ratio (target: the shim at
least 20x faster), and checks that the final values agree.

Run: ``python benchmarks/run_compat_bt.py [n_assets] [n_bars]``.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

SOURCE = '''
class S(bt.Strategy):
    params = (("fast", 10), ("slow", 30))

    def __init__(self):
        self.cross = [bt.ind.CrossOver(bt.ind.SMA(d.close, period=self.p.fast),
                                       bt.ind.SMA(d.close, period=self.p.slow))
                      for d in self.datas]

    def next(self):
        for d, x in zip(self.datas, self.cross):
            if x[0] > 0 and not self.getposition(d):
                self.buy(data=d, size=10)
            elif x[0] < 0 and self.getposition(d):
                self.close(data=d)
'''


def frames(n_assets: int, n_bars: int) -> list[pd.DataFrame]:
    rng = np.random.default_rng(7)
    idx = pd.date_range("2015-01-02", periods=n_bars, freq="B")
    out = []
    for _ in range(n_assets):
        c = 50 * np.exp(np.cumsum(rng.normal(0.0002, 0.015, n_bars)))
        o = c * np.exp(rng.normal(0, 0.004, n_bars))
        out.append(pd.DataFrame({"open": o, "high": np.maximum(o, c) * 1.005,
                                 "low": np.minimum(o, c) * 0.995, "close": c,
                                 "volume": 1e6}, index=idx))
    return out


def run(bt: Any, dfs: list[pd.DataFrame]) -> tuple[float, float]:
    ns: dict[str, Any] = {"bt": bt}
    exec(SOURCE, ns)  # noqa: S102
    t0 = time.perf_counter()
    cerebro = bt.Cerebro(stdstats=False)
    for i, df in enumerate(dfs):
        cerebro.adddata(bt.feeds.PandasData(dataname=df), name=f"A{i:03d}")
    cerebro.broker.setcash(1_000_000.0)
    cerebro.addstrategy(ns["S"])
    cerebro.run()
    return time.perf_counter() - t0, cerebro.broker.getvalue()


def main() -> None:
    import backtrader

    import mlbacktest.compat.backtrader as shim

    n_assets = int(sys.argv[1]) if len(sys.argv) > 1 else 100
    n_bars = int(sys.argv[2]) if len(sys.argv) > 2 else 1260
    dfs = frames(n_assets, n_bars)
    run(shim, [df.iloc[:100] for df in dfs[:5]])  # warm-up: first-call imports and set-up
    t_shim, v_shim = run(shim, dfs)
    t_bt, v_bt = run(backtrader, dfs)
    print(f"{n_assets} assets x {n_bars} bars, SMA(10)/SMA(30) CrossOver per data")
    print(f"mlbacktest.compat.backtrader: {t_shim:8.2f} s   final value {v_shim:,.2f}")
    print(f"backtrader:                   {t_bt:8.2f} s   final value {v_bt:,.2f}")
    print(f"ratio: {t_bt / t_shim:.1f}x (target >= 20x)")
    assert abs(v_shim - v_bt) <= 1e-9 * abs(v_bt), "the final values differ"


if __name__ == "__main__":
    main()
