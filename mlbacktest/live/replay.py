"""ReplayFeed: recorded bars played back as a live feed, on a wall clock."""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from mlbacktest._time import to_ns
from mlbacktest.data.feeds import DataFeed
from mlbacktest.errors import ConfigError, DataError
from mlbacktest.live.base import BarBatch, LiveFeed

__all__ = ["ReplayFeed"]


class ReplayFeed(LiveFeed):
    """Bars of a frame, a file or a feed, handed out one timestamp at a time.

    The bars are read and validated by the package's feeds (a path by
    :func:`~mlbacktest.data.feeds.open_feed`, a frame by
    :class:`~mlbacktest.data.feeds.PolarsDataFeed`), so a replay sees exactly
    the bars a backtest of the same data sees.

    Parameters
    ----------
    data : DataFeed, polars DataFrame/LazyFrame or path
        The bars.
    speed : float, default 1.0
        How fast the wall clock runs against the bar clock: 1.0 replays in
        real time (bars ``t`` and ``t + 1 min`` come one minute apart), 100
        a hundred times faster, ``float("inf")`` as fast as the run takes them.
    signal_columns : sequence of str, optional
        Signal columns when `data` is not a feed already.
    start : datetime, str or int ns, optional
        Replay the bars stamped at or after this time only.
    clock : callable, optional
        The wall clock, in seconds (default :func:`time.monotonic`).
    sleep : callable, optional
        How to wait, in seconds (default :func:`time.sleep`).
    **feed_options
        Passed to the feed built from `data`.

    Raises
    ------
    ConfigError
        `speed` is not a positive number.
    DataError
        The data fail validation, or nothing is left after `start`.
    """

    #: The bars went through a DataFeed's validation: the run does not check them again.
    validated = True

    def __init__(
        self,
        data: Any,
        *,
        speed: float = 1.0,
        signal_columns: Sequence[str] | None = None,
        start: Any = None,
        clock: Callable[[], float] | None = None,
        sleep: Callable[[float], None] | None = None,
        **feed_options: Any,
    ) -> None:
        if not isinstance(speed, (int, float)) or isinstance(speed, bool) or \
                math.isnan(speed) or speed <= 0:
            raise ConfigError(f"speed must be a positive number or float('inf'), got {speed!r}")
        self.speed = float(speed)
        if isinstance(data, DataFeed):
            if feed_options or signal_columns is not None:
                raise TypeError("signal_columns and feed options need a frame or path, not a feed")
            feed = data
        elif isinstance(data, (str, Path)):
            from mlbacktest.data.feeds import open_feed

            feed = open_feed(data, signal_columns=signal_columns, **feed_options)
        else:
            from mlbacktest.data.feeds import PolarsDataFeed

            feed = PolarsDataFeed(data, signal_columns=signal_columns, **feed_options)
        panel = feed.panel
        self.panel = panel
        self.asset_names = tuple(panel.asset_names)
        self.signal_names = tuple(panel.signal_names)
        self.tz = panel.tz
        ts = panel.ts
        first = 0
        if start is not None:
            first = int(np.searchsorted(ts, to_ns(start, panel.tz), side="left"))
        if first >= ts.size:
            raise DataError(f"no bar to replay at or after start={start!r}")
        starts = np.flatnonzero(ts[first + 1:] != ts[first:-1]) + first + 1
        #: Row offset of each timestamp's first row, and the end.
        self._offsets = np.concatenate(([first], starts, [ts.size])).astype(np.int64)
        self._times = ts[self._offsets[:-1]]
        self._next = 0
        self._clock = time.monotonic if clock is None else clock
        self._sleep = time.sleep if sleep is None else sleep
        self._t0: float | None = None
        self._signals = np.ascontiguousarray(panel.signals)

    def calendar(self) -> np.ndarray:
        """The timestamps the replay will hand out (a replay knows its calendar)."""
        return self._times.copy()

    def __len__(self) -> int:
        return int(self._times.size)

    def start(self) -> None:
        """Start the wall clock at the first bar."""
        self._t0 = self._clock()

    def _batch(self, k: int) -> BarBatch:
        a, b = int(self._offsets[k]), int(self._offsets[k + 1])
        p = self.panel
        return BarBatch(
            ts=int(self._times[k]), asset=p.asset[a:b].astype(np.int64), open=p.open[a:b],
            high=p.high[a:b], low=p.low[a:b], close=p.close[a:b], volume=p.volume[a:b],
            signals=self._signals[a:b],
        )

    def next_batch(self, timeout: float) -> BarBatch | None:
        """The next timestamp's bars once the wall clock reaches it (see :class:`LiveFeed`)."""
        k = self._next
        if k >= self._times.size:
            return None
        if self.speed != math.inf:
            if self._t0 is None:
                self._t0 = self._clock()
            due = self._t0 + (int(self._times[k]) - int(self._times[0])) / 1e9 / self.speed
            wait = due - self._clock()
            if wait > timeout:
                self._sleep(max(timeout, 0.0))
                raise TimeoutError(f"the next bar is due in {wait:.3f} s")
            if wait > 0:
                self._sleep(wait)
        self._next = k + 1
        return self._batch(k)
