# cython: language_level=3
"""Compiled indicator kernels.

Each kernel runs one indicator as a per-asset state machine over the rows of
a bar store, visited in the order a :class:`Rows` gives: the store's own row
order when every asset's rows are already in time order there (one feed, or
timestamps non-decreasing), otherwise one stable time ordering of the rows,
computed once per store and shared by every kernel. The state of asset
``a`` is ``state[a, :]`` (see the layouts in ``_kernels.pxd``); a kernel
reads it at each of the asset's rows and writes it back, so a streamed run
carries it from one window to the next and computes the same values, bit
for bit, whatever the chunking. The value written at a row depends only on
the state and on that row: causal by construction. Inputs and outputs are
whole columns aligned with the store's rows, so there is nothing to gather
or scatter.

NaN rule: a NaN input (any input, for the kernels with several) writes NaN
and resets the asset's state, so the warm-up starts again at the next row.
"""

cimport cython
from libc.math cimport NAN, fabs, sqrt
from libc.stdint cimport INT64_MIN, int32_t, int64_t

import numpy as np


cdef inline bint _isnan(double x) noexcept nogil:
    return x != x


cdef inline bint _finite(double x) noexcept nogil:
    return x - x == 0.0


cdef class Rows:
    """The rows of a store a computation visits, in time order within each asset.

    Parameters
    ----------
    ts : ndarray of int64, shape (n,)
        Timestamps of the store's rows.
    asset : ndarray of int32, shape (n,)
        Asset id of each row.
    start : int
        First row to visit (rows before it, carried from a previous window of
        a streamed run, already have their values).
    n_assets : int
        Rows of per-asset state the kernels hold (asset ids must be below it).

    Raises
    ------
    ValueError
        When the columns differ in length, ``start`` is outside them, or an
        asset id is outside ``0 .. n_assets - 1`` (naming the row).
    """

    def __init__(self, ts, asset, Py_ssize_t start, Py_ssize_t n_assets):
        cdef const int64_t[::1] t = np.ascontiguousarray(ts, dtype=np.int64)
        self.asset = np.ascontiguousarray(asset, dtype=np.int32)
        cdef Py_ssize_t n = self.asset.shape[0], i
        cdef int32_t a
        cdef bint ordered = True
        if t.shape[0] != n:
            raise ValueError(f"ts has {t.shape[0]} rows but asset has {n}")
        if not 0 <= start <= n:
            raise ValueError(f"start row {start} is outside the {n} rows")
        if n_assets < 0:
            raise ValueError(f"n_assets must be >= 0, got {n_assets}")
        last_arr = np.full(max(n_assets, 1), INT64_MIN, dtype=np.int64)
        cdef int64_t[::1] last = last_arr
        for i in range(start, n):
            a = self.asset[i]
            if a < 0 or a >= n_assets:
                raise ValueError(f"row {i} has asset {a}, outside the {n_assets} state rows")
            if t[i] < last[a]:
                ordered = False
            last[a] = t[i]
        self.n = n
        self.start = start
        self.n_assets = n_assets
        self.in_row_order = ordered
        if ordered:
            self.order = np.empty(0, dtype=np.int64)
        else:  # one stable sort by time: each asset's rows in time order, ties in row order
            self.order = np.argsort(t[start:], kind="stable").astype(np.int64) + start

    @property
    def visit_order(self):
        """The rows visited, in visiting order (a new int64 array)."""
        if self.in_row_order:
            return np.arange(self.start, self.n, dtype=np.int64)
        return np.asarray(self.order).copy()


cdef int check_io(Rows rows, Py_ssize_t n_in, Py_ssize_t n_out, Py_ssize_t state_rows,
                  Py_ssize_t state_width, Py_ssize_t need, str what) except -1:
    """Refuse columns or state that do not fit the rows."""
    if n_in != rows.n:
        raise ValueError(f"{what}: an input has {n_in} rows but the store has {rows.n}")
    if n_out != rows.n:
        raise ValueError(f"{what}: out has {n_out} rows but the store has {rows.n}")
    if state_rows < rows.n_assets:
        raise ValueError(f"{what}: state has {state_rows} rows for {rows.n_assets} assets")
    if state_width < need:
        raise ValueError(f"{what} needs a state row of {need} values, got {state_width}")
    return 0


