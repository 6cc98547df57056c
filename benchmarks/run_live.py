"""Live runs: replay throughput against the backtest, and the latency of an order.

Two measurements, on one seeded panel:

throughput
    The same strategy run as a backtest (``BacktestEngine`` over an in-memory
    feed) and as a paper run on ``ReplayFeed(speed=inf)`` of the same feed,
    in interleaved rounds, best of ``--repeat``. ``replay`` hands the engine
    as many timestamps as are ready (``max_batch=4096``, the default);
    ``replay_1`` one timestamp per chunk, as a venue run or a run with kill
    switches does. Target: ``replay`` within 2x of the backtest.
latency
    A venue run on ``SimulatedVenue``: the strategy places one market order
    per timestamp; for each, the wall time from the moment its bar came out
    of the feed to the moment the order reached the venue's ``submit`` (the
    loader building the chunk, the engine step, the hooks, the send).
    Median and 99th percentile. Target: median below 1 ms.

Usage::

    python benchmarks/run_live.py                      # 50 assets x 2,000 bars, best of 3
    python benchmarks/run_live.py --assets 10 --bars 500 --repeat 1   # quick look
    python benchmarks/run_live.py --history-window 50  # a run that keeps less history
"""

from __future__ import annotations

import argparse
import gc
import math
import time

import _script  # noqa: F401  (import set-up: the in-place build when not installed)
import numpy as np

from mlbacktest import BacktestConfig, BacktestEngine, PolarsDataFeed, Strategy
from mlbacktest.data.synthetic import synthetic_bars
from mlbacktest.live import LiveEngine, ReplayFeed, SimulatedVenue


class SliceSignal(Strategy):
    """Long the assets whose prediction is above a threshold, via order_many."""

    def on_start(self):
        self.held = np.zeros(len(self.assets))

    def on_slice(self, view, context):
        assets = view.asset_ids
        want = np.where(view.signal("pred") > 0.5, 10.0, 0.0)
        delta = want - self.held[assets]
        keep = np.flatnonzero(delta != 0)
        if keep.size:
            self.order_many(assets[keep], delta[keep])
            self.held[assets[keep]] = want[keep]


class OnePerBar(Strategy):
    """One market order per timestamp, alternating buy and sell; records when it was placed."""

    def on_start(self):
        self.placed = {}
        self.k = 0

    def on_slice(self, view, context):
        self.k += 1
        a = int(view.asset_ids[0])
        o = self.buy(a, 1) if self.k % 2 else self.sell(a, 1)
        self.placed[o.order_id] = int(view.ts)


def throughput(df, repeat: int, window: int) -> dict[str, float]:
    cfg = BacktestConfig(initial_cash=1e7, allow_short=True, history_window=window)
    feed = PolarsDataFeed(df)
    cases = {
        "backtest": lambda: BacktestEngine(feed, SliceSignal(), cfg).run(progress=False),
        "replay": lambda: LiveEngine(ReplayFeed(feed, speed=math.inf), SliceSignal(), cfg).run(),
        "replay_1": lambda: LiveEngine(ReplayFeed(feed, speed=math.inf), SliceSignal(), cfg,
                                       max_batch=1).run(),
    }
    best = dict.fromkeys(cases, math.inf)
    fills = {}
    for _ in range(repeat):
        for name, fn in cases.items():
            gc.collect()
            t = time.perf_counter()
            res = fn()
            best[name] = min(best[name], time.perf_counter() - t)
            fills[name] = res.fills.height
    assert fills["backtest"] == fills["replay"] == fills["replay_1"], fills
    return best


def latency(df, window: int) -> np.ndarray:
    cfg = BacktestConfig(initial_cash=1e7, allow_short=True, history_window=window)
    venue = SimulatedVenue(1e7)
    strategy = OnePerBar()
    run = LiveEngine(venue.watch(ReplayFeed(PolarsDataFeed(df), speed=math.inf)), strategy, cfg,
                     broker=venue, run_id="lat")
    run.run()
    out = []
    for oid, ts in strategy.placed.items():
        sent = venue.submit_times.get(f"lat-{oid}")
        if sent is not None and ts in venue.bar_times:
            out.append(sent - venue.bar_times[ts])
    return np.asarray(out)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    p.add_argument("--assets", type=int, default=50)
    p.add_argument("--bars", type=int, default=2_000)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--repeat", type=int, default=3)
    p.add_argument("--history-window", type=int, default=BacktestConfig().history_window,
                   help="BacktestConfig.history_window: the rows per asset a live run keeps "
                        "(default: the config's default)")
    args = p.parse_args()
    df = synthetic_bars(n_assets=args.assets, n_bars=args.bars, seed=args.seed)
    n = df.height
    print(f"panel: {args.assets} assets x {args.bars} bars = {n:,} asset-bars, "
          f"best of {args.repeat}, history_window={args.history_window}")
    best = throughput(df, args.repeat, args.history_window)
    base = best["backtest"]
    print(f"{'case':<10} {'seconds':>9} {'asset-bars/s':>14} {'vs backtest':>12}")
    for name, t in best.items():
        print(f"{name:<10} {t:9.4f} {n / t:14,.0f} {t / base:11.2f}x")
    lat = latency(df, args.history_window) * 1e6
    print(f"bar arrival -> order at the venue ({lat.size:,} orders): "
          f"median {np.median(lat):,.0f} us, p99 {np.percentile(lat, 99):,.0f} us, "
          f"max {lat.max():,.0f} us")


if __name__ == "__main__":
    main()
