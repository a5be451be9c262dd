"""A web process's own order threads (distributed mode, ORDER_WEB_THREADS, orders/handoff.py).

A signal's account runs on one of the web process's threads while one is idle, and goes to the
broker otherwise. These tests install such a pool in the test process (as the gunicorn worker
class and `manage.py serve` do) with no Celery worker running: an order that reaches the venue
without a message published went through the pool. The process killed mid-order is a real
process in tests/chaos/test_outages.py."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
from django.core.cache import cache
from django.test import override_settings
from django.utils import timezone

from orders import exchanges, handoff, liveness
from orders import services as order_services
from orders.exchanges.base import OrderRequest, OrderResult
from orders.exchanges.paper import PaperAdapter
from orders.models import Order, PaperOrder
from orders.services import (
    EXECUTE_TASK,
    FANOUT_TASK,
    orders_dispatch,
    orders_sweep,
    web_execution_start,
    web_execution_stop,
)
from tests.execution.test_execution import flaky_order, make_orders, statuses
from tests.execution.test_handoff import _webhook

pytestmark = pytest.mark.django_db(transaction=True)


class HeldPaper(PaperAdapter):
    """The paper venue, holding each order request until the test lets it go."""

    release = threading.Event()
    entered = threading.Event()

    def place_order(self, request: OrderRequest) -> OrderResult:
        HeldPaper.entered.set()
        assert HeldPaper.release.wait(30), "the test never released the venue"
        return super().place_order(request)


@pytest.fixture
def held(monkeypatch: pytest.MonkeyPatch) -> Iterator[type[HeldPaper]]:
    monkeypatch.setitem(exchanges.ADAPTERS, "HELD", f"{__name__}.HeldPaper")
    HeldPaper.release.clear()
    HeldPaper.entered.clear()
    yield HeldPaper
    HeldPaper.release.set()


@pytest.fixture
def published(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, dict[str, Any]]]:
    """The order executions handed to the broker (nothing runs them). Other messages (a fill's
    portfolio refresh request, sent a moment after the fill) are dropped, not counted."""
    sent: list[tuple[str, dict[str, Any]]] = []

    def send_task(name: str, **options: Any) -> None:
        if name in (EXECUTE_TASK, FANOUT_TASK):
            sent.append((name, options))

    monkeypatch.setattr(order_services.celery_app, "send_task", send_task)
    return sent


@pytest.fixture
def web_pool() -> Iterator[handoff.LocalPool]:
    """One order thread of a web process."""
    pool = handoff.LocalPool(1)
    handoff.install_web(pool)
    yield pool
    web_execution_stop(pool)


def _wait(check: Any, what: str, timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, what
        time.sleep(0.01)


def test_idle_threads_take_a_signals_executions_only_when_there_is_one_for_each() -> None:
    pool = handoff.LocalPool(2)
    go = threading.Event()
    ran: list[int] = []

    def work(n: int) -> None:
        go.wait(10)
        ran.append(n)

    try:
        assert not pool.submit_all_if_idle(work, [(1,), (2,), (3,)])  # more than the threads
        assert pool.submit_all_if_idle(work, [(1,)])
        assert not pool.submit_all_if_idle(work, [(2,), (3,)])  # one thread busy, one idle
        assert pool.submit_all_if_idle(work, [(2,)])
        assert not pool.submit_all_if_idle(work, [(3,)])  # nothing queued behind busy threads
        go.set()
        _wait(lambda: not pool.orders_waiting(), "the executions never ended")
        assert sorted(ran) == [1, 2]
        assert pool.submit_all_if_idle(work, [(3,), (4,)])
        _wait(lambda: len(ran) == 4, "idle threads did not take the next ones")
    finally:
        pool.shutdown()
    assert not pool.submit_all_if_idle(work, [(5,)])  # shut down: the caller publishes instead
    assert sorted(ran) == [1, 2, 3, 4]


def test_a_signal_to_one_account_is_placed_by_the_web_process_without_a_message(
    web_pool: handoff.LocalPool,
    published: list[Any],
    make_strategy: Any,
    make_account: Any,
    publish_price: Any,
    wait_orders: Any,
) -> None:
    make_strategy(accounts=[make_account("a1", balances={"USDT": "10000"})])
    publish_price("BINANCE:BTC/USDT", "50000")
    [order] = wait_orders(webhook_id=_webhook()["webhook_id"])
    assert (order.status, order.attempts) == ("filled", 1)
    trail = order.trail
    assert trail["committed"] <= trail["dispatched"] <= trail["claimed"] <= trail["sent"], trail
    assert published == []
    assert PaperOrder.objects.count() == 1


def test_a_signal_with_more_accounts_than_idle_threads_goes_to_the_workers_whole(
    held: type[HeldPaper],
    published: list[tuple[str, dict[str, Any]]],
    make_strategy: Any,
    make_account: Any,
    publish_price: Any,
    wait_orders: Any,
) -> None:
    """Not split between the web process and the workers (measured no sooner, its 202 later)."""
    pool = handoff.LocalPool(2)
    handoff.install_web(pool)
    try:
        holder = make_account("held", exchange="HELD", balances={"USDT": "10000"})
        others = [make_account(f"acct-{i}", balances={"USDT": "10000"}) for i in range(3)]
        strategy = make_strategy(accounts=[holder, *others])
        publish_price("BINANCE:BTC/USDT", "50000")
        spec = [{"side": "BUY", "qty_per": 10}]
        three = make_orders(strategy, others, spec)
        orders_dispatch(three.id, [a.pk for a in others], new=True)  # 3 accounts, 2 threads
        one = make_orders(strategy, [holder], spec)
        orders_dispatch(one.id, [holder.pk], new=True)  # runs here, held at the venue
        assert held.entered.wait(15)
        two = make_orders(strategy, others[:2], spec)
        orders_dispatch(two.id, [a.pk for a in others[:2]], new=True)  # 2 accounts, 1 idle thread
        assert [(name, options["args"]) for name, options in published] == [
            (FANOUT_TASK, [str(three.id), [a.pk for a in others]]),
            (FANOUT_TASK, [str(two.id), [a.pk for a in others[:2]]]),
        ]
        assert (
            sorted(Order.objects.exclude(account=holder).values_list("status", flat=True)) == ["queued"] * 5
        )
        assert all(
            not liveness.dispatch_lost(e.id, a.pk, 30) for e, a in [(three, others[2]), (two, others[0])]
        )
        held.release.set()
        _wait(lambda: statuses(one) == ["filled"], "the web thread's order never filled")
    finally:
        web_execution_stop(pool)


def test_an_order_held_by_a_live_web_process_is_left_alone_by_the_sweep(
    web_pool: handoff.LocalPool,
    held: type[HeldPaper],
    published: list[Any],
    make_strategy: Any,
    make_account: Any,
    publish_price: Any,
) -> None:
    """The web process holds the pair as a worker holds a task: named in its dispatch record and
    in the order's claim, judged by its heartbeat (a dead holder is the sweep's: test_liveness,
    and a killed web process in tests/chaos). Its start outside the queue leaves the queue's
    progress alone: a start out of turn must not make the messages still waiting look lost."""
    account = make_account("held", exchange="HELD", balances={"USDT": "10000"})
    # A batch of two: the second waits, queued, behind the first one's venue call.
    batch = [{"side": "BUY", "qty_per": 10}, {"side": "BUY", "qty_per": 5}]
    event = make_orders(make_strategy(accounts=[account]), [account], batch)
    publish_price("BINANCE:BTC/USDT", "50000")
    progress = {"due": 1.0, "at": 2.0}
    cache.set(liveness._STARTED_KEY, progress, timeout=60)
    orders_dispatch(event.id, [account.pk], new=True)
    assert held.entered.wait(15)
    assert statuses(event) == ["submitted", "queued"]
    first = Order.objects.get(webhook=event, sequence=0)
    assert cache.get(liveness._dispatch_key(event.id, account.pk))["worker"] == liveness.worker_id()
    assert cache.get(liveness._claim_key(first.pk)) == liveness.worker_id()
    assert not liveness.dispatch_lost(event.id, account.pk, 0)
    assert liveness.holder_state(first.pk) == liveness.HOLDER_ALIVE
    # Both older than the sweep's bound for a queued order, not yet for a submitted one.
    Order.objects.filter(webhook=event).update(
        created_at=timezone.now() - timedelta(seconds=40), updated_at=timezone.now() - timedelta(seconds=40)
    )
    counts = orders_sweep(30)
    assert (counts["redispatched"], counts["reconciled"]) == (0, 0), counts
    assert cache.get(liveness._STARTED_KEY) == progress
    held.release.set()
    _wait(lambda: statuses(event) == ["filled", "filled"], "the orders never filled")
    assert published == []
    assert PaperOrder.objects.count() == 2


def test_a_retry_the_venue_asks_of_a_web_thread_goes_to_the_workers(
    web_pool: handoff.LocalPool,
    published: list[tuple[str, dict[str, Any]]],
    make_strategy: Any,
    make_account: Any,
    publish_price: Any,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A retry is due later: it must outlive the web process, so it is a task with a countdown."""
    account, event = flaky_order(make_strategy, make_account, publish_price, monkeypatch)
    orders_dispatch(event.id, [account.pk], new=True)
    _wait(lambda: published, "no retry was handed to the broker")
    [(name, options)] = published
    assert (name, options["args"]) == (EXECUTE_TASK, [str(event.id), account.pk])
    assert options["countdown"] > 0
    assert statuses(event) == ["queued"]
    assert not liveness.dispatch_lost(event.id, account.pk, 30)  # its retry is on its way
    order_services.account_orders_execute(event.id, account.pk)  # the worker, when it is due
    assert statuses(event) == ["filled"]
    assert Order.objects.get(webhook=event).attempts == 2
    assert PaperOrder.objects.count() == 1


