"""The compiled accessors of Strategy (StrategyCore) against brute-force references.

``history`` is read in O(1) from the engine's latest row per asset; these
tests check it (and ``history_panel``, the getters, the market-order helpers
and the slice views) against what a plain reading of the input frame gives,
at every bar, by name and by id, for bar fields and signals, with several
feeds sharing an asset, in timers between bars and across the chunks of a
streamed run.
"""

from __future__ import annotations

import datetime as dt
import math

import numpy as np
import polars as pl
import pytest

from mlbacktest import (
    BacktestConfig,
    BacktestEngine,
    OrderError,
    ParquetDataFeed,
    PolarsDataFeed,
    Strategy,
)

START = dt.datetime(2024, 1, 1, 9, 30)
FIELDS = ("close", "open", "volume", "pred")


def _frame(assets: tuple[str, ...], n: int, step: dt.timedelta, offset: dt.timedelta,
           seed: int, gaps: float = 0.2) -> pl.DataFrame:
    """Random ragged bars: each asset skips a bar with probability ``gaps``."""
    rng = np.random.default_rng(seed)
    rows: dict[str, list] = {k: [] for k in ("timestamp", "asset", "open", "high", "low",
                                             "close", "volume", "pred")}
    for k in range(n):
        t = START + offset + k * step
        for a in assets:
            if rng.random() < gaps:
                continue
            o = float(rng.uniform(50, 150))
            c = float(rng.uniform(50, 150))
            rows["timestamp"].append(t)
            rows["asset"].append(a)
            rows["open"].append(o)
            rows["high"].append(max(o, c) + 1.0)
            rows["low"].append(min(o, c) - 1.0)
            rows["close"].append(c)
            rows["volume"].append(float(rng.integers(100, 1000)))
            rows["pred"].append(float(rng.normal()))
    return pl.DataFrame(rows).with_columns(pl.col("timestamp").cast(pl.Datetime("us")))


def _reference(frames: list[pl.DataFrame], asset: str, field: str, now: dt.datetime,
               n: int) -> np.ndarray:
    """The last ``n`` values of ``field`` of ``asset`` stamped at or before ``now``."""
    rows = pl.concat(frames).filter((pl.col("asset") == asset) & (pl.col("timestamp") <= now))
    return rows.sort("timestamp")[field].to_numpy()[-n:] if rows.height else np.empty(0)


class Reader(Strategy):
    """Records history of every asset and field, by name and by id, at every bar and timer."""

    def __init__(self, n: int = 7, timers: tuple[dt.datetime, ...] = ()) -> None:
        self.n = n
        self.timers = timers
        self.seen: list[tuple[dt.datetime, str, str, np.ndarray, np.ndarray]] = []

    def on_start(self):
        for when in self.timers:
            self.schedule_at(self.look, when)
        assert self.history(0, "close", 3).size == 0  # before the first timestamp

    def look(self, context):
        for aid, name in enumerate(self.assets):
            for field in FIELDS:
                by_name = self.history(name, field, self.n)
                by_id = self.history(aid, field, self.n)
                self.seen.append((self.now, name, field, by_name, by_id))

    def on_slice(self, view, context):
        self.look(context)


def _check(reader: Reader, frames: list[pl.DataFrame]) -> None:
    assert reader.seen
    for now, name, field, by_name, by_id in reader.seen:
        want = _reference(frames, name, field, now, reader.n)
        assert np.array_equal(by_name, want), (now, name, field)
        assert np.array_equal(by_id, want), (now, name, field)
        assert not by_name.flags.writeable and not by_id.flags.writeable
        assert by_name.dtype == np.float64


def test_history_matches_the_frame_at_every_bar_by_name_and_id():
    frame = _frame(("A", "B", "C"), 40, dt.timedelta(days=1), dt.timedelta(0), seed=1)
    reader = Reader(n=7)
    BacktestEngine(PolarsDataFeed(frame, signal_columns=["pred"]), reader).run()
    _check(reader, [frame])


