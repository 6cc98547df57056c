"""Indicators built from the compiled ones: WMA, MACD, Stochastic, CrossUp, CrossDown, Delay.

Each returns declarations of :mod:`mlbacktest.indicators._spec` (windows,
EMAs and arithmetic, computed by the compiled kernels) and so has their
causality, NaN and warm-up rules; ``Delay`` is a causal one-column shift.
The values are backtrader's (``WeightedMovingAverage``, ``MACD``,
``Stochastic``, ``CrossUp``, ``CrossDown``, ``line(-n)``), see
docs/indicators.md.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from mlbacktest.indicators._spec import (
    EMA,
    SMA,
    Custom,
    Highest,
    Input,
    Lowest,
    Series,
    Sum,
    _input,
    _window,
)

__all__ = ["WMA", "MACD", "Stochastic", "CrossUp", "CrossDown", "Delay"]


def Delay(input: Input = "close", n: int = 1) -> Series:  # noqa: N802
    """The input ``n`` bars back (NaN for the first ``n`` bars of each asset).

    Parameters
    ----------
    input : str or Series
        Column name or indicator.
    n : int
        Bars back, >= 1.

    Returns
    -------
    Series
    """
    x = _input(input, "Delay input")
    k = _window(n, "Delay n")

    def shift(col: np.ndarray) -> np.ndarray:
        out = np.full(col.shape[0], np.nan)
        if col.shape[0] > k:
            out[k:] = col[:-k]
        return out

    return Custom(shift, x, lookback=k + 1, name=f"Delay({x!r}, {k})")


def WMA(input: Input = "close", window: int = 30) -> Series:  # noqa: N802
    """Weighted moving average: ``2 / (n (n + 1)) * sum(i * x[t - n + i], i = 1..n)``.

    The weighted sum is ``Sum(x, 1) + Sum(x, 2) + ... + Sum(x, n)`` (the value
    ``j`` bars back is in ``n - j`` of those sums); first value at bar ``n``.

    Parameters
    ----------
    input : str or Series
        Column name or indicator.
    window : int
        ``n``.

    Returns
    -------
    Series
    """
    x = _input(input, "WMA input")
    n = _window(window, "WMA window")
    total: Series = Sum(x, 1)
    for m in range(2, n + 1):
        total = total + Sum(x, m)
    return total * (2.0 / (n * (n + 1.0)))


def MACD(input: Input = "close", fast: int = 12, slow: int = 26,  # noqa: N802
         signal: int = 9) -> tuple[Series, Series]:
    """MACD and its signal line: ``EMA(x, fast) - EMA(x, slow)`` and ``EMA(macd, signal)``.

    Parameters
    ----------
    input : str or Series
        Column name or indicator.
    fast, slow, signal : int
        EMA windows (backtrader's ``period_me1``, ``period_me2``, ``period_signal``).

    Returns
    -------
    (Series, Series)
        ``macd`` (first value at bar ``slow``) and ``signal`` (at ``slow + signal - 1``).
    """
    x = _input(input, "MACD input")
    macd = EMA(x, _window(fast, "MACD fast")) - EMA(x, _window(slow, "MACD slow"))
    return macd, EMA(macd, _window(signal, "MACD signal"))


def Stochastic(window: int = 14, fast: int = 3, slow: int = 3, *,  # noqa: N802
               high: Input = "high", low: Input = "low",
               close: Input = "close") -> tuple[Series, Series]:
    """Slow stochastic ``%K`` and ``%D`` (backtrader's ``Stochastic``).

    ``k = 100 * (close - Lowest(low, n)) / (Highest(high, n) - Lowest(low, n))``,
    ``%K = SMA(k, fast)``, ``%D = SMA(%K, slow)``; a flat window
    (highest = lowest) gives ±inf or NaN, as ``x / 0`` does.

    Returns
    -------
    (Series, Series)
        ``%K`` and ``%D``.
    """
    n = _window(window, "Stochastic window")
    hh = Highest(_input(high, "Stochastic high"), n)
    ll = Lowest(_input(low, "Stochastic low"), n)
    c = _input(close, "Stochastic close")
    k = 100.0 * ((c - ll) / (hh - ll))
    perc_k = SMA(k, _window(fast, "Stochastic fast"))
    return perc_k, SMA(perc_k, _window(slow, "Stochastic slow"))


def _cross(a: Input, b: Any, up: bool, what: str) -> Series:
    x = _input(a, f"{what} a")
    if isinstance(b, (int, float)) and not isinstance(b, bool):
        y: Any = float(b)
        y_before: Any = y
    else:
        y = _input(b, f"{what} b")
        y_before = Delay(y, 1)
    x_before = Delay(x, 1)
    if up:
        return (x_before < y_before) * (x > y)
    return (x_before > y_before) * (x < y)


def CrossUp(a: Input, b: Input | float) -> Series:  # noqa: N802
    """1 on the bar where ``a`` goes from below ``b`` to above it, else 0 (strict, no touch).

    ``(a[-1] < b[-1]) * (a > b)``: unlike :class:`CrossOver`, a bar where ``a``
    equals ``b`` in between breaks the cross (backtrader's ``CrossUp``).
    """
    return _cross(a, b, True, "CrossUp")


def CrossDown(a: Input, b: Input | float) -> Series:  # noqa: N802
    """1 on the bar where ``a`` goes from above ``b`` to below it, else 0 (strict, no touch)."""
    return _cross(a, b, False, "CrossDown")
