"""Cost models (mlbacktest._costs): every formula by hand, state, dispatch, validation."""

from __future__ import annotations

import datetime as dt
import math
import pickle

import numpy as np
import pytest
from conftest import examples
from helpers import Scripted, bars, day, fill_rows, run
from hypothesis import given, settings
from hypothesis import strategies as st

import mlbacktest
from mlbacktest import _costs
from mlbacktest.errors import ConfigError
from mlbacktest.models import (
    COMMISSION_MODELS,
    SLIPPAGE_MODELS,
    AlmgrenChrissImpact,
    ColumnSource,
    CommissionModel,
    FixedBpsSlippage,
    FixedCommission,
    HalfSpreadSlippage,
    LinearImpact,
    NoCommission,
    NoSlippage,
    PercentageCommission,
    PerShareCommission,
    SlippageModel,
    SquareRootImpact,
    TieredCommission,
    VolumeShareImpact,
    commission_from_config,
    model_from_config,
    model_to_config,
    slippage_from_config,
)

INF = math.inf
NS = 1_000_000_000


def ts_of(*args: int) -> int:
    """ns timestamp of a naive (wall-clock / UTC) datetime."""
    return (dt.datetime(*args) - dt.datetime(1970, 1, 1)) // dt.timedelta(microseconds=1) * 1000


def both(model, asset, q, p, ts=0):
    """Commission from Python and through the broker's C-level dispatch; they must agree."""
    a = model.compute(asset, q, p, ts)
    b = _costs._apply_commission(model, asset, q, p, ts)
    assert a == b
    return a


def price(model, q, raw, volume=1e6, asset=0, ts=0, row=-1):
    """Fill price from Python and through the C-level dispatch; they must agree (NaN too)."""
    a = model.fill_price(asset, q, raw, volume, ts, row)
    b = _costs._apply_slippage(model, asset, q, raw, volume, ts, row)
    assert a == b or (math.isnan(a) and math.isnan(b))
    return a


# ================================================================ exports
def test_public_names_are_classes_and_exported_at_top_level():
    for name in (
        "CommissionModel",
        "PercentageCommission",
        "PerShareCommission",
        "FixedCommission",
        "SlippageModel",
        "FixedBpsSlippage",
    ):
        cls = getattr(mlbacktest, name)
        assert isinstance(cls, type)
        assert getattr(mlbacktest.models, name) is cls
    assert issubclass(PerShareCommission, CommissionModel)
    assert issubclass(TieredCommission, CommissionModel)
    assert issubclass(AlmgrenChrissImpact, SlippageModel)
    assert NoCommission() == CommissionModel()
    assert NoSlippage() == SlippageModel()


# ================================================================ commissions
def test_linear_commission_by_hand():
    m = CommissionModel(rate=0.001, per_share=0.01, fixed=1.0)
    # 0.001 * 100 * 10 + 0.01 * 100 + 1 = 1 + 1 + 1
    assert both(m, 0, -100, 10.0) == pytest.approx(3.0)
    assert both(CommissionModel(0.001, 0.01, 1.0, 5.0), 0, 100, 10.0) == 5.0  # minimum
    assert both(CommissionModel(0.001, 0.01, 1.0, 0.0, 2.0), 0, 100, 10.0) == 2.0  # maximum
    assert both(CommissionModel(), 0, 100, 10.0) == 0.0


def test_percentage_commission():
    m = PercentageCommission(0.001)
    assert both(m, 3, 100, 50.0) == pytest.approx(5.0)
    assert both(m, 3, -100, 50.0) == pytest.approx(5.0)
    assert both(PercentageCommission(0.001, minimum=7.0), 0, 100, 50.0) == 7.0
    assert both(PercentageCommission(0.001, maximum=2.0), 0, 100, 50.0) == 2.0
    assert m.rate == 0.001


def test_per_share_commission_with_minimum_maximum_and_fraction_cap():
    ib = PerShareCommission(0.005, minimum=1.0, max_fraction=0.01)
    assert both(ib, 0, 100, 50.0) == 1.0  # 0.50 -> minimum 1.00
    assert both(ib, 0, 1000, 50.0) == pytest.approx(5.0)
    assert both(ib, 0, -1000, 0.3) == pytest.approx(3.0)  # 5.00 capped at 1% of 300
    assert both(ib, 0, 10, 5.0) == pytest.approx(0.5)  # the cap wins over the minimum
    capped = PerShareCommission(0.01, minimum=1.0, maximum=5.0)
    assert both(capped, 0, 1000, 10.0) == 5.0
    assert both(capped, 0, 50, 10.0) == 1.0


