# cython: language_level=3
"""Typed event structs and thin, read-only Python views over them.

The compiled loop works on the structs and on the bar columns directly; the
classes here exist only for the Python side (strategy hooks and helpers) and
are created only when a hook needs them.
"""

cimport cython
cimport numpy as cnp
from cpython.dict cimport PyDict_GetItem
from cpython.long cimport PyLong_AsSsize_t
from cpython.mem cimport PyMem_Free, PyMem_Realloc
from cpython.ref cimport PyObject
from libc.stdint cimport int8_t, int32_t, int64_t
from libc.math cimport NAN
from libc.string cimport memcpy

from mlbacktest._portfolio cimport Portfolio
from mlbacktest._typedefs cimport MLB_NO_TS

import datetime as _dt

import numpy as np

cnp.import_array()

_EPOCH = _dt.datetime(1970, 1, 1)
_EPOCH_UTC = _dt.datetime(1970, 1, 1, tzinfo=_dt.timezone.utc)

ORDER_TYPE_NAMES = ("market", "limit", "stop", "stop_limit", "trailing_stop",
                    "market_on_open", "market_on_close")
TIF_NAMES = ("gtc", "day", "ioc", "fok", "gtd")
ORIGIN_NAMES = ("strategy", "stop_loss", "take_profit", "trailing_stop", "time_exit",
                "margin_call", "drawdown_halt")
ORDER_STATUS_NAMES = ("submitted", "accepted", "partially_filled", "filled", "cancelled",
                      "expired", "rejected")
#: Status code of a rejected order in the order records (the ``OrderStatus`` enum).
ORDER_STATUS_REJECTED = STATUS_REJECTED
#: Statuses in which an order is still working.
WORKING_STATUSES = frozenset(ORDER_STATUS_NAMES[:3])
#: The bar fields ``event[name]`` reads, in the order of their codes.
BAR_FIELDS = ("open", "high", "low", "close", "volume")


def _readonly(arr, dtype, ndim):
    out = np.ascontiguousarray(arr, dtype=dtype)
    if out.ndim != ndim:
        raise ValueError(f"expected a {ndim}-d array, got shape {out.shape}")
    if out.flags.writeable:
        out = out.view()
        out.flags.writeable = False
    return out


