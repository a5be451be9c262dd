"""In-process hand-off of order execution (embedded mode).

In embedded mode the web server and the workers are one process (`manage.py serve`). A task
sent through Celery's in-memory broker costs its polling interval and a thread hand-off before a
worker sees it: ~10 ms of the signal's time to market, for a hop that stays in the process.
While a :class:`LocalPool` is installed, ``orders.services`` hands each account's execution
straight to its threads instead (and schedules a retry with a timer).

The guarantees are those of the in-memory broker it replaces, no weaker: nothing survives the
process (neither did the broker's messages). The orders are rows in the database first; the
dispatch records (orders.liveness) die with the process too, and `serve` resends every queued
order at start, the periodic sweep any whose hand-off was lost. Distributed mode never installs
a pool: the broker is Redis and every worker process competes for the messages.
"""

from __future__ import annotations

import heapq
import itertools
import logging
import queue
import threading
import time
from collections.abc import Callable
from typing import Any

from django.db import connections

log = logging.getLogger("quanttrade.orders")


def _connections_tidy() -> None:
    """Between two executions on a pool thread: close the thread's database connections as a
    request would, except a SQLite one that had no error, which the thread keeps for its next execution.
    Opening a SQLite connection costs ~1.2 ms of CPU (Django registers its SQL functions, the
    PRAGMAs run) on every order's way to the venue; the pool's threads are few and live as long
    as the process, and a SQLite connection holds no server resource. A server database's
    connections go back to its pool as before (kept, they would starve the web requests')."""
    for conn in connections.all(initialized_only=True):
        if (
            conn.vendor == "sqlite"
            and conn.connection is not None
            and not conn.in_atomic_block
            and not conn.errors_occurred  # after a database error, a fresh one (rare, cheap)
        ):
            continue
        conn.close_if_unusable_or_obsolete()


class PoolClosedError(RuntimeError):
    """The pool is shutting down: the caller treats it as a broker outage (the sweep resends)."""


ORDERS = 0  # an account's order execution (and its retries)
BACKGROUND = 1  # work that must not delay an order: a portfolio refresh after a fill

_STOP = 2  # after everything else: a thread's signal to end


class LocalPool:
    """Threads of this process that run order executions handed to them.

    Two priorities: a thread always takes an order execution before background work, however
    long the background queue (a 1,000-account fan-out asks for 1,000 portfolio refreshes as
    its orders fill; the next webhook's orders must not wait behind them). Among equals, first
    in, first out. Work asked for later (a retry, a refresh put off) waits on one clock thread
    rather than a timer thread each."""

    def __init__(self, threads: int):
        self.threads = threads
        self._queue: queue.PriorityQueue[tuple[int, int, Callable[..., Any] | None, tuple[Any, ...]]] = (
            queue.PriorityQueue()
        )
        self._order = itertools.count()
        self._lock = threading.Lock()
        self._clock_wakes = threading.Condition(self._lock)
        self._later: list[tuple[float, int, int, Callable[..., Any], tuple[Any, ...]]] = []
        self._closed = False
        self._orders_pending = 0  # order executions queued or running
        self._workers = [
            threading.Thread(target=self._work, name=f"orders_{i}", daemon=True) for i in range(threads)
        ]
        self._clock = threading.Thread(target=self._tick, name="orders-clock", daemon=True)
        for thread in (*self._workers, self._clock):
            thread.start()

    def submit(self, fn: Callable[..., Any], *args: Any, delay: float = 0.0, priority: int = ORDERS) -> None:
        """Run ``fn(*args)`` on one of the threads, ``delay`` seconds from now. Raises
        :class:`PoolClosedError` once the pool is shut down."""
        with self._lock:
            if self._closed:
                raise PoolClosedError("the order pool is shut down")
            if delay <= 0:
                self._put(priority, fn, args)
                return
            heapq.heappush(self._later, (time.monotonic() + delay, next(self._order), priority, fn, args))
            self._clock_wakes.notify()

    def orders_waiting(self) -> bool:
        """Whether an order execution is queued or running on this pool (a retry not yet due
        does not count)."""
        return self._orders_pending > 0

    def _put(self, priority: int, fn: Callable[..., Any], args: tuple[Any, ...]) -> None:
        # Called with the lock held.
        if priority == ORDERS:
            self._orders_pending += 1
        self._queue.put((priority, next(self._order), fn, args))

    def _tick(self) -> None:
        with self._lock:
            while not self._closed:
                now = time.monotonic()
                while self._later and self._later[0][0] <= now:
                    _due, _seq, priority, fn, args = heapq.heappop(self._later)
                    self._put(priority, fn, args)
                self._clock_wakes.wait(self._later[0][0] - now if self._later else None)

    def _work(self) -> None:
        while True:
            priority, _seq, fn, args = self._queue.get()
            if fn is None:
                return
            try:
                self._run(fn, args)
            finally:
                if priority == ORDERS:
                    with self._lock:
                        self._orders_pending -= 1

    @staticmethod
    def _run(fn: Callable[..., Any], args: tuple[Any, ...]) -> None:
        _connections_tidy()
        try:
            fn(*args)
        except Exception:
            # The execution clears its dispatch record on the way out: the sweep resends it.
            log.exception("주문 실행 오류 (스윕에서 재전달): %s", args)
        finally:
            _connections_tidy()

    def shutdown(self, wait: bool = True) -> None:
        """Stop taking work, drop what is not yet due and the background work, finish (or with
        ``wait=False``, abandon) the order executions queued, and end the threads. (A dropped
        portfolio refresh is asked for again by the next fill and made by the periodic one.)"""
        with self._lock:
            self._closed = True
            self._later.clear()
            self._clock_wakes.notify()
            kept = []
            while True:
                try:
                    item = self._queue.get_nowait()
                except queue.Empty:
                    break
                if item[0] == ORDERS:
                    if wait:
                        kept.append(item)
                    else:
                        self._orders_pending -= 1
            for item in kept:
                self._queue.put(item)
            for _ in self._workers:
                self._queue.put((_STOP, next(self._order), None, ()))
        if wait:
            for thread in self._workers:
                if thread is not threading.current_thread():
                    thread.join()


_pool: LocalPool | None = None


def install(pool: LocalPool) -> None:
    """From now on this process executes orders on ``pool`` instead of sending tasks."""
    global _pool
    _pool = pool


def uninstall(pool: LocalPool) -> None:
    global _pool
    if _pool is pool:
        _pool = None


def current() -> LocalPool | None:
    return _pool
