"""Static charts of a :class:`~mlbacktest.results.BacktestResult` (matplotlib).

matplotlib is imported when a chart is drawn, never at ``import mlbacktest``.
Figures are built with :class:`matplotlib.figure.Figure` directly, without
pyplot, so drawing works headless whatever the configured backend is.

:func:`report_data` computes every series the charts show, once;
the ``draw_*`` functions each draw one panel onto a given Axes.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, cast

import numpy as np
import polars as pl

from .io import period_returns, resolve_freq, wall_clock_ns
from .metrics import align_benchmark, sharpe, simple_returns

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

    from .result import BacktestResult

__all__ = [
    "PANELS",
    "ReportData",
    "benchmark_returns",
    "draw_drawdown",
    "draw_equity",
    "draw_exposure",
    "draw_monthly_returns",
    "draw_rolling_sharpe",
    "draw_trade_pnl",
    "plot",
    "report_data",
]

_NS_PER_DAY = 86_400 * 1_000_000_000
MIN_ROLLING_WINDOW: int = 5
"""Fewest periods a rolling Sharpe ratio is computed over."""
LOG_SCALE_RATIO: float = 5.0
"""The equity axis is logarithmic when the highest value shown is at least this
many times the lowest (a +400 % run), so early and late moves of the same size
look alike."""
CLIP_PERCENTILES: tuple[float, float] = (1.0, 99.0)
"""Percentiles of trade P&L the histogram is clipped to when outliers stretch it."""
CLIP_STRETCH: float = 3.0
"""The histogram is clipped when the full P&L range is more than this many times
the range between :data:`CLIP_PERCENTILES`."""
_NOTE_BOX: dict[str, Any] = {"facecolor": "white", "edgecolor": "none", "alpha": 0.85, "pad": 1.5}
X_MARGIN: float = 0.01
"""Padding of the time axis on each side, as a fraction of the run's span."""

# Colours (colour-blind-safe pairs where two series meet).
EQUITY_COLOR = "#1f4e79"
BENCHMARK_COLOR = "#8c8c8c"
DRAWDOWN_COLOR = "#c0392b"
SHARPE_COLOR = "#117a65"
GROSS_COLOR = "#1f4e79"
NET_COLOR = "#e67e22"
GAIN_COLOR = "#2e8b57"
LOSS_COLOR = "#c0392b"
MUTED_COLOR = "#555555"

_STYLE: dict[str, Any] = {
    "font.size": 9.5,
    "axes.titlesize": 11,
    "axes.titleweight": "bold",
    "axes.titlelocation": "left",
    "axes.labelsize": 9.5,
    "axes.labelcolor": "#333333",
    "axes.edgecolor": "#bbbbbb",
    "axes.spines.top": False,
    "axes.spines.right": False,
    "axes.grid": True,
    "grid.color": "#e6e6e6",
    "grid.linewidth": 0.8,
    "xtick.color": "#444444",
    "ytick.color": "#444444",
    "xtick.labelsize": 8.5,
    "ytick.labelsize": 8.5,
    "legend.fontsize": 8.5,
    "legend.frameon": False,
    "lines.linewidth": 1.4,
    "figure.facecolor": "white",
    "savefig.facecolor": "white",
}


@contextmanager
def style() -> Iterator[None]:
    """The charts' matplotlib settings, for the duration of a ``with`` block."""
    import matplotlib

    with matplotlib.rc_context(cast(Any, _STYLE)):
        yield


