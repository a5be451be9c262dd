"""Shared fixtures. Tests run on SQLite unless DATABASE_URL / REDIS_URL point at real servers."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from decimal import Decimal
from typing import Any

import pytest
from django.core.cache import cache

from strategies.models import Account, Strategy, StrategyAccount


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--kst-time",
        default=None,
        metavar="HH:MM",
        help="run the whole session with the clock moved to this time of day in Korea (KST), "
        "ticking on from there: e.g. 03:00 (F&O night session) or 14:00 (day session)",
    )


@pytest.fixture(autouse=True, scope="session")
def _session_kst_clock(request: pytest.FixtureRequest) -> Iterator[None]:
    """``--kst-time 03:00``: today's date at that Korean time for every test (the suite must
    pass at any hour; this is how to check it without waiting for the hour)."""
    at = request.config.getoption("--kst-time")
    if not at:
        yield
        return
    import datetime as dt

    import time_machine

    from orders.exchanges.kis.sessions import KST

    hour, minute = (int(part) for part in at.split(":"))
    start = dt.datetime.combine(dt.datetime.now(KST).date(), dt.time(hour, minute), KST)
    with time_machine.travel(start, tick=True):
        yield


@pytest.fixture
def kst_clock() -> Iterator[Callable[..., Any]]:
    """kst_clock(datetime) moves the process clock (datetime, time, the simulators and the
    adapters alike) to that moment, ticking on; call it again to move on."""
    import time_machine

    travellers: list[Any] = []

    def move(when: Any) -> None:
        if travellers:
            travellers.pop().stop()
        traveller = time_machine.travel(when, tick=True)
        traveller.start()
        travellers.append(traveller)

    yield move
    while travellers:
        travellers.pop().stop()


@pytest.fixture(autouse=True)
def _default_language() -> Iterator[None]:
    """Every test starts in the default language (Korean). A request in English leaves English
    active in its thread (LocaleMiddleware activates a request's language and never restores
    the previous one), so a later test in the same process that runs a management command or
    formats a message outside a request read it in English, depending on the test order."""
    from django.conf import settings
    from django.utils import translation

    translation.activate(settings.LANGUAGE_CODE)
    yield
    translation.deactivate()


@pytest.fixture(autouse=True)
def _no_gathered_refreshes() -> Iterator[None]:
    """A fill recorded without an order pool asks for its portfolio refresh through a worker
    process's gathered requests (orders.portfolio.services._refresh_gathered), sent by a timer a
    moment later: each test starts with none and leaves none, so one test's timer never sends
    its requests into the next test."""
    from orders.portfolio.services import refresh_requests_discard

    refresh_requests_discard()
    yield
    refresh_requests_discard()


@pytest.fixture(autouse=True)
def _notifications_written_at_once(settings: Any) -> Iterator[None]:
    """A notification is written to the outbox as its transaction commits (NOTIFY_GATHER_SECONDS
    = 0), as the tests that read the outbox right after expect; the tests of gathering set it
    (tests/notify). No gathered event outlives its test: one test's timer never writes into the
    next test."""
    from notify.events import notifications_discard

    settings.NOTIFY_GATHER_SECONDS = 0
    notifications_discard()
    yield
    notifications_discard()


@pytest.fixture(autouse=True)
def _clear_cache() -> Iterator[None]:
    """Every test starts with an empty cache and an empty price layer (in embedded mode the
    price store is a process-wide dict that would otherwise carry ticks between tests), and
    with no order slots read or announced by this process (orders.liveness)."""
    from live.store import live_store
    from orders.liveness import order_slots_forget

    _clear_django_cache()
    live_store().clear()
    order_slots_forget()
    yield
    _clear_django_cache()
    live_store().clear()
    order_slots_forget()


def _clear_django_cache() -> None:
    """cache.clear() on Redis is FLUSHDB, which would also wipe the Celery broker's queues and
    bindings when they share the database: delete only the cache's own keys there."""
    from django.conf import settings

    from orders.exchanges.brokerkit import buckets
    from webhooks.services import webhook_rate_limits_reset

    buckets.reset()
    webhook_rate_limits_reset()
    config = settings.CACHES["default"]
    if "redis" not in config["BACKEND"].lower():
        cache.clear()
        return
    client = cache._cache.get_client(write=True)  # type: ignore[attr-defined]
    keys = list(client.scan_iter(match=f"{config.get('KEY_PREFIX', '')}:*", count=1000))
    if keys:
        client.delete(*keys)


