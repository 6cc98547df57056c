"""Import the compiled modules, turning a missing or foreign build into a readable error.

Every compiled module must be imported from the directory of this package's own
``__init__.py``. A copy of the sources that was never built, imported while
another copy is installed in editable mode, would otherwise pick up the other
copy's compiled modules (the editable finder resolves ``mlbacktest.<name>`` to
the installed directory): one copy's Python running on another's compiled core.
"""

from __future__ import annotations

import importlib
import os

from mlbacktest.errors import NotBuiltError

COMPILED_MODULES: tuple[str, ...] = (
    "mlbacktest._broker",
    "mlbacktest._clock",
    "mlbacktest._costs",
    "mlbacktest._engine",
    "mlbacktest._events",
    "mlbacktest._fifo",
    "mlbacktest._guard",
    "mlbacktest._portfolio",
    "mlbacktest._strategy",
    "mlbacktest.indicators._kernels",
)
"""The extension modules compiled from the package's ``.pyx`` files."""

_PACKAGE_DIR = os.path.dirname(os.path.abspath(__file__))


def _same_dir(a: str, b: str) -> bool:
    return os.path.normcase(os.path.realpath(a)) == os.path.normcase(os.path.realpath(b))


def _how_to_build(package_dir: str) -> str:
    """The command that builds the copy of the package in ``package_dir``."""
    root = os.path.dirname(package_dir)
    if os.path.isfile(os.path.join(root, "pyproject.toml")):
        return (f"build it with `pip install -e .` run in {root} (a C compiler and the "
                "Python headers are needed)")
    return ("build it with `pip install -e .` run in its source checkout, or reinstall it "
            "with `pip install --force-reinstall mlbacktest`")


def check_build(package_dir: str = _PACKAGE_DIR) -> None:
    """Import every compiled module and check it belongs to the package in ``package_dir``.

    Parameters
    ----------
    package_dir : str
        Directory of the imported package (that of ``mlbacktest/__init__.py``).

    Raises
    ------
    NotBuiltError
        If a compiled module is missing or cannot be imported (the error
        names it), or was imported from another directory than
        ``package_dir`` (the error names both).
    """
    for name in COMPILED_MODULES:
        try:
            module = importlib.import_module(name)
        except ImportError as exc:
            if exc.name == name:
                raise NotBuiltError(
                    f"mlbacktest is not built: its compiled extension module {name} is "
                    f"missing from {package_dir}; {_how_to_build(package_dir)}.",
                    name=name, path=package_dir,
                ) from exc
            raise NotBuiltError(
                f"mlbacktest's compiled extension module {name} could not be imported from "
                f"{package_dir} ({exc}); {_how_to_build(package_dir)}.",
                name=name, path=package_dir,
            ) from exc
        where = os.path.dirname(os.path.abspath(getattr(module, "__file__", None) or "?"))
        # a module of a subpackage (mlbacktest.indicators._kernels) lives in its folder
        expected = os.path.join(package_dir, *name.split(".")[1:-1])
        if not _same_dir(where, expected):
            raise NotBuiltError(
                f"mlbacktest in {package_dir} is not built, and its compiled extension "
                f"module {name} was found in {where}, another copy of mlbacktest: one copy's "
                f"Python cannot run on another copy's compiled code. Either "
                f"{_how_to_build(package_dir)}, or import the copy in {where}.",
                name=name, path=where,
            )


check_build()
