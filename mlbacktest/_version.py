"""The version of mlbacktest.

It lives in its own module, at the bottom of the layers, so that no module
needs the package facade (``mlbacktest/__init__.py``) to know it.
"""

__version__: str = "0.1.0"
"""The version of this copy of mlbacktest (as in ``pyproject.toml``)."""
