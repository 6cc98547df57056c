"""Kill switches: safety limits that stop a live run."""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from mlbacktest.errors import ConfigError

__all__ = ["KillSwitches"]

_MINUTE = 60_000_000_000


def _limit(value: Any, name: str) -> None:
    if value is None:
        return
    if isinstance(value, bool) or not isinstance(value, (int, float)) or \
            not math.isfinite(value) or value <= 0:
        raise ConfigError(f"{name} must be a finite number > 0 or None, got {value!r}")


@dataclass(frozen=True)
class KillSwitches:
    """Limits that stop a live run when hit.

    Checked after every timestamp (a run with kill switches hands the engine
    one timestamp at a time). When one is hit the run cancels every open
    order (at the venue too), delivers ``ErrorEvent(kind="kill_switch")`` to
    ``on_error``, sends nothing more and stops: ``on_end`` runs and the
    result so far is returned (and saved with ``out=``).

    Parameters
    ----------
    max_loss : float, optional
        Largest loss of equity from the run's initial cash, in currency.
    max_loss_fraction : float, optional
        The same as a fraction of the initial cash (0.05: 5 %).
    max_orders_per_minute : int, optional
        Most orders placed within a rolling minute of *bar* time (the clock
        of the run, so a replay at any speed stops where real time would).
    max_position : float or mapping of str to float, optional
        Largest absolute quantity held of an asset (one number for all, or
        per asset; assets not in the mapping have no limit).
    max_position_value : float, optional
        Largest absolute value held of one asset, at its last price.
    """

    max_loss: float | None = None
    max_loss_fraction: float | None = None
    max_orders_per_minute: int | None = None
    max_position: float | Mapping[str, float] | None = None
    max_position_value: float | None = None

    def __post_init__(self) -> None:
        _limit(self.max_loss, "max_loss")
        _limit(self.max_loss_fraction, "max_loss_fraction")
        _limit(self.max_position_value, "max_position_value")
        n = self.max_orders_per_minute
        if n is not None and (isinstance(n, bool) or not isinstance(n, int) or n < 1):
            raise ConfigError(f"max_orders_per_minute must be an int >= 1 or None, got {n!r}")
        if isinstance(self.max_position, Mapping):
            for k, v in self.max_position.items():
                _limit(v, f"max_position[{k!r}]")
        else:
            _limit(self.max_position, "max_position")

    @classmethod
    def coerce(cls, value: KillSwitches | Mapping[str, Any] | None) -> KillSwitches | None:
        """A KillSwitches from itself, a mapping of its fields, or None."""
        if value is None or isinstance(value, KillSwitches):
            return value
        if isinstance(value, Mapping):
            unknown = sorted(set(value) - set(cls.__dataclass_fields__))
            if unknown:
                raise ConfigError(f"unknown kill switch(es) {unknown}; known: "
                                  f"{sorted(cls.__dataclass_fields__)}")
            return cls(**value)
        raise ConfigError(f"kill_switches must be a KillSwitches or a mapping, got "
                          f"{type(value).__name__}")


class _Monitor:
    """Checks the limits of a :class:`KillSwitches` against the run's state."""

    def __init__(self, limits: KillSwitches, asset_names: tuple[str, ...],
                 initial_cash: float) -> None:
        self.limits = limits
        self.initial_cash = initial_cash
        self.orders: deque[tuple[int, int]] = deque()  # (timestamp, orders placed at it)
        self.n_in_window = 0
        self.n_orders_seen = 0
        cap = np.full(len(asset_names), np.inf)
        mp = limits.max_position
        if isinstance(mp, Mapping):
            index = {a: i for i, a in enumerate(asset_names)}
            for a, v in mp.items():
                if a not in index:
                    raise ConfigError(f"max_position names asset {a!r}, which the feed does "
                                      "not have")
                cap[index[a]] = float(v)
        elif mp is not None:
            cap[:] = float(mp)
        self.position_cap = cap
        self.asset_names = asset_names

    def check(self, ts: int, equity: float, n_orders: int, position: np.ndarray,
              last_price: np.ndarray) -> str | None:
        """The message of the first limit hit at ``ts``, or None."""
        lim = self.limits
        loss = self.initial_cash - equity
        if lim.max_loss is not None and loss >= lim.max_loss:
            return f"max_loss: equity {equity:,.2f} is {loss:,.2f} below the initial cash " \
                   f"(limit {lim.max_loss:,.2f})"
        if lim.max_loss_fraction is not None and loss >= lim.max_loss_fraction * self.initial_cash:
            return (f"max_loss_fraction: equity {equity:,.2f} is {loss / self.initial_cash:.2%} "
                    f"below the initial cash (limit {lim.max_loss_fraction:.2%})")
        if lim.max_orders_per_minute is not None:
            new = n_orders - self.n_orders_seen
            self.n_orders_seen = n_orders
            if new:
                self.orders.append((ts, new))
                self.n_in_window += new
            while self.orders and self.orders[0][0] <= ts - _MINUTE:
                self.n_in_window -= self.orders.popleft()[1]
            if self.n_in_window > lim.max_orders_per_minute:
                return (f"max_orders_per_minute: {self.n_in_window} orders within the minute "
                        f"up to {np.datetime64(ts, 'ns')} (limit {lim.max_orders_per_minute})")
        over = np.flatnonzero(np.abs(position) > self.position_cap)
        if over.size:
            a = int(over[0])
            return (f"max_position: {self.asset_names[a]} holds {position[a]:g} (limit "
                    f"{self.position_cap[a]:g})")
        if lim.max_position_value is not None:
            with np.errstate(invalid="ignore"):
                value = np.abs(position * np.nan_to_num(last_price))
            over = np.flatnonzero(value > lim.max_position_value)
            if over.size:
                a = int(over[0])
                return (f"max_position_value: {self.asset_names[a]} holds {value[a]:,.2f} "
                        f"(limit {lim.max_position_value:,.2f})")
        return None
