"""Every kind of bad configuration is refused by BacktestConfig, before any run.

Knobs that end up in a compiled C type are refused outside the range of that
type; file loaders refuse keys given twice and name the file.
"""

from __future__ import annotations

import datetime as dt
import math
import warnings

import numpy as np
import polars as pl
import pytest
from helpers import Scripted, bars, run

from mlbacktest import (
    BacktestConfig,
    ConfigError,
    ParquetDataFeed,
    PolarsDataFeed,
    SignalSource,
    VolumeShareImpact,
)
from mlbacktest._time import parse_duration
from mlbacktest.compat.zipline import PerOrderCommission
from mlbacktest.data.synthetic import synthetic_bars
from mlbacktest.schedule import parse_every
from mlbacktest.config import INT32_MAX, MAX_LATENCY_NS, MAX_PERIODS_PER_YEAR, PositionRules

# ------------------------------------------------------------ compiled ranges
INT32_KNOBS = [("latency_bars", 0), ("history_window", 1), ("max_open_positions", 1)]


@pytest.mark.parametrize(("knob", "low"), INT32_KNOBS)
@pytest.mark.parametrize("excess", [1, 2**32, 2**63, 2**64 + 5])
def test_int32_knob_beyond_its_compiled_range(knob, low, excess):
    with pytest.raises(ConfigError, match=f"{knob} must be a whole number in \\[{low}, "
                       f"{INT32_MAX}\\]") as info:
        BacktestConfig(**{knob: INT32_MAX + excess})
    assert str(INT32_MAX + excess) in str(info.value)


@pytest.mark.parametrize(("knob", "low"), INT32_KNOBS)
def test_int32_knob_below_its_range(knob, low):
    with pytest.raises(ConfigError, match=knob):
        BacktestConfig(**{knob: low - 1})
    with pytest.raises(ConfigError, match=knob):
        BacktestConfig(**{knob: -(2**40)})


@pytest.mark.parametrize(("knob", "low"), INT32_KNOBS)
def test_int32_knob_at_its_bounds_is_accepted(knob, low):
    assert getattr(BacktestConfig(**{knob: INT32_MAX}), knob) == INT32_MAX
    assert getattr(BacktestConfig(**{knob: low}), knob) == low


def test_position_rule_max_bars_beyond_int32():
    with pytest.raises(ConfigError, match="max_bars must be a whole number in"):
        PositionRules(max_bars=INT32_MAX + 1)
    with pytest.raises(ConfigError, match="max_bars"):
        BacktestConfig(position_rules={"max_bars": 2**40})
    assert PositionRules(max_bars=INT32_MAX).broker_args()[3] == INT32_MAX


@pytest.mark.parametrize(
    "latency",
    [2**63 - 1, 2**63 - 10, MAX_LATENCY_NS + 1, dt.timedelta(days=200 * 366), "60000d",
     "9999999999999999999ns"],
)
def test_latency_beyond_int64_headroom(latency):
    with pytest.raises(ConfigError, match=r"latency must be at most 2\*\*62 ns"):
        BacktestConfig(latency=latency)


def test_latency_at_the_bound_never_wraps_around():
    """An order placed in on_start with the largest latency never reaches the broker."""
    cfg = BacktestConfig(latency=f"{MAX_LATENCY_NS}ns")
    assert cfg.latency_ns == MAX_LATENCY_NS
    data = bars({"A": [(10, 11, 9, 10)] * 5})
    strategy = Scripted(start=lambda s: s.order("A", 1.0))
    result = run(data, strategy, cfg)
    assert result.fills.height == 0


def test_negative_latency_is_refused():
    with pytest.raises(ConfigError, match="latency must be >= 0"):
        BacktestConfig(latency=-1)


# ------------------------------------------------------------ durations
# One grammar (mlbacktest._time.parse_duration) for every duration knob: the
# config's latency, a feed's embargo / signal_delay / chunk, a signal source's
# latency and a fixed-grid schedule.
BAD_DURATIONS = [
    ("1mo", "is a calendar period, not a duration"),
    ("1y", "is a calendar period, not a duration"),
    ("1H", "units are lower case"),
    ("1h30", "is not a duration"),
    ("5 parsecs", "is not a duration"),
    ("1e3s", "is not a duration"),
    ("", "is not a duration"),
    (1.5, "got float 1.5"),
    (True, "got bool True"),
    (np.timedelta64(1, "M"), "fixed duration"),
    (np.timedelta64("NaT"), "is NaT"),
    (dt.timedelta(seconds=-1), "must not be negative"),
]


@pytest.mark.parametrize(("value", "message"), BAD_DURATIONS)
def test_bad_durations_are_refused_naming_the_knob(value, message):
    with pytest.raises(ConfigError, match=f"latency.*{message}"):
        BacktestConfig(latency=value)
    with pytest.raises(ConfigError, match=f"embargo.*{message}"):
        PolarsDataFeed(synthetic_bars(n_assets=1, n_bars=3), embargo=value)
    with pytest.raises(ConfigError, match=f"latency.*{message}"):
        SignalSource(_signal_frame(), latency=value)


