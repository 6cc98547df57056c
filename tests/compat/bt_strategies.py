"""Strategies in backtrader style, as source text run with ``bt`` bound to either engine.

Each entry is the text of a module: it defines ``S`` (a ``bt.Strategy``) and
``setup(cerebro)`` (sizer, analyzers, strategy parameters). The tests execute
each text twice, once with ``bt`` = real backtrader and once with ``bt`` =
``mlbacktest.compat.backtrader``.
"""

SOURCES: dict[str, str] = {}

SOURCES["sma_crossover"] = '''
class S(bt.Strategy):
    params = (("fast", 10), ("slow", 30))

    def __init__(self):
        self.cross = {d._name: bt.ind.CrossOver(bt.ind.SMA(d.close, period=self.p.fast),
                                                 bt.ind.SMA(d.close, period=self.p.slow))
                      for d in self.datas}

    def next(self):
        for d in self.datas:
            if self.cross[d._name] > 0 and not self.getposition(d):
                self.buy(data=d)
            elif self.cross[d._name] < 0 and self.getposition(d):
                self.close(data=d)

def setup(cerebro):
    cerebro.addsizer(bt.sizers.FixedSize, stake=25)
    cerebro.addstrategy(S)
'''

SOURCES["rsi_mean_reversion"] = '''
class S(bt.Strategy):
    params = dict(period=14, low=35, high=65)

    def __init__(self):
        self.rsi = bt.indicators.RSI(self.data.close, period=self.p.period)

    def next(self):
        if not self.position and self.rsi[0] < self.p.low:
            self.buy(size=40)
        elif self.position and self.rsi[0] > self.p.high:
            self.sell(size=self.position.size)

def setup(cerebro):
    cerebro.addstrategy(S, low=40, high=60)
'''

SOURCES["bollinger_breakout_bracket"] = '''
class S(bt.Strategy):
    def __init__(self):
        self.bb = bt.ind.BollingerBands(self.data, period=20, devfactor=1.5)
        self.entries = 0

    def next(self):
        if self.position or len(self.broker_orders()):
            return
        if self.data.close[0] > self.bb.top[0]:
            c = self.data.close[0]
            self.buy_bracket(size=30, exectype=bt.Order.Market, stopprice=c * 0.96,
                             limitprice=c * 1.05)
            self.entries += 1

    def broker_orders(self):
        return [o for o in self.open_orders if o.alive()]

    def notify_order(self, order):
        if not hasattr(self, "open_orders"):
            self.open_orders = []
        if order.status == order.Submitted:
            self.open_orders.append(order)
        elif not order.alive():
            self.open_orders = [o for o in self.open_orders if o.ref != order.ref]

    open_orders = []

def setup(cerebro):
    cerebro.addstrategy(S)
'''

SOURCES["atr_trailing_stop"] = '''
class S(bt.Strategy):
    def __init__(self):
        self.atr = bt.ind.ATR(self.data, period=14)
        self.ema = bt.ind.EMA(self.data.close, period=20)
        self.stop_order = None

    def notify_order(self, order):
        if order.status == order.Completed and order.isbuy():
            self.stop_order = self.sell(size=order.executed.size, exectype=bt.Order.StopTrail,
                                        trailamount=2 * self.atr[0])
        elif order.status == order.Completed and order.issell():
            self.stop_order = None

    def next(self):
        if not self.position and self.stop_order is None and self.data.close[0] > self.ema[0] \\
                and self.data.close[-1] <= self.ema[-1]:
            self.buy(size=50)

def setup(cerebro):
    cerebro.addstrategy(S)
'''

SOURCES["multi_data_target_percent"] = '''
class S(bt.Strategy):
    params = (("every", 15),)

    def __init__(self):
        self.roc = [bt.ind.ROC(d.close, period=20) for d in self.datas]

    def next(self):
        if len(self) % self.p.every:
            return
        ranked = sorted(range(len(self.datas)), key=lambda i: self.roc[i][0], reverse=True)
        weights = {ranked[0]: 0.5, ranked[1]: 0.3}
        order = sorted(range(len(self.datas)), key=lambda i: weights.get(i, 0.0))
        for i in order:  # reduce first, then add
            self.order_target_percent(data=self.datas[i], target=weights.get(i, 0.0))

def setup(cerebro):
    cerebro.addstrategy(S)
'''

