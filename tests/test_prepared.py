"""quanttrade/prepared.py: a SELECT compiled once gives exactly what the queryset gives.

Pinned on the query it serves (the worker's read of a task's orders, orders/services.py), on
the test database the suite runs on (SQLite locally, PostgreSQL in CI)."""

from __future__ import annotations

import re
import threading
import time
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any
from uuid import uuid4

import pytest
from django.db.models import F
from django.test.utils import CaptureQueriesContext

from orders import services as order_services
from orders.models import Order
from quanttrade.prepared import PreparedQueryError, PreparedSelect, PreparedUpdate
from strategies.models import Account
from tests.execution.test_execution import make_orders

pytestmark = pytest.mark.django_db(transaction=True)


def _values(obj: Any) -> dict[str, Any]:
    return {f.attname: getattr(obj, f.attname) for f in obj._meta.concrete_fields}


def _same(prepared: list[Order], plain: list[Order]) -> None:
    assert [o.pk for o in prepared] == [o.pk for o in plain]
    for a, b in zip(prepared, plain, strict=True):
        assert _values(a) == _values(b)
        assert _values(a.account) == _values(b.account)
        assert _values(a.strategy) == _values(b.strategy)
        assert a.maybe_after == b.maybe_after
        assert a._state.db == b._state.db and not a._state.adding


def test_the_tasks_orders_read_prepared_equal_the_querysets(
    make_strategy: Any, make_account: Any, django_assert_num_queries: Any
) -> None:
    a1, a2 = make_account("a1"), make_account("a2")
    strategy = make_strategy(accounts=[a1, a2])
    specs = [
        {"side": "BUY", "qty_per": 10},
        {"side": "SELL", "qty_per": -50, "order_type": "LIMIT", "price": "51000.5"},
    ]
    first = make_orders(strategy, [a1, a2], specs)
    second = make_orders(strategy, [a1, a2], specs)  # a1's earlier orders are still queued
    Order.objects.filter(webhook=second, account=a2, sequence=0).update(status="filled")
    for event in (first, second):
        for account in (a1, a2):
            with django_assert_num_queries(1):
                prepared = order_services._TASK_ORDERS.fetch(webhook_id=event.id, account_id=account.pk)
                # the related rows came with it, as select_related brings them
                [(o.account.name, o.strategy.group_name) for o in prepared]
            # The worker never uses the strategy's webhook token: it is neither read nor
            # decrypted (a Fernet decryption, ~0.2 ms of an order's way to its venue).
            assert all(o.strategy.get_deferred_fields() == {"token"} for o in prepared)
            _same(prepared, list(order_services._task_orders(event.id, account.pk)))
    by_sequence = order_services._TASK_ORDERS.fetch(webhook_id=second.id, account_id=a1.pk)
    assert [o.sequence for o in by_sequence] == [0, 1]
    assert [o.maybe_after for o in by_sequence] == [True, True]
    assert [
        o.maybe_after for o in order_services._TASK_ORDERS.fetch(webhook_id=first.id, account_id=a1.pk)
    ] == [
        False,
        True,  # its own webhook's first order is earlier, still queued
    ]
    # The secrets are decrypted as the ORM decrypts them; an unknown pair reads nothing.
    assert prepared[0].account.api_secret == Account.objects.get(pk=a2.pk).api_secret
    assert order_services._TASK_ORDERS.fetch(webhook_id=uuid4(), account_id=a1.pk) == []


def test_a_prepared_read_runs_on_the_calling_threads_connection(
    make_strategy: Any, make_account: Any
) -> None:
    account = make_account("a1")
    event = make_orders(make_strategy(accounts=[account]), [account], [{"side": "BUY", "qty_per": 10}])
    order_services._TASK_ORDERS.fetch(webhook_id=event.id, account_id=account.pk)  # compiled here
    found: list[Any] = []

    def other() -> None:
        from django.db import connection

        try:
            found.extend(order_services._TASK_ORDERS.fetch(webhook_id=event.id, account_id=account.pk))
        finally:
            connection.close()

    thread = threading.Thread(target=other)
    thread.start()
    thread.join()
    assert [o.webhook_id for o in found] == [event.id]


def test_a_query_whose_sql_changes_with_an_argument_is_refused(make_account: Any) -> None:
    make_account("a1")
    name = Account._meta.get_field("name")
    unused = PreparedSelect(lambda name: Account.objects.all(), {"name": name})
    with pytest.raises(PreparedQueryError, match="not a parameter"):
        unused.fetch(name="a1")
    shape = PreparedSelect(
        lambda name: (
            Account.objects.filter(name=name) if "-0-" in name else Account.objects.filter(name__gt=name)
        ),
        {"name": name},
    )
    with pytest.raises(PreparedQueryError, match="SQL changes"):
        shape.fetch(name="a1")
    fine = PreparedSelect(lambda name: Account.objects.filter(name=name), {"name": name})
    assert [a.name for a in fine.fetch(name="a1")] == ["a1"]
    with pytest.raises(TypeError):
        fine.fetch(title="a1")


def _row(order: Order) -> dict[str, Any]:
    values = _values(Order.objects.get(pk=order.pk))
    for name in ("id", "client_order_id", "sequence", "batch_index", "created_at"):
        values.pop(name)
    return values


def test_a_prepared_update_writes_what_the_orms_update_writes(make_strategy: Any, make_account: Any) -> None:
    account = make_account("a1")
    event = make_orders(make_strategy(accounts=[account]), [account], [{"side": "BUY", "qty_per": 10}] * 2)
    by_orm, prepared = Order.objects.filter(webhook=event).order_by("sequence")
    when = datetime(2026, 12, 1, 4, 5, 6, 789012, tzinfo=UTC)
    fields: dict[str, Any] = {
        "status": "filled",
        "submitted_at": when,
        "updated_at": when,
        "attempts": 3,
        "quantity": Decimal("0.15168982"),
        "filled_qty": Decimal("0.15168982"),
        "avg_price": Decimal("65924.5"),
        "fee": None,
        "message": "체결 — filled",
        "exchange_order_id": "x-1",
        "trail": {"received": {"wall": "2026-12-01T04:05:06Z", "ms": 0.0}, "claimed": {"ms": 1.25}},
        "cancelled_orders": 2,
    }
    assert Order.objects.filter(pk=by_orm.pk, status__in=["queued", "submitted"]).update(**fields) == 1
    update: PreparedUpdate[Order] = PreparedUpdate(Order, where=("pk", "status__in"))
    assert update.run(fields, pk=prepared.pk, status__in=("queued", "submitted")) == 1
    assert _row(prepared) == _row(by_orm)
    assert _row(prepared)["avg_price"] == Decimal("65924.5") and _row(prepared)["fee"] is None
    # The conditions hold: a status outside the tuple, or another row's key, updates nothing.
    assert update.run({"status": "open"}, pk=prepared.pk, status__in=("queued",)) == 0
    assert update.run({"status": "open"}, pk=uuid4(), status__in=("filled",)) == 0
    assert Order.objects.get(pk=prepared.pk).status == "filled"
    # A string key as the API passes it matches like the UUID.
    assert update.run({"message": "again"}, pk=str(prepared.pk), status__in=("filled", "open", "x")) == 1
    assert Order.objects.get(pk=prepared.pk).message == "again"


