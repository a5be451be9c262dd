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

import logging
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
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


class LocalPool:
    """Threads of this process that run order executions handed to them."""

    def __init__(self, threads: int):
        self.threads = threads
        self._executor = ThreadPoolExecutor(max_workers=threads, thread_name_prefix="orders")
        self._timers: set[threading.Timer] = set()
        self._lock = threading.Lock()
        self._closed = False

    def submit(self, fn: Callable[..., Any], *args: Any, delay: float = 0.0) -> None:
        """Run ``fn(*args)`` on one of the threads, ``delay`` seconds from now. Raises
        :class:`PoolClosedError` once the pool is shut down."""
        with self._lock:
            if self._closed:
                raise PoolClosedError("the order pool is shut down")
            if delay <= 0:
                self._executor.submit(self._run, fn, args)
                return
            timer = threading.Timer(delay, self._due, (fn, args))
            timer.daemon = True
            timer.name = "orders-retry"
            self._timers.add(timer)
            timer.start()

    def _due(self, fn: Callable[..., Any], args: tuple[Any, ...]) -> None:
        with self._lock:
            self._timers.discard(threading.current_thread())
            if self._closed:
                return  # dropped with the process's other in-memory work: the sweep resends it
            self._executor.submit(self._run, fn, args)

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
        """Stop taking work, drop the retries not yet due, finish (or with ``wait=False``,
        abandon) what runs."""
        with self._lock:
            self._closed = True
            timers, self._timers = self._timers, set()
        for timer in timers:
            timer.cancel()
        self._executor.shutdown(wait=wait, cancel_futures=not wait)


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
