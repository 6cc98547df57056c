"""BacktestResult frames, metrics and summary (mlbacktest.results.result)."""

from __future__ import annotations

import io
import math
from datetime import datetime, timezone
from zoneinfo import ZoneInfo

import numpy as np
import polars as pl
import pytest

from mlbacktest.results import BacktestResult
from mlbacktest.results.metrics import compute_metrics

pytestmark = pytest.mark.filterwarnings("error")

NY = "America/New_York"
NS = 10**9
# 2024-01-02 14:30 UTC == 09:30 New York (EST); bars one day apart.
T0 = int(datetime(2024, 1, 2, 14, 30, tzinfo=timezone.utc).timestamp()) * NS
DAY = 86_400 * NS
TS = T0 + DAY * np.arange(4, dtype=np.int64)
NO_TS = np.iinfo(np.int64).min
CONFIG = object()


def run_args() -> dict:
    """Arguments of a 4-bar, 2-asset run: buy 10 AAA, sell 4 AAA, short 5 BBB;
    one rejected and one open order."""
    equity = np.array([10_000.0, 9_990.0, 10_030.0, 10_050.0])
    exposure = np.array([0.0, 1_000.0, 600.0, 350.0])
    return {
        "equity": {
            "ts": TS,
            "cash": equity - exposure,
            "positions_value": exposure,
            "equity": equity,
            "gross_exposure": exposure + np.array([0.0, 0.0, 0.0, 250.0]),
            "net_exposure": exposure - np.array([0.0, 0.0, 0.0, 250.0]),
        },
        "fills": {
            "ts": TS[[1, 2, 3]],
            "asset": np.array([0, 0, 1], dtype=np.int32),
            "order_id": np.array([1, 2, 3], dtype=np.int64),
            "quantity": np.array([10.0, -4.0, -5.0]),
            "price": np.array([100.0, 110.0, 50.0]),
            "commission": np.array([1.0, 0.5, 0.25]),
            "slippage": np.array([0.2, 0.1, 0.05]),
        },
        "orders": {
            "order_id": np.array([1, 2, 3, 4, 5], dtype=np.int64),
            "asset": np.array([0, 0, 1, 1, 0], dtype=np.int32),
            "created_ts": TS[[0, 1, 2, 2, 3]],
            "order_type": np.array([0, 1, 2, 0, 1], dtype=np.int8),
            "quantity": np.array([10.0, -4.0, -5.0, 1e6, 3.0]),
            "limit_price": np.array([np.nan, 110.0, np.nan, np.nan, 95.0]),
            "stop_price": np.array([np.nan, np.nan, 50.0, np.nan, np.nan]),
            "status": np.array([3, 3, 3, 6, 1], dtype=np.int8),
            "filled_quantity": np.array([10.0, -4.0, -5.0, 0.0, 0.0]),
            "avg_fill_price": np.array([100.0, 110.0, 50.0, np.nan, np.nan]),
            "closed_ts": np.array([TS[1], TS[2], TS[3], TS[2], NO_TS], dtype=np.int64),
            "reason": ["", "", "", "insufficient cash", ""],
        },
        "asset_names": ("AAA", "BBB"),
        "tz": NY,
        "initial_cash": 10_000.0,
        "config": CONFIG,
        "periods_per_year": None,
        "risk_free": 0.0,
    }


def make_result(**overrides) -> BacktestResult:
    return BacktestResult(**(run_args() | overrides))


@pytest.fixture(scope="module")
def result() -> BacktestResult:
    return make_result()


def test_scalars_and_config(result):
    assert result.config is CONFIG
    assert result.initial_cash == 10_000.0
    assert result.final_equity == 10_050.0
    assert result.asset_names == ("AAA", "BBB")
    assert result.periods_per_year == 252.0
    assert make_result(periods_per_year=12.0).periods_per_year == 12.0


