"""A local fake of Alpaca's trading and market-data APIs, for offline tests.

:class:`FakeAlpaca` serves, on 127.0.0.1 and free ports only:

* the trading REST API v2 (``/v2/account``, ``/v2/positions``, ``/v2/orders``
  POST/GET/DELETE, ``/v2/orders:by_client_order_id``, ``/v2/clock``,
  ``/v2/assets``) and the historical bars endpoint of the data API
  (``/v2/stocks/bars``) on one HTTP server;
* the market-data stream ``/v2/{feed}`` (msgpack frames, ``connected`` /
  ``authenticated`` / ``subscription`` control messages, ``"T": "b"`` bars with
  msgpack timestamps) and the trading stream ``/stream`` (JSON
  ``authorization`` / ``listening`` / ``trade_updates`` messages) on one
  websocket server,

in the formats alpaca-py 0.44 reads (``alpaca/data/live/websocket.py``,
``alpaca/trading/stream.py``, ``alpaca/common/rest.py``), so the SDK's own
clients talk to it through their ``url_override``.

The bar frame is published one timestamp at a time by the test
(:meth:`FakeAlpaca.publish_next`), which keeps every scenario deterministic.
Market orders fill at the open of the asset's next published bar: when a
timestamp is published, the orders received before it fill first (their
``fill`` trade updates are sent), then its bars are streamed. Other order
types rest until cancelled. Faults are injected on command: drop the stream
sockets, answer order requests with an HTTP status (429, 403, 5xx; with or
without creating the order), delay an order's HTTP answer past the client's
timeout, send a bar twice, hold a bar back and send it late (out of order),
and hold an ML signal back.
"""

from __future__ import annotations

import asyncio
import datetime as _dt
import json
import math
import queue
import socket
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

import msgpack
import polars as pl
from websockets.asyncio.server import ServerConnection, serve
from websockets.exceptions import ConnectionClosed

__all__ = ["FakeAlpaca", "FakeOrder", "iso_ns"]

LOOPBACK = "127.0.0.1"


