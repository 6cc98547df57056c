"""Paper trading on a replay equals the backtest, bit for bit (orders, fills, equity)."""

from __future__ import annotations

import math

import numpy as np
import polars as pl
import pytest
from conftest import bar_panels, examples
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mlbacktest import BacktestConfig, BacktestEngine, PolarsDataFeed, Strategy
from mlbacktest.errors import ConfigError, DataError
from mlbacktest.live import (
    BarBatch,
    ErrorEvent,
    LiveEngine,
    LiveFeed,
    PaperBroker,
    ReplayFeed,
)
from tests.live_strategies import (
    ALL,
    Brackets,
    LimitsAndStops,
    NextOpenMarket,
    SliceMarket,
    WithIndicators,
    gappy_bars,
)

FILL_COLS = ["timestamp", "asset", "order_id", "quantity", "price", "commission", "slippage"]


def backtest(df, cls, cfg):
    return BacktestEngine(PolarsDataFeed(df), cls(), cfg).run(progress=False)


def paper(df, cls, cfg, **kw):
    return LiveEngine(ReplayFeed(df, speed=math.inf), cls(), cfg, broker=PaperBroker(),
                      **kw).run()


def assert_same_run(a, b):
    for col in FILL_COLS:
        x, y = a.fills[col], b.fills[col]
        assert x.dtype == y.dtype and x.equals(y), col
    oa, ob = a.orders, b.orders
    assert oa.columns == ob.columns
    assert oa.equals(ob, null_equal=True)
    assert a.equity.equals(b.equity, null_equal=True)


CFG = BacktestConfig(initial_cash=10_000.0, commission=0.001, slippage_bps=3.0, allow_short=True,
                     history_window=20)


@pytest.mark.parametrize("cls", ALL, ids=lambda c: c.__name__)
@pytest.mark.parametrize("max_batch", [1, 7, None])
def test_replay_paper_equals_backtest(cls, max_batch):
    df = gappy_bars()
    bt = backtest(df, cls, CFG)
    assert bt.fills.height > 3  # the scenario trades
    lv = paper(df, cls, CFG, max_batch=max_batch)
    assert_same_run(bt, lv)


@pytest.mark.parametrize("cls", [WithIndicators, LimitsAndStops], ids=lambda c: c.__name__)
@pytest.mark.parametrize("min_capacity", [1, 40])
def test_replay_equals_backtest_when_the_row_buffers_are_replaced_often(
        cls, min_capacity, monkeypatch):
    import mlbacktest.live.engine as live_engine

    made = []
    init = live_engine._LiveLoader.__init__

    def small(self, *args, **kwargs):
        init(self, *args, **kwargs)
        self.min_capacity = min_capacity
        made.append(self)

    monkeypatch.setattr(live_engine._LiveLoader, "__init__", small)
    df = gappy_bars(n_bars=150)
    cfg = BacktestConfig(initial_cash=10_000.0, allow_short=True, history_window=8)
    bt = backtest(df, cls, cfg)
    assert bt.fills.height > 3
    assert_same_run(bt, paper(df, cls, cfg, max_batch=1))
    assert made and made[0]._cap < 200  # buffers were replaced as the run went


@pytest.mark.filterwarnings("ignore::mlbacktest.errors.LookAheadWarning")
@pytest.mark.parametrize("fill_at", ["close", "next_close"])
def test_paper_other_fill_rules_equal_backtest(fill_at):
    df = gappy_bars(seed=5)
    cfg = BacktestConfig(initial_cash=10_000.0, fill_at=fill_at, allow_short=True, latency_bars=1
                         if fill_at == "next_close" else 0, history_window=20)
    for cls in (SliceMarket, LimitsAndStops):
        assert_same_run(backtest(df, cls, cfg), paper(df, cls, cfg, max_batch=3))


