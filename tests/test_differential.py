"""Differential test: the compiled engine against the plain-Python reference broker.

Random ragged bar panels and random scripted order streams (market, limit and
stop orders, buys and sells, cancels, sizes that sometimes exceed the cash)
run through both; fills, order outcomes and the per-timestamp cash and equity
must agree.
"""

from __future__ import annotations

import math
import random
from typing import Any

import polars as pl
import pytest
from conftest import BASE_NS, STEP_NS, Panel, bar_panels
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from reference_broker import START, RefResult, reference_run

from mlbacktest import (
    BacktestConfig,
    BacktestEngine,
    CommissionModel,
    LookAheadWarning,
    PolarsDataFeed,
    Strategy,
)

PRICE_RTOL = 1e-12
CASH_RTOL = 1e-9


# --------------------------------------------------------------------------- scenarios
@st.composite
def commissions(draw: st.DrawFn) -> tuple[float, float, float, float, float]:
    rate = draw(st.sampled_from([0.0, 0.0, 0.0005, 0.001, 0.01]))
    per_share = draw(st.sampled_from([0.0, 0.0, 0.005, 0.1]))
    fixed = draw(st.sampled_from([0.0, 0.0, 1.0, 4.95]))
    minimum = draw(st.sampled_from([0.0, 0.0, 1.0, 5.0]))
    maximum = draw(st.sampled_from([math.inf, math.inf, 10.0, 50.0]))
    return rate, per_share, fixed, minimum, max(maximum, minimum)


@st.composite
def order_scripts(draw: st.DrawFn, panel: Panel, initial_cash: float) -> dict:
    """A script of orders and cancels for ``reference_run`` and the replaying strategy."""
    rnd = random.Random(draw(st.integers(0, 2**32 - 1)))
    density = draw(st.sampled_from([1.0, 2.0, 3.0]))
    script: dict[Any, list] = {}
    n_orders = 0
    for k in [START, *range(panel.n_ts)]:
        at = -1 if k == START else k
        actions = []
        n = min(4, int(rnd.expovariate(1.0 / density)))
        for _ in range(n):
            if n_orders and rnd.random() < 0.2:
                actions.append(("cancel", rnd.randrange(n_orders)))
                continue
            asset = rnd.randrange(panel.n_assets)
            ref = panel.last_close(at, asset) if at >= 0 else None
            if ref is None:
                ref = panel.any_close(asset)
            frac = rnd.choice([0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 0.9, 1.2, 3.0])
            qty = frac * initial_cash / ref
            if rnd.random() < 0.5:
                qty = float(max(1, math.floor(qty)))
            sign = 1.0 if rnd.random() < 0.55 else -1.0
            kind = rnd.choice(["market", "market", "limit", "stop"])
            price = math.nan
            if kind != "market":
                nxt = panel.next_bar(at, asset)  # at == -1: the asset's first bar
                choices = [ref * (1.0 + rnd.uniform(-0.05, 0.05))]
                if nxt is not None:
                    choices += [nxt[1], nxt[2], nxt[3], nxt[4],
                                (nxt[2] + nxt[3]) / 2, nxt[2] * 1.01, nxt[3] * 0.99]
                price = rnd.choice(choices)
                if panel.tick and rnd.random() < 0.5:
                    price = max(panel.tick, round(price / panel.tick) * panel.tick)
            actions.append(("order", asset, sign * qty, kind, price))
            n_orders += 1
        if actions:
            script[k] = actions
    return script


@st.composite
def scenarios(draw: st.DrawFn) -> dict[str, Any]:
    panel = draw(bar_panels())
    initial_cash = draw(st.sampled_from([1_000.0, 10_000.0, 100_000.0]))
    return {
        "panel": panel,
        "initial_cash": initial_cash,
        "commission": draw(commissions()),
        "slippage_bps": draw(st.sampled_from([0.0, 0.0, 1.0, 5.0, 25.5])),
        "fill_at": draw(st.sampled_from(["next_open", "close"])),
        "allow_short": draw(st.booleans()),
        "names": draw(st.booleans()),  # address assets by name (else by id)
        "via": draw(st.sampled_from(["slice", "bar", "timer"])),
        "script": draw(order_scripts(panel, initial_cash)),
    }


