"""Parity with backtrader: the scenarios of ``scenarios.SCENARIOS`` run by both engines.

mlbacktest runs with ``BacktestConfig.preset("backtrader", ...)`` (next-open
market fills, whole shares unless the scenario is fractional, triggered orders
filled in submission order, bracket legs from the bar after the entry,
re-entry allowed on a stop-out bar). backtrader is configured with its
defaults except where docs/parity.md says otherwise: commission through
``setcommission`` (a ``CommInfoBase`` subclass only where backtrader has no
built-in: a per-fill minimum, fractional sizing), slippage through
``set_slippage_perc`` / ``set_slippage_fixed`` with ``slip_open=True,
slip_out=True``, and ``set_checksubmit(False)``.
"""

from __future__ import annotations

import contextlib
from typing import Any

import backtrader as bt
import numpy as np
import pytest

from mlbacktest import LookAheadWarning

from .scenarios import (
    SCENARIOS,
    Api,
    Bars,
    EngineRun,
    Fill,
    Policy,
    Scenario,
    assert_parity,
    fill_kinds,
    mlbacktest_config,
    run_mlbacktest,
    run_mlbacktest_with,
)


# =========================================================================== feed
class ArrayFeed(bt.feed.DataBase):
    """One asset's column of a :class:`Bars` panel as a backtrader data feed."""

    params = (("bars", None), ("asset", 0))

    def start(self) -> None:
        super().start()
        self._k = 0

    def _load(self) -> bool:
        bars: Bars = self.p.bars
        k, a = self._k, self.p.asset
        if k >= bars.n_bars:
            return False
        self.lines.datetime[0] = bt.date2num(bars.dates[k])
        self.lines.open[0] = bars.open[k, a]
        self.lines.high[0] = bars.high[k, a]
        self.lines.low[0] = bars.low[k, a]
        self.lines.close[0] = bars.close[k, a]
        self.lines.volume[0] = 1_000_000.0
        self.lines.openinterest[0] = 0.0
        self._k += 1
        return True


# =========================================================================== costs
class ParityCommInfo(bt.CommInfoBase):
    """Stock-like commission ``max(rate*|q|*p + per_share*|q|, minimum)`` per fill leg.

    Used only where backtrader has no built-in: a per-fill minimum, and
    fractional sizing (backtrader's documented recipe: override ``getsize``).
    """

    params = (
        ("stocklike", True),
        ("commtype", bt.CommInfoBase.COMM_PERC),
        ("percabs", True),
        ("per_share", 0.0),
        ("minimum", 0.0),
        ("fractional", False),
    )

    def _getcommission(self, size: float, price: float, pseudoexec: bool) -> float:
        q = abs(size)
        return max(q * self.p.commission * price + q * self.p.per_share, self.p.minimum)

    def getsize(self, price: float, cash: float) -> float:
        if self.p.fractional:
            return self.p.leverage * (cash / price)
        return super().getsize(price, cash)


def configure_broker(cerebro: bt.Cerebro, sc: Scenario) -> None:
    c = sc.costs
    broker = cerebro.broker
    broker.setcash(sc.initial_cash)
    # mlbacktest checks cash when an order fills, not when it is placed, and
    # cancels an order placed on the same bar at once. backtrader's default
    # checksubmit=True pre-checks cash at the creation close and parks new
    # orders in a submission queue that broker.cancel() does not look at (a
    # cancel on the bar of creation silently fails); checksubmit=False sends
    # them straight to the pending book, where both hold.
    broker.set_checksubmit(False)
    if c.commission_minimum or sc.fractional or (c.commission_rate and c.per_share):
        broker.addcommissioninfo(
            ParityCommInfo(
                commission=c.commission_rate,
                per_share=c.per_share,
                minimum=c.commission_minimum,
                fractional=sc.fractional,
            )
        )
    elif c.per_share:
        broker.setcommission(
            commission=c.per_share, commtype=bt.CommInfoBase.COMM_FIXED, stocklike=True
        )
    else:
        broker.setcommission(commission=c.commission_rate)  # stock-like, % of value
    # slip_open: slip fills at the open too (market orders, gapped stops), as
    # mlbacktest does. slip_out: never cap a slipped price at the bar's
    # high/low (mlbacktest does not); only limit fills are capped (at the limit).
    if c.slippage_bps:
        broker.set_slippage_perc(c.slippage_bps / 1e4, slip_open=True, slip_out=True)
    elif c.slippage_fixed:
        broker.set_slippage_fixed(c.slippage_fixed, slip_open=True, slip_out=True)


