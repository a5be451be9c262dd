"""The portfolio kept current: a webhook's fill refreshes it through the real Celery task path,
and each refresh reaches staff over the ``portfolio`` /ws topic (never anyone else)."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable
from decimal import Decimal
from typing import Any

import pytest
from asgiref.sync import sync_to_async
from channels.testing import WebsocketCommunicator
from django.contrib.auth.models import AnonymousUser, User
from django.test import Client

from live.consumers import LiveConsumer
from orders.portfolio.records import Portfolio
from orders.portfolio.services import portfolio_cached, portfolio_refresh
from quanttrade.management.commands.serve import PeriodicLoop
from quanttrade.vocabulary import MarketType

pytestmark = pytest.mark.django_db(transaction=True)


def _wait_cached(account_id: int, ready: Callable[[Portfolio], bool], timeout: float = 15) -> Portfolio:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        portfolio = portfolio_cached(account_id)
        if portfolio is not None and ready(portfolio):
            return portfolio
        time.sleep(0.05)
    pytest.fail(
        f"portfolio of account {account_id} not refreshed in {timeout}s: {portfolio_cached(account_id)}"
    )


def test_a_webhook_fill_refreshes_the_portfolio(
    celery_worker: Any,
    make_account: Callable[..., Any],
    make_strategy: Callable[..., Any],
    publish_price: Callable[[str, Any], Any],
    wait_orders: Callable[..., Any],
) -> None:
    account = make_account(name="paper-live", balances={"USDT": "10000"})
    make_strategy(market_type="FUTURES", accounts=[account])
    publish_price("BINANCE:BTC/USDT", "50000")
    body = {
        "group_name": "my_strategy",
        "token": "test-token",
        "symbol": "BTC/USDT",
        "orders": [{"order_type": "MARKET", "side": "buy", "qty_per": 10}],
    }
    response = Client().post("/api/webhook", data=json.dumps(body), content_type="application/json")
    assert response.status_code == 202, response.content
    [order] = wait_orders(account=account)
    assert order.status == "filled", order.message

    portfolio = _wait_cached(
        account.pk, lambda p: any(x.market_type == MarketType.FUTURES for x in p.positions)
    )

    [position] = portfolio.positions
    assert (position.symbol, position.quantity, position.entry_price) == (
        "BTC/USDT",
        order.filled_qty,
        Decimal("50000"),
    )


def test_portfolio_topic_is_staff_only_and_carries_each_refresh(make_account: Callable[..., Any]) -> None:
    account = make_account(name="paper-ws", balances={"USDT": "42"})
    staff = User.objects.create_user("ops", password="x", is_staff=True)

    async def scenario() -> None:
        anonymous = WebsocketCommunicator(LiveConsumer.as_asgi(), "/ws")
        anonymous.scope["user"] = AnonymousUser()
        staff_ws = WebsocketCommunicator(LiveConsumer.as_asgi(), "/ws")
        staff_ws.scope["user"] = staff
        try:
            for ws in (anonymous, staff_ws):
                assert (await ws.connect())[0]
                await ws.receive_from(timeout=2)  # connected
                await ws.send_json_to({"type": "subscribe", "topic": "portfolio"})
            assert json.loads(await anonymous.receive_from(timeout=2))["code"] == "forbidden"
            assert json.loads(await staff_ws.receive_from(timeout=2))["type"] == "subscribed"
            await sync_to_async(portfolio_refresh)(account)
            frame = json.loads(await staff_ws.receive_from(timeout=3))
            assert frame["type"] == "portfolio_update"
            assert frame["portfolio"]["account_id"] == account.pk
            assert frame["portfolio"]["totals"]["USDT"]["equity"] == "42"
            assert await anonymous.receive_nothing(timeout=0.3)
        finally:
            await anonymous.disconnect()
            await staff_ws.disconnect()

    asyncio.run(scenario())


def test_embedded_periodic_loop_refreshes_every_account(
    settings: Any, make_account: Callable[..., Any]
) -> None:
    settings.PORTFOLIO_REFRESH_SECONDS = 0.2
    account = make_account(name="paper-periodic", balances={"KRW": "7"})
    loop = PeriodicLoop()
    loop.start()
    try:
        portfolio = _wait_cached(account.pk, lambda p: "KRW" in p.totals)
    finally:
        loop.stop()
    assert portfolio.totals["KRW"].equity == 7
