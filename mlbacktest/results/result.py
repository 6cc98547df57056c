"""The result of a backtest: recorded arrays presented as polars frames and metrics."""

from __future__ import annotations

import os
import sys
import warnings
from collections.abc import Mapping, Sequence
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

import numpy as np
import numpy.typing as npt
import polars as pl

import mlbacktest.results.io as _io
import mlbacktest.results.plots as _plots
import mlbacktest.results.report as _report
from mlbacktest.config import BacktestConfig
from mlbacktest.data.feeds import DataFeed
from mlbacktest.errors import LookAheadWarning, ResultFileError

from .frames import (
    EQUITY_DTYPES,
    FILL_DTYPES,
    FILL_RANGE_COLUMNS,
    OPTIONAL_ORDER_DTYPES,
    ORDER_DTYPES,
)
from .io import Freq, PriceMarks, SavedResult
from .metrics import (
    FORMATTERS,
    METRIC_SECTIONS,
    ORDER_STATUS_REJECTED,
    _safe_ratio,
    align_benchmark,
    compute_metrics,
    drawdown,
    explain_periods_per_year,
    format_metric,
    infer_periods_per_year,
    rolling_sharpe,
    simple_returns,
    total_return,
)
from .trades import (
    EXCURSION_FIELDS,
    EXIT_REASONS,
    TRADE_FIELDS,
    RoundTrips,
    excursions,
    exit_reasons,
    fifo_round_trips,
)

if TYPE_CHECKING:
    import pandas as pd  # type: ignore[import-untyped,unused-ignore]
    from matplotlib.figure import Figure

__all__ = [
    "BacktestResult",
    "ORDER_STATUS_NAMES",
    "ORDER_TYPE_NAMES",
    "REJECTED_WARNING_FRACTION",
    "TIF_NAMES",
    "rejection_kind",
    "warn_if_mostly_rejected",
]

ORDER_TYPE_NAMES: tuple[str, ...] = (
    "market",
    "limit",
    "stop",
    "stop_limit",
    "trailing_stop",
    "market_on_open",
    "market_on_close",
)
"""Order type names, indexed by the engine's ``order_type`` code."""

ORDER_STATUS_NAMES: tuple[str, ...] = (
    "submitted",
    "accepted",
    "partially_filled",
    "filled",
    "cancelled",
    "expired",
    "rejected",
)
"""Order status names, indexed by the engine's ``status`` code."""

_REJECTED: int = ORDER_STATUS_REJECTED
"""Status code of a rejected order."""

REJECTED_WARNING_FRACTION: float = 0.5
"""A run in which more than this fraction of the orders ended rejected emits a
:class:`~mlbacktest.errors.RejectedOrdersWarning` (see :func:`warn_if_mostly_rejected`)."""

_NO_REASON = "no reason recorded"
"""Reason kind of a rejected order saved without a reason."""

TIF_NAMES: tuple[str, ...] = ("gtc", "day", "ioc", "fok", "gtd")
"""Time-in-force names, indexed by the engine's ``tif`` code."""

ORIGIN_NAMES: tuple[str, ...] = EXIT_REASONS
"""Who placed an order, indexed by the engine's ``origin`` code: the names of
:data:`~mlbacktest.results.trades.EXIT_REASONS`, since an order placed by the
broker gives the trade it closes its origin as exit reason."""

_NO_TIMESTAMP: int = int(np.iinfo(np.int64).min)
"""``closed_ts`` of an order that is still open."""

def rejection_kind(reason: str) -> str:
    """The kind of a broker reason: its text before the first colon, without the figures.

    ``"insufficient cash: the fill needed 1200.00 but only 1000.00 was
    available"`` is of kind ``"insufficient cash"``; a reason without a colon
    is its own kind; an empty one is ``"no reason recorded"``.

    Examples
    --------
    >>> rejection_kind("insufficient cash: the fill needed 1200.00 but only 1000.00 was available")
    'insufficient cash'
    """
    return reason.split(":", 1)[0].strip() or _NO_REASON


def warn_if_mostly_rejected(
    result: BacktestResult, stacklevel: int | None = None
) -> BacktestResult:
    """Emit a :class:`~mlbacktest.errors.RejectedOrdersWarning` when most orders were rejected.

    "Most" is more than :data:`REJECTED_WARNING_FRACTION` of the orders. The
    engine calls this once at the end of every run.

    Parameters
    ----------
    result : BacktestResult
        The result of the run.
    stacklevel : int, optional
        Passed to :func:`warnings.warn`; by default the first frame outside
        mlbacktest (the user's call of ``run()`` or ``run_backtest()``).

    Returns
    -------
    BacktestResult
        `result`, unchanged.
    """
    import warnings

    from mlbacktest.errors import RejectedOrdersWarning

    if stacklevel is None:
        import os

        package = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
        frame, stacklevel = sys._getframe(0), 1
        while frame.f_back is not None and frame.f_code.co_filename.startswith(package):
            frame, stacklevel = frame.f_back, stacklevel + 1
    status = result._traded_status()  # a warm-up's refused orders are by design
    rejected = int(np.count_nonzero(status == _REJECTED))
    if rejected and rejected > REJECTED_WARNING_FRACTION * status.size:
        text = result.rejection_text()
        kinds = result.rejection_reasons["reason"].to_list()
        hint = ""
        if "insufficient cash" in kinds[:1] or "insufficient margin" in kinds[:1]:
            hint = (
                "; check the units: order_target_percent and order_percent take fractions "
                "(0.1 = 10 %), commission is a fraction of traded value (0.001 = 10 bps)"
            )
        warnings.warn(
            f"{text}{hint}; see result.orders.filter(pl.col('status') == 'rejected')",
            RejectedOrdersWarning,
            stacklevel=stacklevel,
        )
    return result