def test_equity_frame(result):
    df = result.equity
    assert df.schema == pl.Schema(
        {
            "timestamp": pl.Datetime("ns", NY),
            "cash": pl.Float64,
            "positions_value": pl.Float64,
            "equity": pl.Float64,
            "gross_exposure": pl.Float64,
            "net_exposure": pl.Float64,
            "returns": pl.Float64,
            "drawdown": pl.Float64,
            "gross_leverage": pl.Float64,
            "net_leverage": pl.Float64,
        }
    )
    assert df["returns"].to_list() == pytest.approx(
        [0.0, 9_990 / 10_000 - 1, 10_030 / 9_990 - 1, 10_050 / 10_030 - 1]
    )
    assert df["drawdown"].to_list() == pytest.approx([0.0, -0.001, 0.0, 0.0])
    assert df["gross_leverage"].to_list() == pytest.approx(
        [0.0, 1000 / 9990, 600 / 10030, 600 / 10050]
    )
    assert df["net_leverage"][3] == pytest.approx(100 / 10050)
    assert result.equity is df  # cached


def test_timestamps_are_tz_aware_instants(result):
    first = result.equity["timestamp"][0]
    assert first == datetime(2024, 1, 2, 9, 30, tzinfo=ZoneInfo(NY))
    assert first.utcoffset().total_seconds() == -5 * 3600


def test_timestamps_naive_when_tz_is_none():
    naive = make_result(tz=None)
    for frame, column in [
        (naive.equity, "timestamp"),
        (naive.fills, "timestamp"),
        (naive.orders, "timestamp"),
        (naive.orders, "closed_timestamp"),
        (naive.trades, "entry_timestamp"),
        (naive.trades, "exit_timestamp"),
        (naive.open_positions, "entry_timestamp"),
    ]:
        assert frame.schema[column] == pl.Datetime("ns"), column
        assert frame.schema[column].time_zone is None
    # Naive values are the wall-clock time the ns encode.
    assert naive.equity["timestamp"][0] == datetime(2024, 1, 2, 14, 30)


def test_fills_frame(result):
    df = result.fills
    assert df.schema == pl.Schema(
        {
            "timestamp": pl.Datetime("ns", NY),
            "asset": pl.String,
            "order_id": pl.Int64,
            "quantity": pl.Float64,
            "price": pl.Float64,
            "commission": pl.Float64,
            "slippage": pl.Float64,
            "side": pl.String,
            "value": pl.Float64,
        }
    )
    assert df["asset"].to_list() == ["AAA", "AAA", "BBB"]
    assert df["side"].to_list() == ["buy", "sell", "sell"]
    assert df["value"].to_list() == [1000.0, -440.0, -250.0]


def test_orders_frame(result):
    df = result.orders
    assert df.schema == pl.Schema(
        {
            "order_id": pl.Int64,
            "timestamp": pl.Datetime("ns", NY),
            "asset": pl.String,
            "type": pl.String,
            "quantity": pl.Float64,
            "limit_price": pl.Float64,
            "stop_price": pl.Float64,
            "status": pl.String,
            "filled_quantity": pl.Float64,
            "avg_fill_price": pl.Float64,
            "closed_timestamp": pl.Datetime("ns", NY),
            "reason": pl.String,
        }
    )
    assert df["type"].to_list() == ["market", "limit", "stop", "market", "limit"]
    assert df["status"].to_list() == ["filled", "filled", "filled", "rejected", "accepted"]
    assert df["reason"].to_list() == [None, None, None, "insufficient cash", None]
    assert df["closed_timestamp"].null_count() == 1
    assert df["closed_timestamp"][4] is None
    assert df["asset"].to_list() == ["AAA", "AAA", "BBB", "BBB", "AAA"]


def test_trades_and_open_positions(result):
    trades = result.trades
    # The original columns come first, in this order (more follow: tests/test_metrics_full.py).
    assert trades.columns[:13] == [
        "asset",
        "direction",
        "entry_timestamp",
        "exit_timestamp",
        "quantity",
        "entry_price",
        "exit_price",
        "pnl",
        "commission",
        "net_pnl",
        "return_pct",
        "entry_order_id",
        "exit_order_id",
    ]
    assert trades.schema["direction"] == pl.String
    assert trades.schema["entry_timestamp"] == pl.Datetime("ns", NY)
    row = trades.row(0, named=True)
    assert row["asset"] == "AAA" and row["direction"] == "long"
    assert row["quantity"] == 4.0 and row["pnl"] == 40.0
    assert row["commission"] == pytest.approx(0.9)  # 1.0 * 4/10 + 0.5
    assert (row["entry_order_id"], row["exit_order_id"]) == (1, 2)

    pos = result.open_positions
    assert pos.schema == pl.Schema(
        {
            "asset": pl.String,
            "direction": pl.String,
            "quantity": pl.Float64,
            "entry_timestamp": pl.Datetime("ns", NY),
            "entry_price": pl.Float64,
            "entry_order_id": pl.Int64,
        }
    )
    assert pos["asset"].to_list() == ["AAA", "BBB"]
    assert pos["direction"].to_list() == ["long", "short"]
    assert pos["quantity"].to_list() == [6.0, 5.0]


