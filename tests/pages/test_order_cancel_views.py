"""The cancel actions of the pages through Django's test client, against the paper venue:
one order (/orders/<id>/cancel/), every open order of an account (/accounts/<pk>/cancel-all/),
and the buttons and partial that lead to them."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.template.loader import render_to_string
from django.test import Client, RequestFactory

from orders.models import Order, PaperOrder
from orders.pages import account_open_orders
from orders.services import account_orders_execute
from quanttrade.vocabulary import OrderStatus
from strategies.models import Account
from tests.execution.test_execution import make_orders


@pytest.fixture
def staff_client(db: None) -> Client:
    client = Client()
    client.force_login(User.objects.create_user("boss", password="pw-123456", is_staff=True))
    return client


@pytest.fixture
def paper(make_account: Callable[..., Account]) -> Account:
    return make_account(balances={"USDT": "10000"})


@pytest.fixture
def resting(paper: Account, make_strategy: Callable[..., Any]) -> Callable[..., Order]:
    """resting(price): a paper LIMIT buy placed through the real execution path (it rests)."""
    strategy = make_strategy(accounts=[paper])

    def make(price: int = 100, symbol: str = "BTC/USDT") -> Order:
        event = make_orders(
            strategy,
            [paper],
            [{"side": "BUY", "order_type": "LIMIT", "qty_per": 1, "price": price, "symbol": symbol}],
            symbol=symbol,
        )
        account_orders_execute(event.id, paper.pk)
        order = Order.objects.get(webhook=event)
        assert order.status == OrderStatus.OPEN
        return order

    return make


def test_a_confirmed_cancel_cancels_the_order_and_goes_back(staff_client: Client, resting: Any) -> None:
    order = resting()

    response = staff_client.post(f"/orders/{order.pk}/cancel/", {"confirm": "1", "next": "/orders/"})

    assert (response.status_code, response["Location"]) == (302, "/orders/")
    assert Order.objects.get(pk=order.pk).status == OrderStatus.CANCELLED
    assert PaperOrder.objects.get(client_order_id=order.client_order_id).status == OrderStatus.CANCELLED
    page = staff_client.get("/orders/").content.decode()
    assert "주문을 취소했습니다" in page


def test_a_cancel_without_confirmation_cancels_nothing(staff_client: Client, resting: Any) -> None:
    order = resting()

    response = staff_client.post(f"/orders/{order.pk}/cancel/", follow=True)

    assert Order.objects.get(pk=order.pk).status == OrderStatus.OPEN
    assert "먼저 확인 창에서 취소를 확인하세요" in response.content.decode()


def test_cancel_goes_back_only_to_this_site(staff_client: Client, resting: Any) -> None:
    order = resting()

    response = staff_client.post(
        f"/orders/{order.pk}/cancel/", {"confirm": "1", "next": "https://evil.example/"}
    )

    assert response["Location"] == f"/orders/{order.pk}/"


def test_cancel_of_a_finished_order_says_why(staff_client: Client, resting: Any) -> None:
    order = resting()
    staff_client.post(f"/orders/{order.pk}/cancel/", {"confirm": "1"})

    response = staff_client.post(f"/orders/{order.pk}/cancel/", {"confirm": "1"}, follow=True)

    assert "미체결 주문만 취소할 수 있습니다" in response.content.decode()


@pytest.mark.parametrize("path", ["/orders/{order}/cancel/", "/accounts/{account}/cancel-all/"])
def test_cancel_actions_are_staff_csrf_protected_posts(
    db: None, resting: Any, paper: Account, path: str
) -> None:
    order = resting()
    url = path.format(order=order.pk, account=paper.pk)
    viewer = Client()
    viewer.force_login(User.objects.create_user("viewer", password="x"))
    assert viewer.post(url, {"confirm": "1"}).status_code == 403
    assert Client().post(url, {"confirm": "1"}).status_code == 302  # to the login page
    staff = Client(enforce_csrf_checks=True)
    staff.force_login(User.objects.create_user("boss2", password="x", is_staff=True))
    assert staff.post(url, {"confirm": "1"}).status_code == 403
    assert staff.get(url).status_code == 405
    assert Order.objects.get(pk=order.pk).status == OrderStatus.OPEN


def test_account_cancel_all_cancels_every_open_order(
    staff_client: Client, resting: Any, paper: Account
) -> None:
    orders = [resting(100), resting(200), resting(50, symbol="ETH/USDT")]

    response = staff_client.post(f"/accounts/{paper.pk}/cancel-all/", {"confirm": "1"}, follow=True)

    assert {Order.objects.get(pk=o.pk).status for o in orders} == {OrderStatus.CANCELLED}
    assert "미체결 주문 3건을 취소했습니다" in response.content.decode()
    assert response.redirect_chain[0][0] == f"/orders/?account={paper.pk}"


def test_order_list_and_detail_offer_a_cancel_for_open_orders_only(
    staff_client: Client, resting: Any
) -> None:
    open_order, cancelled = resting(100), resting(200)
    staff_client.post(f"/orders/{cancelled.pk}/cancel/", {"confirm": "1"})

    listing = staff_client.get("/orders/").content.decode()
    assert f'action="/orders/{open_order.pk}/cancel/"' in listing
    assert f'action="/orders/{cancelled.pk}/cancel/"' not in listing
    assert (
        f'action="/orders/{open_order.pk}/cancel/"'
        in staff_client.get(f"/orders/{open_order.pk}/").content.decode()
    )
    assert "/cancel/" not in staff_client.get(f"/orders/{cancelled.pk}/").content.decode()


def test_the_open_orders_partial_lists_them_with_their_cancels(resting: Any, paper: Account) -> None:
    orders = [resting(100), resting(50, symbol="ETH/USDT")]
    request = RequestFactory().get("/accounts/1/")
    request.user = User.objects.create_user("boss3", password="x", is_staff=True)

    html = render_to_string(
        "pages/_account_open_orders.html",
        {"account": paper, "open_orders": account_open_orders(paper)},
        request=request,
    )

    for order in orders:
        assert f'action="/orders/{order.pk}/cancel/"' in html
    assert f'action="/accounts/{paper.pk}/cancel-all/"' in html
    assert 'name="next" value="/accounts/1/"' in html
    assert "BTC/USDT" in html and "ETH/USDT" in html
