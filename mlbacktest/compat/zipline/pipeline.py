"""zipline's ``zipline.pipeline`` subset: a ``Pipeline`` of built-in factors, computed causally.

Supported: ``Pipeline(columns=..., screen=...)`` (``add``, ``set_screen``);
``EquityPricing`` / ``USEquityPricing`` columns ``open``, ``high``, ``low``,
``close``, ``volume`` and their ``.latest``; the factors ``Returns``,
``SimpleMovingAverage``, ``RSI``, ``AverageDollarVolume``; factor arithmetic
with numbers and other factors; ``rank`` (ordinal), ``top``, ``bottom``,
comparisons, and filters combined with ``&``, ``|``, ``~``, all with
``mask=``. The same names are found under ``zipline.pipeline.factors``,
``.data`` and ``.filters`` once :func:`mlbacktest.compat.zipline.install` is in
effect.

A pipeline's output for session *D* is computed from the bars of the sessions
before *D* only (the window of a factor of length *n* is the *n* sessions
ending at *D - 1*), as zipline does, from the run's own bars
(``Strategy.history_panel``): nothing of session *D* can leak into it. Its rows
are the assets listed on *D* (first bar <= *D* <= last bar) that pass the
screen, in sid order.

Every other name of ``zipline.pipeline`` raises
:class:`~mlbacktest.errors.PortingError` when it is looked up.
"""

from __future__ import annotations

import operator
import warnings
from collections.abc import Callable
from typing import Any

import numpy as np

from mlbacktest.errors import PortingError

__all__ = ["Pipeline", "EquityPricing", "USEquityPricing", "Factor", "Filter", "Returns",
           "SimpleMovingAverage", "RSI", "AverageDollarVolume"]


class PipelineContext:
    """Windows of bar columns for one session: all assets, the sessions before it."""

    def __init__(self, history: Callable[[str, int], np.ndarray], exists: np.ndarray,
                 session: str) -> None:
        self._history = history
        self.exists = exists
        self.session = session
        self._cache: dict[tuple[str, int], np.ndarray] = {}

    def window(self, column: str, n: int) -> np.ndarray:
        """The last ``n`` sessions of ``column`` before this session (rows) x assets."""
        key = (column, n)
        out = self._cache.get(key)
        if out is None:
            out = self._history(column, n)
            if out.shape[0] < n:
                raise ValueError(
                    f"a pipeline term needs {n} sessions of {column!r} before {self.session}, "
                    f"and the data has {out.shape[0]} (zipline raises "
                    "NoFurtherDataError): give run_algorithm data that starts earlier")
            self._cache[key] = out
        return out


class Term:
    """A node of a pipeline: evaluated to one value per asset for a session."""

    def evaluate(self, ctx: PipelineContext) -> np.ndarray:
        raise NotImplementedError


def _term(value: Any) -> Term:
    if isinstance(value, Term):
        return value
    if isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, bool):
        return _Constant(float(value))
    raise PortingError(f"pipeline expressions combine factors and numbers, got {value!r}")


def _mask_of(mask: Any, ctx: PipelineContext) -> np.ndarray:
    exists = ctx.exists
    if mask is None:
        return exists
    if not isinstance(mask, Filter):
        raise TypeError(f"mask must be a Filter, got {mask!r}")
    return exists & mask.evaluate(ctx)