# --------------------------------------------------------------------------- the engine side
class Replay(Strategy):
    """Places the script's orders and cancels: START in on_start, index k at timestamp k.

    ``via`` picks the hook that acts at k: ``on_slice``, the first
    ``on_market_data`` call of the timestamp, or a timer set for k. Market
    orders go through ``order``, ``buy``/``sell`` or ``order_many`` in turn.
    """

    def __init__(self, script: dict, timestamps: list[int], names: list[str] | None,
                 via: str = "slice") -> None:
        self.script = script
        self.timestamps = timestamps
        self.names = names
        self.via = via
        self.k = 0
        self.order_ids: list[int] = []

    def _act(self, actions: list) -> None:
        for action in actions:
            if action[0] == "cancel":
                self.cancel(self.order_ids[action[1]])
                continue
            _, asset, qty, kind, price = action
            target = self.names[asset] if self.names else asset
            if kind == "market":
                helper = len(self.order_ids) % 3
                if helper == 0:
                    oid = self.order(target, qty).order_id
                elif helper == 1:
                    ev = self.buy(target, qty) if qty > 0 else self.sell(target, -qty)
                    oid = ev.order_id
                else:
                    oid = int(self.order_many([target], [qty])[0])
            elif kind == "limit":
                oid = self.order(target, qty, limit_price=price).order_id
            else:
                oid = self.order(target, qty, stop_price=price).order_id
            self.order_ids.append(oid)

    def _step(self, ts: int) -> None:
        assert ts == self.timestamps[self.k]
        self._act(self.script.get(self.k, []))
        self.k += 1

    def on_start(self) -> None:
        self._act(self.script.get(START, []))
        if self.via == "timer":
            for ts in self.timestamps:
                self.schedule_at(ts, lambda ctx: self._step(self.timestamps[self.k]))

    def on_market_data(self, event, context) -> None:
        if self.via == "bar" and (self.k < len(self.timestamps)
                                  and event.ts == self.timestamps[self.k]):
            self._step(event.ts)

    def on_slice(self, view, context) -> None:
        if self.via == "slice":
            self._step(view.ts)


def make_config(sc: dict[str, Any]) -> BacktestConfig:
    rate, per_share, fixed, minimum, maximum = sc["commission"]
    kwargs = dict(
        initial_cash=sc["initial_cash"],
        commission=CommissionModel(rate, per_share, fixed, minimum, maximum),
        slippage_bps=sc["slippage_bps"],
        fill_at=sc["fill_at"],
        allow_short=sc["allow_short"],
    )
    if sc["fill_at"] == "close":
        with pytest.warns(LookAheadWarning):
            return BacktestConfig(**kwargs)
    return BacktestConfig(**kwargs)


def run_engine(sc: dict[str, Any]):
    panel: Panel = sc["panel"]
    feed = PolarsDataFeed(panel.frame(), signal_columns=["pred"])
    strategy = Replay(sc["script"], panel.timestamps,
                      panel.asset_names if sc["names"] else None, sc.get("via", "slice"))
    result = BacktestEngine(feed, strategy, make_config(sc)).run()
    assert strategy.k == panel.n_ts
    return result


def run_ref(sc: dict[str, Any]) -> RefResult:
    panel: Panel = sc["panel"]
    return reference_run(
        [[row for row in rows] for rows in panel.bars],
        sc["script"],
        initial_cash=sc["initial_cash"],
        commission=sc["commission"],
        slippage_bps=sc["slippage_bps"],
        fill_at=sc["fill_at"],
        allow_short=sc["allow_short"],
    )


# --------------------------------------------------------------------------- comparison
def close(a: float, b: float, rtol: float, scale: float = 0.0) -> bool:
    if math.isnan(a) or math.isnan(b):
        return math.isnan(a) and math.isnan(b)
    return abs(a - b) <= rtol * max(abs(a), abs(b), scale)


def ts_ns(series: pl.Series) -> list[int | None]:
    return series.cast(pl.Int64).to_list()


