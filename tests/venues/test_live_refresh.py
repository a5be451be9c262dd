"""Orders resting on a live venue follow what happens there (the sweep's refresh)."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pytest
import time_machine
from django.test import Client

from orders.models import Order
from orders.services import account_orders_execute, live_orders_refresh, orders_sweep
from quanttrade.vocabulary import OrderStatus
from strategies.models import Account
from tests.execution.test_execution import make_orders
from tests.venues.resting import ccxt_lookup_bug_for, resting_limit_buys
from venuesim.binance import BinanceSim
from venuesim.kis import KisSim


def test_a_fill_at_the_venue_reaches_the_resting_order(
    client: Client,
    celery_worker: Any,
    make_strategy: Any,
    binance_account: Any,
    binance_sim: BinanceSim,
    wait_orders: Any,
) -> None:
    make_strategy(accounts=[binance_account()])
    body = {
        "group_name": "my_strategy",
        "token": "test-token",
        "symbol": "BTC/USDT",
        "order_type": "LIMIT",
        "side": "buy",
        "price": "50000",
        "qty_per": 10,
    }
    webhook_id = client.post("/api/webhook", data=json.dumps(body), content_type="application/json").json()[
        "webhook_id"
    ]
    [order] = wait_orders(webhook_id=webhook_id)
    assert order.status == OrderStatus.OPEN, order.message
    assert live_orders_refresh() == 0  # nothing changed at the venue yet

    [venue_order] = binance_sim.orders_for(order.client_order_id)
    binance_sim.fill_order(venue_order["id"])  # the market reaches the order
    assert orders_sweep()["refreshed"] == 1
    order = Order.objects.get(pk=order.pk)
    assert order.status == OrderStatus.FILLED and order.filled_qty == order.quantity > 0


@pytest.mark.django_db(transaction=True)
def test_more_resting_orders_than_one_run_asks_about_are_all_reached_in_turn(
    make_strategy: Any, binance_account: Any, binance_sim: BinanceSim
) -> None:
    """A run asks about at most ``limit`` orders. An order asked about and unchanged goes to
    the back of the line, so one beyond the first run's batch is reached by the next run and
    its fill is read (the least recently *updated* going first would ask about the same
    unchanged orders every run, and never reach it)."""
    account = binance_account()
    event, (_first, _second, third) = resting_limit_buys(
        make_strategy(accounts=[account]), account, (500, 400, 300)
    )
    [venue_order] = binance_sim.orders_for(third.client_order_id)
    binance_sim.fill_order(venue_order["id"])  # the market reaches the last of them

    assert live_orders_refresh(limit=2) == 0  # the first two: unchanged
    assert live_orders_refresh(limit=2) == 1  # then the third comes before them again
    third.refresh_from_db()
    assert (third.status, third.filled_qty) == (OrderStatus.FILLED, third.quantity)
    asked = Order.objects.filter(webhook=event).values_list("checked_at", flat=True)
    assert all(at is not None for at in asked)


@pytest.mark.django_db(transaction=True)
def test_an_unmapped_venue_status_or_one_orders_error_leaves_the_others_refreshed(
    make_strategy: Any, binance_account: Any, binance_sim: BinanceSim, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A status the adapter does not map (Binance spot's ``PENDING_NEW``, which ccxt passes
    through unparsed) never moves a resting order back to `submitted` (out of the refresh and
    away from its cancel button), and one order's unexpected error (an adapter bug) does not
    keep the refresh from the orders after it."""
    account = binance_account()
    event, (pending, broken, filled) = resting_limit_buys(
        make_strategy(accounts=[account]), account, (500, 400, 300)
    )
    [venue_pending] = binance_sim.orders_for(pending.client_order_id)
    venue_pending["status"] = "PENDING_NEW"  # the venue's own state, as its docs list it
    [venue_filled] = binance_sim.orders_for(filled.client_order_id)
    binance_sim.fill_order(venue_filled["id"])
    ccxt_lookup_bug_for(monkeypatch, broken.client_order_id)

    assert live_orders_refresh() == 1
    statuses = dict(Order.objects.filter(webhook=event).values_list("pk", "status"))
    assert statuses == {
        pending.pk: OrderStatus.OPEN,
        broken.pk: OrderStatus.OPEN,
        filled.pk: OrderStatus.FILLED,
    }


