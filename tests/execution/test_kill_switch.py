"""The kill switch on the paper venue (issue #14): flatten from the API (staff session or API
token) and `manage.py flatten` — every open order cancelled, every position closed, one order
per action through the real worker — and pause with or without cancelling the open orders."""

from __future__ import annotations

import io
import json
from decimal import Decimal
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.core.management import call_command
from django.test import Client

from access.services import api_token_create
from orders.models import Order, PaperBalance, PaperOrder, PaperPosition
from strategies.models import Account, Strategy

D = Decimal


def signal(**fields: Any) -> dict[str, Any]:
    body = {"group_name": "my_strategy", "token": "test-token", "symbol": "BTC/USDT", "currency": "USDT"}
    body.update(fields)
    return body


def post_signal(body: dict[str, Any]) -> str:
    response = Client().post("/api/webhook", data=json.dumps(body), content_type="application/json")
    assert response.status_code == 202, response.json()
    return str(response.json()["webhook_id"])


@pytest.fixture
def trading(
    celery_worker: Any, make_strategy: Any, make_account: Any, publish_price: Any, wait_orders: Any
) -> Any:
    """A spot paper account holding 0.02 BTC (bought at 50,000) with a resting LIMIT buy."""
    account = make_account("paper-a", balances={"USDT": "10000"})
    strategy = make_strategy(accounts=[account])
    publish_price("BINANCE:BTC/USDT", "50000")
    wait_orders(webhook_id=post_signal(signal(order_type="MARKET", side="buy", qty_per=10)))
    wait_orders(
        webhook_id=post_signal(signal(order_type="LIMIT", side="buy", price="40000", qty_per=10)),
        settled={"open"},
    )
    assert PaperBalance.objects.get(account=account, asset="BTC").free == D("0.02")
    return strategy, account


def assert_flattened(account: Account, orders: list[Order]) -> None:
    assert [(o.order_type, o.symbol, o.side, o.status, o.origin) for o in orders] == [
        ("CANCEL_ALL_ORDER", "", "", "cancelled", "flatten"),
        ("MARKET", "BTC/USDT", "SELL", "filled", "flatten"),
    ]
    assert orders[0].cancelled_orders == 1
    assert orders[1].filled_qty == D("0.02")
    btc = PaperBalance.objects.get(account=account, asset="BTC")
    assert btc.free + btc.locked == 0
    assert not PaperOrder.objects.filter(account=account, status="open").exists()
    assert not Order.objects.filter(account=account, status__in=["open", "partially_filled"]).exists()


def test_flatten_through_the_api_with_an_api_token(trading: Any, wait_orders: Any) -> None:
    _strategy, account = trading
    staff = User.objects.create_user("ops", password="pw-123456789", is_staff=True)
    _token, key = api_token_create(staff, "bot")
    response = Client().post(f"/api/accounts/{account.pk}/flatten", HTTP_AUTHORIZATION=f"Token {key}")
    body = response.json()
    assert response.status_code == 202, body
    assert body["action"] == "flatten" and body["target"] == "paper-a"
    assert [(row["order_type"], row["symbol"], row["status"]) for row in body["orders"]] == [
        ("CANCEL_ALL_ORDER", "", "queued"),
        ("MARKET", "BTC/USDT", "queued"),
    ]
    assert_flattened(account, wait_orders(webhook_id=body["webhook_id"]))
    result = Client().get(f"/api/webhooks/{body['webhook_id']}", HTTP_AUTHORIZATION=f"Token {key}").json()
    assert result["status"] == "completed"
    assert [row["status"] for row in result["orders"]] == ["cancelled", "filled"]


def test_flatten_passes_the_pause_and_the_limits_it_would_otherwise_meet(
    trading: Any, wait_orders: Any, admin_client: Client
) -> None:
    strategy, account = trading
    Account.objects.filter(pk=account.pk).update(max_order_notional=D("1"), allowed_symbols="ETH/USDT")
    account.pause("stop")
    strategy.pause("stop")
    response = admin_client.post(f"/api/strategies/{strategy.pk}/flatten")
    assert response.status_code == 202
    assert_flattened(account, wait_orders(webhook_id=response.json()["webhook_id"]))


