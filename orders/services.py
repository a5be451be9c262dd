"""Writes for orders: dispatch to the workers, execution, status changes."""

from __future__ import annotations

import logging
from collections.abc import Iterable
from uuid import UUID

from quanttrade.celery import app as celery_app

log = logging.getLogger("quanttrade.orders")

EXECUTE_TASK = "orders.tasks.execute_account_orders"


def orders_dispatch(webhook_id: UUID | str, account_ids: Iterable[int]) -> None:
    """Enqueue one execution task per account. Never raises: a broker outage is logged and
    the periodic sweep re-dispatches the orders, which stay `queued` in the database."""
    for account_id in account_ids:
        try:
            celery_app.send_task(EXECUTE_TASK, args=[str(webhook_id), account_id], retry=False)
        except Exception as exc:  # noqa: BLE001 - any broker failure must not fail the webhook
            log.error("주문 전달 실패 (스윕에서 재전달): webhook=%s account=%s %s", webhook_id, account_id, exc)
