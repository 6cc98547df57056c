"""The zipline algorithm on mlbacktest: context, ``data``, portfolio, orders and the run.

A zipline algorithm (``initialize``, ``handle_data``, ``before_trading_start``,
``analyze``) runs inside a :class:`~mlbacktest.Strategy` whose ``on_slice``
hook plays one zipline bar: fills of the orders placed the bar before have
happened (at this bar's close, ``fill_at="next_close"``), then
``handle_data`` and the scheduled functions due run; at a session's last bar
the session's row of the ``perf`` frame is written. In daily mode a bar is a
session; in minute mode a bar is a minute of the session and the scheduled
functions fire at the minute zipline fires them (:class:`MinuteGrid`).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from functools import partial
from typing import Any

import numpy as np
import pandas as pd  # type: ignore[import-untyped,unused-ignore]

from mlbacktest.compat.zipline._costs import PerOrderCommission
from mlbacktest.compat.zipline._rules import TimeRule, firing_sessions
from mlbacktest.errors import ConfigError, OrderError, PortingError, did_you_mean
from mlbacktest.strategy import Strategy

__all__ = ["Asset", "Equity", "Position", "Portfolio", "Order", "Context", "BarData",
           "MinuteGrid", "ZiplineAlgorithm", "round_order"]

_BAR_FIELDS = ("open", "high", "low", "close", "volume")
#: zipline fields read straight from the asset's own bars (``price`` is the close: no gaps).
_FAST_FIELDS = {"price": "close", **{f: f for f in _BAR_FIELDS}}
#: zipline's ORDER_STATUS codes, by mlbacktest status name.
_MINUTE_NS = 60_000_000_000
_DAY_NS = 86_400_000_000_000
_STATUS = {"submitted": 0, "accepted": 0, "partially_filled": 0, "filled": 1,
           "cancelled": 2, "expired": 2, "rejected": 3}


def round_order(amount: float) -> int:
    """zipline's order rounding: to the integer within 1e-4, else toward zero."""
    r = round(amount)
    if abs(amount - r) <= 1e-4:
        return int(r)
    return int(amount)


class Asset:
    """An equity of the run: ``sid`` (its mlbacktest asset id) and ``symbol``."""

    __slots__ = ("sid", "symbol", "start_date", "end_date")

    def __init__(self, sid: int, symbol: str, start_date: pd.Timestamp,
                 end_date: pd.Timestamp) -> None:
        self.sid = sid
        self.symbol = symbol
        self.start_date = start_date
        self.end_date = end_date

    def __int__(self) -> int:
        return self.sid

    def __index__(self) -> int:
        return self.sid

    def __hash__(self) -> int:
        return hash(self.sid)

    def __eq__(self, other: object) -> bool:
        if isinstance(other, Asset):
            return self.sid == other.sid
        if isinstance(other, (int, np.integer)) and not isinstance(other, bool):
            return self.sid == int(other)
        return NotImplemented

    def __lt__(self, other: Asset) -> bool:
        return self.sid < other.sid

    def __repr__(self) -> str:
        return f"Equity({self.sid} [{self.symbol}])"


Equity = Asset


class Position:
    """A position as zipline keeps it: ``amount``, ``cost_basis`` (commissions included),
    ``last_sale_price`` and ``last_sale_date``."""

    __slots__ = ("asset", "amount", "cost_basis", "last_sale_price", "last_sale_date")

    def __init__(self, asset: Asset) -> None:
        self.asset = asset
        self.amount = 0
        self.cost_basis = 0.0
        self.last_sale_price = 0.0
        self.last_sale_date: pd.Timestamp | None = None

    @property
    def sid(self) -> Asset:
        """The asset (zipline's name)."""
        return self.asset

    def _transaction(self, amount: int, price: float, dt: pd.Timestamp) -> None:
        # zipline's Position.update, step for step
        total = amount + self.amount
        if total == 0:
            self.cost_basis = 0.0
        else:
            prev_dir = math.copysign(1, self.amount)
            txn_dir = math.copysign(1, amount)
            if prev_dir != txn_dir:
                if abs(amount) > abs(self.amount):
                    self.cost_basis = price
            else:
                self.cost_basis = (amount * price + self.amount * self.cost_basis) / total
            if self.last_sale_date is None or dt > self.last_sale_date:
                self.last_sale_price = price
                self.last_sale_date = dt
        self.amount = total

    def _commission(self, cost: float) -> None:
        # zipline's Position.adjust_commission_cost_basis
        if cost == 0 or self.amount == 0:
            return
        self.cost_basis = (self.cost_basis * self.amount + cost) / self.amount

    def to_dict(self) -> dict[str, Any]:
        """The position as a row of ``perf.positions``."""
        return {"sid": self.asset, "amount": self.amount, "cost_basis": self.cost_basis,
                "last_sale_price": self.last_sale_price}

    def __repr__(self) -> str:
        return (f"Position(asset={self.asset!r}, amount={self.amount}, "
                f"cost_basis={self.cost_basis}, last_sale_price={self.last_sale_price})")


class Positions(dict):  # type: ignore[type-arg]
    """Positions by asset; a missing asset reads as an empty position (not stored)."""

    def __missing__(self, asset: Asset) -> Position:
        return Position(asset)