def test_the_claim_is_taken_once(make_strategy: Any, make_account: Any) -> None:
    """The claim's guard (status and the attempts read) lets exactly one of two claims in."""
    account = make_account("a1")
    event = make_orders(make_strategy(accounts=[account]), [account], [{"side": "BUY", "qty_per": 10}])
    loaded = order_services._TASK_ORDERS.fetch(webhook_id=event.id, account_id=account.pk)
    again = order_services._TASK_ORDERS.fetch(webhook_id=event.id, account_id=account.pk)
    claimed = order_services.order_claim(loaded[0].pk, loaded=loaded[0])
    assert claimed is not None and claimed.status == "submitted" and claimed.attempts == 1
    assert order_services.order_claim(again[0].pk, loaded=again[0]) is None
    row = Order.objects.get(pk=loaded[0].pk)
    assert (row.status, row.attempts, row.submitted_at) == ("submitted", 1, claimed.submitted_at)


def _claiming_read(event: Any, account: Any, now: datetime) -> list[Order]:
    from django.db import connection

    if connection.vendor != "postgresql":
        pytest.skip("the read that claims is PostgreSQL's (a data-modifying WITH); CI runs the suite on it")
    return order_services._TASK_ORDERS_CLAIMING.fetch(webhook_id=event.id, account_id=account.pk, now=now)


def test_on_postgresql_the_tasks_read_claims_its_first_order_as_the_claim_would(
    make_strategy: Any, make_account: Any, django_assert_num_queries: Any
) -> None:
    """The read that claims gives the rows the plain read gives (as they were before the
    claim), flags the first one claimed, and leaves that row in the database as ``order_claim``
    leaves a claimed one: `submitted`, attempts + 1, submitted_at and updated_at = now. The
    batch's second order is not claimed (the first, created before it, is pending now)."""
    a1, a2 = make_account("a1"), make_account("a2")
    strategy = make_strategy(accounts=[a1, a2])
    specs = [{"side": "BUY", "qty_per": 10}, {"side": "SELL", "qty_per": -50}]
    event = make_orders(strategy, [a1, a2], specs)
    plain = list(order_services._task_orders(event.id, a1.pk))
    now = datetime(2026, 12, 2, 18, 30, 5, 123456, tzinfo=UTC)
    with django_assert_num_queries(1):
        read = _claiming_read(event, a1, now)
    _same(read, plain)
    assert [o.claimed_by_read for o in read] == [True, False]
    first, second = (Order.objects.get(pk=o.pk) for o in read)
    assert (first.status, first.attempts, first.submitted_at, first.updated_at) == ("submitted", 1, now, now)
    assert (second.status, second.attempts, second.submitted_at) == ("queued", 0, None)
    assert [o.status for o in Order.objects.filter(account=a2)] == ["queued", "queued"]  # another pair
    # The task completes the claimed row in memory; it then equals the database's row.
    claimed = order_services.order_claim(read[0].pk, loaded=read[0], claimed_at=now)
    assert claimed is not None and _values(claimed) == _values(first)
    # Read again: the claimed order is no longer the pair's; the second is, and is not claimed.
    again = _claiming_read(event, a1, now)
    assert [(o.pk, o.claimed_by_read) for o in again] == [(read[1].pk, False)]


def test_on_postgresql_the_read_claims_nothing_while_an_earlier_order_of_the_pair_is_in_flight(
    make_strategy: Any, make_account: Any
) -> None:
    """A second run of a pair (dispatched twice) while the first executes the batch's first
    order: its read must not claim the batch's next one, which it would then hold without
    running it (``account_orders_execute`` stops such a run: ``_earlier_in_flight``)."""
    account = make_account("a1")
    event = make_orders(
        make_strategy(accounts=[account]),
        [account],
        [{"side": "BUY", "qty_per": 10}, {"side": "BUY", "qty_per": 5}],
    )
    first, second = Order.objects.filter(webhook=event).order_by("sequence")
    Order.objects.filter(pk=first.pk).update(status="submitted", attempts=1)  # the first run's
    Order.objects.filter(webhook=event).update(created_at=first.created_at)  # one insert: one time
    now = datetime(2026, 12, 2, 18, 30, 5, tzinfo=UTC)
    (row,) = _claiming_read(event, account, now)
    assert (row.pk, row.claimed_by_read) == (second.pk, False)
    assert Order.objects.get(pk=second.pk).status == "queued"


def test_on_postgresql_the_read_claims_nothing_when_an_earlier_order_may_go_first(
    make_strategy: Any, make_account: Any
) -> None:
    """An earlier order of the account (another webhook) still pending: the read claims nothing
    (the task then waits for it as before, ``_wait_for_earlier``); once it is out, the read
    claims. Only a `queued` order is ever claimed, once."""
    account = make_account("a1")
    strategy = make_strategy(accounts=[account])
    earlier = make_orders(strategy, [account], [{"side": "BUY", "qty_per": 10}])
    later = make_orders(strategy, [account], [{"side": "SELL", "qty_per": -100}])
    now = datetime(2026, 12, 2, 18, 30, 5, tzinfo=UTC)
    (row,) = _claiming_read(later, account, now)
    assert (row.claimed_by_read, row.maybe_after) == (False, True)
    assert Order.objects.get(pk=row.pk).status == "queued"
    Order.objects.filter(webhook=earlier).update(status="filled")
    (row,) = _claiming_read(later, account, now)
    assert row.claimed_by_read is True and Order.objects.get(pk=row.pk).status == "submitted"
    assert _claiming_read(later, account, now) == []  # nothing queued left: nothing claimed twice
    Order.objects.filter(pk=row.pk).update(status="cancelled")
    assert _claiming_read(later, account, now) == []


