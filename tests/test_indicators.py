"""Causal indicators: hand-computed values, agreement with backtrader, truncation, chunking,
and the ways of reading them (on_market_data, on_slice, history) agreeing with each other.

Bad declarations (names, windows, inputs, cycles, look-ahead) are refused in
tests/test_order_errors.py, section "indicator declarations".
"""

from __future__ import annotations

import datetime as dt
import math

import numpy as np
import polars as pl
import pytest
from conftest import examples
from hypothesis import given, settings
from hypothesis import strategies as st

from mlbacktest import BacktestConfig, BacktestEngine, ParquetDataFeed, PolarsDataFeed, Strategy
from mlbacktest import indicators as ind
from mlbacktest._events import BarStore
from mlbacktest.indicators import IndicatorPlan

X = [10.0, 11.0, 13.0, 12.0, 14.0, 15.0, 11.0]
NAN = math.nan


def _store(close, asset=None, ts=None, high=None, low=None, signals=None, names=("A",)):
    close = np.asarray(close, dtype=np.float64)
    n = close.size
    asset = np.zeros(n, np.int32) if asset is None else np.asarray(asset, np.int32)
    ts = np.arange(n, dtype=np.int64) if ts is None else np.asarray(ts, np.int64)
    high = close + 1.0 if high is None else np.asarray(high, np.float64)
    low = close - 1.0 if low is None else np.asarray(low, np.float64)
    sig = np.empty((n, 0)) if signals is None else np.asarray(signals, np.float64).reshape(n, -1)
    sig_names = () if signals is None else ("s",)
    return BarStore(ts, asset, close, high, low, close, np.ones(n), sig, list(names),
                    list(sig_names))


def _values(decls, store, signal_names=()):
    plan = IndicatorPlan(list(decls), signal_names, store.n_assets)
    plan.compute(store)
    return {n: store.indicator_array[store.indicator_index[n]] for n in store.indicator_names}


def _close(a, b):
    np.testing.assert_allclose(np.asarray(a, float), np.asarray(b, float), rtol=1e-14,
                               atol=1e-12, equal_nan=True)


# ----------------------------------------------------------------- golden values
S14, S23, S26 = math.sqrt(14), math.sqrt(2 / 3), math.sqrt(26)
GOLDEN = {
    "sma": (ind.SMA("close", 3), [NAN, NAN, 34 / 3, 12, 13, 41 / 3, 40 / 3]),
    "sum": (ind.Sum("close", 3), [NAN, NAN, 34, 36, 39, 41, 40]),
    "hi": (ind.Highest("close", 3), [NAN, NAN, 13, 13, 14, 15, 15]),
    "lo": (ind.Lowest("close", 3), [NAN, NAN, 10, 11, 12, 12, 11]),
    "std": (ind.StdDev("close", 3), [NAN, NAN, S14 / 3, S23, S23, S14 / 3, S26 / 3]),
    "std1": (ind.StdDev("close", 3, ddof=1),
             [NAN, NAN] + [v * math.sqrt(1.5) for v in (S14 / 3, S23, S23, S14 / 3, S26 / 3)]),
    "z": (ind.ZScore("close", 3), [NAN, NAN, 5 / S14, 0, 1 / S23, 4 / S14, -7 / S26]),
    "roc": (ind.ROC("close", 2), [NAN, NAN, 0.3, 1 / 11, 1 / 13, 0.25, -3 / 14]),
    "mom": (ind.Momentum("close", 2), [NAN, NAN, 3, 1, 1, 3, -3]),
    # alpha = 2 / (3 + 1) = 0.5, seeded with the mean of the first 3
    "ema": (ind.EMA("close", 3), [NAN, NAN, 34 / 3, 35 / 3, 77 / 6, 167 / 12, 299 / 24]),
    # moves +1 +2 -1 +2 +1 -4; Wilder (alpha 1/3) seeded with the mean of the first 3 moves
    "rsi": (ind.RSI("close", 3), [NAN, NAN, NAN, 75, 100 - 100 / 7, 100 - 100 / 9.25,
                                  100 - 5800 / 91]),
    # high = close + 1, low = close - 1: true ranges 2 3 2 3 2 5 from the second bar
    "atr": (ind.ATR(3), [NAN, NAN, NAN, 7 / 3, 23 / 9, 64 / 27, 263 / 81]),
}


