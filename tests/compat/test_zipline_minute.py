"""zipline's minute mode: the shim against zipline-reloaded, and hand-computed scenarios.

Minute bars of three assets on every XNYS minute of a few sessions are written
into a zipline minute bundle (the minute bar writer, plus the session bars
aggregated from the minutes for the daily reader; no network) and run by real
zipline-reloaded with ``data_frequency="minute"``; the same frame runs through
``mlbacktest.compat.zipline.run_algorithm(..., data_frequency="minute")``. One
run spans Thanksgiving 2014 (the early close of 28 November at 13:00), the other
the start of daylight saving time in March 2014. Every transaction (minute,
asset, amount, price), every order's final state (creation minute, amount,
filled, commission, status), the daily positions, ``portfolio_value`` and cash,
and every recorded variable agree to 1e-9 relative.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pandas as pd
import polars as pl
import pytest

pytest.importorskip("exchange_calendars", reason="the zipline extra")
sys.path.insert(0, str(Path(__file__).parent))
import zipline_oracle as oracle  # noqa: E402

from mlbacktest.compat.zipline import api, load_algorithm, run_algorithm  # noqa: E402
from mlbacktest.errors import DataError, PortingError  # noqa: E402

ALGOS = Path(__file__).parent / "algos"
SYMBOLS = ["AAPL", "IBM", "MSFT"]
RTOL = 1e-9
#: (first bar, first session of the run, last session) of each data set
SPANS = {"thanksgiving": ("2014-11-17", "2014-11-19", "2014-12-03"),
         "dst": ("2014-03-03", "2014-03-05", "2014-03-13")}
CASES = {"thanksgiving": ("minute_intraday", "minute_costs"), "dst": ("minute_intraday",)}
PARAMS = [(span, algo) for span, algos in CASES.items() for algo in algos]

needs_oracle = pytest.mark.skipif(
    oracle.oracle_python() is None,
    reason="no zipline-reloaded environment: python -m venv .zipline-venv && "
           ".zipline-venv/bin/pip install zipline-reloaded==3.2.1 (or set MLBT_ZIPLINE_PYTHON)")


def _frame(span: str) -> pd.DataFrame:
    first, _, end = SPANS[span]
    return oracle.synthetic_minute_frame(SYMBOLS, first, end, seed=5)


@pytest.fixture(scope="module")
def frames():
    return {span: _frame(span) for span in SPANS}


@pytest.fixture(scope="module")
def zipline_out(frames, tmp_path_factory):
    """Each data set's cases run once on real zipline-reloaded (one bundle per data set)."""
    out = {}
    for span, algos in CASES.items():
        _, start, end = SPANS[span]
        cases = {a: {"algo": ALGOS / f"{a}.py", "start": start, "end": end, "capital": 1e6,
                     "frequency": "minute"} for a in algos}
        out[span] = oracle.run_oracle(frames[span], cases, tmp_path_factory.mktemp(span))
    return out


@pytest.fixture(scope="module")
def shim_out(frames):
    out = {}
    for span, algo in PARAMS:
        _, start, end = SPANS[span]
        m = load_algorithm(ALGOS / f"{algo}.py")
        out[span, algo] = run_algorithm(
            start, end, m.initialize, 1e6, handle_data=getattr(m, "handle_data", None),
            before_trading_start=getattr(m, "before_trading_start", None),
            data=frames[span], data_frequency="minute")
    return out


def _close(a: float, b: float) -> bool:
    return abs(a - b) <= RTOL * max(abs(a), abs(b), 1e-300)


