"""Stateful strategies: the 10/30 moving-average strategy written every way, side by side.

The strategy of issue 11: long an asset while the mean of its last 10 closes
is above the mean of its last 30, at 0.8/N of equity, market orders filled at
the next open, 0.1 % commission. Every case below runs that rule (or, for the
order-helper cases, the signal-threshold rule of ``common.SliceSignal``) over
the same seeded panel, in interleaved rounds, best of ``--repeat``:

======================  =================================================================
case                    how the strategy is written
======================  =================================================================
floor                   ``on_market_data`` that does nothing (a Python call per asset-bar)
ma_history              ``history(asset, "close", 30)`` and two numpy means per asset-bar
ma_lists                a per-asset rolling window kept in Python lists (as ml4t users do)
ma_lists_own            the same hook with its positions kept in a Python list and no orders:
                        the strategy's own Python in a hook, with no engine call at all
ma_ind_market           declared indicators, read as ``event.indicators[...]``
ma_ind_slice            declared indicators, read as ``view.indicator(...)`` in ``on_slice``
vectorbt                ``vbt.Portfolio.from_orders`` on precomputed arrays (not a run of
                        the engine: its ``from_orders`` call alone is timed)
signal_order_many       signal threshold in ``on_slice`` with one ``order_many`` call
signal_helper_loop      the same with a per-asset loop of ``buy`` / ``close_position``
======================  =================================================================

``ma_lists`` is also compared with ``floor`` plus the list work alone (the same
per-bar Python function run over the same closes with no engine), and with
``ma_lists_own``: ``ma_lists / ma_lists_own`` is what the engine's calls
(``get_position``, the orders and their fills) add to the strategy's own Python,
and ``ma_lists_own / (floor + list_work)`` what running that Python in a hook
(attribute reads of ``event`` and ``self`` instead of local variables) costs.

Cases that need an API an older build lacks print ``n/a``. ``--before DIR``
measures a checkout of an older release (built in place) side by side: each
round runs that build in a child process, then this one, and the table gives
both and the speed-up::

    python benchmarks/run_stateful.py                       # daily and minute panels
    python benchmarks/run_stateful.py --only daily --repeat 1
    python benchmarks/run_stateful.py --before /path/to/old/checkout
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import sys
import time
from collections import deque

import _script  # noqa: F401  (import set-up: the in-place build when not installed)
import numpy as np

from mlbacktest import BacktestConfig, BacktestEngine, PolarsDataFeed, Strategy
from mlbacktest.data.synthetic import synthetic_bars

try:
    from mlbacktest import indicators as ind
except ImportError:  # an older build: the indicator cases print n/a
    ind = None

FAST, SLOW, EXPOSURE, COMMISSION = 10, 30, 0.8, 0.001
PANELS = {"daily": (500, 2_520, "1d"), "minute": (100, 7_800, "1m")}


def config() -> BacktestConfig:
    return BacktestConfig(initial_cash=1_000_000.0, commission=COMMISSION, allow_short=False)


# --------------------------------------------------------------------------- strategies
class Floor(Strategy):
    def on_market_data(self, event, context):
        pass


class MAHistory(Strategy):
    """The moving-average rule with history() and numpy means (the way the guide taught)."""

    def on_start(self):
        self.weight = EXPOSURE / len(self.assets)

    def on_market_data(self, event, context):
        aid = event.asset_id
        closes = self.history(aid, "close", SLOW)
        if closes.shape[0] < SLOW:
            return
        long = closes[-FAST:].mean() > closes.mean()
        held = self.get_position(aid) != 0.0
        if long and not held:
            self.order_target_percent(aid, self.weight)
        elif held and not long:
            self.close_position(aid)


class MALists(Strategy):
    """The same rule with a per-asset window in Python lists (no engine history)."""

    def on_start(self):
        self.weight = EXPOSURE / len(self.assets)
        self.windows = [deque(maxlen=SLOW) for _ in self.assets]

    def on_market_data(self, event, context):
        aid = event.asset_id
        w = self.windows[aid]
        w.append(event.close)
        if len(w) < SLOW:
            return
        closes = list(w)
        long = sum(closes[-FAST:]) / FAST > sum(closes) / SLOW
        held = self.get_position(aid) != 0.0
        if long and not held:
            self.order_target_percent(aid, self.weight)
        elif held and not long:
            self.close_position(aid)


class MAListsOwn(MALists):
    """MALists with no engine call: positions in a Python list, no orders (its own Python)."""

    def on_start(self):
        super().on_start()
        self.held = [False] * len(self.assets)

    def on_market_data(self, event, context):
        aid = event.asset_id
        w = self.windows[aid]
        w.append(event.close)
        if len(w) < SLOW:
            return
        closes = list(w)
        long = sum(closes[-FAST:]) / FAST > sum(closes) / SLOW
        held = self.held[aid]
        if long and not held:
            self.held[aid] = True
        elif held and not long:
            self.held[aid] = False


def list_work(asset: np.ndarray, close: np.ndarray, n_assets: int) -> None:
    """The list work of MALists alone, over the same rows, with no engine (and no orders)."""
    windows = [deque(maxlen=SLOW) for _ in range(n_assets)]
    for aid, c in zip(asset.tolist(), close.tolist(), strict=True):
        w = windows[aid]
        w.append(c)
        if len(w) < SLOW:
            continue
        closes = list(w)
        _ = sum(closes[-FAST:]) / FAST > sum(closes) / SLOW


if ind is not None:
    class MAIndicatorsMarket(Strategy):
        """Declared indicators, read per asset-bar."""

        fast = ind.SMA("close", FAST)
        slow = ind.SMA("close", SLOW)

        def on_start(self):
            self.weight = EXPOSURE / len(self.assets)

        def on_market_data(self, event, context):
            values = event.indicators
            aid = event.asset_id
            long = values["fast"] > values["slow"]  # False while either is NaN (warm-up)
            held = self.get_position(aid) != 0.0
            if long and not held:
                self.order_target_percent(aid, self.weight)
            elif held and not long:
                self.close_position(aid)

    class MAIndicatorsSlice(Strategy):
        """Declared indicators, read as aligned arrays once per timestamp."""

        fast = ind.SMA("close", FAST)
        slow = ind.SMA("close", SLOW)

        def on_start(self):
            self.weight = EXPOSURE / len(self.assets)

        def on_slice(self, view, context):
            long = view.indicator("fast") > view.indicator("slow")  # False in the warm-up
            # the assets whose decision and position disagree: enter or leave those only
            trade = np.flatnonzero(long != (view.positions != 0.0))
            if trade.size:
                ids = view.asset_ids
                for i in trade:
                    if long[i]:
                        self.order_target_percent(ids[i], self.weight)
                    else:
                        self.close_position(ids[i])
else:
    MAIndicatorsMarket = MAIndicatorsSlice = None


class SignalOrderMany(Strategy):
    """Signal threshold in on_slice: one order_many call per timestamp."""

    def on_start(self):
        self.weight = EXPOSURE / len(self.assets)

    def on_slice(self, view, context):
        pred = view.signals[:, 0]
        pos = view.positions
        enter = (pred > 1.0) & (pos == 0.0)
        leave = (pred < -1.0) & (pos > 0.0)
        if enter.any() or leave.any():
            qty = np.zeros(pred.shape[0])
            qty[enter] = np.trunc((self.weight * self.get_equity()) / view.close[enter])
            qty[leave] = -pos[leave]
            trade = enter | leave
            self.order_many(view.asset_ids[trade], qty[trade])


class SignalHelperLoop(Strategy):
    """The same rule with a per-asset loop of buy / close_position (as most people write it)."""

    def on_start(self):
        self.weight = EXPOSURE / len(self.assets)

    def on_slice(self, view, context):
        pred = view.signals[:, 0]
        pos = view.positions
        enter = np.flatnonzero((pred > 1.0) & (pos == 0.0))
        leave = np.flatnonzero((pred < -1.0) & (pos > 0.0))
        if enter.size or leave.size:
            names = view.assets
            budget = self.weight * self.get_equity()
            close = view.close
            for i in enter:
                q = budget // close[i]
                if q > 0:
                    self.buy(names[i], q)
            for i in leave:
                self.close_position(names[i])


# --------------------------------------------------------------------------- vectorbt
def vectorbt_case(frame):
    """Precomputed arrays for from_orders, and the call to time (None without vectorbt)."""
    try:
        import pandas as pd
        import vectorbt as vbt
    except ImportError:
        return None
    wide = frame.to_pandas().pivot(index="timestamp", columns="asset")
    close = wide["close"]
    open_ = wide["open"]
    fast = close.rolling(FAST).mean()
    slow = close.rolling(SLOW).mean()
    long = (fast > slow).astype(float)
    # decided at t's close, traded at t+1's open: target percent where the decision changes
    target = long.shift(1)
    change = target.ne(target.shift(1)) & target.notna()
    size = target.where(change) * (EXPOSURE / close.shape[1])
    size = size.astype(float)

    def call():
        return vbt.Portfolio.from_orders(
            close, size=size, price=open_, size_type="targetpercent", fees=COMMISSION,
            init_cash=1_000_000.0, cash_sharing=True, group_by=True, call_seq="auto",
            freq="1D")

    del pd
    call()  # the first call compiles vectorbt's numba kernels: not timed
    return call


# --------------------------------------------------------------------------- timing
def timed_run(feed, strategy_cls) -> float:
    strategy = strategy_cls()
    engine = BacktestEngine(feed, strategy, config())
    gc.collect()
    t0 = time.perf_counter()
    engine.run(progress=False)
    return time.perf_counter() - t0


def measure(panel: str, repeat: int) -> dict[str, float | None]:
    n_assets, n_bars, every = PANELS[panel]
    frame = synthetic_bars(n_assets, n_bars, seed=42, every=every)
    feed = PolarsDataFeed(frame, signal_columns=["pred"])
    cases = {
        "floor": Floor, "ma_history": MAHistory, "ma_lists": MALists,
        "ma_lists_own": MAListsOwn,
        "ma_ind_market": MAIndicatorsMarket, "ma_ind_slice": MAIndicatorsSlice,
        "signal_order_many": SignalOrderMany, "signal_helper_loop": SignalHelperLoop,
    }
    best: dict[str, float | None] = {k: (None if v is None else float("inf"))
                                     for k, v in cases.items()}
    vbt_call = vectorbt_case(frame)
    best["vectorbt"] = None if vbt_call is None else float("inf")
    panel_rows = feed.panel
    best["list_work"] = float("inf")
    for _ in range(repeat):
        for name, cls in cases.items():
            if cls is not None:
                best[name] = min(best[name], timed_run(feed, cls))  # type: ignore[type-var]
        if vbt_call is not None:
            gc.collect()
            t0 = time.perf_counter()
            vbt_call()
            best["vectorbt"] = min(best["vectorbt"], time.perf_counter() - t0)  # type: ignore
        t0 = time.perf_counter()
        list_work(panel_rows.asset, panel_rows.close, n_assets)
        best["list_work"] = min(best["list_work"], time.perf_counter() - t0)
    best["asset_bars"] = float(n_assets * n_bars)
    return best


def _merge(best: dict[str, float | None], more: dict[str, float | None]) -> None:
    for k, v in more.items():
        if k == "asset_bars" or k not in best:
            best[k] = v
        elif v is not None:
            old = best[k]
            best[k] = v if old is None else min(old, v)


def report(panel: str, best: dict[str, float | None],
           before: dict[str, float | None] | None = None) -> None:
    n = best["asset_bars"]
    assert n is not None
    print(f"\n{panel}: {PANELS[panel][0]} assets x {PANELS[panel][1]:,} bars "
          f"({n / 1e6:.2f} M asset-bars)")
    head = f"{'case':<22}{'seconds':>10}{'M asset-bars/s':>16}{'ns/asset-bar':>14}"
    if before is not None:
        head += f"{'before s':>11}{'before M/s':>12}{'speed-up':>10}"
    print(head)
    for name, secs in best.items():
        if name in ("asset_bars",):
            continue
        line = (f"{name:<22}{'n/a':>10}{'':>30}" if secs is None else
                f"{name:<22}{secs:>10.3f}{n / secs / 1e6:>16.2f}{secs / n * 1e9:>14.0f}")
        if before is not None:
            old = before.get(name)
            if old is None:
                line += f"{'n/a':>11}"
            else:
                line += f"{old:>11.3f}{n / old / 1e6:>12.2f}"
                if secs is not None:
                    line += f"{old / secs:>9.1f}x"
        print(line)
    lists, floor, work = best["ma_lists"], best["floor"], best["list_work"]
    if lists and floor and work:
        print(f"ma_lists / (floor + list_work) = {lists / (floor + work):.2f}  (target <= 1.2)")
    own = best.get("ma_lists_own")
    if lists and own and floor and work:
        print(f"ma_lists / ma_lists_own = {lists / own:.2f}  (what the engine's calls add)")
        print(f"ma_lists_own / (floor + list_work) = {own / (floor + work):.2f}  "
              "(the same Python in a hook instead of a local loop)")
    loop, many = best["signal_helper_loop"], best["signal_order_many"]
    if loop and many:
        print(f"signal_helper_loop / signal_order_many = {loop / many:.2f}  (target <= 1.5)")
    vb, sl = best.get("vectorbt"), best.get("ma_ind_slice")
    if vb and sl:
        print(f"vectorbt / ma_ind_slice = {vb / sl:.2f}  (> 1: the engine is faster)")


def measure_before(checkout: str, panel: str) -> dict[str, float | None] | None:
    """One round of ``panel`` in a child process importing mlbacktest from ``checkout``."""
    env = dict(os.environ, PYTHONPATH=os.path.abspath(checkout))
    cmd = [sys.executable, os.path.abspath(__file__), "--json", "--only", panel, "--repeat", "1"]
    import subprocess

    proc = subprocess.run(cmd, capture_output=True, text=True, env=env)
    if proc.returncode != 0:
        print(f"the run of {checkout} failed:\n{proc.stderr}", file=sys.stderr)
        return None
    out: dict[str, float | None] = json.loads(proc.stdout.strip().splitlines()[-1])
    return out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--only", choices=sorted(PANELS), help="one panel only")
    p.add_argument("--repeat", type=int, default=3, help="interleaved rounds (best is kept)")
    p.add_argument("--before", metavar="DIR",
                   help="a checkout of an older build (in place) to measure side by side")
    p.add_argument("--json", action="store_true", help=argparse.SUPPRESS)
    args = p.parse_args()
    panels = [args.only] if args.only else list(PANELS)
    if args.json:
        print(json.dumps({panel: measure(panel, args.repeat) for panel in panels}[panels[0]]))
        return
    print(_script.environment())
    for panel in panels:
        best: dict[str, float | None] = {}
        before: dict[str, float | None] | None = {} if args.before else None
        for _ in range(args.repeat):
            if args.before:
                old = measure_before(args.before, panel)
                if old is not None and before is not None:
                    _merge(before, old)
            _merge(best, measure(panel, 1))
        report(panel, best, before)


if __name__ == "__main__":
    main()
