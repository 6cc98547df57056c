"""Journal, reconciliation and restart of a live run."""

from __future__ import annotations

import json
import math

import pytest

from mlbacktest import BacktestConfig
from mlbacktest.live import LiveEngine, LiveFeed, ReconcileError, ReplayFeed, SimulatedVenue
from tests.live_strategies import LimitsAndStops, NextOpenMarket, gappy_bars
from tests.test_live_paper import assert_same_run

CASH = 1_000_000.0
CFG = BacktestConfig(initial_cash=CASH, allow_short=True, history_window=20)


class Crash(Exception):
    """The process dies."""


class CrashAt(LiveFeed):
    """A feed that dies when asked for its batch number ``k`` (between two bars)."""

    def __init__(self, inner, k):
        self.inner, self.k, self.n = inner, k, 0
        self.asset_names, self.signal_names, self.tz = (
            inner.asset_names, inner.signal_names, inner.tz)

    def calendar(self):
        return self.inner.calendar()

    def next_batch(self, timeout):
        if self.n == self.k:
            raise Crash(f"killed before batch {self.k}")
        self.n += 1
        return self.inner.next_batch(timeout)


def venue_run(df, cls, venue, out, crash_at=None):
    inner = ReplayFeed(df, speed=math.inf)
    feed = venue.watch(inner if crash_at is None else CrashAt(inner, crash_at))
    return LiveEngine(feed, cls(), CFG, broker=venue, run_id="r7").run(out=out)


def fills_of(venue):
    return [(f.client_order_id, f.ts, f.asset, f.quantity, f.price) for f in venue.fills]


@pytest.mark.parametrize("cls", [NextOpenMarket, LimitsAndStops], ids=lambda c: c.__name__)
def test_restart_after_a_kill_gives_the_uninterrupted_run_without_duplicates(tmp_path, cls):
    df = gappy_bars(seed=21, n_bars=60)
    whole_venue = SimulatedVenue(CASH)
    whole = venue_run(df, cls, whole_venue, None)
    assert len(whole_venue.fills) > 5

    venue = SimulatedVenue(CASH)
    with pytest.raises(Crash):
        venue_run(df, cls, venue, tmp_path / "run", crash_at=30)
    journal = [json.loads(x) for x in (tmp_path / "run" / "journal.jsonl").read_text().splitlines()]
    assert journal[0]["k"] == "start" and any(r["k"] == "fill" for r in journal)
    n_before = len(venue.submissions)
    assert 0 < n_before < len(whole_venue.submissions)

    resumed = venue_run(df, cls, venue, tmp_path / "run")
    assert venue.duplicates == 0  # nothing was sent twice
    ids = [o.client_order_id for o in venue.submissions]
    assert len(ids) == len(set(ids))
    assert ids == [o.client_order_id for o in whole_venue.submissions]
    assert fills_of(venue) == fills_of(whole_venue)
    assert_same_run(whole, resumed)
    lines = (tmp_path / "run" / "journal.jsonl").read_text().splitlines()
    kinds = [json.loads(x)["k"] for x in lines]
    assert kinds.count("restart") == 1 and kinds.count("start") == 1


def test_reconcile_mismatch_refuses_to_trade(tmp_path):
    df = gappy_bars(seed=21, n_bars=60)
    venue = SimulatedVenue(CASH)
    with pytest.raises(Crash):
        venue_run(df, NextOpenMarket, venue, tmp_path / "run", crash_at=30)
    held = {a: q for a, q in venue.positions.items() if q}
    asset = sorted(held)[0]
    venue.positions[asset] += 1  # someone traded by hand
    n = len(venue.submissions)
    with pytest.raises(ReconcileError, match=rf"asset '{asset}'.*holds {held[asset]:g}.*"
                                             rf"reports {held[asset] + 1:g}"):
        venue_run(df, NextOpenMarket, venue, tmp_path / "run")
    assert len(venue.submissions) == n  # before any trading
    venue.positions[asset] -= 1
    venue.cash += 5.0
    with pytest.raises(ReconcileError, match="cash"):
        venue_run(df, NextOpenMarket, venue, tmp_path / "run")


def test_journal_of_another_run_is_refused(tmp_path):
    df = gappy_bars(n_bars=10)
    LiveEngine(ReplayFeed(df, speed=math.inf), NextOpenMarket(), CFG).run(out=tmp_path / "p")
    with pytest.raises(ReconcileError, match="run_id"):
        LiveEngine(ReplayFeed(df, speed=math.inf), NextOpenMarket(), CFG, run_id="other").run(
            out=tmp_path / "p")


def test_paper_restart_recomputes_and_checks_the_journal(tmp_path):
    df = gappy_bars(seed=8, n_bars=60)
    whole = LiveEngine(ReplayFeed(df, speed=math.inf), LimitsAndStops(), CFG).run()
    with pytest.raises(Crash):
        LiveEngine(CrashAt(ReplayFeed(df, speed=math.inf), 30), LimitsAndStops(), CFG,
                   max_batch=1).run(out=tmp_path / "p")
    resumed = LiveEngine(ReplayFeed(df, speed=math.inf), LimitsAndStops(), CFG,
                         max_batch=7).run(out=tmp_path / "p")
    assert_same_run(whole, resumed)
    recs = [json.loads(x) for x in (tmp_path / "p" / "journal.jsonl").read_text().splitlines()]
    fills = [r for r in recs if r["k"] == "fill"]
    assert len(fills) == whole.fills.height  # each fill journaled once
    orders = [r["id"] for r in recs if r["k"] == "order"]
    assert orders == list(range(whole.orders.height))  # each order journaled once
    # other bars: the replay no longer matches the journal
    with pytest.raises(ReconcileError, match="placed order .* but the journal has"):
        LiveEngine(ReplayFeed(gappy_bars(seed=9, n_bars=60), speed=math.inf), LimitsAndStops(),
                   CFG, max_batch=1).run(out=tmp_path / "p")


def test_restart_of_a_journal_cut_before_its_first_bar_resends_the_order(tmp_path):
    df = gappy_bars(seed=21, n_bars=20)

    class Early(NextOpenMarket):
        def on_start(self):
            self.buy("A000", 2)

    class LostOrder(SimulatedVenue):
        """The process dies after journaling its first order, before the venue has it."""

        def __init__(self, cash):
            super().__init__(cash)
            self.fail = True

        def submit(self, order):
            if self.fail:
                self.fail = False
                raise Crash("died while sending")
            super().submit(order)

    venue = LostOrder(CASH)
    with pytest.raises(Crash):
        venue_run(df, Early, venue, tmp_path / "run")
    assert venue.submissions == []
    whole_venue = SimulatedVenue(CASH)
    whole = venue_run(df, Early, whole_venue, None)
    resumed = venue_run(df, Early, venue, tmp_path / "run")
    assert [o.client_order_id for o in venue.submissions] == \
        [o.client_order_id for o in whole_venue.submissions]
    assert venue.duplicates == 0
    assert_same_run(whole, resumed)
