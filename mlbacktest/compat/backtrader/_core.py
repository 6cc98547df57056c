"""Cerebro, Strategy, orders, positions and trades of ``mlbacktest.compat.backtrader``.

``Cerebro.run()`` builds one frame of the added data feeds, runs it through
:func:`mlbacktest.run_backtest` with ``BacktestConfig.preset("backtrader")``
and an internal :class:`mlbacktest.Strategy` (the runner) that creates the
backtrader-style strategy, serves its lines at the current bar, turns its
``buy`` / ``sell`` calls into engine orders and the engine's order events and
fills into backtrader's notifications.
"""

from __future__ import annotations

import copy
import datetime as _dt
import itertools
import math
import os
from collections.abc import Iterable, Mapping
from typing import Any, cast

import numpy as np
import polars as pl

from mlbacktest import indicators as _ind
from mlbacktest.config import BacktestConfig
from mlbacktest.errors import PortingError
from mlbacktest.models import CommissionModel
from mlbacktest.strategy import Strategy as _NativeStrategy

from ._lines import Clock, CrossLine, Line, _LinesOf, date2num, num2date

_RUNNERS: list[_Runner] = []


def current_runner(what: str) -> _Runner:
    """The runner whose strategy is being created (indicators are declared in ``__init__``)."""
    if not _RUNNERS:
        raise PortingError(f"{what} is declared in a Strategy's __init__, while Cerebro.run() "
                           "creates the strategy")
    return _RUNNERS[-1]


def _unsupported(api: str, native: str) -> PortingError:
    return PortingError(f"{api} is not supported by mlbacktest.compat.backtrader; {native} "
                        "(docs/porting/backtrader.md)")


# =========================================================================== params
class _Params:
    """``self.p`` / ``self.params``: the parameters as attributes."""

    def __init__(self, values: Mapping[str, Any]) -> None:
        self.__dict__.update(values)

    def __getattr__(self, name: str) -> Any:
        raise AttributeError(f"no parameter {name!r}; parameters are {list(self.__dict__)}")

    def _getkeys(self) -> list[str]:
        return list(self.__dict__)

    def _getitems(self) -> list[tuple[str, Any]]:
        return list(self.__dict__.items())

    def __repr__(self) -> str:
        return f"Params({self.__dict__})"


def _param_defaults(cls: type) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for klass in reversed(cls.__mro__):
        p = klass.__dict__.get("params")
        if p is None:
            continue
        if isinstance(p, Mapping):
            out.update(p)
        elif isinstance(p, (tuple, list)):
            for item in p:
                if not (isinstance(item, (tuple, list)) and len(item) == 2):
                    raise PortingError(f"{klass.__name__}.params must be a tuple of (name, "
                                       f"default) pairs or a dict, got item {item!r}")
                out[item[0]] = item[1]
        else:
            raise PortingError(f"{klass.__name__}.params must be a tuple of pairs or a dict, "
                               f"got {type(p).__name__}")
    return out


def _make_params(cls: type, kwargs: Mapping[str, Any]) -> _Params:
    values = _param_defaults(cls)
    unknown = sorted(k for k in kwargs if k not in values)
    if unknown:
        raise TypeError(f"{cls.__name__} has no parameter {unknown[0]!r}; its params are "
                        f"{sorted(values)}")
    values.update(kwargs)
    return _Params(values)


class _WithParams:
    params: Any = ()
    p: _Params

    def __init__(self, **kwargs: Any) -> None:
        self.p = self.params_obj = _make_params(type(self), kwargs)

    @property
    def _params(self) -> _Params:
        return self.p


# =========================================================================== orders
class OrderData:
    """``order.created`` / ``order.executed``: price, size, comm, value, dt, pnl."""

    def __init__(self, price: float = 0.0, size: float = 0.0, dt: float = 0.0,
                 pricelimit: float | None = None) -> None:
        self.price = price
        self.size = size
        self.comm = 0.0
        self.value = 0.0
        self.pnl = 0.0
        self.dt = dt
        self.pricelimit = pricelimit
        self.remsize = size


class Order:
    """An order, with backtrader's status and type constants."""

    Market, Close, Limit, Stop, StopLimit, StopTrail, StopTrailLimit, Historical = range(8)
    ExecTypes = ["Market", "Close", "Limit", "Stop", "StopLimit", "StopTrail",
                 "StopTrailLimit", "Historical"]
    Buy, Sell = 0, 1
    OrdTypes = ["Buy", "Sell"]
    Created, Submitted, Accepted, Partial, Completed, Canceled, Expired, Margin, Rejected = \
        range(9)
    Cancelled = Canceled
    Status = ["Created", "Submitted", "Accepted", "Partial", "Completed", "Canceled",
              "Expired", "Margin", "Rejected"]
    DAY = _dt.timedelta()
    T_Close, T_Day, T_Date, T_None = range(4)

    def __init__(self, ref: int, data: Any, size: float, exectype: int, price: float | None,
                 plimit: float | None, dt: float, tradeid: int, parent: Order | None) -> None:
        self.ref = ref
        self.data = data
        self.size = size
        self.ordtype = Order.Buy if size > 0 else Order.Sell
        self.exectype = exectype
        self.price = price
        self.pricelimit = plimit
        self.tradeid = tradeid
        self.parent = parent
        self.status = Order.Created
        self.created = OrderData(price or 0.0, size, dt, plimit)
        self.executed = OrderData()
        self.executed.remsize = size
        self.info: dict[str, Any] = {}
        self.eid = -1
        self.margin_at_submit = False
        self.valid_until: float | None = None  # day number of a valid= expiry
        self.trigger_price = price if price is not None else plimit  # limit or stop price

    def isbuy(self) -> bool:
        """True for a buy order."""
        return self.ordtype == Order.Buy

    def issell(self) -> bool:
        """True for a sell order."""
        return self.ordtype == Order.Sell

    def alive(self) -> bool:
        """True while the order can still execute (Created, Submitted, Accepted, Partial)."""
        return self.status in (Order.Created, Order.Submitted, Order.Accepted, Order.Partial)

    def getstatusname(self, status: int | None = None) -> str:
        """The name of ``status`` (default: the order's)."""
        return Order.Status[self.status if status is None else status]

    def getordername(self, exectype: int | None = None) -> str:
        """The name of the execution type."""
        return Order.ExecTypes[self.exectype if exectype is None else exectype]

    def ordtypename(self, ordtype: int | None = None) -> str:
        """``"Buy"`` or ``"Sell"``."""
        return Order.OrdTypes[self.ordtype if ordtype is None else ordtype]

    def __repr__(self) -> str:
        return (f"<Order ref={self.ref} {self.ordtypename()} {self.getordername()} "
                f"size={self.size} status={self.getstatusname()}>")


BuyOrder = SellOrder = Order


class Position:
    """``self.position``: ``size`` and average ``price`` (backtrader's rules)."""

    def __init__(self, size: float = 0.0, price: float = 0.0) -> None:
        self.size = size
        self.price = price

    def __bool__(self) -> bool:
        return self.size != 0

    def __len__(self) -> int:
        return abs(int(self.size))

    def _update(self, q: float, price: float) -> tuple[float, float]:
        """Apply a fill; returns (closed, opened) signed quantities."""
        old = self.size
        new = old + q
        if old == 0 or (old > 0) == (q > 0):
            closed, opened = 0.0, q
        elif abs(q) <= abs(old):
            closed, opened = q, 0.0
        else:
            closed, opened = -old, new
        if new == 0:
            self.price = 0.0
        elif old == 0 or (old > 0) != (new > 0):
            self.price = price
        elif abs(new) > abs(old):
            self.price = (self.price * old + q * price) / new
        self.size = new
        return closed, opened

    def __repr__(self) -> str:
        return f"Position(size={self.size}, price={self.price})"


class Trade:
    """A round trip of one data feed (backtrader's ``Trade``: pnl, pnlcomm, isclosed, ...)."""

    Created, Open, Closed = range(3)
    status_names = ["Created", "Open", "Closed"]

    def __init__(self, data: Any, tradeid: int, ref: int) -> None:
        self.ref = ref
        self.data = data
        self.tradeid = tradeid
        self.size = 0.0
        self.price = 0.0
        self.value = 0.0
        self.commission = 0.0
        self.pnl = 0.0
        self.pnlcomm = 0.0
        self.justopened = False
        self.isopen = False
        self.isclosed = False
        self.baropen = 0
        self.dtopen = 0.0
        self.barclose = 0
        self.dtclose = 0.0
        self.barlen = 0
        self.long = True
        self.status = Trade.Created

    def _update(self, size: float, price: float, commission: float, pnl: float) -> None:
        self.commission += commission
        oldsize = self.size
        self.size += size
        self.justopened = bool(not oldsize and size)
        if self.justopened:
            self.baropen = len(self.data)
            self.dtopen = self.data.datetime[0]
            self.long = self.size > 0
        if not self.size:
            self.isclosed = True
            self.barclose = len(self.data)
            self.dtclose = self.data.datetime[0]
            self.status = Trade.Closed
        elif self.isopen is False:
            self.isopen = True
            self.status = Trade.Open
        if abs(self.size) > abs(oldsize):
            self.price = (oldsize * self.price + size * price) / self.size
            pnl = 0.0
        else:
            self.pnl += pnl
        self.pnlcomm = self.pnl - self.commission
        self.value = self.size * self.price
        if self.isclosed:
            self.barlen = self.barclose - self.baropen
            self.isopen = False

    def open_datetime(self) -> _dt.datetime:
        """The time the trade opened."""
        return num2date(self.dtopen)

    def close_datetime(self) -> _dt.datetime:
        """The time the trade closed."""
        return num2date(self.dtclose)

    def __repr__(self) -> str:
        return (f"<Trade ref={self.ref} size={self.size} price={self.price} pnl={self.pnl} "
                f"{Trade.status_names[self.status]}>")


