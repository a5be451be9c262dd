"""Semi-automatic mode: orders of approve-first strategies/accounts wait in the approval queue
and are sent once when approved, never when rejected or expired (orders/approval.py)."""

from __future__ import annotations

import json
import threading
from datetime import timedelta
from decimal import Decimal
from typing import Any

import pytest
import time_machine
from django.contrib.auth import get_user_model
from django.db import connections
from django.test import Client
from django.utils import timezone

from orders.approval import ApprovalError, approval_decide, approvals_expire
from orders.models import Order, PaperOrder
from orders.services import account_orders_execute, orders_sweep
from tests.conftest import wait_for_orders
from webhooks.models import WebhookEvent

D = Decimal
BATCH = {
    "group_name": "my_strategy",
    "token": "test-token",
    "symbol": "BTC/USDT",
    "currency": "USDT",
    "orders": [
        {"order_type": "MARKET", "side": "buy", "qty_per": 10},
        {"order_type": "LIMIT", "side": "buy", "price": "45000", "qty_per": 10},
    ],
}


def post(body: dict[str, Any]) -> dict[str, Any]:
    response = Client().post("/api/webhook", data=json.dumps(body), content_type="application/json")
    assert response.status_code == 202, response.content
    return response.json()


def staff(name: str = "admin") -> Any:
    return get_user_model().objects.create_user(name, password="pw", is_staff=True)


def staff_client(user: Any) -> Client:
    client = Client()
    client.force_login(user)
    return client


def orders_of(webhook_id: str, account: Any | None = None) -> list[Order]:
    qs = Order.objects.filter(webhook_id=webhook_id).select_related("account", "approved_by")
    if account is not None:
        qs = qs.filter(account=account)
    return list(qs.order_by("account__name", "sequence"))


@pytest.fixture
def approve_first(make_strategy: Any, make_account: Any, publish_price: Any) -> Any:
    """A strategy set to approve first, one paper account with money, a price to fill at."""
    account = make_account("acct-a", balances={"USDT": "10000"})
    make_strategy(accounts=[account], approval_required=True, approval_timeout_seconds=60)
    publish_price("BINANCE:BTC/USDT", "50000")
    return account


# --- intake: held, never dispatched or swept ----------------------------------------------------


@pytest.mark.django_db
def test_orders_of_an_approve_first_strategy_wait_and_are_not_sent(approve_first: Any) -> None:
    with time_machine.travel(timezone.now(), tick=False) as clock:
        body = post(BATCH)
        orders = orders_of(body["webhook_id"])
        assert [o.status for o in orders] == ["pending_approval", "pending_approval"]
        assert [row["status"] for row in body["orders"]] == ["pending_approval", "pending_approval"]
        assert {o.approval_expires_at for o in orders} == {timezone.now() + timedelta(seconds=60)}

        # The execution path and the sweep leave them alone, however old they get (but not expired).
        account_orders_execute(body["webhook_id"], approve_first.pk)
        Order.objects.update(updated_at=timezone.now() - timedelta(hours=1))
        clock.shift(timedelta(seconds=59))
        assert orders_sweep()["redispatched"] == 0
        assert approvals_expire() == 0
    assert PaperOrder.objects.count() == 0
    assert [o.status for o in orders_of(body["webhook_id"])] == ["pending_approval", "pending_approval"]


@pytest.mark.django_db
def test_results_api_shows_the_waiting_orders_and_then_who_approved(approve_first: Any) -> None:
    user = staff("alice")
    webhook_id = post(BATCH)["webhook_id"]
    client = staff_client(user)
    waiting = client.get(f"/api/webhooks/{webhook_id}").json()
    assert waiting["status"] == "pending_approval"
    assert [o["status"] for o in waiting["orders"]] == ["pending_approval"] * 2
    assert waiting["orders"][0]["approved_by"] is None and waiting["orders"][0]["approval_expires_at"]

    assert approval_decide(webhook_id, approve_first.pk, user, approve=True) == 2
    account_orders_execute(webhook_id, approve_first.pk)
    done = client.get(f"/api/webhooks/{webhook_id}").json()
    assert done["status"] == "completed"
    assert [(o["order_type"], o["status"]) for o in done["orders"]] == [
        ("MARKET", "filled"),
        ("LIMIT", "open"),
    ]
    assert {o["approved_by"] for o in done["orders"]} == {"alice"}
    assert all(o["approved_at"] for o in done["orders"])


