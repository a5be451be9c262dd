"""The latency summary (p50/p99 per venue and stage over a window), its API and its page, and
the trail on the order page — on a hand-made set of orders with known trails."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.test import Client
from django.utils import timezone

from orders.models import Order
from orders.selectors import latency_summary, percentile
from webhooks.models import WebhookEvent, WebhookOutcome

MS = 1000  # µs


@pytest.fixture
def staff_client(db: None) -> Client:
    user = User.objects.create_user("boss", password="pw-123456", is_staff=True, is_superuser=True)
    client = Client()
    client.force_login(user)
    return client


def make_trailed_orders(strategy: Any, account: Any, trails: list[dict[str, Any]], age: timedelta) -> None:
    event = WebhookEvent.objects.create(
        strategy=strategy, group_name=strategy.group_name, outcome=WebhookOutcome.ACCEPTED, http_status=202
    )
    orders = []
    for sequence, trail in enumerate(trails):
        order = Order(
            webhook=event,
            strategy=strategy,
            account=account,
            sequence=sequence,
            market_type="SPOT",
            symbol="BTC/USDT",
            side="BUY",
            order_type="MARKET",
            status="filled",
            trail=trail,
        )
        order.client_order_id = "qt" + order.id.hex
        orders.append(order)
    Order.objects.bulk_create(orders)
    Order.objects.filter(webhook=event).update(created_at=timezone.now() - age)


@pytest.fixture
def orders(make_strategy: Any, make_account: Any) -> None:
    paper = make_account("paper-a")
    binance = make_account("binance-a", exchange="BINANCE")
    strategy = make_strategy(accounts=[paper, binance])
    # PAPER: 100 orders, `sent` at 1..100 ms, `answered` 2 ms later; one without `answered`.
    trails = [
        {"t0": 10**15, "received": 0, "committed": 500, "sent": i * MS, "answered": (i + 2) * MS}
        for i in range(1, 101)
    ]
    trails[-1].pop("answered")
    make_trailed_orders(strategy, paper, trails, timedelta(hours=1))
    # BINANCE: 3 orders in the window, and one 30 h old (outside it), and one with no trail.
    make_trailed_orders(
        strategy,
        binance,
        [{"t0": 1, "received": 0, "sent": v * MS, "answered": (v + 50) * MS} for v in (10, 20, 30)],
        timedelta(hours=2),
    )
    make_trailed_orders(
        strategy, binance, [{"t0": 1, "received": 0, "sent": 10_000 * MS}], timedelta(hours=30)
    )
    make_trailed_orders(strategy, binance, [{}], timedelta(hours=1))


def test_percentile_is_the_nearest_rank() -> None:
    assert percentile(list(range(1, 101)), 50) == 50
    assert percentile(list(range(1, 101)), 99) == 99
    assert percentile([7], 99) == 7
    assert percentile([3, 1, 2], 50) == 2


def stages(summary: dict[str, Any], venue: str) -> dict[str, tuple[int, float, float]]:
    [entry] = [v for v in summary["venues"] if v["venue"] == venue]
    return {s["stage"]: (s["count"], s["p50_ms"], s["p99_ms"]) for s in entry["stages"]}


@pytest.mark.django_db
def test_the_summary_gives_p50_and_p99_per_venue_and_stage_within_the_window(orders: None) -> None:
    summary = latency_summary(24)
    assert [v["venue"] for v in summary["venues"]] == ["BINANCE", "PAPER"]
    paper = stages(summary, "PAPER")
    assert paper["sent"] == (100, 50.0, 99.0)
    assert paper["answered"] == (99, 52.0, 101.0)  # the order without `answered` is not counted
    assert paper["committed"] == (100, 0.5, 0.5)
    binance = stages(summary, "BINANCE")
    assert binance["sent"] == (3, 20.0, 30.0)  # the 30-hour-old order is outside the 24 h
    assert "committed" not in binance
    assert stages(latency_summary(48), "BINANCE")["sent"] == (4, 20.0, 10_000.0)


@pytest.mark.django_db
def test_the_api_returns_the_summary_to_staff_only(
    orders: None, staff_client: Client, client: Client
) -> None:
    response = staff_client.get("/api/latency?hours=24")
    assert response.status_code == 200
    assert stages(response.json(), "PAPER")["sent"] == (100, 50.0, 99.0)
    assert response.json()["hours"] == 24
    assert staff_client.get("/api/latency").json()["hours"] == 24  # the default window
    for bad in ("0", "-1", "abc", "nan", "100000"):
        refused = staff_client.get(f"/api/latency?hours={bad}")
        assert refused.status_code == 400 and refused.json()["code"] == "invalid_field", bad
    assert client.get("/api/latency").status_code in (401, 403)


@pytest.mark.django_db
def test_the_latency_page_shows_each_venue_and_stage(orders: None, staff_client: Client) -> None:
    html = staff_client.get("/latency/").content.decode()
    assert 'data-venue="PAPER"' in html and 'data-venue="BINANCE"' in html
    assert 'data-stage="answered"' in html
    assert ">50.0<" in html and ">99.0<" in html  # PAPER `sent` p50 and p99
    assert 'href="/latency/"' in html  # the nav link


@pytest.mark.django_db
def test_the_order_page_shows_the_trail(orders: None, staff_client: Client) -> None:
    order = Order.objects.filter(account__name="paper-a").order_by("sequence").first()
    assert order is not None
    html = staff_client.get(f"/orders/{order.pk}/").content.decode()
    assert 'id="latency-trail"' in html
    assert 'data-stage="committed"' in html and 'data-stage="answered"' in html
    assert ">0.500<" in html and ">3.000<" in html  # committed at 0.5 ms, answered at 3 ms
