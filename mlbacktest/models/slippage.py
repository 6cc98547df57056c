"""Slippage and market-impact models.

Every model is a :class:`SlippageModel`; the built-ins are compiled
(``mlbacktest._costs``) and a Python subclass may override
:meth:`SlippageModel.fill_price` (and ``record_fill`` / ``reset`` for state).
The base formula moves the price against the order: a buy fills at
``price * (1 + bps / 1e4)``, a sell at ``price * (1 - bps / 1e4)``; the broker
then caps a limit order's fill at its limit.

See docs/costs.md for every model.
"""

from __future__ import annotations

from mlbacktest.models._compiled import _costs

ColumnSource = _costs.ColumnSource
SlippageModel = _costs.SlippageModel
FixedBpsSlippage = _costs.FixedBpsSlippage
HalfSpreadSlippage = _costs.HalfSpreadSlippage
FixedAmountSlippage = _costs.FixedAmountSlippage
LinearImpact = _costs.LinearImpact
SquareRootImpact = _costs.SquareRootImpact
AlmgrenChrissImpact = _costs.AlmgrenChrissImpact

__all__ = [
    "ColumnSource",
    "SlippageModel",
    "NoSlippage",
    "FixedBpsSlippage",
    "HalfSpreadSlippage",
    "FixedAmountSlippage",
    "LinearImpact",
    "SquareRootImpact",
    "AlmgrenChrissImpact",
]


def NoSlippage() -> SlippageModel:  # noqa: N802 - reads like a class at the call site
    """No slippage (a :class:`SlippageModel` with ``bps=0``)."""
    return SlippageModel()
