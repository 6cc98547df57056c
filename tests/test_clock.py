"""The heap clock: ordering by (timestamp, priority, insertion sequence)."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import examples
from hypothesis import given, settings
from hypothesis import strategies as st

from mlbacktest._clock import Clock


def _stream(ts):
    ts = np.asarray(ts, dtype=np.int64)
    return ts, np.arange(len(ts) + 1, dtype=np.int64) * 2


def test_merges_streams_and_timers_in_order():
    c = Clock()
    c.add_stream(*_stream([10, 30]), 0)
    c.add_stream(*_stream([10, 20]), 1)
    c.add_timer(10, 5, 99)
    c.add_timer(5, 5, 98)
    out = c.drain()
    assert [(t, kind, ident) for t, kind, ident, _, _ in out] == [
        (5, "timer", 98),
        (10, "bars", 0),
        (10, "bars", 1),
        (10, "timer", 99),
        (20, "bars", 1),
        (30, "bars", 0),
    ]
    # Row ranges come from the stream's offsets.
    assert out[1][3:] == (0, 2) and out[5][3:] == (2, 4)


def test_equal_keys_pop_in_insertion_order():
    c = Clock()
    for ident in range(50):
        c.add_timer(7, 1, ident)
    assert [e[2] for e in c.drain()] == list(range(50))


def test_rejects_unsorted_stream():
    c = Clock()
    try:
        c.add_stream(np.array([2, 1], dtype=np.int64), np.array([0, 1, 2]), 0)
    except ValueError as exc:
        assert "strictly increasing" in str(exc)
    else:  # pragma: no cover
        raise AssertionError("unsorted stream accepted")


@settings(max_examples=examples(200), deadline=None)
@given(
    timers=st.lists(st.tuples(st.integers(-1000, 1000), st.integers(0, 3)), max_size=60),
    streams=st.lists(st.sets(st.integers(-1000, 1000), max_size=20), max_size=4),
)
def test_pop_order_is_the_sorted_key_order(timers, streams):
    c = Clock()
    expected = []
    seq = 0
    for k, s in enumerate(streams):
        ts = sorted(s)
        c.add_stream(*_stream(ts), 10 + k)
        # a stream's entries are pushed lazily; their relative order is by (ts, priority)
        expected.extend((t, 10 + k, None, "bars", k) for t in ts)
    for ident, (t, prio) in enumerate(timers):
        c.add_timer(t, prio, ident)
        expected.append((t, prio, seq, "timer", ident))
        seq += 1
    got = [(t, kind, ident) for t, kind, ident, _, _ in c.drain()]
    want = sorted(expected, key=lambda e: (e[0], e[1], -1 if e[2] is None else e[2]))
    assert got == [(t, kind, ident) for t, _, _, kind, ident in want]


def test_streams_accept_timestamps_far_apart():
    # a difference of the two timestamps overflows int64: order is checked by comparison
    clock = Clock()
    clock.add_stream(np.array([-9_000_000_000_000_000_000, 9_000_000_000_000_000_000]),
                     np.array([0, 1, 2]), 0)
    assert [e[0] for e in clock.drain()] == [-9_000_000_000_000_000_000,
                                             9_000_000_000_000_000_000]


def test_synthetic_bars_refuse_to_run_past_the_ns_range():
    from mlbacktest.data.synthetic import synthetic_bars

    with pytest.raises(ValueError, match="2262"):
        synthetic_bars(2, 100_000, every="1d")
