#!/usr/bin/env python
"""Cost of causal indicators: computing each one, and reading one per bar.

Usage (from the repository root)::

    python benchmarks/run_indicators.py                     # 500 assets x 2,520 bars, best of 3
    python benchmarks/run_indicators.py --assets 50 --bars 500 --repeat 1   # quick look

Everything is measured in one process over one synthetic panel
(``benchmarks/benchmarks/common.py``, the panel of the other benchmarks).

**Computing.** For each indicator alone, the best wall time over
``--repeat`` runs of ``IndicatorPlan.compute`` on the run's bar store (the
per-asset time ordering, the compiled kernel and the scatter back to row
order: everything a run pays before its first bar), divided by the number
of asset-bars::

    ns per asset-bar = T(compute) / (assets x bars)

**Reading.** ``event.indicators[name]`` against ``event.signals[name]`` in
``on_market_data``, two ways: whole runs whose hook reads one or the other
(the difference of the two, per asset-bar, is the extra cost of an
indicator read), and a tight loop over one event (``--reads`` reads of
each), which is the cost of one read alone.
"""

from __future__ import annotations

import argparse
import time

import _script  # noqa: E402  (first: sets up the imports below)
from _script import common  # noqa: E402

from mlbacktest import BacktestEngine, Strategy  # noqa: E402
from mlbacktest import indicators as ind  # noqa: E402
from mlbacktest.indicators import IndicatorPlan  # noqa: E402


def cases() -> dict[str, ind.Series]:
    """One declaration per indicator (the windows a 10/30 strategy and the defaults use)."""
    fast, slow = ind.SMA("close", 10), ind.SMA("close", 30)
    return {
        "SMA(10)": fast,
        "SMA(30)": slow,
        "EMA(30)": ind.EMA("close", 30),
        "StdDev(20)": ind.StdDev("close", 20),
        "Highest(20)": ind.Highest("close", 20),
        "Lowest(20)": ind.Lowest("close", 20),
        "Sum(20)": ind.Sum("close", 20),
        "RSI(14)": ind.RSI("close", 14),
        "ATR(14)": ind.ATR(14),
        "Bollinger(20)": ind.Bollinger("close", 20),
        "ROC(10)": ind.ROC("close", 10),
        "ZScore(20)": ind.ZScore("close", 20),
        "CrossOver(SMA10, SMA30)": ind.CrossOver(fast, slow),
        "SMA10 - SMA30": fast - slow,
        "SMA10 > SMA30": fast > slow,
    }


def compute_cost(store, repeat: int) -> dict[str, float]:
    """ns per asset-bar of computing each indicator alone on ``store``."""
    out = {}
    for label, spec in cases().items():
        best = float("inf")
        for _ in range(repeat):
            plan = IndicatorPlan([("x", spec)], store.signal_names, store.n_assets)
            t0 = time.perf_counter()
            plan.compute(store)
            best = min(best, time.perf_counter() - t0)
        out[label] = best * 1e9 / store.n_rows
    return out


class ReadSignal(Strategy):
    """Reads ``pred`` from every bar."""

    def on_market_data(self, event, context):
        event.signals["pred"]


class ReadIndicator(Strategy):
    """Reads a declared SMA(10) from every bar."""

    sma = ind.SMA("close", 10)

    def on_market_data(self, event, context):
        event.indicators["sma"]


class Grab(Strategy):
    """Keeps one event (of the last bar) for the tight loop."""

    sma = ind.SMA("close", 10)

    def on_start(self):
        self.event = None

    def on_market_data(self, event, context):
        self.event = event


def read_cost(feed, repeat: int, reads: int) -> dict[str, float]:
    """Per asset-bar cost of runs reading a signal or an indicator, and of one read alone."""
    best = {"signal": float("inf"), "indicator": float("inf")}
    for _ in range(repeat):  # interleaved, so load drift hits both alike
        for key, cls in (("signal", ReadSignal), ("indicator", ReadIndicator)):
            t0 = time.perf_counter()
            BacktestEngine(feed, cls(), common.config()).run(progress=False)
            best[key] = min(best[key], time.perf_counter() - t0)
    grab = Grab()
    BacktestEngine(feed, grab, common.config()).run(progress=False)
    event = grab.event
    loop = {}
    for key, read in (("signal", lambda: event.signals["pred"]),
                      ("indicator", lambda: event.indicators["sma"])):
        fastest = float("inf")
        for _ in range(repeat):
            t0 = time.perf_counter()
            for _ in range(reads):
                read()
            fastest = min(fastest, time.perf_counter() - t0)
        loop[key] = fastest * 1e9 / reads
    n = len(feed.panel)
    return {
        "run_signal_ns": best["signal"] * 1e9 / n,
        "run_indicator_ns": best["indicator"] * 1e9 / n,
        "one_signal_read_ns": loop["signal"],
        "one_indicator_read_ns": loop["indicator"],
    }


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    _script.add_size_args(p, 500, 2_520)
    p.add_argument("--reads", type=int, default=1_000_000,
                   help="reads of each kind in the tight loop")
    args = p.parse_args()
    print(_script.environment())
    feed = common.feed(args.assets, args.bars, args.seed)
    store = BacktestEngine(feed, Strategy(), common.config()).store
    print(f"{args.assets} assets x {args.bars} bars = {store.n_rows:,} asset-bars, "
          f"best of {args.repeat}\n")
    print(f"{'indicator':<26}{'ns / asset-bar':>16}")
    for label, ns in compute_cost(store, args.repeat).items():
        print(f"{label:<26}{ns:>16.1f}")
    r = read_cost(feed, args.repeat, args.reads)
    print(f"\n{'read in on_market_data':<40}{'signal':>10}{'indicator':>12}")
    print(f"{'whole run, ns per asset-bar':<40}{r['run_signal_ns']:>10.1f}"
          f"{r['run_indicator_ns']:>12.1f}")
    print(f"{'one read alone, ns':<40}{r['one_signal_read_ns']:>10.1f}"
          f"{r['one_indicator_read_ns']:>12.1f}")
    print(f"\nextra cost of an indicator read over a signal read: "
          f"{r['run_indicator_ns'] - r['run_signal_ns']:+.1f} ns per asset-bar (whole runs), "
          f"{r['one_indicator_read_ns'] - r['one_signal_read_ns']:+.1f} ns (one read)")


if __name__ == "__main__":
    main()
