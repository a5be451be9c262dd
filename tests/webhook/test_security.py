"""Idempotency, rate limit, IP allowlist, CSRF exemption, OpenAPI schema."""

from __future__ import annotations

import json
from typing import Any

import pytest
from django.test import Client
from django.test.utils import override_settings

from orders.models import Order
from webhooks.models import WebhookEvent

pytestmark = pytest.mark.django_db

BODY = {
    "group_name": "my_strategy",
    "token": "test-token",
    "symbol": "BTC/USDT",
    "order_type": "MARKET",
    "side": "buy",
    "qty_per": 10,
}


def post(client: Client, body: Any = None, **extra: Any) -> Any:
    return client.post(
        "/api/webhook", data=json.dumps(body or BODY), content_type="application/json", **extra
    )


def test_idempotency_key_in_body_replays_the_first_response_and_places_nothing(
    client: Client, make_strategy: Any
) -> None:
    make_strategy()
    first = post(client, {**BODY, "idempotency_key": "alert-1"})
    second = post(client, {**BODY, "idempotency_key": "alert-1", "qty_per": 50})
    assert first.status_code == second.status_code == 202
    assert second.json() == first.json()
    assert Order.objects.count() == 1
    assert WebhookEvent.objects.filter(outcome="duplicate").count() == 1


def test_idempotency_key_header(client: Client, make_strategy: Any) -> None:
    make_strategy()
    first = post(client, HTTP_IDEMPOTENCY_KEY="k-9")
    second = post(client, HTTP_IDEMPOTENCY_KEY="k-9")
    third = post(client, HTTP_IDEMPOTENCY_KEY="k-10")
    assert second.json()["webhook_id"] == first.json()["webhook_id"] != third.json()["webhook_id"]
    assert Order.objects.count() == 2


def test_idempotency_key_expires_after_24_hours(client: Client, make_strategy: Any) -> None:
    from datetime import timedelta

    from webhooks.models import IdempotencyKey

    make_strategy()
    first = post(client, HTTP_IDEMPOTENCY_KEY="old")
    IdempotencyKey.objects.update(created_at=IdempotencyKey.objects.get().created_at - timedelta(hours=25))
    second = post(client, HTTP_IDEMPOTENCY_KEY="old")
    assert second.json()["webhook_id"] != first.json()["webhook_id"]
    assert Order.objects.count() == 2


def test_idempotency_keys_are_per_strategy(client: Client, make_strategy: Any) -> None:
    make_strategy()
    make_strategy(group_name="other", token="other-token")
    a = post(client, HTTP_IDEMPOTENCY_KEY="same")
    b = post(client, {**BODY, "group_name": "other", "token": "other-token"}, HTTP_IDEMPOTENCY_KEY="same")
    assert a.json()["webhook_id"] != b.json()["webhook_id"]


def test_rate_limit_per_strategy(client: Client, make_strategy: Any) -> None:
    make_strategy(rate_limit="3/m")
    make_strategy(group_name="other", token="other-token")
    codes = [post(client).status_code for _ in range(4)]
    assert codes == [202, 202, 202, 429]
    limited = post(client)
    assert limited.json()["code"] == "rate_limited" and limited["Retry-After"]
    assert post(client, {**BODY, "group_name": "other", "token": "other-token"}).status_code == 202


def test_rate_limit_does_not_count_unauthenticated_requests(client: Client, make_strategy: Any) -> None:
    make_strategy(rate_limit="2/m")
    for _ in range(5):
        assert post(client, {**BODY, "token": "wrong"}).status_code == 401
    assert post(client).status_code == 202


@override_settings(WEBHOOK_IP_ALLOWLIST=["tradingview", "10.1.0.0/16"])
def test_ip_allowlist(client: Client, make_strategy: Any) -> None:
    make_strategy()
    assert post(client, REMOTE_ADDR="52.89.214.238").status_code == 202
    assert post(client, REMOTE_ADDR="10.1.2.3").status_code == 202
    refused = post(client, REMOTE_ADDR="203.0.113.9")
    assert refused.status_code == 403 and refused.json()["code"] == "ip_not_allowed"


@override_settings(WEBHOOK_IP_ALLOWLIST=["tradingview"], TRUSTED_PROXIES=["127.0.0.1"])
def test_forwarded_for_is_trusted_only_from_configured_proxies(client: Client, make_strategy: Any) -> None:
    make_strategy()
    via_proxy = post(client, REMOTE_ADDR="127.0.0.1", HTTP_X_FORWARDED_FOR="52.32.178.7")
    assert via_proxy.status_code == 202
    assert WebhookEvent.objects.get().source_ip == "52.32.178.7"
    spoofed = post(client, REMOTE_ADDR="198.51.100.7", HTTP_X_FORWARDED_FOR="52.32.178.7")
    assert spoofed.status_code == 403
    # A client-supplied left-most entry is ignored: the proxy appends the real peer on the right.
    chained = post(client, REMOTE_ADDR="127.0.0.1", HTTP_X_FORWARDED_FOR="52.32.178.7, 198.51.100.7")
    assert chained.status_code == 403


def test_webhook_is_csrf_exempt_but_admin_is_not() -> None:
    client = Client(enforce_csrf_checks=True)
    assert client.post("/api/webhook", data="{}", content_type="application/json").status_code == 400
    assert client.post("/admin/login/", data={"username": "x", "password": "y"}).status_code == 403


def test_wrong_method_gets_the_envelope(client: Client) -> None:
    response = client.get("/api/webhook")
    assert response.status_code == 405 and response.json()["code"] == "method_not_allowed"


def test_openapi_schema_lists_the_webhook(client: Client) -> None:
    response = client.get("/api/schema/", HTTP_ACCEPT="application/vnd.oai.openapi+json")
    assert response.status_code == 200
    schema = json.loads(response.content)
    assert schema["openapi"].startswith("3.") and "/api/webhook" in schema["paths"]
    assert client.get("/api/docs/").status_code == 200
