# cython: language_level=3
"""Typed event structs and the thin Python views over them."""

from mlbacktest._typedefs cimport asset_t, code_t, idx_t, price_t, qty_t, ts_t
from libc.stdint cimport int32_t, int64_t

# ---------------------------------------------------------------- enums
cdef enum OrderType:
    ORDER_MARKET = 0            # fills at the next bar's open (or the close, see fill_at)
    ORDER_LIMIT = 1             # fills at the limit price or better
    ORDER_STOP = 2              # becomes a market order once the stop price trades
    ORDER_STOP_LIMIT = 3        # becomes a limit order once the stop price trades
    ORDER_TRAILING_STOP = 4     # a stop that follows the close by an amount or a percentage
    ORDER_MARKET_ON_OPEN = 5    # fills at the open of the next bar, whatever fill_at says
    ORDER_MARKET_ON_CLOSE = 6   # fills at the close of the next bar, whatever fill_at says

cdef enum TimeInForce:
    TIF_GTC = 0                 # good till cancelled
    TIF_DAY = 1                 # expires at the end of the calendar day of its first eligible bar
    TIF_IOC = 2                 # immediate or cancel: what does not fill on the first eligible bar is cancelled
    TIF_FOK = 3                 # fill or kill: fills completely on the first eligible bar or is cancelled
    TIF_GTD = 4                 # good till a timestamp (expire_ts)

cdef enum OrderStatus:
    STATUS_SUBMITTED = 0        # placed, not yet at the broker (latency, or waiting for a parent)
    STATUS_ACCEPTED = 1         # at the broker, waiting to fill
    STATUS_PARTIAL = 2          # partly filled, the rest still working
    STATUS_FILLED = 3           # completely filled
    STATUS_CANCELLED = 4        # cancelled (by the strategy, an OCO sibling, a parent, IOC/FOK)
    STATUS_EXPIRED = 5          # expired (DAY, GTD)
    STATUS_REJECTED = 6         # refused by the broker; see the reason code

cdef enum RejectReason:
    REASON_NONE = 0             # no reason recorded
    REASON_INSUFFICIENT_CASH = 1  # the fill would have taken cash below zero
    REASON_SHORT_NOT_ALLOWED = 2  # the fill would have opened a short with allow_short off
    REASON_BY_STRATEGY = 3      # cancelled by the strategy
    REASON_OCO = 4              # cancelled because an order of its OCO group filled
    REASON_PARENT_CLOSED = 5    # cancelled because its parent was cancelled, expired or rejected
    REASON_IOC = 6              # IOC: the part not filled on the first eligible bar
    REASON_FOK = 7              # FOK: could not fill completely on the first eligible bar
    REASON_DAY_END = 8          # DAY order reached the end of its day
    REASON_GTD = 9              # GTD order passed its expiry timestamp
    REASON_REPLACED = 10        # cancelled by replace(); the replacement is a new order
    REASON_MARGIN = 11          # the fill would have broken the initial margin requirement
    REASON_LEVERAGE = 12        # the fill would have exceeded max_gross_leverage
    REASON_MAX_POSITIONS = 13   # the fill would have opened more than max_open_positions
    REASON_HALTED = 14          # trading is halted (max drawdown reached): only exits fill
    REASON_HALT_CANCEL = 15     # cancelled when trading was halted
    REASON_NON_FINITE = 16      # the fill would have made cash, the position's value or equity inf/NaN
    REASON_NOTHING_HELD = 17    # a broker-placed exit found no position left to close when it came to fill
    REASON_BEFORE_TRADING = 18  # placed before the run's trade_from (a warm-up bar): never reaches the broker

cdef enum OrderOrigin:
    ORIGIN_STRATEGY = 0         # placed by the strategy
    ORIGIN_STOP_LOSS = 1        # position rule: stop-loss
    ORIGIN_TAKE_PROFIT = 2      # position rule: take-profit
    ORIGIN_TRAILING_STOP = 3    # position rule: trailing stop
    ORIGIN_TIME_EXIT = 4        # position rule: held for max_bars
    ORIGIN_MARGIN_CALL = 5      # forced liquidation after a margin call
    ORIGIN_DRAWDOWN_HALT = 6    # liquidation when max_drawdown halted trading

cdef enum FillPhase:
    PHASE_OPEN = 0              # start of a timestamp: resting orders against the new bars
    PHASE_CLOSE = 1             # end of a timestamp: market orders at the close (fill_at="close")

