"""The Strategy base class: hooks the engine calls and helpers to trade from them."""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any, NamedTuple

import numpy as np

from mlbacktest._time import to_ns
from mlbacktest.errors import OrderError

if TYPE_CHECKING:  # pragma: no cover
    from mlbacktest._engine import Engine
    from mlbacktest._events import BarStore, FillEvent, MarketEvent, OrderEvent, SliceView

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


class _History:
    """Per-asset, time-ordered copies of columns, built on first use of each field."""

    def __init__(self, store: BarStore) -> None:
        self._store = store
        asset = store.asset_array
        self._order = np.lexsort((store.ts_array, asset))
        counts = np.bincount(asset, minlength=store.n_assets)
        self.offsets = np.concatenate(([0], np.cumsum(counts))).astype(np.int64)
        self.ts = store.ts_array[self._order]
        self._columns: dict[str, np.ndarray] = {}

    def column(self, field: str) -> np.ndarray:
        col = self._columns.get(field)
        if col is None:
            store = self._store
            if field in _BAR_FIELDS:
                src = getattr(store, field + "_array")
            else:
                src = store.signal_array[:, store.signal_index[field]]
            col = np.ascontiguousarray(src[self._order])
            col.flags.writeable = False
            self._columns[field] = col
        return col

    def window(self, asset: int, field: str, n: int, now: int) -> np.ndarray:
        a0, a1 = int(self.offsets[asset]), int(self.offsets[asset + 1])
        end = a0 + int(np.searchsorted(self.ts[a0:a1], now, side="right"))
        return self.column(field)[max(a0, end - n) : end]


