"""Benchmarks of the matching loop: resting orders and order throughput.

Over the 500 x 2,520 panel (``common.ORDERS_SIZE``). Every timed call builds
a ``BacktestEngine``, runs it and builds the ``BacktestResult``, like
``bench_engine.Run``; the feed and the limit prices are built in ``setup``
(cached per process by ``common``).

* ``RestingOrders``: ``RestingLimits(N)`` places N one-share buy limits in
  ``on_start``, round-robin over the 500 assets, at 1 % of each asset's
  lowest low (they never trigger), and has an empty ``on_slice``: the
  matching loop looks at every one of them on every bar and fills none.
  Target: <= 20 ns per resting order per bar over the run without orders.
* ``OrderThroughput``: order flows whose orders fill. ``market_order_many``
  and ``market_order`` (``FlipMarket``) flip 100 assets' positions per
  timestamp with market orders, through ``order_many`` or one ``order``
  call each; ``bracket`` (``BracketOnSignal``) places a bracket (entry,
  stop-loss, take-profit, OCO) whenever ``pred`` crosses above 1. Each flow
  also runs as its no-op twin (the order call replaced by a no-op of the
  same signature). Target: <= 2 us per submitted order (bracket legs count).

``benchmarks/run_orders.py`` prints the same measurements as one table.
"""

from __future__ import annotations

from . import common


class RestingOrders:
    """Whole run with N resting (never triggering) limit orders, by N."""

    params = [list(common.RESTING_ORDERS)]
    param_names = ["n_orders"]
    timeout = 600.0
    # Up to ~4 s per run at N = 100,000: no calibration, a few samples.
    number = 1
    repeat = (1, 5, 30.0)

    def setup(self, n_orders):
        self.feed = common.feed(*common.ORDERS_SIZE)
        self.prices = common.resting_limit_prices(*common.ORDERS_SIZE)

    def time_run(self, n_orders):
        common.run(self.feed, common.RestingLimits(n_orders, self.prices))

    def peakmem_run(self, n_orders):
        common.run(self.feed, common.RestingLimits(n_orders, self.prices))


class RestingOrderCost:
    """ns per resting order per bar: ``(T(N) - T(0)) / (N x bars)``, best of 3 interleaved rounds.

    T(0) is the same run without orders. Both runs happen in one sample, so
    the difference is (nearly) independent of the machine's load. Target: <= 20.
    """

    params = [list(common.RESTING_ORDERS)]
    param_names = ["n_orders"]
    timeout = 600.0
    repeat = 1
    number = 1

    def setup(self, n_orders):
        self.feed = common.feed(*common.ORDERS_SIZE)
        self.prices = common.resting_limit_prices(*common.ORDERS_SIZE)

    def track_ns_per_order_bar(self, n_orders):
        res = common.resting_order_cost(self.feed, self.prices, [n_orders], repeat=3)
        return res[n_orders]["ns"]

    track_ns_per_order_bar.unit = "ns"


class OrderThroughput:
    """Whole runs of the order flows.

    ``place``: True places the orders, False is the flow's no-op twin.
    """

    params = [list(common.ORDER_FLOWS), [True, False]]
    param_names = ["flow", "place"]
    timeout = 600.0

    def setup(self, flow, place):
        self.feed = common.feed(*common.ORDERS_SIZE)

    def time_run(self, flow, place):
        common.run(self.feed, common.order_flow(flow, place))

    def peakmem_run(self, flow, place):
        common.run(self.feed, common.order_flow(flow, place))


class OrderCost:
    """us per submitted order: ``(T(placing) - T(no-op twin)) / orders``.

    Best of 3 interleaved rounds inside one sample.

    ``track_orders`` is the number of orders a flow places (deterministic:
    a change is a semantic change, not noise). Target: <= 2 us.
    """

    params = [list(common.ORDER_FLOWS)]
    param_names = ["flow"]
    timeout = 600.0
    repeat = 1
    number = 1

    def setup(self, flow):
        self.feed = common.feed(*common.ORDERS_SIZE)

    def track_us_per_order(self, flow):
        return common.submitted_order_cost(self.feed, [flow], repeat=3)[flow]["us"]

    track_us_per_order.unit = "us"

    def track_orders(self, flow):
        return len(common.run(self.feed, common.order_flow(flow)).orders)

    track_orders.unit = "orders"

    def track_fills(self, flow):
        return len(common.run(self.feed, common.order_flow(flow)).fills)

    track_fills.unit = "fills"
