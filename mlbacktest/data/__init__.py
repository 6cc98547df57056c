"""Data input: validated bar feeds and market-wide context series.

Build a :class:`PolarsDataFeed` from an in-memory frame or a
:class:`ParquetDataFeed` from files; either validates the data eagerly and
exposes it as a read-only :class:`BarPanel`. Predictions come as signal
columns of the price frame or as a separate signal frame (``signals=``),
aligned point in time (see :mod:`mlbacktest.data.signals`). Market-wide
series go in a :class:`ContextFrame`, joined to the engine clock as of
(backward).
"""

from mlbacktest.data.context import ContextFrame
from mlbacktest.data.feeds import DataFeed, ParquetDataFeed, PolarsDataFeed
from mlbacktest.data.panel import BarPanel
from mlbacktest.data.signals import SignalTiming
from mlbacktest.data.validate import check_same_timezone

__all__ = [
    "BarPanel",
    "ContextFrame",
    "DataFeed",
    "ParquetDataFeed",
    "PolarsDataFeed",
    "SignalTiming",
    "check_same_timezone",
]
