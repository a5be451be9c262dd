"""The sweep settles what it finds stuck (a real venue simulator over HTTP): a dead worker's
cancel-all is run again, and the live refresh never moves an order's fills back."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal
from typing import Any

import pytest
from django.core.cache import cache
from django.utils import timezone

from orders.models import Order
from orders.services import account_orders_execute, live_orders_refresh, orders_sweep
from quanttrade.vocabulary import OrderStatus
from tests.execution.test_execution import make_orders
from tests.venues.resting import ccxt_lookup_bug_for, resting_limit_buys
from venuesim.binance import BinanceSim

pytestmark = pytest.mark.django_db(transaction=True)


def stuck_with_a_dead_worker(order: Order) -> None:
    """The order as a worker killed mid-order leaves it: `submitted`, claimed by a process that
    no longer beats."""
    Order.objects.filter(pk=order.pk).update(
        status=OrderStatus.SUBMITTED, attempts=1, updated_at=timezone.now() - timedelta(minutes=10)
    )
    cache.set(f"qt:claim:{order.pk}", "gone-host:4242", timeout=600)


def test_a_cancel_all_left_submitted_by_a_dead_worker_is_run_again_not_looked_up(
    celery_worker: Any, make_strategy: Any, binance_account: Any, binance_sim: BinanceSim, wait_orders: Any
) -> None:
    """A CANCEL_ALL_ORDER for every symbol is no order at the venue: looking it up by client id
    fails ("unknown symbol") at every sweep, so it stayed `submitted` and the account's later
    closes waited for it forever. The sweep sends it again instead, and a worker runs it."""
    account = binance_account()
    strategy = make_strategy(accounts=[account])
    resting = make_orders(
        strategy, [account], [{"order_type": "LIMIT", "side": "BUY", "qty_per": 1, "price": 500}]
    )
    account_orders_execute(resting.id, account.pk)
    event = make_orders(strategy, [account], [{"order_type": "CANCEL_ALL_ORDER", "symbol": ""}])
    stuck_with_a_dead_worker(Order.objects.get(webhook=event))

    assert orders_sweep(stale_after_seconds=30)["redispatched"] == 1
    [cancel_all] = wait_orders(webhook_id=event.id)
    assert (cancel_all.status, cancel_all.cancelled_orders, cancel_all.uncertain_attempt) == (
        OrderStatus.CANCELLED,
        1,
        None,
    )
    assert Order.objects.get(webhook=resting).status == OrderStatus.CANCELLED


def test_the_live_refresh_never_moves_an_orders_fills_back(
    make_strategy: Any, binance_account: Any, binance_sim: BinanceSim
) -> None:
    """The product knows of a partial fill the venue's read does not show yet (a list that
    lags): the refresh keeps the fill and the status instead of taking the order back to
    `open` with nothing filled."""
    account = binance_account()
    strategy = make_strategy(accounts=[account])
    event = make_orders(
        strategy, [account], [{"order_type": "LIMIT", "side": "BUY", "qty_per": 1, "price": 500}]
    )
    account_orders_execute(event.id, account.pk)
    order = Order.objects.get(webhook=event)
    assert order.status == OrderStatus.OPEN
    half = order.quantity / 2
    Order.objects.filter(pk=order.pk).update(
        status=OrderStatus.PARTIALLY_FILLED, filled_qty=half, avg_price=Decimal("500")
    )

    assert live_orders_refresh() == 0
    order.refresh_from_db()
    assert (order.status, order.filled_qty) == (OrderStatus.PARTIALLY_FILLED, half)


def test_one_orders_unexpected_error_does_not_stop_the_sweep(
    make_strategy: Any, binance_account: Any, binance_sim: BinanceSim, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Two orders left `submitted` by a dead worker, both resting at the venue. Looking up the
    first hits an adapter bug (not a venue error): it is logged, the order is left for the next
    sweep, and the other one is still settled from the venue's answer."""
    account = binance_account()
    event, (broken, settled) = resting_limit_buys(make_strategy(accounts=[account]), account, (500, 400))
    for order in (broken, settled):
        stuck_with_a_dead_worker(order)
    ccxt_lookup_bug_for(monkeypatch, broken.client_order_id)

    assert orders_sweep(stale_after_seconds=30)["reconciled"] == 2
    statuses = dict(Order.objects.filter(webhook=event).values_list("pk", "status"))
    assert statuses == {broken.pk: OrderStatus.SUBMITTED, settled.pk: OrderStatus.OPEN}
