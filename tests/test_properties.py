"""Property tests: invariants of any run over random bars and random order flow.

A strategy draws orders (every order type and time in force, brackets, OTO
children, OCO groups, replaces, sizing helpers, cancels) from a seeded RNG in
``on_market_data`` or ``on_slice``, under random broker knobs (intrabar path,
fill_at, volume cap, latency, same-bar re-entry, ...); the run's fills,
orders, status events and equity record are then checked against what the
bars and the fills imply, recomputed here from scratch.
"""

from __future__ import annotations

import math
import random
import re
import warnings
from collections import defaultdict
from pathlib import Path
from typing import Any

import polars as pl
import pytest
from conftest import BASE_NS, HOUR_NS, Panel, bar_panels, examples
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mlbacktest import (
    BacktestConfig,
    BacktestEngine,
    CommissionModel,
    LookAheadWarning,
    PolarsDataFeed,
    Strategy,
)
from mlbacktest._portfolio import MAX_POSITION, QTY_RTOL
from mlbacktest.errors import OrderError, RejectedOrdersWarning

RTOL = 1e-9
PRICE_RTOL = 1e-12
DAY_NS = 86_400_000_000_000
WORKING = ("submitted", "accepted", "partially_filled")
ENDED_WITH_REASON = ("cancelled", "expired", "rejected")


class RandomTrader(Strategy):
    """Trades at random, reproducibly: every choice comes from ``random.Random(seed)``.

    Records, at each hook call, what the strategy saw (positions, cash), the
    quantity each order was placed with, and every hook call in order.
    """

    def __init__(self, seed: int, hook: str, activity: float, fractional: bool) -> None:
        self.rng = random.Random(seed)
        self.hook = hook
        self.activity = activity
        self.fractional = fractional
        self.start_ids: list[int] = []
        self.placed: dict[int, float] = {}  # order id -> quantity as placed
        self.seen: list[tuple[int, dict[str, float], float]] = []
        self.views: list[tuple] = []
        self.log: list[tuple] = []  # every hook call, in order
        self.final: dict[str, Any] = {}

    # -- order flow
    def _qty(self, q: float) -> float:
        return q if self.fractional else float(math.trunc(q))

    def _keep(self, order) -> None:
        if order is not None:
            self.placed[order.order_id] = order.quantity

    def _level(self, close: float, spread: float = 0.04) -> float:
        return close * (1.0 + self.rng.uniform(-spread, spread))

    def _trade(self, asset: str, close: float) -> None:
        rng = self.rng
        if rng.random() >= self.activity:
            return
        what = rng.random()
        if what < 0.08:
            for o in self.open_orders(asset if rng.random() < 0.5 else None):
                if rng.random() < 0.5:
                    # (cancelling a parent may have cancelled its children already)
                    was_open = o.is_open
                    assert self.cancel(o) is was_open
            return
        if what < 0.14:
            live = self.open_orders()
            if live:
                o = rng.choice(live)
                kw: dict[str, Any] = {}
                if o.order_type == "limit":
                    kw["limit_price"] = self._level(close)
                elif o.order_type == "stop":
                    kw["stop_price"] = self._level(close)
                elif o.oco_group is not None:
                    return  # a new quantity would escape the group's bound checked below
                else:
                    kw["quantity"] = o.quantity * rng.choice([0.5, 2.0])
                    if not self.fractional:
                        kw["quantity"] = float(math.trunc(kw["quantity"])) or o.quantity
                try:
                    self._keep(self.replace(o, **kw))
                except OrderError:
                    pass  # partly filled, or it has ended
            return
        if what < 0.19:
            live = [o for o in self.open_orders() if o.filled_quantity == 0]
            if len(live) >= 2:
                try:
                    self.oco(*rng.sample(live, 2))
                except OrderError:
                    pass  # already in a group
            return
        if what < 0.25:
            percent = rng.choice([-0.5, 0.0, 0.3, 0.9, 1.1])
            if self.get_equity() > 0:
                self._keep(self.order_target_percent(asset, percent))
            else:  # sizing from equity <= 0 is refused (docs/semantics.md)
                with pytest.raises(OrderError, match="fractions of equity"):
                    self.order_target_percent(asset, percent)
            return
        if what < 0.28:
            self._keep(self.close_position(asset))
            return
        if what < 0.32:
            # The gap is measured from the position plus open market orders,
            # so afterwards the two add up to the target.
            target = self._qty(rng.uniform(-1.0, 1.0) * max(self.get_equity(), 1.0) / close)
            self._keep(self.order_target_quantity(asset, target))
            held = self.get_position(asset) + sum(
                o.quantity - o.filled_quantity
                for o in self.open_orders(asset) if o.order_type == "market")
            assert abs(held - target) <= 1e-9 * max(1.0, abs(target), abs(held))
            return
        frac = rng.choice([0.01, 0.05, 0.2, 0.5, 1.0, 2.5])
        q = self._qty(frac * max(self.get_equity(), 1.0) / close)
        if q == 0:
            return
        if rng.random() < 0.45:
            q = -q
        side = 1 if q > 0 else -1
        if what < 0.40:
            b = self.bracket(asset, q, stop_loss=close * (1 - side * 0.01),
                             take_profit=close * (1 + side * rng.choice([0.005, 0.02])),
                             limit_price=self._level(close) if rng.random() < 0.4 else None,
                             time_in_force=rng.choice(["gtc", "gtc", "day", "ioc"]))
            for o in b:
                self._keep(o)
            return
        kw = {}
        kind = rng.random()
        market = kind < 0.3
        if market:
            pass
        elif kind < 0.5:
            kw["limit_price"] = self._level(close)
        elif kind < 0.65:
            kw["stop_price"] = self._level(close)
        elif kind < 0.75:
            kw["stop_price"] = stop = self._level(close)
            kw["limit_price"] = stop * (1 + side * rng.choice([0.0, 0.005, 0.02]))
        elif kind < 0.85:
            kw["trail_percent"] = rng.choice([0.005, 0.02])
        else:
            kw["order_type"] = rng.choice(["market_on_open", "market_on_close"])
        tif = rng.choice(["gtc", "gtc", "gtc", "day", "ioc", "fok", "gtd"])
        if tif == "gtd":
            kw["expire_at"] = self._engine.current_ts + rng.choice([1, 6, 30]) * HOUR_NS
        else:
            kw["time_in_force"] = tif
        if not market and rng.random() < 0.25:  # a child (never a plain market order)
            live = [o for o in self.open_orders(asset)]
            if live:
                kw["parent"] = rng.choice(live)
        self._keep(self.order(asset, q, **kw))

    def _snapshot(self, ts: int) -> None:
        self.seen.append((ts, self.get_positions(), self.get_cash()))

    # -- hooks
    def on_start(self) -> None:
        # Orders placed before the first bar: they fill on each asset's first bar.
        if self.rng.random() < 0.5:
            asset = self.rng.choice(self.assets)
            q = self._qty(self.rng.choice([1.0, 7.5, 40.0]))
            o = self.order(asset, q)
            self._keep(o)
            self.start_ids.append(o.order_id)

    def on_order(self, order) -> None:
        self.log.append(("order", order.order_id, order.status))

    def on_fill(self, fill) -> None:
        self.log.append(("fill", fill.ts, fill.order_id, fill.asset, fill.quantity, fill.price,
                         fill.commission, fill.slippage))

    def on_market_data(self, event, context) -> None:
        self.log.append(("bar", event.ts, event.asset))
        if self.hook == "bar":
            self._trade(event.asset, event.close)

    def on_slice(self, view, context) -> None:
        self.log.append(("slice", view.ts))
        self._snapshot(view.ts)
        assets = [str(a) for a in view.assets]
        assert list(view.positions) == [self.get_position(a) for a in assets]
        hist = {a: list(self.history(a, "close", 3)) for a in self.assets}
        self.views.append((view.ts, assets, list(view.open), list(view.high),
                           list(view.low), list(view.close), hist))
        if self.hook == "slice":
            for asset, close in zip(view.assets, view.close, strict=True):
                self._trade(asset, float(close))

    def on_end(self) -> None:
        with pytest.raises(OrderError):
            self.order(self.assets[0], 1.0)
        self.final = {
            "realized": {a: self.get_realized_pnl(a) for a in self.assets},
            "unrealized": self.get_unrealized_pnl(),
            "positions": self.get_positions(),
            "cash": self.get_cash(),
            "equity": self.get_equity(),
        }


