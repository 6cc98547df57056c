"""Cost models: commissions, slippage and market impact.

The built-in models are compiled ``cdef`` classes (``mlbacktest._costs``):
the broker calls them as C functions, with no Python call per fill. Subclass
:class:`CommissionModel` or :class:`SlippageModel` in Python and override
``compute`` / ``fill_price`` to plug in your own; the broker then calls your
method. docs/costs.md states every formula, its units and defaults.
"""

from mlbacktest.models.commission import (
    CommissionModel,
    FixedCommission,
    NoCommission,
    PercentageCommission,
    PerShareCommission,
    TieredCommission,
)
from mlbacktest.models.config import (
    COMMISSION_MODELS,
    SLIPPAGE_MODELS,
    commission_from_config,
    model_from_config,
    model_to_config,
    slippage_from_config,
)
from mlbacktest.models.slippage import (
    AlmgrenChrissImpact,
    ColumnSource,
    FixedAmountSlippage,
    FixedBpsSlippage,
    HalfSpreadSlippage,
    LinearImpact,
    NoSlippage,
    SlippageModel,
    SquareRootImpact,
    VolumeShareImpact,
)

__all__ = [
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
    "COMMISSION_MODELS",
    "SLIPPAGE_MODELS",
    "commission_from_config",
    "slippage_from_config",
    "model_from_config",
    "model_to_config",
]
