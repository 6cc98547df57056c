"""zipline's ``zipline.pipeline``: not translated; every name raises ``PortingError``.

``from zipline.pipeline import Pipeline`` (and any other name) fails at the
import with a :class:`~mlbacktest.errors.PortingError` that names the call and
the mlbacktest way: compute the factors over the whole panel with polars
(causally: rolling windows that end at each row) and pass them as signal
columns, read per bar from the slice view.
"""

from __future__ import annotations

from typing import Any

from mlbacktest.errors import PortingError

__all__: list[str] = []


def __getattr__(name: str) -> Any:
    if name.startswith("__"):
        raise AttributeError(name)
    raise PortingError(
        f"zipline.pipeline.{name} is not supported by the zipline shim: compute the factors "
        "with polars over the panel (rolling windows ending at each row) and pass them as "
        "signal columns, PolarsDataFeed(frame, signal_columns=[...]); read them in on_slice "
        "with view.signal(name) or Strategy.history_panel(name, n)")
