"""Causal indicators, declared once and computed in compiled code before the first bar.

Declare an indicator as a class attribute of a strategy (its name is the
attribute's) or with ``Strategy.add_indicator(name, series)`` in
``on_start``; read it per bar as ``event.indicators[name]``, per timestamp
as ``view.indicator(name)`` / ``view.indicators``, and as a window with
``Strategy.history(asset, name, n)`` or ``history_panel(name, n)``.

The value at a bar uses only the asset's bars up to that bar: each
indicator is a per-asset state machine run over the asset's bars in time
order (see ``docs/indicators.md``).

Examples
--------
>>> from mlbacktest import Strategy
>>> from mlbacktest import indicators as ind
>>> class Cross(Strategy):
...     fast = ind.SMA("close", 10)
...     slow = ind.SMA("close", 30)
...     def on_market_data(self, event, context):
...         if event.indicators["fast"] > event.indicators["slow"]:
...             pass
"""

from mlbacktest.indicators._composite import MACD, WMA, CrossDown, CrossUp, Delay, Stochastic
from mlbacktest.indicators._plan import IndicatorPlan
from mlbacktest.indicators._spec import (
    ATR,
    EMA,
    ROC,
    RSI,
    SMA,
    Bollinger,
    Column,
    CrossOver,
    Custom,
    Highest,
    Lowest,
    Max,
    Min,
    Momentum,
    Series,
    StdDev,
    Sum,
    ZScore,
)

__all__ = [
    "Series", "Column", "SMA", "EMA", "StdDev", "Highest", "Lowest", "Max", "Min", "Sum", "RSI",
    "ATR", "Bollinger", "ROC", "Momentum", "CrossOver", "ZScore", "Custom", "IndicatorPlan",
    "WMA", "MACD", "Stochastic", "CrossUp", "CrossDown", "Delay",
]
