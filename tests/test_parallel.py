"""tests/parallel.py: each pytest-xdist worker gets its own Redis database, channel prefix and
data folder, so parallel workers share nothing a test can observe."""

from __future__ import annotations

import os
from collections import OrderedDict
from pathlib import Path

import pytest
from django.conf import settings

from tests.parallel import ModuleScheduling, isolate


def test_a_worker_gets_its_own_redis_database_channel_prefix_and_data_folder(tmp_path: Path) -> None:
    environ = {
        "REDIS_URL": "redis://127.0.0.1:56379/0",
        "CELERY_BROKER_URL": "redis://:secret@127.0.0.1:56379?socket_timeout=2",
        "QT_DATA_DIR": str(tmp_path),
    }
    isolate(environ, 1)
    assert environ == {
        "REDIS_URL": "redis://127.0.0.1:56379/2",
        "CELERY_BROKER_URL": "redis://:secret@127.0.0.1:56379/2?socket_timeout=2",
        "QT_DATA_DIR": str(tmp_path / "gw1"),
        "CHANNEL_LAYER_PREFIX": "asgi-gw1",
    }
    assert (tmp_path / "gw1").is_dir()
    other = {"REDIS_URL": "redis://127.0.0.1:56379/0"}
    isolate(other, 0, default_data_dir=tmp_path / "default")
    assert other["REDIS_URL"] == "redis://127.0.0.1:56379/1" and other["CHANNEL_LAYER_PREFIX"] == "asgi-gw0"
    embedded: dict[str, str] = {}
    isolate(embedded, 0, default_data_dir=tmp_path / "default")  # no Redis, no data folder given
    assert embedded == {"CHANNEL_LAYER_PREFIX": "asgi-gw0", "QT_DATA_DIR": str(tmp_path / "default" / "gw0")}
    assert (tmp_path / "default" / "gw0").is_dir()
    with pytest.raises(pytest.UsageError, match="at most 15"):
        isolate({}, 15)


@pytest.mark.django_db
@pytest.mark.skipif("PYTEST_XDIST_WORKER" not in os.environ, reason="runs in one process (-n 0)")
def test_this_workers_settings_are_its_own() -> None:
    from django.db import connection

    worker = os.environ["PYTEST_XDIST_WORKER"]
    if settings.REDIS_URL:
        assert settings.REDIS_URL.endswith(f"/{int(worker[2:]) + 1}")
        assert settings.CHANNEL_LAYERS["default"]["CONFIG"]["prefix"] == f"asgi-{worker}"
    assert str(settings.DATA_DIR).endswith(worker)
    if connection.vendor == "postgresql":
        assert connection.settings_dict["NAME"].endswith(f"_{worker}")


class _Worker:
    def __init__(self) -> None:
        self.sent: list[list[int]] = []

    def send_runtest_some(self, indexes: list[int]) -> None:
        self.sent.append(indexes)


def test_a_browser_module_is_one_unit_of_work_and_the_longest_start_first() -> None:
    collection = [
        "tests/test_a.py::test_one",
        "tests/test_a.py::test_two[x]",
        "tests/pages/test_browser.py::test_login",
        "tests/test_b.py::Group::test_three",
        "tests/pages/test_browser.py::test_chart",
        "tests/fuzz/test_intake_fuzz.py::test_no_body_gets_a_5xx",
        "tests/venues/test_soak.py::test_soak[binance]",
        "tests/venues/test_soak.py::test_soak[okx]",
        "tests/venues/test_soak_ledger.py::test_soak[kis]",
    ]
    scheduler = ModuleScheduling.__new__(ModuleScheduling)  # no xdist config needed for this
    scheduler.workqueue = OrderedDict()
    for nodeid in collection:
        scheduler.workqueue.setdefault(scheduler._split_scope(nodeid), {})[nodeid] = False
    assert list(scheduler.workqueue) == [
        "tests/test_a.py::test_one", "tests/test_a.py::test_two[x]", "tests/pages/test_browser.py",
        "tests/test_b.py::Group::test_three", "tests/fuzz/test_intake_fuzz.py::test_no_body_gets_a_5xx",
        "tests/venues/test_soak.py::test_soak[binance]", "tests/venues/test_soak.py::test_soak[okx]",
        "tests/venues/test_soak_ledger.py::test_soak[kis]",
    ]  # fmt: skip
    worker = _Worker()
    scheduler.assigned_work = {worker: {}}  # type: ignore[dict-item]
    scheduler.registered_collections = {worker: collection}  # type: ignore[dict-item]
    for _ in range(8):
        scheduler._assign_work_unit(worker)  # type: ignore[arg-type]
    # the fuzz test, the browser module (both its tests), the ledger soak test, each venue soak
    # test as collected (a module listed whole: each of its tests), then the others as collected
    assert worker.sent == [[5], [2, 4], [8], [6], [7], [0], [1], [3]]
