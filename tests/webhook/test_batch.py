"""Batch orders (SPEC §2.4): priority order, all-or-nothing validation, positions in errors."""

from __future__ import annotations

import json
from typing import Any

import pytest
from django.test import Client

from orders.models import Order

pytestmark = pytest.mark.django_db


def batch(orders: list[Any], **top: Any) -> dict[str, Any]:
    body = {
        "group_name": "my_strategy",
        "token": "test-token",
        "symbol": "BTC/USDT",
        "currency": "USDT",
        "orders": orders,
    }
    body.update(top)
    return body


def post(client: Client, body: Any) -> Any:
    return client.post("/api/webhook", data=json.dumps(body), content_type="application/json")


def test_mixed_batch_runs_in_priority_order(client: Client, make_strategy: Any) -> None:
    make_strategy()
    response = post(
        client,
        batch(
            [
                {"side": "buy", "order_type": "LIMIT", "price": "105000", "qty_per": 10},
                {"side": "buy", "order_type": "MARKET", "qty_per": 5},
                {"order_type": "CANCEL_ALL_ORDER"},
                {
                    "side": "sell",
                    "order_type": "STOP_LIMIT",
                    "price": "94000",
                    "stop_price": "95000",
                    "qty_per": 10,
                },
            ]
        ),
    )
    assert response.status_code == 202, response.json()
    assert [o["order_type"] for o in response.json()["orders"]] == [
        "MARKET",
        "CANCEL_ALL_ORDER",
        "LIMIT",
        "STOP_LIMIT",
    ]
    rows = list(Order.objects.order_by("sequence").values_list("sequence", "order_type", "batch_index"))
    assert rows == [(0, "MARKET", 2), (1, "CANCEL_ALL_ORDER", 3), (2, "LIMIT", 1), (3, "STOP_LIMIT", 4)]


def test_every_priority_class_sorts_and_ties_keep_sent_order(client: Client, make_strategy: Any) -> None:
    make_strategy(market_type="DOMESTIC_STOCK")
    orders = [
        {"side": "buy", "order_type": "CONDITIONAL_LIMIT", "price": "72000", "qty_per": 1},
        {"side": "sell", "order_type": "STOP_LIMIT", "price": "69000", "stop_price": "69500", "qty_per": 1},
        {"side": "sell", "order_type": "STOP_MARKET", "stop_price": "69000", "qty_per": 1},
        {"side": "buy", "order_type": "AFTER_MARKET", "qty_per": 1},
        {"side": "buy", "order_type": "LIMIT", "price": "70000", "qty_per": 1},
        {"side": "buy", "order_type": "BEST_LIMIT", "qty_per": 1},
        {"order_type": "CANCEL_ALL_ORDER"},
        {"side": "buy", "order_type": "PRE_MARKET", "qty_per": 1},
        {"side": "buy", "order_type": "MARKET", "qty_per": 1},
    ]
    response = post(client, batch(orders, symbol="005930", currency=None))
    assert response.status_code == 202, response.json()
    assert [o["order_type"] for o in response.json()["orders"]] == [
        "MARKET",
        "CANCEL_ALL_ORDER",
        "AFTER_MARKET",
        "LIMIT",
        "BEST_LIMIT",
        "PRE_MARKET",
        "STOP_MARKET",
        "STOP_LIMIT",
        "CONDITIONAL_LIMIT",
    ]


def test_batch_fans_out_per_account_each_in_priority_order(
    client: Client, make_strategy: Any, make_account: Any
) -> None:
    make_strategy(accounts=[make_account("b"), make_account("a")])
    response = post(
        client,
        batch(
            [
                {"side": "buy", "order_type": "LIMIT", "price": "1", "qty_per": 1},
                {"side": "buy", "order_type": "MARKET", "qty_per": 1},
            ]
        ),
    )
    assert [(o["account"], o["order_type"]) for o in response.json()["orders"]] == [
        ("a", "MARKET"),
        ("a", "LIMIT"),
        ("b", "MARKET"),
        ("b", "LIMIT"),
    ]


