"""``bt.ind`` / ``bt.indicators``: backtrader's indicators as lines of :mod:`mlbacktest.indicators`.

Each indicator is declared in the strategy's ``__init__`` on a data feed or
a line of one, and becomes a declaration of the compiled indicator layer
(``SMA``, ``EMA``, ``RSI``, ``ATR``, ``StdDev``, ``Highest``, ``Lowest``,
``Sum``, ``ROC``, ``Momentum``, ``CrossOver`` and arithmetic of them),
computed over each asset's whole column before the first bar; the value at
a bar uses the bars up to that bar only. ``[0]`` reads the current bar,
``[-n]`` n bars back.
"""

from __future__ import annotations

from typing import Any

from mlbacktest import indicators as _ind
from mlbacktest.errors import PortingError

from ._lines import CrossLine, Line, _LinesOf, cross_indicator_error

__all__ = [
    "SMA", "SimpleMovingAverage", "MovingAverageSimple", "EMA", "ExponentialMovingAverage",
    "MovingAverageExponential", "WMA", "WeightedMovingAverage", "MovingAverageWeighted",
    "RSI", "RelativeStrengthIndex", "ATR", "AverageTrueRange", "BollingerBands", "BBands",
    "MACD", "MACDHisto", "Stochastic", "StochasticSlow", "CrossOver", "CrossUp", "CrossDown",
    "Highest", "MaxN", "Lowest", "MinN", "StdDev", "StandardDeviation", "ROC", "RateOfChange",
    "Momentum", "SumN",
]


def _runner() -> Any:
    from ._core import current_runner

    return current_runner("a bt.ind indicator")


def _as_line(x: Any, runner: Any) -> Line:
    if isinstance(x, CrossLine):
        raise cross_indicator_error()
    if isinstance(x, Line):
        return x
    if isinstance(x, MultiLine):
        return x.lines[0]
    if hasattr(x, "_bt_lines"):  # a data feed: its close
        return x.close  # type: ignore[no-any-return]
    raise PortingError(f"an indicator input must be a data feed or a line, got "
                       f"{type(x).__name__} {x!r}")


def _inputs(args: tuple[Any, ...], n: int, name: str) -> list[Line]:
    runner = _runner()
    if len(args) > n:
        raise PortingError(f"bt.ind.{name} takes {n} input(s), got {len(args)}")
    if not args:
        return [_as_line(runner.strategy_data0(), runner)] * n if n == 1 else []
    return [_as_line(a, runner) for a in args]


def _data_of(args: tuple[Any, ...], name: str) -> Any:
    """The data feed of an indicator that reads several fields (ATR, Stochastic)."""
    runner = _runner()
    if not args:
        return runner.strategy_data0()
    if len(args) > 1 or not hasattr(args[0], "_bt_lines"):
        raise PortingError(f"bt.ind.{name} reads high, low and close: give it a data feed "
                           f"(self.data), got {args!r}")
    return args[0]


def _new(spec: _ind.Series, like: Line, alias: str | None = None) -> Line:
    line = Line(spec, like._asset, like._clock, like._owner)
    line._alias = alias
    return line


def _period(kwargs: dict[str, Any], name: str, default: int | None, key: str = "period") -> int:
    p = kwargs.pop(key, default)
    if p is None:
        raise PortingError(f"bt.ind.{name} needs {key}=")
    return int(p)


def _done(kwargs: dict[str, Any], name: str) -> None:
    if kwargs:
        raise PortingError(
            f"bt.ind.{name} parameter(s) {sorted(kwargs)} are not supported by "
            "mlbacktest.compat.backtrader (docs/porting/backtrader.md lists the supported "
            "indicators and parameters); natively, build the series with mlbacktest.indicators")


def _mop(name: str) -> Any:
    def method(self: MultiLine, other: Any) -> Any:
        if isinstance(other, MultiLine):
            other = other._lines[0]
        return getattr(self._lines[0], name)(other)
    return method


class MultiLine:
    """An indicator with several lines (``macd.macd``, ``bb.top``): ``[i]`` reads its first line."""

    def __init__(self, names: tuple[str, ...], lines: list[Line]) -> None:
        self._names = names
        self._lines = lines
        self.lines = _LinesOf(lines, dict(zip(names, lines, strict=True)))
        for n, line in zip(names, lines, strict=True):
            setattr(self, n, line)

    def __getitem__(self, ago: int) -> float:
        return self._lines[0][ago]

    def __len__(self) -> int:
        return len(self._lines[0])

    def __getattr__(self, name: str) -> Any:
        # operators and reads on the first line (backtrader's default line)
        return getattr(self._lines[0], name)

    def __bool__(self) -> bool:
        return bool(self._lines[0])

    __add__ = _mop("__add__")
    __sub__ = _mop("__sub__")
    __mul__ = _mop("__mul__")
    __truediv__ = _mop("__truediv__")
    __radd__ = _mop("__radd__")
    __rsub__ = _mop("__rsub__")
    __rmul__ = _mop("__rmul__")
    __rtruediv__ = _mop("__rtruediv__")
    __lt__ = _mop("__lt__")
    __le__ = _mop("__le__")
    __gt__ = _mop("__gt__")
    __ge__ = _mop("__ge__")
    __hash__ = object.__hash__


