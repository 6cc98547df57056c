"""The status lifecycle of orders, as ``on_order`` and ``result.orders`` report it.

docs/semantics.md, "Status lifecycle": ``submitted`` (placed; waiting for
latency or a parent) -> ``accepted`` (at the broker) -> ``partially_filled``
-> ``filled``; or ``cancelled`` / ``expired`` / ``rejected`` with a reason.
``on_order`` is called for every status change, and the status events of a
timestamp are delivered before its ``on_fill`` calls.

Orders placed in ``on_slice`` at ``day(i)`` are matched from ``day(i + 1)``.
"""

from __future__ import annotations

import datetime as dt

import polars as pl
import pytest
from helpers import Recorder, Scripted, bars, day, fill_rows, run

FLAT = (100, 101, 99, 100)
STRATEGY_REASON = "cancelled by the strategy"
OCO_REASON = "cancelled: another order of its OCO group filled"
IOC_REASON = "cancelled: immediate-or-cancel, not filled on its first bar"
FOK_REASON = "cancelled: fill-or-kill, could not fill completely on its first bar"
DAY_REASON = "expired: end of day (time in force DAY)"
GTD_REASON = "expired: passed its good-till-date timestamp"


def flat(n: int, **kw):
    return bars({"A": [FLAT] * n}, **kw)


# ----------------------------------------------------------------- happy paths
def test_market_order_submitted_accepted_filled():
    strat = Recorder({0: lambda s, v: s.buy("A", 10)})
    res = run(flat(3), strat, initial_cash=10_000)
    # placed and at the broker at once (no latency), filled at day 1's open
    assert strat.orders == [
        (0, "submitted", day(0), ""),
        (0, "accepted", day(0), ""),
        (0, "filled", day(1), ""),
    ]
    assert fill_rows(res) == [(day(1), "A", 0, 10.0, 100.0, 0.0)]


def test_on_start_order_events_are_delivered_before_the_first_bar():
    strat = Recorder(start=lambda s: s.buy("A", 10))
    run(flat(2), strat, initial_cash=10_000)
    # now is None in on_start; the fill happens at the first bar, day 0
    assert strat.orders == [
        (0, "submitted", None, ""),
        (0, "accepted", None, ""),
        (0, "filled", day(0), ""),
    ]


def test_partial_fills_under_a_volume_cap():
    # volume 1000 * 0.1 -> 100 a bar: 250 fills 100 (day 1), 100 (day 2), 50 (day 3).
    # The second partial fill is no change of status: no event.
    strat = Recorder({0: lambda s, v: s.buy("A", 250)})
    res = run(flat(5, volume=1_000), strat, initial_cash=100_000,
              max_volume_participation=0.1)
    assert strat.orders == [
        (0, "submitted", day(0), ""),
        (0, "accepted", day(0), ""),
        (0, "partially_filled", day(1), ""),
        (0, "filled", day(3), ""),
    ]
    assert res.fills["quantity"].to_list() == [100.0, 100.0, 50.0]
    assert [f.timestamp for f in strat.fills] == [day(1), day(2), day(3)]


def test_cancelled_by_the_strategy():
    seen = {}

    def cancel(s, v):
        seen["returned"] = s.cancel(seen["o"])
        seen["again"] = s.cancel(seen["o"])  # no longer working

    strat = Recorder({0: lambda s, v: seen.update(o=s.buy("A", 10, limit_price=90)),
                      2: cancel})
    res = run(flat(4), strat, initial_cash=10_000)
    assert (seen["returned"], seen["again"]) == (True, False)
    assert strat.orders == [
        (0, "submitted", day(0), ""),
        (0, "accepted", day(0), ""),
        (0, "cancelled", day(2), STRATEGY_REASON),
    ]
    o = res.orders.row(0, named=True)
    assert (o["status"], o["reason"], o["closed_timestamp"]) == (
        "cancelled", STRATEGY_REASON, day(2))
    assert res.fills.height == 0


