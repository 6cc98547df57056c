"""Engine-neutral parity scenarios, the mlbacktest side of the harness, and the comparison.

A scenario is seeded synthetic bars, a cost set-up and a *policy*: deterministic
trading logic written against the small engine-neutral :class:`Api` (positions,
equity, market / limit / stop orders, cancels, target helpers). Each engine gets
an adapter implementing :class:`Api` with its own calls: mlbacktest here,
backtrader in ``test_backtrader.py``. The policy decides from the bars up to the
current index and from what the engine reports (positions, equity, fills), so
two engines that fill and account alike make the same decisions and the same
fills, and the first divergence shows up as a fill that differs.

vectorbt cannot run a Python policy bar by bar; the scenarios it can express
give it the same intent as arrays computed from the bars alone (target
quantities, target weights, entry signals); see ``test_vectorbt.py``.

mlbacktest runs each scenario once, with the preset named by the scenario:
``BacktestConfig.preset("backtrader", ...)`` for the next-open scenarios (compared
with backtrader, and with vectorbt given next-open prices), ``preset("vectorbt",
...)`` for the close-price scenarios (compared with vectorbt's default
``price=close``; that preset is look-ahead-prone and warns).

Pass bar (every engine pair, every scenario): the same number of fills and of
round trips, every fill (bar, asset, quantity, price, commission) equal to
``REL_TOL`` relative, and equity equal to ``REL_TOL`` relative at every bar.
"""

from __future__ import annotations

import datetime as dt
import functools
import math
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import polars as pl

import mlbacktest
from mlbacktest import BacktestConfig, CommissionModel, Strategy
from mlbacktest.models import FixedAmountSlippage

__all__ = [
    "REL_TOL",
    "Bars",
    "make_bars",
    "Costs",
    "Fill",
    "EngineRun",
    "Api",
    "Policy",
    "TargetPolicy",
    "PercentPolicy",
    "EntryExitPolicy",
    "LimitEntryPolicy",
    "StressPolicy",
    "StopReversePolicy",
    "BracketPolicy",
    "Scenario",
    "SCENARIOS",
    "run_mlbacktest",
    "run_mlbacktest_with",
    "mlbacktest_config",
    "fill_kinds",
    "assert_parity",
    "count_round_trips",
]

REL_TOL = 1e-9
START = dt.datetime(2020, 1, 1)


# =========================================================================== bars
@dataclass(frozen=True, eq=False)
class Bars:
    """A dense panel: every asset has a bar at every date. Arrays are (n_bars, n_assets)."""

    dates: tuple[dt.datetime, ...]
    assets: tuple[str, ...]
    open: np.ndarray
    high: np.ndarray
    low: np.ndarray
    close: np.ndarray
    pred: np.ndarray

    @property
    def n_bars(self) -> int:
        return len(self.dates)

    @property
    def n_assets(self) -> int:
        return len(self.assets)

    @functools.cached_property
    def ts_ns(self) -> np.ndarray:
        return np.array(self.dates, dtype="datetime64[ns]").astype(np.int64)

    @functools.cached_property
    def frame(self) -> pl.DataFrame:
        """The long frame mlbacktest takes: timestamp, asset, OHLCV, pred."""
        n, m = self.close.shape
        ts = np.repeat(np.array(self.dates, dtype="datetime64[ns]"), m)
        return pl.DataFrame(
            {
                "timestamp": ts,
                "asset": np.tile(np.array(self.assets), n),
                "open": self.open.ravel(),
                "high": self.high.ravel(),
                "low": self.low.ravel(),
                "close": self.close.ravel(),
                "volume": np.full(n * m, 1_000_000.0),
                "pred": self.pred.ravel(),
            }
        ).with_columns(pl.col("timestamp").cast(pl.Datetime("ns")))


#: A market regime: (number of bars, drift per bar, volatility per bar, jump probability).
Regime = tuple[int, float, float, float]


@functools.cache
def make_bars(
    *,
    seed: int,
    n_bars: int,
    n_assets: int,
    regimes: tuple[Regime, ...] | None = None,
    min_range: float = 0.002,
    skill: float = 0.15,
    persistence: float = 0.8,
) -> Bars:
    """Seeded random-walk bars with a prediction column.

    Each bar opens at the previous close times a small gap (a large one with
    the regime's jump probability) and closes at its open times the bar's
    return. The high and low extend at least ``min_range`` beyond both open and
    close: a bar never opens at its high or low, so a slipped fill at the open
    (up to ``min_range``) stays inside the bar in every engine.

    ``pred`` stamped *k* is a noisy forecast of the return of bar *k + 1*
    (``skill`` is its correlation), AR(1)-persistent like a model's output.
    """
    rng = np.random.default_rng(seed)
    if regimes is None:
        regimes = ((n_bars, 0.0, 0.015, 0.0),)
    if sum(r[0] for r in regimes) != n_bars:
        raise ValueError("regime lengths must add up to n_bars")
    drift = np.concatenate([np.full(r[0], r[1]) for r in regimes])[:, None]
    vol = np.concatenate([np.full(r[0], r[2]) for r in regimes])[:, None]
    jump_p = np.concatenate([np.full(r[0], r[3]) for r in regimes])[:, None]
    sig = vol * rng.uniform(0.7, 1.4, n_assets)[None, :]
    body = drift + sig * rng.standard_normal((n_bars, n_assets))
    gap = sig * 0.3 * rng.standard_normal((n_bars, n_assets))
    jumps = rng.random((n_bars, n_assets)) < jump_p
    gap = gap + jumps * sig * 4.0 * rng.standard_normal((n_bars, n_assets))
    base = rng.uniform(20.0, 200.0, n_assets)
    log_close = np.log(base)[None, :] + np.cumsum(gap + body, axis=0)
    close = np.exp(log_close)
    open_ = np.exp(log_close - body)
    up = min_range + np.abs(rng.standard_normal((n_bars, n_assets))) * sig * 0.6
    dn = min_range + np.abs(rng.standard_normal((n_bars, n_assets))) * sig * 0.6
    high = np.maximum(open_, close) * (1.0 + up)
    low = np.minimum(open_, close) * (1.0 - dn)
    noise = np.empty((n_bars, n_assets))
    noise[0] = rng.standard_normal(n_assets)
    shocks = rng.standard_normal((n_bars, n_assets)) * math.sqrt(1 - persistence**2)
    for k in range(1, n_bars):
        noise[k] = persistence * noise[k - 1] + shocks[k]
    nxt = np.vstack([np.diff(log_close, axis=0) / sig[1:], np.zeros((1, n_assets))])
    pred = skill * nxt + math.sqrt(1 - skill**2) * noise
    dates = tuple(START + dt.timedelta(days=k) for k in range(n_bars))
    assets = tuple(f"A{i:02d}" for i in range(n_assets))
    arrays = [np.ascontiguousarray(x) for x in (open_, high, low, close, pred)]
    for x in arrays:
        x.flags.writeable = False
    return Bars(dates, assets, *arrays)


