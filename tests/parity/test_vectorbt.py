"""Parity with vectorbt, for the scenarios vectorbt can express.

vectorbt cannot run a Python policy bar by bar, so a scenario is handed to it
as the arrays its policy acts on, computed from the bars alone (never from
mlbacktest's output):

- target-quantity policies: ``Portfolio.from_orders(size_type="targetamount")``
- target-percent rebalancing: ``from_orders(size_type="targetpercent")`` valued
  at the decision bar's close (``val_price``), ``call_seq="auto"`` (sells first)
- market entries with a stop-loss / take-profit exit: ``from_signals`` with
  ``sl_stop`` / ``tp_stop`` measured from the entry fill price, checked
  against each bar's open, high and low.

A decision taken on bar *k* is an order on row *k + 1* priced at that row's
open (vectorbt fills an order at the price it is given, on its own row), which
is mlbacktest's next-open fill. Scenarios vectorbt cannot express are skipped
with the reason (also listed in docs/parity.md).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import pytest
import vectorbt as vbt

from .scenarios import (
    PENDING,
    SCENARIOS,
    Bars,
    EngineRun,
    EntryExitPolicy,
    Fill,
    PercentPolicy,
    Scenario,
    TargetPolicy,
    assert_parity,
    parametrized,
    run_mlbacktest,
)


def _frame(arr: np.ndarray, bars: Bars) -> pd.DataFrame:
    return pd.DataFrame(arr, index=pd.DatetimeIndex(bars.dates), columns=list(bars.assets))


def _next_row(arr: np.ndarray, empty: Any) -> np.ndarray:
    """What was decided on bar k, as the order of row k + 1."""
    out = np.full(arr.shape, empty, dtype=arr.dtype)
    out[1:] = arr[:-1]
    return out


def run_vectorbt(sc: Scenario) -> EngineRun:
    bars = sc.bars
    policy = sc.make_policy(bars)
    c = sc.costs
    common: dict[str, Any] = dict(
        close=_frame(bars.close, bars),
        price=_frame(bars.open, bars),
        init_cash=sc.initial_cash,
        cash_sharing=True,
        group_by=True,
        fees=c.commission_rate,
        slippage=c.slippage_bps / 1e4,
        size_granularity=np.nan if sc.fractional else 1.0,
        freq="1D",
    )
    if isinstance(policy, TargetPolicy):
        pf = vbt.Portfolio.from_orders(
            size=_frame(_next_row(policy.targets, np.nan), bars),
            size_type="targetamount",
            direction="both",
            call_seq="auto",
            **common,
        )
    elif isinstance(policy, PercentPolicy):
        pf = vbt.Portfolio.from_orders(
            size=_frame(_next_row(policy.weights, np.nan), bars),
            size_type="targetpercent",
            val_price=_frame(_next_row(bars.close, np.nan), bars),
            direction="both",
            call_seq="auto",
            **common,
        )
    elif isinstance(policy, EntryExitPolicy):
        nan = np.nan
        pf = vbt.Portfolio.from_signals(
            entries=_frame(_next_row(policy.long_sig, False), bars),
            short_entries=_frame(_next_row(policy.short_sig, False), bars),
            open=_frame(bars.open, bars),
            high=_frame(bars.high, bars),
            low=_frame(bars.low, bars),
            size=np.broadcast_to(policy.qty, bars.close.shape),
            size_type="amount",
            sl_stop=nan if policy.stop_loss is None else policy.stop_loss,
            tp_stop=nan if policy.take_profit is None else policy.take_profit,
            stop_entry_price="fillprice",
            stop_exit_price="stopmarket",
            upon_opposite_entry="ignore",
            accumulate=False,
            **common,
        )
    else:  # pragma: no cover - every other scenario carries a vectorbt_skip reason
        raise TypeError(f"no vectorbt expression for {type(policy).__name__}")
    rec = pf.orders.values
    sign = np.where(rec["side"] == 0, 1.0, -1.0)
    fills = [
        Fill(int(i), int(col), float(s * q), float(p), float(fee))
        for i, col, q, p, fee, s in zip(
            rec["idx"], rec["col"], rec["size"], rec["price"], rec["fees"], sign, strict=True
        )
    ]
    equity = np.asarray(pf.value(), dtype=float).ravel()
    return EngineRun("vectorbt", fills, equity, float(equity[-1]))


@pytest.mark.parametrize("name", parametrized())
def test_matches_vectorbt(name: str) -> None:
    sc = {**SCENARIOS, **PENDING}[name]
    if sc.vectorbt_skip:
        pytest.skip(sc.vectorbt_skip)
    ours = run_mlbacktest(name)
    theirs = run_vectorbt(sc)
    assert ours.fills, "the scenario made no fills"
    assert_parity(theirs, ours, sc.bars)
