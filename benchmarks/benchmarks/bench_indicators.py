"""Benchmarks of declared indicators: computing them, and runs that read them.

* ``IndicatorCompute``: ``IndicatorPlan.compute`` of one indicator (SMA(10),
  EMA(30), RSI(14)) or of the two SMAs of the 10/30 strategy over the
  500 x 2,520 daily panel's bar store: everything a run pays for its
  indicators before the first bar (the visiting order, the compiled kernel,
  the values stored for reading). The store is built in ``setup``; a fresh
  plan (fresh per-asset state) is built in each timed call, a few
  microseconds. ``track_ns_per_asset_bar`` is the same cost per asset-bar,
  best of 3 (target: <= 10-15 ns for a simple indicator).
* ``IndicatorRun``: whole runs of the 10/30 moving-average strategy of
  ``benchmarks/run_stateful.py`` (long while SMA(10) > SMA(30) of the close,
  0.8/N of equity, 0.1 % commission) with declared indicators, read per
  asset-bar (``event.indicators[...]``, and ``event[...]``, the one-call
  read) or per timestamp (``view.indicator(...)``), by panel size. Like
  ``bench_engine.Run``, every timed call builds the engine, runs it and
  builds the result; the feed is built in ``setup``.
"""

from __future__ import annotations

import time

import numpy as np

from mlbacktest import BacktestConfig, BacktestEngine, Strategy
from mlbacktest import indicators as ind
from mlbacktest.indicators import IndicatorPlan

from . import common

#: The daily panel the compute benchmarks run over (500 x 2,520).
COMPUTE_SIZE = (500, 2_520)
FAST, SLOW, EXPOSURE, COMMISSION = 10, 30, 0.8, 0.001


def declarations(case: str) -> list[tuple[str, ind.Series]]:
    """The declarations computed by a ``IndicatorCompute`` case (new objects each call)."""
    if case == "sma10":
        return [("x", ind.SMA("close", 10))]
    if case == "ema30":
        return [("x", ind.EMA("close", 30))]
    if case == "rsi14":
        return [("x", ind.RSI("close", 14))]
    return [("fast", ind.SMA("close", FAST)), ("slow", ind.SMA("close", SLOW))]


def ma_config() -> BacktestConfig:
    """The 10/30 strategy's configuration (as ``run_stateful.py``)."""
    return BacktestConfig(initial_cash=common.INITIAL_CASH, commission=COMMISSION,
                          allow_short=False)


class MAIndicatorsMarket(Strategy):
    """The 10/30 rule per asset-bar, reading ``event.indicators[name]``."""

    fast = ind.SMA("close", FAST)
    slow = ind.SMA("close", SLOW)

    def on_start(self):
        self.weight = EXPOSURE / len(self.assets)

    def on_market_data(self, event, context):
        values = event.indicators
        aid = event.asset_id
        long = values["fast"] > values["slow"]  # False while either is NaN (warm-up)
        held = self.get_position(aid) != 0.0
        if long and not held:
            self.order_target_percent(aid, self.weight)
        elif held and not long:
            self.close_position(aid)


class MAIndicatorsGetItem(MAIndicatorsMarket):
    """The same rule reading ``event[name]`` (one call per value)."""

    def on_market_data(self, event, context):
        aid = event.asset_id
        long = event["fast"] > event["slow"]
        held = self.get_position(aid) != 0.0
        if long and not held:
            self.order_target_percent(aid, self.weight)
        elif held and not long:
            self.close_position(aid)


class MAIndicatorsSlice(Strategy):
    """The same rule once per timestamp, on ``view.indicator(name)`` arrays."""

    fast = ind.SMA("close", FAST)
    slow = ind.SMA("close", SLOW)

    def on_start(self):
        self.weight = EXPOSURE / len(self.assets)

    def on_slice(self, view, context):
        long = view.indicator("fast") > view.indicator("slow")
        held = view.positions != 0.0
        enter = long & ~held
        leave = held & ~long
        if enter.any() or leave.any():
            ids = view.asset_ids
            qty = np.zeros(ids.shape[0])
            qty[enter] = (self.weight * self.get_equity()) / view.close[enter]
            qty[leave] = -view.positions[leave]
            trade = enter | leave
            self.order_many(ids[trade], np.trunc(qty[trade]))


STRATEGIES = {"market": MAIndicatorsMarket, "market_getitem": MAIndicatorsGetItem,
              "slice": MAIndicatorsSlice}


class IndicatorCompute:
    """Computing declared indicators over the 500 x 2,520 panel's bar store."""

    params = [["sma10", "ema30", "rsi14", "sma10_sma30"]]
    param_names = ["case"]
    timeout = 300.0

    def setup(self, case):
        feed = common.feed(*COMPUTE_SIZE)
        self.store = BacktestEngine(feed, Strategy(), common.config()).store

    def _compute(self, case):
        plan = IndicatorPlan(declarations(case), self.store.signal_names, self.store.n_assets)
        plan.compute(self.store)

    def time_compute(self, case):
        self._compute(case)

    def track_ns_per_asset_bar(self, case):
        best = float("inf")
        for _ in range(3):
            t0 = time.perf_counter()
            self._compute(case)
            best = min(best, time.perf_counter() - t0)
        return best * 1e9 / self.store.n_rows

    track_ns_per_asset_bar.unit = "ns"  # type: ignore[attr-defined]


class IndicatorRun:
    """Whole runs of the 10/30 strategy with declared indicators, by size and hook."""

    params = [list(common.SIZE_LABELS), list(STRATEGIES)]
    param_names = ["size", "hook"]
    timeout = 600.0

    def setup(self, size, hook):
        self.feed = common.feed(*common.parse_size(size))

    def time_run(self, size, hook):
        BacktestEngine(self.feed, STRATEGIES[hook](), ma_config()).run()