@dataclass(frozen=True)
class ReportData:
    """Every series the charts and the HTML report show.

    Attributes
    ----------
    dates : numpy.ndarray of datetime64[ns]
        Wall-clock time of each bar in the result's time zone.
    equity, drawdown, gross_leverage, net_leverage : numpy.ndarray
        Per bar, from :attr:`BacktestResult.equity`.
    benchmark : numpy.ndarray or None
        Value per bar of ``initial_cash`` held in the benchmark from the first bar.
    benchmark_returns : numpy.ndarray or None
        The benchmark's return over each bar (the first is 0).
    benchmark_name : str
    initial_cash : float
    tz : str or None
    period : {"bar", "D"}
        The period of :attr:`period_returns`: bars, or calendar days for
        intraday runs.
    period_dates, period_returns : numpy.ndarray
        Returns per period (datetime64[ns] labels, float64).
    period_per_year : float
        Periods per year of :attr:`period_returns`.
    rolling_window : int
        Periods in the rolling Sharpe window actually used (0: too few periods).
    requested_window : int
        The window asked for (or the default, half a year of periods).
    rolling_sharpe : numpy.ndarray
        Annualised Sharpe ratio of the window ending at each period (NaN before).
    sharpe : float
        Sharpe ratio of the whole run on :attr:`period_returns`.
    years : numpy.ndarray of int
        Calendar years of the monthly table, ascending.
    monthly : numpy.ndarray, shape (len(years), 12)
        Return of each calendar month (NaN outside the run); the first month
        is measured against ``initial_cash``.
    yearly : numpy.ndarray, shape (len(years),)
        Return of each calendar year.
    trade_pnl : numpy.ndarray
        Net P&L of each closed trade.
    """

    dates: np.ndarray
    equity: np.ndarray
    drawdown: np.ndarray
    gross_leverage: np.ndarray
    net_leverage: np.ndarray
    benchmark: np.ndarray | None
    benchmark_returns: np.ndarray | None
    benchmark_name: str
    initial_cash: float
    tz: str | None
    period: str
    period_dates: np.ndarray
    period_returns: np.ndarray
    period_per_year: float
    rolling_window: int
    requested_window: int
    rolling_sharpe: np.ndarray
    sharpe: float
    years: np.ndarray
    monthly: np.ndarray
    yearly: np.ndarray
    trade_pnl: np.ndarray

    @property
    def empty(self) -> bool:
        """True when the run recorded no bar."""
        return self.dates.size == 0


def _calendar_returns(
    wall: np.ndarray, equity: np.ndarray, initial: float, unit: str
) -> tuple[np.ndarray, np.ndarray]:
    """(period number, return) per calendar month (``unit="M"``) or year (``"Y"``)."""
    key = wall.view("M8[ns]").astype(f"M8[{unit}]").astype(np.int64)
    if key.size == 0:
        return key, np.empty(0)
    last = np.flatnonzero(np.append(key[1:] != key[:-1], True))
    return key[last], simple_returns(equity[last], initial)


def _rolling_sharpe(x: np.ndarray, window: int, ppy: float, risk_free: float) -> np.ndarray:
    """Annualised Sharpe ratio over each trailing ``window`` of returns ``x``."""
    out = np.full(x.size, np.nan)
    if window < 2 or x.size < window:
        return out
    excess = x - ((1.0 + risk_free) ** (1.0 / ppy) - 1.0)
    windows = np.lib.stride_tricks.sliding_window_view(excess, window)
    mean = windows.mean(axis=1)
    std = windows.std(axis=1, ddof=1)
    ratio = np.full(mean.size, np.nan)
    np.divide(mean, std, out=ratio, where=std > 1e-14 * np.maximum(np.abs(mean), 1e-300))
    out[window - 1 :] = ratio * math.sqrt(ppy)
    return out


def benchmark_returns(result: BacktestResult, benchmark: Any) -> np.ndarray:
    """Benchmark return of each bar of ``result``.

    ``benchmark`` is what :func:`~mlbacktest.results.metrics.align_benchmark`
    accepts (a polars frame with ``timestamp`` and ``returns``, ``price`` or
    ``close``, aligned as of each bar; or one return per bar), or a pandas
    Series of returns with a DatetimeIndex (quantstats' convention).
    """
    index = getattr(benchmark, "index", None)
    if index is not None and hasattr(benchmark, "to_numpy"):  # a pandas Series
        if not hasattr(index, "tz"):
            raise ValueError("benchmark: a pandas Series needs a DatetimeIndex")
        benchmark = pl.DataFrame(
            {
                "timestamp": pl.Series(index.as_unit("ns")),
                "returns": np.asarray(benchmark.to_numpy(dtype="float64", na_value=np.nan)),
            }
        )
    return align_benchmark(benchmark, result._equity["ts"], result.tz)


