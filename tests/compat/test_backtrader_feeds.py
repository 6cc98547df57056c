"""Data feeds that start, end and pause at different times, against real backtrader.

backtrader's strategy runs on the union of its feeds' times: a feed without
a bar at one of them keeps its last bar (``len(data)`` and ``data.close[0]``
do not move), indicators over a feed are computed over its own bars, and the
strategy calls ``prenext`` until every feed has seen as many bars as its
longest indicator needs, then ``nextstart`` once, then ``next``. The same
strategy source runs on both engines over feeds with random first bars,
last bars and gaps: the sequence of hook calls (with ``len`` of the
strategy and of every feed), every fill, the cash and value at every bar
and the analyzers agree to 1e-9 relative.
"""

from __future__ import annotations

import datetime
from typing import Any

import backtrader
import numpy as np
import pandas as pd
import pytest

import mlbacktest.compat.backtrader as shim
from mlbacktest.errors import PortingError

from .test_backtrader_parity import _plain, close

SOURCE = '''
class S(bt.Strategy):
    params = (("periods", (3, 5, 4)), ("stake", 7))

    def __init__(self):
        self.log = []
        self.sma = [bt.ind.SMA(d.close, period=p) for d, p in zip(self.datas, self.p.periods)]
        self.cross = bt.ind.CrossOver(self.data0.close, self.sma[0])

    def _rec(self, kind):
        self.log.append((kind, len(self), tuple(len(d) for d in self.datas),
                         self.datetime.date(0),
                         tuple(d.datetime.date(0) if len(d) else None for d in self.datas),
                         tuple(d.close[0] if len(d) else None for d in self.datas)))

    def prenext(self):
        self._rec("prenext")

    def nextstart(self):
        self._rec("nextstart")
        self.next()

    def next(self):
        self._rec("next")
        n = len(self)
        for i, (d, sma) in enumerate(zip(self.datas, self.sma)):
            pos = self.getposition(d).size
            if d.close[0] > sma[0] and pos <= 0 and (n + i) % 3 == 0:
                self.buy(data=d, size=self.p.stake * (i + 1))
            elif d.close[0] < sma[0] and pos > 0 and (n + i) % 2 == 0:
                self.close(data=d)
        if self.cross[0] < 0 and n % 5 == 0:
            self.order_target_percent(data=self.datas[-1], target=0.2)

    def notify_order(self, order):
        if order.status == order.Completed:
            self.log.append(("fill", len(self), order.data._name, order.executed.size,
                             order.executed.price, order.executed.comm,
                             bt.num2date(order.executed.dt).date()))
        elif order.status not in (order.Submitted, order.Accepted):
            self.log.append(("order", len(self), order.data._name, order.getstatusname()))

    def notify_trade(self, trade):
        self.log.append(("trade", len(self), trade.data._name, trade.isclosed, trade.pnl))

    def notify_cashvalue(self, cash, value):
        self.log.append(("cv", len(self), cash, value))

    def stop(self):
        self._rec("stop")
'''

ANALYZERS = {"sharpe": "SharpeRatio", "ret": "Returns", "dd": "DrawDown",
             "trades": "TradeAnalyzer"}


def bars(idx: pd.DatetimeIndex, rng: np.random.Generator, base: float) -> pd.DataFrame:
    n = len(idx)
    c = base * np.exp(np.cumsum(rng.normal(0.0, 0.02, n)))
    o = c * np.exp(rng.normal(0, 0.006, n))
    return pd.DataFrame({"open": o, "high": np.maximum(o, c) * 1.01,
                         "low": np.minimum(o, c) * 0.99, "close": c, "volume": 1e6},
                        index=idx)


def feeds(seed: int, n: int = 120) -> list[pd.DataFrame]:
    """Three feeds: random first and last bars and random missing bars (feed 0 included)."""
    rng = np.random.default_rng(seed)
    idx = pd.date_range("2021-01-04", periods=n, freq="B")
    out = []
    for k in range(3):
        start = int(rng.integers(0, 25))
        end = n - int(rng.integers(0, 20))
        keep = rng.random(end - start) > 0.08
        out.append(bars(idx[start:end][keep], rng, 40.0 + 30 * k))
    return out


