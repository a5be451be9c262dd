"""Redis started again from a snapshot: a dispatch record naming a live process that no longer
runs the pair is forgotten at that process's next beat, so the sweep re-sends the pair's queued
orders instead of waiting for the record to expire (hours). Found by a review: the order's
retry had been scheduled after the snapshot, and its message was not in the restored broker.
A real redis-server saving to and loading from its dump file."""

from __future__ import annotations

import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from django.core.cache import cache
from django.test import override_settings

from orders import liveness
from tests.chaos.harness import available
from tests.ports import free_port

PAIR_ENDED = ("5d7c1a52-0000-4000-8000-000000000001", 1)
PAIR_RUNNING = ("5d7c1a52-0000-4000-8000-000000000002", 2)


class _Redis:
    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.port = free_port()
        self.proc: subprocess.Popen[bytes] | None = None

    def cli(self, *args: str) -> str:
        done = subprocess.run(
            ["redis-cli", "-p", str(self.port), *args], capture_output=True, text=True, check=False
        )
        return done.stdout.strip()

    def start(self) -> None:
        self.proc = subprocess.Popen(
            [
                *("redis-server", "--bind", "127.0.0.1", "--port", str(self.port)),
                *("--save", "", "--appendonly", "no", "--dir", str(self.folder), "--dbfilename", "dump.rdb"),
            ],
            stdout=subprocess.DEVNULL,
            start_new_session=True,
        )
        deadline = time.monotonic() + 10
        while self.cli("ping") != "PONG":
            assert time.monotonic() < deadline, "redis-server did not start"
            time.sleep(0.05)

    def restart_from_snapshot(self) -> None:
        """Stop without saving (a crash) and start again: the server loads the last dump."""
        self.cli("shutdown", "nosave")
        assert self.proc is not None
        self.proc.wait(10)
        self.start()

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)


@pytest.fixture
def redis(tmp_path: Path, no_heartbeat_thread: None) -> Iterator[_Redis]:
    reason = available()
    if reason:
        pytest.skip(reason)
    server = _Redis(tmp_path)
    server.start()
    caches = {
        "default": {
            "BACKEND": "quanttrade.cache.RedisCache",
            "LOCATION": f"redis://127.0.0.1:{server.port}/0",
            "OPTIONS": {"socket_connect_timeout": 1, "socket_timeout": 1},
        }
    }
    try:
        with override_settings(CACHES=caches):
            liveness._store_run.clear()
            yield server
    finally:
        liveness._store_run.clear()
        liveness._running_discard(
            [liveness._dispatch_key(*PAIR_ENDED), liveness._dispatch_key(*PAIR_RUNNING)]
        )
        server.stop()


def test_a_record_a_snapshot_brings_back_is_forgotten_by_the_process_it_names(redis: _Redis) -> None:
    # Two pairs start on this process; the first beat sees the server's run id.
    liveness.mark_started_dispatched_at(*PAIR_ENDED, dispatched_at=time.time())
    liveness.mark_started_dispatched_at(*PAIR_RUNNING, dispatched_at=time.time())
    liveness.beat()
    assert redis.cli("save") == "OK"  # the snapshot holds both records, naming this process
    # The first pair's task schedules a retry (its record names nobody now) and its message goes
    # to the broker after the snapshot; the second is still running.
    liveness.mark_dispatched(*PAIR_ENDED, countdown=5)
    assert not liveness.dispatch_lost(*PAIR_ENDED, 30)

    redis.restart_from_snapshot()

    ended: Any = cache.get(liveness._dispatch_key(*PAIR_ENDED))
    assert ended["worker"] == liveness.worker_id()  # back from the snapshot
    assert not liveness.dispatch_lost(*PAIR_ENDED, 30)  # held by a live process, for hours
    liveness.beat()
    assert cache.get(liveness._dispatch_key(*PAIR_ENDED)) is None
    assert liveness.dispatch_lost(*PAIR_ENDED, 30)  # the sweep re-sends it
    running: Any = cache.get(liveness._dispatch_key(*PAIR_RUNNING))
    assert running["worker"] == liveness.worker_id()  # still running here: kept
    assert not liveness.dispatch_lost(*PAIR_RUNNING, 30)


def test_beats_without_a_restart_leave_the_records_alone(redis: _Redis) -> None:
    liveness.beat()
    liveness.mark_started_dispatched_at(*PAIR_ENDED, dispatched_at=time.time())
    liveness._running_discard([liveness._dispatch_key(*PAIR_ENDED)])  # as if it had ended unrecorded
    liveness.beat()
    liveness.beat()
    ended: Any = cache.get(liveness._dispatch_key(*PAIR_ENDED))
    assert ended["worker"] == liveness.worker_id()
