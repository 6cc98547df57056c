"""backtrader's API on mlbacktest: ``import mlbacktest.compat.backtrader as bt``.

A porting assistant: a strategy file written for backtrader runs when its
import line changes, for the subset its strategies use (docs/porting/backtrader.md).
Runs use ``BacktestConfig.preset("backtrader")``; a call outside the subset
raises :class:`~mlbacktest.errors.PortingError` naming the call and the
mlbacktest way to do it.
"""

from __future__ import annotations

from typing import Any

from mlbacktest.errors import PortingError

from . import analyzers, feeds, indicators, sizers
from ._core import (
    Cerebro,
    CommInfo,
    DataFeed,
    Order,
    OrderData,
    Position,
    Sizer,
    Strategy,
    Trade,
)
from ._lines import date2num, num2date
from .analyzers import Analyzer, TimeFrame

ind = indicators

__all__ = [
    "Cerebro", "Strategy", "Order", "OrderData", "Position", "Trade", "Sizer", "Analyzer",
    "CommInfo", "DataFeed", "TimeFrame", "PortingError", "feeds", "indicators", "ind",
    "sizers", "analyzers", "date2num", "num2date",
]

_REFUSED = {
    "Indicator": "custom indicator classes: natively, mlbacktest.indicators.Custom(fn, ...)",
    "SignalStrategy": "signal strategies: write next()",
    "Observer": "observers: BacktestResult.equity / fills hold the values",
    "CommInfoBase": "custom commission schemes: BacktestConfig(commission=CommissionModel(...))",
    "CommissionInfo": "custom commission schemes: BacktestConfig(commission=CommissionModel())",
    "Store": "live stores: mlbacktest runs historical data",
    "brokers": "other brokers: the broker is mlbacktest's engine",
    "observers": "observers: BacktestResult.equity / fills hold the values",
    "Timer": "timers: Strategy.schedule(...)",
    "talib": "TA-Lib indicators: mlbacktest.indicators",
    "resamplerfilter": "resampling: resample the frame before adding it",
}


def __getattr__(name: str) -> Any:
    if name.startswith("__"):
        raise AttributeError(name)
    if name in _REFUSED:
        raise PortingError(f"bt.{name} is not supported by mlbacktest.compat.backtrader; "
                           f"{_REFUSED[name]} (docs/porting/backtrader.md)")
    raise PortingError(f"bt.{name} is not supported by mlbacktest.compat.backtrader "
                       "(docs/porting/backtrader.md lists the supported calls)")
