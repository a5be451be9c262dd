"""What every feed shares: a name, its health record, stop-aware sleeping, the universe."""

from __future__ import annotations

import asyncio
import threading
import time
from datetime import datetime
from decimal import Decimal
from typing import Protocol

from channels.db import database_sync_to_async

from feeds.universe import universe
from prices.health import FeedHealth
from prices.services import price_publish_async


class Tick(Protocol):
    """What a broker's realtime tick carries (feeds/kis.py KisTick, feeds/kiwoom.py KiwoomTick)."""

    @property
    def ticker(self) -> str: ...
    @property
    def price(self) -> Decimal: ...
    @property
    def change(self) -> Decimal | None: ...
    @property
    def change_rate(self) -> Decimal | None: ...
    @property
    def volume(self) -> int | None: ...
    @property
    def bid_price(self) -> Decimal | None: ...
    @property
    def ask_price(self) -> Decimal | None: ...
    @property
    def timestamp(self) -> datetime | None: ...


class Feed:
    name = "feed"
    simulated = False

    def __init__(self) -> None:
        self.health = FeedHealth(self.name, simulated=self.simulated)

    async def run(self, stop: threading.Event) -> None:
        raise NotImplementedError

    async def instruments(self) -> list[str]:
        return await database_sync_to_async(universe, thread_sensitive=False)(include_demo=self.simulated)

    async def publish_tick(self, tick: Tick) -> None:
        """One broker tick into the one price layer, counted in this feed's health."""
        await price_publish_async(
            tick.ticker,
            tick.price,
            change=tick.change,
            change_rate=tick.change_rate,
            volume=tick.volume,
            bid_price=tick.bid_price,
            ask_price=tick.ask_price,
            timestamp=tick.timestamp,
            feed=self.name,
        )
        self.health.tick(tick.ticker)

    @staticmethod
    async def sleep(seconds: float, stop: threading.Event) -> bool:
        """Sleep up to ``seconds``; returns True when asked to stop."""
        deadline = time.monotonic() + seconds
        while not stop.is_set():
            left = deadline - time.monotonic()
            if left <= 0:
                return False
            await asyncio.sleep(min(left, 0.2))
        return True
