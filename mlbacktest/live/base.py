"""The two boundaries a live or paper run is built on, and the records that cross them.

A live run replaces the two things a backtest reads from memory: the bars come
from a :class:`LiveFeed` and the orders go to a :class:`LiveBroker`. An adapter
for a venue (Alpaca, a replay of history, a paper account) implements those two
classes and nothing else; the strategy, its hooks, helpers and ``context`` are
the same objects as in a backtest.

Everything asynchronous (sockets, reconnects, HTTP errors, bars and ML signals
arriving on different streams) stays inside the feed and the broker. What the
strategy sees of it is an :class:`ErrorEvent`, delivered through the clock to the
optional ``Strategy.on_error(event)`` hook; the run goes on unless the strategy
or a kill switch stops it.

Timestamps are int64 nanoseconds since the epoch (UTC), as everywhere in the
package; quantities are signed (positive buys, negative sells).
"""

from __future__ import annotations

import abc
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Literal

import numpy as np

__all__ = [
    "ERROR_KINDS",
    "AccountState",
    "BarBatch",
    "ErrorEvent",
    "LiveBroker",
    "LiveFeed",
    "OrderUpdate",
    "VenueFill",
    "VenueOrder",
]

#: The kinds of :class:`ErrorEvent`. A feed or broker reports one event per incident.
ERROR_KINDS: tuple[str, ...] = (
    "disconnect",       # a stream or connection was lost
    "reconnect",        # it was re-established (after `attempt` tries) and resubscribed
    "rejected",         # the venue refused an order (HTTP 4xx other than 429, or a reject update)
    "rate_limited",     # the venue answered 429; the request was retried after a backoff
    "stale_data",       # no bar arrived for longer than the feed's staleness limit
    "stale_signal",     # a bar was emitted with empty signals: its signals missed the timeout
    "duplicate_bar",    # a bar already delivered arrived again; it was dropped and reported
    "out_of_order_bar", # a bar older than the last delivered timestamp arrived; dropped, reported
    "kill_switch",      # a safety limit was hit: open orders cancelled, the run stops
    "reconcile",        # the journal and the venue disagree at start (the run refuses to trade)
    "venue",            # any other error reported by the venue
)

ErrorKind = Literal[
    "disconnect", "reconnect", "rejected", "rate_limited", "stale_data", "stale_signal",
    "duplicate_bar", "out_of_order_bar", "kill_switch", "reconcile", "venue",
]


@dataclass(frozen=True)
class ErrorEvent:
    """Trouble at the edge of a live run, as the strategy's ``on_error`` receives it.

    Attributes
    ----------
    ts : int
        Clock time (ns) at which the event is delivered: the timestamp of the
        bar being processed, or of the last one when between bars.
    source : str
        Who reports it: ``"feed"``, ``"broker"``, ``"engine"`` or ``"kill_switch"``.
    kind : str
        One of :data:`ERROR_KINDS`.
    message : str
        What happened, for a person; never holds credentials.
    attempt : int
        The retry attempt this event is about (0 when there is none).
    asset : str or None
        The asset concerned, when there is one.
    order_id : str or None
        The client order id concerned, when there is one.
    """

    ts: int
    source: str
    kind: str
    message: str
    attempt: int = 0
    asset: str | None = None
    order_id: str | None = None

    def __post_init__(self) -> None:
        if self.kind not in ERROR_KINDS:
            raise ValueError(f"ErrorEvent kind must be one of {ERROR_KINDS}, got {self.kind!r}")


@dataclass(frozen=True)
class BarBatch:
    """The bars of one timestamp, columnar, as a :class:`LiveFeed` yields them.

    Attributes
    ----------
    ts : int
        The bar timestamp (ns) shared by every row.
    asset : ndarray of int64
        Index of each row's asset in the feed's ``asset_names``, strictly increasing.
    open, high, low, close, volume : ndarray of float64
        The bar fields, one value per row.
    signals : ndarray of float64, shape (n_rows, n_signals)
        The ML signals in the order of the feed's ``signal_names``; a row whose
        signals missed the feed's timeout holds NaN (and the feed reported a
        ``stale_signal`` ErrorEvent for it).
    """

    ts: int
    asset: np.ndarray
    open: np.ndarray
    high: np.ndarray
    low: np.ndarray
    close: np.ndarray
    volume: np.ndarray
    signals: np.ndarray

    def __len__(self) -> int:
        return int(self.asset.shape[0])