# --- decisions --------------------------------------------------------------------------------


@pytest.mark.django_db
def test_approval_queues_the_whole_batch_in_sequence_and_records_who_and_when(approve_first: Any) -> None:
    user = staff()
    webhook_id = post(BATCH)["webhook_id"]
    at = timezone.now()
    with time_machine.travel(at, tick=False):
        assert approval_decide(webhook_id, approve_first.pk, user, approve=True) == 2
    orders = orders_of(webhook_id)
    assert [(o.sequence, o.status, o.approved_by, o.approved_at) for o in orders] == [
        (0, "queued", user, at),
        (1, "queued", user, at),
    ]
    account_orders_execute(webhook_id, approve_first.pk)
    assert [o.status for o in orders_of(webhook_id)] == ["filled", "open"]
    assert PaperOrder.objects.count() == 2
    with pytest.raises(ApprovalError) as again:  # a second approval finds nothing waiting
        approval_decide(webhook_id, approve_first.pk, user, approve=True)
    assert again.value.code == "not_pending"


@pytest.mark.django_db
def test_a_rejected_group_is_cancelled_with_who_rejected_and_never_sent(approve_first: Any) -> None:
    user = staff("bob")
    webhook_id = post(BATCH)["webhook_id"]
    assert approval_decide(webhook_id, approve_first.pk, user, approve=False) == 2
    orders = orders_of(webhook_id)
    assert [o.status for o in orders] == ["cancelled", "cancelled"]
    assert orders[0].message == "bob 님이 승인 거부: 주문을 전송하지 않았습니다"
    assert orders[0].approved_by is None and orders[0].approved_at is None
    account_orders_execute(webhook_id, approve_first.pk)
    Order.objects.update(updated_at=timezone.now() - timedelta(hours=1))
    assert orders_sweep()["redispatched"] == 0
    with pytest.raises(ApprovalError):
        approval_decide(webhook_id, approve_first.pk, user, approve=True)
    assert PaperOrder.objects.count() == 0
    assert [o.status for o in orders_of(webhook_id)] == ["cancelled", "cancelled"]


@pytest.mark.django_db
def test_expiry_drops_the_group_after_the_strategy_timeout_with_a_clear_message(approve_first: Any) -> None:
    start = timezone.now()
    with time_machine.travel(start, tick=False) as clock:
        webhook_id = post(BATCH)["webhook_id"]
        clock.shift(timedelta(seconds=59))
        assert approvals_expire() == 0
        clock.shift(timedelta(seconds=1))
        assert approvals_expire() == 2
        assert approvals_expire() == 0
    orders = orders_of(webhook_id)
    assert [o.status for o in orders] == ["cancelled", "cancelled"]
    assert orders[0].message == "승인 대기 시간 초과 (60초): 주문을 전송하지 않았습니다"
    with pytest.raises(ApprovalError) as late:
        approval_decide(webhook_id, approve_first.pk, staff(), approve=True)
    assert late.value.code == "not_pending"
    account_orders_execute(webhook_id, approve_first.pk)
    assert PaperOrder.objects.count() == 0


