# cython: language_level=3
"""The array ``history()`` returns: an ndarray whose common reductions are compiled.

A moving-average rule written with ``history()`` spends almost all of its
time in numpy's reductions on short windows (``closes[-10:].mean()`` costs
~2.5 us on 10 values, nearly all of it call overhead). :class:`HistoryWindow`
is a read-only ndarray subclass whose ``sum``, ``mean``, ``var``, ``std``,
``min`` and ``max`` with default arguments run a compiled kernel that gives
the same float64, bit for bit, as numpy's own method:

* ``sum`` is numpy's pairwise summation (``pairwise_sum_DOUBLE``): fewer than
  8 values in one loop from ``0.0``; up to 128 in eight accumulators combined
  as ``((r0 + r1) + (r2 + r3)) + ((r4 + r5) + (r6 + r7))`` and then the
  remainder; above that two halves, the first a multiple of 8 long. The
  reduction then adds it to its initial value ``0.0``.
* ``mean`` is that sum divided by the count (``_methods._mean``).
* ``var`` / ``std`` are ``_methods._var``: the mean, the squared deviations
  from it, their pairwise sum divided by ``n - ddof`` (and its square root).
* ``min`` / ``max`` return the smallest / largest value when that value is
  unique in its bits: a window with a NaN, or whose result is a zero (``0.0``
  and ``-0.0`` compare equal), goes to numpy.

Any other argument (``axis``, ``dtype``, ``out``, ``keepdims``, ``where``,
``initial``, a non-int ``ddof`` ...), an empty window where numpy warns, a
window that is not 1-d float64 with a positive, aligned stride, more values
than numpy sums in one inner loop, a result that is NaN (numpy's loops pick
its payload) and a computation that raised a floating-point exception
(overflow, invalid, division by zero, underflow: numpy then warns or raises
as its ``errstate`` says) is handed to ndarray's method unchanged.

Slicing a window keeps the class (``closes[-10:].mean()`` is compiled too);
ufuncs and arithmetic return plain ndarrays, so the class does not spread
into a strategy's own arrays.
"""

cimport numpy as cnp
from libc.math cimport isnan, sqrt

import numpy as np

cnp.import_array()


cdef extern from "numpy/arrayobject.h":
    object PyArray_Scalar(void* data, cnp.dtype descr, object base)

cdef extern from "<fenv.h>" nogil:
    int FE_DIVBYZERO
    int FE_INVALID
    int FE_OVERFLOW
    int FE_UNDERFLOW
    int feclearexcept(int excepts)
    int fetestexcept(int excepts)

#: numpy's "argument not given" marker (np._NoValue): forwarded keywords are left out when equal
cdef object _NO_VALUE = np._NoValue
#: the floating-point exceptions numpy's errstate governs (inexact results are not one)
cdef int _FP_ERRORS = FE_DIVBYZERO | FE_INVALID | FE_OVERFLOW | FE_UNDERFLOW
cdef object _NDARRAY = np.ndarray
cdef cnp.dtype _F64_DESCR = np.dtype(np.float64)
#: longest window summed here; numpy's reductions run in inner loops of at most its buffer size
cdef Py_ssize_t _MAX_FAST = 8192
cdef enum:
    _VAR_BUF = 1024  # longest window whose squared deviations (var / std) fit the stack buffer


