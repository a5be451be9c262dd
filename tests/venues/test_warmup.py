"""Warming venues before the first order: markets and tokens loaded as a worker starts."""

from __future__ import annotations

import json
from typing import Any

from django.test import Client

from orders.services import venues_warm
from quanttrade.vocabulary import OrderStatus
from tests.conftest import wait_for_orders
from venuesim.binance import BinanceSim
from venuesim.kis import KisSim


def test_warm_loads_markets_and_tokens_for_active_links_only(
    make_strategy: Any, binance_account: Any, binance_sim: BinanceSim, kis_account: Any, kis_sim: KisSim
) -> None:
    make_strategy("crypto", accounts=[binance_account("binance-a"), binance_account("binance-b")])
    make_strategy("stocks", market_type="DOMESTIC_STOCK", accounts=[kis_account()])
    make_strategy("paused", market_type="FUTURES", accounts=[binance_account("binance-c")], is_active=False)

    assert venues_warm() == 3

    # Two spot accounts on one venue: one market load; the paused futures strategy: none
    # (a futures client would load them again: markets are shared per market type).
    assert len(binance_sim.seen("/api/v3/exchangeInfo", "GET")) == 1
    assert len(kis_sim.seen("/oauth2/tokenP", "POST")) == 1


def test_a_venue_that_fails_to_warm_does_not_stop_the_others(
    make_strategy: Any, binance_account: Any, binance_sim: BinanceSim
) -> None:
    make_strategy("broken", accounts=[binance_account("binance-down", api_base_url="http://127.0.0.1:9")])
    make_strategy("working", accounts=[binance_account("binance-up")])

    assert venues_warm() == 1
    assert len(binance_sim.seen("/api/v3/exchangeInfo", "GET")) == 1


def test_an_order_after_warming_makes_no_market_request(
    celery_worker: Any, make_strategy: Any, binance_account: Any, binance_sim: BinanceSim
) -> None:
    make_strategy("warm", accounts=[binance_account()])
    venues_warm()
    before = len(binance_sim.requests)

    body = {
        "group_name": "warm",
        "token": "test-token",
        "symbol": "BTC/USDT",
        "currency": "USDT",
        "order_type": "MARKET",
        "side": "buy",
        "qty_per": 10,
    }
    response = Client().post("/api/webhook", json.dumps(body), content_type="application/json")
    assert response.status_code == 202
    (order,) = wait_for_orders(strategy__group_name="warm")

    assert order.status == OrderStatus.FILLED
    paths = [r.path for r in binance_sim.requests[before:]]
    assert "/api/v3/exchangeInfo" not in paths
    assert "/api/v3/order" in paths


def test_a_starting_worker_warms_venues_in_the_background(
    transactional_db: None,
    make_strategy: Any,
    binance_account: Any,
    binance_sim: BinanceSim,
    monkeypatch: Any,
) -> None:
    import time

    from orders.tasks import _start_venue_warmup

    make_strategy("boot", accounts=[binance_account()])
    monkeypatch.delenv("QT_SKIP_VENUE_WARMUP", raising=False)

    _start_venue_warmup()  # what worker_ready / worker_process_init call

    deadline = time.monotonic() + 10
    while not binance_sim.seen("/api/v3/exchangeInfo") and time.monotonic() < deadline:
        time.sleep(0.05)
    assert len(binance_sim.seen("/api/v3/exchangeInfo", "GET")) == 1
