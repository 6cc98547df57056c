"""Run algorithms through the real zipline-reloaded, in its own Python environment.

zipline-reloaded needs pandas < 3 and vectorbt (the other parity oracle) pandas
>= 3, so zipline lives in a separate environment: ``.zipline-venv/`` at the
repository root (``python -m venv .zipline-venv && .zipline-venv/bin/pip install
zipline-reloaded==3.2.1``) or the interpreter named by ``MLBT_ZIPLINE_PYTHON``.
The tests call this file as a script with that interpreter::

    python zipline_oracle.py spec.json out.json

``spec.json``: ``{"bars": "bars.csv", "root": "zipline_root", "cases": {name:
{"algo": path, "start": date, "end": date, "capital": float}}}``. The bars are
written into a zipline bundle registered from the CSV (no network): one equity
per symbol, daily bars on the XNYS calendar, stored by zipline at 3 decimals
(which is why the test data is rounded to 3 decimals). ``out.json`` holds, per
case, the daily portfolio_value and cash, every transaction, every order's final
state, the daily positions and the recorded variables (floats written by repr,
so they round-trip exactly).

Imported (not run), it gives the helpers of the test side: the synthetic
frame and :func:`run_oracle`.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

BUNDLE = "mlbacktest-test"
ROOT = Path(__file__).resolve().parents[2]


def oracle_python() -> str | None:
    """The interpreter of the zipline-reloaded environment, or None when there is none."""
    env = os.environ.get("MLBT_ZIPLINE_PYTHON")
    if env:
        return env
    local = ROOT / ".zipline-venv" / "bin" / "python"
    return str(local) if local.exists() else None


def run_oracle(frame: pd.DataFrame, cases: dict[str, dict[str, Any]], workdir: Path) -> dict:
    """Run every case on real zipline in one subprocess; the decoded ``out.json``."""
    python = oracle_python()
    if python is None:
        raise RuntimeError("no zipline-reloaded environment (see tests/compat/zipline_oracle.py)")
    bars = workdir / "bars.csv"
    frame.to_csv(bars, index=False)
    minute = any(v.get("frequency") == "minute" for v in cases.values())
    spec = {"bars": str(bars), "root": str(workdir / "zipline_root"),
            "frequency": "minute" if minute else "daily",
            "cases": {k: {**v, "algo": str(v["algo"])} for k, v in cases.items()}}
    (workdir / "spec.json").write_text(json.dumps(spec))
    out = workdir / "out.json"
    proc = subprocess.run([python, __file__, str(workdir / "spec.json"), str(out)],
                          capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise RuntimeError(f"zipline oracle failed:\n{proc.stderr[-4000:]}")
    return json.loads(out.read_text())


def examples_dir() -> Path:
    """``zipline/examples`` of the oracle environment's zipline-reloaded."""
    python = oracle_python()
    if python is None:
        raise RuntimeError("no zipline-reloaded environment")
    code = "import os, zipline.examples as e; print(os.path.dirname(e.__file__))"
    return Path(subprocess.run([python, "-c", code], capture_output=True, text=True,
                               check=True).stdout.strip())


def xnys_sessions(start: str, end: str) -> pd.DatetimeIndex:
    """The XNYS sessions from ``start`` to ``end`` (tz-naive dates)."""
    import warnings

    import exchange_calendars as xcals

    with warnings.catch_warnings():  # exchange_calendars' own pandas deprecations
        warnings.filterwarnings("ignore", message=".*DatetimeTZDtype is deprecated")
        return xcals.get_calendar("XNYS").sessions_in_range(start, end)


#: Volume range (low, high) per symbol; others trade 1-2 million shares a day.
THIN = {"AAPL": (20_000, 60_000), "IBM": (5_000, 20_000)}


def synthetic_frame(symbols: list[str], start: str, end: str, seed: int) -> pd.DataFrame:
    """Daily bars on every XNYS session, prices at 3 decimals, volumes whole.

    Each price is a random walk around a slow sine (a cycle of about 300
    sessions), so moving averages cross a few times a year.
    """
    rng = np.random.default_rng(seed)
    days = xnys_sessions(start, end)
    parts = []
    for k, sym in enumerate(symbols):
        n = len(days)
        cycle = 0.25 * np.sin(2 * np.pi * np.arange(n) / (280 + 40 * k) + k)
        close = 50.0 * (k + 1) * np.exp(cycle + np.cumsum(rng.normal(0.0, 0.01, n)))
        open_ = close * np.exp(rng.normal(0, 0.005, n))
        high = np.maximum(open_, close) * (1 + np.abs(rng.normal(0, 0.004, n)))
        low = np.minimum(open_, close) * (1 - np.abs(rng.normal(0, 0.004, n)))
        lo, hi = THIN.get(sym, (1_000_000, 2_000_000))
        volume = rng.integers(lo, hi, n).astype(float)
        parts.append(pd.DataFrame({
            "timestamp": days, "asset": sym,
            "open": np.round(open_, 3), "high": np.round(high, 3),
            "low": np.round(low, 3), "close": np.round(close, 3), "volume": volume,
        }))
    return pd.concat(parts, ignore_index=True).sort_values(["timestamp", "asset"],
                                                           ignore_index=True)