@pytest.mark.parametrize("name", sorted(GOLDEN))
def test_hand_computed_values(name):
    spec, expected = GOLDEN[name]
    got = _values([(name, spec)], _store(X))[name]
    _close(got, expected)


def test_bollinger_bands_are_named_outputs():
    got = _values([("bb", ind.Bollinger("close", 3, k=2.0))], _store(X))
    assert list(got) == ["bb.mid", "bb.upper", "bb.lower"]
    std = np.array([NAN, NAN, S14 / 3, S23, S23, S14 / 3, S26 / 3])
    mid = np.array(GOLDEN["sma"][1])
    _close(got["bb.mid"], mid)
    _close(got["bb.upper"], mid + 2 * std)
    _close(got["bb.lower"], mid - 2 * std)


def test_crossover_counts_a_touch_then_a_cross_once():
    a = [1.0, 2.0, 3.0, 3.0, 2.0, 1.0, 2.0]
    got = _values([("x", ind.CrossOver("close", 2.0))], _store(a))["x"]
    _close(got, [NAN, 0, 1, 0, 0, -1, 0])


def test_arithmetic_and_comparisons_between_series():
    sma = ind.SMA("close", 3)
    got = _values([("sma", sma), ("spread", sma - ind.Lowest("close", 3)),
                   ("above", ind.Column("close") > "sma"),
                   ("scaled", 2 * sma / 4 + 1), ("neg", -sma)], _store(X))
    mid = np.array(GOLDEN["sma"][1])
    _close(got["spread"], mid - np.array(GOLDEN["lo"][1]))
    _close(got["above"], [NAN, NAN, 1, 0, 1, 1, 0])
    _close(got["scaled"], 2 * mid / 4 + 1)
    _close(got["neg"], -mid)


def test_nested_indicators_and_indicators_by_name():
    got = _values([("fast", ind.SMA("close", 2)), ("slow", ind.SMA("fast", 2)),
                   ("fs", ind.EMA(ind.SMA("close", 2), 2))], _store(X))
    fast = [NAN, 10.5, 12, 12.5, 13, 14.5, 13]
    _close(got["fast"], fast)
    _close(got["slow"], [NAN, NAN, 11.25, 12.25, 12.75, 13.75, 13.75])
    # EMA(2) of fast: seed (10.5 + 12) / 2 at bar 2, then alpha 2/3
    e2 = 11.25
    e3 = e2 / 3 + 12.5 * 2 / 3
    _close(got["fs"][:4], [NAN, NAN, e2, e3])


def test_a_nan_input_restarts_the_warm_up():
    x = [1.0, 2.0, 3.0, NAN, 4.0, 5.0, 6.0, 7.0]
    got = _values([("sma", ind.SMA("close", 2)), ("ema", ind.EMA("close", 2)),
                   ("rsi", ind.RSI("close", 2)), ("mom", ind.Momentum("close", 1))],
                  _store(x))
    _close(got["sma"], [NAN, 1.5, 2.5, NAN, NAN, 4.5, 5.5, 6.5])
    _close(got["ema"][:6], [NAN, 1.5, 1.5 / 3 + 2, NAN, NAN, 4.5])
    _close(got["rsi"], [NAN, NAN, 100, NAN, NAN, NAN, 100, 100])
    _close(got["mom"], [NAN, 1, 1, NAN, NAN, 1, 1, 1])


def test_rsi_is_50_when_nothing_moves_and_zscore_nan_on_a_flat_window():
    got = _values([("rsi", ind.RSI("close", 2)), ("z", ind.ZScore("close", 2)),
                   ("sd", ind.StdDev("close", 3))], _store([0.1] * 5))
    _close(got["rsi"], [NAN, NAN, 50, 50, 50])
    assert np.isnan(got["z"]).all()
    assert np.array_equal(got["sd"], [NAN, NAN, 0.0, 0.0, 0.0], equal_nan=True)  # exactly 0


