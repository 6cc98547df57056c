"""BacktestConfig: every behavioural knob of a run, in one validated object."""

from __future__ import annotations

import dataclasses
import math
import warnings
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any, Literal

from mlbacktest.errors import ConfigError, LookAheadWarning
from mlbacktest.models.commission import CommissionModel
from mlbacktest.models.slippage import SlippageModel

__all__ = ["BacktestConfig", "FILL_AT_CHOICES"]

#: Accepted values of ``BacktestConfig.fill_at``.
FILL_AT_CHOICES = ("next_open", "close")


@dataclass(frozen=True)
class BacktestConfig:
    """Configuration of one backtest.

    Parameters
    ----------
    initial_cash : float
        Cash at the start of the run (> 0).
    commission : float or CommissionModel
        A float is a fraction of traded value (``0.001`` = 10 bps); use
        :func:`~mlbacktest.models.PerShareCommission` and friends for other
        schedules.
    slippage_bps : float or SlippageModel
        Price moved against each market or stop fill, in basis points. Limit
        fills are capped at their limit.
    fill_at : {"next_open", "close"}
        When market orders fill. ``"next_open"`` (default): at the open of
        the asset's next bar, the only choice that cannot use information
        the strategy did not have. ``"close"``: at the close of the bar the
        strategy just saw; look-ahead-prone (the strategy trades at a price
        it used to decide), so it emits a :class:`~mlbacktest.errors.LookAheadWarning`.
    fractional : bool
        Allow fractional quantities (default). With ``False``, order helpers
        round quantities toward zero to whole units and explicit fractional
        orders raise :class:`~mlbacktest.errors.OrderError`.
    allow_short : bool
        Allow fills that open or extend short positions.
    periods_per_year : float or None
        Annualisation factor for metrics; ``None`` infers it from the bar
        spacing (252 for daily bars).
    risk_free : float
        Annual risk-free rate used by Sharpe and Sortino.

    Examples
    --------
    >>> cfg = BacktestConfig(initial_cash=1_000_000, commission=0.001)
    >>> cfg.commission_model.rate
    0.001
    >>> BacktestConfig.from_dict({"initial_cash": 5e4, "fill_at": "next_open"}).initial_cash
    50000.0
    """

    initial_cash: float = 100_000.0
    commission: float | CommissionModel = 0.0
    slippage_bps: float | SlippageModel = 0.0
    fill_at: Literal["next_open", "close"] = "next_open"
    fractional: bool = True
    allow_short: bool = True
    periods_per_year: float | None = None
    risk_free: float = 0.0
    commission_model: CommissionModel = field(init=False, repr=False, compare=False)
    slippage_model: SlippageModel = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        cash = self.initial_cash
        if isinstance(cash, bool) or not isinstance(cash, (int, float)) or not math.isfinite(cash):
            raise ConfigError(f"initial_cash must be a finite number, got {cash!r}")
        if cash <= 0:
            raise ConfigError(f"initial_cash must be > 0, got {cash!r}")
        object.__setattr__(self, "initial_cash", float(cash))
        if isinstance(self.commission, CommissionModel):
            cm = self.commission
        elif isinstance(self.commission, (int, float)) and not isinstance(self.commission, bool):
            cm = CommissionModel(rate=float(self.commission))
        else:
            raise ConfigError(
                f"commission must be a float (fraction of value) or a CommissionModel, "
                f"got {self.commission!r}"
            )
        object.__setattr__(self, "commission_model", cm)
        if isinstance(self.slippage_bps, SlippageModel):
            sm = self.slippage_bps
        elif isinstance(self.slippage_bps, (int, float)) and not isinstance(self.slippage_bps, bool):
            sm = SlippageModel(float(self.slippage_bps))
        else:
            raise ConfigError(
                f"slippage_bps must be a number of basis points or a SlippageModel, "
                f"got {self.slippage_bps!r}"
            )
        object.__setattr__(self, "slippage_model", sm)
        if self.fill_at not in FILL_AT_CHOICES:
            raise ConfigError(f"fill_at must be one of {FILL_AT_CHOICES}, got {self.fill_at!r}")
        for name in ("fractional", "allow_short"):
            if not isinstance(getattr(self, name), bool):
                raise ConfigError(f"{name} must be True or False, got {getattr(self, name)!r}")
        ppy = self.periods_per_year
        if ppy is not None and (
            isinstance(ppy, bool) or not isinstance(ppy, (int, float)) or not ppy > 0
        ):
            raise ConfigError(f"periods_per_year must be a number > 0 or None, got {ppy!r}")
        rf = self.risk_free
        if isinstance(rf, bool) or not isinstance(rf, (int, float)) or not math.isfinite(rf):
            raise ConfigError(f"risk_free must be a finite number, got {rf!r}")
        if rf <= -1:
            raise ConfigError(f"risk_free must be > -1, got {rf!r}")
        if self.fill_at == "close":
            warnings.warn(
                "fill_at='close' fills market orders at the close of the bar the strategy "
                "used to decide: results are look-ahead-prone",
                LookAheadWarning,
                stacklevel=3,
            )

    @property
    def look_ahead_prone(self) -> bool:
        """True when the configuration lets fills use prices the strategy already saw."""
        return self.fill_at == "close"

    # ------------------------------------------------------------ loading
    @classmethod
    def knob_names(cls) -> tuple[str, ...]:
        """Names of every knob a config file or dict may set."""
        return tuple(f.name for f in fields(cls) if f.init)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> BacktestConfig:
        """Build a config from a mapping; an unknown key raises ConfigError naming it.

        ``commission`` may be a number or a table such as
        ``{"per_share": 0.005, "minimum": 1.0}``.
        """
        if not isinstance(data, Mapping):
            raise ConfigError(f"a config must be a mapping, got {type(data).__name__}")
        known = set(cls.knob_names())
        unknown = sorted(k for k in data if k not in known)
        if unknown:
            raise ConfigError(
                f"unknown config key {unknown[0]!r}"
                + (f" (and {unknown[1:]})" if len(unknown) > 1 else "")
                + f"; known keys are {sorted(known)}"
            )
        kwargs = dict(data)
        if isinstance(kwargs.get("commission"), Mapping):
            try:
                kwargs["commission"] = CommissionModel(**kwargs["commission"])
            except TypeError as exc:
                raise ConfigError(f"bad commission table: {exc}") from None
        if isinstance(kwargs.get("slippage_bps"), Mapping):
            try:
                kwargs["slippage_bps"] = SlippageModel(**kwargs["slippage_bps"])
            except TypeError as exc:
                raise ConfigError(f"bad slippage table: {exc}") from None
        return cls(**kwargs)

    @classmethod
    def from_toml(cls, path: str | Path) -> BacktestConfig:
        """Load a config from a TOML file (top-level keys, or a ``[backtest]`` table)."""
        try:
            import tomllib
        except ModuleNotFoundError:  # Python 3.10
            import tomli as tomllib  # type: ignore[no-redef]
        with open(path, "rb") as fh:
            data = tomllib.load(fh)
        if set(data) == {"backtest"} and isinstance(data["backtest"], Mapping):
            data = data["backtest"]
        return cls.from_dict(data)

    def to_dict(self) -> dict[str, Any]:
        """The knobs as a plain dict (cost models as tables); ``from_dict`` inverts it."""
        out: dict[str, Any] = {}
        for name in self.knob_names():
            value = getattr(self, name)
            if dataclasses.is_dataclass(value):
                value = dataclasses.asdict(value)
            out[name] = value
        return out

    def replace(self, **changes: Any) -> BacktestConfig:
        """A copy with some knobs changed."""
        return dataclasses.replace(self, **changes)
