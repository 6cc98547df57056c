"""Performance metrics over plain numpy arrays.

Conventions shared by every function here
------------------------------------------
- *Returns* are simple per-period returns, ``r_t = E_t / E_{t-1} - 1``; the first
  period is measured against the initial capital, so ``T`` equity points give
  ``T`` returns and ``prod(1 + r) = E_{T-1} / initial``
  (see :func:`simple_returns`).
- *Annualisation* uses a number of periods per year ``ppy``: volatility scales by
  ``sqrt(ppy)``, and the length of a backtest in years is ``len(returns) / ppy``
  (not elapsed calendar time), so CAGR, volatility and Sharpe ratio all rest on
  the same clock. :func:`infer_periods_per_year` guesses ``ppy`` from timestamps.
- The *annual* risk-free rate ``rf`` becomes a per-period rate by compounding,
  ``(1 + rf) ** (1 / ppy) - 1``.
- Degenerate inputs never warn or raise: a quantity that is undefined (a ratio
  with a zero or undefined denominator, a standard deviation of fewer than
  ``ddof + 1`` values, an empty series) is ``NaN``; a quantity that is merely
  empty-valued (the drawdown of a constant series, its duration) is ``0``. Each
  function's docstring states which.
"""

from __future__ import annotations

import math

import numpy as np
import numpy.typing as npt

__all__ = [
    "annual_volatility",
    "cagr",
    "compute_metrics",
    "drawdown",
    "infer_periods_per_year",
    "max_drawdown",
    "max_drawdown_duration",
    "sharpe",
    "simple_returns",
    "sortino",
    "total_return",
]

DEFAULT_PERIODS_PER_YEAR: float = 252.0
"""Trading days per year; the fallback of :func:`infer_periods_per_year`."""

ORDER_STATUS_REJECTED: int = 6
"""Status code of a rejected order in the engine's order records."""

_NS_PER_DAY: int = 86_400 * 1_000_000_000

# (upper bound on the median bar spacing in days, periods per year), checked in order.
_SPACING_RULES: tuple[tuple[float, float], ...] = (
    (4.0, 252.0),  # daily bars (weekend gaps are 3 days)
    (10.0, 52.0),  # weekly
    (45.0, 12.0),  # monthly
    (135.0, 4.0),  # quarterly
    (math.inf, 1.0),  # yearly or sparser
)
_INTRADAY_MAX_SPACING_DAYS: float = 0.75


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
    """Guess how many bars make a year from the spacing of timestamps.

    Parameters
    ----------
    ts_ns : array_like of int64
        Timestamps in ns since the epoch (duplicates and order do not matter).
    tz : str, optional
        Time zone in which calendar days are counted for intraday data; the
        timestamps are then UTC instants. ``None`` counts days on the naive
        wall-clock values.

    Returns
    -------
    float
        From the median spacing ``d`` between distinct timestamps:

        - ``d < 0.75`` day (intraday): ``252 * m`` where ``m`` is the median
          number of distinct timestamps per calendar day;
        - ``d < 4`` days: 252 (daily); ``d < 10``: 52 (weekly);
          ``d < 45``: 12 (monthly); ``d < 135``: 4 (quarterly); else 1;
        - fewer than two distinct timestamps: 252.

    Notes
    -----
    The rules assume an exchange calendar of 252 sessions a year. For markets
    that trade every day (crypto: 365) pass ``periods_per_year`` explicitly.

    Examples
    --------
    >>> day = 86_400 * 10**9
    >>> infer_periods_per_year([0, 7 * day, 14 * day])
    52.0
    """
    ts = np.unique(np.asarray(ts_ns, dtype=np.int64))
    if ts.size < 2:
        return DEFAULT_PERIODS_PER_YEAR
    spacing_days = float(np.median(np.diff(ts))) / _NS_PER_DAY
    if spacing_days < _INTRADAY_MAX_SPACING_DAYS:
        _, bars_per_day = np.unique(_calendar_days(ts, tz), return_counts=True)
        return DEFAULT_PERIODS_PER_YEAR * float(np.median(bars_per_day))
    return next(ppy for bound, ppy in _SPACING_RULES if spacing_days < bound)


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


