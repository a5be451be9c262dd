"""quanttrade/heap.py: a started web process and a started Celery worker freeze their startup
heap, so the garbage collector no longer walks it on every full collection."""

from __future__ import annotations

from pathlib import Path

from tests.embedded import run_embedded

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
    result = run_embedded(tmp_path, START, kind)
    assert result.returncode == 0, result.stderr
    return result.stdout.split()


def test_a_web_process_freezes_its_startup_heap(tmp_path: Path) -> None:
    frozen, resolved = _start("web", tmp_path)
    assert int(frozen) > 50_000  # Django, the apps, the URLconf and its views
    assert resolved == "True"


def test_a_celery_worker_freezes_its_heap_once_started(tmp_path: Path) -> None:
    frozen, _ = _start("worker", tmp_path)
    assert int(frozen) > 50_000