# =========================================================================== adapter
class BtApi(Api):
    def __init__(self, strategy: ParityStrategy) -> None:
        self.s = strategy
        self.orders: dict[int, Any] = {}

    def _keep(self, order: Any) -> int | None:
        if order is None:
            return None
        self.orders[order.ref] = order
        return int(order.ref)

    def _placed(self, order: Any) -> int:
        """The handle of an order that was placed (backtrader returns one for every buy/sell)."""
        h = self._keep(order)
        assert h is not None
        return h

    def _side(self, q: float) -> Any:
        return self.s.buy if q > 0 else self.s.sell

    def position(self, a: int) -> float:
        return float(self.s.getposition(self.s.datas[a]).size)

    def equity(self) -> float:
        return float(self.s.broker.getvalue())

    def market(self, a: int, q: float) -> int:
        return self._placed(self._side(q)(data=self.s.datas[a], size=abs(q)))

    def limit(self, a: int, q: float, price: float) -> int:
        return self._placed(
            self._side(q)(data=self.s.datas[a], size=abs(q), price=price, exectype=bt.Order.Limit)
        )

    def stop(self, a: int, q: float, price: float) -> int:
        return self._placed(
            self._side(q)(data=self.s.datas[a], size=abs(q), price=price, exectype=bt.Order.Stop)
        )

    def cancel(self, h: int) -> bool:
        order = self.orders.get(h)
        if order is None or not order.alive():
            return False
        self.s.cancel(order)
        return True

    def target_quantity(self, a: int, q: float) -> int | None:
        return self._keep(self.s.order_target_size(data=self.s.datas[a], target=q))

    def target_percent(self, a: int, pct: float) -> int | None:
        return self._keep(self.s.order_target_percent(data=self.s.datas[a], target=pct))

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
        """Exit orders linked one-cancels-others through backtrader's ``oco=``.

        A ``StopTrail`` created now starts from this bar's close and follows
        the closes (``Order.trailadjust`` after each bar it did not fill on).
        """
        d, size, side = self.s.datas[a], abs(q), self._side(q)
        specs: list[dict[str, Any]] = []
        if stop is not None:
            specs.append(dict(exectype=bt.Order.Stop, price=stop))
        if trail_amount is not None or trail_percent is not None:
            specs.append(
                dict(
                    exectype=bt.Order.StopTrail,
                    trailamount=trail_amount,
                    trailpercent=trail_percent,
                )
            )
        if limit is not None:
            specs.append(dict(exectype=bt.Order.Limit, price=limit))
        first = None
        handles = []
        for kw in specs:
            order = side(data=d, size=size, oco=first, **kw)
            first = first or order
            handles.append(self._placed(order))
        return handles

    def bracket(self, a: int, q: float, *, stop_loss: float, take_profit: float) -> int:
        """``buy_bracket`` / ``sell_bracket`` with a market entry."""
        make = self.s.buy_bracket if q > 0 else self.s.sell_bracket
        entry, stop, take = make(
            data=self.s.datas[a],
            size=abs(q),
            exectype=bt.Order.Market,
            stopprice=stop_loss,
            limitprice=take_profit,
        )
        self._keep(stop)
        self._keep(take)
        return self._placed(entry)


class ParityStrategy(bt.Strategy):
    params = (("policy", None),)

    def __init__(self) -> None:
        self.api = BtApi(self)
        self.asset_of = {id(d): a for a, d in enumerate(self.datas)}
        self.fills: list[Fill] = []
        self.equity: list[float] = []
        self.rejected: list[str] = []
        self.closed_trades = 0

    def notify_order(self, order: Any) -> None:
        if order.status == order.Completed:
            f = Fill(
                len(self) - 1,
                self.asset_of[id(order.data)],
                float(order.executed.size),
                float(order.executed.price),
                float(order.executed.comm),
                int(order.ref),
            )
            self.fills.append(f)
            self.p.policy.on_fill(self.api, f)
        elif order.status in (order.Margin, order.Rejected):
            self.rejected.append(
                f"bar {len(self) - 1} {order.data._name} {order.getstatusname()} "
                f"size={order.created.size}"
            )

    def notify_trade(self, trade: Any) -> None:
        if trade.isclosed:
            self.closed_trades += 1

    def next(self) -> None:
        self.p.policy.on_bar(self.api, len(self) - 1)
        self.equity.append(self.broker.getvalue())


def run_backtrader(sc: Scenario, policy: Policy | None = None) -> EngineRun:
    bars = sc.bars
    cerebro = bt.Cerebro(stdstats=False, cheat_on_open=False)
    for a, name in enumerate(bars.assets):
        cerebro.adddata(ArrayFeed(bars=bars, asset=a), name=name)
    configure_broker(cerebro, sc)
    cerebro.addstrategy(ParityStrategy, policy=policy or sc.make_policy(bars))
    (strategy,) = cerebro.run()
    equity = np.array(strategy.equity)
    return EngineRun(
        "backtrader",
        strategy.fills,
        equity,
        float(cerebro.broker.getvalue()),
        len(strategy.rejected),
        strategy.closed_trades,
        notes={"rejections": strategy.rejected[:3]},
    )