def _table_columns(
    table: str, data: Mapping[str, npt.ArrayLike], dtypes: dict[str, type]
) -> dict[str, np.ndarray]:
    """Validate one recorded table and return its columns as contiguous typed arrays."""
    missing = [k for k in dtypes if k not in data]
    if missing:
        raise ValueError(f"BacktestResult: {table} is missing columns {missing}")
    cols: dict[str, np.ndarray] = {
        k: np.ascontiguousarray(data[k], dtype=dtype) for k, dtype in dtypes.items()
    }
    shapes = {v.shape for v in cols.values()}
    if len(shapes) != 1 or len(shapes.pop()) != 1:
        found = {k: v.shape for k, v in cols.items()}
        raise ValueError(
            f"BacktestResult: {table} columns must be 1-D and of equal length: {found}"
        )
    return cols


def _check_codes(what: str, codes: np.ndarray, n_labels: int) -> None:
    """Raise if any code is not a valid index into ``n_labels`` labels."""
    bad = (codes < 0) | (codes >= n_labels)
    if bad.any():
        raise ValueError(
            f"BacktestResult: invalid {what} {codes[bad][0]} (expected 0..{n_labels - 1})"
        )


def _decode(name: str, codes: np.ndarray, labels: Sequence[str]) -> pl.Series:
    """String series of ``labels[codes]`` (codes already validated)."""
    return pl.Series(name, labels, dtype=pl.String).gather(codes)


def _direction(name: str, sign: np.ndarray) -> pl.Series:
    """``"long"`` for positive ``sign``, ``"short"`` otherwise."""
    return _decode(name, (sign < 0).astype(np.int8), ("long", "short"))


