"""Charts and the HTML tear sheet of BacktestResult (results.plots, results.report)."""

from __future__ import annotations

import base64
import re
import subprocess
import sys

import matplotlib
import numpy as np
import polars as pl
import pytest
from helpers import Idle, TopK, synthetic_frame
from helpers import run_feed as run

from mlbacktest.results.plots import PANELS, render_png, report_data
from mlbacktest.results.report import SECTION_IDS

matplotlib.use("Agg")

NY = "America/New_York"
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def bars(n_assets=5, n_bars=120, every="1d", tz=None, start="2023-01-02"):
    return synthetic_frame(n_assets, n_bars, seed=5, every=every, tz=tz, start=start)


@pytest.fixture(scope="module")
def daily():
    return run(bars())


def sections(page: str) -> list[str]:
    return re.findall(r'<section id="([^"]+)"><h2>', page)


def images(page: str) -> list[bytes]:
    return [base64.b64decode(b) for b in re.findall(r'src="data:image/png;base64,([^"]+)"', page)]


def assert_self_contained(page: str) -> None:
    assert not re.search(r"""(src|href)\s*=\s*["']?\s*(https?:)?//""", page, re.I)
    assert "<script" not in page.lower() and "@import" not in page
    assert not re.search(r"url\(", page)
    assert not re.search(r"https?://", page)


def test_report_of_a_real_backtest(daily, tmp_path):
    path = daily.report(tmp_path / "report.html")
    assert path == tmp_path / "report.html" and path.is_file()
    page = path.read_text(encoding="utf-8")
    assert page.startswith("<!DOCTYPE html>")
    assert_self_contained(page)
    assert sections(page) == list(SECTION_IDS)
    pngs = images(page)
    assert len(pngs) == len(PANELS)
    assert all(png.startswith(PNG_SIGNATURE) and len(png) > 5_000 for png in pngs)
    for panel_id, title, _ in PANELS:
        assert f'<section id="{panel_id}"><h2>{title.replace("&", "&amp;")}</h2>' in page
    # Every metric is listed, whatever keys the result has.
    for key in daily.metrics:
        assert f"<code>{key}</code>" in page
    assert "Total return" in page and "BacktestConfig" in page


def test_report_with_a_benchmark(daily, tmp_path):
    frame = bars().filter(pl.col("asset") == "A003").select("timestamp", "close")
    page = daily.report(tmp_path / "r.html", frame, benchmark_name="A003 hold").read_text()
    assert "<th>A003 hold</th>" in page and "Benchmark</td><td>A003 hold" in page
    data = report_data(daily, frame)
    close = frame["close"].to_numpy()
    # initial cash invested in the benchmark at the first bar
    np.testing.assert_allclose(data.benchmark, daily.initial_cash * close / close[0], rtol=1e-12)
    # A pandas Series of returns, e.g. another result's, works too.
    other = daily.returns_series().rename("Same strategy")
    data = report_data(daily, other)
    assert data.benchmark_name == "Same strategy"
    np.testing.assert_allclose(data.benchmark[1:], daily.equity["equity"].to_numpy()[1:]
                               * (daily.initial_cash / daily.equity["equity"][0]), rtol=1e-9)
    with pytest.raises(ValueError, match="benchmark"):
        daily.report(tmp_path / "bad.html", np.ones(3))


def test_report_without_trades(tmp_path):
    idle = run(bars(), Idle())
    page = idle.report(tmp_path / "idle.html").read_text()
    assert sections(page) == list(SECTION_IDS)
    fig = idle.plot()
    trade_axes = fig.axes[[pid for pid, _, _ in PANELS].index("trade-pnl")]
    assert [t.get_text() for t in trade_axes.texts] == ["No closed trades"]


