"""The type stubs of the compiled modules match them (mypy.stubtest)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
MODULES = ["_events", "_clock", "_costs", "_portfolio", "_broker", "_engine", "_fifo", "_strategy",
           "indicators._kernels"]


def test_every_compiled_module_has_a_stub():
    for name in MODULES:
        path = ROOT / "mlbacktest" / name.replace(".", "/")
        assert path.with_suffix(".pyi").is_file(), name
        assert path.with_suffix(".pxd").is_file(), name
    assert (ROOT / "mlbacktest" / "py.typed").is_file()


def test_stubs_match_the_compiled_modules():
    cmd = [
        sys.executable, "-m", "mypy.stubtest", *(f"mlbacktest.{m}" for m in MODULES),
        "--ignore-disjoint-bases", "--allowlist", str(ROOT / "tests" / "stubtest_allowlist.txt"),
    ]
    proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-2000:]
