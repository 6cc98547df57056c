"""Performance metrics (mlbacktest.results.metrics) against hand computations."""

from __future__ import annotations

import math
from datetime import datetime, timedelta, timezone

import numpy as np
import pytest

from mlbacktest.results.metrics import (
    annual_volatility,
    cagr,
    compute_metrics,
    drawdown,
    explain_periods_per_year,
    infer_periods_per_year,
    max_drawdown,
    max_drawdown_duration,
    sharpe,
    simple_returns,
    sortino,
    total_return,
)

pytestmark = pytest.mark.filterwarnings("error")

R = [0.01, -0.02, 0.015, 0.005, -0.01, 0.02, -0.005, 0.012]
PPY = 252.0
N = len(R)
MEAN = sum(R) / N  # 0.027 / 8
SAMPLE_STD = math.sqrt(sum((r - MEAN) ** 2 for r in R) / (N - 1))
DAY_NS = 86_400 * 10**9


def ns(dt: datetime) -> int:
    """Nanoseconds since the epoch of a naive or aware datetime."""
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=timezone.utc)
    return int(dt.timestamp()) * 10**9


def equity_from_returns(initial: float, returns: list[float]) -> list[float]:
    out, value = [], initial
    for r in returns:
        value *= 1 + r
        out.append(value)
    return out


# -- returns, total return, CAGR ---------------------------------------------


def test_simple_returns_with_and_without_initial():
    eq = [110.0, 99.0, 99.0]
    assert simple_returns(eq, 100.0) == pytest.approx([0.1, -0.1, 0.0])
    assert simple_returns(eq) == pytest.approx([-0.1, 0.0])


def test_simple_returns_undefined_after_non_positive_equity():
    r = simple_returns([50.0, 0.0, 10.0, -5.0, 5.0], 100.0)
    assert r[[0, 1, 3]] == pytest.approx([-0.5, -1.0, -1.5])
    assert np.isnan(r[[2, 4]]).all()  # the previous equity is 0, then -5


def test_total_return():
    assert total_return([100.0, 120.0, 90.0]) == pytest.approx(-0.1)
    assert total_return([120.0, 90.0], initial=100.0) == pytest.approx(-0.1)
    assert total_return([], initial=100.0) == 0.0
    assert math.isnan(total_return([]))
    assert math.isnan(total_return([1.0], initial=0.0))


