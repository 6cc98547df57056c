# cython: language_level=3
"""Compiled indicator kernels: per-asset state machines over a store's rows."""

from libc.stdint cimport int32_t, int64_t

# ---------------------------------------------------------------- window modes
cdef enum WindowMode:
    WIN_SUM = 0                 # sum of the window
    WIN_MEAN = 1                # arithmetic mean of the window (SMA)
    WIN_STD = 2                 # standard deviation of the window, divided by (window - ddof)
    WIN_MAX = 3                 # highest value of the window
    WIN_MIN = 4                 # lowest value of the window
    WIN_ZSCORE = 5              # (newest - mean) / std of the window (NaN when std is 0)
    WIN_ROC = 6                 # (newest - oldest) / oldest, over window = period + 1 values
    WIN_MOMENTUM = 7            # newest - oldest, over window = period + 1 values

# ---------------------------------------------------------------- element-wise operators
cdef enum BinOp:
    OP_ADD = 0                  # a + b
    OP_SUB = 1                  # a - b
    OP_MUL = 2                  # a * b
    OP_DIV = 3                  # a / b (IEEE: x / 0 is +-inf, 0 / 0 is NaN)
    OP_LT = 4                   # 1.0 if a < b else 0.0 (NaN if either is NaN)
    OP_LE = 5                   # 1.0 if a <= b else 0.0 (NaN if either is NaN)
    OP_GT = 6                   # 1.0 if a > b else 0.0 (NaN if either is NaN)
    OP_GE = 7                   # 1.0 if a >= b else 0.0 (NaN if either is NaN)
    OP_EQ = 8                   # 1.0 if a == b else 0.0 (NaN if either is NaN)
    OP_NE = 9                   # 1.0 if a != b else 0.0 (NaN if either is NaN)

# ---------------------------------------------------------------- per-asset state layouts
# Every kernel keeps one row of float64 state per asset (state[asset, :]); the
# values below are column indices into that row. Counts are stored as doubles
# (exact up to 2**53).
cdef enum WindowState:
    WS_COUNT = 0                # consecutive valid values seen since the last NaN, capped at window
    WS_POS = 1                  # ring slot the next value is written to
    WS_SUM = 2                  # sum/mean: running sum of the window's finite values (Neumaier)
    WS_COMP = 3                 # sum/mean: its running compensation (the sum is SUM + COMP)
    WS_NONFINITE = 4            # sum/mean: number of +-inf values in the window
    WS_RING = 5                 # first of `window` ring slots (the last `window` values)

cdef enum EmaState:
    ES_COUNT = 0                # consecutive valid values seen since the last NaN, capped at window
    ES_SEED = 1                 # sum of the first `window` values (the seed is their mean)
    ES_VALUE = 2                # the current average once seeded

cdef enum RsiState:
    RS_HAS_PREV = 0             # 1.0 once a valid previous value is known
    RS_PREV = 1                 # the previous value
    RS_COUNT = 2                # changes seen since the last NaN, capped at window
    RS_UP = 3                   # seed sum, then Wilder average, of the up moves
    RS_DOWN = 4                 # seed sum, then Wilder average, of the down moves

cdef enum AtrState:
    AS_HAS_PREV = 0             # 1.0 once a valid previous close is known
    AS_PREV_CLOSE = 1           # the previous close
    AS_COUNT = 2                # true ranges seen since the last NaN, capped at window
    AS_VALUE = 3                # seed sum, then Wilder average, of the true range

cdef enum CrossState:
    CS_HAS_PREV = 0             # 1.0 once a valid previous bar is known
    CS_NZD = 1                  # the last non-zero a - b (backtrader's NonZeroDifference)

# ---------------------------------------------------------------- rows
cdef class Rows:
    """The rows a computation visits, in time order within each asset."""
    cdef const int32_t[::1] asset       # asset id of every row of the store
    cdef const int64_t[::1] order       # rows to visit in per-asset time order (empty: as stored)
    cdef readonly Py_ssize_t n          # rows of the store (length of every column)
    cdef readonly Py_ssize_t start      # first row to visit (rows before it are carried)
    cdef readonly Py_ssize_t n_assets   # rows of per-asset state (every asset id is below it)
    cdef readonly bint in_row_order     # visit start .. n - 1 as stored (already in time order)

# ---------------------------------------------------------------- kernels
cdef int check_io(Rows rows, Py_ssize_t n_in, Py_ssize_t n_out, Py_ssize_t state_rows,
                  Py_ssize_t state_width, Py_ssize_t need, str what) except -1
cdef const int64_t* order_of(Rows rows) noexcept
cdef double window_value(const double* ring, int window, int pos, int mode, double ddof,
                         double newest) noexcept nogil
cdef void neumaier_add(double* st, double v) noexcept nogil
cdef void running_sum(const int64_t* order, const int32_t* aid, Py_ssize_t start,
                      Py_ssize_t m, const double* x, double* st0, Py_ssize_t width,
                      double* out, bint mean, int window) noexcept nogil
cdef void resum(double* st, int window, int count, int pos) noexcept nogil
cdef double apply_op(int op, double u, double v) noexcept nogil