@pytest.mark.django_db(transaction=True)
def test_a_losing_fill_read_by_the_live_refresh_pauses_the_account_at_once(
    make_strategy: Any, binance_account: Any, binance_sim: BinanceSim
) -> None:
    """The daily-loss limit's pause comes with the losing fill, also when the fill happens at
    the venue later (a resting close read by the refresh), not only with an order's answer.
    The clock is pinned mid-day (in UTC and in Korea), so the open, the close and its fill all
    fall on one trading day whenever the suite runs."""
    with time_machine.travel(datetime(2026, 6, 3, 3, 0, tzinfo=UTC), tick=True):
        _losing_fill_read_by_the_live_refresh(make_strategy, binance_account, binance_sim)


def _losing_fill_read_by_the_live_refresh(
    make_strategy: Any, binance_account: Any, binance_sim: BinanceSim
) -> None:
    account = binance_account()
    Account.objects.filter(pk=account.pk).update(max_daily_loss=Decimal("100"))
    strategy = make_strategy(market_type="FUTURES", accounts=[account])
    account_orders_execute(make_orders(strategy, [account], [{"side": "BUY", "qty_per": 10}]).id, account.pk)
    binance_sim.prices["BTCUSDT"] = Decimal("39000")
    event = make_orders(
        strategy, [account], [{"order_type": "LIMIT", "side": "SELL", "qty_per": -100, "price": 40000}]
    )
    account_orders_execute(event.id, account.pk)
    close = Order.objects.get(webhook=event)
    assert close.status == OrderStatus.OPEN, close.message
    assert not Account.objects.get(pk=account.pk).is_paused

    [venue_order] = binance_sim.orders_for(close.client_order_id)
    binance_sim.fill_order(venue_order["id"])  # the market comes back up to 40,000
    assert live_orders_refresh() == 1

    account.refresh_from_db()
    assert account.is_paused and account.paused_reason.startswith(
        "리스크 한도 초과 (계좌 binance-1): 일일 최대 실현 손실 100"
    ), account.paused_reason


def test_paper_orders_are_left_to_the_matcher(make_strategy: Any, make_account: Any) -> None:
    strategy = make_strategy()
    from webhooks.models import WebhookEvent

    event = WebhookEvent.objects.create(strategy=strategy, outcome="accepted", http_status=202)
    Order.objects.create(
        webhook=event,
        strategy=strategy,
        account=strategy.accounts.get(),
        sequence=0,
        market_type="SPOT",
        symbol="BTC/USDT",
        side="BUY",
        order_type="LIMIT",
        client_order_id="qt" + "0" * 32,
        status=OrderStatus.OPEN,
    )
    assert live_orders_refresh() == 0


@pytest.mark.parametrize(
    ("market", "product_code", "fields"),
    [
        ("DOMESTIC_STOCK", "01", {"symbol": "005930", "price": "60000"}),
        ("OVERSEAS_STOCK", "01", {"symbol": "AAPL", "price": "150", "params": {"exchange_code": "NASD"}}),
        ("DOMESTIC_FUTUREOPTION", "03", {"symbol": "101TC000", "price": "300", "params": {"session": "day"}}),
        (
            "OVERSEAS_FUTUREOPTION",
            "08",
            {"symbol": "ESZ4", "price": "4900", "params": {"exchange_code": "CME", "contract_month": "Z4"}},
        ),
    ],
)
def test_a_kis_fill_after_acceptance_reaches_the_resting_order(
    client: Client,
    celery_worker: Any,
    make_strategy: Any,
    kis_account: Any,
    kis_sim: KisSim,
    wait_orders: Any,
    market: str,
    product_code: str,
    fields: dict[str, Any],
) -> None:
    make_strategy(market_type=market, accounts=[kis_account(product_code=product_code)])
    body = {
        "group_name": "my_strategy",
        "token": "test-token",
        "order_type": "LIMIT",
        "side": "buy",
        "qty_per": 3,
    }
    webhook_id = client.post(
        "/api/webhook", data=json.dumps({**body, **fields}), content_type="application/json"
    ).json()["webhook_id"]
    [order] = wait_orders(webhook_id=webhook_id)
    assert order.status == OrderStatus.OPEN, order.message
    assert live_orders_refresh() == 0  # nothing changed at the venue yet

    kis_sim.fill_order(order.exchange_order_id)  # the market reaches the limit price
    assert orders_sweep()["refreshed"] == 1

    order = Order.objects.get(pk=order.pk)
    assert (order.status, order.filled_qty, order.avg_price) == (
        OrderStatus.FILLED,
        Decimal("3"),
        Decimal(fields["price"]),
    )
