"""Type stubs for mlbacktest._engine (compiled)."""

from collections.abc import Callable
from typing import Any

import numpy as np
import numpy.typing as npt

from mlbacktest._broker import Broker
from mlbacktest._clock import Clock
from mlbacktest._events import BarStore, OrderEvent
from mlbacktest._portfolio import Portfolio

BAR_PRIORITY: int
TIMER_PRIORITY: int
ORDER_ARRIVAL_PRIORITY: int

class Engine:
    store: BarStore
    clock: Clock
    broker: Broker
    portfolio: Portfolio
    current_ts: int
    first_ts: int
    started: bool
    finished: bool
    latency_ns: int
    latency_bars: int
    trade_from: int
    calendar: npt.NDArray[np.int64]
    history_limit: int
    last_row_array: npt.NDArray[np.int64]
    def __init__(
        self,
        store: BarStore,
        clock: Clock,
        broker: Broker,
        portfolio: Portfolio,
        strategy: Any,
        hooks: dict[str, Any],
        context: Any = ...,
        latency_ns: int = ...,
        latency_bars: int = ...,
        sources: Any = ...,
        n_bar_streams: int = ...,
        *,
        loader: Callable[[], tuple[BarStore, list[tuple[Any, Any]], Any] | None] | None = ...,
        calendar: npt.ArrayLike | None = ...,
        history_limit: int = ...,
        progress: Callable[[int], Any] | None = ...,
        progress_every: int = ...,
        trade_from: int | None = ...,
    ) -> None: ...
    def run(self) -> None: ...
    def flush_order_events(self) -> None: ...
    def submit(
        self,
        asset: int,
        quantity: float,
        order_type: int = ...,
        limit_price: float = ...,
        stop_price: float = ...,
        trail_amount: float = ...,
        trail_percent: float = ...,
        tif: int = ...,
        expire_ts: int | None = ...,
        parent: int = ...,
    ) -> OrderEvent: ...
    def submit_bracket(
        self,
        asset: int,
        quantity: float,
        entry_limit: float,
        stop_loss: float,
        take_profit: float,
        trail_amount: float,
        trail_percent: float,
        tif: int,
    ) -> tuple[int, int, int]: ...
    def replace(
        self,
        order_id: int,
        quantity: float = ...,
        limit_price: float = ...,
        stop_price: float = ...,
    ) -> OrderEvent: ...
    def link_oco(self, order_ids: Any) -> int: ...
    def submit_many(
        self, asset_ids: npt.ArrayLike, quantities: npt.ArrayLike
    ) -> npt.NDArray[np.int64]: ...
    def cancel(self, order_id: int) -> bool: ...
    def schedule(self, ts: int, callback: Callable[[dict[str, Any]], None]) -> int: ...

def annotate(exc: BaseException, hook: str, timestamp: Any, asset: str | None) -> None: ...