def cagr(equity: npt.ArrayLike, periods_per_year: float, initial: float | None = None) -> float:
    """Compound annual growth rate.

    Parameters
    ----------
    equity : array_like of float, shape (T,)
        Equity at the end of each period.
    periods_per_year : float
        Periods per year; the backtest lasts ``n / periods_per_year`` years,
        where ``n`` is the number of returns (``T`` with ``initial``, else
        ``T - 1``). This is the clock used by every annualised metric here,
        rather than elapsed calendar time.
    initial : float, optional
        Equity before the first period; defaults to ``equity[0]``.

    Returns
    -------
    float
        ``(1 + total_return) ** (1 / years) - 1``; -1 when the final equity is
        zero or negative (everything was lost); NaN when there are no returns
        or the starting equity is not positive.
    """
    eq = _as_float_array(equity)
    n_returns = eq.size if initial is not None else eq.size - 1
    growth = 1.0 + total_return(eq, initial)
    if n_returns <= 0 or math.isnan(growth):
        return math.nan
    if growth <= 0.0:
        return -1.0
    return float(growth ** (periods_per_year / n_returns)) - 1.0


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


def _profit_factor(net_pnl: np.ndarray) -> float:
    """Gross profit over gross loss of trades; NaN without losing trades."""
    loss = -float(net_pnl[net_pnl < 0.0].sum())
    return float(net_pnl[net_pnl > 0.0].sum()) / loss if loss > 0.0 else math.nan


def _mean_or_nan(x: np.ndarray) -> float:
    """Mean of ``x``; NaN for an empty array."""
    return float(x.mean()) if x.size else math.nan


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
        Status code of each order (3 = rejected).
    periods_per_year : float, optional
        Annualisation factor; inferred from ``ts`` when ``None``
        (see :func:`infer_periods_per_year`).
    risk_free : float, default 0.0
        Annual risk-free rate for the Sharpe and Sortino ratios.
    tz : str, optional
        Time zone of ``ts``, used only to infer ``periods_per_year``.

    Returns
    -------
    dict of str to float or int
        In this order:

        - ``final_equity``: last equity (``initial_cash`` when ``T == 0``).
        - ``total_return``, ``cagr``, ``annual_volatility``, ``sharpe``,
          ``sortino``: see the functions of the same names, applied to the
          returns from :func:`simple_returns` with ``initial_cash``.
        - ``max_drawdown`` (negative fraction), ``max_drawdown_duration``
          (periods), both with ``initial_cash`` as the first peak.
        - ``calmar``: ``cagr / -max_drawdown``; NaN when there is no drawdown.
        - ``num_trades``; ``win_rate``: share of trades with ``net_pnl > 0``;
          ``profit_factor``: sum of winning over minus sum of losing net P&L
          (NaN without a losing trade); ``avg_trade_pnl``: mean net P&L. The
          last three are NaN when there are no trades.
        - ``total_commission``, ``total_slippage``, ``num_fills``,
          ``num_orders``, ``num_rejected``.
        - ``periods_per_year`` (given or inferred), ``risk_free``.
    """
    eq = _as_float_array(equity)
    ppy = (
        float(periods_per_year) if periods_per_year is not None else infer_periods_per_year(ts, tz)
    )
    returns = simple_returns(eq, initial_cash)
    pnl = _as_float_array(trade_net_pnl)
    commission = _as_float_array(fill_commission)
    status = np.asarray(order_status, dtype=np.int8)
    growth_rate = cagr(eq, ppy, initial_cash)
    mdd = max_drawdown(eq, initial_cash)
    return {
        "final_equity": float(eq[-1]) if eq.size else float(initial_cash),
        "total_return": total_return(eq, initial_cash),
        "cagr": growth_rate,
        "annual_volatility": annual_volatility(returns, ppy),
        "sharpe": sharpe(returns, ppy, risk_free),
        "sortino": sortino(returns, ppy, risk_free),
        "max_drawdown": mdd,
        "max_drawdown_duration": max_drawdown_duration(eq, initial_cash),
        "calmar": growth_rate / -mdd if mdd < 0.0 else math.nan,
        "num_trades": int(pnl.size),
        "win_rate": _mean_or_nan((pnl > 0.0).astype(np.float64)),
        "profit_factor": _profit_factor(pnl) if pnl.size else math.nan,
        "avg_trade_pnl": _mean_or_nan(pnl),
        "total_commission": float(commission.sum()),
        "total_slippage": float(_as_float_array(fill_slippage).sum()),
        "num_fills": int(commission.size),
        "num_orders": int(status.size),
        "num_rejected": int(np.count_nonzero(status == ORDER_STATUS_REJECTED)),
        "periods_per_year": ppy,
        "risk_free": float(risk_free),
    }
