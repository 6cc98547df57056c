"""Streaming parquet feeds: chunk boundaries change nothing, bad data fails before the run."""

from __future__ import annotations

import dataclasses
import datetime as dt
import os

import numpy as np
import polars as pl
import pytest

from mlbacktest import BacktestConfig, BacktestEngine, ParquetDataFeed, PolarsDataFeed, Strategy
from mlbacktest.errors import DataError

ASSETS = ("AAA", "BBB", "CCC", "DDD", "EEE")
START = dt.datetime(2024, 1, 1, 9, 30)


def _frame(
    n_days: int = 19, per_day: int = 8, seed: int = 3, tz: str | None = None
) -> pl.DataFrame:
    """Intraday bars on weekdays; DDD lists late, EEE has gaps; a noisy 'pred' column."""
    rng = np.random.default_rng(seed)
    columns = ("timestamp", "asset", "open", "high", "low", "close", "volume", "pred")
    rows: dict[str, list] = {k: [] for k in columns}
    price = dict.fromkeys(ASSETS, 100.0)
    day = START
    for _ in range(n_days):
        while day.weekday() >= 5:
            day += dt.timedelta(days=1)
        for k in range(per_day):
            t = day + dt.timedelta(minutes=45 * k)
            for i, a in enumerate(ASSETS):
                if a == "DDD" and t < START + dt.timedelta(days=9):
                    continue
                if a == "EEE" and rng.random() < 0.2:
                    continue
                o = price[a]
                c = o * float(np.exp(rng.normal(0.0, 0.01)))
                h = max(o, c) * (1 + abs(rng.normal(0, 0.004)))
                lo = min(o, c) * (1 - abs(rng.normal(0, 0.004)))
                price[a] = c
                rows["timestamp"].append(t)
                rows["asset"].append(a)
                rows["open"].append(o)
                rows["high"].append(h)
                rows["low"].append(lo)
                rows["close"].append(c)
                rows["volume"].append(float(rng.integers(1_000, 5_000)))
                rows["pred"].append(float(rng.normal()) + 0.1 * i)
        day += dt.timedelta(days=1)
    frame = pl.DataFrame(rows).with_columns(pl.col("timestamp").cast(pl.Datetime("us")))
    if tz is not None:
        frame = frame.with_columns(pl.col("timestamp").dt.replace_time_zone(tz))
    return frame


class Busy(Strategy):
    """Uses history, history_panel, signals, context, timers, resting and linked orders."""

    def on_start(self):
        self.schedule(self.daily, every="1d", at="11:00")
        self.log = []

    def daily(self, context):
        panel = self.history_panel("close", 12)
        self.log.append(float(np.nansum(panel)))
        self.rebalance({"AAA": 0.1, "BBB": -0.05})

    def on_slice(self, view, context):
        closes = view.close
        pred = view.signal("pred")
        for j, a in enumerate(view.asset_ids):
            hist = self.history(int(a), "close", 20)
            if hist.size < 5:
                continue
            mom = hist[-1] / hist[0] - 1.0
            pos = view.positions[j]
            if pos == 0 and pred[j] > 0.8 and mom > -0.01:
                self.order(int(a), 3, limit_price=closes[j] * 0.999)
            elif pos > 0 and (pred[j] < -0.5 or mom < -0.02):
                self.order(int(a), -pos)
            elif pos == 0 and pred[j] < -1.2:
                self.bracket(int(a), -2, stop_loss=closes[j] * 1.02, take_profit=closes[j] * 0.97)
        if context:
            self.log.append(context["vix"])


def _run(feed, *, context=None, config=None, strategy=None):
    strategy = strategy or Busy()
    cfg = config or BacktestConfig(initial_cash=50_000, commission=0.0005, slippage_bps=1.0,
                                   history_window=40)
    result = BacktestEngine(feed, strategy, cfg, context=context).run(progress=False)
    return result, strategy


def _assert_same(a, b):
    for name in ("equity", "fills", "orders", "trades"):
        fa, fb = getattr(a, name), getattr(b, name)
        assert fa.equals(fb), name
    assert a.metrics.keys() == b.metrics.keys()
    for k, v in a.metrics.items():
        w = b.metrics[k]
        assert (v == w) or (v != v and w != w), k


