"""The plan of a run's indicators: names resolved, dependency order, per-asset state.

:class:`IndicatorPlan` is built once per run, before the first bar, from the
strategy's declarations and the run's column names; it refuses bad
declarations there. :meth:`IndicatorPlan.compute` then fills a bar store's
indicator values: all of them for an in-memory run; for each window of a
streamed run, the new rows only, from the per-asset state carried from the
previous window (the carried rows' values are copied), so the values do not
depend on the chunking.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from mlbacktest._events import annotate
from mlbacktest.errors import IndicatorError, did_you_mean
from mlbacktest.indicators import _kernels as K
from mlbacktest.indicators._spec import (
    ATR,
    EMA,
    RSI,
    BinOp,
    Bollinger,
    Column,
    Const,
    CrossOver,
    Custom,
    Series,
    _Window,
)

if TYPE_CHECKING:  # pragma: no cover
    from mlbacktest._events import BarStore

__all__ = ["IndicatorPlan", "check_name"]

BAR_FIELDS = ("open", "high", "low", "close", "volume")
_NO_STATE = np.zeros((0, 0))
#: Length of the synthetic sample a custom indicator is checked on.
SAMPLE_BARS = 96


def check_name(name: Any, taken: Iterable[str], columns: Iterable[str],
               reserved: Iterable[str] = ()) -> str:
    """Refuse an indicator name that is not a plain name, is taken, or shadows a column.

    Parameters
    ----------
    name : object
        The name asked for.
    taken : iterable of str
        Names of the indicators already declared.
    columns : iterable of str
        Bar fields and signal names of the run.
    reserved : iterable of str
        Names of the Strategy API (an attribute of that name would hide a helper).
    """
    if not isinstance(name, str) or not name.isidentifier():
        raise IndicatorError(f"an indicator name must be a Python identifier (str), got {name!r}")
    if name in set(taken):
        raise IndicatorError(f"indicator {name!r} is declared twice")
    if name in set(columns):
        raise IndicatorError(f"indicator name {name!r} shadows a bar field or signal of the run; "
                             "choose another name")
    if name in set(reserved):
        raise IndicatorError(f"indicator name {name!r} is a Strategy helper or hook; an attribute "
                             "of that name would hide it: choose another name")
    return name


def _segments(asset: np.ndarray, ts: np.ndarray, offset: int) -> tuple[np.ndarray, ...]:
    """Rows ``offset + i`` in per-asset time order, and each asset's segment of that order.

    For custom indicators, which take each asset's whole column: a stable
    sort on (asset, timestamp), since rows of one asset may come from several
    feeds. The compiled kernels need no such grouping (see ``_kernels.Rows``).
    """
    order = np.lexsort((ts, asset)).astype(np.int64)
    a = asset[order]
    if a.size:
        cut = np.flatnonzero(a[1:] != a[:-1]) + 1
        starts = np.concatenate(([0], cut, [a.size])).astype(np.int64)
        seg_asset = a[starts[:-1]].astype(np.int32)
    else:
        starts = np.zeros(1, dtype=np.int64)
        seg_asset = np.zeros(0, dtype=np.int32)
    return order + offset, np.ascontiguousarray(seg_asset), starts


def _equal_or_both_nan(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return (a == b) | (np.isnan(a) & np.isnan(b))


#: Relative difference a causality check puts down to rounding, not look-ahead.
ROUNDING = 1e-12


def _rounding(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Where ``a`` and ``b`` (finite) differ by rounding only (relative ``ROUNDING``)."""
    with np.errstate(invalid="ignore", over="ignore"):
        scale = np.maximum(np.abs(a), np.abs(b))
        return np.isfinite(a) & np.isfinite(b) & (np.abs(a - b) <= ROUNDING * scale)