# =========================================================================== costs, fills, runs
@dataclass(frozen=True)
class Costs:
    """Costs of a scenario, in the units each engine is configured with.

    Commission per fill of quantity q at price p (after slippage):
    ``max(rate*|q|*p + per_share*|q|, minimum)``. Slippage moves the price
    against the order by ``slippage_bps`` basis points, or by
    ``slippage_fixed`` currency units per share (backtrader's
    ``set_slippage_fixed``, mlbacktest's ``FixedAmountSlippage``).
    """

    commission_rate: float = 0.0
    per_share: float = 0.0
    commission_minimum: float = 0.0
    slippage_bps: float = 0.0
    slippage_fixed: float = 0.0


@dataclass(frozen=True)
class Fill:
    """One fill as every engine reports it: bar index, asset index, signed quantity."""

    k: int
    asset: int
    quantity: float
    price: float
    commission: float
    handle: int = -1


@dataclass
class EngineRun:
    """What the comparison needs from one engine's run."""

    engine: str
    fills: list[Fill]
    equity: np.ndarray | None
    final_equity: float
    rejected: int = 0
    native_round_trips: int | None = None
    notes: dict[str, Any] = field(default_factory=dict)


# =========================================================================== policy API
class Api:
    """What a policy may ask of an engine. Assets are indices into ``Bars.assets``.

    Order methods return an integer handle (the engine's order id) that
    ``cancel`` takes and that :class:`Fill` carries back; target helpers
    return None when no order was needed.
    """

    def position(self, a: int) -> float:
        raise NotImplementedError

    def equity(self) -> float:
        raise NotImplementedError

    def market(self, a: int, q: float) -> int:
        raise NotImplementedError

    def limit(self, a: int, q: float, price: float) -> int:
        raise NotImplementedError

    def stop(self, a: int, q: float, price: float) -> int:
        raise NotImplementedError

    def cancel(self, h: int) -> bool:
        raise NotImplementedError

    def target_quantity(self, a: int, q: float) -> int | None:
        raise NotImplementedError

    def target_percent(self, a: int, pct: float) -> int | None:
        raise NotImplementedError

    def exits(
        self,
        a: int,
        q: float,
        *,
        stop: float | None = None,
        limit: float | None = None,
        trail_amount: float | None = None,
        trail_percent: float | None = None,
    ) -> list[int]:
        """Exit orders for signed ``q``, one cancelling the others: a stop, a trailing
        stop (trailing the closes from the last close) and/or a limit, placed in
        that order (backtrader tries linked orders in the order they were placed)."""
        raise NotImplementedError

    def bracket(self, a: int, q: float, *, stop_loss: float, take_profit: float) -> int:
        """A market entry whose stop-loss and take-profit (OCO) arm when it fills."""
        raise NotImplementedError


class Policy:
    """Deterministic trading logic: ``on_fill`` for each fill, then ``on_bar`` once per bar."""

    def __init__(self, bars: Bars) -> None:
        self.bars = bars

    def on_bar(self, api: Api, k: int) -> None:
        pass

    def on_fill(self, api: Api, fill: Fill) -> None:
        pass


def _hysteresis_targets(
    pred: np.ndarray,
    qty: np.ndarray,
    *,
    enter: float,
    leave: float,
    long: bool = True,
    short: bool = True,
    strong: float | None = None,
    strong_mult: int = 3,
) -> np.ndarray:
    """Target quantities from a prediction: NaN where the target does not change.

    Long ``qty`` when ``pred > enter`` (``strong_mult * qty`` above ``strong``),
    short when ``pred < -enter``, flat when a long's prediction falls below
    ``leave`` (a short's rises above ``-leave``), unchanged otherwise.
    """
    n, m = pred.shape
    out = np.full((n, m), np.nan)
    state = np.zeros(m)
    for k in range(n):
        for a in range(m):
            p, cur = pred[k, a], state[a]
            size = qty[a] * (strong_mult if strong is not None and abs(p) > strong else 1)
            if long and p > enter:
                new = size
            elif short and p < -enter:
                new = -size
            elif (cur > 0 and p < leave) or (cur < 0 and p > -leave):
                new = 0.0
            else:
                new = cur
            if new != cur:
                out[k, a] = new
                state[a] = new
    return out


def _lots(bars: Bars, notional: float) -> np.ndarray:
    """Whole-share lot per asset worth about ``notional`` at the first close."""
    return np.floor(notional / bars.close[0]).astype(float)


# =========================================================================== policies
class TargetPolicy(Policy):
    """Trade to precomputed target quantities (NaN: keep) with market orders."""

    def __init__(self, bars: Bars, targets: np.ndarray) -> None:
        super().__init__(bars)
        self.targets = targets

    def on_bar(self, api: Api, k: int) -> None:
        row = self.targets[k]
        for a in np.flatnonzero(~np.isnan(row)):
            if api.position(int(a)) != row[a]:
                api.target_quantity(int(a), float(row[a]))


