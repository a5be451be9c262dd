"""The stored fills of an account, from its Orders: each order's filled part at its average
price, with the fee the venue reported for it (a venue that reports each execution is still
one fill per order here: FIFO over orders gives the same realised PnL for orders that fill
on one side)."""

from __future__ import annotations

from collections import defaultdict

from django.db.models import QuerySet
from django.db.models.functions import Coalesce

from orders.models import Order
from orders.portfolio.pnl import ZERO, Fill
from quanttrade.vocabulary import Side


def filled_orders(account_id: int) -> QuerySet[Order]:
    """The account's orders with something filled, oldest first (by when they were sent)."""
    return (
        Order.objects.filter(account_id=account_id, filled_qty__gt=0, avg_price__isnull=False)
        .filter(side__in=[Side.BUY, Side.SELL])
        .annotate(sent_at=Coalesce("submitted_at", "created_at"))
        .order_by("sent_at", "sequence", "pk")
    )


def order_fill(order: Order) -> Fill:
    assert order.avg_price is not None
    return Fill(
        symbol=order.symbol.upper(),
        side=order.side,
        quantity=order.filled_qty,
        price=order.avg_price,
        fee=order.fee or ZERO,
        fee_currency=order.fee_currency,
        at=order.submitted_at or order.created_at,
    )


def account_fills(account_id: int) -> dict[tuple[str, str], list[Fill]]:
    """The account's fills per (market type, symbol), oldest first."""
    grouped: dict[tuple[str, str], list[Fill]] = defaultdict(list)
    for order in filled_orders(account_id):
        grouped[(order.market_type, order.symbol.upper())].append(order_fill(order))
    return dict(grouped)
