"""Type stubs for mlbacktest._broker (compiled)."""

from collections.abc import Mapping
from typing import Any

import numpy as np
import numpy.typing as npt

from mlbacktest._costs import ColumnSource, CommissionModel, SlippageModel
from mlbacktest._events import BarStore, OrderBook
from mlbacktest._portfolio import Portfolio

INTRABAR_PATHS: tuple[str, ...]

class Broker(OrderBook):
    n_fills: int
    external: bool
    n_log: int
    log_enabled: bool
    pending_market_array: npt.NDArray[np.float64]
    commission_model: CommissionModel
    slippage_model: SlippageModel
    fractional: bool
    allow_short: bool
    market_at_close: bool
    market_next_close: bool
    intrabar_path: int
    volume_cap: float
    reentry_same_bar: bool
    children_same_bar: bool
    margin_account: bool
    initial_margin: float
    maintenance_margin: float
    margin_rate: float
    total_borrow_cost: float
    total_margin_interest: float
    n_margin_calls: int
    max_positions: int
    n_positions: int
    max_leverage: float
    max_drawdown: float
    halted: bool
    halted_ts: int
    def __init__(
        self,
        store: BarStore,
        portfolio: Portfolio,
        *,
        commission: CommissionModel | None = ...,
        slippage: SlippageModel | None = ...,
        columns: ColumnSource | None = ...,
        fractional: bool = ...,
        allow_short: bool = ...,
        market_at_close: bool = ...,
        market_next_close: bool = ...,
        intrabar_path: str = ...,
        volume_cap: float = ...,
        reentry_same_bar: bool = ...,
        children_same_bar: bool = ...,
        log_status: bool = ...,
        account: str = ...,
        initial_margin: float = ...,
        maintenance_margin: float = ...,
        margin_rate: float = ...,
        borrow_rate: Any = ...,
        max_open_positions: int = ...,
        max_gross_leverage: float = ...,
        max_drawdown: float = ...,
    ) -> None: ...
    def take_log(self) -> list[tuple[int, int, int]]: ...
    def replace(
        self,
        order_id: int,
        quantity: float,
        limit_price: float,
        stop_price: float,
        ts: int,
        reference_price: float,
    ) -> int: ...
    def link_oco(self, order_ids: Any) -> int: ...
    def set_rules(
        self, asset: int, stop_loss: float, take_profit: float, trailing: float, max_bars: int
    ) -> None: ...
    def set_external(self, on: bool) -> None: ...
    def queue_external_fill(self, order_id: int, quantity: float, price: float,
                            commission: float, ts: int) -> None: ...
    def queue_external_status(self, order_id: int, status: int, ts: int) -> None: ...
    @property
    def n_queued(self) -> int: ...
    def order_fields(
        self, order_id: int
    ) -> tuple[int, int, int, float, float, float, int, bool, float]: ...
    def open_order_ids(self, asset: int = ...) -> list[int]: ...
    def set_store(self, store: BarStore, columns: Mapping[str, Any] | None = ...) -> None: ...
    def take_fills(self) -> dict[str, Any]: ...
    def fill_arrays(self, start: int = ...) -> dict[str, Any]: ...
