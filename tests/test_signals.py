"""Point-in-time signals: separate signal frames, available_at, signal_delay, embargo.

The rules under test (docs/signals.md): a signal row stamped t is visible from
max(t + embargo, available_at) + delay (duration delay); a bar shows the
newest visible row of its asset (latest timestamp), NaN if none; an int
signal_delay shows what the asset's n-th earlier bar would have shown.
"""

from __future__ import annotations

import datetime as dt
import math

import numpy as np
import polars as pl
import pytest
from conftest import examples
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mlbacktest import BacktestEngine, DataError, ParquetDataFeed, PolarsDataFeed, Strategy
from mlbacktest.data.signals import SignalTiming, align_signals, parse_duration
from mlbacktest.errors import ConfigError

H = 3_600_000_000_000  # one hour in ns
DAY = 24 * H
D0 = dt.datetime(2024, 1, 1)


def d(days: float = 0, hours: float = 0) -> dt.datetime:
    return D0 + dt.timedelta(days=days, hours=hours)


def prices(n_days: int = 5, assets: str = "AB", **extra) -> pl.DataFrame:
    """Daily bars at midnight for every asset; `extra` columns must have one value per row."""
    rows = [(d(i), a) for i in range(n_days) for a in assets]
    df = pl.DataFrame(
        {
            "timestamp": [r[0] for r in rows],
            "asset": [r[1] for r in rows],
            "open": 10.0,
            "high": 11.0,
            "low": 9.0,
            "close": 10.5,
            "volume": 100.0,
        }
    )
    return df.with_columns(**{k: pl.Series(k, v) for k, v in extra.items()})


def seen(feed, asset: str, column: str = "pred") -> list[float | None]:
    """The signal each bar of `asset` shows, in time order (None for NaN)."""
    p = feed.panel
    j = p.signal_names.index(column)
    aid = p.asset_names.index(asset)
    vals = p.signals[p.asset == aid, j]
    return [None if math.isnan(v) else float(v) for v in vals]


# --------------------------------------------------------------------------- #
# Brute-force reference
# --------------------------------------------------------------------------- #
def reference(bar_ts, bar_asset, sig, delay_bars=0, delay_ns=0, embargo_ns=0):
    """Straight from the rules, one bar at a time.

    sig: list of (ts, asset, available_at or None, value).
    """
    out = np.full(len(bar_ts), np.nan)
    per_asset: dict[int, list[int]] = {}
    for i in np.argsort(bar_ts, kind="stable"):
        per_asset.setdefault(int(bar_asset[i]), []).append(int(i))
    for a, idx in per_asset.items():
        for k, i in enumerate(idx):
            if k - delay_bars < 0:
                continue
            t = int(bar_ts[idx[k - delay_bars]])
            best = None
            for ts, asset, avail, value in sig:
                pub = ts + embargo_ns if avail is None else max(ts + embargo_ns, avail)
                if asset == a and pub + delay_ns <= t and (best is None or ts > best[0]):
                    best = (ts, value)
            if best is not None:
                out[i] = best[1]
    return out


def _ns_frame(ts_ns, assets, **cols) -> pl.DataFrame:
    data = {
        "timestamp": pl.Series(ts_ns, dtype=pl.Int64).cast(pl.Datetime("ns")),
        "asset": assets,
    }
    for k, v in cols.items():
        if k == "available_at":
            data[k] = pl.Series(v, dtype=pl.Int64).cast(pl.Datetime("ns"))
        else:
            data[k] = pl.Series(v, dtype=pl.Float64)
    return pl.DataFrame(data)


@st.composite
def panels(draw):
    assets = ["A", "B", "C"]
    bar_keys = draw(
        st.lists(
            st.tuples(st.integers(0, 12), st.sampled_from(assets)),
            min_size=1,
            max_size=25,
            unique=True,
        )
    )
    sig_keys = draw(
        st.lists(
            st.tuples(st.integers(-3, 15), st.sampled_from(assets)),
            min_size=0,
            max_size=20,
            unique=True,
        )
    )
    with_avail = draw(st.booleans())
    lags = [draw(st.integers(0, 6)) for _ in sig_keys]
    values = [draw(st.one_of(st.none(), st.floats(-5, 5))) for _ in sig_keys]
    delay = draw(st.one_of(st.integers(0, 3), st.integers(1, 4).map(lambda h: f"{h}h")))
    embargo = draw(st.one_of(st.none(), st.integers(0, 4).map(lambda h: f"{h}h")))
    return bar_keys, sig_keys, with_avail, lags, values, delay, embargo


