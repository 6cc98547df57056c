"""Where the runs of a sweep execute: in process, on local processes, or on a Dask cluster.

A :class:`Runner` hands batches of runs to an executor and yields their
outcomes as they complete. The data and the strategy travel once per worker,
not once per task:

* serial: nothing travels;
* ``"processes"``: a :class:`~concurrent.futures.ProcessPoolExecutor` whose
  initializer loads the data into each worker process;
* any other :class:`concurrent.futures.Executor`: the data's bytes are
  written once to a temporary file that each worker process reads the first
  time it needs them (and keeps, keyed by the data's fingerprint);
* Dask: the data's bytes are scattered to every worker (``broadcast=True``)
  and each worker unpickles them once.

The strategy, config and options (the "job") are pickled with cloudpickle,
so classes defined in ``__main__``, a notebook or a file loaded by path
work on every executor.
"""

from __future__ import annotations

import hashlib
import importlib.machinery
import os
import sys
import tempfile
from collections.abc import Iterator, Sequence
from concurrent.futures import Executor
from typing import Any

from mlbacktest.research._worker import (
    FeedSource,
    Job,
    ParquetSource,
    TaskOutcome,
    run_task,
    window_feed,
)

__all__ = ["Runner", "make_runner"]

Batch = Sequence[tuple[int, dict[str, Any]]]


def _is_dask_client(obj: Any) -> bool:
    t = type(obj)
    return t.__name__ == "Client" and t.__module__.split(".")[0] == "distributed"


def _unimportable_modules(obj: Any) -> list[Any]:
    """Modules of ``obj`` that another process could not import by name (pickled by value)."""
    name = getattr(obj, "__module__", None) or getattr(type(obj), "__module__", None)
    if name is None or name == "__main__":
        return []  # cloudpickle pickles __main__ by value already
    module = sys.modules.get(name)
    if module is None:
        return []
    # Look on sys.path, not in sys.modules: a file loaded by path (the command line's
    # "strategy.py:Class") is in sys.modules under a name no other process can import.
    top = name.partition(".")[0]
    try:
        found = importlib.machinery.PathFinder.find_spec(top) is not None
    except (ImportError, ValueError):
        found = False
    return [] if found or top in sys.builtin_module_names else [module]


def dumps_job(job: Job) -> bytes:
    """cloudpickle bytes of ``job``; a strategy from a file loaded by path is pickled by value."""
    import cloudpickle

    modules = _unimportable_modules(job.strategy)
    for m in modules:
        cloudpickle.register_pickle_by_value(m)
    try:
        return bytes(cloudpickle.dumps(job))
    finally:
        for m in modules:
            cloudpickle.unregister_pickle_by_value(m)


def _digest(blob: bytes) -> str:
    return hashlib.sha256(blob).hexdigest()


class Runner:
    """Runs batches of a sweep on one executor.

    Use :func:`make_runner`; close it when done (it is a context manager).
    Executors and clients it created are shut down on close; those given
    by the caller are left running.
    """

    name = "serial"

    def __init__(self, job: Job, source: FeedSource | ParquetSource) -> None:
        self.job = job
        self.source = source
        self.fingerprint = source.fingerprint
        self._feed: Any = None

    def run(self, batches: Sequence[Batch], window: tuple[int, int] | None = None
            ) -> Iterator[list[TaskOutcome]]:
        """Yield the outcomes of each batch as it completes (in process, in order)."""
        from mlbacktest.research._worker import run_one

        if self._feed is None:
            self._feed = self.source.load()
        feed = self._feed if window is None else window_feed(self._feed, window)
        for batch in batches:
            yield [run_one(self.job, feed, i, p) for i, p in batch]

    def close(self) -> None:
        """Release what the runner created."""

    def __enter__(self) -> Runner:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class FuturesRunner(Runner):
    """Runs on a :class:`concurrent.futures.Executor`."""

    name = "futures"

    def __init__(self, job: Job, source: FeedSource | ParquetSource, executor: Executor | None,
                 workers: int | None = None) -> None:
        super().__init__(job, source)
        import cloudpickle

        self.blob = dumps_job(job)
        self.digest = _digest(self.blob)
        data = bytes(cloudpickle.dumps(source))
        self._tmp: str | None = None
        if executor is None:  # ours: each process loads the data in its initializer
            import multiprocessing
            from concurrent.futures import ProcessPoolExecutor

            from mlbacktest.research._worker import install

            self.executor: Executor = ProcessPoolExecutor(
                max_workers=workers, mp_context=multiprocessing.get_context("spawn"),
                initializer=install, initargs=(self.fingerprint, data))
            self.owned = True
            self.ref: Any = None
        else:  # theirs: the data wait in a file, read once per worker process
            fd, self._tmp = tempfile.mkstemp(prefix="mlbacktest-sweep-", suffix=".pkl")
            with os.fdopen(fd, "wb") as f:
                f.write(data)
            self.executor = executor
            self.owned = False
            self.ref = self._tmp

    def run(self, batches: Sequence[Batch], window: tuple[int, int] | None = None
            ) -> Iterator[list[TaskOutcome]]:
        """Submit every batch; yield their outcomes in completion order."""
        from concurrent.futures import as_completed

        futures = [self.executor.submit(run_task, self.digest, self.blob, self.fingerprint,
                                        self.ref, window, list(b)) for b in batches]
        try:
            for fut in as_completed(futures):
                yield fut.result()
        finally:
            for fut in futures:
                fut.cancel()

    def close(self) -> None:
        """Shut down an executor this runner created; remove the data file."""
        if self.owned:
            self.executor.shutdown(wait=True, cancel_futures=True)
        if self._tmp is not None:
            try:
                os.unlink(self._tmp)
            except FileNotFoundError:
                pass
            self._tmp = None


