"""The guide's 45 scenarios are all accepted and normalized exactly (intake side)."""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any

import pytest
from django.test import Client

from orders.models import Order
from tests.webhook.scenarios import ALL

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize(("market_type", "fields", "expected"), [s[1:] for s in ALL], ids=[s[0] for s in ALL])
def test_scenario_is_accepted_and_normalized(
    client: Client, make_strategy: Any, market_type: str, fields: dict[str, Any], expected: dict[str, Any]
) -> None:
    make_strategy(group_name="scenario", market_type=market_type, token="tok")
    body = {"group_name": "scenario", "token": "tok", **fields}
    response = client.post("/api/webhook", data=json.dumps(body), content_type="application/json")
    assert response.status_code == 202, response.json()
    assert response.json()["warnings"] == []
    order = Order.objects.get()
    assert order.market_type == market_type
    assert order.symbol == fields.get("symbol", "")
    assert order.order_type == expected["order_type"] and order.side == expected["side"]
    assert order.qty_per == (Decimal(expected["qty_per"]) if expected["qty_per"] else None)
    assert order.price == (Decimal(expected["price"]) if expected["price"] else None)
    assert order.stop_price == (Decimal(expected["stop_price"]) if expected["stop_price"] else None)
    assert order.params == fields.get("params", {})