def test_running_sum_of_a_million_bars_stays_within_1e_15_of_the_exact_window_mean():
    # SMA and Sum keep a compensated (Neumaier) running sum: measure its drift against the
    # exact mean of each window (math.fsum, one rounding) over 1e6 bars of a random walk.
    rng = np.random.default_rng(2026)
    n, w = 1_000_000, 30
    close = 100.0 * np.exp(np.cumsum(rng.normal(0.0, 0.01, n)))
    got = _values([("m", ind.SMA("close", w)), ("s", ind.Sum("close", 7))], _store(close))
    assert np.isnan(got["m"][:w - 1]).all() and np.isfinite(got["m"][w - 1:]).all()
    idx = np.unique(np.concatenate((np.arange(w - 1, n, 499), np.arange(n - 2_000, n))))
    exact = np.array([math.fsum(close[i - w + 1:i + 1]) / w for i in idx])
    drift = np.abs(got["m"][idx] - exact) / np.abs(exact)
    assert drift.max() <= 1e-15, drift.max()
    exact7 = np.array([math.fsum(close[i - 6:i + 1]) for i in idx])
    assert (np.abs(got["s"][idx] - exact7) / exact7).max() <= 1e-15


def test_an_infinite_value_gives_inf_while_in_the_window_then_the_exact_sum_again():
    x = [1.0, 2.0, math.inf, 4.0, 5.0, 6.0, -math.inf, math.inf, 7.0, 8.0, 9.0]
    got = _values([("s", ind.Sum("close", 3)), ("m", ind.SMA("close", 2))], _store(x))
    _close(got["s"], [NAN, NAN, math.inf, math.inf, math.inf, 15, -math.inf, NAN, NAN,
                      math.inf, 24])
    _close(got["m"], [NAN, 1.5, math.inf, math.inf, 4.5, 5.5, -math.inf, NAN, math.inf, 7.5,
                      8.5])


def test_finite_values_whose_sum_overflows_are_summed_again_once_it_fits():
    big = 1e308
    got = _values([("s", ind.Sum("close", 2))], _store([big, big, 1.0, 2.0, 3.0]))["s"]
    _close(got, [NAN, math.inf, big + 1.0, 3.0, 5.0])


def test_each_asset_runs_on_its_own_bars_in_time_order_whatever_the_row_order():
    rng = np.random.default_rng(4)
    n = 60
    asset = rng.integers(0, 3, n).astype(np.int32)
    ts = rng.permutation(n).astype(np.int64)  # rows not in time order
    close = 100 + rng.standard_normal(n).cumsum()
    decls = [("s", ind.SMA("close", 4)), ("r", ind.RSI("close", 3))]
    got = _values(decls, _store(close, asset, ts, names=("A", "B", "C")))
    for a in range(3):
        rows = np.flatnonzero(asset == a)
        rows = rows[np.argsort(ts[rows])]
        alone = _values([("s", ind.SMA("close", 4)), ("r", ind.RSI("close", 3))],
                        _store(close[rows]))
        assert np.array_equal(got["s"][rows], alone["s"], equal_nan=True)
        assert np.array_equal(got["r"][rows], alone["r"], equal_nan=True)


def test_custom_indicator_over_whole_columns():
    def spread(c, h):
        return h - c

    got = _values([("c", ind.Custom(lambda x: np.cumsum(x), name="cum")),
                   ("d", ind.Custom(spread, "close", "high"))], _store(X))
    _close(got["c"], np.cumsum(X))
    _close(got["d"], [1.0] * len(X))


# ----------------------------------------------------------------- truncation (causality)
def _every_kernel():
    fast = ind.SMA("close", 3)
    slow = ind.EMA("close", 5)
    bb = ind.Bollinger("close", 4, k=1.5)
    return [
        ("sma", fast), ("ema", slow), ("std", ind.StdDev("close", 4, ddof=1)),
        ("hi", ind.Highest("close", 3)), ("lo", ind.Lowest("close", 3)),
        ("sum", ind.Sum("close", 3)), ("rsi", ind.RSI("close", 4)), ("atr", ind.ATR(3)),
        ("bb", bb), ("roc", ind.ROC("close", 2)), ("mom", ind.Momentum("close", 3)),
        ("x", ind.CrossOver(fast, slow)), ("z", ind.ZScore("close", 4)),
        ("nested", ind.RSI(ind.SMA(ind.EMA("close", 2), 3), 3)),
        ("arith", (fast - slow) / ind.StdDev("close", 3) > 0.5),
        ("band", ind.CrossOver("close", bb.upper)),
        ("cust", ind.Custom(lambda x: np.maximum.accumulate(x), lookback=None)),
        ("cust2", ind.Custom(lambda a, b: a * 2 - b, "sma", "close")),
    ]


