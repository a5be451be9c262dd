"""Bybit through the ccxt adapter against the Bybit V5 simulator over real HTTP: V5 signing,
spot and USDT-perpetual sizing, order types, precision, minimums, cancels, lookups by
orderLinkId, error mapping and fault classes; then the same end to end through a webhook and a
real Celery worker."""

from __future__ import annotations

import hashlib
import hmac
import json
import re
import time
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
import requests
from django.test import Client

from orders.exchanges import adapter_for
from orders.exchanges.base import (
    OrderRejected,
    OrderRequest,
    OrderUncertain,
    PermanentVenueError,
    RetryableVenueError,
)
from orders.exchanges.ccxt.base import CcxtAdapter
from orders.models import Order
from quanttrade.vocabulary import OrderStatus
from tests.webhook.scenarios import CRYPTO
from venuesim.bybit import BybitSim

D = Decimal
CREATE = "/v5/order/create"
RECORDED = Path(__file__).parent / "recorded" / "bybit"


def request(cid: str = "qt-b1", market: str = "SPOT", **kw: Any) -> OrderRequest:
    fields: dict[str, Any] = {"symbol": "BTC/USDT", "side": "BUY", "order_type": "MARKET", "qty_per": D("10")}
    fields.update(kw)
    return OrderRequest(client_order_id=cid, market_type=market, **fields)


def link_id_lookups(sim: BybitSim, cid: str) -> list[str]:
    return [r.path for r in sim.requests if r.method == "GET" and r.query.get("orderLinkId") == cid]


# --- the simulator speaks Bybit V5 auth ---------------------------------------------------


def signed_get(sim: BybitSim, path: str, query: str, secret: str, timestamp: int | None = None) -> Any:
    ts, key, recv = str(timestamp or int(time.time() * 1000)), "sim-bybit-key", "5000"
    sign = hmac.new(secret.encode(), f"{ts}{key}{recv}{query}".encode(), hashlib.sha256).hexdigest()
    headers = {"X-BAPI-API-KEY": key, "X-BAPI-TIMESTAMP": ts, "X-BAPI-RECV-WINDOW": recv, "X-BAPI-SIGN": sign}
    return requests.get(f"{sim.base_url}{path}?{query}", headers=headers, timeout=5).json()


def test_simulator_checks_the_v5_signature_and_the_recv_window(bybit_sim: BybitSim) -> None:
    query = "accountType=UNIFIED"

    good = signed_get(bybit_sim, "/v5/account/wallet-balance", query, "sim-bybit-secret")
    bad = signed_get(bybit_sim, "/v5/account/wallet-balance", query, "another-secret")
    stale = signed_get(
        bybit_sim, "/v5/account/wallet-balance", query, "sim-bybit-secret", int(time.time() * 1000) - 60_000
    )

    assert good["retCode"] == 0 and good["result"]["list"][0]["accountType"] == "UNIFIED"
    assert set(good) == {"retCode", "retMsg", "result", "retExtInfo", "time"}
    assert (bad["retCode"], bad["retMsg"].startswith("error sign!")) == (10004, True)
    assert stale["retCode"] == 10002


# --- adapter against the simulator ---------------------------------------------------------


def test_registry_maps_bybit_to_its_ccxt_class_loading_spot_and_linear_only(
    bybit_account: Any, bybit_sim: BybitSim
) -> None:
    adapter = adapter_for(bybit_account())
    markets = adapter.markets()

    assert isinstance(adapter, CcxtAdapter) and adapter.display_name == "Bybit"
    assert {"BTC/USDT", "ETH/USDT", "BTC/USDT:USDT", "ETH/USDT:USDT"} <= set(markets)
    categories = {r.query["category"] for r in bybit_sim.seen("/v5/market/instruments-info")}
    assert categories == {"spot", "linear"}


def test_spot_market_buy_spends_percent_of_free_usdt_and_reads_the_fill_back(
    bybit_account: Any, bybit_sim: BybitSim
) -> None:
    result = adapter_for(bybit_account()).place_order(request(qty_per=D("10")))

    (order,) = bybit_sim.orders_for("qt-b1")
    # 10% of 10,000 USDT at 100,000 = 0.01 BTC, sent in base units
    assert (order["type"], order["side"], order["qty"], order["market_unit"]) == (
        "Market",
        "Buy",
        D("0.01"),
        "baseCoin",
    )
    assert result.status == OrderStatus.FILLED
    assert (result.filled_qty, result.avg_price, result.exchange_order_id) == (
        D("0.01"),
        D("100000"),
        order["id"],
    )
    # the create answer carries ids only: the state came from a lookup by orderLinkId
    assert link_id_lookups(bybit_sim, "qt-b1")