def test_manage_py_flatten_prints_one_line_per_action(trading: Any, wait_orders: Any) -> None:
    _strategy, account = trading
    out = io.StringIO()
    call_command("flatten", "--account", "paper-a", "--yes", "--pause", stdout=out)
    lines = out.getvalue().splitlines()
    webhook_id = lines[0].split()[1]
    assert [line.split("->")[0].strip() for line in lines[1:]] == [
        "paper-a: cancel all",
        "paper-a: close BTC/USDT",
    ]
    assert_flattened(account, wait_orders(webhook_id=webhook_id))
    assert Account.objects.get(pk=account.pk).is_paused


def test_flatten_closes_a_paper_futures_position_from_the_book(
    celery_worker: Any,
    make_strategy: Any,
    make_account: Any,
    publish_price: Any,
    wait_orders: Any,
    admin_client: Client,
) -> None:
    account = make_account("fut", balances={"USDT": "10000"})
    strategy = make_strategy(market_type="FUTURES", accounts=[account])
    publish_price("BINANCE:BTC/USDT", "50000")
    body = {"group_name": strategy.group_name, "token": "test-token", "symbol": "BTC/USDT"}
    wait_orders(webhook_id=post_signal({**body, "order_type": "MARKET", "side": "sell", "qty_per": 10}))
    assert PaperPosition.objects.get(account=account).quantity == D("-0.02")
    response = admin_client.post(f"/api/accounts/{account.pk}/flatten")
    orders = wait_orders(webhook_id=response.json()["webhook_id"])
    assert [(o.order_type, o.side, o.status) for o in orders] == [
        ("CANCEL_ALL_ORDER", "", "cancelled"),
        ("MARKET", "BUY", "filled"),
    ]
    assert PaperPosition.objects.get(account=account).quantity == 0


def test_pause_with_cancel_open_cancels_and_refuses_new_opening_signals(
    trading: Any, wait_orders: Any, admin_client: Client
) -> None:
    _strategy, account = trading
    response = admin_client.post(
        f"/api/accounts/{account.pk}/pause",
        data=json.dumps({"reason": "news", "cancel_open": True}),
        content_type="application/json",
    )
    body = response.json()
    assert response.status_code == 200 and body["paused"] is True and body["reason"] == "news"
    (cancel,) = wait_orders(webhook_id=body["webhook_id"])
    assert (cancel.order_type, cancel.status, cancel.cancelled_orders) == ("CANCEL_ALL_ORDER", "cancelled", 1)
    assert PaperBalance.objects.get(account=account, asset="BTC").free == D("0.02")  # position kept

    (refused,) = wait_orders(webhook_id=post_signal(signal(order_type="MARKET", side="buy", qty_per=10)))
    assert (refused.status, refused.message) == ("rejected", "계좌가 일시 정지되었습니다: paper-a")

    assert admin_client.delete(f"/api/accounts/{account.pk}/pause").json() == {"paused": False}
    (again,) = wait_orders(webhook_id=post_signal(signal(order_type="MARKET", side="buy", qty_per=10)))
    assert again.status == "filled"


def test_pause_without_cancel_leaves_the_open_orders(trading: Any, admin_client: Client) -> None:
    strategy, account = trading
    response = admin_client.post(f"/api/strategies/{strategy.pk}/pause")
    assert response.json() == {"paused": True, "reason": "api:admin 에서 일시 정지함"}
    assert Strategy.objects.get(pk=strategy.pk).is_paused
    assert Order.objects.filter(account=account, status="open").count() == 1
    refused = Client().post(
        "/api/webhook",
        data=json.dumps(signal(order_type="MARKET", side="buy", qty_per=10)),
        content_type="application/json",
    )
    assert refused.status_code == 403 and refused.json()["code"] == "strategy_paused"


@pytest.mark.django_db
def test_the_kill_switch_api_is_staff_only_and_404s_unknown_targets(
    client: Client, admin_client: Client
) -> None:
    assert client.post("/api/accounts/1/flatten").status_code in (401, 403)
    user = User.objects.create_user("plain", password="pw-123456789")
    _token, key = api_token_create(user)
    assert client.post("/api/accounts/1/flatten", HTTP_AUTHORIZATION=f"Token {key}").status_code == 403
    response = admin_client.post("/api/accounts/999/flatten")
    assert response.status_code == 404 and response.json()["status"] == 404


# --- the pages and the admin --------------------------------------------------------------------


