"""The Parquet files behind a feed: listed, checked and fingerprinted once, verified on reread.

A :class:`~mlbacktest.data.feeds.ParquetDataFeed` validates its files when it
is built; a streamed one reads them again during the run. :class:`FileSet`
records what was validated -- which files a path, directory or glob
resolves to, and for each its size, modification time (ns), row count and
schema -- so that a later read can tell whether it is still reading the
same data:

* a file whose size or modification time differs is refused before every
  window is read, and after it (a change during the read);
* the row count and schema are compared again at the first window of each
  run and whenever polars fails to read (even when the size and time were
  kept, as ``cp -p`` does);
* a file that appears under a directory or glob after validation, or that
  is deleted, is refused too: a feed reads exactly the files it validated.

Each refusal is a :class:`~mlbacktest.errors.DataError` naming the file.

:func:`scan_frame` is the one reader of a frame given as a path, by its
suffix (:data:`FILE_FORMATS`): :func:`~mlbacktest.run_backtest`, the feeds
(``signals=``), :class:`~mlbacktest.data.context.ContextFrame` and the
command line all read files through it, so they accept the same formats and
refuse the others with the same message.
"""

from __future__ import annotations

import errno
import glob as _glob
import os
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import polars as pl

from mlbacktest.errors import DataError

__all__ = [
    "FILE_FORMATS",
    "FileSet",
    "FileStamp",
    "READ_ERRORS",
    "file_format",
    "list_files",
    "resolve_path",
    "scan_frame",
    "warn_absent",
]

#: Exceptions a polars read may raise. ``PanicException`` derives from
#: ``BaseException`` (not ``Exception``), so it is named here explicitly.
READ_ERRORS: tuple[type[BaseException], ...] = (
    pl.exceptions.PolarsError,
    pl.exceptions.PanicException,
    OSError,
)

_GLOB_CHARS = frozenset("*?[")

#: File suffix (lower case) -> format read by :func:`scan_frame`. A directory,
#: or a glob whose pattern ends in no suffix of this table, is read as Parquet.
FILE_FORMATS: dict[str, str] = {
    ".parquet": "parquet",
    ".pq": "parquet",
    ".csv": "csv",
    ".csv.gz": "csv",
    ".tsv": "tsv",
    ".tsv.gz": "tsv",
    ".arrow": "ipc",
    ".ipc": "ipc",
    ".feather": "ipc",
}


def _suffix_format(name: str) -> str | None:
    low = name.lower()
    for suffix in sorted(FILE_FORMATS, key=len, reverse=True):  # ".csv.gz" before ".gz"
        if low.endswith(suffix):
            return FILE_FORMATS[suffix]
    return None


def file_format(path: str | os.PathLike[str] | Sequence[str | os.PathLike[str]]) -> str:
    """The format of the file(s) a path names: ``"parquet"``, ``"csv"``, ``"tsv"`` or ``"ipc"``.

    Decided by the suffix (:data:`FILE_FORMATS`, case-insensitive); a
    directory is a directory of Parquet files (hive partitions included), as
    is a glob whose pattern ends in no known suffix (``"bars/*"``). A list of
    files must share one format. Nothing is read.

    Parameters
    ----------
    path : str, path-like or sequence of them
        A file, a directory, a glob or a list of files.

    Returns
    -------
    str
        The format.

    Raises
    ------
    DataError
        A file's suffix is not in :data:`FILE_FORMATS` (the message names the
        path and the supported suffixes), or a list mixes formats.
    """
    if isinstance(path, (list, tuple)):
        formats = {file_format(p) for p in path}
        if len(formats) > 1:
            raise DataError(
                f"the files {[os.fspath(p) for p in path]!r} mix formats "
                f"({', '.join(sorted(formats))}); give files of one format"
            )
        return formats.pop() if formats else "parquet"
    p = os.fspath(path)  # type: ignore[arg-type]
    fmt = _suffix_format(p)
    if fmt is not None:
        return fmt
    if _GLOB_CHARS & set(p) or os.path.isdir(p):
        return "parquet"
    suffixes = ", ".join(FILE_FORMATS)
    raise DataError(
        f"cannot tell the format of {p!r} from its name: supported suffixes are {suffixes} "
        "(or a directory or glob of parquet files); rename the file, or read it with polars "
        "and pass the frame"
    )


