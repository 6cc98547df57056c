# cython: language_level=3
"""The order store and the matching loop of the simulated broker."""

from libc.stdint cimport int8_t, int32_t, int64_t

from mlbacktest._costs cimport ColumnSource, CommissionModel, SlippageModel
from mlbacktest._events cimport BarStore, FillC, OrderBook, OrderC, OrderLogC
from mlbacktest._portfolio cimport Portfolio
from mlbacktest._typedefs cimport asset_t, code_t, idx_t, price_t, qty_t, ts_t

cdef enum IntrabarPath:
    PATH_OHLC = 0               # open -> high -> low -> close
    PATH_OLHC = 1               # open -> low -> high -> close
    PATH_ADAPTIVE = 2           # open -> the extreme nearer the open -> the other -> close

cdef class Broker(OrderBook):
    """Keeps working orders, matches them against bars and books the fills."""
    cdef Portfolio portfolio             # the account fills are booked into
    cdef idx_t* open_ids                 # ids of orders that may still be working, in id order (owned)
    cdef idx_t n_open                    # entries in open_ids
    cdef idx_t open_capacity             # allocated entries of open_ids
    cdef idx_t* cand                     # scratch: open_ids entries that trigger on the current bars
    cdef int8_t* cand_time               # scratch: path point (0 open .. 3 close) where each candidate triggers
    cdef double* cand_price              # scratch: raw trigger price of each candidate
    cdef idx_t* activated                # scratch: ids of OTO children activated during this match
    cdef idx_t n_activated               # entries in activated
    cdef idx_t scratch_capacity          # allocated entries of cand/cand_time/cand_price/activated
    cdef FillC* fills                    # every fill of the run (owned, realloc'd)
    cdef readonly idx_t n_fills          # fills stored
    cdef idx_t fill_capacity             # allocated fills
    cdef OrderLogC* log                  # status changes not yet handed to on_order (owned)
    cdef readonly idx_t n_log            # entries in log
    cdef idx_t log_capacity              # allocated log entries
    cdef readonly bint log_enabled       # record status changes (the strategy has on_order)
    cdef readonly object pending_market_array  # numpy float64 (n_assets,): unfilled qty of working market orders
    cdef double[::1] pending_market      # memoryview of pending_market_array
    cdef idx_t* row_of_asset             # scratch: row of each asset's bar at the current ts, -1 if none
    cdef double* volume_left             # scratch: volume each asset may still trade on the current bar
    cdef ts_t* stopped_ts                # per asset: timestamp of its last stop-out (same-bar re-entry rule)
    cdef int n_assets                    # number of assets
    cdef int64_t next_oco_group          # id for the next OCO group
    cdef readonly CommissionModel commission_model  # commission of each fill
    cdef readonly SlippageModel slippage_model      # fill price from the raw price
    cdef readonly bint fractional              # fractional quantities allowed
    cdef readonly bint allow_short             # fills may open or extend a short
    cdef readonly bint market_at_close         # market orders fill at the close of the decision bar
    cdef readonly int intrabar_path            # an IntrabarPath
    cdef readonly double volume_cap            # max fraction of a bar's volume one asset may trade (inf: none)
    cdef readonly bint reentry_same_bar        # entries may fill on the bar of a stop-out of the same asset

    cdef int64_t submit_order(self, OrderC* order, price_t reference_price) except -1
    cdef int validate(self, OrderC* order, price_t reference_price) except -1
    cdef bint cancel(self, int64_t order_id, ts_t ts, code_t reason) except -1
    cdef int end_order(self, OrderC* order, code_t status, code_t reason, ts_t ts) except -1
    cdef int activate(self, OrderC* order, ts_t ts) except -1
    cdef int log_status(self, const OrderC* order, ts_t ts) except -1
    cdef idx_t match(self, BarStore store, const idx_t* starts, const idx_t* stops,
                     int n_ranges, ts_t ts, int phase) except -1
    cdef int run_candidates(self, BarStore store, idx_t n_cand, ts_t ts) except -1
    cdef int execute(self, OrderC* order, BarStore store, idx_t row, price_t raw_price,
                     int point, ts_t ts) except -1
    cdef int after_fill(self, OrderC* order, qty_t quantity, price_t raw_price, int point,
                        ts_t ts) except -1
    cdef int add_fill(self, const FillC* fill) except -1
    cdef int reserve_scratch(self, idx_t n) except -1
