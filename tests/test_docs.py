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


def _unused_imports(code: str) -> list[str]:
    """Names a code block imports and never uses."""
    import ast

    tree = ast.parse(code)
    imported = {}
    for node in ast.walk(tree):
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            for alias in node.names:
                name = alias.asname or alias.name.split(".")[0]
                imported[name] = node.lineno
    used = {node.id for node in ast.walk(tree) if isinstance(node, ast.Name)}
    return sorted(name for name in imported if name not in used)


def test_readme_code_imports_nothing_unused():
    text = (ROOT / "README.md").read_text()
    assert _unused_imports("import numpy as np\nx = 1\n") == ["np"]  # the check itself
    unused = {i: _unused_imports(m.group(1)) for i, m in enumerate(BLOCK.finditer(text))}
    assert not any(unused.values()), f"README.md: unused imports by block {unused}"


def test_readme_setup_names_the_checkout_and_the_build_tools():
    setup = (ROOT / "README.md").read_text().split("## Set-up", 1)[1].split("\n## ", 1)[0]
    assert "\ncd " in setup  # run from the checkout
    assert "build-essential" in setup and "python3-dev" in setup
    assert "pip install -e . && python -m mlbacktest demo" in setup


def test_the_demo_output_directory_is_not_version_controlled():
    import subprocess

    from mlbacktest.cli import DEMO_OUT

    for name in ("report.html", "equity.parquet", "meta.json"):
        check = subprocess.run(
            ["git", "check-ignore", "--no-index", "-q", f"{DEMO_OUT}/{name}"],
            cwd=ROOT, check=False,
        )
        assert check.returncode == 0, f"{DEMO_OUT}/{name} is not ignored by .gitignore"
