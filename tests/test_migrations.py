"""Schema moves keep the data: migrating a database with rows from the schema before the
renovation (webhook log in the orders app) to today's keeps every row and every link."""

from __future__ import annotations

import uuid

import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor
from django.utils import timezone

BEFORE = [("orders", "0003_vocabulary_choices"), ("webhooks", None)]


def _migrate(targets: list[tuple[str, str | None]]) -> MigrationExecutor:
    executor = MigrationExecutor(connection)
    executor.loader.build_graph()
    executor.migrate(targets)
    return executor


@pytest.mark.django_db(transaction=True)
def test_the_webhook_log_moves_to_the_webhooks_app_with_its_rows() -> None:
    old = _migrate(BEFORE).loader.project_state([BEFORE[0]]).apps
    strategy = old.get_model("strategies", "Strategy").objects.create(
        group_name="moved", market_type="SPOT", token="t0ken"
    )
    account = old.get_model("strategies", "Account").objects.create(name="paper-moved", exchange="PAPER")
    old_event = old.get_model("orders", "WebhookEvent")
    first = old_event.objects.create(
        strategy=strategy, group_name="moved", payload={"token": "***"}, outcome="accepted", http_status=202
    )
    replay = old_event.objects.create(
        strategy=strategy, group_name="moved", outcome="rejected", http_status=401, replay_of=first
    )
    old.get_model("orders", "IdempotencyKey").objects.create(
        strategy=strategy, key="k-1", event=first, created_at=timezone.now()
    )
    order_id = uuid.uuid4()
    old.get_model("orders", "Order").objects.create(
        id=order_id,
        webhook=first,
        strategy=strategy,
        account=account,
        sequence=0,
        market_type="SPOT",
        order_type="MARKET",
        client_order_id="qt-moved",
    )

    executor = MigrationExecutor(connection)
    leaves = executor.loader.graph.leaf_nodes()
    executor.migrate(leaves)

    from orders.models import Order
    from webhooks.models import IdempotencyKey, WebhookEvent

    assert WebhookEvent._meta.db_table == "orders_webhookevent"
    moved = WebhookEvent.objects.get(pk=first.pk)
    assert (moved.group_name, moved.payload, moved.http_status) == ("moved", {"token": "***"}, 202)
    assert WebhookEvent.objects.get(pk=replay.pk).replay_of_id == first.pk
    assert IdempotencyKey.objects.get(key="k-1").event_id == first.pk
    order = Order.objects.get(pk=order_id)
    assert order.webhook == moved and list(moved.orders.all()) == [order]


@pytest.mark.django_db(transaction=True)
def test_destinations_wanting_uncertain_placements_also_get_unapplied_cancels() -> None:
    before = [("notify", "0001_notify_initial")]
    old = _migrate(before).loader.project_state(before).apps
    destination = old.get_model("notify", "NotificationDestination")
    careful = destination.objects.create(
        name="careful", url="json://127.0.0.1:9/a", events=["order_uncertain"]
    )
    fills = destination.objects.create(name="fills", url="json://127.0.0.1:9/b", events=["order_filled"])

    executor = MigrationExecutor(connection)
    executor.loader.build_graph()
    executor.migrate(executor.loader.graph.leaf_nodes())

    from notify.models import NotificationDestination

    assert NotificationDestination.objects.get(pk=careful.pk).events == [
        "order_uncertain",
        "order_cancel_unconfirmed",
    ]
    assert NotificationDestination.objects.get(pk=fills.pk).events == ["order_filled"]
