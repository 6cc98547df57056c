"""Commission models.

Every model is a :class:`CommissionModel`; the built-ins are compiled
(``mlbacktest._costs``) and a Python subclass may override
:meth:`CommissionModel.compute` (and ``record_fill`` / ``reset`` for state).
The linear built-ins share one formula, for a fill of ``q`` at price ``p``::

    commission = min(max(rate*|q|*p + per_share*|q| + fixed, minimum),
                     maximum, max_fraction*|q|*p)

See docs/costs.md for every model.
"""

from __future__ import annotations

from mlbacktest.models._compiled import _costs

CommissionModel = _costs.CommissionModel
PercentageCommission = _costs.PercentageCommission
PerShareCommission = _costs.PerShareCommission
FixedCommission = _costs.FixedCommission
TieredCommission = _costs.TieredCommission

__all__ = [
    "CommissionModel",
    "NoCommission",
    "PercentageCommission",
    "PerShareCommission",
    "FixedCommission",
    "TieredCommission",
]


def NoCommission() -> CommissionModel:  # noqa: N802 - reads like a class at the call site
    """No commission (a :class:`CommissionModel` with every parameter 0)."""
    return CommissionModel()