# ----------------------------------------------------------------- time in force
def test_day_order_expires_at_the_next_days_bar():
    # First eligible bar: day 1 (low 99 > 95: no fill). Day 2 is a later
    # calendar day -> expired there, before matching (day 2's low 94 would
    # have filled it).
    data = bars({"A": [FLAT, FLAT, (96, 97, 94, 95)]})
    seen = {}
    strat = Recorder({
        0: lambda s, v: seen.update(o=s.buy("A", 10, limit_price=95, time_in_force="day")),
        1: lambda s, v: seen.update(day1=seen["o"].status),
    })
    res = run(data, strat, initial_cash=10_000)
    assert seen["day1"] == "accepted"
    assert strat.orders == [
        (0, "submitted", day(0), ""),
        (0, "accepted", day(0), ""),
        (0, "expired", day(2), DAY_REASON),
    ]
    assert seen["o"].time_in_force == "day"
    assert seen["o"].reason == DAY_REASON and seen["o"].closed == day(2)
    assert res.fills.height == 0


def test_day_order_fills_on_its_first_eligible_bar():
    data = bars({"A": [FLAT, (100, 101, 94, 95), FLAT]})
    strat = Recorder({0: lambda s, v: s.buy("A", 10, limit_price=95, time_in_force="day")})
    res = run(data, strat, initial_cash=10_000)
    assert strat.statuses(0) == ["submitted", "accepted", "filled"]
    assert fill_rows(res) == [(day(1), "A", 0, 10.0, 95.0, 0.0)]


def test_day_order_day_starts_at_its_first_eligible_bar_not_at_placement():
    # Intraday bars (two a day); placed at day 0 18:00, the first eligible bar
    # is day 1 00:00; the order works through day 1 18:00 and expires at day 2.
    stamps = [dt.datetime(2024, 1, 1, 0), dt.datetime(2024, 1, 1, 18),
              dt.datetime(2024, 1, 2, 0), dt.datetime(2024, 1, 2, 18),
              dt.datetime(2024, 1, 3, 0)]
    data = pl.DataFrame({
        "timestamp": stamps, "asset": ["A"] * 5, "open": [100.0] * 5, "high": [101.0] * 5,
        "low": [99.0] * 5, "close": [100.0] * 5, "volume": [1e6] * 5,
    }, schema_overrides={"timestamp": pl.Datetime("ns")})
    strat = Recorder({1: lambda s, v: s.buy("A", 10, limit_price=95, time_in_force="day")})
    run(data, strat, initial_cash=10_000)
    assert strat.orders[-1] == (0, "expired", stamps[4], DAY_REASON)


def test_gtd_expires_at_the_first_timestamp_after_expire_at():
    # expire_at day 1 12:00: works on day 1 (no fill), expired at day 2.
    data = bars({"A": [FLAT, FLAT, (96, 97, 94, 95)]})
    seen = {}
    strat = Recorder({0: lambda s, v: seen.update(
        o=s.buy("A", 10, limit_price=95, expire_at=day(1) + dt.timedelta(hours=12)))})
    res = run(data, strat, initial_cash=10_000)
    assert strat.orders == [
        (0, "submitted", day(0), ""),
        (0, "accepted", day(0), ""),
        (0, "expired", day(2), GTD_REASON),
    ]
    o = seen["o"]
    assert o.time_in_force == "gtd"  # expire_at implies gtd
    assert o.expire_at == day(1) + dt.timedelta(hours=12)
    assert res.orders["status"].to_list() == ["expired"]
    assert res.orders["reason"].to_list() == [GTD_REASON]
    assert res.fills.height == 0


def test_gtd_still_works_on_a_bar_stamped_at_its_expiry():
    # expire_at == day 2: day 2 is not after it -> the order can still fill there.
    data = bars({"A": [FLAT, FLAT, (96, 97, 94, 95), FLAT]})
    strat = Recorder({0: lambda s, v: s.buy("A", 10, limit_price=95, time_in_force="gtd",
                                            expire_at=day(2))})
    res = run(data, strat, initial_cash=10_000)
    assert strat.statuses(0) == ["submitted", "accepted", "filled"]
    assert fill_rows(res) == [(day(2), "A", 0, 10.0, 95.0, 0.0)]


def test_ioc_not_filled_is_cancelled_on_its_first_bar():
    # day 1's low 99 > 95: not filled on its first bar -> cancelled; day 2
    # (open 94) would have filled it.
    seen = {}
    strat = Recorder({0: lambda s, v: seen.update(
        o=s.buy("A", 10, limit_price=95, time_in_force="ioc"))})
    res = run(bars({"A": [FLAT, FLAT, (94, 95, 93, 94)]}), strat, initial_cash=10_000)
    assert strat.orders == [
        (0, "submitted", day(0), ""),
        (0, "accepted", day(0), ""),
        (0, "cancelled", day(1), IOC_REASON),
    ]
    assert res.fills.height == 0
    assert seen["o"].time_in_force == "ioc"
    assert res.orders["reason"].to_list() == [IOC_REASON]


