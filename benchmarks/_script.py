"""What the benchmark scripts (``run*.py``) share: imports, arguments, child processes, formats.

Each script starts with ``import _script`` (this directory is on ``sys.path``
when a script in it runs), which makes ``benchmarks.common`` importable and,
when mlbacktest is not installed, falls back to the checkout's in-place build.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import subprocess
import sys
from collections.abc import Iterator, Sequence
from typing import Any

HERE = os.path.dirname(os.path.abspath(__file__))
if HERE not in sys.path:
    sys.path.insert(0, HERE)  # for `benchmarks.common`
try:
    import mlbacktest
except ImportError:  # not installed: use the in-place build of the checkout
    sys.path.insert(0, os.path.dirname(HERE))
    import mlbacktest

from benchmarks import common  # noqa: E402

__all__ = ["MB", "add_size_args", "common", "environment", "fmt_mb", "fmt_rate",
           "run_json_child", "stderr_to_devnull"]

MB = 1024 * 1024


def add_size_args(p: argparse.ArgumentParser, assets: int, bars: int, repeat: int | None = 3,
                  repeat_help: str = "timed runs per case (best is kept)") -> None:
    """Add ``--assets``, ``--bars``, ``--seed`` and (unless ``repeat`` is None) ``--repeat``."""
    p.add_argument("--assets", type=int, default=assets)
    p.add_argument("--bars", type=int, default=bars)
    if repeat is not None:
        p.add_argument("--repeat", type=int, default=repeat, help=repeat_help)
    p.add_argument("--seed", type=int, default=common.SEED)


def environment() -> str:
    """One line naming the versions and the CPU count the numbers were taken with."""
    import numpy
    import polars

    return (f"mlbacktest {mlbacktest.__version__} | Python {sys.version.split()[0]} | "
            f"numpy {numpy.__version__} | polars {polars.__version__} | {os.cpu_count()} CPUs")


def run_json_child(cmd: Sequence[str], what: str) -> dict[str, Any] | None:
    """Run ``cmd`` (a child measuring in its own process); its last stdout line is JSON.

    A failing child prints its standard error and gives None, so one failed
    measurement does not hide the others.
    """
    proc = subprocess.run(list(cmd), capture_output=True, text=True)
    if proc.returncode != 0:
        print(f"{what} failed:\n{proc.stderr}", file=sys.stderr)
        return None
    out: dict[str, Any] = json.loads(proc.stdout.strip().splitlines()[-1])
    return out


def fmt_rate(x: float) -> str:
    """Asset-bars per second in millions: ``12.34M``."""
    return f"{x / 1e6:,.2f}M"


def fmt_mb(x: float | None) -> str:
    """Bytes as whole megabytes, or ``n/a``."""
    return "n/a" if x is None else f"{x / MB:,.0f}"


@contextlib.contextmanager
def stderr_to_devnull() -> Iterator[None]:
    """Point file descriptor 2 (and sys.stderr) at /dev/null."""
    sys.stderr.flush()
    saved = os.dup(2)
    with open(os.devnull, "w") as null:
        os.dup2(null.fileno(), 2)
        try:
            yield
        finally:
            sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)
