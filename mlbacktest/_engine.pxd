# cython: language_level=3
"""The run loop: clock -> broker -> portfolio -> strategy hooks."""

from mlbacktest._broker cimport Broker
from mlbacktest._clock cimport Clock
from mlbacktest._events cimport BarStore, OrderC
from mlbacktest._portfolio cimport Portfolio
from libc.stdint cimport int64_t

from mlbacktest._typedefs cimport idx_t, ts_t

cdef class Engine:
    """Drives one run; the strategy's helpers call back into it."""
    cdef readonly BarStore store         # the run's bars
    cdef readonly Clock clock            # orders bar streams and timers
    cdef readonly Broker broker          # orders, matching, fills
    cdef readonly Portfolio portfolio    # cash, positions, equity record
    cdef object strategy                 # the user's Strategy instance
    cdef object hook_market_data         # bound on_market_data, or None when not overridden
    cdef object hook_slice               # bound on_slice, or None when not overridden
    cdef object hook_fill                # bound on_fill, or None when not overridden
    cdef object hook_order               # bound on_order, or None when not overridden
    cdef object hook_signal              # bound on_signal, or None when not overridden
    cdef int n_bar_streams               # clock streams 0 .. n_bar_streams-1 are bars; the rest signal sources
    cdef list sources                    # SignalSource of each signal stream, in stream order
    cdef list source_assets              # int32 asset ids of each source's rows
    cdef readonly ts_t latency_ns        # delay before an order reaches the broker, ns
    cdef readonly int latency_bars       # bars of the asset an order waits before it reaches the broker
    cdef readonly ts_t trade_from        # orders placed before this timestamp are rejected at once (MLB_NO_TS: no warm-up)
    cdef object context                  # a ContextFrame, or None
    cdef object ctx_ts                   # numpy int64: context visibility times, ascending
    cdef const ts_t[::1] ctx_times       # memoryview of ctx_ts
    cdef object ctx_best                 # numpy int64: row shown once ctx_ts[:m + 1] are visible
    cdef const int64_t[::1] ctx_rows     # memoryview of ctx_best
    cdef idx_t ctx_cursor                # entries of ctx_ts visible so far, minus one (-1: none)
    cdef idx_t ctx_row                   # context row currently shown (-1: none)
    cdef dict ctx_base                   # values of row ctx_row; copied per timestamp
    cdef list timers                     # timer id -> callback
    cdef readonly ts_t current_ts        # timestamp being processed (MLB_NO_TS before the first)
    cdef readonly ts_t first_ts          # first timestamp of the run (MLB_NO_TS if no events)
    cdef readonly bint started           # the first timestamp has begun
    cdef readonly bint finished          # the last timestamp is done
    cdef idx_t* starts                   # scratch: first row of each stream's bars at current_ts
    cdef idx_t* stops                    # scratch: one past the last row of each
    cdef int n_ranges                    # entries used in starts/stops at current_ts
    cdef object loader                   # callable giving the next chunk (store, streams, columns), or None when not streaming
    cdef readonly object calendar        # numpy int64: every distinct bar timestamp of the run, ascending
    cdef readonly int history_limit      # most bars history() may ask for (0: no limit)
    cdef object progress                 # callable(n_timestamps_done_since_last_call), or None
    cdef idx_t progress_every            # timestamps between two progress calls
    cdef idx_t progress_count            # timestamps done since the last progress call
    cdef readonly object last_row_array  # numpy int64 (n_assets,): each asset's latest row of `store` at or before current_ts (-1: none yet)
    cdef int64_t[::1] last_row           # memoryview of last_row_array, set in step() as bars are marked

    cdef int check_streams(self, BarStore store) except -1
    cdef int rebuild_last_row(self) except -1
    cdef object submit_c(self, int asset, double quantity, int order_type, double limit_price,
                         double stop_price, double trail_amount, double trail_percent, int tif,
                         object expire_ts, long long parent)
    cdef int step(self, ts_t ts) except -1
    cdef int load_next(self) except -1
    cdef object context_at(self, ts_t ts)
    cdef int deliver_fills(self, idx_t first_fill) except -1
    cdef int run_timers(self, ts_t ts, list due) except -1
    cdef int close_phase(self, ts_t ts) except -1
    cdef int deliver_orders(self) except -1
    cdef int deliver_signals(self, ts_t ts, list ranges) except -1
    cdef int64_t place(self, OrderC* o, double reference_price) except -1
    cdef bint refused(self, int64_t order_id)
    cdef int fill_template(self, OrderC* o, int asset, double quantity, int order_type,
                           double limit_price, double stop_price, double trail_amount,
                           double trail_percent, int tif, ts_t ts) except -1
