# cython: language_level=3
"""The order store and the matching loop of the simulated broker.

Fill rules (see docs/semantics.md):

* A market order fills at the open of the asset's next bar after the one it
  was placed on (``fill_at="next_open"``), or at the close of the bar it was
  placed on (``fill_at="close"``, look-ahead-prone).
* A buy limit fills at the open if the bar opens at or below the limit,
  otherwise at the limit if the low reaches it; sells mirror this. A limit
  fill is never worse than the limit, slippage included.
* A buy stop fills at the open if the bar opens at or above the stop (gapped
  through), otherwise at the stop if the high reaches it; sells mirror this.
  Slippage is applied to the fill price.
* Within a timestamp, orders that reduce a position are matched before those
  that open or add ("exits first"), each group in order-id order.
* A fill that would take cash below zero is rejected, with the reason kept on
  the order; so is a short when ``allow_short`` is off.
"""

from cpython.mem cimport PyMem_Free, PyMem_Malloc, PyMem_Realloc
from libc.math cimport NAN, fabs, floor, fmax, fmin, isfinite, isnan
from libc.stdint cimport int64_t

from mlbacktest._events cimport (
    ORDER_LIMIT, ORDER_MARKET, ORDER_STOP, PHASE_CLOSE, PHASE_OPEN,
    REASON_INSUFFICIENT_CASH, REASON_NONE, REASON_SHORT_NOT_ALLOWED,
    STATUS_CANCELLED, STATUS_FILLED, STATUS_OPEN, STATUS_REJECTED,
)
from mlbacktest._typedefs cimport MLB_NO_TS

import numpy as np

from mlbacktest.errors import OrderError


cdef inline price_t trigger_price(const OrderC* o, qty_t remaining, double open_,
                                  double high, double low) noexcept nogil:
    """Raw fill price of ``o`` on a bar (before slippage); NaN when it does not fill."""
    cdef double level
    if o.type == ORDER_MARKET:
        return open_
    if o.type == ORDER_LIMIT:
        level = o.limit_price
        if remaining > 0:
            if open_ <= level:
                return open_
            if low <= level:
                return level
        else:
            if open_ >= level:
                return open_
            if high >= level:
                return level
        return NAN
    if o.type == ORDER_STOP:
        level = o.stop_price
        if remaining > 0:
            if open_ >= level:
                return open_
            if high >= level:
                return level
        else:
            if open_ <= level:
                return open_
            if low <= level:
                return level
        return NAN
    return NAN


