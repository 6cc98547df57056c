"""``bt.analyzers``: SharpeRatio, DrawDown, Returns, TimeReturn with backtrader's keys.

Each analyzer sees the value and cash of every bar (after the bar's fills,
before ``next``: backtrader's ``notify_fund``) and the order and trade
notifications, and computes what backtrader's does from them.
"""

from __future__ import annotations

import datetime as _dt
import math
from typing import Any

from mlbacktest.errors import PortingError

from ._core import _WithParams
from ._lines import num2date

__all__ = ["Analyzer", "TimeFrame", "SharpeRatio", "DrawDown", "Returns", "TimeReturn",
           "TradeAnalyzer"]


class TimeFrame:
    """backtrader's time frame constants."""

    (Ticks, MicroSeconds, Seconds, Minutes, Days, Weeks, Months, Years, NoTimeFrame) = range(1, 10)
    Names = ["", "Ticks", "MicroSeconds", "Seconds", "Minutes", "Days", "Weeks", "Months",
             "Years", "NoTimeFrame"]


def _key(tf: int, dt: _dt.datetime) -> tuple[int, Any]:
    if tf == TimeFrame.Years:
        return dt.year, _dt.date(dt.year, 12, 31)
    if tf == TimeFrame.Months:
        import calendar

        last = calendar.monthrange(dt.year, dt.month)[1]
        return dt.year * 100 + dt.month, _dt.datetime(dt.year, dt.month, last)
    if tf == TimeFrame.Days:
        return dt.toordinal(), _dt.datetime(dt.year, dt.month, dt.day, 23, 59, 59, 999990)
    raise PortingError(f"analyzer timeframe {TimeFrame.Names[tf]} is not supported "
                       "(Days, Months, Years); natively, resample BacktestResult.equity")


class Analyzer(_WithParams):
    """Base of analyzers: ``get_analysis()`` returns the results dict."""

    strategy: Any = None
    datas: Any = None
    data: Any = None

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.rets: dict[str, Any] = {}

    def start(self) -> None:
        """Called before the first bar."""

    def stop(self) -> None:
        """Called after the last bar."""

    def notify_order(self, order: Any) -> None:
        """Each order notification."""

    def notify_trade(self, trade: Any) -> None:
        """Each trade notification."""

    def _bar(self, dt: float, cash: float, value: float) -> None:
        """Each bar: its time (day number), cash and value."""

    def get_analysis(self) -> dict[str, Any]:
        """The results, with backtrader's keys."""
        return self.rets


class DrawDown(Analyzer):
    """Drawdown now and its maximum: ``len``, ``drawdown`` (%), ``moneydown``, ``max.*``."""

    params = (("fund", None),)

    def start(self) -> None:
        if self.p.fund:
            raise PortingError("DrawDown(fund=True) is not supported (no fund mode)")
        self.rets = {"len": 0, "drawdown": 0.0, "moneydown": 0.0,
                     "max": {"len": 0.0, "drawdown": 0.0, "moneydown": 0.0}}
        self._maxvalue = float("-inf")

    def _bar(self, dt: float, cash: float, value: float) -> None:
        self._maxvalue = max(self._maxvalue, value)
        r, m = self.rets, self.rets["max"]
        r["moneydown"] = moneydown = self._maxvalue - value
        r["drawdown"] = drawdown = 100.0 * moneydown / self._maxvalue
        m["moneydown"] = max(m["moneydown"], moneydown)
        m["drawdown"] = max(m["drawdown"], drawdown)
        r["len"] = r["len"] + 1 if drawdown else 0
        m["len"] = max(m["len"], r["len"])


class TimeReturn(Analyzer):
    """The return of each period (``timeframe``, default the data's: days), keyed by its end."""

    params = (("timeframe", None), ("compression", None), ("fund", None), ("data", None),
              ("firstopen", True))

    def start(self) -> None:
        if self.p.fund or self.p.data is not None or self.p.compression not in (None, 1):
            raise PortingError("TimeReturn(fund=, data=, compression=) is not supported")
        self.timeframe = self.p.timeframe or TimeFrame.Days
        self._lastvalue = self.strategy.broker.getvalue()
        self._value_start = 0.0
        self._cmp: int | None = None
        self.rets = {}

    def _bar(self, dt: float, cash: float, value: float) -> None:
        cmp, key = _key(self.timeframe, num2date(dt))
        if self._cmp is None or cmp > self._cmp:
            self._cmp, self._dtkey = cmp, key
            self._value_start = self._lastvalue
        self.rets[self._dtkey] = (value / self._value_start) - 1.0
        self._lastvalue = value