class PercentPolicy(Policy):
    """Rebalance to target weights of equity with each engine's target-percent helper.

    On rebalance bars (rows of ``weights`` that are not NaN) the orders that
    reduce a position are placed first, so that in every engine their proceeds
    fund the purchases (backtrader fills in submission order; mlbacktest exits
    first; vectorbt with ``call_seq="auto"`` sells first).
    """

    def __init__(self, bars: Bars, weights: np.ndarray) -> None:
        super().__init__(bars)
        self.weights = weights

    def on_bar(self, api: Api, k: int) -> None:
        row = self.weights[k]
        if np.isnan(row).all():
            return
        equity = api.equity()
        close = self.bars.close[k]
        gap = [row[a] * equity - api.position(a) * close[a] for a in range(len(row))]
        for a in sorted(range(len(row)), key=lambda a: gap[a] >= 0):
            api.target_percent(a, float(row[a]))


class EntryExitPolicy(Policy):
    """Market entries on signals while flat; exits armed when the entry fills.

    The exits are a stop ``stop_loss`` away from the entry fill price, a limit
    ``take_profit`` away and/or a trailing stop ``trail_percent`` behind the
    closes. A single exit is a plain stop or limit order; several (or a
    trailing stop) form a one-cancels-other group (``Api.exits``). No other
    exit: the position is held until an exit fills.

    ``skip_exit_bar``: take no entry on a bar on which an exit of the same
    asset filled. That is vectorbt's rule (a stop exit takes the row, and the
    signal on that row is dropped); mlbacktest's ``same_bar_reentry=False``
    instead holds such an entry until the asset's next bar (docs/parity.md).
    """

    def __init__(
        self,
        bars: Bars,
        long_sig: np.ndarray,
        short_sig: np.ndarray,
        qty: np.ndarray,
        *,
        stop_loss: float | None = None,
        take_profit: float | None = None,
        trail_percent: float | None = None,
        skip_exit_bar: bool = False,
    ) -> None:
        super().__init__(bars)
        self.long_sig, self.short_sig, self.qty = long_sig, short_sig, qty
        self.stop_loss, self.take_profit = stop_loss, take_profit
        self.trail_percent = trail_percent
        self.skip_exit_bar = skip_exit_bar
        self.entries: dict[int, int] = {}
        self.exit_bar: dict[int, int] = {}

    def on_bar(self, api: Api, k: int) -> None:
        for a in range(self.bars.n_assets):
            if api.position(a) != 0:
                continue
            if self.skip_exit_bar and self.exit_bar.get(a) == k:
                continue
            if self.long_sig[k, a]:
                self.entries[api.market(a, self.qty[a])] = a
            elif self.short_sig[k, a]:
                self.entries[api.market(a, -self.qty[a])] = a

    def on_fill(self, api: Api, fill: Fill) -> None:
        if self.entries.pop(fill.handle, None) is None:
            self.exit_bar[fill.asset] = fill.k
            return
        a, q, p = fill.asset, -fill.quantity, fill.price
        s = 1.0 if fill.quantity > 0 else -1.0
        stop = None if self.stop_loss is None else p * (1 - s * self.stop_loss)
        limit = None if self.take_profit is None else p * (1 + s * self.take_profit)
        if self.trail_percent is not None or (stop is not None and limit is not None):
            api.exits(a, q, stop=stop, limit=limit, trail_percent=self.trail_percent)
        elif stop is not None:
            api.stop(a, q, stop)
        elif limit is not None:
            api.limit(a, q, limit)


class StopReversePolicy(Policy):
    """Stop-and-reverse: always in the market once the first signal has been taken.

    A market entry on the first signal; every entry's fill places, at
    ``stop`` from its price, a stop that closes the position and then a stop
    entry the other way at the same level. On the bar the level trades both
    fill, the exit first: the position reverses on that bar (backtrader fills
    both in submission order; mlbacktest needs ``same_bar_reentry=True``, set
    by its backtrader preset).
    """

    def __init__(
        self,
        bars: Bars,
        long_sig: np.ndarray,
        short_sig: np.ndarray,
        qty: np.ndarray,
        *,
        stop: float,
    ) -> None:
        super().__init__(bars)
        self.long_sig, self.short_sig, self.qty, self.stop = long_sig, short_sig, qty, stop
        self.entries: set[int] = set()
        self.started: set[int] = set()

    def on_bar(self, api: Api, k: int) -> None:
        for a in range(self.bars.n_assets):
            if a in self.started:
                continue
            if self.long_sig[k, a]:
                self.entries.add(api.market(a, self.qty[a]))
            elif self.short_sig[k, a]:
                self.entries.add(api.market(a, -self.qty[a]))
            else:
                continue
            self.started.add(a)

    def on_fill(self, api: Api, fill: Fill) -> None:
        if fill.handle not in self.entries:
            return
        self.entries.discard(fill.handle)
        a, q = fill.asset, fill.quantity
        level = fill.price * (1 - self.stop if q > 0 else 1 + self.stop)
        api.stop(a, -q, level)
        self.entries.add(api.stop(a, -q, level))


class LimitEntryPolicy(Policy):
    """Resting limit entries (long below the close, short above), cancelled after ``ttl`` bars.

    Exits at market when the prediction turns against the position.
    """

    def __init__(
        self, bars: Bars, qty: np.ndarray, *, enter: float, leave: float, offset: float, ttl: int
    ) -> None:
        super().__init__(bars)
        self.qty, self.enter, self.leave, self.offset, self.ttl = qty, enter, leave, offset, ttl
        self.working: dict[int, tuple[int, int]] = {}  # asset -> (handle, bar placed)

    def on_fill(self, api: Api, fill: Fill) -> None:
        w = self.working.get(fill.asset)
        if w is not None and w[0] == fill.handle:
            del self.working[fill.asset]

    def on_bar(self, api: Api, k: int) -> None:
        pred, close = self.bars.pred[k], self.bars.close[k]
        for a in range(self.bars.n_assets):
            w = self.working.get(a)
            if w is not None and k - w[1] >= self.ttl:
                api.cancel(w[0])
                del self.working[a]
                w = None
            pos = api.position(a)
            if pos == 0 and w is None:
                if pred[a] > self.enter:
                    h = api.limit(a, self.qty[a], close[a] * (1 - self.offset))
                elif pred[a] < -self.enter:
                    h = api.limit(a, -self.qty[a], close[a] * (1 + self.offset))
                else:
                    continue
                self.working[a] = (h, k)
            elif (pos > 0 and pred[a] < self.leave) or (pos < 0 and pred[a] > -self.leave):
                api.target_quantity(a, 0.0)


