"""Run zipline algorithms on mlbacktest: ``zipline.api``, ``run_algorithm``, ``install``.

A porting assistant, not a drop-in replacement: the subset of zipline that
algorithms actually use (``initialize``, ``handle_data``,
``before_trading_start``, ``schedule_function``, the ``order_*`` family,
``data.current`` / ``data.history``, ``context.portfolio``, the equity
commission and slippage models) runs on the compiled engine with zipline's
daily and minute conventions; everything else raises
:class:`~mlbacktest.errors.PortingError` naming the call and the mlbacktest
way to do it. docs/porting/zipline.md has the table and the differences.

Examples
--------
>>> from mlbacktest.compat.zipline import run_algorithm          # doctest: +SKIP
>>> from mlbacktest.compat.zipline.api import order, symbol       # doctest: +SKIP
>>> perf = run_algorithm("2014-01-02", "2014-12-31", initialize, 10_000.0,
...                      handle_data=handle_data, data=frame)    # doctest: +SKIP
"""

from __future__ import annotations

import importlib.util
import sys
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np
import pandas as pd  # type: ignore[import-untyped,unused-ignore]
import polars as pl

from mlbacktest.compat.zipline import api, finance, pipeline
from mlbacktest.compat.zipline._algorithm import MinuteGrid, ZiplineAlgorithm, ZiplineStrategy
from mlbacktest.compat.zipline._costs import PerOrderCommission
from mlbacktest.compat.zipline.finance import commission, execution, slippage
from mlbacktest.config import BacktestConfig
from mlbacktest.data import DataFeed, PolarsDataFeed
from mlbacktest.engine import BacktestEngine
from mlbacktest.errors import DataError, PortingError

__all__ = ["run_algorithm", "read_bars", "install", "uninstall", "installed",
           "installed_as_zipline", "load_algorithm",
           "zipline_config", "api", "PortingError", "PerOrderCommission", "MARGIN"]

#: Margin requirement of the shim's account: zipline never refuses a fill for lack of
#: cash, so the run uses a margin account whose requirement is negligible.
MARGIN = 1e-6

_BAR_COLUMNS = ("timestamp", "asset", "open", "high", "low", "close", "volume")
_UNSUPPORTED_RUN_ARGS = {
    "bundle": "load the bundle's bars into a polars frame (timestamp, asset, open, high, low, "
              "close, volume) and pass it as data=",
    "bundle_timestamp": "pass the bars of the date you want as data=",
    "metrics_set": "BacktestResult.metrics has the run's metrics",
    "default_extension": "there are no extensions",
    "extensions": "there are no extensions",
    "strict_extensions": "there are no extensions",
    "environ": "there is no zipline environment to read",
    "custom_loader": "pass signal columns with the bars (PolarsDataFeed(signal_columns=...))",
    "blotter": "order handling is the compiled broker's (BacktestConfig knobs)",
}


def zipline_config(capital_base: float, commission_model: Any = None,
                   slippage_model: Any = None) -> BacktestConfig:
    """The configuration a zipline run uses: the ``"zipline"`` preset, the algorithm's models.

    Parameters
    ----------
    capital_base : float
        Starting cash.
    commission_model : zipline commission model, optional
        From ``set_commission``; default zipline's ``PerShare(0.001, min_trade_cost=0)``.
    slippage_model : zipline slippage model, optional
        From ``set_slippage``; default zipline's ``FixedBasisPointsSlippage(5, 0.1)``.

    Returns
    -------
    BacktestConfig
        ``BacktestConfig.preset("zipline")`` with zipline's per-order
        commission, the slippage model and its volume limit, and a margin
        account with a negligible requirement (:data:`MARGIN`), since zipline
        never refuses a fill for lack of cash.
    """
    comm = commission_model if commission_model is not None else commission.PerShare()
    slip = slippage_model if slippage_model is not None else slippage.FixedBasisPointsSlippage()
    return BacktestConfig.preset(
        "zipline", initial_cash=float(capital_base), commission=comm.to_model(),
        slippage_bps=slip.to_model(), max_volume_participation=slip.volume_limit,
        account="margin", initial_margin=MARGIN, maintenance_margin=MARGIN)


