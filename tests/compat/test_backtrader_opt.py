"""``Cerebro.optstrategy`` on the research executors, against real backtrader's ``optstrategy``.

The same strategy source runs through real backtrader (``maxcpus=1``,
backtrader's default ``optreturn=True``) and through the shim in this
process, on local processes and on a two-worker Dask ``LocalCluster``: every
parameter set's analyzers (Sharpe ratio, draw-down, trades, returns, hence
the final value) agree with backtrader to 1e-9, and the shim's results are
identical, bit for bit, on every executor.
"""

from __future__ import annotations

import math
import multiprocessing
import os
import subprocess
import sys
import textwrap
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

import backtrader
import pytest

import mlbacktest.compat.backtrader as shim
from mlbacktest.compat.backtrader._core import OptReturn
from mlbacktest.errors import PortingError

from .test_backtrader_parity import BARS, close, load

ROOT = Path(__file__).resolve().parents[2]
GRID = {"fast": (5, 10), "slow": (20, 30)}
CASH = 100_000.0

SOURCE = '''
class S(bt.Strategy):
    params = (("fast", 10), ("slow", 30), ("boom", None))

    def __init__(self):
        self.cross = {d._name: bt.ind.CrossOver(bt.ind.SMA(d.close, period=self.p.fast),
                                                 bt.ind.SMA(d.close, period=self.p.slow))
                      for d in self.datas}

    def next(self):
        if self.p.boom is not None and len(self) == 60 and self.p.fast == self.p.boom:
            raise ZeroDivisionError("boom at bar 60")
        for d in self.datas:
            if self.cross[d._name] > 0 and not self.getposition(d):
                self.buy(data=d)
            elif self.cross[d._name] < 0 and self.getposition(d):
                self.close(data=d)
'''

ANALYZERS = ("sharpe", "dd", "trades", "ret")


def cerebro_of(bt: Any, **options: Any) -> tuple[Any, type]:
    ns = load(bt, SOURCE)
    cerebro = bt.Cerebro(stdstats=False, **options)
    for asset, df in BARS.items():
        cerebro.adddata(bt.feeds.PandasData(dataname=df), name=asset)
    cerebro.broker.setcash(CASH)
    cerebro.broker.setcommission(commission=0.001)
    cerebro.addsizer(bt.sizers.FixedSize, stake=25)
    cerebro.addanalyzer(bt.analyzers.SharpeRatio, _name="sharpe")
    cerebro.addanalyzer(bt.analyzers.DrawDown, _name="dd")
    cerebro.addanalyzer(bt.analyzers.TradeAnalyzer, _name="trades")
    cerebro.addanalyzer(bt.analyzers.Returns, _name="ret")
    return cerebro, ns["S"]


def optimise(bt: Any, run: dict[str, Any] | None = None, **grid: Any) -> list[Any]:
    cerebro, cls = cerebro_of(bt)
    cerebro.optstrategy(cls, **(grid or GRID))
    return cerebro.run(**(run or {}))  # type: ignore[no-any-return]


def plain(x: Any) -> Any:
    if isinstance(x, dict):
        return {k: plain(v) for k, v in x.items()}
    return x


def analyses(results: list[Any]) -> list[tuple[Any, ...]]:
    """(parameters, every analyzer's get_analysis()) per set, in the order returned."""
    out = []
    for (r,) in results:
        out.append((sorted(vars(r.p).items()),
                    {n: plain(getattr(r.analyzers, n).get_analysis()) for n in ANALYZERS}))
    return out


@pytest.fixture(scope="module")
def serial() -> list[Any]:
    return optimise(shim, {"maxcpus": 1})


@pytest.fixture(scope="module")
def pool() -> Any:
    with ProcessPoolExecutor(2, mp_context=multiprocessing.get_context("spawn")) as ex:
        yield ex


def test_every_set_agrees_with_backtrader_optstrategy(serial: list[Any]) -> None:
    theirs = optimise(backtrader, {"maxcpus": 1})
    assert len(theirs) == len(serial) == 4
    assert all(isinstance(r[0], backtrader.cerebro.OptReturn) for r in theirs)
    assert all(isinstance(r[0], OptReturn) for r in serial)
    finals = set()
    for (t,), (o,) in zip(theirs, serial, strict=True):
        assert (t.p.fast, t.p.slow) == (o.p.fast, o.p.slow)  # the same order of the sets
        where = f"fast={o.p.fast} slow={o.p.slow}"
        for name in ANALYZERS:
            a = plain(dict(getattr(t.analyzers, name).get_analysis()))
            b = plain(getattr(o.analyzers, name).get_analysis())
            close(a, b, f"{where} {name}")
        # the final value, from the total log return
        final = CASH * math.exp(o.analyzers.ret.get_analysis()["rtot"])
        close(CASH * math.exp(t.analyzers.ret.get_analysis()["rtot"]), final, f"{where} value")
        finals.add(round(final, 6))
        assert o.analyzers.trades.get_analysis()["total"]["total"] > 2  # it trades
    assert len(finals) == 4  # the parameters matter


def test_opt_return_is_backtraders(serial: list[Any]) -> None:
    (r,) = serial[0]
    assert r.p is r.params and (r.p.fast, r.p.slow) == (5, 20)
    assert r.strategycls.__name__ == "S" and issubclass(r.strategycls, shim.Strategy)
    assert [a for a in r.analyzers] == [r.analyzers.sharpe, r.analyzers.dd,
                                       r.analyzers.trades, r.analyzers.ret]
    # detached from the run, as backtrader detaches them
    assert all(a.strategy is None and a.data is None and a.datas is None for a in r.analyzers)
    assert not hasattr(r, "position") and not hasattr(r, "datas")


