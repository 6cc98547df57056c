"""Saving, loading and pandas/pyfolio/quantstats exports of BacktestResult (results.io)."""

from __future__ import annotations

import datetime as dt
import io
import json
import math
import os
import re
import struct
import warnings

import numpy as np
import pandas as pd
import polars as pl
import pytest
from helpers import Idle, TopK, synthetic_frame
from helpers import run_feed as run

from mlbacktest import ParquetDataFeed, PolarsDataFeed
from mlbacktest.models import SquareRootImpact, TieredCommission
from mlbacktest.results import BacktestResult
from mlbacktest.results.io import FORMAT_VERSION, FRAME_NAMES

NY = "America/New_York"
INTRADAY_START = "2024-03-08 14:30"  # UTC; clocks in New York go forward on 2024-03-10
FRAMES = (*FRAME_NAMES, "returns", "exposure")


def bars(n_assets=5, n_bars=40, every="1d", tz=None, start="2023-01-02"):
    return synthetic_frame(n_assets, n_bars, seed=11, every=every, tz=tz, start=start)


@pytest.fixture(scope="module")
def daily():
    # Whole shares: pyfolio's round-trip analysis counts shares one by one.
    return run(bars(), fractional=False)


@pytest.fixture(scope="module")
def intraday():
    """Ten-minute bars around the clock for three days across a daylight-saving change in
    New York, with cost models."""
    frame = bars(n_bars=3 * 24 * 60 // 10, every="10m", tz=NY, start=INTRADAY_START)
    return run(
        frame,
        TopK(every=12),
        commission=TieredCommission([(0, 0.0035), (100_000, 0.002)], minimum=0.35),
        slippage_bps=SquareRootImpact(0.1, sigma=0.02),
        latency=dt.timedelta(milliseconds=5),
        position_rules={"stop_loss": 0.2},
        borrow_rate={"A000": 0.01},
    )


def bits(value) -> bytes:
    return struct.pack("<d", float(value))


def assert_same_result(a: BacktestResult, b: BacktestResult) -> None:
    """Every frame equal, metrics bit-identical, scalars and config equal."""
    for name in FRAMES:
        left, right = getattr(a, name), getattr(b, name)
        assert left.schema == right.schema, name
        assert left.equals(right, null_equal=True), name
    assert list(a.metrics) == list(b.metrics)
    for key in a.metrics:
        assert bits(a.metrics[key]) == bits(b.metrics[key]), key
    assert (a.asset_names, a.tz, a.initial_cash) == (b.asset_names, b.tz, b.initial_cash)
    assert bits(a.periods_per_year) == bits(b.periods_per_year)
    assert a.risk_free == b.risk_free
    assert a.summary(file=io.StringIO()) == b.summary(file=io.StringIO())


# -- parquet round trip ---------------------------------------------------------------


def test_round_trip_daily(daily, tmp_path):
    assert len(daily.fills) > 0 and len(daily.trades) > 0
    written = daily.to_parquet(tmp_path / "run")
    assert written == tmp_path / "run"
    assert sorted(p.name for p in written.iterdir()) == [
        "equity.parquet", "fills.parquet", "orders.parquet", "result.json"
    ]
    back = BacktestResult.from_parquet(written)
    assert_same_result(daily, back)
    assert back.config == daily.config
    meta = json.loads((written / "result.json").read_text())
    assert meta["format_version"] == FORMAT_VERSION
    assert meta["rows"] == {"equity": 40, "fills": len(daily.fills), "orders": len(daily.orders)}


def test_round_trip_tz_aware_intraday_with_cost_models(intraday, tmp_path):
    assert intraday.tz == NY and len(intraday.fills) > 0
    back = BacktestResult.from_parquet(intraday.to_parquet(tmp_path / "run"))
    assert_same_result(intraday, back)
    assert back.config == intraday.config
    assert back.config.commission_model == intraday.config.commission_model
    assert back.config.latency == dt.timedelta(milliseconds=5)
    # Non-finite floats of the cost models are stored as standard JSON.
    text = (tmp_path / "run" / "result.json").read_text()
    assert "Infinity" not in text and "NaN" not in text


def test_round_trip_without_fills(tmp_path):
    idle = run(bars(), Idle())
    assert len(idle.fills) == 0 and len(idle.orders) == 0
    back = BacktestResult.from_parquet(idle.to_parquet(tmp_path / "idle"))
    assert_same_result(idle, back)
    assert back.trades.schema == idle.trades.schema and back.trades.height == 0


def test_round_trip_keeps_the_benchmark(tmp_path):
    frame = bars(n_bars=30)
    bench = frame.filter(pl.col("asset") == "A001").select("timestamp", "close")
    result = run(frame)
    without = BacktestResult.from_parquet(result.to_parquet(tmp_path / "a"))
    assert math.isnan(without.metrics["beta"])
    # The same run with a benchmark (alpha and beta defined) survives the round trip.
    original = BacktestResult(
        equity=result._equity, fills=result._fills,
        orders={**result._orders, "reason": result._reason},
        asset_names=result.asset_names, tz=result.tz, initial_cash=result.initial_cash,
        config=result.config, benchmark=bench,
    )
    assert math.isfinite(original.metrics["beta"])
    back = BacktestResult.from_parquet(original.to_parquet(tmp_path / "b"))
    assert_same_result(original, back)
    assert (tmp_path / "b" / "benchmark.parquet").is_file()


def test_refuses_to_overwrite(daily, tmp_path):
    target = tmp_path / "run"
    target.mkdir()
    (target / "notes.txt").write_text("keep me")
    for overwrite in (False, True):  # a file mlbacktest did not write: refused either way
        with pytest.raises(FileExistsError, match=r"did not write \(notes.txt\)"):
            daily.to_parquet(target, overwrite=overwrite)
    assert os.listdir(target) == ["notes.txt"]
    (target / "notes.txt").unlink()
    daily.to_parquet(target)
    with pytest.raises(FileExistsError, match="earlier result.*overwrite=True"):
        daily.to_parquet(target)
    daily.to_parquet(target, overwrite=True)
    assert_same_result(daily, BacktestResult.from_parquet(target))
    # Overwriting a result with one without a benchmark, fills or orders.
    idle = run(bars(), Idle())
    idle.to_parquet(target, overwrite=True)
    assert_same_result(idle, BacktestResult.from_parquet(target))
    (tmp_path / "file").write_text("x")
    with pytest.raises(NotADirectoryError):
        daily.to_parquet(tmp_path / "file", overwrite=True)


def _snapshot(root) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(root.iterdir())}