def _feed_frame(feed: DataFeed) -> pl.DataFrame:
    """The bars of an in-memory feed as a frame (timestamps as the feed's wall clock or UTC)."""
    if feed.streaming:
        raise DataError("data= is a streamed feed (chunk=...): the zipline shim needs the whole "
                        "panel; pass the parquet path or a frame instead")
    p = feed.panel
    names = np.asarray(p.asset_names, dtype=object)
    return pl.DataFrame({
        "timestamp": pl.Series(p.ts).cast(pl.Datetime("ns")),
        "asset": names[p.asset].tolist(),
        **{f: p.__getattribute__(f) for f in ("open", "high", "low", "close", "volume")},
    })


def _frame(data: Any, minute: bool = False) -> pl.DataFrame:
    if data is None:
        raise DataError("run_algorithm needs data=: a polars or pandas frame, or a parquet/csv "
                        "path, with columns timestamp, asset, open, high, low, close, volume")
    if isinstance(data, DataFeed):
        data = _feed_frame(data)
    if isinstance(data, (str, Path)):
        path = Path(data)
        if not path.exists():
            raise DataError(f"data file {str(path)!r} does not exist")
        if path.suffix == ".csv":
            frame = pl.read_csv(path, try_parse_dates=True)
        elif path.suffix in (".parquet", ".pq") or path.is_dir():
            frame = pl.read_parquet(path)
        else:
            raise DataError(f"data file {str(path)!r}: read .parquet or .csv, got suffix "
                            f"{path.suffix!r}")
    elif isinstance(data, pd.DataFrame):
        frame = pl.from_pandas(data.reset_index(drop=not any(
            n in _BAR_COLUMNS for n in (data.index.names or []) if n)))
    elif isinstance(data, pl.LazyFrame):
        frame = data.collect()
    elif isinstance(data, pl.DataFrame):
        frame = data
    else:
        raise DataError(f"data must be a polars or pandas frame, a DataFeed or a path, got "
                        f"{type(data).__name__}")
    missing = [c for c in _BAR_COLUMNS if c not in frame.columns]
    if missing:
        raise DataError(f"data is missing column(s) {missing}; zipline runs need "
                        f"{list(_BAR_COLUMNS)}")
    frame = frame.select(_BAR_COLUMNS)
    ts = frame.schema["timestamp"]
    if isinstance(ts, pl.Date):
        frame = frame.with_columns(pl.col("timestamp").cast(pl.Datetime("ns")))
    elif isinstance(ts, pl.Datetime):
        if ts.time_zone is not None:
            frame = frame.with_columns(
                pl.col("timestamp").dt.convert_time_zone("UTC").dt.replace_time_zone(None))
        frame = frame.with_columns(pl.col("timestamp").cast(pl.Datetime("ns")))
    else:
        raise DataError(f"data column 'timestamp' must hold dates or datetimes, got {ts}")
    off = frame.filter(pl.col("timestamp") != pl.col("timestamp").dt.truncate("1d"))
    if minute:
        return frame.with_columns(pl.col("asset").cast(pl.Utf8))
    if off.height:
        r = off.row(0, named=True)
        raise DataError(f"daily bars are stamped with their session's date at midnight; "
                        f"asset {r['asset']!r} has a bar at {r['timestamp']}")
    return frame.with_columns(pl.col("asset").cast(pl.Utf8))


def read_bars(data: Any, minute: bool = False) -> pl.DataFrame:
    """The bars of a zipline run from a frame or a path, checked and with naive dates.

    Parameters
    ----------
    data : polars/pandas DataFrame, LazyFrame, or path (.parquet, .csv)
        Columns ``timestamp``, ``asset``, ``open``, ``high``, ``low``,
        ``close``, ``volume``; timestamps are sessions' dates (midnight), or
        with ``minute`` UTC minutes (tz-aware ones converted to naive UTC).
    minute : bool
        Minute bars (``run_algorithm(..., data_frequency="minute")`` checks
        them against the calendar's minutes).

    Raises
    ------
    DataError
        For a missing file or column, or a daily bar not stamped at midnight.
    """
    return _frame(data, minute=minute)


