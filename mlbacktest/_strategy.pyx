# cython: language_level=3
"""The compiled base of :class:`~mlbacktest.Strategy`: accessors and order helpers per bar.

``StrategyCore`` sits between :class:`~mlbacktest._guard.Guarded` and
``Strategy``. It holds C references to the running engine, the portfolio
and the bar store, and implements the calls a strategy makes once per
asset-bar: ``history`` (a read-only view ending at the asset's latest bar,
found in O(1) through the engine's ``last_row``), ``history_panel``,
``get_position``, ``get_last_price``, ``get_unrealized_pnl`` and the market
order helpers (``buy``, ``sell``, ``close_position``,
``order_target_quantity/value/percent``).

Each public method has one fast path for the common call (an asset named
by ``str`` or ``int``, plain numbers, default keywords); any other call, and
every error, goes through the full Python path of ``Strategy`` (``order``,
``_asset_id``, ``_history_slow``, ``_check_history_args`` ...), so there is
one validation path and one message per refused input. Field names are
resolved by ``Strategy._resolve_column`` only (``strategy._store_column``).
"""

cimport numpy as cnp
from cpython.dict cimport PyDict_GetItem
from cpython.exc cimport PyErr_Clear, PyErr_Occurred
from cpython.float cimport PyFloat_AS_DOUBLE
from cpython.long cimport PyLong_AsLongLongAndOverflow
from cpython.number cimport PyNumber_AsSsize_t
from cpython.object cimport PyObject
from libc.math cimport NAN, fabs, fmax, isfinite
from libc.stdint cimport int64_t

from mlbacktest._engine cimport Engine
from mlbacktest._events cimport BarStore
from mlbacktest._guard cimport Guarded
from mlbacktest._portfolio cimport whole_units
from mlbacktest._typedefs cimport MLB_NO_TS, ts_t
from mlbacktest._window cimport window_view

import numpy as np

from mlbacktest._window import HistoryWindow
from mlbacktest.errors import OrderError

cnp.import_array()


cdef extern from "Python.h":
    # without Cython's error check: a too large int sends the caller to its full path
    double _long_as_double "PyLong_AsDouble"(object v) noexcept

cdef object _F64 = np.float64
#: numpy integer scalar types: an asset id read from an array (``view.asset_ids``)
cdef frozenset _NP_INTS = frozenset({np.int8, np.int16, np.int32, np.int64, np.uint8,
                                     np.uint16, np.uint32, np.uint64})
cdef object _EMPTY_F64 = np.empty(0, dtype=np.float64)
_EMPTY_F64.flags.writeable = False


cdef inline bint _as_double(object v, double* out) except -1:
    """Write ``v`` to ``out`` when it is a finite float, numpy float64 or int; else False.

    False sends the caller to its full path, which names what is wrong.
    """
    cdef object t = type(v)
    cdef double d
    if t is float or t is _F64:
        d = PyFloat_AS_DOUBLE(v)
    elif t is int:
        d = _long_as_double(v)
        if d == -1.0 and PyErr_Occurred() != NULL:
            PyErr_Clear()
            return False
    else:
        return False
    if not isfinite(d):
        return False
    out[0] = d
    return True


cdef inline Py_ssize_t _whole(object n) noexcept:
    """``n`` when it is a plain int > 0 that fits in C; else -1 (the full path checks it)."""
    cdef int overflow = 0
    cdef long long v
    if type(n) is not int:
        return -1
    v = PyLong_AsLongLongAndOverflow(n, &overflow)
    if overflow != 0 or v <= 0:
        return -1
    return <Py_ssize_t> v


def _rebuild(cls, state):
    """A strategy of class ``cls`` with instance attributes ``state`` (unpickling, copies)."""
    obj = cls.__new__(cls)
    if state:
        obj.__dict__.update(state)
    return obj


cdef inline bint _is_gtc(object tif) noexcept:
    return type(tif) is str and tif == "gtc"


