"""BacktestConfig: every behavioural knob of a run, in one validated object."""

from __future__ import annotations

import dataclasses
import math
import warnings
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any, Literal

from mlbacktest._time import MAX_DURATION_NS, duration_knob_ns
from mlbacktest.errors import ConfigError, LookAheadWarning
from mlbacktest.models.commission import CommissionModel
from mlbacktest.models.config import commission_from_config, model_to_config, slippage_from_config
from mlbacktest.models.slippage import SlippageModel

__all__ = ["BacktestConfig", "PositionRules", "FILL_AT_CHOICES", "PRESETS"]


def _number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


#: Largest value of a knob held in a C ``int`` / ``int32`` by the compiled core
#: (``latency_bars``, ``history_window``, ``max_open_positions``, ``max_bars``).
INT32_MAX = 2**31 - 1
#: Largest ``latency`` in ns: added to a timestamp (at most ``2**62 - 1`` ns, see
#: ``mlbacktest._time.TS_MAX``) it must stay inside int64. About 146 years.
MAX_LATENCY_NS = MAX_DURATION_NS
#: Largest ``periods_per_year``: one bar per millisecond of a 366-day year.
MAX_PERIODS_PER_YEAR = 366 * 86_400 * 1_000

#: Largest commission given as a bare number (a fraction of traded value): 10 %.
#: Above it the number is most likely in the wrong unit (``5`` for 5 bps is
#: 500 %); build the model explicitly (``PercentageCommission(0.2)``) to charge more.
MAX_BARE_COMMISSION = 0.1
#: Largest ``slippage_bps`` given as a bare number: 1,000 bps (10 % of the price).
MAX_BARE_SLIPPAGE_BPS = 1_000.0
#: Smallest non-zero ``slippage_bps`` given as a bare number: 0.01 bps. Below
#: it the number is most likely a fraction (``0.0005`` meaning 5 bps).
MIN_BARE_SLIPPAGE_BPS = 0.01


def _check_bare_costs(commission: Any, slippage_bps: Any) -> None:
    """Refuse bare cost numbers that are most likely in the wrong unit.

    Only plain numbers are checked: a model object or a table is taken as
    meant. Non-finite numbers are left to the models' own checks.
    """
    c = commission
    if _number(c) and math.isfinite(c) and c > MAX_BARE_COMMISSION:
        raise ConfigError(
            f"commission={c!r} would charge {100 * c:g} % of traded value: commission is a "
            f"fraction of traded value (0.001 = 10 bps), and bare numbers above "
            f"{MAX_BARE_COMMISSION} (10 %) are refused as a likely unit mistake; write "
            f"commission={c / 1e4:g} for {c:g} bps, or pass PercentageCommission({c!r}) "
            "(or a table {'model': 'percentage', 'rate': ...}) to charge it on purpose"
        )
    b = slippage_bps
    if _number(b) and math.isfinite(b) and b > MAX_BARE_SLIPPAGE_BPS:
        raise ConfigError(
            f"slippage_bps={b!r} would move prices by {b / 100:g} %: slippage_bps is in basis "
            f"points (5 = 0.05 % of the price), and bare numbers above "
            f"{MAX_BARE_SLIPPAGE_BPS:g} (10 %) are refused as a likely unit mistake; pass "
            f"FixedBpsSlippage({b!r}) to use it on purpose"
        )
    if _number(b) and 0 < b < MIN_BARE_SLIPPAGE_BPS:
        raise ConfigError(
            f"slippage_bps={b!r} is {b:g} basis points, almost nothing: slippage_bps is in "
            f"basis points, not a fraction (write slippage_bps={b * 1e4:g} for a fraction of "
            f"{b:g}); bare numbers below {MIN_BARE_SLIPPAGE_BPS} bps are refused as a likely "
            f"unit mistake; pass FixedBpsSlippage({b!r}) to use it on purpose"
        )


def _check_int32(value: Any, name: str, low: int) -> None:
    """Refuse anything but a whole number in ``[low, INT32_MAX]``."""
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= INT32_MAX:
        raise ConfigError(
            f"{name} must be a whole number in [{low}, {INT32_MAX}] (the compiled core holds "
            f"it in a 32-bit int), got {value!r}"
        )


