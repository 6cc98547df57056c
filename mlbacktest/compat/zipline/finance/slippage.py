"""zipline's ``zipline.finance.slippage`` models, translated to mlbacktest models."""

from __future__ import annotations

from typing import Any

from mlbacktest.errors import PortingError
from mlbacktest.models import (
    FixedAmountSlippage,
    FixedBpsSlippage,
    SlippageModel,
    VolumeShareImpact,
)

__all__ = ["FixedBasisPointsSlippage", "VolumeShareSlippage", "FixedSlippage", "NoSlippage",
           "VolatilityVolumeShare", "SlippageModel"]

DEFAULT_EQUITY_VOLUME_SLIPPAGE_BAR_LIMIT = 0.025


class _ZiplineSlippage:
    """A zipline slippage model: an mlbacktest model plus a volume cap."""

    volume_limit: float | None = None

    def to_model(self) -> SlippageModel:
        raise NotImplementedError


class FixedBasisPointsSlippage(_ZiplineSlippage):
    """``basis_points`` against the close, at most ``volume_limit`` of the bar's volume.

    zipline's default slippage: ``FixedBasisPointsSlippage(5, 0.1)``.
    """

    def __init__(self, basis_points: float = 5.0, volume_limit: float = 0.1) -> None:
        self.basis_points = basis_points
        self.volume_limit = volume_limit

    def to_model(self) -> SlippageModel:
        """:class:`~mlbacktest.models.FixedBpsSlippage` of ``basis_points``."""
        return FixedBpsSlippage(self.basis_points)

    def __repr__(self) -> str:
        return (f"FixedBasisPointsSlippage(basis_points={self.basis_points}, "
                f"volume_limit={self.volume_limit})")


class VolumeShareSlippage(_ZiplineSlippage):
    """Quadratic impact ``price_impact * share**2``, at most ``volume_limit`` of the volume."""

    def __init__(self, volume_limit: float = DEFAULT_EQUITY_VOLUME_SLIPPAGE_BAR_LIMIT,
                 price_impact: float = 0.1) -> None:
        self.volume_limit = volume_limit
        self.price_impact = price_impact

    def to_model(self) -> SlippageModel:
        """:class:`~mlbacktest.models.VolumeShareImpact` with the same parameters."""
        return VolumeShareImpact(self.price_impact, self.volume_limit)

    def __repr__(self) -> str:
        return (f"VolumeShareSlippage(volume_limit={self.volume_limit}, "
                f"price_impact={self.price_impact})")


class FixedSlippage(_ZiplineSlippage):
    """Half of ``spread`` against the close, with no volume cap."""

    def __init__(self, spread: float = 0.0) -> None:
        self.spread = spread

    def to_model(self) -> SlippageModel:
        """:class:`~mlbacktest.models.FixedAmountSlippage` of ``spread / 2``."""
        return FixedAmountSlippage(self.spread / 2.0)

    def __repr__(self) -> str:
        return f"FixedSlippage(spread={self.spread})"


class NoSlippage(_ZiplineSlippage):
    """Fills at the close, whole orders, no volume cap."""

    def to_model(self) -> SlippageModel:
        """A :class:`~mlbacktest.models.SlippageModel` of 0 bps."""
        return SlippageModel()


class VolatilityVolumeShare(_ZiplineSlippage):
    """Futures slippage: not supported (raises :class:`PortingError`)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        raise PortingError(
            "zipline.finance.slippage.VolatilityVolumeShare is not supported by the zipline "
            "shim: use mlbacktest.models.SquareRootImpact(k, sigma_column=...) with a "
            "volatility column and BacktestConfig(max_volume_participation=...)")
