"""BacktestEngine(trade_from=...): the hooks warm up on earlier bars, orders wait for trade_from."""

from __future__ import annotations

import datetime as dt
import warnings

import numpy as np
import polars as pl
import pytest
from conftest import examples
from hypothesis import given, settings
from hypothesis import strategies as st

from mlbacktest import (
    BacktestConfig,
    BacktestEngine,
    BacktestResult,
    PolarsDataFeed,
    Strategy,
    run_backtest,
)
from mlbacktest.data.synthetic import synthetic_bars

WARMUP = "before trading start"


@pytest.fixture(scope="module")
def bars() -> pl.DataFrame:
    return synthetic_bars(n_assets=3, n_bars=40, seed=11)


def _cal(bars: pl.DataFrame) -> list[dt.datetime]:
    return bars["timestamp"].unique().sort().to_list()


class UpDay(Strategy):
    """Holds each asset whose last bar closed above its open (the current bar only)."""

    def on_slice(self, view, context):
        for a, o, c in zip(view.asset_ids, view.open, view.close, strict=True):
            self.order_target_percent(int(a), 0.3 if c > o else 0.0)


class Recorder(Strategy):
    """Buys on_start and every bar; records what it saw."""

    def __init__(self) -> None:
        self.bars: list[dt.datetime] = []
        self.trading_seen: list[bool] = []
        self.depth: list[int] = []
        self.events: list[tuple[int, str, str]] = []

    def on_start(self):
        self.trading_at_start = self.trading
        self.buy("A000", 1)

    def on_slice(self, view, context):
        self.bars.append(self.now)
        self.trading_seen.append(self.trading)
        self.depth.append(len(self.history("A001", "close", 5)))
        self.buy("A001", 1)

    def on_order(self, order):
        self.events.append((order.order_id, order.status, order.reason))


def test_warm_up_bars_run_the_hooks_but_refuse_every_order(bars):
    cal = _cal(bars)
    s = Recorder()
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no warning for the refused warm-up orders
        r = BacktestEngine(PolarsDataFeed(bars), s, BacktestConfig(initial_cash=100_000),
                           trade_from=cal[10]).run(progress=False)
    assert s.bars == cal  # every hook on every bar
    assert s.trading_at_start is False
    assert s.trading_seen == [False] * 10 + [True] * 30
    assert s.depth[10] == 5  # history warmed on the warm-up bars
    # Equity from trade_from on, flat at the initial cash on its first bar.
    assert r.equity["timestamp"].to_list() == cal[10:]
    assert r.equity.row(0, named=True)["equity"] == 100_000.0
    assert r.equity.row(0, named=True)["positions_value"] == 0.0
    # The on_start order and the ten warm-up orders: stored rejected, with the reason.
    o = r.orders
    refused = o.filter(pl.col("timestamp") < cal[10])
    assert refused.height == 11
    assert (refused["status"] == "rejected").all()
    assert refused["reason"].str.starts_with(WARMUP + ":").all()
    assert (refused["filled_quantity"] == 0).all()
    assert r.rejection_reasons.rows() == [(WARMUP, 11)]
    # The strategy heard of each refusal; nothing placed before trade_from ever filled.
    rejected = {i for i, status, _ in s.events if status == "rejected"}
    assert rejected == set(refused["order_id"].to_list())
    assert r.fills["timestamp"].min() == cal[11]  # placed on cal[10], filled at the next open
    assert (o.filter(pl.col("timestamp") >= cal[10])["status"] == "filled").sum() == 29
    # The metrics' order counts cover the trading span only.
    assert r.metrics["num_orders"] == 30 and r.metrics["num_rejected"] == 0


def test_same_as_a_run_that_starts_at_trade_from_when_the_strategy_keeps_no_state(bars):
    cal = _cal(bars)
    cfg = BacktestConfig(initial_cash=10_000, commission=0.001)
    warm = run_backtest(bars, UpDay(), cfg, trade_from=cal[15])
    late = run_backtest(bars.filter(pl.col("timestamp") >= cal[15]), UpDay(), cfg)
    assert warm.equity.equals(late.equity)
    assert warm.fills.drop("order_id").equals(late.fills.drop("order_id"))
    assert warm.metrics == late.metrics


@settings(max_examples=examples(25), deadline=None)
@given(seed=st.integers(0, 10_000), start=st.integers(0, 29), latency=st.sampled_from(["0s", "1h"]),
       fill_at=st.sampled_from(["next_open", "close"]))
def test_property_no_order_placed_before_trade_from_reaches_the_broker(seed, start, latency,
                                                                      fill_at):
    b = synthetic_bars(n_assets=2, n_bars=30, seed=seed)
    cal = _cal(b)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # fill_at="close" warns of look-ahead
        cfg = BacktestConfig(fill_at=fill_at, latency=latency)
    warm = run_backtest(b, UpDay(), cfg, trade_from=cal[start])
    late = run_backtest(b.filter(pl.col("timestamp") >= cal[start]), UpDay(), cfg)
    o = warm.orders
    early = o.filter(pl.col("timestamp") < cal[start])
    assert (early["status"] == "rejected").all() and (early["filled_quantity"] == 0).all()
    assert warm.fills.height == 0 or warm.fills["timestamp"].min() >= cal[start]
    assert warm.equity["timestamp"][0] == cal[start]
    assert warm.equity.equals(late.equity)