def test_fixed_commission():
    m = FixedCommission(2.5)
    assert both(m, 0, 1, 1.0) == 2.5
    assert both(m, 0, -1e6, 123.0) == 2.5
    assert m.amount == m.fixed == 2.5


@settings(max_examples=examples(300), deadline=None)
@given(
    rate=st.sampled_from([0.0, 0.0005, 0.001, 0.01]),
    per_share=st.sampled_from([0.0, 0.005, 0.013]),
    fixed=st.sampled_from([0.0, 1.0, 0.7]),
    minimum=st.sampled_from([0.0, 2.0]),
    maximum=st.sampled_from([INF, 25.0]),
    q=st.floats(-1e6, 1e6).filter(lambda x: abs(x) > 1e-6),
    p=st.floats(0.01, 1e4),
)
def test_linear_commission_is_bit_identical_to_the_original_formula(
    rate, per_share, fixed, minimum, maximum, q, p
):
    expected = min(max(rate * abs(q) * p + per_share * abs(q) + fixed, minimum), maximum)
    assert both(CommissionModel(rate, per_share, fixed, minimum, maximum), 0, q, p) == expected


# ---------------------------------------------------------------- months and tiers
@settings(max_examples=examples(500), deadline=None)
@given(st.integers(-(2**62), 2**62))
def test_month_index_matches_numpy(ts):
    months_since_1970 = int(np.datetime64(ts, "ns").astype("datetime64[M]").astype(np.int64))
    assert _costs._month_index(ts) == 1970 * 12 + months_since_1970


def test_month_index_edges():
    assert _costs._month_index(0) == 1970 * 12
    assert _costs._month_index(-1) == 1969 * 12 + 11
    assert _costs._month_index(ts_of(2024, 2, 29, 23, 59, 59)) == 2024 * 12 + 1
    assert _costs._month_index(ts_of(2024, 3, 1)) == 2024 * 12 + 2


def test_tiered_per_share_by_monthly_shares_resets_at_month_start():
    m = TieredCommission([(0, 0.01), (1000, 0.005), (5000, 0.002)])
    jan = ts_of(2024, 1, 15)
    assert both(m, 0, 600, 10.0, jan) == pytest.approx(6.0)
    assert both(m, 0, 600, 10.0, jan) == pytest.approx(6.0)  # compute does not change state
    _costs._record_fill(m, 0, 600, 10.0, 0.0, jan)
    assert m.month_volume(jan) == 600
    # 600 shares done: still the first tier (the whole fill is priced at the tier before it)
    assert both(m, 1, -600, 10.0, jan) == pytest.approx(6.0)
    _costs._record_fill(m, 1, -600, 10.0, 0.0, jan)  # volume counts |q| over all assets
    last_ns_of_jan = ts_of(2024, 2, 1) - 1
    assert m.month_volume(last_ns_of_jan) == 1200
    assert both(m, 0, 100, 10.0, last_ns_of_jan) == pytest.approx(0.5)  # tier 2: 0.005 * 100
    m.record_fill(0, 4000, 10.0, last_ns_of_jan)
    assert both(m, 0, 100, 10.0, last_ns_of_jan) == pytest.approx(0.2)  # 5200 >= 5000: tier 3
    # First instant of February: the month-to-date volume starts again from 0.
    feb = ts_of(2024, 2, 1)
    assert m.month_volume(feb) == 0.0
    assert both(m, 0, 100, 10.0, feb) == pytest.approx(1.0)
    m.record_fill(0, 100, 10.0, feb)
    assert m.month_volume(feb) == 100
    assert m.month_volume(last_ns_of_jan) == 0.0  # January's volume is gone
    m.reset(1)
    assert m.month_volume(feb) == 0.0


def test_tiered_rate_by_monthly_value_across_a_year_end():
    m = TieredCommission(
        [(0, 0.001), (100_000, 0.0005)],
        charge="rate",
        volume="value",
        fixed=0.25,
        minimum=1.0,
        max_fraction=0.004,
    )
    dec = ts_of(2023, 12, 31, 23)
    assert both(m, 0, 1000, 100.0, dec) == pytest.approx(100.25)  # 0.001 * 100_000 + 0.25
    m.record_fill(0, 1000, 100.0, dec)
    assert m.month_volume(dec) == pytest.approx(100_000.0)
    assert both(m, 0, 30, 100.0, dec) == pytest.approx(1.75)  # 0.0005 * 3000 + 0.25
    assert both(m, 0, 1, 100.0, dec) == pytest.approx(0.4)  # min 1.0, capped at 0.4% of 100
    jan = ts_of(2024, 1, 1)
    assert both(m, 0, 30, 100.0, jan) == pytest.approx(3.25)  # new month: first tier
    assert m.tiers == ((0.0, 0.001), (100_000.0, 0.0005))