def _calendar_sessions(name: str | None, first: pd.Timestamp,
                       last: pd.Timestamp, data_days: pd.DatetimeIndex) -> pd.DatetimeIndex:
    """Sessions of the exchange calendar around the run (the data's days without one)."""
    if name is None:
        return data_days
    try:
        import exchange_calendars as xcals  # type: ignore[import-untyped,unused-ignore]
    except ImportError:  # pragma: no cover - exchange_calendars comes with the test extra
        raise PortingError(
            f"trading_calendar={name!r} needs the exchange_calendars package (pip install "
            "exchange_calendars), or pass trading_calendar=None to use the data's dates "
            "as sessions") from None
    with warnings.catch_warnings():  # exchange_calendars' own pandas deprecations
        warnings.filterwarnings("ignore", module="exchange_calendars")
        warnings.filterwarnings("ignore", message=".*DatetimeTZDtype is deprecated")
        cal = xcals.get_calendar(name)
        lo = max(first - pd.Timedelta(days=40), pd.Timestamp(cal.first_session))
        hi = min(last + pd.Timedelta(days=40), pd.Timestamp(cal.last_session))
        return pd.DatetimeIndex(cal.sessions_in_range(lo, hi)).tz_localize(None)


def _exchange_calendar(name: str, side: str = "right") -> Any:
    try:
        import exchange_calendars as xcals  # type: ignore[import-untyped,unused-ignore]
    except ImportError:  # pragma: no cover - exchange_calendars comes with the test extra
        raise PortingError(
            f"trading_calendar={name!r} needs the exchange_calendars package (pip install "
            "exchange_calendars)") from None
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", module="exchange_calendars")
        warnings.filterwarnings("ignore", message=".*DatetimeTZDtype is deprecated")
        warnings.filterwarnings("ignore", message=".*drops timezone information")
        return xcals.get_calendar(name, side=side)


#: When zipline's minute clock runs ``before_trading_start``: 8:45 New York time.
_BEFORE_TRADING_START = pd.Timedelta(hours=8, minutes=45)