def compare(sc: dict[str, Any], result, ref: RefResult) -> None:
    panel: Panel = sc["panel"]
    index_of = {t: k for k, t in enumerate(panel.timestamps)}
    names = panel.asset_names

    # Fills: same sequence, same order ids, quantities, prices, costs.
    fills = result.fills
    got = list(zip(
        [index_of[t] for t in ts_ns(fills["timestamp"])],
        [names.index(a) for a in fills["asset"].to_list()],
        fills["order_id"].to_list(), fills["quantity"].to_list(), fills["price"].to_list(),
        fills["commission"].to_list(), fills["slippage"].to_list(), strict=True,
    ))
    want = [(f.ts, f.asset, f.order_id, f.quantity, f.price, f.commission, f.slippage)
            for f in ref.fills]
    assert [g[:3] for g in got] == [w[:3] for w in want], (got, want)
    for g, w in zip(got, want, strict=True):
        assert g[3] == w[3], (g, w)
        assert close(g[4], w[4], PRICE_RTOL), (g, w)
        assert close(g[5], w[5], PRICE_RTOL, scale=1e-12), (g, w)
        assert close(g[6], w[6], 1e-9, scale=1e-9 * abs(w[3] * w[4])), (g, w)

    # Orders: every order, its final status, reason and fill.
    orders = result.orders
    assert orders["order_id"].to_list() == [o.order_id for o in ref.orders]
    rows = orders.to_dicts()
    created = ts_ns(orders["timestamp"])
    closed = ts_ns(orders["closed_timestamp"])
    for row, c_ts, x_ts, o in zip(rows, created, closed, ref.orders, strict=True):
        where = (row, o)
        assert names.index(row["asset"]) == o.asset, where
        assert row["type"] == o.kind, where
        assert row["quantity"] == o.quantity, where
        assert index_of[c_ts] == o.created_ts, where
        assert row["status"] == o.status, where
        assert (None if x_ts is None else index_of[x_ts]) == o.closed_ts, where
        level = row["limit_price"] if o.kind == "limit" else row["stop_price"]
        assert close(level, o.price, 0.0), where
        assert row["filled_quantity"] == o.filled_quantity, where
        assert close(row["avg_fill_price"], o.avg_fill_price, PRICE_RTOL), where
        reason = row["reason"] or ""
        if o.reason == "":
            assert reason == "", where
        elif o.reason == "short_not_allowed":
            assert "short" in reason, where
        else:
            assert "insufficient cash" in reason, where
            assert f"{o.need:.2f}" in reason and f"{o.have:.2f}" in reason, where

    # Equity: one row per timestamp; cash and positions value agree.
    eq = result.equity
    assert [index_of[t] for t in ts_ns(eq["timestamp"])] == [r[0] for r in ref.records]
    for cash, value, equity, (k, r_cash, r_value) in zip(
        eq["cash"].to_list(), eq["positions_value"].to_list(), eq["equity"].to_list(),
        ref.records, strict=True,
    ):
        scale = max(abs(r_cash), abs(r_value), 1.0)
        assert close(cash, r_cash, CASH_RTOL, scale), (k, cash, r_cash)
        assert close(value, r_value, CASH_RTOL, scale), (k, value, r_value)
        assert close(equity, r_cash + r_value, CASH_RTOL, scale), (k, equity, r_cash + r_value)


# --------------------------------------------------------------------------- tests
@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(scenarios())
def test_engine_matches_reference(sc: dict[str, Any]) -> None:
    compare(sc, run_engine(sc), run_ref(sc))


def _bars(*rows_per_ts):
    return [list(rows) for rows in rows_per_ts]


def _panel(bars) -> Panel:
    n_assets = 1 + max(r[0] for rows in bars for r in rows)
    return Panel([f"A{a}" for a in range(n_assets)],
                 [BASE_NS + k * STEP_NS for k in range(len(bars))], bars, 0.0)


def _scenario(bars, script, **kw) -> dict[str, Any]:
    sc = {
        "panel": _panel(bars), "initial_cash": 10_000.0,
        "commission": (0.0, 0.0, 0.0, 0.0, math.inf), "slippage_bps": 0.0,
        "fill_at": "next_open", "allow_short": True, "names": True, "script": script,
    }
    sc.update(kw)
    return sc


@pytest.mark.parametrize("fill_at", ["next_open", "close"])
def test_exits_free_cash_for_entries_and_late_start(fill_at: str) -> None:
    # A1 starts late: its on_start order waits for its first bar. At ts 1 a
    # buy of A0 needs the cash freed by the sale of A1 (placed later, id 2).
    bars = _bars(
        [(0, 100.0, 101.0, 99.0, 100.0)],
        [(0, 100.0, 102.0, 98.0, 101.0), (1, 50.0, 51.0, 49.0, 50.0)],
        [(0, 101.0, 103.0, 100.0, 102.0), (1, 50.0, 52.0, 49.5, 51.0)],
        [(0, 102.0, 104.0, 101.0, 103.0), (1, 51.0, 52.0, 50.0, 51.5)],
    )
    script = {
        START: [("order", 1, 190.0, "market", math.nan)],
        1: [("order", 0, 90.0, "market", math.nan), ("order", 1, -190.0, "market", math.nan)],
        2: [("order", 0, 5.0, "limit", 101.5), ("order", 0, -3.0, "stop", 102.5),
            ("cancel", 3)],
    }
    sc = _scenario(bars, script, fill_at=fill_at)
    ref = run_ref(sc)
    if fill_at == "next_open":
        assert [(f.ts, f.order_id) for f in ref.fills] == [(1, 0), (2, 2), (2, 1), (3, 4)]
        assert ref.orders[3].status == "cancelled" and ref.fills[-1].price == 102.0
    compare(sc, run_engine(sc), ref)