def test_spot_limit_sell_uses_percent_of_free_base_and_rounds_to_tick(
    bybit_account: Any, bybit_sim: BybitSim
) -> None:
    result = adapter_for(bybit_account()).place_order(
        request(side="SELL", order_type="LIMIT", qty_per=D("50"), price=D("120000.129"))
    )

    (order,) = bybit_sim.orders_for("qt-b1")
    assert (order["type"], order["qty"], order["price"], order["status"]) == (
        "Limit",
        D("0.25"),
        D("120000.13"),
        "New",
    )
    assert result.status == OrderStatus.OPEN and result.quantity == D("0.25")


@pytest.mark.parametrize(("order_type", "price"), [("STOP_MARKET", None), ("STOP_LIMIT", D("94000"))])
def test_spot_stop_orders_are_conditional_stop_orders(
    bybit_account: Any, bybit_sim: BybitSim, order_type: str, price: Decimal | None
) -> None:
    result = adapter_for(bybit_account()).place_order(
        request(side="SELL", order_type=order_type, qty_per=D("10"), price=price, stop_price=D("95000"))
    )

    (order,) = bybit_sim.orders_for("qt-b1")
    [create] = bybit_sim.seen(CREATE)
    assert json.loads(create.body)["orderFilter"] == "StopOrder"
    assert (order["conditional"], order["status"], order["trigger_price"], order["price"]) == (
        True,
        "Untriggered",
        D("95000"),
        price,
    )
    assert result.status == OrderStatus.OPEN


def test_futures_market_order_sizes_by_equity_times_leverage(bybit_account: Any, bybit_sim: BybitSim) -> None:
    result = adapter_for(bybit_account(leverage=5)).place_order(request(market="FUTURES", qty_per=D("10")))

    (order,) = bybit_sim.orders_for("qt-b1")
    # 10% of 10,000 USDT x 5 / 100,000 = 0.05 BTC
    assert (order["category"], order["qty"], order["reduce_only"]) == ("linear", D("0.05"), False)
    assert bybit_sim.leverage["BTCUSDT"] == 5
    assert bybit_sim.positions["BTCUSDT"] == D("0.05")
    assert result.status == OrderStatus.FILLED and result.avg_price == D("100000")


def test_leverage_already_set_is_not_an_error(bybit_account: Any, bybit_sim: BybitSim) -> None:
    bybit_sim.leverage["BTCUSDT"] = D("5")

    result = adapter_for(bybit_account(leverage=5)).place_order(request(market="FUTURES"))

    # asked once, was told 110043 "leverage not modified", and placed the order anyway
    [asked] = bybit_sim.seen("/v5/position/set-leverage")
    assert json.loads(asked.body)["buyLeverage"] == "5"
    assert result.status == OrderStatus.FILLED


@pytest.mark.parametrize(("side", "direction", "stop"), [("SELL", 2, D("90000.07")), ("BUY", 1, D("105000"))])
def test_futures_stop_orders_carry_the_trigger_direction(
    bybit_account: Any, bybit_sim: BybitSim, side: str, direction: int, stop: Decimal
) -> None:
    result = adapter_for(bybit_account()).place_order(
        request(market="FUTURES", side=side, order_type="STOP_MARKET", stop_price=stop)
    )

    (order,) = bybit_sim.orders_for("qt-b1")
    expected = stop.quantize(D("0.1"))  # tick 0.10
    assert (order["trigger_direction"], order["trigger_price"], order["status"]) == (
        direction,
        expected,
        "Untriggered",
    )
    assert result.status == OrderStatus.OPEN


def test_futures_close_half_of_the_long_is_reduce_only(bybit_account: Any, bybit_sim: BybitSim) -> None:
    bybit_sim.positions["BTCUSDT"] = D("0.3")

    adapter_for(bybit_account()).place_order(request(market="FUTURES", side="SELL", qty_per=D("-50")))

    (order,) = bybit_sim.orders_for("qt-b1")
    assert (order["side"], order["qty"], order["reduce_only"]) == ("Sell", D("0.15"), True)
    assert json.loads(bybit_sim.seen(CREATE)[0].body)["reduceOnly"] is True
    assert bybit_sim.positions["BTCUSDT"] == D("0.15")


def test_futures_close_all_detects_a_short(bybit_account: Any, bybit_sim: BybitSim) -> None:
    bybit_sim.positions["ETHUSDT"] = D("-0.7")

    adapter_for(bybit_account()).place_order(
        request(market="FUTURES", symbol="ETH/USDT", side="BUY", qty_per=D("-100"))
    )

    assert bybit_sim.positions["ETHUSDT"] == 0
    assert bybit_sim.orders_for("qt-b1")[0]["side"] == "Buy"