@pytest.mark.parametrize(
    ("broker", "threads", "expected"),
    [("redis://127.0.0.1:1/0", 3, 3), ("redis://127.0.0.1:1/0", 0, None), ("memory://", 3, None)],
    ids=["distributed", "turned-off", "embedded"],
)
def test_a_web_process_starts_its_order_threads_only_in_distributed_mode(
    broker: str, threads: int, expected: int | None, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("QT_SKIP_VENUE_WARMUP", "1")
    with override_settings(CELERY_BROKER_URL=broker, ORDER_WEB_THREADS=threads):
        pool = web_execution_start()
    try:
        assert (pool.threads if pool else None) == expected
        assert handoff.web() is pool
        if pool is not None:
            assert web_execution_start() is None  # once per process
    finally:
        if pool is not None:
            web_execution_stop(pool)
    assert handoff.web() is None


def test_a_pair_run_here_is_recorded_with_its_first_claim_in_the_same_write() -> None:
    """No round trip of its own ahead of the order: the pair's record goes with the first claim;
    until then there is none (a process that dies first: the sweep reads the pair as lost)."""
    pair = ("9b2e6a52-0000-4000-8000-000000000001", 7)
    key = liveness._dispatch_key(*pair)
    cache.delete(key)
    with liveness.started_here(*pair):
        assert cache.get(key) is None and liveness.dispatch_lost(*pair, 30)
        liveness.mark_claim("order-1")
        record = cache.get(key)
        assert record["worker"] == liveness.worker_id()
        assert cache.get(liveness._claim_key("order-1")) == liveness.worker_id()
        assert not liveness.dispatch_lost(*pair, 30)
        cache.delete(key)
        liveness.mark_claim("order-2")  # the pair's next order: its claim only
        assert cache.get(key) is None
    liveness.mark_claim("order-3")  # another pair's, run from a task
    assert cache.get(key) is None
    assert cache.get(liveness._claim_key("order-3")) == liveness.worker_id()
