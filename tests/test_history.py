"""Point-in-time history: history() and history_panel() end at the current bar."""

from __future__ import annotations

import datetime as dt
import math

import numpy as np
import polars as pl
import pytest
from helpers import Scripted, bars, day, run

import mlbacktest
from mlbacktest import BacktestConfig, OrderError, PolarsDataFeed, Strategy
from mlbacktest.data.synthetic import synthetic_bars

NAN = math.nan


def _bar(c: float) -> tuple[float, float, float, float]:
    return (c, c + 1, c - 1, c)


# A ragged panel: B starts late and skips day 3, C ends early.
CLOSES = {
    "A": [100.0, 101.0, 102.0, 103.0, 104.0, 105.0],
    "B": [None, 50.0, 51.0, None, 53.0, 54.0],
    "C": [10.0, 11.0, 12.0, 13.0, None, None],
}
PRED = {"A": [0.1, 0.2, 0.3, 0.4, 0.5, 0.6], "B": [None, -1.0, -2.0, None, None, -4.0],
        "C": [5.0, 6.0, 7.0, 8.0, None, None]}


def _data() -> pl.DataFrame:
    return bars({a: [None if c is None else _bar(c) for c in cl] for a, cl in CLOSES.items()},
                signals={"pred": PRED})


def _expected(field: dict, i: int, n: int, assets=("A", "B", "C")) -> list[list[float]]:
    rows = range(max(0, i - n + 1), i + 1)
    return [[NAN if field[a][k] is None else field[a][k] for a in assets] for k in rows]


def _same(got: np.ndarray, want: list[list[float]]) -> bool:
    return got.shape == (len(want), len(want[0]) if want else got.shape[1]) and bool(
        np.array_equal(got, np.array(want, dtype=float).reshape(got.shape), equal_nan=True))


def test_panel_ends_at_the_current_bar_with_nan_where_no_bar():
    seen = []

    def check(s, v):
        i = s.step_index
        p = s.history_panel("close", 3)
        assert _same(p, _expected(CLOSES, i, 3)), (i, p)
        assert not p.flags.writeable
        with pytest.raises(ValueError):
            p[0, 0] = 1.0
        times = s.history_timestamps(3)
        assert times.dtype == np.dtype("datetime64[ns]")
        assert [t.astype("datetime64[us]").item() for t in times] == [
            day(k) for k in range(max(0, i - 2), i + 1)]
        assert not times.flags.writeable
        # A long window: every timestamp so far.
        assert _same(s.history_panel("close", 100), _expected(CLOSES, i, 100))
        seen.append(i)

    run(_data(), Scripted({i: check for i in range(6)}))
    assert seen == list(range(6))


def test_panel_of_a_signal_and_of_chosen_assets_in_their_order():
    def check(s, v):
        i = s.step_index
        assert _same(s.history_panel("pred", 2), _expected(PRED, i, 2))
        assert _same(s.history_panel("close", 4, assets=["C", "A"]),
                     _expected(CLOSES, i, 4, ("C", "A")))
        assert _same(s.history_panel("close", 4, assets=[2, 0]),
                     _expected(CLOSES, i, 4, ("C", "A")))
        # Duplicated columns are each filled.
        assert _same(s.history_panel("close", 2, assets=["B", "B"]),
                     _expected(CLOSES, i, 2, ("B", "B")))
        # A slice view aligns the columns with its bars.
        p = s.history_panel("close", 2, assets=v)
        assert _same(p, _expected(CLOSES, i, 2, tuple(v.assets)))
        assert p[-1].tolist() == v.close.tolist()

    run(_data(), Scripted({i: check for i in range(6)}))


def test_panel_in_on_start_is_empty_and_history_is_empty():
    seen = {}

    def start(s):
        seen["panel"] = s.history_panel("close", 5)
        seen["times"] = s.history_timestamps(5)
        seen["hist"] = s.history("A", "close", 5)

    run(_data(), Scripted(start=start))
    assert seen["panel"].shape == (0, 3) and not seen["panel"].flags.writeable
    assert seen["times"].shape == (0,)
    assert seen["hist"].shape == (0,)


@pytest.mark.parametrize("n", [0, -1, 2.0, True, "3", None])
def test_bad_n_is_a_value_error_at_the_call(n):
    errors = []

    def attempt(s, v):
        for call in (lambda: s.history_panel("close", n), lambda: s.history("A", "close", n),
                     lambda: s.history_timestamps(n)):
            with pytest.raises(ValueError, match="n > 0"):
                call()
        errors.append("ok")

    run(_data(), Scripted({1: attempt}))
    assert errors == ["ok"]


