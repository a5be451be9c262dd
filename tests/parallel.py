"""Parallel test workers (pytest-xdist) share nothing that a test can observe.

Loaded with ``-p tests.parallel`` (pyproject.toml) so that it runs before pytest-django reads
the settings: a conftest is imported too late for that. In an xdist worker (``gw0``, ``gw1``,
…) it points the process, and every server or worker process a test starts from it, at

- its own Redis database (``REDIS_URL``/``CELERY_BROKER_URL``): the cache, the Celery broker's
  queues, rate buckets and the price store are per database;
- its own channel-layer prefix (``CHANNEL_LAYER_PREFIX``): Redis pub/sub channels are not per
  database, so without it one worker's tests would receive the other's order and price events;
- its own data folder (``gw<N>`` inside ``QT_DATA_DIR`` or the default ``data/``): the signal
  spool, logs and local secrets live there.

PostgreSQL needs nothing here: pytest-django gives each worker its own test database
(``test_<name>_gw0``). Outside xdist (``-n 0``) the module does nothing.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest

# Redis has 16 databases; the suite's own (usually 0) stays unused by the workers.
_MAX_WORKERS = 15


def _worker_number() -> int | None:
    worker = os.environ.get("PYTEST_XDIST_WORKER", "")
    match = re.fullmatch(r"gw(\d+)", worker)
    return int(match.group(1)) if match else None


def _with_database(url: str, database: int) -> str:
    """``redis://host:port/0`` (or without a database) with ``database`` instead."""
    base, _, query = url.partition("?")
    base = re.sub(r"(redis(?:s)?://[^/]*)(/\d*)?$", rf"\g<1>/{database}", base)
    return base + (f"?{query}" if query else "")


# Where the settings put the data folder when QT_DATA_DIR is not set (quanttrade/settings.py).
DEFAULT_DATA_DIR = Path(__file__).resolve().parent.parent / "data"


def isolate(
    environ: dict[str, str] | os._Environ[str], worker: int, default_data_dir: Path = DEFAULT_DATA_DIR
) -> None:
    """Give worker number ``worker`` its own Redis database, channel prefix and data folder (a
    ``gw<N>`` folder inside QT_DATA_DIR, or inside the default data folder)."""
    if worker >= _MAX_WORKERS:
        raise pytest.UsageError(f"at most {_MAX_WORKERS} parallel workers (one Redis database each)")
    for name in ("REDIS_URL", "CELERY_BROKER_URL"):
        url = environ.get(name, "")
        if url.startswith(("redis://", "rediss://")):
            environ[name] = _with_database(url, worker + 1)
    environ["CHANNEL_LAYER_PREFIX"] = f"asgi-gw{worker}"
    folder = Path(environ.get("QT_DATA_DIR") or default_data_dir) / f"gw{worker}"
    folder.mkdir(parents=True, exist_ok=True, mode=0o700)
    environ["QT_DATA_DIR"] = str(folder)


_number = _worker_number()
if _number is not None:
    isolate(os.environ, _number)


# Tests that start servers, browsers and worker processes of their own run one after another on
# one worker (--dist loadgroup): two of them at once on a 2-core machine would each get about half
# the CPU their timeouts were set for. The others spread over the workers.
_PROCESS_MARKERS = ("browser", "soak", "chaos")
_PROCESS_MODULES = (
    "tests/prices/test_live_server.py",
    "tests/execution/test_serve.py",
    "tests/webhook/test_proxy_headers.py",
)


@pytest.hookimpl(tryfirst=True)  # before xdist reads the groups
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if item.nodeid.startswith(_PROCESS_MODULES) or any(
            item.get_closest_marker(name) for name in _PROCESS_MARKERS
        ):
            item.add_marker(pytest.mark.xdist_group("processes"))
