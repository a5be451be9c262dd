"""Flatten on the venue simulators over real HTTP (issue #14): the real worker cancels every open
order and closes every position the account holds, one Order per action, each with its result."""

from __future__ import annotations

import json
from datetime import datetime
from decimal import Decimal
from typing import Any

import pytest
from django.test import Client

from orders.exchanges.kis.sessions import KST
from venuesim.binance import BinanceSim
from venuesim.kis import KisSim

D = Decimal
DAYTIME = datetime(2026, 12, 1, 10, 0, tzinfo=KST)


@pytest.fixture(autouse=True)
def _day_session(kst_clock: Any) -> None:
    kst_clock(DAYTIME)


def post(client: Client, body: dict[str, Any]) -> str:
    response = client.post("/api/webhook", data=json.dumps(body), content_type="application/json")
    assert response.status_code == 202, response.json()
    return str(response.json()["webhook_id"])


def flatten(admin_client: Client, account: Any) -> tuple[dict[str, Any], str]:
    response = admin_client.post(f"/api/accounts/{account.pk}/flatten")
    assert response.status_code == 202, response.json()
    body = response.json()
    return body, str(body["webhook_id"])


def test_flatten_on_binance_futures_cancels_the_open_orders_and_closes_the_position(
    client: Client,
    admin_client: Client,
    celery_worker: Any,
    make_strategy: Any,
    wait_orders: Any,
    binance_sim: BinanceSim,
    binance_account: Any,
) -> None:
    account = binance_account("binance")
    make_strategy(group_name="fut", market_type="FUTURES", token="tok", accounts=[account])
    signal = {"group_name": "fut", "token": "tok", "symbol": "BTC/USDT", "currency": "USDT"}
    wait_orders(webhook_id=post(client, {**signal, "order_type": "MARKET", "side": "buy", "qty_per": 10}))
    wait_orders(
        webhook_id=post(
            client, {**signal, "order_type": "LIMIT", "side": "buy", "price": "40000", "qty_per": 10}
        ),
        settled={"open"},
    )
    assert binance_sim.positions["BTCUSDT"] == D("0.02")

    body, webhook_id = flatten(admin_client, account)
    assert [(row["order_type"], row["symbol"], row["side"]) for row in body["orders"]] == [
        ("CANCEL_ALL_ORDER", "", ""),
        ("MARKET", "BTC/USDT", "SELL"),
    ]
    cancel, close = wait_orders(webhook_id=webhook_id)
    assert (cancel.status, cancel.cancelled_orders) == ("cancelled", 1)
    assert (close.status, close.filled_qty) == ("filled", D("0.02"))
    assert binance_sim.positions.get("BTCUSDT", D(0)) == 0
    assert not [o for o in binance_sim.orders if o["status"] in ("NEW", "PARTIALLY_FILLED")]
    result = admin_client.get(f"/api/webhooks/{webhook_id}").json()
    assert [(row["order_type"], row["status"]) for row in result["orders"]] == [
        ("CANCEL_ALL_ORDER", "cancelled"),
        ("MARKET", "filled"),
    ]


def test_flatten_on_kis_cancels_the_open_orders_and_sells_the_holding(
    client: Client,
    admin_client: Client,
    celery_worker: Any,
    make_strategy: Any,
    wait_orders: Any,
    kis_sim: KisSim,
    kis_account: Any,
) -> None:
    account = kis_account("kis")
    make_strategy(group_name="kr", market_type="DOMESTIC_STOCK", token="tok", accounts=[account])
    signal = {"group_name": "kr", "token": "tok", "symbol": "005930"}
    wait_orders(webhook_id=post(client, {**signal, "order_type": "MARKET", "side": "buy", "qty_per": 10}))
    wait_orders(
        webhook_id=post(
            client, {**signal, "order_type": "LIMIT", "side": "buy", "price": "60000", "qty_per": 1}
        ),
        settled={"open"},
    )
    held = kis_sim.holdings["005930"]
    assert held == D("110")  # the simulator's account starts with 100 shares

    body, webhook_id = flatten(admin_client, account)
    assert [(row["order_type"], row["symbol"], row["side"]) for row in body["orders"]] == [
        ("CANCEL_ALL_ORDER", "", ""),
        ("MARKET", "005930", "SELL"),
    ]
    cancel, close = wait_orders(webhook_id=webhook_id)
    assert (cancel.status, cancel.cancelled_orders) == ("cancelled", 1)
    # A close (qty_per -100) sells the whole holding the broker reports.
    assert (close.status, close.filled_qty) == ("filled", held)
    assert kis_sim.holdings["005930"] == 0
    # Three venue orders: the buy, the resting limit (now cancelled), the closing sell.
    assert [(o["side"], o["qty"], o["filled"], o["cancelled"]) for o in kis_sim.orders] == [
        ("BUY", D("10"), D("10"), False),
        ("BUY", D("1"), D("0"), True),
        ("SELL", held, held, False),
    ]
