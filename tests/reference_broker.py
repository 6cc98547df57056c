"""A slow, plain-Python reference of the fill and accounting rules of docs/semantics.md.

It shares no code with the compiled broker: plain objects, dicts and lists,
written from the documentation. ``tests/test_differential.py`` checks that the
engine and this reference agree on random inputs.

Input
-----
``timestamps`` are the bar timestamps (int ns, increasing) and ``bars[k]`` the
list of ``(asset, open, high, low, close, volume)`` of the bars stamped
``timestamps[k]``. The order flow is a ``script``: a mapping from ``START``
(actions taken in ``on_start``) or a timestamp index ``k`` (actions taken by
the strategy at ``timestamps[k]``, after it saw the closes of ``k``) to a list
of actions. Actions that create orders give each order a *handle* (counted
from 0 over the whole script, in time order); later actions name orders by
handle. An action naming a handle whose order was never created (its action
failed) is skipped.

* ``("order", asset, quantity, kind, opts)``: one order (one handle).
  ``kind`` is one of ``market``, ``limit``, ``stop``, ``stop_limit``,
  ``trailing_stop``, ``market_on_open``, ``market_on_close``; ``opts`` may
  hold ``limit``, ``stop``, ``trail_amount``, ``trail_percent``, ``tif``
  (default ``"gtc"``), ``expire`` (int ns, for ``gtd``), ``parent`` (a
  handle), and ``via`` (how the engine side places a market order).
* ``("bracket", asset, quantity, opts)``: entry, protective leg and
  take-profit (three handles; a missing leg's handle stays empty). ``opts``:
  ``stop_loss``, ``take_profit``, ``limit``, ``trail_amount``,
  ``trail_percent``, ``tif``.
* ``("cancel", handle)``
* ``("replace", handle, opts)``: ``opts`` may hold ``quantity``, ``limit``,
  ``stop`` (one new handle).
* ``("oco", [handle, ...])``

Output
------
A :class:`RefResult`: the fills, every order's final state, one
``(ts, cash, positions_value)`` record per bar timestamp, the outcome of each
script action, and the ``on_order`` status events ``(time, order_id,
status)`` (time ``None`` for events of ``on_start``).

Where docs/semantics.md leaves a detail open, the choice made here is noted
in a comment starting with "Undocumented:". OTO children are assumed to be on
their parent's asset (they start from the parent's fill price).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

__all__ = ["START", "DAY_NS", "QTY_RTOL", "RefFill", "RefOrder", "RefResult", "child_size",
           "reference_run", "whole_units", "REASONS"]

#: Script key of the actions taken in ``on_start``.
START = "start"
#: One calendar day in ns (naive timestamps: the day is ``ts // DAY_NS``).
DAY_NS = 86_400_000_000_000
#: The one quantity tolerance (docs/semantics.md, "Flat positions and whole
#: units"): a position this small relative to the quantities it came from is
#: flat, a size this close to a whole number is that number, an OCO member
#: with this little left is cancelled. Undocumented: a remaining quantity
#: this small (relative to the order) also counts as filled, as in the engine.
QTY_RTOL = 1e-9

WORKING = ("submitted", "accepted", "partially_filled")
STOP_KINDS = ("stop", "stop_limit", "trailing_stop")

#: Reason texts of the engine's order records, by reason.
REASONS = {
    "by_strategy": "cancelled by the strategy",
    "oco": "cancelled: another order of its OCO group filled",
    "ioc": "cancelled: immediate-or-cancel, not filled on its first bar",
    "fok": "cancelled: fill-or-kill, could not fill completely on its first bar",
    "day": "expired: end of day (time in force DAY)",
    "gtd": "expired: passed its good-till-date timestamp",
    "replaced": "cancelled: replaced by a new order",
    "short": ("short selling is not allowed (allow_short=False, a cash account's default; "
              "set allow_short=True or account='margin')"),
}


class ScriptError(Exception):
    """An action the engine refuses with OrderError; ``args[0]`` is a phrase of its message."""


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
    kind: str
    quantity: float  # signed; OCO partial fills and a parent's early end shrink it
    limit_price: float
    stop_price: float  # trailing stops: the current level
    trail_amount: float
    trail_percent: float
    tif: str
    expire_ts: int | None
    parent: int | None
    created_ts: int
    status: str = "submitted"
    reason: str = ""
    filled_quantity: float = 0.0
    avg_fill_price: float = math.nan
    closed_ts: int | None = None
    children: list[int] = field(default_factory=list)
    oco_group: int | None = None
    # --- the broker's side
    arrival_ts: int = 0  # latency: bars stamped before this are not worked
    bars_to_sit: int = 0  # latency_bars still to sit out
    at_broker: bool = False  # the latency is over
    released: bool = True  # no parent, or the parent filled (or ended after a fill)
    evaluated: bool = False  # has had its first eligible bar (IOC, FOK, DAY)
    day: int | None = None  # DAY: calendar day of the first eligible bar
    stop_triggered: bool = False  # stop-limit: the stop has traded
    not_before: int | None = None  # works only on bars stamped after this
    trail_extreme: float = math.nan  # trailing: best close since it started trailing
    fill_notional: float = 0.0  # sum of |q| * price over the fills

    @property
    def working(self) -> bool:
        return self.status in WORKING

    @property
    def remaining(self) -> float:
        return self.quantity - self.filled_quantity


@dataclass
class RefResult:
    fills: list[RefFill] = field(default_factory=list)
    orders: list[RefOrder] = field(default_factory=list)
    #: One ``(ts, cash, positions_value)`` per bar timestamp.
    records: list[tuple[int, float, float]] = field(default_factory=list)
    #: Final positions by asset (zero entries left out).
    positions: dict[int, float] = field(default_factory=dict)
    #: One entry per script action, in script order (see ``outcome`` in reference_run).
    outcomes: list[Any] = field(default_factory=list)
    #: ``(time, order_id, status)`` of every status change; time is None in on_start.
    events: list[tuple[int | None, int, str]] = field(default_factory=list)


def path_points(mode: str, o: float, h: float, lo: float, c: float) -> list[float]:
    """The four points of a bar's price path: open, the two extremes, close."""
    if mode == "ohlc":
        high_first = True
    elif mode == "olhc":
        high_first = False
    else:  # adaptive: the extreme nearer the open first, high first on a tie
        high_first = (h - o) <= (o - lo)
    return [o, h, lo, c] if high_first else [o, lo, h, c]


