"""One access token per (environment, app key), shared by every process through Django's cache.

Korean brokers issue a day-long token per app key and refuse to issue them too often, so every
worker must use the same one: it lives in the cache (Redis when distributed), is issued under a
cross-process lock, replaced ``refresh_before`` seconds before it expires, and a one-minute
marker keeps it from being requested twice within ``min_interval``.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable

from django.core.cache import cache

from orders.exchanges.base import RetryableVenueError
from orders.handoff import VenueLock, venue_sleep

_process_lock = VenueLock()


def app_key_id(base_url: str, app_key: str) -> str:
    """A short stable id of an app key on one environment, for cache keys (never the key itself)."""
    return hashlib.sha256(f"{base_url}\0{app_key}".encode()).hexdigest()[:24]


class TokenUnavailableError(Exception):
    """No valid token and a new one may not be requested yet (once per ``min_interval``)."""


class SharedTokenCache:
    """The token of one app key on one base URL. ``error`` words a venue error message the
    broker's way (e.g. "KIS API error: …")."""

    def __init__(
        self,
        *,
        namespace: str,
        base_url: str,
        app_key: str,
        error: Callable[[str], str],
        refresh_before: int = 3600,
        min_interval: int = 60,
        app_secret: str = "",
    ):
        key_id = app_key_id(base_url, app_key)
        # The token belongs to the key *and* its secret: after the secret is changed (or mistyped)
        # the token issued with the old one is not used, so a refused pair is seen as refused.
        # The lock and the issue marker stay per app key, as the venue's limit is.
        secret_id = hashlib.sha256(app_secret.encode()).hexdigest()[:12] if app_secret else ""
        self.key = f"{namespace}:token:{key_id}" + (f":{secret_id}" if secret_id else "")
        self.lock_key = f"{namespace}:token-lock:{key_id}"
        self.issued_key = f"{namespace}:token-issued:{key_id}"
        self.error = error
        self.refresh_before = refresh_before
        self.min_interval = min_interval

    def get(self, issue: Callable[[], str], wait: float) -> str:
        """A valid token, from the cache or freshly issued by ``issue`` (see :meth:`refresh`)."""
        cached = cache.get(self.key)
        if cached and cached["expires_at"] - time.time() > self.refresh_before:
            return str(cached["access_token"])
        return self.refresh(issue, wait, stale=cached["access_token"] if cached else None)

    def refresh(self, issue: Callable[[], str], wait: float, stale: str | None) -> str:
        """Issue a token under the cross-process lock, waiting at most ``wait`` seconds for it.
        ``stale`` is the token the caller saw: if another process replaced it meanwhile, that
        one is used instead. ``issue`` asks the venue and :meth:`store`s the answer.

        Raises TokenUnavailableError when one was issued less than ``min_interval`` ago."""
        with _process_lock:  # another thread may be asking the venue for it
            deadline = time.monotonic() + wait
            while not cache.add(self.lock_key, "1", timeout=30):
                if time.monotonic() > deadline:
                    raise RetryableVenueError(self.error("access token issue in progress elsewhere"))
                venue_sleep(0.05)
            try:
                cached = cache.get(self.key)
                if cached and cached["access_token"] != stale and cached["expires_at"] - time.time() > 60:
                    return str(cached["access_token"])
                if not cache.add(self.issued_key, "1", timeout=self.min_interval):
                    # Issued less than min_interval ago: a new request would be refused.
                    if cached and cached["expires_at"] > time.time() and cached["access_token"] != stale:
                        return str(cached["access_token"])
                    raise TokenUnavailableError()
                return issue()
            finally:
                cache.delete(self.lock_key)

    def store(self, token: str, lifetime: int) -> None:
        """Share a freshly issued token valid for ``lifetime`` seconds."""
        cache.set(self.key, {"access_token": token, "expires_at": time.time() + lifetime}, timeout=lifetime)

    def current(self) -> str | None:
        """The cached token, valid or not (what a request that was refused had used)."""
        cached = cache.get(self.key)
        return str(cached["access_token"]) if cached else None
