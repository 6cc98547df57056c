"""SignalBuffer: bars and signals joined per timestamp; one ErrorEvent per incident."""

from __future__ import annotations

import threading

import numpy as np
import pytest

from mlbacktest import Strategy
from mlbacktest.live import LiveEngine, SignalBuffer

MIN = 60 * 10**9


class FakeClock:
    def __init__(self):
        self.t = 0.0

    def __call__(self):
        return self.t


def bar(buf, ts, asset, px=10.0):
    return buf.push_bar(ts, asset, px, px + 1, px - 1, px, 100.0)


def make(timeout=5.0, **kw):
    clock = FakeClock()
    return SignalBuffer(["B", "A"], ["pred", "conf"], timeout=timeout, clock=clock, **kw), clock


def test_emits_a_timestamp_when_bars_and_signals_are_all_there():
    buf, clock = make()
    assert buf.asset_names == ("A", "B")
    buf.push_signal(MIN, "A", {"pred": 0.5, "conf": 1.0})  # signals may come first
    bar(buf, MIN, "A")
    bar(buf, MIN, "B", 20.0)
    with pytest.raises(TimeoutError):
        buf.next_batch(0)  # B's signals are missing
    buf.push_signal(MIN, "B", [0.25, 2.0])
    b = buf.next_batch(0)
    assert b.ts == MIN and b.asset.tolist() == [0, 1] and b.close.tolist() == [10.0, 20.0]
    assert b.signals.tolist() == [[0.5, 1.0], [0.25, 2.0]]
    assert buf.take_errors() == []


def test_timeout_emits_nan_signals_and_exactly_one_stale_signal_event():
    buf, clock = make(timeout=5.0)
    bar(buf, MIN, "A")
    bar(buf, MIN, "B")
    buf.push_signal(MIN, "B", [1.0, 1.0])
    clock.t = 4.9
    with pytest.raises(TimeoutError):
        buf.next_batch(0)
    clock.t = 5.0
    b = buf.next_batch(0)
    assert np.isnan(b.signals[0]).all() and b.signals[1].tolist() == [1.0, 1.0]
    errs = buf.take_errors()
    assert [(e.kind, e.asset) for e in errs] == [("stale_signal", "A")]
    assert buf.push_signal(MIN, "A", [0.0, 0.0]) is False  # too late: dropped
    assert buf.take_errors() == []


def test_bars_complete_on_a_later_bar_or_after_the_grace():
    buf, clock = make(timeout=5.0, bar_grace=1.0)
    bar(buf, MIN, "A")
    buf.push_signal(MIN, "A", [1, 1])
    with pytest.raises(TimeoutError):
        buf.next_batch(0)  # B may still come
    clock.t = 1.0
    assert buf.next_batch(0).asset.tolist() == [0]
    bar(buf, 2 * MIN, "B")
    buf.push_signal(2 * MIN, "B", [1, 1])
    bar(buf, 3 * MIN, "A")  # a later bar closes 2 * MIN
    assert buf.next_batch(0).ts == 2 * MIN


def test_duplicate_and_out_of_order_bars_are_dropped_with_one_event_each():
    buf, clock = make(timeout=0.0)
    bar(buf, 2 * MIN, "A")
    assert bar(buf, 2 * MIN, "A", 99.0) is False  # a duplicate while buffered
    [dup] = buf.take_errors()
    assert dup.kind == "duplicate_bar" and dup.asset == "A"
    bar(buf, 2 * MIN, "B")
    b = buf.next_batch(0)
    assert b.close.tolist() == [10.0, 10.0]
    buf.take_errors()  # the stale signals of 2 * MIN
    assert bar(buf, 2 * MIN, "B") is False  # a duplicate of a delivered bar
    assert bar(buf, MIN, "A") is False  # older than what was delivered
    assert [e.kind for e in buf.take_errors()] == ["duplicate_bar", "out_of_order_bar"]


def test_end_flushes_and_stops():
    buf, clock = make()
    bar(buf, MIN, "A")
    buf.end()
    b = buf.next_batch(0)
    assert b.ts == MIN and np.isnan(b.signals).all()
    assert buf.next_batch(0) is None


def test_a_run_on_a_buffer_fed_from_threads_sees_each_incident_once():
    buf = SignalBuffer(["A", "B"], ["pred"], timeout=0.05, bar_grace=0.05)
    kinds = []
    seen = []

    class Watch(Strategy):
        def on_slice(self, view, context):
            seen.append((int(view.ts), view.signal("pred").tolist()))
            if view.ts == 3 * MIN:
                bar(buf, MIN, "B")  # out of order: MIN was delivered

        def on_error(self, event):
            kinds.append(event.kind)

    def produce():
        for k in range(1, 6):
            ts = k * MIN
            for a in ("A", "B"):
                bar(buf, ts, a, 10.0 + k)
                if not (k == 3 and a == "B"):
                    buf.push_signal(ts, a, [float(k)])
            if k == 2:
                bar(buf, ts, "A")  # duplicate
        buf.end()

    t = threading.Thread(target=produce)
    t.start()
    LiveEngine(buf, Watch(), {"initial_cash": 1000}, poll_interval=0.01).run()
    t.join()
    assert [ts for ts, _ in seen] == [k * MIN for k in range(1, 6)]
    assert seen[2][1][0] == 3.0 and np.isnan(seen[2][1][1])
    assert sorted(kinds) == ["duplicate_bar", "out_of_order_bar", "stale_signal"]