@st.composite
def runs(draw: st.DrawFn) -> dict[str, Any]:
    rate = draw(st.sampled_from([0.0, 0.001, 0.01]))
    per_share = draw(st.sampled_from([0.0, 0.005]))
    fixed = draw(st.sampled_from([0.0, 1.0]))
    minimum = draw(st.sampled_from([0.0, 2.0]))
    maximum = draw(st.sampled_from([math.inf, 25.0]))
    fill_at = draw(st.sampled_from(["next_open", "next_open", "next_close", "close"]))
    return {
        "panel": draw(bar_panels(volumes=True, intraday=True)),
        "seed": draw(st.integers(0, 2**32 - 1)),
        "hook": draw(st.sampled_from(["bar", "slice"])),
        "activity": draw(st.sampled_from([0.2, 0.5, 0.9])),
        "initial_cash": draw(st.sampled_from([2_000.0, 100_000.0])),
        "commission": CommissionModel(rate, per_share, fixed, minimum, maximum),
        "slippage_bps": draw(st.sampled_from([0.0, 0.0, 2.0, 30.0])),
        "fill_at": fill_at,
        # None: the account decides (the default cash account cannot short)
        "allow_short": draw(st.sampled_from([True, False, None])),
        "fractional": draw(st.booleans()),
        "intrabar_path": draw(st.sampled_from(["adaptive", "ohlc", "olhc", "submission"])),
        # volume caps are refused with same-bar close fills (a ConfigError)
        "max_volume_participation": (None if fill_at == "close"
                                     else draw(st.sampled_from([None, None, 0.5, 0.05]))),
        "same_bar_reentry": draw(st.booleans()),
        "linked_orders_same_bar": draw(st.sampled_from([True, True, False])),
        "latency": draw(st.sampled_from([0, 0, 0, HOUR_NS, 30 * HOUR_NS])),
        # latency in bars is refused with same-bar close fills (a ConfigError)
        "latency_bars": 0 if fill_at == "close" else draw(st.sampled_from([0, 0, 0, 1])),
    }


KNOBS = ("initial_cash", "commission", "slippage_bps", "fill_at", "allow_short", "fractional",
         "intrabar_path", "max_volume_participation", "same_bar_reentry",
         "linked_orders_same_bar", "latency", "latency_bars")


def run(r: dict[str, Any]) -> tuple[Any, RandomTrader]:
    kwargs = {k: r[k] for k in KNOBS}
    kwargs["latency"] = f"{r['latency']}ns"  # a duration with its unit (docs/guide/time.md)
    if r["fill_at"] == "close":
        with pytest.warns(LookAheadWarning):
            cfg = BacktestConfig(**kwargs)
    else:
        cfg = BacktestConfig(**kwargs)
    panel: Panel = r["panel"]
    strategy = RandomTrader(r["seed"], r["hook"], r["activity"], r["fractional"])
    feed = PolarsDataFeed(panel.frame(), signal_columns=["pred"])
    with warnings.catch_warnings():  # random orders: many runs reject most of them
        warnings.simplefilter("ignore", RejectedOrdersWarning)
        return BacktestEngine(feed, strategy, cfg).run(), strategy


def booked(held: float, q: float) -> float:
    """The position after a fill of ``q`` against ``held``, as docs/semantics.md says.

    "Flat positions and whole units": a position at most ``QTY_RTOL`` x the
    larger of the position before and the fill quantity is float residue and
    is exactly 0.0 (buy 0.1, buy 0.2, sell 0.3 leaves 0.0).
    """
    new = held + q
    if new != 0.0 and abs(new) <= QTY_RTOL * max(abs(held), abs(q)):
        return 0.0
    return new


def near(a: float, b: float, rtol: float, scale: float = 0.0) -> bool:
    return abs(a - b) <= rtol * max(abs(a), abs(b), scale)


def ns(series: pl.Series) -> list[int | None]:
    return series.cast(pl.Int64).to_list()


SETTINGS = settings(max_examples=examples(500), deadline=None,
                    suppress_health_check=[HealthCheck.too_slow])