cdef enum ColumnKind:
    KIND_FIELD = 0              # a bar field (BAR_FIELDS: open high low close volume)
    KIND_SIGNAL = 1             # a signal column
    KIND_INDICATOR = 2          # a named indicator (a row of indicator_array)
# A column code (BarStore.column_codes) is (index << 2) | kind.

# ---------------------------------------------------------------- structs
ctypedef struct OrderC:
    int64_t id                  # order id, equal to its index in the broker's store
    asset_t asset               # asset id
    code_t type                 # an OrderType
    code_t tif                  # a TimeInForce
    code_t status               # an OrderStatus
    code_t reason               # a RejectReason: why it was rejected, cancelled or expired
    code_t origin               # an OrderOrigin: who placed it
    bint triggered              # stop-limit: the stop has traded, it now works as a limit
    bint seen                   # has been considered on at least one bar (IOC/FOK/DAY start)
    bint released               # OTO: its parent has filled, so it only waits for its own latency
    qty_t quantity              # signed requested quantity (> 0 buys)
    qty_t filled                # signed quantity filled so far
    price_t limit_price         # limit price, NaN when the order has none
    price_t stop_price          # stop trigger price (trailing: current level), NaN when none
    price_t trail_amount        # trailing stop: distance in price units, NaN when by percent
    price_t trail_percent       # trailing stop: distance as a fraction of price, NaN when by amount
    price_t trail_extreme       # trailing stop: best close seen since placement
    price_t avg_price           # average fill price, NaN until the first fill
    ts_t created_ts             # timestamp at which the strategy placed it
    ts_t active_ts              # reaches the broker at this timestamp (latency); bars before it are skipped
    int32_t skip_bars           # bars of the asset still to skip before it reaches the broker
    ts_t skipped_ts             # bar whose skip was last counted (MLB_NO_TS: none, or at the broker since)
    ts_t considered_key         # 2 * ts + phase of the last matching pass that looked at it
    int32_t active_day          # DAY orders: calendar day of the first eligible bar (-1 before)
    ts_t expire_ts              # GTD: expires at the first timestamp after this; MLB_NO_TS for none
    ts_t closed_ts              # when it stopped working (filled/cancelled/expired/rejected); MLB_NO_TS while working
    int64_t parent              # OTO: order whose fill activates this one; -1 for none
    int64_t first_child         # OTO: first order this one activates; -1 for none
    int64_t next_sibling        # OTO: next child of the same parent; -1 for none
    int64_t oco_group           # OCO group id: a fill in the group cancels or shrinks the others; -1 for none
    int64_t oco_next            # next order of the OCO group (a circular list); -1 for none
    ts_t start_ts               # activated mid-bar at this timestamp (OTO child); MLB_NO_TS otherwise
    int32_t start_point         # with start_ts: path point (0 open .. 3 close) it starts from
    price_t start_price         # with start_ts: the price it starts from (the parent's raw fill price)
    double start_time           # with start_ts: when on the path it starts (the parent's fill time)
    double reject_need          # for REASON_INSUFFICIENT_CASH: cash the fill needed
    double reject_have          # for REASON_INSUFFICIENT_CASH: cash that was available
                                # (REASON_MARGIN/LEVERAGE: requirement and equity after the fill)

ctypedef struct FillC:
    ts_t ts                     # timestamp of the bar the fill happened on
    asset_t asset               # asset id
    int64_t order_id            # id of the order that filled
    qty_t quantity              # signed filled quantity (> 0 bought)
    price_t price               # execution price, slippage included
    double commission           # commission charged, >= 0
    double slippage             # cost of slippage in currency, >= 0
    double held_high            # highest high of the asset's bars held in full since its previous fill (-inf: none)
    double held_low             # lowest low of those bars (+inf: none)

ctypedef struct OrderLogC:
    int64_t order_id            # order whose status changed
    code_t status               # the status it changed to
    ts_t ts                     # when


