#!/usr/bin/env python
"""Wall time, throughput and peak memory of ML-style long-short backtests (issue 4, "How fast").

Usage (from the repository root)::

    python benchmarks/run_ml.py --minute-bars 20000     # quick: 500 x 20,000 minute bars
    python benchmarks/run_ml.py                         # full size: needs ~10 GB of RAM
    python benchmarks/run_ml.py --case daily            # only (b)

Cases (each in a fresh subprocess, so each peak RSS is its own):

* **(a) minute**: 500 assets x N one-minute bars (default N = 98,280: 252
  days x 390 minutes, one trading year; bars are contiguous minutes),
  ``TopKLongShort(every="30m")``: long the top 50 ``pred``, short the
  bottom 50, ``rebalance()`` every 30 minutes. Target: >= 5 M asset-bars/s
  end to end.
* **(b) daily**: 3,000 assets x 5,040 daily bars,
  ``TopKLongShort(rule="month_end")`` (top/bottom 300). Target: < 10 s.

Times: ``gen`` is ``synthetic_bars`` (the user's data would already exist,
so it is not counted), ``feed`` is ``PolarsDataFeed(...)`` (validation,
sorting, column extraction), ``run`` is engine construction + run + result.
``end to end`` is feed + run. Memory: ``peak RSS`` is ``ru_maxrss`` of the
child (lifetime: includes data generation); ``run peak`` is ``VmHWM``
after resetting it (``/proc/self/clear_refs``) right before the engine is
built, i.e. the resident peak during the run with the feed (and the polars
frame, kept alive as a user's would be) in memory.

Memory target: < 2 GB in *streaming* mode. With ``--stream CHUNK`` (for
example ``--stream 1d``), case (a) is written once to a time-sorted parquet
file (``--data-dir``, default the system temp dir; reused when present) by
a separate process, and the measuring child runs on
``ParquetDataFeed(path, chunk=CHUNK)``: ``feed`` is then the validation pass
over every window, ``run`` includes reading every window again, and the
child's lifetime peak RSS is the streaming peak. Without ``--stream`` the
feed is built in memory: the full one-year minute case then needs ~10 GB of
RAM (the generator's float64 matrices, the polars frame and the feed columns).
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import resource
import subprocess
import sys
import time

import _script  # noqa: E402  (first: sets up the imports below)
from _script import MB, common  # noqa: E402

from mlbacktest import ParquetDataFeed, PolarsDataFeed  # noqa: E402
from mlbacktest.data.synthetic import synthetic_bars  # noqa: E402

MINUTE_BARS_YEAR = 98_280  # 252 x 390
TARGET_MINUTE_ABS = 5e6  # asset-bars/s, end to end
TARGET_DAILY_S = 10.0  # seconds, end to end
TARGET_STREAMING_MB = 2048


def write_study(path: str, assets: int, bars: int, seed: int) -> None:
    """Write case (a)'s bars to ``path``: one time-sorted parquet file."""
    df = synthetic_bars(assets, bars, seed=seed, every="1m")
    df.write_parquet(path + ".part", row_group_size=200_000)
    os.replace(path + ".part", path)


def study_path(data_dir: str, assets: int, bars: int, seed: int) -> str:
    return os.path.join(data_dir, f"mlbacktest-minute-{assets}x{bars}-seed{seed}.parquet")