@settings(max_examples=examples(40), deadline=None)
@given(
    data=st.lists(st.one_of(st.floats(50, 150), st.just(NAN)), min_size=2, max_size=60),
    n_assets=st.integers(1, 3),
    seed=st.integers(0, 2**16),
    frac=st.floats(0.0, 1.0),
)
def test_values_on_the_first_k_bars_equal_the_full_runs_first_k_bit_for_bit(
        data, n_assets, seed, frac):
    rng = np.random.default_rng(seed)
    n = len(data)
    close = np.asarray(data)
    high = close + rng.uniform(0, 2, n)
    low = close - rng.uniform(0, 2, n)
    asset = rng.integers(0, n_assets, n).astype(np.int32)
    names = tuple(f"A{i}" for i in range(n_assets))
    full = _values(_every_kernel(), _store(close, asset, None, high, low, names=names))
    k = max(1, int(frac * n))
    part = _values(_every_kernel(), _store(close[:k], asset[:k], None, high[:k], low[:k],
                                           names=names))
    for name, values in part.items():
        assert np.array_equal(values, full[name][:k], equal_nan=True), name


# ----------------------------------------------------------------- agreement with backtrader
def _random_bars(n=300, seed=11):
    rng = np.random.default_rng(seed)
    close = 100 * np.exp(np.cumsum(rng.normal(0, 0.01, n)))
    opn = np.concatenate(([100.0], close[:-1]))
    high = np.maximum(opn, close) * (1 + np.abs(rng.normal(0, 0.004, n)))
    low = np.minimum(opn, close) * (1 - np.abs(rng.normal(0, 0.004, n)))
    ts = [dt.datetime(2020, 1, 1) + dt.timedelta(days=i) for i in range(n)]
    return ts, opn, high, low, close


BT_NAMES = ("sma", "ema", "rsi", "atr", "bb.mid", "bb.upper", "bb.lower", "std", "roc",
            "mom", "x", "hi", "lo", "sum")


def _backtrader_values(ts, opn, high, low, close):
    import backtrader as bt
    import pandas as pd

    frame = pd.DataFrame({"open": opn, "high": high, "low": low, "close": close,
                          "volume": 1e6}, index=pd.DatetimeIndex(ts))
    out = {k: [] for k in BT_NAMES}

    class Rec(bt.Strategy):
        def __init__(self):
            d = self.data.close
            fast = bt.ind.SMA(d, period=10)
            self.inds = {
                "sma": fast, "ema": bt.ind.EMA(d, period=12), "rsi": bt.ind.RSI(d, period=14),
                "atr": bt.ind.ATR(self.data, period=14), "std": bt.ind.StdDev(d, period=20),
                "roc": bt.ind.ROC(d, period=5), "mom": bt.ind.Momentum(d, period=5),
                "x": bt.ind.CrossOver(fast, bt.ind.SMA(d, period=30)),
                "hi": bt.ind.Highest(d, period=7), "lo": bt.ind.Lowest(d, period=7),
                "sum": bt.ind.SumN(d, period=6),
            }
            self.bb = bt.ind.BollingerBands(d, period=20, devfactor=2.0)

        def prenext(self):
            self.next()

        def next(self):
            for k, line in self.inds.items():
                out[k].append(line[0])
            out["bb.mid"].append(self.bb.mid[0])
            out["bb.upper"].append(self.bb.top[0])
            out["bb.lower"].append(self.bb.bot[0])

    cerebro = bt.Cerebro(stdstats=False)
    cerebro.adddata(bt.feeds.PandasData(dataname=frame))
    cerebro.addstrategy(Rec)
    cerebro.run()
    return {k: np.asarray(v, dtype=float) for k, v in out.items()}


class Declared(Strategy):
    sma = ind.SMA("close", 10)
    ema = ind.EMA("close", 12)
    rsi = ind.RSI("close", 14)
    atr = ind.ATR(14)
    bb = ind.Bollinger("close", 20, k=2.0)
    std = ind.StdDev("close", 20)
    roc = ind.ROC("close", 5)
    mom = ind.Momentum("close", 5)
    x = ind.CrossOver("sma", ind.SMA("close", 30))
    hi = ind.Highest("close", 7)
    lo = ind.Lowest("close", 7)
    sum = ind.Sum("close", 6)

    def on_start(self):
        self.rec = {k: [] for k in BT_NAMES}

    def on_market_data(self, event, context):
        row = event.indicators
        for k in BT_NAMES:
            self.rec[k].append(row[k])