@pytest.mark.parametrize("value", ["1h30m", "90min", "1.5h", dt.timedelta(minutes=90),
                                   np.timedelta64(90, "m"), "5400s", "1h 30m"])
def test_every_duration_knob_reads_the_same_grammar(value, tmp_path):
    ns = 90 * 60 * 10**9
    assert parse_duration(value, "x") == ns
    assert BacktestConfig(latency=value).latency_ns == ns
    feed = PolarsDataFeed(synthetic_bars(n_assets=1, n_bars=3), embargo=value)
    assert feed.signal_timing.embargo_ns == ns
    assert SignalSource(_signal_frame(), latency=value).latency_ns == ns
    assert parse_every(value) == ("duration", ns)
    if isinstance(value, str):
        ts = synthetic_bars(n_assets=1, n_bars=2, every=value)["timestamp"]
        assert ts[1] - ts[0] == dt.timedelta(minutes=90)
    assert BacktestConfig(latency="1w").latency_ns == 7 * 86_400 * 10**9  # 'w' is 7 days


def test_a_bare_int_latency_is_deprecated_read_as_ns_and_stored_with_its_unit():
    with pytest.warns(DeprecationWarning, match=r"latency=5 \(a bare int\) is read as 5 ns.*"
                      r"write latency='5ns', or latency_bars=5 for a number of bars"):
        cfg = BacktestConfig(latency=5)
    assert cfg.latency_ns == 5 and cfg.latency == "5ns"
    assert cfg == BacktestConfig(latency="5ns")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert BacktestConfig.from_dict(cfg.to_dict()) == cfg  # the round trip does not warn
        assert BacktestConfig(latency=0).latency_ns == 0       # zero needs no unit
    with pytest.warns(DeprecationWarning, match="latency='7ns'"):
        assert SignalSource(_signal_frame(), latency=7).latency_ns == 7


@pytest.mark.parametrize("knob", ["embargo", "chunk", "every"])
def test_a_bare_int_is_refused_where_a_duration_is_expected(knob, tmp_path):
    with pytest.raises(ValueError, match=f"{knob}=5 is a bare number, and {knob} is a duration"):
        if knob == "embargo":
            PolarsDataFeed(synthetic_bars(n_assets=1, n_bars=3), embargo=5)
        elif knob == "chunk":
            path = tmp_path / "bars.parquet"
            synthetic_bars(n_assets=1, n_bars=3).write_parquet(path)
            ParquetDataFeed(path, chunk=5)
        else:
            parse_every(5)


def test_a_bare_int_signal_delay_counts_bars():
    feed = PolarsDataFeed(synthetic_bars(n_assets=1, n_bars=3), signal_delay=2)
    assert (feed.signal_timing.delay_bars, feed.signal_timing.delay_ns) == (2, 0)


def _signal_frame():
    return pl.DataFrame({"timestamp": [dt.datetime(2024, 1, 1)], "asset": ["A000"],
                         "pred": [1.0]})


# ------------------------------------------------------------ floats
@pytest.mark.parametrize(
    "value", [math.inf, -math.inf, math.nan, 0, -1.0, MAX_PERIODS_PER_YEAR * 2, 1e300, True]
)
def test_periods_per_year_non_finite_or_implausible(value):
    with pytest.raises(ConfigError, match="periods_per_year must be a number in"):
        BacktestConfig(periods_per_year=value)


def test_periods_per_year_plausible_values_are_accepted():
    for value in (1, 12, 252, 252 * 390, 365 * 86_400, MAX_PERIODS_PER_YEAR):
        assert BacktestConfig(periods_per_year=value).periods_per_year == value


@pytest.mark.parametrize("value", [math.inf, -math.inf, math.nan])
@pytest.mark.parametrize("knob", ["commission", "slippage_bps"])
def test_cost_numbers_must_be_finite(knob, value):
    with pytest.raises(ConfigError, match="finite"):
        BacktestConfig(**{knob: value})


@pytest.mark.parametrize("value", [math.inf, math.nan])
def test_cost_tables_must_be_finite(value):
    with pytest.raises(ConfigError, match="finite"):
        BacktestConfig.from_dict({"commission": {"model": "per_share", "per_share": value}})


# ------------------------------------------------------------ costs in the wrong unit
@pytest.mark.parametrize(
    ("knobs", "message"),
    [
        ({"commission": 5}, r"commission=5 would charge 500 % of traded value: commission is a "
         r"fraction of traded value \(0.001 = 10 bps\).*write commission=0.0005 for 5 bps.*"
         r"PercentageCommission\(5\)"),
        ({"commission": 0.1000001}, "commission=0.1000001 would charge"),
        ({"slippage_bps": 5000}, r"slippage_bps=5000 would move prices by 50 %: slippage_bps "
         r"is in basis points.*FixedBpsSlippage\(5000\)"),
        ({"slippage_bps": 0.0005}, r"slippage_bps=0.0005 is 0.0005 basis points.*not a "
         r"fraction \(write slippage_bps=5 for a fraction of 0.0005\)"),
    ],
)
def test_bare_costs_in_the_wrong_unit_are_refused(knobs, message):
    with pytest.raises(ConfigError, match=message):
        BacktestConfig(**knobs)
    with pytest.raises(ConfigError, match=message):  # a config file is refused the same way
        BacktestConfig.from_dict(knobs)


