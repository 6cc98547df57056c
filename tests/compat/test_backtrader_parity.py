"""The same backtrader-style source run on real backtrader and on ``mlbacktest.compat.backtrader``.

Each strategy of ``bt_strategies.SOURCES`` is executed twice, with ``bt``
bound to each engine, on the same three assets x 300 daily bars: the fills
(bar, asset, size, price, commission), the cash and value at every bar, the
analyzers' ``get_analysis()`` and what the strategy recorded must agree to
1e-9 relative.
"""

from __future__ import annotations

import datetime
import math
from typing import Any

import backtrader
import numpy as np
import pandas as pd
import pytest

import mlbacktest.compat.backtrader as shim

from .bt_strategies import SOURCES

RTOL = 1e-9
NAMES = ("AAA", "BBB", "CCC")


def make_bars(n: int = 300, seed: int = 0) -> dict[str, pd.DataFrame]:
    rng = np.random.default_rng(seed)
    out = {}
    idx = pd.date_range("2021-01-04", periods=n, freq="B")
    for k, name in enumerate(NAMES):
        close = (50 + 30 * k) * np.exp(np.cumsum(rng.normal(0.0002, 0.018, n)))
        open_ = close * np.exp(rng.normal(0, 0.006, n))
        high = np.maximum(open_, close) * (1 + rng.uniform(0.002, 0.015, n))
        low = np.minimum(open_, close) * (1 - rng.uniform(0.002, 0.015, n))
        out[name] = pd.DataFrame({"open": open_, "high": high, "low": low, "close": close,
                                  "volume": 1e6}, index=idx)
    return out


BARS = make_bars()


def load(bt: Any, source: str) -> dict[str, Any]:
    ns: dict[str, Any] = {"bt": bt, "datetime": datetime}
    exec(compile(source, "<strategy>", "exec"), ns)  # noqa: S102
    return ns


def recorded(bt: Any, cls: type) -> type:
    """``cls`` with its notifications recorded (fills, cash and value per bar)."""

    def notify_order(self: Any, order: Any) -> None:
        if order.status == order.Completed:
            self._fills.append((len(self), order.data._name, order.executed.size,
                                order.executed.price, order.executed.comm))
        elif order.status in (order.Margin, order.Rejected, order.Expired, order.Canceled):
            self._fills.append((len(self), order.data._name, order.getstatusname()))
        cls.notify_order(self, order)

    def notify_cashvalue(self: Any, cash: float, value: float) -> None:
        self._bars.append((len(self), cash, value))

    def start(self: Any) -> None:
        self._fills, self._bars = [], []
        cls.start(self)

    return type(cls.__name__, (cls,), {"notify_order": notify_order,
                                       "notify_cashvalue": notify_cashvalue, "start": start})


def run(bt: Any, name: str, opt: dict[str, Any] | None = None) -> Any:
    ns = load(bt, SOURCES[name])
    cerebro = bt.Cerebro(stdstats=False, maxcpus=1, optreturn=False)
    for asset, df in BARS.items():
        cerebro.adddata(bt.feeds.PandasData(dataname=df), name=asset)
    cerebro.broker.setcash(100_000.0)
    cerebro.broker.setcommission(commission=0.001)
    ns["S"] = recorded(bt, ns["S"])
    if opt is not None:
        cerebro.optstrategy(ns["S"], **opt)
        return cerebro.run(), cerebro
    ns["setup"](cerebro)
    (strategy,) = cerebro.run()
    return strategy, cerebro


def close(a: Any, b: Any, where: str) -> None:
    if isinstance(a, float) or isinstance(b, float):
        if a is None or b is None or (math.isnan(a) and math.isnan(b)):
            assert a is b or (math.isnan(a) and math.isnan(b)), where
            return
        assert math.isclose(a, b, rel_tol=RTOL, abs_tol=1e-9), f"{where}: {a!r} != {b!r}"
    elif isinstance(a, dict):
        assert isinstance(b, dict) and list(a) == list(b), f"{where}: keys {list(a)} {list(b)}"
        for k in a:
            close(a[k], b[k], f"{where}.{k}")
    elif isinstance(a, (list, tuple)):
        assert len(a) == len(b), f"{where}: {len(a)} items != {len(b)}\n{a[:5]}\n{b[:5]}"
        for i, (x, y) in enumerate(zip(a, b, strict=True)):
            close(x, y, f"{where}[{i}]")
    else:
        assert a == b, f"{where}: {a!r} != {b!r}"


def compare(theirs: Any, ours: Any) -> None:
    close(theirs._fills, ours._fills, "fills")
    assert theirs._fills, "no fill: the comparison would be vacuous"
    close(theirs._bars, ours._bars, "cash/value per bar")
    close(getattr(theirs, "result", None), getattr(ours, "result", None), "result")


@pytest.mark.parametrize("name", list(SOURCES))
def test_same_source_same_run(name: str) -> None:
    theirs, tc = run(backtrader, name)
    ours, oc = run(shim, name)
    compare(theirs, ours)
    close(tc.broker.getvalue(), oc.broker.getvalue(), "final value")
    close(tc.broker.getcash(), oc.broker.getcash(), "final cash")


def test_analyzers_agree() -> None:
    theirs, _ = run(backtrader, "analyzers")
    ours, _ = run(shim, "analyzers")
    for name in ("sharpe", "sharpe_d", "dd", "ret", "tr", "trades"):
        a = dict(getattr(theirs.analyzers, name).get_analysis())
        b = getattr(ours.analyzers, name).get_analysis()
        close(_plain(a), _plain(b), name)
    assert ours.analyzers.sharpe_d.get_analysis()["sharperatio"] is not None
    trades = ours.analyzers.trades.get_analysis()
    assert trades["total"]["closed"] > 5 and trades["won"]["total"] and trades["lost"]["total"]
    assert trades["long"]["total"] and trades["short"]["total"]


def _plain(x: Any) -> Any:
    if isinstance(x, dict):
        return {k: _plain(v) for k, v in x.items()}
    return x


def test_optstrategy_runs_every_set() -> None:
    opt = {"fast": (5, 10), "slow": (20, 30)}
    theirs, _ = run(backtrader, "sma_crossover", opt)
    ours, _ = run(shim, "sma_crossover", opt)
    assert len(ours) == 4 and all(len(r) == 1 for r in ours)
    by_params = {(r[0].p.fast, r[0].p.slow): r[0] for r in ours}
    assert len(by_params) == 4 and len(theirs) == 4
    for r in theirs:
        s = r[0]
        compare(s, by_params[(s.p.fast, s.p.slow)])


def test_optstrategy_of_one_set_is_still_a_list_of_lists() -> None:
    theirs, _ = run(backtrader, "sma_crossover", {"fast": 5, "slow": [20]})
    ours, _ = run(shim, "sma_crossover", {"fast": 5, "slow": [20]})
    assert len(theirs) == len(ours) == 1 and len(ours[0]) == 1
    compare(theirs[0][0], ours[0][0])


def test_every_exectype_and_hook_is_exercised() -> None:
    ours, _ = run(shim, "close_orders_and_hooks")
    kinds = [h[0] for h in ours.result]
    assert kinds[0] == "start" and kinds[-1] == "stop"
    assert kinds.count("nextstart") == 1 and kinds.count("prenext") == 24
    stops, _ = run(shim, "stop_limit_entries")
    assert any(f[2] == "Canceled" for f in stops._fills if len(f) == 3)