# ================================================================ slippage
def test_fixed_bps_slippage_matches_the_original_formula():
    for m in (SlippageModel(10.0), FixedBpsSlippage(10.0)):
        assert price(m, 100, 100.0) == 100.0 * (1.0 + 10.0 / 1e4)
        assert price(m, -100, 100.0) == 100.0 * (1.0 - 10.0 / 1e4)
    assert price(SlippageModel(), 5, 42.0) == 42.0


@settings(max_examples=examples(200), deadline=None)
@given(
    bps=st.sampled_from([0.0, 2.0, 30.0, 7.5]),
    raw=st.floats(0.01, 1e5),
    q=st.sampled_from([1.0, -1.0, 1e5, -3.5]),
)
def test_bps_is_bit_identical(bps, raw, q):
    s = bps / 1e4
    expected = raw * (1 + s) if q > 0 else raw * (1 - s)
    assert price(SlippageModel(bps), q, raw) == expected


def quotes():
    return ColumnSource(
        {
            "bid": [99.8, np.nan, 100.4, 99.0],
            "ask": [100.2, 100.5, 100.0, 101.0],
            "vol": [0.04, np.nan, 0.01, 0.02],
        }
    )


def test_column_source():
    cols = quotes()
    assert cols.names == ("bid", "ask", "vol")
    assert cols.n_rows == 4 and len(cols) == 3 and "ask" in cols
    assert cols.column_id("ask") == 1 and cols.column_id("nope") == -1
    assert cols.value("ask", 0) == 100.2 and cols.value(1, 3) == 101.0
    assert cols.n_columns == 3 and math.isnan(cols.value(3, 0))
    assert math.isnan(cols.value("bid", 1))
    assert math.isnan(cols.value("bid", 4)) and math.isnan(cols.value("bid", -1))
    assert math.isnan(cols.value("nope", 0))
    assert not cols.array("bid").flags.writeable
    empty = ColumnSource()
    assert empty.n_rows == 0 and len(empty) == 0
    with pytest.raises(ConfigError, match="'ask' has 2 rows"):
        ColumnSource({"bid": [1.0], "ask": [1.0, 2.0]})
    with pytest.raises(ConfigError, match="1-D"):
        ColumnSource({"bid": np.zeros((2, 2))})


def test_half_spread_from_bid_ask_columns():
    m = HalfSpreadSlippage(fallback_bps=5.0)
    # Not bound yet: every fill uses the fallback half-spread, 5 bps of the price.
    assert price(m, 10, 100.0, row=0) == pytest.approx(100.05)
    _costs._reset(m, 1, quotes())
    assert price(m, 10, 100.0, row=0) == pytest.approx(100.2)  # + (100.2 - 99.8) / 2
    assert price(m, -10, 100.0, row=0) == pytest.approx(99.8)
    assert price(m, 10, 100.0, row=1) == pytest.approx(100.05)  # no bid: fallback
    assert price(m, -10, 100.0, row=2) == 100.0  # crossed quote: no spread
    assert price(m, 10, 100.0, row=-1) == pytest.approx(100.05)  # no bar row
    with_bps = HalfSpreadSlippage(bps=10.0)
    with_bps.reset(1, quotes())
    assert price(with_bps, 10, 100.0, row=3) == pytest.approx(100.0 * 1.001 + 1.0)
    with pytest.raises(ConfigError, match="'ask'"):
        HalfSpreadSlippage().reset(1, ColumnSource({"bid": [1.0]}))
    with pytest.raises(ConfigError, match="'bid'"):
        HalfSpreadSlippage().reset(1, None)


def test_linear_impact():
    m = LinearImpact(k=0.1)
    # 1000 of a 10_000 bar: participation 0.1, move 0.1 * 0.1 = 1 %
    assert price(m, 1000, 50.0, volume=10_000) == pytest.approx(50.5)
    assert price(m, -1000, 50.0, volume=10_000) == pytest.approx(49.5)
    assert price(LinearImpact(0.1, bps=20), 1000, 50.0, volume=10_000) == pytest.approx(50.6)
    assert math.isnan(price(m, 1000, 50.0, volume=0.0))  # no volume: no fill
    assert price(LinearImpact(0.0), 1000, 50.0, volume=0.0) == 50.0


