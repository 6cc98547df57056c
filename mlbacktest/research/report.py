"""A small HTML report of a sweep: heat map of a metric, deflated Sharpe ratio, PBO.

One self-contained file in the style of the backtest report
(:mod:`mlbacktest.results.report`): inline CSS, charts as base64 PNG.
Sections: ``summary``, ``heatmap``, ``dsr``, ``pbo``, ``top-runs``.
matplotlib is imported only when a report is written.
"""

from __future__ import annotations

import base64
import datetime as dt
import html
import io
import math
import os
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import polars as pl

from mlbacktest._version import __version__
from mlbacktest.results.io import REPORT_GENERATOR, check_report_path, write_file_atomically
from mlbacktest.results.metrics import format_metric
from mlbacktest.results.report import _CSS

if TYPE_CHECKING:
    from mlbacktest.research.sweep import SweepResult

__all__ = ["write_sweep_report", "SECTION_IDS"]

SECTION_IDS: tuple[str, ...] = ("summary", "heatmap", "dsr", "pbo", "top-runs")
"""``id`` of each section of the sweep report, in order."""


def _png(draw: Callable[[Any], None], height: float) -> str:
    from matplotlib.figure import Figure

    from mlbacktest.results.plots import style

    with style():
        fig = Figure(figsize=(8.0, height))
        draw(fig.add_subplot())
        fig.tight_layout()
        buf = io.BytesIO()
        fig.savefig(buf, format="png", dpi=100)
    return base64.b64encode(buf.getvalue()).decode("ascii")


def heatmap_table(frame: pl.DataFrame, x: str, y: str, metric: str) -> pl.DataFrame:
    """The best `metric` of the successful runs for each (`y`, `x`) pair.

    Rows are the values of `y`, columns those of `x` (sorted); over the other
    parameters the maximum is taken. A cell with no successful run is null.
    """
    ok = frame.filter((pl.col("status") == "ok") & pl.col(metric).is_not_null()
                      & pl.col(metric).cast(pl.Float64).is_finite())
    cells = ok.group_by([y, x]).agg(pl.col(metric).cast(pl.Float64).max())
    xs = sorted(frame[x].unique().to_list(), key=_sort_key)
    ys = sorted(frame[y].unique().to_list(), key=_sort_key)
    lookup = {(r[y], r[x]): r[metric] for r in cells.iter_rows(named=True)}
    return pl.DataFrame({y: ys, **{str(v): [lookup.get((w, v)) for w in ys] for v in xs}},
                        strict=False)


def _sort_key(v: Any) -> tuple[int, Any]:
    return (0, v) if isinstance(v, (int, float)) and not isinstance(v, bool) else (1, str(v))


def _draw_heatmap(table: pl.DataFrame, x: str, y: str, metric: str) -> Callable[[Any], None]:
    def draw(ax: Any) -> None:
        values = table.drop(y).to_numpy().astype(np.float64)
        masked = np.ma.masked_invalid(values)
        im = ax.imshow(masked, cmap="RdYlGn", aspect="auto", origin="lower")
        ax.set_xticks(range(values.shape[1]), table.columns[1:])
        ax.set_yticks(range(values.shape[0]), [str(v) for v in table[y]])
        ax.set_xlabel(x)
        ax.set_ylabel(y)
        for i in range(values.shape[0]):
            for j in range(values.shape[1]):
                if np.isfinite(values[i, j]):
                    ax.text(j, i, f"{values[i, j]:.2f}", ha="center", va="center", fontsize=8)
        ax.figure.colorbar(im, ax=ax, label=metric)
        ax.grid(False)
    return draw


def _draw_line(frame: pl.DataFrame, x: str, metric: str) -> Callable[[Any], None]:
    def draw(ax: Any) -> None:
        ok = frame.filter(pl.col("status") == "ok")
        ax.plot([str(v) for v in ok[x]], ok[metric].cast(pl.Float64).to_numpy(), marker="o")
        ax.set_xlabel(x)
        ax.set_ylabel(metric)
    return draw