class DaskRunner(Runner):
    """Runs on a Dask cluster through a ``distributed.Client``."""

    name = "dask"

    def __init__(self, job: Job, source: FeedSource | ParquetSource, client: Any,
                 owned: bool) -> None:
        super().__init__(job, source)
        import cloudpickle

        self.client = client
        self.owned = owned
        self.blob = dumps_job(job)
        self.digest = _digest(self.blob)
        # Sent once to every worker, then referred to by every task.
        self.data_ref = client.scatter(bytes(cloudpickle.dumps(source)), broadcast=True,
                                       hash=False)
        self.job_ref = client.scatter(self.blob, broadcast=True, hash=False)

    def run(self, batches: Sequence[Batch], window: tuple[int, int] | None = None
            ) -> Iterator[list[TaskOutcome]]:
        """Submit every batch to the cluster; yield their outcomes in completion order."""
        from distributed import as_completed

        futures = [self.client.submit(run_task, self.digest, self.job_ref, self.fingerprint,
                                      self.data_ref, window, list(b), pure=False)
                   for b in batches]
        try:
            for fut in as_completed(futures, loop=self.client.loop):
                yield fut.result()
        finally:
            self.client.cancel(futures)

    def close(self) -> None:
        """Release the scattered data; close a client this runner opened."""
        try:
            self.client.cancel([self.data_ref, self.job_ref])
        except Exception:  # pragma: no cover - a cluster gone away
            pass
        if self.owned:
            self.client.close()


def parse_executor(executor: Any) -> tuple[str, Any]:
    """Check an ``executor`` argument before any work; return (kind, detail).

    Raises
    ------
    ValueError
        An unknown string, or ``"processes:N"`` with N not a positive integer.
    TypeError
        Neither None, a string, a concurrent.futures.Executor nor a Dask client.
    """
    if executor is None:
        return "serial", None
    if isinstance(executor, str):
        if executor == "serial":
            return "serial", None
        if executor == "processes":
            return "processes", None
        if executor.startswith("processes:"):
            n = executor.partition(":")[2]
            if not n.isdigit() or int(n) < 1:
                raise ValueError(
                    f"executor {executor!r}: the number of processes must be a positive "
                    "integer, as in 'processes:4'")
            return "processes", int(n)
        if executor.startswith(("dask://", "tcp://", "tls://")):
            address = executor[len("dask://"):] if executor.startswith("dask://") else executor
            if not address or ":" not in address:
                raise ValueError(
                    f"executor {executor!r}: give the scheduler as dask://HOST:PORT")
            return "dask-address", ("tcp://" + address if executor.startswith("dask://")
                                    else address)
        raise ValueError(
            f"unknown executor {executor!r}: use None (serial), 'processes', 'processes:N', "
            "'dask://HOST:PORT', a concurrent.futures.Executor or a distributed.Client")
    if isinstance(executor, Executor):
        return "executor", executor
    if _is_dask_client(executor):
        return "dask", executor
    raise TypeError(
        f"executor must be None, 'processes', 'dask://HOST:PORT', a concurrent.futures.Executor "
        f"or a distributed.Client, got {type(executor).__name__}")


def _import_distributed(what: str) -> Any:
    try:
        import distributed
    except ImportError as exc:
        raise ImportError(
            f"{what} needs Dask: pip install 'mlbacktest[distributed]'") from exc
    return distributed


def make_runner(executor: Any, job: Job, source: FeedSource | ParquetSource) -> Runner:
    """The runner of a checked ``executor`` argument (see :func:`parse_executor`)."""
    kind, detail = parse_executor(executor)
    if kind == "serial":
        return Runner(job, source)
    if kind == "processes":
        return FuturesRunner(job, source, None, detail)
    if kind == "executor":
        return FuturesRunner(job, source, detail)
    if kind == "dask":
        return DaskRunner(job, source, detail, owned=False)
    distributed = _import_distributed(f"executor {executor!r}")
    client = distributed.Client(detail, set_as_default=False)
    return DaskRunner(job, source, client, owned=True)
