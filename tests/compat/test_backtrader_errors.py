"""Every call outside the backtrader subset raises PortingError naming the call.

The refused calls of ``mlbacktest.compat.backtrader`` in one place: each
raises :class:`~mlbacktest.errors.PortingError` (a ``NotImplementedError``)
at the call, naming the backtrader API.
"""

from __future__ import annotations

import datetime
import re
from typing import Any

import polars as pl
import pytest

import mlbacktest.compat.backtrader as bt
from mlbacktest.errors import PortingError

from .test_backtrader_parity import BARS


def cerebro() -> Any:
    c = bt.Cerebro()
    c.adddata(bt.feeds.PandasData(dataname=BARS["AAA"]), name="AAA")
    return c


REFUSED_SETUP = {
    "Cerebro(cheat_on_open=True)": lambda: bt.Cerebro(cheat_on_open=True),
    "Cerebro.resampledata": lambda: cerebro().resampledata(None),
    "Cerebro.replaydata": lambda: cerebro().replaydata(None),
    "Cerebro.addobserver": lambda: cerebro().addobserver(None),
    "Cerebro.plot": lambda: cerebro().plot(),
    "Cerebro.addwriter": lambda: cerebro().addwriter(None),
    "broker.setcommission(margin": lambda: cerebro().broker.setcommission(0.0, margin=2000),
    "broker.setcommission(commtype": lambda: cerebro().broker.setcommission(1.0, commtype=1),
    "broker.set_coc": lambda: cerebro().broker.set_coc(True),
    "broker.set_checksubmit": lambda: cerebro().broker.set_checksubmit(False),
    "broker.set_slippage_perc": lambda: cerebro().broker.set_slippage_perc(0.001),
    "broker.addcommissioninfo": lambda: cerebro().broker.addcommissioninfo(None),
    "bt.Indicator": lambda: bt.Indicator,
    "bt.SignalStrategy": lambda: bt.SignalStrategy,
    "bt.ind.KAMA": lambda: bt.ind.KAMA,
    "bt.analyzers.SQN": lambda: bt.analyzers.SQN,
    "bt.feeds.YahooFinanceData": lambda: bt.feeds.YahooFinanceData,
}


@pytest.mark.parametrize("api", list(REFUSED_SETUP))
def test_refused_setup_call(api: str) -> None:
    with pytest.raises(PortingError, match=re.escape(api)):
        REFUSED_SETUP[api]()
    assert issubclass(PortingError, NotImplementedError)


REFUSED_IN_NEXT = {
    "parent=": lambda s: s.buy(size=1, parent=s.buy(size=1)),
    "tradeid=": lambda s: s.buy(size=1, tradeid=2),
    "exectype='StopTrailLimit'": lambda s: s.buy(size=1, exectype=bt.Order.StopTrailLimit,
                                                 price=1.0),
    "valid=Order.DAY": lambda s: s.buy(size=1, exectype=bt.Order.Limit, price=1.0,
                                       valid=bt.Order.DAY),
    "buy_bracket/sell_bracket with plimit": lambda s: s.buy_bracket(
        size=1, plimit=1.0, stopprice=1.0, limitprice=2.0),
    "line[1] reads 1 bar(s) ahead": lambda s: s.data.close[1],
    "Strategy.add_timer": lambda s: s.add_timer(),
    "buy/sell(oco=..., valid=...)": lambda s: s.buy(
        size=1, exectype=bt.Order.Limit, price=1.0, valid=datetime.date(2030, 1, 1),
        oco=s.buy(size=1, exectype=bt.Order.Limit, price=1.0)),
}


@pytest.mark.parametrize("api", list(REFUSED_IN_NEXT))
def test_refused_call_in_next(api: str) -> None:
    seen: list[BaseException] = []

    class S(bt.Strategy):
        def next(self) -> None:
            if not seen:
                try:
                    REFUSED_IN_NEXT[api](self)
                except PortingError as exc:
                    seen.append(exc)

    c = cerebro()
    c.addstrategy(S)
    c.run()
    assert seen, f"{api} did not raise"
    assert api in str(seen[0])


def test_an_indicator_over_lines_of_two_data_feeds_refused() -> None:
    class S(bt.Strategy):
        def __init__(self) -> None:
            self.spread = bt.ind.EMA(self.data0.close - self.data1.close, period=5)

    c = cerebro()
    c.adddata(bt.feeds.PandasData(dataname=BARS["BBB"]), name="BBB")
    c.addstrategy(S)
    with pytest.raises(PortingError, match="an indicator over an operation between lines of "
                                           "two data feeds"):
        c.run()


def test_unknown_indicator_parameter_refused() -> None:
    class S(bt.Strategy):
        def __init__(self) -> None:
            self.sma = bt.ind.SMA(period=5, plotname="x")

    c = cerebro()
    c.addstrategy(S)
    with pytest.raises(PortingError, match=r"bt\.ind\.SMA parameter\(s\) \['plotname'\]"):
        c.run()


def test_second_strategy_refused() -> None:
    c = cerebro()
    c.addstrategy(bt.Strategy)
    with pytest.raises(PortingError, match="several strategies"):
        c.addstrategy(bt.Strategy)


def test_feed_without_a_column_is_refused() -> None:
    df = BARS["AAA"].drop(columns=["high"])
    with pytest.raises(PortingError, match="PandasData: no 'high' column"):
        bt.feeds.PandasData(dataname=df)
    with pytest.raises(PortingError, match="PolarsData: no time column 'datetime'"):
        bt.feeds.PolarsData(dataname=pl.DataFrame({"t": [1]}))


def test_pandas_data_with_a_time_column() -> None:
    df = BARS["AAA"].rename_axis("date").reset_index()
    c = bt.Cerebro()
    c.adddata(bt.feeds.PandasData(dataname=df, datetime="date"), name="AAA")
    c.addstrategy(bt.Strategy)
    (s,) = c.run()
    assert str(s.data.datetime.date(0)) == str(df["date"].iloc[-1].date())
    with pytest.raises(PortingError, match=r"PandasData parameter\(s\) \['sessionstart'\]"):
        bt.feeds.PandasData(dataname=BARS["AAA"], sessionstart=None)