def test_on_postgresql_two_reads_racing_for_one_order_claim_it_once(
    make_strategy: Any, make_account: Any
) -> None:
    """Two tasks of one pair (a re-dispatch) read at the same moment from two connections:
    one read claims the order, the other sees it `queued` but not claimed by it, and its claim
    (the guarded UPDATE) then fails."""
    from django.db import connection, connections

    account = make_account("a1")
    event = make_orders(make_strategy(accounts=[account]), [account], [{"side": "BUY", "qty_per": 10}])
    if connection.vendor != "postgresql":
        pytest.skip("the read that claims is PostgreSQL's")
    now = datetime(2026, 12, 2, 18, 30, 5, tzinfo=UTC)
    barrier = threading.Barrier(2)
    reads: list[list[Order]] = []

    def read() -> None:
        try:
            barrier.wait()
            reads.append(
                order_services._TASK_ORDERS_CLAIMING.fetch(
                    webhook_id=event.id, account_id=account.pk, now=now
                )
            )
        finally:
            connections.close_all()

    threads = [threading.Thread(target=read) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    flags = sorted(row.claimed_by_read for rows in reads for row in rows)
    assert len(reads) == 2 and flags in ([False, True], [True])  # the loser may read after the claim
    losers = [row for rows in reads for row in rows if not row.claimed_by_read]
    for row in losers:
        assert order_services.order_claim(row.pk, loaded=row) is None
    assert Order.objects.get(webhook=event).attempts == 1


def test_on_postgresql_the_read_claims_nothing_when_the_order_changed_under_it(
    make_strategy: Any, make_account: Any
) -> None:
    """Another attempt touches the order (attempts + 1, still `queued`) while the read waits for
    its row lock: the read's snapshot shows the order as it was, so it must not claim it (its
    copy would not be the row); the task's claim then reads the order again, as
    ``order_claim`` does for a row another attempt touched."""
    from django.db import connection, connections

    account = make_account("a1")
    event = make_orders(make_strategy(accounts=[account]), [account], [{"side": "BUY", "qty_per": 10}])
    if connection.vendor != "postgresql":
        pytest.skip("the read that claims is PostgreSQL's")
    order = Order.objects.get(webhook=event)
    now = datetime(2026, 12, 2, 18, 30, 5, tzinfo=UTC)
    holding, release = threading.Event(), threading.Event()
    reads: list[list[Order]] = []

    def touch() -> None:  # another attempt, in a transaction that holds the row
        from django.db import transaction

        try:
            with transaction.atomic():
                Order.objects.filter(pk=order.pk).update(attempts=F("attempts") + 1)
                holding.set()
                release.wait(10)
        finally:
            connections.close_all()

    def read() -> None:
        try:
            reads.append(
                order_services._TASK_ORDERS_CLAIMING.fetch(
                    webhook_id=event.id, account_id=account.pk, now=now
                )
            )
        finally:
            connections.close_all()

    toucher = threading.Thread(target=touch)
    toucher.start()
    assert holding.wait(10)
    reader = threading.Thread(target=read)
    reader.start()
    with connection.cursor() as cursor:  # the read waits for the row's lock
        for _ in range(200):
            cursor.execute("SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock'")
            if cursor.fetchone()[0]:
                break
            time.sleep(0.01)
        else:
            pytest.fail("the read never waited for the row")
    release.set()
    toucher.join()
    reader.join()
    ((row,),) = reads
    assert (row.claimed_by_read, row.status, row.attempts) == (False, "queued", 0)  # as it was
    assert (lambda o: (o.status, o.attempts))(Order.objects.get(pk=order.pk)) == ("queued", 1)
    claimed = order_services.order_claim(row.pk, loaded=row)  # the guarded claim fails: read again
    assert claimed is not None and (claimed.status, claimed.attempts) == ("submitted", 2)


def test_a_prepared_update_refuses_what_plain_sql_cannot_say(make_account: Any) -> None:
    from django.db.models import F

    update: PreparedUpdate[Account] = PreparedUpdate(Account, where=("pk", "name"))
    account = make_account("a1")
    with pytest.raises(PreparedQueryError, match="expression"):
        update.run({"name": F("name")}, pk=account.pk, name="a1")
    with pytest.raises(PreparedQueryError, match="IS NULL"):
        update.run({"name": "b"}, pk=account.pk, name=None)
    with pytest.raises(TypeError, match="conditions"):
        update.run({"name": "b"}, pk=account.pk)
    with pytest.raises(TypeError, match="nothing to set"):
        update.run({}, pk=account.pk, name="a1")
    with pytest.raises(PreparedQueryError, match="only"):
        PreparedUpdate(Account, where=("name__gt",))
    with pytest.raises(PreparedQueryError, match="empty"):
        PreparedUpdate(Account, where=("name__in",)).run({"name": "b"}, name__in=())
    assert update.run({"name": "b"}, pk=account.pk, name="a1") == 1
    assert Account.objects.get(pk=account.pk).name == "b"


def test_a_prepared_update_of_several_rows_writes_each_rows_values(make_account: Any) -> None:
    """``run_each``: one statement, each row its own values; rows not named stay as they were."""
    from django.db import connection

    from orders.models import PaperBalance

    account, other = make_account("a1"), make_account("a2")
    usdt = PaperBalance.objects.create(
        account=account, asset="USDT", free=Decimal("100"), locked=Decimal("1")
    )
    btc = PaperBalance.objects.create(account=account, asset="BTC", free=Decimal("2"), locked=Decimal("0"))
    untouched = PaperBalance.objects.create(
        account=other, asset="USDT", free=Decimal("7"), locked=Decimal("3")
    )
    update: PreparedUpdate[PaperBalance] = PreparedUpdate(PaperBalance, where=("pk",))
    rows = [
        (usdt.pk, {"free": Decimal("90.1234567891"), "locked": Decimal("0")}),
        (btc.pk, {"free": Decimal("2.00015"), "locked": Decimal("0.5")}),
    ]
    with CaptureQueriesContext(connection) as queries:
        assert update.run_each(rows) == 2
    assert len(queries) == 1
    values = {b.pk: (b.free, b.locked) for b in PaperBalance.objects.all()}
    assert values == {
        usdt.pk: (Decimal("90.1234567891"), Decimal("0")),
        btc.pk: (Decimal("2.00015"), Decimal("0.5")),
        untouched.pk: (Decimal("7"), Decimal("3")),
    }
    # Prepared on PostgreSQL too (outside a query log): the same again with other values.
    assert update.run_each([(btc.pk, {"free": Decimal("3"), "locked": Decimal("1")}), rows[0]]) == 2
    assert PaperBalance.objects.get(pk=btc.pk).free == Decimal("3")
    # A missing key is not counted; the caller sees fewer rows than it named.
    assert update.run_each([(usdt.pk, {"free": Decimal("1")}), (10**9, {"free": Decimal("1")})]) == 1
    assert update.run_each([]) == 0
    with pytest.raises(TypeError, match="same columns"):
        update.run_each([(usdt.pk, {"free": Decimal("1")}), (btc.pk, {"locked": Decimal("1")})])
    with pytest.raises(TypeError, match="twice"):
        update.run_each([(usdt.pk, {"free": Decimal("1")}), (usdt.pk, {"free": Decimal("2")})])
    with pytest.raises(TypeError, match="by their key"):
        PreparedUpdate(PaperBalance, where=("pk", "asset")).run_each(rows)
    assert PaperBalance.objects.get(pk=untouched.pk).free == Decimal("7")


def _orders_like_the_intake(
    strategy: Any, accounts: list[Any], webhook: Any, params: list[Any]
) -> list[Order]:
    orders = []
    for index, account in enumerate(accounts):
        order = Order(
            webhook=webhook,
            strategy=strategy,
            account=account,
            sequence=0,
            batch_index=1,
            market_type="SPOT",
            symbol="BTC/USDT",
            currency="USDT",
            side="BUY",
            order_type="MARKET",
            qty_per=Decimal("10.50") if index % 3 else Decimal("10.5"),
            params=params[index % len(params)],
            status="queued",
            trail={"t0": 1764561906000000, "received": 0},
        )
        order.client_order_id = "qt" + order.id.hex
        orders.append(order)
    return orders


def test_bulk_insert_writes_the_rows_bulk_create_writes(make_strategy: Any, make_account: Any) -> None:
    """Across more rows than one statement carries, with values equal but differently written
    ({"x": 1} and {"x": True} are equal in Python, not in JSON): the same rows as bulk_create."""
    from django.db import connection

    from quanttrade import prepared

    accounts = [make_account(f"a{i}") for i in range(7)]
    strategy = make_strategy(accounts=accounts)
    event_orm = make_orders(strategy, accounts[:1], [])
    event_new = make_orders(strategy, accounts[:1], [])
    params = [{"x": 1}, {"x": True}, {"x": 1.0}, {}, {"reduce_only": True}]
    many = accounts * 40  # 280 rows
    by_orm = _orders_like_the_intake(strategy, many, event_orm, params)
    mine = _orders_like_the_intake(strategy, many, event_new, params)
    Order.objects.bulk_create(by_orm)
    with pytest.MonkeyPatch.context() as patch, CaptureQueriesContext(connection) as statements:
        columns = len(prepared._insert_plan(Order, connection).columns)  # the Order's, as it grows
        patch.setattr(prepared, "_max_params", lambda connection: columns * 100)  # 100 rows per statement
        prepared.bulk_insert(mine)
    inserts = [q["sql"] for q in statements if "INSERT" in q["sql"]]
    assert all(sql.startswith('INSERT INTO "orders_order"') for sql in inserts)
    if connection.vendor == "postgresql":  # one array a column, whatever the number of rows
        assert len(inserts) == 1 and " FROM unnest(" in inserts[0]
    else:  # VALUES lists, as many rows a statement as SQLite takes
        assert len(inserts) == 3
    assert all(not o._state.adding and o._state.db == "default" for o in mine)
    assert len({o.created_at for o in mine}) == 1 and mine[0].created_at is not None

    def rows(event: Any) -> list[dict[str, Any]]:
        found = []
        for order in Order.objects.filter(webhook=event).order_by("created_at", "client_order_id"):
            values = _values(order)
            for name in ("id", "client_order_id", "webhook_id", "created_at", "updated_at"):
                values.pop(name)
            found.append(values)
        return sorted(found, key=repr)

    assert rows(event_new) == rows(event_orm)
    stored = {o.client_order_id: o.params for o in Order.objects.filter(webhook=event_new)}
    assert [stored[o.client_order_id] for o in mine[:5]] == params  # True stayed true, 1.0 stayed 1.0
    assert [repr(stored[o.client_order_id]["x"]) for o in mine[:3]] == ["1", "True", "1.0"]


@pytest.mark.parametrize("insert", ["bulk_create", "bulk_insert"])
def test_bulk_insert_settles_related_objects_as_bulk_create_does(
    make_strategy: Any, make_account: Any, insert: str
) -> None:
    """Where the ORM's related-object step matters, bulk_insert leaves it to the ORM: an unsaved
    related object is refused, one saved after its assignment gives its key, and a key changed
    after the assignment wins over the object held (whose copy is dropped)."""
    from quanttrade import prepared

    def run(objs: list[Order]) -> None:
        if insert == "bulk_create":
            Order.objects.bulk_create(objs)
        else:
            prepared.bulk_insert(objs)

    first, second = make_account("a1"), make_account("a2")
    strategy = make_strategy(accounts=[first, second])
    event = make_orders(strategy, [first], [])

    unsaved = Account(name="never-saved", exchange="PAPER")
    refused = _orders_like_the_intake(strategy, [first], event, [{}])
    refused[0].account = unsaved
    with pytest.raises(ValueError, match="unsaved related object 'account'"):
        run(refused)

    later = Account(name="saved-later", exchange="PAPER")
    saved_later = _orders_like_the_intake(strategy, [first], event, [{}])
    saved_later[0].account = later
    later.save()
    changed = _orders_like_the_intake(strategy, [first], event, [{}])
    changed[0].account_id = second.pk  # after the account was assigned: the key wins
    run(saved_later + changed)
    assert saved_later[0].account_id == later.pk
    assert Order.objects.get(pk=saved_later[0].pk).account_id == later.pk
    assert Order.objects.get(pk=changed[0].pk).account_id == second.pk
    assert changed[0].account == second  # the stale copy was dropped, the account read again


def test_bulk_insert_of_one_row_writes_what_save_writes(make_strategy: Any, make_account: Any) -> None:
    """The one-row path (a webhook's event, a one-account signal's order) writes the row
    ``Model.save`` writes, stamps ``auto_now_add`` and leaves a saved instance."""
    from quanttrade import prepared
    from webhooks.models import WebhookEvent

    account = make_account("a1")
    strategy = make_strategy(accounts=[account])
    replayed = WebhookEvent.objects.create(strategy=strategy, outcome="accepted", http_status=202)

    def event() -> WebhookEvent:
        return WebhookEvent(
            strategy=strategy,
            group_name=strategy.group_name,
            payload={"x": 1, "y": True, "z": 1.0, "token": "[redacted]"},
            source_ip="2001:db8::1",
            outcome="accepted",
            http_status=202,
            warnings=["stale"],
            idempotency_key="k1",
            response={"orders": [{"qty_per": "10.5"}]},
            replay_of=replayed,
        )

    by_save, mine = event(), event()
    by_save.save(force_insert=True)
    prepared.bulk_insert([mine])
    assert not mine._state.adding and mine._state.db == "default" and mine.received_at is not None

    def row(obj: Any, *differ: str) -> dict[str, Any]:
        """The stored row, without the columns that differ between two inserts."""
        values = _values(type(obj).objects.get(pk=obj.pk))
        for name in ("id", *differ):
            values.pop(name)
        return values

    assert row(mine, "received_at") == row(by_save, "received_at")
    assert WebhookEvent.objects.get(pk=mine.pk).received_at == mine.received_at
    assert repr(WebhookEvent.objects.get(pk=mine.pk).payload["z"]) == "1.0"

    # An order of one account, as the intake builds it, against bulk_create's.
    orm_order = _orders_like_the_intake(strategy, [account], by_save, [{"x": 1}])
    my_order = _orders_like_the_intake(strategy, [account], mine, [{"x": 1}])
    Order.objects.bulk_create(orm_order)
    prepared.bulk_insert(my_order)
    differ = ("client_order_id", "webhook_id", "created_at", "updated_at")
    assert row(my_order[0], *differ) == row(orm_order[0], *differ)
    assert my_order[0].created_at is not None and not my_order[0]._state.adding


def _new_event(strategy: Any) -> Any:
    from webhooks.models import WebhookEvent

    return WebhookEvent(
        strategy=strategy,
        group_name=strategy.group_name,
        payload={"x": 1},
        outcome="accepted",
        http_status=202,
        response={"orders": []},
    )


@pytest.mark.parametrize("accounts", [1, 3])
def test_an_event_and_its_orders_are_written_by_one_statement_on_postgresql(
    make_strategy: Any, make_account: Any, accounts: int
) -> None:
    """``bulk_insert_together``: the event, then its orders (which refer to it), all written.
    On PostgreSQL by one statement outside any transaction (a data-modifying WITH: one round trip
    where BEGIN, two INSERTs and COMMIT were four); on SQLite by a transaction of two."""
    from django.db import connection

    from quanttrade import prepared
    from webhooks.models import WebhookEvent

    linked = [make_account(f"a{i}") for i in range(accounts)]
    strategy = make_strategy(accounts=linked)
    event = _new_event(strategy)
    orders = _orders_like_the_intake(strategy, linked, event, [{"x": 1}])
    seen: list[tuple[str, bool]] = []

    def watch(execute: Any, sql: str, params: Any, many: bool, context: Any) -> Any:
        seen.append((sql, connection.get_autocommit()))
        return execute(sql, params, many, context)

    with connection.execute_wrapper(watch):
        prepared.bulk_insert_together([[event], orders])
    if connection.vendor == "postgresql":
        ((sql, autocommit),) = seen
        assert sql.startswith(f'WITH _qt_insert_0 AS (INSERT INTO "{WebhookEvent._meta.db_table}"'), sql
        assert 'INSERT INTO "orders_order"' in sql and autocommit  # no transaction around it
    else:
        inserts = [(sql, autocommit) for sql, autocommit in seen if sql.startswith("INSERT")]
        assert [sql.split(" (")[0] for sql, _ in inserts] == [
            f'INSERT INTO "{WebhookEvent._meta.db_table}"',
            'INSERT INTO "orders_order"',
        ]
        assert not any(autocommit for _, autocommit in inserts)  # both inside one transaction
    assert WebhookEvent.objects.filter(pk=event.pk).exists()
    assert sorted(Order.objects.filter(webhook=event).values_list("account_id", flat=True)) == sorted(
        a.pk for a in linked
    )
    assert not event._state.adding and all(not o._state.adding for o in orders)


def test_an_event_and_its_orders_are_written_all_or_none(make_strategy: Any, make_account: Any) -> None:
    """An order that cannot be written (its key taken) leaves no event either, whichever way
    the database writes them; inside a caller's transaction, the write is part of it."""
    from django.db import IntegrityError, transaction

    from quanttrade import prepared
    from webhooks.models import WebhookEvent

    account = make_account("a1")
    strategy = make_strategy(accounts=[account])
    first = _new_event(strategy)
    (taken,) = _orders_like_the_intake(strategy, [account], first, [{}])
    prepared.bulk_insert_together([[first], [taken]])

    event = _new_event(strategy)
    (order,) = _orders_like_the_intake(strategy, [account], event, [{}])
    order.pk = taken.pk
    with pytest.raises(IntegrityError), transaction.atomic():
        prepared.bulk_insert_together([[event], [order]])
    assert not WebhookEvent.objects.filter(pk=event.pk).exists()
    assert Order.objects.count() == 1

    # Inside a caller's transaction that rolls back, nothing stays either.
    event = _new_event(strategy)
    orders = _orders_like_the_intake(strategy, [account], event, [{}])
    with pytest.raises(RuntimeError), transaction.atomic():
        prepared.bulk_insert_together([[event], orders])
        raise RuntimeError("the caller's transaction fails")
    assert not WebhookEvent.objects.filter(pk=event.pk).exists()
    assert Order.objects.count() == 1


def test_groups_larger_than_one_statement_are_written_in_one_transaction(
    make_strategy: Any, make_account: Any
) -> None:
    """Where one statement cannot carry a group (SQLite's parameter limit; here lowered to 40
    rows), the groups' statements run in one transaction. On PostgreSQL a group of any size is
    one statement (an array a column), so the groups are still written by one."""
    from django.db import connection

    from quanttrade import prepared

    linked = [make_account(f"a{i}") for i in range(5)]
    strategy = make_strategy(accounts=linked)
    event = _new_event(strategy)
    orders = _orders_like_the_intake(strategy, linked * 20, event, [{}])  # 100 rows
    seen: list[tuple[str, bool]] = []

    def watch(execute: Any, sql: str, params: Any, many: bool, context: Any) -> Any:
        seen.append((sql, connection.get_autocommit()))
        return execute(sql, params, many, context)

    with pytest.MonkeyPatch.context() as patch, connection.execute_wrapper(watch):
        columns = len(prepared._insert_plan(Order, connection).columns)
        patch.setattr(prepared, "_max_params", lambda connection: columns * 40)  # 40 rows per statement
        prepared.bulk_insert_together([[event], orders])
    inserts = [(sql, autocommit) for sql, autocommit in seen if "INSERT" in sql]
    if connection.vendor == "postgresql":
        ((sql, autocommit),) = inserts
        assert sql.startswith("WITH _qt_insert_0 AS (") and "unnest(" in sql and autocommit
    else:
        assert len(inserts) == 4 and not any(autocommit for _, autocommit in inserts)
    assert Order.objects.filter(webhook=event).count() == 100


def test_the_workers_read_finds_live_orders_without_reading_the_accounts_history(
    make_strategy: Any, make_account: Any
) -> None:
    """The task's read and its "anything earlier pending?" check reach the account's live
    orders through the (account, status) index; by the account alone they read every order it
    ever had (20,000 orders: 7 ms per order on SQLite, docs/benchmarks-speed.md round 8)."""
    from tests.query_plans import index_columns, sqlite_plan

    assert index_columns("orders_order", "order_account_status_idx") == ["account_id", "status"]
    account = make_account("a1")
    event = make_orders(make_strategy(accounts=[account]), [account], [{"side": "BUY", "qty_per": 10}])
    compiled = order_services._TASK_ORDERS._compile("default")
    params = list(compiled.params)
    for position in compiled.slots["webhook_id"]:
        params[position] = event.id.hex
    for position in compiled.slots["account_id"]:
        params[position] = account.pk
    plan = sqlite_plan(compiled.sql, params)
    if plan is not None:
        reads = [step for step in plan if step.startswith(("SEARCH orders_order ", "SEARCH U0 ", "SCAN"))]
        assert len(reads) == 2, plan
        assert all("order_account_status_idx (account_id=? AND status=?)" in step for step in reads), plan


def _deallocate_all() -> None:
    """Drop this connection's prepared statements, and psycopg's record of them.

    psycopg notices a ``DEALLOCATE ALL`` (and forgets its statements) only the first time it sees
    that query text on a connection: a second one, counted like any repeated query, drops the
    server's statements while psycopg still believes them prepared, and the next execution of
    one on that pooled connection (in a later test's worker) fails ("prepared statement _pg3_8
    does not exist"). A text of its own each time keeps the two in step. (The product never
    deallocates; only these tests do.)"""
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(f"DEALLOCATE ALL /* {uuid4().hex} */")


def _prepared_on_this_connection() -> list[str]:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("SELECT statement FROM pg_prepared_statements")
        return [row[0] for row in cursor.fetchall()]


def test_on_postgresql_the_hot_statements_are_planned_once_per_connection(
    make_strategy: Any, make_account: Any, settings: Any
) -> None:
    """The worker's read, the claim and a one-row insert are prepared on their connection the
    first time they run there, and run prepared after that: PostgreSQL parses and plans each
    once per pooled connection instead of on every execution. A large insert is not prepared;
    with DATABASE_PREPARED_STATEMENTS off nothing is."""
    from django.db import connection

    from quanttrade import prepared

    if connection.vendor != "postgresql":
        pytest.skip("server-side prepared statements are PostgreSQL's (CI runs the suite on it)")
    settings.DATABASE_PREPARED_STATEMENTS = True
    account = make_account("a1")
    strategy = make_strategy(accounts=[account])
    event = make_orders(strategy, [account], [{"side": "BUY", "qty_per": 10}])
    _deallocate_all()  # the pooled connection may hold earlier tests' statements
    assert _prepared_on_this_connection() == []
    for _ in range(3):
        (row,) = order_services._TASK_ORDERS.fetch(webhook_id=event.id, account_id=account.pk)
    assert (
        order_services._CLAIM.run(
            {"status": "submitted", "attempts": 1}, pk=row.pk, status="queued", attempts=0
        )
        == 1
    )
    assert (
        order_services._CLAIM.run(
            {"status": "submitted", "attempts": 1}, pk=row.pk, status="queued", attempts=0
        )
        == 0
    )  # prepared, and still a guard: nothing matches twice
    (inserted,) = _orders_like_the_intake(strategy, [account], event, [{}])
    prepared.bulk_insert([inserted])
    statements = _prepared_on_this_connection()
    assert len(statements) == 3, statements
    select, update, insert = sorted(statements, key=lambda sql: ["SELECT", "UPDATE", "INSERT"].index(sql[:6]))
    assert select.startswith("SELECT") and "$1" in select and "%s" not in select
    assert update.startswith('UPDATE "orders_order" SET "status" = $1')
    assert insert.startswith('INSERT INTO "orders_order"')
    # A later execution reuses them (no new statement) and sees what the others wrote: the
    # claimed order is no longer the task's, the inserted one is.
    (again,) = order_services._TASK_ORDERS.fetch(webhook_id=event.id, account_id=account.pk)
    assert again.pk == inserted.pk and again.status == "queued"
    claimed = Order.objects.get(pk=row.pk)
    assert (claimed.status, claimed.attempts) == ("submitted", 1)
    assert len(_prepared_on_this_connection()) == 3

    # A fan-out's insert is one statement of one array a column (unnest), whatever its number
    # of rows: prepared once, then reused by fan-outs of any size.
    many = [make_account(f"b{i}") for i in range(60)]
    prepared.bulk_insert(_orders_like_the_intake(strategy, many, event, [{}]))
    prepared.bulk_insert(_orders_like_the_intake(strategy, many[:7], event, [{}]))
    statements = _prepared_on_this_connection()
    assert len(statements) == 4, statements
    (fan_out,) = [sql for sql in statements if "unnest(" in sql]
    # One parameter a column (a value, or an array of the rows' values), none per row.
    highest = max(int(n) for n in re.findall(r"\$(\d+)", fan_out))
    assert fan_out.startswith('INSERT INTO "orders_order"') and highest <= len(Order._meta.concrete_fields)
    assert Order.objects.filter(webhook=event).count() == 69

    # While queries are logged the statements go as text, so the log can show them.
    with CaptureQueriesContext(connection) as logged:
        order_services._TASK_ORDERS.fetch(webhook_id=event.id, account_id=account.pk)
    assert len(_prepared_on_this_connection()) == 4
    assert event.id.hex in logged[0]["sql"]

    settings.DATABASE_PREPARED_STATEMENTS = False
    _deallocate_all()
    order_services._TASK_ORDERS.fetch(webhook_id=event.id, account_id=account.pk)
    prepared.bulk_insert(_orders_like_the_intake(strategy, [account], event, [{}]))
    assert _prepared_on_this_connection() == []


def test_a_prepared_statements_database_error_is_djangos(make_strategy: Any, make_account: Any) -> None:
    """Errors from the statements' cursor reach callers as Django's database errors (the intake
    and the worker catch those), on either database."""
    from django.db import IntegrityError, transaction

    from quanttrade import prepared

    account = make_account("a1")
    strategy = make_strategy(accounts=[account])
    event = make_orders(strategy, [account], [])
    (order,) = _orders_like_the_intake(strategy, [account], event, [{}])
    prepared.bulk_insert([order])
    (twin,) = _orders_like_the_intake(strategy, [account], event, [{}])
    twin.pk = order.pk
    with pytest.raises(IntegrityError), transaction.atomic():
        prepared.bulk_insert([twin])
    assert Order.objects.filter(webhook=event).count() == 1


def _queued_after_a_long_history(make_strategy: Any, make_account: Any) -> tuple[Account, Any]:
    """An account with 5,000 filled orders and one webhook's queued order, the table analysed."""
    from django.db import connection

    account = make_account("a1")
    strategy = make_strategy(accounts=[account])
    history = make_orders(strategy, [account], [])
    finished = _orders_like_the_intake(strategy, [account] * 5000, history, [{}])
    for order in finished:
        order.status = "filled"
    Order.objects.bulk_create(finished, batch_size=1000)
    event = make_orders(strategy, [account], [{"side": "BUY", "qty_per": 10}])
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE orders_order")
    return account, event


def test_on_postgresql_the_workers_read_is_planned_once_with_a_long_history(
    make_strategy: Any, make_account: Any, settings: Any
) -> None:
    """The prepared read gets one plan for all executions (a generic plan) also for an account
    with thousands of finished orders: its constant statuses are written into the statement, so
    PostgreSQL can tell that few orders are queued. As parameters they made the generic plan
    look costly, and every execution was planned again (~0.8 ms of 1.7 at 20,000 orders)."""
    from django.db import connection

    if connection.vendor != "postgresql":
        pytest.skip("server-side prepared statements are PostgreSQL's (CI runs the suite on it)")
    settings.DATABASE_PREPARED_STATEMENTS = True
    account, event = _queued_after_a_long_history(make_strategy, make_account)
    _deallocate_all()
    for _ in range(8):  # PostgreSQL weighs a generic plan after five custom ones
        (order,) = order_services._TASK_ORDERS.fetch(webhook_id=event.id, account_id=account.pk)
    assert order.webhook_id == event.id and order.maybe_after is False
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT generic_plans, custom_plans FROM pg_prepared_statements WHERE statement LIKE %s",
            ['SELECT "orders_order"."id"%'],
        )
        ((generic, custom),) = cursor.fetchall()
    assert generic >= 3 and custom <= 5, (generic, custom)


