# cython: language_level=3
"""FIFO matching of fills into round trips, compiled.

The matching rules are those of :func:`mlbacktest.results.trades.fifo_round_trips`,
which prepares the inputs and builds the frames; this module only runs the
loop over fills. Each asset keeps its open lots as a singly linked list in
opening order (oldest first), threaded through one growable array of lots.
"""

from cpython.mem cimport PyMem_Free, PyMem_Malloc, PyMem_Realloc
from libc.math cimport fabs, fmin
from libc.stdint cimport int8_t, int32_t, int64_t

import numpy as np


cdef class _Buffers:
    """Owns the lot and match arrays of one call (freed even when an error unwinds)."""

    def __cinit__(self, Py_ssize_t n_assets, Py_ssize_t n_fills):
        cdef Py_ssize_t a
        self.lot_cap = max(n_fills, 1)
        self.match_cap = max(n_fills, 1)
        self.lots = <LotC*> PyMem_Malloc(self.lot_cap * sizeof(LotC))
        self.matches = <MatchC*> PyMem_Malloc(self.match_cap * sizeof(MatchC))
        self.head = <int64_t*> PyMem_Malloc(max(n_assets, 1) * sizeof(int64_t))
        self.tail = <int64_t*> PyMem_Malloc(max(n_assets, 1) * sizeof(int64_t))
        if self.lots == NULL or self.matches == NULL or self.head == NULL or self.tail == NULL:
            raise MemoryError()
        for a in range(n_assets):
            self.head[a] = -1
            self.tail[a] = -1
        self.n_lots = 0
        self.n_matches = 0

    def __dealloc__(self):
        PyMem_Free(self.lots)
        PyMem_Free(self.matches)
        PyMem_Free(self.head)
        PyMem_Free(self.tail)

    cdef MatchC* new_match(self) except NULL:
        cdef MatchC* grown
        if self.n_matches == self.match_cap:
            grown = <MatchC*> PyMem_Realloc(self.matches, 2 * self.match_cap * sizeof(MatchC))
            if grown == NULL:
                raise MemoryError()
            self.matches = grown
            self.match_cap *= 2
        self.n_matches += 1
        return &self.matches[self.n_matches - 1]


def match_fills(const int64_t[::1] order, const int64_t[::1] ts, const int32_t[::1] asset,
                const int64_t[::1] order_id, const double[::1] quantity,
                const double[::1] price, const double[::1] commission_per_unit,
                const double[::1] slippage_per_unit, int n_assets, double rtol):
    """Match fills, taken in ``order``, into FIFO round trips per asset.

    Parameters
    ----------
    order : ndarray of int64
        Positions of the fills in processing order (a stable sort by time).
    ts, asset, order_id, quantity, price : ndarray
        The fills (int64, int32 in ``[0, n_assets)``, int64, float64, float64).
    commission_per_unit, slippage_per_unit : ndarray of float64
        Each fill's costs divided by its absolute quantity (0 for a zero fill).
    n_assets : int
        One more than the largest asset id.
    rtol : float
        A remaining quantity at most ``rtol`` times its reference is zero.

    Returns
    -------
    matches : dict of str to ndarray
        One row per matched (lot, fill) pair, in matching order: ``asset``,
        ``direction``, ``entry_ts``, ``exit_ts``, ``quantity``,
        ``entry_price``, ``exit_price``, ``commission``, ``entry_order_id``,
        ``exit_order_id``, ``slippage``, ``entry_fill``, ``exit_fill``.
    open_lots : dict of str to ndarray
        The lots left open, by asset id then opening order: ``asset``,
        ``direction``, ``quantity`` (positive), ``entry_ts``, ``entry_price``,
        ``entry_order_id``.
    """
    cdef Py_ssize_t n = order.shape[0], k, i, j
    cdef int32_t a
    cdef double fill_qty, remaining, fill_dust, lot_size, size
    cdef int direction
    cdef LotC* lot
    cdef MatchC* row
    cdef Py_ssize_t n_fills = ts.shape[0]
    if n_assets < 0:
        raise ValueError(f"n_assets must be >= 0, got {n_assets}")
    for name, arr in (("asset", asset), ("order_id", order_id), ("quantity", quantity),
                      ("price", price), ("commission_per_unit", commission_per_unit),
                      ("slippage_per_unit", slippage_per_unit)):
        if arr.shape[0] != n_fills:
            raise ValueError(f"{name} has {arr.shape[0]} entries but ts has {n_fills}")
    if n > n_fills:
        raise ValueError(f"order has {n} entries for {n_fills} fills")
    for k in range(n):
        if not 0 <= order[k] < n_fills:
            raise IndexError(f"order[{k}] = {order[k]} is not a fill position in [0, {n_fills})")
        if not 0 <= asset[order[k]] < n_assets:
            raise ValueError(f"asset id {asset[order[k]]} outside [0, {n_assets})")
    cdef _Buffers buf = _Buffers(n_assets, n)
    for k in range(n):
        i = order[k]
        fill_qty = quantity[i]
        if fill_qty == 0.0:
            continue
        a = asset[i]
        remaining = fill_qty
        # x is dust (zero) when |x| <= rtol * |reference quantity|
        fill_dust = rtol * fabs(fill_qty)
        # Close lots of the opposite sign, oldest first.
        while buf.head[a] >= 0 and buf.lots[buf.head[a]].quantity * remaining < 0.0:
            lot = &buf.lots[buf.head[a]]
            lot_size = fabs(lot.quantity)
            size = fmin(lot_size, fabs(remaining))
            if fabs(lot_size - fabs(remaining)) <= fill_dust:
                size = lot_size  # the fill closes exactly this lot
            direction = 1 if lot.quantity > 0.0 else -1
            row = buf.new_match()
            row.asset = a
            row.direction = <int8_t> direction
            row.entry_ts = lot.entry_ts
            row.exit_ts = ts[i]
            row.quantity = size
            row.entry_price = lot.price
            row.exit_price = price[i]
            row.commission = size * (lot.commission_per_unit + commission_per_unit[i])
            row.entry_order_id = lot.order_id
            row.exit_order_id = order_id[i]
            row.slippage = size * (lot.slippage_per_unit + slippage_per_unit[i])
            row.entry_fill = lot.fill
            row.exit_fill = i
            lot.quantity -= direction * size
            remaining += direction * size
            if fabs(lot.quantity) <= rtol * lot_size:
                buf.head[a] = lot.next
                if buf.head[a] < 0:
                    buf.tail[a] = -1
            if fabs(remaining) <= fill_dust:
                remaining = 0.0
                break
        if remaining != 0.0:
            j = buf.n_lots  # at most one lot per fill: never more than n
            buf.n_lots += 1
            lot = &buf.lots[j]
            lot.entry_ts = ts[i]
            lot.order_id = order_id[i]
            lot.price = price[i]
            lot.quantity = remaining
            lot.commission_per_unit = commission_per_unit[i]
            lot.slippage_per_unit = slippage_per_unit[i]
            lot.fill = i
            lot.next = -1
            if buf.tail[a] >= 0:
                buf.lots[buf.tail[a]].next = j
            else:
                buf.head[a] = j
            buf.tail[a] = j
    return _match_arrays(buf), _open_lot_arrays(buf, n_assets)


