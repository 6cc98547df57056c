"""Everything the zipline shim refuses, in one place: calls outside the subset raise
PortingError naming the zipline call and the mlbacktest way; bad input raises a
clear error naming what was wrong, before the run."""

from __future__ import annotations

import sys
from pathlib import Path

import pandas as pd
import polars as pl
import pytest

pytest.importorskip("exchange_calendars", reason="zipline-reloaded is in the test extra")

sys.path.insert(0, str(Path(__file__).parent))
import zipline_oracle as oracle  # noqa: E402

from mlbacktest.compat.zipline import api, run_algorithm  # noqa: E402
from mlbacktest.compat.zipline.finance import commission, execution, slippage  # noqa: E402
from mlbacktest.errors import ConfigError, DataError, OrderError, PortingError  # noqa: E402

START, END = "2014-01-02", "2014-03-31"


@pytest.fixture(scope="module")
def frame():
    return oracle.synthetic_frame(["AAPL", "MSFT"], START, END, seed=3)


def run(frame, handle_data=None, initialize=None, start=START, **kwargs):
    def init(context):
        context.asset = api.symbol("AAPL")
        if initialize is not None:
            initialize(context)

    return run_algorithm(start, END, init, 1e6, handle_data=handle_data, data=frame, **kwargs)


# ------------------------------------------------------------ zipline.api outside the subset
#: The zipline calls issue 12 lists as supported, by where they live.
ISSUE_API = ("order", "order_value", "order_percent", "order_target", "order_target_value",
             "order_target_percent", "cancel_order", "get_open_orders", "symbol", "symbols",
             "sid", "record", "get_datetime", "schedule_function", "set_commission",
             "set_slippage", "set_long_only", "set_max_leverage", "set_benchmark",
             "attach_pipeline", "pipeline_output")


def test_every_call_the_issue_lists_exists():
    import mlbacktest.compat.zipline as shim
    from mlbacktest.compat.zipline import pipeline
    from mlbacktest.compat.zipline._algorithm import BarData, Portfolio, Position

    for name in ISSUE_API:
        assert callable(getattr(api, name)) and name in api.SUPPORTED, name
    for rule in ("every_day", "week_start", "week_end", "month_start", "month_end"):
        assert callable(getattr(api.date_rules, rule))
    for rule in ("market_open", "market_close"):
        assert getattr(api.time_rules, rule)(minutes=5).offset == pd.Timedelta(minutes=5)
    for cls in ("PerShare", "PerTrade", "PerDollar"):
        assert getattr(commission, cls)().to_model() is not None
    for cls in ("FixedBasisPointsSlippage", "VolumeShareSlippage", "FixedSlippage"):
        assert getattr(slippage, cls)().to_model() is not None
        assert getattr(api, cls) is getattr(slippage, cls)  # zipline.api re-exports them
    for attr in ("current", "history", "can_trade", "is_stale", "current_dt",
                 "current_session", "current_session_minutes"):
        assert hasattr(BarData, attr), attr
    for attr in ("cash", "portfolio_value", "positions_value", "pnl", "returns",
                 "starting_cash", "positions"):
        assert isinstance(getattr(Portfolio, attr), property), attr
    for attr in ("amount", "cost_basis", "last_sale_price"):
        assert attr in Position.__slots__
    for name in ("run_algorithm", "install", "uninstall", "load_algorithm"):
        assert callable(getattr(shim, name))
    for name in ("Pipeline", "Returns", "SimpleMovingAverage", "RSI", "AverageDollarVolume"):
        assert hasattr(pipeline, name), name


