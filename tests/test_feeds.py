"""Bar feeds produce the BarPanel contract: sorted, encoded, read-only columns."""

from __future__ import annotations

import re
from datetime import date, datetime, timedelta, timezone

import numpy as np
import polars as pl
import pytest
from conftest import examples
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mlbacktest.data.context import ContextFrame
from mlbacktest.data.feeds import DataFeed, ParquetDataFeed, PolarsDataFeed
from mlbacktest.data.panel import BAR_FIELDS, BarPanel
from mlbacktest.errors import DataError

NS_PER_DAY = 86_400 * 10**9


def make_frame(n_days: int = 5, assets=("AAA", "BBB", "CCC"), seed: int = 0) -> pl.DataFrame:
    """Valid long-format bars, sorted by (timestamp, asset)."""
    rng = np.random.default_rng(seed)
    days = [datetime(2024, 1, 1) + timedelta(days=d) for d in range(n_days)]
    n = n_days * len(assets)
    close = 100.0 + rng.random(n) * 10
    return pl.DataFrame(
        {
            "timestamp": [d for d in days for _ in assets],
            "asset": list(assets) * n_days,
            "open": close + 0.1,
            "high": close + 1.0,
            "low": close - 1.0,
            "close": close,
            "volume": rng.integers(0, 1000, n).astype(float),
            "pred": rng.normal(size=n),
            "score": rng.normal(size=n),
        }
    )


def day_ns(y: int, m: int, d: int) -> int:
    return int(np.datetime64(f"{y:04d}-{m:02d}-{d:02d}", "ns").astype(np.int64))


# ----------------------------------------------------------------- layout
def test_panel_layout_and_read_only():
    feed = PolarsDataFeed(make_frame())
    p = feed.panel
    assert isinstance(feed, DataFeed) and isinstance(p, BarPanel)
    n = len(feed)
    assert n == 15 and len(p) == 15
    assert p.ts.dtype == np.int64 and p.asset.dtype == np.int32 and p.source_row.dtype == np.int64
    for f in BAR_FIELDS:
        assert getattr(p, f).dtype == np.float64
    assert p.signals.shape == (n, 2) and p.signals.dtype == np.float64
    assert feed.signal_names == ("pred", "score") and feed.tz is None
    for name in ("ts", "asset", "source_row", "signals", *BAR_FIELDS):
        arr = getattr(p, name)
        assert arr.flags.c_contiguous, name
        assert not arr.flags.writeable, name
        with pytest.raises(ValueError):
            arr[0] = 1


def test_no_signals_gives_empty_matrix():
    feed = PolarsDataFeed(make_frame().drop("pred", "score"))
    assert feed.panel.signals.shape == (15, 0)
    assert feed.panel.signals.flags.c_contiguous
    assert PolarsDataFeed(make_frame(), signal_columns=[]).panel.signals.shape == (15, 0)


def test_signal_columns_selected_in_order_and_nulls_become_nan():
    df = make_frame().with_columns(
        pl.when(pl.col("asset") == "BBB").then(None).otherwise(pl.col("pred")).alias("pred"),
        pl.Series("flag", [True, False, None] * 5),
    )
    feed = PolarsDataFeed(df, signal_columns=["score", "pred", "flag"])
    p = feed.panel
    assert p.signal_names == ("score", "pred", "flag")
    bbb = p.asset == p.asset_names.index("BBB")
    assert np.isnan(p.signals[bbb, 1]).all()
    assert not np.isnan(p.signals[~bbb, 1]).any()
    np.testing.assert_array_equal(p.signals[:, 0], df["score"].to_numpy()[p.source_row])
    assert set(np.unique(p.signals[:, 2][~np.isnan(p.signals[:, 2])])) == {0.0, 1.0}
    assert np.isnan(p.signals[:, 2]).sum() == 5


def test_integer_prices_cast_to_float():
    df = make_frame().with_columns(
        pl.lit(100).alias("open"),
        pl.lit(101).alias("high"),
        pl.lit(99).alias("low"),
        pl.lit(100).alias("close"),
        pl.lit(5, dtype=pl.UInt32).alias("volume"),
    )
    p = PolarsDataFeed(df).panel
    assert p.open.dtype == np.float64 and (p.high == 101.0).all() and (p.volume == 5.0).all()


