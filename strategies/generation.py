"""A token that changes whenever a strategy, an account or a link between them changes.

The webhook intake keeps each strategy it read, with its links, in the memory of its process
(webhooks.services): the one SELECT it saves is most of a webhook's CPU. An entry is used only
while the token it was read under is still current: every save or delete of a Strategy, an
Account or a StrategyAccount, and every pause or resume (a queryset update), replaces the token
once its transaction commits. The token lives in the shared cache (locmem in embedded mode, Redis
in distributed mode), so a change made by any process reaches every web process's next webhook.

A random token rather than a counter: a token lost to cache eviction or a Redis restart is
replaced by a new one, never by a value an old entry could match. Without a cache (Redis down)
there is no token and the intake reads the database every time. One gap, bounded: a change
made while the shared cache is unreachable (Redis down, but not restarted) cannot replace the
token, so other processes may use their entries for up to WEBHOOK_STRATEGY_CACHE_SECONDS (a
Redis that restarted lost the token, and with it every entry).
"""

from __future__ import annotations

import logging
from typing import Any
from uuid import uuid4

from django.core.cache import cache
from django.db import transaction
from django.db.models.signals import post_delete, post_save

log = logging.getLogger("quanttrade.strategies")

KEY = "qt:strategies:generation"


def strategies_generation() -> str | None:
    """The current token; None when the cache cannot be reached (no caching then)."""
    try:
        token = cache.get(KEY)
        if token is None:
            cache.add(KEY, uuid4().hex, timeout=None)
            token = cache.get(KEY)
    except Exception as exc:
        log.debug("strategy generation unavailable: %s", exc)
        return None
    return str(token) if token is not None else None


def _replace() -> None:
    try:
        cache.set(KEY, uuid4().hex, timeout=None)
    except Exception as exc:
        # The token could not be replaced: delete it, so no entry read under it is used.
        log.warning("전략 캐시 무효화 실패: %s", exc)
        try:
            cache.delete(KEY)
        except Exception:
            log.error("전략 캐시 무효화 불가 (캐시 장애): 웹훅은 DB에서 전략을 읽습니다")


def strategies_changed() -> None:
    """Invalidate every process's strategy entries now and again once the current transaction
    commits: an entry read between the two (the old rows, under the first new token) no longer
    matches after the second."""
    _replace()
    if transaction.get_connection().in_atomic_block:
        transaction.on_commit(_replace)


def _on_change(sender: Any, **kwargs: Any) -> None:
    strategies_changed()


def connect() -> None:
    """Called once from StrategiesConfig.ready()."""
    for model in ("strategies.Strategy", "strategies.Account", "strategies.StrategyAccount"):
        post_save.connect(_on_change, sender=model, weak=False, dispatch_uid=f"qt-generation-save-{model}")
        post_delete.connect(
            _on_change, sender=model, weak=False, dispatch_uid=f"qt-generation-delete-{model}"
        )