class Portfolio:
    """``context.portfolio``: read live from the run, marked at the current close."""

    def __init__(self, algo: ZiplineAlgorithm) -> None:
        self._algo = algo

    @property
    def cash(self) -> float:
        """Cash (commissions paid included)."""
        return self._algo._cash()

    @property
    def portfolio_value(self) -> float:
        """Cash plus every position at its last close."""
        return self._algo._equity()

    @property
    def positions_value(self) -> float:
        """Value of the positions at their last close."""
        return self._algo._equity() - self._algo._cash()

    @property
    def positions_exposure(self) -> float:
        """Same as ``positions_value`` for equities."""
        return self.positions_value

    @property
    def starting_cash(self) -> float:
        """``capital_base``."""
        return self._algo.capital_base

    @property
    def capital_used(self) -> float:
        """Net cash spent on positions since the start."""
        return self._algo.capital_base - self._algo._cash()

    @property
    def pnl(self) -> float:
        """``portfolio_value - starting_cash``."""
        return self.portfolio_value - self.starting_cash

    @property
    def returns(self) -> float:
        """``portfolio_value / starting_cash - 1``."""
        return self.portfolio_value / self.starting_cash - 1.0

    @property
    def positions(self) -> Positions:
        """Open positions by asset (a missing asset gives an empty position)."""
        return self._algo._open_positions()

    @property
    def current_portfolio_weights(self) -> pd.Series:
        """Position value / portfolio value, by asset."""
        pv = self.portfolio_value
        pos = self.positions
        return pd.Series({a: p.amount * p.last_sale_price / pv for a, p in pos.items()},
                         dtype=float)

    def __repr__(self) -> str:
        return (f"Portfolio(cash={self.cash}, portfolio_value={self.portfolio_value}, "
                f"positions={dict(self.positions)})")


class Order:
    """An order as zipline shows it (``id`` is the mlbacktest order id as a string)."""

    def __init__(self, algo: ZiplineAlgorithm, order_id: int) -> None:
        self._algo = algo
        self._oid = order_id
        ev = algo.strategy.get_order(order_id)
        self.id = str(order_id)
        self.sid = algo.asset_list[ev.asset_id]
        self.asset = self.sid
        self.amount = int(ev.quantity)
        self.filled = int(ev.filled_quantity)
        self.commission = algo.order_commission.get(order_id, 0.0)
        self.created = algo.order_created.get(order_id) or pd.Timestamp(ev.created, tz="UTC")
        self.dt = algo.order_updated.get(order_id, self.created)
        self.status = _STATUS[ev.status]
        self.reason = None if ev.reason in ("", "none") else ev.reason
        self.limit = None
        self.stop = None
        self.limit_reached = False
        self.stop_reached = False

    @property
    def open(self) -> bool:
        """Whether the order can still fill."""
        return self.status == 0

    @property
    def open_amount(self) -> int:
        """What is left to fill."""
        return self.amount - self.filled

    def to_dict(self) -> dict[str, Any]:
        """The order as a row of ``perf.orders``."""
        return {"id": self.id, "dt": self.dt, "reason": self.reason, "created": self.created,
                "amount": self.amount, "filled": self.filled, "commission": self.commission,
                "stop": None, "limit": None, "stop_reached": False, "limit_reached": False,
                "sid": self.sid, "status": self.status}

    def __repr__(self) -> str:
        return f"Order({self.to_dict()!r})"


class Context:
    """zipline's ``context``: your attributes, ``portfolio``, and the API as methods.

    ``context.set_commission(...)``, ``context.order(...)``, ... call the
    functions of :mod:`mlbacktest.compat.zipline.api`, as zipline's context
    (the algorithm object) does.
    """

    def __init__(self, algo: ZiplineAlgorithm) -> None:
        object.__setattr__(self, "_algo", algo)

    @property
    def portfolio(self) -> Portfolio:
        """The portfolio, marked at the current close."""
        return self._algo.portfolio

    @property
    def account(self) -> Any:
        """Not supported: raises :class:`PortingError`."""
        raise PortingError(
            "context.account is not supported by the zipline shim: use context.portfolio, or "
            "Strategy.get_equity() / get_cash() / weights() in native mlbacktest")

    def __getattr__(self, name: str) -> Any:
        try:
            return API[name]
        except KeyError:
            raise AttributeError(f"context has no attribute {name!r}") from None


#: The functions of ``zipline.api`` by name, for ``context.<function>`` (filled by the api module).
API: dict[str, Callable[..., Any]] = {}


def _as_list(x: Any) -> tuple[list[Any], bool]:
    if isinstance(x, (str, Asset)):
        return [x], True
    if isinstance(x, Iterable):
        return list(x), False
    return [x], True


def _unknown_field(field: Any) -> ValueError:
    """The error of ``data.history`` / ``data.current`` for a field it does not know."""
    return ValueError(f"unknown field {field!r}; fields are 'price', "
                      f"{', '.join(repr(x) for x in _BAR_FIELDS)}")


def _history_frame(frames: dict[Any, pd.DataFrame], flist: list[Any], one_field: bool,
                   one_asset: bool, index: Any, cols: list[Any]) -> Any:
    """``data.history``'s value from one frame (sessions x assets) per field: a Series for
    one asset and one field, a DataFrame for one of them, else a (date, asset) x field frame."""
    if one_field:
        frame = frames[flist[0]]
        return frame.iloc[:, 0].rename(cols[0]) if one_asset else frame
    if one_asset:
        return pd.DataFrame({f: frames[f].iloc[:, 0] for f in flist}, index=index)
    return pd.DataFrame({f: frames[f].stack(future_stack=True) for f in flist})


