"""Paper and live trading: the same Strategy on a live feed and a venue's broker.

See :mod:`mlbacktest.live.base` for the two boundaries an adapter implements,
:class:`LiveEngine` for the run, :class:`ReplayFeed` to replay recorded bars
and :class:`PaperBroker` to trade on paper.
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
from mlbacktest.live.buffer import SignalBuffer
from mlbacktest.live.engine import LiveEngine, PaperBroker, ReconcileError, run_live
from mlbacktest.live.killswitch import KillSwitches
from mlbacktest.live.replay import ReplayFeed
from mlbacktest.live.simulated import SimulatedVenue

__all__ = [
    "ERROR_KINDS",
    "AccountState",
    "BarBatch",
    "ErrorEvent",
    "KillSwitches",
    "LiveBroker",
    "LiveEngine",
    "LiveFeed",
    "OrderUpdate",
    "PaperBroker",
    "ReconcileError",
    "ReplayFeed",
    "SignalBuffer",
    "SimulatedVenue",
    "VenueFill",
    "VenueOrder",
    "run_live",
]
