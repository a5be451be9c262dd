"""Fixtures for the price layer: a clean store per test, local servers, settings helpers."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest
from django.conf import settings

from live.store import live_store


@pytest.fixture(autouse=True)
def _clean_live_store() -> Iterator[None]:
    live_store().clear()
    yield
    live_store().clear()


def redis_url() -> str:
    return os.environ.get("REDIS_URL", "")


requires_redis = pytest.mark.skipif(not redis_url(), reason="REDIS_URL is not set (Redis-mode tests skipped)")


@pytest.fixture
def embedded() -> bool:
    return not settings.REDIS_URL
