"""The results body (GET /api/webhooks/<id>) and the pushed order shape."""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any

import pytest
from django.contrib.auth import get_user_model
from django.test import Client

from orders.models import Order
from orders.selectors import order_payload
from webhooks.models import WebhookEvent
from webhooks.selectors import overall_status, webhook_result

pytestmark = pytest.mark.django_db


def post(body: dict[str, Any]) -> Any:
    return Client().post("/api/webhook", data=json.dumps(body), content_type="application/json")


@pytest.fixture
def accepted(make_strategy: Any, make_account: Any) -> dict[str, Any]:
    make_strategy(accounts=[make_account("b-acct"), make_account("a-acct")])
    response = post(
        {
            "group_name": "my_strategy",
            "token": "test-token",
            "symbol": "BTC/USDT",
            "orders": [
                {"order_type": "LIMIT", "side": "buy", "price": "40000", "qty_per": 10},
                {"order_type": "MARKET", "side": "buy", "qty_per": 5},
            ],
            "note": "unknown field",
        }
    )
    assert response.status_code == 202, response.content
    return response.json()


@pytest.mark.parametrize(
    ("statuses", "expected"),
    [
        (["filled", "queued"], "queued"),
        (["filled", "submitted"], "processing"),
        (["filled", "open", "rejected"], "completed"),
    ],
)
def test_overall_status(statuses: list[str], expected: str) -> None:
    assert overall_status(statuses) == expected


def test_result_lists_orders_as_the_202_did_with_current_statuses(accepted: dict[str, Any]) -> None:
    event = WebhookEvent.objects.get(pk=accepted["webhook_id"])
    first = Order.objects.get(pk=accepted["orders"][0]["order_id"])
    Order.objects.filter(pk=first.pk).update(
        status="filled",
        filled_qty=Decimal("0.0200000000"),
        avg_price=Decimal("50000"),
        exchange_order_id="P1",
    )
    result = webhook_result(event)
    assert [o["order_id"] for o in result["orders"]] == [o["order_id"] for o in accepted["orders"]]
    assert result["status"] == "queued" and result["warnings"] == accepted["warnings"]
    row = result["orders"][0]
    assert (row["status"], row["filled_qty"], row["avg_price"], row["exchange_order_id"]) == (
        "filled",
        "0.02",
        "50000",
        "P1",
    )
    assert set(row) >= {
        "order_id",
        "account",
        "exchange",
        "symbol",
        "side",
        "order_type",
        "quantity",
        "message",
    }
    Order.objects.filter(webhook=event).update(status="rejected")
    assert webhook_result(event)["status"] == "completed"


def test_result_of_a_rejected_webhook_says_why(make_strategy: Any) -> None:
    make_strategy()
    response = post({"group_name": "my_strategy", "token": "wrong", "symbol": "BTC/USDT"})
    event = WebhookEvent.objects.get(outcome="rejected")
    result = webhook_result(event)
    assert result["success"] is False and result["orders"] == []
    assert (result["code"], result["http_status"]) == ("token_invalid", response.status_code)


def test_results_endpoint_needs_staff_or_token(accepted: dict[str, Any]) -> None:
    url = f"/api/webhooks/{accepted['webhook_id']}"
    assert Client().get(url).status_code in (401, 403)
    staff = Client()
    staff.force_login(get_user_model().objects.create_superuser("admin", "a@example.com", "pw"))
    assert staff.get(url).json()["webhook_id"] == accepted["webhook_id"]


def test_order_payload_is_json_safe_with_decimal_strings(accepted: dict[str, Any]) -> None:
    order = Order.objects.get(pk=accepted["orders"][0]["order_id"])
    order.quantity, order.avg_price = Decimal("1.5000000000"), None
    payload = json.loads(json.dumps(order_payload(order)))
    assert payload["quantity"] == "1.5" and payload["avg_price"] is None and payload["filled_qty"] == "0"
    assert payload["webhook_id"] == accepted["webhook_id"] and payload["updated_at"]
