"""Market-wide context series (VIX, rates, regime labels, ...), stored once.

A :class:`ContextFrame` holds series that do not belong to one asset. The
engine joins them to its clock *as of* (backward): at engine time ``t`` a
strategy sees the latest context row that was visible at ``t``. A row is
visible from its own timestamp on, or from its ``available_at`` time when the
data says it was published later (e.g. a daily macro figure released the
next morning).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import polars as pl

from mlbacktest.data.frames import ROW, FrameLike, as_lazyframe, collect_frame, collect_schema
from mlbacktest.data.validate import (
    RowLocator,
    TimestampText,
    check_columns,
    check_same_timezone,
    check_unique_keys,
    timestamps_to_ns,
)
from mlbacktest.errors import DataError

__all__ = ["ContextFrame"]


def _readonly(a: np.ndarray) -> np.ndarray:
    out = np.ascontiguousarray(a)
    out.flags.writeable = False
    return out


def _column_values(col: pl.Series) -> np.ndarray | list[Any]:
    """Numeric columns as numpy (nulls -> NaN), everything else as a Python list."""
    dt = col.dtype
    if dt.is_float() or (dt.is_numeric() and col.null_count()):
        return _readonly(col.cast(pl.Float64).fill_null(float("nan")).to_numpy())
    if dt.is_integer():
        return _readonly(col.cast(pl.Int64).to_numpy())
    if dt == pl.Boolean and not col.null_count():
        return _readonly(col.to_numpy())
    return col.to_list()


class ContextFrame:
    """Market-wide series joined to the engine clock as of (backward).

    Parameters
    ----------
    data : polars.DataFrame, polars.LazyFrame, dict of columns or pandas.DataFrame
        One row per timestamp; every column other than the timestamp (and
        `available_at_column`) is a context series, numeric or not.
    timestamp_column : str, default: ``"timestamp"``
        ``Datetime``, ``Date`` or ISO-8601 strings, as for bar feeds.
    available_at_column : str, optional
        When each row became known. A row is visible from
        ``max(timestamp, available_at)``; ``available_at`` earlier than the
        row's timestamp is an error.

    Attributes
    ----------
    ts : ndarray of int64
        Visibility time of each row (ns, same convention as
        :attr:`BarPanel.ts <mlbacktest.data.panel.BarPanel>`). Rows are sorted
        by `timestamp`; with `available_at_column` this array need not be
        sorted -- use :meth:`asof_indices`, not ``searchsorted`` on it.
    timestamp : ndarray of int64
        The rows' own timestamps (ns), sorted and unique.
    columns : tuple of str
        Names of the context series.
    values : dict of str to ndarray or list
        Values of each series in row order. Integer columns without nulls
        are int64 arrays; float columns and numeric columns with nulls are
        float64 arrays (null -> NaN); booleans without nulls are bool arrays;
        anything else (strings, categoricals, dates, booleans with nulls) is a
        list of Python objects (null -> None).
    tz : str or None
        Time zone of the timestamps (``None`` for naive).
    source_row : ndarray of int64
        Input row of each row.

    Raises
    ------
    DataError
        Missing timestamp or `available_at_column`; null or unparseable
        timestamps; two rows with the same timestamp (both rows named); an
        ``available_at`` before its timestamp; timestamp and ``available_at``
        in different time zones.

    Examples
    --------
    >>> import numpy as np, polars as pl
    >>> from datetime import date
    >>> ctx = ContextFrame(pl.DataFrame({
    ...     "timestamp": [date(2024, 1, 3), date(2024, 1, 2)],
    ...     "vix": [14.0, 13.2],
    ...     "regime": ["calm", "calm"],
    ... }))
    >>> steps = np.array([ctx.timestamp[0] - 1, ctx.timestamp[1]], dtype=np.int64)
    >>> ctx.asof_indices(steps).tolist()
    [-1, 1]
    >>> ctx.row_dict(1)
    {'vix': 14.0, 'regime': 'calm'}
    """

    def __init__(
        self,
        data: FrameLike,
        *,
        timestamp_column: str = "timestamp",
        available_at_column: str | None = None,
    ) -> None:
        extra = (available_at_column,) if available_at_column is not None else ()
        lf = as_lazyframe(data, timestamp_column, None, extra)
        names = collect_schema(lf).names()
        if ROW in names:
            raise DataError(f"column name {ROW!r} is reserved by mlbacktest")
        check_columns(names, timestamp_column, None, [], required=extra)
        if available_at_column == timestamp_column:
            raise DataError("available_at_column must differ from timestamp_column")
        self.columns: tuple[str, ...] = tuple(
            c for c in names if c not in (timestamp_column, *extra)
        )

        df = collect_frame(lf.with_row_index(ROW))
        source_row = df[ROW].cast(pl.Int64).to_numpy()
        rows = RowLocator(source_row, None, df[timestamp_column])
        event, tz = timestamps_to_ns(df[timestamp_column], timestamp_column, rows)
        rows.set_timestamps(event, tz)
        visible = event
        if available_at_column is not None:
            avail, avail_tz = timestamps_to_ns(df[available_at_column], available_at_column, rows)
            check_same_timezone([tz, avail_tz], [timestamp_column, available_at_column])
            early = avail < event
            if early.any():
                raise rows.error(
                    early,
                    f"column {available_at_column!r} is earlier than {timestamp_column!r}",
                    {available_at_column: TimestampText(avail, tz)},
                )
            visible = avail  # == max(timestamp, available_at), given the check above

        order = np.argsort(event, kind="stable")
        event, visible, source_row = event[order], visible[order], source_row[order]
        check_unique_keys(event, None, source_row, None, tz, repr(timestamp_column))

        body = df.select(self.columns)[order] if self.columns else df.select([])
        self.values: dict[str, np.ndarray | list[Any]] = {
            c: _column_values(body[c]) for c in self.columns
        }
        self.timestamp: np.ndarray = _readonly(event.astype(np.int64))
        self.ts: np.ndarray = _readonly(visible.astype(np.int64))
        self.source_row: np.ndarray = _readonly(source_row.astype(np.int64))
        self.tz: str | None = tz

        # As-of lookup structures. When visibility is monotonic in row order a
        # plain searchsorted suffices; otherwise sort by visibility and keep,
        # for each prefix, the newest row (largest row index = latest
        # timestamp) visible so far.
        n = self.ts.shape[0]
        if n < 2 or bool(np.all(self.ts[1:] >= self.ts[:-1])):
            self._vis_sorted = self.ts
            self._latest: np.ndarray | None = None
        else:
            vorder = np.argsort(self.ts, kind="stable")
            self._vis_sorted = _readonly(self.ts[vorder])
            self._latest = _readonly(np.maximum.accumulate(vorder).astype(np.int64))
        self._rows_cache: list[list[Any]] | None = None

    def __len__(self) -> int:
        return int(self.ts.shape[0])

    def __repr__(self) -> str:
        return f"ContextFrame(rows={len(self)}, columns={list(self.columns)}, tz={self.tz!r})"

    def asof_indices(self, step_ts: np.ndarray | Sequence[int]) -> np.ndarray:
        """Index of the latest context row visible at each engine timestamp.

        Parameters
        ----------
        step_ts : array-like of int64 (or datetime64)
            Engine timestamps in ns, in the same convention and time zone as
            this frame (check with
            :func:`~mlbacktest.data.validate.check_same_timezone`). They need
            not be sorted.

        Returns
        -------
        ndarray of int64
            For each timestamp, the index of the row with the latest
            timestamp among rows visible at that time (visibility time <=
            step), or -1 if none is visible yet.
        """
        step = np.asarray(step_ts)
        if step.dtype.kind == "M":
            step = step.astype("datetime64[ns]").view(np.int64)
        elif step.dtype.kind not in "iu" and step.size:
            raise TypeError(f"step_ts must hold int64 nanoseconds, got dtype {step.dtype}")
        step = step.astype(np.int64, copy=False)
        pos = np.searchsorted(self._vis_sorted, step, side="right") - 1
        if self._latest is None:
            return pos.astype(np.int64, copy=False)
        safe = np.maximum(pos, 0)
        return np.where(pos >= 0, self._latest[safe], -1).astype(np.int64, copy=False)

    def row_dict(self, i: int) -> dict[str, Any]:
        """Values of row `i` as a plain dict of Python objects.

        Parameters
        ----------
        i : int
            Row index, as returned by :meth:`asof_indices`. ``-1`` (nothing
            visible yet) gives a dict that maps every column to ``None``.

        Returns
        -------
        dict
            Column name to value (NaN for a null in a numeric column, ``None``
            for a null elsewhere).

        Raises
        ------
        IndexError
            `i` is neither -1 nor a valid row index.
        """
        i = int(i)
        if i == -1:
            return dict.fromkeys(self.columns)
        if not 0 <= i < len(self):
            raise IndexError(f"context row {i} out of range for {len(self)} rows")
        if self._rows_cache is None:
            self._rows_cache = [
                v.tolist() if isinstance(v, np.ndarray) else v for v in self.values.values()
            ]
        return {c: col[i] for c, col in zip(self.columns, self._rows_cache, strict=True)}
