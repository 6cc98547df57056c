"""LiveEngine: a strategy on a live (or replayed) feed, trading on paper or at a venue.

A live run is a streamed backtest whose chunks come from a
:class:`~mlbacktest.live.base.LiveFeed`: the compiled engine of a backtest
(:class:`mlbacktest._engine.Engine`) calls the loader here when it has done
every bar it holds, the loader blocks until the feed has the next timestamp,
and hands the engine that timestamp's bars (after the rows carried for
history and indicators, exactly as a streamed backtest carries them between
windows). Nothing of the run loop, the order book, the fill rules or the
ledger is implemented twice.

* On paper (:class:`PaperBroker`) the compiled broker matches the orders
  against the arriving bars with the backtest's fill rules, costs and
  account rules: a replay gives the fills of the backtest, bit for bit.
* At a venue (a :class:`~mlbacktest.live.base.LiveBroker`) the compiled
  broker runs with *external matching*: orders are validated, given ids and
  kept in the same book, but never matched against bars. Between two
  timestamps the loader sends the orders that became working to the venue
  (client order id ``f"{run_id}-{order_id}"``) and cancels those the
  strategy cancelled; the venue's fills and status changes are booked at the
  open of the next timestamp through the same ledger as an internal fill.
"""

from __future__ import annotations

import dataclasses
import os
import re
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from mlbacktest._clock import Clock
from mlbacktest._engine import BAR_PRIORITY, Engine
from mlbacktest._events import BarStore, annotate
from mlbacktest._portfolio import Portfolio
from mlbacktest.config import BacktestConfig, PositionRules
from mlbacktest.data.panel import BAR_FIELDS
from mlbacktest.engine import (
    _bar_store,
    _blocks,
    _new_broker,
    _overridden_hooks,
    _signal_columns,
    _tail_rows,
)
from mlbacktest.errors import ConfigError, DataError, MlBacktestError
from mlbacktest.indicators import IndicatorPlan
from mlbacktest.live.base import (
    BarBatch,
    ErrorEvent,
    LiveBroker,
    LiveFeed,
    OrderUpdate,
    VenueFill,
    VenueOrder,
)
from mlbacktest.results import BacktestResult
from mlbacktest.results.result import warn_if_mostly_rejected
from mlbacktest.strategy import ORDER_TYPES, TIME_IN_FORCE, Strategy

__all__ = ["LiveEngine", "PaperBroker", "ReconcileError", "run_live"]

_TYPE_NAMES = {v: k for k, v in ORDER_TYPES.items()}
_TIF_NAMES = {v: k for k, v in TIME_IN_FORCE.items()}
#: Order types and times in force a VenueOrder can carry.
_VENUE_TYPES = ("market", "limit", "stop", "stop_limit")
_VENUE_TIFS = ("gtc", "day")
# Order status codes of the compiled book (mlbacktest/_events.pxd).
_SUBMITTED, _ACCEPTED, _PARTIAL, _FILLED, _CANCELLED, _EXPIRED, _REJECTED = range(7)
_VENUE_END = {"cancelled": _CANCELLED, "canceled": _CANCELLED, "expired": _EXPIRED,
              "rejected": _REJECTED}


class ReconcileError(MlBacktestError, RuntimeError):
    """The journal of a run and the venue's account disagree: the run will not trade."""


class PaperBroker:
    """Paper trading in this process: the compiled broker of a backtest fills the orders.

    Orders are matched against the bars the feed delivers with exactly the
    backtest's fill rules, costs and account rules of the run's
    :class:`~mlbacktest.BacktestConfig` (``fill_at``, slippage, commission,
    margin, ...). Nothing leaves the process.
    """

    def __repr__(self) -> str:
        return "PaperBroker()"


