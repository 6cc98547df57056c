# cython: language_level=3
"""The compiled base of Strategy: the per-bar accessors and the market-order helpers."""

from libc.stdint cimport int32_t, int64_t

from mlbacktest._engine cimport Engine
from mlbacktest._events cimport BarStore
from mlbacktest._guard cimport Guarded
from mlbacktest._portfolio cimport Portfolio
from mlbacktest._typedefs cimport ts_t


cdef class StrategyCore(Guarded):
    """What Strategy reads from the running engine, held as C references."""
    cdef Engine core                     # the engine running this strategy; None before _core_bind
    cdef Portfolio pf                    # the run's portfolio
    cdef BarStore bars                   # the store bars are read from (streamed: the chunk)
    cdef dict asset_ids                  # asset name -> asset id
    cdef Py_ssize_t n_assets_c           # number of assets of the run
    cdef bint fractional_c               # fractional quantities allowed (else whole units)
    cdef Py_ssize_t hist_limit           # most bars history() may ask for (0: no limit)
    cdef double[::1] pos                 # portfolio positions, by asset id
    cdef double[::1] last_px             # last close of each asset (NaN before its first bar)
    cdef double[::1] avg_cost            # average entry price of each asset (0 when flat)
    cdef double[::1] pending             # unfilled quantity of working market orders, by asset id
    cdef int64_t eq_version              # pf.version at which eq_value was computed (-1: never)
    cdef double eq_value                 # equity (cash + positions at last prices) at eq_version
    # history(): per-asset, time-ordered copies of columns (built on first use, reset with `bars`)
    cdef bint hist_ready                 # hist_order, hist_pos and hist_offsets describe `bars`
    cdef object hist_order               # numpy int64 (n_rows,): rows sorted by (asset, ts), stable
    cdef const int64_t[::1] hist_pos     # row -> its position in hist_order
    cdef const int64_t[::1] hist_offsets  # asset -> its first position in hist_order (n_assets + 1)
    cdef dict hist_cols                  # field name -> float64 column in hist_order (read-only)
    # history_panel(): the store's rows in timestamp order (a _TimeIndex), read from C
    cdef bint tix_ready                  # the tix_* views below describe `bars`
    cdef const int64_t[::1] tix_times    # distinct bar timestamps of `bars`, ascending
    cdef const int64_t[::1] tix_starts   # first time-ordered row of each timestamp (n_times + 1)
    cdef const int64_t[::1] tix_slot     # time-ordered row -> index into tix_times
    cdef const int32_t[::1] tix_asset    # time-ordered row -> asset id
    cdef dict tix_cols                   # field name -> float64 column in timestamp order
    cdef Py_ssize_t tix_k1               # cursor: timestamps of tix_times at or before tix_now
    cdef ts_t tix_now                    # the time the cursor was last moved to (MLB_NO_TS: never)
    cdef const int64_t[::1] hist_slot    # position in hist_order -> index of its time in tix_times

    cdef int require(self) except -1
    cdef Py_ssize_t aid_of(self, object asset) except -1
    cdef int ensure_hist(self) except -1
    cdef int ensure_tix(self) except -1
    cdef object panel_ids(self, object assets)
    cdef object tix_column(self, str field)
    cdef object hist_column(self, str field)
    cdef object window(self, Py_ssize_t aid, object col, Py_ssize_t n)
    cdef double sizing_price(self, Py_ssize_t aid) except? -1.0
    cdef double weights_equity(self) except? -1.0
    cdef double round_q(self, double quantity) noexcept nogil
    cdef object to_target(self, Py_ssize_t aid, double target, object tolerance)
    cdef object side_order(self, double sign, str side, object asset, object quantity,
                           object limit_price, object stop_price, object trail_amount,
                           object trail_percent, object order_type, object time_in_force,
                           object expire_at, object parent)
