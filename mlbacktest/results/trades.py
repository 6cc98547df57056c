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
pro-rated by the closed share of the lot.) Slippage is attributed the same way.
Lots still open at the end are not trades; they are returned separately.

Two functions add per-trade columns: :func:`excursions` (maximum favourable
and adverse excursion, from the bar ranges recorded with the fills) and
:func:`exit_reasons` (why the trade was closed, from the exit fill's order).

Quantities are compared with a relative tolerance (:data:`QTY_RTOL`) so that
fractional sizes such as ``0.1 + 0.2`` close ``0.3`` without leaving dust lots.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
import numpy.typing as npt

from mlbacktest._fifo import match_fills
from mlbacktest._portfolio import QTY_RTOL as _LEDGER_QTY_RTOL

__all__ = [
    "EXCURSION_FIELDS",
    "EXIT_REASONS",
    "OPEN_LOT_FIELDS",
    "QTY_RTOL",
    "TRADE_FIELDS",
    "RoundTrips",
    "excursions",
    "exit_reasons",
    "fifo_round_trips",
]

QTY_RTOL: float = _LEDGER_QTY_RTOL
"""Relative tolerance under which a remaining quantity is treated as zero.

The ledger's own (:data:`mlbacktest._portfolio.QTY_RTOL`): a position the
broker counts as flat has no open lot here, and the other way round."""

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
    "slippage",
    "net_return_pct",
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
    "slippage": np.float64,
    "entry_fill": np.int64,
    "exit_fill": np.int64,
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
        - ``slippage`` (float64): pro-rated entry plus exit slippage cost. It
          is already inside ``pnl`` (fill prices are after slippage);
          ``pnl + slippage`` is the P&L at the prices before slippage.
        - ``net_return_pct`` (float64): ``net_pnl / (entry_price * quantity)``.
    open_lots : dict of str to numpy.ndarray
        Lots still open after the last fill, sorted by asset then FIFO order,
        with keys ``asset`` (int32), ``direction`` (int8), ``quantity``
        (float64, positive), ``entry_ts`` (int64), ``entry_price`` (float64)
        and ``entry_order_id`` (int64).
    fill_index : dict of str to numpy.ndarray
        Per trade, ``entry`` and ``exit`` (int64): the positions, in the
        input arrays, of the fill that opened the lot and of the fill that
        closed it.
    """

    trades: dict[str, np.ndarray]
    open_lots: dict[str, np.ndarray]
    fill_index: dict[str, np.ndarray]


def fifo_round_trips(
    ts: npt.ArrayLike,
    asset: npt.ArrayLike,
    order_id: npt.ArrayLike,
    quantity: npt.ArrayLike,
    price: npt.ArrayLike,
    commission: npt.ArrayLike,
    slippage: npt.ArrayLike | None = None,
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
    slippage : array_like of float, shape (F,), optional
        Slippage cost of each fill, in currency (>= 0); zero when omitted.

    Returns
    -------
    RoundTrips
        ``trades`` (closed round trips), ``open_lots`` (positions left
        open), both as dicts of equal-length numpy arrays, and
        ``fill_index`` (the entry and exit fill of each trade); see
        :class:`RoundTrips` for the keys and conventions.

    Raises
    ------
    ValueError
        If the inputs do not all have the same length.

    Notes
    -----
    Lots are matched first-in, first-out within each asset, independently of
    other assets. See the module docstring for the cost attribution and the
    handling of partial exits and reversals. The result is deterministic.

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
    slip_a = np.zeros(n) if slippage is None else np.asarray(slippage, dtype=np.float64)
    if any(a.shape != (n,) for a in (asset_a, oid_a, qty_a, price_a, comm_a, slip_a)):
        raise ValueError("fifo_round_trips: all fill arrays must be 1-D and of the same length")

    # Per-unit costs; the compiled loop reads scalars only.
    abs_qty = np.abs(qty_a)
    per_unit = np.zeros((2, n))
    np.divide(comm_a, abs_qty, out=per_unit[0], where=abs_qty > 0.0)
    np.divide(slip_a, abs_qty, out=per_unit[1], where=abs_qty > 0.0)
    if n and asset_a.min() < 0:
        raise ValueError("fifo_round_trips: asset ids must be >= 0")
    raw, open_lots = match_fills(
        np.argsort(ts_a, kind="stable").astype(np.int64), ts_a, asset_a, oid_a, qty_a, price_a,
        per_unit[0], per_unit[1], int(asset_a.max()) + 1 if n else 0, QTY_RTOL,
    )
    return RoundTrips(
        trades=_trade_arrays(raw),
        open_lots=open_lots,
        fill_index={"entry": raw["entry_fill"], "exit": raw["exit_fill"]},
    )


def _trade_arrays(raw: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Build the trade arrays (:data:`TRADE_FIELDS`) from the matched columns."""
    pnl = (raw["exit_price"] - raw["entry_price"]) * raw["quantity"] * raw["direction"]
    cost = raw["entry_price"] * raw["quantity"]
    net = pnl - raw["commission"]
    derived = {
        "pnl": pnl,
        "net_pnl": net,
        "return_pct": np.divide(pnl, cost, out=np.full_like(pnl, np.nan), where=cost != 0.0),
        "net_return_pct": np.divide(net, cost, out=np.full_like(net, np.nan), where=cost != 0.0),
    }
    return {k: raw[k] if k in raw else derived[k] for k in TRADE_FIELDS}


# -- excursions ------------------------------------------------------------------

EXCURSION_FIELDS: tuple[str, ...] = (
    "mfe",
    "mae",
    "mfe_pct",
    "mae_pct",
    "mfe_per_unit",
    "mae_per_unit",
)
"""Keys returned by :func:`excursions`."""


def _range_reduce(
    values: np.ndarray, lo: np.ndarray, hi: np.ndarray, op: np.ufunc
) -> np.ndarray:
    """``op.reduce(values[lo[k] : hi[k] + 1])`` for every query ``k`` (``lo <= hi``).

    A sparse table: level ``j`` holds the reduction of every window of
    ``2 ** j`` values; a query is the reduction of two (overlapping) windows
    of the largest level that fits in it. O(F log F) work, all vectorised.
    """
    out = np.empty(lo.shape, dtype=values.dtype)
    if lo.size == 0:
        return out
    level = np.frexp((hi - lo + 1).astype(np.float64))[1] - 1  # floor(log2(length))
    table = values
    for j in range(int(level.max()) + 1):
        width = 1 << j
        if j:
            half = width >> 1
            table = op(table[:-half], table[half:])
        at = np.flatnonzero(level == j)
        if at.size:
            out[at] = op(table[lo[at]], table[hi[at] - width + 1])
    return out


def excursions(
    entry_fill: npt.ArrayLike,
    exit_fill: npt.ArrayLike,
    fill_ts: npt.ArrayLike,
    fill_asset: npt.ArrayLike,
    held_high: npt.ArrayLike | None,
    held_low: npt.ArrayLike | None,
    direction: npt.ArrayLike,
    quantity: npt.ArrayLike,
    entry_price: npt.ArrayLike,
    exit_price: npt.ArrayLike,
) -> dict[str, np.ndarray]:
    """Maximum favourable and adverse excursion (MFE, MAE) of each trade.

    Parameters
    ----------
    entry_fill, exit_fill : array_like of int, shape (N,)
        Position of each trade's entry and exit fill in the fill arrays
        (:attr:`RoundTrips.fill_index`).
    fill_ts, fill_asset : array_like, shape (F,)
        Timestamp and asset id of every fill (the arrays given to
        :func:`fifo_round_trips`).
    held_high, held_low : array_like of float, shape (F,), or None
        For each fill, the highest high and lowest low of the asset's bars
        held through in full between the asset's previous fill and this one
        (NaN when there is no such bar). ``None`` when not recorded: every
        excursion is then NaN.
    direction : array_like of int, shape (N,)
        +1 long, -1 short.
    quantity, entry_price, exit_price : array_like of float, shape (N,)
        Size closed, entry (lot) price and exit fill price of each trade.

    Returns
    -------
    dict of str to numpy.ndarray of float64
        The prices a trade saw are its entry price, its exit price and the
        ``held_high`` / ``held_low`` of every fill of its asset *after* the
        entry fill up to and including the exit fill (in processing order,
        the stable sort by timestamp). With ``hi`` / ``lo`` their maximum and
        minimum:

        - ``mfe_per_unit``: ``hi - entry_price`` (long) or
          ``entry_price - lo`` (short), >= 0: the best unrealised gain per unit;
        - ``mae_per_unit``: ``lo - entry_price`` (long) or
          ``entry_price - hi`` (short), <= 0: the worst unrealised loss per unit;
        - ``mfe``, ``mae``: per unit times ``quantity`` (currency, before costs);
        - ``mfe_pct``, ``mae_pct``: per unit over ``entry_price`` (fractions;
          NaN when the entry price is 0).
    """
    entry = np.asarray(entry_fill, dtype=np.int64)
    exit_ = np.asarray(exit_fill, dtype=np.int64)
    n_trades = entry.size
    if held_high is None or held_low is None:
        return {k: np.full(n_trades, np.nan) for k in EXCURSION_FIELDS}
    ts_a = np.asarray(fill_ts, dtype=np.int64)
    high = np.asarray(held_high, dtype=np.float64)
    low = np.asarray(held_low, dtype=np.float64)
    asset_a = np.asarray(fill_asset, dtype=np.int64)
    # Fills grouped by asset, each asset's fills in processing order: a trade's
    # fills after its entry up to its exit are the contiguous range (rank[entry], rank[exit]].
    order = np.argsort(ts_a, kind="stable")
    seq = order[np.argsort(asset_a[order], kind="stable")]
    rank = np.empty(seq.size, dtype=np.int64)
    rank[seq] = np.arange(seq.size)
    lo_idx, hi_idx = rank[entry] + 1, rank[exit_]
    top = _range_reduce(np.where(np.isnan(high), -np.inf, high)[seq], lo_idx, hi_idx, np.maximum)
    bottom = _range_reduce(np.where(np.isnan(low), np.inf, low)[seq], lo_idx, hi_idx, np.minimum)

    px_in = np.asarray(entry_price, dtype=np.float64)
    px_out = np.asarray(exit_price, dtype=np.float64)
    top = np.maximum(np.maximum(top, px_in), px_out)
    bottom = np.minimum(np.minimum(bottom, px_in), px_out)
    long = np.asarray(direction) > 0
    mfe_unit = np.where(long, top - px_in, px_in - bottom)
    mae_unit = np.where(long, bottom - px_in, px_in - top)
    qty = np.asarray(quantity, dtype=np.float64)
    valid = px_in != 0.0
    return {
        "mfe": mfe_unit * qty,
        "mae": mae_unit * qty,
        "mfe_pct": np.divide(mfe_unit, px_in, out=np.full(n_trades, np.nan), where=valid),
        "mae_pct": np.divide(mae_unit, px_in, out=np.full(n_trades, np.nan), where=valid),
        "mfe_per_unit": mfe_unit,
        "mae_per_unit": mae_unit,
    }


# -- exit reasons ----------------------------------------------------------------

EXIT_REASONS: tuple[str, ...] = (
    "strategy",
    "stop_loss",
    "take_profit",
    "trailing_stop",
    "time_exit",
    "margin_call",
    "drawdown_halt",
)
"""Exit reason names, indexed by the codes of :func:`exit_reasons` (the same
names, in the same order, as the engine's order ``origin`` codes)."""

_REASON_BY_LINKED_ORDER_TYPE: np.ndarray = np.array([0, 2, 1, 1, 3, 0, 0], dtype=np.int8)
"""Exit reason of a linked strategy order, indexed by the engine's ``order_type``
code: market 0, limit 1 (take_profit), stop 2 and stop_limit 3 (stop_loss),
trailing_stop 4 (trailing_stop), market_on_open 5, market_on_close 6."""


def exit_reasons(
    exit_order_id: npt.ArrayLike,
    order_id: npt.ArrayLike,
    order_type: npt.ArrayLike,
    origin: npt.ArrayLike | None = None,
    parent: npt.ArrayLike | None = None,
    oco_group: npt.ArrayLike | None = None,
) -> np.ndarray:
    """Why each trade was closed, from the order of its exit fill.

    Parameters
    ----------
    exit_order_id : array_like of int, shape (N,)
        Order id of each trade's exit fill.
    order_id, order_type : array_like of int, shape (M,)
        Id and type code of every order.
    origin : array_like of int, shape (M,), optional
        Who placed each order (index into :data:`EXIT_REASONS`; 0 = the
        strategy). Treated as all 0 when not recorded.
    parent, oco_group : array_like of int, shape (M,), optional
        Parent order id and OCO group id of each order (negative: none).

    Returns
    -------
    numpy.ndarray of int8, shape (N,)
        Codes into :data:`EXIT_REASONS`, -1 when the exit order is not in the
        orders table:

        1. an order placed by the broker carries its ``origin``
           (``stop_loss``, ``take_profit``, ``trailing_stop``, ``time_exit``,
           ``margin_call``, ``drawdown_halt``);
        2. a strategy order *linked* to others (it has a parent, as a
           bracket's legs do, or an OCO group) is classified by its type:
           stop or stop-limit: ``stop_loss``; limit: ``take_profit``;
           trailing stop: ``trailing_stop``; market, market-on-open or
           market-on-close: ``strategy``;
        3. any other strategy order: ``strategy``.
    """
    exit_ids = np.asarray(exit_order_id, dtype=np.int64)
    ids = np.asarray(order_id, dtype=np.int64)
    out = np.full(exit_ids.size, -1, dtype=np.int8)
    if ids.size == 0 or exit_ids.size == 0:
        return out
    by_id = np.argsort(ids, kind="stable")
    pos = np.minimum(np.searchsorted(ids, exit_ids, sorter=by_id), ids.size - 1)
    row = by_id[pos]
    found = ids[row] == exit_ids
    row = row[found]
    types = np.asarray(order_type, dtype=np.int64)[row]
    reason = np.zeros(row.size, dtype=np.int8)
    linked = np.zeros(row.size, dtype=bool)
    for links in (parent, oco_group):
        if links is not None:
            linked |= np.asarray(links, dtype=np.int64)[row] >= 0
    known_type = (types >= 0) & (types < _REASON_BY_LINKED_ORDER_TYPE.size)
    use_type = linked & known_type
    reason[use_type] = _REASON_BY_LINKED_ORDER_TYPE[types[use_type]]
    if origin is not None:
        placed_by = np.asarray(origin, dtype=np.int8)[row]
        broker = placed_by > 0
        reason[broker] = placed_by[broker]
    out[found] = reason
    return out
