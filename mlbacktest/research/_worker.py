"""What runs on a worker: the data sources, the per-process caches and one backtest run.

Every function here is importable by name, so any executor (a local process
pool, a Dask worker) can call it. The bars and the strategy are not sent with
every task: each task names them by a fingerprint, and a worker loads them
once into the caches of this module (:data:`_FEEDS`, :data:`_JOBS`), then
reuses them for every task it runs.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from mlbacktest.data.feeds import DataFeed
from mlbacktest.data.panel import BAR_FIELDS

__all__ = [
    "FeedSource",
    "ParquetSource",
    "Job",
    "TaskOutcome",
    "install",
    "run_task",
]

_FEEDS: dict[str, DataFeed] = {}
"""Feeds loaded by this process, keyed by the data fingerprint."""
_WINDOWS: dict[tuple[str, int, int], DataFeed] = {}
"""Time windows of those feeds (walk-forward), keyed by (fingerprint, lo, hi)."""
_JOBS: dict[str, Job] = {}
"""Unpickled jobs (strategy, config, options), keyed by the digest of their bytes."""
_MAX_FEEDS = 4
"""Data sets kept per process before the oldest is dropped."""
_MAX_WINDOWS = 64
"""Windows kept per process before the oldest is dropped."""

LOADS: dict[str, int] = {}
"""How many times this process loaded each fingerprint's data (tests read it)."""


def panel_fingerprint(feed: DataFeed) -> str:
    """SHA-256 of a feed's validated bars: timestamps, ids, fields, signals and names."""
    p = feed.panel
    h = hashlib.sha256(b"mlbacktest-panel-1")
    h.update(repr((p.asset_names, p.signal_names, p.tz, len(p))).encode())
    for name in ("ts", "asset", *BAR_FIELDS, "signals"):
        h.update(np.ascontiguousarray(getattr(p, name)).tobytes())
    return h.hexdigest()


@dataclass(frozen=True)
class FeedSource:
    """An in-memory feed, shipped once to each worker.

    Attributes
    ----------
    feed : DataFeed
        The validated feed.
    fingerprint : str
        :func:`panel_fingerprint` of `feed`.
    """

    feed: DataFeed
    fingerprint: str

    def load(self) -> DataFeed:
        """The feed itself."""
        return self.feed


@dataclass(frozen=True)
class ParquetSource:
    """Parquet file(s) each worker opens itself, with the feed options (filters pushed down).

    Attributes
    ----------
    path : str or list of str
        The file, directory or glob.
    options : dict
        Keyword arguments of :func:`mlbacktest.data.feeds.open_feed`.
    fingerprint : str
        Digest of the path, of each file's size and modification time, and of the options.
    """

    path: str | list[str]
    options: Mapping[str, Any]
    fingerprint: str

    def load(self) -> DataFeed:
        """Open the feed (validated, filters pushed into the scan)."""
        from mlbacktest.data.feeds import open_feed

        return open_feed(self.path, **dict(self.options))


def feed_of(fingerprint: str, source: FeedSource | ParquetSource | bytes | str | None) -> DataFeed:
    """The feed of ``fingerprint`` in this process, loading ``source`` the first time.

    ``source`` is the source object, its cloudpickle bytes, the path of a
    file holding those bytes, or None when an initializer installed it.
    """
    feed = _FEEDS.get(fingerprint)
    if feed is not None:
        return feed
    if source is None:
        raise RuntimeError(
            f"the data {fingerprint[:12]} was not installed in this worker process")
    if isinstance(source, str):
        with open(source, "rb") as f:
            source = f.read()
    if isinstance(source, bytes):
        import cloudpickle

        source = cloudpickle.loads(source)
    assert isinstance(source, (FeedSource, ParquetSource))
    feed = source.load()
    if len(_FEEDS) >= _MAX_FEEDS:
        _FEEDS.pop(next(iter(_FEEDS)))
    _FEEDS[fingerprint] = feed
    LOADS[fingerprint] = LOADS.get(fingerprint, 0) + 1
    return feed


def window_feed(feed: DataFeed, window: tuple[int, int]) -> DataFeed:
    """A feed of the bars of ``feed`` with ``lo <= ts < hi`` (every asset name kept)."""
    return DataFeed(feed.window(int(window[0]), int(window[1])))


def window_of(fingerprint: str, feed: DataFeed, window: tuple[int, int] | None) -> DataFeed:
    """``feed`` restricted to ``lo <= ts < hi`` (cached), or ``feed`` when ``window`` is None."""
    if window is None:
        return feed
    key = (fingerprint, int(window[0]), int(window[1]))
    sub = _WINDOWS.get(key)
    if sub is None:
        sub = window_feed(feed, window)
        if len(_WINDOWS) >= _MAX_WINDOWS:
            _WINDOWS.pop(next(iter(_WINDOWS)))
        _WINDOWS[key] = sub
    return sub


@dataclass(frozen=True)
class Job:
    """What every run of a sweep shares: the strategy, the config and what to keep.

    Attributes
    ----------
    strategy : type or callable
        A Strategy class or a factory called with the parameters.
    config : BacktestConfig
        The configuration of every run.
    metrics : tuple of str or None
        The metrics to keep (None: all).
    keep_returns : bool
        Send back each run's period returns.
    keep_result : bool
        Send back each run's whole BacktestResult.
    collect : callable or None
        ``collect(strategy, result)`` called after each successful run, in the
        worker; what it returns (picklable) is sent back as
        :attr:`TaskOutcome.collected`.
    raise_errors : bool
        Let a run's exception propagate (with its own type) instead of
        reporting it in the outcome.
    """

    strategy: Any
    config: Any
    metrics: tuple[str, ...] | None = None
    keep_returns: bool = False
    keep_result: bool = False
    collect: Any = None
    raise_errors: bool = False


