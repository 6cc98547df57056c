"""Benchmarks of live runs: a paper replay against the backtest of the same bars.

Over a 50 x 2,000 daily panel with ``common.SliceSignal``. ``time_backtest``
is the plain run; ``time_replay`` the same strategy as a paper run on
``ReplayFeed(speed=inf)`` (as many timestamps per chunk as are ready);
``time_replay_per_timestamp`` one timestamp per chunk, as a venue run or a
run with kill switches takes them. Target: ``time_replay`` within 2x of
``time_backtest``. ``benchmarks/run_live.py`` prints the same ratios and the
bar-to-order latency at a simulated venue.
"""

from __future__ import annotations

import math

from . import common

SIZE = (50, 2_000)


class LiveReplay:
    """Wall time of a backtest and of paper replays of the same bars."""

    timeout = 600.0

    def setup(self):
        self.feed = common.feed(*SIZE)

    def time_backtest(self):
        common.run(self.feed, common.SliceSignal())

    def time_replay(self):
        from mlbacktest.live import LiveEngine, ReplayFeed

        LiveEngine(ReplayFeed(self.feed, speed=math.inf), common.SliceSignal(),
                   common.config()).run()

    def time_replay_per_timestamp(self):
        from mlbacktest.live import LiveEngine, ReplayFeed

        LiveEngine(ReplayFeed(self.feed, speed=math.inf), common.SliceSignal(),
                   common.config(), max_batch=1).run()