cdef const int64_t* order_of(Rows rows) noexcept:
    """The explicit visiting order, or NULL to visit ``rows.start .. rows.n - 1``."""
    if rows.in_row_order or rows.order.shape[0] == 0:
        return NULL
    return &rows.order[0]


cdef double window_value(const double* ring, int window, int pos, int mode, double ddof,
                         double newest) noexcept nogil:
    """The value of a full window; ``ring[pos]`` is its oldest value, ``newest`` its newest.

    The ring is read oldest first, as two contiguous runs (``pos..window-1``
    then ``0..pos-1``), so sums are taken in time order.
    """
    cdef int j
    cdef double v, s = 0.0, mean, ss = 0.0, lo, hi, oldest
    if mode == WIN_ROC or mode == WIN_MOMENTUM:
        oldest = ring[pos]
        if mode == WIN_MOMENTUM:
            return newest - oldest
        return (newest - oldest) / oldest
    lo = ring[pos]
    hi = lo
    if mode == WIN_MAX:
        for j in range(window):
            if ring[j] > hi:
                hi = ring[j]
        return hi
    if mode == WIN_MIN:
        for j in range(window):
            if ring[j] < lo:
                lo = ring[j]
        return lo
    for j in range(pos, window):
        s += ring[j]
    for j in range(pos):
        s += ring[j]
    if mode == WIN_SUM:
        return s
    mean = s / window
    if mode == WIN_MEAN:
        return mean
    for j in range(window):  # a constant window: std exactly 0 (no rounding residue)
        if ring[j] != lo:
            break
    else:
        return 0.0 if mode == WIN_STD else NAN
    for j in range(pos, window):
        v = ring[j] - mean
        ss += v * v
    for j in range(pos):
        v = ring[j] - mean
        ss += v * v
    v = sqrt(ss / (window - ddof))
    if mode == WIN_STD:
        return v
    return (newest - mean) / v


cdef void neumaier_add(double* st, double v) noexcept nogil:
    """Add ``v`` to the compensated sum ``st[WS_SUM] + st[WS_COMP]`` (Neumaier)."""
    cdef double s = st[<Py_ssize_t>WS_SUM]
    cdef double t = s + v
    if fabs(s) >= fabs(v):
        st[<Py_ssize_t>WS_COMP] += (s - t) + v
    else:
        st[<Py_ssize_t>WS_COMP] += (v - t) + s
    st[<Py_ssize_t>WS_SUM] = t


cdef void resum(double* st, int window, int count, int pos) noexcept nogil:
    """Recompute the running sum of the finite values in the ring, oldest first."""
    cdef double* ring = st + <Py_ssize_t>WS_RING
    cdef int j, first = pos if count == window else 0
    st[<Py_ssize_t>WS_SUM] = 0.0
    st[<Py_ssize_t>WS_COMP] = 0.0
    for j in range(count):
        if _finite(ring[(first + j) % window]):
            neumaier_add(st, ring[(first + j) % window])


