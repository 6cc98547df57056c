# cython: language_level=3
"""Compiled indicator kernels.

Each kernel runs one indicator as a per-asset state machine. Its inputs are
columns gathered in per-asset time order: the rows of segment ``s`` (asset
``seg_asset[s]``) are ``seg_start[s]:seg_start[s + 1]``, oldest first. The
state of asset ``a`` is ``state[a, :]`` (see the layouts in ``_kernels.pxd``);
a kernel reads it before the asset's first row and writes it back after its
last, so a streamed run carries it from one chunk to the next and computes
the same values, bit for bit, whatever the chunking. The value written at a
row depends only on the state and on that row: causal by construction.

NaN rule: a NaN input (any input, for the kernels with several) writes NaN
and resets the asset's state, so the warm-up starts again at the next row.
"""

cimport cython
from libc.math cimport NAN, sqrt
from libc.stdint cimport int32_t, int64_t


cdef inline bint _isnan(double x) noexcept nogil:
    return x != x


cdef int check_segments(Py_ssize_t n, Py_ssize_t n_out, const int32_t[::1] seg_asset,
                        const int64_t[::1] seg_start, Py_ssize_t n_assets) except -1:
    """Refuse segments that would read or write outside the columns or the state."""
    cdef Py_ssize_t s
    if seg_start.shape[0] != seg_asset.shape[0] + 1:
        raise ValueError("seg_start must have one more entry than seg_asset")
    if n_out != n:
        raise ValueError(f"out has {n_out} rows but the input has {n}")
    if seg_start[0] < 0 or seg_start[seg_asset.shape[0]] > n:
        raise ValueError(f"segments run from row {seg_start[0]} to "
                         f"{seg_start[seg_asset.shape[0]]}, outside the {n} rows")
    for s in range(seg_asset.shape[0]):
        if seg_start[s + 1] < seg_start[s]:
            raise ValueError(f"segment {s} ends before it starts")
        if not 0 <= seg_asset[s] < n_assets:
            raise ValueError(f"segment {s} has asset {seg_asset[s]}, outside the "
                             f"{n_assets} state rows")
    return 0


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


@cython.boundscheck(False)
@cython.wraparound(False)
def run_window(const double[::1] x, const int32_t[::1] seg_asset, const int64_t[::1] seg_start,
               double[:, ::1] state, double[::1] out, int mode, int window, double ddof):
    """A rolling-window indicator (``WindowMode``) over the last ``window`` values.

    NaN until ``window`` consecutive valid values have been seen.
    """
    cdef Py_ssize_t s, i, a
    cdef int count, pos
    cdef double v
    cdef double* ring
    if window < 1 or state.shape[1] < window + 2:
        raise ValueError(f"window {window} needs a state row of {window + 2} values")
    check_segments(x.shape[0], out.shape[0], seg_asset, seg_start, state.shape[0])
    with nogil:
        for s in range(seg_asset.shape[0]):
            a = seg_asset[s]
            count = <int>state[a, <Py_ssize_t>WS_COUNT]
            pos = <int>state[a, <Py_ssize_t>WS_POS]
            ring = &state[a, <Py_ssize_t>WS_RING]
            for i in range(seg_start[s], seg_start[s + 1]):
                v = x[i]
                if _isnan(v):
                    count = 0
                    pos = 0
                    out[i] = NAN
                    continue
                ring[pos] = v
                pos = (pos + 1) % window
                if count < window:
                    count += 1
                if count < window:
                    out[i] = NAN
                else:
                    out[i] = window_value(ring, window, pos, mode, ddof, v)
            state[a, <Py_ssize_t>WS_COUNT] = count
            state[a, <Py_ssize_t>WS_POS] = pos
    return None


@cython.boundscheck(False)
@cython.wraparound(False)
def run_ema(const double[::1] x, const int32_t[::1] seg_asset, const int64_t[::1] seg_start,
            double[:, ::1] state, double[::1] out, int window, double alpha):
    """Exponential smoothing seeded with the mean of the first ``window`` values.

    ``value = previous * (1 - alpha) + x * alpha`` after the seed (backtrader's
    ExponentialSmoothing; ``alpha = 2 / (window + 1)`` for an EMA, ``1 / window``
    for Wilder's smoothing).
    """
    cdef Py_ssize_t s, i, a
    cdef int count
    cdef double v, seed, value, alpha1 = 1.0 - alpha
    if window < 1 or state.shape[1] < 3:
        raise ValueError("an EMA needs a window >= 1 and a state row of 3 values")
    check_segments(x.shape[0], out.shape[0], seg_asset, seg_start, state.shape[0])
    with nogil:
        for s in range(seg_asset.shape[0]):
            a = seg_asset[s]
            count = <int>state[a, <Py_ssize_t>ES_COUNT]
            seed = state[a, <Py_ssize_t>ES_SEED]
            value = state[a, <Py_ssize_t>ES_VALUE]
            for i in range(seg_start[s], seg_start[s + 1]):
                v = x[i]
                if _isnan(v):
                    count = 0
                    seed = 0.0
                    value = NAN
                    out[i] = NAN
                    continue
                if count < window:
                    seed += v
                    count += 1
                    if count == window:
                        value = seed / window
                    out[i] = value if count == window else NAN
                else:
                    value = value * alpha1 + v * alpha
                    out[i] = value
            state[a, <Py_ssize_t>ES_COUNT] = count
            state[a, <Py_ssize_t>ES_SEED] = seed
            state[a, <Py_ssize_t>ES_VALUE] = value
    return None


