"""``mlbacktest sweep`` and ``mlbacktest walk-forward``: outputs, resume and one-line errors."""

from __future__ import annotations

from pathlib import Path

import polars as pl
import pytest

from mlbacktest.cli import EXIT_FAILURE, EXIT_OK, EXIT_USAGE, main
from mlbacktest.data.synthetic import synthetic_bars

STRATEGY = '''
from mlbacktest import Strategy


class Cross(Strategy):
    def __init__(self, fast=3, slow=10, weight=0.3):
        self.fast, self.slow, self.weight = fast, slow, weight

    def on_slice(self, view, context):
        if self.fast >= self.slow:
            raise ValueError(f"fast={self.fast} must be below slow={self.slow}")
        for a in self.assets:
            c = self.history(a, "close", self.slow)
            if c.size < self.slow:
                return
            self.order_target_percent(a, self.weight if c[-self.fast:].mean() > c.mean()
                                      else 0.0)
'''


@pytest.fixture
def workdir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    frame = synthetic_bars(n_assets=3, n_bars=120, seed=4)
    frame.write_parquet(tmp_path / "bars.parquet")
    frame.write_csv(tmp_path / "bars.csv")
    (tmp_path / "strategy.py").write_text(STRATEGY)
    monkeypatch.chdir(tmp_path)
    return tmp_path


def test_sweep_writes_the_frame_and_report_and_resumes(workdir, capsys):
    args = ["sweep", "strategy.py:Cross", "--data", "bars.parquet", "--grid", "fast=2,4",
            "--grid", "slow=6:10:2", "--param", "weight=0.25", "--out", "sw",
            "--keep-returns", "--partitions", "4", "--no-progress",
            "--executor", "processes:2"]
    assert main(args) == EXIT_OK
    out = capsys.readouterr().out
    assert "deflated Sharpe ratio of the best run" in out
    assert "probability of backtest overfitting" in out
    assert "report written to sw/report.html" in out
    frame = pl.read_parquet(workdir / "sw" / "sweep.parquet")
    assert frame.select("fast", "slow", "weight").rows() == [
        (2, 6, 0.25), (2, 8, 0.25), (2, 10, 0.25), (4, 6, 0.25), (4, 8, 0.25), (4, 10, 0.25)]
    assert frame["status"].to_list() == ["ok"] * 6
    assert len(list((workdir / "sw" / "runs").glob("run-*.json"))) == 6
    assert (workdir / "sw" / "report.html").read_text().count("<section") == 5
    # The same command again: nothing left to run, the same frame.
    assert main(args[:-2]) == EXIT_OK
    again = pl.read_parquet(workdir / "sw" / "sweep.parquet")
    assert again.equals(frame)
    # Another grid in the same directory is refused.
    assert main([*args[:5], "fast=2,3", *args[6:]]) == EXIT_FAILURE
    assert "holds a sweep with another the grid" in capsys.readouterr().err


def test_a_failing_run_is_reported_and_the_others_complete(workdir, capsys):
    assert main(["sweep", "strategy.py:Cross", "--data", "bars.csv", "--grid", "fast=2,12",
                 "--grid", "slow=8", "--no-progress"]) == EXIT_OK
    out = capsys.readouterr().out
    assert "1 of 2 runs failed; the first: run 1: ValueError: fast=12 must be below slow=8" in out