def test_one_invalid_order_rejects_the_whole_batch_naming_its_position(
    client: Client, make_strategy: Any
) -> None:
    make_strategy()
    response = post(
        client,
        batch(
            [
                {"order_type": "CANCEL_ALL_ORDER"},
                {"side": "buy", "order_type": "LIMIT", "qty_per": 5},
            ]
        ),
    )
    assert response.status_code == 400
    assert response.json() == {
        "error": "배치 주문 2번째 주문: LIMIT 주문에는 price가 필수입니다",
        "status": 400,
        "code": "price_required",
    }
    assert Order.objects.count() == 0


def test_per_order_symbol_is_the_deprecated_format(client: Client, make_strategy: Any) -> None:
    make_strategy()
    response = post(
        client,
        batch(
            [
                {"side": "buy", "order_type": "MARKET", "qty_per": 1},
                {"symbol": "ETHUSDT", "side": "buy", "order_type": "MARKET", "qty_per": 1},
            ]
        ),
    )
    body = response.json()
    assert response.status_code == 400 and body["code"] == "deprecated_fields"
    assert body["error"].startswith("배치 주문 2번째 주문:")


def test_batch_limits(client: Client, make_strategy: Any) -> None:
    make_strategy()
    too_many = [{"side": "buy", "order_type": "MARKET", "qty_per": 1}] * 51
    assert post(client, batch(too_many)).json()["code"] == "invalid_field"
    assert post(client, batch([])).json()["code"] == "invalid_field"
    assert post(client, batch("x")).json()["code"] == "invalid_field"
    assert post(client, batch([1])).json()["error"].startswith("배치 주문 1번째 주문:")
    assert post(client, batch([{"side": "buy", "qty_per": 1}])).json()["code"] == "missing_field"
    fifty = [{"side": "buy", "order_type": "LIMIT", "price": str(100 + i), "qty_per": 1} for i in range(50)]
    assert post(client, batch(fifty)).status_code == 202


def test_batch_without_symbol_needs_it_unless_all_cancels(client: Client, make_strategy: Any) -> None:
    make_strategy()
    response = post(client, batch([{"side": "buy", "order_type": "MARKET", "qty_per": 1}], symbol=None))
    assert response.json()["code"] == "missing_field" and "symbol" in response.json()["error"]
    response = post(client, batch([{"order_type": "CANCEL_ALL_ORDER"}], symbol=None))
    assert response.status_code == 202


def test_batch_error_in_symbol_is_top_level(client: Client, make_strategy: Any) -> None:
    make_strategy()
    response = post(
        client,
        batch([{"side": "buy", "order_type": "MARKET", "qty_per": 1}], symbol="ETHUSDT", currency=None),
    )
    assert (
        response.json()["error"]
        == "잘못된 심볼 포맷입니다: 'ETHUSDT'. 올바른 형식: 'ETH/USDT' (COIN/CURRENCY 형식 사용)"
    )


def test_batch_warnings_name_the_position(client: Client, make_strategy: Any) -> None:
    make_strategy()
    response = post(
        client,
        batch(
            [
                {"order_type": "CANCEL_ALL_ORDER"},
                {"side": "buy", "order_type": "MARKET", "qty_per": 1, "price": "1"},
            ]
        ),
    )
    assert "배치 주문 2번째 주문: MARKET 주문에서 price는 무시됩니다" in response.json()["warnings"]


def test_ladder_example_from_the_guide(client: Client, make_strategy: Any) -> None:
    make_strategy()
    ladder = [{"order_type": "CANCEL_ALL_ORDER"}] + [
        {"side": side, "order_type": "LIMIT", "price": str(p), "qty_per": 5}
        for side, p in [
            ("buy", 105000),
            ("buy", 104000),
            ("buy", 103000),
            ("buy", 102000),
            ("sell", 108000),
            ("sell", 109000),
            ("sell", 110000),
            ("sell", 111000),
        ]
    ]
    response = post(client, batch(ladder))
    assert response.status_code == 202
    assert [o["order_type"] for o in response.json()["orders"]] == ["CANCEL_ALL_ORDER"] + ["LIMIT"] * 8
    assert [
        str(p)
        for p in Order.objects.filter(order_type="LIMIT").order_by("sequence").values_list("price", flat=True)
    ] == [
        "105000.0000000000",
        "104000.0000000000",
        "103000.0000000000",
        "102000.0000000000",
        "108000.0000000000",
        "109000.0000000000",
        "110000.0000000000",
        "111000.0000000000",
    ]
