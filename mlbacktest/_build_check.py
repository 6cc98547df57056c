"""Import the compiled modules, turning a missing build into a readable error."""

from __future__ import annotations

from mlbacktest.errors import NotBuiltError

try:
    from mlbacktest import _broker, _clock, _costs, _engine, _events, _fifo, _portfolio  # noqa: F401
except ImportError as exc:  # pragma: no cover - exercised by a subprocess test
    raise NotBuiltError(
        "mlbacktest is not built: its compiled extension module "
        f"{exc.name or 'mlbacktest._events'} could not be imported. "
        "Run `pip install -e .` in the source checkout (or `pip install mlbacktest`)."
    ) from exc
