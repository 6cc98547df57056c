"""Slippage models.

A buy fills at ``price * (1 + bps / 1e4)`` and a sell at
``price * (1 - bps / 1e4)``; a limit order's fill is then capped at its limit,
so slippage never makes a limit fill worse than the limit.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from mlbacktest.errors import ConfigError

__all__ = ["SlippageModel", "NoSlippage", "FixedBpsSlippage"]


@dataclass(frozen=True)
class SlippageModel:
    """Fixed slippage in basis points of the price, against the order.

    Parameters
    ----------
    bps : float
        Basis points (1 bp = 0.01 %) added to buys and taken off sells.
    """

    bps: float = 0.0

    def __post_init__(self) -> None:
        if not isinstance(self.bps, (int, float)) or not math.isfinite(self.bps) or self.bps < 0:
            raise ConfigError(f"slippage bps must be a finite number >= 0, got {self.bps!r}")
        if self.bps >= 10_000:
            raise ConfigError(f"slippage of {self.bps} bps would move sell prices to <= 0")

    def broker_kwargs(self) -> dict[str, float]:
        """Keyword arguments for the compiled broker."""
        return {"slippage_bps": float(self.bps)}


def NoSlippage() -> SlippageModel:  # noqa: N802
    """No slippage."""
    return SlippageModel(0.0)


def FixedBpsSlippage(bps: float) -> SlippageModel:  # noqa: N802
    """Slippage of ``bps`` basis points against every market and stop fill."""
    return SlippageModel(bps)
