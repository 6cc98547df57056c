"""Benchmarks of the per-bar accessors and order helpers of Strategy (ns per call).

Each ``track_`` value is taken inside a run, in ``on_slice`` at the last
timestamp, by the probes of ``accessor_cases.py`` (a loop of the call as a
user writes it, best of several rounds): over the 500 x 300 panel
(``history``, the getters, the order helpers, ``history_panel``, the slice
views on 500 assets) and over one asset x 100,000 minute bars (the slice
views on one asset). ``LoopVsOrderMany`` times whole runs of a signal
strategy placing its orders with a per-asset loop of ``buy`` /
``close_position`` or with one ``order_many`` call.

``benchmarks/run_accessors.py`` prints the same measurements as one table,
with the targets.
"""

from __future__ import annotations

from . import accessor_cases as ac
from . import common

PANEL = (500, 300)
ONE_ASSET_BARS = 100_000
LOOP_SIZE = (500, 504)

PANEL_CASES = [*ac.HISTORY_CASES, *ac.GETTER_CASES, *ac.ORDER_CASES, "close_position(name)",
               "history_panel('close', 30), all assets", "history_panel('close', 30), 1 asset",
               *ac.VIEW_CASES, "baseline"]
ONE_ASSET_CASES = [*ac.VIEW_CASES, *ac.HISTORY_CASES, *ac.GETTER_CASES, "baseline"]


class AccessorCost:
    """ns per call on the 500 x 300 panel, by case."""

    params = [PANEL_CASES]
    param_names = ["case"]
    unit = "ns"
    timeout = 600.0

    def setup_cache(self):
        return ac.run_probe(common.feed(*PANEL), ("history", "getters", "orders", "views",
                                                  "panel"), PANEL[1] - 1)

    def track_ns_per_call(self, results, case):
        return results[case]


class OneAssetViewCost:
    """ns per call on one asset x 100,000 minute bars, by case."""

    params = [ONE_ASSET_CASES]
    param_names = ["case"]
    unit = "ns"
    timeout = 600.0

    def setup_cache(self):
        return ac.run_probe(ac.one_asset_feed(ONE_ASSET_BARS), ("history", "getters", "views"),
                            ONE_ASSET_BARS - 1)

    def track_ns_per_call(self, results, case):
        return results[case]


class LoopVsOrderMany:
    """Whole run of the signal strategy: per-asset helper loop or one order_many call."""

    params = [["loop", "order_many"]]
    param_names = ["placing"]
    timeout = 600.0

    def setup(self, placing):
        self.feed = common.feed(*LOOP_SIZE)
        self.cls = ac.LoopHelpers if placing == "loop" else ac.ManyOrders

    def time_run(self, placing):
        common.run(self.feed, self.cls())