# =========================================================================== data
_FIELDS = ("open", "high", "low", "close", "volume", "openinterest")


class DataFeed:
    """A data feed: bars of one asset, read as lines once the run starts.

    Built by ``bt.feeds.PandasData``, ``PolarsData``, ``GenericCSVData`` or
    ``BacktraderCSVData``; holds a polars frame ``timestamp, open, high, low,
    close, volume, openinterest`` in time order.
    """

    _bt_lines = True

    def __init__(self, frame: pl.DataFrame, name: str = "", fromdate: Any = None,
                 todate: Any = None) -> None:
        if fromdate is not None:
            frame = frame.filter(pl.col("timestamp") >= _as_datetime(fromdate))
        if todate is not None:
            frame = frame.filter(pl.col("timestamp") <= _as_datetime(todate))
        self._frame = frame
        self._name = name
        self._lines_by_name: dict[str, Line] = {}
        self._asset = -1

    def _attach(self, runner: _Runner, asset: int) -> None:
        self._asset = asset
        clock = Clock()  # this feed's own bar: feeds may start, end and pause apart
        self._lines_by_name = {
            f: Line(_ind.Column(f if f != "openinterest" else "volume"), asset, clock, runner)
            for f in _FIELDS}
        dt = Line(_ind.Column("close"), asset, clock, runner)
        self._lines_by_name["datetime"] = dt
        self._clock = clock
        self.lines = _LinesOf([self._lines_by_name[f] for f in (*_FIELDS[:5], "datetime")],
                              self._lines_by_name)

    def __getattr__(self, name: str) -> Any:
        lines = self.__dict__.get("_lines_by_name")
        if lines and name in lines:
            return lines[name]
        if name in (*_FIELDS, "datetime"):
            raise PortingError(f"data.{name} is read in the strategy (after Cerebro.run() "
                               "created it)")
        raise AttributeError(name)

    def __getitem__(self, ago: int) -> float:
        return self._lines_by_name["close"][ago]

    def __len__(self) -> int:
        return int(self._clock.k + 1) if self._asset >= 0 else 0

    def _op(name: str) -> Any:  # type: ignore[misc]
        def method(self: DataFeed, other: Any) -> Any:
            return getattr(self._lines_by_name["close"], name)(other)

        method.__name__ = name
        return method

    __add__ = _op("__add__")
    __sub__ = _op("__sub__")
    __mul__ = _op("__mul__")
    __truediv__ = _op("__truediv__")
    __radd__ = _op("__radd__")
    __rsub__ = _op("__rsub__")
    __rmul__ = _op("__rmul__")
    __rtruediv__ = _op("__rtruediv__")
    __lt__ = _op("__lt__")
    __le__ = _op("__le__")
    __gt__ = _op("__gt__")
    __ge__ = _op("__ge__")
    del _op

    def _dt(self, ago: int) -> _dt.datetime:
        return num2date(self._lines_by_name["datetime"][ago])

    @property
    def _dataname(self) -> str:
        return self._name

    def __repr__(self) -> str:
        return f"<data {self._name!r}>"


class _DateTimeLine(Line):
    """``data.datetime``: ``[0]`` is backtrader's day number; ``.date(0)``, ``.datetime(0)``."""

    __slots__ = ()

    def date(self, ago: int = 0) -> _dt.date:
        """The date of the bar ``ago`` bars back."""
        return num2date(self[ago]).date()

    def datetime(self, ago: int = 0) -> _dt.datetime:
        """The time of the bar ``ago`` bars back."""
        return num2date(self[ago])

    def time(self, ago: int = 0) -> _dt.time:
        """The time of day of the bar ``ago`` bars back."""
        return num2date(self[ago]).time()


def _as_datetime(x: Any) -> _dt.datetime:
    if isinstance(x, _dt.datetime):
        return x
    if isinstance(x, _dt.date):
        return _dt.datetime(x.year, x.month, x.day)
    raise PortingError(f"fromdate/todate must be a datetime or a date, got {x!r}")


