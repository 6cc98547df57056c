"""Declarations of indicators: small immutable descriptions, computed later by a plan.

A declaration names its inputs (a bar field, a signal or another indicator,
by name or as an object) and its parameters; nothing is computed here. The
plan (:mod:`mlbacktest.indicators._plan`) resolves the names against the
run's columns and runs the compiled kernels.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Callable
from typing import Any

from mlbacktest.errors import IndicatorError

__all__ = [
    "Series", "SMA", "EMA", "StdDev", "Highest", "Lowest", "Sum", "RSI", "ATR", "Bollinger",
    "ROC", "Momentum", "CrossOver", "ZScore", "Custom", "Max", "Min",
]

Input = Any
"""An input: a column name (str), a :class:`Series`, or (in arithmetic) a number."""


def _window(value: Any, what: str, minimum: int = 1) -> int:
    """A whole number of bars >= ``minimum`` (a bool, a float or a string is refused)."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise IndicatorError(f"{what} must be a whole number of bars (int), "
                             f"got {type(value).__name__} {value!r}")
    if int(value) < minimum:
        raise IndicatorError(f"{what} must be >= {minimum}, got {value!r}")
    return int(value)


def _number(value: Any, what: str) -> float:
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise IndicatorError(f"{what} must be a number, got {type(value).__name__} {value!r}")
    out = float(value)
    if not math.isfinite(out):
        raise IndicatorError(f"{what} must be finite, got {value!r}")
    return out


def _input(value: Any, what: str) -> Series:
    """A declared input as a series: a column name becomes a :class:`Column`."""
    if isinstance(value, Series):
        return value
    if isinstance(value, str):
        if not value:
            raise IndicatorError(f"{what} is an empty column name")
        return Column(value)
    raise IndicatorError(f"{what} must be a column name (str) or an indicator, "
                         f"got {type(value).__name__} {value!r}")


def _operand(value: Any) -> Series:
    if isinstance(value, Series):
        return value
    if isinstance(value, str):
        return Column(value)
    if isinstance(value, numbers.Real) and not isinstance(value, bool):
        return Const(float(value))
    raise TypeError(f"an indicator combines with a number, a column name or another "
                    f"indicator, not {type(value).__name__} {value!r}")


class Series:
    """A causal series over each asset's bars: the base of every declaration.

    Series combine with ``+ - * /`` (with numbers, column names and other
    series) and compare with ``< <= > >= == !=`` (1.0 or 0.0, NaN when an
    input is NaN), giving derived series, as backtrader's lines do.

    A series assigned as a class attribute of a :class:`~mlbacktest.Strategy`
    is declared under the attribute's name; ``Strategy.add_indicator(name,
    series)`` declares one from ``on_start``.
    """

    __hash__ = object.__hash__

    def __init__(self) -> None:
        #: The class attribute name given by ``__set_name__`` (None elsewhere).
        self.attr_name: str | None = None

    def __set_name__(self, owner: type, name: str) -> None:
        if self.attr_name is None:
            self.attr_name = name

    # The series this one reads; overridden by every node with inputs.
    def inputs(self) -> tuple[Series, ...]:
        """The series this one is computed from."""
        return ()

    def outputs(self) -> tuple[tuple[str, Series], ...]:
        """Named outputs stored beside the series' own name (``("upper", series)``...)."""
        return ()

    def resolved(self) -> Series:
        """The series whose values this one has (itself, or for Bollinger its middle band)."""
        return self

    def __bool__(self) -> bool:
        raise TypeError(f"{self!r} is a declared series, not a value: compare its value at a "
                        "bar (event.indicators[name]) instead")

    # ------------------------------------------------------------ arithmetic
    def __add__(self, other: Any) -> Series:
        return BinOp("+", self, _operand(other))

    def __radd__(self, other: Any) -> Series:
        return BinOp("+", _operand(other), self)

    def __sub__(self, other: Any) -> Series:
        return BinOp("-", self, _operand(other))

    def __rsub__(self, other: Any) -> Series:
        return BinOp("-", _operand(other), self)

    def __mul__(self, other: Any) -> Series:
        return BinOp("*", self, _operand(other))

    def __rmul__(self, other: Any) -> Series:
        return BinOp("*", _operand(other), self)

    def __truediv__(self, other: Any) -> Series:
        return BinOp("/", self, _operand(other))

    def __rtruediv__(self, other: Any) -> Series:
        return BinOp("/", _operand(other), self)

    def __neg__(self) -> Series:
        return BinOp("*", self, Const(-1.0))

    def __lt__(self, other: Any) -> Series:
        return BinOp("<", self, _operand(other))

    def __le__(self, other: Any) -> Series:
        return BinOp("<=", self, _operand(other))

    def __gt__(self, other: Any) -> Series:
        return BinOp(">", self, _operand(other))

    def __ge__(self, other: Any) -> Series:
        return BinOp(">=", self, _operand(other))

    def __eq__(self, other: Any) -> Series:  # type: ignore[override]
        return BinOp("==", self, _operand(other))

    def __ne__(self, other: Any) -> Series:  # type: ignore[override]
        return BinOp("!=", self, _operand(other))


