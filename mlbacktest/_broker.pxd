# cython: language_level=3
"""The order store and the matching loop of the simulated broker."""

from libc.stdint cimport int64_t

from mlbacktest._events cimport BarStore, FillC, OrderBook, OrderC
from mlbacktest._portfolio cimport Portfolio
from mlbacktest._typedefs cimport asset_t, code_t, idx_t, price_t, qty_t, ts_t

cdef class Broker(OrderBook):
    """Keeps open orders, matches them against bars and books the fills."""
    cdef Portfolio portfolio             # the account fills are booked into
    cdef idx_t* open_ids                 # ids of orders that may still be open, in id order (owned)
    cdef idx_t n_open                    # entries in open_ids
    cdef idx_t open_capacity             # allocated entries of open_ids
    cdef FillC* fills                    # every fill of the run (owned, realloc'd)
    cdef readonly idx_t n_fills          # fills stored
    cdef idx_t fill_capacity             # allocated fills
    cdef readonly object pending_market_array  # numpy float64 (n_assets,): unfilled qty of open market orders
    cdef double[::1] pending_market      # memoryview of pending_market_array
    cdef idx_t* row_of_asset             # scratch: row of each asset's bar at the current ts, -1 if none
    cdef int n_assets                    # number of assets
    # Commission = clip(rate * |q| * price + per_share * |q| + fixed, minimum, maximum).
    cdef readonly double commission_rate       # fraction of traded value
    cdef readonly double commission_per_share  # currency per unit traded
    cdef readonly double commission_fixed      # currency per fill
    cdef readonly double commission_minimum    # floor per fill
    cdef readonly double commission_maximum    # cap per fill (inf for none)
    cdef readonly double slippage              # fraction of price moved against the order (bps / 1e4)
    cdef readonly bint fractional              # fractional quantities allowed
    cdef readonly bint allow_short             # fills may open or extend a short
    cdef readonly bint market_at_close         # market orders fill at the close of the decision bar

    cdef int64_t submit(self, asset_t asset, qty_t quantity, code_t order_type,
                        price_t limit_price, price_t stop_price, ts_t ts) except -1
    cdef bint cancel(self, int64_t order_id, ts_t ts) except -1
    cdef idx_t match(self, BarStore store, const idx_t* starts, const idx_t* stops,
                     int n_ranges, ts_t ts, int phase) except -1
    cdef double commission(self, qty_t quantity, price_t price) noexcept nogil
    cdef int execute(self, OrderC* order, price_t raw_price, ts_t ts) except -1
    cdef int add_fill(self, const FillC* fill) except -1
    cdef void close_order(self, OrderC* order, code_t status, ts_t ts) noexcept nogil
