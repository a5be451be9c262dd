"""Venue rate limits as token buckets shared by every worker process.

A venue counts requests per API key (or per IP) over a window, whatever number of processes
send them. Each limit is one `limits` moving window (Redis when ``REDIS_URL`` is set, else this
process's memory, which is every worker in the embedded mode), keyed
``venue:limit class:<API key digest>`` — never the key itself. A request takes from every
bucket that counts it; when one is empty the caller sleeps until its window frees, at most
VENUE_RATE_MAX_WAIT_SECONDS, then gets :class:`RateLimitWaitError` (retryable: nothing was
sent).

Several buckets are taken one after another, each atomically; a refusal by a later one leaves
the earlier ones spent (a little capacity lost, never a request over a limit).

When the shared store cannot be reached, each process limits on its own memory until it can
again (the venue's own 429 is then the last guard, and it is retryable).
"""

from __future__ import annotations

import hashlib
import logging
import math
import time
from collections.abc import Iterable
from dataclasses import dataclass

from django.conf import settings
from django.utils.translation import gettext as _
from limits import RateLimitItem, RateLimitItemPerSecond
from limits.strategies import MovingWindowRateLimiter

from orders.exchanges.base import RetryableVenueError
from orders.handoff import venue_sleep
from quanttrade.rates import SharedLimiter

log = logging.getLogger("quanttrade.orders")

KEY_PREFIX = "qt-bucket"


@dataclass(frozen=True)
class VenueLimit:
    """One limit a venue publishes: ``amount`` units per ``seconds``.

    ``limit_class`` names it in keys and messages (Binance's ``REQUEST_WEIGHT``, ``ORDERS``…).
    ``per_ip``: counted for every key of this host together (Binance request weight, Bybit's
    IP limit); otherwise per API key. ``paths``: the request paths it counts (a suffix of the
    venue's path, with its HTTP method: ``("POST", "order")``); empty: every request.
    ``except_paths``: requests it does not count (Upbit counts orders apart from the rest).
    ``apis``: the ccxt API groups it counts (``public``, ``private``…); empty: all.
    ``weight``: units per unit of ccxt's request cost (Binance spot: ccxt's cost is a fifth of
    the venue's weight); 0: each request counts 1. ``all_markets``: one bucket for every market
    (spot, futures) of the venue (Bybit's IP limit covers all its traffic); otherwise one per
    market."""

    limit_class: str
    amount: int
    seconds: int
    per_ip: bool = False
    paths: tuple[tuple[str, str], ...] = ()
    except_paths: tuple[tuple[str, str], ...] = ()
    apis: tuple[str, ...] = ()
    weight: float = 0.0
    all_markets: bool = False

    @property
    def item(self) -> RateLimitItem:
        return RateLimitItemPerSecond(self.amount, self.seconds)

    def counts(self, method: str, path: str, api: str = "") -> bool:
        if self.apis and api not in self.apis:
            return False
        if any(_matches(rule, method, path) for rule in self.except_paths):
            return False
        return not self.paths or any(_matches(rule, method, path) for rule in self.paths)

    def cost(self, ccxt_cost: float | None) -> int:
        if not self.weight:
            return 1
        return max(1, math.ceil((ccxt_cost or 1) * self.weight - 1e-9))


def _matches(rule: tuple[str, str], method: str, path: str) -> bool:
    return method.upper() == rule[0] and path.rstrip("/").endswith(rule[1])


class RateLimitWaitError(RetryableVenueError):
    """A venue's rate limit would keep this request waiting longer than allowed: not sent."""


def key_digest(api_key: str) -> str:
    """What stands for an API key in bucket keys (the key itself never reaches the store)."""
    return hashlib.sha256(api_key.encode()).hexdigest()[:20]


# Moving windows: a window's requests are counted where they fell (a fixed window would let a
# burst at its end and another at the next one's start through together). Redis calls wait at
# most 2 s: a request already waits for its turn here.
_limiters = SharedLimiter(MovingWindowRateLimiter, KEY_PREFIX, socket_timeout=2)


def max_wait_seconds() -> float:
    return float(getattr(settings, "VENUE_RATE_MAX_WAIT_SECONDS", 10.0))


class VenueBuckets:
    """The buckets of one venue (and market) for one API key."""

    def __init__(
        self,
        venue: str,
        api_key: str,
        limits: Iterable[VenueLimit],
        display_name: str = "",
        digest: str | None = None,
        market: str = "",
    ):
        self.venue = venue
        self.market = market
        self.digest = digest or key_digest(api_key or "")
        self.limits = tuple(limits)
        self.display_name = display_name or venue

    def bucket_id(self, limit: VenueLimit) -> str:
        venue = self.venue if limit.all_markets or not self.market else f"{self.venue}:{self.market}"
        if limit.per_ip:
            return f"{venue}:{limit.limit_class}:ip"
        if self.digest == self.venue:  # SharedRateLimiter: its key already names venue and app key
            return f"{venue}:{limit.limit_class}"
        return f"{venue}:{limit.limit_class}:{self.digest}"

    def acquire_request(self, method: str, path: str, ccxt_cost: float | None = None, api: str = "") -> None:
        """Take what one request costs from every bucket that counts it (blocking)."""
        self.acquire(
            [(limit, limit.cost(ccxt_cost)) for limit in self.limits if limit.counts(method, path, api)]
        )

    def acquire(self, takes: Iterable[tuple[VenueLimit, int]], max_wait: float | None = None) -> None:
        """Take ``cost`` from each bucket, sleeping while one is empty; RateLimitWaitError
        once the wait would pass ``max_wait`` (VENUE_RATE_MAX_WAIT_SECONDS)."""
        deadline = time.monotonic() + (max_wait_seconds() if max_wait is None else max_wait)
        for limit, cost in takes:
            while not self.try_take(limit, cost):
                free_at = self._free_at(limit)
                now = time.monotonic()
                if now >= deadline:
                    raise RateLimitWaitError(
                        _(
                            "%(venue)s rate limit %(limit)s (%(amount)d per %(seconds)d s) is used up; try again"
                        )
                        % {
                            "venue": self.display_name,
                            "limit": limit.limit_class,
                            "amount": limit.amount,
                            "seconds": limit.seconds,
                        }
                    )
                venue_sleep(min(max(free_at, 0.005), deadline - now, 1.0))

    def try_take(self, limit: VenueLimit, cost: int = 1) -> bool:
        """Take ``cost`` units from ``limit``'s bucket now if it has them."""
        return _limiters.hit(limit.item, self.bucket_id(limit), cost=cost)

    def _free_at(self, limit: VenueLimit) -> float:
        """Seconds until the oldest request in the window leaves it."""
        try:
            stats = _limiters.get().get_window_stats(limit.item, self.bucket_id(limit))
        except Exception:
            stats = _limiters.local.get_window_stats(limit.item, self.bucket_id(limit))
        return stats.reset_time - time.time()


def reset() -> None:
    """Empty every bucket, shared and this process's (tests)."""
    _limiters.reset()
