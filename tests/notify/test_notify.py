"""Notifications end to end: orders, webhooks and feeds → outbox → Celery flush → apprise →
a local HTTP endpoint standing in for the destination (apprise's json:// scheme)."""

from __future__ import annotations

import asyncio
import json
import re
from datetime import timedelta
from decimal import Decimal
from typing import Any

import pytest
from django.contrib.auth import get_user_model
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from notify.events import emit, notifications_discard, notifications_flush
from notify.messages import batch_render
from notify.models import EventKind, Notification, NotificationDestination, NotificationState
from notify.services import FlushRetry, destination_flush, notifications_sweep
from notify.tasks import notify_flush
from orders.models import Order
from prices.health import FeedHealth
from tests.notify.conftest import Receiver, wait_until
from webhooks.models import WebhookEvent

API_KEY = "AKIA-VERY-SECRET-KEY-4242"
API_SECRET = "shhh-api-secret-9999"
BASE = "https://qt.example.com"


@pytest.fixture
def notify_settings(settings: Any) -> Any:
    settings.PUBLIC_BASE_URL = BASE
    settings.NOTIFY_BATCH_SECONDS = 0.2
    settings.NOTIFY_MIN_INTERVAL = 10.0
    settings.NOTIFY_MAX_ATTEMPTS = 8
    return settings


def destination(url: str, events: list[str] | None = None, **kw: Any) -> NotificationDestination:
    return NotificationDestination.objects.create(
        name=kw.pop("name", "ops"), url=url, events=list(EventKind.values) if events is None else events, **kw
    )


def post_webhook(orders: list[dict[str, Any]], token: str = "test-token") -> Any:
    body = {
        "group_name": "my_strategy",
        "token": token,
        "symbol": "BTC/USDT",
        "currency": "USDT",
        "orders": orders,
    }
    return Client().post("/api/webhook", data=json.dumps(body), content_type="application/json")


@pytest.fixture
def trading(make_account: Any, make_strategy: Any, publish_price: Any) -> Any:
    """A paper account holding a known API key, linked to `my_strategy`; BTC at 50,000."""
    account = make_account("paper-1", balances={"USDT": "100000"}, api_key=API_KEY, api_secret=API_SECRET)
    make_strategy(accounts=[account])
    publish_price("BINANCE:BTC/USDT", "50000")
    return account


# --- messages --------------------------------------------------------------------------------


def test_a_fill_reads_in_korean_with_the_order_link(settings: Any) -> None:
    settings.PUBLIC_BASE_URL = BASE + "/"
    fields = {
        "strategy": "demo_spot",
        "account": "paper-1",
        "symbol": "BTC/USDT",
        "side": "BUY",
        "quantity": "0.01000000",
        "price": "50000.00000000",
        "order_id": "7d0c6f0e-4a59-4c4c-9d51-7d9a0a3a1b11",
    }
    title, body = batch_render([(EventKind.ORDER_FILLED, fields)], "ko")
    assert title == "[QuantTrade] 체결"
    assert body == (
        "체결: demo_spot / paper-1 BTC/USDT 매수 0.01 @ 50,000\n"
        "https://qt.example.com/orders/7d0c6f0e-4a59-4c4c-9d51-7d9a0a3a1b11/"
    )
    title, body = batch_render([(EventKind.ORDER_FILLED, fields)], "en")
    assert title == "[QuantTrade] Filled"
    assert body.startswith("Filled: demo_spot / paper-1 BTC/USDT buy 0.01 @ 50,000\n")


def test_a_batch_lists_the_events_and_counts_what_does_not_fit() -> None:
    events = [
        (EventKind.FEED_DOWN, {"feed": f"feed-{n}", "message": "token=abc123 refused"}) for n in range(25)
    ]
    title, body = batch_render(events, "ko")
    assert title == "[QuantTrade] 알림 25건"
    lines = body.split("\n\n")
    assert lines[0] == "시세 피드 중단: feed-0 — token=*** refused"  # secrets redacted
    assert len(lines) == 21 and lines[-1] == "… 외 5건"


# --- emit -----------------------------------------------------------------------------------


