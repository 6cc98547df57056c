"""Saving, loading and exporting a :class:`~mlbacktest.results.BacktestResult`.

A result is saved as a directory::

    result/
        equity.parquet   the equity record (raw columns, ``ts`` as int64 ns)
        fills.parquet    the fills (``asset`` as int32 id)
        orders.parquet   the orders (codes as int8, ``reason`` as string)
        benchmark.parquet  the benchmark return of each equity period, when
                         the result has a benchmark
        result.json      asset names, time zone, initial cash, periods per
                         year, risk-free rate, the configuration, format version

The parquet files hold exactly the arrays the engine recorded, so a result
read back has equal frames and bit-identical metrics. Timestamps are stored
as the engine keeps them: int64 nanoseconds, UTC instants when ``tz`` is set
and naive wall-clock values otherwise.

The exports to pandas (:func:`to_pandas`, :func:`returns_series`,
:func:`to_pyfolio`) need pandas, which is not a dependency of mlbacktest:
``pip install pandas``.
"""

from __future__ import annotations

import datetime as dt
import json
import math
import os
import secrets
import shutil
import stat
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, NamedTuple, Protocol, cast

import numpy as np
import polars as pl

from mlbacktest._version import __version__
from mlbacktest.errors import ResultFileError

from .frames import (
    EQUITY_DTYPES,
    FILL_DTYPES,
    FILL_RANGE_COLUMNS,
    OPTIONAL_ORDER_DTYPES,
    ORDER_DTYPES,
)
from .metrics import simple_returns

if TYPE_CHECKING:
    import pandas as pd  # type: ignore[import-untyped,unused-ignore]

    from .result import BacktestResult

__all__ = [
    "FORMAT_NAME",
    "FORMAT_VERSION",
    "FRAME_NAMES",
    "PriceMarks",
    "ResultWriter",
    "SavedResult",
    "read_parquet",
    "returns_series",
    "to_pandas",
    "to_parquet",
    "to_pyfolio",
]

FORMAT_NAME: str = "mlbacktest.BacktestResult"
"""The ``format`` entry of ``result.json``."""

FORMAT_VERSION: int = 1
"""Version of the saved layout; :func:`read_parquet` refuses newer versions."""

FRAME_NAMES: tuple[str, ...] = ("equity", "fills", "orders", "trades", "open_positions")
"""The frames of a result, as exported by :func:`to_pandas`."""

# Per-period frames exported by to_pandas when the result has them.
_PER_PERIOD_FRAMES: tuple[str, ...] = ("returns", "exposure")

META_FILE: str = "result.json"
_TABLES: tuple[str, ...] = ("equity", "fills", "orders")
_BENCHMARK: str = "benchmark"
_NS_PER_DAY: int = 86_400 * 1_000_000_000
_INTRADAY_MAX_SPACING_DAYS: float = 0.75

Freq = Literal["auto", "bar", "D"]


# -- saving and loading ---------------------------------------------------------------


@dataclass(frozen=True)
class SavedResult:
    """What a saved result consists of: the recorded tables and the run's settings.

    :func:`read_parquet` returns one, checked; saving takes one from
    ``BacktestResult._saved_parts``. This module never builds a
    :class:`~mlbacktest.results.BacktestResult`: the result class assembles
    itself from these parts.

    Attributes
    ----------
    path : pathlib.Path
        The directory read, for messages (the empty path when not read from disk).
    equity, fills : dict of str to numpy.ndarray
        The recorded columns (:mod:`~mlbacktest.results.frames`).
    orders : dict of str to numpy.ndarray
        The recorded columns of the orders, without their ``reason``.
    reason : list of str
        The reason text of each order (``""`` for none).
    asset_names : list of str
    tz : str or None
    initial_cash : float
    periods_per_year : float or None
        As given to the result (``None``: inferred from the timestamps).
    risk_free : float
    benchmark : numpy.ndarray or None
        The benchmark return of each equity period, if the result has one.
    config : dict
        The ``config`` entry of ``result.json`` (as read, unchecked until
        :func:`config_knobs` reads it): see :func:`config_entry`.
    """

    path: Path
    equity: dict[str, np.ndarray]
    fills: dict[str, np.ndarray]
    orders: dict[str, np.ndarray]
    reason: list[str]
    asset_names: list[str]
    tz: str | None
    initial_cash: float
    periods_per_year: float | None
    risk_free: float
    benchmark: np.ndarray | None
    config: Any


class Saveable(Protocol):
    """What :func:`to_parquet` and :class:`ResultWriter` save: a result handing over its parts."""

    def _saved_parts(self) -> SavedResult: ...  # pragma: no cover - a protocol


