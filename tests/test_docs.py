"""Every Python code block in README.md, docs/*.md and the user guide (docs/guide/*.md) runs."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DOCS = [
    ROOT / "README.md",
    *sorted((ROOT / "docs").glob("*.md")),
    *sorted((ROOT / "docs" / "guide").glob("*.md")),
]
BLOCK = re.compile(r"^```python\n(.*?)^```", re.S | re.M)


def _blocks():
    for path in DOCS:
        for i, match in enumerate(BLOCK.finditer(path.read_text())):
            name = path.relative_to(ROOT).as_posix()
            yield pytest.param(match.group(1), id=f"{name}-{i}")


@pytest.mark.parametrize("code", list(_blocks()))
def test_code_block_runs(code, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    exec(compile(code, "<doc>", "exec"), {"__name__": "__doc_example__"})


def test_readme_has_the_two_setup_commands():
    text = (ROOT / "README.md").read_text()
    assert "python -m mlbacktest demo" in text
    assert 'pip install -e ".[test]" && python -m pytest -q' in text
    ci = (ROOT / ".ci" / "run").read_text()
    assert 'pip install -e ".[test]" && python -m pytest -q' in ci


def _anchor(heading: str) -> str:
    """GitHub's anchor of a heading: lower case, punctuation dropped, spaces to hyphens."""
    return re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")


def _prose(text: str) -> str:
    """Markdown without its code blocks and inline code (links there are not links)."""
    return re.sub(r"`[^`\n]*`", "", re.sub(r"^```.*?^```", "", text, flags=re.S | re.M))


@pytest.mark.parametrize(
    "path", [ROOT / "README.md", *sorted((ROOT / "docs" / "guide").glob("*.md"))],
    ids=lambda p: p.relative_to(ROOT).as_posix(),
)
def test_relative_links_resolve(path):
    broken = []
    for target in re.findall(r"\]\(([^)\s]+)\)", _prose(path.read_text())):
        if re.match(r"[a-z]+:", target):
            continue
        file, _, anchor = target.partition("#")
        dest = (path.parent / file) if file else path
        if not dest.exists():
            broken.append(f"{target} (no such file)")
        elif anchor and dest.suffix == ".md":
            headings = re.findall(r"^#+ (.*)$", _prose(dest.read_text()), re.M)
            if anchor not in {_anchor(h) for h in headings}:
                broken.append(f"{target} (no such heading)")
    assert not broken, f"{path.name}: broken links {broken}"
