"""Run an algorithm through the real zipline-reloaded, on bars from a DataFrame.

The bars are written into a zipline bundle registered from the frame (no
network): one equity per symbol, daily bars on the XNYS calendar, stored by
zipline at 3 decimals (which is why the test data is rounded to 3 decimals).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

BUNDLE = "mlbacktest-test"


def ingest_frame(frame: pd.DataFrame, root: str) -> None:
    """Write ``frame`` (columns timestamp, asset, open, high, low, close, volume) as a bundle."""
    from zipline.data import bundles

    frame = frame.sort_values(["asset", "timestamp"])
    symbols = sorted(frame["asset"].unique())
    days = pd.DatetimeIndex(sorted(frame["timestamp"].unique()))
    start, end = days[0], days[-1]

    def ingest(environ, asset_db_writer, minute_bar_writer, daily_bar_writer,
               adjustment_writer, calendar, start_session, end_session, cache,
               show_progress, output_dir):
        meta = pd.DataFrame({
            "symbol": symbols,
            "asset_name": symbols,
            "start_date": [start] * len(symbols),
            "end_date": [end] * len(symbols),
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

        daily_bar_writer.write(bars(), show_progress=False)
        adjustment_writer.write()

    bundles.register(BUNDLE, ingest, calendar_name="XNYS", start_session=start,
                     end_session=end)
    bundles.ingest(BUNDLE, environ={"ZIPLINE_ROOT": root}, show_progress=False)


def run_zipline(module: Any, root: str, start: Any, end: Any, capital_base: float) -> pd.DataFrame:
    """``zipline.run_algorithm`` of the functions of ``module`` on the test bundle."""
    from zipline import run_algorithm

    sessions = pd.date_range(start, end, freq="B", tz="UTC")
    bench = pd.Series(0.0, index=sessions)
    return run_algorithm(
        start=pd.Timestamp(start), end=pd.Timestamp(end),
        initialize=module.initialize, handle_data=getattr(module, "handle_data", None),
        before_trading_start=getattr(module, "before_trading_start", None),
        capital_base=capital_base, data_frequency="daily", bundle=BUNDLE,
        environ={"ZIPLINE_ROOT": root}, benchmark_returns=bench,
    )


def xnys_sessions(start: str, end: str) -> pd.DatetimeIndex:
    """The XNYS sessions from ``start`` to ``end`` (tz-naive dates)."""
    import exchange_calendars as xcals

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
