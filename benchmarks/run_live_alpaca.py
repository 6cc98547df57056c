#!/usr/bin/env python
"""Latency of the Alpaca adapters against the local fake venue, as ratios to the raw SDK.

Usage (from the repository root)::

    python benchmarks/run_live_alpaca.py               # 400 timestamps x 4 assets, 200 orders
    python benchmarks/run_live_alpaca.py --bars 100 --orders 50   # quick look

Everything runs on 127.0.0.1 (``tests/fake_alpaca.py``), in one process.

**Feed.** The fake publishes one timestamp (all assets in one frame) and the
clock starts; ``AlpacaStreamFeed.next_batch`` returning its ``BarBatch`` stops
it. The baseline, measured in the same command on the same fake, is the raw
SDK: a ``StockDataStream`` handler that sets an event when the last asset's
bar of the timestamp arrives. ``ratio`` = feed / raw, both median and p99;
the difference is the cost of the hand-over between threads, the dedupe and
the assembly into a batch.

**Engine.** ``LiveEngine`` on ``AlpacaStreamFeed`` + ``AlpacaBroker`` with a
strategy that places one market order per bar: from the fake starting to
publish a bar to the fake receiving the order's POST (websocket transit, the
feed, the compiled engine and the strategy, the HTTP request), median and
p99. The fake publishes the next bar only once the engine asks for it. The
ratio is to the raw SDK's bar transit above.

**Broker.** ``AlpacaBroker.submit`` of a market order (one HTTP POST to the
fake and back), against the raw SDK ``TradingClient.submit_order`` of the same
order on the same fake. Both include the fake's own time to book the order.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import statistics
import sys
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]

import polars as pl  # noqa: E402
from fake_alpaca import FakeAlpaca  # noqa: E402

from mlbacktest.live import VenueOrder  # noqa: E402
from mlbacktest.live.alpaca import AlpacaBroker, AlpacaStreamFeed  # noqa: E402


def _frame(n_ts: int, n_assets: int) -> pl.DataFrame:
    t0 = dt.datetime(2024, 1, 2, 14, 30)
    rows = [{"timestamp": t0 + dt.timedelta(minutes=k), "asset": f"A{j:03d}",
             "open": 100.0 + j + 0.001 * (k % 500), "high": 101.0 + j, "low": 99.0 + j,
             "close": 100.5 + j, "volume": 1000.0}
            for k in range(n_ts) for j in range(n_assets)]
    return pl.DataFrame(rows)


def _pct(xs: list[float], q: float) -> float:
    s = sorted(xs)
    return s[min(len(s) - 1, int(round(q * (len(s) - 1))))]


def _raw_feed(fake: FakeAlpaca, n: int, symbols: list[str]) -> list[float]:
    from alpaca.data.live import StockDataStream

    got = threading.Event()
    last = symbols[-1]
    stream = StockDataStream(fake.key_id, fake.secret_key, raw_data=True,
                             url_override=fake.data_stream_url)

    async def on_bar(msg: dict) -> None:
        if msg["S"] == last:
            got.set()

    stream.subscribe_bars(on_bar, *symbols)
    th = threading.Thread(target=stream.run, daemon=True)
    th.start()
    fake.wait_data_subscribed(fake.data_subscriptions + 1)
    out = []
    for _ in range(n):
        got.clear()
        t = time.perf_counter()
        fake.publish_next()
        got.wait(10)
        out.append(time.perf_counter() - t)

    async def halt() -> None:
        await stream.stop_ws()
        await stream.close()

    asyncio.run_coroutine_threadsafe(halt(), stream._loop).result(5)
    th.join(5)
    return out


def _our_feed(fake: FakeAlpaca, n: int, symbols: list[str]) -> list[float]:
    feed = AlpacaStreamFeed(symbols, api_key=fake.key_id, secret_key=fake.secret_key,
                            url_override=fake.data_stream_url, rest_url_override=fake.rest_url)
    feed.start()
    out = []
    try:
        for _ in range(n):
            t = time.perf_counter()
            fake.publish_next()
            batch = feed.next_batch(10.0)
            out.append(time.perf_counter() - t)
            assert batch is not None and len(batch) == len(symbols)
    finally:
        feed.stop()
    return out


class _AskingFeed(AlpacaStreamFeed):
    """Counts the batches the engine has asked for, so the bars go out in lockstep."""

    def __init__(self, *args, **kwargs) -> None:  # type: ignore[no-untyped-def]
        super().__init__(*args, **kwargs)
        self.cond = threading.Condition()
        self.returned = self.asked = 0

    def next_batch(self, timeout: float):  # type: ignore[no-untyped-def]
        with self.cond:
            self.asked = self.returned + 1
            self.cond.notify_all()
        batch = super().next_batch(timeout)
        self.returned += batch is not None
        return batch


def _engine_round_trip(n: int, n_assets: int) -> list[float]:
    from mlbacktest import BacktestConfig, Strategy
    from mlbacktest.live import LiveEngine

    class OneOrderPerBar(Strategy):
        def on_start(self) -> None:
            self.k = 0

        def on_slice(self, view, context) -> None:  # type: ignore[no-untyped-def]
            self.k += 1
            self.buy(0, 1) if self.k % 2 else self.sell(0, 1)

    fake = FakeAlpaca(_frame(n, n_assets), cash=1e12).start()
    published: list[float] = []
    try:
        feed = _AskingFeed(list(fake.symbols), api_key=fake.key_id, secret_key=fake.secret_key,
                           url_override=fake.data_stream_url, rest_url_override=fake.rest_url,
                           end=fake.timestamps[-1])
        broker = AlpacaBroker(api_key=fake.key_id, secret_key=fake.secret_key,
                              url_override=fake.rest_url,
                              stream_url_override=fake.trading_stream_url)

        def publish() -> None:
            fake.wait_data_subscribed()
            fake.wait_trading_listening()
            for k in range(n):
                with feed.cond:
                    feed.cond.wait_for(lambda k=k: feed.asked >= k + 1, 30)
                published.append(time.perf_counter())
                fake.publish_next()

        th = threading.Thread(target=publish, daemon=True)
        th.start()
        LiveEngine(feed, OneOrderPerBar(), BacktestConfig(initial_cash=1e12),
                   broker=broker, poll_interval=0.05).run()
        th.join(10)
    finally:
        fake.stop()
    # one order per bar, each sent before the next bar is published (the last bar's
    # order may still be on its way when the feed ends)
    assert len(fake.order_received) in (n - 1, n)
    return [r - p for r, p in zip(fake.order_received, published[: len(fake.order_received)],
                                  strict=True)]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--bars", type=int, default=400, help="timestamps per feed measurement")
    ap.add_argument("--assets", type=int, default=4)
    ap.add_argument("--orders", type=int, default=200)
    args = ap.parse_args()
    import alpaca

    fake = FakeAlpaca(_frame(2 * args.bars + 1, args.assets), cash=1e12).start()
    symbols = list(fake.symbols)
    try:
        fake.publish_next()
        raw = _raw_feed(fake, args.bars, symbols)
        ours = _our_feed(fake, args.bars, symbols)
        from alpaca.trading.client import TradingClient
        from alpaca.trading.enums import OrderSide, TimeInForce
        from alpaca.trading.requests import MarketOrderRequest

        client = TradingClient(fake.key_id, fake.secret_key, url_override=fake.rest_url)
        broker = AlpacaBroker(api_key=fake.key_id, secret_key=fake.secret_key,
                              url_override=fake.rest_url,
                              stream_url_override=fake.trading_stream_url)
        broker.connect()
        raw_sub, our_sub = [], []
        try:
            for i in range(args.orders):   # interleaved: load drift hits both alike
                req = MarketOrderRequest(symbol=symbols[0], qty=1, side=OrderSide.BUY,
                                         time_in_force=TimeInForce.GTC, client_order_id=f"r{i}")
                t = time.perf_counter()
                client.submit_order(req)
                raw_sub.append(time.perf_counter() - t)
                t = time.perf_counter()
                broker.submit(VenueOrder(f"o{i}", symbols[0], 1.0))
                our_sub.append(time.perf_counter() - t)
        finally:
            broker.close()
    finally:
        fake.stop()
    trip = _engine_round_trip(args.bars, args.assets)
    print(f"alpaca-py {alpaca.__version__ if hasattr(alpaca, '__version__') else '?'}, "
          f"python {sys.version.split()[0]}, {args.assets} assets, fake venue on 127.0.0.1")
    print(f"{'':28s}{'median ms':>11s}{'p99 ms':>10s}{'ratio med':>11s}{'ratio p99':>11s}")
    for name, base, x in (("bar -> BarBatch (feed)", raw, ours),
                          ("bar -> order at venue", raw, trip),
                          ("submit market order", raw_sub, our_sub)):
        bm, b99 = statistics.median(base), _pct(base, 0.99)
        xm, x99 = statistics.median(x), _pct(x, 0.99)
        print(f"{'raw SDK: ' + name:28s}{bm * 1e3:11.3f}{b99 * 1e3:10.3f}")
        print(f"{'adapter: ' + name:28s}{xm * 1e3:11.3f}{x99 * 1e3:10.3f}"
              f"{xm / bm:11.2f}{x99 / b99:11.2f}")


if __name__ == "__main__":
    main()
