"""The ccxt feed's polling path against a local server speaking Binance's REST format,
through a real ccxt.pro exchange object whose API URL points at it."""

from __future__ import annotations

import asyncio
import json
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import ccxt.pro
import pytest

from feeds.ccxt_feed import EXCHANGE_OPTIONS, CcxtFeed, ticker_fields
from prices.serializers import price_json
from prices.services import price_latest, price_record_build

EXCHANGE_INFO = {
    "timezone": "UTC",
    "serverTime": 0,
    "rateLimits": [],
    "symbols": [
        {
            "symbol": symbol,
            "status": "TRADING",
            "baseAsset": base,
            "quoteAsset": "USDT",
            "baseAssetPrecision": 8,
            "quotePrecision": 8,
            "quoteAssetPrecision": 8,
            "orderTypes": ["LIMIT", "MARKET"],
            "isSpotTradingAllowed": True,
            "permissions": ["SPOT"],
            "filters": [
                {"filterType": "PRICE_FILTER", "minPrice": "0.01", "maxPrice": "1000000", "tickSize": "0.01"}
            ],
        }
        for symbol, base in (("BTCUSDT", "BTC"), ("ETHUSDT", "ETH"))
    ],
}


def ticker(symbol: str, last: str, change: str, percent: str) -> dict[str, Any]:
    return {
        "symbol": symbol,
        "priceChange": change,
        "priceChangePercent": percent,
        "lastPrice": last,
        "bidPrice": str(Decimal(last) - Decimal("0.01")),
        "askPrice": str(Decimal(last) + Decimal("0.01")),
        "volume": "1234.5678",
        "quoteVolume": "0",
        "openPrice": str(Decimal(last) - Decimal(change)),
        "highPrice": last,
        "lowPrice": last,
        "openTime": 0,
        "closeTime": 1_771_000_000_000,
    }


@pytest.fixture
def binance_sim() -> Iterator[dict[str, Any]]:
    state: dict[str, Any] = {"requests": [], "tickers": [ticker("BTCUSDT", "67123.45", "-120.50", "-0.179")]}

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args: Any) -> None:
            pass

        def do_GET(self) -> None:
            state["requests"].append(self.path)
            if self.path.startswith("/api/v3/exchangeInfo"):
                body: Any = EXCHANGE_INFO
            elif self.path.startswith("/api/v3/ticker/24hr"):
                body = state["tickers"]
            elif self.path.startswith("/api/v3/klines"):
                day = 86_400_000
                first = int(time.time() * 1000) // day * day - day  # yesterday and today, 00:00 UTC
                body = [
                    [
                        first + n * day,
                        o,
                        h,
                        lo,
                        c,
                        v,
                        first + (n + 1) * day - 1,
                        "0",
                        1,
                        "0",
                        "0",
                        "0",
                    ]
                    for n, (o, h, lo, c, v) in enumerate(
                        [
                            ("67000.10", "68000", "66000", "67500.25", "1000.5"),
                            ("67500.25", "69000", "67000", "68900.75", "900"),
                        ]
                    )
                ]
            else:
                self.send_response(404)
                self.end_headers()
                return
            data = json.dumps(body).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    state["url"] = f"http://127.0.0.1:{server.server_port}/api/v3"
    yield state
    server.shutdown()


def local_binance(url: str) -> Any:
    def factory(exchange_id: str) -> Any:
        assert exchange_id == "binance"
        options = {
            **EXCHANGE_OPTIONS["binance"],
            "fetchMarkets": {"types": ["spot"]},
            "fetchCurrencies": False,
        }
        exchange = ccxt.pro.binance({"options": options})
        exchange.urls["api"]["public"] = url
        return exchange

    return factory


def test_ticker_mapping_keeps_exact_decimals() -> None:
    fields = ticker_fields(
        {
            "last": 0.1 + 0.2,
            "change": -1.5,
            "percentage": -0.179,
            "baseVolume": 10.9,
            "timestamp": 1_771_000_000_000,
        }
    )
    assert fields is not None
    record = price_record_build("BINANCE:X/USDT", fields.pop("price"), **fields)
    assert record.price == Decimal("0.30000000000000004") and record.change_rate == Decimal("-0.1790")
    assert record.volume == 10
    assert ticker_fields({"last": None}) is None