@needs_oracle
@pytest.mark.parametrize("span,algo", PARAMS)
def test_minute_mode_agrees_with_zipline(span, algo, shim_out, zipline_out):
    ours, real = shim_out[span, algo], zipline_out[span][algo]
    # one perf row per session, stamped at the session's close, as zipline's
    assert [d.isoformat() for d in ours.index] == real["period_close"]
    mine = sorted(((t["dt"].isoformat(), t["sid"].symbol, t["amount"], t["price"])
                   for day in ours.transactions for t in day), key=lambda t: t[:2])
    theirs = sorted((tuple(t[:4]) for t in real["transaction_times"]), key=lambda t: t[:2])
    assert len(mine) == len(theirs) > 100
    for a, b in zip(mine, theirs, strict=True):
        assert a[:3] == b[:3] and _close(a[3], b[3]), (a, b)
    final = {}
    for day in ours.orders:
        for o in day:
            final[o["id"]] = o
    o_ours = sorted((o["created"].isoformat(), o["sid"].symbol, o["amount"], o["filled"],
                     o["commission"], o["status"]) for o in final.values())
    o_real = sorted(tuple(o) for o in real["order_times"])
    assert len(o_ours) == len(o_real)
    for a, b in zip(o_ours, o_real, strict=True):
        assert a[:4] == b[:4] and a[5] == b[5] and _close(a[4], b[4]), (a, b)
    for col in ("portfolio_value", "ending_cash"):
        x, y = ours[col].to_numpy(float), np.array(real[col])
        assert (np.abs(x - y) <= RTOL * np.abs(y)).all(), col
    for day_ours, day_real in zip(ours.positions, real["positions"], strict=True):
        p_ours = sorted((p["sid"].symbol, p["amount"], p["cost_basis"], p["last_sale_price"])
                        for p in day_ours)
        p_real = sorted(tuple(p) for p in day_real)
        assert [p[:2] for p in p_ours] == [p[:2] for p in p_real]
        for p, q in zip(p_ours, p_real, strict=True):
            assert _close(p[2], q[2]) and _close(p[3], q[3]), (p, q)
    assert real["records"]
    for col, values in real["records"].items():
        for a, b in zip(ours[col], values, strict=True):
            if isinstance(b, (str, bool)) or b is None:
                assert a == b, col
            else:
                assert (a != a and b != b) or _close(float(a), float(b)), (col, a, b)


@needs_oracle
def test_the_minute_cases_exercise_what_they_claim(zipline_out):
    real = zipline_out["thanksgiving"]["minute_intraday"]
    # the early close: the session of 28 November ends at 13:00 New York time
    assert "2014-11-28T18:00:00+00:00" in real["period_close"]
    by_order: dict[str, list] = {}
    for t in real["transaction_times"]:
        by_order.setdefault(t[5], []).append(t[0])
    assert max(len(v) for v in by_order.values()) > 3, "no order filled over several minutes"
    assert any(v[0][:10] != v[-1][:10] for v in by_order.values()), \
        "no order carried over the close"
    # an order placed at the last minute but one fills at the session's last minute
    assert any(t[0].endswith("21:00:00+00:00") for t in real["transaction_times"])
    costs = zipline_out["thanksgiving"]["minute_costs"]
    assert any(o[4] == 1.0 for o in costs["order_times"]), "no minimum commission"
    dst = zipline_out["dst"]["minute_intraday"]
    assert dst["period_close"][:2] == ["2014-03-05T21:00:00+00:00", "2014-03-06T21:00:00+00:00"]
    assert "2014-03-10T20:00:00+00:00" in dst["period_close"]


# ------------------------------------------------------------ hand-computed
def _bars(sessions: list[str], assets: dict[str, float], volume: float = 1000.0) -> pl.DataFrame:
    """Every minute of the sessions; the close of minute k of the run is base + k/1000,
    open = close - 0.001, high = close + 0.01, low = open - 0.01."""
    minutes = oracle.xnys_minutes(sessions[0], sessions[-1])
    k = np.arange(len(minutes))
    parts = []
    for name, base in assets.items():
        close = base + k / 1000.0
        parts.append(pl.DataFrame({
            "timestamp": minutes.to_numpy(), "asset": name, "open": close - 0.001,
            "high": close + 0.01, "low": close - 0.011, "close": close,
            "volume": np.full(len(minutes), volume)}))
    return pl.concat(parts).sort(["timestamp", "asset"])


def test_scheduled_functions_fire_at_zipline_s_minutes_on_a_half_day():
    frame = _bars(["2014-11-26", "2014-11-28"], {"A": 10.0})
    fired: dict[str, list[pd.Timestamp]] = {}

    def initialize(context):
        for name, rule in [("open", api.time_rules.market_open()),
                           ("open30", api.time_rules.market_open(minutes=30)),
                           ("open1h", api.time_rules.market_open(hours=1)),
                           ("close", api.time_rules.market_close()),
                           ("close15", api.time_rules.market_close(minutes=15)),
                           ("none", None)]:
            api.schedule_function(lambda c, d, n=name: fired.setdefault(n, []).append(
                api.get_datetime()), api.date_rules.every_day(), rule)

    run_algorithm("2014-11-26", "2014-11-28", initialize, 1e4, data=frame,
                  data_frequency="minute")
    # 26 Nov: 9:31-16:00 New York (14:31-21:00 UTC); 28 Nov closes at 13:00 (18:00 UTC)
    utc = {k: [t.strftime("%d %H:%M") for t in v] for k, v in fired.items()}
    assert utc == {"open": ["26 14:31", "28 14:31"], "open30": ["26 15:00", "28 15:00"],
                   "open1h": ["26 15:30", "28 15:30"], "close": ["26 20:59", "28 17:59"],
                   "close15": ["26 20:45", "28 17:45"], "none": ["26 14:31", "28 14:31"]}


