"""Walk-forward analysis: re-optimise on each training window, trade the next test window.

See ``docs/guide/research.md`` ("Walk-forward") for the fold layout and how
the out-of-sample runs are stitched.
"""

from __future__ import annotations

import datetime as _dt
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import polars as pl

from mlbacktest._time import parse_duration
from mlbacktest.config import BacktestConfig
from mlbacktest.data.feeds import DataFeed
from mlbacktest.engine import _as_config
from mlbacktest.research._worker import Job, make_strategy, window_feed
from mlbacktest.research.executors import make_runner, parse_executor
from mlbacktest.research.sweep import (
    _frame,
    _metric_names,
    _strategy_factory,
    best_run,
    data_source,
    expand_grid,
    run_sweep,
)
from mlbacktest.results import BacktestResult

__all__ = ["walk_forward", "WalkForwardResult", "Fold", "make_folds"]

_INT64_MIN = np.iinfo(np.int64).min
CARRY_ORDER_ID: int = -1
"""``order_id`` of the bookkeeping fills that close, at the end of a test window, a position
still held there (at the last close, with no cost)."""


@dataclass(frozen=True)
class Fold:
    """One fold: calendar positions (indices into the distinct timestamps, ``hi`` exclusive).

    Attributes
    ----------
    train_lo, train_hi : int
        The training window.
    fit_hi : int
        End of the training data actually used: ``train_hi`` less the purge.
    test_lo, test_hi : int
        The test window (after the embargo).
    warm_lo : int
        First bar of the out-of-sample run (its warm-up starts there).
    """

    train_lo: int
    train_hi: int
    fit_hi: int
    test_lo: int
    test_hi: int
    warm_lo: int


def _span(value: Any, name: str, allow_zero: bool) -> tuple[str, int]:
    """("bars", n) for an int, ("ns", d) for a duration; ValueError when negative or zero."""
    if isinstance(value, (int, np.integer)) and not isinstance(value, bool):
        n = int(value)
        if n < 0 or (n == 0 and not allow_zero):
            raise ValueError(f"{name} must be {'>= 0' if allow_zero else '> 0'} bars, got {n}")
        return "bars", n
    if isinstance(value, (str, _dt.timedelta, np.timedelta64)):
        d = parse_duration(value, name)
        if d < 0 or (d == 0 and not allow_zero):
            raise ValueError(f"{name} must be a {'non-negative' if allow_zero else 'positive'} "
                             f"duration, got {value!r}")
        return "ns", d
    raise TypeError(f"{name} must be a number of bars (int) or a duration ('30d', "
                    f"timedelta), got {type(value).__name__}")


