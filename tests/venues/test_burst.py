"""The sweep re-sends only lost work (orders.liveness dispatch records), never work that merely
waits in the broker or behind the account's earlier orders; a burst to one account is placed
once per order through the real Celery worker."""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
import time_machine
from django.core.cache import cache
from django.utils import timezone

from orders import handoff, liveness
from orders.models import Order
from orders.services import orders_dispatch, orders_sweep
from quanttrade.celery import app as celery_app
from tests.execution.test_execution import make_orders
from tests.execution.test_worker_order_threads import order_threads_of_the_worker
from venuesim.binance import BinanceSim

NO_REFRESH = {"refreshed": 0, "reconciled": 0}


def _age(event: Any, seconds: float = 300) -> None:
    Order.objects.filter(webhook=event).update(updated_at=timezone.now() - timedelta(seconds=seconds))


def _sweep(stale: float = 30) -> int:
    return orders_sweep(stale_after_seconds=stale)["redispatched"]


@pytest.fixture
def published(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, list[Any]]]:
    """The messages the sweep publishes, kept instead of sent: a Celery worker the session may
    have running would otherwise execute the re-dispatched orders while the test database is
    being flushed (a deadlock at teardown, seen in CI)."""
    sent: list[tuple[str, list[Any]]] = []
    monkeypatch.setattr(celery_app, "send_task", lambda name, args=None, **kwargs: sent.append((name, args)))
    return sent


def test_a_task_waiting_in_the_broker_is_not_sent_again_until_it_is_presumed_lost(
    transactional_db: None, make_strategy: Any, make_account: Any, published: list[Any]
) -> None:
    account = make_account("a1", balances={"USDT": "10000"})
    event = make_orders(make_strategy(accounts=[account]), [account], [{"side": "BUY", "qty_per": 10}])
    # As orders_dispatch records it; the message itself is left out, so no worker (the session's
    # may run) takes it: it waits in the broker.
    liveness.mark_dispatched(event.id, account.id)
    _age(event)
    assert _sweep() == 0
    # Nothing has moved for DISPATCH_LOST_FACTOR x 30 s: the message is presumed lost, re-sent once.
    with time_machine.travel(timezone.now() + timedelta(seconds=301), tick=False):
        _age(event)
        assert _sweep() == 1
        assert _sweep() == 0  # the re-dispatch is a new record: not sent again at the next sweep
    assert published == [("orders.tasks.execute_account_orders", [str(event.id), account.id])]


def test_a_long_wait_is_not_lost_while_the_queue_moves(
    transactional_db: None, make_strategy: Any, make_account: Any, published: list[Any]
) -> None:
    account = make_account("a1", balances={"USDT": "10000"})
    strategy = make_strategy(accounts=[account])
    waiting = make_orders(strategy, [account], [{"side": "BUY", "qty_per": 10}])
    liveness.mark_dispatched(waiting.id, account.id)
    retried = make_orders(strategy, [account], [{"side": "BUY", "qty_per": 10}])
    with time_machine.travel(timezone.now() + timedelta(seconds=301), tick=False):
        liveness.mark_dispatched(retried.id, account.id, countdown=1.0)  # a retry, out of turn
        liveness.mark_started(retried.id, account.id)  # the workers are busy with the backlog
        Order.objects.filter(webhook=retried).update(status="filled")
        _age(waiting)
        assert _sweep() == 0
    with time_machine.travel(timezone.now() + timedelta(seconds=340), tick=False):
        _age(waiting)
        assert _sweep() == 1  # nothing started for a while: the queue is not moving towards it
    assert [args for _, args in published] == [[str(waiting.id), account.id]]


