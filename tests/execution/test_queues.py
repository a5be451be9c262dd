"""Order executions go before background work: two broker queues, taken in order (settings:
CELERY_TASK_QUEUES, queue_order_strategy)."""

from __future__ import annotations

import uuid

import pytest
from django.conf import settings
from kombu import Connection, Exchange, Queue

from quanttrade.celery import app


def test_portfolio_refreshes_go_to_the_background_queue_and_everything_else_to_the_first() -> None:
    def queue_of(task: str) -> str:
        return app.amqp.router.route({}, task)["queue"].name

    assert [queue.name for queue in app.conf.task_queues] == ["celery", "background"]
    assert queue_of("orders.tasks.portfolio_refresh") == "background"
    assert queue_of("orders.tasks.portfolios_refresh_requested") == "background"
    assert queue_of("orders.tasks.portfolios_refresh") == "background"
    for task in (
        "orders.tasks.execute_account_orders",
        "orders.tasks.execute_webhook_orders",
        "orders.tasks.orders_sweep",
        "notify.tasks.notify_flush",
    ):
        assert queue_of(task) == "celery", task


@pytest.mark.skipif(not settings.CELERY_BROKER_URL.startswith("redis"), reason="the Redis broker's order")
def test_with_the_redis_broker_a_consumer_takes_the_first_queue_first() -> None:
    """Background messages published first still wait for the order queue's: with the broker
    options of the product, a consumer of both queues (in the configured order) takes every
    message of the first before any of the second (round robin would alternate). Queues of
    this test's own, so a worker of the session does not take the messages."""
    names = [f"qt-test-{queue.name}-{uuid.uuid4().hex[:8]}" for queue in app.conf.task_queues]
    queues = [Queue(name, Exchange(name, type="direct"), routing_key=name) for name in names]
    got: list[str] = []
    with Connection(settings.CELERY_BROKER_URL, transport_options=app.conf.broker_transport_options) as conn:
        channel = conn.channel()
        try:
            producer = conn.Producer(channel)
            for queue, label in [(queues[1], "background")] * 2 + [(queues[0], "orders")] * 2:
                producer.publish(
                    {"label": label}, exchange=queue.exchange, routing_key=queue.routing_key, declare=[queue]
                )

            def take(body: dict[str, str], message: object) -> None:
                got.append(body["label"])
                message.ack()  # type: ignore[attr-defined]

            with conn.Consumer(queues, channel=channel, callbacks=[take], prefetch_count=1):
                while len(got) < 4:
                    conn.drain_events(timeout=5)
        finally:
            for queue in queues:
                queue(channel).delete()
            channel.close()
    assert got == ["orders", "orders", "background", "background"]
