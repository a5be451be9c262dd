"""Reads for orders: the JSON shapes pushed to browsers and returned by the results API."""

from __future__ import annotations

from typing import Any

from orders.models import Order, WebhookEvent
from quanttrade.vocabulary import OrderStatus, decimal_str


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


def _venue_state(order: Order) -> dict[str, Any]:
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
        **_venue_state(order),
        "updated_at": order.updated_at.isoformat() if order.updated_at else None,
    }


def _result_row(order: Order) -> dict[str, Any]:
    row = {**order_summary(order), **_venue_state(order)}
    if order.cancelled_orders is not None:
        row["cancelled_orders"] = order.cancelled_orders
    return row


def overall_status(statuses: list[str]) -> str:
    """The webhook's status from its orders' statuses.

    - ``queued``: at least one order has not been picked up by a worker yet;
    - ``processing``: none queued, at least one is being sent to its venue (``submitted``);
    - ``completed``: every order has the venue's answer (open, partially filled, filled,
      cancelled, rejected or failed) — a resting LIMIT order counts as answered.
    """
    if OrderStatus.QUEUED in statuses:
        return "queued"
    if OrderStatus.SUBMITTED in statuses:
        return "processing"
    return "completed"


def webhook_result(event: WebhookEvent) -> dict[str, Any]:
    """The SPEC §2.5 body for GET /api/webhooks/<id>, with each order's current status.

    Orders are listed in the order of the 202 response (execution order per account). A
    rejected webhook has no orders: its body says ``success: false`` with the stored error.
    """
    orders = {order.id.hex: order for order in Order.objects.filter(webhook=event).select_related("account")}
    listed = [str(row.get("order_id", "")) for row in (event.response or {}).get("orders", [])]
    ordered: list[Order] = []
    for order_id in listed:
        order = orders.pop(order_id.replace("-", ""), None)
        if order is not None:
            ordered.append(order)
    ordered.extend(sorted(orders.values(), key=lambda o: (o.account.name, o.sequence)))
    body: dict[str, Any] = {
        "success": event.outcome != "rejected",
        "webhook_id": str(event.id),
        "strategy": event.strategy.group_name if event.strategy else event.group_name,
        "status": overall_status([o.status for o in ordered]) if ordered else event.outcome,
        "received_at": event.received_at.isoformat(),
        "orders": [_result_row(order) for order in ordered],
        "warnings": list(event.warnings or []),
    }
    if event.outcome == "rejected":
        body.update(
            {"error": event.error_message, "code": event.error_code, "http_status": event.http_status}
        )
    return body
