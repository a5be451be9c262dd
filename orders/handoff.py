"""In-process hand-off of order execution (embedded mode; small signals in a web process).

In embedded mode the web server and the workers are one process (`manage.py serve`). A task
sent through Celery's in-memory broker costs its polling interval and a thread hand-off before a
worker sees it: ~10 ms of the signal's time to market, for a hop that stays in the process.
While a :class:`LocalPool` is installed, ``orders.services`` hands each account's execution
straight to its threads instead (and schedules a retry with a timer).

The guarantees are those of the in-memory broker it replaces, no weaker: nothing survives the
process (neither did the broker's messages). The orders are rows in the database first; the
dispatch records (orders.liveness) die with the process too, and `serve` resends every queued
order at start, the periodic sweep any whose hand-off was lost.

Distributed mode: a web process may run a few executions itself (:func:`install_web`,
ORDER_WEB_THREADS): a signal's accounts go to its threads when there are idle threads for all
of them (:meth:`LocalPool.submit_all_if_idle`), otherwise to the broker as before, where every
worker process competes for the messages (a fan-out split between the two was no sooner and
its answer later). The order is the same row, claimed the same way, and the web process beats
and names itself as its holder as a worker does, so a web process killed mid-order is settled
by the sweep as a killed worker is (orders.liveness); a retry goes to the broker (it outlives
the process). A signal's order then skips the publish, the delivery and the task's start:
~2-3 ms of its time to market on PostgreSQL + Redis (docs/benchmarks-speed.md, round 16).
"""

from __future__ import annotations

import contextlib
import heapq
import itertools
import logging
import queue
import threading
import time
from collections.abc import Callable, Iterator
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
# Threads for background work: two, so a refresh waiting on a slow venue read does not hold up
# every other account's, and few, so CPU-bound ones (the paper venue's) leave the interpreter
# to the orders and the web requests.
BACKGROUND_THREADS = 2

_Item = tuple[Callable[..., Any] | None, tuple[Any, ...]]


class LocalPool:
    """Threads of this process that run order executions handed to them, and a few more for
    background work.

    Order executions run on ``threads`` threads, first in, first out. Background work (the
    portfolio refresh a fill asks for) runs on BACKGROUND_THREADS threads of its own: it never
    takes an order thread, and it competes for the interpreter as two threads, not eight. A
    1,000-account fan-out asks for 1,000 refreshes as its orders fill; run on the order threads,
    they starved the next webhook's intake (1.9 s to commit instead of ~0.5 s). Work asked for
    later (a retry, a refresh put off) waits on one clock thread rather than a timer each."""

    def __init__(self, threads: int):
        self.threads = threads
        self._queues: dict[int, queue.SimpleQueue[_Item]] = {
            ORDERS: queue.SimpleQueue(),
            BACKGROUND: queue.SimpleQueue(),
        }
        self._order = itertools.count()
        self._lock = threading.Lock()
        self._clock_wakes = threading.Condition(self._lock)
        self._later: list[tuple[float, int, int, Callable[..., Any], tuple[Any, ...]]] = []
        self._closed = False
        self._orders_pending = 0  # order executions queued or running
        lanes = [(ORDERS, f"orders_{i}") for i in range(threads)]
        lanes += [(BACKGROUND, f"orders-background_{i}") for i in range(BACKGROUND_THREADS)]
        self._workers = [
            (lane, threading.Thread(target=self._work, args=(lane,), name=name, daemon=True))
            for lane, name in lanes
        ]
        self._clock = threading.Thread(target=self._tick, name="orders-clock", daemon=True)
        for _lane, thread in self._workers:
            thread.start()
        self._clock.start()

    def submit(self, fn: Callable[..., Any], *args: Any, delay: float = 0.0, lane: int = ORDERS) -> None:
        """Run ``fn(*args)`` on one of the order threads (``lane=BACKGROUND``: on a background
        thread), ``delay`` seconds from now. Raises :class:`PoolClosedError` once
        the pool is shut down."""
        with self._lock:
            if self._closed:
                raise PoolClosedError("the order pool is shut down")
            if delay <= 0:
                self._put(lane, fn, args)
                return
            heapq.heappush(self._later, (time.monotonic() + delay, next(self._order), lane, fn, args))
            self._clock_wakes.notify()

    def submit_all_if_idle(self, fn: Callable[..., Any], calls: list[tuple[Any, ...]]) -> bool:
        """Run ``fn(*args)`` for each ``args`` of ``calls`` on the order threads now, if that
        many are idle (nothing queued before them); False, and nothing done, when fewer are
        idle or the pool is shut down."""
        with self._lock:
            if self._closed or self._orders_pending + len(calls) > self.threads:
                return False
            for args in calls:
                self._put(ORDERS, fn, args)
            return True

    def orders_waiting(self) -> bool:
        """Whether an order execution is queued or running on this pool (a retry not yet due
        does not count)."""
        return self._orders_pending > 0

    def _put(self, lane: int, fn: Callable[..., Any], args: tuple[Any, ...]) -> None:
        # Called with the lock held.
        if lane == ORDERS:
            self._orders_pending += 1
        self._queues[lane].put((fn, args))

    def _tick(self) -> None:
        with self._lock:
            while not self._closed:
                now = time.monotonic()
                while self._later and self._later[0][0] <= now:
                    _due, _seq, lane, fn, args = heapq.heappop(self._later)
                    self._put(lane, fn, args)
                self._clock_wakes.wait(self._later[0][0] - now if self._later else None)

    def _work(self, lane: int) -> None:
        while True:
            fn, args = self._queues[lane].get()
            if fn is None:
                return
            try:
                self._run(fn, args)
            finally:
                if lane == ORDERS:
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
            _drain(self._queues[BACKGROUND])
            if not wait:
                self._orders_pending -= _drain(self._queues[ORDERS])
            for lane, _thread in self._workers:
                self._queues[lane].put((None, ()))
        if wait:
            for _lane, thread in self._workers:
                if thread is not threading.current_thread():
                    thread.join()


def _drain(items: queue.SimpleQueue[_Item]) -> int:
    count = 0
    while True:
        try:
            items.get_nowait()
        except queue.Empty:
            return count
        count += 1


_pool: LocalPool | None = None

# Webhooks this process's request threads are accepting right now. Embedded mode's background
# work (a fill's portfolio refresh) puts itself off meanwhile, as it does while orders wait
# (orders.portfolio.services._orders_waiting): on the one interpreter, a refresh running beside
# a 1,000-account webhook's intake made its answer up to twice as slow (docs/benchmarks-speed.md,
# round 21).
_intakes = 0
_intakes_lock = threading.Lock()


@contextlib.contextmanager
def intake() -> Iterator[None]:
    """Around a webhook's intake: counted in :func:`intakes_running` while it runs."""
    global _intakes
    with _intakes_lock:
        _intakes += 1
    try:
        yield
    finally:
        with _intakes_lock:
            _intakes -= 1


def intakes_running() -> bool:
    """Whether a request thread of this process is accepting a webhook now."""
    return _intakes > 0


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


_web_pool: LocalPool | None = None


def install_web(pool: LocalPool) -> None:
    """From now on this web process (distributed mode) runs a signal's executions on ``pool``
    when each finds an idle order thread there, and sends them to the broker otherwise."""
    global _web_pool
    _web_pool = pool


def uninstall_web(pool: LocalPool) -> None:
    global _web_pool
    if _web_pool is pool:
        _web_pool = None


def web() -> LocalPool | None:
    return _web_pool