def scan_frame(
    path: str | os.PathLike[str] | Sequence[str | os.PathLike[str]],
    *,
    try_parse_dates: bool = False,
) -> pl.LazyFrame:
    """A lazy polars frame of the file(s) at `path`, read by suffix (:func:`file_format`).

    Parameters
    ----------
    path : str, path-like or sequence of them
        A file, a directory of Parquet files, a glob or a list of files.
    try_parse_dates : bool, default False
        CSV/TSV only: let polars parse date and datetime columns (the feeds
        parse the timestamp column themselves and do not need it).

    Returns
    -------
    polars.LazyFrame
        Nothing is read until it is collected.

    Raises
    ------
    DataError
        The format is unknown (see :func:`file_format`).
    FileNotFoundError
        The file does not exist, the directory holds no file or the glob
        matches none.
    """
    fmt = file_format(path)
    target: str | list[str]
    if isinstance(path, (list, tuple)):
        target = [os.fspath(p) for p in path]
        missing = [p for p in target if not os.path.isfile(p)]
        if not target or missing:
            raise FileNotFoundError(errno.ENOENT, "no such file", missing[0] if missing else "")
    else:
        target = os.fspath(path)  # type: ignore[arg-type]
        if _GLOB_CHARS & set(target):
            if not _glob.glob(target, recursive=True):
                raise FileNotFoundError(errno.ENOENT, "no file matches the pattern", target)
        elif os.path.isdir(target):
            if not list_files(target):
                raise FileNotFoundError(errno.ENOENT, "directory holds no file", target)
        elif not os.path.isfile(target):
            raise FileNotFoundError(errno.ENOENT, os.strerror(errno.ENOENT), target)
    if fmt == "parquet":
        return pl.scan_parquet(target)
    if fmt == "ipc":
        return pl.scan_ipc(target)
    return pl.scan_csv(target, separator="\t" if fmt == "tsv" else ",",
                       try_parse_dates=try_parse_dates)


def resolve_path(
    path: str | os.PathLike[str] | Sequence[str | os.PathLike[str]],
) -> str | list[str]:
    """Check that `path` names existing files; return it in the form polars takes."""
    if isinstance(path, (str, os.PathLike)):
        p = os.fspath(path)
        if _GLOB_CHARS & set(p):
            if not _glob.glob(p, recursive=True):
                raise FileNotFoundError(errno.ENOENT, "no file matches the pattern", p)
        elif os.path.isdir(p):
            if not any(files for _, _, files in os.walk(p)):
                raise FileNotFoundError(errno.ENOENT, "directory holds no file", p)
        elif not os.path.isfile(p):
            raise FileNotFoundError(errno.ENOENT, os.strerror(errno.ENOENT), p)
        return p
    paths = [os.fspath(x) for x in path]
    if not paths:
        raise FileNotFoundError(errno.ENOENT, "no path given", "")
    for p in paths:
        if not os.path.isfile(p):
            raise FileNotFoundError(errno.ENOENT, os.strerror(errno.ENOENT), p)
    return paths


def warn_absent(asset_list: Sequence[str], names: Sequence[str], path: Any) -> None:
    """Warn (``UserWarning``, at the feed's caller) of requested assets with no row in `path`."""
    absent = sorted(set(asset_list) - set(names))
    if absent:
        warnings.warn(
            f"requested assets without rows in {path!r}: {absent}", UserWarning, stacklevel=3
        )


def list_files(path: str | list[str]) -> list[str]:
    """The files a feed path resolves to, sorted.

    Parameters
    ----------
    path : str or list of str
        A file, a directory (every file below it), a glob (``**`` matches
        sub-directories) or a list of files.

    Returns
    -------
    list of str
        The regular files, sorted by path (the order in which polars reads
        them).
    """
    if isinstance(path, list):
        return list(path)
    if _GLOB_CHARS & set(path):
        return sorted(p for p in _glob.glob(path, recursive=True) if os.path.isfile(p))
    if os.path.isdir(path):
        return sorted(
            os.path.join(root, f) for root, _, files in os.walk(path) for f in files
        )
    return [path]