@pytest.mark.django_db
def test_emit_queues_only_for_active_destinations_that_want_the_event(
    django_capture_on_commit_callbacks: Any, notify_settings: Any
) -> None:
    fills = destination("json://127.0.0.1:9/a", [EventKind.ORDER_FILLED], name="fills")
    destination("json://127.0.0.1:9/b", [EventKind.FEED_DOWN], name="feeds")
    destination("json://127.0.0.1:9/c", [EventKind.ORDER_FILLED], name="off", is_active=False)
    with django_capture_on_commit_callbacks(execute=True):
        emit(EventKind.ORDER_FILLED, strategy="s", symbol="BTC/USDT", quantity=Decimal("1.5"))
        emit("no_such_kind", strategy="s")  # logged, never raised
    row = Notification.objects.get()
    assert (row.destination, row.kind, row.fields) == (
        fills,
        "order_filled",
        {"strategy": "s", "symbol": "BTC/USDT", "quantity": "1.5"},
    )
    fills.refresh_from_db()
    assert fills.flush_due_at is not None  # one flush scheduled


@pytest.mark.django_db
def test_nothing_is_queued_when_the_callers_transaction_rolls_back(
    django_capture_on_commit_callbacks: Any, notify_settings: Any
) -> None:
    destination("json://127.0.0.1:9/a")
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        emit(EventKind.KILL_SWITCH, message="stop everything")
    assert len(callbacks) == 1 and not Notification.objects.exists()  # waits for the commit


# --- end to end, with a real worker ---------------------------------------------------------


def test_a_fill_reaches_the_destination_in_korean_without_secrets(
    celery_worker: Any, notify_settings: Any, trading: Any, receiver: Receiver, wait_orders: Any
) -> None:
    destination(receiver.url("hook/chat"))
    response = post_webhook([{"order_type": "MARKET", "side": "buy", "qty_per": 10}])
    assert response.status_code == 202, response.content
    (order,) = wait_orders(webhook_id=response.json()["webhook_id"])
    assert order.status == "filled"
    ((path, message),) = receiver.wait_for(1)
    assert path == "/hook/chat"
    assert message["title"] == "[QuantTrade] 체결"
    assert message["message"] == (
        f"체결: my_strategy / paper-1 BTC/USDT 매수 {order.filled_qty.normalize():,f} @ 50,000\n"
        f"{BASE}/orders/{order.pk}/"
    )
    raw = json.dumps(message)
    assert API_KEY not in raw and API_SECRET not in raw and "test-token" not in raw
    wait_until(lambda: not Notification.objects.exists(), what="outbox emptied")
    dest = NotificationDestination.objects.get()
    assert dest.last_ok is True and dest.next_send_at is not None


def test_five_fills_make_one_message_and_the_next_waits_for_the_interval(
    celery_worker: Any, notify_settings: Any, trading: Any, receiver: Receiver, wait_orders: Any
) -> None:
    notify_settings.NOTIFY_BATCH_SECONDS = 600.0  # the scheduled flush stays far away: we run it
    dest = destination(receiver.url(), language="en")
    response = post_webhook([{"order_type": "MARKET", "side": "buy", "qty_per": 5}] * 5)
    assert response.status_code == 202, response.content
    orders = wait_orders(webhook_id=response.json()["webhook_id"])
    assert [o.status for o in orders] == ["filled"] * 5
    wait_until(lambda: Notification.objects.count() == 5, what="five queued")
    assert receiver.messages == []  # batched: nothing sent yet
    notify_flush.delay(dest.pk)
    ((_path, message),) = receiver.wait_for(1)
    assert message["title"] == "[QuantTrade] 5 notifications"
    lines = message["message"].split("\n\n")
    assert len(lines) == 5
    assert all(line.startswith("Filled: my_strategy / paper-1 BTC/USDT buy ") for line in lines)
    assert {line.rsplit("/orders/", 1)[1].rstrip("/") for line in lines} == {str(o.pk) for o in orders}
    wait_until(lambda: not Notification.objects.exists(), what="outbox emptied")
    # Another event right after: queued for the end of the interval, not sent now.
    notify_settings.NOTIFY_BATCH_SECONDS = 0.2
    emit(EventKind.KILL_SWITCH, message="all strategies stopped")
    dest.refresh_from_db()
    assert dest.next_send_at is not None and dest.flush_due_at == dest.next_send_at
    assert dest.next_send_at > timezone.now() + timedelta(seconds=5)
    with pytest.raises(FlushRetry):  # too early: the rate limit
        destination_flush(dest.pk)
    assert len(receiver.messages) == 1 and Notification.objects.filter(kind="kill_switch").count() == 1


