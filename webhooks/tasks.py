"""Periodic housekeeping of the webhook log (celery beat in distributed mode, serve's loop in
embedded mode)."""

from __future__ import annotations

from celery import shared_task

from webhooks.services import webhooks_sweep as sweep


@shared_task(name="webhooks.tasks.webhooks_sweep", ignore_result=True)
def webhooks_sweep() -> dict[str, int]:
    return sweep()
