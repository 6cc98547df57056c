"""Every kind of bad input is rejected with a DataError that points at the row.

Each test builds a valid frame, breaks it in one way and checks that the
message names the column and the first offending row: its 0-based input row,
its asset and its timestamp as printed.
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import numpy as np
import polars as pl
import pytest

from mlbacktest.data.context import ContextFrame
from mlbacktest.data.feeds import ParquetDataFeed, PolarsDataFeed
from mlbacktest.data.validate import check_same_timezone
from mlbacktest.errors import DataError

ASSETS = ["AAA", "BBB", "CCC"]
DAYS = [datetime(2024, 1, 2) + timedelta(days=d) for d in range(4)]
# Input row r is day r // 3 and asset r % 3; row 7 is BBB on 2024-01-04.
BAD_ROW = 7
BAD_ASSET = "BBB"
BAD_TS = "2024-01-04 00:00:00"


def base_columns() -> dict[str, list]:
    """A valid frame (12 rows) as a dict of Python lists."""
    n = len(DAYS) * len(ASSETS)
    close = [100.0 + i for i in range(n)]
    return {
        "timestamp": [d for d in DAYS for _ in ASSETS],
        "asset": ASSETS * len(DAYS),
        "open": close[:],
        "high": [c + 1.0 for c in close],
        "low": [c - 1.0 for c in close],
        "close": close,
        "volume": [1000.0] * n,
        "signal": [0.5] * n,
    }


def with_value(column: str, value, row: int = BAD_ROW, cols: dict | None = None) -> pl.DataFrame:
    cols = base_columns() if cols is None else cols
    cols[column][row] = value
    return pl.DataFrame(cols, strict=False)


def raises_data_error(data, **kwargs) -> str:
    with pytest.raises(DataError) as info:
        PolarsDataFeed(data, **kwargs)
    assert isinstance(info.value, ValueError)
    return str(info.value)


def assert_points_at(
    msg: str, row: int = BAD_ROW, asset: str = BAD_ASSET, ts: str = BAD_TS
) -> None:
    assert f"row {row} " in msg, msg
    assert repr(asset) in msg, msg
    assert ts in msg, msg


def test_base_frame_is_valid():
    feed = PolarsDataFeed(pl.DataFrame(base_columns()))
    assert len(feed) == 12


# --------------------------------------------------------------------- columns
def test_missing_required_column():
    cols = base_columns()
    del cols["low"]
    msg = raises_data_error(pl.DataFrame(cols))
    assert "'low'" in msg and "missing" in msg
    assert "available columns" in msg and "'high'" in msg


def test_missing_signal_column():
    msg = raises_data_error(pl.DataFrame(base_columns()), signal_columns=["signal", "alpha"])
    assert "'alpha'" in msg and "not found" in msg


def test_missing_timestamp_column_with_custom_name():
    msg = raises_data_error(pl.DataFrame(base_columns()), timestamp_column="time")
    assert "'time'" in msg


def test_non_numeric_price_column():
    cols = base_columns()
    cols["close"] = [str(v) for v in cols["close"]]
    msg = raises_data_error(pl.DataFrame(cols))
    assert "'close'" in msg and "numeric" in msg


def test_non_numeric_extra_column_needs_explicit_signals():
    cols = base_columns()
    cols["sector"] = ["tech"] * 12
    msg = raises_data_error(pl.DataFrame(cols))
    assert "'sector'" in msg and "signal_columns" in msg
    assert PolarsDataFeed(pl.DataFrame(cols), ["signal"]).signal_names == ("signal",)


def test_non_numeric_signal_column():
    cols = base_columns()
    cols["label"] = ["up"] * 12
    msg = raises_data_error(pl.DataFrame(cols), signal_columns=["label"])
    assert "'label'" in msg


# ------------------------------------------------------------------ keys
def test_null_timestamp():
    msg = raises_data_error(with_value("timestamp", None))
    assert "'timestamp'" in msg and "null" in msg
    assert f"row {BAD_ROW} " in msg and repr(BAD_ASSET) in msg


def test_null_asset():
    msg = raises_data_error(with_value("asset", None))
    assert "'asset'" in msg and "null" in msg
    assert f"row {BAD_ROW} " in msg and BAD_TS in msg


def test_duplicate_timestamp_asset_names_both_rows():
    cols = base_columns()
    cols["asset"][BAD_ROW + 1] = BAD_ASSET  # row 8 repeats row 7
    msg = raises_data_error(pl.DataFrame(cols))
    assert "duplicate" in msg
    assert "row 8 " in msg and "row 7" in msg
    assert repr(BAD_ASSET) in msg and BAD_TS in msg
    assert "in 1 row" in msg


def test_unsupported_timestamp_dtype():
    cols = base_columns()
    cols["timestamp"] = list(range(12))
    msg = raises_data_error(pl.DataFrame(cols))
    assert "'timestamp'" in msg and "Int64" in msg


def test_timestamp_string_not_iso():
    cols = base_columns()
    cols["timestamp"] = [d.isoformat() for d in cols["timestamp"]]
    cols["timestamp"][BAD_ROW] = "01/04/2024"
    msg = raises_data_error(pl.DataFrame(cols))
    assert "ISO-8601" in msg
    assert_points_at(msg, ts="01/04/2024")


def test_timestamp_string_invalid_date():
    cols = base_columns()
    cols["timestamp"] = [d.isoformat() for d in cols["timestamp"]]
    cols["timestamp"][BAD_ROW] = "2024-02-30T00:00:00"
    msg = raises_data_error(pl.DataFrame(cols))
    assert "not valid dates" in msg
    assert_points_at(msg, ts="2024-02-30T00:00:00")


def test_unsupported_asset_dtype():
    cols = base_columns()
    cols["asset"] = [float(i % 3) for i in range(12)]
    msg = raises_data_error(pl.DataFrame(cols))
    assert "'asset'" in msg and "Float64" in msg


# ------------------------------------------------------------------ prices
PRICE_BAD_VALUES = [
    ("nan", float("nan"), "NaN or infinite"),
    ("inf", float("inf"), "NaN or infinite"),
    ("-inf", float("-inf"), "NaN or infinite"),
    ("null", None, "null"),
    ("zero", 0.0, "zero or negative"),
    ("negative", -5.0, "zero or negative"),
]


@pytest.mark.parametrize("column", ["open", "high", "low", "close"])
@pytest.mark.parametrize(
    ("kind", "value", "phrase"), PRICE_BAD_VALUES, ids=[k for k, _, _ in PRICE_BAD_VALUES]
)
def test_bad_price(column, kind, value, phrase):
    msg = raises_data_error(with_value(column, value))
    assert f"column {column!r}" in msg and phrase in msg
    assert_points_at(msg)


def test_bad_price_counts_rows_and_reports_first():
    cols = base_columns()
    for r in (BAD_ROW, 10, 11):
        cols["close"][r] = float("nan")
    msg = raises_data_error(pl.DataFrame(cols))
    assert "in 3 rows" in msg
    assert_points_at(msg)


def test_integer_price_zero():
    cols = base_columns()
    cols["open"] = [100] * 12
    cols["high"] = [101] * 12
    cols["low"] = [99] * 12
    cols["close"] = [100] * 12
    cols["open"][BAD_ROW] = 0
    msg = raises_data_error(pl.DataFrame(cols))
    assert "column 'open'" in msg
    assert_points_at(msg)


def test_high_below_low():
    cols = base_columns()
    cols["low"][BAD_ROW] = cols["high"][BAD_ROW] + 0.5
    msg = raises_data_error(pl.DataFrame(cols))
    assert "column 'low' is greater than 'high' in 1 row" in msg
    assert_points_at(msg)
    assert "low=108.5, high=108.0" in msg


@pytest.mark.parametrize("column", ["open", "close"])
@pytest.mark.parametrize("side", ["above_high", "below_low"])
def test_open_close_outside_range(column, side):
    cols = base_columns()
    cols[column][BAD_ROW] = (
        cols["high"][BAD_ROW] + 1 if side == "above_high" else cols["low"][BAD_ROW] - 1
    )
    msg = raises_data_error(pl.DataFrame(cols))
    assert f"column {column!r} is outside [low, high]" in msg
    assert_points_at(msg)


# ------------------------------------------------------------------ volume
@pytest.mark.parametrize(
    ("kind", "value", "phrase"),
    [
        ("negative", -1.0, "negative"),
        ("nan", float("nan"), "NaN or infinite"),
        ("inf", float("inf"), "NaN or infinite"),
        ("null", None, "null"),
    ],
)
def test_bad_volume(kind, value, phrase):
    msg = raises_data_error(with_value("volume", value))
    assert "column 'volume'" in msg and phrase in msg
    assert_points_at(msg)


# ------------------------------------------------------------------ time zones
def test_iso_strings_mixing_offset_and_naive():
    cols = base_columns()
    cols["timestamp"] = [d.isoformat() + "Z" for d in cols["timestamp"]]
    cols["timestamp"][BAD_ROW] = "2024-01-04T00:00:00"
    msg = raises_data_error(pl.DataFrame(cols))
    assert "mixes time zones" in msg
    assert_points_at(msg, ts="2024-01-04T00:00:00")


def test_python_datetimes_naive_mixed_with_aware():
    cols = base_columns()
    cols["timestamp"] = [d.replace(tzinfo=timezone.utc) for d in cols["timestamp"]]
    cols["timestamp"][BAD_ROW] = DAYS[2]  # naive
    msg = raises_data_error(cols)
    assert "mixes time zones" in msg and "naive" in msg
    assert_points_at(msg)


def test_python_datetimes_with_different_zones():
    ny, tokyo = ZoneInfo("America/New_York"), ZoneInfo("Asia/Tokyo")
    cols = base_columns()
    cols["timestamp"] = [d.replace(tzinfo=ny) for d in cols["timestamp"]]
    cols["timestamp"][BAD_ROW] = DAYS[2].replace(tzinfo=tokyo)
    cols["timestamp"][10] = DAYS[3].replace(tzinfo=tokyo)
    msg = raises_data_error(cols)
    assert "'America/New_York'" in msg and "'Asia/Tokyo'" in msg
    assert "2 rows" in msg
    assert_points_at(msg, ts="2024-01-04 00:00:00+09:00")


def test_python_datetimes_in_object_array():
    cols = base_columns()
    ts = np.array([d.replace(tzinfo=timezone.utc) for d in cols["timestamp"]], dtype=object)
    ts[BAD_ROW] = DAYS[2].replace(tzinfo=timezone(timedelta(hours=2)))
    cols["timestamp"] = ts
    msg = raises_data_error(cols)
    assert "mixes time zones" in msg
    assert_points_at(msg, ts="2024-01-04 00:00:00+02:00")


def test_check_same_timezone_names_both():
    with pytest.raises(DataError) as info:
        check_same_timezone(["UTC", "UTC", None], ["prices", "signals", "context"])
    msg = str(info.value)
    assert isinstance(info.value, ValueError)
    assert "'prices'" in msg and "'context'" in msg and "'UTC'" in msg and "naive" in msg


def test_check_same_timezone_between_feed_and_context():
    feed = PolarsDataFeed(pl.DataFrame(base_columns()))
    ctx = ContextFrame({"timestamp": ["2024-01-02T00:00:00Z"], "vix": [13.0]})
    with pytest.raises(DataError, match="'feed'.*'context'"):
        check_same_timezone([feed, ctx], ["feed", "context"])
    assert check_same_timezone([feed, None], ["feed", "other"]) is None


# ------------------------------------------------------------------ context
def test_context_missing_timestamp_column():
    with pytest.raises(DataError, match="'timestamp'.*available columns"):
        ContextFrame({"time": [DAYS[0]], "vix": [1.0]})


def test_context_duplicate_timestamps_names_both_rows():
    with pytest.raises(DataError) as info:
        ContextFrame(
            {"timestamp": [DAYS[1], DAYS[0], DAYS[2], DAYS[0]], "vix": [1.0, 2.0, 3.0, 4.0]}
        )
    msg = str(info.value)
    assert "duplicate" in msg and "row 3 " in msg and "row 1" in msg
    assert "2024-01-02 00:00:00" in msg


def test_context_null_timestamp():
    with pytest.raises(DataError, match="row 1 .*null"):
        ContextFrame({"timestamp": [DAYS[0], None], "vix": [1.0, 2.0]})


def test_context_available_before_timestamp():
    with pytest.raises(DataError) as info:
        ContextFrame(
            {
                "timestamp": DAYS[:3],
                "published": [DAYS[0], DAYS[1] - timedelta(hours=1), DAYS[2]],
                "vix": [1.0, 2.0, 3.0],
            },
            available_at_column="published",
        )
    msg = str(info.value)
    assert "'published' is earlier than 'timestamp'" in msg
    assert "row 1 " in msg and "2024-01-03 00:00:00" in msg and "2024-01-02 23:00:00" in msg


# ------------------------------------------------------------------ parquet
def test_parquet_missing_file(tmp_path):
    path = tmp_path / "nope.parquet"
    with pytest.raises(FileNotFoundError, match="nope.parquet"):
        ParquetDataFeed(path)
    with pytest.raises(FileNotFoundError, match=r"\*\.parquet"):
        ParquetDataFeed(tmp_path / "*.parquet")


def test_parquet_bad_row_is_reported_with_scan_row(tmp_path):
    cols = base_columns()
    cols["high"][BAD_ROW] = 50.0
    pl.DataFrame(cols).write_parquet(tmp_path / "bars.parquet")
    with pytest.raises(DataError) as info:
        ParquetDataFeed(tmp_path / "bars.parquet", assets=["BBB"])
    assert_points_at(str(info.value))


def test_parquet_aware_bound_on_naive_data(tmp_path):
    pl.DataFrame(base_columns()).write_parquet(tmp_path / "bars.parquet")
    with pytest.raises(DataError, match="start"):
        ParquetDataFeed(tmp_path / "bars.parquet", start=datetime(2024, 1, 3, tzinfo=timezone.utc))


def test_parquet_filters_leave_no_rows(tmp_path):
    pl.DataFrame(base_columns()).write_parquet(tmp_path / "bars.parquet")
    with pytest.raises(DataError, match="no rows"):
        ParquetDataFeed(tmp_path / "bars.parquet", start="2030-01-01")


def test_pandas_object_column_mixing_time_zones():
    pd = pytest.importorskip("pandas")
    cols = base_columns()
    stamps = [pd.Timestamp(d, tz="UTC") for d in cols["timestamp"]]
    stamps[BAD_ROW] = pd.Timestamp(DAYS[2])  # naive
    cols["timestamp"] = pd.Series(stamps, dtype=object)
    msg = raises_data_error(pd.DataFrame(cols))
    assert "mixes time zones" in msg and "naive" in msg
    assert_points_at(msg)


# ------------------------------------------------- ISO-looking but invalid timestamps
@pytest.mark.parametrize(
    "text", ["2020-13-45", "2020-02-30T25:00", "2024-01-04T10:61", "2024-01-04T10:00:00+25:00"]
)
def test_timestamp_string_iso_looking_but_invalid(text):
    cols = base_columns()
    cols["timestamp"] = [d.isoformat() for d in cols["timestamp"]]
    if text.endswith(":00") and "+" in text:
        cols["timestamp"] = [d.isoformat() + "+00:00" for d in DAYS for _ in ASSETS]
    cols["timestamp"][BAD_ROW] = text
    msg = raises_data_error(pl.DataFrame(cols))
    assert "not valid dates" in msg
    assert_points_at(msg, ts=text)


@pytest.mark.parametrize("text", ["2020-13-45", "2020-02-30T25:00"])
def test_timestamp_strings_all_invalid(text):
    """A column where no value is a valid date is refused, not left to polars' format guess."""
    cols = base_columns()
    cols["timestamp"] = [text] * 12
    msg = raises_data_error(pl.DataFrame(cols))
    assert "not valid dates in 12 rows; first at row 0" in msg and repr(text) in msg