cdef class BarStore:
    """Read-only bar columns of one run, with asset and signal names.

    Parameters
    ----------
    ts, asset, open, high, low, close, volume : ndarray
        Columns of equal length n: int64 ns timestamps (non-decreasing within
        each feed block), int32 asset ids, float64 fields.
    signals : ndarray of float64, shape (n, k)
        Signal columns.
    asset_names, signal_names : sequence of str
        Names for asset ids and signal columns.
    tz : str or None
        Time zone used to present timestamps.
    day : ndarray of int32, optional
        Calendar day of each bar in the feed's zone (days since the epoch),
        for DAY orders; by default the UTC/wall-clock day of ``ts``.
    """

    def __init__(self, ts, asset, open, high, low, close, volume, signals,
                 asset_names, signal_names, tz=None, day=None):
        self.ts_array = _readonly(ts, np.int64, 1)
        self.asset_array = _readonly(asset, np.int32, 1)
        self.open_array = _readonly(open, np.float64, 1)
        self.high_array = _readonly(high, np.float64, 1)
        self.low_array = _readonly(low, np.float64, 1)
        self.close_array = _readonly(close, np.float64, 1)
        self.volume_array = _readonly(volume, np.float64, 1)
        self.signal_array = _readonly(signals, np.float64, 2)
        n = self.ts_array.shape[0]
        for name in ("asset", "open", "high", "low", "close", "volume", "signal"):
            if getattr(self, name + "_array").shape[0] != n:
                raise ValueError(f"column {name!r} has a different length from 'ts'")
        self.asset_names = tuple(str(a) for a in asset_names)
        if n and (self.asset_array.min() < 0 or self.asset_array.max() >= len(self.asset_names)):
            bad = np.flatnonzero((self.asset_array < 0)
                                 | (self.asset_array >= len(self.asset_names)))
            raise ValueError(
                f"asset id {self.asset_array[bad[0]]} at row {bad[0]} is out of range: "
                f"{len(self.asset_names)} asset names ({bad.size} such rows)")
        self.signal_names = tuple(str(s) for s in signal_names)
        if self.signal_array.shape[1] != len(self.signal_names):
            raise ValueError("signals has a different number of columns from signal_names")
        self.ts = self.ts_array
        self.asset = self.asset_array
        self.open = self.open_array
        self.high = self.high_array
        self.low = self.low_array
        self.close = self.close_array
        self.volume = self.volume_array
        self.signals = self.signal_array
        if day is None:
            day = np.floor_divide(self.ts_array, 86_400_000_000_000)
        self.day_array = _readonly(day, np.int32, 1)
        if self.day_array.shape[0] != n:
            raise ValueError("column 'day' has a different length from 'ts'")
        self.day = self.day_array
        self.asset_index = {name: i for i, name in enumerate(self.asset_names)}
        self.signal_index = {name: j for j, name in enumerate(self.signal_names)}
        names = np.empty(len(self.asset_names), dtype=object)
        names[:] = self.asset_names
        names.flags.writeable = False
        self.names_array = names
        self.n_rows = n
        self.n_assets = len(self.asset_names)
        self.tz = tz
        if tz is None:
            self._zone = None
        else:
            from zoneinfo import ZoneInfo
            self._zone = _dt.timezone.utc if tz == "UTC" else ZoneInfo(tz)
        self._dt_ts = MLB_NO_TS
        self._dt = None
        self.set_indicators(np.empty((0, n)), ())

    def set_indicators(self, values, names):
        """Attach indicator values to the bars (see :mod:`mlbacktest.indicators`).

        Parameters
        ----------
        values : ndarray of float64, shape (m, n_rows)
            One row per computed series, aligned with the store's rows; the
            first ``len(names)`` rows are the named indicators, the others
            series they are built from.
        names : sequence of str
            Names of the first rows of ``values``.
        """
        arr = _readonly(values, np.float64, 2)
        names = tuple(str(n) for n in names)
        if arr.shape[1] != self.ts_array.shape[0] or arr.shape[0] < len(names):
            raise ValueError(
                f"indicator values of shape {arr.shape} do not fit {len(names)} names and "
                f"{self.ts_array.shape[0]} rows")
        if len(set(names)) != len(names):
            raise ValueError(f"duplicate indicator names in {list(names)}")
        clash = [n for n in names if n in BAR_FIELDS or n in self.signal_index]
        if clash:
            raise ValueError(f"indicator name {clash[0]!r} shadows a bar field or signal")
        self.indicator_array = arr
        self.indicators = arr
        self.indicator_names = names
        self.indicator_index = {name: j for j, name in enumerate(names)}
        self.indicator_rows = tuple(arr[j] for j in range(len(names)))
        codes = {name: (j << 2) | KIND_SIGNAL for j, name in enumerate(self.signal_names)}
        codes.update({name: (j << 2) | KIND_INDICATOR for j, name in enumerate(names)})
        codes.update({name: (j << 2) | KIND_FIELD for j, name in enumerate(BAR_FIELDS)})
        self.column_codes = codes

    cdef double read(self, Py_ssize_t code, idx_t row) noexcept:
        """The value of column ``code`` (see ``column_codes``) at ``row``; no checks."""
        cdef Py_ssize_t j = code >> 2
        cdef int kind = code & 3
        if kind == KIND_INDICATOR:
            return self.indicators[j, row]
        if kind == KIND_SIGNAL:
            return self.signals[row, j]
        if j == 3:
            return self.close[row]
        if j == 0:
            return self.open[row]
        if j == 1:
            return self.high[row]
        if j == 2:
            return self.low[row]
        return self.volume[row]

    cdef object missing(self, object key):
        """The error for ``event[key]`` when ``key`` names no column."""
        if not isinstance(key, str):
            return TypeError(f"a MarketEvent is read by column name (str), got "
                             f"{type(key).__name__} {key!r}")
        return KeyError(f"no bar field, signal or indicator named {key!r}; bar fields are "
                        f"{list(BAR_FIELDS)}, signals {list(self.signal_names)}, indicators "
                        f"{list(self.indicator_names)}")

    cpdef object to_datetime(self, ts_t ts):
        """Convert a ns timestamp to a :class:`datetime.datetime`.

        Naive when the store has no time zone, otherwise aware and expressed
        in the store's zone. Sub-microsecond digits are dropped. The last
        conversion is cached, so every event of one timestamp shares it.
        """
        if ts == self._dt_ts:
            return self._dt
        if self._zone is None:
            out = _EPOCH + _dt.timedelta(microseconds=ts // 1000)
        else:
            out = (_EPOCH_UTC + _dt.timedelta(microseconds=ts // 1000)).astimezone(self._zone)
        self._dt_ts = ts
        self._dt = out
        return out


@cython.freelist(16)
cdef class MarketEvent:
    """One asset-bar, handed to ``Strategy.on_market_data``.

    Attributes are read from the run's columns on access, so an event costs
    one small allocation. Values never change after the event is created.

    Attributes
    ----------
    timestamp : datetime.datetime
        The bar's timestamp (its open time unless the feed says otherwise).
    ts : int
        The same timestamp in ns since the epoch.
    asset : str
        Asset name; ``asset_id`` is its integer id.
    open, high, low, close, volume : float
        Bar fields.
    signals : SignalRow
        The bar's signals: ``event.signals["pred"]`` or ``event.signals[0]``.
    indicators : IndicatorRow
        The bar's declared indicators: ``event.indicators["sma_fast"]``.
    """

    def __init__(self):
        raise TypeError("MarketEvent objects are created by the engine")

    @property
    def ts(self):
        return self.store.ts[self.row]

    @property
    def timestamp(self):
        return self.store.to_datetime(self.store.ts[self.row])

    @property
    def asset(self):
        return self.store.asset_names[self.store.asset[self.row]]

    @property
    def asset_id(self):
        return self.store.asset[self.row]

    @property
    def open(self):
        return self.store.open[self.row]

    @property
    def high(self):
        return self.store.high[self.row]

    @property
    def low(self):
        return self.store.low[self.row]

    @property
    def close(self):
        return self.store.close[self.row]

    @property
    def volume(self):
        return self.store.volume[self.row]

    @property
    def signals(self):
        cdef SignalRow out = SignalRow.__new__(SignalRow)
        out.store = self.store
        out.row = self.row
        return out

    def __getitem__(self, key):
        """A bar field, a signal or an indicator of the bar by name: ``event["sma_fast"]``.

        The fastest read of a value: one name lookup, no intermediate object.
        Names cannot clash (a signal or an indicator may not take the name of
        a bar field or of a signal).

        Raises
        ------
        KeyError
            For a name that is no bar field, signal or indicator of the run.
        TypeError
            For a key that is not a str.
        """
        cdef PyObject* code = NULL
        if isinstance(key, str):
            code = PyDict_GetItem(self.store.column_codes, key)
        if code == NULL:
            raise self.store.missing(key)
        return self.store.read(PyLong_AsSsize_t(<object>code), self.row)

    @property
    def indicators(self):
        """The bar's indicator values: ``event.indicators["sma_fast"]`` (an IndicatorRow)."""
        cdef IndicatorRow out = IndicatorRow.__new__(IndicatorRow)
        out.store = self.store
        out.row = self.row
        return out

    def __repr__(self):
        return (f"MarketEvent({self.timestamp}, {self.asset!r}, open={self.open}, "
                f"high={self.high}, low={self.low}, close={self.close}, volume={self.volume})")


@cython.freelist(16)
cdef class SignalRow:
    """The signals of one bar: a read-only mapping from signal name to value."""

    def __init__(self):
        raise TypeError("SignalRow objects are created by the engine")

    def __getitem__(self, key):
        cdef Py_ssize_t j
        if isinstance(key, str):
            try:
                j = self.store.signal_index[key]
            except KeyError:
                raise KeyError(f"no signal named {key!r}; signals are {list(self.store.signal_names)}") from None
        else:
            j = key
            if j < 0:
                j += len(self.store.signal_names)
            if not 0 <= j < len(self.store.signal_names):
                raise IndexError(f"signal index {key} out of range")
        return self.store.signals[self.row, j]

    def get(self, key, default=None):
        """Return the signal ``key``, or ``default`` when there is no such signal."""
        try:
            return self[key]
        except (KeyError, IndexError):
            return default

    def __len__(self):
        return len(self.store.signal_names)

    def __iter__(self):
        return iter(self.store.signal_names)

    def __contains__(self, key):
        return key in self.store.signal_index

    def keys(self):
        """Signal names, in column order."""
        return self.store.signal_names

    def values(self):
        """Signal values as a read-only float64 array."""
        return self.store.signal_array[self.row]

    def items(self):
        """(name, value) pairs."""
        return [(n, self.store.signals[self.row, j]) for j, n in enumerate(self.store.signal_names)]

    def to_dict(self):
        """A plain dict copy of the signals."""
        return dict(self.items())

    def __repr__(self):
        return f"SignalRow({self.to_dict()!r})"


@cython.freelist(16)
cdef class IndicatorRow:
    """The indicator values of one bar: a read-only mapping from indicator name to value.

    Values are read from the run's indicator columns, computed before the
    first bar from each asset's bars up to this one (see
    :mod:`mlbacktest.indicators`); NaN during an indicator's warm-up.
    """

    def __init__(self):
        raise TypeError("IndicatorRow objects are created by the engine")

    def __getitem__(self, key):
        cdef Py_ssize_t j
        cdef PyObject* found
        if isinstance(key, str):
            found = PyDict_GetItem(self.store.indicator_index, key)
            if found == NULL:
                raise KeyError(f"no indicator named {key!r}; indicators are "
                               f"{list(self.store.indicator_names)}")
            return self.store.indicators[PyLong_AsSsize_t(<object>found), self.row]
        else:
            j = key
            if j < 0:
                j += len(self.store.indicator_names)
            if not 0 <= j < len(self.store.indicator_names):
                raise IndexError(f"indicator index {key} out of range")
        return self.store.indicators[j, self.row]

    def get(self, key, default=None):
        """Return the indicator ``key``, or ``default`` when there is no such indicator."""
        try:
            return self[key]
        except (KeyError, IndexError):
            return default

    def __len__(self):
        return len(self.store.indicator_names)

    def __iter__(self):
        return iter(self.store.indicator_names)

    def __contains__(self, key):
        return key in self.store.indicator_index

    def keys(self):
        """Indicator names, in declaration order."""
        return self.store.indicator_names

    def values(self):
        """Indicator values as a float64 array, in the order of :meth:`keys`."""
        k = len(self.store.indicator_names)
        return np.ascontiguousarray(self.store.indicator_array[:k, self.row])

    def items(self):
        """(name, value) pairs."""
        return [(n, self.store.indicators[j, self.row])
                for j, n in enumerate(self.store.indicator_names)]

    def to_dict(self):
        """A plain dict copy of the indicator values."""
        return dict(self.items())

    def __repr__(self):
        return f"IndicatorRow({self.to_dict()!r})"


cdef MarketEvent make_market_event(BarStore store, idx_t row):
    cdef MarketEvent ev = MarketEvent.__new__(MarketEvent)
    ev.store = store
    ev.row = row
    return ev


cdef class FillEvent:
    """A fill, handed to ``Strategy.on_fill``.

    Attributes
    ----------
    timestamp : datetime.datetime
        Timestamp of the bar the order filled on; ``ts`` in ns.
    asset : str
        Asset name; ``asset_id`` is its id.
    order_id : int
        Id of the order that filled.
    quantity : float
        Signed filled quantity (> 0 bought, < 0 sold).
    price : float
        Execution price, slippage included.
    commission, slippage : float
        Costs of the fill in currency (both >= 0).
    """

    def __init__(self):
        raise TypeError("FillEvent objects are created by the engine")

    @property
    def ts(self):
        return self.fill.ts

    @property
    def timestamp(self):
        return self.store.to_datetime(self.fill.ts)

    @property
    def asset(self):
        return self.store.asset_names[self.fill.asset]

    @property
    def asset_id(self):
        return self.fill.asset

    @property
    def order_id(self):
        return self.fill.order_id

    @property
    def quantity(self):
        return self.fill.quantity

    @property
    def price(self):
        return self.fill.price

    @property
    def commission(self):
        return self.fill.commission

    @property
    def slippage(self):
        return self.fill.slippage

    def __repr__(self):
        return (f"FillEvent({self.timestamp}, {self.asset!r}, order_id={self.order_id}, "
                f"quantity={self.quantity}, price={self.price}, commission={self.commission})")


cdef FillEvent make_fill_event(BarStore store, const FillC* fill):
    cdef FillEvent ev = FillEvent.__new__(FillEvent)
    ev.store = store
    ev.fill = fill[0]
    return ev


cdef class OrderBook:
    """Every order of a run, in submission order; ids are indices."""

    def __cinit__(self, *args, **kwargs):
        self.orders = NULL
        self.n_orders = 0
        self.capacity = 0

    def __dealloc__(self):
        PyMem_Free(self.orders)

    cdef int64_t append(self, const OrderC* order) except -1:
        cdef idx_t cap
        cdef OrderC* grown
        if self.n_orders == self.capacity:
            cap = max(64, 2 * self.capacity)
            grown = <OrderC*> PyMem_Realloc(self.orders, cap * sizeof(OrderC))
            if grown == NULL:
                raise MemoryError()
            self.orders = grown
            self.capacity = cap
        memcpy(&self.orders[self.n_orders], order, sizeof(OrderC))
        self.orders[self.n_orders].id = self.n_orders
        self.n_orders += 1
        return self.n_orders - 1

    def __len__(self):
        return self.n_orders

    def view(self, int64_t order_id):
        """Return an :class:`OrderEvent` for ``order_id``."""
        if not 0 <= order_id < self.n_orders:
            raise KeyError(f"no order with id {order_id}")
        cdef OrderEvent ev = OrderEvent.__new__(OrderEvent)
        ev.book = self
        ev.order_id = order_id
        ev.status_snapshot = -1
        return ev

    def status_event(self, int64_t order_id, int status):
        """An :class:`OrderEvent` whose ``status`` is frozen at ``status`` (for on_order)."""
        if not 0 <= status < len(ORDER_STATUS_NAMES):
            raise ValueError(f"unknown order status code {status}")
        ev = self.view(order_id)
        (<OrderEvent> ev).status_snapshot = status
        return ev

    def to_arrays(self):
        """Copy every order into numpy arrays (and a list of reason strings)."""
        cdef idx_t i, n = self.n_orders
        cdef OrderC* o
        out = {
            "order_id": np.arange(n, dtype=np.int64),
            "asset": np.empty(n, dtype=np.int32),
            "created_ts": np.empty(n, dtype=np.int64),
            "order_type": np.empty(n, dtype=np.int8),
            "quantity": np.empty(n, dtype=np.float64),
            "limit_price": np.empty(n, dtype=np.float64),
            "stop_price": np.empty(n, dtype=np.float64),
            "status": np.empty(n, dtype=np.int8),
            "filled_quantity": np.empty(n, dtype=np.float64),
            "avg_fill_price": np.empty(n, dtype=np.float64),
            "closed_ts": np.empty(n, dtype=np.int64),
            "tif": np.empty(n, dtype=np.int8),
            "parent": np.empty(n, dtype=np.int64),
            "oco_group": np.empty(n, dtype=np.int64),
            "origin": np.empty(n, dtype=np.int8),
        }
        cdef int32_t[::1] asset = out["asset"]
        cdef int64_t[::1] created = out["created_ts"]
        cdef int8_t[::1] otype = out["order_type"]
        cdef double[::1] qty = out["quantity"]
        cdef double[::1] lim = out["limit_price"]
        cdef double[::1] stp = out["stop_price"]
        cdef int8_t[::1] status = out["status"]
        cdef double[::1] filled = out["filled_quantity"]
        cdef double[::1] avg = out["avg_fill_price"]
        cdef int64_t[::1] closed = out["closed_ts"]
        cdef int8_t[::1] tif = out["tif"]
        cdef int64_t[::1] parent = out["parent"]
        cdef int64_t[::1] oco = out["oco_group"]
        cdef int8_t[::1] origin = out["origin"]
        reasons = []
        for i in range(n):
            o = &self.orders[i]
            asset[i] = o.asset
            created[i] = o.created_ts
            otype[i] = o.type
            qty[i] = o.quantity
            lim[i] = o.limit_price
            stp[i] = o.stop_price
            status[i] = o.status
            filled[i] = o.filled
            avg[i] = o.avg_price
            closed[i] = o.closed_ts
            tif[i] = o.tif
            parent[i] = o.parent
            oco[i] = o.oco_group
            origin[i] = o.origin
            reasons.append(reason_text(o))
        out["reason"] = reasons
        return out


cdef str reason_text(const OrderC* o):
    if o.reason == REASON_NONE:
        return ""
    if o.reason == REASON_INSUFFICIENT_CASH:
        return (f"insufficient cash: the fill needed {o.reject_need:.2f} "
                f"but only {o.reject_have:.2f} was available")
    if o.reason == REASON_SHORT_NOT_ALLOWED:
        return ("short selling is not allowed (allow_short=False, a cash account's default; "
                "set allow_short=True or account='margin')")
    if o.reason == REASON_BY_STRATEGY:
        return "cancelled by the strategy"
    if o.reason == REASON_OCO:
        return "cancelled: another order of its OCO group filled"
    if o.reason == REASON_PARENT_CLOSED:
        return f"cancelled: its parent order {o.parent} ended without filling"
    if o.reason == REASON_IOC:
        return "cancelled: immediate-or-cancel, not filled on its first bar"
    if o.reason == REASON_FOK:
        return "cancelled: fill-or-kill, could not fill completely on its first bar"
    if o.reason == REASON_DAY_END:
        return "expired: end of day (time in force DAY)"
    if o.reason == REASON_GTD:
        return "expired: passed its good-till-date timestamp"
    if o.reason == REASON_REPLACED:
        return "cancelled: replaced by a new order"
    if o.reason == REASON_MARGIN:
        return (f"insufficient margin: the fill needed {o.reject_need:.2f} of initial margin "
                f"but equity would be {o.reject_have:.2f}")
    if o.reason == REASON_LEVERAGE:
        return (f"max_gross_leverage: the fill would bring gross exposure to {o.reject_need:.2f} "
                f"with equity {o.reject_have:.2f}")
    if o.reason == REASON_MAX_POSITIONS:
        return "max_open_positions reached: the fill would open another position"
    if o.reason == REASON_HALTED:
        return "trading halted (max_drawdown reached): only exits are accepted"
    if o.reason == REASON_HALT_CANCEL:
        return "cancelled: trading halted (max_drawdown reached)"
    if o.reason == REASON_NON_FINITE:
        return (f"not representable: the fill would make cash {o.reject_need:.6g} and the "
                f"position's value {o.reject_have:.6g} (cash, position values and equity must "
                "stay finite numbers, and a position at most 1e280 units)")
    if o.reason == REASON_NOTHING_HELD:
        return "cancelled: nothing left to close (the position was closed before this exit filled)"
    if o.reason == REASON_BEFORE_TRADING:
        return ("before trading start: placed during the warm-up, before the run's trade_from "
                "timestamp")
    return f"code {o.reason}"


cdef class OrderEvent:
    """A live, read-only view of one order.

    Returned by the order helpers of :class:`~mlbacktest.Strategy`; its
    ``status`` and fill fields change as the broker works the order.

    Attributes
    ----------
    order_id : int
        The order's id (unique within a run, in submission order).
    asset : str
        Asset name; ``asset_id`` is its id.
    order_type : str
        ``"market"``, ``"limit"``, ``"stop"``, ``"stop_limit"``,
        ``"trailing_stop"``, ``"market_on_open"`` or ``"market_on_close"``.
    time_in_force : str
        ``"gtc"``, ``"day"``, ``"ioc"``, ``"fok"`` or ``"gtd"``.
    quantity : float
        Signed requested quantity; ``filled_quantity`` is what has filled.
    limit_price, stop_price : float
        NaN when the order has none.
    status : str
        ``"submitted"``, ``"accepted"``, ``"partially_filled"``, ``"filled"``,
        ``"cancelled"``, ``"expired"`` or ``"rejected"``. In ``on_order`` it
        is the status the event reports; elsewhere it is read live.
    reason : str
        Why the order was rejected, cancelled or expired (empty otherwise).
    avg_fill_price : float
        NaN until the order fills.
    created, closed : datetime.datetime or None
        When the order was placed and when it stopped being open.
    """

    def __init__(self):
        raise TypeError("OrderEvent objects are created by the engine")

    cdef OrderC* _o(self) noexcept:
        return &self.book.orders[self.order_id]

    @property
    def asset_id(self):
        return self._o().asset

    @property
    def asset(self):
        return self.book.store.asset_names[self._o().asset]

    @property
    def order_type(self):
        return ORDER_TYPE_NAMES[self._o().type]

    @property
    def quantity(self):
        return self._o().quantity

    @property
    def filled_quantity(self):
        return self._o().filled

    @property
    def limit_price(self):
        return self._o().limit_price

    @property
    def stop_price(self):
        return self._o().stop_price

    @property
    def avg_fill_price(self):
        return self._o().avg_price

    @property
    def status(self):
        if self.status_snapshot >= 0:
            return ORDER_STATUS_NAMES[self.status_snapshot]
        return ORDER_STATUS_NAMES[self._o().status]

    @property
    def is_open(self):
        """True while the order is working (submitted, accepted or partially filled)."""
        return self._o().status <= STATUS_PARTIAL

    @property
    def origin(self):
        """Who placed the order: ``"strategy"`` or a rule (``"stop_loss"``, ``"margin_call"``, ...)."""
        return ORIGIN_NAMES[self._o().origin]

    @property
    def time_in_force(self):
        return TIF_NAMES[self._o().tif]

    @property
    def parent_id(self):
        cdef int64_t p = self._o().parent
        return None if p < 0 else p

    @property
    def oco_group(self):
        cdef int64_t g = self._o().oco_group
        return None if g < 0 else g

    @property
    def trail_amount(self):
        return self._o().trail_amount

    @property
    def trail_percent(self):
        return self._o().trail_percent

    @property
    def expire_at(self):
        cdef ts_t ts = self._o().expire_ts
        return None if ts == MLB_NO_TS else self.book.store.to_datetime(ts)

    @property
    def reason(self):
        return reason_text(self._o())

    @property
    def created(self):
        return self.book.store.to_datetime(self._o().created_ts)

    @property
    def closed(self):
        cdef ts_t ts = self._o().closed_ts
        return None if ts == MLB_NO_TS else self.book.store.to_datetime(ts)

    def __eq__(self, other):
        return (isinstance(other, OrderEvent)
                and (<OrderEvent> other).book is self.book
                and (<OrderEvent> other).order_id == self.order_id)

    def __hash__(self):
        return hash((id(self.book), self.order_id))

    def __repr__(self):
        return (f"OrderEvent(id={self.order_id}, {self.asset!r}, {self.order_type}, "
                f"quantity={self.quantity}, status={self.status!r})")


cdef class SliceView:
    """Every bar of one timestamp, handed to ``Strategy.on_slice``.

    Arrays are built on first access: numpy views into the run's read-only
    columns (copies only when several feeds have bars at the timestamp), so
    they cannot be written to and never extend past the current timestamp.

    Attributes
    ----------
    timestamp : datetime.datetime
        The timestamp; ``ts`` in ns.
    assets : ndarray of object
        Asset names, one per bar; ``asset_ids`` holds their int32 ids.
    open, high, low, close, volume : ndarray of float64
        Bar fields, aligned with ``assets``.
    signals : ndarray of float64, shape (len(view), k)
        One column per entry of ``signal_names``.
    positions : ndarray of float64
        Signed position in each asset at the time of the call.
    weights : ndarray of float64
        Position x last close / equity of each asset at the time of the call
        (``Strategy.weights(view)`` gives the same).
    indicators : ndarray of float64, shape (len(view), k)
        One column per entry of ``indicator_names``; ``indicator(name)``
        gives one as a 1-d array.
    """

    def __init__(self):
        raise TypeError("SliceView objects are created by the engine")

    cdef object _col(self, object arr):
        """The rows of this view of a column of the store (1-d, or 2-d like the signals).

        A contiguous range of a C-contiguous column is a read-only view made
        through the numpy C API (a few hundred ns, whatever the length);
        rows of several feeds are a read-only copy.
        """
        if self.rows is None:
            return _range_view(arr, self.start, self.stop)
        out = arr[self.rows]
        out.flags.writeable = False
        return out

    cdef object _gather(self, bint as_weights):
        """A new read-only array of each bar's position (weights: x last close / equity)."""
        cdef Portfolio pf = <Portfolio?> self.portfolio
        cdef const int32_t* asset = &self.store.asset[0] if self.store.n_rows else NULL
        cdef cnp.ndarray rows_arr
        cdef const int64_t* rows = NULL
        cdef Py_ssize_t i, n, r
        cdef double equity = 0.0, gross, p, v
        cdef const double* held = NULL
        cdef const double* price = NULL
        if pf.n_assets:
            held = &pf.position[0]
            price = &pf.last_price[0]
        if self.rows is None:
            n = self.stop - self.start
        else:
            rows_arr = <cnp.ndarray> np.ascontiguousarray(self.rows, dtype=np.int64)
            rows = <const int64_t*> cnp.PyArray_DATA(rows_arr)
            n = cnp.PyArray_DIMS(rows_arr)[0]
        if as_weights:
            pf.exposures(&equity, &gross)  # equity = cash + value, as Portfolio.equity()
            equity = pf.cash + equity
        cdef cnp.npy_intp dims = n
        out = cnp.PyArray_EMPTY(1, &dims, cnp.NPY_FLOAT64, 0)
        cdef double* dst = <double*> cnp.PyArray_DATA(<cnp.ndarray> out)
        for i in range(n):
            r = self.start + i if rows == NULL else rows[i]
            p = held[asset[r]]
            if not as_weights:
                dst[i] = p
            elif equity > 0:
                v = p * price[asset[r]] if p != 0 else 0.0
                dst[i] = v / equity
            else:  # weights are undefined
                dst[i] = NAN
        cnp.PyArray_CLEARFLAGS(<cnp.ndarray> out, cnp.NPY_ARRAY_WRITEABLE)
        return out

    def __len__(self):
        if self.rows is None:
            return self.stop - self.start
        return len(self.rows)

    @property
    def timestamp(self):
        return self.store.to_datetime(self.ts)

    @property
    def asset_ids(self):
        return self._col(self.store.asset_array)

    @property
    def assets(self):
        out = self.store.names_array[self._col(self.store.asset_array)]
        out.flags.writeable = False
        return out

    @property
    def open(self):
        return self._col(self.store.open_array)

    @property
    def high(self):
        return self._col(self.store.high_array)

    @property
    def low(self):
        return self._col(self.store.low_array)

    @property
    def close(self):
        return self._col(self.store.close_array)

    @property
    def volume(self):
        return self._col(self.store.volume_array)

    @property
    def signals(self):
        return self._col(self.store.signal_array)

    @property
    def signal_names(self):
        return self.store.signal_names

    def signal(self, name):
        """Return one signal column by name (a 1-d read-only array)."""
        try:
            j = self.store.signal_index[name]
        except KeyError:
            raise KeyError(f"no signal named {name!r}; signals are {list(self.store.signal_names)}") from None
        return self.signals[:, j]

    @property
    def positions(self):
        return self._gather(False)

    @property
    def weights(self):
        """Current weights: position x last close / equity, aligned with the bars (0.0 flat).

        NaN everywhere when equity is not > 0 (weights are undefined).
        """
        return self._gather(True)

    def __repr__(self):
        return f"SliceView({self.timestamp}, {len(self)} bars)"

    @property
    def indicator_names(self):
        """Names of the declared indicators, in the order of the columns of :attr:`indicators`."""
        return self.store.indicator_names

    def indicator(self, name):
        """One indicator by name, aligned with the bars (a 1-d read-only array)."""
        try:
            j = self.store.indicator_index[name]
        except KeyError:
            raise KeyError(f"no indicator named {name!r}; indicators are "
                           f"{list(self.store.indicator_names)}") from None
        return self._col(self.store.indicator_rows[j])

    @property
    def indicators(self):
        """Every declared indicator, shape (len(view), k): a column per ``indicator_names``."""
        # The rows of the named series, transposed: a read-only view (a copy only when
        # several feeds have bars at the timestamp), shape (len(view), k), F-ordered.
        k = len(self.store.indicator_names)
        return self._col(self.store.indicator_array[:k].T)


cdef object _range_view(object arr, idx_t start, idx_t stop):
    """Read-only view of rows ``start:stop`` of a C-contiguous 1-d or 2-d array."""
    cdef cnp.ndarray a = <cnp.ndarray> arr
    cdef int nd = cnp.PyArray_NDIM(a)
    cdef cnp.npy_intp dims[2]
    cdef cnp.npy_intp* shape = cnp.PyArray_DIMS(a)
    if not (cnp.PyArray_IS_C_CONTIGUOUS(a) and 1 <= nd <= 2
            and 0 <= start <= stop <= shape[0]):
        out = arr[start:stop]
        if out.flags.writeable:
            out = out.view()
            out.flags.writeable = False
        return out
    dims[0] = stop - start
    if nd == 2:
        dims[1] = shape[1]
    out = cnp.PyArray_New(cnp.ndarray, nd, dims, cnp.PyArray_TYPE(a), NULL,
                          cnp.PyArray_BYTES(a) + start * cnp.PyArray_STRIDES(a)[0],
                          0, 0, None)
    cnp.set_array_base(<cnp.ndarray> out, arr)
    return out


cdef SliceView make_slice_view(BarStore store, ts_t ts, idx_t start, idx_t stop, object rows,
                               object portfolio):
    cdef SliceView v = SliceView.__new__(SliceView)
    v.store = store
    v.ts = ts
    v.start = start
    v.stop = stop
    v.rows = rows
    v.portfolio = portfolio
    return v


def annotate(exc, hook, timestamp, asset):
    """Add a note naming where a user's exception was raised, keeping its type.

    Parameters
    ----------
    exc : BaseException
        The exception (a strategy hook's, a timer's or a cost model's).
    hook : str
        The hook or callback that raised (``"on_slice"``, ``"MyModel.compute() (commission
        model)"``); ``()`` is added when it does not end with a call already.
    timestamp : datetime.datetime or None
        When (None for ``on_start``, ``on_end`` and model set-up).
    asset : str or None
        The asset concerned, if any.
    """
    where = f"mlbacktest: raised in {hook}" if ")" in hook else f"mlbacktest: raised in {hook}()"
    if timestamp is not None:
        where += f" at timestamp {timestamp}"
    if asset is not None:
        where += f", asset {asset!r}"
    if hasattr(exc, "add_note"):
        exc.add_note(where)
    else:  # Python 3.10
        exc.__notes__ = [*getattr(exc, "__notes__", []), where]