@pytest.fixture(scope="module")
def study(tmp_path_factory):
    path = tmp_path_factory.mktemp("study") / "bars.parquet"
    frame = _frame()
    frame.write_parquet(path, row_group_size=60)
    context = pl.DataFrame({
        "timestamp": [START + dt.timedelta(hours=7 * i) for i in range(80)],
        "vix": [15.0 + (i % 7) for i in range(80)],
    }).with_columns(pl.col("timestamp").cast(pl.Datetime("us")))
    return path, frame, context


def test_chunk_size_changes_nothing(study):
    path, frame, context = study
    base, s0 = _run(PolarsDataFeed(frame), context=context)
    assert len(base.fills) > 20 and len(base.orders) > len(base.fills) / 2
    for chunk in ("1d", "1w", "all", dt.timedelta(hours=5)):
        feed = ParquetDataFeed(path, chunk=chunk)
        assert feed.streaming and len(feed) == frame.height
        res, s1 = _run(feed, context=context)
        _assert_same(base, res)
        assert s1.log == s0.log


def test_tz_aware_streaming_matches_in_memory(tmp_path):
    frame = _frame(n_days=8, tz="America/New_York")
    path = tmp_path / "bars.parquet"
    frame.write_parquet(path, row_group_size=50)
    base, _ = _run(PolarsDataFeed(frame))
    res, _ = _run(ParquetDataFeed(path, chunk="1d"))
    _assert_same(base, res)
    assert res.tz == "America/New_York"


def test_signal_frame_with_a_duration_delay_streams(tmp_path):
    frame = _frame(n_days=10)
    prices = frame.drop("pred")
    preds = (frame.select("timestamp", "asset", "pred")
             .filter(pl.col("timestamp").dt.minute() == 30)
             .with_columns(pl.col("timestamp") - pl.duration(minutes=20)))
    path = tmp_path / "bars.parquet"
    prices.write_parquet(path, row_group_size=40)
    kw = {"signals": preds, "signal_delay": "50m"}
    base, _ = _run(PolarsDataFeed(prices, **kw))
    for chunk in ("1d", "all"):
        res, _ = _run(ParquetDataFeed(path, chunk=chunk, **kw))
        _assert_same(base, res)


def test_several_feeds_stream_together(tmp_path):
    frame = _frame(n_days=8)
    half = frame.filter(pl.col("asset").is_in(["AAA", "BBB"]))
    rest = frame.filter(~pl.col("asset").is_in(["AAA", "BBB"]))
    path = tmp_path / "a.parquet"
    half.write_parquet(path, row_group_size=30)
    base, _ = _run([PolarsDataFeed(half), PolarsDataFeed(rest)])
    res, _ = _run([ParquetDataFeed(path, chunk="1d"), PolarsDataFeed(rest)])
    _assert_same(base, res)


def test_history_is_bounded_by_the_window(study):
    path, _, _ = study

    class Greedy(Strategy):
        def on_slice(self, view, context):
            self.history("AAA", "close", 41)

    with pytest.raises(ValueError, match="history_window"):
        _run(ParquetDataFeed(path, chunk="1w"), strategy=Greedy())


def test_bad_row_in_a_late_window_fails_before_the_run(tmp_path):
    frame = _frame(n_days=8)
    bad_row = frame.height - 7
    frame = frame.with_columns(
        pl.when(pl.int_range(pl.len()) == bad_row).then(pl.col("high") * 0.5)
        .otherwise(pl.col("high")).alias("high"))
    path = tmp_path / "bars.parquet"
    frame.write_parquet(path, row_group_size=40)
    with pytest.raises(DataError, match=rf"row {bad_row} \(asset '{frame['asset'][bad_row]}'"):
        ParquetDataFeed(path, chunk="1d")


def test_duplicates_and_null_timestamps_are_found_by_the_validation_pass(tmp_path):
    frame = _frame(n_days=6)
    dup = pl.concat([frame, frame.slice(frame.height - 3, 1)])
    dup.write_parquet(tmp_path / "dup.parquet")
    with pytest.raises(DataError, match="row"):
        ParquetDataFeed(tmp_path / "dup.parquet", chunk="1d")
    nulls = frame.with_columns(
        pl.when(pl.int_range(pl.len()) == 11).then(None).otherwise(pl.col("timestamp"))
        .alias("timestamp"))
    nulls.write_parquet(tmp_path / "nulls.parquet")
    with pytest.raises(DataError, match="row 11"):
        ParquetDataFeed(tmp_path / "nulls.parquet", chunk="1w")


