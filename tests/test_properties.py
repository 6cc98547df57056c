"""Property tests: invariants of any run over random bars and random order flow.

A strategy draws orders (market, limit, stop, sizing helpers, cancels) from a
seeded RNG in ``on_market_data`` or ``on_slice``; the run's fills, orders and
equity record are then checked against what the bars and the fills imply,
recomputed here from scratch.
"""

from __future__ import annotations

import math
import random
from typing import Any

import polars as pl
import pytest
from conftest import Panel, bar_panels
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
from mlbacktest.errors import OrderError

RTOL = 1e-9
PRICE_RTOL = 1e-12


class RandomTrader(Strategy):
    """Trades at random, reproducibly: every choice comes from ``random.Random(seed)``.

    Records, at each hook call, what the strategy saw (positions, cash,
    realized P&L) so the test can compare it with the fills.
    """

    def __init__(self, seed: int, hook: str, activity: float, fractional: bool) -> None:
        self.rng = random.Random(seed)
        self.hook = hook
        self.activity = activity
        self.fractional = fractional
        self.start_ids: list[int] = []
        self.seen: list[tuple[int, dict[str, float], float]] = []
        self.views: list[tuple] = []
        self.log: list[tuple] = []  # every hook call, in order
        self.final: dict[str, Any] = {}

    # -- order flow
    def _qty(self, q: float) -> float:
        return q if self.fractional else float(math.trunc(q))

    def _trade(self, asset: str, close: float) -> None:
        rng = self.rng
        if rng.random() >= self.activity:
            return
        what = rng.random()
        if what < 0.12:
            for o in self.open_orders(asset if rng.random() < 0.5 else None):
                if rng.random() < 0.5:
                    assert self.cancel(o) is True
            return
        if what < 0.2:
            self.order_target_percent(asset, rng.choice([-0.5, 0.0, 0.3, 0.9, 1.1]))
            return
        if what < 0.25:
            self.close_position(asset)
            return
        if what < 0.3:
            # The gap is measured from the position plus open market orders,
            # so afterwards the two add up to the target.
            target = self._qty(rng.uniform(-1.0, 1.0) * max(self.get_equity(), 1.0) / close)
            self.order_target_quantity(asset, target)
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
        kind = rng.random()
        level = close * (1.0 + rng.uniform(-0.04, 0.04))
        if kind < 0.5:
            self.order(asset, q)
        elif kind < 0.75:
            self.order(asset, q, limit_price=level)
        else:
            self.order(asset, q, stop_price=level)

    def _snapshot(self, ts: int) -> None:
        self.seen.append((ts, self.get_positions(), self.get_cash()))

    # -- hooks
    def on_start(self) -> None:
        # Orders placed before the first bar: they fill on each asset's first bar.
        if self.rng.random() < 0.5:
            asset = self.rng.choice(self.assets)
            q = self._qty(self.rng.choice([1.0, 7.5, 40.0]))
            self.start_ids.append(self.order(asset, q).order_id)

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
    return {
        "panel": draw(bar_panels()),
        "seed": draw(st.integers(0, 2**32 - 1)),
        "hook": draw(st.sampled_from(["bar", "slice"])),
        "activity": draw(st.sampled_from([0.2, 0.5, 0.9])),
        "initial_cash": draw(st.sampled_from([2_000.0, 100_000.0])),
        "commission": CommissionModel(rate, per_share, fixed, minimum, maximum),
        "slippage_bps": draw(st.sampled_from([0.0, 0.0, 2.0, 30.0])),
        "fill_at": draw(st.sampled_from(["next_open", "close"])),
        "allow_short": draw(st.booleans()),
        "fractional": draw(st.booleans()),
    }