class Strategy:
    """Base class for strategies: override the hooks you need.

    Every hook is optional, and a hook that is not overridden is never called
    (it costs nothing). At each timestamp the engine first fills orders
    against the new bars, then calls ``on_fill`` for those fills,
    ``on_market_data`` once per bar, and ``on_slice`` once. A strategy called
    at timestamp *t* has seen the close of every bar stamped *t*; orders it
    places fill on a later bar (see :class:`~mlbacktest.BacktestConfig`).

    Assets are named by their name (``str``) or by their integer id (the
    ``asset_ids`` of a slice view, ``event.asset_id``).

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
            The bar: ``timestamp``, ``asset``, ``open`` ... ``volume``, ``signals``.
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
            ``signal_names`` and ``positions`` of every asset with a bar now.
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
        self._history: _History | None = None

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
                raise OrderError(f"unknown asset {asset!r}") from None
        if isinstance(asset, (int, np.integer)) and not isinstance(asset, bool):
            aid = int(asset)
            if 0 <= aid < self._n_assets:
                return aid
            raise OrderError(f"unknown asset id {aid} (ids run from 0 to {self._n_assets - 1})")
        raise OrderError(f"an asset is a name (str) or an id (int), got {asset!r}")

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

    def get_position(self, asset: str | int) -> float:
        """Signed quantity held (0.0 when flat)."""
        if self._engine is None:
            self._require_engine()
        return float(self._positions[self._asset_id(asset)])

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

    def get_last_price(self, asset: str | int) -> float:
        """Close of the asset's latest bar seen so far (NaN before its first bar)."""
        self._require_engine()
        return float(self._last_price[self._asset_id(asset)])

    def get_unrealized_pnl(self, asset: str | int | None = None) -> float:
        """Unrealized P&L against average cost, of one asset or (``None``) of all."""
        pf = self._require_engine().portfolio
        if asset is not None:
            return float(pf.unrealized_pnl(self._asset_id(asset)))
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

    def history(self, asset: str | int, field: str, n: int) -> np.ndarray:
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
        ndarray of float64
            A read-only view, oldest first, whose last value is the asset's
            latest bar at or before the current timestamp.
        """
        engine = self._require_engine()
        if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n <= 0:
            raise ValueError(f"history needs a whole number of bars n > 0, got {n!r}")
        store = engine.store
        if field not in _BAR_FIELDS and field not in store.signal_index:
            raise ValueError(
                f"unknown history field {field!r}; fields are {list(_BAR_FIELDS)} "
                f"and signals {list(store.signal_names)}"
            )
        aid = self._asset_id(asset)
        if engine.current_ts == _NO_TS:
            return self._empty_history()
        if self._history is None:
            self._history = _History(store)
        return self._history.window(aid, field, int(n), engine.current_ts)

    @staticmethod
    def _empty_history() -> np.ndarray:
        out = np.empty(0, dtype=np.float64)
        out.flags.writeable = False
        return out

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
            parent_id = int(parent if isinstance(parent, (int, np.integer)) else parent.order_id)
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
            raise OrderError("give stop_loss or a trailing distance for the protective leg, not both")
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

        Returns the group id.
        """
        engine = self._require_engine()
        ids = [int(o if isinstance(o, (int, np.integer)) else o.order_id) for o in orders]
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
        oid = int(order if isinstance(order, (int, np.integer)) else order.order_id)
        nan = math.nan
        return engine.replace(
            oid,
            nan if quantity is None else _as_float(quantity, "quantity"),
            nan if limit_price is None else _as_float(limit_price, "limit_price"),
            nan if stop_price is None else _as_float(stop_price, "stop_price"),
        )

    def buy(self, asset: str | int, quantity: float, **prices: float) -> OrderEvent:
        """Buy ``quantity`` (> 0); takes ``limit_price`` / ``stop_price`` like :meth:`order`."""
        q = _as_float(quantity, "quantity")
        if not q > 0:
            raise OrderError(f"buy quantity must be > 0, got {quantity!r}")
        return self.order(asset, q, **prices)

    def sell(self, asset: str | int, quantity: float, **prices: float) -> OrderEvent:
        """Sell ``quantity`` (> 0); takes ``limit_price`` / ``stop_price`` like :meth:`order`."""
        q = _as_float(quantity, "quantity")
        if not q > 0:
            raise OrderError(f"sell quantity must be > 0, got {quantity!r}")
        return self.order(asset, -q, **prices)

    def _round(self, quantity: float) -> float:
        return quantity if self._fractional else float(math.trunc(quantity))

    def order_target_quantity(self, asset: str | int, target: float) -> OrderEvent | None:
        """Trade toward a signed target quantity with a market order.

        The gap is measured from the position plus working market orders
        on the asset, so calling this every bar does not stack orders. With
        whole shares the order size is truncated toward zero (as backtrader
        and vectorbt do), so the position never trades past the target.
        Returns None when the target is already met.
        """
        self._require_engine()
        aid = self._asset_id(asset)
        target = _as_float(target, "target")
        current = float(self._positions[aid] + self._pending[aid])
        # Whole shares: the order (not the target) is truncated toward zero,
        # so the position never trades past the target.
        delta = self._round(target - current)
        if abs(delta) <= 1e-12 * max(abs(target), abs(current), 1.0):
            return None
        return self._engine.submit(aid, delta, _ORDER_MARKET)

    def _price_for_sizing(self, aid: int) -> float:
        price = float(self._last_price[aid])
        if not price > 0:
            raise OrderError(
                f"asset {self._store.asset_names[aid]!r} has no price yet: "
                "size orders by quantity before its first bar"
            )
        return price

    def order_target_value(self, asset: str | int, value: float) -> OrderEvent | None:
        """Trade toward a position worth ``value`` at the last close (negative: short)."""
        self._require_engine()
        aid = self._asset_id(asset)
        value = _as_float(value, "value")
        return self.order_target_quantity(aid, value / self._price_for_sizing(aid))

    def order_target_percent(self, asset: str | int, percent: float) -> OrderEvent | None:
        """Trade toward a position worth ``percent`` of equity (0.1 = 10 %; negative: short)."""
        percent = _as_float(percent, "percent")
        return self.order_target_value(asset, percent * self.get_equity())

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
        return self._engine.submit(aid, q, _ORDER_MARKET)

    def close_position(self, asset: str | int) -> OrderEvent | None:
        """Flatten the position with a market order (None when already flat)."""
        return self.order_target_quantity(asset, 0.0)

    def order_many(self, assets: Iterable[int] | np.ndarray, quantities: Any) -> np.ndarray:
        """Place market orders for many assets at once (ids or names).

        Zero quantities are skipped. Returns the order ids (-1 where skipped).
        Faster than a Python loop over :meth:`order` for cross-sectional
        strategies.
        """
        engine = self._require_engine()
        ids = np.asarray(assets)
        if ids.dtype.kind in "US" or ids.dtype == object:
            ids = np.array([self._asset_id(a) for a in ids], dtype=np.int32)
        else:
            ids = ids.astype(np.int32, copy=False)
            if ids.size and (ids.min() < 0 or ids.max() >= self._n_assets):
                bad = ids[(ids < 0) | (ids >= self._n_assets)][0]
                raise OrderError(f"unknown asset id {bad}")
        qty = np.asarray(quantities, dtype=np.float64)
        if qty.shape != ids.shape:
            raise OrderError("assets and quantities must have the same length")
        return engine.submit_many(ids, qty)

    def cancel(self, order: OrderEvent | int) -> bool:
        """Cancel an open order (an OrderEvent or an id); False if it was not open."""
        engine = self._require_engine()
        oid = order if isinstance(order, (int, np.integer)) else order.order_id
        return bool(engine.cancel(int(oid)))

    def open_orders(self, asset: str | int | None = None) -> list[OrderEvent]:
        """Open orders, of one asset or of all, in submission order."""
        self._require_engine()
        aid = -1 if asset is None else self._asset_id(asset)
        return [self._broker.view(oid) for oid in self._broker.open_order_ids(aid)]

    def get_order(self, order_id: int) -> OrderEvent:
        """The order with this id."""
        self._require_engine()
        return self._broker.view(int(order_id))

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
    def schedule_at(self, when: Any, callback: Callable[[dict[str, Any]], None]) -> int:
        """Call ``callback(context)`` once at ``when``, after that timestamp's bar hooks.

        ``when`` is a datetime, ISO string, numpy datetime64 or int ns, in
        the feed's time zone when naive. Orders placed by the callback fill
        on a later bar.
        """
        engine = self._require_engine()
        return engine.schedule(to_ns(when, engine.store.tz), callback)


def _as_float(value: Any, name: str) -> float:
    try:
        out = float(value)
    except (TypeError, ValueError):
        raise OrderError(f"{name} must be a number, got {value!r}") from None
    if not math.isfinite(out):
        raise OrderError(f"{name} must be a finite number, got {value!r}")
    return out
