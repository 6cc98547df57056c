"""Shared, seeded inputs and strategies for the mlbacktest benchmarks.

Like numpy's ``benchmarks/benchmarks/common.py``: everything a benchmark needs
that is expensive to build (synthetic panels, feeds) is made here once per
process and cached, so ``setup`` stays cheap after the first call and timings
never include data generation.

**Append-only.** Results stored by asv are compared across commits; changing
what an existing size or strategy means silently invalidates that history.
Add new sizes, seeds or strategies; do not edit the existing ones.
"""

from __future__ import annotations

import functools
import gc
import time
from collections.abc import Callable

import numpy as np

from mlbacktest import BacktestConfig, BacktestEngine, PolarsDataFeed, Strategy
from mlbacktest.data.synthetic import synthetic_bars

__all__ = [
    "SIZES",
    "SIZE_LABELS",
    "SEED",
    "THRESHOLD",
    "INITIAL_CASH",
    "parse_size",
    "frame",
    "feed",
    "split_feeds",
    "config",
    "run",
    "STRATEGIES",
    "EmptyMarketData",
    "MarketDataSignal",
    "SliceSignal",
    "ORDERS_SIZE",
    "RESTING_ORDERS",
    "FLIP_ASSETS",
    "BRACKET_BAND",
    "resting_limit_prices",
    "RestingLimits",
    "FlipMarket",
    "BracketOnSignal",
    "ORDER_FLOWS",
    "order_flow",
    "interleaved_best",
    "resting_order_cost",
    "submitted_order_cost",
]

#: Panel sizes, (n_assets, n_bars): ~5 years of daily bars for 100 assets and
#: ~10 years for 500 assets.
SIZES: tuple[tuple[int, int], ...] = ((100, 1_260), (500, 2_520))
#: asv parameter labels of SIZES, in the same order.
SIZE_LABELS: tuple[str, ...] = tuple(f"{a}x{b}" for a, b in SIZES)
#: Seed of every synthetic panel.
SEED = 42
#: |pred| above which the signal strategies act (pred is roughly N(0, 1)).
THRESHOLD = 1.0
#: Starting cash of every benchmark run.
INITIAL_CASH = 1_000_000.0


def parse_size(label: str) -> tuple[int, int]:
    """``"500x2520"`` -> ``(500, 2520)``."""
    a, b = label.split("x")
    return int(a), int(b)


def frame(n_assets: int, n_bars: int, seed: int = SEED):
    """The seeded synthetic polars frame (built once per size and seed)."""
    return _frame(int(n_assets), int(n_bars), int(seed))


def feed(n_assets: int, n_bars: int, seed: int = SEED) -> PolarsDataFeed:
    """A validated feed over :func:`frame` (built once per size and seed; feeds are read-only)."""
    return _feed(int(n_assets), int(n_bars), int(seed))


# The caches are keyed on normalised positional arguments, so ``feed(500, 2520)``
# and ``feed(500, 2520, 42)`` share one entry (and one copy of the data).
@functools.cache  # lru_cache(maxsize=None): one entry per (size, seed)
def _frame(n_assets: int, n_bars: int, seed: int):
    return synthetic_bars(n_assets, n_bars, seed=seed)


@functools.cache
def _feed(n_assets: int, n_bars: int, seed: int) -> PolarsDataFeed:
    return PolarsDataFeed(_frame(n_assets, n_bars, seed), signal_columns=["pred"])


def config() -> BacktestConfig:
    """The run configuration shared by every benchmark (defaults + fixed cash).

    ``allow_short=True`` keeps the workload of the long-short benchmarks what
    it has always been (a cash account no longer shorts by default), so the
    asv history stays comparable.
    """
    return BacktestConfig(initial_cash=INITIAL_CASH, allow_short=True)


def run(data_feed, strategy: Strategy):
    """Build an engine over ``data_feed`` (a feed or a list of feeds), run ``strategy``.

    Returns the :class:`~mlbacktest.BacktestResult`.
    """
    return BacktestEngine(data_feed, strategy, config()).run()


# --------------------------------------------------------------------------- #
# Strategies
# --------------------------------------------------------------------------- #
class EmptyMarketData(Strategy):
    """``on_market_data`` that does nothing: the engine's per-asset-bar floor."""

    def on_market_data(self, event, context):
        pass


