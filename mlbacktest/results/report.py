"""A self-contained HTML tear sheet of a :class:`~mlbacktest.results.BacktestResult`.

The report is one HTML file with inline CSS and charts embedded as base64
PNG images: it opens offline, can be mailed or archived, and loads nothing
from the network. Sections (each a ``<section>`` with an ``id`` and an
``<h2>`` heading), in order:

``summary``
    The run (period, bars, assets, time zone, capital) and headline figures.
``equity``
    Equity against the initial cash and, when given, a rebased benchmark.
``drawdown``
    The underwater curve: equity below its running peak.
``monthly-returns``
    Calendar-month returns as a heat map, with each year's return.
``rolling-sharpe``
    Annualised Sharpe ratio over a trailing window (half a year by default).
``exposure``
    Gross and net leverage (exposure over equity).
``trade-pnl``
    Distribution of the net P&L of closed trades.
``metrics``
    Every entry of :attr:`BacktestResult.metrics`, with the benchmark's
    where it has one.
``config``
    The configuration of the run, when the result has one.

matplotlib is imported only when a report or plot is made.
"""

from __future__ import annotations

import base64
import datetime as dt
import html
import math
import os
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

import numpy as np

import mlbacktest.results.metrics as _metrics
from mlbacktest._version import __version__

from .io import REPORT_GENERATOR, check_report_path, write_file_atomically
from .metrics import FORMATTERS, format_metric
from .plots import PANELS, ReportData, panel_height, render_png, report_data

if TYPE_CHECKING:

    from .result import BacktestResult

__all__ = ["SECTION_IDS", "write_report"]

SECTION_IDS: tuple[str, ...] = (
    "summary",
    *(pid for pid, _, _ in PANELS),
    "metrics",
    "config",
)
"""``id`` of each section of the report, in order (``config`` only when there is one)."""

_DESCRIPTIONS: dict[str, str] = {
    "equity": "Account equity (cash plus positions at market) at each bar.",
    "drawdown": "Equity below its running peak; the initial cash counts as the first peak.",
    "monthly-returns": (
        "Return of each calendar month{tz} from the last equity of the previous month "
        "(the initial cash for the first); the right column is the calendar year's. "
        "Partial first and last months are included."
    ),
    "rolling-sharpe": (
        "Annualised Sharpe ratio of the trailing {window} {unit}, against the ratio of "
        "the whole run{rf}."
    ),
    "exposure": (
        "Gross (sum of absolute position values) and net (signed) exposure as multiples "
        "of equity."
    ),
    "trade-pnl": (
        "Net P&L (after commission) of each closed round trip, matched first-in "
        "first-out; open positions are not included."
    ),
}

# Metrics the benchmark column is filled for, from the benchmark's own curve.
_BENCHMARK_KEYS: tuple[str, ...] = (
    "final_equity", "total_return", "cagr", "annual_volatility", "sharpe", "sortino",
    "calmar", "max_drawdown", "max_drawdown_duration",
)

_HEADLINE: tuple[tuple[str, str], ...] = (
    ("total_return", "Total return"),
    ("cagr", "CAGR"),
    ("sharpe", "Sharpe ratio"),
    ("max_drawdown", "Max drawdown"),
    ("annual_volatility", "Volatility"),
    ("num_trades", "Trades"),
)

