"""Streaming internals of :class:`~mlbacktest.data.feeds.ParquetDataFeed` (``chunk=...``).

A streamed feed validates its files once, window by window, when it is built
(:meth:`Stream.scan`), and the engine then reads each window again during the
run (:meth:`Stream.read`). Signals delayed across window boundaries are
carried from one window to the next (:class:`_Carry`). The scan predicates
(:func:`time_predicates`, also used by an in-memory Parquet feed) are built in
the timestamp column's own type, so polars pushes them into the Parquet reader.
See ``docs/streaming.md``.
"""

from __future__ import annotations

import dataclasses
import sys
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import numpy as np
import polars as pl

from mlbacktest._time import parse_duration
from mlbacktest.data.files import READ_ERRORS, FileSet
from mlbacktest.data.frames import (
    ROW,
    SignalPlan,
    TimeLike,
    attach_signals,
    build_panel,
    collect_frame,
    distinct_timestamps,
    readonly,
)
from mlbacktest.data.panel import BAR_FIELDS, BarPanel
from mlbacktest.data.signals import SignalRows, SignalTiming, align_signals, visibility
from mlbacktest.data.validate import (
    NS_PER_DAY,
    NS_PER_UNIT,
    asset_strings,
    bound_to_ns,
    signal_matrix,
)
from mlbacktest.errors import DataError

__all__ = ["Stream", "time_predicates"]


