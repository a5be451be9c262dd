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
