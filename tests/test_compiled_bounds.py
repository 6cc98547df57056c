"""Every entry point of the compiled classes reachable from Python checks its indices.

Only internal ``cdef`` code reads memory unchecked. Each test passes an
out-of-range asset id, order id, row number, status code or array length to
one ``def``/``cpdef`` method and expects a clear exception (an unchecked read
would return garbage or kill the interpreter).
"""

from __future__ import annotations

import numpy as np
import pytest

from mlbacktest import OrderError, Strategy
from mlbacktest._broker import Broker
from mlbacktest._clock import Clock
from mlbacktest._engine import Engine
from mlbacktest._events import BarStore
from mlbacktest._fifo import match_fills
from mlbacktest._portfolio import Portfolio, round_whole_array


def _store(n_assets: int = 2, n_bars: int = 3, asset=None, names=None) -> BarStore:
    n = n_assets * n_bars
    ts = np.repeat(np.arange(n_bars, dtype=np.int64) * 86_400_000_000_000, n_assets)
    ids = np.tile(np.arange(n_assets, dtype=np.int32), n_bars) if asset is None else asset
    px = np.full(n, 100.0)
    names = [f"A{i}" for i in range(n_assets)] if names is None else names
    return BarStore(ts, ids, px, px, px, px, np.full(n, 1e6), np.zeros((n, 0)), names, ())


def _broker(n_assets: int = 2) -> tuple[BarStore, Portfolio, Broker]:
    store = _store(n_assets)
    pf = Portfolio(n_assets, 1_000.0)
    return store, pf, Broker(store, pf)


def _engine(store: BarStore, clock: Clock, broker: Broker, pf: Portfolio) -> Engine:
    return Engine(store, clock, broker, pf, Strategy(), {})


# ---------------------------------------------------------------- Portfolio
@pytest.mark.parametrize("asset", [2, 5, 50_000_000, -1, -50_000_000])
def test_unrealized_pnl_checks_the_asset(asset):
    with pytest.raises(IndexError, match=f"asset id {asset} out of range.*2 assets"):
        Portfolio(2, 1_000.0).unrealized_pnl(asset)


def test_portfolio_checks_its_size_and_cash():
    with pytest.raises(ValueError, match="n_assets must be >= 0"):
        Portfolio(-1, 1_000.0)
    with pytest.raises(ValueError, match="initial_cash must be a finite number"):
        Portfolio(2, float("nan"))


def test_round_whole_array_takes_a_1d_array():
    with pytest.raises(ValueError, match="1-d array"):
        round_whole_array(np.zeros((2, 2)))


# ---------------------------------------------------------------- BarStore
@pytest.mark.parametrize("bad", [2, -1, 1_000_000])
def test_bar_store_checks_asset_ids_against_its_names(bad):
    asset = np.array([0, 1, 0, bad, 0, 1], dtype=np.int32)
    with pytest.raises(ValueError, match=f"asset id {bad} at row 3 is out of range: 2 asset"):
        _store(asset=asset)


# ---------------------------------------------------------------- Broker / OrderBook
def test_broker_needs_a_store_and_portfolio_of_one_run():
    with pytest.raises(ValueError, match="store has 3 assets but the portfolio 2"):
        Broker(_store(3), Portfolio(2, 1_000.0))


@pytest.mark.parametrize("asset", [2, 99, -2])
def test_set_rules_and_open_order_ids_check_the_asset(asset):
    _, _, broker = _broker()
    with pytest.raises(IndexError, match=f"asset id {asset} out of range"):
        broker.set_rules(asset, 0.1, float("nan"), float("nan"), 0)
    with pytest.raises(IndexError, match=f"asset id {asset} out of range"):
        broker.open_order_ids(asset)


@pytest.mark.parametrize("start", [-1, 1, 10**9])
def test_fill_arrays_checks_the_start(start):
    _, _, broker = _broker()
    with pytest.raises(IndexError, match=f"fill start {start} out of range: 0 fills"):
        broker.fill_arrays(start)


def test_set_store_checks_the_asset_count():
    _, _, broker = _broker()
    with pytest.raises(ValueError, match="new store has 3 assets, the run 2"):
        broker.set_store(_store(3))


@pytest.mark.parametrize("order_id", [0, 5, -1, 2**40])
def test_order_ids_are_checked(order_id):
    _, _, broker = _broker()
    with pytest.raises(KeyError, match=f"no order with id {order_id}"):
        broker.view(order_id)
    with pytest.raises(OrderError, match=f"no order with id {order_id}"):
        broker.replace(order_id, 1.0, float("nan"), float("nan"), 0, 100.0)
    with pytest.raises(OrderError, match="no order with id"):
        broker.link_oco([order_id, order_id + 1])


@pytest.mark.parametrize("status", [-1, 7, 100])
def test_status_event_checks_the_status_code(status):
    _, _, broker = _broker()
    with pytest.raises(ValueError, match=f"unknown order status code {status}"):
        broker.status_event(0, status)