@pytest.mark.django_db
def test_the_strategy_page_shows_limits_pause_state_and_the_timestamped_samples(
    admin_client: Client, make_strategy: Any, make_account: Any
) -> None:
    account = make_account("acct-x", max_daily_loss=D("250000"))
    strategy = make_strategy(accounts=[account], allowed_symbols="BTC/USDT", max_signal_age_seconds=30)
    account.pause("daily loss")
    page = admin_client.get(f"/strategies/{strategy.pk}/").content.decode()
    assert 'id="guard-rails"' in page
    assert "허용 종목: <code>BTC/USDT</code>" in page and "신호 최대 유효 시간 (초): <code>30</code>" in page
    assert "일일 최대 실현 손실: <code>250000</code>" in page and "daily loss" in page
    assert f'id="resume-account-{account.pk}"' in page and f'id="pause-strategy-{strategy.pk}"' in page
    assert "&quot;timestamp&quot;: &quot;{{timenow}}&quot;" in page


@pytest.mark.django_db
def test_the_page_flatten_needs_the_dialogs_confirmation(
    admin_client: Client, make_strategy: Any, make_account: Any
) -> None:
    account = make_account("acct-x", balances={"USDT": "100"})
    make_strategy(accounts=[account])
    url = f"/accounts/{account.pk}/kill-switch/"
    admin_client.post(url, {"action": "flatten"})
    assert not Order.objects.exists()
    response = admin_client.post(url, {"action": "flatten", "confirm": "1", "next": "/strategies/"})
    assert response.status_code == 302 and response["Location"] == "/strategies/"
    (cancel,) = Order.objects.all()  # no position: only the cancel
    assert (cancel.order_type, cancel.origin, cancel.account_id) == (
        "CANCEL_ALL_ORDER",
        "flatten",
        account.pk,
    )
    admin_client.post(url, {"action": "pause", "reason": "lunch"})
    assert Account.objects.get(pk=account.pk).paused_reason == "lunch"
    admin_client.post(url, {"action": "resume"})
    assert not Account.objects.get(pk=account.pk).is_paused


@pytest.mark.django_db
def test_the_admin_flatten_action_asks_then_flattens(
    admin_client: Client, make_strategy: Any, make_account: Any
) -> None:
    account = make_account("acct-x")
    strategy = make_strategy(accounts=[account])
    url = "/admin/strategies/strategy/"
    asked = admin_client.post(url, {"action": "flatten_selected", "_selected_action": [strategy.pk]})
    assert asked.status_code == 200 and "모든 포지션을 청산할까요?" in asked.content.decode()
    assert not Order.objects.exists()
    admin_client.post(url, {"action": "flatten_selected", "_selected_action": [strategy.pk], "confirm": "1"})
    assert list(Order.objects.values_list("order_type", "origin")) == [("CANCEL_ALL_ORDER", "flatten")]
    admin_client.post(url, {"action": "pause_selected", "_selected_action": [strategy.pk]})
    assert Strategy.objects.get(pk=strategy.pk).is_paused
    change = admin_client.get(f"/admin/strategies/account/{account.pk}/change/").content.decode()
    assert 'name="max_order_notional"' in change and 'name="loss_reset_time"' in change


@pytest.mark.django_db
def test_limits_are_edited_on_the_strategy_page(
    admin_client: Client, make_strategy: Any, make_account: Any
) -> None:
    account = make_account("acct-x")
    strategy = make_strategy(accounts=[account])
    page = admin_client.get(f"/strategies/{strategy.pk}/").content.decode()
    assert f'name="account-{account.pk}-max_order_notional"' in page
    assert f'id="limits-account-{account.pk}"' in page and f'id="limits-strategy-{strategy.pk}"' in page
    prefix = f"account-{account.pk}-"
    admin_client.post(
        f"/accounts/{account.pk}/limits/",
        {
            f"{prefix}max_order_notional": "1500.5",
            f"{prefix}allowed_symbols": "BTC/USDT ETH/USDT",
            f"{prefix}trading_hours": "09:00-15:20",
            f"{prefix}market_timezone": "Asia/Seoul",
            f"{prefix}loss_reset_time": "09:00",
        },
    )
    account.refresh_from_db()
    assert (account.max_order_notional, account.allowed_symbols, account.trading_hours) == (
        D("1500.5"),
        "BTC/USDT ETH/USDT",
        "09:00-15:20",
    )
    response = admin_client.post(
        f"/strategies/{strategy.pk}/limits/",
        {f"strategy-{strategy.pk}-trading_hours": "9-5", "next": f"/strategies/{strategy.pk}/"},
        follow=True,
    )
    assert "리스크 한도를 저장하지 못했습니다" in response.content.decode()
    assert Strategy.objects.get(pk=strategy.pk).trading_hours == ""