class SharpeRatio(Analyzer):
    """Sharpe ratio of the period returns (default: yearly) less the risk-free rate.

    ``get_analysis()`` is ``{"sharperatio": ratio}`` (None when undefined).
    """

    params = (("timeframe", TimeFrame.Years), ("compression", 1), ("riskfreerate", 0.01),
              ("factor", None), ("convertrate", True), ("annualize", False),
              ("stddev_sample", False), ("daysfactor", None), ("legacyannual", False),
              ("fund", None))
    RATEFACTORS = {TimeFrame.Days: 252, TimeFrame.Weeks: 52, TimeFrame.Months: 12,
                   TimeFrame.Years: 1}

    def start(self) -> None:
        if self.p.legacyannual or self.p.fund or self.p.compression != 1:
            raise PortingError("SharpeRatio(legacyannual=, fund=, compression=) is not "
                               "supported")
        self.timereturn = TimeReturn(timeframe=self.p.timeframe)
        self.timereturn.strategy = self.strategy
        self.timereturn.start()

    def _bar(self, dt: float, cash: float, value: float) -> None:
        self.timereturn._bar(dt, cash, value)

    def stop(self) -> None:
        returns = list(self.timereturn.get_analysis().values())
        rate = self.p.riskfreerate
        factor = None
        if self.p.timeframe == TimeFrame.Days and self.p.daysfactor is not None:
            factor = self.p.daysfactor
        elif self.p.factor is not None:
            factor = self.p.factor
        elif self.p.timeframe in self.RATEFACTORS:
            factor = self.RATEFACTORS[self.p.timeframe]
        if factor is not None:
            if self.p.convertrate:
                rate = pow(1.0 + rate, 1.0 / factor) - 1.0
            else:
                returns = [pow(1.0 + x, factor) - 1.0 for x in returns]
        ratio: float | None = None
        if len(returns) - self.p.stddev_sample:
            free = [r - rate for r in returns]
            avg = math.fsum(free) / len(free)
            var = [pow(y - avg, 2.0) for y in free]
            dev = math.sqrt(math.fsum(var) / (len(var) - self.p.stddev_sample))
            try:
                ratio = avg / dev
                if factor is not None and self.p.convertrate and self.p.annualize:
                    ratio = math.sqrt(factor) * ratio
            except (ValueError, TypeError, ZeroDivisionError):
                ratio = None
        self.ratio = ratio
        self.rets = {"sharperatio": ratio}


SharpeRatio_A = SharpeRatio


class Returns(Analyzer):
    """Log returns: ``rtot`` (total), ``ravg`` (per period), ``rnorm``, ``rnorm100`` (annual)."""

    params = (("timeframe", None), ("compression", None), ("tann", None), ("fund", None))
    _TANN = {TimeFrame.Days: 252.0, TimeFrame.Weeks: 52.0, TimeFrame.Months: 12.0,
             TimeFrame.Years: 1.0}

    def start(self) -> None:
        if self.p.fund or self.p.compression not in (None, 1):
            raise PortingError("Returns(fund=, compression=) is not supported")
        self.timeframe = self.p.timeframe or TimeFrame.Days
        self._value_start = self.strategy.broker.getvalue()
        self._tcount = 0
        self._cmp: int | None = None
        self._value = self._value_start

    def _bar(self, dt: float, cash: float, value: float) -> None:
        cmp, _ = _key(self.timeframe, num2date(dt))
        if self._cmp is None or cmp > self._cmp:
            self._cmp = cmp
            self._tcount += 1

    def stop(self) -> None:
        end = self.strategy.broker.getvalue()
        try:
            nlrtot = end / self._value_start
        except ZeroDivisionError:
            rtot = float("-inf")
        else:
            rtot = float("-inf") if nlrtot < 0.0 else math.log(nlrtot)
        ravg = rtot / self._tcount
        tann = self.p.tann or self._TANN.get(self.timeframe, 1.0)
        rnorm = math.expm1(ravg * tann) if ravg > float("-inf") else ravg
        self.rets = {"rtot": rtot, "ravg": ravg, "rnorm": rnorm, "rnorm100": rnorm * 100.0}