@dataclass(frozen=True)
class PositionRules:
    """Exit rules attached to a position, evaluated every bar by the compiled loop.

    All are optional and compose: the first to trigger on a bar's price path
    closes the position (on a tie: stop-loss, trailing stop, take-profit).
    Levels are fractions of the position's average entry price; rules start
    on the bar after the position opens.

    Parameters
    ----------
    stop_loss : float, optional
        Exit (as a stop) when the price moves this fraction against the entry.
    take_profit : float, optional
        Exit (as a limit) when the price moves this fraction in favour.
    trailing_stop : float, optional
        Exit (as a stop) when the price falls this fraction from the best
        close since entry (rises, for a short).
    max_bars : int, optional
        Exit at the next open once the position has been held this many bars
        of its asset (the entry bar counts).
    """

    stop_loss: float | None = None
    take_profit: float | None = None
    trailing_stop: float | None = None
    max_bars: int | None = None

    def __post_init__(self) -> None:
        for name in ("stop_loss", "trailing_stop"):
            v = getattr(self, name)
            if v is not None and not (_number(v) and 0 < v < 1):
                raise ConfigError(f"position rule {name} must be a fraction in (0, 1), got {v!r}")
        v = self.take_profit
        if v is not None and not (_number(v) and 0 < v < math.inf):
            raise ConfigError(f"position rule take_profit must be a number > 0, got {v!r}")
        if self.max_bars is not None:
            _check_int32(self.max_bars, "position rule max_bars", 1)

    def broker_args(self) -> tuple[float, float, float, int]:
        """(stop_loss, take_profit, trailing, max_bars) with NaN / 0 for rules that are off."""
        nan = math.nan
        return (
            nan if self.stop_loss is None else float(self.stop_loss),
            nan if self.take_profit is None else float(self.take_profit),
            nan if self.trailing_stop is None else float(self.trailing_stop),
            0 if self.max_bars is None else int(self.max_bars),
        )