class Factor(Term):
    """A numerical term: arithmetic, comparisons, ``rank``, ``top``, ``bottom``."""

    def _binary(self, other: Any, op: Callable[[Any, Any], Any], reflected: bool = False) \
            -> Factor:
        return _Arithmetic(_term(other), self, op) if reflected else \
            _Arithmetic(self, _term(other), op)

    def __add__(self, other: Any) -> Factor:
        return self._binary(other, operator.add)

    def __radd__(self, other: Any) -> Factor:
        return self._binary(other, operator.add, True)

    def __sub__(self, other: Any) -> Factor:
        return self._binary(other, operator.sub)

    def __rsub__(self, other: Any) -> Factor:
        return self._binary(other, operator.sub, True)

    def __mul__(self, other: Any) -> Factor:
        return self._binary(other, operator.mul)

    def __rmul__(self, other: Any) -> Factor:
        return self._binary(other, operator.mul, True)

    def __truediv__(self, other: Any) -> Factor:
        return self._binary(other, operator.truediv)

    def __rtruediv__(self, other: Any) -> Factor:
        return self._binary(other, operator.truediv, True)

    def __neg__(self) -> Factor:
        return _Arithmetic(_Constant(0.0), self, operator.sub)

    def __gt__(self, other: Any) -> Filter:  # type: ignore[override]
        return _Compare(self, _term(other), operator.gt)

    def __ge__(self, other: Any) -> Filter:  # type: ignore[override]
        return _Compare(self, _term(other), operator.ge)

    def __lt__(self, other: Any) -> Filter:  # type: ignore[override]
        return _Compare(self, _term(other), operator.lt)

    def __le__(self, other: Any) -> Filter:  # type: ignore[override]
        return _Compare(self, _term(other), operator.le)

    def rank(self, method: str = "ordinal", ascending: bool = True, mask: Any = None,
             groupby: Any = None) -> Factor:
        """Ordinal rank among the assets (1 = smallest; NaN outside ``mask`` or for NaN)."""
        if method != "ordinal":
            raise PortingError(f"Factor.rank(method={method!r}): only 'ordinal' (zipline's "
                               "default) is translated; rank natively with numpy/polars")
        if groupby is not None:
            raise PortingError("Factor.rank(groupby=...) is not supported by the zipline shim: "
                               "rank within groups natively with polars (over(...))")
        return _Rank(self, ascending, mask)

    def top(self, N: int, mask: Any = None, groupby: Any = None) -> Filter:  # noqa: N803
        """The ``N`` assets with the largest values."""
        if N == 1:
            return _Extreme(self, mask, largest=True)
        return self.rank(ascending=False, mask=mask, groupby=groupby) <= N

    def bottom(self, N: int, mask: Any = None, groupby: Any = None) -> Filter:  # noqa: N803
        """The ``N`` assets with the smallest values."""
        if N == 1:
            return _Extreme(self, mask, largest=False)
        return self.rank(ascending=True, mask=mask, groupby=groupby) <= N

    def __getattr__(self, name: str) -> Any:
        if name.startswith("_"):
            raise AttributeError(name)
        raise PortingError(f"Factor.{name} is not supported by the zipline shim: compute it "
                           "natively over the panel with polars and pass it as a signal column")


class Filter(Term):
    """A boolean term: ``&``, ``|``, ``~``."""

    def __and__(self, other: Filter) -> Filter:
        return _Logic(self, other, np.logical_and)

    def __or__(self, other: Filter) -> Filter:
        return _Logic(self, other, np.logical_or)

    def __invert__(self) -> Filter:
        return _Not(self)


class _Constant(Factor):
    def __init__(self, value: float) -> None:
        self.value = value

    def evaluate(self, ctx: PipelineContext) -> np.ndarray:
        return np.full(ctx.exists.size, self.value)


class _Arithmetic(Factor):
    def __init__(self, left: Term, right: Term, op: Callable[[Any, Any], Any]) -> None:
        self.left, self.right, self.op = left, right, op

    def evaluate(self, ctx: PipelineContext) -> np.ndarray:
        with np.errstate(divide="ignore", invalid="ignore"):
            return np.asarray(self.op(self.left.evaluate(ctx), self.right.evaluate(ctx)),
                              dtype=float)


class _Compare(Filter):
    def __init__(self, left: Term, right: Term, op: Callable[[Any, Any], Any]) -> None:
        self.left, self.right, self.op = left, right, op

    def evaluate(self, ctx: PipelineContext) -> np.ndarray:
        with np.errstate(invalid="ignore"):
            return np.asarray(self.op(self.left.evaluate(ctx), self.right.evaluate(ctx)),
                              dtype=bool)


