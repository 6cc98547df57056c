"""zipline's ``zipline.finance.commission`` models, translated to mlbacktest models."""

from __future__ import annotations

from typing import Any

from mlbacktest.compat.zipline._costs import PerOrderCommission
from mlbacktest.errors import PortingError
from mlbacktest.models import CommissionModel, PercentageCommission

__all__ = ["PerShare", "PerTrade", "PerDollar", "NoCommission", "PerContract",
           "PerFutureTrade", "CommissionModel"]

DEFAULT_PER_SHARE_COST = 0.001
DEFAULT_MINIMUM_COST_PER_EQUITY_TRADE = 0.0


class _ZiplineCommission:
    """A zipline commission model; :meth:`to_model` gives the mlbacktest model."""

    def to_model(self) -> CommissionModel:
        raise NotImplementedError


class PerShare(_ZiplineCommission):
    """``cost`` per share, at least ``min_trade_cost`` per order (zipline's default model)."""

    def __init__(self, cost: float = DEFAULT_PER_SHARE_COST,
                 min_trade_cost: float = DEFAULT_MINIMUM_COST_PER_EQUITY_TRADE) -> None:
        self.cost = cost
        self.min_trade_cost = min_trade_cost

    def to_model(self) -> CommissionModel:
        """:class:`PerOrderCommission` with ``per_share=cost``, ``min_trade_cost``."""
        return PerOrderCommission(per_share=self.cost, min_trade_cost=self.min_trade_cost)

    def __repr__(self) -> str:
        return f"PerShare(cost={self.cost}, min_trade_cost={self.min_trade_cost})"


class PerTrade(_ZiplineCommission):
    """A flat ``cost`` per order, charged with its first fill."""

    def __init__(self, cost: float = 0.0) -> None:
        self.cost = cost

    def to_model(self) -> CommissionModel:
        """:class:`PerOrderCommission` with ``per_trade=cost``."""
        return PerOrderCommission(per_trade=self.cost)

    def __repr__(self) -> str:
        return f"PerTrade(cost_per_trade={self.cost})"


class PerDollar(_ZiplineCommission):
    """``cost`` times the value of each fill."""

    def __init__(self, cost: float = 0.0015) -> None:
        self.cost = cost

    def to_model(self) -> CommissionModel:
        """:class:`~mlbacktest.models.PercentageCommission` of ``cost``."""
        return PercentageCommission(self.cost)

    def __repr__(self) -> str:
        return f"PerDollar(cost_per_dollar={self.cost})"


class NoCommission(PerDollar):
    """No commission."""

    def __init__(self) -> None:
        super().__init__(0.0)


class _Unsupported:
    _name = ""
    _instead = ""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        raise PortingError(f"zipline.finance.commission.{self._name} is not supported by the "
                           f"zipline shim: {self._instead}")


class PerContract(_Unsupported):
    """Futures commission: not supported (raises :class:`PortingError`)."""

    _name = "PerContract"
    _instead = ("mlbacktest has no futures multipliers; use "
                "mlbacktest.models.PerShareCommission(per_share, fixed=...) per contract")


class PerFutureTrade(_Unsupported):
    """Futures commission: not supported (raises :class:`PortingError`)."""

    _name = "PerFutureTrade"
    _instead = "use mlbacktest.models.FixedCommission(amount) on futures bars"