@pytest.mark.parametrize(
    ("side", "message"), [("SELL", "청산할 롱 포지션이 없습니다"), ("BUY", "청산할 숏 포지션이 없습니다")]
)
def test_futures_close_without_position_is_rejected_before_sending(
    bybit_account: Any, bybit_sim: BybitSim, side: str, message: str
) -> None:
    with pytest.raises(OrderRejected) as caught:
        adapter_for(bybit_account()).place_order(request(market="FUTURES", side=side, qty_per=D("-100")))

    assert caught.value.message == message
    assert bybit_sim.seen(CREATE) == []


@pytest.mark.parametrize(
    ("qty_per", "expected"),
    [(D("33.333"), D("0.033333")), (D("1"), D("0.001")), (D("0.123456"), D("0.000123"))],
)
def test_spot_amounts_are_truncated_to_the_base_precision(
    bybit_account: Any, bybit_sim: BybitSim, qty_per: Decimal, expected: Decimal
) -> None:
    adapter_for(bybit_account()).place_order(request(qty_per=qty_per))

    assert bybit_sim.orders_for("qt-b1")[0]["qty"] == expected


def test_futures_amounts_are_truncated_to_the_qty_step(bybit_account: Any, bybit_sim: BybitSim) -> None:
    # 33.333% of 10,000 / 3,000 = 1.1111 ETH -> qtyStep 0.01
    adapter_for(bybit_account()).place_order(
        request(market="FUTURES", symbol="ETH/USDT", side="SELL", qty_per=D("33.333"))
    )

    assert bybit_sim.orders_for("qt-b1")[0]["qty"] == D("1.11")
    assert bybit_sim.positions["ETHUSDT"] == D("-1.11")


def test_amount_below_the_minimum_quantity_is_rejected_before_sending(
    bybit_account: Any, bybit_sim: BybitSim
) -> None:
    # 0.01% of 10,000 USDT = 1 USDT -> 0.00001 BTC < minOrderQty 0.000011
    with pytest.raises(OrderRejected) as caught:
        adapter_for(bybit_account()).place_order(request(qty_per=D("0.01")))

    assert caught.value.message == "주문 수량 0.00001이(가) BTC/USDT의 최소 주문 수량 0.000011보다 작습니다"
    assert bybit_sim.seen(CREATE) == []


def test_value_below_the_minimum_order_amount_is_rejected_before_sending(
    bybit_account: Any, bybit_sim: BybitSim
) -> None:
    # 0.03% of 10,000 USDT = 3 USDT < minOrderAmt 5
    with pytest.raises(OrderRejected) as caught:
        adapter_for(bybit_account()).place_order(request(qty_per=D("0.03")))

    assert caught.value.message == "주문 금액 3이(가) BTC/USDT의 최소 주문 금액 5.0보다 작습니다"
    assert bybit_sim.seen(CREATE) == []


def test_cancel_all_for_one_spot_symbol_includes_its_stop_orders(
    bybit_account: Any, bybit_sim: BybitSim
) -> None:
    adapter = adapter_for(bybit_account())
    adapter.place_order(request("a", side="SELL", order_type="LIMIT", qty_per=D("10"), price=D("120000")))
    adapter.place_order(request("b", side="SELL", order_type="LIMIT", qty_per=D("10"), price=D("121000")))
    adapter.place_order(
        request("c", side="SELL", order_type="STOP_MARKET", qty_per=D("10"), stop_price=D("90000"))
    )
    adapter.place_order(
        request("d", symbol="ETH/USDT", side="SELL", order_type="LIMIT", qty_per=D("10"), price=D("4000"))
    )

    assert adapter.cancel_all("SPOT", "BTC/USDT") == 3
    assert [(o["link_id"], o["status"]) for o in bybit_sim.orders] == [
        ("a", "Cancelled"),
        ("b", "Cancelled"),
        ("c", "Deactivated"),
        ("d", "New"),
    ]
    filters = [json.loads(r.body).get("orderFilter") for r in bybit_sim.seen("/v5/order/cancel-all")]
    assert filters == ["Order", "StopOrder"]


def test_cancel_all_futures_symbols_includes_conditional_orders(
    bybit_account: Any, bybit_sim: BybitSim
) -> None:
    adapter = adapter_for(bybit_account())
    adapter.place_order(request("a", market="FUTURES", side="SELL", order_type="LIMIT", price=D("120000")))
    adapter.place_order(
        request("b", market="FUTURES", side="SELL", order_type="STOP_MARKET", stop_price=D("90000"))
    )
    adapter.place_order(
        request("c", market="FUTURES", symbol="ETH/USDT", side="BUY", order_type="LIMIT", price=D("2000"))
    )

    assert adapter.cancel_all("FUTURES", None) == 3
    assert {o["status"] for o in bybit_sim.orders} == {"Cancelled", "Deactivated"}


def test_cancel_all_with_nothing_open_returns_zero(bybit_account: Any, bybit_sim: BybitSim) -> None:
    assert adapter_for(bybit_account()).cancel_all("SPOT", "BTC/USDT") == 0
    assert bybit_sim.seen("/v5/order/cancel-all") == []


