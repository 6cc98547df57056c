"""Seeded synthetic bars with a model-like prediction column, for demos, tests and benchmarks."""

from __future__ import annotations

import numpy as np
import polars as pl

__all__ = ["synthetic_bars"]


def synthetic_bars(
    n_assets: int = 20,
    n_bars: int = 756,
    *,
    seed: int = 0,
    start: str = "2020-01-01",
    every: str = "1d",
    skill: float = 0.05,
    persistence: float = 0.9,
    late_start: bool = False,
    weekends: bool = False,
) -> pl.DataFrame:
    """A long frame of random-walk bars with a prediction column ``pred``.

    Parameters
    ----------
    n_assets, n_bars : int
        Panel size. Assets are named ``A000``, ``A001``, ...
    seed : int
        Seed of the generator: the same arguments give the same frame.
    start, every : str
        First timestamp and bar spacing (``"<n><unit>"`` with unit ``s``,
        ``m``, ``h``, ``d`` or ``w``, such as ``"1d"`` or ``"1m"``). A
        spacing in days counts business days, Monday to Friday, as an exchange
        calendar without holidays; a ``start`` on a weekend moves to the next
        Monday. Other spacings are continuous.
    skill : float
        Correlation of ``pred`` with the next bar's return: ``pred`` stamped
        *t* is a noisy forecast of the return from *t*'s close to *t+1*'s,
        as a trained model would publish at *t*.
    persistence : float
        AR(1) coefficient of the forecast noise, so signals persist over
        several bars as real predictions do.
    late_start : bool
        When True, asset *i* starts ``i * 3`` bars late (for ragged panels).
    weekends : bool
        When True, a spacing in days counts calendar days, weekends included
        (a market that trades every day).

    Returns
    -------
    polars.DataFrame
        Columns ``timestamp, asset, open, high, low, close, volume, pred``,
        sorted by (timestamp, asset); prices are positive and consistent
        (``low <= open, close <= high``).
    """
    ts = _timestamps(n_bars, start, every, weekends)
    rng = np.random.default_rng(seed)
    vol = rng.uniform(0.01, 0.03, n_assets)
    rets = rng.standard_normal((n_bars, n_assets)) * vol
    close = 100.0 * np.exp(np.cumsum(rets, axis=0))
    gap = rng.standard_normal((n_bars, n_assets)) * vol * 0.2
    prev = np.vstack([np.full((1, n_assets), 100.0), close[:-1]])
    open_ = prev * np.exp(gap)
    spread = np.abs(rng.standard_normal((2, n_bars, n_assets))) * vol * 0.5
    high = np.maximum(open_, close) * (1.0 + spread[0])
    low = np.minimum(open_, close) * (1.0 - spread[1])
    volume = np.round(rng.lognormal(12.0, 0.5, (n_bars, n_assets)))
    noise = np.empty((n_bars, n_assets))
    noise[0] = rng.standard_normal(n_assets)
    shocks = rng.standard_normal((n_bars, n_assets)) * np.sqrt(1 - persistence**2)
    for t in range(1, n_bars):
        noise[t] = persistence * noise[t - 1] + shocks[t]
    nxt = np.vstack([rets[1:] / vol, np.zeros((1, n_assets))])
    pred = skill * nxt + np.sqrt(1 - skill**2) * noise
    frame = pl.DataFrame(
        {
            "timestamp": np.repeat(ts, n_assets),
            "asset": np.tile(np.array([f"A{i:03d}" for i in range(n_assets)]), n_bars),
            "open": open_.ravel(),
            "high": high.ravel(),
            "low": low.ravel(),
            "close": close.ravel(),
            "volume": volume.ravel(),
            "pred": pred.ravel(),
        }
    ).with_columns(pl.col("timestamp").cast(pl.Datetime("ns")))
    if late_start:
        bar = np.repeat(np.arange(n_bars), n_assets)
        first = np.tile(np.arange(n_assets) * 3, n_bars)
        frame = frame.filter(pl.Series(bar >= first))
    return frame


def _timestamps(n_bars: int, start: str, every: str, weekends: bool) -> np.ndarray:
    """``n_bars`` datetime64[ns] bar times from ``start``, ``every`` apart."""
    step = _duration_ns(every)
    first = np.datetime64(start, "ns")
    if every.rstrip().endswith("d") and not weekends and step % np.timedelta64(1, "D") == 0:
        day = first.astype("M8[D]")
        time_of_day = first - day.astype("M8[ns]")
        step_days = int(step // np.timedelta64(1, "D"))
        days = np.busday_offset(day, np.arange(n_bars, dtype=np.int64) * step_days,
                                roll="forward")
        last = days[-1] if n_bars else day
        if last > _LAST_NS_DAY:
            raise ValueError(_past_ns_range(n_bars, every, start, "business days"))
        return days.astype("M8[ns]") + time_of_day
    t0 = int(first.astype(np.int64))
    if n_bars > 1 and (np.iinfo(np.int64).max - t0) // int(step.astype(np.int64)) < n_bars - 1:
        raise ValueError(_past_ns_range(n_bars, every, start, "bars"))
    return first + np.arange(n_bars) * step


_LAST_NS_DAY = np.datetime64(np.iinfo(np.int64).max, "ns").astype("M8[D]") - np.timedelta64(1, "D")


def _past_ns_range(n_bars: int, every: str, start: str, what: str) -> str:
    return (f"{n_bars:,d} {what} of {every} from {start} run past 2262-04-11, the last "
            "timestamp of datetime64[ns]; use fewer bars or a shorter spacing")


def _duration_ns(every: str) -> np.timedelta64:
    """The bar spacing, read with the package's one duration grammar (> 0)."""
    from mlbacktest._time import parse_duration

    step = parse_duration(every, "every")
    if step <= 0:
        raise ValueError(f"every must be a positive bar spacing, got {every!r}")
    return np.timedelta64(step, "ns")