@cython.boundscheck(False)
@cython.wraparound(False)
cdef void running_sum(const int64_t* order, const int32_t* aid, Py_ssize_t start,
                      Py_ssize_t m, const double* x, double* st0, Py_ssize_t width,
                      double* out, bint mean, int window) noexcept nogil:
    """Sum (or mean) of the last ``window`` values from a compensated running sum.

    The running sum holds the window's finite values: a value is added when
    it enters and its negation added when it leaves (Neumaier's compensated
    addition), so the float operations are fixed by the data and the state.
    While a +-inf is in the window the value is the plain sum of the ring
    (inf or NaN, as a sum of it would be); a sum that overflows is taken
    again from the ring (its value is the plain sum, +-inf, while it overflows).
    """
    cdef Py_ssize_t k, i
    cdef int count, pos
    cdef double v, old, s, c, t, bad, total
    cdef double* st
    cdef double* ring
    for k in range(m):
        i = start + k if order == NULL else order[k]
        st = st0 + aid[i] * width
        ring = st + <Py_ssize_t>WS_RING
        v = x[i]
        if _isnan(v):
            st[<Py_ssize_t>WS_COUNT] = 0.0
            st[<Py_ssize_t>WS_POS] = 0.0
            st[<Py_ssize_t>WS_SUM] = 0.0
            st[<Py_ssize_t>WS_COMP] = 0.0
            st[<Py_ssize_t>WS_NONFINITE] = 0.0
            out[i] = NAN
            continue
        count = <int>st[<Py_ssize_t>WS_COUNT]
        pos = <int>st[<Py_ssize_t>WS_POS]
        s = st[<Py_ssize_t>WS_SUM]
        c = st[<Py_ssize_t>WS_COMP]
        bad = st[<Py_ssize_t>WS_NONFINITE]
        if count == window:  # the oldest value leaves the window
            old = ring[pos]
            if _finite(old):
                old = -old
                t = s + old
                if fabs(s) >= fabs(old):
                    c += (s - t) + old
                else:
                    c += (old - t) + s
                s = t
            else:
                bad -= 1.0
        else:
            count += 1
        if _finite(v):
            t = s + v
            if fabs(s) >= fabs(v):
                c += (s - t) + v
            else:
                c += (v - t) + s
            s = t
        else:
            bad += 1.0
        ring[pos] = v
        pos += 1
        if pos == window:
            pos = 0
        st[<Py_ssize_t>WS_COUNT] = count
        st[<Py_ssize_t>WS_POS] = pos
        st[<Py_ssize_t>WS_SUM] = s
        st[<Py_ssize_t>WS_COMP] = c
        st[<Py_ssize_t>WS_NONFINITE] = bad
        if not _finite(s):  # finite values whose sum overflowed: sum them again
            resum(st, window, count, pos)
        if count < window:
            out[i] = NAN
        elif bad != 0.0 or not _finite(st[<Py_ssize_t>WS_SUM]):
            out[i] = window_value(ring, window, pos, WIN_MEAN if mean else WIN_SUM, 0.0, v)
        else:
            total = st[<Py_ssize_t>WS_SUM] + st[<Py_ssize_t>WS_COMP]
            out[i] = total / window if mean else total


@cython.boundscheck(False)
@cython.wraparound(False)
def run_window(Rows rows, const double[::1] x, double[:, ::1] state, double[::1] out,
               int mode, int window, double ddof):
    """A rolling-window indicator (``WindowMode``) over the last ``window`` values.

    NaN until ``window`` consecutive valid values have been seen. Sums and
    means keep a compensated running sum of the window's finite values
    (``O(1)`` per row); the other modes read the window from the ring.
    """
    cdef Py_ssize_t k, i, m = rows.n - rows.start, width = state.shape[1]
    cdef int count, pos
    cdef bint running = mode == WIN_SUM or mode == WIN_MEAN
    cdef double v
    cdef double* st
    cdef double* ring
    if window < 1:
        raise ValueError(f"window must be >= 1, got {window}")
    if mode < WIN_SUM or mode > WIN_MOMENTUM:
        raise ValueError(f"unknown window mode {mode}")
    check_io(rows, x.shape[0], out.shape[0], state.shape[0], width, window + WS_RING,
             "run_window")
    if m == 0:
        return None
    cdef const int64_t* order = order_of(rows)
    cdef const int32_t* aid = &rows.asset[0]
    cdef double* st0 = &state[0, 0]
    cdef Py_ssize_t start = rows.start
    if running:
        with nogil:
            running_sum(order, aid, start, m, &x[0], st0, width, &out[0], mode == WIN_MEAN,
                        window)
        return None
    with nogil:
        for k in range(m):
            i = start + k if order == NULL else order[k]
            st = st0 + aid[i] * width
            ring = st + <Py_ssize_t>WS_RING
            v = x[i]
            if _isnan(v):
                st[<Py_ssize_t>WS_COUNT] = 0.0
                st[<Py_ssize_t>WS_POS] = 0.0
                out[i] = NAN
                continue
            count = <int>st[<Py_ssize_t>WS_COUNT]
            pos = <int>st[<Py_ssize_t>WS_POS]
            ring[pos] = v
            pos += 1
            if pos == window:
                pos = 0
            if count < window:
                count += 1
            st[<Py_ssize_t>WS_COUNT] = count
            st[<Py_ssize_t>WS_POS] = pos
            if count < window:
                out[i] = NAN
            else:
                out[i] = window_value(ring, window, pos, mode, ddof, v)
    return None


