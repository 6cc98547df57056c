"""Research at scale: parameter sweeps, walk-forward analysis and overfitting statistics.

:func:`sweep` runs one backtest per parameter set on one core, local
processes or a Dask cluster; :func:`walk_forward` re-optimises on rolling
training windows and stitches the out-of-sample runs; the deflated Sharpe
ratio and the probability of backtest overfitting
(:mod:`mlbacktest.research.stats`) say how much of the best result is luck.
See ``docs/guide/research.md``.
"""

from mlbacktest.research.stats import (
    PBOResult,
    deflated_sharpe_ratio,
    expected_max_sharpe,
    probabilistic_sharpe_ratio,
    probability_of_backtest_overfitting,
)
from mlbacktest.research.sweep import SweepResult, expand_grid, sweep
from mlbacktest.research.walk import WalkForwardResult, make_folds, walk_forward

__all__ = [
    "sweep",
    "SweepResult",
    "expand_grid",
    "walk_forward",
    "WalkForwardResult",
    "make_folds",
    "deflated_sharpe_ratio",
    "probabilistic_sharpe_ratio",
    "expected_max_sharpe",
    "probability_of_backtest_overfitting",
    "PBOResult",
]