class _Logic(Filter):
    def __init__(self, left: Filter, right: Filter, op: Callable[..., Any]) -> None:
        if not isinstance(left, Filter) or not isinstance(right, Filter):
            raise TypeError("& and | combine filters")
        self.left, self.right, self.op = left, right, op

    def evaluate(self, ctx: PipelineContext) -> np.ndarray:
        return np.asarray(self.op(self.left.evaluate(ctx), self.right.evaluate(ctx)))


class _Not(Filter):
    def __init__(self, inner: Filter) -> None:
        self.inner = inner

    def evaluate(self, ctx: PipelineContext) -> np.ndarray:
        return ~self.inner.evaluate(ctx)


class _Rank(Factor):
    def __init__(self, factor: Factor, ascending: bool, mask: Any) -> None:
        self.factor, self.ascending, self.mask = factor, ascending, mask

    def evaluate(self, ctx: PipelineContext) -> np.ndarray:
        # zipline's masked_rankdata_2d with method="ordinal", row by row
        data = self.factor.evaluate(ctx).astype(float).copy()
        missing = ~_mask_of(self.mask, ctx) | np.isnan(data)
        data[missing] = np.nan
        if not self.ascending:
            data = -data
        order = np.argsort(data, kind="mergesort")
        out = np.empty(data.size)
        out[order] = np.arange(1, data.size + 1, dtype=float)
        out[missing] = np.nan
        return out


class _Extreme(Filter):
    """``top(1)`` / ``bottom(1)``: zipline's maximum / minimum filter (first of ties)."""

    def __init__(self, factor: Factor, mask: Any, largest: bool) -> None:
        self.factor, self.mask, self.largest = factor, mask, largest

    def evaluate(self, ctx: PipelineContext) -> np.ndarray:
        data = self.factor.evaluate(ctx).astype(float)
        ok = _mask_of(self.mask, ctx) & ~np.isnan(data)
        out = np.zeros(data.size, dtype=bool)
        if ok.any():
            masked = np.where(ok, data, -np.inf if self.largest else np.inf)
            out[int(np.argmax(masked) if self.largest else np.argmin(masked))] = True
        return out


class BoundColumn:
    """A bar column of ``EquityPricing``; ``.latest`` is its value at the previous session."""

    def __init__(self, name: str) -> None:
        self.name = name

    @property
    def latest(self) -> Factor:
        """The column's value at the last session before the one computed."""
        return _Latest(self)

    def __repr__(self) -> str:
        return f"EquityPricing.{self.name}"


class EquityPricing:
    """zipline's daily bar columns."""

    open = BoundColumn("open")
    high = BoundColumn("high")
    low = BoundColumn("low")
    close = BoundColumn("close")
    volume = BoundColumn("volume")


USEquityPricing = EquityPricing


class _Latest(Factor):
    def __init__(self, column: BoundColumn) -> None:
        self.column = column

    def evaluate(self, ctx: PipelineContext) -> np.ndarray:
        return ctx.window(self.column.name, 1)[-1].copy()


class _WindowFactor(Factor):
    """A built-in factor over a window of input columns."""

    window_length = 0
    inputs: tuple[BoundColumn, ...] = ()

    def __init__(self, inputs: Any = None, window_length: int | None = None,
                 mask: Any = None) -> None:
        if inputs is not None:
            cols = tuple(inputs)
            if not all(isinstance(c, BoundColumn) for c in cols):
                raise PortingError(f"{type(self).__name__}(inputs={inputs!r}): inputs are "
                                   "EquityPricing columns in the zipline shim")
            self.inputs = cols
        if window_length is not None:
            self.window_length = int(window_length)
        if not self.inputs or self.window_length < 1:
            raise ValueError(f"{type(self).__name__} needs inputs and a window_length >= 1")
        self.mask = mask

    def evaluate(self, ctx: PipelineContext) -> np.ndarray:
        windows = [ctx.window(c.name, self.window_length) for c in self.inputs]
        with warnings.catch_warnings(), np.errstate(divide="ignore", invalid="ignore"):
            warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN columns, as zipline
            out = np.asarray(self.compute(*windows), dtype=float)
        if self.mask is not None:
            out = np.where(_mask_of(self.mask, ctx), out, np.nan)
        return out

    def compute(self, *windows: np.ndarray) -> np.ndarray:
        raise NotImplementedError