def xnys_minutes(start: str, end: str) -> pd.DatetimeIndex:
    """The XNYS minutes of the sessions from ``start`` to ``end``, labelled as zipline labels
    them (each minute by its end: 14:31 to 21:00 UTC in winter; tz-naive UTC)."""
    import warnings

    import exchange_calendars as xcals

    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*DatetimeTZDtype is deprecated")
        cal = xcals.get_calendar("XNYS", side="right")
        sessions = cal.sessions_in_range(start, end)
        firsts = cal.first_minutes[sessions].dt.tz_convert(None)
        lasts = cal.last_minutes[sessions].dt.tz_convert(None)
    return pd.DatetimeIndex(np.concatenate([
        pd.date_range(a, b, freq="min").to_numpy() for a, b in zip(firsts, lasts, strict=True)]))


#: Minute volume range (low, high) per symbol; others trade 2,000-20,000 shares a minute.
THIN_MINUTE = {"AAPL": (200, 1_500)}


def synthetic_minute_frame(symbols: list[str], start: str, end: str, seed: int) -> pd.DataFrame:
    """Minute bars on every XNYS minute of the sessions (early closes included), prices at
    3 decimals, volumes whole; timestamps are naive UTC, each minute labelled by its end."""
    rng = np.random.default_rng(seed)
    minutes = xnys_minutes(start, end)
    n = len(minutes)
    parts = []
    for k, sym in enumerate(symbols):
        wave = 0.01 * np.sin(2 * np.pi * np.arange(n) / (250 + 60 * k) + k)
        close = 40.0 * (k + 1) * np.exp(wave + np.cumsum(rng.normal(0.0, 0.0008, n)))
        open_ = close * np.exp(rng.normal(0, 0.0004, n))
        high = np.maximum(open_, close) * (1 + np.abs(rng.normal(0, 0.0003, n)))
        low = np.minimum(open_, close) * (1 - np.abs(rng.normal(0, 0.0003, n)))
        lo, hi = THIN_MINUTE.get(sym, (2_000, 20_000))
        parts.append(pd.DataFrame({
            "timestamp": minutes, "asset": sym,
            "open": np.round(open_, 3), "high": np.round(high, 3),
            "low": np.round(low, 3), "close": np.round(close, 3),
            "volume": rng.integers(lo, hi, n).astype(float),
        }))
    return pd.concat(parts, ignore_index=True).sort_values(["timestamp", "asset"],
                                                           ignore_index=True)


# ------------------------------------------------------------ the zipline side (subprocess)
def _daily_from_minutes(one: pd.DataFrame) -> pd.DataFrame:
    """One asset's minute bars (UTC index) as session bars."""
    session = one.index.tz_convert("America/New_York").tz_localize(None).normalize()
    g = one.groupby(session)
    return pd.DataFrame({"open": g["open"].first(), "high": g["high"].max(),
                         "low": g["low"].min(), "close": g["close"].last(),
                         "volume": g["volume"].sum()})


def _ingest(frame: pd.DataFrame, root: str, minute: bool = False) -> None:
    from zipline.data import bundles

    frame = frame.sort_values(["asset", "timestamp"])
    symbols = sorted(frame["asset"].unique())
    if minute:
        frame = frame.assign(timestamp=pd.DatetimeIndex(frame["timestamp"]).tz_localize("UTC"))
        days = pd.DatetimeIndex(sorted(set(
            frame["timestamp"].dt.tz_convert("America/New_York").dt.tz_localize(None)
            .dt.normalize())))
    else:
        days = pd.DatetimeIndex(sorted(frame["timestamp"].unique()))
    start, end = days[0], days[-1]

    def ingest(environ, asset_db_writer, minute_bar_writer, daily_bar_writer,
               adjustment_writer, calendar, start_session, end_session, cache,
               show_progress, output_dir):
        meta = pd.DataFrame({
            "symbol": symbols, "asset_name": symbols,
            "start_date": [start] * len(symbols), "end_date": [end] * len(symbols),
            "auto_close_date": [end + pd.Timedelta(days=1)] * len(symbols),
            "exchange": ["NYSE"] * len(symbols),
        })
        exchanges = pd.DataFrame({"exchange": ["NYSE"], "canonical_name": ["NYSE"],
                                  "country_code": ["US"]})
        asset_db_writer.write(equities=meta, exchanges=exchanges)

        def bars():
            for sid, sym in enumerate(symbols):
                one = frame[frame["asset"] == sym].set_index("timestamp")
                yield sid, one[["open", "high", "low", "close", "volume"]]

        if minute:
            minute_bar_writer.write(bars(), show_progress=False)
            daily_bar_writer.write(((sid, _daily_from_minutes(one)) for sid, one in bars()),
                                   show_progress=False)
        else:
            daily_bar_writer.write(bars(), show_progress=False)
        adjustment_writer.write()

    bundles.register(BUNDLE, ingest, calendar_name="XNYS", start_session=start,
                     end_session=end)
    bundles.ingest(BUNDLE, environ={"ZIPLINE_ROOT": root}, show_progress=False)


