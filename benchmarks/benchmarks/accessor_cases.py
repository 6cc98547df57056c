"""What ``run_accessors.py`` and ``bench_accessors.py`` share: the accessor probes and targets.

A probe is a strategy that, at one timestamp of a run (the last by
default), times loops of one Strategy call (``self.history(a, "close",
30)``, ``self.buy(a, 1)``, ``view.close`` ...) written the way a user writes
them, and an empty Python method of the strategy called the same way (the
baseline). Each loop is compiled from a template so that the timed code is
exactly ``for i in range(k): <call>``. Only public API is used, so the same
probes measure any version of the library (before/after tables).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import numpy as np

from mlbacktest import BacktestConfig, BacktestEngine, PolarsDataFeed, Strategy
from mlbacktest.data.synthetic import synthetic_bars

from . import common

#: Targets of the issue, ns per call from Python.
HISTORY_TARGET_NS = 300.0
GETTER_TARGET_NS = 150.0
ORDER_TARGET_NS = 500.0
#: Slice-view arrays: "a constant few hundred ns" per array.
VIEW_TARGET_NS = 300.0
#: history_panel: ns per asset column beyond the fixed per-call cost.
PANEL_COLUMN_TARGET_NS = 300.0
#: A per-asset loop of helpers in on_slice against order_many: at most this ratio.
LOOP_RATIO_TARGET = 1.5

#: Calls per timed loop (orders: fewer, since each stays in the order book).
CALLS = 20_000
ORDER_CALLS = 2_000
#: Timed loops per case; the best is kept.
ROUNDS = 7

# name -> (call template, target ns, per-call argument setup). In a template
# `s` is the strategy, `a` an asset (name or id), `v` the slice view, `x` a
# 2-tuple of alternating values indexed by `i & 1`.
HISTORY_CASES: dict[str, tuple[str, float]] = {
    "history(name, 'close', 30)": ("s.history(a, 'close', 30)", HISTORY_TARGET_NS),
    "history(id, 'close', 30)": ("s.history(aid, 'close', 30)", HISTORY_TARGET_NS),
    "history(name, signal, 30)": ("s.history(a, 'pred', 30)", HISTORY_TARGET_NS),
    "history(id, signal, 30)": ("s.history(aid, 'pred', 30)", HISTORY_TARGET_NS),
}
GETTER_CASES: dict[str, tuple[str, float]] = {
    "get_last_price(name)": ("s.get_last_price(a)", GETTER_TARGET_NS),
    "get_position(name)": ("s.get_position(a)", GETTER_TARGET_NS),
    "get_unrealized_pnl(name)": ("s.get_unrealized_pnl(a)", GETTER_TARGET_NS),
}
ORDER_CASES: dict[str, tuple[str, float]] = {
    "buy(name, 1)": ("s.buy(a, 1)", ORDER_TARGET_NS),
    "sell(name, 1)": ("s.sell(a, 1)", ORDER_TARGET_NS),
    "order_target_quantity(name, +-10)": ("s.order_target_quantity(a, x[i & 1])",
                                          ORDER_TARGET_NS),
    "order_target_value(name, +-v)": ("s.order_target_value(a, xv[i & 1])", ORDER_TARGET_NS),
    "order_target_percent(name, +-1%)": ("s.order_target_percent(a, xp[i & 1])",
                                         ORDER_TARGET_NS),
}
VIEW_CASES: dict[str, tuple[str, float]] = {
    f"view.{f}": (f"v.{f}", VIEW_TARGET_NS)
    for f in ("close", "open", "high", "low", "volume", "signals", "asset_ids", "positions",
              "weights")
}
#: Baseline: an empty Python method of the strategy, called with one argument.
BASELINE = "s.noop(a)"


def _compile(body: str) -> Callable[..., int]:
    src = ("def loop(k, s, a, aid, v, x, xv, xp):\n"
           "    t0 = perf()\n"
           "    for i in range(k):\n"
           f"        {body}\n"
           "    return perf() - t0\n")
    env: dict[str, Any] = {"perf": time.perf_counter_ns}
    exec(compile(src, f"<loop {body}>", "exec"), env)
    return env["loop"]  # type: ignore[no-any-return]


class Probe(Strategy):
    """Times the accessor loops in ``on_slice`` at its ``at``-th call (0 is the first).

    ``results`` maps a case name to its best ns per call; ``"baseline"`` is
    the empty method. ``groups`` picks the case groups ("history", "getters",
    "orders", "views", "panel").
    """

    def __init__(self, groups: tuple[str, ...], at: int, rounds: int = ROUNDS,
                 calls: int = CALLS, order_calls: int = ORDER_CALLS,
                 order_case: str | None = None) -> None:
        self.groups = groups
        self.order_case = order_case
        self.at = at
        self.rounds = rounds
        self.calls = calls
        self.order_calls = order_calls
        self.results: dict[str, float] = {}
        self.step_no = 0

    def noop(self, a: Any) -> None:
        """The baseline: an empty method."""

    def _best(self, body: str, k: int, args: tuple) -> float:
        loop = _compile(body)
        return min(loop(k, self, *args) for _ in range(self.rounds)) / k

    def on_slice(self, view, context):
        self.step_no += 1
        if self.step_no - 1 != self.at:
            return
        aid = int(view.asset_ids[0])
        a = self.assets[aid]
        price = self.get_last_price(a)
        args = (a, aid, view, (10.0, -10.0), (10.0 * price, -10.0 * price), (0.01, -0.01))
        r = self.results
        r["baseline"] = self._best(BASELINE, self.calls, args)
        cases: dict[str, tuple[str, float]] = {}
        if "history" in self.groups:
            cases.update(HISTORY_CASES)
        if "getters" in self.groups:
            cases.update(GETTER_CASES)
        if "views" in self.groups:
            cases.update(VIEW_CASES)
        for name, (body, _) in cases.items():
            r[name] = self._best(body, self.calls, args)
        if "panel" in self.groups:
            r["history_panel('close', 30), all assets"] = self._best(
                "s.history_panel('close', 30)", max(self.calls // 200, 20), args)
            one = [a]
            r["history_panel('close', 30), 1 asset"] = self._best(
                "s.history_panel('close', 30, x)", max(self.calls // 20, 200),
                (a, aid, view, one, None, None))
        if "orders" in self.groups:
            name = self.order_case
            if name == "close_position(name)":
                # close_position needs a position (or working order) to close each time
                buy = self._best(ORDER_CASES["buy(name, 1)"][0], self.order_calls, args)
                pair = self._best("s.buy(a, 1); s.close_position(a)", self.order_calls, args)
                r[name] = pair - buy
            elif name is not None:
                r[name] = self._best(ORDER_CASES[name][0], self.order_calls, args)


def run_probe(data_feed, groups: tuple[str, ...], at: int, **kw: Any) -> dict[str, float]:
    """Run :class:`Probe` runs measuring at their ``at``-th timestamp; ns per call by case.

    Each order helper is timed in a run of its own, so that every case
    starts from an empty order book (a growing book makes later orders a
    little dearer).
    """
    results: dict[str, float] = {}
    plans: list[tuple[tuple[str, ...], str | None]] = [
        (tuple(g for g in groups if g != "orders"), None)]
    if "orders" in groups:
        plans += [(("orders",), name) for name in (*ORDER_CASES, "close_position(name)")]
    for plan_groups, case in plans:
        probe = Probe(plan_groups, at, order_case=case, **kw)
        BacktestEngine(data_feed, probe, common.config()).run()
        if not probe.results:
            raise ValueError(f"the run has fewer than {at + 1} timestamps")
        results.update({k: v for k, v in probe.results.items()
                        if k != "baseline" or case is None})
    return results


def one_asset_feed(n_bars: int, seed: int = common.SEED) -> PolarsDataFeed:
    """One asset x ``n_bars`` minute bars, with the ``pred`` signal."""
    frame = synthetic_bars(1, n_bars, seed=seed, every="1m")
    return PolarsDataFeed(frame, signal_columns=["pred"])


# --------------------------------------------------------------------------- #
# A per-asset loop of helpers against order_many (same decisions, same orders)
# --------------------------------------------------------------------------- #
class LoopHelpers(Strategy):
    """Signal threshold, a loop over the assets that trade: ``buy`` 10 / ``close_position``.

    The decisions are the numpy masks of :class:`ManyOrders`; only the
    placing differs (one helper call per order instead of one batch).
    """

    def __init__(self, threshold: float = common.THRESHOLD) -> None:
        self.threshold = threshold

    def on_slice(self, view, context):
        pred = view.signals[:, 0]
        pos = view.positions
        ids = view.asset_ids
        for aid in ids[(pred < -self.threshold) & (pos > 0.0)]:
            self.close_position(aid)
        for aid in ids[(pred > self.threshold) & (pos == 0.0)]:
            self.buy(aid, 10)


class ManyOrders(Strategy):
    """The decisions of :class:`LoopHelpers` placed with one ``order_many`` call."""

    def __init__(self, threshold: float = common.THRESHOLD) -> None:
        self.threshold = threshold

    def on_slice(self, view, context):
        pred = view.signals[:, 0]
        pos = view.positions
        ids = view.asset_ids
        leave = (pred < -self.threshold) & (pos > 0.0)
        enter = (pred > self.threshold) & (pos == 0.0)
        if leave.any() or enter.any():  # exits first, as the loop places them
            self.order_many(np.concatenate((ids[leave], ids[enter])),
                            np.concatenate((-pos[leave], np.full(int(enter.sum()), 10.0))))


def loop_vs_many(data_feed, rounds: int = 3) -> dict[str, float]:
    """Best whole-run seconds of :class:`LoopHelpers` and :class:`ManyOrders` (interleaved)."""
    best = {"loop": float("inf"), "order_many": float("inf")}
    trades = {}
    for _ in range(rounds):
        for name, cls in (("loop", LoopHelpers), ("order_many", ManyOrders)):
            t0 = time.perf_counter()
            res = BacktestEngine(data_feed, cls(), common.config()).run()
            best[name] = min(best[name], time.perf_counter() - t0)
            trades[name] = res.fills.height
    if trades["loop"] != trades["order_many"]:
        raise AssertionError(f"the two strategies filled differently: {trades}")
    return best


def config() -> BacktestConfig:
    """The run configuration (that of every benchmark)."""
    return common.config()


# --------------------------------------------------------------------------- #
# Few assets: on_slice on length-1 arrays against on_market_data on scalars
# --------------------------------------------------------------------------- #
class FewSlice(Strategy):
    """Reads ``view.close``, ``view.signals`` and ``view.positions`` and compares them."""

    def on_slice(self, view, context):
        close = view.close
        pred = view.signals[:, 0]
        pos = view.positions
        enter = (pred > common.THRESHOLD) & (pos == 0.0) & (close > 0.0)
        if enter.any():
            self.noted = True


class FewMarketData(Strategy):
    """The same reads and comparisons on one bar's scalars."""

    def on_market_data(self, event, context):
        if (event.signals[0] > common.THRESHOLD and self.get_position(event.asset_id) == 0.0
                and event.close > 0.0):
            self.noted = True


