"""Full metric set: formulas against empyrical / scipy / pandas and hand computations,
trade statistics, MFE/MAE, exit reasons, exposure and benchmarks (mlbacktest.results)."""

from __future__ import annotations

import io
import math
from datetime import datetime, timedelta, timezone

import empyrical
import numpy as np
import pandas as pd
import polars as pl
import pytest
import scipy.stats
from helpers import Scripted, bars, run

from mlbacktest.config import PositionRules
from mlbacktest.results import BacktestResult
from mlbacktest.results.metrics import (
    METRIC_FORMATS,
    METRIC_SECTIONS,
    align_benchmark,
    alpha_beta,
    compute_metrics,
    conditional_value_at_risk,
    exposure_statistics,
    kurtosis,
    omega_ratio,
    rolling_sharpe,
    skewness,
    sqn,
    stability,
    tail_ratio,
    trade_statistics,
    turnover,
    value_at_risk,
)
from mlbacktest.results.trades import (
    EXIT_REASONS,
    excursions,
    exit_reasons,
    fifo_round_trips,
)

pytestmark = pytest.mark.filterwarnings("error")

PPY = 252.0
RF = 0.03  # annual
RF_PERIOD = (1 + RF) ** (1 / PPY) - 1  # what the strategy must earn per period
DAY_NS = 86_400 * 10**9
INITIAL = 1_000.0


def _fixed_returns() -> tuple[np.ndarray, np.ndarray]:
    """300 daily strategy returns with fat tails and a correlated benchmark."""
    rng = np.random.default_rng(20240101)
    bench = 0.0003 + 0.01 * rng.standard_t(4, 300) / math.sqrt(2)
    noise = 0.006 * rng.standard_normal(300)
    return 0.0004 + 0.8 * bench + noise, bench


R, B = _fixed_returns()
EQ = INITIAL * np.cumprod(1 + R)
TS = (np.datetime64("2024-01-01", "ns") + np.arange(R.size) * np.timedelta64(1, "D")).astype(
    np.int64
)


@pytest.fixture(scope="module")
def metrics() -> dict:
    return compute_metrics(
        TS, EQ, INITIAL, periods_per_year=PPY, risk_free=RF, benchmark_returns=B
    )


@pytest.fixture(scope="module")
def population() -> dict:
    return compute_metrics(
        TS, EQ, INITIAL, periods_per_year=PPY, risk_free=RF, benchmark_returns=B, ddof=0
    )


# -- against empyrical (pyfolio's metrics library) --------------------------------------


def test_return_and_risk_metrics_match_empyrical(metrics):
    m = metrics
    # CAGR on elapsed calendar time, 365.25-day years (TS: 300 calendar days).
    years = (pd.Timestamp(TS[-1]) - pd.Timestamp(TS[0])) / pd.Timedelta(days=365.25)
    growth = 1.0 + empyrical.cum_returns_final(R)
    assert m["cagr"] == pytest.approx(growth ** (1.0 / years) - 1.0)
    # empyrical counts len(R) / ppy years instead: the same growth, another clock.
    assert empyrical.annual_return(R, annualization=252) == pytest.approx(
        growth ** (252 / R.size) - 1.0
    )
    assert m["annual_volatility"] == pytest.approx(
        empyrical.annual_volatility(R, annualization=252)
    )
    assert m["max_drawdown"] == pytest.approx(empyrical.max_drawdown(R))
    assert m["calmar"] == pytest.approx(m["cagr"] / -empyrical.max_drawdown(R))
    assert m["tail_ratio"] == pytest.approx(empyrical.tail_ratio(R))
    assert m["stability"] == pytest.approx(empyrical.stability_of_timeseries(R))
    assert m["var"] == pytest.approx(empyrical.value_at_risk(R, cutoff=0.05))
    assert m["cvar"] == pytest.approx(empyrical.conditional_value_at_risk(R, cutoff=0.05))
    assert m["var"] < 0 and m["cvar"] < m["var"]  # losses, the tail mean beyond the quantile


def test_risk_free_rate_is_annual_and_compounded_where_empyrical_takes_a_per_period_rate(
    metrics,
):
    # The same numbers once empyrical gets the per-period rate (1 + rf) ** (1 / ppy) - 1 ...
    assert metrics["sharpe"] == pytest.approx(
        empyrical.sharpe_ratio(R, risk_free=RF_PERIOD, annualization=252)
    )
    assert metrics["sortino"] == pytest.approx(
        empyrical.sortino_ratio(R, required_return=RF_PERIOD, annualization=252)
    )
    assert metrics["omega"] == pytest.approx(
        empyrical.omega_ratio(R, risk_free=RF_PERIOD, annualization=252)
    )
    alpha, beta = empyrical.alpha_beta(R, B, risk_free=RF_PERIOD, annualization=252)
    assert metrics["alpha"] == pytest.approx(alpha)
    assert metrics["beta"] == pytest.approx(beta)
    # ... and different numbers if the annual rate were passed to empyrical as is.
    assert metrics["sharpe"] != pytest.approx(
        empyrical.sharpe_ratio(R, risk_free=RF, annualization=252), rel=1e-3
    )


