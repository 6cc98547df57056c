"""The ``mlbacktest`` command: demo, run and report, their outputs and their errors."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import polars as pl
import pytest

import mlbacktest
from mlbacktest import BacktestConfig, BacktestResult
from mlbacktest.cli import EXIT_FAILURE, EXIT_OK, EXIT_USAGE, load_strategy_class, main
from mlbacktest.data.synthetic import synthetic_bars
from mlbacktest.demo import TopBottomK

STRATEGIES = '''
import numpy as np
from mlbacktest import Strategy


class TopK(Strategy):
    """Long the k best predictions; only when the context says risk is on (if there is one)."""

    def __init__(self, k=2, gross=0.8, side="long"):
        if not isinstance(k, int) or side != "long":
            raise TypeError(f"k={k!r} side={side!r}: expected an int and 'long'")
        self.k = k
        self.gross = gross

    def on_slice(self, view, context):
        if context and context.get("risk_on", 1.0) < 0.5:
            self.rebalance(np.zeros(len(view)))
            return
        pred = view.signal("pred")
        w = np.zeros(len(view))
        w[np.argsort(pred)[-self.k:]] = self.gross / self.k
        self.rebalance(w)


class Explodes(Strategy):
    def on_market_data(self, event, context):
        if event.asset == "A002" and self.now.day == 3:
            raise ZeroDivisionError("model weights are all zero")


class NotAStrategy:
    pass


def not_a_class():
    pass
'''


@pytest.fixture
def workdir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A directory with bars, predictions, context, configs and a strategy file; the cwd."""
    frame = synthetic_bars(n_assets=5, n_bars=40, seed=3)
    frame.drop("pred").write_parquet(tmp_path / "bars.parquet")
    frame.select("timestamp", "asset", "pred").write_parquet(tmp_path / "preds.parquet")
    frame.write_parquet(tmp_path / "bars_with_pred.parquet")
    frame.write_csv(tmp_path / "bars.csv")
    days = frame.select("timestamp").unique().sort("timestamp")
    days.with_columns(risk_on=(pl.int_range(pl.len()) % 10 < 7).cast(pl.Float64)).write_parquet(
        tmp_path / "context.parquet"
    )
    index = frame.group_by("timestamp").agg(pl.col("close").mean()).sort("timestamp")
    index.write_csv(tmp_path / "index.csv")
    (tmp_path / "strategies.py").write_text(STRATEGIES)
    (tmp_path / "config.toml").write_text("[backtest]\ninitial_cash = 50000\ncommission = 0.001\n")
    monkeypatch.chdir(tmp_path)
    return tmp_path


