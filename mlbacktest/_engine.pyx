# cython: language_level=3
"""The run loop: clock -> broker -> portfolio -> strategy hooks.

For each timestamp the clock yields (all streams with bars at it, then the
timers due at it), the engine

1. matches open orders against the new bars (exits first) and books fills;
2. takes the bars' closes as the assets' last prices;
3. calls ``on_fill`` for each new fill, ``on_market_data`` once per bar,
   ``on_slice`` once, then the timers due;
4. with ``fill_at="close"``, fills market orders at this timestamp's closes
   (and calls ``on_fill`` for them);
5. records cash, positions value and exposures.

Steps 1, 2, 4 and 5 run in C. A hook the strategy does not override is never
called. Orders placed in a hook can only fill on a later bar (or, with
``fill_at="close"``, at the close of the current one).
"""

from cpython.mem cimport PyMem_Free, PyMem_Malloc
from libc.math cimport INFINITY, NAN, floor, isfinite, isnan

from mlbacktest._broker cimport Broker
from mlbacktest._clock cimport EVENT_BARS, EVENT_ORDER, EVENT_TIMER, ClockEvent, Clock
from mlbacktest._events cimport (
    ORDER_MARKET, ORIGIN_STRATEGY, PHASE_CLOSE, PHASE_OPEN, REASON_BEFORE_TRADING,
    REASON_BY_STRATEGY, STATUS_REJECTED, STATUS_SUBMITTED, TIF_GTC,
    BarStore, OrderC, OrderEvent,
    make_fill_event, make_market_event, make_slice_view,
)
from mlbacktest._portfolio cimport Portfolio
from libc.stdint cimport int64_t

from mlbacktest._typedefs cimport MLB_NO_TS, asset_t, code_t, idx_t, ts_t

import numpy as np

from mlbacktest._events import annotate  # noqa: F401  (also part of this module's API)

#: Priority of bar events among events of one timestamp (lower first).
BAR_PRIORITY = 0
#: Priority of timers: after every stream's bars at the same timestamp.
TIMER_PRIORITY = 1_000_000
#: Priority of order arrivals (latency): before the bars of the same timestamp.
ORDER_ARRIVAL_PRIORITY = -1


