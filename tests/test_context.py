"""Market context: stored once, handed to hooks as a dict of the values visible (as-of, backward)."""

from __future__ import annotations

import datetime as dt

import numpy as np
import polars as pl
import pytest

from mlbacktest import BacktestEngine, ContextFrame, DataError, PolarsDataFeed, Strategy
from mlbacktest.data.synthetic import synthetic_bars


class Recorder(Strategy):
    def __init__(self):
        self.seen = []

    def on_slice(self, view, context):
        self.seen.append((view.timestamp, dict(context)))


def _feed(n_bars=6):
    bars = synthetic_bars(n_assets=2, n_bars=n_bars, seed=3, weekends=True)  # calendar days
    return PolarsDataFeed(bars, signal_columns=["pred"])


def test_context_is_as_of_backward():
    day = dt.datetime(2020, 1, 1)
    ctx = pl.DataFrame(
        {
            "timestamp": [day + dt.timedelta(days=1), day + dt.timedelta(days=3, hours=12)],
            "vix": [20.0, 30.0],
            "regime": ["calm", "stress"],
        }
    )
    strat = Recorder()
    BacktestEngine(_feed(), strat, context=ctx).run()
    vix = [c["vix"] for _, c in strat.seen]
    # day0: nothing visible yet; day1..3: 20; day4 on: 30 (published mid-day 3)
    assert vix[0] is None
    assert vix[1:4] == [20.0, 20.0, 20.0]
    assert vix[4:] == [30.0, 30.0]
    assert strat.seen[5][1]["regime"] == "stress"


def test_available_at_delays_visibility_and_keeps_latest_observation():
    day = dt.datetime(2020, 1, 1)
    ctx = pl.DataFrame(
        {
            "timestamp": [day, day + dt.timedelta(days=1), day + dt.timedelta(days=2)],
            # the day-0 value is only published on day 3; day 1 and 2 publish at once
            "available_at": [day + dt.timedelta(days=3), day + dt.timedelta(days=1),
                             day + dt.timedelta(days=2)],
            "rate": [1.0, 2.0, 3.0],
        }
    )
    strat = Recorder()
    frame = ContextFrame(ctx, available_at_column="available_at")
    BacktestEngine(_feed(), strat, context=frame).run()
    rates = [c["rate"] for _, c in strat.seen]
    # day 3: the late day-0 value becomes visible but day 2's observation is newer
    assert rates == [None, 2.0, 3.0, 3.0, 3.0, 3.0]


def test_each_timestamp_gets_a_fresh_dict():
    ctx = pl.DataFrame({"timestamp": [dt.datetime(2019, 12, 31)], "vix": [15.0]})

    class Mutator(Strategy):
        def __init__(self):
            self.values = []

        def on_slice(self, view, context):
            self.values.append(context["vix"])
            context["vix"] = -1.0

    strat = Mutator()
    BacktestEngine(_feed(3), strat, context=ctx).run()
    assert strat.values == [15.0, 15.0, 15.0]


def test_context_in_other_time_zone_is_rejected():
    ctx = pl.DataFrame(
        {"timestamp": [dt.datetime(2020, 1, 1, tzinfo=dt.timezone.utc)], "vix": [1.0]}
    )
    with pytest.raises(DataError, match="time zone"):
        BacktestEngine(_feed(), Recorder(), context=ctx)


def test_no_context_gives_empty_dicts():
    strat = Recorder()
    BacktestEngine(_feed(3), strat).run()
    assert [c for _, c in strat.seen] == [{}, {}, {}]
    assert np.all(np.diff([t.timestamp() for t, _ in strat.seen]) > 0)