def time_predicates(
    dtype: pl.DataType, column: str, start: TimeLike | None, end: TimeLike | None
) -> list[pl.Expr]:
    """Scan predicates for `start`/`end` on a ``Datetime`` or ``Date`` column.

    Literals are built in the column's own type (rounded inwards), so the
    comparison can be pushed into the Parquet reader and checked against
    row-group statistics. Other dtypes (strings) get no predicate here; they
    are filtered after parsing.
    """
    preds: list[pl.Expr] = []
    col = pl.col(column)
    for bound, name in ((start, "start"), (end, "end")):
        if bound is None:
            continue
        if isinstance(dtype, pl.Datetime):
            ns = bound_to_ns(bound, dtype.time_zone, name)
            f = NS_PER_UNIT[dtype.time_unit]
            v = -(-ns // f) if name == "start" else ns // f
            lit = pl.lit(v, dtype=pl.Int64).cast(dtype)
        elif dtype == pl.Date:
            ns = bound_to_ns(bound, None, name)
            v = -(-ns // NS_PER_DAY) if name == "start" else ns // NS_PER_DAY
            lit = pl.lit(v, dtype=pl.Int32).cast(pl.Date)
        else:
            continue
        cmp = col >= lit if name == "start" else col <= lit
        preds.append(cmp | col.is_null())
    return preds



def _validation_bar(total: int) -> Any:
    """A progress bar over the validation pass, shown in a terminal once it has lasted 2 s."""
    if not sys.stderr.isatty():
        return None
    from tqdm.auto import tqdm  # type: ignore[import-untyped]

    return tqdm(total=total, unit="window", desc="mlbacktest: validating", delay=2.0,
                mininterval=0.5, leave=False, file=sys.stderr)


def _chunk_ns(chunk: Any) -> int | None:
    """Window length of ``chunk=`` in ns; ``None`` for ``"all"`` (one window)."""
    if isinstance(chunk, str) and chunk.strip().lower() == "all":
        return None
    ns = parse_duration(chunk, "chunk")
    if ns <= 0:
        raise ValueError(f"chunk must be a positive duration or 'all', got {chunk!r}")
    return ns


def _window_predicate(dtype: pl.DataType, column: str, lo: int, hi: int) -> pl.Expr:
    """``lo <= column < hi`` (ns bounds) with literals in the column's own type (pushed down)."""
    col = pl.col(column)
    if isinstance(dtype, pl.Datetime):
        f = NS_PER_UNIT[dtype.time_unit]
        a, b = -(-lo // f), -(-hi // f)
        return (col >= pl.lit(a, dtype=pl.Int64).cast(dtype)) & (
            col < pl.lit(b, dtype=pl.Int64).cast(dtype)
        )
    a, b = -(-lo // NS_PER_DAY), -(-hi // NS_PER_DAY)
    return (col >= pl.lit(a, dtype=pl.Int32).cast(pl.Date)) & (
        col < pl.lit(b, dtype=pl.Int32).cast(pl.Date)
    )


@dataclass
class Stream:
    """What a streaming ParquetDataFeed knows after its validation pass."""

    lf: pl.LazyFrame  # the filtered, projected scan of the bars
    dtype: pl.DataType  # type of the timestamp column
    timestamp_column: str
    asset_column: str
    plan: SignalPlan
    timing: SignalTiming
    delayed: frozenset[str]
    rows: SignalRows | None  # the validated signal frame, held in memory
    windows: list[tuple[int, int]]  # non-empty windows [lo, hi) in ns, ascending
    asset_names: tuple[str, ...]  # every asset of the study, sorted
    tz: str | None
    calendar: np.ndarray  # every distinct timestamp, ascending
    n_rows: int
    files: FileSet  # the files validated, with their fingerprints
    carry: _Carry | None = None  # what delayed signals need from earlier windows

    @classmethod
    def scan(
        cls,
        lf: pl.LazyFrame,
        sig_lf: pl.LazyFrame | None,
        dtype: pl.DataType,
        chunk: Any,
        timestamp_column: str,
        asset_column: str,
        plan: SignalPlan,
        timing: SignalTiming,
        delayed: frozenset[str],
        available_at_column: str | None,
        empty: str,
        files: FileSet,
    ) -> Stream:
        """Check that the bars can be streamed, then validate every window once."""
        if not isinstance(dtype, (pl.Datetime, pl.Date)):
            raise DataError(
                f"streaming (chunk=...) needs a Datetime or Date timestamp column; "
                f"{timestamp_column!r} is {dtype}: convert it, or read the data in memory"
            )
        if plan.price_available_at is not None:
            raise DataError(
                "streaming (chunk=...) cannot take available_at_column on the price frame: a "
                "row may become visible in a later window; pass the signals as signals=..."
            )
        width = _chunk_ns(chunk)
        col = pl.col(timestamp_column)
        span = collect_frame(lf.select(
            col.min().dt.epoch("ns").alias("lo"), col.max().dt.epoch("ns").alias("hi")
        ))
        lo, hi = span["lo"][0], span["hi"][0]
        if lo is None:
            # no rows, or only null timestamps: read what there is and let validation say
            build_panel(collect_frame(lf), timestamp_column, asset_column, plan.price_columns,
                         empty_message=empty)
            raise DataError(empty)  # pragma: no cover - validation raises above
        if width is None:
            edges = [(int(lo), int(hi) + 1)]
        else:
            first = (int(lo) // width) * width
            edges = [(a, a + width) for a in range(first, int(hi) + 1, width)]
        nulls = col.is_null()

        def check(k: int) -> tuple[tuple[str, ...], str | None, int, np.ndarray] | None:
            a, b = edges[k]
            pred = _window_predicate(dtype, timestamp_column, a, b)
            if k == 0:
                pred = pred | nulls  # null timestamps are read (and refused) once
            df = collect_frame(lf.filter(pred))
            if df.height == 0:
                return None
            panel, _ = build_panel(df, timestamp_column, asset_column, plan.price_columns,
                                    empty_message=empty)
            return panel.asset_names, panel.tz, len(panel), distinct_timestamps(panel.ts)

        names: set[str] = set()
        calendars: list[np.ndarray] = []
        windows: list[tuple[int, int]] = []
        n_rows = 0
        tz: str | None = None
        # Two windows in flight (polars releases the GIL while it reads); results are
        # taken in window order, so the first bad window is the one reported.
        bar = _validation_bar(len(edges))
        with ThreadPoolExecutor(max_workers=2) as pool:
            pending = [pool.submit(check, k) for k in range(min(2, len(edges)))]
            for k in range(len(edges)):
                try:
                    out = pending.pop(0).result()
                except BaseException:
                    for f in pending:
                        f.cancel()
                    if bar is not None:
                        bar.close()
                    raise
                if k + 2 < len(edges):
                    pending.append(pool.submit(check, k + 2))
                if bar is not None:
                    bar.update(1)
                if out is None:
                    continue
                window_names, tz, n, calendar = out
                names.update(window_names)
                calendars.append(calendar)
                windows.append(edges[k])
                n_rows += n
        if bar is not None:
            bar.close()
        asset_names = tuple(sorted(names))
        rows = None
        if sig_lf is not None:
            rows = SignalRows.from_frame(
                collect_frame(sig_lf, "signal frame: "),
                row_column=ROW,
                timestamp_column=timestamp_column,
                asset_column=asset_column,
                columns=plan.frame_columns,
                available_at_column=available_at_column,
                asset_names=asset_names,
                tz=tz,
            )
        files.verify()  # no file changed while it was validated window by window
        return cls(lf, dtype, timestamp_column, asset_column, plan, timing, delayed, rows,
                   windows, asset_names, tz, np.concatenate(calendars), n_rows, files)

    def read(self, lo: int, hi: int) -> BarPanel:
        """The bars of ``[lo, hi)`` with study-wide asset ids.

        The window was validated by :meth:`scan`, so this only converts:
        the same conversions as :func:`build_panel`, without its checks.
        The files are checked against their fingerprints before the read
        (fully at the first window) and after it: a file changed, added or
        deleted since validation is a ``DataError`` naming it.
        """
        self.files.verify(full=bool(self.windows) and lo <= self.windows[0][0])
        try:
            df = self.lf.filter(_window_predicate(self.dtype, self.timestamp_column, lo, hi)
                                ).collect()
        except READ_ERRORS as exc:
            self.files.verify(full=True)  # names the file that changed, if one did
            raise DataError(f"cannot read {self.files.path!r}: {exc}") from exc
        self.files.verify()
        if df.height == 0:
            return _empty_panel(self.plan.names, self.asset_names, self.tz)
        ts = df[self.timestamp_column].dt.epoch("ns").to_numpy()
        names = pl.Enum(self.asset_names)
        asset = (asset_strings(df[self.asset_column], self.asset_column).cast(names)
                 .to_physical().cast(pl.Int32).to_numpy())
        fields = {f: np.ascontiguousarray(df[f].cast(pl.Float64).to_numpy(), dtype=np.float64)
                  for f in BAR_FIELDS}
        signals = signal_matrix(df, self.plan.price_columns)
        source_row = df[ROW].cast(pl.Int64).to_numpy()
        del df
        if ts.shape[0] > 1 and not bool(np.all(
                (ts[1:] > ts[:-1]) | ((ts[1:] == ts[:-1]) & (asset[1:] >= asset[:-1])))):
            order = np.lexsort((asset, ts))
            ts, asset, source_row = ts[order], asset[order], source_row[order]
            signals = signals[order]
            fields = {k: v[order] for k, v in fields.items()}
        panel = BarPanel(
            ts=readonly(ts, np.int64),
            asset=readonly(asset, np.int32),
            **{f: readonly(fields[f], np.float64) for f in BAR_FIELDS},
            signals=readonly(signals, np.float64),
            signal_names=self.plan.price_columns,
            asset_names=self.asset_names,
            tz=self.tz,
            source_row=readonly(source_row, np.int64),
        )
        if self.timing.delay_bars == 0 and (
                self.timing.is_identity or not self.delayed.intersection(self.plan.price_columns)):
            # every delay is a duration applied per bar to the signal frame: no state
            return attach_signals(panel, None, self.rows, self.plan, self.timing, self.delayed)
        if self.carry is None or lo < self.carry.hi:
            if lo > self.calendar[0]:  # rows before lo were never seen
                raise ValueError("the windows of a feed with delayed signals must be read in "
                                 "time order, from the first")
            self.carry = _Carry(len(self.asset_names))
        return self.carry.align(panel, lo, hi, self)


class _Carry:
    """Delayed signals across windows: what each one needs from the windows before it.

    Price-frame columns delayed by a duration ``D`` (``signal_delay`` plus
    ``embargo``) show at a bar stamped ``t`` the asset's latest row stamped at
    or before ``t - D``: that row is in the window, among the rows kept from
    ``[lo - D, lo)``, or it is the asset's last row before ``lo - D``, kept per
    asset. An integer ``signal_delay`` of ``n`` bars then shows at each bar
    what the asset's ``n``-th earlier bar showed: the last ``n`` of those per
    asset are kept. Everything kept is bounded by ``D`` and ``n``, not by the
    study. Windows must come in time order (the engine reads them so).
    """

    def __init__(self, n_assets: int) -> None:
        self.hi = np.iinfo(np.int64).min  # end of the last window read
        self.recent_ts = np.empty(0, dtype=np.int64)  # raw delayed price rows with ts >= cut
        self.recent_asset = np.empty(0, dtype=np.int32)
        self.recent_values: np.ndarray | None = None
        self.before = None if n_assets == 0 else np.full((n_assets, 0), np.nan)
        self.has_before = np.zeros(n_assets, dtype=bool)  # an asset row older than the cut exists
        self.tail_asset = np.empty(0, dtype=np.int32)  # last n shown rows of each asset
        self.tail_values: np.ndarray | None = None

    def align(self, panel: BarPanel, lo: int, hi: int, stream: Stream) -> BarPanel:
        plan, timing = stream.plan, stream.timing
        no_bars = dataclasses.replace(timing, delay_bars=0)
        frame_delayed = stream.delayed - set(plan.price_columns)
        # The signal frame's duration delays and every undelayed column, per bar.
        out_panel = attach_signals(panel, None, stream.rows, plan, no_bars, frame_delayed)
        out = np.array(out_panel.signals, dtype=np.float64)
        names = out_panel.signal_names
        price_cols = [c for c in plan.price_columns if c in stream.delayed]
        if price_cols and not no_bars.is_identity:
            raw = panel.signals[:, [panel.signal_names.index(c) for c in price_cols]]
            out[:, [names.index(c) for c in price_cols]] = self._shifted_rows(
                panel, raw, lo, no_bars)
        if timing.delay_bars:
            cols = [names.index(c) for c in names if c in stream.delayed]
            out[:, cols] = self._shifted_bars(panel.asset, out[:, cols], timing.delay_bars)
        self.hi = hi
        return dataclasses.replace(panel, signals=readonly(out, np.float64), signal_names=names)

    def _shifted_rows(self, panel: BarPanel, raw: np.ndarray, lo: int,
                      timing: SignalTiming) -> np.ndarray:
        k = raw.shape[1]
        if self.recent_values is None:
            self.recent_values = np.empty((0, k))
            self.before = np.full((self.has_before.size, k), np.nan)
        assert self.before is not None
        shift = visibility(np.zeros(1, dtype=np.int64), None, timing)[0]
        cut = lo - int(shift) if lo > np.iinfo(np.int64).min + int(shift) else lo
        old = self.recent_ts < cut
        if old.any():  # rows no longer needed one by one: keep each asset's latest
            a = self.recent_asset[old]
            last = len(a) - 1 - np.unique(a[::-1], return_index=True)[1]
            self.before[a[last]] = self.recent_values[old][last]
            self.has_before[a[last]] = True
        ts = np.concatenate((self.recent_ts[~old], panel.ts))
        asset = np.concatenate((self.recent_asset[~old], panel.asset))
        values = np.concatenate((self.recent_values[~old], raw))
        marked = np.hstack((values, np.ones((values.shape[0], 1))))
        got = align_signals(panel.ts, panel.asset, ts, visibility(ts, None, timing), asset, marked)
        miss = np.isnan(got[:, -1])
        res = got[:, :-1]
        res[miss] = self.before[panel.asset[miss]]
        self.recent_ts, self.recent_asset, self.recent_values = ts, asset, values
        return res

    def _shifted_bars(self, asset: np.ndarray, shown: np.ndarray, n: int) -> np.ndarray:
        if self.tail_values is None:
            self.tail_values = np.empty((0, shown.shape[1]))
        all_asset = np.concatenate((self.tail_asset, asset))
        all_values = np.concatenate((self.tail_values, shown))
        src = (pl.DataFrame({"asset": all_asset, "i": np.arange(all_asset.size)})
               .select(pl.col("i").shift(n).over("asset"))["i"]
               .fill_null(-1).to_numpy()[self.tail_asset.size:])
        res = np.full(shown.shape, np.nan)
        hit = src >= 0
        res[hit] = all_values[src[hit]]
        # keep the last n rows of each asset
        by_asset = np.argsort(all_asset, kind="stable")
        ends = np.cumsum(np.bincount(all_asset, minlength=int(all_asset.max(initial=0)) + 1))
        from_end = ends[all_asset[by_asset]] - 1 - np.arange(all_asset.size)
        keep = np.sort(by_asset[from_end < n])
        self.tail_asset, self.tail_values = all_asset[keep], all_values[keep]
        return res


def _empty_panel(signal_names: tuple[str, ...], asset_names: tuple[str, ...],
                 tz: str | None) -> BarPanel:
    f = readonly(np.empty(0), np.float64)
    return BarPanel(
        ts=readonly(np.empty(0), np.int64), asset=readonly(np.empty(0), np.int32),
        open=f, high=f, low=f, close=f, volume=f,
        signals=readonly(np.empty((0, len(signal_names))), np.float64),
        signal_names=signal_names, asset_names=asset_names, tz=tz,
        source_row=readonly(np.empty(0), np.int64),
    )