def test_ddof_zero_gives_population_estimators_empyrical_uses_the_sample_ones(
    metrics, population
):
    n = R.size
    sample_vol = empyrical.annual_volatility(R, annualization=252)  # std with ddof=1
    assert metrics["annual_volatility"] == pytest.approx(sample_vol)
    assert population["annual_volatility"] == pytest.approx(sample_vol * math.sqrt((n - 1) / n))
    assert population["sharpe"] == pytest.approx(metrics["sharpe"] * math.sqrt(n / (n - 1)))
    # Sortino's downside deviation averages over all n periods in both conventions.
    assert population["sortino"] == metrics["sortino"]
    assert (metrics["ddof"], population["ddof"]) == (1, 0)


def test_skew_and_excess_kurtosis_sample_like_pandas_population_like_scipy(metrics, population):
    series = pd.Series(R)
    # ddof=1: adjusted G1 / G2, as pandas and quantstats
    assert metrics["skew"] == pytest.approx(series.skew())
    assert metrics["kurtosis"] == pytest.approx(series.kurt())
    # ddof=0: g1 / g2, as scipy.stats (pyfolio's perf_stats)
    assert population["skew"] == pytest.approx(scipy.stats.skew(R))
    assert population["kurtosis"] == pytest.approx(scipy.stats.kurtosis(R))
    assert metrics["kurtosis"] > 1.0  # excess: the t(4) tails, not the 3 of a normal


def test_var_level_is_a_parameter():
    m99 = compute_metrics(TS, EQ, INITIAL, periods_per_year=PPY, var_level=0.99)
    assert m99["var_level"] == 0.99
    assert m99["var"] == pytest.approx(empyrical.value_at_risk(R, cutoff=0.01))
    assert m99["cvar"] == pytest.approx(empyrical.conditional_value_at_risk(R, cutoff=0.01))


# -- the same formulas by hand ------------------------------------------------------


def test_formulas_by_hand():
    r = [0.02, -0.01, 0.03, -0.04, 0.01]
    rf = 0.0
    assert omega_ratio(r, PPY, rf) == pytest.approx((0.02 + 0.03 + 0.01) / (0.01 + 0.04))
    # percentiles with linear interpolation: q95 at rank 3.8, q5 at rank 0.2
    srt = sorted(r)
    q95 = srt[3] + 0.8 * (srt[4] - srt[3])
    q05 = srt[0] + 0.2 * (srt[1] - srt[0])
    assert tail_ratio(r) == pytest.approx(abs(q95) / abs(q05))
    assert value_at_risk(r, 0.95) == pytest.approx(q05)
    # floor(4 * 0.05) + 1 = 1 lowest return; at 80 %: floor(4 * 0.2) + 1 = 1; 60 %: 2
    assert conditional_value_at_risk(r, 0.95) == pytest.approx(-0.04)
    assert conditional_value_at_risk(r, 0.60) == pytest.approx((-0.04 - 0.01) / 2)
    # stability: a constant growth rate is a straight line of log equity
    assert stability([0.01] * 10) == pytest.approx(1.0)
    x = np.arange(5.0)
    y = np.cumsum(np.log1p(r))
    corr = np.corrcoef(x, y)[0, 1]
    assert stability(r) == pytest.approx(corr**2)


def test_alpha_beta_by_hand():
    bench = np.array([0.01, -0.02, 0.015, 0.0, 0.005])
    strat = 0.001 + 1.5 * bench  # exactly beta 1.5, 0.1 % a period of alpha
    alpha, beta = alpha_beta(strat, bench, 252.0)
    assert beta == pytest.approx(1.5)
    assert alpha == pytest.approx(1.001**252 - 1)
    # with a risk-free rate the regression is on excess returns
    rf_p = 1.05 ** (1 / 252) - 1
    alpha_rf, beta_rf = alpha_beta(strat, bench, 252.0, 0.05)
    assert beta_rf == pytest.approx(1.5)
    assert alpha_rf == pytest.approx((1 + 0.001 + 0.5 * rf_p) ** 252 - 1)


