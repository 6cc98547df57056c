"""Minute-mode costs and order sizing in zipline style (run unmodified by zipline and the shim).

Exercises VolumeShareSlippage and PerShare with a minimum on minute bars (the
price impact grows with the share of each minute's volume taken; AAPL is thin),
order_target_value, order_percent, order_value, get_open_orders() for every
asset, data.is_stale, history of "price" at "1m" and of "volume" at "1d", and
schedule_function at week_end / month_start with time rules.
"""

from zipline.api import (
    date_rules,
    get_open_orders,
    order_percent,
    order_target_value,
    order_value,
    record,
    schedule_function,
    set_commission,
    set_slippage,
    sid,
    symbol,
    time_rules,
)
from zipline.finance import commission, slippage


def initialize(context):
    set_slippage(slippage.VolumeShareSlippage(volume_limit=0.05, price_impact=0.2))
    set_commission(commission.PerShare(cost=0.005, min_trade_cost=1.0))
    context.aapl = symbol("AAPL")
    context.ibm = sid(1)
    context.flip = 1
    schedule_function(swing, date_rules.every_day(), time_rules.market_open(hours=1, minutes=5))
    schedule_function(unwind, date_rules.week_end(), time_rules.market_close(minutes=5))
    schedule_function(add, date_rules.month_start(), time_rules.market_open())


def swing(context, data):
    prices = data.history(context.aapl, "price", 20, "1m")
    volumes = data.history([context.aapl, context.ibm], "volume", 2, "1d")
    context.flip = -context.flip
    target = 150_000 if prices.iloc[-1] > prices.mean() else 60_000
    order_target_value(context.aapl, target)
    order_percent(context.ibm, 0.03 * context.flip)
    record(open_orders=sum(len(v) for v in get_open_orders().values()),
           vol_today=float(volumes[context.aapl].iloc[-1]),
           vol_before=float(volumes[context.ibm].iloc[0]),
           stale=bool(data.is_stale(context.aapl)))


def unwind(context, data):
    for asset in list(context.portfolio.positions):
        if asset == context.aapl:
            order_target_value(asset, 0)
    record(positions_value=context.portfolio.positions_value)


def add(context, data):
    order_value(context.ibm, 25_000)
