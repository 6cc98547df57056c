#!/usr/bin/env python
"""Sweeps on one core, two local processes and a two-worker Dask cluster; per-task overhead.

Usage (from the repository root)::

    python benchmarks/run_research.py                     # 32 runs, 100 assets x 1,260 bars
    python benchmarks/run_research.py --assets 20 --bars 500 --tasks 50   # quick look

The sweep is the issue's: 32 parameter sets (fast in 5, 10, 15, 20 x slow in
30 .. 100) of an SMA cross-over strategy (``history_panel`` once per
timestamp, every asset at once) on daily bars. It runs serially, on a
pre-started pool of 2 local processes, and on a pre-started
``distributed.LocalCluster`` of 2 single-threaded worker processes (the
workers' profiler off, and without the ``MALLOC_TRIM_THRESHOLD_`` their
nanny sets: ``--dask-profile`` and ``--dask-malloc-trim`` keep Dask's
defaults); the
start-up of the pool and of the cluster is timed on its own. Every
executor must give the same frame (the run times aside): the script checks
it. Targets on a 2-core machine: processes >= 1.7x and Dask >= 1.6x faster
than serial.

Memory (``--memory-mb N``, the issue's case is ``--memory-mb 1024``): a
parquet source of about N MB on disk (files of 100 assets x 20,000 hourly
bars, written under /tmp and deleted after), swept 4 times on a fresh pool
of 2 processes and on a fresh 2-worker ``LocalCluster``. Each worker opens
the source once and keeps it (the script prints each worker's count of
reads); its peak RSS is compared with that of a fresh process doing one run
on the same source: it should be the size of one run, not of the sweep.

On a machine shared with other jobs the wall-clock ratios measure the
contention; the script also adds up the CPU time each worker spent on the
sweep: serial CPU time / the busiest worker's is the speed-up idle cores
would give (it includes the workers' own overheads, not the scheduling).

Scheduling overhead per task: ``--tasks`` runs of a strategy that does
nothing, on a feed of one bar, per executor: wall time / tasks. Targets:
under 20 ms (local processes) and under 50 ms (Dask).
"""

from __future__ import annotations

import argparse
import sys
import time
from concurrent.futures import ProcessPoolExecutor

import _script  # noqa: E402  (first: sets up the imports below)
import numpy as np  # noqa: E402
from _script import common  # noqa: E402

from mlbacktest import Strategy  # noqa: E402
from mlbacktest.data.synthetic import synthetic_bars  # noqa: E402
from mlbacktest.research import sweep  # noqa: E402

GRID = {"fast": [5, 10, 15, 20], "slow": [30, 40, 50, 60, 70, 80, 90, 100]}


class SmaCross(Strategy):
    """Equal weight in the assets whose fast mean close is above the slow one."""

    def __init__(self, fast: int, slow: int) -> None:
        self.fast, self.slow = fast, slow

    def on_slice(self, view, context):
        closes = self.history_panel("close", self.slow)
        if closes.shape[0] < self.slow:
            return
        up = np.nanmean(closes[-self.fast:], axis=0) > np.nanmean(closes, axis=0)
        n = int(up.sum())
        self.rebalance(np.where(up, 0.95 / n, 0.0) if n else np.zeros(up.size))


class Nothing(Strategy):
    """Does nothing: the run is all scheduling."""

    def __init__(self, i: int) -> None:
        self.i = i