def test_history_of_an_asset_in_two_feeds_is_in_time_order():
    # A has daily bars at 09:30 in the first feed and bars at 12:00 in the second:
    # its rows are not in time order in the store, its history is.
    daily = _frame(("A", "B"), 25, dt.timedelta(days=1), dt.timedelta(0), seed=2)
    noon = _frame(("A", "C"), 25, dt.timedelta(days=1), dt.timedelta(hours=2, minutes=30),
                  seed=3)
    reader = Reader(n=9)
    feeds = [PolarsDataFeed(daily, signal_columns=["pred"]),
             PolarsDataFeed(noon, signal_columns=["pred"])]
    BacktestEngine(feeds, reader).run()
    _check(reader, [daily, noon])


def test_history_in_a_timer_between_bars_ends_at_the_bar_before():
    frame = _frame(("A", "B"), 10, dt.timedelta(days=1), dt.timedelta(0), seed=4)
    timers = (START + dt.timedelta(days=3, hours=5), START + dt.timedelta(days=7, hours=1))
    reader = Reader(n=4, timers=timers)
    BacktestEngine(PolarsDataFeed(frame, signal_columns=["pred"]), reader).run()
    _check(reader, [frame])
    assert {now for now, *_ in reader.seen} >= set(timers)


@pytest.mark.parametrize("chunk", ["1d", "3d", "all"])
def test_history_across_the_chunks_of_a_streamed_run(tmp_path, chunk):
    daily = _frame(("A", "B", "C"), 30, dt.timedelta(hours=8), dt.timedelta(0), seed=5)
    other = _frame(("A", "D"), 30, dt.timedelta(hours=8), dt.timedelta(hours=1), seed=6)
    paths = []
    for i, f in enumerate((daily, other)):
        paths.append(tmp_path / f"f{i}.parquet")
        f.write_parquet(paths[-1], row_group_size=7)
    cfg = BacktestConfig(history_window=12)
    streamed = Reader(n=12)
    BacktestEngine([ParquetDataFeed(p, chunk=chunk, signal_columns=["pred"]) for p in paths],
                   streamed, cfg).run()
    _check(streamed, [daily, other])
    in_memory = Reader(n=12)
    BacktestEngine([PolarsDataFeed(f, signal_columns=["pred"]) for f in (daily, other)],
                   in_memory, cfg).run()
    assert len(streamed.seen) == len(in_memory.seen)
    for s, m in zip(streamed.seen, in_memory.seen, strict=True):
        assert s[:3] == m[:3] and np.array_equal(s[3], m[3]) and np.array_equal(s[4], m[4])


def test_history_after_set_store_reads_the_new_store():
    # a new store (the next chunk) drops the cached columns, by name
    frame = _frame(("A", "B"), 6, dt.timedelta(days=1), dt.timedelta(0), seed=7, gaps=0.0)
    got = {}

    class Swap(Strategy):
        def on_slice(self, view, context):
            if len(got) == 0:
                got["before"] = self.history("A", "close", 2).copy()
                engine = self._require_engine()
                store = engine.store
                from mlbacktest._events import BarStore
                doubled = BarStore(store.ts_array, store.asset_array, store.open_array,
                                   store.high_array, store.low_array, store.close_array * 2,
                                   store.volume_array, store.signal_array, store.asset_names,
                                   store.signal_names)
                self._set_store(doubled)
                got["after"] = self.history("A", "close", 2).copy()
                self._set_store(store)
                got["back"] = self.history("A", "close", 2).copy()

    BacktestEngine(PolarsDataFeed(frame), Swap()).run()
    assert got["after"].tolist() == (got["before"] * 2).tolist()
    assert got["back"].tolist() == got["before"].tolist()