class _Auto(dict):  # type: ignore[type-arg]
    """A nested dict whose missing keys are new nested dicts, and an empty one adds as 0.

    The shape backtrader's ``TradeAnalyzer`` returns: keys appear in the
    order they are first written, and a counter not yet written reads as
    empty (falsy) and counts from zero.
    """

    def __missing__(self, key: str) -> _Auto:
        child = _Auto()
        self[key] = child
        return child

    def __getattr__(self, key: str) -> Any:
        if key.startswith("__"):
            raise AttributeError(key)
        return self[key]

    def __setattr__(self, key: str, value: Any) -> None:
        self[key] = value

    def __add__(self, other: Any) -> Any:
        return type(other)() + other

    __iadd__ = __radd__ = __add__

    def __sub__(self, other: Any) -> Any:
        return type(other)() - other

    __isub__ = __sub__

    def __mul__(self, other: Any) -> Any:
        return type(other)() * other

    __imul__ = __rmul__ = __mul__

    def plain(self) -> dict[str, Any]:
        """A plain nested ``dict`` copy."""
        return {k: v.plain() if isinstance(v, _Auto) else v for k, v in self.items()}


_BIG = 2**63 - 1


class TradeAnalyzer(Analyzer):
    """Statistics of the closed trades, with backtrader's nested keys.

    ``total`` (``total``, ``open``, ``closed``), ``streak`` (``won`` /
    ``lost``: ``current``, ``longest``), ``pnl`` (``gross`` / ``net``:
    ``total``, ``average``), ``won`` / ``lost`` (``total``, ``pnl``),
    ``long`` / ``short`` (counts and pnl, split won / lost) and ``len`` (bars
    held: total, average, max, min, split won / lost and long / short). A
    trade is won when its pnl after commission is >= 0.
    """

    def start(self) -> None:
        rets: Any = _Auto()
        rets.total.total = 0
        self.rets = rets

    def get_analysis(self) -> dict[str, Any]:
        return self.rets.plain()  # type: ignore[attr-defined, no-any-return]

    def notify_trade(self, trade: Any) -> None:
        r: Any = self.rets
        if trade.justopened:
            r.total.total += 1
            r.total.open += 1
            return
        if not trade.isclosed:
            return
        net, bars = trade.pnlcomm, trade.barlen
        flag = {"won": int(net >= 0.0)}
        flag["lost"] = int(not flag["won"])
        side = {"long": trade.long, "short": not trade.long}
        r.total.open -= 1
        r.total.closed += 1
        closed = r.total.closed
        for w in ("won", "lost"):
            st = r.streak[w]
            st.current *= flag[w]
            st.current += flag[w]
            st.longest = max(st.longest or 0, st.current)
        r.pnl.gross.total += trade.pnl
        r.pnl.gross.average = r.pnl.gross.total / closed
        r.pnl.net.total += net
        r.pnl.net.average = r.pnl.net.total / closed
        for w in ("won", "lost"):
            node = r[w]
            node.total += flag[w]
            amount = net * flag[w]
            node.pnl.total += amount
            node.pnl.average = node.pnl.total / (node.total or 1.0)
            pick = max if w == "won" else min
            node.pnl.max = pick(node.pnl.max or 0.0, amount)
        for s in ("long", "short"):
            node = r[s]
            node.total += side[s]
            node.pnl.total += net * side[s]
            node.pnl.average = node.pnl.total / (node.total or 1.0)
            for w in ("won", "lost"):
                amount = net * flag[w] * side[s]
                node[w] += flag[w] * side[s]
                sub = node.pnl[w]
                sub.total += amount
                sub.average = sub.total / (node[w] or 1.0)
                pick = max if w == "won" else min
                sub.max = pick(sub.max or 0.0, amount)
        ln = r.len
        ln.total += bars
        ln.average = ln.total / closed
        ln.max = max(ln.max or 0, bars)
        ln.min = min(ln.min or _BIG, bars)
        for w in ("won", "lost"):
            node = ln[w]
            b = bars * flag[w]
            node.total += b
            node.average = node.total / (r[w].total or 1.0)
            node.max = max(node.max or 0, b)
            if b:
                node.min = min(node.min or _BIG, b)
        for s in ("long", "short"):
            node = ln[s]
            b = bars * side[s]
            node.total += b
            node.average = node.total / (r[s].total or 1.0)
            node.max = max(node.max or 0, b)
            node.min = min(node.min or _BIG, b or (node.min or _BIG))
            for w in ("won", "lost"):
                b2 = bars * side[s] * flag[w]
                sub = node[w]
                sub.total += b2
                sub.average = sub.total / (r[s][w] or 1.0)
                sub.max = max(sub.max or 0, b2)
                sub.min = min(sub.min or _BIG, b2 or (sub.min or _BIG))


def __getattr__(name: str) -> Any:
    if name.startswith("__"):
        raise AttributeError(name)
    raise PortingError(f"bt.analyzers.{name} is not supported by mlbacktest.compat.backtrader "
                       "(SharpeRatio, DrawDown, Returns, TimeReturn, TradeAnalyzer); natively, "
                       "BacktestResult.metrics / equity / trades")