def test_a_destination_that_is_down_leaves_orders_untouched_and_is_retried(
    celery_worker: Any, notify_settings: Any, trading: Any, closed_port: int, wait_orders: Any
) -> None:
    notify_settings.NOTIFY_MIN_INTERVAL = 0.2  # backoff 0.2 s, 0.4 s, ...
    notify_settings.NOTIFY_MAX_ATTEMPTS = 3
    dest = destination(f"json://127.0.0.1:{closed_port}/secret-path-token-XYZ")
    response = post_webhook([{"order_type": "MARKET", "side": "buy", "qty_per": 10}])
    (order,) = wait_orders(webhook_id=response.json()["webhook_id"])
    assert order.status == "filled"
    row = wait_until(
        lambda: Notification.objects.filter(state=NotificationState.FAILED).first(),
        what="given up after retries",
    )
    assert row.attempts == 3 and row.last_error
    dest.refresh_from_db()
    assert dest.last_ok is False and "secret-path-token-XYZ" not in dest.last_result
    after = Order.objects.get(pk=order.pk)
    assert (after.status, after.filled_qty, after.message, after.updated_at) == (
        order.status,
        order.filled_qty,
        order.message,
        order.updated_at,
    )


def test_a_destination_that_comes_back_gets_what_waited(
    transactional_db: None, notify_settings: Any, receiver: Receiver, closed_port: int
) -> None:
    dest = destination(f"json://127.0.0.1:{closed_port}/x")
    emit(EventKind.RISK_LIMIT_HIT, strategy="s1", account="a1", message="daily loss limit")
    with pytest.raises(FlushRetry):  # the destination is down
        destination_flush(dest.pk)
    row = Notification.objects.get()
    assert (row.state, row.attempts) == ("pending", 1)
    # It comes back (the operator fixed the URL); the backoff has passed.
    NotificationDestination.objects.filter(pk=dest.pk).update(next_send_at=None, flush_due_at=None)
    dest.refresh_from_db()
    dest.url = receiver.url()
    dest.save()
    assert destination_flush(dest.pk) == 1
    ((_path, message),) = receiver.wait_for(1)
    assert message["message"] == "리스크 한도 도달: s1 / a1 — daily loss limit"


def test_the_sweep_schedules_a_flush_the_broker_lost(
    celery_worker: Any, notify_settings: Any, receiver: Receiver
) -> None:
    dest = destination(receiver.url())
    Notification.objects.create(destination=dest, kind=EventKind.KILL_SWITCH, fields={"message": "stop"})
    assert notifications_sweep()["rescheduled"] == 1
    ((_path, message),) = receiver.wait_for(1)
    assert message["message"] == "킬 스위치: stop"


# --- webhooks and feeds ---------------------------------------------------------------------


@pytest.mark.django_db
def test_a_refused_signal_of_a_known_strategy_is_notified_anonymous_garbage_is_not(
    django_capture_on_commit_callbacks: Any, notify_settings: Any, trading: Any
) -> None:
    destination("json://127.0.0.1:9/a")
    with django_capture_on_commit_callbacks(execute=True):
        assert post_webhook([{"order_type": "MARKET", "side": "buy"}], token="wrong").status_code == 401
        response = post_webhook([{"order_type": "MARKET", "side": "hold", "qty_per": 10}])
    assert response.status_code == 400
    row = Notification.objects.get()
    assert row.kind == "webhook_refused" and row.fields["strategy"] == "my_strategy"
    _title, body = batch_render([(row.kind, row.fields)], "ko")
    assert body.startswith("웹훅 거부: my_strategy — [")
    refused = WebhookEvent.objects.get(strategy__group_name="my_strategy")
    assert row.fields["webhook_id"] == str(refused.pk) and body.endswith(f"\n{BASE}/webhooks/{refused.pk}/")


