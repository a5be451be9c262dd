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

import collections
import contextlib
import heapq
import itertools
import logging
import queue
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from typing import Any

from django.db import connections

log = logging.getLogger("quanttrade.orders")


def _connections_tidy(keep: bool = False) -> None:
    """While a pool thread waits (for work, or for its venue: :func:`venue_wait`): close the
    thread's database connections as a request would, except a SQLite one that had no error,
    which the thread keeps for its next statement. Opening a SQLite connection costs ~1.2 ms of
    CPU (Django registers its SQL functions, the PRAGMAs run) on every order's way to the venue;
    the pool's threads are few and live as long as the process, and a SQLite connection holds
    no server resource. A server database's connections go back to its pool (kept, they would
    starve the web requests'; and EMBEDDED_ORDER_THREADS threads at their venues would hold
    that many of DB_POOL_MAX_SIZE).

    ``keep``: between two executions the thread runs back to back, it keeps a server
    database's connection too: a running thread needs one anyway, and one taken from the pool
    for every execution made each order dearer (a worker's order threads, docs/benchmarks-speed.md
    round 23)."""
    for conn in connections.all(initialized_only=True):
        if (
            (keep or conn.vendor == "sqlite")
            and conn.connection is not None
            and not conn.in_atomic_block
            and not conn.errors_occurred  # after a database error, a fresh one (rare, cheap)
        ):
            continue
        try:
            conn.close_if_unusable_or_obsolete()
        except Exception:
            # A connection the server dropped may fail to close: the thread goes on without it
            # (its next statement opens another). Raised here, it would end a pool thread.
            log.warning("DB 연결 정리 실패 (무시)", exc_info=True)


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

    Order executions run on ``threads`` threads, first in, first out, of which at most
    ``running`` at once (all of them when not given). A thread waiting for its venue (the
    answer to a request, a rate limit's pause: :func:`venue_wait`) gives its turn to another
    meanwhile. So with venues far away many accounts' requests are out at once, while on the
    interpreter no more than ``running`` orders compete: every thread beyond the cores that
    runs Python makes each of them slower (on the paper venue, 32 threads running at once
    spent up to 60 % more CPU per order than 4; docs/benchmarks-speed.md, round 22). A thread back
    from its venue goes before one that would start another order, and goes on without its
    turn when none came free for REACQUIRE_SECONDS (a lock held across a venue call, such as a
    token's, must never leave every turn to threads waiting for that lock); while turns change
    hands it waits its turn, up to RETURN_MAX_SECONDS (going on sooner, every returning thread of
    a busy process became one more running: at 1,000 accounts each order cost twice the CPU,
    round 23).

    Background work (the portfolio refresh a fill asks for) runs on BACKGROUND_THREADS threads of
    its own: it never takes an order thread, and it competes for the interpreter as two
    threads, not eight. A 1,000-account fan-out asks for 1,000 refreshes as its orders fill;
    run on the order threads, they starved the next webhook's intake (1.9 s to commit instead
    of ~0.5 s). Work asked for later (a retry, a refresh put off) waits on one clock thread
    rather than a timer each."""

    REACQUIRE_SECONDS = 0.05
    RETURN_MAX_SECONDS = 1.0

    def __init__(self, threads: int, running: int | None = None):
        self.threads = threads
        self.running = min(running or threads, threads)
        self._ready: collections.deque[tuple[Callable[..., Any], tuple[Any, ...]]] = collections.deque()
        self._background: queue.SimpleQueue[_Item] = queue.SimpleQueue()
        self._order = itertools.count()
        self._lock = threading.Lock()
        self._clock_wakes = threading.Condition(self._lock)
        self._return_wakes = threading.Condition(self._lock)  # order threads back from a venue
        self._later: list[tuple[float, int, int, Callable[..., Any], tuple[Any, ...]]] = []
        self._closed = False
        self._orders_pending = 0  # order executions queued or running
        self._busy = 0  # order threads running (not waiting for a venue)
        # Order threads with nothing to run, each asleep on its own lock; the last one to fall
        # asleep is woken first, so a few threads (their caches, their connections warm) do the
        # work while it fits in them.
        self._sleepers: list[threading.Lock] = []
        self._woken = 0  # order threads woken and not yet running
        self._returning = 0  # order threads back from a venue, waiting for their turn
        self._freed = 0  # turns given back so far: a returning thread tells a stall from a queue
        threads_ = [
            threading.Thread(target=self._work_orders, name=f"orders_{i}", daemon=True)
            for i in range(threads)
        ]
        threads_ += [
            threading.Thread(target=self._work_background, name=f"orders-background_{i}", daemon=True)
            for i in range(BACKGROUND_THREADS)
        ]
        self._workers = threads_
        self._clock = threading.Thread(target=self._tick, name="orders-clock", daemon=True)
        for thread in self._workers:
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
        many can run at once (nothing queued before them); False, and nothing done, when fewer
        can or the pool is shut down."""
        with self._lock:
            if self._closed or self._orders_pending + len(calls) > self.running:
                return False
            for args in calls:
                self._put(ORDERS, fn, args)
            return True

    def run_all(self, calls: Sequence[Callable[[], Any]]) -> list[tuple[Any, BaseException | None]]:
        """Run each of ``calls`` on the order threads and wait for all of them; returns each
        one's result and exception (None when it returned), in the order given. A call the
        pool no longer takes (it is shutting down) runs on the caller's thread, as do all of
        them when the caller is one of the pool's threads; one a ``shutdown(wait=False)``
        drops returns :class:`PoolClosedError`."""
        run = _RunAll(calls)
        # On one of this pool's threads (a call that runs calls), waiting would hold a thread
        # and a turn the calls may need: they run here.
        inline = threading.current_thread() in self._workers
        for index in range(len(calls)):
            try:
                if inline:
                    raise PoolClosedError("run here")
                self.submit(run, index)
            except PoolClosedError:
                run(index)
        return run.outcomes()

    def orders_waiting(self) -> bool:
        """Whether an order execution is queued or running on this pool (a retry not yet due
        does not count)."""
        return self._orders_pending > 0

    def _put(self, lane: int, fn: Callable[..., Any], args: tuple[Any, ...]) -> None:
        # Called with the lock held.
        if lane == ORDERS:
            self._orders_pending += 1
            self._ready.append((fn, args))
            self._wake_one()
        else:
            self._background.put((fn, args))

    def _wake_one(self) -> None:
        """Wake the thread that should run next, if a turn is free: one back from its venue
        first, else an idle one when an order waits. Threads woken and not yet running hold
        their turn, so a fan-out's burst wakes no thread that would only wait again. Called
        with the lock held."""
        if self._busy >= self.running:
            return
        if self._returning:
            self._return_wakes.notify()
        elif self._sleepers and len(self._ready) > self._woken and self._busy + self._woken < self.running:
            self._woken += 1
            self._sleepers.pop().release()

    def _may_start(self) -> bool:
        # Called with the lock held: an order is ready and a turn is free for it (those of the
        # threads back from a venue, and of the woken ones, are taken).
        return bool(self._ready) and self._busy + self._returning + self._woken < self.running

    def _tick(self) -> None:
        with self._lock:
            while not self._closed:
                now = time.monotonic()
                while self._later and self._later[0][0] <= now:
                    _due, _seq, lane, fn, args = heapq.heappop(self._later)
                    self._put(lane, fn, args)
                self._clock_wakes.wait(self._later[0][0] - now if self._later else None)

    def _work_orders(self) -> None:
        try:
            self._work_orders_until_closed()
        finally:
            _connections_tidy()

    def _work_orders_until_closed(self) -> None:
        asleep = threading.Lock()
        asleep.acquire()
        with self._lock:
            while True:
                while not self._may_start():
                    if self._closed and not self._ready:
                        # Shutting down: the others asleep (some went back to sleep while the
                        # last orders ran) find the same and end too.
                        self._wake_sleepers()
                        return
                    self._sleepers.append(asleep)
                    self._lock.release()
                    _connections_tidy()
                    asleep.acquire()  # until a waker releases it (and takes it off the list)
                    self._lock.acquire()
                    self._woken -= 1
                fn, args = self._ready.popleft()
                self._busy += 1
                self._lock.release()
                try:
                    _turns.pool = self
                    self._run(fn, args)
                finally:
                    _turns.pool = None
                    self._lock.acquire()
                    self._busy -= 1
                    self._freed += 1
                    self._orders_pending -= 1
                    if self._returning:
                        self._return_wakes.notify()

    def _work_background(self) -> None:
        while True:
            try:
                fn, args = self._background.get_nowait()
            except queue.Empty:
                _connections_tidy()
                fn, args = self._background.get()
            if fn is None:
                return
            self._run(fn, args)

    def _wake_sleepers(self) -> None:
        # Called with the lock held.
        while self._sleepers:
            self._woken += 1
            self._sleepers.pop().release()

    def _give_turn(self) -> None:
        with self._lock:
            self._busy -= 1
            self._freed += 1
            self._wake_one()

    def _take_turn(self) -> None:
        with self._lock:
            # Behind the threads already waiting, even with a turn free: one of them is being
            # woken for it.
            if self._busy >= self.running or self._returning:
                self._returning += 1
                deadline = time.monotonic() + self.RETURN_MAX_SECONDS
                try:
                    while True:
                        freed = self._freed
                        # Woken (first in, first out) when a turn is free for it; not before,
                        # even if one is free now (it is a thread's ahead of this one).
                        waited = time.monotonic()
                        self._return_wakes.wait(max(0.0, min(self.REACQUIRE_SECONDS, deadline - waited)))
                        if self._busy < self.running:
                            break
                        now = time.monotonic()
                        if now >= deadline or (
                            self._freed == freed and now - waited >= self.REACQUIRE_SECONDS
                        ):
                            # No turn came free for REACQUIRE_SECONDS: their holders wait, maybe
                            # for a lock this thread holds. Or it waited RETURN_MAX_SECONDS (it
                            # may hold a lock others wait for). Go on without one.
                            break
                        # Turns change hands, to threads that came back before this one: the
                        # process is busy, not stuck. Going on would only add a thread to the
                        # interpreter's (and the database pool's) load.
                finally:
                    self._returning -= 1
            self._busy += 1
            # A turn freed while this thread was being woken found it still counted among the
            # returning and woke nobody: pass it on.
            self._wake_one()

    @staticmethod
    def _run(fn: Callable[..., Any], args: tuple[Any, ...]) -> None:
        try:
            _connections_tidy(keep=True)
            fn(*args)
        except Exception:
            # The execution clears its dispatch record on the way out: the sweep resends it.
            log.exception("주문 실행 오류 (스윕에서 재전달): %s", args)
        finally:
            _connections_tidy(keep=True)  # the thread tidies them as it goes to sleep

    def shutdown(self, wait: bool = True) -> None:
        """Stop taking work, drop what is not yet due and the background work, finish (or with
        ``wait=False``, abandon) the order executions queued, and end the threads. (A dropped
        portfolio refresh is asked for again by the next fill and made by the periodic one.)"""
        with self._lock:
            self._closed = True
            self._later.clear()
            self._clock_wakes.notify()
            _drain(self._background)
            if not wait:
                self._orders_pending -= len(self._ready)
                for fn, args in self._ready:
                    if isinstance(fn, _RunAll):  # its caller waits for it
                        fn.dropped(*args)
                self._ready.clear()
            self._wake_sleepers()
            for _ in range(BACKGROUND_THREADS):
                self._background.put((None, ()))
        if wait:
            for thread in self._workers:
                if thread is not threading.current_thread():
                    thread.join()


class _RunAll:
    """The calls of one :meth:`LocalPool.run_all`: ``run(index)`` runs one on whatever thread
    takes it, :meth:`outcomes` waits for all of them."""

    def __init__(self, calls: Sequence[Callable[[], Any]]) -> None:
        self.calls = calls
        self.results: list[tuple[Any, BaseException | None]] = [(None, None)] * len(calls)
        self.done = threading.Semaphore(0)

    def __call__(self, index: int) -> None:
        try:
            self.results[index] = (self.calls[index](), None)
        except BaseException as exc:
            self.results[index] = (None, exc)
        finally:
            self.done.release()

    def dropped(self, index: int) -> None:
        """A ``shutdown(wait=False)`` dropped call ``index`` before it ran."""
        self.results[index] = (None, PoolClosedError("the order pool is shut down"))
        self.done.release()

    def outcomes(self) -> list[tuple[Any, BaseException | None]]:
        for _ in self.calls:
            self.done.acquire()
        return self.results


_turns = threading.local()  # .pool: the LocalPool whose order this thread is running, if any


@contextlib.contextmanager
def venue_wait() -> Iterator[None]:
    """Around a wait for a venue (a request's answer, a rate limit's pause, a lock another order
    holds across its request): an order thread of a :class:`LocalPool` lets another order run
    meanwhile, its server database connection back in the pool (a pool whose threads all run at
    once only gives the connection back). Anywhere else (a Celery worker's own thread, a web
    request), and inside a database transaction (its locks would hold up the others), it does
    nothing."""
    pool: LocalPool | None = getattr(_turns, "pool", None)
    if pool is None or _in_transaction():
        yield
        return
    _connections_tidy()  # a thread at its venue holds no server database connection
    if pool.running >= pool.threads:
        yield
        return
    _turns.pool = None  # a wait inside this one gives nothing more
    pool._give_turn()
    try:
        yield
    finally:
        pool._take_turn()
        _turns.pool = pool


def venue_sleep(seconds: float) -> None:
    """``time.sleep`` in a :func:`venue_wait`: a pause before asking a venue again."""
    with venue_wait():
        time.sleep(seconds)


class VenueLock:
    """A lock that may be held across a venue call (a ccxt client's, the token's): a thread
    that finds it taken waits for it in a :func:`venue_wait`, so its turn goes to another
    order meanwhile; ``reentrant``: an RLock's semantics."""

    def __init__(self, reentrant: bool = False):
        self._lock: threading.Lock | threading.RLock = threading.RLock() if reentrant else threading.Lock()

    def __enter__(self) -> VenueLock:
        if not self._lock.acquire(blocking=False):
            with venue_wait():
                self._lock.acquire()
        return self

    def __exit__(self, *_exc: object) -> None:
        self._lock.release()


def _in_transaction() -> bool:
    return any(conn.in_atomic_block for conn in connections.all(initialized_only=True))


def _drain(items: queue.SimpleQueue[_Item]) -> None:
    while True:
        try:
            items.get_nowait()
        except queue.Empty:
            return


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


_worker_pool: LocalPool | None = None


def install_worker(pool: LocalPool | None) -> None:
    """From now on this Celery worker process (distributed mode) runs its order tasks'
    executions on ``pool`` (None: on the task's own thread): orders.tasks."""
    global _worker_pool
    _worker_pool = pool


def worker() -> LocalPool | None:
    return _worker_pool


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