def first_reach(path: list[float], start: tuple[int, float], holds) -> tuple[int, bool] | None:
    """Where on the rest of the path the condition ``holds`` first.

    ``start = (k, x)``: the price is ``x`` and the path goes on through
    ``path[k], path[k+1], ..., path[3]`` (an order starting at the open has
    ``(0, open)``; one activated at a parent's fill on the way to point ``k``
    has ``(k, fill price)``). Returns ``(point, at_start)``, or None when the
    condition never holds: at the start the order fills at the start price,
    otherwise at its level (the path is continuous).
    """
    k0, x = start
    if holds(x):
        return k0, True
    for k in range(k0, 4):
        if holds(path[k]):
            return k, False
    return None


def whole_units(x: float) -> float:
    """A size in whole units by the one whole-unit rule of docs/semantics.md.

    "The whole number within QTY_RTOL (relative, at least one unit) of the
    computed size when there is one, else the size truncated toward zero":
    48.99999999999999 is 49, 48.7 is 48, -0.9999999999999999 is -1.
    """
    nearest = float(round(x))
    if abs(x - nearest) <= QTY_RTOL * max(abs(x), 1.0):
        return nearest
    return float(math.trunc(x))


def child_size(child: float, filled: float, parent: float, fractional: bool) -> float:
    """A waiting child's size once its parent ended having filled ``filled`` of ``parent``.

    docs/semantics.md, "Linked orders": a child that mirrors its parent (the
    parent's quantity with the opposite sign: a bracket leg) is sized to
    exactly minus the filled quantity; any other child is scaled by filled /
    ordered, the product first (``child * filled``, then divided by
    ``parent``, in floating point), and with whole shares rounded by the one
    whole-unit rule (:func:`whole_units`).
    """
    if child == -parent:
        return -filled
    scaled = child * filled / parent
    return scaled if fractional else whole_units(scaled)