_CSS = """
*{box-sizing:border-box}
body{margin:0;background:#f4f5f7;color:#1d2430;
 font:14px/1.5 -apple-system,BlinkMacSystemFont,"Segoe UI",Roboto,"Helvetica Neue",Arial,sans-serif}
main{max-width:1100px;margin:0 auto;padding:28px 24px 40px}
header h1{margin:0 0 4px;font-size:26px;font-weight:650;letter-spacing:-.01em}
header p{margin:0;color:#5b6573}
section{background:#fff;border:1px solid #e1e4e8;border-radius:8px;margin:18px 0;
 padding:18px 22px}
h2{margin:0 0 6px;font-size:17px;font-weight:650}
p.note{margin:0 0 10px;color:#5b6573;font-size:12.5px}
img{display:block;width:100%;height:auto}
.cards{display:grid;grid-template-columns:repeat(auto-fit,minmax(150px,1fr));gap:12px;
 margin-top:14px}
.card{border:1px solid #e1e4e8;border-radius:6px;padding:10px 12px;background:#fafbfc}
.card .label{font-size:12px;color:#5b6573;text-transform:uppercase;letter-spacing:.04em}
.card .value{font-size:21px;font-weight:650;font-variant-numeric:tabular-nums}
.pos{color:#1e7b4b}.neg{color:#b3261e}
table{border-collapse:collapse;width:100%;font-variant-numeric:tabular-nums}
th,td{padding:5px 10px;border-bottom:1px solid #eceef1;text-align:right}
th:first-child,td:first-child{text-align:left}
thead th{font-size:12px;color:#5b6573;text-transform:uppercase;letter-spacing:.04em;
 border-bottom:2px solid #d6dae0}
tbody tr:hover{background:#f6f8fa}
td code{font-size:12px;color:#5b6573}
table.run{width:auto;margin-top:10px}
table.run td{border:none;padding:2px 18px 2px 0;text-align:left}
table.run td:first-child{color:#5b6573}
tr.group th{text-align:left;padding-top:14px;font-size:12px;color:#1f4e79;
 text-transform:uppercase;letter-spacing:.05em;border-bottom:1px solid #d6dae0}
details summary{cursor:pointer;color:#5b6573}
.kv{display:grid;grid-template-columns:repeat(auto-fill,minmax(300px,1fr));gap:4px 24px;
 margin-top:8px;font-variant-numeric:tabular-nums}
.kv .key{color:#5b6573;display:inline-block;min-width:170px}
footer{color:#8a929c;font-size:12px;text-align:center;margin-top:24px}
"""


_WORDS: dict[str, str] = {
    "cagr": "CAGR", "var": "VaR", "cvar": "CVaR", "sqn": "SQN", "pnl": "P&L",
    "num": "number of", "avg": "average", "ddof": "ddof",
}


def _label(name: str) -> str:
    """Readable label of a metric key: ``avg_trade_pnl`` -> ``Average trade P&L``."""
    text = " ".join(_WORDS.get(word, word) for word in name.split("_"))
    return text[:1].upper() + text[1:]


def _tone(name: str, value: Any) -> str:
    """``pos``/``neg`` CSS class of a headline value (empty when neutral)."""
    if name in ("num_trades", "annual_volatility") or not isinstance(value, (int, float)):
        return ""
    if isinstance(value, float) and math.isnan(value):
        return ""
    return "pos" if value > 0 else "neg" if value < 0 else ""


def _fmt_time(t: np.datetime64) -> str:
    text = str(t.astype("M8[s]")).replace("T", " ")
    return text[:10] if text.endswith("00:00:00") else text


def _benchmark_metrics(result: BacktestResult, data: ReportData) -> dict[str, float | int]:
    """Headline metrics of the benchmark curve, on the strategy's clock and conventions."""
    if data.benchmark is None:
        return {}
    levels = data.benchmark
    ppy = result.periods_per_year
    rets = _metrics.simple_returns(levels, data.initial_cash)
    mdd = _metrics.max_drawdown(levels, data.initial_cash)
    growth = _metrics.cagr(levels, result._equity["ts"], data.initial_cash)
    out: dict[str, float | int] = {
        "final_equity": float(levels[-1]) if levels.size else data.initial_cash,
        "total_return": _metrics.total_return(levels, data.initial_cash),
        "cagr": growth,
        "annual_volatility": _metrics.annual_volatility(rets, ppy),
        "sharpe": _metrics.sharpe(rets, ppy, result.risk_free),
        "sortino": _metrics.sortino(rets, ppy, result.risk_free),
        "calmar": growth / -mdd if mdd < 0.0 else math.nan,
        "max_drawdown": mdd,
        "max_drawdown_duration": _metrics.max_drawdown_duration(levels, data.initial_cash),
    }
    return {k: v for k, v in out.items() if k in _BENCHMARK_KEYS}


