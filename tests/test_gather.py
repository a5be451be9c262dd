"""quanttrade.gather.Gathering: items several threads hand over, sent together from a timer's
thread (a worker's refresh requests and notifications use it)."""

from __future__ import annotations

import threading
import time
from typing import Any

import pytest
from django.db import connections

from quanttrade.gather import Gathering


def _wait(check: Any, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            pytest.fail("not reached in time")
        time.sleep(0.01)


def test_items_of_several_threads_go_in_one_send_when_the_timer_runs_out() -> None:
    sent: list[list[int]] = []
    gathering: Gathering[int] = Gathering(0.2, sent.append, "test-gathering")
    threads = [threading.Thread(target=gathering.add, args=(n,)) for n in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sent == []  # the timer has not run out yet
    _wait(lambda: sent)
    assert len(sent) == 1 and sorted(sent[0]) == list(range(8))
    gathering.add(99)  # a new window after the first
    _wait(lambda: len(sent) == 2)
    assert sent[1] == [99]


def test_flush_sends_now_on_the_calling_thread_and_discard_drops() -> None:
    calls: list[tuple[list[str], str]] = []

    def send(items: list[str]) -> int:
        calls.append((items, threading.current_thread().name))
        return len(items)

    gathering: Gathering[str] = Gathering(60.0, send, "test-gathering")
    gathering.add("a")
    gathering.add("b")
    assert gathering.flush() == 2
    assert calls == [(["a", "b"], threading.current_thread().name)]
    assert gathering.flush() is None  # nothing gathered: no send
    gathering.add("c")
    gathering.discard()
    assert gathering.flush() is None
    assert len(calls) == 1


@pytest.mark.django_db(transaction=True)
def test_the_timers_thread_gives_its_database_connection_back() -> None:
    """Each window's timer is a new thread: a connection it opened and kept would never go back
    to the pool (PostgreSQL: DB_POOL_MAX_SIZE connections a process, then every query waits)."""
    used: list[Any] = []

    def send(items: list[int]) -> None:
        wrapper = connections["default"]
        with wrapper.cursor() as cursor:
            cursor.execute("SELECT 1")
        used.append((wrapper, wrapper.connection is not None))

    gathering: Gathering[int] = Gathering(0.05, send, "test-gathering")
    gathering.add(1)
    _wait(lambda: used)
    wrapper, was_open = used[0]
    assert was_open
    _wait(lambda: wrapper.connection is None)
    assert wrapper is not connections["default"]  # the timer's own, not this thread's
