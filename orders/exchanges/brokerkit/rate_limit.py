"""A request rate per app key shared by every process through Django's cache.

Brokers limit requests per second per app key, not per process; a cache counter per second is
the one place all workers see.
"""

from __future__ import annotations

import time

from django.core.cache import cache


class SharedRateLimiter:
    """``rate_per_second`` requests a second for everything sharing ``key``."""

    def __init__(self, key: str, rate_per_second: int):
        self.key = key
        self.rate_per_second = rate_per_second

    def wait(self) -> None:
        """Wait for the next request slot.

        Each second has ``rate_per_second`` slots spread evenly over it; the n-th request of a
        second waits for slot n. Bunched slots at the end of one second and the start of the
        next would exceed the limit in the sliding second the venue may count."""
        while True:
            now = time.time()
            second = int(now)
            key = f"{self.key}:{second}"
            cache.add(key, 0, timeout=3)
            try:
                used = cache.incr(key)
            except ValueError:  # expired between add and incr
                continue
            if used <= self.rate_per_second:
                time.sleep(max(0.0, second + (used - 1) / self.rate_per_second - time.time()))
                return
            time.sleep(max(0.0, second + 1 - time.time()) + 0.001)
