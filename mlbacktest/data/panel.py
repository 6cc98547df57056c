"""The validated, columnar form of a bar feed that the compiled core consumes."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["BarPanel", "PRICE_FIELDS", "BAR_FIELDS"]

#: Price columns every bar must have; all must be finite and > 0.
PRICE_FIELDS = ("open", "high", "low", "close")
#: Every numeric column of a bar, in storage order.
BAR_FIELDS = ("open", "high", "low", "close", "volume")


@dataclass(frozen=True, eq=False)
class BarPanel:
    """Validated bars of many assets, sorted by (timestamp, asset id).

    Produced by a feed after validation; every array is C-contiguous and
    read-only, so the compiled core can take ``const`` memoryviews of it and
    a strategy can never write into the data.

    Attributes
    ----------
    ts : ndarray of int64, shape (n,)
        Bar timestamps, nanoseconds since the Unix epoch (UTC when ``tz`` is
        set, wall-clock when naive). Non-decreasing.
    asset : ndarray of int32, shape (n,)
        Asset id of each row: an index into ``asset_names``. Strictly
        increasing within one timestamp (so no duplicate (ts, asset)).
    open, high, low, close, volume : ndarray of float64, shape (n,)
        Bar fields; prices finite and > 0, ``low <= open, close <= high``,
        volume finite and >= 0.
    signals : ndarray of float64, shape (n, k)
        One column per entry of ``signal_names``. NaN means "no value"
        (a null in the input).
    signal_names : tuple of str
        Names of the signal columns, in column order.
    asset_names : tuple of str
        Asset names; the id of an asset is its index here. Sorted.
    tz : str or None
        Time zone of the input timestamps (``None`` for naive timestamps).
    source_row : ndarray of int64, shape (n,)
        Row number of each bar in the input as given (before sorting), used
        to point error messages at the user's data.
    """

    ts: np.ndarray
    asset: np.ndarray
    open: np.ndarray
    high: np.ndarray
    low: np.ndarray
    close: np.ndarray
    volume: np.ndarray
    signals: np.ndarray
    signal_names: tuple[str, ...]
    asset_names: tuple[str, ...]
    tz: str | None
    source_row: np.ndarray

    def __len__(self) -> int:
        return int(self.ts.shape[0])

    @property
    def n_assets(self) -> int:
        """Number of distinct assets."""
        return len(self.asset_names)

    @property
    def nbytes(self) -> int:
        """Bytes held by the bar columns (timestamps, ids, fields and signals)."""
        return int(
            self.ts.nbytes
            + self.asset.nbytes
            + sum(getattr(self, f).nbytes for f in BAR_FIELDS)
            + self.signals.nbytes
        )
