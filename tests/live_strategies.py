"""Strategies and data shared by the live-run tests (tests/test_live*.py)."""

from __future__ import annotations

import numpy as np
import polars as pl

import mlbacktest.indicators as ind
from mlbacktest import Strategy
from mlbacktest.data.synthetic import synthetic_bars


def gappy_bars(n_assets: int = 4, n_bars: int = 120, seed: int = 3, drop: float = 0.15,
               every: str = "1d") -> pl.DataFrame:
    """Synthetic bars with a prediction column, and some (asset, timestamp) rows missing."""
    df = synthetic_bars(n_assets=n_assets, n_bars=n_bars, seed=seed, every=every)
    rng = np.random.default_rng(seed)
    keep = rng.random(df.height) >= drop
    keep[: n_assets] = True  # every asset has a first bar
    return df.filter(pl.Series(keep))


class SliceMarket(Strategy):
    """on_slice, market orders towards the sign of the prediction, target quantities."""

    def on_slice(self, view, context):
        for a, p in zip(view.assets.tolist(), view.signal("pred").tolist(), strict=True):
            if np.isnan(p):
                continue
            self.order_target_quantity(a, 10 if p > 0 else -5)


class LimitsAndStops(Strategy):
    """on_market_data: limit entries below the close, stop exits, cancels and replaces."""

    def on_start(self):
        self.working = {}

    def on_market_data(self, event, context):
        a = event.asset
        pos = self.get_position(a)
        oid = self.working.get(a)
        if oid is not None:
            o = self.get_order(oid)
            if o.status in ("accepted", "submitted"):
                if event.signals["pred"] < -0.5:
                    self.cancel(oid)
                    self.working.pop(a)
                elif event.signals["pred"] > 0.8 and o.order_type == "limit":
                    new = self.replace(oid, limit_price=round(event.close * 0.995, 2))
                    self.working[a] = new.order_id
                return
            self.working.pop(a)
        if pos == 0 and event.signals["pred"] > 0:
            o = self.order(a, 7, order_type="limit", limit_price=round(event.close * 0.99, 2))
            self.working[a] = o.order_id
        elif pos > 0:
            o = self.order(a, -pos, order_type="stop", stop_price=round(event.close * 0.97, 2))
            self.working[a] = o.order_id


class Brackets(Strategy):
    """Bracket entries (limit entry, stop loss, take profit) on a strong prediction."""

    def on_market_data(self, event, context):
        a = event.asset
        if self.get_position(a) == 0 and not self.open_orders(a) and event.signals["pred"] > 0.3:
            c = event.close
            self.bracket(a, 5, stop_loss=round(c * 0.96, 2), take_profit=round(c * 1.04, 2),
                         limit_price=round(c * 1.001, 2))


class WithIndicators(Strategy):
    """Declared indicators and history(): a moving-average cross plus a history window."""

    fast = ind.SMA("close", 3)
    slow = ind.SMA("close", 8)

    def on_market_data(self, event, context):
        a = event.asset
        f, s = event.indicators["fast"], event.indicators["slow"]
        if np.isnan(s):
            return
        closes = self.history(a, "close", 5)
        if len(closes) < 5:
            return
        up = f > s and closes[-1] >= closes[0]
        pos = self.get_position(a)
        if up and pos <= 0:
            self.order_target_quantity(a, 4)
        elif not up and pos > 0:
            self.close_position(a)


class NextOpenMarket(Strategy):
    """Market orders only (a venue fills them at the next bar's open)."""

    def on_market_data(self, event, context):
        p = event.signals["pred"]
        if np.isnan(p):
            return
        a = event.asset
        pos = self.get_position(a)
        if p > 0.2 and pos <= 0:
            self.buy(a, 3 - pos)
        elif p < -0.2 and pos > 0:
            self.sell(a, pos)


ALL = [SliceMarket, LimitsAndStops, Brackets, WithIndicators, NextOpenMarket]
