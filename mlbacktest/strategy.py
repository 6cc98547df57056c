"""The Strategy base class: hooks the engine calls and helpers to trade from them."""

from __future__ import annotations

import math
import numbers
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, NamedTuple

import numpy as np

from mlbacktest._events import OrderEvent
from mlbacktest._guard import set_reserved
from mlbacktest._portfolio import round_whole_array
from mlbacktest._strategy import StrategyCore
from mlbacktest._time import to_ns
from mlbacktest._window import as_window
from mlbacktest.errors import IndicatorError, OrderError, did_you_mean
from mlbacktest.indicators import IndicatorPlan, Series
from mlbacktest.indicators._plan import check_name

if TYPE_CHECKING:  # pragma: no cover
    from mlbacktest._engine import Engine
    from mlbacktest._events import BarStore, FillEvent, MarketEvent, SliceView
    from mlbacktest.live.base import ErrorEvent

__all__ = ["Strategy", "Bracket", "ORDER_TYPES", "TIME_IN_FORCE"]

_ORDER_MARKET, _ORDER_LIMIT, _ORDER_STOP, _ORDER_STOP_LIMIT, _ORDER_TRAILING = 0, 1, 2, 3, 4
#: Order type names accepted by ``Strategy.order(order_type=...)``, by engine code.
ORDER_TYPES = {
    "market": 0,
    "limit": 1,
    "stop": 2,
    "stop_limit": 3,
    "trailing_stop": 4,
    "market_on_open": 5,
    "market_on_close": 6,
}
#: Time-in-force names accepted by ``Strategy.order(time_in_force=...)``, by engine code.
TIME_IN_FORCE = {"gtc": 0, "day": 1, "ioc": 2, "fok": 3, "gtd": 4}
_BAR_FIELDS = ("open", "high", "low", "close", "volume")
_NO_TS = np.iinfo(np.int64).min


class Bracket(NamedTuple):
    """The orders of a bracket: the entry and its protective children (None when not asked for)."""

    entry: OrderEvent
    stop_loss: OrderEvent | None
    take_profit: OrderEvent | None


def _store_column(store: BarStore, field: str) -> np.ndarray:
    """A bar field, signal or indicator column of ``store``, in row order (read-only).

    The one place a history field name is resolved (``history``,
    ``history_panel``); an unknown name is a ValueError listing the fields.
    """
    if field in _BAR_FIELDS:
        return getattr(store, field + "_array")  # type: ignore[no-any-return]
    if isinstance(field, str):
        j = store.signal_index.get(field)
        if j is not None:
            return store.signal_array[:, j]  # type: ignore[no-any-return]
        k = store.indicator_index.get(field)
        if k is not None:
            return store.indicator_array[k]  # type: ignore[no-any-return]
    raise ValueError(
        f"unknown history field {field!r}; fields are {list(_BAR_FIELDS)}, "
        f"signals {list(store.signal_names)} and indicators {list(store.indicator_names)}"
    )


def _class_indicators(cls: type) -> list[tuple[str, Series]]:
    """Indicators declared as class attributes of ``cls`` and its bases, bases first."""
    found: dict[str, Series] = {}
    for klass in reversed(cls.__mro__):
        for name, value in vars(klass).items():
            if isinstance(value, Series):
                found.pop(name, None)  # a subclass redeclaring a name: its own, in its order
                found[name] = value
    return list(found.items())


class _TimeIndex:
    """The run's bar rows in timestamp order, for cross-sectional history.

    ``times`` holds the distinct bar timestamps of the run (every feed),
    ascending; the rows of ``times[k]`` are ``rows(starts[k], starts[k + 1])``.
    With one feed the store's rows are already in timestamp order and no
    column is copied.
    """

    def __init__(self, store: BarStore) -> None:
        self._store = store
        ts = store.ts_array
        if ts.size < 2 or bool(np.all(ts[1:] >= ts[:-1])):
            self.order: np.ndarray | None = None
            sorted_ts = ts
            self.asset = store.asset_array
        else:  # several feeds: stable, so rows of one timestamp keep feed order
            self.order = np.argsort(ts, kind="stable")
            sorted_ts = ts[self.order]
            self.asset = store.asset_array[self.order]
        new = np.empty(ts.size, dtype=bool)
        new[:1] = True
        np.not_equal(sorted_ts[1:], sorted_ts[:-1], out=new[1:])
        first = np.flatnonzero(new)
        self.times = sorted_ts[first]
        self.times.flags.writeable = False
        self.starts = np.append(first, ts.size).astype(np.int64)
        self.slot = np.cumsum(new) - 1  # index into times of each (sorted) row
        self._columns: dict[str, np.ndarray] = {}

    def column(self, field: str) -> np.ndarray:
        """A field in timestamp order (the store's own column with one feed)."""
        col = self._columns.get(field)
        if col is None:
            col = _store_column(self._store, field)
            if self.order is not None:
                col = col[self.order]
                col.flags.writeable = False
            self._columns[field] = col
        return col

    def span(self, now: int, n: int) -> tuple[int, int]:
        """Indices ``k0, k1`` into ``times`` of the last ``n`` timestamps at or before ``now``."""
        k1 = int(np.searchsorted(self.times, now, side="right"))
        return max(0, k1 - n), k1

    def assets_at(self, now: int) -> np.ndarray:
        """Asset ids of the bars stamped ``now``, in the order of the slice view."""
        k = int(np.searchsorted(self.times, now, side="left"))
        if k == self.times.size or self.times[k] != now:
            return self.asset[:0]
        return self.asset[self.starts[k] : self.starts[k + 1]]