def _minute_run(frame: pl.DataFrame, calendar: str, start: pd.Timestamp,
                end: pd.Timestamp) -> tuple[pl.DataFrame, MinuteGrid]:
    """Check minute bars against the calendar's minutes; the bars up to ``end`` and the grid.

    Every bar must be stamped at a minute of a session, labelled by the
    minute's end in UTC (14:31 to 21:00 in winter on XNYS), as zipline labels
    minute bars; every minute of every session from the data's first to
    ``end`` must have a bar (of some asset), and every asset one bar per
    minute between its first and last bars.
    """
    cal = _exchange_calendar(calendar)
    ts = frame["timestamp"].to_numpy().astype("datetime64[ns]").astype(np.int64)
    lo = pd.Timestamp(int(ts.min())).normalize() - pd.Timedelta(days=5)
    hi = max(pd.Timestamp(int(ts.max())).normalize(), end) + pd.Timedelta(days=5)
    lo = max(lo, pd.Timestamp(cal.first_session))
    hi = min(hi, pd.Timestamp(cal.last_session))
    labels = pd.DatetimeIndex(cal.sessions_in_range(lo, hi))
    opens = pd.DatetimeIndex(cal.first_minutes[labels]).asi8
    closes = pd.DatetimeIndex(cal.last_minutes[labels]).asi8
    minute = 60_000_000_000
    grid_minutes = np.concatenate([np.arange(o, c + minute, minute, dtype=np.int64)
                                   for o, c in zip(opens, closes, strict=True)])
    pos = np.searchsorted(grid_minutes, ts)
    bad = (pos >= grid_minutes.size) | (grid_minutes[np.minimum(pos, grid_minutes.size - 1)]
                                        != ts)
    if bad.any():
        r = frame.row(int(np.flatnonzero(bad)[0]), named=True)
        raise DataError(
            f"asset {r['asset']!r} has a bar at {r['timestamp']} (UTC), which is not a minute "
            f"of a {calendar} session: minute bars are stamped in UTC (or tz-aware) with the "
            "end of their minute, as zipline stores them (14:31 to 21:00 UTC on a winter NYSE "
            "session)")
    sess = np.searchsorted(opens, ts, side="right") - 1
    end_s = int(np.searchsorted(labels.asi8, end.value, side="right")) - 1
    keep = sess <= end_s
    frame, ts, pos, sess = (frame.filter(pl.Series(keep)), ts[keep], pos[keep], sess[keep])
    if ts.size == 0 or labels[end_s] < start or sess.max() < np.searchsorted(
            labels.asi8, start.value):
        raise DataError(f"the data has no minute bar from {start.date()} to {end.date()}")
    first_s = int(sess.min())
    lo_m = int(np.searchsorted(grid_minutes, opens[first_s]))
    hi_m = int(np.searchsorted(grid_minutes, closes[end_s], side="right"))
    covered = np.zeros(hi_m - lo_m, dtype=bool)
    covered[pos - lo_m] = True
    if not covered.all():
        gap = pd.Timestamp(int(grid_minutes[lo_m + int(np.flatnonzero(~covered)[0])]))
        raise DataError(f"the data has no bar at minute {gap} (UTC) of session "
                        f"{labels[np.searchsorted(opens, gap.value, side='right') - 1].date()}: "
                        "zipline runs handle_data at every minute of every session")
    spans = (frame.with_columns(pl.Series("pos", pos)).group_by("asset")
             .agg(pl.col("pos").min().alias("a"), pl.col("pos").max().alias("b"),
                  pl.len().alias("n"), pl.col("pos").n_unique().alias("u")).sort("asset"))
    for asset, a, b, n, u in spans.iter_rows():
        if n != u or n != b - a + 1:
            mine = np.sort(pos[(frame["asset"] == asset).to_numpy()])
            k = int(np.flatnonzero(np.diff(mine) != 1)[0])
            what = "two bars" if mine[k + 1] == mine[k] else "no bar"
            at = mine[k] if what == "two bars" else mine[k] + 1
            raise DataError(
                f"asset {asset!r} has {what} at minute {pd.Timestamp(int(grid_minutes[at]))} "
                "(UTC) between its first and last bars: the zipline shim needs one bar per "
                "minute (zipline would forward-fill the price and mark the asset stale)")
    # session bars from the minutes (what zipline's daily bars and aggregator hold)
    names = sorted(frame["asset"].unique().to_list())
    n_s = end_s - first_s + 1
    daily_frame = (frame.with_columns(pl.Series("s", sess - first_s))
                   .sort("timestamp")
                   .group_by(["s", "asset"], maintain_order=True)
                   .agg(pl.col("open").first(), pl.col("high").max(), pl.col("low").min(),
                        pl.col("close").last(), pl.col("volume").sum()))
    col_of = {a: i for i, a in enumerate(names)}
    rows = daily_frame["s"].to_numpy()
    cols = np.array([col_of[a] for a in daily_frame["asset"].to_list()], dtype=np.intp)
    daily: dict[str, np.ndarray] = {}
    for f in ("open", "high", "low", "close", "volume"):
        arr = np.full((n_s, len(names)), np.nan)
        arr[rows, cols] = daily_frame[f].to_numpy().astype(float)
        arr.flags.writeable = False
        daily[f] = arr
    run_labels = labels[first_s:end_s + 1]
    before = (run_labels + _BEFORE_TRADING_START).tz_localize("America/New_York") \
        .tz_convert("UTC").asi8
    grid = MinuteGrid(opens[first_s:end_s + 1], closes[first_s:end_s + 1],
                      run_labels.tz_localize("UTC"), daily, before,
                      int(np.searchsorted(run_labels, start)))
    return frame, grid