# =========================================================================== tests
@pytest.mark.parametrize("name", list(SCENARIOS))
def test_matches_backtrader(name: str) -> None:
    sc = SCENARIOS[name]
    if sc.backtrader_skip:
        pytest.skip(sc.backtrader_skip)
    assert sc.preset == "backtrader"
    ours = run_mlbacktest(name)
    theirs = run_backtrader(sc)
    assert ours.fills, "the scenario made no fills"
    assert_parity(theirs, ours, sc.bars)


#: What each scenario's fills must include (``scenarios.fill_kinds``), so that a
#: parity pass is not vacuous: gapped and intrabar stop / limit fills, reversals
#: through zero, commissions at the minimum, partial reductions.
EXERCISES: dict[str, set[str]] = {
    "long_only": {"open", "close"},
    "long_short": {"open", "close", "reverse"},
    "short_only": {"open", "close"},
    "percentage_commission": {"reverse"},
    "per_share_commission": {"commission@minimum", "add", "reduce", "close"},
    "percentage_slippage": {"reverse"},
    "stop_loss_5pct": {"stop@open", "stop@level"},
    "take_profit_10pct": {"limit@open", "limit@level"},
    "limit_entries": {"limit@open", "limit@level"},
    "target_percent_rebalance_20": {"add", "reduce"},
    "target_percent_rebalance_20_whole_shares": {"add", "reduce"},
    "stress_1500": {"market@open", "limit@open", "limit@level", "stop@open", "stop@level"},
    "fixed_slippage": {"market@open", "reverse"},
    "trailing_stop": {"trailing_stop@open", "trailing_stop@level"},
    "short_trailing_stop": {"trailing_stop@open", "trailing_stop@level"},
    "bracket_sl_tp": {"stop@level", "limit@level"},
    "trailing_tp": {"trailing_stop@level", "limit@level"},
    "trailing_sl": {"trailing_stop@level", "stop@level"},
    "trailing_tp_sl": {"trailing_stop@level", "stop@level", "limit@level"},
    "close_long_short": {"market@close", "reverse"},
    "close_rebalance_20": {"market@close", "add", "reduce"},
    "close_stop_take": {"market@close", "stop@level", "limit@level"},
    "stop_and_reverse": {"market@open", "stop@open", "stop@level", "close", "open"},
}

#: Preset knobs a scenario's pass depends on. Set back to mlbacktest's default,
#: each changes the scenario's fills, so the pass against backtrader shows that
#: the preset's value is what reproduces backtrader there:
#: ``intrabar_path="submission"``: bars that cross two linked exits fill the one
#: placed first (here the fixed stop, not the trailing stop the price path
#: reaches first); ``linked_orders_same_bar=False``: bracket legs whose level
#: trades on the entry bar wait for the next bar; ``same_bar_reentry=True``: the
#: reversing stop entry fills on the bar of the stop exit.
KNOBS: dict[str, dict[str, Any]] = {
    "trailing_tp": {"intrabar_path": "adaptive"},
    "trailing_sl": {"intrabar_path": "adaptive"},
    "trailing_tp_sl": {"intrabar_path": "adaptive"},
    "bracket_sl_tp": {"linked_orders_same_bar": True},
    "stop_and_reverse": {"same_bar_reentry": False},
}


def warns_if_look_ahead(name: str) -> Any:
    """``pytest.warns(LookAheadWarning)`` for a look-ahead-prone preset (``fill_at="close"``)."""
    if SCENARIOS[name].preset == "vectorbt":
        return pytest.warns(LookAheadWarning, match="look-ahead")
    return contextlib.nullcontext()


def test_every_scenario_claims_something() -> None:
    assert set(EXERCISES) == set(SCENARIOS)


@pytest.mark.parametrize("name", list(SCENARIOS))
def test_scenario_exercises_what_it_claims(name: str) -> None:
    with warns_if_look_ahead(name):
        kinds = fill_kinds(name)
    assert not EXERCISES[name] - set(kinds), dict(kinds)
    if name in ("long_only", "short_only", "per_share_commission"):
        sign = -1.0 if name == "short_only" else 1.0
        pos: dict[int, float] = {}
        for f in run_mlbacktest(name).fills:  # a backtrader-preset scenario: no warning
            pos[f.asset] = pos.get(f.asset, 0.0) + f.quantity
            assert sign * pos[f.asset] >= 0, f


@pytest.mark.parametrize("name", list(KNOBS))
def test_preset_knob_is_exercised(name: str) -> None:
    sc = SCENARIOS[name]
    preset = run_mlbacktest(name)
    flipped = run_mlbacktest_with(sc, mlbacktest_config(sc).replace(**KNOBS[name]))
    with pytest.raises(AssertionError, match="fill"):
        assert_parity(preset, flipped, sc.bars)
