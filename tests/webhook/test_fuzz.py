"""No input produces a 500: random JSON (and random bytes) always get a 202 or the error envelope."""

from __future__ import annotations

import json
from typing import Any

import pytest
from django.test import Client
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

pytestmark = pytest.mark.django_db

FIELDS = [
    "group_name",
    "token",
    "symbol",
    "side",
    "order_type",
    "qty_per",
    "price",
    "stop_price",
    "currency",
    "params",
    "orders",
    "idempotency_key",
    "exchange",
]
scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(10**30), max_value=10**30),
    st.floats(allow_nan=False),
    st.text(max_size=40),
    st.sampled_from(["BTC/USDT", "MARKET", "LIMIT", "buy", "sell", "-100", "1e400", "NaN", "005930"]),
)
values = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner, max_size=4),
    max_leaves=12,
)


def payloads() -> st.SearchStrategy[dict[str, Any]]:
    return st.fixed_dictionaries(
        {"group_name": st.just("fuzz"), "token": st.just("fuzz-token")},
        optional={name: values for name in FIELDS if name not in ("group_name", "token")},
    )


def check(response: Any) -> None:
    assert response.status_code in {202, 400, 401, 403, 404, 409, 413, 429}, response.content[:300]
    body = response.json()
    if response.status_code != 202:
        assert set(body) == {"error", "status", "code"} and body["status"] == response.status_code


@settings(
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(payload=payloads())
def test_random_messages_never_fail_the_server(
    client: Client, make_strategy: Any, payload: dict[str, Any]
) -> None:
    from strategies.models import Strategy

    if not Strategy.objects.filter(group_name="fuzz").exists():
        make_strategy(group_name="fuzz", token="fuzz-token", rate_limit="100000/m")
    check(client.post("/api/webhook", data=json.dumps(payload), content_type="application/json"))


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(raw=st.binary(max_size=300))
def test_random_bytes_never_fail_the_server(client: Client, raw: bytes) -> None:
    check(client.post("/api/webhook", data=raw, content_type="text/plain"))
