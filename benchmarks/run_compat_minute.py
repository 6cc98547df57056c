#!/usr/bin/env python
"""The zipline porting assistant's minute mode against zipline-reloaded's, side by side.

Usage (from the repository root)::

    python benchmarks/run_compat_minute.py                 # 3 assets x 20 sessions
    python benchmarks/run_compat_minute.py --sessions 60

It runs ``tests/compat/algos/minute_intraday.py`` (``handle_data`` and
``record`` every minute, scheduled rebalances reading minute and session
history, orders filling over several minutes) with
``data_frequency="minute"`` on the same synthetic minute bars (three assets,
every XNYS minute of the sessions):

* **shim**: ``mlbacktest.compat.zipline.run_algorithm`` (best of ``--repeat``),
  from the frame to the ``perf`` frame;
* **zipline**: ``zipline.run_algorithm`` of zipline-reloaded from a minute
  bundle, in its own environment (``.zipline-venv/`` or ``MLBT_ZIPLINE_PYTHON``),
  timed inside that process around ``run_algorithm`` only (the ingest is not
  counted).

It prints both times (wall and CPU) and their ratios, and checks that the two
runs end with the same daily portfolio values (1e-9 relative).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests" / "compat"))
sys.path.insert(0, str(ROOT / "benchmarks"))

import zipline_oracle as oracle  # noqa: E402
from run_compat import compare  # noqa: E402

from mlbacktest.compat.zipline import load_algorithm, run_algorithm  # noqa: E402

ALGO = ROOT / "tests" / "compat" / "algos" / "minute_intraday.py"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--sessions", type=int, default=20, help="sessions of the run (>= 1)")
    ap.add_argument("--repeat", type=int, default=1, help="shim runs (best time kept)")
    ap.add_argument("--no-zipline", action="store_true", help="time the shim only")
    args = ap.parse_args()
    days = oracle.xnys_sessions("2015-01-02", "2026-12-31")
    first, start, end = (days[0].date().isoformat(), days[2].date().isoformat(),
                         days[args.sessions + 1].date().isoformat())
    frame = oracle.synthetic_minute_frame(["AAPL", "IBM", "MSFT"], first, end, seed=5)
    minutes = frame["timestamp"].nunique()
    print(f"zipline minute mode, 3 assets x {args.sessions} sessions "
          f"({minutes} minutes with the history)")
    module = load_algorithm(ALGO)
    best = best_cpu = float("inf")
    for _ in range(args.repeat):
        t0, c0 = time.perf_counter(), time.process_time()
        perf = run_algorithm(start, end, module.initialize, 1e6,
                             handle_data=module.handle_data,
                             before_trading_start=module.before_trading_start, data=frame,
                             data_frequency="minute")
        best = min(best, time.perf_counter() - t0)
        best_cpu = min(best_cpu, time.process_time() - c0)
    def run_zipline() -> dict[str, Any]:
        work = Path(tempfile.mkdtemp(prefix="mlbt-compat-minute-"))
        return oracle.run_oracle(frame, {"m": {"algo": ALGO, "start": start, "end": end,
                                               "capital": 1e6, "frequency": "minute"}},
                                 work)["m"]

    compare(perf, best, best_cpu, args.no_zipline, run_zipline)


if __name__ == "__main__":
    main()
