"""Cache backends: Django's Redis cache keeping one redis-py client (and its connection pool)
per server for the whole process, and embedded mode's in-process cache writing a batch of keys
at once.

Django's ``RedisCacheClient.get_client`` builds a new ``redis.Redis`` for every cache call (a few
hundred dict writes for its response callbacks), and each cache instance (one per thread and
request context) its own connection pool; the intake makes a cache call on every request (the
strategies' generation token). A ``redis.Redis`` is thread-safe and fork-aware through its
pool, so one per server and process is enough.
"""

from __future__ import annotations

import pickle
import threading
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from django.core.cache.backends.base import DEFAULT_TIMEOUT
from django.core.cache.backends.locmem import LocMemCache
from django.core.cache.backends.redis import RedisCache as DjangoRedisCache
from django.core.cache.backends.redis import RedisCacheClient

# (server URL, pool options) -> the process's redis-py client for it. Shared by every cache
# instance of the process: Django makes a cache instance per thread and per request context
# (``django.core.cache.caches`` is a ``Local``), and each would otherwise open its own pool and
# connect anew, a TCP connect and a handshake (HELLO, CLIENT SETINFO, whose library version
# redis-py reads from the package's metadata on every connection) on every webhook's first
# cache call. A ``redis.Redis`` and its pool are thread-safe, and the pool reconnects after a fork.
_process_clients: dict[tuple[str, str], Any] = {}
_process_clients_lock = threading.Lock()
# (id of a process client, source) -> the script registered with it.
_process_scripts: dict[tuple[int, str], Any] = {}


class ReusingRedisCacheClient(RedisCacheClient):
    if TYPE_CHECKING:
        # Private parts of Django's RedisCacheClient (django/core/cache/backends/redis.py) that
        # django-stubs leaves out; this class relies on them.
        _client: Callable[..., Any]
        _servers: list[str]
        _pool_options: dict[str, Any]

        def _get_connection_pool_index(self, write: bool) -> int: ...
        def _get_connection_pool(self, write: bool) -> Any: ...

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        options = repr(sorted(self._pool_options.items()))
        self._shared = [(server, options) for server in self._servers]  # per server: its entry

    def get_client(self, key: Any = None, *, write: bool = False) -> Any:
        index = self._get_connection_pool_index(write)
        shared = self._shared[index]
        client = _process_clients.get(shared)
        if client is None:
            with _process_clients_lock:
                client = _process_clients.get(shared)
                if client is None:
                    client = self._client(connection_pool=self._get_connection_pool(write))
                    _process_clients[shared] = client
        return client


# KEYS: the keys; ARGV[1]: seconds to keep them ("" for ever, 0 or less: delete); ARGV[2...]:
# each key's value.
_SET_MANY = """
local seconds = tonumber(ARGV[1])
for i, key in ipairs(KEYS) do
    if seconds == nil then
        redis.call('SET', key, ARGV[i + 1])
    elseif seconds > 0 then
        redis.call('SET', key, ARGV[i + 1], 'EX', seconds)
    else
        redis.call('DEL', key)
    end
end
return #KEYS
"""

# KEYS: the keys; ARGV[1]: seconds to keep them ("" for ever); ARGV[2]: the value. Returns, for
# each key, 1 when it was absent and is set now, 0 when it was there (and is left as it was).
_ADD_EACH = """
local seconds = tonumber(ARGV[1])
local added = {}
for i, key in ipairs(KEYS) do
    local done
    if seconds == nil then
        done = redis.call('SET', key, ARGV[2], 'NX')
    else
        done = redis.call('SET', key, ARGV[2], 'EX', seconds, 'NX')
    end
    added[i] = done and 1 or 0
end
return added
"""


class KeysUnchecked:
    """No memcached key check on every cache call. Django's ``BaseCache.validate_key`` walks each
    key's characters in Python to warn about keys memcached would refuse (longer than 250, spaces,
    control characters); Redis and the in-process cache take any key, so it only costs: ~3 µs a
    key, 1,000 keys for a 1,000-account fan-out's dispatch records on the webhook's answer.
    (Django's documented way to change key validation: override ``validate_key``.)"""

    def validate_key(self, key: str) -> None:
        return None