def test_agrees_with_backtraders_own_indicators():
    pytest.importorskip("backtrader")
    ts, opn, high, low, close = _random_bars()
    expected = _backtrader_values(ts, opn, high, low, close)
    frame = pl.DataFrame({"timestamp": ts, "asset": "A", "open": opn, "high": high, "low": low,
                          "close": close, "volume": 1e6})
    strat = Declared()
    BacktestEngine(PolarsDataFeed(frame), strat, BacktestConfig()).run(progress=False)
    for k in BT_NAMES:
        ours, theirs = np.asarray(strat.rec[k]), expected[k]
        assert ours.shape == theirs.shape, k
        # The same warm-up: NaN exactly where backtrader has no value yet.
        assert np.array_equal(np.isnan(ours), np.isnan(theirs)), k
        assert np.isfinite(ours).sum() > 200, k
        # Rounding only: backtrader seeds with math.fsum and takes the deviation as
        # sqrt(mean(x^2) - mean(x)^2), whose cancellation loses about log10(x^2 / var)
        # ~ 4-5 digits for prices near 100 with a variance near 1, so ~1e-11 relative.
        np.testing.assert_allclose(ours, theirs, rtol=1e-9, atol=1e-9, equal_nan=True,
                                   err_msg=k)
    assert set(np.unique(np.asarray(strat.rec["x"])[30:])) == {-1.0, 0.0, 1.0}


# ----------------------------------------------------------------- streamed runs
ASSETS = ("AAA", "BBB", "CCC")


def _intraday(n_days=12, per_day=6, seed=5):
    rng = np.random.default_rng(seed)
    rows = {k: [] for k in ("timestamp", "asset", "open", "high", "low", "close", "volume",
                            "pred")}
    price = dict.fromkeys(ASSETS, 100.0)
    start = dt.datetime(2024, 1, 1, 9, 30)
    for d in range(n_days):
        for k in range(per_day):
            t = start + dt.timedelta(days=d, minutes=45 * k)
            for a in ASSETS:
                if a == "CCC" and (d < 3 or rng.random() < 0.2):  # late listing and gaps
                    continue
                o = price[a]
                c = o * float(np.exp(rng.normal(0, 0.01)))
                rows["timestamp"].append(t)
                rows["asset"].append(a)
                rows["open"].append(o)
                rows["high"].append(max(o, c) * 1.002)
                rows["low"].append(min(o, c) * 0.998)
                rows["close"].append(c)
                rows["volume"].append(1000.0)
                rows["pred"].append(float(rng.normal()))
                price[a] = c
    return pl.DataFrame(rows).with_columns(pl.col("timestamp").cast(pl.Datetime("us")))


def _mean3(x):
    out = np.full(x.size, np.nan)
    if x.size >= 3:
        out[2:] = (x[2:] + x[1:-1] + x[:-2]) / 3
    return out


class Reader(Strategy):
    """Declares one of everything and records every way of reading it."""

    fast = ind.SMA("close", 4)
    slow = ind.EMA("close", 9)
    cross = ind.CrossOver("fast", "slow")
    bb = ind.Bollinger("close", 6)
    atr = ind.ATR(5)

    def on_start(self):
        self.add_indicator("rsi", ind.RSI("close", 7))
        self.add_indicator("zp", ind.ZScore("pred", 5, ddof=1))
        self.add_indicator("m3", ind.Custom(_mean3, "fast", lookback=3))
        self.add_indicator("gap", self.fast - self.slow > 0)
        self.events = []
        self.slices = []
        self.hist = []

    def on_market_data(self, event, context):
        names = self.indicator_names
        self.events.append([event.ts, event.asset_id, *(event.indicators[n] for n in names)])
        h = self.history(event.asset_id, "m3", 3)
        self.hist.append(h[-1])

    def on_slice(self, view, context):
        block = view.indicators
        assert block.shape == (len(view), len(view.indicator_names))
        for j, name in enumerate(view.indicator_names):
            assert np.array_equal(view.indicator(name), block[:, j], equal_nan=True)
        panel = self.history_panel("fast", 2, assets=view)
        assert np.array_equal(panel[-1], view.indicator("fast"), equal_nan=True)
        self.slices.append(np.column_stack([view.asset_ids, block]))


