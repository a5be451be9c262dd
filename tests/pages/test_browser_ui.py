"""The pages in headless Chromium against the real product: cancelling an order from the order
list, and the order and webhook lists on a phone-sized screen. See conftest.py for the server."""

from __future__ import annotations

from typing import Any

import pytest

from tests.pages.conftest import ProductServer
from tests.pages.test_browser import login, post_webhook, wait_connected, wait_status

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