def _timed(fn):
    t0 = time.perf_counter()
    out = fn()
    return out, time.perf_counter() - t0


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    _script.add_size_args(p, assets=100, bars=1260, repeat=None)
    p.add_argument("--tasks", type=int, default=100, help="tasks of the overhead measurement")
    p.add_argument("--no-dask", action="store_true", help="skip the Dask cluster")
    p.add_argument("--dask-profile", action="store_true",
                   help="leave the Dask workers' statistical profiler on (Dask's default)")
    p.add_argument("--dask-malloc-trim", action="store_true",
                   help="leave MALLOC_TRIM_THRESHOLD_=65536 in the Dask workers' environment "
                        "(Dask's default)")
    p.add_argument("--memory-mb", type=int, default=0, metavar="N",
                   help="also measure the workers' peak memory on a parquet source of N MB "
                        "on disk (written under /tmp, deleted after)")
    args = p.parse_args(argv)
    if args.memory_mb:
        _memory(args.memory_mb, args.seed, not args.no_dask)
    print(_script.environment())
    bars = synthetic_bars(n_assets=args.assets, n_bars=args.bars, seed=args.seed)
    one_bar = synthetic_bars(n_assets=2, n_bars=1, seed=args.seed)
    nothing = {"i": list(range(args.tasks))}
    cfg = common.config()
    print(f"sweep: {len(GRID['fast']) * len(GRID['slow'])} runs of SmaCross on "
          f"{args.assets} assets x {args.bars} daily bars")

    u0 = _usage()
    serial, t_serial = _timed(lambda: sweep(SmaCross, GRID, bars, cfg, progress=False))
    use_serial = tuple(b - a for a, b in zip(u0, _usage(), strict=True))
    cpu_serial = use_serial[0]
    print(f"  serial           {t_serial:8.2f} s   (CPU {cpu_serial:.2f} s, of which system "
          f"{use_serial[1]:.2f} s; {use_serial[2]:,.0f} page faults)")
    _, t_null = _timed(lambda: sweep(Nothing, nothing, one_bar, cfg, progress=False))

    pool, t_start = _timed(lambda: _started_pool(2))
    with pool:
        before = _pool_cpu(pool)
        local, t_local = _timed(lambda: sweep(SmaCross, GRID, bars, cfg, executor=pool,
                                              progress=False))
        cpu_local = _delta(before, _pool_cpu(pool))
        _, t_local_null = _timed(lambda: sweep(Nothing, nothing, one_bar, cfg, executor=pool,
                                               progress=False))
    _check(serial, local, "2 processes")
    print(f"  2 processes      {t_local:8.2f} s   {t_serial / t_local:5.2f}x   "
          f"(pool start-up {t_start:.2f} s, not included)")
    _cpu_line(cpu_serial, cpu_local)
    rows = [("local processes", t_local_null)]
    if not args.no_dask:
        try:
            import distributed
        except ImportError:
            print("  Dask: not installed (pip install 'mlbacktest[distributed]')")
        else:
            import dask

            # The workers' statistical profiler samples every thread's stack every 10 ms,
            # holding the GIL: CPU-bound backtests pay for it (see docs/guide/research.md).
            dask.config.set({"distributed.worker.profile.enabled": args.dask_profile})
            if not args.dask_malloc_trim:
                # The nanny starts each worker with MALLOC_TRIM_THRESHOLD_=65536, which turns
                # off glibc's dynamic mmap threshold: every array over 128 kB is then mapped
                # and unmapped, page by page (8x the page faults of one process here).
                dask.config.set({"distributed.nanny.pre-spawn-environ":
                                 _without_malloc_trim()})
            t0 = time.perf_counter()
            cluster = distributed.LocalCluster(n_workers=2, threads_per_worker=1,
                                               processes=True, dashboard_address=None,
                                               silence_logs=40)
            client = distributed.Client(cluster)
            client.run(lambda: None)
            t_start = time.perf_counter() - t0
            try:
                before = dict(client.run(_cpu_probe).values())
                dask, t_dask = _timed(lambda: sweep(SmaCross, GRID, bars, cfg, executor=client,
                                                    progress=False))
                cpu_dask = _delta(before, dict(client.run(_cpu_probe).values()))
                _, t_dask_null = _timed(lambda: sweep(Nothing, nothing, one_bar, cfg,
                                                      executor=client, progress=False))
            finally:
                client.close()
                cluster.close()
            _check(serial, dask, "Dask")
            print(f"  2 Dask workers   {t_dask:8.2f} s   {t_serial / t_dask:5.2f}x   "
                  f"(cluster start-up {t_start:.2f} s, not included)")
            _cpu_line(cpu_serial, cpu_dask)
            rows.append(("Dask LocalCluster", t_dask_null))
    print(f"per-task overhead ({args.tasks} tasks of a strategy that does nothing on 1 bar; "
          f"serial: {1e3 * t_null / args.tasks:.2f} ms a run):")
    for name, t in rows:
        print(f"  {name:18s} {1e3 * t / args.tasks:7.2f} ms")
    return 0