def test_on_postgresql_the_read_that_claims_reaches_rows_by_index_with_a_long_history(
    make_strategy: Any, make_account: Any
) -> None:
    """With 5,000 finished orders of the account, the read that claims finds the pair's first
    order, the claimed row and the account's earlier pending orders each by an index: no step
    reads the account's whole history (PostgreSQL picks the indexes by its statistics; the
    test pins that none of the claim's steps is a sequential scan)."""
    from django.db import connection, transaction

    if connection.vendor != "postgresql":
        pytest.skip("the read that claims is PostgreSQL's")
    account, event = _queued_after_a_long_history(make_strategy, make_account)
    compiled = order_services._TASK_ORDERS_CLAIMING._compile("default")
    params = list(compiled.params)
    now = datetime(2026, 12, 2, 18, 30, 5, tzinfo=UTC)
    for name, value in {"webhook_id": event.id, "account_id": account.pk, "now": now}.items():
        field = order_services._TASK_ORDERS_CLAIMING._fields[name]
        for position in compiled.slots[name]:
            params[position] = field.get_db_prep_value(value, connection, prepared=False)
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("EXPLAIN (COSTS OFF) " + compiled.sql, params)
        plan = "\n".join(row[0] for row in cursor.fetchall())
        transaction.set_rollback(True)
    update = plan.split("CTE head", 1)[1].split("\n  ->", 1)[0]  # the claim's part of the plan
    assert "Seq Scan" not in update, plan
    # The live orders by an index (the account's and status's, or the status's: few are live).
    assert re.search(r"Index (Only )?Scan using \w+ on orders_order earlier", update), plan
    # The claimed row by an index: its key (one row), or the status's when the statistics say
    # that as few rows are queued.
    assert re.search(r"Index Scan using \w+ on orders_order orders_order_\d+\n\s+Index Cond", update), plan
    (row,) = _claiming_read(event, account, now)
    assert row.claimed_by_read is True