def test_costs_at_the_bounds_and_explicit_models_are_accepted():
    from mlbacktest import FixedBpsSlippage, PercentageCommission
    from mlbacktest.config import MAX_BARE_COMMISSION, MAX_BARE_SLIPPAGE_BPS, MIN_BARE_SLIPPAGE_BPS

    assert (MAX_BARE_COMMISSION, MIN_BARE_SLIPPAGE_BPS, MAX_BARE_SLIPPAGE_BPS) == (0.1, 0.01, 1e3)
    assert BacktestConfig(commission=0.1).commission_model.rate == 0.1
    assert BacktestConfig(slippage_bps=1000).slippage_model.bps == 1000
    assert BacktestConfig(slippage_bps=0.01).slippage_model.bps == 0.01
    assert BacktestConfig(slippage_bps=0).slippage_model.bps == 0
    cfg = BacktestConfig(commission=PercentageCommission(5), slippage_bps=FixedBpsSlippage(5000))
    assert cfg.commission_model.rate == 5 and cfg.slippage_model.bps == 5000
    assert BacktestConfig.from_dict(cfg.to_dict()).commission_model.rate == 5  # tables round-trip
    table = {"commission": {"model": "percentage", "rate": 5}, "slippage_bps": {"bps": 0.001}}
    assert BacktestConfig.from_dict(table).slippage_model.bps == 0.001


# ------------------------------------------------------------ zipline's cost models
@pytest.mark.parametrize(("make", "message"), [
    (lambda: VolumeShareImpact(-0.1), r"price_impact must be a finite number >= 0, got -0.1"),
    (lambda: VolumeShareImpact(math.nan), r"price_impact must be a finite number >= 0, got nan"),
    (lambda: VolumeShareImpact(True), r"price_impact must be a finite number >= 0, got True"),
    (lambda: VolumeShareImpact(0.1, volume_limit=1.5),
     r"volume_limit must be a fraction in \(0, 1\] or None, got 1.5"),
    (lambda: VolumeShareImpact(0.1, volume_limit=0), r"volume_limit must be a fraction"),
    (lambda: PerOrderCommission(per_share=-0.01), r"per_share must be a finite number >= 0"),
    (lambda: PerOrderCommission(min_trade_cost=math.inf), r"min_trade_cost must be a finite"),
    (lambda: PerOrderCommission(per_trade="1"), r"per_trade must be a finite number >= 0, "
                                                r"got '1'"),
])
def test_zipline_cost_model_parameters(make, message):
    with pytest.raises(ConfigError, match=message):
        make()


# ------------------------------------------------------------ files
TWICE = "is given more than once"
DUPLICATES = [
    ("json", '{"latency": 1, "initial_cash": 5e4, "latency": 2}', f"'latency' {TWICE}"),
    ("json", '{"commission": {"model": "per_share", "per_share": 0.1, "per_share": 0.2}}',
     f"'per_share' {TWICE}"),
    ("yaml", "latency: 1\ninitial_cash: 50000\nlatency: 2\n",
     f"'latency' {TWICE} .again at line 3"),
    ("yml", "backtest:\n  commission:\n    model: per_share\n    per_share: 1\n"
     "    per_share: 2\n", f"'per_share' {TWICE} .again at line 5"),
]


@pytest.mark.parametrize(("ext", "text", "key"), DUPLICATES)
def test_duplicate_keys_in_a_config_file(tmp_path, ext, text, key):
    path = tmp_path / f"config.{ext}"
    path.write_text(text)
    with pytest.raises(ConfigError, match=f"config.{ext}: key {key}"):
        BacktestConfig.from_file(path)


@pytest.mark.parametrize(
    "text", ["latency = 1\ninitial_cash = 50000\nlatency = 2\n",
             "[backtest]\nlatency = 1\n[backtest]\nlatency = 2\n"]
)
def test_duplicate_keys_in_a_toml_file(tmp_path, text):
    """tomllib refuses a repeated key or table itself; the error names the file and line."""
    path = tmp_path / "config.toml"
    path.write_text(text)
    with pytest.raises(ConfigError, match="config.toml: a key is given more than once "
                       r"\(again at line 3: '(latency = 2|\[backtest\])'\)"):
        BacktestConfig.from_file(path)


def test_config_files_without_duplicates_still_load(tmp_path):
    for ext, text in [("json", '{"latency": "1s", "commission": {"model": "per_share", '
                       '"per_share": 0.01}}'),
                      ("yaml", "latency: 1s\ncommission:\n  model: per_share\n  per_share: 0.01\n"),
                      ("toml", 'latency = "1s"\n[commission]\nmodel = "per_share"\n'
                       "per_share = 0.01\n")]:
        path = tmp_path / f"config.{ext}"
        path.write_text(text)
        cfg = BacktestConfig.from_file(path)
        assert cfg.latency_ns == 1_000_000_000
