"""Synthetic bars (mlbacktest.data.synthetic): their calendar."""

from __future__ import annotations

import io

import numpy as np
import polars as pl
import pytest

from mlbacktest.data.synthetic import synthetic_bars
from mlbacktest.demo import run_demo


def _days(frame: pl.DataFrame) -> list[str]:
    return frame["timestamp"].unique(maintain_order=True).dt.strftime("%a %F").to_list()


def test_daily_bars_are_business_days():
    frame = synthetic_bars(n_assets=2, n_bars=6, seed=1)  # from Wed 1 January 2020
    assert _days(frame) == ["Wed 2020-01-01", "Thu 2020-01-02", "Fri 2020-01-03",
                            "Mon 2020-01-06", "Tue 2020-01-07", "Wed 2020-01-08"]
    assert frame["timestamp"].dtype == pl.Datetime("ns")
    every_other = synthetic_bars(n_assets=1, n_bars=3, start="2020-01-04T16:00", every="2d")
    # a Saturday start moves to Monday; the time of day is kept
    assert every_other["timestamp"].dt.strftime("%a %F %H:%M").to_list() == [
        "Mon 2020-01-06 16:00", "Wed 2020-01-08 16:00", "Fri 2020-01-10 16:00"]


def test_weekends_and_intraday_spacings_are_continuous():
    calendar = synthetic_bars(n_assets=1, n_bars=5, seed=1, weekends=True)
    assert _days(calendar)[3:] == ["Sat 2020-01-04", "Sun 2020-01-05"]
    hourly = synthetic_bars(n_assets=1, n_bars=30, every="1h", start="2020-01-03T12:00")
    assert np.all(np.diff(hourly["timestamp"].to_numpy()) == np.timedelta64(1, "h"))
    # the same seed gives the same prices whatever the calendar
    plain = synthetic_bars(n_assets=1, n_bars=5, seed=1)
    assert plain.drop("timestamp").equals(calendar.drop("timestamp"))


def test_too_many_business_days_are_refused_before_any_work():
    with pytest.raises(ValueError, match="100,000 business days of 1d from 2020-01-01 run past"):
        synthetic_bars(2, 100_000, every="1d")
    with pytest.raises(ValueError, match="bars of 1w .* run past 2262"):
        synthetic_bars(2, 20_000, every="1w")


def test_demo_annualises_business_days_at_252_and_says_it_inferred_it():
    result = run_demo(n_assets=12, n_bars=260, verbose=False)
    assert result.metrics["periods_per_year"] == 252.0
    text = result.summary(file=io.StringIO())
    line = next(row for row in text.splitlines() if row.startswith("annualisation"))
    assert line.split(None, 1)[1] == "inferred, 252 a year: daily bars, weekdays only"
    # 260 business days from 2020-01-01 end on 2020-12-29: a CAGR over 363 days
    equity = result.equity["equity"].to_numpy()
    growth = equity[-1] / result.initial_cash
    assert result.metrics["cagr"] == pytest.approx(growth ** (365.25 / 363) - 1)


def test_the_demo_is_long_short_and_rejects_nothing():
    # The demo's strategy shorts the bottom predictions: its account must let it.
    result = run_demo(n_assets=12, n_bars=60, verbose=False)
    assert result.metrics["num_rejected"] == 0
    assert (result.fills["quantity"] < 0).any()
    net = result.equity["net_exposure"].to_numpy()
    gross = result.equity["gross_exposure"].to_numpy()
    assert (gross - abs(net)).max() > 0  # short positions were held
