"""BacktestEngine: assembles feeds, broker, portfolio and strategy, and runs them."""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

import numpy as np

from mlbacktest._broker import Broker
from mlbacktest._clock import Clock
from mlbacktest._costs import ColumnSource, FixedBpsSlippage, SlippageModel
from mlbacktest._engine import BAR_PRIORITY, Engine
from mlbacktest._events import BarStore, annotate
from mlbacktest._portfolio import Portfolio
from mlbacktest.config import BacktestConfig, PositionRules
from mlbacktest.data.feeds import DataFeed
from mlbacktest.data.panel import BAR_FIELDS, BarPanel
from mlbacktest.errors import ConfigError, DataError
from mlbacktest.indicators import IndicatorPlan
from mlbacktest.results import BacktestResult
from mlbacktest.results.result import warn_if_mostly_rejected
from mlbacktest.strategy import Strategy

__all__ = ["BacktestEngine", "run_backtest"]

_HOOKS = ("on_market_data", "on_slice", "on_fill", "on_order", "on_signal")
#: Clock priority of signal sources: after every feed's bars at a timestamp, before timers.
SIGNAL_PRIORITY = 500_000


def _as_config(config: BacktestConfig | Mapping[str, Any] | None) -> BacktestConfig:
    """The ``config`` argument of an engine as a ``BacktestConfig``.

    ``None`` gives the defaults and a mapping goes through ``BacktestConfig.from_dict``;
    anything else but a ``BacktestConfig`` raises ``ConfigError``.
    """
    if config is None:
        return BacktestConfig()
    if isinstance(config, Mapping):
        return BacktestConfig.from_dict(config)
    if not isinstance(config, BacktestConfig):
        raise ConfigError(
            f"config must be a BacktestConfig or a mapping, got {type(config).__name__}")
    return config


def _overridden_hooks(strategy: Strategy) -> dict[str, Any]:
    """Bound hooks the strategy overrides; the others are never called."""
    cls = type(strategy)
    return {
        name: getattr(strategy, name)
        for name in _HOOKS
        if getattr(cls, name) is not getattr(Strategy, name)
    }


def _local_days(ts: np.ndarray, tz: str | None) -> np.ndarray:
    """Calendar day of each timestamp in the feed's zone, as days since the epoch.

    DAY orders expire when it changes.
    """
    if tz is None:
        return np.floor_divide(ts, 86_400_000_000_000).astype(np.int32)
    import polars as pl

    local = pl.Series(ts).cast(pl.Datetime("ns", "UTC")).dt.convert_time_zone(tz).dt.date()
    return local.cast(pl.Int32).to_numpy().astype(np.int32)