def test_metrics_and_metrics_frame(result):
    m = result.metrics
    expected = compute_metrics(
        TS,
        [10_000.0, 9_990.0, 10_030.0, 10_050.0],
        10_000.0,
        trade_net_pnl=[39.1],
        fill_commission=[1.0, 0.5, 0.25],
        fill_slippage=[0.2, 0.1, 0.05],
        order_status=[3, 3, 3, 6, 1],
    )
    # Every key compute_metrics gives from these inputs, with the same value (the result
    # adds trade-detail and exposure metrics from inputs this call does not pass).
    assert expected.keys() <= m.keys()
    for key, value in expected.items():
        assert m[key] == pytest.approx(value, nan_ok=True), key
    assert m["num_trades"] == 1 and m["num_rejected"] == 1 and m["num_orders"] == 5
    assert m["final_equity"] == 10_050.0
    assert m["total_commission"] == pytest.approx(1.75)

    frame = result.metrics_frame()
    assert frame.schema == pl.Schema({"metric": pl.String, "value": pl.Float64})
    assert frame["metric"].to_list() == list(m)
    assert frame["value"][frame["metric"].to_list().index("num_fills")] == 3.0


def test_summary_prints_and_returns_every_metric(result):
    buffer = io.StringIO()
    text = result.summary(file=buffer)
    assert buffer.getvalue() == text + "\n"
    for name in result.metrics:
        assert name in text, name
    lines = text.splitlines()
    body = [line for line in lines if line.split() and line.split()[0] in result.metrics]
    assert len({len(line) for line in body}) == 1  # right-aligned to one width
    assert NY in text


def test_summary_defaults_to_stdout(capsys):
    text = make_result().summary()
    assert capsys.readouterr().out == text + "\n"


def test_repr_is_short(result):
    text = repr(result)
    assert text.startswith("<BacktestResult") and "\n" not in text and len(text) < 120
    assert "4 bars" in text and "+0.50%" in text


def test_empty_run():
    args = run_args()
    empty = make_result(
        **{table: {k: [] for k in args[table]} for table in ("equity", "fills", "orders")}
    )
    assert empty.final_equity == 10_000.0
    assert empty.equity.height == 0 and empty.equity.schema["timestamp"] == pl.Datetime("ns", NY)
    assert empty.trades.height == empty.open_positions.height == empty.orders.height == 0
    assert empty.metrics["total_return"] == 0.0
    assert math.isnan(empty.metrics["sharpe"])
    assert "sharpe" in empty.summary(file=io.StringIO())


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"tz": "Not/AZone"}, "time zone"),
        ({"asset_names": ("AAA",)}, "asset id"),
        ({"periods_per_year": 0.0}, "periods_per_year"),
    ],
)
def test_invalid_inputs_raise(overrides, message):
    with pytest.raises(ValueError, match=message):
        make_result(**overrides)


def test_invalid_tables_raise():
    fills, orders = run_args()["fills"], run_args()["orders"]
    with pytest.raises(ValueError, match="missing columns"):
        make_result(fills={k: v for k, v in fills.items() if k != "price"})
    with pytest.raises(ValueError, match="equal length"):
        make_result(fills=fills | {"price": fills["price"][:2]})
    with pytest.raises(ValueError, match="order status"):
        make_result(orders=orders | {"status": np.array([3, 3, 3, 9, 1])})
    with pytest.raises(ValueError, match="reason"):
        make_result(orders=orders | {"reason": [""]})


@pytest.mark.parametrize("name", ["ORDER_TYPE_NAMES", "ORDER_STATUS_NAMES", "TIF_NAMES",
                                  "ORIGIN_NAMES"])
def test_code_names_match_the_compiled_core(name):
    # the results package decodes the engine's codes without importing it
    import mlbacktest._events as events
    import mlbacktest.results.result as result

    assert getattr(result, name) == getattr(events, name)


