"""Reads for orders: the JSON shapes pushed to browsers and returned by the results API."""

from __future__ import annotations

from typing import Any

from orders.models import Order
from quanttrade.vocabulary import LIVE_STATUSES, OrderStatus, decimal_str

# Not final yet: waiting for an approval or a worker, being sent, or resting at the venue.
IN_PROGRESS = frozenset(
    {OrderStatus.PENDING_APPROVAL, OrderStatus.QUEUED, OrderStatus.SUBMITTED} | LIVE_STATUSES
)


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


def approval_state(order: Order) -> dict[str, Any]:
    """Who approved the order and when (semi-automatic mode); until when it may be approved
    while it waits. Empty for an order that never needed approval."""
    if order.approval_expires_at is None and order.approved_at is None:
        return {}
    return {
        "account_id": order.account_id,
        "approval_expires_at": order.approval_expires_at.isoformat() if order.approval_expires_at else None,
        "approved_by": order.approved_by.get_username()
        if order.approved_by_id and order.approved_by
        else None,
        "approved_at": order.approved_at.isoformat() if order.approved_at else None,
    }


def order_payload(order: Order) -> dict[str, Any]:
    """One order as pushed on the `orders` channel group (contract 3). JSON-safe."""
    return {
        **order_summary(order),
        "webhook_id": str(order.webhook_id),
        **venue_state(order),
        **approval_state(order),
        "updated_at": order.updated_at.isoformat() if order.updated_at else None,
    }