def test_a_task_passed_by_a_later_one_is_lost(
    transactional_db: None, make_strategy: Any, make_account: Any, published: list[Any]
) -> None:
    account = make_account("a1", balances={"USDT": "10000"})
    strategy = make_strategy(accounts=[account])
    first = make_orders(strategy, [account], [{"side": "BUY", "qty_per": 10}])
    liveness.mark_dispatched(first.id, account.id)
    later = make_orders(strategy, [account], [{"side": "BUY", "qty_per": 10}])
    with time_machine.travel(timezone.now() + timedelta(seconds=31), tick=False):
        liveness.mark_dispatched(later.id, account.id)
        _age(first)
        assert _sweep() == 0  # the later one has not started either: a backlog, nothing lost
        liveness.mark_started(later.id, account.id)  # a worker took the later message first
        assert _sweep() == 1
    assert [args for _, args in published] == [[str(first.id), account.id]]


@pytest.fixture
def start_reads(monkeypatch: pytest.MonkeyPatch) -> list[list[str]]:
    """The reads a start makes (``cache.get_many``), recorded."""
    reads: list[list[str]] = []
    get_many = cache.get_many

    def spy(keys: Any, *args: Any, **kwargs: Any) -> Any:
        reads.append(list(keys))
        return get_many(keys, *args, **kwargs)

    monkeypatch.setattr(cache, "get_many", spy)
    return reads


def test_a_first_delivery_records_its_start_without_reading_and_is_judged_alike(
    transactional_db: None,
    make_strategy: Any,
    make_account: Any,
    published: list[Any],
    start_reads: list[list[str]],
) -> None:
    """A task's first delivery knows from its message when it was dispatched: its start is
    written without reading (one round trip), and the sweep judges the queue as before: the
    task is held by its live worker, and one passed by it is lost."""
    account = make_account("a1", balances={"USDT": "10000"})
    strategy = make_strategy(accounts=[account])
    first = make_orders(strategy, [account], [{"side": "BUY", "qty_per": 10}])
    liveness.mark_dispatched(first.id, account.id)
    later = make_orders(strategy, [account], [{"side": "BUY", "qty_per": 10}])
    with time_machine.travel(timezone.now() + timedelta(seconds=31), tick=False):
        liveness.mark_dispatched(later.id, account.id)
        _age(first)
        assert _sweep() == 0
        dispatched_at = time.time() - 0.004
        liveness.mark_started_dispatched_at(later.id, account.id, dispatched_at)
        assert start_reads == []
        assert cache.get(f"qt:dispatch:{later.id}:{account.id}") == {
            "due": dispatched_at,
            "worker": liveness.worker_id(),
        }
        assert cache.get("qt:dispatch:started") == {"due": dispatched_at, "at": time.time()}
        assert not liveness.dispatch_lost(later.id, account.id, 30)  # its worker beats
        assert _sweep() == 1  # the first was passed by it: lost
    assert [args for _, args in published] == [[str(first.id), account.id]]


def test_a_start_whose_dispatch_time_is_stale_or_ahead_is_recorded_safely(
    transactional_db: None, make_strategy: Any, make_account: Any, start_reads: list[list[str]]
) -> None:
    """A message delivered again long after its dispatch (its worker died) reads the record as
    before and keeps its own progress out; a dispatch time ahead of this machine's clock (another
    machine's) counts as now, so the queue never looks further along than it is."""
    account = make_account("a1")
    event = make_orders(make_strategy(accounts=[account]), [account], [{"side": "BUY", "qty_per": 10}])
    liveness.mark_dispatched(event.id, account.id)
    recorded = cache.get(f"qt:dispatch:{event.id}:{account.id}")["due"]
    liveness.mark_started_dispatched_at(event.id, account.id, time.time() - liveness.START_FRESH_SECONDS - 1)
    assert len(start_reads) == 1  # the reading way
    assert cache.get(f"qt:dispatch:{event.id}:{account.id}")["due"] == recorded
    with time_machine.travel(timezone.now(), tick=False):
        liveness.mark_started_dispatched_at(event.id, account.id, time.time() + 45)
        assert cache.get("qt:dispatch:started") == {"due": time.time(), "at": time.time()}
    assert len(start_reads) == 1


