"""Webhook intake: the contract of SPEC §2 as a sender sees it (HTTP status, body, rows)."""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any

import pytest
from django.test import Client

from orders.models import Order
from webhooks.models import WebhookEvent

pytestmark = pytest.mark.django_db

URL = "/api/webhook"


def post(client: Client, body: Any, *, content_type: str = "application/json", **headers: str) -> Any:
    data = body if isinstance(body, str | bytes) else json.dumps(body)
    return client.post(URL, data=data, content_type=content_type, headers=headers)


def spot(**fields: Any) -> dict[str, Any]:
    body = {
        "group_name": "my_strategy",
        "token": "test-token",
        "currency": "USDT",
        "symbol": "BTC/USDT",
        "order_type": "MARKET",
        "side": "buy",
        "qty_per": 10,
    }
    body.update(fields)
    return {k: v for k, v in body.items() if v is not None}


def assert_error(response: Any, status: int, code: str, message: str | None = None) -> dict[str, Any]:
    body = response.json()
    assert response.status_code == status, body
    assert body["status"] == status and body["code"] == code, body
    assert set(body) == {"error", "status", "code"}
    if message is not None:
        assert body["error"] == message
    return body


@pytest.fixture
def strategy(make_strategy: Any) -> Any:
    return make_strategy()


def test_market_buy_is_accepted_with_one_queued_order_per_account(
    client: Client, make_strategy: Any, make_account: Any
) -> None:
    make_strategy(accounts=[make_account("a1"), make_account("a2")])
    response = post(client, spot())
    body = response.json()
    assert response.status_code == 202, body
    assert body["success"] is True and body["status"] == "queued" and body["strategy"] == "my_strategy"
    assert [
        (o["account"], o["exchange"], o["symbol"], o["side"], o["order_type"], o["status"])
        for o in body["orders"]
    ] == [
        ("a1", "PAPER", "BTC/USDT", "BUY", "MARKET", "queued"),
        ("a2", "PAPER", "BTC/USDT", "BUY", "MARKET", "queued"),
    ]
    orders = Order.objects.filter(webhook_id=body["webhook_id"])
    assert orders.count() == 2
    order = orders.get(account__name="a1")
    assert (
        order.qty_per == Decimal("10")
        and order.currency == "USDT"
        and order.client_order_id == "qt" + order.id.hex
    )


def test_text_plain_body_is_parsed_as_json(client: Client, strategy: Any) -> None:
    response = post(client, json.dumps(spot()), content_type="text/plain; charset=utf-8")
    assert response.status_code == 202


def test_trailing_slash_is_accepted(client: Client, strategy: Any) -> None:
    response = client.post(URL + "/", data=json.dumps(spot()), content_type="application/json")
    assert response.status_code == 202


@pytest.mark.parametrize("body", ["not json", "[1, 2]", '"text"', "", "{", b"\xff\xfe"])
def test_body_that_is_not_a_json_object_is_invalid_json(client: Client, body: str) -> None:
    assert_error(post(client, body), 400, "invalid_json", "요청 본문이 올바른 JSON 객체가 아닙니다")


def test_body_over_64_kib_is_413(client: Client, strategy: Any) -> None:
    response = post(client, spot(padding="x" * (65 * 1024)))
    assert_error(response, 413, "payload_too_large")


def test_missing_token(client: Client, strategy: Any) -> None:
    assert_error(post(client, spot(token=None)), 400, "token_missing", "웹훅 토큰이 필요합니다")


def test_unknown_strategy(client: Client) -> None:
    body = spot(group_name="unknown_strategy")
    assert_error(post(client, body), 404, "strategy_not_found", "전략을 찾을 수 없습니다: unknown_strategy")


def test_wrong_token(client: Client, strategy: Any) -> None:
    assert_error(post(client, spot(token="nope")), 401, "token_invalid", "웹훅 토큰이 유효하지 않습니다")


def test_non_string_token_is_invalid_not_a_crash(client: Client, strategy: Any) -> None:
    assert_error(post(client, spot(token=12345)), 401, "token_invalid")


def test_inactive_strategy(client: Client, make_strategy: Any) -> None:
    make_strategy(is_active=False)
    assert_error(post(client, spot()), 403, "strategy_inactive")


def test_deprecated_fields_are_named_in_the_fixed_order(client: Client, strategy: Any) -> None:
    response = post(client, spot(platform="x", exchange="BINANCE", market_type="SPOT"))
    assert_error(
        response,
        400,
        "deprecated_fields",
        "웹훅 메시지에 더 이상 사용되지 않는 필드가 포함되어 있습니다: market_type, exchange, platform. "
        "해당 필드들을 제거하세요. market_type은 전략 설정에서, exchange는 연동된 계좌에서 자동으로 결정됩니다.",
    )