def test_square_root_impact():
    m = SquareRootImpact(k=0.5, sigma=0.02)
    # sqrt(2500 / 10_000) = 0.5; move = 0.5 * 0.02 * 0.5 = 0.5 %
    assert price(m, 2500, 100.0, volume=10_000) == pytest.approx(100.5)
    assert price(m, -2500, 100.0, volume=10_000) == pytest.approx(99.5)
    assert price(SquareRootImpact(0.1), 2500, 100.0, volume=10_000) == pytest.approx(105.0)
    assert math.isnan(price(m, 1, 100.0, volume=0.0))
    col = SquareRootImpact(k=0.5, sigma=0.02, sigma_column="vol")
    col.reset(1, quotes())
    assert price(col, 2500, 100.0, volume=10_000, row=0) == pytest.approx(101.0)  # sigma 0.04
    assert price(col, 2500, 100.0, volume=10_000, row=1) == pytest.approx(100.5)  # NaN: 0.02
    with pytest.raises(ConfigError, match="'vol'"):
        SquareRootImpact(0.5, sigma_column="vol").reset(1, ColumnSource({"bid": [1.0]}))


def test_almgren_chriss_temporary_and_permanent_impact():
    m = AlmgrenChrissImpact(eta=0.1, gamma=0.05, beta=1.0)
    m.reset(2)
    t0 = ts_of(2024, 1, 2)
    # x = 1000 / 10_000 = 0.1; temporary = 0.1 * 0.1 = 1 %; no permanent offset yet
    assert price(m, 1000, 100.0, volume=10_000, ts=t0) == pytest.approx(101.0)
    assert price(m, 1000, 100.0, volume=10_000, ts=t0) == pytest.approx(101.0)  # pure
    _costs._record_fill(m, 0, 1000, 101.0, 10_000, t0)
    assert m.offset(0) == pytest.approx(0.005)  # + gamma * 0.1
    t1 = t0 + 86_400 * NS
    # offset 0.5 % plus temporary 1 %; the other asset is unaffected
    assert price(m, 1000, 100.0, volume=10_000, ts=t1) == pytest.approx(101.5)
    assert price(m, 1000, 100.0, volume=10_000, ts=t1, asset=1) == pytest.approx(101.0)
    m.record_fill(0, 1000, 101.5, 10_000, t1)
    assert m.offset(0) == pytest.approx(0.01)
    # A sell of 2000 (x = 0.2): 100 * (1 + 0.01 - 0.02) = 99; its permanent impact -0.01
    assert price(m, -2000, 100.0, volume=10_000, ts=t1) == pytest.approx(99.0)
    m.record_fill(0, -2000, 99.0, 10_000, t1)
    assert m.offset(0) == pytest.approx(0.0)
    assert math.isnan(price(m, 1, 100.0, volume=0.0))
    m.reset(2)
    assert m.offset(0) == 0.0


def test_almgren_chriss_beta_and_decay():
    m = AlmgrenChrissImpact(eta=0.1, gamma=0.05, beta=0.5, half_life=60.0)
    t0 = ts_of(2024, 1, 2, 10)
    x = 0.04
    assert price(m, 400, 100.0, volume=10_000, ts=t0) == pytest.approx(100 * (1 + 0.1 * x**0.5))
    m.record_fill(3, 400, 102.0, 10_000, t0)  # grows its state without reset()
    assert m.offset(3) == pytest.approx(0.002)
    assert m.offset(3, t0 + 60 * NS) == pytest.approx(0.001)  # one half-life later
    assert m.offset(3, t0 + 120 * NS) == pytest.approx(0.0005)
    later = t0 + 120 * NS
    # a small buy later: offset decayed to 0.05 %, temporary 0.1 * sqrt(0.0001) = 0.1 %
    assert price(m, 1, 100.0, volume=10_000, ts=later, asset=3) == pytest.approx(100.15)
    m.record_fill(3, -400, 100.0, 10_000, later)
    assert m.offset(3) == pytest.approx(0.0005 - 0.002)
    td = AlmgrenChrissImpact(0.1, 0.05, half_life=dt.timedelta(minutes=1))
    assert td.half_life == 60.0
    assert AlmgrenChrissImpact(0.1, 0.05, half_life=np.timedelta64(2, "m")).half_life == 120.0


# ================================================================ Python subclasses
class HalfPercentPlusAsset(CommissionModel):
    def compute(self, asset, quantity, price, ts):
        return 0.005 * abs(quantity) * price + asset


class PerSharePlusOne(PerShareCommission):
    def compute(self, asset, quantity, price, ts):
        return super().compute(asset, quantity, price, ts) + 1.0


class CountingCommission(CommissionModel):
    """Free for the first two fills of a run, then 1.0 a fill."""

    def __init__(self):
        super().__init__()
        self.fills = 0

    def compute(self, asset, quantity, price, ts):
        return 0.0 if self.fills < 2 else 1.0

    def record_fill(self, asset, quantity, price, ts):
        self.fills += 1

    def reset(self, n_assets):
        self.fills = 0