def _sections(values: Mapping[str, Any]) -> list[tuple[str, list[str]]]:
    """Metric names grouped as in :data:`metrics.METRIC_SECTIONS`, the rest under "other"."""
    known: tuple[tuple[str, tuple[str, ...]], ...] = getattr(_metrics, "METRIC_SECTIONS", ())
    placed = {name for _, names in known for name in names}
    groups = [(title, [n for n in names if n in values]) for title, names in known]
    groups.append(("other" if known else "", [n for n in values if n not in placed]))
    return [(title, names) for title, names in groups if names]


def _metrics_table(values: Mapping[str, Any], bench: Mapping[str, Any], name: str | None) -> str:
    head = "<th>Metric</th><th>Strategy</th>"
    width = 2
    if name is not None:
        head += f"<th>{html.escape(name)}</th>"
        width = 3
    rows = []
    for title, names in _sections(values):
        if title:
            rows.append(f'<tr class="group"><th colspan="{width}">{html.escape(title)}</th></tr>')
        for key in names:
            cells = f"<td>{html.escape(_label(key))} <code>{html.escape(key)}</code></td>"
            cells += f"<td>{html.escape(format_metric(key, values[key]))}</td>"
            if name is not None:
                other = format_metric(key, bench[key]) if key in bench else ""
                cells += f"<td>{html.escape(other)}</td>"
            rows.append(f"<tr>{cells}</tr>")
    return f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(rows)}</tbody></table>"


def _run_metrics(result: BacktestResult, benchmark: Any, data: ReportData) -> Mapping[str, Any]:
    """The result's metrics; with a benchmark given here, computed against it (alpha, beta)."""
    compute = getattr(result, "compute_metrics", None)
    if benchmark is None or data.benchmark_returns is None or not callable(compute):
        return result.metrics
    return cast("Mapping[str, Any]", compute(benchmark=data.benchmark_returns))


def _config_rows(config: Any) -> list[tuple[str, str]]:
    to_dict = getattr(config, "to_dict", None)
    if callable(to_dict):
        try:
            items = dict(to_dict())
        except (TypeError, ValueError):
            return [("config", repr(config))]
        return [(str(k), v if isinstance(v, str) else repr(v)) for k, v in items.items()]
    return [("config", repr(config))]


def _summary(result: BacktestResult, data: ReportData, m: Mapping[str, Any]) -> str:
    if data.empty:
        period = "no bars recorded"
    else:
        period = f"{_fmt_time(data.dates[0])} \u2013 {_fmt_time(data.dates[-1])}"
    run = [
        ("Period", period),
        ("Bars", f"{data.dates.size:,d}"),
        ("Assets", f"{len(result.asset_names):,d}"),
        ("Time zone", result.tz or "naive (wall-clock)"),
        ("Initial cash", FORMATTERS["money"].format(result.initial_cash)),
        ("Final equity", FORMATTERS["money"].format(result.final_equity)),
    ]
    if data.benchmark is not None:
        run.append(("Benchmark", data.benchmark_name))
    cards = []
    for key, label in _HEADLINE:
        if key in m:
            value = m[key]
            cards.append(
                f'<div class="card"><div class="label">{html.escape(label)}</div>'
                f'<div class="value {_tone(key, value)}">'
                f"{html.escape(format_metric(key, value))}</div></div>"
            )
    run_rows = "".join(
        f"<tr><td>{html.escape(k)}</td><td>{html.escape(v)}</td></tr>" for k, v in run
    )
    return (
        f'<section id="summary"><h2>Summary</h2>'
        f'<table class="run">{run_rows}</table>'
        f'<div class="cards">{"".join(cards)}</div></section>'
    )


def _subtitle(result: BacktestResult, data: ReportData) -> str:
    if data.empty:
        return "No bars recorded"
    parts = [
        f"{_fmt_time(data.dates[0])} \u2013 {_fmt_time(data.dates[-1])}",
        f"{data.dates.size:,d} bars",
        f"{len(result.asset_names):,d} assets",
        f"{len(result.fills):,d} fills",
    ]
    return " \u00b7 ".join(parts)


