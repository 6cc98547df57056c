"""Benchmarks of the event clock: stream merging, alone and inside a run."""

from __future__ import annotations

import numpy as np

from mlbacktest import Strategy
from mlbacktest._clock import Clock

from . import common


class ClockDrain:
    """Build a clock over ``n_streams`` streams of 2,520 timestamps and pop every event.

    ``drain`` makes one Python tuple per event, so this is an upper bound of
    the compiled heap's cost per event (a run pops events in C).
    """

    params = [[1, 8, 64, 512]]
    param_names = ["n_streams"]

    def setup(self, n_streams):
        n_ts = 2_520
        rng = np.random.default_rng(common.SEED)
        self.streams = []
        for _ in range(n_streams):
            # daily-ish timestamps with a random phase, so streams interleave
            ts = np.arange(n_ts, dtype=np.int64) * 86_400 + int(rng.integers(0, 86_400))
            self.streams.append((ts, np.arange(n_ts + 1, dtype=np.int64)))

    def time_build_and_drain(self, n_streams):
        clock = Clock()
        for k, (ts, off) in enumerate(self.streams):
            clock.add_stream(ts, off, k)
        clock.drain()


class MultiFeedRun:
    """A run over the 500 x 2,520 panel split by asset into several feeds.

    Same bars as one feed, but the clock merges ``n_feeds`` streams per
    timestamp and each slice view gathers rows from ``n_feeds`` ranges.
    Compare with ``bench_engine.Run`` at size ``500x2520``.
    """

    params = [[1, 4], ["no_hooks", "on_slice"]]
    param_names = ["n_feeds", "hook"]
    timeout = 600.0

    def setup(self, n_feeds, hook):
        if n_feeds == 1:
            self.feeds = [common.feed(500, 2_520)]
        else:
            self.feeds = list(common.split_feeds(500, 2_520, n_feeds))
        self.factory = Strategy if hook == "no_hooks" else common.STRATEGIES[hook]

    def time_run(self, n_feeds, hook):
        common.run(self.feeds, self.factory())
