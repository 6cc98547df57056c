"""Long-short top-k / bottom-k portfolio on a model's predictions, rebalanced daily.

Every day the strategy ranks the assets by the model's prediction (the
``pred`` signal, published at each bar's timestamp and visible from then
on), goes long the ``k`` highest and short the ``k`` lowest at equal weights,
and trades toward those weights with one call to ``Strategy.rebalance``:
exits and reductions first, a tolerance band against tiny trades, whole
shares, commission and slippage on every fill.

Run it with one command::

    python examples/long_short_topk.py
    python examples/long_short_topk.py --assets 200 --bars 1260 --k 20 --tolerance 0.001
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Sequence
from typing import Any

import numpy as np

from mlbacktest import BacktestConfig, BacktestEngine, BacktestResult, PolarsDataFeed, Strategy
from mlbacktest.data.synthetic import synthetic_bars


class LongShortTopK(Strategy):
    """Long the ``k`` best predictions, short the ``k`` worst, at ``gross / (2k)`` each.

    Parameters
    ----------
    k : int
        Names per side.
    gross : float
        Gross exposure as a fraction of equity (0.9: 45 % long, 45 % short).
    tolerance : float
        Skip trades that move an asset's weight by less than this.
    signal : str
        Name of the prediction column.
    """

    def __init__(self, k: int = 10, gross: float = 0.9, tolerance: float = 0.002,
                 signal: str = "pred") -> None:
        self.k = k
        self.gross = gross
        self.tolerance = tolerance
        self.signal = signal
        self.rebalances = 0

    def on_slice(self, view: Any, context: dict[str, Any]) -> None:
        pred = view.signal(self.signal)  # one value per asset with a bar now
        ok = np.flatnonzero(np.isfinite(pred))
        if ok.size < 2 * self.k:
            return
        ranked = ok[np.argsort(pred[ok], kind="stable")]
        weights = np.zeros(len(view))  # aligned with view.asset_ids
        weights[ranked[-self.k:]] = self.gross / (2 * self.k)
        weights[ranked[: self.k]] = -self.gross / (2 * self.k)
        # Held names that dropped out of both books get weight 0 and are closed.
        self.rebalance(weights, tolerance=self.tolerance)
        self.rebalances += 1


def main(argv: Sequence[str] | None = None) -> BacktestResult:
    """Parse the command line, run the backtest and print its summary."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--assets", type=int, default=100, help="number of assets")
    parser.add_argument("--bars", type=int, default=756, help="daily bars (756 = 3 years)")
    parser.add_argument("--k", type=int, default=10, help="names per side")
    parser.add_argument("--gross", type=float, default=0.9, help="gross exposure / equity")
    parser.add_argument("--tolerance", type=float, default=0.002, help="rebalance band")
    parser.add_argument("--skill", type=float, default=0.03,
                        help="correlation of the prediction with the next return")
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args(argv)

    frame = synthetic_bars(n_assets=args.assets, n_bars=args.bars, seed=args.seed,
                           skill=args.skill)
    feed = PolarsDataFeed(frame, signal_columns=["pred"])
    config = BacktestConfig(
        initial_cash=1_000_000,
        commission=0.0005,    # 5 bps of traded value
        slippage_bps=2.0,     # 2 bps against every fill
        fractional=False,     # whole shares
        borrow_rate=0.01,     # 1 % a year on short positions
        account="margin",     # shorting needs a margin account (a cash account cannot short)
    )
    strategy = LongShortTopK(k=args.k, gross=args.gross, tolerance=args.tolerance)
    t0 = time.perf_counter()
    result = BacktestEngine(feed, strategy, config).run()
    elapsed = time.perf_counter() - t0

    print(f"long-short top-{args.k}/bottom-{args.k} on synthetic predictions: "
          f"{args.assets} assets x {args.bars} daily bars, rebalanced daily")
    result.summary()
    m = result.metrics
    traded = float(result.fills["value"].abs().sum()) if len(result.fills) else 0.0
    turnover = traded / float(result.equity["equity"].mean()) / max(strategy.rebalances, 1)
    print(f"{strategy.rebalances} rebalances, {len(result.fills):,} fills, "
          f"mean turnover {turnover:.1%} of equity per rebalance, costs "
          f"{m['total_commission'] + m['total_slippage']:,.0f}")
    print(f"ran {len(feed):,} asset-bars in {elapsed:.2f} s")
    return result


if __name__ == "__main__":
    main()