class MidQuote(SlippageModel):
    """Fills at the mid of the quote when there is one."""

    def fill_price(self, asset, quantity, raw_price, bar_volume, ts, row=-1):
        if self.columns is None or row < 0:
            return raw_price
        return 0.5 * (self.columns.value("bid", row) + self.columns.value("ask", row))


def test_python_subclass_compute_is_called_through_the_c_dispatch():
    m = HalfPercentPlusAsset()
    assert both(m, 2, 10, 100.0) == pytest.approx(7.0)
    assert both(PerSharePlusOne(0.01, minimum=1.0), 0, 10, 5.0) == pytest.approx(2.0)


def test_python_subclass_without_override_keeps_the_compiled_formula():
    class Plain(PerShareCommission):
        pass

    assert both(Plain(0.01, minimum=1.0), 0, 500, 5.0) == pytest.approx(5.0)


def test_python_subclass_state_hooks_are_called_through_the_c_dispatch():
    m = CountingCommission()
    assert _costs._apply_commission(m, 0, 1, 1.0, 0) == 0.0
    _costs._record_fill(m, 0, 1, 1.0, 0.0, 0)
    _costs._record_fill(m, 0, 1, 1.0, 0.0, 0)
    assert _costs._apply_commission(m, 0, 1, 1.0, 0) == 1.0
    _costs._reset(m, 1)
    assert m.fills == 0


def test_python_slippage_subclass_reads_columns():
    m = MidQuote()
    assert price(m, 1, 100.0, row=0) == 100.0
    _costs._reset(m, 1, quotes())
    assert m.columns is not None
    assert price(m, 1, 100.3, row=0) == pytest.approx(100.0)
    assert price(m, 1, 100.3, row=-1) == 100.3


def test_bad_values_from_a_python_model_are_reported():
    class Negative(CommissionModel):
        def compute(self, asset, quantity, price, ts):
            return -1.0

    class NaNFee(CommissionModel):
        def compute(self, asset, quantity, price, ts):
            return math.nan

    class Broken(CommissionModel):
        def compute(self, asset, quantity, price, ts):
            raise KeyError("boom")

    class Zero(SlippageModel):
        def fill_price(self, asset, quantity, raw_price, bar_volume, ts, row=-1):
            return 0.0

    class NoFill(SlippageModel):
        def fill_price(self, asset, quantity, raw_price, bar_volume, ts, row=-1):
            return math.nan

    with pytest.raises(ConfigError, match="Negative.compute returned -1.0"):
        _costs._apply_commission(Negative(), 0, 1, 1.0, 0)
    with pytest.raises(ConfigError, match="NaNFee.compute returned nan"):
        _costs._apply_commission(NaNFee(), 0, 1, 1.0, 0)
    with pytest.raises(KeyError, match="boom"):  # the user's exception, with its type
        _costs._apply_commission(Broken(), 0, 1, 1.0, 0)
    with pytest.raises(ConfigError, match="Zero.fill_price returned 0.0"):
        _costs._apply_slippage(Zero(), 0, 1, 1.0, 1.0, 0)
    assert math.isnan(_costs._apply_slippage(NoFill(), 0, 1, 1.0, 1.0, 0))


# ================================================================ config tables, eq, pickle
BUILT_INS = [
    CommissionModel(0.001, 0.002, 0.5, 1.0, 9.0, 0.02),
    PercentageCommission(0.001, minimum=1.0),
    PerShareCommission(0.005, minimum=1.0, max_fraction=0.01),
    FixedCommission(3.0),
    TieredCommission([(0, 0.0035), (300_000, 0.002)], minimum=0.35, max_fraction=0.01),
    SlippageModel(2.0),
    FixedBpsSlippage(5.0),
    HalfSpreadSlippage("b", "a", fallback_bps=3.0, bps=1.0),
    LinearImpact(0.1, bps=1.0),
    SquareRootImpact(0.7, sigma=0.02, sigma_column="vol"),
    AlmgrenChrissImpact(0.1, 0.05, beta=0.6, half_life=3600.0),
    AlmgrenChrissImpact(0.1, 0.05),
]


@pytest.mark.parametrize("model", BUILT_INS, ids=lambda m: type(m).__name__)
def test_table_round_trip_equality_and_pickle(model):
    table = model_to_config(model)
    assert table["model"] in (
        COMMISSION_MODELS if isinstance(model, CommissionModel) else SLIPPAGE_MODELS
    )
    kind = "commission" if isinstance(model, CommissionModel) else "slippage"
    again = model_from_config(table, kind)
    assert type(again) is type(model)
    assert again == model and hash(again) == hash(model)
    assert repr(again) == repr(model)
    assert pickle.loads(pickle.dumps(model)) == model