def _check_sessions(frame: pl.DataFrame, sessions: pd.DatetimeIndex, start: pd.Timestamp,
                    end: pd.Timestamp) -> None:
    """Every session of the run has bars, every bar is a session, no asset skips one."""
    days = pd.DatetimeIndex(frame["timestamp"].unique().sort().to_numpy())
    extra = days.difference(sessions)
    if len(extra):
        raise DataError(f"the data has bars on {extra[0].date()}, which is not a session of the "
                        "trading calendar (pass trading_calendar=... or drop those rows)")
    run = sessions[(sessions >= start) & (sessions <= end)]
    missing = run.difference(days)
    if len(missing):
        raise DataError(f"the data has no bar on session {missing[0].date()} (zipline runs "
                        "handle_data on every session from start to end)")
    pos = {d: i for i, d in enumerate(sessions)}
    spans = frame.group_by("asset").agg(pl.col("timestamp").min().alias("a"),
                                        pl.col("timestamp").max().alias("b"),
                                        pl.len().alias("n")).sort("asset")
    for asset, a, b, n in spans.iter_rows():
        expected = pos[pd.Timestamp(b)] - pos[pd.Timestamp(a)] + 1
        if n != expected:
            have = set(frame.filter(pl.col("asset") == asset)["timestamp"].to_list())
            hole = next(d for d in sessions[pos[pd.Timestamp(a)]:pos[pd.Timestamp(b)] + 1]
                        if d.to_pydatetime() not in have)
            raise DataError(
                f"asset {asset!r} has no bar on session {hole.date()} between its first "
                f"({pd.Timestamp(a).date()}) and last ({pd.Timestamp(b).date()}) bars, or has "
                "two bars on one session: the zipline shim needs one bar per session (zipline "
                "would forward-fill the price and mark the asset stale)")


