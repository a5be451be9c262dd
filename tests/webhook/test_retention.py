"""The webhook log's housekeeping (#11): idempotency decided by the unique key, expired keys and
old refusals purged by the sweep, unauthenticated refusals capped in size and per source IP."""

from __future__ import annotations

import json
import threading
from datetime import timedelta
from typing import Any

import pytest
from django.db import connections
from django.test import Client
from django.utils import timezone

from orders.models import Order
from webhooks.models import IdempotencyKey, WebhookEvent
from webhooks.services import webhooks_sweep

BODY = {"group_name": "my_strategy", "token": "test-token", "symbol": "BTC/USDT", "side": "buy",
        "order_type": "MARKET", "qty_per": 10}  # fmt: skip


def post(body: Any, **extra: str) -> Any:
    return Client().post("/api/webhook", json.dumps(body), content_type="application/json", **extra)


@pytest.mark.django_db(transaction=True)
def test_concurrent_identical_webhooks_with_one_key_create_one_set_of_orders(make_strategy: Any) -> None:
    make_strategy(rate_limit="1000/s")
    statuses: list[int] = []
    start = threading.Barrier(20)

    def send() -> None:
        start.wait()
        try:
            statuses.append(post({**BODY, "idempotency_key": "same-key"}).status_code)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=send) for _ in range(20)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)

    assert len(statuses) == 20 and all(status in (202, 409) for status in statuses), statuses
    assert Order.objects.count() == 1
    assert WebhookEvent.objects.filter(outcome="accepted").count() == 1


@pytest.mark.django_db
def test_a_twin_that_checked_before_the_first_committed_replays_it(
    make_strategy: Any, monkeypatch: Any
) -> None:
    """The race, interleaved by hand: B looks the key up before A commits (and finds nothing),
    A commits, then B stores. The unique key must make B replay A, not replace A's key."""
    import webhooks.services as intake

    make_strategy()
    first = post({**BODY, "idempotency_key": "race"}).json()
    real = intake._idempotent_replay
    calls = {"n": 0}

    def checked_too_early(*args: Any) -> Any:
        calls["n"] += 1
        return None if calls["n"] == 1 else real(*args)

    monkeypatch.setattr(intake, "_idempotent_replay", checked_too_early)
    twin = post({**BODY, "idempotency_key": "race"}).json()

    assert twin["webhook_id"] == first["webhook_id"]
    assert Order.objects.count() == 1


@pytest.mark.django_db
def test_a_live_key_is_never_replaced_and_an_expired_one_is(make_strategy: Any) -> None:
    make_strategy()
    first = post({**BODY, "idempotency_key": "k"}).json()
    assert post({**BODY, "idempotency_key": "k"}).json()["webhook_id"] == first["webhook_id"]
    IdempotencyKey.objects.update(created_at=timezone.now() - timedelta(days=2))

    again = post({**BODY, "idempotency_key": "k"}).json()

    assert again["webhook_id"] != first["webhook_id"] and Order.objects.count() == 2


@pytest.mark.django_db
def test_the_sweep_purges_expired_keys_and_old_refusals_only(make_strategy: Any) -> None:
    make_strategy()
    post({**BODY, "idempotency_key": "old"})
    post({**BODY, "idempotency_key": "new"})
    post({**BODY, "token": "wrong"})
    post({**BODY, "token": "wrong", "symbol": "ETH/USDT"})
    IdempotencyKey.objects.filter(key="old").update(created_at=timezone.now() - timedelta(days=2))
    WebhookEvent.objects.filter(payload__symbol="BTC/USDT", outcome="rejected").update(
        received_at=timezone.now() - timedelta(days=30)
    )

    assert webhooks_sweep() == {"idempotency_keys": 1, "refused_events": 1}
    assert list(IdempotencyKey.objects.values_list("key", flat=True)) == ["new"]
    assert WebhookEvent.objects.filter(outcome="rejected").count() == 1
    assert WebhookEvent.objects.filter(outcome="accepted").count() == 2  # accepted ones stay


@pytest.mark.django_db
def test_an_unauthenticated_refusal_stores_at_most_4_kb(make_strategy: Any) -> None:
    make_strategy()
    post({"group_name": "nobody", "token": "x", "padding": "p" * 50_000})

    event = WebhookEvent.objects.get()
    assert event.payload is None and 0 < len(event.raw_body.encode()) <= 4096


@pytest.mark.django_db
def test_refusals_past_the_per_ip_limit_are_answered_but_not_stored(
    make_strategy: Any, settings: Any
) -> None:
    settings.WEBHOOK_REFUSED_RECORD_LIMIT = "3/m"
    make_strategy()
    answers = [
        post({"group_name": "nobody", "token": "x"}, REMOTE_ADDR="203.0.113.9").status_code for _ in range(6)
    ]
    post({"group_name": "nobody", "token": "x"}, REMOTE_ADDR="203.0.113.10")

    assert answers == [404] * 6
    assert WebhookEvent.objects.filter(source_ip="203.0.113.9").count() == 3
    assert WebhookEvent.objects.filter(source_ip="203.0.113.10").count() == 1
    # An authenticated signal from the same address is untouched by the limit.
    assert post(BODY, REMOTE_ADDR="203.0.113.9").status_code == 202