def _load(path: str) -> Any:
    import importlib.util

    spec = importlib.util.spec_from_file_location(f"_oracle_{Path(path).stem}", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _plain(value: Any) -> Any:
    if isinstance(value, (np.floating, float)):
        return float(value)
    if isinstance(value, (np.integer, int)):
        return int(value)
    if hasattr(value, "symbol"):
        return value.symbol
    return value


def _run_case(case: dict[str, Any], root: str) -> dict[str, Any]:
    import time

    from zipline import run_algorithm

    module = _load(case["algo"])
    sessions = pd.date_range(case["start"], case["end"], freq="B", tz="UTC")
    t0, c0 = time.perf_counter(), time.process_time()
    perf = run_algorithm(
        start=pd.Timestamp(case["start"]), end=pd.Timestamp(case["end"]),
        initialize=module.initialize, handle_data=getattr(module, "handle_data", None),
        before_trading_start=getattr(module, "before_trading_start", None),
        capital_base=case["capital"], data_frequency=case.get("frequency", "daily"),
        bundle=BUNDLE,
        environ={"ZIPLINE_ROOT": root}, benchmark_returns=pd.Series(0.0, index=sessions))
    seconds = time.perf_counter() - t0
    cpu_seconds = time.process_time() - c0
    final: dict[str, Any] = {}
    for day in perf["orders"]:
        for o in day:
            final[o["id"]] = o
    known = set(perf.columns)
    records = [c for c in perf.columns if c not in _PERF_COLUMNS and c in known]
    return {
        "seconds": seconds,
        "cpu_seconds": cpu_seconds,
        "zipline_module": module.initialize.__globals__["__name__"],
        "order_module": next((getattr(module, f).__module__ for f in ("order", "order_target")
                              if hasattr(module, f)), ""),
        "index": [d.date().isoformat() for d in perf.index],
        "portfolio_value": [float(v) for v in perf["portfolio_value"]],
        "ending_cash": [float(v) for v in perf["ending_cash"]],
        "transactions": [[t["dt"].date().isoformat(), t["sid"].symbol, int(t["amount"]),
                          float(t["price"]), t["order_id"]]
                         for day in perf["transactions"] for t in day],
        "transaction_times": [[t["dt"].isoformat(), t["sid"].symbol, int(t["amount"]),
                               float(t["price"]), float(t["commission"] or 0.0), t["order_id"]]
                              for day in perf["transactions"] for t in day],
        "period_close": [d.isoformat() for d in perf["period_close"]],
        "order_times": [[o["created"].isoformat(), o["sid"].symbol, int(o["amount"]),
                         int(o["filled"]), float(o["commission"]), int(o["status"])]
                        for o in final.values()],
        "orders": [[o["created"].date().isoformat(), o["sid"].symbol, int(o["amount"]),
                    int(o["filled"]), float(o["commission"]), int(o["status"])]
                   for o in final.values()],
        "positions": [[[p["sid"].symbol, int(p["amount"]), float(p["cost_basis"]),
                        float(p["last_sale_price"])] for p in day]
                      for day in perf["positions"]],
        "records": {c: [_plain(v) for v in perf[c]] for c in records},
    }


_PERF_COLUMNS = {
    "period_open", "period_close", "ending_cash", "gross_leverage", "orders", "starting_value",
    "pnl", "ending_value", "starting_cash", "long_value", "capital_used", "short_exposure",
    "starting_exposure", "shorts_count", "returns", "portfolio_value", "net_leverage",
    "short_value", "long_exposure", "ending_exposure", "longs_count", "positions",
    "transactions", "benchmark_period_return", "benchmark_volatility", "max_leverage", "alpha",
    "beta", "sortino", "period_label", "excess_return", "trading_days", "sharpe",
    "treasury_period_return", "algorithm_period_return", "algo_volatility", "max_drawdown",
}


def main(spec_path: str, out_path: str) -> None:
    """Ingest the bars once, run every case, write the results."""
    import warnings

    warnings.simplefilter("ignore")
    spec = json.loads(Path(spec_path).read_text())
    frame = pd.read_csv(spec["bars"], parse_dates=["timestamp"])
    _ingest(frame, spec["root"], minute=spec.get("frequency") == "minute")
    out = {name: _run_case(case, spec["root"]) for name, case in spec["cases"].items()}
    Path(out_path).write_text(json.dumps(out))


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
