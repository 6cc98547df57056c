"""Round trips: FIFO matching of fills into closed trades and open lots.

A *lot* is the part of a fill that opened or added to a position. A fill
against the current position closes lots first-in, first-out; every
(lot, closing fill) pair that is matched becomes one *trade* (round trip):

- a partial exit is its own trade, for the quantity it closed;
- a fill that closes several lots gives one trade per lot;
- a fill that reverses the position (long 10, sell 15) closes the whole
  position (one trade per lot) and opens a new lot with the remainder
  (5 short), carrying its share of the fill's commission.

Commissions are attributed per unit: a trade that closes ``q`` units carries
``q / |entry fill quantity|`` of the entry fill's commission plus
``q / |exit fill quantity|`` of the exit fill's commission. (For a lot opened by
part of a reversing fill this equals the lot's share of that fill's commission,
pro-rated by the closed share of the lot.) Lots still open at the end are not
trades; they are returned separately.

Quantities are compared with a relative tolerance (:data:`QTY_RTOL`) so that
fractional sizes such as ``0.1 + 0.2`` close ``0.3`` without leaving dust lots.
"""

from __future__ import annotations

from collections import deque
from typing import Any, NamedTuple

import numpy as np
import numpy.typing as npt

__all__ = ["OPEN_LOT_FIELDS", "QTY_RTOL", "TRADE_FIELDS", "RoundTrips", "fifo_round_trips"]

QTY_RTOL: float = 1e-9
"""Relative tolerance under which a remaining quantity is treated as zero."""

TRADE_FIELDS: tuple[str, ...] = (
    "asset",
    "direction",
    "entry_ts",
    "exit_ts",
    "quantity",
    "entry_price",
    "exit_price",
    "pnl",
    "commission",
    "net_pnl",
    "return_pct",
    "entry_order_id",
    "exit_order_id",
)
"""Keys of :attr:`RoundTrips.trades`, in presentation order."""

_MATCH_DTYPES: dict[str, type] = {
    "asset": np.int32,
    "direction": np.int8,
    "entry_ts": np.int64,
    "exit_ts": np.int64,
    "quantity": np.float64,
    "entry_price": np.float64,
    "exit_price": np.float64,
    "commission": np.float64,
    "entry_order_id": np.int64,
    "exit_order_id": np.int64,
}
"""Columns recorded per matched (lot, fill) pair, in row order, and their dtypes."""

_OPEN_LOT_DTYPES: dict[str, type] = {
    "asset": np.int32,
    "direction": np.int8,
    "quantity": np.float64,
    "entry_ts": np.int64,
    "entry_price": np.float64,
    "entry_order_id": np.int64,
}

OPEN_LOT_FIELDS: tuple[str, ...] = tuple(_OPEN_LOT_DTYPES)
"""Keys of :attr:`RoundTrips.open_lots`, in presentation order."""


class RoundTrips(NamedTuple):
    """Output of :func:`fifo_round_trips`.

    Attributes
    ----------
    trades : dict of str to numpy.ndarray
        One entry per closed round trip, in the order they were closed
        (fill order, then FIFO lot order), with keys

        - ``asset`` (int32): asset id.
        - ``direction`` (int8): +1 long, -1 short.
        - ``entry_ts``, ``exit_ts`` (int64): timestamps of the opening lot and
          of the closing fill.
        - ``quantity`` (float64): positive size closed.
        - ``entry_price``, ``exit_price`` (float64): lot price and closing fill price.
        - ``pnl`` (float64): gross P&L, ``(exit_price - entry_price) * quantity * direction``.
        - ``commission`` (float64): pro-rated entry plus exit commission.
        - ``net_pnl`` (float64): ``pnl - commission``.
        - ``return_pct`` (float64): gross return of the trade as a *fraction*,
          ``pnl / (entry_price * quantity)`` (0.05 means 5 %); NaN when the
          entry price is 0.
        - ``entry_order_id``, ``exit_order_id`` (int64).
    open_lots : dict of str to numpy.ndarray
        Lots still open after the last fill, sorted by asset then FIFO order,
        with keys ``asset`` (int32), ``direction`` (int8), ``quantity``
        (float64, positive), ``entry_ts`` (int64), ``entry_price`` (float64)
        and ``entry_order_id`` (int64).
    """

    trades: dict[str, np.ndarray]
    open_lots: dict[str, np.ndarray]


class _Lot:
    """An open lot: what is left of one opening fill (or of its remainder)."""

    __slots__ = ("entry_ts", "order_id", "price", "quantity", "commission_per_unit")

    def __init__(
        self,
        entry_ts: int,
        order_id: int,
        price: float,
        quantity: float,
        commission_per_unit: float,
    ) -> None:
        self.entry_ts = entry_ts
        self.order_id = order_id
        self.price = price
        self.quantity = quantity  # signed remaining quantity: + long, - short
        self.commission_per_unit = commission_per_unit


def _is_dust(remaining: float, reference: float) -> bool:
    """Return True when ``remaining`` is zero up to :data:`QTY_RTOL` of ``reference``."""
    return abs(remaining) <= QTY_RTOL * abs(reference)


