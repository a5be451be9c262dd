"""The one shape every order-list row is read into, whatever the venue or market.

A venue package writes one reader per order list (row -> :class:`VenueOrder` or None for a row
that is not a new order); :func:`collect_orders` runs it over every page, and
:meth:`VenueOrder.result` is the single status rule.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any

from orders.exchanges.base import OrderResult, VenueError
from quanttrade.vocabulary import OrderStatus, Side

_log = logging.getLogger("quanttrade.orders")

RowReader = Callable[[dict[str, Any]], "VenueOrder | None"]


@dataclass(frozen=True)
class VenueOrder:
    """One order as the venue's order list shows it. ``placed_at`` is the venue's (local) time
    of the order, None when the row does not say; ``row`` keeps the raw fields a cancel needs."""

    order_no: str
    product: str
    side: Side
    quantity: Decimal
    filled: Decimal
    remaining: Decimal
    avg_price: Decimal
    placed_at: datetime | None
    cancelled: bool = False
    rejected: bool = False
    row: dict[str, Any] = field(default_factory=dict, compare=False, repr=False)

    def result(self) -> OrderResult:
        """The order's state for the product (filled wins over a late cancel of the rest)."""
        if self.rejected and self.filled == 0:
            status = OrderStatus.REJECTED
        elif self.filled >= self.quantity > 0:
            status = OrderStatus.FILLED
        elif self.cancelled:
            status = OrderStatus.CANCELLED
        elif self.filled > 0:
            status = OrderStatus.PARTIALLY_FILLED
        else:
            status = OrderStatus.OPEN
        return OrderResult(
            status=status,
            exchange_order_id=self.order_no,
            quantity=self.quantity,
            filled_qty=self.filled,
            avg_price=self.avg_price if self.filled > 0 else None,
        )


def collect_orders(pages: list[dict[str, Any]], key: str, read: RowReader) -> list[VenueOrder]:
    """The orders in every page's ``key``. A lone object stands for a one-row list (KIS sends one
    instead of a list when the list is empty or has one row)."""
    orders = []
    for page in pages:
        rows = page.get(key) or []
        for row in [rows] if isinstance(rows, dict) else rows:
            order = read(row)
            if order is not None:
                orders.append(order)
    return orders


def find_order(orders: list[VenueOrder], order_no: str) -> VenueOrder | None:
    """The order with the venue's number ``order_no``, None when the list does not have it."""
    return next((o for o in orders if o.order_no == order_no), None)


def state_after_acceptance(
    find: Callable[[], VenueOrder | None], accepted: OrderResult, *, venue: str, order_no: str
) -> OrderResult:
    """The accepted order as the broker's order list shows it right now, so a market order that
    traded reads filled (the broker answers an order with its number only). The order is
    placed whatever this read does: when it fails or does not list the order yet, the answer
    stays ``accepted`` (open) and the sweep's refresh reads it later. Never raises."""
    if not order_no:
        return accepted
    try:
        found = find()
    except VenueError as e:
        _log.warning("%s 주문 상태 조회 실패 (주문은 접수됨): %s %s", venue, order_no, e.message)
        return accepted
    except Exception:
        # A bug in reading must not turn a placed order into a failed one.
        _log.exception("%s 주문 상태 조회 오류 (주문은 접수됨): %s", venue, order_no)
        return accepted
    if found is None:
        _log.warning("%s 주문 상태 조회: 주문이 아직 목록에 없습니다 (주문은 접수됨): %s", venue, order_no)
        return accepted
    state = found.result()
    state.message = accepted.message
    return state
