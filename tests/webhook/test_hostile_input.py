"""Hostile webhook bodies get a clear 4xx and are stored safely; none reaches a 5xx (#11).

Found by fuzzing the running server: lone surrogates anywhere, nesting hundreds deep, numbers
no column can hold, over-long currencies, a forged X-Forwarded-For, a token under "Token"."""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any

import pytest
from django.test import Client

from orders.models import Order
from webhooks.models import WebhookEvent
from webhooks.services import parse_body

pytestmark = pytest.mark.django_db

ORDER = {
    "group_name": "my_strategy",
    "token": "test-token",
    "symbol": "BTC/USDT",
    "side": "buy",
    "qty_per": 10,
}


def post(body: str | dict[str, Any], **headers: str) -> Any:
    text = body if isinstance(body, str) else json.dumps(body)
    return Client().post("/api/webhook", text, content_type="application/json", **headers)


@pytest.mark.parametrize(
    "body",
    [
        '{"group_name":"my_strategy","token":"test-token","symbol":"\\ud800","order_type":"MARKET","side":"buy","qty_per":10}',
        '{"group_name":"my_strategy","token":"test-token","\\udfff":1,"symbol":"BTC/USDT","order_type":"MARKET","side":"buy","qty_per":10}',
        '{"group_name":"\\ud83d","token":"x"}',  # no valid token needed to reach it
    ],
    ids=["in-a-value", "in-a-key", "before-authentication"],
)
def test_a_lone_surrogate_is_refused_as_invalid_json_and_recorded(make_strategy: Any, body: str) -> None:
    make_strategy()
    response = post(body)

    assert (response.status_code, response.json()["code"]) == (400, "invalid_json")
    event = WebhookEvent.objects.get()
    assert (event.outcome, event.error_code) == ("rejected", "invalid_json")
    assert Order.objects.count() == 0


@pytest.mark.parametrize("depth", [9, 600])
def test_nesting_deeper_than_a_message_needs_is_refused(make_strategy: Any, depth: int) -> None:
    make_strategy()
    body = '{"group_name":"x","a":' + "[" * depth + "]" * depth + "}"

    response = post(body)

    assert (response.status_code, response.json()["code"]) == (400, "invalid_json")
    assert "nested too deeply" in response.json()["error"] or "너무 깊" in response.json()["error"]


def test_a_nested_batch_order_with_params_is_still_accepted(make_strategy: Any) -> None:
    make_strategy()
    body = {
        **{k: v for k, v in ORDER.items() if k not in ("side", "qty_per")},
        "orders": [{"order_type": "MARKET", "side": "buy", "qty_per": 10, "params": {"tags": ["a", ["b"]]}}],
    }
    assert post(body).status_code == 202


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("price", 1e25),
        ("price", "1E+400"),
        ("price", "1E+999999999"),
        ("stop_price", "1234567890123456"),
        ("qty_per", "1E+30"),
    ],
)
def test_numbers_no_column_can_hold_are_refused_before_they_are_stored(
    make_strategy: Any, field: str, value: Any
) -> None:
    make_strategy()
    body = {**ORDER, "order_type": "STOP_LIMIT", "price": "100", "stop_price": "101", field: value}

    response = post(body)

    assert (response.status_code, response.json()["code"]) == (400, "invalid_field")
    assert field in response.json()["error"]
    assert Order.objects.count() == 0


def test_fifteen_integer_digits_still_fit_and_read_back(make_strategy: Any) -> None:
    make_strategy()
    response = post({**ORDER, "order_type": "LIMIT", "price": "999999999999999.5"})
    assert response.status_code == 202
    assert Order.objects.get().price >= Decimal("999999999999999")  # SQLite keeps ~16 digits