# ---------------------------------------------------------------- Engine and Clock
def test_engine_submit_many_checks_asset_ids():
    store, pf, broker = _broker()
    engine = _engine(store, Clock(), broker, pf)
    for bad in (2, -1, 1_000):
        with pytest.raises(OrderError, match=f"unknown asset id {bad} at position 1"):
            engine.submit_many(np.array([0, bad], dtype=np.int32), np.array([1.0, 1.0]))
    assert len(broker) == 0


def test_engine_submit_and_cancel_check_ids():
    store, pf, broker = _broker()
    engine = _engine(store, Clock(), broker, pf)
    with pytest.raises(OrderError, match="unknown asset id 7"):
        engine.submit(7, 1.0)
    with pytest.raises(OrderError, match="no order with id 3"):
        engine.cancel(3)
    with pytest.raises(OrderError, match="parent must be an order id >= 0"):
        engine.submit(0, 1.0, parent=-5)


def test_engine_refuses_a_clock_stream_beyond_the_store():
    store, pf, broker = _broker()  # 6 rows
    clock = Clock()
    clock.add_stream(np.array([0, 1], dtype=np.int64), np.array([0, 2, 60]), 0)
    with pytest.raises(IndexError, match="bar stream 0 reaches row 60 but the store has 6 rows"):
        _engine(store, clock, broker, pf)


def test_engine_refuses_parts_of_different_runs():
    store, pf, broker = _broker()
    with pytest.raises(ValueError, match="of one run"):
        Engine(store, Clock(), broker, Portfolio(2, 1_000.0), Strategy(), {})


def test_clock_checks_offsets_and_stream_numbers():
    clock = Clock()
    with pytest.raises(ValueError, match="row numbers >= 0, got -4"):
        clock.add_stream(np.array([0], dtype=np.int64), np.array([-4, 2]), 0)
    with pytest.raises(ValueError, match="no stream 3"):
        clock.refill_stream(3, np.array([5], dtype=np.int64), np.array([0, 1]))


def test_an_order_arrival_for_an_unknown_order_is_refused():
    store, pf, broker = _broker()
    clock = Clock()
    clock.add_stream(np.array([0], dtype=np.int64), np.array([0, 2]), 0)
    clock.add_order_arrival(0, -1, 50_000_000)
    engine = _engine(store, clock, broker, pf)
    with pytest.raises(IndexError, match="unknown order id 50000000"):
        engine.run()


# ---------------------------------------------------------------- FIFO matching
def _fills(n: int = 2):
    return dict(
        ts=np.arange(n, dtype=np.int64), asset=np.zeros(n, dtype=np.int32),
        order_id=np.arange(n, dtype=np.int64), quantity=np.array([1.0, -1.0][:n]),
        price=np.full(n, 10.0), commission_per_unit=np.zeros(n),
        slippage_per_unit=np.zeros(n),
    )


def _match(order, fills, n_assets=1):
    f = fills
    return match_fills(np.asarray(order, dtype=np.int64), f["ts"], f["asset"], f["order_id"],
                       f["quantity"], f["price"], f["commission_per_unit"],
                       f["slippage_per_unit"], n_assets, 1e-9)


def test_match_fills_works_on_good_input():
    matches, lots = _match([0, 1], _fills())
    assert matches["quantity"].tolist() == [1.0]


@pytest.mark.parametrize("bad", [2, -1, 10**12])
def test_match_fills_checks_fill_positions(bad):
    with pytest.raises(IndexError, match=f"order\\[1\\] = {bad} is not a fill position"):
        _match([0, bad], _fills())


def test_match_fills_checks_lengths_and_assets():
    f = _fills()
    f["price"] = np.full(1, 10.0)
    with pytest.raises(ValueError, match="price has 1 entries but ts has 2"):
        _match([0, 1], f)
    with pytest.raises(ValueError, match="order has 3 entries for 2 fills"):
        _match([0, 1, 1], _fills())
    with pytest.raises(ValueError, match="outside"):
        _match([0, 1], _fills(), n_assets=0)
    with pytest.raises(ValueError, match="n_assets must be >= 0"):
        _match([0, 1], _fills(), n_assets=-1)


# ----------------------------------------------------------------- indicator kernels
def test_indicator_kernels_refuse_rows_columns_or_state_that_do_not_fit():
    from mlbacktest.indicators import _kernels as K

    x, out, state = np.ones(4), np.empty(4), np.zeros((2, 8))
    ts, asset = np.arange(4), np.array([0, 1, 0, 1], np.int32)
    rows = K.Rows(ts, asset, 0, 2)
    assert rows.in_row_order
    with pytest.raises(ValueError, match="row 2 has asset 2, outside the 2 state rows"):
        K.Rows(ts, np.array([0, 1, 2, 0], np.int32), 0, 2)
    with pytest.raises(ValueError, match="start row 5 is outside the 4 rows"):
        K.Rows(ts, asset, 5, 2)
    with pytest.raises(ValueError, match="ts has 3 rows but asset has 4"):
        K.Rows(ts[:3], asset, 0, 2)
    with pytest.raises(ValueError, match="an input has 3 rows but the store has 4"):
        K.run_window(rows, np.ones(3), state, out, 1, 3, 0.0)
    with pytest.raises(ValueError, match="state has 1 rows for 2 assets"):
        K.run_ema(rows, x, np.zeros((1, 3)), out, 2, 0.5)
    with pytest.raises(ValueError, match="out has 3 rows"):
        K.run_cross(rows, x, x, state, np.empty(3))
    with pytest.raises(ValueError, match="needs a state row of 10 values, got 8"):
        K.run_window(rows, x, state, out, 1, 5, 0.0)
    with pytest.raises(ValueError, match="unknown window mode 99"):
        K.run_window(rows, x, state, out, 99, 2, 0.0)
    with pytest.raises(ValueError, match="high, low and close must have one length"):
        K.run_atr(rows, x, x, np.ones(3), state, out, 2)
    with pytest.raises(ValueError, match="columns of 4 rows"):
        K.run_binop(x, np.ones(3), out, 0)
    with pytest.raises(ValueError, match="unknown operator code 42"):
        K.run_binop(x, x, out, 42)
    unordered = K.Rows(np.array([3, 2, 1, 0]), asset, 0, 2)  # each asset's rows backwards
    assert not unordered.in_row_order
    assert unordered.visit_order.tolist() == [3, 2, 1, 0]