class RedisCache(KeysUnchecked, DjangoRedisCache):
    if TYPE_CHECKING:
        _cache: Any  # Django's RedisCacheClient (a cached property), private in django-stubs

    def __init__(self, server: str, params: dict[str, Any]) -> None:
        super().__init__(server, params)
        self._class = ReusingRedisCacheClient

    def set_many(
        self, data: Mapping[str, Any], timeout: float | None = DEFAULT_TIMEOUT, version: int | None = None
    ) -> list[str]:
        """Django's ``set_many`` as one command: a script that sets every key with the timeout.

        Django sends MULTI, an MSET, an EXPIRE per key and EXEC: for a 1,000-account fan-out's
        dispatch records (orders.liveness.mark_dispatched_many) about 1,000 commands for the
        client to build and the server to run, 13.7 ms on the webhook's answer against 3.8 ms
        as one script. A value shared by several keys is serialised once. The timeout means
        what it means to Django: None keeps the keys for ever, 0 deletes them."""
        if not data:
            return []
        seconds = self.get_backend_timeout(timeout)
        serialized: dict[int, Any] = {}  # by the value's identity: ``data`` keeps each one alive
        keys, values = [], []
        for key, value in data.items():
            keys.append(self.make_and_validate_key(key, version=version))
            dumped = serialized.get(id(value))
            if dumped is None:
                dumped = serialized[id(value)] = self._cache._serializer.dumps(value)
            values.append(dumped)
        client = self._cache.get_client(None, write=True)
        self._script(client, _SET_MANY)(
            keys=keys, args=["" if seconds is None else seconds, *values], client=client
        )
        return []

    def _script(self, client: Any, source: str) -> Any:
        """``source`` registered with ``client`` (redis-py runs it by its hash, loading it once
        on a server that lacks it)."""
        script = _process_scripts.get((id(client), source))
        if script is None:
            script = _process_scripts[(id(client), source)] = client.register_script(source)
        return script

    def set_each(self, items: Mapping[str, tuple[Any, float]], version: int | None = None) -> None:
        """Set each key to its value with its own timeout (seconds), in one round trip:
        ``set_many`` takes one timeout for all keys. A worker's start records its task and its
        heartbeat, which expire at different times (orders.liveness.mark_started)."""
        if not items:
            return
        client = self._cache.get_client(None, write=True)
        pipeline = client.pipeline()
        for key, (value, timeout) in items.items():
            pipeline.set(
                self.make_and_validate_key(key, version=version),
                self._cache._serializer.dumps(value),
                ex=self.get_backend_timeout(timeout),
            )
        pipeline.execute()

    def run_id(self) -> str:
        """The Redis server's run id: a new one each time it starts (or another server answers)."""
        return str(self._cache.get_client(None, write=True).info("server")["run_id"])

    def keys_matching(self, pattern: str, version: int | None = None) -> list[str]:
        """The cache keys (as callers name them) matching a glob ``pattern``, by SCAN: for rare
        sweeps only (orders.liveness, after a restart of the server)."""
        client = self._cache.get_client(None, write=True)
        prefix = len(self.make_key("", version=version))
        return [
            key.decode()[prefix:]
            for key in client.scan_iter(match=self.make_key(pattern, version=version), count=1000)
        ]

    def add_each(
        self,
        keys: Sequence[str],
        value: Any,
        timeout: float | None = DEFAULT_TIMEOUT,
        version: int | None = None,
    ) -> list[bool]:
        """``add`` of each key (set only where it is absent), as one command (a script, as
        ``set_many``); for each key, whether it was added. A worker sends the portfolio refreshes
        its fills asked for together and marks each account's as pending
        (orders.portfolio.services), and the intake records a fan-out's dispatches after its
        publish (orders.liveness.mark_dispatched_new): a command per key before, then a pipeline
        of them (for 1,000 accounts, 1,000 commands for the client to build on the webhook's
        answer). ``timeout``: seconds (more than 0) or None for ever."""
        if not keys:
            return []
        seconds = self.get_backend_timeout(timeout)
        if seconds is not None and seconds <= 0:
            raise ValueError("add_each needs a timeout of more than 0 seconds, or None")
        dumped = self._cache._serializer.dumps(value)
        client = self._cache.get_client(None, write=True)
        added = self._script(client, _ADD_EACH)(
            keys=[self.make_and_validate_key(key, version=version) for key in keys],
            args=["" if seconds is None else seconds, dumped],
            client=client,
        )
        return [bool(flag) for flag in added]


