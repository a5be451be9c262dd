"""The approval queue (semi-automatic mode) in headless Chromium against the real product.

Approving sends the held orders exactly once (a second, stale approval from another tab is
refused), rejecting and expiry send nothing. What reached the paper venue is read back from
the product's database (`manage.py shell`), not from the page.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from tests.pages.conftest import ProductServer
from tests.pages.test_browser import login, post_webhook, wait_connected

pytestmark = pytest.mark.browser

ACCOUNT = "approval-paper"
SETUP = """
from decimal import Decimal
from orders.models import PaperBalance
from strategies.models import Account, Strategy, StrategyAccount
account, _ = Account.objects.get_or_create(name="{account}", defaults={{"exchange": "PAPER"}})
PaperBalance.objects.get_or_create(account=account, asset="USDT", defaults={{"free": Decimal("100000")}})
strategy, _ = Strategy.objects.update_or_create(
    group_name="{name}",
    defaults={{"market_type": "SPOT", "token": "{name}-token", "approval_required": True,
              "approval_timeout_seconds": {timeout}}},
)
StrategyAccount.objects.get_or_create(strategy=strategy, account=account)
"""
STATE = """
import json
from orders.models import Order, PaperOrder
order = Order.objects.select_related("approved_by").get(pk="{order_id}")
print(json.dumps({{
    "status": order.status,
    "message": order.message,
    "approved_by": order.approved_by.username if order.approved_by else None,
    "sent": PaperOrder.objects.filter(client_order_id=order.client_order_id).count(),
}}))
"""


def approval_strategy(product: ProductServer, name: str, timeout: int) -> dict[str, Any]:
    product.manage("shell", "-c", SETUP.format(account=ACCOUNT, name=name, timeout=timeout))
    return {"group_name": name, "token": f"{name}-token"}


def order_state(product: ProductServer, order_id: str) -> dict[str, Any]:
    out = product.manage("shell", "-c", STATE.format(order_id=order_id))
    return dict(json.loads(out.strip().splitlines()[-1]))


def limit_buy(product: ProductServer, strategy: dict[str, Any]) -> tuple[str, str]:
    """A resting LIMIT buy far below the market: (webhook id, order id)."""
    accepted = post_webhook(
        product,
        {
            **strategy,
            "symbol": "BTC/USDT",
            "side": "buy",
            "order_type": "LIMIT",
            "qty_per": 1,
            "price": "1000",
        },
    )
    [row] = accepted["orders"]
    assert row["status"] == "pending_approval"
    return accepted["webhook_id"], row["order_id"]


def open_queue(page: Any, product: ProductServer) -> None:
    page.goto(product.base_url + "/approvals/")
    wait_connected(page)
    page.evaluate("window.__sameDocument = true")


def card_of(page: Any, order_id: str) -> Any:
    card = page.locator(f'.approval-card:has(tr[data-order-id="{order_id}"])')
    card.wait_for()  # arrives live over /ws
    return card


def wait_row_status(page: Any, order_id: str, statuses: list[str]) -> None:
    page.wait_for_function(
        '([id, wanted]) => { const r = document.querySelector(`.approval-card tr[data-order-id="${id}"]`);'
        " return r && wanted.includes(r.dataset.status); }",
        arg=[order_id, statuses],
        timeout=30_000,
    )


def test_approving_sends_the_held_order_exactly_once(page: Any, product: ProductServer) -> None:
    strategy = approval_strategy(product, "approve_spot", timeout=600)
    login(page, product)
    open_queue(page, product)
    other = page.context.new_page()  # a second tab (same staff session) showing the same queue
    other.goto(product.base_url + "/approvals/")
    wait_connected(other)

    _webhook_id, order_id = limit_buy(product, strategy)
    card = card_of(page, order_id)
    assert card.locator(".o-status .badge").inner_text() == "승인 대기"
    assert order_state(product, order_id)["sent"] == 0
    other_card = card_of(other, order_id)
    other.evaluate("window.__sameDocument = true")

    posted: list[str] = []
    page.on("request", lambda r: posted.append(r.url) if r.method == "POST" else None)
    card.locator(".a-approve").click()  # opens the confirmation; sends nothing
    dialog = card.locator("dialog")
    text = dialog.inner_text()
    assert ACCOUNT in text and "LIMIT BUY BTC/USDT" in text and "price 1,000" in text
    dialog.locator("[data-close]").click()
    page.wait_for_timeout(300)
    assert posted == [] and order_state(product, order_id)["sent"] == 0

    card.locator(".a-approve").click()
    with page.expect_navigation():
        dialog.locator(".confirm-send").click()
    assert "승인: 주문 1건을 거래소로 전송합니다." in page.locator(".messages").inner_text()

    # The other tab sees the decision live: the row leaves pending_approval, buttons close.
    wait_row_status(other, order_id, ["queued", "submitted", "open"])
    assert other_card.locator(".a-approve").is_disabled()
    assert other.evaluate("window.__sameDocument") is True
    # A stale approval from that tab (its form still holds a valid CSRF token) sends nothing more.
    with other.expect_navigation():
        other_card.locator("dialog form").evaluate("form => form.submit()")
    assert "승인 대기 중인 주문이 아닙니다" in other.locator(".messages").inner_text()

    page.wait_for_timeout(500)
    state = order_state(product, order_id)
    assert state["status"] == "open" and state["sent"] == 1
    assert state["approved_by"] == product.seed["admin"]["username"]
    other.close()


def test_rejecting_sends_nothing(page: Any, product: ProductServer) -> None:
    strategy = approval_strategy(product, "approve_spot", timeout=600)
    login(page, product)
    open_queue(page, product)
    _webhook_id, order_id = limit_buy(product, strategy)
    card = card_of(page, order_id)
    with page.expect_navigation():
        card.locator(".a-reject").click()
    assert "거부: 주문 1건을 취소했습니다" in page.locator(".messages").inner_text()
    assert page.locator(f'tr[data-order-id="{order_id}"]').count() == 0  # gone from the queue
    state = order_state(product, order_id)
    assert state["status"] == "cancelled" and state["sent"] == 0
    assert "승인 거부" in state["message"]


def test_an_expired_group_is_dropped_and_a_late_approval_sends_nothing(
    page: Any, product: ProductServer
) -> None:
    strategy = approval_strategy(product, "approve_fast", timeout=3)
    login(page, product)
    open_queue(page, product)
    _webhook_id, order_id = limit_buy(product, strategy)
    card = card_of(page, order_id)
    # The page counts down to the deadline and then closes the approve button.
    page.wait_for_function(
        '(id) => { const c = document.querySelector(`.approval-card:has(tr[data-order-id="${id}"])`);'
        " return c && c.querySelector('.a-approve').disabled; }",
        arg=order_id,
        timeout=15_000,
    )
    assert "승인 대기 시간 초과" in card.locator(".a-countdown").inner_text()
    if not product.distributed:
        # Embedded mode runs the expiry pass in-process: the row turns cancelled live.
        wait_row_status(page, order_id, ["cancelled"])
        assert "승인 대기 시간 초과" in card.locator(".o-message").inner_text()
    # Approving anyway (the form posted by hand) is refused by the server.
    with page.expect_navigation():
        card.locator("dialog form").evaluate("form => form.submit()")
    assert "승인 대기" in page.locator(".messages").inner_text()
    state = order_state(product, order_id)
    assert state["status"] == "cancelled" and state["sent"] == 0
    assert "승인 대기 시간 초과 (3초)" in state["message"]
    assert page.evaluate("window.__sameDocument") is None  # the late post navigated: a new page
