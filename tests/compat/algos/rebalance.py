"""Weekly momentum rebalance in zipline style (run unmodified by zipline and the shim).

Exercises schedule_function (week_start, month_end with an offset), data.history
on several assets, can_trade, order_target_percent, get_open_orders, cancel_order,
record, context.portfolio, PerShare with a minimum and FixedBasisPointsSlippage
with a volume limit that binds (the IBM bars are thin), so orders fill in parts.
"""

from zipline.api import (
    cancel_order,
    date_rules,
    get_open_orders,
    order_target_percent,
    order_value,
    record,
    schedule_function,
    symbols,
    time_rules,
)
from zipline.finance import commission, slippage


def initialize(context):
    context.assets = symbols("AAPL", "MSFT", "IBM")
    context.set_commission(commission.PerShare(cost=0.005, min_trade_cost=1.0))
    context.set_slippage(slippage.FixedBasisPointsSlippage(basis_points=7, volume_limit=0.1))
    schedule_function(rebalance, date_rules.week_start(), time_rules.market_open(minutes=30))
    schedule_function(top_up, date_rules.month_end(days_offset=1), time_rules.market_close())
    context.weeks = 0


def rebalance(context, data):
    context.weeks += 1
    prices = data.history(context.assets, "price", 20, "1d")
    momentum = prices.iloc[-1] / prices.iloc[0] - 1.0
    ranked = momentum.sort_values(ascending=False)
    weights = {asset: w for asset, w in zip(ranked.index, (0.5, 0.3, 0.0), strict=True)}
    for asset in context.assets:
        for open_order in get_open_orders(asset):
            cancel_order(open_order)
        if data.can_trade(asset):
            order_target_percent(asset, weights[asset])
    record(weeks=context.weeks, best=ranked.index[0].symbol)


def top_up(context, data):
    cash = context.portfolio.cash
    asset = context.assets[1]
    if cash > 0.05 * context.portfolio.portfolio_value and not get_open_orders(asset):
        order_value(asset, 0.5 * cash)


def handle_data(context, data):
    record(
        cash=context.portfolio.cash,
        n_open=sum(len(v) for v in get_open_orders().values()),
        aapl_close=data.current(context.assets[0], "close"),
        ibm_volume=data.current(context.assets[2], "volume"),
    )
