"""What a user pays after the run: frames, metrics, trades and the HTML report.

One backtest is run in ``setup`` (``SliceSignal`` on the 500 x 2,520 panel:
about 31,000 fills and 15,000 round trips); every timed call rebuilds a
``BacktestResult`` from the recorded arrays, so nothing is cached between
calls, and then computes what it times.
"""

from __future__ import annotations

import os
import tempfile

from mlbacktest.results import BacktestResult

from . import common


def _fresh(result: BacktestResult) -> BacktestResult:
    orders = dict(result._orders)
    orders["reason"] = result._reason
    return BacktestResult(
        equity=result._equity, fills=result._fills, orders=orders,
        asset_names=result.asset_names, tz=result.tz, initial_cash=result.initial_cash,
        config=result.config,
    )


class ResultOutputs:
    """Metrics, FIFO trades with MFE/MAE, parquet round trip and the report."""

    timeout = 300.0

    def setup(self):
        self.result = common.run(common.feed(500, 2520), common.SliceSignal())
        self.dir = tempfile.mkdtemp(prefix="mlbacktest-asv-")

    def time_metrics(self):
        return _fresh(self.result).metrics

    def time_trades(self):
        return _fresh(self.result).trades

    def time_to_parquet_and_back(self):
        out = os.path.join(self.dir, "saved")
        _fresh(self.result).to_parquet(out, overwrite=True)
        BacktestResult.from_parquet(out)

    def time_report(self):
        _fresh(self.result).report(os.path.join(self.dir, "report.html"))

    def track_round_trips(self):
        return _fresh(self.result).trades.height

    track_round_trips.unit = "trades"
