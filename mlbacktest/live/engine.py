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
import json
import math
import os
import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from mlbacktest._clock import Clock
from mlbacktest._engine import BAR_PRIORITY, Engine
from mlbacktest._events import BarStore, annotate
from mlbacktest._portfolio import Portfolio
from mlbacktest.config import BacktestConfig, PositionRules
from mlbacktest.data.panel import BAR_FIELDS
from mlbacktest.engine import (
    _as_config,
    _local_days,
    _new_broker,
    _overridden_hooks,
    _signal_columns,
    _start_strategy,
    _tail_rows,
)
from mlbacktest.errors import ConfigError, DataError
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
from mlbacktest.live.journal import Journal, JournalState, ReconcileError
from mlbacktest.live.killswitch import KillSwitches, _Monitor
from mlbacktest.results import BacktestResult
from mlbacktest.results.result import warn_if_mostly_rejected
from mlbacktest.strategy import ORDER_TYPES, TIME_IN_FORCE, Strategy

__all__ = ["JOURNAL_NAME", "LiveEngine", "PaperBroker", "ReconcileError", "run_live"]

#: File name of a run's journal in its output directory.
JOURNAL_NAME = "journal.jsonl"

_TYPE_NAMES = {v: k for k, v in ORDER_TYPES.items()}
_TIF_NAMES = {v: k for k, v in TIME_IN_FORCE.items()}
#: Order types and times in force a VenueOrder can carry.
_VENUE_TYPES = ("market", "limit", "stop", "stop_limit")
_VENUE_TIFS = ("gtc", "day")
# Order status codes of the compiled book (mlbacktest/_events.pxd).
_SUBMITTED, _ACCEPTED, _PARTIAL, _FILLED, _CANCELLED, _EXPIRED, _REJECTED = range(7)
_VENUE_END = {"cancelled": _CANCELLED, "canceled": _CANCELLED, "expired": _EXPIRED,
              "rejected": _REJECTED}


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
    kill_switches : KillSwitches or mapping, optional
        Safety limits (max loss, order rate, position size) that cancel the
        open orders and stop the run when hit; see :class:`KillSwitches`.

    Attributes
    ----------
    errors : list of ErrorEvent
        Every incident delivered to ``on_error`` so far, in order.
    stopped_by : ErrorEvent or None
        The kill switch event that stopped the run, if one did.
    submitted : list of VenueOrder
        The orders sent to the venue, in order.
    journal : Journal or None
        The run's journal (with ``run(out=...)``).

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
        kill_switches: KillSwitches | Mapping[str, Any] | None = None,
    ) -> None:
        if not isinstance(feed, LiveFeed):
            raise TypeError(f"feed must be a LiveFeed, got {type(feed).__name__}")
        if not isinstance(strategy, Strategy):
            raise TypeError(f"strategy must be a Strategy instance, got {type(strategy).__name__}")
        config = _as_config(config)
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
        self.kill_switches = KillSwitches.coerce(kill_switches)
        if max_batch is None:
            max_batch = 1 if self.kill_switches is not None else 4096
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
        if self.kill_switches is not None and max_batch != 1:
            raise ConfigError("kill switches are checked after every timestamp: leave max_batch "
                              "at 1 (its default with kill switches)")
        self.max_batch = 1 if self.venue is not None else max_batch
        self._monitor: _Monitor | None = None
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
        self.journal: Journal | None = None
        self._jstate: JournalState | None = None  # what the journal said at start
        self._catchup_until: int | None = None    # last timestamp the journal has (restart)
        self._replay: list[dict[str, Any]] = []   # journaled venue records still to book
        self._matched: set[int] = set()           # journaled orders placed again
        self._resend: list[int] = []
        self._recancel: list[int] = []
        self._n_fills_done = 0                    # fills of the book already journaled
        self._n_orders_done = 0                   # paper: orders of the book already journaled
        self._n_paper = 0                         # paper fills journaled so far

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
        if self._engine is None:
            return  # before on_start: kept until the strategy is bound
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
    @property
    def catching_up(self) -> bool:
        """Whether a restarted run is replaying the timestamps its journal already has."""
        return self._catchup_until is not None

    def send_orders(self) -> None:
        """Send the orders that became working since the last call; cancel the ended ones.

        While a restarted run catches up, orders the journal says were sent
        are matched against it (same id, asset and quantity) and not sent again.
        """
        venue, book = self.venue, self._cbroker
        if venue is None or book is None:
            return
        n = len(book)
        if n > self._n_seen:
            self._unsent.extend(range(self._n_seen, n))
            self._n_seen = n
        names = self._asset_names
        catching_up = self.catching_up
        jstate = self._jstate
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
            if self.stopped:  # after a kill switch nothing new leaves
                book.queue_external_status(oid, _CANCELLED, self._now())
                continue
            order = VenueOrder(self.client_order_id(oid), names[asset], qty - filled, tname,
                               limit, stop, tifname)
            if jstate is not None and oid in jstate.orders:
                self._match_journal(oid, order)  # sent before the restart
                self._sent_open[oid] = None
                continue
            if catching_up:
                still.append(oid)  # placed again but never sent: sent once caught up
                continue
            if self.journal is not None:  # written ahead: a crash after it resends the same id
                self.journal.append({
                    "k": "order", "id": oid, "cid": order.client_order_id, "asset": order.asset,
                    "qty": order.quantity, "type": tname, "limit": limit, "stop": stop,
                    "tif": tifname, "ts": self._now()})
            venue.submit(order)
            self.submitted.append(order)
            self._sent_open[oid] = None
        self._unsent = still
        for oid in list(self._sent_open):
            status = book.order_fields(oid)[6]
            if status < _FILLED:
                continue
            if status == _FILLED or oid in self._venue_ended or (
                    jstate is not None and oid in jstate.cancel_sent):
                del self._sent_open[oid]
                continue
            if catching_up:
                continue  # the cancel goes out once caught up
            del self._sent_open[oid]
            if self.journal is not None:
                self.journal.append({"k": "cancel", "id": oid, "ts": self._now()})
            venue.cancel(self.client_order_id(oid))

    def _match_journal(self, oid: int, order: VenueOrder) -> None:
        rec = self._jstate.orders[oid] if self._jstate is not None else {}
        if (rec.get("asset"), rec.get("qty"), rec.get("type")) != \
                (order.asset, order.quantity, order.order_type):
            raise ReconcileError(
                f"on restart the strategy placed order {oid} as {order.order_type} "
                f"{order.quantity} {order.asset}, but the journal has {rec.get('type')} "
                f"{rec.get('qty')} {rec.get('asset')}: the strategy is not deterministic over "
                "the replayed bars, so the run cannot resume")
        self._matched.add(oid)

    def poll_venue(self, at: int) -> None:
        """Queue the venue's fills and status changes for the step at ``at``; report incidents."""
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
                if self.journal is not None:
                    self.journal.append({
                        "k": "fill", "id": oid, "fill_id": ev.fill_id, "asset": ev.asset,
                        "qty": float(ev.quantity), "price": float(ev.price),
                        "commission": float(ev.commission), "ts": int(ev.ts), "at": at})
            elif isinstance(ev, OrderUpdate):
                status = _VENUE_END.get(ev.status)
                if status is not None:
                    self._venue_ended.add(oid)
                    book.queue_external_status(oid, status, int(ev.ts))
                    if self.journal is not None:
                        self.journal.append({"k": "status", "id": oid, "status": ev.status,
                                             "ts": int(ev.ts), "at": at})
                    if ev.status == "rejected":
                        self.report(ErrorEvent(
                            self._now(), "broker", "rejected",
                            f"the venue rejected order {ev.client_order_id}: {ev.reason}",
                            order_id=ev.client_order_id))

    # ------------------------------------------------------------ restart
    def _reconcile(self) -> None:
        """Compare the journal with the venue's account; ReconcileError on a mismatch."""
        assert self.journal is not None
        st = self._jstate = self.journal.state()
        # a journal cut before its first timestamp was done still has its orders to match
        self._catchup_until = (st.last_bar if st.last_bar is not None
                               else int(np.iinfo(np.int64).min))
        if self.venue is not None:  # on paper the fills are computed again, and checked
            self._replay = sorted(st.fills + st.statuses, key=lambda r: r["at"])
        for r in st.fills:
            self._seen_fills.add(str(r["fill_id"]))
        for r in st.statuses:
            self._venue_ended.add(int(r["id"]))
        if self.venue is None:
            return
        acct = self.venue.account()
        for asset in sorted(set(st.positions) | set(acct.positions)):
            mine, theirs = st.positions.get(asset, 0.0), float(acct.positions.get(asset, 0.0))
            if not math.isclose(mine, theirs, rel_tol=1e-9, abs_tol=1e-9):
                raise ReconcileError(
                    f"asset {asset!r}: the journal holds {mine:g} but the venue reports "
                    f"{theirs:g}; the run will not trade until they agree")
        if not math.isclose(st.cash, float(acct.cash), rel_tol=1e-9, abs_tol=1e-6):
            raise ReconcileError(f"cash: the journal has {st.cash!r} but the venue reports "
                                 f"{float(acct.cash)!r}; the run will not trade until they agree")
        ours = {o.client_order_id for o in acct.open_orders
                if self._order_id_any(o.client_order_id) is not None}
        known = {self.client_order_id(i) for i in st.orders}
        stray = sorted(ours - known)
        if stray:
            raise ReconcileError(f"the venue has open orders {stray} of this run that the "
                                 "journal does not know; the run will not trade")
        # Sent but never arrived (a crash between the journal and the venue): resent,
        # the venue ignores a client order id it has seen. A cancel that did not
        # arrive is sent again.
        self._resend = [i for i in sorted(st.open_ids)
                        if self.client_order_id(i) not in ours and i not in st.cancel_sent]
        self._recancel = [i for i in sorted(st.cancel_sent) if self.client_order_id(i) in ours]

    def _order_id_any(self, client_order_id: str) -> int | None:
        prefix, _, rest = client_order_id.rpartition("-")
        return int(rest) if prefix == self.run_id and rest.isdigit() else None

    def _finish_catchup(self) -> None:
        """The run is past the journal: check what was replayed, send what was pending."""
        st = self._jstate
        assert st is not None
        self._catchup_until = None
        if self.venue is None and self._n_paper != len(st.fills):
            raise ReconcileError(
                f"replaying the journal's bars gave {self._n_paper} fills but the journal has "
                f"{len(st.fills)}: the data or the strategy changed, the run cannot resume")
        missing = sorted(set(st.orders) - self._matched)
        if missing:
            raise ReconcileError(
                f"the journal has orders {missing[:10]} that the strategy did not place again "
                "while replaying the journal's bars: it is not deterministic, the run cannot "
                "resume")
        if self.venue is not None:
            for oid in self._resend:
                if oid in self._sent_open:
                    rec = st.orders[oid]
                    self.venue.submit(VenueOrder(rec["cid"], rec["asset"], rec["qty"],
                                                 rec["type"], rec["limit"], rec["stop"],
                                                 rec["tif"]))
            for oid in self._recancel:
                self.venue.cancel(self.client_order_id(oid))
        if self.journal is not None:
            self.journal.append({"k": "restart", "ts": self._now()})

    def _replay_journal(self, upto: int) -> None:
        """Queue the journal's venue records booked at or before ``upto`` (catching up)."""
        book = self._cbroker
        while self._replay and self._replay[0]["at"] is not None and \
                self._replay[0]["at"] <= upto:
            r = self._replay.pop(0)
            if r["k"] == "fill":
                book.queue_external_fill(int(r["id"]), float(r["qty"]), float(r["price"]),
                                         float(r["commission"]), int(r["ts"]))
            else:
                book.queue_external_status(int(r["id"]), _VENUE_END[r["status"]], int(r["ts"]))

    def _journal_paper(self) -> None:
        """Paper: journal the orders placed and the fills booked since the last call.

        While a resumed run catches up they are compared with the journal's
        instead (a difference raises ReconcileError).
        """
        book = self._cbroker
        if self.journal is None or self.venue is not None or book is None:
            return
        st = self._jstate
        names = self._asset_names
        for oid in range(self._n_orders_done, len(book)):
            asset, otype, tif, qty, limit, stop = book.order_fields(oid)[:6]
            rec = {"k": "order", "id": oid, "cid": self.client_order_id(oid),
                   "asset": names[asset], "qty": qty, "type": _TYPE_NAMES.get(otype, "?"),
                   "limit": limit, "stop": stop, "tif": _TIF_NAMES.get(tif, "?")}
            if self.catching_up and st is not None:
                old = st.orders.get(oid)
                if old is None or json.dumps(old) != json.dumps(rec):
                    raise ReconcileError(
                        f"replaying the journal's bars placed order {rec} but the journal has "
                        f"{old}: the data or the strategy changed, the run cannot resume")
                self._matched.add(oid)
            else:
                self.journal.append(rec)
        self._n_orders_done = len(book)
        n = book.n_fills
        if n <= self._n_fills_done:
            return
        f = book.fill_arrays(self._n_fills_done)
        for i in range(n - self._n_fills_done):
            rec = {"k": "fill", "id": int(f["order_id"][i]), "fill_id": f"P{self._n_paper}",
                   "asset": names[int(f["asset"][i])], "qty": float(f["quantity"][i]),
                   "price": float(f["price"][i]), "commission": float(f["commission"][i]),
                   "ts": int(f["ts"][i]), "at": int(f["ts"][i])}
            self._n_paper += 1
            if self.catching_up and st is not None:
                old = st.fills[self._n_paper - 1] if self._n_paper <= len(st.fills) else None
                if old != rec:
                    raise ReconcileError(
                        f"replaying the journal's bars gave fill {rec} but the journal has {old}:"
                        " the data or the strategy changed, the run cannot resume")
            else:
                self.journal.append(rec)
        self._n_fills_done = n

    # ------------------------------------------------------------ between timestamps
    def check_kill_switches(self) -> None:
        """Stop the run when a limit is hit: cancel every open order, tell ``on_error``."""
        e, book = self._engine, self._cbroker
        if self._monitor is None or self.stopped or e is None or book is None or not e.started:
            return
        pf = e.portfolio
        why = self._monitor.check(int(e.current_ts), float(pf.equity()), len(book),
                                  pf.position_array, pf.last_price_array)
        if why is None:
            return
        event = ErrorEvent(self._now(), "kill_switch", "kill_switch",
                           f"{why}; open orders cancelled, the run stops")
        self.stopped_by = event
        for oid in book.open_order_ids():
            e.cancel(oid)
        self.report(event)
        self.deliver_errors()
        for oid in book.open_order_ids():  # placed by on_error: never sent
            e.cancel(oid)
        e.flush_order_events()  # on_order hears of the cancels

    def after_step(self) -> None:
        """Called by the loader once a timestamp (or a chunk) is done."""
        self.check_kill_switches()
        self.send_orders()
        self._journal_paper()
        if self.journal is not None and not self.catching_up:
            e = self._engine
            if e is not None and e.started:
                self.journal.append({"k": "bar", "ts": int(e.current_ts)})

    def before_step(self, upto: int | None) -> None:
        """Called by the loader when the bars up to ``upto`` are in (None: the feed ended)."""
        if upto is not None and self.catching_up:
            self.send_orders()  # match what was placed so far against the journal
            self._journal_paper()
            self._replay_journal(upto)
            assert self._catchup_until is not None
            if upto > self._catchup_until:
                self._finish_catchup()
        if upto is not None and not self.catching_up:
            self.poll_venue(upto)
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
            The run's directory: ``journal.jsonl`` (every order sent and every
            fill, appended and fsync'd as they happen) and ``result/`` (the
            result in the layout of :meth:`BacktestResult.to_parquet`, equity
            and fills appended after every chunk, finished when the run ends).
            When the journal exists the run *resumes*: it reconciles the
            journal with the venue's account before it trades (a mismatch
            raises :class:`ReconcileError`), replays the feed up to the
            journal's last timestamp without sending anything (the orders
            placed again carry the same ids, and are checked against the
            journal), and trades from there.
        overwrite : bool, default False
            Allow replacing an earlier result in ``out/result`` (a resumed
            run replaces its own).

        Returns
        -------
        BacktestResult
            The run's result, like a backtest's.

        Raises
        ------
        ReconcileError
            On a resumed run, the journal and the venue disagree (positions,
            cash or open orders), or the strategy did not place the
            journal's orders again.
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
            from mlbacktest.results.io import check_output_dir

            out = Path(out)
            if out.exists() and not out.is_dir():
                raise NotADirectoryError(f"run(out=...): {str(out)!r} is not a directory")
            resumed = (out / JOURNAL_NAME).exists()
            check_output_dir(out / "result", overwrite or resumed, "run(out=...)")
            overwrite = overwrite or resumed
        cfg = self.config
        feed = self.feed
        feed.start()
        try:
            if self.venue is not None:
                self.venue.connect()
            try:
                return self._run(cfg, feed, out, overwrite)
            finally:
                if self.journal is not None:
                    self.journal.close()
                if self.venue is not None:
                    self.venue.close()
        finally:
            self.feed.stop()

    def _run(self, cfg: BacktestConfig, feed: LiveFeed, out: Any,
             overwrite: bool) -> BacktestResult:
        from mlbacktest.results.io import ResultWriter

        self._asset_names = tuple(feed.asset_names)
        if not self._asset_names:
            raise DataError("the feed names no assets (asset_names is empty after start())")
        if list(self._asset_names) != sorted(set(self._asset_names)):
            raise DataError("the feed's asset_names must be sorted and distinct, got "
                            f"{list(self._asset_names)[:10]}")
        if out is not None:
            self.journal = Journal(
                Path(out) / JOURNAL_NAME, run_id=self.run_id,
                mode="paper" if self.venue is None else "venue",
                initial_cash=cfg.initial_cash, assets=self._asset_names)
            if self.journal.resumed:
                self._reconcile()  # before anything is traded
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
        if self.kill_switches is not None:
            self._monitor = _Monitor(self.kill_switches, self._asset_names, cfg.initial_cash)
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
            self._n_fills_done = 0

        if out is not None:
            writer = ResultWriter(Path(out) / "result", overwrite=overwrite)
            loader.on_boundary = save_so_far
        strategy = self.strategy
        try:
            loader.indicators = _start_strategy(strategy, engine, cfg.fractional,
                                                cfg.history_window)
            self.before_step(int(streams[0][0][-1]))
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
        #: The feed's values were validated by a DataFeed (a replay): not checked again.
        self.validated = bool(getattr(feed, "validated", False))
        self.indicators: IndicatorPlan | None = None
        self.on_boundary: Any = None
        self._prev: BarStore | None = None
        self._buf: dict[str, np.ndarray] = {}   # the bar columns, rows [0, _n) in use
        self.min_capacity = 1024                 # rows of the smallest buffers
        self._n = 0
        self._cap = 0
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
            until = self.run._catchup_until
            if had_errors or (until is not None and batches[-1].ts <= until < b.ts):
                # the incidents come before this batch's bars; a resumed run's replay of
                # the journal ends with a chunk
                self._held = b
                break
            batches.append(b)
        return batches

    # ------------------------------------------------------------ building chunks
    def _build(
        self, batches: list[BarBatch]
    ) -> tuple[BarStore, list[tuple[np.ndarray, np.ndarray]]]:
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
        if not self.validated:
            _check_values(cols, self.asset_names)
        cols["day"] = _local_days(cols["ts"], self.tz)
        # The store is a view of rows [0, n) of growable buffers: the rows carried for
        # history and indicators are not copied again for every chunk. When the new rows
        # do not fit, the buffers are replaced by larger ones holding the rows a streamed
        # run carries between windows (_tail_rows) and the new rows, so each row is
        # copied a bounded number of times whatever the number of chunks.
        m = int(cols["ts"].shape[0])
        prev = self._prev
        keep: Any
        if self._cap < self._n + m:
            keep = (np.zeros(0, dtype=np.int64) if prev is None
                    else _tail_rows(prev.ts_array, prev.asset_array, self.history_window))
            n_prefix = int(keep.size)
            cap = max(2 * (n_prefix + m), self.min_capacity)
            fresh = {name: np.empty(cap, dtype=dt) for name, dt in _BUFFER_DTYPES}
            fresh["signals"] = np.empty((cap, len(self.signal_names)))
            if prev is not None and n_prefix:
                for name, _ in _BUFFER_DTYPES:
                    fresh[name][:n_prefix] = _store_column(prev, name)[keep]
                fresh["signals"][:n_prefix] = prev.signal_array[keep]
            self._buf, self._cap = fresh, cap
        else:
            n_prefix = self._n
            keep = slice(0, n_prefix)  # every row of the previous store
        buf = self._buf
        end = n_prefix + m
        for name in (*(n for n, _ in _BUFFER_DTYPES), "signals"):
            buf[name][n_prefix:end] = cols[name]
        self._n = end
        store = BarStore(
            buf["ts"][:end], buf["asset"][:end], buf["open"][:end], buf["high"][:end],
            buf["low"][:end], buf["close"][:end], buf["volume"][:end], buf["signals"][:end],
            self.asset_names, self.signal_names, self.tz, buf["day"][:end])
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
        if batches is None:
            self._feed_errors()  # incidents reported after the last batch
        run.before_step(None if batches is None else int(batches[-1].ts))
        if batches is None or run.stopped:
            if batches is not None:
                self._held = None
            self._prev, self._buf = None, {}
            return None
        store, streams = self._build(batches)
        return store, streams, _signal_columns(store) if self.with_columns else None


#: Columns of the loader's buffers besides the signals, and their dtypes.
_BUFFER_DTYPES: tuple[tuple[str, Any], ...] = (
    ("ts", np.int64), ("asset", np.int32), ("open", np.float64), ("high", np.float64),
    ("low", np.float64), ("close", np.float64), ("volume", np.float64), ("day", np.int32),
)


def _store_column(store: BarStore, name: str) -> np.ndarray:
    return store.day_array if name == "day" else getattr(store, name + "_array")


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


def run_live(feed: LiveFeed, strategy: Strategy, config: Any = None,
             **options: Any) -> BacktestResult:
    """Build a :class:`LiveEngine` and run it (``out=`` and ``overwrite=`` go to ``run``)."""
    run_opts = {k: options.pop(k) for k in ("out", "overwrite") if k in options}
    return LiveEngine(feed, strategy, config, **options).run(**run_opts)