def test_panel_with_chosen_columns_matches_the_panel_of_every_asset():
    daily = _frame(("A", "B", "C"), 20, dt.timedelta(days=1), dt.timedelta(0), seed=8)
    noon = _frame(("A", "D"), 20, dt.timedelta(days=1), dt.timedelta(hours=3), seed=9)
    checked = []

    class Panel(Strategy):
        def on_start(self):
            self.schedule_at(self.look, START + dt.timedelta(days=6, hours=1))

        def look(self, context):
            for field in ("close", "pred"):
                for n in (1, 3, 50):
                    full = self.history_panel(field, n)
                    assert not full.flags.writeable
                    for cols in (["D", "A"], [3, 0, 3], ("B",), np.array([2, 1]), []):
                        ids = [c if isinstance(c, (int, np.integer)) else
                               self.assets.index(c) for c in cols]
                        part = self.history_panel(field, n, cols)
                        want = full[:, ids] if ids else np.empty((full.shape[0], 0))
                        assert part.shape == want.shape
                        assert np.array_equal(part, want, equal_nan=True), (field, n, cols)
                    checked.append(self.now)

        def on_slice(self, view, context):
            self.look(context)
            by_view = self.history_panel("close", 2, view)
            full = self.history_panel("close", 2)
            assert np.array_equal(by_view, full[:, view.asset_ids], equal_nan=True)

    feeds = [PolarsDataFeed(daily, signal_columns=["pred"]),
             PolarsDataFeed(noon, signal_columns=["pred"])]
    BacktestEngine(feeds, Panel()).run()
    assert len(checked) > 40


def test_getters_match_the_portfolio():
    frame = _frame(("A", "B"), 12, dt.timedelta(days=1), dt.timedelta(0), seed=10, gaps=0.0)
    seen = []

    class Getters(Strategy):
        def on_slice(self, view, context):
            pf = self._require_engine().portfolio
            for aid, name in enumerate(self.assets):
                for key in (name, aid, np.int64(aid)):
                    assert self.get_position(key) == pf.position_array[aid]
                    assert self.get_last_price(key) == pf.last_price_array[aid]
                    assert self.get_unrealized_pnl(key) == pf.unrealized_pnl(aid)
                    assert type(self.get_position(key)) is float
            seen.append(self.get_unrealized_pnl())
            self.order_target_quantity("A", 10 if len(seen) % 3 else 0)

    BacktestEngine(PolarsDataFeed(frame), Getters()).run()
    assert any(v != 0 for v in seen)


class Helpers(Strategy):
    """The market-order helpers with their default arguments (the fast path)."""

    def on_slice(self, view, context):
        k = len(view) and int(self.now.day)
        a, b = self.assets[0], 1
        if k % 4 == 0:
            self.buy(a, 3)
            self.sell(b, np.float64(2.0))
        elif k % 4 == 1:
            self.order_target_quantity(a, 7)
            self.order_target_value(b, -1_000.0)
        elif k % 4 == 2:
            self.order_target_percent(a, 0.05)
            self.close_position(b)
        else:
            self.close_position(a)
            self.order_target_percent(b, -0.02)


class HelpersFull(Strategy):
    """The same orders, through the full paths (keywords, order())."""

    def on_slice(self, view, context):
        k = len(view) and int(self.now.day)
        a, b = self.assets[0], 1
        if k % 4 == 0:
            self.order(a, 3.0, time_in_force="gtc")
            self.order(b, -2.0, order_type="market")
        elif k % 4 == 1:
            self.order_target_quantity(a, 7, tolerance=0)
            self.order_target_value(b, -1_000.0, tolerance=0)
        elif k % 4 == 2:
            self.order_target_percent(a, 0.05, tolerance=0)
            self.order_target_quantity(b, 0.0, tolerance=0)
        else:
            self.order_target_quantity(a, 0.0, tolerance=0)
            self.order_target_percent(b, -0.02, tolerance=0)