def report_data(
    result: BacktestResult,
    benchmark: Any = None,
    *,
    benchmark_name: str | None = None,
    rolling_window: int | None = None,
) -> ReportData:
    """Compute the series shown by :func:`plot` and the HTML report.

    Parameters
    ----------
    result : BacktestResult
    benchmark : optional
        A polars DataFrame with ``timestamp`` and one of ``returns``,
        ``price`` or ``close`` (aligned as of each bar, see
        :func:`~mlbacktest.results.metrics.align_benchmark`), a pandas Series
        of returns with a DatetimeIndex, or an array with one return per bar.
        Shown as the equity of ``initial_cash`` invested in it at the first bar.
        When ``None``, the benchmark the result was built with, if any.
    benchmark_name : str, optional
        Legend label; the Series' name or ``"Benchmark"`` by default.
    rolling_window : int, optional
        Periods of the rolling Sharpe ratio; half a year by default (126
        daily periods). Shortened to half the run when the run is shorter.

    Returns
    -------
    ReportData
    """
    eq = result.equity
    wall = wall_clock_ns(result)
    equity = eq["equity"].to_numpy()
    bench_returns: np.ndarray | None
    if benchmark is not None:
        bench_returns = benchmark_returns(result, benchmark)
    else:
        bench_returns = getattr(result, "_benchmark_returns", None)
    bench = None if bench_returns is None else result.initial_cash * np.cumprod(1.0 + bench_returns)
    if benchmark_name is None:
        name = getattr(benchmark, "name", None)  # a pandas Series' name, unless generic
        generic = not isinstance(name, str) or name in ("", "returns", "close", "price")
        benchmark_name = "Benchmark" if generic else str(name)

    period = resolve_freq(result, "auto")
    labels, rets, _ = period_returns(result, period)
    ppy = result.periods_per_year
    if period == "D" and wall.size:
        _, bars_per_day = np.unique(wall // _NS_PER_DAY, return_counts=True)
        ppy = ppy / float(np.median(bars_per_day))
    requested = rolling_window if rolling_window is not None else max(round(ppy / 2), 2)
    if not isinstance(requested, (int, np.integer)) or isinstance(requested, bool):
        raise ValueError(f"rolling_window must be a whole number, got {requested!r}")
    if requested < 2:
        raise ValueError(f"rolling_window must be at least 2, got {requested}")
    window = int(requested)
    if rets.size < window:
        window = rets.size // 2 if rets.size // 2 >= MIN_ROLLING_WINDOW else 0

    months, month_rets = _calendar_returns(wall, equity, result.initial_cash, "M")
    year_keys, year_rets = _calendar_returns(wall, equity, result.initial_cash, "Y")
    if year_keys.size:
        # Every year from the first to the last (a run may skip a whole year).
        first = int(year_keys[0]) + 1970
        years = np.arange(first, int(year_keys[-1]) + 1971)
        monthly = np.full((years.size, 12), np.nan)
        monthly[months // 12 + 1970 - first, months % 12] = month_rets
        yearly = np.full(years.size, np.nan)
        yearly[year_keys + 1970 - first] = year_rets
    else:
        years, monthly, yearly = np.empty(0, np.int64), np.empty((0, 12)), np.empty(0)

    return ReportData(
        dates=wall.view("M8[ns]"),
        equity=equity,
        drawdown=eq["drawdown"].to_numpy(),
        gross_leverage=eq["gross_leverage"].to_numpy(),
        net_leverage=eq["net_leverage"].to_numpy(),
        benchmark=bench,
        benchmark_returns=bench_returns,
        benchmark_name=benchmark_name,
        initial_cash=result.initial_cash,
        tz=result.tz,
        period=period,
        period_dates=labels.view("M8[ns]"),
        period_returns=rets,
        period_per_year=float(ppy),
        rolling_window=window,
        requested_window=int(requested),
        rolling_sharpe=_rolling_sharpe(rets, window, ppy, result.risk_free),
        sharpe=sharpe(rets, ppy, result.risk_free),
        years=years,
        monthly=monthly,
        yearly=yearly,
        trade_pnl=result.trades["net_pnl"].to_numpy(),
    )


# -- formatting -----------------------------------------------------------------------


def money(x: float, _pos: Any = None) -> str:
    """Compact currency amount: ``1.25M``, ``-350k``, ``12.5``."""
    ax = abs(x)
    for div, suffix in ((1e12, "T"), (1e9, "B"), (1e6, "M"), (1e3, "k")):
        if ax >= div:
            return f"{x / div:,.4g}{suffix}"
    return f"{x:,.4g}"


def _amount(x: float) -> str:
    """A currency amount for text: compact from 10,000, else with cents."""
    return money(x) if abs(x) >= 10_000 else f"{x:,.2f}"


def _date_axis(ax: Axes, data: ReportData) -> None:
    """Date ticks over the run's span plus :data:`X_MARGIN`: the same range in every panel,
    so the first and last year ticks every time panel shows are the same."""
    import matplotlib.dates as mdates

    first, last = data.dates[0], data.dates[-1]
    pad = np.timedelta64(max(int(X_MARGIN * float((last - first).astype(np.int64))),
                             _NS_PER_DAY // 2), "ns")
    ax.set_xlim(first - pad, last + pad)

    locator = mdates.AutoDateLocator(minticks=4, maxticks=10)
    ax.xaxis.set_major_locator(locator)
    ax.xaxis.set_major_formatter(mdates.ConciseDateFormatter(locator, show_offset=True))
    if data.tz is not None:
        ax.set_xlabel(f"Time zone: {data.tz}", fontsize=8, color=MUTED_COLOR, loc="left")


def _no_data(ax: Axes, message: str) -> None:
    ax.text(
        0.5, 0.5, message, transform=ax.transAxes, ha="center", va="center",
        fontsize=10, color=MUTED_COLOR,
    )
    ax.set_xticks([])
    ax.set_yticks([])
    ax.grid(False)
    for spine in ax.spines.values():
        spine.set_visible(False)


def _legend(ax: Axes) -> None:
    """Legend in one row above the top-right corner of the axes, clear of the data."""
    ax.legend(loc="lower right", bbox_to_anchor=(1.0, 1.0), ncols=4, borderaxespad=0.2,
              handlelength=1.8, columnspacing=1.2)


def _pct_text(v: float) -> str:
    """A return as text: one decimal, two for small values (no ``-0.0%``)."""
    return f"{v:.2%}" if abs(v) < 0.001 else f"{v:.1%}"


def _percent_axis(ax: Axes, decimals: int | None = None) -> None:
    from matplotlib.ticker import PercentFormatter

    ax.yaxis.set_major_formatter(PercentFormatter(1.0, decimals=decimals))


# -- panels ---------------------------------------------------------------------------


def draw_equity(ax: Axes, data: ReportData) -> None:
    """Equity curve (and the rebased benchmark) against the initial cash."""
    if data.empty:
        _no_data(ax, "No bars recorded")
        return
    from matplotlib.ticker import FuncFormatter

    ax.plot(data.dates, data.equity, color=EQUITY_COLOR, label="Strategy", zorder=3)
    if data.benchmark is not None:
        ax.plot(data.dates, data.benchmark, color=BENCHMARK_COLOR, lw=1.2, zorder=2,
                label=data.benchmark_name)
    ax.axhline(data.initial_cash, color=MUTED_COLOR, lw=0.9, ls=":", label="Initial cash",
               zorder=1)
    shown = np.concatenate([data.equity, [data.initial_cash],
                            data.benchmark if data.benchmark is not None else []])
    shown = shown[np.isfinite(shown)]
    if shown.min() > 0.0 and shown.max() >= LOG_SCALE_RATIO * shown.min():
        from matplotlib.ticker import LogLocator, NullFormatter

        ax.set_yscale("log")
        ax.yaxis.set_major_locator(LogLocator(base=10.0, subs=(1.0, 2.0, 5.0)))
        ax.yaxis.set_minor_formatter(NullFormatter())
        ax.set_ylabel("Equity (log scale)")
    else:
        ax.set_ylabel("Equity")
    ax.yaxis.set_major_formatter(FuncFormatter(money))
    _legend(ax)
    _date_axis(ax, data)


def draw_drawdown(ax: Axes, data: ReportData) -> None:
    """Underwater curve: equity below its running peak, in percent."""
    if data.empty:
        _no_data(ax, "No bars recorded")
        return
    dd = np.nan_to_num(data.drawdown, nan=0.0)
    ax.fill_between(data.dates, dd, 0.0, color=DRAWDOWN_COLOR, alpha=0.3, lw=0, step=None)
    ax.plot(data.dates, dd, color=DRAWDOWN_COLOR, lw=1.0)
    worst = int(np.argmin(dd))
    if dd[worst] < 0:
        ax.plot(data.dates[worst], dd[worst], "o", color=DRAWDOWN_COLOR, ms=4)
        late = worst > 0.85 * (dd.size - 1)  # label to the left near the right edge
        ax.annotate(
            f"max {dd[worst]:.1%}", (data.dates[worst], dd[worst]), xytext=(-6 if late else 6, -2),
            textcoords="offset points", fontsize=8.5, color=DRAWDOWN_COLOR, va="top",
            ha="right" if late else "left",
        )
    low = float(dd.min())
    ax.set_ylim(low * 1.15 if low < 0 else -0.01, 0.0)
    ax.set_ylabel("Drawdown")
    _percent_axis(ax, None)
    _date_axis(ax, data)


def draw_monthly_returns(ax: Axes, data: ReportData) -> None:
    """Heat map of calendar-month returns, with each year's return on the right."""
    if data.years.size == 0:
        _no_data(ax, "No bars recorded")
        return
    import matplotlib

    m = data.monthly
    finite = m[np.isfinite(m)]
    # Colour scale symmetric around 0; at least +-0.5 % so tiny returns stay pale.
    vmax = max(float(np.abs(finite).max()) if finite.size else 0.0, 0.005)
    cmap = matplotlib.colormaps["RdYlGn"].with_extremes(bad="#f3f3f3")
    n_years = data.years.size
    ax.pcolormesh(
        np.arange(13) - 0.5, np.arange(n_years + 1) - 0.5, np.ma.masked_invalid(m),
        cmap=cmap, vmin=-vmax, vmax=vmax, edgecolors="white", linewidth=2.0,
    )
    font = 8.5 if n_years <= 12 else 7.5
    for i in range(n_years):
        for j in range(12):
            v = m[i, j]
            if np.isfinite(v):
                ax.text(j, i, _pct_text(v), ha="center", va="center", fontsize=font,
                        color="white" if abs(v) > 0.65 * vmax else "#1a1a1a")
        y = data.yearly[i]
        if np.isfinite(y):
            ax.text(12.75, i, _pct_text(y), ha="center", va="center", fontsize=font,
                    fontweight="bold", color=GAIN_COLOR if y >= 0 else LOSS_COLOR)
    months = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"]
    ax.set_xticks([*range(12), 12.75], [*months, "Year"])
    ax.set_yticks(range(n_years), [str(y) for y in data.years])
    ax.set_xlim(-0.5, 13.4)
    ax.set_ylim(n_years - 0.5, -0.5)
    ax.tick_params(length=0)
    ax.xaxis.tick_top()
    ax.grid(False)
    for spine in ax.spines.values():
        spine.set_visible(False)


def draw_rolling_sharpe(ax: Axes, data: ReportData) -> None:
    """Annualised Sharpe ratio over a trailing window, against the whole run's."""
    if data.rolling_window == 0:
        _no_data(ax, f"Too few periods for a rolling Sharpe ratio ({data.period_returns.size})")
        return
    unit = "days" if data.period == "D" else "bars"
    label = f"{data.rolling_window}-{unit[:-1]} rolling"
    ax.axhline(0.0, color=MUTED_COLOR, lw=0.8)
    if math.isfinite(data.sharpe):
        ax.axhline(data.sharpe, color=SHARPE_COLOR, lw=1.0, ls="--",
                   label=f"Full period ({data.sharpe:.2f})")
    ax.plot(data.period_dates, data.rolling_sharpe, color=SHARPE_COLOR, label=label)
    ax.set_ylabel("Sharpe ratio (annualised)")
    _legend(ax)
    if data.rolling_window != data.requested_window:
        ax.text(
            0.01, 0.96,
            f"window shortened from {data.requested_window} {unit}: the run is shorter",
            transform=ax.transAxes, ha="left", va="top", fontsize=8, color=MUTED_COLOR,
        )
    if not np.isfinite(data.rolling_sharpe).any():
        ax.text(0.5, 0.5, "Undefined: the returns do not vary within any window",
                transform=ax.transAxes, ha="center", va="center", fontsize=10, color=MUTED_COLOR)
    _date_axis(ax, data)


def draw_exposure(ax: Axes, data: ReportData) -> None:
    """Gross and net leverage (exposure over equity)."""
    if data.empty:
        _no_data(ax, "No bars recorded")
        return
    from matplotlib.ticker import FuncFormatter

    ax.axhline(0.0, color=MUTED_COLOR, lw=0.8)
    # Gross wide and pale underneath, net thin and dashed on top: both stay visible
    # where they coincide (a long-only book).
    ax.plot(data.dates, data.gross_leverage, color=GROSS_COLOR, lw=3.2, alpha=0.45,
            solid_capstyle="butt", zorder=2, label="Gross")
    ax.plot(data.dates, data.net_leverage, color=NET_COLOR, lw=1.3, ls=(0, (4, 2)), zorder=3,
            label="Net")
    both = np.isfinite(data.gross_leverage) & np.isfinite(data.net_leverage)
    gross, net = data.gross_leverage[both], data.net_leverage[both]
    if gross.size and gross.max() > 0.0 and np.array_equal(gross, net):
        # Bottom left: a long-only book's lines are above zero, away from it.
        ax.text(0.01, 0.05, "Net equals gross: a long-only book", transform=ax.transAxes,
                ha="left", va="bottom", fontsize=8, color=MUTED_COLOR, bbox=_NOTE_BOX)
    ax.yaxis.set_major_formatter(FuncFormatter(lambda x, _p: f"{x:.2g}\u00d7"))
    ax.set_ylabel("Exposure / equity")
    finite = np.concatenate([data.gross_leverage, data.net_leverage])
    finite = finite[np.isfinite(finite)]
    if finite.size:
        lo, hi = min(float(finite.min()), 0.0), max(float(finite.max()), 0.0)
        pad = 0.08 * (hi - lo) if hi > lo else 0.1
        ax.set_ylim(lo - pad, hi + pad)
    _legend(ax)
    _date_axis(ax, data)


def _clip_range(pnl: np.ndarray) -> tuple[float, float] | None:
    """P&L range the histogram shows when a few outliers would squeeze it, else None.

    The range between :data:`CLIP_PERCENTILES` (widened to take in 0), when the
    full range is more than :data:`CLIP_STRETCH` times as wide.
    """
    lo, hi = float(pnl.min()), float(pnl.max())
    p_lo, p_hi = (float(v) for v in np.percentile(pnl, CLIP_PERCENTILES))
    p_lo, p_hi = min(p_lo, 0.0) if lo < 0.0 else p_lo, max(p_hi, 0.0) if hi > 0.0 else p_hi
    if p_hi > p_lo and hi - lo > CLIP_STRETCH * (p_hi - p_lo):
        return p_lo, p_hi
    return None


def draw_trade_pnl(ax: Axes, data: ReportData) -> None:
    """Histogram of the net P&L of closed trades; losses red, gains green.

    When a few outliers would squeeze the bulk of the trades into a few bars,
    the axis is clipped to the 1st to 99th percentile and a note says how many
    trades lie beyond it on each side and how far.
    """
    pnl = data.trade_pnl[np.isfinite(data.trade_pnl)]
    if pnl.size == 0:
        _no_data(ax, "No closed trades")
        return
    from matplotlib.ticker import FuncFormatter, MaxNLocator

    clip = _clip_range(pnl)
    shown = pnl if clip is None else pnl[(pnl >= clip[0]) & (pnl <= clip[1])]
    lo, hi = float(shown.min()), float(shown.max())
    if lo == hi:
        lo, hi = lo - 0.5 * max(abs(lo), 1.0), hi + 0.5 * max(abs(hi), 1.0)
    n_bins = int(min(60, max(10, round(math.sqrt(shown.size) * 1.5))))
    # Bin edges that put 0 on an edge, so no bin mixes gains and losses.
    width = (hi - lo) / n_bins
    start = math.floor(lo / width) * width if lo < 0 < hi else lo
    edges = start + width * np.arange(int(math.ceil((hi - start) / width)) + 1)
    if edges[-1] < hi:
        edges = np.append(edges, edges[-1] + width)
    losing, _, _ = ax.hist(shown[shown <= 0], bins=edges.tolist(), color=LOSS_COLOR,
                           alpha=0.85, edgecolor="white", linewidth=0.6, label="Losing")
    winning, _, _ = ax.hist(shown[shown > 0], bins=edges.tolist(), color=GAIN_COLOR,
                            alpha=0.85, edgecolor="white", linewidth=0.6, label="Winning")
    # Headroom for the statistics lines above the tallest bar.
    top = max(float(np.max(losing)), float(np.max(winning)), 1.0)
    ax.set_ylim(0, (1.18 if clip is None else 1.32) * top)
    ax.set_xlim(float(edges[0]) - 0.5 * width, float(edges[-1]) + 0.5 * width)
    mean = float(pnl.mean())
    ax.axvline(0.0, color="#333333", lw=0.8)
    ax.axvline(mean, color=EQUITY_COLOR, lw=1.2, ls="--", label=f"Mean {_amount(mean)}")
    ax.xaxis.set_major_formatter(FuncFormatter(money))
    ax.yaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_xlabel("Net P&L per trade")
    ax.set_ylabel("Trades")
    wins = float((pnl > 0).mean())
    median = _amount(float(np.median(pnl)))
    ax.text(
        0.01, 0.96,
        f"{pnl.size:,d} trades \u00b7 {wins:.0%} winning \u00b7 median {median}",
        transform=ax.transAxes, ha="left", va="top", fontsize=8.5, color=MUTED_COLOR,
    )
    if clip is not None:
        ax.text(0.01, 0.86, _clip_note(pnl, clip), transform=ax.transAxes, ha="left", va="top",
                fontsize=8, color=MUTED_COLOR, bbox=_NOTE_BOX)
    _legend(ax)


def _clip_note(pnl: np.ndarray, clip: tuple[float, float]) -> str:
    """What the clipped histogram leaves out: trades below and above the range shown."""
    below, above = pnl[pnl < clip[0]], pnl[pnl > clip[1]]
    parts = []
    if below.size:
        parts.append(f"{below.size:,d} below {_amount(clip[0])} (lowest {_amount(below.min())})")
    if above.size:
        parts.append(f"{above.size:,d} above {_amount(clip[1])} (highest {_amount(above.max())})")
    lo_pct, hi_pct = CLIP_PERCENTILES
    return (f"Axis clipped to P&L percentiles {lo_pct:g} to {hi_pct:g}; not shown: "
            + ", ".join(parts))


Drawer = Callable[["Axes", ReportData], None]

PANELS: tuple[tuple[str, str, Drawer], ...] = (
    ("equity", "Equity", draw_equity),
    ("drawdown", "Underwater (drawdown)", draw_drawdown),
    ("monthly-returns", "Monthly returns", draw_monthly_returns),
    ("rolling-sharpe", "Rolling Sharpe ratio", draw_rolling_sharpe),
    ("exposure", "Exposure", draw_exposure),
    ("trade-pnl", "Trade P&L distribution", draw_trade_pnl),
)
"""(id, title, draw function) of each panel, in report order."""


def panel_height(panel_id: str, data: ReportData) -> float:
    """Height in inches of a panel ``panel_id`` drawn 10 inches wide."""
    if panel_id == "monthly-returns":
        return 0.9 + 0.32 * max(data.years.size, 1)
    return {"equity": 3.8, "drawdown": 2.4, "trade-pnl": 3.0}.get(panel_id, 2.6)


def plot(
    result: BacktestResult,
    benchmark: Any = None,
    *,
    benchmark_name: str | None = None,
    rolling_window: int | None = None,
    data: ReportData | None = None,
) -> Figure:
    """One matplotlib Figure with every panel of the report.

    Parameters
    ----------
    result : BacktestResult
    benchmark, benchmark_name, rolling_window
        As for :func:`report_data`.
    data : ReportData, optional
        Precomputed series (then the other arguments are ignored).

    Returns
    -------
    matplotlib.figure.Figure
        Equity, underwater curve, monthly returns, rolling Sharpe ratio,
        exposure and trade P&L, top to bottom. Save it with
        ``fig.savefig("run.png")``; it is not registered with pyplot.
    """
    from matplotlib.figure import Figure

    if data is None:
        data = report_data(result, benchmark, benchmark_name=benchmark_name,
                           rolling_window=rolling_window)
    heights = [panel_height(pid, data) for pid, _, _ in PANELS]
    with style():
        fig = Figure(figsize=(11, sum(heights) + 0.6 * len(heights)), layout="constrained")
        axes = fig.subplots(len(PANELS), 1, gridspec_kw={"height_ratios": heights})
        for ax, (pid, title, draw) in zip(axes, PANELS, strict=True):
            draw(ax, data)
            ax.set_title(title, pad=18 if pid == "monthly-returns" else 6)
    return fig


# Margins (inches: left, right, top, bottom) of a panel drawn alone. Fixed margins
# render in one pass (a layout engine draws twice); the tick labels are short.
_MARGINS: dict[str, tuple[float, float, float, float]] = {
    "monthly-returns": (0.7, 0.15, 0.35, 0.1),
    "trade-pnl": (0.85, 0.2, 0.35, 0.5),
}
_DEFAULT_MARGINS = (0.85, 0.2, 0.35, 0.55)


def render_png(
    draw: Drawer, data: ReportData, height: float, dpi: int = 110, panel_id: str = ""
) -> bytes:
    """PNG bytes of one panel drawn 10 inches wide and ``height`` inches high."""
    import io

    from matplotlib.figure import Figure

    left, right, top, bottom = _MARGINS.get(panel_id, _DEFAULT_MARGINS)
    if panel_id not in _MARGINS and data.tz is None and data.period == "bar":
        bottom = 0.4  # no time-zone note and no date offset below the axis
    width = 10.0
    with style():
        fig = Figure(figsize=(width, height))
        fig.subplots_adjust(left=left / width, right=1 - right / width,
                            top=1 - top / height, bottom=bottom / height)
        draw(fig.add_subplot(), data)
        buf = io.BytesIO()
        fig.savefig(buf, format="png", dpi=dpi)
    return buf.getvalue()