def test_short_run_shortens_the_rolling_window(tmp_path):
    short = run(bars(n_bars=16), TopK(every=3))
    data = report_data(short)
    assert data.requested_window > 16 and data.rolling_window == 8
    assert np.isnan(data.rolling_sharpe[:7]).all() and np.isfinite(data.rolling_sharpe[7:]).any()
    assert data.years.tolist() == [2023] and np.isfinite(data.monthly[0]).sum() == 1
    page = short.report(tmp_path / "short.html").read_text()
    assert sections(page) == list(SECTION_IDS)
    tiny = report_data(run(bars(n_bars=6), TopK(every=2)))
    assert tiny.rolling_window == 0
    draw = dict((pid, draw) for pid, _, draw in PANELS)["rolling-sharpe"]
    assert render_png(draw, tiny, 2.0, dpi=40).startswith(PNG_SIGNATURE)
    with pytest.raises(ValueError, match="rolling_window"):
        report_data(short, rolling_window=1)


def test_intraday_tz_aware_run_uses_days_and_calendar_months(tmp_path):
    # Hourly bars in New York from 2024-01-30 to 2024-03-20: three calendar months.
    frame = bars(n_bars=50 * 24, every="1h", tz=NY, start="2024-01-30 05:00")
    result = run(frame, TopK(every=24))
    data = report_data(result)
    assert data.period == "D"
    local = result.equity["timestamp"]
    days = result.equity.group_by(local.dt.date().alias("day"), maintain_order=True).agg(
        pl.col("equity").last()
    )
    assert data.period_returns.size == days.height
    assert data.period_per_year == pytest.approx(result.periods_per_year / 24)
    # Monthly returns by New York calendar month, from month-end equity.
    ends = result.equity.group_by(local.dt.month().alias("m"), maintain_order=True).agg(
        pl.col("equity").last()
    )
    level = np.concatenate([[result.initial_cash], ends["equity"].to_numpy()])
    np.testing.assert_allclose(data.monthly[0, :3], level[1:] / level[:-1] - 1, rtol=1e-12)
    assert np.isnan(data.monthly[0, 3:]).all()
    assert data.yearly[0] == pytest.approx(level[-1] / level[0] - 1, rel=1e-12)
    page = result.report(tmp_path / "intraday.html").read_text()
    assert sections(page) == list(SECTION_IDS) and "America/New_York" in page


def test_plot_is_one_figure_of_every_panel(daily, tmp_path):
    from matplotlib.figure import Figure

    fig = daily.plot()
    assert isinstance(fig, Figure)
    assert [ax.get_title(loc="left") for ax in fig.axes] == [title for _, title, _ in PANELS]
    fig.savefig(tmp_path / "plot.png", dpi=50)
    assert (tmp_path / "plot.png").read_bytes().startswith(PNG_SIGNATURE)
    equity_axes = fig.axes[0]
    np.testing.assert_array_equal(equity_axes.lines[0].get_ydata(), daily.equity["equity"])


def test_matplotlib_is_not_imported_with_the_package():
    code = "import sys, mlbacktest; print('matplotlib' in sys.modules, 'pandas' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["False", "False"]


# -- readable panels on hard cases ---------------------------------------------------


def _drawn(draw, data):
    """The Axes of one panel drawn alone (and laid out, so tick labels exist)."""
    from matplotlib.figure import Figure

    from mlbacktest.results.plots import style

    with style():
        fig = Figure(figsize=(10, 3))
        ax = fig.add_subplot()
        draw(ax, data)
        fig.canvas.draw()
    return ax


def _notes(ax) -> list[str]:
    return [t.get_text() for t in ax.texts]


