"""The import layers of mlbacktest (docs/architecture.md, "Layers").

Every module belongs to a layer, and a module never imports from a layer above
it, even lazily inside a function: every ``import`` counts, except those in an
``if TYPE_CHECKING:`` block (annotations only). Within ``mlbacktest.data``
and ``mlbacktest.results`` the sub-layers are checked too, and every module
of these packages must be listed in them. No two modules may import each
other, directly or through others.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "mlbacktest"

FACADE = "mlbacktest"
"""The public facade (``mlbacktest/__init__.py``): it may import anything, nothing imports it."""

# Bottom to top. A module may import modules of its own layer and of the layers below.
LAYERS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("base", ("mlbacktest._version", "mlbacktest._time", "mlbacktest.errors")),
    ("compiled core", (
        "mlbacktest._typedefs", "mlbacktest._events", "mlbacktest._costs", "mlbacktest._clock",
        "mlbacktest._broker", "mlbacktest._portfolio", "mlbacktest._engine", "mlbacktest._fifo",
        "mlbacktest._fillrules", "mlbacktest._guard", "mlbacktest._strategy",
        "mlbacktest._window", "mlbacktest._build_check",
    )),
    ("data", ("mlbacktest.data",)),
    ("indicators", ("mlbacktest.indicators",)),
    ("config/models", ("mlbacktest.config", "mlbacktest.models")),
    ("strategy/schedule", ("mlbacktest.strategy", "mlbacktest.schedule")),
    ("results", ("mlbacktest.results",)),
    ("engine", ("mlbacktest.engine",)),
    ("compat/research/live", ("mlbacktest.compat", "mlbacktest.research", "mlbacktest.live")),
    ("cli/demo", ("mlbacktest.cli", "mlbacktest.demo", "mlbacktest.__main__")),
    ("facade", (FACADE,)),
)

# Inside mlbacktest.results, bottom to top; the package's __init__ re-exports, so it is last.
RESULTS_LAYERS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("frames/trades", ("mlbacktest.results.frames", "mlbacktest.results.trades")),
    ("metrics", ("mlbacktest.results.metrics",)),
    ("io", ("mlbacktest.results.io",)),
    ("plots", ("mlbacktest.results.plots",)),
    ("report", ("mlbacktest.results.report",)),
    ("result", ("mlbacktest.results.result",)),
    ("results package", ("mlbacktest.results",)),
)

# Inside mlbacktest.data, bottom to top; the package's __init__ re-exports, so it is last.
DATA_LAYERS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("panel/files/synthetic", (
        "mlbacktest.data.panel", "mlbacktest.data.files", "mlbacktest.data.synthetic",
    )),
    ("validate", ("mlbacktest.data.validate",)),
    ("signals", ("mlbacktest.data.signals",)),
    ("frames", ("mlbacktest.data.frames",)),
    ("streaming", ("mlbacktest.data.streaming",)),
    ("feeds", ("mlbacktest.data.feeds",)),
    ("context/source", ("mlbacktest.data.context", "mlbacktest.data.source")),
    ("data package", ("mlbacktest.data",)),
)

SUB_LAYERS: dict[str, tuple[tuple[str, tuple[str, ...]], ...]] = {
    "mlbacktest.data": DATA_LAYERS,
    "mlbacktest.results": RESULTS_LAYERS,
}
"""Packages whose modules are layered among themselves too."""


def _package_of(module: str) -> str | None:
    """The package of :data:`SUB_LAYERS` holding ``module``, if any."""
    for package in SUB_LAYERS:
        if module == package or module.startswith(package + "."):
            return package
    return None


PLAIN_DATA_LAYERS: tuple[str, ...] = ("base", "compiled core")
"""What the results modules below ``result`` may import from outside the package: they work on
plain arrays, frames and small dataclasses, and know nothing of feeds, configs or the engine."""

KNOWN_BACK_ARROWS: dict[tuple[str, str], str] = {}
"""Imports against the layer order that a pending change removes; the list may only shrink."""

_PYX_IMPORT = re.compile(
    r"^\s*(?:from\s+(mlbacktest[\w.]*)\s+c?import\b|c?import\s+(mlbacktest[\w.]*))", re.M
)


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _is_module(name: str) -> bool:
    base = PACKAGE.parent / name.replace(".", "/")
    return base.is_dir() or any(base.with_suffix(s).is_file() for s in (".py", ".pyx", ".pxd"))


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def python_imports(source: str, module: str, is_package: bool) -> set[str]:
    """mlbacktest modules imported anywhere in ``source``, except under ``if TYPE_CHECKING:``.

    ``from X import name`` counts as importing the module ``X.name`` when
    there is one, else ``X``.
    """
    package = module if is_package else module.rpartition(".")[0]
    found: set[str] = set()

    def visit(node: ast.AST) -> None:
        if isinstance(node, ast.If) and _is_type_checking(node.test):
            for child in node.orelse:
                visit(child)
            return
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names if a.name.split(".")[0] == "mlbacktest")
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            if target.split(".")[0] == "mlbacktest":
                for alias in node.names:
                    sub = f"{target}.{alias.name}"
                    found.add(sub if _is_module(sub) else target)
        for child in ast.iter_child_nodes(node):
            visit(child)

    visit(ast.parse(source))
    found.discard(module)
    return found


def import_graph() -> dict[str, set[str]]:
    """Module -> the mlbacktest modules it imports (``.py``, ``.pyx`` and ``.pxd``)."""
    graph: dict[str, set[str]] = {}
    for path in sorted(PACKAGE.rglob("*")):
        if path.suffix not in (".py", ".pyx", ".pxd") or "__pycache__" in path.parts:
            continue
        module = _module_name(path)
        text = path.read_text(encoding="utf-8")
        if path.suffix == ".py":
            deps = python_imports(text, module, path.name == "__init__.py")
        else:
            deps = {a or b for a, b in _PYX_IMPORT.findall(text)} - {module}
        graph.setdefault(module, set()).update(deps)
    return graph


def _layer_of(module: str, layers: tuple[tuple[str, tuple[str, ...]], ...]) -> tuple[int, str]:
    """(rank, name) of the layer holding ``module``: the longest matching prefix decides."""
    best: tuple[int, int, str] | None = None
    for rank, (name, prefixes) in enumerate(layers):
        for prefix in prefixes:
            if module == prefix or module.startswith(prefix + "."):
                if best is None or len(prefix) > best[0]:
                    best = (len(prefix), rank, name)
    if best is None:
        raise LookupError(module)
    return best[1], best[2]


def _results_below_result(module: str) -> bool:
    if not module.startswith("mlbacktest.results."):
        return False
    return _layer_of(module, RESULTS_LAYERS)[0] < _layer_of("mlbacktest.results.result",
                                                             RESULTS_LAYERS)[0]


def back_arrows(graph: dict[str, set[str]]) -> dict[tuple[str, str], str]:
    """Every import from a lower layer to a higher one, with its description."""
    found: dict[tuple[str, str], str] = {}
    for importer, deps in graph.items():
        for imported in deps:
            if _results_below_result(importer) and not imported.startswith("mlbacktest.results"):
                outside = _layer_of(imported, LAYERS)[1]
                if outside not in PLAIN_DATA_LAYERS:
                    found[(importer, imported)] = (
                        f"{importer} (layer {_layer_of(importer, RESULTS_LAYERS)[1]}) imports "
                        f"{imported} (layer {outside}): below result, the results package "
                        "imports only the base and the compiled core"
                    )
                    continue
            checks = [LAYERS]
            package = _package_of(importer)
            if package is not None and _package_of(imported) == package:
                checks.append(SUB_LAYERS[package])  # and the package's own sub-layers
            for layers in checks:
                (a, a_name), (b, b_name) = _layer_of(importer, layers), _layer_of(imported, layers)
                if b > a:
                    found[(importer, imported)] = (
                        f"{importer} (layer {a_name}) imports {imported} (layer {b_name})"
                    )
    return found


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    out: list[list[str]] = []

    def connect(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph.get(v, ())):
            if w not in index:
                connect(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                out.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            connect(v)
    return out


@pytest.fixture(scope="module")
def graph() -> dict[str, set[str]]:
    return import_graph()


def test_every_module_has_a_layer(graph):
    unplaced = sorted(
        m for m in set(graph) | {d for deps in graph.values() for d in deps}
        if not _is_placed(m)
    )
    assert not unplaced, f"modules missing from the layer map of tests/test_layers.py: {unplaced}"


def _is_placed(module: str) -> bool:
    """In the layer map, and for a module of a layered package, listed in its sub-layers.

    A new module of ``mlbacktest.data`` or ``mlbacktest.results`` would otherwise fall in the
    package's own (top) sub-layer unnoticed.
    """
    try:
        _layer_of(module, LAYERS)
    except LookupError:
        return False
    package = _package_of(module)
    if package is None:
        return True
    return any(module in prefixes for _, prefixes in SUB_LAYERS[package])


def test_no_module_imports_a_layer_above_it(graph):
    found = back_arrows(graph)
    offending = sorted(desc for edge, desc in found.items() if edge not in KNOWN_BACK_ARROWS)
    assert not offending, "imports against the layer order:\n" + "\n".join(offending)


def test_known_back_arrows_still_exist(graph):
    # A pending change removed one: take it off KNOWN_BACK_ARROWS so the list shrinks.
    found = back_arrows(graph)
    gone = sorted(f"{a} -> {b}" for a, b in KNOWN_BACK_ARROWS if (a, b) not in found)
    assert not gone, f"no longer imported against the layers, remove from KNOWN_BACK_ARROWS: {gone}"


def test_a_module_missing_from_a_packages_sub_layers_is_unplaced():
    assert _is_placed("mlbacktest.data.frames") and _is_placed("mlbacktest.data")
    assert _is_placed("mlbacktest.results.io") and _is_placed("mlbacktest.engine")
    assert not _is_placed("mlbacktest.data.newmodule")
    assert not _is_placed("mlbacktest.results.newmodule")


def test_nothing_imports_the_facade(graph):
    importers = sorted(m for m, deps in graph.items() if FACADE in deps)
    assert not importers, f"modules importing the mlbacktest facade: {importers}"


def test_no_import_cycles(graph):
    assert cycles(graph) == []


# -- the checker itself ------------------------------------------------------------


def test_lazy_imports_count_and_type_checking_imports_do_not():
    source = (
        "from typing import TYPE_CHECKING\n"
        "if TYPE_CHECKING:\n"
        "    from .result import BacktestResult\n"
        "else:\n"
        "    import mlbacktest.errors\n"
        "from . import metrics\n"
        "from .frames import EQUITY_DTYPES\n"
        "def f():\n"
        "    from mlbacktest.config import BacktestConfig\n"
        "    import mlbacktest\n"
    )
    found = python_imports(source, "mlbacktest.results.io", is_package=False)
    assert found == {
        "mlbacktest.errors",
        "mlbacktest.results.metrics",
        "mlbacktest.results.frames",
        "mlbacktest.config",
        "mlbacktest",
    }


def test_back_arrows_and_cycles_are_found():
    toy = {
        "mlbacktest.results.io": {"mlbacktest.results.result", "mlbacktest.config"},
        "mlbacktest.results.result": {"mlbacktest.results.io"},
        "mlbacktest.data.feeds": {"mlbacktest.engine"},
        "mlbacktest.engine": {"mlbacktest.data.feeds"},
        "mlbacktest.data.frames": {"mlbacktest.data.streaming", "mlbacktest.data.validate"},
    }
    assert sorted(back_arrows(toy).values()) == [
        "mlbacktest.data.feeds (layer data) imports mlbacktest.engine (layer engine)",
        "mlbacktest.data.frames (layer frames) imports mlbacktest.data.streaming "
        "(layer streaming)",
        "mlbacktest.results.io (layer io) imports mlbacktest.config (layer config/models): "
        "below result, the results package imports only the base and the compiled core",
        "mlbacktest.results.io (layer io) imports mlbacktest.results.result (layer result)",
    ]
    assert cycles(toy) == [
        ["mlbacktest.data.feeds", "mlbacktest.engine"],
        ["mlbacktest.results.io", "mlbacktest.results.result"],
    ]


def test_the_rejected_status_comes_from_the_compiled_enum():
    import mlbacktest._events as events
    import mlbacktest.results.metrics as metrics

    assert metrics.ORDER_STATUS_REJECTED == events.ORDER_STATUS_REJECTED
    assert events.ORDER_STATUS_NAMES[events.ORDER_STATUS_REJECTED] == "rejected"


def test_the_version_needs_no_facade():
    import mlbacktest
    import mlbacktest._version as version

    assert mlbacktest.__version__ == version.__version__
    pyproject = (PACKAGE.parent / "pyproject.toml").read_text(encoding="utf-8")
    assert f'version = "{version.__version__}"' in pyproject
