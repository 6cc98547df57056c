# cython: language_level=3
"""The order store and the matching loop of the simulated broker.

Fill rules (docs/semantics.md states them in full):

* Each bar is walked along a price path: open, then the two extremes in the
  order set by ``intrabar_path`` (high first, low first, or the extreme
  nearer the open first), then the close. An order triggers at the first
  point of the path where its condition holds. If the condition already
  holds where the order starts (the open, or the fill price of a parent
  that activated it on this bar) it fills at that price: a gap through a
  stop fills at the open, a limit is filled at the better open. Otherwise it
  fills at its level (the path is continuous, so the level trades).
* A market order fills at the open of the asset's next bar
  (``fill_at="next_open"``) or at the close of the bar it was placed on
  (``fill_at="close"``, look-ahead-prone). Market-on-open and
  market-on-close orders fill at the next bar's open or close.
* Within a timestamp, orders that reduce a position are filled before
  orders that open or add to one ("exits first"); within each group,
  earlier path points first, then order id.
* Slippage moves the price against the order; a limit fill is then capped at
  its limit. A fill that would take cash below zero is rejected.
"""

from cpython.mem cimport PyMem_Free, PyMem_Malloc, PyMem_Realloc
from libc.math cimport INFINITY, NAN, fabs, floor, fmax, fmin, isfinite, isnan
from libc.stdint cimport int8_t, int32_t, int64_t
from libc.stdlib cimport qsort

from mlbacktest._events cimport (
    ORDER_LIMIT, ORDER_MARKET, ORDER_MARKET_ON_CLOSE, ORDER_MARKET_ON_OPEN, ORDER_STOP,
    ORDER_STOP_LIMIT, ORDER_TRAILING_STOP, PHASE_CLOSE, PHASE_OPEN, REASON_BY_STRATEGY,
    REASON_DAY_END, REASON_FOK, REASON_GTD, REASON_INSUFFICIENT_CASH, REASON_IOC, REASON_NONE,
    REASON_HALT_CANCEL, REASON_HALTED, REASON_LEVERAGE, REASON_MARGIN, REASON_MAX_POSITIONS,
    REASON_NON_FINITE, REASON_NOTHING_HELD,
    REASON_OCO, REASON_PARENT_CLOSED, REASON_REPLACED, REASON_SHORT_NOT_ALLOWED,
    ORIGIN_DRAWDOWN_HALT, ORIGIN_MARGIN_CALL, ORIGIN_STOP_LOSS, ORIGIN_STRATEGY,
    ORIGIN_TAKE_PROFIT, ORIGIN_TIME_EXIT, ORIGIN_TRAILING_STOP, STATUS_ACCEPTED,
    STATUS_CANCELLED, STATUS_EXPIRED, STATUS_FILLED, STATUS_PARTIAL, STATUS_REJECTED,
    STATUS_SUBMITTED, TIF_DAY, TIF_FOK, TIF_GTC, TIF_GTD, TIF_IOC,
)
from mlbacktest._costs cimport commission_for, slipped_price
from mlbacktest._fillrules cimport (
    PATH_SUBMISSION, CandC, compare_cands, compare_ids, first_touch, path_points, start_trail,
    trigger,
)
from mlbacktest._portfolio cimport MLB_MAX_POSITION, MLB_QTY_RTOL, is_flat, whole_units
from mlbacktest._typedefs cimport MLB_NO_TS

import numpy as np

from mlbacktest._events import annotate
from mlbacktest.errors import OrderError

#: Names of the intrabar path modes, indexed by code.
INTRABAR_PATHS = ("ohlc", "olhc", "adaptive", "submission")



cdef inline bint working(const OrderC* o) noexcept nogil:
    return o.status <= STATUS_PARTIAL


cdef inline bint reached_broker(const OrderC* o, ts_t ts) noexcept nogil:
    """Whether ``o``'s latency is over at ``ts`` (it may still wait for its parent).

    Its arrival time has come and it has no bars left to sit out; after
    sitting out ``latency_bars`` it reaches the broker at its asset's next
    bar, where the matching loop clears ``skipped_ts`` (docs/semantics.md,
    "Latency").
    """
    return o.skip_bars == 0 and ts >= o.active_ts and o.skipped_ts == MLB_NO_TS


cdef str model_hook(object model, str method, str kind):
    """How a note names a cost model's method: ``MyModel.compute() (commission model)``."""
    return f"{type(model).__name__}.{method}() ({kind} model)"


