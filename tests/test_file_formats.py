"""One reader for files given as paths: run_backtest, the feeds' signals and ContextFrame
read parquet, CSV, TSV and Arrow IPC alike, by suffix (mlbacktest.data.files.scan_frame).

Refused paths (an unknown suffix, parquet-only options on CSV) are tested with the
other bad inputs in tests/test_data_validation.py.
"""

from __future__ import annotations

import polars as pl
import pytest

import mlbacktest
from mlbacktest.data.context import ContextFrame
from mlbacktest.data.feeds import ParquetDataFeed, PolarsDataFeed, open_feed
from mlbacktest.data.files import FILE_FORMATS, file_format
from mlbacktest.data.synthetic import synthetic_bars
from mlbacktest.demo import TopBottomK

WRITERS = {
    "bars.parquet": lambda df, p: df.write_parquet(p),
    "bars.pq": lambda df, p: df.write_parquet(p),
    "bars.csv": lambda df, p: df.write_csv(p),
    "bars.CSV": lambda df, p: df.write_csv(p),
    "bars.tsv": lambda df, p: df.write_csv(p, separator="\t"),
    "bars.arrow": lambda df, p: df.write_ipc(p),
    "bars.ipc": lambda df, p: df.write_ipc(p),
    "bars.feather": lambda df, p: df.write_ipc(p),
}


@pytest.fixture(scope="module")
def frame() -> pl.DataFrame:
    return synthetic_bars(n_assets=4, n_bars=30, seed=5)


@pytest.fixture(scope="module")
def expected(frame):
    return mlbacktest.run_backtest(frame, TopBottomK(k=1, every=3))


@pytest.mark.parametrize("name", sorted(WRITERS))
def test_run_backtest_reads_every_supported_format_alike(tmp_path, frame, expected, name):
    path = tmp_path / name
    WRITERS[name](frame, path)
    result = mlbacktest.run_backtest(str(path), TopBottomK(k=1, every=3))
    assert result.equity["equity"].to_list() == expected.equity["equity"].to_list()
    assert result.fills.equals(expected.fills)
    feed = open_feed(path)
    assert isinstance(feed, ParquetDataFeed if file_format(path) == "parquet" else PolarsDataFeed)


def test_every_suffix_of_the_table_is_covered():
    assert {n[n.index("."):].lower() for n in WRITERS} | {".csv.gz", ".tsv.gz"} == set(
        FILE_FORMATS)


def test_signals_and_context_paths_in_any_format(tmp_path, frame):
    frame.drop("pred").write_csv(tmp_path / "bars.csv")
    frame.select("timestamp", "asset", "pred").write_ipc(tmp_path / "preds.arrow")
    frame.select("timestamp", "asset", "pred").write_csv(tmp_path / "preds.csv")
    via_csv = PolarsDataFeed(str(tmp_path / "bars.csv"), signals=tmp_path / "preds.arrow")
    direct = PolarsDataFeed(frame)
    assert via_csv.signal_names == ("pred",)
    assert (via_csv.panel.signals == direct.panel.signals).all()
    frame.drop("pred").write_parquet(tmp_path / "bars.parquet")
    parquet = ParquetDataFeed(tmp_path / "bars.parquet", signals=str(tmp_path / "preds.csv"))
    assert (parquet.panel.signals == direct.panel.signals).all()
    days = frame.select("timestamp").unique().sort("timestamp").with_columns(vix=pl.lit(15.0))
    days.write_csv(tmp_path / "ctx.tsv", separator="\t")
    ctx = ContextFrame(tmp_path / "ctx.tsv")
    assert ctx.columns == ("vix",) and ctx.row_dict(0) == {"vix": 15.0}


def test_a_glob_of_csv_files_and_a_directory_of_parquet_files(tmp_path, frame, expected):
    (tmp_path / "csv").mkdir()
    (tmp_path / "pq").mkdir()
    for i, part in enumerate(frame.partition_by("asset")):
        part.write_csv(tmp_path / "csv" / f"{i}.csv")
        part.write_parquet(tmp_path / "pq" / f"{i}.parquet")
    assert file_format(str(tmp_path / "csv" / "*.csv")) == "csv"
    assert file_format(tmp_path / "pq") == "parquet"
    for path in (str(tmp_path / "csv" / "*.csv"), tmp_path / "pq"):
        result = mlbacktest.run_backtest(path, TopBottomK(k=1, every=3))
        assert result.equity["equity"].to_list() == expected.equity["equity"].to_list()