def _read_all(feed, **cfg):
    s = Reader()
    BacktestEngine(feed, s, BacktestConfig(history_window=8, **cfg)).run(progress=False)
    return s


def test_every_reading_agrees_and_chunking_changes_no_value_bit_for_bit(tmp_path):
    frame = _intraday()
    path = tmp_path / "bars.parquet"
    frame.write_parquet(path, row_group_size=20)
    base = _read_all(PolarsDataFeed(frame, signal_columns=["pred"]))
    events = np.asarray(base.events)
    assert events.shape[1] == 2 + 11  # ts, asset, fast slow cross bb.* atr rsi zp m3 gap
    assert np.isfinite(events[:, 2:]).any(axis=0).all()  # every indicator has values
    # on_market_data, on_slice and history read the same numbers
    assert np.array_equal(np.asarray(base.hist), events[:, -2], equal_nan=True)
    assert np.array_equal(np.concatenate(base.slices), events[:, 1:], equal_nan=True)
    for chunk in ("1d", "2d", dt.timedelta(hours=2), "all"):
        other = _read_all(ParquetDataFeed(path, chunk=chunk, signal_columns=["pred"]))
        assert np.array_equal(np.asarray(other.events), events, equal_nan=True), chunk
        assert np.array_equal(np.asarray(other.hist), np.asarray(base.hist), equal_nan=True)
        assert np.array_equal(np.concatenate(other.slices), np.concatenate(base.slices),
                              equal_nan=True), chunk


def test_rows_of_one_asset_from_two_feeds_are_read_in_time_order(tmp_path):
    frame = _intraday(n_days=6)
    even = frame.filter(pl.col("timestamp").dt.hour() % 2 == 0)
    odd = frame.filter(pl.col("timestamp").dt.hour() % 2 == 1)
    one = _read_all(PolarsDataFeed(frame, signal_columns=["pred"]))
    two = _read_all([PolarsDataFeed(even, signal_columns=["pred"]),
                     PolarsDataFeed(odd, signal_columns=["pred"])])
    key = np.lexsort((np.asarray(one.events)[:, 1], np.asarray(one.events)[:, 0]))
    key2 = np.lexsort((np.asarray(two.events)[:, 1], np.asarray(two.events)[:, 0]))
    assert np.array_equal(np.asarray(one.events)[key], np.asarray(two.events)[key2],
                          equal_nan=True)
    path = tmp_path / "even.parquet"
    even.write_parquet(path, row_group_size=10)
    streamed = _read_all([ParquetDataFeed(path, chunk="1d", signal_columns=["pred"]),
                          PolarsDataFeed(odd, signal_columns=["pred"])])
    assert np.array_equal(np.asarray(streamed.events), np.asarray(two.events), equal_nan=True)


def test_no_declaration_costs_nothing_and_reads_are_empty():
    class Plain(Strategy):
        def on_market_data(self, event, context):
            assert len(event.indicators) == 0
            with pytest.raises(KeyError, match="no indicator named 'x'"):
                event.indicators["x"]

        def on_slice(self, view, context):
            assert view.indicators.shape == (len(view), 0)

    BacktestEngine(PolarsDataFeed(_intraday(n_days=2)), Plain()).run(progress=False)


def test_history_of_an_indicator_is_its_values_up_to_now():
    class H(Strategy):
        s = ind.SMA("close", 2)

        def on_start(self):
            self.seen = []

        def on_market_data(self, event, context):
            self.seen.append(list(self.history(event.asset_id, "s", 3)))

    frame = pl.DataFrame({"timestamp": [dt.datetime(2024, 1, i + 1) for i in range(4)],
                          "asset": "A", "open": X[:4], "high": X[:4], "low": X[:4],
                          "close": X[:4], "volume": 1.0})
    s = H()
    BacktestEngine(PolarsDataFeed(frame), s).run(progress=False)
    _close(sum(s.seen, []), [NAN, NAN, 10.5, NAN, 10.5, 12, 10.5, 12, 12.5])