SOURCES["percent_sizer"] = '''
class S(bt.Strategy):
    def __init__(self):
        self.fast = bt.ind.EMA(period=8)
        self.slow = bt.ind.EMA(period=21)
        self.up = self.fast > self.slow

    def next(self):
        if self.up[0] and not self.position:
            self.buy()
        elif not self.up[0] and self.position:
            self.close()

def setup(cerebro):
    cerebro.addsizer(bt.sizers.PercentSizer, percents=30)
    cerebro.addstrategy(S)
'''

SOURCES["all_in_sizer_int"] = '''
class S(bt.Strategy):
    def __init__(self):
        self.mom = bt.ind.Momentum(self.data.close, period=10)

    def next(self):
        if self.mom[0] > 0 and not self.position:
            self.buy()
        elif self.mom[0] < 0 and self.position:
            self.close()

def setup(cerebro):
    cerebro.addsizer(bt.sizers.AllInSizerInt, percents=90)
    cerebro.addstrategy(S)
'''

SOURCES["notify_order_bookkeeping"] = '''
class S(bt.Strategy):
    def __init__(self):
        self.sma = bt.ind.SMA(period=15)
        self.order = None
        self.events = []
        self.trades = []

    def notify_order(self, order):
        self.events.append((len(self), order.getstatusname(), order.isbuy(),
                            order.executed.size, order.executed.price, order.executed.comm,
                            order.executed.value, order.executed.pnl))
        if order.status in (order.Submitted, order.Accepted):
            return
        self.order = None

    def notify_trade(self, trade):
        self.trades.append((len(self), trade.isopen, trade.isclosed, trade.size, trade.price,
                            trade.pnl, trade.pnlcomm, trade.barlen))

    def next(self):
        if self.order:
            return
        if not self.position:
            if self.data.close[0] < self.sma[0] * 0.99:
                self.order = self.buy(size=20, exectype=bt.Order.Limit,
                                      price=self.data.close[0] * 0.995,
                                      valid=self.data.datetime.date(0) + datetime.timedelta(days=3))
        elif self.data.close[0] > self.sma[0] * 1.01:
            self.order = self.sell(size=20)

    def stop(self):
        self.result = (self.events, self.trades)

def setup(cerebro):
    cerebro.addstrategy(S)
'''

SOURCES["analyzers"] = '''
class S(bt.Strategy):
    def __init__(self):
        self.cross = bt.ind.CrossOver(self.data.close, bt.ind.SMA(period=20))

    def next(self):
        if self.cross > 0:
            self.order_target_size(target=60)
        elif self.cross < 0:
            self.order_target_size(target=-30)

def setup(cerebro):
    cerebro.addanalyzer(bt.analyzers.SharpeRatio, _name="sharpe")
    cerebro.addanalyzer(bt.analyzers.SharpeRatio, _name="sharpe_d",
                        timeframe=bt.TimeFrame.Days, annualize=True, riskfreerate=0.0)
    cerebro.addanalyzer(bt.analyzers.DrawDown, _name="dd")
    cerebro.addanalyzer(bt.analyzers.Returns, _name="ret")
    cerebro.addanalyzer(bt.analyzers.TimeReturn, _name="tr", timeframe=bt.TimeFrame.Months)
    cerebro.addanalyzer(bt.analyzers.TradeAnalyzer, _name="trades")
    cerebro.addstrategy(S)
'''

SOURCES["macd_stochastic_long_short"] = '''
class S(bt.Strategy):
    def __init__(self):
        self.macd = bt.ind.MACD(self.data)
        self.stoch = bt.ind.Stochastic(self.data)
        self.cross = bt.ind.CrossOver(self.macd.macd, self.macd.signal)

    def next(self):
        if self.cross > 0 and self.stoch.percK[0] < 80:
            self.order_target_size(target=40)
        elif self.cross < 0 and self.stoch.percK[0] > 20:
            self.order_target_size(target=-40)

def setup(cerebro):
    cerebro.addstrategy(S)
'''