def test_ioc_filled_on_its_first_bar():
    strat = Recorder({0: lambda s, v: s.buy("A", 10, limit_price=99.5, time_in_force="ioc")})
    res = run(flat(3), strat, initial_cash=10_000)
    assert fill_rows(res) == [(day(1), "A", 0, 10.0, 99.5, 0.0)]
    assert strat.statuses(0) == ["submitted", "accepted", "filled"]


def test_ioc_partly_filled_under_a_volume_cap_cancels_the_rest():
    strat = Recorder({0: lambda s, v: s.buy("A", 150, time_in_force="ioc")})
    res = run(flat(3, volume=1_000), strat, initial_cash=100_000,
              max_volume_participation=0.1)
    assert fill_rows(res) == [(day(1), "A", 0, 100.0, 100.0, 0.0)]
    assert strat.statuses(0) == ["submitted", "accepted", "partially_filled", "cancelled"]
    o = res.orders.row(0, named=True)
    assert (o["status"], o["filled_quantity"], o["reason"]) == ("cancelled", 100.0, IOC_REASON)


def test_fok_that_cannot_fill_completely_under_a_volume_cap_is_cancelled_without_a_fill():
    # 150 > 0.1 * 1000: the whole order cannot fill on day 1 -> nothing fills.
    strat = Recorder({0: lambda s, v: s.buy("A", 150, time_in_force="fok")})
    res = run(flat(3, volume=1_000), strat, initial_cash=100_000,
              max_volume_participation=0.1)
    assert res.fills.height == 0 and strat.fills == []
    assert strat.orders == [
        (0, "submitted", day(0), ""),
        (0, "accepted", day(0), ""),
        (0, "cancelled", day(1), FOK_REASON),
    ]
    o = res.orders.row(0, named=True)
    assert (o["status"], o["filled_quantity"], o["reason"]) == ("cancelled", 0.0, FOK_REASON)
    assert res.final_equity == 100_000


def test_fok_that_fits_fills():
    strat = Recorder({0: lambda s, v: s.buy("A", 100, time_in_force="fok")})
    res = run(flat(3, volume=1_000), strat, initial_cash=100_000,
              max_volume_participation=0.1)
    assert fill_rows(res) == [(day(1), "A", 0, 100.0, 100.0, 0.0)]
    assert strat.statuses(0) == ["submitted", "accepted", "filled"]


def test_fok_limit_not_reached_is_cancelled():
    strat = Recorder({0: lambda s, v: s.buy("A", 10, limit_price=90, time_in_force="fok")})
    res = run(flat(3), strat, initial_cash=10_000)
    assert strat.orders[-1] == (0, "cancelled", day(1), FOK_REASON)
    assert res.fills.height == 0


# ----------------------------------------------------------------- latency
def test_with_latency_bars_the_order_stays_submitted_until_it_reaches_the_broker():
    seen = {}
    strat = Recorder({
        0: lambda s, v: seen.update(o=s.buy("A", 10)),
        1: lambda s, v: seen.update(day1=seen["o"].status),
    })
    res = run(flat(4), strat, initial_cash=10_000, latency_bars=1)
    assert seen["day1"] == "submitted"
    assert strat.orders == [
        (0, "submitted", day(0), ""),
        (0, "accepted", day(2), ""),
        (0, "filled", day(2), ""),
    ]
    assert fill_rows(res) == [(day(2), "A", 0, 10.0, 100.0, 0.0)]


def test_with_time_latency_the_order_is_accepted_at_its_arrival():
    # 36h after day 0 is day 1 12:00, a timestamp without bars: the arrival is
    # an event of the clock; the order is accepted there and fills at day 2.
    seen = {}
    strat = Recorder({
        0: lambda s, v: seen.update(o=s.buy("A", 10)),
        1: lambda s, v: seen.update(day1=seen["o"].status),
    })
    res = run(flat(4), strat, initial_cash=10_000, latency="36h")
    assert seen["day1"] == "submitted"
    arrival = day(1) + dt.timedelta(hours=12)
    assert strat.orders == [
        (0, "submitted", day(0), ""),
        (0, "accepted", arrival, ""),
        (0, "filled", day(2), ""),
    ]
    assert res.fills["timestamp"].to_list() == [day(2)]


