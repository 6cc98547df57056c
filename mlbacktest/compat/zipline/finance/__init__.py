"""zipline's ``zipline.finance`` subset: ``commission`` and ``slippage`` models."""

from mlbacktest.compat.zipline.finance import commission, execution, slippage

__all__ = ["commission", "slippage", "execution"]