def make_folds(calendar: np.ndarray, train: Any, test: Any, step: Any = None, *,
               anchored: bool = False, purge: Any = 0, embargo: Any = 0,
               warmup: Any = None) -> list[Fold]:
    """The folds of a walk-forward over the distinct timestamps ``calendar`` (int64 ns).

    `train`, `test` and `step` are all bars (ints) or all durations. Fold
    ``k``'s training window starts at the first bar (anchored) or ``k * step``
    after it, and ends ``train + k * step`` after the first bar; the last
    `purge` of it are left out of the training data; the test window starts
    `embargo` after the training window and lasts `test` (the last one may be
    shorter). Folds continue while a test window has a bar. `warmup` (bars
    or a duration before the test window; default: from the training
    window's start) is where the out-of-sample run starts.

    Raises
    ------
    ValueError
        Bad spans, a mix of bars and durations among train/test/step, or no
        fold fits in the calendar.
    TypeError
        A span that is neither an int nor a duration.
    """
    cal = np.asarray(calendar, dtype=np.int64)
    n = cal.size
    kinds = {}
    tr = _span(train, "train", False)
    te = _span(test, "test", False)
    st = te if step is None else _span(step, "step", False)
    for name, (kind, _) in (("train", tr), ("test", te), ("step", st)):
        kinds[name] = kind
    if len(set(kinds.values())) > 1:
        raise ValueError(f"train, test and step must all be bars or all durations, got "
                         f"{', '.join(f'{k} in {v}' for k, v in kinds.items())}")
    pu = _span(purge, "purge", True)
    em = _span(embargo, "embargo", True)
    wu = None if warmup is None else _span(warmup, "warmup", True)
    bars = tr[0] == "bars"
    folds: list[Fold] = []
    k = 0
    while True:
        if bars:
            train_lo = 0 if anchored else k * st[1]
            train_hi = tr[1] + k * st[1]
            end_t = None
        else:
            t0 = int(cal[0])
            start_t = t0 if anchored else t0 + k * st[1]
            end_t = t0 + tr[1] + k * st[1]
            train_lo = int(np.searchsorted(cal, start_t, "left"))
            train_hi = int(np.searchsorted(cal, end_t, "left"))
        if train_hi > n:
            break
        fit_hi = (train_hi - pu[1] if pu[0] == "bars" else
                  int(np.searchsorted(cal, (end_t if end_t is not None else _t(cal, train_hi))
                                      - pu[1], "left")))
        test_lo = (train_hi + em[1] if em[0] == "bars" else
                   int(np.searchsorted(cal, (end_t if end_t is not None else _t(cal, train_hi))
                                       + em[1], "left")))
        if test_lo >= n:
            break
        if bars:
            test_hi = min(test_lo + te[1], n)
        else:
            assert end_t is not None
            # The test window starts where the embargo ends: a time, or the first bar after
            # an embargo counted in bars.
            start = end_t + em[1] if em[0] == "ns" or em[1] == 0 else int(cal[test_lo])
            test_hi = max(int(np.searchsorted(cal, start + te[1], "left")), test_lo + 1)
        if fit_hi - train_lo < 2:
            raise ValueError(f"fold {k}: the training window holds {fit_hi - train_lo} bar(s) "
                             "after the purge; lengthen train or shorten purge")
        if wu is None:
            warm_lo = train_lo
        elif wu[0] == "bars":
            warm_lo = max(0, test_lo - wu[1])
        else:
            warm_lo = int(np.searchsorted(cal, int(cal[test_lo]) - wu[1], "left"))
        folds.append(Fold(train_lo, train_hi, fit_hi, test_lo, test_hi, warm_lo))
        k += 1
    if not folds:
        raise ValueError(f"no fold fits in the data's {n} timestamps with train={train!r}, "
                         f"test={test!r}, embargo={embargo!r}")
    return folds


def _t(cal: np.ndarray, i: int) -> int:
    """The timestamp at calendar position ``i`` (one past the end: the last + 1 ns)."""
    return int(cal[i]) if i < cal.size else int(cal[-1]) + 1


def _window(cal: np.ndarray, lo: int, hi: int) -> tuple[int, int]:
    """The time window ``[ts_lo, ts_hi)`` of calendar positions ``[lo, hi)``."""
    return int(cal[lo]), int(cal[hi - 1]) + 1


@dataclass
class WalkForwardResult:
    """The outcome of :func:`walk_forward`.

    Attributes
    ----------
    result : BacktestResult
        The stitched out-of-sample result (see :func:`stitch`).
    folds : polars.DataFrame
        One row per fold: ``fold``; ``train_start``, ``train_end`` (first and
        last bar of the training data, after the purge), ``test_start``,
        ``test_end`` (first and last bar of the test window),
        ``warmup_start``; the chosen parameters; ``is_<metric>`` (in sample,
        of the chosen run) and ``oos_<metric>`` (of the fold's test window)
        for every metric.
    fold_results : list of BacktestResult
        Each fold's out-of-sample segment, starting from the initial cash.
    in_sample : list of polars.DataFrame
        Each fold's training sweep frame.
    """

    result: BacktestResult
    folds: pl.DataFrame
    fold_results: list[BacktestResult]
    in_sample: list[pl.DataFrame]


def _positions(fills: Mapping[str, np.ndarray], n_assets: int, before: int | None
               ) -> np.ndarray:
    """Signed position of each asset from the fills (those with ts < ``before``)."""
    pos = np.zeros(n_assets)
    sel = slice(None) if before is None else fills["ts"] < before
    np.add.at(pos, fills["asset"][sel], fills["quantity"][sel])
    return pos