def job_of(digest: str, blob: bytes | Job) -> Job:
    """The job of ``digest``, unpickled from ``blob`` once per process."""
    job = _JOBS.get(digest)
    if job is None:
        if isinstance(blob, Job):
            job = blob
        else:
            import cloudpickle

            job = cloudpickle.loads(blob)
        if len(_JOBS) >= _MAX_FEEDS:
            _JOBS.pop(next(iter(_JOBS)))
        _JOBS[digest] = job
    return job


def load_counts() -> dict[str, int]:
    """How many times this process loaded each data fingerprint (a copy of :data:`LOADS`)."""
    return dict(LOADS)


def install(fingerprint: str, source: bytes | str) -> None:
    """Process-pool initializer: load the data of ``fingerprint`` into this process."""
    feed_of(fingerprint, source)


@dataclass
class TaskOutcome:
    """What one run sends back.

    Attributes
    ----------
    index : int
        The run's position in the grid.
    status : str
        ``"ok"`` or ``"error"``.
    error : str or None
        The exception's type, message and notes, for a failed run.
    metrics : dict
        ``result.metrics`` (or the chosen subset); empty for a failed run.
    run_time : float
        Wall-clock seconds of the run (building the strategy and running it).
    timestamps : ndarray or None
        The equity timestamps (int64 ns) when returns were kept.
    returns : ndarray or None
        The period returns when asked for.
    result : BacktestResult or None
        The whole result when asked for.
    n_periods : int
        Number of equity periods of the run (0 for a failed run).
    collected : object
        What the job's ``collect`` returned (None without one).
    """

    index: int
    status: str
    error: str | None
    metrics: dict[str, Any] = field(default_factory=dict)
    run_time: float = 0.0
    timestamps: np.ndarray | None = None
    returns: np.ndarray | None = None
    result: Any = None
    n_periods: int = 0
    collected: Any = None


def make_strategy(factory: Any, params: Mapping[str, Any]) -> Any:
    """Build the strategy of one parameter set; TypeError when the factory returns no Strategy."""
    from mlbacktest.strategy import Strategy

    strategy = factory(**params)
    if not isinstance(strategy, Strategy):
        raise TypeError(
            f"the strategy factory returned {type(strategy).__name__}, not a Strategy instance")
    return strategy


def describe_error(exc: BaseException) -> str:
    """One text for a failed run: the exception's type, message and notes (hook, timestamp).

    No file or line: code pickled by value has no file on a worker, and the
    text must be the same on every executor.
    """
    text = f"{type(exc).__name__}: {exc}"
    notes = getattr(exc, "__notes__", None)
    if notes:
        text += " (" + "; ".join(str(n) for n in notes) + ")"
    return text


def run_one(
    job: Job, feed: DataFeed, index: int, params: Mapping[str, Any]
) -> TaskOutcome:
    """Run one parameter set; an exception of the run is caught and reported."""
    from mlbacktest.engine import BacktestEngine

    t0 = time.perf_counter()
    strategy = None
    try:
        strategy = make_strategy(job.strategy, params)
        result = BacktestEngine(feed, strategy, job.config).run(progress=False)
        metrics = result.metrics
        if job.metrics is not None:
            metrics = {k: metrics[k] for k in job.metrics}
        out = TaskOutcome(index, "ok", None, dict(metrics))
        out.n_periods = int(result.equity.height)
        if job.keep_returns:
            rets = result.returns
            out.timestamps = rets["timestamp"].dt.epoch("ns").to_numpy().astype(np.int64)
            out.returns = rets["returns"].to_numpy().astype(np.float64)
        if job.keep_result:
            out.result = result
        if job.collect is not None:
            out.collected = job.collect(strategy, result)
    except Exception as exc:  # one failing run never loses the others
        if job.raise_errors:
            raise
        out = TaskOutcome(index, "error", describe_error(exc))
    finally:
        # The strategy and its engine refer to each other: a cycle that holds the run's
        # memory until the garbage collector runs. Cut it, so a worker's memory stays at
        # one run's however many it does (a full collection would cost ~20 ms a task).
        state = getattr(strategy, "__dict__", None)
        if state is not None:
            state.clear()
        release = getattr(strategy, "_core_release", None)
        if release is not None:
            release()
    out.run_time = time.perf_counter() - t0
    return out


def run_task(
    job_digest: str,
    job_blob: bytes | Job,
    fingerprint: str,
    source: FeedSource | ParquetSource | bytes | str | None,
    window: tuple[int, int] | None,
    tasks: Sequence[tuple[int, Mapping[str, Any]]],
) -> list[TaskOutcome]:
    """Run a batch of (index, parameters) on the data of ``fingerprint`` in this process.

    Parameters
    ----------
    job_digest, job_blob : str, bytes or Job
        The shared job and the digest it is cached under.
    fingerprint : str
        The data's fingerprint.
    source : FeedSource, ParquetSource, bytes, str or None
        How to load the data if this process has not yet (see :func:`feed_of`).
    window : (int, int) or None
        Restrict the bars to ``lo <= ts < hi`` (ns).
    tasks : sequence of (int, mapping)
        The runs.

    Returns
    -------
    list of TaskOutcome
        One per task, in the order given.
    """
    job = job_of(job_digest, job_blob)
    feed = window_of(fingerprint, feed_of(fingerprint, source), window)
    return [run_one(job, feed, i, p) for i, p in tasks]