def test_config_values():
    assert commission_from_config(0.001) == PercentageCommission(0.001)
    assert commission_from_config({"per_share": 0.005, "minimum": 1.0}) == CommissionModel(
        per_share=0.005, minimum=1.0
    )
    tiered = commission_from_config(
        {"model": "tiered", "tiers": [[0, 0.01], [1000, 0.005]], "minimum": 1.0}
    )
    assert isinstance(tiered, TieredCommission) and tiered.tiers[1] == (1000.0, 0.005)
    m = PerShareCommission(0.01)
    assert commission_from_config(m) is m
    assert slippage_from_config(5) == FixedBpsSlippage(5.0)
    assert slippage_from_config({"bps": 5}) == SlippageModel(5.0)
    assert slippage_from_config({"model": "almgren_chriss", "eta": 0.1, "gamma": 0.05}).beta == 0.6
    assert model_to_config(2.5) == 2.5
    with pytest.raises(ConfigError, match="per_shares"):
        commission_from_config({"per_shares": 0.01})
    with pytest.raises(ConfigError, match="unknown commission model 'ib'"):
        commission_from_config({"model": "ib"})
    with pytest.raises(ConfigError, match="commission"):
        commission_from_config(True)
    with pytest.raises(ConfigError, match="slippage"):
        slippage_from_config("5bps")
    with pytest.raises(ConfigError, match="kind"):
        model_from_config(1.0, "fees")
    with pytest.raises(ConfigError, match="Python subclass"):
        model_to_config(HalfPercentPlusAsset())


def test_equality_is_by_type_and_parameters():
    assert PercentageCommission(0.001) == PercentageCommission(0.001)
    assert PercentageCommission(0.001) != PercentageCommission(0.002)
    assert PercentageCommission(0.001) != CommissionModel(rate=0.001)
    assert SlippageModel(5) != FixedBpsSlippage(5)
    a, b = HalfPercentPlusAsset(), HalfPercentPlusAsset()
    assert a == a and a != b  # Python subclasses: identity
    assert len({PerShareCommission(0.01), PerShareCommission(0.01)}) == 1


def test_python_subclass_pickles_with_its_attributes():
    m = CountingCommission()
    m.fills = 5
    again = pickle.loads(pickle.dumps(m))
    assert type(again) is CountingCommission and again.fills == 5
    assert again.compute(0, 1, 1.0, 0) == 1.0


def test_backtest_config_accepts_every_model():
    cfg = mlbacktest.BacktestConfig(
        commission=TieredCommission([(0, 0.01)]), slippage_bps=AlmgrenChrissImpact(0.1, 0.05)
    )
    assert isinstance(cfg.commission_model, TieredCommission)
    assert isinstance(cfg.slippage_model, AlmgrenChrissImpact)
    cfg = mlbacktest.BacktestConfig(commission=0.001, slippage_bps=3.0)
    assert cfg.commission_model.rate == 0.001


# ================================================================ through the engine
FLAT = (100, 101, 99, 100)


def test_engine_tiered_commission_and_permanent_impact():
    data = bars({"A": [FLAT] * 5}, start="2024-01-29", volume=10_000)

    def script():
        def buy(q):
            return lambda s, v: s.buy("A", q)

        return Scripted({0: buy(600), 1: buy(100), 2: buy(100)}, start=lambda s: s.buy("A", 600))

    fees = TieredCommission([(0, 0.01), (1000, 0.005)])
    impact = AlmgrenChrissImpact(eta=0.1, gamma=0.05, beta=1.0)
    res = run(data, script(), initial_cash=1_000_000, commission=fees, slippage_bps=impact)
    # Fills at the opens (100) of Jan 29, 30, 31 and Feb 1.
    # Impact: x = 600/10_000 = 0.06 (temporary 0.6 %, permanent +0.3 %), then x = 0.01
    # (temporary 0.1 %, permanent +0.05 %).
    prices = [
        100 * (1 + 0.006),
        100 * (1 + 0.003 + 0.006),
        100 * (1 + 0.006 + 0.001),
        100 * (1 + 0.0065 + 0.001),
    ]
    # Tiers: 600 and 600 at 0.01 (0 then 600 done), 100 at 0.005 (1,200 done in January),
    # 100 at 0.01 (February starts from 0).
    comms = [6.0, 6.0, 0.5, 1.0]
    rows = fill_rows(res)
    assert [r[0] for r in rows] == [day(i, "2024-01-29") for i in range(4)]
    assert [r[4] for r in rows] == pytest.approx(prices, rel=1e-12)
    assert [r[5] for r in rows] == pytest.approx(comms, rel=1e-12)
    # The models were reset at the start: a second run gives the same fills.
    again = run(
        data, script(), initial_cash=1_000_000, commission=fees, slippage_bps=impact
    )
    assert fill_rows(again) == rows


