# cython: language_level=3
"""A binary-heap clock merging bar streams, timers and delayed events."""

from libc.stdint cimport int32_t, int64_t

from mlbacktest._typedefs cimport idx_t, ts_t

cdef enum EventKind:
    EVENT_BARS = 0              # a stream's bars at one timestamp
    EVENT_TIMER = 1             # a scheduled timer
    EVENT_ORDER = 2             # an order reaching the broker after its latency

ctypedef struct HeapEntry:
    ts_t ts                     # when the event fires
    int32_t priority            # lower fires first among events with equal ts
    int64_t seq                 # insertion sequence: the final, deterministic tie-break
    int32_t kind                # an EventKind
    int64_t ident               # stream index (EVENT_BARS), timer id (EVENT_TIMER) or order id (EVENT_ORDER)

ctypedef struct ClockEvent:
    ts_t ts                     # when the event fires
    int32_t kind                # an EventKind
    int64_t ident               # stream index or timer id
    idx_t start                 # EVENT_BARS: first row of the stream's bars at ts
    idx_t stop                  # EVENT_BARS: one past the last row

cdef class Clock:
    """Orders every event of a run by (ts, priority, seq)."""
    cdef HeapEntry* heap                 # the binary min-heap (owned, realloc'd)
    cdef idx_t size                      # entries in the heap
    cdef idx_t capacity                  # allocated entries
    cdef int64_t next_seq                # sequence number for the next push
    cdef list _keep                      # the stream arrays, kept alive for the pointers below
    cdef const ts_t** stream_ts          # per stream: its distinct timestamps, ascending
    cdef const int64_t** stream_offsets  # per stream: row offsets, len(stream_ts) + 1
    cdef idx_t* stream_len               # per stream: number of distinct timestamps
    cdef idx_t* stream_pos               # per stream: index of its next timestamp
    cdef int32_t* stream_priority        # per stream: its priority among equal timestamps
    cdef readonly int32_t n_streams      # number of streams
    cdef readonly int64_t n_steps_hint   # upper bound on distinct bar timestamps (sum over streams)

    cpdef int add_stream(self, object timestamps, object offsets, int32_t priority) except -1
    cpdef int refill_stream(self, int32_t k, object timestamps, object offsets) except -1
    cdef bint exhausted(self, int32_t first, int32_t stop) noexcept nogil
    cpdef int add_timer(self, ts_t ts, int32_t priority, int64_t ident) except -1
    cpdef int add_order_arrival(self, ts_t ts, int32_t priority, int64_t order_id) except -1
    cdef int push(self, ts_t ts, int32_t priority, int32_t kind, int64_t ident) except -1
    cdef bint pop(self, ClockEvent* out) except -1
    cdef bint peek_ts(self, ts_t* out) noexcept nogil
