"""Lines: backtrader's ``data.close``, ``sma`` ... read at the current bar with ``[0]``, ``[-n]``.

A line is a whole per-asset column computed before the first bar (a bar
field of the run, or an indicator of :mod:`mlbacktest.indicators`), read at
the bar the strategy is on. Lines declared in ``__init__`` carry the
indicator declaration; arithmetic and comparisons between them build new
declarations. In ``next`` the same operators compare the current values, as
backtrader does.
"""

from __future__ import annotations

import datetime as _dt
import math
import operator
from collections.abc import Callable
from typing import Any

import numpy as np

from mlbacktest import indicators as ind
from mlbacktest.errors import PortingError

__all__ = ["Line", "CrossLine", "date2num", "num2date"]


def date2num(dt: _dt.datetime | _dt.date) -> float:
    """Days since 0001-01-01 as a float, as backtrader stores ``datetime[0]``.

    Parameters
    ----------
    dt : datetime or date
        A naive (UTC) time.

    Returns
    -------
    float
        backtrader's ``date2num`` value.
    """
    base = float(dt.toordinal())
    if isinstance(dt, _dt.datetime):
        base = math.fsum((base, dt.hour / 24.0, dt.minute / 1440.0, dt.second / 86400.0,
                          dt.microsecond / 86400e6))
    return base


def num2date(x: float) -> _dt.datetime:
    """The naive datetime of backtrader's float day number ``x`` (inverse of :func:`date2num`).

    Parameters
    ----------
    x : float
        Days since 0001-01-01.

    Returns
    -------
    datetime
        Truncated to the microsecond, as backtrader's ``num2date``.
    """
    ix = int(x)
    day = _dt.datetime.fromordinal(ix)
    hour, rest = divmod(24.0 * (float(x) - ix), 1)
    minute, rest = divmod(60.0 * rest, 1)
    second, rest = divmod(60.0 * rest, 1)
    micro = int(1e6 * rest)
    if micro < 10:  # float noise of a whole second (backtrader's rule)
        micro = 0
    out = _dt.datetime(day.year, day.month, day.day, int(hour), int(minute), int(second), micro)
    if micro > 999990:
        out += _dt.timedelta(microseconds=1e6 - micro)
    return out


class Clock:
    """The bar the strategy is on (``k``) and the stage (1: ``__init__``, 2: the run)."""

    __slots__ = ("k", "stage")

    def __init__(self) -> None:
        self.k = -1
        self.stage = 1


def _binary(op: str, fn: Callable[[Any, Any], Any]) -> Callable[[Line, Any], Any]:
    def method(self: Line, other: Any) -> Any:
        if self._clock.stage == 2:
            return fn(self[0], other[0] if isinstance(other, Line) else other)
        return self._combine(op, other, False)

    return method


def _rbinary(op: str, fn: Callable[[Any, Any], Any]) -> Callable[[Line, Any], Any]:
    def method(self: Line, other: Any) -> Any:
        if self._clock.stage == 2:
            return fn(other, self[0])
        return self._combine(op, other, True)

    return method


