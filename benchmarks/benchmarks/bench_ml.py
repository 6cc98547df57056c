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


class StreamedRun:
    """The minute case read from parquet: in memory, or streamed with ``chunk=``.

    ``time_end_to_end`` builds the feed (for a streamed feed: the validation
    pass over every window) and runs; compare ``chunk="memory"`` (a
    ``ParquetDataFeed`` loaded at once) with the streamed sizes in the same
    asv run. ``peakmem`` covers the same work.
    """

    params = [["memory", "1d", "1w"]]
    param_names = ["chunk"]
    timeout = 300.0
    number = 1
    repeat = (1, 5, 60.0)

    def setup_cache(self):
        import os
        import tempfile

        (assets, bars), every, _ = _CASES["minute"]
        path = os.path.join(tempfile.mkdtemp(prefix="mlbacktest-asv-"), "minute.parquet")
        synthetic_bars(assets, bars, seed=common.SEED, every=every).write_parquet(
            path, row_group_size=100_000)
        return path

    def _run(self, path, chunk):
        from mlbacktest import ParquetDataFeed

        feed = ParquetDataFeed(path, signal_columns=["pred"],
                               chunk=None if chunk == "memory" else chunk)
        return common.run(feed, common.TopKLongShort(every="30m"))

    def time_end_to_end(self, path, chunk):
        self._run(path, chunk)

    def peakmem_end_to_end(self, path, chunk):
        self._run(path, chunk)