def _mark(panel: Any, asset: int, at: int) -> float:
    """The last close of ``asset`` at or before ``at`` (ns)."""
    idx = np.flatnonzero((panel.asset == asset) & (panel.ts <= at))
    return float(panel.close[idx[-1]])


def segment(run: BacktestResult, panel: Any, test_start: int, test_end: int, start_equity: float,
            close_at_end: bool, id_offset: int = 0) -> dict[str, Any]:
    """The record of ``run`` over its test window, scaled to start at ``start_equity``.

    ``run`` traded from ``test_start`` on (``BacktestEngine(trade_from=...)``):
    it is flat there and its equity record starts there. Every amount (cash,
    values, exposures, fill quantities and costs, order quantities) is
    multiplied by ``c = start_equity / E``, ``E`` the run's equity before its
    first recorded bar (its initial cash), so the segment's returns are the
    run's. With ``close_at_end``, a position still held at ``test_end`` gets
    a closing fill at ``test_end`` at its last close, with no cost and
    ``order_id`` -1. Order ids (and their references) are shifted by
    ``id_offset``; the orders refused during the warm-up are left out.
    """
    e, f, o = run._equity, run._fills, run._orders
    m = int(np.searchsorted(e["ts"], test_start, "left"))
    before = float(e["equity"][m - 1]) if m > 0 else run.initial_cash
    c = start_equity / before
    eq = {"ts": e["ts"][m:].copy()}
    for k in ("cash", "positions_value", "gross_exposure", "net_exposure"):
        eq[k] = e[k][m:] * c
    eq["equity"] = eq["cash"] + eq["positions_value"]
    n_assets = len(run.asset_names)
    sel = f["ts"] >= test_start
    fills = {k: np.asarray(v)[sel].copy() for k, v in f.items()}
    fills["order_id"] = np.where(fills["order_id"] >= 0, fills["order_id"] + id_offset,
                                 fills["order_id"])
    for k in ("quantity", "commission", "slippage"):
        fills[k] = fills[k] * c
    if _positions(f, n_assets, test_start).any():
        raise RuntimeError("walk_forward: an out-of-sample run traded before its test window")
    extra: list[dict[str, Any]] = []
    if close_at_end:
        held = _positions(f, n_assets, None)
        for a in np.flatnonzero(held != 0):
            extra.append({"ts": test_end, "asset": a, "quantity": -held[a] * c,
                          "price": _mark(panel, int(a), test_end)})
    if extra:
        add = {
            "ts": np.array([x["ts"] for x in extra], dtype=np.int64),
            "asset": np.array([x["asset"] for x in extra], dtype=np.int32),
            "order_id": np.full(len(extra), CARRY_ORDER_ID, dtype=np.int64),
            "quantity": np.array([x["quantity"] for x in extra], dtype=np.float64),
            "price": np.array([x["price"] for x in extra], dtype=np.float64),
            "commission": np.zeros(len(extra)),
            "slippage": np.zeros(len(extra)),
        }
        for k in fills:
            if k not in add:
                add[k] = np.full(len(extra), np.nan)
        order = np.argsort(np.concatenate([fills["ts"], add["ts"]]), kind="stable")
        fills = {k: np.concatenate([fills[k], add[k]])[order] for k in fills}
    keep = ((o["created_ts"] >= test_start) | (o["closed_ts"] >= test_start)
            | (o["closed_ts"] == _INT64_MIN))
    orders: dict[str, Any] = {k: np.asarray(v)[keep].copy() for k, v in o.items()}
    for k in ("quantity", "filled_quantity"):
        orders[k] = orders[k] * c
    for k in ("order_id", "parent", "oco_group"):
        if k in orders:
            orders[k] = np.where(orders[k] >= 0, orders[k] + id_offset, orders[k])
    orders["reason"] = [r for r, k in zip(run._reason, keep, strict=True) if k]
    return {"equity": eq, "fills": fills, "orders": orders, "scale": c}


