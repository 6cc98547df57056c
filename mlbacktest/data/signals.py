"""Point-in-time signals: validate predictions and align them to the bars.

A *signal row* is one prediction for one asset: a timestamp, an asset,
numeric values and, optionally, the time it was published
(``available_at``). Signal rows come from the price frame itself (the signal
columns of each bar) or from a separate *signal frame* passed as
``signals=`` to a feed. This module turns signal rows into the
``(n_bars, k)`` float64 matrix of a :class:`~mlbacktest.data.panel.BarPanel`
so that the value a strategy sees on a bar is the one it could have known at
that bar. The rules (also in ``docs/signals.md``):

1. A row stamped ``t`` becomes *visible* at
   ``max(t + embargo, available_at) + delay`` (``available_at`` defaults to
   ``t``; ``embargo`` and a duration ``delay`` default to 0).
2. A bar of asset *a* stamped ``T`` shows the row of *a* with the **latest
   timestamp** among the rows of *a* visible at ``T`` (visibility <= ``T``),
   with all its values (a NaN in that row stays NaN). An old prediction
   published late never replaces a newer one already visible.
3. With ``signal_delay=n`` (an int), a bar shows what the ``n``-th earlier
   bar of the same asset would have shown under rule 2.
4. A bar with no visible row gets NaN ("no prediction").

Everything here is vectorised (numpy and a polars as-of join); it runs once,
in the feed's constructor.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import polars as pl

from mlbacktest._time import parse_duration
from mlbacktest.data.panel import BAR_FIELDS
from mlbacktest.data.validate import (
    RowLocator,
    asset_strings,
    check_available_at,
    check_not_null,
    check_same_timezone,
    check_unique_keys,
    signal_matrix,
    timestamps_to_ns,
)
from mlbacktest.errors import ConfigError, DataError

__all__ = [
    "SignalRows",
    "check_signal_names",
    "SignalTiming",
    "align_signals",
    "parse_duration",
    "visibility",
]

_INT64_MAX = int(np.iinfo(np.int64).max)


# --------------------------------------------------------------------------- #
# Knobs
# --------------------------------------------------------------------------- #
# ``parse_duration`` (re-exported here) is the package's one duration grammar,
# in mlbacktest._time: embargo, a duration signal_delay and chunk all read it.


@dataclass(frozen=True)
class SignalTiming:
    """How far visibility of signal rows is pushed back.

    Attributes
    ----------
    delay_bars : int
        ``signal_delay`` given as a number of bars of the asset (0 if none).
    delay_ns : int
        ``signal_delay`` given as a duration, in ns (0 if none). Added to
        the time a row is published.
    embargo_ns : int
        ``embargo`` in ns (0 if none): a row is never visible before its
        timestamp + embargo, whenever it was published.
    """

    delay_bars: int = 0
    delay_ns: int = 0
    embargo_ns: int = 0

    @classmethod
    def from_args(cls, signal_delay: Any = None, embargo: Any = None) -> SignalTiming:
        """Validate the ``signal_delay`` and ``embargo`` arguments of a feed.

        Parameters
        ----------
        signal_delay : int, str, datetime.timedelta, numpy.timedelta64 or None
            An ``int`` >= 0 is a number of bars of the asset; anything else
            a duration (see :func:`parse_duration`).
        embargo : str, datetime.timedelta, numpy.timedelta64 or None
            A duration.

        Raises
        ------
        ConfigError
            A negative number of bars, a ``bool`` or ``float``, or a bad
            duration.
        """
        bars = ns = 0
        if signal_delay is not None:
            if isinstance(signal_delay, bool):
                raise ConfigError(
                    f"signal_delay must be an int or a duration, got {signal_delay!r}"
                )
            if isinstance(signal_delay, (int, np.integer)) and not isinstance(
                signal_delay, np.timedelta64
            ):
                bars = int(signal_delay)
                if bars < 0:
                    raise ConfigError(f"signal_delay must be >= 0 bars, got {bars}")
            elif isinstance(signal_delay, (float, np.floating)):
                raise ConfigError(
                    f"signal_delay={signal_delay!r}: pass an int number of bars or a duration "
                    "string such as '1d'"
                )
            else:
                ns = parse_duration(signal_delay, "signal_delay")
        emb = 0 if embargo is None else parse_duration(embargo, "embargo")
        return cls(bars, ns, emb)

    @property
    def is_identity(self) -> bool:
        """True when no delay or embargo is set."""
        return self.delay_bars == 0 and self.delay_ns == 0 and self.embargo_ns == 0


def _add_saturating(ts: np.ndarray, d: int) -> np.ndarray:
    """``ts + d`` in int64, clipped at the largest int64 (= never visible) instead of wrapping."""
    if d == 0:
        return ts
    out = ts + np.int64(d)
    out[ts > _INT64_MAX - d] = _INT64_MAX
    return out


def visibility(ts: np.ndarray, available_at: np.ndarray | None, timing: SignalTiming) -> np.ndarray:
    """Time from which each signal row is visible.

    Parameters
    ----------
    ts : ndarray of int64
        The rows' own timestamps (ns).
    available_at : ndarray of int64 or None
        Publication times (>= `ts`); ``None`` means published at `ts`.
    timing : SignalTiming
        Embargo and duration delay.

    Returns
    -------
    ndarray of int64
        ``max(ts + embargo, available_at) + delay_ns`` (saturating at the
        largest int64, which no bar reaches).
    """
    v = _add_saturating(np.asarray(ts, dtype=np.int64), timing.embargo_ns)
    if available_at is not None:
        v = np.maximum(v, available_at)
    return _add_saturating(np.array(v, dtype=np.int64, copy=True), timing.delay_ns)


# --------------------------------------------------------------------------- #
# Alignment
# --------------------------------------------------------------------------- #
def align_signals(
    bar_ts: np.ndarray,
    bar_asset: np.ndarray,
    sig_ts: np.ndarray,
    sig_visible: np.ndarray,
    sig_asset: np.ndarray,
    values: np.ndarray,
    delay_bars: int = 0,
) -> np.ndarray:
    """The signal values each bar sees, point in time.

    Parameters
    ----------
    bar_ts : ndarray of int64, shape (n,)
        Bar timestamps, non-decreasing (panel order).
    bar_asset : ndarray of int32, shape (n,)
        Asset id of each bar.
    sig_ts : ndarray of int64, shape (m,)
        Timestamp of each signal row; unique per asset.
    sig_visible : ndarray of int64, shape (m,)
        Time from which each row is visible (see :func:`visibility`).
    sig_asset : ndarray of int32, shape (m,)
        Asset id of each signal row (same ids as `bar_asset`).
    values : ndarray of float64, shape (m, k)
        Signal values of each row.
    delay_bars : int, default: 0
        Show at each bar what the `delay_bars`-th earlier bar of the same
        asset would have shown.

    Returns
    -------
    ndarray of float64, shape (n, k)
        For each bar, the values of the asset's row with the latest
        timestamp among rows visible at the bar's timestamp (after the bar
        delay); NaN where no row is visible.
    """
    n, m = int(bar_ts.shape[0]), int(sig_ts.shape[0])
    k = int(values.shape[1])
    out = np.full((n, k), np.nan, dtype=np.float64)
    if n == 0 or m == 0 or k == 0:
        return out
    # Rank rows by (asset, timestamp): within an asset a larger rank is a newer row.
    a0, a1, t0, t1 = sig_asset[:-1], sig_asset[1:], sig_ts[:-1], sig_ts[1:]
    if bool(np.all((a1 > a0) | ((a1 == a0) & (t1 > t0)))):
        by_ts = np.arange(m, dtype=np.int64)  # already in (asset, timestamp) order
    elif bool(np.all(t1 >= t0)):
        by_ts = np.argsort(sig_asset, kind="stable")  # in time order (a panel)
    else:
        by_ts = np.lexsort((sig_ts, sig_asset))
    a_r, v_r = sig_asset[by_ts], sig_visible[by_ts]
    if bool(np.all((a_r[1:] != a_r[:-1]) | (v_r[1:] >= v_r[:-1]))):
        # Visibility follows the timestamps within each asset: the newest
        # visible row is simply the last visible one.
        newest = np.arange(m, dtype=np.int64)
        a_v, t_v = a_r, v_r
    else:
        # Walk the rows by (asset, visibility); the running max of the rank is
        # the newest row visible so far. Ranks of an asset exceed those of
        # every smaller asset id, so one global running max is the per-asset one.
        rank = np.empty(m, dtype=np.int64)
        rank[by_ts] = np.arange(m, dtype=np.int64)
        by_vis = np.lexsort((rank, sig_visible, sig_asset))
        newest = np.maximum.accumulate(rank[by_vis])
        a_v, t_v = sig_asset[by_vis], sig_visible[by_vis]
    # One row per (asset, visibility time): the last one, which holds the max.
    keep = np.ones(m, dtype=bool)
    keep[:-1] = (a_v[1:] != a_v[:-1]) | (t_v[1:] != t_v[:-1])
    right = pl.DataFrame(
        {
            "asset": pl.Series(a_v[keep], dtype=pl.Int32),
            "t": pl.Series(t_v[keep], dtype=pl.Int64),
            "rank": pl.Series(newest[keep], dtype=pl.Int64),
        }
    ).sort("t", "asset")
    left = pl.DataFrame(
        {"asset": pl.Series(bar_asset, dtype=pl.Int32), "t": pl.Series(bar_ts, dtype=pl.Int64)}
    )
    joined = left.join_asof(right, on="t", by="asset", strategy="backward", check_sortedness=False)
    if delay_bars:
        joined = joined.with_columns(pl.col("rank").shift(delay_bars).over("asset"))
    got = joined["rank"].fill_null(-1).to_numpy()
    hit = got >= 0
    out[hit] = values[by_ts[got[hit]]]
    return out


# --------------------------------------------------------------------------- #
# A validated signal frame
# --------------------------------------------------------------------------- #
def _prefixed(exc: DataError, where: str) -> DataError:
    return DataError(f"{where}: {exc}")


@dataclass(frozen=True)
class SignalRows:
    """Validated signal rows, keyed to the assets of a price panel.

    Attributes
    ----------
    ts : ndarray of int64, shape (m,)
        Timestamps (ns), same convention as the bars.
    available_at : ndarray of int64 or None
        Publication times (>= `ts`), or ``None``.
    asset : ndarray of int32, shape (m,)
        Asset ids in the price panel.
    values : ndarray of float64, shape (m, k)
        Signal values (nulls are NaN).
    names : tuple of str
        Signal column names, in column order of `values`.
    source_row : ndarray of int64, shape (m,)
        Row of each signal row in the input as given.
    """

    ts: np.ndarray
    available_at: np.ndarray | None
    asset: np.ndarray
    values: np.ndarray
    names: tuple[str, ...]
    source_row: np.ndarray

    def aligned(
        self, bar_ts: np.ndarray, bar_asset: np.ndarray, timing: SignalTiming
    ) -> np.ndarray:
        """Values seen by each bar; see :func:`align_signals`."""
        vis = visibility(self.ts, self.available_at, timing)
        return align_signals(
            bar_ts, bar_asset, self.ts, vis, self.asset, self.values, timing.delay_bars
        )

    @classmethod
    def from_frame(
        cls,
        df: pl.DataFrame,
        *,
        row_column: str,
        timestamp_column: str,
        asset_column: str,
        columns: Sequence[str],
        available_at_column: str | None,
        asset_names: Sequence[str],
        tz: str | None,
        where: str = "signal frame",
    ) -> SignalRows:
        """Validate a collected signal frame.

        Parameters
        ----------
        df : polars.DataFrame
            The rows, with the row-number column `row_column` (0-based rows
            of the frame as given), the key columns, `available_at_column`
            and `columns` (already checked to exist).
        row_column, timestamp_column, asset_column : str
            Column names.
        columns : sequence of str
            Signal columns to take.
        available_at_column : str or None
            Publication-time column.
        asset_names : sequence of str
            Assets of the price data (sorted); the ids of the result index it.
        tz : str or None
            Time zone of the price data.
        where : str
            Prefix of error messages.

        Raises
        ------
        DataError
            Null keys or ``available_at``; unparseable timestamps; time zones
            that differ from the prices' or between timestamp and
            ``available_at``; ``available_at`` earlier than the timestamp; an
            asset absent from the price data; two rows with the same
            (timestamp, asset); a non-numeric signal column. The message names
            the 0-based row of the frame as given, its asset and timestamp.
        """
        try:
            return cls._from_frame(
                df,
                row_column,
                timestamp_column,
                asset_column,
                columns,
                available_at_column,
                asset_names,
                tz,
            )
        except DataError as exc:
            raise _prefixed(exc, where) from None

    @classmethod
    def _from_frame(
        cls,
        df: pl.DataFrame,
        row_column: str,
        timestamp_column: str,
        asset_column: str,
        columns: Sequence[str],
        available_at_column: str | None,
        asset_names: Sequence[str],
        tz: str | None,
    ) -> SignalRows:
        names = tuple(columns)
        source_row = df[row_column].cast(pl.Int64).to_numpy()
        if df.height == 0:
            empty = np.empty(0, dtype=np.int64)
            return cls(
                empty,
                None,
                np.empty(0, dtype=np.int32),
                np.empty((0, len(names)), dtype=np.float64),
                names,
                empty,
            )
        asset_s = asset_strings(df[asset_column], asset_column)
        rows = RowLocator(source_row, asset_s, df[timestamp_column])
        ts, sig_tz = timestamps_to_ns(df[timestamp_column], timestamp_column, rows)
        rows.set_timestamps(ts, sig_tz)
        check_not_null(asset_s, asset_column, rows)

        check_same_timezone([tz, sig_tz], ["prices", "signals"])
        avail: np.ndarray | None = None
        if available_at_column is not None:
            avail = check_available_at(df, available_at_column, timestamp_column, ts, sig_tz, rows)

        unknown = ~asset_s.is_in(list(asset_names))
        if unknown.any():
            mask = unknown.to_numpy()
            missing = asset_s.filter(unknown).unique(maintain_order=True).to_list()
            shown = ", ".join(repr(a) for a in missing[:5]) + (", ..." if len(missing) > 5 else "")
            raise rows.error(
                mask,
                f"asset not in the price data ({len(missing)} unknown: {shown})",
                tail="; every signal must belong to an asset of the price data",
            )
        asset = asset_s.cast(pl.Enum(list(asset_names))).to_physical().cast(pl.Int32).to_numpy()

        values = signal_matrix(df, names)
        order = np.lexsort((ts, asset))  # (asset, timestamp), stable
        ts, asset, source_row = ts[order], asset[order], source_row[order]
        check_unique_keys(
            ts,
            asset,
            source_row,
            asset_names,
            tz,
            f"{timestamp_column!r}, {asset_column!r}",
        )
        return cls(
            ts=np.ascontiguousarray(ts, dtype=np.int64),
            available_at=None if avail is None else np.ascontiguousarray(avail[order]),
            asset=np.ascontiguousarray(asset, dtype=np.int32),
            values=np.ascontiguousarray(values[order], dtype=np.float64),
            names=names,
            source_row=np.ascontiguousarray(source_row, dtype=np.int64),
        )


def check_signal_names(names: Sequence[str], where: str = "") -> None:
    """Reject signal names that shadow a bar field (``history`` could not tell them apart).

    `where` prefixes the message (e.g. ``"signal frame: "``).
    """
    clash = [c for c in names if c in BAR_FIELDS]
    if len(clash) == 1:
        raise DataError(
            f"{where}signal column {clash[0]!r} has the name of a bar field; rename it or "
            "leave it out of signal_columns"
        )
    if clash:
        raise DataError(
            f"{where}signal columns {', '.join(repr(c) for c in clash)} have the names of bar "
            "fields; rename them or leave them out of signal_columns"
        )
