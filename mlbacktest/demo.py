"""The built-in demo: a long-short strategy on a synthetic model's predictions."""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

from mlbacktest.config import BacktestConfig
from mlbacktest.data.feeds import PolarsDataFeed
from mlbacktest.data.synthetic import synthetic_bars
from mlbacktest.engine import BacktestEngine
from mlbacktest.results import BacktestResult
from mlbacktest.results.io import REPORT_FILE, check_output_dir, staged_output
from mlbacktest.results.io import _save as save_result
from mlbacktest.strategy import Strategy

__all__ = ["TopBottomK", "run_demo"]


class TopBottomK(Strategy):
    """Long the ``k`` assets with the highest prediction, short the ``k`` lowest.

    Rebalances every ``every`` timestamps to equal weights of
    ``gross / (2k)`` per name, using one vectorised batch of orders.

    Parameters
    ----------
    k : int
        Names per side.
    every : int
        Rebalance period, in timestamps.
    gross : float
        Gross exposure as a fraction of equity (1.0 = 50 % long, 50 % short).
    signal : str
        Name of the prediction column.
    """

    def __init__(self, k: int = 5, every: int = 5, gross: float = 0.95, signal: str = "pred"):
        self.k = k
        self.every = every
        self.gross = gross
        self.signal = signal
        self._step = 0

    def on_slice(self, view: Any, context: dict[str, Any]) -> None:
        step = self._step
        self._step += 1
        if step % self.every:
            return
        pred = view.signal(self.signal)
        ok = np.flatnonzero(np.isfinite(pred))
        if ok.size < 2 * self.k:
            return
        ranked = ok[np.argsort(pred[ok], kind="stable")]
        weights = np.zeros(len(view))
        weights[ranked[-self.k :]] = self.gross / (2 * self.k)
        weights[ranked[: self.k]] = -self.gross / (2 * self.k)
        target = weights * self.get_equity() / view.close
        delta = target - view.positions
        # Exits and reductions are matched before entries by the broker.
        self.order_many(view.asset_ids, np.where(np.abs(delta * view.close) > 1.0, delta, 0.0))


def run_demo(
    n_assets: int = 50,
    n_bars: int = 756,
    seed: int = 7,
    *,
    verbose: bool = True,
    out: str | Path | None = None,
) -> BacktestResult:
    """Run the demo backtest, print its summary and optionally write its report.

    Parameters
    ----------
    n_assets, n_bars : int
        Size of the synthetic daily panel.
    seed : int
        Seed of the synthetic data.
    verbose : bool
        Print the summary, the timing and the paths written.
    out : str or path-like, optional
        Directory to write the results (``BacktestResult.to_parquet``) and
        the HTML report (``report.html``) to. It is created if needed; an
        earlier mlbacktest output there is replaced (only once the new one is
        complete), but a directory holding anything else is refused, and so
        is a symbolic link (see :func:`~mlbacktest.results.io.check_output_dir`).

    Returns
    -------
    BacktestResult
        The result of the run.

    Raises
    ------
    FileExistsError
        `out` is a symbolic link or a directory holding files mlbacktest did
        not write (checked before the run).
    NotADirectoryError
        `out` is a file.
    """
    who = "demo --out"
    target = None if out is None else check_output_dir(out, True, who)
    frame = synthetic_bars(n_assets=n_assets, n_bars=n_bars, seed=seed, skill=0.08)
    feed = PolarsDataFeed(frame, signal_columns=["pred"])
    # A margin account: the strategy shorts (a cash account cannot, docs/semantics.md)
    config = BacktestConfig(initial_cash=1_000_000, commission=0.0005, slippage_bps=2.0,
                            account="margin")
    t0 = time.perf_counter()
    result = BacktestEngine(feed, TopBottomK(k=5, every=5), config).run()
    elapsed = time.perf_counter() - t0
    if verbose:
        print(
            f"mlbacktest demo: top-5/bottom-5 long-short on synthetic predictions, "
            f"{n_assets} assets x {n_bars} daily bars"
        )
        result.summary()
        print(f"ran {len(feed):,} asset-bars in {elapsed:.3f} s "
              f"({len(feed) / elapsed / 1e6:.2f} M asset-bars/s, {len(result.fills):,} fills)")
    if target is None:
        return result
    # Results and report go to a new directory that replaces `target` once both are written.
    reported = True
    with staged_output(target, True, who) as staging:
        save_result(result, staging)
        try:
            result.report(staging / REPORT_FILE)
        except ImportError as exc:  # the charts need matplotlib
            reported = False
            print(f"mlbacktest: warning: the report was not written: {exc} "
                  "(pip install matplotlib)", file=sys.stderr)
    if verbose:
        print(f"results written to {target}{os.sep}")
        if reported:
            print(f"report written to {target / REPORT_FILE}  (open it in a browser; "
                  f"'mlbacktest report {target}' rebuilds it)")
    return result