def test_timestamp_strings_of_several_iso_layouts_are_read_alike():
    cols = base_columns()
    layouts = ["{d}", "{d}T00:00", "{d} 00:00:00", "{d}T00:00:00.000"]
    cols["timestamp"] = [
        layouts[i % 4].format(d=d.date().isoformat()) for i, d in enumerate(cols["timestamp"])
    ]
    feed = PolarsDataFeed(pl.DataFrame(cols))
    assert feed.calendar().tolist() == [
        int((d - datetime(1970, 1, 1)).total_seconds()) * 10**9 for d in DAYS
    ]


@pytest.mark.parametrize("bound", ["start", "end"])
@pytest.mark.parametrize("text", ["2020-13-45", "2020-02-30T25:00"])
def test_parquet_bound_iso_looking_but_invalid(tmp_path, bound, text):
    pl.DataFrame(base_columns()).write_parquet(tmp_path / "bars.parquet")
    with pytest.raises(DataError, match=f"{bound}='{text}' is not a valid date and time"):
        ParquetDataFeed(tmp_path / "bars.parquet", **{bound: text})


def test_bound_iso_looking_but_invalid():
    from mlbacktest.data.validate import bound_to_ns

    with pytest.raises(DataError, match="end='2024-02-30' is not a valid date"):
        bound_to_ns("2024-02-30", None, "end")