def run_cli(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    status = main(list(argv))
    out, err = capsys.readouterr()
    return status, out, err


def direct(workdir: Path, **kwargs) -> BacktestResult:
    """The same backtest run through the Python API, for comparison."""
    module = load_strategy_class(str(workdir / "strategies.py") + ":TopK")
    strategy = module(**kwargs.pop("params", {}))
    return mlbacktest.run_backtest(str(workdir / "bars.parquet"), strategy, **kwargs)


def test_run_writes_results_and_report(workdir, capsys):
    status, out, err = run_cli(
        capsys, "run", "strategies.py:TopK", "--data", "bars.parquet", "--signals",
        "preds.parquet", "--config", "config.toml", "--param", "k=3", "--out", "results",
        "--benchmark", "index.csv", "--benchmark-name", "Equal-weight index", "--title",
        "CLI run",
    )
    assert (status, err) == (EXIT_OK, "")
    written = BacktestResult.from_parquet(workdir / "results")
    expected = direct(
        workdir, params={"k": 3}, signals=str(workdir / "preds.parquet"),
        config=BacktestConfig(initial_cash=50_000, commission=0.001),
    )
    assert written.equity.equals(expected.equity)
    assert written.fills.equals(expected.fills)
    assert written.metrics["total_return"] == pytest.approx(expected.metrics["total_return"])
    html = (workdir / "results" / "report.html").read_text()
    assert "<html" in html.lower() and "CLI run" in html and "Equal-weight index" in html
    assert "total_return" in out  # the summary
    assert f"report written to {Path('results') / 'report.html'}" in out



def test_param_values_are_json_or_strings(workdir, capsys):
    # k=2 must arrive as an int and side=long as a string, or TopK raises.
    args = ["run", "strategies.py:TopK", "--data", "bars_with_pred.parquet", "--param", "k=2",
            "--param", "side=long", "--param", "gross=0.5", "--out", "r", "-q", "--no-report"]
    status, _, err = run_cli(capsys, *args)
    assert (status, err) == (EXIT_OK, "")
    assert not (workdir / "r" / "report.html").exists()
    expected = direct(workdir, params={"k": 2, "gross": 0.5},
                      signals=str(workdir / "preds.parquet"))
    assert BacktestResult.from_parquet(workdir / "r").equity.equals(expected.equity)
    status, _, err = run_cli(capsys, *args[:4], "--param", 'k="2"', "--out", "r2")
    assert status == EXIT_FAILURE
    assert "TypeError: k='2'" in err


def test_run_with_context_and_module_path(workdir, capsys):
    status, _, err = run_cli(
        capsys, "run", "strategies:TopK", "--data", "bars_with_pred.parquet",
        "--context", "context.parquet", "--out", "with_ctx", "-q", "--no-report",
    )
    assert (status, err) == (EXIT_OK, "")
    ctx = pl.read_parquet(workdir / "context.parquet")
    with_ctx = direct(workdir, signals=str(workdir / "preds.parquet"), context=ctx)
    without = direct(workdir, signals=str(workdir / "preds.parquet"))
    written = BacktestResult.from_parquet(workdir / "with_ctx")
    assert written.equity.equals(with_ctx.equity)
    assert not written.equity.equals(without.equity)  # the context changed the trades


def test_streamed_run_with_progress_bar(workdir, capsys):
    status, _, err = run_cli(
        capsys, "run", "strategies.py:TopK", "--data", "bars.parquet", "--signals",
        "preds.parquet", "--chunk", "1w", "--progress", "--out", "streamed", "-q", "--no-report",
    )
    assert status == EXIT_OK
    assert "mlbacktest: error" not in err and "/40 " in err  # a bar over the 40 timestamps
    expected = direct(workdir, signals=str(workdir / "preds.parquet"))
    assert BacktestResult.from_parquet(workdir / "streamed").equity.equals(expected.equity)


def test_installed_module_and_csv_data(workdir, capsys):
    status, _, err = run_cli(
        capsys, "run", "mlbacktest.demo:TopBottomK", "--data", "bars.csv", "--param", "k=1",
        "--param", "every=3", "--out", "demo_out", "-q", "--no-report",
    )
    assert (status, err) == (EXIT_OK, "")
    frame = synthetic_bars(n_assets=5, n_bars=40, seed=3)
    expected = mlbacktest.run_backtest(frame, TopBottomK(k=1, every=3))
    written = BacktestResult.from_parquet(workdir / "demo_out")
    np.testing.assert_allclose(written.equity["equity"].to_numpy(),
                               expected.equity["equity"].to_numpy(), rtol=1e-12)
    assert len(written.fills) == len(expected.fills) > 0


def test_arrow_data_with_csv_signals_and_tsv_context(workdir, capsys):
    frame = synthetic_bars(n_assets=5, n_bars=40, seed=3)
    frame.drop("pred").write_ipc(workdir / "bars.arrow")
    frame.select("timestamp", "asset", "pred").write_csv(workdir / "preds.csv")
    pl.read_parquet(workdir / "context.parquet").write_csv(workdir / "context.tsv",
                                                            separator="\t")
    for name, data, signals, context in [("a", "bars.arrow", "preds.csv", "context.tsv"),
                                         ("p", "bars.parquet", "preds.parquet",
                                          "context.parquet")]:
        status, _, err = run_cli(capsys, "run", "strategies.py:TopK", "--data", data,
                                 "--signals", signals, "--context", context, "--out", name,
                                 "-q", "--no-report")
        assert (status, err) == (EXIT_OK, "")
    a, p = (BacktestResult.from_parquet(workdir / n) for n in ("a", "p"))
    assert a.equity["equity"].to_list() == p.equity["equity"].to_list()
    assert a.fills.equals(p.fills) and a.fills.height > 0


def test_class_name_may_be_left_out_when_unique(workdir, capsys):
    (workdir / "one.py").write_text("from mlbacktest import Strategy\n"
                                    "class Only(Strategy):\n    pass\n")
    status, _, err = run_cli(capsys, "run", "one.py", "--data", "bars.parquet", "--out", "o",
                             "-q", "--no-report")
    assert (status, err) == (EXIT_OK, "")
    status, _, err = run_cli(capsys, "run", "strategies.py", "--data", "bars.parquet",
                             "--out", "o2")
    assert status == EXIT_USAGE
    assert "2 Strategy subclasses (Explodes, TopK)" in err


@pytest.mark.filterwarnings("default::mlbacktest.errors.RejectedOrdersWarning")  # printed
def test_run_reports_rejected_orders_and_their_reasons(workdir, capsys):
    (workdir / "greedy.py").write_text(
        "from mlbacktest import Strategy\n"
        "class Greedy(Strategy):\n"
        "    def on_market_data(self, event, context):\n"
        "        self.order_target_percent(event.asset, 10)  # meant 10 %\n"
    )
    status, out, err = run_cli(capsys, "run", "greedy.py", "--data", "bars.parquet",
                               "--out", "g", "--no-report")
    assert status == EXIT_OK
    written = BacktestResult.from_parquet(workdir / "g")
    line = written.rejection_text()
    assert line.startswith("rejected orders: ") and "top reasons: insufficient cash" in line
    assert line in out.splitlines()  # the summary's last line
    warning = err.strip().splitlines()
    assert len(warning) == 1 and warning[0].startswith(
        "mlbacktest: warning: RejectedOrdersWarning: " + line)
    status, out, err = run_cli(capsys, "run", "greedy.py", "--data", "bars.parquet",
                               "--out", "g", "--overwrite", "--no-report", "-q")
    assert status == EXIT_OK
    assert "Backtest summary" not in out and line in out.splitlines()  # even with --quiet
    status, out, _ = run_cli(capsys, "run", "strategies.py:TopK", "--data",
                             "bars_with_pred.parquet", "--out", "t", "--no-report")
    assert status == EXIT_OK and "rejected orders" not in out


def _one_error_line(err: str) -> str:
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("mlbacktest: error: ")
    assert "Traceback" not in err
    return lines[0]


@pytest.mark.parametrize(
    ("argv", "status", "message"),
    [
        (["strategies.py:TopK", "--data", "missing.parquet"], EXIT_USAGE,
         "--data 'missing.parquet' does not exist"),
        (["strategies.py:TopK", "--data", "nothing/*.parquet"], EXIT_USAGE,
         "no file matches the pattern"),
        (["strategies.py:TopK", "--data", "bars.parquet", "--signals", "nope.parquet"],
         EXIT_USAGE, "--signals 'nope.parquet' does not exist"),
        (["nope.py:TopK", "--data", "bars.parquet"], EXIT_USAGE,
         "strategy file 'nope.py' does not exist"),
        (["bars.csv:TopK", "--data", "bars.parquet"], EXIT_USAGE, "is not a Python file"),
        (["no_such_module:TopK", "--data", "bars.parquet"], EXIT_USAGE,
         "no module named 'no_such_module'"),
        (["strategies.py:Missing", "--data", "bars.parquet"], EXIT_USAGE,
         "has no class 'Missing' (its Strategy subclasses: Explodes, TopK)"),
        (["strategies.py:NotAStrategy", "--data", "bars.parquet"], EXIT_USAGE,
         "strategies.py:NotAStrategy is not a subclass of mlbacktest.Strategy"),
        (["strategies.py:not_a_class", "--data", "bars.parquet"], EXIT_USAGE,
         "is a function, not a class"),
        (["strategies.py:TopK", "--data", "bars.parquet", "--param", "depth=3"], EXIT_USAGE,
         "TopK(k, gross, side): got an unexpected keyword argument 'depth'"),
        (["strategies.py:TopK", "--data", "bars.parquet", "--param", "k"], EXIT_USAGE,
         "--param 'k' is not KEY=VALUE"),
        (["strategies.py:TopK", "--data", "bars.csv", "--start", "2020-01-05"], EXIT_USAGE,
         "--start: these options need parquet data"),
        (["strategies.py:TopK"], EXIT_USAGE, "the following arguments are required: --data"),
        (["strategies.py:TopK", "--data", "bars.parquet", "--signals", "bars.parquet"],
         EXIT_FAILURE, "bad data: DataError: signal frame:"),
        (["strategies.py:TopK", "--data", "bars.parquet", "--config", "bad.toml"],
         EXIT_FAILURE, "bad config bad.toml: ConfigError: initial_cash must be > 0"),
        (["strategies.py:TopK", "--data", "bars.parquet", "--config", "broken.json"],
         EXIT_FAILURE, "cannot read the config broken.json: JSONDecodeError"),
        (["strategies.py:TopK", "--data", "bars.parquet", "--config", "config.ini"],
         EXIT_FAILURE, "unknown config file type '.ini'"),
        (["strategies.py:TopK", "--data", "bars.txt"], EXIT_USAGE,
         "--data: cannot tell the format of 'bars.txt' from its name: supported suffixes are "
         ".parquet, .pq, .csv, .csv.gz, .tsv, .tsv.gz, .arrow, .ipc, .feather"),
        (["strategies.py:TopK", "--data", "bars.parquet", "--signals", "bars.txt"], EXIT_USAGE,
         "--signals: cannot tell the format of 'bars.txt'"),
        (["strategies.py:TopK", "--data", "bars.parquet", "--context", "bars.txt"], EXIT_USAGE,
         "--context: cannot tell the format of 'bars.txt'"),
        (["strategies.py:TopK", "--data", "bars.parquet", "--benchmark", "bars.txt"],
         EXIT_USAGE, "--benchmark: cannot tell the format of 'bars.txt'"),
    ],
)
def test_run_errors_are_one_line(workdir, capsys, argv, status, message):
    (workdir / "bad.toml").write_text("initial_cash = -5\n")
    (workdir / "broken.json").write_text("{initial_cash: 5")
    (workdir / "config.ini").write_text("[x]\n")
    (workdir / "bars.txt").write_text((workdir / "bars.csv").read_text())
    got, out, err = run_cli(capsys, "run", *argv, "--out", "out")
    assert got == status
    assert message in _one_error_line(err)
    assert out == ""
    assert not (workdir / "out").exists()


def test_errors_raised_by_the_strategy_module(workdir, capsys):
    (workdir / "broken.py").write_text("class X(:\n")
    (workdir / "needs_dep.py").write_text("import package_that_is_not_installed\n")
    (workdir / "ctor.py").write_text(textwrap.dedent("""
        from mlbacktest import Strategy

        class Picky(Strategy):
            def __init__(self, k=1):
                raise ValueError(f"k={k} is not supported")
    """))
    for spec, first in [
        ("broken.py:X", "importing broken.py raised SyntaxError: "),
        ("needs_dep.py:X", "importing needs_dep.py raised ModuleNotFoundError: "
                           "No module named 'package_that_is_not_installed'"),
        ("ctor.py:Picky", "the strategy's constructor Picky() raised ValueError: "
                          "k=[1, 2] is not supported"),
    ]:
        status, out, err = run_cli(capsys, "run", spec, "--data", "bars.parquet", "--param",
                                   "k=[1, 2]", "--out", "o")
        lines = err.strip().splitlines()
        assert status == EXIT_FAILURE, err
        assert lines[0].startswith("mlbacktest: error: " + first), err
        assert "--traceback" in lines[-1] and "Traceback" not in err
        assert out == "" and not (workdir / "o").exists()


def test_bad_data_names_the_row(workdir, capsys):
    frame = pl.read_parquet(workdir / "bars.parquet")
    bad = frame.with_columns(
        low=pl.when(pl.int_range(pl.len()) == 7).then(pl.col("high") + 1).otherwise("low")
    )
    bad.write_parquet(workdir / "bad_bars.parquet")
    status, _, err = run_cli(capsys, "run", "strategies.py:TopK", "--data", "bad_bars.parquet",
                             "--out", "o")
    line = _one_error_line(err)
    assert status == EXIT_FAILURE
    assert "DataError: column 'low' is greater than 'high'" in line
    assert f"row 7 (asset {frame['asset'][7]!r}" in line


def test_strategy_exception_names_type_message_and_timestamp(workdir, capsys):
    argv = ["run", "strategies.py:Explodes", "--data", "bars.parquet", "--out", "boom"]
    status, out, err = run_cli(capsys, *argv)
    assert status == EXIT_FAILURE
    lines = err.strip().splitlines()
    assert lines[0] == ("mlbacktest: error: the strategy raised ZeroDivisionError: "
                        "model weights are all zero")
    assert "on_market_data() at timestamp 2020-01-03 00:00:00, asset 'A002'" in lines[1]
    assert "--traceback" in lines[2]
    assert "Traceback" not in err
    assert not (workdir / "boom").exists()

    status, _, err = run_cli(capsys, *argv, "--traceback")
    assert status == EXIT_FAILURE
    assert "Traceback (most recent call last)" in err
    assert 'raise ZeroDivisionError("model weights are all zero")' in err
    assert err.strip().splitlines()[-1].startswith("mlbacktest: error: the strategy raised")


def test_out_dir_must_be_empty_unless_overwrite(workdir, capsys):
    base = ["run", "strategies.py:TopK", "--data", "bars_with_pred.parquet", "-q", "--no-report"]
    (workdir / "taken").mkdir()
    (workdir / "taken" / "notes.txt").write_text("mine")
    for extra in ([], ["--overwrite"]):  # a file it did not write: refused either way
        status, _, err = run_cli(capsys, *base, "--out", "taken", *extra)
        assert status == EXIT_USAGE
        assert ("--out: 'taken' is not empty and holds files mlbacktest did not write "
                "(notes.txt)") in _one_error_line(err)
        assert sorted(os.listdir(workdir / "taken")) == ["notes.txt"]

    status, _, err = run_cli(capsys, *base, "--out", "fresh")
    assert (status, err) == (EXIT_OK, "")
    status, _, err = run_cli(capsys, *base, "--out", "fresh")
    assert status == EXIT_USAGE
    assert "holds an earlier result); pass --overwrite" in _one_error_line(err)
    status, _, err = run_cli(capsys, *base, "--param", "k=1", "--out", "fresh", "--overwrite")
    assert (status, err) == (EXIT_OK, "")
    expected = direct(workdir, params={"k": 1}, signals=str(workdir / "preds.parquet"))
    assert BacktestResult.from_parquet(workdir / "fresh").equity.equals(expected.equity)

    status, _, err = run_cli(capsys, *base, "--out", "bars.csv")
    assert status == EXIT_USAGE
    assert "is a file, not a directory" in err


def _snapshot(root: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(root.iterdir())}


def test_demo_and_run_refuse_a_planted_report(workdir, capsys):
    # A directory that merely holds a file named report.html is not an earlier output.
    (workdir / "mine").mkdir()
    (workdir / "mine" / "report.html").write_text("<html>my thesis</html>")
    for argv in (["demo", "--assets", "10", "--bars", "30"],
                 ["run", "strategies.py:TopK", "--data", "bars_with_pred.parquet", "-q",
                  "--overwrite"]):
        status, out, err = run_cli(capsys, *argv, "--out", "mine")
        assert status == EXIT_USAGE
        assert "did not write (report.html)" in _one_error_line(err)
        assert "Backtest summary" not in out  # refused before the run
        assert _snapshot(workdir / "mine") == {"report.html": b"<html>my thesis</html>"}


def test_a_failed_overwrite_leaves_the_previous_result(workdir, capsys):
    (workdir / "late_fail.py").write_text(textwrap.dedent('''
        import numpy as np
        from mlbacktest import Strategy

        class LateFail(Strategy):
            def on_slice(self, view, context):
                self.rebalance(np.full(len(view), 0.1))
                if self.now.day == 20:
                    raise RuntimeError("feature store went away")
    '''))
    base = ["--data", "bars_with_pred.parquet", "-q", "--out", "res"]
    status, _, err = run_cli(capsys, "run", "strategies.py:TopK", *base)
    assert (status, err) == (EXIT_OK, "")
    before = _snapshot(workdir / "res")
    assert "report.html" in before
    for extra in (["--chunk", "2d"], []):  # streamed: old and new files must never mix
        status, _, err = run_cli(capsys, "run", "late_fail.py:LateFail", *base, "--overwrite",
                                 *extra)
        assert status == EXIT_FAILURE
        assert "the strategy raised RuntimeError: feature store went away" in err
        assert _snapshot(workdir / "res") == before
        assert not [p for p in os.listdir(workdir) if p.startswith(".res.")]
    # A report that cannot be built: nothing replaced either.
    pl.DataFrame({"timestamp": [1, 2], "level": [1.0, 2.0]}).write_parquet("bad_index.parquet")
    status, _, err = run_cli(capsys, "run", "strategies.py:TopK", *base, "--overwrite",
                             "--param", "k=1", "--benchmark", "bad_index.parquet")
    assert status == EXIT_FAILURE
    assert _snapshot(workdir / "res") == before
    assert not [p for p in os.listdir(workdir) if p.startswith(".res.")]
    BacktestResult.from_parquet(workdir / "res")


def test_symlinks_are_never_written_through(workdir, capsys):
    victim = workdir / "victim.txt"
    victim.write_text("precious")
    status, _, _ = run_cli(capsys, "run", "strategies.py:TopK", "--data",
                           "bars_with_pred.parquet", "-q", "--no-report", "--out", "res")
    assert status == EXIT_OK
    (workdir / "res" / "report.html").symlink_to(victim)
    status, _, err = run_cli(capsys, "report", "res")
    assert status == EXIT_USAGE
    assert "res/report.html' is a symbolic link" in _one_error_line(err)
    status, _, err = run_cli(capsys, "report", "res", "--out", "victim.txt")
    assert status == EXIT_USAGE
    assert "'victim.txt' exists and is not a report mlbacktest wrote" in _one_error_line(err)
    (workdir / "linked_out").symlink_to(workdir / "res")
    status, _, err = run_cli(capsys, "run", "strategies.py:TopK", "--data",
                             "bars_with_pred.parquet", "-q", "--overwrite", "--out", "linked_out")
    assert status == EXIT_USAGE
    assert "'linked_out' is a symbolic link" in _one_error_line(err)
    assert victim.read_text() == "precious"
    assert (workdir / "res" / "report.html").is_symlink()


def test_report_rebuilds_from_the_results_dir(workdir, capsys, monkeypatch):
    # The HTML itself is checked above (run) and below (demo); here: which result is
    # reported, and where the report goes.
    status, _, _ = run_cli(capsys, "run", "strategies.py:TopK", "--data",
                           "bars_with_pred.parquet", "--out", "res", "-q", "--no-report")
    assert status == EXIT_OK
    assert not (workdir / "res" / "report.html").exists()
    pl.DataFrame({"timestamp": [1, 2], "level": [1.0, 2.0]}).write_parquet("bad_index.parquet")
    status, _, err = run_cli(capsys, "report", "res", "--benchmark", "bad_index.parquet")
    assert status == EXIT_FAILURE
    assert "bad benchmark: ValueError:" in _one_error_line(err)
    assert not (workdir / "res" / "report.html").exists()
    calls = []

    def report(self, path="report.html", benchmark=None, **kwargs):
        calls.append((Path(path), self.final_equity))
        return Path(path)

    monkeypatch.setattr(BacktestResult, "report", report)
    final = BacktestResult.from_parquet(workdir / "res").final_equity
    (workdir / "reports").mkdir()
    for out, expected in [(None, Path("res") / "report.html"),
                          ("elsewhere.html", Path("elsewhere.html")),
                          ("reports", Path("reports") / "report.html")]:
        status, printed, err = run_cli(capsys, "report", "res",
                                       *([] if out is None else ["--out", out]))
        assert (status, err) == (EXIT_OK, "")
        assert calls[-1] == (expected, final)
        assert f"report written to {expected}" in printed

    status, _, err = run_cli(capsys, "report", "nowhere")
    assert status == EXIT_USAGE
    assert "results directory 'nowhere' does not exist" in _one_error_line(err)
    status, _, err = run_cli(capsys, "report", "bars.csv")
    assert status == EXIT_USAGE
    assert "'bars.csv' is not a directory" in _one_error_line(err)
    (workdir / "empty").mkdir()
    status, _, err = run_cli(capsys, "report", "empty")
    assert status == EXIT_FAILURE
    assert "cannot read the results in empty" in _one_error_line(err)
    assert len(calls) == 3


def test_demo_writes_report_and_replaces_its_own_output(tmp_path, capsys):
    # An earlier demo's output: a report and result files, all to be replaced.
    out_dir = tmp_path / "demo"
    status, _, err = run_cli(capsys, "demo", "--assets", "12", "--bars", "30", "--seed", "1",
                             "--out", str(out_dir))
    assert (status, err) == (EXIT_OK, "")
    assert sorted(os.listdir(out_dir)) == [
        "equity.parquet", "fills.parquet", "orders.parquet", "report.html", "result.json"]
    assert BacktestResult.from_parquet(out_dir).equity.height == 30
    status, out, err = run_cli(capsys, "demo", "--assets", "10", "--bars", "60",
                               "--out", str(out_dir))
    assert (status, err) == (EXIT_OK, "")
    assert "Backtest summary" in out and "asset-bars in" in out
    assert f"report written to {out_dir / 'report.html'}" in out
    assert "<html" in (out_dir / "report.html").read_text().lower()
    result = BacktestResult.from_parquet(out_dir)
    assert result.equity.height == 60 and len(result.asset_names) == 10

    other = tmp_path / "other"
    other.mkdir()
    (other / "thesis.tex").write_text("...")
    status, _, err = run_cli(capsys, "demo", "--assets", "10", "--bars", "60", "--out",
                             str(other))
    assert status == EXIT_USAGE
    assert "is not empty" in _one_error_line(err)
    assert os.listdir(other) == ["thesis.tex"]

    status, out, err = run_cli(capsys, "demo", "--assets", "10", "--bars", "30", "--no-report",
                               "--out", str(other))
    assert (status, err) == (EXIT_OK, "")
    assert "Backtest summary" in out and "report written" not in out
    assert os.listdir(other) == ["thesis.tex"]

    status, _, err = run_cli(capsys, "demo", "--assets", "3")
    assert status == EXIT_USAGE
    assert "at least 10 assets" in err


def test_help_documents_exit_statuses(capsys):
    for argv in (["--help"], ["run", "--help"]):
        status, out, _ = run_cli(capsys, *argv)
        assert status == EXIT_OK
        assert "exit status:" in out
        assert "1  the inputs are invalid or the run failed" in out
        assert "2  usage error" in out
    status, _, err = run_cli(capsys, "frobnicate")
    assert status == EXIT_USAGE
    assert "invalid choice: 'frobnicate'" in _one_error_line(err)


def test_python_dash_m_exit_status(workdir):
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(
        [str(Path(mlbacktest.__file__).parents[1]), os.environ.get("PYTHONPATH", "")])}
    proc = subprocess.run(
        [sys.executable, "-m", "mlbacktest", "run", "strategies.py:Explodes", "--data",
         "bars.parquet", "--out", "sub"],
        cwd=workdir, env=env, capture_output=True, text=True, timeout=120,
    )
    assert proc.returncode == EXIT_FAILURE, proc.stderr
    assert proc.stderr.startswith("mlbacktest: error: the strategy raised ZeroDivisionError")
    assert "Traceback" not in proc.stderr