def test_checks_run_in_spec_order(client: Client, make_strategy: Any) -> None:
    """Token is checked before deprecated fields, which are checked before the symbol."""
    make_strategy()
    assert post(client, spot(token="bad", exchange="X", symbol="BTCUSDT")).json()["code"] == "token_invalid"
    assert post(client, spot(exchange="X", symbol="BTCUSDT")).json()["code"] == "deprecated_fields"
    assert post(client, spot(symbol="BTCUSDT", side="sideways")).json()["code"] in {
        "invalid_symbol",
        "invalid_field",
    }


@pytest.mark.parametrize(
    ("symbol", "suggestion"),
    [
        ("BTCUSDT", "BTC/USDT"),
        ("KRW-BTC", "BTC/KRW"),
        ("ETH-USDT", "ETH/USDT"),
        ("SOL_USDT", "SOL/USDT"),
        ("BTC/USDT:USDT", "BTC/USDT"),
    ],
)
def test_crypto_symbol_errors_suggest_the_unified_form(
    client: Client, strategy: Any, symbol: str, suggestion: str
) -> None:
    body = spot(symbol=symbol, currency=None)
    assert_error(
        post(client, body),
        400,
        "invalid_symbol",
        f"잘못된 심볼 포맷입니다: '{symbol}'. 올바른 형식: '{suggestion}' (COIN/CURRENCY 형식 사용)",
    )


def test_crypto_symbol_without_any_suggestion(client: Client, strategy: Any) -> None:
    body = assert_error(post(client, spot(symbol="BTC", currency=None)), 400, "invalid_symbol")
    assert "BTC/USDT" in body["error"]


def test_lowercase_crypto_symbol_is_normalized(client: Client, strategy: Any) -> None:
    response = post(client, spot(symbol="eth/usdt"))
    assert response.status_code == 202
    assert response.json()["orders"][0]["symbol"] == "ETH/USDT"


def test_currency_must_match_the_symbol_quote(client: Client, strategy: Any) -> None:
    assert_error(post(client, spot(currency="KRW")), 400, "invalid_field")


@pytest.mark.parametrize(
    ("market_type", "symbol", "label"),
    [
        ("DOMESTIC_STOCK", "'; DROP TABLE--", "국내주식"),
        ("OVERSEAS_STOCK", "<script>", "해외주식"),
        ("DOMESTIC_FUTUREOPTION", "A" * 31, "국내선물옵션"),
        ("OVERSEAS_FUTUREOPTION", "ES Z4", "해외선물옵션"),
    ],
)
def test_security_symbols_are_checked_for_safety(
    client: Client, make_strategy: Any, market_type: str, symbol: str, label: str
) -> None:
    make_strategy(market_type=market_type)
    body = assert_error(post(client, spot(symbol=symbol, currency=None, qty_per=1)), 400, "invalid_symbol")
    assert body["error"].startswith(f"{label} 심볼 형식이 올바르지 않습니다")
    assert "영문, 숫자, 마침표(.), 하이픈(-), 언더스코어(_)만 사용 가능합니다." in body["error"]


def test_domestic_stock_symbol_message_matches_the_guide(client: Client, make_strategy: Any) -> None:
    make_strategy(market_type="DOMESTIC_STOCK")
    assert_error(
        post(client, spot(symbol="00 5930", currency=None, qty_per=1)),
        400,
        "invalid_symbol",
        "국내주식 심볼 형식이 올바르지 않습니다 (예: 005930, KR005930, 123456A). "
        "영문, 숫자, 마침표(.), 하이픈(-), 언더스코어(_)만 사용 가능합니다.",
    )


@pytest.mark.parametrize(
    "symbol",
    [
        "005930",
        "KR005930",
        "123456A",
        "Q500001",
        "AAPL",
        "BRK.B",
        "9988",
        "101TC000",
        "201PC260",
        "ESZ4",
        "NQH5",
        "CL-DEC24",
        "6E_Z4",
    ],
)
def test_security_symbol_forms_are_accepted(client: Client, make_strategy: Any, symbol: str) -> None:
    make_strategy(market_type="OVERSEAS_STOCK")
    assert post(client, spot(symbol=symbol, currency=None, qty_per=1)).status_code == 202


@pytest.mark.parametrize(
    ("order_type", "missing", "code"),
    [
        ("LIMIT", "price", "price_required"),
        ("STOP_LIMIT", "stop_price", "stop_price_required"),
        ("STOP_MARKET", "stop_price", "stop_price_required"),
    ],
)
def test_required_prices(client: Client, strategy: Any, order_type: str, missing: str, code: str) -> None:
    body = spot(
        order_type=order_type,
        price="90000" if missing != "price" else None,
        stop_price="95000" if missing != "stop_price" else None,
    )
    assert_error(post(client, body), 400, code, f"{order_type} 주문에는 {missing}가 필수입니다")