# ---------------------------------------------------------------- single-line
def SMA(*args: Any, **kwargs: Any) -> Line:  # noqa: N802
    """Simple moving average (``period=30``): ``mlbacktest.indicators.SMA``."""
    (x,) = _inputs(args, 1, "SMA")
    p = _period(kwargs, "SMA", 30)
    _done(kwargs, "SMA")
    return _new(_ind.SMA(x._spec, p), x, "sma")


def EMA(*args: Any, **kwargs: Any) -> Line:  # noqa: N802
    """Exponential moving average seeded with the SMA (``period=30``): ``indicators.EMA``."""
    (x,) = _inputs(args, 1, "EMA")
    p = _period(kwargs, "EMA", 30)
    _done(kwargs, "EMA")
    return _new(_ind.EMA(x._spec, p), x, "ema")


def WMA(*args: Any, **kwargs: Any) -> Line:  # noqa: N802
    """Weighted moving average (``period=30``): ``indicators.WMA``."""
    (x,) = _inputs(args, 1, "WMA")
    p = _period(kwargs, "WMA", 30)
    _done(kwargs, "WMA")
    return _new(_ind.WMA(x._spec, p), x, "wma")


def RSI(*args: Any, **kwargs: Any) -> Line:  # noqa: N802
    """Wilder's RSI (``period=14``): ``indicators.RSI``."""
    (x,) = _inputs(args, 1, "RSI")
    p = _period(kwargs, "RSI", 14)
    _done(kwargs, "RSI")
    return _new(_ind.RSI(x._spec, p), x, "rsi")


def ATR(*args: Any, **kwargs: Any) -> Line:  # noqa: N802
    """Average true range, Wilder smoothing (``period=14``): ``indicators.ATR``."""
    d = _data_of(args, "ATR")
    p = _period(kwargs, "ATR", 14)
    _done(kwargs, "ATR")
    c = d.close
    return _new(_ind.ATR(p, high=d.high._spec, low=d.low._spec, close=c._spec), c, "atr")


def StdDev(*args: Any, **kwargs: Any) -> Line:  # noqa: N802
    """Population standard deviation (``period=20``): ``indicators.StdDev``."""
    (x,) = _inputs(args, 1, "StdDev")
    p = _period(kwargs, "StdDev", 20)
    _done(kwargs, "StdDev")
    return _new(_ind.StdDev(x._spec, p), x, "stddev")


def Highest(*args: Any, **kwargs: Any) -> Line:  # noqa: N802
    """Highest value of the last ``period`` bars: ``indicators.Highest``."""
    (x,) = _inputs(args, 1, "Highest")
    p = _period(kwargs, "Highest", None)
    _done(kwargs, "Highest")
    return _new(_ind.Highest(x._spec, p), x, "highest")


def Lowest(*args: Any, **kwargs: Any) -> Line:  # noqa: N802
    """Lowest value of the last ``period`` bars: ``indicators.Lowest``."""
    (x,) = _inputs(args, 1, "Lowest")
    p = _period(kwargs, "Lowest", None)
    _done(kwargs, "Lowest")
    return _new(_ind.Lowest(x._spec, p), x, "lowest")


def SumN(*args: Any, **kwargs: Any) -> Line:  # noqa: N802
    """Sum of the last ``period`` values: ``indicators.Sum``."""
    (x,) = _inputs(args, 1, "SumN")
    p = _period(kwargs, "SumN", None)
    _done(kwargs, "SumN")
    return _new(_ind.Sum(x._spec, p), x, "sumn")


def ROC(*args: Any, **kwargs: Any) -> Line:  # noqa: N802
    """Rate of change over ``period`` bars (``period=12``): ``indicators.ROC``."""
    (x,) = _inputs(args, 1, "ROC")
    p = _period(kwargs, "ROC", 12)
    _done(kwargs, "ROC")
    return _new(_ind.ROC(x._spec, p), x, "roc")


def Momentum(*args: Any, **kwargs: Any) -> Line:  # noqa: N802
    """``x - x[-period]`` (``period=12``): ``indicators.Momentum``."""
    (x,) = _inputs(args, 1, "Momentum")
    p = _period(kwargs, "Momentum", 12)
    _done(kwargs, "Momentum")
    return _new(_ind.Momentum(x._spec, p), x, "momentum")


def CrossOver(*args: Any, **kwargs: Any) -> Line:  # noqa: N802
    """+1 / -1 when the first line crosses above / below the second: ``indicators.CrossOver``."""
    _done(kwargs, "CrossOver")
    a, b = _two(args, "CrossOver")
    return _new(_ind.CrossOver(a._spec, b if isinstance(b, float) else b._spec), a, "crossover")