def test_bar_store_refuses_indicator_values_that_do_not_fit():
    n = 3
    store = BarStore(np.arange(n), np.zeros(n, np.int32), *(np.ones(n),) * 5, np.empty((n, 0)),
                     ["A"], [])
    with pytest.raises(ValueError, match=r"shape \(1, 2\) do not fit 1 names and 3 rows"):
        store.set_indicators(np.zeros((1, 2)), ["x"])
    with pytest.raises(ValueError, match=r"do not fit 2 names"):
        store.set_indicators(np.zeros((1, 3)), ["x", "y"])
    with pytest.raises(ValueError, match="duplicate indicator names"):
        store.set_indicators(np.zeros((2, 3)), ["x", "x"])
    with pytest.raises(ValueError, match="indicator name 'close' shadows a bar field"):
        store.set_indicators(np.zeros((1, 3)), ["close"])
    store.set_indicators(np.zeros((2, 3)), ["x"])  # a named row and an anonymous one
    assert store.indicator_names == ("x",) and not store.indicator_array.flags.writeable
# ---------------------------------------------------------------- StrategyCore
def _bound_strategy(n_assets: int = 2) -> Strategy:
    """A Strategy bound to a run of ``n_assets`` x 3 bars, run to its end."""
    import polars as pl

    from mlbacktest import BacktestEngine, PolarsDataFeed

    store = _store(n_assets)
    frame = pl.DataFrame({
        "timestamp": store.ts_array, "asset": [store.asset_names[a] for a in store.asset_array],
        "open": store.open_array, "high": store.high_array, "low": store.low_array,
        "close": store.close_array, "volume": store.volume_array,
    }).with_columns(pl.col("timestamp").cast(pl.Datetime("ns")))
    strategy = Strategy()
    BacktestEngine(PolarsDataFeed(frame), strategy).run()
    return strategy


@pytest.mark.parametrize("aid", [2, -1, 2**40, -(2**40)])
def test_strategy_core_checks_asset_ids(aid):
    s = _bound_strategy()
    with pytest.raises((IndexError, OverflowError)):
        s._history_window(aid, "close", 3)
    with pytest.raises((IndexError, OverflowError)):
        s._to_target(aid, 1.0, 0.0)
    with pytest.raises((IndexError, OverflowError)):
        s._price_for_sizing(aid)


@pytest.mark.parametrize("n", [0, -1])
def test_strategy_core_checks_the_window_length(n):
    with pytest.raises(ValueError, match="n > 0"):
        _bound_strategy()._history_window(0, "close", n)


def test_strategy_core_checks_the_new_store():
    s = _bound_strategy(2)
    with pytest.raises(ValueError, match="new store has 3 assets, the run 2"):
        s._core_set_store(_store(3))
    with pytest.raises(TypeError):
        s._core_set_store(None)


def test_unbound_strategy_core_refuses_every_accessor():
    s = Strategy()
    for call in (lambda: s._history_window(0, "close", 3), lambda: s._to_target(0, 1.0, 0.0),
                 lambda: s._price_for_sizing(0), lambda: s.get_position(0),
                 lambda: s.history(0, "close", 3), lambda: s.buy(0, 1.0),
                 lambda: s.history_panel("close", 3, [0])):
        with pytest.raises(RuntimeError, match="not attached"):
            call()


def test_engine_last_row_has_one_entry_per_asset():
    store, pf, broker = _broker(2)
    engine = _engine(store, Clock(), broker, pf)
    assert engine.last_row_array.tolist() == [-1, -1]


def test_history_refuses_an_engine_row_outside_the_strategy_store():
    s = _bound_strategy(2)  # 2 assets x 3 bars, run to its end: last rows 4 and 5
    s._core_set_store(_store(2, 1))  # a 2-row store
    with pytest.raises(IndexError, match="latest row 4 of asset 0 is outside"):
        s._history_window(0, "close", 2)
    with pytest.raises(IndexError, match="latest row 5 of asset 1 is outside"):
        s.history_panel("close", 2, [1])
