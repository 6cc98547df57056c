# cython: language_level=3
"""The fill rules of the simulated broker, on their own: pure functions of a bar and an order.

This file reads beside ``docs/semantics.md`` ("The price path of a bar",
"Orders and fills"): the bar's price path (:c:func:`path_points`), the first
point of the path where an order's condition holds and the price it fills at
(:c:func:`first_touch`, :c:func:`trigger`), the order in which the orders
triggered on one bar are filled (:c:func:`compare_cands`,
:c:func:`compare_ids`) and where a trailing stop's level starts
(:c:func:`start_trail`). ``_broker.pyx`` applies them: it decides which
orders are looked at, books the fills and handles linked orders, costs and
accounts. Every function here is ``inline``, ``noexcept nogil`` and touches
only its arguments.
"""

from libc.math cimport isnan
from libc.stdint cimport int32_t, int64_t

from mlbacktest._events cimport (
    ORDER_LIMIT, ORDER_MARKET, ORDER_MARKET_ON_CLOSE, ORDER_MARKET_ON_OPEN, ORDER_STOP,
    ORDER_STOP_LIMIT, ORDER_TRAILING_STOP, OrderC,
)


cdef enum IntrabarPath:
    PATH_OHLC = 0               # open -> high -> low -> close
    PATH_OLHC = 1               # open -> low -> high -> close
    PATH_ADAPTIVE = 2           # open -> the extreme nearer the open -> the other -> close
    PATH_SUBMISSION = 3         # prices as PATH_OHLC, but triggered orders fill in submission order

ctypedef struct CandC:                # an order that triggers on the current bar
    double time                 # path point that orders it among the bar's fills: 0 open .. 3 close
    int64_t id                  # order id
    double price                # raw fill price (before slippage)
    int32_t seg                 # path segment of the fill: its children go on from here


cdef inline void path_points(int mode, double o, double h, double l, double c,
                             double* p) noexcept nogil:
    """The four points of a bar's price path."""
    p[0] = o
    p[3] = c
    if mode == PATH_OHLC or mode == PATH_SUBMISSION or (mode == PATH_ADAPTIVE and (h - o) <= (o - l)):
        p[1] = h
        p[2] = l
    else:
        p[1] = l
        p[2] = h


cdef inline int first_touch(const double* p, int start, double start_price, double start_time,
                            double level, bint up, double* price, int* seg,
                            double* time) noexcept nogil:
    """First path point from ``start`` where price >= level (``up``) or <= level.

    Returns the point (-1 when never) and stores the fill price: the start
    price when the condition already holds there, otherwise the level. ``seg``
    receives where the path goes on from the fill: the fill is at ``seg`` (a
    start fill) or between ``seg`` and ``seg + 1`` (a crossing), so what
    follows is points ``seg + 1 ..``. ``time`` receives the path point that
    orders the fill among others on the bar: ``start_time`` for a start fill,
    else ``k``.
    """
    cdef int k
    if (start_price >= level) if up else (start_price <= level):
        price[0] = start_price
        seg[0] = start
        time[0] = start_time
        return start
    for k in range(start + 1, 4):
        if (p[k] >= level) if up else (p[k] <= level):
            price[0] = level
            seg[0] = k - 1
            time[0] = k
            return k
    return -1


cdef inline int trigger(OrderC* o, const double* p, int start, double start_price,
                        double start_time, bint next_close, double* price, int* seg, double* time) noexcept nogil:
    """Whether ``o`` fills on this bar (-1: it does not); its raw price, segment and time."""
    cdef bint buy = (o.quantity - o.filled) > 0
    cdef int k
    cdef double stop_price, stop_time
    if o.type == ORDER_MARKET:
        if next_close:
            price[0] = p[3]
            seg[0] = 3
            time[0] = 3.0
            return 3
        price[0] = start_price
        seg[0] = start
        time[0] = start_time
        return start
    if o.type == ORDER_MARKET_ON_OPEN:
        if start != 0 or start_time != 0.0:
            return -1
        price[0] = start_price
        seg[0] = 0
        time[0] = 0.0
        return 0
    if o.type == ORDER_MARKET_ON_CLOSE:
        price[0] = p[3]
        seg[0] = 3
        time[0] = 3.0
        return 3
    if o.type == ORDER_LIMIT or (o.type == ORDER_STOP_LIMIT and o.triggered):
        return first_touch(p, start, start_price, start_time, o.limit_price, not buy, price, seg,
                           time)
    if o.type == ORDER_STOP or o.type == ORDER_TRAILING_STOP:
        return first_touch(p, start, start_price, start_time, o.stop_price, buy, price, seg, time)
    if o.type == ORDER_STOP_LIMIT:
        k = first_touch(p, start, start_price, start_time, o.stop_price, buy, &stop_price, seg,
                        &stop_time)
        if k < 0:
            return -1
        o.triggered = True
        return first_touch(p, seg[0], stop_price, stop_time, o.limit_price, not buy, price, seg,
                           time)
    return -1


cdef inline int compare_cands(const void* a, const void* b) noexcept nogil:
    """Order candidates by path point, then by order id."""
    cdef const CandC* x = <const CandC*> a
    cdef const CandC* y = <const CandC*> b
    if x.time < y.time:
        return -1
    if x.time > y.time:
        return 1
    return (x.id > y.id) - (x.id < y.id)


cdef inline int compare_ids(const void* a, const void* b) noexcept nogil:
    """Order candidates by order id (submission order: ``intrabar_path="submission"``)."""
    cdef const CandC* x = <const CandC*> a
    cdef const CandC* y = <const CandC*> b
    return (x.id > y.id) - (x.id < y.id)


cdef inline void start_trail(OrderC* o, double price) noexcept nogil:
    """Make a trailing stop trail from ``price`` (its level is set from it)."""
    o.trail_extreme = price
    if o.quantity < 0:
        o.stop_price = (price - o.trail_amount if isnan(o.trail_percent)
                        else price * (1.0 - o.trail_percent))
    else:
        o.stop_price = (price + o.trail_amount if isnan(o.trail_percent)
                        else price * (1.0 + o.trail_percent))