@pytest.fixture
def make_account(db: None) -> Callable[..., Account]:
    def make(
        name: str = "paper-1", exchange: str = "PAPER", balances: dict[str, Any] | None = None, **kw: Any
    ) -> Account:
        from orders.models import PaperBalance

        account = Account.objects.create(name=name, exchange=exchange, **kw)
        for asset, amount in (balances or {}).items():
            PaperBalance.objects.create(account=account, asset=asset, free=Decimal(str(amount)))
        return account

    return make


@pytest.fixture
def make_strategy(db: None, make_account: Callable[..., Account]) -> Callable[..., Strategy]:
    def make(
        group_name: str = "my_strategy",
        market_type: str = "SPOT",
        token: str = "test-token",
        accounts: list[Account] | None = None,
        **kw: Any,
    ) -> Strategy:
        strategy = Strategy.objects.create(group_name=group_name, market_type=market_type, token=token, **kw)
        if accounts is None:
            accounts = [make_account(name=f"{group_name}-paper")]
        for account in accounts:
            StrategyAccount.objects.create(strategy=strategy, account=account)
        return strategy

    return make


# --- execution: a real Celery worker, prices, waiting for orders ------------------------------


@pytest.fixture(scope="session")
def django_db_modify_db_settings(django_db_modify_db_settings_parallel_suffix: None) -> None:
    """SQLite tests use a temporary file, not shared-cache memory: worker threads then write
    through their own connections with normal locking (WAL + busy timeout), as in production."""
    import os
    import tempfile
    from pathlib import Path

    from django.conf import settings

    db = settings.DATABASES["default"]
    if db["ENGINE"].endswith("sqlite3"):
        # Always, also over the name pytest-django's parallel suffix made: it recognises only
        # Django's own SQLite engine, and for ours (quanttrade.embedded_sqlite3) it would prefix
        # the file's path with "test_". One file per process, so each xdist worker has its own.
        db.setdefault("TEST", {})["NAME"] = str(
            Path(tempfile.gettempdir()) / f"qt_test_{os.getpid()}.sqlite3"
        )


@pytest.fixture(scope="session")
def django_db_setup(django_db_setup: None, django_db_blocker: Any) -> Iterator[None]:
    """pytest-django's test database, and at the session's end a look at who still holds a
    connection to it before it is dropped (PostgreSQL). Django closes its own pool first, so
    what is left is a connection some thread took and never gave back: pytest-django's drop
    then fails with only "being accessed by other users". Reported here with the sessions'
    last statements and this process's threads, which say whose it is."""
    yield
    with django_db_blocker.unblock():
        report = _test_database_holders()
    if report:
        import warnings

        warnings.warn(pytest.PytestWarning(report), stacklevel=1)