class Returns(_WindowFactor):
    """``(close[-1] - close[0]) / close[0]`` over the window (zipline's formula)."""

    inputs = (EquityPricing.close,)

    def compute(self, close: np.ndarray) -> np.ndarray:  # type: ignore[override]
        return (close[-1] - close[0]) / close[0]


class SimpleMovingAverage(_WindowFactor):
    """The NaN-ignoring mean of the input over the window."""

    def compute(self, data: np.ndarray) -> np.ndarray:  # type: ignore[override]
        return np.nanmean(data, axis=0)


class RSI(_WindowFactor):
    """Relative strength index over 15 sessions (zipline's formula)."""

    window_length = 15
    inputs = (EquityPricing.close,)

    def compute(self, closes: np.ndarray) -> np.ndarray:  # type: ignore[override]
        diffs = np.diff(closes, axis=0)
        ups = np.nanmean(np.clip(diffs, 0, np.inf), axis=0)
        downs = np.abs(np.nanmean(np.clip(diffs, -np.inf, 0), axis=0))
        return 100 - (100 / (1 + (ups / downs)))


class AverageDollarVolume(_WindowFactor):
    """``sum(close * volume) / window_length`` (NaN-ignoring sum, zipline's formula)."""

    inputs = (EquityPricing.close, EquityPricing.volume)

    def compute(self, close: np.ndarray, volume: np.ndarray) -> np.ndarray:  # type: ignore[override]
        return np.nansum(close * volume, axis=0) / len(close)


class Pipeline:
    """Named columns (factors and filters) and an optional screen."""

    def __init__(self, columns: dict[str, Term] | None = None, screen: Filter | None = None,
                 domain: Any = None) -> None:
        self.columns: dict[str, Term] = {}
        for name, term in (columns or {}).items():
            self.add(term, name)
        self.screen: Filter | None = None
        if screen is not None:
            self.set_screen(screen)

    def add(self, term: Term, name: str, overwrite: bool = False) -> None:
        """Add a column."""
        if not isinstance(term, Term):
            raise PortingError(f"pipeline column {name!r} is {term!r}: the zipline shim "
                               "computes the built-in factors and filters only")
        if name in self.columns and not overwrite:
            raise KeyError(f"column {name!r} already exists")
        self.columns[name] = term

    def remove(self, name: str) -> Term:
        """Remove a column and return it."""
        return self.columns.pop(name)

    def set_screen(self, screen: Filter, overwrite: bool = False) -> None:
        """Keep only the assets passing ``screen``."""
        if not isinstance(screen, Filter):
            raise TypeError(f"a screen must be a Filter, got {screen!r}")
        if self.screen is not None and not overwrite:
            raise ValueError("the pipeline has a screen already (overwrite=True replaces it)")
        self.screen = screen

    def evaluate(self, ctx: PipelineContext) -> tuple[np.ndarray, dict[str, np.ndarray]]:
        """The rows (a boolean over assets) and each column's values for the session."""
        rows = ctx.exists.copy()
        if self.screen is not None:
            rows &= self.screen.evaluate(ctx)
        return rows, {name: term.evaluate(ctx) for name, term in self.columns.items()}


def __getattr__(name: str) -> Any:
    if name.startswith("__"):
        raise AttributeError(name)
    raise PortingError(
        f"zipline.pipeline.{name} is not supported by the zipline shim: compute the factors "
        "with polars over the panel (rolling windows ending at each row) and pass them as "
        "signal columns, PolarsDataFeed(frame, signal_columns=[...]); read them in on_slice "
        "with view.signal(name) or Strategy.history_panel(name, n)")
