"""The journal of a live run: every order sent and every fill, appended and fsync'd.

One JSON object per line (``journal.jsonl`` in the run's output directory).
Floats are written with ``repr`` precision, so they read back bit for bit.
A restarted run reads the journal, reconciles it with the venue's account
before it trades, replays the feed up to the last timestamp the journal
records (sending nothing: the orders it places again carry the same ids) and
trades from there.

Records (key ``k``):

``start``
    ``run_id``, ``mode`` (``"paper"`` or ``"venue"``), ``initial_cash``, ``assets``.
``order``
    An order sent: ``id``, ``cid`` (client order id), ``asset``, ``qty``,
    ``type``, ``limit``, ``stop``, ``tif``, ``ts`` (clock time).
``cancel``
    A cancel sent: ``id``, ``ts``.
``fill``
    ``id``, ``fill_id``, ``asset``, ``qty``, ``price``, ``commission``, ``ts``
    (execution time) and ``at`` (the timestamp before whose bars it was booked).
``status``
    A venue's ending of an order: ``id``, ``status``, ``ts``, ``at``.
``bar``
    Every hook of timestamp ``ts`` has run and its orders were sent.
``restart``
    A run resumed after the timestamp ``ts``.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mlbacktest.errors import MlBacktestError

__all__ = ["Journal", "JournalState", "ReconcileError"]


class ReconcileError(MlBacktestError, RuntimeError):
    """The journal of a run and the venue's account disagree: the run will not trade."""


@dataclass
class JournalState:
    """What a journal says about the account and the orders.

    Attributes
    ----------
    cash : float
        Initial cash less the fills' cost and commissions.
    positions : dict of str to float
        Signed quantity per asset.
    orders : dict of int to dict
        The ``order`` records by order id.
    open_ids : set of int
        Orders sent, not completely filled, not ended by the venue.
    cancel_sent : set of int
        Orders whose cancel was sent.
    fills : list of dict
        The ``fill`` records, in order.
    statuses : list of dict
        The ``status`` records, in order.
    last_bar : int or None
        The last timestamp fully processed.
    """

    cash: float
    positions: dict[str, float] = field(default_factory=dict)
    orders: dict[int, dict[str, Any]] = field(default_factory=dict)
    open_ids: set[int] = field(default_factory=set)
    cancel_sent: set[int] = field(default_factory=set)
    fills: list[dict[str, Any]] = field(default_factory=list)
    statuses: list[dict[str, Any]] = field(default_factory=list)
    last_bar: int | None = None


class Journal:
    """An append-only, fsync'd record of a run's orders and fills.

    Parameters
    ----------
    path : str or path-like
        The journal file; created with its ``start`` record when absent.
    run_id, mode : str
        Of the run; an existing journal must have the same.
    initial_cash : float
        Of the run; an existing journal must have the same.
    assets : tuple of str
        The run's universe; an existing journal must have the same.

    Raises
    ------
    ReconcileError
        An existing journal belongs to another run (id, mode, cash or
        universe), or a line of it is not a journal record.
    """

    def __init__(self, path: str | os.PathLike[str], *, run_id: str, mode: str,
                 initial_cash: float, assets: tuple[str, ...]) -> None:
        self.path = Path(path)
        head = {"k": "start", "run_id": run_id, "mode": mode,
                "initial_cash": float(initial_cash), "assets": list(assets)}
        self.records: list[dict[str, Any]] = []
        self.resumed = self.path.exists() and self.path.stat().st_size > 0
        if self.resumed:
            with open(self.path, encoding="utf-8") as f:
                for n, line in enumerate(f, 1):
                    if not line.endswith("\n"):
                        break  # a record cut by a crash while it was written: never applied
                    try:
                        rec = json.loads(line)
                    except json.JSONDecodeError as exc:
                        raise ReconcileError(f"journal {self.path} line {n} is not a record: "
                                             f"{exc}") from None
                    if not isinstance(rec, dict) or "k" not in rec:
                        raise ReconcileError(f"journal {self.path} line {n} is not a record")
                    self.records.append(rec)
            first = self.records[0] if self.records else {}
            for key in ("k", "run_id", "mode", "initial_cash", "assets"):
                if first.get(key) != head[key]:
                    raise ReconcileError(
                        f"journal {self.path} belongs to another run: its {key} is "
                        f"{first.get(key)!r}, this run's {head[key]!r}")
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._f = open(self.path, "a", encoding="utf-8")  # noqa: SIM115 - kept open for the run
        if not self.resumed:
            self.append(head)

    def append(self, record: Mapping[str, Any]) -> None:
        """Write one record and fsync it (it survives a crash once this returns)."""
        self._f.write(json.dumps(record, allow_nan=True) + "\n")
        self._f.flush()
        os.fsync(self._f.fileno())

    def close(self) -> None:
        """Close the file."""
        if not self._f.closed:
            self._f.close()

    def state(self) -> JournalState:
        """The account and orders as the records read so far say."""
        head = self.records[0] if self.records else {"initial_cash": 0.0}
        st = JournalState(cash=float(head["initial_cash"]))
        filled: dict[int, float] = {}
        for rec in self.records[1:]:
            k = rec["k"]
            if k == "order":
                st.orders[int(rec["id"])] = rec
                st.open_ids.add(int(rec["id"]))
            elif k == "cancel":
                st.cancel_sent.add(int(rec["id"]))
            elif k == "fill":
                st.fills.append(rec)
                oid = int(rec["id"])
                q, p, c = float(rec["qty"]), float(rec["price"]), float(rec["commission"])
                st.cash -= q * p + c
                st.positions[rec["asset"]] = st.positions.get(rec["asset"], 0.0) + q
                filled[oid] = filled.get(oid, 0.0) + q
                order = st.orders.get(oid)
                if order is not None and math.isclose(filled[oid], float(order["qty"]),
                                                      rel_tol=1e-9, abs_tol=1e-12):
                    st.open_ids.discard(oid)
            elif k == "status":
                st.statuses.append(rec)
                st.open_ids.discard(int(rec["id"]))
            elif k == "bar":
                st.last_bar = int(rec["ts"])
        return st
