"""Parameter sweeps: one backtest per parameter set, on any executor, resumable.

See ``docs/guide/research.md``.
"""

from __future__ import annotations

import hashlib
import io
import itertools
import json
import math
import os
import stat
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

from mlbacktest.config import BacktestConfig
from mlbacktest.data.feeds import DataFeed
from mlbacktest.engine import _as_config
from mlbacktest.research._worker import (
    FeedSource,
    Job,
    ParquetSource,
    TaskOutcome,
    make_strategy,
    panel_fingerprint,
    window_feed,
)
from mlbacktest.research.executors import Runner, make_runner, parse_executor
from mlbacktest.results import BacktestResult

__all__ = ["sweep", "SweepResult", "expand_grid", "data_source", "RESERVED_COLUMNS"]

RESERVED_COLUMNS: tuple[str, ...] = ("run", "status", "error", "run_time_s")
"""Columns of a sweep frame that are not parameters nor metrics."""

SWEEP_FORMAT = "mlbacktest-sweep"
"""The ``format`` of ``sweep.json``, which marks a directory a sweep wrote."""
_SWEEP_META = "sweep.json"
_SWEEP_FRAME = "sweep.parquet"
_RUNS_DIR = "runs"
_RESULTS_DIR = "results"
_REPORT = "report.html"
_SWEEP_ENTRIES = frozenset({_SWEEP_META, _SWEEP_FRAME, _RUNS_DIR, _RESULTS_DIR, _REPORT})

_SCALARS = (bool, int, float, str)


def _metric_names() -> tuple[str, ...]:
    from mlbacktest.results.metrics import METRIC_SECTIONS

    return tuple(m for _, names in METRIC_SECTIONS for m in names)


# --------------------------------------------------------------------------- #
# Arguments
# --------------------------------------------------------------------------- #
def expand_grid(grid: Mapping[str, Sequence[Any]] | Sequence[Mapping[str, Any]]
                ) -> list[dict[str, Any]]:
    """The parameter sets of a grid, in grid order.

    Parameters
    ----------
    grid : dict of str to list, or list of dict
        A dict of lists is the Cartesian product, the last key varying
        fastest; a list of dicts is taken as given (every dict with the same keys).
        numpy scalars (from ``np.arange``, say) become Python numbers.

    Returns
    -------
    list of dict

    Raises
    ------
    ValueError
        An empty grid or list of values; a dict of the list with other keys
        than the first; a parameter named like a column of the sweep frame
        or a metric; a value that is not a bool, int, float, str or None.
    TypeError
        The grid is neither a dict nor a list of dicts.
    """
    if isinstance(grid, Mapping):
        if not grid:
            raise ValueError("grid: the dict of parameters is empty")
        keys = list(grid)
        for k in keys:
            values = grid[k]
            if isinstance(values, (str, bytes)) or not isinstance(values, Iterable):
                raise ValueError(
                    f"grid: parameter {k!r} must map to a list of values, got {values!r}")
            if not list(values):
                raise ValueError(f"grid: parameter {k!r} has no value")
        product = itertools.product(*(list(grid[k]) for k in keys))
        combos = [dict(zip(keys, vals, strict=True)) for vals in product]
    elif isinstance(grid, Sequence) and not isinstance(grid, (str, bytes)):
        combos = []
        for i, row in enumerate(grid):
            if not isinstance(row, Mapping):
                raise TypeError(f"grid: entry {i} is {type(row).__name__}, not a dict")
            combos.append(dict(row))
        if not combos:
            raise ValueError("grid: the list of parameter sets is empty")
        first = list(combos[0])
        for i, row in enumerate(combos):
            if list(row) != first:
                raise ValueError(
                    f"grid: entry {i} has the parameters {list(row)}, entry 0 has {first}; "
                    "every parameter set names the same parameters, in the same order")
    else:
        raise TypeError(
            f"grid must be a dict of lists or a list of dicts, got {type(grid).__name__}")
    taken = set(RESERVED_COLUMNS) | set(_metric_names())
    for i, row in enumerate(combos):
        for k, v in list(row.items()):
            if isinstance(v, np.generic) and not isinstance(v, (np.datetime64, np.timedelta64)):
                v = row[k] = v.item()  # np.arange(...) values become Python numbers
            if not isinstance(k, str) or not k:
                raise ValueError(f"grid: parameter names must be non-empty strings, got {k!r}")
            if k in taken:
                raise ValueError(
                    f"grid: parameter {k!r} has the name of a column of the sweep frame "
                    "(a metric or one of run, status, error, run_time_s); rename it")
            if v is not None and not isinstance(v, _SCALARS):
                raise ValueError(
                    f"grid: parameter set {i}, {k}={v!r}: values must be bool, int, float, "
                    f"str or None, got {type(v).__name__}")
    return combos