def test_degenerate_series_are_nan_without_warnings():
    for fn in (tail_ratio, stability):
        assert math.isnan(fn([]))
    assert math.isnan(omega_ratio([0.01, 0.02], PPY))  # no loss
    assert math.isnan(skewness([0.01] * 5)) and math.isnan(kurtosis([0.01] * 5))
    assert math.isnan(skewness([0.01, 0.02])) and not math.isnan(skewness([0.01, 0.02], 0))
    assert math.isnan(kurtosis([0.01, 0.02, 0.0]))  # G2 needs 4 values
    assert math.isnan(stability([0.0] * 5))  # flat equity: no line to fit
    assert math.isnan(stability([0.1, -1.0, 0.1]))  # equity wiped out
    assert math.isnan(value_at_risk([0.01, math.nan]))
    assert all(math.isnan(v) for v in alpha_beta([0.01, 0.02], [0.01, 0.01], PPY))
    m = compute_metrics([], [], 100.0)
    for key in ("omega", "tail_ratio", "var", "cvar", "skew", "kurtosis", "stability"):
        assert math.isnan(m[key]), key
    assert math.isnan(m["alpha"]) and math.isnan(m["beta"])


def test_invalid_conventions_raise():
    with pytest.raises(ValueError, match="ddof"):
        compute_metrics(TS, EQ, INITIAL, ddof=2)
    with pytest.raises(ValueError, match="level"):
        compute_metrics(TS, EQ, INITIAL, var_level=95)
    with pytest.raises(ValueError, match="periods_per_year"):
        compute_metrics(TS, EQ, INITIAL, periods_per_year=-1.0)
    with pytest.raises(ValueError, match="benchmark_returns"):
        compute_metrics(TS, EQ, INITIAL, benchmark_returns=B[:-1])
    with pytest.raises(ValueError, match="window"):
        rolling_sharpe(R, 1, PPY)


def test_rolling_sharpe_equals_sharpe_of_each_window():
    out = rolling_sharpe(R, 20, PPY, RF)
    assert np.isnan(out[:19]).all()
    for end in (19, 100, 299):
        window = R[end - 19 : end + 1] - RF_PERIOD
        expected = window.mean() / window.std(ddof=1) * math.sqrt(PPY)
        assert out[end] == pytest.approx(expected)


# -- trade and exposure statistics ----------------------------------------------------


