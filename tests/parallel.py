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
from typing import TYPE_CHECKING, Any

import pytest
from xdist.scheduler import LoadScopeScheduling

if TYPE_CHECKING:
    from xdist.workermanage import WorkerController

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


# How the tests are spread over the workers (``--dist loadscope``, replaced by the scheduler
# below). Every test is a unit of work of its own, given to whichever worker is free, except in
# the modules that start servers and browsers: each of those is one unit, run by one worker, so
# its module fixtures (a product server with its worker, a seeded data folder) start once, not
# once per worker that happens to run one of its tests. The units known to be long start first,
# so the suite does not end waiting on one of them started last (xdist orders units by their
# number of tests, then as collected: the fuzz test, one test of 3-4 minutes, came last, and the
# venue soak tests, 25-50 s each, were collected last). The order is that of one CI-like run's
# `--durations` on this 2-core machine (PostgreSQL + Redis, three workers), seconds beside each.
WHOLE_MODULES = (
    "tests/pages/test_browser",  # test_browser*.py
    "tests/prices/test_live_server.py",
    "tests/webhook/test_proxy_headers.py",
)
# A unit, or a module: then each of its units, in the order collected.
LONGEST_FIRST = (
    "tests/fuzz/test_intake_fuzz.py::test_no_body_gets_a_5xx",  # 410
    "tests/pages/test_browser.py",  # 150
    "tests/pages/test_browser_approval.py",  # 115
    "tests/prices/test_live_server.py",  # 110
    "tests/chaos/test_outages.py",  # 55-70 each
    "tests/pages/test_browser_portfolio.py",  # 70
    "tests/pages/test_browser_ui.py",  # 55
    "tests/webhook/test_proxy_headers.py",  # 55
    "tests/venues/test_soak_ledger.py",  # 45-50 each
    "tests/pages/test_browser_connect.py",  # 45
    "tests/venues/test_soak.py",  # 25-30 each
    "tests/execution/test_serve.py",  # 20
)


def _in(scope: str, entry: str) -> bool:
    """Whether unit ``scope`` is LONGEST_FIRST's ``entry``, or one of the tests of its module."""
    return scope == entry or (entry.endswith(".py") and scope.startswith(entry + "::"))


class ModuleScheduling(LoadScopeScheduling):
    """xdist's ``loadscope`` with a unit per test, or per module for WHOLE_MODULES, the known
    long units first.

    (xdist's ``loadgroup`` groups by marker, but on pytest 9 its groups never reach the
    scheduler: xdist 3.8 renames ``item._nodeid``, which pytest 9 no longer reads, so every test
    was a unit of its own and a module's fixtures started again on each worker.)"""

    _ordered = False

    def _split_scope(self, nodeid: str) -> str:
        module = nodeid.split("::", 1)[0]
        return module if module.startswith(WHOLE_MODULES) else nodeid

    def _assign_work_unit(self, node: WorkerController) -> None:
        if not self._ordered:  # the queue is complete before the first unit leaves it
            for entry in reversed(LONGEST_FIRST):  # each to the front: the longest ends first
                for scope in reversed([scope for scope in self.workqueue if _in(scope, entry)]):
                    self.workqueue.move_to_end(scope, last=False)
            self._ordered = True
        super()._assign_work_unit(node)


def pytest_xdist_make_scheduler(config: pytest.Config, log: Any) -> ModuleScheduling | None:
    if config.getvalue("dist") != "loadscope":
        return None  # another --dist given on the command line: xdist's own
    return ModuleScheduling(config, log)