def test_cagr_uses_elapsed_calendar_time():
    eq = equity_from_returns(100.0, R)
    growth = eq[-1] / 100.0
    ts = business_days(datetime(2024, 1, 1), N)  # Mon 1 to Wed 10 January: 9 days
    assert cagr(eq, ts, initial=100.0) == pytest.approx(growth ** (365.25 / 9) - 1)
    # Without an initial value the first point is the base.
    assert cagr(eq, ts) == pytest.approx((eq[-1] / eq[0]) ** (365.25 / 9) - 1)
    # Doubling the capital over 2020 (a leap year, 366 days): the rate per 365.25 days.
    two = [ns(datetime(2020, 1, 1)), ns(datetime(2021, 1, 1))]
    assert cagr([100.0, 200.0], two, initial=100.0) == pytest.approx(2.0 ** (365.25 / 366) - 1)
    # The bar spacing does not matter, only the first and last timestamps: the same
    # +16.4 % from Wed 1 January 2020 to Fri 31 December 2021 (730 days), on calendar-day
    # bars or on business-day bars.
    start, end = datetime(2020, 1, 1), datetime(2021, 12, 31)
    every_day = [ns(start + timedelta(days=i)) for i in range((end - start).days + 1)]
    weekdays = [t for t in every_day if datetime.fromtimestamp(t // 10**9, timezone.utc)
                .weekday() < 5]
    for stamps in (every_day, weekdays):
        eq = np.linspace(100.0, 116.4, len(stamps))
        assert cagr(eq, stamps, initial=100.0) == pytest.approx(
            1.164 ** (365.25 / 730) - 1, rel=1e-12
        )
    # 7.9 % a year, where 731 calendar-day bars counted as 252 a year gave 5.2 %.
    assert len(every_day) == 731 and len(weekdays) == 523
    assert round(cagr(np.linspace(100.0, 116.4, len(every_day)), every_day), 3) == 0.079


def test_cagr_degenerate():
    assert math.isnan(cagr([], [], initial=100.0))
    assert math.isnan(cagr([100.0], [0]))  # no time elapsed
    assert math.isnan(cagr([100.0, 120.0], [DAY_NS, DAY_NS], initial=100.0))
    assert cagr([100.0, 0.0], [0, DAY_NS], initial=100.0) == -1.0
    assert cagr([100.0, -20.0], [0, DAY_NS], initial=100.0) == -1.0
    assert cagr([100.0, 100.0], [0, DAY_NS], initial=100.0) == 0.0
    with pytest.raises(ValueError, match="one timestamp per equity value; got 1 timestamps"):
        cagr([100.0, 110.0], [0], initial=100.0)
    with pytest.raises(ValueError, match="ts_ns"):
        cagr([100.0, 110.0], 252.0, initial=100.0)  # the former (equity, periods_per_year)


# -- volatility, Sharpe, Sortino ---------------------------------------------


def test_annual_volatility():
    assert annual_volatility(R, PPY) == pytest.approx(SAMPLE_STD * math.sqrt(PPY))
    pop_std = math.sqrt(sum((r - MEAN) ** 2 for r in R) / N)
    assert annual_volatility(R, PPY, ddof=0) == pytest.approx(pop_std * math.sqrt(PPY))
    assert annual_volatility(R, 12.0) == pytest.approx(SAMPLE_STD * math.sqrt(12.0))


def test_sharpe_without_risk_free():
    assert sharpe(R, PPY) == pytest.approx(MEAN / SAMPLE_STD * math.sqrt(PPY))


def test_sharpe_with_risk_free_compounds_to_per_period_rate():
    rf = 0.05
    rf_period = (1 + rf) ** (1 / PPY) - 1
    expected = (MEAN - rf_period) / SAMPLE_STD * math.sqrt(PPY)
    assert sharpe(R, PPY, risk_free=rf) == pytest.approx(expected)


def test_sortino_uses_downside_deviation_over_all_periods():
    downside = math.sqrt(sum(min(r, 0.0) ** 2 for r in R) / N)
    assert sortino(R, PPY) == pytest.approx(MEAN / downside * math.sqrt(PPY))
    rf_period = (1.03) ** (1 / PPY) - 1
    x = [r - rf_period for r in R]
    downside_rf = math.sqrt(sum(min(v, 0.0) ** 2 for v in x) / N)
    expected = (sum(x) / N) / downside_rf * math.sqrt(PPY)
    assert sortino(R, PPY, risk_free=0.03) == pytest.approx(expected)


def test_ratio_degenerate_inputs_are_nan():
    zeros = [0.0] * 10
    assert annual_volatility(zeros, PPY) == 0.0
    assert math.isnan(sharpe(zeros, PPY))  # zero volatility
    assert math.isnan(sharpe([0.01] * 10, PPY))  # constant non-zero returns
    assert math.isnan(sharpe([0.01], PPY))  # one period
    assert math.isnan(annual_volatility([0.01], PPY))
    assert math.isnan(sharpe([], PPY))
    assert math.isnan(sortino([], PPY))
    assert math.isnan(sortino([0.01, 0.02], PPY))  # nothing below target
    assert math.isnan(sortino(zeros, PPY))
    assert math.isnan(sharpe([0.01, math.nan, 0.02], PPY))
    assert math.isnan(sortino([-0.01, math.nan], PPY))


# -- drawdown ----------------------------------------------------------------

EQ = [100.0, 110.0, 99.0, 105.0, 120.0, 90.0, 96.0, 125.0]


def test_drawdown_series():
    expected = [0.0, 0.0, 99 / 110 - 1, 105 / 110 - 1, 0.0, 90 / 120 - 1, 96 / 120 - 1, 0.0]
    assert drawdown(EQ) == pytest.approx(expected)


def test_drawdown_counts_initial_as_first_peak():
    assert drawdown([95.0, 100.0, 98.0], initial=100.0) == pytest.approx([-0.05, 0.0, -0.02])
    assert max_drawdown([95.0, 100.0], initial=100.0) == pytest.approx(-0.05)
    assert max_drawdown_duration([95.0, 97.0, 101.0], initial=100.0) == 2


def test_max_drawdown_and_duration():
    assert max_drawdown(EQ) == pytest.approx(-0.25)
    # underwater at 99, 105 (2 periods) and at 90, 96 (2 periods)
    assert max_drawdown_duration(EQ) == 2
    # a drawdown still running at the end counts up to the last period
    assert max_drawdown_duration([100.0, 90.0, 95.0, 99.0]) == 3


def test_drawdown_degenerate():
    assert max_drawdown([100.0] * 5) == 0.0
    assert max_drawdown_duration([100.0] * 5) == 0
    assert max_drawdown([]) == 0.0
    assert max_drawdown_duration([]) == 0
    assert drawdown([]).size == 0


# -- periods per year ----------------------------------------------------------


def business_days(start: datetime, n: int) -> list[int]:
    out, day = [], start
    while len(out) < n:
        if day.weekday() < 5:
            out.append(ns(day))
        day += timedelta(days=1)
    return out


def test_infer_daily_weekly_monthly():
    assert infer_periods_per_year(business_days(datetime(2024, 1, 1), 60)) == 252.0
    weekly = [ns(datetime(2024, 1, 5) + timedelta(weeks=i)) for i in range(20)]
    assert infer_periods_per_year(weekly) == 52.0
    monthly = [ns(datetime(2020 + i // 12, i % 12 + 1, 1)) for i in range(24)]
    assert infer_periods_per_year(monthly) == 12.0
    quarterly = [ns(datetime(2020 + i // 4, 3 * (i % 4) + 1, 1)) for i in range(12)]
    assert infer_periods_per_year(quarterly) == 4.0


def test_infer_minute_bars():
    ts = []
    for day in business_days(datetime(2024, 3, 4), 5):
        open_ns = day + (9 * 60 + 30) * 60 * 10**9
        ts += [open_ns + m * 60 * 10**9 for m in range(390)]
    assert infer_periods_per_year(ts) == 252.0 * 390


def test_infer_hourly_counts_days_in_time_zone():
    # Two evening sessions 16:00..23:00 New York time (8 hourly bars), in UTC instants.
    ts = []
    for day in (datetime(2024, 1, 8, 21), datetime(2024, 1, 9, 21)):  # 16:00 EST = 21:00 UTC
        ts += [ns(day + timedelta(hours=h)) for h in range(8)]
    assert infer_periods_per_year(ts, tz="America/New_York") == 252.0 * 8
    # Counted on UTC days the sessions split into 3, 8 and 5 bars.
    assert infer_periods_per_year(ts) == 252.0 * 5


def test_infer_from_the_calendar_weekends_or_not():
    start = datetime(2024, 1, 1)
    every_day = [ns(start + timedelta(days=i)) for i in range(60)]
    assert infer_periods_per_year(every_day) == 365.0  # crypto-like: trades every day
    assert explain_periods_per_year(every_day) == "365 a year: daily bars, weekends included"
    weekdays = business_days(start, 60)
    assert infer_periods_per_year(weekdays) == 252.0
    assert explain_periods_per_year(weekdays) == "252 a year: daily bars, weekdays only"
    # A Sunday-to-Thursday week is five sessions too (one weekend day in seven).
    sun_thu = [t for t in every_day
               if datetime.fromtimestamp(t // 10**9, timezone.utc).weekday() not in (4, 5)]
    assert infer_periods_per_year(sun_thu) == 252.0
    # Hourly bars around the clock, every day: 365 days of 24 bars.
    hourly = [ns(start + timedelta(hours=h)) for h in range(24 * 21)]
    assert infer_periods_per_year(hourly) == 365.0 * 24
    assert explain_periods_per_year(hourly) == "8,760 a year: 24 bars a day, weekends included"
    weekly = [ns(datetime(2024, 1, 5) + timedelta(weeks=i)) for i in range(20)]
    assert explain_periods_per_year(weekly) == "52 a year: weekly bars"
    assert explain_periods_per_year([]) == "252 a year: fewer than two timestamps, the default"


def test_infer_fallback_and_duplicates():
    assert infer_periods_per_year([]) == 252.0
    assert infer_periods_per_year([5, 5, 5]) == 252.0
    daily = business_days(datetime(2024, 1, 1), 30)
    assert infer_periods_per_year(daily + daily) == 252.0  # several assets per timestamp


# -- compute_metrics -----------------------------------------------------------


def test_compute_metrics_matches_individual_functions():
    ts = business_days(datetime(2024, 1, 1), N)
    eq = equity_from_returns(1000.0, R)
    pnl = [10.0, -4.0, 6.0, 0.0]
    m = compute_metrics(
        ts,
        eq,
        1000.0,
        trade_net_pnl=pnl,
        fill_commission=[1.0, 0.5, 0.25],
        fill_slippage=[0.1, 0.2, 0.3],
        order_status=[3, 3, 6, 4, 6, 1],
        risk_free=0.02,
    )
    assert m["periods_per_year"] == 252.0
    assert m["final_equity"] == pytest.approx(eq[-1])
    assert m["total_return"] == pytest.approx(eq[-1] / 1000.0 - 1)
    assert m["cagr"] == pytest.approx(cagr(eq, ts, 1000.0))
    assert m["cagr"] == pytest.approx((eq[-1] / 1000.0) ** (365.25 / 9) - 1)
    assert m["annual_volatility"] == pytest.approx(SAMPLE_STD * math.sqrt(252))
    rf_period = 1.02 ** (1 / 252) - 1
    assert m["sharpe"] == pytest.approx((MEAN - rf_period) / SAMPLE_STD * math.sqrt(252))
    assert m["sortino"] == pytest.approx(sortino(R, 252.0, 0.02))
    assert m["max_drawdown"] == pytest.approx(max_drawdown(eq, 1000.0))
    assert m["max_drawdown_duration"] == max_drawdown_duration(eq, 1000.0)
    assert m["calmar"] == pytest.approx(m["cagr"] / -m["max_drawdown"])
    assert m["num_trades"] == 4
    assert m["win_rate"] == pytest.approx(0.5)  # a zero-P&L trade is not a win
    assert m["profit_factor"] == pytest.approx(16.0 / 4.0)
    assert m["avg_trade_pnl"] == pytest.approx(3.0)
    assert m["total_commission"] == pytest.approx(1.75)
    assert m["total_slippage"] == pytest.approx(0.6)
    assert (m["num_fills"], m["num_orders"], m["num_rejected"]) == (3, 6, 2)
    assert m["risk_free"] == 0.02
    for key in ("num_trades", "num_fills", "num_orders", "num_rejected", "max_drawdown_duration"):
        assert type(m[key]) is int
    assert all(type(v) in (int, float) for v in m.values())


def test_compute_metrics_explicit_periods_per_year():
    ts = business_days(datetime(2024, 1, 1), N)
    m = compute_metrics(ts, equity_from_returns(1.0, R), 1.0, periods_per_year=365.0)
    assert m["periods_per_year"] == 365.0
    assert m["annual_volatility"] == pytest.approx(SAMPLE_STD * math.sqrt(365))


def test_compute_metrics_degenerate():
    empty = compute_metrics([], [], 100.0)
    assert empty["final_equity"] == 100.0
    assert empty["total_return"] == 0.0
    assert empty["max_drawdown"] == 0.0
    assert empty["num_trades"] == empty["num_fills"] == empty["num_orders"] == 0
    assert empty["total_commission"] == 0.0
    for key in ("cagr", "annual_volatility", "sharpe", "sortino", "calmar"):
        assert math.isnan(empty[key]), key
    for key in ("win_rate", "profit_factor", "avg_trade_pnl"):
        assert math.isnan(empty[key]), key

    flat = compute_metrics(business_days(datetime(2024, 1, 1), 10), [100.0] * 10, 100.0)
    assert flat["total_return"] == 0.0 and flat["cagr"] == 0.0
    assert flat["annual_volatility"] == 0.0 and flat["max_drawdown"] == 0.0
    assert math.isnan(flat["sharpe"]) and math.isnan(flat["sortino"]) and math.isnan(flat["calmar"])

    one = compute_metrics([0], [101.0], 100.0)
    assert one["total_return"] == pytest.approx(0.01)
    assert math.isnan(one["annual_volatility"]) and math.isnan(one["sharpe"])

    winners = compute_metrics([0], [100.0], 100.0, trade_net_pnl=[1.0, 2.0])
    assert winners["win_rate"] == 1.0
    assert math.isnan(winners["profit_factor"])  # no losing trade
