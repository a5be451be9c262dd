"""``set_each`` (quanttrade/cache.py): several keys, each with its own timeout, in one write.

A worker's start records its task (hours) and its heartbeat (seconds) together
(orders.liveness.mark_started): one round trip to Redis instead of two, on the order's way to
its venue. Both of the product's caches have it; Redis's is checked against a real server
when REDIS_URL is set (CI)."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
import time_machine

from quanttrade.cache import EmbeddedCache, RedisCache
from tests.prices.conftest import redis_url, requires_redis

ITEMS = {"task": ({"due": 1764547200.5, "worker": "host:1"}, 3600), "beat": (1, 10)}


def test_the_embedded_cache_sets_each_key_with_its_own_timeout() -> None:
    cache = EmbeddedCache(f"test-{uuid.uuid4()}", {})
    with time_machine.travel(1_800_000_000, tick=False) as clock:
        cache.set_each(ITEMS)
        assert cache.get_many(["task", "beat"]) == {"task": ITEMS["task"][0], "beat": 1}
        clock.shift(11)  # the heartbeat's 10 s are over, the task's hour is not
        assert cache.get_many(["task", "beat"]) == {"task": ITEMS["task"][0]}
        clock.shift(3600)
        assert cache.get("task") is None


@requires_redis
def test_redis_sets_each_key_with_its_own_timeout_in_one_round_trip() -> None:
    cache = RedisCache(redis_url(), {"KEY_PREFIX": f"test-{uuid.uuid4()}"})
    client = cache._cache.get_client(None, write=True)
    sent: list[Any] = []
    pipeline_class = type(client.pipeline())
    original = pipeline_class.execute

    def execute(self: Any, *args: Any, **kwargs: Any) -> Any:
        sent.append(len(self.command_stack))
        return original(self, *args, **kwargs)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(pipeline_class, "execute", execute)
        cache.set_each(ITEMS)
    assert sent == [2]  # both keys, one pipeline
    try:
        assert cache.get_many(["task", "beat"]) == {"task": ITEMS["task"][0], "beat": 1}
        assert 3590 < client.ttl(cache.make_key("task")) <= 3600
        assert 0 < client.ttl(cache.make_key("beat")) <= 10
    finally:
        cache.delete_many(["task", "beat"])


def test_a_workers_start_records_its_task_and_its_heartbeat() -> None:
    """After mark_started the task's record names this worker and the worker's heartbeat is
    there, whenever the heartbeat thread last beat (the sweep judges the task by it)."""
    from django.core.cache import cache

    from orders import liveness

    webhook_id = uuid.uuid4()
    liveness.mark_dispatched(webhook_id, 7)
    liveness.start_heartbeat()  # the heartbeat thread runs (and last beat before the key went)
    cache.delete(liveness._heartbeat_key(liveness.worker_id()))
    liveness.mark_started(webhook_id, 7)
    assert cache.get(liveness._heartbeat_key(liveness.worker_id())) == 1
    assert cache.get(liveness._dispatch_key(webhook_id, 7))["worker"] == liveness.worker_id()
    assert liveness.dispatch_lost(webhook_id, 7, 60) is False
    liveness.clear_dispatch(webhook_id, 7)
