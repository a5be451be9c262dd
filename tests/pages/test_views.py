"""The web pages through Django's test client: access, content, filters and the POST actions."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from datetime import timedelta
from decimal import Decimal
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.test import Client
from django.utils import timezone

from orders.models import Order
from quanttrade.vocabulary import OrderStatus
from strategies.models import Account, Strategy
from webhooks.models import WebhookEvent


@pytest.fixture
def staff_client(db: None) -> Client:
    user = User.objects.create_user("boss", password="pw-123456", is_staff=True, is_superuser=True)
    client = Client()
    client.force_login(user)
    return client


@pytest.fixture
def user_client(db: None) -> Client:
    user = User.objects.create_user("viewer", password="pw-123456")
    client = Client()
    client.force_login(user)
    return client


def _event(strategy: Strategy | None = None, **kw: Any) -> WebhookEvent:
    fields: dict[str, Any] = {
        "strategy": strategy,
        "group_name": strategy.group_name if strategy else "ghost",
        "payload": {"group_name": strategy.group_name if strategy else "ghost", "token": "***"},
        "outcome": "accepted",
        "http_status": 202,
    }
    fields.update(kw)
    return WebhookEvent.objects.create(**fields)


def _order(event: WebhookEvent, account: Account, **kw: Any) -> Order:
    order = Order(
        webhook=event,
        strategy=event.strategy,
        account=account,
        sequence=0,
        market_type=event.strategy.market_type if event.strategy else "SPOT",
        symbol="BTC/USDT",
        side="BUY",
        order_type="MARKET",
        qty_per=Decimal("10"),
    )
    order.client_order_id = "qt" + order.id.hex
    for key, value in kw.items():
        setattr(order, key, value)
    order.save()
    return order


@pytest.mark.parametrize("path", ["/", "/instruments/005930/", "/strategies/", "/orders/", "/webhooks/"])
def test_pages_redirect_anonymous_users_to_login(db: None, path: str) -> None:
    response = Client().get(path)
    assert response.status_code == 302
    assert response["Location"].startswith("/accounts/login/?next=")


def test_login_page_is_korean_by_default_and_english_on_request(db: None) -> None:
    assert "로그인" in Client().get("/accounts/login/").content.decode()
    english = Client(HTTP_ACCEPT_LANGUAGE="en").get("/accounts/login/").content.decode()
    assert "Log in" in english
    assert "로그인" not in english


def test_login_with_username_and_password_lands_on_dashboard(db: None) -> None:
    User.objects.create_user("trader", password="pw-123456")
    client = Client()
    response = client.post("/accounts/login/", {"username": "trader", "password": "pw-123456"})
    assert response.status_code == 302 and response["Location"] == "/"
    assert "실시간 시세" in client.get("/").content.decode()


def test_dashboard_lists_demo_instruments_and_the_configured_watchlist(
    user_client: Client, settings: Any
) -> None:
    settings.PRICE_WATCHLIST = ["NASD:AMZN", "005930"]
    html = user_client.get("/").content.decode()
    watchlist = json.loads(re.search(r'id="default-watchlist"[^>]*>(.*?)</script>', html, re.S).group(1))
    assert watchlist[0] == "005930"
    assert "BINANCE:BTC/USDT" in watchlist and "NASD:AMZN" in watchlist
    assert watchlist.count("005930") == 1
    assert "qt/live.js" in html and "qt/dashboard.js" in html


def test_instrument_page_loads_the_vendored_chart_library(user_client: Client) -> None:
    response = user_client.get("/instruments/BINANCE:BTC/USDT/")
    html = response.content.decode()
    assert response.status_code == 200
    assert 'data-instrument="BINANCE:BTC/USDT"' in html
    assert "vendor/lightweight-charts/lightweight-charts.standalone.production.js" in html


def test_static_files_are_served_without_collectstatic(user_client: Client) -> None:
    from django.contrib.staticfiles import finders

    assert finders.find("vendor/lightweight-charts/lightweight-charts.standalone.production.js")
    assert finders.find("qt/live.js")


def test_strategy_list_shows_strategies_and_active_account_counts(
    staff_client: Client, make_strategy: Callable[..., Strategy], make_account: Callable[..., Account]
) -> None:
    make_strategy("alpha", accounts=[make_account("a1"), make_account("a2", is_active=False)])
    html = staff_client.get("/strategies/").content.decode()
    assert "alpha" in html
    assert re.search(r"1 / 2", html)


def test_strategy_detail_hides_the_token_and_shows_samples_with_tradingview_placeholders(
    staff_client: Client, make_strategy: Callable[..., Strategy]
) -> None:
    strategy = make_strategy("alpha", market_type="DOMESTIC_STOCK", token="secret-token-xyz")
    html = staff_client.get(f"/strategies/{strategy.pk}/").content.decode()
    assert "secret-token-xyz" not in html
    assert "alpha-paper" in html
    assert "/api/webhook" in html
    assert "{{strategy.order.action}}" in html
    assert "{{ticker}}" in html and "{{strategy.order.contracts}}" in html and "{{close}}" in html
    assert "CANCEL_ALL_ORDER" in html and "&quot;LIMIT&quot;" in html
    # A plain user no longer sees the page (and so no staff buttons): see the 403 test below.


def test_token_reveal_is_a_staff_post(
    user_client: Client, staff_client: Client, make_strategy: Callable[..., Strategy]
) -> None:
    strategy = make_strategy("alpha", token="secret-token-xyz")
    url = f"/strategies/{strategy.pk}/token/"
    assert user_client.post(url, {"action": "reveal"}).status_code == 403
    assert staff_client.get(url).status_code == 405
    response = staff_client.post(url, {"action": "reveal"})
    assert response.status_code == 200
    assert "secret-token-xyz" in response.content.decode()
    assert "no-store" in response["Cache-Control"]


def test_token_post_needs_csrf(db: None, make_strategy: Callable[..., Strategy]) -> None:
    strategy = make_strategy("alpha", token="secret-token-xyz")
    client = Client(enforce_csrf_checks=True)
    client.force_login(User.objects.create_user("boss2", password="x", is_staff=True))
    assert client.post(f"/strategies/{strategy.pk}/token/", {"action": "reveal"}).status_code == 403


def test_token_regenerate_replaces_the_token(
    staff_client: Client, make_strategy: Callable[..., Strategy]
) -> None:
    strategy = make_strategy("alpha", token="old-token-123")
    html = staff_client.post(f"/strategies/{strategy.pk}/token/", {"action": "regenerate"}).content.decode()
    strategy.refresh_from_db()
    assert strategy.token != "old-token-123"
    assert strategy.token in html


def test_test_signal_runs_the_real_intake_and_links_the_log_entry(
    staff_client: Client, make_strategy: Callable[..., Strategy]
) -> None:
    strategy = make_strategy("alpha", market_type="SPOT")
    response = staff_client.post(f"/strategies/{strategy.pk}/test-signal/", {"confirm": "1"}, follow=True)
    event = WebhookEvent.objects.get(strategy=strategy)
    assert event.outcome == "accepted"
    assert event.orders.count() == 1
    assert f'href="/webhooks/{event.pk}/"' in response.content.decode()


def test_test_signal_is_refused_to_non_staff(
    user_client: Client, make_strategy: Callable[..., Strategy]
) -> None:
    strategy = make_strategy("alpha")
    assert user_client.post(f"/strategies/{strategy.pk}/test-signal/").status_code == 403
    assert not WebhookEvent.objects.exists()


def test_order_list_filters_by_strategy_account_status_and_date(
    staff_client: Client, make_strategy: Callable[..., Strategy], make_account: Callable[..., Account]
) -> None:
    a1, a2 = make_account("acct-one"), make_account("acct-two")
    s1 = make_strategy("alpha", accounts=[a1, a2])
    s2 = make_strategy("beta", accounts=[a1])
    e1, e2 = _event(s1), _event(s2)
    _order(e1, a1, status=OrderStatus.FILLED, symbol="AAA/USDT")
    _order(e1, a2, status=OrderStatus.FAILED, symbol="BBB/USDT")
    old = _order(e2, a1, status=OrderStatus.FILLED, symbol="CCC/USDT")
    Order.objects.filter(pk=old.pk).update(created_at=timezone.now() - timedelta(days=10))

    def symbols(query: str) -> set[str]:
        html = staff_client.get("/orders/" + query).content.decode()
        return set(re.findall(r"([A-C]{3}/USDT)</td>", html))

    assert symbols("") == {"AAA/USDT", "BBB/USDT", "CCC/USDT"}
    assert symbols(f"?strategy={s1.pk}") == {"AAA/USDT", "BBB/USDT"}
    assert symbols(f"?account={a2.pk}") == {"BBB/USDT"}
    assert symbols("?status=filled") == {"AAA/USDT", "CCC/USDT"}
    since = (timezone.localdate() - timedelta(days=1)).isoformat()
    assert symbols(f"?from={since}") == {"AAA/USDT", "BBB/USDT"}
    until = (timezone.localdate() - timedelta(days=5)).isoformat()
    assert symbols(f"?to={until}") == {"CCC/USDT"}


def test_order_list_is_paginated(staff_client: Client, make_strategy: Callable[..., Strategy]) -> None:
    strategy = make_strategy("alpha")
    account = strategy.accounts.get()
    event = _event(strategy)
    for _ in range(55):
        _order(event, account)
    first = staff_client.get("/orders/").content.decode()
    second = staff_client.get("/orders/?page=2").content.decode()
    assert first.count("data-order-id=") == 50
    assert second.count("data-order-id=") == 5
    assert "page=2" in first


def test_order_row_honours_the_list_filters(
    staff_client: Client, make_strategy: Callable[..., Strategy]
) -> None:
    strategy = make_strategy("alpha")
    order = _order(_event(strategy), strategy.accounts.get(), status=OrderStatus.FILLED)
    row = staff_client.get(f"/orders/{order.pk}/row/?status=filled")
    assert row.status_code == 200 and f'data-order-id="{order.pk}"' in row.content.decode()
    assert staff_client.get(f"/orders/{order.pk}/row/?status=failed").status_code == 204


def test_order_detail_shows_the_venue_message_and_normalized_numbers(
    staff_client: Client, make_strategy: Callable[..., Strategy]
) -> None:
    strategy = make_strategy("alpha")
    order = _order(
        _event(strategy),
        strategy.accounts.get(),
        status=OrderStatus.REJECTED,
        message="Binance API 오류: insufficient balance",
        filled_qty=Decimal("0.0100000000"),
        exchange_order_id="EX-42",
    )
    html = staff_client.get(f"/orders/{order.pk}/").content.decode()
    assert "Binance API 오류: insufficient balance" in html
    assert "EX-42" in html
    assert ">0.01<" in html
    assert "qty_per 10 " in html or "qty_per 10<" in html


def test_webhook_log_shows_redacted_payload_warnings_and_orders(
    staff_client: Client, make_strategy: Callable[..., Strategy]
) -> None:
    strategy = make_strategy("alpha")
    event = _event(strategy, warnings=["Unknown field ignored: foo"])
    _order(event, strategy.accounts.get(), status=OrderStatus.FILLED)
    html = staff_client.get("/webhooks/").content.decode()
    assert "Unknown field ignored: foo" in html
    assert "&quot;token&quot;: &quot;***&quot;" in html
    assert "alpha-paper" in html


def test_webhook_log_filters_to_errors(staff_client: Client, make_strategy: Callable[..., Strategy]) -> None:
    strategy = make_strategy("alpha")
    ok = _event(strategy)
    bad = _event(
        strategy,
        outcome="rejected",
        http_status=401,
        error_code="token_invalid",
        error_message="웹훅 토큰이 유효하지 않습니다",
    )
    html = staff_client.get("/webhooks/?errors=1").content.decode()
    assert str(bad.pk) in html and str(ok.pk) not in html
    assert "웹훅 토큰이 유효하지 않습니다" in html


def test_real_webhook_payload_is_shown_without_its_token(
    staff_client: Client, make_strategy: Callable[..., Strategy]
) -> None:
    make_strategy("alpha", token="tok-very-secret")
    body = {
        "group_name": "alpha",
        "token": "tok-very-secret",
        "symbol": "BTC/USDT",
        "side": "buy",
        "order_type": "MARKET",
        "qty_per": 5,
    }
    response = Client().post("/api/webhook", json.dumps(body), content_type="application/json")
    assert response.status_code == 202
    html = staff_client.get(f"/webhooks/{response.json()['webhook_id']}/").content.decode()
    assert "tok-very-secret" not in html
    assert "BTC/USDT" in html


def test_replay_creates_a_new_event_for_staff_only(
    user_client: Client, staff_client: Client, make_strategy: Callable[..., Strategy]
) -> None:
    strategy = make_strategy("alpha")
    original = _event(
        strategy,
        payload={
            "group_name": "alpha",
            "token": "***",
            "symbol": "BTC/USDT",
            "side": "buy",
            "order_type": "MARKET",
            "qty_per": 5,
        },
    )
    assert user_client.post(f"/webhooks/{original.pk}/replay/").status_code == 403
    response = staff_client.post(f"/webhooks/{original.pk}/replay/", {"confirm": "1"})
    replay = WebhookEvent.objects.get(replay_of=original)
    assert response.status_code == 302 and response["Location"] == f"/webhooks/{replay.pk}/"
    assert replay.outcome == "accepted"
    assert replay.orders.count() == 1


def test_pages_switch_to_english(staff_client: Client, make_strategy: Callable[..., Strategy]) -> None:
    strategy = make_strategy("alpha")
    korean = staff_client.get(f"/strategies/{strategy.pk}/").content.decode()
    assert "연동 계좌" in korean
    staff_client.post("/i18n/setlang/", {"language": "en", "next": "/"})
    english = staff_client.get(f"/strategies/{strategy.pk}/").content.decode()
    assert "Linked accounts" in english and "연동 계좌" not in english


def test_logout_is_a_post_that_ends_the_session(user_client: Client) -> None:
    response = user_client.post("/accounts/logout/")
    assert response.status_code == 200
    assert "로그아웃되었습니다" in response.content.decode()
    assert user_client.get("/").status_code == 302


@pytest.mark.parametrize("path", ["/strategies/", "/orders/", "/webhooks/"])
def test_order_webhook_and_strategy_pages_are_for_staff_like_their_api(
    user_client: Client, path: str
) -> None:
    """Their API (/api/webhooks/<id>) and WebSocket topics are staff-only: so are the pages."""
    assert user_client.get(path).status_code == 403
    nav = user_client.get("/").content.decode()
    assert f'href="{path}"' not in nav


REPLAYABLE = {"group_name": "alpha", "token": "***", "symbol": "BTC/USDT", "side": "buy",
              "order_type": "MARKET", "qty_per": 5}  # fmt: skip


def test_sends_without_the_dialogs_confirmation_send_nothing(
    staff_client: Client, make_strategy: Callable[..., Strategy]
) -> None:
    strategy = make_strategy("alpha")
    original = _event(strategy, payload=REPLAYABLE)

    staff_client.post(f"/strategies/{strategy.pk}/test-signal/")
    staff_client.post(f"/webhooks/{original.pk}/replay/")

    assert list(WebhookEvent.objects.all()) == [original]


def test_the_dialogs_say_which_accounts_are_live(
    staff_client: Client, make_strategy: Callable[..., Strategy], make_account: Callable[..., Account]
) -> None:
    live = make_account("binance-main", exchange="BINANCE")
    paper = make_account("paper-a")
    strategy = make_strategy("alpha", accounts=[live, paper])
    _event(strategy, payload=REPLAYABLE)

    for html in (
        staff_client.get(f"/strategies/{strategy.pk}/").content.decode(),
        staff_client.get("/webhooks/").content.decode(),
    ):
        dialog = html[html.index("<dialog") : html.index("</dialog>")]
        assert "binance-main" in dialog and "paper-a" in dialog
        assert dialog.count("badge-live") == 1  # the Binance account, not the paper one
        assert "test-token" not in dialog


def test_an_inactive_strategy_cannot_be_replayed(
    staff_client: Client, make_strategy: Callable[..., Strategy]
) -> None:
    strategy = make_strategy("alpha", is_active=False)
    original = _event(strategy, payload=REPLAYABLE)

    html = staff_client.get(f"/webhooks/{original.pk}/").content.decode()
    staff_client.post(f"/webhooks/{original.pk}/replay/", {"confirm": "1"})

    assert 'class="btn btn-light btn-small replay"' in html and "disabled" in html
    assert list(WebhookEvent.objects.all()) == [original]


def test_a_webhook_whose_orders_all_failed_shows_failed_and_is_an_error(
    staff_client: Client, make_strategy: Callable[..., Strategy]
) -> None:
    make_strategy("alpha")
    response = Client().post(
        "/api/webhook", {**REPLAYABLE, "token": "test-token"}, content_type="application/json"
    )
    Order.objects.update(status="failed", message="venue down")

    listing = staff_client.get("/webhooks/").content.decode()
    errors = staff_client.get("/webhooks/?errors=1").content.decode()

    assert 'data-outcome="failed"' in listing
    assert response.json()["webhook_id"] in errors