def _without_malloc_trim() -> dict:
    """The Dask nanny's pre-spawn environment without ``MALLOC_TRIM_THRESHOLD_``."""
    import dask

    env = dict(dask.config.get("distributed.nanny.pre-spawn-environ", {}))
    env.pop("MALLOC_TRIM_THRESHOLD_", None)
    return env


def _usage() -> tuple[float, float, float]:
    """(CPU seconds, of which system, minor page faults) of this process so far."""
    import resource

    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime, r.ru_stime, float(r.ru_minflt)


def _cpu_probe() -> tuple[int, tuple[float, float, float]]:
    """(pid, :func:`_usage`) of the process running it."""
    import os

    time.sleep(0.3)  # so that every worker of the pool answers
    return os.getpid(), _usage()


def _pool_cpu(pool: ProcessPoolExecutor) -> dict[int, tuple[float, float, float]]:
    seen: dict[int, tuple[float, float, float]] = {}
    for f in [pool.submit(_cpu_probe) for _ in range(4)]:
        pid, use = f.result()
        seen[pid] = use
    return seen


def _delta(before: dict, after: dict) -> list[tuple[float, ...]]:
    return [tuple(b - a for a, b in zip(before.get(k, (0.0, 0.0, 0.0)), after[k], strict=True))
            for k in after]


def _cpu_line(serial: float, workers: list[tuple[float, ...]]) -> None:
    """CPU per worker, and the speed-up two idle cores would give (serial CPU / busiest)."""
    cpu = [w[0] for w in workers]
    print(f"      CPU in the workers {' + '.join(f'{w:.2f}' for w in cpu)} s "
          f"(vs {serial:.2f} s serial): on idle cores about {serial / max(cpu):.2f}x")
    print(f"      of which system {' + '.join(f'{w[1]:.2f}' for w in workers)} s; page faults "
          f"{' + '.join(f'{w[2]:,.0f}' for w in workers)}")


class Sparse(Strategy):
    """Reads the last `slow` closes of every asset at every timestamp; rebalances every
    `every` timestamps into the assets above their mean (few orders: the run is the data)."""

    def __init__(self, slow: int, every: int) -> None:
        self.slow, self.every, self.k = slow, every, 0

    def on_slice(self, view, context):
        closes = self.history_panel("close", self.slow)
        self.k += 1
        if self.k % self.every or closes.shape[0] < self.slow:
            return
        up = closes[-1] > np.nanmean(closes, axis=0)
        n = int(up.sum())
        self.rebalance(np.where(up, 0.5 / n, 0.0) if n else np.zeros(up.size))


MEMORY_GRID = {"slow": [10, 20], "every": [500, 1000]}
"""Four runs: two a worker."""


def _peak() -> tuple[int, int, dict[str, int]]:
    """(pid, peak RSS in bytes, data loads) of the process running it."""
    import os

    from mlbacktest.research._worker import load_counts

    time.sleep(0.3)  # so that both workers of the pool answer
    return os.getpid(), common.proc_status("VmHWM") or 0, load_counts()


def _dask_peak() -> tuple[int, int, dict[str, int]]:
    """:func:`_peak` without the pause (``client.run`` reaches every worker)."""
    import os

    from mlbacktest.research._worker import load_counts

    return os.getpid(), common.proc_status("VmHWM") or 0, load_counts()


def _one_run(path: str) -> tuple[int, float]:
    """(peak RSS, seconds) of one run of the sweep's first parameter set, opening ``path``."""
    from mlbacktest import BacktestEngine
    from mlbacktest.data.feeds import open_feed

    t0 = time.perf_counter()
    BacktestEngine(open_feed(path), Sparse(10, 500), common.config()).run(progress=False)
    return common.proc_status("VmHWM") or 0, time.perf_counter() - t0


