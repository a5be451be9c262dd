"""Helpers for tests of orders resting at a venue simulator (the sweep and the live refresh)."""

from __future__ import annotations

from typing import Any

import pytest

from orders.models import Order
from orders.services import account_orders_execute
from quanttrade.vocabulary import OrderStatus
from tests.execution.test_execution import make_orders
from webhooks.models import WebhookEvent


def resting_limit_buys(
    strategy: Any, account: Any, prices: tuple[int, ...]
) -> tuple[WebhookEvent, list[Order]]:
    """One webhook's LIMIT buys at ``prices``, placed at the account's venue and resting there
    (`open`); the orders in their sequence."""
    event = make_orders(
        strategy,
        [account],
        [{"order_type": "LIMIT", "side": "BUY", "qty_per": 1, "price": price} for price in prices],
    )
    account_orders_execute(event.id, account.pk)
    orders = list(Order.objects.filter(webhook=event).order_by("sequence"))
    assert [order.status for order in orders] == [OrderStatus.OPEN] * len(prices)
    return event, orders


def ccxt_lookup_bug_for(monkeypatch: pytest.MonkeyPatch, client_order_id: str) -> None:
    """The ccxt adapters' lookup by client id raises an unexpected error (an adapter bug, not a
    venue error) for ``client_order_id`` only, and asks the venue for every other order."""
    from orders.exchanges.ccxt.base import CcxtAdapter

    lookup = CcxtAdapter.fetch_order_by_client_id

    def bug_for_one(self: Any, request: Any) -> Any:
        if request.client_order_id == client_order_id:
            raise RuntimeError("adapter bug")
        return lookup(self, request)

    monkeypatch.setattr(CcxtAdapter, "fetch_order_by_client_id", bug_for_one)
