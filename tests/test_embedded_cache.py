"""Embedded mode's in-process cache keeps what must stay until it expires (quanttrade/settings.py).

Django's LocMemCache holds 300 entries by default and then culls the least recently used third.
A 100-account fan-out alone writes 100 dispatch records, so under ordinary load that culling
evicted the strategy cache's generation token (every webhook then read its strategy and links
again) and, worse, the KIS order ledger's claims (an evicted claim lets a second intent take a
venue order the first already took). The test loads the settings in a fresh embedded-mode
process, as the server does, and writes what a busy minute writes.
"""

from __future__ import annotations

from pathlib import Path

from tests.embedded import run_embedded

BUSY_MINUTE = """
import uuid
import django
django.setup()
from django.core.cache import cache
from orders import liveness
from strategies.generation import strategies_generation

token = strategies_generation()
cache.add("qt:ledger:test:claim:0001", "qt-first-intent", timeout=3 * 24 * 3600)
for _ in range(20):  # twenty webhooks to 1,000 accounts each
    liveness.mark_dispatched_many(uuid.uuid4(), list(range(1000)))
print(strategies_generation() == token, cache.get("qt:ledger:test:claim:0001"))
"""


def test_a_busy_minute_evicts_neither_the_generation_token_nor_a_ledger_claim(tmp_path: Path) -> None:
    result = run_embedded(tmp_path, BUSY_MINUTE)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["True", "qt-first-intent"]


def test_set_many_stores_what_django_stores_one_key_at_a_time() -> None:
    """EmbeddedCache.set_many pickles a value shared by many keys once; the entries, their
    order (culling's), what each read gives back and culling itself are Django's."""
    import uuid

    from django.core.cache.backends.locmem import LocMemCache

    from quanttrade.cache import EmbeddedCache

    params = {"OPTIONS": {"MAX_ENTRIES": 50, "CULL_FREQUENCY": 3}}
    ours = EmbeddedCache(f"test-ours-{uuid.uuid4()}", params)
    django = LocMemCache(f"test-django-{uuid.uuid4()}", params)
    shared = {"due": 1764547200.5, "worker": "", "eta": False}
    batches = [
        {f"qt:dispatch:w1:{i}": shared for i in range(30)},
        {"a": [1, 2], "b": shared, "c": None},
        {f"qt:dispatch:w2:{i}": shared for i in range(40)},  # past MAX_ENTRIES: culled
    ]
    for batch in batches:
        assert ours.set_many(batch, timeout=None) == django.set_many(batch, timeout=None) == []
    assert list(ours._cache) == list(django._cache)  # type: ignore[attr-defined]
    assert len(ours._cache) <= 50  # type: ignore[attr-defined]
    assert {key: ours.get(key) for key in ("a", "b", "c", "qt:dispatch:w2:39")} == {
        key: django.get(key) for key in ("a", "b", "c", "qt:dispatch:w2:39")
    }
    first, second = ours.get("qt:dispatch:w2:0"), ours.get("qt:dispatch:w2:1")
    assert first == second == shared and first is not second  # each read is its own copy
    first["worker"] = "changed"
    assert ours.get("qt:dispatch:w2:0") == shared