class LiveEngine:
    """Runs a :class:`~mlbacktest.Strategy` on a live feed, on paper or at a venue.

    Parameters
    ----------
    feed : LiveFeed
        Where the bars come from (:class:`~mlbacktest.live.ReplayFeed`, a
        venue's feed, a :class:`~mlbacktest.live.SignalBuffer`...).
    strategy : Strategy
        The strategy instance (a new one: a run changes its state).
    config : BacktestConfig or mapping, optional
        The run's rules, as for a backtest. ``history_window`` bounds
        ``history()`` and the rows kept for indicators.
    broker : PaperBroker or LiveBroker, optional
        :class:`PaperBroker` (default) fills in process; a
        :class:`~mlbacktest.live.base.LiveBroker` sends the orders to a venue.
    run_id : str, optional
        Prefix of the client order ids sent to a venue (letters, digits,
        ``_`` and ``.``; default ``"mlbt"``). Keep it when restarting a run.
    context : ContextFrame or polars DataFrame, optional
        Market-wide series, as for a backtest.
    max_batch : int, optional
        On paper, the most timestamps handed to the engine at once when the
        feed has several ready (a fast replay): default 4096. A venue run
        always takes one timestamp at a time (orders are sent between
        timestamps).
    poll_interval : float, default 0.5
        Seconds the loader waits for the feed before checking again.
    stale_after : float, default 60.0
        Seconds without a bar after which a ``stale_data`` ErrorEvent is
        delivered (then again after each further such period).

    Notes
    -----
    ``Strategy.schedule`` needs the calendar in advance: it works when the
    feed has a ``calendar()`` method (a :class:`~mlbacktest.live.ReplayFeed`
    has one) and raises otherwise; ``schedule_at`` always works. Timers fire
    through the clock in order with the bars, so in real time a timer fires
    when the first bar after it arrives.
    """

    def __init__(
        self,
        feed: LiveFeed,
        strategy: Strategy,
        config: BacktestConfig | Mapping[str, Any] | None = None,
        *,
        broker: PaperBroker | LiveBroker | None = None,
        run_id: str = "mlbt",
        context: Any = None,
        max_batch: int | None = None,
        poll_interval: float = 0.5,
        stale_after: float = 60.0,
    ) -> None:
        if not isinstance(feed, LiveFeed):
            raise TypeError(f"feed must be a LiveFeed, got {type(feed).__name__}")
        if not isinstance(strategy, Strategy):
            raise TypeError(f"strategy must be a Strategy instance, got {type(strategy).__name__}")
        if config is None:
            config = BacktestConfig()
        elif isinstance(config, Mapping):
            config = BacktestConfig.from_dict(config)
        elif not isinstance(config, BacktestConfig):
            raise ConfigError(
                f"config must be a BacktestConfig or a mapping, got {type(config).__name__}")
        if broker is None:
            broker = PaperBroker()
        if not isinstance(broker, (PaperBroker, LiveBroker)):
            raise TypeError(f"broker must be a PaperBroker or a LiveBroker, got "
                            f"{type(broker).__name__}")
        if not isinstance(run_id, str) or not re.fullmatch(r"[A-Za-z0-9_.]{1,40}", run_id):
            raise ConfigError(f"run_id must be 1 to 40 letters, digits, '_' or '.', got {run_id!r}")
        self.venue: LiveBroker | None = broker if isinstance(broker, LiveBroker) else None
        if self.venue is not None:
            if config.latency_bars:
                raise ConfigError("latency_bars must be 0 with a venue: the venue's own delay "
                                  "is the latency")
            if isinstance(config.position_rules, PositionRules):
                raise ConfigError("position_rules need the simulator's matching; with a venue "
                                  "place the exits as orders (a bracket)")
            if config.fill_at != "next_open":
                raise ConfigError(f"fill_at={config.fill_at!r} is a simulator rule; with a venue "
                                  "leave it at 'next_open' (the venue decides when orders fill)")
        if max_batch is None:
            max_batch = 4096
        if not isinstance(max_batch, int) or max_batch < 1:
            raise ConfigError(f"max_batch must be an int >= 1, got {max_batch!r}")
        if not poll_interval > 0 or not stale_after > 0:
            raise ConfigError("poll_interval and stale_after must be > 0 seconds")
        self.feed = feed
        self.strategy = strategy
        self.config = config
        self.broker = broker
        self.run_id = run_id
        self.context_arg = context
        self.max_batch = 1 if self.venue is not None else max_batch
        self.poll_interval = float(poll_interval)
        self.stale_after = float(stale_after)
        self._ran = False
        #: Incidents waiting to be delivered to ``on_error``, in order.
        self.pending_errors: list[ErrorEvent] = []
        #: Every incident delivered, in order.
        self.errors: list[ErrorEvent] = []
        self.stopped_by: ErrorEvent | None = None
        self._engine: Engine | None = None
        self._cbroker: Any = None
        self._on_error = (strategy.on_error
                          if type(strategy).on_error is not Strategy.on_error else None)
        # venue bookkeeping
        self._unsent: list[int] = []          # order ids not yet sent (waiting or new)
        self._sent_open: dict[int, None] = {}  # ids sent and working here, in id order
        self._n_seen = 0                      # orders of the book looked at so far
        self._seen_fills: set[str] = set()
        self.submitted: list[VenueOrder] = []
        self._venue_ended: set[int] = set()   # ids the venue ended (no cancel to send)
        self._asset_names: tuple[str, ...] = ()
        self.journal: Any = None

    # ------------------------------------------------------------ ids
    def client_order_id(self, order_id: int) -> str:
        """The client order id of the book's order ``order_id`` at the venue."""
        return f"{self.run_id}-{order_id}"

    def _order_id(self, client_order_id: str) -> int | None:
        prefix, _, rest = client_order_id.rpartition("-")
        if prefix != self.run_id or not rest.isdigit():
            return None
        oid = int(rest)
        return oid if self._cbroker is not None and oid < len(self._cbroker) else None

    # ------------------------------------------------------------ errors
    def report(self, event: ErrorEvent) -> None:
        """Queue an incident for ``on_error`` (delivered before the next timestamp)."""
        self.pending_errors.append(event)

    def _now(self) -> int:
        e = self._engine
        if e is None:
            return int(np.iinfo(np.int64).min)
        return int(e.current_ts if e.started else e.first_ts)

    def deliver_errors(self) -> None:
        """Hand the pending incidents to ``on_error``, in order (between timestamps).

        Each event is stamped with the clock time it is delivered at: the
        last timestamp the engine has done (its ``ts`` as reported is replaced).
        """
        while self.pending_errors:
            event = dataclasses.replace(self.pending_errors.pop(0), ts=self._now())
            self.errors.append(event)
            if self._on_error is None:
                continue
            try:
                self._on_error(event)
            except BaseException as exc:
                store = None if self._engine is None else self._engine.store
                when = None if store is None or event.ts < 0 else store.to_datetime(event.ts)
                annotate(exc, "on_error", when, event.asset)
                raise

    # ------------------------------------------------------------ venue
    def send_orders(self) -> None:
        """Send the orders that became working since the last call; cancel the ended ones."""
        venue, book = self.venue, self._cbroker
        if venue is None or book is None:
            return
        n = len(book)
        if n > self._n_seen:
            self._unsent.extend(range(self._n_seen, n))
            self._n_seen = n
        names = self._asset_names
        still: list[int] = []
        for oid in self._unsent:
            asset, otype, tif, qty, limit, stop, status, released, filled = book.order_fields(oid)
            if status >= _FILLED:
                continue  # ended before it was sent (cancelled, replaced, its parent closed)
            if status == _SUBMITTED or not released:
                still.append(oid)  # in transit (latency) or waiting for its parent
                continue
            tname, tifname = _TYPE_NAMES.get(otype, "?"), _TIF_NAMES.get(tif, "?")
            if tname not in _VENUE_TYPES or tifname not in _VENUE_TIFS:
                book.queue_external_status(oid, _REJECTED, self._now())
                self.report(ErrorEvent(
                    self._now(), "engine", "rejected",
                    f"order {oid}: a venue takes {'/'.join(_VENUE_TYPES)} orders with time in "
                    f"force {'/'.join(_VENUE_TIFS)}, not {tname} {tifname}",
                    asset=names[asset], order_id=self.client_order_id(oid)))
                continue
            order = VenueOrder(self.client_order_id(oid), names[asset], qty - filled, tname,
                               limit, stop, tifname)
            self._journal_order(oid, order)
            venue.submit(order)
            self.submitted.append(order)
            self._sent_open[oid] = None
        self._unsent = still
        for oid in list(self._sent_open):
            status = book.order_fields(oid)[6]
            if status >= _FILLED:
                del self._sent_open[oid]
                if status in (_CANCELLED, _EXPIRED, _REJECTED) and oid not in self._venue_ended:
                    venue.cancel(self.client_order_id(oid))
                    self._journal_cancel(oid)

    def poll_venue(self) -> None:
        """Queue the venue's fills and status changes; report its incidents."""
        venue, book = self.venue, self._cbroker
        if venue is None or book is None:
            return
        for ev in venue.poll_events(0.0):
            if isinstance(ev, ErrorEvent):
                self.report(ev)
                continue
            oid = self._order_id(ev.client_order_id)
            if oid is None:
                self.report(ErrorEvent(self._now(), "broker", "venue",
                                       f"the venue reported {type(ev).__name__} for unknown "
                                       f"order {ev.client_order_id!r}",
                                       order_id=ev.client_order_id))
                continue
            if isinstance(ev, VenueFill):
                if ev.fill_id in self._seen_fills:
                    continue
                self._seen_fills.add(ev.fill_id)
                book.queue_external_fill(oid, float(ev.quantity), float(ev.price),
                                         float(ev.commission), int(ev.ts))
                self._journal_fill(oid, ev)
            elif isinstance(ev, OrderUpdate):
                status = _VENUE_END.get(ev.status)
                if status is not None:
                    self._venue_ended.add(oid)
                    book.queue_external_status(oid, status, int(ev.ts))
                    self._journal_status(oid, ev)
                    if ev.status == "rejected":
                        self.report(ErrorEvent(
                            self._now(), "broker", "rejected",
                            f"the venue rejected order {ev.client_order_id}: {ev.reason}",
                            order_id=ev.client_order_id))

    # ------------------------------------------------------------ journal hooks
    def _journal_order(self, oid: int, order: VenueOrder) -> None:
        if self.journal is not None:
            self.journal.order(oid, order, self._now())

    def _journal_cancel(self, oid: int) -> None:
        if self.journal is not None:
            self.journal.cancel(oid, self._now())

    def _journal_fill(self, oid: int, fill: VenueFill) -> None:
        if self.journal is not None:
            self.journal.fill(oid, fill)

    def _journal_status(self, oid: int, update: OrderUpdate) -> None:
        if self.journal is not None:
            self.journal.status(oid, update)

    # ------------------------------------------------------------ between timestamps
    def after_step(self) -> None:
        """Called by the loader once a timestamp (or a chunk) is done."""
        self.send_orders()

    def before_step(self) -> None:
        """Called by the loader when the next bars are in, before the engine takes them."""
        self.poll_venue()
        self.deliver_errors()
        self.send_orders()  # orders placed in on_error

    # ------------------------------------------------------------ run
    def run(
        self,
        *,
        out: str | os.PathLike[str] | None = None,
        overwrite: bool = False,
    ) -> BacktestResult:
        """Run until the feed ends (or a kill switch or the strategy stops it).

        Parameters
        ----------
        out : str or path-like, optional
            Save the result there as the run goes, as for a backtest
            (equity and fills are appended after every chunk).
        overwrite : bool, default False
            With `out`: allow replacing an earlier mlbacktest output there.

        Returns
        -------
        BacktestResult
            The run's result, like a backtest's.
        """
        if self._ran:
            raise RuntimeError("this LiveEngine has already run; build a new one (with a new "
                               "strategy instance) to run again")
        if self.strategy._engine is not None:
            raise RuntimeError(
                f"this {type(self.strategy).__name__} instance has already been run by an "
                "engine; give each run a new strategy instance")
        self._ran = True
        if out is not None:
            from mlbacktest.results.io import ResultWriter, check_output_dir

            check_output_dir(out, overwrite, "run(out=...)")
        cfg = self.config
        feed = self.feed
        feed.start()
        try:
            if self.venue is not None:
                self.venue.connect()
            try:
                return self._run(cfg, feed, out, overwrite)
            finally:
                if self.venue is not None:
                    self.venue.close()
        finally:
            self.feed.stop()

    def _run(self, cfg: BacktestConfig, feed: LiveFeed, out: Any, overwrite: bool) -> BacktestResult:
        from mlbacktest.results.io import ResultWriter

        self._asset_names = tuple(feed.asset_names)
        if not self._asset_names:
            raise DataError("the feed names no assets (asset_names is empty after start())")
        if list(self._asset_names) != sorted(set(self._asset_names)):
            raise DataError("the feed's asset_names must be sorted and distinct, got "
                            f"{list(self._asset_names)[:10]}")
        loader = _LiveLoader(self, feed, cfg.history_window, self._reads_columns(feed))
        first = loader.first()
        if first is None:
            raise DataError("the feed ended before its first bar")
        store, streams = first
        clock = Clock()
        for k, (uniq, offsets) in enumerate(streams):
            clock.add_stream(uniq, offsets, BAR_PRIORITY + k)
        portfolio = Portfolio(store.n_assets, cfg.initial_cash, 1024)
        hooks = _overridden_hooks(self.strategy)
        columns = None
        if loader.with_columns:
            from mlbacktest._costs import ColumnSource

            columns = ColumnSource(_signal_columns(store), n_rows=store.n_rows)
        broker = _new_broker(cfg, store, portfolio, columns, "on_order" in hooks)
        if self.venue is not None:
            broker.set_external(True)
        self._cbroker = broker
        calendar_fn = getattr(feed, "calendar", None)
        calendar = (np.asarray(calendar_fn(), dtype=np.int64) if callable(calendar_fn)
                    else None)
        context = None
        if self.context_arg is not None:
            from mlbacktest.data.context import ContextFrame

            context = (self.context_arg if isinstance(self.context_arg, ContextFrame)
                       else ContextFrame(self.context_arg))
            if context.tz != store.tz:
                raise DataError(f"context timestamps are {context.tz or 'naive'} but the bars "
                                f"are {store.tz or 'naive'}: mixed time zones")
        engine = Engine(store, clock, broker, portfolio, self.strategy, hooks, context,
                        cfg.latency_ns, cfg.latency_bars, (), 1, loader=loader,
                        calendar=calendar if calendar is not None else np.zeros(0, np.int64),
                        history_limit=cfg.history_window)
        self._engine = engine
        fields: dict[str, Any] = dict(
            asset_names=store.asset_names, tz=store.tz, initial_cash=cfg.initial_cash,
            config=cfg, periods_per_year=cfg.periods_per_year, risk_free=cfg.risk_free)
        writer = None

        def save_so_far() -> None:
            assert writer is not None
            writer.append("equity", portfolio.take_records())
            writer.append("fills", broker.take_fills())

        if out is not None:
            writer = ResultWriter(out, overwrite=overwrite)
            loader.on_boundary = save_so_far
        strategy = self.strategy
        try:
            strategy._bind(engine, cfg.fractional)
            try:
                strategy.on_start()
            except BaseException as exc:
                annotate(exc, "on_start", None, None)
                raise
            loader.indicators = strategy._start_indicators(cfg.history_window)
            engine.flush_order_events()
            self.deliver_errors()
            self.send_orders()
            engine.run()
            try:
                strategy.on_end()
            except BaseException as exc:
                annotate(exc, "on_end", None, None)
                raise
            self.send_orders()  # cancels of on_end
            if writer is not None:
                save_so_far()
                saved = writer.finish(BacktestResult, broker.to_arrays(), **fields)
                return warn_if_mostly_rejected(saved)  # type: ignore[no-any-return]
        except BaseException:
            if writer is not None:
                writer.abort()
            raise
        finally:
            if writer is not None:
                writer.close()
        return warn_if_mostly_rejected(BacktestResult(  # type: ignore[no-any-return]
            equity=portfolio.record_arrays(), fills=broker.fill_arrays(),
            orders=broker.to_arrays(), **fields))

    def _reads_columns(self, feed: LiveFeed) -> bool:
        from mlbacktest._costs import FixedBpsSlippage, SlippageModel

        return (type(self.config.slippage_model) not in (SlippageModel, FixedBpsSlippage)
                and bool(feed.signal_names))

    @property
    def stopped(self) -> bool:
        """Whether a kill switch (or a stop request) ended the run."""
        return self.stopped_by is not None


