"""The guide's 45 scenarios end to end: HTTP POST -> real Celery worker -> paper venue -> final
Order status, with the price layer holding the instrument's price (SPEC §2, issue 2)."""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any

import pytest
from django.test import Client

from orders.models import PaperBalance, PaperPosition
from prices.records import instrument_for
from quanttrade.vocabulary import OrderStatus
from tests.webhook.scenarios import ALL

BALANCES = {
    "USDT": "1000000",
    "BTC": "10",
    "ETH": "100",
    "KRW": "10000000000",
    "USD": "10000000",
    "HKD": "10000000",
    "JPY": "1000000000",
    "VND": "1000000000000",
    "EUR": "10000000",
    "GBP": "10000000",
}
REFERENCE = {"BTC/USDT": "100000", "ETH/USDT": "3000", "BTC/KRW": "140000000"}


def market_price(fields: dict[str, Any]) -> Decimal:
    """A price at which LIMIT/STOP orders rest (do not cross) and MARKET orders fill."""
    side = str(fields.get("side", "buy")).lower()
    buying = side in ("buy", "long")
    if "price" in fields:
        return Decimal(str(fields["price"])) * (Decimal("1.05") if buying else Decimal("0.95"))
    if "stop_price" in fields:
        return Decimal(str(fields["stop_price"])) * (Decimal("0.95") if buying else Decimal("1.05"))
    return Decimal(REFERENCE.get(fields.get("symbol", ""), "100"))


def expected_status(order_type: str, fields: dict[str, Any]) -> str:
    if order_type == "CANCEL_ALL_ORDER":
        return OrderStatus.CANCELLED
    if order_type in ("MARKET", "BEST_LIMIT") or ("price" not in fields and "stop_price" not in fields):
        return OrderStatus.FILLED
    return OrderStatus.OPEN


@pytest.mark.parametrize(("market_type", "fields", "expected"), [s[1:] for s in ALL], ids=[s[0] for s in ALL])
def test_scenario_executes_on_a_paper_account(
    client: Client,
    celery_worker: Any,
    make_strategy: Any,
    make_account: Any,
    publish_price: Any,
    wait_orders: Any,
    market_type: str,
    fields: dict[str, Any],
    expected: dict[str, Any],
) -> None:
    account = make_account("paper-e2e", balances=BALANCES)
    make_strategy(group_name="scenario", market_type=market_type, token="tok", accounts=[account])
    symbol = fields.get("symbol", "")
    if symbol:
        publish_price(instrument_for(market_type, symbol, params=fields.get("params")), market_price(fields))
    if market_type in ("DOMESTIC_STOCK", "OVERSEAS_STOCK") and str(fields.get("side")) == "sell":
        PaperPosition.objects.create(
            account=account,
            symbol=symbol,
            market_type=market_type,
            quantity=Decimal(1000),
            entry_price=market_price(fields),
            currency="KRW",
        )
    if fields.get("qty_per") == -100:  # closing a long futures position needs one
        PaperPosition.objects.create(
            account=account,
            symbol=symbol,
            market_type=market_type,
            quantity=Decimal("0.5"),
            entry_price=Decimal("90000"),
            currency="USDT",
        )

    response = client.post(
        "/api/webhook",
        data=json.dumps({"group_name": "scenario", "token": "tok", **fields}),
        content_type="application/json",
    )
    assert response.status_code == 202, response.json()
    [order] = wait_orders(webhook_id=response.json()["webhook_id"], timeout=20)
    want = expected_status(expected["order_type"], fields)
    assert order.status == want, (order.status, order.message)
    if want == OrderStatus.FILLED:
        assert order.filled_qty > 0 and order.avg_price == market_price(fields)
    if want == OrderStatus.CANCELLED:
        assert order.message == "취소할 미체결 주문이 없습니다" and order.cancelled_orders == 0
    if fields.get("qty_per") == -100:
        assert order.filled_qty == Decimal("0.5")
        assert PaperPosition.objects.get(account=account, symbol=symbol).quantity == 0
    assert PaperBalance.objects.filter(account=account, free__lt=0).count() == 0


def test_results_api_reports_final_statuses(
    client: Client,
    admin_client: Client,
    celery_worker: Any,
    make_strategy: Any,
    make_account: Any,
    publish_price: Any,
    wait_orders: Any,
) -> None:
    a = make_account("a", balances={"USDT": "100000"})
    b = make_account("b", balances={"USDT": "0"})
    make_strategy(accounts=[a, b])
    publish_price("BINANCE:BTC/USDT", "50000")
    body = {
        "group_name": "my_strategy",
        "token": "test-token",
        "symbol": "BTC/USDT",
        "order_type": "MARKET",
        "side": "buy",
        "qty_per": 10,
    }
    accepted = client.post("/api/webhook", data=json.dumps(body), content_type="application/json").json()
    wait_orders(webhook_id=accepted["webhook_id"])
    result = admin_client.get(f"/api/webhooks/{accepted['webhook_id']}").json()
    assert result["webhook_id"] == accepted["webhook_id"] and result["strategy"] == "my_strategy"
    rows = {row["account"]: row for row in result["orders"]}
    assert (
        rows["a"]["status"] == "filled"
        and rows["a"]["avg_price"] == "50000"
        and rows["a"]["filled_qty"] == "0.2"
    )
    assert rows["b"]["status"] == "rejected" and "USDT" in rows["b"]["message"]
    assert [row["order_id"] for row in result["orders"]] == [row["order_id"] for row in accepted["orders"]]


def test_results_api_requires_staff_or_api_token(
    client: Client, make_strategy: Any, django_user_model: Any
) -> None:
    from access.services import api_token_create

    make_strategy()
    body = {"group_name": "my_strategy", "token": "test-token", "order_type": "CANCEL_ALL_ORDER"}
    webhook_id = client.post("/api/webhook", data=json.dumps(body), content_type="application/json").json()[
        "webhook_id"
    ]
    url = f"/api/webhooks/{webhook_id}"
    anonymous = client.get(url)
    assert anonymous.status_code == 401 and anonymous.json()["code"] == "not_authenticated"
    user = django_user_model.objects.create_user("viewer", password="x")
    client.force_login(user)
    assert client.get(url).status_code == 403
    client.logout()
    staff = django_user_model.objects.create_user("ops", password="x", is_staff=True)
    key = api_token_create(staff)[1]
    assert client.get(url, HTTP_AUTHORIZATION=f"Token {key}").status_code == 200
    assert client.get(url, HTTP_AUTHORIZATION="Token wrong").status_code == 401
    missing = client.get(
        "/api/webhooks/00000000-0000-0000-0000-000000000000", HTTP_AUTHORIZATION=f"Token {key}"
    )
    assert missing.status_code == 404 and missing.json()["code"] == "not_found"