class Strategy(StrategyCore):
    """Base class for strategies: override the hooks you need.

    Every hook is optional, and a hook that is not overridden is never called
    (it costs nothing). At each timestamp the engine first fills orders
    against the new bars, then calls ``on_fill`` for those fills,
    ``on_market_data`` once per bar, and ``on_slice`` once. A strategy called
    at timestamp *t* has seen the close of every bar stamped *t*; orders it
    places fill on a later bar (see :class:`~mlbacktest.BacktestConfig`).

    Assets are named by their name (``str``) or by their integer id (the
    ``asset_ids`` of a slice view, ``event.asset_id``).

    Keep the strategy's state on ``self`` under names of your own: assigning
    a name of this API (``self.assets = ...``, ``self.weights = ...``, a
    hook) raises :class:`AttributeError` naming it, since the value would
    hide the helper.

    Examples
    --------
    >>> class BuyAndHold(Strategy):
    ...     def on_slice(self, view, context):
    ...         for name in view.assets:
    ...             if self.get_position(name) == 0:
    ...                 self.order_target_percent(name, 1.0 / len(self.assets))
    """

    _engine: Engine | None = None

    # ------------------------------------------------------------ hooks
    def on_start(self) -> None:
        """Called once before the first timestamp (orders placed here fill on the first bar)."""

    def on_market_data(self, event: MarketEvent, context: dict[str, Any]) -> None:
        """Called once per asset-bar, after the bar closed.

        Parameters
        ----------
        event : MarketEvent
            The bar: ``timestamp``, ``asset``, ``open`` ... ``volume``, ``signals``,
            ``indicators``.
        context : dict
            Market-wide values visible at this timestamp (shared by every
            call at one timestamp).
        """

    def on_slice(self, view: SliceView, context: dict[str, Any]) -> None:
        """Called once per timestamp with every bar of that timestamp as arrays.

        Parameters
        ----------
        view : SliceView
            ``assets``, ``asset_ids``, ``open`` ... ``volume``, ``signals``,
            ``signal_names``, ``indicators``, ``indicator_names`` and
            ``positions`` of every asset with a bar now.
        context : dict
            Market-wide values visible at this timestamp.
        """

    def on_fill(self, fill: FillEvent) -> None:
        """Called for each fill, before the bar hooks of the timestamp it happened at."""

    def on_signal(self, event: Any, context: dict[str, Any]) -> None:
        """Called for each row of a :class:`~mlbacktest.data.source.SignalSource` when it arrives.

        Arrival is the row's timestamp plus the source's latency; signals
        are delivered after the bar hooks of that timestamp, so orders placed
        here fill on a later bar.
        """

    def on_order(self, order: OrderEvent) -> None:
        """Called for each status change of an order.

        ``order.status`` is the status the event reports (submitted,
        accepted, partially_filled, filled, cancelled, expired, rejected);
        the other fields are read live. Status events of a timestamp are
        delivered before its ``on_fill`` calls.
        """

    def on_error(self, event: ErrorEvent) -> None:
        """Called in a paper or live run for each incident at its edge.

        ``event`` is a :class:`~mlbacktest.live.base.ErrorEvent`: a lost or
        restored connection, an order the venue rejected, a stale or
        duplicate bar, a signal that missed its timeout, a kill switch. It
        is delivered through the run's clock, *between* timestamps: after
        every hook of the last timestamp processed (``event.ts``) and before
        the bars of the next one, in the order the incidents were reported.
        Orders placed here are sent like those of any other hook. A
        backtest never calls it. The default does nothing (the run goes on);
        raise to stop the run.
        """

    def on_end(self) -> None:
        """Called once after the last timestamp (orders can no longer be placed)."""

    # ------------------------------------------------------------ binding
    def _bind(self, engine: Engine, fractional: bool) -> None:
        self._engine = engine
        self._store = engine.store
        self._portfolio = engine.portfolio
        self._broker = engine.broker
        self._positions = engine.portfolio.position_array
        self._last_price = engine.portfolio.last_price_array
        self._pending = engine.broker.pending_market_array
        self._asset_index = engine.store.asset_index
        self._n_assets = engine.store.n_assets
        self._fractional = fractional
        self._tindex: _TimeIndex | None = None
        store = engine.store
        columns = (*_BAR_FIELDS, *store.signal_names)
        self._indicator_decls: list[tuple[str, Series]] = []
        for name, spec in _class_indicators(type(self)):
            check_name(name, (n for n, _ in self._indicator_decls), columns, RESERVED_NAMES)
            self._indicator_decls.append((name, spec))
        self._indicators_open = True
        self._core_bind(engine, fractional)

    def add_indicator(self, name: str, series: Series) -> Series:
        """Declare an indicator from ``on_start``; it is computed before the first bar.

        Parameters
        ----------
        name : str
            Its name: ``event.indicators[name]``, ``view.indicator(name)``,
            ``self.history(asset, name, n)``. A Python identifier that is not
            a bar field, a signal, another indicator or a Strategy helper.
        series : Series
            A declaration of :mod:`mlbacktest.indicators` (``SMA("close", 10)``,
            arithmetic of series, ``Custom(fn, ...)``...).

        Returns
        -------
        Series
            ``series``, to build on (``ind.CrossOver(fast, slow)``).

        Raises
        ------
        IndicatorError
            For a bad name or a call outside ``on_start``; unknown input
            columns, cycles and custom indicators that look ahead are refused
            at the end of ``on_start``, before the first bar.
        """
        if self._engine is None:
            raise IndicatorError(
                f"add_indicator({name!r}, ...) needs the run: declare indicators in on_start "
                "or as class attributes (in __init__ the strategy is not attached to an engine)")
        engine = self._engine
        if not getattr(self, "_indicators_open", False) or engine.started:
            raise IndicatorError(
                f"add_indicator({name!r}, ...) was called after on_start: indicators are "
                "declared as class attributes or in on_start, and computed before the first bar")
        if not isinstance(series, Series):
            raise IndicatorError(f"indicator {name!r} must be a declaration of "
                                 f"mlbacktest.indicators, got {type(series).__name__} {series!r}")
        check_name(name, (n for n, _ in self._indicator_decls),
                   (*_BAR_FIELDS, *self._store.signal_names), RESERVED_NAMES)
        self._indicator_decls.append((name, series))
        return series

    @property
    def indicator_names(self) -> tuple[str, ...]:
        """Names of the declared indicators (a Bollinger ``bb`` gives ``bb.mid``, ...)."""
        return self._require_engine().store.indicator_names  # type: ignore[no-any-return]

    def _start_indicators(self, history_window: int) -> IndicatorPlan | None:
        """Check the declarations and compute the indicators of the current store.

        Called by the engine once ``on_start`` has returned, before the first
        bar; None when no indicator is declared.
        """
        self._indicators_open = False
        if not self._indicator_decls:
            return None
        plan = IndicatorPlan(self._indicator_decls, self._store.signal_names, self._n_assets,
                             history_window)
        plan.compute(self._store)
        return plan

    def _set_store(self, store: BarStore) -> None:
        """Read bars from ``store`` from now on (the next chunk of a streamed run)."""
        self._core_set_store(store)
        self._store = store
        self._tindex = None

    def _resolve_column(self, field: str) -> np.ndarray:
        """The column of a history field in the current store (see :func:`_store_column`)."""
        return _store_column(self._store, field)

    def _check_history_limit(self, n: int) -> None:
        limit = self._require_engine().history_limit
        if limit and n > limit:
            raise ValueError(
                f"history of {n} bars asked for, but a streamed run keeps {limit} "
                "(raise BacktestConfig.history_window)"
            )

    def _require_engine(self) -> Engine:
        if self._engine is None:
            raise RuntimeError("this strategy is not attached to a running BacktestEngine")
        return self._engine

    def _asset_id(self, asset: str | int) -> int:
        if type(asset) is int and 0 <= asset < self._n_assets:  # the fast, common case
            return asset
        if isinstance(asset, str):
            try:
                return self._asset_index[asset]
            except KeyError:
                raise OrderError(_unknown_asset_message(asset, self._store.asset_names)) from None
        if isinstance(asset, (int, np.integer)) and not isinstance(asset, bool):
            aid = int(asset)
            if 0 <= aid < self._n_assets:
                return aid
            raise OrderError(f"unknown asset id {aid} (ids run from 0 to {self._n_assets - 1})")
        raise OrderError(f"an asset is a name (str) or an id (int), got {asset!r}")

    def _order_id(self, order: Any, what: str = "order") -> int:
        """The id of an order given as an OrderEvent or an int id of an order of this run."""
        if isinstance(order, OrderEvent):
            return int(order.order_id)
        if isinstance(order, (bool, np.bool_)) or not isinstance(order, (int, np.integer)):
            raise OrderError(f"{what} must be an OrderEvent or an order id (int), "
                             f"got {type(order).__name__} {order!r}")
        oid = int(order)
        n = len(self._broker)
        if not 0 <= oid < n:
            which = "no order" if what == "order" else f"no {what} order"
            raise OrderError(f"{which} with id {oid} (the run has {n} orders so far)"
                             if oid >= 0 else f"{what} id must be >= 0, got {oid}")
        return oid

    # ------------------------------------------------------------ state
    @property
    def assets(self) -> tuple[str, ...]:
        """Names of every asset in the run; an asset's id is its index here."""
        return self._require_engine().store.asset_names

    @property
    def signal_names(self) -> tuple[str, ...]:
        """Names of the signal columns."""
        return self._require_engine().store.signal_names

    @property
    def now(self) -> Any:
        """The current timestamp as a datetime (None before the first timestamp)."""
        engine = self._require_engine()
        ts = engine.current_ts
        return None if ts == _NO_TS else engine.store.to_datetime(ts)

    @property
    def trading(self) -> bool:
        """Whether orders placed now can reach the broker.

        False on the warm-up bars (and in ``on_start``) of a run given
        ``trade_from``: orders placed then are refused with the reason
        "before trading start" (see :class:`~mlbacktest.BacktestEngine`).
        Always True in a run without ``trade_from``.
        """
        engine = self._require_engine()
        ts = engine.current_ts if engine.started else engine.first_ts
        return bool(ts >= engine.trade_from)

    def get_positions(self) -> dict[str, float]:
        """Every non-zero position, by asset name."""
        self._require_engine()
        names = self._store.asset_names
        return {names[i]: float(self._positions[i]) for i in np.flatnonzero(self._positions)}

    def get_cash(self) -> float:
        """Cash balance."""
        return float(self._require_engine().portfolio.cash)

    def get_equity(self) -> float:
        """Cash plus every position at its last close."""
        return float(self._require_engine().portfolio.equity())

    def _unrealized_total(self) -> float:
        """Unrealized P&L of every position (``get_unrealized_pnl()``)."""
        pf = self._require_engine().portfolio
        held = np.flatnonzero(self._positions)
        return float(
            np.sum(self._positions[held] * (self._last_price[held] - pf.avg_cost_array[held]))
        )

    def get_realized_pnl(self, asset: str | int | None = None) -> float:
        """Realized P&L (before costs) against average cost, of one asset or of all."""
        pf = self._require_engine().portfolio
        if asset is not None:
            return float(pf.realized_array[self._asset_id(asset)])
        return float(pf.realized_array.sum())

    def weights(self, view: Any = None) -> np.ndarray:
        """Current position weights: position x last close / equity (short: negative).

        Parameters
        ----------
        view : SliceView or sequence of str or int, optional
            Align the result with ``view.asset_ids`` (or with these assets).
            Default: every asset, by id.

        Returns
        -------
        ndarray of float64
            One weight per asset; 0.0 where flat. Working orders are not
            counted (they have not filled). NaN everywhere when equity is
            not > 0 (weights are undefined), as ``view.weights``; the
            helpers that size orders from weights raise instead.
        """
        self._require_engine()
        ids = slice(None) if view is None else self._asset_list(view)
        pos = self._positions[ids]
        value = np.multiply(pos, self._last_price[ids], where=pos != 0, out=np.zeros(pos.shape))
        equity = float(self._portfolio.equity())
        if not (equity > 0 and math.isfinite(equity)):
            return np.full(pos.shape, np.nan)
        return value / equity

    def weights_dict(self) -> dict[str, float]:
        """Every non-zero position's weight (position x last close / equity), by asset name.

        The dict form of :meth:`weights` (same values; NaN when equity is
        not > 0).
        """
        self._require_engine()
        held = np.flatnonzero(self._positions)
        if held.size == 0:
            return {}
        equity = float(self._portfolio.equity())
        if not (equity > 0 and math.isfinite(equity)):
            equity = math.nan
        names = self._store.asset_names
        value = self._positions[held] * self._last_price[held]
        return {names[i]: float(v / equity) for i, v in zip(held, value, strict=True)}

    def get_weights(self) -> dict[str, float]:
        """Deprecated alias of :meth:`weights_dict` (removed in the next release)."""
        _deprecated("Strategy.get_weights()", "Strategy.weights_dict()")
        return self.weights_dict()

    def _history_slow(self, asset: Any, field: Any, n: Any) -> np.ndarray:
        """:meth:`history` with every check, in order (the compiled fast path's fallback)."""
        engine = self._require_engine()
        if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n <= 0:
            raise ValueError(f"history needs a whole number of bars n > 0, got {n!r}")
        self._check_history_limit(int(n))
        _store_column(self._store, field)
        aid = self._asset_id(asset)
        if engine.current_ts == _NO_TS:
            return self._empty_history()
        return self._history_window(aid, field, int(n))  # type: ignore[no-any-return]

    @staticmethod
    def _empty_history() -> np.ndarray:
        return as_window(np.empty(0, dtype=np.float64))  # type: ignore[no-any-return]

    def _time_index(self) -> _TimeIndex:
        if self._tindex is None:
            self._tindex = _TimeIndex(self._store)
        return self._tindex

    def _asset_list(self, assets: Any) -> np.ndarray:
        """Asset ids (int64) of a sequence of names/ids, or of a slice view's bars."""
        if hasattr(assets, "asset_ids"):  # a SliceView
            return np.asarray(assets.asset_ids, dtype=np.int64)
        if isinstance(assets, (str, bytes)) or not isinstance(assets, (Sequence, np.ndarray)):
            raise ValueError(f"assets must be a sequence of asset names or ids, got {assets!r}")
        arr = np.asarray(assets)
        if arr.ndim != 1:
            raise ValueError(f"assets must be one-dimensional, got shape {arr.shape}")
        if arr.dtype.kind in "iu":
            ids = arr.astype(np.int64)
            bad = (ids < 0) | (ids >= self._n_assets)
            if bad.any():
                raise OrderError(f"unknown asset id {int(ids[bad][0])} "
                                 f"(ids run from 0 to {self._n_assets - 1})")
            return ids
        return np.fromiter((self._asset_id(a) for a in assets), dtype=np.int64, count=len(arr))

    def history_timestamps(self, n: int) -> np.ndarray:
        """The timestamps of the rows :meth:`history_panel` returns for the same ``n``.

        A read-only ``datetime64[ns]`` array, oldest first (UTC instants for
        tz-aware data, wall clock for naive data).
        """
        engine = self._require_engine()
        self._check_history_args("close", n)
        now = engine.current_ts
        if now == _NO_TS:
            out = np.empty(0, dtype="datetime64[ns]")
            out.flags.writeable = False
            return out
        index = self._time_index()
        k0, k1 = index.span(now, int(n))
        return index.times[k0:k1].view("datetime64[ns]")

    def _check_history_args(self, field: str, n: int) -> str:
        if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n <= 0:
            raise ValueError(f"history needs a whole number of bars n > 0, got {n!r}")
        self._check_history_limit(int(n))
        _store_column(self._store, field)
        return field

    # ------------------------------------------------------------ orders
    def order(
        self,
        asset: str | int,
        quantity: float,
        limit_price: float | None = None,
        stop_price: float | None = None,
        *,
        trail_amount: float | None = None,
        trail_percent: float | None = None,
        order_type: str | None = None,
        time_in_force: str = "gtc",
        expire_at: Any = None,
        parent: OrderEvent | int | None = None,
    ) -> OrderEvent:
        """Place an order for a signed quantity (negative sells).

        The type follows from the prices given: none is a market order,
        ``limit_price`` a limit, ``stop_price`` a stop, both a stop-limit,
        ``trail_amount`` or ``trail_percent`` a trailing stop (trailing the
        close; its first level is set from the last close). Pass
        ``order_type="market_on_open"`` or ``"market_on_close"`` for those.

        Parameters
        ----------
        asset : str or int
            Asset name or id.
        quantity : float
            Signed quantity: > 0 buys, < 0 sells.
        limit_price, stop_price : float, optional
            Limit and stop prices.
        trail_amount, trail_percent : float, optional
            Trailing distance in price units, or as a fraction (0.05 = 5 %).
        order_type : str, optional
            Explicit type; must agree with the prices given.
        time_in_force : {"gtc", "day", "ioc", "fok", "gtd"}
            How long the order works (``expire_at`` implies ``"gtd"``).
        expire_at : datetime, str or int ns, optional
            Expiry of a GTD order (it expires at the first timestamp after).
        parent : OrderEvent or int, optional
            One-triggers-other: this order waits until ``parent`` fills.

        Returns
        -------
        OrderEvent
            A live view of the order (its ``status`` changes as it is worked).

        Raises
        ------
        OrderError
            For an unknown asset, a zero, NaN or infinite quantity, a price
            that is not a finite number > 0, a stop-limit whose limit is on
            the wrong side of its stop, a trailing distance <= 0, a GTD
            expiry in the past, or a fractional quantity when the config has
            ``fractional=False``.
        """
        engine = self._require_engine()
        aid = self._asset_id(asset)
        q = _as_float(quantity, "quantity")
        nan = math.nan
        lim = nan if limit_price is None else _as_float(limit_price, "limit_price")
        stp = nan if stop_price is None else _as_float(stop_price, "stop_price")
        t_amt = nan if trail_amount is None else _as_float(trail_amount, "trail_amount")
        t_pct = nan if trail_percent is None else _as_float(trail_percent, "trail_percent")
        trailing = trail_amount is not None or trail_percent is not None
        if trailing:
            inferred = "trailing_stop"
            if stop_price is not None or limit_price is not None:
                raise OrderError("a trailing stop takes no limit_price or stop_price")
        elif limit_price is not None and stop_price is not None:
            inferred = "stop_limit"
        elif limit_price is not None:
            inferred = "limit"
        elif stop_price is not None:
            inferred = "stop"
        else:
            inferred = "market"
        if order_type is None:
            order_type = inferred
        elif order_type not in ORDER_TYPES:
            raise OrderError(f"unknown order_type {order_type!r}; types are {list(ORDER_TYPES)}")
        elif order_type != inferred and not (
            inferred == "market" and order_type in ("market_on_open", "market_on_close")
        ):
            raise OrderError(f"order_type {order_type!r} does not match the prices given "
                             f"(they make a {inferred} order)")
        if time_in_force not in TIME_IN_FORCE:
            raise OrderError(
                f"unknown time_in_force {time_in_force!r}; choices are {list(TIME_IN_FORCE)}"
            )
        expire_ts = None
        if expire_at is not None:
            if time_in_force == "gtc":
                time_in_force = "gtd"
            try:
                expire_ts = to_ns(expire_at, engine.store.tz)
            except (TypeError, ValueError) as exc:
                raise OrderError(f"bad expire_at {expire_at!r}: {exc}") from None
        parent_id = -1
        if parent is not None:
            parent_id = self._order_id(parent, "parent")
        return engine.submit(
            aid, q, ORDER_TYPES[order_type], lim, stp, t_amt, t_pct,
            TIME_IN_FORCE[time_in_force], expire_ts, parent_id,
        )

    def bracket(
        self,
        asset: str | int,
        quantity: float,
        *,
        stop_loss: float | None = None,
        take_profit: float | None = None,
        limit_price: float | None = None,
        trail_amount: float | None = None,
        trail_percent: float | None = None,
        time_in_force: str = "gtc",
    ) -> Bracket:
        """An entry with a protective stop and/or a take-profit that cancel each other.

        The children wait until the entry fills, then work from that point
        of the entry's bar on (so they can fill on the entry bar's remaining
        path); when one fills the other is cancelled (a partial fill shrinks
        it). If the entry ends with a partial fill, the children cover the
        filled part.

        Parameters
        ----------
        asset, quantity
            As for :meth:`order`; the children close ``quantity``.
        stop_loss : float, optional
            Stop price of the protective stop.
        take_profit : float, optional
            Limit price of the take-profit.
        limit_price : float, optional
            Makes the entry a limit order.
        trail_amount, trail_percent : float, optional
            Make the protective leg a trailing stop instead of a fixed stop.
        time_in_force : str
            Time in force of the entry.
        """
        q = _as_float(quantity, "quantity")
        trailing = trail_amount is not None or trail_percent is not None
        if stop_loss is None and take_profit is None and not trailing:
            raise OrderError("a bracket needs a stop_loss, a take_profit or a trailing stop")
        if stop_loss is not None and trailing:
            raise OrderError(
                "give stop_loss or a trailing distance for the protective leg, not both")
        engine = self._require_engine()
        aid = self._asset_id(asset)
        nan = math.nan
        for name, price in (("stop_loss", stop_loss), ("take_profit", take_profit)):
            if price is not None and not _as_float(price, name) > 0:
                raise OrderError(f"{name} must be > 0, got {price!r}")
        if time_in_force not in TIME_IN_FORCE:
            raise OrderError(
                f"unknown time_in_force {time_in_force!r}; choices are {list(TIME_IN_FORCE)}"
            )
        if trailing and (trail_amount is None) == (trail_percent is None):
            raise OrderError("a trailing stop takes exactly one of trail_amount and trail_percent")
        # One compiled call validates every leg before storing any: all or nothing.
        eid, sid, tid = engine.submit_bracket(
            aid,
            q,
            nan if limit_price is None else _as_float(limit_price, "limit_price"),
            nan if stop_loss is None else float(stop_loss),
            nan if take_profit is None else float(take_profit),
            nan if trail_amount is None else _as_float(trail_amount, "trail_amount"),
            nan if trail_percent is None else _as_float(trail_percent, "trail_percent"),
            TIME_IN_FORCE[time_in_force],
        )
        view = self._broker.view
        return Bracket(view(eid), None if sid < 0 else view(sid), None if tid < 0 else view(tid))

    def oco(self, *orders: OrderEvent | int) -> int:
        """Make working orders one-cancels-other: a fill of one cancels (or shrinks) the rest.

        Returns the group id; -1 for orders all refused on warm-up bars
        (before the run's ``trade_from``), which are left unlinked.
        """
        engine = self._require_engine()
        ids = [self._order_id(o) for o in orders]
        return int(engine.link_oco(ids))

    def replace(
        self,
        order: OrderEvent | int,
        *,
        quantity: float | None = None,
        limit_price: float | None = None,
        stop_price: float | None = None,
    ) -> OrderEvent:
        """Cancel a working order and place a copy with a new quantity and/or prices.

        The copy keeps the original's type, time in force, parent, children
        and OCO group. Returns the new order.
        """
        engine = self._require_engine()
        oid = self._order_id(order)
        nan = math.nan
        return engine.replace(
            oid,
            nan if quantity is None else _as_float(quantity, "quantity"),
            nan if limit_price is None else _as_float(limit_price, "limit_price"),
            nan if stop_price is None else _as_float(stop_price, "stop_price"),
        )

    def order_value(
        self,
        asset: str | int,
        value: float,
        limit_price: float | None = None,
        stop_price: float | None = None,
        *,
        trail_amount: float | None = None,
        trail_percent: float | None = None,
        order_type: str | None = None,
        time_in_force: str = "gtc",
        expire_at: Any = None,
        parent: OrderEvent | int | None = None,
    ) -> OrderEvent | None:
        """Place an order for a signed amount of money: ``value / last close`` units.

        Added to the position (negative ``value`` sells); the quantity is
        computed at the last close and, with ``fractional=False``, truncated
        toward zero. Every other parameter is that of :meth:`order`.

        Returns
        -------
        OrderEvent or None
            The order; None when the quantity rounds to zero (nothing placed).

        Raises
        ------
        OrderError
            For a value that is not a finite number, an asset with no price
            yet, and everything :meth:`order` refuses.
        """
        self._require_engine()
        aid = self._asset_id(asset)
        v = _as_float(value, "value")
        q = self._round(v / self._price_for_sizing(aid))
        if q == 0:
            return None
        return self.order(aid, q, limit_price, stop_price, trail_amount=trail_amount,
                          trail_percent=trail_percent, order_type=order_type,
                          time_in_force=time_in_force, expire_at=expire_at, parent=parent)

    def order_percent(
        self,
        asset: str | int,
        percent: float,
        limit_price: float | None = None,
        stop_price: float | None = None,
        *,
        trail_amount: float | None = None,
        trail_percent: float | None = None,
        order_type: str | None = None,
        time_in_force: str = "gtc",
        expire_at: Any = None,
        parent: OrderEvent | int | None = None,
    ) -> OrderEvent | None:
        """Place an order worth ``percent`` of equity (0.1 = 10 %; negative sells).

        :meth:`order_value` of ``percent x equity``: added to the position,
        sized at the last close. Every other parameter is that of
        :meth:`order`.

        Returns
        -------
        OrderEvent or None
            The order; None when the quantity rounds to zero.

        Raises
        ------
        OrderError
            When equity is not > 0, and everything :meth:`order_value` refuses.
        """
        p = _as_float(percent, "percent")
        return self.order_value(asset, p * self._equity_for_weights(), limit_price, stop_price,
                                trail_amount=trail_amount, trail_percent=trail_percent,
                                order_type=order_type, time_in_force=time_in_force,
                                expire_at=expire_at, parent=parent)

    def buy_percent(self, asset: str | int, percent: float) -> OrderEvent | None:
        """Buy a quantity worth ``percent`` of equity at the last close (added to the position)."""
        self._require_engine()
        aid = self._asset_id(asset)
        percent = _as_float(percent, "percent")
        if not percent > 0:
            raise OrderError(f"buy_percent needs percent > 0, got {percent!r}")
        q = self._round(percent * self.get_equity() / self._price_for_sizing(aid))
        if q == 0:
            return None
        return self._require_engine().submit(aid, q, _ORDER_MARKET)

    def order_many(self, assets: Iterable[int] | np.ndarray, quantities: Any) -> np.ndarray:
        """Place market orders for many assets at once (ids or names).

        Zero quantities are skipped. Returns the order ids (-1 where skipped).
        Faster than a Python loop over :meth:`order` for cross-sectional
        strategies.
        """
        engine = self._require_engine()
        raw = np.asarray(assets)
        if raw.ndim != 1:
            raise OrderError(f"assets must be one-dimensional (one id or name per order), "
                             f"got shape {raw.shape}")
        if raw.size == 0:
            ids = np.zeros(0, dtype=np.int32)
        elif raw.dtype.kind in "US" or raw.dtype == object:
            # names: the caller's own objects, not numpy's string form of them
            items = raw if isinstance(assets, np.ndarray) else list(assets)  # type: ignore[arg-type]
            ids = np.array([self._asset_id(a) for a in items], dtype=np.int32)
        elif raw.dtype.kind in "iu":
            # the range is checked on the values as given, before any cast
            bad = (raw < 0) | (raw >= self._n_assets)
            if bad.any():
                i = int(np.flatnonzero(bad)[0])
                raise OrderError(f"unknown asset id {raw[i]} at position {i} "
                                 f"(ids run from 0 to {self._n_assets - 1})")
            ids = raw.astype(np.int32)
        else:
            raise OrderError(f"assets must be integer ids or names, got an array of dtype "
                             f"{raw.dtype} (a float or bool id is refused, not rounded)")
        qty = _as_float_array(quantities, "quantities")
        if qty.shape != ids.shape:
            raise OrderError(f"assets and quantities must have the same length, got "
                             f"{ids.shape[0]} assets and quantities of shape {qty.shape}")
        return engine.submit_many(ids, qty)

    def _aligned(self, values: Any, assets: Any, what: str) -> tuple[np.ndarray, np.ndarray]:
        """Asset ids and float values of a dict (by name or id) or of an aligned array."""
        if isinstance(values, Mapping) or (hasattr(values, "items") and hasattr(values, "index")):
            if assets is not None:
                raise OrderError(f"{what} given as a mapping names its assets: drop assets=")
            keys = list(values.keys())
            ids = np.fromiter((self._asset_id(k) for k in keys), dtype=np.int64, count=len(keys))
            vals = [values[k] for k in keys]
        else:
            vals = values
            ids = None
        try:
            arr = np.asarray(vals, dtype=np.float64)
        except (TypeError, ValueError):
            raise OrderError(f"{what} must be numbers, got {values!r}") from None
        if arr.ndim != 1:
            raise OrderError(f"{what} must be one value per asset (1-d), got shape {arr.shape}")
        if ids is None:
            if assets is not None:
                ids = self._asset_list(assets)
                if ids.size != arr.size:
                    raise OrderError(f"{what} has {arr.size} values for {ids.size} assets")
            else:
                return self._array_alignment(arr.size, what), arr  # ids unique by construction
        if ids.size > 1:
            counts = np.bincount(ids)
            if counts.max() > 1:
                dup = int(np.flatnonzero(counts > 1)[0])
                raise OrderError(f"{what} names asset {self._store.asset_names[dup]!r} twice")
        return ids, arr

    def _array_alignment(self, size: int, what: str) -> np.ndarray:
        """Asset ids an unlabelled array is aligned with (see :meth:`rebalance`)."""
        engine = self._require_engine()
        now = engine.current_ts
        here = (self._time_index().assets_at(now) if now != _NO_TS
                else np.empty(0, dtype=np.int32))
        n = self._n_assets
        if size == here.size and size > 0:
            if size == n and not np.array_equal(here, np.arange(n)):
                raise OrderError(
                    f"{what} has one value per asset and per bar of this timestamp, but the "
                    "two orders differ (several feeds): pass assets=view.asset_ids or "
                    "assets=range(len(self.assets)) to say which"
                )
            return here.astype(np.int64)
        if size == n:
            return np.arange(n, dtype=np.int64)
        raise OrderError(
            f"{what} has {size} values: an array must be aligned with the bars of the current "
            f"timestamp (view.asset_ids, {here.size} assets) or with every asset "
            f"({n}); or pass a dict, or assets="
        )

    def rebalance(
        self,
        weights: Any,
        *,
        tolerance: float = 0.0,
        keep_others: bool = False,
        prices: Any = "close",
        assets: Any = None,
    ) -> np.ndarray:
        """Trade toward target weights of equity with the fewest market orders.

        One market order per asset whose target differs from its position
        plus working market orders (so calling this again before the fills
        does not stack orders), sized at the last close; reductions, exits
        and reversals are submitted before the orders that open or add, and
        the whole batch is one compiled call.

        Parameters
        ----------
        weights : dict or array-like
            Target weight (signed fraction of current equity) per asset.
            A dict maps asset names (or ids) to weights. An array is aligned
            with the bars of the current timestamp, i.e. with
            ``view.asset_ids`` of this timestamp's ``on_slice`` view (also in
            a timer or ``on_market_data`` at a timestamp with bars); an array
            with one value per asset of the run (``len(self.assets)``) is
            aligned with the asset ids; ``assets=`` makes any alignment
            explicit. NaN or infinite weights raise :class:`OrderError`.
        tolerance : float
            Skip an asset when ``|target weight - current weight| <
            tolerance`` (current weight counts working market orders). A
            target of exactly 0 always closes the position, whatever the
            tolerance, so no dust is left behind.
        keep_others : bool
            False (default): ``weights`` is the whole portfolio, and every
            held asset it does not mention is closed. True: unmentioned
            assets are left alone.
        prices : "close", dict or array-like
            Prices that convert weights to quantities: the last close seen
            (default), or prices for some assets (aligned like ``weights``;
            the others use the last close).
        assets : sequence of str or int, or SliceView, optional
            The assets an array of weights (and of prices) is aligned with.

        Returns
        -------
        ndarray of int64
            Ids of the orders placed, in submission order (reductions
            first); :meth:`get_order` gives each order.

        Raises
        ------
        OrderError
            For a non-finite weight or price, an unknown asset, an asset
            named twice, an array that fits no alignment, a non-zero target
            for an asset with no price yet, or equity <= 0.

        Notes
        -----
        Gross exposure is not capped: weights whose absolute values sum to
        more than 1 need a margin account (or short proceeds), and the
        broker's cash, margin and leverage checks reject what the account
        cannot carry. Orders are sized at the last close but fill at the
        next open, so a book sized to 100 % of equity can be rejected after
        a gap up: keep a little cash (gross 0.95 to 0.98) in a cash account.
        With ``fractional=False`` each order is truncated toward zero, so a
        position never trades past its target.
        """
        engine = self._require_engine()
        tol = _as_float(tolerance, "tolerance")
        if tol < 0:
            raise OrderError(f"tolerance must be >= 0, got {tolerance!r}")
        ids, w = self._aligned(weights, assets, "weights")
        bad = ~np.isfinite(w)
        if bad.any():
            i = int(np.flatnonzero(bad)[0])
            raise OrderError(f"weight of asset {self._store.asset_names[ids[i]]!r} is {w[i]}: "
                             "weights must be finite numbers (use 0.0 for no position)")
        n = self._n_assets
        target = np.zeros(n)
        target[ids] = w
        current = self._positions + self._pending
        if keep_others:
            cand = np.sort(ids)
        else:
            mentioned = np.zeros(n, dtype=bool)
            mentioned[ids] = True
            cand = np.flatnonzero(mentioned | (current != 0))
        if cand.size == 0:
            return np.empty(0, dtype=np.int64)
        px = self._last_price[cand]
        if not (isinstance(prices, str) and prices == "close"):
            if isinstance(prices, str):
                raise OrderError(f"prices must be 'close', a dict or an array, got {prices!r}")
            p_ids, p_vals = self._aligned(prices, assets, "prices")
            if not np.all(np.isfinite(p_vals) & (p_vals > 0)):
                i = int(np.flatnonzero(~(np.isfinite(p_vals) & (p_vals > 0)))[0])
                raise OrderError(f"price of asset {self._store.asset_names[p_ids[i]]!r} is "
                                 f"{p_vals[i]}: prices must be finite and > 0")
            full = self._last_price.copy()
            full[p_ids] = p_vals
            px = full[cand]
        equity = self._equity_for_weights()
        tw = target[cand]
        cur = current[cand]
        sized = tw != 0
        no_price = sized & ~(px > 0)
        if no_price.any():
            a = self._store.asset_names[int(cand[np.flatnonzero(no_price)[0]])]
            raise OrderError(f"asset {a!r} has no price yet: it cannot be given a non-zero weight")
        target_q = np.zeros(cand.size)
        np.divide(tw * equity, px, out=target_q, where=sized)
        # Fractional quantities are kept to 1e-9 of a unit, which removes float
        # noise; whole shares go toward zero without losing a unit to float
        # residue (579.9999999999999 is 580), like every sizing helper.
        if self._fractional:
            delta = np.round(target_q - cur, 9)
        else:
            delta = round_whole_array(target_q - cur)
        delta = np.where(sized, delta, -cur)  # a zero target closes exactly, leaving no dust
        scale = np.maximum(np.maximum(np.abs(target_q), np.abs(cur)), 1.0)
        keep = np.abs(delta) > 1e-12 * scale
        if tol > 0:
            held_w = np.zeros(cand.size)
            np.divide(cur * px, equity, out=held_w, where=cur != 0)
            keep &= ((tw == 0) & (cur != 0)) | ~(np.abs(tw - held_w) < tol)
        sel = np.flatnonzero(keep)
        if sel.size == 0:
            return np.empty(0, dtype=np.int64)
        reduces = (cur[sel] * delta[sel]) < 0
        sel = np.concatenate((sel[reduces], sel[~reduces]))
        return np.asarray(engine.submit_many(cand[sel].astype(np.int32), delta[sel]),
                          dtype=np.int64)

    def cancel(self, order: OrderEvent | int) -> bool:
        """Cancel an open order (an OrderEvent or an id); False if it was not open."""
        engine = self._require_engine()
        return bool(engine.cancel(self._order_id(order)))

    def open_orders(self, asset: str | int | None = None) -> list[OrderEvent]:
        """Open orders, of one asset or of all, in submission order."""
        self._require_engine()
        aid = -1 if asset is None else self._asset_id(asset)
        return [self._broker.view(oid) for oid in self._broker.open_order_ids(aid)]

    def get_order(self, order_id: int) -> OrderEvent:
        """The order with this id."""
        self._require_engine()
        return self._broker.view(self._order_id(order_id))

    def set_position_rules(
        self,
        asset: str | int | None = None,
        *,
        stop_loss: float | None = None,
        take_profit: float | None = None,
        trailing_stop: float | None = None,
        max_bars: int | None = None,
    ) -> None:
        """Attach exit rules to the positions of one asset (or, ``asset=None``, of all).

        Replaces the asset's rules (those of the config included): a rule left
        at None is off. See :class:`~mlbacktest.config.PositionRules` for what
        each rule does; they are evaluated by the compiled loop on every bar.
        """
        from mlbacktest.config import PositionRules

        engine = self._require_engine()
        aid = -1 if asset is None else self._asset_id(asset)
        rules = PositionRules(stop_loss, take_profit, trailing_stop, max_bars)
        engine.broker.set_rules(aid, *rules.broker_args())

    # ------------------------------------------------------------ timers
    def schedule_at(self, fn: Callable[[dict[str, Any]], None], when: Any) -> int:
        """Call ``fn(context)`` once at ``when``, after that timestamp's bar hooks.

        The callback comes first, as in :meth:`schedule`.

        Parameters
        ----------
        fn : callable
            Called as ``fn(context)``.
        when : datetime, str, numpy.datetime64 or int
            A datetime, ISO string, numpy datetime64 or int ns, in the
            feed's time zone when naive. Orders placed by ``fn`` fill on a
            later bar.

        Returns
        -------
        int
            The timer's id.

        Notes
        -----
        The former order ``schedule_at(when, fn)`` still works for one
        release, with a :class:`DeprecationWarning`.
        """
        engine = self._require_engine()
        if not callable(fn):
            if callable(when):
                _deprecated("schedule_at(when, fn)", "schedule_at(fn, when)")
                fn, when = when, fn
            else:
                raise TypeError(f"schedule_at(fn, when): fn must be callable, got {fn!r}")
        return engine.schedule(to_ns(when, engine.store.tz), fn)

    def schedule(
        self,
        fn: Callable[[dict[str, Any]], None],
        every: Any = None,
        *,
        at: Any = None,
        rule: str | None = None,
        start: Any = None,
        end: Any = None,
    ) -> np.ndarray:
        """Call ``fn(context)`` on a calendar or on a fixed grid, through clock timers.

        Every firing time is computed here, once, from the run's bar
        timestamps and the calendar in the feed's time zone (naive data:
        wall clock), and handed to the clock as a timer: a run is
        deterministic and a callback at a timestamp runs after that
        timestamp's bar hooks (``on_slice`` included). ``fn`` receives the
        context dict, like :meth:`schedule_at`; pass a bound method
        (``self.schedule(self.rebalance_book, "1d")``) to reach the
        strategy. Orders placed by ``fn`` fill on the next bar of each asset.

        Parameters
        ----------
        fn : callable
            Called as ``fn(context)``.
        every : str, optional
            A calendar period, ``"1d"``, ``"1w"`` (ISO weeks), ``"1mo"``,
            ``"1q"``, ``"1y"`` or a multiple (``"2w"``: every second trading
            week): fires at the first bar timestamp of each trading period
            (a period with at least one bar). Or a duration, ``"30m"``,
            ``"1h"``, ``"15s"``: a fixed grid ``anchor + k * step`` anchored
            at the run's first bar timestamp, a point firing when a bar lies
            in ``(point - step, point]`` (nights and weekends are skipped).
            ``m`` is minutes, ``mo`` months.
        at : str or datetime.time, optional
            Wall-clock time (``"15:55"``) in the feed's zone. Calendar
            schedules fire at that time on the first (``*_start``) or last
            (``*_end``) trading day of each period, whether or not a bar is
            stamped then (a timer creates its own timestamp: ``fn`` sees the
            bars up to that time, and its orders fill at the next bar).
            With a duration, ``at`` anchors the grid on the first day.
        rule : str, optional
            Instead of ``every``: ``"month_end"`` (last bar timestamp of each
            month), ``"week_start"`` (first bar timestamp of each week), or
            any of ``{day, week, month, quarter, year}_{start, end}``.
        start, end : datetime, str or int ns, optional
            Fire only within ``[start, end]``.

        Returns
        -------
        ndarray of datetime64[ns]
            The firing times scheduled (UTC instants for tz-aware data).
            Times before the first bar, and, when called during the run,
            at or before the current timestamp, are dropped.

        Raises
        ------
        ValueError
            For an unreadable ``every``, ``at`` or ``rule``, or both or
            neither of ``every`` and ``rule``.

        Notes
        -----
        Calendar rules read the trading calendar from the data, as a
        strategy reads an exchange calendar published in advance: the last
        month of the run ends at the run's last bar.
        """
        from mlbacktest.schedule import firing_times

        engine = self._require_engine()
        if not callable(fn):
            raise TypeError(f"fn must be callable, got {fn!r}")
        if engine.calendar.size == 0:
            raise ValueError(
                "schedule() computes its firing times from the run's calendar, which this live "
                "feed does not publish (it has no calendar() method); use schedule_at(fn, when) "
                "for each time instead")
        times = firing_times(engine.calendar, engine.store.tz, every=every, at=at,
                             rule=rule, start=start, end=end)
        if engine.started:
            times = times[times > engine.current_ts]
        for t in times.tolist():
            engine.schedule(t, fn)
        out = times.view("datetime64[ns]")
        out.flags.writeable = False
        return out


