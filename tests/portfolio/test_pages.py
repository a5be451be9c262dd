"""/accounts/ and /accounts/<id>/ (staff only), beside auth's own /accounts/ URLs."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.test import Client

from orders.models import Order, PaperPosition
from orders.portfolio.services import portfolio_refresh
from orders.templatetags.portfolio_tags import grouped

pytestmark = pytest.mark.django_db


@pytest.fixture
def staff_client(db: None) -> Client:
    client = Client()
    client.force_login(User.objects.create_user("boss", password="pw-123456", is_staff=True))
    return client


def test_accounts_page_lists_venue_connection_and_equity(
    staff_client: Client, make_account: Callable[..., Any], no_prices: None
) -> None:
    read = make_account(name="paper-main", balances={"USDT": "1500"})
    make_account(name="upbit-never", exchange="UPBIT")
    portfolio_refresh(read)
    html = staff_client.get("/accounts/").content.decode()
    assert "paper-main" in html and "upbit-never" in html
    assert "1,500 USDT" in html
    assert f'href="/accounts/{read.pk}/"' in html


def test_account_page_shows_positions_balances_open_orders_fills_and_errors(
    staff_client: Client,
    make_account: Callable[..., Any],
    make_fill: Callable[..., Any],
    publish_price: Callable[[str, Any], Any],
) -> None:
    account = make_account(name="paper-detail", balances={"USDT": "1000"})
    make_fill(account, "BUY", "0.5", "50000", market_type="FUTURES", fee="1.25", fee_currency="USDT")
    resting = make_fill(account, "SELL", "0.1", "70000", market_type="FUTURES", status="open")
    Order.objects.filter(pk=resting.pk).update(filled_qty=0, avg_price=None)
    PaperPosition.objects.create(
        account=account,
        symbol="BTC/USDT",
        market_type="FUTURES",
        quantity="0.5",
        entry_price=50000,
        currency="USDT",
    )
    publish_price("BINANCE:BTC/USDT", "51000")
    html = staff_client.get(f"/accounts/{account.pk}/").content.decode()
    assert 'data-instrument="BINANCE:BTC/USDT"' in html
    assert ">500<" in html  # unrealised: 0.5 × (51000 − 50000)
    assert f'data-order-id="{resting.pk}"' in html  # the open order, in the open-orders partial
    assert "1.25 USDT" in html  # the fill's fee
    assert 'id="portfolio-data"' in html and 'id="equity-curve"' in html


def test_account_page_shows_a_venue_read_error(
    staff_client: Client, make_account: Callable[..., Any]
) -> None:
    account = make_account(name="broken", exchange="NOSUCHVENUE")
    html = staff_client.get(f"/accounts/{account.pk}/").content.decode()
    assert 'class="msg msg-error"' in html


def test_account_pages_are_staff_only(make_account: Callable[..., Any]) -> None:
    account = make_account(name="paper-x")
    assert Client().get("/accounts/").status_code == 302
    viewer = Client()
    viewer.force_login(User.objects.create_user("viewer", password="x"))
    assert viewer.get("/accounts/").status_code == 403
    assert viewer.get(f"/accounts/{account.pk}/").status_code == 403


def test_login_and_logout_still_live_under_accounts(db: None) -> None:
    assert Client().get("/accounts/login/").status_code == 200
    client = Client()
    client.force_login(User.objects.create_user("boss", password="x", is_staff=True))
    assert client.post("/accounts/logout/").status_code in (200, 302)
    assert client.get("/accounts/").status_code == 302  # logged out: to the login page


def test_unknown_account_is_404(staff_client: Client) -> None:
    assert staff_client.get("/accounts/999/").status_code == 404


def test_dashboard_lists_cached_positions_for_staff_only(
    staff_client: Client, make_account: Callable[..., Any], publish_price: Callable[[str, Any], Any]
) -> None:
    account = make_account(name="paper-dash", balances={"USDT": "10"})
    PaperPosition.objects.create(
        account=account,
        symbol="ETH/USDT",
        market_type="FUTURES",
        quantity="-2",
        entry_price=3000,
        currency="USDT",
    )
    account.settings = {"portfolio_markets": ["FUTURES"]}
    account.save()
    publish_price("BINANCE:ETH/USDT", "2900")
    portfolio_refresh(account)
    html = staff_client.get("/").content.decode()
    assert 'id="dash-positions"' in html
    assert 'data-instrument="BINANCE:ETH/USDT" data-quantity="-2" data-entry="3000"' in html
    assert ">200 USDT<" in html  # −2 × (2900 − 3000)
    viewer = Client()
    viewer.force_login(User.objects.create_user("viewer", password="x"))
    assert 'id="dash-positions"' not in viewer.get("/").content.decode()


@pytest.mark.parametrize(
    ("value", "shown"),
    [
        ("1234567.891", "1,234,567.891"),
        ("-1000", "-1,000"),
        ("0.00001", "0.00001"),
        (None, "–"),
        ("n/a", "n/a"),
    ],
)
def test_grouped_keeps_every_digit(value: str | None, shown: str) -> None:
    assert grouped(value) == shown


def test_the_account_page_tests_the_connection_and_shows_the_result(
    staff_client: Client, make_account: Callable[..., Any], no_prices: None
) -> None:
    account = make_account(name="paper-check", balances={"USDT": "10"})
    page = f"/accounts/{account.pk}/"
    assert '<span class="badge">미확인</span>' in staff_client.get(page).content.decode()
    response = staff_client.post(f"/accounts/{account.pk}/check/", {"next": page}, follow=True)
    assert response.redirect_chain[-1][0] == page
    html = response.content.decode()
    assert 'id="p-check"' in html
    account.refresh_from_db()
    assert account.connection_ok is True and account.connection_checked_at is not None
    assert account.connection_message in html


def test_the_account_page_offers_its_limits_and_kill_switch(
    staff_client: Client, make_account: Callable[..., Any], no_prices: None
) -> None:
    account = make_account(name="paper-guard", balances={"USDT": "10"})
    page = f"/accounts/{account.pk}/"
    html = staff_client.get(page).content.decode()
    assert f'action="/accounts/{account.pk}/limits/"' in html
    assert f'id="kill-switch-account-{account.pk}"' in html
    response = staff_client.post(
        f"/accounts/{account.pk}/kill-switch/",
        {"action": "pause", "confirm": "1", "reason": "page test", "next": page},
        follow=True,
    )
    assert response.redirect_chain[-1][0] == page
    account.refresh_from_db()
    assert account.is_paused and account.paused_reason == "page test"
