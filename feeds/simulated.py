"""A random walk over the demo instruments, the watchlist and recent orders' instruments.

Ticks are published with ``source: "simulated"`` and ``feed: "simulated"`` (made-up prices
are never labelled realtime: the pages, the REST API and paper fills say "simulated"); the
feed's health says ``simulated: true``. A walk starts at the
instrument's latest daily close when there is one, so the chart and the live price agree.
"""

from __future__ import annotations

import random
import threading
from dataclasses import dataclass
from datetime import date, timedelta
from decimal import ROUND_HALF_UP, Decimal

from channels.db import database_sync_to_async
from django.conf import settings

from feeds.base import Feed
from prices.calendar import is_trading_day
from prices.models import DailyPrice
from prices.records import SOURCE_SIMULATED, krw_quoted
from prices.services import price_publish_async

START_PRICES: dict[str, str] = {
    "BINANCE:BTC/USDT": "67000.00", "BINANCE:ETH/USDT": "3500.00", "BINANCE:SOL/USDT": "150.00",
    "UPBIT:BTC/KRW": "92000000", "005930": "58200", "000660": "128000", "069500": "35000",
    "035420": "190000", "NASD:AAPL": "190.00", "NASD:MSFT": "420.00", "NASD:NVDA": "120.00",
    "NYSE:TSLA": "250.00", "NYSE:BRK.B": "410.00", "101TC000": "350.00", "CME:ESZ4": "5600.00",
    "CME:NQH5": "19800.00",
}  # fmt: skip
REFRESH_UNIVERSE_SECONDS = 60.0


def tick_size(instrument: str, price: Decimal) -> Decimal:
    """A plausible minimum price step (KRX stock steps by price band, else cents)."""
    if not krw_quoted(instrument):
        return (
            Decimal("0.05") if instrument == "101TC000" or instrument.startswith("CME:") else Decimal("0.01")
        )
    if instrument.endswith("/KRW"):
        return Decimal(1000) if price >= 1_000_000 else Decimal(1)
    for limit, step in ((2000, 1), (5000, 5), (20000, 10), (50000, 50), (200000, 100), (500000, 500)):
        if price < limit:
            return Decimal(step)
    return Decimal(1000)


class SimulatedFeed(Feed):
    name = "simulated"
    simulated = True

    def __init__(self, seed: int | None = None) -> None:
        super().__init__()
        self.random = random.Random(seed)
        self.interval = float(settings.PRICE_SIMULATED_INTERVAL_SECONDS)
        self.reference: dict[str, Decimal] = {}  # previous close per instrument
        self.last: dict[str, Decimal] = {}
        self.volume: dict[str, int] = {}

    async def _start_price(self, instrument: str) -> Decimal:
        bar = await database_sync_to_async(
            lambda: DailyPrice.objects.filter(ticker=instrument).order_by("-date").first(),
            thread_sensitive=False,
        )()
        if bar is not None:
            return bar.close
        default = "10000" if krw_quoted(instrument) else "100.00"
        return Decimal(START_PRICES.get(instrument, default))

    def step(self, instrument: str) -> dict[str, object]:
        """Move one instrument by up to ±0.2 % in whole ticks; returns the tick's fields."""
        price = self.last[instrument]
        tick = tick_size(instrument, price)
        steps = max(1, int(price * Decimal("0.002") / tick))
        price = max(tick, price + tick * self.random.randint(-steps, steps))
        price = (price / tick).quantize(Decimal(1), rounding=ROUND_HALF_UP) * tick
        self.last[instrument] = price
        self.volume[instrument] = self.volume.get(instrument, 0) + self.random.randint(1, 500)
        return {
            "price": price,
            "change": price - self.reference[instrument],
            "volume": self.volume[instrument],
            "bid_price": price - tick,
            "ask_price": price + tick,
            "source": SOURCE_SIMULATED,
            "feed": self.name,
        }

    async def run(self, stop: threading.Event) -> None:
        self.health.started()
        instruments: list[str] = []
        refreshed = -REFRESH_UNIVERSE_SECONDS
        elapsed = 0.0
        try:
            while not stop.is_set():
                if elapsed - refreshed >= REFRESH_UNIVERSE_SECONDS:
                    try:
                        instruments = await self.instruments()
                    except Exception as exc:  # keep walking the known set
                        self.health.error(f"universe: {exc}", down=False)
                    refreshed = elapsed
                    self.health.set_detail(instruments=len(instruments))
                for instrument in instruments:
                    if instrument not in self.last:
                        start = await self._start_price(instrument)
                        self.reference[instrument] = self.last[instrument] = start
                    fields = self.step(instrument)
                    await price_publish_async(instrument, fields.pop("price"), **fields)
                    self.health.tick(instrument)
                if await self.sleep(self.interval, stop):
                    break
                elapsed += self.interval
        finally:
            self.health.stopped()


def simulated_daily_history(instrument: str, days: int, *, end: date, seed: int = 0) -> list[DailyBar]:
    """``days`` KRX trading days of made-up OHLCV bars ending at ``end`` and closing near the
    simulated feed's start price, so the demo's charts have a history that the live simulated
    price continues. Demo data only (seed_demo); never mixed with a real source."""
    rng = random.Random(f"{seed}:{instrument}")
    whole = krw_quoted(instrument)
    close = Decimal(START_PRICES.get(instrument, "10000" if whole else "100.00"))
    day = end
    bars: list[DailyBar] = []
    while len(bars) < days:
        if is_trading_day(day):
            tick = tick_size(instrument, close)

            def snap(value: Decimal, tick: Decimal = tick) -> Decimal:
                return max(tick, (value / tick).quantize(Decimal(1), rounding=ROUND_HALF_UP) * tick)

            swing = close * Decimal(rng.randint(5, 30)) / 1000
            open_ = close + swing * Decimal(rng.choice((-1, 1))) / 2
            high, low = max(open_, close) + swing / 2, min(open_, close) - swing / 2
            bars.append(
                DailyBar(day, snap(open_), snap(high), snap(low), snap(close), rng.randint(10_000, 5_000_000))
            )
            # Walking back in time: the previous day's close, within ±2.5 %.
            close = snap(close * (1 + Decimal(rng.randint(-25, 25)) / 1000))
        day -= timedelta(days=1)
    return bars[::-1]


@dataclass(frozen=True)
class DailyBar:
    date: date
    open: Decimal
    high: Decimal
    low: Decimal
    close: Decimal
    volume: int
