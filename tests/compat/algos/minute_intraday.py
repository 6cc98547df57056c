"""An intraday algorithm in zipline style for minute mode (run unmodified by zipline and the shim).

Exercises handle_data every minute, schedule_function at market_open(minutes=N),
market_close(minutes=N) and the default time rule (every minute), data.history
at "1m" and at "1d" (the current session partial), data.current, can_trade,
before_trading_start, order_target_percent, order, get_open_orders, cancel_order,
record and context.portfolio, with zipline's default costs (5 bps, at most 10 %
of a minute's volume: the AAPL minutes are thin, so orders fill over several
minutes and carry across the close into the next session).
"""

from zipline.api import (
    cancel_order,
    date_rules,
    get_datetime,
    get_open_orders,
    order,
    order_target_percent,
    record,
    schedule_function,
    symbol,
    symbols,
    time_rules,
)


def initialize(context):
    context.assets = symbols("AAPL", "IBM", "MSFT")
    context.minutes = 0
    context.fired = 0
    schedule_function(rebalance, date_rules.every_day(), time_rules.market_open(minutes=30))
    schedule_function(trim, date_rules.every_day(), time_rules.market_close(minutes=15))
    schedule_function(late, date_rules.week_start(), time_rules.market_close())
    schedule_function(count)


def before_trading_start(context, data):
    days = data.history(context.assets, "close", 2, "1d")
    context.gap = (days.iloc[-1] / days.iloc[0] - 1.0).to_dict()
    context.prev_close = data.current(symbol("IBM"), "price")


def count(context, data):
    context.fired += 1


def rebalance(context, data):
    recent = data.history(context.assets, "price", 45, "1m")
    momentum = recent.iloc[-1] / recent.mean() - 1.0
    best = momentum.idxmax()
    for asset in context.assets:
        for o in get_open_orders(asset):
            cancel_order(o)
        if data.can_trade(asset):
            order_target_percent(asset, 0.45 if asset == best else 0.2)
    day = data.history(best, ["open", "high", "low", "close", "volume"], 3, "1d")
    record(best=best.symbol, day_range=float(day["high"].iloc[-1] - day["low"].iloc[-1]),
           day_volume=float(day["volume"].iloc[-1]), day_open=float(day["open"].iloc[-1]))


def trim(context, data):
    aapl = context.assets[0]
    if not get_open_orders(aapl):
        order_target_percent(aapl, 0.05)
    record(trim_minute=get_datetime().minute)


def late(context, data):
    # last minute but one of the week's first session: the rest fills the next session
    order(context.assets[1], 300)


def handle_data(context, data):
    context.minutes += 1
    if context.minutes % 97 == 0:
        msft = context.assets[2]
        bar = data.current(msft, ["open", "close", "volume"])
        order(msft, 40 if bar["close"] >= bar["open"] else -25)
    record(minutes=context.minutes, fired=context.fired,
           pv=context.portfolio.portfolio_value, cash=context.portfolio.cash,
           ibm=data.current(context.assets[1], "price"),
           gap=context.gap[context.assets[0]], prev_close=context.prev_close)