def _to_json_value(value: Any) -> Any:
    """``value`` as JSON data; non-finite floats and durations become tagged objects."""
    if value is None or isinstance(value, (bool, str)):
        return value
    if isinstance(value, (int, np.integer)):
        return int(value)
    if isinstance(value, (float, np.floating)):
        x = float(value)
        return x if math.isfinite(x) else {"$float": repr(x)}
    if isinstance(value, dt.timedelta):
        return {"$timedelta": [value.days, value.seconds, value.microseconds]}
    if isinstance(value, Mapping):
        if not all(isinstance(k, str) for k in value):
            raise TypeError(f"mapping keys must be strings, got {list(value)!r}")
        return {k: _to_json_value(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_to_json_value(v) for v in value]
    raise TypeError(f"cannot store a value of type {type(value).__name__} as JSON")


def _from_json_value(value: Any) -> Any:
    """Invert :func:`_to_json_value` (lists stay lists)."""
    if isinstance(value, dict):
        if set(value) == {"$float"}:
            return float(value["$float"])
        if set(value) == {"$timedelta"}:
            days, seconds, micro = value["$timedelta"]
            return dt.timedelta(days=days, seconds=seconds, microseconds=micro)
        return {k: _from_json_value(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_from_json_value(v) for v in value]
    return value


def config_entry(knobs: Mapping[str, Any] | None, unsaved: str | None = None) -> dict[str, Any]:
    """The ``config`` entry of ``result.json``.

    Parameters
    ----------
    knobs : mapping, optional
        The configuration as data (``BacktestConfig.to_dict()``).
    unsaved : str, optional
        Without ``knobs``: the text (``repr``) of a configuration that cannot
        be stored as data; ``None`` when the result has no configuration.

    Raises
    ------
    TypeError, ValueError
        A knob has no JSON form.
    """
    if knobs is not None:
        return {"kind": "BacktestConfig", "knobs": _to_json_value(dict(knobs))}
    if unsaved is not None:
        return {"kind": "unsaved", "repr": unsaved}
    return {"kind": "none"}


def config_knobs(entry: Any, where: Path) -> dict[str, Any] | None:
    """The knobs stored by :func:`config_entry` (``None`` if the config was not saved).

    Raises
    ------
    ResultFileError
        The entry is not one :func:`config_entry` writes (``where`` names the file).
    """
    kind = entry.get("kind") if isinstance(entry, dict) else None
    if kind in ("none", "unsaved"):
        return None
    if kind != "BacktestConfig" or not isinstance(entry.get("knobs"), dict):
        raise ResultFileError(f"{where}: unreadable 'config' entry {entry!r}", str(where),
                              "config")
    return cast("dict[str, Any]", _from_json_value(entry["knobs"]))


# -- output directories ---------------------------------------------------------------
#
# A directory is written only when it is new, empty, or recognisably an earlier
# mlbacktest output (and then only when overwriting is allowed). Everything is written
# into a fresh sibling directory, which replaces the target only once it is complete, so
# a failed or interrupted save leaves the previous result as it was. Files are created
# with O_EXCL | O_NOFOLLOW, and an output path that is a symbolic link is refused: no
# writer ever follows a link.

REPORT_FILE: str = "report.html"
"""Name of the HTML report that ``mlbacktest run`` and the demo write next to a result."""

RESULT_FILES: frozenset[str] = frozenset(
    {*(f"{t}.parquet" for t in _TABLES), f"{_BENCHMARK}.parquet", META_FILE}
)
"""The files a saved result consists of."""

REPORT_GENERATOR: str = '<meta name="generator" content="mlbacktest'
"""The tag every report mlbacktest writes carries near its start."""

_NEW_FILE_FLAGS: int = (
    os.O_WRONLY | os.O_CREAT | os.O_EXCL
    | getattr(os, "O_NOFOLLOW", 0)
    | getattr(os, "O_CLOEXEC", 0)
)
_STAGING_SUFFIX: str = ".partial"
_RETIRED_SUFFIX: str = ".old"


def _open_new(path: Path) -> Any:
    """A binary file object of ``path``, which must not exist (never follows a link)."""
    fd = os.open(path, _NEW_FILE_FLAGS, 0o666)
    return os.fdopen(fd, "wb")


def _sibling(target: Path, suffix: str, make: Any) -> Path:
    """Create (with ``make``) a new hidden sibling of ``target`` with a random name."""
    for _ in range(100):
        candidate = target.with_name(f".{target.name}.{secrets.token_hex(6)}{suffix}")
        try:
            make(candidate)
        except FileExistsError:
            continue
        return candidate
    raise FileExistsError(f"cannot create a temporary name next to {target}")  # pragma: no cover


def is_own_report(path: str | os.PathLike[str]) -> bool:
    """Whether ``path`` is a regular file (not a link) holding a report mlbacktest wrote."""
    p = Path(path)
    try:
        if not stat.S_ISREG(p.lstat().st_mode):
            return False
        with open(p, "rb") as f:
            head = f.read(4096)
    except OSError:
        return False
    return REPORT_GENERATOR.encode() in head


def _is_saved_result(root: Path) -> bool:
    """Whether ``root/result.json`` is a regular file naming the saved-result format."""
    meta = root / META_FILE
    try:
        if not stat.S_ISREG(meta.lstat().st_mode):
            return False
        data = json.loads(meta.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError, RecursionError):
        return False
    return isinstance(data, dict) and data.get("format") == FORMAT_NAME


def check_output_dir(path: str | os.PathLike[str], overwrite: bool, who: str) -> Path:
    """Check that a result may be written to the directory ``path``; return it as a Path.

    Parameters
    ----------
    path : str or path-like
        The output directory.
    overwrite : bool
        Whether an earlier mlbacktest output there may be replaced.
    who : str
        Names the caller in the messages (``"to_parquet"``, ``"--out"``, ...).

    Returns
    -------
    pathlib.Path
        ``path``.

    Raises
    ------
    FileExistsError
        ``path`` is a symbolic link; or a directory holding anything mlbacktest
        did not write (any file other than a saved result's files and a report
        it wrote, or a result without a valid ``result.json``), whatever
        ``overwrite`` says; or an earlier mlbacktest output and ``overwrite``
        is False.
    NotADirectoryError
        ``path`` exists and is not a directory.
    """
    root = Path(path)
    if root.is_symlink():
        raise FileExistsError(
            f"{who}: {str(root)!r} is a symbolic link; mlbacktest does not write through "
            "links: give the directory itself"
        )
    if not root.exists():
        return root
    if not root.is_dir():
        raise NotADirectoryError(f"{who}: {str(root)!r} exists and is not a directory")
    entries = sorted(os.listdir(root))
    if not entries:
        return root
    foreign = [
        name
        for name in entries
        if not (
            name in RESULT_FILES
            and stat.S_ISREG((root / name).lstat().st_mode)
            or name == REPORT_FILE
            and is_own_report(root / name)
        )
    ]
    if foreign or not _is_saved_result(root):
        shown = ", ".join(foreign[:5]) + (", ..." if len(foreign) > 5 else "")
        what = f"holds files mlbacktest did not write ({shown})" if foreign else (
            f"holds no saved result ({META_FILE} is missing or is not one mlbacktest wrote)"
        )
        raise FileExistsError(
            f"{who}: {str(root)!r} is not empty and {what}; mlbacktest only replaces its own "
            "output: choose another directory"
        )
    if not overwrite:
        raise FileExistsError(
            f"{who}: {str(root)!r} is not empty (it holds an earlier result); pass "
            "overwrite=True (--overwrite) to replace it"
        )
    return root


class StagedDir:
    """A new sibling directory that replaces an output directory once it is complete.

    Parameters
    ----------
    path : str or path-like
        The output directory; checked with :func:`check_output_dir`.
    overwrite : bool
        Allow replacing an earlier mlbacktest output.
    who : str
        Names the caller in error messages.

    Attributes
    ----------
    target : pathlib.Path
        The output directory.
    path : pathlib.Path
        The directory to write into (``.NAME.<random>.partial`` next to ``target``).
    """

    def __init__(self, path: str | os.PathLike[str], overwrite: bool, who: str) -> None:
        self.target = check_output_dir(path, overwrite, who)
        self._overwrite = overwrite
        self._who = who
        self.target.parent.mkdir(parents=True, exist_ok=True)
        self.path = _sibling(self.target, _STAGING_SUFFIX, os.mkdir)
        self.done = False

    def commit(self) -> Path:
        """Move the written directory into place (replacing an earlier output); return it."""
        if self.done:
            raise RuntimeError(f"{self._who}: {self.target} was already written")
        check_output_dir(self.target, self._overwrite, self._who)  # it may have changed since
        if self.target.exists() and os.listdir(self.target):
            retired = _sibling(self.target, _RETIRED_SUFFIX, os.mkdir)
            os.rename(self.target, retired)
            try:
                os.rename(self.path, self.target)
            except BaseException:
                os.rename(retired, self.target)
                raise
            shutil.rmtree(retired, ignore_errors=True)
        else:  # absent, or an empty directory, which rename replaces
            os.rename(self.path, self.target)
        self.done = True
        return self.target

    def abort(self) -> None:
        """Remove the written directory; the output directory is left as it was."""
        if not self.done:
            shutil.rmtree(self.path, ignore_errors=True)
            self.done = True


@contextmanager
def staged_output(path: str | os.PathLike[str], overwrite: bool, who: str) -> Iterator[Path]:
    """Yield a directory to write an output into; it replaces ``path`` when the block succeeds.

    When the block raises (or is interrupted) the directory is removed and
    ``path`` is left untouched.
    """
    staged = StagedDir(path, overwrite, who)
    try:
        yield staged.path
    except BaseException:
        staged.abort()
        raise
    staged.commit()


def check_report_path(path: str | os.PathLike[str], who: str) -> Path:
    """Check that a report may be written to the file ``path``; return it as a Path.

    Raises
    ------
    FileExistsError
        ``path`` is a symbolic link, or an existing file that is not a report
        mlbacktest wrote.
    IsADirectoryError
        ``path`` is a directory.
    """
    out = Path(path)
    if out.is_symlink():
        raise FileExistsError(
            f"{who}: {str(out)!r} is a symbolic link; mlbacktest does not write through links"
        )
    if out.is_dir():
        raise IsADirectoryError(f"{who}: {str(out)!r} is a directory")
    if out.exists() and not is_own_report(out):
        raise FileExistsError(
            f"{who}: {str(out)!r} exists and is not a report mlbacktest wrote; "
            "mlbacktest only replaces its own output: choose another file"
        )
    return out


def write_file_atomically(path: str | os.PathLike[str], data: bytes, who: str) -> Path:
    """Write ``data`` to ``path`` through a new temporary file moved over ``path`` at the end.

    ``path`` is checked with :func:`check_report_path` (an existing file is
    replaced only if it is a report mlbacktest wrote). The temporary file
    is created with ``O_EXCL | O_NOFOLLOW`` next to ``path``, and the move
    replaces a link planted meanwhile rather than following it.
    """
    out = check_report_path(path, who)
    tmp = _sibling(out, ".tmp", lambda p: _open_new(p).close())
    try:
        with open(tmp, "r+b") as f:
            f.write(data)
        os.replace(tmp, out)
    finally:
        tmp.unlink(missing_ok=True)
    return out


def to_parquet(
    result: Saveable, path: str | os.PathLike[str], *, overwrite: bool = False
) -> Path:
    """Save ``result`` to the directory ``path`` (see the module docstring for the layout).

    The files are written into a new sibling directory, which replaces
    ``path`` only once complete: a save that fails or is interrupted leaves
    ``path`` as it was.

    Parameters
    ----------
    result : BacktestResult
        The result to save.
    path : str or path-like
        A directory: new, empty, or an earlier mlbacktest output (with
        ``overwrite``). Its parents are created if missing.
    overwrite : bool, default False
        Replace an earlier mlbacktest output at ``path`` (its result files and
        report). A directory holding anything else is refused regardless.

    Returns
    -------
    pathlib.Path
        ``path``.

    Raises
    ------
    FileExistsError
        ``path`` is a symbolic link; or a directory holding files mlbacktest
        did not write; or an earlier output and ``overwrite`` is False.
    NotADirectoryError
        ``path`` exists and is not a directory.

    Warns
    -----
    UserWarning
        When the configuration cannot be stored as data (it is not a
        :class:`~mlbacktest.config.BacktestConfig`, or it holds a cost model
        defined in Python without a table form): only its ``repr`` is saved
        and the result read back has ``config=None``. Frames and metrics do
        not depend on it.
    """
    with staged_output(path, overwrite, "to_parquet") as tmp:
        _save(result, tmp)
    return Path(path)


def _save(result: Saveable, root: Path, written: Mapping[str, int] | None = None) -> Path:
    """Write ``result`` into the new directory ``root``; the tables in ``written`` are there."""
    parts = result._saved_parts()
    rows: dict[str, int] = dict(written or {})
    meta: dict[str, Any] = {
        "format": FORMAT_NAME,
        "format_version": FORMAT_VERSION,
        "mlbacktest_version": __version__,
        "asset_names": list(parts.asset_names),
        "tz": parts.tz,
        "initial_cash": parts.initial_cash,
        "periods_per_year": parts.periods_per_year,
        "risk_free": parts.risk_free,
        "rows": rows,
        "config": parts.config,
    }
    tables = {"equity": parts.equity, "fills": parts.fills, "orders": parts.orders}
    for table, cols in tables.items():
        if table in rows:
            continue
        frame = pl.DataFrame({k: pl.Series(k, v) for k, v in cols.items()})
        if table == "orders":
            frame = frame.with_columns(pl.Series("reason", parts.reason, dtype=pl.String))
        rows[table] = frame.height
        with _open_new(root / f"{table}.parquet") as f:
            frame.write_parquet(f)
    bench = parts.benchmark
    if bench is not None:
        frame = pl.DataFrame({"returns": pl.Series("returns", bench, dtype=pl.Float64)})
        rows["benchmark"] = frame.height
        with _open_new(root / f"{_BENCHMARK}.parquet") as f:
            frame.write_parquet(f)
    # Written last: a directory without it is never read as a result.
    text = json.dumps(meta, indent=2, allow_nan=False)
    with _open_new(root / META_FILE) as f:
        f.write((text + "\n").encode("utf-8"))
    return root


class ResultWriter:
    """Writes a run's equity record and fills while the run goes on.

    ``BacktestEngine.run(out=...)`` hands over the rows recorded so far
    after every window of a streamed run (and at the end), so they never pile
    up in memory; :meth:`finish` then writes the orders and ``result.json``.
    Everything goes to a new sibling directory of ``path``, which replaces
    ``path`` only in :meth:`finish`; :meth:`abort` (called when the run
    fails or is interrupted) removes it, leaving ``path`` as it was.

    Parameters
    ----------
    path : str or path-like
        The directory: new, empty, or an earlier mlbacktest output (with
        ``overwrite``); see :func:`check_output_dir`.
    overwrite : bool, default False
        Allow replacing an earlier mlbacktest output.
    """

    TABLES: tuple[str, ...] = ("equity", "fills")

    def __init__(self, path: str | os.PathLike[str], *, overwrite: bool = False) -> None:
        self._staged = StagedDir(path, overwrite, "run(out=...)")
        self.target: Path = self._staged.target
        self.root: Path = self._staged.path
        self.rows: dict[str, int] = dict.fromkeys(self.TABLES, 0)
        self._writers: dict[str, Any] = {}
        self._files: list[Any] = []

    def append(self, table: str, columns: Mapping[str, np.ndarray]) -> None:
        """Append rows (one array per column, as the engine records them) to ``table``."""
        import pyarrow as pa  # type: ignore[import-untyped]
        import pyarrow.parquet as pq  # type: ignore[import-untyped]

        data = pa.table({k: pa.array(np.asarray(v)) for k, v in columns.items()})
        writer = self._writers.get(table)
        if writer is None:
            f = _open_new(self.root / f"{table}.parquet")
            self._files.append(f)
            writer = pq.ParquetWriter(f, data.schema)
            self._writers[table] = writer
        if data.num_rows:
            writer.write_table(data)
            self.rows[table] += data.num_rows

    def close(self) -> None:
        """Close the parquet files (what was appended stays readable)."""
        for writer in self._writers.values():
            writer.close()
        self._writers.clear()
        for f in self._files:
            f.close()
        self._files.clear()

    def abort(self) -> None:
        """Close the files and remove what was written; ``path`` is left as it was."""
        try:
            self.close()
        finally:
            self._staged.abort()

    def finish(self, cls: type[Saveable], orders: Mapping[str, Any], **fields: Any) -> Any:
        """Write the orders and ``result.json``, move the directory into place; return the result.

        ``cls`` is the result class (``BacktestResult``), given by the caller:
        this module does not import it. ``fields`` are the other arguments of
        ``cls`` (``asset_names``, ``tz``, ``initial_cash``, ...), besides
        ``equity`` and ``fills``. The result returned is the one written,
        read back.
        """
        try:
            self.close()
            missing = [t for t in self.TABLES if not (self.root / f"{t}.parquet").exists()]
            if missing:
                raise RuntimeError(f"run(out=...): nothing was written to {missing}")
            tables = {t: pl.read_parquet(self.root / f"{t}.parquet") for t in self.TABLES}
            result = cls(  # type: ignore[call-arg]
                **{t: {c: f[c].to_numpy() for c in f.columns} for t, f in tables.items()},
                orders=orders,
                **fields,
            )
            _save(result, self.root, written=self.rows)
            self._staged.commit()
        except BaseException:
            self.abort()
            raise
        return result


def _bad(path: Path, field: str | None, problem: str) -> ResultFileError:
    """The :class:`ResultFileError` of ``problem`` in ``field`` of the file ``path``."""
    where = f"{path}" if field is None else f"{path}: field {field!r}"
    return ResultFileError(f"from_parquet: {where} {problem}", str(path), field)


def _is_real(value: Any) -> bool:
    """A JSON number: int or float, not bool."""
    return isinstance(value, (int, float)) and not isinstance(value, bool)


# One period per nanosecond is the finest a timestamp can resolve.
_MAX_PERIODS_PER_YEAR: float = 366 * _NS_PER_DAY


def _read_meta(root: Path) -> dict[str, Any]:
    if not root.exists():
        raise FileNotFoundError(f"from_parquet: no saved result at {root} (no such directory)")
    if not root.is_dir():
        raise NotADirectoryError(f"from_parquet: {root} is not a directory")
    meta_path = root / META_FILE
    if not meta_path.is_file():
        raise FileNotFoundError(
            f"from_parquet: {root} holds no saved BacktestResult ({META_FILE} is missing)"
        )
    try:
        meta = json.loads(meta_path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError) as exc:
        raise _bad(meta_path, None, f"is corrupt: {exc}") from exc
    if not isinstance(meta, dict) or meta.get("format") != FORMAT_NAME:
        raise _bad(meta_path, None, "does not describe a saved BacktestResult")
    version = meta.get("format_version")
    if type(version) is not int or version > FORMAT_VERSION or version < 1:
        raise _bad(
            meta_path, "format_version",
            f"is {version!r}: this version of mlbacktest reads the format versions 1 to "
            f"{FORMAT_VERSION} (an integer)",
        )
    missing = [
        k
        for k in ("asset_names", "tz", "initial_cash", "periods_per_year", "risk_free", "rows")
        if k not in meta
    ]
    if missing:
        raise _bad(meta_path, missing[0], f"is missing (the entries {missing} are)")
    names = meta["asset_names"]
    if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
        raise _bad(meta_path, "asset_names", f"must be a list of strings, got {names!r:.200}")
    if len(set(names)) != len(names):
        twice = sorted({n for n in names if names.count(n) > 1})
        raise _bad(meta_path, "asset_names", f"names assets twice: {twice[:5]}")
    if meta["tz"] is not None and not isinstance(meta["tz"], str):
        raise _bad(meta_path, "tz", f"must be a time zone name or null, got {meta['tz']!r}")
    cash = meta["initial_cash"]
    if not _is_real(cash) or not math.isfinite(cash) or cash <= 0:
        raise _bad(meta_path, "initial_cash", f"must be a finite number > 0, got {cash!r}")
    ppy = meta["periods_per_year"]
    if ppy is not None and (not _is_real(ppy) or not 0 < ppy <= _MAX_PERIODS_PER_YEAR):
        raise _bad(
            meta_path, "periods_per_year",
            f"must be null or a number > 0 and at most {_MAX_PERIODS_PER_YEAR:.4g} (one "
            f"period per nanosecond), got {ppy!r}",
        )
    rf = meta["risk_free"]
    if not _is_real(rf) or not math.isfinite(rf):
        raise _bad(meta_path, "risk_free", f"must be a finite number, got {rf!r}")
    rows = meta["rows"]
    if not isinstance(rows, dict) or not all(
        isinstance(k, str) and type(v) is int and v >= 0 for k, v in rows.items()
    ):
        raise _bad(meta_path, "rows", f"must map table names to row counts, got {rows!r:.200}")
    return meta


def _read_table(root: Path, table: str, rows: Mapping[str, int]) -> pl.DataFrame:
    path = root / f"{table}.parquet"
    if not path.is_file():
        raise FileNotFoundError(f"from_parquet: {path} is missing")
    try:
        frame = pl.read_parquet(path)
    except Exception as exc:  # polars raises several types for unreadable files
        raise _bad(path, None, f"cannot be read: {exc}") from exc
    expected = rows.get(table)
    if frame.height != expected:
        raise _bad(path, None, f"has {frame.height} rows, {META_FILE} says {expected}")
    return frame


# The columns of each table as the engine writes them; the first group must be there.
_SCHEMAS: dict[str, tuple[dict[str, pl.DataType], dict[str, pl.DataType]]] = {}


def _schemas() -> dict[str, tuple[dict[str, pl.DataType], dict[str, pl.DataType]]]:
    if not _SCHEMAS:

        def pl_types(dtypes: Mapping[str, Any]) -> dict[str, pl.DataType]:
            return {k: _PL_OF[np.dtype(v)] for k, v in dtypes.items()}

        _SCHEMAS["equity"] = (pl_types(EQUITY_DTYPES), {})
        _SCHEMAS["fills"] = (
            pl_types(FILL_DTYPES), dict.fromkeys(FILL_RANGE_COLUMNS, pl.Float64())
        )
        _SCHEMAS["orders"] = (
            {**pl_types(ORDER_DTYPES), "reason": pl.String()}, pl_types(OPTIONAL_ORDER_DTYPES)
        )
        _SCHEMAS[_BENCHMARK] = ({"returns": pl.Float64()}, {})
    return _SCHEMAS


_PL_OF: dict[np.dtype, pl.DataType] = {
    np.dtype(np.int64): pl.Int64(),
    np.dtype(np.int32): pl.Int32(),
    np.dtype(np.int8): pl.Int8(),
    np.dtype(np.float64): pl.Float64(),
}


def _first(bad: np.ndarray) -> int:
    return int(np.flatnonzero(bad)[0])


def _check_table(path: Path, table: str, frame: pl.DataFrame, n_assets: int) -> None:
    """Raise :class:`ResultFileError` unless ``frame`` is a table the engine could have written."""
    required, optional = _schemas()[table]
    for name, dtype in {**required, **optional}.items():
        if name not in frame.columns:
            if name in required:
                raise _bad(path, name, "is missing")
            continue
        if frame.schema[name] != dtype:
            raise _bad(path, name, f"has type {frame.schema[name]}, expected {dtype}")
        nulls = frame[name].null_count()
        if nulls and name != "reason":
            row = _first(frame[name].is_null().to_numpy())
            raise _bad(path, name, f"has {nulls} null values; first at row {row}")
    extra = [c for c in frame.columns if c not in required and c not in optional]
    if extra:
        raise _bad(path, extra[0], "is not a column of a saved result")

    def col(name: str) -> np.ndarray:
        return frame[name].to_numpy()

    def finite(*names: str) -> None:
        for name in names:
            values = col(name)
            bad = ~np.isfinite(values)
            if bad.any():
                row = _first(bad)
                raise _bad(path, name, f"has {int(bad.sum())} non-finite values; first at row "
                                       f"{row} ({values[row].item()!r})")

    def ordered(name: str, strict: bool) -> None:
        ts = col(name)
        bad = ts[1:] <= ts[:-1] if strict else ts[1:] < ts[:-1]
        if bad.any():
            row = _first(bad) + 1
            raise _bad(path, name, f"is not {'strictly ' if strict else ''}increasing: row "
                                   f"{row} ({ts[row].item()}) follows {ts[row - 1].item()}")

    if table == "equity":
        ordered("ts", strict=True)
        finite("cash", "positions_value", "equity", "gross_exposure", "net_exposure")
        equity, cash, value = col("equity"), col("cash"), col("positions_value")
        scale = np.maximum(np.maximum(np.abs(equity), np.abs(cash)), np.abs(value))
        bad = np.abs(equity - (cash + value)) > 1e-9 * np.maximum(scale, 1.0)
        if bad.any():
            row = _first(bad)
            raise _bad(path, "equity", f"is not cash + positions_value in {int(bad.sum())} rows;"
                                       f" first at row {row}: {equity[row].item()!r} != "
                                       f"{cash[row].item()!r} + {value[row].item()!r}")
    elif table == "fills":
        ordered("ts", strict=False)
        finite("quantity", "price", "commission", "slippage")
        for name, ok, what in (("price", col("price") >= 0, "is negative"),
                               ("asset", (col("asset") >= 0) & (col("asset") < n_assets),
                                f"is not an asset id (0 to {n_assets - 1})")):
            bad = ~ok
            if bad.any():
                row = _first(bad)
                raise _bad(path, name, f"{what} in {int(bad.sum())} rows; first at row "
                                       f"{row} ({col(name)[row].item()!r})")
    elif table == "orders":
        finite("quantity", "filled_quantity")


def read_parquet(path: str | os.PathLike[str]) -> SavedResult:
    """Read the parts of a result saved by :func:`to_parquet`, checking them on the way.

    Every entry of ``result.json`` and every table is checked: types,
    schema, nulls, finiteness, ordering of the timestamps, and that the
    equity is cash plus the positions' value.
    ``BacktestResult.from_parquet`` builds the result from the parts (and
    its configuration from :func:`config_knobs`).

    Parameters
    ----------
    path : str or path-like
        The directory written by :func:`to_parquet`.

    Returns
    -------
    SavedResult

    Raises
    ------
    FileNotFoundError
        The directory, its ``result.json`` or one of its parquet files is missing.
    NotADirectoryError
        ``path`` is not a directory.
    ResultFileError
        A file is corrupt or was altered: unreadable, a format version that is
        not an integer or newer than this mlbacktest reads, row counts that
        disagree, a missing or mistyped column, a null, NaN or infinite value,
        timestamps out of order, a negative fill price, an equity that is not
        cash plus positions value, a non-positive initial cash, asset names
        that are not a list of strings, or recorded codes out of range. The
        message names the file and the field (``ResultFileError`` is a
        ``ValueError``).
    """
    root = Path(path)
    meta = _read_meta(root)
    rows = meta["rows"]
    n_assets = len(meta["asset_names"])
    frames = {t: _read_table(root, t, rows) for t in _TABLES}
    for table, frame in frames.items():
        _check_table(root / f"{table}.parquet", table, frame, n_assets)
    order_frame = frames["orders"]
    orders = {c: order_frame[c].to_numpy() for c in order_frame.columns if c != "reason"}
    reason = order_frame["reason"].fill_null("").to_list()
    benchmark = None
    if _BENCHMARK in rows:
        # One return per equity period: taken as is, so alpha and beta are unchanged.
        bench = _read_table(root, _BENCHMARK, rows)
        _check_table(root / f"{_BENCHMARK}.parquet", _BENCHMARK, bench, n_assets)
        if bench.height != frames["equity"].height:
            raise _bad(root / f"{_BENCHMARK}.parquet", None,
                       f"has {bench.height} rows, the equity {frames['equity'].height}")
        benchmark = bench["returns"].to_numpy()
    return SavedResult(
        path=root,
        equity={c: frames["equity"][c].to_numpy() for c in frames["equity"].columns},
        fills={c: frames["fills"][c].to_numpy() for c in frames["fills"].columns},
        orders=orders,
        reason=reason,
        asset_names=meta["asset_names"],
        tz=meta["tz"],
        initial_cash=meta["initial_cash"],
        periods_per_year=meta["periods_per_year"],
        risk_free=meta["risk_free"],
        benchmark=benchmark,
        config=meta.get("config"),
    )


# -- returns and pandas exports -----------------------------------------------------


def _import_pandas(what: str) -> Any:
    try:
        import pandas
    except ModuleNotFoundError:  # pragma: no cover - depends on the environment
        raise ModuleNotFoundError(f"{what} needs pandas: pip install pandas") from None
    return pandas


def wall_clock_ns(result: BacktestResult) -> np.ndarray:
    """Equity timestamps as wall-clock int64 ns in the result's time zone."""
    ts = result.equity["timestamp"]
    if result.tz is not None:
        ts = ts.dt.replace_time_zone(None)
    return cast(np.ndarray, ts.dt.cast_time_unit("ns").to_physical().to_numpy())


def is_intraday(ts_ns: np.ndarray) -> bool:
    """True when the median spacing of the distinct timestamps is under 0.75 day."""
    ts = np.unique(ts_ns)
    if ts.size < 2:
        return False
    return float(np.median(np.diff(ts))) < _INTRADAY_MAX_SPACING_DAYS * _NS_PER_DAY


def resolve_freq(result: BacktestResult, freq: str) -> Literal["bar", "D"]:
    """``"bar"`` or ``"D"``: ``"auto"`` is ``"D"`` for intraday runs, ``"bar"`` otherwise."""
    if freq == "auto":
        return "D" if is_intraday(result._equity["ts"]) else "bar"
    if freq in ("bar", "D"):
        return cast(Literal["bar", "D"], freq)
    raise ValueError(f"freq must be 'auto', 'bar' or 'D', got {freq!r}")


def period_returns(
    result: BacktestResult, freq: Freq = "auto"
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Simple returns per bar or per calendar day, as numpy arrays.

    Parameters
    ----------
    result : BacktestResult
    freq : {"auto", "bar", "D"}
        ``"bar"``: one return per equity row. ``"D"``: one return per
        calendar day of the result's time zone, from the last equity of the
        previous day (``initial_cash`` for the first day) to the last equity
        of the day. ``"auto"``: ``"D"`` for intraday bars (median spacing
        under 0.75 day), ``"bar"`` otherwise.

    Returns
    -------
    labels : numpy.ndarray of int64
        Wall-clock ns of each period: the bar's timestamp, or midnight of the day.
    returns : numpy.ndarray of float64
    last_row : numpy.ndarray of int64
        Index of the equity row that ends each period.
    """
    freq = resolve_freq(result, freq)
    wall = wall_clock_ns(result)
    equity = result._equity["equity"]
    if freq == "bar":
        return wall, simple_returns(equity, result.initial_cash), np.arange(wall.size)
    day = wall // _NS_PER_DAY
    last = np.flatnonzero(np.append(day[1:] != day[:-1], True)) if day.size else day
    last = last.astype(np.int64)
    return day[last] * _NS_PER_DAY, simple_returns(equity[last], result.initial_cash), last


def _datetime_index(pd: Any, wall_ns: np.ndarray, tz: str | None, utc_ns: np.ndarray | None) -> Any:
    """A ``DatetimeIndex`` named ``timestamp``.

    Exact instants (``utc_ns``) when given and ``tz`` is set; else the
    wall-clock values localised to ``tz`` (midnights that do not exist on a
    daylight-saving change move forward).
    """
    if tz is None:
        return pd.DatetimeIndex(wall_ns.view("M8[ns]"), name="timestamp")
    if utc_ns is not None:
        instants = pd.DatetimeIndex(utc_ns.view("M8[ns]"), name="timestamp")
        return instants.tz_localize("UTC").tz_convert(tz)
    naive = pd.DatetimeIndex(wall_ns.view("M8[ns]"), name="timestamp")
    earlier = np.ones(naive.size, dtype=bool)  # an ambiguous midnight is the first one
    return naive.tz_localize(tz, ambiguous=earlier, nonexistent="shift_forward")


def returns_series(result: BacktestResult, freq: Freq = "auto") -> pd.Series:
    """Simple returns as a pandas Series, for quantstats and similar tools.

    Parameters
    ----------
    result : BacktestResult
    freq : {"auto", "bar", "D"}, default "auto"
        ``"bar"``: one return per equity row, indexed by the bar timestamps.
        ``"D"``: daily returns (the last equity of each calendar day of the
        result's time zone against the previous day's; the first day against
        ``initial_cash``), indexed by midnight of each day. ``"auto"``:
        ``"D"`` for intraday runs (median bar spacing under 0.75 day), else
        ``"bar"``.

    Returns
    -------
    pandas.Series
        float64 values named ``"returns"``; a ``DatetimeIndex`` named
        ``timestamp`` in the result's time zone (naive for naive results).
        The first return is measured against ``initial_cash``.
    """
    pd = _import_pandas("returns")
    freq = resolve_freq(result, freq)
    labels, rets, _ = period_returns(result, freq)
    utc = result._equity["ts"] if freq == "bar" else None
    index = _datetime_index(pd, labels, result.tz, utc)
    return pd.Series(rets, index=index, name="returns", dtype="float64")


def to_pandas(result: BacktestResult) -> dict[str, pd.DataFrame]:
    """Every frame of ``result`` as a pandas DataFrame.

    Returns
    -------
    dict of str to pandas.DataFrame
        ``"equity"`` (and the per-period ``"returns"`` and ``"exposure"``
        frames) indexed by ``timestamp``; ``"fills"``, ``"orders"``,
        ``"trades"`` and ``"open_positions"`` with a default index; all with
        the columns of the polars frames of the same names. ``"metrics"``
        has one ``value`` column indexed by ``metric``. Datetime columns keep
        the result's time zone; integer columns with nulls (``parent_id``)
        become float.
    """
    _import_pandas("to_pandas")
    out: dict[str, pd.DataFrame] = {}
    for name in FRAME_NAMES + _PER_PERIOD_FRAMES:
        frame = getattr(result, name, None)
        if isinstance(frame, pl.DataFrame):
            out[name] = frame.to_pandas()
            if name in ("equity", *_PER_PERIOD_FRAMES):
                out[name] = out[name].set_index("timestamp")
    out["metrics"] = result.metrics_frame().to_pandas().set_index("metric")
    return out


def _as_utc_labels(pd: Any, wall_ns: np.ndarray) -> Any:
    """Wall-clock ns as a UTC ``DatetimeIndex`` (pyfolio's convention)."""
    return pd.DatetimeIndex(wall_ns.view("M8[ns]")).tz_localize("UTC")


class PriceMarks(NamedTuple):
    """Prices in the engine's domain: int64 ns timestamps and asset ids into ``asset_names``.

    ``BacktestResult.to_pyfolio`` reads a feed into one; :func:`to_pyfolio`
    takes it, or a long polars frame.
    """

    asset_names: tuple[str, ...]
    """Name of each asset id of ``asset``."""
    ts: np.ndarray
    """int64 ns timestamp of each price (UTC instants when the time zone is set)."""
    asset: np.ndarray
    """Asset id of each price."""
    price: np.ndarray
    """float64 prices."""


def _price_marks(
    result: BacktestResult, prices: PriceMarks | pl.DataFrame, price_column: str
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(ts, asset id, price) of ``prices`` in the result's timestamp and asset-id domain."""
    if isinstance(prices, PriceMarks):
        names = prices.asset_names
        ts, ids, px = prices.ts, prices.asset, prices.price
    elif isinstance(prices, pl.DataFrame):
        missing = [c for c in ("timestamp", "asset", price_column) if c not in prices.columns]
        if missing:
            raise ValueError(f"prices: missing columns {missing}")
        col = prices["timestamp"]
        if not isinstance(col.dtype, pl.Datetime):
            raise ValueError(f"prices: 'timestamp' must be a Datetime column, got {col.dtype}")
        if (col.dtype.time_zone is None) != (result.tz is None):
            raise ValueError(
                f"prices: timestamps are {'naive' if col.dtype.time_zone is None else 'tz-aware'}"
                f" but the result's are {'naive' if result.tz is None else 'tz-aware'}"
            )
        if result.tz is not None:
            col = col.dt.convert_time_zone("UTC")
        ts = col.dt.cast_time_unit("ns").to_physical().to_numpy()
        asset = prices["asset"].cast(pl.String)
        names = tuple(asset.unique(maintain_order=True).to_list())
        lookup = {n: i for i, n in enumerate(names)}
        ids = asset.replace_strict(lookup, return_dtype=pl.Int32).to_numpy()
        px = prices[price_column].cast(pl.Float64).to_numpy()
    else:
        raise TypeError(
            f"prices must be a DataFeed or a polars DataFrame, got {type(prices).__name__}"
        )
    index = {n: i for i, n in enumerate(result.asset_names)}
    remap = np.array([index.get(n, -1) for n in names], dtype=np.int64)
    ids = remap[np.asarray(ids, dtype=np.int64)] if remap.size else np.asarray(ids, np.int64)
    ts = np.asarray(ts, np.int64)
    order = np.argsort(ts, kind="stable")
    order = order[ids[order] >= 0]
    return ts[order], ids[order], np.asarray(px, np.float64)[order]


def _last_per_cell(
    row: np.ndarray, col: np.ndarray, value: np.ndarray, shape: tuple[int, int]
) -> np.ndarray:
    """Matrix of the last ``value`` (in input order) per (row, col), carried forward; NaN before."""
    out = np.full(shape, np.nan)
    if value.size:
        key = row * shape[1] + col
        _, first_from_end = np.unique(key[::-1], return_index=True)
        last = key.size - 1 - first_from_end
        out[row[last], col[last]] = value[last]
    # Forward fill down the rows.
    filled = np.where(np.isnan(out), 0, np.arange(shape[0])[:, None])
    np.maximum.accumulate(filled, axis=0, out=filled)
    return out[filled, np.arange(shape[1])[None, :]]


def to_pyfolio(
    result: BacktestResult,
    prices: PriceMarks | pl.DataFrame | None = None,
    *,
    price_column: str = "close",
) -> tuple[pd.Series, pd.DataFrame, pd.DataFrame]:
    """``(returns, positions, transactions)`` in the shapes pyfolio expects.

    Parameters
    ----------
    result : BacktestResult
    prices : PriceMarks or polars.DataFrame, optional
        Prices to value positions at: a feed's prices read into
        :class:`PriceMarks` (``BacktestResult.to_pyfolio`` does it for a
        feed), or a long frame with ``timestamp``, ``asset`` and
        ``price_column`` (the frame given to
        :class:`~mlbacktest.data.PolarsDataFeed`). Without it, each position
        is valued at the price of its asset's last fill, so only the
        ``cash`` column (and the returns) are exact.
    price_column : str, default "close"
        Which column of a ``prices`` frame marks the positions.

    Returns
    -------
    returns : pandas.Series
        Daily simple returns (one per calendar day with a bar; intraday runs
        are compounded to days, see :func:`returns_series`).
    positions : pandas.DataFrame
        End-of-day value (currency, signed) of each asset ever traded, one
        column per asset, plus ``cash``.
    transactions : pandas.DataFrame
        One row per fill: ``amount`` (signed quantity), ``price`` (fill
        price after slippage) and ``symbol`` (asset name).

    Notes
    -----
    pyfolio aligns the three by calendar date, so every index is the
    *wall-clock* time of the result's time zone labelled as UTC: daily rows
    are midnight UTC of the local date, fills keep their local time of day.
    """
    pd = _import_pandas("to_pyfolio")
    labels, rets, last = period_returns(result, "D")
    index = _as_utc_labels(pd, labels)
    returns = pd.Series(rets, index=index, name="returns", dtype="float64")

    # Positions: quantities and marks at the last bar of each day.
    asof_ts = result._equity["ts"][last]
    f = result._fills
    traded = np.unique(f["asset"])
    n_days, n_assets = asof_ts.size, len(result.asset_names)
    day_of_fill = np.searchsorted(asof_ts, f["ts"], side="left")
    ok = day_of_fill < n_days  # fills after the last recorded bar are not in the equity
    qty = np.zeros((n_days, n_assets))
    np.add.at(qty, (day_of_fill[ok], f["asset"][ok]), f["quantity"][ok])
    qty = np.cumsum(qty, axis=0)
    marks = _last_per_cell(day_of_fill[ok], f["asset"][ok], f["price"][ok], (n_days, n_assets))
    if prices is not None:
        p_ts, p_ids, p_px = _price_marks(result, prices, price_column)
        p_day = np.searchsorted(asof_ts, p_ts, side="left")
        inside = p_day < n_days
        quoted = _last_per_cell(p_day[inside], p_ids[inside], p_px[inside], (n_days, n_assets))
        marks = np.where(np.isnan(quoted), marks, quoted)
    values = np.where(qty != 0.0, qty * np.nan_to_num(marks), 0.0)[:, traded]
    positions = pd.DataFrame(
        values, index=index, columns=[result.asset_names[i] for i in traded], dtype="float64"
    )
    positions["cash"] = result._equity["cash"][last]
    positions.columns.name = None

    fills = result.fills
    fill_wall = fills["timestamp"]
    if result.tz is not None:
        fill_wall = fill_wall.dt.replace_time_zone(None)
    fill_ns = fill_wall.dt.cast_time_unit("ns").to_physical().to_numpy()
    transactions = pd.DataFrame(
        {
            "amount": fills["quantity"].to_numpy(),
            "price": fills["price"].to_numpy(),
            "symbol": fills["asset"].to_list(),
        },
        index=_as_utc_labels(pd, fill_ns),
    )
    return returns, positions, transactions