class StressPolicy(Policy):
    """Everything at once, as a long multi-regime run exercises it.

    Entries on strong signals, long or short, alternately at market and with a
    resting limit (cancelled after ``ttl`` bars). When an entry fills, a
    stop-loss and a take-profit are placed; when one of them fills the other
    is cancelled (by hand: both can fill on one bar, and then the position is
    reversed, which both engines must do alike). A signal reversal cancels the
    exits and closes at market; a position left without exits is closed at
    market.
    """

    def __init__(
        self,
        bars: Bars,
        qty: np.ndarray,
        *,
        enter: float = 1.0,
        leave: float = 0.5,
        offset: float = 0.005,
        ttl: int = 4,
        stop_loss: float = 0.05,
        take_profit: float = 0.08,
    ) -> None:
        super().__init__(bars)
        self.qty, self.enter, self.leave, self.offset, self.ttl = qty, enter, leave, offset, ttl
        self.stop_loss, self.take_profit = stop_loss, take_profit
        self.entry: dict[int, tuple[int, int]] = {}
        self.exits: dict[int, list[int]] = {a: [] for a in range(bars.n_assets)}

    def on_fill(self, api: Api, fill: Fill) -> None:
        a = fill.asset
        e = self.entry.get(a)
        if e is not None and e[0] == fill.handle:
            del self.entry[a]
            q, p, long = -fill.quantity, fill.price, fill.quantity > 0
            sl, tp = self.stop_loss, self.take_profit
            self.exits[a] = [
                api.stop(a, q, p * (1 - sl) if long else p * (1 + sl)),
                api.limit(a, q, p * (1 + tp) if long else p * (1 - tp)),
            ]
        elif fill.handle in self.exits[a]:
            for h in self.exits[a]:
                if h != fill.handle:
                    api.cancel(h)
            self.exits[a] = []

    def _flatten(self, api: Api, a: int) -> None:
        for h in self.exits[a]:
            api.cancel(h)
        self.exits[a] = []
        api.target_quantity(a, 0.0)

    def on_bar(self, api: Api, k: int) -> None:
        pred, close = self.bars.pred[k], self.bars.close[k]
        for a in range(self.bars.n_assets):
            e = self.entry.get(a)
            if e is not None and k - e[1] >= self.ttl:
                api.cancel(e[0])
                del self.entry[a]
                e = None
            pos = api.position(a)
            if pos == 0:
                if self.exits[a]:
                    for h in self.exits[a]:
                        api.cancel(h)
                    self.exits[a] = []
                if e is not None:
                    continue
                if pred[a] > self.enter:
                    q, lim = self.qty[a], close[a] * (1 - self.offset)
                elif pred[a] < -self.enter:
                    q, lim = -self.qty[a], close[a] * (1 + self.offset)
                else:
                    continue
                h = api.market(a, q) if k % 2 == 0 else api.limit(a, q, lim)
                self.entry[a] = (h, k)
            elif (
                not self.exits[a]
                or (pos > 0 and pred[a] < -self.leave)
                or (pos < 0 and pred[a] > self.leave)
            ):
                self._flatten(api, a)


class BracketPolicy(Policy):
    """Market entries with a stop-loss and take-profit set from the decision close (OCO)."""

    def __init__(
        self,
        bars: Bars,
        long_sig: np.ndarray,
        short_sig: np.ndarray,
        qty: np.ndarray,
        *,
        stop_loss: float,
        take_profit: float,
    ) -> None:
        super().__init__(bars)
        self.long_sig, self.short_sig, self.qty = long_sig, short_sig, qty
        self.stop_loss, self.take_profit = stop_loss, take_profit

    def on_bar(self, api: Api, k: int) -> None:
        close = self.bars.close[k]
        for a in range(self.bars.n_assets):
            if api.position(a) != 0:
                continue
            if self.long_sig[k, a]:
                q, s = self.qty[a], 1.0
            elif self.short_sig[k, a]:
                q, s = -self.qty[a], -1.0
            else:
                continue
            api.bracket(
                a,
                q,
                stop_loss=close[a] * (1 - s * self.stop_loss),
                take_profit=close[a] * (1 + s * self.take_profit),
            )


# =========================================================================== scenarios
@dataclass(frozen=True)
class Scenario:
    """One parity scenario.

    ``make_policy`` builds a fresh policy (one per engine run).
    ``preset`` is the mlbacktest preset the scenario runs with: ``"backtrader"``
    (market orders at the next open) or ``"vectorbt"`` (at the decision bar's
    close, vectorbt's default ``price=close``).
    ``backtrader_skip`` / ``vectorbt_skip`` is the reason that engine cannot
    express the scenario (None: it can).
    """

    name: str
    description: str
    bars_args: tuple[tuple[str, Any], ...]
    make_policy: Callable[[Bars], Policy]
    costs: Costs = Costs()
    initial_cash: float = 1_000_000.0
    fractional: bool = False
    preset: str = "backtrader"
    backtrader_skip: str | None = None
    vectorbt_skip: str | None = None

    @property
    def bars(self) -> Bars:
        return make_bars(**dict(self.bars_args))


def _args(**kw: Any) -> tuple[tuple[str, Any], ...]:
    return tuple(sorted(kw.items()))