@cython.boundscheck(False)
@cython.wraparound(False)
def run_ema(Rows rows, const double[::1] x, double[:, ::1] state, double[::1] out,
            int window, double alpha):
    """Exponential smoothing seeded with the mean of the first ``window`` values.

    ``value = previous * (1 - alpha) + x * alpha`` after the seed (backtrader's
    ExponentialSmoothing; ``alpha = 2 / (window + 1)`` for an EMA, ``1 / window``
    for Wilder's smoothing).
    """
    cdef Py_ssize_t k, i, m = rows.n - rows.start, width = state.shape[1]
    cdef int count
    cdef double v, value, alpha1 = 1.0 - alpha
    cdef double* st
    if window < 1:
        raise ValueError(f"an EMA needs a window >= 1, got {window}")
    check_io(rows, x.shape[0], out.shape[0], state.shape[0], width, 3, "run_ema")
    if m == 0:
        return None
    cdef const int64_t* order = order_of(rows)
    cdef const int32_t* aid = &rows.asset[0]
    cdef double* st0 = &state[0, 0]
    cdef Py_ssize_t start = rows.start
    with nogil:
        for k in range(m):
            i = start + k if order == NULL else order[k]
            st = st0 + aid[i] * width
            v = x[i]
            if _isnan(v):
                st[<Py_ssize_t>ES_COUNT] = 0.0
                st[<Py_ssize_t>ES_SEED] = 0.0
                st[<Py_ssize_t>ES_VALUE] = NAN
                out[i] = NAN
                continue
            count = <int>st[<Py_ssize_t>ES_COUNT]
            if count < window:
                st[<Py_ssize_t>ES_SEED] += v
                count += 1
                st[<Py_ssize_t>ES_COUNT] = count
                if count == window:
                    value = st[<Py_ssize_t>ES_SEED] / window
                    st[<Py_ssize_t>ES_VALUE] = value
                    out[i] = value
                else:
                    out[i] = NAN
            else:
                value = st[<Py_ssize_t>ES_VALUE] * alpha1 + v * alpha
                st[<Py_ssize_t>ES_VALUE] = value
                out[i] = value
    return None


@cython.boundscheck(False)
@cython.wraparound(False)
def run_rsi(Rows rows, const double[::1] x, double[:, ::1] state, double[::1] out, int window):
    """Wilder's RSI: Wilder averages of up and down moves, seeded with their means.

    ``100 - 100 / (1 + up / down)``, computed as ``100 * up / (up + down)`` (one
    division); 100 when down is 0 and up > 0, 50 when both are 0.
    """
    cdef Py_ssize_t k, i, m = rows.n - rows.start, width = state.shape[1]
    cdef int count
    cdef double v, prev, up, dn, mu, md
    cdef double alpha, alpha1
    cdef double* st
    if window < 1:
        raise ValueError(f"an RSI needs a window >= 1, got {window}")
    alpha = 1.0 / window
    alpha1 = 1.0 - 1.0 / window
    check_io(rows, x.shape[0], out.shape[0], state.shape[0], width, 5, "run_rsi")
    if m == 0:
        return None
    cdef const int64_t* order = order_of(rows)
    cdef const int32_t* aid = &rows.asset[0]
    cdef double* st0 = &state[0, 0]
    cdef Py_ssize_t start = rows.start
    with nogil:
        for k in range(m):
            i = start + k if order == NULL else order[k]
            st = st0 + aid[i] * width
            v = x[i]
            if _isnan(v):
                st[<Py_ssize_t>RS_HAS_PREV] = 0.0
                st[<Py_ssize_t>RS_PREV] = NAN
                st[<Py_ssize_t>RS_COUNT] = 0.0
                st[<Py_ssize_t>RS_UP] = 0.0
                st[<Py_ssize_t>RS_DOWN] = 0.0
                out[i] = NAN
                continue
            if st[<Py_ssize_t>RS_HAS_PREV] == 0.0:
                st[<Py_ssize_t>RS_HAS_PREV] = 1.0
                st[<Py_ssize_t>RS_PREV] = v
                out[i] = NAN
                continue
            prev = st[<Py_ssize_t>RS_PREV]
            up = v - prev
            dn = -up  # == prev - v exactly
            up = up if up > 0.0 else 0.0
            dn = dn if dn > 0.0 else 0.0
            st[<Py_ssize_t>RS_PREV] = v
            count = <int>st[<Py_ssize_t>RS_COUNT]
            mu = st[<Py_ssize_t>RS_UP]
            md = st[<Py_ssize_t>RS_DOWN]
            if count < window:
                mu += up
                md += dn
                count += 1
                st[<Py_ssize_t>RS_COUNT] = count
                if count < window:
                    st[<Py_ssize_t>RS_UP] = mu
                    st[<Py_ssize_t>RS_DOWN] = md
                    out[i] = NAN
                    continue
                mu = mu / window
                md = md / window
            else:
                mu = mu * alpha1 + up * alpha
                md = md * alpha1 + dn * alpha
            st[<Py_ssize_t>RS_UP] = mu
            st[<Py_ssize_t>RS_DOWN] = md
            if md == 0.0:
                out[i] = 100.0 if mu > 0.0 else 50.0
            else:  # 100 - 100 / (1 + mu / md) with one division
                out[i] = 100.0 * mu / (mu + md)
    return None


