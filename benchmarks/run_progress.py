#!/usr/bin/env python
"""Cost of the progress bar: the same run with ``progress=True`` and ``progress=False``.

Usage (from the repository root)::

    python benchmarks/run_progress.py                 # 50 assets x 80,000 daily bars, best of 15
    python benchmarks/run_progress.py --repeat 9 --assets 200

The engine calls the bar once every ``n_timestamps // 1000`` timestamps
(tqdm redraws at most every 0.5 s), so its cost is a counter per timestamp
plus about a thousand Python calls per run. Both runs use the same feed and
strategy (``common.SliceSignal``, one ``on_slice`` call per timestamp: many
timestamps and cheap hooks, the case where a per-timestamp cost shows
most), interleaved round by round; the bar draws to standard error, which
is sent to ``/dev/null`` during the timed runs. Target: <= 2 % slower.

The two whole-run times differ by less than this machine's run-to-run
noise, so the script also times the bar on its own: creating it, the
engine's ``update`` calls and closing it, with no run, as a fraction of
the run without a bar.
"""

from __future__ import annotations

import argparse
import sys
import time

import _script  # noqa: E402  (first: sets up the imports below)
from _script import common, stderr_to_devnull  # noqa: E402

from mlbacktest import BacktestEngine  # noqa: E402

TARGET = 1.02


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    _script.add_size_args(p, assets=50, bars=80_000, repeat=15)
    args = p.parse_args(argv)

    feed = common.feed(args.assets, args.bars, args.seed)
    best = {True: float("inf"), False: float("inf")}
    fills = {}
    for _ in range(args.repeat):
        for progress in (False, True):
            with stderr_to_devnull():
                t0 = time.perf_counter()
                result = BacktestEngine(feed, common.SliceSignal(), common.config()).run(
                    progress=progress)
                best[progress] = min(best[progress], time.perf_counter() - t0)
            fills[progress] = len(result.fills)
    assert fills[True] == fills[False]
    from mlbacktest.engine import _progress_bar

    n_ts = args.bars
    every = max(n_ts // 1000, 1)
    alone = float("inf")
    for _ in range(args.repeat):
        with stderr_to_devnull():
            t0 = time.perf_counter()
            bar = _progress_bar(True, n_ts)
            for _ in range(n_ts // every):
                bar.update(every)
            bar.close()
            alone = min(alone, time.perf_counter() - t0)
    n = len(feed)
    ratio = best[True] / best[False]
    print(f"{args.assets} assets x {args.bars:,d} bars = {n:,d} asset-bars, "
          f"{args.bars:,d} timestamps, best of {args.repeat} interleaved rounds")
    for progress in (False, True):
        print(f"  progress={progress!s:5}  {best[progress]:7.3f} s  "
              f"{n / best[progress] / 1e6:6.2f} M asset-bars/s")
    print(f"  the bar alone (create, {n_ts // every:,d} updates, close): {alone * 1e3:.2f} ms "
          f"= {alone / best[False]:.2%} of the run")
    print(f"  ratio with / without: {ratio:.4f}  "
          f"[{'PASS' if ratio <= TARGET else 'MISS'}: target <= {TARGET:.2f}]")
    return 0 if ratio <= TARGET else 1


if __name__ == "__main__":
    sys.exit(main())
