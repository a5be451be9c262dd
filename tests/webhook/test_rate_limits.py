"""Per-strategy rate limits that cannot break the intake (#11): validated when saved, a bad
stored one falls back to the default, and with the shared cache down each process limits on
its own instead of answering 500."""

from __future__ import annotations

import json
from typing import Any

import pytest
from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError
from django.test import Client

import webhooks.services as intake
from strategies.models import Strategy
from webhooks.models import WebhookEvent

pytestmark = pytest.mark.django_db
BODY = {"group_name": "my_strategy", "token": "test-token", "symbol": "BTC/USDT", "side": "buy",
        "order_type": "MARKET", "qty_per": 10}  # fmt: skip


def post() -> Any:
    return Client().post("/api/webhook", json.dumps(BODY), content_type="application/json")


@pytest.mark.parametrize("rate", ["sixty/m", "60", "60/x", "0/m", "/m", "60/m/s"])
def test_a_malformed_rate_is_refused_when_saved(make_strategy: Any, rate: str) -> None:
    strategy = make_strategy()
    strategy.rate_limit = rate
    with pytest.raises(ValidationError) as raised:
        strategy.full_clean()
    assert "rate_limit" in raised.value.message_dict


@pytest.mark.parametrize("rate", ["60/m", "5/s", "300/5m", "1000/d", ""])
def test_well_formed_rates_are_accepted(make_strategy: Any, rate: str) -> None:
    strategy = make_strategy()
    strategy.rate_limit = rate
    strategy.full_clean()


def test_the_admin_shows_the_rate_error_instead_of_saving(make_strategy: Any) -> None:
    strategy = make_strategy()
    admin = Client()
    admin.force_login(get_user_model().objects.create_superuser("root", "r@example.com", "pw"))
    page = admin.get(f"/admin/strategies/strategy/{strategy.pk}/change/")
    form = {
        "group_name": strategy.group_name,
        "market_type": strategy.market_type,
        "rate_limit": "sixty/m",
        "is_active": "on",
        "strategy_accounts-TOTAL_FORMS": "0",
        "strategy_accounts-INITIAL_FORMS": "0",
    }
    assert page.status_code == 200

    response = admin.post(f"/admin/strategies/strategy/{strategy.pk}/change/", form)

    assert response.status_code == 200  # the form again, with the error
    assert "60/m" in response.content.decode()
    assert Strategy.objects.get(pk=strategy.pk).rate_limit == ""


def test_a_malformed_rate_stored_earlier_falls_back_to_the_default(make_strategy: Any) -> None:
    strategy = make_strategy()
    Strategy.objects.filter(pk=strategy.pk).update(rate_limit="sixty/m")  # bypasses validation

    assert post().status_code == 202


def test_with_the_shared_store_down_the_intake_limits_per_process(make_strategy: Any, settings: Any) -> None:
    settings.REDIS_URL = "redis://127.0.0.1:9/0"  # nothing listens there: connection refused
    intake._webhook_limits.local.storage.reset()
    make_strategy(rate_limit="2/m", group_name="my_strategy")

    assert [post().status_code for _ in range(3)] == [202, 202, 429]
    assert WebhookEvent.objects.filter(outcome="accepted").count() == 2


def test_a_default_limit_counts_each_strategy_apart(make_strategy: Any, settings: Any) -> None:
    settings.WEBHOOK_RATE_LIMIT = "2/m"
    make_strategy(group_name="my_strategy")
    make_strategy(group_name="other", token="test-token")
    other = {**BODY, "group_name": "other"}

    assert [post().status_code for _ in range(3)] == [202, 202, 429]
    answer = Client().post("/api/webhook", json.dumps(other), content_type="application/json")
    assert answer.status_code == 202
    refused = post().json()
    assert refused["code"] == "rate_limited" and "2/m" in refused["error"]


def test_with_redis_the_count_is_shared_by_every_web_process(make_strategy: Any, settings: Any) -> None:
    """The count lives in Redis, one key per strategy and window: what another process counted
    there (written here by a client of our own) limits this one, and this one's posts count
    there."""
    import redis

    if not settings.REDIS_URL:
        pytest.skip("the shared count is Redis's (CI runs the suite with REDIS_URL)")
    strategy = make_strategy(rate_limit="3/m", group_name="my_strategy")
    store = redis.Redis.from_url(settings.REDIS_URL)

    assert post().status_code == 202
    (key,) = store.keys(f"{intake.WEBHOOK_RATE_KEY_PREFIX}:*webhook/{strategy.pk}/*")
    assert int(store.get(key) or 0) == 1 and 0 < int(store.ttl(key)) <= 60
    store.incrby(key, 2)  # two more webhooks, taken by another web process
    refused = post()
    assert refused.status_code == 429 and refused.json()["code"] == "rate_limited"
    assert int(store.get(key) or 0) == 4
    assert "test-token" not in key.decode()
