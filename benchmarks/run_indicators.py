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

**Reading.** One read per asset-bar in ``on_market_data``, three ways:
``event.signals[name]``, ``event.indicators[name]`` and ``event[name]`` (the
one-call read), measured as whole runs against the same run with an empty
hook (the floor: event creation and the Python call), interleaved, best of
``--repeat``; the difference per asset-bar is the cost of the read. A tight
loop over one event (``--reads`` reads of each, through a lambda, so about
40 ns of call each) is printed too.
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


class Floor(Strategy):
    """Reads nothing: the per-asset-bar floor (same declaration as the readers)."""

    sma = ind.SMA("close", 10)

    def on_market_data(self, event, context):
        pass


class ReadSignal(Floor):
    """Reads ``pred`` from every bar."""

    def on_market_data(self, event, context):
        event.signals["pred"]


class ReadIndicator(Floor):
    """Reads a declared SMA(10) from every bar through ``event.indicators``."""

    def on_market_data(self, event, context):
        event.indicators["sma"]


class ReadByName(Floor):
    """Reads the SMA(10) from every bar as ``event["sma"]``."""

    def on_market_data(self, event, context):
        event["sma"]


class Grab(Floor):
    """Keeps one event (of the last bar) for the tight loop."""

    def on_start(self):
        self.event = None

    def on_market_data(self, event, context):
        self.event = event


READERS = {"floor": Floor, "signal": ReadSignal, "indicator": ReadIndicator,
           "event[name]": ReadByName}


def read_cost(feed, repeat: int, reads: int) -> dict[str, dict[str, float]]:
    """Per asset-bar cost of runs reading one value each way, and of one read alone."""
    best = dict.fromkeys(READERS, float("inf"))
    for _ in range(repeat):  # interleaved, so load drift hits every case alike
        for key, cls in READERS.items():
            t0 = time.perf_counter()
            BacktestEngine(feed, cls(), common.config()).run(progress=False)
            best[key] = min(best[key], time.perf_counter() - t0)
    grab = Grab()
    BacktestEngine(feed, grab, common.config()).run(progress=False)
    event = grab.event
    loop = {}
    for key, read in (("signal", lambda: event.signals["pred"]),
                      ("indicator", lambda: event.indicators["sma"]),
                      ("event[name]", lambda: event["sma"])):
        fastest = float("inf")
        for _ in range(repeat):
            t0 = time.perf_counter()
            for _ in range(reads):
                read()
            fastest = min(fastest, time.perf_counter() - t0)
        loop[key] = fastest * 1e9 / reads
    n = len(feed.panel)
    run_ns = {k: v * 1e9 / n for k, v in best.items()}
    return {"run": run_ns, "loop": loop}


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
    floor = r["run"]["floor"]
    print(f"\n{'one read per asset-bar in on_market_data':<42}{'run ns':>10}{'over floor':>12}"
          f"{'tight loop':>12}")
    for key, ns in r["run"].items():
        loop = r["loop"].get(key)
        print(f"{key:<42}{ns:>10.1f}{ns - floor:>12.1f}"
              + (f"{loop:>12.1f}" if loop is not None else f"{'':>12}"))

if __name__ == "__main__":
    main()