def test_real_zipline_api_names_are_all_translated_or_refused():
    """Every public name of zipline-reloaded 3.2.1's zipline.api resolves on the shim, or
    raises PortingError naming it (its modules and constants of unsupported features)."""
    names = ["EODCancel", "FixedBasisPointsSlippage", "FixedSlippage", "HistoricalRestrictions",
             "NeverCancel", "RESTRICTION_STATES", "Restriction", "StaticRestrictions",
             "VolumeShareSlippage", "attach_pipeline", "batch_market_order", "cancel_order",
             "cancel_policy", "continuous_future", "date_rules", "events", "fetch_csv",
             "future_symbol", "get_datetime", "get_environment", "get_open_orders",
             "get_order", "math_utils", "order", "order_percent", "order_target",
             "order_target_percent", "order_target_value", "order_value", "pipeline_output",
             "record", "schedule_function", "set_asset_restrictions", "set_benchmark",
             "set_cancel_policy", "set_commission", "set_do_not_order_list", "set_long_only",
             "set_max_leverage", "set_max_order_count", "set_max_order_size",
             "set_max_position_size", "set_min_leverage", "set_slippage",
             "set_symbol_lookup_date", "sid", "symbol", "symbols", "time_rules"]
    for name in names:
        if name in ("cancel_policy", "RESTRICTION_STATES", "events", "math_utils"):
            with pytest.raises(PortingError, match=rf"zipline\.api\.{name} is not supported"):
                getattr(api, name)
        else:
            assert getattr(api, name) is not None, name
    with pytest.raises(AttributeError):
        api.no_such_call  # noqa: B018


@pytest.mark.parametrize("attr,match", [
    ("current_chain", r"data\.current_chain is not supported"),
    ("fetcher_assets", r"data\.fetcher_assets is not supported"),
    ("current_session_minutes", r"data\.current_session_minutes in a daily run"),
])
def test_bar_data_outside_the_subset(frame, attr, match):
    def handle_data(context, data):
        value = getattr(data, attr)
        if callable(value):
            value(context.asset)

    with pytest.raises(PortingError, match=match):
        run(frame, handle_data)


@pytest.mark.parametrize("name", sorted(api.UNSUPPORTED))
def test_unsupported_api_call_names_itself_and_the_native_way(name, frame):
    def handle_data(context, data):
        getattr(api, name)()

    with pytest.raises(PortingError, match=rf"zipline\.api\.{name} .*in mlbacktest: "):
        run(frame, handle_data)
    assert issubclass(PortingError, NotImplementedError)


def test_pipeline_names_outside_the_subset_raise_at_import():
    from mlbacktest.compat.zipline import installed_as_zipline

    with installed_as_zipline(replace=True):
        with pytest.raises(PortingError, match=r"zipline\.pipeline\.CustomFactor .*signal "):
            from zipline.pipeline import CustomFactor  # noqa: F401
        with pytest.raises(PortingError, match=r"pipeline\.ExponentialWeightedMovingAverage"):
            from zipline.pipeline.factors import ExponentialWeightedMovingAverage  # noqa: F401


def test_pipeline_terms_outside_the_subset():
    from mlbacktest.compat.zipline.pipeline import RSI, Returns

    with pytest.raises(PortingError, match=r"Factor\.zscore is not supported"):
        RSI().zscore()
    with pytest.raises(PortingError, match=r"rank\(method='average'\)"):
        Returns(window_length=5).rank(method="average")
    with pytest.raises(PortingError, match=r"rank\(groupby=\.\.\.\)"):
        Returns(window_length=5).rank(groupby=object())
    with pytest.raises(PortingError, match=r"inputs are EquityPricing columns"):
        Returns(inputs=["close"], window_length=5)


def test_pipeline_misuse(frame):
    from mlbacktest.compat.zipline.pipeline import Pipeline, Returns

    with pytest.raises(PortingError, match=r"attach_pipeline\(.*built-in factors only"):
        run(frame, initialize=lambda c: api.attach_pipeline(object(), "p"))

    def unknown(context, data):
        api.pipeline_output("other")

    def attach(context):
        api.attach_pipeline(Pipeline({"r": Returns(window_length=3)}), "p")

    with pytest.raises(ValueError, match=r"no pipeline named 'other'.*NoSuchPipeline"):
        run(frame, unknown, attach, start="2014-01-10")

    def long_window(context):
        api.attach_pipeline(Pipeline({"r": Returns(window_length=300)}), "p")

    with pytest.raises(ValueError, match=r"needs 300 sessions of 'close' before 2014-01-10, "
                                         r"and the data has 6 .*NoFurtherData"):
        run(frame, None, long_window, start="2014-01-10")


@pytest.mark.parametrize("style", ["LimitOrder", "StopOrder", "StopLimitOrder"])
def test_limit_and_stop_styles(style):
    with pytest.raises(PortingError, match=rf"execution\.{style} .*limit_price"):
        getattr(execution, style)(10.0)