def test_an_indicator_row_is_a_read_only_mapping_like_a_signal_row():
    class Rows(Strategy):
        a = ind.SMA("close", 1)
        b = ind.Momentum("close", 1)

        def on_start(self):
            self.checked = 0

        def on_market_data(self, event, context):
            row = event.indicators
            assert row.keys() == ("a", "b") and list(row) == ["a", "b"] and len(row) == 2
            assert row["a"] == row[0] == row[-2] == row.get("a") == event.close
            assert row.get("nope", -1.0) == -1.0 and row.get(5) is None
            assert "b" in row and "close" not in row
            assert np.array_equal(row.values(), [row["a"], row["b"]], equal_nan=True)
            assert row.to_dict().keys() == {"a", "b"} and row.items()[0] == ("a", row["a"])
            with pytest.raises(IndexError, match="indicator index 2 out of range"):
                row[2]
            assert repr(row).startswith("IndicatorRow({'a': ")
            self.checked += 1

    s = Rows()
    BacktestEngine(PolarsDataFeed(_intraday(n_days=1)), s).run(progress=False)
    assert s.checked > 0


def test_event_by_name_reads_a_bar_field_a_signal_or_an_indicator():
    class ByName(Strategy):
        fast = ind.SMA("close", 2)
        up = ind.Column("close") > "fast"

        def on_start(self):
            self.checked = 0

        def on_market_data(self, event, context):
            row = event.indicators
            for name in ("fast", "up"):
                assert event[name] == row[name] or (math.isnan(event[name])
                                                    and math.isnan(row[name]))
            assert event["pred"] == event.signals["pred"]
            for field in ("open", "high", "low", "close", "volume"):
                assert event[field] == getattr(event, field)
            self.checked += 1

    s = ByName()
    BacktestEngine(PolarsDataFeed(_intraday(n_days=2), signal_columns=["pred"]), s).run(
        progress=False)
    assert s.checked > 0


def test_view_indicators_is_a_read_only_view_of_the_named_series():
    class Views(Strategy):
        fast = ind.SMA("close", 2)
        slow = ind.SMA("close", 3)
        spread = fast - slow

        def on_start(self):
            self.checked = 0

        def on_slice(self, view, context):
            both = view.indicators
            assert both.shape == (len(view), 3) and not both.flags.writeable
            for j, name in enumerate(view.indicator_names):
                one = view.indicator(name)
                assert one.flags.c_contiguous and not one.flags.writeable
                assert np.array_equal(both[:, j], one, equal_nan=True)
            assert np.shares_memory(both, view.indicator("fast"))  # one feed: no copy
            self.checked += 1

    s = Views()
    BacktestEngine(PolarsDataFeed(_intraday(n_days=2)), s).run(progress=False)
    assert s.checked > 0


def test_views_of_bars_from_several_feeds_at_one_timestamp():
    frame = _intraday(n_days=4)
    ab = frame.filter(pl.col("asset") != "CCC")
    c = frame.filter(pl.col("asset") == "CCC")
    one = _read_all(PolarsDataFeed(frame, signal_columns=["pred"]))
    two = _read_all([PolarsDataFeed(ab, signal_columns=["pred"]),
                     PolarsDataFeed(c, signal_columns=["pred"])])
    assert np.array_equal(np.asarray(one.events), np.asarray(two.events), equal_nan=True)
    assert np.array_equal(np.concatenate(one.slices), np.concatenate(two.slices),
                          equal_nan=True)


def test_a_custom_functions_own_error_names_the_indicator():
    def broken(x):
        raise ZeroDivisionError("boom")

    class Broken(Strategy):
        c = ind.Custom(broken)

    with pytest.raises(ZeroDivisionError, match="boom") as info:
        BacktestEngine(PolarsDataFeed(_intraday(n_days=1)), Broken()).run(progress=False)
    assert "custom indicator 'test_a_custom_functions_own_error_names_the_indicator." \
           "<locals>.broken'" in info.value.__notes__[-1]


# ----------------------------------------------------------------- composite indicators
def _ema_ref(x, n, alpha):
    out, prev = [], None
    for i, v in enumerate(x):
        if v != v:  # NaN: restart
            out.append(NAN)
            prev = None
            continue
        if prev is None:
            window = [w for w in x[max(0, i - n + 1):i + 1]]
            if len(window) < n or any(w != w for w in window):
                out.append(NAN)
                continue
            prev = sum(window) / n
        else:
            prev = prev * (1 - alpha) + v * alpha
        out.append(prev)
    return out


