#!/usr/bin/env python
"""The zipline porting assistant against zipline-reloaded, side by side, as one plain script.

Usage (from the repository root)::

    python benchmarks/run_compat.py                    # 100 assets x 1,260 sessions
    python benchmarks/run_compat.py --assets 20 --bars 400

It times zipline's dual moving average (the logic of
``zipline/examples/dual_moving_average.py``: a 100- and a 300-session mean of
the price from ``data.history``, ``order_target`` 100 shares or 0), looped over
every asset, on the same synthetic daily bars:

* **shim**: ``mlbacktest.compat.zipline.run_algorithm`` (best of ``--repeat``),
  from the frame to the ``perf`` frame;
* **zipline**: ``zipline.run_algorithm`` of zipline-reloaded in its own
  environment (``.zipline-venv/`` or ``MLBT_ZIPLINE_PYTHON``, see
  tests/compat/zipline_oracle.py), timed inside that process around
  ``run_algorithm`` only (the bundle ingest is not counted).

It prints both times (wall and CPU: on a shared machine the CPU time of each
process is the steadier measure) and their ratios, and checks that the two runs
end with the same daily portfolio values (1e-9 relative).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests" / "compat"))

import zipline_oracle as oracle  # noqa: E402

from mlbacktest.compat.zipline import load_algorithm, run_algorithm  # noqa: E402

ALGO = '''
from zipline.api import order_target, record, symbols


def initialize(context):
    context.assets = symbols({names})
    context.i = 0


def handle_data(context, data):
    context.i += 1
    if context.i < 300:
        return
    longs = 0
    for asset in context.assets:
        short_mavg = data.history(asset, "price", 100, "1d").mean()
        long_mavg = data.history(asset, "price", 300, "1d").mean()
        if short_mavg > long_mavg:
            order_target(asset, 100)
            longs += 1
        elif short_mavg < long_mavg:
            order_target(asset, 0)
    record(longs=longs)
'''


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--assets", type=int, default=100)
    ap.add_argument("--bars", type=int, default=1260, help="daily sessions (>= 301)")
    ap.add_argument("--repeat", type=int, default=1, help="shim runs (best time kept)")
    ap.add_argument("--no-zipline", action="store_true", help="time the shim only")
    args = ap.parse_args()
    names = [f"S{i:03d}" for i in range(args.assets)]
    start = "2015-01-02"
    end = oracle.xnys_sessions(start, "2026-12-31")[args.bars - 1].date().isoformat()
    frame = oracle.synthetic_frame(names, start, end, seed=11)
    work = Path(tempfile.mkdtemp(prefix="mlbt-compat-"))
    algo = work / "dual_moving_average_all.py"
    algo.write_text(ALGO.format(names=", ".join(repr(n) for n in names)))
    print(f"zipline dual moving average, {args.assets} assets x {args.bars} sessions")

    module = load_algorithm(algo)
    best = best_cpu = float("inf")
    for _ in range(args.repeat):
        t0, c0 = time.perf_counter(), time.process_time()
        perf = run_algorithm(start, end, module.initialize, 1e7,
                             handle_data=module.handle_data, data=frame)
        best = min(best, time.perf_counter() - t0)
        best_cpu = min(best_cpu, time.process_time() - c0)
    compare(perf, best, best_cpu, args.no_zipline,
            lambda: oracle.run_oracle(frame, {"dma": {"algo": algo, "start": start, "end": end,
                                                      "capital": 1e7}}, work)["dma"])


def compare(perf: Any, best: float, best_cpu: float, no_zipline: bool,
            run_zipline: Callable[[], dict[str, Any]]) -> None:
    """Print the shim's times, then (unless ``no_zipline``, and when zipline-reloaded's
    environment exists) zipline's from ``run_zipline()``, their ratios and whether the two
    runs end with the same daily portfolio values (1e-9 relative)."""
    n_txn = sum(len(t) for t in perf["transactions"])
    print(f"  shim (mlbacktest.compat.zipline): {best:8.2f} s wall {best_cpu:8.2f} s CPU   "
          f"({n_txn} transactions)")
    if no_zipline:
        return
    if oracle.oracle_python() is None:
        print("  zipline: no zipline-reloaded environment (.zipline-venv/ or MLBT_ZIPLINE_PYTHON)")
        return
    out = run_zipline()
    print(f"  zipline-reloaded:                 {out['seconds']:8.2f} s wall "
          f"{out['cpu_seconds']:8.2f} s CPU   ({len(out['transactions'])} transactions)")
    print(f"  ratio zipline / shim:             {out['seconds'] / best:8.1f} x wall "
          f"{out['cpu_seconds'] / best_cpu:8.1f} x CPU")
    x, y = perf["portfolio_value"].to_numpy(float), np.array(out["portfolio_value"])
    rel = float(np.max(np.abs(x - y) / np.abs(y)))
    print(f"  same daily portfolio values: {'yes' if rel <= 1e-9 else 'NO'} "
          f"(largest relative difference {rel:.1e})")


if __name__ == "__main__":
    main()
