"""Alpaca adapters: :class:`AlpacaBroker` and :class:`AlpacaStreamFeed` on alpaca-py.

``AlpacaBroker`` sends orders through alpaca-py's ``TradingClient`` (the paper
endpoint unless ``live=True``) and turns ``TradingStream`` trade updates into
:class:`~mlbacktest.live.base.VenueFill` and
:class:`~mlbacktest.live.base.OrderUpdate` records. ``AlpacaStreamFeed``
assembles ``StockDataStream`` bars (and, optionally, ML signals arriving
separately) into one :class:`~mlbacktest.live.base.BarBatch` per timestamp.

alpaca-py runs its streams in asyncio; both adapters run them in a background
thread and hand data to the synchronous ``next_batch`` / ``poll_events``
through thread-safe queues.

Guarantees
----------
* Orders carry the caller's ``client_order_id``. After a timeout, a 5xx answer
  or a lost connection the broker looks the id up before sending again, and
  the venue refuses a second order with the same id (HTTP 422), which the
  broker resolves by the same look-up: an order is never doubled.
* HTTP 429 gives one ``rate_limited`` ErrorEvent per answer and a retry after
  an exponential backoff; 403 and other 4xx give one ``rejected`` ErrorEvent
  and a ``rejected`` OrderUpdate.
* A fill reported twice (same execution id, or a cumulative quantity already
  applied) is delivered once.
* A dropped data stream gives one ``disconnect`` and, once resubscribed, one
  ``reconnect`` ErrorEvent; the bars published meanwhile are fetched from the
  historical bars endpoint, so no bar is lost or delivered twice.
* A bar seen twice is dropped with one ``duplicate_bar`` event; a bar for a
  timestamp already delivered is dropped with one ``out_of_order_bar`` event;
  a bar whose signals miss the timeout is delivered with NaN signals and one
  ``stale_signal`` event per asset.
* Credentials come from arguments, a file readable by its owner only, or the
  environment (``APCA_API_KEY_ID`` / ``APCA_API_SECRET_KEY``); they are never
  logged, shown in a repr or put into an exception message.

alpaca-py is an optional dependency: ``pip install mlbacktest[alpaca]``.
"""

from __future__ import annotations

import abc
import asyncio
import calendar
import datetime as _dt
import logging
import math
import os
import queue
import threading
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

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

__all__ = ["AlpacaBroker", "AlpacaCredentials", "AlpacaStreamFeed", "load_credentials"]

log = logging.getLogger(__name__)

_INSTALL_HINT = "the Alpaca adapters need alpaca-py: pip install mlbacktest[alpaca]"
_KEY_VAR = "APCA_API_KEY_ID"
_SECRET_VAR = "APCA_API_SECRET_KEY"


def _require_alpaca() -> None:
    """Import alpaca-py or raise an ImportError that says how to install it."""
    try:
        import alpaca  # noqa: F401
    except ImportError as exc:
        raise ImportError(_INSTALL_HINT) from exc
    _stream_class("data")  # imports alpaca-py's stream modules without their import warning
    _stream_class("trading")


# --------------------------------------------------------------------- credentials
class AlpacaCredentials:
    """An API key id and its secret; the secret never appears in a repr or str.

    Parameters
    ----------
    key_id : str
        The API key id.
    secret_key : str
        The secret key.
    """

    __slots__ = ("_key_id", "_secret")

    def __init__(self, key_id: str, secret_key: str) -> None:
        if not key_id or not secret_key:
            raise ValueError("Alpaca credentials need both an API key id and a secret key")
        self._key_id = key_id
        self._secret = secret_key

    @property
    def key_id(self) -> str:
        """The API key id."""
        return self._key_id

    def secret(self) -> str:
        """The secret key (a method, so that it is never shown by accident)."""
        return self._secret

    def __repr__(self) -> str:
        shown = self._key_id[:4] + "..." if len(self._key_id) > 4 else "..."
        return f"AlpacaCredentials(key_id={shown!r}, secret_key='***')"

    __str__ = __repr__

    def __reduce__(self) -> Any:
        raise TypeError("AlpacaCredentials are not picklable (they would be written somewhere)")


def load_credentials(api_key: str | None = None, secret_key: str | None = None,
                     credentials_file: str | os.PathLike[str] | None = None
                     ) -> AlpacaCredentials:
    """Find the Alpaca credentials: arguments, then a file, then the environment.

    Parameters
    ----------
    api_key, secret_key : str, optional
        Given together, they are used as they are.
    credentials_file : path-like, optional
        A file of ``APCA_API_KEY_ID=...`` and ``APCA_API_SECRET_KEY=...`` lines
        (or a JSON object with those names) that only its owner may read or
        write (mode 600 or stricter); read by
        :func:`mlbacktest.live.credentials.load_credentials`. Without it, the
        environment variables of the same names are read.

    Returns
    -------
    AlpacaCredentials

    Raises
    ------
    ValueError
        Only one of `api_key` / `secret_key` given.
    mlbacktest.live.credentials.CredentialsError
        The file is readable or writable by group or others, cannot be read,
        or a value is missing (from the file or the environment).
    """
    from mlbacktest.live.credentials import load_credentials as _load

    if api_key is not None or secret_key is not None:
        if not api_key or not secret_key:
            raise ValueError("api_key and secret_key must be given together")
        return AlpacaCredentials(api_key, secret_key)
    found = _load(credentials_file, key_name=_KEY_VAR, secret_name=_SECRET_VAR)
    return AlpacaCredentials(found.key_id, found.secret_key)


# --------------------------------------------------------------------------- helpers
def _iso_to_ns(text: str) -> int:
    """Nanoseconds since the epoch of an RFC 3339 timestamp (fractions kept to the ns)."""
    s = text.strip()
    offset = 0
    if s.endswith("Z") or s.endswith("z"):
        s = s[:-1]
    elif len(s) > 6 and s[-6] in "+-" and s[-3] == ":":
        sign = 1 if s[-6] == "+" else -1
        offset = sign * (int(s[-5:-3]) * 3600 + int(s[-2:]) * 60)
        s = s[:-6]
    base, _, frac = s.partition(".")
    d = _dt.datetime.fromisoformat(base)
    sec = calendar.timegm(d.timetuple()) - offset
    frac_ns = int((frac + "000000000")[:9]) if frac else 0
    return sec * 1_000_000_000 + frac_ns