def test_engine_calls_python_models_and_skips_rejected_fills():
    data = bars({"A": [FLAT] * 4})
    strat = Scripted(
        {
            0: lambda s, v: s.buy("A", 1_000),
            1: lambda s, v: s.buy("A", 10),
            2: lambda s, v: s.buy("A", 10),
        },
        start=lambda s: s.buy("A", 10),
    )
    fees = CountingCommission()  # free for two booked fills, then 1.0
    res = run(data, strat, initial_cash=10_000, commission=fees, slippage_bps=MidQuote())
    assert res.orders["status"].to_list() == ["filled", "rejected", "filled", "filled"]
    assert [r[5] for r in fill_rows(res)] == [0.0, 0.0, 1.0]
    assert fees.fills == 3


# ================================================================ validation
@pytest.mark.parametrize(
    ("make", "name"),
    [
        (lambda: PercentageCommission(-0.001), "rate"),
        (lambda: CommissionModel(rate=True), "rate"),
        (lambda: CommissionModel(rate="0.1"), "rate"),
        (lambda: CommissionModel(per_share=math.nan), "per_share"),
        (lambda: CommissionModel(fixed=INF), "fixed"),
        (lambda: CommissionModel(minimum=-1), "minimum"),
        (lambda: PerShareCommission(0.01, minimum=5.0, maximum=1.0), "maximum"),
        (lambda: PerShareCommission(0.01, max_fraction=-0.01), "max_fraction"),
        (lambda: FixedCommission(-1.0), "amount"),
        (lambda: TieredCommission([]), "tiers"),
        (lambda: TieredCommission(0.01), "tiers"),
        (lambda: TieredCommission([(1, 0.01)]), r"tiers\[0\] from_volume"),
        (lambda: TieredCommission([(0, 0.01), (0, 0.005)]), r"tiers\[1\] from_volume"),
        (lambda: TieredCommission([(0, -0.01)]), r"tiers\[0\] charge"),
        (lambda: TieredCommission([(0, 0.01, 2)]), r"tiers\[0\]"),
        (lambda: TieredCommission([(0, 0.01)], charge="bps"), "charge"),
        (lambda: TieredCommission([(0, 0.01)], volume="lots"), "volume"),
        (lambda: TieredCommission([(0, 0.01)], minimum=-1.0), "minimum"),
        (lambda: SlippageModel(-1.0), "bps"),
        (lambda: SlippageModel(10_000), "bps"),
        (lambda: FixedBpsSlippage(math.nan), "bps"),
        (lambda: HalfSpreadSlippage(bid=""), "bid"),
        (lambda: HalfSpreadSlippage(ask=3), "ask"),
        (lambda: HalfSpreadSlippage(fallback_bps=-1), "fallback_bps"),
        (lambda: LinearImpact(-0.1), "k"),
        (lambda: SquareRootImpact(0.5, sigma=-0.02), "sigma"),
        (lambda: SquareRootImpact(0.5, sigma_column=""), "sigma_column"),
        (lambda: AlmgrenChrissImpact(-0.1, 0.05), "eta"),
        (lambda: AlmgrenChrissImpact(0.1, INF), "gamma"),
        (lambda: AlmgrenChrissImpact(0.1, 0.05, beta=0.0), "beta"),
        (lambda: AlmgrenChrissImpact(0.1, 0.05, half_life=0), "half_life"),
        (lambda: AlmgrenChrissImpact(0.1, 0.05, half_life=-60.0), "half_life"),
        (lambda: AlmgrenChrissImpact(0.1, 0.05, bps=-2), "bps"),
    ],
)
def test_parameter_validation_names_the_parameter(make, name):
    with pytest.raises(ConfigError, match=name):
        make()


def test_subclasses_that_skip_init_are_safe():
    class T(TieredCommission):
        def __init__(self):
            pass

    class A(AlmgrenChrissImpact):
        def __init__(self):
            pass

    assert both(T(), 0, 10, 1.0) == 0.0
    a = A()
    a.record_fill(0, 1, 1.0, 10.0, 0)
    assert price(a, 1, 1.0, volume=10.0) == 1.0


def test_half_spread_reads_quote_columns_of_the_fill_bar_end_to_end():
    import sys
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).parent))
    from helpers import Scripted, bars

    import mlbacktest as mb
    from mlbacktest.models import HalfSpreadSlippage

    flat = (100, 100, 100, 100)
    data = bars(
        {"A": [flat, flat, flat]},
        signals={"bid": {"A": [99.0, 99.8, 99.0]}, "ask": {"A": [101.0, 100.2, 101.0]}},
    )
    feed = mb.PolarsDataFeed(data, signal_columns=["bid", "ask"])

    def d0(s, view):
        s.buy("A", 10)

    def d1(s, view):
        s.sell("A", 10)

    cfg = mb.BacktestConfig(slippage_bps=HalfSpreadSlippage())
    res = mb.BacktestEngine(feed, Scripted({0: d0, 1: d1}), cfg).run()
    # buy at day 1's open + half of day 1's spread (0.4 / 2); sell at day 2's open - 1.0
    assert res.fills["price"].to_list() == [100.0 + 0.2, 100.0 - 1.0]
    assert res.fills["slippage"].to_list() == [pytest.approx(10 * 0.2), pytest.approx(10 * 1.0)]


