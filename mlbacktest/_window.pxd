# cython: language_level=3
"""The array history() returns, with compiled reductions equal to numpy's bit for bit."""


cdef double pairwise_sum(const char* a, Py_ssize_t n, Py_ssize_t stride) noexcept nogil
cdef object window_view(object base, Py_ssize_t start, Py_ssize_t length)
