"""Where the latest tick per instrument lives: one store per process, chosen by REDIS_URL.

* :class:`LocalLiveStore` keeps plain dicts behind a lock. In embedded mode the web server,
  the feed threads and the in-process workers share it.
* :class:`RedisLiveStore` keeps one JSON string per instrument in Redis, so a tick written by
  ``manage.py pricefeed`` (or ``publish_price``) on any machine is what every web process reads.

Besides ticks the store holds small *status* documents (feed health, WebSocket statistics per
process) with an expiry, so ``GET /api/prices/status`` sees every process in distributed mode.
Values are JSON-safe dicts (decimals as strings); :mod:`prices.services` converts them.
"""

from __future__ import annotations

import json
import threading
import time
from typing import Any, Protocol

import redis
from django.conf import settings

TICK_PREFIX = "qt:price:"
STATUS_PREFIX = "qt:pricestatus:"


class LiveStore(Protocol):
    def get(self, instrument: str) -> dict[str, Any] | None: ...
    def get_many(self, instruments: list[str]) -> dict[str, dict[str, Any]]: ...
    def set(self, instrument: str, data: dict[str, Any]) -> None: ...
    def instruments(self) -> list[str]: ...
    def put_status(self, kind: str, name: str, data: dict[str, Any], ttl: float) -> None: ...
    def statuses(self, kind: str) -> dict[str, dict[str, Any]]: ...
    def clear(self) -> None: ...


class LocalLiveStore:
    """Thread-safe in-process store (embedded mode)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._ticks: dict[str, dict[str, Any]] = {}
        self._status: dict[tuple[str, str], tuple[float, dict[str, Any]]] = {}

    def get(self, instrument: str) -> dict[str, Any] | None:
        with self._lock:
            return self._ticks.get(instrument)

    def get_many(self, instruments: list[str]) -> dict[str, dict[str, Any]]:
        with self._lock:
            return {i: self._ticks[i] for i in instruments if i in self._ticks}

    def set(self, instrument: str, data: dict[str, Any]) -> None:
        # Stored dicts are never mutated afterwards, so readers may hold them without copying.
        with self._lock:
            self._ticks[instrument] = data

    def instruments(self) -> list[str]:
        with self._lock:
            return sorted(self._ticks)

    def put_status(self, kind: str, name: str, data: dict[str, Any], ttl: float) -> None:
        with self._lock:
            self._status[(kind, name)] = (time.monotonic() + ttl, data)

    def statuses(self, kind: str) -> dict[str, dict[str, Any]]:
        now = time.monotonic()
        with self._lock:
            return {n: d for (k, n), (exp, d) in self._status.items() if k == kind and exp > now}

    def clear(self) -> None:
        with self._lock:
            self._ticks.clear()
            self._status.clear()


class RedisLiveStore:
    """Redis-backed store (distributed mode). One key per instrument, JSON values."""

    def __init__(self, url: str) -> None:
        self._redis = redis.Redis.from_url(url, socket_connect_timeout=2, socket_timeout=2)

    def get(self, instrument: str) -> dict[str, Any] | None:
        raw = self._redis.get(TICK_PREFIX + instrument)
        return json.loads(raw) if raw else None

    def get_many(self, instruments: list[str]) -> dict[str, dict[str, Any]]:
        if not instruments:
            return {}
        raws = self._redis.mget([TICK_PREFIX + i for i in instruments])
        return {i: json.loads(raw) for i, raw in zip(instruments, raws, strict=True) if raw}

    def set(self, instrument: str, data: dict[str, Any]) -> None:
        self._redis.set(TICK_PREFIX + instrument, json.dumps(data, separators=(",", ":")))

    def instruments(self) -> list[str]:
        keys = self._redis.scan_iter(match=TICK_PREFIX + "*", count=500)
        return sorted(k.decode()[len(TICK_PREFIX) :] for k in keys)

    def put_status(self, kind: str, name: str, data: dict[str, Any], ttl: float) -> None:
        self._redis.set(f"{STATUS_PREFIX}{kind}:{name}", json.dumps(data), px=max(1, int(ttl * 1000)))

    def statuses(self, kind: str) -> dict[str, dict[str, Any]]:
        prefix = f"{STATUS_PREFIX}{kind}:"
        keys = list(self._redis.scan_iter(match=prefix + "*", count=500))
        if not keys:
            return {}
        values = self._redis.mget(keys)
        return {k.decode()[len(prefix) :]: json.loads(v) for k, v in zip(keys, values, strict=True) if v}

    def clear(self) -> None:
        for pattern in (TICK_PREFIX + "*", STATUS_PREFIX + "*"):
            keys = list(self._redis.scan_iter(match=pattern, count=500))
            if keys:
                self._redis.delete(*keys)


_store: LiveStore | None = None
_store_url: str | None = None
_store_lock = threading.Lock()


def live_store() -> LiveStore:
    """The process's store; rebuilt if REDIS_URL changed (tests switch modes)."""
    global _store, _store_url
    url = settings.REDIS_URL
    if _store is None or _store_url != url:
        with _store_lock:
            if _store is None or _store_url != url:
                _store = RedisLiveStore(url) if url else LocalLiveStore()
                _store_url = url
    return _store
