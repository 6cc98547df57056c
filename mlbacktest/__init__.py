"""mlbacktest: an event-driven backtester for machine-learning research.

The clock, the broker's matching loop and the accounting run in compiled
Cython over numpy columns; strategies are plain Python classes.
"""

from mlbacktest import (
    _build_check,  # noqa: F401  (readable error when not built)
    indicators,
)
from mlbacktest._events import (
    FillEvent,
    IndicatorRow,
    MarketEvent,
    OrderEvent,
    SignalRow,
    SliceView,
)
from mlbacktest._version import __version__
from mlbacktest.config import BacktestConfig, PositionRules
from mlbacktest.data import ContextFrame, DataFeed, ParquetDataFeed, PolarsDataFeed
from mlbacktest.data.source import SignalEvent, SignalSource
from mlbacktest.engine import BacktestEngine, run_backtest
from mlbacktest.errors import (
    ConfigError,
    DataError,
    IndicatorError,
    LookAheadWarning,
    NotBuiltError,
    OrderError,
    PortingError,
    RejectedOrdersWarning,
    ResultFileError,
)
from mlbacktest.models import (
    AlmgrenChrissImpact,
    ColumnSource,
    CommissionModel,
    FixedAmountSlippage,
    FixedBpsSlippage,
    FixedCommission,
    HalfSpreadSlippage,
    LinearImpact,
    NoCommission,
    NoSlippage,
    PercentageCommission,
    PerShareCommission,
    SlippageModel,
    SquareRootImpact,
    TieredCommission,
    VolumeShareImpact,
)
from mlbacktest.results import BacktestResult
from mlbacktest.strategy import Bracket, Strategy

__all__ = [
    "BacktestEngine",
    "BacktestConfig",
    "PositionRules",
    "BacktestResult",
    "Strategy",
    "Bracket",
    "DataFeed",
    "PolarsDataFeed",
    "ParquetDataFeed",
    "ContextFrame",
    "SignalSource",
    "SignalEvent",
    "run_backtest",
    "MarketEvent",
    "FillEvent",
    "OrderEvent",
    "SliceView",
    "SignalRow",
    "IndicatorRow",
    "indicators",
    "CommissionModel",
    "NoCommission",
    "PercentageCommission",
    "PerShareCommission",
    "FixedCommission",
    "TieredCommission",
    "SlippageModel",
    "NoSlippage",
    "FixedBpsSlippage",
    "HalfSpreadSlippage",
    "FixedAmountSlippage",
    "LinearImpact",
    "SquareRootImpact",
    "AlmgrenChrissImpact",
    "VolumeShareImpact",
    "ColumnSource",
    "DataError",
    "OrderError",
    "ConfigError",
    "IndicatorError",
    "ResultFileError",
    "NotBuiltError",
    "PortingError",
    "LookAheadWarning",
    "RejectedOrdersWarning",
    "__version__",
]