def _dt_to_ns(d: _dt.datetime) -> int:
    """Nanoseconds since the epoch of an aware datetime, in integers (no float rounding)."""
    if d.tzinfo is None:
        d = d.replace(tzinfo=_dt.timezone.utc)
    delta = d - _dt.datetime(1970, 1, 1, tzinfo=_dt.timezone.utc)
    return (delta.days * 86_400 + delta.seconds) * 1_000_000_000 + delta.microseconds * 1000


def _ns_to_datetime(ns: int) -> _dt.datetime:
    sec, rem = divmod(int(ns), 1_000_000_000)
    return _dt.datetime.fromtimestamp(sec, tz=_dt.timezone.utc) + _dt.timedelta(
        microseconds=rem // 1000)


class _QuietWsLogger(logging.LoggerAdapter):  # type: ignore[type-arg]
    """websockets logs every frame at DEBUG, auth frames included: never let it."""

    def isEnabledFor(self, level: int) -> bool:  # noqa: N802 - logging's name
        return level > logging.DEBUG and self.logger.isEnabledFor(level)

    def debug(self, *args: Any, **kwargs: Any) -> None:
        return


def _ws_params() -> dict[str, Any]:
    return {
        "ping_interval": 10, "ping_timeout": 180, "max_queue": 1024,
        "logger": _QuietWsLogger(logging.getLogger("mlbacktest.live.alpaca.ws"), {}),
    }


def _backoff(attempt: int, base: float, cap: float) -> float:
    return min(cap, base * (2.0 ** max(attempt - 1, 0)))


def _run_stream(stream: Any, name: str) -> threading.Thread:
    thread = threading.Thread(target=stream.run, name=name, daemon=True)
    thread.start()
    return thread


def _stop_stream(stream: Any, thread: threading.Thread | None) -> None:
    """Stop an alpaca-py stream promptly: signal it, then close its socket."""
    loop = getattr(stream, "_loop", None)
    if loop is not None and loop.is_running():
        async def halt() -> None:
            await stream.stop_ws()   # no reconnection from now on
            await stream.close()     # wakes the receive loop at once

        coro = halt()
        try:
            asyncio.run_coroutine_threadsafe(coro, loop).result(5)
        except (RuntimeError, TimeoutError, asyncio.TimeoutError, OSError) as exc:
            coro.close()
            log.warning("closing the %s stream: %s", type(stream).__name__, type(exc).__name__)
    elif loop is None:
        stream._stop_stream_queue.put_nowait({"should_stop": True})
    if thread is not None:
        thread.join(10)


_stream_classes: dict[str, type] = {}


def _stream_class(kind: str) -> type:
    """alpaca-py's stream classes, extended to report disconnects and resubscriptions.

    Defined on first use so that alpaca-py is imported only when an adapter is made.
    """
    if kind in _stream_classes:
        return _stream_classes[kind]
    import warnings

    import websockets

    with warnings.catch_warnings():
        # alpaca-py's streams are built on websockets.legacy, which warns on import
        warnings.simplefilter("ignore", DeprecationWarning)
        from alpaca.data.live import StockDataStream
        from alpaca.trading.stream import TradingStream

    base = StockDataStream if kind == "data" else TradingStream

    class _Stream(base):  # type: ignore[misc, valid-type]
        """The SDK's stream with connection incidents reported to its owner."""

        def _setup(self, owner: _StreamOwner, min_backoff: float, max_backoff: float) -> None:
            self._owner = owner
            self._down = False           # a disconnect was reported, no reconnect yet
            self._attempt = 0            # connection attempts since the disconnect
            self._ready = threading.Event()  # first subscription confirmed
            self._reconnect_min_backoff = min_backoff
            self._reconnect_max_backoff = max_backoff

        async def _start_ws(self) -> None:
            if self._down:
                self._attempt += 1
            await super()._start_ws()

        async def _resubscribed(self) -> None:
            if self._down:
                self._down = False
                await self._owner._on_reconnect(self._attempt)
            elif not self._ready.is_set():
                await self._owner._on_subscribed()
            self._attempt = 0

        async def _consume(self) -> Any:
            try:
                return await super()._consume()
            except websockets.WebSocketException as exc:
                if not self._down and not self._owner._stopping:
                    self._down = True
                    self._owner._on_disconnect(exc)
                raise

        async def _dispatch(self, msg: dict) -> None:
            if (kind == "data" and msg.get("T") == "subscription") or (
                    kind == "trading" and msg.get("stream") == "listening"):
                await self._resubscribed()
                self._ready.set()
            await super()._dispatch(msg)

    _Stream.__name__ = _Stream.__qualname__ = f"_Alpaca{kind.title()}Stream"
    _stream_classes[kind] = _Stream
    return _Stream


class _StreamOwner(abc.ABC):
    """What an extended stream reports to: its adapter."""

    _stopping: bool = False

    @abc.abstractmethod
    def _on_disconnect(self, exc: BaseException) -> None:
        """The stream was lost (reported once per outage)."""

    @abc.abstractmethod
    async def _on_reconnect(self, attempt: int) -> None:
        """The stream is back after ``attempt`` attempts and resubscribed."""

    async def _on_subscribed(self) -> None:  # noqa: B027 - optional hook
        """The first subscription is confirmed (nothing to do by default)."""


# ------------------------------------------------------------------------------ feed
_BAR, _SIG, _ERR, _GAP, _BARS = 0, 1, 2, 3, 4


class AlpacaStreamFeed(LiveFeed, _StreamOwner):
    """Bars from Alpaca's market-data stream, one :class:`BarBatch` per timestamp.

    Parameters
    ----------
    symbols : sequence of str
        The universe; :attr:`asset_names` holds it sorted (as the engine wants).
    api_key, secret_key, credentials_file
        Credentials, see :func:`load_credentials`.
    feed : str
        ``"iex"`` (free) or ``"sip"``.
    signal_names : sequence of str
        Names of the ML signals merged into each batch (empty: no signals).
    signals : queue.Queue, iterable or callable, optional
        Where the signal records ``(ts, asset, {name: value})`` come from: a
        queue another thread fills, an iterable (read in a background thread)
        or a callable polled every `signal_poll` seconds that returns the
        records available now.
    signal_timeout : float
        Seconds a complete timestamp waits for its signals; past it the rows
        still without signals get NaN and one ``stale_signal`` event each.
    signal_poll : float
        Seconds between two calls of a callable `signals` source.
    bar_timeout : float
        Seconds a timestamp waits, from its first bar, for the assets that have
        not sent a bar for it (nor a later one); past it the batch is emitted
        with the bars that are there. Suspended while the stream is down.
    end : int, optional
        Last timestamp (ns) to deliver; ``next_batch`` returns None after it.
    history_from : int, optional
        First timestamp (ns) to deliver: once subscribed, the bars from it on
        that were published before are fetched from the historical bars
        endpoint and delivered first (a restart catching up with its
        journal, or a warm-up). Default: only bars streamed from now on.
    url_override : str, optional
        Market-data stream URL (tests point it at a local fake).
    rest_url_override : str, optional
        Base URL of the historical data API used to fill a reconnect's gap.
    reconnect_backoff : (float, float)
        Minimum and maximum seconds between reconnection attempts.
    connect_timeout : float
        Seconds :meth:`start` waits for the subscription to be confirmed.
    tz : str, optional
        IANA zone of the timestamps for display.
    """

    def __init__(
        self,
        symbols: Sequence[str],
        *,
        api_key: str | None = None,
        secret_key: str | None = None,
        credentials_file: str | os.PathLike[str] | None = None,
        feed: str = "iex",
        signal_names: Sequence[str] = (),
        signals: queue.Queue | Iterable[Any] | Callable[[], Iterable[Any]] | None = None,
        signal_timeout: float = 1.0,
        signal_poll: float = 0.005,
        bar_timeout: float = 5.0,
        end: int | None = None,
        history_from: int | None = None,
        url_override: str | None = None,
        rest_url_override: str | None = None,
        reconnect_backoff: tuple[float, float] = (1.0, 30.0),
        connect_timeout: float = 15.0,
        tz: str | None = None,
    ) -> None:
        _require_alpaca()
        names = tuple(str(s) for s in symbols)
        if not names:
            raise ValueError("symbols: the feed needs at least one symbol")
        if len(set(names)) != len(names):
            dup = next(s for s in names if names.count(s) > 1)
            raise ValueError(f"symbols: {dup!r} is listed twice")
        if feed not in ("iex", "sip"):
            raise ValueError(f"feed must be 'iex' or 'sip', got {feed!r}")
        if signal_names and signals is None:
            raise ValueError("signal_names given but no signals source")
        if signals is not None and not signal_names:
            raise ValueError("a signals source needs signal_names "
                             "(the columns of BarBatch.signals)")
        for pname, v in (("signal_timeout", signal_timeout), ("bar_timeout", bar_timeout),
                         ("signal_poll", signal_poll), ("connect_timeout", connect_timeout)):
            if not (v > 0 and math.isfinite(v)):
                raise ValueError(f"{pname} must be a positive number of seconds, got {v!r}")
        self._creds = load_credentials(api_key, secret_key, credentials_file)
        self.asset_names = tuple(sorted(names))
        self.signal_names = tuple(str(s) for s in signal_names)
        self.tz = tz
        self._index = {s: i for i, s in enumerate(self.asset_names)}
        self._feed_name = feed
        self._signals_src = signals
        self._signal_timeout = float(signal_timeout)
        self._signal_poll = float(signal_poll)
        self._bar_timeout = float(bar_timeout)
        self._end = None if end is None else int(end)
        self._history_from = None if history_from is None else int(history_from)
        self._url = url_override
        self._rest_url = rest_url_override
        self._backoff = (float(reconnect_backoff[0]), float(reconnect_backoff[1]))
        self._connect_timeout = float(connect_timeout)
        # thread-safe hand-over from the stream and signal threads
        self._q: queue.Queue[tuple] = queue.Queue()
        self._stream: Any = None
        self._thread: threading.Thread | None = None
        self._sig_thread: threading.Thread | None = None
        self._stopping = False
        self._started = False
        # stream-thread state: the newest bar ts received per asset (backfill start)
        self._stream_last: dict[int, int] = {}
        self._bar_buf: list[tuple] = []
        self._flush_scheduled = False
        # consumer-thread state
        n = len(names)
        self._pending: dict[int, dict[int, tuple[float, float, float, float, float]]] = {}
        self._first_seen: dict[int, float] = {}
        self._complete_since: dict[int, float] = {}
        self._seen: dict[int, dict[int, str]] = {}     # ts -> {asset: "stream" | "backfill"}
        self._latest = np.full(n, np.iinfo(np.int64).min, dtype=np.int64)
        self._sig: dict[tuple[int, int], np.ndarray] = {}
        self._last_emitted: int | None = None
        self._gap_open = False
        self._ended = False
        self._errors: list[ErrorEvent] = []

    def __repr__(self) -> str:
        return (f"AlpacaStreamFeed(symbols={list(self.asset_names)!r}, feed={self._feed_name!r}, "
                f"signals={list(self.signal_names)!r}, url={self._url or 'alpaca'!r})")

    # ----------------------------------------------------------------- life
    def start(self) -> None:
        """Connect, authenticate and subscribe to the bars; wait for the subscription."""
        if self._started:
            raise RuntimeError("AlpacaStreamFeed.start() was already called")
        self._started = True
        cls = _stream_class("data")  # first: it imports alpaca.data quietly
        from alpaca.data.enums import DataFeed

        kwargs: dict[str, Any] = {"raw_data": True, "feed": DataFeed(self._feed_name),
                                  "websocket_params": _ws_params()}
        if self._url is not None:
            kwargs["url_override"] = self._url
        stream = cls(self._creds.key_id, self._creds.secret(), **kwargs)
        stream._setup(self, *self._backoff)
        stream.subscribe_bars(self._on_bar, *self.asset_names)
        self._stream = stream
        self._thread = _run_stream(stream, "alpaca-bars")
        if self._signals_src is not None:
            self._sig_thread = threading.Thread(target=self._pump_signals,
                                                name="alpaca-signals", daemon=True)
            self._sig_thread.start()
        if not stream._ready.wait(self._connect_timeout):
            self.stop()
            raise ConnectionError(
                f"the Alpaca data stream {self._url or 'endpoint'} did not confirm the "
                f"subscription within {self._connect_timeout} s (check credentials and feed)"
            )

    def stop(self) -> None:
        """Close the stream and stop the background threads."""
        self._stopping = True
        if self._stream is not None:
            _stop_stream(self._stream, self._thread)
            self._stream = None
        if self._sig_thread is not None:
            self._sig_thread.join(1.0)

    # -------------------------------------------------------- stream thread
    async def _on_bar(self, msg: dict) -> None:
        a = self._index.get(msg.get("S", ""))
        if a is None:
            return
        t = msg["t"]
        ts = t.to_unix_nano() if hasattr(t, "to_unix_nano") else _iso_to_ns(str(t))
        if ts > self._stream_last.get(a, ts - 1):
            self._stream_last[a] = ts
        # the bars of one websocket frame are handed over together (one queue item):
        # a timestamp is never seen half-delivered, whatever the thread scheduling
        self._bar_buf.append((_BAR, a, ts, float(msg["o"]), float(msg["h"]), float(msg["l"]),
                              float(msg["c"]), float(msg["v"]), "stream"))
        if not self._flush_scheduled:
            self._flush_scheduled = True
            asyncio.get_running_loop().call_soon(self._flush_bars)

    def _flush_bars(self) -> None:
        """Runs once the stream has dispatched the whole frame (its task yields)."""
        self._flush_scheduled = False
        buf, self._bar_buf = self._bar_buf, []
        if buf:
            self._q.put((_BARS, buf))

    def _on_disconnect(self, exc: BaseException) -> None:
        self._q.put((_GAP, True))
        self._q.put((_ERR, ErrorEvent(0, "feed", "disconnect",
                                      f"market-data stream lost: {type(exc).__name__}")))

    async def _on_reconnect(self, attempt: int) -> None:
        self._q.put((_ERR, ErrorEvent(0, "feed", "reconnect",
                                      f"market-data stream reconnected and resubscribed after "
                                      f"{attempt} attempt(s)", attempt=attempt)))
        loop = asyncio.get_running_loop()
        await loop.run_in_executor(None, self._backfill)
        self._q.put((_GAP, False))

    async def _on_subscribed(self) -> None:
        if self._history_from is not None:
            start = self._history_from
            await asyncio.get_running_loop().run_in_executor(None, self._backfill, start)

    def _backfill(self, start: int | None = None) -> None:
        """Fetch, from the historical bars endpoint, the bars from `start` on.

        By default from the last bar received: the bars published while the
        stream was down. Bars also streamed are dropped silently on arrival.
        """
        if start is None:
            if not self._stream_last:
                return
            start = min(self._stream_last.values())
        from alpaca.data.enums import DataFeed
        from alpaca.data.historical import StockHistoricalDataClient
        from alpaca.data.requests import StockBarsRequest
        from alpaca.data.timeframe import TimeFrame

        try:
            client = StockHistoricalDataClient(self._creds.key_id, self._creds.secret(),
                                               raw_data=True, url_override=self._rest_url)
            req = StockBarsRequest(symbol_or_symbols=list(self.asset_names),
                                   timeframe=TimeFrame.Minute, start=_ns_to_datetime(start),
                                   feed=DataFeed(self._feed_name))
            got: Any = client.get_stock_bars(req)  # raw_data: {symbol: [bar, ...]}
        except Exception as exc:  # noqa: BLE001 - reported as an event, the stream goes on
            self._q.put((_ERR, ErrorEvent(0, "feed", "venue",
                                          f"backfill after reconnect failed: "
                                          f"{type(exc).__name__}: {str(exc)[:200]}")))
            return
        rows = []
        for sym, bars in (got or {}).items():
            a = self._index.get(sym)
            if a is None:
                continue
            for b in bars:
                ts = _iso_to_ns(b["t"])
                rows.append((ts, a, b))
                if ts > self._stream_last.get(a, ts - 1):
                    self._stream_last[a] = ts  # a later reconnect backfills from here
        rows.sort(key=lambda r: (r[0], r[1]))
        for ts, a, b in rows:
            self._q.put((_BAR, a, ts, float(b["o"]), float(b["h"]), float(b["l"]),
                         float(b["c"]), float(b["v"]), "backfill"))

    def _pump_signals(self) -> None:
        src = self._signals_src
        if isinstance(src, queue.Queue):
            while not self._stopping:
                try:
                    rec = src.get(timeout=0.05)
                except queue.Empty:
                    continue
                self._q.put((_SIG, rec))
        elif callable(src):
            while not self._stopping:
                for rec in src() or ():
                    self._q.put((_SIG, rec))
                time.sleep(self._signal_poll)
        else:
            for rec in src:  # type: ignore[union-attr]
                if self._stopping:
                    break
                self._q.put((_SIG, rec))

    # ------------------------------------------------------- consumer side
    def take_errors(self) -> list[ErrorEvent]:
        """Incidents since the last call (the ts is the last delivered bar time)."""
        out, self._errors = self._errors, []
        return out

    def _event(self, kind: str, message: str, *, attempt: int = 0, asset: str | None = None,
               ts: int | None = None) -> None:
        when = ts if ts is not None else (self._last_emitted or 0)
        self._errors.append(ErrorEvent(when, "feed", kind, message, attempt=attempt, asset=asset))

    def _ingest(self, item: tuple, now: float) -> None:
        tag = item[0]
        if tag == _BAR:
            self._ingest_bar(item, now)
        elif tag == _BARS:
            for bar in item[1]:
                self._ingest_bar(bar, now)
        elif tag == _SIG:
            self._ingest_signal(item[1])
        elif tag == _ERR:
            ev: ErrorEvent = item[1]
            self._event(ev.kind, ev.message, attempt=ev.attempt)
        elif tag == _GAP:
            self._gap_open = bool(item[1])

    def _ingest_bar(self, item: tuple, now: float) -> None:
        _, a, ts, o, h, lo, c, v, src = item
        if self._end is not None and ts > self._end:
            return
        seen = self._seen.setdefault(ts, {})
        if a in seen:
            if src == "backfill" or seen[a] == "backfill":
                return  # the overlap of a reconnect's backfill with the stream
            self._event("duplicate_bar", f"bar of {self.asset_names[a]} at {ts} arrived twice; "
                        "the copy was dropped", asset=self.asset_names[a], ts=ts)
            return
        seen[a] = src
        if self._last_emitted is not None and ts <= self._last_emitted:
            self._event("out_of_order_bar",
                        f"bar of {self.asset_names[a]} at {ts} arrived after the batch of "
                        f"{self._last_emitted} was delivered; dropped",
                        asset=self.asset_names[a], ts=ts)
            return
        self._pending.setdefault(ts, {})[a] = (o, h, lo, c, v)
        self._first_seen.setdefault(ts, now)
        if ts > self._latest[a]:
            self._latest[a] = ts

    def _ingest_signal(self, rec: Any) -> None:
        try:
            ts, asset, values = rec
            ts = int(ts)
        except (TypeError, ValueError) as exc:
            raise ValueError(f"a signal record must be (ts, asset, {{name: value}}), "
                             f"got {rec!r}") from exc
        a = self._index.get(asset)
        if a is None:
            raise ValueError(f"signal record at ts {ts} names asset {asset!r}, which the feed "
                             f"does not subscribe to")
        if not isinstance(values, Mapping):
            raise ValueError(f"signal record at ts {ts} for {asset!r}: values must be a mapping")
        extra = set(values) - set(self.signal_names)
        missing = [n for n in self.signal_names if n not in values]
        if extra or missing:
            raise ValueError(f"signal record at ts {ts} for {asset!r}: "
                             f"unknown {sorted(extra)}, missing {missing}")
        if self._last_emitted is not None and ts <= self._last_emitted:
            return  # too late: the bar went out with NaN and a stale_signal event
        self._sig[(ts, a)] = np.array([float(values[n]) for n in self.signal_names])

    def _deadline(self) -> float | None:
        """The next monotonic time at which a waiting timestamp may be emitted."""
        if not self._pending:
            return None
        ts = min(self._pending)
        if ts in self._complete_since:
            return self._complete_since[ts] + self._signal_timeout
        if self._gap_open:
            return None
        return self._first_seen[ts] + self._bar_timeout

    def _try_emit(self, now: float) -> BarBatch | None:
        if not self._pending:
            return None
        ts = min(self._pending)
        rows = self._pending[ts]
        if ts not in self._complete_since:
            complete = all(a in rows or self._latest[a] > ts for a in range(len(self._latest)))
            if not complete and (self._gap_open or now - self._first_seen[ts] < self._bar_timeout):
                return None
            self._complete_since[ts] = now
        idx = sorted(rows)
        k = len(self.signal_names)
        sig = np.full((len(idx), k), np.nan)
        if k:
            missing = [a for a in idx if (ts, a) not in self._sig]
            if missing and now - self._complete_since[ts] < self._signal_timeout:
                return None
            for r, a in enumerate(idx):
                vals = self._sig.pop((ts, a), None)
                if vals is not None:
                    sig[r] = vals
            for a in missing:
                self._event("stale_signal",
                            f"signals of {self.asset_names[a]} at {ts} missed the "
                            f"{self._signal_timeout} s timeout; the bar goes out with NaN",
                            asset=self.asset_names[a], ts=ts)
            for key in [key for key in self._sig if key[0] <= ts]:
                del self._sig[key]
        fields = np.array([rows[a] for a in idx], dtype=np.float64).reshape(len(idx), 5)
        batch = BarBatch(
            ts=ts, asset=np.array(idx, dtype=np.int64),
            open=fields[:, 0].copy(), high=fields[:, 1].copy(), low=fields[:, 2].copy(),
            close=fields[:, 3].copy(), volume=fields[:, 4].copy(), signals=sig,
        )
        del self._pending[ts]
        self._first_seen.pop(ts, None)
        self._complete_since.pop(ts, None)
        self._last_emitted = ts
        if len(self._seen) > 8192:  # keep the duplicate memory bounded: the newest 4096 ts
            for old in sorted(self._seen)[:4096]:
                del self._seen[old]
        if self._end is not None and ts >= self._end:
            self._ended = True
        return batch

    def next_batch(self, timeout: float) -> BarBatch | None:
        """Block until the next timestamp's bars (and signals) are complete and return them.

        Parameters
        ----------
        timeout : float
            Seconds to wait at most.

        Returns
        -------
        BarBatch or None
            None once `end` was delivered or the feed was stopped.

        Raises
        ------
        TimeoutError
            Nothing could be delivered within `timeout`.
        ValueError
            A malformed signal record (naming its ts and asset).
        """
        if not self._started:
            raise RuntimeError("AlpacaStreamFeed.start() must be called before next_batch()")
        give_up = time.monotonic() + float(timeout)
        while True:
            if self._ended or self._stopping:
                return None
            now = time.monotonic()
            while True:
                try:
                    item = self._q.get_nowait()
                except queue.Empty:
                    break
                self._ingest(item, now)
            batch = self._try_emit(now)
            if batch is not None:
                return batch
            wake = self._deadline()
            until = give_up if wake is None else min(give_up, wake)
            wait = until - time.monotonic()
            if wait <= 0:
                if time.monotonic() >= give_up:
                    raise TimeoutError(f"no complete bar batch within {timeout} s")
                continue
            try:
                item = self._q.get(timeout=wait)
            except queue.Empty:
                continue
            self._ingest(item, time.monotonic())


# ---------------------------------------------------------------------------- broker
_TERMINAL = {"filled", "canceled", "expired", "rejected", "replaced", "done_for_day"}


class AlpacaBroker(LiveBroker, _StreamOwner):
    """Orders and account on Alpaca through alpaca-py's ``TradingClient`` and ``TradingStream``.

    Parameters
    ----------
    api_key, secret_key, credentials_file
        Credentials, see :func:`load_credentials`.
    live : bool
        False (the default) trades on the paper endpoint; True sends orders to
        the real-money endpoint.
    url_override : str, optional
        Base URL of the trading REST API (tests point it at a local fake).
    stream_url_override : str, optional
        URL of the trading stream.
    request_timeout : float
        Seconds an HTTP request may take before it counts as timed out.
    max_attempts : int
        Sends of one order at most (429, 5xx, timeouts) before giving up.
    backoff, max_backoff : float
        Exponential backoff between attempts: ``backoff * 2**(attempt-1)``, capped.
    reconnect_backoff : (float, float)
        Minimum and maximum seconds between trading-stream reconnection attempts.
    connect_timeout : float
        Seconds :meth:`connect` waits for the trading stream to listen.
    """

    def __init__(
        self,
        *,
        api_key: str | None = None,
        secret_key: str | None = None,
        credentials_file: str | os.PathLike[str] | None = None,
        live: bool = False,
        url_override: str | None = None,
        stream_url_override: str | None = None,
        request_timeout: float = 10.0,
        max_attempts: int = 5,
        backoff: float = 0.5,
        max_backoff: float = 8.0,
        reconnect_backoff: tuple[float, float] = (1.0, 30.0),
        connect_timeout: float = 15.0,
    ) -> None:
        _require_alpaca()
        if live is not True and live is not False:
            raise ValueError(f"live must be True or False, got {live!r}")
        if not (isinstance(max_attempts, int) and max_attempts >= 1):
            raise ValueError(f"max_attempts must be an int >= 1, got {max_attempts!r}")
        for pname, v in (("request_timeout", request_timeout), ("backoff", backoff),
                         ("max_backoff", max_backoff), ("connect_timeout", connect_timeout)):
            if not (v >= 0 and math.isfinite(v)):
                raise ValueError(f"{pname} must be a non-negative number, got {v!r}")
        self._creds = load_credentials(api_key, secret_key, credentials_file)
        self.live = live
        self._url = url_override
        self._stream_url = stream_url_override
        self._timeout = float(request_timeout)
        self._max_attempts = max_attempts
        self._backoff = float(backoff)
        self._max_backoff = float(max_backoff)
        self._reconnect_backoff = (float(reconnect_backoff[0]), float(reconnect_backoff[1]))
        self._connect_timeout = float(connect_timeout)
        self._client: Any = None
        self._stream: Any = None
        self._thread: threading.Thread | None = None
        self._events: queue.Queue[VenueFill | OrderUpdate | ErrorEvent] = queue.Queue()
        self._lock = threading.Lock()
        self._venue_ids: dict[str, str] = {}        # client order id -> venue order id
        self._applied: dict[str, float] = {}        # client order id -> filled qty delivered
        self._exec_seen: set[str] = set()
        self._done: set[str] = set()                # orders the venue ended (no fill to come)
        self._status_sent: set[tuple[str, str]] = set()
        self._stopping = False
        self._last_ts = 0

    def __repr__(self) -> str:
        where = self._url or ("live" if self.live else "paper")
        return f"AlpacaBroker(live={self.live}, endpoint={where!r})"

    # ----------------------------------------------------------------- life
    def _make_client(self) -> Any:
        """alpaca-py's TradingClient on the paper endpoint unless ``live``, with our timeout."""
        from alpaca.trading.client import TradingClient
        from requests.adapters import HTTPAdapter

        client = TradingClient(self._creds.key_id, self._creds.secret(), paper=not self.live,
                               url_override=self._url)
        client._retry = 0  # 429 and 5xx come back to us: we retry with events and look-ups
        timeout = self._timeout

        class _TimeoutAdapter(HTTPAdapter):
            def send(self, request: Any, **kwargs: Any) -> Any:  # type: ignore[override]
                if kwargs.get("timeout") is None:
                    kwargs["timeout"] = timeout
                return super().send(request, **kwargs)

        client._session.mount("http://", _TimeoutAdapter())
        client._session.mount("https://", _TimeoutAdapter())
        return client

    def connect(self) -> None:
        """Open the REST session and the trade-updates stream (waits until it listens)."""
        self._client = self._make_client()
        cls = _stream_class("trading")
        kwargs: dict[str, Any] = {"paper": not self.live, "raw_data": True,
                                  "websocket_params": _ws_params()}
        if self._stream_url is not None:
            kwargs["url_override"] = self._stream_url
        stream = cls(self._creds.key_id, self._creds.secret(), **kwargs)
        stream._setup(self, *self._reconnect_backoff)
        stream.subscribe_trade_updates(self._on_trade_update)
        self._stream = stream
        self._thread = _run_stream(stream, "alpaca-trade-updates")
        if not stream._ready.wait(self._connect_timeout):
            self.close()
            raise ConnectionError(
                f"the Alpaca trading stream {self._stream_url or 'endpoint'} did not start "
                f"listening to trade_updates within {self._connect_timeout} s (check credentials)"
            )

    def close(self) -> None:
        """Close the trading stream and the REST session."""
        self._stopping = True
        if self._stream is not None:
            _stop_stream(self._stream, self._thread)
            self._stream = None
        if self._client is not None:
            self._client._session.close()

    def _require(self) -> Any:
        if self._client is None:
            raise RuntimeError("AlpacaBroker.connect() must be called first")
        return self._client

    def _put(self, ev: VenueFill | OrderUpdate | ErrorEvent) -> None:
        self._events.put(ev)

    def _error(self, kind: str, message: str, *, attempt: int = 0, order_id: str | None = None,
               asset: str | None = None) -> None:
        self._put(ErrorEvent(self._last_ts, "broker", kind, message, attempt=attempt,
                             order_id=order_id, asset=asset))

    def _status(self, coid: str, status: str, ts: int, reason: str = "") -> None:
        with self._lock:
            if (coid, status) in self._status_sent:
                return
            self._status_sent.add((coid, status))
            if status != "accepted":
                self._done.add(coid)
        self._put(OrderUpdate(coid, status, ts, reason))

    # -------------------------------------------------------------- orders
    @staticmethod
    def _request(order: VenueOrder) -> Any:
        from alpaca.trading.enums import OrderSide, TimeInForce
        from alpaca.trading.requests import (
            LimitOrderRequest,
            MarketOrderRequest,
            StopLimitOrderRequest,
            StopOrderRequest,
        )

        q = float(order.quantity)
        if not (math.isfinite(q) and q != 0.0):
            raise ValueError(f"order {order.client_order_id}: quantity must be finite and "
                             f"non-zero, got {order.quantity!r}")
        if order.time_in_force not in ("day", "gtc"):
            raise ValueError(f"order {order.client_order_id}: time_in_force must be 'day' or "
                             f"'gtc', got {order.time_in_force!r}")
        common = {"symbol": order.asset, "qty": abs(q),
                  "side": OrderSide.BUY if q > 0 else OrderSide.SELL,
                  "time_in_force": TimeInForce(order.time_in_force),
                  "client_order_id": order.client_order_id}
        needs = {"market": (), "limit": ("limit_price",), "stop": ("stop_price",),
                 "stop_limit": ("limit_price", "stop_price")}
        if order.order_type not in needs:
            raise ValueError(f"order {order.client_order_id}: order_type must be one of "
                             f"{sorted(needs)}, got {order.order_type!r}")
        for p in needs[order.order_type]:
            if not math.isfinite(getattr(order, p)):
                raise ValueError(f"order {order.client_order_id}: a {order.order_type} order "
                                 f"needs a finite {p}")
        if order.order_type == "market":
            return MarketOrderRequest(**common)
        if order.order_type == "limit":
            return LimitOrderRequest(limit_price=order.limit_price, **common)
        if order.order_type == "stop":
            return StopOrderRequest(stop_price=order.stop_price, **common)
        return StopLimitOrderRequest(limit_price=order.limit_price, stop_price=order.stop_price,
                                     **common)

    def _lookup(self, coid: str) -> Any | None:
        """The venue's order of a client order id; None if the venue has none (or cannot say)."""
        from alpaca.common.exceptions import APIError
        from requests.exceptions import RequestException

        try:
            return self._require().get_order_by_client_id(coid)
        except APIError as exc:
            if exc.status_code != 404:
                log.warning("look-up of order %s: HTTP %s", coid, exc.status_code)
            return None
        except RequestException as exc:
            log.warning("look-up of order %s: %s", coid, type(exc).__name__)
            return None

    def _landed(self, coid: str, venue_order: Any) -> None:
        with self._lock:
            self._venue_ids[coid] = str(venue_order.id)

    def submit(self, order: VenueOrder) -> None:
        """Send an order; never doubled, whatever the retries.

        Waits through retries (429, 5xx, timeouts) with exponential backoff;
        every 429 gives a ``rate_limited`` event, a 4xx refusal a ``rejected``
        event and a ``rejected`` OrderUpdate. Before sending again after an
        answer that leaves the outcome unknown (timeout, 5xx, lost
        connection), the order is looked up by its client order id.

        Raises
        ------
        ValueError
            The order cannot be expressed (zero quantity, missing price...).
        """
        from alpaca.common.exceptions import APIError
        from requests.exceptions import RequestException

        client = self._require()
        req = self._request(order)
        coid = order.client_order_id
        with self._lock:
            if coid in self._venue_ids:
                return  # already sent and acknowledged: idempotent
        for attempt in range(1, self._max_attempts + 1):
            try:
                self._landed(coid, client.submit_order(req))
                return
            except APIError as exc:
                status = exc.status_code
                text = _api_message(exc)
                if status == 429:
                    self._error("rate_limited", f"order {coid}: HTTP 429 ({text}); retrying",
                                attempt=attempt, order_id=coid, asset=order.asset)
                elif status == 422 and "client_order_id" in text:
                    found = self._lookup(coid)
                    if found is not None:
                        self._landed(coid, found)
                        return
                    self._reject(order, f"HTTP 422: {text}")
                    return
                elif status is not None and 400 <= status < 500:
                    self._reject(order, f"HTTP {status}: {text}")
                    return
                else:
                    found = self._lookup(coid)
                    if found is not None:
                        self._landed(coid, found)
                        return
                    self._error("venue", f"order {coid}: HTTP {status} ({text}); retrying",
                                attempt=attempt, order_id=coid, asset=order.asset)
            except RequestException as exc:
                found = self._lookup(coid)
                if found is not None:
                    self._landed(coid, found)
                    return
                self._error("venue", f"order {coid}: {type(exc).__name__}; not at the venue, "
                            "retrying", attempt=attempt, order_id=coid, asset=order.asset)
            if attempt < self._max_attempts:
                time.sleep(_backoff(attempt, self._backoff, self._max_backoff))
        found = self._lookup(coid)
        if found is not None:
            self._landed(coid, found)
            return
        self._reject(order, f"not accepted after {self._max_attempts} attempts")

    def _reject(self, order: VenueOrder, reason: str) -> None:
        coid = order.client_order_id
        self._error("rejected", f"order {coid} rejected: {reason}", order_id=coid,
                    asset=order.asset)
        self._status(coid, "rejected", self._last_ts, reason)

    def cancel(self, client_order_id: str) -> None:
        """Ask the venue to cancel an order; the outcome arrives as an OrderUpdate.

        A venue that refuses (the order is filled already, or unknown) gives a
        ``venue`` ErrorEvent.
        """
        from alpaca.common.exceptions import APIError
        from requests.exceptions import RequestException

        client = self._require()
        with self._lock:
            vid = self._venue_ids.get(client_order_id)
        if vid is None:
            found = self._lookup(client_order_id)
            if found is None:
                self._error("venue", f"cancel {client_order_id}: the venue has no such order",
                            order_id=client_order_id)
                return
            vid = str(found.id)
        for attempt in range(1, self._max_attempts + 1):
            try:
                client.cancel_order_by_id(vid)
                return
            except APIError as exc:
                if exc.status_code == 429:
                    self._error("rate_limited", f"cancel {client_order_id}: HTTP 429; retrying",
                                attempt=attempt, order_id=client_order_id)
                elif exc.status_code is not None and exc.status_code < 500:
                    self._error("venue", f"cancel {client_order_id}: HTTP {exc.status_code} "
                                f"({_api_message(exc)})", order_id=client_order_id)
                    return
            except RequestException:
                pass  # a cancel is idempotent: send it again
            time.sleep(_backoff(attempt, self._backoff, self._max_backoff))
        self._error("venue", f"cancel {client_order_id}: no answer after "
                    f"{self._max_attempts} attempts", order_id=client_order_id)

    def _get(self, what: str, fn: Callable[[], Any]) -> Any:
        """A read-only call, retried on 429, 5xx and timeouts (each 429 is reported)."""
        from alpaca.common.exceptions import APIError
        from requests.exceptions import RequestException

        for attempt in range(1, self._max_attempts + 1):
            try:
                return fn()
            except APIError as exc:
                if exc.status_code == 429:
                    self._error("rate_limited", f"{what}: HTTP 429; retrying", attempt=attempt)
                elif exc.status_code is not None and exc.status_code < 500:
                    raise
                elif attempt == self._max_attempts:
                    raise
            except RequestException:
                if attempt == self._max_attempts:
                    raise
            time.sleep(_backoff(attempt, self._backoff, self._max_backoff))
        raise RuntimeError(f"{what}: no answer")  # pragma: no cover - loop returns or raises

    def account(self) -> AccountState:
        """Cash, signed positions and open orders (remaining quantity) as Alpaca reports them."""
        from alpaca.trading.enums import QueryOrderStatus
        from alpaca.trading.requests import GetOrdersRequest

        client = self._require()
        acct = self._get("account", client.get_account)
        positions = self._get("positions", client.get_all_positions)
        orders = self._get("open orders", lambda: client.get_orders(
            GetOrdersRequest(status=QueryOrderStatus.OPEN, limit=500)))
        pos: dict[str, float] = {}
        for p in positions:
            q = abs(float(p.qty))
            pos[p.symbol] = -q if str(getattr(p.side, "value", p.side)) == "short" else q
        open_orders = []
        for o in orders:
            remaining = float(o.qty or 0.0) - float(o.filled_qty or 0.0)
            side = str(getattr(o.side, "value", o.side))
            otype = str(getattr(o.order_type or o.type, "value", o.order_type or o.type))
            open_orders.append(VenueOrder(
                client_order_id=o.client_order_id, asset=o.symbol,
                quantity=remaining if side == "buy" else -remaining, order_type=otype,
                limit_price=float(o.limit_price) if o.limit_price is not None else math.nan,
                stop_price=float(o.stop_price) if o.stop_price is not None else math.nan,
                time_in_force=str(getattr(o.time_in_force, "value", o.time_in_force)),
            ))
        return AccountState(cash=float(acct.cash), positions=pos, open_orders=tuple(open_orders))

    # ------------------------------------------------------------- updates
    async def _on_trade_update(self, msg: dict) -> None:
        data = msg.get("data") or {}
        event = str(data.get("event", ""))
        order = data.get("order") or {}
        coid = str(order.get("client_order_id", ""))
        ts = _iso_to_ns(data["timestamp"]) if data.get("timestamp") else self._last_ts
        self._last_ts = max(self._last_ts, ts)
        if event in ("fill", "partial_fill"):
            exec_id = str(data.get("execution_id") or "")
            cum = float(order.get("filled_qty") or 0.0)
            with self._lock:
                if exec_id and exec_id in self._exec_seen:
                    return
                self._exec_seen.add(exec_id)
                applied = self._applied.get(coid, 0.0)
                new = min(float(data.get("qty") or 0.0), cum - applied)
                if new <= 1e-12:
                    return
                self._applied[coid] = applied + new
                if "id" in order:
                    self._venue_ids.setdefault(coid, str(order["id"]))
                if cum >= float(order.get("qty") or math.inf):
                    self._done.add(coid)
            signed = new if order.get("side") == "buy" else -new
            self._put(VenueFill(coid, exec_id, ts, str(order.get("symbol", "")), signed,
                                float(data["price"])))
        elif event in ("new", "accepted"):
            self._status(coid, "accepted", ts)
        elif event == "canceled":
            self._status(coid, "cancelled", ts)
        elif event == "expired":
            self._status(coid, "expired", ts)
        elif event == "replaced":
            self._status(coid, "replaced", ts)
        elif event == "rejected":
            with self._lock:
                first = (coid, "rejected") not in self._status_sent
            if first:
                self._error("rejected", f"order {coid} rejected by the venue", order_id=coid,
                            asset=order.get("symbol"))
            self._status(coid, "rejected", ts, str(order.get("status", "")))

    def _on_disconnect(self, exc: BaseException) -> None:
        self._error("disconnect", f"trading stream lost: {type(exc).__name__}")

    async def _on_reconnect(self, attempt: int) -> None:
        self._error("reconnect", f"trading stream reconnected after {attempt} attempt(s)",
                    attempt=attempt)
        loop = asyncio.get_running_loop()
        await loop.run_in_executor(None, self._recover_fills)

    def _recover_fills(self) -> None:
        """After a trading-stream gap: fills of our working orders missed meanwhile, by REST."""
        with self._lock:
            coids = [c for c in self._venue_ids if c not in self._done]
        for coid in coids:
            o = self._lookup(coid)
            if o is None:
                continue
            cum = float(o.filled_qty or 0.0)
            with self._lock:
                applied = self._applied.get(coid, 0.0)
                new = cum - applied
                if new <= 1e-12:
                    continue
                self._applied[coid] = cum
            side = str(getattr(o.side, "value", o.side))
            ts = _dt_to_ns(o.filled_at) if o.filled_at else self._last_ts
            self._put(VenueFill(coid, f"rest:{o.id}:{cum}", ts, o.symbol,
                                new if side == "buy" else -new, float(o.filled_avg_price)))

    def poll_events(self, timeout: float = 0.0) -> list[VenueFill | OrderUpdate | ErrorEvent]:
        """Fills, order updates and incidents since the last call, in arrival order."""
        out: list[VenueFill | OrderUpdate | ErrorEvent] = []
        if timeout > 0:
            try:
                out.append(self._events.get(timeout=timeout))
            except queue.Empty:
                return out
        while True:
            try:
                out.append(self._events.get_nowait())
            except queue.Empty:
                return out


def _api_message(exc: Any) -> str:
    """The venue's message of an alpaca-py APIError (its JSON body), shortened."""
    try:
        return str(exc.message)[:200]
    except (ValueError, KeyError, TypeError):
        return str(exc)[:200]
