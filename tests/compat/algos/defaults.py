"""zipline's default costs and fills: no set_commission / set_slippage.

Orders placed at one close fill at the next session's close, at 5 bps against the
order, at most 10 % of that bar's volume (the rest carries over), and pay
0.001 per share. order_percent and order_target size from portfolio_value at
the current price.
"""

from zipline.api import order_percent, order_target, record, sid


def initialize(context):
    context.day = 0


def handle_data(context, data):
    context.day += 1
    thin = sid(0)
    if context.day % 40 == 1:
        order_percent(thin, 0.6)
    elif context.day % 40 == 21:
        order_target(thin, 0)
    record(held=context.portfolio.positions[thin].amount,
           basis=context.portfolio.positions[thin].cost_basis)