def data_source(data: Any, feed_options: Mapping[str, Any] | None = None
                ) -> FeedSource | ParquetSource:
    """The source of a sweep's bars, checked before any run.

    Parameters
    ----------
    data : DataFeed, polars DataFrame/LazyFrame, or path
        An in-memory feed; a frame (validated here into a feed); or a parquet
        file, directory or glob (each worker opens it with `feed_options`,
        filters pushed into the scan). CSV and Arrow IPC paths are read here
        into a feed.
    feed_options : mapping, optional
        Keyword arguments of the feed built from a frame or path
        (``signal_columns``, ``start``, ``end``, ``assets``, ...).

    Raises
    ------
    TypeError
        Feed options with a feed, or a streamed feed (pass its path instead).
    FileNotFoundError
        The path names no file.
    """
    from mlbacktest.data.feeds import PolarsDataFeed, open_feed
    from mlbacktest.data.files import file_format, resolve_path

    options = dict(feed_options or {})
    if isinstance(data, DataFeed):
        if options:
            raise TypeError(f"feed options {sorted(options)} need a frame or path, not a feed")
        if data.streaming:
            raise TypeError(
                "a sweep cannot share a streamed feed (ParquetDataFeed with chunk=): pass the "
                "parquet path and the feed options instead, and each worker opens it")
        return FeedSource(data, panel_fingerprint(data))
    if isinstance(data, (str, os.PathLike)) or (
        isinstance(data, (list, tuple)) and data
        and all(isinstance(p, (str, os.PathLike)) for p in data)
    ):
        path = resolve_path(data)
        if file_format(data) != "parquet":
            feed = open_feed(data, **options)
            return FeedSource(feed, panel_fingerprint(feed))
        h = hashlib.sha256(b"mlbacktest-parquet-1")
        for f in _parquet_files(path):
            st = os.stat(f)
            h.update(f"{os.path.abspath(f)}\0{st.st_size}\0{st.st_mtime_ns}\n".encode())
        h.update(repr(sorted((k, repr(v)) for k, v in options.items())).encode())
        return ParquetSource(path, options, h.hexdigest())
    feed = PolarsDataFeed(data, **options)
    return FeedSource(feed, panel_fingerprint(feed))


def _parquet_files(path: str | list[str]) -> list[str]:
    import glob

    found: list[str] = []
    for p in [path] if isinstance(path, str) else path:
        if os.path.isdir(p):
            found += [os.path.join(d, f) for d, _, fs in os.walk(p) for f in fs]
        elif glob.has_magic(p):
            found += glob.glob(p, recursive=True)
        else:
            found.append(p)
    return sorted(found)


def _strategy_factory(strategy: Any) -> Callable[..., Any]:
    from mlbacktest.strategy import Strategy

    if isinstance(strategy, Strategy):
        raise TypeError(
            "strategy must be a Strategy class or a factory returning a new instance for each "
            f"run, not an instance ({type(strategy).__name__}): a run changes its state")
    if isinstance(strategy, type) and not issubclass(strategy, Strategy):
        raise TypeError(f"strategy class {strategy.__name__} is not a subclass of Strategy")
    if not callable(strategy):
        raise TypeError(
            f"strategy must be a Strategy class or a factory, got {type(strategy).__name__}")
    return strategy  # type: ignore[no-any-return]


def _strategy_name(strategy: Any) -> str:
    return f"{getattr(strategy, '__module__', '?')}.{getattr(strategy, '__qualname__', '?')}"


