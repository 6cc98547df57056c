"""Shared test helpers: hypothesis strategies for random, ragged bar panels.

A :class:`Panel` is a small multi-asset bar set kept in plain Python lists
(so the reference broker can read it without numpy) that converts to the long
polars frame :class:`mlbacktest.PolarsDataFeed` takes.

Prices are drawn on a tick grid most of the time (so an open, low, high or an
order's limit/stop level often coincide exactly, which exercises the ``<=`` /
``>=`` boundaries of the fill rules), and as unrounded floats otherwise.
Volumes are constant (1e6) or drawn per bar (small, sometimes zero, so that
volume caps bite). Timestamps are daily, or irregular and intraday (several
bars per calendar day, which exercises DAY orders).
"""

from __future__ import annotations

import math
import os
import random
from dataclasses import dataclass

import polars as pl
from hypothesis import settings
from hypothesis import strategies as st

# The suite is reproducible: every hypothesis test draws the same examples on
# every machine (derandomize), so CI replays a fixed corpus. Exploratory runs
# draw fresh ones, as many per property test as MLBT_EXAMPLES says:
#   MLBT_RANDOM=1 MLBT_EXAMPLES=2000 python -m pytest tests/test_properties.py \
#       tests/test_differential.py
# (docs/architecture.md, "Testing"). MLBT_EXAMPLES alone replays a larger
# fixed corpus.
settings.register_profile("reproducible", derandomize=True, print_blob=True)
settings.register_profile("explore", derandomize=False, print_blob=True)
settings.load_profile("explore" if os.environ.get("MLBT_RANDOM") else "reproducible")


def examples(default: int) -> int:
    """Examples a property test draws: ``default``, or ``MLBT_EXAMPLES`` when it is set.

    Every hypothesis example count of the suite goes through this
    function (tests/test_properties.py checks it), so one variable scales
    every property test.

    Parameters
    ----------
    default : int
        The test's own count, used by the reproducible CI corpus.

    Returns
    -------
    int
        ``int(MLBT_EXAMPLES)`` if the variable is set (a whole number >= 1), else ``default``.

    Raises
    ------
    ValueError
        If ``MLBT_EXAMPLES`` is set but is not a whole number >= 1.
    """
    raw = os.environ.get("MLBT_EXAMPLES")
    if raw is None or raw.strip() == "":
        return default
    try:
        n = int(raw)
    except ValueError:
        raise ValueError(f"MLBT_EXAMPLES must be a whole number >= 1, got {raw!r}") from None
    if n < 1:
        raise ValueError(f"MLBT_EXAMPLES must be a whole number >= 1, got {raw!r}")
    return n

#: Timestamp of bar index 0 (2024-01-01 00:00, naive, in ns) and the daily bar spacing.
BASE_NS = 1_704_067_200_000_000_000
STEP_NS = 86_400_000_000_000
HOUR_NS = 3_600_000_000_000
#: Volume of every bar when a panel's volumes are constant.
VOLUME = 1_000_000.0


@dataclass(frozen=True)
class Panel:
    """A bar panel as plain lists.

    Attributes
    ----------
    asset_names : list of str
        ``A0``, ``A1``, ...: sorted names, so an asset's id is its index here
        (the engine numbers assets in sorted-name order).
    timestamps : list of int
        ns timestamps, one per bar index, strictly increasing.
    bars : list of list of tuple
        ``bars[k]`` holds ``(asset_id, open, high, low, close, volume)`` of
        every asset with a bar at ``timestamps[k]``, by asset id. Never empty.
    tick : float
        Price grid the bars were drawn on (0.0 for unrounded prices).
    """

    asset_names: list[str]
    timestamps: list[int]
    bars: list[list[tuple[int, float, float, float, float, float]]]
    tick: float

    @property
    def n_assets(self) -> int:
        return len(self.asset_names)

    @property
    def n_ts(self) -> int:
        return len(self.timestamps)

    def bar(self, k: int, asset: int) -> tuple | None:
        """The bar of ``asset`` at index ``k`` (None when it has none)."""
        for row in self.bars[k]:
            if row[0] == asset:
                return row
        return None

    def next_bar(self, k: int, asset: int) -> tuple | None:
        """The first bar of ``asset`` strictly after index ``k`` (None if there is none)."""
        for j in range(k + 1, self.n_ts):
            row = self.bar(j, asset)
            if row is not None:
                return row
        return None

    def last_close(self, k: int, asset: int) -> float | None:
        """Close of the asset's latest bar at or before index ``k`` (None before its first)."""
        for j in range(min(k, self.n_ts - 1), -1, -1):
            row = self.bar(j, asset)
            if row is not None:
                return row[4]
        return None

    def any_close(self, asset: int) -> float:
        """Close of the asset's first bar (every asset of a panel has at least one)."""
        for k in range(self.n_ts):
            row = self.bar(k, asset)
            if row is not None:
                return row[4]
        raise AssertionError(f"asset {asset} has no bar")  # pragma: no cover

    def frame(self, with_signal: bool = True) -> pl.DataFrame:
        """The long frame: timestamp, asset, open, high, low, close, volume (and ``pred``)."""
        cols: dict[str, list] = {k: [] for k in ("timestamp", "asset", "open", "high", "low",
                                                 "close", "volume", "pred")}
        for k, rows in enumerate(self.bars):
            for a, o, h, lo, c, v in rows:
                cols["timestamp"].append(self.timestamps[k])
                cols["asset"].append(self.asset_names[a])
                cols["open"].append(o)
                cols["high"].append(h)
                cols["low"].append(lo)
                cols["close"].append(c)
                cols["volume"].append(v)
                cols["pred"].append(float((k * 7 + a * 3) % 5 - 2))
        if not with_signal:
            del cols["pred"]
        frame = pl.DataFrame(cols, schema_overrides={"timestamp": pl.Int64})
        return frame.with_columns(pl.col("timestamp").cast(pl.Datetime("ns")))