class IndicatorPlan:
    """The declared indicators of one run, ready to compute.

    Parameters
    ----------
    declared : sequence of (str, Series)
        Name and declaration of every indicator, in declaration order.
    signal_names : sequence of str
        The run's signal columns (bar fields are always there).
    n_assets : int
        Number of assets of the run (one row of state each).
    history_window : int
        Rows per asset carried between windows of a streamed run; 0 for an
        in-memory run.

    Raises
    ------
    IndicatorError
        For an unknown input column, a cycle, the same declaration under two
        names, or (streamed runs) a custom indicator without a ``lookback``
        or with one longer than ``history_window``.
    """

    def __init__(self, declared: Sequence[tuple[str, Series]], signal_names: Sequence[str],
                 n_assets: int, history_window: int = 0) -> None:
        self.columns = (*BAR_FIELDS, *signal_names)
        self.n_assets = n_assets
        self.history_window = history_window
        by_name: dict[str, Series] = {}
        seen: dict[int, str] = {}
        for name, spec in declared:
            if not isinstance(spec, Series):
                raise IndicatorError(f"indicator {name!r} must be an indicator declaration "
                                     f"(mlbacktest.indicators), got {type(spec).__name__}")
            if id(spec) in seen:
                raise IndicatorError(f"the same indicator object is declared as both "
                                     f"{seen[id(spec)]!r} and {name!r}; declare it once")
            seen[id(spec)] = name
            by_name[name] = spec
        self._by_name = by_name
        # Named series first (their rows are the ones readers see), in declaration order.
        named: list[tuple[str, Series]] = []
        for name, spec in declared:
            if isinstance(spec, Bollinger):
                named.extend((f"{name}.{out}", s) for out, s in spec.outputs())
            else:
                named.append((name, spec))
        self.names = tuple(n for n, _ in named)
        self.order: list[Series] = []  # computed series, dependencies first
        self._row: dict[int, int] = {}
        marks: dict[int, int] = {}

        def visit(node: Series, path: tuple[str, ...]) -> None:
            if isinstance(node, Column) and node.name in by_name:
                if node.name in path:
                    raise IndicatorError("indicators depend on each other in a cycle: "
                                         + " -> ".join((*path[path.index(node.name):],
                                                        node.name)))
                path = (*path, node.name)
            node = self._target(node, path[0])
            key = id(node)
            if isinstance(node, (Const, Column)) or marks.get(key) == 2:
                return
            if marks.get(key) == 1:
                raise IndicatorError("indicators depend on each other in a cycle: "
                                     + " -> ".join(path))
            marks[key] = 1
            for inp in node.inputs():
                visit(inp, path)
            marks[key] = 2
            self.order.append(node)

        for name, spec in named:
            visit(spec, (name.partition(".")[0],))
        for _, spec in named:
            target = self._target(spec, "")
            if id(target) not in self._row:
                self._row[id(target)] = len(self._row)
        for node in self.order:
            if id(node) not in self._row:
                self._row[id(node)] = len(self._row)
        self.n_series = len(self._row)
        self._named_rows = [self._row[id(self._target(s, ""))] for _, s in named]
        self._state: dict[int, np.ndarray] = {}
        for node in self.order:
            width = self._state_width(node)
            if width:
                self._state[id(node)] = np.zeros((n_assets, width))
        self._customs = [n for n in self.order if isinstance(n, Custom)]
        if history_window:
            for c in self._customs:
                if c.lookback is None:
                    raise IndicatorError(
                        f"custom indicator {c.label!r} needs a lookback in a streamed run: "
                        "each window is computed from the bars carried from the previous one, "
                        "so the value at a bar must depend on at most `lookback` bars "
                        "(Custom(fn, ..., lookback=n))")
                if c.lookback > history_window:
                    raise IndicatorError(
                        f"custom indicator {c.label!r} has lookback {c.lookback} but the "
                        f"streamed run carries {history_window} bars per asset between windows; "
                        f"raise BacktestConfig.history_window to at least {c.lookback}")
        self._checked = False
        self._same_row_names = len(set(self._named_rows)) != len(self._named_rows)
        if self._same_row_names:
            # two names for one series (a Bollinger band declared again under its own name)
            dup = [n for n, r in zip(self.names, self._named_rows, strict=True)
                   if self._named_rows.count(r) > 1]
            raise IndicatorError(f"the same indicator object is declared as both "
                                 f"{dup[0]!r} and {dup[1]!r}; declare it once")

    # ------------------------------------------------------------ resolution
    def _target(self, node: Series, owner: str) -> Series:
        """What a node stands for: a column name resolves to an indicator or a run column."""
        node = node.resolved()
        if isinstance(node, Column):
            if node.name in self._by_name:
                return self._by_name[node.name].resolved()
            base, _, out = node.name.partition(".")
            spec = self._by_name.get(base)
            if out and isinstance(spec, Bollinger):
                outs = dict(spec.outputs())
                if out in outs:
                    return outs[out]
            if node.name not in self.columns:
                known = [*self.columns, *self.names]
                raise IndicatorError(
                    f"indicator {owner!r} reads unknown column {node.name!r}; "
                    + did_you_mean(node.name, known, "columns and indicators"))
        return node

    @staticmethod
    def _state_width(node: Series) -> int:
        if isinstance(node, _Window):
            return node.window + node.extra + K.WINDOW_STATE
        if isinstance(node, EMA):
            return 3
        if isinstance(node, RSI):
            return 5
        if isinstance(node, ATR):
            return 4
        if isinstance(node, CrossOver):
            return 2
        return 0

    # ------------------------------------------------------------ computing
    def compute(self, store: BarStore, n_prefix: int = 0, prev: BarStore | None = None,
                keep: np.ndarray | None = None) -> None:
        """Compute the indicator values of ``store`` and attach them (``store.set_indicators``).

        The per-asset state advances: call it once per store, in the order of
        the windows of a run.

        Parameters
        ----------
        store : BarStore
            The run's bars (a streamed run: one window, after its carried rows).
        n_prefix : int
            Rows at the start of ``store`` carried from the previous window:
            their values are copied from ``prev`` (rows ``keep``), and the
            other rows are computed from the state the previous window left.
        prev, keep : BarStore and ndarray of int64, optional
            The previous window's store and the rows of it that were carried.
        """
        n = store.n_rows
        values = np.empty((self.n_series, n))
        if n_prefix:
            assert prev is not None and keep is not None
            values[:, :n_prefix] = prev.indicator_array[:, keep]
        ts, asset = store.ts_array, store.asset_array
        # One visiting order for every kernel: the rows as stored when each asset's rows are
        # in time order there (no sort, no gather, no scatter), else one stable time sort.
        rows = K.Rows(ts, asset, n_prefix, self.n_assets)
        cols: dict[str, np.ndarray] = {}

        def column(name: str) -> np.ndarray:
            if name not in cols:
                if name in BAR_FIELDS:
                    cols[name] = getattr(store, name + "_array")
                else:
                    full = store.signal_array[:, store.signal_index[name]]
                    cols[name] = np.ascontiguousarray(full)
            return cols[name]

        def get(node: Series, single: bool = False) -> np.ndarray:
            node = self._target(node, "")
            if isinstance(node, Column):
                return column(node.name)
            if isinstance(node, Const):  # run_binop reads a single value at every row
                return np.full(1 if single else n, node.value)
            return values[self._row[id(node)]]

        for node in self.order:
            out = values[self._row[id(node)]]
            state = self._state.get(id(node), _NO_STATE)
            if isinstance(node, _Window):
                K.run_window(rows, get(node.input), state, out, K.WINDOW_MODES[node.mode],
                             node.window + node.extra, float(node.ddof))
            elif isinstance(node, EMA):
                K.run_ema(rows, get(node.input), state, out, node.window, node.alpha)
            elif isinstance(node, RSI):
                K.run_rsi(rows, get(node.input), state, out, node.window)
            elif isinstance(node, ATR):
                K.run_atr(rows, get(node.high), get(node.low), get(node.close), state, out,
                          node.window)
            elif isinstance(node, CrossOver):
                K.run_cross(rows, get(node.a), get(node.b), state, out)
            elif isinstance(node, BinOp):
                K.run_binop(get(node.left, True), get(node.right, True), out,
                            K.BINARY_OPS[node.op],
                            n_prefix)
            elif isinstance(node, Custom):
                self._run_custom(node, rows, [get(x) for x in node.ins], out, store, values)
            else:  # pragma: no cover - every Series subclass is handled above
                raise TypeError(f"cannot compute {node!r}")
        self._checked = True
        store.set_indicators(values, self.names)

    def _run_custom(self, node: Custom, rows: K.Rows, inputs: list[np.ndarray],
                    out: np.ndarray, store: BarStore, values: np.ndarray) -> None:
        """Call ``node.fn`` on each asset's columns (after its carried rows, when streaming)."""
        ts, asset, n_prefix = store.ts_array, store.asset_array, rows.start
        order, seg_asset, seg_start = _segments(asset[n_prefix:], ts[n_prefix:], n_prefix)
        inputs = [x[order] for x in inputs]
        if not self._checked and seg_asset.size:
            first = [x[seg_start[0]:seg_start[1]] for x in inputs]
            rng = np.random.default_rng(12345)
            sample = [100.0 + np.cumsum(rng.standard_normal(SAMPLE_BARS)) for _ in inputs]
            for what, cols in (("a synthetic sample", sample),
                               (f"asset {store.asset_names[int(seg_asset[0])]!r}", first)):
                check_causal(node, cols, what)
        pre_rows: dict[int, np.ndarray] = {}
        if n_prefix:
            p_order, p_asset, p_start = _segments(asset[:n_prefix], ts[:n_prefix], 0)
            for s in range(p_asset.size):
                pre_rows[int(p_asset[s])] = p_order[p_start[s]:p_start[s + 1]]
        res_all = np.empty(order.size)
        for s in range(seg_asset.size):
            a, r0, r1 = int(seg_asset[s]), int(seg_start[s]), int(seg_start[s + 1])
            cols = [x[r0:r1] for x in inputs]
            pre = pre_rows.get(a)
            if pre is not None and pre.size:
                before = [self._prefix_values(inp, pre, store, values) for inp in node.ins]
                cols = [np.concatenate((b, c)) for b, c in zip(before, cols, strict=True)]
            res = _call(node, cols, f"asset {store.asset_names[a]!r}")
            res_all[r0:r1] = res[res.size - (r1 - r0):]
        out[order] = res_all

    def _prefix_values(self, inp: Series, rows: np.ndarray, store: BarStore,
                       values: np.ndarray) -> np.ndarray:
        """An input's values on carried rows (copied from the previous window)."""
        node = self._target(inp, "")
        if isinstance(node, Column):
            if node.name in BAR_FIELDS:
                return np.asarray(getattr(store, node.name + "_array")[rows])
            return np.asarray(store.signal_array[rows, store.signal_index[node.name]])
        if isinstance(node, Const):
            return np.full(rows.size, node.value)
        return values[self._row[id(node)], rows]


