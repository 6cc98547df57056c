"""Type stubs for mlbacktest.indicators._kernels (compiled)."""

import numpy as np
import numpy.typing as npt

WINDOW_MODES: dict[str, int]
BINARY_OPS: dict[str, int]

def run_window(
    x: npt.NDArray[np.float64],
    seg_asset: npt.NDArray[np.int32],
    seg_start: npt.NDArray[np.int64],
    state: npt.NDArray[np.float64],
    out: npt.NDArray[np.float64],
    mode: int,
    window: int,
    ddof: float,
) -> None: ...
def run_ema(
    x: npt.NDArray[np.float64],
    seg_asset: npt.NDArray[np.int32],
    seg_start: npt.NDArray[np.int64],
    state: npt.NDArray[np.float64],
    out: npt.NDArray[np.float64],
    window: int,
    alpha: float,
) -> None: ...
def run_rsi(
    x: npt.NDArray[np.float64],
    seg_asset: npt.NDArray[np.int32],
    seg_start: npt.NDArray[np.int64],
    state: npt.NDArray[np.float64],
    out: npt.NDArray[np.float64],
    window: int,
) -> None: ...
def run_atr(
    high: npt.NDArray[np.float64],
    low: npt.NDArray[np.float64],
    close: npt.NDArray[np.float64],
    seg_asset: npt.NDArray[np.int32],
    seg_start: npt.NDArray[np.int64],
    state: npt.NDArray[np.float64],
    out: npt.NDArray[np.float64],
    window: int,
) -> None: ...
def run_cross(
    x: npt.NDArray[np.float64],
    y: npt.NDArray[np.float64],
    seg_asset: npt.NDArray[np.int32],
    seg_start: npt.NDArray[np.int64],
    state: npt.NDArray[np.float64],
    out: npt.NDArray[np.float64],
) -> None: ...
def run_binop(
    x: npt.NDArray[np.float64],
    y: npt.NDArray[np.float64],
    out: npt.NDArray[np.float64],
    op: int,
) -> None: ...