def _on_grid(x: float, tick: float, mode: str) -> float:
    if tick == 0.0:
        return x
    f = {"round": round, "floor": math.floor, "ceil": math.ceil}[mode]
    return max(1, f(x / tick)) * tick


@st.composite
def bar_panels(
    draw: st.DrawFn,
    min_assets: int = 2,
    max_assets: int = 4,
    min_ts: int = 5,
    max_ts: int = 30,
    volumes: bool = False,
    intraday: bool = False,
) -> Panel:
    """Random ragged panels: assets may start late and have gaps; prices are consistent.

    Every timestamp has at least one bar and every asset at least one bar;
    ``0 < low <= open, close <= high`` on every bar. With ``volumes`` the
    volumes may be drawn per bar (else they are all :data:`VOLUME`); with
    ``intraday`` the spacing may be irregular, from an hour to two days.
    """
    n_assets = draw(st.integers(min_assets, max_assets))
    n_ts = draw(st.integers(min_ts, max_ts))
    tick = draw(st.sampled_from([0.25, 0.01, 1.0, 0.0]))
    base = draw(st.sampled_from([10.0, 50.0, 100.0, 1000.0]))
    vol = draw(st.sampled_from([0.005, 0.02, 0.06]))
    ragged = draw(st.booleans())
    small_volumes = volumes and draw(st.booleans())
    irregular = intraday and draw(st.booleans())
    rnd = random.Random(draw(st.integers(0, 2**32 - 1)))

    present = [[True] * n_assets for _ in range(n_ts)]
    if ragged:
        for a in range(n_assets):
            start = rnd.choice([0, 0, 1, 2, n_ts // 2, n_ts - 1])
            gap_p = rnd.choice([0.0, 0.1, 0.3])
            for k in range(n_ts):
                present[k][a] = k >= start and rnd.random() >= gap_p
        for a in range(n_assets):  # every asset trades at least once
            if not any(present[k][a] for k in range(n_ts)):
                present[rnd.randrange(n_ts)][a] = True
        for k in range(n_ts):  # every timestamp has a bar
            if not any(present[k]):
                present[k][rnd.randrange(n_assets)] = True

    bars: list[list[tuple[int, float, float, float, float]]] = [[] for _ in range(n_ts)]
    for a in range(n_assets):
        prev = base * rnd.uniform(0.5, 2.0)
        for k in range(n_ts):
            if not present[k][a]:
                prev *= math.exp(rnd.gauss(0.0, vol))
                continue
            o = _on_grid(prev * math.exp(rnd.gauss(0.0, vol * 0.5)), tick, "round")
            c = _on_grid(o * math.exp(rnd.gauss(0.0, vol)), tick, "round")
            # Bars with no range beyond the body (high == max(open, close)) are common.
            up = 0.0 if rnd.random() < 0.3 else abs(rnd.gauss(0.0, vol * 0.5))
            dn = 0.0 if rnd.random() < 0.3 else abs(rnd.gauss(0.0, vol * 0.5))
            h = max(_on_grid(max(o, c) * (1.0 + up), tick, "ceil"), o, c)
            lo = min(_on_grid(min(o, c) * (1.0 - dn), tick, "floor"), o, c)
            v = VOLUME
            if small_volumes:
                v = 0.0 if rnd.random() < 0.05 else float(rnd.choice([20, 100, 500, 3000]))
            bars[k].append((a, o, h, lo, c, v))
            prev = c
    timestamps = [BASE_NS + k * STEP_NS for k in range(n_ts)]
    if irregular:
        t = BASE_NS + rnd.choice([0, 9, 20]) * HOUR_NS
        timestamps = []
        for _ in range(n_ts):
            timestamps.append(t)
            t += rnd.choice([1, 2, 3, 5, 6, 8, 24, 48]) * HOUR_NS
    return Panel(
        asset_names=[f"A{a}" for a in range(n_assets)],
        timestamps=timestamps,
        bars=bars,
        tick=tick,
    )