def test_streaming_refuses_what_it_cannot_stream(tmp_path):
    frame = _frame(n_days=3)
    path = tmp_path / "bars.parquet"
    frame.write_parquet(path)
    frame.with_columns(pl.col("timestamp").dt.to_string("%Y-%m-%d %H:%M:%S")).write_parquet(
        tmp_path / "text.parquet")
    with pytest.raises(DataError, match="Datetime or Date"):
        ParquetDataFeed(tmp_path / "text.parquet", chunk="1d")
    with pytest.raises(ValueError, match="chunk"):
        ParquetDataFeed(path, chunk="-1d")
    with pytest.raises(AttributeError, match="streaming"):
        _ = ParquetDataFeed(path, chunk="1d").panel


def test_progress_bar_counts_every_timestamp(study, capsys):
    path, frame, _ = study
    res, _ = _run(ParquetDataFeed(path, chunk="1w"))
    n_ts = frame["timestamp"].n_unique()
    assert res.equity.height == n_ts
    BacktestEngine(ParquetDataFeed(path, chunk="1w"), Busy(),
                   BacktestConfig(history_window=40)).run(progress=True)
    err = capsys.readouterr().err
    assert "mlbacktest" in err and f"/{n_ts}" in err
    BacktestEngine(PolarsDataFeed(frame), Busy(), BacktestConfig()).run(progress=False)
    assert capsys.readouterr().err == ""


def test_date_timestamps_stream(tmp_path):
    from mlbacktest.data.synthetic import synthetic_bars

    frame = synthetic_bars(n_assets=4, n_bars=120, seed=2).with_columns(
        pl.col("timestamp").cast(pl.Date))
    frame.write_parquet(tmp_path / "daily.parquet", row_group_size=50)
    feed = ParquetDataFeed(tmp_path / "daily.parquet", chunk="1w")
    assert len(feed.window_edges()) >= 17

    class NoTimer(Busy):
        def on_start(self):
            self.log = []

    base, _ = _run(PolarsDataFeed(frame), strategy=NoTimer())
    res, _ = _run(feed, strategy=NoTimer())
    _assert_same(base, res)
    assert len(res.fills) > 10


@pytest.mark.parametrize("seed", range(5))
def test_carried_rows_match_a_brute_force_reference(seed):
    from mlbacktest.engine import _tail_rows

    def reference(ts, asset, n):
        order = np.argsort(ts, kind="stable")
        t, a = ts[order], asset[order]
        u = np.unique(t)
        keep = t >= u[max(u.size - n, 0)]
        for k in np.unique(a):
            keep[np.flatnonzero(a == k)[-n:]] = True
        return order[keep]

    rng = np.random.default_rng(seed)
    for _ in range(100):
        size = int(rng.integers(1, 150))
        ts = np.sort(rng.integers(0, 25, size)).astype(np.int64)
        asset = rng.integers(0, 6, size).astype(np.int32)
        if rng.random() < 0.3:  # several feeds: blocks not in time order
            perm = rng.permutation(size)
            ts, asset = ts[perm], asset[perm]
        n = int(rng.integers(1, 10))
        np.testing.assert_array_equal(_tail_rows(ts, asset, n), reference(ts, asset, n))


