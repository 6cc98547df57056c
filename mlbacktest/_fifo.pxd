# cython: language_level=3
"""FIFO matching of fills into round trips, compiled."""

from libc.stdint cimport int8_t, int32_t, int64_t

ctypedef struct LotC:
    int64_t entry_ts            # timestamp of the opening fill
    int64_t order_id            # order of the opening fill
    double price                # opening fill price
    double quantity             # signed remaining quantity: + long, - short
    double commission_per_unit  # opening fill's commission per unit
    double slippage_per_unit    # opening fill's slippage cost per unit
    int64_t fill                # position of the opening fill in the input arrays
    int64_t next                # next (younger) open lot of the same asset, -1: none

ctypedef struct MatchC:
    int32_t asset               # asset id
    int8_t direction            # +1: the lot was long, -1: short
    int64_t entry_ts            # the lot's opening timestamp
    int64_t exit_ts             # the closing fill's timestamp
    double quantity             # positive size closed
    double entry_price          # the lot's price
    double exit_price           # the closing fill's price
    double commission           # pro-rated entry plus exit commission
    int64_t entry_order_id      # order that opened the lot
    int64_t exit_order_id       # order of the closing fill
    double slippage             # pro-rated entry plus exit slippage cost
    int64_t entry_fill          # position of the opening fill
    int64_t exit_fill           # position of the closing fill


cdef class _Buffers:
    """Owns the lot and match arrays of one call (freed even when an error unwinds)."""
    cdef LotC* lots                      # every lot opened, in opening order (owned)
    cdef MatchC* matches                 # matched (lot, fill) pairs, in matching order (owned, realloc'd)
    cdef int64_t* head                   # per asset: its oldest open lot, -1: none (owned)
    cdef int64_t* tail                   # per asset: its youngest open lot, -1: none (owned)
    cdef Py_ssize_t n_lots               # lots used
    cdef Py_ssize_t lot_cap              # lots allocated (one per fill at most)
    cdef Py_ssize_t n_matches            # matches used
    cdef Py_ssize_t match_cap            # matches allocated

    cdef MatchC* new_match(self) except NULL