@pytest.mark.django_db
def test_an_approval_after_the_deadline_expires_the_group_instead_of_sending(approve_first: Any) -> None:
    start = timezone.now()
    with time_machine.travel(start, tick=False) as clock:
        webhook_id = post(BATCH)["webhook_id"]
        clock.shift(timedelta(seconds=61))  # the expiry pass has not run yet
        with pytest.raises(ApprovalError) as late:
            approval_decide(webhook_id, approve_first.pk, staff(), approve=True)
    assert late.value.code == "expired" and "승인 대기 시간 초과" in late.value.message
    assert [o.status for o in orders_of(webhook_id)] == ["cancelled", "cancelled"]  # committed
    account_orders_execute(webhook_id, approve_first.pk)
    assert PaperOrder.objects.count() == 0


@pytest.mark.django_db
def test_the_timeout_is_per_strategy(make_strategy: Any, make_account: Any) -> None:
    account = make_account("acct-a", balances={"USDT": "10000"})
    make_strategy(accounts=[account], approval_required=True, approval_timeout_seconds=5)
    with time_machine.travel(timezone.now(), tick=False) as clock:
        webhook_id = post(BATCH)["webhook_id"]
        clock.shift(timedelta(seconds=5))
        assert approvals_expire() == 2
    assert "(5초)" in orders_of(webhook_id)[0].message


@pytest.mark.django_db
def test_a_later_timeout_change_keeps_the_deadline_the_order_arrived_with(approve_first: Any) -> None:
    from strategies.models import Strategy

    with time_machine.travel(timezone.now(), tick=False) as clock:
        webhook_id = post(BATCH)["webhook_id"]
        Strategy.objects.update(approval_timeout_seconds=5)
        clock.shift(timedelta(seconds=30))
        assert approvals_expire() == 0
        clock.shift(timedelta(seconds=30))
        assert approvals_expire() == 2
    assert "(60초)" in orders_of(webhook_id)[0].message


# --- concurrency: two staff users approve at the same moment ----------------------------------


@pytest.mark.django_db(transaction=True)
def test_two_concurrent_approvals_send_the_group_exactly_once(approve_first: Any) -> None:
    webhook_id = post(BATCH)["webhook_id"]
    users = [staff("alice"), staff("bob")]
    barrier = threading.Barrier(2)
    results: dict[str, Any] = {}

    def decide(user: Any) -> None:
        try:
            barrier.wait(timeout=5)
            results[user.username] = approval_decide(webhook_id, approve_first.pk, user, approve=True)
        except ApprovalError as error:
            results[user.username] = error.code
        finally:
            connections.close_all()

    threads = [threading.Thread(target=decide, args=(user,)) for user in users]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(15)
    assert sorted(results.values(), key=str) == [2, "not_pending"]
    winner = next(name for name, value in results.items() if value == 2)
    orders = orders_of(webhook_id)
    # Queued, or already on its way when a worker of an earlier test is still consuming.
    assert {o.approved_by.username for o in orders} == {winner}
    assert {o.status for o in orders} <= {"queued", "submitted", "open", "filled"}
    # Even if the account's task ran twice (a repeated dispatch), each order is placed once.
    account_orders_execute(webhook_id, approve_first.pk)
    account_orders_execute(webhook_id, approve_first.pk)
    wait_for_orders(webhook_id=webhook_id)
    assert PaperOrder.objects.count() == 2


