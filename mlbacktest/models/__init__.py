"""Cost models: commissions and slippage.

The built-in models are parameter sets that the compiled broker evaluates
itself, so they cost nothing extra per fill.
"""

from mlbacktest.models.commission import (
    CommissionModel,
    FixedCommission,
    NoCommission,
    PercentageCommission,
    PerShareCommission,
)
from mlbacktest.models.slippage import FixedBpsSlippage, NoSlippage, SlippageModel

__all__ = [
    "CommissionModel",
    "NoCommission",
    "PercentageCommission",
    "PerShareCommission",
    "FixedCommission",
    "SlippageModel",
    "NoSlippage",
    "FixedBpsSlippage",
]