@pytest.mark.parametrize("variant", ["plain", "ms_tz_categorical", "int_volume_bool_signal"])
def test_windows_hold_exactly_the_in_memory_bars(tmp_path, variant):
    frame = _frame(n_days=6).with_columns(
        pl.when(pl.int_range(pl.len()) % 7 == 0).then(None).otherwise(pl.col("pred"))
        .alias("pred"))
    if variant == "ms_tz_categorical":
        frame = frame.with_columns(
            pl.col("timestamp").cast(pl.Datetime("ms")).dt.replace_time_zone("Europe/Paris"),
            pl.col("asset").cast(pl.Categorical))
    elif variant == "int_volume_bool_signal":
        frame = frame.with_columns(pl.col("volume").cast(pl.Int64), (pl.col("pred") > 0))
    frame = frame.sample(fraction=1.0, shuffle=True, seed=5)  # rows out of order on disk
    frame.write_parquet(tmp_path / "bars.parquet", row_group_size=64)
    whole = PolarsDataFeed(frame).panel
    feed = ParquetDataFeed(tmp_path / "bars.parquet", chunk="1d")
    parts = [feed.window(lo, hi) for lo, hi in feed.window_edges()]
    assert len(parts) > 1 and feed.asset_names == whole.asset_names
    for name in ("ts", "asset", "open", "high", "low", "close", "volume", "signals",
                 "source_row"):
        np.testing.assert_array_equal(
            np.concatenate([getattr(p, name) for p in parts]), getattr(whole, name), name)
    assert all(p.signal_names == whole.signal_names and p.tz == whole.tz for p in parts)
    np.testing.assert_array_equal(feed.calendar(), np.unique(whole.ts))


def test_run_backtest_passes_progress_chunk_and_out_through(study, capsys, tmp_path):
    from mlbacktest import run_backtest

    path, frame, _ = study
    cfg = BacktestConfig(history_window=40)
    res = run_backtest(str(path), Busy(), cfg, chunk="1w", progress=True)
    assert "mlbacktest" in capsys.readouterr().err
    base, _ = _run(PolarsDataFeed(frame), config=cfg)
    _assert_same(base, res)
    saved = run_backtest(str(path), Busy(), cfg, chunk="1w", progress=False,
                         out=tmp_path / "out")
    _assert_same(base, saved)
    assert (tmp_path / "out" / "result.json").exists()


def test_a_directory_of_daily_files_streams(study, tmp_path):
    path, frame, context = study
    days = frame.with_columns(pl.col("timestamp").dt.date().alias("day"))
    for (day,), part in days.group_by("day", maintain_order=True):
        part.drop("day").write_parquet(tmp_path / f"bars-{day}.parquet")
    base, _ = _run(PolarsDataFeed(frame), context=context)
    for source in (tmp_path, str(tmp_path / "bars-*.parquet")):
        feed = ParquetDataFeed(source, chunk="1w")
        assert len(feed) == frame.height
        res, _ = _run(feed, context=context)
        _assert_same(base, res)


def test_results_are_written_as_the_run_goes(study, tmp_path):
    from mlbacktest import BacktestResult

    path, frame, context = study

    class Watch(Busy):
        """Busy, noting how many fills and equity rows the compiled buffers hold."""

        def __init__(self):
            self.held = []

        def on_slice(self, view, context):
            super().on_slice(view, context)
            self.held.append((self._broker.n_fills, self._portfolio.n_records))

    base, _ = _run(PolarsDataFeed(frame), context=context)
    watch = Watch()
    _run(ParquetDataFeed(path, chunk="1d"), context=context, strategy=watch)
    saved_dir = tmp_path / "out"
    watch2 = Watch()
    cfg = BacktestConfig(initial_cash=50_000, commission=0.0005, slippage_bps=1.0,
                         history_window=40)
    saved = BacktestEngine(ParquetDataFeed(path, chunk="1d"), watch2, cfg,
                           context=context).run(progress=False, out=saved_dir)
    _assert_same(base, saved)
    _assert_same(base, BacktestResult.from_parquet(saved_dir))
    # without out=, the buffers hold everything; with it, at most one day's worth
    # (8 timestamps a day in this study)
    assert max(n for _, n in watch.held) == base.equity.height - 1
    assert max(n for _, n in watch2.held) < 8
    assert max(f for f, _ in watch2.held) < max(f for f, _ in watch.held) / 5


def test_an_in_memory_run_saves_too_and_a_used_directory_is_refused(study, tmp_path):
    _, frame, _ = study
    out = tmp_path / "saved"
    cfg = BacktestConfig(history_window=40)
    first = BacktestEngine(PolarsDataFeed(frame), Busy(), cfg).run(progress=False, out=out)
    assert (out / "result.json").exists() and len(first.fills) > 0

    class MustNotStart(Busy):
        def on_start(self):
            raise AssertionError("the run started")

    with pytest.raises(FileExistsError, match="not empty"):
        BacktestEngine(PolarsDataFeed(frame), MustNotStart(), cfg).run(out=out)
    again = BacktestEngine(PolarsDataFeed(frame), Busy(), cfg).run(
        progress=False, out=out, overwrite=True)
    _assert_same(first, again)