cdef class Broker(OrderBook):
    """Simulated broker for one run.

    Parameters
    ----------
    store : BarStore
        The run's bars (for names in order views).
    portfolio : Portfolio
        The account fills are booked into.
    commission_rate, commission_per_share, commission_fixed : float
        Commission per fill is ``rate * |q| * price + per_share * |q| + fixed``,
    commission_minimum, commission_maximum : float
        then clipped to ``[minimum, maximum]``.
    slippage_bps : float
        Price moved against each market and stop fill, in basis points
        (limit fills are capped at their limit).
    fractional : bool
        Whether quantities may be fractional.
    allow_short : bool
        Whether fills may open or extend a short position.
    market_at_close : bool
        Fill market orders at the close of the bar they were placed on.
    """

    def __cinit__(self, *args, **kwargs):
        self.open_ids = NULL
        self.n_open = 0
        self.open_capacity = 0
        self.fills = NULL
        self.n_fills = 0
        self.fill_capacity = 0
        self.row_of_asset = NULL

    def __init__(self, BarStore store, Portfolio portfolio, *,
                 double commission_rate=0.0, double commission_per_share=0.0,
                 double commission_fixed=0.0, double commission_minimum=0.0,
                 double commission_maximum=float("inf"), double slippage_bps=0.0,
                 bint fractional=True, bint allow_short=True, bint market_at_close=False):
        cdef idx_t i
        self.store = store
        self.portfolio = portfolio
        self.n_assets = portfolio.n_assets
        self.pending_market_array = np.zeros(self.n_assets, dtype=np.float64)
        self.pending_market = self.pending_market_array
        self.row_of_asset = <idx_t*> PyMem_Malloc(max(self.n_assets, 1) * sizeof(idx_t))
        if self.row_of_asset == NULL:
            raise MemoryError()
        for i in range(self.n_assets):
            self.row_of_asset[i] = -1
        self.commission_rate = commission_rate
        self.commission_per_share = commission_per_share
        self.commission_fixed = commission_fixed
        self.commission_minimum = commission_minimum
        self.commission_maximum = commission_maximum
        self.slippage = slippage_bps / 1e4
        self.fractional = fractional
        self.allow_short = allow_short
        self.market_at_close = market_at_close

    def __dealloc__(self):
        PyMem_Free(self.open_ids)
        PyMem_Free(self.fills)
        PyMem_Free(self.row_of_asset)

    # ------------------------------------------------------------ orders
    cdef int64_t submit(self, asset_t asset, qty_t quantity, code_t order_type,
                        price_t limit_price, price_t stop_price, ts_t ts) except -1:
        """Validate and store a new order; returns its id. Raises OrderError."""
        cdef OrderC o
        cdef int64_t oid
        cdef idx_t cap
        cdef idx_t* grown
        if not 0 <= asset < self.n_assets:
            raise OrderError(f"unknown asset id {asset}")
        if not isfinite(quantity):
            raise OrderError(f"order quantity must be a finite number, got {quantity}")
        if quantity == 0.0:
            raise OrderError("order quantity must be non-zero")
        if not self.fractional and quantity != floor(quantity):
            raise OrderError(
                f"order quantity {quantity} is fractional but the config has fractional=False")
        if order_type == ORDER_LIMIT:
            if not (isfinite(limit_price) and limit_price > 0.0):
                raise OrderError(f"limit price must be a finite number > 0, got {limit_price}")
        elif not isnan(limit_price):
            raise OrderError("only limit orders take a limit price")
        if order_type == ORDER_STOP:
            if not (isfinite(stop_price) and stop_price > 0.0):
                raise OrderError(f"stop price must be a finite number > 0, got {stop_price}")
        elif not isnan(stop_price):
            raise OrderError("only stop orders take a stop price")
        o.id = 0
        o.asset = asset
        o.type = order_type
        o.status = STATUS_OPEN
        o.reason = REASON_NONE
        o.quantity = quantity
        o.filled = 0.0
        o.limit_price = limit_price
        o.stop_price = stop_price
        o.avg_price = NAN
        o.created_ts = ts
        o.closed_ts = MLB_NO_TS
        o.reject_need = NAN
        o.reject_have = NAN
        oid = self.append(&o)
        if self.n_open == self.open_capacity:
            cap = max(64, 2 * self.open_capacity)
            grown = <idx_t*> PyMem_Realloc(self.open_ids, cap * sizeof(idx_t))
            if grown == NULL:
                raise MemoryError()
            self.open_ids = grown
            self.open_capacity = cap
        self.open_ids[self.n_open] = oid
        self.n_open += 1
        if order_type == ORDER_MARKET:
            self.pending_market[asset] += quantity
        return oid

    cdef void close_order(self, OrderC* order, code_t status, ts_t ts) noexcept nogil:
        """Take an order out of play with ``status`` at ``ts``."""
        if order.type == ORDER_MARKET:
            self.pending_market[order.asset] -= order.quantity - order.filled
        order.status = status
        order.closed_ts = ts

    cdef bint cancel(self, int64_t order_id, ts_t ts) except -1:
        """Cancel an open order; False when it was no longer open."""
        if not 0 <= order_id < self.n_orders:
            raise OrderError(f"no order with id {order_id}")
        cdef OrderC* o = &self.orders[order_id]
        if o.status != STATUS_OPEN:
            return False
        self.close_order(o, STATUS_CANCELLED, ts)
        return True

    # ------------------------------------------------------------ matching
    cdef double commission(self, qty_t quantity, price_t price) noexcept nogil:
        cdef double q = fabs(quantity)
        cdef double c = self.commission_rate * q * price + self.commission_per_share * q + self.commission_fixed
        return fmin(fmax(c, self.commission_minimum), self.commission_maximum)

    cdef int add_fill(self, const FillC* fill) except -1:
        cdef idx_t cap
        cdef FillC* grown
        if self.n_fills == self.fill_capacity:
            cap = max(256, 2 * self.fill_capacity)
            grown = <FillC*> PyMem_Realloc(self.fills, cap * sizeof(FillC))
            if grown == NULL:
                raise MemoryError()
            self.fills = grown
            self.fill_capacity = cap
        self.fills[self.n_fills] = fill[0]
        self.n_fills += 1
        return 0

    cdef int execute(self, OrderC* o, price_t raw, ts_t ts) except -1:
        """Fill the rest of ``o`` at ``raw`` (before slippage), or reject it."""
        cdef Portfolio pf = self.portfolio
        cdef qty_t q = o.quantity - o.filled
        cdef price_t price
        cdef double comm, slip_cost, need
        cdef FillC f
        if q > 0:
            price = raw * (1.0 + self.slippage)
            if o.type == ORDER_LIMIT:
                price = fmin(price, o.limit_price)
        else:
            price = raw * (1.0 - self.slippage)
            if o.type == ORDER_LIMIT:
                price = fmax(price, o.limit_price)
        comm = self.commission(q, price)
        if not self.allow_short and pf.position[o.asset] + q < 0.0:
            o.reason = REASON_SHORT_NOT_ALLOWED
            self.close_order(o, STATUS_REJECTED, ts)
            return 0
        need = q * price + comm
        if pf.cash - need < 0.0:
            o.reason = REASON_INSUFFICIENT_CASH
            o.reject_need = need
            o.reject_have = pf.cash
            self.close_order(o, STATUS_REJECTED, ts)
            return 0
        slip_cost = fabs(q) * fabs(price - raw)
        pf.apply_fill(o.asset, q, price, comm, slip_cost)
        f.ts = ts
        f.asset = o.asset
        f.order_id = o.id
        f.quantity = q
        f.price = price
        f.commission = comm
        f.slippage = slip_cost
        self.add_fill(&f)
        o.avg_price = price
        self.close_order(o, STATUS_FILLED, ts)
        o.filled = o.quantity
        return 0

    cdef idx_t match(self, BarStore store, const idx_t* starts, const idx_t* stops,
                     int n_ranges, ts_t ts, int phase) except -1:
        """Match open orders against the bars of rows ``starts[r]:stops[r]``.

        ``phase`` is PHASE_OPEN at the start of a timestamp (market orders in
        next-open mode, every limit and stop) or PHASE_CLOSE after the
        strategy ran (market orders in close mode). Returns the number of
        fills added.
        """
        cdef idx_t n_before = self.n_fills
        cdef idx_t r, i, k, kept, row
        cdef int exits_pass
        cdef OrderC* o
        cdef qty_t remaining, pos
        cdef bint want_market
        cdef price_t raw
        cdef const asset_t[::1] asset = store.asset
        cdef double[::1] position = self.portfolio.position
        if self.n_open == 0:
            return 0
        want_market = (phase == PHASE_CLOSE) == self.market_at_close
        for r in range(n_ranges):
            for i in range(starts[r], stops[r]):
                self.row_of_asset[asset[i]] = i
        # Exits first: the first pass fills orders that reduce a position, the
        # second every order still open (an exit that did not trigger in the
        # first pass cannot trigger in the second: the bar is the same).
        for exits_pass in range(1, -1, -1):
            for k in range(self.n_open):
                o = &self.orders[self.open_ids[k]]
                if o.status != STATUS_OPEN:
                    continue
                if phase == PHASE_CLOSE and o.type != ORDER_MARKET:
                    continue
                if o.type == ORDER_MARKET and not want_market:
                    continue
                row = self.row_of_asset[o.asset]
                if row < 0:
                    continue
                remaining = o.quantity - o.filled
                if exits_pass:
                    # First pass: only orders that reduce the current position.
                    pos = position[o.asset]
                    if pos == 0.0 or ((pos > 0.0) == (remaining > 0.0)):
                        continue
                if phase == PHASE_CLOSE:
                    raw = store.close[row]
                else:
                    raw = trigger_price(o, remaining, store.open[row], store.high[row], store.low[row])
                if isnan(raw):
                    continue
                self.execute(o, raw, ts)
        kept = 0
        for k in range(self.n_open):
            if self.orders[self.open_ids[k]].status == STATUS_OPEN:
                self.open_ids[kept] = self.open_ids[k]
                kept += 1
        self.n_open = kept
        for r in range(n_ranges):
            for i in range(starts[r], stops[r]):
                self.row_of_asset[asset[i]] = -1
        return self.n_fills - n_before

    # ------------------------------------------------------------ Python side
    def open_order_ids(self, int asset=-1):
        """Ids of open orders, for one asset or (``asset=-1``) all."""
        cdef idx_t k
        cdef OrderC* o
        out = []
        for k in range(self.n_open):
            o = &self.orders[self.open_ids[k]]
            if o.status == STATUS_OPEN and (asset < 0 or o.asset == asset):
                out.append(o.id)
        return out

    def fill_arrays(self, idx_t start=0):
        """Copy fills ``start:`` into numpy arrays."""
        cdef idx_t i, n = max(self.n_fills - start, 0)
        out = {
            "ts": np.empty(n, dtype=np.int64),
            "asset": np.empty(n, dtype=np.int32),
            "order_id": np.empty(n, dtype=np.int64),
            "quantity": np.empty(n, dtype=np.float64),
            "price": np.empty(n, dtype=np.float64),
            "commission": np.empty(n, dtype=np.float64),
            "slippage": np.empty(n, dtype=np.float64),
        }
        cdef ts_t[::1] ts = out["ts"]
        cdef asset_t[::1] asset = out["asset"]
        cdef int64_t[::1] oid = out["order_id"]
        cdef double[::1] qty = out["quantity"]
        cdef double[::1] price = out["price"]
        cdef double[::1] comm = out["commission"]
        cdef double[::1] slip = out["slippage"]
        cdef FillC* f
        for i in range(n):
            f = &self.fills[start + i]
            ts[i] = f.ts
            asset[i] = f.asset
            oid[i] = f.order_id
            qty[i] = f.quantity
            price[i] = f.price
            comm[i] = f.commission
            slip[i] = f.slippage
        return out