# ------------------------------------------------------- signal column collisions
@pytest.mark.parametrize("column", ["open", "high", "low", "close", "volume"])
def test_signal_column_that_is_a_bar_field(column):
    msg = raises_data_error(pl.DataFrame(base_columns()), signal_columns=[column])
    assert f"column {column!r} is a bar field" in msg
    assert "plan" not in msg.lower()


def test_signal_column_that_is_a_bar_field_given_as_a_string():
    msg = raises_data_error(pl.DataFrame(base_columns()), signal_columns="close")
    assert "column 'close' is a bar field" in msg


def test_signal_column_bar_field_with_a_signal_frame():
    sig = pl.DataFrame({"timestamp": DAYS[:1], "asset": ["AAA"], "pred": [0.1]})
    msg = raises_data_error(
        pl.DataFrame(base_columns()), signals=sig, signal_columns=["pred", "close"]
    )
    assert "column 'close' is a bar field" in msg


@pytest.mark.parametrize("column", ["timestamp", "asset"])
def test_signal_column_that_is_a_key(column):
    msg = raises_data_error(pl.DataFrame(base_columns()), signal_columns=["signal", column])
    assert f"column {column!r} is the timestamp or asset column" in msg


def test_signal_column_requested_twice():
    msg = raises_data_error(pl.DataFrame(base_columns()), signal_columns=["signal", "signal"])
    assert "signal column 'signal' is requested more than once" in msg


