"""The recorded tables of a run: their columns and dtypes.

The bottom of the results package, next to :mod:`~mlbacktest.results.trades`:
:class:`~mlbacktest.results.BacktestResult` checks the arrays it is built from
against these schemas, and :mod:`~mlbacktest.results.io` checks the parquet
files it reads against them.
"""

from __future__ import annotations

import numpy as np

__all__ = [
    "EQUITY_DTYPES",
    "FILL_DTYPES",
    "FILL_RANGE_COLUMNS",
    "OPTIONAL_ORDER_DTYPES",
    "ORDER_DTYPES",
]

EQUITY_DTYPES: dict[str, type] = {
    "ts": np.int64,
    "cash": np.float64,
    "positions_value": np.float64,
    "equity": np.float64,
    "gross_exposure": np.float64,
    "net_exposure": np.float64,
}
"""Columns of the equity record, one row per timestamp."""

FILL_DTYPES: dict[str, type] = {
    "ts": np.int64,
    "asset": np.int32,
    "order_id": np.int64,
    "quantity": np.float64,
    "price": np.float64,
    "commission": np.float64,
    "slippage": np.float64,
}
"""Columns every fill has."""

FILL_RANGE_COLUMNS: tuple[str, ...] = ("held_high", "held_low")
"""Optional float64 columns of the fills: the range of the bars held through (MFE/MAE)."""

ORDER_DTYPES: dict[str, type] = {
    "order_id": np.int64,
    "asset": np.int32,
    "created_ts": np.int64,
    "order_type": np.int8,
    "quantity": np.float64,
    "limit_price": np.float64,
    "stop_price": np.float64,
    "status": np.int8,
    "filled_quantity": np.float64,
    "avg_fill_price": np.float64,
    "closed_ts": np.int64,
}
"""Columns every order has (besides its ``reason`` text)."""

OPTIONAL_ORDER_DTYPES: dict[str, type] = {
    "tif": np.int8,
    "origin": np.int8,
    "parent": np.int64,
    "oco_group": np.int64,
}
"""Columns of the orders the engine records, which a result built by hand may lack."""
