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

import math

from mlbacktest.errors import ConfigError
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
    "VolumeShareImpact",
]


def NoSlippage() -> SlippageModel:  # noqa: N802 - reads like a class at the call site
    """No slippage (a :class:`SlippageModel` with ``bps=0``)."""
    return SlippageModel()


class VolumeShareImpact(SlippageModel):
    """Quadratic impact on the bar's volume share, zipline's ``VolumeShareSlippage`` price.

    A fill of ``q`` units on a bar of volume ``V`` moves the price by
    ``price_impact * share**2`` (a fraction of the price) against the order,
    where ``share`` is the asset's volume already filled on this bar plus
    ``|q|``, over ``V``, capped at ``volume_limit``::

        share = min((filled_on_bar + |q|) / V, volume_limit)
        price = raw + share**2 * copysign(price_impact, q) * raw

    (zipline's formula, in its order of operations, so prices agree to the
    bit). ``filled_on_bar`` counts the fills booked on the same asset at the
    same timestamp before this one, so the second order filled on a bar
    pays for the first one's volume too.

    The model prices fills; it does not cap them: zipline's volume limit
    is :attr:`BacktestConfig.max_volume_participation
    <mlbacktest.BacktestConfig>` (set it to the same ``volume_limit``; the
    zipline preset and :mod:`mlbacktest.compat.zipline` do).

    Parameters
    ----------
    price_impact : float
        Fraction of the price moved at a volume share of 1 (zipline's
        default 0.1), ``>= 0``.
    volume_limit : float or None
        Largest volume share priced (zipline's default 0.025); None: no cap.
    bps : float
        Fixed move added before the impact, in basis points (default 0).

    Notes
    -----
    On a bar with no volume the order cannot fill (NaN: it waits for the
    asset's next bar).

    Examples
    --------
    >>> m = VolumeShareImpact(0.1)
    >>> m.reset(1)
    >>> round(m.fill_price(0, 1_000, 50.0, 100_000, 0), 6)   # share 1 %: 0.1 * 0.01**2
    50.0005
    """

    def __init__(self, price_impact: float = 0.1, volume_limit: float | None = 0.025,
                 bps: float = 0.0) -> None:
        super().__init__(bps)
        pi = price_impact
        if isinstance(pi, bool) or not isinstance(pi, (int, float)) or not (
                math.isfinite(pi) and pi >= 0):
            raise ConfigError(f"price_impact must be a finite number >= 0, got {pi!r}")
        vl = volume_limit
        if vl is not None and (isinstance(vl, bool) or not isinstance(vl, (int, float))
                               or not 0 < vl <= 1):
            raise ConfigError(f"volume_limit must be a fraction in (0, 1] or None, got {vl!r}")
        self.price_impact = float(pi)
        self.volume_limit = None if vl is None else float(vl)
        self._bar_ts: dict[int, int] = {}
        self._bar_filled: dict[int, float] = {}

    def _filled_on_bar(self, asset: int, ts: int) -> float:
        return self._bar_filled.get(asset, 0.0) if self._bar_ts.get(asset) == ts else 0.0

    def fill_price(self, asset: int, quantity: float, raw_price: float, bar_volume: float,
                   ts: int, row: int = -1) -> float:
        """The impacted price of a fill of ``quantity`` (NaN on a bar with no volume)."""
        if not bar_volume > 0:
            return math.nan
        share = (self._filled_on_bar(asset, ts) + abs(quantity)) / bar_volume
        if self.volume_limit is not None:
            share = min(share, self.volume_limit)
        price = SlippageModel.fill_price(self, asset, quantity, raw_price, bar_volume, ts, row)
        return price + share**2 * math.copysign(self.price_impact, quantity) * price

    def record_fill(self, asset: int, quantity: float, price: float, bar_volume: float,
                    ts: int, row: int = -1) -> None:
        """Count the fill into its asset's volume on this bar."""
        self._bar_filled[asset] = self._filled_on_bar(asset, ts) + abs(quantity)
        self._bar_ts[asset] = ts

    def reset(self, n_assets: int, columns: ColumnSource | None = None) -> None:  # type: ignore[override]
        """Forget the volumes filled (start of a run)."""
        super().reset(n_assets, columns)
        self._bar_ts = {}
        self._bar_filled = {}

    def __repr__(self) -> str:
        return (f"VolumeShareImpact(price_impact={self.price_impact!r}, "
                f"volume_limit={self.volume_limit!r}, bps={self.bps!r})")