def _two(args: tuple[Any, ...], name: str) -> tuple[Line, Any]:
    runner = _runner()
    if len(args) != 2:
        raise PortingError(f"bt.ind.{name} takes two inputs (lines or data feeds), got "
                           f"{len(args)}")
    a = _as_line(args[0], runner)
    if isinstance(args[1], (int, float)) and not isinstance(args[1], bool):
        return a, float(args[1])
    b = _as_line(args[1], runner)
    if b._asset != a._asset:
        raise PortingError(
            f"bt.ind.{name} of lines of two data feeds is not supported: indicators are "
            "computed per data feed. Compare the two lines instead (self.data0.close > "
            "self.data1.close is a line when the feeds have their bars at the same times), "
            f"or natively, compute the {name} of a spread column before the run")
    return a, b


def _cross(args: tuple[Any, ...], kwargs: dict[str, Any], name: str, up: bool) -> Line:
    _done(kwargs, name)
    a, b = _two(args, name)
    make = _ind.CrossUp if up else _ind.CrossDown
    return _new(make(a._spec, b if isinstance(b, float) else b._spec), a, "cross")


def CrossUp(*args: Any, **kwargs: Any) -> Line:  # noqa: N802
    """1 when ``a[-1] < b[-1]`` and ``a > b``, else 0 (backtrader's strict ``CrossUp``)."""
    return _cross(args, kwargs, "CrossUp", True)


def CrossDown(*args: Any, **kwargs: Any) -> Line:  # noqa: N802
    """1 when ``a[-1] > b[-1]`` and ``a < b``, else 0 (backtrader's strict ``CrossDown``)."""
    return _cross(args, kwargs, "CrossDown", False)


# ---------------------------------------------------------------- several lines
def BollingerBands(*args: Any, **kwargs: Any) -> MultiLine:  # noqa: N802
    """Bollinger bands (``period=20, devfactor=2.0``): lines ``mid``, ``top``, ``bot``."""
    (x,) = _inputs(args, 1, "BollingerBands")
    p = _period(kwargs, "BollingerBands", 20)
    k = float(kwargs.pop("devfactor", 2.0))
    _done(kwargs, "BollingerBands")
    mid = _ind.SMA(x._spec, p)
    dev = _ind.StdDev(x._spec, p)
    return MultiLine(("mid", "top", "bot"),
                     [_new(mid, x), _new(mid + k * dev, x), _new(mid - k * dev, x)])


def MACD(*args: Any, **kwargs: Any) -> MultiLine:  # noqa: N802
    """MACD (``period_me1=12, period_me2=26, period_signal=9``): lines ``macd``, ``signal``."""
    (x,) = _inputs(args, 1, "MACD")
    p1 = _period(kwargs, "MACD", 12, "period_me1")
    p2 = _period(kwargs, "MACD", 26, "period_me2")
    ps = _period(kwargs, "MACD", 9, "period_signal")
    _done(kwargs, "MACD")
    macd, signal = _ind.MACD(x._spec, p1, p2, ps)
    return MultiLine(("macd", "signal"), [_new(macd, x), _new(signal, x)])


def MACDHisto(*args: Any, **kwargs: Any) -> MultiLine:  # noqa: N802
    """:func:`MACD` with a third line ``histo = macd - signal``."""
    m = MACD(*args, **kwargs)
    macd, signal = m.lines[0], m.lines[1]
    return MultiLine(("macd", "signal", "histo"), [macd, signal, macd - signal])


def Stochastic(*args: Any, **kwargs: Any) -> MultiLine:  # noqa: N802
    """Slow stochastic (``period=14, period_dfast=3, period_dslow=3``): ``percK``, ``percD``."""
    d = _data_of(args, "Stochastic")
    p = _period(kwargs, "Stochastic", 14)
    pf = _period(kwargs, "Stochastic", 3, "period_dfast")
    ps = _period(kwargs, "Stochastic", 3, "period_dslow")
    _done(kwargs, "Stochastic")
    c = d.close
    perc_k, perc_d = _ind.Stochastic(p, pf, ps, high=d.high._spec, low=d.low._spec,
                                     close=c._spec)
    return MultiLine(("percK", "percD"), [_new(perc_k, c), _new(perc_d, c)])


SimpleMovingAverage = MovingAverageSimple = SMA
ExponentialMovingAverage = MovingAverageExponential = EMA
WeightedMovingAverage = MovingAverageWeighted = WMA
RelativeStrengthIndex = RSI
AverageTrueRange = ATR
BBands = BollingerBands
StochasticSlow = Stochastic
MaxN = Highest
MinN = Lowest
StandardDeviation = StdDev
RateOfChange = ROC


def __getattr__(name: str) -> Any:
    if name.startswith("__"):
        raise AttributeError(name)
    raise PortingError(
        f"bt.ind.{name} is not supported by mlbacktest.compat.backtrader; supported: "
        f"{', '.join(__all__)}. Natively, write it with mlbacktest.indicators "
        "(arithmetic of series, or Custom(fn, ...)) and read it with event.indicators[name]")