def test_polling_feed_publishes_tickers(binance_sim: dict[str, Any]) -> None:
    feed = CcxtFeed(
        instruments=["BINANCE:BTC/USDT", "BINANCE:ETH/USDT"],
        exchange_factory=local_binance(binance_sim["url"]),
        mode="poll",
        poll_seconds=0.1,
    )
    stop = threading.Event()
    thread = threading.Thread(target=lambda: asyncio.run(feed.run(stop)), daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + 15
        while price_latest("BINANCE:BTC/USDT") is None:
            assert time.monotonic() < deadline, binance_sim["requests"]
            time.sleep(0.05)
        body = price_json(price_latest("BINANCE:BTC/USDT"))
        assert body["price"] == 67123.45 and body["change"] == -120.5 and body["change_rate"] == -0.179
        assert body["bid_price"] == 67123.44 and body["ask_price"] == 67123.46 and body["volume"] == 1234
        assert body["feed"] == "ccxt" and body["timestamp"].startswith("2026-02-13T")
        # The next poll picks up a new price.
        binance_sim["tickers"] = [ticker("BTCUSDT", "67200.10", "-44.00", "-0.065")]
        while price_latest("BINANCE:BTC/USDT").price != Decimal("67200.1"):
            assert time.monotonic() < deadline
            time.sleep(0.05)
        while feed.health.ticks < 2:  # counted on the feed's thread just after each publish
            assert time.monotonic() < deadline
            time.sleep(0.05)
        assert feed.health.as_dict()["BINANCE_mode"] == "poll"
        assert any(p.startswith("/api/v3/ticker/24hr") for p in binance_sim["requests"])
    finally:
        stop.set()
        thread.join(10)


@pytest.fixture
def binance_stream() -> Iterator[dict[str, Any]]:
    """A local WebSocket endpoint speaking Binance's market-stream format (SUBSCRIBE, 24hrTicker)."""
    from websockets.asyncio.server import serve

    state: dict[str, Any] = {"subscriptions": []}

    async def handler(ws: Any) -> None:
        async for raw in ws:
            message = json.loads(raw)
            state["subscriptions"].append(message)
            await ws.send(json.dumps({"result": None, "id": message.get("id")}))
            for stream in message.get("params", []):
                now = int(time.time() * 1000)
                event = {
                    "e": "24hrTicker", "E": now, "s": stream.split("@")[0].upper(), "p": "-88.00", "P": "-0.131",
                    "w": "1", "x": "1", "c": "67155.55", "Q": "1", "b": "67155.54", "B": "1", "a": "67155.56",
                    "A": "1", "o": "67243.55", "h": "68000", "l": "66000", "v": "4321.5", "q": "1",
                    "O": 0, "C": now, "F": 0, "L": 1, "n": 1,
                }  # fmt: skip
                await ws.send(json.dumps(event))

    loop = asyncio.new_event_loop()
    started = threading.Event()

    async def main() -> None:
        async with serve(handler, "127.0.0.1", 0) as server:
            state["url"] = f"ws://127.0.0.1:{server.sockets[0].getsockname()[1]}/ws"
            state["stop"] = loop.create_future()
            started.set()
            await state["stop"]

    thread = threading.Thread(target=loop.run_until_complete, args=(main(),), daemon=True)
    thread.start()
    started.wait(5)
    yield state
    loop.call_soon_threadsafe(state["stop"].set_result, None)
    thread.join(5)


def test_watch_feed_streams_tickers(binance_sim: dict[str, Any], binance_stream: dict[str, Any]) -> None:
    def factory(exchange_id: str) -> Any:
        exchange = local_binance(binance_sim["url"])(exchange_id)
        exchange.urls["api"]["ws"]["spot"] = binance_stream["url"]
        return exchange

    feed = CcxtFeed(instruments=["BINANCE:BTC/USDT"], exchange_factory=factory, mode="auto")
    stop = threading.Event()
    thread = threading.Thread(target=lambda: asyncio.run(feed.run(stop)), daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + 15
        while price_latest("BINANCE:BTC/USDT") is None:
            assert time.monotonic() < deadline, (binance_stream["subscriptions"], feed.health.as_dict())
            time.sleep(0.05)
        body = price_json(price_latest("BINANCE:BTC/USDT"))
        assert body["price"] == 67155.55 and body["change"] == -88 and body["volume"] == 4321
        assert binance_stream["subscriptions"][0]["method"] == "SUBSCRIBE"
        assert not any(
            p.startswith("/api/v3/ticker/24hr") for p in binance_sim["requests"]
        )  # streamed, not polled
    finally:
        stop.set()
        thread.join(10)


def test_watch_falls_back_to_polling_when_the_stream_fails(binance_sim: dict[str, Any]) -> None:
    def factory(exchange_id: str) -> Any:
        exchange = local_binance(binance_sim["url"])(exchange_id)
        exchange.urls["api"]["ws"]["spot"] = "ws://127.0.0.1:9/ws"  # nothing listens there
        return exchange

    feed = CcxtFeed(
        instruments=["BINANCE:BTC/USDT"],
        exchange_factory=factory,
        mode="watch",
        poll_seconds=0.1,
        watch_retry_seconds=0.01,
    )
    stop = threading.Event()
    thread = threading.Thread(target=lambda: asyncio.run(feed.run(stop)), daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + 20
        while price_latest("BINANCE:BTC/USDT") is None:
            assert time.monotonic() < deadline, feed.health.as_dict()
            time.sleep(0.05)
        status = feed.health.as_dict()
        assert (
            status["BINANCE_mode"] == "poll"
            and status["errors"] >= 3
            and "watch_tickers" in status["last_error"]
        )
    finally:
        stop.set()
        thread.join(10)


@pytest.mark.django_db
def test_collect_daily_from_ccxt_ohlcv(binance_sim: dict[str, Any]) -> None:
    import ccxt

    from feeds.daily import bars_from_ccxt, daily_store
    from prices.models import DailyPrice

    exchange = ccxt.binance({"options": {"fetchMarkets": {"types": ["spot"]}, "fetchCurrencies": False}})
    exchange.urls["api"]["public"] = binance_sim["url"]
    written = daily_store(bars_from_ccxt(exchange, "binance", "BTC/USDT", days=2))
    assert written == 2
    bars = list(DailyPrice.objects.filter(ticker="BINANCE:BTC/USDT").order_by("date"))
    today = datetime.now(UTC).date()
    assert [b.date for b in bars] == [today - timedelta(days=1), today]
    assert bars[1].close == Decimal("68900.75") and bars[0].volume == Decimal("1000.5")
    assert any(p.startswith("/api/v3/klines") for p in binance_sim["requests"])