def child(case: str, assets: int, bars: int, seed: int, stream: str | None = None,
          path: str | None = None, save: str | None = None) -> dict:
    every, kw = ("1m", {"every": "30m"}) if case == "minute" else ("1d", {"rule": "month_end"})
    t0 = time.perf_counter()
    if stream is None:
        df = synthetic_bars(assets, bars, seed=seed, every=every)
    t_gen = time.perf_counter() - t0
    gc.collect()
    t0 = time.perf_counter()
    if stream is None:
        feed = PolarsDataFeed(df, signal_columns=["pred"])
    else:
        feed = ParquetDataFeed(path, signal_columns=["pred"], chunk=stream)
    t_feed = time.perf_counter() - t0
    gc.collect()
    rss_before = common.proc_status("VmRSS")
    reset = common.reset_peak_rss()
    strategy = common.TopKLongShort(**kw)
    t0 = time.perf_counter()
    if save is None:
        result = common.run(feed, strategy)
    else:  # the result is written as the run goes, then read back
        from mlbacktest import BacktestEngine

        result = BacktestEngine(feed, strategy, common.config()).run(out=save, overwrite=True)
    t_run = time.perf_counter() - t0
    run_peak = common.proc_status("VmHWM") if reset else None
    return {
        "case": case,
        "assets": assets,
        "bars": bars,
        "asset_bars": len(feed),
        "stream": stream,
        "gen_s": t_gen,
        "feed_s": t_feed,
        "run_s": t_run,
        "rebalances": strategy.rebalances,
        "orders": len(result.orders),
        "fills": len(result.fills),
        "frame_mb": df.estimated_size() / MB if stream is None else 0.0,
        "panel_mb": feed.panel.nbytes / MB if stream is None else 0.0,
        "rss_before_run_mb": (rss_before or 0) / MB,
        "run_peak_mb": None if run_peak is None else run_peak / MB,
        "maxrss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024 / MB,
    }


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--case", choices=("all", "minute", "daily"), default="all")
    p.add_argument(
        "--minute-bars",
        type=int,
        default=MINUTE_BARS_YEAR,
        help="minute bars of case (a) (default 98,280, one year: ~10 GB of RAM)",
    )
    p.add_argument("--minute-assets", type=int, default=500)
    p.add_argument("--daily-bars", type=int, default=5_040)
    p.add_argument("--daily-assets", type=int, default=3_000)
    p.add_argument("--seed", type=int, default=common.SEED)
    p.add_argument("--stream", metavar="CHUNK",
                   help="case (a) from parquet with ParquetDataFeed(chunk=CHUNK), e.g. 1d")
    p.add_argument("--data-dir", default=None, help="where --stream keeps its parquet file")
    p.add_argument("--save", metavar="DIR",
                   help="case (a): run(out=DIR), writing the result as the run goes")
    p.add_argument("--child", choices=("minute", "daily"), help=argparse.SUPPRESS)
    p.add_argument("--write", help=argparse.SUPPRESS)
    p.add_argument("--path", help=argparse.SUPPRESS)
    p.add_argument("--assets", type=int, help=argparse.SUPPRESS)
    p.add_argument("--bars", type=int, help=argparse.SUPPRESS)
    args = p.parse_args(argv)

    if args.write:
        write_study(args.write, args.assets, args.bars, args.seed)
        return 0
    if args.child:
        print(json.dumps(child(args.child, args.assets, args.bars, args.seed, args.stream,
                               args.path, args.save)))
        return 0

    print(_script.environment())
    cases = []
    if args.case in ("all", "minute"):
        cases.append(("minute", args.minute_assets, args.minute_bars))
    if args.case in ("all", "daily"):
        cases.append(("daily", args.daily_assets, args.daily_bars))

    ok = True
    for case, assets, bars in cases:
        cmd = [
            sys.executable,
            os.path.abspath(__file__),
            "--child",
            case,
            "--assets",
            str(assets),
            "--bars",
            str(bars),
            "--seed",
            str(args.seed),
        ]
        stream = args.stream if case == "minute" else None
        if stream is not None:
            import tempfile

            path = study_path(args.data_dir or tempfile.gettempdir(), assets, bars, args.seed)
            if not os.path.exists(path):
                print(f"writing {path} ...", flush=True)
                subprocess.run([*cmd[:2], "--write", path, *cmd[4:]], check=True)
            cmd += ["--stream", stream, "--path", path]
        if args.save and case == "minute":
            cmd += ["--save", args.save]
        r = _script.run_json_child(cmd, f"\n{case}: the measuring child")
        if r is None:
            ok = False
            continue
        n = r["asset_bars"]
        e2e = r["feed_s"] + r["run_s"]
        label = (
            "(a) minute, top/bottom-k every 30m"
            if case == "minute"
            else "(b) daily, top/bottom-k month_end"
        )
        print(f"\n{label}: {assets} assets x {bars:,d} bars = {n:,d} asset-bars")
        print(f"  rebalances {r['rebalances']:,d}, orders {r['orders']:,d}, fills {r['fills']:,d}")
        print(f"  gen (synthetic_bars, not counted) {r['gen_s']:8.2f} s")
        feed_label = ("feed (PolarsDataFeed)            " if r["stream"] is None
                      else f"feed (ParquetDataFeed chunk={r['stream']})".ljust(33))
        print(
            f"  {feed_label} {r['feed_s']:8.2f} s   "
            f"{n / r['feed_s'] / 1e6:7.2f} M asset-bars/s"
        )
        print(
            f"  run (engine + run + result)       {r['run_s']:8.2f} s   "
            f"{n / r['run_s'] / 1e6:7.2f} M asset-bars/s"
        )
        print(
            f"  end to end (feed + run)           {e2e:8.2f} s   "
            f"{n / e2e / 1e6:7.2f} M asset-bars/s"
        )
        peak = r["run_peak_mb"]
        print(
            f"  memory: frame {r['frame_mb']:,.0f} MB, feed columns {r['panel_mb']:,.0f} MB, "
            f"RSS before run {r['rss_before_run_mb']:,.0f} MB, "
            f"run peak (VmHWM) {'n/a' if peak is None else f'{peak:,.0f}'} MB, "
            f"lifetime peak (ru_maxrss) {r['maxrss_mb']:,.0f} MB"
        )
        if case == "minute":
            hit = n / e2e >= TARGET_MINUTE_ABS
            print(
                f"  target >= 5 M asset-bars/s end to end: {'PASS' if hit else 'MISS'} "
                f"({n / e2e / 1e6:.2f} M; run alone {n / r['run_s'] / 1e6:.2f} M)"
            )
            if bars != MINUTE_BARS_YEAR:
                print(f"  (reduced size: the issue's case is {MINUTE_BARS_YEAR:,d} bars)")
        else:
            hit = e2e < TARGET_DAILY_S
            print(f"  target < 10 s end to end: {'PASS' if hit else 'MISS'} ({e2e:.2f} s)")
        ok &= hit
        if r["stream"] is not None:
            hit_mem = r["maxrss_mb"] < TARGET_STREAMING_MB
            print(f"  target < 2 GB in streaming mode: {'PASS' if hit_mem else 'MISS'} "
                  f"(lifetime peak {r['maxrss_mb']:,.0f} MB)")
            ok &= hit_mem
        elif case == "minute":
            print(f"  (in memory: peak {r['maxrss_mb']:,.0f} MB; "
                  "pass --stream 1d for the streaming case)")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