def test_fixed_amount_slippage_moves_the_price_by_currency_per_unit():
    from mlbacktest.models import FixedAmountSlippage

    m = FixedAmountSlippage(0.05, bps=10)
    assert m.fill_price(0, 10, 100.0, 1e6, 0) == 100.0 * (1 + 0.001) + 0.05
    assert m.fill_price(0, -10, 100.0, 1e6, 0) == 100.0 * (1 - 0.001) - 0.05
    assert math.isnan(FixedAmountSlippage(200.0).fill_price(0, -1, 100.0, 1e6, 0))
    assert slippage_from_config(m.to_config()) == m
    with pytest.raises(ConfigError, match="amount"):
        FixedAmountSlippage(-1.0)


# ================================================================ volume-share impact (zipline)
def test_volume_share_impact_by_hand():
    m = VolumeShareImpact(price_impact=0.1, volume_limit=0.025)
    m.reset(2)
    # share 1 %: 50 + 0.01**2 * 0.1 * 50 (zipline's order of operations, bit for bit)
    assert price(m, 1_000, 50.0, volume=100_000) == 50.0 + 0.01**2 * 0.1 * 50.0
    assert price(m, -1_000, 50.0, volume=100_000) == 50.0 + 0.01**2 * -0.1 * 50.0
    # the share is capped at volume_limit
    assert price(m, 10_000, 50.0, volume=100_000) == 50.0 + 0.025**2 * 0.1 * 50.0
    # no volume: cannot fill on this bar
    assert math.isnan(price(m, 10, 50.0, volume=0.0))


def test_volume_share_impact_counts_the_fills_already_on_the_bar():
    m = VolumeShareImpact(0.1, volume_limit=None)
    m.reset(2)
    m.record_fill(0, 1_000, 50.0, 100_000, 7)
    # a second fill on the same asset and bar is priced on the volume of both
    assert price(m, 1_000, 50.0, volume=100_000, asset=0, ts=7) == 50.0 + 0.02**2 * 0.1 * 50.0
    # another asset, or the next bar, starts from zero
    assert price(m, 1_000, 50.0, volume=100_000, asset=1, ts=7) == 50.0 + 0.01**2 * 0.1 * 50.0
    assert price(m, 1_000, 50.0, volume=100_000, asset=0, ts=8) == 50.0 + 0.01**2 * 0.1 * 50.0
    m.reset(2)
    assert price(m, 1_000, 50.0, volume=100_000, asset=0, ts=7) == 50.0 + 0.01**2 * 0.1 * 50.0


def test_volume_share_impact_in_a_run_with_the_volume_cap():
    def d0(s, view):
        s.buy("A", 3_000)
        s.buy("A", 3_000)

    data = bars({"A": [(100, 100, 100, 100)] * 4}, volume=100_000)
    cfg = mlbacktest.BacktestConfig(initial_cash=1e7, fill_at="next_close",
                                    slippage_bps=VolumeShareImpact(0.1, 0.025),
                                    max_volume_participation=0.025)
    res = run(data, Scripted({0: d0}), cfg)
    q = res.fills["quantity"].to_list()
    p = res.fills["price"].to_list()
    # bar 1: 2,500 of the cap to the first order; the second waits; bar 2: 500 + 2,000
    assert q == [2_500, 500, 2_000, 1_000]
    assert p[0] == 100 + 0.025**2 * 0.1 * 100
    assert p[1] == 100 + 0.005**2 * 0.1 * 100
    assert p[2] == 100 + 0.025**2 * 0.1 * 100


def test_volume_share_impact_refuses_bad_parameters_and_pickles():
    with pytest.raises(ConfigError, match="price_impact must be a finite number >= 0"):
        VolumeShareImpact(-0.1)
    with pytest.raises(ConfigError, match=r"volume_limit must be a fraction in \(0, 1\]"):
        VolumeShareImpact(0.1, volume_limit=1.5)
    m = pickle.loads(pickle.dumps(VolumeShareImpact(0.2, 0.05, bps=1.0)))
    assert (m.price_impact, m.volume_limit, m.bps) == (0.2, 0.05, 1.0)