def test_unknown_field_or_asset_is_an_error_at_the_call():
    errors = []

    def attempt(s, v):
        for field in ("vwap", "Close", 3, None):
            with pytest.raises(ValueError, match="unknown history field"):
                s.history_panel(field, 2)
        with pytest.raises(ValueError, match="unknown history field 'vwap'"):
            s.history("A", "vwap", 2)
        with pytest.raises(OrderError, match="unknown asset"):
            s.history_panel("close", 2, assets=["A", "ZZZ"])
        with pytest.raises(OrderError, match="unknown asset id 7"):
            s.history_panel("close", 2, assets=[0, 7])
        with pytest.raises(ValueError, match="sequence"):
            s.history_panel("close", 2, assets="A")
        errors.append("ok")

    run(_data(), Scripted({2: attempt}))
    assert errors == ["ok"]


def test_panel_in_a_timer_between_bars_ends_at_the_last_bar_before_it():
    seen = []

    class Timer(Strategy):
        def on_start(self):
            self.schedule_at(self.look, day(2) + dt.timedelta(hours=12))

        def look(self, context):
            seen.append((self.now, self.history_panel("close", 2).tolist(),
                         list(self.history_timestamps(2))))

    run(_data(), Timer())
    (now, panel, times), = seen
    assert now == day(2) + dt.timedelta(hours=12)
    assert _same(np.array(panel), _expected(CLOSES, 2, 2))
    assert times == [np.datetime64(day(1), "ns"), np.datetime64(day(2), "ns")]


def test_rows_are_the_timestamps_of_every_feed():
    daily = bars({"A": [_bar(100), _bar(101), _bar(102)]})
    # A second feed with bars at noon on days 0 and 1 for asset N.
    noon = pl.DataFrame({
        "timestamp": [day(0) + dt.timedelta(hours=12), day(1) + dt.timedelta(hours=12)],
        "asset": ["N", "N"], "open": [7.0, 8.0], "high": [7.0, 8.0], "low": [7.0, 8.0],
        "close": [7.0, 8.0], "volume": [1e6, 1e6],
    }).with_columns(pl.col("timestamp").cast(pl.Datetime("ns")))
    seen = []

    class Look(Strategy):
        def on_slice(self, view, context):
            seen.append((self.now, self.history_panel("close", 10).tolist()))

    feeds = [PolarsDataFeed(daily), PolarsDataFeed(noon)]
    mlbacktest.BacktestEngine(feeds, Look(), BacktestConfig()).run()
    last_now, last = seen[-1]
    assert last_now == day(2)
    assert _same(np.array(last), [[100, NAN], [NAN, 7], [101, NAN], [NAN, 8], [102, NAN]])
    # At noon on day 0, the panel has day 0 and the noon row only.
    assert seen[1][0] == day(0) + dt.timedelta(hours=12)
    assert _same(np.array(seen[1][1]), [[100, NAN], [NAN, 7]])


class _Recorder(Strategy):
    """Records every history call's result up to a cutoff and trades on it."""

    def __init__(self):
        self.log = []

    def on_slice(self, view, context):
        p = self.history_panel("close", 3)
        q = self.history_panel("pred", 2, assets=view)
        h = self.history(view.assets[0], "close", 4)
        self.log.append((self.now, p.copy(), q.copy(), h.copy()))
        score = np.nan_to_num(q[-1])
        if len(view) >= 2:
            w = np.where(score > np.median(score), 0.2, -0.2)
            self.rebalance(w)


def test_rows_after_now_cannot_change_what_a_strategy_saw():
    """Replace every bar after t by garbage: every history result and order up to t is unchanged."""
    frame = synthetic_bars(n_assets=6, n_bars=40, seed=3, late_start=True)
    cut = frame["timestamp"].unique().sort()[25]
    rng = np.random.default_rng(0)
    later = frame["timestamp"] > cut
    garbage = frame.with_columns(
        pl.when(later).then(pl.lit(rng.uniform(1, 1000))).otherwise(pl.col(c)).alias(c)
        for c in ("open", "high", "low", "close")
    ).with_columns(pl.when(later).then(pl.lit(9.0)).otherwise(pl.col("pred")).alias("pred"))
    garbage = garbage.with_columns(
        pl.max_horizontal("open", "high", "low", "close").alias("high"),
        pl.min_horizontal("open", "high", "low", "close").alias("low"),
    )
    a, b = _Recorder(), _Recorder()
    # a margin account: the strategy is long-short
    ra = mlbacktest.run_backtest(frame, a, signal_columns=["pred"], config={"account": "margin"})
    rb = mlbacktest.run_backtest(garbage, b, signal_columns=["pred"], config={"account": "margin"})
    upto = [x for x in a.log if x[0] <= cut]
    assert len(upto) == 26
    assert not np.array_equal(a.log[-1][1], b.log[-1][1], equal_nan=True)  # the garbage is seen
    for x, y in zip(upto, b.log, strict=False):
        assert x[0] == y[0]
        for u, v in zip(x[1:], y[1:], strict=True):
            assert np.array_equal(u, v, equal_nan=True)
    cols = ("order_id", "timestamp", "asset", "quantity")
    oa = ra.orders.filter(pl.col("timestamp") <= cut).select(cols)
    ob = rb.orders.filter(pl.col("timestamp") <= cut).select(cols)
    assert oa.height > 0
    assert oa.equals(ob)