def test_cancel_before_arrival_under_latency():
    seen = {}
    strat = Recorder({
        0: lambda s, v: seen.update(o=s.buy("A", 10)),
        1: lambda s, v: s.cancel(seen["o"]),
    })
    res = run(flat(4), strat, initial_cash=10_000, latency_bars=2)
    assert strat.orders == [
        (0, "submitted", day(0), ""),
        (0, "cancelled", day(1), STRATEGY_REASON),
    ]
    assert res.fills.height == 0


def test_day_order_under_latency_expires_the_day_after_it_reached_the_broker():
    # latency_bars=1: sits out day 1, first eligible bar day 2 -> expires at day 3.
    strat = Recorder({0: lambda s, v: s.buy("A", 10, limit_price=90, time_in_force="day")})
    run(flat(5), strat, initial_cash=10_000, latency_bars=1)
    assert strat.orders == [
        (0, "submitted", day(0), ""),
        (0, "accepted", day(2), ""),
        (0, "expired", day(3), DAY_REASON),
    ]


def every(hours: int, frame: pl.DataFrame) -> pl.DataFrame:
    """``frame`` (bars stamped ``day(i)``) restamped ``day(0) + i * hours``."""
    start = day(0)
    return frame.with_columns(
        (pl.lit(start) + pl.duration(
            hours=(pl.col("timestamp") - pl.lit(start)).dt.total_days() * hours))
        .cast(pl.Datetime("ns")).alias("timestamp"))


def at(hours: int) -> dt.datetime:
    return day(0) + dt.timedelta(hours=hours)


def test_child_released_in_transit_mid_bar_waits_for_its_own_arrival():
    # docs/semantics.md, "Latency": a child freed by its parent's early end
    # still reaches the broker only at its own arrival. 12-hourly bars,
    # latency 36h, 100 shares a bar (volume 1000 x 0.1). The entry placed
    # at 0h arrives at 36h and buys 100 of 150; its child, placed at 36h,
    # arrives at 72h. At 48h the rest of the entry needs 5000 with 2000 left:
    # rejected while the bar trades, so the child (now -100) is free, but it
    # is still in transit: it is accepted at 72h and sells there, not at 60h.
    seen = {}
    strat = Recorder({
        0: lambda s, v: seen.update(entry=s.buy("A", 150)),
        3: lambda s, v: s.order("A", -150, limit_price=100, parent=seen["entry"]),
    })
    res = run(every(12, flat(8, volume=1_000)), strat, initial_cash=12_000,
              max_volume_participation=0.1, latency="36h")
    assert strat.orders == [
        (0, "submitted", at(0), ""),
        (0, "accepted", at(36), ""),
        (0, "partially_filled", at(36), ""),
        (1, "submitted", at(36), ""),
        (0, "rejected", at(48), "insufficient cash: the fill needed 5000.00 but only "
                                "2000.00 was available"),
        (1, "accepted", at(72), ""),
        (1, "filled", at(72), ""),
    ]
    assert fill_rows(res) == [(at(36), "A", 0, 100.0, 100.0, 0.0),
                              (at(72), "A", 1, -100.0, 100.0, 0.0)]