class EmbeddedCache(KeysUnchecked, LocMemCache):
    """Django's in-process cache (embedded mode), whose ``set_many`` pickles each distinct value
    once and takes the lock once.

    A fan-out's dispatch records are one record under one key per account
    (``orders.liveness.mark_dispatched_many``); Django's ``set_many`` is a ``set`` per key, each
    pickling the record and taking the lock: ~15 ms of a 1,000-account webhook's answer. Every
    key still gets its own pickled copy semantics (a value read back is a fresh object), as
    before."""

    if TYPE_CHECKING:
        # Private parts of Django's LocMemCache (django/core/cache/backends/locmem.py).
        _lock: Any

        def _set(self, key: str, value: bytes, timeout: float | None = ...) -> None: ...

    def set_many(
        self, data: Mapping[str, Any], timeout: float | None = DEFAULT_TIMEOUT, version: int | None = None
    ) -> list[str]:
        self.set_each({key: (value, timeout) for key, value in data.items()}, version=version)
        return []

    def set_each(self, items: Mapping[str, tuple[Any, float | None]], version: int | None = None) -> None:
        """As RedisCache.set_each: each key with its own timeout, under one lock; a value shared
        by several keys is pickled once."""
        pickled: dict[int, bytes] = {}  # by the value's identity: ``items`` keeps each one alive
        entries = []
        for key, (value, timeout) in items.items():
            blob = pickled.get(id(value))
            if blob is None:
                blob = pickled[id(value)] = pickle.dumps(value, self.pickle_protocol)
            entries.append((self.make_and_validate_key(key, version=version), blob, timeout))
        with self._lock:
            for key, blob, timeout in entries:
                self._set(key, blob, timeout)


def add_each(keys: Sequence[str], value: Any, timeout: float | None) -> list[bool]:
    """``add_each`` on the default cache: one command where the backend has it (``RedisCache``),
    else ``add`` of each key; for each key, whether it was added."""
    from django.core.cache import cache  # noqa: PLC0415 - the configured backend, at call time

    method = getattr(cache, "add_each", None)
    if method is not None:
        return [bool(added) for added in method(keys, value, timeout)]
    return [bool(cache.add(key, value, timeout=timeout)) for key in keys]


def set_each(items: Mapping[str, tuple[Any, float]]) -> None:
    """``set_each`` on the default cache: one round trip where the backend has it (both of
    this module's), else ``set`` of each key with its own timeout."""
    from django.core.cache import cache  # noqa: PLC0415 - the configured backend, at call time

    method = getattr(cache, "set_each", None)
    if method is not None:
        method(items)
        return
    for key, (value, timeout) in items.items():
        cache.set(key, value, timeout=timeout)


def store_run_id() -> str | None:
    """The default cache's server run id (``RedisCache.run_id``); None for an in-process cache,
    which lives and ends with the process."""
    from django.core.cache import cache  # noqa: PLC0415 - the configured backend, at call time

    method = getattr(cache, "run_id", None)
    return method() if method is not None else None


def store_keys_matching(pattern: str) -> list[str]:
    """``RedisCache.keys_matching`` on the default cache; nothing for an in-process cache."""
    from django.core.cache import cache  # noqa: PLC0415 - the configured backend, at call time

    method = getattr(cache, "keys_matching", None)
    return list(method(pattern)) if method is not None else []