@cython.boundscheck(False)
@cython.wraparound(False)
def run_rsi(const double[::1] x, const int32_t[::1] seg_asset, const int64_t[::1] seg_start,
            double[:, ::1] state, double[::1] out, int window):
    """Wilder's RSI: Wilder averages of up and down moves, seeded with their means.

    ``100 - 100 / (1 + up / down)``; 100 when down is 0 and up > 0, 50 when both are 0.
    """
    cdef Py_ssize_t s, i, a
    cdef int count
    cdef bint has_prev
    cdef double v, prev, up, dn, mu, md, alpha = 1.0 / window, alpha1 = 1.0 - 1.0 / window
    if window < 1 or state.shape[1] < 5:
        raise ValueError("an RSI needs a window >= 1 and a state row of 5 values")
    check_segments(x.shape[0], out.shape[0], seg_asset, seg_start, state.shape[0])
    with nogil:
        for s in range(seg_asset.shape[0]):
            a = seg_asset[s]
            has_prev = state[a, <Py_ssize_t>RS_HAS_PREV] != 0.0
            prev = state[a, <Py_ssize_t>RS_PREV]
            count = <int>state[a, <Py_ssize_t>RS_COUNT]
            mu = state[a, <Py_ssize_t>RS_UP]
            md = state[a, <Py_ssize_t>RS_DOWN]
            for i in range(seg_start[s], seg_start[s + 1]):
                v = x[i]
                if _isnan(v):
                    has_prev = False
                    prev = NAN
                    count = 0
                    mu = 0.0
                    md = 0.0
                    out[i] = NAN
                    continue
                if not has_prev:
                    has_prev = True
                    prev = v
                    out[i] = NAN
                    continue
                up = v - prev
                if up < 0.0:
                    up = 0.0
                dn = prev - v
                if dn < 0.0:
                    dn = 0.0
                prev = v
                if count < window:
                    mu += up
                    md += dn
                    count += 1
                    if count < window:
                        out[i] = NAN
                        continue
                    mu = mu / window
                    md = md / window
                else:
                    mu = mu * alpha1 + up * alpha
                    md = md * alpha1 + dn * alpha
                if md == 0.0:
                    out[i] = 100.0 if mu > 0.0 else 50.0
                else:
                    out[i] = 100.0 - 100.0 / (1.0 + mu / md)
            state[a, <Py_ssize_t>RS_HAS_PREV] = 1.0 if has_prev else 0.0
            state[a, <Py_ssize_t>RS_PREV] = prev
            state[a, <Py_ssize_t>RS_COUNT] = count
            state[a, <Py_ssize_t>RS_UP] = mu
            state[a, <Py_ssize_t>RS_DOWN] = md
    return None


@cython.boundscheck(False)
@cython.wraparound(False)
def run_atr(const double[::1] high, const double[::1] low, const double[::1] close,
            const int32_t[::1] seg_asset, const int64_t[::1] seg_start,
            double[:, ::1] state, double[::1] out, int window):
    """Wilder's average true range, seeded with the mean of the first ``window`` true ranges.

    ``TR = max(high, previous close) - min(low, previous close)``: the first bar
    has no true range.
    """
    cdef Py_ssize_t s, i, a
    cdef int count
    cdef bint has_prev
    cdef double h, lo, c, pc, tr, value, alpha = 1.0 / window, alpha1 = 1.0 - 1.0 / window
    if window < 1 or state.shape[1] < 4:
        raise ValueError("an ATR needs a window >= 1 and a state row of 4 values")
    if low.shape[0] != high.shape[0] or close.shape[0] != high.shape[0]:
        raise ValueError("high, low and close must have one length")
    check_segments(high.shape[0], out.shape[0], seg_asset, seg_start, state.shape[0])
    with nogil:
        for s in range(seg_asset.shape[0]):
            a = seg_asset[s]
            has_prev = state[a, <Py_ssize_t>AS_HAS_PREV] != 0.0
            pc = state[a, <Py_ssize_t>AS_PREV_CLOSE]
            count = <int>state[a, <Py_ssize_t>AS_COUNT]
            value = state[a, <Py_ssize_t>AS_VALUE]
            for i in range(seg_start[s], seg_start[s + 1]):
                h = high[i]
                lo = low[i]
                c = close[i]
                if _isnan(h) or _isnan(lo) or _isnan(c):
                    has_prev = False
                    pc = NAN
                    count = 0
                    value = 0.0
                    out[i] = NAN
                    continue
                if not has_prev:
                    has_prev = True
                    pc = c
                    out[i] = NAN
                    continue
                tr = (h if h > pc else pc) - (lo if lo < pc else pc)
                pc = c
                if count < window:
                    value += tr
                    count += 1
                    if count < window:
                        out[i] = NAN
                        continue
                    value = value / window
                else:
                    value = value * alpha1 + tr * alpha
                out[i] = value
            state[a, <Py_ssize_t>AS_HAS_PREV] = 1.0 if has_prev else 0.0
            state[a, <Py_ssize_t>AS_PREV_CLOSE] = pc
            state[a, <Py_ssize_t>AS_COUNT] = count
            state[a, <Py_ssize_t>AS_VALUE] = value
    return None