# ----------------------------------------------------------------- sorting
def test_shuffled_input_is_sorted_and_source_rows_point_back():
    df = make_frame(n_days=20)
    perm = np.random.default_rng(1).permutation(df.height)
    shuffled = df[perm]
    p = PolarsDataFeed(shuffled).panel
    ref = PolarsDataFeed(df).panel
    for name in ("ts", "asset", "signals", *BAR_FIELDS):
        np.testing.assert_array_equal(getattr(p, name), getattr(ref, name))
    # source_row points at the row in the input as given
    np.testing.assert_array_equal(shuffled["close"].to_numpy()[p.source_row], p.close)
    np.testing.assert_array_equal(perm[p.source_row], ref.source_row)
    # sorted by (ts, asset), strictly increasing asset within a timestamp
    dt, da = np.diff(p.ts), np.diff(p.asset)
    assert ((dt > 0) | ((dt == 0) & (da > 0))).all()


def test_sort_is_stable_against_numpy_lexsort():
    df = make_frame(n_days=30, assets=("Z", "M", "A", "Q"))
    perm = np.random.default_rng(7).permutation(df.height)
    shuffled = df[perm]
    p = PolarsDataFeed(shuffled).panel
    names = sorted(set(shuffled["asset"].to_list()))
    ids = np.array([names.index(a) for a in shuffled["asset"].to_list()])
    ts = shuffled["timestamp"].cast(pl.Datetime("ns")).to_physical().to_numpy()
    order = np.lexsort((ids, ts))
    np.testing.assert_array_equal(p.source_row, order)


# ----------------------------------------------------------------- assets
def test_asset_encoding_sorted_names():
    p = PolarsDataFeed(make_frame(assets=("MSFT", "AAPL", "GOOG"))).panel
    assert p.asset_names == ("AAPL", "GOOG", "MSFT")
    assert p.n_assets == 3
    np.testing.assert_array_equal(p.asset[:3], [0, 1, 2])


def test_integer_and_categorical_assets_become_strings():
    df = make_frame(assets=("10", "9", "200"))
    p_int = PolarsDataFeed(df.with_columns(pl.col("asset").cast(pl.Int64))).panel
    assert p_int.asset_names == ("10", "200", "9")  # sorted as strings
    p_cat = PolarsDataFeed(df.with_columns(pl.col("asset").cast(pl.Categorical))).panel
    assert p_cat.asset_names == ("10", "200", "9")
    np.testing.assert_array_equal(p_int.asset, p_cat.asset)


def test_late_starting_asset_and_gaps_are_accepted():
    df = make_frame(n_days=6)
    day = pl.col("timestamp").dt.day()
    df = df.filter(
        ~((pl.col("asset") == "CCC") & (day < 4))  # CCC starts late
        & ~((pl.col("asset") == "AAA") & day.is_in([2, 5]))  # AAA has gaps
    )
    p = PolarsDataFeed(df).panel
    assert len(p) == df.height
    counts = np.bincount(p.asset, minlength=3)
    assert counts.tolist() == [4, 6, 3]


# ----------------------------------------------------------------- time
def test_date_timestamps_are_midnight():
    df = make_frame().with_columns(pl.col("timestamp").dt.date())
    p = PolarsDataFeed(df).panel
    assert p.tz is None
    assert p.ts[0] == day_ns(2024, 1, 1) and p.ts[-1] == day_ns(2024, 1, 5)


def test_naive_iso_strings():
    df = make_frame().with_columns(pl.col("timestamp").dt.strftime("%Y-%m-%dT%H:%M:%S"))
    p = PolarsDataFeed(df).panel
    assert p.tz is None
    np.testing.assert_array_equal(p.ts, PolarsDataFeed(make_frame()).panel.ts)


def test_iso_strings_with_offsets_are_utc_instants():
    df = make_frame(n_days=1)
    df = df.with_columns(
        pl.Series(
            "timestamp",
            ["2024-01-01T09:30:00-05:00", "2024-01-01T14:30:00Z", "2024-01-01T15:30:00+01:00"],
        )
    )
    p = PolarsDataFeed(df).panel
    assert p.tz == "UTC"
    expected = day_ns(2024, 1, 1) + (14 * 60 + 30) * 60 * 10**9
    assert (p.ts == expected).all()
    np.testing.assert_array_equal(p.asset, [0, 1, 2])