SOURCES["stop_limit_entries"] = '''
class S(bt.Strategy):
    def __init__(self):
        self.hi = bt.ind.Highest(self.data.high, period=10)
        self.lo = bt.ind.Lowest(self.data.low, period=10)
        self.pending = []

    def notify_order(self, order):
        if not order.alive():
            self.pending = [o for o in self.pending if o.ref != order.ref]

    def next(self):
        if self.pending:
            return
        if not self.position:
            o = self.buy(size=15, exectype=bt.Order.Stop, price=self.hi[0])
            p = self.buy(size=15, exectype=bt.Order.StopLimit, price=self.hi[0] * 1.002,
                         plimit=self.hi[0] * 1.01)
            self.pending = [o, p]
        else:
            self.pending = [self.sell(size=self.position.size, exectype=bt.Order.Limit,
                                      price=self.data.close[0] * 1.02),]
            self.pending.append(self.sell(size=self.position.size, exectype=bt.Order.Stop,
                                          price=self.lo[0], oco=self.pending[0]))

def setup(cerebro):
    cerebro.addstrategy(S)
'''

SOURCES["line_arithmetic"] = '''
class S(bt.Strategy):
    def __init__(self):
        mean = bt.ind.SMA(self.data.close, period=20)
        self.z = (self.data.close - mean) / bt.ind.StdDev(self.data.close, period=20)
        self.w = bt.ind.WMA(self.data.close, period=10)
        self.up = bt.ind.CrossUp(self.data.close, self.w)
        self.down = bt.ind.CrossDown(self.data.close, self.w)
        self.seen = []

    def next(self):
        self.seen.append((self.z[0], self.w[0], self.w[-2], self.up[0], self.down[0]))
        if self.up[0] and self.z[0] < 1.0:
            self.order_target_value(target=6000)
        elif self.down[0]:
            self.order_target_value(target=0)

    def stop(self):
        self.result = self.seen

def setup(cerebro):
    cerebro.addstrategy(S)
'''

SOURCES["close_orders_and_hooks"] = '''
class S(bt.Strategy):
    def __init__(self):
        self.sma = bt.ind.SMA(period=25)
        self.hooks = []

    def start(self):
        self.hooks.append(("start", len(self)))

    def prenext(self):
        self.hooks.append(("prenext", len(self)))

    def nextstart(self):
        self.hooks.append(("nextstart", len(self)))
        self.next()

    def next(self):
        if len(self) % 7 == 0:
            size = 10 if not self.position else -self.position.size
            if size > 0:
                self.buy(size=size, exectype=bt.Order.Close)
            else:
                self.sell(size=-size, exectype=bt.Order.Close)

    def stop(self):
        self.hooks.append(("stop", len(self)))
        self.result = self.hooks

def setup(cerebro):
    cerebro.addstrategy(S)
'''

SOURCES["short_bracket_limit_entry_trailpercent"] = '''
class S(bt.Strategy):
    def __init__(self):
        self.bb = bt.ind.BollingerBands(self.data, period=15)
        self.working = []

    def notify_order(self, order):
        if order.status == order.Completed and order.isbuy() and not self.position:
            pass
        if not order.alive():
            self.working = [o for o in self.working if o.ref != order.ref]

    def next(self):
        for i, d in enumerate(self.datas[1:], start=1):
            pos = self.getposition(d)
            if pos.size > 0 and len(self) % 9 == 0:
                self.working.append(self.sell(data=d, size=pos.size, exectype=bt.Order.StopTrail,
                                              trailpercent=0.03))
            elif not pos and len(self) % 17 == i:
                self.working.append(self.buy(data=d, size=12))
        if self.working or self.position:
            return
        c = self.data.close[0]
        if c < self.bb.lines.bot[0]:
            self.working = self.sell_bracket(size=20, price=c * 1.002, stopprice=c * 1.04,
                                             limitprice=c * 0.95)

def setup(cerebro):
    cerebro.addstrategy(S)
'''

