"""Celery application. Settings come from Django's settings under the ``CELERY_`` prefix."""

from __future__ import annotations

import os
import threading
from typing import Any

from celery import Celery
from celery.signals import task_prerun, worker_process_init, worker_ready

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "quanttrade.settings")

app = Celery("quanttrade")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()


@task_prerun.connect(weak=False)
def _activate_default_language(**_: Any) -> None:
    """Messages stored by tasks (order outcomes) are in the site language, whatever language
    a request served earlier on the same worker thread had activated."""
    from django.conf import settings
    from django.utils import translation

    translation.activate(settings.LANGUAGE_CODE)


def _warm_venues() -> None:
    from django.db import close_old_connections

    from orders.services import venues_warm

    try:
        venues_warm()
    finally:
        close_old_connections()


@worker_ready.connect(weak=False)
@worker_process_init.connect(weak=False)
def _start_venue_warmup(**_: Any) -> None:
    """Load venue markets and tokens in the background as the worker (or a prefork child)
    starts, so the first order after a restart does not wait for them."""
    if os.environ.get("QT_SKIP_VENUE_WARMUP"):
        return
    threading.Thread(target=_warm_venues, name="venue-warmup", daemon=True).start()