class _LiveLoader:
    """The loader the compiled engine calls for its next chunk: the feed's next bars.

    Each chunk's store holds the rows carried over from the previous one for
    history and indicators (:func:`mlbacktest.engine._tail_rows`, as between
    the windows of a streamed backtest) and then the new timestamps' rows.
    """

    def __init__(self, run: LiveEngine, feed: LiveFeed, history_window: int,
                 with_columns: bool) -> None:
        self.run = run
        self.feed = feed
        self.asset_names = tuple(feed.asset_names)
        self.signal_names = tuple(feed.signal_names)
        self.n_assets = len(self.asset_names)
        self.tz = feed.tz
        self.history_window = history_window
        self.with_columns = with_columns
        self.indicators: IndicatorPlan | None = None
        self.on_boundary: Any = None
        self._prev: BarStore | None = None
        self._held: BarBatch | None = None
        self._held_errors: list[ErrorEvent] = []  # reported before the held batch
        self._ended = False
        self.last_ts: int | None = None

    # ------------------------------------------------------------ reading the feed
    def _feed_errors(self, hold: bool = False) -> bool:
        """Take the feed's incidents; ``hold``: keep them for after the current chunk."""
        errs = self.feed.take_errors()
        if hold:
            self._held_errors.extend(errs)
        else:
            for e in errs:
                self.run.report(e)
        return bool(errs)

    def _check(self, b: BarBatch) -> BarBatch:
        if not isinstance(b, BarBatch):
            raise TypeError(f"LiveFeed.next_batch must return a BarBatch or None, got "
                            f"{type(b).__name__}")
        ts = int(b.ts)
        when = np.datetime64(ts, "ns")
        if self.last_ts is not None and ts <= self.last_ts:
            raise DataError(f"the feed went back in time: a batch at {when} after "
                            f"{np.datetime64(self.last_ts, 'ns')}")
        n = len(b)
        if n == 0:
            raise DataError(f"the feed returned an empty batch at {when}")
        a = np.asarray(b.asset)
        if a.ndim != 1 or (a.size > 1 and not np.all(a[1:] > a[:-1])) or a[0] < 0 \
                or a[-1] >= self.n_assets:
            raise DataError(f"the batch at {when} has asset ids {a.tolist()[:10]}: they must be "
                            f"strictly increasing indices of the feed's {self.n_assets} assets")
        sig = np.asarray(b.signals)
        if sig.shape != (n, len(self.signal_names)):
            raise DataError(f"the batch at {when} has signals of shape {sig.shape}, expected "
                            f"({n}, {len(self.signal_names)})")
        self.last_ts = ts
        return b

    def _wait(self) -> BarBatch | None:
        """Block until the feed has the next batch (None: it ended)."""
        waited = 0.0
        while True:
            try:
                b = self.feed.next_batch(self.run.poll_interval)
            except TimeoutError:
                self._feed_errors()
                waited += self.run.poll_interval
                if waited >= self.run.stale_after:
                    waited = 0.0
                    self.run.report(ErrorEvent(
                        self.run._now(), "engine", "stale_data",
                        f"no bar for {self.run.stale_after:g} s"))
                self.run.poll_venue()
                self.run.deliver_errors()
                self.run.send_orders()
                if self.run.stopped:
                    return None
                continue
            self._feed_errors()
            return None if b is None else self._check(b)

    def _collect(self) -> list[BarBatch] | None:
        if self._held is not None:
            batches = [self._held]
            self._held = None
        else:
            if self._ended:
                return None
            first = self._wait()
            if first is None:
                self._ended = True
                return None
            batches = [first]
        while len(batches) < self.run.max_batch and not self._ended:
            try:
                b = self.feed.next_batch(0.0)
            except TimeoutError:
                break
            had_errors = self._feed_errors(hold=True)
            if b is None:
                self._ended = True
                break
            b = self._check(b)
            if had_errors:  # the incidents come before this batch's bars
                self._held = b
                break
            batches.append(b)
        return batches

    # ------------------------------------------------------------ building chunks
    def _build(self, batches: list[BarBatch]) -> tuple[BarStore, list[tuple[np.ndarray, np.ndarray]]]:
        lengths = np.fromiter((len(b) for b in batches), dtype=np.int64, count=len(batches))
        times = np.fromiter((b.ts for b in batches), dtype=np.int64, count=len(batches))
        if len(batches) == 1:
            b = batches[0]
            cols: dict[str, Any] = {
                "ts": np.full(len(b), b.ts, dtype=np.int64),
                "asset": np.asarray(b.asset, dtype=np.int32),
                **{f: np.asarray(getattr(b, f), dtype=np.float64) for f in BAR_FIELDS},
                "signals": np.asarray(b.signals, dtype=np.float64).reshape(
                    len(b), len(self.signal_names)),
            }
        else:
            cols = {
                "ts": np.repeat(times, lengths),
                "asset": np.concatenate([b.asset for b in batches]).astype(np.int32),
                **{f: np.concatenate([getattr(b, f) for b in batches]).astype(np.float64)
                   for f in BAR_FIELDS},
                "signals": np.concatenate([np.asarray(b.signals, dtype=np.float64).reshape(
                    len(b), len(self.signal_names)) for b in batches]),
            }
        _check_values(cols, self.asset_names)
        cols.update(asset_names=self.asset_names, signal_names=self.signal_names, tz=self.tz)
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
        if self.indicators is not None:
            self.indicators.compute(store, n_prefix, prev, keep)
        self._prev = store
        offsets = np.concatenate(([0], np.cumsum(lengths))).astype(np.int64) + n_prefix
        return store, [(times, offsets)]

    def first(self) -> tuple[BarStore, list[tuple[np.ndarray, np.ndarray]]] | None:
        """The first chunk (before the engine exists)."""
        batches = self._collect()
        if batches is None:
            return None
        return self._build(batches)

    def __call__(self) -> tuple[BarStore, list[tuple[np.ndarray, np.ndarray]], Any] | None:
        run = self.run
        for e in self._held_errors:
            run.report(e)
        self._held_errors = []
        run.after_step()
        if self.on_boundary is not None:
            self.on_boundary()
        if run.stopped:
            return None
        batches = self._collect()
        run.before_step()
        if batches is None or run.stopped:
            if batches is not None:
                self._held = None
            self._prev = None
            return None
        store, streams = self._build(batches)
        return store, streams, _signal_columns(store) if self.with_columns else None


