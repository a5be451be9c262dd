"""Tokens that change whenever some rows change: the key to a process's copy of those rows.

A process keeps what it read (the intake its strategies with their links, notify the event
kinds its destinations want) together with the token current when it read it, and uses the
copy only while the token is unchanged. Whatever changes the rows replaces the token, once
at the change and again once its transaction commits: a copy read between the two (the old
rows, under the first new token) no longer matches after the second.

The tokens live in the shared cache (locmem in embedded mode, Redis in distributed mode), so a
change made by any process reaches every process. A random token rather than a counter: a
token lost to eviction or a Redis restart is replaced by a new one, never by a value an old
copy could match. Without a cache (Redis down) there is no token and the readers read the
database every time. One gap, bounded by each reader's own maximum age: a change made while
the cache is unreachable (Redis down, but not restarted) cannot replace the token.
"""

from __future__ import annotations

import logging
from uuid import uuid4

from django.core.cache import cache
from django.db import transaction

log = logging.getLogger("quanttrade.cache")


class Generation:
    """The token of one set of rows, under ``key`` in the shared cache."""

    def __init__(self, key: str, what: str) -> None:
        self.key = key
        self.what = what  # for the log: which copies go stale

    def current(self) -> str | None:
        """The current token; None when the cache cannot be reached (no copies then)."""
        try:
            token = cache.get(self.key)
            if token is None:
                cache.add(self.key, uuid4().hex, timeout=None)
                token = cache.get(self.key)
        except Exception as exc:
            log.debug("%s generation unavailable: %s", self.what, exc)
            return None
        return str(token) if token is not None else None

    def replace(self) -> None:
        try:
            cache.set(self.key, uuid4().hex, timeout=None)
        except Exception as exc:
            # The token could not be replaced: delete it, so no copy read under it is used.
            log.warning("캐시 무효화 실패 (%s): %s", self.what, exc)
            try:
                cache.delete(self.key)
            except Exception:
                log.error("캐시 무효화 불가 (캐시 장애): %s 캐시를 쓰지 않습니다", self.what)

    def changed(self) -> None:
        """Invalidate every process's copies now and again once the current transaction commits."""
        self.replace()
        if transaction.get_connection().in_atomic_block:
            transaction.on_commit(self.replace)