class Column(Series):
    """A column of the run by name: a bar field, a signal or a declared indicator."""

    def __init__(self, name: str) -> None:
        super().__init__()
        self.name = name

    def __repr__(self) -> str:
        return f"Column({self.name!r})"


class Const(Series):
    """A constant (a number in arithmetic between series)."""

    def __init__(self, value: float) -> None:
        super().__init__()
        self.value = value

    def __repr__(self) -> str:
        return f"Const({self.value!r})"


class BinOp(Series):
    """An element-wise operation of two series at the same bar (no state, no warm-up)."""

    def __init__(self, op: str, left: Series, right: Series) -> None:
        super().__init__()
        self.op, self.left, self.right = op, left, right

    def inputs(self) -> tuple[Series, ...]:
        return (self.left, self.right)

    def __repr__(self) -> str:
        return f"({self.left!r} {self.op} {self.right!r})"


class _Window(Series):
    """A rolling window over the last ``window`` values of one input."""

    mode = ""
    extra = 0  # ring slots beyond the window (ROC/Momentum read the value `window` bars back)

    def __init__(self, input: Input = "close", window: int = 20, *, ddof: int = 0) -> None:
        super().__init__()
        self.input = _input(input, f"{type(self).__name__} input")
        self.window = _window(window, f"{type(self).__name__} window")
        self.ddof = _window(ddof, f"{type(self).__name__} ddof", minimum=0)
        if self.mode in ("std", "zscore") and self.ddof >= self.window:
            raise IndicatorError(f"{type(self).__name__} ddof must be < window, "
                                 f"got ddof={ddof} with window={window}")

    def inputs(self) -> tuple[Series, ...]:
        return (self.input,)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.input!r}, {self.window})"


class SMA(_Window):
    """Simple moving average: the mean of the last ``window`` values.

    As backtrader's ``SMA``: the first value is at the ``window``-th bar (NaN
    before). Kept as a compensated (Neumaier) running sum of the window, so
    ``O(1)`` per bar; the float operations are fixed by the data (the same
    whatever the chunking of a streamed run), and the value stays within
    1e-15 relative of the exact window mean (see ``docs/indicators.md``).
    """

    mode = "mean"


class Sum(_Window):
    """Sum of the last ``window`` values (backtrader's ``SumN``), NaN for ``window - 1`` bars.

    A compensated running sum, as :class:`SMA`.
    """

    mode = "sum"


class Highest(_Window):
    """Highest of the last ``window`` values (backtrader's ``Highest``/``MaxN``)."""

    mode = "max"


class Lowest(_Window):
    """Lowest of the last ``window`` values (backtrader's ``Lowest``/``MinN``)."""

    mode = "min"


Max = Highest
Min = Lowest


class StdDev(_Window):
    """Rolling standard deviation of the last ``window`` values.

    ``sqrt(sum((x - mean)**2) / (window - ddof))``, two-pass over the window.
    ``ddof=0`` (default) is the population deviation, as backtrader's
    ``StdDev``; ``ddof=1`` the sample deviation. Exactly 0.0 on a constant
    window.
    """

    mode = "std"


class ZScore(_Window):
    """``(x - mean) / std`` over the last ``window`` values (``ddof`` as :class:`StdDev`).

    NaN on a constant window (std 0).
    """

    mode = "zscore"


class ROC(_Window):
    """Rate of change: ``(x - x[window bars back]) / x[window bars back]``.

    backtrader's ``ROC`` (``RateOfChange``): the first value is at bar
    ``window + 1``.
    """

    mode = "roc"
    extra = 1


class Momentum(_Window):
    """``x - x[window bars back]`` (backtrader's ``Momentum``); first value at bar ``window + 1``.
    """

    mode = "momentum"
    extra = 1


class EMA(Series):
    """Exponential moving average, ``alpha = 2 / (window + 1)``, as backtrader's ``EMA``.

    Seeded with the mean of the first ``window`` values (the first value is
    at the ``window``-th bar), then ``ema = ema_prev * (1 - alpha) + x * alpha``.
    """

    def __init__(self, input: Input = "close", window: int = 30) -> None:
        super().__init__()
        self.input = _input(input, "EMA input")
        self.window = _window(window, "EMA window")
        self.alpha = 2.0 / (self.window + 1.0)

    def inputs(self) -> tuple[Series, ...]:
        return (self.input,)

    def __repr__(self) -> str:
        return f"EMA({self.input!r}, {self.window})"


class RSI(Series):
    """Relative strength index with Wilder's smoothing, as backtrader's ``RSI``.

    Up and down moves of consecutive values are averaged with Wilder's
    smoothing (``alpha = 1 / window``), each seeded with the mean of its first
    ``window`` moves, so the first value is at bar ``window + 1``.
    ``RSI = 100 - 100 / (1 + up / down)``, computed as ``100 * up / (up +
    down)``; 100 when ``down`` is 0 and ``up`` is not, 50 when both are 0
    (backtrader's ``safediv`` values).
    """

    def __init__(self, input: Input = "close", window: int = 14) -> None:
        super().__init__()
        self.input = _input(input, "RSI input")
        self.window = _window(window, "RSI window")

    def inputs(self) -> tuple[Series, ...]:
        return (self.input,)

    def __repr__(self) -> str:
        return f"RSI({self.input!r}, {self.window})"