def loose_feeds(seed: int) -> list[pd.DataFrame]:
    """Two or three feeds anywhere in the calendar (disjoint ones too), up to 30 % missing.

    Each feed has at least its first 10 bars, so every indicator of the
    strategy warms up (backtrader fails on a feed shorter than an indicator).
    """
    rng = np.random.default_rng(seed)
    n = int(rng.integers(20, 90))
    idx = pd.date_range("2021-01-04", periods=n, freq="B")
    out = []
    for k in range(int(rng.integers(2, 4))):
        a = int(rng.integers(0, n - 14))
        b = int(rng.integers(a + 14, n + 1))
        keep = rng.random(b - a) > rng.uniform(0, 0.3)
        keep[:10] = True
        out.append(bars(idx[a:b][keep], rng, 40.0 + 20 * k))
    return out


def run(bt: Any, frames: list[pd.DataFrame], source: str = SOURCE,
        **params: Any) -> tuple[Any, Any]:
    ns: dict[str, Any] = {"bt": bt, "datetime": datetime}
    exec(compile(source, "<strategy>", "exec"), ns)  # noqa: S102
    cerebro = bt.Cerebro(stdstats=False)
    for k, df in enumerate(frames):
        cerebro.adddata(bt.feeds.PandasData(dataname=df), name=f"D{k}")
    cerebro.broker.setcash(50_000.0)
    cerebro.broker.setcommission(commission=0.001)
    for name, cls in ANALYZERS.items():
        cerebro.addanalyzer(getattr(bt.analyzers, cls), _name=name)
    cerebro.addstrategy(ns["S"], **params)
    (strategy,) = cerebro.run()
    return strategy, cerebro


def plain_analysis(analyzer: Any) -> Any:
    return _plain(dict(analyzer.get_analysis()))


def compare(frames: list[pd.DataFrame], **params: Any) -> list[Any]:
    theirs, tc = run(backtrader, frames, **params)
    ours, oc = run(shim, frames, **params)
    close(theirs.log, ours.log, "log")
    for name in ANALYZERS:
        close(plain_analysis(getattr(theirs.analyzers, name)),
              plain_analysis(getattr(ours.analyzers, name)), name)
    close(tc.broker.getvalue(), oc.broker.getvalue(), "final value")
    close(tc.broker.getcash(), oc.broker.getcash(), "final cash")
    return ours.log  # type: ignore[no-any-return]


def kinds(log: list[Any]) -> list[str]:
    return [e[0] for e in log if e[0] in ("prenext", "nextstart", "next")]


def test_a_late_feed_with_gaps_that_ends_early() -> None:
    rng = np.random.default_rng(7)
    idx = pd.date_range("2021-01-04", periods=60, freq="B")
    late = idx[10:50].delete([8, 9, 20])  # starts on bar 11, two gaps, ends 10 bars early
    frames = [bars(idx, rng, 50.0), bars(late, rng, 80.0), bars(idx, rng, 30.0)]
    log = compare(frames)
    hooks = kinds(log)
    # prenext until the late feed has its 5 bars for SMA(5), nextstart once, then next
    assert hooks[:14] == ["prenext"] * 14 and hooks[14] == "nextstart"
    assert hooks.count("nextstart") == 1 and hooks[15:] == ["next"] * (len(hooks) - 15)
    bars_of = [e for e in log if e[0] in ("next", "prenext")]  # nextstart calls next
    assert [e[2][1] for e in bars_of[16:21]] == [7, 8, 8, 8, 9]  # the gap: the feed holds
    assert bars_of[18][4][1] == bars_of[17][4][1] != bars_of[18][3]  # at its last time
    assert bars_of[-1][2] == (60, 37, 60) and bars_of[-1][5][1] == frames[1]["close"].iloc[-1]
    assert sum(1 for e in log if e[0] == "fill" and e[2] == "D1") >= 2