def test_fetch_order_by_client_id_asks_by_order_link_id(bybit_account: Any, bybit_sim: BybitSim) -> None:
    adapter = adapter_for(bybit_account())
    limit = request("qt-limit", side="SELL", order_type="LIMIT", price=D("120000"))
    stop = request("qt-stop", market="FUTURES", side="SELL", order_type="STOP_MARKET", stop_price=D("90000"))
    filled = request("qt-filled")
    for placed in (limit, stop, filled):
        adapter.place_order(placed)
    bybit_sim.requests.clear()

    found_limit = adapter.fetch_order_by_client_id(limit)
    found_stop = adapter.fetch_order_by_client_id(stop)
    found_filled = adapter.fetch_order_by_client_id(filled)

    assert found_limit is not None and (found_limit.status, found_limit.quantity) == (
        OrderStatus.OPEN,
        D("0.05"),
    )
    assert found_stop is not None and found_stop.status == OrderStatus.OPEN
    assert found_filled is not None and found_filled.status == OrderStatus.FILLED
    assert adapter.fetch_order_by_client_id(request("qt-unknown")) is None
    assert link_id_lookups(bybit_sim, "qt-filled") == ["/v5/order/realtime", "/v5/order/history"]


def test_unknown_symbol_is_rejected(bybit_account: Any) -> None:
    with pytest.raises(OrderRejected, match="Bybit API 오류: 알 수 없는 심볼입니다: DOGE/USDT"):
        adapter_for(bybit_account()).place_order(request(symbol="DOGE/USDT"))


def test_client_order_id_the_venue_refuses_is_rejected(bybit_account: Any, bybit_sim: BybitSim) -> None:
    with pytest.raises(OrderRejected, match="Bybit API 오류: params error: orderLinkId"):
        adapter_for(bybit_account()).place_order(request("x" * 37))

    assert bybit_sim.orders == []


# --- errors and faults ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("fault", "error", "message"),
    [
        ("reject", OrderRejected, "Bybit API 오류: Insufficient balance."),
        ("rate_limit", RetryableVenueError, "Bybit API 오류: Too many visits. Exceeded the API Rate Limit."),
        ("rate_limit_ip", RetryableVenueError, None),
        ("5xx", OrderUncertain, None),
        ("system_error", OrderUncertain, "Bybit API 오류: Internal system error."),
    ],
)
def test_venue_errors_map_to_product_errors(
    bybit_account: Any, bybit_sim: BybitSim, fault: str, error: type[Exception], message: str | None
) -> None:
    adapter = adapter_for(bybit_account())
    adapter.market("SPOT", "BTC/USDT")  # markets loaded: the fault hits the order request
    bybit_sim.inject(fault, CREATE, method="POST")

    with pytest.raises(error) as caught:
        adapter.place_order(request())

    assert type(caught.value) is error
    assert caught.value.message.startswith("Bybit API 오류: ")
    if message:
        assert caught.value.message == message
    assert bybit_sim.orders == []


def test_insufficient_margin_is_rejected_with_bybits_message(bybit_account: Any, bybit_sim: BybitSim) -> None:
    bybit_sim.leverage["BTCUSDT"] = D("5")
    bybit_sim.positions["BTCUSDT"] = D("0.3")  # 6,000 USDT of initial margin already used

    with pytest.raises(OrderRejected) as caught:
        adapter_for(bybit_account(leverage=5)).place_order(request(market="FUTURES", qty_per=D("100")))

    assert caught.value.message == "Bybit API 오류: ab not enough for new order"
    assert bybit_sim.orders == []


def test_a_wrong_secret_fails_the_signature_check(bybit_account: Any, bybit_sim: BybitSim) -> None:
    account = bybit_account()
    account.api_secret = "wrong-secret"
    account.save()

    with pytest.raises(PermanentVenueError) as caught:
        adapter_for(account).place_order(request())

    assert caught.value.message.startswith("Bybit API 오류: error sign! origin_string[")
    assert "wrong-secret" not in caught.value.message
    assert bybit_sim.orders == []


def test_an_unknown_api_key_is_permanent(bybit_account: Any) -> None:
    account = bybit_account()
    account.api_key = "not-a-key"
    account.save()

    with pytest.raises(PermanentVenueError) as caught:
        adapter_for(account).place_order(request())

    assert caught.value.message == "Bybit API 오류: API key is invalid."


def test_a_stale_timestamp_is_retryable(bybit_account: Any, bybit_sim: BybitSim) -> None:
    bybit_sim.clock_offset_ms = 60_000  # our clock is a minute behind the venue's

    with pytest.raises(RetryableVenueError) as caught:
        adapter_for(bybit_account()).place_order(request())

    assert caught.value.message.startswith(
        "Bybit API 오류: invalid request, please check your server timestamp or recv_window param."
    )
    assert bybit_sim.orders == []