cdef dict _match_arrays(_Buffers buf):
    cdef Py_ssize_t m = buf.n_matches, r
    out = {
        "asset": np.empty(m, dtype=np.int32),
        "direction": np.empty(m, dtype=np.int8),
        "entry_ts": np.empty(m, dtype=np.int64),
        "exit_ts": np.empty(m, dtype=np.int64),
        "quantity": np.empty(m, dtype=np.float64),
        "entry_price": np.empty(m, dtype=np.float64),
        "exit_price": np.empty(m, dtype=np.float64),
        "commission": np.empty(m, dtype=np.float64),
        "entry_order_id": np.empty(m, dtype=np.int64),
        "exit_order_id": np.empty(m, dtype=np.int64),
        "slippage": np.empty(m, dtype=np.float64),
        "entry_fill": np.empty(m, dtype=np.int64),
        "exit_fill": np.empty(m, dtype=np.int64),
    }
    cdef int32_t[::1] asset = out["asset"]
    cdef int8_t[::1] direction = out["direction"]
    cdef int64_t[::1] entry_ts = out["entry_ts"], exit_ts = out["exit_ts"]
    cdef double[::1] quantity = out["quantity"], entry_price = out["entry_price"]
    cdef double[::1] exit_price = out["exit_price"], commission = out["commission"]
    cdef int64_t[::1] entry_oid = out["entry_order_id"], exit_oid = out["exit_order_id"]
    cdef double[::1] slippage = out["slippage"]
    cdef int64_t[::1] entry_fill = out["entry_fill"], exit_fill = out["exit_fill"]
    cdef MatchC* row
    for r in range(m):
        row = &buf.matches[r]
        asset[r] = row.asset
        direction[r] = row.direction
        entry_ts[r] = row.entry_ts
        exit_ts[r] = row.exit_ts
        quantity[r] = row.quantity
        entry_price[r] = row.entry_price
        exit_price[r] = row.exit_price
        commission[r] = row.commission
        entry_oid[r] = row.entry_order_id
        exit_oid[r] = row.exit_order_id
        slippage[r] = row.slippage
        entry_fill[r] = row.entry_fill
        exit_fill[r] = row.exit_fill
    return out


cdef dict _open_lot_arrays(_Buffers buf, int n_assets):
    cdef Py_ssize_t count = 0, r = 0
    cdef int a
    cdef int64_t j
    for a in range(n_assets):
        j = buf.head[a]
        while j >= 0:
            count += 1
            j = buf.lots[j].next
    out = {
        "asset": np.empty(count, dtype=np.int32),
        "direction": np.empty(count, dtype=np.int8),
        "quantity": np.empty(count, dtype=np.float64),
        "entry_ts": np.empty(count, dtype=np.int64),
        "entry_price": np.empty(count, dtype=np.float64),
        "entry_order_id": np.empty(count, dtype=np.int64),
    }
    cdef int32_t[::1] asset = out["asset"]
    cdef int8_t[::1] direction = out["direction"]
    cdef double[::1] quantity = out["quantity"], entry_price = out["entry_price"]
    cdef int64_t[::1] entry_ts = out["entry_ts"], entry_oid = out["entry_order_id"]
    for a in range(n_assets):
        j = buf.head[a]
        while j >= 0:
            asset[r] = a
            direction[r] = 1 if buf.lots[j].quantity > 0.0 else -1
            quantity[r] = fabs(buf.lots[j].quantity)
            entry_ts[r] = buf.lots[j].entry_ts
            entry_price[r] = buf.lots[j].price
            entry_oid[r] = buf.lots[j].order_id
            r += 1
            j = buf.lots[j].next
    return out
