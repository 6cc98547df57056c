from typing import Any

import numpy as np
import numpy.typing as npt

from mlbacktest._engine import Engine
from mlbacktest._events import BarStore, OrderEvent
from mlbacktest._guard import Guarded

class StrategyCore(Guarded):
    def _core_bind(self, engine: Engine, fractional: bool) -> None: ...
    def _core_set_store(self, store: BarStore) -> None: ...
    def get_position(self, asset: str | int) -> float: ...
    def get_last_price(self, asset: str | int) -> float: ...
    def get_unrealized_pnl(self, asset: str | int | None = None) -> float: ...
    def history(self, asset: str | int, field: str, n: int) -> npt.NDArray[np.float64]: ...
    def _history_window(self, aid: int, field: str, n: int) -> npt.NDArray[np.float64]: ...
    def history_panel(
        self, field: str, n: int, assets: Any = None
    ) -> npt.NDArray[np.float64]: ...
    def _price_for_sizing(self, aid: int) -> float: ...
    def _equity_for_weights(self) -> float: ...
    def _round(self, quantity: float) -> float: ...
    def _to_target(self, aid: int, target: float, tolerance: Any) -> OrderEvent | None: ...
    def buy(
        self,
        asset: str | int,
        quantity: float,
        limit_price: float | None = None,
        stop_price: float | None = None,
        *,
        trail_amount: float | None = None,
        trail_percent: float | None = None,
        order_type: str | None = None,
        time_in_force: str = "gtc",
        expire_at: Any = None,
        parent: OrderEvent | int | None = None,
    ) -> OrderEvent: ...
    def sell(
        self,
        asset: str | int,
        quantity: float,
        limit_price: float | None = None,
        stop_price: float | None = None,
        *,
        trail_amount: float | None = None,
        trail_percent: float | None = None,
        order_type: str | None = None,
        time_in_force: str = "gtc",
        expire_at: Any = None,
        parent: OrderEvent | int | None = None,
    ) -> OrderEvent: ...
    def order_target_quantity(
        self, asset: str | int, target: float, *, tolerance: float = 0.0
    ) -> OrderEvent | None: ...
    def order_target_value(
        self, asset: str | int, value: float, *, tolerance: float = 0.0
    ) -> OrderEvent | None: ...
    def order_target_percent(
        self, asset: str | int, percent: float, *, tolerance: float = 0.0
    ) -> OrderEvent | None: ...
    def close_position(self, asset: str | int) -> OrderEvent | None: ...