class ATR(Series):
    """Average true range with Wilder's smoothing, as backtrader's ``ATR``.

    ``TR = max(high, previous close) - min(low, previous close)`` from the
    second bar on; the average is seeded with the mean of the first
    ``window`` true ranges, so the first value is at bar ``window + 1``.
    """

    def __init__(self, window: int = 14, *, high: Input = "high", low: Input = "low",
                 close: Input = "close") -> None:
        super().__init__()
        self.window = _window(window, "ATR window")
        self.high = _input(high, "ATR high")
        self.low = _input(low, "ATR low")
        self.close = _input(close, "ATR close")

    def inputs(self) -> tuple[Series, ...]:
        return (self.high, self.low, self.close)

    def __repr__(self) -> str:
        return f"ATR({self.window})"


class CrossOver(Series):
    """+1 when ``a`` crosses above ``b``, -1 when it crosses below, 0 otherwise.

    backtrader's ``CrossOver``: the last non-zero difference ``a - b`` seen
    before the bar is compared with the bar's own ``a`` and ``b``, so a touch
    followed by a cross counts once, at the cross. The first value is one bar
    after both inputs have values.
    """

    def __init__(self, a: Input, b: Input) -> None:
        super().__init__()
        self.a = _input(a, "CrossOver first input")
        if isinstance(b, numbers.Real) and not isinstance(b, bool):
            self.b: Series = Const(_number(b, "CrossOver level"))
        else:
            self.b = _input(b, "CrossOver second input")

    def inputs(self) -> tuple[Series, ...]:
        return (self.a, self.b)

    def __repr__(self) -> str:
        return f"CrossOver({self.a!r}, {self.b!r})"


class Bollinger(Series):
    """Bollinger bands: ``mid = SMA(window)``, ``upper/lower = mid +- k * StdDev(window)``.

    backtrader's ``BollingerBands`` (population deviation). Declared under a
    name ``bb``, its bands are read as ``bb.mid``, ``bb.upper`` and
    ``bb.lower``; as an input to another series it is its middle band. The
    attributes ``mid``, ``upper`` and ``lower`` are series too.
    """

    def __init__(self, input: Input = "close", window: int = 20, k: float = 2.0) -> None:
        super().__init__()
        self.k = _number(k, "Bollinger k")
        self.mid = SMA(input, window)
        std = StdDev(self.mid.input, window)
        dev = BinOp("*", Const(self.k), std)
        self.upper = BinOp("+", self.mid, dev)
        self.lower = BinOp("-", self.mid, dev)
        self.window = self.mid.window

    def inputs(self) -> tuple[Series, ...]:
        return (self.mid, self.upper, self.lower)

    def outputs(self) -> tuple[tuple[str, Series], ...]:
        return (("mid", self.mid), ("upper", self.upper), ("lower", self.lower))

    def resolved(self) -> Series:
        return self.mid

    def __repr__(self) -> str:
        return f"Bollinger({self.mid.input!r}, {self.window}, k={self.k})"


class Custom(Series):
    """A user-defined indicator: ``fn`` maps whole per-asset columns to one column.

    ``fn(*columns)`` receives one float64 array per input, the asset's values
    in time order, and returns a float64 array of the same length. It must be
    causal: before the first bar it is called on a synthetic sample and on
    the run's first asset, and ``fn(x[:k])`` must equal ``fn(x)[:k]`` (NaN
    where NaN) for several ``k``; a function that looks ahead is refused
    (:class:`~mlbacktest.errors.IndicatorError` naming it and the first index
    that differs).

    Parameters
    ----------
    fn : callable
        ``fn(*columns) -> ndarray``.
    *inputs : str or Series
        Its inputs (default: ``"close"``).
    lookback : int, optional
        How many bars the value at a bar depends on (the bar included). A
        streamed run needs it, and ``BacktestConfig.history_window >=
        lookback``: each window's values are computed from the rows carried
        from the previous window. Checked on the sample:
        ``fn(x[k - lookback + 1 : k + 1])[-1] == fn(x)[k]``.
    name : str, optional
        A label for messages (default: the function's name).
    """

    def __init__(self, fn: Callable[..., Any], *inputs: Input, lookback: int | None = None,
                 name: str | None = None) -> None:
        super().__init__()
        if not callable(fn):
            raise IndicatorError(f"Custom needs a callable, got {type(fn).__name__} {fn!r}")
        self.fn = fn
        self.label = name if name is not None else getattr(fn, "__qualname__", repr(fn))
        ins = inputs or ("close",)
        self.ins = tuple(_input(x, f"Custom {self.label!r} input") for x in ins)
        self.lookback = None if lookback is None else _window(lookback,
                                                              f"Custom {self.label!r} lookback")

    def inputs(self) -> tuple[Series, ...]:
        return self.ins

    def __repr__(self) -> str:
        return f"Custom({self.label})"