class LiveFeed(abc.ABC):
    """Bars (with their signals) arriving in real time, one timestamp at a time.

    Subclasses set :attr:`asset_names`, :attr:`signal_names` and :attr:`tz`
    before :meth:`start` returns, and implement :meth:`next_batch`.
    """

    #: The universe, in the order of :attr:`BarBatch.asset`.
    asset_names: tuple[str, ...] = ()
    #: Signal columns, in the order of :attr:`BarBatch.signals`.
    signal_names: tuple[str, ...] = ()
    #: IANA time zone of the timestamps for display (None: naive/UTC).
    tz: str | None = None

    def start(self) -> None:  # noqa: B027 - optional hook
        """Connect and subscribe. Called once by the engine before the first batch."""

    def stop(self) -> None:  # noqa: B027 - optional hook
        """Disconnect. Called once by the engine at the end, also after an error."""

    @abc.abstractmethod
    def next_batch(self, timeout: float) -> BarBatch | None:
        """Block until the next timestamp's bars are complete and return them.

        Parameters
        ----------
        timeout : float
            Seconds to wait at most.

        Returns
        -------
        BarBatch or None
            The bars of the next timestamp (strictly later than the last one
            returned), or None when the feed has ended.

        Raises
        ------
        TimeoutError
            Nothing arrived within `timeout` (the engine reports ``stale_data``
            and waits again).
        """

    def take_errors(self) -> list[ErrorEvent]:
        """Incidents since the last call (disconnects, duplicates, stale signals...)."""
        return []


@dataclass(frozen=True)
class VenueOrder:
    """An order as sent to a venue.

    Attributes
    ----------
    client_order_id : str
        Unique and stable id chosen by mlbacktest; a venue that sees it twice
        must not create a second order (resubmission after a timeout is safe).
    asset : str
        Symbol.
    quantity : float
        Signed: positive buys, negative sells.
    order_type : str
        ``"market"``, ``"limit"``, ``"stop"`` or ``"stop_limit"``.
    limit_price, stop_price : float
        NaN when the type has none.
    time_in_force : str
        ``"day"`` or ``"gtc"``.
    """

    client_order_id: str
    asset: str
    quantity: float
    order_type: str = "market"
    limit_price: float = float("nan")
    stop_price: float = float("nan")
    time_in_force: str = "gtc"


@dataclass(frozen=True)
class VenueFill:
    """An execution reported by a venue.

    Attributes
    ----------
    client_order_id : str
        The order it belongs to.
    fill_id : str
        The venue's execution id (a fill seen twice is applied once).
    ts : int
        Execution time (ns).
    asset : str
        Symbol.
    quantity : float
        Signed quantity of this execution.
    price : float
        Execution price.
    commission : float
        Commission charged for this execution (0 when the venue charges none).
    """

    client_order_id: str
    fill_id: str
    ts: int
    asset: str
    quantity: float
    price: float
    commission: float = 0.0


@dataclass(frozen=True)
class OrderUpdate:
    """A change of an order's state reported by a venue (other than a fill).

    Attributes
    ----------
    client_order_id : str
        The order.
    status : str
        ``"accepted"``, ``"rejected"``, ``"cancelled"``, ``"expired"`` or ``"replaced"``.
    ts : int
        Time of the update (ns).
    reason : str
        The venue's reason, for rejections.
    """

    client_order_id: str
    status: str
    ts: int
    reason: str = ""


@dataclass(frozen=True)
class AccountState:
    """Cash, positions and open orders as the venue reports them.

    Attributes
    ----------
    cash : float
        Cash balance.
    positions : Mapping[str, float]
        Signed quantity per symbol (flat symbols may be absent).
    open_orders : tuple of VenueOrder
        Orders still working at the venue (quantity is the remaining quantity).
    """

    cash: float
    positions: Mapping[str, float] = field(default_factory=dict)
    open_orders: tuple[VenueOrder, ...] = ()


class LiveBroker(abc.ABC):
    """A venue's order entry and account, as a live run sees it.

    Calls are synchronous and return quickly; what the venue reports later
    (fills, state changes, errors) is returned by :meth:`poll_events`.
    """

    def connect(self) -> None:  # noqa: B027 - optional hook
        """Open sessions and streams. Called once by the engine before trading."""

    def close(self) -> None:  # noqa: B027 - optional hook
        """Close them. Called once by the engine at the end, also after an error."""

    @abc.abstractmethod
    def submit(self, order: VenueOrder) -> None:
        """Send an order. Idempotent on ``order.client_order_id``."""

    @abc.abstractmethod
    def cancel(self, client_order_id: str) -> None:
        """Ask the venue to cancel a working order (the outcome arrives as an OrderUpdate)."""

    @abc.abstractmethod
    def account(self) -> AccountState:
        """Cash, positions and open orders as the venue reports them now."""

    @abc.abstractmethod
    def poll_events(self, timeout: float = 0.0) -> list[VenueFill | OrderUpdate | ErrorEvent]:
        """Fills, order updates and incidents since the last call, in arrival order.

        Parameters
        ----------
        timeout : float
            Seconds to wait for at least one event (0: return what is there).
        """
