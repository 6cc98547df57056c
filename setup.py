"""Build script for the compiled core of mlbacktest.

Project metadata lives in ``pyproject.toml``; this file only declares the
Cython extension modules and the compiler directives, set once here.

Set ``MLBACKTEST_DEBUG=1`` to build with bounds checks, wrap-around checks and
line tracing (for coverage and profilers) instead of ``-O3``.
"""

import os

import numpy as np
from Cython.Build import cythonize
from setuptools import Extension, setup

DEBUG = os.environ.get("MLBACKTEST_DEBUG", "") not in ("", "0")

MODULES = [
    "_events", "_costs", "_clock", "_broker", "_portfolio", "_engine", "_fifo", "_guard",
    "_strategy", "_window", "indicators._kernels",
]

directives = {
    "language_level": 3,
    "boundscheck": DEBUG,
    "wraparound": DEBUG,
    "initializedcheck": DEBUG,
    "cdivision": True,
    "embedsignature": True,
    "linetrace": DEBUG,
}
macros = [("NPY_NO_DEPRECATED_API", "NPY_1_7_API_VERSION")]
if DEBUG:
    macros.append(("CYTHON_TRACE_NOGIL", "1"))
compile_args = ["-O0", "-g"] if DEBUG else ["-O3"]

extensions = [
    Extension(
        f"mlbacktest.{name}",
        [f"mlbacktest/{name.replace('.', '/')}.pyx"],
        include_dirs=[np.get_include()],
        define_macros=macros,
        extra_compile_args=compile_args,
    )
    for name in MODULES
]

setup(
    ext_modules=cythonize(
        extensions,
        compiler_directives=directives,
        annotate=os.environ.get("MLBACKTEST_ANNOTATE", "") not in ("", "0"),
    ),
)