def _blocks(ts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Distinct timestamps of a sorted array and the row offsets of each block."""
    if ts.size == 0:
        return ts[:0].copy(), np.zeros(1, dtype=np.int64)
    starts = np.flatnonzero(ts[1:] != ts[:-1]) + 1
    offsets = np.concatenate(([0], starts, [ts.size])).astype(np.int64)
    return ts[offsets[:-1]].copy(), offsets


def _check_time_zones(feeds: Sequence[Any], names: Sequence[str]) -> str | None:
    """The feeds' common time zone; DataError when they differ."""
    tzs = {f.tz for f in feeds}
    if len(tzs) > 1:
        described = ", ".join(f"feed {names[i]} has {f.tz or 'naive timestamps'}"
                              for i, f in enumerate(feeds))
        raise DataError(f"feeds have mixed time zones: {described}")
    return tzs.pop()


def _union_names(feeds: Sequence[Any]) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """Sorted asset names of all feeds, and their signal names in order of first appearance."""
    asset_names = tuple(sorted(set().union(*(f.asset_names for f in feeds))))
    signal_names: list[str] = []
    for f in feeds:
        signal_names.extend(s for s in f.signal_names if s not in signal_names)
    return asset_names, tuple(signal_names)


def _merge_panels(
    panels: Sequence[BarPanel],
    names: Sequence[str],
    asset_names: tuple[str, ...] | None = None,
    signal_names: tuple[str, ...] | None = None,
) -> dict[str, Any]:
    """Concatenate several feeds' panels into one set of columns with shared asset ids.

    ``asset_names`` and ``signal_names`` default to those of the panels.
    """
    tz = _check_time_zones(panels, names)
    if asset_names is None or signal_names is None:
        asset_names, signal_names = _union_names(panels)
    index = {a: i for i, a in enumerate(asset_names)}
    cols: dict[str, list[np.ndarray]] = {k: [] for k in ("ts", "asset", *BAR_FIELDS, "signals")}
    for p in panels:
        remap = np.array([index[a] for a in p.asset_names], dtype=np.int32)
        cols["ts"].append(p.ts)
        cols["asset"].append(remap[p.asset] if p.asset.size else p.asset)
        for f in BAR_FIELDS:
            cols[f].append(getattr(p, f))
        sig = np.full((len(p), len(signal_names)), np.nan)
        for j, s in enumerate(p.signal_names):
            sig[:, signal_names.index(s)] = p.signals[:, j]
        cols["signals"].append(sig)
    merged: dict[str, Any] = {k: np.concatenate(v) for k, v in cols.items()}
    # The same (timestamp, asset) in two feeds is ambiguous: refuse it.
    order = np.lexsort((merged["ts"], merged["asset"]))
    a, t = merged["asset"][order], merged["ts"][order]
    dup = np.flatnonzero((a[1:] == a[:-1]) & (t[1:] == t[:-1]))
    if dup.size:
        bounds = np.cumsum([0] + [len(p) for p in panels])
        r1, r2 = order[dup[0]], order[dup[0] + 1]
        f1, f2 = (int(np.searchsorted(bounds, r, side="right") - 1) for r in (r1, r2))
        when = np.datetime64(int(t[dup[0] + 1]), "ns")
        raise DataError(
            f"asset {asset_names[a[dup[0]]]!r} has a bar at timestamp {when} in two feeds "
            f"(feed {names[f1]} row {panels[f1].source_row[r1 - bounds[f1]]} and feed "
            f"{names[f2]} row {panels[f2].source_row[r2 - bounds[f2]]}); {dup.size} such rows"
        )
    merged.update(asset_names=asset_names, signal_names=tuple(signal_names), tz=tz)
    return merged


class BacktestEngine:
    """Runs a :class:`~mlbacktest.Strategy` over one or more feeds.

    Parameters
    ----------
    feed : DataFeed or sequence of DataFeed
        Bars to replay. Several feeds (for example at different
        frequencies) are merged by the clock in timestamp order; at equal
        timestamps, earlier feeds come first.
    strategy : Strategy
        The strategy instance. Its hooks are looked up once, here.
    config : BacktestConfig or mapping, optional
        Knobs of the run (defaults: ``BacktestConfig()``).
    context : ContextFrame, polars DataFrame or None, optional
        Market-wide series (VIX, rates, ...), handed to each hook as a dict
        of the values visible at the timestamp (as-of, backward).
    sources : SignalSource or sequence of SignalSource, optional
        Predictions arriving on their own schedule, delivered to
        ``Strategy.on_signal`` through the clock (after the bars of their
        arrival timestamp).
    trade_from : datetime, date, str, numpy.datetime64 or int, optional
        Start of trading; the bars before it only warm the strategy up.
        Every hook runs on every bar (history and indicators warm up), but
        an order placed before `trade_from` (in ``on_start`` too) is stored
        rejected at once, with the reason ``"before trading start"``, and
        never reaches the broker; the strategy's ``on_order`` sees the
        rejection. The result's equity record starts at the first bar at
        or after `trade_from`, from the initial cash, so its returns and
        metrics cover the trading span only; the refused orders stay in
        ``result.orders`` (counted in ``result.rejection_reasons``) and are
        left out of the order counts of ``result.metrics``. A naive value
        is wall-clock time in the bars' time zone; an int is nanoseconds.
        See docs/semantics.md ("Warm-up before trading").

    Examples
    --------
    >>> from mlbacktest import BacktestEngine, BacktestConfig, PolarsDataFeed, Strategy
    >>> from mlbacktest.data.synthetic import synthetic_bars
    >>> class Hold(Strategy):
    ...     def on_start(self):
    ...         self.buy("A000", 10)
    >>> feed = PolarsDataFeed(synthetic_bars(n_assets=2, n_bars=5, seed=1))
    >>> result = BacktestEngine(feed, Hold(), BacktestConfig(initial_cash=10_000)).run()
    >>> len(result.fills)
    1
    """

    def __init__(
        self,
        feed: DataFeed | Sequence[DataFeed],
        strategy: Strategy,
        config: BacktestConfig | Mapping[str, Any] | None = None,
        *,
        context: Any = None,
        sources: Any = None,
        trade_from: Any = None,
    ) -> None:
        feeds = [feed] if isinstance(feed, DataFeed) else list(feed)
        if not feeds or not all(isinstance(f, DataFeed) for f in feeds):
            raise TypeError(
                "feed must be a DataFeed (PolarsDataFeed, ParquetDataFeed) or a list of them")
        if not isinstance(strategy, Strategy):
            raise TypeError(f"strategy must be a Strategy instance, got {type(strategy).__name__}")
        config = _as_config(config)
        self.feeds = feeds
        self.strategy = strategy
        self.config = config
        names = [str(i) for i in range(len(feeds))]
        #: Whether some feed is read chunk by chunk (ParquetDataFeed with ``chunk=``).
        self.streamed = any(f.streaming for f in feeds)
        self.store: BarStore | None = None
        if self.streamed:
            self.tz = _check_time_zones(feeds, names)
            self.asset_names, self.signal_names = _union_names(feeds)
        else:
            panels = [f.panel for f in feeds]
            cols = (_panel_columns(panels[0]) if len(panels) == 1
                    else _merge_panels(panels, names))
            self.store = _bar_store(cols)
            self._stream_bounds = np.cumsum([0] + [len(p) for p in panels])
            self.tz = self.store.tz
            self.asset_names, self.signal_names = self.store.asset_names, self.store.signal_names
        self._asset_index = {a: i for i, a in enumerate(self.asset_names)}
        self.context = self._context(context)
        self.sources = self._sources(sources)
        #: Start of trading (int64 ns), or None to trade from the first bar.
        self.trade_from: int | None = (None if trade_from is None
                                       else _trade_from_ns(trade_from, self.tz))
        self._ran = False

    def _sources(self, sources: Any) -> list[tuple[Any, np.ndarray]]:
        from mlbacktest.data.source import SignalSource

        if sources is None:
            return []
        items = [sources] if isinstance(sources, SignalSource) else list(sources)
        out = []
        for src in items:
            if not isinstance(src, SignalSource):
                raise TypeError(f"sources must be SignalSource objects, got {type(src).__name__}")
            if src.tz != self.tz:
                raise DataError(
                    f"signal source timestamps are {src.tz or 'naive'} but the bars are "
                    f"{self.tz or 'naive'}: mixed time zones"
                )
            out.append((src, src.asset_ids(self._asset_index)))
        return out

    def _context(self, context: Any) -> Any:
        if context is None:
            return None
        from mlbacktest.data.context import ContextFrame

        if not isinstance(context, ContextFrame):
            context = ContextFrame(context)
        if context.tz != self.tz:
            raise DataError(
                f"context timestamps are {context.tz or 'naive'} but the bars are "
                f"{self.tz or 'naive'}: mixed time zones"
            )
        return context

    def _reads_columns(self) -> bool:
        """Whether the slippage model reads bar columns (bid, ask, ...): the signal columns."""
        return (type(self.config.slippage_model) not in (SlippageModel, FixedBpsSlippage)
                and bool(self.signal_names))

    def _columns(self, store: BarStore) -> ColumnSource | None:
        """Bar columns a slippage model may read, built only for models that read columns."""
        if not self._reads_columns():
            return None
        return ColumnSource(_signal_columns(store), n_rows=store.n_rows)

    def run(
        self,
        *,
        progress: bool | None = None,
        out: str | os.PathLike[str] | None = None,
        overwrite: bool = False,
    ) -> BacktestResult:
        """Run the backtest and return its :class:`~mlbacktest.results.BacktestResult`.

        The strategy's exceptions propagate with their original type, with a
        note naming the hook, timestamp and asset where they happened.

        Parameters
        ----------
        progress : bool, optional
            Show a progress bar (tqdm, on standard error). ``None`` (default)
            shows it when standard error is a terminal, and only once the
            run has lasted two seconds; ``False`` never shows it.
        out : str or path-like, optional
            Save the result to this directory, in the layout of
            :meth:`BacktestResult.to_parquet`, writing the equity record and
            the fills as the run goes: after every window of a streamed run,
            so they do not pile up in memory. The orders and ``result.json``
            are written at the end. Everything goes to a new sibling
            directory that replaces `out` only when the run succeeds: a run
            that fails or is interrupted leaves `out` as it was. The result
            returned is the one saved.
        overwrite : bool, default False
            With `out`: allow replacing an earlier mlbacktest output there.

        Raises
        ------
        RuntimeError
            This engine has already run, or its strategy instance has already
            been run by an engine: a run changes the strategy's state, so a
            second run would not reproduce the first. Build a new
            BacktestEngine with a new strategy instance instead.
        FileExistsError
            `out` is a symbolic link, holds files mlbacktest did not write, or
            holds an earlier result and `overwrite` is False (checked before
            the run starts; see :func:`mlbacktest.results.io.check_output_dir`).
        """
        if self._ran:
            raise RuntimeError(
                "this BacktestEngine has already run: a run changes its strategy's state, so a "
                "second run would not reproduce the first; build a new BacktestEngine with a "
                "new strategy instance to run again")
        if self.strategy._engine is not None:
            raise RuntimeError(
                f"this {type(self.strategy).__name__} instance has already been run by an "
                "engine and keeps that run's state; give each BacktestEngine a new strategy "
                "instance")
        self._ran = True
        cfg = self.config
        writer = None
        if out is not None:
            from mlbacktest.results.io import ResultWriter, check_output_dir

            check_output_dir(out, overwrite, "run(out=...)")  # before anything is loaded
        clock = Clock()
        chunks: _Chunks | None = None
        if self.streamed:
            chunks = _Chunks(self.feeds, self.asset_names, self.signal_names, self.tz,
                             cfg.history_window, self._reads_columns())
            store, streams = chunks.first()
            calendar = chunks.calendar
        else:
            assert self.store is not None
            store = self.store
            ts = store.ts_array
            streams = []
            for k in range(len(self._stream_bounds) - 1):
                a, b = int(self._stream_bounds[k]), int(self._stream_bounds[k + 1])
                uniq, offsets = _blocks(ts[a:b])
                streams.append((uniq, offsets + a))
            calendar = streams[0][0]
            for uniq, _ in streams[1:]:
                calendar = np.union1d(calendar, uniq)
        if self.trade_from is not None and (calendar.size == 0
                                            or int(calendar[-1]) < self.trade_from):
            if chunks is not None:
                chunks.close()
            raise ValueError(
                f"trade_from={self.trade_from} ns is after the last bar"
                f"{'' if calendar.size == 0 else f' ({int(calendar[-1])} ns)'}: the run "
                "would never trade")
        for k, (uniq, offsets) in enumerate(streams):
            clock.add_stream(uniq, offsets, BAR_PRIORITY + k)
        n_bar_streams = clock.n_streams
        for j, (src, _) in enumerate(self.sources):
            uniq, offsets = src.blocks()
            clock.add_stream(uniq, offsets, SIGNAL_PRIORITY + j)
        n_steps = calendar.size
        portfolio = Portfolio(store.n_assets, cfg.initial_cash, n_steps)
        hooks = _overridden_hooks(self.strategy)
        broker = _new_broker(cfg, store, portfolio, self._columns(store), "on_order" in hooks)
        strategy = self.strategy

        def save_so_far() -> None:
            assert writer is not None
            writer.append("equity", _from(portfolio.take_records(), self.trade_from))
            writer.append("fills", broker.take_fills())

        bar = _progress_bar(progress, n_steps)
        engine = Engine(store, clock, broker, portfolio, strategy, hooks, self.context,
                        cfg.latency_ns, cfg.latency_bars, self.sources, n_bar_streams,
                        loader=chunks, calendar=calendar,
                        history_limit=cfg.history_window if self.streamed else 0,
                        progress=None if bar is None else bar.update,
                        progress_every=max(n_steps // 1000, 1), trade_from=self.trade_from)
        fields: dict[str, Any] = dict(
            asset_names=store.asset_names,
            tz=store.tz,
            initial_cash=cfg.initial_cash,
            config=cfg,
            periods_per_year=cfg.periods_per_year,
            risk_free=cfg.risk_free,
        )
        if out is not None:
            writer = ResultWriter(out, overwrite=overwrite)
            if chunks is not None:
                chunks.on_boundary = save_so_far
        try:
            plan = _start_strategy(strategy, engine, cfg.fractional,
                                   cfg.history_window if self.streamed else 0)
            if chunks is not None:
                chunks.indicators = plan
            engine.run()
            try:
                strategy.on_end()
            except BaseException as exc:
                annotate(exc, "on_end", None, None)
                raise
            if writer is not None:
                save_so_far()
                saved = writer.finish(BacktestResult, broker.to_arrays(), **fields)
        except BaseException:
            if writer is not None:  # the output directory is left as it was
                writer.abort()
            raise
        finally:
            if bar is not None:
                bar.close()
            if chunks is not None:
                chunks.close()
            if writer is not None:
                writer.close()
        if writer is not None:  # warns when most orders were rejected
            return warn_if_mostly_rejected(saved)  # type: ignore[no-any-return]
        return warn_if_mostly_rejected(BacktestResult(
            equity=_from(portfolio.record_arrays(), self.trade_from), fills=broker.fill_arrays(),
            orders=broker.to_arrays(), **fields))



def _start_strategy(strategy: Strategy, engine: Engine, fractional: bool,
                    history_window: int) -> IndicatorPlan | None:
    """Bind `strategy` to `engine`, call its ``on_start`` and compute its indicators.

    Shared by backtests and live runs. An exception of ``on_start`` propagates
    with a note naming the hook. The orders placed in ``on_start`` are flushed
    to the strategy's ``on_order``; the run's indicator plan (None: none) is
    returned for the loader of a chunked run.
    """
    strategy._bind(engine, fractional)
    try:
        strategy.on_start()
    except BaseException as exc:
        annotate(exc, "on_start", None, None)
        raise
    plan = strategy._start_indicators(history_window)
    engine.flush_order_events()
    return plan


def _new_broker(cfg: BacktestConfig, store: BarStore, portfolio: Portfolio,
                columns: ColumnSource | None, log_status: bool) -> Broker:
    """The compiled broker of a run, with every rule of ``cfg`` (backtest and live alike)."""
    broker = Broker(
        store,
        portfolio,
        commission=cfg.commission_model,
        slippage=cfg.slippage_model,
        columns=columns,
        fractional=cfg.fractional,
        allow_short=cfg.shorting_allowed,
        market_at_close=cfg.fill_at == "close",
        market_next_close=cfg.fill_at == "next_close",
        intrabar_path=cfg.intrabar_path,
        volume_cap=(float("inf") if cfg.max_volume_participation is None
                    else cfg.max_volume_participation),
        reentry_same_bar=cfg.same_bar_reentry,
        children_same_bar=cfg.linked_orders_same_bar,
        log_status=log_status,
        account=cfg.account,
        initial_margin=cfg.initial_margin,
        maintenance_margin=cfg.maintenance_margin,
        margin_rate=cfg.margin_rate,
        borrow_rate=np.asarray(cfg.borrow_rates(store.asset_names), dtype=np.float64),
        max_open_positions=-1 if cfg.max_open_positions is None else cfg.max_open_positions,
        max_gross_leverage=(float("inf") if cfg.max_gross_leverage is None
                            else cfg.max_gross_leverage),
        max_drawdown=float("nan") if cfg.max_drawdown is None else cfg.max_drawdown,
    )
    if isinstance(cfg.position_rules, PositionRules):
        broker.set_rules(-1, *cfg.position_rules.broker_args())
    return broker
def _trade_from_ns(value: Any, tz: str | None) -> int:
    """``trade_from`` as int64 ns in the bars' convention; TypeError/ValueError name it."""
    from mlbacktest._time import to_ns

    if isinstance(value, bool):
        raise TypeError("trade_from must be a timestamp (datetime, date, ISO string, "
                        "numpy.datetime64 or int ns), got a bool")
    try:
        return to_ns(value, tz)
    except (TypeError, ValueError) as exc:
        raise type(exc)(f"trade_from={value!r}: {exc}") from exc


def _from(record: dict[str, np.ndarray], start: int | None) -> dict[str, np.ndarray]:
    """The equity rows of ``record`` stamped at or after ``start`` (all when None)."""
    if start is None:
        return record
    keep = record["ts"] >= start
    if keep.all():
        return record
    return {k: v[keep] for k, v in record.items()}


def _progress_bar(progress: bool | None, total: int) -> Any:
    """A tqdm bar over ``total`` timestamps, or None when progress is off."""
    import sys

    if progress is False or (progress is None and not sys.stderr.isatty()):
        return None
    from tqdm.auto import tqdm  # type: ignore[import-untyped]

    return tqdm(total=total, unit="ts", desc="mlbacktest", delay=0.0 if progress else 2.0,
                mininterval=0.5, leave=False, file=sys.stderr)


def _panel_columns(p: BarPanel) -> dict[str, Any]:
    """One feed's panel as the columns :func:`_bar_store` takes (no copy)."""
    return {
        "ts": p.ts, "asset": p.asset, "signals": p.signals,
        "asset_names": p.asset_names, "signal_names": p.signal_names, "tz": p.tz,
        **{f: getattr(p, f) for f in BAR_FIELDS},
    }


def _bar_store(cols: Mapping[str, Any]) -> BarStore:
    """A BarStore of merged columns (see :func:`_merge_panels`)."""
    return BarStore(
        cols["ts"], cols["asset"], cols["open"], cols["high"], cols["low"], cols["close"],
        cols["volume"], cols["signals"], cols["asset_names"], cols["signal_names"], cols["tz"],
        _local_days(cols["ts"], cols["tz"]),
    )


def _signal_columns(store: BarStore) -> dict[str, np.ndarray]:
    sig = store.signal_array
    return {name: np.ascontiguousarray(sig[:, j]) for j, name in enumerate(store.signal_names)}


def _tail_rows(ts: np.ndarray, asset: np.ndarray, n: int) -> np.ndarray:
    """Rows to carry into the next chunk, in time order: every row of the last ``n``
    distinct timestamps, and the last ``n`` rows of each asset.

    Rows of one timestamp keep their order (feed order), as in one big store.
    """
    if ts.size == 0:
        return np.zeros(0, dtype=np.int64)
    in_order = bool(np.all(ts[1:] >= ts[:-1]))
    order = None if in_order else np.argsort(ts, kind="stable")
    t = ts if order is None else ts[order]
    a = asset if order is None else asset[order]
    starts = np.flatnonzero(t[1:] != t[:-1]) + 1  # first row of each timestamp but the first
    cut = int(starts[-n]) if starts.size >= n else 0
    # Assets with fewer than n rows from `cut` on also keep their last rows before it.
    n_assets = int(a.max()) + 1
    short = np.bincount(a[cut:], minlength=n_assets) < n
    early = np.flatnonzero(short[a[:cut]]) if cut else np.zeros(0, dtype=np.int64)
    if early.size:
        missing = n - np.bincount(a[cut:], minlength=n_assets)
        ea = a[early]
        by_asset = np.argsort(ea, kind="stable")
        ends = np.cumsum(np.bincount(ea, minlength=n_assets))
        from_end = ends[ea[by_asset]] - 1 - np.arange(early.size)
        early = np.sort(early[by_asset[from_end < missing[ea[by_asset]]]])
    rows = np.concatenate((early, np.arange(cut, ts.size)))
    return rows if order is None else order[rows]


class _Chunks:
    """The bars of a streamed run, one time window at a time.

    Each chunk's BarStore holds the window's bars of every feed (in feed
    order, as one in-memory run would) after the rows carried over from the
    previous chunk for history (:func:`_tail_rows`); the clock streams only
    the window's rows. Called by the engine when the previous chunk is done.
    """

    def __init__(self, feeds: Sequence[DataFeed], asset_names: tuple[str, ...],
                 signal_names: tuple[str, ...], tz: str | None, history_window: int,
                 with_columns: bool) -> None:
        self.feeds = feeds
        self.names = [str(i) for i in range(len(feeds))]
        self.asset_names = asset_names
        self.signal_names = signal_names
        self.tz = tz
        self.history_window = history_window
        self.with_columns = with_columns
        calendars = [f.calendar() for f in feeds]
        cal = calendars[0]
        for c in calendars[1:]:
            cal = np.union1d(cal, c)
        #: Every distinct bar timestamp of the run.
        self.calendar: np.ndarray = cal
        edges = {int(cal[0]), int(cal[-1]) + 1}
        for f in feeds:
            if f.streaming:
                for a, b in f.window_edges():
                    edges.update((a, b))
        bounds = sorted(edges)
        pos = np.searchsorted(cal, bounds)
        self._windows = iter([(bounds[i], bounds[i + 1]) for i in range(len(bounds) - 1)
                              if pos[i + 1] > pos[i]])
        self._prev: BarStore | None = None
        #: Called at every window boundary, before the next window is swapped in.
        self.on_boundary: Callable[[], None] | None = None
        #: The run's indicators, computed for each window after the first (None: none).
        self.indicators: IndicatorPlan | None = None
        # The next window is read by a worker thread while the engine runs this one.
        self._pool = ThreadPoolExecutor(max_workers=1)
        self._ahead: Future[list[BarPanel]] | None = None
        self._read_ahead()

    def _read_ahead(self) -> None:
        window = next(self._windows, None)
        self._ahead = (None if window is None else
                       self._pool.submit(lambda: [f.window(*window) for f in self.feeds]))

    def close(self) -> None:
        """Stop reading ahead (after the run, or when it failed)."""
        if self._ahead is not None:
            self._ahead.cancel()
            self._ahead = None
        self._pool.shutdown(wait=True)
        self._prev = None

    def _next_panels(self) -> list[BarPanel] | None:
        if self._ahead is None:
            return None
        panels = self._ahead.result()
        self._read_ahead()
        return panels

    def _build(
        self, panels: list[BarPanel]
    ) -> tuple[BarStore, list[tuple[np.ndarray, np.ndarray]]]:
        if len(panels) == 1 and panels[0].asset_names == self.asset_names:
            cols = _panel_columns(panels[0])
        else:
            cols = _merge_panels(panels, self.names, self.asset_names, self.signal_names)
        n_prefix = 0
        prev, keep = self._prev, None
        if prev is not None:
            keep = _tail_rows(prev.ts_array, prev.asset_array, self.history_window)
            n_prefix = keep.size
            cols["ts"] = np.concatenate((prev.ts_array[keep], cols["ts"]))
            cols["asset"] = np.concatenate((prev.asset_array[keep], cols["asset"]))
            for f in BAR_FIELDS:
                cols[f] = np.concatenate((getattr(prev, f + "_array")[keep], cols[f]))
            cols["signals"] = np.concatenate((prev.signal_array[keep], cols["signals"]))
        store = _bar_store(cols)
        if self.indicators is not None:  # new rows from the carried state; carried rows copied
            self.indicators.compute(store, n_prefix, prev, keep)
        self._prev = store
        bounds = n_prefix + np.cumsum([0] + [len(p) for p in panels])
        streams = []
        for k in range(len(panels)):
            a, b = int(bounds[k]), int(bounds[k + 1])
            uniq, offsets = _blocks(store.ts_array[a:b])
            streams.append((uniq, offsets + a))
        return store, streams

    def first(self) -> tuple[BarStore, list[tuple[np.ndarray, np.ndarray]]]:
        """The first chunk."""
        panels = self._next_panels()
        assert panels is not None  # the calendar is not empty, so neither is some window
        return self._build(panels)

    def __call__(self) -> tuple[BarStore, list[tuple[np.ndarray, np.ndarray]], Any] | None:
        """The next chunk with the slippage model's columns, or None after the last."""
        if self.on_boundary is not None:
            self.on_boundary()
        panels = self._next_panels()
        if panels is None:
            self._prev = None
            return None
        store, streams = self._build(panels)
        return store, streams, _signal_columns(store) if self.with_columns else None


def run_backtest(
    data: Any,
    strategy: Strategy,
    config: BacktestConfig | Mapping[str, Any] | None = None,
    *,
    signal_columns: Sequence[str] | None = None,
    context: Any = None,
    sources: Any = None,
    progress: bool | None = None,
    out: str | os.PathLike[str] | None = None,
    overwrite: bool = False,
    trade_from: Any = None,
    **feed_options: Any,
) -> BacktestResult:
    """Run a backtest in one call.

    Parameters
    ----------
    data : DataFeed, polars DataFrame/LazyFrame, or path
        The bars; frames and paths are wrapped in a feed with ``signal_columns``.
        A path is read by its suffix (:func:`~mlbacktest.data.feeds.open_feed`):
        parquet (a file, directory or glob), ``.csv``, ``.tsv`` or Arrow IPC
        (``.arrow``, ``.ipc``, ``.feather``); another suffix is a ``DataError``.
    strategy : Strategy
        The strategy instance.
    config : BacktestConfig or mapping, optional
        Knobs of the run.
    signal_columns : sequence of str, optional
        Signal columns when ``data`` is not a feed already.
    context : optional
        Market-wide series, as for :class:`BacktestEngine`.
    sources : SignalSource or sequence of SignalSource, optional
        Predictions delivered through the clock, as for :class:`BacktestEngine`.
    progress : bool, optional
        Progress bar, as for :meth:`BacktestEngine.run` (default: in a
        terminal, once the run has lasted two seconds).
    out : str or path-like, optional
        Save the result there as the run goes, as for :meth:`BacktestEngine.run`
        (the directory must be new, empty, or an earlier output with `overwrite`).
    overwrite : bool, default False
        With `out`: allow replacing an earlier mlbacktest output there.
    trade_from : timestamp, optional
        Warm up on the bars before it, trade from it on, as for :class:`BacktestEngine`.
    **feed_options
        Passed to the feed built from ``data`` (``signals=``,
        ``available_at_column=``, ``signal_delay=``, ``embargo=``, ...).
    """
    from pathlib import Path

    from mlbacktest.data.feeds import PolarsDataFeed, open_feed

    if isinstance(data, DataFeed) or (
        isinstance(data, (list, tuple)) and data and all(isinstance(d, DataFeed) for d in data)
    ):
        if feed_options:
            raise TypeError(f"feed options {sorted(feed_options)} need a frame or path, not a feed")
        feed = data
    elif isinstance(data, (str, Path)):  # parquet, CSV or Arrow IPC, by suffix
        feed = open_feed(data, signal_columns=signal_columns, **feed_options)
    else:
        feed = PolarsDataFeed(data, signal_columns=signal_columns, **feed_options)
    return BacktestEngine(feed, strategy, config, context=context, sources=sources,
                          trade_from=trade_from).run(
        progress=progress, out=out, overwrite=overwrite)
