"""A sweep gives the final values of backtrader's ``optstrategy`` for every parameter set.

The same moving-average cross-over, written for both engines, over the same
grid and bars; mlbacktest with ``BacktestConfig.preset("backtrader")``
(market orders at the next open, whole shares).
"""

from __future__ import annotations

import numpy as np
import pytest

from mlbacktest import BacktestConfig, Strategy
from mlbacktest.data.synthetic import synthetic_bars
from mlbacktest.research import sweep

bt = pytest.importorskip("backtrader")

FAST = [3, 5, 8]
SLOW = [12, 20]
QTY = 50


class MlCross(Strategy):
    """Buy QTY when the fast mean close crosses above the slow one; sell all below it."""

    def __init__(self, fast: int, slow: int) -> None:
        self.fast, self.slow = fast, slow

    def on_market_data(self, event, context):
        c = self.history(event.asset, "close", self.slow)
        if c.size < self.slow:
            return
        up = np.mean(c[-self.fast:]) > np.mean(c)
        pos = self.get_position(event.asset)
        if up and pos == 0:
            self.buy(event.asset, QTY)
        elif not up and pos > 0:
            self.sell(event.asset, pos)


class BtCross(bt.Strategy):
    params = (("fast", 3), ("slow", 12))

    def next(self) -> None:
        c = np.array(self.data.close.get(size=self.p.slow))
        if c.size < self.p.slow:
            return
        up = np.mean(c[-self.p.fast:]) > np.mean(c)
        if up and not self.position:
            self.buy(size=QTY)
        elif not up and self.position:
            self.sell(size=self.position.size)

    def stop(self) -> None:
        self.final_value = self.broker.getvalue()


def test_sweep_matches_backtrader_optstrategy():
    bars = synthetic_bars(n_assets=1, n_bars=250, seed=9).drop("pred")
    pdf = bars.drop("asset").to_pandas().set_index("timestamp")
    cerebro = bt.Cerebro(stdstats=False, optreturn=False)
    cerebro.adddata(bt.feeds.PandasData(dataname=pdf))
    cerebro.broker.setcash(100_000.0)
    cerebro.broker.set_checksubmit(False)
    cerebro.optstrategy(BtCross, fast=FAST, slow=SLOW)
    theirs = {(s.p.fast, s.p.slow): s.final_value for (s,) in cerebro.run(maxcpus=1)}
    assert len(theirs) == len(FAST) * len(SLOW)

    cfg = BacktestConfig.preset("backtrader", initial_cash=100_000.0)
    ours = sweep(MlCross, {"fast": FAST, "slow": SLOW}, bars, cfg, progress=False)
    assert ours.frame["status"].to_list() == ["ok"] * 6
    assert (ours.frame["num_fills"] > 2).all()  # the strategy trades in every run
    for row in ours.frame.iter_rows(named=True):
        want = theirs[(row["fast"], row["slow"])]
        assert row["final_equity"] == pytest.approx(want, rel=1e-9), (row["fast"], row["slow"])
    finals = ours.frame["final_equity"].to_list()
    assert len(set(finals)) > 1  # the parameters matter