cdef class StrategyCore(Guarded):
    """Compiled accessors and market-order helpers of :class:`~mlbacktest.Strategy`.

    Not used on its own: ``Strategy`` derives from it and supplies the full
    (Python) paths the fast paths here fall back to.
    """

    def __cinit__(self, *args, **kwargs):
        self.core = None
        self.hist_ready = False
        self.tix_ready = False
        self.hist_cols = {}
        self.tix_cols = {}
        self.tix_k1 = 0
        self.tix_now = MLB_NO_TS
        self.eq_version = -1

    def __reduce__(self):
        """Pickle and copy a strategy by its class and instance attributes.

        The C references to a run are not part of the state: a copy is
        unbound, like the strategy before its run (a bound strategy's
        attributes hold the engine, which cannot be pickled).
        """
        return _rebuild, (type(self), getattr(self, "__dict__", None))

    # ------------------------------------------------------------ binding
    def _core_bind(self, Engine engine not None, bint fractional):
        """Hold the engine's portfolio, broker arrays and store (called by ``Strategy._bind``)."""
        self.core = engine
        self.pf = engine.portfolio
        self.asset_ids = engine.store.asset_index
        self.n_assets_c = engine.store.n_assets
        self.fractional_c = fractional
        self.hist_limit = engine.history_limit
        self.pos = engine.portfolio.position_array
        self.last_px = engine.portfolio.last_price_array
        self.avg_cost = engine.portfolio.avg_cost_array
        self.pending = engine.broker.pending_market_array
        self.eq_version = -1
        self._core_set_store(engine.store)

    def _core_release(self):
        """Drop the C references to the finished run (engine, portfolio, store, caches).

        The strategy and its engine refer to each other; a caller that is done
        with a run (a sweep's worker) cuts that cycle so the run's memory is
        freed at once rather than at the next garbage collection. The
        accessors then raise as before a run.
        """
        self.core = None
        self.pf = None
        self.bars = None
        self.asset_ids = None
        self.pos = None
        self.last_px = None
        self.avg_cost = None
        self.pending = None
        self.eq_version = -1
        self.hist_ready = False
        self.hist_order = None
        self.hist_pos = None
        self.hist_offsets = None
        self.hist_slot = None
        self.hist_cols = {}
        self.tix_ready = False
        self.tix_times = None
        self.tix_starts = None
        self.tix_slot = None
        self.tix_asset = None
        self.tix_cols = {}

    def _core_set_store(self, BarStore store not None):
        """Read bars from ``store`` from now on; drops every per-field cache (by name)."""
        if self.core is not None and store.n_assets != self.n_assets_c:
            raise ValueError(f"the new store has {store.n_assets} assets, the run "
                             f"{self.n_assets_c}")
        self.bars = store
        self.hist_ready = False
        self.hist_order = None
        self.hist_pos = None
        self.hist_offsets = None
        self.hist_slot = None
        self.hist_cols = {}
        self.tix_ready = False
        self.tix_times = None
        self.tix_starts = None
        self.tix_slot = None
        self.tix_asset = None
        self.tix_cols = {}
        self.tix_k1 = 0
        self.tix_now = MLB_NO_TS

    cdef int require(self) except -1:
        if self.core is None:
            self._require_engine()
            raise RuntimeError("this strategy is not attached to a running BacktestEngine")
        return 0

    cdef Py_ssize_t aid_of(self, object asset) except -1:
        """The id of an asset named by str, int or numpy int; else the full path (``_asset_id``)."""
        cdef PyObject* hit
        cdef long long v
        cdef int overflow = 0
        cdef object t = type(asset)
        if t is str:
            hit = PyDict_GetItem(self.asset_ids, asset)
            if hit != NULL:
                return <Py_ssize_t> (<object> hit)
        elif t is int:
            v = PyLong_AsLongLongAndOverflow(asset, &overflow)
            if overflow == 0 and 0 <= v < self.n_assets_c:
                return <Py_ssize_t> v
        elif t in _NP_INTS:
            v = PyNumber_AsSsize_t(asset, None)  # clipped on overflow: out of range below
            if 0 <= v < self.n_assets_c:
                return <Py_ssize_t> v
        return <Py_ssize_t> self._asset_id(asset)

    # ------------------------------------------------------------ state
    def get_position(self, asset):
        """Signed quantity held (0.0 when flat).

        Parameters
        ----------
        asset : str or int
            Asset name or id.

        Returns
        -------
        float
        """
        self.require()
        return self.pos[self.aid_of(asset)]

    def get_last_price(self, asset):
        """Close of the asset's latest bar seen so far (NaN before its first bar).

        Parameters
        ----------
        asset : str or int
            Asset name or id.

        Returns
        -------
        float
        """
        self.require()
        return self.last_px[self.aid_of(asset)]

    def get_unrealized_pnl(self, asset=None):
        """Unrealized P&L against average cost, of one asset or (``None``) of all.

        Parameters
        ----------
        asset : str or int, optional
            Asset name or id; None sums every position.

        Returns
        -------
        float
            Position x (last close - average cost); 0.0 when flat.
        """
        cdef Py_ssize_t aid
        cdef double q
        self.require()
        if asset is None:
            return self._unrealized_total()
        aid = self.aid_of(asset)
        q = self.pos[aid]
        if q == 0.0:
            return 0.0
        return q * (self.last_px[aid] - self.avg_cost[aid])

    # ------------------------------------------------------------ history
    def history(self, asset, field, n):
        """The last ``n`` values of a field of one asset, ending at the current bar.

        Parameters
        ----------
        asset : str or int
            Asset name or id.
        field : str
            ``"open"``, ``"high"``, ``"low"``, ``"close"``, ``"volume"`` or a
            signal name.
        n : int
            Number of bars wanted (> 0). Fewer come back when the asset has
            fewer bars so far.

        Returns
        -------
        HistoryWindow
            A read-only float64 view (an ndarray subclass), oldest first, whose
            last value is the asset's latest bar at or before the current
            timestamp (inside a timer between bars: the latest bar before it).
            Empty before the first timestamp. Its ``sum``, ``mean``, ``var``,
            ``std``, ``min`` and ``max`` with default arguments are compiled
            and equal numpy's bit for bit; slices keep the class, ufunc and
            arithmetic results are plain ndarrays (see ``mlbacktest._window``).

        Raises
        ------
        ValueError
            For ``n <= 0`` (or not a whole number), more bars than a
            streamed run keeps, or an unknown field.
        OrderError
            For an unknown asset.

        Notes
        -----
        O(1): the engine keeps each asset's latest row, and the window is a
        slice of a per-asset, time-ordered copy of the column (made once per
        field on first use).
        """
        cdef Py_ssize_t nn = _whole(n)
        cdef PyObject* col
        cdef Py_ssize_t aid
        if (self.core is None or nn < 0 or (self.hist_limit and nn > self.hist_limit)
                or self.core.current_ts == MLB_NO_TS):
            return self._history_slow(asset, field, n)
        col = PyDict_GetItem(self.hist_cols, field)
        if col == NULL:
            return self._history_slow(asset, field, n)
        aid = self.aid_of(asset)
        return self.window(aid, <object> col, nn)

    def _history_window(self, Py_ssize_t aid, str field, Py_ssize_t n):
        """The window of a checked call (the full path); caches the field's column."""
        self.require()
        if n <= 0:
            raise ValueError(f"history needs n > 0 bars, got {n}")
        return self.window(aid, self.hist_column(field), n)

    cdef int ensure_hist(self) except -1:
        cdef BarStore store = self.bars
        if self.hist_ready:
            return 0
        order = np.lexsort((store.ts_array, store.asset_array))
        counts = np.bincount(store.asset_array, minlength=store.n_assets)
        offsets = np.zeros(store.n_assets + 1, dtype=np.int64)
        np.cumsum(counts, out=offsets[1:])
        pos = np.empty(store.n_rows, dtype=np.int64)
        pos[order] = np.arange(store.n_rows, dtype=np.int64)
        self.hist_order = order
        self.hist_pos = pos
        self.hist_offsets = offsets
        self.hist_ready = True
        return 0

    cdef object window(self, Py_ssize_t aid, object col, Py_ssize_t n):
        """``n`` values of ``col`` (in hist_order) ending at the asset's latest row."""
        cdef int64_t row, end, start, first
        if not 0 <= aid < self.n_assets_c:
            raise IndexError(f"asset id {aid} out of range: the run has {self.n_assets_c} assets")
        self.ensure_hist()
        first = self.hist_offsets[aid]
        row = self.core.last_row[aid]
        if row < 0:
            return window_view(col, first, 0)
        if row >= self.hist_pos.shape[0]:
            raise IndexError(f"the engine's latest row {row} of asset {aid} is outside the "
                             f"strategy's store ({self.hist_pos.shape[0]} rows)")
        end = self.hist_pos[row] + 1
        start = end - n
        if start < first:
            start = first
        return window_view(col, start, end - start)

    def history_panel(self, field, n, assets=None):
        """The last ``n`` timestamps of a field for many assets, ending at the current bar.

        Rows are the last ``n`` distinct bar timestamps **of the run** (every
        feed, every asset) at or before the current time, oldest first;
        :meth:`history_timestamps` gives them. Columns are assets. A cell is
        the asset's bar value at that timestamp, or NaN when the asset had no
        bar stamped then (not yet listed, a gap, another feed's timestamp):
        values are never carried forward, so a row holds only what was
        observed at its timestamp.

        Parameters
        ----------
        field : str
            ``"open"``, ``"high"``, ``"low"``, ``"close"``, ``"volume"`` or a
            signal name.
        n : int
            Number of timestamps wanted (> 0). Fewer rows come back early in
            the run; none before the first timestamp (in ``on_start``).
        assets : sequence of str or int, or SliceView, optional
            Columns, in this order. Default: every asset, by id (the order of
            :attr:`assets`). A slice view gives its bars' assets
            (``view.asset_ids``).

        Returns
        -------
        HistoryWindow, shape (rows, columns)
            A read-only float64 array (as :meth:`history`'s); its last row is
            the current timestamp when it has bars (inside a timer between
            bars: the latest timestamp before it).

        Raises
        ------
        ValueError
            For ``n <= 0`` (or not a whole number) or an unknown field.

        Notes
        -----
        Built in C in O(rows x columns); the position of the current time
        in the run's timestamps is followed by a cursor, not searched.
        """
        cdef Py_ssize_t nn = _whole(n)
        cdef PyObject* hit = NULL
        cdef Py_ssize_t width, k0, k1, r, j, p, first, nrows, lo, hi, mid
        cdef int64_t row, slot
        cdef ts_t now
        cdef double* out_data
        cdef const double[::1] values
        cdef const int64_t[::1] cols
        self.require()
        if nn > 0 and not (self.hist_limit and nn > self.hist_limit):
            hit = PyDict_GetItem(self.tix_cols, field)
        if hit == NULL:
            field = self._check_history_args(field, n)
            nn = n
        ids = None if assets is None else self.panel_ids(assets)
        width = self.n_assets_c if ids is None else len(ids)
        now = self.core.current_ts
        if now == MLB_NO_TS:
            out = np.empty((0, width), dtype=np.float64).view(HistoryWindow)
            out.flags.writeable = False
            return out
        self.ensure_tix()
        # the cursor follows the clock forward (amortised O(1)); a jump back searches
        if now >= self.tix_now:
            k1 = self.tix_k1
            while k1 < self.tix_times.shape[0] and self.tix_times[k1] <= now:
                k1 += 1
        else:
            lo, hi = 0, self.tix_times.shape[0]
            while lo < hi:
                mid = (lo + hi) >> 1
                if self.tix_times[mid] <= now:
                    lo = mid + 1
                else:
                    hi = mid
            k1 = lo
        self.tix_k1 = k1
        self.tix_now = now
        k0 = k1 - nn if k1 > nn else 0
        nrows = k1 - k0
        out = np.empty((nrows, width), dtype=np.float64).view(HistoryWindow)
        out_data = <double*> cnp.PyArray_DATA(<cnp.ndarray> out)
        for r in range(nrows * width):
            out_data[r] = NAN
        if ids is None:  # every asset: scatter the rows of the span, in time order
            values = self.tix_column(field)
            for r in range(self.tix_starts[k0], self.tix_starts[k1]):
                out_data[(self.tix_slot[r] - k0) * width + self.tix_asset[r]] = values[r]
        else:  # chosen assets: walk each one's rows back from its latest bar
            values = self.hist_column(field)
            cols = ids
            for j in range(width):
                if not 0 <= cols[j] < self.n_assets_c:
                    raise IndexError(f"asset id {cols[j]} out of range: the run has "
                                     f"{self.n_assets_c} assets")
            for j in range(width):
                row = self.core.last_row[cols[j]]
                if row < 0:
                    continue
                if row >= self.hist_pos.shape[0]:
                    raise IndexError(f"the engine's latest row {row} of asset {cols[j]} is "
                                     f"outside the strategy's store "
                                     f"({self.hist_pos.shape[0]} rows)")
                first = self.hist_offsets[cols[j]]
                p = self.hist_pos[row]
                while p >= first:
                    slot = self.hist_slot[p]
                    if slot < k0:
                        break
                    out_data[(slot - k0) * width + j] = values[p]
                    p -= 1
        out.flags.writeable = False
        return out

    cdef object panel_ids(self, object assets):
        """int64 ids of a list or tuple of names and ids; anything else: ``_asset_list``."""
        cdef Py_ssize_t j, m
        cdef int64_t[::1] out
        cdef object t
        if type(assets) is list or type(assets) is tuple:
            m = len(assets)
            for j in range(m):
                t = type(assets[j])
                if t is not str and t is not int:
                    return self._asset_list(assets)
            ids = np.empty(m, dtype=np.int64)
            out = ids
            for j in range(m):
                out[j] = self.aid_of(assets[j])
            return ids
        return np.ascontiguousarray(self._asset_list(assets), dtype=np.int64)

    cdef object tix_column(self, str field):
        """The field in timestamp order (the _TimeIndex's), cached by name."""
        col = self.tix_cols.get(field)
        if col is None:
            col = np.ascontiguousarray(self._time_index().column(field), dtype=np.float64)
            self.tix_cols[field] = col
        return col

    cdef object hist_column(self, str field):
        """The field in (asset, time) order, cached by name."""
        col = self.hist_cols.get(field)
        if col is None:
            self.ensure_hist()
            col = np.ascontiguousarray(self._resolve_column(field)[self.hist_order],
                                       dtype=np.float64)
            col.flags.writeable = False
            self.hist_cols[field] = col
        return col

    cdef int ensure_tix(self) except -1:
        if self.tix_ready:
            return 0
        index = self._time_index()
        self.tix_times = np.ascontiguousarray(index.times, dtype=np.int64)
        self.tix_starts = np.ascontiguousarray(index.starts, dtype=np.int64)
        self.tix_slot = np.ascontiguousarray(index.slot, dtype=np.int64)
        self.tix_asset = np.ascontiguousarray(index.asset, dtype=np.int32)
        self.ensure_hist()
        ts_sorted = self.bars.ts_array[self.hist_order]
        self.hist_slot = np.searchsorted(index.times, ts_sorted).astype(np.int64)
        self.tix_k1 = 0
        self.tix_now = MLB_NO_TS
        self.tix_ready = True
        return 0

    # ------------------------------------------------------------ sizing
    cdef double sizing_price(self, Py_ssize_t aid) except? -1.0:
        cdef double price = self.last_px[aid]
        if not price > 0:
            raise OrderError(
                f"asset {self.bars.asset_names[aid]!r} has no price yet: "
                "size orders by quantity before its first bar"
            )
        return price

    cdef double weights_equity(self) except? -1.0:
        cdef double value, gross, equity
        if self.pf.version != self.eq_version:  # cash, a position or a price moved
            self.pf.exposures(&value, &gross)
            self.eq_value = self.pf.cash + value
            self.eq_version = self.pf.version
        equity = self.eq_value
        if not (equity > 0 and isfinite(equity)):
            raise OrderError(f"weights are fractions of equity, and equity is {equity}")
        return equity

    cdef double round_q(self, double quantity) noexcept nogil:
        return quantity if self.fractional_c else whole_units(quantity)

    def _price_for_sizing(self, Py_ssize_t aid):
        """The last close of asset ``aid``; OrderError when it has none yet."""
        self.require()
        if not 0 <= aid < self.n_assets_c:
            raise IndexError(f"asset id {aid} out of range: the run has {self.n_assets_c} assets")
        return self.sizing_price(aid)

    def _equity_for_weights(self):
        """Equity, which weights are fractions of; OrderError when it is not > 0."""
        self.require()
        return self.weights_equity()

    def _round(self, double quantity):
        """A helper's order size: whole units toward zero unless fractional (see round_whole)."""
        return self.round_q(quantity)

    def _to_target(self, Py_ssize_t aid, double target, tolerance):
        """The market order from position + working market orders to ``target`` units."""
        self.require()
        if not 0 <= aid < self.n_assets_c:
            raise IndexError(f"asset id {aid} out of range: the run has {self.n_assets_c} assets")
        return self.to_target(aid, target, tolerance)

    cdef object to_target(self, Py_ssize_t aid, double target, object tolerance):
        cdef double current = self.pos[aid] + self.pending[aid]
        cdef double tol, delta
        if not (type(tolerance) is float and PyFloat_AS_DOUBLE(tolerance) == 0.0):
            tol = self._as_float(tolerance, "tolerance")
            if tol < 0:
                raise OrderError(f"tolerance must be >= 0, got {tolerance!r}")
            if tol > 0 and target != 0:
                if fabs(target - current) * self.sizing_price(aid) < tol * self.weights_equity():
                    return None
        # Whole shares: the order (not the target) is truncated toward zero,
        # so the position never trades past the target.
        delta = self.round_q(target - current)
        if fabs(delta) <= 1e-12 * fmax(fmax(fabs(target), fabs(current)), 1.0):
            return None
        return self.core.submit_c(<int> aid, delta, 0, NAN, NAN, NAN, NAN, 0, None, -1)

    # ------------------------------------------------------------ orders
    cdef object side_order(self, double sign, str side, object asset, object quantity,
                           object limit_price, object stop_price, object trail_amount,
                           object trail_percent, object order_type, object time_in_force,
                           object expire_at, object parent):
        """``buy`` (+1) or ``sell`` (-1): a plain market order in C, else through ``order``."""
        cdef double q
        if (self.core is not None and limit_price is None and stop_price is None
                and trail_amount is None and trail_percent is None and order_type is None
                and expire_at is None and parent is None and _is_gtc(time_in_force)
                and _as_double(quantity, &q) and q > 0):
            return self.core.submit_c(<int> self.aid_of(asset), sign * q, 0, NAN, NAN, NAN, NAN,
                                      0, None, -1)
        q = self._as_float(quantity, "quantity")
        if not q > 0:
            raise OrderError(f"{side} quantity must be > 0, got {quantity!r}")
        return self.order(asset, sign * q, limit_price, stop_price, trail_amount=trail_amount,
                          trail_percent=trail_percent, order_type=order_type,
                          time_in_force=time_in_force, expire_at=expire_at, parent=parent)

    def buy(self, asset, quantity, limit_price=None, stop_price=None, *, trail_amount=None,
            trail_percent=None, order_type=None, time_in_force="gtc", expire_at=None,
            parent=None):
        """Buy ``quantity`` (> 0): :meth:`order` with a positive quantity.

        Every other parameter is that of :meth:`order` (a limit, stop,
        stop-limit or trailing buy by the prices given).

        Parameters
        ----------
        asset : str or int
            Asset name or id.
        quantity : float
            Units to buy (> 0).
        limit_price, stop_price, trail_amount, trail_percent, order_type, time_in_force,
        expire_at, parent
            As for :meth:`order`.

        Returns
        -------
        OrderEvent
            A live view of the order.

        Raises
        ------
        OrderError
            For a quantity that is not > 0, and everything :meth:`order` refuses.
        """
        return self.side_order(1.0, "buy", asset, quantity, limit_price, stop_price,
                               trail_amount, trail_percent, order_type, time_in_force, expire_at,
                               parent)

    def sell(self, asset, quantity, limit_price=None, stop_price=None, *, trail_amount=None,
             trail_percent=None, order_type=None, time_in_force="gtc", expire_at=None,
             parent=None):
        """Sell ``quantity`` (> 0): :meth:`order` with ``-quantity``.

        Every other parameter is that of :meth:`order`.

        Parameters
        ----------
        asset : str or int
            Asset name or id.
        quantity : float
            Units to sell (> 0).
        limit_price, stop_price, trail_amount, trail_percent, order_type, time_in_force,
        expire_at, parent
            As for :meth:`order`.

        Returns
        -------
        OrderEvent
            A live view of the order.

        Raises
        ------
        OrderError
            For a quantity that is not > 0, and everything :meth:`order` refuses.
        """
        return self.side_order(-1.0, "sell", asset, quantity, limit_price, stop_price,
                               trail_amount, trail_percent, order_type, time_in_force, expire_at,
                               parent)

    def order_target_quantity(self, asset, target, *, tolerance=0.0):
        """Trade toward a signed target quantity with a market order.

        The gap is measured from the position plus working market orders
        on the asset, so calling this every bar does not stack orders. With
        whole shares the order size is truncated toward zero (as backtrader
        and vectorbt do), so the position never trades past the target.

        Parameters
        ----------
        asset : str or int
            Asset name or id.
        target : float
            Signed target quantity.
        tolerance : float
            Minimum trade, as a fraction of equity (0.01 = 1 %): no order
            when ``|target - current| x last close < tolerance x equity``,
            the rule of :meth:`rebalance`. A target of exactly 0 always
            closes the position. Default 0.0: every gap is traded.

        Returns
        -------
        OrderEvent or None
            The order; None when the target is met (or within tolerance).
        """
        cdef double t
        self.require()
        cdef Py_ssize_t aid = self.aid_of(asset)
        if not _as_double(target, &t):
            t = self._as_float(target, "target")
        return self.to_target(aid, t, tolerance)

    def order_target_value(self, asset, value, *, tolerance=0.0):
        """Trade toward a position worth ``value`` at the last close (negative: short).

        ``tolerance`` (a fraction of equity) skips a trade smaller than
        ``tolerance x equity``, as in :meth:`order_target_quantity`.

        Parameters
        ----------
        asset : str or int
            Asset name or id.
        value : float
            Signed target value, in the account's currency.
        tolerance : float
            As for :meth:`order_target_quantity`.

        Returns
        -------
        OrderEvent or None
            The order; None when the target is met (or within tolerance).

        Raises
        ------
        OrderError
            For an asset with no price yet.
        """
        cdef double v
        self.require()
        cdef Py_ssize_t aid = self.aid_of(asset)
        if not _as_double(value, &v):
            v = self._as_float(value, "value")
        return self.to_target(aid, v / self.sizing_price(aid), tolerance)

    def order_target_percent(self, asset, percent, *, tolerance=0.0):
        """Trade toward a position worth ``percent`` of equity (0.1 = 10 %; negative: short).

        ``tolerance`` (a fraction of equity) skips a trade that would move
        the weight by less than that, the rule of :meth:`rebalance`: with
        ``tolerance=0.01`` a 10 % position is left alone while its weight
        drifts within (9 %, 11 %). Default 0.0 re-trades every drift.

        Parameters
        ----------
        asset : str or int
            Asset name or id.
        percent : float
            Signed target weight (fraction of equity).
        tolerance : float
            As for :meth:`order_target_quantity`.

        Returns
        -------
        OrderEvent or None
            The order; None when the target is met (or within tolerance).

        Raises
        ------
        OrderError
            When equity is not > 0 (weights are undefined), and for an
            asset with no price yet.
        """
        cdef double p, value
        self.require()
        cdef Py_ssize_t aid = self.aid_of(asset)
        if not _as_double(percent, &p):
            p = self._as_float(percent, "percent")
        value = p * self.weights_equity()
        return self.to_target(aid, value / self.sizing_price(aid), tolerance)

    def close_position(self, asset):
        """Flatten the position with a market order (None when already flat).

        Parameters
        ----------
        asset : str or int
            Asset name or id.

        Returns
        -------
        OrderEvent or None
        """
        self.require()
        return self.to_target(self.aid_of(asset), 0.0, 0.0)
