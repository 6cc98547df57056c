"""SignalSource: predictions that arrive on their own schedule, through the clock."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import polars as pl

from mlbacktest.errors import DataError

__all__ = ["SignalSource", "SignalEvent"]


class SignalEvent:
    """One prediction delivered to ``Strategy.on_signal`` at its arrival time.

    Attributes
    ----------
    timestamp : datetime.datetime
        When it arrived (its stamp plus the source's latency); ``ts`` in ns.
    asset : str
        Asset name; ``asset_id`` is its id in the run.
    values : dict
        Every value column of the row; ``event["pred"]`` reads one.
    """

    __slots__ = ("_source", "_row", "_store", "asset_id")

    def __init__(self, source: SignalSource, row: int, store: Any, asset_id: int) -> None:
        self._source = source
        self._row = row
        self._store = store
        self.asset_id = asset_id

    @property
    def ts(self) -> int:
        return int(self._source.ts[self._row])

    @property
    def timestamp(self) -> Any:
        return self._store.to_datetime(self.ts)

    @property
    def asset(self) -> str:
        return self._source.asset_names[self._row]

    def __getitem__(self, name: str) -> float:
        try:
            j = self._source.index[name]
        except KeyError:
            raise KeyError(
                f"no value named {name!r}; the source has {list(self._source.value_columns)}"
            ) from None
        return float(self._source.values[self._row, j])

    @property
    def values(self) -> dict[str, float]:
        row = self._source.values[self._row]
        return {n: float(row[j]) for j, n in enumerate(self._source.value_columns)}

    def __repr__(self) -> str:
        return f"SignalEvent({self.timestamp}, {self.asset!r}, {self.values!r})"


class SignalSource:
    """A stream of predictions delivered through the heap clock at their own timestamps.

    Each row becomes a :class:`SignalEvent` handed to ``Strategy.on_signal``
    at ``timestamp + latency``, after the bars of that timestamp (so a
    prediction computed from a bar's close can be acted on at that close,
    and its orders fill on a later bar). Rows that arrive at the same time
    are delivered in (asset, input row) order.

    Parameters
    ----------
    data : polars DataFrame or LazyFrame, or dict of columns
        Long frame: timestamp, asset, value columns.
    value_columns : sequence of str, optional
        Value columns (default: every column but timestamp and asset);
        numeric, nulls become NaN.
    timestamp_column, asset_column : str
        Column names.
    latency : int, str or datetime.timedelta
        Delay between a prediction's stamp and its delivery (int ns, a
        timedelta, or a string such as ``"250ms"``, ``"5m"``).

    Raises
    ------
    DataError
        Missing columns, null timestamps or assets, duplicate (timestamp,
        asset) rows (naming both rows), non-numeric value columns.
    """

    def __init__(
        self,
        data: Any,
        value_columns: Sequence[str] | None = None,
        *,
        timestamp_column: str = "timestamp",
        asset_column: str = "asset",
        latency: Any = 0,
    ) -> None:
        from mlbacktest._time import duration_knob_ns
        from mlbacktest.data.validate import (
            TS_MAX,
            RowLocator,
            format_timestamp,
            timestamps_to_ns,
        )

        frame = data.collect() if isinstance(data, pl.LazyFrame) else pl.DataFrame(data)
        for col in (timestamp_column, asset_column):
            if col not in frame.columns:
                raise DataError(
                    f"signal source has no column {col!r}; columns are {frame.columns}"
                )
        if value_columns is None:
            value_columns = [c for c in frame.columns if c not in (timestamp_column, asset_column)]
        missing = [c for c in value_columns if c not in frame.columns]
        if missing:
            raise DataError(
                f"signal source has no column {missing[0]!r}; columns are {frame.columns}")
        if not value_columns:
            raise DataError("a signal source needs at least one value column")
        assets = frame[asset_column].cast(pl.String)
        null_ts = np.flatnonzero(frame[timestamp_column].is_null().to_numpy())
        null_asset = np.flatnonzero(assets.is_null().to_numpy())
        for bad, what in ((null_ts, "timestamp"), (null_asset, "asset")):
            if bad.size:
                r = int(bad[0])
                raise DataError(
                    f"signal source has a null {what} in {bad.size} rows; first at row {r} "
                    f"(asset {assets[r]!r}, timestamp {frame[timestamp_column][r]})"
                )
        rows = RowLocator(np.arange(frame.height, dtype=np.int64), assets, frame[timestamp_column])
        ts, tz = timestamps_to_ns(frame[timestamp_column], timestamp_column, rows)
        values = []
        for name in value_columns:
            series = frame[name]
            if not series.dtype.is_numeric() and series.dtype != pl.Boolean:
                raise DataError(f"signal source column {name!r} is {series.dtype}, not numeric")
            values.append(series.cast(pl.Float64).fill_null(np.nan).to_numpy())
        latency_ns = duration_knob_ns(latency, "latency")
        late = ts > TS_MAX - latency_ns
        if late.any():
            raise rows.error(
                late,
                f"signal source arrival time (timestamp + latency of {latency_ns} ns) is after "
                f"the latest supported timestamp {format_timestamp(TS_MAX, None)} (2**62 - 1 ns)",
            )
        names = assets.to_numpy().astype(object)
        order = np.lexsort((names.astype(str), ts))
        ts_sorted = ts[order]
        names_sorted = names[order]
        same = np.flatnonzero(
            (ts_sorted[1:] == ts_sorted[:-1]) & (names_sorted[1:] == names_sorted[:-1]))
        if same.size:
            r1, r2 = int(order[same[0]]), int(order[same[0] + 1])
            raise DataError(
                f"signal source has duplicate (timestamp, asset) rows: rows {min(r1, r2)} and "
                f"{max(r1, r2)} (asset {names[r1]!r}, timestamp {frame[timestamp_column][r1]}); "
                f"{same.size} duplicates in all"
            )
        self.value_columns: tuple[str, ...] = tuple(value_columns)
        self.index = {n: j for j, n in enumerate(self.value_columns)}
        self.ts = np.ascontiguousarray(ts_sorted + latency_ns, dtype=np.int64)
        self.asset_names: tuple[str, ...] = tuple(str(a) for a in names_sorted)
        self.values = np.ascontiguousarray(np.column_stack(values)[order], dtype=np.float64)
        self.source_row = order.astype(np.int64)
        self.tz = tz
        self.latency_ns = latency_ns
        for arr in (self.ts, self.values, self.source_row):
            arr.flags.writeable = False

    def __len__(self) -> int:
        return int(self.ts.shape[0])

    def asset_ids(self, asset_index: dict[str, int]) -> np.ndarray:
        """Map the rows' asset names to the run's ids; DataError for an unknown asset."""
        out = np.empty(len(self), dtype=np.int32)
        for i, name in enumerate(self.asset_names):
            aid = asset_index.get(name)
            if aid is None:
                raise DataError(
                    f"signal source row {int(self.source_row[i])} names asset {name!r}, which "
                    f"has no bars in the run (timestamp {np.datetime64(int(self.ts[i]), 'ns')})"
                )
            out[i] = aid
        return out

    def event(self, row: int, store: Any, asset_id: int) -> SignalEvent:
        """The :class:`SignalEvent` of ``row``, as the engine hands it to ``on_signal``.

        Parameters
        ----------
        row : int
            Row of this source (in arrival order).
        store : BarStore
            The run's bars (for the time zone of ``event.timestamp``).
        asset_id : int
            The row's asset id in the run.
        """
        return SignalEvent(self, row, store, asset_id)

    def blocks(self) -> tuple[np.ndarray, np.ndarray]:
        """Distinct arrival timestamps and the row offsets of each one's block."""
        if len(self) == 0:
            return self.ts[:0].copy(), np.zeros(1, dtype=np.int64)
        starts = np.flatnonzero(self.ts[1:] != self.ts[:-1]) + 1
        offsets = np.concatenate(([0], starts, [len(self)])).astype(np.int64)
        return self.ts[offsets[:-1]].copy(), offsets