@pytest.mark.parametrize("seed", [0, 1, 2, 3, 4])
def test_random_first_bars_last_bars_and_gaps(seed: int) -> None:
    log = compare(feeds(seed))
    assert kinds(log).count("nextstart") == 1
    assert sum(1 for e in log if e[0] == "fill") >= 5  # the comparison is not vacuous


@pytest.mark.parametrize("seed", [s for s in range(100, 113) if s != 107])  # 107 never trades
def test_feeds_anywhere_in_the_calendar(seed: int) -> None:
    frames = loose_feeds(seed)
    rng = np.random.default_rng(seed)
    periods = tuple(int(x) for x in rng.integers(1, 8, size=len(frames)))
    log = compare(frames, periods=periods + (3,) * (3 - len(frames)))
    assert kinds(log).count("nextstart") == 1 and any(e[0] == "fill" for e in log)


def test_the_first_feed_starts_last() -> None:
    frames = feeds(11)
    idx = frames[0].index
    frames[0] = frames[0].loc[idx[30]:]
    log = compare(frames, periods=(2, 6, 3))
    first = next(e for e in log if e[0] == "prenext")
    assert first[2][0] == 0 and first[3] == min(f.index[0] for f in frames).date()


LIMIT_SOURCE = '''
class S(bt.Strategy):
    params = (("factor", 1.0), ("exectype", "Limit"))

    def __init__(self):
        self.log = []

    def next(self):
        if len(self) == 5:  # the bar before data1's gap
            self.buy(data=self.data1, size=5, exectype=getattr(bt.Order, self.p.exectype),
                     price=self.data1.close[0] * self.p.factor)

    def notify_order(self, order):
        if order.status == order.Completed:
            self.log.append((len(self), order.executed.price,
                             bt.num2date(order.executed.dt).date()))
'''


def gapped(seed: int = 3) -> list[pd.DataFrame]:
    rng = np.random.default_rng(seed)
    idx = pd.date_range("2021-01-04", periods=20, freq="B")
    return [bars(idx, rng, 50.0), bars(idx.delete([5]), rng, 80.0)]


@pytest.mark.parametrize("exectype, factor", [("Limit", 0.5), ("Stop", 1.5), ("Limit", 0.984)])
def test_an_order_its_feeds_missing_bar_cannot_fill_runs_as_in_backtrader(
        exectype: str, factor: float) -> None:
    frames = gapped()
    theirs, _ = run(backtrader, frames, source=LIMIT_SOURCE, factor=factor, exectype=exectype)
    ours, _ = run(shim, frames, source=LIMIT_SOURCE, factor=factor, exectype=exectype)
    close(theirs.log, ours.log, "fills")
    if factor == 0.984:  # below the 5th bar's low: fills after the gap, on data1's next bars
        assert ours.log and ours.log[0][0] > 6


@pytest.mark.parametrize("exectype, factor, why, bar", [
    ("Limit", 1.0, "its limit price is within that bar's range", 6),
    ("Stop", 1.0, "its stop price is within that bar's range", 6),
    ("Close", 1.0, "a Close order", 7),
])
def test_an_order_backtrader_would_fill_on_a_missing_bar_is_refused(
        exectype: str, factor: float, why: str, bar: int) -> None:
    frames = gapped()
    theirs, _ = run(backtrader, frames, source=LIMIT_SOURCE, factor=factor, exectype=exectype)
    # backtrader fills on data1's 5th bar again: at the bar data1 does not have (the 6th),
    # or for a Close order at data1's next bar but at that 5th bar's close
    assert theirs.log and theirs.log[0][0] == bar
    assert theirs.log[0][2] == frames[1].index[4].date()
    with pytest.raises(PortingError, match=rf"{exectype} order \(ref 1\) on data feed 'D1' is "
                                           r"pending at 2021-01-11 00:00:00, where that feed "
                                           rf"has no bar .* and {why}"):
        run(shim, frames, source=LIMIT_SOURCE, factor=factor, exectype=exectype)


