"""The pages in headless Chromium against the real product (`manage.py serve`).

See conftest.py for how the server runs. Tests that need a second process to publish prices
(`manage.py publish_price`) need Redis (a private redis-server, else REDIS_URL) and are skipped
without it.
"""

from __future__ import annotations

import json
import re
import urllib.request
from typing import Any

import pytest

from tests.pages.conftest import PING_SECONDS, ProductServer

pytestmark = pytest.mark.browser

FINAL = ("filled", "cancelled", "rejected", "failed")


def login(page: Any, product: ProductServer) -> None:
    admin = product.seed["admin"]
    if not admin.get("password"):
        pytest.skip("seed_demo did not return the admin password (the user existed already)")
    page.goto(product.base_url + "/accounts/login/")
    page.fill("#id_username", admin["username"])
    page.fill("#id_password", admin["password"])
    page.click(".login button[type=submit]")
    page.wait_for_url(product.base_url + "/")


def needs_redis(product: ProductServer) -> None:
    if not product.distributed:
        pytest.skip(
            "needs Redis (redis-server or REDIS_URL): in embedded mode a second process cannot publish"
        )


def wait_connected(page: Any) -> None:
    page.wait_for_selector("#conn[data-state=connected]")


def price_cell(page: Any, instrument: str) -> Any:
    return page.locator(f'#watchlist tr[data-instrument="{instrument}"] .price')


def get_json(url: str) -> Any:
    with urllib.request.urlopen(url, timeout=5) as response:
        return json.loads(response.read())


def post_webhook(product: ProductServer, body: dict[str, Any]) -> dict[str, Any]:
    request = urllib.request.Request(
        product.base_url + "/api/webhook",
        data=json.dumps(body).encode(),
        headers={"Content-Type": "application/json"},
        method="POST",
    )
    with urllib.request.urlopen(request, timeout=5) as response:
        return json.loads(response.read())


def wait_status(page: Any, order_id: str, statuses: list[str]) -> None:
    page.wait_for_function(
        '([id, wanted]) => { const r = document.querySelector(`#orders tr[data-order-id="${id}"]`);'
        " return r && wanted.includes(r.dataset.status); }",
        arg=[order_id, statuses],
        timeout=30_000,
    )


def test_login_shows_the_korean_dashboard(page: Any, product: ProductServer) -> None:
    page.goto(product.base_url + "/orders/")
    assert "/accounts/login/" in page.url
    login(page, product)
    assert page.locator("h1").inner_text() == "실시간 시세"
    wait_connected(page)
    assert page.locator("#watchlist tbody tr").count() >= 16


def test_dashboard_shows_a_price_published_by_another_process(page: Any, product: ProductServer) -> None:
    needs_redis(product)
    login(page, product)
    wait_connected(page)
    product.publish_price("005930", "71000")
    cell = price_cell(page, "005930")
    page.wait_for_function(
        "() => document.querySelector('#watchlist tr[data-instrument=\"005930\"] .price').dataset.raw === '71000'"
    )
    page.evaluate("window.__sameDocument = true")
    product.publish_price("005930", "71500")
    page.wait_for_function(
        "() => document.querySelector('#watchlist tr[data-instrument=\"005930\"] .price').dataset.raw === '71500'"
    )
    assert cell.inner_text() == "71,500"
    assert "flash-up" in (cell.get_attribute("class") or "")
    row = page.locator('#watchlist tr[data-instrument="005930"]')
    assert row.get_attribute("data-source") == "realtime"
    assert page.evaluate("window.__sameDocument") is True


def test_webhook_order_reaches_its_final_status_without_reload(page: Any, product: ProductServer) -> None:
    if product.distributed:
        product.publish_price("BINANCE:BTC/USDT", "65000")  # the paper venue fills at this price
    login(page, product)
    page.goto(product.base_url + "/orders/")
    wait_connected(page)
    page.evaluate("window.__sameDocument = true")
    spot = next(s for s in product.seed["strategies"] if s["market_type"] == "SPOT")
    accepted = post_webhook(product, dict(spot["sample_payload"], token=spot["token"]))
    order_id = accepted["orders"][0]["order_id"]
    row = page.locator(f'#orders tr[data-order-id="{order_id}"]')
    row.wait_for()
    wait_status(page, order_id, list(FINAL))
    if product.distributed:  # a price was published, so the paper venue filled it
        assert row.get_attribute("data-status") == "filled"
        assert row.locator(".o-status .badge").inner_text() == "체결"
    assert page.evaluate("window.__sameDocument") is True


