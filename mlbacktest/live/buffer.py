"""SignalBuffer: bars and ML signals arriving separately, joined per timestamp."""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

import numpy as np

from mlbacktest.live.base import BarBatch, ErrorEvent, LiveFeed

__all__ = ["SignalBuffer"]


class _Pending:
    """The bars of one timestamp received so far."""

    __slots__ = ("first_arrival", "rows")

    def __init__(self, now: float) -> None:
        self.first_arrival = now
        self.rows: dict[int, tuple[float, float, float, float, float]] = {}


class SignalBuffer(LiveFeed):
    """A live feed assembled from pushed bars and pushed signals.

    A venue's bar stream calls :meth:`push_bar`, a model server calls
    :meth:`push_signal` (from any thread); the run reads whole timestamps
    with :meth:`next_batch`. A timestamp is emitted when its bars are
    complete and every bar has its signals.

    The bars of a timestamp are complete when every asset of the universe
    has one, when a bar of a later timestamp has arrived, or `bar_grace`
    seconds after the first of them arrived. Past `timeout` seconds after
    the first bar, a timestamp whose signals have not all arrived is emitted
    anyway, the missing signals NaN, with exactly one ``stale_signal``
    :class:`~mlbacktest.live.base.ErrorEvent` naming the assets.

    A bar of a (timestamp, asset) already received is dropped and reported
    once as ``duplicate_bar``; a bar older than the last timestamp emitted
    (or of that timestamp, arriving after it was emitted) is dropped and
    reported as ``out_of_order_bar``. Signals of a timestamp already emitted
    are dropped (the stale signal was reported when it was emitted).

    Parameters
    ----------
    asset_names : sequence of str
        The universe; sorted here.
    signal_names : sequence of str
        The signal columns, in the order of :attr:`BarBatch.signals`.
    timeout : float
        Seconds to wait for a timestamp's signals after its first bar.
    bar_grace : float, optional
        Seconds after its first bar when a timestamp's bars count as
        complete (default: `timeout`).
    tz : str, optional
        Time zone of the timestamps (for display).
    clock : callable, optional
        Wall clock in seconds (default :func:`time.monotonic`).
    """

    def __init__(
        self,
        asset_names: Sequence[str],
        signal_names: Sequence[str] = (),
        *,
        timeout: float,
        bar_grace: float | None = None,
        tz: str | None = None,
        clock: Callable[[], float] | None = None,
    ) -> None:
        names = sorted(set(asset_names))
        if len(names) != len(list(asset_names)) or not names:
            raise ValueError("asset_names must be distinct and not empty")
        if len(set(signal_names)) != len(list(signal_names)):
            raise ValueError(f"signal_names must be distinct, got {list(signal_names)}")
        if not (isinstance(timeout, (int, float)) and timeout >= 0 and math.isfinite(timeout)):
            raise ValueError(f"timeout must be a finite number of seconds >= 0, got {timeout!r}")
        grace = timeout if bar_grace is None else bar_grace
        if not (isinstance(grace, (int, float)) and grace >= 0 and math.isfinite(grace)):
            raise ValueError(f"bar_grace must be a finite number of seconds >= 0, got {grace!r}")
        self.asset_names = tuple(names)
        self.signal_names = tuple(signal_names)
        self.tz = tz
        self.timeout = float(timeout)
        self.bar_grace = float(grace)
        self._index = {a: i for i, a in enumerate(self.asset_names)}
        self._clock = time.monotonic if clock is None else clock
        self._cond = threading.Condition()
        self._bars: dict[int, _Pending] = {}
        self._signals: dict[tuple[int, int], np.ndarray] = {}
        self._last_emitted: int | None = None
        self._last_assets: frozenset[int] = frozenset()
        self._errors: list[ErrorEvent] = []
        self._ended = False

    # ------------------------------------------------------------ producers
    def _asset(self, asset: str | int) -> int:
        if isinstance(asset, str):
            i = self._index.get(asset)
            if i is None:
                raise KeyError(f"asset {asset!r} is not in the buffer's universe")
            return i
        i = int(asset)
        if not 0 <= i < len(self.asset_names):
            raise KeyError(f"asset id {asset} out of range: {len(self.asset_names)} assets")
        return i

    def push_bar(self, ts: int, asset: str | int, open: float, high: float, low: float,
                 close: float, volume: float) -> bool:
        """Add one bar; returns False when it was dropped (duplicate or out of order)."""
        a = self._asset(asset)
        ts = int(ts)
        with self._cond:
            when = np.datetime64(ts, "ns")
            last = self._last_emitted
            if last is not None and (ts < last or (ts == last and a not in self._last_assets)):
                self._errors.append(ErrorEvent(
                    ts, "feed", "out_of_order_bar",
                    f"bar of {self.asset_names[a]} at {when} arrived after the bars of "
                    f"{np.datetime64(last, 'ns')} were delivered; dropped",
                    asset=self.asset_names[a]))
                return False
            pending = self._bars.get(ts)
            if (ts == last) or (pending is not None and a in pending.rows):
                self._errors.append(ErrorEvent(
                    ts, "feed", "duplicate_bar",
                    f"bar of {self.asset_names[a]} at {when} received twice; the copy was dropped",
                    asset=self.asset_names[a]))
                return False
            if pending is None:
                pending = self._bars[ts] = _Pending(self._clock())
            pending.rows[a] = (float(open), float(high), float(low), float(close), float(volume))
            self._cond.notify_all()
            return True

    def push_signal(self, ts: int, asset: str | int,
                    values: Mapping[str, float] | Sequence[float]) -> bool:
        """Add the signals of one (timestamp, asset); False when its bars were already emitted.

        ``values`` maps every signal name to its value, or lists the values
        in the order of :attr:`signal_names`.
        """
        a = self._asset(asset)
        ts = int(ts)
        if isinstance(values, Mapping):
            missing = [s for s in self.signal_names if s not in values]
            extra = [k for k in values if k not in self.signal_names]
            if missing or extra:
                raise KeyError(f"signals for {self.asset_names[a]} at {np.datetime64(ts, 'ns')}: "
                               f"missing {missing}, unknown {extra}")
            row = np.array([float(values[s]) for s in self.signal_names], dtype=np.float64)
        else:
            row = np.asarray(values, dtype=np.float64)
            if row.shape != (len(self.signal_names),):
                raise ValueError(f"expected {len(self.signal_names)} signal values, got "
                                 f"shape {row.shape}")
        with self._cond:
            if self._last_emitted is not None and ts <= self._last_emitted:
                return False
            self._signals[(ts, a)] = row
            self._cond.notify_all()
            return True

    def end(self) -> None:
        """No more bars will come: emit what is buffered, then end the feed."""
        with self._cond:
            self._ended = True
            self._cond.notify_all()

    # ------------------------------------------------------------ consumer
    def _ready(self, now: float) -> tuple[int, bool] | float | None:
        """(ts, complete signals) of the timestamp to emit now, or the wait until one may be."""
        if not self._bars:
            return None
        ts = min(self._bars)
        pending = self._bars[ts]
        complete = (len(pending.rows) == len(self.asset_names) or len(self._bars) > 1
                    or self._ended or now - pending.first_arrival >= self.bar_grace)
        if not complete:
            return pending.first_arrival + self.bar_grace - now
        have = all((ts, a) in self._signals for a in pending.rows)
        if have or not self.signal_names:
            return ts, True
        if now - pending.first_arrival >= self.timeout or self._ended:
            return ts, False
        return pending.first_arrival + self.timeout - now

    def _emit(self, ts: int, complete: bool) -> BarBatch:
        pending = self._bars.pop(ts)
        ids = sorted(pending.rows)
        vals = np.array([pending.rows[a] for a in ids], dtype=np.float64).reshape(len(ids), 5)
        sig = np.full((len(ids), len(self.signal_names)), np.nan)
        missing = []
        for k, a in enumerate(ids):
            row = self._signals.pop((ts, a), None)
            if row is None:
                missing.append(self.asset_names[a])
            else:
                sig[k] = row
        for key in [k for k in self._signals if k[0] <= ts]:
            del self._signals[key]  # signals of assets without a bar at ts
        if missing and self.signal_names:
            self._errors.append(ErrorEvent(
                ts, "feed", "stale_signal",
                f"signals of {', '.join(missing)} at {np.datetime64(ts, 'ns')} missed the "
                f"{self.timeout:g} s timeout; the bars were delivered with NaN signals",
                asset=missing[0] if len(missing) == 1 else None))
        self._last_emitted = ts
        self._last_assets = frozenset(ids)
        return BarBatch(ts=ts, asset=np.asarray(ids, dtype=np.int64), open=vals[:, 0].copy(),
                        high=vals[:, 1].copy(), low=vals[:, 2].copy(), close=vals[:, 3].copy(),
                        volume=vals[:, 4].copy(), signals=sig)

    def next_batch(self, timeout: float) -> BarBatch | None:
        """The next complete timestamp (see the class notes); TimeoutError after `timeout` s."""
        deadline = self._clock() + max(timeout, 0.0)
        with self._cond:
            while True:
                now = self._clock()
                ready = self._ready(now)
                if isinstance(ready, tuple):
                    return self._emit(*ready)
                if ready is None and self._ended:
                    return None
                left = deadline - now
                if left <= 0:
                    raise TimeoutError("no complete timestamp yet")
                self._cond.wait(left if ready is None else min(left, max(ready, 0.0)))

    def take_errors(self) -> list[ErrorEvent]:
        """The incidents since the last call (one per dropped bar or late timestamp)."""
        with self._cond:
            out, self._errors = self._errors, []
        return out

    def push_bars(self, rows: Iterable[tuple[Any, ...]]) -> int:
        """:meth:`push_bar` for each ``(ts, asset, open, high, low, close, volume)``; returns
        the number kept."""
        return sum(bool(self.push_bar(*r)) for r in rows)