def test_signal_column_missing_lists_available_columns():
    msg = raises_data_error(pl.DataFrame(base_columns()), signal_columns=["pred"])
    assert "'pred' not found" in msg and "'signal'" in msg and "'close'" in msg


def test_parquet_signal_column_that_is_a_bar_field(tmp_path):
    pl.DataFrame(base_columns()).write_parquet(tmp_path / "bars.parquet")
    with pytest.raises(DataError, match="column 'close' is a bar field"):
        ParquetDataFeed(tmp_path / "bars.parquet", signal_columns=["close"])


# ------------------------------------------------------------ timestamp range
TS_TOO_LATE = datetime(2116, 2, 21)
TS_TOO_EARLY = datetime(1823, 11, 11)


@pytest.mark.parametrize("value", [TS_TOO_LATE, TS_TOO_EARLY], ids=["late", "early"])
def test_timestamp_outside_engine_range(value):
    msg = raises_data_error(with_value("timestamp", value))
    assert "outside the supported time range" in msg and "2116-02-20 23:53:38" in msg
    assert f"row {BAD_ROW} (asset 'BBB'" in msg


def test_timestamp_range_limits_are_exact():
    from mlbacktest.data.validate import TS_MAX, TS_MIN

    assert TS_MAX == 2**62 - 1 and TS_MIN == -TS_MAX
    # 2 * ts + phase (phase 0 or 1) stays inside int64 and above the INT64_MIN marker
    assert 2 * TS_MAX + 1 == np.iinfo(np.int64).max
    assert 2 * TS_MIN > np.iinfo(np.int64).min
    cols = base_columns()
    ns = pl.Series([TS_MAX - 1, TS_MAX, TS_MAX + 1, TS_MIN]).cast(pl.Datetime("ns"))
    frame = pl.DataFrame({k: v[:4] for k, v in cols.items()}).with_columns(timestamp=ns)
    msg = raises_data_error(frame)
    assert "in 1 row; first at row 2" in msg
    PolarsDataFeed(frame.slice(0, 2))  # the bound itself is accepted
    PolarsDataFeed(frame.slice(3, 1))