def test_a_failed_run_leaves_the_previous_result_untouched(study, tmp_path):
    from mlbacktest import BacktestResult

    path, _, _ = study

    class Fails(Busy):
        def on_slice(self, view, context):
            super().on_slice(view, context)
            if view.timestamp.day == 10:
                raise KeyError("model missing")

    cfg = BacktestConfig(history_window=40)
    out = tmp_path / "out"
    with pytest.raises(KeyError, match="model missing"):
        BacktestEngine(ParquetDataFeed(path, chunk="1d"), Fails(), cfg).run(
            progress=False, out=out)
    assert os.listdir(tmp_path) == []  # neither the directory nor a temporary one is left

    good = BacktestEngine(ParquetDataFeed(path, chunk="1d"), Busy(), cfg).run(
        progress=False, out=out)
    before = {p.name: p.read_bytes() for p in out.iterdir()}
    with pytest.raises(KeyError, match="model missing"):
        BacktestEngine(ParquetDataFeed(path, chunk="1d"), Fails(), cfg).run(
            progress=False, out=out, overwrite=True)
    assert os.listdir(tmp_path) == ["out"]
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before  # not a byte changed
    _assert_same(good, BacktestResult.from_parquet(out))


@pytest.mark.parametrize("delay", [
    {"signal_delay": "2h"},
    {"signal_delay": 2},
    {"embargo": "1d"},
    {"signal_delay": 3, "embargo": "50m"},
    {"signal_delay": "30h"},  # longer than a window: rows carried across several
])
def test_delayed_price_frame_signals_stream_point_in_time(study, tmp_path, delay):
    path, frame, context = study
    base_feed = PolarsDataFeed(frame, **delay)
    base, _ = _run(base_feed, context=context)
    assert np.isnan(base_feed.panel.signals[:, 0]).any()  # the delay hides early values
    for chunk in ("1d", "5h", "all"):
        feed = ParquetDataFeed(path, chunk=chunk, **delay)
        parts = [feed.window(lo, hi) for lo, hi in feed.window_edges()]
        np.testing.assert_array_equal(
            np.concatenate([p.signals for p in parts]), base_feed.panel.signals)
        res, _ = _run(ParquetDataFeed(path, chunk=chunk, **delay), context=context)
        _assert_same(base, res)


def test_bar_delays_of_a_signal_frame_stream(tmp_path):
    frame = _frame(n_days=9)
    prices = frame.drop("pred")
    preds = frame.select("timestamp", "asset", "pred").filter(
        pl.col("timestamp").dt.minute() != 15)
    prices.write_parquet(tmp_path / "bars.parquet", row_group_size=40)
    kw = {"signals": preds, "signal_delay": 2, "embargo": "10m"}
    whole = PolarsDataFeed(prices, **kw)
    feed = ParquetDataFeed(tmp_path / "bars.parquet", chunk="1d", **kw)
    parts = [feed.window(lo, hi) for lo, hi in feed.window_edges()]
    np.testing.assert_array_equal(np.concatenate([p.signals for p in parts]),
                                  whole.panel.signals)
    base, _ = _run(whole)
    res, _ = _run(ParquetDataFeed(tmp_path / "bars.parquet", chunk="1d", **kw))
    _assert_same(base, res)


def test_windows_with_delayed_signals_must_be_read_in_order(study):
    path, _, _ = study
    feed = ParquetDataFeed(path, chunk="1d", signal_delay=1)
    edges = feed.window_edges()
    feed.window(*edges[0])
    feed.window(*edges[1])
    with pytest.raises(ValueError, match="time order"):
        feed.window(*edges[1])
    feed.window(*edges[0])  # starting over is fine