class BacktestResult:
    """Everything a backtest recorded, with frames and metrics computed on demand.

    The engine builds this object from plain numpy arrays; every frame and
    metric is computed on first access and cached.

    Parameters
    ----------
    equity : mapping of str to array_like
        One row per timestamp: ``ts`` (int64 ns), ``cash``, ``positions_value``,
        ``equity``, ``gross_exposure``, ``net_exposure`` (float64).
    fills : mapping of str to array_like
        One row per fill: ``ts``, ``asset`` (int32 id), ``order_id``,
        ``quantity`` (signed: + buy, - sell), ``price`` (after slippage),
        ``commission`` and ``slippage`` (currency costs, >= 0); optionally
        ``held_high`` and ``held_low`` (float64): the highest high and lowest
        low of the asset's bars held through in full since its previous fill
        (NaN when none), from which the trades' MFE and MAE are computed
        (NaN without them).
    orders : mapping of str to array_like
        One row per order: ``order_id``, ``asset``, ``created_ts``,
        ``order_type`` (0 market, 1 limit, 2 stop), ``quantity`` (signed),
        ``limit_price`` / ``stop_price`` (NaN if none), ``status`` (0 open,
        1 filled, 2 cancelled, 3 rejected), ``filled_quantity`` (signed),
        ``avg_fill_price`` (NaN if unfilled), ``closed_ts`` (INT64_MIN while
        open) and ``reason`` (sequence of str, ``""`` if none).
    asset_names : sequence of str
        Asset name of each asset id.
    tz : str or None
        Time zone used to present timestamps. When set, ``ts`` values are UTC
        instants and frames hold ``Datetime("ns", tz)``; when ``None`` they
        are naive wall-clock times and frames hold naive ``Datetime("ns")``.
    initial_cash : float
        Equity before the first timestamp.
    config : object
        The configuration of the run, kept as :attr:`config`.
    periods_per_year : float, optional
        Annualisation factor of the metrics; inferred from the equity
        timestamps when ``None`` (see
        :func:`~mlbacktest.results.metrics.infer_periods_per_year`).
    risk_free : float, default 0.0
        Annual risk-free rate for the Sharpe, Sortino and Omega ratios and alpha.
    benchmark : polars.DataFrame, polars.Series or array_like, optional
        Benchmark for alpha and beta: a frame with a ``timestamp`` column
        and a ``price`` (or ``close``) or ``returns`` column, aligned as-of
        on the equity timestamps, or one return per equity point; see
        :func:`~mlbacktest.results.metrics.align_benchmark`.

    Raises
    ------
    ValueError
        If a table misses a column, its columns differ in length, a code
        (asset id, order type, status) is out of range, ``tz`` is unknown,
        or the benchmark is malformed or does not cover the run.

    See Also
    --------
    mlbacktest.results.metrics.compute_metrics : definitions of the metrics.
    mlbacktest.results.trades.fifo_round_trips : how fills become trades.
    """

    def __init__(
        self,
        equity: Mapping[str, npt.ArrayLike],
        fills: Mapping[str, npt.ArrayLike],
        orders: Mapping[str, Any],
        asset_names: Sequence[str],
        tz: str | None,
        initial_cash: float,
        config: Any = None,
        periods_per_year: float | None = None,
        risk_free: float = 0.0,
        benchmark: Any = None,
    ) -> None:
        self._equity = _table_columns("equity", equity, EQUITY_DTYPES)
        self._fills = _table_columns("fills", fills, FILL_DTYPES)
        for key in FILL_RANGE_COLUMNS:  # optional: bar ranges for MFE/MAE
            if key in fills:
                held = np.ascontiguousarray(fills[key], dtype=np.float64)
                if held.shape != self._fills["ts"].shape:
                    raise ValueError(f"BacktestResult: fills column {key!r} has the wrong length")
                self._fills[key] = held
        self._orders = _table_columns("orders", orders, ORDER_DTYPES)
        for key, dtype in OPTIONAL_ORDER_DTYPES.items():
            if key in orders:
                arr: np.ndarray = np.ascontiguousarray(orders[key], dtype=dtype)
                if arr.shape != self._orders["order_id"].shape:
                    raise ValueError(f"orders column {key!r} has the wrong length")
                self._orders[key] = arr
        reason = [str(r) for r in orders.get("reason", [""] * len(self._orders["order_id"]))]
        if len(reason) != len(self._orders["order_id"]):
            raise ValueError("BacktestResult: orders['reason'] must have one entry per order")
        self._reason = reason
        self.asset_names: tuple[str, ...] = tuple(asset_names)
        _check_codes("asset id", self._fills["asset"], len(self.asset_names))
        _check_codes("asset id", self._orders["asset"], len(self.asset_names))
        _check_codes("order type", self._orders["order_type"], len(ORDER_TYPE_NAMES))
        _check_codes("order status", self._orders["status"], len(ORDER_STATUS_NAMES))
        try:
            pl.Series(dtype=pl.Datetime("ns", tz))
        except pl.exceptions.PolarsError as exc:
            raise ValueError(f"BacktestResult: unknown time zone {tz!r}") from exc
        if periods_per_year is not None and not periods_per_year > 0:
            raise ValueError(
                f"BacktestResult: periods_per_year must be positive, got {periods_per_year}"
            )
        self.tz: str | None = tz
        self.initial_cash: float = float(initial_cash)
        self.config: Any = config
        self.risk_free: float = float(risk_free)
        self._periods_per_year = periods_per_year
        # Benchmark return of each equity period (None without a benchmark).
        self._benchmark_returns: np.ndarray | None = (
            None if benchmark is None else align_benchmark(benchmark, self._equity["ts"], tz)
        )

    # -- helpers -------------------------------------------------------------

    def _timestamps(self, name: str, ts: np.ndarray) -> pl.Series:
        """Datetime series of ``ts``; :data:`_NO_TIMESTAMP` values become null."""
        series = pl.Series(name, ts, dtype=pl.Int64)
        missing = ts == _NO_TIMESTAMP
        if missing.any():
            series = series.set(pl.Series(missing), None)
        return series.cast(pl.Datetime("ns", self.tz))

    def _assets(self, ids: np.ndarray) -> pl.Series:
        """Asset-name series for asset ids."""
        return _decode("asset", ids, self.asset_names)

    @cached_property
    def _round_trips(self) -> RoundTrips:
        f = self._fills
        return fifo_round_trips(
            f["ts"],
            f["asset"],
            f["order_id"],
            f["quantity"],
            f["price"],
            f["commission"],
            f["slippage"],
        )

    # -- scalars ---------------------------------------------------------------

    @property
    def final_equity(self) -> float:
        """Last recorded equity, or :attr:`initial_cash` when nothing was recorded."""
        eq = self._equity["equity"]
        return float(eq[-1]) if eq.size else self.initial_cash

    @cached_property
    def periods_per_year(self) -> float:
        """Annualisation factor: as given, or inferred from the equity timestamps."""
        if self._periods_per_year is not None:
            return float(self._periods_per_year)
        return infer_periods_per_year(self._equity["ts"], self.tz)

    # -- frames ----------------------------------------------------------------

    @cached_property
    def equity(self) -> pl.DataFrame:
        """Equity curve, one row per timestamp.

        Columns: ``timestamp``, ``cash``, ``positions_value``, ``equity``,
        ``gross_exposure``, ``net_exposure``; ``returns`` (simple returns, the
        first against ``initial_cash``); ``drawdown`` (``equity / peak - 1``,
        ``initial_cash`` counting as the first peak); ``gross_leverage`` and
        ``net_leverage`` (exposure / equity, NaN where equity <= 0).
        """
        e = self._equity
        return pl.DataFrame(
            [
                self._timestamps("timestamp", e["ts"]),
                *(
                    pl.Series(k, e[k])
                    for k in ("cash", "positions_value", "equity", "gross_exposure", "net_exposure")
                ),
                pl.Series("returns", simple_returns(e["equity"], self.initial_cash)),
                pl.Series("drawdown", drawdown(e["equity"], self.initial_cash)),
                pl.Series("gross_leverage", _safe_ratio(e["gross_exposure"], e["equity"])),
                pl.Series("net_leverage", _safe_ratio(e["net_exposure"], e["equity"])),
            ]
        )

    @cached_property
    def fills(self) -> pl.DataFrame:
        """Fills, in recorded order.

        Columns: ``timestamp``, ``asset`` (name), ``order_id``, ``quantity``
        (signed), ``price``, ``commission``, ``slippage``, ``side``
        (``"buy"``/``"sell"``) and ``value`` (``quantity * price``).
        """
        f = self._fills
        return pl.DataFrame(
            [
                self._timestamps("timestamp", f["ts"]),
                self._assets(f["asset"]),
                *(
                    pl.Series(k, f[k])
                    for k in ("order_id", "quantity", "price", "commission", "slippage")
                ),
                _decode("side", (f["quantity"] < 0).astype(np.int8), ("buy", "sell")),
                pl.Series("value", f["quantity"] * f["price"]),
            ]
        )

    @cached_property
    def orders(self) -> pl.DataFrame:
        """Orders, in recorded order.

        Columns: ``order_id``, ``timestamp`` (creation), ``asset``, ``type``
        (one of :data:`ORDER_TYPE_NAMES`), ``quantity``, ``limit_price``,
        ``stop_price``, ``status`` (one of :data:`ORDER_STATUS_NAMES`),
        ``filled_quantity``, ``avg_fill_price``, ``closed_timestamp`` (null
        while working) and ``reason`` (null if none); when the engine
        recorded them, ``time_in_force``, ``origin`` (``"strategy"`` or the
        rule that placed it), ``parent_id`` and ``oco_group`` (null when none).
        """
        o = self._orders
        extra: list[Any] = []
        if "tif" in o:
            extra.append(_decode("time_in_force", o["tif"], TIF_NAMES))
        if "origin" in o:
            extra.append(_decode("origin", o["origin"], ORIGIN_NAMES))
        for key, name in (("parent", "parent_id"), ("oco_group", "oco_group")):
            if key in o:
                col = pl.Series(name, np.asarray(o[key], dtype=np.int64))
                extra.append(pl.when(col >= 0).then(col).otherwise(None).alias(name))
        frame = pl.DataFrame(
            [
                pl.Series("order_id", o["order_id"]),
                self._timestamps("timestamp", o["created_ts"]),
                self._assets(o["asset"]),
                _decode("type", o["order_type"], ORDER_TYPE_NAMES),
                *(pl.Series(k, o[k]) for k in ("quantity", "limit_price", "stop_price")),
                _decode("status", o["status"], ORDER_STATUS_NAMES),
                *(pl.Series(k, o[k]) for k in ("filled_quantity", "avg_fill_price")),
                self._timestamps("closed_timestamp", o["closed_ts"]),
                pl.Series("reason", self._reason, dtype=pl.String).replace("", None),
            ]
        )
        return frame.with_columns(extra) if extra else frame

    @cached_property
    def trades(self) -> pl.DataFrame:
        """Closed round trips, matched FIFO per asset from the fills.

        Columns:

        - ``asset``, ``direction`` (``"long"``/``"short"``),
          ``entry_timestamp``, ``exit_timestamp``, ``quantity`` (positive
          size closed), ``entry_price``, ``exit_price`` (fill prices, after
          slippage);
        - ``pnl``: gross P&L, ``(exit_price - entry_price) * quantity`` for a
          long (sign flipped for a short), before commission;
          ``commission``: pro-rated entry + exit commission; ``net_pnl``:
          ``pnl - commission``; ``return_pct``: ``pnl`` over the entry
          notional (a fraction); ``entry_order_id``, ``exit_order_id``;
        - ``slippage``: pro-rated entry + exit slippage cost, already inside
          ``pnl`` (``pnl + slippage`` is the P&L before slippage);
          ``net_return_pct``: ``net_pnl`` over the entry notional;
        - ``exit_reason``: one of :data:`~mlbacktest.results.trades.EXIT_REASONS`
          (see :func:`~mlbacktest.results.trades.exit_reasons`), null when
          the exit order is not recorded;
        - ``holding_time`` (Duration): ``exit_timestamp - entry_timestamp``;
        - ``mfe``, ``mae`` (currency), ``mfe_pct``, ``mae_pct`` (fractions of
          the entry price), ``mfe_per_unit``, ``mae_per_unit``: maximum
          favourable (>= 0) and adverse (<= 0) excursion, NaN when the fills
          carry no ``held_high``/``held_low``
          (see :func:`~mlbacktest.results.trades.excursions`).

        See :func:`~mlbacktest.results.trades.fifo_round_trips`.
        """
        rt = self._round_trips
        t = rt.trades
        f, o = self._fills, self._orders
        mfe_mae = excursions(
            rt.fill_index["entry"],
            rt.fill_index["exit"],
            f["ts"],
            f["asset"],
            f.get("held_high"),
            f.get("held_low"),
            t["direction"],
            t["quantity"],
            t["entry_price"],
            t["exit_price"],
        )
        reason = exit_reasons(
            t["exit_order_id"],
            o["order_id"],
            o["order_type"],
            o.get("origin"),
            o.get("parent"),
            o.get("oco_group"),
        )
        reason_names = _decode("exit_reason", np.maximum(reason, 0), EXIT_REASONS)
        if (reason < 0).any():
            reason_names = reason_names.set(pl.Series(reason < 0), None)
        return pl.DataFrame(
            [
                self._assets(t["asset"]),
                _direction("direction", t["direction"]),
                self._timestamps("entry_timestamp", t["entry_ts"]),
                self._timestamps("exit_timestamp", t["exit_ts"]),
                # the numeric fields, after asset, direction and the two timestamps
                *(pl.Series(k, t[k]) for k in TRADE_FIELDS[4:]),
                reason_names,
                pl.Series("holding_time", t["exit_ts"] - t["entry_ts"]).cast(pl.Duration("ns")),
                *(pl.Series(k, mfe_mae[k]) for k in EXCURSION_FIELDS),
            ]
        )

    @cached_property
    def open_positions(self) -> pl.DataFrame:
        """Lots still open after the last fill, by asset id then FIFO order.

        Columns: ``asset``, ``direction`` (``"long"``/``"short"``),
        ``quantity`` (positive), ``entry_timestamp``, ``entry_price``,
        ``entry_order_id``.
        """
        lots = self._round_trips.open_lots
        return pl.DataFrame(
            [
                self._assets(lots["asset"]),
                _direction("direction", lots["direction"]),
                pl.Series("quantity", lots["quantity"]),
                self._timestamps("entry_timestamp", lots["entry_ts"]),
                pl.Series("entry_price", lots["entry_price"]),
                pl.Series("entry_order_id", lots["entry_order_id"]),
            ]
        )

    # -- rejections ------------------------------------------------------------

    def _traded_status(self) -> np.ndarray:
        """Status codes of the orders placed within the equity record's span.

        Orders placed before its first timestamp (refused during a warm-up
        before ``trade_from``) are left out of the metrics' order counts.
        """
        status = self._orders["status"]
        ts = self._equity["ts"]
        if ts.size == 0:
            return status
        return status[self._orders["created_ts"] >= ts[0]]

    @cached_property
    def rejection_reasons(self) -> pl.DataFrame:
        """Rejected orders counted by kind of reason, most frequent first.

        Columns: ``reason`` (the reason's text before its first colon, see
        :func:`rejection_kind`, e.g. ``"insufficient cash"``) and ``orders``
        (Int64). Ties are ordered by reason. Empty when no order was rejected.
        """
        rejected = np.flatnonzero(self._orders["status"] == _REJECTED)
        counts: dict[str, int] = {}
        for i in rejected:
            kind = rejection_kind(self._reason[i])
            counts[kind] = counts.get(kind, 0) + 1
        ranked = sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))
        return pl.DataFrame(
            {"reason": [k for k, _ in ranked], "orders": [v for _, v in ranked]},
            schema={"reason": pl.String, "orders": pl.Int64},
        )

    def rejection_text(self, top: int = 3) -> str:
        """One line on the rejected orders: their number, share and most frequent reasons.

        Parameters
        ----------
        top : int, default 3
            Reasons to name.

        Returns
        -------
        str
            ``"rejected orders: 38 of 40 (95.0 %); top reasons: insufficient
            cash 38"``, or ``"rejected orders: 0 of 40"``.
        """
        total = int(self._orders["status"].size)
        reasons = self.rejection_reasons
        rejected = int(reasons["orders"].sum())
        if not rejected:
            return f"rejected orders: 0 of {total:,d}"
        named = "; ".join(
            f"{reason} {count:,d}" for reason, count in reasons.head(top).iter_rows()
        )
        more = f"; {reasons.height - top} other reasons" if reasons.height > top else ""
        return (
            f"rejected orders: {rejected:,d} of {total:,d} ({100 * rejected / total:.1f} %); "
            f"top reasons: {named}{more}"
        )

    # -- metrics ---------------------------------------------------------------

    def compute_metrics(
        self,
        periods_per_year: float | None = None,
        *,
        ddof: int = 1,
        risk_free: float | None = None,
        benchmark: Any = None,
        var_level: float = 0.95,
    ) -> dict[str, float | int]:
        """Performance, trade and exposure metrics under the given conventions.

        :attr:`metrics` is this method with its defaults. Every convention is
        part of the result (``periods_per_year``, ``ddof``, ``risk_free``,
        ``var_level``).

        Parameters
        ----------
        periods_per_year : float, optional
            Annualisation factor; :attr:`periods_per_year` when ``None``.
        ddof : {1, 0}
            1: sample estimators (standard deviation, skewness, kurtosis, SQN);
            0: population estimators.
        risk_free : float, optional
            Annual risk-free rate; :attr:`risk_free` when ``None``.
        benchmark : polars.DataFrame, polars.Series or array_like, optional
            Benchmark for alpha and beta (see
            :func:`~mlbacktest.results.metrics.align_benchmark`); the one
            given to the constructor when ``None``.
        var_level : float, default 0.95
            Confidence level of ``var`` and ``cvar``.

        Returns
        -------
        dict of str to float or int
            See :func:`~mlbacktest.results.metrics.compute_metrics` for the
            definition of each metric. The trade statistics use the
            ``net_return_pct`` and ``holding_time`` of :attr:`trades` and the
            number of equity periods each trade spans; the exposure
            statistics use the ``gross_exposure`` and ``net_exposure`` of the
            equity table; ``turnover`` uses ``|quantity * price|`` of every fill.

        Raises
        ------
        ValueError
            If a convention is invalid or the benchmark does not cover the run.
        """
        if periods_per_year is not None and not periods_per_year > 0:
            raise ValueError(f"periods_per_year must be positive, got {periods_per_year!r}")
        e, f = self._equity, self._fills
        t = self._round_trips.trades
        bench = (
            self._benchmark_returns
            if benchmark is None
            else align_benchmark(benchmark, e["ts"], self.tz)
        )
        # Equity periods between entry and exit: positions of the two timestamps on the clock.
        periods_held = np.searchsorted(e["ts"], t["exit_ts"]) - np.searchsorted(
            e["ts"], t["entry_ts"]
        )
        return compute_metrics(
            e["ts"],
            e["equity"],
            self.initial_cash,
            trade_net_pnl=t["net_pnl"],
            fill_commission=f["commission"],
            fill_slippage=f["slippage"],
            order_status=self._traded_status(),
            periods_per_year=(
                self.periods_per_year if periods_per_year is None else float(periods_per_year)
            ),
            risk_free=self.risk_free if risk_free is None else float(risk_free),
            ddof=ddof,
            var_level=var_level,
            benchmark_returns=bench,
            trade_net_return=t["net_return_pct"],
            trade_duration_ns=t["exit_ts"] - t["entry_ts"],
            trade_periods_held=periods_held,
            gross_exposure=e["gross_exposure"],
            net_exposure=e["net_exposure"],
            fill_notional=np.abs(f["quantity"] * f["price"]),
        )

    @cached_property
    def metrics(self) -> dict[str, float | int]:
        """Performance, trade and exposure metrics with the default conventions.

        The same as :meth:`compute_metrics` without arguments: periods per
        year as :attr:`periods_per_year`, ``ddof=1``, the result's
        :attr:`risk_free` and benchmark, 95 % VaR. The conventions are
        included as the keys ``periods_per_year``, ``ddof``, ``risk_free``
        and ``var_level``. See
        :func:`~mlbacktest.results.metrics.compute_metrics` for the
        definition of each metric.
        """
        return self.compute_metrics()

    def metrics_frame(self, metrics: Mapping[str, float | int] | None = None) -> pl.DataFrame:
        """Metrics as a two-column frame, ``metric`` (String) and ``value`` (Float64).

        Parameters
        ----------
        metrics : mapping, optional
            Metrics to show, e.g. from :meth:`compute_metrics`; :attr:`metrics`
            when ``None``.
        """
        values = self.metrics if metrics is None else metrics
        return pl.DataFrame(
            {"metric": list(values), "value": [float(v) for v in values.values()]},
            schema={"metric": pl.String, "value": pl.Float64},
        )

    @cached_property
    def returns(self) -> pl.DataFrame:
        """Per-period simple returns, the series the metrics are computed on.

        Columns: ``timestamp``, ``returns`` (the first against
        ``initial_cash``) and, when the result has a benchmark,
        ``benchmark`` (its aligned return of each period).
        """
        e = self._equity
        columns = [
            self._timestamps("timestamp", e["ts"]),
            pl.Series("returns", simple_returns(e["equity"], self.initial_cash)),
        ]
        if self._benchmark_returns is not None:
            columns.append(pl.Series("benchmark", self._benchmark_returns))
        return pl.DataFrame(columns)

    @cached_property
    def exposure(self) -> pl.DataFrame:
        """Exposure, leverage and traded notional of each period.

        Columns: ``timestamp``; ``gross_exposure`` and ``net_exposure``
        (currency); ``gross_leverage`` and ``net_leverage`` (exposure /
        equity, NaN where equity <= 0); ``in_market`` (gross exposure > 0);
        ``traded_notional``: sum of ``|quantity * price|`` of the fills in
        the period (a fill belongs to the first equity timestamp at or after
        its own).
        """
        e, f = self._equity, self._fills
        period = np.searchsorted(e["ts"], f["ts"])
        inside = period < e["ts"].size
        traded = np.bincount(
            period[inside],
            weights=np.abs(f["quantity"] * f["price"])[inside],
            minlength=e["ts"].size,
        )
        return pl.DataFrame(
            [
                self._timestamps("timestamp", e["ts"]),
                pl.Series("gross_exposure", e["gross_exposure"]),
                pl.Series("net_exposure", e["net_exposure"]),
                pl.Series("gross_leverage", _safe_ratio(e["gross_exposure"], e["equity"])),
                pl.Series("net_leverage", _safe_ratio(e["net_exposure"], e["equity"])),
                pl.Series("in_market", e["gross_exposure"] > 0.0),
                pl.Series("traded_notional", traded[: e["ts"].size]),
            ]
        )

    def rolling_sharpe(
        self, window: int, *, risk_free: float | None = None, ddof: int = 1
    ) -> pl.DataFrame:
        """Annualised Sharpe ratio over a moving window of periods.

        Parameters
        ----------
        window : int
            Periods per window.
        risk_free : float, optional
            Annual risk-free rate; :attr:`risk_free` when ``None``.
        ddof : int, default 1
            Delta degrees of freedom of the standard deviation.

        Returns
        -------
        polars.DataFrame
            ``timestamp`` and ``rolling_sharpe`` (NaN for the first
            ``window - 1`` periods), annualised with :attr:`periods_per_year`;
            see :func:`~mlbacktest.results.metrics.rolling_sharpe`.
        """
        e = self._equity
        values = rolling_sharpe(
            simple_returns(e["equity"], self.initial_cash),
            window,
            self.periods_per_year,
            self.risk_free if risk_free is None else float(risk_free),
            ddof,
        )
        return pl.DataFrame(
            [self._timestamps("timestamp", e["ts"]), pl.Series("rolling_sharpe", values)]
        )

    def summary(
        self, file: TextIO | None = None, metrics: Mapping[str, float | int] | None = None
    ) -> str:
        """Print an aligned table of the run and its metrics, and return it.

        The metrics are grouped in sections (returns and risk, trades,
        exposure, costs and orders, conventions); the conventions section
        states the periods per year, ``ddof``, risk-free rate and VaR level
        the figures were computed with, and the header says whether the
        periods per year were given or inferred (and from what calendar).
        When orders were rejected, a last line gives their number and most
        frequent reasons (:meth:`rejection_text`).

        Parameters
        ----------
        file : file-like, optional
            Where to print; ``sys.stdout`` when ``None``.
        metrics : mapping, optional
            Metrics to print, e.g. from :meth:`compute_metrics`;
            :attr:`metrics` when ``None``.

        Returns
        -------
        str
            The printed table (without the trailing newline).
        """
        values = self.metrics if metrics is None else metrics
        wall_clock = self.equity["timestamp"].dt.replace_time_zone(None)
        header = [
            ("start", str(wall_clock[0]) if len(wall_clock) else "n/a"),
            ("end", str(wall_clock[-1]) if len(wall_clock) else "n/a"),
            ("time_zone", self.tz or "naive"),
            ("bars", f"{len(wall_clock):,d}"),
            ("assets", f"{len(self.asset_names):,d}"),
            ("initial_cash", FORMATTERS["money"].format(self.initial_cash)),
            ("annualisation", self._annualisation(values.get("periods_per_year"))),
        ]
        show = format_metric

        placed = {name for _, names in METRIC_SECTIONS for name in names}
        sections = [
            (title, [(n, show(n, values[n])) for n in names if n in values])
            for title, names in METRIC_SECTIONS
        ]
        sections.append(("other", [(n, show(n, v)) for n, v in values.items() if n not in placed]))
        sections = [(title, rows) for title, rows in sections if rows]
        rows = header + [row for _, body in sections for row in body]
        label_width = max(len(name) for name, _ in rows)
        value_width = max(len(value) for _, value in rows)
        width = label_width + 2 + value_width
        lines = ["Backtest summary", "-" * width]
        lines += [f"{name:<{label_width}}  {value:>{value_width}}" for name, value in header]
        for title, body in sections:
            lines.append(f"-- {title} ".ljust(width, "-"))
            lines += [f"{name:<{label_width}}  {value:>{value_width}}" for name, value in body]
        if self.rejection_reasons.height:
            lines += ["-" * width, self.rejection_text()]
        text = "\n".join(lines)
        print(text, file=file if file is not None else sys.stdout)
        return text

    def _annualisation(self, used: Any) -> str:
        """How the periods per year of printed metrics were chosen: given, or inferred from what."""
        if self._periods_per_year is None and used == self.periods_per_year:
            return "inferred, " + explain_periods_per_year(self._equity["ts"], self.tz)
        return "given"

    def __repr__(self) -> str:
        change = total_return(self._equity["equity"], self.initial_cash)
        return (
            f"<BacktestResult: {len(self._equity['ts']):,d} bars, "
            f"{len(self.asset_names)} assets, {len(self._fills['ts']):,d} fills, "
            f"final_equity={self.final_equity:,.2f} ({change:+.2%})>"
        )

    # -- saving, loading, exports and reports (delegated to io, plots and report) ----

    def _saved_parts(self) -> SavedResult:
        """The recorded tables and settings as :mod:`~mlbacktest.results.io` saves them."""
        return SavedResult(
            path=Path(),
            equity=self._equity,
            fills=self._fills,
            orders=self._orders,
            reason=self._reason,
            asset_names=list(self.asset_names),
            tz=self.tz,
            initial_cash=self.initial_cash,
            periods_per_year=self._periods_per_year,
            risk_free=self.risk_free,
            benchmark=self._benchmark_returns,
            config=_config_entry(self.config),
        )

    def to_parquet(self, path: str | os.PathLike[str], *, overwrite: bool = False) -> Path:
        """Save the result to a directory; :meth:`from_parquet` reads it back.

        The recorded arrays go to ``equity.parquet``, ``fills.parquet`` and
        ``orders.parquet``; asset names, time zone, initial cash, periods per
        year, risk-free rate and the configuration to ``result.json``.

        Parameters
        ----------
        path : str or path-like
            A directory: new, empty, or an earlier mlbacktest output (with
            ``overwrite``). It is replaced only once the new result is
            complete, so a failed save leaves it as it was.
        overwrite : bool, default False
            Replace an earlier mlbacktest output at ``path``; a directory
            holding anything else is refused regardless.

        Returns
        -------
        pathlib.Path
            ``path``.

        Raises
        ------
        FileExistsError
            ``path`` is a symbolic link, holds files mlbacktest did not write,
            or holds an earlier result and ``overwrite`` is False.
        NotADirectoryError
            ``path`` is a file.

        See Also
        --------
        mlbacktest.results.io.to_parquet : the details, including configs that
            cannot be stored.
        """
        return _io.to_parquet(self, path, overwrite=overwrite)

    @classmethod
    def from_parquet(cls, path: str | os.PathLike[str]) -> BacktestResult:
        """Read a result saved by :meth:`to_parquet`.

        Every frame of the result read back equals the saved one, and its
        metrics are bit-identical.

        Parameters
        ----------
        path : str or path-like
            The directory written by :meth:`to_parquet`.

        Returns
        -------
        BacktestResult

        Raises
        ------
        FileNotFoundError
            The directory or one of its files is missing.
        mlbacktest.ResultFileError
            A file is corrupt, altered (NaN or rescaled equity, timestamps out
            of order, a negative fill price, ...) or written by a newer format
            version; the message names the file and the field. A
            ``ValueError``.
        """
        saved = _io.read_parquet(path)
        config = _rebuild_config(saved.config, saved.path / _io.META_FILE)
        try:
            return cls(
                equity=saved.equity,
                fills=saved.fills,
                orders={**saved.orders, "reason": saved.reason},
                asset_names=saved.asset_names,
                tz=saved.tz,
                initial_cash=saved.initial_cash,
                config=config,
                periods_per_year=saved.periods_per_year,
                risk_free=saved.risk_free,
                benchmark=saved.benchmark,
            )
        except (TypeError, ValueError) as exc:
            raise ResultFileError(
                f"from_parquet: {saved.path} holds an invalid result: {exc}", str(saved.path)
            ) from exc

    def to_pandas(self) -> dict[str, pd.DataFrame]:
        """Every frame as a pandas DataFrame (needs pandas).

        Returns
        -------
        dict of str to pandas.DataFrame
            Keys ``"equity"``, ``"returns"`` and ``"exposure"`` (indexed by
            ``timestamp``), ``"fills"``, ``"orders"``, ``"trades"``,
            ``"open_positions"`` and ``"metrics"`` (a ``value`` column
            indexed by ``metric``).
        """
        return _io.to_pandas(self)

    def returns_series(self, freq: Freq = "auto") -> pd.Series:
        """Simple returns as a pandas Series (needs pandas), e.g. for quantstats.

        Parameters
        ----------
        freq : {"auto", "bar", "D"}, default "auto"
            ``"bar"``: one return per bar, indexed by bar timestamps.
            ``"D"``: daily returns (last equity of each calendar day of the
            result's time zone), indexed by midnight. ``"auto"``: daily for
            intraday runs, per bar otherwise.

        Returns
        -------
        pandas.Series
            float64 returns named ``"returns"``, with a ``DatetimeIndex`` in
            the result's time zone (naive for naive results); the first
            return is against ``initial_cash``.
        """
        return _io.returns_series(self, freq)

    def to_pyfolio(
        self, prices: DataFeed | pl.DataFrame | None = None, *, price_column: str = "close"
    ) -> tuple[pd.Series, pd.DataFrame, pd.DataFrame]:
        """``(returns, positions, transactions)`` for pyfolio (needs pandas).

        Parameters
        ----------
        prices : DataFeed or polars.DataFrame, optional
            Prices to value the positions at (the run's feed, or a long frame
            with ``timestamp``, ``asset`` and ``price_column``). Without it,
            positions are valued at their asset's last fill price.
        price_column : str, default "close"

        Returns
        -------
        returns : pandas.Series
            Daily simple returns.
        positions : pandas.DataFrame
            End-of-day value per traded asset plus ``cash``.
        transactions : pandas.DataFrame
            ``amount``, ``price``, ``symbol`` per fill.

        Raises
        ------
        ValueError
            ``prices`` is a feed and ``price_column`` is not a bar field, or
            the feed's time zone is not the result's.

        See Also
        --------
        mlbacktest.results.io.to_pyfolio : the time-stamp conventions.
        """
        marks = (
            _feed_marks(prices, price_column, self.tz) if isinstance(prices, DataFeed) else prices
        )
        return _io.to_pyfolio(self, marks, price_column=price_column)

    def plot(
        self,
        benchmark: Any = None,
        *,
        benchmark_name: str | None = None,
        rolling_window: int | None = None,
    ) -> Figure:
        """The report's charts in one matplotlib Figure (needs matplotlib).

        Parameters
        ----------
        benchmark, benchmark_name, rolling_window
            As for :meth:`report`.

        Returns
        -------
        matplotlib.figure.Figure
            Equity, drawdown, monthly returns, rolling Sharpe ratio, exposure
            and trade P&L. It is not attached to pyplot: save it with
            ``fig.savefig(path)`` (works headless) or display it in a notebook.
        """
        return _plots.plot(self, benchmark, benchmark_name=benchmark_name,
                           rolling_window=rolling_window)

    def report(
        self,
        path: str | os.PathLike[str] = "report.html",
        benchmark: Any = None,
        *,
        title: str | None = None,
        benchmark_name: str | None = None,
        rolling_window: int | None = None,
    ) -> Path:
        """Write a self-contained HTML tear sheet (needs matplotlib).

        Sections: summary, equity (against ``benchmark``), underwater
        drawdown, monthly-returns heat map, rolling Sharpe ratio, exposure,
        trade P&L distribution, metrics and configuration. Charts are
        embedded as PNG images; the file loads nothing from the network.

        Parameters
        ----------
        path : str or path-like, default "report.html"
            The file to write.
        benchmark : optional
            A polars DataFrame with ``timestamp`` and one of ``returns``,
            ``price`` or ``close`` (aligned as of each bar); a pandas Series of
            returns with a DatetimeIndex (e.g. another result's
            :meth:`returns`); or an array with one return per bar.
        title : str, optional
            Page heading.
        benchmark_name : str, optional
            Label of the benchmark.
        rolling_window : int, optional
            Periods in the rolling Sharpe window (half a year by default;
            shortened for runs shorter than the window).

        Returns
        -------
        pathlib.Path
            ``path``.

        See Also
        --------
        mlbacktest.results.report : the sections in detail.
        """
        return _report.write_report(self, path, benchmark, title=title,
                                    benchmark_name=benchmark_name,
                                    rolling_window=rolling_window)


