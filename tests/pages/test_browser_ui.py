"""The pages in headless Chromium against the real product: cancelling an order from the order
list, and the order and webhook lists on a phone-sized screen. See conftest.py for the server."""

from __future__ import annotations

import re
from typing import Any

import pytest

from tests.pages.conftest import ProductServer
from tests.pages.test_browser import get_json, login, needs_redis, post_webhook, wait_connected, wait_status

pytestmark = pytest.mark.browser


def resting_order(product: ProductServer) -> str:
    """A paper LIMIT buy far below the market, sent through the webhook: it rests."""
    spot = next(s for s in product.seed["strategies"] if s["market_type"] == "SPOT")
    accepted = post_webhook(
        product,
        {
            "group_name": spot["group_name"],
            "token": spot["token"],
            "symbol": "BTC/USDT",
            "side": "buy",
            "order_type": "LIMIT",
            "qty_per": 1,
            "price": "1000",
        },
    )
    return str(accepted["orders"][0]["order_id"])


def test_a_cancel_from_the_order_list_reaches_the_venue_and_the_row_turns_cancelled(
    page: Any, product: ProductServer
) -> None:
    login(page, product)
    page.goto(product.base_url + "/orders/")
    wait_connected(page)
    order_id = resting_order(product)
    wait_status(page, order_id, ["open"])
    # The list as a trader opens it with the order resting (the live row insertion is covered
    # by the order-page tests; here it is the cancel that is tested).
    page.reload()
    wait_connected(page)
    row = page.locator(f'#orders tr[data-order-id="{order_id}"]')

    row.locator("button.cancel-order").click()
    dialog = page.locator(f"#cancel-dialog-{order_id.replace('-', '')}")
    assert dialog.is_visible()
    assert "BTC/USDT" in dialog.inner_text()
    dialog.locator("button.confirm-cancel").click()

    page.wait_for_url(product.base_url + "/orders/")
    row = page.locator(f'#orders tr[data-order-id="{order_id}"]')
    assert row.get_attribute("data-status") == "cancelled"
    assert row.locator(".o-status .badge").inner_text() == "취소됨"
    assert row.locator("button.cancel-order").count() == 0
    assert "주문을 취소했습니다" in page.locator(".messages").inner_text()
    # The paper venue's own book says so too (the order detail reads the venue's message).
    page.goto(product.base_url + f"/orders/{order_id}/")
    assert page.locator("#venue-message").inner_text() == "요청에 따라 취소됨"


def nav_count(page: Any) -> int:
    return int(page.locator("#nav-order-count").get_attribute("data-count"))


def test_the_header_order_count_follows_the_orders_topic(page: Any, product: ProductServer) -> None:
    login(page, product)
    wait_connected(page)
    page.evaluate("window.__sameDocument = true")
    before = nav_count(page)

    order_id = resting_order(product)

    page.wait_for_function(
        "(n) => document.getElementById('nav-order-count').dataset.count === String(n)", arg=before + 1
    )
    assert page.locator("#nav-order-count").is_visible()
    assert page.locator("#nav-order-count").inner_text() == str(before + 1)
    # Cancelled from another tab: this page's count goes down without a reload.
    other = page.context.new_page()
    other.goto(product.base_url + f"/orders/{order_id}/")
    other.locator("button.cancel-order").click()
    other.locator("button.confirm-cancel").click()
    other.wait_for_load_state()
    other.close()
    page.wait_for_function(
        "(n) => document.getElementById('nav-order-count').dataset.count === String(n)", arg=before
    )
    assert page.evaluate("window.__sameDocument") is True


def test_simulated_prices_are_labelled_simulated_on_the_dashboard_and_chart(
    page: Any, product: ProductServer
) -> None:
    needs_redis(product)
    login(page, product)
    wait_connected(page)
    product.manage("publish_price", "NASD:AAPL", "--price", "190.5", "--change-rate", "1.2345", "--simulated")
    row = page.locator('#watchlist tr[data-instrument="NASD:AAPL"]')
    page.wait_for_function(
        "() => document.querySelector('#watchlist tr[data-instrument=\"NASD:AAPL\"]').dataset.source === 'simulated'"
    )
    assert row.locator(".source .badge").inner_text() == "모의 시세"
    assert row.locator(".rate").inner_text() == "+1.23%"
    # 24-hour time, whatever the browser's locale says
    assert re.fullmatch(r"\d\d:\d\d:\d\d", row.locator(".updated").inner_text())
    page.goto(product.base_url + "/instruments/NASD:AAPL/")
    page.wait_for_function("() => document.querySelector('#last-source .badge-simulated') !== null")
    assert page.locator("#last-source .badge").inner_text() == "모의 시세"
    assert get_json(product.base_url + "/api/prices/NASD:AAPL")["source"] == "simulated"


def test_numbers_and_times_share_one_format(page: Any, product: ProductServer) -> None:
    login(page, product)
    formats = page.evaluate(
        """() => [QT.fmt.rate("0.1"), QT.fmt.rate("-2.345"), QT.fmt.rate("12"), QT.fmt.number("1234567.5"),
                  QT.fmt.time("2026-12-01T05:07:09Z")]"""
    )
    # Rates: two decimals, signed; thousands grouped; 24-hour times in the server's zone (KST).
    assert formats == ["+0.10%", "-2.35%", "+12.00%", "1,234,567.5", "14:07:09"]


PHONE = {"width": 390, "height": 844}


def test_the_order_list_on_a_phone_shows_the_key_columns_and_a_row_opens_the_detail(
    browser: Any, product: ProductServer
) -> None:
    context = browser.new_context(viewport=PHONE, locale="ko-KR", is_mobile=True, has_touch=True)
    context.set_default_timeout(20_000)
    page = context.new_page()
    try:
        login(page, product)
        order_id = resting_order(product)
        page.goto(product.base_url + "/orders/")
        row = page.locator(f'#orders tr[data-order-id="{order_id}"]')
        row.wait_for()
        for cls in ("o-time", "o-account", "o-symbol", "o-side", "o-status", "o-filled"):
            cell = row.locator(f".{cls}")
            assert cell.is_visible(), cls
            box = cell.bounding_box()
            assert box is not None and box["x"] >= 0 and box["x"] + box["width"] <= PHONE["width"], (cls, box)
        assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]

        row.locator(".o-symbol").tap()

        page.wait_for_url(product.base_url + f"/orders/{order_id}/")
        assert page.locator("button.cancel-order").is_visible()
    finally:
        context.close()


def test_the_webhook_log_on_a_phone_fits_and_an_entry_opens_its_detail(
    browser: Any, product: ProductServer
) -> None:
    context = browser.new_context(viewport=PHONE, locale="ko-KR", is_mobile=True, has_touch=True)
    context.set_default_timeout(20_000)
    page = context.new_page()
    try:
        login(page, product)
        resting_order(product)
        page.goto(product.base_url + "/webhooks/")
        card = page.locator(".card.event").first
        event_id = card.get_attribute("data-event-id")
        for part in (".badge", "strong", ".mono"):
            box = card.locator(".pagehead " + part).first.bounding_box()
            assert box is not None and box["x"] + box["width"] <= PHONE["width"], (part, box)
        assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]

        card.locator(".pagehead strong").first.tap()

        page.wait_for_url(product.base_url + f"/webhooks/{event_id}/")
    finally:
        context.close()
