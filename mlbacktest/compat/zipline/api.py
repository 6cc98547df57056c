"""zipline's ``zipline.api``, on mlbacktest.

The functions act on the algorithm being run by
:func:`mlbacktest.compat.zipline.run_algorithm` (or ``mlbacktest run
--zipline``). Calls outside the supported subset raise
:class:`~mlbacktest.errors.PortingError` naming the call and the mlbacktest
way to do it; docs/porting/zipline.md has the table.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pandas as pd  # type: ignore[import-untyped,unused-ignore]

from mlbacktest.compat.zipline._algorithm import API, Asset, Order, ZiplineAlgorithm
from mlbacktest.compat.zipline._rules import calendars, date_rules, time_rules
from mlbacktest.compat.zipline.finance import commission, execution, slippage
from mlbacktest.compat.zipline.finance.slippage import (
    FixedBasisPointsSlippage,
    FixedSlippage,
    VolumeShareSlippage,
)
from mlbacktest.errors import OrderError, PortingError

#: The algorithms running, innermost last (run_algorithm pushes and pops).
_RUNNING: list[ZiplineAlgorithm] = []


def _algo(call: str) -> ZiplineAlgorithm:
    if not _RUNNING:
        raise RuntimeError(f"zipline.api.{call}() was called outside a running algorithm: run "
                           "it with mlbacktest.compat.zipline.run_algorithm(...)")
    return _RUNNING[-1]


# ------------------------------------------------------------ assets
def symbol(symbol_str: str, country_code: Any = None) -> Asset:
    """The asset of a symbol (``Strategy``: assets are named by their string)."""
    return _algo("symbol").symbol(symbol_str)


def symbols(*args: str, **kwargs: Any) -> list[Asset]:
    """The assets of several symbols."""
    algo = _algo("symbols")
    return [algo.symbol(a) for a in args]


def sid(sid: int) -> Asset:
    """The asset of an id (the index of its symbol in the data's sorted symbols)."""
    return _algo("sid").sid(sid)


# ------------------------------------------------------------ orders
def order(asset: Asset, amount: float, limit_price: Any = None, stop_price: Any = None,
          style: Any = None) -> str | None:
    """Order ``amount`` shares (rounded as zipline does); the id, or None for 0 shares."""
    return _algo("order").place(asset, amount, limit_price, stop_price, style, "order")


def order_value(asset: Asset, value: float, limit_price: Any = None, stop_price: Any = None,
                style: Any = None) -> str | None:
    """Order ``value / current price`` shares."""
    algo = _algo("order_value")
    return algo.place(asset, algo.value_amount(asset, value, "order_value"), limit_price,
                      stop_price, style, "order_value")


def order_percent(asset: Asset, percent: float, limit_price: Any = None,
                  stop_price: Any = None, style: Any = None) -> str | None:
    """Order ``percent x portfolio_value`` worth of shares."""
    algo = _algo("order_percent")
    value = algo.portfolio.portfolio_value * percent
    return algo.place(asset, algo.value_amount(asset, value, "order_percent"), limit_price,
                      stop_price, style, "order_percent")


def order_target(asset: Asset, target: float, limit_price: Any = None, stop_price: Any = None,
                 style: Any = None) -> str | None:
    """Order the difference between ``target`` shares and the shares held (open orders are
    not counted, as in zipline)."""
    algo = _algo("order_target")
    return algo.place(asset, target - algo.held(asset), limit_price, stop_price, style,
                      "order_target")


def order_target_value(asset: Asset, target: float, limit_price: Any = None,
                       stop_price: Any = None, style: Any = None) -> str | None:
    """Order toward a position worth ``target`` at the current price."""
    algo = _algo("order_target_value")
    amount = algo.value_amount(asset, target, "order_target_value") - algo.held(asset)
    return algo.place(asset, amount, limit_price, stop_price, style, "order_target_value")


def order_target_percent(asset: Asset, target: float, limit_price: Any = None,
                         stop_price: Any = None, style: Any = None) -> str | None:
    """Order toward ``target x portfolio_value`` at the current price."""
    algo = _algo("order_target_percent")
    value = algo.portfolio.portfolio_value * target
    amount = algo.value_amount(asset, value, "order_target_percent") - algo.held(asset)
    return algo.place(asset, amount, limit_price, stop_price, style, "order_target_percent")


def cancel_order(order_param: Any) -> None:
    """Cancel an open order (an order or its id)."""
    _algo("cancel_order").cancel(order_param)


def get_open_orders(asset: Asset | None = None) -> Any:
    """Open orders of ``asset`` (a list), or of every asset (a dict asset -> list)."""
    return _algo("get_open_orders").open_orders(asset)


def get_order(order_id: str) -> Order:
    """The order with this id."""
    algo = _algo("get_order")
    try:
        oid = int(order_id)
    except (TypeError, ValueError):
        raise OrderError(f"get_order needs an order id, got {order_id!r}") from None
    return Order(algo, oid)


# ------------------------------------------------------------ recording, time
def record(*args: Any, **kwargs: Any) -> None:
    """Record values into the session's row of ``perf`` (they persist until recorded again)."""
    _algo("record").record(args, kwargs)


def get_datetime(tz: Any = None) -> pd.Timestamp:
    """The current session's timestamp, UTC (or in ``tz``)."""
    dt = _algo("get_datetime").current_dt()
    return dt if tz is None else dt.tz_convert(tz)


def schedule_function(func: Callable[..., Any], date_rule: Any = None, time_rule: Any = None,
                      half_days: bool = True, calendar: Any = None) -> None:
    """Run ``func(context, data)`` after ``handle_data`` on the sessions of ``date_rule``.

    Daily runs ignore ``time_rule``, as zipline does.
    """
    _algo("schedule_function").schedule(func, date_rule, time_rule, half_days, calendar)


# ------------------------------------------------------------ pipeline
def attach_pipeline(pipeline: Any, name: str, chunks: Any = None, eager: bool = True) -> Any:
    """Compute ``pipeline`` (built-in factors) before every session; see
    :mod:`mlbacktest.compat.zipline.pipeline`."""
    return _algo("attach_pipeline").attach_pipeline(pipeline, name)


def pipeline_output(name: str) -> pd.DataFrame:
    """The current session's output of an attached pipeline (one row per asset)."""
    return _algo("pipeline_output").pipeline_output(name)


# ------------------------------------------------------------ settings (initialize only)
def set_commission(us_equities: Any = None, us_futures: Any = None) -> None:
    """Set the commission model (``commission.PerShare``, ``PerTrade``, ``PerDollar``)."""
    algo = _algo("set_commission")
    algo.require_initialize("set_commission()")
    if us_futures is not None:
        raise PortingError("set_commission(us_futures=...): the zipline shim trades equities "
                           "only; set BacktestConfig(commission=...) in native mlbacktest")
    if us_equities is not None:
        if not isinstance(us_equities, commission._ZiplineCommission):
            raise PortingError(
                f"set_commission({us_equities!r}): only zipline.finance.commission.PerShare, "
                "PerTrade and PerDollar are translated; write a "
                "mlbacktest.models.CommissionModel subclass natively")
        algo.commission = us_equities.to_model()


def set_slippage(us_equities: Any = None, us_futures: Any = None) -> None:
    """Set the slippage model (``slippage.FixedBasisPointsSlippage``, ``VolumeShareSlippage``,
    ``FixedSlippage``)."""
    algo = _algo("set_slippage")
    algo.require_initialize("set_slippage()")
    if us_futures is not None:
        raise PortingError("set_slippage(us_futures=...): the zipline shim trades equities "
                           "only; set BacktestConfig(slippage_bps=...) in native mlbacktest")
    if us_equities is not None:
        if not isinstance(us_equities, slippage._ZiplineSlippage):
            raise PortingError(
                f"set_slippage({us_equities!r}): only zipline.finance.slippage."
                "FixedBasisPointsSlippage, VolumeShareSlippage, FixedSlippage and NoSlippage "
                "are translated; write a mlbacktest.models.SlippageModel subclass natively")
        algo.slippage = us_equities


def set_long_only(on_error: str = "fail") -> None:
    """Refuse (raise) any order that would leave a position short."""
    algo = _algo("set_long_only")
    if on_error != "fail":
        raise PortingError(f"set_long_only(on_error={on_error!r}): only 'fail' is supported; "
                           "natively, BacktestConfig(allow_short=False) rejects short fills")
    algo.long_only = True


def set_max_leverage(max_leverage: float) -> None:
    """Raise at the end of a session whose gross leverage is above ``max_leverage``."""
    algo = _algo("set_max_leverage")
    if not isinstance(max_leverage, (int, float)) or isinstance(max_leverage, bool) \
            or not max_leverage > 0:
        raise ValueError(f"max_leverage must be a number > 0, got {max_leverage!r}")
    algo.max_leverage = float(max_leverage)


def set_benchmark(benchmark: Any) -> None:
    """Accepted; the shim's ``perf`` has no benchmark columns (compare returns yourself)."""
    _algo("set_benchmark").benchmark = benchmark


# ------------------------------------------------------------ outside the subset
#: zipline.api calls the shim refuses, and the mlbacktest way to do each.
UNSUPPORTED: dict[str, str] = {
    "batch_market_order": "Strategy.order_many(assets, quantities)",
    "order_batch": "Strategy.order_many(assets, quantities)",
    "set_cancel_policy": "orders with time_in_force='day' (Strategy.order(..., "
                         "time_in_force='day'))",
    "set_do_not_order_list": "filter the assets in the strategy before ordering",
    "set_asset_restrictions": "filter the assets in the strategy before ordering",
    "set_max_order_count": "count orders in the strategy (Strategy.open_orders())",
    "set_max_order_size": "cap quantities in the strategy before Strategy.order",
    "set_max_position_size": "BacktestConfig(max_gross_leverage=...) or cap targets in the "
                             "strategy",
    "set_min_leverage": "check Strategy.weights() in the strategy",
    "set_symbol_lookup_date": "assets are named by their symbol for the whole run",
    "fetch_csv": "load the file with polars and join it to the bars as signal columns, or "
                 "pass it as context=ContextFrame(...)",
    "continuous_future": "feed the continuous contract as its own asset",
    "future_symbol": "feed the contract as its own asset",
    "get_environment": "read the run's settings from BacktestConfig",
    "set_realtime_stats": "results are computed after the run (BacktestResult.metrics)",
    "record_vars": "zipline.api.record(name=value)",
    "get_orderbook": "Strategy.open_orders()",
    "EODCancel": "orders with time_in_force='day' (Strategy.order(..., time_in_force='day'))",
    "NeverCancel": "orders stay open until filled or cancelled by default (Strategy.order)",
    "Restriction": "filter the assets in the strategy before ordering",
    "StaticRestrictions": "filter the assets in the strategy before ordering",
    "HistoricalRestrictions": "filter the assets in the strategy before ordering",
}
#: zipline.api attributes that are modules or constants of unsupported features.
_UNSUPPORTED_ATTRS: dict[str, str] = {
    "cancel_policy": "orders with time_in_force='day' (Strategy.order(..., "
                     "time_in_force='day'))",
    "RESTRICTION_STATES": "filter the assets in the strategy before ordering",
    "events": "zipline.api.date_rules / time_rules, or Strategy.schedule natively",
    "math_utils": "numpy",
}


def __getattr__(name: str) -> Any:
    if name in _UNSUPPORTED_ATTRS:
        raise PortingError(f"zipline.api.{name} is not supported by the zipline shim; in "
                           f"mlbacktest: {_UNSUPPORTED_ATTRS[name]}")
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def _unsupported(name: str) -> Callable[..., Any]:
    def call(*args: Any, **kwargs: Any) -> Any:
        raise PortingError(f"zipline.api.{name} is not supported by the zipline shim; "
                           f"in mlbacktest: {UNSUPPORTED[name]}")

    call.__name__ = name
    call.__qualname__ = name
    call.__doc__ = f"Not supported: raises PortingError (in mlbacktest: {UNSUPPORTED[name]})."
    return call


batch_market_order = _unsupported("batch_market_order")
order_batch = _unsupported("order_batch")
set_cancel_policy = _unsupported("set_cancel_policy")
set_do_not_order_list = _unsupported("set_do_not_order_list")
set_asset_restrictions = _unsupported("set_asset_restrictions")
set_max_order_count = _unsupported("set_max_order_count")
set_max_order_size = _unsupported("set_max_order_size")
set_max_position_size = _unsupported("set_max_position_size")
set_min_leverage = _unsupported("set_min_leverage")
set_symbol_lookup_date = _unsupported("set_symbol_lookup_date")
fetch_csv = _unsupported("fetch_csv")
continuous_future = _unsupported("continuous_future")
future_symbol = _unsupported("future_symbol")
get_environment = _unsupported("get_environment")
set_realtime_stats = _unsupported("set_realtime_stats")
record_vars = _unsupported("record_vars")
get_orderbook = _unsupported("get_orderbook")
EODCancel = _unsupported("EODCancel")
NeverCancel = _unsupported("NeverCancel")
Restriction = _unsupported("Restriction")
StaticRestrictions = _unsupported("StaticRestrictions")
HistoricalRestrictions = _unsupported("HistoricalRestrictions")

#: The zipline.api calls the shim translates.
SUPPORTED: tuple[str, ...] = (
    "symbol", "symbols", "sid", "order", "order_value", "order_percent", "order_target",
    "order_target_value", "order_target_percent", "cancel_order", "get_open_orders",
    "get_order", "record", "get_datetime", "schedule_function", "set_commission",
    "set_slippage", "set_long_only", "set_max_leverage", "set_benchmark", "attach_pipeline",
    "pipeline_output",
)

__all__ = [*SUPPORTED, *UNSUPPORTED, "date_rules", "time_rules", "calendars", "commission",
           "slippage", "execution", "FixedBasisPointsSlippage", "FixedSlippage",
           "VolumeShareSlippage"]

API.update({name: globals()[name] for name in (*SUPPORTED, *UNSUPPORTED)})