def test_timeout_after_accepting_leaves_exactly_one_order_found_by_order_link_id(
    bybit_account: Any, bybit_sim: BybitSim
) -> None:
    adapter = adapter_for(bybit_account(timeout_seconds=0.5))
    adapter.place_order(request("warm-up", order_type="LIMIT", price=D("90000")))  # discovery done
    bybit_sim.inject("timeout", CREATE, method="POST", delay=1.0)

    with pytest.raises(OrderUncertain) as caught:
        adapter.place_order(request())
    found = adapter.fetch_order_by_client_id(request())

    assert caught.value.message.startswith("Bybit API 오류:")
    assert found is not None and found.status == OrderStatus.FILLED and found.filled_qty > 0
    assert len(bybit_sim.orders_for("qt-b1")) == 1


def test_5xx_is_uncertain_and_the_adapter_does_not_send_it_again(
    bybit_account: Any, bybit_sim: BybitSim
) -> None:
    adapter = adapter_for(bybit_account())
    adapter.market("SPOT", "BTC/USDT")
    bybit_sim.inject("5xx", CREATE, method="POST")

    with pytest.raises(OrderUncertain):
        adapter.place_order(request())

    assert bybit_sim.orders_for("qt-b1") == []
    assert len(bybit_sim.seen(CREATE)) == 1


def test_a_repeat_after_success_returns_the_existing_order(bybit_account: Any, bybit_sim: BybitSim) -> None:
    adapter = adapter_for(bybit_account())
    first = adapter.place_order(request())

    again = adapter.place_order(request())  # Bybit answers 110072 "OrderLinkedID is duplicate"

    assert again.exchange_order_id == first.exchange_order_id and again.status == OrderStatus.FILLED
    assert len(bybit_sim.orders_for("qt-b1")) == 1


# --- PartiallyFilledCanceled: Bybit's closed state that is not a fill ---------------------------


@pytest.mark.parametrize(("side", "price"), [("BUY", D("90000")), ("SELL", D("120000"))])
def test_a_spot_limit_cancelled_after_a_partial_fill_reads_cancelled_with_its_fill(
    bybit_account: Any, bybit_sim: BybitSim, side: str, price: Decimal
) -> None:
    adapter = adapter_for(bybit_account())
    limit = request("qt-part", side=side, order_type="LIMIT", qty_per=D("20"), price=price)
    placed = adapter.place_order(limit)
    bybit_sim.fill_order(placed.exchange_order_id, D("0.01"))

    resting = adapter.fetch_order_by_client_id(limit)
    cancelled = adapter.cancel_order(limit, placed.exchange_order_id)

    assert resting is not None and (resting.status, resting.filled_qty) == (
        OrderStatus.PARTIALLY_FILLED,
        D("0.01"),
    )
    # Bybit: "PartiallyFilledCanceled — only spot has this order status"; ccxt reads it closed
    ((order,),) = [bybit_sim.orders_for("qt-part")]
    assert order["status"] == "PartiallyFilledCanceled"
    assert (cancelled.status, cancelled.filled_qty, cancelled.avg_price) == (
        OrderStatus.CANCELLED,
        D("0.01"),
        price,
    )
    assert cancelled.quantity is not None and cancelled.quantity > D("0.01")


def test_a_futures_limit_cancelled_after_a_partial_fill_reads_cancelled_with_its_fill(
    bybit_account: Any, bybit_sim: BybitSim
) -> None:
    adapter = adapter_for(bybit_account())
    limit = request("qt-part", market="FUTURES", order_type="LIMIT", qty_per=D("10"), price=D("90000"))
    placed = adapter.place_order(limit)
    bybit_sim.fill_order(placed.exchange_order_id, D("0.002"))

    cancelled = adapter.cancel_order(limit, placed.exchange_order_id)

    # Bybit: derivatives end "Cancelled", which "may have an executed qty"
    ((order,),) = [bybit_sim.orders_for("qt-part")]
    assert (order["status"], order["executed"]) == ("Cancelled", D("0.002"))
    assert (cancelled.status, cancelled.filled_qty) == (OrderStatus.CANCELLED, D("0.002"))
    assert bybit_sim.positions["BTCUSDT"] == D("0.002")


