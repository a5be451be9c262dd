"""The product's caches take any key without Django's memcached key check (quanttrade/cache.py
``KeysUnchecked``): Redis and the in-process cache accept them, and the check walked every key's
characters on every cache call. Redis's is checked against a real server when REDIS_URL is set
(CI)."""

from __future__ import annotations

import uuid
import warnings
from typing import Any

import pytest
from django.core.cache.backends.base import CacheKeyWarning
from django.core.cache.backends.locmem import LocMemCache

from quanttrade.cache import EmbeddedCache, RedisCache
from tests.prices.conftest import redis_url, requires_redis

# Keys memcached would refuse: Django's check warns about each of them.
AWKWARD = ["qt:strategy:my strategy", "qt:" + "k" * 300, "qt:tab\there", "qt:del\x7f"]


def _round_trip(cache: Any) -> dict[str, Any]:
    """Write each awkward key one way or another and read it back, warnings raised as errors."""
    with warnings.catch_warnings():
        warnings.simplefilter("error", CacheKeyWarning)
        cache.set(AWKWARD[0], 1, timeout=60)
        cache.set_many({AWKWARD[1]: 2}, timeout=60)
        cache.set_each({AWKWARD[2]: (3, 60)})
        cache.add(AWKWARD[3], 4, timeout=60)
        return cache.get_many(AWKWARD)


def test_djangos_own_check_warns_about_these_keys() -> None:
    # Why KeysUnchecked exists: each of these keys costs Django's cache a warning.
    django = LocMemCache(f"test-django-{uuid.uuid4()}", {})
    for key in AWKWARD:
        with pytest.warns(CacheKeyWarning):
            django.set(key, 1)


def test_the_embedded_cache_takes_any_key() -> None:
    cache = EmbeddedCache(f"test-keys-{uuid.uuid4()}", {})
    assert _round_trip(cache) == dict(zip(AWKWARD, [1, 2, 3, 4], strict=True))


@requires_redis
def test_redis_takes_any_key() -> None:
    cache = RedisCache(redis_url(), {"KEY_PREFIX": f"test-{uuid.uuid4()}"})
    assert _round_trip(cache) == dict(zip(AWKWARD, [1, 2, 3, 4], strict=True))