@pytest.mark.parametrize("planted", [
    {"report.html": "<html>my own notes</html>"},          # a report mlbacktest did not write
    {"result.json": "{}"},                                  # not a saved result
    {"result.json": json.dumps({"format": "mlbacktest.BacktestResult"}), "x.csv": "1,2"},
    {"equity.parquet": "not parquet at all"},               # a table without result.json
])
def test_refuses_a_directory_holding_what_it_did_not_write(daily, tmp_path, planted):
    target = tmp_path / "run"
    target.mkdir()
    for name, text in planted.items():
        (target / name).write_text(text)
    before = _snapshot(target)
    for overwrite in (False, True):
        with pytest.raises(FileExistsError, match="mlbacktest only replaces its own output"):
            daily.to_parquet(target, overwrite=overwrite)
    assert _snapshot(target) == before
    assert sorted(os.listdir(tmp_path)) == ["run"]


def test_an_earlier_output_with_its_report_is_replaced_whole(daily, tmp_path):
    target = tmp_path / "run"
    idle = run(bars(), Idle())
    idle.to_parquet(target)
    idle.report(target / "report.html")
    daily.to_parquet(target, overwrite=True)
    # The old report described the old result: it goes with it.
    assert sorted(os.listdir(target)) == [
        "equity.parquet", "fills.parquet", "orders.parquet", "result.json"]
    assert_same_result(daily, BacktestResult.from_parquet(target))
    assert sorted(os.listdir(tmp_path)) == ["run"]