def test_a_market_buy_by_quote_amount_that_returned_its_dust_reads_filled(
    bybit_account: Any, bybit_sim: BybitSim
) -> None:
    """Bybit's answer to a 10 USDT market buy at 32,635 (recorded/bybit/06_lookup_…): 0.000306
    BTC for 9.98631 USDT, the 0.01369 left returned, the order PartiallyFilledCanceled with
    rejectReason EC_CancelForNoFullFill. It spent what it could: filled, not cancelled."""
    adapter = adapter_for(bybit_account())
    bybit_sim.prices["BTCUSDT"] = D("32635")
    client, _lock = adapter._client("SPOT")
    client.create_order(
        "BTC/USDT",
        "market",
        "buy",
        0,
        None,
        {"cost": 10, "marketUnit": "quoteCoin", "orderLinkId": "qt-quote"},
    )

    found = adapter.fetch_order_by_client_id(request("qt-quote"))

    (row,) = signed_get(
        bybit_sim, "/v5/order/history", "category=spot&orderLinkId=qt-quote", "sim-bybit-secret"
    )["result"]["list"]
    recorded = json.loads((RECORDED / "06_lookup_spot_market_buy_by_quote_dust.json").read_text())["answer"]
    assert (row["orderStatus"], row["rejectReason"]) == (recorded["orderStatus"], recorded["rejectReason"])
    amounts = ("qty", "cumExecQty", "cumExecValue", "leavesValue")
    assert [D(row[f]) for f in amounts] == [D(recorded[f]) for f in amounts]
    assert found is not None and (found.status, found.filled_qty, found.avg_price) == (
        OrderStatus.FILLED,
        D("0.000306"),
        D("32635"),
    )


@pytest.mark.parametrize("side", ["BUY", "SELL"])
def test_a_spot_market_order_the_book_cut_short_reads_cancelled_with_its_fill(
    bybit_account: Any, bybit_sim: BybitSim, side: str
) -> None:
    adapter = adapter_for(bybit_account())
    bybit_sim.market_depth["BTCUSDT"] = D("0.004")

    result = adapter.place_order(request("qt-short", side=side, qty_per=D("10")))

    ((order,),) = [bybit_sim.orders_for("qt-short")]
    assert (order["status"], order["market_unit_sent"]) == ("PartiallyFilledCanceled", "baseCoin")
    # 10% of 10,000 USDT (a buy) or of 0.5 BTC (a sell) asked; 0.004 filled
    asked = D("0.01") if side == "BUY" else D("0.05")
    assert (result.status, result.filled_qty, result.quantity) == (OrderStatus.CANCELLED, D("0.004"), asked)


def test_a_market_buy_in_base_units_whose_row_names_no_unit_keeps_its_asked_quantity(
    bybit_account: Any, bybit_sim: BybitSim
) -> None:
    """ccxt reads a spot market buy whose row has no marketUnit (Bybit also answers "") as
    a quote amount (ccxt#29602). The adapter sends base units: the row is read as base."""
    adapter = adapter_for(bybit_account())
    bybit_sim.market_depth["BTCUSDT"] = D("0.004")
    adapter.place_order(request("qt-short", qty_per=D("10")))
    (row,) = signed_get(
        bybit_sim, "/v5/order/history", "category=spot&orderLinkId=qt-short", "sim-bybit-secret"
    )["result"]["list"]
    client, _lock = adapter._client("SPOT")
    market = adapter.market("SPOT", "BTC/USDT")

    for unit in ("", None):
        answer = (
            {**row, "marketUnit": unit}
            if unit is not None
            else {k: v for k, v in row.items() if k != "marketUnit"}
        )
        result = adapter._read_order(client, market, client.parse_order(answer, market), D("1"))
        assert (result.status, result.filled_qty, result.quantity) == (
            OrderStatus.CANCELLED,
            D("0.004"),
            D("0.01"),
        )


def test_a_futures_market_order_the_book_cut_short_reads_cancelled_with_its_fill(
    bybit_account: Any, bybit_sim: BybitSim
) -> None:
    adapter = adapter_for(bybit_account())
    bybit_sim.market_depth["BTCUSDT"] = D("0.004")

    result = adapter.place_order(request("qt-short", market="FUTURES", qty_per=D("10")))

    ((order,),) = [bybit_sim.orders_for("qt-short")]
    assert (order["status"], order["executed"]) == ("Cancelled", D("0.004"))
    assert (result.status, result.filled_qty) == (OrderStatus.CANCELLED, D("0.004"))
    assert bybit_sim.positions["BTCUSDT"] == D("0.004")


# --- end to end: webhook -> Celery worker -> simulator -----------------------------------------

BYBIT_SCENARIOS = [s for s in CRYPTO if not s[2].get("symbol", "").endswith("/KRW")]


def post(client: Client, body: dict[str, Any]) -> str:
    response = client.post("/api/webhook", data=json.dumps(body), content_type="application/json")
    assert response.status_code == 202, response.json()
    return str(response.json()["webhook_id"])