class BarData:
    """``data`` in ``handle_data(context, data)``: current values and point-in-time history."""

    def __init__(self, algo: ZiplineAlgorithm) -> None:
        self._algo = algo

    @property
    def current_dt(self) -> pd.Timestamp:
        """The current session (its bar timestamp, UTC)."""
        return self._algo.current_dt()

    @property
    def current_session(self) -> pd.Timestamp:
        """The current session's date."""
        return self._algo.current_dt().normalize()

    @property
    def current_session_minutes(self) -> pd.DatetimeIndex:
        """The minutes of the current session (UTC, each labelled by its end; minute mode)."""
        grid = self._algo.grid
        if grid is None:
            raise PortingError(
                "data.current_session_minutes in a daily run: the zipline shim knows the "
                "session's minutes in minute mode only (run_algorithm(..., "
                "data_frequency='minute')); natively, exchange_calendars' session_minutes")
        k = self._algo.spos + (self._algo.phase == "before_trading_start")
        k = min(max(k, 0), len(grid.opens) - 1)
        return pd.date_range(pd.Timestamp(int(grid.opens[k]), tz="UTC"),
                             pd.Timestamp(int(grid.closes[k]), tz="UTC"), freq="min")

    def current_chain(self, continuous_future: Any) -> Any:
        """Not supported: raises :class:`PortingError`."""
        raise PortingError("data.current_chain is not supported by the zipline shim (no "
                           "futures): feed each contract as its own asset")

    @property
    def fetcher_assets(self) -> Any:
        """Not supported: raises :class:`PortingError`."""
        raise PortingError("data.fetcher_assets is not supported by the zipline shim (no "
                           "fetch_csv): join external columns to the bars as signals")

    def _value(self, aid: int, field: str) -> float:
        algo = self._algo
        if field == "price":
            return algo.strategy.get_last_price(aid)
        if field == "last_traded":
            raise PortingError(
                "data.current(asset, 'last_traded') is not supported by the zipline shim: use "
                "Strategy.history_timestamps(n) with Strategy.history_panel in native mlbacktest")
        if field not in _BAR_FIELDS:
            raise _unknown_field(field)
        return float(algo.today[field][aid])

    def current(self, assets: Any, fields: Any) -> Any:
        """The current value of fields: ``price`` (last close, carried forward), ``open`` ...
        ``volume`` (this session's bar; NaN, or 0 volume, without a bar)."""
        alist, one_asset = _as_list(assets)
        flist, one_field = _as_list(fields)
        ids = [self._algo.asset_id(a) for a in alist]
        if one_asset and one_field:
            return self._value(ids[0], flist[0])
        if one_field:
            return pd.Series([self._value(i, flist[0]) for i in ids],
                             index=[self._algo.asset_list[i] for i in ids], name=flist[0])
        if one_asset:
            return pd.Series([self._value(ids[0], f) for f in flist], index=flist,
                             name=self._algo.asset_list[ids[0]])
        return pd.DataFrame({f: [self._value(i, f) for i in ids] for f in flist},
                            index=[self._algo.asset_list[i] for i in ids])

    def history(self, assets: Any, fields: Any, bar_count: int, frequency: str) -> Any:
        """The last ``bar_count`` sessions up to and including the current one (point in time).

        Same shapes as zipline: a Series for one asset and one field, a
        DataFrame (sessions x assets, or sessions x fields) for a list of
        one, and a DataFrame indexed by (session, asset) for lists of both.
        """
        algo = self._algo
        if frequency in ("1m", "1M", "minute"):
            if algo.grid is None:
                raise PortingError(
                    f"data.history(..., frequency={frequency!r}) in a daily run: zipline "
                    "refuses minute history in daily mode too; run_algorithm(..., "
                    "data_frequency='minute') with minute bars, or Strategy.history(asset, "
                    "field, n) on a minute feed natively")
            daily = False
        elif frequency in ("1d", "1D", "daily"):
            daily = algo.grid is not None
        else:
            raise ValueError(f"frequency must be '1d' or '1m', got {frequency!r}")
        if isinstance(bar_count, bool) or not isinstance(bar_count, (int, np.integer)) \
                or bar_count <= 0:
            raise ValueError(f"bar_count must be a whole number > 0, got {bar_count!r}")
        alist, one_asset = _as_list(assets)
        flist, one_field = _as_list(fields)
        ids = [algo.asset_id(a) for a in alist]
        n = int(bar_count)
        s = algo.strategy
        if daily:
            return self._session_history(ids, alist, one_asset, flist, one_field, n)
        index = algo.history_index(n)
        if one_asset and one_field and algo.bar_ts[ids[0]] == algo.now_ns \
                and flist[0] in _FAST_FIELDS:
            # the asset has a bar now and no gap (checked at the start): its last bars are
            # the last sessions, without the cross-sectional panel
            f = _FAST_FIELDS[flist[0]]
            values = s.history(ids[0], f, n)
            out = np.empty(n)
            k = n - values.size
            out[:k] = 0.0 if f == "volume" else np.nan
            out[k:] = values
            return pd.Series(out, index=index, name=algo.asset_list[ids[0]])
        cols = [algo.asset_list[i] for i in ids]
        frames = {}
        for f in flist:
            if f == "price":
                arr = np.array(s.history_panel("close", n, ids))
                frame = pd.DataFrame(arr, index=index, columns=cols).ffill()
            elif f in _BAR_FIELDS:
                arr = np.array(s.history_panel(f, n, ids))
                if f == "volume":
                    arr[np.isnan(arr)] = 0.0
                frame = pd.DataFrame(arr, index=index, columns=cols)
            else:
                raise _unknown_field(f)
            frames[f] = frame
        return _history_frame(frames, flist, one_field, one_asset, index, cols)

    def _session_history(self, ids: list[int], alist: list[Any], one_asset: bool,
                         flist: list[Any], one_field: bool, n: int) -> Any:
        """``data.history(..., "1d")`` in minute mode: the sessions before this one from the
        daily bars, then this session so far (its minutes up to now: first open, highest
        high, lowest low, last close, summed volume), as zipline's daily aggregator gives it.
        In ``before_trading_start`` the window ends at the previous session."""
        algo = self._algo
        grid = algo.grid
        assert grid is not None
        end = algo.spos + 1
        if end < n:
            raise ValueError(
                f"data.history asked for {n} sessions on {algo.current_dt().date()}, but the "
                f"data has {max(end, 0)} up to then (zipline raises "
                "HistoryWindowStartsBeforeData): give run_algorithm data that starts earlier")
        partial = algo.phase != "before_trading_start"
        index = grid.session_labels[end - n:end]
        cols = [algo.asset_list[i] for i in ids]
        frames = {}
        for f in flist:
            if f != "price" and f not in _BAR_FIELDS:
                raise _unknown_field(f)
            base = "close" if f == "price" else f
            arr = grid.daily[base][end - n:end][:, ids].copy()
            if partial:
                arr[-1] = algo.session_so_far(base, ids)
            frame = pd.DataFrame(arr, index=index, columns=cols)
            if f == "price":
                frame = frame.ffill()
            elif f == "volume":
                frame = frame.fillna(0.0)
            frames[f] = frame
        return _history_frame(frames, flist, one_field, one_asset, index, cols)

    def can_trade(self, assets: Any) -> Any:
        """Whether each asset is listed on the current session and has a price."""
        alist, one = _as_list(assets)
        out = [self._algo.can_trade(self._algo.asset_id(a)) for a in alist]
        return out[0] if one else pd.Series(out, index=[self._algo.asset_list[
            self._algo.asset_id(a)] for a in alist])

    def is_stale(self, assets: Any) -> Any:
        """Whether each asset traded before but has no bar on the current session."""
        alist, one = _as_list(assets)
        out = [self._algo.is_stale(self._algo.asset_id(a)) for a in alist]
        return out[0] if one else pd.Series(out, index=[self._algo.asset_list[
            self._algo.asset_id(a)] for a in alist])

    def __repr__(self) -> str:
        return f"BarData({self._algo.current_dt()})"