class Brackets(Strategy):
    def on_slice(self, view, context):
        if not self.open_orders() and not self.get_positions():
            self.bracket("A000", 5, stop_loss=50.0, take_profit=500.0)
        self.order_many([1, 2], [1.0, 2.0])


def test_brackets_and_batches_are_refused_whole(bars):
    cal = _cal(bars)
    r = run_backtest(bars, Brackets(), BacktestConfig(latency="1h"), trade_from=cal[3])
    o = r.orders.filter(pl.col("timestamp") < cal[3])
    entries = o.filter(pl.col("parent_id").is_null() & (pl.col("asset") == "A000"))
    legs = o.filter(pl.col("parent_id").is_not_null())
    assert entries.height == 3 and (entries["status"] == "rejected").all()
    assert legs.height == 6 and (legs["status"] == "cancelled").all()
    assert legs["reason"].str.contains("parent order").all()
    batch = o.filter(pl.col("asset") != "A000")
    assert batch.height == 6 and (batch["status"] == "rejected").all()
    assert r.fills["timestamp"].min() > cal[3]


class Linked(Strategy):
    """Places a limit entry with a child, and an OCO pair, on its first bar of each phase."""

    def __init__(self) -> None:
        self.groups: list[int] = []
        self.placed = 0

    def on_slice(self, view, context):
        if self.placed >= 2 or (self.placed == 1 and not self.trading):
            return
        self.placed += 1
        entry = self.order("A000", 5, limit_price=1e6)
        self.order("A000", -5, stop_price=1.0, parent=entry)
        a = self.order("A001", 1, limit_price=1.0)
        b = self.order("A001", -1, limit_price=1e6)
        self.groups.append(self.oco(a, b))


def test_linked_orders_on_warm_up_bars_are_refused_not_errors(bars):
    cal = _cal(bars)
    s = Linked()
    r = run_backtest(bars, s, trade_from=cal[4])
    o = r.orders
    early, late = o.filter(pl.col("timestamp") < cal[4]), o.filter(pl.col("timestamp") >= cal[4])
    assert early.height == late.height == 4
    assert (early["status"] == "rejected").all()
    assert early["reason"].str.starts_with(WARMUP).all()
    assert early["parent_id"].to_list()[1] == early["order_id"][0]  # the link is recorded
    assert s.groups[0] == -1 and s.groups[1] >= 0  # nothing to link during the warm-up
    assert late["oco_group"].drop_nulls().len() == 2


def test_saved_while_running_the_record_starts_at_trade_from(bars, tmp_path):
    cal = _cal(bars)
    path = tmp_path / "bars.parquet"
    bars.write_parquet(path)
    from mlbacktest import ParquetDataFeed

    streamed = BacktestEngine(ParquetDataFeed(path, chunk="7d"), UpDay(), None,
                              trade_from=cal[12]).run(progress=False, out=tmp_path / "out")
    whole = run_backtest(bars, UpDay(), trade_from=cal[12])
    assert streamed.equity.equals(whole.equity)
    assert streamed.equity["timestamp"][0] == cal[12]
    back = BacktestResult.from_parquet(tmp_path / "out")
    assert back.metrics == whole.metrics


def test_trade_from_in_the_bars_time_zone_and_bad_values(bars):
    cal = _cal(bars)
    feed = PolarsDataFeed(bars)
    e = BacktestEngine(feed, UpDay(), trade_from=cal[5].isoformat())
    assert e.trade_from == int(bars["timestamp"].dt.epoch("ns").unique().sort()[5])
    assert BacktestEngine(feed, UpDay(), trade_from=np.datetime64(cal[5], "ns")).trade_from \
        == e.trade_from
    with pytest.raises(TypeError, match="trade_from"):
        BacktestEngine(feed, UpDay(), trade_from=True)
    with pytest.raises(TypeError, match="trade_from"):
        BacktestEngine(feed, UpDay(), trade_from=1.5)
    with pytest.raises(ValueError, match="trade_from=.*naive"):
        BacktestEngine(feed, UpDay(), trade_from="2020-01-05T00:00:00+00:00")
    s = Recorder()
    with pytest.raises(ValueError, match="after the last bar"):
        BacktestEngine(feed, s, trade_from=cal[-1] + dt.timedelta(days=1)).run(progress=False)
    assert not hasattr(s, "trading_at_start")  # refused before any hook ran


def test_trade_from_before_the_first_bar_changes_nothing(bars):
    cal = _cal(bars)
    a = run_backtest(bars, UpDay())
    b = run_backtest(bars, UpDay(), trade_from=cal[0] - dt.timedelta(days=3))
    assert a.equity.equals(b.equity) and a.orders.equals(b.orders)
    s = Recorder()
    run_backtest(bars, s)
    assert s.trading_at_start and all(s.trading_seen)