class MarketDataSignal(Strategy):
    """Signal-threshold strategy written per bar, with the helper API.

    Enters long at ``1/N`` of equity when ``pred > threshold`` and flat;
    closes when ``pred < -threshold`` and long. Same rule and same sizing as
    :class:`SliceSignal`, so the two produce the same fills.
    """

    def __init__(self, threshold: float = THRESHOLD) -> None:
        self.threshold = threshold

    def on_start(self):
        self.weight = 1.0 / len(self.assets)

    def on_market_data(self, event, context):
        pred = event.signals[0]
        aid = event.asset_id
        if pred > self.threshold:
            if self.get_position(aid) == 0.0:
                self.order_target_percent(aid, self.weight)
        elif pred < -self.threshold:
            if self.get_position(aid) > 0.0:
                self.close_position(aid)


class SliceSignal(Strategy):
    """The signal-threshold strategy of :class:`MarketDataSignal`, vectorised per timestamp.

    One numpy pass over the slice and one ``order_many`` call: entry
    quantities are ``(equity / N) / close``, exits ``-position``.
    """

    def __init__(self, threshold: float = THRESHOLD) -> None:
        self.threshold = threshold

    def on_start(self):
        self.n = len(self.assets)

    def on_slice(self, view, context):
        pred = view.signals[:, 0]
        pos = view.positions
        enter = (pred > self.threshold) & (pos == 0.0)
        leave = (pred < -self.threshold) & (pos > 0.0)
        if not (enter.any() or leave.any()):
            return
        qty = np.zeros(pred.shape[0])
        if enter.any():
            qty[enter] = (self.get_equity() / self.n) / view.close[enter]
        qty[leave] = -pos[leave]
        mask = enter | leave
        self.order_many(view.asset_ids[mask], qty[mask])


#: Strategy classes by the name the benchmarks and run.py use.
STRATEGIES: dict[str, type[Strategy]] = {
    "on_slice": SliceSignal,
    "on_market_data_empty": EmptyMarketData,
    "on_market_data_signal": MarketDataSignal,
}


# --------------------------------------------------------------------------- #
# Multi-feed inputs (appended; see the module docstring)
# --------------------------------------------------------------------------- #
def split_feeds(n_assets: int, n_bars: int, n_feeds: int, seed: int = SEED) -> tuple:
    """The :func:`frame` panel split by asset into ``n_feeds`` feeds (built once per arguments).

    A run over them sees the same bars as a run over :func:`feed`, but the
    clock merges ``n_feeds`` streams and each slice spans ``n_feeds`` row ranges.
    """
    return _split_feeds(int(n_assets), int(n_bars), int(n_feeds), int(seed))


@functools.cache
def _split_feeds(n_assets: int, n_bars: int, n_feeds: int, seed: int) -> tuple:
    import polars as pl

    df = _frame(n_assets, n_bars, seed)
    group = pl.col("asset").str.slice(1).cast(pl.Int64) % n_feeds
    return tuple(
        PolarsDataFeed(df.filter(group == k), signal_columns=["pred"]) for k in range(n_feeds)
    )


# --------------------------------------------------------------------------- #
# Order matching: resting orders and order throughput (appended; see the
# module docstring). Used by bench_orders.py and run_orders.py.
# --------------------------------------------------------------------------- #
#: Panel of the order benchmarks, (n_assets, n_bars): the large size.
ORDERS_SIZE: tuple[int, int] = (500, 2_520)
#: Numbers of resting (never triggering) orders of the resting-order benchmarks.
RESTING_ORDERS: tuple[int, ...] = (1_000, 10_000, 100_000)
#: Assets whose position FlipMarket flips at every timestamp.
FLIP_ASSETS = 100
#: Stop-loss / take-profit distance of BracketOnSignal, as a fraction of the close.
BRACKET_BAND = 0.02


def resting_limit_prices(n_assets: int, n_bars: int, seed: int = SEED) -> dict[str, float]:
    """Asset name -> 1 % of the asset's lowest low over the whole panel (built once per arguments).

    A buy limit at this price can never trigger on the panel: it is a pure
    resting order that the matching loop has to look at on every bar.
    """
    return _resting_limit_prices(int(n_assets), int(n_bars), int(seed))


@functools.cache
def _resting_limit_prices(n_assets: int, n_bars: int, seed: int) -> dict[str, float]:
    panel = _feed(n_assets, n_bars, seed).panel
    low = np.full(panel.n_assets, np.inf)
    np.minimum.at(low, panel.asset, panel.low)
    return {name: 0.01 * float(low[k]) for k, name in enumerate(panel.asset_names)}