def test_nanosecond_strings_keep_precision():
    df = make_frame(n_days=1).with_columns(
        pl.Series("timestamp", ["2024-01-01T00:00:00.000000001"] * 3)
    )
    assert PolarsDataFeed(df).panel.ts[0] == day_ns(2024, 1, 1) + 1


@pytest.mark.parametrize("unit", ["ns", "us", "ms"])
def test_tz_aware_roundtrip(unit):
    df = make_frame().with_columns(
        pl.col("timestamp").dt.replace_time_zone("America/New_York").dt.cast_time_unit(unit)
    )
    feed = PolarsDataFeed(df)
    p = feed.panel
    assert p.tz == "America/New_York"
    # midnight in New York on 2024-01-01 is 05:00 UTC
    assert p.ts[0] == day_ns(2024, 1, 1) + 5 * 3600 * 10**9
    back = feed.to_polars()
    assert back["timestamp"].dtype == pl.Datetime("ns", "America/New_York")
    assert (
        back["timestamp"].to_list()
        == df["timestamp"].cast(pl.Datetime("ns", "America/New_York")).to_list()
    )


def test_python_datetimes_in_one_zone_are_accepted():
    cols = make_frame().to_dict(as_series=False)
    cols["timestamp"] = [d.replace(tzinfo=timezone.utc) for d in cols["timestamp"]]
    p = PolarsDataFeed(cols).panel
    assert p.tz == "UTC" and p.ts[0] == day_ns(2024, 1, 1)


def test_lazyframe_and_dict_inputs():
    df = make_frame()
    a = PolarsDataFeed(df.lazy()).panel
    b = PolarsDataFeed(df.to_dict(as_series=False)).panel
    for name in ("ts", "asset", "signals", "source_row", *BAR_FIELDS):
        np.testing.assert_array_equal(getattr(a, name), getattr(b, name))


def test_custom_column_names():
    df = make_frame().rename({"timestamp": "time", "asset": "ticker"})
    feed = PolarsDataFeed(df, timestamp_column="time", asset_column="ticker")
    assert feed.asset_names == ("AAA", "BBB", "CCC") and feed.signal_names == ("pred", "score")


def test_wrong_input_type():
    with pytest.raises(TypeError):
        PolarsDataFeed([1, 2, 3])


# ----------------------------------------------------------------- parquet
@pytest.fixture
def parquet_dir(tmp_path):
    """Two files: days 1-5 and days 6-10 of three assets; an extra column 'unused'."""
    df = make_frame(n_days=10).with_columns(pl.lit(1.0).alias("unused"))
    d = tmp_path / "bars"
    d.mkdir()
    df[:15].write_parquet(d / "part-0.parquet")
    df[15:].write_parquet(d / "part-1.parquet")
    return d, df


def test_parquet_file_directory_and_glob(parquet_dir):
    d, df = parquet_dir
    ref = PolarsDataFeed(df).panel
    for source in (d, str(d / "*.parquet"), [d / "part-0.parquet", d / "part-1.parquet"]):
        p = ParquetDataFeed(source).panel
        for name in ("ts", "asset", "signals", "source_row", *BAR_FIELDS):
            np.testing.assert_array_equal(getattr(p, name), getattr(ref, name))
        assert p.signal_names == ("pred", "score", "unused")
    single = ParquetDataFeed(d / "part-1.parquet").panel
    assert len(single) == 15 and single.source_row[0] == 0


def test_parquet_filters_give_exact_rows(parquet_dir):
    d, df = parquet_dir
    feed = ParquetDataFeed(
        d, ["pred"], start=datetime(2024, 1, 3), end="2024-01-07", assets=["CCC", "AAA"]
    )
    p = feed.panel
    expected = df.with_row_index("row").filter(
        pl.col("timestamp").is_between(datetime(2024, 1, 3), datetime(2024, 1, 7))
        & pl.col("asset").is_in(["AAA", "CCC"])
    )
    assert len(p) == expected.height == 10
    np.testing.assert_array_equal(p.source_row, expected["row"].to_numpy())
    np.testing.assert_array_equal(p.close, expected["close"].to_numpy())
    assert p.asset_names == ("AAA", "CCC")
    assert p.signal_names == ("pred",)