@pytest.mark.parametrize("end", ["expired", "cancelled"])
def test_child_released_where_its_asset_has_no_bar_reaches_the_broker_at_its_next_bar(end):
    # docs/semantics.md, "Latency": under latency_bars an order reaches the
    # broker at its asset's first bar after the bars it sat out. 6-hourly
    # bars; A has none at 24h (day 1), B has one. latency_bars=1, 100 shares
    # a bar. The entry (0h) sits out 6h and buys 100 of 150 at 12h; 18h is
    # above its limit. The child, placed at 12h, sits out 18h. At 24h the
    # entry ends (a DAY order expires, or the strategy cancels a GTC one)
    # and frees the child, now -100: A has no bar there, so the child is
    # accepted at 30h, A's next bar, where it sells.
    flat_a, up = FLAT, (102, 103, 101.5, 102)
    frame = every(6, bars({"A": [flat_a, flat_a, flat_a, up, None, flat_a, flat_a],
                           "B": [flat_a] * 7}, volume=1_000))
    tif = "day" if end == "expired" else "gtc"
    seen = {}
    steps = {
        0: lambda s, v: seen.update(entry=s.buy("A", 150, limit_price=100, time_in_force=tif)),
        2: lambda s, v: s.order("A", -150, limit_price=100, parent=seen["entry"]),
    }
    if end == "cancelled":
        steps[4] = lambda s, v: s.cancel(seen["entry"])
    strat = Recorder(steps)
    res = run(frame, strat, initial_cash=100_000, max_volume_participation=0.1,
              latency_bars=1)
    reason = DAY_REASON if end == "expired" else STRATEGY_REASON
    assert strat.orders == [
        (0, "submitted", at(0), ""),
        (0, "accepted", at(12), ""),
        (0, "partially_filled", at(12), ""),
        (1, "submitted", at(12), ""),
        (0, end, at(24), reason),
        (1, "accepted", at(30), ""),
        (1, "filled", at(30), ""),
    ]
    assert fill_rows(res) == [(at(12), "A", 0, 100.0, 100.0, 0.0),
                              (at(30), "A", 1, -100.0, 100.0, 0.0)]


def test_replacing_a_freed_child_in_transit_keeps_it_in_transit():
    # latency_bars=1, 100 shares a bar. The IOC entry (day 0) sits out day 1,
    # buys 100 of 150 at day 2 and is cancelled there; its child (day 1)
    # sits out day 2, so it is freed (now -100) still in transit. Replacing
    # it at day 2 does not let the copy through before day 3, where it is
    # accepted and sells.
    seen = {}
    strat = Recorder({
        0: lambda s, v: seen.update(entry=s.buy("A", 150, time_in_force="ioc")),
        1: lambda s, v: seen.update(child=s.order("A", -150, limit_price=100,
                                                  parent=seen["entry"])),
        2: lambda s, v: s.replace(seen["child"], limit_price=99),
    })
    res = run(flat(5, volume=1_000), strat, initial_cash=100_000,
              max_volume_participation=0.1, latency_bars=1)
    assert strat.orders == [
        (0, "submitted", day(0), ""),
        (1, "submitted", day(1), ""),
        (0, "accepted", day(2), ""),
        (0, "partially_filled", day(2), ""),
        (0, "cancelled", day(2), IOC_REASON),
        (2, "submitted", day(2), ""),
        (1, "cancelled", day(2), "cancelled: replaced by a new order"),
        (2, "accepted", day(3), ""),
        (2, "filled", day(3), ""),
    ]
    assert fill_rows(res) == [(day(2), "A", 0, 100.0, 100.0, 0.0),
                              (day(3), "A", 2, -100.0, 100.0, 0.0)]


def test_replacing_an_order_does_not_skip_its_latency():
    # latency_bars=2: the limit placed at day 0 would reach the broker after
    # sitting out days 1 and 2. Replacing it at day 1 must not let the copy
    # through earlier: it is not at the broker at day 2 and cannot fill there.
    seen = {}
    strat = Recorder({
        0: lambda s, v: seen.update(o=s.buy("A", 10, limit_price=90)),
        1: lambda s, v: seen.update(new=s.replace(seen["o"], limit_price=101)),
        2: lambda s, v: seen.update(day2=seen["new"].status),
    })
    res = run(flat(6), strat, initial_cash=10_000, latency_bars=2)
    assert seen["day2"] == "submitted"
    assert strat.statuses(1)[0] == "submitted"
    assert res.fills["timestamp"].to_list()[0] >= day(3)


# ----------------------------------------------------------------- ordering of hooks
def test_status_events_of_a_timestamp_come_before_its_fills():
    # Bracket on day 1: entry at the open 100, stop 97 hit on the way to the
    # low 96 (path 100, 101, 96, 98); the take-profit is cancelled.
    data = bars({"A": [FLAT, (100, 101, 96, 98), FLAT]})

    class Marked(Recorder):
        def on_slice(self, view, context):
            self.log.append(("slice", view.timestamp, None))
            super().on_slice(view, context)

    strat = Marked({0: lambda s, v: s.bracket("A", 10, stop_loss=97, take_profit=110)})
    run(data, strat, initial_cash=10_000)
    assert strat.log == [
        ("slice", day(0), None),
        ("order", 0, "submitted"),
        ("order", 0, "accepted"),
        ("order", 1, "submitted"),
        ("order", 2, "submitted"),
        ("order", 0, "filled"),
        ("order", 1, "accepted"),
        ("order", 2, "accepted"),
        ("order", 1, "filled"),
        ("order", 2, "cancelled"),
        ("fill", 0, 10.0),
        ("fill", 1, -10.0),
        ("slice", day(1), None),
        ("slice", day(2), None),
    ]


