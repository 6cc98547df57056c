"""Small strategies with parameters for the research tests (importable by worker processes)."""

from __future__ import annotations

import numpy as np

from mlbacktest import Strategy


class Momentum(Strategy):
    """Hold the `top` assets with the best return over `lookback` bars, equally weighted."""

    def __init__(self, lookback: int = 5, top: int = 1) -> None:
        self.lookback, self.top = lookback, top

    def on_slice(self, view, context):
        closes = self.history_panel("close", self.lookback + 1)
        if closes.shape[0] < self.lookback + 1:
            return
        score = closes[-1] / closes[0]
        keep = set(np.argsort(-score, kind="stable")[: self.top].tolist())
        for i, a in enumerate(self.assets):
            self.order_target_percent(a, 0.9 / self.top if i in keep else 0.0)
