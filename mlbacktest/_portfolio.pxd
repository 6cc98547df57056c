# cython: language_level=3
"""Cash, positions and the per-timestamp equity record of one account."""

from libc.math cimport fabs, fmax, round, trunc
from libc.stdint cimport int64_t

from mlbacktest._typedefs cimport asset_t, idx_t, price_t, qty_t, ts_t

# The one quantity tolerance of the run (docs/semantics.md, "Flat positions and
# whole units"): a residue at most MLB_QTY_RTOL times the quantities it came
# from is zero, and a size within MLB_QTY_RTOL (relative) of a whole number is
# that whole number.
cdef extern from *:
    """
    #define MLB_QTY_RTOL 1e-9
    """
    const double MLB_QTY_RTOL

# The largest position (in units, either side) a fill may leave (docs/semantics.md,
# "Every fill keeps the ledger finite"): at any price the data layer accepts
# (|price| <= 1e15) its value stays within 1e295, so marks, the account's sums
# over any number of assets and cash stay finite whatever the prices do later.
cdef extern from *:
    """
    #define MLB_MAX_POSITION 1e280
    """
    const double MLB_MAX_POSITION


cdef inline bint is_flat(double residue, double scale) noexcept nogil:
    """Whether ``residue`` is zero at the scale of the quantities ``scale`` it came from."""
    return fabs(residue) <= MLB_QTY_RTOL * fabs(scale)


cdef inline double whole_units(double q) noexcept nogil:
    """``q`` in whole units toward zero, except that float residue never loses a unit.

    A size within MLB_QTY_RTOL (relative, at least of 1 unit) of a whole number
    is that number (48.99999999999999 is 49); any other size is truncated.
    """
    cdef double r = round(q)
    if fabs(q - r) <= MLB_QTY_RTOL * fmax(fabs(q), 1.0):
        return r
    return trunc(q)

cdef class Portfolio:
    """One cash account shared by every asset, with netted positions."""
    cdef readonly double cash                # cash balance
    cdef readonly double initial_cash        # cash at the start of the run
    cdef readonly int n_assets               # number of assets (length of the arrays below)
    cdef readonly object position_array      # numpy float64 (n_assets,): signed positions
    cdef readonly object avg_cost_array      # numpy float64 (n_assets,): average entry price (0 when flat)
    cdef readonly object realized_array      # numpy float64 (n_assets,): realized P&L before costs
    cdef readonly object last_price_array    # numpy float64 (n_assets,): last close seen (NaN before the first bar)
    cdef double[::1] position                # memoryview of position_array
    cdef double[::1] avg_cost                # memoryview of avg_cost_array
    cdef double[::1] realized                # memoryview of realized_array
    cdef double[::1] last_price              # memoryview of last_price_array
    cdef double[::1] held_high               # per asset: highest high of bars held in full since its last fill (-inf: none)
    cdef double[::1] held_low                # per asset: lowest low of those bars (+inf: none)
    cdef ts_t[::1] last_fill_ts              # per asset: timestamp of its last fill (MLB_NO_TS: none)
    cdef readonly double total_commission    # commission paid so far
    cdef readonly double total_slippage      # slippage cost paid so far
    # Running totals of the positions at their last prices: set by a full
    # recomputation (sync_exposures) and moved by each fill (apply_fill).
    cdef readonly double net_value           # sum of position x last price
    cdef readonly double gross_value         # sum of |position x last price|
    # The equity record: one row per timestamp with bars (owned, realloc'd).
    cdef ts_t* rec_ts                        # timestamp of each row
    cdef double* rec_cash                    # cash after the timestamp
    cdef double* rec_value                   # sum of position x last close
    cdef double* rec_gross                   # sum of |position x last close|
    cdef readonly idx_t n_records            # rows recorded (since the last take_records)
    cdef idx_t rec_capacity                  # rows allocated
    cdef readonly int64_t version            # bumped by every change of cash, a position or a last price

    cdef void apply_fill(self, asset_t asset, qty_t quantity, price_t price,
                         double commission, double slippage) noexcept nogil
    cdef void mark(self, const asset_t[::1] asset, const double[::1] high,
                   const double[::1] low, const double[::1] close,
                   idx_t start, idx_t stop, ts_t ts, int64_t* last_row) noexcept nogil
    cdef void close_segment(self, asset_t asset, ts_t ts, double* high, double* low) noexcept nogil
    cdef void exposures(self, double* value, double* gross) noexcept nogil
    cdef void sync_exposures(self) noexcept nogil
    cdef int record(self, ts_t ts) except -1
    cdef int reserve(self, idx_t n) except -1
