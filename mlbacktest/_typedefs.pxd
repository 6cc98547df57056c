# cython: language_level=3
"""Scalar types shared by every compiled module of mlbacktest."""

from libc.stdint cimport int8_t, int32_t, int64_t

ctypedef int64_t ts_t        # a timestamp: nanoseconds since the Unix epoch
ctypedef double price_t      # a price in the account currency
ctypedef double qty_t        # a signed quantity: > 0 long/buy, < 0 short/sell
ctypedef int32_t asset_t     # an asset id: index into the run's asset names
ctypedef Py_ssize_t idx_t    # an index into an array (rows, orders, fills)
ctypedef int8_t code_t       # a small enum code stored in a struct

# Marks "no timestamp" (an order that is still open has no close time).
cdef extern from *:
    """
    #define MLB_NO_TS ((int64_t)INT64_MIN)
    """
    const ts_t MLB_NO_TS