@pytest.mark.django_db(transaction=True)
def test_the_paper_books_lock_prepared_equals_the_queryset(make_account: Any) -> None:
    """The paper venue's lock of an account row (orders.exchanges.paper._LOCK): the same row and
    fields as the queryset, read inside the caller's transaction (PostgreSQL: FOR UPDATE)."""
    from django.db import connection, transaction

    from orders.exchanges import paper

    account = make_account("locked", settings={"paper": {"fee_rate": "0.001"}})
    with transaction.atomic(), CaptureQueriesContext(connection) as statements:
        [locked] = paper._LOCK.fetch(account_id=account.pk)
        [plain] = Account.objects.select_for_update().only("id", "settings").filter(pk=account.pk)
        assert paper._LOCK.fetch(account_id=account.pk + 1000) == []
    assert (locked.pk, locked.settings) == (plain.pk, plain.settings)
    assert locked.get_deferred_fields() == plain.get_deferred_fields()
    if connection.vendor == "postgresql":
        assert all("FOR UPDATE" in q["sql"] for q in statements.captured_queries if "SELECT" in q["sql"])
    with transaction.atomic(), pytest.raises(Account.DoesNotExist):
        paper._Book.lock(account.pk + 1000)


def test_an_insert_returning_its_key_writes_what_save_writes(make_account: Any) -> None:
    """``insert_returning_key`` (the paper venue's new orders): the row ``Model.save`` writes
    for the same instance, the key the database chose, the instance saved; a second insert gets
    the next key; a model whose key is set in Python, or an instance already saved, is refused."""
    from orders.models import PaperOrder
    from quanttrade.prepared import insert_returning_key

    account = make_account("keyed")

    def new(client_order_id: str) -> PaperOrder:
        return PaperOrder(
            account=account,
            client_order_id=client_order_id,
            venue_order_id="V" + client_order_id,
            market_type="SPOT",
            symbol="BTC/USDT",
            instrument="BINANCE:BTC/USDT",
            currency="USDT",
            side="BUY",
            order_type="LIMIT",
            amount=Decimal("0.12345678"),
            price=Decimal("50000.5"),
            reserved=Decimal("6172.90"),
            reserved_asset="USDT",
            message="메시지",
        )

    saved, inserted, second = new("by-save"), new("by-insert"), new("by-insert-2")
    saved.save()
    insert_returning_key(inserted)
    insert_returning_key(second)
    assert not inserted._state.adding and inserted._state.db == "default"
    assert isinstance(inserted.pk, int) and second.pk > inserted.pk > saved.pk
    assert inserted.created_at is not None and inserted.updated_at is not None  # stamped
    rows = {o.pk: o for o in PaperOrder.objects.filter(pk__in=[saved.pk, inserted.pk])}
    differ = {"id", "client_order_id", "venue_order_id", "created_at", "updated_at"}

    def row(obj: PaperOrder) -> dict[str, Any]:
        return {k: v for k, v in _values(obj).items() if k not in differ}

    assert row(rows[inserted.pk]) == row(rows[saved.pk])
    assert rows[inserted.pk].created_at == inserted.created_at
    with pytest.raises(ValueError, match="new instance"):
        insert_returning_key(inserted)
    event_model = Order._meta.get_field("webhook").related_model
    with pytest.raises(PreparedQueryError, match="not set by the database"):
        insert_returning_key(event_model())


