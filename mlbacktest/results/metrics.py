"""Performance metrics over plain numpy arrays.

Conventions shared by every function here
------------------------------------------
- *Returns* are simple per-period returns, ``r_t = E_t / E_{t-1} - 1``; the first
  period is measured against the initial capital, so ``T`` equity points give
  ``T`` returns and ``prod(1 + r) = E_{T-1} / initial``
  (see :func:`simple_returns`).
- *Annualisation* of per-period statistics uses a number of periods per year
  ``ppy``: volatility scales by ``sqrt(ppy)``, the Sharpe ratio by its square
  root too. :func:`infer_periods_per_year` guesses ``ppy`` from the calendar of
  the timestamps (252 sessions a year on weekdays, 365 when weekends trade).
- *CAGR* rests on elapsed calendar time instead: the run lasts
  ``(ts[-1] - ts[0]) / 365.25 days`` years, whatever the bar spacing (see
  :func:`cagr`).
- The *annual* risk-free rate ``rf`` becomes a per-period rate by compounding,
  ``(1 + rf) ** (1 / ppy) - 1``.
- ``ddof`` (delta degrees of freedom) chooses between sample (``ddof=1``, the
  default) and population (``ddof=0``) estimators of the standard deviation,
  skewness and kurtosis.
- Degenerate inputs never warn or raise (invalid *parameters*, such as a
  confidence level outside (0, 1), do raise ``ValueError``): a quantity that is undefined (a ratio
  with a zero or undefined denominator, a standard deviation of fewer than
  ``ddof + 1`` values, an empty series) is ``NaN``; a quantity that is merely
  empty-valued (the drawdown of a constant series, its duration) is ``0``. Each
  function's docstring states which.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import numpy.typing as npt

from mlbacktest._events import ORDER_STATUS_REJECTED as _ORDER_STATUS_REJECTED

__all__ = [
    "FORMATTERS",
    "METRIC_FORMATS",
    "format_metric",
    "METRIC_SECTIONS",
    "align_benchmark",
    "alpha_beta",
    "annual_volatility",
    "cagr",
    "compute_metrics",
    "conditional_value_at_risk",
    "drawdown",
    "explain_periods_per_year",
    "exposure_statistics",
    "infer_periods_per_year",
    "kurtosis",
    "max_drawdown",
    "max_drawdown_duration",
    "omega_ratio",
    "rolling_sharpe",
    "sharpe",
    "simple_returns",
    "skewness",
    "sortino",
    "sqn",
    "stability",
    "tail_ratio",
    "total_return",
    "trade_statistics",
    "turnover",
    "value_at_risk",
]

DEFAULT_PERIODS_PER_YEAR: float = 252.0
"""Trading days per year; the fallback of :func:`infer_periods_per_year`."""

ORDER_STATUS_REJECTED: int = _ORDER_STATUS_REJECTED
"""Status code of a rejected order in the engine's order records (from the compiled
``OrderStatus`` enum of :mod:`mlbacktest._events`)."""

_NS_PER_DAY: int = 86_400 * 1_000_000_000

DAYS_PER_YEAR: float = 365.25
"""Length of a calendar year in days, the unit of elapsed time in :func:`cagr`."""

_NS_PER_YEAR: float = DAYS_PER_YEAR * _NS_PER_DAY

# A calendar with more than this share of its days on a Saturday or a Sunday trades
# every day (a weekday calendar has none; a seven-day one has 2/7; a Sunday-to-Thursday
# week has 1/7 and is still a five-session week).
_WEEKEND_SHARE_OF_SEVEN_DAY_WEEK: float = 0.2

# (upper bound on the median bar spacing in days, periods per year), checked in order.
_SPACING_RULES: tuple[tuple[float, float, str], ...] = (
    (10.0, 52.0, "weekly"),
    (45.0, 12.0, "monthly"),
    (135.0, 4.0, "quarterly"),
    (math.inf, 1.0, "yearly or sparser"),
)
_DAILY_MAX_SPACING_DAYS: float = 4.0  # weekend gaps of daily bars are 3 days
_INTRADAY_MAX_SPACING_DAYS: float = 0.75


METRIC_FORMATS: dict[str, str] = {
    "final_equity": "money",
    "total_return": "pct",
    "cagr": "pct",
    "annual_volatility": "pct",
    "sharpe": "ratio",
    "sortino": "ratio",
    "calmar": "ratio",
    "max_drawdown": "pct",
    "max_drawdown_duration": "int",
    "omega": "ratio",
    "tail_ratio": "ratio",
    "var": "pct",
    "cvar": "pct",
    "skew": "ratio",
    "kurtosis": "ratio",
    "stability": "ratio",
    "alpha": "pct",
    "beta": "ratio",
    "num_trades": "int",
    "win_rate": "pct",
    "profit_factor": "ratio",
    "avg_trade_pnl": "money",
    "avg_win": "money",
    "avg_loss": "money",
    "payoff_ratio": "ratio",
    "best_trade": "money",
    "worst_trade": "money",
    "sqn": "ratio",
    "expectancy": "pct",
    "avg_holding_days": "ratio",
    "avg_holding_periods": "ratio",
    "time_in_market": "pct",
    "avg_gross_leverage": "ratio",
    "max_gross_leverage": "ratio",
    "avg_net_leverage": "ratio",
    "turnover": "ratio",
    "total_commission": "money",
    "total_slippage": "money",
    "num_fills": "int",
    "num_orders": "int",
    "num_rejected": "int",
    "periods_per_year": "float",
    "ddof": "int",
    "risk_free": "pct",
    "var_level": "pct",
}
"""How each metric of :func:`compute_metrics` is best printed: ``"money"``,
``"pct"`` (a fraction shown as a percentage), ``"ratio"``, ``"int"`` or
``"float"``."""

FORMATTERS: dict[str, str] = {
    "money": "{:,.2f}",
    "pct": "{:.2%}",
    "ratio": "{:.3f}",
    "int": "{:,d}",
    "float": "{:,.6g}",
}
"""Format string of each kind in :data:`METRIC_FORMATS`."""


def format_metric(name: str, value: Any) -> str:
    """Text of one metric value, formatted by its kind in :data:`METRIC_FORMATS`.

    NaN prints as ``"n/a"``; a metric not listed prints as an integer or a
    float by its type; anything that is not a number prints as ``str(value)``.
    """
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
        return str(value)
    if isinstance(value, (float, np.floating)) and not math.isfinite(value):
        return "n/a" if math.isnan(value) else str(value)
    kind = METRIC_FORMATS.get(name, "int" if isinstance(value, (int, np.integer)) else "float")
    if kind == "int":
        value = int(round(value))
    return FORMATTERS[kind].format(value)


METRIC_SECTIONS: tuple[tuple[str, tuple[str, ...]], ...] = (
    (
        "returns and risk",
        (
            "final_equity", "total_return", "cagr", "annual_volatility", "sharpe", "sortino",
            "calmar", "max_drawdown", "max_drawdown_duration", "omega", "tail_ratio", "var",
            "cvar", "skew", "kurtosis", "stability", "alpha", "beta",
        ),
    ),
    (
        "trades",
        (
            "num_trades", "win_rate", "profit_factor", "avg_trade_pnl", "avg_win", "avg_loss",
            "payoff_ratio", "best_trade", "worst_trade", "sqn", "expectancy",
            "avg_holding_days", "avg_holding_periods",
        ),
    ),
    (
        "exposure",
        (
            "time_in_market", "avg_gross_leverage", "max_gross_leverage", "avg_net_leverage",
            "turnover",
        ),
    ),
    (
        "costs and orders",
        ("total_commission", "total_slippage", "num_fills", "num_orders", "num_rejected"),
    ),
    ("conventions", ("periods_per_year", "ddof", "risk_free", "var_level")),
)
"""The metrics of :func:`compute_metrics` by section, in order (for printing)."""


def _as_float_array(x: npt.ArrayLike) -> np.ndarray:
    """Return ``x`` as a 1-D float64 array."""
    a = np.asarray(x, dtype=np.float64)
    if a.ndim != 1:
        raise ValueError(f"expected a 1-D array, got shape {a.shape}")
    return a


def _safe_ratio(num: np.ndarray, den: np.ndarray) -> np.ndarray:
    """``num / den`` where ``den > 0``; NaN elsewhere, without warnings."""
    out = np.full(np.shape(num), np.nan)
    np.divide(num, den, out=out, where=den > 0.0)
    return out


def infer_periods_per_year(ts_ns: npt.ArrayLike, tz: str | None = None) -> float:
    """Guess how many bars make a year from the calendar of the timestamps.

    Parameters
    ----------
    ts_ns : array_like of int64
        Timestamps in ns since the epoch (duplicates and order do not matter).
    tz : str, optional
        Time zone in which calendar days are counted; the timestamps are then
        UTC instants. ``None`` counts days on the naive wall-clock values.

    Returns
    -------
    float
        From the median spacing ``d`` between distinct timestamps and the
        sessions a year ``s`` of the calendar (252 when bars fall on weekdays
        only, 365 when more than a fifth of the days with bars are Saturdays
        or Sundays, i.e. the market trades every day):

        - ``d < 0.75`` day (intraday): ``s * m`` where ``m`` is the median
          number of distinct timestamps per calendar day;
        - ``d < 4`` days (daily): ``s``;
        - ``d < 10``: 52 (weekly); ``d < 45``: 12 (monthly);
          ``d < 135``: 4 (quarterly); else 1;
        - fewer than two distinct timestamps: 252.

    See Also
    --------
    explain_periods_per_year : the same inference, in words.

    Notes
    -----
    Exchange holidays are not needed: 252 is the usual count of sessions of
    an exchange year. Pass ``periods_per_year`` explicitly for any other
    convention.

    Examples
    --------
    >>> day = 86_400 * 10**9
    >>> infer_periods_per_year([0, 7 * day, 14 * day])
    52.0
    >>> infer_periods_per_year([k * day for k in range(14)])  # every day of two weeks
    365.0
    """
    return _infer_periods_per_year(ts_ns, tz)[0]


def explain_periods_per_year(ts_ns: npt.ArrayLike, tz: str | None = None) -> str:
    """Say how :func:`infer_periods_per_year` reads the calendar of timestamps.

    Parameters
    ----------
    ts_ns : array_like of int64
        Timestamps in ns since the epoch.
    tz : str, optional
        Time zone in which calendar days are counted (as in
        :func:`infer_periods_per_year`).

    Returns
    -------
    str
        For example ``"252 a year: daily bars, weekdays only"``.

    Examples
    --------
    >>> day = 86_400 * 10**9
    >>> explain_periods_per_year([k * day for k in range(14)])
    '365 a year: daily bars, weekends included'
    """
    ppy, basis = _infer_periods_per_year(ts_ns, tz)
    return f"{ppy:,.6g} a year: {basis}"


def _infer_periods_per_year(ts_ns: npt.ArrayLike, tz: str | None) -> tuple[float, str]:
    """Periods per year of timestamps and the words that justify it."""
    ts = np.unique(np.asarray(ts_ns, dtype=np.int64))
    if ts.size < 2:
        return DEFAULT_PERIODS_PER_YEAR, "fewer than two timestamps, the default"
    spacing_days = float(np.median(np.diff(ts))) / _NS_PER_DAY
    if spacing_days < _INTRADAY_MAX_SPACING_DAYS:
        days, bars_per_day = np.unique(_calendar_days(ts, tz), return_counts=True)
        sessions, week = _sessions_per_year(days)
        per_day = float(np.median(bars_per_day))
        return sessions * per_day, f"{per_day:,.6g} bars a day, {week}"
    if spacing_days < _DAILY_MAX_SPACING_DAYS:
        sessions, week = _sessions_per_year(_calendar_days(ts, tz))
        return sessions, f"daily bars, {week}"
    return next((ppy, f"{name} bars") for bound, ppy, name in _SPACING_RULES
                if spacing_days < bound)


def _sessions_per_year(days: np.ndarray) -> tuple[float, str]:
    """Sessions a year of the calendar of ``days`` (day numbers since 1970-01-01)."""
    weekday = (np.unique(days) + 3) % 7  # 1970-01-01 was a Thursday; Monday is 0
    if float(np.mean(weekday >= 5)) > _WEEKEND_SHARE_OF_SEVEN_DAY_WEEK:
        return 365.0, "weekends included"
    return DEFAULT_PERIODS_PER_YEAR, "weekdays only"


def _calendar_days(ts: np.ndarray, tz: str | None) -> np.ndarray:
    """Calendar day number of each timestamp, in ``tz`` when given."""
    if tz is None:
        return ts // _NS_PER_DAY
    import polars as pl

    local = pl.Series(ts, dtype=pl.Datetime("ns", "UTC")).dt.convert_time_zone(tz)
    return local.dt.date().to_physical().to_numpy()


def simple_returns(equity: npt.ArrayLike, initial: float | None = None) -> np.ndarray:
    """Per-period simple returns of an equity curve.

    Parameters
    ----------
    equity : array_like of float, shape (T,)
        Equity at the end of each period.
    initial : float, optional
        Equity before the first period. When given, the result has ``T``
        values and the first is ``equity[0] / initial - 1``; otherwise it has
        ``T - 1`` values starting with ``equity[1] / equity[0] - 1``.

    Returns
    -------
    numpy.ndarray of float64
        ``equity[t] / equity[t-1] - 1``; NaN where the previous equity is not
        positive (a return on zero or negative capital is undefined).
    """
    eq = _as_float_array(equity)
    if initial is None:
        prev, cur = eq[:-1], eq[1:]
    else:
        prev, cur = np.concatenate(([float(initial)], eq[:-1])), eq
    return _safe_ratio(cur, prev) - 1.0


def total_return(equity: npt.ArrayLike, initial: float | None = None) -> float:
    """Total simple return of an equity curve.

    Parameters
    ----------
    equity : array_like of float, shape (T,)
        Equity at the end of each period.
    initial : float, optional
        Starting equity; defaults to ``equity[0]``.

    Returns
    -------
    float
        ``equity[-1] / initial - 1``. An empty curve with ``initial`` given
        returns 0 (nothing happened); NaN when the curve is empty without
        ``initial`` or the starting equity is not positive.
    """
    eq = _as_float_array(equity)
    if initial is None:
        if eq.size == 0:
            return math.nan
        initial = float(eq[0])
    final = float(eq[-1]) if eq.size else float(initial)
    return final / initial - 1.0 if initial > 0.0 else math.nan


def cagr(equity: npt.ArrayLike, ts_ns: npt.ArrayLike, initial: float | None = None) -> float:
    """Compound annual growth rate over elapsed calendar time.

    Parameters
    ----------
    equity : array_like of float, shape (T,)
        Equity at the end of each period.
    ts_ns : array_like of int64, shape (T,)
        Timestamp (ns since the epoch) of each equity value. The run lasts
        ``years = (ts_ns[-1] - ts_ns[0]) / 365.25 days``, whatever the
        spacing of the bars (weekends and holidays count).
    initial : float, optional
        Equity before the first period; defaults to ``equity[0]``.

    Returns
    -------
    float
        ``(1 + total_return) ** (1 / years) - 1``; -1 when the final equity is
        zero or negative (everything was lost); NaN when no time elapsed
        (fewer than two timestamps) or the starting equity is not positive.

    Raises
    ------
    ValueError
        If ``ts_ns`` does not hold one timestamp per equity value.

    Examples
    --------
    >>> import numpy as np
    >>> ts = np.array(["2021-01-01", "2023-01-01"], dtype="datetime64[ns]").astype(np.int64)
    >>> round(cagr([100.0, 121.0], ts, initial=100.0), 3)  # 21 % over two years
    0.1
    """
    eq = _as_float_array(equity)
    ts = np.asarray(ts_ns, dtype=np.int64)
    if ts.shape != eq.shape:
        raise ValueError(
            f"cagr: ts_ns must hold one timestamp per equity value; got {ts.size} timestamps "
            f"of shape {ts.shape} for {eq.size} equity values"
        )
    growth = 1.0 + total_return(eq, initial)
    years = float(ts[-1] - ts[0]) / _NS_PER_YEAR if ts.size else 0.0
    if not years > 0.0 or math.isnan(growth):
        return math.nan
    if growth <= 0.0:
        return -1.0
    return float(growth ** (1.0 / years)) - 1.0


def annual_volatility(returns: npt.ArrayLike, periods_per_year: float, ddof: int = 1) -> float:
    """Annualised standard deviation of returns.

    Parameters
    ----------
    returns : array_like of float
        Per-period simple returns.
    periods_per_year : float
        Scaling factor: the result is ``std(returns, ddof) * sqrt(periods_per_year)``.
    ddof : int, default 1
        Delta degrees of freedom (1: sample standard deviation).

    Returns
    -------
    float
        NaN when there are not more than ``ddof`` returns; 0 for constant returns.
    """
    r = _as_float_array(returns)
    if r.size <= ddof:
        return math.nan
    return float(np.std(r, ddof=ddof)) * math.sqrt(periods_per_year)


def _excess_returns(
    returns: npt.ArrayLike, periods_per_year: float, risk_free: float
) -> np.ndarray:
    """Returns minus the per-period equivalent of the annual ``risk_free`` rate."""
    per_period = (1.0 + risk_free) ** (1.0 / periods_per_year) - 1.0
    excess: np.ndarray = _as_float_array(returns) - per_period
    return excess


def sharpe(
    returns: npt.ArrayLike,
    periods_per_year: float,
    risk_free: float = 0.0,
    ddof: int = 1,
) -> float:
    """Annualised Sharpe ratio.

    Parameters
    ----------
    returns : array_like of float
        Per-period simple returns.
    periods_per_year : float
        Periods per year used for annualisation.
    risk_free : float, default 0.0
        Annual risk-free rate, turned into the per-period rate
        ``(1 + risk_free) ** (1 / periods_per_year) - 1``.
    ddof : int, default 1
        Delta degrees of freedom of the standard deviation.

    Returns
    -------
    float
        ``mean(x) / std(x, ddof) * sqrt(periods_per_year)`` with ``x`` the
        excess returns. NaN when there are not more than ``ddof`` returns, when
        all returns are identical (zero volatility, e.g. constant equity) or
        when any return is NaN.
    """
    x = _excess_returns(returns, periods_per_year, risk_free)
    if x.size <= ddof or np.ptp(x) == 0.0 or np.isnan(x).any():
        return math.nan
    return float(np.mean(x) / np.std(x, ddof=ddof)) * math.sqrt(periods_per_year)


def sortino(returns: npt.ArrayLike, periods_per_year: float, risk_free: float = 0.0) -> float:
    """Annualised Sortino ratio.

    Parameters
    ----------
    returns : array_like of float
        Per-period simple returns.
    periods_per_year : float
        Periods per year used for annualisation.
    risk_free : float, default 0.0
        Annual risk-free rate; its per-period equivalent (as in :func:`sharpe`)
        is the target return.

    Returns
    -------
    float
        ``mean(x) / dd * sqrt(periods_per_year)`` with ``x`` the excess
        returns and the downside deviation ``dd = sqrt(mean(min(x, 0) ** 2))``
        taken over *all* periods (the empyrical / quantstats convention).
        NaN when there are no returns, when any return is NaN, or when no
        period falls below the target (``dd == 0``).
    """
    x = _excess_returns(returns, periods_per_year, risk_free)
    if x.size == 0 or np.isnan(x).any():
        return math.nan
    downside = math.sqrt(float(np.mean(np.minimum(x, 0.0) ** 2)))
    if downside == 0.0:
        return math.nan
    return float(np.mean(x)) / downside * math.sqrt(periods_per_year)


def drawdown(equity: npt.ArrayLike, initial: float | None = None) -> np.ndarray:
    """Drawdown of an equity curve from its running peak.

    Parameters
    ----------
    equity : array_like of float, shape (T,)
        Equity at the end of each period.
    initial : float, optional
        Equity before the first period; when given it counts as the first
        peak, so a loss in the first period is a drawdown.

    Returns
    -------
    numpy.ndarray of float64, shape (T,)
        ``equity / peak - 1`` (<= 0), with ``peak`` the running maximum;
        NaN where the peak is not positive.
    """
    eq = _as_float_array(equity)
    peak = np.maximum.accumulate(eq) if eq.size else eq
    if initial is not None:
        peak = np.maximum(peak, float(initial))
    return _safe_ratio(eq, peak) - 1.0


def max_drawdown(equity: npt.ArrayLike, initial: float | None = None) -> float:
    """Largest drawdown, as a negative fraction.

    Parameters
    ----------
    equity : array_like of float, shape (T,)
        Equity at the end of each period.
    initial : float, optional
        Equity before the first period (see :func:`drawdown`).

    Returns
    -------
    float
        ``min(drawdown)``, e.g. -0.25 for a 25 % fall; 0 for a curve that
        never falls (including an empty one); NaN if any drawdown is undefined.
    """
    dd = drawdown(equity, initial)
    return float(dd.min()) if dd.size else 0.0


def max_drawdown_duration(equity: npt.ArrayLike, initial: float | None = None) -> int:
    """Longest stretch spent below a previous peak, in periods.

    Parameters
    ----------
    equity : array_like of float, shape (T,)
        Equity at the end of each period.
    initial : float, optional
        Equity before the first period (see :func:`drawdown`).

    Returns
    -------
    int
        The largest number of consecutive periods with a strictly negative
        drawdown; a drawdown still running at the end counts up to the last
        period. 0 when the curve never falls.
    """
    underwater = drawdown(equity, initial) < 0.0
    if not underwater.any():
        return 0
    # Run lengths of True values: boundaries where the flag changes.
    edges = np.flatnonzero(np.diff(np.concatenate(([False], underwater, [False])).astype(np.int8)))
    return int((edges[1::2] - edges[::2]).max())


def _finite_returns(returns: npt.ArrayLike) -> np.ndarray | None:
    """``returns`` as a float array, or ``None`` when it is empty or holds a NaN."""
    r = _as_float_array(returns)
    if r.size == 0 or np.isnan(r).any():
        return None
    return r


def _check_level(level: float) -> float:
    """Validate a confidence level strictly between 0 and 1."""
    value = float(level)
    if not 0.0 < value < 1.0:
        raise ValueError(f"level must be strictly between 0 and 1, got {level!r}")
    return value


def _check_ddof(ddof: int) -> int:
    """Validate the delta degrees of freedom of the moment estimators (0 or 1)."""
    if isinstance(ddof, bool) or ddof not in (0, 1):
        raise ValueError(f"ddof must be 0 (population) or 1 (sample), got {ddof!r}")
    return int(ddof)


def omega_ratio(returns: npt.ArrayLike, periods_per_year: float, risk_free: float = 0.0) -> float:
    """Omega ratio: gains over losses around the risk-free rate.

    Parameters
    ----------
    returns : array_like of float
        Per-period simple returns.
    periods_per_year : float
        Periods per year, used to turn ``risk_free`` into a per-period rate.
    risk_free : float, default 0.0
        Annual risk-free rate; its per-period equivalent (as in :func:`sharpe`)
        is the threshold.

    Returns
    -------
    float
        ``sum(max(x, 0)) / sum(max(-x, 0))`` with ``x`` the excess returns
        (empyrical's ``omega_ratio(returns, risk_free=per_period_rate)``).
        NaN when there are no returns, any is NaN, or none is below the threshold.
    """
    if _finite_returns(returns) is None:
        return math.nan
    x = _excess_returns(returns, periods_per_year, risk_free)
    loss = -float(x[x < 0.0].sum())
    return float(x[x > 0.0].sum()) / loss if loss > 0.0 else math.nan


def tail_ratio(returns: npt.ArrayLike) -> float:
    """Ratio of the right tail to the left tail of the returns.

    Parameters
    ----------
    returns : array_like of float
        Per-period simple returns.

    Returns
    -------
    float
        ``|q95| / |q5|``, with ``q`` the percentiles of the returns (linear
        interpolation, numpy's default), as empyrical's ``tail_ratio``; 0.25
        means the worst 5 % of periods are four times larger than the best
        5 %. NaN when there are no returns, any is NaN, or ``q5 == 0``.
    """
    r = _finite_returns(returns)
    if r is None:
        return math.nan
    low = abs(float(np.percentile(r, 5.0)))
    return abs(float(np.percentile(r, 95.0))) / low if low > 0.0 else math.nan


def value_at_risk(returns: npt.ArrayLike, level: float = 0.95) -> float:
    """Historical value at risk, as a return.

    Parameters
    ----------
    returns : array_like of float
        Per-period simple returns.
    level : float, default 0.95
        Confidence level; the result is the ``1 - level`` quantile.

    Returns
    -------
    float
        The ``(1 - level)`` quantile of the returns (linear interpolation),
        a per-period return (negative for a loss), e.g. -0.02: in 95 % of
        periods the loss was at most 2 %. Same as empyrical's
        ``value_at_risk(returns, cutoff=1 - level)``. NaN when there are no
        returns or any is NaN.
    """
    level = _check_level(level)
    r = _finite_returns(returns)
    return math.nan if r is None else float(np.percentile(r, 100.0 * (1.0 - level)))


def conditional_value_at_risk(returns: npt.ArrayLike, level: float = 0.95) -> float:
    """Historical conditional value at risk (expected shortfall), as a return.

    Parameters
    ----------
    returns : array_like of float
        Per-period simple returns.
    level : float, default 0.95
        Confidence level.

    Returns
    -------
    float
        The mean of the ``k = floor((n - 1) * (1 - level)) + 1`` lowest of
        the ``n`` returns (the tail at and below the value at risk), as
        empyrical's ``conditional_value_at_risk(returns, cutoff=1 - level)``.
        NaN when there are no returns or any is NaN.
    """
    level = _check_level(level)
    r = _finite_returns(returns)
    if r is None:
        return math.nan
    k = int((r.size - 1) * (1.0 - level)) + 1
    return float(np.sort(r)[:k].mean())


def _central_moments(returns: npt.ArrayLike) -> tuple[int, float, float, float] | None:
    """``(n, m2, m3, m4)`` population central moments, or ``None`` if undefined."""
    r = _finite_returns(returns)
    if r is None:
        return None
    d = r - r.mean()
    m2 = float(np.mean(d**2))
    if m2 == 0.0:
        return None
    return r.size, m2, float(np.mean(d**3)), float(np.mean(d**4))


def skewness(returns: npt.ArrayLike, ddof: int = 1) -> float:
    """Skewness of the returns.

    Parameters
    ----------
    returns : array_like of float
        Per-period simple returns.
    ddof : {1, 0}
        1: the sample (bias-adjusted Fisher-Pearson) coefficient
        ``G1 = g1 * sqrt(n (n - 1)) / (n - 2)``, as pandas ``Series.skew``,
        quantstats and Excel ``SKEW``; 0: the population coefficient
        ``g1 = m3 / m2 ** 1.5``, as ``scipy.stats.skew`` (pyfolio).

    Returns
    -------
    float
        NaN with fewer than 3 returns (``ddof=1``), any NaN, or constant returns.
    """
    ddof = _check_ddof(ddof)
    moments = _central_moments(returns)
    if moments is None:
        return math.nan
    n, m2, m3, _ = moments
    g1 = m3 / m2**1.5
    if ddof == 0:
        return g1
    return g1 * math.sqrt(n * (n - 1)) / (n - 2) if n > 2 else math.nan


def kurtosis(returns: npt.ArrayLike, ddof: int = 1) -> float:
    """Excess (Fisher) kurtosis of the returns: 0 for a normal distribution.

    Parameters
    ----------
    returns : array_like of float
        Per-period simple returns.
    ddof : {1, 0}
        1: the sample (bias-adjusted) excess kurtosis
        ``G2 = ((n + 1) g2 + 6) (n - 1) / ((n - 2) (n - 3))``, as pandas
        ``Series.kurt``, quantstats and Excel ``KURT``; 0: the population
        excess kurtosis ``g2 = m4 / m2 ** 2 - 3``, as ``scipy.stats.kurtosis``
        (pyfolio).

    Returns
    -------
    float
        NaN with fewer than 4 returns (``ddof=1``), any NaN, or constant returns.
    """
    ddof = _check_ddof(ddof)
    moments = _central_moments(returns)
    if moments is None:
        return math.nan
    n, m2, _, m4 = moments
    g2 = m4 / m2**2 - 3.0
    if ddof == 0:
        return g2
    return ((n + 1) * g2 + 6.0) * (n - 1) / ((n - 2) * (n - 3)) if n > 3 else math.nan


def stability(returns: npt.ArrayLike) -> float:
    """R² of a straight line fitted to the cumulative log returns.

    Parameters
    ----------
    returns : array_like of float
        Per-period simple returns.

    Returns
    -------
    float
        The squared correlation between ``cumsum(log(1 + r))`` and the period
        number ``0 .. n-1`` (empyrical's ``stability_of_timeseries``): 1 for
        a steady compounding curve. NaN with fewer than 2 returns, any NaN, a
        return of -100 % or below, or a flat curve.
    """
    r = _finite_returns(returns)
    if r is None or r.size < 2 or (r <= -1.0).any():
        return math.nan
    y = np.cumsum(np.log1p(r))
    x = np.arange(r.size, dtype=np.float64)
    dy = y - y.mean()
    syy = float(np.dot(dy, dy))
    if syy == 0.0:
        return math.nan
    dx = x - x.mean()
    sxy = float(np.dot(dx, dy))
    return sxy * sxy / (float(np.dot(dx, dx)) * syy)


def alpha_beta(
    returns: npt.ArrayLike,
    benchmark_returns: npt.ArrayLike,
    periods_per_year: float,
    risk_free: float = 0.0,
) -> tuple[float, float]:
    """Jensen's alpha (annualised) and beta against a benchmark.

    Parameters
    ----------
    returns, benchmark_returns : array_like of float, shape (T,)
        Per-period simple returns of the strategy and of the benchmark,
        aligned period by period (see :func:`align_benchmark`).
    periods_per_year : float
        Periods per year, for the risk-free rate and the annualisation of alpha.
    risk_free : float, default 0.0
        Annual risk-free rate, subtracted per period from both series.

    Returns
    -------
    (alpha, beta) : tuple of float
        With ``x`` and ``b`` the excess returns of the strategy and of the
        benchmark: ``beta = cov(x, b) / var(b)`` (the ddof cancels) and
        ``alpha = (1 + mean(x - beta * b)) ** periods_per_year - 1``
        (compounded, as empyrical's ``alpha_beta``). Both NaN with fewer
        than 2 returns, any NaN, or a constant benchmark.

    Raises
    ------
    ValueError
        If the two series differ in length.
    """
    r = _as_float_array(returns)
    b = _as_float_array(benchmark_returns)
    if r.shape != b.shape:
        raise ValueError(
            f"alpha_beta: returns ({r.size}) and benchmark returns ({b.size}) differ in length"
        )
    if r.size < 2 or np.isnan(r).any() or np.isnan(b).any():
        return math.nan, math.nan
    x = _excess_returns(r, periods_per_year, risk_free)
    bx = _excess_returns(b, periods_per_year, risk_free)
    db = bx - bx.mean()
    var_b = float(np.mean(db * db))
    if not var_b > 1e-30:
        return math.nan, math.nan
    beta = float(np.mean(db * x)) / var_b
    alpha = float((1.0 + np.mean(x - beta * bx)) ** periods_per_year) - 1.0
    return alpha, beta


def rolling_sharpe(
    returns: npt.ArrayLike,
    window: int,
    periods_per_year: float,
    risk_free: float = 0.0,
    ddof: int = 1,
) -> np.ndarray:
    """Annualised Sharpe ratio over a moving window of periods.

    Parameters
    ----------
    returns : array_like of float, shape (T,)
        Per-period simple returns.
    window : int
        Number of periods in each window (> ``ddof``).
    periods_per_year, risk_free, ddof
        As for :func:`sharpe`.

    Returns
    -------
    numpy.ndarray of float64, shape (T,)
        Value ``t`` is the Sharpe ratio of returns ``t - window + 1 .. t``;
        NaN for the first ``window - 1`` periods and for windows with zero
        volatility or a NaN.

    Raises
    ------
    ValueError
        If ``window`` is not an integer greater than ``ddof``.
    """
    if isinstance(window, bool) or not isinstance(window, (int, np.integer)) or window <= ddof:
        raise ValueError(f"window must be an integer greater than ddof={ddof}, got {window!r}")
    x = _excess_returns(returns, periods_per_year, risk_free)
    out = np.full(x.size, np.nan)
    if x.size < window:
        return out
    windows = np.lib.stride_tricks.sliding_window_view(x, int(window))
    mean = windows.mean(axis=1)
    std = windows.std(axis=1, ddof=ddof)
    flat = np.ptp(windows, axis=1) == 0.0
    ratio = np.full(mean.shape, np.nan)
    np.divide(mean, std, out=ratio, where=~flat & ~np.isnan(std))
    out[window - 1 :] = ratio * math.sqrt(periods_per_year)
    return out


def sqn(net_pnl: npt.ArrayLike, ddof: int = 1) -> float:
    """System quality number of a set of trades.

    Parameters
    ----------
    net_pnl : array_like of float
        Net P&L of each trade.
    ddof : int, default 1
        Delta degrees of freedom of the standard deviation.

    Returns
    -------
    float
        ``sqrt(N) * mean(pnl) / std(pnl, ddof)`` over the ``N`` trades (Van
        Tharp's SQN on P&L in currency rather than R multiples, without a
        cap on ``N``, as backtesting.py). NaN with ``N <= ddof`` or when
        every trade has the same P&L.
    """
    p = _as_float_array(net_pnl)
    if p.size <= ddof or np.isnan(p).any() or np.ptp(p) == 0.0:
        return math.nan
    return math.sqrt(p.size) * float(p.mean()) / float(p.std(ddof=ddof))


def _profit_factor(net_pnl: np.ndarray) -> float:
    """Gross profit over gross loss of trades; NaN without losing trades."""
    loss = -float(net_pnl[net_pnl < 0.0].sum())
    return float(net_pnl[net_pnl > 0.0].sum()) / loss if loss > 0.0 else math.nan


def _mean_or_nan(x: np.ndarray) -> float:
    """Mean of ``x``; NaN for an empty array."""
    return float(x.mean()) if x.size else math.nan


def _nanmean_or_nan(x: np.ndarray) -> float:
    """Mean of the non-NaN values of ``x``; NaN when there are none (no warning)."""
    finite = x[~np.isnan(x)]
    return float(finite.mean()) if finite.size else math.nan


def trade_statistics(
    net_pnl: npt.ArrayLike,
    *,
    net_return: npt.ArrayLike | None = None,
    duration_ns: npt.ArrayLike | None = None,
    periods_held: npt.ArrayLike | None = None,
    ddof: int = 1,
) -> dict[str, float | int]:
    """Statistics of closed trades.

    Parameters
    ----------
    net_pnl : array_like of float, shape (N,)
        Net P&L of each trade (after commission), in currency.
    net_return : array_like of float, shape (N,), optional
        Net return of each trade as a fraction of its entry notional.
    duration_ns : array_like of int, shape (N,), optional
        Holding time of each trade in ns (exit minus entry timestamp).
    periods_held : array_like of int, shape (N,), optional
        Number of equity periods each trade was held.
    ddof : int, default 1
        Delta degrees of freedom of the standard deviation in :func:`sqn`.

    Returns
    -------
    dict of str to float or int
        - ``num_trades``.
        - ``win_rate``: share of trades with ``net_pnl > 0`` (a zero P&L is
          not a win).
        - ``profit_factor``: sum of winning over minus sum of losing net P&L;
          NaN without a losing trade.
        - ``avg_trade_pnl``: mean net P&L, the expectancy in currency
          (``win_rate * avg_win + loss_rate * avg_loss``).
        - ``avg_win``, ``avg_loss``: mean net P&L of winning / losing trades
          (``avg_loss <= 0``); NaN when there are none.
        - ``payoff_ratio``: ``avg_win / -avg_loss``.
        - ``best_trade``, ``worst_trade``: largest and smallest net P&L.
        - ``sqn``: see :func:`sqn`.
        - With ``net_return``: ``expectancy``, the mean net return per trade
          (fraction of the entry notional).
        - With ``duration_ns``: ``avg_holding_days``, the mean holding time
          in calendar days (86,400 s).
        - With ``periods_held``: ``avg_holding_periods``, the mean number of
          equity periods held.

        Averages, ratios and extremes are NaN when there are no trades.
    """
    p = _as_float_array(net_pnl)
    wins, losses = p[p > 0.0], p[p < 0.0]
    avg_win, avg_loss = _mean_or_nan(wins), _mean_or_nan(losses)
    out: dict[str, float | int] = {
        "num_trades": int(p.size),
        "win_rate": _mean_or_nan((p > 0.0).astype(np.float64)),
        "profit_factor": _profit_factor(p) if p.size else math.nan,
        "avg_trade_pnl": _mean_or_nan(p),
        "avg_win": avg_win,
        "avg_loss": avg_loss,
        "payoff_ratio": avg_win / -avg_loss if avg_loss < 0.0 else math.nan,
        "best_trade": float(p.max()) if p.size else math.nan,
        "worst_trade": float(p.min()) if p.size else math.nan,
        "sqn": sqn(p, ddof),
    }
    if net_return is not None:
        out["expectancy"] = _nanmean_or_nan(_as_float_array(net_return))
    if duration_ns is not None:
        days = np.asarray(duration_ns, dtype=np.int64).astype(np.float64) / _NS_PER_DAY
        out["avg_holding_days"] = _mean_or_nan(days)
    if periods_held is not None:
        out["avg_holding_periods"] = _mean_or_nan(_as_float_array(periods_held))
    return out


def exposure_statistics(
    equity: npt.ArrayLike,
    gross_exposure: npt.ArrayLike,
    net_exposure: npt.ArrayLike | None = None,
) -> dict[str, float]:
    """Time in market and leverage of an equity curve.

    Parameters
    ----------
    equity : array_like of float, shape (T,)
        Equity at each period.
    gross_exposure : array_like of float, shape (T,)
        Sum of the absolute market values of the positions at each period.
    net_exposure : array_like of float, shape (T,), optional
        Sum of the signed market values.

    Returns
    -------
    dict of str to float
        - ``time_in_market``: share of periods with ``gross_exposure > 0``.
        - ``avg_gross_leverage``, ``max_gross_leverage``: mean and maximum of
          ``gross_exposure / equity`` over the periods with positive equity.
        - With ``net_exposure``: ``avg_net_leverage``, the mean of
          ``net_exposure / equity`` (negative for a net short book).

        NaN when there are no periods (or no period with positive equity).
        See :func:`turnover` for the traded volume.
    """
    eq = _as_float_array(equity)
    gross = _as_float_array(gross_exposure)
    if gross.shape != eq.shape:
        raise ValueError("exposure_statistics: gross_exposure and equity differ in length")
    gross_lev = _safe_ratio(gross, eq)
    finite = gross_lev[~np.isnan(gross_lev)]
    out: dict[str, float] = {
        "time_in_market": _mean_or_nan((gross > 0.0).astype(np.float64)),
        "avg_gross_leverage": float(finite.mean()) if finite.size else math.nan,
        "max_gross_leverage": float(finite.max()) if finite.size else math.nan,
    }
    if net_exposure is not None:
        net = _as_float_array(net_exposure)
        if net.shape != eq.shape:
            raise ValueError("exposure_statistics: net_exposure and equity differ in length")
        out["avg_net_leverage"] = _nanmean_or_nan(_safe_ratio(net, eq))
    return out


def turnover(traded_notional: float, equity: npt.ArrayLike, periods_per_year: float) -> float:
    """Annualised turnover: traded notional per year over the average equity.

    Parameters
    ----------
    traded_notional : float
        Sum of ``|quantity * price|`` over every fill, buys and sells.
    equity : array_like of float, shape (T,)
        Equity at each period.
    periods_per_year : float
        Periods per year; the run lasts ``T / periods_per_year`` years.

    Returns
    -------
    float
        ``traded_notional / mean(equity) * periods_per_year / T``. Both sides
        count: buying the whole equity once and selling it a year later is a
        turnover of 2.0. NaN when there are no periods or the average equity
        is not positive.
    """
    eq = _as_float_array(equity)
    mean_equity = float(eq.mean()) if eq.size else math.nan
    if not mean_equity > 0.0:
        return math.nan
    return float(traded_notional) / mean_equity * periods_per_year / eq.size


_PRICE_COLUMNS: tuple[str, ...] = ("price", "close")
_TS_COLUMNS: tuple[str, ...] = ("timestamp", "ts")


def _benchmark_timestamps(column: Any, tz: str | None) -> np.ndarray:
    """Timestamps of a benchmark frame as int64 ns, in the encoding of the equity ``ts``."""
    import polars as pl

    dtype = column.dtype
    if dtype == pl.Date:
        column = column.cast(pl.Datetime("ns"))
        dtype = column.dtype
    if isinstance(dtype, pl.Datetime):
        if dtype.time_zone is None:
            if tz is not None:
                # naive values are wall-clock times in the run's zone
                column = column.dt.replace_time_zone(tz, ambiguous="earliest", non_existent="null")
        elif tz is None:
            raise ValueError(
                f"benchmark timestamps are in time zone {dtype.time_zone!r} but the run's "
                "timestamps are naive; pass naive timestamps"
            )
        column = column.dt.cast_time_unit("ns")
    elif dtype.is_integer():
        pass
    else:
        raise ValueError(
            f"benchmark: the timestamp column must be Datetime, Date or int64 ns, got {dtype}"
        )
    if column.null_count():
        raise ValueError("benchmark: the timestamp column has nulls (or non-existent local times)")
    return np.asarray(column.to_physical().to_numpy(), dtype=np.int64)


def _benchmark_levels(benchmark: Any, tz: str | None) -> tuple[np.ndarray, np.ndarray]:
    """``(ts, level)`` of a benchmark frame, sorted by time; levels are prices or a
    total-return index compounded from returns."""
    names = benchmark.columns
    ts_col = next((c for c in _TS_COLUMNS if c in names), None)
    value_cols = [c for c in ("returns", *_PRICE_COLUMNS) if c in names]
    if ts_col is None or len(value_cols) != 1:
        raise ValueError(
            "benchmark frame needs a 'timestamp' column and exactly one of 'returns', "
            f"'price' or 'close'; got columns {names}"
        )
    value_col = value_cols[0]
    ts = _benchmark_timestamps(benchmark[ts_col], tz)
    values = np.asarray(benchmark[value_col].cast(float).to_numpy(), dtype=np.float64)
    if np.isnan(values).any():
        raise ValueError(f"benchmark: column {value_col!r} has null or NaN values")
    order = np.argsort(ts, kind="stable")
    ts, values = ts[order], values[order]
    if ts.size > 1 and (np.diff(ts) <= 0).any():
        raise ValueError("benchmark: timestamps must be unique")
    if value_col == "returns":
        if (values <= -1.0).any():
            raise ValueError("benchmark: returns must be greater than -1")
        return ts, np.cumprod(1.0 + values)
    if not (values > 0.0).all():
        raise ValueError(f"benchmark: {value_col} must be positive")
    return ts, values


def align_benchmark(benchmark: Any, ts: npt.ArrayLike, tz: str | None = None) -> np.ndarray:
    """Benchmark return of each equity period.

    Parameters
    ----------
    benchmark : polars.DataFrame, polars.Series, numpy.ndarray or sequence of float
        Either

        - a frame with a ``timestamp`` (or ``ts``) column (Datetime, Date or
          int64 ns) and exactly one value column: ``price`` (or ``close``),
          prices or index levels, or ``returns``, simple returns (compounded
          into an index). Naive timestamps are wall-clock times in ``tz``;
          aware ones are instants (only allowed when ``tz`` is set). The
          frame is aligned **as-of**: the level at an equity timestamp is the
          last benchmark value at or before it, so a benchmark may be
          sparser or denser than the equity curve; or
        - a 1-D array (polars Series, numpy array, list) with one **return**
          per equity point, already aligned: value ``i`` is the benchmark
          return over period ``i``, the same period as the strategy's
          return ``i`` (the first against ``initial_cash``).
    ts : array_like of int64, shape (T,)
        Equity timestamps (ns; UTC instants when ``tz`` is set, else naive
        wall-clock times).
    tz : str, optional
        The run's time zone.

    Returns
    -------
    numpy.ndarray of float64, shape (T,)
        For a frame: ``level[i] / level[i - 1] - 1``, with 0 for the first
        period (the benchmark is held from the first equity timestamp, the
        strategy starts from cash). For an array: the array itself.

    Raises
    ------
    ValueError
        If the frame lacks the columns, has nulls, NaN, duplicate timestamps
        or non-positive prices, has no value at or before the first equity
        timestamp, or ends before the last one; if an array's length is not
        ``T`` or it holds NaN.
    """
    import polars as pl

    ts_a = np.asarray(ts, dtype=np.int64)
    if isinstance(benchmark, pl.DataFrame):
        b_ts, level = _benchmark_levels(benchmark, tz)
        if ts_a.size == 0:
            return np.zeros(0)
        if b_ts.size == 0 or b_ts[0] > ts_a[0] or b_ts[-1] < ts_a[-1]:
            span = (
                "is empty"
                if b_ts.size == 0
                else f"covers {_ns_str(b_ts[0])} .. {_ns_str(b_ts[-1])}"
            )
            raise ValueError(
                f"benchmark does not cover the run: the run spans {_ns_str(ts_a[0])} .. "
                f"{_ns_str(ts_a[-1])}, the benchmark {span}"
            )
        aligned = level[np.searchsorted(b_ts, ts_a, side="right") - 1]
        out = np.zeros(ts_a.size)
        out[1:] = aligned[1:] / aligned[:-1] - 1.0
        return out
    if isinstance(benchmark, pl.LazyFrame):
        raise ValueError("benchmark: collect the LazyFrame first")
    values = np.asarray(
        benchmark.to_numpy() if isinstance(benchmark, pl.Series) else benchmark, dtype=np.float64
    )
    if values.ndim != 1 or values.size != ts_a.size:
        raise ValueError(
            f"benchmark array must be 1-D with one return per equity point ({ts_a.size}), "
            f"got shape {values.shape}; pass a frame with timestamps to align it as-of"
        )
    if np.isnan(values).any():
        raise ValueError("benchmark returns hold NaN")
    return values


def _ns_str(ns: int) -> str:
    """ISO text of a ns timestamp, for error messages."""
    return str(np.datetime_as_string(np.datetime64(int(ns), "ns"), unit="auto"))


def compute_metrics(
    ts: npt.ArrayLike,
    equity: npt.ArrayLike,
    initial_cash: float,
    *,
    trade_net_pnl: npt.ArrayLike = (),
    fill_commission: npt.ArrayLike = (),
    fill_slippage: npt.ArrayLike = (),
    order_status: npt.ArrayLike = (),
    periods_per_year: float | None = None,
    risk_free: float = 0.0,
    tz: str | None = None,
    ddof: int = 1,
    var_level: float = 0.95,
    benchmark_returns: npt.ArrayLike | None = None,
    trade_net_return: npt.ArrayLike | None = None,
    trade_duration_ns: npt.ArrayLike | None = None,
    trade_periods_held: npt.ArrayLike | None = None,
    gross_exposure: npt.ArrayLike | None = None,
    net_exposure: npt.ArrayLike | None = None,
    fill_notional: npt.ArrayLike | None = None,
) -> dict[str, float | int]:
    """Compute the standard set of backtest metrics.

    Parameters
    ----------
    ts : array_like of int64, shape (T,)
        Timestamps (ns) of the equity points.
    equity : array_like of float, shape (T,)
        Equity at each timestamp.
    initial_cash : float
        Equity before the first timestamp.
    trade_net_pnl : array_like of float, optional
        Net P&L of each closed round trip.
    fill_commission, fill_slippage : array_like of float, optional
        Commission and slippage cost (currency, >= 0) of each fill.
    order_status : array_like of int, optional
        Status code of each order (6 = rejected).
    periods_per_year : float, optional
        Annualisation factor; inferred from ``ts`` when ``None``
        (see :func:`infer_periods_per_year`).
    risk_free : float, default 0.0
        Annual risk-free rate (Sharpe, Sortino, Omega, alpha and beta).
    tz : str, optional
        Time zone of ``ts``, used only to infer ``periods_per_year``.
    ddof : {1, 0}
        Delta degrees of freedom: 1 uses the sample estimators of volatility,
        Sharpe ratio, skewness, kurtosis and SQN, 0 the population ones.
    var_level : float, default 0.95
        Confidence level of the value at risk and conditional value at risk.
    benchmark_returns : array_like of float, shape (T,), optional
        Benchmark return of each period (see :func:`align_benchmark`); alpha
        and beta are NaN without it.
    trade_net_return, trade_duration_ns, trade_periods_held : array_like, optional
        Per-trade net return, holding time and periods held; each adds its
        key to the trade statistics (see :func:`trade_statistics`).
    gross_exposure, net_exposure : array_like of float, shape (T,), optional
        Exposure at each timestamp; ``gross_exposure`` adds the exposure
        statistics (see :func:`exposure_statistics`).
    fill_notional : array_like of float, optional
        ``|quantity * price|`` of each fill; adds ``turnover``.

    Returns
    -------
    dict of str to float or int
        In this order (``r`` the returns from :func:`simple_returns` with
        ``initial_cash``):

        - ``final_equity``: last equity (``initial_cash`` when ``T == 0``).
        - ``total_return``, ``cagr``, ``annual_volatility``, ``sharpe``,
          ``sortino``: see the functions of the same names.
        - ``calmar``: ``cagr / -max_drawdown``; NaN when there is no drawdown.
        - ``max_drawdown`` (negative fraction), ``max_drawdown_duration``
          (periods), both with ``initial_cash`` as the first peak.
        - ``omega`` (:func:`omega_ratio`), ``tail_ratio``, ``var`` and
          ``cvar`` (:func:`value_at_risk`, :func:`conditional_value_at_risk`
          at ``var_level``), ``skew`` (:func:`skewness`), ``kurtosis``
          (excess, :func:`kurtosis`), ``stability``, ``alpha``, ``beta``
          (:func:`alpha_beta`).
        - The trade statistics of :func:`trade_statistics`.
        - With ``gross_exposure``: the exposure statistics of
          :func:`exposure_statistics`.
        - ``total_commission``, ``total_slippage``, ``num_fills``,
          ``num_orders``, ``num_rejected``.
        - The conventions: ``periods_per_year`` (given or inferred),
          ``ddof``, ``risk_free``, ``var_level``.

    Raises
    ------
    ValueError
        If ``ddof`` is not 0 or 1, ``var_level`` is not in (0, 1),
        ``periods_per_year`` is not positive, or ``benchmark_returns`` does
        not have one value per equity point.
    """
    ddof = _check_ddof(ddof)
    var_level = _check_level(var_level)
    eq = _as_float_array(equity)
    if periods_per_year is not None and not periods_per_year > 0:
        raise ValueError(f"periods_per_year must be positive, got {periods_per_year!r}")
    ppy = (
        float(periods_per_year) if periods_per_year is not None else infer_periods_per_year(ts, tz)
    )
    returns = simple_returns(eq, initial_cash)
    commission = _as_float_array(fill_commission)
    status = np.asarray(order_status, dtype=np.int8)
    growth_rate = cagr(eq, ts, initial_cash)
    mdd = max_drawdown(eq, initial_cash)
    if benchmark_returns is None:
        alpha, beta = math.nan, math.nan
    else:
        bench = _as_float_array(benchmark_returns)
        if bench.shape != returns.shape:
            raise ValueError(
                f"benchmark_returns has {bench.size} values for {returns.size} equity points"
            )
        alpha, beta = alpha_beta(returns, bench, ppy, risk_free)
    out: dict[str, float | int] = {
        "final_equity": float(eq[-1]) if eq.size else float(initial_cash),
        "total_return": total_return(eq, initial_cash),
        "cagr": growth_rate,
        "annual_volatility": annual_volatility(returns, ppy, ddof),
        "sharpe": sharpe(returns, ppy, risk_free, ddof),
        "sortino": sortino(returns, ppy, risk_free),
        "calmar": growth_rate / -mdd if mdd < 0.0 else math.nan,
        "max_drawdown": mdd,
        "max_drawdown_duration": max_drawdown_duration(eq, initial_cash),
        "omega": omega_ratio(returns, ppy, risk_free),
        "tail_ratio": tail_ratio(returns),
        "var": value_at_risk(returns, var_level),
        "cvar": conditional_value_at_risk(returns, var_level),
        "skew": skewness(returns, ddof),
        "kurtosis": kurtosis(returns, ddof),
        "stability": stability(returns),
        "alpha": alpha,
        "beta": beta,
    }
    out.update(
        trade_statistics(
            trade_net_pnl,
            net_return=trade_net_return,
            duration_ns=trade_duration_ns,
            periods_held=trade_periods_held,
            ddof=ddof,
        )
    )
    if gross_exposure is not None:
        out.update(exposure_statistics(eq, gross_exposure, net_exposure))
    if fill_notional is not None:
        out["turnover"] = turnover(float(_as_float_array(fill_notional).sum()), eq, ppy)
    out.update(
        {
            "total_commission": float(commission.sum()),
            "total_slippage": float(_as_float_array(fill_slippage).sum()),
            "num_fills": int(commission.size),
            "num_orders": int(status.size),
            "num_rejected": int(np.count_nonzero(status == ORDER_STATUS_REJECTED)),
            "periods_per_year": ppy,
            "ddof": ddof,
            "risk_free": float(risk_free),
            "var_level": var_level,
        }
    )
    return out