def test_timestamp_string_outside_engine_range():
    cols = base_columns()
    cols["timestamp"] = [d.isoformat() for d in cols["timestamp"]]
    cols["timestamp"][BAD_ROW] = "2200-01-01"
    msg = raises_data_error(pl.DataFrame(cols))
    assert "outside the supported time range" in msg
    assert_points_at(msg, ts="2200-01-01")


def test_date_timestamp_outside_engine_range():
    from datetime import date

    cols = base_columns()
    cols["timestamp"] = [d.date() for d in cols["timestamp"]]
    cols["timestamp"][BAD_ROW] = date(2200, 1, 1)
    msg = raises_data_error(pl.DataFrame(cols))
    assert "outside the supported time range" in msg and f"row {BAD_ROW}" in msg


def test_signal_frame_timestamp_outside_engine_range():
    sig = pl.DataFrame({"timestamp": [DAYS[0], TS_TOO_LATE], "asset": ["AAA", "AAA"],
                        "pred": [0.1, 0.2]})
    cols = base_columns()
    del cols["signal"]
    msg = raises_data_error(pl.DataFrame(cols), signals=sig)
    assert "outside the supported time range" in msg and "row 1" in msg


def test_available_at_outside_engine_range():
    sig = pl.DataFrame({"timestamp": [DAYS[0]], "asset": ["AAA"], "pred": [0.1],
                        "available_at": [TS_TOO_LATE]})
    cols = base_columns()
    del cols["signal"]
    msg = raises_data_error(pl.DataFrame(cols), signals=sig, available_at_column="available_at")
    assert "'available_at' is outside the supported time range" in msg


