"""quanttrade/heap.py: a started web process and a started Celery worker freeze their startup
heap, so the garbage collector no longer walks it on every full collection."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

START = """
import gc, sys
kind = sys.argv[1]
if kind == "web":
    import quanttrade.asgi  # what daphne, uvicorn and gunicorn load
else:
    import django
    django.setup()
    from celery.signals import worker_ready
    from quanttrade.celery import app
    assert gc.get_freeze_count() == 0
    worker_ready.send(sender=None)  # what a worker sends once it has started
frozen = gc.get_freeze_count()
import django.urls
resolved = django.urls.resolve("/api/webhook").func is not None
print(frozen, resolved)
"""


def _start(kind: str, tmp_path: Path) -> list[str]:
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "REDIS_URL", "CELERY_BROKER_URL")}
    env |= {"DJANGO_SETTINGS_MODULE": "quanttrade.settings", "QT_DATA_DIR": str(tmp_path)}
    result = subprocess.run(
        [sys.executable, "-c", START, kind], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr
    return result.stdout.split()


def test_a_web_process_freezes_its_startup_heap(tmp_path: Path) -> None:
    frozen, resolved = _start("web", tmp_path)
    assert int(frozen) > 50_000  # Django, the apps, the URLconf and its views
    assert resolved == "True"


def test_a_celery_worker_freezes_its_heap_once_started(tmp_path: Path) -> None:
    frozen, _ = _start("worker", tmp_path)
    assert int(frozen) > 50_000