def _description(pid: str, result: BacktestResult, data: ReportData) -> str:
    unit = "days" if data.period == "D" else "bars"
    rf = f" (risk-free rate {result.risk_free:.2%})" if result.risk_free else ""
    text = _DESCRIPTIONS.get(pid, "").format(
        tz=f" ({result.tz})" if result.tz else "",
        window=data.rolling_window or data.requested_window,
        unit=unit,
        rf=rf,
    )
    if pid == "rolling-sharpe" and data.period == "D":
        text += " Intraday bars are compounded into daily returns first."
    if pid == "equity" and data.benchmark is not None:
        text += f" {data.benchmark_name}: the initial cash invested in it at the first bar."
    return text


def write_report(
    result: BacktestResult,
    path: str | os.PathLike[str] = "report.html",
    benchmark: Any = None,
    *,
    title: str | None = None,
    benchmark_name: str | None = None,
    rolling_window: int | None = None,
) -> Path:
    """Write the HTML tear sheet of ``result`` (see the module docstring).

    Parameters
    ----------
    result : BacktestResult
    path : str or path-like, default "report.html"
        The file to write. An existing file is replaced only if it is a
        report mlbacktest wrote; a symbolic link is refused (see
        :func:`~mlbacktest.results.io.write_file_atomically`).
    benchmark : optional
        A benchmark to compare with (see :func:`~mlbacktest.results.plots.report_data`):
        a polars DataFrame with ``timestamp`` and one of ``returns``,
        ``price`` or ``close``; a pandas Series of returns with a
        DatetimeIndex (such as another result's :meth:`returns`); or an
        array of one return per bar.
    title : str, optional
        Heading of the page; ``"Backtest report"`` by default.
    benchmark_name : str, optional
        Label of the benchmark; its Series' name or ``"Benchmark"``.
    rolling_window : int, optional
        Periods in the rolling Sharpe window; half a year by default.

    Returns
    -------
    pathlib.Path
        ``path``.
    """
    check_report_path(path, "report")  # before the work of drawing the charts
    data = report_data(result, benchmark, benchmark_name=benchmark_name,
                       rolling_window=rolling_window)
    title = title or "Backtest report"
    values = _run_metrics(result, benchmark, data)
    parts = [_summary(result, data, values)]
    for pid, heading, draw in PANELS:
        png = render_png(draw, data, panel_height(pid, data), panel_id=pid)
        b64 = base64.b64encode(png).decode("ascii")
        parts.append(
            f'<section id="{pid}"><h2>{html.escape(heading)}</h2>'
            f'<p class="note">{html.escape(_description(pid, result, data))}</p>'
            f'<img alt="{html.escape(heading)}" src="data:image/png;base64,{b64}"></section>'
        )
    parts.append(
        '<section id="metrics"><h2>Metrics</h2>'
        '<p class="note">Every metric of the run (<code>result.metrics</code>); '
        "annualised with "
        f"{result.periods_per_year:,.6g} periods a year.</p>"
        + _metrics_table(
            values,
            _benchmark_metrics(result, data),
            None if data.benchmark is None else data.benchmark_name,
        )
        + "</section>"
    )
    if result.config is not None:
        items = "".join(
            f'<div><span class="key">{html.escape(k)}</span> {html.escape(v)}</div>'
            for k, v in _config_rows(result.config)
        )
        parts.append(
            '<section id="config"><h2>Configuration</h2><details open>'
            f"<summary>{html.escape(type(result.config).__name__)}</summary>"
            f'<div class="kv">{items}</div></details></section>'
        )
    created = dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    page = (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f'{REPORT_GENERATOR} {html.escape(__version__)}">'
        f"<title>{html.escape(title)}</title><style>{_CSS}</style></head><body><main>"
        f"<header><h1>{html.escape(title)}</h1><p>{html.escape(_subtitle(result, data))}</p>"
        "</header>"
        + "".join(parts)
        + f"<footer>mlbacktest {html.escape(__version__)} \u00b7 {created}</footer>"
        "</main></body></html>\n"
    )
    return write_file_atomically(path, page.encode("utf-8"), "report")