def _draw_logits(logits: np.ndarray) -> Callable[[Any], None]:
    def draw(ax: Any) -> None:
        finite = logits[np.isfinite(logits)]
        ax.hist(finite, bins=min(40, max(5, finite.size // 20)), color="#1f4e79")
        ax.axvline(0.0, color="#c0392b", linewidth=1.2)
        ax.set_xlabel("logit of the out-of-sample rank of the in-sample best")
        ax.set_ylabel("splits")
    return draw


def _kv(rows: list[tuple[str, str]]) -> str:
    return '<div class="kv">' + "".join(
        f'<div><span class="key">{html.escape(k)}</span> {html.escape(v)}</div>'
        for k, v in rows) + "</div>"


def _section(sid: str, heading: str, body: str) -> str:
    return f'<section id="{sid}"><h2>{html.escape(heading)}</h2>{body}</section>'


def write_sweep_report(sweep: SweepResult, path: str | os.PathLike[str], *,
                       x: str | None = None, y: str | None = None, metric: str = "sharpe",
                       n_partitions: int = 16, title: str | None = None) -> Path:
    """Write the HTML report of a sweep.

    Parameters
    ----------
    sweep : SweepResult
    path : str or path-like
        The file; an existing file is replaced only if it is a report
        mlbacktest wrote.
    x, y : str, optional
        The parameters of the heat map's columns and rows (default: the
        grid's first two; with one parameter, a line chart).
    metric : str, default "sharpe"
        The metric shown (and that picks the best run).
    n_partitions : int, default 16
        Partitions of the PBO (with the runs' returns; fewer when the runs
        are short).
    title : str, optional
        Heading of the page.

    Raises
    ------
    ValueError
        `x`, `y` or `metric` is not a column of the sweep.
    """
    check_report_path(path, "report")
    frame = sweep.frame
    names = list(sweep.params[0])
    for name, what in ((x, "x"), (y, "y")):
        if name is not None and name not in names:
            raise ValueError(f"{what}={name!r} is not a parameter of the sweep: {names}")
    if metric not in frame.columns:
        raise ValueError(f"metric {metric!r} is not a column of the sweep")
    x = x or names[0]
    y = y or next((n for n in names if n != x), None)
    title = title or "Sweep report"
    summary = sweep.summary(metric, n_partitions)
    parts = []
    rows = [("runs", str(summary["runs"])), ("failed", str(summary["failed"]))]
    if "best_run" in summary:
        rows += [("best run", str(summary["best_run"])),
                 ("best parameters", ", ".join(f"{k}={v}" for k, v in
                                               summary["best_params"].items())),
                 (f"best {metric}", format_metric(metric, summary[f"best_{metric}"]))]
    parts.append(_section("summary", "Summary", _kv(rows)))
    if y is not None:
        table = heatmap_table(frame, x, y, metric)
        img = _png(_draw_heatmap(table, x, y, metric), 0.6 + 0.45 * max(table.height, 4))
        note = (f"{metric} over {x} and {y}" + (" (the best over the other parameters)"
                                                 if len(names) > 2 else ""))
    else:
        img = _png(_draw_line(frame, x, metric), 3.5)
        note = f"{metric} of each value of {x}"
    parts.append(_section("heatmap", f"{metric} by parameter",
                          f'<p class="note">{html.escape(note)}; failed runs are blank.</p>'
                          f'<img alt="heat map" src="data:image/png;base64,{img}">'))
    try:
        d = sweep.deflated_sharpe()
        body = _kv([("deflated Sharpe ratio", f"{d['dsr']:.4f}"),
                    ("best Sharpe (per period)", f"{d['sharpe']:.4f}"),
                    ("expected maximum Sharpe of the trials (per period)",
                     f"{d['expected_max_sharpe']:.4f}"),
                    ("trials", f"{d['n_trials']:.0f}"), ("returns", f"{d['n_obs']:.0f}")])
        body = ('<p class="note">Probability that the best run\'s true Sharpe ratio exceeds '
                "the best expected from this many trials with no skill (Bailey &amp; "
                "López de Prado, 2014); below 0.95 the best run is not distinguishable "
                "from luck.</p>" + body)
    except ValueError as exc:
        body = f'<p class="note">{html.escape(str(exc))}</p>'
    parts.append(_section("dsr", "Deflated Sharpe ratio", body))
    if sweep.returns is None:
        body = ('<p class="note">Run the sweep with keep_returns=True to compute the '
                "probability of backtest overfitting.</p>")
    else:
        s = summary.get("pbo_partitions", n_partitions)
        try:
            p = sweep.pbo(s)
            img = _png(_draw_logits(p.logits), 3.0)
            body = ('<p class="note">Share of the combinatorially symmetric splits in which '
                    "the in-sample best configuration ranks at or below the median out of "
                    "sample (Bailey, Borwein, López de Prado &amp; Zhu, 2015). Near 0: the "
                    "selection generalises; 0.5 or more: it is noise.</p>"
                    + _kv([("PBO", f"{p.pbo:.3f}"), ("partitions", str(p.n_partitions)),
                           ("splits", str(p.n_splits))])
                    + f'<img alt="logits" src="data:image/png;base64,{img}">')
        except ValueError as exc:
            body = f'<p class="note">{html.escape(str(exc))}</p>'
    parts.append(_section("pbo", "Probability of backtest overfitting", body))
    ok = frame.filter(pl.col("status") == "ok").sort(metric, descending=True,
                                                       nulls_last=True).head(10)
    cols = ["run", *names, metric]
    head = "".join(f"<th>{html.escape(c)}</th>" for c in cols)
    body_rows = "".join(
        "<tr>" + "".join(f"<td>{html.escape(_cell(c, r[c], metric))}</td>" for c in cols)
        + "</tr>" for r in ok.iter_rows(named=True))
    parts.append(_section("top-runs", "Best runs",
                          f"<table><thead><tr>{head}</tr></thead><tbody>{body_rows}"
                          "</tbody></table>"))
    created = dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    page = (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        f'{REPORT_GENERATOR} {html.escape(__version__)}">'
        f"<title>{html.escape(title)}</title><style>{_CSS}</style></head><body><main>"
        f"<header><h1>{html.escape(title)}</h1></header>" + "".join(parts)
        + f"<footer>mlbacktest {html.escape(__version__)} \u00b7 {created}</footer>"
        "</main></body></html>\n"
    )
    return write_file_atomically(path, page.encode("utf-8"), "report")


def _cell(column: str, value: Any, metric: str) -> str:
    if column == metric:
        return format_metric(metric, value) if value is not None and not (
            isinstance(value, float) and math.isnan(value)) else ""
    return str(value)