class _Event:
    __slots__ = ("func", "days", "minutes")

    def __init__(self, func: Callable[..., Any], days: set[Any],
                 minutes: set[int] | None = None) -> None:
        self.func = func
        self.days = days  # daily mode: the session dates it fires on
        self.minutes = minutes  # minute mode: the minute stamps (ns) it fires at


class MinuteGrid:
    """The minutes of a minute-mode run and its sessions' bars.

    Parameters
    ----------
    opens, closes : ndarray of int64
        First and last minute (ns, UTC, each minute labelled by its end as
        zipline labels it) of every session of the data, in order.
    session_labels : pandas.DatetimeIndex
        Those sessions (UTC midnight), the index of ``data.history(..., "1d")``.
    daily : dict of str to ndarray
        Session bars aggregated from the minutes: field -> (sessions, assets),
        NaN (volume 0) for an asset without minutes that session.
    before_open : ndarray of int64
        When ``before_trading_start`` runs for each session (8:45 New York
        time, as zipline's clock).
    run_from : int
        Position of the run's first session.
    """

    def __init__(self, opens: np.ndarray, closes: np.ndarray,
                 session_labels: pd.DatetimeIndex, daily: dict[str, np.ndarray],
                 before_open: np.ndarray, run_from: int) -> None:
        self.opens = opens
        self.closes = closes
        self.session_labels = session_labels
        self.daily = daily
        self.before_open = before_open
        self.run_from = run_from

    def firing_minutes(self, days: set[Any], time_rule: TimeRule | None) -> set[int]:
        """The minutes a scheduled function fires at, as zipline's event rules give them.

        zipline wraps every rule in ``OncePerDay``: it fires at the first
        minute the date and time rules both hold, at most once per 24 hours
        counted from the first minute of the window, which restarts at the
        first minute at least 24 hours after the last start. Without a time
        rule a function fires at the first minute of its sessions. The
        window is replayed here session by session (a session is shorter
        than a day, so the window restarts at most once in it), so where the
        first minutes of consecutive sessions are less than 24 hours apart
        (a daylight-saving change between them) it fires where zipline fires.
        """
        anchor = "every_minute" if time_rule is None else time_rule.anchor
        off = 0 if time_rule is None else int(time_rule.offset.value)
        start: int | None = None
        next_start = 0
        triggered = False
        out: set[int] = set()
        for s in range(self.run_from, len(self.opens)):
            o, c = int(self.opens[s]), int(self.closes[s])
            ok = self.session_labels[s].date() in days
            if anchor == "market_open":
                target = o + off - _MINUTE_NS
            elif anchor == "market_close":
                target = c - off
            else:
                target = -1
            # the window restarts at r (past the close: not this session)
            if start is None or o >= next_start:
                r = o
            elif next_start <= c:
                r = next_start
            else:
                r = c + _MINUTE_NS
            if ok and not triggered and o < r:  # the minutes still in the previous window
                m = o if target < 0 else target if o <= target < r else -1
                if m >= 0:
                    triggered = True
                    out.add(m)
            if r <= c:
                triggered = False
                start = r
                next_start = r + _DAY_NS
                m = r if target < 0 else target if r <= target <= c else -1
                if ok and m >= 0:
                    triggered = True
                    out.add(m)
        return out


