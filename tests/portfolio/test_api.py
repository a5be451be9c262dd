"""GET /api/accounts/, /api/accounts/<id>/portfolio, /api/accounts/<id>/fills: staff session or
API token, 4xx for the rest, and their place in the OpenAPI schema."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.test import Client

from access.services import api_token_create
from orders.portfolio.services import portfolio_refresh

pytestmark = pytest.mark.django_db


@pytest.fixture
def staff_client(db: None) -> Client:
    client = Client()
    client.force_login(User.objects.create_user("boss", password="pw-123456", is_staff=True))
    return client


def test_accounts_list_shows_venue_connection_and_last_totals(
    staff_client: Client, make_account: Callable[..., Any], no_prices: None
) -> None:
    read = make_account(name="a-read", balances={"USDT": "250"})
    make_account(name="b-never", exchange="BINANCE")
    portfolio_refresh(read)
    body = staff_client.get("/api/accounts/").json()
    assert [a["name"] for a in body] == ["a-read", "b-never"]
    assert body[0]["exchange"] == "PAPER" and body[0]["connection"] is None
    assert body[0]["portfolio"]["totals"]["USDT"]["equity"] == "250"
    assert body[1]["portfolio"] is None  # never read: nothing invented


def test_portfolio_reads_once_then_serves_the_cache_and_refreshes_on_request(
    staff_client: Client, make_account: Callable[..., Any], no_prices: None
) -> None:
    account = make_account(name="paper-api", balances={"USDT": "100"})
    first = staff_client.get(f"/api/accounts/{account.pk}/portfolio").json()
    assert first["totals"]["USDT"]["cash"] == "100" and first["errors"] == []
    account.paper_balances.update(free=300)
    assert staff_client.get(f"/api/accounts/{account.pk}/portfolio").json()["totals"]["USDT"]["cash"] == "100"
    fresh = staff_client.get(f"/api/accounts/{account.pk}/portfolio?refresh=1").json()
    assert fresh["totals"]["USDT"]["cash"] == "300"
    assert fresh["equity_curve"]["USDT"][-1]["equity"] == "300"


def test_portfolio_shows_a_venue_error_with_200(
    staff_client: Client, make_account: Callable[..., Any]
) -> None:
    account = make_account(name="broken", exchange="NOSUCHVENUE")
    body = staff_client.get(f"/api/accounts/{account.pk}/portfolio").json()
    assert body["errors"] and body["error"]


def test_fills_newest_first_with_fees_and_a_limit(
    staff_client: Client, make_account: Callable[..., Any], make_fill: Callable[..., Any]
) -> None:
    account = make_account(name="paper-fills")
    make_fill(account, "BUY", "1", "100", fee="0.1", fee_currency="USDT")
    make_fill(account, "SELL", "1", "110", symbol="ETH/USDT")
    body = staff_client.get(f"/api/accounts/{account.pk}/fills").json()
    assert [(f["symbol"], f["side"], f["price"], f["fee"]) for f in body] == [
        ("ETH/USDT", "SELL", "110", None),
        ("BTC/USDT", "BUY", "100", "0.1"),
    ]
    assert len(staff_client.get(f"/api/accounts/{account.pk}/fills?limit=1").json()) == 1
    only = staff_client.get(f"/api/accounts/{account.pk}/fills?symbol=btc/usdt").json()
    assert [f["symbol"] for f in only] == ["BTC/USDT"]


@pytest.mark.parametrize("limit", ["0", "1001", "x"])
def test_a_bad_limit_is_a_400_envelope(
    staff_client: Client, make_account: Callable[..., Any], limit: str
) -> None:
    account = make_account(name="paper-limit")
    response = staff_client.get(f"/api/accounts/{account.pk}/fills?limit={limit}")
    assert response.status_code == 400
    assert response.json()["code"] == "invalid_limit"


def test_an_unknown_account_is_404(staff_client: Client) -> None:
    assert staff_client.get("/api/accounts/999/portfolio").status_code == 404
    assert staff_client.get("/api/accounts/999/fills").status_code == 404


def test_an_api_token_reads_and_others_are_refused(make_account: Callable[..., Any], no_prices: None) -> None:
    account = make_account(name="paper-token", balances={"KRW": "1"})
    staff = User.objects.create_user("bot-owner", password="x", is_staff=True)
    _token, key = api_token_create(staff, "bot")
    assert Client().get("/api/accounts/", HTTP_AUTHORIZATION=f"Token {key}").status_code == 200
    assert Client().get(f"/api/accounts/{account.pk}/fills").status_code in (401, 403)
    viewer = Client()
    viewer.force_login(User.objects.create_user("viewer", password="x"))
    assert viewer.get(f"/api/accounts/{account.pk}/portfolio").status_code == 403


def test_the_endpoints_are_in_the_openapi_schema(staff_client: Client) -> None:
    schema = Client().get("/api/schema/", HTTP_ACCEPT="application/json").content.decode()
    for path in (
        "/api/accounts/",
        "/api/accounts/{account_id}/portfolio",
        "/api/accounts/{account_id}/fills",
    ):
        assert path in schema


def test_instrument_fills_gather_every_account_of_that_instrument(
    staff_client: Client, make_account: Callable[..., Any], make_fill: Callable[..., Any]
) -> None:
    paper = make_account(name="paper-i")
    okx = make_account(name="okx-i", exchange="OKX")
    make_fill(paper, "BUY", "1", "100")  # paper crypto is priced from Binance
    make_fill(okx, "SELL", "2", "101")  # OKX:BTC/USDT, another instrument
    body = staff_client.get("/api/fills?instrument=binance:btc/usdt").json()
    assert [(f["account"], f["side"], f["quantity"]) for f in body] == [("paper-i", "BUY", "1")]
    assert [f["account"] for f in staff_client.get("/api/fills?instrument=OKX:BTC/USDT").json()] == ["okx-i"]
    missing = staff_client.get("/api/fills")
    assert missing.status_code == 400 and missing.json()["code"] == "invalid_instrument"
