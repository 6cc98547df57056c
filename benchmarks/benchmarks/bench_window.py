"""Benchmarks of a history() window's reductions: compiled (HistoryWindow) and numpy's.

``benchmarks/run_window.py`` prints the same calls as one table with the
speed-up; here each is an asv ``time_`` case on 30 values.
"""

from __future__ import annotations

import numpy as np

from mlbacktest._window import as_window

CALLS = ["sum", "mean", "std", "min"]


class WindowReduction:
    """One reduction of 30 values held as a plain ndarray or as a HistoryWindow."""

    params = [["ndarray", "window"], CALLS]
    param_names = ["held_as", "call"]

    def setup(self, held_as, call):
        values = np.random.default_rng(0).normal(100.0, 5.0, 30)
        values.flags.writeable = False
        self.x = values if held_as == "ndarray" else as_window(values)
        self.method = getattr(self.x, call)

    def time_reduction(self, held_as, call):
        self.method()

    def time_last_ten_mean(self, held_as, call):
        self.x[-10:].mean()