# --------------------------------------------------------------------------- #
# The result
# --------------------------------------------------------------------------- #
class SweepResult:
    """The outcome of :func:`sweep`: a frame, one row per parameter set, and what made it.

    It reads as its :attr:`frame`: attributes it does not have and indexing
    are those of the frame (``result["sharpe"]``, ``result.sort("sharpe")``,
    ``result.columns``).

    Attributes
    ----------
    frame : polars.DataFrame
        In grid order: ``run`` (the position in the grid), the parameters,
        ``status`` (``"ok"`` or ``"error"``), ``error`` (the exception of a
        failed run, else null), every metric of ``result.metrics`` (null
        for a failed run) and ``run_time_s`` (wall-clock seconds of the run).
        Everything but ``run_time_s`` is the same, bit for bit, on every
        executor: compare ``frame.drop("run_time_s")``.
    params : list of dict
        The parameter sets, in grid order.
    timestamps : ndarray of int64 or None
        With ``keep_returns=True``: the equity timestamps of the runs.
    returns : ndarray of float64, shape (n_runs, n_periods), or None
        With ``keep_returns=True``: the period returns of each run (a row of
        NaN for a failed run).
    out : pathlib.Path or None
        The output directory, if any.
    """

    def __init__(self, frame: pl.DataFrame, params: list[dict[str, Any]], *, strategy: Any,
                 source: FeedSource | ParquetSource, config: BacktestConfig,
                 window: tuple[int, int] | None = None, timestamps: np.ndarray | None = None,
                 returns: np.ndarray | None = None, out: Path | None = None,
                 n_periods: int | None = None) -> None:
        self.frame = frame
        self.params = params
        self.timestamps = timestamps
        self.returns = returns
        self.out = out
        self._strategy = strategy
        self._source = source
        self._config = config
        self._window = window
        self._n_periods = n_periods

    def __len__(self) -> int:
        return self.frame.height

    def __getattr__(self, name: str) -> Any:
        # Read it as its frame: result.filter(...), result.sort(...), result.columns, ...
        if name.startswith("_") or name == "frame":
            raise AttributeError(name)
        return getattr(self.frame, name)

    def __getitem__(self, key: Any) -> Any:
        return self.frame[key]

    def __repr__(self) -> str:
        ok = int((self.frame["status"] == "ok").sum())
        return f"SweepResult(runs={self.frame.height}, ok={ok}, failed={self.frame.height - ok})"

    def result_of(self, row: int | Mapping[str, Any]) -> BacktestResult:
        """Rebuild the full BacktestResult of one row, by running it again in this process.

        Parameters
        ----------
        row : int or mapping
            The row's ``run`` number, or a row of :attr:`frame` as a dict
            (``frame.row(i, named=True)``).

        Raises
        ------
        IndexError
            No such run.
        """
        i = int(row["run"]) if isinstance(row, Mapping) else int(row)
        if not 0 <= i < len(self.params):
            raise IndexError(f"result_of: run {i} is not in this sweep of {len(self.params)} runs")
        from mlbacktest.engine import BacktestEngine

        feed = self._source.load()
        if self._window is not None:
            feed = window_feed(feed, self._window)
        strategy = make_strategy(self._strategy, self.params[i])
        return BacktestEngine(feed, strategy, self._config).run(progress=False)

    def n_periods(self) -> int:
        """Number of equity periods of a run (the distinct timestamps of the sweep's bars).

        Raises
        ------
        ValueError
            No run succeeded.
        """
        if self._n_periods is None:
            raise ValueError("no run of the sweep succeeded")
        return self._n_periods

    def best(self, objective: str = "sharpe", maximize: bool = True) -> int:
        """The ``run`` of the best successful row by ``objective`` (ties: the first in the grid).

        Raises
        ------
        ValueError
            `objective` is not a column of the frame, or no run succeeded with
            a finite value of it.
        """
        return best_run(self.frame, objective, maximize)

    def deflated_sharpe(self) -> dict[str, float]:
        """Deflated Sharpe ratio of the best run.

        See :func:`mlbacktest.research.stats.dsr_of_sweep`.
        """
        from mlbacktest.research.stats import dsr_of_sweep

        return dsr_of_sweep(self)

    def pbo(self, n_partitions: int = 16, **kwargs: Any) -> Any:
        """Probability of backtest overfitting of the grid (needs ``keep_returns=True``).

        See :func:`mlbacktest.research.stats.probability_of_backtest_overfitting`.
        """
        from mlbacktest.research.stats import probability_of_backtest_overfitting

        if self.returns is None:
            raise ValueError("pbo needs the runs' return series: run the sweep with "
                             "keep_returns=True")
        ok = np.flatnonzero(self.frame["status"].to_numpy() == "ok")
        return probability_of_backtest_overfitting(self.returns[ok].T, n_partitions, **kwargs)

    def summary(self, objective: str = "sharpe", n_partitions: int = 16) -> dict[str, Any]:
        """The sweep in a few numbers: its runs, the best one, its DSR and the grid's PBO.

        Parameters
        ----------
        objective : str, default "sharpe"
            The metric that picks the best run.
        n_partitions : int, default 16
            Partitions of the PBO; lowered (by twos) until each block has two
            periods when the runs are short.

        Returns
        -------
        dict
            ``runs``, ``failed``; with a successful run ``best_run``,
            ``best_params`` and ``best_<objective>``; ``dsr_dsr``,
            ``dsr_sharpe``, ``dsr_expected_max_sharpe``, ``dsr_n_trials`` and
            ``dsr_n_obs`` (see :meth:`deflated_sharpe`) when two runs have a
            finite Sharpe ratio; ``pbo`` and ``pbo_partitions`` with the
            runs' returns (``keep_returns=True``) and two successful runs.
        """
        out: dict[str, Any] = {
            "runs": self.frame.height,
            "failed": int((self.frame["status"] != "ok").sum()),
        }
        try:
            b = self.best(objective)
        except ValueError:
            return out
        out["best_run"] = b
        out["best_params"] = self.params[b]
        out[f"best_{objective}"] = self.frame[objective][b]
        try:
            out.update({f"dsr_{k}": v for k, v in self.deflated_sharpe().items()})
        except ValueError:
            pass
        if self.returns is not None and self.frame.height - out["failed"] >= 2:
            from mlbacktest.research.stats import MAX_SPLITS

            s = n_partitions
            while s > 2 and (self.returns.shape[1] // s < 2
                             or math.comb(s, s // 2) > MAX_SPLITS):
                s -= 2
            if self.returns.shape[1] // s >= 2:
                out["pbo"] = self.pbo(s).pbo
                out["pbo_partitions"] = s
        return out

    def report(self, path: str | os.PathLike[str], *, x: str | None = None,
               y: str | None = None, metric: str = "sharpe", n_partitions: int = 16,
               title: str | None = None) -> Path:
        """Write a small HTML report: heat map of `metric` over `x` and `y`, DSR, PBO.

        See :func:`mlbacktest.research.report.write_sweep_report`.
        """
        from mlbacktest.research.report import write_sweep_report

        return write_sweep_report(self, path, x=x, y=y, metric=metric,
                                  n_partitions=n_partitions, title=title)


def best_run(frame: pl.DataFrame, objective: str, maximize: bool = True) -> int:
    """The ``run`` of the best ``ok`` row of a sweep frame by a column (first in grid order)."""
    if objective not in frame.columns or objective in RESERVED_COLUMNS:
        raise ValueError(
            f"objective {objective!r} is not a metric of the sweep; metrics: "
            f"{[c for c in frame.columns if c in _metric_names()]}")
    values = frame[objective].cast(pl.Float64).to_numpy().copy()
    ok = (frame["status"] == "ok").to_numpy() & np.isfinite(values)
    if not ok.any():
        raise ValueError(f"no run of the sweep succeeded with a finite {objective}")
    values = np.where(ok, values if maximize else -values, -np.inf)
    return int(frame["run"][int(np.argmax(values))])


# --------------------------------------------------------------------------- #
# Output directory
# --------------------------------------------------------------------------- #
class _SweepDir:
    """The ``out=`` directory of a sweep: header, one file per finished run."""

    def __init__(self, path: str | os.PathLike[str], header: dict[str, Any]) -> None:
        root = Path(path)
        if root.is_symlink():
            raise FileExistsError(f"sweep(out=...): {str(root)!r} is a symbolic link; "
                                  "mlbacktest does not write through links")
        if root.exists() and not root.is_dir():
            raise NotADirectoryError(f"sweep(out=...): {str(root)!r} is not a directory")
        self.root = root
        self.header = header
        entries = sorted(os.listdir(root)) if root.exists() else []
        if entries:
            foreign = [e for e in entries if e not in _SWEEP_ENTRIES]
            old = self._read_header()
            if foreign or old is None:
                shown = ", ".join(foreign[:5]) or f"no {_SWEEP_META} of a sweep"
                raise FileExistsError(
                    f"sweep(out=...): {str(root)!r} is not empty and holds files mlbacktest "
                    f"did not write ({shown}); mlbacktest only resumes its own sweeps: choose "
                    "another directory")
            for key in ("strategy", "grid", "data", "config", "metrics", "keep_returns",
                        "save_results", "window"):
                if old.get(key) != header.get(key):
                    what = {"grid": "the grid (parameter sets)", "data": "the data fingerprint",
                            "config": "the config", "strategy": "the strategy"}.get(key, key)
                    raise ValueError(
                        f"sweep(out=...): {str(root)!r} holds a sweep with another {what} "
                        f"(was {_short(old.get(key))}, now {_short(header.get(key))}); it is "
                        "not mixed in: choose another directory, or rerun with the same "
                        "arguments to resume it")
        else:
            root.mkdir(parents=True, exist_ok=True)
            self._write(_SWEEP_META, json.dumps(header, indent=1, sort_keys=True).encode())
        (root / _RUNS_DIR).mkdir(exist_ok=True)

    def _read_header(self) -> dict[str, Any] | None:
        meta = self.root / _SWEEP_META
        try:
            if not stat.S_ISREG(meta.lstat().st_mode):
                return None
            data = json.loads(meta.read_text(encoding="utf-8"))
        except (OSError, ValueError, UnicodeDecodeError):
            return None
        if not isinstance(data, dict) or data.get("format") != SWEEP_FORMAT:
            return None
        return data

    def _write(self, name: str, data: bytes) -> None:
        from mlbacktest.results.io import write_file_atomically

        write_file_atomically(self.root / name, data, "sweep(out=...)")

    def done(self) -> dict[int, TaskOutcome]:
        """The outcomes already written, by run."""
        found: dict[int, TaskOutcome] = {}
        for f in sorted((self.root / _RUNS_DIR).glob("run-*.json")):
            d = json.loads(f.read_text(encoding="utf-8"))
            o = TaskOutcome(int(d["index"]), d["status"], d["error"], d["metrics"],
                            float(d["run_time"]), n_periods=int(d["n_periods"]))
            npz = f.with_suffix(".npz")
            if npz.exists():
                with np.load(npz) as z:
                    o.timestamps, o.returns = z["timestamps"], z["returns"]
            found[o.index] = o
        return found

    def save(self, o: TaskOutcome) -> None:
        """Write one finished run (its returns first, its record last: the record marks it done)."""
        name = f"run-{o.index:06d}"
        stale = self.root / _RUNS_DIR / f"{name}.npz"  # from a run killed before its record
        if stale.is_file() and not stale.is_symlink():
            stale.unlink()
        if o.returns is not None:
            assert o.timestamps is not None
            buf = io.BytesIO()
            np.savez(buf, timestamps=o.timestamps, returns=o.returns)
            self._write(f"{_RUNS_DIR}/{name}.npz", buf.getvalue())
        if o.result is not None:
            target = self.root / _RESULTS_DIR / name
            target.parent.mkdir(exist_ok=True)
            o.result.to_parquet(target, overwrite=True)
        record = {"index": o.index, "status": o.status, "error": o.error,
                  "metrics": o.metrics, "run_time": o.run_time, "n_periods": o.n_periods}
        self._write(f"{_RUNS_DIR}/{name}.json", json.dumps(record).encode())

    def finish(self, frame: pl.DataFrame) -> None:
        """Write the sweep frame (replacing the one of an earlier, completed call)."""
        target = self.root / _SWEEP_FRAME
        if target.exists() and not target.is_symlink():
            target.unlink()
        buf = io.BytesIO()
        frame.write_parquet(buf)
        self._write(_SWEEP_FRAME, buf.getvalue())


def _short(value: Any) -> str:
    text = json.dumps(value, sort_keys=True) if not isinstance(value, str) else value
    return text if len(text) <= 60 else text[:57] + "..."


# --------------------------------------------------------------------------- #
# The sweep
# --------------------------------------------------------------------------- #
def _frame(params: list[dict[str, Any]], outcomes: Mapping[int, TaskOutcome],
           metric_names: Sequence[str]) -> pl.DataFrame:
    n = len(params)
    rows = [outcomes[i] for i in range(n)]
    cols: list[pl.Series] = [pl.Series("run", np.arange(n, dtype=np.int64))]
    for k in params[0]:
        cols.append(pl.Series(k, [p[k] for p in params], strict=False))
    cols.append(pl.Series("status", [o.status for o in rows], dtype=pl.String))
    cols.append(pl.Series("error", [o.error for o in rows], dtype=pl.String))
    for m in metric_names:
        vals = [o.metrics.get(m) if o.status == "ok" else None for o in rows]
        present = [v for v in vals if v is not None]
        is_int = bool(present) and all(isinstance(v, (int, np.integer))
                                       and not isinstance(v, bool) for v in present)
        cols.append(pl.Series(m, vals, dtype=pl.Int64 if is_int else pl.Float64, strict=False))
    cols.append(pl.Series("run_time_s", [o.run_time for o in rows], dtype=pl.Float64))
    return pl.DataFrame(cols)


def _returns_matrix(params: list[dict[str, Any]], outcomes: Mapping[int, TaskOutcome]
                    ) -> tuple[np.ndarray | None, np.ndarray | None]:
    ok = [outcomes[i] for i in range(len(params))
          if outcomes[i].status == "ok" and outcomes[i].returns is not None]
    if not ok:
        return None, None
    ts = ok[0].timestamps
    assert ts is not None
    mat = np.full((len(params), ts.size), np.nan)
    for i in range(len(params)):
        o = outcomes[i]
        if o.status == "ok" and o.returns is not None:
            assert o.timestamps is not None
            if o.returns.size != ts.size or not np.array_equal(o.timestamps, ts):
                raise RuntimeError(f"run {i}: its equity timestamps differ from run "
                                   f"{ok[0].index}'s; the runs do not share one calendar")
            mat[i] = o.returns
    return ts, mat


def run_sweep(
    runner: Runner,
    params: list[dict[str, Any]],
    *,
    window: tuple[int, int] | None = None,
    sweep_dir: _SweepDir | None = None,
    progress: bool = True,
    batch_size: int = 1,
    desc: str = "sweep",
) -> dict[int, TaskOutcome]:
    """Run every parameter set not already in ``sweep_dir``; return all outcomes by run."""
    outcomes = sweep_dir.done() if sweep_dir is not None else {}
    todo = [(i, p) for i, p in enumerate(params) if i not in outcomes]
    batches = [todo[k:k + batch_size] for k in range(0, len(todo), batch_size)]
    from tqdm.auto import tqdm

    bar = tqdm(total=len(params), initial=len(outcomes), desc=desc, unit="run",
               disable=not progress, leave=False)
    try:
        for batch in runner.run(batches, window):
            for o in batch:
                if sweep_dir is not None:
                    sweep_dir.save(o)
                o.result = None
                outcomes[o.index] = o
            bar.update(len(batch))
    finally:
        bar.close()
    return outcomes


def sweep(
    strategy: Any,
    grid: Mapping[str, Sequence[Any]] | Sequence[Mapping[str, Any]],
    data: Any,
    config: BacktestConfig | Mapping[str, Any] | None = None,
    *,
    executor: Any = None,
    out: str | os.PathLike[str] | None = None,
    progress: bool = True,
    metrics: Sequence[str] | None = None,
    keep_returns: bool = False,
    save_results: bool = False,
    feed_options: Mapping[str, Any] | None = None,
    batch_size: int = 1,
) -> SweepResult:
    """Run one backtest per parameter set of a grid.

    Parameters
    ----------
    strategy : Strategy subclass or callable
        A class, called with each parameter set as keyword arguments, or a
        factory returning a new Strategy instance for the keyword arguments.
    grid : dict of str to list, or list of dict
        A dict of lists (their Cartesian product, last key fastest) or an
        explicit list of parameter sets; see :func:`expand_grid`.
    data : DataFeed, polars DataFrame/LazyFrame, or path
        The bars; see :func:`data_source`. A parquet path is opened by each
        worker (filters of `feed_options` pushed down); a frame or feed is
        sent once to each worker and reused by every run there.
    config : BacktestConfig or mapping, optional
        The configuration of every run.
    executor : None, str, concurrent.futures.Executor or distributed.Client
        ``None``: serially in this process; ``"processes"`` (one per CPU) or
        ``"processes:N"``: local processes; any ``concurrent.futures.Executor``;
        a ``distributed.Client`` or ``"dask://HOST:PORT"``: a Dask cluster.
        Executors given are left running; those created here are shut down.
    out : str or path-like, optional
        A directory where each finished run is written as it completes. A
        sweep interrupted half way resumes when called again with the same
        arguments: only the missing runs run (failed runs are finished runs).
        A directory holding another sweep (other grid, data, config or
        strategy) or files mlbacktest did not write is refused. The frame is
        written to ``sweep.parquet`` at the end.
    progress : bool, default True
        Show a progress bar (tqdm) of the runs.
    metrics : sequence of str, optional
        Keep only these metrics (default: every metric of ``result.metrics``).
    keep_returns : bool, default False
        Keep each run's period returns (:attr:`SweepResult.returns`), for the PBO.
    save_results : bool, default False
        With `out`: also save each run's BacktestResult to ``out/results/run-NNNNNN``.
    feed_options : mapping, optional
        Options of the feed built from a frame or path (``signal_columns``,
        ``start``, ``end``, ``assets``, ``signal_delay``, ...).
    batch_size : int, default 1
        Runs per task sent to the executor (more amortise the scheduling of
        very short runs; progress and `out` are then per batch).

    Returns
    -------
    SweepResult
        ``.frame`` is the polars frame of the runs, in grid order.

    Raises
    ------
    ValueError, TypeError, ConfigError, FileExistsError
        Bad arguments, checked before any run: see :func:`expand_grid`,
        :func:`data_source` and `out`.
    """
    factory = _strategy_factory(strategy)
    params = expand_grid(grid)
    cfg = _as_config(config)
    parse_executor(executor)
    names = _metric_names()
    if metrics is not None:
        metrics = tuple(metrics)
        unknown = [m for m in metrics if m not in names]
        if unknown:
            raise ValueError(f"metrics: unknown metric(s) {unknown}; known: {list(names)}")
    if save_results and out is None:
        raise ValueError("save_results=True needs out=DIR to save the results in")
    if not isinstance(batch_size, int) or batch_size < 1:
        raise ValueError(f"batch_size must be a positive integer, got {batch_size!r}")
    source = data_source(data, feed_options)
    job = Job(factory, cfg, metrics, keep_returns, save_results)
    sweep_dir = None
    if out is not None:
        header = _header(factory, params, source, cfg, metrics, keep_returns, save_results)
        sweep_dir = _SweepDir(out, header)
    with make_runner(executor, job, source) as runner:
        outcomes = run_sweep(runner, params, sweep_dir=sweep_dir, progress=progress,
                             batch_size=batch_size)
    frame = _frame(params, outcomes, metrics if metrics is not None else names)
    ts, mat = _returns_matrix(params, outcomes) if keep_returns else (None, None)
    if sweep_dir is not None:
        sweep_dir.finish(frame)
    periods = next((o.n_periods for _, o in sorted(outcomes.items()) if o.status == "ok"), None)
    return SweepResult(frame, params, strategy=factory, source=source, config=cfg,
                       timestamps=ts, returns=mat, n_periods=periods,
                       out=None if sweep_dir is None else sweep_dir.root)


def _header(factory: Any, params: list[dict[str, Any]], source: FeedSource | ParquetSource,
            cfg: BacktestConfig, metrics: Sequence[str] | None, keep_returns: bool,
            save_results: bool, window: tuple[int, int] | None = None) -> dict[str, Any]:
    config_json = json.dumps(cfg.to_dict(), sort_keys=True, default=repr)
    return {
        "format": SWEEP_FORMAT,
        "version": 1,
        "strategy": _strategy_name(factory),
        "grid": json.loads(json.dumps(params)),
        "data": source.fingerprint,
        "config": hashlib.sha256(config_json.encode()).hexdigest(),
        "metrics": None if metrics is None else list(metrics),
        "keep_returns": keep_returns,
        "save_results": save_results,
        "window": None if window is None else list(window),
    }