#: Public names of :class:`Strategy` (helpers, properties and hooks): an
#: instance attribute of one of these names is refused (by the C base class
#: ``mlbacktest._guard.Guarded``, at no cost to other assignments).
RESERVED_NAMES: frozenset[str] = frozenset(
    n for cls in (Strategy, StrategyCore) for n in vars(cls) if not n.startswith("_")
)


def _reserved_message(cls: str, name: str) -> str:
    if name.startswith("on_"):
        return (f"cannot assign {cls}.{name} on the instance: {name!r} is a Strategy hook; "
                f"define it in the class body (def {name}(self, ...)) to override it")
    return (f"cannot assign self.{name}: {name!r} is a Strategy helper and the assignment "
            f"would hide it; store your value under another name (e.g. self.my_{name})")


set_reserved(RESERVED_NAMES, _reserved_message)


def _deprecated(old: str, new: str) -> None:
    """Warn that ``old`` is deprecated in favour of ``new`` (removed in the next release)."""
    import warnings

    warnings.warn(f"{old} is deprecated and will be removed in the next release; use {new}",
                  DeprecationWarning, stacklevel=3)


_F64 = np.float64
#: How many asset names an unknown-asset message lists.
_NAMES_LISTED = 10


def _unknown_asset_message(asset: str, names: Sequence[str]) -> str:
    """``unknown asset 'X'``, with the closest names and (some of) the names available."""
    return f"unknown asset {asset!r}; {did_you_mean(asset, names, 'assets', limit=_NAMES_LISTED)}"