def _call(node: Custom, cols: list[np.ndarray], where: str) -> np.ndarray:
    """``node.fn(*cols)`` as a float64 array of the right length, or a clear error."""
    n = cols[0].size if cols else 0
    try:
        res = node.fn(*(np.array(c, dtype=np.float64) for c in cols))
    except Exception as exc:  # the user's error, with a note naming the indicator
        annotate(exc, f"custom indicator {node.label!r} (on {where}, before the first bar)",
                 None, None)
        raise
    arr = np.asarray(res)
    if arr.dtype.kind not in "fiu" or arr.dtype.kind == "b":
        raise IndicatorError(f"custom indicator {node.label!r} returned an array of dtype "
                             f"{arr.dtype} on {where}; it must return float64 numbers")
    if arr.shape != (n,):
        raise IndicatorError(f"custom indicator {node.label!r} returned shape {arr.shape} for "
                             f"{n} bars on {where}; it must return one value per bar ({n},)")
    return arr.astype(np.float64, copy=False)


def check_causal(node: Custom, cols: list[np.ndarray], what: str) -> None:
    """Refuse a custom indicator that looks ahead, or whose ``lookback`` is too short.

    ``fn(x[:k])`` must equal ``fn(x)[:k]`` (NaN where NaN) for several ``k``;
    with a ``lookback``, ``fn(x[k - lookback + 1 : k + 1])[-1]`` must equal
    ``fn(x)[k]``.
    """
    n = cols[0].size
    if n < 2:
        return
    full = _call(node, cols, what)
    ks = sorted({1, 2, 3, n // 4, n // 3, n // 2, (2 * n) // 3, (3 * n) // 4, n - 2, n - 1} -
                {0}, reverse=True)
    for k in ks:
        part = _call(node, [c[:k] for c in cols], f"{what} (first {k} bars)")
        same = _equal_or_both_nan(part, full[:k]) | _rounding(part, full[:k])
        if not same.all():
            i = int(np.flatnonzero(~same)[0])
            raise IndicatorError(
                f"custom indicator {node.label!r} looks ahead: on {what}, its value at index "
                f"{i} is {part[i]!r} computed from the first {k} bars but {full[i]!r} from all "
                f"{n}; a value may use only the bars up to its own")
    L = node.lookback
    if L is None:
        return
    for k in range(L - 1, n, max(1, (n - L + 1) // 16)):
        part = _call(node, [c[k - L + 1:k + 1] for c in cols], f"{what} (bars {k - L + 1}..{k})")
        if not _equal_or_both_nan(part[-1:], full[k:k + 1]).all():
            if _rounding(part[-1:], full[k:k + 1]).all():
                raise IndicatorError(
                    f"custom indicator {node.label!r} gives {part[-1]!r} at index {k} of {what} "
                    f"from its last {L} bars but {full[k]!r} from all of them: the same value up "
                    "to rounding, but a streamed run must reproduce the in-memory values bit for "
                    "bit, so fn must compute each value with the same float operations whatever "
                    "the length of its input (np.convolve may not: write the window sum out)")
            raise IndicatorError(
                f"custom indicator {node.label!r} depends on more than lookback={L} bars: on "
                f"{what}, its value at index {k} is {part[-1]!r} from the last {L} bars but "
                f"{full[k]!r} from all of them; declare a longer lookback")
