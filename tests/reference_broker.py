"""A slow, plain-Python reference of the fill and accounting rules of docs/semantics.md.

It shares no code with the compiled broker: plain dicts and lists, one rule
per line, written from the documentation. ``tests/test_differential.py``
checks that the engine and this reference agree on random inputs.

Input
-----
``bars[k]`` is the list of ``(asset, open, high, low, close)`` of timestamp
index ``k`` (timestamps are reported as these indices). The order stream is a
``script``: a mapping from ``START`` (orders placed in ``on_start``) or a
timestamp index ``k`` (orders placed by the strategy at ``k``, after it saw
the closes of ``k``) to a list of actions:

* ``("order", asset, quantity, kind, price)``: ``kind`` is ``"market"``
  (price ignored), ``"limit"`` or ``"stop"``; a negative quantity sells.
* ``("cancel", n)``: cancel the order created by the ``n``-th ``"order"``
  action of the script (counted from 0 over the whole script, in time order).

Order ids are given in creation order from 0, as the engine does.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

__all__ = ["START", "RefFill", "RefOrder", "RefResult", "reference_run"]

#: Script key of the actions taken in ``on_start``.
START = "start"


@dataclass
class RefFill:
    ts: int
    asset: int
    order_id: int
    quantity: float
    price: float
    commission: float
    slippage: float


@dataclass
class RefOrder:
    order_id: int
    asset: int
    quantity: float
    kind: str
    price: float  # limit or stop level; NaN for market orders
    created_ts: int
    status: str = "open"
    reason: str = ""  # "", "insufficient_cash" or "short_not_allowed"
    need: float = math.nan  # for "insufficient_cash": the cash the fill needed ...
    have: float = math.nan  # ... and the cash there was
    filled_quantity: float = 0.0
    avg_fill_price: float = math.nan
    closed_ts: int | None = None


@dataclass
class RefResult:
    fills: list[RefFill] = field(default_factory=list)
    orders: list[RefOrder] = field(default_factory=list)
    #: One ``(ts, cash, positions_value)`` per timestamp index.
    records: list[tuple[int, float, float]] = field(default_factory=list)
    #: Final positions by asset (zero entries left out).
    positions: dict[int, float] = field(default_factory=dict)


def reference_run(
    bars: list[list[tuple[int, float, float, float, float]]],
    script: dict,
    *,
    initial_cash: float,
    commission: tuple[float, float, float, float, float] = (0.0, 0.0, 0.0, 0.0, math.inf),
    slippage_bps: float = 0.0,
    fill_at: str = "next_open",
    allow_short: bool = True,
) -> RefResult:
    """Replay ``script`` over ``bars`` by the documented rules.

    Parameters
    ----------
    commission : (rate, per_share, fixed, minimum, maximum)
        Commission of a fill of ``q`` at ``p``:
        ``clip(rate*|q|*p + per_share*|q| + fixed, minimum, maximum)``.
    slippage_bps : float
        Buys pay ``price * (1 + bps/1e4)``, sells receive ``price * (1 - bps/1e4)``;
        a limit fill is then capped at its limit.
    fill_at : "next_open" or "close"
        Where market orders fill.
    """
    rate, per_share, fixed, minimum, maximum = commission
    slip = slippage_bps / 1e4
    out = RefResult()
    cash = initial_cash
    position: dict[int, float] = {}
    last_close: dict[int, float] = {}
    orders = out.orders  # index == order id
    script_orders: list[int] = []  # order id of each "order" action, in script order

    def fee(q: float, p: float) -> float:
        c = rate * abs(q) * p + per_share * abs(q) + fixed
        return min(max(c, minimum), maximum)

    def take_actions(actions: list, ts: int) -> None:
        for action in actions:
            if action[0] == "order":
                _, asset, qty, kind, price = action
                o = RefOrder(
                    order_id=len(orders), asset=asset, quantity=qty, kind=kind,
                    price=math.nan if kind == "market" else price, created_ts=ts,
                )
                orders.append(o)
                script_orders.append(o.order_id)
            elif action[0] == "cancel":
                o = orders[script_orders[action[1]]]
                if o.status == "open":
                    o.status = "cancelled"
                    o.closed_ts = ts
            else:  # pragma: no cover - a broken test script
                raise ValueError(f"unknown action {action!r}")

    def raw_price(o: RefOrder, bar: tuple[int, float, float, float, float], at_close: bool):
        """The price (before slippage) at which ``o`` fills on ``bar``, or None."""
        _, op, hi, lo, cl = bar
        buy = o.quantity > 0
        if o.kind == "market":
            return cl if at_close else op
        level = o.price
        if o.kind == "limit":
            if buy:
                if op <= level:
                    return op
                if lo <= level:
                    return level
            else:
                if op >= level:
                    return op
                if hi >= level:
                    return level
            return None
        # stop
        if buy:
            if op >= level:
                return op
            if hi >= level:
                return level
        else:
            if op <= level:
                return op
            if lo <= level:
                return level
        return None

    def fill_or_reject(o: RefOrder, raw: float, ts: int) -> None:
        nonlocal cash
        q = o.quantity
        if q > 0:
            price = raw * (1 + slip)
            if o.kind == "limit" and price > o.price:
                price = o.price
        else:
            price = raw * (1 - slip)
            if o.kind == "limit" and price < o.price:
                price = o.price
        comm = fee(q, price)
        held = position.get(o.asset, 0.0)
        o.closed_ts = ts
        if not allow_short and held + q < 0:
            o.status = "rejected"
            o.reason = "short_not_allowed"
            return
        cost = q * price + comm
        if cost > cash:
            o.status = "rejected"
            o.reason = "insufficient_cash"
            o.need = cost
            o.have = cash
            return
        cash = cash - cost
        position[o.asset] = held + q
        o.status = "filled"
        o.filled_quantity = q
        o.avg_fill_price = price
        slippage = abs(q) * abs(price - raw)
        out.fills.append(RefFill(ts, o.asset, o.order_id, q, price, comm, slippage))

    def reduces_position(o: RefOrder) -> bool:
        held = position.get(o.asset, 0.0)
        return (held > 0 and o.quantity < 0) or (held < 0 and o.quantity > 0)

    def match(ts: int, bar_of: dict, at_close: bool) -> None:
        """Work the open orders that may fill now, exits first, each group by id."""
        def candidates():
            for o in orders:  # id order
                if o.status != "open" or o.asset not in bar_of:
                    continue
                if at_close:
                    if o.kind == "market":
                        yield o
                elif o.kind != "market" or fill_at == "next_open":
                    yield o

        for exits_only in (True, False):
            for o in candidates():
                # The position "as it stands now": an earlier fill at this
                # timestamp may have changed whether ``o`` reduces it.
                if exits_only and not reduces_position(o):
                    continue
                raw = raw_price(o, bar_of[o.asset], at_close)
                if raw is not None:
                    fill_or_reject(o, raw, ts)

    # Orders placed in on_start carry the first timestamp and fill from its bars on.
    take_actions(script.get(START, []), 0)
    for ts, rows in enumerate(bars):
        bar_of = {row[0]: row for row in rows}
        # 1. match against the new bars (orders placed at ts are not in the book yet).
        match(ts, bar_of, at_close=False)
        # 2. mark
        for a, row in bar_of.items():
            last_close[a] = row[4]
        # 3. the strategy acts
        take_actions(script.get(ts, []), ts)
        # 4. market orders at this timestamp's closes
        if fill_at == "close":
            match(ts, bar_of, at_close=True)
        # 5. record
        value = 0.0
        for a in sorted(position):
            if position[a] != 0:
                value += position[a] * last_close[a]
        out.records.append((ts, cash, value))
    out.positions = {a: q for a, q in position.items() if q != 0}
    return out
