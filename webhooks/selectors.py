"""Reads for webhooks: the results API body (SPEC §2.5) of one event with its orders."""

from __future__ import annotations

from typing import Any

from orders.models import Order
from orders.selectors import approval_state, order_summary, venue_state
from quanttrade.vocabulary import OrderStatus
from webhooks.models import WebhookEvent


def result_row(order: Order) -> dict[str, Any]:
    row = {**order_summary(order), **venue_state(order), **approval_state(order)}
    if order.cancelled_orders is not None:
        row["cancelled_orders"] = order.cancelled_orders
    return row


def overall_status(statuses: list[str]) -> str:
    """The webhook's status from its orders' statuses.

    - ``queued``: at least one order has not been picked up by a worker yet;
    - ``processing``: none queued, at least one is being sent to its venue (``submitted``);
    - ``pending_approval``: none queued or being sent, at least one waits for a staff user's
      approval (semi-automatic mode);
    - ``completed``: every order has the venue's answer (open, partially filled, filled,
      cancelled, rejected or failed) — a resting LIMIT order counts as answered.
    """
    if OrderStatus.QUEUED in statuses:
        return "queued"
    if OrderStatus.SUBMITTED in statuses:
        return "processing"
    if OrderStatus.PENDING_APPROVAL in statuses:
        return "pending_approval"
    return "completed"


def webhook_result(event: WebhookEvent) -> dict[str, Any]:
    """The SPEC §2.5 body for GET /api/webhooks/<id>, with each order's current status.

    Orders are listed in the order of the 202 response (execution order per account). A
    rejected webhook has no orders: its body says ``success: false`` with the stored error.
    """
    orders = {
        order.id.hex: order
        for order in Order.objects.filter(webhook=event).select_related("account", "approved_by")
    }
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
        "orders": [result_row(order) for order in ordered],
        "warnings": list(event.warnings or []),
    }
    if event.outcome == "rejected":
        body.update(
            {"error": event.error_message, "code": event.error_code, "http_status": event.http_status}
        )
    return body
