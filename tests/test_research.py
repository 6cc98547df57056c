"""mlbacktest.research.sweep: grids, executors, failures, resume; every refused argument.

The refused arguments of the whole research layer (sweep, walk_forward, DSR, PBO) are
tested here, in the sections "refused arguments"; the command line's in test_research_cli.py.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import types
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor
from pathlib import Path

import numpy as np
import polars as pl
import pytest

from mlbacktest import BacktestConfig, ConfigError, PolarsDataFeed, Strategy, run_backtest
from mlbacktest.data.synthetic import synthetic_bars
from mlbacktest.research import (
    _worker,
    expand_grid,
    expected_max_sharpe,
    probabilistic_sharpe_ratio,
    probability_of_backtest_overfitting,
    sweep,
    walk_forward,
)
from mlbacktest.research.walk import make_folds

ROOT = Path(__file__).resolve().parent.parent


class Cross(Strategy):
    """Long the assets whose fast mean close is above their slow mean; refuses fast >= slow."""

    def __init__(self, fast: int = 3, slow: int = 10) -> None:
        self.fast, self.slow = fast, slow

    def on_slice(self, view, context):
        if self.fast >= self.slow:
            raise ValueError(f"fast={self.fast} must be below slow={self.slow}")
        for a in self.assets:
            c = self.history(a, "close", self.slow)
            if c.size < self.slow:
                return
            want = 0.3 if c[-self.fast:].mean() > c.mean() else 0.0
            self.order_target_percent(a, want)


GRID = {"fast": [2, 4, 12], "slow": [8, 16]}  # fast=12, slow=8 fails


@pytest.fixture(scope="module")
def bars() -> pl.DataFrame:
    return synthetic_bars(n_assets=3, n_bars=90, seed=11)


@pytest.fixture(scope="module")
def serial(bars):
    return sweep(Cross, GRID, bars, progress=False, keep_returns=True)


def _same(a, b) -> None:
    """Bit-identical sweep frames, the run times aside."""
    fa, fb = a.frame.drop("run_time_s"), b.frame.drop("run_time_s")
    assert fa.columns == fb.columns and fa.schema == fb.schema
    for c in fa.columns:
        x, y = fa[c].to_numpy(), fb[c].to_numpy()
        if x.dtype.kind == "f":
            assert np.array_equal(x.view(np.int64), y.view(np.int64)), c
        else:
            assert fa[c].equals(fb[c]), c
    if a.returns is not None:
        assert np.array_equal(a.returns, b.returns, equal_nan=True)


# -- the frame ------------------------------------------------------------------------


def test_grid_order_parameters_metrics_status_and_run_time(serial, bars):
    f = serial.frame
    assert f.columns[:6] == ["run", "fast", "slow", "status", "error", "final_equity"]
    assert f.columns[-1] == "run_time_s"
    assert f["run"].to_list() == list(range(6))
    assert list(zip(f["fast"], f["slow"], strict=True)) == [
        (2, 8), (2, 16), (4, 8), (4, 16), (12, 8), (12, 16)]
    assert f["status"].to_list() == ["ok"] * 4 + ["error", "ok"]
    assert f["error"][4].startswith("ValueError: fast=12 must be below slow=8")
    assert "on_slice" in f["error"][4]  # the engine's note: hook and timestamp
    assert f["sharpe"][4] is None and f["num_trades"][4] is None
    assert f.schema["num_trades"] == pl.Int64 and f.schema["sharpe"] == pl.Float64
    assert (f["run_time_s"] > 0).all()
    # Every metric of result.metrics, equal to a plain run's.
    plain = run_backtest(bars, Cross(4, 16), BacktestConfig())
    row = f.row(3, named=True)
    for k, v in plain.metrics.items():
        assert row[k] == v or (np.isnan(v) and np.isnan(row[k])), k


def test_a_finished_run_is_freed_without_the_garbage_collector(bars):
    import gc
    import weakref

    alive = []

    def make(fast, slow):
        s = Cross(fast, slow)
        alive.append(weakref.ref(s))
        return s

    gc.collect()
    gc.disable()
    try:
        sweep(make, {"fast": [2, 4], "slow": [8]}, bars, progress=False)
        assert [r() for r in alive] == [None, None]  # a worker's memory stays at one run
    finally:
        gc.enable()


def test_the_result_reads_as_its_frame(serial):
    assert serial["sharpe"].equals(serial.frame["sharpe"])
    assert serial.columns == serial.frame.columns and len(serial) == serial.height == 6
    assert serial.filter(pl.col("status") == "error")["run"].to_list() == [4]
    with pytest.raises(AttributeError):
        serial.no_such_thing  # noqa: B018


def test_result_of_rebuilds_a_row(serial, bars):
    r = serial.result_of(1)
    assert r.metrics["final_equity"] == serial.frame["final_equity"][1]
    again = serial.result_of(serial.frame.row(1, named=True))
    assert again.metrics == r.metrics
    with pytest.raises(IndexError, match="run 6 is not in this sweep of 6 runs"):
        serial.result_of(6)


def test_returns_are_the_runs_period_returns(serial):
    assert serial.returns.shape == (6, 90)
    r = serial.result_of(2)
    assert np.array_equal(serial.returns[2], r.returns["returns"].to_numpy())
    assert np.isnan(serial.returns[4]).all()


def test_a_list_of_dicts_and_a_factory(bars, serial):
    rows = [{"fast": 4, "slow": 16}, {"fast": 2, "slow": 8}]

    def make(fast, slow):
        return Cross(fast, slow)

    s = sweep(make, rows, bars, progress=False)
    assert s.frame["final_equity"].to_list() == [
        serial.frame["final_equity"][3], serial.frame["final_equity"][0]]


def test_metrics_subset_and_feed_and_config(bars):
    feed = PolarsDataFeed(bars)
    cfg = {"initial_cash": 50_000.0}
    s = sweep(Cross, {"fast": [2], "slow": [8]}, feed, cfg, metrics=["sharpe", "final_equity"],
              progress=False)
    assert s.frame.columns == ["run", "fast", "slow", "status", "error", "sharpe",
                               "final_equity", "run_time_s"]
    assert s.frame["final_equity"][0] == run_backtest(bars, Cross(2, 8), cfg).final_equity


def test_a_parquet_source_is_opened_with_its_filters(tmp_path, bars, serial):
    path = tmp_path / "bars.parquet"
    bars.write_parquet(path)
    end = bars["timestamp"].unique().sort()[59]
    s = sweep(Cross, GRID, str(path), feed_options={"end": end}, progress=False,
              executor="processes:1")
    short = bars.filter(pl.col("timestamp") <= end)
    _same(s, sweep(Cross, GRID, short, progress=False))
    assert s.frame["final_equity"][0] != serial.frame["final_equity"][0]


# -- executors --------------------------------------------------------------------------


@pytest.mark.parametrize("executor", ["processes:1", "processes:2"])
def test_local_processes_give_identical_frames(executor, bars, serial):
    _same(serial, sweep(Cross, GRID, bars, executor=executor, progress=False,
                        keep_returns=True))


def test_any_executor_and_data_loaded_once_per_worker(bars, serial):
    with ProcessPoolExecutor(max_workers=1) as pool:
        s = sweep(Cross, GRID, bars, executor=pool, progress=False, keep_returns=True,
                  batch_size=2)
        loads = pool.submit(_worker.load_counts).result()
    _same(serial, s)
    fp = _worker.panel_fingerprint(PolarsDataFeed(bars))
    assert loads == {fp: 1}  # six runs, one load
    with ThreadPoolExecutor(max_workers=2) as pool:
        _same(serial, sweep(Cross, GRID, bars, executor=pool, progress=False,
                            keep_returns=True))


def test_a_strategy_from_a_module_no_process_can_import(bars):
    module = types.ModuleType("notebook_cell_1")
    exec(textwrap.dedent("""
        from mlbacktest import Strategy

        class Hold(Strategy):
            def __init__(self, qty):
                self.qty = qty

            def on_start(self):
                self.buy("A000", self.qty)
    """), module.__dict__)
    sys.modules["notebook_cell_1"] = module
    try:
        s = sweep(module.Hold, {"qty": [1, 2]}, bars, executor="processes:1", progress=False)
    finally:
        del sys.modules["notebook_cell_1"]
    assert s.frame["status"].to_list() == ["ok", "ok"]
    assert s.frame["num_fills"].to_list() == [1, 1]


def test_a_strategy_defined_in_main_runs_on_processes(tmp_path):
    script = tmp_path / "script.py"
    script.write_text(textwrap.dedent("""
        from mlbacktest import Strategy
        from mlbacktest.data.synthetic import synthetic_bars
        from mlbacktest.research import sweep

        class Hold(Strategy):
            def __init__(self, qty):
                self.qty = qty

            def on_start(self):
                self.buy("A000", self.qty)

        if __name__ == "__main__":
            bars = synthetic_bars(n_assets=2, n_bars=20, seed=1)
            a = sweep(Hold, {"qty": [1, 5]}, bars, executor="processes:2", progress=False)
            b = sweep(Hold, {"qty": [1, 5]}, bars, progress=False)
            assert a.frame.drop("run_time_s").equals(b.frame.drop("run_time_s"))
            print(a.frame["status"].to_list())
    """))
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    done = subprocess.run([sys.executable, str(script)], capture_output=True, text=True,
                          cwd=ROOT, timeout=120, env=env)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "['ok', 'ok']"


# -- out=DIR and resume -------------------------------------------------------------------

CALLS: list[int] = []
STOP_AFTER: list[int] = []


def counted(fast, slow):
    """A factory that counts its calls and, when told, stops the sweep like Ctrl-C."""
    if STOP_AFTER and len(CALLS) == STOP_AFTER[0]:
        raise KeyboardInterrupt
    CALLS.append(1)
    return Cross(fast, slow)


def test_an_interrupted_sweep_resumes_without_running_anything_twice(tmp_path, bars, serial):
    out = tmp_path / "sweep"
    CALLS.clear()
    STOP_AFTER[:] = [3]
    with pytest.raises(KeyboardInterrupt):
        sweep(counted, GRID, bars, out=out, progress=False, keep_returns=True)
    assert len(CALLS) == 3
    assert len(list((out / "runs").glob("run-*.json"))) == 3
    assert not (out / "sweep.parquet").exists()
    (out / "runs" / "run-000004.npz").write_bytes(b"killed while writing")  # no record
    STOP_AFTER.clear()
    CALLS.clear()
    s = sweep(counted, GRID, bars, out=out, progress=False, keep_returns=True)
    assert len(CALLS) == 3  # only the missing runs
    _same(serial, s)
    saved = pl.read_parquet(out / "sweep.parquet")
    assert saved.drop("run_time_s").equals(s.frame.drop("run_time_s"))
    CALLS.clear()
    again = sweep(counted, GRID, bars, out=out, progress=False, keep_returns=True)
    assert CALLS == [] and again.frame.equals(s.frame)  # nothing left to run


def test_save_results_writes_each_runs_result(tmp_path, bars, serial):
    from mlbacktest import BacktestResult

    out = tmp_path / "sweep"
    sweep(Cross, {"fast": [2], "slow": [8, 16]}, bars, out=out, save_results=True,
          progress=False, executor="processes:1")
    r = BacktestResult.from_parquet(out / "results" / "run-000001")
    assert r.metrics["final_equity"] == serial.frame["final_equity"][1]


def test_a_changed_grid_data_or_config_is_refused(tmp_path, bars):
    out = tmp_path / "sweep"
    sweep(Cross, {"fast": [2], "slow": [8]}, bars, out=out, progress=False)
    with pytest.raises(ValueError, match="another the grid"):
        sweep(Cross, {"fast": [2, 3], "slow": [8]}, bars, out=out, progress=False)
    with pytest.raises(ValueError, match="another the data fingerprint"):
        sweep(Cross, {"fast": [2], "slow": [8]}, bars.head(30), out=out, progress=False)
    with pytest.raises(ValueError, match="another the config"):
        sweep(Cross, {"fast": [2], "slow": [8]}, bars, {"initial_cash": 1.0e6}, out=out,
              progress=False)
    header = json.loads((out / "sweep.json").read_text())
    assert header["format"] == "mlbacktest-sweep" and header["grid"] == [{"fast": 2, "slow": 8}]


# -- refused arguments (checked before any run) ------------------------------------------


def test_a_directory_mlbacktest_did_not_write_is_refused(tmp_path, bars):
    (tmp_path / "notes.txt").write_text("mine")
    with pytest.raises(FileExistsError, match=r"did not write \(notes.txt\)"):
        sweep(Cross, GRID, bars, out=tmp_path, progress=False)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["notes.txt"]


@pytest.mark.parametrize(("grid", "error", "match"), [
    ({}, ValueError, "the dict of parameters is empty"),
    ([], ValueError, "the list of parameter sets is empty"),
    ({"fast": []}, ValueError, "parameter 'fast' has no value"),
    ({"fast": 3}, ValueError, "parameter 'fast' must map to a list of values"),
    ({"fast": "abc"}, ValueError, "parameter 'fast' must map to a list of values"),
    ([{"fast": 1}, {"slow": 2}], ValueError, "entry 1 has the parameters"),
    ([{"fast": 1}, 3], TypeError, "entry 1 is int, not a dict"),
    ({"sharpe": [1]}, ValueError, "parameter 'sharpe' has the name of a column"),
    ({"run": [1]}, ValueError, "parameter 'run' has the name of a column"),
    ({"fast": [[1, 2]]}, ValueError, r"parameter set 0, fast=\[1, 2\]: values must be"),
    ("fast=1", TypeError, "grid must be a dict of lists or a list of dicts"),
])
def test_bad_grids(grid, error, match):
    with pytest.raises(error, match=match):
        expand_grid(grid)


def test_expand_grid_is_the_cartesian_product_last_key_fastest():
    assert expand_grid({"a": [1, 2], "b": ["x", "y"]}) == [
        {"a": 1, "b": "x"}, {"a": 1, "b": "y"}, {"a": 2, "b": "x"}, {"a": 2, "b": "y"}]
    grid = expand_grid({"a": np.arange(2, 4), "b": np.array([0.5])})
    assert grid == [{"a": 2, "b": 0.5}, {"a": 3, "b": 0.5}]
    assert type(grid[0]["a"]) is int and type(grid[0]["b"]) is float


@pytest.mark.parametrize(("kwargs", "error", "match"), [
    ({"strategy": Cross(2, 8)}, TypeError, "not an instance"),
    ({"strategy": int}, TypeError, "int is not a subclass of Strategy"),
    ({"strategy": 3}, TypeError, "must be a Strategy class or a factory"),
    ({"executor": "threads"}, ValueError, "unknown executor 'threads'"),
    ({"executor": "processes:0"}, ValueError, "must be a positive integer"),
    ({"executor": "dask://"}, ValueError, "dask://HOST:PORT"),
    ({"executor": 3}, TypeError, "executor must be None"),
    ({"metrics": ["sharp"]}, ValueError, r"unknown metric\(s\) \['sharp'\]"),
    ({"save_results": True}, ValueError, "save_results=True needs out=DIR"),
    ({"batch_size": 0}, ValueError, "batch_size must be a positive integer"),
    ({"config": 3}, Exception, "config must be a BacktestConfig or a mapping"),
    ({"data": "/nonexistent/bars.parquet"}, FileNotFoundError, "bars.parquet"),
])
def test_bad_arguments_are_refused_before_any_run(kwargs, error, match, bars):
    CALLS.clear()
    args = {"strategy": counted, "grid": GRID, "data": bars, "progress": False, **kwargs}
    with pytest.raises(error, match=match):
        sweep(**args)
    assert CALLS == []


def test_a_streamed_feed_or_options_with_a_feed_are_refused(tmp_path, bars):
    from mlbacktest import ParquetDataFeed

    path = tmp_path / "bars.parquet"
    bars.write_parquet(path)
    with pytest.raises(TypeError, match="cannot share a streamed feed"):
        sweep(Cross, GRID, ParquetDataFeed(path, chunk="30d"), progress=False)
    with pytest.raises(TypeError, match=r"feed options \['end'\] need a frame or path"):
        sweep(Cross, GRID, PolarsDataFeed(bars), feed_options={"end": "2020-02-01"},
              progress=False)


# -- refused arguments of walk_forward and of the statistics ----------------------------


@pytest.mark.parametrize(("kwargs", "error", "match"), [
    ({"train": 0, "test": 10}, ValueError, "train must be > 0 bars"),
    ({"train": 10, "test": "-1d"}, ConfigError, "test='-1d' is not a duration"),
    ({"train": 10, "test": 10, "purge": -1}, ValueError, "purge must be >= 0 bars"),
    ({"train": 10, "test": "5d"}, ValueError, "all be bars or all durations"),
    ({"train": 10.5, "test": 5}, TypeError, "train must be a number of bars"),
    ({"train": 200, "test": 10}, ValueError, "no fold fits in the data's 100 timestamps"),
    ({"train": 10, "test": 5, "purge": 9}, ValueError, "fold 0: the training window holds 1"),
])
def test_bad_fold_arguments(kwargs, error, match):
    with pytest.raises(error, match=match):
        make_folds(np.arange(100, dtype=np.int64) * 86_400 * 10**9, **kwargs)


@pytest.mark.parametrize(("kwargs", "error", "match"), [
    ({"objective": "sharp"}, ValueError, "objective 'sharp' is not a metric"),
    ({"train": 90}, ValueError, "no fold fits in the data's 90 timestamps"),
    ({"executor": "threads"}, ValueError, "unknown executor 'threads'"),
    ({"grid": {}}, ValueError, "the dict of parameters is empty"),
    ({"strategy": Cross(2, 8)}, TypeError, "not an instance"),
    ({"embargo": "2 days"}, ConfigError, "embargo='2 days' is not a duration"),
])
def test_bad_walk_forward_arguments_are_refused_before_any_run(bars, kwargs, error, match):
    CALLS.clear()
    args = {"strategy": counted, "grid": GRID, "data": bars, "train": 40, "test": 20,
            "progress": False, **kwargs}
    with pytest.raises(error, match=match):
        walk_forward(**args)
    assert CALLS == []


@pytest.mark.parametrize(("call", "match"), [
    (lambda: expected_max_sharpe(0, 1.0), "n_trials must be a positive integer"),
    (lambda: expected_max_sharpe(10, -1.0), "sharpe_variance must be finite and >= 0"),
    (lambda: probabilistic_sharpe_ratio(0.1, 0.0, 1), "n_obs must be an integer >= 2"),
    (lambda: probabilistic_sharpe_ratio(2.0, 0.0, 100, skew=5.0, kurtosis=1.0),
     "variance term"),
])
def test_bad_dsr_inputs(call, match):
    with pytest.raises(ValueError, match=match):
        call()


@pytest.mark.parametrize(("m", "s", "match"), [
    (np.zeros(10), 2, "2-D matrix"),
    (np.zeros((10, 1)), 2, "at least two configurations"),
    (np.array([[0.0, 1.0], [np.nan, 0.0], [0.0, 0.0], [1.0, 1.0]]), 2,
     "row 1, column 0 is nan"),
    (np.zeros((40, 3)), 3, "even integer >= 2"),
    (np.zeros((40, 3)), 0, "even integer >= 2"),
    (np.zeros((10, 3)), 8, "fewer than two rows per block"),
    (np.zeros((1000, 3)), 24, "gives 2,704,156 splits; at most 1,000,000"),
])
def test_bad_pbo_inputs(m, s, match):
    with pytest.raises(ValueError, match=match):
        probability_of_backtest_overfitting(m, s)


# -- Dask ----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def dask_client():
    distributed = pytest.importorskip("distributed")
    cluster = distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                       dashboard_address=None, silence_logs=40)
    client = distributed.Client(cluster, set_as_default=False)
    yield client
    client.close()
    cluster.close()


def test_a_dask_cluster_gives_identical_frames_and_loads_the_data_once_per_worker(
        dask_client, bars, serial):
    s = sweep(Cross, GRID, bars, executor=dask_client, progress=False, keep_returns=True)
    _same(serial, s)
    fp = _worker.panel_fingerprint(PolarsDataFeed(bars))
    loads = dask_client.run(_worker.load_counts)
    assert len(loads) == 2 and all(v.get(fp, 0) <= 1 for v in loads.values())
    assert sum(v.get(fp, 0) for v in loads.values()) >= 1
    address = dask_client.scheduler.address  # the same cluster through "dask://HOST:PORT"
    by_address = sweep(Cross, GRID, bars, executor="dask://" + address.split("://")[1],
                       progress=False, keep_returns=True)
    _same(serial, by_address)
    assert len(dask_client.run(_worker.load_counts)) == 2  # the cluster still runs
