"""A Celery worker's own order threads (distributed mode, orders.tasks): its order tasks execute
on a pool of WORKER_ORDER_THREADS threads, WORKER_ORDER_TURNS of them running at once
(orders.handoff.LocalPool, whose turns tests/execution/test_pool_turns.py tests), the task's
thread waiting for them. The worker starting and stopping them is tested with Celery's real
WorkController; a fan-out's chunk at a venue simulator over HTTP in
tests/venues/test_venue_waits.py; the whole worker process under faults in tests/chaos/.

Every wait on the test's side is bounded, so a pool that hangs fails the test instead of
hanging it."""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable, Iterator
from types import SimpleNamespace
from typing import Any

import pytest

from orders import handoff
from orders.tasks import _on_order_threads, _start_order_threads, _stop_order_threads
from tests.execution.test_pool_turns import until

BOUND = 10.0  # seconds the test waits for what it expects: far beyond what any of these takes


@pytest.fixture
def pool() -> Iterator[handoff.LocalPool]:
    made = handoff.LocalPool(4, running=1)
    yield made
    made.shutdown(wait=False)


def test_run_all_returns_each_calls_result_or_exception_in_order(pool: handoff.LocalPool) -> None:
    def fails() -> None:
        raise ValueError("venue said no")

    outcomes = pool.run_all([lambda: 1, fails, lambda: "three"])
    assert [result for result, _exc in outcomes] == [1, None, "three"]
    errors = [exc for _result, exc in outcomes]
    assert errors[0] is None and errors[2] is None
    assert isinstance(errors[1], ValueError) and str(errors[1]) == "venue said no"


def test_run_all_runs_the_calls_at_their_venues_together_with_one_turn(pool: handoff.LocalPool) -> None:
    at_venue = threading.Barrier(4, timeout=BOUND)  # all four inside their venue waits at once

    def order() -> str:
        with handoff.venue_wait():
            at_venue.wait()
        return threading.current_thread().name

    outcomes = pool.run_all([order] * 4)
    assert [exc for _name, exc in outcomes] == [None] * 4
    names = {name for name, _exc in outcomes}
    assert len(names) == 4 and all(name.startswith("orders_") for name in names)


def test_run_all_on_a_pool_shutting_down_runs_on_the_callers_thread(pool: handoff.LocalPool) -> None:
    pool.shutdown(wait=True)
    [(name, exc)] = pool.run_all([lambda: threading.current_thread().name])
    assert exc is None and name == threading.current_thread().name


@contextlib.contextmanager
def order_threads_of_the_worker(threads: int = 4, running: int = 2) -> Iterator[handoff.LocalPool]:
    """Order threads of the worker's own, as ``_start_order_threads`` installs them (for tests
    elsewhere that run the order tasks on them)."""
    pool = handoff.LocalPool(threads, running=running)
    handoff.install_worker(pool)
    try:
        yield pool
    finally:
        handoff.install_worker(None)
        pool.shutdown(wait=True)


@pytest.fixture
def worker_pool() -> Iterator[Callable[[handoff.LocalPool | None], None]]:
    def install(pool: handoff.LocalPool | None) -> None:
        handoff.install_worker(pool)

    handoff.install_worker(None)
    yield install
    handoff.install_worker(None)


def test_a_task_waits_for_its_execution_on_the_order_threads_and_raises_its_error(
    pool: handoff.LocalPool, worker_pool: Callable[[handoff.LocalPool | None], None]
) -> None:
    worker_pool(pool)
    assert _on_order_threads(lambda: threading.current_thread().name).startswith("orders_")

    class VenueBusyError(Exception):
        pass

    def busy() -> None:
        raise VenueBusyError

    with pytest.raises(VenueBusyError):  # the task's thread sees it (ExecutionRetry: self.retry)
        _on_order_threads(busy)
    worker_pool(None)
    assert _on_order_threads(lambda: threading.current_thread().name) == threading.current_thread().name


# --- a worker starting its order threads -----------------------------------------------------


def controller(pool: str, concurrency: int) -> Any:
    """Celery's real WorkController with its pool made (as ``worker_ready`` finds it)."""
    from celery.worker import WorkController

    from quanttrade.celery import app

    worker = WorkController(app=app, pool_cls=pool, concurrency=concurrency)
    worker.pool = worker.pool_cls(worker.concurrency)
    return worker