def test_limit_and_stop_boundaries_with_slippage() -> None:
    bars = _bars(
        [(0, 100.0, 100.0, 100.0, 100.0)],
        [(0, 100.0, 105.0, 95.0, 100.0)],
        [(0, 94.0, 96.0, 90.0, 95.0)],
    )
    script = {0: [
        ("order", 0, 1.0, "limit", 95.0),  # low touches the limit exactly: fills at 95, capped
        ("order", 0, -1.0, "limit", 105.0),  # high touches: fills at 105, capped
        ("order", 0, 1.0, "stop", 105.0),  # high touches: fills at 105 * (1 + s)
        ("order", 0, -1.0, "stop", 95.0),  # low touches
        ("order", 0, 1.0, "limit", 94.99),  # rests, then the next open gaps below it
    ]}
    sc = _scenario(bars, script, slippage_bps=10.0, commission=(0.001, 0.0, 0.0, 1.0, 2.0))
    ref = run_ref(sc)
    prices = {f.order_id: f.price for f in ref.fills}
    assert prices[0] == 95.0 and prices[1] == 105.0
    assert prices[4] == 94.0 * (1 + 10.0 / 1e4)  # gapped open, slippage under the cap
    assert prices[2] == 105.0 * (1 + 10.0 / 1e4) and prices[3] == 95.0 * (1 - 10.0 / 1e4)
    compare(sc, run_engine(sc), ref)


def test_rejections() -> None:
    bars = _bars(
        [(0, 10.0, 10.0, 10.0, 10.0), (1, 20.0, 20.0, 20.0, 20.0)],
        [(0, 10.0, 11.0, 9.0, 10.0), (1, 20.0, 21.0, 19.0, 20.0)],
        [(0, 12.0, 13.0, 11.0, 12.0), (1, 20.0, 21.0, 19.0, 20.0)],
    )
    script = {
        START: [("order", 0, 2000.0, "market", math.nan)],  # needs 20_000: rejected
        0: [("order", 1, -5.0, "market", math.nan),  # short: rejected when not allowed
            ("order", 0, 999.0, "market", math.nan)],  # 9_990 + commission 1: fits
        1: [("order", 0, 1.0, "market", math.nan)],
    }
    for allow_short in (True, False):
        sc = _scenario(bars, script, allow_short=allow_short,
                       commission=(0.0, 0.0, 1.0, 0.0, math.inf))
        ref = run_ref(sc)
        assert ref.orders[0].reason == "insufficient_cash"
        assert ref.orders[1].status == ("filled" if allow_short else "rejected")
        compare(sc, run_engine(sc), ref)


def test_a_fill_costing_exactly_the_cash_goes_through() -> None:
    bars = _bars([(0, 10.0, 10.0, 10.0, 10.0)], [(0, 10.0, 11.0, 9.0, 10.0)],
                 [(0, 10.0, 11.0, 9.0, 10.0)])
    script = {0: [("order", 0, 999.0, "market", math.nan)],  # 9_990 + 10 == 10_000
              1: [("order", 0, 1.0, "limit", 10.0)]}  # then nothing is left: rejected
    sc = _scenario(bars, script, commission=(0.0, 0.0, 10.0, 0.0, math.inf))
    ref = run_ref(sc)
    assert [o.status for o in ref.orders] == ["filled", "rejected"]
    assert ref.records[-1][1] == 0.0
    compare(sc, run_engine(sc), ref)


def test_exits_are_judged_against_the_position_as_it_stands() -> None:
    # docs/semantics.md: "orders that reduce the current position are matched
    # before the others". The engine (and the reference) judge each order
    # against the position at the moment it is considered, not at the start of
    # the timestamp: after id 2 flattens A0, the further sale id 3 opens a
    # short, so it is an entry and comes after the buy id 1 -- which the cash
    # cannot pay for without id 3's proceeds.
    flat = (10.0, 10.0, 10.0, 10.0)
    bars = _bars(*[[(0, *flat), (1, *flat)]] * 3)
    script = {
        START: [("order", 0, 100.0, "market", math.nan)],  # id 0: long 100 A0, cash 0
        0: [("order", 1, 150.0, "market", math.nan),  # id 1: buy A1, needs 1_500
            ("order", 0, -100.0, "market", math.nan),  # id 2: exit, frees 1_000
            ("order", 0, -50.0, "market", math.nan)],  # id 3: short sale, 500 more
    }
    sc = _scenario(bars, script, initial_cash=1_000.0)
    ref = run_ref(sc)
    assert [f.order_id for f in ref.fills] == [0, 2, 3]
    assert ref.orders[1].status == "rejected"
    compare(sc, run_engine(sc), ref)