def _test_database_holders(wait: float = 5.0) -> str:
    """Empty when nothing but this check is connected to the test database (PostgreSQL) within
    ``wait`` seconds (a killed process's backend takes a moment to go), else what is."""
    import sys
    import threading
    import time
    import traceback

    from django.db import connections

    connection = connections["default"]
    if connection.vendor != "postgresql":
        return ""
    name = connection.settings_dict["NAME"]
    connection.close()
    connection.close_pool()  # its idle connections; those checked out stay open
    deadline = time.monotonic() + wait
    with connection._nodb_cursor() as cursor:
        while True:
            cursor.execute(
                "SELECT pid, application_name, state, backend_start, left(query, 300) "
                "FROM pg_stat_activity WHERE datname = %s AND pid <> pg_backend_pid()",
                [name],
            )
            sessions = cursor.fetchall()
            if not sessions or time.monotonic() >= deadline:
                break
            time.sleep(0.1)
    if not sessions:
        return ""
    frames = sys._current_frames()
    threads = [
        f"thread {thread.name} (daemon={thread.daemon}):\n"
        + "".join(traceback.format_stack(frames[thread.ident], limit=6))
        for thread in threading.enumerate()
        if thread.ident in frames and thread is not threading.current_thread()
    ]
    head = f"{len(sessions)} other session(s) still on {name} at the session's end: {sessions}"
    return "\n".join([head, *threads])


@pytest.fixture(scope="session")
def _celery_worker_session(django_db_setup: None) -> Iterator[Any]:
    """One real Celery worker for the session (starting and stopping one costs seconds)."""
    from celery.contrib.testing.worker import start_worker
    from celery.signals import task_postrun
    from django.db import connections

    import notify.tasks  # noqa: F401 - registers the tasks before the worker starts
    import orders.tasks  # noqa: F401
    from quanttrade.celery import app

    app.conf.worker_hijack_root_logger = False
    # Tests warm venues explicitly (tests/venues/test_warmup.py); a background warm-up thread
    # touching the database as the session's worker starts would only race the fixtures.
    os.environ["QT_SKIP_VENUE_WARMUP"] = "1"
    if app.conf.broker_url.startswith("memory"):
        # The in-memory transport polls; the default 1 s would dominate every test.
        app.conf.broker_transport_options = {**app.conf.broker_transport_options, "polling_interval": 0.01}
    app.control.purge()

    def close_connections(sender: Any = None, **_: Any) -> None:
        # Worker threads must not keep connections to the test database open between tests. A
        # task applied eagerly (`.apply()`) runs in the test's own thread, inside the test's
        # transaction: its connection stays (as Celery's own Django fix-up does for eager tasks).
        if getattr(getattr(sender, "request", None), "is_eager", False):
            return
        connections.close_all()

    task_postrun.connect(close_connections, weak=False)
    global _session_worker_app
    try:
        with start_worker(
            app,
            pool="threads",
            concurrency=4,
            perform_ping_check=False,
            loglevel="WARNING",
            shutdown_timeout=30,
        ) as worker:
            _session_worker_app = app
            yield worker
    finally:
        _session_worker_app = None
        task_postrun.disconnect(close_connections)


# The session's worker, once a test in this process has started it; it keeps consuming the
# broker through the tests that follow, whether they asked for a worker or not.
_session_worker_app: Any = None


@pytest.hookimpl(wrapper=True)
def pytest_runtest_teardown(item: pytest.Item, nextitem: pytest.Item | None) -> Any:
    """Once the session's worker runs in this process, a test on a transactional database lets
    it finish and drop the work the test left (a retry due later, a re-dispatch, a notification
    flush), whether the test asked for the worker (`celery_worker`) or not, before the test's
    fixtures (the database flush) are torn down; otherwise the worker reads the tables during
    the flush (a deadlock on PostgreSQL, seen in CI) or acts in the next test."""
    if _session_worker_app is not None and _on_transactional_db(item):
        _worker_quiesce(_session_worker_app)
    return (yield)


def _on_transactional_db(item: pytest.Item) -> bool:
    """Whether the test runs on a transactional database (committed data, no wrapping
    transaction): it asks for ``transactional_db`` or is marked ``django_db(transaction=True)``."""
    marker = item.get_closest_marker("django_db")
    return "transactional_db" in getattr(item, "fixturenames", ()) or bool(
        marker and marker.kwargs.get("transaction")
    )