class Line:
    """One line of one data feed: ``line[0]`` is the current bar's value, ``line[-n]`` n before.

    Parameters
    ----------
    spec : Series
        The declaration computing the line (``Column("close")``, ``SMA(...)``).
    asset : int
        The data feed (asset id) the line belongs to.
    clock : Clock
        The run's bar counter.
    owner : object
        The strategy or runner that resolves the line's values before the first bar.
    """

    __slots__ = ("_spec", "_asset", "_clock", "_vals", "_owner", "_alias", "__weakref__")

    def __init__(self, spec: ind.Series, asset: int, clock: Clock, owner: Any) -> None:
        self._spec = spec
        self._asset = asset
        self._clock = clock
        self._vals: list[float] | None = None
        self._owner = owner
        self._alias: str | None = None
        owner._register_line(self)

    # ------------------------------------------------------------ reads
    def __getitem__(self, ago: int) -> float:
        if ago > 0:
            raise PortingError(
                f"line[{ago}] reads {ago} bar(s) ahead of the current bar (look-ahead); "
                "mlbacktest.compat.backtrader reads [0] and [-n] only. Natively, "
                "Strategy.history(asset, field, n) returns the last n values")
        i = self._clock.k + ago
        if i < 0 or self._vals is None:
            raise IndexError(f"line[{ago}] is before the first bar")
        return self._vals[i]

    def __len__(self) -> int:
        return self._clock.k + 1

    def get(self, ago: int = 0, size: int = 1) -> list[float]:
        """The ``size`` values ending ``ago`` bars back (``[]`` when not enough bars yet)."""
        if ago > 0:
            return self[ago]  # type: ignore[return-value]  # raises PortingError
        end = self._clock.k + ago + 1
        if end - size < 0 or self._vals is None:
            return []
        return self._vals[end - size:end]

    def __call__(self, ago: int = 0) -> Line:
        if ago > 0:
            raise PortingError(
                f"line({ago}) is a line {ago} bar(s) ahead (look-ahead); only line(-n) is "
                "supported")
        if ago == 0:
            return self
        return Line(ind.Delay(self._spec, -ago), self._asset, self._clock, self._owner)

    def __bool__(self) -> bool:
        if self._clock.stage == 2:
            return bool(self[0])
        raise PortingError("the truth value of a line in __init__ is undefined; use it in next")

    def __float__(self) -> float:
        return float(self[0])

    def __repr__(self) -> str:
        return f"<line {self._spec!r} of data {self._asset}>"

    # ------------------------------------------------------------ building lines
    @property
    def lines(self) -> Any:
        """This line's lines (itself, as ``lines[0]`` and under the indicator's line name)."""
        return _LinesOf([self], {self._alias: self} if self._alias else {})

    def __getattr__(self, name: str) -> Line:
        if name == "_alias" or name != getattr(self, "_alias", None):
            raise AttributeError(name)
        return self

    def _combine(self, op: str, other: Any, reflected: bool) -> Line:
        if hasattr(other, "_bt_lines"):  # a data feed stands for its close
            other = other.close
        if isinstance(other, Line):
            if (other._asset != self._asset or isinstance(self, CrossLine)
                    or isinstance(other, CrossLine)):
                return CrossLine(op, self, other, reflected)
            o: Any = other._spec
        elif isinstance(other, (int, float)) and not isinstance(other, bool):
            o = float(other)
            if isinstance(self, CrossLine):
                return CrossLine(op, self, o, reflected)
        else:
            return NotImplemented  # type: ignore[return-value]
        a, b = (o, self._spec) if reflected else (self._spec, o)
        spec = _OPS[op](a, b)
        return Line(spec, self._asset, self._clock, self._owner)

    __add__ = _binary("+", operator.add)
    __sub__ = _binary("-", operator.sub)
    __mul__ = _binary("*", operator.mul)
    __truediv__ = _binary("/", operator.truediv)
    __radd__ = _rbinary("+", operator.add)
    __rsub__ = _rbinary("-", operator.sub)
    __rmul__ = _rbinary("*", operator.mul)
    __rtruediv__ = _rbinary("/", operator.truediv)
    __lt__ = _binary("<", operator.lt)
    __le__ = _binary("<=", operator.le)
    __gt__ = _binary(">", operator.gt)
    __ge__ = _binary(">=", operator.ge)
    __eq__ = _binary("==", operator.eq)  # type: ignore[assignment]
    __ne__ = _binary("!=", operator.ne)  # type: ignore[assignment]
    __hash__ = object.__hash__

    def __neg__(self) -> Any:
        if self._clock.stage == 2:
            return -self[0]
        if isinstance(self, CrossLine):
            return CrossLine("*", self, -1.0, False)
        return Line(-self._spec, self._asset, self._clock, self._owner)