@dataclass(frozen=True)
class FileStamp:
    """What a file looked like when it was validated."""

    size: int  # bytes
    mtime_ns: int  # modification time, ns since the epoch
    rows: int  # rows in the Parquet footer (0 for an empty file)
    schema: tuple[tuple[str, pl.DataType], ...]  # (column, dtype) of the file

    @classmethod
    def read(cls, file: str) -> FileStamp:
        """Stat `file` and read its Parquet footer.

        Raises
        ------
        DataError
            The file cannot be read as Parquet; the message names it.
        """
        size, mtime = _stat(file)
        if size == 0:  # an empty marker file (``_SUCCESS``): polars skips it
            return cls(size, mtime, 0, ())
        try:  # both read the footer only
            schema = pl.read_parquet_schema(file)
            rows = int(pl.scan_parquet(file).select(pl.len()).collect().item())
        except READ_ERRORS as exc:
            raise DataError(f"cannot read parquet file {file!r}: {exc}") from exc
        return cls(size, mtime, rows, tuple(schema.items()))

    def dtype(self, column: str) -> pl.DataType | None:
        """The file's dtype of `column`, or ``None`` if it has no such column."""
        for name, dtype in self.schema:
            if name == column:
                return dtype
        return None


def _stat(file: str) -> tuple[int, int]:
    try:
        st = os.stat(file)
    except FileNotFoundError:
        raise DataError(
            f"parquet file {file!r} was deleted after the feed was validated; build a new "
            "feed to read the files as they are now"
        ) from None
    return int(st.st_size), int(st.st_mtime_ns)


class FileSet:
    """The files of a feed path with the fingerprint of each, taken at validation.

    Parameters
    ----------
    path : str or list of str
        As returned by :func:`resolve_path` (a file, directory, glob or list).
    what : str, optional
        Prefix of messages (``"signal frame: "``).
    """

    def __init__(self, path: str | list[str], what: str = "") -> None:
        self.path = path
        self.what = what
        self.files = list_files(path)
        self.stamps = [FileStamp.read(f) for f in self.files]

    def check_timezones(self, columns: Sequence[str | None]) -> None:
        """Refuse files whose `columns` differ in time zone (or naive vs aware).

        polars would read such files with the first file's type: the
        feed's time zone would depend on the order of the files.

        Raises
        ------
        DataError
            Two files differ; the message names both and their time zones.
        """
        for column in columns:
            if column is None:
                continue
            first: tuple[str, Any] | None = None
            for file, stamp in zip(self.files, self.stamps, strict=True):
                dtype = stamp.dtype(column)
                if not isinstance(dtype, pl.Datetime):
                    continue
                tz = dtype.time_zone
                if first is None:
                    first = (file, tz)
                elif tz != first[1]:
                    raise DataError(
                        f"{self.what}column {column!r} has different time zones in the files "
                        f"of {self.path!r}: {first[0]!r} is {_tz_label(first[1])} but "
                        f"{file!r} is {_tz_label(tz)}; write every file with the same time zone"
                    )

    def verify(self, full: bool = False) -> None:
        """Check that the files are the ones validated, unchanged.

        Parameters
        ----------
        full : bool, default: False
            Also read each footer again and compare the row count and schema
            (by default only the size and modification time are compared).

        Raises
        ------
        DataError
            A file was added, deleted or changed; the message names it.
        """
        now = list_files(self.path)
        if now != self.files:
            added = sorted(set(now) - set(self.files))
            if added:
                raise DataError(
                    f"{self.what}parquet file {added[0]!r} appeared in {self.path!r} after the "
                    "feed was validated; a feed reads only the files it validated: build a "
                    "new feed to read it"
                )
        for file, stamp in zip(self.files, self.stamps, strict=True):
            size, mtime = _stat(file)
            if (size, mtime) != (stamp.size, stamp.mtime_ns):
                raise DataError(
                    f"{self.what}parquet file {file!r} changed after the feed was validated "
                    f"(size {stamp.size} -> {size} bytes, modification time {stamp.mtime_ns} "
                    f"-> {mtime} ns); build a new feed to read the new data"
                )
            if full:
                again = FileStamp.read(file)
                if again.rows != stamp.rows:
                    raise DataError(
                        f"{self.what}parquet file {file!r} changed after the feed was validated "
                        f"({stamp.rows} -> {again.rows} rows); build a new feed to read the "
                        "new data"
                    )
                if again.schema != stamp.schema:
                    raise DataError(
                        f"{self.what}parquet file {file!r} changed after the feed was validated "
                        f"(schema {dict(stamp.schema)} -> {dict(again.schema)}); build a new "
                        "feed to read the new data"
                    )


def _tz_label(tz: str | None) -> str:
    return "naive (no time zone)" if tz is None else repr(tz)