@SETTINGS
@given(runs())
def test_run_invariants(r: dict[str, Any]) -> None:
    panel: Panel = r["panel"]
    result, strat = run(r)
    index_of = {t: k for k, t in enumerate(panel.timestamps)}
    aid = {a: i for i, a in enumerate(panel.asset_names)}
    s = r["slippage_bps"] / 1e4
    cm: CommissionModel = r["commission"]
    close_mode = r["fill_at"] == "close"

    fills = result.fills
    f_ts = [index_of[t] for t in ns(fills["timestamp"])]
    f_asset = [aid[a] for a in fills["asset"].to_list()]
    f_oid = fills["order_id"].to_list()
    f_q = fills["quantity"].to_list()
    f_p = fills["price"].to_list()
    f_c = fills["commission"].to_list()
    f_s = fills["slippage"].to_list()
    by_order: dict[int, list[int]] = defaultdict(list)  # order id -> its fills (indices)
    for j, oid in enumerate(f_oid):
        by_order[oid].append(j)

    orders = result.orders
    o_rows = orders.to_dicts()
    o_created = ns(orders["timestamp"])
    o_closed = ns(orders["closed_timestamp"])
    assert [row["order_id"] for row in o_rows] == list(range(len(o_rows)))
    assert set(strat.placed) == set(range(len(o_rows)))

    # Each order's row agrees with its fills; statuses and reasons are consistent.
    for row, created, closed in zip(o_rows, o_created, o_closed, strict=True):
        oid, status = row["order_id"], row["status"]
        mine = by_order.get(oid, [])
        total = sum(f_q[j] for j in mine)
        # filled_quantity equals the sum of the order's fills
        assert near(row["filled_quantity"], total, RTOL, 1e-12), (row, total)
        if mine:
            avg = sum(abs(f_q[j]) * f_p[j] for j in mine) / sum(abs(f_q[j]) for j in mine)
            assert near(row["avg_fill_price"], avg, RTOL), row
            assert all(f_asset[j] == aid[row["asset"]] for j in mine)
            assert all((f_q[j] > 0) == (row["quantity"] > 0) for j in mine)
        else:
            assert math.isnan(row["avg_fill_price"])
        assert abs(row["filled_quantity"]) <= abs(row["quantity"]) * (1 + RTOL)
        if status == "filled":
            assert row["filled_quantity"] == row["quantity"]
        if status in WORKING:
            assert closed is None and row["reason"] is None, row
            assert (status == "partially_filled") == bool(mine), row
        else:
            assert closed is not None and closed >= created, row
        if status in ENDED_WITH_REASON:
            assert row["reason"], row
        else:
            assert row["reason"] is None, row
        if status == "rejected" and "short" in row["reason"]:
            assert not r["allow_short"]
        # No order fills after its closed time (nor before it was placed).
        for j in mine:
            t = panel.timestamps[f_ts[j]]
            assert created <= t and (closed is None or t <= closed), (row, f_ts[j])
        # DAY orders fill on one calendar day, and an expired one never after it.
        if row["time_in_force"] == "day" and mine:
            days = {panel.timestamps[f_ts[j]] // DAY_NS for j in mine}
            assert len(days) == 1, row
            if status == "expired":
                assert days.pop() < closed // DAY_NS, row
        if row["time_in_force"] == "fok":
            assert status != "partially_filled" and len(mine) <= 1, row
            if mine:
                assert status == "filled", row

    # OTO: a child never fills before its parent's complete fill (or before
    # the parent ended after a partial fill).
    for row in o_rows:
        parent = row["parent_id"]
        if parent is None or not by_order.get(row["order_id"]):
            continue
        prow = o_rows[parent]
        assert prow["status"] == "filled" or (prow["status"] in ENDED_WITH_REASON
                                               and prow["filled_quantity"] != 0), (row, prow)
        assert max(by_order[parent]) < min(by_order[row["order_id"]]), (row, prow)
    # OCO: the fills of a group never exceed its largest member's quantity.
    groups: dict[int, list[int]] = defaultdict(list)
    for row in o_rows:
        if row["oco_group"] is not None:
            groups[row["oco_group"]].append(row["order_id"])
    for members in groups.values():
        filled = sum(abs(f_q[j]) for m in members for j in by_order.get(m, []))
        assert filled <= max(abs(strat.placed[m]) for m in members) * (1 + RTOL), members

    # Fills in time order; prices on their bar, costs consistent.
    assert f_ts == sorted(f_ts)
    for j, oid in enumerate(f_oid):
        row = o_rows[oid]
        k, a, q, p = f_ts[j], f_asset[j], f_q[j], f_p[j]
        bar = panel.bar(k, a)
        assert bar is not None, "a fill on a timestamp where the asset has no bar"
        _, op, hi, lo, cl, _v = bar
        kind = row["type"]
        created = index_of.get(o_created[oid])
        # Matched from the asset's next bar after the order's timestamp on
        # (on_start orders carry the first timestamp and fill from its bar;
        # close-mode market orders fill at the close of the bar just seen).
        if (oid in strat.start_ids or (kind == "market" and close_mode)
                or row["parent_id"] is not None):
            assert panel.timestamps[k] >= o_created[oid]
        else:
            assert created is None or k > created
        raw = p / (1 + s) if q > 0 else p / (1 - s)  # before slippage (not for capped limits)
        if kind == "market" and row["parent_id"] is None:
            want = cl if r["fill_at"] in ("close", "next_close") else op
            assert near(raw, want, PRICE_RTOL), (row, bar)
        if kind == "market_on_open":
            assert near(raw, op, PRICE_RTOL), (row, bar)
        if kind == "market_on_close":
            assert near(raw, cl, PRICE_RTOL), (row, bar)
        # The price before slippage lies in [low, high].
        if kind in ("limit", "stop_limit"):
            # A limit fill is never worse than its limit, slippage included.
            assert p <= row["limit_price"] if q > 0 else p >= row["limit_price"], (row, p)
            raw_lo, raw_hi = (p / (1 + s), p) if q > 0 else (p, p / (1 - s))
            assert raw_lo <= hi * (1 + PRICE_RTOL) and raw_hi >= lo * (1 - PRICE_RTOL)
        else:
            assert lo * (1 - PRICE_RTOL) <= raw <= hi * (1 + PRICE_RTOL), (row, bar, raw)
        if kind in ("stop", "trailing_stop"):
            # A stop fills at its level or at a worse gap (the open, or for a
            # child the price its parent filled at).
            level = row["stop_price"]
            worse = raw >= level * (1 - PRICE_RTOL) if q > 0 else raw <= level * (1 + PRICE_RTOL)
            assert worse, (row, raw)
            if (kind == "stop" and row["parent_id"] is None and len(by_order[oid]) == 1
                    and not near(raw, level, PRICE_RTOL)):
                assert near(raw, op, PRICE_RTOL), (row, bar, raw)
        if s == 0.0:
            assert f_s[j] == 0.0
        assert f_s[j] >= 0.0
        # Commission: >= 0, within its clip, and as the formula says.
        assert f_c[j] >= 0.0
        assert cm.minimum <= f_c[j] <= cm.maximum
        assert near(f_c[j], cm.compute(f_asset[j], q, p, 0), PRICE_RTOL, scale=1e-12)

    # Volume cap: one asset's fills on one bar take at most the cap.
    cap = r["max_volume_participation"]
    if cap is not None:
        per_bar: dict[tuple[int, int], float] = defaultdict(float)
        for j in range(len(f_q)):
            per_bar[(f_ts[j], f_asset[j])] += abs(f_q[j])
        for (k, a), total in per_bar.items():
            assert total <= cap * panel.bar(k, a)[5] * (1 + RTOL) + 1e-9, (k, a, total)

    # Equity rows: one per timestamp; rebuild cash and positions from the fills.
    eq = result.equity
    assert [index_of[t] for t in ns(eq["timestamp"])] == list(range(panel.n_ts))
    cash = r["initial_cash"]
    pos = [0.0] * panel.n_assets
    avg = [0.0] * panel.n_assets
    realized = [0.0] * panel.n_assets
    j = 0
    for k, (e_cash, e_value, e_equity, e_gross, e_net) in enumerate(zip(
        eq["cash"].to_list(), eq["positions_value"].to_list(), eq["equity"].to_list(),
        eq["gross_exposure"].to_list(), eq["net_exposure"].to_list(), strict=True,
    )):
        while j < len(f_ts) and f_ts[j] == k:
            a, q, p = f_asset[j], f_q[j], f_p[j]
            cash -= q * p + f_c[j]
            new = booked(pos[a], q)
            if pos[a] == 0 or (pos[a] > 0) == (q > 0):
                avg[a] = (avg[a] * abs(pos[a]) + p * abs(q)) / abs(new)
            else:
                closed = min(abs(q), abs(pos[a]))
                realized[a] += closed * (p - avg[a]) * (1 if pos[a] > 0 else -1)
                if new == 0:
                    avg[a] = 0.0
                elif (new > 0) != (pos[a] > 0):
                    avg[a] = p
            pos[a] = new
            j += 1
        if not r["allow_short"]:
            assert all(x >= 0 for x in pos)
        value = gross = 0.0
        for a in range(panel.n_assets):
            if pos[a]:
                mv = pos[a] * panel.last_close(k, a)
                value += mv
                gross += abs(mv)
        scale = max(abs(cash), gross, 1.0)
        assert e_cash >= -1e-9 * scale  # cash never goes below zero
        assert near(e_cash, cash, RTOL, scale)
        assert near(e_value, value, RTOL, scale)
        assert near(e_gross, gross, RTOL, scale)
        assert e_net == e_value
        assert near(e_equity, e_cash + e_value, RTOL, scale)
        assert near(e_equity, cash + value, RTOL, scale)
    assert j == len(f_ts)

    # Fills in the close phase (fill_at="close": market orders at the
    # closes, and the children they free) come after the timestamp's hooks.
    late = set()
    for j, oid in enumerate(f_oid):
        row = o_rows[oid]
        parent = row["parent_id"]
        if close_mode and (row["type"] == "market" or (
                parent is not None and any(i in late and f_ts[i] == f_ts[j]
                                           for i in by_order[parent]))):
            late.add(j)

    # What the strategy saw in on_slice at k: the fills up to k, except the
    # close-phase fills at k.
    for k, (ts, seen_pos, seen_cash) in enumerate(strat.seen):
        assert index_of[ts] == k
        want = [0.0] * panel.n_assets
        c = r["initial_cash"]
        for j in range(len(f_oid)):
            if f_ts[j] > k or (f_ts[j] == k and j in late):
                continue
            want[f_asset[j]] = booked(want[f_asset[j]], f_q[j])
            c -= f_q[j] * f_p[j] + f_c[j]
        # Float residue of a close is flat (booked): the strategy never sees it.
        assert seen_pos == {panel.asset_names[a]: q for a, q in enumerate(want) if q != 0.0}
        assert near(seen_cash, c, RTOL, max(abs(c), 1.0) + sum(
            abs(f_q[j] * f_p[j]) for j in range(len(f_q))))

    # The slice views showed exactly the bars of their timestamp, and history
    # reached no further than the current bar.
    assert len(strat.views) == panel.n_ts
    for k, (ts, assets, op, hi, lo, cl, hist) in enumerate(strat.views):
        assert index_of[ts] == k
        rows = panel.bars[k]
        assert assets == [panel.asset_names[row[0]] for row in rows]
        assert (op, hi, lo, cl) == tuple([row[i] for row in rows] for i in range(1, 5))
        for a, name in enumerate(panel.asset_names):
            past = [panel.bars[j] for j in range(k + 1)]
            closes = [row[4] for rows_j in past for row in rows_j if row[0] == a]
            assert hist[name] == closes[-3:]

    # Hooks: per timestamp, on_fill for the fills against the new bars, then
    # on_market_data per bar by asset id, on_slice, then the close-phase fills.
    hooks = [e for e in strat.log if e[0] != "order"]
    want_log = []
    for k, rows in enumerate(panel.bars):
        ts = panel.timestamps[k]
        here = [j for j in range(len(f_ts)) if f_ts[j] == k]
        fill_logs = {j: ("fill", ts, f_oid[j], panel.asset_names[f_asset[j]], f_q[j], f_p[j],
                         f_c[j], f_s[j]) for j in here}
        want_log += [fill_logs[j] for j in here if j not in late]
        want_log += [("bar", ts, panel.asset_names[row[0]]) for row in rows]
        want_log.append(("slice", ts))
        want_log += [fill_logs[j] for j in here if j in late]
    assert hooks == want_log

    # on_order: every order's status events run submitted -> ... -> its final
    # status, and an order's fill events come before the on_fill of the fill.
    events: dict[int, list[str]] = defaultdict(list)
    n_seen: dict[int, int] = defaultdict(int)
    for entry in strat.log:
        if entry[0] == "order":
            events[entry[1]].append(entry[2])
        elif entry[0] == "fill":
            oid = entry[2]
            n_seen[oid] += 1
            assert {"partially_filled", "filled"} & set(events[oid]), (oid, events[oid])
            if n_seen[oid] == len(by_order[oid]) and o_rows[oid]["status"] == "filled":
                assert "filled" in events[oid], (oid, events[oid])
    for row in o_rows:
        ev = events[row["order_id"]]
        assert ev[0] == "submitted" and ev[-1] == row["status"], (row, ev)
        assert len(ev) == len(set(ev)), (row, ev)  # no status is reported twice
        order = ["submitted", "accepted", "partially_filled", "filled"]
        ranks = [order.index(e) if e in order else 9 for e in ev]
        assert ranks == sorted(ranks), (row, ev)

    # Average-cost accounting: equity = initial + realized + unrealized - costs.
    fin = strat.final
    scale = max(abs(cash), 1.0) + sum(abs(q * p) for q, p in zip(f_q, f_p, strict=True))
    total_real = 0.0
    for a, name in enumerate(panel.asset_names):
        assert near(fin["realized"][name], realized[a], RTOL, scale)
        total_real += realized[a]
    assert fin["positions"] == {panel.asset_names[a]: q for a, q in enumerate(pos) if q != 0}
    assert near(fin["equity"], r["initial_cash"] + total_real + fin["unrealized"] - sum(f_c),
                RTOL, scale)
    if eq.height:
        assert near(fin["equity"], eq["equity"][-1], RTOL, scale)


@settings(max_examples=examples(80), deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(runs())
def test_runs_are_deterministic(r: dict[str, Any]) -> None:
    first, _ = run(r)
    second, _ = run(r)
    assert first.fills.equals(second.fills)
    assert first.orders.equals(second.orders)
    assert first.equity.equals(second.equity)
    assert first.trades.equals(second.trades)


# --------------------------------------------------------------------------- the risk layer
YEAR_NS = 365 * DAY_NS
HALT_REASONS = ("trading halted", "cancelled: trading halted")
BROKER_ORIGINS = ("stop_loss", "take_profit", "trailing_stop", "time_exit", "margin_call",
                  "drawdown_halt")


class RiskTrader(Strategy):
    """Random order flow against the risk layer, reproducibly (``random.Random(seed)``).

    ``flow`` picks the sizes: ``"plain"`` (fractions of equity, targets
    from -500 % to 300 %), ``"dust"`` (adds buys of 0.1 and 0.2 and a sale
    of 0.3 placed together, whose fills leave ``0.1 + 0.2 - 0.3`` of a
    share) or ``"huge"`` (adds 1e20 and 1e307 shares either way). Records
    every order it placed and the OrderErrors it was refused with.
    """

    def __init__(self, seed: int, activity: float, fractional: bool, flow: str) -> None:
        self.rng = random.Random(seed)
        self.activity = activity
        self.fractional = fractional
        self.flow = flow
        self.placed: dict[int, int] = {}  # order id -> ts it was placed at
        self.refused: list[str] = []

    def _keep(self, order) -> None:
        if order is not None:
            self.placed[order.order_id] = self._engine.current_ts

    def _try(self, call, *args, **kw) -> None:
        try:
            out = call(*args, **kw)
        except OrderError as exc:
            self.refused.append(str(exc))
            return
        for o in out if isinstance(out, tuple) else (out,):
            self._keep(o)

    def on_slice(self, view, context) -> None:
        rng = self.rng
        for asset, close in zip(view.assets, view.close, strict=True):
            if rng.random() >= self.activity:
                continue
            asset, close = str(asset), float(close)
            what = rng.random()
            equity = max(self.get_equity(), 1.0) if math.isfinite(self.get_equity()) else 1.0
            side = 1 if rng.random() < 0.55 else -1
            q = side * rng.choice([0.05, 0.3, 1.0, 3.0]) * equity / close
            if not self.fractional:
                q = float(math.trunc(q))
            if what < 0.1:
                for o in self.open_orders():
                    if rng.random() < 0.5:
                        self.cancel(o)
            elif what < 0.2:
                self._try(self.order_target_percent, asset,
                          rng.choice([-5.0, -0.5, 0.0, 0.3, 0.9, 3.0]))
            elif what < 0.25:
                self._try(self.close_position, asset)
            elif what < 0.32 and q != 0:
                self._try(self.bracket, asset, q, stop_loss=close * (1 - side * 0.02),
                          take_profit=close * (1 + side * 0.03))
            elif what < 0.4 and q != 0:
                kw = ({"limit_price": close * (1 - side * 0.01)} if rng.random() < 0.5
                      else {"stop_price": close * (1 + side * 0.01)})
                self._try(self.order, asset, q, **kw)
            elif what < 0.45:
                rules = {k: v for k, v in (("stop_loss", rng.choice([None, 0.02, 0.1])),
                                           ("take_profit", rng.choice([None, 0.03, 0.2])),
                                           ("trailing_stop", rng.choice([None, 0.05])),
                                           ("max_bars", rng.choice([None, 1, 3])))}
                self.set_position_rules(asset if rng.random() < 0.7 else None, **rules)
            elif self.flow == "dust" and what < 0.65:
                for dq in (0.1, 0.2, -0.3) if side > 0 else (-0.1, -0.2, 0.3):
                    self._try(self.order, asset, dq)
            elif self.flow == "huge" and what < 0.6:
                self._try(self.order, asset, rng.choice([1e20, -1e20, 1e307, -1e307]))
            elif q != 0:
                self._try(self.order, asset, q)


@st.composite
def risk_runs(draw: st.DrawFn, flow: str = "plain") -> dict[str, Any]:
    account = draw(st.sampled_from(["cash", "margin"]))
    initial_margin = draw(st.sampled_from([0.5, 0.3, 1.0]))
    rules = draw(st.sampled_from([None, None, {"stop_loss": 0.03}, {"take_profit": 0.02},
                                  {"trailing_stop": 0.04, "max_bars": 3},
                                  {"stop_loss": 0.05, "take_profit": 0.05, "max_bars": 2}]))
    panel = draw(bar_panels(volumes=True, intraday=True))
    borrow = draw(st.sampled_from([0.0, 0.03, 2.0, "per_asset"]))
    if borrow == "per_asset":
        borrow = {name: 0.5 * a for a, name in enumerate(panel.asset_names)}
    return {
        "panel": panel,
        "seed": draw(st.integers(0, 2**32 - 1)),
        "activity": draw(st.sampled_from([0.3, 0.7])),
        "flow": flow,
        "initial_cash": draw(st.sampled_from([2_000.0, 100_000.0])),
        "commission": CommissionModel(draw(st.sampled_from([0.0, 0.001])), 0.0,
                                      draw(st.sampled_from([0.0, 1.0])), 0.0, math.inf),
        "slippage_bps": draw(st.sampled_from([0.0, 5.0])),
        "fill_at": draw(st.sampled_from(["next_open", "next_open", "next_close"])),
        # None: the account decides (a cash account cannot short, a margin account can)
        "allow_short": draw(st.sampled_from([True, False, None])),
        "fractional": draw(st.booleans()) if flow != "dust" else True,
        "intrabar_path": draw(st.sampled_from(["adaptive", "ohlc", "olhc"])),
        "max_volume_participation": draw(st.sampled_from([None, None, 0.5])),
        "account": account,
        "initial_margin": initial_margin,
        "maintenance_margin": draw(st.sampled_from([0.1, 0.25])) * initial_margin / 0.5 / 2,
        "margin_rate": draw(st.sampled_from([0.0, 0.05, 3.0])),
        "borrow_rate": borrow,
        "position_rules": rules,
        "max_open_positions": draw(st.sampled_from([None, 1, 2])),
        "max_gross_leverage": draw(st.sampled_from([None, None, 0.5, 1.5, 4.0])),
        "max_drawdown": draw(st.sampled_from([None, None, 0.03, 0.2])),
    }


RISK_KNOBS = ("initial_cash", "commission", "slippage_bps", "fill_at", "allow_short",
              "fractional", "intrabar_path", "max_volume_participation", "account",
              "initial_margin", "maintenance_margin", "margin_rate", "borrow_rate",
              "position_rules", "max_open_positions", "max_gross_leverage", "max_drawdown")


def run_risk(r: dict[str, Any]) -> tuple[Any, RiskTrader]:
    cfg = BacktestConfig(**{k: r[k] for k in RISK_KNOBS})
    panel: Panel = r["panel"]
    strategy = RiskTrader(r["seed"], r["activity"], r["fractional"], r["flow"])
    feed = PolarsDataFeed(panel.frame(), signal_columns=["pred"])
    with warnings.catch_warnings():  # random risk limits reject most orders of many runs
        warnings.simplefilter("ignore", RejectedOrdersWarning)
        return BacktestEngine(feed, strategy, cfg).run(), strategy


def check_risk_run(r: dict[str, Any], exits_only_reduce: bool = False) -> None:
    """Every invariant of the risk layer over one run, recomputed from the bars and the fills.

    The ledger is replayed fill by fill (financing accrued at the start of
    each timestamp on the previous one's short values and debit balance):
    every fill must pass the rules in force when it was made (cash, margin,
    leverage, short selling, the halt), every recorded value must be finite
    and equal the replay, margin calls and the halt must come exactly when
    the equity record says they are due, and every refusal for
    ``max_open_positions`` must have met that many open positions. With
    ``exits_only_reduce``, every fill of an order the broker placed itself
    (position rules, time exits, margin calls, the halt) must reduce its
    position, never reverse it.
    """
    panel: Panel = r["panel"]
    result, strat = run_risk(r)
    names = panel.asset_names
    aid = {a: i for i, a in enumerate(names)}
    index_of = {t: k for k, t in enumerate(panel.timestamps)}
    margin = r["account"] == "margin"
    allow_short = margin if r["allow_short"] is None else r["allow_short"]
    im, mm = r["initial_margin"], r["maintenance_margin"]
    lev = r["max_gross_leverage"]
    limit_n = r["max_open_positions"]
    dd = r["max_drawdown"]
    rates = r["borrow_rate"]
    rates = [rates.get(n, 0.0) for n in names] if isinstance(rates, dict) else [rates] * len(names)

    fills = result.fills
    f_k = [index_of[t] for t in ns(fills["timestamp"])]
    f_a = [aid[a] for a in fills["asset"].to_list()]
    f_oid = fills["order_id"].to_list()
    f_q, f_p, f_c = (fills[c].to_list() for c in ("quantity", "price", "commission"))
    o_rows = result.orders.to_dicts()
    o_created = [index_of.get(t) for t in ns(result.orders["timestamp"])]
    o_closed = [None if t is None else index_of.get(t)
                for t in ns(result.orders["closed_timestamp"])]
    eq = result.equity
    rec = list(zip(eq["cash"].to_list(), eq["positions_value"].to_list(),
                   eq["equity"].to_list(), eq["gross_exposure"].to_list(), strict=True))

    # No ledger value is ever non-finite (docs/semantics.md, "Every fill keeps
    # the ledger finite"): fills are checked, and a position is bounded by
    # MAX_POSITION so that no later close at a valid price can overflow it.
    for row in rec:
        assert all(math.isfinite(x) for x in row), row
    end_k = len(rec)
    for j in range(len(f_q)):
        assert all(math.isfinite(x) for x in (f_q[j], f_p[j], f_c[j])), (j, f_q[j], f_p[j])
    for row in o_rows:
        assert math.isfinite(row["filled_quantity"]), row
    assert set(strat.placed) <= {row["order_id"] for row in o_rows}
    for row in o_rows:  # every order not placed by the strategy says who placed it
        assert (row["order_id"] in strat.placed) == (row["origin"] == "strategy") or \
            row["parent_id"] is not None, row
        if row["origin"] != "strategy":
            assert row["origin"] in BROKER_ORIGINS, row

    # The equity record: one row per timestamp.
    assert [index_of[t] for t in ns(eq["timestamp"])] == list(range(panel.n_ts))
    halt_k = None  # timestamp at whose end trading halted
    peak = r["initial_cash"]
    for k, (_, _, equity, gross) in enumerate(rec[:end_k]):
        if margin and gross > 0 and equity < mm * gross:
            calls = [i for i, row in enumerate(o_rows)
                     if row["origin"] == "margin_call" and o_created[i] == k]
            assert calls, ("no margin call", k, equity, gross)
        if dd is not None and halt_k is None:
            peak = max(peak, equity)
            if equity <= peak * (1 - dd):
                halt_k = k
    for i, row in enumerate(o_rows):
        if (o_closed[i] if o_closed[i] is not None else o_created[i]) >= end_k:
            continue  # after the overflow
        if row["origin"] == "margin_call":
            _, _, equity, gross = rec[o_created[i]]
            assert margin and equity < mm * gross, ("margin call not due", row)
        if row["origin"] == "drawdown_halt" or "trading halted" in (row["reason"] or ""):
            assert halt_k is not None and (o_closed[i] or o_created[i]) >= halt_k, row
        if row["reason"] == "cancelled: trading halted (max_drawdown reached)":
            assert o_closed[i] == halt_k, row

    # Replay the ledger, fill by fill.
    cash = r["initial_cash"]
    pos = [0.0] * len(names)
    last = [math.nan] * len(names)
    counts: dict[int, list[int]] = defaultdict(list)  # k -> open-position counts during k
    j = 0
    prev_ts = None
    for k in range(panel.n_ts):
        ts = panel.timestamps[k]
        if prev_ts is not None:  # financing since the last timestamp: value x (rate x years)
            years = (ts - prev_ts) / YEAR_NS
            fee = 0.0
            for a in range(len(names)):
                if pos[a] < 0.0:
                    fee -= pos[a] * last[a] * (rates[a] * years)
            interest = -cash * (r["margin_rate"] * years) if cash < 0.0 else 0.0
            cash -= fee + interest
        prev_ts = ts

        def n_open() -> int:
            return sum(1 for a in range(len(names)) if pos[a] != 0.0)

        counts[k].append(n_open())
        while j < len(f_k) and f_k[j] == k:
            a, q, p, c = f_a[j], f_q[j], f_p[j], f_c[j]
            row = o_rows[f_oid[j]]
            old, new = pos[a], pos[a] + q
            reducing = abs(new) <= abs(old) and new * old >= 0.0
            where = (k, j, row, old, q, p, cash)
            if not allow_short:  # a residue the ledger snaps to flat is not a short
                assert booked(old, q) >= 0.0, where
            if halt_k is not None and k > halt_k:
                assert reducing, ("a halted run added exposure", where)
            if exits_only_reduce and row["origin"] in BROKER_ORIGINS:
                assert reducing, ("the broker's own order added exposure", where)
            cash_after = cash - q * p - c
            if not margin:
                assert cash_after >= -1e-9 * max(abs(cash), abs(q * p)), where
            if not reducing and (margin or lev is not None):
                value = gross = 0.0
                for b in range(len(names)):
                    mv = new * p if b == a else pos[b] * last[b] if pos[b] else 0.0
                    value += mv
                    gross += abs(mv)
                equity_after = cash_after + value
                tol = 1e-9 * max(gross, abs(cash_after), 1.0)
                if margin:
                    assert im * gross <= equity_after + tol, ("margin broken", where)
                if lev is not None:
                    assert gross <= lev * equity_after + tol, ("leverage broken", where)
            cash = cash_after
            pos[a] = booked(old, q)  # float residue of a close is flat
            if limit_n is not None:
                assert sum(1 for x in pos if x != 0.0) <= limit_n, where
            counts[k].append(n_open())
            j += 1
        for a, _o, _h, _lo, cl, _v in panel.bars[k]:
            last[a] = cl
        # equity = cash + positions value, at every step, and both as replayed
        e_cash, e_value, e_equity, e_gross = rec[k]
        value = sum(pos[a] * last[a] for a in range(len(names)) if pos[a])
        gross = sum(abs(pos[a] * last[a]) for a in range(len(names)) if pos[a])
        tol = 1e-9 * max(abs(cash), gross, 1.0)
        assert abs(e_cash - cash) <= tol, (k, e_cash, cash)
        assert abs(e_value - value) <= tol, (k, e_value, value)
        assert abs(e_gross - gross) <= tol, (k, e_gross, gross)
        assert e_equity == e_cash + e_value, (k, e_equity, e_cash, e_value)
    assert j == len(f_k) or end_k < len(rec)

    # A refusal for max_open_positions met that many open positions (residue is flat).
    for i, row in enumerate(o_rows):
        if (row["reason"] or "").startswith("max_open_positions") and o_closed[i] < end_k:
            assert max(counts[o_closed[i]]) >= limit_n, (row, counts[o_closed[i]])


RISK_SETTINGS = settings(max_examples=examples(250), deadline=None,
                         suppress_health_check=[HealthCheck.too_slow])


@RISK_SETTINGS
@given(risk_runs())
def test_risk_layer_invariants(r: dict[str, Any]) -> None:
    check_risk_run(r)


@RISK_SETTINGS
@given(risk_runs())
def test_broker_exits_never_reverse_a_position(r: dict[str, Any]) -> None:
    # Cash and margin accounts, shorting allowed or not: every fill of a rule
    # exit, time exit, margin call or drawdown liquidation reduces its position.
    check_risk_run(r, exits_only_reduce=True)


def _held_then_exit(rules: dict[str, Any], sale: float, **cfg: Any) -> Any:
    """Buy 10 at bar 1's open, sell ``sale`` at bar 3's open, under ``rules``.

    Five bars at 100; bar 3's low is 90 (a 5 % stop-loss trades at 95 after
    the sale at the open). A time exit of ``max_bars=2`` is placed at bar 2's
    close and fills at bar 3's open, after the sale (placed earlier).
    """
    frame = pl.DataFrame({
        "timestamp": [BASE_NS + k * DAY_NS for k in range(5)], "asset": ["A"] * 5,
        "open": [100.0] * 5, "high": [100.0] * 5, "low": [100.0, 100.0, 100.0, 90.0, 92.0],
        "close": [100.0, 100.0, 100.0, 92.0, 92.0], "volume": [1e6] * 5,
    }).with_columns(pl.col("timestamp").cast(pl.Datetime("ns")))

    class Trader(Strategy):
        def on_slice(self, view, context) -> None:
            k = (view.ts - BASE_NS) // DAY_NS
            if k == 0:
                self.buy("A", 10)
            elif k == 2:
                self.sell("A", sale)

    config = BacktestConfig(initial_cash=10_000.0, position_rules=rules, **cfg)
    return BacktestEngine(PolarsDataFeed(frame), Trader(), config).run()


@pytest.mark.parametrize("rules, origin, price", [({"stop_loss": 0.05}, "stop_loss", 95.0),
                                                  ({"max_bars": 2}, "time_exit", 100.0)])
def test_a_rule_exit_after_a_strategy_sale_on_its_bar_sells_only_what_is_held(
        rules: dict[str, Any], origin: str, price: float) -> None:
    # Long 10; the strategy sells 3 at bar 3's open, before the rule's exit
    # fills on that bar: the exit sells the 7 left, not 10 (which would open
    # a short of 3), and its order says so.
    result = _held_then_exit(rules, 3.0)
    assert result.fills["quantity"].to_list() == [10.0, -3.0, -7.0]
    assert result.fills["price"].to_list() == [100.0, 100.0, price]
    exit_ = result.orders.row(2, named=True)
    assert (exit_["origin"], exit_["quantity"], exit_["status"]) == (origin, -7.0, "filled")


@pytest.mark.parametrize("rules", [{"stop_loss": 0.05}, {"max_bars": 2}])
@pytest.mark.parametrize("sale", [10.0, 15.0])
def test_a_rule_exit_with_nothing_left_to_close_is_cancelled(rules: dict[str, Any],
                                                             sale: float) -> None:
    # The strategy's sale at bar 3's open closes the long (10) or reverses it
    # (15, margin account): the rule's exit, a sale placed against the long,
    # finds nothing of that long left and is cancelled, never filled.
    result = _held_then_exit(rules, sale, account="margin")
    assert result.fills["quantity"].to_list() == [10.0, -sale]
    exit_ = result.orders.row(2, named=True)
    assert exit_["origin"] != "strategy"
    assert (exit_["status"], exit_["filled_quantity"]) == ("cancelled", 0.0)
    assert exit_["reason"] == ("cancelled: nothing left to close (the position was closed "
                               "before this exit filled)")


def test_a_margin_call_cut_is_capped_at_what_is_held() -> None:
    # Margin account, long 100 at 100 with half borrowed (cash -5000); the
    # close of bar 2 (60) calls the margin (equity 1000 < 25 % of 6000): keep
    # 100 * 1000 / (0.5 * 6000) = 33 whole shares, a cut of 67 at bar 3's open. The
    # strategy sold 90 at that open first (placed at bar 2, earlier id): the
    # cut sells the 10 left and never opens a short.
    frame = pl.DataFrame({
        "timestamp": [BASE_NS + k * DAY_NS for k in range(5)], "asset": ["A"] * 5,
        "open": [100.0, 100.0, 60.0, 60.0, 60.0], "high": [100.0, 100.0, 60.0, 60.0, 60.0],
        "low": [100.0, 100.0, 60.0, 60.0, 60.0], "close": [100.0, 100.0, 60.0, 60.0, 60.0],
        "volume": [1e6] * 5,
    }).with_columns(pl.col("timestamp").cast(pl.Datetime("ns")))

    class Trader(Strategy):
        def on_slice(self, view, context) -> None:
            k = (view.ts - BASE_NS) // DAY_NS
            if k == 0:
                self.buy("A", 100)
            elif k == 2:
                self.sell("A", 90)

    config = BacktestConfig(initial_cash=5_000.0, account="margin", fractional=False)
    result = BacktestEngine(PolarsDataFeed(frame), Trader(), config).run()
    calls = result.orders.filter(pl.col("origin") == "margin_call")
    assert calls.height == 1
    assert result.fills["quantity"].to_list() == [100.0, -90.0, -10.0]
    assert calls["quantity"].to_list() == [-10.0] and calls["status"].to_list() == ["filled"]


@RISK_SETTINGS
@given(risk_runs(flow="dust"))
def test_risk_layer_invariants_with_rounding_dust(r: dict[str, Any]) -> None:
    check_risk_run(r)


@RISK_SETTINGS
@given(risk_runs(flow="huge"))
def test_risk_layer_invariants_with_huge_quantities(r: dict[str, Any]) -> None:
    check_risk_run(r)


def test_the_borrow_fee_of_a_huge_short_stays_finite() -> None:
    # Found by the huge-quantity exploration: value x rate overflowed before
    # the day's fraction of a year was applied. The fee is computed rate first
    # (value x (rate x years)): with the largest position (MAX_POSITION units)
    # at the largest price (1e15) and a borrow rate of 1e14 a year, value x
    # rate (1e309) would overflow while the day's fee (2.7e306) does not.
    frame = pl.DataFrame({
        "timestamp": [BASE_NS + k * DAY_NS for k in range(3)], "asset": ["A"] * 3,
        "open": [1e15] * 3, "high": [1e15] * 3, "low": [1e15] * 3, "close": [1e15] * 3,
        "volume": [1e18] * 3,
    }).with_columns(pl.col("timestamp").cast(pl.Datetime("ns")))

    class Shorter(Strategy):
        def on_start(self) -> None:
            self.sell("A", MAX_POSITION)

    config = BacktestConfig(initial_cash=2_000.0, allow_short=True, borrow_rate=1e14)
    result = BacktestEngine(PolarsDataFeed(frame), Shorter(), config).run()
    assert result.fills["quantity"].to_list() == [-MAX_POSITION]
    cash = result.equity["cash"].to_list()
    assert all(math.isfinite(x) for x in cash + result.equity["equity"].to_list()), cash
    fee = MAX_POSITION * 1e15 * (1e14 / 365)
    assert near(cash[0] - cash[1], fee, 1e-12) and near(cash[1] - cash[2], fee, 1e-12), cash


@pytest.mark.filterwarnings("ignore::mlbacktest.errors.RejectedOrdersWarning")  # on purpose
def test_a_short_that_would_take_the_positions_value_past_the_float_range_is_refused() -> None:
    # Found by the huge-quantity exploration: short 1e307 A at 8.75, then
    # 1e307 B at 10. Each position's value was finite, but the positions
    # value of the account (-1.875e308) and the gross exposure overflowed.
    # Positions are now bounded by MAX_POSITION units, so the first sale is
    # already refused as not representable, and the second too.
    frame = pl.DataFrame({
        "timestamp": [BASE_NS + k * DAY_NS for k in range(3) for _ in range(2)],
        "asset": ["A", "B"] * 3,
        "open": [8.75, 10.0] * 3, "high": [8.75, 10.0] * 3, "low": [8.75, 10.0] * 3,
        "close": [8.75, 10.0] * 3, "volume": [1e6] * 6,
    }).with_columns(pl.col("timestamp").cast(pl.Datetime("ns")))

    class Shorter(Strategy):
        def on_slice(self, view, context) -> None:
            k = (view.ts - BASE_NS) // DAY_NS
            if k == 0:
                self.sell("A", 1e307)
            elif k == 1:
                self.sell("B", 1e307)

    config = BacktestConfig(initial_cash=2_000.0, allow_short=True)
    result = BacktestEngine(PolarsDataFeed(frame), Shorter(), config).run()
    assert result.fills.height == 0
    for row in result.orders.iter_rows(named=True):
        assert row["status"] == "rejected" and row["reason"].startswith("not representable")
    for col in ("cash", "positions_value", "equity", "gross_exposure"):
        assert all(math.isfinite(x) for x in result.equity[col].to_list()), col


# --------------------------------------------------------------------------- sizing helpers
HELPERS = ("order_target_value", "order_target_percent", "order_target_quantity",
           "buy_percent", "rebalance")


@st.composite
def sizing_cases(draw: st.DrawFn) -> dict[str, Any]:
    """One asset per sizing helper, each with its own close and target size.

    Closes on a cent grid or unrounded, from 0.01 to 1e5; target sizes a
    whole number of shares ``k`` (the helper must order exactly ``k``, or
    ``-k``), or ``k`` plus a fraction (it must order the whole shares
    toward zero, never past the target by more than the tolerance).
    """
    cases = []
    for helper in HELPERS:
        if draw(st.booleans()):
            close = draw(st.integers(1, 10_000_000)) / 100.0
        else:
            close = draw(st.floats(0.01, 1e5, allow_nan=False, allow_infinity=False))
        k = draw(st.one_of(st.integers(1, 100), st.integers(1, 10**7)))
        frac = draw(st.sampled_from([0.0, 0.0, 0.0, 0.5, 0.999, 1e-6]) | st.floats(0.0, 0.99))
        side = -1 if helper != "buy_percent" and draw(st.booleans()) else 1
        cases.append({"helper": helper, "close": close, "k": k, "frac": frac, "side": side})
    return {"cases": cases, "initial_cash": draw(st.sampled_from([1e3, 1e5, 123_456.78, 1e9]))}


class Sizer(Strategy):
    """Calls one sizing helper per asset at the first bar; records the orders' quantities."""

    def __init__(self, cases: list[dict[str, Any]]) -> None:
        self.cases = cases
        self.ordered: list[float | None] = []
        self.wanted: list[float] = []  # the target quantity the helper was asked for, in floats

    def on_slice(self, view, context) -> None:
        if self.ordered:
            return
        equity = self.get_equity()
        for a, case in enumerate(self.cases):
            name, close = self.assets[a], self.get_last_price(self.assets[a])
            shares = case["side"] * (case["k"] + case["frac"])
            value = shares * close  # the helper's target, as a strategy would write it
            percent = value / equity
            helper = case["helper"]
            if helper == "order_target_value":
                out = self.order_target_value(name, value)
            elif helper == "order_target_percent":
                out = self.order_target_percent(name, percent)
            elif helper == "order_target_quantity":
                # a share count computed through prices, as k * close / close
                out = self.order_target_quantity(name, value / close)
            elif helper == "buy_percent":
                out = self.buy_percent(name, percent)
            else:
                ids = self.rebalance({name: percent}, keep_others=True)
                out = self.get_order(int(ids[0])) if len(ids) else None
            self.ordered.append(None if out is None else out.quantity)
            self.wanted.append(shares)


@settings(max_examples=examples(300), deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(sizing_cases())
def test_whole_share_sizing_helpers_never_lose_a_share_nor_pass_the_target(
        c: dict[str, Any]) -> None:
    # docs/semantics.md, "Sizing helpers" and "Flat positions and whole
    # units": with fractional=False a helper's order is the whole number
    # within QTY_RTOL of the computed size when there is one (so a target of
    # k shares, written k * close, or k * close / equity of equity, orders
    # exactly k even when float division gives k - 1e-12), else the size
    # truncated toward zero (never past the target beyond that tolerance).
    cases = c["cases"]
    frame = pl.DataFrame({
        "timestamp": [BASE_NS] * len(cases) + [BASE_NS + DAY_NS] * len(cases),
        "asset": [f"A{a}" for a in range(len(cases))] * 2,
        "open": [x["close"] for x in cases] * 2, "high": [x["close"] for x in cases] * 2,
        "low": [x["close"] for x in cases] * 2, "close": [x["close"] for x in cases] * 2,
        "volume": [1e6] * (2 * len(cases)),
    }).with_columns(pl.col("timestamp").cast(pl.Datetime("ns")))
    strategy = Sizer(cases)
    config = BacktestConfig(initial_cash=c["initial_cash"], fractional=False, account="margin")
    with warnings.catch_warnings():  # the sizes are checked, not the fills: most may be rejected
        warnings.simplefilter("ignore", RejectedOrdersWarning)
        BacktestEngine(PolarsDataFeed(frame), strategy, config).run()
    assert len(strategy.ordered) == len(cases)
    for case, got, wanted in zip(cases, strategy.ordered, strategy.wanted, strict=True):
        where = (case, got, wanted)
        q = 0.0 if got is None else got
        assert q == math.trunc(q), where  # whole shares
        if case["frac"] == 0.0:
            assert q == case["side"] * case["k"], where  # no share lost to float residue
            continue
        # The exact target (k + frac shares, the side's sign): the order goes
        # toward zero from it; it reaches past it only within the tolerance.
        exact = abs(wanted)
        tol = QTY_RTOL * max(exact, 1.0)
        assert abs(q) <= exact + tol, ("past the target", where)
        assert abs(q) > exact - 1.0 - tol, ("a share lost", where)
        assert q == 0.0 or (q > 0) == (case["side"] > 0), where


# --------------------------------------------------------------------------- the corpus
TESTS = Path(__file__).resolve().parent


def test_every_property_test_takes_its_example_count_from_mlbt_examples() -> None:
    # A hard-coded max_examples would ignore MLBT_EXAMPLES (the exploration
    # command of docs/architecture.md would silently run fewer examples).
    offenders = []
    for path in sorted(TESTS.glob("*.py")):
        for n, line in enumerate(path.read_text().splitlines(), 1):
            if "max_examples=" in line and "max_examples=examples(" not in line:
                offenders.append(f"{path.name}:{n}: {line.strip()}")
    assert not offenders, offenders


def test_examples_reads_mlbt_examples(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("MLBT_EXAMPLES", raising=False)
    assert examples(123) == 123
    monkeypatch.setenv("MLBT_EXAMPLES", "7")
    assert examples(123) == 7
    for bad in ("many", "0", "-3", "2.5"):
        monkeypatch.setenv("MLBT_EXAMPLES", bad)
        with pytest.raises(ValueError, match=f"MLBT_EXAMPLES must be a whole number >= 1, "
                                             f"got '{re.escape(bad)}'"):
            examples(123)


def test_the_exploration_command_is_documented() -> None:
    cmd = "MLBT_RANDOM=1 MLBT_EXAMPLES="
    for doc in ("README.md", "docs/architecture.md"):
        text = (TESTS.parent / doc).read_text()
        assert cmd in text and "tests/test_properties.py" in text, doc