_NP_OPS: dict[str, Callable[[Any, Any], Any]] = {
    "+": np.add, "-": np.subtract, "*": np.multiply, "/": np.divide,
    "<": np.less, "<=": np.less_equal, ">": np.greater, ">=": np.greater_equal,
    "==": np.equal, "!=": np.not_equal,
}


def cross_indicator_error() -> PortingError:
    """The error of an indicator declared over lines of two data feeds."""
    return PortingError(
        "an indicator over an operation between lines of two data feeds (for example "
        "bt.ind.SMA(self.data0.close - self.data1.close)) is not supported: indicators "
        "are computed per data feed. Natively, compute the spread as a signal column "
        "before the run; operations between the feeds' lines (+ - * / and comparisons) "
        "are supported")


class _CrossSpec:
    """The declaration of a line over several data feeds: no indicator can read it."""

    def __init__(self, line: CrossLine) -> None:
        self.line = line

    def __getattr__(self, name: str) -> Any:
        raise cross_indicator_error()

    def __repr__(self) -> str:
        return f"<lines of data feeds {sorted(self.line._assets)}>"


class CrossLine(Line):
    """An operation between lines of different data feeds (``data0.close - data1.close``).

    Computed bar by bar from its operands' values once they are known, as
    backtrader's line operation pairs them: by position, which is by time
    only when the feeds have their bars at the same times (else the run
    raises :class:`PortingError`).
    """

    __slots__ = ("_op", "_a", "_b", "_assets")
    _op: str  # the operator: + - * / < <= > >= == !=
    _assets: frozenset[int]  # the data feeds (asset ids) the operands read

    def __init__(self, op: str, a: Line, b: Line | float, reflected: bool) -> None:
        self._op = op
        self._a: Line | float = b if reflected else a  # the left operand
        self._b: Line | float = a if reflected else b  # the right operand
        assets = set(getattr(a, "_assets", {a._asset}))
        if isinstance(b, Line):
            assets |= set(getattr(b, "_assets", {b._asset}))
        self._assets = frozenset(assets)
        super().__init__(_CrossSpec(self), a._asset, a._clock, a._owner)  # type: ignore[arg-type]

    def _compute(self) -> list[float]:
        """The values, from the operands' (which must have as many bars)."""
        vals: list[Any] = []
        for x in (self._a, self._b):
            if isinstance(x, Line):
                assert x._vals is not None
                vals.append(np.asarray(x._vals, dtype=np.float64))
            else:
                vals.append(np.float64(x))
        with np.errstate(divide="ignore", invalid="ignore"):
            out = _NP_OPS[self._op](vals[0], vals[1])
        return np.asarray(out, dtype=np.float64).tolist()  # type: ignore[no-any-return]

    def __call__(self, ago: int = 0) -> Line:
        if ago == 0:
            return self
        raise PortingError(
            f"line({ago}) of an operation between lines of two data feeds is not supported; "
            "read line[-n] in next instead")

    def __repr__(self) -> str:
        return f"<line {self._op} of data feeds {sorted(self._assets)}>"


_OPS: dict[str, Callable[[Any, Any], Any]] = {
    "+": operator.add, "-": operator.sub, "*": operator.mul, "/": operator.truediv,
    "<": operator.lt, "<=": operator.le, ">": operator.gt, ">=": operator.ge,
    "==": operator.eq, "!=": operator.ne,
}


class _LinesOf:
    """``obj.lines``: ``lines[0]``, ``lines.name``, ``len(lines)``."""

    def __init__(self, seq: list[Line], names: dict[str, Line]) -> None:
        self._seq = seq
        self._names = names

    def __getitem__(self, i: int) -> Line:
        return self._seq[i]

    def __len__(self) -> int:
        return len(self._seq)

    def __getattr__(self, name: str) -> Line:
        try:
            return self._names[name]
        except KeyError:
            raise AttributeError(f"no line {name!r}; lines are {list(self._names)}") from None

    def getlinealiases(self) -> tuple[str, ...]:
        """The names of the lines."""
        return tuple(self._names)
