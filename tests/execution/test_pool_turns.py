"""The order pool's turns (orders/handoff.py): of its threads only ``running`` run at once, and
a thread waiting for its venue (``venue_wait``: an HTTP answer, a rate limit's pause, a lock
another order holds across its request) lets another run meanwhile.

No database and no venue here: the waits are events the test sets, so each test decides when
a "venue" answers. Every wait on the test's side is bounded, so a pool that hangs fails the
test instead of hanging it."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from django.db import connection, connections, transaction

from orders import handoff
from orders.exchanges.http import venue_session
from orders.models import Order

BOUND = 10.0  # seconds the test waits for what it expects: far beyond what any of these takes
TASK_BOUND = 6 * BOUND  # seconds a task waits for the test: the test gives up first


@pytest.fixture
def make_pool() -> Iterator[Callable[..., handoff.LocalPool]]:
    pools: list[handoff.LocalPool] = []

    def make(threads: int, running: int, reacquire: float | None = None) -> handoff.LocalPool:
        pool = handoff.LocalPool(threads, running=running)
        if reacquire is not None:
            pool.REACQUIRE_SECONDS = reacquire
        pools.append(pool)
        return pool

    yield make
    for pool in pools:
        pool.shutdown(wait=False)  # a test that failed may have left a thread waiting


def ended(done: threading.Semaphore, count: int) -> bool:
    """Whether ``count`` tasks released ``done`` within BOUND seconds each."""
    return all(done.acquire(timeout=BOUND) for _ in range(count))


def all_ran(pool: handoff.LocalPool, order: Callable[[], None], count: int) -> bool:
    """Submit ``order`` ``count`` times; whether every one ended within BOUND seconds each."""
    done = threading.Semaphore(0)

    def one() -> None:
        try:
            order()
        finally:
            done.release()

    for _ in range(count):
        pool.submit(one)
    return ended(done, count)


class Work:
    """An order's Python running: ``hold`` seconds (10 ms) holding its turn; ``most``: how many
    ran at once."""

    def __init__(self, hold: float = 0.01) -> None:
        self.lock = threading.Lock()
        self.running = 0
        self.most = 0
        self.hold = hold

    def run(self) -> None:
        with self.lock:
            self.running += 1
            self.most = max(self.most, self.running)
        time.sleep(self.hold)  # holds the turn, as Python running would
        with self.lock:
            self.running -= 1


def until(condition: Callable[[], bool]) -> bool:
    """Whether ``condition`` became true within BOUND seconds."""
    deadline = time.monotonic() + BOUND
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.005)
    return True


def test_orders_waiting_for_their_venues_do_not_count_against_the_running_limit(
    make_pool: Callable[..., handoff.LocalPool],
) -> None:
    pool = make_pool(8, running=2)
    answer = threading.Event()
    at_venue: list[int] = []
    done = threading.Semaphore(0)

    def order(number: int) -> None:
        with handoff.venue_wait():
            at_venue.append(number)
            answer.wait(TASK_BOUND)
        done.release()

    for number in range(8):
        pool.submit(order, number)
    # All eight are at their venues at once, though two run at a time.
    assert until(lambda: len(at_venue) == 8), at_venue
    answer.set()
    assert ended(done, 8)


def test_no_more_than_running_orders_run_outside_their_venue_waits(
    make_pool: Callable[..., handoff.LocalPool],
) -> None:
    pool = make_pool(8, running=2, reacquire=TASK_BOUND)  # no thread goes on without its turn here
    work = Work()

    def order() -> None:
        work.run()
        with handoff.venue_wait():
            time.sleep(0.01)
        work.run()

    assert all_ran(pool, order, 12)
    assert work.most == 2


def test_a_thread_back_from_its_venue_goes_before_a_new_order(
    make_pool: Callable[..., handoff.LocalPool],
) -> None:
    pool = make_pool(3, running=1, reacquire=TASK_BOUND)
    log: list[str] = []
    at_venue, answer, second_started, second_may_end = (threading.Event() for _ in range(4))
    done = threading.Semaphore(0)

    def first() -> None:
        with handoff.venue_wait():
            at_venue.set()
            answer.wait(TASK_BOUND)
        log.append("first back")
        done.release()

    def second() -> None:
        log.append("second start")
        second_started.set()
        second_may_end.wait(TASK_BOUND)
        log.append("second end")
        done.release()

    def third() -> None:
        log.append("third start")
        done.release()

    pool.submit(first)
    assert at_venue.wait(BOUND)
    pool.submit(second)  # takes the turn the first gave
    assert second_started.wait(BOUND)
    pool.submit(third)  # waits: the one turn is the second's
    answer.set()
    assert until(lambda: pool._returning == 1)  # the first is back, waiting for the turn
    second_may_end.set()
    assert ended(done, 3)
    assert log == ["second start", "second end", "first back", "third start"]


@pytest.mark.parametrize("trial", range(5))
def test_a_turn_freed_while_a_returning_thread_wakes_goes_to_a_queued_order(
    make_pool: Callable[..., handoff.LocalPool], trial: int
) -> None:
    """Two orders go to their venues at the same moment while a third, back from its venue,
    waits for a turn: it takes one, and the other goes to the queued order (the second turn
    freed before the returning thread ran must not be lost). The race is the point: repeated."""
    pool = make_pool(5, running=2, reacquire=TASK_BOUND)
    back, go_to_venue, stay, queued_started = (threading.Event() for _ in range(4))
    at_venue = threading.Semaphore(0)
    holding = threading.Semaphore(0)

    def returning() -> None:
        with handoff.venue_wait():
            at_venue.release()
            back.wait(TASK_BOUND)
        stay.wait(TASK_BOUND)  # keeps its turn

    def leaving() -> None:
        holding.release()
        go_to_venue.wait(TASK_BOUND)
        with handoff.venue_wait():
            stay.wait(TASK_BOUND)

    try:
        pool.submit(returning)
        assert at_venue.acquire(timeout=BOUND)
        pool.submit(leaving)
        pool.submit(leaving)
        assert holding.acquire(timeout=BOUND) and holding.acquire(timeout=BOUND)
        back.set()
        assert until(lambda: pool._returning == 1)
        pool.submit(queued_started.set)
        go_to_venue.set()  # both turns are freed at once
        assert queued_started.wait(BOUND)
    finally:
        stay.set()


def test_a_lock_held_across_a_venue_wait_stalls_the_pool_only_briefly(
    make_pool: Callable[..., handoff.LocalPool],
) -> None:
    """A thread that waits for a lock without giving its turn (``with lock``), while the
    lock's holder waits for its venue: the holder comes back to find no turn free, and goes on
    without one after REACQUIRE_SECONDS instead of waiting for ever."""
    pool = make_pool(2, running=1)
    pool.RETURN_MAX_SECONDS = TASK_BOUND  # only the stall lets the holder go on
    lock = threading.Lock()
    at_venue, answer = threading.Event(), threading.Event()
    done = threading.Semaphore(0)

    def holder() -> None:
        with lock:
            with handoff.venue_wait():
                at_venue.set()
                answer.wait(TASK_BOUND)
        done.release()

    def waiter() -> None:
        with lock:  # keeps its turn while it waits
            pass
        done.release()

    pool.submit(holder)
    assert at_venue.wait(BOUND)
    pool.submit(waiter)
    assert until(lambda: lock.locked() and pool._busy == 1)  # the waiter has the turn, blocked
    answer.set()
    assert ended(done, 2)


def test_threads_back_from_their_venues_wait_their_turn_while_turns_change_hands(
    make_pool: Callable[..., handoff.LocalPool],
) -> None:
    """A busy pool, not a stuck one: 8 threads come back from their venues to one turn, each
    holding it for 100 ms, so the last waits far longer than REACQUIRE_SECONDS (0.4 s here: a
    turn comes free every 100 ms, four times as often, however loaded the machine). As turns
    keep coming free, none goes on without one (each that did would be one more running: at
    1,000 accounts every order cost twice the CPU, docs/benchmarks-speed.md round 23)."""
    pool = make_pool(8, running=1, reacquire=0.4)
    pool.RETURN_MAX_SECONDS = TASK_BOUND  # only a stall would let one go on
    work = Work(hold=0.1)

    def order() -> None:
        for _ in range(2):
            with handoff.venue_wait():
                time.sleep(0.001)
            work.run()

    assert all_ran(pool, order, 8)
    assert work.most == 1


def test_a_thread_back_from_its_venue_waits_no_longer_than_return_max_seconds(
    make_pool: Callable[..., handoff.LocalPool],
) -> None:
    """It may hold a lock others wait for: behind a long queue it goes on without a turn once it
    has waited RETURN_MAX_SECONDS, though turns keep changing hands (every 20 ms here, far within
    the stall window), so two run at once."""
    pool = make_pool(16, running=1, reacquire=TASK_BOUND)  # never a stall: only the cap lets go
    pool.RETURN_MAX_SECONDS = 0.05
    work = Work()

    def order() -> None:
        with handoff.venue_wait():
            time.sleep(0.001)
        work.run()
        work.run()

    assert all_ran(pool, order, 16)
    assert work.most >= 2


def test_an_order_waiting_for_a_lock_gives_its_turn_to_the_holder(
    make_pool: Callable[..., handoff.LocalPool],
) -> None:
    """A ``VenueLock``: the waiter gives its turn while the lock is taken, so the holder, back
    from its venue, finds a turn at once (REACQUIRE_SECONDS is out of reach here)."""
    pool = make_pool(2, running=1, reacquire=TASK_BOUND)
    lock = handoff.VenueLock()
    at_venue, answer = threading.Event(), threading.Event()
    done = threading.Semaphore(0)

    def holder() -> None:
        with lock:
            with handoff.venue_wait():
                at_venue.set()
                answer.wait(TASK_BOUND)
        done.release()

    def waiter() -> None:
        with lock:
            pass
        done.release()

    pool.submit(holder)
    assert at_venue.wait(BOUND)
    pool.submit(waiter)
    assert until(lambda: pool._busy == 0)  # both wait: one for its venue, one for the lock
    answer.set()
    assert ended(done, 2)


def test_shutdown_runs_the_queued_orders_and_ends_every_thread(
    make_pool: Callable[..., handoff.LocalPool],
) -> None:
    """Threads woken by the shutdown while the turns were taken go back to sleep; the last
    orders' threads wake them to end."""
    pool = make_pool(4, running=2)
    go_on = threading.Event()
    ran: list[str] = []
    started = threading.Semaphore(0)

    def long() -> None:
        started.release()
        go_on.wait(TASK_BOUND)
        ran.append("long")

    for _ in range(2):
        pool.submit(long)
    assert started.acquire(timeout=BOUND) and started.acquire(timeout=BOUND)
    pool.submit(ran.append, "queued")
    pool.submit(ran.append, "queued")
    stopper = threading.Thread(target=pool.shutdown, kwargs={"wait": True})
    stopper.start()
    assert until(lambda: pool._closed)
    go_on.set()
    stopper.join(BOUND)
    assert not stopper.is_alive(), "the shutdown did not end"
    assert sorted(ran) == ["long", "long", "queued", "queued"]