# ---------------------------------------------------------------- bar storage
cdef class BarStore:
    """Read-only bar columns of a run (all feeds, merged) and their names."""
    cdef readonly object ts_array        # numpy int64 (n,): bar timestamps, ns
    cdef readonly object asset_array     # numpy int32 (n,): asset id of each row
    cdef readonly object open_array      # numpy float64 (n,): opens
    cdef readonly object high_array      # numpy float64 (n,): highs
    cdef readonly object low_array       # numpy float64 (n,): lows
    cdef readonly object close_array     # numpy float64 (n,): closes
    cdef readonly object volume_array    # numpy float64 (n,): volumes
    cdef readonly object signal_array    # numpy float64 (n, k): signal columns
    cdef readonly object names_array     # numpy object (n_assets,): names, for fancy indexing
    cdef readonly object day_array       # numpy int32 (n,): calendar day of each bar (days since epoch, local)
    cdef const ts_t[::1] ts              # memoryview of ts_array
    cdef const asset_t[::1] asset        # memoryview of asset_array
    cdef const double[::1] open          # memoryview of open_array
    cdef const double[::1] high          # memoryview of high_array
    cdef const double[::1] low           # memoryview of low_array
    cdef const double[::1] close         # memoryview of close_array
    cdef const double[::1] volume        # memoryview of volume_array
    cdef const double[:, ::1] signals    # memoryview of signal_array
    cdef const int32_t[::1] day          # memoryview of day_array
    cdef readonly tuple asset_names      # asset id -> name
    cdef readonly tuple signal_names     # signal column -> name
    cdef readonly dict asset_index       # name -> asset id
    cdef readonly dict signal_index      # name -> signal column
    cdef readonly object tz              # time zone name, or None for naive timestamps
    cdef readonly Py_ssize_t n_rows      # number of bars
    cdef readonly Py_ssize_t n_assets    # number of assets
    cdef object _zone                    # tzinfo for tz, built once
    cdef ts_t _dt_ts                     # timestamp of the cached datetime below
    cdef object _dt                      # cached datetime of _dt_ts (one conversion per timestamp)
    cdef readonly object indicator_array # numpy float64 (m, n): indicator values, one row per series, named rows first
    cdef const double[:, ::1] indicators # memoryview of indicator_array
    cdef readonly tuple indicator_names  # names of the first len(indicator_names) rows of indicator_array
    cdef readonly dict indicator_index   # indicator name -> row of indicator_array
    cdef readonly tuple indicator_rows   # read-only 1-d views of the named rows of indicator_array
    cdef dict column_codes               # name -> code of a field, signal or indicator (event[n])

    cpdef object to_datetime(self, ts_t ts)
    cdef double read(self, Py_ssize_t code, idx_t row) noexcept
    cdef object missing(self, object key)


cdef class MarketEvent:
    """One asset-bar, read lazily from the bar store."""
    cdef BarStore store                  # where the bar lives
    cdef idx_t row                       # row of the bar in the store


cdef class SignalRow:
    """The signals of one bar, addressable by name or position."""
    cdef BarStore store                  # where the bar lives
    cdef idx_t row                       # row of the bar in the store


cdef class IndicatorRow:
    """The indicator values of one bar, addressable by name or position."""
    cdef BarStore store                  # where the bar and its indicator values live
    cdef idx_t row                       # row of the bar in the store


cdef class FillEvent:
    """A fill, as handed to ``Strategy.on_fill``."""
    cdef BarStore store                  # for asset names and timestamps
    cdef FillC fill                      # copy of the fill record


cdef class OrderBook:
    """Growable store of every order of a run; the broker extends it."""
    cdef OrderC* orders                  # order records, indexed by order id (owned, realloc'd)
    cdef idx_t n_orders                  # number of orders stored
    cdef idx_t capacity                  # allocated length of ``orders``
    cdef BarStore store                  # for asset names and timestamps in views
    cdef int64_t append(self, const OrderC* order) except -1


cdef class OrderEvent:
    """A live view of one order in an order book."""
    cdef OrderBook book                  # the book that owns the order
    cdef readonly int64_t order_id       # the order's id
    cdef int status_snapshot             # status at the time of an on_order event; -1 reads it live
    cdef OrderC* _o(self) noexcept


cdef class SliceView:
    """Every bar of one timestamp, as numpy arrays built on first access."""
    cdef BarStore store                  # where the bars live
    cdef idx_t start                     # first row, when the bars are one contiguous range
    cdef idx_t stop                      # one past the last row of that range
    cdef object rows                     # None for a contiguous range, else an int64 row index array
    cdef object portfolio                # the run's Portfolio: live positions, last prices, equity
    cdef readonly ts_t ts                # the timestamp, ns
    cdef object _col(self, object arr)
    cdef object _gather(self, bint as_weights)


cdef MarketEvent make_market_event(BarStore store, idx_t row)
cdef FillEvent make_fill_event(BarStore store, const FillC* fill)
cdef SliceView make_slice_view(BarStore store, ts_t ts, idx_t start, idx_t stop, object rows,
                               object portfolio)