@pytest.mark.parametrize(
    ("threads", "turns", "running"), [(16, 2, 2), (8, 0, 8)], ids=["two turns", "no turns"]
)
def test_a_threads_worker_starts_its_order_threads_and_stops_them_with_it(
    worker_pool: Callable[[handoff.LocalPool | None], None],
    settings: Any,
    threads: int,
    turns: int,
    running: int,
) -> None:
    settings.WORKER_ORDER_THREADS, settings.WORKER_ORDER_TURNS = threads, turns
    _start_order_threads(sender=SimpleNamespace(controller=controller("threads", 8)))
    started = handoff.worker()
    assert started is not None and (started.threads, started.running) == (threads, running)
    _stop_order_threads()  # as the worker shuts down
    assert handoff.worker() is None
    with pytest.raises(handoff.PoolClosedError):
        started.submit(print)


@pytest.mark.parametrize(
    ("pool_name", "order_threads"),
    [
        ("threads", 0),  # turned off: each task executes on its own thread
        ("prefork", 32),  # a child process runs one task
    ],
)
def test_no_order_threads_where_they_are_not_wanted(
    worker_pool: Callable[[handoff.LocalPool | None], None], settings: Any, pool_name: str, order_threads: int
) -> None:
    settings.WORKER_ORDER_THREADS = order_threads
    _start_order_threads(sender=SimpleNamespace(controller=controller(pool_name, 2)))
    assert handoff.worker() is None


def test_embedded_modes_worker_starts_no_order_threads(
    worker_pool: Callable[[handoff.LocalPool | None], None], settings: Any
) -> None:
    """Embedded mode's in-process worker: its orders run on the process's own pool."""
    settings.WORKER_ORDER_THREADS = 32
    embedded = handoff.LocalPool(1)
    handoff.install(embedded)
    try:
        _start_order_threads(sender=SimpleNamespace(controller=controller("threads", 8)))
        assert handoff.worker() is None
    finally:
        handoff.uninstall(embedded)
        embedded.shutdown(wait=True)


def test_run_all_on_one_of_the_pools_own_threads_runs_the_calls_there(pool: handoff.LocalPool) -> None:
    """Waiting there would hold a thread and a turn the calls may need (with one turn, for
    ever)."""
    outer = pool.run_all([lambda: pool.run_all([lambda: threading.current_thread().name] * 2)])
    [(inner, exc)] = outer
    assert exc is None
    names = {name for name, _exc in inner}
    assert len(names) == 1 and names.pop().startswith("orders_")


def test_run_all_calls_dropped_by_a_shutdown_fail_instead_of_hanging(pool: handoff.LocalPool) -> None:
    release = threading.Event()
    pool.submit(release.wait, BOUND)  # the one turn is taken: the next calls queue
    outcome: list[Any] = []
    caller = threading.Thread(target=lambda: outcome.extend(pool.run_all([lambda: "ran"])), daemon=True)
    caller.start()
    assert until(lambda: bool(pool._ready))
    pool.shutdown(wait=False)
    caller.join(BOUND)
    release.set()
    assert not caller.is_alive()
    [(result, exc)] = outcome
    assert result is None and isinstance(exc, handoff.PoolClosedError)


def test_a_connection_that_fails_to_close_does_not_end_an_order_thread(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A server connection the database dropped may raise as it is given back: the thread
    goes on (raised, it ended the thread, whose turn was then lost for good)."""

    class Dropped:
        vendor = "postgresql"
        connection = object()
        in_atomic_block = False
        errors_occurred = True

        def close_if_unusable_or_obsolete(self) -> None:
            raise OSError("server closed the connection unexpectedly")

    monkeypatch.setattr(handoff, "connections", SimpleNamespace(all=lambda initialized_only: [Dropped()]))
    one = handoff.LocalPool(1)  # each round needs its one thread alive
    try:
        for _ in range(3):
            ran = threading.Event()
            one.submit(ran.set)
            assert ran.wait(BOUND)
    finally:
        one.shutdown(wait=False)