@cython.boundscheck(False)
@cython.wraparound(False)
def run_cross(const double[::1] x, const double[::1] y, const int32_t[::1] seg_asset,
              const int64_t[::1] seg_start, double[:, ::1] state, double[::1] out):
    """+1 when ``x`` crosses above ``y``, -1 when it crosses below, else 0 (backtrader's CrossOver).

    A cross compares the last non-zero difference ``x - y`` before the bar with
    the bar's own ``x`` and ``y``, so touching and then crossing counts once.
    """
    cdef Py_ssize_t s, i, a
    cdef bint has_prev
    cdef double u, v, d, nzd
    if state.shape[1] < 2:
        raise ValueError("a cross-over needs a state row of 2 values")
    if y.shape[0] != x.shape[0]:
        raise ValueError("x and y must have one length")
    check_segments(x.shape[0], out.shape[0], seg_asset, seg_start, state.shape[0])
    with nogil:
        for s in range(seg_asset.shape[0]):
            a = seg_asset[s]
            has_prev = state[a, <Py_ssize_t>CS_HAS_PREV] != 0.0
            nzd = state[a, <Py_ssize_t>CS_NZD]
            for i in range(seg_start[s], seg_start[s + 1]):
                u = x[i]
                v = y[i]
                if _isnan(u) or _isnan(v):
                    has_prev = False
                    nzd = 0.0
                    out[i] = NAN
                    continue
                d = u - v
                if not has_prev:
                    has_prev = True
                    nzd = d
                    out[i] = NAN
                    continue
                if nzd < 0.0 and u > v:
                    out[i] = 1.0
                elif nzd > 0.0 and u < v:
                    out[i] = -1.0
                else:
                    out[i] = 0.0
                if d != 0.0:
                    nzd = d
            state[a, <Py_ssize_t>CS_HAS_PREV] = 1.0 if has_prev else 0.0
            state[a, <Py_ssize_t>CS_NZD] = nzd
    return None


@cython.boundscheck(False)
@cython.wraparound(False)
def run_binop(const double[::1] x, const double[::1] y, double[::1] out, int op):
    """Element-wise ``x <op> y`` (``BinOp``); comparisons give 1.0/0.0, NaN when an input is NaN."""
    cdef Py_ssize_t i, n = out.shape[0]
    cdef double u, v
    if x.shape[0] != n or y.shape[0] != n:
        raise ValueError("run_binop needs columns of one length")
    if op < OP_ADD or op > OP_NE:
        raise ValueError(f"unknown operator code {op}")
    with nogil:
        for i in range(n):
            u = x[i]
            v = y[i]
            if op == OP_ADD:
                out[i] = u + v
            elif op == OP_SUB:
                out[i] = u - v
            elif op == OP_MUL:
                out[i] = u * v
            elif op == OP_DIV:
                out[i] = u / v
            elif _isnan(u) or _isnan(v):
                out[i] = NAN
            elif op == OP_LT:
                out[i] = 1.0 if u < v else 0.0
            elif op == OP_LE:
                out[i] = 1.0 if u <= v else 0.0
            elif op == OP_GT:
                out[i] = 1.0 if u > v else 0.0
            elif op == OP_GE:
                out[i] = 1.0 if u >= v else 0.0
            elif op == OP_EQ:
                out[i] = 1.0 if u == v else 0.0
            else:
                out[i] = 1.0 if u != v else 0.0
    return None


WINDOW_MODES = {"sum": WIN_SUM, "mean": WIN_MEAN, "std": WIN_STD, "max": WIN_MAX,
                "min": WIN_MIN, "zscore": WIN_ZSCORE, "roc": WIN_ROC, "momentum": WIN_MOMENTUM}
"""Window mode codes of :func:`run_window`, by name."""

BINARY_OPS = {"+": OP_ADD, "-": OP_SUB, "*": OP_MUL, "/": OP_DIV, "<": OP_LT, "<=": OP_LE,
              ">": OP_GT, ">=": OP_GE, "==": OP_EQ, "!=": OP_NE}
"""Operator codes of :func:`run_binop`, by symbol."""
