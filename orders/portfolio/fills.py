"""The stored fills of an account, from its Orders: each order's filled part at its average
price, with the fee the venue reported for it (a venue that reports each execution is still
one fill per order here: FIFO over orders gives the same realised PnL for orders that fill
on one side)."""

from __future__ import annotations

from collections import defaultdict
from datetime import datetime
from decimal import Decimal

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


def _fill(
    symbol: str,
    side: str,
    quantity: Decimal,
    price: Decimal,
    fee: Decimal | None,
    fee_currency: str,
    submitted_at: datetime | None,
    created_at: datetime,
) -> Fill:
    """An order's filled part at its average price, with its fee (none reported: zero), at the
    time it was sent (or created, when it never was)."""
    return Fill(
        symbol=symbol.upper(),
        side=side,
        quantity=quantity,
        price=price,
        fee=fee or ZERO,
        fee_currency=fee_currency,
        at=submitted_at or created_at,
    )


def order_fill(order: Order) -> Fill:
    assert order.avg_price is not None
    return _fill(
        order.symbol,
        order.side,
        order.filled_qty,
        order.avg_price,
        order.fee,
        order.fee_currency,
        order.submitted_at,
        order.created_at,
    )


# The market type, then ``_fill``'s arguments, read as plain values: the portfolio refresh after
# every fill reads them all, and as whole orders (about forty columns, three of them JSON to
# decode, and a model instance each) that read was most of a refresh's CPU
# (docs/benchmarks-speed.md, round 10).
_FILL_COLUMNS = (
    "market_type",
    "currency",
    "symbol",
    "side",
    "filled_qty",
    "avg_price",
    "fee",
    "fee_currency",
    "submitted_at",
    "created_at",
)


def account_fills(
    account_id: int, currencies: dict[tuple[str, str], str] | None = None
) -> dict[tuple[str, str], list[Fill]]:
    """The account's fills (``_fill``) per (market type, symbol), oldest first.

    ``currencies``: filled with each (market type, symbol)'s order currency as the intake set it
    (the first non-blank one): what an overseas stock trades in (JPY in Tokyo, HKD in Hong Kong),
    which its symbol does not say."""
    grouped: dict[tuple[str, str], list[Fill]] = defaultdict(list)
    rows = filled_orders(account_id).values_list(*_FILL_COLUMNS)
    for market_type, currency, *values in rows:
        fill = _fill(*values)
        key = (market_type, fill.symbol)
        grouped[key].append(fill)
        if currencies is not None and currency and key not in currencies:
            currencies[key] = currency
    return dict(grouped)
