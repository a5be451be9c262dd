"""Reads for orders: the JSON shapes pushed to browsers and returned by the results API."""

from __future__ import annotations

from typing import Any

from orders.models import Order
from quanttrade.vocabulary import LIVE_STATUSES, OrderStatus, decimal_str

# Not final yet: waiting for a worker, being sent, or resting at the venue.
IN_PROGRESS = frozenset({OrderStatus.QUEUED, OrderStatus.SUBMITTED} | LIVE_STATUSES)


def orders_in_progress_count() -> int:
    """How many orders are not final yet (the header's count)."""
    return Order.objects.filter(status__in=IN_PROGRESS).count()


def order_summary(order: Order) -> dict[str, Any]:
    """The fields every view of an order shares: the rows of the 202 response (SPEC §2.5)."""
    return {
        "order_id": str(order.id),
        "account": order.account.name,
        "exchange": order.account.exchange,
        "symbol": order.symbol,
        "side": order.side,
        "order_type": order.order_type,
        "status": order.status,
    }


def venue_state(order: Order) -> dict[str, Any]:
    return {
        "exchange_order_id": order.exchange_order_id,
        "quantity": decimal_str(order.quantity),
        "filled_qty": decimal_str(order.filled_qty),
        "avg_price": decimal_str(order.avg_price),
        "message": order.message,
    }


def order_payload(order: Order) -> dict[str, Any]:
    """One order as pushed on the `orders` channel group (contract 3). JSON-safe."""
    return {
        **order_summary(order),
        "webhook_id": str(order.webhook_id),
        **venue_state(order),
        "updated_at": order.updated_at.isoformat() if order.updated_at else None,
    }