SPREAD_SOURCE = '''
class S(bt.Strategy):
    def __init__(self):
        self.log = []
        self.spread = self.data0.close - self.data1.close
        self.ratio = self.data0 / self.data1.close
        self.rich = self.data0.close > self.data1.close * 0.7 + 2.0
        self.both = -(self.spread * 2.0) / (self.data1.high - self.data1.low)
        self.sma = bt.ind.SMA(self.data0.close, period=4)

    def prenext(self):
        self.log.append(("prenext", len(self), self.spread[0]))

    def next(self):
        self.log.append(("next", len(self), self.spread[0], self.spread[-1], self.ratio[0],
                         self.rich[0], self.both[0]))
        if self.rich[0] and self.spread[0] > self.spread[-1] and not self.getposition(self.data1):
            self.buy(data=self.data1, size=10)
        elif not self.rich[0] and self.getposition(self.data1):
            self.close(data=self.data1)

    def notify_order(self, order):
        if order.status == order.Completed:
            self.log.append(("fill", len(self), order.data._name, order.executed.size,
                             order.executed.price))
'''


def test_operations_between_lines_of_two_feeds_at_the_same_times() -> None:
    rng = np.random.default_rng(5)
    idx = pd.date_range("2021-01-04", periods=150, freq="B")
    frames = [bars(idx, rng, 60.0), bars(idx, rng, 55.0)]
    theirs, _ = run(backtrader, frames, source=SPREAD_SOURCE)
    ours, _ = run(shim, frames, source=SPREAD_SOURCE)
    close(theirs.log, ours.log, "log")
    nexts = [e for e in ours.log if e[0] == "next"]
    assert {e[5] for e in nexts} == {0.0, 1.0}  # the comparison takes both values
    assert sum(1 for e in ours.log if e[0] == "fill") >= 4
    d0, d1 = frames[0]["close"].to_numpy(), frames[1]["close"].to_numpy()
    assert nexts[-1][2] == d0[-1] - d1[-1] and nexts[-1][4] == d0[-1] / d1[-1]


def test_operations_between_feeds_with_bars_at_different_times_are_refused() -> None:
    rng = np.random.default_rng(5)
    idx = pd.date_range("2021-01-04", periods=40, freq="B")
    frames = [bars(idx, rng, 60.0), bars(idx[3:], rng, 55.0)]
    # backtrader pairs the lines by position: a shorter second feed runs out of bars
    with pytest.raises(IndexError):
        run(backtrader, frames, source=SPREAD_SOURCE)
    with pytest.raises(PortingError, match=r"between lines of the data feeds 'D0' and 'D1' .* "
                                           "needs both feeds to have their bars at the same "
                                           "times"):
        run(shim, frames, source=SPREAD_SOURCE)


def test_an_indicator_over_two_feeds_is_refused() -> None:
    source = SPREAD_SOURCE.replace("bt.ind.SMA(self.data0.close, period=4)",
                                   "bt.ind.SMA(self.data0.close - self.data1.close, period=4)")
    idx = pd.date_range("2021-01-04", periods=40, freq="B")
    rng = np.random.default_rng(5)
    with pytest.raises(PortingError, match=r"an indicator over an operation between lines of "
                                           "two data feeds"):
        run(shim, [bars(idx, rng, 60.0), bars(idx, rng, 55.0)], source=source)


def test_a_crossover_of_two_feeds_is_refused() -> None:
    source = SPREAD_SOURCE.replace("bt.ind.SMA(self.data0.close, period=4)",
                                   "bt.ind.CrossOver(self.data0.close, self.data1.close)")
    idx = pd.date_range("2021-01-04", periods=40, freq="B")
    rng = np.random.default_rng(5)
    with pytest.raises(PortingError, match=r"bt.ind.CrossOver of lines of two data feeds is "
                                           r"not supported: .*self\.data0\.close > "
                                           r"self\.data1\.close"):
        run(shim, [bars(idx, rng, 60.0), bars(idx, rng, 55.0)], source=source)
