"""seed_demo: demo strategies on paper accounts, idempotent, JSON output (contract 5)."""

from __future__ import annotations

import io
import json
from typing import Any

import pytest
from django.contrib.auth import authenticate
from django.core.management import call_command
from django.test import Client, RequestFactory

from orders.models import PaperBalance
from strategies.models import Strategy

pytestmark = pytest.mark.django_db


def seed(*args: str) -> dict[str, Any]:
    out = io.StringIO()
    call_command("seed_demo", "--json", *args, stdout=out)
    return json.loads(out.getvalue())


def test_seed_demo_json_creates_one_paper_strategy_per_market_type() -> None:
    result = seed()
    assert [(s["group_name"], s["market_type"]) for s in result["strategies"]] == [
        ("demo_spot", "SPOT"),
        ("demo_futures", "FUTURES"),
        ("demo_kr_stock", "DOMESTIC_STOCK"),
        ("demo_us_stock", "OVERSEAS_STOCK"),
        ("demo_kr_fo", "DOMESTIC_FUTUREOPTION"),
        ("demo_global_fo", "OVERSEAS_FUTUREOPTION"),
    ]
    assert result["admin"]["username"] == "admin"
    login = RequestFactory().post("/accounts/login/")  # django-axes counts logins per request
    assert authenticate(login, username="admin", password=result["admin"]["password"]) is not None
    for item in result["strategies"]:
        strategy = Strategy.objects.get(group_name=item["group_name"])
        assert item["token"] == strategy.token and strategy.token_matches(item["sample_payload"]["token"])
        assert item["webhook_url"] == result["base_url"] + "/api/webhook"
        assert item["curl"].startswith(f"curl -sS -X POST {item['webhook_url']} ")
        [account] = strategy.accounts.all()
        assert (
            account.exchange == "PAPER" and PaperBalance.objects.filter(account=account, free__gt=0).exists()
        )
    usdt = PaperBalance.objects.get(account__name="paper_spot", asset="USDT")
    assert usdt.free == 100000


def test_seed_demo_twice_changes_nothing_and_hides_the_existing_password() -> None:
    first = seed()
    PaperBalance.objects.filter(account__name="paper_spot", asset="USDT").update(free=5)
    second = seed()
    assert second["admin"]["password"] is None
    assert first["api_token"] and first["api_token_hint"] is None
    assert second["api_token"] is None
    assert "manage.py create_api_token admin" in second["api_token_hint"]
    assert [s["token"] for s in second["strategies"]] == [s["token"] for s in first["strategies"]]
    assert Strategy.objects.count() == 6
    assert PaperBalance.objects.get(account__name="paper_spot", asset="USDT").free == 5


def test_each_sample_payload_is_accepted_by_the_webhook() -> None:
    client = Client()
    for item in seed()["strategies"]:
        response = client.post(
            "/api/webhook", data=json.dumps(item["sample_payload"]), content_type="application/json"
        )
        assert response.status_code == 202, (item["group_name"], response.content)


def test_api_token_reads_webhook_results() -> None:
    result = seed()
    item = result["strategies"][0]
    client = Client()
    accepted = client.post(
        "/api/webhook", data=json.dumps(item["sample_payload"]), content_type="application/json"
    )
    webhook_id = accepted.json()["webhook_id"]
    body = client.get(
        f"/api/webhooks/{webhook_id}", headers={"Authorization": f"Token {result['api_token']}"}
    ).json()
    assert body["webhook_id"] == webhook_id and body["status"] == "queued"
    assert body["orders"][0]["account"] == "paper_spot"


def test_seed_demo_text_output_shows_the_password_once_and_a_curl_per_strategy() -> None:
    first, second = io.StringIO(), io.StringIO()
    call_command("seed_demo", stdout=first)
    call_command("seed_demo", stdout=second)
    assert "관리자 계정 생성: admin / " in first.getvalue()
    assert "관리자 계정 생성" not in second.getvalue() and "이미 있습니다" in second.getvalue()
    assert second.getvalue().count("curl -sS -X POST http://127.0.0.1:8000/api/webhook") == 6


def test_seed_demo_gives_the_demo_instruments_a_daily_history_once(client: Client) -> None:
    from django.db.models import Count, F, Max, Q
    from django.utils import timezone

    from prices.calendar import last_closed_trading_day
    from prices.models import DailyPrice
    from prices.watchlist import DEMO_INSTRUMENTS

    seed()
    counts = dict(DailyPrice.objects.values_list("ticker").annotate(n=Count("id")))
    assert set(counts) == set(DEMO_INSTRUMENTS) and set(counts.values()) == {120}
    assert DailyPrice.objects.aggregate(last=Max("date"))["last"] == last_closed_trading_day(timezone.now())
    inconsistent = DailyPrice.objects.filter(
        Q(low__gt=F("open"))
        | Q(low__gt=F("close"))
        | Q(high__lt=F("open"))
        | Q(high__lt=F("close"))
        | Q(low__lte=0)
    )
    assert not inconsistent.exists()
    seed()
    assert DailyPrice.objects.count() == 120 * len(DEMO_INSTRUMENTS)
    assert len(client.get("/api/kr/stocks/005930/daily").json()["bars"]) > 0


def test_seed_demo_no_daily_leaves_the_price_history_alone() -> None:
    from prices.models import DailyPrice

    seed("--no-daily")
    assert not DailyPrice.objects.exists()
