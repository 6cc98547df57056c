"""Commission models.

Every built-in model is a special case of one compiled formula, evaluated per
fill of quantity ``q`` at price ``p``::

    commission = clip(rate * |q| * p + per_share * |q| + fixed, minimum, maximum)
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from mlbacktest.errors import ConfigError

__all__ = [
    "CommissionModel",
    "NoCommission",
    "PercentageCommission",
    "PerShareCommission",
    "FixedCommission",
]


@dataclass(frozen=True)
class CommissionModel:
    """Parameters of the compiled commission formula.

    Parameters
    ----------
    rate : float
        Fraction of traded value (0.001 is 10 bps).
    per_share : float
        Currency per unit traded.
    fixed : float
        Currency per fill.
    minimum : float
        Smallest commission charged per fill.
    maximum : float
        Largest commission charged per fill (``inf`` for no cap).
    """

    rate: float = 0.0
    per_share: float = 0.0
    fixed: float = 0.0
    minimum: float = 0.0
    maximum: float = math.inf

    def __post_init__(self) -> None:
        for name in ("rate", "per_share", "fixed", "minimum", "maximum"):
            value = getattr(self, name)
            if not isinstance(value, (int, float)) or math.isnan(value) or value < 0:
                raise ConfigError(f"commission {name} must be a number >= 0, got {value!r}")
        for name in ("rate", "per_share", "fixed", "minimum"):
            if math.isinf(getattr(self, name)):
                raise ConfigError(f"commission {name} must be finite")
        if self.maximum < self.minimum:
            raise ConfigError(
                f"commission maximum ({self.maximum}) is below its minimum ({self.minimum})"
            )

    def compute(self, quantity: float, price: float) -> float:
        """Commission of one fill, as the compiled broker computes it."""
        q = abs(quantity)
        c = self.rate * q * price + self.per_share * q + self.fixed
        return min(max(c, self.minimum), self.maximum)

    def broker_kwargs(self) -> dict[str, float]:
        """Keyword arguments for the compiled broker."""
        return {
            "commission_rate": float(self.rate),
            "commission_per_share": float(self.per_share),
            "commission_fixed": float(self.fixed),
            "commission_minimum": float(self.minimum),
            "commission_maximum": float(self.maximum),
        }


def NoCommission() -> CommissionModel:  # noqa: N802 - reads like a class at the call site
    """No commission."""
    return CommissionModel()


def PercentageCommission(rate: float) -> CommissionModel:  # noqa: N802
    """``rate`` times the traded value (``rate=0.001`` is 10 bps)."""
    return CommissionModel(rate=rate)


def PerShareCommission(  # noqa: N802
    per_share: float, minimum: float = 0.0, maximum: float = math.inf
) -> CommissionModel:
    """``per_share`` per unit traded, at least ``minimum`` and at most ``maximum`` per fill."""
    return CommissionModel(per_share=per_share, minimum=minimum, maximum=maximum)


def FixedCommission(amount: float) -> CommissionModel:  # noqa: N802
    """A flat ``amount`` per fill."""
    return CommissionModel(fixed=amount)
