"""A token that changes whenever a strategy, an account or a link between them changes.

The webhook intake keeps each strategy it read, with its links, in the memory of its process
(webhooks.services): the one SELECT it saves is most of a webhook's CPU. An entry is used only
while the token it was read under is still current (quanttrade/generation.py says how): every
save or delete of a Strategy, an Account or a StrategyAccount, and every pause or resume (a
queryset update), replaces the token. Without a cache the intake reads the database every
time; a change made while Redis is unreachable (but not restarted) is seen within
WEBHOOK_STRATEGY_CACHE_SECONDS.
"""

from __future__ import annotations

from typing import Any

from django.db.models.signals import post_delete, post_save

from quanttrade.generation import Generation

KEY = "qt:strategies:generation"
_TOKEN = Generation(KEY, "strategies")


def strategies_generation() -> str | None:
    """The current token; None when the cache cannot be reached (no caching then)."""
    return _TOKEN.current()


def _replace() -> None:
    _TOKEN.replace()


def strategies_changed() -> None:
    """Invalidate every process's strategy entries now and again once the current transaction
    commits."""
    _TOKEN.changed()


def _on_change(sender: Any, **kwargs: Any) -> None:
    strategies_changed()


def connect() -> None:
    """Called once from StrategiesConfig.ready()."""
    for model in ("strategies.Strategy", "strategies.Account", "strategies.StrategyAccount"):
        post_save.connect(_on_change, sender=model, weak=False, dispatch_uid=f"qt-generation-save-{model}")
        post_delete.connect(
            _on_change, sender=model, weak=False, dispatch_uid=f"qt-generation-delete-{model}"
        )