def test_only_a_first_delivery_with_the_intakes_trail_starts_without_reading() -> None:
    from types import SimpleNamespace

    from orders.tasks import _first_dispatch_time

    def task(retries: int = 0, eta: Any = None, redelivered: bool = False) -> Any:
        return SimpleNamespace(
            request=SimpleNamespace(retries=retries, eta=eta, delivery_info={"redelivered": redelivered})
        )

    trail = {"t0": 1_764_547_200_123_456, "committed": 2140, "dispatched": 2210}
    assert _first_dispatch_time(task(), trail) == 1_764_547_200.125666
    assert _first_dispatch_time(task(retries=1), trail) is None  # a retry: due later, out of turn
    assert _first_dispatch_time(task(eta="2026-12-02T18:00:00+00:00"), trail) is None
    assert _first_dispatch_time(task(redelivered=True), trail) is None
    assert _first_dispatch_time(task(), None) is None  # a re-dispatch carries no trail
    assert _first_dispatch_time(task(), {"t0": 1}) is None


def test_accounts_waiting_in_a_started_chunk_are_not_lost(
    transactional_db: None, make_strategy: Any, make_account: Any, published: list[Any]
) -> None:
    """A fan-out's chunk (orders.services.fan_out_chunk) is started as a whole: its accounts
    not yet reached are held by the running worker, not taken for lost when a task dispatched
    later starts first; an account of the same hand-off outside the chunk still is."""
    accounts = [make_account(f"a{i}", balances={"USDT": "10000"}) for i in range(4)]
    strategy = make_strategy(accounts=accounts)
    event = make_orders(strategy, accounts, [{"side": "BUY", "qty_per": 10}])
    ids = [a.id for a in accounts]
    liveness.mark_dispatched_many(event.id, ids)
    liveness.mark_started_many(event.id, ids[:3])  # this process runs the chunk of three
    later = make_orders(strategy, accounts[:1], [{"side": "BUY", "qty_per": 10}])
    with time_machine.travel(timezone.now() + timedelta(seconds=31), tick=False):
        liveness.mark_dispatched(later.id, ids[0])
        liveness.mark_started(later.id, ids[0])  # a task dispatched 31 s later has started
        Order.objects.filter(webhook=later).update(status="filled")
        _age(event)
        assert [liveness.dispatch_lost(event.id, a, 30) for a in ids] == [False, False, False, True]
        assert _sweep() == 1  # only the account outside the chunk
    assert [args for _, args in published] == [[str(event.id), ids[3]]]