@pytest.fixture(autouse=True)
def _websocket_tests_close_connections(request: pytest.FixtureRequest) -> Iterator[None]:
    """channels' test communicator turns off what ``database_sync_to_async`` does after each
    call (``channels.testing.application`` patches ``channels.db.close_old_connections`` with a
    no-op while it sends and receives), for tests that run inside a transaction. On a
    transactional database nothing needs that, and with it a consumer's connection stays
    checked out of the pool by the event loop's executor thread: never given back (its socket
    closes only when the garbage collector finds it), so the pool shrinks and the test
    database could not be dropped at the session's end. Such tests close them as a server
    does."""
    if _on_transactional_db(request.node):
        from channels.testing import application
        from django.db import close_old_connections

        with pytest.MonkeyPatch.context() as patch:
            patch.setattr(application, "no_op", close_old_connections)
            yield
    else:
        yield


@pytest.fixture
def celery_worker(transactional_db: None, _celery_worker_session: Any) -> Any:
    """A real Celery worker (threads pool, 4 threads) consuming the configured broker: the
    in-memory one with no env, Redis when REDIS_URL is set. Tasks see committed data only,
    hence the transactional database. Messages left by earlier tests are purged first; what the
    test leaves is dropped after it (pytest_runtest_teardown above)."""
    from quanttrade.celery import app

    app.control.purge()
    return _celery_worker_session


def _worker_quiesce(app: Any, timeout: float = 20.0) -> None:
    """Before the test's database is flushed, let the session's worker finish what it is
    running and drop what the test left behind (a portfolio refresh after a fill, a notification
    flush, a retry due later): otherwise it runs during the flush (a deadlock on PostgreSQL)
    or in the next test. Messages are purged and scheduled or reserved tasks revoked in this
    in-process worker."""
    import time

    from celery.worker import state

    from orders.portfolio.services import refresh_requests_discard

    # The refreshes the test's fills asked for, still gathered: their timer must not send them
    # while the database is flushed (a worker taking one would read it mid-flush).
    refresh_requests_discard()
    deadline = time.monotonic() + timeout
    quiet_since: float | None = None
    while time.monotonic() < deadline:
        app.control.purge()
        for request in [*state.scheduled_requests, *state.reserved_requests]:
            if request not in state.active_requests:
                state.revoked.add(request.id)
        if state.active_requests:
            quiet_since = None
        elif quiet_since is None:
            quiet_since = time.monotonic()
        elif time.monotonic() - quiet_since > 0.2:
            return
        time.sleep(0.02)


def wait_for_orders(timeout: float = 30.0, settled: Any = None, **filters: Any) -> list[Any]:
    """Poll the DB until every Order matching ``filters`` has left queued/submitted (or reached
    one of ``settled`` statuses); returns them. Fails the test on timeout."""
    import time

    from orders.models import Order
    from quanttrade.vocabulary import OrderStatus

    pending = {OrderStatus.QUEUED, OrderStatus.SUBMITTED}
    deadline = time.monotonic() + timeout
    while True:
        orders = list(
            Order.objects.filter(**filters).select_related("account").order_by("account__name", "sequence")
        )
        if orders and all((o.status in settled) if settled else (o.status not in pending) for o in orders):
            return orders
        if time.monotonic() > deadline:
            pytest.fail(f"orders not settled after {timeout}s: {[(o.order_type, o.status) for o in orders]}")
        time.sleep(0.05)


@pytest.fixture
def wait_orders() -> Callable[..., list[Any]]:
    return wait_for_orders


def _clear_prices() -> None:
    from live.store import live_store

    live_store().clear()


@pytest.fixture
def no_prices() -> Iterator[None]:
    """The price layer starts (and ends) empty."""
    _clear_prices()
    yield
    _clear_prices()


@pytest.fixture
def publish_price(no_prices: None) -> Callable[[str, Any], Any]:
    """publish_price("BINANCE:BTC/USDT", "100000") stores a tick in the one price layer
    (which starts empty for the test)."""
    from prices.services import price_publish

    def publish(instrument: str, price: Any) -> Any:
        return price_publish(instrument, Decimal(str(price)))

    return publish
