"""Deflated Sharpe ratio and probability of backtest overfitting (mlbacktest.research.stats)."""

from __future__ import annotations

import math
from itertools import combinations
from statistics import NormalDist

import numpy as np
import polars as pl
import pytest
from research_strategies import Momentum

from mlbacktest.data.synthetic import synthetic_bars
from mlbacktest.research import (
    deflated_sharpe_ratio,
    expected_max_sharpe,
    probabilistic_sharpe_ratio,
    probability_of_backtest_overfitting,
    sweep,
)
from mlbacktest.research.stats import per_period_sharpe

# -- deflated Sharpe ratio ------------------------------------------------------------------


def test_the_papers_worked_example():
    # Bailey & López de Prado (2014), "A numerical example": N = 100 trials, the variance of
    # their annualised Sharpe ratios 1/2, the best annualised Sharpe 2.5 over T = 1,250 daily
    # returns (250 a year) with skewness -3 and kurtosis 10: SR0 = 0.1132 and DSR = 0.9004.
    days = 250
    out = deflated_sharpe_ratio(2.5 / math.sqrt(days), 100, 0.5 / days, 1250, -3.0, 10.0)
    assert round(out["expected_max_sharpe"], 4) == 0.1132
    assert round(out["expected_max_sharpe"] * math.sqrt(days), 4) == 1.7894  # annualised
    assert round(out["dsr"], 4) == 0.9004
    assert out["n_trials"] == 100 and out["n_obs"] == 1250


def test_psr_and_expected_maximum_written_out():
    z = NormalDist()
    g = 0.5772156649015329
    v, n = 0.04, 20
    want = math.sqrt(v) * ((1 - g) * z.inv_cdf(1 - 1 / n) + g * z.inv_cdf(1 - 1 / (n * math.e)))
    assert expected_max_sharpe(n, v) == pytest.approx(want, rel=1e-15)
    assert expected_max_sharpe(1, v) == 0.0
    sr, sr0, t, s3, s4 = 0.1, 0.05, 500, 0.5, 4.0
    want = z.cdf((sr - sr0) * math.sqrt(t - 1) / math.sqrt(1 - s3 * sr + (s4 - 1) / 4 * sr**2))
    assert probabilistic_sharpe_ratio(sr, sr0, t, s3, s4) == pytest.approx(want, rel=1e-15)
    # More trials raise the bar, so the same Sharpe ratio is worth less.
    a = deflated_sharpe_ratio(0.1, 10, 0.002, 500)["dsr"]
    b = deflated_sharpe_ratio(0.1, 1000, 0.002, 500)["dsr"]
    assert b < a


# -- probability of backtest overfitting --------------------------------------------------