#: Accepted values of ``BacktestConfig.fill_at``.
FILL_AT_CHOICES = ("next_open", "next_close", "close")
#: Accepted values of ``BacktestConfig.intrabar_path``.
INTRABAR_PATHS = ("adaptive", "ohlc", "olhc", "submission")

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
        schedules. A float above :data:`MAX_BARE_COMMISSION` (0.1, i.e. 10 %)
        is refused as a likely unit mistake; pass
        ``PercentageCommission(rate)`` to charge more on purpose.
    slippage_bps : float or SlippageModel
        Price moved against each market or stop fill, in basis points. Limit
        fills are capped at their limit. A number above 1,000 bps (10 %) or
        below 0.01 bps (but not 0) is refused as a likely unit mistake (a
        fraction given for basis points); pass ``FixedBpsSlippage(bps)`` to
        use it on purpose.
    fill_at : {"next_open", "next_close", "close"}
        When market orders fill. ``"next_open"`` (default): at the open of
        the asset's next bar. ``"next_close"``: at the close of the asset's
        next bar (zipline's convention). ``"close"``: at the close of the bar
        the strategy just saw; look-ahead-prone (the strategy trades at a
        price it used to decide), so it emits a
        :class:`~mlbacktest.errors.LookAheadWarning`.
    fractional : bool
        Allow fractional quantities (default). With ``False``, order helpers
        round quantities toward zero to whole units and explicit fractional
        orders raise :class:`~mlbacktest.errors.OrderError`.
    allow_short : bool or None
        Allow fills that open or extend short positions. ``None`` (default):
        the account decides, a cash account cannot short (``False``) and a
        margin account can (``True``), within its margin requirement. The
        presets set what their engine does (backtrader, vectorbt and zipline
        let a cash account short).
    intrabar_path : {"adaptive", "ohlc", "olhc"}
        The order in which a bar's extremes are assumed to trade, used when
        several orders of an asset could fill on one bar (a stop-loss and a
        take-profit, say): ``"ohlc"`` open, high, low, close; ``"olhc"`` open,
        low, high, close; ``"adaptive"`` (default) the extreme nearer the
        open first.
    max_volume_participation : float or None
        Largest fraction of a bar's volume one asset's fills may take on
        that bar; the rest of an order carries over to later bars as a
        partial fill. ``None`` (default): no cap. Not available with
        ``fill_at="close"`` (a ``ConfigError``).
    same_bar_reentry : bool
        Whether an entry may fill on the bar on which a stop closed the
        same asset's position (default False).
    latency : str, datetime.timedelta or numpy.timedelta64
        Delay before an order reaches the broker, a duration such as
        ``"250ms"``, ``"1s"``, ``"1h30m"`` (the grammar of
        docs/guide/time.md). The order can fill on bars stamped at or after
        placement + latency. A bare int other than 0 is deprecated: it is
        read as nanoseconds (and stored as ``"<n>ns"``) with a
        :class:`DeprecationWarning`, and will be refused; ``latency_bars``
        counts bars.
    latency_bars : int
        Number of the asset's bars an order sits out before it reaches the
        broker (0: it can fill on the next bar). Not available with
        ``fill_at="close"`` (a ``ConfigError``): use a duration ``latency``.
    linked_orders_same_bar : bool
        Whether OTO children (bracket legs) work on the rest of the bar on
        which their parent filled (default True) or only from the next bar
        (backtrader's convention).
    account : {"cash", "margin"}
        ``"cash"`` (default): cash never goes below zero, a fill that would
        take it there is rejected. ``"margin"``: cash may go negative
        (borrowing) within ``initial_margin``; a margin call cuts positions
        back when equity falls below ``maintenance_margin`` x gross exposure.
    initial_margin, maintenance_margin : float
        Margin account requirements as fractions of gross exposure
        (Reg-T: 0.5 and 0.25). ``maintenance_margin`` must not exceed
        ``initial_margin``.
    margin_rate : float
        Annual interest charged on negative cash (margin account).
    borrow_rate : float or mapping of str to float
        Annual fee on the market value of short positions, one rate for all
        assets or a rate per asset name (others: 0), accrued over calendar
        time between timestamps.
    max_open_positions : int or None
        Fills that would open more positions than this are rejected.
    max_gross_leverage : float or None
        Fills that would take gross exposure / equity above this are
        rejected (fills that reduce exposure always pass).
    max_drawdown : float or None
        When equity falls this fraction below its running peak (checked at
        the end of each timestamp), trading halts: working orders are
        cancelled, every position is closed at the next open and only exits
        fill afterwards.
    position_rules : PositionRules or mapping or None
        Exit rules attached to every position (stop-loss, take-profit,
        trailing stop, time exit), evaluated by the compiled loop on every
        bar; :meth:`Strategy.set_position_rules` overrides them per asset.
    periods_per_year : float or None
        Annualisation factor for metrics; ``None`` infers it from the bar
        spacing (252 for daily bars).
    risk_free : float
        Annual risk-free rate used by Sharpe and Sortino.
    history_window : int
        In a streamed run (a feed with ``chunk=...``), the bars of history
        kept across chunks: ``Strategy.history`` and ``history_panel`` may
        ask for at most this many (default 1,000), whatever the chunk size.
        In-memory runs have no limit.

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
    fill_at: Literal["next_open", "next_close", "close"] = "next_open"
    fractional: bool = True
    allow_short: bool | None = None
    intrabar_path: Literal["adaptive", "ohlc", "olhc", "submission"] = "adaptive"
    max_volume_participation: float | None = None
    same_bar_reentry: bool = False
    latency: str | Any = 0
    latency_bars: int = 0
    linked_orders_same_bar: bool = True
    account: Literal["cash", "margin"] = "cash"
    initial_margin: float = 0.5
    maintenance_margin: float = 0.25
    margin_rate: float = 0.0
    borrow_rate: float | Mapping[str, float] = 0.0
    max_open_positions: int | None = None
    max_gross_leverage: float | None = None
    max_drawdown: float | None = None
    position_rules: PositionRules | Mapping[str, Any] | None = None
    periods_per_year: float | None = None
    risk_free: float = 0.0
    history_window: int = 1_000
    commission_model: CommissionModel = field(init=False, repr=False, compare=False)
    latency_ns: int = field(init=False, repr=False, compare=False)
    slippage_model: SlippageModel = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        cash = self.initial_cash
        if isinstance(cash, bool) or not isinstance(cash, (int, float)) or not math.isfinite(cash):
            raise ConfigError(f"initial_cash must be a finite number, got {cash!r}")
        if cash <= 0:
            raise ConfigError(f"initial_cash must be > 0, got {cash!r}")
        _check_int32(self.history_window, "history_window", 1)
        object.__setattr__(self, "initial_cash", float(cash))
        _check_bare_costs(self.commission, self.slippage_bps)
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
        elif (isinstance(self.slippage_bps, (int, float))
              and not isinstance(self.slippage_bps, bool)):
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
        _check_int32(lb, "latency_bars", 0)
        object.__setattr__(self, "latency_ns",
                           duration_knob_ns(self.latency, "latency", bars_knob="latency_bars"))
        if type(self.latency) is int and self.latency:  # the deprecated form, kept as written
            object.__setattr__(self, "latency", f"{self.latency}ns")
        if mvp is not None and self.fill_at == "close":
            raise ConfigError(
                "max_volume_participation cannot be combined with fill_at='close' (a remainder "
                "left at the close has no defined next fill): use fill_at='next_open' or "
                "'next_close'"
            )
        if lb and self.fill_at == "close":
            raise ConfigError(
                "latency_bars cannot be combined with fill_at='close' (same-bar fills have no "
                "bar to sit out before the close): use latency=<duration> or fill_at='next_open'"
            )
        self._check_accounts()
        for name in ("fractional", "same_bar_reentry"):
            if not isinstance(getattr(self, name), bool):
                raise ConfigError(f"{name} must be True or False, got {getattr(self, name)!r}")
        if self.allow_short is not None and not isinstance(self.allow_short, bool):
            raise ConfigError(
                f"allow_short must be True, False or None, got {self.allow_short!r}")
        ppy = self.periods_per_year
        if ppy is not None and not (_number(ppy) and 0 < ppy <= MAX_PERIODS_PER_YEAR):
            raise ConfigError(
                f"periods_per_year must be a number in (0, {MAX_PERIODS_PER_YEAR}] (at most "
                f"one bar per millisecond of a year) or None, got {ppy!r}"
            )
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

    def _check_accounts(self) -> None:
        if self.account not in ("cash", "margin"):
            raise ConfigError(f"account must be 'cash' or 'margin', got {self.account!r}")
        im, mm = self.initial_margin, self.maintenance_margin
        for name, v in (("initial_margin", im), ("maintenance_margin", mm)):
            if not (_number(v) and 0 < v <= 1):
                raise ConfigError(f"{name} must be a fraction in (0, 1], got {v!r}")
        if mm > im:
            raise ConfigError(
                f"maintenance_margin ({mm}) is above initial_margin ({im}): a position could be "
                "opened already in a margin call"
            )
        if not (_number(self.margin_rate) and 0 <= self.margin_rate < math.inf):
            raise ConfigError(f"margin_rate must be a number >= 0, got {self.margin_rate!r}")
        rates = self.borrow_rate
        items = rates.items() if isinstance(rates, Mapping) else [("*", rates)]
        for key, v in items:
            if not isinstance(key, str) or not (_number(v) and 0 <= v < math.inf):
                raise ConfigError(f"borrow_rate for {key!r} must be a number >= 0, got {v!r}")
        if self.max_open_positions is not None:
            _check_int32(self.max_open_positions, "max_open_positions", 1)
        lev = self.max_gross_leverage
        if lev is not None and not (_number(lev) and 0 < lev < math.inf):
            raise ConfigError(f"max_gross_leverage must be a number > 0 or None, got {lev!r}")
        dd = self.max_drawdown
        if dd is not None and not (_number(dd) and 0 < dd < 1):
            raise ConfigError(f"max_drawdown must be a fraction in (0, 1) or None, got {dd!r}")
        rules = self.position_rules
        if isinstance(rules, Mapping):
            unknown = sorted(set(rules) - {f.name for f in fields(PositionRules)})
            if unknown:
                raise ConfigError(f"unknown position_rules key {unknown[0]!r}")
            object.__setattr__(self, "position_rules", PositionRules(**rules))
        elif rules is not None and not isinstance(rules, PositionRules):
            raise ConfigError(f"position_rules must be a PositionRules or a mapping, got {rules!r}")
        if not isinstance(self.linked_orders_same_bar, bool):
            raise ConfigError("linked_orders_same_bar must be True or False")

    def borrow_rates(self, asset_names: tuple[str, ...]) -> list[float]:
        """The annual borrow rate of each asset, in asset-id order."""
        rates = self.borrow_rate
        if not isinstance(rates, Mapping):
            return [float(rates)] * len(asset_names)
        unknown = sorted(set(rates) - set(asset_names))
        if unknown:
            raise ConfigError(f"borrow_rate names an unknown asset {unknown[0]!r}")
        return [float(rates.get(a, 0.0)) for a in asset_names]

    @classmethod
    def preset(cls, name: str, **overrides: Any) -> BacktestConfig:
        """A config reproducing another engine's fill conventions, with ``overrides`` applied.

        ``"backtrader"``: market orders at the next open, whole shares,
        linked orders from the next bar, triggered orders matched in
        submission order, re-entry allowed on a stop-out bar.
        ``"vectorbt"``: orders at the close of the signal bar (vectorbt's
        default ``price=close``; look-ahead-prone), fractional sizes.
        ``"zipline"``: market orders at the next bar's close, whole shares,
        zipline's default costs: 5 bps slippage, at most 10 % of a bar's
        volume (the rest carries over), $0.001 per share commission.
        See docs/presets.md for what each preset does and does not reproduce.
        """
        try:
            base = PRESETS[name]
        except KeyError:
            raise ConfigError(f"unknown preset {name!r}; presets are {sorted(PRESETS)}") from None
        unknown = sorted(k for k in overrides if k not in cls.knob_names())
        if unknown:
            raise ConfigError(f"unknown config key {unknown[0]!r}")
        return cls.from_dict({**base, **overrides})

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
    def from_yaml(cls, path: str | Path) -> BacktestConfig:
        """Load a config from a YAML file (top-level keys, or a ``backtest:`` mapping).

        Needs PyYAML (``pip install pyyaml``).
        """
        try:
            import yaml  # type: ignore[import-untyped,unused-ignore]
        except ModuleNotFoundError:  # pragma: no cover - depends on the environment
            raise ConfigError("reading YAML configs needs PyYAML: pip install pyyaml") from None
        with open(path, encoding="utf-8") as fh:
            try:
                data = yaml.load(fh, Loader=_unique_key_loader(yaml)) or {}
            except _DuplicateKey as exc:
                raise ConfigError(f"{path}: {exc}") from None
        if isinstance(data, Mapping) and set(data) == {"backtest"}:
            data = data["backtest"]
        return cls.from_dict(data)

    @classmethod
    def from_file(cls, path: str | Path) -> BacktestConfig:
        """Load a config from a ``.toml``, ``.yaml``/``.yml`` or ``.json`` file."""
        suffix = Path(path).suffix.lower()
        if suffix == ".toml":
            return cls.from_toml(path)
        if suffix in (".yaml", ".yml"):
            return cls.from_yaml(path)
        if suffix == ".json":
            import json

            with open(path, encoding="utf-8") as fh:
                try:
                    data = json.load(fh, object_pairs_hook=_unique_keys)
                except _DuplicateKey as exc:
                    raise ConfigError(f"{path}: {exc}") from None
            return cls.from_dict(data)
        raise ConfigError(f"unknown config file type {suffix!r}: use .toml, .yaml or .json")

    @classmethod
    def from_toml(cls, path: str | Path) -> BacktestConfig:
        """Load a config from a TOML file (top-level keys, or a ``[backtest]`` table)."""
        try:
            import tomllib
        except ModuleNotFoundError:  # Python 3.10
            import tomli as tomllib  # type: ignore[no-redef,import-not-found]
        with open(path, "rb") as fh:
            try:  # a repeated key is an error of the TOML format itself
                data: Mapping[str, Any] = tomllib.load(fh)
            except tomllib.TOMLDecodeError as exc:
                _toml_duplicate(path, exc)
                raise
        if set(data) == {"backtest"} and isinstance(data["backtest"], Mapping):
            data = data["backtest"]
        return cls.from_dict(data)

    def to_dict(self) -> dict[str, Any]:
        """The knobs as a plain dict (cost models as tables); ``from_dict`` inverts it."""
        out: dict[str, Any] = {}
        for name in self.knob_names():
            value = getattr(self, name)
            if isinstance(value, PositionRules):
                value = {k: v for k, v in dataclasses.asdict(value).items() if v is not None}
            out[name] = model_to_config(value)
        return out

    @property
    def shorting_allowed(self) -> bool:
        """Whether fills may open or extend a short: ``allow_short``, or the account's rule."""
        if self.allow_short is None:
            return self.account == "margin"
        return self.allow_short

    def replace(self, **changes: Any) -> BacktestConfig:
        """A copy with some knobs changed."""
        return dataclasses.replace(self, **changes)


class _DuplicateKey(Exception):
    """A key repeated within one mapping of a config file."""


def _toml_duplicate(path: str | Path, exc: Exception) -> None:
    """Raise ConfigError if `exc` is tomllib's error for a key set twice (naming the line)."""
    import re

    text = str(exc)
    m = re.search(r"at line (\d+)", text)
    if m is None or not text.startswith(("Cannot overwrite a value", "Cannot declare")):
        return
    line_no = int(m.group(1))
    with open(path, encoding="utf-8") as fh:
        lines = fh.read().splitlines()
    line = lines[line_no - 1].strip() if 0 < line_no <= len(lines) else ""
    raise ConfigError(
        f"{path}: a key is given more than once (again at line {line_no}: {line!r}); a config "
        "file must set each key once"
    ) from None


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    """``object_pairs_hook`` for :func:`json.load` that refuses a repeated key."""
    out: dict[str, Any] = {}
    for key, value in pairs:
        if key in out:
            raise _DuplicateKey(
                f"key {key!r} is given more than once; a config file must set each key once"
            )
        out[key] = value
    return out


def _unique_key_loader(yaml: Any) -> Any:
    """A safe YAML loader that refuses a key repeated within one mapping."""

    class UniqueKeyLoader(yaml.SafeLoader):  # type: ignore[misc,name-defined]
        pass

    def construct_mapping(loader: Any, node: Any, deep: bool = False) -> Any:
        seen: set[Any] = set()
        for key_node, _ in node.value:
            key = loader.construct_object(key_node, deep=deep)
            if key in seen:
                raise _DuplicateKey(
                    f"key {key!r} is given more than once (again at line "
                    f"{key_node.start_mark.line + 1}); a config file must set each key once"
                )
            seen.add(key)
        return yaml.SafeLoader.construct_mapping(loader, node, deep)

    UniqueKeyLoader.add_constructor(
        yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, construct_mapping
    )
    return UniqueKeyLoader


#: Named presets for :meth:`BacktestConfig.preset` (knob name -> value).
PRESETS: dict[str, dict[str, Any]] = {
    "backtrader": {
        "fill_at": "next_open",
        "fractional": False,
        "allow_short": True,
        "intrabar_path": "submission",
        "linked_orders_same_bar": False,
        "same_bar_reentry": True,
    },
    "vectorbt": {
        "fill_at": "close",
        "fractional": True,
        "allow_short": True,
        "intrabar_path": "ohlc",
        "same_bar_reentry": False,
    },
    "zipline": {
        "fill_at": "next_close",
        "fractional": False,
        "allow_short": True,
        "max_volume_participation": 0.1,
        "slippage_bps": 5.0,
        "commission": {"model": "per_share", "per_share": 0.001},
    },
}