def test_trade_pnl_histogram_clips_outliers_with_a_note(daily):
    import dataclasses

    from mlbacktest.results.plots import draw_trade_pnl

    rng = np.random.default_rng(3)
    pnl = rng.normal(50.0, 400.0, 7_634)
    pnl[:5] = [250_000.0, 180_000.0, -120_000.0, 90_000.0, 300_000.0]
    ax = _drawn(draw_trade_pnl, dataclasses.replace(report_data(daily), trade_pnl=pnl))
    p1, p99 = np.percentile(pnl, [1, 99])
    lo, hi = ax.get_xlim()
    # the axis spans the 1st..99th percentiles (plus half a bin), not the outliers
    assert p1 - 100 < lo < p1 and p99 < hi < p99 + 100
    assert sum(len(c.patches) for c in ax.containers) >= 40  # many bars, not four
    note = next(t for t in _notes(ax) if t.startswith("Axis clipped"))
    below, above = int((pnl < p1).sum()), int((pnl > p99).sum())
    assert f"{below:,d} below" in note and "(lowest -120k)" in note
    assert f"{above:,d} above" in note and "(highest 300k)" in note
    assert "7,634 trades" in _notes(ax)[0]  # the statistics still cover every trade
    # without outliers nothing is clipped
    calm = _drawn(draw_trade_pnl, dataclasses.replace(report_data(daily), trade_pnl=pnl[5:]))
    assert not any(t.startswith("Axis clipped") for t in _notes(calm))
    assert calm.get_xlim()[0] < pnl[5:].min() and calm.get_xlim()[1] > pnl[5:].max()


def test_exposure_draws_gross_and_net_visibly_when_they_coincide(daily):
    import dataclasses

    from mlbacktest.results.plots import draw_exposure

    n = report_data(daily).dates.size
    lev = 0.9 + 0.05 * np.sin(np.arange(n) / 20.0)
    long_only = dataclasses.replace(report_data(daily), gross_leverage=lev, net_leverage=lev)
    ax = _drawn(draw_exposure, long_only)
    gross, net = (next(ln for ln in ax.lines if ln.get_label() == k) for k in ("Gross", "Net"))
    np.testing.assert_array_equal(gross.get_ydata(), net.get_ydata())
    # net on top, thinner and dashed: the wide gross line shows on both sides of it
    assert net.get_zorder() > gross.get_zorder()
    assert gross.get_linewidth() > 2 * net.get_linewidth()
    assert gross.get_linestyle() == "-" and net.get_linestyle() != "-"
    assert "Net equals gross: a long-only book" in _notes(ax)
    assert "Net equals gross: a long-only book" not in _notes(_drawn(draw_exposure,
                                                                      report_data(daily)))


def test_equity_axis_is_logarithmic_for_a_large_range(daily):
    import dataclasses

    from mlbacktest.results.plots import draw_equity

    data = report_data(daily)
    n = data.dates.size
    grown = data.initial_cash * np.geomspace(1.0, 8.67, n)  # +767 %
    ax = _drawn(draw_equity, dataclasses.replace(data, equity=grown))
    assert ax.get_yscale() == "log" and ax.get_ylabel() == "Equity (log scale)"
    labels = [t.get_text() for t in ax.get_yticklabels() if t.get_text()]
    assert len(labels) >= 2 and all(label[-1] in "kM" for label in labels)  # money, not 10^x
    modest = data.initial_cash * np.linspace(1.0, 1.164, n)  # +16.4 %
    assert _drawn(draw_equity, dataclasses.replace(data, equity=modest)).get_yscale() == "linear"
    lost = data.initial_cash * np.linspace(1.0, -0.5, n)  # below zero: no log axis
    assert _drawn(draw_equity, dataclasses.replace(data, equity=lost)).get_yscale() == "linear"


def test_time_panels_share_the_range_and_show_the_first_and_last_year():
    from mlbacktest.results.plots import draw_drawdown, draw_equity, draw_rolling_sharpe

    # business days from Thu 2 January 2020 to Fri 30 December 2022
    result = run(bars(n_bars=782, start="2020-01-02"), TopK(every=5))
    data = report_data(result)
    assert str(data.dates[-1])[:10] == "2022-12-30"
    sharpe_ax = _drawn(draw_rolling_sharpe, data)
    for draw in (draw_equity, draw_drawdown):
        assert _drawn(draw, data).get_xlim() == sharpe_ax.get_xlim()
    labels = [t.get_text() for t in sharpe_ax.get_xticklabels()]
    assert "2020" in labels and "2023" in labels, labels