@pytest.mark.parametrize(
    ("market_type", "fields"), [s[1:3] for s in BYBIT_SCENARIOS], ids=[s[0] for s in BYBIT_SCENARIOS]
)
def test_seed_scenario_on_the_bybit_simulator(
    client: Client,
    celery_worker: Any,
    make_strategy: Any,
    wait_orders: Any,
    bybit_sim: BybitSim,
    bybit_account: Any,
    market_type: str,
    fields: dict[str, Any],
) -> None:
    if fields.get("qty_per") == -100:
        bybit_sim.positions["BTCUSDT"] = D("0.5")
    make_strategy(group_name="scenario", market_type=market_type, token="tok", accounts=[bybit_account()])

    webhook_id = post(client, {"group_name": "scenario", "token": "tok", **fields})

    [order] = wait_orders(webhook_id=webhook_id, timeout=20)
    order_type = fields["order_type"]
    if order_type == "CANCEL_ALL_ORDER":
        assert (order.status, order.message, order.cancelled_orders) == (
            OrderStatus.CANCELLED,
            "취소할 미체결 주문이 없습니다",
            0,
        )
        assert bybit_sim.orders == []
        return
    expected = OrderStatus.FILLED if order_type == "MARKET" else OrderStatus.OPEN
    assert order.status == expected, order.message
    [placed] = bybit_sim.orders  # exactly one order reached the venue
    assert placed["link_id"] == order.client_order_id
    assert re.fullmatch(r"[A-Za-z0-9_-]{1,36}", order.client_order_id)
    assert order.exchange_order_id == placed["id"] and order.quantity == placed["qty"]
    if expected == OrderStatus.FILLED:
        assert order.filled_qty == placed["qty"] > 0 and order.avg_price == bybit_sim.prices[placed["symbol"]]
    if fields.get("qty_per") == -100:
        assert placed["reduce_only"] and bybit_sim.positions["BTCUSDT"] == 0


def test_futures_open_with_leverage_then_close_part_through_webhooks(
    client: Client,
    celery_worker: Any,
    make_strategy: Any,
    wait_orders: Any,
    bybit_sim: BybitSim,
    bybit_account: Any,
) -> None:
    make_strategy(group_name="f", market_type="FUTURES", token="tok", accounts=[bybit_account(leverage=3)])
    base = {"group_name": "f", "token": "tok", "symbol": "BTC/USDT", "order_type": "MARKET"}

    [opened] = wait_orders(webhook_id=post(client, {**base, "side": "short", "qty_per": 20}), timeout=20)
    [closed] = wait_orders(webhook_id=post(client, {**base, "side": "buy", "qty_per": -25}), timeout=20)

    # 20% of 10,000 x 3 / 100,000 = 0.06 BTC short, then a quarter of it bought back
    assert (opened.status, opened.quantity) == (OrderStatus.FILLED, D("0.06"))
    assert (closed.status, closed.quantity) == (OrderStatus.FILLED, D("0.015"))
    assert bybit_sim.leverage["BTCUSDT"] == 3
    assert bybit_sim.positions["BTCUSDT"] == D("-0.045")
    assert [o["reduce_only"] for o in bybit_sim.orders] == [False, True]


def test_cancel_all_for_one_symbol_then_for_all_through_webhooks(
    client: Client,
    celery_worker: Any,
    make_strategy: Any,
    wait_orders: Any,
    bybit_sim: BybitSim,
    bybit_account: Any,
) -> None:
    make_strategy(group_name="c", market_type="SPOT", token="tok", accounts=[bybit_account()])
    base = {"group_name": "c", "token": "tok"}
    resting = [
        {"symbol": "BTC/USDT", "order_type": "LIMIT", "side": "sell", "price": 120000, "qty_per": 10},
        {
            "symbol": "BTC/USDT",
            "order_type": "STOP_MARKET",
            "side": "sell",
            "stop_price": 90000,
            "qty_per": 10,
        },
        {"symbol": "ETH/USDT", "order_type": "LIMIT", "side": "sell", "price": 4000, "qty_per": 10},
    ]
    for fields in resting:
        wait_orders(webhook_id=post(client, {**base, **fields}), timeout=20)

    [one] = wait_orders(
        webhook_id=post(client, {**base, "symbol": "BTC/USDT", "order_type": "CANCEL_ALL_ORDER"}), timeout=20
    )
    statuses = {
        o.symbol + " " + o.order_type: o.status for o in Order.objects.exclude(order_type="CANCEL_ALL_ORDER")
    }
    [every] = wait_orders(webhook_id=post(client, {**base, "order_type": "CANCEL_ALL_ORDER"}), timeout=20)

    assert (one.status, one.cancelled_orders) == (OrderStatus.CANCELLED, 2)
    assert statuses == {
        "BTC/USDT LIMIT": OrderStatus.CANCELLED,
        "BTC/USDT STOP_MARKET": OrderStatus.CANCELLED,
        "ETH/USDT LIMIT": OrderStatus.OPEN,
    }
    assert (every.status, every.cancelled_orders) == (OrderStatus.CANCELLED, 1)
    assert [o["status"] for o in bybit_sim.orders] == ["Cancelled", "Deactivated", "Cancelled"]