@pytest.mark.parametrize("where", ["currency", "params"])
def test_a_currency_longer_than_an_order_stores_is_refused(make_strategy: Any, where: str) -> None:
    make_strategy(market_type="OVERSEAS_STOCK")
    body = {**ORDER, "symbol": "AAPL", "order_type": "MARKET", "qty_per": 1}
    if where == "currency":
        body["currency"] = "X" * 17
    else:
        body["params"] = {"currency": "Y" * 30}

    response = post(body)

    assert (response.status_code, response.json()["code"]) == (400, "invalid_field")


def test_unknown_field_names_are_echoed_short(make_strategy: Any) -> None:
    make_strategy()
    body = {**ORDER, "order_type": "MARKET", "k" * 30_000: 1, **{f"extra{i}": i for i in range(20)}}

    response = post(body)

    assert response.status_code == 202
    [warning] = response.json()["warnings"]
    assert len(warning) < 1000 and "k" * 41 not in warning and "(+" in warning


@pytest.mark.parametrize("key", ["Token", "TOKEN", " token"])
def test_a_token_under_any_spelling_of_token_is_redacted(make_strategy: Any, key: str) -> None:
    make_strategy()
    post({"group_name": "my_strategy", key: "secret-abc-123", "symbol": "BTC/USDT"})

    event = WebhookEvent.objects.get()
    assert "secret-abc-123" not in json.dumps(event.payload) + event.raw_body


def test_a_forged_forwarding_header_that_is_no_address_is_not_stored(make_strategy: Any) -> None:
    make_strategy()
    # What a server that believes X-Forwarded-For hands over as the peer: any text.
    response = post({**ORDER, "order_type": "MARKET"}, REMOTE_ADDR="abc")

    assert response.status_code == 202
    assert WebhookEvent.objects.get().source_ip is None


def test_fractional_numbers_in_params_are_stored_as_json(make_strategy: Any) -> None:
    """Found by the intake fuzzer: a float anywhere in params (leverage 2.5) was a 500."""
    make_strategy()
    response = post({**ORDER, "order_type": "MARKET", "params": {"leverage": 2.5, "note": {"x": 0.0}}})

    assert response.status_code == 202
    assert Order.objects.get().params == {"leverage": "2.5", "note": {"x": 0}}


@pytest.mark.parametrize(
    "literal",
    ["1E+1000000", "-1E+1000000", "1E-1000000", "1E+101", "1e-101", "1" + "0" * 101, "-1" + "0" * 101],
)
@pytest.mark.parametrize(
    "where",
    ["unknown-field", "params", "price", "before-authentication"],
)
def test_a_number_beyond_any_trading_value_is_refused_as_invalid_json(
    make_strategy: Any, literal: str, where: str
) -> None:
    """As a JSON number, not a string: 1E+1000000 overflowed Decimal arithmetic while the
    refusal was being stored (a 500, and in the spool a signal that blocked the ones behind it)."""
    make_strategy()
    fields = {
        "unknown-field": '"note":' + literal,
        "params": '"params":{"leverage":' + literal + "}",
        "price": '"order_type":"LIMIT","price":' + literal,
        "before-authentication": '"note":' + literal,
    }[where]
    token = "nope" if where == "before-authentication" else "test-token"
    head = (
        '{"group_name":"my_strategy","token":"' + token + '","symbol":"BTC/USDT","side":"buy","qty_per":10,'
    )
    body = head + fields + "}"

    response = post(body)

    assert (response.status_code, response.json()["code"]) == (400, "invalid_json")
    assert "1e100" in response.json()["error"]
    event = WebhookEvent.objects.get()
    assert (event.outcome, event.error_code) == ("rejected", "invalid_json")
    assert Order.objects.count() == 0


@pytest.mark.parametrize("literal", ["1E+100", "1e-100", "9" * 101, "0E+1000000", "0.000"])
def test_numbers_at_the_edge_of_the_range_pass_the_parse(literal: str) -> None:
    assert parse_body(('{"note":' + literal + "}").encode())["note"] == Decimal(literal)