@pytest.mark.parametrize(
    ("start", "end"),
    [
        (date(2024, 1, 3), date(2024, 1, 7)),
        ("2024-01-03", "2024-01-07T00:00:00"),
        (np.datetime64("2024-01-03"), np.datetime64("2024-01-07T00:00")),
        (datetime(2024, 1, 2, 0, 0, 1), datetime(2024, 1, 7, 23, 59)),
    ],
)
def test_parquet_start_end_types(parquet_dir, start, end):
    d, _ = parquet_dir
    p = ParquetDataFeed(d, start=start, end=end).panel
    assert p.ts[0] == day_ns(2024, 1, 3) and p.ts[-1] == day_ns(2024, 1, 7)
    assert len(p) == 15


def test_parquet_pushdown_in_query_plan(parquet_dir):
    d, _ = parquet_dir
    feed = ParquetDataFeed(d, ["pred"], start="2024-01-03", assets=["AAA"])
    plan = feed.query_plan()
    scan = plan[plan.index("Parquet SCAN") :]
    # filters pushed into the scan
    assert "SELECTION" in scan and '"asset"' in scan and '"timestamp"' in scan
    # only key + bar + requested signal columns are read: 8 of the 10 in the files
    m = re.search(r"PROJECT (\d+)/(\d+) COLUMNS", scan)
    assert m is not None and (int(m.group(1)), int(m.group(2))) == (8, 10)


def test_parquet_tz_aware_with_naive_bound_is_local_time(tmp_path):
    df = make_frame(n_days=4).with_columns(
        (pl.col("timestamp") + pl.duration(hours=9, minutes=30)).dt.replace_time_zone(
            "America/New_York"
        )
    )
    df.write_parquet(tmp_path / "ny.parquet")
    p = ParquetDataFeed(
        tmp_path / "ny.parquet", start="2024-01-02 09:30", end=datetime(2024, 1, 3, 9, 30)
    ).panel
    assert p.tz == "America/New_York" and len(p) == 6
    p_utc = ParquetDataFeed(tmp_path / "ny.parquet", start="2024-01-02T14:30:00Z").panel
    assert len(p_utc) == 9


def test_parquet_string_timestamps_filtered_after_parsing(tmp_path):
    df = make_frame(n_days=4).with_columns(pl.col("timestamp").dt.strftime("%Y-%m-%dT%H:%M:%S"))
    df.write_parquet(tmp_path / "s.parquet")
    p = ParquetDataFeed(tmp_path / "s.parquet", start="2024-01-02", end="2024-01-03").panel
    assert len(p) == 6 and p.source_row[0] == 3


def test_parquet_hive_partitions(tmp_path):
    df = make_frame(n_days=3)
    for asset in ("AAA", "BBB", "CCC"):
        part = tmp_path / f"asset={asset}"
        part.mkdir()
        df.filter(pl.col("asset") == asset).drop("asset").write_parquet(part / "data.parquet")
    p = ParquetDataFeed(tmp_path, ["pred"], assets=["BBB"]).panel
    assert p.asset_names == ("BBB",) and len(p) == 3


def test_parquet_requested_asset_without_rows_warns(parquet_dir):
    d, _ = parquet_dir
    with pytest.warns(UserWarning, match="XYZ"):
        feed = ParquetDataFeed(d, assets=["AAA", "XYZ"])
    assert feed.asset_names == ("AAA",)


# ----------------------------------------------------------------- context
def test_context_asof_and_row_dict():
    ctx = ContextFrame(
        {
            "timestamp": [date(2024, 1, 3), date(2024, 1, 1), date(2024, 1, 2)],
            "vix": [15.0, 13.0, None],
            "regime": ["storm", "calm", None],
            "n": [3, 1, 2],
        }
    )
    assert ctx.columns == ("vix", "regime", "n") and ctx.tz is None and len(ctx) == 3
    np.testing.assert_array_equal(ctx.source_row, [1, 2, 0])
    steps = np.array(
        [day_ns(2023, 12, 31), day_ns(2024, 1, 1), day_ns(2024, 1, 2) + 1, day_ns(2024, 1, 9)]
    )
    np.testing.assert_array_equal(ctx.asof_indices(steps), [-1, 0, 1, 2])
    assert ctx.row_dict(-1) == {"vix": None, "regime": None, "n": None}
    assert ctx.row_dict(0) == {"vix": 13.0, "regime": "calm", "n": 1}
    r1 = ctx.row_dict(1)
    assert np.isnan(r1["vix"]) and r1["regime"] is None and r1["n"] == 2
    assert isinstance(ctx.values["n"], np.ndarray) and ctx.values["n"].dtype == np.int64
    assert ctx.values["regime"] == ["calm", None, "storm"]
    with pytest.raises(IndexError):
        ctx.row_dict(3)