def _targets(
    *,
    long: bool = True,
    short: bool = True,
    enter: float = 0.8,
    leave: float = 0.2,
    notional: float = 20_000.0,
    strong: float | None = None,
) -> Callable[[Bars], Policy]:
    def make(bars: Bars) -> Policy:
        qty = _lots(bars, notional)
        t = _hysteresis_targets(
            bars.pred, qty, enter=enter, leave=leave, long=long, short=short, strong=strong
        )
        return TargetPolicy(bars, t)

    return make


def _signals(bars: Bars, enter: float, short: bool) -> tuple[np.ndarray, np.ndarray]:
    long_sig = bars.pred > enter
    short_sig = (bars.pred < -enter) if short else np.zeros_like(long_sig)
    return long_sig, short_sig


def _entry_exit(**kw: Any) -> Callable[[Bars], Policy]:
    def make(bars: Bars) -> Policy:
        ls, ss = _signals(bars, 1.0, short=True)
        return EntryExitPolicy(bars, ls, ss, _lots(bars, 20_000.0), **kw)

    return make


def _rebalance(every: int, gross: float) -> Callable[[Bars], Policy]:
    """Long-only weights ∝ exp(pred) summing to ``gross``, on every ``every``-th bar."""

    def make(bars: Bars) -> Policy:
        x = np.exp(bars.pred)
        w = gross * x / x.sum(axis=1, keepdims=True)
        w[np.arange(bars.n_bars) % every != 0] = np.nan
        return PercentPolicy(bars, w)

    return make


def _limit_entries(bars: Bars) -> Policy:
    return LimitEntryPolicy(bars, _lots(bars, 20_000.0), enter=0.9, leave=0.0, offset=0.01, ttl=3)


def _stress(bars: Bars) -> Policy:
    return StressPolicy(bars, _lots(bars, 30_000.0))


def _trail_short(bars: Bars) -> Policy:
    ss = bars.pred < -1.0
    return EntryExitPolicy(bars, np.zeros_like(ss), ss, _lots(bars, 20_000.0), trail_percent=0.05)


def _stop_reverse(bars: Bars) -> Policy:
    ls, ss = _signals(bars, 1.0, short=True)
    return StopReversePolicy(bars, ls, ss, _lots(bars, 20_000.0), stop=0.03)


def _bracket(bars: Bars) -> Policy:
    ls, ss = _signals(bars, 1.0, short=True)
    return BracketPolicy(bars, ls, ss, _lots(bars, 20_000.0), stop_loss=0.05, take_profit=0.10)


BASIC = _args(seed=11, n_bars=750, n_assets=5)
STRESS_REGIMES: tuple[Regime, ...] = (
    (300, 0.0008, 0.010, 0.00),  # calm bull
    (150, -0.0040, 0.035, 0.06),  # crash: large gaps
    (300, 0.0000, 0.008, 0.00),  # quiet range
    (250, 0.0000, 0.030, 0.04),  # volatile, gappy chop
    (500, 0.0015, 0.018, 0.01),  # recovery
)
NO_VBT_TRAIL = (
    "vectorbt's sl_trail follows the bar highs (lows for a short) from the entry price; "
    "backtrader's and mlbacktest's trailing stops follow the closes from the close at placement"
)
NO_BT_CLOSE = (
    "backtrader has no fill at the decision bar's close: cheat-on-close (set_coc) prices a "
    "market order at that close but executes it in the next bar's broker cycle, so the "
    "fill, its costs and notify_order come a bar later"
)
NO_VBT_LIMITS = (
    "vectorbt has no resting (good-till-cancelled) entry orders: from_orders fills every "
    "order on its own bar at the price given, from_signals enters on signals and only has "
    "stop-loss / take-profit exits"
)
GAPPY: tuple[Regime, ...] = ((1000, 0.0, 0.025, 0.03),)