# -- rejected orders: counted by reason, in the summary, and warned about ---------------------


def _rejecting(statuses: list[int], reasons: list[str]) -> BacktestResult:
    """make_result with the five orders given these statuses and reasons."""
    orders = run_args()["orders"]
    return make_result(orders=orders | {"status": np.array(statuses, dtype=np.int8),
                                        "reason": reasons})


SHORT = ("short selling is not allowed (allow_short=False, a cash account's default; "
         "set allow_short=True or account='margin')")


def test_rejection_reasons_group_by_kind_most_frequent_first():
    cash = "insufficient cash: the fill needed {:.2f} but only 10.00 was available"
    res = _rejecting(
        [6, 6, 6, 6, 6],
        [cash.format(20), SHORT, cash.format(30),
         "", "max_open_positions reached: the fill would open another position"],
    )
    assert res.rejection_reasons.to_dicts() == [
        {"reason": "insufficient cash", "orders": 2},
        {"reason": "max_open_positions reached", "orders": 1},  # ties: by reason
        {"reason": "no reason recorded", "orders": 1},
        {"reason": SHORT, "orders": 1},
    ]
    assert res.rejection_text(top=2) == (
        "rejected orders: 5 of 5 (100.0 %); top reasons: insufficient cash 2; "
        "max_open_positions reached 1; 2 other reasons"
    )


def test_summary_ends_with_rejected_orders_and_reasons(result):
    text = result.summary(file=io.StringIO())
    assert text.splitlines()[-1] == (
        "rejected orders: 1 of 5 (20.0 %); top reasons: insufficient cash 1"
    )
    clean = _rejecting([3, 3, 3, 3, 1], [""] * 5)
    assert clean.rejection_reasons.height == 0
    assert clean.rejection_text() == "rejected orders: 0 of 5"
    assert "rejected orders:" not in clean.summary(file=io.StringIO())


def test_warning_only_when_more_than_half_the_orders_are_rejected():
    from mlbacktest.errors import RejectedOrdersWarning
    from mlbacktest.results.result import REJECTED_WARNING_FRACTION, warn_if_mostly_rejected

    assert REJECTED_WARNING_FRACTION == 0.5
    cash = "insufficient cash: the fill needed 20.00 but only 10.00 was available"
    half = _rejecting([6, 6, 3, 3, 1], [cash, cash, "", "", ""])  # 2 of 5: no warning
    assert warn_if_mostly_rejected(half) is half
    most = _rejecting([6, 6, 6, 3, 1], [cash] * 3 + ["", ""])
    with pytest.warns(RejectedOrdersWarning) as caught:
        warn_if_mostly_rejected(most)
    assert len(caught) == 1
    message = str(caught[0].message)
    assert "rejected orders: 3 of 5 (60.0 %); top reasons: insufficient cash 3" in message
    assert "order_target_percent" in message and "0.001 = 10 bps" in message
    assert caught[0].filename == __file__  # points at the caller, not at mlbacktest
    assert issubclass(RejectedOrdersWarning, UserWarning)


def test_a_run_rejecting_most_orders_warns_once_and_can_be_made_an_error():
    import warnings

    import mlbacktest as mb
    from mlbacktest.data.synthetic import synthetic_bars

    class TenMeansTenPercent(mb.Strategy):
        def on_market_data(self, event, context):
            self.order_target_percent(event.asset, 10)  # 1,000 % of equity

    bars = synthetic_bars(n_assets=2, n_bars=10, seed=1)
    with pytest.warns(mb.RejectedOrdersWarning, match="insufficient cash") as caught:
        res = mb.run_backtest(bars, TenMeansTenPercent())
    assert len(caught) == 1 and caught[0].filename == __file__
    assert res.rejection_reasons["reason"].to_list() == ["insufficient cash"]
    assert "rejected orders:" in res.summary(file=io.StringIO())
    with warnings.catch_warnings():
        warnings.simplefilter("error", mb.RejectedOrdersWarning)
        with pytest.raises(mb.RejectedOrdersWarning):
            mb.run_backtest(bars, TenMeansTenPercent())

    class Sensible(mb.Strategy):
        def on_market_data(self, event, context):
            self.order_target_percent(event.asset, 0.1)

    mb.run_backtest(bars, Sensible())  # the module's filter turns any warning into an error