def test_local_processes_and_any_executor_give_identical_results(
        serial: list[Any], pool: Any) -> None:
    want = repr(analyses(serial))
    assert repr(analyses(optimise(shim, {"executor": "processes:2"}))) == want
    on_pool = optimise(shim, {"executor": pool})
    assert repr(analyses(on_pool)) == want
    assert on_pool[0][0].strategycls.__name__ == "S"


def test_a_dask_cluster_gives_identical_results(serial: list[Any]) -> None:
    distributed = pytest.importorskip("distributed")
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                  dashboard_address=":0", silence_logs=40) as cluster, \
            distributed.Client(cluster, set_as_default=False) as client:
        assert repr(analyses(optimise(shim, {"executor": client}))) == repr(analyses(serial))
        with pytest.raises(ZeroDivisionError, match="boom at bar 60"):
            optimise(shim, {"executor": client}, fast=(5, 10), slow=(20,), boom=(10,))


def test_a_strategy_error_keeps_its_type_on_every_executor(pool: Any) -> None:
    for run in ({"maxcpus": 1}, {"executor": pool}):
        with pytest.raises(ZeroDivisionError, match="boom at bar 60"):
            optimise(shim, run, fast=(5, 10), slow=(20,), boom=(10,))


def test_a_strategy_defined_in_main_runs_with_maxcpus(tmp_path: Path) -> None:
    script = tmp_path / "opt_script.py"
    script.write_text(textwrap.dedent("""
        import numpy as np
        import pandas as pd
        import mlbacktest.compat.backtrader as bt

        class Cross(bt.Strategy):
            params = (("fast", 5), ("slow", 20))

            def __init__(self):
                self.x = bt.ind.CrossOver(bt.ind.SMA(self.data.close, period=self.p.fast),
                                          bt.ind.SMA(self.data.close, period=self.p.slow))

            def next(self):
                if self.x[0] > 0:
                    self.buy(size=10)
                elif self.x[0] < 0:
                    self.close()

        def optimise(**run):
            rng = np.random.default_rng(3)
            c = 50 * np.exp(np.cumsum(rng.normal(0.0003, 0.02, 200)))
            df = pd.DataFrame({"open": c, "high": c * 1.01, "low": c * 0.99, "close": c,
                               "volume": 1e6},
                              index=pd.date_range("2021-01-04", periods=200, freq="B"))
            cerebro = bt.Cerebro()  # backtrader's defaults: maxcpus=None, optreturn=True
            cerebro.adddata(bt.feeds.PandasData(dataname=df))
            cerebro.addanalyzer(bt.analyzers.Returns, _name="ret")
            cerebro.optstrategy(Cross, fast=(3, 5, 8), slow=(20, 30))
            return [(r.p.fast, r.p.slow, r.strategycls is Cross,
                     r.analyzers.ret.get_analysis()["rtot"]) for (r,) in cerebro.run(**run)]

        if __name__ == "__main__":
            every_core, one = optimise(), optimise(maxcpus=1)  # processes, then this one
            assert every_core == one, (every_core, one)
            assert len({r[3] for r in one}) > 1
            print(len(one), all(r[2] for r in one))
    """))
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    done = subprocess.run([sys.executable, str(script)], capture_output=True, text=True,
                          cwd=tmp_path, timeout=180, env=env)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "6 True"


def test_optreturn_false_gives_the_strategies_in_this_process() -> None:
    cerebro, cls = cerebro_of(shim, optreturn=False)  # maxcpus=None: they stay here
    cerebro.optstrategy(cls, fast=(5, 10), slow=(20,))
    results = cerebro.run()
    assert [type(r[0]) for r in results] == [cls, cls]
    assert results[1][0].p.fast == 10 and len(results[1][0]) == len(BARS["AAA"])


@pytest.mark.parametrize("options, run, error, match", [
    ({"optreturn": False}, {"maxcpus": 2}, PortingError, "optreturn=False"),
    ({"optreturn": False}, {"executor": "processes"}, PortingError, "optreturn=False"),
    ({}, {"maxcpus": 0}, ValueError, r"maxcpus=0"),
    ({"maxcpus": 1.5}, {}, ValueError, r"maxcpus=1.5"),
    ({}, {"executor": "threads"}, ValueError, "unknown executor 'threads'"),
    ({}, {"executor": 3}, TypeError, "executor must be"),
    ({}, {"exactbars": 1}, PortingError, r"Cerebro.run\(exactbars=1\)"),
])
def test_bad_options_are_refused_before_any_run(options: dict[str, Any], run: dict[str, Any],
                                                error: type, match: str) -> None:
    with pytest.raises(error, match=match):
        cerebro, cls = cerebro_of(shim, **options)
        cerebro.optstrategy(cls, **GRID)
        cerebro.run(**run)


def test_maxcpus_and_executor_choose_where_the_sets_run() -> None:
    cerebro, _ = cerebro_of(shim)
    assert cerebro._where(None, 4) == ("processes" if (os.cpu_count() or 1) > 1 else "serial")
    assert cerebro._where(None, 1) == "serial"  # one set: nothing to spread
    cerebro._set_options({"maxcpus": 3}, "Cerebro.run")
    assert cerebro._where(None, 4) == "processes:3"
    assert cerebro._where("serial", 4) == "serial"
    assert cerebro._where("dask://localhost:8786", 4) == "dask://localhost:8786"
    cerebro._set_options({"maxcpus": 1}, "Cerebro.run")
    assert cerebro._where(None, 4) == "serial"
    assert cerebro._where("processes", 4) == "processes"  # an explicit executor wins
    cerebro._set_options({"maxcpus": None, "optreturn": False}, "Cerebro.run")
    assert cerebro._where(None, 4) == "serial"  # the strategies themselves stay here