def test_paper_intraday_with_day_orders_and_latency():
    df = gappy_bars(n_bars=200, every="1h", seed=9)

    class DayLimits(Strategy):
        def on_market_data(self, event, context):
            if event.signals["pred"] > 0:
                self.order(event.asset, 2, order_type="limit",
                           limit_price=round(event.close * 0.998, 2), time_in_force="day")
            elif self.get_position(event.asset) > 0:
                self.close_position(event.asset)

    cfg = BacktestConfig(initial_cash=10_000.0, latency="90m", history_window=5)
    bt = backtest(df, DayLimits, cfg)
    assert (bt.orders["status"] == "expired").any()
    assert_same_run(bt, paper(df, DayLimits, cfg, max_batch=1))


def test_paper_schedule_uses_the_replay_calendar():
    df = gappy_bars(n_bars=60)

    class Monthly(Strategy):
        def on_start(self):
            self.schedule(self.rebalance, "1w")

        def rebalance(self, context):
            for a in self.assets:
                self.order_target_percent(a, 0.2)

    bt = backtest(df, Monthly, CFG)
    assert bt.fills.height > 5
    assert_same_run(bt, paper(df, Monthly, CFG, max_batch=1))


class _Batches(LiveFeed):
    """A feed of hand-made batches, with incidents reported before some of them."""

    def __init__(self, batches, assets=("A", "B"), signals=(), errors=None):
        self.batches = list(batches)
        self.asset_names = tuple(assets)
        self.signal_names = tuple(signals)
        self.errors = dict(errors or {})
        self._k = 0
        self._pending = []

    def next_batch(self, timeout):
        if self._k >= len(self.batches):
            return None
        b = self.batches[self._k]
        self._pending.extend(self.errors.get(self._k, []))
        self._k += 1
        return b

    def take_errors(self):
        out, self._pending = self._pending, []
        return out


def _batch(ts, rows):
    assets = np.array([r[0] for r in rows], dtype=np.int64)
    vals = np.array([r[1:] for r in rows], dtype=np.float64)
    return BarBatch(ts=ts, asset=assets, open=vals[:, 0], high=vals[:, 1], low=vals[:, 2],
                    close=vals[:, 3], volume=np.full(len(rows), 1e6),
                    signals=np.zeros((len(rows), 0)))


DAY = 86_400 * 10**9


def test_on_error_is_delivered_between_timestamps_in_order():
    seen = []

    class Watch(Strategy):
        def on_slice(self, view, context):
            seen.append(("bars", int(view.ts)))

        def on_error(self, event):
            seen.append(("error", event.kind, event.ts))
            if event.kind == "disconnect":
                self.buy("A", 1)  # orders placed here fill at the next bar

    e1 = ErrorEvent(0, "feed", "disconnect", "lost")
    e2 = ErrorEvent(0, "feed", "reconnect", "back", attempt=2)
    batches = [_batch(k * DAY, [(0, 10, 11, 9, 10), (1, 20, 21, 19, 20)]) for k in range(4)]
    feed = _Batches(batches, errors={2: [e1, e2]})
    res = LiveEngine(feed, Watch(), {"initial_cash": 1000}).run()
    # delivered after the hooks of the last timestamp done, stamped with it
    assert seen == [("bars", 0), ("bars", DAY), ("error", "disconnect", DAY),
                    ("error", "reconnect", DAY), ("bars", 2 * DAY), ("bars", 3 * DAY)]
    assert res.fills["timestamp"].dt.epoch("ns").to_list() == [2 * DAY]
    assert res.fills["price"].to_list() == [10.0]


def test_on_error_exception_keeps_its_type():
    class Boom(Strategy):
        def on_error(self, event):
            raise KeyError("strategy bug")

    feed = _Batches([_batch(k * DAY, [(0, 10, 11, 9, 10)]) for k in range(3)],
                    errors={1: [ErrorEvent(0, "feed", "disconnect", "lost")]})
    with pytest.raises(KeyError) as info:
        LiveEngine(feed, Boom()).run()
    assert any("on_error" in n for n in getattr(info.value, "__notes__", []))