_ALL: list[Scenario] = [
    Scenario(
        "long_only",
        "long-only signal targets on 5 assets, no costs",
        BASIC,
        _targets(short=False),
    ),
    Scenario(
        "long_short",
        "long/short signal targets with reversals through zero, no costs",
        BASIC,
        _targets(),
    ),
    Scenario(
        "short_only",
        "short-only signal targets on 3 assets, no costs",
        _args(seed=12, n_bars=500, n_assets=3),
        _targets(long=False),
    ),
    Scenario(
        "percentage_commission",
        "long/short signal targets, commission 0.1 % of traded value",
        _args(seed=13, n_bars=750, n_assets=5),
        _targets(),
        Costs(commission_rate=0.001),
    ),
    Scenario(
        "per_share_commission",
        "long-only targets of 1 or 3 lots, 0.005 per share with a 1.00 minimum per fill",
        _args(seed=14, n_bars=750, n_assets=5),
        _targets(short=False, notional=8_000.0, strong=1.5),
        Costs(per_share=0.005, commission_minimum=1.0),
        vectorbt_skip=(
            "vectorbt has no per-share commission with a per-fill minimum: fees is a fraction "
            "of traded value and fixed_fees a flat amount per order"
        ),
    ),
    Scenario(
        "percentage_slippage",
        "long/short signal targets, 5 bps slippage and 0.05 % commission",
        _args(seed=15, n_bars=750, n_assets=5),
        _targets(),
        Costs(commission_rate=0.0005, slippage_bps=5.0),
    ),
    Scenario(
        "stop_loss_5pct",
        "long/short entries at market; a stop 5 % from the entry fill is the only exit; "
        "gappy bars; 0.1 % commission and 5 bps slippage",
        _args(seed=16, n_bars=1000, n_assets=5, regimes=GAPPY),
        _entry_exit(stop_loss=0.05),
        Costs(commission_rate=0.001, slippage_bps=5.0),
    ),
    Scenario(
        "take_profit_10pct",
        "long/short entries at market; a limit 10 % from the entry fill is the only exit; "
        "gappy bars; 0.1 % commission",
        _args(seed=17, n_bars=1000, n_assets=5, regimes=GAPPY),
        _entry_exit(take_profit=0.10),
        Costs(commission_rate=0.001),
    ),
    Scenario(
        "limit_entries",
        "long/short resting limit entries 1 % through the close, cancelled after 3 bars; "
        "market exits; 0.1 % commission",
        _args(seed=18, n_bars=750, n_assets=4),
        _limit_entries,
        Costs(commission_rate=0.001),
        vectorbt_skip=NO_VBT_LIMITS,
    ),
    Scenario(
        "target_percent_rebalance_20",
        "20 assets rebalanced every 5 bars to weights ∝ exp(pred) summing to 90 % with the "
        "engines' target-percent helpers; fractional shares; 0.1 % commission",
        _args(seed=19, n_bars=500, n_assets=20),
        _rebalance(every=5, gross=0.9),
        Costs(commission_rate=0.001),
        fractional=True,
    ),
    Scenario(
        "target_percent_rebalance_20_whole_shares",
        "as target_percent_rebalance_20 with whole shares (each engine rounds its "
        "target-percent order to whole shares)",
        _args(seed=19, n_bars=500, n_assets=20),
        _rebalance(every=5, gross=0.9),
        Costs(commission_rate=0.001),
    ),
    Scenario(
        "stress_1500",
        "1,500 bars, 5 assets, five regimes (bull, gappy crash, range, volatile chop, "
        "recovery): market and limit entries long/short, stop-loss + take-profit exits "
        "cancelled by hand, signal exits; 0.1 % commission",
        _args(seed=20, n_bars=1500, n_assets=5, regimes=STRESS_REGIMES),
        _stress,
        Costs(commission_rate=0.001),
        vectorbt_skip=NO_VBT_LIMITS,
    ),
    Scenario(
        "fixed_slippage",
        "long/short signal targets, slippage of 0.02 currency units per share "
        "(backtrader set_slippage_fixed, mlbacktest FixedAmountSlippage), 0.05 % commission",
        _args(seed=27, n_bars=750, n_assets=5),
        _targets(),
        Costs(commission_rate=0.0005, slippage_fixed=0.02),
    ),
    Scenario(
        "trailing_stop",
        "long/short entries; a 5 % trailing stop armed by the entry fill is the only exit; "
        "0.1 % commission and 5 bps slippage",
        _args(seed=21, n_bars=1000, n_assets=5),
        _entry_exit(trail_percent=0.05),
        Costs(commission_rate=0.001, slippage_bps=5.0),
        vectorbt_skip=NO_VBT_TRAIL,
    ),
    Scenario(
        "short_trailing_stop",
        "short-only entries; a 5 % trailing buy stop is the only exit",
        _args(seed=22, n_bars=1000, n_assets=5),
        _trail_short,
        vectorbt_skip=NO_VBT_TRAIL,
    ),
    Scenario(
        "bracket_sl_tp",
        "long/short bracket entries at market: stop-loss 5 % and take-profit 10 % from the "
        "decision close, one cancelling the other, working from the bar after the entry",
        _args(seed=23, n_bars=1000, n_assets=5),
        _bracket,
    ),
    Scenario(
        "trailing_tp",
        "5 % trailing stop and 10 % take-profit, OCO; gappy bars (some cross both exits)",
        _args(seed=24, n_bars=1000, n_assets=5, regimes=GAPPY),
        _entry_exit(trail_percent=0.05, take_profit=0.10),
        vectorbt_skip=NO_VBT_TRAIL,
    ),
    Scenario(
        "trailing_sl",
        "5 % trailing stop and a fixed 3 % stop-loss, OCO; gappy bars (when a bar crosses "
        "both, the one placed first, the fixed stop, fills)",
        _args(seed=28, n_bars=1000, n_assets=5, regimes=GAPPY),
        _entry_exit(trail_percent=0.05, stop_loss=0.03),
        vectorbt_skip=NO_VBT_TRAIL,
    ),
    Scenario(
        "trailing_tp_sl",
        "5 % trailing stop, 10 % take-profit and 3 % stop-loss, OCO; gappy bars",
        _args(seed=26, n_bars=1000, n_assets=5, regimes=GAPPY),
        _entry_exit(trail_percent=0.05, take_profit=0.10, stop_loss=0.03),
        vectorbt_skip=NO_VBT_TRAIL,
    ),
    Scenario(
        "stop_and_reverse",
        "stop-and-reverse: a 3 % stop exit and a stop entry the other way at the same level, "
        "both filling on the bar the level trades; 0.1 % commission, 5 bps slippage",
        _args(seed=29, n_bars=1000, n_assets=5),
        _stop_reverse,
        Costs(commission_rate=0.001, slippage_bps=5.0),
        vectorbt_skip=NO_VBT_LIMITS,
    ),
    # --- vectorbt's default convention: orders fill at the close of the decision bar
    Scenario(
        "close_long_short",
        "preset('vectorbt'): long/short signal targets filled at the decision bar's close, "
        "0.1 % commission and 5 bps slippage",
        _args(seed=31, n_bars=750, n_assets=5),
        _targets(),
        Costs(commission_rate=0.001, slippage_bps=5.0),
        fractional=True,
        preset="vectorbt",
        backtrader_skip=NO_BT_CLOSE,
    ),
    Scenario(
        "close_rebalance_20",
        "preset('vectorbt'): 20 assets rebalanced every 5 bars to weights ∝ exp(pred) summing "
        "to 90 %, filled at the decision bar's close; fractional shares; 0.1 % commission",
        _args(seed=32, n_bars=500, n_assets=20),
        _rebalance(every=5, gross=0.9),
        Costs(commission_rate=0.001),
        fractional=True,
        preset="vectorbt",
        backtrader_skip=NO_BT_CLOSE,
    ),
    Scenario(
        "close_stop_take",
        "preset('vectorbt'): long/short entries filled at the decision bar's close; stop-loss "
        "5 % and take-profit 10 % from the entry price (OCO) from the next bar; no entry on "
        "an exit's bar (vectorbt drops that signal); gappy bars; 0.1 % commission",
        _args(seed=33, n_bars=1000, n_assets=5, regimes=GAPPY),
        _entry_exit(stop_loss=0.05, take_profit=0.10, skip_exit_bar=True),
        Costs(commission_rate=0.001),
        fractional=True,
        preset="vectorbt",
        backtrader_skip=NO_BT_CLOSE,
    ),
]