SOURCES["all_in_sizer_margin"] = '''
class S(bt.Strategy):
    def __init__(self):
        self.sma = bt.ind.SMA(period=5)

    def next(self):
        if self.data.close[0] > self.sma[0] and not self.position:
            self.buy()
        elif self.data.close[0] < self.sma[0] and self.position:
            self.close()

def setup(cerebro):
    cerebro.addsizer(bt.sizers.AllInSizer)
    cerebro.addstrategy(S)
'''

SOURCES["custom_sizer_and_params_dict"] = '''
class Risk(bt.Sizer):
    params = (("risk", 0.02),)

    def _getsizing(self, comminfo, cash, data, isbuy):
        if not isbuy:
            return self.broker.getposition(data).size
        return int(cash * self.p.risk / (data.close[0] * 0.05))


class S(bt.Strategy):
    params = {"period": 12}

    def __init__(self):
        self.roc = bt.ind.ROC(self.data0, period=self.params.period)
        self.hi = bt.ind.Highest(self.data0.close, period=self.p.period)

    def next(self):
        if not self.position and self.data0.close[0] >= self.hi[-1] and self.roc[0] > 0:
            self.buy()
        elif self.position and self.roc[0] < 0:
            self.sell()

def setup(cerebro):
    cerebro.addsizer(Risk, risk=0.03)
    cerebro.addstrategy(S, period=15)
'''

SOURCES["cancel_bracket_leg_and_oco_member"] = '''
class S(bt.Strategy):
    def __init__(self):
        self.legs = []
        self.oco = []

    def notify_order(self, order):
        if order.status == order.Completed and order.isbuy() and order.data is self.data1:
            size = order.executed.size
            first = self.sell(data=self.data1, size=size, exectype=bt.Order.Limit,
                              price=order.executed.price * 1.2)
            second = self.sell(data=self.data1, size=size, exectype=bt.Order.Stop,
                               price=order.executed.price * 0.8, oco=first)
            third = self.sell(data=self.data1, size=size, exectype=bt.Order.Stop,
                              price=order.executed.price * 0.7, oco=first)
            self.oco = [first, second, third]
            self.oco_bar = len(self)

    def next(self):
        if len(self) % 30 == 5 and not self.position:
            self.legs = self.buy_bracket(size=10, exectype=bt.Order.Market,
                                         stopprice=self.data.close[0] * 0.5,
                                         limitprice=self.data.close[0] * 1.5)
            self.leg_bar = len(self)
        elif self.legs and len(self) == self.leg_bar + 4:
            self.cancel(self.legs[1])  # the stop leg: the take-profit goes too
        elif self.position and len(self) % 30 == 20:
            self.close()
        if len(self) % 40 == 7 and not self.getposition(self.data1):
            self.buy(data=self.data1, size=5)
        elif self.oco and len(self) == self.oco_bar + 3:
            self.cancel(self.oco[1])  # a member: the whole group goes
        elif self.getposition(self.data1) and len(self) % 40 == 30:
            self.close(data=self.data1)

def setup(cerebro):
    cerebro.addstrategy(S)
'''

SOURCES["data_arithmetic_macdhisto_aliases"] = '''
class S(bt.Strategy):
    def __init__(self):
        self.sma = bt.ind.SMA(self.data, period=12)
        self.gap = (self.data - self.sma) / self.sma
        self.above = self.data > self.sma
        self.mh = bt.ind.MACDHisto(self.data)
        self.rsi = bt.ind.RSI(self.data)
        self.seen = []

    def next(self):
        self.seen.append((self.gap[0], self.above[0], self.mh.histo[0], self.mh.lines.signal[0],
                          self.sma.lines.sma[0], self.sma.sma[-1], self.rsi.lines.rsi[0]))
        if self.mh.histo[0] > 0 and self.mh.histo[-1] <= 0 and not self.position:
            self.buy(size=30)
        elif self.mh.histo[0] < 0 and self.position:
            self.close()

    def stop(self):
        self.result = self.seen

def setup(cerebro):
    cerebro.addstrategy(S)
'''
