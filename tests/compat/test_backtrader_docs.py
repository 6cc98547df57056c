"""Every Python block of docs/porting/backtrader.md runs (the worked example asserts that the
native strategy and the shim end with the same value)."""

from __future__ import annotations

import re
from pathlib import Path

DOC = Path(__file__).resolve().parents[2] / "docs" / "porting" / "backtrader.md"
BLOCKS = re.findall(r"^```python\n(.*?)^```", DOC.read_text(), re.S | re.M)


def test_the_page_has_its_examples() -> None:
    assert len(BLOCKS) == 3


def test_blocks_run_in_order() -> None:
    namespace: dict = {"__name__": "__doc_example__"}
    for code in BLOCKS:
        exec(compile(code, str(DOC), "exec"), namespace)  # noqa: S102
    assert namespace["shim_run"].position.size in (0, 50)
