"""SimulatedVenue: an in-process venue, to run a strategy in venue mode without a network."""

from __future__ import annotations

import math
import time

import numpy as np

from mlbacktest.live.base import (
    AccountState,
    BarBatch,
    ErrorEvent,
    LiveBroker,
    LiveFeed,
    OrderUpdate,
    VenueFill,
    VenueOrder,
)

__all__ = ["SimulatedVenue"]


class SimulatedVenue(LiveBroker):
    """A venue that fills the orders it receives against the bars it sees next.

    It watches the bars a run receives (:meth:`watch` wraps the run's feed)
    and works each order from the first bar of its asset that arrives after
    the order did: a market order fills at that bar's open; a limit order at
    the open when the open is at or better than the limit, else at the limit
    when the bar trades through it; a stop order at the open when the open
    is beyond the stop, else at the stop when the bar reaches it (a stop-limit
    becomes a limit order there). The whole quantity fills; a DAY order
    expires at the first bar of a later UTC day. It keeps an account (cash,
    positions, open orders) and, like a real venue, accepts each
    ``client_order_id`` once.

    Parameters
    ----------
    initial_cash : float
        Cash of the account.
    commission : float, default 0.0
        Commission per fill, as a fraction of the traded value.
    reject_assets : iterable of str, optional
        Symbols whose orders are rejected (to test rejections).

    Attributes
    ----------
    submissions : list of VenueOrder
        Every order received, in order, duplicates included.
    duplicates : int
        Submissions of a client order id already received (ignored).
    submit_times : dict of str to float
        Wall time (``time.perf_counter``) at which each order arrived.
    bar_times : dict of int to float
        Wall time at which each bar timestamp passed through the watched feed.
    """

    def __init__(self, initial_cash: float, *, commission: float = 0.0,
                 reject_assets: tuple[str, ...] | list[str] = ()) -> None:
        if not (isinstance(initial_cash, (int, float)) and math.isfinite(initial_cash)):
            raise ValueError(f"initial_cash must be a finite number, got {initial_cash!r}")
        if not (isinstance(commission, (int, float)) and commission >= 0):
            raise ValueError(f"commission must be a number >= 0, got {commission!r}")
        self.cash = float(initial_cash)
        self.commission = float(commission)
        self.reject_assets = frozenset(reject_assets)
        self.positions: dict[str, float] = {}
        self.open: dict[str, tuple[VenueOrder, int]] = {}  # id -> (order, last ts seen at arrival)
        self.known: set[str] = set()
        self.events: list[VenueFill | OrderUpdate | ErrorEvent] = []
        self.submissions: list[VenueOrder] = []
        self.duplicates = 0
        self.fills: list[VenueFill] = []
        self.last_ts: int | None = None
        self.submit_times: dict[str, float] = {}
        self.bar_times: dict[int, float] = {}
        self._n_fills = 0
        self.connected = False

    # ------------------------------------------------------------ LiveBroker
    def connect(self) -> None:
        """Nothing to open; marks the venue connected."""
        self.connected = True

    def close(self) -> None:
        """Marks the venue disconnected (its account stays, as a venue's does)."""
        self.connected = False

    def submit(self, order: VenueOrder) -> None:
        """Receive an order; a client order id seen before is ignored."""
        self.submit_times.setdefault(order.client_order_id, time.perf_counter())
        self.submissions.append(order)
        if order.client_order_id in self.known:
            self.duplicates += 1
            return
        self.known.add(order.client_order_id)
        ts = -1 if self.last_ts is None else self.last_ts
        if order.asset in self.reject_assets or order.quantity == 0 or \
                not math.isfinite(order.quantity):
            self.events.append(OrderUpdate(order.client_order_id, "rejected", ts,
                                           f"orders of {order.asset} are not accepted"))
            return
        self.open[order.client_order_id] = (order, ts)
        self.events.append(OrderUpdate(order.client_order_id, "accepted", ts))

    def cancel(self, client_order_id: str) -> None:
        """Cancel a working order (a no-op for one that already ended)."""
        if self.open.pop(client_order_id, None) is not None:
            ts = -1 if self.last_ts is None else self.last_ts
            self.events.append(OrderUpdate(client_order_id, "cancelled", ts))

    def account(self) -> AccountState:
        """Cash, non-zero positions and the working orders."""
        return AccountState(
            cash=self.cash,
            positions={a: q for a, q in sorted(self.positions.items()) if q != 0.0},
            open_orders=tuple(o for o, _ in self.open.values()),
        )

    def poll_events(self, timeout: float = 0.0) -> list[VenueFill | OrderUpdate | ErrorEvent]:
        """Fills and updates since the last call (never waits: everything is in process)."""
        out, self.events = self.events, []
        return out

    # ------------------------------------------------------------ the market
    def watch(self, feed: LiveFeed) -> LiveFeed:
        """The feed ``feed`` as seen by this venue: every batch also reaches the venue."""
        return _Watched(feed, self)

    def on_bars(self, batch: BarBatch, asset_names: tuple[str, ...]) -> None:
        """Work the open orders against the bars of one timestamp."""
        ts = int(batch.ts)
        if self.last_ts is not None and ts <= self.last_ts:
            return  # a bar the venue has seen (a run replaying history after a restart)
        self.bar_times[ts] = time.perf_counter()
        rows = {asset_names[int(a)]: i for i, a in enumerate(np.asarray(batch.asset).tolist())}
        day = ts // 86_400_000_000_000
        triggered = []
        for seq, cid in enumerate(list(self.open)):
            order, seen = self.open[cid]
            i = rows.get(order.asset)
            if i is None:
                continue
            if order.time_in_force == "day" and seen >= 0 and day > seen // 86_400_000_000_000:
                del self.open[cid]
                self.events.append(OrderUpdate(cid, "expired", ts))
                continue
            o = float(batch.open[i])
            price = self._price(order, o, float(batch.high[i]), float(batch.low[i]))
            if price is not None:
                triggered.append((0 if price == o else 1, seq, cid, price))
        # like the simulator: exits (orders that reduce the position) first, then the
        # rest; within each, fills at the open before those inside the bar, then by arrival
        triggered.sort()
        for exits in (True, False):
            for _, _, cid, price in triggered:
                if cid not in self.open:
                    continue
                order = self.open[cid][0]
                pos = self.positions.get(order.asset, 0.0)
                if exits and (pos == 0.0 or (pos > 0.0) == (order.quantity > 0.0)):
                    continue
                del self.open[cid]
                q = order.quantity
                comm = abs(q) * price * self.commission
                self.cash -= q * price + comm
                self.positions[order.asset] = pos + q
                self._n_fills += 1
                fill = VenueFill(cid, f"F{self._n_fills}", ts, order.asset, q, price, comm)
                self.fills.append(fill)
                self.events.append(fill)
        self.last_ts = ts

    @staticmethod
    def _price(order: VenueOrder, o: float, h: float, lo: float) -> float | None:
        buy = order.quantity > 0
        kind = order.order_type
        if kind in ("stop", "stop_limit"):
            s = order.stop_price
            if buy and h >= s:
                start = max(o, s)
            elif not buy and lo <= s:
                start = min(o, s)
            else:
                return None
            if kind == "stop":
                return start
            lim = order.limit_price
            if (buy and start <= lim) or (not buy and start >= lim):
                return start
            return lim if (buy and lo <= lim) or (not buy and h >= lim) else None
        if kind == "limit":
            lim = order.limit_price
            if buy:
                return o if o <= lim else (lim if lo <= lim else None)
            return o if o >= lim else (lim if h >= lim else None)
        return o


class _Watched(LiveFeed):
    """A feed whose batches also reach a :class:`SimulatedVenue`."""

    def __init__(self, feed: LiveFeed, venue: SimulatedVenue) -> None:
        self.inner = feed
        self.venue = venue
        self._copy_names()

    def _copy_names(self) -> None:
        self.asset_names = tuple(self.inner.asset_names)
        self.signal_names = tuple(self.inner.signal_names)
        self.tz = self.inner.tz

    def start(self) -> None:
        self.inner.start()
        self._copy_names()  # a feed sets its names by the end of start()

    def stop(self) -> None:
        self.inner.stop()

    def next_batch(self, timeout: float) -> BarBatch | None:
        b = self.inner.next_batch(timeout)
        if b is not None:
            self.venue.on_bars(b, self.asset_names)
        return b

    def take_errors(self) -> list[ErrorEvent]:
        return self.inner.take_errors()

    def __getattr__(self, name: str) -> object:
        # what else the inner feed offers (its calendar(), for one)
        if name == "inner":
            raise AttributeError(name)
        return getattr(self.inner, name)