@pytest.mark.django_db
def test_a_feed_that_goes_down_and_comes_back_is_notified_once_each_way(
    django_capture_on_commit_callbacks: Any, notify_settings: Any
) -> None:
    destination("json://127.0.0.1:9/a", [EventKind.FEED_DOWN, EventKind.FEED_UP])
    health = FeedHealth("kis")
    with django_capture_on_commit_callbacks(execute=True):
        health.tick("KRX:005930")
        health.error("ConnectionClosed: 1006")
        health.error("ConnectionClosed: 1006")  # still down: no second message
        health.error("005930: refused", down=False)
        health.tick("KRX:005930")
        health.tick("KRX:005930")
    assert [(r.kind, r.fields) for r in Notification.objects.order_by("pk")] == [
        ("feed_down", {"feed": "kis", "message": "ConnectionClosed: 1006"}),
        ("feed_up", {"feed": "kis"}),
    ]


def test_a_feed_running_in_an_event_loop_notifies_from_a_thread(
    transactional_db: None, notify_settings: Any
) -> None:
    destination("json://127.0.0.1:9/a")
    health = FeedHealth("ccxt")

    async def run() -> None:
        health.error("binance fetch_tickers: NetworkError")  # no database call in the loop

    asyncio.run(run())
    row = wait_until(lambda: Notification.objects.first(), what="feed_down queued")
    assert row.kind == "feed_down"


# --- admin ----------------------------------------------------------------------------------


@pytest.fixture
def staff(client: Client) -> Client:
    client.force_login(get_user_model().objects.create_superuser("admin", "a@example.com", "pw"))
    return client


@pytest.mark.django_db
def test_the_test_button_sends_a_message_and_the_url_is_never_shown(
    staff: Client, receiver: Receiver
) -> None:
    dest = destination(receiver.url("tok-ABCDEFGH12345"))
    page = staff.get(f"/admin/notify/notificationdestination/{dest.pk}/change/")
    assert page.status_code == 200
    html = page.content.decode()
    assert "tok-ABCDEFGH12345" not in html and "json://••••••••" in html and "테스트 알림 보내기" in html
    response = staff.post(f"/admin/notify/notificationdestination/{dest.pk}/send-test/", follow=True)
    assert "테스트 알림을 보냈습니다" in response.content.decode()
    ((path, message),) = receiver.wait_for(1)
    assert path == "/tok-ABCDEFGH12345" and message["title"] == "[QuantTrade] 테스트 알림"
    dest.refresh_from_db()
    assert dest.last_ok is True


@pytest.mark.django_db
def test_saving_with_a_blank_url_keeps_the_stored_one_and_a_bad_url_is_refused(staff: Client) -> None:
    dest = destination("json://127.0.0.1:9/keep-me")
    form = {"name": "ops", "url": "", "events": ["order_filled"], "language": "en", "is_active": "on"}
    response = staff.post(f"/admin/notify/notificationdestination/{dest.pk}/change/", form)
    assert response.status_code == 302
    dest.refresh_from_db()
    assert (dest.url, dest.events, dest.language) == ("json://127.0.0.1:9/keep-me", ["order_filled"], "en")
    response = staff.post(f"/admin/notify/notificationdestination/{dest.pk}/change/", {**form, "url": "nope"})
    assert response.status_code == 200 and "apprise URL이 올바르지 않습니다" in response.content.decode()
    add_page = staff.get("/admin/notify/notificationdestination/add/").content.decode()
    boxes = re.findall(r'<input type="checkbox" name="events"[^>]*>', add_page)
    assert len(boxes) == len(EventKind.values) and all("checked" in box for box in boxes)


@pytest.mark.django_db
def test_the_url_is_encrypted_at_rest() -> None:
    from django.db import connection

    dest = destination("tgram://123456:bot-token-secret/987")
    with connection.cursor() as cursor:
        cursor.execute("SELECT url FROM notify_notificationdestination WHERE id = %s", [dest.pk])
        (stored,) = cursor.fetchone()
    assert "bot-token-secret" not in stored