def _write_source(directory: str, mb: int, seed: int) -> tuple[int, int, int]:
    """Parquet files of 100 assets each in ``directory``, about ``mb`` MB on disk in all.

    Returns (files, assets, bars per asset). Written file by file: the whole
    data set is never in this process's memory.
    """
    import os

    import polars as pl

    n_bars = 20_000
    probe = synthetic_bars(n_assets=100, n_bars=n_bars, seed=seed, every="1h")
    probe.write_parquet(f"{directory}/part-000.parquet")
    per_file = os.path.getsize(f"{directory}/part-000.parquet")
    files = max(int(round(mb * 2**20 / per_file)), 1)
    for k in range(1, files):
        part = synthetic_bars(n_assets=100, n_bars=n_bars, seed=seed + k, every="1h")
        part = part.with_columns((pl.lit(f"G{k:02d}") + pl.col("asset")).alias("asset"))
        part.write_parquet(f"{directory}/part-{k:03d}.parquet")
    return files, 100 * files, n_bars


def _memory(mb: int, seed: int, dask_too: bool) -> None:
    """Peak RSS of each worker of a 4-run sweep on a parquet source of ``mb`` MB on disk,
    against one run in a fresh process; the data reads of each worker."""
    import os
    import tempfile

    with tempfile.TemporaryDirectory(prefix="mlbacktest-memory-", dir="/tmp") as tmp:
        t0 = time.perf_counter()
        files, assets, n_bars = _write_source(tmp, mb, seed)
        size = sum(os.path.getsize(f"{tmp}/{f}") for f in os.listdir(tmp))
        print(f"memory: a parquet source of {size / 2**20:,.0f} MB on disk ({files} files, "
              f"{assets:,} assets x {n_bars:,} hourly bars = {assets * n_bars / 1e6:,.0f} M "
              f"rows; written in {time.perf_counter() - t0:.0f} s), "
              f"{len(MEMORY_GRID['slow']) * len(MEMORY_GRID['every'])} runs on 2 workers")
        with _started_pool(1) as pool:
            one, t_one = pool.submit(_one_run, tmp).result()
        print(f"  one run in a fresh process:  peak RSS {one / _script.MB:7,.0f} MB  "
              f"({t_one:.1f} s, opening the source included)")
        with _started_pool(2) as pool:
            _, t = _timed(lambda: sweep(Sparse, MEMORY_GRID, tmp, common.config(),
                                        executor=pool, progress=False))
            seen = {}
            for f in [pool.submit(_peak) for _ in range(4)]:
                pid, peak, loads = f.result()
                seen[pid] = (peak, loads)
        _memory_lines("processes", seen, one, t)
        if not dask_too:
            return
        try:
            import distributed
        except ImportError:
            print("  Dask: not installed (pip install 'mlbacktest[distributed]')")
            return
        import dask

        dask.config.set({"distributed.worker.profile.enabled": False,
                         "distributed.nanny.pre-spawn-environ": _without_malloc_trim()})
        with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                      dashboard_address=None, silence_logs=40,
                                      memory_limit=0) as cluster, \
                distributed.Client(cluster) as client:
            _, t = _timed(lambda: sweep(Sparse, MEMORY_GRID, tmp, common.config(),
                                        executor=client, progress=False))
            seen = {pid: (peak, loads) for pid, peak, loads in client.run(_dask_peak).values()}
        _memory_lines("Dask", seen, one, t)


def _memory_lines(name: str, seen: dict, one: int, seconds: float) -> None:
    for pid, (peak, loads) in sorted(seen.items()):
        print(f"  {name:9s} worker {pid}: peak RSS {peak / _script.MB:7,.0f} MB  "
              f"({peak / one:.2f}x one run), data read {sum(loads.values())} time(s)")
    print(f"  {name:9s} sweep: {seconds:.1f} s")


def _started_pool(n: int) -> ProcessPoolExecutor:
    import multiprocessing

    pool = ProcessPoolExecutor(n, mp_context=multiprocessing.get_context("spawn"))
    for f in [pool.submit(time.sleep, 0.2) for _ in range(n)]:
        f.result()
    return pool


def _check(a, b, name: str) -> None:
    if not a.frame.drop("run_time_s").equals(b.frame.drop("run_time_s")):
        raise SystemExit(f"{name}: the sweep frame differs from the serial one")


if __name__ == "__main__":
    sys.exit(main())