def test_market_order_price_is_ignored_with_the_guides_warning(client: Client, strategy: Any) -> None:
    response = post(client, spot(price="90000"))
    assert response.status_code == 202
    assert "MARKET 주문에서 price는 무시됩니다" in response.json()["warnings"]
    assert Order.objects.get().price is None


@pytest.mark.parametrize("order_type", ["CONDITIONAL_LIMIT", "BEST_LIMIT", "PRE_MARKET", "AFTER_MARKET"])
def test_domestic_only_order_types_are_refused_elsewhere(
    client: Client, strategy: Any, order_type: str
) -> None:
    body = assert_error(post(client, spot(order_type=order_type, price="1")), 400, "unsupported_order_type")
    assert order_type in body["error"] and "SPOT" in body["error"]


def test_unknown_order_type(client: Client, strategy: Any) -> None:
    assert_error(post(client, spot(order_type="ICEBERG")), 400, "unsupported_order_type")


@pytest.mark.parametrize(
    "side,expected", [("BUY", "BUY"), ("sell", "SELL"), ("long", "BUY"), ("Short", "SELL")]
)
def test_side_aliases(client: Client, strategy: Any, side: str, expected: str) -> None:
    assert post(client, spot(side=side)).json()["orders"][0]["side"] == expected


@pytest.mark.parametrize(
    "field,value",
    [
        ("side", "sideways"),
        ("side", 1),
        ("qty_per", "ten"),
        ("qty_per", True),
        ("qty_per", 0),
        ("qty_per", 150),
        ("qty_per", -101),
        ("qty_per", -0.5),
        ("qty_per", "NaN"),
        ("qty_per", "Infinity"),
        ("price", -5),
        ("price", 0),
        ("params", [1]),
        ("params", {"position_action": "HOLD"}),
    ],
)
def test_invalid_field_values(client: Client, strategy: Any, field: str, value: Any) -> None:
    body = spot(order_type="LIMIT", price="90000")
    body[field] = value
    body = assert_error(post(client, body), 400, "invalid_field")
    assert field.split(".")[0] in body["error"] or "side" in body["error"]


def test_json_nan_literal_is_rejected_naming_the_field(client: Client, strategy: Any) -> None:
    raw = json.dumps(spot(order_type="LIMIT")).replace("}", ', "price": NaN}')
    body = assert_error(post(client, raw), 400, "invalid_field")
    assert "price" in body["error"]


@pytest.mark.parametrize("field", ["group_name", "symbol", "side", "order_type", "qty_per"])
def test_missing_required_fields(client: Client, strategy: Any, field: str) -> None:
    body = spot()
    body.pop(field)
    if field == "group_name":
        assert_error(post(client, body), 400, "missing_field")
        return
    response = assert_error(post(client, body), 400, "missing_field")
    assert field in response["error"]


def test_numbers_as_strings_become_exact_decimals(client: Client, strategy: Any) -> None:
    post(client, spot(order_type="LIMIT", price="130000.10", qty_per="12.5"))
    order = Order.objects.get()
    assert order.price == Decimal("130000.10") and order.qty_per == Decimal("12.5")


def test_json_float_is_parsed_without_binary_rounding(client: Client, strategy: Any) -> None:
    post(
        client,
        '{"group_name":"my_strategy","token":"test-token","symbol":"BTC/USDT","order_type":"LIMIT",'
        '"side":"buy","qty_per":10,"price":0.1}',
    )
    assert Order.objects.get().price == Decimal("0.1")


def test_domestic_stock_quantity_must_be_whole(client: Client, make_strategy: Any) -> None:
    make_strategy(market_type="DOMESTIC_STOCK")
    assert_error(post(client, spot(symbol="005930", currency=None, qty_per="1.5")), 400, "invalid_field")
    assert post(client, spot(symbol="005930", currency=None, qty_per=100)).status_code == 202


def test_unknown_fields_are_ignored_and_named(client: Client, strategy: Any) -> None:
    response = post(client, spot(comment="hi", leverage=5))
    assert response.status_code == 202
    assert "알 수 없는 필드는 무시되었습니다: comment, leverage" in response.json()["warnings"]


def test_no_active_accounts(client: Client, make_strategy: Any, make_account: Any) -> None:
    inactive = make_account("off", is_active=False)
    make_strategy(accounts=[inactive])
    assert_error(post(client, spot()), 400, "no_accounts", "전략에 연동된 계좌가 없습니다")


def test_cancel_all_without_symbol_targets_every_symbol(client: Client, strategy: Any) -> None:
    response = post(
        client, {"group_name": "my_strategy", "token": "test-token", "order_type": "CANCEL_ALL_ORDER"}
    )
    assert response.status_code == 202, response.json()
    order = Order.objects.get()
    assert order.order_type == "CANCEL_ALL_ORDER" and order.symbol == "" and order.side == ""


