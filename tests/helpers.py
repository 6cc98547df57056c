"""Small helpers to build tiny hand-written bar frames and scripted strategies.

Used by the golden-scenario and API tests: every price in those tests is
written by hand, so the expected fills, cash and equity can be computed by
hand too. The results tests run :class:`TopK` over synthetic bars
(:func:`synthetic_frame`, :func:`run_feed`).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np
import polars as pl

import mlbacktest
from mlbacktest import BacktestConfig, BacktestEngine, PolarsDataFeed, Strategy
from mlbacktest.data.synthetic import synthetic_bars

__all__ = [
    "bars", "day", "run", "fill_rows", "Scripted", "Recorder", "DEFAULT_START", "VOLUME",
    "TopK", "Idle", "synthetic_frame", "run_feed",
]

DEFAULT_START = "2024-01-01"
VOLUME = 1_000_000.0

Bar = tuple[float, float, float, float]


def day(i: int, start: str = DEFAULT_START) -> dt.datetime:
    """The naive timestamp of bar index ``i`` (daily bars from ``start``)."""
    return dt.datetime.fromisoformat(start) + dt.timedelta(days=i)


def bars(
    data: Mapping[str, Sequence[Bar | None]],
    start: str = DEFAULT_START,
    *,
    signals: Mapping[str, Mapping[str, Sequence[float | None]]] | None = None,
    volume: float = VOLUME,
) -> pl.DataFrame:
    """A long-format bar frame from hand-written ``(open, high, low, close)`` tuples.

    ``data`` maps an asset to its bars; bar ``i`` is stamped ``day(i, start)``.
    ``None`` in place of a bar means "no bar for that asset at that day" (a
    late start or a gap). ``signals`` maps a signal name to per-asset values
    aligned with ``data`` (values at missing bars are ignored). Volume is
    constant.
    """
    rows: dict[str, list[Any]] = {
        k: [] for k in ("timestamp", "asset", "open", "high", "low", "close", "volume")
    }
    sig_cols: dict[str, list[float | None]] = {name: [] for name in (signals or {})}
    for asset, asset_bars in data.items():
        for i, b in enumerate(asset_bars):
            if b is None:
                continue
            o, h, lo, c = b
            if not (lo <= min(o, c) and h >= max(o, c)):
                raise ValueError(f"inconsistent hand-written bar {b} for {asset} at {i}")
            rows["timestamp"].append(day(i, start))
            rows["asset"].append(asset)
            rows["open"].append(float(o))
            rows["high"].append(float(h))
            rows["low"].append(float(lo))
            rows["close"].append(float(c))
            rows["volume"].append(float(volume))
            for name, per_asset in (signals or {}).items():
                value = per_asset.get(asset, [None] * len(asset_bars))[i]
                sig_cols[name].append(None if value is None else float(value))
    frame = pl.DataFrame(
        {**rows, **sig_cols},
        schema_overrides={"timestamp": pl.Datetime("ns"), **{n: pl.Float64 for n in sig_cols}},
    )
    return frame.sort("timestamp", "asset")


def run(
    data: pl.DataFrame,
    strategy: Strategy,
    config: BacktestConfig | None = None,
    **knobs: Any,
) -> mlbacktest.BacktestResult:
    """Run ``strategy`` over ``data`` with ``config`` (or ``BacktestConfig(**knobs)``)."""
    if config is None:
        config = BacktestConfig(**knobs)
    elif knobs:
        raise TypeError("give either a config or knobs, not both")
    return mlbacktest.run_backtest(data, strategy, config)


def fill_rows(result: mlbacktest.BacktestResult) -> list[tuple[Any, ...]]:
    """Fills as ``(timestamp, asset, order_id, quantity, price, commission)`` tuples."""
    f = result.fills
    return list(
        zip(
            f["timestamp"].to_list(),
            f["asset"].to_list(),
            f["order_id"].to_list(),
            f["quantity"].to_list(),
            f["price"].to_list(),
            f["commission"].to_list(),
            strict=True,
        )
    )


class Scripted(Strategy):
    """Calls ``steps[i](self, view)`` in ``on_slice`` at the i-th timestamp of the run.

    ``start`` (optional) is called from ``on_start``; ``fills`` collects the
    FillEvents delivered to ``on_fill`` and ``seen`` the timestamps handled.
    """

    def __init__(
        self,
        steps: Mapping[int, Callable[[Scripted, Any], None]] | None = None,
        start: Callable[[Scripted], None] | None = None,
    ) -> None:
        self.steps = dict(steps or {})
        self.start_step = start
        self.fills: list[Any] = []
        self.seen: list[dt.datetime] = []
        self.step_index = -1

    def on_start(self) -> None:
        if self.start_step is not None:
            self.start_step(self)

    def on_fill(self, fill: Any) -> None:
        self.fills.append(fill)

    def on_slice(self, view: Any, context: dict[str, Any]) -> None:
        self.step_index += 1
        self.seen.append(view.timestamp)
        step = self.steps.get(self.step_index)
        if step is not None:
            step(self, view)


class Recorder(Scripted):
    """A :class:`Scripted` strategy that also records ``on_order`` and ``on_fill`` calls.

    ``orders`` holds ``(order_id, status, timestamp, reason)`` for each
    ``on_order`` call (``timestamp`` is ``self.now``: None from ``on_start``;
    ``reason`` only for cancelled, expired and rejected, "" otherwise),
    and ``log`` interleaves ``("order", order_id, status)`` and
    ``("fill", order_id, quantity)`` in the order the hooks were called.
    """

    def __init__(
        self,
        steps: Mapping[int, Callable[[Scripted, Any], None]] | None = None,
        start: Callable[[Scripted], None] | None = None,
    ) -> None:
        super().__init__(steps, start)
        self.orders: list[tuple[int, str, dt.datetime | None, str]] = []
        self.log: list[tuple[str, int, Any]] = []

    def on_order(self, order: Any) -> None:
        # Only ``status`` is a snapshot; other fields are read live, so the
        # reason is kept for the statuses it belongs to.
        ended = order.status in ("cancelled", "expired", "rejected")
        self.orders.append((order.order_id, order.status, self.now,
                            order.reason if ended else ""))
        self.log.append(("order", order.order_id, order.status))

    def on_fill(self, fill: Any) -> None:
        super().on_fill(fill)
        self.log.append(("fill", fill.order_id, fill.quantity))

    def statuses(self, order_id: int) -> list[str]:
        """The statuses reported for one order, in delivery order."""
        return [status for oid, status, _, _ in self.orders if oid == order_id]


class TopK(Strategy):
    """Long the ``k`` highest predictions, short the lowest, rebalanced every ``every`` bars."""

    def __init__(self, k: int = 2, every: int = 5) -> None:
        self.k, self.every, self._step = k, every, 0

    def on_slice(self, view: Any, context: dict[str, Any]) -> None:
        step, self._step = self._step, self._step + 1
        if step % self.every:
            return
        ranked = np.argsort(view.signal("pred"), kind="stable")
        weights = np.zeros(len(view))
        weights[ranked[-self.k :]] = 0.8 / self.k
        weights[ranked[0]] = -0.3
        self.rebalance(weights)


class Idle(Strategy):
    """Never trades."""


def synthetic_frame(
    n_assets: int,
    n_bars: int,
    *,
    seed: int,
    every: str = "1d",
    tz: str | None = None,
    start: str = "2023-01-02",
) -> pl.DataFrame:
    """:func:`~mlbacktest.data.synthetic.synthetic_bars` (with a ``pred`` signal), its
    timestamps converted to ``tz`` when given (``start`` is UTC)."""
    frame = synthetic_bars(n_assets, n_bars, seed=seed, start=start, every=every)
    if tz is not None:
        ts = pl.col("timestamp").dt.replace_time_zone("UTC").dt.convert_time_zone(tz)
        frame = frame.with_columns(ts)
    return frame


def run_feed(
    frame: pl.DataFrame, strategy: Strategy | None = None, **config: Any
) -> mlbacktest.BacktestResult:
    """Run ``strategy`` (a :class:`TopK` by default) over ``frame`` with its ``pred`` signal.

    The configuration is a margin account (the default :class:`TopK` is
    long-short) with 100,000 of initial cash and a 5 bp commission, with
    ``config`` added or overriding.
    """
    feed = PolarsDataFeed(frame, signal_columns=["pred"])
    cfg = BacktestConfig(**({"initial_cash": 100_000.0, "commission": 0.0005,
                             "account": "margin"} | config))
    return BacktestEngine(feed, strategy or TopK(), cfg).run()