def run(r: dict[str, Any]) -> tuple[Any, RandomTrader]:
    kwargs = dict(
        initial_cash=r["initial_cash"], commission=r["commission"],
        slippage_bps=r["slippage_bps"], fill_at=r["fill_at"],
        allow_short=r["allow_short"], fractional=r["fractional"],
    )
    if r["fill_at"] == "close":
        with pytest.warns(LookAheadWarning):
            cfg = BacktestConfig(**kwargs)
    else:
        cfg = BacktestConfig(**kwargs)
    panel: Panel = r["panel"]
    strategy = RandomTrader(r["seed"], r["hook"], r["activity"], r["fractional"])
    feed = PolarsDataFeed(panel.frame(), signal_columns=["pred"])
    return BacktestEngine(feed, strategy, cfg).run(), strategy


def first_bar_from(panel: Panel, k: int, asset: int) -> int | None:
    """Index of the asset's first bar at or after index ``k``."""
    return next((j for j in range(k, panel.n_ts) if panel.bar(j, asset)), None)


def near(a: float, b: float, rtol: float, scale: float = 0.0) -> bool:
    return abs(a - b) <= rtol * max(abs(a), abs(b), scale)


def ns(series: pl.Series) -> list[int | None]:
    return series.cast(pl.Int64).to_list()