@pytest.mark.parametrize("fractional", [False, True])
def test_fast_order_helpers_place_the_orders_of_the_full_path(fractional):
    frame = _frame(("A", "B"), 30, dt.timedelta(days=1), dt.timedelta(0), seed=11, gaps=0.0)
    cfg = BacktestConfig(initial_cash=100_000, fractional=fractional, allow_short=True,
                         commission=0.001)
    fast = BacktestEngine(PolarsDataFeed(frame), Helpers(), cfg).run()
    full = BacktestEngine(PolarsDataFeed(frame), HelpersFull(), cfg).run()
    assert fast.orders.height > 20
    assert fast.orders.equals(full.orders)
    assert fast.fills.equals(full.fills)
    assert fast.equity.equals(full.equity)


@pytest.mark.parametrize("call, match", [
    (lambda s: s.buy("A", 10**400), "too large for a float"),
    (lambda s: s.buy("A", True), "quantity must be a number"),
    (lambda s: s.sell("A", -1.0), "sell quantity must be > 0"),
    (lambda s: s.buy("ZZZ", 1.0), "unknown asset 'ZZZ'"),
    (lambda s: s.buy(7, 1.0), "unknown asset id 7"),
    (lambda s: s.order_target_quantity("A", math.inf), "target must be a finite number"),
    (lambda s: s.order_target_percent("A", "x"), "percent must be a number"),
    (lambda s: s.close_position(2**70), "unknown asset id"),
])
def test_fast_paths_fall_back_to_the_full_path_errors(call, match):
    frame = _frame(("A", "B"), 3, dt.timedelta(days=1), dt.timedelta(0), seed=12, gaps=0.0)
    raised = []

    class Bad(Strategy):
        def on_slice(self, view, context):
            if not raised:
                with pytest.raises(OrderError, match=match):
                    call(self)
                raised.append(len(self._require_engine().broker))

    BacktestEngine(PolarsDataFeed(frame), Bad()).run()
    assert raised == [0]


def test_slice_view_arrays_are_read_only_views_of_the_bars():
    frame = _frame(("A", "B", "C"), 8, dt.timedelta(days=1), dt.timedelta(0), seed=13, gaps=0.3)
    checked = []

    class Views(Strategy):
        def on_slice(self, view, context):
            rows = frame.filter(pl.col("timestamp") == self.now).sort("asset")
            assert view.asset_ids.tolist() == [self.assets.index(a) for a in rows["asset"]]
            for f in ("open", "high", "low", "close", "volume"):
                assert np.array_equal(getattr(view, f), rows[f].to_numpy())
            assert view.signals.shape == (len(view), 1)
            assert np.array_equal(view.signals[:, 0], rows["pred"].to_numpy())
            pf = self._require_engine().portfolio
            ids = view.asset_ids
            assert np.array_equal(view.positions, pf.position_array[ids])
            assert np.array_equal(view.weights, self.weights(view))
            for arr in (view.close, view.signals, view.asset_ids, view.positions, view.weights):
                assert not arr.flags.writeable
                with pytest.raises(ValueError):
                    arr[...] = 0
            checked.append(len(view))
            self.order_target_quantity(int(ids[0]), 5)

    BacktestEngine(PolarsDataFeed(frame, signal_columns=["pred"]), Views()).run()
    assert len(checked) == 8


def test_slice_view_positions_are_a_copy_taken_at_the_call():
    frame = _frame(("A",), 5, dt.timedelta(days=1), dt.timedelta(0), seed=14, gaps=0.0)
    kept = []

    class Keep(Strategy):
        def on_slice(self, view, context):
            kept.append((view.positions, self.get_position("A")))
            self.buy("A", 1)

    BacktestEngine(PolarsDataFeed(frame), Keep()).run()
    # each buy fills at the next bar's open, before that bar's hooks
    assert [p.tolist() for p, _ in kept] == [[q] for _, q in kept] == [[0.0], [1.0], [2.0],
                                                                       [3.0], [4.0]]


