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
from mlbacktest.models.config import commission_from_config, model_to_config, slippage_from_config
from mlbacktest.models.slippage import SlippageModel

__all__ = ["BacktestConfig", "FILL_AT_CHOICES"]

#: Accepted values of ``BacktestConfig.fill_at``.
FILL_AT_CHOICES = ("next_open", "close")
#: Accepted values of ``BacktestConfig.intrabar_path``.
INTRABAR_PATHS = ("adaptive", "ohlc", "olhc")

_UNITS_NS = {"ns": 1, "us": 1_000, "ms": 1_000_000, "s": 1_000_000_000,
             "m": 60_000_000_000, "h": 3_600_000_000_000, "d": 86_400_000_000_000}


def _duration_ns(value: Any, name: str) -> int:
    """A duration as int nanoseconds: int ns, timedelta, or a string like '250ms'."""
    import datetime as _dt
    import re

    if isinstance(value, bool):
        raise ConfigError(f"{name} must be a duration, got {value!r}")
    if isinstance(value, int):
        out = value
    elif isinstance(value, _dt.timedelta):
        out = (value.days * 86_400 + value.seconds) * 1_000_000_000 + value.microseconds * 1_000
    elif isinstance(value, str):
        m = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*(ns|us|ms|s|m|h|d)\s*", value)
        if not m:
            raise ConfigError(
                f"{name} must look like '250ms', '1s', '5m' (units ns, us, ms, s, m, h, d), "
                f"got {value!r}"
            )
        out = int(round(float(m.group(1)) * _UNITS_NS[m.group(2)]))
    else:
        raise ConfigError(f"{name} must be int ns, a timedelta or a string, got {value!r}")
    if out < 0:
        raise ConfigError(f"{name} must be >= 0, got {value!r}")
    return out


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
    intrabar_path : {"adaptive", "ohlc", "olhc"}
        The order in which a bar's extremes are assumed to trade, used when
        several orders of an asset could fill on one bar (a stop-loss and a
        take-profit, say): ``"ohlc"`` open, high, low, close; ``"olhc"`` open,
        low, high, close; ``"adaptive"`` (default) the extreme nearer the
        open first.
    max_volume_participation : float or None
        Largest fraction of a bar's volume one asset's fills may take on
        that bar; the rest of an order carries over to later bars as a
        partial fill. ``None`` (default): no cap.
    same_bar_reentry : bool
        Whether an entry may fill on the bar on which a stop closed the
        same asset's position (default False).
    latency : int, str or datetime.timedelta
        Delay before an order reaches the broker: int nanoseconds, a
        timedelta, or a string such as ``"250ms"``, ``"1s"``, ``"5m"``. The
        order can fill on bars stamped at or after placement + latency.
    latency_bars : int
        Number of the asset's bars an order sits out before it reaches the
        broker (0: it can fill on the next bar).
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
    intrabar_path: Literal["adaptive", "ohlc", "olhc"] = "adaptive"
    max_volume_participation: float | None = None
    same_bar_reentry: bool = False
    latency: int | str | Any = 0
    latency_bars: int = 0
    periods_per_year: float | None = None
    risk_free: float = 0.0
    commission_model: CommissionModel = field(init=False, repr=False, compare=False)
    latency_ns: int = field(init=False, repr=False, compare=False)
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
        if self.intrabar_path not in INTRABAR_PATHS:
            raise ConfigError(
                f"intrabar_path must be one of {INTRABAR_PATHS}, got {self.intrabar_path!r}"
            )
        mvp = self.max_volume_participation
        if mvp is not None and (
            isinstance(mvp, bool) or not isinstance(mvp, (int, float)) or not 0 < mvp <= 1
        ):
            raise ConfigError(
                f"max_volume_participation must be a fraction in (0, 1] or None, got {mvp!r}"
            )
        lb = self.latency_bars
        if isinstance(lb, bool) or not isinstance(lb, int) or lb < 0:
            raise ConfigError(f"latency_bars must be a whole number >= 0, got {lb!r}")
        object.__setattr__(self, "latency_ns", _duration_ns(self.latency, "latency"))
        for name in ("fractional", "allow_short", "same_bar_reentry"):
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
            kwargs["commission"] = commission_from_config(kwargs["commission"])
        if isinstance(kwargs.get("slippage_bps"), Mapping):
            kwargs["slippage_bps"] = slippage_from_config(kwargs["slippage_bps"])
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
            out[name] = model_to_config(getattr(self, name))
        return out

    def replace(self, **changes: Any) -> BacktestConfig:
        """A copy with some knobs changed."""
        return dataclasses.replace(self, **changes)