def test_english_messages_with_accept_language(client: Client, strategy: Any) -> None:
    response = client.post(
        URL, data=json.dumps(spot(token="bad")), content_type="application/json", HTTP_ACCEPT_LANGUAGE="en"
    )
    assert_error(response, 401, "token_invalid", "The webhook token is invalid")


def test_rejections_are_logged_as_events_with_the_token_redacted(client: Client, strategy: Any) -> None:
    post(client, spot(symbol="BTCUSDT", currency=None))
    event = WebhookEvent.objects.get()
    assert event.outcome == "rejected" and event.error_code == "invalid_symbol" and event.http_status == 400
    assert event.payload["token"] == "***" and "test-token" not in json.dumps(event.payload)


def test_accepted_event_stores_the_response_and_redacted_payload(client: Client, strategy: Any) -> None:
    body = post(client, spot()).json()
    event = WebhookEvent.objects.get(pk=body["webhook_id"])
    assert event.outcome == "accepted" and event.response == body and event.payload["token"] == "***"


def test_token_never_reaches_the_log_file(client: Client, strategy: Any, caplog: Any) -> None:
    caplog.set_level("INFO", logger="quanttrade")
    post(client, spot(token="test-token"))
    post(client, spot(token="test-token", symbol="BTCUSDT", currency=None))
    text = "\n".join(record.getMessage() for record in caplog.records)
    assert "웹훅 수신" in text and "웹훅 처리 실패" in text
    assert "test-token" not in text


def test_webhook_lines_reach_the_rotating_log_file(client: Client, strategy: Any, settings: Any) -> None:
    import logging

    post(client, spot(symbol="BTCUSDT", currency=None, comment="file-log-probe"))
    for handler in logging.getLogger("quanttrade").handlers:
        handler.flush()
    # The file is shared by the suite's processes and rotates at 10 MiB: another process's lines
    # may rotate it between this write and the read, so the newest backup is read too.
    files = sorted(settings.LOG_DIR.glob("app.log*"), key=lambda path: path.stat().st_mtime)
    text = "\n".join(path.read_text(encoding="utf-8", errors="replace") for path in files)
    line = [line for line in text.splitlines() if "file-log-probe" in line][-1]  # this run's
    # One line a webhook, with its outcome: the refusal says what came.
    assert "[ERROR] 웹훅 처리 실패: [invalid_symbol]" in line and "— 수신: {" in line
    assert "test-token" not in line


def test_nul_characters_are_refused_not_stored(client: Client, strategy: Any) -> None:
    body = assert_error(post(client, spot(comment="a\u0000b")), 400, "invalid_json")
    assert "NUL" in body["error"]
    assert_error(post(client, b'{"group_name": "my\x00", '), 400, "invalid_json")
    assert WebhookEvent.objects.filter(outcome="rejected").count() == 2


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("key", [None, "k-1"])
def test_an_accepted_webhook_is_written_all_at_once(
    client: Client, make_strategy: Any, make_account: Any, key: str | None
) -> None:
    """The event and its orders are written together: on PostgreSQL by one statement outside
    any transaction (one round trip); on SQLite, and with an idempotency key (whose unique row
    decides between concurrent twins) on either, by one transaction."""
    from django.db import connection

    make_strategy(accounts=[make_account("a1"), make_account("a2")])
    writes: list[tuple[str, bool]] = []

    def watch(execute: Any, sql: str, params: Any, many: bool, context: Any) -> Any:
        if sql.startswith(("INSERT", "WITH")):
            writes.append((sql.split(" (")[0], connection.get_autocommit()))
            if sql.startswith("WITH"):  # the event's INSERT inside, the orders' after it
                assert sql.index(f'INTO "{WebhookEvent._meta.db_table}"') < sql.index(
                    f'INTO "{Order._meta.db_table}"'
                )
        return execute(sql, params, many, context)

    with connection.execute_wrapper(watch):
        response = post(client, spot(idempotency_key=key))
    assert response.status_code == 202, response.json()
    event_table, order_table = f'"{WebhookEvent._meta.db_table}"', f'"{Order._meta.db_table}"'
    if connection.vendor == "postgresql" and key is None:
        assert writes == [("WITH _qt_insert_0 AS", True)]  # one statement, no transaction
    else:
        tables = [sql.removeprefix("INSERT INTO ") for sql, _ in writes]
        assert tables[0] == event_table and tables[-1] == order_table
        assert len(tables) == (3 if key else 2)  # the key's row between them
        assert not any(autocommit for _, autocommit in writes)
    event = WebhookEvent.objects.get(pk=response.json()["webhook_id"])
    assert event.outcome == "accepted" and event.idempotency_key == (key or "")
    assert Order.objects.filter(webhook=event).count() == 2