def test_every_public_name_of_the_compiled_base_is_reserved():
    from mlbacktest._strategy import StrategyCore
    from mlbacktest.strategy import RESERVED_NAMES

    public = {n for n in vars(StrategyCore) if not n.startswith("_")}
    assert {"history", "history_panel", "get_position", "buy", "close_position"} <= public
    assert public <= RESERVED_NAMES
    with pytest.raises(AttributeError, match="self.history"):
        Strategy().history = None


def test_equity_for_sizing_follows_fills_marks_and_accruals():
    # The helpers size from equity cached by the portfolio's version: it must move
    # with every fill, every close and every borrow fee or margin interest charge.
    frame = _frame(("A", "B"), 25, dt.timedelta(days=1), dt.timedelta(0), seed=15, gaps=0.1)
    seen = []

    class Equity(Strategy):
        def on_start(self):
            self.schedule(self.look, every="2d")

        def look(self, context):
            seen.append((self._equity_for_weights(), self.get_equity()))

        def on_slice(self, view, context):
            self.look(context)
            k = len(seen)
            self.order_target_percent("A", 1.5 if k % 3 else 0.5)
            seen.append((self._equity_for_weights(), self.get_equity()))
            self.order_target_percent("B", -0.6 if k % 2 else -0.2)

        def on_fill(self, fill):
            seen.append((self._equity_for_weights(), self.get_equity()))

    cfg = BacktestConfig(initial_cash=100_000, account="margin", margin_rate=0.5,
                         borrow_rate=0.3, fractional=True)
    BacktestEngine(PolarsDataFeed(frame), Equity(), cfg).run()
    assert len(seen) > 60
    assert all(cached == fresh for cached, fresh in seen)
    assert len({fresh for _, fresh in seen}) > 15


class Params(Strategy):
    """A strategy with parameters, for the pickle and copy test."""

    def __init__(self, k: int = 1) -> None:
        self.k = k
        self.window = [1.0, 2.0]

    def on_slice(self, view, context):
        self.window.append(self.get_position(0))


def test_strategies_pickle_and_copy_with_their_attributes():
    import copy
    import pickle

    s = Params(3)
    for other in (pickle.loads(pickle.dumps(s)), copy.deepcopy(s), copy.copy(s)):
        assert type(other) is Params and other.k == 3 and other.window == [1.0, 2.0]
    deep = copy.deepcopy(s)
    deep.window.append(9.0)
    assert s.window == [1.0, 2.0]
    # a copy runs on its own
    frame = _frame(("A",), 4, dt.timedelta(days=1), dt.timedelta(0), seed=16, gaps=0.0)
    BacktestEngine(PolarsDataFeed(frame), deep).run()
    assert deep.window == [1.0, 2.0, 9.0, 0.0, 0.0, 0.0, 0.0] and s.window == [1.0, 2.0]
    with pytest.raises(RuntimeError, match="not attached"):
        copy.copy(s).get_position(0)


def test_release_drops_the_run_and_the_accessors_refuse():
    # (that the run's memory is then freed without the garbage collector is
    # tests/test_research.py::test_a_finished_run_is_freed_without_the_garbage_collector)
    frame = _frame(("A", "B"), 20, dt.timedelta(days=1), dt.timedelta(0), seed=3)
    strategy = Reader(n=3)
    BacktestEngine(PolarsDataFeed(frame, signal_columns=["pred"]), strategy,
                   BacktestConfig()).run(progress=False)
    assert strategy.get_position("A") == 0.0  # still readable after the run
    assert strategy.history("A", "close", 3).size == 3
    strategy._core_release()
    with pytest.raises(RuntimeError, match="not attached"):
        strategy.get_position("A")
    with pytest.raises(RuntimeError, match="not attached"):
        strategy.history("A", "close", 3)