@pytest.mark.django_db(transaction=True)
def test_a_wait_inside_a_database_transaction_keeps_the_turn(
    make_pool: Callable[..., handoff.LocalPool],
) -> None:
    """The transaction's locks would hold up whoever took the turn; outside a pool's order
    thread a wait gives nothing either."""
    with handoff.venue_wait():  # the test's own thread: nothing to give, nothing raised
        pass
    pool = make_pool(2, running=1)
    at_venue, answer, other_started = threading.Event(), threading.Event(), threading.Event()

    def in_transaction() -> None:
        with transaction.atomic():
            Order.objects.exists()
            with handoff.venue_wait():
                at_venue.set()
                answer.wait(TASK_BOUND)

    pool.submit(in_transaction)
    assert at_venue.wait(BOUND)
    pool.submit(other_started.set)
    assert not other_started.wait(0.3)  # no turn was given
    answer.set()
    assert other_started.wait(BOUND)


@pytest.mark.django_db(transaction=True)
def test_a_thread_at_its_venue_holds_no_server_database_connection(
    make_pool: Callable[..., handoff.LocalPool],
) -> None:
    """On PostgreSQL the connection goes back to the pool for the wait (32 threads at their
    venues would hold 32 of its 10); a SQLite one stays with its thread. Either way the order's
    next query works."""
    pool = make_pool(2, running=1)
    held_during: list[bool] = []
    after: list[bool] = []
    done = threading.Event()

    def order() -> None:
        Order.objects.exists()
        with handoff.venue_wait():
            held_during.append(connections["default"].connection is not None)
        after.append(Order.objects.exists())
        done.set()

    pool.submit(order)
    assert done.wait(BOUND)
    assert held_during == [connection.vendor == "sqlite"]
    assert after == [False]