def test_fills_at_the_next_minute_with_volume_limit_and_carry():
    """An order of 250 shares at the session's last minute but one: 10 % of 1,000 shares
    fill at the last minute, the rest at the next session's first two minutes, each at
    that minute's close + 5 bps, commission $0.001 a share."""
    frame = _bars(["2014-11-24", "2014-11-25"], {"A": 10.0})
    placed = []

    def initialize(context):
        api.schedule_function(buy, api.date_rules.every_day(), api.time_rules.market_close())

    def buy(context, data):
        if not placed:
            placed.append(api.get_datetime())
            api.order(api.symbol("A"), 250)

    perf = run_algorithm("2014-11-24", "2014-11-25", initialize, 1e4, data=frame,
                         data_frequency="minute")
    txns = [(t["dt"].strftime("%d %H:%M"), t["amount"], t["price"])
            for day in perf.transactions for t in day]
    close = {pd.Timestamp(t): c for t, c in zip(frame["timestamp"].to_list(),
                                                frame["close"].to_list(), strict=True)}
    last = pd.Timestamp("2014-11-24 21:00")
    nxt = [pd.Timestamp("2014-11-25 14:31"), pd.Timestamp("2014-11-25 14:32")]
    assert placed[0] == pd.Timestamp("2014-11-24 20:59", tz="UTC")
    assert txns == [("24 21:00", 100, close[last] * 1.0005),
                    ("25 14:31", 100, close[nxt[0]] * 1.0005),
                    ("25 14:32", 50, close[nxt[1]] * 1.0005)]
    assert list(perf.index.strftime("%d %H:%M")) == ["24 21:00", "25 21:00"]
    cash1 = 1e4 - 100 * close[last] * 1.0005 - 0.1
    assert perf.ending_cash.iloc[0] == pytest.approx(cash1, rel=1e-12)
    assert perf.portfolio_value.iloc[0] == pytest.approx(cash1 + 100 * close[last], rel=1e-12)
    cash2 = cash1 - sum(q * close[t] * 1.0005 + q * 0.001 for q, t in zip((100, 50), nxt,
                                                                          strict=True))
    end = pd.Timestamp("2014-11-25 21:00")
    assert perf.portfolio_value.iloc[1] == pytest.approx(cash2 + 250 * close[end], rel=1e-12)
    assert [len(d) for d in perf.orders] == [1, 1]


def test_history_at_1m_and_1d_and_before_trading_start():
    frame = _bars(["2014-11-24", "2014-11-25"], {"A": 10.0, "B": 20.0})
    seen = {}

    def initialize(context):
        api.schedule_function(look, api.date_rules.every_day(),
                              api.time_rules.market_open(minutes=3))

    def before(context, data):
        seen.setdefault("bts_dt", []).append(api.get_datetime())
        seen["bts_minutes"] = data.current_session_minutes
        seen.setdefault("bts_day", []).append(
            data.history(api.symbol("A"), "close", 1, "1d"))

    def look(context, data):
        a = api.symbol("A")
        seen["m"] = data.history(a, "close", 5, "1m")
        seen["d"] = data.history([a, api.symbol("B")], ["open", "high", "low", "close",
                                                        "volume"], 2, "1d")
        seen["cur"] = data.current(a, ["open", "close", "volume", "price"])
        seen["a"] = a
        seen["minutes"] = data.current_session_minutes

    run_algorithm("2014-11-25", "2014-11-25", initialize, 1e4, before_trading_start=before,
                  data=frame, data_frequency="minute")
    # minute k of the data: close 10 + k/1000; 2014-11-24 has minutes 0..389
    now = 390 + 2  # the third minute of 25 November
    assert list(seen["m"].index.strftime("%d %H:%M")) == ["24 20:59", "24 21:00", "25 14:31",
                                                           "25 14:32", "25 14:33"]
    np.testing.assert_allclose(seen["m"].to_numpy(), 10 + np.arange(now - 4, now + 1) / 1000)
    d = seen["d"]
    assert list(d.index.get_level_values(0).unique().strftime("%Y-%m-%d")) == [
        "2014-11-24", "2014-11-25"]
    a = d.xs(seen["a"], level=1)
    # 24 Nov complete; 25 Nov so far (three minutes)
    np.testing.assert_allclose(a["open"], [10 - 0.001, 10.390 - 0.001])
    np.testing.assert_allclose(a["high"], [10.389 + 0.01, 10.392 + 0.01])
    np.testing.assert_allclose(a["low"], [10 - 0.011, 10.390 - 0.011])
    np.testing.assert_allclose(a["close"], [10.389, 10.392])
    np.testing.assert_allclose(a["volume"], [390_000, 3_000])
    assert seen["cur"].to_dict() == pytest.approx(
        {"open": 10.391, "close": 10.392, "volume": 1000.0, "price": 10.392})
    for key in ("minutes", "bts_minutes"):
        assert len(seen[key]) == 390
        assert (seen[key][0], seen[key][-1]) == (pd.Timestamp("2014-11-25 14:31", tz="UTC"),
                                                 pd.Timestamp("2014-11-25 21:00", tz="UTC"))
    # before_trading_start runs at 8:45 New York time and sees the session before
    assert seen["bts_dt"] == [pd.Timestamp("2014-11-25 13:45", tz="UTC")]
    assert list(seen["bts_day"][0].index.strftime("%Y-%m-%d")) == ["2014-11-24"]
    assert seen["bts_day"][0].iloc[0] == pytest.approx(10.389)


