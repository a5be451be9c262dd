"""Fees as the venues report them: ccxt's unified ``fee``/``fees`` read into OrderResult, and
stored on the Order when the execution records the venue's answer."""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal
from typing import Any

import pytest

from orders.exchanges.base import OrderResult
from orders.exchanges.ccxt.base import order_fee
from orders.models import Order
from orders.services import order_record


@pytest.mark.parametrize(
    ("order", "expected"),
    [
        ({"fee": {"cost": 0.05, "currency": "USDT"}}, (Decimal("0.05"), "USDT")),
        # Binance spot fills: one fee per trade, summed in the first currency named.
        (
            {"fees": [{"cost": "0.0001", "currency": "BTC"}, {"cost": "0.0002", "currency": "BTC"}]},
            (Decimal("0.0003"), "BTC"),
        ),
        ({"fee": None, "fees": []}, (None, "")),
        ({"fee": {"cost": None, "currency": "USDT"}}, (None, "")),
    ],
)
def test_order_fee_reads_ccxts_unified_fee(
    order: dict[str, Any], expected: tuple[Decimal | None, str]
) -> None:
    assert order_fee(order) == expected


@pytest.mark.django_db
def test_order_record_stores_the_fee_and_keeps_a_known_one(
    make_account: Callable[..., Any], make_fill: Callable[..., Any]
) -> None:
    order = make_fill(make_account(name="paper-fee"), "BUY", "1", "100", status="submitted")
    Order.objects.filter(pk=order.pk).update(filled_qty=0)
    order.refresh_from_db()
    answer = OrderResult(
        status="filled",
        filled_qty=Decimal("1"),
        avg_price=Decimal("100"),
        fee=Decimal("0.1"),
        fee_currency="USDT",
    )
    assert order_record(order, answer)
    stored = Order.objects.get(pk=order.pk)
    assert (stored.fee, stored.fee_currency) == (Decimal("0.1"), "USDT")
    # A later answer without a fee (a lookup that does not report one) keeps it.
    Order.objects.filter(pk=order.pk).update(status="open")
    order.refresh_from_db()
    assert order_record(order, OrderResult(status="filled", filled_qty=Decimal("1")), expect=["open"])
    assert Order.objects.get(pk=order.pk).fee == Decimal("0.1")