@pytest.mark.django_db
def test_the_list_action_reports_a_down_destination_without_its_url(staff: Client, closed_port: int) -> None:
    dest = destination(f"json://127.0.0.1:{closed_port}/path-token-QWERTY123")
    Notification.objects.create(destination=dest, kind=EventKind.FEED_DOWN, fields={"feed": "kis"})
    response = staff.post(
        "/admin/notify/notificationdestination/",
        {"action": "send_test", "_selected_action": [dest.pk]},
        follow=True,
    )
    html = response.content.decode()
    assert "Ops(으)로 테스트 알림 전송 실패: A Connection error" in html and "QWERTY123" not in html
    assert "QWERTY123" not in staff.get("/admin/notify/notification/").content.decode()
    dest.refresh_from_db()
    assert dest.last_ok is False


# --- which order outcome is which event -------------------------------------------------------


@pytest.mark.django_db
def test_order_outcomes_map_to_their_events(
    django_capture_on_commit_callbacks: Any, notify_settings: Any, trading: Any
) -> None:
    from live.store import live_store
    from orders.exchanges.base import OrderResult
    from orders.services import account_orders_execute, order_record, unconfirmed_message

    destination("json://127.0.0.1:9/a")
    live_store().clear()  # no price: market orders are rejected
    with django_capture_on_commit_callbacks(execute=True):
        response = post_webhook([{"order_type": "MARKET", "side": "buy", "qty_per": 10}] * 2)
    rejected, uncertain = Order.objects.filter(webhook_id=response.json()["webhook_id"]).order_by("sequence")
    with django_capture_on_commit_callbacks(execute=True):
        account_orders_execute(rejected.webhook_id, trading.pk)
    rows = list(Notification.objects.order_by("pk"))
    assert [(r.kind, r.fields["message"]) for r in rows] == [
        ("order_failed", "시세 정보가 없습니다: BINANCE:BTC/USDT"),
        ("order_failed", "시세 정보가 없습니다: BINANCE:BTC/USDT"),
    ]
    Notification.objects.all().delete()
    # A placement that could not be confirmed: its own kind, "check the venue".
    Order.objects.filter(pk=uncertain.pk).update(status="submitted", uncertain_attempt=1)
    uncertain.refresh_from_db()
    with django_capture_on_commit_callbacks(execute=True):
        order_record(uncertain, OrderResult(status="failed", message=unconfirmed_message("timeout")))
        order_record(uncertain, OrderResult(status="failed", message="again"))  # not `submitted`: no-op
    (row,) = Notification.objects.all()
    assert row.kind == "order_uncertain" and row.fields["order_id"] == str(uncertain.pk)
    _title, body = batch_render([(row.kind, row.fields)], "ko")
    assert body.startswith(
        "주문 접수 여부 불명 — 거래소에서 확인하세요: my_strategy / paper-1 BTC/USDT 매수 — "
    )


@pytest.mark.django_db
def test_an_order_cancelled_after_a_partial_fill_is_notified_as_a_fill_saying_so(
    django_capture_on_commit_callbacks: Any, notify_settings: Any, trading: Any
) -> None:
    from orders.exchanges.base import OrderResult
    from orders.services import order_record
    from quanttrade.vocabulary import LIVE_STATUSES

    destination("json://127.0.0.1:9/a")
    with django_capture_on_commit_callbacks(execute=True):
        response = post_webhook([{"order_type": "LIMIT", "side": "buy", "qty_per": 1, "price": 40000}] * 2)
    part, none = Order.objects.filter(webhook_id=response.json()["webhook_id"]).order_by("sequence")
    Order.objects.filter(pk__in=[part.pk, none.pk]).update(status="open", quantity=Decimal("0.05"))
    part.refresh_from_db()
    none.refresh_from_db()
    Notification.objects.all().delete()

    with django_capture_on_commit_callbacks(execute=True):
        order_record(
            part,
            OrderResult(status="cancelled", filled_qty=Decimal("0.02"), avg_price=Decimal("40000")),
            expect=LIVE_STATUSES,
        )
        order_record(none, OrderResult(status="cancelled"), expect=LIVE_STATUSES)

    (row,) = Notification.objects.all()  # a cancel with nothing filled tells nobody
    assert (row.kind, row.fields["order_id"], row.fields["quantity"]) == (
        "order_filled",
        str(part.pk),
        "0.02",
    )
    _title, body = batch_render([(row.kind, row.fields)], "ko")
    assert body.startswith(
        "체결: my_strategy / paper-1 BTC/USDT 매수 0.02 @ 40,000 — 일부 체결 (0.05 중 0.02), 나머지 취소"
    )


