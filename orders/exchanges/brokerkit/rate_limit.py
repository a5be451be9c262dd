"""A request rate per app key shared by every process (a one-second moving window).

Brokers limit requests per second per app key, not per process: the window is one of
:mod:`.buckets` (Redis in distributed mode), so all workers take from it. A moving window never
lets more than ``rate_per_second`` requests into any sliding second, which is how the venue may
count them.
"""

from __future__ import annotations

from orders.exchanges.brokerkit.buckets import VenueBuckets, VenueLimit


class SharedRateLimiter:
    """``rate_per_second`` requests a second for everything sharing ``key`` (already a digest:
    callers build it from ``app_key_id``, never from the raw key)."""

    def __init__(self, key: str, rate_per_second: int):
        self.key = key
        self.rate_per_second = rate_per_second
        self.limit = VenueLimit("requests", max(1, int(rate_per_second)), 1)
        self.buckets = VenueBuckets(key, "", (self.limit,), digest=key)

    def wait(self) -> None:
        """Wait for the next request slot. No bound: these brokers' order paths record their
        intent before the request, and a refusal there is not worth an early error."""
        self.buckets.acquire([(self.limit, 1)], max_wait=float("inf"))