def test_context_timestamp_outside_engine_range():
    with pytest.raises(DataError, match="outside the supported time range"):
        ContextFrame(pl.DataFrame({"timestamp": [DAYS[0], TS_TOO_LATE], "vix": [1.0, 2.0]}))


def test_signal_source_arrival_outside_engine_range():
    from mlbacktest.data.source import SignalSource

    frame = pl.DataFrame({"timestamp": [DAYS[0], TS_TOO_LATE], "asset": ["A", "A"],
                          "p": [1.0, 2.0]})
    with pytest.raises(DataError, match="outside the supported time range"):
        SignalSource(frame)
    late = pl.DataFrame({"timestamp": [datetime(2116, 2, 20, 23)], "asset": ["A"], "p": [1.0]})
    SignalSource(late)
    with pytest.raises(DataError, match="arrival time .* row 0"):
        SignalSource(late, latency="2h")


@pytest.mark.parametrize("bound", ["start", "end"])
@pytest.mark.parametrize("value", ["2200-01-01", TS_TOO_EARLY], ids=["late", "early"])
def test_parquet_bound_outside_engine_range(tmp_path, bound, value):
    pl.DataFrame(base_columns()).write_parquet(tmp_path / "bars.parquet")
    with pytest.raises(DataError, match=f"{bound}=.* outside the supported time range"):
        ParquetDataFeed(tmp_path / "bars.parquet", **{bound: value})


def test_to_ns_outside_engine_range():
    from mlbacktest._time import to_ns

    assert to_ns(datetime(2116, 2, 20), None) > 0
    with pytest.raises(DataError, match="outside the supported time range"):
        to_ns(TS_TOO_LATE, "UTC")
    with pytest.raises(DataError, match="outside the supported time range"):
        to_ns(2**62, None)


# ------------------------------------------------------- price and volume magnitude
@pytest.mark.parametrize("column", ["open", "high", "low", "close"])
def test_price_above_bound(column):
    """1e308 passes the finite check but gives inf once multiplied by a position."""
    from mlbacktest.data.validate import MAX_PRICE

    msg = raises_data_error(with_value(column, 1e308))
    assert f"column {column!r} is above the largest accepted value 1e+15" in msg
    assert f"{column}=1e+308" in msg
    assert_points_at(msg)
    assert MAX_PRICE == 1e15


def test_price_at_bound_is_accepted():
    cols = base_columns()
    for c in ("open", "high", "low", "close"):
        cols[c][BAD_ROW] = 1e15
    PolarsDataFeed(pl.DataFrame(cols))


def test_volume_above_bound():
    msg = raises_data_error(with_value("volume", 1e300))
    assert "column 'volume' is above the largest accepted value 1e+18" in msg
    assert_points_at(msg)
    PolarsDataFeed(with_value("volume", 1e18))


# ------------------------------------------------- parquet files with different time zones
def _write_parts(directory, zones) -> list:
    """One file per zone (a day each, the same wall-clock times); returns their names."""
    names = []
    for i, tz in enumerate(zones):
        cols = {k: v[3 * i:3 * i + 3] for k, v in base_columns().items()}
        frame = pl.DataFrame(cols).with_columns(pl.col("timestamp").cast(pl.Datetime("us")))
        if tz is not None:
            frame = frame.with_columns(pl.col("timestamp").dt.replace_time_zone(tz))
        name = f"part-{i}.parquet"
        frame.write_parquet(directory / name)
        names.append(name)
    return names


