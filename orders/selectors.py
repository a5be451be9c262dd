"""Reads for orders: the JSON shapes pushed to browsers and returned by the results API."""

from __future__ import annotations

import math
from datetime import datetime, timedelta
from typing import Any

from django.utils import timezone

from orders.models import Order
from orders.trail import STAGES
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


# --- the latency trail, summarised ---------------------------------------------------------

LATENCY_MAX_HOURS = 24 * 7
# At most this many recent orders are read for the summary (a busy day is far fewer).
LATENCY_MAX_ORDERS = 100_000


def percentile(values: list[int], q: float) -> int:
    """The nearest-rank percentile (q in 0..100) of a non-empty list."""
    ordered = sorted(values)
    rank = max(1, math.ceil(q / 100 * len(ordered)))
    return ordered[min(rank, len(ordered)) - 1]


def latency_summary(hours: float = 24, now: datetime | None = None) -> dict[str, Any]:
    """p50/p99 per venue and stage of the orders received in the last ``hours``: for each
    stage, the time from `received` to that stage (ms), over the orders that reached it. The
    same figures the benchmarks print (they read the same trail)."""
    now = now or timezone.now()
    since = now - timedelta(hours=hours)
    rows = (
        Order.objects.filter(created_at__gte=since, created_at__lte=now)
        .order_by("-created_at")
        .values_list("account__exchange", "trail")[:LATENCY_MAX_ORDERS]
    )
    by_venue: dict[str, dict[str, list[int]]] = {}
    orders: dict[str, int] = {}
    for venue, trail in rows:
        if not isinstance(trail, dict) or "t0" not in trail:
            continue
        orders[venue] = orders.get(venue, 0) + 1
        stages = by_venue.setdefault(venue, {})
        for stage in STAGES[1:]:
            value = trail.get(stage)
            if isinstance(value, int):
                stages.setdefault(stage, []).append(value)
    venues = []
    for venue in sorted(by_venue):
        stages = by_venue[venue]
        venues.append(
            {
                "venue": venue,
                "orders": orders[venue],
                "stages": [
                    {
                        "stage": stage,
                        "count": len(stages[stage]),
                        "p50_ms": percentile(stages[stage], 50) / 1000,
                        "p99_ms": percentile(stages[stage], 99) / 1000,
                    }
                    for stage in STAGES[1:]
                    if stages.get(stage)
                ],
            }
        )
    return {"hours": hours, "since": since.isoformat(), "until": now.isoformat(), "venues": venues}
