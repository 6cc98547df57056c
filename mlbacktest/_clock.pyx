# cython: language_level=3
"""A binary-heap clock merging bar streams, timers and delayed events.

Every event is keyed by ``(ts, priority, seq)``: the timestamp, a priority
that orders kinds of events at the same timestamp (bars before timers), and
the insertion sequence, so two runs on the same inputs pop events in exactly
the same order.

A *stream* is one feed's bars, given as its distinct timestamps and the row
offsets of each timestamp's block; only the stream's next timestamp sits in
the heap, so the heap holds one entry per stream plus pending timers.
"""

from cpython.mem cimport PyMem_Free, PyMem_Malloc, PyMem_Realloc

import numpy as np


cdef inline bint entry_less(const HeapEntry* a, const HeapEntry* b) noexcept nogil:
    if a.ts != b.ts:
        return a.ts < b.ts
    if a.priority != b.priority:
        return a.priority < b.priority
    return a.seq < b.seq


def _stream_arrays(timestamps, offsets):
    """A stream's timestamps and row offsets as int64 arrays, checked."""
    t = np.ascontiguousarray(timestamps, dtype=np.int64)
    o = np.ascontiguousarray(offsets, dtype=np.int64)
    if t.ndim != 1 or o.ndim != 1 or o.shape[0] != t.shape[0] + 1:
        raise ValueError("offsets must have one more entry than timestamps")
    cdef Py_ssize_t n = t.shape[0], m = o.shape[0]
    if n > 1 and not bool(np.all(t[1:] > t[:n - 1])):
        raise ValueError("stream timestamps must be strictly increasing")
    if m > 1 and not bool(np.all(o[1:] >= o[:m - 1])):
        raise ValueError("stream offsets must be non-decreasing")
    if o.shape[0] > 0 and o[0] < 0:
        raise ValueError(f"stream offsets are row numbers >= 0, got {o[0]}")
    return t, o