def test_bad_batches_are_refused_naming_asset_and_time():
    bad = [_batch(0, [(0, 10, 11, 9, 10)]), _batch(DAY, [(1, 10, 9, 11, 10)])]
    with pytest.raises(DataError, match=r"'B'.*1970-01-02"):
        LiveEngine(_Batches(bad), Strategy()).run()
    back = [_batch(DAY, [(0, 10, 11, 9, 10)]), _batch(0, [(0, 10, 11, 9, 10)])]
    with pytest.raises(DataError, match="back in time"):
        LiveEngine(_Batches(back), Strategy()).run()
    unsorted = [_batch(0, [(1, 10, 11, 9, 10), (0, 10, 11, 9, 10)])]
    with pytest.raises(DataError, match="strictly increasing"):
        LiveEngine(_Batches(unsorted), Strategy()).run()


def test_schedule_without_a_calendar_is_a_clear_error():
    class Sched(Strategy):
        def on_start(self):
            self.schedule(lambda ctx: None, "1d")

    feed = _Batches([_batch(0, [(0, 10, 11, 9, 10)])])
    with pytest.raises(ValueError, match="schedule_at"):
        LiveEngine(feed, Sched()).run()


def test_replay_feed_wall_clock():
    df = gappy_bars(n_assets=2, n_bars=5, every="1m")
    now = [100.0]
    slept = []

    def sleep(s):
        slept.append(s)
        now[0] += s

    feed = ReplayFeed(df, speed=60.0, clock=lambda: now[0], sleep=sleep)
    feed.start()
    b0 = feed.next_batch(5.0)
    assert b0 is not None and slept == []
    with pytest.raises(TimeoutError):
        feed.next_batch(0.25)  # the next bar is due one second later (a minute / 60)
    assert slept == [0.25]
    b1 = feed.next_batch(5.0)
    assert b1.ts - b0.ts == 60 * 10**9 and math.isclose(now[0], 101.0)
    assert ReplayFeed(df, speed=math.inf, start=b1.ts).next_batch(0).ts == b1.ts
    with pytest.raises(ConfigError, match="speed"):
        ReplayFeed(df, speed=0)
    with pytest.raises(DataError, match="start"):
        ReplayFeed(df, start="2100-01-01")


def test_paper_run_saves_as_it_goes(tmp_path):
    df = gappy_bars()
    res = LiveEngine(ReplayFeed(df, speed=math.inf), SliceMarket(), CFG, max_batch=10).run(
        out=tmp_path / "run")
    from mlbacktest.results import BacktestResult

    back = BacktestResult.from_parquet(tmp_path / "run" / "result")
    assert back.fills.equals(res.fills)
    assert_same_run(backtest(df, SliceMarket, CFG), res)


def test_misc_arguments_are_checked():
    df = gappy_bars(n_bars=5)
    with pytest.raises(TypeError):
        LiveEngine(df, Strategy())
    with pytest.raises(ConfigError, match="run_id"):
        LiveEngine(ReplayFeed(df), Strategy(), run_id="a b")
    with pytest.raises(ConfigError, match="max_batch"):
        LiveEngine(ReplayFeed(df), Strategy(), max_batch=0)
    for cls in (Brackets, LimitsAndStops, NextOpenMarket, WithIndicators):
        assert issubclass(cls, Strategy)
    assert pl is not None