@pytest.mark.parametrize("kwargs", [{"limit_price": 10.0}, {"stop_price": 10.0}])
def test_order_with_limit_or_stop_price(frame, kwargs):
    def handle_data(context, data):
        api.order(context.asset, 10, **kwargs)

    with pytest.raises(PortingError, match=r"order\(\.\.\., limit_price/stop_price/style\)"):
        run(frame, handle_data)


@pytest.mark.parametrize("call", [
    lambda: commission.PerContract(0.85, 0.0),
    lambda: commission.PerFutureTrade(1.0),
    lambda: slippage.VolatilityVolumeShare(0.05),
])
def test_futures_cost_models(call):
    with pytest.raises(PortingError, match=r"is not supported by the zipline shim: .*mlbacktest"):
        call()


@pytest.mark.parametrize("setter,kwargs,match", [
    ("set_commission", {"us_futures": object()}, r"set_commission\(us_futures"),
    ("set_commission", {"us_equities": object()}, r"CommissionModel subclass"),
    ("set_slippage", {"us_futures": object()}, r"set_slippage\(us_futures"),
    ("set_slippage", {"us_equities": object()}, r"SlippageModel subclass"),
    ("set_long_only", {"on_error": "log"}, r"allow_short=False"),
])
def test_unsupported_settings(frame, setter, kwargs, match):
    with pytest.raises(PortingError, match=match):
        run(frame, initialize=lambda context: getattr(api, setter)(**kwargs))


def test_minute_mode_on_daily_bars_and_bundles(frame):
    # daily bars (stamped at midnight) are not minutes of a session: named, before any work
    with pytest.raises(DataError, match=r"asset 'AAPL' has a bar at 2014-01-02 00:00:00 "
                                        r"\(UTC\), which is not a minute of a XNYS session"):
        run(frame, data_frequency="minute")
    with pytest.raises(ValueError, match=r"data_frequency must be 'daily' or 'minute'"):
        run(frame, data_frequency="hourly")
    with pytest.raises(PortingError, match=r"run_algorithm\(bundle=\.\.\.\).*polars frame"):
        run(frame, bundle="quandl")


def test_minute_history_and_last_traded(frame):
    def minute(context, data):
        data.history(context.asset, "price", 5, "1m")

    with pytest.raises(PortingError, match=r"frequency='1m'\) in a daily run"):
        run(frame, minute)

    def last_traded(context, data):
        data.current(context.asset, "last_traded")

    with pytest.raises(PortingError, match=r"'last_traded'.*history_timestamps"):
        run(frame, last_traded)


@pytest.mark.parametrize("kwargs,match", [
    ({"calendar": "us_futures"}, r"calendar='us_futures'"),
    ({"half_days": False}, r"half_days=False"),
    ({"date_rule": "every monday"}, r"not one of zipline's date_rules"),
    ({"time_rule": "9:31"}, r"not one of zipline's time_rules"),
])
def test_schedule_function_outside_the_subset(frame, kwargs, match):
    with pytest.raises(PortingError, match=match):
        run(frame, initialize=lambda c: api.schedule_function(lambda c, d: None, **kwargs))


def test_context_account(frame):
    def handle_data(context, data):
        context.account  # noqa: B018

    with pytest.raises(PortingError, match=r"context\.account .*get_equity"):
        run(frame, handle_data)


def test_equity_at_zero_is_refused_not_liquidated(frame):
    def handle_data(context, data):
        if not context.portfolio.positions:
            api.order_value(context.asset, -1e8)

    def init(context):
        api.set_slippage(slippage.NoSlippage())

    with pytest.raises(PortingError, match=r"zipline goes on trading with equity at or below "
                                            r"zero.*margin call"):
        run(frame, handle_data, init)


def test_orders_on_both_sides_under_a_volume_limit(frame):
    def handle_data(context, data):
        if context.portfolio.positions[context.asset].amount == 0 and not api.get_open_orders():
            api.order(context.asset, 10_000_000)
        elif api.get_open_orders(context.asset):
            api.order(context.asset, -10)

    with pytest.raises(PortingError, match=r"open on the other side.*cancel_order\(\)"):
        run(frame, handle_data)


