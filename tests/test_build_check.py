"""The import-time build check (mlbacktest._build_check): a missing or foreign compiled module."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

import mlbacktest
from mlbacktest._build_check import COMPILED_MODULES, check_build
from mlbacktest.errors import NotBuiltError

PACKAGE = Path(mlbacktest.__file__).resolve().parent
BUILT = (".so", ".pyd")

# Run in a fresh interpreter: drop the finders of editable installs (``pip install -e``) so
# that only what the test puts on the path is importable; optionally stand in for one.
SCRIPT = """
import importlib.machinery, sys
sys.meta_path[:] = [f for f in sys.meta_path
                    if not getattr(f, "__module__", "").startswith("__editable__")]
sys.path.insert(0, {copy!r})
installed = {installed!r}
if installed:
    class Editable:  # what setuptools' editable finder does for mlbacktest.<name>
        @classmethod
        def find_spec(cls, fullname, path=None, target=None):
            if fullname.startswith("mlbacktest.") and fullname.count(".") == 1:
                return importlib.machinery.PathFinder.find_spec(fullname, [installed])
            return None
    sys.meta_path.append(Editable)
try:
    import mlbacktest
except ImportError as exc:
    print(type(exc).__name__, exc.name, exc.path, sep="|")
    print(exc)
else:
    print("imported", mlbacktest.__file__)
"""


def _copy_sources(dest: Path, keep: tuple[str, ...] = ()) -> Path:
    """The package's Python sources under ``dest/mlbacktest``, compiled modules only in ``keep``."""

    def ignore(folder: str, names: list[str]) -> list[str]:
        return [n for n in names if n == "__pycache__" or n.endswith((".c", ".html"))
                or (n.endswith(BUILT) and not n.startswith(keep))]

    shutil.copytree(PACKAGE, dest / "mlbacktest", ignore=ignore)
    return dest / "mlbacktest"


def _import(copy: Path, installed: Path | None = None) -> list[str]:
    code = SCRIPT.format(copy=str(copy.parent), installed=str(installed) if installed else "")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True, timeout=120, cwd=copy.parent)
    return out.stdout.splitlines()


def test_an_unbuilt_copy_names_the_missing_module(tmp_path):
    copy = _copy_sources(tmp_path)
    head, message = _import(copy)
    assert head == f"NotBuiltError|mlbacktest._broker|{copy}"
    assert message.startswith(
        f"mlbacktest is not built: its compiled extension module mlbacktest._broker is "
        f"missing from {copy}; "
    )
    assert "`pip install -e .` run in its source checkout" in message


def test_an_unbuilt_checkout_says_where_to_build(tmp_path):
    copy = _copy_sources(tmp_path / "checkout")
    (tmp_path / "checkout" / "pyproject.toml").write_text("[project]\nname = 'mlbacktest'\n")
    _, message = _import(copy)
    assert message.endswith(
        f"build it with `pip install -e .` run in {tmp_path / 'checkout'} (a C compiler and "
        "the Python headers are needed)."
    )


def test_a_partial_build_names_the_one_module_missing(tmp_path):
    present = tuple(n.rsplit(".", 1)[1] for n in COMPILED_MODULES if n != "mlbacktest._fifo")
    copy = _copy_sources(tmp_path, keep=present)
    head, message = _import(copy)
    assert head.startswith("NotBuiltError|mlbacktest._fifo|")
    assert "compiled extension module mlbacktest._fifo is missing" in message


def test_an_unbuilt_copy_beside_an_installed_build_is_refused_not_mixed(tmp_path):
    copy = _copy_sources(tmp_path / "second-checkout")
    head, message = _import(copy, installed=PACKAGE)
    assert head == f"NotBuiltError|mlbacktest._broker|{PACKAGE}"
    assert f"mlbacktest in {copy} is not built" in message
    assert f"was found in {PACKAGE}, another copy of mlbacktest" in message


def test_the_installed_build_itself_imports(tmp_path):
    # the same finder, with the built package first on the path: no error
    out = _import(PACKAGE, installed=PACKAGE)
    assert out == [f"imported {PACKAGE / '__init__.py'}"]


def test_check_build_compares_directories(tmp_path):
    check_build(str(PACKAGE))  # the built package: fine
    with pytest.raises(NotBuiltError, match=f"mlbacktest in {tmp_path} is not built") as info:
        check_build(str(tmp_path))
    assert info.value.name == COMPILED_MODULES[0]
