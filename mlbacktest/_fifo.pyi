"""Type stubs for mlbacktest._fifo (compiled)."""

from typing import Any

import numpy as np
import numpy.typing as npt

def match_fills(
    order: npt.NDArray[np.int64],
    ts: npt.NDArray[np.int64],
    asset: npt.NDArray[np.int32],
    order_id: npt.NDArray[np.int64],
    quantity: npt.NDArray[np.float64],
    price: npt.NDArray[np.float64],
    commission_per_unit: npt.NDArray[np.float64],
    slippage_per_unit: npt.NDArray[np.float64],
    n_assets: int,
    rtol: float,
) -> tuple[dict[str, Any], dict[str, Any]]: ...