SCENARIOS: dict[str, Scenario] = {s.name: s for s in _ALL}


# =========================================================================== mlbacktest side
class _MlbtApi(Api):
    def __init__(self, strategy: Strategy) -> None:
        self._s = strategy

    def position(self, a: int) -> float:
        return self._s.get_position(a)

    def equity(self) -> float:
        return self._s.get_equity()

    def market(self, a: int, q: float) -> int:
        return self._s.order(a, q).order_id

    def limit(self, a: int, q: float, price: float) -> int:
        return self._s.order(a, q, limit_price=price).order_id

    def stop(self, a: int, q: float, price: float) -> int:
        return self._s.order(a, q, stop_price=price).order_id

    def cancel(self, h: int) -> bool:
        return self._s.cancel(h)

    def target_quantity(self, a: int, q: float) -> int | None:
        o = self._s.order_target_quantity(a, q)
        return None if o is None else o.order_id

    def target_percent(self, a: int, pct: float) -> int | None:
        o = self._s.order_target_percent(a, pct)
        return None if o is None else o.order_id

    def exits(
        self,
        a: int,
        q: float,
        *,
        stop: float | None = None,
        limit: float | None = None,
        trail_amount: float | None = None,
        trail_percent: float | None = None,
    ) -> list[int]:
        s = self._s
        orders = []
        if stop is not None:
            orders.append(s.order(a, q, stop_price=stop))
        if trail_amount is not None or trail_percent is not None:
            orders.append(s.order(a, q, trail_amount=trail_amount, trail_percent=trail_percent))
        if limit is not None:
            orders.append(s.order(a, q, limit_price=limit))
        if len(orders) > 1:
            s.oco(*orders)
        return [o.order_id for o in orders]

    def bracket(self, a: int, q: float, *, stop_loss: float, take_profit: float) -> int:
        b = self._s.bracket(a, q, stop_loss=stop_loss, take_profit=take_profit)
        return b.entry.order_id


class _MlbtStrategy(Strategy):
    def __init__(self, policy: Policy, bars: Bars) -> None:
        self.policy = policy
        self.api = _MlbtApi(self)
        self.k_of_ts = {int(t): k for k, t in enumerate(bars.ts_ns)}
        self.bars = bars

    def on_start(self) -> None:
        # The policy's asset indices are mlbacktest's asset ids: the same order.
        if tuple(self.assets) != self.bars.assets:
            raise ValueError(f"asset order {self.assets} is not the bars' {self.bars.assets}")

    def on_fill(self, fill: Any) -> None:
        k = self.k_of_ts[fill.ts]
        f = Fill(k, fill.asset_id, fill.quantity, fill.price, fill.commission, fill.order_id)
        self.policy.on_fill(self.api, f)

    def on_slice(self, view: Any, context: Any) -> None:
        self.policy.on_bar(self.api, self.k_of_ts[view.ts])


def mlbacktest_config(sc: Scenario) -> BacktestConfig:
    """The scenario's preset with its costs and sizing.

    ``preset("vectorbt")`` fills at the decision bar's close and emits a
    :class:`~mlbacktest.LookAheadWarning` here, every time it is built.
    """
    c = sc.costs
    slippage: Any = c.slippage_bps
    if c.slippage_fixed:
        slippage = FixedAmountSlippage(c.slippage_fixed, bps=c.slippage_bps)
    return BacktestConfig.preset(
        sc.preset,
        initial_cash=sc.initial_cash,
        commission=CommissionModel(
            rate=c.commission_rate, per_share=c.per_share, minimum=c.commission_minimum
        ),
        slippage_bps=slippage,
        fractional=sc.fractional,
        allow_short=True,
    )


_RUNS: dict[str, EngineRun] = {}


def run_mlbacktest(name: str) -> EngineRun:
    """Run scenario ``name`` on mlbacktest with its preset.

    The run is cached (both parity modules compare against it); the config is
    built on every call, so a look-ahead-prone preset warns on every call.
    """
    sc = SCENARIOS[name]
    config = mlbacktest_config(sc)
    if name not in _RUNS:
        _RUNS[name] = run_mlbacktest_with(sc, config)
    return _RUNS[name]


def run_mlbacktest_with(
    sc: Scenario, config: BacktestConfig, bars: Bars | None = None
) -> EngineRun:
    """Run scenario ``sc`` on mlbacktest with ``config`` (not cached), on ``bars`` if given."""
    bars = sc.bars if bars is None else bars
    strategy = _MlbtStrategy(sc.make_policy(bars), bars)
    result = mlbacktest.run_backtest(bars.frame, strategy, config, signal_columns=["pred"])
    f = result.fills
    ts = f["timestamp"].cast(pl.Int64).to_numpy()
    ks = np.searchsorted(bars.ts_ns, ts)
    aidx = {name: i for i, name in enumerate(bars.assets)}
    fills = [
        Fill(int(k), aidx[a], float(q), float(p), float(c), int(o))
        for k, a, q, p, c, o in zip(
            ks,
            f["asset"],
            f["quantity"],
            f["price"],
            f["commission"],
            f["order_id"],
            strict=True,
        )
    ]
    equity = result.equity["equity"].to_numpy()
    rejected = int((result.orders["status"] == "rejected").sum())
    reasons = result.orders.filter(pl.col("status") == "rejected")["reason"].to_list()[:3]
    types = dict(zip(result.orders["order_id"], result.orders["type"], strict=True))
    return EngineRun(
        "mlbacktest",
        fills,
        equity,
        float(equity[-1]),
        rejected,
        notes={"rejections": reasons, "order_types": types},
    )


