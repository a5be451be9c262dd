"""Guard rails at intake (issue #14, SPEC §7b): the strategy's static risk limits, its pause and
the stale-signal guard refuse the webhook with a stable code, and the refusal is stored."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pytest
from django.test import Client

from orders.models import Order
from webhooks.models import WebhookEvent

pytestmark = pytest.mark.django_db

URL = "/api/webhook"
NOW = datetime(2026, 12, 1, 1, 0, tzinfo=UTC)  # 10:00 in Seoul


def post(client: Client, body: dict[str, Any], **headers: str) -> Any:
    return client.post(URL, data=json.dumps(body), content_type="application/json", headers=headers)


def stock(**fields: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "group_name": "kr",
        "token": "test-token",
        "symbol": "005930",
        "order_type": "LIMIT",
        "side": "buy",
        "price": "70000",
        "qty_per": 10,
    }
    body.update(fields)
    return {k: v for k, v in body.items() if v is not None}


def refused(response: Any, status: int, code: str) -> dict[str, Any]:
    body = response.json()
    assert response.status_code == status, body
    assert body["code"] == code and body["status"] == status, body
    event = WebhookEvent.objects.get()
    assert (event.outcome, event.error_code, event.http_status) == ("rejected", code, status)
    assert event.error_message == body["error"] and event.payload["symbol"] == "005930"
    assert not Order.objects.exists()
    return body


@pytest.fixture
def frozen(kst_clock: Any) -> None:
    kst_clock(NOW)


def test_a_symbol_outside_the_strategys_allow_list_is_refused_and_stored(
    client: Client, make_strategy: Any, frozen: None
) -> None:
    make_strategy("kr", market_type="DOMESTIC_STOCK", allowed_symbols="000660, 035720")
    body = refused(post(client, stock()), 400, "risk_limit")
    assert body["error"] == (
        "리스크 한도 초과 (전략 kr): 허용 종목 000660, 035720 — 005930 은(는) 허용되지 않은 종목입니다"
    )


def test_the_refusal_is_in_english_when_asked(client: Client, make_strategy: Any, frozen: None) -> None:
    make_strategy("kr", market_type="DOMESTIC_STOCK", allowed_symbols="000660")
    body = refused(post(client, stock(), **{"Accept-Language": "en"}), 400, "risk_limit")
    assert body["error"] == "Risk limit (strategy kr): allowed symbols 000660 — 005930 is not allowed"


def test_an_allowed_symbol_passes(client: Client, make_strategy: Any, frozen: None) -> None:
    make_strategy("kr", market_type="DOMESTIC_STOCK", allowed_symbols="005930 000660")
    assert post(client, stock()).status_code == 202


def test_outside_the_strategys_trading_hours_is_refused(
    client: Client, make_strategy: Any, kst_clock: Any
) -> None:
    make_strategy("kr", market_type="DOMESTIC_STOCK", trading_hours="09:00-15:20")
    kst_clock(datetime(2026, 12, 1, 7, 0, tzinfo=UTC))  # 16:00 in Seoul
    body = refused(post(client, stock()), 400, "risk_limit")
    assert "거래 시간 09:00-15:20" in body["error"] and "16:00 (Asia/Seoul)" in body["error"]


def test_inside_trading_hours_and_a_window_past_midnight_pass(
    client: Client, make_strategy: Any, kst_clock: Any
) -> None:
    make_strategy("kr", market_type="DOMESTIC_STOCK", trading_hours="09:00-15:20, 22:00-02:00")
    kst_clock(NOW)  # 10:00 KST
    assert post(client, stock()).status_code == 202
    kst_clock(datetime(2026, 12, 1, 16, 30, tzinfo=UTC))  # 01:30 KST
    assert post(client, stock()).status_code == 202


def test_max_order_notional_refuses_an_absolute_quantity_at_its_price(
    client: Client, make_strategy: Any, frozen: None
) -> None:
    make_strategy("kr", market_type="DOMESTIC_STOCK", max_order_notional=Decimal("500000"))
    body = refused(post(client, stock(qty_per=10)), 400, "risk_limit")  # 10 × 70,000 = 700,000
    assert body["error"] == "리스크 한도 초과 (전략 kr): 최대 주문 금액 500000 — 이 주문은 700000"
    WebhookEvent.objects.all().delete()
    assert post(client, stock(qty_per=7)).status_code == 202  # 490,000


def test_a_close_is_not_blocked_by_the_order_notional_limit(
    client: Client, make_strategy: Any, frozen: None
) -> None:
    make_strategy("kr", market_type="DOMESTIC_STOCK", max_order_notional=Decimal("1"))
    response = post(client, stock(order_type="MARKET", side="sell", qty_per=-100, price=None))
    assert response.status_code == 202, response.json()


def test_a_paused_strategy_refuses_new_signals_with_403(
    client: Client, make_strategy: Any, frozen: None
) -> None:
    strategy = make_strategy("kr", market_type="DOMESTIC_STOCK")
    strategy.pause("manual stop")
    body = refused(post(client, stock()), 403, "strategy_paused")
    assert body["error"] == "전략이 일시 정지되었습니다: kr (manual stop)"
    strategy.resume()
    WebhookEvent.objects.all().delete()
    assert post(client, stock()).status_code == 202


def test_a_paused_strategy_still_takes_closes_and_cancels(
    client: Client, make_strategy: Any, frozen: None
) -> None:
    make_strategy("kr", market_type="DOMESTIC_STOCK").pause()
    assert post(client, stock(order_type="MARKET", side="sell", qty_per=-100, price=None)).status_code == 202
    cancel = {"group_name": "kr", "token": "test-token", "symbol": "005930", "order_type": "CANCEL_ALL_ORDER"}
    assert post(client, cancel).status_code == 202


# --- stale signals -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "timestamp",
    [
        "2026-12-01T00:58:00Z",
        "2026-12-01T09:58:00+09:00",
        int(datetime(2026, 12, 1, 0, 58, tzinfo=UTC).timestamp() * 1000),
    ],
)
def test_a_signal_older_than_the_max_age_is_refused_as_stale(
    client: Client, make_strategy: Any, frozen: None, timestamp: Any
) -> None:
    make_strategy("kr", market_type="DOMESTIC_STOCK", max_signal_age_seconds=60)
    body = refused(post(client, stock(timestamp=timestamp)), 400, "signal_stale")
    assert body["error"].startswith("오래된 신호입니다: 120초 전에 생성되었습니다 (전략 허용 최대 60초)")


@pytest.mark.parametrize("timestamp", ["2026-12-01T10:00:00", "2026-12-01T01:02:00Z"])
def test_a_signal_further_ahead_than_the_max_age_is_refused_saying_the_clock_is_off(
    client: Client, make_strategy: Any, frozen: None, timestamp: str
) -> None:
    """Seoul's local time written without its offset reads as UTC, nine hours ahead: such a
    signal could never be found stale, so it is refused, saying why (as is a clock 2 minutes
    fast with a 60 s limit)."""
    make_strategy("kr", market_type="DOMESTIC_STOCK", max_signal_age_seconds=60)
    body = refused(post(client, stock(timestamp=timestamp)), 400, "signal_stale")
    assert body["error"].startswith("신호 시각이 서버 시각보다 ") and "초 앞서 있습니다" in body["error"]


def test_a_signal_slightly_ahead_within_the_max_age_passes(
    client: Client, make_strategy: Any, frozen: None
) -> None:
    make_strategy("kr", market_type="DOMESTIC_STOCK", max_signal_age_seconds=60)
    assert post(client, stock(timestamp="2026-12-01T01:00:30Z")).status_code == 202


def test_a_fresh_signal_passes_and_the_timestamp_is_no_unknown_field(
    client: Client, make_strategy: Any, frozen: None
) -> None:
    make_strategy("kr", market_type="DOMESTIC_STOCK", max_signal_age_seconds=60)
    response = post(client, stock(timestamp="2026-12-01T00:59:30Z"))
    assert response.status_code == 202 and response.json()["warnings"] == []


def test_the_stale_guard_is_off_by_default(client: Client, make_strategy: Any, frozen: None) -> None:
    strategy = make_strategy("kr", market_type="DOMESTIC_STOCK")
    assert strategy.max_signal_age_seconds is None
    assert post(client, stock(timestamp="2020-01-01T00:00:00Z")).status_code == 202


@pytest.mark.parametrize("timestamp", ["yesterday", "2026-13-01T00:00:00Z", 12345, True])
def test_a_malformed_timestamp_is_an_invalid_field(
    client: Client, make_strategy: Any, frozen: None, timestamp: Any
) -> None:
    make_strategy("kr", market_type="DOMESTIC_STOCK")
    body = refused(post(client, stock(timestamp=timestamp)), 400, "invalid_field")
    assert body["error"].startswith("timestamp는 ISO 8601")
