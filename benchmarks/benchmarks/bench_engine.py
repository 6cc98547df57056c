"""Whole-run benchmarks of the engine, by panel size and strategy hook style.

Every timed call builds a ``BacktestEngine`` over a prebuilt feed (an engine
runs once), runs it and builds the ``BacktestResult``; the feed is built in
``setup`` (cached per process by ``common``), so data generation and
validation are never timed.

Strategies (see ``common``):

* ``no_hooks``: overrides no hook: the compiled core alone (clock, matching,
  marking, equity recording) plus result construction.
* ``on_market_data_empty``: ``EmptyMarketData``, an ``on_market_data`` that
  does nothing: the per-asset-bar floor (event creation + Python call).
* ``on_market_data_signal``: ``MarketDataSignal``, a threshold strategy per
  bar with ``get_position`` / ``order_target_percent`` / ``close_position``.
* ``on_slice``: ``SliceSignal``, the same rule vectorised over each
  timestamp's slice with numpy and ``order_many``. It makes the same fills
  as ``MarketDataSignal`` (about 60 per asset at 500 x 2,520).
"""

from __future__ import annotations

import time

from mlbacktest import Strategy

from . import common


class Run:
    """Wall time of one full run."""

    params = [list(common.SIZE_LABELS)]
    param_names = ["size"]
    timeout = 600.0

    def setup(self, size):
        self.feed = common.feed(*common.parse_size(size))

    def time_run_no_hooks(self, size):
        common.run(self.feed, Strategy())

    def time_run_on_slice(self, size):
        common.run(self.feed, common.SliceSignal())

    def time_run_on_market_data_empty(self, size):
        common.run(self.feed, common.EmptyMarketData())

    def time_run_on_market_data_signal(self, size):
        common.run(self.feed, common.MarketDataSignal())


class PeakMem:
    """Peak resident memory of the benchmark process around one run.

    asv reports the process's maximum RSS, which also covers the imports and
    the data built in ``setup`` (the polars frame and the feed's columns):
    compare it with ``3 x feed.panel.nbytes + 200 MB``.
    """

    params = [list(common.SIZE_LABELS)]
    param_names = ["size"]
    timeout = 600.0

    def setup(self, size):
        self.feed = common.feed(*common.parse_size(size))

    def peakmem_run_no_hooks(self, size):
        common.run(self.feed, Strategy())

    def peakmem_run_on_slice(self, size):
        common.run(self.feed, common.SliceSignal())

    def peakmem_run_on_market_data_empty(self, size):
        common.run(self.feed, common.EmptyMarketData())

    def peakmem_run_on_market_data_signal(self, size):
        common.run(self.feed, common.MarketDataSignal())


def _empty(event, context):
    pass


def _baseline_seconds(n: int) -> float:
    f = _empty
    ctx = {}
    t0 = time.perf_counter()
    for i in range(n):
        f(i, ctx)
    return time.perf_counter() - t0


def _best_run_seconds(feed, factory, repeat: int = 3) -> tuple[float, object]:
    best, result = float("inf"), None
    for _ in range(repeat):
        strategy = factory()
        t0 = time.perf_counter()
        res = common.run(feed, strategy)
        dt = time.perf_counter() - t0
        if dt < best:
            best, result = dt, res
    return best, result


class Throughput:
    """Asset-bars per second and fill counts, by size and hook style.

    ``track_asset_bars_per_second`` is the best of three runs inside one
    sample (higher is better). ``track_fills`` is deterministic: a change
    means the strategy or the engine's semantics changed, not its speed.
    """

    params = [list(common.SIZE_LABELS), ["no_hooks", *common.STRATEGIES]]
    param_names = ["size", "hook"]
    timeout = 600.0
    # One sample is three full runs: keep the number of samples small.
    repeat = 1
    number = 1

    def setup(self, size, hook):
        self.feed = common.feed(*common.parse_size(size))
        self.factory = Strategy if hook == "no_hooks" else common.STRATEGIES[hook]

    def track_asset_bars_per_second(self, size, hook):
        seconds, _ = _best_run_seconds(self.feed, self.factory)
        return len(self.feed) / seconds

    track_asset_bars_per_second.unit = "asset-bars/s"

    def track_fills(self, size, hook):
        return len(common.run(self.feed, self.factory()).fills)

    track_fills.unit = "fills"


class HookOverhead:
    """Cost of an empty ``on_market_data`` per asset-bar over a plain Python loop.

    The baseline is the cheapest honest Python loop calling a two-argument
    Python function once per asset-bar (``for i in range(n): f(i, ctx)``).
    The ratio is (nearly) machine-independent; the target is <= 2.
    """

    params = [list(common.SIZE_LABELS)]
    param_names = ["size"]
    timeout = 600.0
    repeat = 1
    number = 1

    def setup(self, size):
        self.feed = common.feed(*common.parse_size(size))

    def track_empty_on_market_data_vs_python_loop(self, size):
        n = len(self.feed)
        base = engine = float("inf")
        for _ in range(3):  # interleaved, so load drift hits both alike
            base = min(base, _baseline_seconds(n))
            engine = min(engine, _best_run_seconds(self.feed, common.EmptyMarketData, 1)[0])
        return engine / base

    track_empty_on_market_data_vs_python_loop.unit = "ratio"