cdef class Clock:
    """Event clock for one run.

    Examples
    --------
    >>> import numpy as np
    >>> from mlbacktest._clock import Clock
    >>> c = Clock()
    >>> c.add_stream(np.array([10, 20], dtype=np.int64), np.array([0, 3, 5]), 0)
    0
    >>> c.add_timer(15, 1, 7)
    0
    >>> c.drain()
    [(10, 'bars', 0, 0, 3), (15, 'timer', 7, -1, -1), (20, 'bars', 0, 3, 5)]
    """

    def __cinit__(self):
        self.heap = NULL
        self.size = 0
        self.capacity = 0
        self.next_seq = 0
        self._keep = []
        self.stream_ts = NULL
        self.stream_offsets = NULL
        self.stream_len = NULL
        self.stream_pos = NULL
        self.stream_priority = NULL
        self.n_streams = 0
        self.n_steps_hint = 0

    def __dealloc__(self):
        PyMem_Free(self.heap)
        PyMem_Free(self.stream_ts)
        PyMem_Free(self.stream_offsets)
        PyMem_Free(self.stream_len)
        PyMem_Free(self.stream_pos)
        PyMem_Free(self.stream_priority)

    def __len__(self):
        return self.size

    cpdef int add_stream(self, object timestamps, object offsets, int32_t priority) except -1:
        """Add a stream of bars.

        Parameters
        ----------
        timestamps : ndarray of int64, shape (m,)
            The stream's distinct timestamps, strictly increasing.
        offsets : ndarray of int64, shape (m + 1,)
            Rows ``offsets[i]:offsets[i + 1]`` hold the bars at ``timestamps[i]``.
        priority : int
            Order among events of equal timestamp (lower first).
        """
        t, o = _stream_arrays(timestamps, offsets)
        cdef const int64_t[::1] tv = t
        cdef const int64_t[::1] ov = o
        cdef int32_t k = self.n_streams
        cdef void* p
        p = PyMem_Realloc(self.stream_ts, (k + 1) * sizeof(ts_t*))
        if p == NULL:
            raise MemoryError()
        self.stream_ts = <const ts_t**> p
        p = PyMem_Realloc(self.stream_offsets, (k + 1) * sizeof(int64_t*))
        if p == NULL:
            raise MemoryError()
        self.stream_offsets = <const int64_t**> p
        p = PyMem_Realloc(self.stream_len, (k + 1) * sizeof(idx_t))
        if p == NULL:
            raise MemoryError()
        self.stream_len = <idx_t*> p
        p = PyMem_Realloc(self.stream_pos, (k + 1) * sizeof(idx_t))
        if p == NULL:
            raise MemoryError()
        self.stream_pos = <idx_t*> p
        p = PyMem_Realloc(self.stream_priority, (k + 1) * sizeof(int32_t))
        if p == NULL:
            raise MemoryError()
        self.stream_priority = <int32_t*> p
        self._keep.append((t, o))
        self.stream_len[k] = t.shape[0]
        self.stream_pos[k] = 0
        self.stream_priority[k] = priority
        self.stream_ts[k] = NULL
        self.stream_offsets[k] = &ov[0]
        if t.shape[0] > 0:
            self.stream_ts[k] = &tv[0]
        self.n_streams = k + 1
        self.n_steps_hint += t.shape[0]
        if t.shape[0] > 0:
            self.push(self.stream_ts[k][0], priority, EVENT_BARS, k)
        return k

    cpdef int refill_stream(self, int32_t k, object timestamps, object offsets) except -1:
        """Give an exhausted stream its next run of bars (the next chunk of a streamed feed).

        Parameters
        ----------
        k : int
            The stream, which must have no timestamp left.
        timestamps, offsets : ndarray of int64
            As for :meth:`add_stream`; every timestamp must be later than
            the stream's last one.
        """
        if not 0 <= k < self.n_streams:
            raise ValueError(f"no stream {k}")
        if self.stream_pos[k] < self.stream_len[k]:
            raise ValueError(f"stream {k} still has bars to deliver")
        t, o = _stream_arrays(timestamps, offsets)
        if t.shape[0] > 0 and self.stream_len[k] > 0 \
                and t[0] <= self.stream_ts[k][self.stream_len[k] - 1]:
            raise ValueError("a refilled stream must continue after its last timestamp")
        cdef const int64_t[::1] tv = t
        cdef const int64_t[::1] ov = o
        self._keep[k] = (t, o)
        self.stream_len[k] = t.shape[0]
        self.stream_pos[k] = 0
        self.stream_offsets[k] = &ov[0]
        self.stream_ts[k] = &tv[0] if t.shape[0] > 0 else NULL
        if t.shape[0] > 0:
            self.push(self.stream_ts[k][0], self.stream_priority[k], EVENT_BARS, k)
        return 0

    cdef bint exhausted(self, int32_t first, int32_t stop) noexcept nogil:
        """True when streams ``first:stop`` have no timestamp left."""
        cdef int32_t k
        for k in range(first, stop):
            if self.stream_pos[k] < self.stream_len[k]:
                return False
        return True

    cpdef int add_timer(self, ts_t ts, int32_t priority, int64_t ident) except -1:
        """Schedule timer ``ident`` to fire at ``ts``."""
        self.push(ts, priority, EVENT_TIMER, ident)
        return 0

    cpdef int add_order_arrival(self, ts_t ts, int32_t priority, int64_t order_id) except -1:
        """Schedule order ``order_id`` to reach the broker at ``ts``."""
        self.push(ts, priority, EVENT_ORDER, order_id)
        return 0

    cdef int push(self, ts_t ts, int32_t priority, int32_t kind, int64_t ident) except -1:
        cdef idx_t i, parent, cap
        cdef HeapEntry* grown
        cdef HeapEntry e
        if self.size == self.capacity:
            cap = max(16, 2 * self.capacity)
            grown = <HeapEntry*> PyMem_Realloc(self.heap, cap * sizeof(HeapEntry))
            if grown == NULL:
                raise MemoryError()
            self.heap = grown
            self.capacity = cap
        e.ts = ts
        e.priority = priority
        e.seq = self.next_seq
        e.kind = kind
        e.ident = ident
        self.next_seq += 1
        i = self.size
        self.size += 1
        while i > 0:
            parent = (i - 1) >> 1
            if not entry_less(&e, &self.heap[parent]):
                break
            self.heap[i] = self.heap[parent]
            i = parent
        self.heap[i] = e
        return 0

    cdef bint peek_ts(self, ts_t* out) noexcept nogil:
        """Store the next event's timestamp in ``out``; False when the clock is empty."""
        if self.size == 0:
            return False
        out[0] = self.heap[0].ts
        return True

    cdef bint pop(self, ClockEvent* out) except -1:
        """Pop the next event into ``out``; False when the clock is empty.

        Popping a stream's bars schedules the stream's next timestamp.
        """
        cdef HeapEntry top, last
        cdef idx_t i, child, n, k, pos
        if self.size == 0:
            return False
        top = self.heap[0]
        self.size -= 1
        n = self.size
        if n > 0:
            last = self.heap[n]
            i = 0
            while True:
                child = 2 * i + 1
                if child >= n:
                    break
                if child + 1 < n and entry_less(&self.heap[child + 1], &self.heap[child]):
                    child += 1
                if not entry_less(&self.heap[child], &last):
                    break
                self.heap[i] = self.heap[child]
                i = child
            self.heap[i] = last
        out.ts = top.ts
        out.kind = top.kind
        out.ident = top.ident
        out.start = -1
        out.stop = -1
        if top.kind == EVENT_BARS:
            k = top.ident
            pos = self.stream_pos[k]
            out.start = self.stream_offsets[k][pos]
            out.stop = self.stream_offsets[k][pos + 1]
            pos += 1
            self.stream_pos[k] = pos
            if pos < self.stream_len[k]:
                self.push(self.stream_ts[k][pos], top.priority, EVENT_BARS, k)
        return True

    def drain(self):
        """Pop every remaining event; returns ``(ts, kind, ident, start, stop)`` tuples.

        For tests and debugging: a run pops events itself.
        """
        cdef ClockEvent ev
        out = []
        while self.pop(&ev):
            out.append((ev.ts, ("bars", "timer", "order")[ev.kind], ev.ident, ev.start, ev.stop))
        return out
