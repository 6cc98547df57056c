"""Type stubs for mlbacktest.indicators._kernels (compiled)."""

import numpy as np
import numpy.typing as npt

WINDOW_MODES: dict[str, int]
WINDOW_STATE: int
BINARY_OPS: dict[str, int]

class Rows:
    @property
    def n(self) -> int: ...
    @property
    def start(self) -> int: ...
    @property
    def n_assets(self) -> int: ...
    @property
    def in_row_order(self) -> bool: ...
    @property
    def visit_order(self) -> npt.NDArray[np.int64]: ...
    def __init__(
        self,
        ts: npt.NDArray[np.int64],
        asset: npt.NDArray[np.int32],
        start: int,
        n_assets: int,
    ) -> None: ...

def run_window(
    rows: Rows,
    x: npt.NDArray[np.float64],
    state: npt.NDArray[np.float64],
    out: npt.NDArray[np.float64],
    mode: int,
    window: int,
    ddof: float,
) -> None: ...
def run_ema(
    rows: Rows,
    x: npt.NDArray[np.float64],
    state: npt.NDArray[np.float64],
    out: npt.NDArray[np.float64],
    window: int,
    alpha: float,
) -> None: ...
def run_rsi(
    rows: Rows,
    x: npt.NDArray[np.float64],
    state: npt.NDArray[np.float64],
    out: npt.NDArray[np.float64],
    window: int,
) -> None: ...
def run_atr(
    rows: Rows,
    high: npt.NDArray[np.float64],
    low: npt.NDArray[np.float64],
    close: npt.NDArray[np.float64],
    state: npt.NDArray[np.float64],
    out: npt.NDArray[np.float64],
    window: int,
) -> None: ...
def run_cross(
    rows: Rows,
    x: npt.NDArray[np.float64],
    y: npt.NDArray[np.float64],
    state: npt.NDArray[np.float64],
    out: npt.NDArray[np.float64],
) -> None: ...
def run_binop(
    x: npt.NDArray[np.float64],
    y: npt.NDArray[np.float64],
    out: npt.NDArray[np.float64],
    op: int,
    start: int = ...,
) -> None: ...
