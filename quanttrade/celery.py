"""Celery application. Settings come from Django's settings under the ``CELERY_`` prefix."""

from __future__ import annotations

import os
from typing import Any

from celery import Celery
from celery.signals import task_prerun, worker_ready

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "quanttrade.settings")

app = Celery("quanttrade")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()


def broker_in_memory() -> bool:
    """Embedded mode's broker (``memory://``): the workers are threads of the one process."""
    from django.conf import settings  # noqa: PLC0415 - this module loads before Django is set up

    return str(settings.CELERY_BROKER_URL).startswith("memory")


@task_prerun.connect(weak=False)
def _activate_default_language(**_: Any) -> None:
    """Messages stored by tasks (order outcomes) are in the site language, whatever language
    a request served earlier on the same worker thread had activated."""
    # This module loads before Django is set up (quanttrade/__init__ imports it).
    from django.conf import settings  # noqa: PLC0415
    from django.utils import translation  # noqa: PLC0415

    translation.activate(settings.LANGUAGE_CODE)


@worker_ready.connect(weak=False)
def _freeze_startup_heap(**_: Any) -> None:
    """A started worker's heap (Django, the tasks, the venue adapters) lives as long as the
    worker: out of the garbage collector's walks (quanttrade/heap.py)."""
    from quanttrade.heap import startup_heap_freeze  # noqa: PLC0415

    startup_heap_freeze()
