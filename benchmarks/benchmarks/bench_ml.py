"""ML-style long-short backtests: top-k / bottom-k on ``pred`` through ``rebalance()``.

Small versions of ``benchmarks/run_ml.py``'s cases (issue 4, "How fast"):

* ``minute``: 100 assets x 20,000 one-minute bars (``common.ML_MINUTE_SIZE``),
  ``TopKLongShort(every="30m")``: rebalance to the top/bottom 10 every 30 minutes.
* ``daily``: 500 assets x 2,520 daily bars (``common.ML_DAILY_SIZE``),
  ``TopKLongShort(rule="month_end")``: rebalance to the top/bottom 50 monthly.

Every timed call builds a ``BacktestEngine``, runs it and builds the
``BacktestResult``; the feed is built in ``setup`` (cached per process).
``FeedBuild`` times ``PolarsDataFeed`` construction over the cached frame.
"""

from __future__ import annotations

from mlbacktest import PolarsDataFeed
from mlbacktest.data.synthetic import synthetic_bars

from . import common

_CASES = {
    "minute": (common.ML_MINUTE_SIZE, "1m", {"every": "30m"}),
    "daily": (common.ML_DAILY_SIZE, "1d", {"rule": "month_end"}),
}


class TopKRun:
    """Whole run (engine + run + result) of ``TopKLongShort`` by case."""

    params = [list(_CASES)]
    param_names = ["case"]
    timeout = 300.0

    def setup(self, case):
        (assets, bars), every, self.kw = _CASES[case]
        self.feed = common.ml_feed(assets, bars, every)

    def time_run(self, case):
        common.run(self.feed, common.TopKLongShort(**self.kw))

    def peakmem_run(self, case):
        common.run(self.feed, common.TopKLongShort(**self.kw))

    def track_fills(self, case):
        return len(common.run(self.feed, common.TopKLongShort(**self.kw)).fills)

    track_fills.unit = "fills"


class FeedBuild:
    """``PolarsDataFeed(frame, signal_columns=["pred"])`` over the case's frame."""

    params = [list(_CASES)]
    param_names = ["case"]
    timeout = 300.0
    number = 1
    repeat = (1, 5, 30.0)

    def setup(self, case):
        (assets, bars), every, _ = _CASES[case]
        self.df = synthetic_bars(assets, bars, seed=common.SEED, every=every)

    def time_feed(self, case):
        PolarsDataFeed(self.df, signal_columns=["pred"])

    def peakmem_feed(self, case):
        PolarsDataFeed(self.df, signal_columns=["pred"])