def test_stale_data_is_reported_once_per_period_without_bars():
    class Slow(_Batches):
        def __init__(self, batches, waits):
            super().__init__(batches)
            self.waits = list(waits)

        def next_batch(self, timeout):
            if self.waits and self.waits[0] == self._k:
                self.waits.pop(0)
                raise TimeoutError("nothing yet")
            return super().next_batch(timeout)

    got = []

    class Watch(Strategy):
        def on_error(self, event):
            got.append((event.kind, event.ts))

    batches = [_batch(k * DAY, [(0, 10, 11, 9, 10)]) for k in range(3)]
    # seven empty polls of 0.01 s before the second bar: two full periods of 0.03 s
    feed = Slow(batches, [1] * 7)
    LiveEngine(feed, Watch(), poll_interval=0.01, stale_after=0.03, max_batch=1).run()
    assert got == [("stale_data", 0), ("stale_data", 0)]


def test_paper_with_context_and_a_column_reading_slippage_model_equals_backtest():
    from mlbacktest import HalfSpreadSlippage

    df = gappy_bars(seed=17)
    df = df.with_columns(bid=pl.col("close") * 0.999, ask=pl.col("close") * 1.001)
    days = df["timestamp"].unique().sort()
    ctx = pl.DataFrame({"timestamp": days, "vix": np.linspace(10, 30, len(days))})

    class WithContext(Strategy):
        def on_slice(self, view, context):
            size = 5 if context["vix"] < 20 else 1
            for a in view.assets.tolist():
                self.order_target_quantity(a, size)

    cfg = BacktestConfig(initial_cash=10_000.0, slippage_bps=HalfSpreadSlippage(),
                         history_window=5)
    bt = BacktestEngine(PolarsDataFeed(df), WithContext(), cfg, context=ctx).run(progress=False)
    assert (bt.fills["slippage"] > 0).all() and bt.fills.height > 5
    lv = LiveEngine(ReplayFeed(df, speed=math.inf), WithContext(), cfg, context=ctx,
                    max_batch=2).run()
    assert_same_run(bt, lv)


class _RandomOrders(Strategy):
    """Seeded random orders of every kind the replay must reproduce."""

    def __init__(self, seed):
        self.seed = seed

    def on_start(self):
        import random

        self.rnd = random.Random(self.seed)

    def on_market_data(self, event, context):
        r, a, c = self.rnd.random(), event.asset, event.close
        if r < 0.2:
            self.buy(a, self.rnd.choice([1, 2, 5]))
        elif r < 0.3:
            self.sell(a, self.rnd.choice([1, 3]))
        elif r < 0.45:
            self.order(a, self.rnd.choice([-2, 2]), order_type="limit",
                       limit_price=round(c * self.rnd.uniform(0.97, 1.03), 2),
                       time_in_force=self.rnd.choice(["gtc", "day"]))
        elif r < 0.55:
            self.order(a, self.rnd.choice([-2, 2]), order_type="stop",
                       stop_price=round(c * self.rnd.uniform(0.97, 1.03), 2))
        elif r < 0.6:
            self.bracket(a, 3, stop_loss=round(c * 0.95, 2), take_profit=round(c * 1.05, 2))
        elif r < 0.65:
            for oid in self.open_orders(a)[:1]:
                self.cancel(oid)


@pytest.mark.filterwarnings("ignore::mlbacktest.errors.RejectedOrdersWarning")
@settings(max_examples=examples(25), deadline=None,
          suppress_health_check=[HealthCheck.too_slow])
@given(panel=bar_panels(max_ts=25, intraday=True, volumes=True), seed=st.integers(0, 10**6),
       max_batch=st.sampled_from([1, 2, 5, 4096]),
       fill_at=st.sampled_from(["next_open", "next_close"]))
def test_property_paper_replay_equals_backtest(panel, seed, max_batch, fill_at):
    df = panel.frame()
    cfg = BacktestConfig(initial_cash=5_000.0, allow_short=True, fill_at=fill_at,
                         max_volume_participation=0.5, history_window=3)
    bt = BacktestEngine(PolarsDataFeed(df), _RandomOrders(seed), cfg).run(progress=False)
    lv = LiveEngine(ReplayFeed(df, speed=math.inf), _RandomOrders(seed), cfg,
                    max_batch=max_batch).run()
    assert_same_run(bt, lv)