@settings(max_examples=examples(150), deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(panels())
def test_separate_frame_matches_brute_force(case):
    bar_keys, sig_keys, with_avail, lags, values, delay, embargo = case
    bar_assets = {a for _, a in bar_keys}
    # signals of assets without bars are an error (tested elsewhere): keep the others
    keep = [i for i, (_, a) in enumerate(sig_keys) if a in bar_assets]
    sig_keys = [sig_keys[i] for i in keep]
    lags = [lags[i] for i in keep]
    values = [values[i] for i in keep]
    n = len(bar_keys)
    px = _ns_frame(
        [t * H for t, _ in bar_keys],
        [a for _, a in bar_keys],
        open=[1.0] * n,
        high=[1.0] * n,
        low=[1.0] * n,
        close=[1.0] * n,
        volume=[1.0] * n,
    )
    cols = {"pred": values}
    if with_avail:
        cols["available_at"] = [(t + lag) * H for (t, _), lag in zip(sig_keys, lags, strict=True)]
    sig = _ns_frame([t * H for t, _ in sig_keys], [a for _, a in sig_keys], **cols)
    feed = PolarsDataFeed(
        px,
        signals=sig,
        signal_delay=delay,
        embargo=embargo,
        available_at_column="available_at" if with_avail else None,
    )
    p = feed.panel
    timing = feed.signal_timing
    ids = {a: i for i, a in enumerate(p.asset_names)}
    rows = [
        (t * H, ids[a], (t + lag) * H if with_avail else None, np.nan if v is None else v)
        for (t, a), lag, v in zip(sig_keys, lags, values, strict=True)
    ]
    want = reference(p.ts, p.asset, rows, timing.delay_bars, timing.delay_ns, timing.embargo_ns)
    np.testing.assert_array_equal(p.signals[:, 0], want)
    assert p.signal_names == ("pred",)


@settings(max_examples=examples(80), deadline=None)
@given(
    st.lists(
        st.tuples(st.integers(0, 15), st.sampled_from("ABC")), min_size=1, max_size=25, unique=True
    ),
    st.one_of(st.integers(0, 3), st.integers(0, 5).map(lambda h: f"{h}h")),
    st.one_of(st.none(), st.integers(0, 3).map(lambda h: f"{h}h")),
)
def test_price_frame_signals_match_brute_force(bar_keys, delay, embargo):
    n = len(bar_keys)
    pred = [float(i) for i in range(n)]
    px = _ns_frame(
        [t * H for t, _ in bar_keys],
        [a for _, a in bar_keys],
        open=[1.0] * n,
        high=[1.0] * n,
        low=[1.0] * n,
        close=[1.0] * n,
        volume=[1.0] * n,
        pred=pred,
    )
    feed = PolarsDataFeed(px, signal_delay=delay, embargo=embargo)
    p = feed.panel
    tm = feed.signal_timing
    rows = [(int(p.ts[i]), int(p.asset[i]), None, float(pred[p.source_row[i]])) for i in range(n)]
    want = reference(p.ts, p.asset, rows, tm.delay_bars, tm.delay_ns, tm.embargo_ns)
    np.testing.assert_array_equal(p.signals[:, 0], want)


def test_align_signals_handles_empty_inputs():
    ts = np.array([0, 1], dtype=np.int64)
    a = np.zeros(2, dtype=np.int32)
    e = np.empty(0, dtype=np.int64)
    out = align_signals(ts, a, e, e, np.empty(0, dtype=np.int32), np.empty((0, 2)))
    assert out.shape == (2, 2) and np.isnan(out).all()


# --------------------------------------------------------------------------- #
# As-of join and available_at
# --------------------------------------------------------------------------- #
def test_as_of_backward_visible_from_own_time_and_nan_before():
    sig = pl.DataFrame(
        {
            "timestamp": [d(1), d(2, 12), d(0, -6)],
            "asset": ["A", "A", "B"],
            "pred": [1.0, 2.0, 7.0],
        }
    )
    feed = PolarsDataFeed(prices(), signals=sig)
    # a row stamped exactly at a bar is visible at that bar; mid-day rows from the next bar
    assert seen(feed, "A") == [None, 1.0, 1.0, 2.0, 2.0]
    assert seen(feed, "B") == [7.0] * 5  # stamped before the first bar: visible at it
    assert feed.signal_names == ("pred",)


def test_latest_row_wins_with_its_nan():
    sig = pl.DataFrame({"timestamp": [d(0), d(2)], "asset": ["A", "A"], "pred": [1.0, None]})
    feed = PolarsDataFeed(prices(assets="A"), signals=sig)
    # NaN = "no prediction": a newer row with NaN does not fall back to the older value
    assert seen(feed, "A") == [1.0, 1.0, None, None, None]


def test_available_at_delays_visibility():
    sig = pl.DataFrame(
        {
            "timestamp": [d(0), d(1)],
            "available_at": [d(0, 12), d(1)],
            "asset": ["A", "A"],
            "pred": [1.0, 2.0],
        }
    )
    feed = PolarsDataFeed(prices(assets="A"), signals=sig, available_at_column="available_at")
    assert seen(feed, "A") == [None, 2.0, 2.0, 2.0, 2.0]


def test_late_published_old_prediction_never_overrides_newer_one():
    sig = pl.DataFrame(
        {
            # the day-0 prediction is only published on day 3, after the day-1 one
            "timestamp": [d(0), d(1), d(3, 6)],
            "available_at": [d(3), d(1), d(3, 6)],
            "asset": ["A", "A", "A"],
            "pred": [100.0, 1.0, 3.0],
        }
    )
    feed = PolarsDataFeed(prices(assets="A"), signals=sig, available_at_column="available_at")
    assert seen(feed, "A") == [None, 1.0, 1.0, 1.0, 3.0]


def test_late_publication_is_shown_when_it_is_the_newest_visible():
    sig = pl.DataFrame(
        {
            "timestamp": [d(0), d(1)],
            "available_at": [d(0), d(3)],
            "asset": ["A", "A"],
            "pred": [1.0, 2.0],
        }
    )
    feed = PolarsDataFeed(prices(assets="A"), signals=sig, available_at_column="available_at")
    assert seen(feed, "A") == [1.0, 1.0, 1.0, 2.0, 2.0]


def test_available_at_in_price_frame_and_date_signal_timestamps():
    px = prices(assets="A", pred=[1.0, 2.0, 3.0, 4.0, 5.0], pub=[d(0), d(1, 1), d(2), d(3), d(4)])
    feed = PolarsDataFeed(px, available_at_column="pub")
    assert feed.signal_names == ("pred",)  # the publication column is not a signal
    assert seen(feed, "A") == [1.0, 1.0, 3.0, 4.0, 5.0]
    sig = pl.DataFrame({"timestamp": [dt.date(2024, 1, 2)], "asset": ["A"], "pred": [9.0]})
    assert seen(PolarsDataFeed(prices(assets="A"), signals=sig), "A") == [None] + [9.0] * 4


def test_signal_frame_and_price_signals_together_in_requested_order():
    px = prices(assets="A", bid=[1.0, 2.0, 3.0, 4.0, 5.0])
    sig = pl.DataFrame({"timestamp": [d(1)], "asset": ["A"], "pred": [0.5], "other": [1.0]})
    feed = PolarsDataFeed(px, signals=sig, signal_columns=["pred", "bid"])
    assert feed.signal_names == ("pred", "bid")
    assert seen(feed, "A", "bid") == [1.0, 2.0, 3.0, 4.0, 5.0]
    assert seen(feed, "A", "pred") == [None, 0.5, 0.5, 0.5, 0.5]
    default = PolarsDataFeed(px, signals=sig)
    assert default.signal_names == ("bid", "pred", "other")


def test_empty_signal_frame_gives_nan():
    sig = pl.DataFrame({"timestamp": [d(0)], "asset": ["A"], "pred": [1.0]}).clear()
    feed = PolarsDataFeed(prices(), signals=sig)
    assert np.isnan(feed.panel.signals).all() and feed.signal_names == ("pred",)


def test_time_zone_aware_signals():
    px = prices(assets="A").with_columns(pl.col("timestamp").dt.replace_time_zone("UTC"))
    sig = pl.DataFrame({"timestamp": [d(1)], "asset": ["A"], "pred": [1.0]}).with_columns(
        pl.col("timestamp").dt.replace_time_zone("UTC")
    )
    feed = PolarsDataFeed(px, signals=sig, signal_delay="1h")
    assert feed.tz == "UTC"
    assert seen(feed, "A") == [None, None, 1.0, 1.0, 1.0]


# --------------------------------------------------------------------------- #
# signal_delay and embargo
# --------------------------------------------------------------------------- #
def test_signal_delay_in_bars_counts_bars_of_the_asset():
    # B has no bar on day 2: its one-bar delay skips over the gap
    px = prices(assets="AB", pred=[float(i) for i in range(10)]).filter(
        ~((pl.col("asset") == "B") & (pl.col("timestamp") == d(2)))
    )
    feed = PolarsDataFeed(px, signal_delay=1)
    assert seen(feed, "A") == [None, 0.0, 2.0, 4.0, 6.0]
    assert seen(feed, "B") == [None, 1.0, 3.0, 7.0]
    assert seen(PolarsDataFeed(px, signal_delay=0), "A") == [0.0, 2.0, 4.0, 6.0, 8.0]


def test_signal_delay_in_bars_on_a_separate_frame():
    sig = pl.DataFrame({"timestamp": [d(0, 6), d(2)], "asset": ["A", "A"], "pred": [1.0, 2.0]})
    feed = PolarsDataFeed(prices(assets="A"), signals=sig, signal_delay=2)
    # visible (no delay) at bars 1 and 2; shown two bars of A later
    assert seen(feed, "A") == [None, None, None, 1.0, 2.0]


@pytest.mark.parametrize("delay", ["1d", dt.timedelta(days=1), np.timedelta64(24, "h"), "23h60m"])
def test_signal_delay_as_a_duration(delay):
    px = prices(assets="A", pred=[0.0, 1.0, 2.0, 3.0, 4.0])
    feed = PolarsDataFeed(px, signal_delay=delay)
    assert feed.signal_timing == SignalTiming(0, DAY, 0)
    assert seen(feed, "A") == [None, 0.0, 1.0, 2.0, 3.0]
    # a duration shorter than the bar spacing still hides the bar's own value
    assert seen(PolarsDataFeed(px, signal_delay="30m"), "A") == [None, 0.0, 1.0, 2.0, 3.0]


def test_duration_delay_adds_to_available_at_but_embargo_does_not():
    sig = pl.DataFrame(
        {
            "timestamp": [d(0)],
            "available_at": [d(2)],  # published two days after its stamp
            "asset": ["A"],
            "pred": [1.0],
        }
    )
    kw = dict(signals=sig, available_at_column="available_at")
    px = prices(assets="A")
    # delay: published at day 2, then one more day -> day 3
    assert seen(PolarsDataFeed(px, signal_delay="1d", **kw), "A") == [None] * 3 + [1.0] * 2
    # embargo: at least one day after the stamp; already published later -> day 2
    assert seen(PolarsDataFeed(px, embargo="1d", **kw), "A") == [None] * 2 + [1.0] * 3
    # a longer embargo than the publication lag wins
    assert seen(PolarsDataFeed(px, embargo="3d", **kw), "A") == [None] * 3 + [1.0] * 2
    # both: max(timestamp + embargo, available_at) + delay = max(d3, d2) + 1d = d4
    got = seen(PolarsDataFeed(px, embargo="3d", signal_delay="1d", **kw), "A")
    assert got == [None] * 4 + [1.0]


def test_embargo_on_price_frame_signals():
    px = prices(assets="A", pred=[0.0, 1.0, 2.0, 3.0, 4.0])
    assert seen(PolarsDataFeed(px, embargo="2d"), "A") == [None, None, 0.0, 1.0, 2.0]
    assert seen(PolarsDataFeed(px, embargo="36h"), "A") == [None, None, 0.0, 1.0, 2.0]


def test_embargo_and_bar_delay_combine():
    px = prices(assets="A", pred=[0.0, 1.0, 2.0, 3.0, 4.0])
    assert seen(PolarsDataFeed(px, embargo="1d", signal_delay=1), "A") == [
        None,
        None,
        0.0,
        1.0,
        2.0,
    ]


def test_delay_columns_leave_other_columns_on_their_bar():
    px = prices(assets="A", pred=[0.0, 1.0, 2.0, 3.0, 4.0], ask=[5.0, 6.0, 7.0, 8.0, 9.0])
    feed = PolarsDataFeed(px, signal_delay=1, delay_columns=["pred"])
    assert seen(feed, "A", "ask") == [5.0, 6.0, 7.0, 8.0, 9.0]
    assert seen(feed, "A", "pred") == [None, 0.0, 1.0, 2.0, 3.0]
    with pytest.raises(DataError, match=r"delay_columns \['nope'\] are not signal columns"):
        PolarsDataFeed(px, signal_delay=1, delay_columns=["nope"])


def test_no_delay_keeps_the_panel_as_built():
    px = prices(assets="A", pred=[0.0, None, 2.0, 3.0, 4.0])
    feed = PolarsDataFeed(px, signal_delay=0, embargo="0s")
    assert seen(feed, "A") == [0.0, None, 2.0, 3.0, 4.0]
    assert not feed.panel.signals.flags.writeable


@pytest.mark.parametrize(
    ("kw", "message"),
    [
        (dict(signal_delay=-1), "signal_delay must be >= 0 bars"),
        (dict(signal_delay=1.5), "pass an int number of bars or a duration"),
        (dict(signal_delay=True), "signal_delay must be an int or a duration"),
        (dict(signal_delay="-1d"), "is not a duration"),
        (dict(signal_delay="1mo"), "is a calendar period, not a duration"),
        (dict(embargo=3), "embargo=3 is a bare number, and embargo is a duration"),
        (dict(embargo=dt.timedelta(hours=-1)), "embargo must not be negative"),
        (dict(embargo=np.timedelta64("NaT")), "embargo is NaT"),
        (dict(embargo=np.timedelta64(1, "M")), "fixed duration"),
    ],
)
def test_bad_delay_or_embargo(kw, message):
    with pytest.raises(ConfigError, match=message):
        PolarsDataFeed(prices(), **kw)


def test_parse_duration_units():
    assert parse_duration("1h30m", "x") == 90 * 60 * 10**9
    assert parse_duration("1w", "x") == 7 * DAY
    assert parse_duration("0.5s", "x") == 5 * 10**8
    assert parse_duration(" 250 ms ", "x") == 250 * 10**6


# --------------------------------------------------------------------------- #
# Bad input
# --------------------------------------------------------------------------- #
def _sig(**over):
    base = {
        "timestamp": [d(0), d(1), d(2)],
        "asset": ["A", "B", "A"],
        "pred": [1.0, 2.0, 3.0],
    }
    base.update(over)
    return pl.DataFrame(base)


def test_duplicate_signal_rows_name_both_rows():
    sig = _sig(timestamp=[d(0), d(1), d(0)], asset=["A", "B", "A"])
    with pytest.raises(DataError) as exc:
        PolarsDataFeed(prices(), signals=sig)
    msg = str(exc.value)
    assert msg.startswith("signal frame: duplicate rows for columns ('timestamp', 'asset')")
    assert "row 2 (asset 'A', timestamp 2024-01-01 00:00:00), which repeats row 0" in msg


def test_available_at_before_timestamp_names_the_row():
    sig = _sig(available_at=[d(0), d(0, 23), d(3)])
    with pytest.raises(DataError) as exc:
        PolarsDataFeed(prices(), signals=sig, available_at_column="available_at")
    msg = str(exc.value)
    assert "column 'available_at' is earlier than 'timestamp'" in msg
    assert "in 1 row; first at row 1 (asset 'B', timestamp 2024-01-02 00:00:00)" in msg
    assert "available_at='2024-01-01 23:00:00'" in msg


def test_available_at_before_timestamp_in_price_frame():
    px = prices(assets="A", pred=[1.0] * 5, pub=[d(0), d(1), d(1), d(3), d(4)])
    with pytest.raises(DataError, match=r"first at row 2 \(asset 'A', timestamp 2024-01-03"):
        PolarsDataFeed(px, available_at_column="pub")


def test_signal_for_unknown_asset():
    sig = _sig(asset=["A", "ZZZ", "A"])
    with pytest.raises(DataError) as exc:
        PolarsDataFeed(prices(), signals=sig)
    msg = str(exc.value)
    assert msg.startswith("signal frame: asset not in the price data (1 unknown: 'ZZZ')")
    assert "first at row 1 (asset 'ZZZ', timestamp 2024-01-02 00:00:00)" in msg


@pytest.mark.parametrize(
    ("drop", "kw", "message"),
    [
        ("timestamp", {}, "signal frame: missing required column 'timestamp'"),
        ("asset", {}, "signal frame: missing required column 'asset'"),
        (
            None,
            {"available_at_column": "available_at"},
            "signal frame: missing required column 'available_at'",
        ),
        (
            None,
            {"signal_columns": ["pred", "score"]},
            "signal column 'score' not found in the price frame",
        ),
    ],
)
def test_missing_columns(drop, kw, message):
    sig = _sig() if drop is None else _sig().drop(drop)
    with pytest.raises(DataError, match=message):
        PolarsDataFeed(prices(), signals=sig, **kw)


@pytest.mark.parametrize(
    ("px_tz", "sig_tz", "message"),
    [
        ("UTC", None, "'prices' is 'UTC' but 'signals' is naive"),
        (None, "UTC", "'prices' is naive .* but 'signals' is 'UTC'"),
        ("America/New_York", "UTC", "'prices' is 'America/New_York' but 'signals' is 'UTC'"),
    ],
)
def test_mixed_time_zones(px_tz, sig_tz, message):
    px, sig = prices(), _sig()
    if px_tz:
        px = px.with_columns(pl.col("timestamp").dt.replace_time_zone(px_tz))
    if sig_tz:
        sig = sig.with_columns(pl.col("timestamp").dt.replace_time_zone(sig_tz))
    with pytest.raises(DataError, match=f"signal frame: time zones differ: {message}"):
        PolarsDataFeed(px, signals=sig)


def test_available_at_in_another_time_zone():
    sig = _sig(available_at=[d(0), d(1), d(2)]).with_columns(
        pl.col("available_at").dt.replace_time_zone("UTC")
    )
    with pytest.raises(DataError, match="'timestamp' is naive .* but 'available_at' is 'UTC'"):
        PolarsDataFeed(prices(), signals=sig, available_at_column="available_at")


def test_python_datetimes_with_mixed_zones_in_signal_dict():
    sig = {
        "timestamp": [d(0), d(1).replace(tzinfo=dt.timezone.utc)],
        "asset": ["A", "A"],
        "pred": [1.0, 2.0],
    }
    with pytest.raises(DataError, match="mixes time zones"):
        PolarsDataFeed(prices(), signals=sig)


@pytest.mark.parametrize(
    ("over", "kw", "message"),
    [
        (
            {"timestamp": [d(0), None, d(2)]},
            {},
            "column 'timestamp' is null in 1 row; first at row 1",
        ),
        ({"asset": ["A", None, "B"]}, {}, "column 'asset' is null in 1 row; first at row 1"),
        (
            {"available_at": [d(0), None, d(2)]},
            {"available_at_column": "available_at"},
            "column 'available_at' is null in 1 row; first at row 1",
        ),
        (
            {"pred": ["x", "y", "z"]},
            {"signal_columns": ["pred"]},
            "signal column 'pred' has dtype String",
        ),
        ({"pred": ["x", "y", "z"]}, {}, "column 'pred' is neither a bar field nor a numeric"),
        ({"close": [1.0, 2.0, 3.0]}, {}, "signal column 'close' has the name of a bar field"),
        ({"timestamp": ["2024-01-01", "Jan 2", "2024-01-03"]}, {}, "not ISO-8601"),
    ],
)
def test_bad_signal_values(over, kw, message):
    with pytest.raises(DataError, match=message) as exc:
        PolarsDataFeed(prices(), signals=_sig(**over), **kw)
    assert str(exc.value).startswith("signal frame: ")


def test_publication_column_not_named_is_reported_with_a_hint():
    with pytest.raises(DataError, match="available_at_column"):
        PolarsDataFeed(prices(), signals=_sig(published=[d(0), d(1), d(2)]))


def test_signal_names_in_both_frames():
    px = prices(pred=[0.0] * 10)
    with pytest.raises(DataError, match="'pred' of the signal frame also in the price frame"):
        PolarsDataFeed(px, signals=_sig())
    with pytest.raises(DataError, match="'pred' is in both the price frame and the signal frame"):
        PolarsDataFeed(px, signals=_sig(), signal_columns=["pred"])
    with pytest.raises(DataError, match="requested more than once"):
        PolarsDataFeed(prices(), signals=_sig(), signal_columns=["pred", "pred"])
    with pytest.raises(DataError, match="is the available_at column, not a signal"):
        PolarsDataFeed(
            prices(),
            signals=_sig(available_at=[d(0)] * 3),
            available_at_column="available_at",
            signal_columns=["available_at"],
        )


def test_errors_come_before_any_run():
    class Boom(Strategy):
        def on_start(self):  # pragma: no cover - never reached
            raise AssertionError("ran")

    with pytest.raises(DataError):
        BacktestEngine(PolarsDataFeed(prices(), signals=_sig(asset=["A", "Q", "A"])), Boom())


# --------------------------------------------------------------------------- #
# Parquet
# --------------------------------------------------------------------------- #
def test_parquet_feed_with_signal_path_and_filters(tmp_path):
    prices(assets="ABC").write_parquet(tmp_path / "bars.parquet")
    sig = pl.DataFrame(
        {
            "timestamp": [d(0, 6), d(1), d(9), d(1)],
            "available_at": [d(2), d(1), d(9), d(1)],
            "asset": ["A", "A", "A", "C"],
            "pred": [1.0, 2.0, 3.0, 4.0],
        }
    )
    sig.write_parquet(tmp_path / "sig.parquet")
    feed = ParquetDataFeed(
        tmp_path / "bars.parquet",
        signals=tmp_path / "sig.parquet",
        available_at_column="available_at",
        assets=["A", "B"],
        end=d(3),
    )
    assert feed.asset_names == ("A", "B")  # C's signals are filtered with its bars
    assert seen(feed, "A") == [None, 2.0, 2.0, 2.0]
    assert seen(feed, "B") == [None] * 4
    # rows after `end` are not read (the day-9 row would otherwise be validated)
    assert "SELECTION" in feed.query_plan(signals=True)
    with pytest.raises(ValueError, match="no signal frame"):
        ParquetDataFeed(tmp_path / "bars.parquet").query_plan(signals=True)
    # a frame works as well as a path, and errors name the row of the file
    same = ParquetDataFeed(
        tmp_path / "bars.parquet", signals=sig.drop("available_at"), signal_delay=1
    )
    assert seen(same, "A") == [None, None, 2.0, 2.0, 2.0]
    sig.with_columns(asset=pl.lit("A")).with_columns(timestamp=pl.lit(d(1))).write_parquet(
        tmp_path / "dup.parquet"
    )
    with pytest.raises(DataError, match="first at row 1 .* which repeats row 0"):
        ParquetDataFeed(
            tmp_path / "bars.parquet",
            signals=tmp_path / "dup.parquet",
            available_at_column="available_at",
        )


# --------------------------------------------------------------------------- #
# End to end
# --------------------------------------------------------------------------- #
class Recorder(Strategy):
    def __init__(self):
        self.events = []
        self.slices = []
        self.histories = []

    def on_market_data(self, event, context):
        self.events.append((event.timestamp, event.asset, event.signals["pred"]))

    def on_slice(self, view, context):
        self.slices.append((view.timestamp, list(view.assets), view.signal("pred").tolist()))
        if "A" in view.assets:
            self.histories.append(self.history("A", "pred", 3).tolist())


def _same(a, b):
    return all(
        (x == y) or (isinstance(x, float) and math.isnan(x) and math.isnan(y))
        for x, y in zip(a, b, strict=True)
    )


def test_end_to_end_strategy_sees_point_in_time_signals():
    sig = pl.DataFrame(
        {
            "timestamp": [d(0, 12), d(1), d(2, 6), d(0)],
            "available_at": [d(3), d(1), d(2, 6), d(0)],
            "asset": ["A", "A", "A", "B"],
            "pred": [100.0, 1.0, 3.0, 9.0],
        }
    )
    feed = PolarsDataFeed(prices(), signals=sig, available_at_column="available_at", signal_delay=1)
    strat = Recorder()
    BacktestEngine(feed, strat).run()
    nan = float("nan")
    # no delay, A sees: -, 1, 1, 3, 3 (the late day-0 row never shows); B: 9 throughout
    want_a = [nan, nan, 1.0, 1.0, 3.0]
    want_b = [nan, 9.0, 9.0, 9.0, 9.0]
    got_a = [v for _, a, v in strat.events if a == "A"]
    got_b = [v for _, a, v in strat.events if a == "B"]
    assert _same(got_a, want_a) and _same(got_b, want_b)
    assert [ts for ts, _, _ in strat.slices] == [d(i) for i in range(5)]
    for i, (_, assets, preds) in enumerate(strat.slices):
        assert assets == ["A", "B"]
        assert _same(preds, [want_a[i], want_b[i]])
    # history ends at the current bar and holds what was shown then
    assert _same(strat.histories[-1], want_a[-3:])
    assert _same(strat.histories[1], want_a[:2])