def test_minute_data_errors_name_the_bar():
    frame = _bars(["2014-11-24"], {"A": 10.0, "B": 20.0})

    def run(data, **kw):
        return run_algorithm("2014-11-24", "2014-11-24", lambda c: None, 1e4, data=data,
                             data_frequency="minute", **kw)

    # labelled by the minute's start (9:30 New York) instead of its end
    shifted = frame.with_columns(pl.col("timestamp") - pl.duration(minutes=1))
    with pytest.raises(DataError, match=r"asset 'A' has a bar at 2014-11-24 14:30:00 \(UTC\), "
                                        r"which is not a minute of a XNYS session"):
        run(shifted)
    hole = frame.filter(~((pl.col("asset") == "B")
                          & (pl.col("timestamp") == pd.Timestamp("2014-11-24 16:00"))))
    with pytest.raises(DataError, match=r"asset 'B' has no bar at minute 2014-11-24 16:00:00"):
        run(hole)
    twice = pl.concat([frame, frame.filter((pl.col("asset") == "A")
                                           & (pl.col("timestamp")
                                              == pd.Timestamp("2014-11-24 15:00")))])
    with pytest.raises(DataError, match=r"asset 'A' has two bars at minute 2014-11-24 15:00"):
        run(twice)
    gone = frame.filter(pl.col("timestamp") != pd.Timestamp("2014-11-24 17:00"))
    with pytest.raises(DataError, match=r"no bar at minute 2014-11-24 17:00:00 \(UTC\) of "
                                        r"session 2014-11-24"):
        run(gone)
    with pytest.raises(ValueError, match=r"needs trading_calendar"):
        run(frame, trading_calendar=None)
    with pytest.raises(DataError, match=r"no minute bar from 2014-11-25"):
        run_algorithm("2014-11-25", "2014-11-26", lambda c: None, 1e4, data=frame,
                      data_frequency="minute")


def test_time_rule_offsets_are_checked_as_zipline_checks_them():
    with pytest.raises(ValueError, match=r"between 1 minute and 12 hours"):
        api.time_rules.market_open(minutes=0)
    with pytest.raises(ValueError, match=r"between 1 minute and 12 hours"):
        api.time_rules.market_close(hours=13)
    with pytest.raises(PortingError, match=r"not a whole number of minutes"):
        api.time_rules.market_open(offset=pd.Timedelta(seconds=90))
    assert api.time_rules.market_close().offset == pd.Timedelta(minutes=1)


# ------------------------------------------------------------ pipeline, minute mode
@pytest.fixture(scope="module")
def momentum_case():
    """zipline's own momentum_pipeline.py example, unmodified, in minute mode: its pipeline
    (RSI top/bottom 3) is computed before each session from the session bars of the
    sessions before it; rebalance runs at each session's first minute."""
    frame = oracle.synthetic_minute_frame([f"S{i}" for i in range(8)], "2014-10-20",
                                          "2014-11-26", seed=11)
    path = oracle.examples_dir() / "momentum_pipeline.py"
    return frame, path, {"start": "2014-11-19", "end": "2014-11-26", "capital": 1e5}