def run_algorithm(
    start: Any,
    end: Any,
    initialize: Callable[..., Any],
    capital_base: float = 1e7,
    handle_data: Callable[..., Any] | None = None,
    before_trading_start: Callable[..., Any] | None = None,
    analyze: Callable[..., Any] | None = None,
    data_frequency: str = "daily",
    *,
    data: Any = None,
    trading_calendar: str | None = "XNYS",
    benchmark_returns: Any = None,
    **kwargs: Any,
) -> pd.DataFrame:
    """Run a zipline algorithm on mlbacktest's engine and return zipline's ``perf`` frame.

    Parameters
    ----------
    start, end : str, datetime or pandas.Timestamp
        First and last sessions of the run (dates). Bars before ``start``
        are history (``data.history`` reads them, as zipline reads a bundle
        before the run).
    initialize : callable
        ``initialize(context)``, called once before the first session
        (``symbol``, ``set_commission``, ``schedule_function``, ...; no orders).
    capital_base : float
        Starting cash (zipline's command-line default, 1e7).
    handle_data : callable, optional
        ``handle_data(context, data)``, called at each session's close (minute
        mode: at every minute).
    before_trading_start : callable, optional
        ``before_trading_start(context, data)``, called before each session
        (minute mode: at 8:45 New York time; ``data`` sees the previous
        session's close; no orders).
    analyze : callable, optional
        ``analyze(context, perf)``, called with the result.
    data_frequency : {"daily", "minute"}
        ``"minute"``: minute bars, zipline's minute clock (orders fill at the
        next minute's close, scheduled functions at their time rule's
        minute, ``data.history`` at ``"1m"`` and ``"1d"``); ``perf`` still has
        one row per session.
    data : polars/pandas DataFrame, LazyFrame, DataFeed or path
        The bars (of a feed: its validated in-memory panel): ``timestamp``
        (the session's date; minute mode: the minute in UTC, labelled by its
        end as zipline labels it), ``asset`` (the symbol), ``open``,
        ``high``, ``low``, ``close``, ``volume``; one bar per asset and
        session (minute) between its first and last bars.
    trading_calendar : str or None
        exchange_calendars name of the sessions (zipline's default
        ``"XNYS"``): date rules and the check that every session has bars
        use it. None: the data's dates are the sessions.
    benchmark_returns : pandas.Series, optional
        Accepted for zipline's signature; the perf frame has no benchmark
        columns.
    **kwargs
        zipline's other arguments (``bundle``, ``environ``, ...) raise
        PortingError naming the mlbacktest way.

    Returns
    -------
    pandas.DataFrame
        One row per session, indexed by the session's timestamp (UTC
        midnight; zipline uses the session's close, as minute mode does): ``portfolio_value``,
        ``returns``, ``pnl``, ``starting_cash``, ``ending_cash``,
        ``starting_value``, ``ending_value``, ``capital_used``,
        ``algorithm_period_return``, ``long_value``, ``short_value``,
        ``longs_count``, ``shorts_count``, ``gross_leverage``,
        ``net_leverage``, ``positions``, ``transactions``, ``orders``
        (lists of dicts, as zipline's) and every ``record``-ed variable.

    Raises
    ------
    PortingError
        For a bundle, or a zipline call outside the subset.
    DataError
        For data without the bar columns, with bars off the daily grid
        (minute mode: off the calendar's minutes), or a session (minute)
        missing (named).
    """
    for name in kwargs:
        if name in _UNSUPPORTED_RUN_ARGS:
            if kwargs[name] is None:
                continue
            raise PortingError(f"run_algorithm({name}=...) is not supported by the zipline shim: "
                               f"{_UNSUPPORTED_RUN_ARGS[name]}")
        raise TypeError(f"run_algorithm() got an unexpected keyword argument {name!r}")
    if data_frequency not in ("daily", "minute"):
        raise ValueError(f"data_frequency must be 'daily' or 'minute', got {data_frequency!r}")
    minute = data_frequency == "minute"
    if minute and trading_calendar is None:
        raise ValueError("run_algorithm(data_frequency='minute') needs trading_calendar (the "
                         "exchange_calendars name whose session minutes the run follows)")
    if not callable(initialize):
        raise TypeError(f"initialize must be callable, got {initialize!r}")
    start_ts = pd.Timestamp(start).tz_localize(None).normalize() if pd.Timestamp(start).tzinfo \
        else pd.Timestamp(start).normalize()
    end_ts = pd.Timestamp(end).tz_localize(None).normalize() if pd.Timestamp(end).tzinfo \
        else pd.Timestamp(end).normalize()
    if end_ts < start_ts:
        raise ValueError(f"end ({end_ts.date()}) is before start ({start_ts.date()})")
    grid = None
    if minute:
        assert trading_calendar is not None
        frame, grid = _minute_run(_frame(data, minute=True).sort(["timestamp", "asset"]),
                                  trading_calendar, start_ts, end_ts)
        days = grid.session_labels.tz_localize(None)
        cal = _calendar_sessions(trading_calendar, days[0], end_ts, days)
    else:
        frame = _frame(data).filter(pl.col("timestamp") <= end_ts).sort(["timestamp", "asset"])
        if frame.filter(pl.col("timestamp") >= start_ts).height == 0:
            raise DataError(f"the data has no bar from {start_ts.date()} to {end_ts.date()}")
        days = pd.DatetimeIndex(frame["timestamp"].unique().sort().to_numpy())
        cal = _calendar_sessions(trading_calendar, days[0], end_ts, days)
        _check_sessions(frame, cal, start_ts, end_ts)
    feed = PolarsDataFeed(frame)
    names = feed.asset_names
    spans = frame.group_by("asset").agg(pl.col("timestamp").min().alias("a"),
                                        pl.col("timestamp").max().alias("b"))
    first = np.zeros(len(names), dtype=np.int64)
    last = np.zeros(len(names), dtype=np.int64)
    index = {n: i for i, n in enumerate(names)}
    for asset, a, b in spans.iter_rows():
        first[index[asset]] = pd.Timestamp(a).value
        last[index[asset]] = pd.Timestamp(b).value
    algo = ZiplineAlgorithm(
        initialize=initialize, handle_data=handle_data,
        before_trading_start=before_trading_start, capital_base=capital_base,
        asset_names=tuple(names), first_ts=first, last_ts=last,
        sessions=days[days >= start_ts], calendar_sessions=cal, start_ns=start_ts.value,
        grid=grid)
    if minute and list(names) != sorted(names):  # pragma: no cover - feeds sort their assets
        raise RuntimeError("the feed's assets are not in sorted order")
    api._RUNNING.append(algo)
    try:
        initialize(algo.context)
        given = None if algo.commission is None else _Given(algo.commission)
        config = zipline_config(capital_base, given, algo.slippage)
        algo.commission = config.commission_model
        algo.volume_capped = config.max_volume_participation is not None
        strategy = ZiplineStrategy(algo)
        algo.phase = "trading"
        BacktestEngine(feed, strategy, config).run(progress=False)
        perf = algo.perf()
        if analyze is not None:
            analyze(algo.context, perf)
    finally:
        api._RUNNING.remove(algo)
    return perf


class _Given:
    """A commission model already translated (``set_commission`` stores the mlbacktest model)."""

    def __init__(self, model: Any) -> None:
        self.model = model

    def to_model(self) -> Any:
        return self.model