@pytest.mark.parametrize(
    ("setup", "fields", "status", "message"),
    [
        (
            "wrong_secret",
            {"symbol": "BTC/USDT", "order_type": "MARKET", "side": "buy", "qty_per": 10},
            OrderStatus.FAILED,
            "Bybit API 오류: error sign! origin_string[",
        ),
        (
            "insufficient",
            {"symbol": "BTC/USDT", "order_type": "MARKET", "side": "buy", "qty_per": 10},
            OrderStatus.REJECTED,
            "Bybit API 오류: Insufficient balance.",
        ),
        (
            "",
            {"symbol": "BTC/USDT", "order_type": "MARKET", "side": "buy", "qty_per": "0.03"},
            OrderStatus.REJECTED,
            "주문 금액 3이(가) BTC/USDT의 최소 주문 금액 5.0보다 작습니다",
        ),
    ],
    ids=["signature", "insufficient-balance", "below-minimum"],
)
def test_errors_are_stored_on_the_order(
    client: Client,
    celery_worker: Any,
    make_strategy: Any,
    wait_orders: Any,
    bybit_sim: BybitSim,
    bybit_account: Any,
    setup: str,
    fields: dict[str, Any],
    status: str,
    message: str,
) -> None:
    account = bybit_account()
    if setup == "wrong_secret":
        account.api_secret = "not-the-secret"
        account.save()
    if setup == "insufficient":
        bybit_sim.inject("reject", CREATE, method="POST")
    make_strategy(group_name="e", market_type="SPOT", token="tok", accounts=[account])

    [order] = wait_orders(webhook_id=post(client, {"group_name": "e", "token": "tok", **fields}), timeout=20)

    assert order.status == status
    assert order.message.startswith(message)
    assert bybit_sim.orders == []


MARKET_BUY = {"symbol": "BTC/USDT", "order_type": "MARKET", "side": "buy", "qty_per": 10}


def test_timeout_after_the_venue_accepted_ends_with_exactly_one_order(
    client: Client,
    celery_worker: Any,
    make_strategy: Any,
    wait_orders: Any,
    bybit_sim: BybitSim,
    bybit_account: Any,
) -> None:
    make_strategy(
        group_name="t", market_type="SPOT", token="tok", accounts=[bybit_account(timeout_seconds=0.5)]
    )
    bybit_sim.inject("timeout", CREATE, method="POST", delay=1.0)

    [order] = wait_orders(
        webhook_id=post(client, {"group_name": "t", "token": "tok", **MARKET_BUY}), timeout=20
    )

    assert order.status == OrderStatus.FILLED, order.message
    assert len(bybit_sim.seen(CREATE)) == 1
    assert len(bybit_sim.orders_for(order.client_order_id)) == 1 and len(bybit_sim.orders) == 1
    assert order.exchange_order_id == bybit_sim.orders[0]["id"]


@pytest.mark.parametrize("fault", ["rate_limit"])  # a 5xx is uncertain: looked up, not re-sent
def test_5xx_and_rate_limit_are_retried_by_the_worker_without_a_duplicate(
    client: Client,
    celery_worker: Any,
    make_strategy: Any,
    wait_orders: Any,
    bybit_sim: BybitSim,
    bybit_account: Any,
    fault: str,
) -> None:
    make_strategy(group_name="t", market_type="SPOT", token="tok", accounts=[bybit_account()])
    bybit_sim.inject(fault, CREATE, method="POST")

    [order] = wait_orders(
        webhook_id=post(client, {"group_name": "t", "token": "tok", **MARKET_BUY}), timeout=30
    )

    assert order.status == OrderStatus.FILLED, order.message
    assert order.attempts == 2
    first, second = bybit_sim.seen(CREATE)
    assert second.received_at - first.received_at >= 0.9  # the worker's backoff (1 s), not a tight loop
    assert len(bybit_sim.orders) == 1


# --- finding #4: prices move onto tickSize toward the passive side --------------------------


@pytest.mark.parametrize(
    ("market", "side", "asked", "sent"),
    [
        ("SPOT", "BUY", "60000.019", "60000.01"),  # ccxt's nearest rounding would send 60000.02
        ("SPOT", "SELL", "160000.011", "160000.02"),
        ("FUTURES", "BUY", "60000.19", "60000.1"),  # tickSize 0.10: nearest would be 60000.2
    ],
)
def test_limit_price_moves_onto_the_tick_toward_the_passive_side(
    bybit_account: Any, bybit_sim: BybitSim, market: str, side: str, asked: str, sent: str
) -> None:
    result = adapter_for(bybit_account()).place_order(
        request(market=market, side=side, order_type="LIMIT", qty_per=D("10"), price=D(asked))
    )

    (order,) = bybit_sim.orders_for("qt-b1")
    assert order["price"] == D(sent)
    assert asked in result.message and sent in result.message