def test_a_resting_order_row_changes_live_when_it_is_cancelled(page: Any, product: ProductServer) -> None:
    if product.distributed:
        product.publish_price("BINANCE:BTC/USDT", "65000")
    login(page, product)
    spot = next(s for s in product.seed["strategies"] if s["market_type"] == "SPOT")
    page.goto(product.base_url + "/orders/?strategy=&status=")
    wait_connected(page)
    page.evaluate("window.__sameDocument = true")
    base = {"group_name": spot["group_name"], "token": spot["token"], "symbol": "BTC/USDT"}
    limit = post_webhook(
        product, {**base, "side": "buy", "order_type": "LIMIT", "qty_per": 1, "price": "1000"}
    )
    order_id = limit["orders"][0]["order_id"]
    wait_status(page, order_id, ["open"])
    post_webhook(product, {**base, "order_type": "CANCEL_ALL_ORDER"})
    wait_status(page, order_id, ["cancelled"])
    row = page.locator(f'#orders tr[data-order-id="{order_id}"]')
    assert row.locator(".o-status .badge").inner_text() == "취소됨"
    assert page.evaluate("window.__sameDocument") is True


def test_instrument_chart_draws_daily_bars_and_the_live_price_matches_rest(
    page: Any, product: ProductServer
) -> None:
    product.manage(
        "shell",
        "-c",
        "import datetime as dt\n"
        "from prices.models import DailyPrice\n"
        "day = dt.date.today() - dt.timedelta(days=60)\n"
        "price = 60000\n"
        "while day <= dt.date.today():\n"
        "    if day.weekday() < 5:\n"
        "        DailyPrice.objects.update_or_create(ticker='000660', date=day, defaults=dict(open=price,"
        " high=price + 900, low=price - 700, close=price + 300, volume=1000000, source='csv'))\n"
        "        price += 150\n"
        "    day += dt.timedelta(days=1)\n",
    )
    login(page, product)
    page.goto(product.base_url + "/instruments/000660/")
    page.wait_for_function("() => Number(document.getElementById('chart').dataset.bars) > 10")
    sizes = page.evaluate(
        "() => Array.from(document.querySelectorAll('#chart canvas')).map(c => [c.width, c.height])"
    )
    assert sizes and all(w > 0 and h > 0 for w, h in sizes)
    # Something was painted: the candle canvas is not blank.
    painted = page.evaluate(
        "() => Array.from(document.querySelectorAll('#chart canvas')).some(c => {"
        " const ctx = c.getContext('2d'); if (!ctx) return false;"
        " const d = ctx.getImageData(0, 0, c.width, c.height).data;"
        " for (let i = 0; i < d.length; i += 4) { if (d[i+3] && (d[i] < 200 || d[i+2] < 200)) return true; }"
        " return false; })"
    )
    assert painted
    if not product.distributed:
        return  # no second process can publish a live price in embedded mode
    wait_connected(page)
    product.publish_price("000660", "71200")
    page.wait_for_function("() => document.getElementById('last-price').dataset.raw === '71200'")
    shown = page.locator("#last-price").get_attribute("data-raw")
    rest = get_json(product.base_url + "/api/prices/000660")
    assert shown == str(rest["price"])


def test_dashboard_answers_the_server_heartbeat(page: Any, product: ProductServer) -> None:
    """The server closes a client that misses 2 pongs; one that answers stays on its first socket."""
    login(page, product)
    wait_connected(page)
    page.wait_for_timeout(PING_SECONDS * 3.5 * 1000)
    assert page.evaluate("QT.live.connects") == 1
    assert page.locator("#conn").get_attribute("data-state") == "connected"


def test_dashboard_reconnects_by_itself_after_a_server_restart(page: Any, product: ProductServer) -> None:
    login(page, product)
    wait_connected(page)
    page.evaluate("window.__sameDocument = true")
    product.stop_server()
    page.wait_for_selector("#conn:is([data-state=reconnecting], [data-state=offline])", timeout=15_000)
    product.start()
    page.wait_for_selector("#conn[data-state=connected]", timeout=40_000)
    assert page.evaluate("QT.live.connects") == 2
    if not product.distributed:
        return  # prices flowing again needs a second publisher (REDIS_URL)
    product.publish_price("NASD:AAPL", "201.25")
    page.wait_for_function(
        "() => document.querySelector('#watchlist tr[data-instrument=\"NASD:AAPL\"] .price').dataset.raw === '201.25'"
    )
    assert price_cell(page, "NASD:AAPL").inner_text() == "201.25"
    assert page.evaluate("window.__sameDocument") is True


