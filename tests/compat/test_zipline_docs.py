"""Every Python block of docs/porting/zipline.md runs (the worked example asserts that the
native strategy and the shim trade the same)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

pytest.importorskip("exchange_calendars", reason="the zipline extra")

DOC = Path(__file__).resolve().parents[2] / "docs" / "porting" / "zipline.md"
BLOCKS = re.findall(r"^```python\n(.*?)^```", DOC.read_text(), re.S | re.M)


def test_the_page_has_its_examples():
    assert len(BLOCKS) == 4


def test_blocks_run_in_order(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    namespace: dict = {"__name__": "__doc_example__"}
    for code in BLOCKS:
        exec(compile(code, str(DOC), "exec"), namespace)