@pytest.mark.django_db(transaction=True)
def test_approve_and_reject_at_the_same_moment_one_wins_for_the_whole_batch(approve_first: Any) -> None:
    webhook_id = post(BATCH)["webhook_id"]
    alice, bob = staff("alice"), staff("bob")
    barrier = threading.Barrier(2)
    results: dict[str, Any] = {}

    def decide(user: Any, approve: bool) -> None:
        try:
            barrier.wait(timeout=5)
            results[user.username] = approval_decide(webhook_id, approve_first.pk, user, approve=approve)
        except ApprovalError as error:
            results[user.username] = error.code
        finally:
            connections.close_all()

    threads = [
        threading.Thread(target=decide, args=(alice, True)),
        threading.Thread(target=decide, args=(bob, False)),
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(15)
    assert sorted(results.values(), key=str) == [2, "not_pending"]
    statuses = {o.status for o in orders_of(webhook_id)}
    # Approved orders are queued, or already on their way when a worker of an earlier test runs.
    sent = {"queued", "submitted", "open", "filled"}
    assert (statuses <= sent) if results["alice"] == 2 else (statuses == {"cancelled"})


# --- fan-out: one account needs approval, the other trades at once ------------------------------


def test_mixed_fan_out_sends_the_free_account_at_once_and_holds_the_other(
    celery_worker: Any, make_strategy: Any, make_account: Any, publish_price: Any, wait_orders: Any
) -> None:
    free = make_account("acct-free", balances={"USDT": "10000"})
    held = make_account("acct-held", balances={"USDT": "10000"}, approval_required=True)
    make_strategy(accounts=[free, held])
    publish_price("BINANCE:BTC/USDT", "50000")
    webhook_id = post(BATCH)["webhook_id"]

    assert [o.status for o in wait_orders(webhook_id=webhook_id, account=free)] == ["filled", "open"]
    assert [o.status for o in orders_of(webhook_id, held)] == ["pending_approval", "pending_approval"]
    assert not PaperOrder.objects.filter(account=held).exists()

    user = staff()
    assert approval_decide(webhook_id, held.pk, user, approve=True) == 2
    orders = wait_orders(webhook_id=webhook_id, account=held)
    assert [(o.status, o.approved_by_id) for o in orders] == [("filled", user.pk), ("open", user.pk)]
    assert PaperOrder.objects.filter(account=held).count() == 2
    assert WebhookEvent.objects.get(pk=webhook_id).outcome == "accepted"


# --- the queue page -----------------------------------------------------------------------------


@pytest.mark.django_db
def test_the_queue_page_shows_the_signal_qty_per_and_last_price_to_staff_only(approve_first: Any) -> None:
    webhook_id = post(BATCH)["webhook_id"]
    user = staff()
    page = staff_client(user).get("/approvals/")
    assert page.status_code == 200
    html = page.content.decode()
    assert f'data-group="{webhook_id}-{approve_first.pk}"' in html
    assert "acct-a" in html and "BINANCE:BTC/USDT" in html
    # every digit, grouped as every page shows numbers
    assert '<strong class="mono a-last-price">50,000</strong>' in html
    assert "test-token" not in html  # the signal is shown with its token hidden
    assert html.count('data-status="pending_approval"') == 2

    outsider = get_user_model().objects.create_user("viewer", password="pw")
    assert staff_client(outsider).get("/approvals/").status_code == 403
    assert Client().get("/approvals/").status_code == 302  # to the login page


@pytest.mark.django_db
def test_approving_from_the_page_needs_csrf_and_the_dialogs_confirmation(approve_first: Any) -> None:
    webhook_id = post(BATCH)["webhook_id"]
    user = staff()
    url = f"/approvals/{webhook_id}/{approve_first.pk}/approve/"

    strict = Client(enforce_csrf_checks=True)
    strict.force_login(user)
    assert strict.post(url, {"confirm": "1"}).status_code == 403  # no CSRF token

    client = staff_client(user)
    assert client.get(url).status_code == 405
    client.post(url)  # no confirmation: nothing happens
    assert {o.status for o in orders_of(webhook_id)} == {"pending_approval"}
    response = client.post(url, {"confirm": "1"}, follow=True)
    assert "승인: 주문 2건을 거래소로 전송합니다." in response.content.decode()
    assert {o.status for o in orders_of(webhook_id)} == {"queued"}
    again = client.post(url, {"confirm": "1"}, follow=True).content.decode()
    assert "승인 대기 중인 주문이 아닙니다" in again
    assert client.post(f"/approvals/{webhook_id}/{approve_first.pk}/maybe/").status_code == 404


@pytest.mark.django_db
def test_the_card_of_a_decided_group_is_gone(approve_first: Any) -> None:
    webhook_id = post(BATCH)["webhook_id"]
    client = staff_client(staff())
    card = f"/approvals/{webhook_id}/{approve_first.pk}/"
    assert client.get(card).status_code == 200
    client.post(card + "reject/")
    assert client.get(card).status_code == 204
    assert "승인을 기다리는 주문이 없습니다." in client.get("/approvals/").content.decode()


@pytest.mark.django_db
def test_a_stock_order_shows_its_estimated_quantity_and_value(
    make_strategy: Any, make_account: Any, publish_price: Any
) -> None:
    account = make_account("acct-kr")
    make_strategy(accounts=[account], market_type="DOMESTIC_STOCK", approval_required=True)
    publish_price("005930", "71000")
    post(
        {
            "group_name": "my_strategy",
            "token": "test-token",
            "symbol": "005930",
            "side": "buy",
            "order_type": "MARKET",
            "qty_per": 3,
        }
    )
    html = staff_client(staff()).get("/approvals/").content.decode()
    assert '<td class="num mono">3</td>' in html  # est. quantity = the shares asked for
    assert '<td class="num mono">213,000</td>' in html  # 3 x the last price


# --- where approval is switched on, and who expires it in embedded mode -------------------------


@pytest.mark.django_db
def test_the_admin_offers_approval_on_strategies_and_accounts(make_strategy: Any, make_account: Any) -> None:
    from django.contrib import admin
    from django.template.response import TemplateResponse
    from django.test import RequestFactory

    from strategies.models import Account, Strategy

    account = make_account("acct-a")
    strategy = make_strategy(accounts=[account])
    request = RequestFactory().get("/admin/")
    request.user = get_user_model().objects.create_superuser("root", "root@example.com", "pw")
    pages = {
        model: admin.site._registry[model].change_view(request, str(obj.pk))
        for model, obj in ((Strategy, strategy), (Account, account))
    }
    html = {}
    for model, response in pages.items():
        assert isinstance(response, TemplateResponse)
        html[model] = response.render().content.decode()
    assert (
        'name="approval_required"' in html[Strategy] and 'name="approval_timeout_seconds"' in html[Strategy]
    )
    assert 'name="approval_required"' in html[Account]


@pytest.mark.django_db(transaction=True)
def test_the_embedded_periodic_loop_expires_waiting_orders(approve_first: Any) -> None:
    import time

    from quanttrade.management.commands.serve import PeriodicLoop

    webhook_id = post(BATCH)["webhook_id"]
    Order.objects.update(approval_expires_at=timezone.now() - timedelta(seconds=1))
    loop = PeriodicLoop()
    loop.start()
    try:
        deadline = time.monotonic() + 15
        while {o.status for o in orders_of(webhook_id)} != {"cancelled"}:
            assert time.monotonic() < deadline, [o.status for o in orders_of(webhook_id)]
            time.sleep(0.05)
    finally:
        loop.stop()
    assert "승인 대기 시간 초과" in orders_of(webhook_id)[0].message
    assert PaperOrder.objects.count() == 0


@pytest.mark.django_db
def test_the_order_page_links_a_waiting_order_to_the_queue_and_then_names_its_approver(
    approve_first: Any,
) -> None:
    webhook_id = post(BATCH)["webhook_id"]
    user = staff("alice")
    client = staff_client(user)
    order = orders_of(webhook_id)[0]
    waiting = client.get(f"/orders/{order.pk}/").content.decode()
    assert "승인 대기" in waiting and 'href="/approvals/"' in waiting
    assert "승인 대기" in client.get("/orders/?status=pending_approval").content.decode()
    assert str(order.pk) in client.get("/orders/?status=pending_approval").content.decode()
    approval_decide(webhook_id, approve_first.pk, user, approve=True)
    approved = client.get(f"/orders/{order.pk}/").content.decode()
    assert '<dd class="o-approved">alice · ' in approved
