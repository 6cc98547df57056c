"""Parity with vectorbt, for the scenarios vectorbt can express.

vectorbt cannot run a Python policy bar by bar, so a scenario is handed to it
as the arrays its policy acts on, computed from the bars alone (never from
mlbacktest's output):

- target-quantity policies: ``Portfolio.from_orders(size_type="targetamount")``
- target-percent rebalancing: ``from_orders(size_type="targetpercent")`` valued
  at the decision bar's close (``val_price``), ``call_seq="auto"`` (sells first)
- market entries with a stop-loss / take-profit exit: ``from_signals`` with
  ``sl_stop`` / ``tp_stop`` measured from the entry fill price, checked
  against each bar's open, high and low
- bracket entries (levels fixed at the decision close): ``from_signals`` with
  per-entry ``sl_stop`` / ``tp_stop`` arrays, each the distance from the entry
  price (the next open) to the bracket's level.

Two timing conventions:

- next-open scenarios (mlbacktest ``preset("backtrader")``, the run backtrader
  is compared with too): a decision taken on bar *k* is an order on row
  *k + 1* priced at that row's open;
- close-price scenarios (mlbacktest ``preset("vectorbt")``): vectorbt's
  defaults, the order on row *k* at ``price=close``; mlbacktest warns
  (``LookAheadWarning``) for that preset.

Slippage of a currency amount per share (``set_slippage_fixed``) is given to
vectorbt as its fractional ``slippage`` per element: ``amount / price``.
Scenarios vectorbt cannot express are skipped with the reason (also listed in
docs/parity.md).
"""

from __future__ import annotations

import contextlib
import datetime as dt
from typing import Any

import numpy as np
import pandas as pd
import pytest
import vectorbt as vbt

from mlbacktest import LookAheadWarning

from .scenarios import (
    SCENARIOS,
    Bars,
    BracketPolicy,
    EngineRun,
    EntryExitPolicy,
    Fill,
    PercentPolicy,
    Scenario,
    TargetPolicy,
    assert_parity,
    mlbacktest_config,
    run_mlbacktest,
    run_mlbacktest_with,
)


def _frame(arr: np.ndarray, bars: Bars) -> pd.DataFrame:
    return pd.DataFrame(arr, index=pd.DatetimeIndex(bars.dates), columns=list(bars.assets))


def _next_row(arr: np.ndarray, empty: Any) -> np.ndarray:
    """What was decided on bar k, as the order of row k + 1."""
    out = np.full(arr.shape, empty, dtype=arr.dtype)
    out[1:] = arr[:-1]
    return out


def _same_row(arr: np.ndarray, empty: Any) -> np.ndarray:
    """What was decided on bar k, as the order of row k (vectorbt's default timing)."""
    return arr