@needs_oracle
def test_momentum_pipeline_example_in_minute_mode_agrees_with_zipline(momentum_case,
                                                                      tmp_path):
    frame, path, case = momentum_case
    source = path.read_text()
    assert path.parent.name == "examples" and path.parent.parent.name == "zipline"
    assert "from zipline.pipeline import Pipeline" in source and "mlbacktest" not in source
    real = oracle.run_oracle(frame, {"m": {**case, "algo": path, "frequency": "minute"}},
                             tmp_path)["m"]
    module = load_algorithm(path)
    ours = run_algorithm(case["start"], case["end"], module.initialize, case["capital"],
                         before_trading_start=module.before_trading_start, data=frame,
                         data_frequency="minute")
    assert [d.isoformat() for d in ours.index] == real["period_close"]
    mine = sorted((t["dt"].isoformat(), t["sid"].symbol, t["amount"], t["price"])
                  for day in ours.transactions for t in day)
    theirs = sorted(tuple(t[:4]) for t in real["transaction_times"])
    assert len(mine) == len(theirs) > 10
    assert {t[2] > 0 for t in theirs} == {True, False}  # longs and shorts
    # rebalance runs at the first minute: its orders fill at the second
    assert {t[0][11:16] for t in theirs} >= {"14:32"}
    for a, b in zip(mine, theirs, strict=True):
        assert a[:3] == b[:3] and _close(a[3], b[3]), (a, b)
    for col in ("portfolio_value", "ending_cash"):
        x, y = ours[col].to_numpy(float), np.array(real[col])
        assert (np.abs(x - y) <= RTOL * np.abs(y)).all(), col
    assert list(ours["universe_size"]) == real["records"]["universe_size"]


def _replay(grid, days, rule):
    """zipline's OncePerDay(date rule & time rule), evaluated at every minute."""
    from mlbacktest.compat.zipline._algorithm import _DAY_NS, _MINUTE_NS

    anchor = "every_minute" if rule is None else rule.anchor
    off = 0 if rule is None else int(rule.offset.value)
    next_start, triggered, out = None, False, set()
    for s in range(grid.run_from, len(grid.opens)):
        o, c = int(grid.opens[s]), int(grid.closes[s])
        ok = grid.session_labels[s].date() in days
        for m in range(o, c + 1, _MINUTE_NS):
            if next_start is None or m >= next_start:
                triggered, next_start = False, m + _DAY_NS
            hit = {"market_open": m == o + off - _MINUTE_NS, "market_close": m == c - off,
                   "every_minute": True}[anchor]
            if not triggered and ok and hit:
                triggered = True
                out.add(m)
    return out


def test_firing_minutes_equal_a_minute_by_minute_replay_of_zipline_s_rule():
    """Including sessions less than 24 hours apart (a made-up calendar whose opens move an
    hour earlier, as across a daylight-saving change on consecutive sessions), where
    zipline's once-a-day window skips or delays an event."""
    from mlbacktest.compat.zipline._algorithm import MinuteGrid
    from mlbacktest.compat.zipline._rules import DateRule

    rng = np.random.default_rng(4)
    labels = pd.bdate_range("2021-03-01", periods=30, tz="UTC")
    shift = np.where(np.arange(30) < 12, 14, 13) * 3600 + np.where(
        np.arange(30) % 7 == 3, -3600, 0)
    opens = (labels.asi8 + (shift + 60 * 31 - 3600) * 10**9).astype(np.int64)
    closes = opens + np.where(np.arange(30) % 11 == 5, 209, 389) * 60 * 10**9
    grid = MinuteGrid(opens, closes, labels, {}, opens, 2)
    naive = labels.tz_localize(None)
    rules = [None, api.time_rules.market_open(), api.time_rules.market_close(),
             api.time_rules.every_minute()]
    rules += [api.time_rules.market_open(minutes=int(m)) for m in rng.integers(1, 420, 6)]
    rules += [api.time_rules.market_close(minutes=int(m)) for m in rng.integers(1, 420, 6)]
    for date_rule in (DateRule("day"), DateRule("week", 1), DateRule("month", 0, True)):
        days = date_rule.sessions(naive)
        for rule in rules:
            assert grid.firing_minutes(days, rule) == _replay(grid, days, rule), (date_rule,
                                                                                   rule)
    # the made-up calendar does hit the window: some market_open event is skipped
    days = DateRule("day").sessions(naive)
    rule = api.time_rules.market_open(minutes=30)
    assert len(grid.firing_minutes(days, rule)) < len(labels) - 2
