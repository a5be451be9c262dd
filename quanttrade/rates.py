"""Rates written as ``N/u`` (``120/m``, ``5/s``, ``300/5m``): a strategy's webhook limit, checked
before it is stored, and turned into the `limits` item the intake counts against; and
:class:`SharedLimiter`, the `limits` limiter every process shares through Redis (the webhook
limit, the venues' request buckets)."""

from __future__ import annotations

import logging
import re
import threading
import time
from typing import Generic, TypeVar

from django.conf import settings
from django.core.exceptions import ValidationError
from django.utils.translation import gettext_lazy as _
from limits import RateLimitItem, RateLimitItemPerSecond
from limits.storage import MemoryStorage, RedisStorage
from limits.strategies import RateLimiter

log = logging.getLogger("quanttrade")

L = TypeVar("L", bound=RateLimiter)

RATE = re.compile(r"^\s*(\d+)\s*/\s*(\d*)\s*([smhd])\s*$")
UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def rate_seconds(text: str) -> tuple[int, int]:
    """(count, period in seconds) of a rate; ValueError when it is not one."""
    match = RATE.match(text or "")
    if match is None or int(match[1]) < 1:
        raise ValueError(f"not a rate: {text!r} (use N/s, N/m, N/h, N/d or N/<k>m, e.g. 120/m)")
    return int(match[1]), int(match[2] or 1) * UNIT_SECONDS[match[3]]


def rate_item(text: str) -> RateLimitItem:
    count, seconds = rate_seconds(text)
    return RateLimitItemPerSecond(count, seconds)


def validate_rate(value: str) -> None:
    """Django validator: blank is allowed (the field's own blank rule decides)."""
    if not value:
        return
    try:
        rate_seconds(value)
    except ValueError:
        raise ValidationError(
            _("Enter a rate such as 60/m: a whole number, '/', then s, m, h or d (e.g. 120/m, 5/s, 300/5m)."),
            code="invalid_rate",
        ) from None


class ProcessMemoryStorage(MemoryStorage):
    """`limits`' in-process storage without its timer thread per idle gap.

    ``MemoryStorage`` drops expired entries on a ``threading.Timer`` of 10 ms that each hit
    starts anew once the last one has run: a process that counts less than one hit per 10 ms
    (the intake of embedded mode, a venue bucket between orders) starts a thread on nearly every
    hit, on the caller's path. ``Thread.start`` costs the caller the thread's creation and then
    waits until the new thread has run, which under load is the interpreter's switch interval
    (5 ms) behind the busy threads (docs/benchmarks-speed.md, round 20).

    Here the caller drops them itself, at most once every ``EXPIRE_EVERY`` seconds. What is
    counted is unchanged: a fixed window's count already expires when read (``get``), and a
    moving window only looks at its entries inside the window; the sweep only bounds memory.
    (Overrides ``MemoryStorage``'s private ``__schedule_expiry``, limits pinned in
    requirements.txt; tests/test_rates.py checks that no thread is started and that expired
    entries are still dropped.)"""

    EXPIRE_EVERY = 1.0

    def __init__(self) -> None:
        super().__init__()
        self.timer.cancel()  # the one ``MemoryStorage.__init__`` starts
        self._expire_due = 0.0

    def _MemoryStorage__schedule_expiry(self) -> None:  # noqa: N802 - the base class's private name
        now = time.monotonic()
        if now >= self._expire_due:
            self._expire_due = now + self.EXPIRE_EVERY
            self._MemoryStorage__expire_events()  # type: ignore[attr-defined]


class SharedLimiter(Generic[L]):
    """A `limits` rate limiter shared by every process through Redis when ``REDIS_URL`` is set
    (one storage per URL, made on first use), else in this process's memory; ``local`` is that
    memory limiter, also what a caller falls back on while Redis cannot be reached (each process
    then limits on its own). ``socket_timeout`` bounds what a hung Redis costs a caller."""

    def __init__(self, strategy: type[L], key_prefix: str, socket_timeout: float) -> None:
        self.strategy = strategy
        self.key_prefix = key_prefix
        self.socket_timeout = socket_timeout
        self.local: L = strategy(ProcessMemoryStorage())
        self._shared: dict[str, L] = {}
        self._lock = threading.Lock()

    def get(self) -> L:
        url = getattr(settings, "REDIS_URL", "") or ""
        if not url:
            return self.local
        limiter = self._shared.get(url)
        if limiter is None:
            with self._lock:
                limiter = self._shared.get(url)
                if limiter is None:
                    storage = RedisStorage(
                        url,
                        key_prefix=self.key_prefix,
                        socket_connect_timeout=1,
                        socket_timeout=self.socket_timeout,
                    )
                    limiter = self._shared[url] = self.strategy(storage)
        return limiter

    def hit(self, item: RateLimitItem, *identifiers: str, cost: int = 1) -> bool:
        """Take ``cost`` from the bucket now if it has it; in this process's memory while the
        shared store cannot be reached (the store's outage must not stop what is limited)."""
        try:
            return self.get().hit(item, *identifiers, cost=cost)
        except Exception as exc:
            log.warning("요청 한도 저장소 연결 실패, 프로세스 내 한도로 대체 (%s): %s", self.key_prefix, exc)
            return self.local.hit(item, *identifiers, cost=cost)

    def reset(self) -> None:
        """Forget every count, shared and this process's (tests)."""
        self.local.storage.reset()
        if getattr(settings, "REDIS_URL", ""):
            try:
                self.get().storage.reset()
            except Exception as exc:
                log.debug("%s counts not reset: %s", self.key_prefix, exc)
