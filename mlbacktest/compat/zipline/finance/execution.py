"""zipline's ``zipline.finance.execution`` styles: market orders only."""

from __future__ import annotations

from typing import Any

from mlbacktest.errors import PortingError

__all__ = ["MarketOrder", "LimitOrder", "StopOrder", "StopLimitOrder"]


class MarketOrder:
    """A market order (what ``order(asset, amount)`` places anyway)."""

    def __init__(self, exchange: Any = None) -> None:
        self.exchange = exchange


class _Unsupported:
    _name = ""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        raise PortingError(
            f"zipline.finance.execution.{self._name} is not supported by the zipline shim "
            "(zipline triggers and fills it on the close only): port the strategy to "
            "mlbacktest.Strategy.order(asset, quantity, limit_price=..., stop_price=...), "
            "which matches limits and stops against each bar's open, high and low "
            "(docs/semantics.md)")


class LimitOrder(_Unsupported):
    """Not supported: raises :class:`~mlbacktest.errors.PortingError`."""

    _name = "LimitOrder"


class StopOrder(_Unsupported):
    """Not supported: raises :class:`~mlbacktest.errors.PortingError`."""

    _name = "StopOrder"


class StopLimitOrder(_Unsupported):
    """Not supported: raises :class:`~mlbacktest.errors.PortingError`."""

    _name = "StopLimitOrder"