def test_trade_statistics_by_hand():
    pnl = [30.0, -10.0, 20.0, 0.0, -20.0]
    stats = trade_statistics(
        pnl,
        net_return=[0.03, -0.01, 0.02, 0.0, -0.02],
        duration_ns=[DAY_NS, 2 * DAY_NS, DAY_NS // 2, DAY_NS, 3 * DAY_NS // 2],
        periods_held=[1, 2, 0, 1, 1],
    )
    mean = 20.0 / 5
    std = math.sqrt(sum((p - mean) ** 2 for p in pnl) / 4)
    assert stats == pytest.approx(
        {
            "num_trades": 5,
            "win_rate": 0.4,
            "profit_factor": 50.0 / 30.0,
            "avg_trade_pnl": 4.0,
            "avg_win": 25.0,
            "avg_loss": -15.0,
            "payoff_ratio": 25.0 / 15.0,
            "best_trade": 30.0,
            "worst_trade": -20.0,
            "sqn": math.sqrt(5) * mean / std,
            "expectancy": 0.004,
            "avg_holding_days": 1.2,
            "avg_holding_periods": 1.0,
        }
    )
    assert list(trade_statistics([])) == list(trade_statistics([1.0]))
    assert math.isnan(sqn([5.0, 5.0])) and math.isnan(sqn([5.0]))


def test_exposure_statistics_and_turnover_by_hand():
    equity = [100.0, 110.0, 0.0, 90.0]
    gross = [0.0, 55.0, 10.0, 180.0]
    net = [0.0, -55.0, 10.0, 90.0]
    stats = exposure_statistics(equity, gross, net)
    assert stats["time_in_market"] == 0.75
    # leverage over the periods with positive equity: 0, 0.5, 2
    assert stats["avg_gross_leverage"] == pytest.approx(2.5 / 3)
    assert stats["max_gross_leverage"] == pytest.approx(2.0)
    assert stats["avg_net_leverage"] == pytest.approx((0 - 0.5 + 1.0) / 3)
    # 300 traded over 4 periods of a 252-period year, average equity 75
    assert turnover(300.0, equity, 252.0) == pytest.approx(300 / 75 * 252 / 4)
    assert math.isnan(turnover(1.0, [], 252.0))


# -- benchmark alignment ------------------------------------------------------------------


def test_benchmark_frame_is_aligned_as_of_on_the_equity_timestamps():
    ts = np.array([10, 20, 30, 40], dtype=np.int64) * DAY_NS
    prices = pl.DataFrame(
        {"timestamp": np.array([5, 15, 25, 26, 40], dtype=np.int64) * DAY_NS,
         "price": [100.0, 110.0, 99.0, 121.0, 133.1]}
    )
    # levels as of 10, 20, 30, 40: 100, 110, 121, 133.1; the first period is 0
    expected = [0.0, 0.1, 0.1, 0.1]
    assert align_benchmark(prices, ts) == pytest.approx(expected)
    returns = pl.DataFrame(
        {"timestamp": prices["timestamp"], "returns": [0.0, 0.1, -0.1, 121 / 99 - 1, 0.1]}
    )
    assert align_benchmark(returns, ts) == pytest.approx(expected)
    as_datetime = prices.with_columns(
        pl.col("timestamp").cast(pl.Datetime("ns")).dt.cast_time_unit("us")
    )
    assert align_benchmark(as_datetime, ts) == pytest.approx(expected)
    # aligned arrays are returns, taken as they are
    assert align_benchmark(np.array([0.01, 0.02, 0.0, -0.01]), ts).tolist() == [
        0.01, 0.02, 0.0, -0.01
    ]
    assert align_benchmark(pl.Series([0.0] * 4), ts).tolist() == [0.0] * 4


def test_benchmark_time_zones():
    ny = "America/New_York"
    # run: 2024-01-02 and 03 at 09:30 New York, i.e. 14:30 UTC
    ts = np.array(
        [datetime(2024, 1, d, 14, 30, tzinfo=timezone.utc).timestamp() * 10**9 for d in (2, 3)],
        dtype=np.int64,
    )
    naive = pl.DataFrame(
        {"timestamp": [datetime(2024, 1, 2, 9, 30), datetime(2024, 1, 3, 9, 30)],
         "close": [50.0, 55.0]}
    )
    assert align_benchmark(naive, ts, ny) == pytest.approx([0.0, 0.1])
    aware = naive.with_columns(pl.col("timestamp").dt.replace_time_zone(ny))
    assert align_benchmark(aware, ts, ny) == pytest.approx([0.0, 0.1])
    late = aware.with_columns(pl.col("timestamp") + pl.duration(minutes=1))
    with pytest.raises(ValueError, match="does not cover the run"):
        align_benchmark(late, ts, ny)
    with pytest.raises(ValueError, match="naive"):
        align_benchmark(aware, ts, None)


@pytest.mark.parametrize(
    ("bench", "message"),
    [
        (pl.DataFrame({"timestamp": [0, 1], "value": [1.0, 2.0]}), "exactly one of"),
        (pl.DataFrame({"timestamp": [0, 3 * DAY_NS], "price": [1.0, 1.0]}), "does not cover"),
        (pl.DataFrame({"timestamp": [0, 0, DAY_NS * 9], "price": [1.0] * 3}), "unique"),
        (pl.DataFrame({"timestamp": [0, DAY_NS * 9], "price": [1.0, None]}), "NaN"),
        (pl.DataFrame({"timestamp": [0, DAY_NS * 9], "price": [1.0, -1.0]}), "positive"),
        (pl.DataFrame({"timestamp": [0, DAY_NS * 9], "returns": [0.0, -1.0]}), "-1"),
        (pl.DataFrame({"timestamp": ["a", "b"], "price": [1.0, 1.0]}), "Datetime"),
        (np.zeros(3), "one return per equity point"),
        (np.array([0.0, np.nan, 0.0, 0.0]), "NaN"),
    ],
)
def test_bad_benchmarks_raise(bench, message):
    ts = np.array([1, 2, 3, 4], dtype=np.int64) * DAY_NS
    with pytest.raises(ValueError, match=message):
        align_benchmark(bench, ts)


# -- MFE / MAE ------------------------------------------------------------------------------

NAN = math.nan


def fills_table(rows):
    """Columns of (ts, asset, order_id, quantity, price, held_high, held_low) rows."""
    cols = list(zip(*rows, strict=True))
    names = ("ts", "asset", "order_id", "quantity", "price", "held_high", "held_low")
    return {k: np.asarray(v) for k, v in zip(names, cols, strict=True)}


def mfe_mae(rows):
    f = fills_table(rows)
    zeros = np.zeros(len(rows))
    rt = fifo_round_trips(f["ts"], f["asset"], f["order_id"], f["quantity"], f["price"], zeros)
    t = rt.trades
    ex = excursions(
        rt.fill_index["entry"], rt.fill_index["exit"], f["ts"], f["asset"],
        f["held_high"], f["held_low"], t["direction"], t["quantity"],
        t["entry_price"], t["exit_price"],
    )
    return t, ex


def test_mfe_mae_long_uses_bars_held_in_full_and_the_fill_prices():
    # buy 10 @ 100; bars held in full until the exit fill: high 108, low 97; sell @ 104
    t, ex = mfe_mae([(1, 0, 1, 10.0, 100.0, NAN, NAN), (5, 0, 2, -10.0, 104.0, 108.0, 97.0)])
    assert ex["mfe_per_unit"].tolist() == [8.0] and ex["mae_per_unit"].tolist() == [-3.0]
    assert ex["mfe"].tolist() == [80.0] and ex["mae"].tolist() == [-30.0]
    assert ex["mfe_pct"] == pytest.approx([0.08]) and ex["mae_pct"] == pytest.approx([-0.03])


def test_mfe_mae_short_and_fill_prices_bound_the_range():
    # short 5 @ 50; no bar held in full (same-bar exit): only the two fill prices count
    t, ex = mfe_mae([(1, 0, 1, -5.0, 50.0, NAN, NAN), (1, 0, 2, 5.0, 52.0, NAN, NAN)])
    assert t["direction"].tolist() == [-1]
    assert ex["mfe_per_unit"].tolist() == [0.0] and ex["mae_per_unit"].tolist() == [-2.0]
    # short 5 @ 50, held through a 47..55 range, covered @ 48
    t, ex = mfe_mae([(1, 0, 1, -5.0, 50.0, NAN, NAN), (3, 0, 2, 5.0, 48.0, 55.0, 47.0)])
    assert ex["mfe"].tolist() == [15.0] and ex["mae"].tolist() == [-25.0]


def test_mfe_mae_spans_every_fill_of_the_asset_between_entry_and_exit_only():
    rows = [
        (1, 0, 1, 10.0, 100.0, NAN, NAN),  # lot 1
        (2, 1, 2, 3.0, 20.0, 999.0, 0.0),  # other asset: never counts for asset 0
        (3, 0, 3, 10.0, 101.0, 103.0, 99.0),  # lot 2, bars since ts 1
        (4, 0, 4, -10.0, 102.0, 106.0, 101.0),  # closes lot 1
        (6, 0, 5, -10.0, 105.0, 104.0, 95.0),  # closes lot 2
    ]
    t, ex = mfe_mae(rows)
    assert t["entry_price"].tolist() == [100.0, 101.0]
    # lot 1: fills 3 and 4 after its entry -> high 106, low 99
    # lot 2: fills 4 and 5 after its entry -> high 106, low 95 (not fill 3's range)
    assert ex["mfe_per_unit"].tolist() == [6.0, 5.0]
    assert ex["mae_per_unit"].tolist() == [-1.0, -6.0]


def test_mfe_mae_of_partial_exits_and_reversals():
    rows = [
        (1, 0, 1, 10.0, 100.0, NAN, NAN),
        (2, 0, 2, -4.0, 103.0, 104.0, 98.0),  # partial exit
        (3, 0, 3, -16.0, 101.0, 107.0, 100.0),  # closes 6, opens 10 short @ 101
        (4, 0, 4, 10.0, 95.0, 102.0, 96.0),  # covers the short
    ]
    t, ex = mfe_mae(rows)
    assert t["quantity"].tolist() == [4.0, 6.0, 10.0]
    assert ex["mfe_per_unit"].tolist() == [4.0, 7.0, 6.0]
    assert ex["mae_per_unit"].tolist() == [-2.0, -2.0, -1.0]
    assert ex["mfe"].tolist() == [16.0, 42.0, 60.0]


def test_excursions_are_nan_without_held_ranges():
    none = excursions([0], [1], [1, 2], [0, 0], None, None, [1], [1.0], [10.0], [11.0])
    assert all(np.isnan(v).all() for v in none.values())


def test_excursions_match_a_direct_loop_over_the_fills():
    rng = np.random.default_rng(7)
    n = 1_500
    ts = np.sort(rng.integers(0, 500, n))  # shared timestamps: same-bar fills
    asset = rng.integers(0, 4, n)
    qty = rng.choice([-3.0, -2.0, -1.0, 1.0, 2.0, 3.0], n, p=[0.1, 0.1, 0.2, 0.3, 0.2, 0.1])
    price = rng.uniform(90, 110, n)
    high = np.where(rng.random(n) < 0.2, np.nan, price + rng.uniform(0, 20, n))
    low = np.where(np.isnan(high), np.nan, price - rng.uniform(0, 20, n))
    order = rng.permutation(n)  # recorded order need not be time order
    ts, asset, qty, price, high, low = (a[order] for a in (ts, asset, qty, price, high, low))
    rt = fifo_round_trips(ts, asset, np.arange(n), qty, price, np.zeros(n))
    t = rt.trades
    ex = excursions(rt.fill_index["entry"], rt.fill_index["exit"], ts, asset, high, low,
                    t["direction"], t["quantity"], t["entry_price"], t["exit_price"])
    processing = np.argsort(ts, kind="stable").tolist()
    step = {fill: i for i, fill in enumerate(processing)}
    spans = []
    for k, (e, x) in enumerate(zip(rt.fill_index["entry"], rt.fill_index["exit"], strict=True)):
        after = processing[step[e] + 1 : step[x] + 1]
        same = [j for j in after if asset[j] == asset[e]]
        spans.append(len(same))
        seen = [t["entry_price"][k], t["exit_price"][k]]
        seen += [v for j in same for v in (high[j], low[j]) if not np.isnan(v)]
        best = max(seen) - t["entry_price"][k]
        worst = min(seen) - t["entry_price"][k]
        if t["direction"][k] < 0:
            best, worst = -worst, -best
        assert ex["mfe_per_unit"][k] == pytest.approx(best)
        assert ex["mae_per_unit"][k] == pytest.approx(worst)
    assert max(spans) > 50  # long holds: every level of the range table is used


# -- exit reasons -------------------------------------------------------------------------


def test_exit_reasons_from_origin_order_type_and_links():
    # order ids 10.. : type, origin, parent, oco_group
    orders = {
        10: (0, 0, -1, -1),  # strategy market order
        11: (2, 0, 9, 4),  # bracket stop leg -> stop_loss
        12: (1, 0, 9, 4),  # bracket take-profit leg -> take_profit
        13: (4, 0, -1, 5),  # trailing stop in an OCO group -> trailing_stop
        14: (3, 0, 8, -1),  # stop-limit child -> stop_loss
        15: (2, 0, -1, -1),  # unlinked stop order -> strategy
        16: (5, 4, -1, -1),  # broker's time exit (market-on-open)
        17: (5, 5, -1, -1),  # margin call
        18: (5, 6, -1, -1),  # drawdown halt
        19: (0, 1, -1, -1),  # position-rule stop-loss
        20: (1, 2, -1, -1),  # position-rule take-profit
        21: (0, 0, 9, -1),  # linked market child -> strategy
    }
    ids = np.array(list(orders))
    otype, origin, parent, oco = (np.array(c) for c in zip(*orders.values(), strict=True))
    exits = [10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20, 21, 99]
    codes = exit_reasons(exits, ids, otype, origin, parent, oco)
    names = [EXIT_REASONS[c] if c >= 0 else None for c in codes]
    assert names == [
        "strategy", "stop_loss", "take_profit", "trailing_stop", "stop_loss", "strategy",
        "time_exit", "margin_call", "drawdown_halt", "stop_loss", "take_profit", "strategy",
        None,
    ]
    # without link columns every strategy order is a strategy exit
    bare = exit_reasons(exits[:6], ids, otype)
    assert bare.tolist() == [0] * 6


# -- BacktestResult -------------------------------------------------------------------------

FLAT = (100.0, 100.0, 100.0, 100.0)


def test_engine_run_bracket_exit_reason_mfe_mae_and_metrics():
    data = bars({"A": [FLAT, FLAT, (100, 103, 99, 101), (101, 104, 98, 102),
                       (100, 106, 94, 100), FLAT]})
    strat = Scripted({0: lambda s, v: s.bracket("A", 10, stop_loss=95, take_profit=105)})
    res = run(data, strat, initial_cash=10_000, commission=0.001)
    row = res.trades.row(0, named=True)
    # entry at day 1's open (100); days 2 and 3 held in full (high 104, low 98);
    # the take-profit fills at 105 on day 4
    assert row["exit_reason"] == "take_profit"
    assert (row["mfe_per_unit"], row["mae_per_unit"]) == (5.0, -2.0)
    assert (row["mfe"], row["mae"]) == (50.0, -20.0)
    assert row["holding_time"] == timedelta(days=3)
    assert row["commission"] == pytest.approx(0.001 * 10 * (100 + 105))
    assert row["net_return_pct"] == pytest.approx(row["net_pnl"] / 1000.0)
    m = res.metrics
    assert m["avg_holding_days"] == 3.0 and m["avg_holding_periods"] == 3.0
    assert m["num_trades"] == 1 and m["expectancy"] == pytest.approx(row["net_return_pct"])
    # in the market from day 1's close to day 3's close: 3 of 6 periods
    assert m["time_in_market"] == pytest.approx(3 / 6)
    traded = 10 * 100 + 10 * 105
    mean_equity = float(res.equity["equity"].mean())
    assert m["periods_per_year"] == 252.0
    assert m["turnover"] == pytest.approx(traded / mean_equity * 252 / 6)


def test_engine_run_position_rule_exit_reason():
    data = bars({"A": [FLAT, FLAT, (100, 100, 90, 92), FLAT]})
    strat = Scripted({0: lambda s, v: s.order("A", 10)})
    res = run(data, strat, initial_cash=10_000, position_rules=PositionRules(stop_loss=0.05))
    assert res.trades["exit_reason"].to_list() == ["stop_loss"]
    assert res.trades["mae_per_unit"].to_list() == [-5.0]  # the stop filled at 95


def result_args(**overrides) -> dict:
    """A 5-bar daily run: buy 10 @ 100 at bar 1, sell 10 @ 110 at bar 3 (a stop-limit child)."""
    ts = (np.datetime64("2024-01-01", "ns") + np.arange(5) * np.timedelta64(1, "D")).astype(
        np.int64
    )
    equity = np.array([1_000.0, 1_000.0, 1_050.0, 1_100.0, 1_100.0])
    gross = np.array([0.0, 1_000.0, 1_050.0, 0.0, 0.0])
    args = {
        "equity": {"ts": ts, "cash": equity - gross, "positions_value": gross,
                   "equity": equity, "gross_exposure": gross, "net_exposure": gross},
        "fills": {"ts": ts[[1, 3]], "asset": np.array([0, 0]), "order_id": np.array([0, 1]),
                  "quantity": np.array([10.0, -10.0]), "price": np.array([100.0, 110.0]),
                  "commission": np.array([1.0, 1.0]), "slippage": np.array([0.5, 0.25]),
                  "held_high": np.array([NAN, 112.0]), "held_low": np.array([NAN, 99.0])},
        "orders": {"order_id": np.array([0, 1]), "asset": np.array([0, 0]),
                   "created_ts": ts[[0, 1]], "order_type": np.array([0, 3]),
                   "quantity": np.array([10.0, -10.0]),
                   "limit_price": np.array([NAN, 110.0]), "stop_price": np.array([NAN, 110.0]),
                   "status": np.array([3, 3]), "filled_quantity": np.array([10.0, -10.0]),
                   "avg_fill_price": np.array([100.0, 110.0]), "closed_ts": ts[[1, 3]],
                   "origin": np.array([0, 0]), "parent": np.array([-1, 0]),
                   "oco_group": np.array([-1, -1])},
        "asset_names": ["A"],
        "tz": None,
        "initial_cash": 1_000.0,
    }
    return args | overrides


def test_result_trades_columns_and_costs():
    res = BacktestResult(**result_args())
    t = res.trades.row(0, named=True)
    assert res.trades.columns[13:] == [
        "slippage", "net_return_pct", "exit_reason", "holding_time", "mfe", "mae",
        "mfe_pct", "mae_pct", "mfe_per_unit", "mae_per_unit",
    ]
    assert (t["pnl"], t["commission"], t["net_pnl"]) == (100.0, 2.0, 98.0)
    assert t["slippage"] == pytest.approx(0.75) and t["net_return_pct"] == pytest.approx(0.098)
    assert t["exit_reason"] == "stop_loss"
    assert (t["mfe"], t["mae"]) == (120.0, -10.0)
    assert res.trades.schema["holding_time"] == pl.Duration("ns")
    # without the held ranges: NaN excursions, everything else unchanged
    args = result_args()
    args["fills"] = {k: v for k, v in args["fills"].items() if not k.startswith("held")}
    bare = BacktestResult(**args).trades
    assert bare["mfe"].is_nan().all() and bare["pnl"].to_list() == [100.0]
    with pytest.raises(ValueError, match="held_high"):
        BacktestResult(**result_args(fills=result_args()["fills"] | {"held_high": [1.0]}))


def test_result_metrics_conventions_and_recomputation():
    res = BacktestResult(**result_args())
    m = res.metrics
    assert m == res.compute_metrics()
    assert (m["periods_per_year"], m["ddof"], m["risk_free"], m["var_level"]) == (
        252.0, 1, 0.0, 0.95
    )
    other = res.compute_metrics(12.0, ddof=0, risk_free=0.02, var_level=0.9)
    assert (other["periods_per_year"], other["ddof"], other["risk_free"]) == (12.0, 0, 0.02)
    r = res.returns["returns"].to_numpy()
    x = r - (1.02 ** (1 / 12) - 1)
    assert other["sharpe"] == pytest.approx(x.mean() / x.std() * math.sqrt(12))
    # CAGR does not depend on periods_per_year: 4 calendar days from the first to the last bar.
    assert other["cagr"] == m["cagr"] == pytest.approx(1.1 ** (365.25 / 4) - 1)
    assert m["time_in_market"] == 0.4
    assert m["turnover"] == pytest.approx(2_100 / 1_050 * 252 / 5)
    assert m["avg_holding_periods"] == 2.0 and m["avg_holding_days"] == 2.0
    assert math.isnan(m["alpha"])
    # every metric has a print format and a section
    assert set(m) == set(METRIC_FORMATS)
    assert set(m) == {k for _, keys in METRIC_SECTIONS for k in keys}
    assert res.metrics_frame(other)["value"].to_list()[-4:] == [12.0, 0.0, 0.02, 0.9]


def test_result_with_benchmark():
    prices = pl.DataFrame(
        {"timestamp": [datetime(2023, 12, 29), datetime(2024, 1, 2), datetime(2024, 1, 4),
                       datetime(2024, 1, 8)],
         "price": [10.0, 11.0, 12.1, 13.0]}
    )
    res = BacktestResult(**result_args(benchmark=prices))
    frame = res.returns
    assert frame.columns == ["timestamp", "returns", "benchmark"]
    # as of Jan 1..5: 10, 11, 11, 12.1, 12.1
    assert frame["benchmark"].to_list() == pytest.approx([0.0, 0.1, 0.0, 0.1, 0.0])
    alpha, beta = alpha_beta(frame["returns"].to_numpy(), frame["benchmark"].to_numpy(), 252.0)
    assert res.metrics["beta"] == pytest.approx(beta) and res.metrics["alpha"] == alpha
    # another benchmark, as aligned returns, for one computation
    flat = res.compute_metrics(benchmark=np.zeros(5))
    assert math.isnan(flat["beta"])
    short = prices.filter(pl.col("timestamp") < datetime(2024, 1, 5))
    with pytest.raises(ValueError, match="does not cover the run"):
        BacktestResult(**result_args(benchmark=short))


def test_result_exposure_and_rolling_sharpe():
    res = BacktestResult(**result_args())
    ex = res.exposure
    assert ex.columns == ["timestamp", "gross_exposure", "net_exposure", "gross_leverage",
                          "net_leverage", "in_market", "traded_notional"]
    assert ex["in_market"].to_list() == [False, True, True, False, False]
    assert ex["traded_notional"].to_list() == [0.0, 1_000.0, 0.0, 1_100.0, 0.0]
    assert ex["gross_leverage"][2] == pytest.approx(1_050 / 1_050)
    rs = res.rolling_sharpe(3)
    r = res.returns["returns"].to_numpy()
    assert rs["rolling_sharpe"][3] == pytest.approx(
        r[1:4].mean() / r[1:4].std(ddof=1) * math.sqrt(252)
    )


def test_summary_prints_sections_and_conventions():
    res = BacktestResult(**result_args())
    text = res.summary(file=io.StringIO())
    for title, _ in METRIC_SECTIONS:
        assert f"-- {title} " in text
    assert "ddof" in text and "var_level" in text and "95.00%" in text
    assert "periods_per_year" in text
    custom = res.summary(file=io.StringIO(), metrics=res.compute_metrics(ddof=0))
    ddof_line = next(line for line in custom.splitlines() if line.startswith("ddof"))
    assert ddof_line.split() == ["ddof", "0"]


def test_summary_says_whether_periods_per_year_were_given_or_inferred():
    def line(text: str) -> str:
        return next(row for row in text.splitlines() if row.startswith("annualisation"))

    inferred = BacktestResult(**result_args())  # Mon 1 to Fri 5 January 2024
    assert line(inferred.summary(file=io.StringIO())).split(None, 1)[1] == (
        "inferred, 252 a year: daily bars, weekdays only"
    )
    # metrics under another convention: not what was inferred
    other = inferred.summary(file=io.StringIO(), metrics=inferred.compute_metrics(12.0))
    assert line(other).split() == ["annualisation", "given"]
    given = BacktestResult(**result_args(), periods_per_year=365.0)
    assert line(given.summary(file=io.StringIO())).split() == ["annualisation", "given"]