cdef class Broker(OrderBook):
    """Simulated broker for one run.

    Parameters
    ----------
    store : BarStore
        The run's bars (for names in order views).
    portfolio : Portfolio
        The account fills are booked into.
    commission : CommissionModel, optional
        Commission of each fill (default: none).
    slippage : SlippageModel, optional
        Fill price from the raw trigger price (default: none); limit fills
        are then capped at their limit. A NaN price leaves the order working.
    columns : ColumnSource, optional
        Extra per-bar columns (bid, ask, ...) the slippage model may read.
    fractional : bool
        Whether quantities may be fractional.
    allow_short : bool
        Whether fills may open or extend a short position.
    market_at_close : bool
        Fill market orders at the close of the bar they were placed on.
    market_next_close : bool
        Fill market orders at the close of the asset's next bar (zipline's
        convention) instead of its open.
    intrabar_path : {"ohlc", "olhc", "adaptive", "submission"}
        Order of the extremes on a bar's price path; ``"submission"`` uses
        the ohlc path for prices but matches triggered orders in submission
        order (backtrader's convention) instead of path order.
    volume_cap : float
        Largest fraction of a bar's volume that one asset's fills may take
        on that bar; the rest of an order carries over (``inf``: no cap).
    reentry_same_bar : bool
        Whether an entry may fill on the bar on which a stop closed the same
        asset's position.
    children_same_bar : bool
        Whether OTO children (bracket legs) work on the rest of the bar on
        which their parent filled, or only from the next bar.
    log_status : bool
        Record status changes for ``on_order``.
    account : {"cash", "margin"}
        A cash account never lets cash go below zero; a margin account
        lets it (borrowing) within the margin requirements below.
    initial_margin, maintenance_margin : float
        Margin account: a fill that adds exposure must leave equity >=
        ``initial_margin`` x gross exposure; when equity falls below
        ``maintenance_margin`` x gross exposure at the end of a timestamp,
        positions are cut back to the initial requirement (margin call).
    margin_rate : float
        Annual interest on negative cash, accrued over calendar time.
    borrow_rate : float or array of float
        Annual fee on the market value of short positions (per asset),
        accrued over calendar time.
    max_open_positions : int
        Fills that would open a position beyond this many are rejected (-1: no limit).
    max_gross_leverage : float
        Fills that add exposure beyond this gross exposure / equity are rejected.
    max_drawdown : float
        When equity falls this fraction below its peak, trading halts:
        working orders are cancelled, positions are closed at the next
        open, and only exits fill from then on (NaN: never).
    """

    def __cinit__(self, *args, **kwargs):
        self.open_ids = NULL
        self.n_open = 0
        self.open_capacity = 0
        self.cands = NULL
        self.in_match = False
        self.has_expiring = False
        self.activated = NULL
        self.n_activated = 0
        self.scratch_capacity = 0
        self.fills = NULL
        self.n_fills = 0
        self.fill_capacity = 0
        self.log = NULL
        self.n_log = 0
        self.log_capacity = 0
        self.row_of_asset = NULL
        self.volume_left = NULL
        self.stopped_ts = NULL
        self.borrow_rate = NULL
        self.rule_stop_loss = NULL
        self.rule_take_profit = NULL
        self.rule_trailing = NULL
        self.rule_max_bars = NULL
        self.rule_peak = NULL
        self.rule_bars = NULL
        self.rule_exit_order = NULL
        self.external = False
        self.ext_queue = []

    def __init__(self, BarStore store, Portfolio portfolio, *,
                 CommissionModel commission=None, SlippageModel slippage=None,
                 ColumnSource columns=None, bint fractional=True, bint allow_short=True,
                 bint market_at_close=False, bint market_next_close=False,
                 str intrabar_path="ohlc", double volume_cap=float("inf"),
                 bint reentry_same_bar=False, bint children_same_bar=True,
                 bint log_status=False, str account="cash", double initial_margin=1.0,
                 double maintenance_margin=1.0, double margin_rate=0.0, borrow_rate=0.0,
                 int max_open_positions=-1, double max_gross_leverage=float("inf"),
                 double max_drawdown=NAN):
        cdef idx_t i
        cdef idx_t n = max(portfolio.n_assets, 1)
        if store.n_assets != portfolio.n_assets:
            raise ValueError(f"the store has {store.n_assets} assets but the portfolio "
                             f"{portfolio.n_assets}")
        self.store = store
        self.portfolio = portfolio
        self.n_assets = portfolio.n_assets
        self.pending_market_array = np.zeros(self.n_assets, dtype=np.float64)
        self.pending_market = self.pending_market_array
        self.row_of_asset = <idx_t*> PyMem_Malloc(n * sizeof(idx_t))
        self.volume_left = <double*> PyMem_Malloc(n * sizeof(double))
        self.stopped_ts = <ts_t*> PyMem_Malloc(n * sizeof(ts_t))
        if self.row_of_asset == NULL or self.volume_left == NULL or self.stopped_ts == NULL:
            raise MemoryError()
        for i in range(n):
            self.row_of_asset[i] = -1
            self.volume_left[i] = NAN
            self.stopped_ts[i] = MLB_NO_TS
        self.commission_model = CommissionModel() if commission is None else commission
        self.slippage_model = SlippageModel() if slippage is None else slippage
        try:
            self.commission_model.reset(self.n_assets)
        except BaseException as exc:
            annotate(exc, model_hook(self.commission_model, "reset", "commission"), None, None)
            raise
        try:
            self.slippage_model.reset(self.n_assets, columns)
        except BaseException as exc:
            annotate(exc, model_hook(self.slippage_model, "reset", "slippage"), None, None)
            raise
        self.fractional = fractional
        self.allow_short = allow_short
        self.market_at_close = market_at_close
        self.market_next_close = market_next_close
        if market_at_close and market_next_close:
            raise ValueError("market orders fill at the close or at the next close, not both")
        if intrabar_path not in INTRABAR_PATHS:
            raise ValueError(f"intrabar_path must be one of {INTRABAR_PATHS}, got {intrabar_path!r}")
        self.intrabar_path = INTRABAR_PATHS.index(intrabar_path)
        if not volume_cap > 0:
            raise ValueError(f"volume_cap must be > 0, got {volume_cap}")
        self.volume_cap = volume_cap
        self.reentry_same_bar = reentry_same_bar
        self.children_same_bar = children_same_bar
        self.log_enabled = log_status
        self.next_oco_group = 0
        if account not in ("cash", "margin"):
            raise ValueError(f"account must be 'cash' or 'margin', got {account!r}")
        self.margin_account = account == "margin"
        if not (0.0 < maintenance_margin <= initial_margin):
            raise ValueError("margins must satisfy 0 < maintenance_margin <= initial_margin")
        self.initial_margin = initial_margin
        self.maintenance_margin = maintenance_margin
        self.margin_rate = margin_rate
        rates = np.broadcast_to(np.asarray(borrow_rate, dtype=np.float64), (self.n_assets,))
        self.borrow_rate = <double*> PyMem_Malloc(n * sizeof(double))
        self.rule_stop_loss = <double*> PyMem_Malloc(n * sizeof(double))
        self.rule_take_profit = <double*> PyMem_Malloc(n * sizeof(double))
        self.rule_trailing = <double*> PyMem_Malloc(n * sizeof(double))
        self.rule_max_bars = <int32_t*> PyMem_Malloc(n * sizeof(int32_t))
        self.rule_peak = <double*> PyMem_Malloc(n * sizeof(double))
        self.rule_bars = <int32_t*> PyMem_Malloc(n * sizeof(int32_t))
        self.rule_exit_order = <int64_t*> PyMem_Malloc(n * sizeof(int64_t))
        if (self.borrow_rate == NULL or self.rule_stop_loss == NULL or self.rule_take_profit == NULL
                or self.rule_trailing == NULL or self.rule_max_bars == NULL
                or self.rule_peak == NULL or self.rule_bars == NULL or self.rule_exit_order == NULL):
            raise MemoryError()
        self.has_borrow = False
        for i in range(n):
            self.borrow_rate[i] = rates[i] if i < self.n_assets else 0.0
            if self.borrow_rate[i] != 0.0:
                self.has_borrow = True
            self.rule_stop_loss[i] = NAN
            self.rule_take_profit[i] = NAN
            self.rule_trailing[i] = NAN
            self.rule_max_bars[i] = 0
            self.rule_peak[i] = NAN
            self.rule_bars[i] = 0
            self.rule_exit_order[i] = -1
        self.has_rules = False
        self.total_borrow_cost = 0.0
        self.total_margin_interest = 0.0
        self.n_margin_calls = 0
        self.last_accrual_ts = MLB_NO_TS
        self.max_positions = max_open_positions
        self.n_positions = 0
        self.max_leverage = max_gross_leverage
        self.max_drawdown = max_drawdown
        self.halted = False
        self.halted_ts = MLB_NO_TS
        self.peak_equity = portfolio.cash

    def __dealloc__(self):
        PyMem_Free(self.open_ids)
        PyMem_Free(self.cands)
        PyMem_Free(self.activated)
        PyMem_Free(self.fills)
        PyMem_Free(self.log)
        PyMem_Free(self.row_of_asset)
        PyMem_Free(self.volume_left)
        PyMem_Free(self.stopped_ts)
        PyMem_Free(self.borrow_rate)
        PyMem_Free(self.rule_stop_loss)
        PyMem_Free(self.rule_take_profit)
        PyMem_Free(self.rule_trailing)
        PyMem_Free(self.rule_max_bars)
        PyMem_Free(self.rule_peak)
        PyMem_Free(self.rule_bars)
        PyMem_Free(self.rule_exit_order)

    # ------------------------------------------------------------ storage
    cdef int reserve_scratch(self, idx_t n) except -1:
        """Make the per-match scratch arrays hold ``n`` entries."""
        cdef void* p
        if n <= self.scratch_capacity:
            return 0
        n = max(n, 2 * self.scratch_capacity, 64)
        p = PyMem_Realloc(self.cands, n * sizeof(CandC))
        if p == NULL:
            raise MemoryError()
        self.cands = <CandC*> p
        p = PyMem_Realloc(self.activated, n * sizeof(idx_t))
        if p == NULL:
            raise MemoryError()
        self.activated = <idx_t*> p
        self.scratch_capacity = n
        return 0

    cdef int log_status(self, const OrderC* o, ts_t ts) except -1:
        """Record that ``o`` has just changed status (when on_order is in use)."""
        cdef idx_t cap
        cdef OrderLogC* grown
        if not self.log_enabled:
            return 0
        if self.n_log == self.log_capacity:
            cap = max(64, 2 * self.log_capacity)
            grown = <OrderLogC*> PyMem_Realloc(self.log, cap * sizeof(OrderLogC))
            if grown == NULL:
                raise MemoryError()
            self.log = grown
            self.log_capacity = cap
        self.log[self.n_log].order_id = o.id
        self.log[self.n_log].status = o.status
        self.log[self.n_log].ts = ts
        self.n_log += 1
        return 0

    def take_log(self):
        """Return and clear the recorded status changes as (order id, status, ts) tuples."""
        cdef idx_t i
        out = [(self.log[i].order_id, self.log[i].status, self.log[i].ts) for i in range(self.n_log)]
        self.n_log = 0
        return out

    # ------------------------------------------------------------ orders
    cdef int validate(self, OrderC* o, price_t reference_price) except -1:
        """Raise OrderError when ``o`` cannot be accepted as written."""
        cdef bint buy = o.quantity > 0
        cdef bint has_amount, has_percent
        if not 0 <= o.asset < self.n_assets:
            raise OrderError(f"unknown asset id {o.asset}")
        if not isfinite(o.quantity):
            raise OrderError(f"order quantity must be a finite number, got {o.quantity}")
        if o.quantity == 0.0:
            raise OrderError("order quantity must be non-zero")
        if not self.fractional and o.quantity != floor(o.quantity):
            raise OrderError(
                f"order quantity {o.quantity} is fractional but the config has fractional=False")
        if o.type == ORDER_LIMIT or o.type == ORDER_STOP_LIMIT:
            if not (isfinite(o.limit_price) and o.limit_price > 0.0):
                raise OrderError(f"limit price must be a finite number > 0, got {o.limit_price}")
        elif not isnan(o.limit_price):
            raise OrderError("only limit and stop-limit orders take a limit price")
        if o.type == ORDER_STOP or o.type == ORDER_STOP_LIMIT:
            if not (isfinite(o.stop_price) and o.stop_price > 0.0):
                raise OrderError(f"stop price must be a finite number > 0, got {o.stop_price}")
        elif o.type != ORDER_TRAILING_STOP and not isnan(o.stop_price):
            raise OrderError("only stop and stop-limit orders take a stop price")
        if o.type == ORDER_STOP_LIMIT:
            if buy and o.limit_price < o.stop_price:
                raise OrderError(
                    f"a buy stop-limit needs its limit ({o.limit_price}) at or above its stop "
                    f"({o.stop_price}): the limit is on the wrong side")
            if not buy and o.limit_price > o.stop_price:
                raise OrderError(
                    f"a sell stop-limit needs its limit ({o.limit_price}) at or below its stop "
                    f"({o.stop_price}): the limit is on the wrong side")
        has_amount = not isnan(o.trail_amount)
        has_percent = not isnan(o.trail_percent)
        if o.type == ORDER_TRAILING_STOP:
            if has_amount == has_percent:
                raise OrderError("a trailing stop takes exactly one of trail_amount and trail_percent")
            if has_amount and not (isfinite(o.trail_amount) and o.trail_amount > 0.0):
                raise OrderError(f"trail_amount must be a finite number > 0, got {o.trail_amount}")
            if has_percent and not (o.trail_percent > 0.0 and o.trail_percent < 1.0):
                raise OrderError(
                    f"trail_percent must be a fraction in (0, 1), got {o.trail_percent}")
            if not (isfinite(reference_price) and reference_price > 0.0):
                raise OrderError(
                    "a trailing stop needs a last price to trail from: the asset has no bar yet")
        elif has_amount or has_percent:
            raise OrderError("only trailing stops take trail_amount or trail_percent")
        if o.tif == TIF_GTD:
            if o.expire_ts == MLB_NO_TS:
                raise OrderError("a GTD order needs an expiry timestamp (expire_at)")
            if o.expire_ts <= o.created_ts:
                raise OrderError("a GTD order's expiry must be after the time it is placed: "
                                 "the expiry is in the past")
        elif o.expire_ts != MLB_NO_TS:
            raise OrderError("only GTD orders take an expiry timestamp")
        if not TIF_GTC <= o.tif <= TIF_GTD:
            raise OrderError(f"unknown time in force code {o.tif}")
        if o.parent < -1:
            raise OrderError(f"parent must be an order id >= 0 (or -1 for none), got {o.parent}")
        if o.parent >= 0:
            if o.parent >= self.n_orders:
                raise OrderError(f"no parent order with id {o.parent}")
            if not working(&self.orders[o.parent]):
                raise OrderError(f"parent order {o.parent} is no longer working")
        return 0

    cdef int64_t submit_order(self, OrderC* o, price_t reference_price,
                              bint activate_now=True) except -1:
        """Validate and store a new order; returns its id. Raises OrderError.

        ``o`` must have every field set except ``id``, ``status`` and the
        bookkeeping fields, which this resets.
        """
        cdef int64_t oid, k
        cdef idx_t cap
        cdef idx_t* grown
        cdef OrderC* parent
        self.validate(o, reference_price)
        o.status = STATUS_SUBMITTED
        o.reason = REASON_NONE
        o.triggered = False
        o.seen = False
        o.released = o.parent < 0
        o.skipped_ts = MLB_NO_TS
        o.considered_key = MLB_NO_TS
        o.filled = 0.0
        o.avg_price = NAN
        o.closed_ts = MLB_NO_TS
        o.active_day = -1
        o.first_child = -1
        o.next_sibling = -1
        o.oco_group = -1
        o.oco_next = -1
        o.start_ts = MLB_NO_TS
        o.start_point = 0
        o.start_price = NAN
        o.reject_need = NAN
        o.reject_have = NAN
        if o.type == ORDER_TRAILING_STOP:
            # a child re-starts from its parent's fill price when it is released
            start_trail(o, reference_price)
        oid = self.append(o)
        o = &self.orders[oid]
        if o.parent >= 0:
            parent = &self.orders[o.parent]
            if parent.first_child < 0:
                parent.first_child = oid
            else:
                k = parent.first_child
                while self.orders[k].next_sibling >= 0:
                    k = self.orders[k].next_sibling
                self.orders[k].next_sibling = oid
        if self.n_open == self.open_capacity:
            cap = max(64, 2 * self.open_capacity)
            grown = <idx_t*> PyMem_Realloc(self.open_ids, cap * sizeof(idx_t))
            if grown == NULL:
                raise MemoryError()
            self.open_ids = grown
            self.open_capacity = cap
        self.open_ids[self.n_open] = oid
        self.n_open += 1
        if o.type == ORDER_MARKET:
            self.pending_market[o.asset] += o.quantity
        self.log_status(o, o.created_ts)
        if o.tif == TIF_DAY or o.tif == TIF_GTD:
            self.has_expiring = True
        if activate_now and o.parent < 0 and o.skip_bars == 0 and o.active_ts <= o.created_ts:
            self.activate(o, o.created_ts)
        return oid

    cdef int activate(self, OrderC* o, ts_t ts) except -1:
        """Move a submitted order to accepted (it has reached the broker)."""
        if o.status == STATUS_SUBMITTED:
            o.status = STATUS_ACCEPTED
            self.log_status(o, ts)
        return 0

    cdef int accept_arrived(self, int64_t order_id, ts_t ts) except -1:
        """Latency elapsed: ``order_id`` reaches the broker at ``ts`` (if still waiting)."""
        if not 0 <= order_id < self.n_orders:
            raise IndexError(f"an order arrival for unknown order id {order_id}")
        cdef OrderC* o = &self.orders[order_id]
        if o.status == STATUS_SUBMITTED and o.released and reached_broker(o, ts):
            self.activate(o, ts)
        return 0

    cdef int end_order(self, OrderC* o, code_t status, code_t reason, ts_t ts) except -1:
        """Take a working order out of play; cascade to the orders it would have activated."""
        cdef int64_t k
        cdef OrderC* child
        cdef double rem_before
        if not working(o):
            return 0
        if o.type == ORDER_MARKET:
            self.pending_market[o.asset] -= o.quantity - o.filled
        o.status = status
        o.reason = reason
        o.closed_ts = ts
        self.log_status(o, ts)
        if status == STATUS_FILLED:
            return 0
        # Children of an order that ended early: activated for the part that
        # filled, cancelled when nothing did.
        k = o.first_child
        while k >= 0:
            child = &self.orders[k]
            k = child.next_sibling
            if not working(child) or child.status != STATUS_SUBMITTED:
                continue
            if is_flat(o.filled, o.quantity):
                self.end_order(child, STATUS_CANCELLED, REASON_PARENT_CLOSED, ts)
                continue
            rem_before = child.quantity
            if child.quantity == -o.quantity:
                # a protective leg (bracket) covers exactly what filled
                child.quantity = -o.filled
            else:
                # scaled in proportion; the product first, so 49 x 1 / 49 is 1 exactly
                child.quantity = child.quantity * o.filled / o.quantity
                if not self.fractional:
                    child.quantity = whole_units(child.quantity)
            if child.type == ORDER_MARKET:
                self.pending_market[child.asset] += child.quantity - rem_before
            if child.quantity == 0.0:
                self.end_order(child, STATUS_CANCELLED, REASON_PARENT_CLOSED, ts)
            else:
                child.released = True
                if child.type == ORDER_TRAILING_STOP:
                    start_trail(child, o.avg_price if child.asset == o.asset
                                else self.portfolio.last_price[child.asset])
                if reached_broker(child, ts):
                    self.activate(child, ts)
                if self.in_match:
                    child.start_ts = MLB_NO_TS
                    if status == STATUS_EXPIRED:
                        # expired before this bar traded: the child works on it from its open
                        self.reserve_scratch(self.n_activated + 1)
                        self.activated[self.n_activated] = child.id
                        self.n_activated += 1
                    elif child.active_ts <= ts:
                        # ended while this bar traded: the child starts on the next bar
                        # (one still in transit keeps its own, later, arrival)
                        child.active_ts = ts + 1
        return 0

    cdef bint cancel(self, int64_t order_id, ts_t ts, code_t reason) except -1:
        """Cancel a working order; False when it was no longer working."""
        if not 0 <= order_id < self.n_orders:
            raise OrderError(f"no order with id {order_id}")
        cdef OrderC* o = &self.orders[order_id]
        if not working(o):
            return False
        self.end_order(o, STATUS_CANCELLED, reason, ts)
        return True

    def replace(self, int64_t order_id, double quantity, double limit_price, double stop_price,
                ts_t ts, price_t reference_price):
        """Cancel a working order and submit a copy with new quantity/prices.

        The copy takes the original's place in its OCO group and as parent of
        its children. NaN keeps a field as it was. Returns the new id.
        """
        cdef OrderC copy
        cdef OrderC* old
        cdef OrderC* fresh
        cdef int64_t new_id, k
        if not 0 <= order_id < self.n_orders:
            raise OrderError(f"no order with id {order_id}")
        old = &self.orders[order_id]
        if not working(old):
            raise OrderError(f"order {order_id} is no longer working and cannot be replaced")
        if fabs(old.filled) > 0.0:
            raise OrderError(f"order {order_id} is partly filled; cancel it and place a new one")
        copy = old[0]
        if not isnan(quantity):
            copy.quantity = quantity
        if not isnan(limit_price):
            copy.limit_price = limit_price
        if not isnan(stop_price):
            copy.stop_price = stop_price
        copy.created_ts = ts  # the copy keeps whatever latency the original had left
        if old.type == ORDER_TRAILING_STOP:
            copy.stop_price = NAN
        if old.released:
            copy.parent = -1  # its parent has filled: nothing to wait for or check
        new_id = self.submit_order(&copy, reference_price, False)
        old = &self.orders[order_id]
        fresh = &self.orders[new_id]
        fresh.parent = old.parent
        fresh.released = old.released
        fresh.seen = old.seen
        fresh.active_day = old.active_day
        fresh.skipped_ts = old.skipped_ts
        if old.status != STATUS_SUBMITTED:
            self.activate(fresh, ts)
        # the new order inherits the children and the OCO membership
        fresh.first_child = old.first_child
        old.first_child = -1
        k = fresh.first_child
        while k >= 0:
            self.orders[k].parent = new_id
            k = self.orders[k].next_sibling
        if old.oco_group >= 0:
            fresh.oco_group = old.oco_group
            fresh.oco_next = old.oco_next
            k = old.oco_next
            while self.orders[k].oco_next != order_id:
                k = self.orders[k].oco_next
            self.orders[k].oco_next = new_id
            old.oco_group = -1
            old.oco_next = -1
        self.end_order(old, STATUS_CANCELLED, REASON_REPLACED, ts)
        return new_id

    cdef int64_t link_pair(self, int64_t a, int64_t b) noexcept:
        """Make two fresh orders one OCO group (no checks: for the broker's own use)."""
        cdef int64_t g = self.next_oco_group
        self.orders[a].oco_group = g
        self.orders[a].oco_next = b
        self.orders[b].oco_group = g
        self.orders[b].oco_next = a
        self.next_oco_group += 1
        return g

    def link_oco(self, order_ids):
        """Put working orders into one new OCO group; returns the group id."""
        ids = [int(i) for i in order_ids]
        cdef int64_t g = self.next_oco_group
        cdef Py_ssize_t j
        cdef OrderC* o
        if len(ids) < 2:
            raise OrderError("an OCO group needs at least two orders")
        if len(set(ids)) != len(ids):
            raise OrderError("an OCO group lists an order twice")
        for oid in ids:
            if not 0 <= oid < self.n_orders:
                raise OrderError(f"no order with id {oid}")
            o = &self.orders[<int64_t> oid]
            if not working(o):
                raise OrderError(f"order {oid} is no longer working")
            if o.oco_group >= 0:
                raise OrderError(f"order {oid} is already in OCO group {o.oco_group}")
        for j in range(len(ids)):
            o = &self.orders[<int64_t> ids[j]]
            o.oco_group = g
            o.oco_next = ids[(j + 1) % len(ids)]
        self.next_oco_group += 1
        return g

    cdef int note_model_error(self, object exc, object model, str method, ts_t ts,
                              asset_t asset) except -1:
        """Add a note naming the cost model's method, the timestamp and the asset to ``exc``."""
        kind = "commission" if isinstance(model, CommissionModel) else "slippage"
        annotate(exc, model_hook(model, method, kind), self.store.to_datetime(ts),
                 self.store.asset_names[asset])
        return 0

    # ------------------------------------------------------------ fills
    cdef int add_fill(self, const FillC* fill) except -1:
        cdef idx_t cap
        cdef FillC* grown
        if self.n_fills == self.fill_capacity:
            cap = max(256, 2 * self.fill_capacity)
            grown = <FillC*> PyMem_Realloc(self.fills, cap * sizeof(FillC))
            if grown == NULL:
                raise MemoryError()
            self.fills = grown
            self.fill_capacity = cap
        self.fills[self.n_fills] = fill[0]
        self.n_fills += 1
        return 0

    cdef int execute(self, OrderC* o, BarStore store, idx_t row, const CandC* cand,
                     ts_t ts) except -1:
        """Fill what the bar allows of ``o`` at the candidate's raw price, or reject it."""
        cdef price_t raw = cand.price
        cdef Portfolio pf = self.portfolio
        cdef qty_t remaining = o.quantity - o.filled
        cdef qty_t q = remaining
        cdef double avail, comm, slip_cost, vol, old_pos, new_pos
        cdef int reason
        cdef price_t price
        cdef FillC f
        if o.origin != ORIGIN_STRATEGY:
            # An exit the broker placed itself closes what is held when it fills:
            # a strategy fill earlier on this bar may have shrunk, grown, closed or
            # reversed the position it was placed against (docs/semantics.md,
            # "Exits the broker places").
            old_pos = pf.position[o.asset]
            if old_pos == 0.0 or (old_pos > 0.0) == (remaining > 0.0):
                self.end_order(o, STATUS_CANCELLED, REASON_NOTHING_HELD, ts)
                return 0
            if o.origin != ORIGIN_MARGIN_CALL or fabs(remaining) > fabs(old_pos):
                # a margin call's cut keeps its size, capped at the position
                q = -old_pos
                if o.type == ORDER_MARKET:
                    self.pending_market[o.asset] += q - remaining
                o.quantity = o.filled + q
                remaining = q
        if self.volume_cap < INFINITY:
            avail = self.volume_left[o.asset]
            if fabs(q) > avail:
                if o.tif == TIF_FOK:
                    self.end_order(o, STATUS_CANCELLED, REASON_FOK, ts)
                    return 0
                q = avail if q > 0 else -avail
                if not self.fractional:
                    q = whole_units(q)
                if q == 0.0:
                    return 0
        vol = store.volume[row]
        try:
            price = slipped_price(self.slippage_model, o.asset, q, raw, vol, ts, row)
        except BaseException as exc:
            self.note_model_error(exc, self.slippage_model, "fill_price", ts, o.asset)
            raise
        if isnan(price):
            return 0  # the model cannot fill it on this bar: it stays working
        if o.type == ORDER_LIMIT or o.type == ORDER_STOP_LIMIT:
            price = fmin(price, o.limit_price) if q > 0 else fmax(price, o.limit_price)
        try:
            comm = commission_for(self.commission_model, o.asset, q, price, ts)
        except BaseException as exc:
            self.note_model_error(exc, self.commission_model, "compute", ts, o.asset)
            raise
        reason = self.check_risk(o, q, price, comm)
        if reason != REASON_NONE:
            self.end_order(o, STATUS_REJECTED, <code_t> reason, ts)
            return 0
        old_pos = pf.position[o.asset]
        slip_cost = fabs(q) * fabs(price - raw)
        if (o.type == ORDER_STOP or o.type == ORDER_TRAILING_STOP or o.type == ORDER_STOP_LIMIT) \
                and pf.position[o.asset] != 0.0 and (pf.position[o.asset] > 0.0) != (q > 0.0):
            self.stopped_ts[o.asset] = ts
        pf.close_segment(o.asset, ts, &f.held_high, &f.held_low)
        pf.apply_fill(o.asset, q, price, comm, slip_cost)
        new_pos = pf.position[o.asset]
        if old_pos == 0.0 and new_pos != 0.0:
            self.n_positions += 1
        elif old_pos != 0.0 and new_pos == 0.0:
            self.n_positions -= 1
        if new_pos != 0.0 and (old_pos == 0.0 or (old_pos > 0.0) != (new_pos > 0.0)):
            # a position opened (or reversed): position rules start from here
            self.rule_peak[o.asset] = price
            self.rule_bars[o.asset] = 0
        try:
            self.commission_model.record_fill(o.asset, q, price, ts)
        except BaseException as exc:
            self.note_model_error(exc, self.commission_model, "record_fill", ts, o.asset)
            raise
        try:
            self.slippage_model.record_fill(o.asset, q, price, vol, ts, row)
        except BaseException as exc:
            self.note_model_error(exc, self.slippage_model, "record_fill", ts, o.asset)
            raise
        f.ts = ts
        f.asset = o.asset
        f.order_id = o.id
        f.quantity = q
        f.price = price
        f.commission = comm
        f.slippage = slip_cost
        self.add_fill(&f)
        if self.volume_cap < INFINITY:
            self.volume_left[o.asset] -= fabs(q)
        if isnan(o.avg_price):
            o.avg_price = price
        else:
            o.avg_price = (o.avg_price * fabs(o.filled) + price * fabs(q)) / fabs(o.filled + q)
        o.filled += q
        if o.type == ORDER_MARKET:
            self.pending_market[o.asset] -= q
        self.after_fill(o, q, cand, ts)
        return 0

    cdef int after_fill(self, OrderC* o, qty_t q, const CandC* cand, ts_t ts) except -1:
        """Status, OCO siblings and OTO children after ``o`` filled ``q``."""
        cdef int64_t k, best, last
        cdef OrderC* other
        cdef double left
        cdef bint complete = is_flat(o.quantity - o.filled, o.quantity)
        if complete:
            o.filled = o.quantity
            self.end_order(o, STATUS_FILLED, REASON_NONE, ts)
        elif o.status != STATUS_PARTIAL:
            o.status = STATUS_PARTIAL
            self.log_status(o, ts)
        # OCO: a complete fill cancels the group; a partial fill shrinks it.
        if o.oco_group >= 0:
            # the other members, in id order (groups are small: a scan per member)
            last = -1
            while True:
                best = -1
                k = o.oco_next
                while k >= 0 and k != o.id:
                    if k > last and (best < 0 or k < best):
                        best = k
                    k = self.orders[k].oco_next
                if best < 0:
                    break
                last = best
                other = &self.orders[best]
                if not working(other):
                    continue
                if complete:
                    self.end_order(other, STATUS_CANCELLED, REASON_OCO, ts)
                    continue
                left = fabs(other.quantity - other.filled) - fabs(q)
                if left <= MLB_QTY_RTOL * fabs(other.quantity):
                    self.end_order(other, STATUS_CANCELLED, REASON_OCO, ts)
                else:
                    if other.type == ORDER_MARKET:
                        self.pending_market[other.asset] -= (
                            (other.quantity - other.filled) - (left if other.quantity > 0 else -left))
                    other.quantity = other.filled + (left if other.quantity > 0 else -left)
        # OTO: a complete fill activates the children, from this point of the bar on.
        if complete:
            k = o.first_child
            while k >= 0:
                other = &self.orders[k]
                k = other.next_sibling
                if other.status != STATUS_SUBMITTED:
                    continue
                other.released = True
                if other.type == ORDER_TRAILING_STOP:
                    # a protective leg trails from the moment its position exists
                    start_trail(other, o.avg_price if other.asset == o.asset
                                else self.portfolio.last_price[other.asset])
                if not reached_broker(other, ts):
                    continue  # still in transit: it reaches the broker later
                self.activate(other, ts)
                if not self.children_same_bar or other.asset != o.asset:
                    # works from the asset's next bar (another asset's path cannot be
                    # placed against this fill's point in time)
                    other.start_ts = MLB_NO_TS
                    other.active_ts = ts + 1
                    continue
                other.start_ts = ts
                other.start_point = cand.seg
                other.start_price = cand.price
                other.start_time = cand.time
                self.reserve_scratch(self.n_activated + 1)
                self.activated[self.n_activated] = other.id
                self.n_activated += 1
        return 0

    # ------------------------------------------------------------ accounts and risk
    cdef int check_risk(self, OrderC* o, qty_t q, price_t price, double comm) except -1:
        """Reason code that forbids filling ``q`` of ``o`` at ``price`` (REASON_NONE: allowed)."""
        cdef Portfolio pf = self.portfolio
        cdef asset_t a = o.asset
        cdef double pos = pf.position[a]
        cdef double new_pos = pos + q
        cdef double cash_after = pf.cash - q * price - comm
        cdef double lp = pf.last_price[a]
        cdef double value, gross, value_after, gross_after, equity_after
        cdef bint reducing = fabs(new_pos) <= fabs(pos) and new_pos * pos >= 0.0
        if isnan(lp):
            lp = price  # no close seen yet: the ledger values the position at the fill
        # In every configuration, cash, the position's value, the positions value
        # and gross exposure of the account, and equity stay finite.
        value_after = new_pos * price
        value = (pf.net_value - pos * lp) + value_after
        gross = (pf.gross_value - fabs(pos * lp)) + fabs(value_after)
        if not (isfinite(cash_after) and isfinite(value_after) and isfinite(value)
                and isfinite(gross) and isfinite(cash_after + value)
                and fabs(new_pos) <= MLB_MAX_POSITION):
            o.reject_need = cash_after
            o.reject_have = value_after
            return REASON_NON_FINITE
        # a residue the ledger snaps to flat is not a short (docs/semantics.md)
        if not self.allow_short and new_pos < 0.0 and not is_flat(new_pos, fmax(fabs(pos), fabs(q))):
            return REASON_SHORT_NOT_ALLOWED
        if self.halted and not reducing:
            return REASON_HALTED
        if self.max_positions >= 0 and pos == 0.0 and self.n_positions >= self.max_positions:
            return REASON_MAX_POSITIONS
        if not self.margin_account and cash_after < 0.0:
            o.reject_need = q * price + comm
            o.reject_have = pf.cash
            return REASON_INSUFFICIENT_CASH
        if reducing or not (self.margin_account or self.max_leverage < INFINITY):
            return REASON_NONE
        # running totals: O(1) per fill instead of a pass over every asset
        value = pf.net_value
        gross = pf.gross_value
        if pos != 0.0:
            value -= pos * lp
            gross -= fabs(pos * lp)
        value_after = value + new_pos * price
        gross_after = gross + fabs(new_pos * price)
        equity_after = cash_after + value_after
        if self.margin_account and self.initial_margin * gross_after > equity_after:
            o.reject_need = self.initial_margin * gross_after
            o.reject_have = equity_after
            return REASON_MARGIN
        if gross_after > self.max_leverage * equity_after:
            o.reject_need = gross_after
            o.reject_have = equity_after
            return REASON_LEVERAGE
        return REASON_NONE

    cdef int accrue(self, ts_t ts) except -1:
        """Charge borrow fees on shorts and interest on negative cash up to ``ts``."""
        cdef Portfolio pf = self.portfolio
        cdef double years, fee = 0.0, interest = 0.0, q
        cdef int a
        if self.last_accrual_ts != MLB_NO_TS and ts > self.last_accrual_ts:
            years = (ts - self.last_accrual_ts) / (365.0 * 86_400e9)
            if self.has_borrow:
                for a in range(self.n_assets):
                    q = pf.position[a]
                    if q < 0.0:
                        # the rate for the period first: value x rate alone can overflow
                        # (a short worth 1.1e308 at 200 % a year) though the fee is finite
                        fee -= q * pf.last_price[a] * (self.borrow_rate[a] * years)
            if self.margin_rate > 0.0 and pf.cash < 0.0:
                interest = -pf.cash * (self.margin_rate * years)
            pf.cash -= fee + interest
            pf.version += 1
            self.total_borrow_cost += fee
            self.total_margin_interest += interest
        self.last_accrual_ts = ts
        return 0

    cdef int64_t internal_order(self, asset_t asset, qty_t quantity, code_t order_type,
                                price_t limit_price, price_t stop_price, code_t origin,
                                ts_t ts) except -1:
        """Submit an order on the broker's own account (rules, margin calls, halts)."""
        cdef OrderC o
        o.asset = asset
        o.type = order_type
        o.tif = TIF_GTC
        o.origin = origin
        o.quantity = quantity
        o.limit_price = limit_price
        o.stop_price = stop_price
        o.trail_amount = NAN
        o.trail_percent = NAN
        o.trail_extreme = NAN
        o.created_ts = ts
        o.active_ts = ts
        o.skip_bars = 0
        o.expire_ts = MLB_NO_TS
        o.parent = -1
        return self.submit_order(&o, NAN)

    def set_rules(self, int asset, double stop_loss, double take_profit, double trailing,
                  int max_bars):
        """Attach position rules to ``asset`` (-1: every asset); NaN / 0 turn a rule off."""
        cdef int a
        if not -1 <= asset < self.n_assets:
            raise IndexError(f"asset id {asset} out of range: {self.n_assets} assets (-1: all)")
        for a in range(self.n_assets):
            if asset >= 0 and a != asset:
                continue
            self.rule_stop_loss[a] = stop_loss
            self.rule_take_profit[a] = take_profit
            self.rule_trailing[a] = trailing
            self.rule_max_bars[a] = max_bars
        self.has_rules = False
        for a in range(self.n_assets):
            if (not isnan(self.rule_stop_loss[a]) or not isnan(self.rule_take_profit[a])
                    or not isnan(self.rule_trailing[a]) or self.rule_max_bars[a] > 0):
                self.has_rules = True
                break

    cdef idx_t scan_rules(self, BarStore store, const idx_t* starts, const idx_t* stops,
                          int n_ranges, ts_t ts, idx_t n_cand) except -1:
        """Turn position rules that trigger on this bar into exit candidates."""
        cdef idx_t r, row
        cdef asset_t a
        cdef double pos, entry, level, price, best_price = NAN
        cdef double p[4]
        cdef int k, best, seg, best_seg = 0
        cdef double time, best_time
        cdef code_t origin = ORIGIN_STRATEGY, best_type = ORDER_STOP
        cdef bint long_
        cdef int64_t oid
        cdef double[::1] position = self.portfolio.position
        cdef double[::1] avg_cost = self.portfolio.avg_cost
        for r in range(n_ranges):
            for row in range(starts[r], stops[r]):
                a = store.asset[row]
                pos = position[a]
                if pos == 0.0:
                    continue
                if isnan(self.rule_stop_loss[a]) and isnan(self.rule_take_profit[a]) \
                        and isnan(self.rule_trailing[a]):
                    continue
                long_ = pos > 0.0
                entry = avg_cost[a]
                path_points(self.intrabar_path, store.open[row], store.high[row], store.low[row],
                            store.close[row], p)
                best = 4
                best_time = 4.0
                if not isnan(self.rule_stop_loss[a]):
                    level = entry * (1.0 - self.rule_stop_loss[a]) if long_ \
                        else entry * (1.0 + self.rule_stop_loss[a])
                    k = first_touch(p, 0, p[0], 0.0, level, not long_, &price, &seg, &time)
                    if k >= 0 and time < best_time:
                        best, best_price, best_type, origin = k, price, ORDER_STOP, ORIGIN_STOP_LOSS
                        best_seg, best_time = seg, time
                if not isnan(self.rule_trailing[a]):
                    level = self.rule_peak[a] * (1.0 - self.rule_trailing[a]) if long_ \
                        else self.rule_peak[a] * (1.0 + self.rule_trailing[a])
                    k = first_touch(p, 0, p[0], 0.0, level, not long_, &price, &seg, &time)
                    if k >= 0 and time < best_time:
                        best, best_price, best_type, origin = (k, price, ORDER_STOP,
                                                               ORIGIN_TRAILING_STOP)
                        best_seg, best_time = seg, time
                if not isnan(self.rule_take_profit[a]):
                    level = entry * (1.0 + self.rule_take_profit[a]) if long_ \
                        else entry * (1.0 - self.rule_take_profit[a])
                    k = first_touch(p, 0, p[0], 0.0, level, long_, &price, &seg, &time)
                    if k >= 0 and time < best_time:
                        best, best_price, best_type, origin = (k, price, ORDER_LIMIT,
                                                               ORIGIN_TAKE_PROFIT)
                        best_seg, best_time = seg, time
                if best == 4:
                    continue
                oid = self.internal_order(
                    a, -pos, best_type,
                    best_price if best_type == ORDER_LIMIT else NAN,
                    best_price if best_type == ORDER_STOP else NAN, origin, ts)
                # A rule exit lives for this bar only: what does not fill is
                # cancelled, and the rule triggers again on the next bar.
                self.orders[oid].seen = True
                self.orders[oid].tif = TIF_IOC
                self.orders[oid].considered_key = 2 * ts + PHASE_OPEN
                self.reserve_scratch(n_cand + 1)
                self.cands[n_cand].id = oid
                self.cands[n_cand].time = best_time
                self.cands[n_cand].seg = best_seg
                self.cands[n_cand].price = best_price
                n_cand += 1
        return n_cand

    cdef int end_of_step(self, BarStore store, const idx_t* starts, const idx_t* stops,
                         int n_ranges, ts_t ts) except -1:
        """After the strategy ran: time exits, trailing peaks, margin calls, drawdown halt."""
        cdef Portfolio pf = self.portfolio
        cdef idx_t r, row, k
        cdef asset_t a
        cdef double pos, close, value, gross, equity, scale, keep, q
        cdef int64_t ex
        cdef OrderC* o
        if self.has_rules:
            for r in range(n_ranges):
                for row in range(starts[r], stops[r]):
                    a = store.asset[row]
                    pos = pf.position[a]
                    if pos == 0.0:
                        continue
                    close = store.close[row]
                    self.rule_peak[a] = fmax(self.rule_peak[a], close) if pos > 0.0 \
                        else fmin(self.rule_peak[a], close)
                    self.rule_bars[a] += 1
                    if self.rule_max_bars[a] > 0 and self.rule_bars[a] >= self.rule_max_bars[a]:
                        ex = self.rule_exit_order[a]
                        if ex >= 0 and working(&self.orders[ex]):
                            continue
                        self.rule_exit_order[a] = self.internal_order(
                            a, -pos, ORDER_MARKET_ON_OPEN, NAN, NAN, ORIGIN_TIME_EXIT, ts)
        if not (self.margin_account or not isnan(self.max_drawdown)):
            return 0
        pf.sync_exposures()
        value = pf.net_value
        gross = pf.gross_value
        equity = pf.cash + value
        if self.margin_account and gross > 0.0 and equity < self.maintenance_margin * gross:
            # Margin call: cut every position back so the initial requirement holds again.
            self.n_margin_calls += 1
            scale = fmax(equity, 0.0) / (self.initial_margin * gross)
            for k in range(self.n_open):
                o = &self.orders[self.open_ids[k]]
                if working(o) and o.origin == ORIGIN_MARGIN_CALL:
                    self.end_order(o, STATUS_CANCELLED, REASON_REPLACED, ts)
            for a in range(self.n_assets):
                pos = pf.position[a]
                if pos == 0.0:
                    continue
                keep = pos * scale
                if not self.fractional:
                    keep = whole_units(keep)
                q = keep - pos
                if q != 0.0:
                    self.internal_order(a, q, ORDER_MARKET_ON_OPEN, NAN, NAN, ORIGIN_MARGIN_CALL, ts)
        if isnan(self.max_drawdown) or self.halted:
            return 0
        self.peak_equity = fmax(self.peak_equity, equity)
        if equity <= self.peak_equity * (1.0 - self.max_drawdown):
            self.halted = True
            self.halted_ts = ts
            for k in range(self.n_open):
                o = &self.orders[self.open_ids[k]]
                if working(o):
                    self.end_order(o, STATUS_CANCELLED, REASON_HALT_CANCEL, ts)
            for a in range(self.n_assets):
                pos = pf.position[a]
                if pos != 0.0:
                    self.internal_order(a, -pos, ORDER_MARKET_ON_OPEN, NAN, NAN,
                                        ORIGIN_DRAWDOWN_HALT, ts)
        return 0

    # ------------------------------------------------------------ matching
    cdef int run_candidates(self, BarStore store, idx_t n_cand, ts_t ts) except -1:
        """Execute triggered candidates: exits first, then the rest; earlier on the path first.

        Within each group candidates go by their fill time along the bar's
        path, then order id (``intrabar_path="submission"``: by id only).
        """
        cdef idx_t c, row
        cdef int exits_pass
        cdef OrderC* o
        cdef double pos, rem
        cdef double[::1] position = self.portfolio.position
        if n_cand > 1:
            qsort(self.cands, n_cand, sizeof(CandC),
                  compare_ids if self.intrabar_path == PATH_SUBMISSION else compare_cands)
        for exits_pass in range(1, -1, -1):
            for c in range(n_cand):
                o = &self.orders[self.cands[c].id]
                if not working(o) or o.status == STATUS_SUBMITTED:
                    continue
                rem = o.quantity - o.filled
                pos = position[o.asset]
                if exits_pass:
                    if pos == 0.0 or (pos > 0.0) == (rem > 0.0):
                        continue
                elif (not self.reentry_same_bar and self.stopped_ts[o.asset] == ts
                      and (pos == 0.0 or (pos > 0.0) == (rem > 0.0))):
                    continue
                row = self.row_of_asset[o.asset]
                self.execute(o, store, row, &self.cands[c], ts)
        # IOC/FOK orders still working after their first bar are cancelled.
        for c in range(n_cand):
            o = &self.orders[self.cands[c].id]
            if working(o) and (o.tif == TIF_IOC or o.tif == TIF_FOK):
                self.end_order(o, STATUS_CANCELLED, REASON_IOC if o.tif == TIF_IOC else REASON_FOK, ts)
        return 0

    cdef int consider(self, OrderC* o, BarStore store, idx_t row, ts_t ts, int phase,
                      idx_t* n_cand) except -1:
        """Add a released, working order with a bar at ``ts`` to the candidates if it triggers."""
        cdef bint close_market = o.type == ORDER_MARKET and self.market_at_close
        cdef bint started_here = o.start_ts == ts
        cdef bint first_bar
        cdef int point, start, seg
        cdef double p[4]
        cdef double price, start_price, start_time, time
        cdef ts_t key = 2 * ts + phase
        if o.considered_key == key:
            return 0  # already looked at in this pass
        if phase == PHASE_CLOSE and not (close_market or (started_here and o.start_point == 3)):
            return 0  # the close phase is for close-mode market orders and orders freed at the close
        if phase == PHASE_OPEN and close_market:
            return 0
        if ts < o.active_ts:
            return 0
        if o.skip_bars > 0:
            # the bar it was placed on does not count (its close phase, fill_at="close")
            if o.skipped_ts != ts and (phase == PHASE_OPEN or ts > o.created_ts):
                o.skip_bars -= 1
                o.skipped_ts = ts
            return 0
        if o.skipped_ts == ts:
            return 0  # this bar was its last one in transit
        o.considered_key = key
        if o.status == STATUS_SUBMITTED:
            self.activate(o, ts)
        if o.tif == TIF_DAY and o.active_day < 0:
            o.active_day = store.day[row]
        first_bar = not o.seen
        if not started_here and not first_bar and phase == PHASE_OPEN:
            # the path spans [low, high]: a level outside it cannot be touched
            if o.type == ORDER_LIMIT:
                if (store.low[row] > o.limit_price) if (o.quantity - o.filled) > 0 \
                        else (store.high[row] < o.limit_price):
                    return 0
            elif o.type == ORDER_STOP or o.type == ORDER_TRAILING_STOP:
                if (store.high[row] < o.stop_price) if (o.quantity - o.filled) > 0 \
                        else (store.low[row] > o.stop_price):
                    return 0
        path_points(self.intrabar_path, store.open[row], store.high[row], store.low[row],
                    store.close[row], p)
        if started_here:
            start = o.start_point
            start_price = o.start_price
            start_time = o.start_time
        elif phase == PHASE_CLOSE:
            start = 3
            start_price = p[3]
            start_time = 3.0
        else:
            start = 0
            start_price = p[0]
            start_time = 0.0
        if first_bar:
            o.seen = True
        point = trigger(o, p, start, start_price, start_time, self.market_next_close, &price,
                        &seg, &time)
        if point < 0:
            if first_bar and (o.tif == TIF_IOC or o.tif == TIF_FOK):
                self.end_order(o, STATUS_CANCELLED,
                               REASON_IOC if o.tif == TIF_IOC else REASON_FOK, ts)
            return 0
        self.cands[n_cand[0]].id = o.id
        self.cands[n_cand[0]].time = time
        self.cands[n_cand[0]].seg = seg
        self.cands[n_cand[0]].price = price
        n_cand[0] += 1
        return 0

    cdef idx_t match(self, BarStore store, const idx_t* starts, const idx_t* stops,
                     int n_ranges, ts_t ts, int phase) except -1:
        """Match working orders against the bars of rows ``starts[r]:stops[r]``.

        ``phase`` is PHASE_OPEN at the start of a timestamp (every order
        type, but market orders only in next-open mode) or PHASE_CLOSE
        after the strategy ran (market orders in close mode, and orders
        released by a fill at this close). Returns the number of fills added.
        """
        cdef idx_t n_before = self.n_fills
        cdef idx_t r, i, j, k, kept, row, n_cand, tmp
        cdef int32_t day_now
        cdef OrderC* o
        cdef double close
        cdef bint has_trailing = False
        cdef const asset_t[::1] asset = store.asset
        if self.external:
            # a venue matches: only what it reported is booked, at the open of the timestamp
            if phase == PHASE_OPEN and len(self.ext_queue) > 0:
                return self.book_external(ts)
            return 0
        if phase == PHASE_OPEN and self.volume_cap < INFINITY:
            # one volume budget per bar, shared by the open and close phases
            for r in range(n_ranges):
                for i in range(starts[r], stops[r]):
                    self.volume_left[asset[i]] = self.volume_cap * store.volume[i]
        if self.n_open == 0 and not (self.has_rules and phase == PHASE_OPEN):
            return 0
        for r in range(n_ranges):
            for i in range(starts[r], stops[r]):
                self.row_of_asset[asset[i]] = i
        day_now = store.day[starts[0]]
        self.reserve_scratch(self.n_open)
        self.in_match = True
        self.n_activated = 0
        # Expiry first, for every order (bar or not for its asset), so that an
        # expiry is never pre-empted by another order's first-bar cancel.
        if self.has_expiring:
            for k in range(self.n_open):
                o = &self.orders[self.open_ids[k]]
                if not working(o):
                    continue
                if o.tif == TIF_GTD and ts > o.expire_ts:
                    self.end_order(o, STATUS_EXPIRED, REASON_GTD, ts)
                elif o.tif == TIF_DAY and o.active_day >= 0 and day_now > o.active_day:
                    self.end_order(o, STATUS_EXPIRED, REASON_DAY_END, ts)
        n_cand = 0
        kept = 0
        for k in range(self.n_open):
            o = &self.orders[self.open_ids[k]]
            if not working(o):
                continue
            self.open_ids[kept] = self.open_ids[k]
            kept += 1
            if o.type == ORDER_TRAILING_STOP:
                has_trailing = True
            row = self.row_of_asset[o.asset]
            if row < 0:
                continue
            if not o.released:
                # waiting for its parent; its own latency runs meanwhile
                if ts >= o.active_ts and o.skipped_ts != ts:
                    if o.skip_bars > 0:
                        if phase == PHASE_OPEN or ts > o.created_ts:
                            o.skip_bars -= 1
                            o.skipped_ts = ts
                    else:
                        # its asset's first bar after the bars it sat out: it is at
                        # the broker from here on (accepted once its parent frees it)
                        o.skipped_ts = MLB_NO_TS
                continue
            self.consider(o, store, row, ts, phase, &n_cand)
        self.n_open = kept
        if phase == PHASE_OPEN and self.has_rules:
            n_cand = self.scan_rules(store, starts, stops, n_ranges, ts, n_cand)
        self.run_candidates(store, n_cand, ts)
        # Orders released during this pass (children of fills, children of
        # parents that ended) work on the rest of this bar, in id order.
        while self.n_activated > 0:
            for i in range(1, self.n_activated):
                tmp = self.activated[i]
                j = i - 1
                while j >= 0 and self.activated[j] > tmp:
                    self.activated[j + 1] = self.activated[j]
                    j -= 1
                self.activated[j + 1] = tmp
            self.reserve_scratch(self.n_activated)
            n_cand = 0
            for k in range(self.n_activated):
                o = &self.orders[self.activated[k]]
                row = self.row_of_asset[o.asset]
                if working(o) and row >= 0 and o.released:
                    self.consider(o, store, row, ts, phase, &n_cand)
            self.n_activated = 0
            self.run_candidates(store, n_cand, ts)
        self.in_match = False
        # Trailing stops follow the close.
        if has_trailing and phase == PHASE_OPEN:
            for k in range(self.n_open):
                o = &self.orders[self.open_ids[k]]
                if o.type != ORDER_TRAILING_STOP or not working(o) or not o.released:
                    continue  # a leg waiting for its parent does not trail yet
                row = self.row_of_asset[o.asset]
                if row < 0:
                    continue
                close = store.close[row]
                if o.quantity < 0:
                    if close > o.trail_extreme:
                        o.trail_extreme = close
                        o.stop_price = (close - o.trail_amount if isnan(o.trail_percent)
                                        else close * (1.0 - o.trail_percent))
                else:
                    if close < o.trail_extreme:
                        o.trail_extreme = close
                        o.stop_price = (close + o.trail_amount if isnan(o.trail_percent)
                                        else close * (1.0 + o.trail_percent))
        for r in range(n_ranges):
            for i in range(starts[r], stops[r]):
                self.row_of_asset[asset[i]] = -1
        return self.n_fills - n_before

    # ------------------------------------------------------------ external matching
    cdef idx_t book_external(self, ts_t ts) except -1:
        """Book the venue's fills and status changes queued since the last timestamp.

        A fill goes through the same ledger as an internal one (portfolio,
        fill record, order status, OCO siblings, OTO children); its price and
        commission are the venue's and its slippage is 0. A fill of an order
        that already ended here (cancelled, but filled at the venue before
        the cancel arrived) is booked too: the venue's account is the truth.
        Returns the number of fills added.
        """
        cdef idx_t n_before = self.n_fills
        cdef Portfolio pf = self.portfolio
        cdef OrderC* o
        cdef FillC f
        cdef CandC cand
        cdef int64_t oid
        cdef int kind
        cdef double q, price, comm, old_pos, new_pos
        cdef ts_t fts
        queue = self.ext_queue
        self.ext_queue = []
        for item in queue:
            kind, oid, q, price, comm, fts = item
            o = &self.orders[oid]
            if kind >= 0:  # a status change
                if working(o):
                    self.end_order(o, <code_t> kind, REASON_NONE, ts)
                continue
            old_pos = pf.position[o.asset]
            pf.close_segment(o.asset, ts, &f.held_high, &f.held_low)
            pf.apply_fill(o.asset, q, price, comm, 0.0)
            new_pos = pf.position[o.asset]
            if old_pos == 0.0 and new_pos != 0.0:
                self.n_positions += 1
            elif old_pos != 0.0 and new_pos == 0.0:
                self.n_positions -= 1
            f.ts = fts
            f.asset = o.asset
            f.order_id = o.id
            f.quantity = q
            f.price = price
            f.commission = comm
            f.slippage = 0.0
            self.add_fill(&f)
            if isnan(o.avg_price):
                o.avg_price = price
            else:
                o.avg_price = (o.avg_price * fabs(o.filled) + price * fabs(q)) / fabs(o.filled + q)
            o.filled += q
            if working(o):
                if o.type == ORDER_MARKET:
                    self.pending_market[o.asset] -= q
                cand.time = 0.0
                cand.id = o.id
                cand.price = price
                cand.seg = 0
                self.after_fill(o, q, &cand, ts)
        self.n_activated = 0
        return self.n_fills - n_before

    def set_external(self, bint on):
        """Switch external matching on: orders go to a venue and are never matched here.

        Orders are still validated, stored and given ids as usual; the venue's
        fills and status changes come back through :meth:`queue_external_fill`
        and :meth:`queue_external_status`.
        """
        self.external = on

    def queue_external_fill(self, int64_t order_id, double quantity, double price,
                            double commission, ts_t ts):
        """Queue a venue's fill of ``order_id``; booked at the open of the next timestamp.

        Raises
        ------
        ValueError
            For an unknown order, a quantity of the wrong sign or zero, or a
            price that is not finite and positive.
        """
        if not 0 <= order_id < self.n_orders:
            raise ValueError(f"a venue fill for unknown order id {order_id}")
        cdef OrderC* o = &self.orders[order_id]
        if quantity == 0.0 or (quantity > 0.0) != (o.quantity > 0.0) or not isfinite(quantity):
            raise ValueError(f"a venue fill of {quantity} for order {order_id} of quantity "
                             f"{o.quantity}: the sign must match and it must not be zero")
        if not (isfinite(price) and price > 0.0) or not isfinite(commission):
            raise ValueError(f"a venue fill for order {order_id} at price {price} with commission "
                             f"{commission}: both must be finite and the price positive")
        self.ext_queue.append((-1, order_id, quantity, price, commission, ts))

    def queue_external_status(self, int64_t order_id, int status, ts_t ts):
        """Queue a venue's ending of ``order_id`` (cancelled, expired or rejected status code)."""
        if not 0 <= order_id < self.n_orders:
            raise ValueError(f"a venue status for unknown order id {order_id}")
        if status not in (STATUS_CANCELLED, STATUS_EXPIRED, STATUS_REJECTED):
            raise ValueError(f"a venue can end an order as cancelled, expired or rejected, "
                             f"not with status code {status}")
        self.ext_queue.append((status, order_id, 0.0, 0.0, 0.0, ts))

    @property
    def n_queued(self):
        """Venue fills and status changes waiting to be booked."""
        return len(self.ext_queue)

    def order_fields(self, int64_t order_id):
        """``(asset, type, tif, quantity, limit, stop, status, released, filled)`` of an order."""
        if not 0 <= order_id < self.n_orders:
            raise IndexError(f"no order with id {order_id}")
        cdef OrderC* o = &self.orders[order_id]
        return (o.asset, o.type, o.tif, o.quantity, o.limit_price, o.stop_price, o.status,
                o.released, o.filled)

    # ------------------------------------------------------------ Python side
    def open_order_ids(self, int asset=-1):
        """Ids of working orders, for one asset or (``asset=-1``) all."""
        cdef idx_t k
        if not -1 <= asset < self.n_assets:
            raise IndexError(f"asset id {asset} out of range: {self.n_assets} assets (-1: all)")
        cdef OrderC* o
        out = []
        for k in range(self.n_open):
            o = &self.orders[self.open_ids[k]]
            if working(o) and (asset < 0 or o.asset == asset):
                out.append(o.id)
        return out

    def set_store(self, BarStore store, columns=None):
        """Work on the bars of ``store`` from now on (the next chunk of a streamed run).

        Parameters
        ----------
        store : BarStore
            The new bars; orders, fills and positions carry over.
        columns : mapping of str to ndarray, optional
            The slippage model's bar columns for the new rows (see
            :meth:`ColumnSource.rebind`), when it reads any.
        """
        if store.n_assets != self.n_assets:
            raise ValueError(f"the new store has {store.n_assets} assets, the run "
                             f"{self.n_assets}")
        self.store = store
        if columns is not None and self.slippage_model.columns is not None:
            self.slippage_model.columns.rebind(columns)

    def take_fills(self):
        """Hand over the fills recorded so far (as :meth:`fill_arrays`) and forget them.

        Call it only between timestamps (fills of the current one are still
        being delivered to ``on_fill`` during a step).
        """
        out = self.fill_arrays()
        self.n_fills = 0
        return out

    def fill_arrays(self, idx_t start=0):
        """Copy fills ``start:`` into numpy arrays."""
        if not 0 <= start <= self.n_fills:
            raise IndexError(f"fill start {start} out of range: {self.n_fills} fills")
        cdef idx_t i, n = self.n_fills - start
        out = {
            "ts": np.empty(n, dtype=np.int64),
            "asset": np.empty(n, dtype=np.int32),
            "order_id": np.empty(n, dtype=np.int64),
            "quantity": np.empty(n, dtype=np.float64),
            "price": np.empty(n, dtype=np.float64),
            "commission": np.empty(n, dtype=np.float64),
            "slippage": np.empty(n, dtype=np.float64),
            "held_high": np.empty(n, dtype=np.float64),
            "held_low": np.empty(n, dtype=np.float64),
        }
        cdef ts_t[::1] ts = out["ts"]
        cdef asset_t[::1] asset = out["asset"]
        cdef int64_t[::1] oid = out["order_id"]
        cdef double[::1] qty = out["quantity"]
        cdef double[::1] price = out["price"]
        cdef double[::1] comm = out["commission"]
        cdef double[::1] slip = out["slippage"]
        cdef double[::1] hh = out["held_high"]
        cdef double[::1] hl = out["held_low"]
        cdef FillC* f
        for i in range(n):
            f = &self.fills[start + i]
            ts[i] = f.ts
            asset[i] = f.asset
            oid[i] = f.order_id
            qty[i] = f.quantity
            price[i] = f.price
            comm[i] = f.commission
            slip[i] = f.slippage
            hh[i] = f.held_high if isfinite(f.held_high) else NAN
            hl[i] = f.held_low if isfinite(f.held_low) else NAN
        return out