def _check_values(cols: Mapping[str, np.ndarray], asset_names: Sequence[str]) -> None:
    """Bar values as a feed validates them: DataError naming the asset and timestamp."""
    o, h, lo, c, v = (cols[f] for f in BAR_FIELDS)
    with np.errstate(invalid="ignore"):
        bad = ~(np.isfinite(o) & np.isfinite(h) & np.isfinite(lo) & np.isfinite(c)
                & (o > 0) & (h > 0) & (lo > 0) & (c > 0)
                & (lo <= o) & (lo <= c) & (o <= h) & (c <= h)
                & np.isfinite(v) & (v >= 0))
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise DataError(
            f"bad bar for asset {asset_names[int(cols['asset'][i])]!r} at "
            f"{np.datetime64(int(cols['ts'][i]), 'ns')}: open={o[i]} high={h[i]} low={lo[i]} "
            f"close={c[i]} volume={v[i]} (prices must be finite and > 0, low <= open, close <= "
            f"high, volume finite and >= 0); {int(bad.sum())} such rows")


def run_live(feed: LiveFeed, strategy: Strategy, config: Any = None, **options: Any) -> BacktestResult:
    """Build a :class:`LiveEngine` and run it (``out=`` and ``overwrite=`` go to ``run``)."""
    run_opts = {k: options.pop(k) for k in ("out", "overwrite") if k in options}
    return LiveEngine(feed, strategy, config, **options).run(**run_opts)