SETTINGS = settings(max_examples=200, deadline=None,
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

    fills = result.fills
    f_ts = [index_of[t] for t in ns(fills["timestamp"])]
    f_asset = [aid[a] for a in fills["asset"].to_list()]
    f_oid = fills["order_id"].to_list()
    f_q = fills["quantity"].to_list()
    f_p = fills["price"].to_list()
    f_c = fills["commission"].to_list()
    f_s = fills["slippage"].to_list()

    orders = result.orders
    o_rows = orders.to_dicts()
    o_created = [index_of[t] for t in ns(orders["timestamp"])]
    o_closed = ns(orders["closed_timestamp"])
    assert [row["order_id"] for row in o_rows] == list(range(len(o_rows)))

    # One fill per filled order, and the order row agrees with its fill.
    filled = {row["order_id"] for row in o_rows if row["status"] == "filled"}
    assert len(f_oid) == len(filled) == len(set(f_oid))
    assert set(f_oid) == filled
    for j, oid in enumerate(f_oid):
        row = o_rows[oid]
        assert row["filled_quantity"] == row["quantity"] == f_q[j]
        assert row["avg_fill_price"] == f_p[j]
        assert index_of[o_closed[oid]] == f_ts[j]
        assert aid[row["asset"]] == f_asset[j]
    for row, created, closed in zip(o_rows, o_created, o_closed, strict=True):
        if row["status"] == "open":
            assert closed is None and row["reason"] is None
        else:
            assert closed is not None and index_of[closed] >= created
        if row["status"] == "rejected":
            assert row["reason"]
            if "short" in row["reason"]:
                assert not r["allow_short"]
        else:
            assert row["reason"] is None

    # Fills in time order; prices on their bar, costs consistent.
    assert f_ts == sorted(f_ts)
    for j, oid in enumerate(f_oid):
        row = o_rows[oid]
        k, a, q, p = f_ts[j], f_asset[j], f_q[j], f_p[j]
        bar = panel.bar(k, a)
        assert bar is not None, "a fill on a timestamp where the asset has no bar"
        _, op, hi, lo, cl = bar
        created = o_created[oid]
        # Matched from the asset's next bar after the order's timestamp on
        # (on_start orders carry the first timestamp and fill from its bar;
        # close-mode market orders fill at the close of the bar just seen).
        at_close = row["type"] == "market" and r["fill_at"] == "close"
        if oid in strat.start_ids or at_close:
            assert k >= created
        else:
            assert k > created
        if row["type"] == "market":
            # A market order fills on the first bar it is matched against.
            start = created if (oid in strat.start_ids or at_close) else created + 1
            assert k == first_bar_from(panel, start, a)
            raw = cl if r["fill_at"] == "close" else op
            want = raw * (1 + s) if q > 0 else raw * (1 - s)
            assert near(p, want, PRICE_RTOL)
        # The price before slippage lies in [low, high].
        if s == 0.0:
            assert lo <= p <= hi
            assert f_s[j] == 0.0
        elif row["type"] == "limit":
            # Capped at the limit: the raw price lies between p/(1+s) and p (buys).
            raw_lo, raw_hi = (p / (1 + s), p) if q > 0 else (p, p / (1 - s))
            assert raw_lo <= hi * (1 + PRICE_RTOL) and raw_hi >= lo * (1 - PRICE_RTOL)
        else:
            raw = p / (1 + s) if q > 0 else p / (1 - s)
            assert lo * (1 - PRICE_RTOL) <= raw <= hi * (1 + PRICE_RTOL)
        if row["type"] == "limit":
            assert p <= row["limit_price"] if q > 0 else p >= row["limit_price"]
        assert f_s[j] >= 0.0
        # Commission: >= 0, within its clip, and as the formula says.
        assert f_c[j] >= 0.0
        assert cm.minimum <= f_c[j] <= cm.maximum
        assert near(f_c[j], cm.compute(f_asset[j], q, p, 0), PRICE_RTOL, scale=1e-12)

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
            if pos[a] == 0 or (pos[a] > 0) == (q > 0):
                avg[a] = (avg[a] * abs(pos[a]) + p * abs(q)) / abs(pos[a] + q)
            else:
                closed = min(abs(q), abs(pos[a]))
                realized[a] += closed * (p - avg[a]) * (1 if pos[a] > 0 else -1)
                if pos[a] + q == 0:
                    avg[a] = 0.0
                elif (pos[a] + q > 0) != (pos[a] > 0):
                    avg[a] = p
            pos[a] += q
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
        assert e_cash >= 0.0
        assert near(e_cash, cash, RTOL, scale)
        assert near(e_value, value, RTOL, scale)
        assert near(e_gross, gross, RTOL, scale)
        assert e_net == e_value
        assert near(e_equity, e_cash + e_value, RTOL, scale)
        assert near(e_equity, cash + value, RTOL, scale)
    assert j == len(f_ts)

    # What the strategy saw in on_slice at k: the fills up to k, except
    # close-mode market fills at k (they happen after the hooks).
    for k, (ts, seen_pos, seen_cash) in enumerate(strat.seen):
        assert index_of[ts] == k
        want = [0.0] * panel.n_assets
        c = r["initial_cash"]
        for j, oid in enumerate(f_oid):
            if f_ts[j] > k or (f_ts[j] == k and r["fill_at"] == "close"
                               and o_rows[oid]["type"] == "market"):
                continue
            want[f_asset[j]] += f_q[j]
            c -= f_q[j] * f_p[j] + f_c[j]
        assert seen_pos == {panel.asset_names[a]: q for a, q in enumerate(want) if q != 0}
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
    # on_market_data per bar by asset id, on_slice, then (close mode) on_fill
    # for the market fills at the closes.
    want_log = []
    for k, rows in enumerate(panel.bars):
        ts = panel.timestamps[k]
        here = [j for j in range(len(f_ts)) if f_ts[j] == k]
        late = [j for j in here
                if r["fill_at"] == "close" and o_rows[f_oid[j]]["type"] == "market"]
        fill_logs = {j: ("fill", ts, f_oid[j], panel.asset_names[f_asset[j]], f_q[j], f_p[j],
                         f_c[j], f_s[j]) for j in here}
        want_log += [fill_logs[j] for j in here if j not in late]
        want_log += [("bar", ts, panel.asset_names[row[0]]) for row in rows]
        want_log.append(("slice", ts))
        want_log += [fill_logs[j] for j in late]
    assert strat.log == want_log

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


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(runs())
def test_runs_are_deterministic(r: dict[str, Any]) -> None:
    first, _ = run(r)
    second, _ = run(r)
    assert first.fills.equals(second.fills)
    assert first.orders.equals(second.orders)
    assert first.equity.equals(second.equity)
    assert first.trades.equals(second.trades)
