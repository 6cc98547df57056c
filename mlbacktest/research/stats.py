"""Overfitting statistics of a sweep: deflated Sharpe ratio and probability of backtest overfitting.

* Bailey, D. H. and López de Prado, M. (2014). "The Deflated Sharpe Ratio:
  Correcting for Selection Bias, Backtest Overfitting and Non-Normality".
  *Journal of Portfolio Management* 40 (5), 94-107.
* Bailey, D. H., Borwein, J., López de Prado, M. and Zhu, Q. J. (2015).
  "The Probability of Backtest Overfitting". *Journal of Computational
  Finance* 20 (4), 39-69.

Sharpe ratios here are per period (not annualised) unless said otherwise.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from itertools import combinations
from statistics import NormalDist
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from mlbacktest.research.sweep import SweepResult

__all__ = [
    "EULER_GAMMA",
    "expected_max_sharpe",
    "probabilistic_sharpe_ratio",
    "deflated_sharpe_ratio",
    "probability_of_backtest_overfitting",
    "PBOResult",
    "dsr_of_sweep",
]

EULER_GAMMA: float = 0.5772156649015329
"""The Euler-Mascheroni constant."""

_NORMAL = NormalDist()

MAX_SPLITS: int = 1_000_000
"""Most splits ``C(S, S/2)`` a PBO computes (S = 22 gives 705,432; S = 24, 2.7 million)."""
_CHUNK_CELLS = 2_000_000
"""Splits x configurations computed at once (bounds the memory of the PBO)."""


def expected_max_sharpe(n_trials: int, sharpe_variance: float) -> float:
    """Expected maximum Sharpe ratio of `n_trials` trials with no skill (DSR paper, eq. 2 of PSR*).

    ``sqrt(V) * ((1 - g) * Z^-1(1 - 1/N) + g * Z^-1(1 - 1/(N e)))`` with ``g``
    the Euler-Mascheroni constant and ``Z^-1`` the standard normal quantile.

    Parameters
    ----------
    n_trials : int
        Number of trials N (>= 2; with one trial there is no selection and the result is 0).
    sharpe_variance : float
        Variance V of the trials' Sharpe ratios (same units as the Sharpe ratios).

    Raises
    ------
    ValueError
        `n_trials` < 1 or `sharpe_variance` negative or not finite.
    """
    if int(n_trials) != n_trials or n_trials < 1:
        raise ValueError(f"n_trials must be a positive integer, got {n_trials!r}")
    if not (math.isfinite(sharpe_variance) and sharpe_variance >= 0):
        raise ValueError(f"sharpe_variance must be finite and >= 0, got {sharpe_variance!r}")
    if n_trials == 1:
        return 0.0
    n = float(n_trials)
    z1 = _NORMAL.inv_cdf(1.0 - 1.0 / n)
    z2 = _NORMAL.inv_cdf(1.0 - 1.0 / (n * math.e))
    return math.sqrt(sharpe_variance) * ((1.0 - EULER_GAMMA) * z1 + EULER_GAMMA * z2)


def probabilistic_sharpe_ratio(sharpe: float, benchmark: float, n_obs: int, skew: float = 0.0,
                               kurtosis: float = 3.0) -> float:
    """Probability that the true Sharpe ratio exceeds `benchmark` (PSR, Bailey & López de Prado).

    ``Z((SR - SR*) sqrt(T - 1) / sqrt(1 - g3 SR + (g4 - 1) / 4 SR^2))``.

    Parameters
    ----------
    sharpe : float
        Observed per-period Sharpe ratio SR.
    benchmark : float
        Per-period Sharpe ratio SR* to beat.
    n_obs : int
        Number of returns T (>= 2).
    skew : float, default 0
        Skewness g3 of the returns.
    kurtosis : float, default 3
        Kurtosis g4 of the returns (not excess: 3 for normal returns).

    Raises
    ------
    ValueError
        `n_obs` < 2, or the variance term is not positive.
    """
    if int(n_obs) != n_obs or n_obs < 2:
        raise ValueError(f"n_obs must be an integer >= 2, got {n_obs!r}")
    var = 1.0 - skew * sharpe + (kurtosis - 1.0) / 4.0 * sharpe * sharpe
    if not var > 0:
        raise ValueError(
            f"the variance term 1 - skew*SR + (kurtosis-1)/4*SR^2 = {var!r} is not positive "
            f"(sharpe={sharpe!r}, skew={skew!r}, kurtosis={kurtosis!r})")
    return _NORMAL.cdf((sharpe - benchmark) * math.sqrt(n_obs - 1.0) / math.sqrt(var))


def deflated_sharpe_ratio(sharpe: float, n_trials: int, sharpe_variance: float, n_obs: int,
                          skew: float = 0.0, kurtosis: float = 3.0) -> dict[str, float]:
    """Deflated Sharpe ratio: the PSR against the expected maximum Sharpe of the trials.

    Parameters
    ----------
    sharpe : float
        Per-period Sharpe ratio of the selected (best) trial.
    n_trials : int
        Number of trials N of the search.
    sharpe_variance : float
        Variance of the trials' per-period Sharpe ratios.
    n_obs : int
        Number of returns T of the selected trial.
    skew, kurtosis : float
        Skewness and (non-excess) kurtosis of its returns.

    Returns
    -------
    dict
        ``dsr`` (the probability that the true Sharpe exceeds the benchmark),
        ``sharpe`` (the given one), ``expected_max_sharpe`` (the benchmark
        SR0), ``n_trials``, ``n_obs``.

    Examples
    --------
    The worked example of the paper: 100 trials, annualised variance of their
    Sharpe ratios 1/2, the best annualised Sharpe 2.5 over 1,250 daily
    returns with skewness -3 and kurtosis 10 (250 days a year):

    >>> out = deflated_sharpe_ratio(2.5 / 250 ** 0.5, 100, 0.5 / 250, 1250, -3.0, 10.0)
    >>> round(out["expected_max_sharpe"], 4), round(out["dsr"], 4)
    (0.1132, 0.9004)
    """
    sr0 = expected_max_sharpe(n_trials, sharpe_variance)
    return {
        "dsr": probabilistic_sharpe_ratio(sharpe, sr0, n_obs, skew, kurtosis),
        "sharpe": float(sharpe),
        "expected_max_sharpe": sr0,
        "n_trials": float(n_trials),
        "n_obs": float(n_obs),
    }


def _moments(x: np.ndarray) -> tuple[float, float]:
    """Skewness and kurtosis (not excess) of ``x``, population estimators as in the paper."""
    d = x - x.mean()
    m2 = float(np.mean(d * d))
    if m2 == 0:
        return 0.0, 3.0
    return float(np.mean(d**3)) / m2**1.5, float(np.mean(d**4)) / m2**2


def per_period_sharpe(returns: np.ndarray) -> np.ndarray:
    """Per-period Sharpe ratio (mean / sample std) of each column; NaN with no variance."""
    r = np.asarray(returns, dtype=np.float64)
    mean = r.mean(axis=0)
    std = r.std(axis=0, ddof=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(std > 0, mean / std, np.nan)


def dsr_of_sweep(sweep: SweepResult) -> dict[str, float]:
    """Deflated Sharpe ratio of the best run of a sweep, the trials being its successful runs.

    With the runs' returns (``keep_returns=True``) the per-period Sharpe
    ratios, skewness, kurtosis and number of returns come from them;
    otherwise from the frame's ``sharpe`` (divided by the square root of
    ``periods_per_year``), ``skew`` and ``kurtosis`` columns and the data's
    number of timestamps.

    Raises
    ------
    ValueError
        Fewer than two successful runs with a finite Sharpe ratio.
    """
    frame = sweep.frame
    ok = (frame["status"] == "ok").to_numpy()
    if sweep.returns is not None:
        r = sweep.returns[ok]
        srs = per_period_sharpe(r.T)
        finite = np.isfinite(srs)
        if finite.sum() < 2:
            raise ValueError("the DSR needs at least two successful runs with a finite Sharpe")
        best = int(np.flatnonzero(finite)[np.argmax(srs[finite])])
        skew, kurt = _moments(r[best])
        n_obs = r.shape[1]
        return deflated_sharpe_ratio(float(srs[best]), int(finite.sum()),
                                     float(np.var(srs[finite], ddof=1)), n_obs, skew, kurt)
    for col in ("sharpe", "skew", "kurtosis", "periods_per_year"):
        if col not in frame.columns:
            raise ValueError(f"the DSR needs the {col!r} metric in the sweep (or keep_returns)")
    ppy = frame["periods_per_year"].cast(float).to_numpy()[ok]
    srs = frame["sharpe"].cast(float).to_numpy()[ok] / np.sqrt(ppy)
    finite = np.isfinite(srs)
    if finite.sum() < 2:
        raise ValueError("the DSR needs at least two successful runs with a finite Sharpe")
    best = int(np.flatnonzero(finite)[np.argmax(srs[finite])])
    skew = float(frame["skew"].cast(float).to_numpy()[ok][best])
    kurt = float(frame["kurtosis"].cast(float).to_numpy()[ok][best]) + 3.0
    n_obs = sweep.n_periods()
    return deflated_sharpe_ratio(float(srs[best]), int(finite.sum()),
                                 float(np.var(srs[finite], ddof=1)), n_obs, skew, kurt)


@dataclass(frozen=True)
class PBOResult:
    """The outcome of :func:`probability_of_backtest_overfitting`.

    Attributes
    ----------
    pbo : float
        The share of splits whose in-sample best configuration ranks at or
        below the median out of sample (logit <= 0).
    logits : ndarray of float64
        The logit ``ln(w / (1 - w))`` of each split, ``w`` the relative
        out-of-sample rank of the in-sample best, in the order of
        ``itertools.combinations(range(n_partitions), n_partitions // 2)``.
    chosen : ndarray of int64
        The in-sample best configuration (column) of each split.
    is_performance, oos_performance : ndarray of float64
        The chosen configuration's performance in and out of sample.
    n_partitions : int
        S, the number of row blocks.
    n_rows_used : int
        Rows of the matrix used (a multiple of S; the last ``T mod S`` rows are left out).
    """

    pbo: float
    logits: np.ndarray
    chosen: np.ndarray
    is_performance: np.ndarray
    oos_performance: np.ndarray
    n_partitions: int
    n_rows_used: int

    @property
    def n_splits(self) -> int:
        """Number of splits, ``C(S, S/2)``."""
        return int(self.logits.size)


def probability_of_backtest_overfitting(returns: Any, n_partitions: int = 16
                                        ) -> PBOResult:
    """Probability of backtest overfitting by combinatorially symmetric cross-validation (CSCV).

    The rows (periods) of the T x N matrix of returns (one column per
    configuration) are cut into S blocks of ``T // S`` consecutive rows
    (the last ``T mod S`` rows are left out). For each of the ``C(S, S/2)``
    ways to choose half the blocks as the in-sample set (the rest, in time
    order, out of sample), the configuration with the highest in-sample
    Sharpe ratio (mean / sample std of its returns; ties: the first column)
    is ranked out of sample: rank ``r`` = 1 + the number of configurations
    with a strictly lower out-of-sample Sharpe ratio, relative rank
    ``w = r / (N + 1)``, logit ``ln(w / (1 - w))``. PBO is the share of
    logits <= 0. A Sharpe ratio with no variance (NaN) ranks lowest.

    Parameters
    ----------
    returns : array_like, shape (T, N)
        Period returns, one column per configuration (N >= 2), all finite.
    n_partitions : int, default 16
        S: an even number >= 2 with at least two rows per block and at most
        :data:`MAX_SPLITS` splits (S <= 22).

    Returns
    -------
    PBOResult

    Raises
    ------
    ValueError
        Not a 2-D matrix, fewer than two configurations, a non-finite
        return (row and column named), an odd or too large S.
    """
    m = np.asarray(returns, dtype=np.float64)
    if m.ndim != 2:
        raise ValueError(f"returns must be a 2-D matrix (periods x configurations), got "
                         f"shape {m.shape}")
    t, n = m.shape
    if n < 2:
        raise ValueError(f"PBO needs at least two configurations (columns), got {n}")
    bad = np.argwhere(~np.isfinite(m))
    if bad.size:
        raise ValueError(f"returns must be finite: row {bad[0][0]}, column {bad[0][1]} is "
                         f"{m[bad[0][0], bad[0][1]]}; {len(bad)} such values")
    s = n_partitions
    if not isinstance(s, (int, np.integer)) or isinstance(s, bool) or s < 2 or s % 2:
        raise ValueError(f"n_partitions must be an even integer >= 2, got {s!r}")
    n_splits = math.comb(s, s // 2)
    if n_splits > MAX_SPLITS:
        raise ValueError(f"n_partitions={s} gives {n_splits:,} splits; at most "
                         f"{MAX_SPLITS:,} (n_partitions <= 22)")
    size = t // s
    if size < 2:
        raise ValueError(f"n_partitions={s} leaves fewer than two rows per block for "
                         f"{t} rows: use fewer partitions or more periods")
    used = size * s
    blocks = m[:used].reshape(s, size, n)
    sums = blocks.sum(axis=1)  # (S, N)
    sq = (blocks * blocks).sum(axis=1)
    combos = np.array(list(combinations(range(s), s // 2)), dtype=np.int64)
    half = float(size * (s // 2))

    def sharpe(sel: np.ndarray) -> np.ndarray:
        tot, tot2 = sel @ sums, sel @ sq
        mean = tot / half
        var = (tot2 - half * mean * mean) / (half - 1.0)
        with np.errstate(divide="ignore", invalid="ignore"):
            out = np.where(var > 0, mean / np.sqrt(np.maximum(var, 0.0)), np.nan)
        return np.where(np.isnan(out), -np.inf, out)

    k = combos.shape[0]
    chosen = np.empty(k, dtype=np.int64)
    is_best = np.empty(k)
    oos_chosen = np.empty(k)
    rank = np.empty(k, dtype=np.int64)
    step = max(1, _CHUNK_CELLS // max(n, s))  # bounds the memory of a chunk of splits
    for lo in range(0, k, step):
        part = combos[lo:lo + step]
        rows = np.arange(part.shape[0])
        member = np.zeros((part.shape[0], s), dtype=np.float64)
        member[rows[:, None], part] = 1.0
        is_sr = sharpe(member)
        oos_sr = sharpe(1.0 - member)
        best = np.argmax(is_sr, axis=1)
        chosen[lo:lo + step] = best
        is_best[lo:lo + step] = is_sr[rows, best]
        oos_chosen[lo:lo + step] = oos_sr[rows, best]
        rank[lo:lo + step] = 1 + (oos_sr < oos_sr[rows, best][:, None]).sum(axis=1)
    w = rank / (n + 1.0)
    logits = np.log(w / (1.0 - w))
    return PBOResult(
        pbo=float(np.mean(logits <= 0)),
        logits=logits,
        chosen=chosen,
        is_performance=is_best,
        oos_performance=oos_chosen,
        n_partitions=int(s),
        n_rows_used=int(used),
    )
