#!/usr/bin/env python
"""Cost of the matching loop: resting orders and submitted orders, as one plain script.

Usage (from the repository root)::

    python benchmarks/run_orders.py                    # 500 assets x 2,520 bars, best of 3
    python benchmarks/run_orders.py --repeat 5
    python benchmarks/run_orders.py --resting 1000,10000 --assets 100 --bars 1260   # quick look

Everything is measured in one process, over one synthetic panel built once
(``benchmarks/benchmarks/common.py``: same seed, data and strategies as the
asv suite in ``bench_orders.py``). Each time T is the best wall time of a
whole run (``BacktestEngine`` construction + run + ``BacktestResult``) over
``--repeat`` interleaved rounds: every round runs every case once, so load
drift on a shared machine hits the cases alike. Costs are differences of
two runs in this process that differ only in the orders, so they are
(nearly) free of the machine's speed of the day.

**Resting orders.** ``RestingLimits(N)`` places N one-share buy limits in
``on_start`` (round-robin over the assets, each at 1 % of the asset's lowest
low over the panel, so none can ever trigger) and has an empty ``on_slice``.
``T(0)`` is the same run without orders (the broker then skips matching
entirely, so the per-bar set-up of the matching loop is charged to the
orders)::

    ns per resting order per bar = (T(N) - T(0)) / (N x bars)

``net`` also subtracts the time ``on_start`` spent placing the N orders
(measured inside the run); ``marginal`` is ``(T(N) - T(N')) / ((N - N') x
bars)`` against the previous N', the cost of one more order without the
fixed per-bar cost. Target: <= 20 ns (checked on the first column).

**Submitted orders.** Each order flow runs twice: placing its orders, and as
a twin whose order call is a no-op method of the same signature (same
decisions, same Python calls and loop)::

    us per submitted order = (T(placing) - T(no-op twin)) / orders placed

i.e. submit -> match -> fill -> ledger -> result tables, per order. Flows:
``FlipMarket`` flips 100 assets per timestamp with market orders that all
fill (through one ``order_many`` call per timestamp, or one ``order`` call
per order), and ``BracketOnSignal`` places a bracket (market entry +
stop-loss + take-profit, OCO) whenever ``pred`` crosses above 1; all three
legs count as orders. ``submit`` is the part spent inside the submission
calls (timed inside the runs), ``match`` the rest. Target: <= 2 us.
"""

from __future__ import annotations

import argparse
import sys

import _script  # noqa: E402  (first: sets up the imports below)
from _script import common  # noqa: E402

#: Targets of the issue (500 assets x 2,520 bars).
RESTING_TARGET_NS = 20.0
ORDER_TARGET_US = 2.0