def fifo_round_trips(
    ts: npt.ArrayLike,
    asset: npt.ArrayLike,
    order_id: npt.ArrayLike,
    quantity: npt.ArrayLike,
    price: npt.ArrayLike,
    commission: npt.ArrayLike,
) -> RoundTrips:
    """Match fills into FIFO round trips per asset.

    Parameters
    ----------
    ts : array_like of int64, shape (F,)
        Fill timestamps (ns). Fills are processed in a stable sort by ``ts``,
        so fills sharing a timestamp keep their recorded order.
    asset : array_like of int, shape (F,)
        Asset id of each fill.
    order_id : array_like of int, shape (F,)
        Order id of each fill.
    quantity : array_like of float, shape (F,)
        Signed fill quantity: positive buys, negative sells. Zero-quantity
        fills are ignored.
    price : array_like of float, shape (F,)
        Fill price (after slippage).
    commission : array_like of float, shape (F,)
        Commission paid on each fill, in currency (>= 0).

    Returns
    -------
    RoundTrips
        ``trades`` (closed round trips) and ``open_lots`` (positions left
        open), both as dicts of equal-length numpy arrays; see
        :class:`RoundTrips` for the keys and conventions.

    Raises
    ------
    ValueError
        If the inputs do not all have the same length.

    Notes
    -----
    Lots are matched first-in, first-out within each asset, independently of
    other assets. See the module docstring for the commission attribution and
    the handling of partial exits and reversals. The result is deterministic.

    Examples
    --------
    >>> rt = fifo_round_trips([1, 2], [0, 0], [7, 8], [10.0, -10.0], [100.0, 110.0], [1.0, 1.0])
    >>> rt.trades["pnl"], rt.trades["net_pnl"]
    (array([100.]), array([98.]))
    """
    ts_a = np.asarray(ts, dtype=np.int64)
    asset_a = np.asarray(asset, dtype=np.int32)
    oid_a = np.asarray(order_id, dtype=np.int64)
    qty_a = np.asarray(quantity, dtype=np.float64)
    price_a = np.asarray(price, dtype=np.float64)
    comm_a = np.asarray(commission, dtype=np.float64)
    n = ts_a.shape[0]
    if any(a.shape != (n,) for a in (asset_a, oid_a, qty_a, price_a, comm_a)):
        raise ValueError("fifo_round_trips: all fill arrays must be 1-D and of the same length")

    books: dict[int, deque[_Lot]] = {}
    rows: list[
        tuple[Any, ...]
    ] = []  # one tuple per matched (lot, fill) pair, keys of _MATCH_DTYPES

    for i in np.argsort(ts_a, kind="stable").tolist():
        fill_qty = float(qty_a[i])
        if fill_qty == 0.0:
            continue
        a = int(asset_a[i])
        fill_price = float(price_a[i])
        fill_ts = int(ts_a[i])
        fill_oid = int(oid_a[i])
        comm_per_unit = float(comm_a[i]) / abs(fill_qty)
        book = books.setdefault(a, deque())
        remaining = fill_qty
        # Close lots of the opposite sign, oldest first.
        while book and book[0].quantity * remaining < 0.0:
            lot = book[0]
            lot_size = abs(lot.quantity)
            size = min(lot_size, abs(remaining))
            if _is_dust(lot_size - abs(remaining), fill_qty):
                size = lot_size  # the fill closes exactly this lot
            direction = 1 if lot.quantity > 0.0 else -1
            rows.append(
                (
                    a,
                    direction,
                    lot.entry_ts,
                    fill_ts,
                    size,
                    lot.price,
                    fill_price,
                    size * (lot.commission_per_unit + comm_per_unit),
                    lot.order_id,
                    fill_oid,
                )
            )
            lot.quantity -= direction * size
            remaining += direction * size
            if _is_dust(lot.quantity, lot_size):
                book.popleft()
            if _is_dust(remaining, fill_qty):
                remaining = 0.0
                break
        if remaining != 0.0:
            book.append(_Lot(fill_ts, fill_oid, fill_price, remaining, comm_per_unit))

    return RoundTrips(trades=_trade_arrays(rows), open_lots=_open_lot_arrays(books))


def _columns(rows: list[tuple[Any, ...]], dtypes: dict[str, type]) -> dict[str, np.ndarray]:
    """Transpose ``rows`` (tuples in ``dtypes`` key order) into typed column arrays."""
    columns = list(zip(*rows, strict=True)) if rows else [()] * len(dtypes)
    return {
        name: np.asarray(col, dtype=dtypes[name]) for name, col in zip(dtypes, columns, strict=True)
    }


def _trade_arrays(rows: list[tuple[Any, ...]]) -> dict[str, np.ndarray]:
    """Build the trade arrays (:data:`TRADE_FIELDS`) from the matched rows."""
    raw = _columns(rows, _MATCH_DTYPES)
    pnl = (raw["exit_price"] - raw["entry_price"]) * raw["quantity"] * raw["direction"]
    cost = raw["entry_price"] * raw["quantity"]
    derived = {
        "pnl": pnl,
        "net_pnl": pnl - raw["commission"],
        "return_pct": np.divide(pnl, cost, out=np.full_like(pnl, np.nan), where=cost != 0.0),
    }
    return {k: raw[k] if k in raw else derived[k] for k in TRADE_FIELDS}


def _open_lot_arrays(books: dict[int, deque[_Lot]]) -> dict[str, np.ndarray]:
    """Flatten the remaining lots (:data:`OPEN_LOT_FIELDS`), by asset id then FIFO order."""
    rows = [
        (
            a,
            1 if lot.quantity > 0.0 else -1,
            abs(lot.quantity),
            lot.entry_ts,
            lot.price,
            lot.order_id,
        )
        for a in sorted(books)
        for lot in books[a]
    ]
    return _columns(rows, _OPEN_LOT_DTYPES)