@cython.boundscheck(False)
@cython.wraparound(False)
def run_atr(Rows rows, const double[::1] high, const double[::1] low,
            const double[::1] close, double[:, ::1] state, double[::1] out, int window):
    """Wilder's average true range, seeded with the mean of the first ``window`` true ranges.

    ``TR = max(high, previous close) - min(low, previous close)``: the first bar
    has no true range.
    """
    cdef Py_ssize_t k, i, m = rows.n - rows.start, width = state.shape[1]
    cdef int count
    cdef double h, lo, c, pc, tr, value, alpha, alpha1
    cdef double* st
    if window < 1:
        raise ValueError(f"an ATR needs a window >= 1, got {window}")
    alpha = 1.0 / window
    alpha1 = 1.0 - 1.0 / window
    if low.shape[0] != high.shape[0] or close.shape[0] != high.shape[0]:
        raise ValueError("high, low and close must have one length")
    check_io(rows, high.shape[0], out.shape[0], state.shape[0], width, 4, "run_atr")
    if m == 0:
        return None
    cdef const int64_t* order = order_of(rows)
    cdef const int32_t* aid = &rows.asset[0]
    cdef double* st0 = &state[0, 0]
    cdef Py_ssize_t start = rows.start
    with nogil:
        for k in range(m):
            i = start + k if order == NULL else order[k]
            st = st0 + aid[i] * width
            h = high[i]
            lo = low[i]
            c = close[i]
            if _isnan(h) or _isnan(lo) or _isnan(c):
                st[<Py_ssize_t>AS_HAS_PREV] = 0.0
                st[<Py_ssize_t>AS_PREV_CLOSE] = NAN
                st[<Py_ssize_t>AS_COUNT] = 0.0
                st[<Py_ssize_t>AS_VALUE] = 0.0
                out[i] = NAN
                continue
            if st[<Py_ssize_t>AS_HAS_PREV] == 0.0:
                st[<Py_ssize_t>AS_HAS_PREV] = 1.0
                st[<Py_ssize_t>AS_PREV_CLOSE] = c
                out[i] = NAN
                continue
            pc = st[<Py_ssize_t>AS_PREV_CLOSE]
            tr = (h if h > pc else pc) - (lo if lo < pc else pc)
            st[<Py_ssize_t>AS_PREV_CLOSE] = c
            count = <int>st[<Py_ssize_t>AS_COUNT]
            value = st[<Py_ssize_t>AS_VALUE]
            if count < window:
                value += tr
                count += 1
                st[<Py_ssize_t>AS_COUNT] = count
                if count < window:
                    st[<Py_ssize_t>AS_VALUE] = value
                    out[i] = NAN
                    continue
                value = value / window
            else:
                value = value * alpha1 + tr * alpha
            st[<Py_ssize_t>AS_VALUE] = value
            out[i] = value
    return None