def fill_kinds(name: str) -> Counter[str]:
    """What a scenario's mlbacktest fills exercised, to check the scenario tests what it claims.

    Keys: ``"<order type>@open"`` (filled at the bar's open, slipped),
    ``"<order type>@close"`` (at the bar's close, slipped: ``fill_at="close"``)
    or ``"<order type>@level"`` (at the limit / stop price inside the bar);
    ``"open"``, ``"add"``, ``"reduce"``, ``"close"``, ``"reverse"`` (what the
    fill did to the position); ``"commission@minimum"`` (charged the minimum).
    """
    sc, run = SCENARIOS[name], run_mlbacktest(name)
    bars, slip, fixed = sc.bars, sc.costs.slippage_bps / 1e4, sc.costs.slippage_fixed
    kinds: Counter[str] = Counter()
    pos: dict[int, float] = {}

    def at(raw: float, price: float) -> bool:
        return price in (raw, raw * (1 + slip) + fixed, raw * (1 - slip) - fixed)

    for f in run.fills:
        if at(bars.open[f.k, f.asset], f.price):
            where = "open"
        elif at(bars.close[f.k, f.asset], f.price):
            where = "close"
        else:
            where = "level"
        kinds[f"{run.notes['order_types'][f.handle]}@{where}"] += 1
        if sc.costs.commission_minimum and f.commission == sc.costs.commission_minimum:
            kinds["commission@minimum"] += 1
        before = pos.get(f.asset, 0.0)
        after = pos[f.asset] = before + f.quantity
        if before == 0:
            kinds["open"] += 1
        elif after == 0:
            kinds["close"] += 1
        elif (after > 0) != (before > 0):
            kinds["reverse"] += 1
        else:
            kinds["add" if abs(after) > abs(before) else "reduce"] += 1
    return kinds


# =========================================================================== comparison
def count_round_trips(fills: Sequence[Fill]) -> int:
    """Positions closed: how often an asset's position returns to zero or flips sign."""
    pos: dict[int, float] = {}
    n = 0
    for f in sorted(fills, key=_fill_key):
        before = pos.get(f.asset, 0.0)
        after = before + f.quantity
        if abs(after) < 1e-9 * max(abs(before), 1.0):
            after = 0.0
        if before != 0 and (after == 0 or (after > 0) != (before > 0)):
            n += 1
        pos[f.asset] = after
    return n


def _fill_key(f: Fill) -> tuple[int, int, bool, float]:
    return (f.k, f.asset, f.quantity > 0, f.price)


def _close(a: float, b: float) -> bool:
    return math.isclose(a, b, rel_tol=REL_TOL, abs_tol=0.0)


def _fmt(f: Fill | None, assets: Sequence[str]) -> str:
    if f is None:
        return "-"
    return (
        f"bar {f.k} {assets[f.asset]} q={f.quantity:+.10g} @ {f.price:.12g} "
        f"comm={f.commission:.10g}"
    )


def assert_parity(ref: EngineRun, other: EngineRun, bars: Bars) -> None:
    """Fail with a readable diff unless ``other`` matches ``ref`` to ``REL_TOL``."""
    problems: list[str] = []
    a = sorted(ref.fills, key=_fill_key)
    b = sorted(other.fills, key=_fill_key)
    if ref.rejected or other.rejected:
        problems.append(
            f"rejected orders: {ref.engine} {ref.rejected} {ref.notes.get('rejections', '')}, "
            f"{other.engine} {other.rejected} {other.notes.get('rejections', '')}"
        )
    if len(a) != len(b):
        problems.append(f"fill count: {ref.engine} {len(a)}, {other.engine} {len(b)}")
    rt_a, rt_b = count_round_trips(a), count_round_trips(b)
    if rt_a != rt_b:
        problems.append(f"round trips: {ref.engine} {rt_a}, {other.engine} {rt_b}")
    if other.native_round_trips is not None and other.native_round_trips != rt_b:
        problems.append(
            f"{other.engine} reports {other.native_round_trips} closed trades, "
            f"its fills show {rt_b}"
        )
    for i, (x, y) in enumerate(zip(a, b, strict=False)):
        same = (
            x.k == y.k
            and x.asset == y.asset
            and _close(x.quantity, y.quantity)
            and _close(x.price, y.price)
            and (_close(x.commission, y.commission) or abs(x.commission - y.commission) < 1e-12)
        )
        if not same:
            lo, hi = max(0, i - 2), min(i + 3, max(len(a), len(b)))
            lines = []
            for j in range(lo, hi):
                mark = ">" if j == i else " "
                for run, fills in ((ref, a), (other, b)):
                    fill = fills[j] if j < len(fills) else None
                    lines.append(f"  {mark} {run.engine}: {_fmt(fill, bars.assets)}")
            ctx = "\n".join(lines)
            problems.append(f"first differing fill (#{i}):\n{ctx}")
            break
    else:
        if len(a) != len(b):
            i = min(len(a), len(b))
            run, extra = (ref, a[i]) if len(a) > len(b) else (other, b[i])
            problems.append(f"first extra fill (#{i}): {run.engine}: {_fmt(extra, bars.assets)}")
    if ref.equity is not None and other.equity is not None:
        if len(ref.equity) != len(other.equity):
            problems.append(f"equity rows: {len(ref.equity)} vs {len(other.equity)}")
        else:
            bad = np.flatnonzero(~np.isclose(ref.equity, other.equity, rtol=REL_TOL, atol=0.0))
            if bad.size:
                k = int(bad[0])
                problems.append(
                    f"equity differs from bar {k} on ({bad.size} bars): "
                    f"{ref.engine} {ref.equity[k]!r}, {other.engine} {other.equity[k]!r}"
                )
    if not _close(ref.final_equity, other.final_equity):
        problems.append(
            f"final equity: {ref.engine} {ref.final_equity!r}, {other.engine} "
            f"{other.final_equity!r} (rel diff "
            f"{abs(ref.final_equity - other.final_equity) / abs(ref.final_equity):.3g})"
        )
    if problems:
        raise AssertionError(f"{other.engine} differs from {ref.engine}:\n" + "\n".join(problems))