class EmptySlice(Strategy):
    """An empty ``on_slice`` (the cost of the hook call alone)."""

    def on_slice(self, view, context):
        pass


def few_asset_hooks(data_feed, rounds: int = 3) -> dict[str, float]:
    """Best whole-run ns per timestamp of :class:`FewSlice`, :class:`FewMarketData`, empty hook."""
    n = None
    best = {}
    for _ in range(rounds):
        for name, cls in (("on_slice arrays", FewSlice), ("on_market_data scalars", FewMarketData),
                          ("empty on_slice", EmptySlice)):
            t0 = time.perf_counter()
            res = BacktestEngine(data_feed, cls(), common.config()).run()
            dt = time.perf_counter() - t0
            n = res.equity.height
            best[name] = min(best.get(name, float("inf")), dt)
    return {k: v / n * 1e9 for k, v in best.items()}


# --------------------------------------------------------------------------- #
# The 10/30 moving-average strategy written with history() and numpy means
# --------------------------------------------------------------------------- #
class HistoryMeans(Strategy):
    """Long 0.8/N of equity while the 10-bar mean of closes is above the 30-bar mean.

    Written the way the guide taught stateful logic before declared
    indicators: ``history(asset, "close", 30)`` and two numpy means per
    asset-bar in ``on_market_data``.
    """

    def on_start(self):
        self.weight = 0.8 / len(self.assets)

    def on_market_data(self, event, context):
        aid = event.asset_id
        closes = self.history(aid, "close", 30)
        if closes.size < 30:
            return
        up = closes[-10:].mean() > closes.mean()
        held = self.get_position(aid) != 0.0
        if up and not held:
            self.order_target_percent(aid, self.weight)
        elif held and not up:
            self.close_position(aid)


def history_means_rate(data_feed, rounds: int = 3) -> dict[str, float]:
    """Best asset-bars/s of :class:`HistoryMeans` (0.1 % commission) and its fill count."""
    cfg = BacktestConfig(initial_cash=common.INITIAL_CASH, commission=0.001)
    best = float("inf")
    fills = 0
    for _ in range(rounds):
        t0 = time.perf_counter()
        res = BacktestEngine(data_feed, HistoryMeans(), cfg).run()
        best = min(best, time.perf_counter() - t0)
        fills = res.fills.height
    return {"asset_bars_per_s": len(data_feed) / best, "fills": float(fills)}