def _concat(parts: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k in parts[0]:
        if isinstance(parts[0][k], list):
            out[k] = [x for p in parts for x in p[k]]
        else:
            out[k] = np.concatenate([p[k] for p in parts])
    return out


def stitch(runs: Sequence[BacktestResult], panel: Any, windows: Sequence[tuple[int, int]],
           initial_cash: float, config: Any) -> tuple[BacktestResult, list[BacktestResult]]:
    """The stitched out-of-sample result and each fold's segment result.

    Fold ``k``'s segment (see :func:`segment`) starts at the stitched equity
    where fold ``k - 1`` ended, so the stitched equity compounds the folds'
    out-of-sample returns; positions are closed (at the last close, no cost)
    at the end of each test window but the last.
    """
    parts, alone = [], []
    equity = float(initial_cash)
    offset = 0
    last = len(runs) - 1
    for k, (run, (lo, hi)) in enumerate(zip(runs, windows, strict=True)):
        seg = segment(run, panel, lo, hi - 1, equity, k < last, offset)
        one = segment(run, panel, lo, hi - 1, float(initial_cash), False, 0)
        alone.append(_result(one, run, initial_cash, config))
        parts.append(seg)
        equity = float(seg["equity"]["equity"][-1])
        ids = run._orders["order_id"]
        offset += int(ids.max()) + 1 if ids.size else 0
    stitched = {name: _concat([p[name] for p in parts]) for name in ("equity", "fills", "orders")}
    return _result(stitched, runs[0], initial_cash, config), alone


def _result(parts: Mapping[str, Any], like: BacktestResult, initial_cash: float,
            config: Any) -> BacktestResult:
    return BacktestResult(parts["equity"], parts["fills"], parts["orders"],
                          asset_names=like.asset_names, tz=like.tz,
                          initial_cash=initial_cash, config=config,
                          periods_per_year=config.periods_per_year, risk_free=config.risk_free)


def walk_forward(
    strategy: Any,
    grid: Mapping[str, Sequence[Any]] | Sequence[Mapping[str, Any]],
    data: Any,
    config: BacktestConfig | Mapping[str, Any] | None = None,
    *,
    train: int | str | Any,
    test: int | str | Any,
    step: int | str | Any = None,
    anchored: bool = False,
    objective: str = "sharpe",
    maximize: bool = True,
    purge: int | str | Any = 0,
    embargo: int | str | Any = 0,
    warmup: int | str | Any = None,
    executor: Any = None,
    progress: bool = True,
    feed_options: Mapping[str, Any] | None = None,
) -> WalkForwardResult:
    """Walk-forward optimisation: sweep each training window, trade the best on the next.

    For each fold (see :func:`make_folds`) the grid is swept on the
    training window (purged), the parameter set with the best `objective`
    is chosen (ties: the first in the grid; failed runs and NaN never win),
    and it is run out of sample on the test window. The out-of-sample run
    starts at `warmup` before the test window (default: the training
    window's start) with ``trade_from`` at the test window's first bar
    (see :class:`~mlbacktest.BacktestEngine`): the strategy's hooks run on
    the warm-up bars, so its history and indicators are warmed on data
    before the test window only, but every order it places there is
    refused ("before trading start"), so it enters the test window flat,
    with its initial cash. Its record over the test window is the fold's
    out-of-sample segment; the segments are stitched into one result (see
    :func:`stitch`).

    Parameters
    ----------
    strategy, grid, data, config, executor, progress, feed_options
        As for :func:`~mlbacktest.research.sweep`. The training sweeps run
        on `executor`; the out-of-sample runs (one per fold) in this process.
    train, test, step : int or duration
        Window lengths in bars (ints) or durations (``"365d"``,
        ``datetime.timedelta``); all three of one kind. `step` defaults to `test`.
    anchored : bool, default False
        Every training window starts at the first bar (expanding windows).
    objective : str, default "sharpe"
        The metric that picks the parameters.
    maximize : bool, default True
        Pick the highest `objective` (False: the lowest).
    purge : int or duration, default 0
        Left out of the end of each training window (labels that would look
        into the test window).
    embargo : int or duration, default 0
        Skipped between each training window and its test window.
    warmup : int or duration, optional
        How far before the test window the out-of-sample run starts.

    Returns
    -------
    WalkForwardResult

    Raises
    ------
    ValueError, TypeError
        Bad arguments (checked before any run), as for :func:`make_folds` and
        :func:`~mlbacktest.research.sweep`; an objective that is not a metric;
        a fold whose training runs all fail (the message names the fold).
    Exception
        An out-of-sample run that raises propagates its exception (with the
        engine's note naming the hook and timestamp): a failing training run
        only loses its row, but the fold's chosen parameters must run.
    """
    factory = _strategy_factory(strategy)
    params = expand_grid(grid)
    cfg = _as_config(config)
    parse_executor(executor)
    if objective not in _metric_names():
        raise ValueError(f"objective {objective!r} is not a metric; metrics: "
                         f"{list(_metric_names())}")
    source = data_source(data, feed_options)
    feed: DataFeed = source.load()
    cal = feed.calendar()
    folds = make_folds(cal, train, test, step, anchored=anchored, purge=purge,
                       embargo=embargo, warmup=warmup)
    job = Job(factory, cfg)
    names = _metric_names()
    chosen: list[int] = []
    in_sample: list[pl.DataFrame] = []
    with make_runner(executor, job, source) as runner:
        for k, fold in enumerate(folds):
            outcomes = run_sweep(runner, params, window=_window(cal, fold.train_lo, fold.fit_hi),
                                 progress=progress, desc=f"fold {k}")
            frame = _frame(params, outcomes, names)
            try:
                chosen.append(best_run(frame, objective, maximize))
            except ValueError as exc:
                raise ValueError(f"walk_forward fold {k}: {exc}") from exc
            in_sample.append(frame)
    runs = []
    from mlbacktest.engine import BacktestEngine

    for fold, i in zip(folds, chosen, strict=True):
        # Hooks run from the warm-up's first bar (history and indicators warm up); orders
        # are refused until the test window opens, so the run starts it flat.
        sub = window_feed(feed, _window(cal, fold.warm_lo, fold.test_hi))
        runs.append(BacktestEngine(sub, make_strategy(factory, params[i]), cfg,
                                   trade_from=int(cal[fold.test_lo])).run(progress=False))
    windows = [(int(cal[f.test_lo]), int(cal[f.test_hi - 1]) + 1) for f in folds]
    result, alone = stitch(runs, feed.panel, windows, cfg.initial_cash, cfg)
    table = _fold_table(folds, cal, params, chosen, in_sample, alone, feed.tz)
    return WalkForwardResult(result, table, alone, in_sample)


def _fold_table(folds: Sequence[Fold], cal: np.ndarray, params: list[dict[str, Any]],
                chosen: Sequence[int], in_sample: Sequence[pl.DataFrame],
                alone: Sequence[BacktestResult], tz: str | None) -> pl.DataFrame:
    def stamp(name: str, idx: list[int]) -> pl.Series:
        s = pl.Series(name, cal[idx], dtype=pl.Int64).cast(pl.Datetime("ns"))
        return s.dt.replace_time_zone("UTC").dt.convert_time_zone(tz) if tz else s

    cols = [
        pl.Series("fold", np.arange(len(folds), dtype=np.int64)),
        stamp("train_start", [f.train_lo for f in folds]),
        stamp("train_end", [f.fit_hi - 1 for f in folds]),
        stamp("test_start", [f.test_lo for f in folds]),
        stamp("test_end", [f.test_hi - 1 for f in folds]),
        stamp("warmup_start", [f.warm_lo for f in folds]),
        pl.Series("run", list(chosen), dtype=pl.Int64),
    ]
    for key in params[0]:
        cols.append(pl.Series(key, [params[i][key] for i in chosen], strict=False))
    table = pl.DataFrame(cols)
    is_rows = pl.concat([f.filter(pl.col("run") == i) for f, i in zip(in_sample, chosen,
                                                                      strict=True)])
    metric_cols = [c for c in is_rows.columns if c in _metric_names()]
    table = table.with_columns(is_rows.select(
        [pl.col(c).alias(f"is_{c}") for c in metric_cols]))
    oos = [r.metrics for r in alone]
    return table.with_columns([pl.Series(f"oos_{m}", [x[m] for x in oos], strict=False)
                               for m in metric_cols])
