"""Pieces of mlbacktest.compat.backtrader against backtrader: feeds, day numbers, data access,
cancels, and the causality of lines (a value at a bar does not change when later bars do)."""

from __future__ import annotations

import datetime
from pathlib import Path
from typing import Any

import backtrader
import polars as pl
import pytest

import mlbacktest.compat.backtrader as shim

from .test_backtrader_parity import BARS, close, load, recorded, run

ACCESS = '''
class S(bt.Strategy):
    def __init__(self):
        self.sma = bt.ind.SMA(self.data1, period=5)
        self.rows = []
        self.order = None

    def next(self):
        b = self.getdatabyname("BBB")
        self.rows.append((len(self), len(self.data0), self.data0.datetime[0],
                          str(self.data0.datetime.date(0)), str(bt.num2date(self.datetime[0])),
                          self.data1.close[0], b.close[-1], self.data.lines.close[0],
                          self.data1[0], self.sma[0], self.sma[-2],
                          self.broker.getvalue(datas=[b]), self.getposition(b).size,
                          self.getposition(b).price))
        if len(self) % 20 == 10:
            self.order = self.buy(data=b, size=7, exectype=bt.Order.Limit,
                                  price=b.close[0] * 0.97)
        elif len(self) % 20 == 13 and self.order is not None and self.order.alive():
            self.cancel(self.order)
        elif len(self) % 20 == 15:
            self.buy(data=b, size=3)

    def stop(self):
        self.result = self.rows

def setup(cerebro):
    cerebro.addstrategy(S)
'''


def test_data_access_day_numbers_and_cancels_agree() -> None:
    from . import bt_strategies

    bt_strategies.SOURCES["_access"] = ACCESS
    try:
        theirs, _ = run(backtrader, "_access")
        ours, _ = run(shim, "_access")
    finally:
        del bt_strategies.SOURCES["_access"]
    close(theirs.result, ours.result, "rows")
    close(theirs._fills, ours._fills, "fills")
    assert any(f[2] == "Canceled" for f in ours._fills if len(f) == 3)


@pytest.mark.parametrize("when", [datetime.datetime(2021, 3, 4, 15, 30, 12, 500),
                                  datetime.datetime(1999, 12, 31), datetime.date(2020, 2, 29)])
def test_day_numbers_are_backtraders(when: Any) -> None:
    assert shim.date2num(when) == backtrader.date2num(when)
    x = backtrader.date2num(when)
    assert shim.num2date(x) == backtrader.num2date(x)


def _csv(tmp_path: Path, header: str) -> Path:
    df = BARS["AAA"].iloc[:120]
    path = tmp_path / "aaa.csv"
    rows = [header]
    for t, r in df.iterrows():
        vals = ",".join(repr(float(r[c])) for c in ("open", "high", "low", "close", "volume"))
        rows.append(f"{t:%Y-%m-%d},{vals},0")
    path.write_text("\n".join(rows) + "\n")
    return path


def _run_feed(bt: Any, feed: Any) -> Any:
    ns = load(bt, '''
class S(bt.Strategy):
    def __init__(self):
        self.rsi = bt.ind.RSI(period=10)

    def next(self):
        if self.rsi[0] < 45 and not self.position:
            self.buy(size=10)
        elif self.rsi[0] > 55 and self.position:
            self.close()
''')
    cerebro = bt.Cerebro(stdstats=False)
    cerebro.adddata(feed, name="AAA")
    cerebro.broker.setcash(10_000.0)
    cerebro.addstrategy(recorded(bt, ns["S"]))
    (s,) = cerebro.run()
    return s


@pytest.mark.parametrize("kind", ["GenericCSVData", "BacktraderCSVData", "PolarsData"])
def test_feeds_read_the_same_bars(tmp_path: Path, kind: str) -> None:
    path = _csv(tmp_path, "Date,Open,High,Low,Close,Volume,OpenInterest")
    if kind == "GenericCSVData":
        kw = dict(dataname=str(path), dtformat="%Y-%m-%d", datetime=0, open=1, high=2, low=3,
                  close=4, volume=5, openinterest=6)
        theirs = _run_feed(backtrader, backtrader.feeds.GenericCSVData(**kw))
        ours = _run_feed(shim, shim.feeds.GenericCSVData(**kw))
    elif kind == "BacktraderCSVData":
        theirs = _run_feed(backtrader, backtrader.feeds.BacktraderCSVData(dataname=str(path)))
        ours = _run_feed(shim, shim.feeds.BacktraderCSVData(dataname=str(path)))
    else:
        df = BARS["AAA"].iloc[:120]
        theirs = _run_feed(backtrader, backtrader.feeds.PandasData(dataname=df))
        frame = pl.from_pandas(df.rename_axis("datetime").reset_index())
        ours = _run_feed(shim, shim.feeds.PolarsData(dataname=frame))
    assert theirs._fills
    close(theirs._fills, ours._fills, "fills")
    close(theirs._bars, ours._bars, "cash/value per bar")


def test_lines_are_causal_under_truncation() -> None:
    """Values seen at bar k are the same whether the data ends at bar 300 or at bar k + 1."""
    import tests.compat.test_backtrader_parity as parity

    full, _ = run(shim, "line_arithmetic")
    saved = dict(parity.BARS)
    try:
        for k in (60, 150, 231):
            for name in saved:
                parity.BARS[name] = saved[name].iloc[:k]
            cut, _ = run(shim, "line_arithmetic")
            n = len(cut.result)
            assert n > 0
            close(full.result[:n], cut.result, f"first {n} bars of the run cut at {k}")
    finally:
        parity.BARS.update(saved)