@pytest.mark.parametrize(
    ("zones", "labels"),
    [
        (["UTC", None], ("'UTC'", "naive (no time zone)")),
        ([None, "UTC"], ("naive (no time zone)", "'UTC'")),
        (["UTC", "America/New_York"], ("'UTC'", "'America/New_York'")),
        (["America/New_York", "America/New_York", "Europe/Paris"],
         ("'America/New_York'", "'Europe/Paris'")),
    ],
    ids=["utc-naive", "naive-utc", "utc-new-york", "new-york-paris"],
)
@pytest.mark.parametrize("form", ["glob", "directory", "list"])
def test_parquet_files_with_different_time_zones(tmp_path, zones, labels, form):
    names = _write_parts(tmp_path, zones)
    source = {
        "glob": str(tmp_path / "*.parquet"),
        "directory": tmp_path,
        "list": [tmp_path / n for n in names],
    }[form]
    for chunk in (None, "1d"):
        with pytest.raises(DataError) as info:
            ParquetDataFeed(source, chunk=chunk)
        msg = str(info.value)
        assert "column 'timestamp' has different time zones" in msg
        assert f"{names[0]}' is {labels[0]}" in msg and f"{names[-1]}' is {labels[1]}" in msg


def test_parquet_files_with_one_time_zone_are_read(tmp_path):
    _write_parts(tmp_path, ["America/New_York"] * 3)
    assert ParquetDataFeed(tmp_path).tz == "America/New_York"


def test_parquet_signal_files_with_different_time_zones(tmp_path):
    bars = tmp_path / "bars"
    bars.mkdir()
    _write_parts(bars, ["UTC"] * 3)
    preds = tmp_path / "preds"
    preds.mkdir()
    for i, tz in enumerate(["UTC", None]):
        pl.DataFrame({"timestamp": [DAYS[i]], "asset": ["AAA"], "pred": [0.1]}).with_columns(
            pl.col("timestamp").cast(pl.Datetime("us", tz))
        ).write_parquet(preds / f"p{i}.parquet")
    with pytest.raises(DataError, match=r"signal frame: column 'timestamp' has different time "
                       r"zones .*p0.parquet' is 'UTC' but .*p1.parquet' is naive"):
        ParquetDataFeed(bars, signal_columns=[], signals=preds)


def test_parquet_file_that_is_not_parquet_is_named(tmp_path):
    _write_parts(tmp_path, ["UTC"])
    (tmp_path / "notes.parquet").write_text("not a parquet file")
    with pytest.raises(DataError, match="cannot read parquet file .*notes.parquet"):
        ParquetDataFeed(tmp_path)


# ------------------------------------------------- files read by suffix (one reader)
@pytest.mark.parametrize("name", ["bars.txt", "bars.xlsx", "bars", "bars.parquet.bak"])
def test_unknown_file_suffix_names_the_path_and_the_supported_ones(tmp_path, name):
    import mlbacktest
    from mlbacktest.data.feeds import open_feed
    from mlbacktest.data.files import scan_frame
    from mlbacktest.demo import TopBottomK

    path = tmp_path / name
    pl.DataFrame(base_columns()).write_csv(path)
    expected = (f"cannot tell the format of '{path}' from its name: supported suffixes are "
                ".parquet, .pq, .csv, .csv.gz, .tsv, .tsv.gz, .arrow, .ipc, .feather")
    for read in (scan_frame, open_feed, ContextFrame, PolarsDataFeed):
        with pytest.raises(DataError, match=expected.replace(".", r"\.").replace("(", r"\(")):
            read(str(path))
    with pytest.raises(DataError, match="cannot tell the format"):
        mlbacktest.run_backtest(str(path), TopBottomK())
    with pytest.raises(DataError, match="cannot tell the format"):  # a signal frame too
        PolarsDataFeed(pl.DataFrame(base_columns()).drop("signal"), signals=path)


def test_parquet_only_options_on_a_csv_path_are_refused(tmp_path):
    import mlbacktest
    from mlbacktest.demo import TopBottomK

    path = tmp_path / "bars.csv"
    pl.DataFrame(base_columns()).write_csv(path)
    with pytest.raises(DataError, match=r"start=, chunk=: these options need parquet data, "
                       r"but '.*bars.csv' is CSV"):
        mlbacktest.run_backtest(path, TopBottomK(), start="2024-01-03", chunk="1d")


