"""Connecting accounts through the UI in headless Chromium against the real product
(`manage.py serve`, see conftest.py): a paper account and a Binance account (the Binance
simulator in this process, reached over HTTP by the server), each passing the connection test,
then a bad key failing with a message that says what failed; the lists show the results, and
the account is linked from the strategy page."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import pytest

from tests.pages.conftest import ProductServer
from tests.pages.test_browser import login
from venuesim.binance import BinanceSim

pytestmark = pytest.mark.browser


@pytest.fixture
def binance() -> Iterator[BinanceSim]:
    sim = BinanceSim()
    sim.start()
    yield sim
    sim.stop()


def add_account(page: Any, product: ProductServer, name: str, exchange: str) -> None:
    page.goto(product.base_url + "/admin/strategies/account/add/")
    page.fill("#id_name", name)
    page.select_option("#id_exchange", exchange)


def save_and_continue(page: Any) -> None:
    page.click('input[name="_continue"]')
    page.wait_for_selector(".messagelist li.success")
    assert "/change/" in page.url, page.url


def test_connection(page: Any) -> str:
    """Press "Test connection" and return the result message (success or error)."""
    page.click("#account-check")
    message = page.locator(".messagelist li", has_text="연결 테스트")
    message.wait_for()
    return f"{message.get_attribute('class')}: {(message.text_content() or '').strip()}"


test_connection.__test__ = False  # type: ignore[attr-defined] # a helper, not a test


def visible(page: Any, selector: str) -> bool:
    return bool(page.locator(selector).first.is_visible())


def test_connect_paper_and_binance_accounts_through_the_ui(
    page: Any, product: ProductServer, binance: BinanceSim
) -> None:
    login(page, product)

    # A paper account: no credentials asked, and the connection test passes.
    add_account(page, product, "ui-paper", "PAPER")
    assert not visible(page, "fieldset.qt-venue-credentials")
    assert not visible(page, "fieldset.qt-venue-broker")
    save_and_continue(page)
    result = test_connection(page)
    # (the admin capitalises a message's first letter)
    assert result.startswith("success") and "ui-paper 연결 테스트: 연결 성공" in result.lower(), result

    # A Binance account pointed at the simulator. The page shows the fields each venue uses.
    add_account(page, product, "ui-binance", "BINANCE")
    assert visible(page, "#id_api_key") and visible(page, "#id_api_secret")
    assert not visible(page, "#id_passphrase") and not visible(page, "#id_account_number")
    assert visible(page, "#id_leverage")
    page.select_option("#id_exchange", "OKX")
    assert visible(page, "#id_passphrase")
    page.select_option("#id_exchange", "KIS")
    assert visible(page, "#id_account_number") and not visible(page, "#id_leverage")
    page.select_option("#id_exchange", "BINANCE")
    # Saving without credentials is refused, saying what is missing.
    page.click('input[name="_continue"]')
    page.wait_for_selector(".errornote")
    errors = [text.strip() for text in page.locator(".errorlist li").all_text_contents()]
    assert "BINANCE 계좌에는 API 키이(가) 필요합니다" in errors, errors
    page.select_option("#id_exchange", "BINANCE")
    page.fill("#id_api_key", "sim-key")
    page.fill("#id_api_secret", "sim-secret")
    page.locator("summary", has_text="고급").click()
    page.fill("#id_api_base_url", binance.base_url)
    page.fill("#id_settings", '{"timeout_seconds": 3, "enable_rate_limit": false}')
    save_and_continue(page)
    assert "sim-secret" not in page.content()  # write-only
    result = test_connection(page)
    assert result.startswith("success") and "연결 성공" in result and "USDT 10000" in result, result
    assert binance.seen("/api/v3/account")  # the balance was read from the venue

    # A bad key: the test fails and says what failed, in plain words and the venue's own.
    page.fill("#id_api_key", "wrong-key")  # the secret field left blank keeps the stored one
    save_and_continue(page)
    result = test_connection(page)
    assert result.startswith("error"), result
    assert "API 키가 거부되었습니다" in result and "허용 IP" in result, result
    assert "Invalid API-key, IP, or permissions" in result, result
    assert "✗" in page.locator(".field-connection_result").inner_text()

    # The account list shows each account's last result.
    page.goto(product.base_url + "/admin/strategies/account/")
    paper_row = page.locator("#result_list tr", has_text="ui-paper")
    binance_row = page.locator("#result_list tr", has_text="ui-binance")
    assert paper_row.locator(".qt-conn-ok").count() == 1
    failed = binance_row.locator(".qt-conn-fail")
    assert failed.count() == 1 and "API 키가 거부되었습니다" in (failed.get_attribute("title") or "")

    # Linking from the strategy page: the paper account joins a seeded spot strategy.
    spot = next(s for s in product.seed["strategies"] if s["market_type"] == "SPOT")
    page.goto(product.base_url + "/strategies/")
    page.click(f"a:text-is('{spot['group_name']}')")
    page.wait_for_url(re.compile(r"/strategies/\d+/$"))
    page.select_option("#link-account-select", label="ui-paper (PAPER)")
    page.click("#link-account-submit")
    page.wait_for_selector(".messages .msg-success")
    assert "ui-paper 계좌를 연결했습니다" in page.locator(".messages").inner_text()
    row = page.locator("#accounts tr", has_text="ui-paper")
    assert row.locator(".conn-badge").inner_text() == "연결 정상"