cdef double pairwise_sum(const char* a, Py_ssize_t n, Py_ssize_t stride) noexcept nogil:
    """numpy's pairwise summation of ``n`` float64 values ``stride`` bytes apart."""
    cdef Py_ssize_t i, n2
    cdef double res, r0, r1, r2, r3, r4, r5, r6, r7
    if n < 8:
        res = 0.0
        for i in range(n):
            res += (<const double*> (a + i * stride))[0]
        return res
    elif n <= 128:
        r0 = (<const double*> (a + 0 * stride))[0]
        r1 = (<const double*> (a + 1 * stride))[0]
        r2 = (<const double*> (a + 2 * stride))[0]
        r3 = (<const double*> (a + 3 * stride))[0]
        r4 = (<const double*> (a + 4 * stride))[0]
        r5 = (<const double*> (a + 5 * stride))[0]
        r6 = (<const double*> (a + 6 * stride))[0]
        r7 = (<const double*> (a + 7 * stride))[0]
        i = 8
        while i < n - (n % 8):
            r0 += (<const double*> (a + (i + 0) * stride))[0]
            r1 += (<const double*> (a + (i + 1) * stride))[0]
            r2 += (<const double*> (a + (i + 2) * stride))[0]
            r3 += (<const double*> (a + (i + 3) * stride))[0]
            r4 += (<const double*> (a + (i + 4) * stride))[0]
            r5 += (<const double*> (a + (i + 5) * stride))[0]
            r6 += (<const double*> (a + (i + 6) * stride))[0]
            r7 += (<const double*> (a + (i + 7) * stride))[0]
            i += 8
        res = ((r0 + r1) + (r2 + r3)) + ((r4 + r5) + (r6 + r7))
        while i < n:
            res += (<const double*> (a + i * stride))[0]
            i += 1
        return res
    else:
        n2 = n // 2
        n2 -= n2 % 8
        return pairwise_sum(a, n2, stride) + pairwise_sum(a + n2 * stride, n - n2, stride)


cdef inline object _f64(double value):
    """``value`` as a numpy float64 scalar (what numpy's reductions return)."""
    return PyArray_Scalar(&value, _F64_DESCR, None)


cdef inline bint _plain(cnp.ndarray arr) noexcept:
    """A 1-d, aligned, native float64 array with a positive stride, short enough to sum here."""
    return (cnp.PyArray_NDIM(arr) == 1
            and cnp.PyArray_TYPE(arr) == cnp.NPY_FLOAT64
            and not cnp.PyArray_ISBYTESWAPPED(arr)
            and cnp.PyArray_ISALIGNED(arr)
            and cnp.PyArray_STRIDE(arr, 0) > 0
            and cnp.PyArray_DIM(arr, 0) <= _MAX_FAST)


cdef inline void _clear_fp() noexcept nogil:
    """Clear the floating-point exception flags numpy checks (only when one is set: cheaper)."""
    if fetestexcept(_FP_ERRORS):
        feclearexcept(_FP_ERRORS)


cdef inline int _sum(cnp.ndarray arr, Py_ssize_t divide_by, double* out) noexcept:
    """numpy's ``arr.sum()`` (``divide_by`` 0) or ``arr.mean()`` (``divide_by`` n) into ``out``.

    The sum is the reduction's 0.0 plus the pairwise sum of a :func:`_plain`
    array. 0 when it raised a floating-point exception (overflow, inf - inf
    ...): numpy then computes it again and warns or raises as its
    ``errstate`` says; 0 too for a NaN, whose payload (its bits) numpy's
    loops choose.
    """
    cdef double total
    _clear_fp()
    total = 0.0 + pairwise_sum(<const char*> cnp.PyArray_DATA(arr), cnp.PyArray_DIM(arr, 0),
                               cnp.PyArray_STRIDE(arr, 0))
    if divide_by > 0:
        total = total / <double> divide_by
    out[0] = total
    return fetestexcept(_FP_ERRORS) == 0 and not isnan(total)