def test_signal_sources_arrive_the_same_in_a_streamed_run(study):
    from mlbacktest import SignalSource

    path, frame, _ = study
    preds = (frame.select("timestamp", "asset", "pred")
             .filter(pl.col("timestamp").dt.hour() == 11)
             .with_columns(pl.col("timestamp") + pl.duration(minutes=5)))

    class OnSignal(Busy):
        def on_signal(self, event, context):
            hist = self.history(event.asset, "close", 3)
            self.log.append((event.asset, event.values["pred"], float(hist.sum())))
            if event.values["pred"] > 0.5:
                self.order(event.asset, 1)

    def go(feed):
        strategy = OnSignal()
        result = BacktestEngine(feed, strategy, BacktestConfig(history_window=40),
                                sources=SignalSource(preds, latency="20m")).run(progress=False)
        return result, strategy

    base, s0 = go(PolarsDataFeed(frame))
    res, s1 = go(ParquetDataFeed(path, chunk="1d"))
    _assert_same(base, res)
    assert s0.log == s1.log and sum(isinstance(x, tuple) for x in s1.log) > 20


def test_filters_push_down_into_every_window(study):
    path, frame, _ = study
    start, end = dt.datetime(2024, 1, 4), dt.datetime(2024, 1, 20, 12)
    keep = ["AAA", "CCC", "DDD"]
    subset = frame.filter(pl.col("timestamp").is_between(start, end)
                          & pl.col("asset").is_in(keep))
    feed = ParquetDataFeed(path, chunk="1d", start=start, end=end, assets=keep)
    assert feed.asset_names == tuple(keep) and len(feed) == subset.height
    whole = PolarsDataFeed(subset).panel
    parts = [feed.window(lo, hi) for lo, hi in feed.window_edges()]
    np.testing.assert_array_equal(np.concatenate([p.close for p in parts]), whole.close)
    np.testing.assert_array_equal(np.concatenate([p.ts for p in parts]), whole.ts)

    class Hold(Strategy):
        def on_start(self):
            self.buy("AAA", 5)

    streamed = BacktestEngine(feed, Hold(), BacktestConfig()).run(progress=False)
    in_memory = BacktestEngine(PolarsDataFeed(subset), Hold(), BacktestConfig()).run(
        progress=False)
    _assert_same(in_memory, streamed)


def test_two_streamed_feeds_with_different_windows_and_a_repeat_run(tmp_path):
    frame = _frame(n_days=10)
    half = frame.filter(pl.col("asset").is_in(["AAA", "BBB"]))
    rest = frame.filter(~pl.col("asset").is_in(["AAA", "BBB"]))
    half.write_parquet(tmp_path / "a.parquet", row_group_size=30)
    rest.write_parquet(tmp_path / "b.parquet", row_group_size=30)
    base, _ = _run([PolarsDataFeed(half), PolarsDataFeed(rest)])

    def streamed():
        return _run([ParquetDataFeed(tmp_path / "a.parquet", chunk="1d"),
                     ParquetDataFeed(tmp_path / "b.parquet", chunk="1w")])[0]

    first, second = streamed(), streamed()
    _assert_same(base, first)
    _assert_same(first, second)  # same inputs, same outputs (the read-ahead thread included)


def test_the_validation_pass_shows_a_bar_only_in_a_terminal(study, monkeypatch):
    import io

    import mlbacktest.data.streaming as streaming

    path, frame, _ = study
    assert streaming._validation_bar(4) is None  # pytest's stderr is not a terminal

    class Terminal(io.StringIO):
        def isatty(self):
            return True

    monkeypatch.setattr("sys.stderr", Terminal())
    bar = streaming._validation_bar(4)
    assert bar is not None and bar.total == 4
    bar.close()
    assert len(ParquetDataFeed(path, chunk="1d")) == frame.height


# ------------------------------------------------- files changed after validation
def _daily_files(frame: pl.DataFrame, directory, **write) -> list:
    """One file per day of `frame` in `directory`; returns their paths in order."""
    days = frame.with_columns(pl.col("timestamp").dt.date().alias("day"))
    paths = []
    for (day,), part in days.group_by("day", maintain_order=True):
        path = directory / f"bars-{day}.parquet"
        part.drop("day").write_parquet(path, **write)
        paths.append(path)
    return paths


@pytest.fixture
def daily(tmp_path):
    frame = _frame(n_days=10)
    paths = _daily_files(frame, tmp_path, compression="uncompressed", statistics=False)
    return tmp_path, frame, paths


