"""Paper and live trading: the same Strategy on a live feed and a venue's broker.

See :mod:`mlbacktest.live.base` for the two boundaries an adapter implements.
"""

from mlbacktest.live.base import (
    ERROR_KINDS,
    AccountState,
    BarBatch,
    ErrorEvent,
    LiveBroker,
    LiveFeed,
    OrderUpdate,
    VenueFill,
    VenueOrder,
)

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