def _is_number(value: Any) -> bool:
    """A real number: int, float, numpy integer or float (a bool or a string is not)."""
    if isinstance(value, (bool, np.bool_)):
        return False
    if isinstance(value, (int, float, np.integer, np.floating)):
        return True
    if isinstance(value, numbers.Real):
        return True
    return isinstance(value, np.ndarray) and value.ndim == 0 and value.dtype.kind in "iuf"


def _as_float(value: Any, name: str) -> float:
    kind = type(value)
    if kind is float or kind is _F64:  # the common cases first: no ABC checks
        if not math.isfinite(value):
            raise OrderError(f"{name} must be a finite number, got {value!r}")
        return float(value)
    if kind is not int and not _is_number(value):
        raise OrderError(f"{name} must be a number (int or float), "
                         f"got {type(value).__name__} {value!r}")
    try:
        out = float(value)
    except OverflowError:
        raise OrderError(f"{name} must be a finite number, got {value!r} "
                         "(too large for a float)") from None
    if not math.isfinite(out):
        raise OrderError(f"{name} must be a finite number, got {value!r}")
    return out


def _as_float_array(values: Any, name: str) -> np.ndarray:
    """A 1-d float64 array of real numbers (bools, strings and non-finite values refused)."""
    arr = np.asarray(values)
    if arr.ndim != 1:
        raise OrderError(f"{name} must be one-dimensional, got shape {arr.shape}")
    if arr.dtype == object:
        return np.array([_as_float(v, f"{name}[{i}]") for i, v in enumerate(arr)],
                        dtype=np.float64)
    if arr.dtype.kind not in "iuf":
        raise OrderError(f"{name} must be numbers, got an array of dtype {arr.dtype}")
    out = arr.astype(np.float64)
    bad = ~np.isfinite(out)
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise OrderError(f"{name} must be finite numbers, got {arr[i]} at position {i}")
    return out


# The compiled fast paths fall back to this for every number they do not take as is.
Strategy._as_float = staticmethod(_as_float)  # type: ignore[attr-defined]