def test_load_strategy_class_by_module_and_file(workdir):
    assert load_strategy_class("mlbacktest.demo:TopBottomK") is TopBottomK
    cls = load_strategy_class(str(workdir / "strategies.py") + ":TopK")
    assert cls.__name__ == "TopK" and issubclass(cls, mlbacktest.Strategy)
    # A dataclass strategy works: its module is registered while it is imported.
    (workdir / "dc.py").write_text(textwrap.dedent("""
        from dataclasses import dataclass
        from mlbacktest import Strategy

        @dataclass
        class Weighted(Strategy):
            k: int = 3
    """))
    assert load_strategy_class("dc.py:Weighted")().k == 3


SLOW = '''
import time
from pathlib import Path

import numpy as np
from mlbacktest import Strategy


class Slow(Strategy):
    """Trades every bar and takes its time, so a signal arrives mid-run."""

    def __init__(self):
        self.bars = 0

    def on_slice(self, view, context):
        self.bars += 1
        Path("progress").write_text(str(self.bars))
        self.rebalance(np.full(len(view), 0.1))
        time.sleep(0.1)
'''


@pytest.mark.parametrize("previous", [True, False], ids=["overwrite", "fresh"])
def test_sigterm_during_a_streamed_run_leaves_no_partial_output(workdir, capsys, previous):
    import signal
    import time

    (workdir / "slow.py").write_text(SLOW)
    before = None
    if previous:
        status, _, _ = run_cli(capsys, "run", "strategies.py:TopK", "--data",
                               "bars_with_pred.parquet", "-q", "--out", "res")
        assert status == EXIT_OK
        before = _snapshot(workdir / "res")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(
        [str(Path(mlbacktest.__file__).parents[1]), os.environ.get("PYTHONPATH", "")])}
    proc = subprocess.Popen(
        [sys.executable, "-m", "mlbacktest", "run", "slow.py:Slow", "--data",
         "bars_with_pred.parquet", "--chunk", "3d", "--out", "res", "--overwrite", "-q",
         "--no-report", "--no-progress"],
        cwd=workdir, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    deadline = time.monotonic() + 60
    progress = workdir / "progress"
    while time.monotonic() < deadline:  # past a few windows, so files were flushed
        if progress.exists() and int(progress.read_text().strip() or 0) >= 9:
            break
        assert proc.poll() is None, proc.communicate()
        time.sleep(0.02)
    assert proc.poll() is None
    proc.send_signal(signal.SIGTERM)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 143, err
    assert err == ("mlbacktest: error: terminated by SIGTERM; nothing was written (earlier "
                   "output is left as it was)\n")
    assert out == ""
    assert int(progress.read_text()) < 40  # it was stopped mid-run
    if previous:
        assert _snapshot(workdir / "res") == before
        BacktestResult.from_parquet(workdir / "res")
    else:
        assert not (workdir / "res").exists()
    assert not [p for p in os.listdir(workdir) if p.startswith(".res.")]


# -- inputs that once crashed the CLI: each is one line and a documented status -------------
@pytest.mark.parametrize(
    ("argv", "status", "message"),
    [
        (["--start", "2020-13-45"], EXIT_USAGE, "--start '2020-13-45' is not a valid time"),
        (["--end", "2020-02-30"], EXIT_USAGE, "--end '2020-02-30' is not a valid time"),
        (["--chunk", "0d"], EXIT_USAGE, "--chunk '0d' must be a positive duration"),
        (["--chunk", "soon"], EXIT_USAGE, "--chunk 'soon' is not a duration"),
        (["--param", "k=" + "[" * 50_000 + "]" * 50_000], EXIT_USAGE,
         "--param k: the value is nested too deeply to read"),
    ],
    ids=["bad-start", "bad-end", "zero-chunk", "word-chunk", "deep-param"],
)
def test_malformed_options_are_one_line(workdir, capsys, argv, status, message):
    got, out, err = run_cli(capsys, "run", "strategies.py:TopK", "--data",
                            "bars_with_pred.parquet", *argv, "--out", "out")
    assert got == status
    assert message in _one_error_line(err)
    assert out == ""
    assert not (workdir / "out").exists()


def test_extreme_periods_per_year_is_one_line(workdir, capsys):
    (workdir / "huge.toml").write_text("[backtest]\nperiods_per_year = 1e308\n")
    status, _, err = run_cli(capsys, "run", "strategies.py:TopK", "--data",
                             "bars_with_pred.parquet", "--config", "huge.toml", "--out", "out")
    assert status == EXIT_FAILURE
    assert "periods_per_year" in _one_error_line(err)
    assert not (workdir / "out").exists()
    # Saved with an extreme value, a result is refused on load.
    status, _, _ = run_cli(capsys, "run", "strategies.py:TopK", "--data",
                           "bars_with_pred.parquet", "-q", "--no-report", "--out", "res")
    assert status == EXIT_OK
    meta = json.loads((workdir / "res" / "result.json").read_text())
    (workdir / "res" / "result.json").write_text(json.dumps(meta | {"periods_per_year": 1e308}))
    status, _, err = run_cli(capsys, "report", "res")
    assert status == EXIT_FAILURE
    assert "ResultFileError" in _one_error_line(err) and "'periods_per_year'" in err


def test_report_on_tampered_asset_names_is_one_line(workdir, capsys):
    status, _, _ = run_cli(capsys, "run", "strategies.py:TopK", "--data",
                           "bars_with_pred.parquet", "-q", "--no-report", "--out", "res")
    assert status == EXIT_OK
    meta = json.loads((workdir / "res" / "result.json").read_text())
    (workdir / "res" / "result.json").write_text(json.dumps(meta | {"asset_names": [0, 1, 2,
                                                                                      3, 4]}))
    status, _, err = run_cli(capsys, "report", "res")
    assert status == EXIT_FAILURE
    line = _one_error_line(err)
    assert "cannot read the results in res: ResultFileError:" in line
    assert "result.json: field 'asset_names' must be a list of strings" in line
    assert not (workdir / "res" / "report.html").exists()


EXITS = '''
import sys
from mlbacktest import Strategy

class ExitsInRun(Strategy):
    def on_slice(self, view, context):
        if self.now.day == 5:
            sys.exit(7)

class ExitsInInit(Strategy):
    def __init__(self):
        sys.exit("no licence")
'''


def test_sys_exit_in_the_strategy_is_reported(workdir, capsys):
    (workdir / "exits.py").write_text(EXITS)
    (workdir / "exits_on_import.py").write_text("import sys\nsys.exit(3)\n")
    status, _, _ = run_cli(capsys, "run", "strategies.py:TopK", "--data",
                           "bars_with_pred.parquet", "-q", "--no-report", "--out", "res")
    before = _snapshot(workdir / "res")
    for spec, message in [
        ("exits.py:ExitsInRun", "the strategy called sys.exit(7)"),
        ("exits.py:ExitsInInit", "the strategy's constructor ExitsInInit() called "
                                 "sys.exit('no licence')"),
        ("exits_on_import.py:X", "importing exits_on_import.py called sys.exit(3)"),
    ]:
        status, _, err = run_cli(capsys, "run", spec, "--data", "bars_with_pred.parquet",
                                 "--overwrite", "--out", "res")
        assert status == EXIT_FAILURE, err
        first, *rest = err.strip().splitlines()
        assert message in first
        # the engine's note names the hook and the timestamp when the run was under way
        assert rest == ([] if "InRun" not in spec else
                        ["  raised in on_slice() at timestamp 2020-02-05 00:00:00"]), err
        assert _snapshot(workdir / "res") == before
    with pytest.raises(Exception, match=r"importing exits_on_import.py called sys.exit\(3\)"):
        load_strategy_class("exits_on_import.py:X")


def test_unexpected_lower_layer_errors_are_one_line(workdir, capsys, monkeypatch):
    import polars.exceptions

    from mlbacktest.data import feeds

    def broken(*args, **kwargs):
        raise polars.exceptions.ComputeError("unexpected schema in row group 3")

    monkeypatch.setattr(feeds.ParquetDataFeed, "__init__", broken)
    argv = ["run", "strategies.py:TopK", "--data", "bars_with_pred.parquet", "--out", "out"]
    status, _, err = run_cli(capsys, *argv)
    assert status == EXIT_FAILURE
    assert ("unexpected ComputeError: unexpected schema in row group 3 (run again with "
            "--traceback") in _one_error_line(err)
    status, _, err = run_cli(capsys, *argv, "--traceback")  # a genuine bug stays findable
    assert status == EXIT_FAILURE
    assert "Traceback (most recent call last)" in err and "def broken" not in err
    assert 'raise polars.exceptions.ComputeError("unexpected schema' in err
    assert not (workdir / "out").exists()


# --------------------------------------------------------------------------- #
# run --zipline: an unmodified zipline algorithm file
# --------------------------------------------------------------------------- #
ZIPLINE_ALGO = '''
from zipline.api import order_target_percent, record, symbol


def initialize(context):
    context.asset = symbol("A001")


def handle_data(context, data):
    order_target_percent(context.asset, 0.5)
    record(price=data.current(context.asset, "price"))
'''


@pytest.fixture
def zipline_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Daily bars on weekdays (trading_calendar=None is not reachable from the CLI, so the
    dates are XNYS sessions) and a zipline algorithm file; the cwd."""
    pytest.importorskip("exchange_calendars")
    import exchange_calendars as xcals

    days = xcals.get_calendar("XNYS").sessions_in_range("2021-01-04", "2021-03-31")
    frame = synthetic_bars(n_assets=3, n_bars=len(days), seed=4).drop("pred")
    mapping = pl.DataFrame({"timestamp": frame["timestamp"].unique().sort(),
                            "day": pl.Series(days.to_numpy()).cast(pl.Datetime("ns"))})
    frame = (frame.join(mapping, on="timestamp").drop("timestamp").rename({"day": "timestamp"})
             .with_columns(pl.col("volume").round(0)))
    frame.write_parquet(tmp_path / "bars.parquet")
    (tmp_path / "algo.py").write_text(ZIPLINE_ALGO)
    monkeypatch.chdir(tmp_path)
    return tmp_path


def test_run_zipline_writes_perf(zipline_dir, capsys):
    import pickle

    from mlbacktest.compat.zipline import load_algorithm, run_algorithm

    status, out, err = run_cli(capsys, "run", "--zipline", "algo.py", "--data", "bars.parquet",
                               "--capital-base", "100000", "--out", "zl")
    assert (status, err) == (EXIT_OK, "")
    perf = pickle.loads((zipline_dir / "zl" / "perf.pickle").read_bytes())
    module = load_algorithm(zipline_dir / "algo.py", replace=True)
    direct_perf = run_algorithm("2021-01-04", "2021-03-31", module.initialize, 1e5,
                                handle_data=module.handle_data, data="bars.parquet")
    assert perf["portfolio_value"].equals(direct_perf["portfolio_value"])
    assert perf["price"].equals(direct_perf["price"])
    assert "sessions 2021-01-04 .. 2021-03-31" in out and "perf written to" in out


def test_run_zipline_minute_bars(tmp_path, monkeypatch, capsys):
    import pickle

    pytest.importorskip("exchange_calendars")
    import exchange_calendars as xcals
    import pandas as pd

    from mlbacktest.compat.zipline import load_algorithm, run_algorithm

    cal = xcals.get_calendar("XNYS", side="right")
    minutes = np.concatenate([
        pd.date_range(cal.session_first_minute(d), cal.session_last_minute(d), freq="min")
        .tz_convert(None).to_numpy() for d in cal.sessions_in_range("2021-03-01", "2021-03-02")])
    close = np.round(50 + np.sin(np.arange(len(minutes)) / 30.0), 3)
    pl.DataFrame({"timestamp": minutes, "asset": "A001", "open": close, "high": close,
                  "low": close, "close": close, "volume": 1000.0}).write_parquet(
        tmp_path / "minutes.parquet")
    (tmp_path / "algo.py").write_text(ZIPLINE_ALGO.replace(
        "symbol\n", "symbol, get_open_orders\n").replace(
        "    order_target_percent(", "    if not get_open_orders(context.asset):\n"
        "        order_target_percent("))
    monkeypatch.chdir(tmp_path)
    status, out, err = run_cli(capsys, "run", "--zipline", "algo.py", "--data",
                               "minutes.parquet", "--data-frequency", "minute",
                               "--capital-base", "100000", "--out", "zl")
    assert (status, err) == (EXIT_OK, "")
    perf = pickle.loads((tmp_path / "zl" / "perf.pickle").read_bytes())
    module = load_algorithm(tmp_path / "algo.py", replace=True)
    direct = run_algorithm("2021-03-01", "2021-03-02", module.initialize, 1e5,
                           handle_data=module.handle_data, data="minutes.parquet",
                           data_frequency="minute")
    assert len(perf) == 2 and perf["portfolio_value"].equals(direct["portfolio_value"])
    assert sum(len(t) for t in perf["transactions"]) > 10  # 10 % of each minute's volume
    status, _, err = run_cli(capsys, "run", "--zipline", "algo.py", "--data",
                             "minutes.parquet", "--out", "zl2")
    assert status == EXIT_FAILURE and "bad data" in err and "stamped with their session" in err


def test_run_zipline_usage_errors(zipline_dir, capsys):
    status, _, err = run_cli(capsys, "run", "strategies.py:TopK", "--zipline", "algo.py",
                             "--data", "bars.parquet", "--out", "zl")
    assert status == EXIT_USAGE and "either STRATEGY (strategies.py:TopK) or --zipline" in err
    status, _, err = run_cli(capsys, "run", "--zipline", "algo.py", "--data", "bars.parquet",
                             "--signals", "bars.parquet", "--out", "zl")
    assert status == EXIT_USAGE and "--signals does not apply to a --zipline run" in err
    status, _, err = run_cli(capsys, "run", "--data", "bars.parquet", "--out", "zl")
    assert status == EXIT_USAGE and "run needs a STRATEGY" in err
    status, _, err = run_cli(capsys, "run", "strategies.py:TopK", "--data", "bars.parquet",
                             "--data-frequency", "minute", "--out", "zl")
    assert status == EXIT_USAGE and "--data-frequency applies to a --zipline run only" in err


def test_run_zipline_reports_porting_and_data_errors(zipline_dir, capsys):
    (zipline_dir / "pipe.py").write_text(ZIPLINE_ALGO.replace(
        "    record(", "    from zipline.api import fetch_csv\n    fetch_csv()\n"
        "    record("))
    status, _, err = run_cli(capsys, "run", "--zipline", "pipe.py", "--data", "bars.parquet",
                             "--out", "zl")
    assert status == EXIT_FAILURE
    assert "not supported by the zipline shim" in err and "fetch_csv" in err
    pl.read_parquet("bars.parquet").filter(
        pl.col("timestamp") != pl.datetime(2021, 2, 1)).write_parquet("gap.parquet")
    status, _, err = run_cli(capsys, "run", "--zipline", "algo.py", "--data", "gap.parquet",
                             "--out", "zl")
    assert status == EXIT_FAILURE and "bad data" in err and "2021-02-01" in err