class RestingLimits(Strategy):
    """``n_orders`` buy limits that never trigger, placed in ``on_start``; an empty ``on_slice``.

    Orders go round-robin over the assets (order ``j`` on asset ``j % n_assets``),
    one share each, at the prices of :func:`resting_limit_prices`. They rest
    for the whole run: every bar the matching loop considers each of them and
    fills none. ``n_orders=0`` is the baseline (the same run without orders).
    ``submit_seconds`` is the wall time ``on_start`` spent placing them.
    """

    def __init__(self, n_orders: int, prices: dict[str, float]) -> None:
        self.n_orders = int(n_orders)
        self.prices = prices
        self.submit_seconds = 0.0

    def on_start(self):
        levels = [self.prices[name] for name in self.assets]  # by engine asset id
        n_assets = len(levels)
        order = self.order
        t0 = time.perf_counter()
        for j in range(self.n_orders):
            a = j % n_assets
            order(a, 1.0, limit_price=levels[a])
        self.submit_seconds = time.perf_counter() - t0

    def on_slice(self, view, context):
        pass


class FlipMarket(Strategy):
    """At every timestamp, flips the position of ``k`` assets with market orders that all fill.

    The assets come in rotating blocks of ``k`` (by row of the slice); each
    asset alternates buying and selling one share (position 0 -> 1 -> 0 ...),
    so every order fills at the asset's next open (those of the last
    timestamp excepted) and cash never runs out.

    ``api``: ``"order_many"`` (one call per timestamp) or ``"order"`` (one
    ``Strategy.order`` call per order). ``place=False`` is the baseline twin:
    the same decisions from the strategy's own state, with the order call
    replaced by a no-op method of the same signature, so the difference of
    the two runs is what placing the orders costs (submit -> match -> fill ->
    ledger -> result). ``submit_seconds`` sums the wall time of the
    submission blocks (the ``api`` calls and their loop).
    """

    def __init__(self, k: int = FLIP_ASSETS, api: str = "order_many", place: bool = True) -> None:
        if api not in ("order_many", "order"):
            raise ValueError(f"api must be 'order_many' or 'order', got {api!r}")
        self.k = int(k)
        self.api = api
        self.place = place
        self.submit_seconds = 0.0

    def _skip_many(self, assets, quantities):
        return None

    def _skip(self, asset, quantity):
        return None

    def on_start(self):
        n = len(self.assets)
        self.n_blocks = max(n // self.k, 1)
        self.step = 0
        self.sign = np.ones(n)
        if self.api == "order_many":
            self.submit = self.order_many if self.place else self._skip_many
        else:
            self.submit = self.order if self.place else self._skip

    def on_slice(self, view, context):
        b = self.step % self.n_blocks
        self.step += 1
        ids = view.asset_ids[b * self.k : (b + 1) * self.k]
        sign = self.sign
        submit = self.submit
        if self.api == "order_many":
            qty = sign[ids]
            t0 = time.perf_counter()
            submit(ids, qty)
            self.submit_seconds += time.perf_counter() - t0
            sign[ids] = -qty
        else:
            ids = ids.tolist()
            t0 = time.perf_counter()
            for a in ids:
                s = sign[a]
                submit(a, s)
                sign[a] = -s
            self.submit_seconds += time.perf_counter() - t0


class BracketOnSignal(Strategy):
    """A bracket on every entry signal: ``pred`` crossing above ``threshold``.

    Each entry is ``bracket(asset, 1, stop_loss=close * (1 - band),
    take_profit=close * (1 + band))``: a market entry (next open) and two
    OCO children that work once it fills; three orders per entry. The
    signal is read from the data only (not from positions), so
    ``place=False``, the baseline twin with ``bracket`` replaced by a no-op
    method of the same signature, makes the same decisions and the same
    Python calls. ``submit_seconds`` sums the wall time of the submission
    loops.
    """

    def __init__(
        self, threshold: float = THRESHOLD, band: float = BRACKET_BAND, place: bool = True
    ) -> None:
        self.threshold = threshold
        self.band = band
        self.place = place
        self.submit_seconds = 0.0

    def _skip_bracket(self, asset, quantity, *, stop_loss=None, take_profit=None):
        return None

    def on_start(self):
        self.prev = np.full(len(self.assets), np.inf)  # no crossing on an asset's first bar
        self.submit = self.bracket if self.place else self._skip_bracket

    def on_slice(self, view, context):
        pred = view.signals[:, 0]
        ids = view.asset_ids
        crossed = (pred > self.threshold) & (self.prev[ids] <= self.threshold)
        self.prev[ids] = pred
        enter = np.flatnonzero(crossed)
        if enter.size == 0:
            return
        lo, hi = 1.0 - self.band, 1.0 + self.band
        submit = self.submit
        t0 = time.perf_counter()
        for a, c in zip(ids[enter].tolist(), view.close[enter].tolist(), strict=True):
            submit(a, 1.0, stop_loss=c * lo, take_profit=c * hi)
        self.submit_seconds += time.perf_counter() - t0


#: Order flows of the throughput benchmarks: name -> factory(place).
ORDER_FLOWS: dict[str, Callable[[bool], Strategy]] = {
    "market_order_many": lambda place=True: FlipMarket(FLIP_ASSETS, "order_many", place),
    "market_order": lambda place=True: FlipMarket(FLIP_ASSETS, "order", place),
    "bracket": lambda place=True: BracketOnSignal(THRESHOLD, BRACKET_BAND, place),
}


def order_flow(name: str, place: bool = True) -> Strategy:
    """A fresh strategy of the order flow ``name`` (see ORDER_FLOWS)."""
    return ORDER_FLOWS[name](place)


def interleaved_best(data_feed, factories: dict, repeat: int = 3) -> dict:
    """Best wall time of ``run(data_feed, factory())`` per case, over interleaved rounds.

    Rounds run every case once, in order, so slow load drift on a shared
    machine hits every case alike; each case keeps its minimum. Returns
    ``{case: {"seconds", "submit_seconds", "orders", "fills"}}`` (the
    strategy's ``submit_seconds``, 0 when it has none, and the counts of the
    best run; no run object is kept alive between runs).
    """
    best = {key: {"seconds": float("inf")} for key in factories}
    for _ in range(repeat):
        for key, factory in factories.items():
            strategy = factory()
            gc.collect()
            t0 = time.perf_counter()
            result = run(data_feed, strategy)
            dt = time.perf_counter() - t0
            if dt < best[key]["seconds"]:
                best[key] = {
                    "seconds": dt,
                    "submit_seconds": float(getattr(strategy, "submit_seconds", 0.0)),
                    "orders": len(result.orders),
                    "fills": len(result.fills),
                }
            del result, strategy
    return best


def resting_order_cost(data_feed, prices, n_orders, repeat: int = 3) -> dict:
    """ns per resting order per bar, for each count in ``n_orders``, against ``n_orders=0``.

    ``ns = (T(N) - T(0)) / (N * bars)`` with T the best time of a whole run
    of :class:`RestingLimits` (engine + run + result; ``bars`` is the number
    of timestamps). ``ns_net`` also takes out the time ``on_start`` spent
    submitting the N orders (measured inside the run), leaving matching,
    bookkeeping and the result's order table. Returns ``{N: {...}}`` with
    ``seconds``, ``submit_seconds``, ``ns``, ``ns_net``, ``fills``, and
    ``{0: {...}}`` for the baseline.
    """
    n_bars = len(np.unique(data_feed.panel.ts))
    cases = {0: (lambda: RestingLimits(0, prices))}
    for n in n_orders:
        cases[int(n)] = lambda n=int(n): RestingLimits(n, prices)
    best = interleaved_best(data_feed, cases, repeat)
    t0 = best[0]["seconds"]
    out = {0: {**best[0], "bars": n_bars}}
    for n in n_orders:
        b = best[int(n)]
        sub = b["submit_seconds"]
        out[int(n)] = {
            **b,
            "bars": n_bars,
            "ns": (b["seconds"] - t0) / (n * n_bars) * 1e9,
            "ns_net": (b["seconds"] - sub - t0) / (n * n_bars) * 1e9,
        }
    return out


def submitted_order_cost(data_feed, flows, repeat: int = 3) -> dict:
    """µs per submitted order for each order flow in ``flows``, against its no-op twin.

    ``us = (T(place) - T(no-op)) / orders``: T is the best time of a whole
    run, ``orders`` the number of orders the run placed (every leg of a
    bracket counts). ``us_submit`` is the part spent inside the submission
    blocks (the Strategy API call down to the broker's order store),
    ``us_match`` the rest (matching, fills, ledger, on_order/fill bookkeeping,
    the result's order and fill tables). Returns ``{flow: {...}}``.
    """
    cases = {}
    for name in flows:
        cases[(name, True)] = lambda name=name: order_flow(name, True)
        cases[(name, False)] = lambda name=name: order_flow(name, False)
    best = interleaved_best(data_feed, cases, repeat)
    out = {}
    for name in flows:
        on, off = best[(name, True)], best[(name, False)]
        n = on["orders"]
        d_total = on["seconds"] - off["seconds"]
        d_submit = on["submit_seconds"] - off["submit_seconds"]
        out[name] = {
            "seconds": on["seconds"],
            "baseline_seconds": off["seconds"],
            "orders": n,
            "fills": on["fills"],
            "us": d_total / n * 1e6,
            "us_submit": d_submit / n * 1e6,
            "us_match": (d_total - d_submit) / n * 1e6,
        }
    return out


# --------------------------------------------------------------------------- #
# ML-style panels: top-k / bottom-k long-short on `pred` (appended; see the
# module docstring). Used by bench_ml.py and run_ml.py.
# --------------------------------------------------------------------------- #
#: Gross exposure of TopKLongShort's book (half long, half short).
ML_GROSS = 0.9
#: Minute panel of the asv ML benchmarks, (n_assets, n_minute_bars).
ML_MINUTE_SIZE: tuple[int, int] = (100, 20_000)
#: Daily panel of the asv ML benchmarks, (n_assets, n_daily_bars).
ML_DAILY_SIZE: tuple[int, int] = (500, 2_520)


def ml_feed(n_assets: int, n_bars: int, every: str = "1d", seed: int = SEED) -> PolarsDataFeed:
    """A feed over ``synthetic_bars(n_assets, n_bars, seed=seed, every=every)`` (cached)."""
    return _ml_feed(int(n_assets), int(n_bars), str(every), int(seed))


@functools.cache
def _ml_feed(n_assets: int, n_bars: int, every: str, seed: int) -> PolarsDataFeed:
    df = synthetic_bars(n_assets, n_bars, seed=seed, every=every)
    return PolarsDataFeed(df, signal_columns=["pred"])


class TopKLongShort(Strategy):
    """Long the ``k`` highest ``pred``, short the ``k`` lowest, equal weight, on a schedule.

    ``on_slice`` keeps the latest ``pred`` of every asset (one numpy scatter
    per timestamp); a timer from ``Strategy.schedule`` (``every="30m"``, or
    ``rule="month_end"``) calls ``rebalance`` with ``+gross/2/k`` on the top
    ``k``, ``-gross/2/k`` on the bottom ``k`` and 0 elsewhere (so names that
    leave the book are closed). The timer runs after the timestamp's
    ``on_slice``, so it ranks that timestamp's predictions; orders fill at
    the next open. ``k=None``: a tenth of the assets. ``rebalances`` counts
    the calls.
    """

    def __init__(self, every=None, rule=None, k=None, gross: float = ML_GROSS,
                 tolerance: float = 0.0) -> None:
        self.every = every
        self.rule = rule
        self.k = k
        self.gross = gross
        self.tolerance = tolerance
        self.rebalances = 0

    def on_start(self):
        n = len(self.assets)
        self.k_ = self.k or max(n // 10, 1)
        self.pred = np.zeros(n)
        self.w = np.zeros(n)
        self.schedule(self._rebalance, self.every, rule=self.rule)

    def on_slice(self, view, context):
        self.pred[view.asset_ids] = view.signals[:, 0]

    def _rebalance(self, context):
        k = self.k_
        order = np.argpartition(self.pred, (k, self.pred.size - k))
        w = self.w
        w[:] = 0.0
        w[order[-k:]] = self.gross / 2 / k
        w[order[:k]] = -self.gross / 2 / k
        self.rebalance(w, tolerance=self.tolerance)
        self.rebalances += 1


# --------------------------------------------------------------------------- #
# memory probes shared by the benchmark scripts (Linux /proc; None/False elsewhere)
# --------------------------------------------------------------------------- #
def proc_status(field: str) -> int | None:
    """A ``kB`` field of /proc/self/status (VmRSS, VmHWM), in bytes."""
    try:
        with open("/proc/self/status") as fh:
            for line in fh:
                if line.startswith(field + ":"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return None


def reset_peak_rss() -> bool:
    """Reset the kernel's peak-RSS counter (VmHWM) of this process (Linux >= 4.0)."""
    try:
        with open("/proc/self/clear_refs", "w") as fh:
            fh.write("5")
        return True
    except OSError:
        return False