class _SlowVenue(ThreadingHTTPServer):
    """Answers each request once the test lets it (``answer``), counting those waiting."""

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _SlowAnswer)
        self.lock = threading.Lock()
        self.waiting = 0
        self.answer = threading.Event()


class _SlowAnswer(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        venue = self.server
        assert isinstance(venue, _SlowVenue)
        with venue.lock:
            venue.waiting += 1
        venue.answer.wait(TASK_BOUND)
        body = b"{}"
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


def test_a_venue_session_gives_the_turn_while_its_answer_is_awaited(
    make_pool: Callable[..., handoff.LocalPool],
) -> None:
    """Over real HTTP: four orders' requests are at the venue at once with one turn."""
    server = _SlowVenue()
    threading.Thread(target=server.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{server.server_address[1]}/"
    pool = make_pool(4, running=1)
    answers: list[int] = []
    done = threading.Semaphore(0)

    def order() -> None:
        with venue_session() as session:
            answers.append(session.get(url, timeout=TASK_BOUND).status_code)
        done.release()

    try:
        for _ in range(4):
            pool.submit(order)
        assert until(lambda: server.waiting == 4), server.waiting
        server.answer.set()
        assert ended(done, 4)
        assert answers == [200] * 4
    finally:
        server.answer.set()
        server.shutdown()
        server.server_close()