def reference_run(
    timestamps: list[int],
    bars: list[list[tuple[int, float, float, float, float, float]]],
    script: dict,
    *,
    initial_cash: float,
    commission: tuple[float, float, float, float, float] = (0.0, 0.0, 0.0, 0.0, math.inf),
    slippage_bps: float = 0.0,
    fill_at: str = "next_open",
    allow_short: bool | None = None,
    fractional: bool = True,
    intrabar_path: str = "adaptive",
    max_volume_participation: float | None = None,
    same_bar_reentry: bool = False,
    linked_orders_same_bar: bool = True,
    latency_ns: int = 0,
    latency_bars: int = 0,
) -> RefResult:
    """Replay ``script`` over the bars by the documented rules.

    Parameters
    ----------
    commission : (rate, per_share, fixed, minimum, maximum)
        Commission of a fill of ``q`` at ``p``:
        ``clip(rate*|q|*p + per_share*|q| + fixed, minimum, maximum)``.
    slippage_bps : float
        Buys pay ``price * (1 + bps/1e4)``, sells receive ``price * (1 - bps/1e4)``;
        a limit (or stop-limit) fill is then capped at its limit.
    allow_short : bool or None
        Fills may open or extend a short; ``None`` lets the account decide,
        and the reference is a cash account, which cannot short.
    The other knobs are those of BacktestConfig.
    """
    allow_short = bool(allow_short)  # None: a cash account cannot short
    rate, per_share, fixed, minimum, maximum = commission
    slip = slippage_bps / 1e4
    close_mode = fill_at == "close"
    # "submission" prices like "ohlc" but executes in submission order.
    by_point = intrabar_path != "submission"
    path_mode = "ohlc" if intrabar_path == "submission" else intrabar_path
    out = RefResult()
    orders = out.orders  # index == order id
    cash = initial_cash
    position: dict[int, float] = {}
    last_close: dict[int, float] = {}
    handles: list[int | None] = []  # order id of each handle (None: never created)
    oco_groups: list[list[int]] = []  # members of each OCO group, in ring order
    stopped_at: dict[int, int] = {}  # asset -> ts of its last stop-out
    arrivals: dict[int, list[int]] = {}  # arrival time -> ids of orders arriving then
    now: dict[str, Any] = {"event_time": None}  # time given to status events
    bar_ts = set(timestamps)

    # ------------------------------------------------------------ helpers
    def event(o: RefOrder) -> None:
        out.events.append((now["event_time"], o.order_id, o.status))

    def fee(q: float, p: float) -> float:
        c = rate * abs(q) * p + per_share * abs(q) + fixed
        return min(max(c, minimum), maximum)

    def trail_level(o: RefOrder) -> float:
        x, by_amount = o.trail_extreme, math.isnan(o.trail_percent)
        if o.quantity < 0:  # a sell stop below the best close
            return x - o.trail_amount if by_amount else x * (1.0 - o.trail_percent)
        return x + o.trail_amount if by_amount else x * (1.0 + o.trail_percent)

    def accept_if_ready(o: RefOrder) -> None:
        """submitted -> accepted once the order is at the broker and free of its parent."""
        if o.status == "submitted" and o.at_broker and o.released:
            o.status = "accepted"
            event(o)

    def release(child: RefOrder, parent: RefOrder) -> None:
        """Free a waiting child of ``parent`` (filled, or ended after a partial fill).

        A trailing leg did not trail while it waited: it starts from the
        parent's average fill price, now that its position exists.
        """
        child.released = True
        if child.kind == "trailing_stop":
            child.trail_extreme = parent.avg_fill_price
            child.stop_price = trail_level(child)

    def end(o: RefOrder, status: str, reason: str, ts: int) -> None:
        """Take a working order out of play; its waiting children follow."""
        if not o.working:
            return
        o.status = status
        o.reason = reason
        o.closed_ts = ts
        event(o)
        if status == "filled":
            return
        # The parent ended early: its children cover the part that filled,
        # or are cancelled when nothing did (docs/semantics.md, "Linked
        # orders"; sized by child_size); a child left at zero is cancelled.
        # A waiting trailing leg starts trailing from the parent's average
        # fill price.
        # A child still in transit keeps its own arrival (docs/semantics.md,
        # "Latency"): it is accepted when it reaches the broker.
        # Undocumented: the child works from that moment on (from the open
        # of this timestamp's bars when the parent expired before they were
        # matched, else from its asset's next bar).
        for cid in o.children:
            child = orders[cid]
            if not child.working or child.released:
                continue
            if abs(o.filled_quantity) <= QTY_RTOL * abs(o.quantity):
                end(child, "cancelled", f"cancelled: its parent order {o.order_id} ended "
                    "without filling", ts)
                continue
            child.quantity = child_size(child.quantity, o.filled_quantity, o.quantity,
                                        fractional)
            if child.quantity == 0.0:
                end(child, "cancelled", f"cancelled: its parent order {o.order_id} ended "
                    "without filling", ts)
                continue
            release(child, o)
            accept_if_ready(child)

    # ------------------------------------------------------------ strategy actions
    def new_order(ts: int, asset: int, qty: float, kind: str, *, limit=math.nan, stop=math.nan,
                  trail_amount=math.nan, trail_percent=math.nan, tif="gtc", expire=None,
                  parent: int | None = None, latency: bool = True,
                  check_parent: bool = True) -> RefOrder:
        """Validate (the checks a script can fail) and place an order; returns it."""
        if check_parent and parent is not None and not orders[parent].working:
            raise ScriptError("is no longer working")
        if tif == "gtd" and expire <= ts:
            raise ScriptError("expiry is in the past")
        o = RefOrder(order_id=len(orders), asset=asset, kind=kind, quantity=qty,
                     limit_price=limit, stop_price=stop, trail_amount=trail_amount,
                     trail_percent=trail_percent, tif=tif, expire_ts=expire, parent=parent,
                     created_ts=ts)
        if kind == "trailing_stop":
            ref = last_close.get(asset, math.nan)
            if not ref > 0:
                raise ScriptError("needs a last price")
            # Trails from the last close when placed. Undocumented: a leg
            # that waits for its parent shows the level of that close until
            # it is released (it does not trail meanwhile; see release).
            o.trail_extreme = ref
            o.stop_price = trail_level(o)
        orders.append(o)
        if parent is not None:
            orders[parent].children.append(o.order_id)
            o.released = False
        event(o)  # submitted
        if latency:
            o.arrival_ts = ts + latency_ns
            o.bars_to_sit = latency_bars
            if latency_ns == 0 and latency_bars == 0:
                o.at_broker = True
            elif latency_ns > 0:
                arrivals.setdefault(o.arrival_ts, []).append(o.order_id)
        accept_if_ready(o)
        return o

    def act(action: tuple, ts: int) -> Any:
        """Carry out one script action; returns its outcome."""
        what = action[0]
        if what == "order":
            _, asset, qty, kind, opts = action
            parent = opts.get("parent")
            if parent is not None and handles[parent] is None:
                handles.append(None)
                return "skipped"
            tif = opts.get("tif", "gtc")
            try:
                o = new_order(ts, asset, qty, kind, limit=opts.get("limit", math.nan),
                              stop=opts.get("stop", math.nan),
                              trail_amount=opts.get("trail_amount", math.nan),
                              trail_percent=opts.get("trail_percent", math.nan), tif=tif,
                              expire=opts.get("expire"),
                              parent=None if parent is None else handles[parent])
            except ScriptError as exc:
                handles.append(None)
                return ("error", exc.args[0])
            handles.append(o.order_id)
            return ("ok", o.order_id)
        if what == "bracket":
            _, asset, qty, opts = action
            # The entry, then the protective leg and the take-profit as its
            # children, then (both legs given) an OCO link between them.
            entry = new_order(ts, asset, qty, "limit" if "limit" in opts else "market",
                              limit=opts.get("limit", math.nan), tif=opts.get("tif", "gtc"))
            stop = take = None
            if "stop_loss" in opts:
                stop = new_order(ts, asset, -qty, "stop", stop=opts["stop_loss"],
                                 parent=entry.order_id)
            elif "trail_amount" in opts or "trail_percent" in opts:
                stop = new_order(ts, asset, -qty, "trailing_stop",
                                 trail_amount=opts.get("trail_amount", math.nan),
                                 trail_percent=opts.get("trail_percent", math.nan),
                                 parent=entry.order_id)
            if "take_profit" in opts:
                take = new_order(ts, asset, -qty, "limit", limit=opts["take_profit"],
                                 parent=entry.order_id)
            if stop is not None and take is not None:
                link_oco([stop.order_id, take.order_id])
            ids = tuple(None if o is None else o.order_id for o in (entry, stop, take))
            handles.extend(ids)
            return ("ok", ids)
        if what == "cancel":
            oid = handles[action[1]]
            if oid is None:
                return "skipped"
            o = orders[oid]
            if not o.working:
                return False
            end(o, "cancelled", REASONS["by_strategy"], ts)
            return True
        if what == "replace":
            _, h, opts = action
            if handles[h] is None:
                handles.append(None)
                return "skipped"
            try:
                fresh = replace(orders[handles[h]], opts, ts)
            except ScriptError as exc:
                handles.append(None)
                return ("error", exc.args[0])
            handles.append(fresh.order_id)
            return ("ok", fresh.order_id)
        if what == "oco":
            ids = [handles[h] for h in action[1]]
            if any(i is None for i in ids):
                return "skipped"
            try:
                return ("ok", link_oco(ids))
            except ScriptError as exc:
                return ("error", exc.args[0])
        raise ValueError(f"unknown action {action!r}")  # pragma: no cover - a broken script

    def link_oco(ids: list[int]) -> int:
        for i in ids:  # the first order at fault (in the order given) is named
            if not orders[i].working:
                raise ScriptError("is no longer working")
            if orders[i].oco_group is not None:
                raise ScriptError("is already in OCO group")
        g = len(oco_groups)
        oco_groups.append(list(ids))
        for i in ids:
            orders[i].oco_group = g
        return g

    def replace(old: RefOrder, opts: dict, ts: int) -> RefOrder:
        if not old.working:
            raise ScriptError("is no longer working")
        if old.filled_quantity != 0.0:
            raise ScriptError("is partly filled")
        fresh = new_order(ts, old.asset, opts.get("quantity", old.quantity), old.kind,
                          limit=opts.get("limit", old.limit_price),
                          stop=opts.get("stop", old.stop_price), trail_amount=old.trail_amount,
                          trail_percent=old.trail_percent, tif=old.tif, expire=old.expire_ts,
                          parent=old.parent, latency=False, check_parent=False)
        # Undocumented: the copy is a modification of the original: it keeps
        # what is left of its latency, its first eligible bar (IOC, FOK,
        # DAY) and its place behind its parent.
        fresh.arrival_ts = old.arrival_ts
        fresh.bars_to_sit = old.bars_to_sit
        fresh.at_broker = old.at_broker
        fresh.released = old.released
        fresh.evaluated = old.evaluated
        fresh.day = old.day
        fresh.not_before = old.not_before
        if not fresh.at_broker and fresh.arrival_ts > ts and fresh.bars_to_sit == 0:
            arrivals.setdefault(fresh.arrival_ts, []).append(fresh.order_id)
        accept_if_ready(fresh)
        # The copy takes the original's place as parent and in its OCO group.
        fresh.children, old.children = old.children, []
        for cid in fresh.children:
            orders[cid].parent = fresh.order_id
        if old.oco_group is not None:
            members = oco_groups[old.oco_group]
            members[members.index(old.order_id)] = fresh.order_id
            fresh.oco_group, old.oco_group = old.oco_group, None
        end(old, "cancelled", REASONS["replaced"], ts)
        return fresh

    # ------------------------------------------------------------ matching
    def trigger(o: RefOrder, path: list[float], start: tuple[int, float]):
        """``(point, raw price)`` where ``o`` fills on this bar from ``start``, or None."""
        buy = o.remaining > 0
        k0, x = start
        if o.kind == "market":
            # Undocumented: with fill_at="close", a market child freed during
            # the bar fills at once at its start price, like a next-open one.
            return (3, path[3]) if fill_at == "next_close" else (k0, x)
        if o.kind == "market_on_open":
            return (0, x) if k0 == 0 else None  # only at an open (a child freed later: next bar)
        if o.kind == "market_on_close":
            return 3, path[3]

        def limit_from(s):
            lim = o.limit_price
            r = first_reach(path, s, (lambda p: p <= lim) if buy else (lambda p: p >= lim))
            return None if r is None else (r[0], s[1] if r[1] else lim)

        if o.kind == "limit" or (o.kind == "stop_limit" and o.stop_triggered):
            return limit_from(start)
        level = o.stop_price  # stops and trailing stops (the current trailing level)
        r = first_reach(path, start, (lambda p: p >= level) if buy else (lambda p: p <= level))
        if r is None:
            return None
        at = (r[0], x if r[1] else level)
        if o.kind != "stop_limit":
            return at
        o.stop_triggered = True  # from here (and from the next bars) it is a limit
        return limit_from(at)

    def execute(o: RefOrder, raw: float, point: int, ts: int, vol_left: dict, released: list):
        """Fill what the bar allows of ``o`` at ``raw`` (before slippage), or reject it."""
        nonlocal cash
        q = o.remaining
        if max_volume_participation is not None:
            avail = vol_left[o.asset]
            if abs(q) > avail:
                if o.tif == "fok":
                    end(o, "cancelled", REASONS["fok"], ts)
                    return
                q = avail if q > 0 else -avail
                if not fractional:
                    q = whole_units(q)
                if q == 0.0:
                    return  # nothing left of the bar's volume: it stays working
        price = raw * (1 + slip) if q > 0 else raw * (1 - slip)
        if o.kind in ("limit", "stop_limit"):  # a limit never fills worse than its price
            price = min(price, o.limit_price) if q > 0 else max(price, o.limit_price)
        comm = fee(q, price)
        held = position.get(o.asset, 0.0)
        if not allow_short and held + q < 0 and abs(held + q) > QTY_RTOL * max(abs(held), abs(q)):
            end(o, "rejected", REASONS["short"], ts)
            return
        cost = q * price + comm
        if cash - q * price - comm < 0:
            end(o, "rejected", f"insufficient cash: the fill needed {cost:.2f} but only "
                f"{cash:.2f} was available", ts)
            return
        if o.kind in STOP_KINDS and held != 0 and (held > 0) != (q > 0):
            stopped_at[o.asset] = ts  # a stop closed or reduced the position
        cash -= cost
        new = held + q
        if new != 0.0 and abs(new) <= QTY_RTOL * max(abs(held), abs(q)):
            new = 0.0  # float residue of a close (0.1 + 0.2 - 0.3) is flat, exactly
        position[o.asset] = new
        out.fills.append(RefFill(ts, o.asset, o.order_id, q, price, comm,
                                 abs(q) * abs(price - raw)))
        if max_volume_participation is not None:
            vol_left[o.asset] -= abs(q)
        o.filled_quantity += q
        o.fill_notional += abs(q) * price
        o.avg_fill_price = o.fill_notional / abs(o.filled_quantity)
        complete = abs(o.quantity - o.filled_quantity) <= QTY_RTOL * abs(o.quantity)
        if complete:
            o.filled_quantity = o.quantity
            end(o, "filled", "", ts)
        elif o.status != "partially_filled":
            o.status = "partially_filled"
            event(o)
        # OCO: a complete fill cancels the others; a partial fill shrinks them.
        # Undocumented: the others are visited in id order. It shows when a
        # member is also the waiting child of another member: cancelling the
        # parent first cancels the child with the parent's reason.
        if o.oco_group is not None:
            for sid in sorted(oco_groups[o.oco_group]):
                sib = orders[sid]
                if sid == o.order_id or not sib.working:
                    continue
                left = abs(sib.remaining) - abs(q)
                if complete or left <= QTY_RTOL * abs(sib.quantity):
                    end(sib, "cancelled", REASONS["oco"], ts)
                else:
                    sib.quantity = sib.filled_quantity + (left if sib.quantity > 0 else -left)
        # OTO: a complete fill frees the children, from this point of the bar on.
        if complete:
            for cid in o.children:
                child = orders[cid]
                if child.working and not child.released:
                    release(child, o)
                    accept_if_ready(child)
                    if not child.at_broker:
                        continue  # in transit: it works once it reaches the broker
                    if linked_orders_same_bar:
                        released.append((child, (point, raw)))
                    else:  # from the asset's next bar on
                        child.not_before = ts

    def work(ts: int, rows: dict, todo: list, vol_left: dict, phase: str) -> None:
        """Match ``todo`` = [(order, start)] on the bars of ``ts``, then the children they free.

        Each pass: orders that trigger are executed exits first (orders that
        reduce the position as it stands when they are considered), then the
        others; within each group earlier path points first, then order id.
        Undocumented: children freed by fills of a pass form the next pass
        (they cannot join a group that has already been executed).
        """
        while todo:
            cands = []
            for o, start in sorted(todo, key=lambda t: t[0].order_id):
                if not o.working:
                    continue
                _, op, hi, lo, cl, _v = rows[o.asset]
                path = path_points(path_mode, op, hi, lo, cl)
                first = not o.evaluated
                o.evaluated = True
                if o.tif == "day" and o.day is None:
                    o.day = ts // DAY_NS
                hit = trigger(o, path, start)
                if hit is None:
                    if first and o.tif in ("ioc", "fok"):
                        end(o, "cancelled", REASONS[o.tif], ts)
                    continue
                cands.append((o, hit[0], hit[1]))
            released: list = []
            done: set[int] = set()
            for exits in (True, False):
                for point in range(4) if by_point else (None,):
                    for o, pt, raw in cands:
                        if (by_point and pt != point) or o.order_id in done or not o.working:
                            continue
                        held = position.get(o.asset, 0.0)
                        reduces = held != 0 and (held > 0) != (o.remaining > 0)
                        if exits and not reduces:
                            continue
                        if (not exits and not reduces and not same_bar_reentry
                                and stopped_at.get(o.asset) == ts):
                            continue  # no re-entry on the bar of a stop-out
                        done.add(o.order_id)
                        execute(o, raw, pt, ts, vol_left, released)
            for o, _, _ in cands:  # IOC / FOK: what did not fill on the first bar goes
                if o.working and o.tif in ("ioc", "fok"):
                    end(o, "cancelled", REASONS[o.tif], ts)
            todo = released

    def works_now(o: RefOrder, t: int, rows: dict) -> bool:
        return (o.status in ("accepted", "partially_filled") and o.asset in rows
                and (o.not_before is None or t > o.not_before))

    def at_time(t: int, actions_at: list | None) -> None:
        """Everything that happens at time ``t`` (a bar timestamp or a latency arrival)."""
        now["event_time"] = t
        # 0. Latency: orders reaching the broker now (before the bars of t).
        for oid in arrivals.pop(t, []):
            o = orders[oid]
            if o.working and not o.at_broker and o.bars_to_sit == 0:
                o.at_broker = True
                accept_if_ready(o)
        if t not in bar_ts:
            return
        rows = {row[0]: row for row in bars_at[t]}
        # 1. Expiry, at every bar timestamp, whether the asset has a bar or not
        # (undocumented: a latency arrival alone is not a timestamp here).
        for o in orders:
            if not o.working:
                continue
            if o.tif == "gtd" and t > o.expire_ts:
                end(o, "expired", REASONS["gtd"], t)
            elif o.tif == "day" and o.day is not None and t // DAY_NS > o.day:
                end(o, "expired", REASONS["day"], t)
        # 2. latency_bars: bars of the asset (at or after placement + latency) sat
        # out. The order reaches the broker at its asset's first bar after
        # those (docs/semantics.md, "Latency"), never at a timestamp where the
        # asset has no bar; a waiting child sits out its bars meanwhile and is
        # accepted once it is at the broker and freed by its parent.
        # Undocumented: with fill_at="close" the bars counted are those after
        # placement.
        for o in orders:
            if o.working and not o.at_broker and o.asset in rows and t >= o.arrival_ts:
                if o.bars_to_sit > 0:
                    o.bars_to_sit -= 1
                else:
                    o.at_broker = True
                    accept_if_ready(o)
        # 3. Match the working orders against the bars, from the open.
        vol_left = {}
        if max_volume_participation is not None:
            vol_left = {a: max_volume_participation * row[5] for a, row in rows.items()}
        todo = [(o, (0, rows[o.asset][1])) for o in orders if works_now(o, t, rows)
                and not (close_mode and o.kind == "market")]
        work(t, rows, todo, vol_left, "open")
        # Trailing stops follow the closes; a leg waiting for its parent does not.
        for o in orders:
            if o.working and o.kind == "trailing_stop" and o.released and o.asset in rows:
                c = rows[o.asset][4]
                if (c > o.trail_extreme) if o.quantity < 0 else (c < o.trail_extreme):
                    o.trail_extreme = c
                    o.stop_price = trail_level(o)
        # 4. Mark.
        for a, row in rows.items():
            last_close[a] = row[4]
        # 5. The strategy acts (orders placed now are matched from the next bar).
        for action in actions_at or []:
            out.outcomes.append(act(action, t))
        # 6. fill_at="close": market orders at this timestamp's closes.
        if close_mode:
            todo = [(o, (3, rows[o.asset][4])) for o in orders
                    if works_now(o, t, rows) and o.kind == "market"]
            work(t, rows, todo, vol_left, "close")
        # 7. Record.
        value = 0.0
        for a in sorted(position):
            if position[a] != 0:
                value += position[a] * last_close[a]
        out.records.append((t, cash, value))

    # ------------------------------------------------------------ the run
    bars_at = dict(zip(timestamps, bars, strict=True))
    first = timestamps[0]
    for action in script.get(START, []):  # on_start: orders carry the first timestamp
        out.outcomes.append(act(action, first))
    k = 0
    while k < len(timestamps) or arrivals:
        t = timestamps[k] if k < len(timestamps) else math.inf
        if arrivals and min(arrivals) < t:
            at_time(min(arrivals), None)
            continue
        at_time(t, script.get(k, []))
        k += 1
    out.positions = {a: q for a, q in position.items() if q != 0}
    return out
