"""The Redis cache keeps one connection pool per process (quanttrade/cache.py).

Django makes a cache instance per thread and per request context; each opened a pool of its own
and so a new Redis connection (TCP connect and handshake) on every webhook's first cache call.
Checked against a real Redis server (CI): the server counts the connections it received."""

from __future__ import annotations

import threading
import uuid

import redis

from quanttrade.cache import RedisCache
from tests.prices.conftest import redis_url, requires_redis


def _connections_received(url: str) -> int:
    with redis.Redis.from_url(url) as probe:
        return int(probe.info("stats")["total_connections_received"])


@requires_redis
def test_cache_instances_of_other_threads_share_the_process_connections() -> None:
    url = redis_url()
    options = {"OPTIONS": {"socket_connect_timeout": 1, "socket_timeout": 1}}
    key = f"test-conn-{uuid.uuid4().hex}"
    RedisCache(url, options).set(key, "v", 30)  # the process's pool, connected once
    before = _connections_received(url)
    seen: list[object] = []

    def request() -> None:  # as a request's thread: a cache instance of its own
        seen.append(RedisCache(url, options).get(key))

    threads = [threading.Thread(target=request) for _ in range(10)]
    for thread in threads:
        thread.start()
        thread.join()
    assert seen == ["v"] * 10
    # Only the probe's own connection: the ten instances reused the process's one.
    assert _connections_received(url) - before == 1


@requires_redis
def test_instances_with_other_options_do_not_share() -> None:
    """A cache configured differently (another timeout) gets a client of its own."""
    url = redis_url()
    first = RedisCache(url, {"OPTIONS": {"socket_timeout": 1}})._cache.get_client()
    second = RedisCache(url, {"OPTIONS": {"socket_timeout": 2}})._cache.get_client()
    assert first is not second
    assert first.connection_pool.connection_kwargs["socket_timeout"] == 1
    assert second.connection_pool.connection_kwargs["socket_timeout"] == 2