def test_a_chunk_clears_its_records_at_once_and_one_stopped_by_the_database_leaves_the_rest_to_the_sweep(
    transactional_db: None,
    make_strategy: Any,
    make_account: Any,
    publish_price: Any,
    published: list[Any],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A fan-out task runs its chunk's accounts in turn. When it ends, the chunk's dispatch
    records go in one round trip; when the database fails under one account, the task ends
    there, and the accounts it did not reach must not stay recorded as run by this live worker:
    the sweep resends them (they would otherwise wait until the worker stopped)."""
    from orders import services
    from orders.tasks import execute_webhook_orders

    accounts = [make_account(f"a{i}", balances={"USDT": "10000"}) for i in range(6)]
    strategy = make_strategy(accounts=accounts)
    publish_price("BINANCE:BTC/USDT", "50000")
    ids = [a.id for a in accounts]
    first, second = (
        make_orders(strategy, accounts[:3], [{"side": "BUY", "qty_per": 10}]),
        make_orders(strategy, accounts[3:], [{"side": "BUY", "qty_per": 10}]),
    )
    liveness.mark_dispatched_many(first.id, ids[:3])
    liveness.mark_dispatched_many(second.id, ids[3:])
    deleted: list[list[str]] = []
    delete_many = cache.delete_many
    monkeypatch.setattr(
        cache, "delete_many", lambda keys, **kw: deleted.append(list(keys)) or delete_many(keys, **kw)
    )

    execute_webhook_orders.run(str(first.id), ids[:3], None, 3)

    assert set(Order.objects.filter(webhook=first).values_list("status", flat=True)) == {"filled"}
    assert deleted == [[f"qt:dispatch:{first.id}:{a}" for a in ids[:3]]]
    assert all(cache.get(f"qt:dispatch:{first.id}:{a}") is None for a in ids[:3])

    read = services._task_orders_read

    def database_gone(webhook_id: Any, account_id: int, now: Any) -> Any:
        if account_id == ids[4]:
            from django.db import OperationalError

            raise OperationalError("server closed the connection unexpectedly")
        return read(webhook_id, account_id, now)

    monkeypatch.setattr(services, "_task_orders_read", database_gone)
    with pytest.raises(Exception, match="server closed"):
        execute_webhook_orders.run(str(second.id), ids[3:], None, 3)

    statuses = dict(Order.objects.filter(webhook=second).values_list("account_id", "status"))
    assert statuses == {ids[3]: "filled", ids[4]: "queued", ids[5]: "queued"}
    assert [liveness.dispatch_lost(second.id, a, 30) for a in ids[4:]] == [True, True]
    _age(second)
    assert _sweep() == 2
    assert sorted(args[1] for _, args in published) == ids[4:]


@pytest.mark.parametrize("on_order_threads", [False, True], ids=["task's thread", "worker's order threads"])
def test_an_account_whose_retry_is_scheduled_keeps_its_record_when_the_chunk_ends(
    on_order_threads: bool,
    transactional_db: None,
    make_strategy: Any,
    make_account: Any,
    publish_price: Any,
    published: list[Any],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The chunk clears the records of the accounts it finished, not the record of one whose
    venue asked for a retry: that one says when its retry is due, so the sweep leaves it be."""
    from orders.exchanges.base import RetryableVenueError
    from orders.exchanges.paper import PaperAdapter
    from orders.tasks import execute_webhook_orders

    accounts = [make_account(f"a{i}", balances={"USDT": "10000"}) for i in range(3)]
    event = make_orders(make_strategy(accounts=accounts), accounts, [{"side": "BUY", "qty_per": 10}])
    publish_price("BINANCE:BTC/USDT", "50000")
    ids = [a.id for a in accounts]
    liveness.mark_dispatched_many(event.id, ids)
    place = PaperAdapter.place_order

    def busy_for_the_second(self: PaperAdapter, request: Any) -> Any:
        if self.account.pk == ids[1]:
            raise RetryableVenueError("503 Service Unavailable")
        return place(self, request)

    monkeypatch.setattr(PaperAdapter, "place_order", busy_for_the_second)

    with order_threads_of_the_worker() if on_order_threads else contextlib.nullcontext():
        execute_webhook_orders.run(str(event.id), ids, None, 3)

    statuses = dict(Order.objects.filter(webhook=event).values_list("account_id", "status"))
    assert statuses == {ids[0]: "filled", ids[1]: "queued", ids[2]: "filled"}
    assert [cache.get(f"qt:dispatch:{event.id}:{a}") is None for a in ids] == [True, False, True]
    assert cache.get(f"qt:dispatch:{event.id}:{ids[1]}")["eta"] is True
    assert liveness.dispatch_lost(event.id, ids[1], 30) is False
    assert published == [("orders.tasks.execute_account_orders", [str(event.id), ids[1]])]


def test_a_retry_long_past_its_time_is_lost_however_busy_the_queue(db: None) -> None:
    """A retry's message is held by the worker that took it until it is due; that worker killed,
    the broker gives it back only after an hour. Past DISPATCH_LOST_FACTOR x the stale bound the
    retry counts as lost even while other tasks keep starting (the queue moving is no sign of
    it); before that, a busy worker's late retry is left alone."""
    with time_machine.travel(timezone.now(), tick=False) as clock:
        liveness.mark_dispatched("w-retry", 7, countdown=5)
        due = time.time() + 5
        for seconds in (60, 299):
            clock.move_to(due + seconds)
            liveness.mark_started("w-other", 8)  # the queue moves
            assert liveness.dispatch_lost("w-retry", 7, 30) is False, seconds
        clock.move_to(due + 301)
        liveness.mark_started("w-other", 9)
        assert liveness.dispatch_lost("w-retry", 7, 30) is True


def test_orders_behind_a_running_task_wait_for_it_unless_its_worker_died(
    transactional_db: None, make_strategy: Any, make_account: Any, published: list[Any], monkeypatch: Any
) -> None:
    account = make_account("a1", balances={"USDT": "10000"})
    event = make_orders(
        make_strategy(accounts=[account]),
        [account],
        [{"side": "BUY", "qty_per": 10}, {"side": "SELL", "qty_per": 5}],
    )
    liveness.mark_dispatched(event.id, account.id)
    # A worker of its own runs the task and beats. Not this process's own id: this process's
    # heartbeat thread (started by an earlier test's worker) would beat again after the "kill".
    with monkeypatch.context() as patched:
        patched.setattr(liveness, "worker_id", lambda: "gone-host:1")
        liveness.mark_started(event.id, account.id)
    _age(event)
    assert _sweep() == 0
    cache.delete("qt:worker:gone-host:1")  # its heartbeat stopped: killed mid-task
    assert _sweep() == 1
    assert [args for _, args in published] == [[str(event.id), account.id]]


@pytest.mark.parametrize("new", [False, True], ids=["re-dispatch", "intake"])
def test_a_dispatch_the_broker_refused_leaves_no_record_and_is_sent_again(
    transactional_db: None, make_strategy: Any, make_account: Any, published: list[Any], new: bool
) -> None:
    """Recorded before the publish (a re-dispatch) or after it (the intake's ``new``): a refused
    publish leaves no dispatch record, so the sweep resends the orders."""
    account = make_account("a1", balances={"USDT": "10000"})
    event = make_orders(make_strategy(accounts=[account]), [account], [{"side": "BUY", "qty_per": 10}])

    def refuse(*args: Any, **kwargs: Any) -> None:
        raise ConnectionError("broker down")

    with pytest.MonkeyPatch.context() as broker_down:
        broker_down.setattr(celery_app, "send_task", refuse)
        orders_dispatch(event.id, [account.id], new=new)
    assert published == []
    assert cache.get(f"qt:dispatch:{event.id}:{account.id}") is None
    _age(event)
    assert _sweep() == 1
    assert [args for _, args in published] == [[str(event.id), account.id]]


def test_a_new_webhooks_dispatch_record_is_written_after_its_publish_and_keeps_a_started_task(
    transactional_db: None, make_strategy: Any, make_account: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The intake's dispatch (``new=True``) publishes first and records after, where no record
    is: a task that started in between (another worker, before the web process wrote the
    record) keeps its `started` record, so its worker's death is still seen. A re-dispatch
    records before its publish."""
    a1, a2 = make_account("a1"), make_account("a2")
    strategy = make_strategy(accounts=[a1, a2])
    event = make_orders(strategy, [a1, a2], [{"side": "BUY", "qty_per": 10}])
    seen_at_publish: list[Any] = []

    def publish_and_start(name: str, args: list[Any], **kwargs: Any) -> None:
        seen_at_publish.append(cache.get(f"qt:dispatch:{event.id}:{a1.id}"))
        with monkeypatch.context() as patched:  # a worker of its own takes a1's task at once
            patched.setattr(liveness, "worker_id", lambda: "quick-host:1")
            liveness.mark_started(event.id, a1.id)

    monkeypatch.setattr(celery_app, "send_task", publish_and_start)
    orders_dispatch(event.id, [a1.id, a2.id], new=True)
    assert seen_at_publish == [None]  # not recorded before the publish
    assert cache.get(f"qt:dispatch:{event.id}:{a1.id}")["worker"] == "quick-host:1"  # kept
    assert cache.get(f"qt:dispatch:{event.id}:{a2.id}")["worker"] == ""  # recorded after
    _age(event)
    assert _sweep() == 0  # a1 runs on a live worker, a2 waits in the broker
    cache.delete("qt:worker:quick-host:1")  # a1's worker is killed mid-task
    sent: list[Any] = []
    monkeypatch.setattr(celery_app, "send_task", lambda name, args=None, **kwargs: sent.append(args))
    assert _sweep() == 1 and sent == [[str(event.id), a1.id]]
    # The re-dispatch recorded before its publish, replacing the dead worker's record.
    seen_at_publish.clear()
    monkeypatch.setattr(
        celery_app,
        "send_task",
        lambda name, args=None, **kwargs: seen_at_publish.append(
            cache.get(f"qt:dispatch:{event.id}:{a1.id}")
        ),
    )
    orders_dispatch(event.id, [a1.id])
    assert seen_at_publish[0]["worker"] == ""


SIGNALS = 24


def test_a_burst_to_one_account_is_placed_once_with_no_redispatch(
    celery_worker: Any, make_strategy: Any, binance_account: Any, binance_sim: BinanceSim, wait_orders: Any
) -> None:
    """24 signals to one Binance account at once, each order answered 0.15 s late: 4 worker
    threads drain them for seconds while the sweep runs every 0.2 s with a 2-s staleness (the
    old sweep re-sent every queued pair older than that at each run)."""
    account = binance_account()
    strategy = make_strategy(accounts=[account])
    binance_sim.inject("late", "/api/v3/order", method="POST", count=SIGNALS, delay=0.15)
    events = [make_orders(strategy, [account], [{"side": "BUY", "qty_per": 1}]) for _ in range(SIGNALS)]
    for event in events:
        orders_dispatch(event.id, [account.id])
    redispatched = 0
    deadline = time.monotonic() + 60
    while Order.objects.filter(status__in=["queued", "submitted"]).exists() and time.monotonic() < deadline:
        Order.objects.filter(status="queued").update(updated_at=timezone.now() - timedelta(seconds=5))
        redispatched += _sweep(stale=2)
        time.sleep(0.2)
    orders = wait_orders(webhook__in=events)
    assert redispatched == 0
    assert [o.status for o in orders] == ["filled"] * SIGNALS
    placed = binance_sim.seen("/api/v3/order", "POST")
    client_ids = sorted(r.form.get("newClientOrderId") or r.query.get("newClientOrderId") for r in placed)
    assert client_ids == sorted(o.client_order_id for o in orders)  # each order once, none twice


def test_a_task_that_finds_the_database_down_leaves_its_orders_to_the_sweep(
    transactional_db: None, make_strategy: Any, make_account: Any, published: list[Any]
) -> None:
    from django.db import connection
    from django.db.utils import OperationalError

    from orders.services import account_orders_execute

    account = make_account("a-db", balances={"USDT": "10000"})
    event = make_orders(make_strategy(accounts=[account]), [account], [{"side": "BUY", "qty_per": 10}])
    liveness.mark_dispatched(event.id, account.id)

    def database_down(*args: Any, **kwargs: Any) -> Any:
        raise OperationalError("connection refused")

    # Every statement on this thread's connection fails, however the task reads and writes.
    with connection.execute_wrapper(database_down):
        try:
            account_orders_execute(event.id, account.id)
        except OperationalError:
            pass
        else:
            raise AssertionError("the task should fail while the database is down")
    # The task that started ended without its orders: its record went with it (a record saying
    # "started by a live worker" would keep the sweep away from them for good).
    assert liveness.dispatch_lost(event.id, account.id, stale_after_seconds=30)
    _age(event)
    assert _sweep() == 1
    assert [args for _, args in published] == [[str(event.id), account.id]]


@pytest.fixture
def worker_order_threads() -> Iterator[handoff.LocalPool]:
    with order_threads_of_the_worker() as pool:
        yield pool


def test_on_the_workers_order_threads_a_chunk_runs_every_account_and_leaves_a_failed_one_to_the_sweep(
    transactional_db: None,
    worker_order_threads: handoff.LocalPool,
    make_strategy: Any,
    make_account: Any,
    publish_price: Any,
    published: list[Any],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The chunk's accounts run at once on the worker's order threads: one that the database
    fails does not stop the others; the task raises its error, and every record goes in one
    round trip (the failed account's too, so the sweep resends it)."""
    from orders import services
    from orders.tasks import execute_webhook_orders

    accounts = [make_account(f"a{i}", balances={"USDT": "10000"}) for i in range(3)]
    strategy = make_strategy(accounts=accounts)
    publish_price("BINANCE:BTC/USDT", "50000")
    ids = [a.id for a in accounts]
    event = make_orders(strategy, accounts, [{"side": "BUY", "qty_per": 10}])
    liveness.mark_dispatched_many(event.id, ids)
    deleted: list[list[str]] = []
    delete_many = cache.delete_many
    monkeypatch.setattr(
        cache, "delete_many", lambda keys, **kw: deleted.append(list(keys)) or delete_many(keys, **kw)
    )
    read = services._task_orders_read
    ran_on: list[str] = []

    def database_gone_for_the_second(webhook_id: Any, account_id: int, now: Any) -> Any:
        ran_on.append(threading.current_thread().name)
        if account_id == ids[1]:
            from django.db import OperationalError

            raise OperationalError("server closed the connection unexpectedly")
        return read(webhook_id, account_id, now)

    monkeypatch.setattr(services, "_task_orders_read", database_gone_for_the_second)
    with pytest.raises(Exception, match="server closed"):
        execute_webhook_orders.run(str(event.id), ids, None, 3)

    assert len(ran_on) == 3 and all(name.startswith("orders_") for name in ran_on), ran_on
    statuses = dict(Order.objects.filter(webhook=event).values_list("account_id", "status"))
    assert statuses == {ids[0]: "filled", ids[1]: "queued", ids[2]: "filled"}
    assert [sorted(keys) for keys in deleted] == [sorted(f"qt:dispatch:{event.id}:{a}" for a in ids)]
    assert liveness.dispatch_lost(event.id, ids[1], 30) is True
    _age(event)
    assert _sweep() == 1
    assert [args for _, args in published] == [[str(event.id), ids[1]]]


def test_on_the_workers_order_threads_every_failed_account_of_a_chunk_is_told(
    transactional_db: None,
    worker_order_threads: handoff.LocalPool,
    make_strategy: Any,
    make_account: Any,
    publish_price: Any,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Two accounts of a chunk fail: the task raises the first's error and logs the other's
    (neither is silent), and both are left to the sweep."""
    from django.db import OperationalError

    from orders import services
    from orders.tasks import execute_webhook_orders

    accounts = [make_account(f"a{i}", balances={"USDT": "10000"}) for i in range(3)]
    publish_price("BINANCE:BTC/USDT", "50000")
    ids = [a.id for a in accounts]
    event = make_orders(make_strategy(accounts=accounts), accounts, [{"side": "BUY", "qty_per": 10}])
    liveness.mark_dispatched_many(event.id, ids)
    read = services._task_orders_read

    def database_gone(webhook_id: Any, account_id: int, now: Any) -> Any:
        if account_id != ids[0]:
            raise OperationalError(f"server closed the connection (account {account_id})")
        return read(webhook_id, account_id, now)

    monkeypatch.setattr(services, "_task_orders_read", database_gone)
    with caplog.at_level("ERROR", logger="quanttrade.orders"), pytest.raises(OperationalError) as raised:
        execute_webhook_orders.run(str(event.id), ids, None, 3)

    logged = [r for r in caplog.records if r.exc_info and isinstance(r.exc_info[1], OperationalError)]
    told = {str(raised.value), *(str(r.exc_info[1]) for r in logged if r.exc_info)}
    assert told == {f"server closed the connection (account {a})" for a in ids[1:]}
    assert [liveness.dispatch_lost(event.id, a, 30) for a in ids[1:]] == [True, True]


@pytest.mark.parametrize("on_order_threads", [False, True], ids=["task's thread", "worker's order threads"])
def test_a_chunk_whose_hand_off_fails_executes_those_accounts_itself(
    on_order_threads: bool,
    transactional_db: None,
    make_strategy: Any,
    make_account: Any,
    publish_price: Any,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The broker refuses the fan-out's hand-offs: the task keeps those accounts and executes
    them with its own (on the worker's order threads when it has them), and clears their
    records; nothing is left for the sweep."""
    from orders.tasks import execute_webhook_orders

    accounts = [make_account(f"a{i}", balances={"USDT": "10000"}) for i in range(4)]
    publish_price("BINANCE:BTC/USDT", "50000")
    ids = [a.id for a in accounts]
    event = make_orders(make_strategy(accounts=accounts), accounts, [{"side": "BUY", "qty_per": 10}])
    liveness.mark_dispatched_many(event.id, ids)

    def broker_down(*args: Any, **kwargs: Any) -> None:
        raise ConnectionError("Error 111 connecting to redis")

    monkeypatch.setattr(celery_app, "send_task", broker_down)
    from orders.exchanges.paper import PaperAdapter

    ran_on: list[str] = []
    place = PaperAdapter.place_order

    def placed(self: PaperAdapter, request: Any) -> Any:
        ran_on.append(threading.current_thread().name)
        return place(self, request)

    monkeypatch.setattr(PaperAdapter, "place_order", placed)
    with order_threads_of_the_worker() if on_order_threads else contextlib.nullcontext():
        execute_webhook_orders.run(str(event.id), ids, None, 1)  # one account a task: three hand-offs

    statuses = dict(Order.objects.filter(webhook=event).values_list("account_id", "status"))
    assert statuses == dict.fromkeys(ids, "filled")
    assert all(cache.get(f"qt:dispatch:{event.id}:{a}") is None for a in ids)
    assert len(ran_on) == 4
    assert all(name.startswith("orders_") for name in ran_on) == on_order_threads


def test_a_record_left_behind_in_a_cache_outage_is_cleared_once_the_cache_is_back(
    db: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A task ended while the cache was away: its dispatch record, naming this process, could
    not be deleted. Once the cache is back this process beats again, and the record would keep
    the sweep away from the pair's queued orders for hours: the next beat deletes it (not the
    record of a pair this process runs again by then)."""
    liveness.mark_started("w-outage", 1)
    liveness.mark_started("w-outage", 2)
    assert not liveness.dispatch_lost("w-outage", 1, 30)

    def cache_away(*args: Any, **kwargs: Any) -> None:
        raise ConnectionError("cache away")

    with monkeypatch.context() as patched:
        patched.setattr(cache, "delete_many", cache_away)
        liveness.clear_dispatch_many("w-outage", [1, 2])  # both tasks ended, the cache away
    liveness.mark_started("w-outage", 2)  # the second pair runs here again
    assert not liveness.dispatch_lost("w-outage", 1, 30)  # held, by its record, for hours

    liveness.beat()
    assert liveness.dispatch_lost("w-outage", 1, 30)  # the sweep sends it again
    assert not liveness.dispatch_lost("w-outage", 2, 30)
    liveness.clear_dispatch("w-outage", 2)