@cython.boundscheck(False)
@cython.wraparound(False)
def run_cross(Rows rows, const double[::1] x, const double[::1] y, double[:, ::1] state,
              double[::1] out):
    """+1 when ``x`` crosses above ``y``, -1 when it crosses below, else 0 (backtrader's CrossOver).

    A cross compares the last non-zero difference ``x - y`` before the bar with
    the bar's own ``x`` and ``y``, so touching and then crossing counts once.
    """
    cdef Py_ssize_t k, i, m = rows.n - rows.start, width = state.shape[1]
    cdef double u, v, d, nzd
    cdef double* st
    if y.shape[0] != x.shape[0]:
        raise ValueError("x and y must have one length")
    check_io(rows, x.shape[0], out.shape[0], state.shape[0], width, 2, "run_cross")
    if m == 0:
        return None
    cdef const int64_t* order = order_of(rows)
    cdef const int32_t* aid = &rows.asset[0]
    cdef double* st0 = &state[0, 0]
    cdef Py_ssize_t start = rows.start
    with nogil:
        for k in range(m):
            i = start + k if order == NULL else order[k]
            st = st0 + aid[i] * width
            u = x[i]
            v = y[i]
            if _isnan(u) or _isnan(v):
                st[<Py_ssize_t>CS_HAS_PREV] = 0.0
                st[<Py_ssize_t>CS_NZD] = 0.0
                out[i] = NAN
                continue
            d = u - v
            if st[<Py_ssize_t>CS_HAS_PREV] == 0.0:
                st[<Py_ssize_t>CS_HAS_PREV] = 1.0
                st[<Py_ssize_t>CS_NZD] = d
                out[i] = NAN
                continue
            nzd = st[<Py_ssize_t>CS_NZD]
            if nzd < 0.0 and u > v:
                out[i] = 1.0
            elif nzd > 0.0 and u < v:
                out[i] = -1.0
            else:
                out[i] = 0.0
            if d != 0.0:
                st[<Py_ssize_t>CS_NZD] = d
    return None


cdef double apply_op(int op, double u, double v) noexcept nogil:
    """``u <op> v`` for a ``BinOp`` code; comparisons give 1.0/0.0, NaN when an input is NaN."""
    if op == OP_ADD:
        return u + v
    if op == OP_SUB:
        return u - v
    if op == OP_MUL:
        return u * v
    if op == OP_DIV:
        return u / v
    if _isnan(u) or _isnan(v):
        return NAN
    if op == OP_LT:
        return 1.0 if u < v else 0.0
    if op == OP_LE:
        return 1.0 if u <= v else 0.0
    if op == OP_GT:
        return 1.0 if u > v else 0.0
    if op == OP_GE:
        return 1.0 if u >= v else 0.0
    if op == OP_EQ:
        return 1.0 if u == v else 0.0
    return 1.0 if u != v else 0.0


@cython.boundscheck(False)
@cython.wraparound(False)
def run_binop(const double[::1] x, const double[::1] y, double[::1] out, int op,
              Py_ssize_t start=0):
    """Element-wise ``x <op> y`` (``BinOp``) on rows ``start ..``; comparisons give 1.0/0.0.

    ``x`` or ``y`` may hold a single value (a constant operand), used at
    every row.
    """
    cdef Py_ssize_t i, n = out.shape[0]
    cdef Py_ssize_t sx = 0 if x.shape[0] == 1 else 1, sy = 0 if y.shape[0] == 1 else 1
    if (sx and x.shape[0] != n) or (sy and y.shape[0] != n) or x.shape[0] == 0 \
            or y.shape[0] == 0:
        raise ValueError(f"run_binop needs columns of {n} rows (or a single value), got "
                         f"{x.shape[0]} and {y.shape[0]}")
    if op < OP_ADD or op > OP_NE:
        raise ValueError(f"unknown operator code {op}")
    if not 0 <= start <= n:
        raise ValueError(f"start row {start} is outside the {n} rows")
    with nogil:
        if sx and sy:
            for i in range(start, n):
                out[i] = apply_op(op, x[i], y[i])
        elif sx:
            for i in range(start, n):
                out[i] = apply_op(op, x[i], y[0])
        elif sy:
            for i in range(start, n):
                out[i] = apply_op(op, x[0], y[i])
        else:
            for i in range(start, n):
                out[i] = apply_op(op, x[0], y[0])
    return None


WINDOW_MODES = {"sum": WIN_SUM, "mean": WIN_MEAN, "std": WIN_STD, "max": WIN_MAX,
                "min": WIN_MIN, "zscore": WIN_ZSCORE, "roc": WIN_ROC, "momentum": WIN_MOMENTUM}
"""Window mode codes of :func:`run_window`, by name."""

WINDOW_STATE = WS_RING
"""Values of a window kernel's state row before its ring (state width = ring + this)."""

BINARY_OPS = {"+": OP_ADD, "-": OP_SUB, "*": OP_MUL, "/": OP_DIV, "<": OP_LT, "<=": OP_LE,
              ">": OP_GT, ">=": OP_GE, "==": OP_EQ, "!=": OP_NE}
"""Operator codes of :func:`run_binop`, by symbol."""
