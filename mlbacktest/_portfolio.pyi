"""Type stubs for mlbacktest._portfolio (compiled)."""

from typing import Any

import numpy as np
import numpy.typing as npt

QTY_RTOL: float
MAX_POSITION: float

def round_whole(quantity: float) -> float: ...
def round_whole_array(quantities: npt.ArrayLike) -> npt.NDArray[np.float64]: ...

class Portfolio:
    cash: float
    initial_cash: float
    n_assets: int
    position_array: npt.NDArray[np.float64]
    avg_cost_array: npt.NDArray[np.float64]
    realized_array: npt.NDArray[np.float64]
    last_price_array: npt.NDArray[np.float64]
    total_commission: float
    total_slippage: float
    net_value: float
    gross_value: float
    version: int
    n_records: int
    def __init__(self, n_assets: int, initial_cash: float, n_steps_hint: int = ...) -> None: ...
    def equity(self) -> float: ...
    def exposures_now(self) -> tuple[float, float]: ...
    def recompute_exposures(self) -> None: ...
    def book(self, asset: int, quantity: float, price: float, commission: float = ...) -> None: ...
    def unrealized_pnl(self, asset: int) -> float: ...
    def take_records(self) -> dict[str, Any]: ...
    def record_arrays(self) -> dict[str, Any]: ...