# =========================================================================== broker
class CommInfo:
    """Commission info of a stock-like percentage commission (``broker.getcommissioninfo``)."""

    def __init__(self, commission: float) -> None:
        self.p = _Params({"commission": commission, "mult": 1.0, "margin": None,
                          "stocklike": True, "leverage": 1.0})

    def getsize(self, price: float, cash: float) -> int:
        """Whole units ``cash`` buys at ``price``."""
        return int(1.0 * (cash // price))

    def getcommission(self, size: float, price: float) -> float:
        """Commission of ``size`` at ``price``."""
        return abs(size) * self.p.commission * price

    def getvaluesize(self, size: float, price: float) -> float:
        """Value of ``size`` at ``price``."""
        return size * price


class Broker:
    """``cerebro.broker`` / ``self.broker``: cash, commission, value and positions."""

    def __init__(self) -> None:
        self.startingcash = 10000.0
        self.commission = 0.0
        self._runner: _Runner | None = None
        self._final: tuple[float, float] | None = None

    # ------------------------------------------------------------ set-up
    def setcash(self, cash: float) -> None:
        """Set the starting cash."""
        self.startingcash = float(cash)

    set_cash = setcash

    def setcommission(self, commission: float = 0.0, margin: float | None = None,
                      mult: float = 1.0, commtype: Any = None, percabs: bool = True,
                      stocklike: bool = False, interest: float = 0.0,
                      interest_long: bool = False, leverage: float = 1.0,
                      automargin: bool = False, name: str | None = None) -> None:
        """A percentage commission on traded value (stock-like); other schemes raise."""
        if margin or mult != 1.0 or automargin or leverage != 1.0:
            raise _unsupported(
                "broker.setcommission(margin=..., mult=..., leverage=...) (futures-like "
                "instruments)", "mlbacktest trades stock-like cash instruments; natively, "
                "BacktestConfig(commission=CommissionModel(rate=...))")
        if interest or name is not None:
            raise _unsupported("broker.setcommission(interest=..., name=...)",
                               "one commission for every data feed, no interest")
        if commtype not in (None, 0) or not percabs:
            raise _unsupported(
                "broker.setcommission(commtype=COMM_FIXED / percabs=False)",
                "give the rate as a fraction (0.001 = 0.1 %); a per-share commission is "
                "BacktestConfig(commission=CommissionModel(per_share=...)) natively")
        self.commission = float(commission)

    def set_checksubmit(self, checksubmit: bool) -> None:
        """Refused: mlbacktest checks cash when an order fills."""
        raise _unsupported("broker.set_checksubmit", "cash is checked when an order fills")

    def set_coc(self, coc: bool) -> None:
        """Refused: cheat-on-close."""
        raise _unsupported("broker.set_coc (cheat-on-close)",
                           "natively, BacktestConfig(fill_at='close') (look-ahead prone)")

    def set_coo(self, coo: bool) -> None:
        """Refused: cheat-on-open."""
        raise _unsupported("broker.set_coo (cheat-on-open)", "orders fill at the next open")

    def set_slippage_perc(self, *args: Any, **kwargs: Any) -> None:
        """Refused: slippage."""
        raise _unsupported("broker.set_slippage_perc",
                           "natively, BacktestConfig.preset('backtrader', slippage_bps=...)")

    def set_slippage_fixed(self, *args: Any, **kwargs: Any) -> None:
        """Refused: slippage."""
        raise _unsupported("broker.set_slippage_fixed",
                           "natively, slippage_bps=FixedAmountSlippage(...)")

    def addcommissioninfo(self, *args: Any, **kwargs: Any) -> None:
        """Refused: custom commission schemes."""
        raise _unsupported("broker.addcommissioninfo",
                           "natively, BacktestConfig(commission=CommissionModel(...))")

    def set_shortcash(self, shortcash: bool) -> None:
        """Refused unless True (short proceeds are cash, backtrader's default)."""
        if not shortcash:
            raise _unsupported("broker.set_shortcash(False)", "short proceeds are credited")

    def getcommissioninfo(self, data: Any) -> CommInfo:
        """The commission info (the same for every data feed)."""
        return CommInfo(self.commission)

    # ------------------------------------------------------------ reads
    def getcash(self) -> float:
        """Cash now (the starting cash before the run, the final cash after)."""
        if self._runner is not None:
            return float(self._runner.get_cash())
        return self._final[0] if self._final else self.startingcash

    def getvalue(self, datas: Iterable[Any] | None = None) -> float:
        """Cash plus the value of the positions at the last close (of ``datas`` only if given)."""
        r = self._runner
        if datas is not None:
            if r is None:
                raise PortingError("broker.getvalue(datas=...) is read during the run")
            return float(sum(r.positions[d._asset].size * d.close[0] for d in datas))
        if r is not None:
            return float(r.get_equity())
        return self._final[1] if self._final else self.startingcash

    get_cash = getcash
    get_value = getvalue

    def getposition(self, data: Any) -> Position:
        """The position of ``data``."""
        r = self._require()
        return r.positions[data._asset]

    @property
    def cash(self) -> float:
        """Cash now."""
        return self.getcash()

    def _require(self) -> _Runner:
        if self._runner is None:
            raise PortingError("the broker's positions are read during the run")
        return self._runner


# =========================================================================== sizers
class Sizer(_WithParams):
    """Base of sizers: override ``_getsizing(comminfo, cash, data, isbuy)``."""

    strategy: Any = None
    broker: Any = None

    def getsizing(self, data: Any, isbuy: bool) -> float:
        """The size of an order placed without ``size``."""
        comminfo = self.broker.getcommissioninfo(data)
        return self._getsizing(comminfo, self.broker.getcash(), data, isbuy)

    def _getsizing(self, comminfo: Any, cash: float, data: Any, isbuy: bool) -> float:
        raise NotImplementedError


class FixedSize(Sizer):
    """``stake`` units (default 1) per order."""

    params: Any = (("stake", 1), ("tranches", 1))

    def _getsizing(self, comminfo: Any, cash: float, data: Any, isbuy: bool) -> float:
        if self.p.tranches > 1:
            return abs(int(self.p.stake / self.p.tranches))
        return self.p.stake  # type: ignore[no-any-return]


SizerFix = FixedSize


class PercentSizer(Sizer):
    """``percents`` % of the cash at the last close; an open position's size to close it."""

    params: Any = (("percents", 20), ("retint", False))

    def _getsizing(self, comminfo: Any, cash: float, data: Any, isbuy: bool) -> float:
        position = self.broker.getposition(data)
        if not position:
            size = cash / data.close[0] * (self.p.percents / 100)
        else:
            size = position.size
        if self.p.retint:
            size = int(size)
        return size  # type: ignore[no-any-return]


class AllInSizer(PercentSizer):
    """All the cash (``percents=100``)."""

    params: Any = (("percents", 100),)


class PercentSizerInt(PercentSizer):
    """:class:`PercentSizer` rounded down to whole units."""

    params: Any = (("retint", True),)


class AllInSizerInt(PercentSizerInt):
    """:class:`AllInSizer` rounded down to whole units."""

    params: Any = (("percents", 100),)


# =========================================================================== strategy
class _MetaStrategy(type):
    def __call__(cls, *args: Any, **kwargs: Any) -> Any:
        runner = current_runner(f"{cls.__name__}()")
        obj: Any = cls.__new__(cls)  # type: ignore[call-overload]
        obj._bt_setup(runner, kwargs)
        obj.__init__(*args)
        return obj


class Strategy(metaclass=_MetaStrategy):
    """backtrader's ``bt.Strategy`` on mlbacktest: declare lines in ``__init__``, trade in ``next``.

    Created by :meth:`Cerebro.run`; hooks ``start``, ``prenext``, ``nextstart``,
    ``next``, ``stop``, ``notify_order``, ``notify_trade``, ``notify_cashvalue``.
    """

    params: Any = ()

    def _bt_setup(self, runner: _Runner, kwargs: Mapping[str, Any]) -> None:
        self._runner = runner
        self.p = self.params = _make_params(type(self), kwargs)  # type: ignore[misc]
        self.datas = runner.datas
        self.data = self.datas[0]
        self.broker = runner.broker
        self.env = self.cerebro = runner.cerebro
        self.analyzers = _Analyzers()
        self.position_cls = Position
        self.stats = self.observers = _Analyzers()

    def __getattr__(self, name: str) -> Any:
        if name.startswith("data") and name[4:].isdigit():
            i = int(name[4:])
            datas = self.__dict__.get("datas", [])
            if i < len(datas):
                return datas[i]
            raise AttributeError(f"no {name}: the strategy has {len(datas)} data feed(s)")
        if name.startswith("data_"):
            return self.getdatabyname(name[5:])
        if name in _STRATEGY_REFUSED:
            raise _unsupported(f"Strategy.{name}", _STRATEGY_REFUSED[name])
        raise AttributeError(f"{type(self).__name__!s} has no attribute {name!r}")

    # ------------------------------------------------------------ hooks
    def start(self) -> None:
        """Called once before the first bar."""

    def prenext(self) -> None:
        """Called on bars before every line has a value."""

    def nextstart(self) -> None:
        """Called once, on the first bar where every line has a value (calls ``next``)."""
        self.next()

    def next(self) -> None:
        """Called on each bar once every line has a value."""

    def stop(self) -> None:
        """Called once after the last bar."""

    def notify_order(self, order: Order) -> None:
        """Called for each status change of an order (before ``next``)."""

    def notify_trade(self, trade: Trade) -> None:
        """Called when a trade opens and when it closes."""

    def notify_cashvalue(self, cash: float, value: float) -> None:
        """Called on each bar with the cash and the value."""

    def notify_fund(self, cash: float, value: float, fundvalue: float, shares: float) -> None:
        """Called on each bar with the cash and the value (fund mode is not supported)."""

    # ------------------------------------------------------------ reads
    def __len__(self) -> int:
        return self._runner.clock.k + 1

    @property
    def position(self) -> Position:
        """The position of the first data feed."""
        return self._runner.positions[self.data._asset]

    def getposition(self, data: Any = None, broker: Any = None) -> Position:
        """The position of ``data`` (default: the first data feed)."""
        data = self.data if data is None else self._data(data)
        return self._runner.positions[data._asset]

    def getpositionbyname(self, name: str | None = None, broker: Any = None) -> Position:
        """The position of the data feed named ``name``."""
        return self.getposition(self.getdatabyname(name) if name else self.data)

    def getdatabyname(self, name: str) -> Any:
        """The data feed added under ``name``."""
        for d in self.datas:
            if d._name == name:
                return d
        raise KeyError(f"no data feed named {name!r}; names are {[d._name for d in self.datas]}")

    def getdatanames(self) -> list[str]:
        """The names of the data feeds."""
        return [d._name for d in self.datas]

    @property
    def datetime(self) -> Any:
        """The strategy's datetime line: the time of the current bar of any data feed."""
        return self._runner.dt_line

    @property
    def dnames(self) -> dict[str, Any]:
        """The data feeds by name."""
        return {d._name: d for d in self.datas}

    def getsizer(self) -> Sizer:
        """The sizer used by orders placed without a size."""
        return self._runner.sizer

    def setsizer(self, sizer: Sizer) -> None:
        """Set the sizer."""
        self._runner.set_sizer(sizer)

    def getsizing(self, data: Any = None, isbuy: bool = True) -> float:
        """The sizer's size for ``data``."""
        return self._runner.sizer.getsizing(self.data if data is None else data, isbuy)

    def _data(self, data: Any) -> Any:
        if isinstance(data, str):
            return self.getdatabyname(data)
        if isinstance(data, int) and not isinstance(data, bool):
            return self.datas[data]
        return data

    # ------------------------------------------------------------ orders
    def buy(self, data: Any = None, size: float | None = None, price: float | None = None,
            plimit: float | None = None, exectype: int | None = None, valid: Any = None,
            tradeid: int = 0, oco: Order | None = None, trailamount: float | None = None,
            trailpercent: float | None = None, parent: Order | None = None,
            transmit: bool = True, **kwargs: Any) -> Order | None:
        """Buy ``size`` (default: the sizer's) of ``data``; returns the order (None for size 0)."""
        return self._runner.place(self, True, data, size, price, plimit, exectype, valid,
                                  tradeid, oco, trailamount, trailpercent, parent, transmit,
                                  kwargs)

    def sell(self, data: Any = None, size: float | None = None, price: float | None = None,
             plimit: float | None = None, exectype: int | None = None, valid: Any = None,
             tradeid: int = 0, oco: Order | None = None, trailamount: float | None = None,
             trailpercent: float | None = None, parent: Order | None = None,
             transmit: bool = True, **kwargs: Any) -> Order | None:
        """Sell ``size`` (default: the sizer's) of ``data``; returns the order (None for size 0)."""
        return self._runner.place(self, False, data, size, price, plimit, exectype, valid,
                                  tradeid, oco, trailamount, trailpercent, parent, transmit,
                                  kwargs)

    def close(self, data: Any = None, size: float | None = None, **kwargs: Any) -> Order | None:
        """Close the position of ``data`` (or ``size`` of it) with an opposite order."""
        data = self.data if data is None else self._data(data)
        possize = self.getposition(data).size
        size = abs(size or possize)
        if possize > 0:
            return self.sell(data=data, size=size, **kwargs)
        if possize < 0:
            return self.buy(data=data, size=size, **kwargs)
        return None

    def cancel(self, order: Order) -> None:
        """Cancel a working order (notified as Canceled before the next ``next``)."""
        self._runner.cancel_order(order)

    def order_target_size(self, data: Any = None, target: float = 0, **kwargs: Any
                          ) -> Order | None:
        """Buy or sell so that the position of ``data`` becomes ``target`` units."""
        data = self.data if data is None else self._data(data)
        possize = self.getposition(data).size
        if target > possize:
            return self.buy(data=data, size=target - possize, **kwargs)
        if target < possize:
            return self.sell(data=data, size=possize - target, **kwargs)
        return None

    def order_target_value(self, data: Any = None, target: float = 0.0,
                           price: float | None = None, **kwargs: Any) -> Order | None:
        """Buy or sell whole units so the position of ``data`` is worth ``target`` at ``price``."""
        data = self.data if data is None else self._data(data)
        possize = self.getposition(data).size
        if not target and possize:
            return self.close(data=data, size=possize, price=price, **kwargs)
        value = self.broker.getvalue(datas=[data])
        comminfo = self.broker.getcommissioninfo(data)
        price = price if price is not None else data.close[0]
        if target > value:
            size = comminfo.getsize(price, target - value)
            return self.buy(data=data, size=size, price=price, **kwargs)
        if target < value:
            size = comminfo.getsize(price, value - target)
            return self.sell(data=data, size=size, price=price, **kwargs)
        return None

    def order_target_percent(self, data: Any = None, target: float = 0.0, **kwargs: Any
                             ) -> Order | None:
        """Buy or sell so the position of ``data`` is ``target`` of the portfolio value."""
        data = self.data if data is None else self._data(data)
        return self.order_target_value(data=data, target=target * self.broker.getvalue(),
                                       **kwargs)

    def buy_bracket(self, data: Any = None, size: float | None = None,
                    price: float | None = None, plimit: float | None = None,
                    exectype: int = Order.Limit, valid: Any = None, tradeid: int = 0,
                    trailamount: float | None = None, trailpercent: float | None = None,
                    oargs: Mapping[str, Any] | None = None, stopprice: float | None = None,
                    stopexec: int = Order.Stop, stopargs: Mapping[str, Any] | None = None,
                    limitprice: float | None = None, limitexec: int = Order.Limit,
                    limitargs: Mapping[str, Any] | None = None, **kwargs: Any) -> list[Order]:
        """An entry with a protective stop and a take-profit (one cancels the other)."""
        return self._runner.bt_bracket(self, True, data, size, price, exectype, valid, tradeid,
                                    stopprice, stopexec, limitprice, limitexec,
                                    (plimit, trailamount, trailpercent, oargs, stopargs,
                                     limitargs, kwargs))

    def sell_bracket(self, data: Any = None, size: float | None = None,
                     price: float | None = None, plimit: float | None = None,
                     exectype: int = Order.Limit, valid: Any = None, tradeid: int = 0,
                     trailamount: float | None = None, trailpercent: float | None = None,
                     oargs: Mapping[str, Any] | None = None, stopprice: float | None = None,
                     stopexec: int = Order.Stop, stopargs: Mapping[str, Any] | None = None,
                     limitprice: float | None = None, limitexec: int = Order.Limit,
                     limitargs: Mapping[str, Any] | None = None, **kwargs: Any
                     ) -> list[Order]:
        """A short entry with a protective stop and a take-profit (one cancels the other)."""
        return self._runner.bt_bracket(self, False, data, size, price, exectype, valid, tradeid,
                                    stopprice, stopexec, limitprice, limitexec,
                                    (plimit, trailamount, trailpercent, oargs, stopargs,
                                     limitargs, kwargs))


_STRATEGY_REFUSED = {
    "add_timer": "natively, Strategy.schedule(...) / schedule_at(...)",
    "notify_timer": "natively, Strategy.schedule(...) / schedule_at(...)",
    "order_target_size_byname": "pass the data feed to order_target_size",
    "notify_data": "data feeds are historical; there are no live data notifications",
    "notify_store": "there are no stores (live brokers)",
    "getobservers": "observers are not supported; the result's frames hold the same values",
}


class _Analyzers:
    """``self.analyzers.<name>``: the strategy's analyzers by name (and by position)."""

    def __init__(self) -> None:
        self._items: list[Any] = []

    def _add(self, name: str, analyzer: Any) -> None:
        setattr(self, name, analyzer)
        self._items.append(analyzer)

    def __getitem__(self, i: int) -> Any:
        return self._items[i]

    def __len__(self) -> int:
        return len(self._items)

    def __iter__(self) -> Any:
        return iter(self._items)

    def getbyname(self, name: str) -> Any:
        """The analyzer added under ``name``."""
        return getattr(self, name)


# =========================================================================== runner
_EMPTY = OrderData()


def _snapshot(obj: Any) -> Any:
    """A shallow copy of an order or its execution data (what a notification carries)."""
    snap = object.__new__(type(obj))
    snap.__dict__.update(obj.__dict__)
    return snap


def _submission_order(notes: list[tuple[Order, int]]) -> list[tuple[Order, int]]:
    """Fills of one bar in the order the orders were placed (backtrader tries them so).

    The engine fills orders that reduce a position first; each run of
    consecutive fill notifications is put back in submission order, other
    notifications (a cancel caused by a fill) keep their place after it.
    """
    out: list[tuple[Order, int]] = []
    run: list[tuple[Order, int]] = []
    for note in notes:
        if note[1] in (Order.Completed, Order.Partial):
            run.append(note)
            continue
        out.extend(sorted(run, key=lambda n: n[0].ref))
        run = []
        out.append(note)
    out.extend(sorted(run, key=lambda n: n[0].ref))
    return out


_EXEC_NAMES = dict(enumerate(Order.ExecTypes))
_ENGINE_STATUS = {"partially_filled": Order.Partial, "filled": Order.Completed,
                  "cancelled": Order.Canceled, "expired": Order.Expired,
                  "rejected": Order.Margin}


class _Runner(_NativeStrategy):
    """The native strategy that runs one backtrader-style strategy (internal)."""

    def __init__(self, cerebro: Cerebro, stratcls: type, kwargs: Mapping[str, Any],
                 datas: list[DataFeed]) -> None:
        self.cerebro = cerebro
        self.stratcls = stratcls
        self.kwargs = dict(kwargs)
        self.datas = datas
        self.broker = cerebro.broker
        self.clock = Clock()
        self.lines: list[Line] = []
        self.positions: list[Position] = [Position() for _ in datas]
        self.orders: dict[int, Order] = {}
        self.refs = itertools.count(1)
        self.trade_refs = itertools.count(1)
        self.trades: list[Trade | None] = [None] * len(datas)
        self.new_orders: list[Order] = []
        self.user_notes: list[tuple[Order, int]] = []
        self.engine_notes: list[tuple[Order, int]] = []
        self.trade_notes: list[tuple[int, Trade]] = []
        self.oco_groups: dict[int, list[Order]] = {}
        self.oco_dirty: list[int] = []
        self.user_cancels: set[int] = set()
        self.brackets: dict[int, list[Order]] = {}
        self.oco_linked: set[int] = set()
        self.margin_ids = itertools.count(2)
        self.batch_cash: float | None = None
        self.batch_pos: dict[int, Position] = {}
        self.resolved = False
        self.minper: list[int] = []
        self.waiting: dict[int, Order] = {}  # orders other than Market not yet known done
        self.values: list[float] = []
        self.cashes: list[float] = []
        self.dts: list[float] = []
        self.sizer: Sizer = FixedSize()
        self.analyzer_list: list[Any] = []
        self.strategy: Any = None

    # ------------------------------------------------------------ lines
    def _register_line(self, line: Line) -> None:
        self.lines.append(line)

    def strategy_data0(self) -> DataFeed:
        return self.datas[0]

    def set_sizer(self, sizer: Sizer) -> None:
        sizer.strategy = self.strategy
        sizer.broker = self.broker
        self.sizer = sizer

    # ------------------------------------------------------------ start
    def on_start(self) -> None:
        names = [d._name for d in self.datas]
        ids = {name: self.assets.index(name) for name in names}
        for d in self.datas:
            d._attach(self, ids[d._name])
            dtl = d._lines_by_name["datetime"]
            dtl.__class__ = _DateTimeLine
        self.data_clocks = [d._clock for d in self.datas]
        # the strategy's own time: the latest time of the feeds (backtrader's strategy.datetime)
        self.dt_line = Line(_ind.Column("close"), self.datas[0]._asset, self.clock, self)
        self.dt_line.__class__ = _DateTimeLine
        self.data_lines = list(self.lines)
        self.broker._runner = self
        _RUNNERS.append(self)
        try:
            self.strategy = self.stratcls(**self.kwargs)
            cls, kw = self.cerebro._sizer
            self.set_sizer(cls(**kw))
            for acls, name, akw in self.cerebro._analyzers:
                an = acls(**akw)
                an.strategy = self.strategy
                an.datas = self.datas
                an.data = self.datas[0]
                self.strategy.analyzers._add(name, an)
                self.analyzer_list.append(an)
        finally:
            _RUNNERS.pop()
        self.declared: dict[str, str] = {}
        for line in self.lines[len(self.data_lines):]:
            if isinstance(line, CrossLine):
                continue  # computed from its operands' values (_resolve)
            key = repr(line._spec)
            if key not in self.declared:
                name = f"bt{len(self.declared)}"
                self.declared[key] = name
                self.add_indicator(name, line._spec)
        for clock in (self.clock, *self.data_clocks):
            clock.stage = 2
        for an in self.analyzer_list:
            an.start()
        self.strategy.start()

    def _resolve(self) -> None:
        """Read every line's values from the run's store, each feed on its own bars.

        The strategy's bars are the union of the feeds' times (backtrader's
        clock); a feed without a bar at one of them keeps its last bar, and
        its lines (indicators included) are computed over its own bars only.
        """
        store = self._store
        asset = np.asarray(store.asset_array)
        all_ts = np.asarray(store.ts_array)
        rows = [np.flatnonzero(asset == d._asset) for d in self.datas]
        ind_names = list(store.indicator_names) if self.declared else []
        ind_values = store.indicator_array if self.declared else None
        union = np.unique(np.concatenate([all_ts[r] for r in rows]))
        own_ts = [all_ts[r] for r in rows]
        by_asset = {d._asset: i for i, d in enumerate(self.datas)}

        epoch = _dt.datetime(1970, 1, 1)
        union_days = [date2num(epoch + _dt.timedelta(microseconds=int(t) // 1000))
                      for t in union]  # converted once, then read per feed
        pos = [np.searchsorted(union, ts).tolist() for ts in own_ts]

        data_ids = {id(x) for x in self.data_lines}
        for line in self.lines:
            i = by_asset[line._asset]
            r = rows[i]
            spec = line._spec
            if isinstance(line, CrossLine):
                self._check_aligned(line, own_ts)
                line._vals = line._compute()  # its operands were declared before it
            elif line is self.dt_line:
                line._vals = union_days
            elif isinstance(line, _DateTimeLine):
                line._vals = [union_days[j] for j in pos[i]]
            elif id(line) in data_ids:
                column = getattr(store, cast(_ind.Column, spec).name + "_array")
                line._vals = np.asarray(column)[r].tolist()
            else:
                assert ind_values is not None
                row = ind_names.index(self.declared[repr(spec)])
                line._vals = np.asarray(ind_values[row])[r].tolist()
        for d, ts in zip(self.datas, own_ts, strict=True):
            # openinterest: backtrader's feeds without one give 0
            d._lines_by_name["openinterest"]._vals = [0.0] * len(ts)
        # backtrader's minimum period per feed: the longest warm-up of the lines over it
        mp = [1] * len(self.datas)
        for line in self.lines[len(self.data_lines):]:
            vals = line._vals
            assert vals is not None
            first = next((j for j, v in enumerate(vals) if not math.isnan(v)), len(vals))
            i = by_asset[line._asset]
            mp[i] = max(mp[i], first + 1)
        # each feed's bar index at each of the strategy's bars (-1 before its first bar)
        self.data_k = np.stack([np.searchsorted(ts, union, side="right") - 1
                                for ts in own_ts], axis=1).tolist()
        lens = np.asarray(self.data_k) + 1
        # the feeds (asset ids) without a bar of their own at each of the strategy's bars
        fresh = np.diff(np.vstack([np.full(len(self.datas), -1), lens - 1]), axis=0) > 0
        ids = np.asarray([d._asset for d in self.datas])
        self.stale = [frozenset(ids[~f].tolist()) for f in fresh]
        # backtrader's status: max over feeds of (minimum period - bars seen); > 0 prenext,
        # 0 nextstart, < 0 next
        self.minper = (np.asarray(mp)[None, :] - lens).max(axis=1).tolist()
        self.k_of_ts = {int(t): k for k, t in enumerate(union)}
        if all(len(ts) == len(union) for ts in own_ts):
            # every feed has every bar: one clock serves them all (nothing to move per feed)
            for line in self.lines:
                line._clock = self.clock
            for d in self.datas:
                d._clock = self.clock
            self.data_clocks = []
        self.resolved = True

    def _check_aligned(self, line: CrossLine, own_ts: list[np.ndarray]) -> None:
        """Refuse an operation between feeds whose bars are not at the same times."""
        idx = {d._asset: i for i, d in enumerate(self.datas)}
        feeds = sorted(line._assets, key=idx.__getitem__)
        first = own_ts[idx[feeds[0]]]
        for a in feeds[1:]:
            other = own_ts[idx[a]]
            if len(other) != len(first) or not np.array_equal(other, first):
                names = [self.datas[idx[f]]._name for f in (feeds[0], a)]
                raise PortingError(
                    f"an operation between lines of the data feeds {names[0]!r} and "
                    f"{names[1]!r} ({line!r}) needs both feeds to have their bars at the same "
                    "times: backtrader pairs the two lines by position (its n-th bar with the "
                    "other's n-th bar), which is not by time when a feed starts later, ends "
                    "earlier or skips a bar. Read both lines at the current bar in next "
                    "instead (data0.close[0] - data1.close[0]), or align the frames before "
                    "adding them")

    def _advance(self, ts: int) -> None:
        if not self.resolved:
            self._resolve()
        k = self.k_of_ts[ts]
        self.clock.k = k
        if self.data_clocks:
            for clock, dk in zip(self.data_clocks, self.data_k[k], strict=True):
                clock.k = dk

    # ------------------------------------------------------------ engine events
    def on_order(self, order: Any) -> None:
        status = _ENGINE_STATUS.get(order.status)
        bo = self.orders.get(order.order_id)
        if status is None or bo is None:
            return
        if status == Order.Canceled and bo.eid in self.user_cancels:
            return  # notified when it was asked for
        self.engine_notes.append((bo, status))

    def on_fill(self, fill: Any) -> None:
        self._advance(fill.ts)
        bo = self.orders[fill.order_id]
        q, price, comm = fill.quantity, fill.price, fill.commission
        ex = bo.executed
        newsize = ex.size + q
        ex.price = (ex.price * ex.size + price * q) / newsize
        ex.size = newsize
        ex.comm += comm
        ex.dt = bo.data.datetime[0]
        ex.remsize = bo.size - newsize
        pos = self.positions[bo.data._asset]
        pprice = pos.price
        closed, opened = pos._update(q, price)
        self._trade(bo, closed, opened, price, pprice, comm, q)
        ex.value += abs(closed) * pprice + abs(opened) * price
        if closed:
            ex.pnl += -closed * (price - pprice)

    def _trade(self, bo: Order, closed: float, opened: float, price: float, pprice: float,
               comm: float, q: float) -> None:
        a = bo.data._asset
        trade = self.trades[a]
        if trade is None or trade.isclosed:
            trade = Trade(bo.data, bo.tradeid, next(self.trade_refs))
            self.trades[a] = trade
        if closed:
            ccomm = comm * abs(closed) / abs(q)
            trade._update(closed, price, ccomm, -closed * (price - pprice))
            if trade.isclosed:
                self.trade_notes.append((bo.ref, copy.copy(trade)))
        if opened:
            if trade.isclosed:
                trade = Trade(bo.data, bo.tradeid, next(self.trade_refs))
                self.trades[a] = trade
            trade._update(opened, price, comm * abs(opened) / abs(q), 0.0)
        if trade.justopened and opened:
            self.trade_notes.append((bo.ref, copy.copy(trade)))

    def on_slice(self, view: Any, context: Any) -> None:
        self._advance(view.ts)
        s = self.strategy
        stale = self.stale[self.clock.k]
        if stale:
            self._check_stale(stale)
        self._flush()
        cash, value = float(self.get_cash()), float(self.get_equity())
        s.notify_cashvalue(cash, value)
        s.notify_fund(cash, value, value, 1.0)
        status = self.minper[self.clock.k]
        dt = self.dt_line[0]
        for an in self.analyzer_list:
            an._bar(dt, cash, value)
        if status > 0:
            s.prenext()
        elif status == 0:
            s.nextstart()
        else:
            s.next()
        self._link_oco()

    def _check_stale(self, stale: frozenset[int]) -> None:
        """Refuse an order that backtrader would act on at a bar its feed does not have.

        backtrader's broker tests every pending order at each of the
        strategy's bars against its feed's current bar, which is the feed's
        previous bar again when the feed has no bar then: a Limit or Stop
        whose price that bar reaches fills there, a Close order takes that
        close, a trailing stop re-trails, an expiry reads that bar's time.
        mlbacktest waits for the feed's next bar. A Market order waits in
        both, and so does an order that bar cannot fill: those run; the
        others raise :class:`PortingError` rather than run differently.
        """
        for ref, bo in list(self.waiting.items()):
            if not bo.alive():
                del self.waiting[ref]  # done: never checked again
                continue
            if bo.data._asset not in stale:
                continue
            d, et = bo.data, bo.exectype
            why = ""
            if len(d) == 0:
                why = "before the feed's first bar"
            elif et in (Order.Close, Order.StopTrail, Order.StopTrailLimit):
                why = f"a {bo.getordername()} order"
            elif bo.valid_until is not None and self.dt_line[0] > bo.valid_until:
                why = "past its valid= time"
            else:
                buy = bo.isbuy()
                stop = bo.trigger_price
                limit = bo.created.pricelimit if et == Order.StopLimit else stop
                hits_limit = limit <= d.high[0] if not buy else limit >= d.low[0]
                hits_stop = d.high[0] >= stop if buy else d.low[0] <= stop
                if et == Order.Limit and hits_limit:
                    why = "its limit price is within that bar's range"
                elif et in (Order.Stop, Order.StopLimit) and hits_stop:
                    why = "its stop price is within that bar's range"
                elif et == Order.StopLimit and hits_limit:
                    why = "its limit price is within that bar's range"
            if why:
                when = num2date(self.dt_line[0])
                raise PortingError(
                    f"a {bo.getordername()} order (ref {bo.ref}) on data feed {d._name!r} is "
                    f"pending at {when}, where that feed has no bar (it has not started, has "
                    f"ended or skips that time) and {why}: backtrader tests it against the "
                    "feed's previous bar again, mlbacktest waits for the feed's next bar. "
                    "Cancel such orders while their feed pauses, or natively, give every "
                    "asset a bar at every time (docs/porting/backtrader.md)")

    def _flush(self) -> None:
        notes = self.user_notes
        for bo in self.new_orders:
            if bo.margin_at_submit:
                notes.append((bo, Order.Margin))
                continue
            notes.append((bo, Order.Submitted))
            notes.append((bo, Order.Accepted))
        notes.extend(_submission_order(self.engine_notes))
        self.new_orders = []
        self.user_notes = []
        self.engine_notes = []
        self.batch_cash = None
        self.batch_pos = {}
        s = self.strategy
        for bo, status in notes:
            if status <= Order.Accepted and bo.status > Order.Accepted:
                pass  # the order already moved on; its snapshot still reports this step
            else:
                bo.status = status
            snap = _snapshot(bo)
            snap.status = status
            snap.executed = _EMPTY if status <= Order.Accepted else _snapshot(bo.executed)
            s.notify_order(snap)
            for an in self.analyzer_list:
                an.notify_order(snap)
        trades = [t for _, t in sorted(self.trade_notes, key=lambda rt: rt[0])]
        self.trade_notes = []
        for t in trades:
            s.notify_trade(t)
            for an in self.analyzer_list:
                an.notify_trade(t)
        self._link_oco()

    def _link_oco(self) -> None:
        for g in dict.fromkeys(self.oco_dirty):
            members = [o.eid for o in self.oco_groups[g] if o.alive() and o.eid >= 0]
            if len(members) > 1:
                self.oco(*members)
            self.oco_linked.add(g)
        self.oco_dirty = []

    def on_end(self) -> None:
        self.strategy.stop()
        for an in self.analyzer_list:
            an.stop()
        self.broker._final = (float(self.get_cash()), float(self.get_equity()))
        self.broker._runner = None

    # ------------------------------------------------------------ orders
    def place(self, s: Strategy, isbuy: bool, data: Any, size: float | None,
              price: float | None, plimit: float | None, exectype: int | None, valid: Any,
              tradeid: int, oco: Order | None, trailamount: float | None,
              trailpercent: float | None, parent: Order | None, transmit: bool,
              kwargs: Mapping[str, Any]) -> Order | None:
        if parent is not None or not transmit:
            raise _unsupported("buy/sell(parent=..., transmit=False)",
                               "use buy_bracket / sell_bracket; natively, Strategy.bracket(...)"
                               " or order(..., parent=...)")
        if kwargs:
            raise _unsupported(f"buy/sell(**{sorted(kwargs)})",
                               "order arguments are data, size, price, plimit, exectype, "
                               "valid, tradeid, oco, trailamount, trailpercent")
        if tradeid:
            raise _unsupported("buy/sell(tradeid=...)", "one trade per data feed at a time")
        data = s.data if data is None else s._data(data)
        if size is None:
            size = self.sizer.getsizing(data, isbuy)
        if not size:
            return None
        q = float(abs(size)) if isbuy else -float(abs(size))
        exectype = Order.Market if exectype is None else exectype
        lim = stp = t_amt = t_pct = None
        otype: str | None = None
        if exectype == Order.Market:
            pass
        elif exectype == Order.Close:
            otype = "market_on_close"
        elif exectype == Order.Limit:
            lim = price if price is not None else data.close[0]
        elif exectype == Order.Stop:
            stp = price if price is not None else data.close[0]
        elif exectype == Order.StopLimit:
            stp = price if price is not None else data.close[0]
            lim = plimit if plimit is not None else stp
        elif exectype == Order.StopTrail:
            if (trailamount is None) == (trailpercent is None):
                raise PortingError("exectype=StopTrail needs trailamount= or trailpercent= "
                                   "(one of them)")
            t_amt, t_pct = trailamount, trailpercent
        else:
            raise _unsupported(f"exectype={_EXEC_NAMES.get(exectype, exectype)!r}",
                               "supported: Market, Close, Limit, Stop, StopLimit, StopTrail")
        tif, expire = self._validity(valid, data)
        if oco is not None and valid is not None:
            raise _unsupported("buy/sell(oco=..., valid=...)",
                               "an expiring OCO member cancels its group before the bar in "
                               "backtrader; give OCO orders no expiry")
        created = float(price if price is not None else
                        plimit if plimit is not None else data.close[0])
        if not self._fits_cash(data, q, created):
            bo = self._new_order(data, q, exectype, price, plimit, -next(self.margin_ids))
            bo.margin_at_submit = True
            if oco is not None:
                for sibling in self.oco_groups.get(self._oco_group(oco), []):
                    self.cancel_order(sibling)
            return bo
        ev = self.order(data._asset, q, lim, stp, trail_amount=t_amt, trail_percent=t_pct,
                        order_type=otype, time_in_force=tif, expire_at=expire)
        bo = self._new_order(data, q, exectype, price if otype is None else None, plimit,
                             ev.order_id)
        bo.trigger_price = created
        if tif == "gtd":
            bo.valid_until = date2num(expire)
        if oco is not None:
            g = self._oco_group(oco)
            self.oco_groups[g].append(bo)
            self.oco_dirty.append(g)
        return bo

    def _fits_cash(self, data: Any, q: float, price: float) -> bool:
        """backtrader's submission check (its default ``checksubmit=True``).

        The orders placed since the last bar are pseudo-executed in order at
        their creation price (the close, or the order's price) against the
        cash and a copy of the positions; an order that leaves the cash
        negative is refused as ``Margin`` before it reaches the broker, and
        the cash it would have used stays spent for the rest of the batch,
        as in ``BackBroker.check_submitted``.
        """
        if self.batch_cash is None:
            self.batch_cash = float(self.get_cash())
        a = data._asset
        pos = self.batch_pos.get(a)
        if pos is None:
            live = self.positions[a]
            pos = self.batch_pos[a] = Position(live.size, live.price)
        closed, opened = pos._update(q, price)
        rate = self.broker.commission
        cash = self.batch_cash
        if closed:
            cash += -closed * price
            cash -= abs(closed) * rate * price
        if opened:
            cash -= opened * price
            cash -= abs(opened) * rate * price
        self.batch_cash = cash
        return cash >= 0.0

    def _oco_group(self, first: Order) -> int:
        for g, members in self.oco_groups.items():
            if first in members:
                if g in self.oco_linked:
                    raise _unsupported(
                        "oco= with a third order after the group was linked",
                        "give every order of the group oco=first in the same next()")
                return g
        g = first.ref
        self.oco_groups[g] = [first]
        return g

    def _validity(self, valid: Any, data: Any) -> tuple[str, Any]:
        if valid is None:
            return "gtc", None
        if isinstance(valid, _dt.timedelta):
            if valid == Order.DAY:
                raise _unsupported("valid=Order.DAY",
                                   "natively, order(..., time_in_force='day')")
            return "gtd", data._dt(0) + valid
        if isinstance(valid, (_dt.datetime, _dt.date)):
            return "gtd", _as_datetime(valid)
        if isinstance(valid, (int, float)) and not isinstance(valid, bool):
            return "gtd", num2date(float(valid))
        raise PortingError(f"valid= must be None, a datetime, a date, a timedelta or a day "
                           f"number, got {valid!r}")

    def _new_order(self, data: Any, q: float, exectype: int, price: float | None,
                   plimit: float | None, eid: int) -> Order:
        bo = Order(next(self.refs), data, q, exectype, price, plimit, data.datetime[0], 0, None)
        bo.eid = eid
        bo.status = Order.Submitted
        self.orders[eid] = bo
        if exectype != Order.Market:
            self.waiting[bo.ref] = bo
        self.new_orders.append(bo)
        return bo

    def cancel_order(self, bo: Order) -> None:
        """Cancel ``bo``, then (as backtrader) its OCO group and the rest of its bracket."""
        if not self._cancel_one(bo):
            return
        for members in self.oco_groups.values():
            if bo in members:
                for sibling in reversed(members):  # backtrader walks its book from the end
                    self._cancel_one(sibling)
        for sibling in self.brackets.get(bo.ref, []):
            self._cancel_one(sibling)

    def _cancel_one(self, bo: Order) -> bool:
        if bo is None or not bo.alive() or bo.eid < 0:
            return False  # a cancel of an order refused at submission does nothing (as backtrader)
        if not self.cancel(bo.eid) and self.get_order(bo.eid).status != "cancelled":
            return False
        self.user_cancels.add(bo.eid)
        bo.status = Order.Canceled
        self.user_notes.append((bo, Order.Canceled))
        return True

    def bt_bracket(self, s: Strategy, isbuy: bool, data: Any, size: float | None,
                price: float | None, exectype: int, valid: Any, tradeid: int,
                stopprice: float | None, stopexec: int, limitprice: float | None,
                limitexec: int, rest: tuple[Any, ...]) -> list[Order]:
        plimit, tamt, tpct, oargs, stopargs, limitargs, kwargs = rest
        if (plimit is not None or tamt is not None or tpct is not None or oargs or stopargs
                or limitargs or kwargs or tradeid):
            raise _unsupported("buy_bracket/sell_bracket with plimit, trailamount, "
                               "trailpercent, oargs, stopargs, limitargs or tradeid",
                               "natively, Strategy.bracket(asset, q, stop_loss=, "
                               "take_profit=, trail_percent=...)")
        if stopexec != Order.Stop or limitexec != Order.Limit:
            raise _unsupported("buy_bracket(stopexec=/limitexec= other than Stop/Limit)",
                               "the legs are a stop and a limit")
        if stopprice is None or limitprice is None:
            raise _unsupported("a bracket without stopprice or limitprice",
                               "give both; natively, Strategy.bracket(...) takes either")
        if valid is not None:
            raise _unsupported("buy_bracket(valid=...)", "the entry is good till cancelled")
        data = s.data if data is None else s._data(data)
        if size is None:
            size = self.sizer.getsizing(data, isbuy)
        q = float(abs(size)) if isbuy else -float(abs(size))
        if exectype == Order.Market:
            lim = None
        elif exectype == Order.Limit:
            lim = price if price is not None else data.close[0]
        else:
            raise _unsupported(f"a bracket entry of exectype {_EXEC_NAMES.get(exectype)}",
                               "the entry is Market or Limit")
        b = super().bracket(data._asset, q, stop_loss=stopprice, take_profit=limitprice,
                            limit_price=lim)
        assert b.stop_loss is not None and b.take_profit is not None
        entry = self._new_order(data, q, exectype, lim, None, b.entry.order_id)
        stop = self._new_order(data, -q, Order.Stop, stopprice, None, b.stop_loss.order_id)
        take = self._new_order(data, -q, Order.Limit, limitprice, None,
                               b.take_profit.order_id)
        stop.parent = take.parent = entry
        for leg in (entry, stop, take):
            self.brackets[leg.ref] = [entry, stop, take]
        return [entry, stop, take]


# =========================================================================== cerebro
class Cerebro:
    """backtrader's ``Cerebro``: add data feeds, a strategy, a sizer and analyzers; ``run()``.

    Parameters
    ----------
    **kwargs
        ``maxcpus`` (how many processes run the parameter sets of
        :meth:`optstrategy`: None for every core, 1 for this process) and
        ``optreturn`` (True: each set's result is an :class:`OptReturn`) act as
        in backtrader; ``stdstats``, ``preload``, ``runonce`` and ``optdatas``
        are accepted and change nothing here; other backtrader options
        (``cheat_on_open``, ``exactbars``, ...) raise
        :class:`~mlbacktest.errors.PortingError`.
    """

    _ACCEPTED = {"stdstats", "preload", "runonce", "maxcpus", "optreturn", "optdatas",
                 "live", "quicknotify", "tz"}

    def __init__(self, **kwargs: Any) -> None:
        self._options: dict[str, Any] = {"maxcpus": None, "optreturn": True}
        self._set_options(kwargs, "Cerebro")
        self.broker = Broker()
        self.datas: list[DataFeed] = []
        self._strategies: list[tuple[type, list[dict[str, Any]]]] = []
        self._sizer: tuple[type, dict[str, Any]] = (FixedSize, {})
        self._analyzers: list[tuple[type, str, dict[str, Any]]] = []
        self.runstrats: list[Any] = []
        self._opt = False

    def _set_options(self, kwargs: Mapping[str, Any], where: str) -> None:
        """Check backtrader's options (``Cerebro(...)`` or ``run(...)``) and keep them."""
        for k, v in kwargs.items():
            if k not in self._ACCEPTED or (k == "live" and v) or (k == "quicknotify" and v):
                raise _unsupported(f"{where}({k}={v!r})",
                                   "natively, BacktestConfig knobs (docs/presets.md)")
            if k == "tz" and v is not None:
                raise _unsupported(f"{where}(tz=...)", "timestamps are naive UTC")
            if k == "maxcpus" and v is not None and (
                    isinstance(v, bool) or not isinstance(v, int) or v < 1):
                raise ValueError(f"{where}(maxcpus={v!r}): maxcpus must be None (every core) "
                                 "or a positive integer (1 runs in this process)")
        self._options.update(kwargs)

    def adddata(self, data: DataFeed, name: str | None = None) -> DataFeed:
        """Add a data feed (named ``name``, else its own name, else ``data<i>``)."""
        if not isinstance(data, DataFeed):
            raise PortingError(f"adddata needs a bt.feeds data feed (PandasData, PolarsData, "
                               f"GenericCSVData, BacktraderCSVData), got {type(data).__name__}")
        if name is not None:
            data._name = name
        if not data._name:
            data._name = f"data{len(self.datas)}"
        if any(d._name == data._name for d in self.datas):
            raise PortingError(f"two data feeds are named {data._name!r}; give each its own "
                               "name (adddata(data, name=...))")
        self.datas.append(data)
        return data

    def addstrategy(self, strategy: type, *args: Any, **kwargs: Any) -> int:
        """Add the strategy class with its parameters."""
        self._add_strategy(strategy, args, [kwargs])
        return len(self._strategies) - 1

    def optstrategy(self, strategy: type, *args: Any, **kwargs: Any) -> None:
        """Add the strategy with every combination of the parameter values given as iterables."""
        keys = list(kwargs)
        values = [v if isinstance(v, Iterable) and not isinstance(v, str) else [v]
                  for v in kwargs.values()]
        combos = [dict(zip(keys, c, strict=True)) for c in itertools.product(*values)]
        self._add_strategy(strategy, args, combos)
        self._opt = True

    def _add_strategy(self, strategy: type, args: tuple[Any, ...],
                      sets: list[dict[str, Any]]) -> None:
        if args:
            raise _unsupported("addstrategy with positional arguments",
                               "pass parameters by name")
        if not (isinstance(strategy, type) and issubclass(strategy, Strategy)):
            raise PortingError(f"addstrategy needs a subclass of bt.Strategy "
                               f"(mlbacktest.compat.backtrader), got {strategy!r}")
        if self._strategies:
            raise _unsupported("several strategies in one Cerebro",
                               "run one strategy per Cerebro")
        self._strategies.append((strategy, sets))

    def addsizer(self, sizercls: type, *args: Any, **kwargs: Any) -> None:
        """Set the sizer class (and its parameters) for orders placed without a size."""
        if args:
            raise _unsupported("addsizer with positional arguments", "pass parameters by name")
        if not (isinstance(sizercls, type) and issubclass(sizercls, Sizer)):
            raise PortingError(f"addsizer needs a bt.Sizer subclass, got {sizercls!r}")
        self._sizer = (sizercls, kwargs)

    def addanalyzer(self, ancls: type, *args: Any, _name: str | None = None,
                    **kwargs: Any) -> None:
        """Add an analyzer class, read as ``strategy.analyzers.<_name>``."""
        if args:
            raise _unsupported("addanalyzer with positional arguments", "pass parameters by name")
        if not (isinstance(ancls, type) and issubclass(ancls, _WithParams)
                and hasattr(ancls, "get_analysis")):
            raise PortingError(f"addanalyzer needs a bt.analyzers class (SharpeRatio, "
                               f"DrawDown, TradeAnalyzer, Returns), got {ancls!r}")
        self._analyzers.append((ancls, _name or ancls.__name__.lower(), kwargs))

    def getbroker(self) -> Broker:
        """The broker."""
        return self.broker

    def setbroker(self, broker: Any) -> None:
        """Refused: the broker is the engine's."""
        raise _unsupported("Cerebro.setbroker", "the broker is mlbacktest's engine")

    def run(self, executor: Any = None, **kwargs: Any) -> list[Any]:
        """Run the strategy; returns ``[strategy]``, or after :meth:`optstrategy` a list with
        one ``[result]`` per parameter set, in the order of the parameter combinations.

        Parameters
        ----------
        executor : optional
            mlbacktest extension: where the parameter sets of :meth:`optstrategy`
            run, as for :func:`mlbacktest.research.sweep` (``"serial"``,
            ``"processes"``, ``"processes:N"``, a ``concurrent.futures.Executor``,
            a ``distributed.Client`` or ``"dask://HOST:PORT"``). Without it,
            ``maxcpus`` decides, as in backtrader: 1 runs them in this process,
            N on N local processes, None on one process per core.
        **kwargs
            backtrader's options, overriding those given to ``Cerebro(...)``
            (``maxcpus``, ``optreturn``, ...).

        Returns
        -------
        list
            ``[strategy]`` for :meth:`addstrategy`; for :meth:`optstrategy` a
            list of ``[OptReturn]`` (``optreturn=True``, backtrader's default:
            ``.params``/``.p``, ``.analyzers``, ``.strategycls``) or of
            ``[strategy]`` (``optreturn=False``, in this process only).

        Raises
        ------
        PortingError
            ``optreturn=False`` with ``maxcpus`` above 1 or a worker executor:
            strategy instances do not come back from other processes.
        """
        self._set_options(kwargs, "Cerebro.run")
        if not self.datas:
            raise PortingError("Cerebro.run() needs at least one data feed (adddata)")
        if not self._strategies:
            raise PortingError("Cerebro.run() needs a strategy (addstrategy)")
        if executor is not None:
            from mlbacktest.research.executors import parse_executor

            parse_executor(executor)  # a bad executor is refused before any work
        strategy, sets = self._strategies[0]
        optimizing = self._optimizing(sets)
        where = self._where(executor, len(sets)) if optimizing else "serial"
        optreturn = optimizing and bool(self._options["optreturn"])
        if where != "serial" and not optreturn:
            raise PortingError(
                "optstrategy with optreturn=False returns the strategy instances, which "
                "cannot come back from worker processes; run with maxcpus=1 (or "
                "executor='serial'), or keep backtrader's default optreturn=True (each "
                "result is an OptReturn with .params and .analyzers)")
        frame = self._frame()
        if where == "serial":
            results = _run_sets(self, strategy, sets, frame)
            if optreturn:
                results = [[_opt_return(s) for s in r] for r in results]
        else:
            results = _run_sets_on(self, strategy, sets, frame, where)
        self.runstrats = results
        if not optimizing:
            return results[0]
        return results

    def _where(self, executor: Any, n_sets: int) -> Any:
        """The executor of the parameter sets: ``executor`` if given, else from ``maxcpus``."""
        if executor is not None:
            from mlbacktest.research.executors import parse_executor

            kind, _ = parse_executor(executor)  # checked before any work
            return "serial" if kind == "serial" else executor
        maxcpus = self._options["maxcpus"]
        if maxcpus == 1 or n_sets == 1:
            return "serial"
        if maxcpus is None:
            if not self._options["optreturn"]:
                return "serial"  # the strategies themselves are asked for: they stay here
            return "processes" if (os.cpu_count() or 1) > 1 else "serial"
        return f"processes:{maxcpus}"

    def _optimizing(self, sets: list[dict[str, Any]]) -> bool:
        return self._opt or len(sets) != 1

    def _frame(self) -> pl.DataFrame:
        parts = []
        for d in self.datas:
            f = d._frame
            parts.append(f.select("timestamp", "open", "high", "low", "close", "volume")
                         .with_columns(pl.lit(d._name).alias("asset")))
        return pl.concat(parts, how="vertical")

    def _config(self) -> BacktestConfig:
        return BacktestConfig.preset(
            "backtrader", initial_cash=self.broker.startingcash,
            commission=CommissionModel(rate=self.broker.commission), fractional=True,
            allow_short=True)

    # ------------------------------------------------------------ refused
    def __getattr__(self, name: str) -> Any:
        if name in _CEREBRO_REFUSED:
            raise _unsupported(f"Cerebro.{name}", _CEREBRO_REFUSED[name])
        raise AttributeError(f"Cerebro has no attribute {name!r}")


_CEREBRO_REFUSED = {
    "resampledata": "resample the frame before adding it (polars group_by_dynamic)",
    "replaydata": "replay is not supported; feed the bars at the frequency you trade",
    "addobserver": "observers are not supported; BacktestResult.equity / fills hold the values",
    "addwriter": "writers are not supported; BacktestResult.to_parquet(...)",
    "plot": "natively, mlbacktest report <run> (an HTML report)",
    "addindicator": "declare indicators in the strategy's __init__",
    "addstore": "there are no stores (live brokers)",
    "addcalendar": "the calendar is the data's own timestamps",
    "add_timer": "natively, Strategy.schedule(...)",
    "addsizer_byidx": "one sizer for the strategy (addsizer)",
    "signal_strategy": "signal strategies are not supported; write next()",
    "add_signal": "signal strategies are not supported; write next()",
    "addtz": "timestamps are naive UTC",
    "broker_setcash": "cerebro.broker.setcash(...)",
}


def _run_sets(cerebro: Cerebro, strategy: type, sets: list[dict[str, Any]],
              frame: pl.DataFrame) -> list[list[Any]]:
    """Run ``strategy`` once per parameter set, serially, in order.

    One internal function for ``run`` and ``optstrategy`` so that the sets
    can later be handed to a sweep executor; each run is independent (its
    own engine, broker state and strategy instance).
    """
    from mlbacktest.engine import run_backtest

    out: list[list[Any]] = []
    config = cerebro._config()
    for kwargs in sets:
        runner = _Runner(cerebro, strategy, kwargs, cerebro.datas)
        run_backtest(frame, runner, config)
        out.append([runner.strategy])
    return out


# =========================================================================== optimisation
class OptReturn:
    """What :meth:`Cerebro.run` returns per strategy after ``optstrategy`` with ``optreturn=True``.

    backtrader's ``OptReturn``: the strategy's parameters and analyzers
    (detached from the run, as backtrader detaches them) without the
    strategy, its data or its lines.

    Attributes
    ----------
    params, p : object
        The parameters of the run (``.p.fast``, ...).
    analyzers : object
        The strategy's analyzers by name (``.analyzers.sharpe.get_analysis()``).
    strategycls : type
        The strategy class.
    """

    analyzers: Any
    strategycls: Any

    def __init__(self, params: Any, **kwargs: Any) -> None:
        self.p = self.params = params
        for k, v in kwargs.items():
            setattr(self, k, v)


def _detach(analyzer: Any, seen: set[int]) -> None:
    """Cut an analyzer (and the analyzers it holds) from its strategy and data, as backtrader."""
    if id(analyzer) in seen:
        return
    seen.add(id(analyzer))
    analyzer.strategy = None
    for name in list(vars(analyzer)):
        if name.startswith("data"):
            setattr(analyzer, name, None)
    for value in list(vars(analyzer).values()):
        if isinstance(value, _WithParams) and hasattr(type(value), "get_analysis"):
            _detach(value, seen)


def _opt_return(strategy: Any) -> OptReturn:
    """The :class:`OptReturn` of a finished strategy (its analyzers detached)."""
    seen: set[int] = set()
    for an in strategy.analyzers:
        _detach(an, seen)
    return OptReturn(strategy.params, analyzers=strategy.analyzers,
                     strategycls=type(strategy))


class _OptTask:
    """The strategy factory of a sweep of ``optstrategy``'s parameter sets (picklable).

    Called with one parameter set, it returns the native strategy that runs
    the backtrader-style strategy on a copy of the Cerebro's settings.
    """

    def __init__(self, cerebro: Cerebro, strategy: type) -> None:
        clone = Cerebro.__new__(Cerebro)
        clone.__dict__.update(cerebro.__dict__)
        clone.broker = Broker()
        clone.broker.__dict__.update(cerebro.broker.__dict__)
        clone.broker._runner = None
        clone.broker._final = None
        datas = []
        for d in cerebro.datas:  # names only: the bars travel once per worker, as the feed
            datas.append(DataFeed(d._frame.clear(), d._name))
        clone.datas = datas
        clone.runstrats = []
        self.cerebro = clone
        self.strategy = strategy
        # executors.dumps_job reads the module to pickle a strategy loaded by path by value
        self.__module__ = getattr(strategy, "__module__", __name__)

    def __call__(self, **params: Any) -> _Runner:
        return _Runner(self.cerebro, self.strategy, params, self.cerebro.datas)


def _collect_opt(runner: _Runner, result: Any) -> bytes:
    """In the worker: the run's :class:`OptReturn` as cloudpickle bytes (class left out)."""
    import cloudpickle

    ret = _opt_return(runner.strategy)
    ret.strategycls = None  # the caller's own class is put back on arrival
    return bytes(cloudpickle.dumps(ret))


def _run_sets_on(cerebro: Cerebro, strategy: type, sets: list[dict[str, Any]],
                 frame: pl.DataFrame, executor: Any) -> list[list[Any]]:
    """Run the parameter sets on a research executor; ``[[OptReturn]]`` in the sets' order.

    The sets are the runs of a :func:`mlbacktest.research.sweep` job: the bars
    go once to each worker, the strategy (cloudpickle) once per worker, and a
    strategy's exception comes back with its own type.
    """
    import cloudpickle

    from mlbacktest.data.feeds import PolarsDataFeed
    from mlbacktest.research._worker import FeedSource, Job, panel_fingerprint
    from mlbacktest.research.executors import make_runner

    feed = PolarsDataFeed(frame)
    job = Job(strategy=_OptTask(cerebro, strategy), config=cerebro._config(),
              collect=_collect_opt, raise_errors=True)
    source = FeedSource(feed, panel_fingerprint(feed))
    out: list[list[Any] | None] = [None] * len(sets)
    with make_runner(executor, job, source) as runner:
        for outcomes in runner.run([[(i, p)] for i, p in enumerate(sets)]):
            for o in outcomes:
                ret = cloudpickle.loads(o.collected)
                ret.strategycls = strategy
                out[o.index] = [ret]
    assert all(r is not None for r in out)
    return cast("list[list[Any]]", out)
