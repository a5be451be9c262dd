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


# What a fill is made of: ``order_fill``'s fields, read as plain values.
_FILL_COLUMNS = (
    "market_type",
    "symbol",
    "side",
    "filled_qty",
    "avg_price",
    "fee",
    "fee_currency",
    "submitted_at",
    "created_at",
)


def account_fills(account_id: int) -> dict[tuple[str, str], list[Fill]]:
    """The account's fills per (market type, symbol), oldest first: what ``order_fill`` makes
    of each of ``filled_orders``, read as the nine values it uses. The portfolio refresh after
    every fill reads them all; as whole orders (about forty columns, three of them JSON to
    decode, and a model instance each) that read was most of a refresh's CPU
    (docs/benchmarks-speed.md, round 10)."""
    grouped: dict[tuple[str, str], list[Fill]] = defaultdict(list)
    rows = filled_orders(account_id).values_list(*_FILL_COLUMNS)
    for market_type, symbol, side, quantity, price, fee, fee_currency, submitted_at, created_at in rows:
        upper = symbol.upper()
        grouped[(market_type, upper)].append(
            Fill(
                symbol=upper,
                side=side,
                quantity=quantity,
                price=price,
                fee=fee or ZERO,
                fee_currency=fee_currency,
                at=submitted_at or created_at,
            )
        )
    return dict(grouped)
