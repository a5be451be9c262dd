"""``set_each`` (quanttrade/cache.py): several keys, each with its own timeout, in one write.

A worker's start records its task (hours) and its heartbeat (seconds) together
(orders.liveness.mark_started): one round trip to Redis instead of two, on the order's way to
its venue. Both of the product's caches have it; Redis's is checked against a real server
when REDIS_URL is set (CI)."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
import time_machine

from quanttrade.cache import EmbeddedCache, RedisCache
from tests.prices.conftest import redis_url, requires_redis

ITEMS = {"task": ({"due": 1764547200.5, "worker": "host:1"}, 3600), "beat": (1, 10)}


@contextmanager
def pipelines_sent(client: Any) -> Iterator[list[int]]:
    """The number of commands of each pipeline ``client``'s pipelines send meanwhile."""
    sent: list[int] = []
    pipeline_class = type(client.pipeline())
    original = pipeline_class.execute

    def execute(self: Any, *args: Any, **kwargs: Any) -> Any:
        sent.append(len(self.command_stack))
        return original(self, *args, **kwargs)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(pipeline_class, "execute", execute)
        yield sent


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
    with pipelines_sent(client) as sent:
        cache.set_each(ITEMS)
    assert sent == [2]  # both keys, one pipeline
    try:
        assert cache.get_many(["task", "beat"]) == {"task": ITEMS["task"][0], "beat": 1}
        assert 3590 < client.ttl(cache.make_key("task")) <= 3600
        assert 0 < client.ttl(cache.make_key("beat")) <= 10
    finally:
        cache.delete_many(["task", "beat"])


@requires_redis
def test_redis_set_many_is_one_command_and_keeps_djangos_timeouts() -> None:
    """``set_many`` (a fan-out's dispatch records) is one script on the server, whatever the
    number of keys, with Django's meaning of the timeout: seconds, None for ever, 0 deleted."""
    cache = RedisCache(redis_url(), {"KEY_PREFIX": f"test-{uuid.uuid4()}"})
    client = cache._cache.get_client(None, write=True)
    record = {"due": 1764547200.5, "worker": "", "eta": False}
    data = {f"d{i}": record for i in range(300)} | {"n": 7, "s": "text"}
    sent: list[str] = []
    original = client.execute_command

    def spy(*args: Any, **kwargs: Any) -> Any:
        sent.append(str(args[0]))
        return original(*args, **kwargs)

    try:
        with pytest.MonkeyPatch.context() as patch:
            patch.setattr(client, "execute_command", spy)
            assert cache.set_many(data, timeout=600) == []
        # One EVALSHA; the first use on a server that lacks the script loads it and tries again.
        assert sent in (["EVALSHA"], ["EVALSHA", "SCRIPT LOAD", "EVALSHA"]), sent
        assert cache.get_many(list(data)) == data
        assert 590 < client.ttl(cache.make_key("d0")) <= 600
        assert 590 < client.ttl(cache.make_key("n")) <= 600
        cache.set_many({"d0": 1, "n": 2}, timeout=None)  # kept for ever
        assert client.ttl(cache.make_key("d0")) == -1 and cache.get_many(["d0", "n"]) == {"d0": 1, "n": 2}
        cache.set_many({"d0": 1, "s": 2}, timeout=0)  # Django: a timeout of 0 deletes
        assert cache.get("d0") is None and cache.get("s") is None and cache.get("d1") == record
        assert cache.set_many({}) == []
    finally:
        cache.delete_many(list(data))


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


@requires_redis
def test_redis_adds_each_absent_key_in_one_command_and_keeps_present_ones() -> None:
    """``add_each`` (a worker's gathered refresh requests marking their accounts pending, the
    intake's dispatch records after its publish): ``add`` of each key, one script, and which
    keys were added."""
    cache = RedisCache(redis_url(), {"KEY_PREFIX": f"test-{uuid.uuid4()}"})
    client = cache._cache.get_client(None, write=True)
    cache.set("b", "held elsewhere", 60)
    sent: list[str] = []
    original = client.execute_command

    def spy(*args: Any, **kwargs: Any) -> Any:
        sent.append(str(args[0]))
        return original(*args, **kwargs)

    try:
        with pytest.MonkeyPatch.context() as patch:
            patch.setattr(client, "execute_command", spy)
            assert cache.add_each(["a", "b", "c"], 1, 40) == [True, False, True]
        # One EVALSHA; the first use on a server that lacks the script loads it and tries again.
        assert sent in (["EVALSHA"], ["EVALSHA", "SCRIPT LOAD", "EVALSHA"]), sent
        assert cache.get_many(["a", "b", "c"]) == {"a": 1, "b": "held elsewhere", "c": 1}
        assert 30 < client.ttl(cache.make_key("a")) <= 40
        assert 50 < client.ttl(cache.make_key("b")) <= 60  # kept, its own timeout too
        assert cache.add_each(["a", "d"], 2, None) == [False, True]
        assert client.ttl(cache.make_key("d")) == -1  # None: for ever
        assert cache.add_each([], 1, 40) == []
        with pytest.raises(ValueError, match="more than 0"):
            cache.add_each(["e"], 1, 0)
    finally:
        cache.delete_many(["a", "b", "c", "d", "e"])
