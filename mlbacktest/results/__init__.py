"""Backtest results: frames, round trips and performance metrics.

:class:`BacktestResult` is what a run returns. The metric functions work on
plain numpy arrays and can be used on their own.
"""

from .metrics import (
    annual_volatility,
    cagr,
    compute_metrics,
    drawdown,
    infer_periods_per_year,
    max_drawdown,
    max_drawdown_duration,
    sharpe,
    simple_returns,
    sortino,
    total_return,
)
from .result import BacktestResult
from .trades import RoundTrips, fifo_round_trips

__all__ = [
    "BacktestResult",
    "RoundTrips",
    "annual_volatility",
    "cagr",
    "compute_metrics",
    "drawdown",
    "fifo_round_trips",
    "infer_periods_per_year",
    "max_drawdown",
    "max_drawdown_duration",
    "sharpe",
    "simple_returns",
    "sortino",
    "total_return",
]