def _config_entry(config: Any) -> dict[str, Any]:
    """The ``config`` entry of a saved result (see :func:`~mlbacktest.results.io.config_entry`).

    A configuration that cannot be stored as data (not a
    :class:`~mlbacktest.config.BacktestConfig`, or one holding a cost model
    defined in Python without a table form) is saved as text, with a warning.
    """
    if config is None:
        return _io.config_entry(None)
    problem = f"it is a {type(config).__name__}, not a BacktestConfig"
    if isinstance(config, BacktestConfig):
        try:
            return _io.config_entry(config.to_dict())
        except (TypeError, ValueError) as exc:  # ConfigError: a model without a table form
            problem = str(exc)
    warnings.warn(
        f"to_parquet: the result's config is saved only as text ({problem}); "
        "the result read back has config=None",
        UserWarning,
        stacklevel=6,  # the caller of BacktestResult.to_parquet
    )
    return _io.config_entry(None, unsaved=repr(config))


def _rebuild_config(entry: Any, where: Path) -> BacktestConfig | None:
    """The configuration stored in the ``config`` entry of ``where`` (``None`` if not saved)."""
    knobs = _io.config_knobs(entry, where)
    if knobs is None:
        return None
    try:
        with warnings.catch_warnings():
            # The run that was saved already warned about look-ahead-prone settings.
            warnings.simplefilter("ignore", LookAheadWarning)
            return BacktestConfig.from_dict(knobs)
    except ValueError as exc:
        raise ResultFileError(f"{where}: field 'config': the saved config cannot be rebuilt: "
                              f"{exc}", str(where), "config") from exc


def _feed_marks(feed: DataFeed, price_column: str, tz: str | None) -> PriceMarks:
    """The ``price_column`` bars of ``feed``, read window by window as the engine reads them."""
    if price_column not in ("open", "high", "low", "close"):
        raise ValueError(f"price_column must be a bar field for a feed, got {price_column!r}")
    if feed.tz != tz:
        raise ValueError(f"prices: the feed's time zone {feed.tz!r} is not {tz!r}")
    panels = [feed.window(lo, hi) for lo, hi in feed.window_edges()]
    return PriceMarks(
        asset_names=tuple(feed.asset_names),
        ts=np.concatenate([np.empty(0, np.int64), *(p.ts for p in panels)]),
        asset=np.concatenate([np.empty(0, np.int32), *(p.asset for p in panels)]),
        price=np.concatenate([np.empty(0), *(getattr(p, price_column) for p in panels)]),
    )