def iso_ns(ns: int) -> str:
    """RFC 3339 UTC text of a nanosecond timestamp, as Alpaca writes it."""
    sec, frac = divmod(int(ns), 1_000_000_000)
    base = _dt.datetime.fromtimestamp(sec, tz=_dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S")
    if frac == 0:
        return base + "Z"
    if frac % 1000 == 0:
        return f"{base}.{frac // 1000:06d}Z"
    return f"{base}.{frac:09d}Z"


def _num(x: float) -> str:
    """Alpaca sends quantities and prices as decimal strings."""
    return repr(float(x)) if not float(x).is_integer() else str(int(x))


@dataclass
class FakeOrder:
    """An order as the fake venue holds it."""

    id: str
    client_order_id: str
    symbol: str
    qty: float
    side: str
    type: str
    time_in_force: str
    limit_price: float | None
    stop_price: float | None
    created_ns: int
    status: str = "new"
    filled_qty: float = 0.0
    filled_avg_price: float | None = None
    filled_ns: int | None = None
    canceled_ns: int | None = None
    executions: list[str] = field(default_factory=list)

    def to_json(self, asset_id: str, now_ns: int) -> dict[str, Any]:
        """The order object of the REST API and of ``trade_updates``."""
        return {
            "id": self.id,
            "client_order_id": self.client_order_id,
            "created_at": iso_ns(self.created_ns),
            "updated_at": iso_ns(now_ns),
            "submitted_at": iso_ns(self.created_ns),
            "filled_at": None if self.filled_ns is None else iso_ns(self.filled_ns),
            "expired_at": None,
            "canceled_at": None if self.canceled_ns is None else iso_ns(self.canceled_ns),
            "failed_at": None,
            "replaced_at": None,
            "replaced_by": None,
            "replaces": None,
            "asset_id": asset_id,
            "symbol": self.symbol,
            "asset_class": "us_equity",
            "notional": None,
            "qty": _num(self.qty),
            "filled_qty": _num(self.filled_qty),
            "filled_avg_price": None if self.filled_avg_price is None
            else _num(self.filled_avg_price),
            "order_class": "simple",
            "order_type": self.type,
            "type": self.type,
            "side": self.side,
            "position_intent": None,
            "time_in_force": self.time_in_force,
            "limit_price": None if self.limit_price is None else _num(self.limit_price),
            "stop_price": None if self.stop_price is None else _num(self.stop_price),
            "status": self.status,
            "extended_hours": False,
            "legs": None,
            "trail_percent": None,
            "trail_price": None,
            "hwm": None,
        }


@dataclass
class _OrderFault:
    status: int
    create: bool          # create the order before answering with the error
    delay: float          # seconds to sleep before answering


class FakeAlpaca:
    """Alpaca's REST and stream endpoints on 127.0.0.1, fed from a bar frame.

    Parameters
    ----------
    bars : polars.DataFrame
        Long frame with ``timestamp`` (datetime or int64 ns, UTC), ``asset``,
        ``open``, ``high``, ``low``, ``close``, ``volume`` and optionally the
        columns named in `signal_columns`.
    signal_columns : sequence of str
        Columns published as ML signal records ``(ts, asset, {name: value})``
        on :attr:`signal_queue` right after each timestamp's bars.
    cash : float
        Starting cash of the account.
    key_id, secret_key : str
        The only credentials the fake accepts.
    feed : str
        Data feed name in the stream path (``iex`` or ``sip``).
    """

    def __init__(
        self,
        bars: pl.DataFrame,
        *,
        signal_columns: Sequence[str] = (),
        cash: float = 100_000.0,
        key_id: str = "PKFAKEKEY",
        secret_key: str = "fake-secret-do-not-print",
        feed: str = "iex",
    ) -> None:
        frame = bars
        if frame.schema["timestamp"] != pl.Int64:
            frame = frame.with_columns(
                pl.col("timestamp").dt.replace_time_zone(None).dt.cast_time_unit("ns")
                .cast(pl.Int64)
            )
        frame = frame.sort(["timestamp", "asset"])
        self.signal_columns = tuple(signal_columns)
        self._steps: list[tuple[int, list[dict[str, Any]]]] = []
        for (ts,), part in frame.group_by(["timestamp"], maintain_order=True):
            self._steps.append((int(ts), part.to_dicts()))
        self.symbols: tuple[str, ...] = tuple(sorted(frame["asset"].unique().to_list()))
        self.asset_ids = {s: str(uuid.uuid5(uuid.NAMESPACE_DNS, f"fake-alpaca/{s}"))
                          for s in self.symbols}
        self.key_id = key_id
        self.secret_key = secret_key
        self.feed = feed
        self.cash = float(cash)
        self.positions: dict[str, float] = {}
        self.orders: dict[str, FakeOrder] = {}          # by venue id
        self.by_client_id: dict[str, FakeOrder] = {}
        #: Every POST /v2/orders body received, in order (faulted ones included).
        self.order_requests: list[dict[str, Any]] = []
        #: ``time.perf_counter()`` at which each of those requests arrived.
        self.order_received: list[float] = []
        #: Every fill sent on trade_updates: (client_order_id, ts, symbol, signed qty, price).
        self.fills: list[tuple[str, int, str, float, float]] = []
        #: Signal records ``(ts, asset, {name: value})`` of published timestamps.
        self.signal_queue: queue.Queue[tuple[int, str, dict[str, float]]] = queue.Queue()
        self.cursor = 0                                 # timestamps published so far
        self.last_price: dict[str, float] = {}
        self._order_faults: list[_OrderFault] = []
        self._last_fill_msgs: list[dict[str, Any]] = []
        self._held_bars: list[dict[str, Any]] = []
        self._held_signals: list[tuple[int, str, dict[str, float]]] = []
        self._hold_signal_keys: set[tuple[int, str]] = set()
        self._lock = threading.RLock()
        self._data_conns: set[ServerConnection] = set()
        self._trade_conns: set[ServerConnection] = set()
        self.data_subscriptions = 0                     # successful subscribe messages
        self.data_connections = 0                       # data stream connections accepted
        self._loop: asyncio.AbstractEventLoop | None = None
        self._loop_thread: threading.Thread | None = None
        self._ws_server: Any = None
        self._http: ThreadingHTTPServer | None = None
        self._http_thread: threading.Thread | None = None
        self.ws_port = 0
        self.http_port = 0

    # ------------------------------------------------------------------ life
    def start(self) -> FakeAlpaca:
        """Bind both servers to 127.0.0.1 on free ports and serve in background threads."""
        ready = threading.Event()

        def run_loop() -> None:
            loop = asyncio.new_event_loop()
            self._loop = loop
            asyncio.set_event_loop(loop)

            async def boot() -> None:
                self._ws_server = await serve(self._ws_handler, LOOPBACK, 0,
                                              ping_interval=None, compression=None)
                self.ws_port = self._ws_server.sockets[0].getsockname()[1]
                ready.set()

            loop.run_until_complete(boot())
            loop.run_forever()
            loop.close()

        self._loop_thread = threading.Thread(target=run_loop, name="fake-alpaca-ws", daemon=True)
        self._loop_thread.start()
        if not ready.wait(10):
            raise RuntimeError("fake Alpaca websocket server did not start")
        handler = _make_http_handler(self)
        self._http = ThreadingHTTPServer((LOOPBACK, 0), handler)
        self._http.daemon_threads = True
        self.http_port = self._http.server_address[1]
        self._http_thread = threading.Thread(target=self._http.serve_forever, args=(0.02,),
                                             name="fake-alpaca-http", daemon=True)
        self._http_thread.start()
        return self

    def stop(self) -> None:
        """Close every connection and both servers."""
        if self._http is not None:
            self._http.shutdown()
            self._http.server_close()
            self._http = None
        if self._loop is not None:
            async def close() -> None:
                self._ws_server.close()
                for ws in list(self._data_conns | self._trade_conns):
                    ws.transport.abort()
                await self._ws_server.wait_closed()

            asyncio.run_coroutine_threadsafe(close(), self._loop).result(10)
            self._loop.call_soon_threadsafe(self._loop.stop)
            assert self._loop_thread is not None
            self._loop_thread.join(10)
            self._loop = None

    # ------------------------------------------------------------------ urls
    @property
    def rest_url(self) -> str:
        """Base URL for ``TradingClient(url_override=...)`` and the historical data client."""
        return f"http://{LOOPBACK}:{self.http_port}"

    @property
    def data_stream_url(self) -> str:
        """URL for ``StockDataStream(url_override=...)``."""
        return f"ws://{LOOPBACK}:{self.ws_port}/v2/{self.feed}"

    @property
    def trading_stream_url(self) -> str:
        """URL for ``TradingStream(url_override=...)``."""
        return f"ws://{LOOPBACK}:{self.ws_port}/stream"

    # ------------------------------------------------------------- the frame
    @property
    def timestamps(self) -> list[int]:
        """Every timestamp of the frame, in order (ns)."""
        return [ts for ts, _ in self._steps]

    @property
    def now_ns(self) -> int:
        """The venue's clock: the last published timestamp (the first one before any)."""
        return self._steps[max(self.cursor - 1, 0)][0]

    def published(self) -> bool:
        """True once every timestamp of the frame has been published."""
        return self.cursor >= len(self._steps)

    def publish_next(self, *, duplicate: Iterable[str] = (), hold: Iterable[str] = (),
                     hold_signal: Iterable[str] = (),
                     before_bars: Callable[[list[tuple[str, int, str, float, float]]], None]
                     | None = None) -> int:
        """Publish the next timestamp: fill resting market orders, then stream its bars.

        Parameters
        ----------
        duplicate : iterable of str
            Assets whose bar is sent twice (in the same frame, one after the other).
        hold : iterable of str
            Assets whose bar is held back (sent later by :meth:`send_held`).
        hold_signal : iterable of str
            Assets whose signal record is held back (:meth:`release_signals`).
        before_bars : callable, optional
            Called with this step's fills once their trade updates are sent and
            before the bars go out (a test can wait there until its client has
            the fills, to run in lockstep with a backtest).

        Returns
        -------
        int
            The published timestamp (ns).
        """
        with self._lock:
            if self.published():
                raise IndexError("every timestamp of the fake's frame is already published")
            ts, rows = self._steps[self.cursor]
            self.cursor += 1
            trade_msgs = self._fill_resting(ts, rows)
            dup, held = set(duplicate), set(hold)
            out: list[dict[str, Any]] = []
            for row in rows:
                self.last_price[row["asset"]] = float(row["close"])
                msg = self._bar_msg(row)
                if row["asset"] in held:
                    self._held_bars.append(row)
                    continue
                out.append(msg)
                if row["asset"] in dup:
                    out.append(self._bar_msg(row))
            self._last_fill_msgs = trade_msgs
            n_fills = len(self.fills)
            self._run(self._broadcast_trade(trade_msgs))
            if before_bars is not None:
                before_bars(self.fills[n_fills - len(trade_msgs):])
            self._run(self._broadcast_data(out))
            held_sig = set(hold_signal)
            for row in rows:
                if self.signal_columns:
                    rec = (ts, row["asset"], {c: float(row[c]) for c in self.signal_columns})
                    if row["asset"] in held_sig:
                        self._held_signals.append(rec)
                    else:
                        self.signal_queue.put(rec)
            return ts

    def send_held(self) -> int:
        """Send the bars held back by ``publish_next(hold=...)`` now; returns how many."""
        with self._lock:
            msgs = [self._bar_msg(r) for r in self._held_bars]
            self._held_bars.clear()
        self._run(self._broadcast_data(msgs))
        return len(msgs)

    def repeat_fills(self) -> int:
        """Send the fill trade updates of the last published timestamp again (same ids)."""
        msgs = list(self._last_fill_msgs)
        self._run(self._broadcast_trade(msgs))
        return len(msgs)

    def release_signals(self) -> int:
        """Put the signal records held back by ``publish_next(hold_signal=...)`` on the queue."""
        with self._lock:
            held, self._held_signals = self._held_signals, []
        for rec in held:
            self.signal_queue.put(rec)
        return len(held)

    def _bar_msg(self, row: dict[str, Any]) -> dict[str, Any]:
        vol = float(row["volume"])
        return {
            "T": "b", "S": row["asset"],
            "o": float(row["open"]), "h": float(row["high"]), "l": float(row["low"]),
            "c": float(row["close"]), "v": int(vol) if vol.is_integer() else vol,
            "t": msgpack.Timestamp.from_unix_nano(int(row["timestamp"])),
            "n": 1, "vw": float(row["close"]),
        }

    def _fill_resting(self, ts: int, rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """Fill every working market order of an asset that has a bar at `ts`, at its open."""
        opens = {r["asset"]: float(r["open"]) for r in rows}
        msgs = []
        for order in list(self.orders.values()):
            if order.status not in ("new", "accepted") or order.type != "market":
                continue
            if order.symbol not in opens:
                continue
            price = opens[order.symbol]
            qty = order.qty - order.filled_qty
            signed = qty if order.side == "buy" else -qty
            order.filled_qty = order.qty
            order.filled_avg_price = price
            order.filled_ns = ts
            order.status = "filled"
            exec_id = str(uuid.uuid4())
            order.executions.append(exec_id)
            self.cash -= signed * price
            pos = self.positions.get(order.symbol, 0.0) + signed
            if pos == 0.0:
                self.positions.pop(order.symbol, None)
            else:
                self.positions[order.symbol] = pos
            self.fills.append((order.client_order_id, ts, order.symbol, signed, price))
            msgs.append(self._trade_update("fill", order, ts, exec_id=exec_id, price=price,
                                           qty=qty, position_qty=pos))
        return msgs

    def _trade_update(self, event: str, order: FakeOrder, ts: int, *, exec_id: str | None = None,
                      price: float | None = None, qty: float | None = None,
                      position_qty: float | None = None) -> dict[str, Any]:
        data: dict[str, Any] = {
            "event": event,
            "timestamp": iso_ns(ts),
            "order": order.to_json(self.asset_ids[order.symbol], ts),
        }
        if exec_id is not None:
            data.update(execution_id=exec_id, price=_num(price or 0.0), qty=_num(qty or 0.0),
                        position_qty=_num(position_qty or 0.0))
        return {"stream": "trade_updates", "data": data}

    # ---------------------------------------------------------------- faults
    def fail_next_order(self, status: int, *, create: bool = False, count: int = 1) -> None:
        """Answer the next `count` order POSTs with HTTP `status`.

        With ``create=True`` the order is created first (the answer is lost,
        as when a gateway times out after the venue accepted it).
        """
        with self._lock:
            self._order_faults.extend(_OrderFault(status, create, 0.0) for _ in range(count))

    def delay_next_order(self, seconds: float) -> None:
        """Create the next POSTed order at once but answer only after `seconds`."""
        with self._lock:
            self._order_faults.append(_OrderFault(200, True, seconds))

    def drop_data_stream(self) -> int:
        """Abort every market-data socket (no close frame); returns how many were open."""
        return self._run(self._abort(self._data_conns))

    def drop_trading_stream(self) -> int:
        """Abort every trading-stream socket; returns how many were open."""
        return self._run(self._abort(self._trade_conns))

    def wait_data_subscribed(self, count: int = 1, timeout: float = 10.0) -> None:
        """Block until `count` subscribe messages were answered in total."""
        self._wait(lambda: self.data_subscriptions >= count, timeout, "data subscription")

    def wait_trading_listening(self, timeout: float = 10.0) -> None:
        """Block until a client listens to trade_updates."""
        self._wait(lambda: bool(self._trade_conns), timeout, "trade_updates listener")

    @staticmethod
    def _wait(cond: Any, timeout: float, what: str) -> None:
        end = time.monotonic() + timeout
        while not cond():
            if time.monotonic() > end:
                raise TimeoutError(f"fake Alpaca: no {what} within {timeout} s")
            time.sleep(0.005)

    # ------------------------------------------------------------ async side
    def _run(self, coro: Any) -> Any:
        assert self._loop is not None, "FakeAlpaca.start() first"
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result(10)

    async def _abort(self, conns: set[ServerConnection]) -> int:
        n = len(conns)
        for ws in list(conns):
            conns.discard(ws)
            ws.transport.abort()
        return n

    async def _broadcast_data(self, msgs: list[dict[str, Any]]) -> None:
        if not msgs:
            return
        frame = msgpack.packb(msgs, use_bin_type=True)
        for ws in list(self._data_conns):
            try:
                await ws.send(frame)
            except ConnectionClosed:
                self._data_conns.discard(ws)

    async def _broadcast_trade(self, msgs: list[dict[str, Any]]) -> None:
        for msg in msgs:
            frame = json.dumps(msg).encode()
            for ws in list(self._trade_conns):
                try:
                    await ws.send(frame)
                except ConnectionClosed:
                    self._trade_conns.discard(ws)

    async def _ws_handler(self, ws: ServerConnection) -> None:
        path = ws.request.path if ws.request is not None else ""
        try:
            if path == f"/v2/{self.feed}":
                await self._serve_data(ws)
            elif path == "/stream":
                await self._serve_trading(ws)
            else:
                await ws.close(1008, "unknown path")
        except ConnectionClosed:
            pass
        finally:
            self._data_conns.discard(ws)
            self._trade_conns.discard(ws)

    async def _serve_data(self, ws: ServerConnection) -> None:
        self.data_connections += 1
        await ws.send(msgpack.packb([{"T": "success", "msg": "connected"}]))
        auth = msgpack.unpackb(await ws.recv())
        if (auth.get("action") != "auth" or auth.get("key") != self.key_id
                or auth.get("secret") != self.secret_key):
            await ws.send(msgpack.packb([{"T": "error", "code": 402, "msg": "auth failed"}]))
            await ws.close()
            return
        await ws.send(msgpack.packb([{"T": "success", "msg": "authenticated"}]))
        while True:
            msg = msgpack.unpackb(await ws.recv())
            if msg.get("action") == "subscribe":
                bars = sorted(set(msg.get("bars", [])))
                unknown = [s for s in bars if s != "*" and s not in self.symbols]
                if unknown:
                    await ws.send(msgpack.packb(
                        [{"T": "error", "code": 400, "msg": f"invalid symbol {unknown[0]}"}]))
                    continue
                await ws.send(msgpack.packb([{
                    "T": "subscription", "trades": [], "quotes": [], "bars": bars,
                    "updatedBars": [], "dailyBars": [], "statuses": [], "lulds": [],
                    "corrections": [], "cancelErrors": [],
                }]))
                self._data_conns.add(ws)
                self.data_subscriptions += 1

    async def _serve_trading(self, ws: ServerConnection) -> None:
        auth = json.loads(await ws.recv())
        data = auth.get("data", {})
        ok = (auth.get("action") == "authenticate" and data.get("key_id") == self.key_id
              and data.get("secret_key") == self.secret_key)
        await ws.send(json.dumps({"stream": "authorization", "data": {
            "action": "authenticate", "status": "authorized" if ok else "unauthorized"}}).encode())
        if not ok:
            await ws.close()
            return
        while True:
            msg = json.loads(await ws.recv())
            if msg.get("action") == "listen":
                streams = msg.get("data", {}).get("streams", [])
                await ws.send(json.dumps({"stream": "listening",
                                          "data": {"streams": streams}}).encode())
                if "trade_updates" in streams:
                    self._trade_conns.add(ws)

    # ----------------------------------------------------------------- REST
    def _account_json(self) -> dict[str, Any]:
        equity = self.cash + sum(q * self.last_price.get(s, 0.0) for s, q in self.positions.items())
        return {
            "id": str(uuid.uuid5(uuid.NAMESPACE_DNS, "fake-alpaca/account")),
            "account_number": "PA0FAKE", "status": "ACTIVE", "crypto_status": "INACTIVE",
            "currency": "USD", "buying_power": _num(self.cash),
            "regt_buying_power": _num(self.cash),
            "daytrading_buying_power": "0", "non_marginable_buying_power": _num(self.cash),
            "cash": _num(self.cash), "accrued_fees": "0", "pending_transfer_in": "0",
            "portfolio_value": _num(equity), "pattern_day_trader": False,
            "trading_blocked": False, "transfers_blocked": False, "account_blocked": False,
            "created_at": iso_ns(self._steps[0][0]), "trade_suspended_by_user": False,
            "multiplier": "1", "shorting_enabled": True, "equity": _num(equity),
            "last_equity": _num(equity), "long_market_value": "0", "short_market_value": "0",
            "initial_margin": "0", "maintenance_margin": "0", "last_maintenance_margin": "0",
            "sma": "0", "daytrade_count": 0,
        }

    def _position_json(self, sym: str, qty: float) -> dict[str, Any]:
        px = self.last_price.get(sym, 0.0)
        return {
            "asset_id": self.asset_ids[sym], "symbol": sym, "exchange": "NASDAQ",
            "asset_class": "us_equity", "avg_entry_price": _num(px), "qty": _num(qty),
            "qty_available": _num(qty), "side": "long" if qty > 0 else "short",
            "market_value": _num(qty * px), "cost_basis": _num(qty * px),
            "unrealized_pl": "0", "unrealized_plpc": "0", "unrealized_intraday_pl": "0",
            "unrealized_intraday_plpc": "0", "current_price": _num(px), "lastday_price": _num(px),
            "change_today": "0",
        }

    def _asset_json(self, sym: str) -> dict[str, Any]:
        return {"id": self.asset_ids[sym], "class": "us_equity", "exchange": "NASDAQ",
                "symbol": sym, "name": sym, "status": "active", "tradable": True,
                "marginable": True, "shortable": True, "easy_to_borrow": True,
                "fractionable": True}

    def _create_order(self, body: dict[str, Any]) -> tuple[int, Any]:
        """Validate and book an order as Alpaca does; returns (HTTP status, JSON)."""
        coid = body.get("client_order_id") or str(uuid.uuid4())
        if coid in self.by_client_id:
            return 422, {"code": 40010001, "message": "client_order_id must be unique"}
        sym = body.get("symbol")
        if sym not in self.asset_ids:
            return 422, {"code": 40010001, "message": f"asset \"{sym}\" not found"}
        try:
            qty = float(body.get("qty"))
        except (TypeError, ValueError):
            return 422, {"code": 40010001, "message": "qty is required"}
        if not (qty > 0 and math.isfinite(qty)):
            return 422, {"code": 40010001, "message": "qty must be > 0"}
        side, otype = body.get("side"), body.get("type")
        if side not in ("buy", "sell") or otype not in ("market", "limit", "stop", "stop_limit"):
            return 422, {"code": 40010001, "message": "invalid side or type"}
        if side == "buy" and qty * self.last_price.get(sym, 0.0) > self.cash:
            return 403, {"code": 40310000, "message": "insufficient buying power"}
        lp, sp = body.get("limit_price"), body.get("stop_price")
        order = FakeOrder(
            id=str(uuid.uuid4()), client_order_id=coid, symbol=sym, qty=qty, side=side,
            type=otype, time_in_force=body.get("time_in_force", "day"),
            limit_price=None if lp is None else float(lp),
            stop_price=None if sp is None else float(sp), created_ns=self.now_ns,
        )
        self.orders[order.id] = order
        self.by_client_id[coid] = order
        self._run(self._broadcast_trade([self._trade_update("new", order, self.now_ns)]))
        return 200, order.to_json(self.asset_ids[sym], self.now_ns)

    def _bars_json(self, query: dict[str, list[str]]) -> tuple[int, Any]:
        symbols = query.get("symbols", [""])[0].split(",")
        tf = query.get("timeframe", [""])[0]
        if tf != "1Min":
            return 422, {"code": 42210000, "message": f"fake supports 1Min bars, not {tf!r}"}
        start = _parse_iso(query["start"][0]) if "start" in query else None
        end = _parse_iso(query["end"][0]) if "end" in query else None
        out: dict[str, list[dict[str, Any]]] = {}
        for ts, rows in self._steps[: self.cursor]:
            if (start is not None and ts < start) or (end is not None and ts > end):
                continue
            for row in rows:
                if row["asset"] in symbols:
                    m = self._bar_msg(row)
                    m["t"] = iso_ns(ts)
                    del m["T"], m["S"]
                    out.setdefault(row["asset"], []).append(m)
        return 200, {"bars": out, "next_page_token": None}

    def handle_http(self, method: str, target: str, headers: Any,
                    body: bytes) -> tuple[int, Any, float]:
        """Route one REST request; returns (status, JSON body or None, delay seconds)."""
        received = time.perf_counter()
        if (headers.get("APCA-API-KEY-ID") != self.key_id
                or headers.get("APCA-API-SECRET-KEY") != self.secret_key):
            return 401, {"code": 40110000, "message": "request is not authorized"}, 0.0
        parts = urlsplit(target)
        path, query = parts.path, parse_qs(parts.query)
        with self._lock:
            if method == "GET" and path == "/v2/account":
                return 200, self._account_json(), 0.0
            if method == "GET" and path == "/v2/positions":
                pos = sorted(self.positions.items())
                return 200, [self._position_json(s, q) for s, q in pos], 0.0
            if method == "GET" and path == "/v2/clock":
                now = iso_ns(self.now_ns)
                return 200, {"timestamp": now, "is_open": True,
                             "next_open": now, "next_close": now}, 0.0
            if method == "GET" and path == "/v2/assets":
                return 200, [self._asset_json(s) for s in self.symbols], 0.0
            if method == "GET" and path.startswith("/v2/assets/"):
                sym = path.rsplit("/", 1)[1]
                if sym not in self.asset_ids:
                    return 404, {"code": 40410000, "message": "asset not found"}, 0.0
                return 200, self._asset_json(sym), 0.0
            if method == "GET" and path == "/v2/stocks/bars":
                s, js = self._bars_json(query)
                return s, js, 0.0
            if method == "POST" and path == "/v2/orders":
                req = json.loads(body or b"{}")
                self.order_requests.append(req)
                self.order_received.append(received)
                if self._order_faults:
                    fault = self._order_faults.pop(0)
                    if fault.create:
                        status, js = self._create_order(req)
                        if fault.status == 200:
                            return status, js, fault.delay
                    return fault.status, {"code": fault.status * 100000,
                                          "message": _REASONS.get(fault.status, "error")}, 0.0
                s, js = self._create_order(req)
                return s, js, 0.0
            if method == "GET" and path == "/v2/orders:by_client_order_id":
                coid = query.get("client_order_id", [""])[0]
                order = self.by_client_id.get(coid)
                if order is None:
                    return 404, {"code": 40410000, "message": "order not found"}, 0.0
                return 200, order.to_json(self.asset_ids[order.symbol], self.now_ns), 0.0
            if method == "GET" and path == "/v2/orders":
                status = query.get("status", ["open"])[0]
                sel = [o for o in self.orders.values() if status == "all"
                       or (status == "open") == (o.status in ("new", "accepted"))]
                return 200, [o.to_json(self.asset_ids[o.symbol], self.now_ns) for o in sel], 0.0
            if path.startswith("/v2/orders/"):
                oid = path.rsplit("/", 1)[1]
                order = self.orders.get(oid)
                if order is None:
                    return 404, {"code": 40410000, "message": "order not found"}, 0.0
                if method == "GET":
                    return 200, order.to_json(self.asset_ids[order.symbol], self.now_ns), 0.0
                if method == "DELETE":
                    if order.status not in ("new", "accepted"):
                        why = f"order is not cancelable (status {order.status})"
                        return 422, {"code": 42210000, "message": why}, 0.0
                    order.status = "canceled"
                    order.canceled_ns = self.now_ns
                    self._run(self._broadcast_trade(
                        [self._trade_update("canceled", order, self.now_ns)]))
                    return 204, None, 0.0
            return 404, {"code": 40410000, "message": f"no route {method} {path}"}, 0.0


_REASONS = {429: "rate limit exceeded", 403: "forbidden", 500: "internal server error",
            502: "bad gateway", 503: "service unavailable", 504: "gateway timeout"}


def _parse_iso(text: str) -> int:
    d = _dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
    if d.tzinfo is None:
        d = d.replace(tzinfo=_dt.timezone.utc)
    delta = d - _dt.datetime(1970, 1, 1, tzinfo=_dt.timezone.utc)
    return (delta.days * 86_400 + delta.seconds) * 1_000_000_000 + delta.microseconds * 1000


def _make_http_handler(fake: FakeAlpaca) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def setup(self) -> None:
            super().setup()
            # headers and body are written separately: without this, Nagle's
            # algorithm and the client's delayed ACK add ~40 ms to answers
            self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

        def _serve(self, method: str) -> None:
            n = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(n) if n else b""
            status, js, delay = fake.handle_http(method, self.path, self.headers, body)
            if delay:
                time.sleep(delay)
            payload = b"" if js is None else json.dumps(js).encode()
            try:
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)
            except (BrokenPipeError, ConnectionResetError):
                pass

        def do_GET(self) -> None:  # noqa: N802 - http.server's names
            self._serve("GET")

        def do_POST(self) -> None:  # noqa: N802
            self._serve("POST")

        def do_DELETE(self) -> None:  # noqa: N802
            self._serve("DELETE")

        def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
            return

    return Handler