def test_walk_forward_writes_the_stitched_result_and_the_folds(workdir, capsys):
    from mlbacktest import BacktestResult
    from mlbacktest.research import walk_forward

    assert main(["walk-forward", "strategy.py:Cross", "--data", "bars.parquet",
                 "--grid", "fast=2,4", "--grid", "slow=8,12", "--train", "40", "--test", "20",
                 "--purge", "1", "--embargo", "1", "--out", "wf", "--folds", "folds.csv",
                 "--no-progress"]) == EXIT_OK
    out = capsys.readouterr().out
    assert "out of sample: total return" in out
    saved = BacktestResult.from_parquet(workdir / "wf")
    folds = pl.read_csv(workdir / "folds.csv")
    import importlib.util
    import sys

    spec = importlib.util.spec_from_file_location("wf_strategy", workdir / "strategy.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules["wf_strategy"] = module
    spec.loader.exec_module(module)
    try:
        direct = walk_forward(module.Cross, {"fast": [2, 4], "slow": [8, 12]},
                              pl.read_parquet(workdir / "bars.parquet"), train=40, test=20,
                              purge=1, embargo=1, progress=False)
    finally:
        del sys.modules["wf_strategy"]
    assert saved.equity.equals(direct.result.equity)
    assert folds["fast"].to_list() == direct.folds["fast"].to_list()
    assert folds.height == direct.folds.height == 4


@pytest.mark.parametrize(("extra", "message"), [
    (["--grid", "fast"], "--grid 'fast' is not NAME=VALUES"),
    (["--grid", "fast=1,,2"], "no empty value"),
    (["--grid", "slow=30:20:5"], "the step must be positive and STOP >= START"),
    (["--grid", "slow=30:90"], "a range is START:STOP:STEP with three numbers"),
    (["--grid", "slow=1:2:0"], "the step must be positive"),
    (["--grid", "fast=1", "--grid", "fast=2"], "--grid fast is given twice"),
    (["--grid", "fast=1", "--param", "fast=2"], "fast is given both by --grid and by --param"),
    (["--grid", "sharpe=1"], "parameter 'sharpe' has the name of a column"),
    (["--grid", "fast=1", "--executor", "threads"], "--executor: unknown executor 'threads'"),
    (["--grid", "fast=1", "--executor", "dask://"], "dask://HOST:PORT"),
    (["--grid", "fast=1", "--partitions", "3"], "--partitions 3: an even number >= 2"),
    (["--grid", "fast=1", "--heatmap", "fast,nope"], "--heatmap 'fast,nope': give two"),
    (["--grid", "fast=1", "--start", "yesterday"], "--start 'yesterday' is not a valid time"),
    ([], "give at least one --grid NAME=VALUES"),
])
def test_bad_sweep_arguments_are_one_line_usage_errors(workdir, capsys, extra, message):
    assert main(["sweep", "strategy.py:Cross", "--data", "bars.parquet", *extra]) == EXIT_USAGE
    err = capsys.readouterr().err
    assert err.startswith("mlbacktest: error: ") and message in err
    assert err.count("\n") == 1
    assert not (workdir / "runs").exists()


@pytest.mark.parametrize(("args", "message"), [
    (["--data", "nope.parquet", "--grid", "fast=1"], "--data 'nope.parquet' does not exist"),
    (["--data", "bars.csv", "--grid", "fast=1", "--assets", "A000"],
     "--assets: these options need parquet data"),
    (["--data", "bars.parquet", "--grid", "fast=1", "--out", "."],
     "holds files mlbacktest did not write"),
])
def test_bad_sweep_inputs(workdir, capsys, args, message):
    status = main(["sweep", "strategy.py:Cross", *args, "--no-progress"])
    assert status in (EXIT_USAGE, EXIT_FAILURE)
    err = capsys.readouterr().err
    assert err.startswith("mlbacktest: error: ") and message in err


@pytest.mark.parametrize(("extra", "message"), [
    (["--train", "ten", "--test", "5"], "--train 'ten' is neither a number of bars nor"),
    (["--train", "40", "--test", "5d"], "train, test and step must all be bars or all"),
    (["--train", "400", "--test", "20"], "no fold fits in the data's 120 timestamps"),
    (["--train", "40", "--test", "20", "--objective", "sharp"],
     "objective 'sharp' is not a metric"),
    (["--train", "40", "--test", "20", "--folds", "folds.txt"], "give a .csv or .parquet"),
])
def test_bad_walk_forward_arguments(workdir, capsys, extra, message):
    status = main(["walk-forward", "strategy.py:Cross", "--data", "bars.parquet",
                   "--grid", "fast=2", "--grid", "slow=8", "--no-progress", *extra])
    assert status in (EXIT_USAGE, EXIT_FAILURE)
    err = capsys.readouterr().err
    assert err.startswith("mlbacktest: error: ") and message in err
    assert err.count("\n") == 1


def test_grid_lists_and_ranges():
    from mlbacktest.cli import _grid_values

    assert _grid_values("a", "5,10,20") == [5, 10, 20]
    assert _grid_values("a", '1.5,true,"x",y') == [1.5, True, "x", "y"]
    assert _grid_values("a", "30:90:10") == [30, 40, 50, 60, 70, 80, 90]
    assert _grid_values("a", "30:95:10") == [30, 40, 50, 60, 70, 80, 90]
    assert _grid_values("a", "0.1:0.3:0.1") == [0.1, 0.2, 0.3]
    assert _grid_values("a", "1:2:0.25") == [1.0, 1.25, 1.5, 1.75, 2.0]
    assert _grid_values("a", "1e-3:3e-3:1e-3") == [0.001, 0.002, 0.003]