# ------------------------------------------------------------ install
#: Module names ``install`` provides, and the shim module behind each.
_MODULES: dict[str, str] = {
    "zipline": "mlbacktest.compat.zipline",
    "zipline.api": "mlbacktest.compat.zipline.api",
    "zipline.finance": "mlbacktest.compat.zipline.finance",
    "zipline.finance.commission": "mlbacktest.compat.zipline.finance.commission",
    "zipline.finance.slippage": "mlbacktest.compat.zipline.finance.slippage",
    "zipline.finance.execution": "mlbacktest.compat.zipline.finance.execution",
    "zipline.pipeline": "mlbacktest.compat.zipline.pipeline",
    "zipline.pipeline.factors": "mlbacktest.compat.zipline.pipeline",
    "zipline.pipeline.filters": "mlbacktest.compat.zipline.pipeline",
    "zipline.pipeline.data": "mlbacktest.compat.zipline.pipeline",
}
_SAVED: list[dict[str, ModuleType]] = []


def installed() -> bool:
    """Whether :func:`install` is in effect (``import zipline`` gives the shim)."""
    return sys.modules.get("zipline") is sys.modules[__name__]


def install(*, replace: bool = False) -> None:
    """Make ``import zipline`` / ``from zipline.api import ...`` resolve to this shim.

    Puts the shim's modules in :data:`sys.modules` under the names
    ``zipline``, ``zipline.api``, ``zipline.finance`` (``.commission``,
    ``.slippage``, ``.execution``) and ``zipline.pipeline`` (``.factors``,
    ``.filters``, ``.data``: the built-in factors; other names raise
    PortingError), so an unmodified algorithm file imports the shim.
    A real zipline-reloaded installed but not yet imported is shadowed
    until :func:`uninstall`; one already imported is not replaced unless
    ``replace=True``, and is then set aside and restored by
    :func:`uninstall` (its other submodules, such as ``zipline.data``, are
    set aside too so that nothing mixes the two).

    Parameters
    ----------
    replace : bool
        Allow setting aside a real zipline already imported.

    Raises
    ------
    ImportError
        When a real zipline is imported already and ``replace`` is False.
    """
    if installed():
        return
    current = sys.modules.get("zipline")
    if current is not None and not replace:
        raise ImportError(
            f"a real zipline is imported already ({getattr(current, '__file__', current)}); "
            "mlbacktest.compat.zipline.install(replace=True) sets it aside until uninstall()")
    saved = {k: m for k, m in sys.modules.items() if k == "zipline" or k.startswith("zipline.")}
    for k in saved:
        del sys.modules[k]
    for name, target in _MODULES.items():
        sys.modules[name] = sys.modules[target]
    _SAVED.append(saved)


def uninstall() -> None:
    """Undo :func:`install`: remove the shim's names, restore a real zipline set aside."""
    if not installed():
        return
    for name in _MODULES:
        sys.modules.pop(name, None)
    if _SAVED:
        sys.modules.update(_SAVED.pop())


@contextmanager
def installed_as_zipline(*, replace: bool = False) -> Iterator[None]:
    """:func:`install` for the duration of a ``with`` block, then :func:`uninstall`."""
    was = installed()
    install(replace=replace)
    try:
        yield
    finally:
        if not was:
            uninstall()


def load_algorithm(path: str | Path, *, replace: bool = False) -> ModuleType:
    """Import a zipline algorithm file with ``zipline`` resolving to the shim.

    Returns the module; its ``initialize``, ``handle_data``,
    ``before_trading_start`` and ``analyze`` go to :func:`run_algorithm`.
    The shim is installed for the import only (the module keeps the shim's
    functions it imported).
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"zipline algorithm file {str(path)!r} does not exist")
    name = f"_mlbacktest_zipline_algo_{abs(hash(str(path.resolve())))}"
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:  # pragma: no cover - a .py path always has one
        raise ImportError(f"cannot import {str(path)!r}")
    module = importlib.util.module_from_spec(spec)
    with installed_as_zipline(replace=replace):
        spec.loader.exec_module(module)
    if not callable(getattr(module, "initialize", None)):
        raise PortingError(f"{str(path)!r} defines no initialize(context): a zipline algorithm "
                           "file defines initialize and usually handle_data")
    return module


# re-exported for ``import zipline; zipline.finance...`` style access
_ = (finance, pipeline, execution)