def test_orders_waiting_for_approval_are_notified_once_per_group_with_the_queue_link(
    celery_worker: Any, notify_settings: Any, make_account: Any, make_strategy: Any, receiver: Receiver
) -> None:
    account = make_account("paper-held", balances={"USDT": "100000"}, approval_required=True)
    make_strategy(accounts=[account])
    destination(receiver.url("hook/approvals"), events=[EventKind.APPROVAL_PENDING])
    response = post_webhook(
        [
            {"order_type": "LIMIT", "side": "buy", "qty_per": 10, "price": 49000},
            {"order_type": "LIMIT", "side": "sell", "qty_per": 10, "price": 52000},
        ]
    )
    assert response.status_code == 202, response.content
    assert set(Order.objects.values_list("status", flat=True)) == {"pending_approval"}
    ((path, message),) = receiver.wait_for(1)
    assert path == "/hook/approvals"
    assert message["title"] == "[QuantTrade] 승인 대기"
    assert message["message"] == (
        f"승인 대기: my_strategy / paper-held BTC/USDT 매수 10 @ 49,000 — 주문 2건 대기 중\n{BASE}/approvals/"
    )


@pytest.mark.django_db
def test_a_pause_and_a_risk_refusal_queue_their_notifications(
    make_account: Any, make_strategy: Any, django_capture_on_commit_callbacks: Any
) -> None:
    from orders.risk import Refusal, risk_limit_hit
    from webhooks.kill_switch import kill_switch_pause

    dest = destination("json://127.0.0.1:9/hook", events=[EventKind.KILL_SWITCH, EventKind.RISK_LIMIT_HIT])
    account = make_account("paper-stop", balances={"USDT": "10"})
    with django_capture_on_commit_callbacks(execute=True):
        kill_switch_pause(account, reason="too volatile", cancel_open=False, source="api")
        risk_limit_hit(Refusal("risk_limit", "최대 주문 금액 초과"), where="worker", subject="order 42")
    kinds = {n.kind: n.fields for n in Notification.objects.filter(destination=dest)}
    assert kinds[EventKind.KILL_SWITCH]["account"] == "paper-stop"
    assert "too volatile" in kinds[EventKind.KILL_SWITCH]["message"]
    assert kinds[EventKind.RISK_LIMIT_HIT]["message"] == "최대 주문 금액 초과 (order 42)"


# --- the process's copy of the kinds wanted ---------------------------------------------------


@pytest.mark.django_db
def test_an_event_nobody_wants_costs_no_query_and_a_new_destination_is_seen_at_once(
    django_assert_num_queries: Any,
) -> None:
    from notify.services import notifications_enqueue

    destination("json://127.0.0.1:9/fills", events=[EventKind.ORDER_FILLED])
    assert notifications_enqueue(EventKind.ORDER_FAILED, {"message": "x"}) == 0  # reads the kinds
    with django_assert_num_queries(0):
        assert notifications_enqueue(EventKind.ORDER_FAILED, {"message": "x"}) == 0
    wants_failures = destination(
        "json://127.0.0.1:9/failures", name="failures", events=[EventKind.ORDER_FAILED]
    )
    assert notifications_enqueue(EventKind.ORDER_FAILED, {"message": "x"}) == 1
    assert list(Notification.objects.values_list("destination_id", flat=True)) == [wants_failures.pk]
    wants_failures.is_active = False
    wants_failures.save()
    assert notifications_enqueue(EventKind.ORDER_FAILED, {"message": "x"}) == 0
    wants_failures.delete()
    assert Notification.objects.count() == 0


