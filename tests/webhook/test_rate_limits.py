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


def test_with_the_shared_cache_down_the_intake_limits_per_process(make_strategy: Any, settings: Any) -> None:
    settings.CACHES = {
        **settings.CACHES,
        "unreachable": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": "redis://127.0.0.1:9/0",
        },
    }
    settings.RATELIMIT_USE_CACHE = "unreachable"
    intake._local_limiter.storage.reset()
    make_strategy(rate_limit="2/m", group_name="my_strategy")

    assert [post().status_code for _ in range(3)] == [202, 202, 429]
    assert WebhookEvent.objects.filter(outcome="accepted").count() == 2