cdef class Engine:
    """Runs one backtest over prepared components.

    Built by :class:`mlbacktest.BacktestEngine`; use that instead.

    Parameters
    ----------
    store : BarStore
        All bars of the run.
    clock : Clock
        A clock with one stream per feed already added.
    broker : Broker
        The broker (owns the portfolio given below).
    portfolio : Portfolio
        The account.
    strategy : Strategy
        The user's strategy; its hooks are looked up once, here.
    hooks : dict
        ``{"on_market_data": callable or None, "on_slice": ..., "on_fill": ...}``.
    context : ContextFrame or None
        Market-wide series handed to hooks as a dict per timestamp.
    latency_ns, latency_bars : int
        Delay before a new order reaches the broker: a duration (the order
        can fill on bars stamped at or after placement + latency) and/or a
        number of the asset's bars it sits out.
    sources : sequence of (SignalSource, ndarray of int32)
        Signal sources and their rows' asset ids; their clock streams follow
        the ``n_bar_streams`` bar streams.
    n_bar_streams : int
        Number of clock streams that carry bars (default: all of them).
    loader : callable, optional
        For a streamed run: called when every bar stream is exhausted, returns
        the next chunk as ``(store, streams, columns)`` -- the chunk's
        BarStore, ``(timestamps, offsets)`` for each bar stream and the
        slippage model's columns (or None) -- or None when there is none left.
    calendar : ndarray of int64, optional
        Every distinct bar timestamp of the run (default: those of ``store``).
    history_limit : int
        Most bars ``Strategy.history`` may ask for (0: no limit). A streamed
        run keeps only that much history across chunks.
    progress : callable, optional
        Called with the number of timestamps done since its last call, every
        ``progress_every`` timestamps and once at the end.
    trade_from : int, optional
        Timestamp (ns) before which the run only warms up: the hooks run,
        but every order placed before it is stored rejected at once (reason
        "before trading start") and never reaches the broker. None: trade
        from the first bar.
    """

    def __cinit__(self, *args, **kwargs):
        self.starts = NULL
        self.stops = NULL

    def __init__(self, BarStore store, Clock clock, Broker broker, Portfolio portfolio,
                 strategy, dict hooks, context=None, ts_t latency_ns=0, int latency_bars=0,
                 sources=(), int n_bar_streams=-1, *, loader=None, calendar=None,
                 int history_limit=0, progress=None, Py_ssize_t progress_every=0,
                 trade_from=None):
        self.store = store
        self.clock = clock
        self.broker = broker
        self.portfolio = portfolio
        self.strategy = strategy
        self.hook_market_data = hooks.get("on_market_data")
        self.hook_slice = hooks.get("on_slice")
        self.hook_fill = hooks.get("on_fill")
        self.hook_order = hooks.get("on_order")
        self.hook_signal = hooks.get("on_signal")
        self.n_bar_streams = clock.n_streams if n_bar_streams < 0 else n_bar_streams
        self.sources = [src for src, _ in sources]
        self.source_assets = [ids for _, ids in sources]
        if clock.n_streams != self.n_bar_streams + len(self.sources):
            raise ValueError("the clock must hold one stream per feed, then one per signal source")
        if latency_ns < 0 or latency_bars < 0:
            raise ValueError("latency must be >= 0")
        self.latency_ns = latency_ns
        self.latency_bars = latency_bars
        self.trade_from = MLB_NO_TS if trade_from is None else <ts_t> trade_from
        self.context = context
        self.ctx_cursor = -1
        self.ctx_row = -1
        self.ctx_base = {} if context is None else context.row_dict(-1)
        # Context rows in order of visibility; the row shown once the first m
        # have become visible is the latest observation among them (rows are
        # sorted by observation time, so the largest row index).
        vis = np.ascontiguousarray([] if context is None else context.ts, dtype=np.int64)
        order = np.argsort(vis, kind="stable")
        self.ctx_ts = vis[order]
        self.ctx_times = self.ctx_ts
        self.ctx_best = np.maximum.accumulate(order) if order.size else order
        self.ctx_rows = self.ctx_best
        self.timers = []
        self.current_ts = MLB_NO_TS
        self.first_ts = MLB_NO_TS
        self.started = False
        self.finished = False
        n = max(clock.n_streams, 1)
        self.starts = <idx_t*> PyMem_Malloc(n * sizeof(idx_t))
        self.stops = <idx_t*> PyMem_Malloc(n * sizeof(idx_t))
        if self.starts == NULL or self.stops == NULL:
            raise MemoryError()
        self.n_ranges = 0
        self.loader = loader
        self.calendar = (np.unique(store.ts_array) if calendar is None
                         else np.ascontiguousarray(calendar, dtype=np.int64))
        if history_limit < 0:
            raise ValueError("history_limit must be >= 0")
        self.history_limit = history_limit
        self.progress = progress
        self.progress_every = max(progress_every, 1)
        self.progress_count = 0
        if store.n_assets != portfolio.n_assets or broker.portfolio is not portfolio:
            raise ValueError("the broker, the portfolio and the store must be of one run")
        self.check_streams(store)
        self.last_row_array = np.full(store.n_assets, -1, dtype=np.int64)
        self.last_row = self.last_row_array
        cdef ts_t first
        if clock.peek_ts(&first):
            self.first_ts = first

    def __dealloc__(self):
        PyMem_Free(self.starts)
        PyMem_Free(self.stops)

    # ------------------------------------------------------------ the loop
    def run(self):
        """Run every timestamp, calling the strategy's hooks; returns None."""
        cdef ClockEvent ev
        cdef ts_t ts, nxt
        cdef list due, signals
        if self.started:
            raise RuntimeError("an Engine runs once; build a new BacktestEngine to run again")
        self.started = True
        while True:
            if self.loader is not None and self.clock.exhausted(0, self.n_bar_streams):
                self.load_next()
            if not self.clock.pop(&ev):
                break
            ts = ev.ts
            self.n_ranges = 0
            due = None
            signals = None
            while True:
                if ev.kind == EVENT_BARS and ev.ident >= self.n_bar_streams:
                    if signals is None:
                        signals = []
                    signals.append((ev.ident - self.n_bar_streams, ev.start, ev.stop))
                elif ev.kind == EVENT_BARS:
                    if ev.stop > ev.start:
                        self.starts[self.n_ranges] = ev.start
                        self.stops[self.n_ranges] = ev.stop
                        self.n_ranges += 1
                elif ev.kind == EVENT_ORDER:
                    self.broker.accept_arrived(ev.ident, ev.ts)
                else:
                    if due is None:
                        due = []
                    due.append(ev.ident)
                if not (self.clock.peek_ts(&nxt) and nxt == ts):
                    break
                self.clock.pop(&ev)
            self.current_ts = ts
            self.step(ts)
            if signals is not None and self.hook_signal is not None:
                self.deliver_signals(ts, signals)
            if due is not None:
                self.run_timers(ts, due)
            if self.n_ranges > 0:
                if self.broker.market_at_close:
                    self.close_phase(ts)
                self.broker.end_of_step(self.store, self.starts, self.stops, self.n_ranges, ts)
                self.portfolio.record(ts)
            if self.hook_order is not None and self.broker.n_log > 0:
                self.deliver_orders()
            if self.progress is not None:
                self.progress_count += 1
                if self.progress_count >= self.progress_every:
                    self.progress(self.progress_count)
                    self.progress_count = 0
        if self.progress is not None and self.progress_count > 0:
            self.progress(self.progress_count)
            self.progress_count = 0
        self.finished = True

    cdef int load_next(self) except -1:
        """Swap in the next chunk of a streamed run (every bar stream is exhausted)."""
        nxt = self.loader()
        if nxt is None:
            self.loader = None
            return 0
        store, streams, columns = nxt
        if len(streams) != self.n_bar_streams:
            raise ValueError("a chunk must give one (timestamps, offsets) per bar stream")
        self.store = store
        self.broker.set_store(store, columns)
        for k, (times, offsets) in enumerate(streams):
            self.clock.refill_stream(k, times, offsets)
        self.check_streams(store)
        self.rebuild_last_row()
        self.strategy._set_store(store)
        return 0

    cdef int rebuild_last_row(self) except -1:
        """Each asset's latest row of the (new) store stamped at or before ``current_ts``.

        At a chunk swap those are the rows carried over from the previous
        chunk (the new window's rows all come later).
        """
        cdef BarStore store = self.store
        cdef idx_t i, r
        cdef asset_t a
        cdef ts_t now = self.current_ts
        cdef int64_t[::1] last = self.last_row
        if last.shape[0] != store.n_assets:
            raise ValueError(f"the new store has {store.n_assets} assets, the run "
                             f"{last.shape[0]}")
        with nogil:
            for a in range(last.shape[0]):
                last[a] = -1
            for i in range(store.n_rows):
                if store.ts[i] <= now:
                    a = store.asset[i]
                    r = last[a]
                    if r < 0 or store.ts[i] > store.ts[r]:
                        last[a] = i
        return 0

    cdef int check_streams(self, BarStore store) except -1:
        """Every bar stream's rows lie in the store (the loop reads them unchecked)."""
        cdef int k
        cdef Clock clock = self.clock
        for k in range(self.n_bar_streams):
            if clock.stream_len[k] > clock.stream_pos[k] and \
                    clock.stream_offsets[k][clock.stream_len[k]] > store.n_rows:
                raise IndexError(
                    f"bar stream {k} reaches row {clock.stream_offsets[k][clock.stream_len[k]]}"
                    f" but the store has {store.n_rows} rows")
        return 0

    cdef int step(self, ts_t ts) except -1:
        """Match, mark and call the per-bar and per-slice hooks for ``ts``."""
        cdef Broker broker = self.broker
        cdef BarStore store = self.store
        cdef idx_t first_fill = broker.n_fills
        cdef idx_t i, row = -1
        cdef int r
        cdef object ctx = None
        cdef object hook
        cdef int64_t* last
        if self.n_ranges == 0:
            return 0
        last = &self.last_row[0]  # rows exist, so assets do
        broker.accrue(ts)
        broker.match(store, self.starts, self.stops, self.n_ranges, ts, PHASE_OPEN)
        for r in range(self.n_ranges):
            # also each asset's latest row (history() windows end there): one
            # asset has at most one bar per timestamp
            self.portfolio.mark(store.asset, store.high, store.low, store.close,
                                self.starts[r], self.stops[r], ts, last)
        if self.hook_order is not None and broker.n_log > 0:
            self.deliver_orders()
        if broker.n_fills > first_fill and self.hook_fill is not None:
            self.deliver_fills(first_fill)
        if self.hook_market_data is not None:
            ctx = self.context_at(ts)
            hook = self.hook_market_data
            try:
                for r in range(self.n_ranges):
                    for i in range(self.starts[r], self.stops[r]):
                        row = i
                        hook(make_market_event(store, i), ctx)
            except BaseException as exc:
                annotate(exc, "on_market_data", store.to_datetime(ts),
                         store.asset_names[store.asset[row]])
                raise
        if self.hook_slice is not None:
            if ctx is None:
                ctx = self.context_at(ts)
            if self.n_ranges == 1:
                view = make_slice_view(store, ts, self.starts[0], self.stops[0], None,
                                       self.portfolio)
            else:
                rows = np.concatenate([np.arange(self.starts[r], self.stops[r], dtype=np.int64)
                                       for r in range(self.n_ranges)])
                view = make_slice_view(store, ts, 0, 0, rows, self.portfolio)
            try:
                self.hook_slice(view, ctx)
            except BaseException as exc:
                annotate(exc, "on_slice", store.to_datetime(ts), None)
                raise
        if self.hook_order is not None and broker.n_log > 0:
            self.deliver_orders()
        return 0

    cdef int run_timers(self, ts_t ts, list due) except -1:
        ctx = self.context_at(ts)
        for ident in due:
            callback = self.timers[ident]
            try:
                callback(ctx)
            except BaseException as exc:
                annotate(exc, getattr(callback, "__name__", "timer"), self.store.to_datetime(ts), None)
                raise
        return 0

    cdef int close_phase(self, ts_t ts) except -1:
        cdef idx_t first_fill = self.broker.n_fills
        if self.broker.margin_account or self.broker.max_leverage < INFINITY:
            # the closes moved the last prices: the risk checks need fresh totals
            self.portfolio.sync_exposures()
        self.broker.match(self.store, self.starts, self.stops, self.n_ranges, ts, PHASE_CLOSE)
        if self.hook_order is not None and self.broker.n_log > 0:
            self.deliver_orders()
        if self.broker.n_fills > first_fill and self.hook_fill is not None:
            self.deliver_fills(first_fill)
        return 0

    cdef int deliver_fills(self, idx_t first_fill) except -1:
        cdef idx_t j
        cdef Broker broker = self.broker
        for j in range(first_fill, broker.n_fills):
            try:
                self.hook_fill(make_fill_event(self.store, &broker.fills[j]))
            except BaseException as exc:
                annotate(exc, "on_fill", self.store.to_datetime(broker.fills[j].ts),
                         self.store.asset_names[broker.fills[j].asset])
                raise
        return 0

    cdef int deliver_signals(self, ts_t ts, list ranges) except -1:
        """Call on_signal for every signal row arriving at ``ts`` (after the bar hooks).

        Each source makes its own events (``source.event``), so the compiled
        loop needs nothing from the data layer above it.
        """
        ctx = self.context_at(ts)
        for j, start, stop in ranges:
            source = self.sources[j]
            ids = self.source_assets[j]
            for row in range(start, stop):
                event = source.event(row, self.store, int(ids[row]))
                try:
                    self.hook_signal(event, ctx)
                except BaseException as exc:
                    annotate(exc, "on_signal", self.store.to_datetime(ts), event.asset)
                    raise
        if self.hook_order is not None and self.broker.n_log > 0:
            self.deliver_orders()
        return 0

    cdef int deliver_orders(self) except -1:
        """Call on_order for every recorded status change (and those its calls cause)."""
        cdef Broker broker = self.broker
        while broker.n_log > 0:
            for oid, status, ts in broker.take_log():
                try:
                    self.hook_order(broker.status_event(oid, status))
                except BaseException as exc:
                    annotate(exc, "on_order", self.store.to_datetime(ts),
                             self.store.asset_names[broker.orders[oid].asset])
                    raise
        return 0

    def flush_order_events(self):
        """Deliver pending on_order events now (after on_start)."""
        if self.hook_order is not None:
            self.deliver_orders()

    cdef object context_at(self, ts_t ts):
        """A fresh dict of the context values visible at ``ts`` (as-of, backward)."""
        cdef idx_t cur, n, row
        if self.context is None:
            return {}
        cur = self.ctx_cursor
        n = self.ctx_times.shape[0]
        while cur + 1 < n and self.ctx_times[cur + 1] <= ts:
            cur += 1
        self.ctx_cursor = cur
        row = self.ctx_rows[cur] if cur >= 0 else -1
        if row != self.ctx_row:
            self.ctx_row = row
            self.ctx_base = self.context.row_dict(row)
        return dict(self.ctx_base)

    # ------------------------------------------------------------ strategy side
    def submit(self, int asset, double quantity, int order_type=0,
               double limit_price=NAN, double stop_price=NAN, double trail_amount=NAN,
               double trail_percent=NAN, int tif=0, expire_ts=None, long long parent=-1):
        """Submit an order; returns its :class:`~mlbacktest.OrderEvent`.

        Raises OrderError for an order that cannot be accepted as written.
        """
        return self.submit_c(asset, quantity, order_type, limit_price, stop_price, trail_amount,
                             trail_percent, tif, expire_ts, parent)

    cdef object submit_c(self, int asset, double quantity, int order_type, double limit_price,
                         double stop_price, double trail_amount, double trail_percent, int tif,
                         object expire_ts, long long parent):
        """:meth:`submit` without argument parsing (the strategy's fast order helpers)."""
        cdef OrderC o
        cdef ts_t ts = self.current_ts if self.started else self.first_ts
        cdef int64_t oid
        cdef double ref = NAN
        if self.finished:
            from mlbacktest.errors import OrderError
            raise OrderError("the run has finished: orders placed in on_end can never fill")
        self.fill_template(&o, asset, quantity, order_type, limit_price, stop_price,
                           trail_amount, trail_percent, tif, ts)
        if expire_ts is not None:
            o.expire_ts = <ts_t> expire_ts
        o.parent = parent
        if 0 <= asset < self.store.n_assets:
            ref = self.portfolio.last_price[asset]
        oid = self.place(&o, ref)
        cdef OrderEvent ev = OrderEvent.__new__(OrderEvent)  # what broker.view(oid) gives
        ev.book = self.broker
        ev.order_id = oid
        ev.status_snapshot = -1
        return ev

    cdef int64_t place(self, OrderC* o, double reference_price) except -1:
        """Store a new strategy order (no parent); returns its id.

        Before ``trade_from`` the order is validated and stored, then
        rejected at once (REASON_BEFORE_TRADING): it never reaches the
        broker. Otherwise it waits out the run's latency, if any.
        """
        cdef int64_t oid
        cdef int64_t parent = o.parent
        cdef ts_t ts = o.created_ts
        if ts < self.trade_from:
            # A child of an order refused here is refused with it, not an error (its
            # parent is no longer working): the strategy runs as it would from T on.
            if self.refused(parent):
                o.parent = -1
            oid = self.broker.submit_order(o, reference_price, False)
            self.broker.orders[oid].parent = parent
            self.broker.end_order(&self.broker.orders[oid], STATUS_REJECTED,
                                  REASON_BEFORE_TRADING, ts)
            return oid
        oid = self.broker.submit_order(o, reference_price)
        if self.latency_ns > 0:
            # a child released before this time becomes accepted when it arrives
            self.clock.add_order_arrival(ts + self.latency_ns, ORDER_ARRIVAL_PRIORITY, oid)
        return oid

    cdef bint refused(self, int64_t order_id):
        """Whether ``order_id`` names an order refused before ``trade_from``."""
        return (0 <= order_id < self.broker.n_orders
                and self.broker.orders[order_id].reason == REASON_BEFORE_TRADING)

    cdef int fill_template(self, OrderC* o, int asset, double quantity, int order_type,
                           double limit_price, double stop_price, double trail_amount,
                           double trail_percent, int tif, ts_t ts) except -1:
        """Set the fields of a new strategy order (no parent, no expiry, the run's latency)."""
        o.id = 0
        o.origin = ORIGIN_STRATEGY
        o.asset = asset
        o.type = <code_t> order_type
        o.tif = <code_t> tif
        o.quantity = quantity
        o.limit_price = limit_price
        o.stop_price = stop_price
        o.trail_amount = trail_amount
        o.trail_percent = trail_percent
        o.trail_extreme = NAN
        o.created_ts = ts
        o.active_ts = ts + self.latency_ns
        o.skip_bars = self.latency_bars
        o.expire_ts = MLB_NO_TS
        o.parent = -1
        return 0

    def submit_bracket(self, int asset, double quantity, double entry_limit, double stop_loss,
                       double take_profit, double trail_amount, double trail_percent, int tif):
        """Submit an entry with a protective leg and/or a take-profit, linked OCO, at once.

        Every leg is validated before anything is stored (all or nothing).
        NaN leaves a leg (or the entry's limit) out. Returns the three ids
        (-1 for a leg left out).
        """
        cdef OrderC entry, stop, take
        cdef ts_t ts = self.current_ts if self.started else self.first_ts
        cdef double ref = NAN
        cdef bint has_stop = not isnan(stop_loss)
        cdef bint has_trail = not (isnan(trail_amount) and isnan(trail_percent))
        cdef bint has_take = not isnan(take_profit)
        cdef int64_t eid, sid = -1, tid = -1
        if self.finished:
            from mlbacktest.errors import OrderError
            raise OrderError("the run has finished: orders placed in on_end can never fill")
        if 0 <= asset < self.store.n_assets:
            ref = self.portfolio.last_price[asset]
        self.fill_template(&entry, asset, quantity, 0 if isnan(entry_limit) else 1, entry_limit,
                           NAN, NAN, NAN, tif, ts)
        self.broker.validate(&entry, ref)
        if has_stop or has_trail:
            self.fill_template(&stop, asset, -quantity, 4 if has_trail else 2, NAN,
                               NAN if has_trail else stop_loss, trail_amount, trail_percent,
                               0, ts)
            self.broker.validate(&stop, ref)
        if has_take:
            self.fill_template(&take, asset, -quantity, 1, take_profit, NAN, NAN, NAN, 0, ts)
            self.broker.validate(&take, ref)
        cdef bint refused = ts < self.trade_from
        eid = self.broker.submit_order(&entry, ref, not refused)
        if self.latency_ns > 0 and not refused:
            self.clock.add_order_arrival(ts + self.latency_ns, ORDER_ARRIVAL_PRIORITY, eid)
        if has_stop or has_trail:
            stop.parent = eid
            sid = self.broker.submit_order(&stop, ref)
            if self.latency_ns > 0 and not refused:
                self.clock.add_order_arrival(ts + self.latency_ns, ORDER_ARRIVAL_PRIORITY, sid)
        if has_take:
            take.parent = eid
            tid = self.broker.submit_order(&take, ref)
            if self.latency_ns > 0 and not refused:
                self.clock.add_order_arrival(ts + self.latency_ns, ORDER_ARRIVAL_PRIORITY, tid)
        if refused:  # the legs are cancelled with their entry (REASON_PARENT_CLOSED)
            self.broker.end_order(&self.broker.orders[eid], STATUS_REJECTED,
                                  REASON_BEFORE_TRADING, ts)
            return eid, sid, tid
        if sid >= 0 and tid >= 0:
            self.broker.link_pair(sid, tid)
        return eid, sid, tid

    def submit_many(self, asset_ids, quantities):
        """Submit market orders ``quantities[i]`` of ``asset_ids[i]``; returns their ids.

        Zero quantities are skipped (id -1). The batch is validated before
        anything is submitted: one bad quantity raises OrderError and places
        no order. Asset ids must be valid (the Strategy helper checks them).
        """
        cdef const asset_t[::1] ids = np.ascontiguousarray(asset_ids, dtype=np.int32)
        cdef const double[::1] qty = np.ascontiguousarray(quantities, dtype=np.float64)
        cdef idx_t i
        cdef ts_t ts = self.current_ts if self.started else self.first_ts
        if ids.shape[0] != qty.shape[0]:
            raise ValueError("asset_ids and quantities must have the same length")
        for i in range(ids.shape[0]):
            if not 0 <= ids[i] < self.store.n_assets:
                from mlbacktest.errors import OrderError
                raise OrderError(f"unknown asset id {ids[i]} at position {i}")
        if self.finished:
            from mlbacktest.errors import OrderError
            raise OrderError("the run has finished: orders placed in on_end can never fill")
        # Validate the whole batch first, so a bad entry submits nothing.
        for i in range(ids.shape[0]):
            if not isfinite(qty[i]):
                from mlbacktest.errors import OrderError
                raise OrderError(
                    f"order quantity must be a finite number, got {qty[i]} at position {i}")
            if not self.broker.fractional and qty[i] != floor(qty[i]):
                from mlbacktest.errors import OrderError
                raise OrderError(f"order quantity {qty[i]} at position {i} is fractional "
                                 "but the config has fractional=False")
        out = np.empty(ids.shape[0], dtype=np.int64)
        cdef long long[::1] ov = out
        cdef OrderC o
        for i in range(ids.shape[0]):
            if qty[i] == 0.0:
                ov[i] = -1
            else:
                self.fill_template(&o, ids[i], qty[i], ORDER_MARKET, NAN, NAN, NAN, NAN,
                                   TIF_GTC, ts)
                ov[i] = self.place(&o, NAN)
        return out

    def cancel(self, long long order_id):
        """Cancel a working order; returns False if it was no longer working."""
        cdef ts_t ts = self.current_ts if self.started else self.first_ts
        return self.broker.cancel(order_id, ts, REASON_BY_STRATEGY)

    def replace(self, long long order_id, double quantity=NAN, double limit_price=NAN,
                double stop_price=NAN):
        """Replace a working order by a copy with new quantity/prices; returns the new order."""
        cdef ts_t ts = self.current_ts if self.started else self.first_ts
        if self.finished:
            from mlbacktest.errors import OrderError
            raise OrderError("the run has finished")
        if not 0 <= order_id < self.broker.n_orders:
            from mlbacktest.errors import OrderError
            raise OrderError(f"no order with id {order_id}")
        asset = self.broker.orders[order_id].asset
        new_id = self.broker.replace(order_id, quantity, limit_price, stop_price, ts,
                                     self.portfolio.last_price[asset])
        arrival = self.broker.orders[new_id].active_ts
        if self.broker.orders[new_id].status == STATUS_SUBMITTED and arrival > ts:
            self.clock.add_order_arrival(arrival, ORDER_ARRIVAL_PRIORITY, new_id)
        return self.broker.view(new_id)

    def link_oco(self, order_ids):
        """Group working orders so that a fill of one cancels (or shrinks) the others.

        Returns the group id; -1 for a group of orders all refused before
        ``trade_from`` (there is nothing to link).
        """
        ids = [int(i) for i in order_ids]
        if (len(ids) >= 2 and len(set(ids)) == len(ids)
                and all([self.refused(i) for i in ids])):
            return -1
        return self.broker.link_oco(ids)

    def schedule(self, ts_t ts, callback):
        """Call ``callback(context)`` at timestamp ``ts`` (after that timestamp's bars)."""
        if self.started and ts <= self.current_ts:
            raise ValueError("a timer must be scheduled after the current timestamp")
        ident = len(self.timers)
        self.timers.append(callback)
        self.clock.add_timer(ts, TIMER_PRIORITY, ident)
        return ident
