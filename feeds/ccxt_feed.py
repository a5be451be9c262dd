"""ccxt feed for crypto instruments (``EXCHANGE:BASE/QUOTE``).

Per exchange one task: ccxt.pro ``watch_tickers`` (WebSocket) when the exchange supports it,
falling back to polling ``fetch_tickers`` every ``PRICE_CCXT_POLL_SECONDS`` when it does not or
when the socket keeps failing. ``PRICE_CCXT_MODE`` = ``auto`` (default), ``watch`` or ``poll``.
ccxt hands out floats; they become Decimal through their shortest text (no float arithmetic).
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections import defaultdict
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from django.conf import settings

from feeds.base import Feed
from prices.services import price_publish_async

log = logging.getLogger("quanttrade.prices")
WATCH_FAILURES_BEFORE_POLLING = 3


def ticker_fields(ticker: dict[str, Any]) -> dict[str, Any] | None:
    """Price-layer fields of one unified ccxt ticker, or None when it has no last price."""
    price = ticker.get("last") if ticker.get("last") is not None else ticker.get("close")
    if price is None:
        return None
    stamp = ticker.get("timestamp")
    return {
        "price": price,
        "change": ticker.get("change"),
        "change_rate": ticker.get("percentage"),
        "volume": ticker.get("baseVolume"),
        "bid_price": ticker.get("bid"),
        "ask_price": ticker.get("ask"),
        "timestamp": datetime.fromtimestamp(stamp / 1000, UTC) if stamp else None,
    }


# Per-exchange ccxt options: Binance streams mini tickers by default, which carry no bid/ask.
EXCHANGE_OPTIONS: dict[str, dict[str, Any]] = {"binance": {"watchTickers": {"name": "ticker"}}}


def make_exchange(exchange_id: str) -> Any:
    import ccxt.pro  # noqa: PLC0415 - ccxt.pro takes seconds to import; only the ccxt feed needs it

    return getattr(ccxt.pro, exchange_id)(
        {"enableRateLimit": True, "options": EXCHANGE_OPTIONS.get(exchange_id, {})}
    )


class CcxtFeed(Feed):
    name = "ccxt"

    def __init__(
        self,
        *,
        instruments: list[str] | None = None,
        exchange_factory: Callable[[str], Any] = make_exchange,
        mode: str | None = None,
        poll_seconds: float | None = None,
        watch_retry_seconds: float = 2.0,
    ) -> None:
        super().__init__()
        self.fixed_instruments = instruments
        self.exchange_factory = exchange_factory
        self.mode = (mode or settings.PRICE_CCXT_MODE).lower()
        self.poll_seconds = poll_seconds or float(settings.PRICE_CCXT_POLL_SECONDS)
        self.watch_retry_seconds = watch_retry_seconds

    async def run(self, stop: threading.Event) -> None:
        self.health.started()
        try:
            instruments = self.fixed_instruments
            if instruments is None:
                instruments = await self.instruments()
            by_exchange: dict[str, list[str]] = defaultdict(list)
            for instrument in instruments:
                exchange, _, symbol = instrument.partition(":")
                if symbol and "/" in symbol:
                    by_exchange[exchange].append(symbol)
            self.health.set_detail(exchanges=sorted(by_exchange), subscriptions=len(instruments))
            await asyncio.gather(*(self.follow(ex, symbols, stop) for ex, symbols in by_exchange.items()))
        finally:
            self.health.stopped()

    async def follow(self, exchange_code: str, symbols: list[str], stop: threading.Event) -> None:
        exchange = self.exchange_factory(exchange_code.lower())

        async def close_on_stop() -> None:
            # A pending watch_tickers waits for the venue; closing the exchange ends it at once.
            await self.sleep(float("inf"), stop)
            await exchange.close()

        closer = asyncio.create_task(close_on_stop())
        try:
            mode = self.mode
            if mode == "auto":
                mode = "watch" if exchange.has.get("watchTickers") else "poll"
            if mode == "watch":
                await self._watch(exchange_code, exchange, symbols, stop)
            if not stop.is_set():
                await self._poll(exchange_code, exchange, symbols, stop)
        finally:
            closer.cancel()
            await exchange.close()

    async def _publish(self, exchange_code: str, tickers: dict[str, Any]) -> None:
        for symbol, ticker in tickers.items():
            fields = ticker_fields(ticker)
            if fields is None:
                continue
            instrument = f"{exchange_code}:{symbol}"
            await price_publish_async(instrument, fields.pop("price"), feed=self.name, **fields)
            self.health.tick(instrument)

    async def _watch(self, code: str, exchange: Any, symbols: list[str], stop: threading.Event) -> None:
        """Stream until stopped; returns (to polling) after repeated failures."""
        failures = 0
        while not stop.is_set():
            try:
                tickers = await asyncio.wait_for(exchange.watch_tickers(symbols), timeout=30)
                failures = 0
                await self._publish(code, tickers)
            except TimeoutError:
                continue
            except asyncio.CancelledError:
                if stop.is_set():  # close_on_stop() closed the exchange under the pending watch
                    return
                raise
            except Exception as exc:  # ccxt raises many kinds; all mean "retry"
                failures += 1
                self.health.error(f"{code} watch_tickers: {type(exc).__name__}: {exc}")
                if failures >= WATCH_FAILURES_BEFORE_POLLING:
                    log.warning("ccxt %s: watch_tickers 실패, 폴링으로 전환", code)
                    self.health.set_detail(**{f"{code}_mode": "poll"})
                    return
                self.health.reconnected()
                if await self.sleep(min(30.0, self.watch_retry_seconds * 2 ** (failures - 1)), stop):
                    return

    async def _poll(self, code: str, exchange: Any, symbols: list[str], stop: threading.Event) -> None:
        self.health.set_detail(**{f"{code}_mode": "poll"})
        while not stop.is_set():
            try:
                await self._publish(code, await exchange.fetch_tickers(symbols))
            except Exception as exc:
                self.health.error(f"{code} fetch_tickers: {type(exc).__name__}: {exc}")
            if await self.sleep(self.poll_seconds, stop):
                return