# ------------------------------------------------------------ zipline's own refusals
def test_orders_in_initialize_and_before_trading_start(frame):
    with pytest.raises(OrderError, match=r"not in initialize \(zipline raises "
                                         r"OrderDuringInitialize\)"):
        run(frame, initialize=lambda c: api.order(c.asset, 1))

    def bts(context, data):
        api.order(context.asset, 1)

    with pytest.raises(OrderError, match=r"OrderInBeforeTradingStart"):
        run(frame, before_trading_start=bts)


def test_settings_after_initialize(frame):
    def handle_data(context, data):
        api.set_commission(commission.PerShare())

    with pytest.raises(ConfigError, match=r"set_commission\(\) can only be called in initialize"):
        run(frame, handle_data)


def test_non_asset_and_unknown_symbol(frame):
    def by_name(context, data):
        api.order("AAPL", 1)

    with pytest.raises(OrderError, match=r"non-Asset argument 'AAPL' to 'order\(\)'"):
        run(frame, by_name)
    with pytest.raises(OrderError, match=r"symbol 'APPL' was not found.*AAPL"):
        run(frame, initialize=lambda c: api.symbol("APPL"))
    with pytest.raises(OrderError, match=r"no asset with sid 7"):
        run(frame, initialize=lambda c: api.sid(7))


def test_long_only_and_max_leverage(frame):
    def short(context, data):
        api.order(context.asset, -5)

    with pytest.raises(OrderError, match=r"Order for -5 shares of Equity\(0 \[AAPL\]\).*LongOnly"):
        run(frame, short, lambda c: api.set_long_only())

    def lever(context, data):
        api.order_target_percent(context.asset, 3.0)

    with pytest.raises(OrderError, match=r"above set_max_leverage\(2.0\).*AccountControl"):
        run(frame, lever, lambda c: api.set_max_leverage(2.0))


def test_history_longer_than_the_data(frame):
    def handle_data(context, data):
        data.history(context.asset, "price", 10, "1d")

    with pytest.raises(ValueError, match=r"asked for 10 sessions on 2014-01-02.*has 1 "
                                         r".*HistoryWindowStartsBeforeData"):
        run(frame, handle_data)


def test_api_outside_a_run():
    with pytest.raises(RuntimeError, match=r"zipline\.api\.symbol\(\) was called outside"):
        api.symbol("AAPL")


# ------------------------------------------------------------ bad data, refused before the run
def test_data_missing_a_column(frame):
    with pytest.raises(DataError, match=r"missing column\(s\) \['volume'\]"):
        run(frame.drop(columns="volume"))


def test_data_missing_a_session(frame):
    day = pd.Timestamp("2014-02-03")
    with pytest.raises(DataError, match=r"no bar on session 2014-02-03"):
        run(frame[frame["timestamp"] != day])


def test_asset_skipping_a_session(frame):
    gap = frame[~((frame["timestamp"] == pd.Timestamp("2014-02-04")) & (frame["asset"] == "MSFT"))]
    with pytest.raises(DataError, match=r"asset 'MSFT' has no bar on session 2014-02-04"):
        run(gap)


def test_bars_off_the_daily_grid_and_off_the_calendar(frame):
    shifted = pl.from_pandas(frame).with_columns(
        pl.when(pl.col("timestamp") == pd.Timestamp("2014-01-03"))
        .then(pl.col("timestamp") + pl.duration(hours=16)).otherwise(pl.col("timestamp"))
        .alias("timestamp"))
    with pytest.raises(DataError, match=r"midnight; asset 'AAPL' has a bar at 2014-01-03 16:00"):
        run(shifted)
    sunday = pd.concat([frame, frame.iloc[:1].assign(timestamp=pd.Timestamp("2014-01-05"))])
    with pytest.raises(DataError, match=r"bars on 2014-01-05, which is not a session"):
        run(sunday)


def test_data_of_another_type():
    with pytest.raises(DataError, match=r"data must be a polars or pandas frame, a DataFeed or "
                                        r"a path"):
        run_algorithm(START, END, lambda c: None, 1e6, data=[1, 2])
    with pytest.raises(DataError, match=r"run_algorithm needs data="):
        run_algorithm(START, END, lambda c: None, 1e6)
