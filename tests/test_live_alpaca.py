"""AlpacaBroker and AlpacaStreamFeed against a local fake of Alpaca (tests/fake_alpaca.py).

Everything runs offline on 127.0.0.1: a guard refuses any other address for
the whole module. The fake publishes one timestamp at a time on the test's
command, so every scenario is deterministic.
"""

from __future__ import annotations

import datetime as dt
import logging
import math
import os
import socket
import sys
import time

import numpy as np
import polars as pl
import pytest

pytest.importorskip("alpaca", reason="alpaca-py is the optional extra mlbacktest[alpaca]")

from fake_alpaca import FakeAlpaca  # noqa: E402

from mlbacktest.live import ErrorEvent, OrderUpdate, VenueFill, VenueOrder  # noqa: E402
from mlbacktest.live.alpaca import (  # noqa: E402
    AlpacaBroker,
    AlpacaCredentials,
    AlpacaStreamFeed,
    _iso_to_ns,
    load_credentials,
)
from mlbacktest.live.credentials import CredentialsError  # noqa: E402

SYMBOLS = ("AAA", "BBB")
N_TS = 8
LOOPBACK_HOSTS = {"127.0.0.1", "localhost", "::1"}


# --------------------------------------------------------------------- the guard
@pytest.fixture(autouse=True)
def loopback_only(monkeypatch: pytest.MonkeyPatch) -> None:
    """Refuse every name resolution and connection that is not to the loopback interface."""
    real_getaddrinfo = socket.getaddrinfo
    real_create_connection = socket.create_connection

    def getaddrinfo(host, *args, **kwargs):  # type: ignore[no-untyped-def]
        h = host.decode() if isinstance(host, bytes) else host
        if h not in LOOPBACK_HOSTS:
            raise OSError(f"test guard: connection to {h!r} refused (loopback only)")
        return real_getaddrinfo(host, *args, **kwargs)

    def create_connection(address, *args, **kwargs):  # type: ignore[no-untyped-def]
        if address[0] not in LOOPBACK_HOSTS:
            raise OSError(f"test guard: connection to {address[0]!r} refused (loopback only)")
        return real_create_connection(address, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
    monkeypatch.setattr(socket, "create_connection", create_connection)


def test_guard_refuses_other_hosts() -> None:
    with pytest.raises(OSError, match="loopback only"):
        socket.getaddrinfo("paper-api.alpaca.markets", 443)
    with pytest.raises(OSError, match="loopback only"):
        socket.create_connection(("1.1.1.1", 443), timeout=0.1)


# ---------------------------------------------------------------------- fixtures
def _frame(signals: bool = False) -> pl.DataFrame:
    t0 = dt.datetime(2024, 1, 2, 14, 30)
    rows = []
    for k in range(N_TS):
        for j, sym in enumerate(SYMBOLS):
            o = 100.0 + 10 * j + k + 0.25
            row = {"timestamp": t0 + dt.timedelta(minutes=k), "asset": sym, "open": o,
                   "high": o + 1.0, "low": o - 1.0, "close": o + 0.5, "volume": 1000.0 + k}
            if signals:
                row["pred"] = round(0.01 * (k + 1) * (1 if j == 0 else -1), 6)
            rows.append(row)
    return pl.DataFrame(rows)


@pytest.fixture
def fake() -> FakeAlpaca:
    f = FakeAlpaca(_frame(signals=True), signal_columns=["pred"]).start()
    yield f
    f.stop()


def _feed(fake: FakeAlpaca, **kw) -> AlpacaStreamFeed:  # type: ignore[no-untyped-def]
    kw.setdefault("end", fake.timestamps[-1])
    kw.setdefault("reconnect_backoff", (0.3, 1.0))
    return AlpacaStreamFeed(
        SYMBOLS, api_key=fake.key_id, secret_key=fake.secret_key,
        url_override=fake.data_stream_url, rest_url_override=fake.rest_url, **kw,
    )


def _broker(fake: FakeAlpaca, **kw) -> AlpacaBroker:  # type: ignore[no-untyped-def]
    kw.setdefault("backoff", 0.01)
    kw.setdefault("reconnect_backoff", (0.05, 0.2))
    return AlpacaBroker(api_key=fake.key_id, secret_key=fake.secret_key,
                        url_override=fake.rest_url, stream_url_override=fake.trading_stream_url,
                        **kw)


def _expected(fake: FakeAlpaca) -> dict[int, dict[str, tuple[float, ...]]]:
    out: dict[int, dict[str, tuple[float, ...]]] = {}
    for ts, rows in fake._steps:
        out[ts] = {r["asset"]: (r["open"], r["high"], r["low"], r["close"], r["volume"])
                   for r in rows}
    return out


def _rows(feed: AlpacaStreamFeed, batch) -> dict[str, tuple[float, ...]]:  # type: ignore[no-untyped-def]
    return {feed.asset_names[a]: (batch.open[i], batch.high[i], batch.low[i], batch.close[i],
                                  batch.volume[i]) for i, a in enumerate(batch.asset)}


def _drain(feed: AlpacaStreamFeed) -> list:  # type: ignore[type-arg]
    out = []
    while (b := feed.next_batch(10.0)) is not None:
        out.append(b)
    return out


def _events_until(broker: AlpacaBroker, pred, timeout: float = 5.0) -> list:  # type: ignore[no-untyped-def]
    got: list = []
    end = time.monotonic() + timeout
    while not pred(got):
        if time.monotonic() > end:
            raise AssertionError(f"events so far: {got}")
        got += broker.poll_events(timeout=0.05)
    return got


# ------------------------------------------------------------------------- feed
def test_feed_yields_the_fake_bars_in_order_across_a_dropped_socket(fake: FakeAlpaca) -> None:
    feed = _feed(fake)
    feed.start()
    try:
        got = []
        for _ in range(3):
            fake.publish_next()
            got.append(feed.next_batch(10.0))
        assert fake.drop_data_stream() == 1
        fake.publish_next()                 # published while the client is away:
        fake.publish_next()                 # only the backfill can bring these two
        fake.wait_data_subscribed(2)
        while not fake.published():
            fake.publish_next()
        got += _drain(feed)
        kinds = [e.kind for e in feed.take_errors()]
    finally:
        feed.stop()
    assert kinds == ["disconnect", "reconnect"]
    assert fake.data_connections == 2
    exp = _expected(fake)
    assert [b.ts for b in got] == fake.timestamps
    for b in got:
        assert _rows(feed, b) == exp[b.ts]
        assert b.asset.dtype == np.int64 and list(b.asset) == [0, 1]
        assert b.signals.shape == (2, 0)


def test_duplicate_and_out_of_order_bars_each_give_one_event(fake: FakeAlpaca) -> None:
    feed = _feed(fake)
    feed.start()
    try:
        fake.publish_next()
        ts1 = fake.publish_next(duplicate=["AAA"])
        ts2 = fake.publish_next(hold=["BBB"])
        ts3 = fake.publish_next()
        got = [feed.next_batch(10.0) for _ in range(4)]
        fake.send_held()                    # BBB at ts2 after ts2 and ts3 were delivered
        while not fake.published():
            fake.publish_next()
        got += _drain(feed)
        errors = feed.take_errors()
    finally:
        feed.stop()
    assert [(e.kind, e.asset) for e in errors] == [("duplicate_bar", "AAA"),
                                                   ("out_of_order_bar", "BBB")]
    assert errors[0].ts == ts1 and errors[1].ts == ts2
    assert [b.ts for b in got] == fake.timestamps
    exp = _expected(fake)
    for b in got:
        want = dict(exp[b.ts])
        if b.ts == ts2:
            del want["BBB"]                 # dropped, never delivered twice or late
        assert _rows(feed, b) == want
    assert ts3 > ts2


def test_a_signal_past_the_timeout_gives_nan_and_one_stale_signal(fake: FakeAlpaca) -> None:
    feed = _feed(fake, signal_names=["pred"], signals=fake.signal_queue, signal_timeout=0.5)
    feed.start()
    try:
        fake.publish_next()
        late = fake.publish_next(hold_signal=["AAA"])
        first = [feed.next_batch(10.0), feed.next_batch(10.0)]
        fake.release_signals()              # arrives after the bar went out: ignored
        while not fake.published():
            fake.publish_next()
        got = first + _drain(feed)
        errors = feed.take_errors()
    finally:
        feed.stop()
    assert [(e.kind, e.asset, e.ts) for e in errors] == [("stale_signal", "AAA", late)]
    assert [b.ts for b in got] == fake.timestamps
    for k, b in enumerate(got):
        want = np.array([[0.01 * (k + 1)], [-0.01 * (k + 1)]]).round(6)
        if b.ts == late:
            assert math.isnan(b.signals[0, 0])
            assert b.signals[1, 0] == want[1, 0]
        else:
            np.testing.assert_array_equal(b.signals, want)


def test_a_silent_asset_is_left_out_after_the_bar_timeout(fake: FakeAlpaca) -> None:
    feed = _feed(fake, bar_timeout=0.3)
    feed.start()
    try:
        with pytest.raises(TimeoutError):
            feed.next_batch(0.2)             # nothing published yet (the engine: stale_data)
        ts = fake.publish_next(hold=["BBB"])
        t0 = time.monotonic()
        batch = feed.next_batch(5.0)
        waited = time.monotonic() - t0
        fake.send_held()
        fake.publish_next()
        nxt = feed.next_batch(5.0)
        errors = feed.take_errors()
    finally:
        feed.stop()
    assert batch.ts == ts and list(batch.asset) == [0] and waited >= 0.25
    assert nxt.ts == fake.timestamps[1] and list(nxt.asset) == [0, 1]
    assert [(e.kind, e.asset, e.ts) for e in errors] == [("out_of_order_bar", "BBB", ts)]


def test_signals_from_a_polled_callable(fake: FakeAlpaca) -> None:
    def poll():  # type: ignore[no-untyped-def]
        out = []
        while not fake.signal_queue.empty():
            out.append(fake.signal_queue.get_nowait())
        return out

    feed = _feed(fake, end=fake.timestamps[2], signal_names=["pred"], signals=poll,
                 signal_timeout=5.0)
    feed.start()
    try:
        for _ in range(3):
            fake.publish_next()
        got = _drain(feed)
    finally:
        feed.stop()
    assert [b.ts for b in got] == fake.timestamps[:3]
    assert [b.signals[:, 0].tolist() for b in got] == [[0.01, -0.01], [0.02, -0.02],
                                                       [0.03, -0.03]]


def test_signals_from_an_iterable_may_come_before_their_bars(fake: FakeAlpaca) -> None:
    records = [(ts, r["asset"], {"pred": -r["pred"]}) for ts, rows in fake._steps[:3]
               for r in rows]
    feed = _feed(fake, end=fake.timestamps[2], signal_names=["pred"], signals=iter(records),
                 signal_timeout=5.0)
    feed.start()
    try:
        time.sleep(0.05)                      # the records are there first
        for _ in range(3):
            fake.publish_next()
        got = _drain(feed)
    finally:
        feed.stop()
    assert [b.signals[:, 0].tolist() for b in got] == [[-0.01, 0.01], [-0.02, 0.02],
                                                       [-0.03, 0.03]]
    assert feed.take_errors() == []


def test_bad_signal_record_names_asset_and_ts(fake: FakeAlpaca) -> None:
    import queue

    q: queue.Queue = queue.Queue()
    feed = _feed(fake, signal_names=["pred"], signals=q, signal_timeout=5.0)
    feed.start()
    try:
        ts = fake.publish_next()
        q.put((ts, "ZZZ", {"pred": 1.0}))
        with pytest.raises(ValueError, match=r"ZZZ.*does not subscribe|ts .*ZZZ"):
            feed.next_batch(5.0)
    finally:
        feed.stop()


def test_feed_arguments_are_checked() -> None:
    with pytest.raises(ValueError, match="listed twice"):
        AlpacaStreamFeed(["A", "A"], api_key="k", secret_key="s")
    with pytest.raises(ValueError, match="signal_names"):
        AlpacaStreamFeed(["A"], api_key="k", secret_key="s", signals=[])
    with pytest.raises(ValueError, match="bar_timeout"):
        AlpacaStreamFeed(["A"], api_key="k", secret_key="s", bar_timeout=0)


# ------------------------------------------------------------------------ broker
def test_broker_fills_at_the_next_open_through_trade_updates(fake: FakeAlpaca) -> None:
    broker = _broker(fake)
    broker.connect()
    try:
        fake.publish_next()
        broker.submit(VenueOrder("b1", "AAA", 5.0))
        evs = _events_until(broker, lambda g: any(isinstance(e, OrderUpdate) for e in g))
        assert evs == [OrderUpdate("b1", "accepted", fake.timestamps[0])]
        ts = fake.publish_next()
        fill = _events_until(broker, lambda g: g)
        open_aaa = _expected(fake)[ts]["AAA"][0]
        assert len(fill) == 1 and isinstance(fill[0], VenueFill)
        f = fill[0]
        assert (f.client_order_id, f.ts, f.asset, f.quantity, f.price) == ("b1", ts, "AAA",
                                                                          5.0, open_aaa)
        fake.repeat_fills()                 # the same execution reported again
        state = broker.account()
        assert state.cash == 100_000.0 - 5 * open_aaa
        assert dict(state.positions) == {"AAA": 5.0} and state.open_orders == ()
        broker.submit(VenueOrder("s1", "AAA", -5.0))
        ts2 = fake.publish_next()
        evs = _events_until(broker, lambda g: any(isinstance(e, VenueFill) for e in g))
        fills = [e for e in evs if isinstance(e, VenueFill)]
        assert [(x.client_order_id, x.quantity, x.price, x.ts) for x in fills] == [
            ("s1", -5.0, _expected(fake)[ts2]["AAA"][0], ts2)]
        assert broker.account().positions == {}
        time.sleep(0.1)
        assert not [e for e in broker.poll_events() if isinstance(e, VenueFill)]
    finally:
        broker.close()


def test_rate_limit_gives_one_event_and_the_order_lands_once(fake: FakeAlpaca) -> None:
    broker = _broker(fake)
    broker.connect()
    try:
        fake.publish_next()
        fake.fail_next_order(429)
        broker.submit(VenueOrder("r1", "BBB", 2.0))
        fake.publish_next()
        evs = _events_until(broker, lambda g: any(isinstance(e, VenueFill) for e in g))
    finally:
        broker.close()
    errors = [e for e in evs if isinstance(e, ErrorEvent)]
    assert [(e.kind, e.attempt, e.order_id) for e in errors] == [("rate_limited", 1, "r1")]
    assert len(fake.order_requests) == 2
    assert [o.client_order_id for o in fake.orders.values()] == ["r1"]
    assert [x.quantity for x in evs if isinstance(x, VenueFill)] == [2.0]


def test_forbidden_gives_one_rejected_event_and_a_rejected_update(fake: FakeAlpaca) -> None:
    broker = _broker(fake)
    broker.connect()
    try:
        fake.publish_next()
        fake.fail_next_order(403)
        broker.submit(VenueOrder("x1", "AAA", 1.0))
        evs = broker.poll_events()
    finally:
        broker.close()
    assert [type(e).__name__ for e in evs] == ["ErrorEvent", "OrderUpdate"]
    assert (evs[0].kind, evs[0].order_id) == ("rejected", "x1")
    assert (evs[1].client_order_id, evs[1].status) == ("x1", "rejected")
    assert "forbidden" in evs[1].reason
    assert fake.orders == {}


@pytest.mark.parametrize("fault", ["timeout", "5xx_after_create"])
def test_resubmission_after_an_unknown_outcome_is_not_doubled(fake: FakeAlpaca,
                                                              fault: str) -> None:
    broker = _broker(fake, request_timeout=0.3)
    broker.connect()
    try:
        fake.publish_next()
        if fault == "timeout":
            fake.delay_next_order(1.0)       # created, answered after the client gave up
        else:
            fake.fail_next_order(503, create=True)
        order = VenueOrder("t1", "AAA", 3.0)
        broker.submit(order)
        broker.submit(order)                 # the engine sending it again is harmless too
        fresh = _broker(fake)                # so is another process with the same id
        fresh._client = fresh._make_client()
        fresh.submit(order)
        fake.publish_next()
        evs = _events_until(broker, lambda g: any(isinstance(e, VenueFill) for e in g))
    finally:
        broker.close()
    assert [o.client_order_id for o in fake.orders.values()] == ["t1"]
    assert [x.quantity for x in evs if isinstance(x, VenueFill)] == [3.0]
    assert fake.fills == [("t1", fake.timestamps[1], "AAA", 3.0,
                           _expected(fake)[fake.timestamps[1]]["AAA"][0])]


def test_fills_missed_while_the_trading_stream_is_down_arrive_once(fake: FakeAlpaca) -> None:
    broker = _broker(fake, reconnect_backoff=(0.3, 1.0))
    broker.connect()
    try:
        fake.publish_next()
        broker.submit(VenueOrder("d1", "BBB", 7.0))
        assert fake.drop_trading_stream() == 1
        ts = fake.publish_next()            # fills d1 while nobody listens
        evs = _events_until(broker, lambda g: any(isinstance(e, VenueFill) for e in g))
        fake.repeat_fills()                 # a late copy of the same execution changes nothing
        time.sleep(0.2)
        evs += broker.poll_events()
    finally:
        broker.close()
    kinds = [e.kind for e in evs if isinstance(e, ErrorEvent)]
    assert kinds == ["disconnect", "reconnect"]
    fills = [e for e in evs if isinstance(e, VenueFill)]
    assert [(f.client_order_id, f.quantity, f.price, f.ts) for f in fills] == [
        ("d1", 7.0, _expected(fake)[ts]["BBB"][0], ts)]


def test_cancel_reports_cancelled_and_account_lists_open_orders(fake: FakeAlpaca) -> None:
    broker = _broker(fake)
    broker.connect()
    try:
        fake.publish_next()
        broker.submit(VenueOrder("l1", "AAA", 4.0, order_type="limit", limit_price=50.0))
        state = broker.account()
        assert [(o.client_order_id, o.quantity, o.order_type, o.limit_price)
                for o in state.open_orders] == [("l1", 4.0, "limit", 50.0)]
        broker.cancel("l1")
        evs = _events_until(broker, lambda g: any(
            isinstance(e, OrderUpdate) and e.status == "cancelled" for e in g))
        assert [e.status for e in evs if isinstance(e, OrderUpdate)] == ["accepted", "cancelled"]
        assert broker.account().open_orders == ()
        broker.cancel("l1")                  # no longer cancelable: one venue event
        assert [e.kind for e in broker.poll_events() if isinstance(e, ErrorEvent)] == ["venue"]
    finally:
        broker.close()


def test_bad_orders_raise_before_sending(fake: FakeAlpaca) -> None:
    broker = _broker(fake)
    broker._client = broker._make_client()
    with pytest.raises(ValueError, match="q0.*quantity"):
        broker.submit(VenueOrder("q0", "AAA", 0.0))
    with pytest.raises(ValueError, match="l0.*limit_price"):
        broker.submit(VenueOrder("l0", "AAA", 1.0, order_type="limit"))
    assert fake.order_requests == []


def test_paper_endpoint_unless_live() -> None:
    paper = AlpacaBroker(api_key="k", secret_key="s")._make_client()
    live = AlpacaBroker(api_key="k", secret_key="s", live=True)._make_client()
    assert "paper-api" in str(paper._base_url.value)
    assert "paper" not in str(live._base_url.value)
    with pytest.raises(ValueError, match="live must be True or False"):
        AlpacaBroker(api_key="k", secret_key="s", live="yes")


# ------------------------------------------------------------------- credentials
def test_credentials_from_file_env_and_arguments(tmp_path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    path = tmp_path / "alpaca.env"
    path.write_text("# paper keys\nAPCA_API_KEY_ID=PKFILE\nAPCA_API_SECRET_KEY=file-secret\n")
    path.chmod(0o644)
    with pytest.raises(CredentialsError, match="chmod 600"):
        load_credentials(credentials_file=path)
    path.chmod(0o600)
    creds = load_credentials(credentials_file=path)
    assert creds.key_id == "PKFILE" and creds.secret() == "file-secret"
    assert "file-secret" not in repr(creds) and "file-secret" not in str(creds)
    monkeypatch.setenv("APCA_API_KEY_ID", "PKENV")
    monkeypatch.setenv("APCA_API_SECRET_KEY", "env-secret")
    assert load_credentials().secret() == "env-secret"
    assert load_credentials("a", "b").key_id == "a"
    with pytest.raises(ValueError, match="together"):
        load_credentials("a", None)
    monkeypatch.delenv("APCA_API_SECRET_KEY")
    with pytest.raises(CredentialsError, match="APCA_API_SECRET_KEY"):
        load_credentials()
    with pytest.raises(TypeError, match="not picklable"):
        import pickle
        pickle.dumps(AlpacaCredentials("k", "s"))


def test_secret_never_appears_in_logs_reprs_or_exceptions(caplog) -> None:  # type: ignore[no-untyped-def]
    secret = "Zq9-very-secret-value-7781"
    fake = FakeAlpaca(_frame(), secret_key=secret).start()
    texts: list[str] = []
    caplog.set_level(logging.DEBUG)
    try:
        broker = _broker(fake) if False else AlpacaBroker(
            api_key=fake.key_id, secret_key=secret, url_override=fake.rest_url,
            stream_url_override=fake.trading_stream_url, backoff=0.01)
        feed = AlpacaStreamFeed(SYMBOLS, api_key=fake.key_id, secret_key=secret,
                                url_override=fake.data_stream_url,
                                rest_url_override=fake.rest_url, reconnect_backoff=(0.05, 0.1))
        texts += [repr(broker), str(broker), repr(feed), repr(feed._creds)]
        broker.connect()
        feed.start()
        fake.publish_next()
        fake.fail_next_order(429)
        broker.submit(VenueOrder("c1", "AAA", 1.0))
        fake.drop_data_stream()
        fake.wait_data_subscribed(2)
        fake.publish_next()
        feed.next_batch(5.0)
        texts += [e.message for e in feed.take_errors() + broker.poll_events(0.2)
                  if isinstance(e, ErrorEvent)]
        feed.stop()
        broker.close()
        bad = AlpacaStreamFeed(SYMBOLS, api_key=fake.key_id, secret_key=secret + "x",
                               url_override=fake.data_stream_url, connect_timeout=0.5,
                               reconnect_backoff=(0.05, 0.1))
        with pytest.raises(ConnectionError) as info:
            bad.start()
        texts += [str(info.value), repr(info.value)]
        wrong = AlpacaBroker(api_key=fake.key_id, secret_key=secret + "x",
                             url_override=fake.rest_url)
        wrong._client = wrong._make_client()
        with pytest.raises(Exception) as info2:
            wrong.account()
        texts += [str(info2.value), repr(info2.value)]
    finally:
        fake.stop()
    texts.append(caplog.text)
    assert "reconnect" in " ".join(texts)     # the logs and events were captured
    for text in texts:
        assert secret not in text


def test_missing_alpaca_py_names_the_extra(monkeypatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setitem(sys.modules, "alpaca", None)
    with pytest.raises(ImportError, match=r"pip install mlbacktest\[alpaca\]"):
        AlpacaBroker(api_key="k", secret_key="s")


def test_iso_timestamps_keep_nanoseconds() -> None:
    assert _iso_to_ns("2024-01-02T14:30:00Z") == 1704205800 * 10**9
    assert _iso_to_ns("2024-01-02T14:30:00.123456789Z") == 1704205800 * 10**9 + 123456789
    assert _iso_to_ns("2024-01-02T09:30:00.5-05:00") == 1704205800 * 10**9 + 500_000_000
    assert os.environ.get("APCA_API_SECRET_KEY") is None or True


# ------------------------------------------------------------------ end to end
class _LockstepFeed(AlpacaStreamFeed):
    """The feed, counting how many batches the engine has asked for (for the publisher)."""

    def __init__(self, *args, **kwargs) -> None:  # type: ignore[no-untyped-def]
        import threading

        super().__init__(*args, **kwargs)
        self.cond = threading.Condition()
        self.returned = 0
        self.asked = 0

    def next_batch(self, timeout: float):  # type: ignore[no-untyped-def]
        with self.cond:
            self.asked = self.returned + 1
            self.cond.notify_all()
        batch = super().next_batch(timeout)
        if batch is not None:
            self.returned += 1
        return batch

    def wait_asked(self, k: int, timeout: float = 20.0) -> None:
        with self.cond:
            if not self.cond.wait_for(lambda: self.asked >= k or self._stopping, timeout):
                raise TimeoutError(f"the engine did not ask for batch {k}")


def _lockstep_publisher(fake: FakeAlpaca, feed: _LockstepFeed, broker: AlpacaBroker,
                        failures: list, faults: dict | None = None  # type: ignore[type-arg]
                        ) -> object:
    """Publish one timestamp each time the engine asks for the next batch.

    The engine sends a timestamp's orders before it asks for the next batch,
    and the venue's fills of a timestamp reach the broker before its bars go
    out, so the live run sees what a backtest sees, in the same order.
    """
    import threading

    def wait_fills(fills) -> None:  # type: ignore[no-untyped-def]
        end = time.monotonic() + 10
        while not all(broker._applied.get(c, 0.0) >= abs(q) for c, _, _, q, _ in fills):
            if time.monotonic() > end:
                raise TimeoutError(f"fills {fills} did not reach the broker")
            time.sleep(0.001)

    def run() -> None:
        try:
            fake.wait_data_subscribed()
            fake.wait_trading_listening()
            for k in range(len(fake.timestamps)):
                feed.wait_asked(k + 1)
                fault = (faults or {}).get(k)
                kw = {}
                if fault == "drop":
                    fake.drop_data_stream()     # this step's bars come from the backfill
                elif fault == "429":
                    fake.fail_next_order(429)   # the next order POST, whenever it comes
                elif fault is not None and fault.startswith("sig:"):
                    kw["hold_signal"] = [fault[4:]]  # never released: past the timeout
                elif fault is not None:
                    kw["duplicate"] = [fault]
                fake.publish_next(before_bars=wait_fills, **kw)
        except BaseException as exc:  # noqa: BLE001 - the test reports it
            failures.append(exc)

    th = threading.Thread(target=run, daemon=True)
    th.start()
    return th


@pytest.mark.parametrize("name", ["NextOpenMarket", "SliceMarket"])
def test_alpaca_run_gives_the_backtest_orders_and_fills(name: str) -> None:
    import tests.live_strategies as strategies
    from mlbacktest import BacktestConfig, BacktestEngine, PolarsDataFeed
    from mlbacktest.live import LiveEngine
    from tests.test_live_paper import assert_same_run

    cls = getattr(strategies, name)
    df = strategies.gappy_bars(n_assets=3, n_bars=40, seed=11)
    cfg = BacktestConfig(initial_cash=1_000_000.0, allow_short=True, history_window=20)
    bt = BacktestEngine(PolarsDataFeed(df), cls(), cfg).run(progress=False)
    assert bt.fills.height > 5
    fake = FakeAlpaca(df, signal_columns=["pred"], cash=1_000_000.0).start()
    try:
        feed = _LockstepFeed(
            sorted(df["asset"].unique().to_list()), api_key=fake.key_id,
            secret_key=fake.secret_key, url_override=fake.data_stream_url,
            rest_url_override=fake.rest_url, signal_names=["pred"], signals=fake.signal_queue,
            signal_timeout=5.0, bar_timeout=0.1, end=fake.timestamps[-1])
        broker = _broker(fake)
        failures: list = []
        publisher = _lockstep_publisher(fake, feed, broker, failures)
        run = LiveEngine(feed, cls(), cfg, broker=broker, run_id="t1", poll_interval=0.05)
        lv = run.run()
        publisher.join(10)  # type: ignore[attr-defined]
        acct_cash, acct_pos = fake.cash, dict(fake.positions)
    finally:
        fake.stop()
    assert failures == []
    assert [e.kind for e in run.errors] == []
    assert_same_run(bt, lv)
    # every order reached the venue once, with the run's client order id
    ids = [r["client_order_id"] for r in fake.order_requests]
    assert len(ids) == len(set(ids)) == bt.orders.height
    assert all(i.startswith("t1-") for i in ids)
    # the venue's account and the run's ledger agree
    final = lv.equity.row(-1, named=True)
    assert math.isclose(acct_cash, final["cash"], rel_tol=0, abs_tol=1e-6)
    pos = lv.fills.group_by("asset").agg(q=pl.col("quantity").sum())
    assert {a: q for a, q in pos.iter_rows() if q != 0} == acct_pos


def test_alpaca_run_with_faults_still_equals_the_backtest() -> None:
    """A dropped socket, a 429, a duplicate bar and a late signal: one on_error each.

    The fills are the backtest's on the same bars, where the late signal is NaN
    (the row the live run delivered with a stale signal).
    """
    import tests.live_strategies as strategies
    from mlbacktest import BacktestConfig, BacktestEngine, PolarsDataFeed
    from mlbacktest.live import LiveEngine
    from tests.test_live_paper import assert_same_run

    seen: list[ErrorEvent] = []

    class Traced(strategies.SliceMarket):
        def on_error(self, event):  # type: ignore[no-untyped-def]
            seen.append(event)

    df = strategies.gappy_bars(n_assets=3, n_bars=40, seed=11)
    cfg = BacktestConfig(initial_cash=1_000_000.0, allow_short=True, history_window=20)
    late_ts, late_asset = df["timestamp"].unique().sort()[25], "A002"
    assert df.filter((pl.col("timestamp") == late_ts) & (pl.col("asset") == late_asset)).height
    df_bt = df.with_columns(
        pred=pl.when((pl.col("timestamp") == late_ts) & (pl.col("asset") == late_asset))
        .then(float("nan")).otherwise(pl.col("pred")))
    bt = BacktestEngine(PolarsDataFeed(df_bt), Traced(), cfg).run(progress=False)
    seen.clear()
    fake = FakeAlpaca(df, signal_columns=["pred"], cash=1_000_000.0).start()
    try:
        feed = _LockstepFeed(
            sorted(df["asset"].unique().to_list()), api_key=fake.key_id,
            secret_key=fake.secret_key, url_override=fake.data_stream_url,
            rest_url_override=fake.rest_url, signal_names=["pred"], signals=fake.signal_queue,
            signal_timeout=0.5, bar_timeout=0.1, end=fake.timestamps[-1],
            reconnect_backoff=(0.1, 0.5))
        broker = _broker(fake)
        failures: list = []
        publisher = _lockstep_publisher(fake, feed, broker, failures,
                                        {5: "429", 12: "drop", 20: "A001",
                                         25: f"sig:{late_asset}"})
        lv = LiveEngine(feed, Traced(), cfg, broker=broker, run_id="t2",
                        poll_interval=0.05).run()
        publisher.join(10)  # type: ignore[attr-defined]
    finally:
        fake.stop()
    assert failures == []
    assert sorted(e.kind for e in seen) == ["disconnect", "duplicate_bar", "rate_limited",
                                            "reconnect", "stale_signal"]
    assert [e.asset for e in seen if e.kind == "stale_signal"] == [late_asset]
    assert fake.data_connections == 2
    assert_same_run(bt, lv)
    ids = [r["client_order_id"] for r in fake.order_requests]
    assert len(ids) == bt.orders.height + 1          # the 429'd POST was sent again, once
    assert len(fake.orders) == bt.orders.height      # and booked once


class _Crash(Exception):
    """The process dies."""


def test_restart_after_a_kill_catches_up_from_history_without_doubling(tmp_path) -> None:
    """Killed between two bars, restarted on the same journal against the same account.

    The restarted feed fetches the bars published so far from the historical
    endpoint (``history_from``), the engine replays them against its journal
    without sending any order again, and the run goes on: the venue ends with
    the fills of an uninterrupted run (the backtest's), each order booked once.
    """
    import json
    import queue

    import tests.live_strategies as strategies
    from mlbacktest import BacktestConfig, BacktestEngine, PolarsDataFeed
    from mlbacktest.live import LiveEngine
    from tests.test_live_paper import assert_same_run

    cls = strategies.NextOpenMarket
    df = strategies.gappy_bars(n_assets=3, n_bars=40, seed=11)
    cfg = BacktestConfig(initial_cash=1_000_000.0, allow_short=True, history_window=20)
    bt = BacktestEngine(PolarsDataFeed(df), cls(), cfg).run(progress=False)
    kill_at = 17
    fake = FakeAlpaca(df, signal_columns=["pred"], cash=1_000_000.0).start()

    class Dying(_LockstepFeed):
        def next_batch(self, timeout):  # type: ignore[no-untyped-def]
            if self.returned == kill_at:
                raise _Crash(f"killed before batch {kill_at}")
            return super().next_batch(timeout)

    def make(feed_cls, **kw):  # type: ignore[no-untyped-def]
        return feed_cls(
            sorted(df["asset"].unique().to_list()), api_key=fake.key_id,
            secret_key=fake.secret_key, url_override=fake.data_stream_url,
            rest_url_override=fake.rest_url, signal_names=["pred"], signals=fake.signal_queue,
            signal_timeout=5.0, bar_timeout=0.1, end=fake.timestamps[-1], **kw)

    def publish(feed, broker, steps, failures):  # type: ignore[no-untyped-def]
        import threading

        def run() -> None:
            try:
                # the engine asks for a batch once its feed and broker are connected
                for n_asked, _ in enumerate(steps, start=feed_first_ask[0]):
                    feed.wait_asked(n_asked)
                    fake.publish_next(before_bars=lambda fills: _wait_applied(broker, fills))
            except BaseException as exc:  # noqa: BLE001
                failures.append(exc)

        th = threading.Thread(target=run, daemon=True)
        th.start()
        return th

    failures: list = []
    try:
        # the first life: dies when the engine asks for batch kill_at + 1
        feed = make(Dying)
        broker = _broker(fake)
        feed_first_ask = [1]
        th = publish(feed, broker, range(kill_at), failures)
        with pytest.raises(_Crash):
            LiveEngine(feed, cls(), cfg, broker=broker, run_id="r7",
                       poll_interval=0.05).run(out=tmp_path / "run")
        th.join(10)
        sent_before = len(fake.order_requests)
        # the second life: same journal, same account; the model's signals so far again
        fake.signal_queue = queue.Queue()
        for ts, rows in fake._steps[:kill_at]:
            for r in rows:
                fake.signal_queue.put((ts, r["asset"], {"pred": float(r["pred"])}))
        feed = make(_LockstepFeed, history_from=fake.timestamps[0])
        broker = _broker(fake)
        feed_first_ask = [kill_at + 1]
        th = publish(feed, broker, range(kill_at, len(fake.timestamps)), failures)
        lv = LiveEngine(feed, cls(), cfg, broker=broker, run_id="r7",
                        poll_interval=0.05).run(out=tmp_path / "run")
        th.join(10)
    finally:
        fake.stop()
    assert failures == []
    assert sent_before > 0
    ids = [r["client_order_id"] for r in fake.order_requests]
    assert len(ids) == len(set(ids)) == bt.orders.height      # nothing sent twice
    venue_fills = [(ts, sym, q, px) for _, ts, sym, q, px in fake.fills]
    want = list(zip(bt.fills["timestamp"].dt.epoch("ns").to_list(), bt.fills["asset"].to_list(),
                    bt.fills["quantity"].to_list(), bt.fills["price"].to_list(), strict=True))
    assert venue_fills == want
    assert_same_run(bt, lv)
    kinds = [json.loads(x)["k"] for x in (tmp_path / "run" / "journal.jsonl").read_text()
             .splitlines()]
    assert kinds.count("restart") == 1 and kinds.count("start") == 1


def _wait_applied(broker: AlpacaBroker, fills) -> None:  # type: ignore[no-untyped-def]
    end = time.monotonic() + 10
    while not all(broker._applied.get(c, 0.0) >= abs(q) for c, _, _, q, _ in fills):
        if time.monotonic() > end:
            raise TimeoutError(f"fills {fills} did not reach the broker")
        time.sleep(0.001)