def _bracket_stops(
    policy: BracketPolicy, bars: Bars, price: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """``sl_stop`` / ``tp_stop`` per entry row: the distance from the entry price to the level.

    The bracket decided on bar k has absolute levels from close[k]; its entry
    fills on row k + 1 at ``price`` (the open), from which vectorbt measures
    ``price × (1 ∓ stop)``. A level on the wrong side of the entry price (a gap
    through it at the entry's open) has no vectorbt distance: refused.
    """
    close, sl, tp = bars.close, policy.stop_loss, policy.take_profit
    long_sl, long_tp = close * (1 - sl), close * (1 + tp)
    short_sl, short_tp = close * (1 + sl), close * (1 - tp)
    ls, ss = _next_row(policy.long_sig, False), _next_row(policy.short_sig, False)
    sl_stop = np.full(close.shape, np.nan)
    tp_stop = np.full(close.shape, np.nan)
    sl_stop[ls] = (1 - _next_row(long_sl, np.nan) / price)[ls]
    tp_stop[ls] = (_next_row(long_tp, np.nan) / price - 1)[ls]
    sl_stop[ss] = (_next_row(short_sl, np.nan) / price - 1)[ss]
    tp_stop[ss] = (1 - _next_row(short_tp, np.nan) / price)[ss]
    used = ls | ss
    if (sl_stop[used] < 0).any() or (tp_stop[used] < 0).any():
        raise ValueError("a bracket level is gapped through at its entry: no vectorbt distance")
    return sl_stop, tp_stop


def run_vectorbt(sc: Scenario, bars: Bars | None = None) -> EngineRun:
    """Run scenario ``sc`` (on ``bars`` if given) through vectorbt."""
    bars = sc.bars if bars is None else bars
    policy = sc.make_policy(bars)
    c = sc.costs
    if sc.preset == "backtrader":  # next-open fills
        shift, price = _next_row, bars.open
    elif sc.preset == "vectorbt":  # vectorbt's default price=close (passed explicitly)
        shift, price = _same_row, bars.close
    else:  # pragma: no cover
        raise ValueError(sc.preset)
    slippage: Any = c.slippage_bps / 1e4
    if c.slippage_fixed:  # a currency amount per share, as vectorbt's fraction of the price
        slippage = _frame(c.slippage_bps / 1e4 + c.slippage_fixed / price, bars)
    common: dict[str, Any] = dict(
        close=_frame(bars.close, bars),
        init_cash=sc.initial_cash,
        cash_sharing=True,
        group_by=True,
        fees=c.commission_rate,
        slippage=slippage,
        size_granularity=np.nan if sc.fractional else 1.0,
        freq="1D",
        price=_frame(price, bars),
    )
    if isinstance(policy, TargetPolicy):
        pf = vbt.Portfolio.from_orders(
            size=_frame(shift(policy.targets, np.nan), bars),
            size_type="targetamount",
            direction="both",
            call_seq="auto",
            **common,
        )
    elif isinstance(policy, PercentPolicy):
        if sc.preset == "backtrader":
            common["val_price"] = _frame(_next_row(bars.close, np.nan), bars)
        pf = vbt.Portfolio.from_orders(
            size=_frame(shift(policy.weights, np.nan), bars),
            size_type="targetpercent",
            direction="both",
            call_seq="auto",
            **common,
        )
    elif isinstance(policy, (EntryExitPolicy, BracketPolicy)):
        nan = np.nan
        if isinstance(policy, BracketPolicy):
            if sc.preset != "backtrader":  # pragma: no cover
                raise ValueError("bracket levels are computed for next-open entries")
            sl_arr, tp_arr = _bracket_stops(policy, bars, price)
            stops = dict(
                sl_stop=_frame(sl_arr, bars),
                tp_stop=_frame(tp_arr, bars),
                stop_entry_price="price",
            )
        else:
            # Distances as full arrays, like the bracket's: one compiled simulator for all.
            sl = nan if policy.stop_loss is None else policy.stop_loss
            tp = nan if policy.take_profit is None else policy.take_profit
            stops = dict(
                sl_stop=_frame(np.full(bars.close.shape, sl), bars),
                tp_stop=_frame(np.full(bars.close.shape, tp), bars),
                stop_entry_price="fillprice",
            )
        pf = vbt.Portfolio.from_signals(
            entries=_frame(shift(policy.long_sig, False), bars),
            short_entries=_frame(shift(policy.short_sig, False), bars),
            open=_frame(bars.open, bars),
            high=_frame(bars.high, bars),
            low=_frame(bars.low, bars),
            size=np.broadcast_to(policy.qty, bars.close.shape),
            size_type="amount",
            stop_exit_price="stopmarket",
            upon_opposite_entry="ignore",
            accumulate=False,
            **stops,
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


@pytest.mark.parametrize("name", list(SCENARIOS))
def test_matches_vectorbt(name: str) -> None:
    sc = SCENARIOS[name]
    if sc.vectorbt_skip:
        pytest.skip(sc.vectorbt_skip)
    look_ahead = sc.preset == "vectorbt"  # fill_at="close": the config warns
    with pytest.warns(LookAheadWarning, match="look-ahead") if look_ahead else _no_warning():
        ours = run_mlbacktest(name)
    theirs = run_vectorbt(sc)
    assert ours.fills, "the scenario made no fills"
    assert_parity(theirs, ours, sc.bars)


def _no_warning() -> Any:
    return contextlib.nullcontext()


# =========================================================================== known differences
# Minimal cases where ``preset("vectorbt")`` does not reproduce vectorbt (docs/parity.md,
# "Known differences"), run through the harness on four or five hand-written bars of
# one asset: buy 10 on a signal bar while flat (filled at that close), then a 5 %
# stop-loss and, in the second case, a 10 % take-profit (OCO, stop placed first).
# Strict xfails: when the preset learns vectorbt's rule they pass; then update the
# docs and drop ``skip_exit_bar`` from the close_stop_take scenario.
_KNOWN: dict[str, tuple[list[list[float]], list[bool], float | None]] = {
    # the stop at 95 trades on bar 2, which also has an entry signal: vectorbt's stop
    # exit takes the row and drops the signal; mlbacktest (same_bar_reentry=False)
    # holds the entry to bar 3 and fills it at that bar's close.
    "entry_signal_on_stop_bar": (
        [
            [100, 101, 99, 100],
            [100, 101, 99, 100],
            [99, 100, 94, 96],
            [97, 98, 96, 97],
            [97, 98, 96, 97],
        ],
        [True, False, True, False, False],
        None,
    ),
    # long from 100; bar 2 reaches both the take-profit (110) and the stop-loss (95):
    # vectorbt checks the stop-loss first, the preset's "ohlc" path reaches the high first.
    "stop_loss_and_take_profit_on_one_bar": (
        [[100, 101, 99, 100], [100, 101, 99, 100], [100, 111, 94, 100], [100, 101, 99, 100]],
        [True, False, False, False],
        0.10,
    ),
}


@pytest.mark.xfail(
    raises=AssertionError,
    strict=True,
    reason="known difference of preset('vectorbt'), docs/parity.md",
)
@pytest.mark.parametrize("case", list(_KNOWN))
def test_vectorbt_preset_known_difference(case: str) -> None:
    ohlc, signals, tp = _KNOWN[case]
    a = np.array(ohlc, dtype=float)
    n = len(a)
    # A second, idle asset: vectorbt then reuses the simulator compiled for the
    # scenarios (a one-column run compiles another, ~5 s).
    o, h, lo, c = (np.repeat(a[:, [j]], 2, axis=1) for j in range(4))
    bars = Bars(
        tuple(dt.datetime(2020, 1, 1) + dt.timedelta(days=k) for k in range(n)),
        ("X", "Y"),
        o,
        h,
        lo,
        c,
        np.zeros((n, 2)),
    )
    sig = np.zeros((n, 2), dtype=bool)
    sig[:, 0] = signals

    def make(b: Bars) -> EntryExitPolicy:
        return EntryExitPolicy(
            b, sig, np.zeros_like(sig), np.full(2, 10.0), stop_loss=0.05, take_profit=tp
        )

    sc = Scenario(case, case, (), make, initial_cash=10_000.0, fractional=True, preset="vectorbt")
    with pytest.warns(LookAheadWarning, match="look-ahead"):
        config = mlbacktest_config(sc)
    ours = run_mlbacktest_with(sc, config, bars)
    theirs = run_vectorbt(sc, bars)
    assert_parity(theirs, ours, bars)
