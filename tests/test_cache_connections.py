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


def _connections_named(url: str, name: str) -> int:
    """How many connections the Redis server has open under the client name ``name``."""
    with redis.Redis.from_url(url) as probe:
        return sum(1 for client in probe.client_list() if client.get("name") == name)


@requires_redis
def test_cache_instances_of_other_threads_share_the_process_connections() -> None:
    url = redis_url()
    name = f"qt-test-{uuid.uuid4().hex[:12]}"  # this test's connections only, whatever else runs
    options = {"OPTIONS": {"socket_connect_timeout": 1, "socket_timeout": 1, "client_name": name}}
    key = f"test-conn-{uuid.uuid4().hex}"
    RedisCache(url, options).set(key, "v", 30)
    instances: list[RedisCache] = []  # kept alive: a pool of their own would stay connected
    seen: list[object] = []

    def request() -> None:  # as a request's thread: a cache instance of its own
        instance = RedisCache(url, options)
        instances.append(instance)
        seen.append(instance.get(key))

    threads = [threading.Thread(target=request) for _ in range(10)]
    for thread in threads:
        thread.start()
        thread.join()
    assert seen == ["v"] * 10
    assert _connections_named(url, name) == 1  # the process's one connection, reused


@requires_redis
def test_instances_with_other_options_do_not_share() -> None:
    """A cache configured differently (another timeout) gets a client of its own."""
    url = redis_url()
    first = RedisCache(url, {"OPTIONS": {"socket_timeout": 1}})._cache.get_client()
    second = RedisCache(url, {"OPTIONS": {"socket_timeout": 2}})._cache.get_client()
    assert first is not second
    assert first.connection_pool.connection_kwargs["socket_timeout"] == 1
    assert second.connection_pool.connection_kwargs["socket_timeout"] == 2
