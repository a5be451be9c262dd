"""Writes for access: API tokens made and checked."""

from __future__ import annotations

import hmac
import secrets
from datetime import timedelta

from django.contrib.auth.models import User
from django.utils import timezone

from access.models import PREFIX_LENGTH, ApiToken, key_digest

KEY_MARKER = "qt_"
# last_used_at is written at most this often per token: bots poll the results API.
LAST_USED_RESOLUTION = timedelta(minutes=1)


def api_token_create(user: User, name: str = "") -> tuple[ApiToken, str]:
    """A new token for ``user``; returns it and its key, which is stored nowhere and shown once."""
    key = KEY_MARKER + secrets.token_urlsafe(32)
    token = ApiToken.objects.create(user=user, name=name, prefix=key[:PREFIX_LENGTH], digest=key_digest(key))
    return token, key


def api_token_check(key: str) -> ApiToken | None:
    """The active user's token matching ``key``, or None; the digest is compared in constant time."""
    digest = key_digest(key)
    for token in ApiToken.objects.filter(prefix=key[:PREFIX_LENGTH]).select_related("user"):
        if hmac.compare_digest(token.digest, digest):
            now = timezone.now()
            if token.last_used_at is None or now - token.last_used_at >= LAST_USED_RESOLUTION:
                ApiToken.objects.filter(pk=token.pk).update(last_used_at=now)
                token.last_used_at = now
            return token
    return None