def _read_all(feed):
    for lo, hi in feed.window_edges():
        feed.window(lo, hi)


def test_a_file_rewritten_with_the_same_size_is_refused(daily):
    directory, frame, paths = daily
    feed = ParquetDataFeed(directory, chunk="1w")
    target = paths[6]
    part = pl.read_parquet(target)
    negative = part.with_columns(-pl.col("open"), -pl.col("high"), -pl.col("low"),
                                 -pl.col("close"))
    size = target.stat().st_size
    negative.write_parquet(target, compression="uncompressed", statistics=False)
    assert target.stat().st_size == size  # same size, negative prices
    with pytest.raises(DataError, match=f"{target.name}' changed after the feed was validated"):
        _run(feed)


def test_a_file_rewritten_with_another_size_is_refused_not_a_panic(daily):
    directory, frame, paths = daily
    feed = ParquetDataFeed(directory, chunk="1w")
    target = paths[7]
    pl.concat([pl.read_parquet(target)] * 3).write_parquet(target)
    with pytest.raises(DataError, match=f"{target.name}' changed .*size"):
        _read_all(feed)


def test_a_deleted_file_is_refused(daily):
    directory, frame, paths = daily
    feed = ParquetDataFeed(str(directory / "*.parquet"), chunk="1w")
    paths[3].unlink()
    with pytest.raises(DataError, match=f"{paths[3].name}' was deleted"):
        _read_all(feed)


def test_a_file_with_a_changed_schema_is_refused(daily):
    directory, frame, paths = daily
    feed = ParquetDataFeed(directory, chunk="1w")
    target = paths[2]
    pl.read_parquet(target).with_columns(pl.col("volume").cast(pl.Int64)).write_parquet(target)
    with pytest.raises(DataError, match=f"{target.name}' changed"):
        _read_all(feed)


def test_same_size_and_time_but_other_rows_or_schema_is_found_at_the_first_window(daily):
    """``cp -p`` keeps size and time: the footer is compared again at the first window."""
    directory, frame, paths = daily
    feed = ParquetDataFeed(directory, chunk="1w")
    files = feed._stream.files
    k = files.files.index(str(paths[4]))
    stamp = files.stamps[k]
    files.stamps[k] = dataclasses.replace(stamp, rows=stamp.rows + 1)
    lo, hi = feed.window_edges()[-1]
    feed.window(lo, hi)  # a later window compares size and time only
    lo, hi = feed.window_edges()[0]
    with pytest.raises(DataError, match=f"{paths[4].name}' changed .* rows"):
        feed.window(lo, hi)
    files.stamps[k] = dataclasses.replace(stamp, schema=stamp.schema[:-1])
    with pytest.raises(DataError, match=f"{paths[4].name}' changed .*schema"):
        feed.window(lo, hi)
    files.stamps[k] = stamp
    feed.window(lo, hi)


def test_a_file_added_to_the_directory_or_glob_is_refused(daily):
    directory, frame, paths = daily
    by_dir = ParquetDataFeed(directory, chunk="1w")
    by_glob = ParquetDataFeed(str(directory / "bars-*.parquet"), chunk="1w")
    extra = directory / "bars-2030-01-01.parquet"
    pl.read_parquet(paths[0]).write_parquet(extra)
    for feed in (by_dir, by_glob):
        with pytest.raises(DataError, match="bars-2030-01-01.parquet' appeared"):
            _read_all(feed)


def test_a_polars_panic_while_reading_is_a_data_error_naming_the_path(daily, monkeypatch):
    directory, frame, paths = daily
    feed = ParquetDataFeed(directory, chunk="1w")

    class Panicking:
        def filter(self, *_):
            return self

        def collect(self):
            raise pl.exceptions.PanicException("range end index 4096 out of range")

    monkeypatch.setattr(feed._stream, "lf", Panicking())
    lo, hi = feed.window_edges()[1]
    with pytest.raises(DataError, match=f"cannot read {str(directory)!r}: range end"):
        feed.window(lo, hi)


def test_unchanged_files_read_as_validated(daily):
    directory, frame, paths = daily
    feed = ParquetDataFeed(directory, chunk="1w")
    base, _ = _run(PolarsDataFeed(frame))
    res, _ = _run(feed)
    _assert_same(base, res)