FLOW_LABELS = {
    "market_order_many": "market, order_many (FlipMarket)",
    "market_order": "market, order() each (FlipMarket)",
    "bracket": "bracket, 3 legs (BracketOnSignal)",
}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    _script.add_size_args(p, *common.ORDERS_SIZE, repeat_help="interleaved rounds (best is kept)")
    p.add_argument(
        "--resting",
        default=",".join(str(n) for n in common.RESTING_ORDERS),
        help="comma-separated numbers of resting orders (default: %(default)s)",
    )
    p.add_argument("--no-resting", action="store_true", help="skip the resting-order runs")
    p.add_argument("--no-flows", action="store_true", help="skip the submitted-order runs")
    args = p.parse_args(argv)
    counts = sorted({int(x) for x in args.resting.split(",") if x.strip()} - {0})

    import numpy

    print(_script.environment())
    feed = common.feed(args.assets, args.bars, args.seed)
    n_bars = len(numpy.unique(feed.panel.ts))
    print(
        f"data: {args.assets} assets x {args.bars} bars = {len(feed.panel):,d} asset-bars, "
        f"seed {args.seed}"
    )
    print(
        f"timing: best of {args.repeat} interleaved rounds of whole runs "
        "(engine + run + result); costs are differences against a same-process baseline run\n"
    )
    checks = []

    if not args.no_resting and counts:
        prices = common.resting_limit_prices(args.assets, args.bars, args.seed)
        res = common.resting_order_cost(feed, prices, counts, args.repeat)
        print(
            "RESTING ORDERS: RestingLimits(N): N one-share buy limits placed in on_start, "
            "round-robin over the assets,\n"
            "at 1% of each asset's lowest low (never trigger); empty on_slice. "
            "T(0) = the same run without orders.\n"
            f"  ns/order/bar = (T(N) - T(0)) / (N x {n_bars:,d} bars)\n"
            "  net          = the same, minus the time on_start spent placing the orders\n"
            "  marginal     = (T(N) - T(previous N)) / (delta N x bars): one more order, "
            "without the per-bar fixed cost"
        )
        head = (
            f"{'N':>9} {'best s':>8} {'submit s':>9} {'ns/order/bar':>13} {'net':>7} "
            f"{'marginal':>9} {'fills':>6}"
        )
        print(head)
        print("-" * len(head))
        b0 = res[0]
        dash = "-"
        print(
            f"{0:>9,d} {b0['seconds']:>8.3f} {dash:>9} {dash:>13} {dash:>7} {dash:>9} "
            f"{b0['fills']:>6,d}"
        )
        prev = 0
        for n in counts:
            r = res[n]
            marginal = (r["seconds"] - res[prev]["seconds"]) / ((n - prev) * n_bars) * 1e9
            print(
                f"{n:>9,d} {r['seconds']:>8.3f} {r['submit_seconds']:>9.3f} {r['ns']:>13.1f} "
                f"{r['ns_net']:>7.1f} {marginal:>9.1f} {r['fills']:>6,d}"
            )
            prev = n
            checks.append(
                (
                    f"resting orders, N = {n:,d}: <= {RESTING_TARGET_NS:g} ns per order per bar",
                    r["ns"] <= RESTING_TARGET_NS,
                    f"{r['ns']:.1f} ns",
                )
            )
            if r["fills"]:
                print(f"  NOTE: N = {n:,d} made {r['fills']} fills: some resting orders triggered")
        print()

    if not args.no_flows:
        res = common.submitted_order_cost(feed, list(common.ORDER_FLOWS), args.repeat)
        print(
            "SUBMITTED ORDERS: each flow runs placing its orders and as a twin whose order call "
            "is a no-op method\n"
            "of the same signature (same decisions, same Python calls).\n"
            "  us/order = (T(placing) - T(no-op twin)) / orders placed (all bracket legs count)\n"
            "  submit   = part spent inside the submission calls (Strategy API -> engine -> "
            "broker order store)\n"
            "  match    = the rest: matching, fills, ledger, the result's order and fill tables"
        )
        head = (
            f"{'flow':<36} {'orders':>8} {'fills':>8} {'best s':>7} {'no-op s':>8} "
            f"{'us/order':>9} {'submit':>7} {'match':>6}"
        )
        print(head)
        print("-" * len(head))
        for name, r in res.items():
            print(
                f"{FLOW_LABELS.get(name, name):<36} {r['orders']:>8,d} {r['fills']:>8,d} "
                f"{r['seconds']:>7.3f} {r['baseline_seconds']:>8.3f} {r['us']:>9.2f} "
                f"{r['us_submit']:>7.2f} {r['us_match']:>6.2f}"
            )
            checks.append(
                (
                    f"{FLOW_LABELS.get(name, name)}: <= {ORDER_TARGET_US:g} us per submitted order",
                    r["us"] <= ORDER_TARGET_US,
                    f"{r['us']:.2f} us",
                )
            )
        if "bracket" in res:
            b = res["bracket"]
            print(f"  (a bracket, all 3 legs: {3 * b['us']:.2f} us)")
        print()

    print(f"targets ({common.ORDERS_SIZE[0]} x {common.ORDERS_SIZE[1]:,d}):")
    for text, ok, val in checks:
        print(f"  [{'PASS' if ok else 'FAIL'}] {text}: {val}")
    if (args.assets, args.bars) != common.ORDERS_SIZE:
        print(
            f"  (targets are stated for {common.ORDERS_SIZE[0]} x {common.ORDERS_SIZE[1]:,d}; "
            "this run used another size)"
        )
    return 0 if all(ok for _, ok, _ in checks) else 1


if __name__ == "__main__":
    sys.exit(main())