def test_pages_render_in_english_after_the_language_switch(page: Any, product: ProductServer) -> None:
    login(page, product)
    page.select_option("select[name=language]", "en")
    page.wait_for_load_state("load")
    page.wait_for_function("() => document.documentElement.lang === 'en'")
    assert page.locator("h1").inner_text() == "Live prices"
    page.goto(product.base_url + "/strategies/")
    assert re.search(r"demo_spot", page.content())
    page.get_by_role("link", name="demo_spot", exact=True).click()
    assert page.locator("#sample-tradingview").inner_text().count("{{strategy.order.action}}") == 1


def test_watchlist_additions_and_removals_are_kept_in_the_browser(page: Any, product: ProductServer) -> None:
    login(page, product)
    page.fill("#watch-input", "nasd:amzn")
    page.click("#watch-add button[type=submit]")
    page.locator('#watchlist tr[data-instrument="NASD:AMZN"] a').wait_for()
    page.click('#watchlist tr[data-instrument="000660"] button')
    page.reload()
    instruments = page.eval_on_selector_all(
        "#watchlist tbody tr", "rows => rows.map(r => r.dataset.instrument)"
    )
    assert "NASD:AMZN" in instruments and "000660" not in instruments
    assert (
        page.get_attribute('#watchlist tr[data-instrument="NASD:AMZN"] a', "href")
        == "/instruments/NASD:AMZN/"
    )
    page.click("#watch-reset")
    instruments = page.eval_on_selector_all(
        "#watchlist tbody tr", "rows => rows.map(r => r.dataset.instrument)"
    )
    assert "NASD:AMZN" not in instruments and "000660" in instruments


def test_dashboard_marks_a_stale_daily_close_fallback(page: Any, product: ProductServer) -> None:
    """No live tick and a last bar weeks old: the row shows the close with both badges."""
    product.manage(
        "shell",
        "-c",
        "import datetime as dt\n"
        "from prices.models import DailyPrice\n"
        "day = dt.date.today() - dt.timedelta(days=40)\n"
        "DailyPrice.objects.update_or_create(ticker='035420', date=day, defaults=dict(open=180000,"
        " high=182000, low=179000, close=181500, volume=500000, source='csv'))\n",
    )
    login(page, product)
    row = page.locator('#watchlist tr[data-instrument="035420"]')
    page.wait_for_function(
        "() => document.querySelector('#watchlist tr[data-instrument=\"035420\"]').dataset.source === 'daily_close'"
    )
    assert row.locator(".price").inner_text() == "181,500"
    assert row.get_attribute("data-stale") == "1"
    assert row.locator(".source .badge-daily_close").inner_text() == "일봉 종가"
    assert row.locator(".source .badge-stale").inner_text() == "지연"


def test_the_test_signal_dialog_shows_what_goes_where_and_only_its_own_button_sends(
    page: Any, product: ProductServer
) -> None:
    login(page, product)
    spot = next(s for s in product.seed["strategies"] if s["group_name"] == "demo_spot")
    page.goto(product.base_url + "/strategies/")
    page.get_by_role("link", name="demo_spot", exact=True).click()
    sent: list[str] = []
    page.on(
        "request", lambda r: sent.append(r.url) if r.method == "POST" and "test-signal" in r.url else None
    )

    page.click("#test-signal")  # opens the dialog; sends nothing
    dialog = page.locator("#test-signal-dialog")
    assert dialog.is_visible()
    text = dialog.inner_text()
    assert "BTC/USDT" in text and spot["token"] not in text  # the body, token hidden
    assert "demo_spot-paper" in text or "paper" in text.lower()  # where it goes, paper or live
    page.click("#test-signal-dialog [data-close]")
    assert not dialog.is_visible()
    page.wait_for_timeout(300)
    assert sent == []  # cancelled: nothing was posted

    page.click("#test-signal")
    with page.expect_navigation():
        page.click("#test-signal-dialog .confirm-send")
    assert len(sent) == 1
    assert "HTTP 202" in page.content()


def test_the_connection_badge_follows_the_socket_back_to_connected(page: Any, product: ProductServer) -> None:
    login(page, product)
    wait_connected(page)

    page.evaluate(
        """() => {
            window.__states = [];
            const conn = document.getElementById('conn');
            new MutationObserver(() => window.__states.push(conn.dataset.state))
                .observe(conn, { attributes: true, attributeFilter: ['data-state'] });
            window.dispatchEvent(new Event('offline'));  // the browser says it is offline
        }"""
    )

    # The socket never dropped: the next tick (the simulated feed, or a ping) sets it straight.
    page.wait_for_function(
        "() => window.__states.includes('offline') && window.__states.at(-1) === 'connected'", timeout=15_000
    )
