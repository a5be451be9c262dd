"""Embedded mode's in-process hand-off (orders/handoff.py) and the worker's one-UPDATE claim.

The pool replaces the in-memory broker's hop for order execution: these tests run it with no
Celery worker at all, and a broker that fails every publish, so an order that reaches the venue
can only have gone through the pool."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from typing import Any

import pytest
from django.test import Client

from orders import exchanges, handoff, liveness
from orders import services as order_services
from orders.models import Order, PaperOrder
from orders.portfolio.services import portfolio_cached
from orders.risk import order_refusal
from orders.services import order_claim, orders_dispatch, orders_sweep
from strategies.models import Strategy
from tests.execution.test_execution import flaky_order, make_orders, statuses
from tests.execution.test_pool_turns import until

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def pool(monkeypatch: pytest.MonkeyPatch) -> Iterator[handoff.LocalPool]:
    def no_broker(*args: Any, **kwargs: Any) -> None:
        raise AssertionError("an execution went to the broker instead of the pool")

    monkeypatch.setattr(order_services.celery_app, "send_task", no_broker)
    local = handoff.LocalPool(4)
    handoff.install(local)
    yield local
    handoff.uninstall(local)
    local.shutdown(wait=True)


def _webhook(group_name: str = "my_strategy") -> dict[str, Any]:
    body = {
        "group_name": group_name,
        "token": "test-token",
        "symbol": "BTC/USDT",
        "currency": "USDT",
        "order_type": "MARKET",
        "side": "buy",
        "qty_per": 10,
    }
    response = Client().post("/api/webhook", data=json.dumps(body), content_type="application/json")
    assert response.status_code == 202, response.content
    return response.json()


def test_a_webhook_to_three_accounts_is_executed_by_the_pool_without_a_broker(
    pool: handoff.LocalPool, make_strategy: Any, make_account: Any, publish_price: Any, wait_orders: Any
) -> None:
    accounts = [make_account(f"acct-{i}", balances={"USDT": "10000"}) for i in range(3)]
    make_strategy(accounts=accounts)
    publish_price("BINANCE:BTC/USDT", "50000")
    webhook_id = _webhook()["webhook_id"]
    orders = wait_orders(webhook_id=webhook_id)
    assert [(o.account.name, o.status) for o in orders] == [
        ("acct-0", "filled"),
        ("acct-1", "filled"),
        ("acct-2", "filled"),
    ]
    for order in orders:
        trail = order.trail
        assert trail["dispatched"] <= trail["claimed"] <= trail["sent"] <= trail["answered"], trail
        assert order.attempts == 1
    assert PaperOrder.objects.count() == 3


def test_a_fill_asks_the_pool_for_its_portfolio_refresh_behind_the_queued_orders(
    pool: handoff.LocalPool, make_strategy: Any, make_account: Any, publish_price: Any, wait_orders: Any
) -> None:
    account = make_account("acct", balances={"USDT": "10000"})
    make_strategy(accounts=[account])
    publish_price("BINANCE:BTC/USDT", "50000")
    [order] = wait_orders(webhook_id=_webhook()["webhook_id"])
    assert order.status == "filled"
    deadline = time.monotonic() + 10
    portfolio = portfolio_cached(account.pk)
    while portfolio is None or not any(b.asset == "BTC" for b in portfolio.balances):
        assert time.monotonic() < deadline, "the fill's portfolio refresh never ran"
        time.sleep(0.05)
        portfolio = portfolio_cached(account.pk)
    [btc] = [b for b in portfolio.balances if b.asset == "BTC"]
    assert btc.total == order.filled_qty


def test_a_fills_portfolio_refresh_yields_while_orders_wait_in_the_queue(
    pool: handoff.LocalPool, make_strategy: Any, make_account: Any, publish_price: Any, wait_orders: Any
) -> None:
    account = make_account("acct", balances={"USDT": "10000"})
    other = make_account("other", balances={"USDT": "10000"})
    make_strategy(accounts=[account])
    waiting = make_orders(make_strategy("other", accounts=[other]), [other], [{"side": "BUY", "qty_per": 10}])
    publish_price("BINANCE:BTC/USDT", "50000")
    [order] = wait_orders(webhook_id=_webhook()["webhook_id"])
    assert order.status == "filled"
    time.sleep(1.5)
    assert portfolio_cached(account.pk) is None  # put off: an order is still queued
    Order.objects.filter(webhook=waiting).update(status="cancelled")
    deadline = time.monotonic() + 10
    while portfolio_cached(account.pk) is None:
        assert time.monotonic() < deadline, "the refresh never ran once the queue was empty"
        time.sleep(0.05)


def test_a_retry_the_venue_asks_for_comes_back_on_the_pools_timer(
    pool: handoff.LocalPool,
    make_strategy: Any,
    make_account: Any,
    publish_price: Any,
    wait_orders: Any,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    account, event = flaky_order(make_strategy, make_account, publish_price, monkeypatch)
    orders_dispatch(event.id, [account.pk])
    [order] = wait_orders(webhook=event, settled={"filled", "failed", "rejected"})
    assert (order.status, order.attempts) == ("filled", 2)
    assert PaperOrder.objects.count() == 1


def test_a_hand_off_to_a_closed_pool_leaves_the_orders_to_the_sweep(
    make_strategy: Any, make_account: Any, publish_price: Any, wait_orders: Any
) -> None:
    account = make_account("a1", balances={"USDT": "10000"})
    event = make_orders(make_strategy(accounts=[account]), [account], [{"side": "BUY", "qty_per": 10}])
    publish_price("BINANCE:BTC/USDT", "50000")
    closed = handoff.LocalPool(1)
    closed.shutdown()
    handoff.install(closed)
    try:
        orders_dispatch(event.id, [account.pk])  # never raises: logged as a failed hand-off
        assert statuses(event) == ["queued"]
        # No record of a live hand-off is left: the sweep resends it once the order is stale.
        assert liveness.dispatch_lost(event.id, account.pk, 0)
    finally:
        handoff.uninstall(closed)
    live = handoff.LocalPool(1)
    handoff.install(live)
    try:
        Order.objects.filter(webhook=event).update(updated_at=Order.objects.get(webhook=event).created_at)
        assert orders_sweep(0)["redispatched"] == 1
        [order] = wait_orders(webhook=event)
        assert order.status == "filled"
    finally:
        handoff.uninstall(live)
        live.shutdown()


def test_shutdown_drops_a_retry_not_yet_due() -> None:
    ran: list[int] = []
    local = handoff.LocalPool(1)
    local.submit(ran.append, 1, delay=0.2)
    local.shutdown()
    time.sleep(0.4)
    assert ran == []
    with pytest.raises(handoff.PoolClosedError):
        local.submit(ran.append, 2)


def _blocked_pool() -> tuple[handoff.LocalPool, Any, list[str]]:
    """A one-thread pool whose thread is busy until the returned event is set."""
    import threading

    local = handoff.LocalPool(1)
    release = threading.Event()
    ran: list[str] = []
    local.submit(release.wait, 10)
    return local, release, ran


def _wait_for(condition: Any, timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "the pool did not get there"
        time.sleep(0.01)


def test_background_work_runs_on_its_own_threads_a_few_at_a_time() -> None:
    """A fan-out's fills ask for one portfolio refresh each: they must not take the order
    threads (the next webhook's orders wait for none of them), nor run eight at a time."""
    import threading

    local, release, ran = _blocked_pool()  # the only order thread is busy
    refresh_release = threading.Event()
    try:
        for _ in range(handoff.BACKGROUND_THREADS):
            local.submit(refresh_release.wait, 10, lane=handoff.BACKGROUND)
        local.submit(ran.append, "refresh-2", lane=handoff.BACKGROUND)
        local.submit(ran.append, "order")
        time.sleep(0.2)
        assert ran == []  # the order waits for its thread, the last refresh for a free one
        release.set()
        _wait_for(lambda: ran == ["order"])
        refresh_release.set()
        _wait_for(lambda: ran == ["order", "refresh-2"])
    finally:
        release.set()
        refresh_release.set()
        local.shutdown(wait=True)


def test_work_asked_for_later_runs_when_due_in_its_lane() -> None:
    local, release, ran = _blocked_pool()
    try:
        local.submit(ran.append, "refresh-later", delay=0.1, lane=handoff.BACKGROUND)
        local.submit(ran.append, "retry-later", delay=0.15)
        _wait_for(lambda: ran == ["refresh-later"])  # its own lane: the order thread is busy
        release.set()
        _wait_for(lambda: ran == ["refresh-later", "retry-later"])
    finally:
        local.shutdown(wait=True)


def test_the_pool_says_whether_orders_wait() -> None:
    local, release, ran = _blocked_pool()
    try:
        assert local.orders_waiting()  # the blocking call is an order execution
        release.set()
        deadline = time.monotonic() + 5
        while local.orders_waiting():
            assert time.monotonic() < deadline
            time.sleep(0.01)
        local.submit(ran.append, "later", delay=5)
        local.submit(ran.append, "refresh", lane=handoff.BACKGROUND)
        assert not local.orders_waiting()  # neither a retry not yet due nor background work
    finally:
        local.shutdown(wait=True)


def test_shutdown_finishes_the_queued_orders_and_drops_background_work() -> None:
    import threading

    local, release, ran = _blocked_pool()
    for _ in range(handoff.BACKGROUND_THREADS):  # the background threads are busy too
        local.submit(release.wait, 10, lane=handoff.BACKGROUND)
    local.submit(ran.append, "refresh", lane=handoff.BACKGROUND)
    local.submit(ran.append, "order")
    stopping = threading.Thread(target=local.shutdown, kwargs={"wait": True})
    stopping.start()
    deadline = time.monotonic() + 5
    while True:  # the stop has begun (new work is refused) while the thread is still busy
        try:
            local.submit(ran.append, "probe", delay=60)
        except handoff.PoolClosedError:
            break
        assert time.monotonic() < deadline
        time.sleep(0.01)
    release.set()
    stopping.join(5)
    assert not stopping.is_alive() and ran == ["order"]
    with pytest.raises(handoff.PoolClosedError):
        local.submit(ran.append, "too late")


def test_shutdown_without_waiting_abandons_what_is_queued() -> None:
    local, release, ran = _blocked_pool()
    for _ in range(handoff.BACKGROUND_THREADS):  # the background threads are busy too
        local.submit(release.wait, 10, lane=handoff.BACKGROUND)
    local.submit(ran.append, "queued")
    local.submit(ran.append, "queued too", lane=handoff.BACKGROUND)
    local.shutdown(wait=False)
    release.set()
    time.sleep(0.2)
    assert ran == [] and not local.orders_waiting()


# --- the claim ------------------------------------------------------------------------------


def test_a_claim_from_the_tasks_copy_is_one_update_and_matches_the_row(
    make_strategy: Any, make_account: Any, django_assert_num_queries: Any
) -> None:
    account = make_account("a1")
    event = make_orders(make_strategy(accounts=[account]), [account], [{"side": "BUY", "qty_per": 10}])
    loaded = Order.objects.select_related("account", "strategy", "approved_by").get(webhook=event)
    with django_assert_num_queries(1):
        claimed = order_claim(loaded.pk, loaded=loaded)
    assert claimed is loaded
    row = Order.objects.get(pk=loaded.pk)
    assert (claimed.status, claimed.attempts) == (row.status, row.attempts) == ("submitted", 1)
    assert claimed.submitted_at == row.submitted_at
    assert order_claim(loaded.pk, loaded=loaded) is None  # taken: never twice


def test_a_claim_from_a_copy_another_attempt_has_changed_reads_the_row_again(
    make_strategy: Any, make_account: Any
) -> None:
    account = make_account("a1")
    event = make_orders(make_strategy(accounts=[account]), [account], [{"side": "BUY", "qty_per": 10}])
    loaded = Order.objects.select_related("account", "strategy", "approved_by").get(webhook=event)
    # Meanwhile another worker claimed it, found its request may have left, and put it back.
    Order.objects.filter(pk=loaded.pk).update(attempts=1, uncertain_attempt=1, message="timeout")
    claimed = order_claim(loaded.pk, loaded=loaded)
    assert claimed is not None and claimed is not loaded
    # The attempt that follows knows it must look the order up before sending anything.
    assert (claimed.attempts, claimed.uncertain_attempt) == (2, 1)


def test_pause_flags_read_with_the_order_a_while_ago_are_read_again(
    make_strategy: Any, make_account: Any
) -> None:
    account = make_account("a1")
    strategy = make_strategy(accounts=[account])
    event = make_orders(strategy, [account], [{"side": "BUY", "qty_per": 10}])
    loaded = Order.objects.select_related("account", "strategy", "approved_by").get(webhook=event)
    loaded.loaded_at = time.monotonic() - 1.0  # read before an earlier order's venue call
    Strategy.objects.get(pk=strategy.pk).pause("by hand")
    adapter = exchanges.adapter_for(account)
    refusal = order_refusal(loaded, adapter)
    assert refusal is not None and refusal.code == "strategy_paused"


def test_the_wait_for_earlier_orders_is_skipped_only_when_the_account_has_none(
    make_strategy: Any, make_account: Any, publish_price: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    account = make_account("a1", balances={"USDT": "10000"})
    strategy = make_strategy(accounts=[account])
    publish_price("BINANCE:BTC/USDT", "50000")
    asked: list[Any] = []
    precise = order_services._earlier_pending

    def earlier_pending(order: Order) -> bool:
        asked.append(order.pk)
        return precise(order)

    monkeypatch.setattr(order_services, "_earlier_pending", earlier_pending)
    lone = make_orders(strategy, [account], [{"side": "BUY", "qty_per": 10}])
    order_services.account_orders_execute(lone.id, account.pk)
    assert statuses(lone) == ["filled"] and asked == []  # nothing else of the account: no query
    first = make_orders(strategy, [account], [{"side": "BUY", "qty_per": 10}])
    close = make_orders(strategy, [account], [{"side": "SELL", "qty_per": -100}])
    # The open before the close is still queued: the close is checked, and waits for it.
    monkeypatch.setattr(order_services, "EARLIER_WAIT_SECONDS", 0.1)
    with pytest.raises(order_services.ExecutionRetry):
        order_services.account_orders_execute(close.id, account.pk)
    assert asked and statuses(close) == ["queued"]
    order_services.account_orders_execute(first.id, account.pk)
    order_services.account_orders_execute(close.id, account.pk)
    assert statuses(first) == statuses(close) == ["filled"]


def test_a_fan_out_records_every_accounts_dispatch_in_one_write(
    make_strategy: Any, make_account: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    accounts = [make_account(f"acct-{i}") for i in range(3)]
    event = make_orders(make_strategy(accounts=accounts), accounts, [{"side": "BUY", "qty_per": 10}])
    published: list[Any] = []
    monkeypatch.setattr(order_services.celery_app, "send_task", lambda *a, **k: published.append(a))
    orders_dispatch(event.id, [a.pk for a in accounts])
    assert len(published) == 1  # one fan-out message
    # Each account's task is known to be on its way: none is taken for lost by the sweep.
    assert [liveness.dispatch_lost(event.id, a.pk, 30) for a in accounts] == [False, False, False]


def test_a_dispatch_names_its_arguments_briefly_for_logs_and_monitors(
    make_strategy: Any, make_account: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The text Celery shows for a task's arguments (worker log, monitors) is written by the
    dispatch: the webhook and the account as they are; a fan-out's long account list cut."""
    account = make_account("a1")
    event = make_orders(make_strategy(accounts=[account]), [account], [{"side": "BUY", "qty_per": 10}])
    published: list[dict[str, Any]] = []
    monkeypatch.setattr(
        order_services.celery_app, "send_task", lambda name, **options: published.append(options)
    )
    orders_dispatch(event.id, [account.pk])
    orders_dispatch(event.id, list(range(1, 1001)))
    single, fan_out = published
    assert single["argsrepr"] == repr((str(event.id), account.pk)) and single["args"] == [
        str(event.id),
        account.pk,
    ]
    assert fan_out["args"][1] == list(range(1, 1001))
    assert len(fan_out["argsrepr"]) == order_services.REPR_MAX and fan_out["argsrepr"].endswith("…")
    assert fan_out["argsrepr"].startswith(f"('{event.id}', [1, 2, 3")
    assert fan_out["kwargsrepr"] == repr(fan_out["kwargs"])
    # The first task sizes the fan-out's chunks from the workers' slots, not the request.
    assert "chunk" not in fan_out["kwargs"]


def test_the_worker_reaches_the_venue_with_one_statement_on_postgresql_two_on_sqlite(
    make_strategy: Any, make_account: Any, publish_price: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Read the orders (with their account, strategy and the earlier-orders flag), claim one:
    nothing else stands between the task and the order request when no risk limit is set. On
    PostgreSQL the read claims the first order itself (a WITH ... UPDATE before the SELECT)."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from orders.exchanges.paper import PaperAdapter

    account = make_account("a1", balances={"USDT": "10000"})
    event = make_orders(make_strategy(accounts=[account]), [account], [{"side": "BUY", "qty_per": 10}])
    publish_price("BINANCE:BTC/USDT", "50000")
    before_request: list[list[str]] = []
    place = PaperAdapter.place_order

    def counted(self: PaperAdapter, request: Any) -> Any:
        before_request.append([q["sql"].split(" ", 1)[0] for q in queries.captured_queries])
        return place(self, request)

    monkeypatch.setattr(PaperAdapter, "place_order", counted)
    with CaptureQueriesContext(connection) as queries:
        order_services.account_orders_execute(event.id, account.pk)
    assert statuses(event) == ["filled"]
    assert before_request == ([["WITH"]] if connection.vendor == "postgresql" else [["SELECT", "UPDATE"]])
    assert Order.objects.get(webhook=event).attempts == 1


def test_a_pool_thread_keeps_its_connection_while_it_runs_and_a_sqlite_one_while_it_sleeps() -> None:
    """Opening a SQLite connection costs ~1.2 ms on every order's way to the venue: a pool
    thread keeps a usable one. A PostgreSQL connection stays while the thread runs executions
    back to back (one taken from the pool for every execution made each order dearer, round 23)
    and goes back to the pool when the thread goes to sleep (kept, idle threads would hold the
    web requests' connections)."""
    import threading

    from django.db import connection

    local = handoff.LocalPool(1)
    seen: list[Any] = []
    go, done, asleep_after = threading.Event(), threading.Event(), threading.Event()

    def execution() -> None:
        go.wait(10)  # the next two are queued behind it: they run back to back
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
        seen.append(connection.connection)

    def after() -> None:
        seen.append(connection.connection)
        done.set()

    def later() -> None:
        seen.append(connection.connection)
        asleep_after.set()

    try:
        local.submit(execution)
        local.submit(execution)
        local.submit(after)
        go.set()
        assert done.wait(10)
        assert until(lambda: len(local._sleepers) == local.threads)
        local.submit(later)
        assert asleep_after.wait(10)
    finally:
        local.shutdown(wait=True)
    first, second, between, after_sleep = seen
    assert first is not None and first is second is between
    if connection.vendor == "sqlite":
        assert after_sleep is first
    else:
        assert after_sleep is None


def test_a_pool_thread_drops_a_sqlite_connection_that_broke() -> None:
    import threading

    from django.db import connection

    local = handoff.LocalPool(1)
    seen: list[Any] = []
    done = threading.Event()

    def breaks() -> None:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
        seen.append(connection.connection)
        connection.errors_occurred = True
        connection.connection.close()  # what a failed disk or a killed handle leaves behind

    def after() -> None:
        seen.append(connection.connection)
        done.set()

    try:
        local.submit(breaks)
        local.submit(after)
        assert done.wait(10)
    finally:
        local.shutdown(wait=True)
    assert seen[0] is not None and seen[1] is None
