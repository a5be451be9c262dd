"""What every feed shares: a name, its health record, stop-aware sleeping, the universe."""

from __future__ import annotations

import asyncio
import threading
import time

from channels.db import database_sync_to_async

from feeds.universe import universe
from prices.health import FeedHealth


class Feed:
    name = "feed"
    simulated = False

    def __init__(self) -> None:
        self.health = FeedHealth(self.name, simulated=self.simulated)

    async def run(self, stop: threading.Event) -> None:
        raise NotImplementedError

    async def instruments(self) -> list[str]:
        return await database_sync_to_async(universe, thread_sensitive=False)(include_demo=self.simulated)

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