@pytest.mark.django_db
def test_without_a_cache_the_kinds_are_read_every_time(monkeypatch: pytest.MonkeyPatch) -> None:
    from notify import services

    monkeypatch.setattr(services.DESTINATIONS, "current", lambda: None)
    assert services.notifications_enqueue(EventKind.ORDER_FAILED, {"message": "x"}) == 0
    NotificationDestination.objects.bulk_create(  # no signal: only a fresh read can see it
        [NotificationDestination(name="bulk", url="json://127.0.0.1:9/", events=[EventKind.ORDER_FAILED])]
    )
    assert services.notifications_enqueue(EventKind.ORDER_FAILED, {"message": "x"}) == 1


# --- gathered events (NOTIFY_GATHER_SECONDS) ----------------------------------------------------
# A process gathers its events and writes them together (notify/events.py, quanttrade/gather.py):
# a fan-out's fills are one INSERT from a timer's thread instead of one read and INSERT each on
# the order threads.


def test_a_workers_fills_are_written_to_the_outbox_in_one_statement_and_reach_the_destination(
    celery_worker: Any, notify_settings: Any, trading: Any, receiver: Receiver, wait_orders: Any
) -> None:
    notify_settings.NOTIFY_GATHER_SECONDS = 60.0  # only the flush below writes them
    destination(receiver.url(), language="en")
    other = destination(receiver.url("other"), events=[EventKind.KILL_SWITCH], name="kill-only")
    response = post_webhook([{"order_type": "MARKET", "side": "buy", "qty_per": 5}] * 5)
    assert response.status_code == 202, response.content
    orders = wait_orders(webhook_id=response.json()["webhook_id"])
    assert [o.status for o in orders] == ["filled"] * 5
    assert not Notification.objects.exists()  # gathered in this process, not written yet
    with CaptureQueriesContext(connection) as queries:
        assert notifications_flush() == 5
    inserts = [q["sql"] for q in queries if q["sql"].startswith('INSERT INTO "notify_notification"')]
    assert len(inserts) == 1
    assert sorted(n.fields["order_id"] for n in Notification.objects.all()) == sorted(
        str(o.pk) for o in orders
    )
    assert not Notification.objects.filter(destination=other).exists()  # it wants none of them
    ((path, message),) = receiver.wait_for(1)
    assert path == "/hook" and message["title"] == "[QuantTrade] 5 notifications"
    assert notifications_flush() == 0  # nothing gathered: nothing written


@pytest.mark.django_db(transaction=True)
def test_the_timer_writes_what_was_gathered(notify_settings: Any) -> None:
    notify_settings.NOTIFY_GATHER_SECONDS = 0.05
    destination("json://127.0.0.1:9/unused", events=[EventKind.KILL_SWITCH, EventKind.RISK_LIMIT_HIT])
    emit(EventKind.KILL_SWITCH, message="stop")
    emit(EventKind.RISK_LIMIT_HIT, strategy="s1", message="daily loss limit")
    emit(EventKind.ORDER_FILLED, strategy="s1")  # no destination wants it
    kinds = wait_until(
        lambda: sorted(Notification.objects.values_list("kind", flat=True)) or None,
        what="written by the timer",
    )
    assert kinds == ["kill_switch", "risk_limit_hit"]
    assert NotificationDestination.objects.get().flush_due_at is not None  # its flush is scheduled


@pytest.mark.django_db
def test_events_of_a_rolled_back_transaction_are_never_gathered_and_discarded_ones_never_written(
    notify_settings: Any, django_capture_on_commit_callbacks: Any
) -> None:
    notify_settings.NOTIFY_GATHER_SECONDS = 60.0
    destination("json://127.0.0.1:9/unused")
    with django_capture_on_commit_callbacks(execute=False):
        emit(EventKind.KILL_SWITCH, message="rolled back")
    assert notifications_flush() == 0
    with django_capture_on_commit_callbacks(execute=True):
        emit(EventKind.KILL_SWITCH, message="dropped")
    notifications_discard()
    assert notifications_flush() == 0
    assert not Notification.objects.exists()