def test_a_list_of_files_must_share_one_format(tmp_path):
    from mlbacktest.data.files import file_format

    assert file_format([tmp_path / "a.parquet", tmp_path / "b.PQ"]) == "parquet"
    with pytest.raises(DataError, match="mix formats .csv, parquet."):
        file_format([str(tmp_path / "a.parquet"), str(tmp_path / "b.csv")])


def test_a_missing_file_is_file_not_found(tmp_path):
    from mlbacktest.data.files import scan_frame

    with pytest.raises(FileNotFoundError, match="missing.csv"):
        scan_frame(tmp_path / "missing.csv")
    with pytest.raises(FileNotFoundError, match="no file matches the pattern"):
        scan_frame(str(tmp_path / "nothing" / "*.parquet"))


# ------------------------------------------------- misnamed columns: what to do about them
def test_misnamed_bar_field_suggests_the_rename():
    msg = raises_data_error(pl.DataFrame(base_columns()).rename({"close": "Close"}))
    assert msg.startswith("missing required column 'close'; available columns: [")
    assert msg.endswith("; did you mean 'Close'? rename it: df.rename({'Close': 'close'})")


def test_capitalised_bar_fields_get_one_rename_for_all():
    frame = pl.DataFrame(base_columns()).rename(
        {c: c.capitalize() for c in ("open", "high", "low", "close", "volume")})
    msg = raises_data_error(frame)
    assert msg.endswith("rename them: df.rename({'Open': 'open', 'High': 'high', 'Low': 'low', "
                        "'Close': 'close', 'Volume': 'volume'})")


@pytest.mark.parametrize(
    ("renames", "hints"),
    [
        ({"timestamp": "date"}, ["pass timestamp_column='date' (--timestamp-column date on the "
                                 "command line)"]),
        ({"timestamp": "Timestamp"}, ["pass timestamp_column='Timestamp'"]),
        ({"asset": "ticker"}, ["the assets look like they are in column 'ticker': pass "
                               "asset_column='ticker' (--asset-column ticker on the command "
                               "line)"]),
        ({"asset": "Symbol", "timestamp": "Date"}, ["pass timestamp_column='Date'",
                                                     "pass asset_column='Symbol'"]),
    ],
)
def test_misnamed_key_column_names_the_option(renames, hints):
    msg = raises_data_error(pl.DataFrame(base_columns()).rename(renames))
    assert "available columns: [" in msg
    for hint in hints:
        assert hint in msg


def test_context_without_its_timestamp_column_names_the_option():
    with pytest.raises(DataError, match="pass timestamp_column='Date'"):
        ContextFrame(pl.DataFrame({"Date": DAYS, "vix": [1.0] * 4}))


@pytest.mark.parametrize("ts", ["timestamp", "date"])
def test_a_wide_price_matrix_gets_the_long_format_hint(ts):
    wide = pl.DataFrame(base_columns()).pivot(on="asset", index="timestamp", values="close")
    msg = raises_data_error(wide.rename({"timestamp": ts}))
    assert "the data look wide (one column per asset: 'AAA', 'BBB', 'CCC'): data must be long, " \
           "one row per timestamp and asset" in msg
    recipe = (f"df.unpivot(index={ts!r}, variable_name='asset', value_name='close')"
              ".with_columns(open=pl.col('close'), high=pl.col('close'), low=pl.col('close'), "
              "volume=pl.lit(0.0))")
    assert recipe in msg
    assert ("pass timestamp_column='date'" in msg) == (ts == "date")
    # the recipe works: the long frame it gives is accepted
    long = eval(recipe, {"pl": pl, "df": wide.rename({"timestamp": ts})})
    assert len(PolarsDataFeed(long, timestamp_column=ts)) == 12


def test_a_long_frame_with_a_ticker_column_is_not_called_wide():
    frame = pl.DataFrame(base_columns()).select("timestamp", "asset", "close").rename(
        {"asset": "ticker"})
    msg = raises_data_error(frame)
    assert "wide" not in msg and "pass asset_column='ticker'" in msg


def test_misspelt_signal_column_suggests_the_close_one():
    msg = raises_data_error(pl.DataFrame(base_columns()), signal_columns=["Signal"])
    assert msg.endswith("; did you mean 'signal' for 'Signal'?")