def test_a_failed_save_leaves_the_previous_result_untouched(daily, tmp_path, monkeypatch):
    target = tmp_path / "run"
    idle = run(bars(), Idle())
    idle.to_parquet(target)
    before = _snapshot(target)
    real = pl.DataFrame.write_parquet
    calls = []

    def fails_second_time(self, *args, **kwargs):
        calls.append(1)
        if len(calls) == 2:
            raise OSError(28, "No space left on device")
        return real(self, *args, **kwargs)

    monkeypatch.setattr(pl.DataFrame, "write_parquet", fails_second_time)
    with pytest.raises(OSError, match="No space left"):
        daily.to_parquet(target, overwrite=True)
    monkeypatch.undo()
    assert len(calls) == 2
    assert _snapshot(target) == before  # nothing removed, nothing mixed in
    assert sorted(os.listdir(tmp_path)) == ["run"]  # no temporary directory left
    assert_same_result(idle, BacktestResult.from_parquet(target))


def test_writers_never_follow_symlinks(daily, tmp_path):
    victim = tmp_path / "victim.txt"
    victim.write_text("precious")
    # The directory itself a link: refused.
    real_dir = tmp_path / "real"
    real_dir.mkdir()
    (tmp_path / "link").symlink_to(real_dir)
    with pytest.raises(FileExistsError, match="symbolic link"):
        daily.to_parquet(tmp_path / "link")
    assert os.listdir(real_dir) == []
    # Links planted at the report's name and at temporary names a writer might use.
    target = daily.to_parquet(tmp_path / "run")
    for name in ("report.html", ".report.html.tmp", ".equity.parquet.tmp", ".result.json.tmp"):
        (target.parent / name).symlink_to(victim)
    (target / "report.html").symlink_to(victim)
    with pytest.raises(FileExistsError, match="symbolic link"):
        daily.report(target / "report.html")
    with pytest.raises(FileExistsError, match=r"did not write \(report.html\)"):
        daily.to_parquet(target, overwrite=True)
    (target / "report.html").unlink()
    for name in (".equity.parquet.tmp", ".result.json.tmp", ".report.html.tmp"):
        (target / name).symlink_to(victim)
    with pytest.raises(FileExistsError, match="did not write"):
        daily.to_parquet(target, overwrite=True)
    for name in (".equity.parquet.tmp", ".result.json.tmp", ".report.html.tmp"):
        (target / name).unlink()
    daily.to_parquet(target, overwrite=True)
    daily.report(target / "report.html")
    daily.report(target / "report.html")  # its own report: replaced
    assert victim.read_text() == "precious"
    assert not (target / "report.html").is_symlink()
    # A file that is not a report it wrote is not replaced either.
    with pytest.raises(FileExistsError, match="not a report mlbacktest wrote"):
        daily.report(victim)
    assert victim.read_text() == "precious"
    # New files are created exclusively, without following a link.
    from mlbacktest.results.io import _open_new

    with pytest.raises(FileExistsError):
        _open_new(tmp_path / ".report.html.tmp")
    assert victim.read_text() == "precious"


