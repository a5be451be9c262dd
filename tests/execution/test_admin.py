"""Admin for webhook events, orders and paper balances."""

from __future__ import annotations

from typing import Any

import pytest
from django.contrib.auth import get_user_model
from django.test import Client

from orders.models import Order, PaperBalance
from webhooks.models import WebhookEvent, WebhookOutcome

pytestmark = pytest.mark.django_db


@pytest.fixture
def staff(client: Client) -> Client:
    client.force_login(get_user_model().objects.create_superuser("admin", "a@example.com", "pw"))
    return client


@pytest.fixture
def event(make_strategy: Any) -> WebhookEvent:
    strategy = make_strategy()
    account = strategy.accounts.get()
    event = WebhookEvent.objects.create(
        strategy=strategy,
        group_name=strategy.group_name,
        payload={"group_name": strategy.group_name, "token": "***", "symbol": "BTC/USDT"},
        outcome=WebhookOutcome.ACCEPTED,
        http_status=202,
    )
    order = Order(
        webhook=event, strategy=strategy, account=account, sequence=0, market_type="SPOT", symbol="BTC/USDT"
    )
    order.client_order_id = "qt" + order.id.hex
    order.order_type, order.side, order.status, order.message = (
        "MARKET",
        "BUY",
        "rejected",
        "청산할 롱 포지션이 없습니다",
    )
    order.save()
    return event


def test_webhook_event_page_shows_the_redacted_payload_and_cannot_be_edited(
    staff: Client, event: WebhookEvent
) -> None:
    page = staff.get(f"/admin/webhooks/webhookevent/{event.pk}/change/").content.decode()
    assert "&quot;token&quot;: &quot;***&quot;" in page and "test-token" not in page
    assert 'name="_save"' not in page
    assert staff.get("/admin/webhooks/webhookevent/add/").status_code == 403


def test_orders_are_listed_and_filterable_by_status(staff: Client, event: WebhookEvent) -> None:
    rejected = staff.get("/admin/orders/order/?status__exact=rejected").content.decode()
    filled = staff.get("/admin/orders/order/?status__exact=filled").content.decode()
    assert "청산할 롱 포지션이 없습니다" in rejected and "청산할 롱 포지션이 없습니다" not in filled


def test_paper_balances_are_editable_on_the_account_page(staff: Client, make_account: Any) -> None:
    account = make_account("paper-x", balances={"USDT": "100"})
    page = staff.get(f"/admin/strategies/account/{account.pk}/change/")
    assert page.status_code == 200
    assert 'name="paper_balances-0-free"' in page.content.decode()
    assert PaperBalance.objects.get(account=account).free == 100


def test_order_page_shows_every_field_read_only(staff: Client, event: WebhookEvent) -> None:
    order = Order.objects.get(webhook=event)
    page = staff.get(f"/admin/orders/order/{order.pk}/change/")
    assert page.status_code == 200
    body = page.content.decode()
    assert order.client_order_id in body and 'name="_save"' not in body
