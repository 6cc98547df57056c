"""Type stubs for mlbacktest._costs (compiled)."""

import datetime
from collections.abc import Iterable, Mapping
from typing import Any, Literal

import numpy as np
import numpy.typing as npt

__all__ = [
    "ColumnSource",
    "CommissionModel",
    "PercentageCommission",
    "PerShareCommission",
    "FixedCommission",
    "TieredCommission",
    "SlippageModel",
    "FixedBpsSlippage",
    "HalfSpreadSlippage",
    "LinearImpact",
    "SquareRootImpact",
    "AlmgrenChrissImpact",
    "COMMISSION_MODELS",
    "SLIPPAGE_MODELS",
]

COMMISSION_MODELS: dict[str, type[CommissionModel]]
SLIPPAGE_MODELS: dict[str, type[SlippageModel]]

class ColumnSource:
    names: tuple[str, ...]
    index: dict[str, int]
    n_rows: int
    n_columns: int
    def __init__(
        self, columns: Mapping[str, npt.ArrayLike] | None = ..., n_rows: int | None = ...
    ) -> None: ...
    def rebind(self, columns: Mapping[str, npt.ArrayLike]) -> None: ...
    def column_id(self, name: str) -> int: ...
    def value(self, name: str | int, row: int) -> float: ...
    def array(self, name: str) -> npt.NDArray[np.float64]: ...
    def __contains__(self, name: object, /) -> bool: ...
    def __len__(self) -> int: ...

class CommissionModel:
    rate: float
    per_share: float
    fixed: float
    minimum: float
    maximum: float
    max_fraction: float
    def __init__(
        self,
        rate: float = ...,
        per_share: float = ...,
        fixed: float = ...,
        minimum: float = ...,
        maximum: float = ...,
        max_fraction: float = ...,
    ) -> None: ...
    def compute(self, asset: int, quantity: float, price: float, ts: int) -> float: ...
    def record_fill(self, asset: int, quantity: float, price: float, ts: int) -> None: ...
    def reset(self, n_assets: int) -> None: ...
    def to_config(self) -> dict[str, Any]: ...
    def __eq__(self, other: object, /) -> bool: ...
    def __hash__(self) -> int: ...

class PercentageCommission(CommissionModel):
    def __init__(self, rate: float, minimum: float = ..., maximum: float = ...) -> None: ...

class PerShareCommission(CommissionModel):
    def __init__(
        self,
        per_share: float,
        minimum: float = ...,
        maximum: float = ...,
        max_fraction: float = ...,
    ) -> None: ...

class FixedCommission(CommissionModel):
    def __init__(self, amount: float) -> None: ...
    @property
    def amount(self) -> float: ...

class TieredCommission(CommissionModel):
    tiers: tuple[tuple[float, float], ...]
    charge: str
    volume: str
    def __init__(
        self,
        tiers: Iterable[tuple[float, float] | list[float]],
        charge: Literal["per_share", "rate"] = ...,
        volume: Literal["shares", "value"] = ...,
        fixed: float = ...,
        minimum: float = ...,
        maximum: float = ...,
        max_fraction: float = ...,
    ) -> None: ...
    def month_volume(self, ts: int) -> float: ...

class SlippageModel:
    bps: float
    columns: ColumnSource | None
    def __init__(self, bps: float = ...) -> None: ...
    def fill_price(
        self,
        asset: int,
        quantity: float,
        raw_price: float,
        bar_volume: float,
        ts: int,
        row: int = ...,
    ) -> float: ...
    def record_fill(
        self,
        asset: int,
        quantity: float,
        price: float,
        bar_volume: float,
        ts: int,
        row: int = ...,
    ) -> None: ...
    def reset(self, n_assets: int, columns: ColumnSource | None = ...) -> None: ...
    def to_config(self) -> dict[str, Any]: ...
    def __eq__(self, other: object, /) -> bool: ...
    def __hash__(self) -> int: ...

class FixedBpsSlippage(SlippageModel):
    def __init__(self, bps: float) -> None: ...

class FixedAmountSlippage(SlippageModel):
    amount: float
    def __init__(self, amount: float, bps: float = ...) -> None: ...

class HalfSpreadSlippage(SlippageModel):
    bid: str
    ask: str
    fallback_bps: float
    def __init__(
        self, bid: str = ..., ask: str = ..., fallback_bps: float = ..., bps: float = ...
    ) -> None: ...

class LinearImpact(SlippageModel):
    k: float
    def __init__(self, k: float, bps: float = ...) -> None: ...

class SquareRootImpact(SlippageModel):
    k: float
    sigma: float
    sigma_column: str | None
    def __init__(
        self, k: float, sigma: float = ..., sigma_column: str | None = ..., bps: float = ...
    ) -> None: ...

class AlmgrenChrissImpact(SlippageModel):
    eta: float
    beta: float
    gamma: float
    half_life: float | None
    def __init__(
        self,
        eta: float,
        gamma: float,
        beta: float = ...,
        half_life: float | datetime.timedelta | np.timedelta64 | None = ...,
        bps: float = ...,
    ) -> None: ...
    def offset(self, asset: int, ts: int | None = ...) -> float: ...

def _month_index(ts: int) -> int: ...
def _apply_commission(
    model: CommissionModel, asset: int, quantity: float, price: float, ts: int
) -> float: ...
def _apply_slippage(
    model: SlippageModel,
    asset: int,
    quantity: float,
    raw_price: float,
    bar_volume: float,
    ts: int,
    row: int = ...,
) -> float: ...
def _record_fill(
    model: CommissionModel | SlippageModel,
    asset: int,
    quantity: float,
    price: float,
    bar_volume: float,
    ts: int,
    row: int = ...,
) -> None: ...
def _reset(
    model: CommissionModel | SlippageModel, n_assets: int, columns: ColumnSource | None = ...
) -> None: ...