cdef int _var(cnp.ndarray arr, Py_ssize_t ddof, double* out) noexcept:
    """numpy's ``arr.var(ddof=ddof)`` of a :func:`_plain` array into ``out``; 0 when not done here.

    Not done here: ``ddof`` outside ``[0, n)`` (numpy warns), too long a
    window, a floating-point exception on the way or a NaN (numpy decides).
    """
    cdef double buf[_VAR_BUF]
    cdef Py_ssize_t n = cnp.PyArray_DIM(arr, 0), stride = cnp.PyArray_STRIDE(arr, 0), i
    cdef const char* data = <const char*> cnp.PyArray_DATA(arr)
    cdef double mean, d
    if n > _VAR_BUF or ddof < 0 or ddof >= n:
        return 0
    _clear_fp()
    mean = (0.0 + pairwise_sum(data, n, stride)) / <double> n
    # the squared deviations are stored first, then summed: the same two steps as numpy's
    for i in range(n):
        d = (<const double*> (data + i * stride))[0] - mean
        buf[i] = d * d
    out[0] = (0.0 + pairwise_sum(<const char*> buf, n, sizeof(double))) / <double> (n - ddof)
    return fetestexcept(_FP_ERRORS) == 0 and not isnan(out[0])


cdef int _extreme(cnp.ndarray arr, bint largest, double* out) noexcept:
    """The min (or max) of a :func:`_plain` array into ``out``; 0 when numpy must decide.

    numpy's result is then unique in its bits: no NaN (whose payload numpy
    picks) and not a zero (whose sign numpy picks among equal zeros).
    """
    cdef Py_ssize_t n = cnp.PyArray_DIM(arr, 0), stride = cnp.PyArray_STRIDE(arr, 0), i
    cdef const char* data = <const char*> cnp.PyArray_DATA(arr)
    cdef double best, v
    if n == 0:
        return 0
    best = (<const double*> data)[0]
    for i in range(n):
        v = (<const double*> (data + i * stride))[0]
        if isnan(v):
            return 0
        if (v > best) if largest else (v < best):
            best = v
    if best == 0.0:
        return 0
    out[0] = best
    return 1