def test_context_available_at_delays_visibility():
    # Day-2 figure is published late (day 5), after the day-3 figure (day 3 noon).
    ctx = ContextFrame(
        pl.DataFrame(
            {
                "timestamp": [datetime(2024, 1, 1), datetime(2024, 1, 2), datetime(2024, 1, 3)],
                "published": [datetime(2024, 1, 1), datetime(2024, 1, 5), datetime(2024, 1, 3, 12)],
                "gdp": [1.0, 2.0, 3.0],
            }
        ),
        available_at_column="published",
    )
    assert ctx.columns == ("gdp",)
    h = 3600 * 10**9
    steps = np.array(
        [day_ns(2024, 1, 2), day_ns(2024, 1, 3), day_ns(2024, 1, 3) + 12 * h, day_ns(2024, 1, 5)]
    )
    # the day-2 row is invisible until day 5; the day-3 row (newest) wins once visible
    np.testing.assert_array_equal(ctx.asof_indices(steps), [0, 0, 2, 2])
    assert ctx.asof_indices(steps.astype("datetime64[ns]")).tolist() == [0, 0, 2, 2]


def test_context_tz_from_strings():
    ctx = ContextFrame({"timestamp": ["2024-01-01T00:00:00+01:00"], "x": [1.0]})
    assert ctx.tz == "UTC" and ctx.ts[0] == day_ns(2024, 1, 1) - 3600 * 10**9


# ----------------------------------------------------------------- property
@st.composite
def random_panels(draw):
    n_assets = draw(st.integers(1, 5))
    n_times = draw(st.integers(1, 8))
    present = draw(
        st.lists(st.booleans(), min_size=n_assets * n_times, max_size=n_assets * n_times).filter(
            any
        )
    )
    keys = [(t, a) for t in range(n_times) for a in range(n_assets) if present[t * n_assets + a]]
    n = len(keys)
    perm = draw(st.permutations(range(n)))
    floats = st.floats(1.0, 1e6, allow_nan=False, allow_infinity=False)
    lows = draw(st.lists(floats, min_size=n, max_size=n))
    spans = draw(st.lists(st.floats(0.0, 100.0), min_size=n, max_size=n))
    fracs = draw(st.lists(st.tuples(st.floats(0, 1), st.floats(0, 1)), min_size=n, max_size=n))
    sig = draw(st.lists(st.one_of(st.none(), st.floats(-1e9, 1e9)), min_size=n, max_size=n))
    names = draw(
        st.lists(
            st.text("ABCXYZ", min_size=1, max_size=3),
            min_size=n_assets,
            max_size=n_assets,
            unique=True,
        )
    )
    low = np.array(lows)
    high = low + np.array(spans)
    f = np.array(fracs).reshape(n, 2)
    open_ = np.clip(low + f[:, 0] * (high - low), low, high)
    close = np.clip(low + f[:, 1] * (high - low), low, high)
    t0 = np.datetime64("2024-01-01T00:00:00", "ns")
    step = np.timedelta64(draw(st.integers(1, 10**12)), "ns")
    rows = [keys[i] for i in perm]
    idx = np.array(perm)
    return pl.DataFrame(
        {
            "timestamp": np.array([t0 + t * step for t, _ in rows], dtype="datetime64[ns]"),
            "asset": [names[a] for _, a in rows],
            "open": open_[idx],
            "high": high[idx],
            "low": low[idx],
            "close": close[idx],
            "volume": np.abs(low[idx]) % 1000,
            "sig": pl.Series([sig[i] for i in perm], dtype=pl.Float64),
        }
    )