def test_on_order_status_is_a_snapshot_of_the_event():
    # Both events of one timestamp are delivered after the order filled: the
    # event still reports the status it was raised for.
    reported = []

    class Snap(Recorder):
        def on_order(self, order):
            reported.append((order.status, order.is_open))

    run(flat(3), Snap({0: lambda s, v: s.buy("A", 1)}), initial_cash=10_000)
    assert [r[0] for r in reported] == ["submitted", "accepted", "filled"]


@pytest.mark.filterwarnings("ignore::mlbacktest.errors.RejectedOrdersWarning")
def test_rejected_event_carries_the_reason():
    strat = Recorder({0: lambda s, v: s.buy("A", 11)})  # 1100 > 1000
    run(flat(3), strat, initial_cash=1_000)
    assert strat.orders[-1] == (
        0, "rejected", day(1),
        "insufficient cash: the fill needed 1100.00 but only 1000.00 was available")


def test_on_order_not_overridden_costs_nothing_and_changes_nothing():
    # Same run with and without the hook: identical fills and orders.
    def place(s, v):
        s.bracket("A", 10, stop_loss=97, take_profit=110)

    data = bars({"A": [FLAT, (100, 101, 96, 98), FLAT]})
    a = run(data, Scripted({0: place}), initial_cash=10_000)
    b = run(data, Recorder({0: place}), initial_cash=10_000)
    assert fill_rows(a) == fill_rows(b)
    assert a.orders.equals(b.orders)


# ----------------------------------------------------------------- the orders frame
def test_orders_frame_columns():
    # 0 bracket entry (market), 1 its stop, 2 its target (OCO group 0);
    # 3 a DAY limit that expires; 4 a GTD limit; 5 and 6 an explicit OCO pair.
    data = bars({"A": [FLAT, (100, 101, 96, 98), FLAT, FLAT]})

    def place(s, v):
        s.bracket("A", 10, stop_loss=97, take_profit=110)
        s.buy("A", 1, limit_price=50, time_in_force="day")
        s.buy("A", 1, limit_price=50, expire_at=day(10))
        a = s.buy("A", 1, limit_price=40)
        b = s.buy("A", 1, limit_price=45, time_in_force="ioc")
        s.oco(a, b)

    res = run(data, Recorder({0: place}), initial_cash=10_000)
    o = res.orders
    for column in ("status", "reason", "time_in_force", "parent_id", "oco_group"):
        assert column in o.columns
    assert o["status"].to_list() == ["filled", "filled", "cancelled", "expired", "accepted",
                                     "accepted", "cancelled"]
    # the IOC (6) is cancelled on day 1; a cancel is no fill: 5 keeps working
    assert o["reason"].to_list() == [None, None, OCO_REASON, DAY_REASON, None, None,
                                     IOC_REASON]
    assert o["time_in_force"].to_list() == ["gtc", "gtc", "gtc", "day", "gtd", "gtc", "ioc"]
    assert o["parent_id"].to_list() == [None, 0, 0, None, None, None, None]
    assert o["oco_group"].to_list() == [None, 0, 0, None, None, 1, 1]
    assert o["type"].to_list() == ["market", "stop", "limit", "limit", "limit", "limit",
                                   "limit"]
    assert o["closed_timestamp"].to_list() == [day(1), day(1), day(1), day(2), None, None,
                                               day(1)]


@pytest.mark.parametrize("tif", ["gtc", "day", "ioc", "fok", "gtd"])
def test_order_event_reports_its_time_in_force(tif):
    seen = {}
    extra = {"expire_at": day(5)} if tif == "gtd" else {}
    run(flat(2), Recorder({0: lambda s, v: seen.update(
        o=s.buy("A", 1, limit_price=50, time_in_force=tif, **extra))}), initial_cash=10_000)
    assert seen["o"].time_in_force == tif