class HistoryWindow(np.ndarray):
    """A read-only window of one series, as returned by ``Strategy.history``.

    An ``ndarray`` in every respect: only ``sum``, ``mean``, ``var``,
    ``std``, ``min`` and ``max`` called with their default arguments are
    computed here, with the same result as numpy's, bit for bit. Slices keep
    the class; ufunc and arithmetic results are plain ndarrays.
    """

    __slots__ = ()

    def __array_wrap__(self, arr, context=None, return_scalar=False):
        """Results of ufuncs are plain ndarrays (or scalars), never windows."""
        if return_scalar:
            return arr[()]
        if type(arr) is not _NDARRAY:
            return arr.view(_NDARRAY)
        return arr

    def sum(self, axis=None, dtype=None, out=None, keepdims=False, initial=_NO_VALUE,
            where=True):
        """``ndarray.sum``; compiled with the default arguments."""
        cdef double v
        if (axis is None and dtype is None and out is None and keepdims is False
                and initial is _NO_VALUE and where is True and _plain(<cnp.ndarray> self)):
            if _sum(<cnp.ndarray> self, 0, &v):
                return _f64(v)
        kw = {}
        if initial is not _NO_VALUE:
            kw["initial"] = initial
        if where is not True:
            kw["where"] = where
        return _NDARRAY.sum(self, axis, dtype, out, keepdims, **kw)

    def mean(self, axis=None, dtype=None, out=None, keepdims=False, *, where=True):
        """``ndarray.mean``; compiled with the default arguments (not on an empty window)."""
        cdef Py_ssize_t n
        cdef double v
        if (axis is None and dtype is None and out is None and keepdims is False
                and where is True and _plain(<cnp.ndarray> self)):
            n = cnp.PyArray_DIM(<cnp.ndarray> self, 0)
            if n > 0 and _sum(<cnp.ndarray> self, n, &v):
                return _f64(v)
        if where is not True:
            return _NDARRAY.mean(self, axis, dtype, out, keepdims, where=where)
        return _NDARRAY.mean(self, axis, dtype, out, keepdims)

    def var(self, axis=None, dtype=None, out=None, ddof=0, keepdims=False, *, where=True,
            mean=_NO_VALUE, correction=_NO_VALUE):
        """``ndarray.var``; compiled with the default arguments and an int ``ddof`` < n."""
        cdef double v
        if (axis is None and dtype is None and out is None and type(ddof) is int
                and keepdims is False and where is True and mean is _NO_VALUE
                and correction is _NO_VALUE and _plain(<cnp.ndarray> self)
                and -1 < ddof < cnp.PyArray_DIM(<cnp.ndarray> self, 0)
                and _var(<cnp.ndarray> self, <Py_ssize_t> ddof, &v)):
            return _f64(v)
        return _NDARRAY.var(self, axis, dtype, out, ddof, keepdims,
                            **_keywords(where, mean, correction))

    def std(self, axis=None, dtype=None, out=None, ddof=0, keepdims=False, *, where=True,
            mean=_NO_VALUE, correction=_NO_VALUE):
        """``ndarray.std``; compiled with the default arguments and an int ``ddof`` < n."""
        cdef double v
        if (axis is None and dtype is None and out is None and type(ddof) is int
                and keepdims is False and where is True and mean is _NO_VALUE
                and correction is _NO_VALUE and _plain(<cnp.ndarray> self)
                and -1 < ddof < cnp.PyArray_DIM(<cnp.ndarray> self, 0)
                and _var(<cnp.ndarray> self, <Py_ssize_t> ddof, &v)):
            return _f64(sqrt(v))
        return _NDARRAY.std(self, axis, dtype, out, ddof, keepdims,
                            **_keywords(where, mean, correction))

    def min(self, axis=None, out=None, keepdims=False, initial=_NO_VALUE, where=True):
        """``ndarray.min``; compiled with the default arguments when the result is unique."""
        cdef double v
        if (axis is None and out is None and keepdims is False and initial is _NO_VALUE
                and where is True and _plain(<cnp.ndarray> self)
                and _extreme(<cnp.ndarray> self, False, &v)):
            return _f64(v)
        return _NDARRAY.min(self, axis, out, keepdims, **_keywords(where, _NO_VALUE, _NO_VALUE,
                                                                   initial))

    def max(self, axis=None, out=None, keepdims=False, initial=_NO_VALUE, where=True):
        """``ndarray.max``; compiled with the default arguments when the result is unique."""
        cdef double v
        if (axis is None and out is None and keepdims is False and initial is _NO_VALUE
                and where is True and _plain(<cnp.ndarray> self)
                and _extreme(<cnp.ndarray> self, True, &v)):
            return _f64(v)
        return _NDARRAY.max(self, axis, out, keepdims, **_keywords(where, _NO_VALUE, _NO_VALUE,
                                                                   initial))


cdef dict _keywords(object where, object mean, object correction, object initial=_NO_VALUE):
    """The keywords given to a reduction (not their defaults), to forward them unchanged."""
    cdef dict kw = {}
    if where is not True:
        kw["where"] = where
    if mean is not _NO_VALUE:
        kw["mean"] = mean
    if correction is not _NO_VALUE:
        kw["correction"] = correction
    if initial is not _NO_VALUE:
        kw["initial"] = initial
    return kw


cdef object window_view(object base, Py_ssize_t start, Py_ssize_t length):
    """A read-only :class:`HistoryWindow` of ``length`` values of the float64 array ``base``."""
    cdef cnp.ndarray arr = <cnp.ndarray> base
    cdef cnp.npy_intp dims = length
    out = cnp.PyArray_New(HistoryWindow, 1, &dims, cnp.NPY_FLOAT64, NULL,
                          <char*> cnp.PyArray_DATA(arr) + start * sizeof(double), 0, 0, None)
    cnp.set_array_base(<cnp.ndarray> out, base)
    return out


def as_window(array):
    """``array`` (float64) viewed as a read-only :class:`HistoryWindow` (no copy)."""
    out = (<cnp.ndarray> array).view(HistoryWindow)
    out.flags.writeable = False
    return out