def test_clear_errors_for_missing_or_corrupt_directories(daily, tmp_path):
    with pytest.raises(FileNotFoundError, match="no such directory"):
        BacktestResult.from_parquet(tmp_path / "absent")
    (tmp_path / "empty").mkdir()
    with pytest.raises(FileNotFoundError, match="result.json is missing"):
        BacktestResult.from_parquet(tmp_path / "empty")

    good = daily.to_parquet(tmp_path / "good")

    def broken(name: str):
        target = tmp_path / name
        daily.to_parquet(target)
        return target

    bad = broken("json")
    (bad / "result.json").write_text("{not json")
    with pytest.raises(ValueError, match="result.json is corrupt"):
        BacktestResult.from_parquet(bad)

    bad = broken("version")
    meta = json.loads((good / "result.json").read_text())
    (bad / "result.json").write_text(json.dumps(meta | {"format_version": FORMAT_VERSION + 1}))
    with pytest.raises(ValueError, match="format version"):
        BacktestResult.from_parquet(bad)

    bad = broken("other")
    (bad / "result.json").write_text(json.dumps({"hello": 1}))
    with pytest.raises(ValueError, match="does not describe a saved BacktestResult"):
        BacktestResult.from_parquet(bad)

    bad = broken("missing")
    (bad / "fills.parquet").unlink()
    with pytest.raises(FileNotFoundError, match="fills.parquet is missing"):
        BacktestResult.from_parquet(bad)

    bad = broken("truncated")
    data = (bad / "orders.parquet").read_bytes()
    (bad / "orders.parquet").write_bytes(data[: len(data) // 2])
    with pytest.raises(ValueError, match="orders.parquet cannot be read"):
        BacktestResult.from_parquet(bad)

    bad = broken("rows")
    pl.read_parquet(good / "equity.parquet").head(5).write_parquet(bad / "equity.parquet")
    with pytest.raises(ValueError, match="equity.parquet has 5 rows, result.json says 40"):
        BacktestResult.from_parquet(bad)

    bad = broken("codes")
    orders = pl.read_parquet(good / "orders.parquet")
    orders.with_columns(pl.lit(99, dtype=pl.Int8).alias("status")).write_parquet(
        bad / "orders.parquet"
    )
    with pytest.raises(ValueError, match="invalid result.*order status 99"):
        BacktestResult.from_parquet(bad)


def _edit_table(name: str, change):
    def edit(root):
        path = root / f"{name}.parquet"
        change(pl.read_parquet(path)).write_parquet(path)
    return edit


def _edit_meta(**entries):
    def edit(root):
        meta = json.loads((root / "result.json").read_text())
        (root / "result.json").write_text(json.dumps(meta | entries))
    return edit


def _set(column: str, row: int, value, dtype=pl.Float64):
    def change(frame):
        values = frame[column].to_list()
        values[row] = value
        return frame.with_columns(pl.Series(column, values, dtype=dtype))
    return change


# Every kind of tampering from_parquet refuses: (edit, file, field, message).
TAMPERING = {
    "nan equity": (_edit_table("equity", _set("equity", 7, float("nan"))),
                   "equity.parquet", "equity", "has 1 non-finite values; first at row 7 (nan)"),
    "rescaled equity": (_edit_table("equity", lambda f: f.with_columns(pl.col("equity") * 2)),
                        "equity.parquet", "equity", "is not cash + positions_value"),
    "infinite cash": (_edit_table("equity", _set("cash", 3, float("inf"))),
                      "equity.parquet", "cash", "non-finite values; first at row 3"),
    "reversed timestamps": (_edit_table("equity", lambda f: f.reverse()),
                            "equity.parquet", "ts", "is not strictly increasing: row 1"),
    "null timestamp": (_edit_table("equity", _set("ts", 4, None, pl.Int64)),
                       "equity.parquet", "ts", "has 1 null values; first at row 4"),
    "timestamps as strings": (
        _edit_table("equity", lambda f: f.with_columns(pl.col("ts").cast(pl.String))),
        "equity.parquet", "ts", "has type String, expected Int64"),
    "missing column": (_edit_table("equity", lambda f: f.drop("cash")),
                       "equity.parquet", "cash", "is missing"),
    "unsorted fills": (_edit_table("fills", lambda f: f.reverse()),
                       "fills.parquet", "ts", "is not increasing"),
    "nan quantity": (_edit_table("fills", _set("quantity", 2, float("nan"))),
                     "fills.parquet", "quantity", "non-finite values; first at row 2"),
    "negative fill price": (_edit_table("fills", _set("price", 5, -12.5)),
                            "fills.parquet", "price",
                            "is negative in 1 rows; first at row 5 (-12.5)"),
    "unknown asset id": (_edit_table("fills", _set("asset", 0, 9, pl.Int32)),
                         "fills.parquet", "asset",
                         "is not an asset id (0 to 4) in 1 rows; first at row 0 (9)"),
    "nan order quantity": (_edit_table("orders", _set("quantity", 1, float("nan"))),
                           "orders.parquet", "quantity", "non-finite values; first at row 1"),
    "zero initial cash": (_edit_meta(initial_cash=0), "result.json", "initial_cash",
                          "must be a finite number > 0, got 0"),
    "negative initial cash": (_edit_meta(initial_cash=-1e6), "result.json", "initial_cash",
                              "must be a finite number > 0"),
    "initial cash as text": (_edit_meta(initial_cash="1e6"), "result.json", "initial_cash",
                             "got '1e6'"),
    "asset names as a string": (_edit_meta(asset_names="A000,A001"), "result.json",
                                "asset_names", "must be a list of strings, got 'A000,A001'"),
    "integer asset names": (_edit_meta(asset_names=[0, 1, 2, 3, 4]), "result.json",
                            "asset_names", "must be a list of strings"),
    "duplicate asset names": (_edit_meta(asset_names=["A", "A", "B", "C", "D"]), "result.json",
                              "asset_names", "names assets twice: ['A']"),
    "float format version": (_edit_meta(format_version=1.0), "result.json", "format_version",
                             "is 1.0"),
    "string format version": (_edit_meta(format_version="1"), "result.json", "format_version",
                              "is '1'"),
    "boolean format version": (_edit_meta(format_version=True), "result.json",
                               "format_version", "is True"),
    "huge periods per year": (_edit_meta(periods_per_year=1e308), "result.json",
                              "periods_per_year", "one period per nanosecond), got 1e+308"),
    "risk-free as text": (_edit_meta(risk_free="0.02"), "result.json", "risk_free",
                          "must be a finite number"),
    "time zone as a number": (_edit_meta(tz=5), "result.json", "tz", "must be a time zone name"),
    "negative row count": (_edit_meta(rows={"equity": -1, "fills": 0, "orders": 0}),
                           "result.json", "rows", "must map table names to row counts"),
}


@pytest.mark.parametrize("case", list(TAMPERING), ids=list(TAMPERING))
def test_tampered_results_are_refused_naming_file_and_field(daily, tmp_path, case):
    from mlbacktest import ResultFileError

    edit, file, field, message = TAMPERING[case]
    root = daily.to_parquet(tmp_path / "run")
    assert BacktestResult.from_parquet(root).fills.height > 5  # untouched, it loads
    edit(root)
    with pytest.raises(ResultFileError, match=re.escape(message)) as info:
        BacktestResult.from_parquet(root)
    assert isinstance(info.value, ValueError)
    assert (info.value.path, info.value.field) == (str(root / file), field)
    assert f"{root / file}: field {field!r}" in str(info.value)


def test_a_config_that_is_not_data_is_kept_as_text(daily, tmp_path):
    import copy

    odd = copy.copy(daily)
    odd.config = object()
    with pytest.warns(UserWarning, match="config is saved only as text"):
        odd.to_parquet(tmp_path / "odd")
    back = BacktestResult.from_parquet(tmp_path / "odd")
    assert back.config is None
    assert "object object" in json.loads((tmp_path / "odd" / "result.json").read_text())[
        "config"]["repr"]
    assert_same_result(daily, back)


def test_look_ahead_configs_load_without_warning(tmp_path):
    with pytest.warns(Warning, match="look-ahead"):
        result = run(bars(n_bars=15), fill_at="close")
    result.to_parquet(tmp_path / "close")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        back = BacktestResult.from_parquet(tmp_path / "close")
    assert back.config.fill_at == "close"


# -- pandas ---------------------------------------------------------------------------


def test_to_pandas(intraday):
    frames = intraday.to_pandas()
    assert set(frames) == {*FRAMES, "metrics"}
    eq = frames["equity"]
    assert isinstance(eq.index, pd.DatetimeIndex) and eq.index.name == "timestamp"
    assert str(eq.index.tz) == NY
    assert list(eq.columns) == intraday.equity.columns[1:]
    np.testing.assert_array_equal(eq["equity"].to_numpy(), intraday.equity["equity"].to_numpy())
    expected_ns = intraday.equity["timestamp"].dt.convert_time_zone("UTC").to_physical()
    assert (eq.index.as_unit("ns").asi8 == expected_ns.to_numpy()).all()
    for name in ("fills", "orders", "trades", "open_positions"):
        assert list(frames[name].columns) == getattr(intraday, name).columns
        assert len(frames[name]) == len(getattr(intraday, name))
    np.testing.assert_array_equal(frames["trades"]["net_pnl"], intraday.trades["net_pnl"])
    assert frames["metrics"].loc["sharpe", "value"] == intraday.metrics["sharpe"]


def test_returns_series_per_bar_and_per_day(daily, intraday):
    per_bar = daily.returns_series()
    assert per_bar.dtype == np.float64 and per_bar.name == "returns"
    assert isinstance(per_bar.index, pd.DatetimeIndex) and per_bar.index.tz is None
    np.testing.assert_array_equal(per_bar.to_numpy(), daily.equity["returns"].to_numpy())
    assert (per_bar.index == pd.DatetimeIndex(daily.equity["timestamp"].to_numpy())).all()

    # Intraday: compounded to calendar days of New York, labelled at midnight.
    auto = intraday.returns_series()
    assert auto.equals(intraday.returns_series("D"))
    assert str(auto.index.tz) == NY
    assert (auto.index == auto.index.normalize()).all() and auto.index.is_unique
    eq = intraday.equity.with_columns(day=pl.col("timestamp").dt.date())
    last = eq.group_by("day", maintain_order=True).agg(pl.col("equity").last())
    expected = np.diff(np.concatenate([[intraday.initial_cash], last["equity"].to_numpy()]))
    expected /= np.concatenate([[intraday.initial_cash], last["equity"].to_numpy()[:-1]])
    np.testing.assert_allclose(auto.to_numpy(), expected, rtol=1e-12)
    assert [d.date() for d in auto.index] == last["day"].to_list()
    assert len(intraday.returns_series("bar")) == len(intraday.equity)
    with pytest.raises(ValueError, match="freq must be"):
        intraday.returns_series("W")


# -- pyfolio --------------------------------------------------------------------------


def test_to_pyfolio_shapes_and_values(intraday):
    feed_frame = bars(n_bars=3 * 24 * 60 // 10, every="10m", tz=NY, start=INTRADAY_START)
    returns, positions, transactions = intraday.to_pyfolio(prices=feed_frame)
    days = intraday.equity.group_by(pl.col("timestamp").dt.date(), maintain_order=True).agg(
        pl.col("cash", "positions_value").last()
    )
    n_days = days.height
    assert returns.shape == (n_days,) and returns.dtype == np.float64
    for index in (returns.index, positions.index):
        assert str(index.tz) == "UTC" and (index == index.normalize()).all()
        assert [d.date() for d in index] == days["timestamp"].to_list()
    traded = sorted(set(intraday.fills["asset"].to_list()))
    assert list(positions.columns) == [*traded, "cash"]
    assert (positions.dtypes == np.float64).all()
    np.testing.assert_array_equal(positions["cash"].to_numpy(), days["cash"].to_numpy())
    # Marked at the feed's closes, the positions add up to the recorded positions value.
    np.testing.assert_allclose(
        positions.drop(columns="cash").sum(axis=1).to_numpy(),
        days["positions_value"].to_numpy(), rtol=1e-9, atol=1e-6,
    )
    assert list(transactions.columns) == ["amount", "price", "symbol"]
    assert len(transactions) == len(intraday.fills)
    np.testing.assert_array_equal(transactions["amount"], intraday.fills["quantity"])
    np.testing.assert_array_equal(transactions["price"], intraday.fills["price"])
    assert transactions["symbol"].tolist() == intraday.fills["asset"].to_list()
    wall = intraday.fills["timestamp"].dt.replace_time_zone(None).to_list()
    assert [t.tz_localize(None).to_pydatetime() for t in transactions.index] == wall
    # Without prices the assets are valued at their last fill: same cash, same quantities.
    _, rough, _ = intraday.to_pyfolio()
    np.testing.assert_array_equal(rough["cash"].to_numpy(), positions["cash"].to_numpy())
    assert ((rough.drop(columns="cash") != 0) == (positions.drop(columns="cash") != 0)).all().all()


def test_to_pyfolio_accepts_the_feed(daily, tmp_path):
    feed = PolarsDataFeed(bars(), signal_columns=["pred"])
    _, by_feed, _ = daily.to_pyfolio(prices=feed)
    _, by_frame, _ = daily.to_pyfolio(prices=bars())
    pd.testing.assert_frame_equal(by_feed, by_frame)
    bars().write_parquet(tmp_path / "bars.parquet")
    streaming = ParquetDataFeed(tmp_path / "bars.parquet", chunk="7d")
    assert streaming.streaming and len(streaming.window_edges()) > 1
    _, by_stream, _ = daily.to_pyfolio(prices=streaming)
    pd.testing.assert_frame_equal(by_stream, by_frame)
    with pytest.raises(ValueError, match="missing columns"):
        daily.to_pyfolio(prices=bars().drop("close"))
    with pytest.raises(TypeError, match="DataFeed or a polars DataFrame"):
        daily.to_pyfolio(prices={"A000": 1.0})


def test_pyfolio_reads_the_export(daily):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # pyfolio warns that zipline is not installed
        import pyfolio as pf

    feed = PolarsDataFeed(bars(), signal_columns=["pred"])
    returns, positions, transactions = daily.to_pyfolio(prices=feed)
    assert (transactions["amount"] == transactions["amount"].round()).all()
    stats = pf.timeseries.perf_stats(returns, positions=positions, transactions=transactions)
    assert stats["Cumulative returns"] == pytest.approx(daily.metrics["total_return"], rel=1e-9)
    assert stats["Max drawdown"] == pytest.approx(daily.metrics["max_drawdown"], rel=1e-9)
    np.testing.assert_allclose(
        pf.timeseries.gross_lev(positions).to_numpy(),
        daily.equity["gross_leverage"].to_numpy(), rtol=1e-9,
    )
    turnover = pf.txn.get_turnover(positions, transactions)
    assert turnover.index.equals(positions.index) and (turnover > 0).any()
    trips = pf.round_trips.extract_round_trips(transactions)
    assert len(trips) > 0 and set(trips["symbol"]) <= set(daily.asset_names)


def test_quantstats_reads_the_returns(daily, intraday):
    import quantstats as qs

    for result in (daily, intraday):
        r = result.returns_series()
        assert qs.stats.comp(r) == pytest.approx(result.metrics["total_return"], rel=1e-9)
    r = daily.returns_series()
    ppy = daily.periods_per_year
    assert qs.stats.sharpe(r, periods=ppy) == pytest.approx(daily.metrics["sharpe"], rel=1e-9)
    assert qs.stats.volatility(r, periods=ppy) == pytest.approx(
        daily.metrics["annual_volatility"], rel=1e-9
    )
    monthly = qs.stats.monthly_returns(r)
    assert monthly.shape[1] == 13  # twelve months and the year