def test_composite_indicators_hand_computed():
    got = _values([("w", ind.WMA("close", 3)), ("d", ind.Delay("close", 2))], _store(X))
    _close(got["w"], [NAN, NAN, 71 / 6, 73 / 6, 79 / 6, 85 / 6, 77 / 6])
    _close(got["d"], [NAN, NAN, 10, 11, 13, 12, 14])
    a = [1.0, 3.0, 2.0, 1.0, 3.0, 3.0, 1.0]
    got = _values([("up", ind.CrossUp("close", 2.0)), ("dn", ind.CrossDown("close", 2.0)),
                   ("x", ind.CrossOver("close", 2.0))], _store(a))
    _close(got["up"], [NAN, 1, 0, 0, 1, 0, 0])
    # strict: the touch at bar 2 then the fall at bar 3 is no cross down (CrossOver counts it)
    _close(got["dn"], [NAN, 0, 0, 0, 0, 0, 1])
    _close(got["x"], [NAN, 1, 0, -1, 1, 0, -1])
    macd, signal = ind.MACD("close", 2, 3, 2)
    got = _values([("m", macd), ("s", signal)], _store(X))
    m = [f - s for f, s in zip(_ema_ref(X, 2, 2 / 3), _ema_ref(X, 3, 0.5), strict=True)]
    _close(got["m"], m)
    _close(got["s"], _ema_ref(m, 2, 2 / 3))
    assert np.isnan(got["s"][:3]).all() and not np.isnan(got["s"][3:]).any()
    # high = close + 1, low = close - 1; %K = SMA(k, 2), %D = SMA(%K, 2)
    k_ref = [NAN, NAN] + [100 * (X[i] - (min(X[i - 2:i + 1]) - 1))
                          / (max(X[i - 2:i + 1]) + 1 - (min(X[i - 2:i + 1]) - 1))
                          for i in range(2, len(X))]
    pk_ref = [NAN] + [(k_ref[i - 1] + k_ref[i]) / 2 for i in range(1, len(X))]
    pd_ref = [NAN] + [(pk_ref[i - 1] + pk_ref[i]) / 2 for i in range(1, len(X))]
    pk, pd_ = ind.Stochastic(3, 2, 2)
    got = _values([("k", pk), ("d", pd_)], _store(X))
    _close(got["k"], pk_ref)
    _close(got["d"], pd_ref)


def test_composite_indicators_agree_with_backtrader():
    bt = pytest.importorskip("backtrader")
    import pandas as pd

    ts, opn, high, low, close = _random_bars()
    frame = pd.DataFrame({"open": opn, "high": high, "low": low, "close": close,
                          "volume": 1e6}, index=pd.DatetimeIndex(ts))
    names = ("wma", "macd", "signal", "k", "d", "up", "down")
    out = {k: [] for k in names}

    class Rec(bt.Strategy):
        def __init__(self):
            c = self.data.close
            fast = bt.ind.SMA(c, period=5)
            macd = bt.ind.MACD(c, period_me1=8, period_me2=17, period_signal=5)
            st = bt.ind.Stochastic(self.data, period=9, period_dfast=3, period_dslow=4)
            self.lines_ = {"wma": bt.ind.WMA(c, period=10), "macd": macd.macd,
                           "signal": macd.signal, "k": st.percK, "d": st.percD,
                           "up": bt.ind.CrossUp(c, fast), "down": bt.ind.CrossDown(c, fast)}

        def prenext(self):
            self.next()

        def next(self):
            for k, line in self.lines_.items():
                out[k].append(line[0])

    cerebro = bt.Cerebro(stdstats=False)
    cerebro.adddata(bt.feeds.PandasData(dataname=frame))
    cerebro.addstrategy(Rec)
    cerebro.run()
    macd, signal = ind.MACD("close", 8, 17, 5)
    pk, pd_ = ind.Stochastic(9, 3, 4)
    fast = ind.SMA("close", 5)
    decls = [("wma", ind.WMA("close", 10)), ("macd", macd), ("signal", signal), ("k", pk),
             ("d", pd_), ("up", ind.CrossUp("close", fast)),
             ("down", ind.CrossDown("close", fast))]
    got = _values(decls, _store(close, high=high, low=low))
    for k in names:
        theirs = np.asarray(out[k], dtype=float)
        assert np.array_equal(np.isnan(got[k]), np.isnan(theirs)), k
        assert np.isfinite(theirs).sum() > 250, k
        np.testing.assert_allclose(got[k], theirs, rtol=1e-9, atol=1e-9, equal_nan=True,
                                   err_msg=k)
    assert np.nansum(got["up"]) > 5 and np.nansum(got["down"]) > 5
