"""zipline's per-order commissions as an mlbacktest commission model."""

from __future__ import annotations

import math

from mlbacktest.errors import ConfigError
from mlbacktest.models import CommissionModel

__all__ = ["PerOrderCommission"]


def _non_negative(value: float, name: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not (
            math.isfinite(value) and value >= 0):
        raise ConfigError(f"{name} must be a finite number >= 0, got {value!r}")
    return float(value)


class PerOrderCommission(CommissionModel):
    """zipline's ``PerShare`` and ``PerTrade``: a minimum or a fee charged once per order.

    zipline charges an order, over all its fills, ``max(min_trade_cost,
    per_share * filled) + per_trade`` once something filled; each fill pays
    the increase of that total. An order that fills in one go pays it at
    once; one split by the volume cap pays the minimum (and the per-trade
    fee) on its first fill only.

    The broker does not tell a commission model which order a fill belongs
    to, so the orders are announced with :meth:`expect` when placed (the
    zipline shim does this) and a fill is attributed to the oldest announced
    open order of its asset on the same side. A fill of an order that was
    not announced is charged as a whole order.

    Parameters
    ----------
    per_share : float
        Currency per share filled.
    min_trade_cost : float
        Smallest commission of an order (charged with its first fill).
    per_trade : float
        Flat fee per order (charged with its first fill).
    """

    def __init__(self, per_share: float = 0.0, min_trade_cost: float = 0.0,
                 per_trade: float = 0.0) -> None:
        super().__init__()
        self.cost_per_share = _non_negative(per_share, "per_share")
        self.min_trade_cost = _non_negative(min_trade_cost, "min_trade_cost")
        self.per_trade = _non_negative(per_trade, "per_trade")
        self._open: dict[int, list[list[float]]] = {}  # asset -> [[order id, qty, filled, paid]]
        self.paid: dict[int, float] = {}  # order id -> commission charged so far

    def _total(self, filled: float) -> float:
        if filled == 0:
            return 0.0
        return max(self.min_trade_cost, self.cost_per_share * filled) + self.per_trade

    def expect(self, asset: int, order_id: int, quantity: float) -> None:
        """Announce an order placed on ``asset`` (signed ``quantity``)."""
        self._open.setdefault(asset, []).append([order_id, quantity, 0.0])

    def forget(self, order_id: int) -> None:
        """Drop an order that will not fill any more (cancelled, rejected)."""
        for entries in self._open.values():
            entries[:] = [e for e in entries if e[0] != order_id]

    def _entry(self, asset: int, quantity: float) -> list[float] | None:
        for e in self._open.get(asset, ()):
            if (e[1] > 0) == (quantity > 0):
                return e
        return None

    def compute(self, asset: int, quantity: float, price: float, ts: int) -> float:
        """The increase of the order's total commission with this fill."""
        e = self._entry(asset, quantity)
        done = 0.0 if e is None else e[2]
        return self._total(done + abs(quantity)) - self._total(done)

    def record_fill(self, asset: int, quantity: float, price: float, ts: int) -> None:
        """Count the fill into its order; an order filled completely is dropped."""
        e = self._entry(asset, quantity)
        if e is None:
            return
        oid = int(e[0])
        self.paid[oid] = self.paid.get(oid, 0.0) + (
            self._total(e[2] + abs(quantity)) - self._total(e[2]))
        e[2] += abs(quantity)
        if e[2] >= abs(e[1]) - 1e-9:
            self._open[asset].remove(e)

    def reset(self, n_assets: int) -> None:
        """Forget every order (start of a run)."""
        self._open = {}
        self.paid = {}

    def __repr__(self) -> str:
        return (f"PerOrderCommission(per_share={self.cost_per_share!r}, "
                f"min_trade_cost={self.min_trade_cost!r}, per_trade={self.per_trade!r})")
