"""The in-process `limits` storage (quanttrade.rates.ProcessMemoryStorage): the same counts as
`limits`' MemoryStorage, without a thread started on the caller's path per hit."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from typing import Any

import pytest
import time_machine
from limits import RateLimitItemPerSecond
from limits.storage import MemoryStorage
from limits.strategies import FixedWindowRateLimiter, MovingWindowRateLimiter

from quanttrade.rates import ProcessMemoryStorage, SharedLimiter

STRATEGIES = [FixedWindowRateLimiter, MovingWindowRateLimiter]


@pytest.fixture
def thread_starts(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[str]]:
    """The names of the threads started from now on."""
    started: list[str] = []
    start = threading.Thread.start

    def counting(thread: threading.Thread) -> None:
        started.append(thread.name)
        start(thread)

    monkeypatch.setattr(threading.Thread, "start", counting)
    yield started


def _hits_after_idle_gaps(storage: Any, strategy: type, hits: int) -> None:
    """``hits`` hits, each after the storage's expiry timer (if one runs) has ended: what a caller
    sees that hits less often than the timer's 10 ms."""
    limiter = strategy(storage)
    item = RateLimitItemPerSecond(1000, 1)
    for _ in range(hits):
        storage.timer.join()
        assert limiter.hit(item, "strategy-1")


@pytest.mark.parametrize("strategy", STRATEGIES)
def test_limits_own_memory_storage_starts_a_thread_per_hit_after_an_idle_gap(
    strategy: type, thread_starts: list[str]
) -> None:
    # Why ProcessMemoryStorage exists: should `limits` stop doing this, this test says so.
    storage = MemoryStorage()
    thread_starts.clear()  # the storage's first timer, started when it is made
    _hits_after_idle_gaps(storage, strategy, 5)
    assert len(thread_starts) == 5


@pytest.mark.parametrize("strategy", STRATEGIES)
def test_the_process_storage_starts_no_thread_on_a_hit(strategy: type, thread_starts: list[str]) -> None:
    storage = ProcessMemoryStorage()
    thread_starts.clear()
    _hits_after_idle_gaps(storage, strategy, 5)
    assert thread_starts == []


@pytest.mark.parametrize("strategy", STRATEGIES)
def test_the_process_storage_counts_as_limits_own(strategy: type) -> None:
    item = RateLimitItemPerSecond(3, 10)
    with time_machine.travel(1_800_000_000, tick=False) as clock:
        outcomes: dict[type, list[bool]] = {}
        for kind in (MemoryStorage, ProcessMemoryStorage):
            limiter = strategy(kind())
            seen = [limiter.hit(item, "strategy-1") for _ in range(4)]  # the fourth is over
            seen.append(limiter.hit(item, "strategy-2"))  # another key counts apart
            clock.shift(11)
            seen += [limiter.hit(item, "strategy-1") for _ in range(4)]  # a new window
            clock.shift(-11)
            outcomes[kind] = seen
    assert outcomes[ProcessMemoryStorage] == outcomes[MemoryStorage]
    assert outcomes[ProcessMemoryStorage] == [True, True, True, False, True, True, True, True, False]


@pytest.mark.parametrize("strategy", STRATEGIES)
def test_the_process_storage_still_drops_expired_entries(strategy: type) -> None:
    storage = ProcessMemoryStorage()
    limiter = strategy(storage)
    item = RateLimitItemPerSecond(5, 1)
    with time_machine.travel(1_800_000_000, tick=False) as clock:
        for key in ("old-1", "old-2"):
            limiter.hit(item, key)
        assert any("old-1" in key for key in _held(storage))
        clock.shift(5)  # both windows are over
        storage._expire_due = 0.0  # the once-a-second sweep is due
        limiter.hit(item, "new")
    held = _held(storage)
    assert not any("old" in key for key in held)
    assert any("new" in key for key in held)


def _held(storage: ProcessMemoryStorage) -> set[str]:
    """The keys the storage holds a count or a moving window's entries for."""
    return set(storage.storage) | {key for key, entries in storage.events.items() if entries}


def test_a_limit_counted_in_process_memory_starts_no_thread(thread_starts: list[str], settings: Any) -> None:
    """What embedded mode's limits (the webhook limit, the venues' buckets) do: no Redis."""
    settings.REDIS_URL = ""
    limiter = SharedLimiter(FixedWindowRateLimiter, "test-rates", socket_timeout=1)
    item = RateLimitItemPerSecond(1000, 1)
    thread_starts.clear()
    for _ in range(5):
        limiter.local.storage.timer.join()  # as after an idle gap, had a timer been running
        assert limiter.hit(item, "strategy-1")
    assert thread_starts == []