class ZiplineAlgorithm:
    """The state of one zipline run: settings from ``initialize``, ledger, perf rows."""

    def __init__(self, *, initialize: Callable[..., Any], handle_data: Callable[..., Any] | None,
                 before_trading_start: Callable[..., Any] | None,
                 capital_base: float, asset_names: tuple[str, ...],
                 first_ts: np.ndarray, last_ts: np.ndarray, sessions: pd.DatetimeIndex,
                 calendar_sessions: pd.DatetimeIndex, start_ns: int,
                 grid: MinuteGrid | None = None) -> None:
        self.initialize_fn = initialize
        self.handle_data_fn = handle_data
        self.before_trading_start_fn = before_trading_start
        self.capital_base = float(capital_base)
        self.asset_names = asset_names
        self.first_ts = first_ts
        self.last_ts = last_ts
        self.asset_list = [Asset(i, name, pd.Timestamp(int(first_ts[i]), tz="UTC"),
                                 pd.Timestamp(int(last_ts[i]), tz="UTC"))
                           for i, name in enumerate(asset_names)]
        self.by_symbol = {a.symbol: a for a in self.asset_list}
        self.sessions = sessions
        self.calendar_sessions = calendar_sessions
        self.start_ns = start_ns
        self.grid = grid
        self.spos = -1  # minute mode: position in grid of the session of the latest bar
        self.mcount = 0  # minute mode: bars of that session so far
        self.context = Context(self)
        self.data = BarData(self)
        self.portfolio = Portfolio(self)
        self.strategy: Strategy = None  # type: ignore[assignment]
        self.phase = "initialize"
        self.commission: Any = None
        self.slippage: Any = None
        self.long_only = False
        self.volume_capped = False
        self.max_leverage: float | None = None
        self.benchmark: Any = None
        self.events: list[_Event] = []
        self.pipelines: dict[str, Any] = {}
        self.pipeline_out: dict[str, pd.DataFrame] = {}
        self.recorded: dict[str, Any] = {}
        self.positions: dict[int, Position] = {}
        n = len(asset_names)
        self.today = {f: np.full(n, np.nan) for f in _BAR_FIELDS}
        self.today["volume"][:] = 0.0
        self.bar_ts = np.full(n, np.iinfo(np.int64).min, dtype=np.int64)
        self.now_ns = np.iinfo(np.int64).min
        self.order_commission: dict[int, float] = {}
        self.order_created: dict[int, pd.Timestamp] = {}
        self.order_updated: dict[int, pd.Timestamp] = {}
        self.rows: list[dict[str, Any]] = []
        self._index_cache: dict[tuple[int, int], pd.DatetimeIndex] = {}
        self.day_txns: list[dict[str, Any]] = []
        self.day_orders: dict[int, None] = {}
        self.prev_value = self.capital_base
        self.prev_cash = self.capital_base

    # ------------------------------------------------------------ lookups
    def history_index(self, n: int) -> pd.DatetimeIndex:
        """The last ``n`` sessions up to now (UTC), cached for the current session."""
        key = (self.now_ns, n)
        index = self._index_cache.get(key)
        if index is None:
            stamps = self.strategy.history_timestamps(n)
            if stamps.size < n:
                unit = "sessions" if self.grid is None else "minutes"
                raise ValueError(
                    f"data.history asked for {n} {unit} on {self.current_dt().date()}, but "
                    f"the data has {stamps.size} up to then (zipline raises "
                    "HistoryWindowStartsBeforeData): give run_algorithm data that starts "
                    "earlier")
            if self._index_cache and next(iter(self._index_cache))[0] != self.now_ns:
                self._index_cache.clear()
            index = self._index_cache[key] = pd.DatetimeIndex(stamps, tz="UTC")
        return index

    def session_so_far(self, field: str, ids: list[int]) -> np.ndarray:
        """This session's bar up to now for ``ids`` (minute mode): the first open, highest
        high, lowest low, last close or summed volume of its minutes (NaN without any)."""
        arr = np.array(self.strategy.history_panel(field, self.mcount, ids))
        out = np.full(len(ids), np.nan)
        seen = ~np.isnan(arr)
        has = seen.any(axis=0)
        if field == "volume":
            return np.nansum(arr, axis=0)
        if not has.any():
            return out
        if field == "open":
            first = seen.argmax(axis=0)
            out[has] = arr[first, np.arange(len(ids))][has]
        elif field == "close":
            last = arr.shape[0] - 1 - seen[::-1].argmax(axis=0)
            out[has] = arr[last, np.arange(len(ids))][has]
        elif field == "high":
            out[has] = np.nanmax(arr[:, has], axis=0)
        else:
            out[has] = np.nanmin(arr[:, has], axis=0)
        return out

    def current_dt(self) -> pd.Timestamp:
        """The current bar timestamp as a UTC timestamp."""
        if self.now_ns == np.iinfo(np.int64).min:
            return pd.Timestamp(self.calendar_sessions[0]).tz_localize("UTC") \
                if self.strategy is None else pd.Timestamp(self.sessions[0], tz="UTC")
        return pd.Timestamp(self.now_ns, tz="UTC")

    def asset_id(self, asset: Any) -> int:
        """The id of an :class:`Asset` (or of a symbol, for ``data`` lookups)."""
        if isinstance(asset, Asset):
            return asset.sid
        if isinstance(asset, str):
            return self.symbol(asset).sid
        raise OrderError(f"expected an asset from symbol() or sid(), got {asset!r}")

    def symbol(self, name: str) -> Asset:
        """The asset of a symbol."""
        try:
            return self.by_symbol[name]
        except (KeyError, TypeError):
            raise OrderError(f"symbol {name!r} was not found in the data; "
                             f"{did_you_mean(str(name), self.asset_names, 'symbols')}") from None

    def sid(self, sid: int) -> Asset:
        """The asset of an id (its position in the data's sorted symbols)."""
        if isinstance(sid, bool) or not isinstance(sid, (int, np.integer)) \
                or not 0 <= sid < len(self.asset_list):
            raise OrderError(f"no asset with sid {sid!r} (sids run from 0 to "
                             f"{len(self.asset_list) - 1})")
        return self.asset_list[int(sid)]

    def can_trade(self, aid: int) -> bool:
        """Listed at the current session and priced."""
        now = self.now_ns
        return bool(self.first_ts[aid] <= now <= self.last_ts[aid]
                    and self.bar_ts[aid] != np.iinfo(np.int64).min)

    def is_stale(self, aid: int) -> bool:
        """Traded before, listed, but no bar now."""
        now = self.now_ns
        return bool(self.first_ts[aid] <= now <= self.last_ts[aid]
                    and self.bar_ts[aid] != np.iinfo(np.int64).min and self.bar_ts[aid] != now)

    def _cash(self) -> float:
        return self.strategy.get_cash() if self.strategy is not None else self.capital_base

    def _equity(self) -> float:
        return self.strategy.get_equity() if self.strategy is not None else self.capital_base

    def _open_positions(self) -> Positions:
        out = Positions()
        for aid, p in self.positions.items():
            if p.amount != 0:
                price = self.strategy.get_last_price(aid)
                if price == price:
                    p.last_sale_price = price
                out[self.asset_list[aid]] = p
        return out

    # ------------------------------------------------------------ settings
    def require_initialize(self, call: str) -> None:
        """Refuse a setting outside ``initialize`` (zipline refuses it too)."""
        if self.phase != "initialize":
            raise ConfigError(f"{call} can only be called in initialize (zipline raises "
                              f"{call.split('(')[0].title().replace('_', '')}PostInit)")

    def schedule(self, func: Callable[..., Any], date_rule: Any, time_rule: Any,
                 half_days: bool, calendar: Any) -> None:
        """Register ``func(context, data)`` on the sessions of ``date_rule``."""
        from mlbacktest.compat.zipline._rules import date_rules

        if not callable(func):
            raise TypeError(f"schedule_function needs a callable, got {func!r}")
        if isinstance(date_rule, TimeRule) and time_rule is None:
            date_rule, time_rule = None, date_rule
        if time_rule is not None and not isinstance(time_rule, TimeRule):
            raise PortingError(
                f"schedule_function time rule {time_rule!r} is not one of zipline's time_rules "
                "(market_open, market_close): use Strategy.schedule(fn, at='HH:MM') natively")
        if calendar not in (None, "XNYS"):
            raise PortingError(
                f"schedule_function(calendar={calendar!r}): the zipline shim schedules on the "
                "run's equity calendar only; use Strategy.schedule(fn, rule=...) natively")
        if not half_days:
            raise PortingError(
                "schedule_function(half_days=False) is not supported by the zipline shim: "
                "check the session yourself in the function, or use Strategy.schedule natively")
        rule = date_rule if date_rule is not None else date_rules.every_day()
        days = firing_sessions(rule, self.calendar_sessions)
        minutes = None if self.grid is None else self.grid.firing_minutes(days, time_rule)
        self.events.append(_Event(func, days, minutes))

    # ------------------------------------------------------------ orders
    def place(self, asset: Any, amount: float, limit_price: Any = None, stop_price: Any = None,
              style: Any = None, call: str = "order") -> str | None:
        """zipline's ``order``: rounded, checked against trading controls, then placed."""
        from mlbacktest.compat.zipline.finance.execution import MarketOrder

        if self.phase == "initialize":
            raise OrderError(f"{call}() can only be called from handle_data() or a scheduled "
                             "function, not in initialize (zipline raises OrderDuringInitialize)")
        if self.phase == "before_trading_start":
            raise OrderError(f"{call}() cannot be called in before_trading_start (zipline raises "
                             "OrderInBeforeTradingStart)")
        if limit_price is not None or stop_price is not None or (
                style is not None and not isinstance(style, MarketOrder)):
            raise PortingError(
                f"{call}(..., limit_price/stop_price/style): the zipline shim places market "
                "orders only (zipline checks limits and stops against the close); port to "
                "Strategy.order(asset, quantity, limit_price=..., stop_price=...)")
        if not isinstance(asset, Asset):
            raise OrderError(f"Passing non-Asset argument {asset!r} to '{call}()' is not "
                             "supported. Use 'sid()' or 'symbol()' methods to look up an Asset.")
        if isinstance(amount, bool) or not isinstance(amount, (int, float, np.integer,
                                                               np.floating)) \
                or not math.isfinite(amount):
            raise OrderError(f"{call}() amount must be a finite number, got {amount!r}")
        aid = asset.sid
        if self.now_ns > self.last_ts[aid]:
            return None  # zipline: no orders after the asset's end date
        q = round_order(float(amount))
        if q == 0:
            return None
        if self.long_only:
            held = self.positions[aid].amount if aid in self.positions else 0
            if held + q < 0:
                raise OrderError(
                    f"Order for {q} shares of {asset!r} at {self.current_dt()} violates trading "
                    "constraint LongOnly({})")
        if self.volume_capped:
            for other in self.strategy.open_orders(aid):
                if (other.quantity > 0) != (q > 0):
                    raise PortingError(
                        f"{call}() of {q} shares of {asset!r} on {self.current_dt().date()} while "
                        f"order {other.order_id} for {int(other.quantity)} shares is open on "
                        "the other side: under a volume limit zipline fills them in the order "
                        "placed, mlbacktest fills the one that reduces the position first; "
                        "cancel_order() the open order first (get_open_orders(asset)), or "
                        "port to native mlbacktest")
        ev = self.strategy.order(aid, float(q))
        oid = int(ev.order_id)
        if isinstance(self.commission, PerOrderCommission):
            self.commission.expect(aid, oid, float(q))
        now = self.current_dt()
        self.order_created[oid] = now
        self.order_updated[oid] = now
        self.day_orders[oid] = None
        return str(oid)

    def _price(self, asset: Any, call: str) -> float:
        if not isinstance(asset, Asset):
            raise OrderError(f"Passing non-Asset argument {asset!r} to '{call}()' is not "
                             "supported. Use 'sid()' or 'symbol()' methods to look up an Asset.")
        price = self.strategy.get_last_price(asset.sid) if self.strategy is not None else math.nan
        if not price == price:
            raise OrderError(f"Cannot order {asset.symbol} on {self.current_dt()} as there is no "
                             "last price for the security (zipline raises "
                             "CannotOrderDelistedAsset)")
        return price

    def value_amount(self, asset: Any, value: float, call: str) -> float:
        """Shares worth ``value`` at the current price (0 for a price of 0)."""
        price = self._price(asset, call)
        if abs(price) < 1e-12:
            return 0.0
        return float(value) / price

    def held(self, asset: Any) -> int:
        """Shares held (filled orders only, as zipline counts)."""
        p = self.positions.get(asset.sid) if isinstance(asset, Asset) else None
        return 0 if p is None else p.amount

    def cancel(self, order_param: Any) -> None:
        """Cancel an order (an :class:`Order` or its id)."""
        oid_text = order_param.id if isinstance(order_param, Order) else order_param
        try:
            oid = int(oid_text)
        except (TypeError, ValueError):
            raise OrderError(f"cancel_order needs an order or an order id, got "
                             f"{order_param!r}") from None
        if self.strategy.cancel(oid):
            if isinstance(self.commission, PerOrderCommission):
                self.commission.forget(oid)
            self.order_updated[oid] = self.current_dt()
            self.day_orders[oid] = None

    def open_orders(self, asset: Any = None) -> Any:
        """Open orders: a list for one asset, else a dict asset -> list."""
        if asset is not None:
            return [Order(self, int(ev.order_id))
                    for ev in self.strategy.open_orders(self.asset_id(asset))]
        out: dict[Asset, list[Order]] = {}
        for ev in self.strategy.open_orders():
            out.setdefault(self.asset_list[ev.asset_id], []).append(
                Order(self, int(ev.order_id)))
        return out

    def record(self, args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
        """zipline's ``record('name', value, ...)`` and ``record(name=value)``."""
        if len(args) % 2:
            raise ValueError("record() takes name, value pairs and keyword arguments")
        for name, value in zip(args[::2], args[1::2], strict=True):
            self.recorded[name] = value
        self.recorded.update(kwargs)

    # ------------------------------------------------------------ the session
    def on_fill(self, fill: Any) -> None:
        """Book a transaction into zipline's position, the order and the session's rows."""
        aid = int(fill.asset_id)
        oid = int(fill.order_id)
        dt = pd.Timestamp(int(fill.ts), tz="UTC")
        amount = round_order(float(fill.quantity))
        pos = self.positions.get(aid)
        if pos is None:
            pos = self.positions[aid] = Position(self.asset_list[aid])
        pos._transaction(amount, float(fill.price), dt)
        pos._commission(float(fill.commission))
        self.order_commission[oid] = self.order_commission.get(oid, 0.0) + float(fill.commission)
        self.order_updated[oid] = dt
        self.day_orders[oid] = None
        self.day_txns.append({"amount": amount, "dt": dt, "price": float(fill.price),
                              "order_id": str(oid), "sid": self.asset_list[aid],
                              "commission": None})

    def before_trading_start(self, ts: int, now: int | None = None) -> None:
        """Before the session stamped ``ts`` (its first minute in minute mode): compute the
        pipelines (from the sessions before it), then run ``before_trading_start(context,
        data)`` with the clock at ``now`` (default ``ts``)."""
        if ts < self.start_ns:
            return
        self.now_ns = ts if now is None else now
        self.phase = "before_trading_start"
        try:
            if self.pipelines:
                self._run_pipelines(ts)
            if self.before_trading_start_fn is not None:
                self.before_trading_start_fn(self.context, self.data)
        finally:
            self.phase = "trading"

    def _run_pipelines(self, ts: int) -> None:
        from mlbacktest.compat.zipline.pipeline import PipelineContext

        exists = (self.first_ts <= ts) & (self.last_ts >= ts)
        grid = self.grid
        if grid is None:
            def history(col: str, n: int) -> np.ndarray:
                return np.asarray(self.strategy.history_panel(col, n))
        else:
            end = self.spos + 1  # the sessions before this one, from the minutes' daily bars

            def history(col: str, n: int) -> np.ndarray:
                return grid.daily[col][max(end - n, 0):end]
        ctx = PipelineContext(history, exists, str(pd.Timestamp(ts).date()))
        self.pipeline_out = {}
        for name, pipe in self.pipelines.items():
            rows, values = pipe.evaluate(ctx)
            ids = np.flatnonzero(rows)
            self.pipeline_out[name] = pd.DataFrame(
                {col: v[ids] for col, v in values.items()},
                index=pd.Index([self.asset_list[i] for i in ids], dtype=object))

    def attach_pipeline(self, pipeline: Any, name: str) -> Any:
        """Register a pipeline, computed before every session."""
        from mlbacktest.compat.zipline.pipeline import Pipeline

        self.require_initialize("attach_pipeline()")
        if not isinstance(pipeline, Pipeline):
            raise PortingError(f"attach_pipeline({pipeline!r}): the zipline shim computes "
                               "zipline.pipeline.Pipeline objects of built-in factors only")
        self.pipelines[name] = pipeline
        return pipeline

    def pipeline_output(self, name: str) -> pd.DataFrame:
        """The output of pipeline ``name`` for the current session."""
        if name not in self.pipelines:
            raise ValueError(f"no pipeline named {name!r} is attached (attached: "
                             f"{sorted(self.pipelines)}; zipline raises NoSuchPipeline)")
        if self.phase == "initialize" or name not in self.pipeline_out:
            raise ValueError(f"pipeline_output({name!r}) is available from the first "
                             "session on (before_trading_start, handle_data, scheduled "
                             "functions), not in initialize")
        return self.pipeline_out[name]

    def session(self, view: Any) -> None:
        """One session: bars seen, ``handle_data``, scheduled functions, the perf row."""
        ids = view.asset_ids
        now = int(view.ts)
        self.now_ns = now
        for f in _BAR_FIELDS:
            arr = self.today[f]
            arr[:] = 0.0 if f == "volume" else np.nan
            arr[ids] = getattr(view, f)
        self.bar_ts[ids] = now
        grid = self.grid
        if grid is not None:
            while self.spos + 1 < len(grid.opens) and now >= grid.opens[self.spos + 1]:
                self.spos += 1
                self.mcount = 0
            self.mcount += 1
        if now < self.start_ns:
            return
        self.phase = "trading"
        if self.handle_data_fn is not None:
            self.handle_data_fn(self.context, self.data)
        if grid is None:
            day = pd.Timestamp(now).date()
            for ev in self.events:
                if day in ev.days:
                    ev.func(self.context, self.data)
            self._close_session(now)
            return
        for ev in self.events:
            if now in ev.minutes:  # type: ignore[operator]
                ev.func(self.context, self.data)
        if now == grid.closes[self.spos]:
            self._close_session(now)

    def _close_session(self, now: int) -> None:
        value = self._equity()
        cash = self._cash()
        if self.max_leverage is not None:
            gross = sum(abs(p.amount) * p.last_sale_price
                        for p in self._open_positions().values())
            leverage = gross / value if value else math.inf
            if leverage > self.max_leverage:
                raise OrderError(
                    f"account leverage {leverage:.6g} on {self.current_dt().date()} is above "
                    f"set_max_leverage({self.max_leverage}) (zipline raises "
                    "AccountControlViolation)")
        positions = self._open_positions()
        long_value = sum(p.amount * p.last_sale_price for p in positions.values() if p.amount > 0)
        short_value = sum(p.amount * p.last_sale_price for p in positions.values()
                          if p.amount < 0)
        row: dict[str, Any] = {
            "period_close": pd.Timestamp(now, tz="UTC"),
            "starting_cash": self.prev_cash, "ending_cash": cash,
            "starting_value": self.prev_value - self.prev_cash, "ending_value": value - cash,
            "capital_used": cash - self.prev_cash,
            "portfolio_value": value, "pnl": value - self.prev_value,
            "returns": value / self.prev_value - 1.0 if self.prev_value else math.nan,
            "algorithm_period_return": value / self.capital_base - 1.0,
            "long_value": long_value, "short_value": short_value,
            "longs_count": sum(1 for p in positions.values() if p.amount > 0),
            "shorts_count": sum(1 for p in positions.values() if p.amount < 0),
            "gross_leverage": (long_value - short_value) / value if value else math.nan,
            "net_leverage": (long_value + short_value) / value if value else math.nan,
            "positions": [p.to_dict() for _, p in sorted(positions.items())],
            "transactions": self.day_txns,
            "orders": [Order(self, oid).to_dict() for oid in self.day_orders],
        }
        row.update(self.recorded)
        self.rows.append(row)
        self.day_txns = []
        self.day_orders = {}
        self.prev_value = value
        self.prev_cash = cash

    def perf(self) -> pd.DataFrame:
        """The daily rows as zipline's ``perf`` frame, indexed by session (UTC)."""
        frame = pd.DataFrame(self.rows)
        if frame.empty:
            return frame
        frame.index = pd.DatetimeIndex(frame.pop("period_close"))
        return frame


def _before_session(algo: ZiplineAlgorithm, ts: int, now: int | None, context: Any) -> None:
    """The timer just before the session stamped ``ts`` (the clock reads ``now``)."""
    algo.before_trading_start(ts, now)


class ZiplineStrategy(Strategy):
    """The :class:`~mlbacktest.Strategy` that plays a :class:`ZiplineAlgorithm`."""

    def __init__(self, algo: ZiplineAlgorithm) -> None:
        self._algo = algo
        algo.strategy = self

    def on_start(self) -> None:
        """Schedule ``before_trading_start`` just before each session, if the algorithm has one."""
        algo = self._algo
        if algo.before_trading_start_fn is None and not algo.pipelines:
            return
        grid = algo.grid
        if grid is None:
            for ts in algo.sessions.asi8:
                self.schedule_at(partial(_before_session, algo, int(ts), None), int(ts) - 1)
            return
        for k in range(grid.run_from, len(grid.opens)):
            ts = int(grid.opens[k])
            self.schedule_at(partial(_before_session, algo, ts, int(grid.before_open[k])),
                             ts - 1)

    def on_order(self, order: Any) -> None:
        """Refuse the one order zipline never places: a margin call's liquidation."""
        if order.origin == "margin_call":
            raise PortingError(
                f"equity fell to {self.get_equity():.2f} (gross exposure "
                f"{np.sum(np.abs(self.weights())) * self.get_equity():.2f}) on "
                f"{self._algo.current_dt().date()}: zipline goes on trading with equity "
                "at or below zero, mlbacktest's margin account liquidates (margin call); "
                "raise capital_base, or port to native mlbacktest with "
                "BacktestConfig(account='margin', ...)")

    def on_fill(self, fill: Any) -> None:
        """Book the fill in zipline's ledger."""
        self._algo.on_fill(fill)

    def on_slice(self, view: Any, context: Any) -> None:
        """Play one zipline session."""
        self._algo.session(view)
