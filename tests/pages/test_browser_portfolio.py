"""The account page in headless Chromium against the real product (`manage.py serve` + a Celery
worker + Redis): a position opened by a webhook appears without a reload, and its unrealised
PnL moves with the price published by another process."""

from __future__ import annotations

import json
import time
import urllib.request
from decimal import Decimal
from typing import Any

import pytest

from tests.pages.conftest import ProductServer
from tests.pages.test_browser import login, needs_redis, post_webhook, wait_connected

pytestmark = pytest.mark.browser


def api_get(product: ProductServer, path: str) -> Any:
    token = product.seed.get("api_token")
    if not token:
        pytest.skip("seed_demo did not return an API token (one existed already)")
    request = urllib.request.Request(product.base_url + path, headers={"Authorization": f"Token {token}"})
    with urllib.request.urlopen(request, timeout=10) as response:
        return json.loads(response.read())


def raw_unrealised(page: Any, instrument: str) -> str:
    return (
        page.locator(f'#positions tr[data-instrument="{instrument}"] .p-unrealised').get_attribute("data-raw")
        or ""
    )


def test_a_webhook_position_appears_on_the_account_page_with_live_pnl(
    page: Any, product: ProductServer
) -> None:
    needs_redis(product)
    instrument = "BINANCE:BTC/USDT"
    product.publish_price(instrument, "65000")  # the paper venue fills at this price
    account = next(a for a in api_get(product, "/api/accounts/") if a["name"] == "paper_futures")
    login(page, product)
    page.goto(f"{product.base_url}/accounts/{account['id']}/")
    wait_connected(page)
    page.evaluate("window.__sameDocument = true")

    futures = next(s for s in product.seed["strategies"] if s["market_type"] == "FUTURES")
    payload = dict(futures["sample_payload"], token=futures["token"], symbol="BTC/USDT")
    payload.pop("orders", None)
    payload.update({"order_type": "MARKET", "side": "buy", "qty_per": 10})
    post_webhook(product, payload)

    row = page.locator(f'#positions tr[data-instrument="{instrument}"]')
    row.wait_for(timeout=30_000)  # pushed by the portfolio refresh after the fill
    quantity = Decimal(row.locator("td").nth(2).inner_text().replace(",", ""))
    assert quantity > 0
    page.locator("#fills tbody tr", has_text="BTC/USDT").first.wait_for()  # the fill, listed live
    page.wait_for_function(
        "(sel) => { const c = document.querySelector(sel); return c && c.dataset.raw === '0'; }",
        arg=f'#positions tr[data-instrument="{instrument}"] .p-unrealised',
    )

    product.publish_price(instrument, "66000")
    page.wait_for_function(
        "(sel) => { const c = document.querySelector(sel); return c && Number(c.dataset.raw) > 0; }",
        arg=f'#positions tr[data-instrument="{instrument}"] .p-unrealised',
        timeout=20_000,
    )
    assert Decimal(raw_unrealised(page, instrument)) == quantity * 1000
    cell = row.locator(".p-unrealised")
    assert "up" in (cell.get_attribute("class") or "")
    assert row.locator(".p-mark").inner_text() == "66,000"

    product.publish_price(instrument, "64500")
    page.wait_for_function(
        "(sel) => { const c = document.querySelector(sel); return c && Number(c.dataset.raw) < 0; }",
        arg=f'#positions tr[data-instrument="{instrument}"] .p-unrealised',
        timeout=20_000,
    )
    assert Decimal(raw_unrealised(page, instrument)) == quantity * -500
    assert page.evaluate("window.__sameDocument") is True


def test_accounts_page_lists_every_demo_account(page: Any, product: ProductServer) -> None:
    login(page, product)
    page.goto(product.base_url + "/accounts/")
    names = page.locator("#accounts tbody tr td:first-child a").all_inner_texts()
    assert {"paper_spot", "paper_futures", "paper_kr_stock"} <= set(names)


def test_fills_are_drawn_as_markers_on_the_instrument_chart(page: Any, product: ProductServer) -> None:
    needs_redis(product)
    instrument = "BINANCE:BTC/USDT"
    product.publish_price(instrument, "65000")
    futures = next(s for s in product.seed["strategies"] if s["market_type"] == "FUTURES")
    payload = dict(futures["sample_payload"], token=futures["token"], symbol="BTC/USDT")
    payload.pop("orders", None)
    payload.update({"order_type": "MARKET", "side": "buy", "qty_per": 5})
    post_webhook(product, payload)
    deadline = time.monotonic() + 30
    while not api_get(product, "/api/fills?instrument=BINANCE%3ABTC%2FUSDT"):
        assert time.monotonic() < deadline, "the webhook's order never filled"
        time.sleep(0.5)
    # Daily bars around today (the markers sit on their day's candle).
    product.manage(
        "shell",
        "-c",
        "import datetime as dt\n"
        "from prices.models import DailyPrice\n"
        "day = dt.date.today() - dt.timedelta(days=20)\n"
        "while day <= dt.date.today() + dt.timedelta(days=1):\n"
        "    DailyPrice.objects.update_or_create(ticker='BINANCE:BTC/USDT', date=day, defaults=dict("
        "open=64000, high=66000, low=63000, close=65000, volume=100, source='csv'))\n"
        "    day += dt.timedelta(days=1)\n",
    )
    login(page, product)
    page.goto(product.base_url + "/instruments/BINANCE:BTC/USDT/")
    page.wait_for_function("() => Number(document.getElementById('chart').dataset.fills) >= 1")