@pytest.mark.django_db
def test_the_paper_books_balances_with_the_placed_order_prepared_equal_the_queryset(
    make_account: Any, publish_price: Any
) -> None:
    """A placement's read after the lock (orders.exchanges.paper._BALANCES_AND_PLACED): the
    account's balances as the queryset reads them, each saying which paper order the client id
    placed (none, or the one the paper venue placed under it), and no row for an account
    without balances."""
    from django.db.models import Subquery

    from orders.exchanges import paper
    from orders.models import PaperBalance, PaperOrder
    from tests.execution.test_paper import request

    account = make_account("book", balances={"USDT": "1000", "BTC": "0.5"})
    other = make_account("other", balances={"USDT": "5000"})

    def plain(client_order_id: str) -> list[tuple[str, Any, Any, Any]]:
        placed = PaperOrder.objects.filter(client_order_id=client_order_id).order_by("pk").values("pk")[:1]
        rows = PaperBalance.objects.filter(account_id=account.pk).annotate(placed=Subquery(placed))
        return sorted((b.asset, b.free, b.locked, b.placed) for b in rows)

    def prepared(client_order_id: str, account_id: int = account.pk) -> list[tuple[str, Any, Any, Any]]:
        rows = paper._BALANCES_AND_PLACED.fetch(account_id=account_id, client_order_id=client_order_id)
        return sorted((b.asset, b.free, b.locked, b.placed) for b in rows)

    assert prepared("qt-none") == plain("qt-none") and {row[3] for row in prepared("qt-none")} == {None}
    publish_price("BINANCE:BTC/USDT", "50000")
    placing = request(qty_per=10)
    answer = paper.PaperAdapter(other).place_order(placing)
    first = PaperOrder.objects.get(venue_order_id=answer.exchange_order_id)
    cid = placing.client_order_id
    assert prepared(cid) == plain(cid) and {row[3] for row in prepared(cid)} == {first.pk}
    assert [row[0] for row in prepared(cid)] == ["BTC", "USDT"]
    assert prepared(cid, account_id=account.pk + 1000) == []


def test_placeholders_are_numbered_for_the_server_binding_cursor() -> None:
    """On PostgreSQL the statements run on psycopg's RawCursor, which takes $n placeholders
    as they are (psycopg parsed a wide statement's %s on every execution)."""
    from quanttrade.prepared import dollar_placeholders

    sql = 'SELECT "a" FROM "t" WHERE "b" = %s AND "c" LIKE %s AND "d" = \'%%\' AND "e" IN (%s, %s)'
    assert dollar_placeholders(sql) == (
        'SELECT "a" FROM "t" WHERE "b" = $1 AND "c" LIKE $2 AND "d" = \'%\' AND "e" IN ($3, $4)'
    )
    assert dollar_placeholders(sql) is dollar_placeholders(sql)  # worked out once
    for unsupported in ("x = %d", "x = %(name)s", "x = %"):
        with pytest.raises(ValueError, match="placeholder"):
            dollar_placeholders(unsupported)
