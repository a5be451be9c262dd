"""The intake's copy of each strategy with its links (webhooks.services, strategies/generation.py):
used only while nothing about strategies, accounts or links has changed, in this process or any
other (the token is in the shared cache: Redis when the suite runs distributed)."""

from __future__ import annotations

import json
import time
from typing import Any

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext

from strategies import generation
from strategies.models import Strategy, StrategyAccount

BODY = {
    "group_name": "cached",
    "token": "tok",
    "symbol": "BTC/USDT",
    "currency": "USDT",
    "order_type": "MARKET",
    "side": "buy",
    "qty_per": 10,
}

pytestmark = pytest.mark.django_db


def _post(client: Client, **changes: Any) -> Any:
    body = {**BODY, **changes}
    return client.post("/api/webhook", data=json.dumps(body), content_type="application/json")


def _strategy_reads(client: Client, **changes: Any) -> tuple[Any, int]:
    with CaptureQueriesContext(connection) as queries:
        response = _post(client, **changes)
    reads = [q for q in queries.captured_queries if "strategies_strategy" in q["sql"]]
    return response, len(reads)


@pytest.fixture
def strategy(make_strategy: Any, make_account: Any) -> Strategy:
    return make_strategy(group_name="cached", token="tok", accounts=[make_account("a1"), make_account("a2")])


def test_the_second_webhook_reads_no_strategy(client: Client, strategy: Strategy) -> None:
    first, first_reads = _strategy_reads(client)
    second, second_reads = _strategy_reads(client)
    assert first.status_code == second.status_code == 202
    assert (first_reads, second_reads) == (1, 0)
    assert len(second.json()["orders"]) == 2


def test_a_pause_reaches_the_next_webhook(client: Client, strategy: Strategy) -> None:
    assert _post(client).status_code == 202
    Strategy.objects.get(pk=strategy.pk).pause("by hand")  # a queryset update, no post_save
    response = _post(client)
    assert (response.status_code, response.json()["code"]) == (403, "strategy_paused")
    strategy.resume()
    assert _post(client).status_code == 202


def test_an_unlinked_account_and_a_new_token_reach_the_next_webhook(
    client: Client, strategy: Strategy
) -> None:
    assert len(_post(client).json()["orders"]) == 2
    link = StrategyAccount.objects.get(strategy=strategy, account__name="a2")
    link.is_active = False
    link.save()
    assert [o["account"] for o in _post(client).json()["orders"]] == ["a1"]
    new_token = strategy.regenerate_token()
    assert _post(client).status_code == 401  # the old token
    assert _post(client, token=new_token).status_code == 202


def test_a_change_made_by_another_process_reaches_this_one(client: Client, strategy: Strategy) -> None:
    assert _post(client).status_code == 202
    # Another process changed a strategy: all this process sees of it is the shared token.
    Strategy.objects.filter(pk=strategy.pk).update(is_active=False)
    generation._replace()
    response, reads = _strategy_reads(client)
    assert reads == 1 and response.status_code == 403


def test_without_the_shared_cache_every_webhook_reads_the_database(
    client: Client, strategy: Strategy, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("webhooks.services.strategies_generation", lambda: None)
    assert [_strategy_reads(client)[1] for _ in range(3)] == [1, 1, 1]


def test_a_change_made_by_sql_is_seen_within_the_cache_age(
    client: Client, strategy: Strategy, settings: Any
) -> None:
    settings.WEBHOOK_STRATEGY_CACHE_SECONDS = 0.2
    assert _post(client).status_code == 202
    Strategy.objects.filter(pk=strategy.pk).update(is_active=False)  # no signal, no token change
    time.sleep(0.25)
    assert _post(client).status_code == 403