def brute_force_cscv(m: np.ndarray, s: int) -> tuple[float, list[float]]:
    """CSCV written plainly after Bailey, Borwein, López de Prado & Zhu (2015), section 2."""
    t, n = m.shape
    size = t // s
    blocks = [m[i * size:(i + 1) * size] for i in range(s)]
    logits = []
    for chosen in combinations(range(s), s // 2):
        train = np.concatenate([blocks[i] for i in chosen])
        test = np.concatenate([blocks[i] for i in range(s) if i not in chosen])
        r_train = [np.mean(train[:, j]) / np.std(train[:, j], ddof=1) for j in range(n)]
        r_test = [np.mean(test[:, j]) / np.std(test[:, j], ddof=1) for j in range(n)]
        best = int(np.argmax(r_train))
        rank = 1 + sum(1 for j in range(n) if r_test[j] < r_test[best])
        w = rank / (n + 1)
        logits.append(math.log(w / (1 - w)))
    return sum(1 for x in logits if x <= 0) / len(logits), logits


@pytest.mark.parametrize(("seed", "t", "n", "s"), [(0, 100, 5, 4), (1, 203, 12, 8),
                                                    (2, 64, 3, 2), (3, 150, 30, 10)])
def test_pbo_equals_a_brute_force_cscv(seed, t, n, s):
    m = np.random.default_rng(seed).normal(0.0005, 0.01, size=(t, n))
    got = probability_of_backtest_overfitting(m, s)
    want, logits = brute_force_cscv(m, s)
    assert got.pbo == want
    assert np.allclose(got.logits, logits, rtol=0, atol=1e-12)
    assert got.n_splits == math.comb(s, s // 2) and got.n_rows_used == (t // s) * s


def test_pbo_in_chunks_of_splits_is_the_same(monkeypatch):
    import mlbacktest.research.stats as stats

    m = np.random.default_rng(4).normal(0.0, 0.01, size=(120, 7))
    whole = probability_of_backtest_overfitting(m, 10)
    monkeypatch.setattr(stats, "_CHUNK_CELLS", 50)  # 7 splits at a time: 36 chunks
    chunked = probability_of_backtest_overfitting(m, 10)
    assert np.array_equal(whole.logits, chunked.logits)
    assert np.array_equal(whole.chosen, chunked.chosen) and whole.pbo == chunked.pbo
    assert whole.pbo == brute_force_cscv(m, 10)[0]


def test_pbo_is_near_zero_with_one_skilled_configuration_and_high_for_noise():
    rng = np.random.default_rng(7)
    noise = rng.normal(0.0, 0.01, size=(1000, 50))
    assert probability_of_backtest_overfitting(noise, 16).pbo >= 0.4
    skilled = noise.copy()
    skilled[:, 17] += 0.004  # a Sharpe ratio of 0.4 a period, far above the others
    out = probability_of_backtest_overfitting(skilled, 16)
    assert out.pbo < 0.02
    assert (out.chosen == 17).mean() > 0.98


# -- on a sweep ---------------------------------------------------------------------------


def test_a_sweeps_summary_has_its_dsr_and_pbo():
    bars = synthetic_bars(n_assets=3, n_bars=160, seed=5)
    s = sweep(Momentum, {"lookback": [2, 3, 5, 8, 13], "top": [1, 2]}, bars, progress=False,
              keep_returns=True)
    srs = per_period_sharpe(s.returns.T)
    best = int(np.argmax(srs))
    dsr = s.deflated_sharpe()
    assert dsr["sharpe"] == srs[best] and dsr["n_trials"] == 10 and dsr["n_obs"] == 160
    want = deflated_sharpe_ratio(srs[best], 10, float(np.var(srs, ddof=1)), 160,
                                 *_moments(s.returns[best]))
    assert dsr == want
    pbo = s.pbo(8)
    assert pbo.pbo == brute_force_cscv(s.returns.T, 8)[0]
    summary = s.summary(n_partitions=8)
    assert summary["pbo"] == pbo.pbo and summary["dsr_dsr"] == dsr["dsr"]
    assert summary["best_run"] == s.best("sharpe") and summary["pbo_partitions"] == 8
    short = sweep(Momentum, {"lookback": [2, 3], "top": [1, 2]}, bars.head(3 * 20),
                  progress=False, keep_returns=True)
    # Too many partitions for 20 periods: lowered to the largest with two periods a block.
    assert short.summary(n_partitions=16)["pbo_partitions"] == 10
    # Without the returns: the frame's Sharpe ratios, skewness and kurtosis.
    plain = sweep(Momentum, {"lookback": [2, 3, 5, 8, 13], "top": [1, 2]}, bars,
                  progress=False)
    other = plain.deflated_sharpe()
    assert other["n_obs"] == 160 and other["n_trials"] == 10
    assert other["sharpe"] == pytest.approx(dsr["sharpe"], rel=1e-9)
    with pytest.raises(ValueError, match="keep_returns=True"):
        plain.pbo()


def _moments(x):
    d = x - x.mean()
    m2 = np.mean(d * d)
    return float(np.mean(d**3) / m2**1.5), float(np.mean(d**4) / m2**2)


# -- the sweep report ---------------------------------------------------------------------


def test_the_sweep_report(tmp_path):
    import re

    from mlbacktest.research.report import SECTION_IDS, heatmap_table

    bars = synthetic_bars(n_assets=3, n_bars=120, seed=2)
    s = sweep(Momentum, {"lookback": [2, 5, 8], "top": [1, 2]}, bars, progress=False,
              keep_returns=True)
    path = s.report(tmp_path / "report.html", x="lookback", y="top", n_partitions=8)
    page = path.read_text()
    assert re.findall(r'<section id="([a-z-]+)"', page) == list(SECTION_IDS)
    assert page.count("data:image/png;base64,") == 2  # heat map and logit histogram
    assert f"{s.pbo(8).pbo:.3f}" in page and f"{s.deflated_sharpe()['dsr']:.4f}" in page
    table = heatmap_table(s.frame, "lookback", "top", "sharpe")
    assert table.columns == ["top", "2", "5", "8"]
    for row in s.frame.iter_rows(named=True):
        assert table.filter(pl.col("top") == row["top"])[str(row["lookback"])][0] == \
            row["sharpe"]
    s.report(path)  # its own report is replaced
    with pytest.raises(ValueError, match="x='lookbak' is not a parameter of the sweep"):
        s.report(tmp_path / "other.html", x="lookbak")
    foreign = tmp_path / "notes.html"
    foreign.write_text("mine")
    with pytest.raises(FileExistsError, match="not a report mlbacktest wrote"):
        s.report(foreign)
    assert foreign.read_text() == "mine"
