"""Import the compiled cost models, turning a missing build into a readable error."""

from __future__ import annotations

from mlbacktest.errors import NotBuiltError

try:
    from mlbacktest import _costs
except ImportError as exc:  # pragma: no cover - exercised only without a build
    raise NotBuiltError(
        "mlbacktest is not built: its compiled extension module mlbacktest._costs could not "
        "be imported. Run `pip install -e .` in the source checkout (or `pip install mlbacktest`)."
    ) from exc

__all__ = ["_costs"]
