"""Type stubs for mlbacktest._broker (compiled)."""

from typing import Any

import numpy as np
import numpy.typing as npt

from mlbacktest._events import BarStore, OrderBook
from mlbacktest._portfolio import Portfolio

class Broker(OrderBook):
    n_fills: int
    pending_market_array: npt.NDArray[np.float64]
    commission_rate: float
    commission_per_share: float
    commission_fixed: float
    commission_minimum: float
    commission_maximum: float
    slippage: float
    fractional: bool
    allow_short: bool
    market_at_close: bool
    def __init__(
        self,
        store: BarStore,
        portfolio: Portfolio,
        *,
        commission_rate: float = ...,
        commission_per_share: float = ...,
        commission_fixed: float = ...,
        commission_minimum: float = ...,
        commission_maximum: float = ...,
        slippage_bps: float = ...,
        fractional: bool = ...,
        allow_short: bool = ...,
        market_at_close: bool = ...,
    ) -> None: ...
    def open_order_ids(self, asset: int = ...) -> list[int]: ...
    def fill_arrays(self, start: int = ...) -> dict[str, Any]: ...
