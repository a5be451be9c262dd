"""Page details through Django's test client: the header's order count, the pager's wording,
one number format and 24-hour times, rows that open their detail."""

from __future__ import annotations

import re
from collections.abc import Callable
from decimal import Decimal
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.test import Client

from orders.models import Order
from quanttrade.vocabulary import OrderStatus
from strategies.models import Strategy
from tests.execution.test_execution import make_orders


@pytest.fixture
def staff_client(db: None) -> Client:
    client = Client()
    client.force_login(User.objects.create_user("boss", password="pw-123456", is_staff=True))
    return client


def orders_with(strategy: Strategy, count: int, **fields: Any) -> list[Order]:
    event = make_orders(strategy, list(strategy.accounts.all()), [{"side": "BUY"}] * count)
    orders = list(Order.objects.filter(webhook=event))
    Order.objects.filter(webhook=event).update(**fields)
    return orders


def test_the_header_counts_orders_in_progress_for_staff(
    staff_client: Client, make_strategy: Callable[..., Strategy]
) -> None:
    strategy = make_strategy()
    orders_with(strategy, 2, status=OrderStatus.OPEN)
    orders_with(strategy, 1, status=OrderStatus.QUEUED)
    orders_with(strategy, 3, status=OrderStatus.FILLED)

    html = staff_client.get("/").content.decode()

    assert re.search(r'id="nav-order-count" data-count="3"[^>]*>3</span>', html)
    assert staff_client.get("/orders/count/").json() == {"in_progress": 3}


def test_the_header_count_is_staff_only(db: None, make_strategy: Callable[..., Strategy]) -> None:
    orders_with(make_strategy(), 1, status=OrderStatus.OPEN)
    viewer = Client()
    viewer.force_login(User.objects.create_user("viewer", password="x"))
    assert "nav-order-count" not in viewer.get("/").content.decode()
    assert viewer.get("/orders/count/").status_code == 403


def test_the_pager_reads_as_a_korean_pager(
    staff_client: Client, make_strategy: Callable[..., Strategy]
) -> None:
    orders_with(make_strategy(), 60)

    first = staff_client.get("/orders/").content.decode()
    second = staff_client.get("/orders/?page=2").content.decode()

    assert "1 / 2 페이지" in first and "다음 페이지 →" in first and "이전 페이지" not in first
    assert "2 / 2 페이지" in second and "← 이전 페이지" in second and "다음 페이지" not in second
    english = staff_client.get("/orders/?page=2", HTTP_ACCEPT_LANGUAGE="en").content.decode()
    assert "Page 2 of 2" in english and "← Newer" in english


def test_order_numbers_are_grouped_like_the_live_updates(
    staff_client: Client, make_strategy: Callable[..., Strategy]
) -> None:
    (order,) = orders_with(
        make_strategy(),
        1,
        status=OrderStatus.FILLED,
        avg_price=Decimal("65000.5000000000"),
        filled_qty=Decimal("1234.5"),
        quantity=Decimal("-1234.5"),
    )

    listing = staff_client.get("/orders/").content.decode()
    detail = staff_client.get(f"/orders/{order.pk}/").content.decode()

    assert ">65,000.5<" in listing and ">1,234.5<" in listing
    assert ">65,000.5<" in detail and ">-1,234.5<" in detail


def test_times_are_24_hour_in_the_server_zone(
    staff_client: Client, make_strategy: Callable[..., Strategy]
) -> None:
    (order,) = orders_with(make_strategy(), 1)
    Order.objects.filter(pk=order.pk).update(created_at="2026-12-01T05:07:09Z")  # 14:07:09 KST

    listing = staff_client.get("/orders/").content.decode()
    page = staff_client.get("/").content.decode()

    assert '<span class="t">14:07:09</span>' in listing
    assert 'data-time-zone="Asia/Seoul"' in page


def test_rows_and_log_entries_open_their_detail(
    staff_client: Client, make_strategy: Callable[..., Strategy]
) -> None:
    (order,) = orders_with(make_strategy(), 1)

    listing = staff_client.get("/orders/").content.decode()
    log = staff_client.get("/webhooks/").content.decode()

    assert f'data-href="/orders/{order.pk}/"' in listing
    assert f'data-href="/webhooks/{order.webhook_id}/"' in log