@settings(max_examples=examples(60), deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(random_panels())
def test_random_valid_panel_matches_lexsort_reference(df):
    p = PolarsDataFeed(df).panel
    names = sorted(set(df["asset"].to_list()))
    ids = np.array([names.index(a) for a in df["asset"].to_list()], dtype=np.int32)
    ts = df["timestamp"].to_physical().to_numpy()
    order = np.lexsort((ids, ts))
    assert p.asset_names == tuple(names)
    np.testing.assert_array_equal(p.source_row, order)
    np.testing.assert_array_equal(p.ts, ts[order])
    np.testing.assert_array_equal(p.asset, ids[order])
    for f in BAR_FIELDS:
        np.testing.assert_array_equal(getattr(p, f), df[f].to_numpy()[order])
    sig = df["sig"].fill_null(float("nan")).to_numpy()[order]
    np.testing.assert_array_equal(p.signals[:, 0], sig)


def test_feed_repr_and_hand_built_panel_layout_check():
    feed = PolarsDataFeed(make_frame())
    assert "PolarsDataFeed(rows=15, assets=3" in repr(feed)
    wrapped = DataFeed(feed.panel)
    assert wrapped.asset_names == feed.asset_names
    from dataclasses import replace

    with pytest.raises(DataError, match="asset"):
        DataFeed(replace(feed.panel, asset=feed.panel.asset.astype(np.int64)))


def test_pandas_input_with_tz_and_index():
    pd = pytest.importorskip("pandas")
    pdf = make_frame().to_pandas()
    pdf["timestamp"] = pdf["timestamp"].dt.tz_localize("Europe/London")
    ref = PolarsDataFeed(pl.from_pandas(pdf)).panel
    for data in (pdf, pdf.set_index("timestamp")):
        p = PolarsDataFeed(data).panel
        assert p.tz == "Europe/London"
        np.testing.assert_array_equal(p.ts, ref.ts)
        np.testing.assert_array_equal(p.close, ref.close)
    assert isinstance(pdf, pd.DataFrame)


# ------------------------------------------- the parameters the two feeds share
COMMON_PARAMETERS = (
    "timestamp_column", "asset_column", "signals", "available_at_column", "signal_delay",
    "embargo", "delay_columns",
)


def _parameter_entries(cls: type) -> dict[str, str]:
    """Name -> text (type line and description) of each entry of the "Parameters" section."""
    import inspect

    doc = inspect.cleandoc(cls.__doc__ or "")
    section = doc.split("Parameters\n----------\n", 1)[1].split("\n\n", 1)[0]
    entries: dict[str, str] = {}
    for block in re.split(r"\n(?=\S)", section):
        names, _, rest = block.partition(" : ")
        for name in names.split(", "):
            entries[name] = rest
    return entries


@pytest.mark.parametrize("cls", [PolarsDataFeed, ParquetDataFeed])
def test_feed_docstrings_document_every_parameter_and_leave_no_placeholder(cls):
    import inspect

    entries = _parameter_entries(cls)
    params = [p for p in inspect.signature(cls.__init__).parameters if p != "self"]
    assert sorted(entries) == sorted(params)
    assert set(COMMON_PARAMETERS) <= set(entries)
    assert re.search(r"\{\w+\}", cls.__doc__) is None, cls.__doc__


def test_the_feeds_share_one_text_for_their_common_parameters():
    polars, parquet = _parameter_entries(PolarsDataFeed), _parameter_entries(ParquetDataFeed)
    for name in COMMON_PARAMETERS:
        if name == "signals":  # the type and first sentence differ: a path is read lazily
            shared = polars[name].split("It holds one row per", 1)[1]
            assert parquet[name].split("It holds one row per", 1)[1] == shared
            assert "path of Parquet file(s)" in parquet[name]
            assert "path" not in polars[name].split("It holds", 1)[0]
        else:
            assert polars[name] == parquet[name], name
    assert "ISO-8601" in parquet["timestamp_column"]  # written out, not "as for ..."


def test_the_common_parameters_need_their_placeholder():
    from mlbacktest.data.feeds import _with_common_parameters

    class Feed:
        """A feed.

        Parameters
        ----------
        path : str
            Where.
        """

    with pytest.raises(ValueError, match=r"docstring of Feed has no \{common_parameters\}"):
        _with_common_parameters("frame", "A frame.")(Feed)
