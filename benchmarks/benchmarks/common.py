"""Shared, seeded inputs and strategies for the mlbacktest benchmarks.

Like numpy's ``benchmarks/benchmarks/common.py``: everything a benchmark needs
that is expensive to build (synthetic panels, feeds) is made here once per
process and cached, so ``setup`` stays cheap after the first call and timings
never include data generation.

**Append-only.** Results stored by asv are compared across commits; changing
what an existing size or strategy means silently invalidates that history.
Add new sizes, seeds or strategies; do not edit the existing ones.
"""

from __future__ import annotations

import functools

import numpy as np

from mlbacktest import BacktestConfig, BacktestEngine, PolarsDataFeed, Strategy
from mlbacktest.data.synthetic import synthetic_bars

__all__ = [
    "SIZES",
    "SIZE_LABELS",
    "SEED",
    "THRESHOLD",
    "INITIAL_CASH",
    "parse_size",
    "frame",
    "feed",
    "split_feeds",
    "config",
    "run",
    "STRATEGIES",
    "EmptyMarketData",
    "MarketDataSignal",
    "SliceSignal",
]

#: Panel sizes, (n_assets, n_bars): ~5 years of daily bars for 100 assets and
#: ~10 years for 500 assets.
SIZES: tuple[tuple[int, int], ...] = ((100, 1_260), (500, 2_520))
#: asv parameter labels of SIZES, in the same order.
SIZE_LABELS: tuple[str, ...] = tuple(f"{a}x{b}" for a, b in SIZES)
#: Seed of every synthetic panel.
SEED = 42
#: |pred| above which the signal strategies act (pred is roughly N(0, 1)).
THRESHOLD = 1.0
#: Starting cash of every benchmark run.
INITIAL_CASH = 1_000_000.0


def parse_size(label: str) -> tuple[int, int]:
    """``"500x2520"`` -> ``(500, 2520)``."""
    a, b = label.split("x")
    return int(a), int(b)


def frame(n_assets: int, n_bars: int, seed: int = SEED):
    """The seeded synthetic polars frame (built once per size and seed)."""
    return _frame(int(n_assets), int(n_bars), int(seed))


def feed(n_assets: int, n_bars: int, seed: int = SEED) -> PolarsDataFeed:
    """A validated feed over :func:`frame` (built once per size and seed; feeds are read-only)."""
    return _feed(int(n_assets), int(n_bars), int(seed))


# The caches are keyed on normalised positional arguments, so ``feed(500, 2520)``
# and ``feed(500, 2520, 42)`` share one entry (and one copy of the data).
@functools.cache  # lru_cache(maxsize=None): one entry per (size, seed)
def _frame(n_assets: int, n_bars: int, seed: int):
    return synthetic_bars(n_assets, n_bars, seed=seed)


@functools.cache
def _feed(n_assets: int, n_bars: int, seed: int) -> PolarsDataFeed:
    return PolarsDataFeed(_frame(n_assets, n_bars, seed), signal_columns=["pred"])


def config() -> BacktestConfig:
    """The run configuration shared by every benchmark (defaults + fixed cash)."""
    return BacktestConfig(initial_cash=INITIAL_CASH)


def run(data_feed, strategy: Strategy):
    """Build an engine over ``data_feed`` (a feed or a list of feeds), run ``strategy``.

    Returns the :class:`~mlbacktest.BacktestResult`.
    """
    return BacktestEngine(data_feed, strategy, config()).run()


# --------------------------------------------------------------------------- #
# Strategies
# --------------------------------------------------------------------------- #
class EmptyMarketData(Strategy):
    """``on_market_data`` that does nothing: the engine's per-asset-bar floor."""

    def on_market_data(self, event, context):
        pass


class MarketDataSignal(Strategy):
    """Signal-threshold strategy written per bar, with the helper API.

    Enters long at ``1/N`` of equity when ``pred > threshold`` and flat;
    closes when ``pred < -threshold`` and long. Same rule and same sizing as
    :class:`SliceSignal`, so the two produce the same fills.
    """

    def __init__(self, threshold: float = THRESHOLD) -> None:
        self.threshold = threshold

    def on_start(self):
        self.weight = 1.0 / len(self.assets)

    def on_market_data(self, event, context):
        pred = event.signals[0]
        aid = event.asset_id
        if pred > self.threshold:
            if self.get_position(aid) == 0.0:
                self.order_target_percent(aid, self.weight)
        elif pred < -self.threshold:
            if self.get_position(aid) > 0.0:
                self.close_position(aid)


class SliceSignal(Strategy):
    """The signal-threshold strategy of :class:`MarketDataSignal`, vectorised per timestamp.

    One numpy pass over the slice and one ``order_many`` call: entry
    quantities are ``(equity / N) / close``, exits ``-position``.
    """

    def __init__(self, threshold: float = THRESHOLD) -> None:
        self.threshold = threshold

    def on_start(self):
        self.n = len(self.assets)

    def on_slice(self, view, context):
        pred = view.signals[:, 0]
        pos = view.positions
        enter = (pred > self.threshold) & (pos == 0.0)
        leave = (pred < -self.threshold) & (pos > 0.0)
        if not (enter.any() or leave.any()):
            return
        qty = np.zeros(pred.shape[0])
        if enter.any():
            qty[enter] = (self.get_equity() / self.n) / view.close[enter]
        qty[leave] = -pos[leave]
        mask = enter | leave
        self.order_many(view.asset_ids[mask], qty[mask])


#: Strategy classes by the name the benchmarks and run.py use.
STRATEGIES: dict[str, type[Strategy]] = {
    "on_slice": SliceSignal,
    "on_market_data_empty": EmptyMarketData,
    "on_market_data_signal": MarketDataSignal,
}


# --------------------------------------------------------------------------- #
# Multi-feed inputs (appended; see the module docstring)
# --------------------------------------------------------------------------- #
def split_feeds(n_assets: int, n_bars: int, n_feeds: int, seed: int = SEED) -> tuple:
    """The :func:`frame` panel split by asset into ``n_feeds`` feeds (built once per arguments).

    A run over them sees the same bars as a run over :func:`feed`, but the
    clock merges ``n_feeds`` streams and each slice spans ``n_feeds`` row ranges.
    """
    return _split_feeds(int(n_assets), int(n_bars), int(n_feeds), int(seed))


@functools.cache
def _split_feeds(n_assets: int, n_bars: int, n_feeds: int, seed: int) -> tuple:
    import polars as pl

    df = _frame(n_assets, n_bars, seed)
    group = pl.col("asset").str.slice(1).cast(pl.Int64) % n_feeds
    return tuple(
        PolarsDataFeed(df.filter(group == k), signal_columns=["pred"]) for k in range(n_feeds)
    )
