"""Celery tasks: thin wrappers around notify.services (names match CELERY_BEAT_SCHEDULE)."""

from __future__ import annotations

import logging
from datetime import datetime

from celery import Task, shared_task
from celery.exceptions import Retry

from notify.services import FlushRetry, destination_flush, notifications_sweep

log = logging.getLogger("quanttrade.notify")


@shared_task(
    name="notify.tasks.notify_flush", bind=True, acks_late=True, max_retries=None, ignore_result=True
)
def notify_flush(self: Task, destination_id: int, due: str | None = None) -> int:
    """Send one destination's pending notifications as one message; a failure or the rate
    limit re-runs the task later (the outbox keeps the rows meanwhile). ``due``: the moment it
    was scheduled for (ISO), None to flush now whatever is scheduled."""
    try:
        return destination_flush(destination_id, datetime.fromisoformat(due) if due else None)
    except FlushRetry as retry:
        try:
            raise self.retry(
                args=[destination_id, retry.due.isoformat()], countdown=retry.countdown
            ) from retry
        except Retry:
            raise
        except Exception as exc:  # the broker refused the retry: the sweep schedules it again
            log.error("알림 재시도 예약 실패 (스윕에서 재시도): destination=%s %s", destination_id, exc)
            return 0


@shared_task(name="notify.tasks.notify_sweep", ignore_result=True)
def notify_sweep() -> dict[str, int]:
    """Re-schedule flushes lost to a broker outage, release rows a dead worker held."""
    return notifications_sweep()
