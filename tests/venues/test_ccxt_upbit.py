"""CcxtAdapter against the Upbit simulator: JWT auth, KRW-BTC markets, market buys by cost,
identifier as the client order id, the 5,000 KRW minimum, and error mapping."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import ccxt
import pytest

from orders.exchanges import adapter_for
from orders.exchanges.base import (
    OrderRejected,
    OrderRequest,
    OrderUncertain,
    PermanentVenueError,
    RetryableVenueError,
)
from orders.exchanges.ccxt.base import venue_message
from quanttrade.vocabulary import OrderStatus
from venuesim.upbit import UpbitSim

D = Decimal


def request(cid: str = "qt-u1", **kw: Any) -> OrderRequest:
    fields: dict[str, Any] = {"symbol": "BTC/KRW", "side": "BUY", "order_type": "MARKET", "qty_per": D("10")}
    fields.update(kw)
    return OrderRequest(client_order_id=cid, market_type="SPOT", **fields)


def test_market_buy_spends_percent_of_krw_by_cost(upbit_account: Any, upbit_sim: UpbitSim) -> None:
    adapter = adapter_for(upbit_account())
    result = adapter.place_order(request())

    (order,) = upbit_sim.orders_for("qt-u1")
    assert adapter.display_name == "Upbit"
    # 10% of 10,000,000 KRW -> an ord_type "price" bid of 1,000,000 KRW on KRW-BTC
    assert (order["market"], order["side"], order["ord_type"]) == ("KRW-BTC", "bid", "price")
    assert order["price"].quantize(D("1")) == D("1000000")
    assert result.status == OrderStatus.FILLED
    assert result.exchange_order_id == order["uuid"]


def test_a_buy_of_all_the_krw_leaves_room_for_the_fee_upbit_holds_with_it(
    upbit_account: Any, upbit_sim: UpbitSim
) -> None:
    # Upbit locks a buy's fee on top of its amount: 10,000,000 KRW cannot buy for 10,000,000.
    adapter = adapter_for(upbit_account())

    result = adapter.place_order(request(qty_per=D("100")))

    (order,) = upbit_sim.orders_for("qt-u1")
    assert D("9995000") <= order["price"] <= D("10000000") / D("1.0005")
    assert result.status == OrderStatus.FILLED
    krw = upbit_sim.balances["KRW"]
    assert D("0") <= krw < D("100")  # what the fill left, fee paid


def test_a_buy_of_half_the_krw_spends_half_as_before(upbit_account: Any, upbit_sim: UpbitSim) -> None:
    adapter_for(upbit_account()).place_order(request(qty_per=D("50")))

    (order,) = upbit_sim.orders_for("qt-u1")
    # the fee fits beside it: nothing held back for it (the amount's own rounding aside)
    assert D("4999990") < order["price"] <= D("5000000")


def test_the_simulator_holds_a_buys_fee_with_it_as_upbit_answered(
    upbit_account: Any, upbit_sim: UpbitSim
) -> None:
    # tests/venues/recorded/upbit/01_placement_limit_bid.json: locked = price x volume + reserved_fee
    adapter = adapter_for(upbit_account())
    adapter.place_order(request(order_type="LIMIT", qty_per=D("10"), price=D("80000000")))
    client, _lock = adapter._client("SPOT")

    (answer,) = client.privateGetOrdersOpen({"market": "KRW-BTC"})

    amount = D(answer["price"]) * D(answer["volume"])
    assert D(answer["reserved_fee"]) == amount * D("0.0005")
    assert D(answer["locked"]) == amount + D(answer["reserved_fee"])
    free = upbit_sim.balances["KRW"] - amount - D(answer["reserved_fee"])
    with pytest.raises(ccxt.InsufficientFunds, match="insufficient_funds_bid"):
        client.privatePostOrders(
            {"market": "KRW-BTC", "side": "bid", "ord_type": "price", "price": str(free)}
        )
    client.privatePostOrders(
        {"market": "KRW-BTC", "side": "bid", "ord_type": "price", "price": str(free / 2)}
    )


def test_limit_sell_uses_identifier_and_volume(upbit_account: Any, upbit_sim: UpbitSim) -> None:
    adapter_for(upbit_account()).place_order(
        request(side="SELL", order_type="LIMIT", qty_per=D("50"), price=D("100000000"))
    )

    (order,) = upbit_sim.orders_for("qt-u1")
    assert (order["ord_type"], order["side"], order["volume"], order["price"]) == (
        "limit",
        "ask",
        D("0.05"),
        D("100000000"),
    )


def test_close_sells_percent_of_the_free_coin(upbit_account: Any, upbit_sim: UpbitSim) -> None:
    adapter_for(upbit_account()).place_order(request(side="SELL", qty_per=D("-100")))

    (order,) = upbit_sim.orders_for("qt-u1")
    assert (order["ord_type"], order["volume"]) == ("market", D("0.1"))
    assert upbit_sim.balances["BTC"] == 0


def test_order_below_5000_krw_is_rejected_locally(upbit_account: Any, upbit_sim: UpbitSim) -> None:
    with pytest.raises(OrderRejected, match="최소 주문 금액 5000"):
        adapter_for(upbit_account()).place_order(request(qty_per=D("0.01")))

    assert upbit_sim.seen("/v1/orders", "POST") == []


def test_stop_orders_are_rejected_before_sending(upbit_account: Any, upbit_sim: UpbitSim) -> None:
    with pytest.raises(OrderRejected, match="Upbit에서는 STOP_LIMIT 주문을 지원하지 않습니다"):
        adapter_for(upbit_account()).place_order(
            request(order_type="STOP_LIMIT", price=D("80000000"), stop_price=D("85000000"))
        )

    assert upbit_sim.orders == []


def test_fetch_order_by_identifier(upbit_account: Any) -> None:
    adapter = adapter_for(upbit_account())
    limit = request(side="SELL", order_type="LIMIT", qty_per=D("10"), price=D("100000000"))
    adapter.place_order(limit)

    found = adapter.fetch_order_by_client_id(limit)

    assert found is not None and found.status == OrderStatus.OPEN and found.quantity == D("0.01")
    assert adapter.fetch_order_by_client_id(request("qt-none")) is None


def test_cancel_all_without_a_cancel_all_endpoint_cancels_one_by_one(
    upbit_account: Any, upbit_sim: UpbitSim
) -> None:
    adapter = adapter_for(upbit_account())
    adapter.place_order(request("a", side="SELL", order_type="LIMIT", qty_per=D("10"), price=D("100000000")))
    adapter.place_order(request("b", side="SELL", order_type="LIMIT", qty_per=D("10"), price=D("110000000")))

    assert adapter.cancel_all("SPOT", None) == 2
    assert {o["state"] for o in upbit_sim.orders} == {"cancel"}
    assert len(upbit_sim.seen("/v1/order", "DELETE")) == 2


@pytest.mark.parametrize(
    ("fault", "error", "message"),
    [
        ("reject", OrderRejected, "Upbit API 오류: 주문가능한 금액(KRW)이 부족합니다."),
        ("rate_limit", RetryableVenueError, None),
    ],
)
def test_upbit_errors_map_to_product_errors(
    upbit_account: Any, upbit_sim: UpbitSim, fault: str, error: type[Exception], message: str | None
) -> None:
    adapter = adapter_for(upbit_account())
    adapter.market("SPOT", "BTC/KRW")
    upbit_sim.inject(fault, "/v1/orders", method="POST")

    with pytest.raises(error) as caught:
        adapter.place_order(request())

    assert type(caught.value) is error
    assert caught.value.message.startswith("Upbit API 오류: ")
    if message:
        assert caught.value.message == message
    assert upbit_sim.orders == []


def test_wrong_secret_fails_jwt_verification(upbit_account: Any) -> None:
    account = upbit_account()
    account.api_secret = "not-the-secret"
    account.save()

    with pytest.raises(PermanentVenueError, match=r"Upbit API 오류: Jwt 토큰 검증에 실패했습니다\."):
        adapter_for(account).place_order(request())


def test_timeout_after_accepting_is_found_by_identifier(upbit_account: Any, upbit_sim: UpbitSim) -> None:
    adapter = adapter_for(upbit_account(timeout_seconds=0.5))
    adapter.market("SPOT", "BTC/KRW")
    upbit_sim.inject("timeout", "/v1/orders", method="POST", delay=1.0)

    with pytest.raises(OrderUncertain):
        adapter.place_order(request())
    found = adapter.fetch_order_by_client_id(request())

    assert found is not None and found.status == OrderStatus.FILLED
    assert len(upbit_sim.orders_for("qt-u1")) == 1


# --- finding #3: a market buy ends "cancel" with fills when the unspent KRW is returned -------


def test_market_buy_is_created_wait_and_ends_cancel_with_fills_recorded_filled(
    upbit_account: Any, upbit_sim: UpbitSim
) -> None:
    adapter = adapter_for(upbit_account())

    result = adapter.place_order(request())

    (order,) = upbit_sim.orders_for("qt-u1")
    # ~1,000,000 KRW at the ask (90,001,000) buys 0.01111098 BTC (8 decimals); the rest comes back
    assert (order["state"], order["executed"]) == ("cancel", D("0.01111098"))
    assert (result.status, result.filled_qty) == (OrderStatus.FILLED, D("0.01111098"))
    found = adapter.fetch_order_by_client_id(request())
    assert found is not None and found.status == OrderStatus.FILLED


def test_market_buy_creation_answer_is_wait_without_trades(upbit_account: Any, upbit_sim: UpbitSim) -> None:
    adapter = adapter_for(upbit_account())
    adapter.market("SPOT", "BTC/KRW")
    client, _lock = adapter._client("SPOT")

    created = client.privatePostOrders(
        {"market": "KRW-BTC", "side": "bid", "ord_type": "price", "price": "1000000", "identifier": "raw-1"}
    )

    assert (created["state"], created["executed_volume"], created["trades_count"]) == ("wait", "0", 0)
    assert created["created_at"].endswith("+09:00")
    looked_up = client.privateGetOrder({"identifier": "raw-1"})
    assert (looked_up["state"], looked_up["executed_volume"]) == ("cancel", "0.01111098")


def test_market_buy_cancelled_with_part_of_the_amount_unspent_stays_cancelled_with_its_fill() -> None:
    from orders.exchanges.ccxt.upbit import upbit_result

    order = {
        "id": "u-1",
        "amount": None,
        "filled": 0.05,
        "average": 100000.0,
        "cost": 5000.0,
        "status": "canceled",
        "trades": [{"cost": 5000.0}],
        "info": {"state": "cancel", "ord_type": "price", "price": "10000", "executed_funds": "5000"},
    }

    result = upbit_result(order)

    # over, with half the KRW unspent: not FILLED, and not partially_filled (a live state)
    assert (result.status, result.filled_qty) == (OrderStatus.CANCELLED, D("0.05"))


# --- finding #4: KRW prices on Upbit's price units, the passive side ---------------------------


@pytest.mark.parametrize(
    ("side", "asked", "sent"), [("BUY", "90000500", "90000000"), ("SELL", "90000500", "90001000")]
)
def test_limit_price_moves_onto_the_krw_price_unit_toward_the_passive_side(
    upbit_account: Any, upbit_sim: UpbitSim, side: str, asked: str, sent: str
) -> None:
    result = adapter_for(upbit_account()).place_order(
        request(side=side, order_type="LIMIT", qty_per=D("10"), price=D(asked))
    )

    (order,) = upbit_sim.orders_for("qt-u1")
    assert order["price"] == D(sent)
    assert f"{asked}" in result.message and f"{sent}" in result.message


def test_simulator_refuses_an_off_unit_krw_price_with_upbits_error(
    upbit_account: Any, upbit_sim: UpbitSim
) -> None:
    adapter = adapter_for(upbit_account())
    adapter.market("SPOT", "BTC/KRW")
    client, _lock = adapter._client("SPOT")

    with pytest.raises(ccxt.BaseError) as caught:
        client.privatePostOrders(
            {"market": "KRW-BTC", "side": "bid", "ord_type": "limit", "price": "90000500", "volume": "0.001"}
        )

    assert "invalid_price_bid" in str(caught.value)
    assert venue_message(caught.value) == "주문가격 단위를 잘못 입력하셨습니다. 확인 후 시도해주세요."
    assert upbit_sim.orders == []


def test_krw_price_units_follow_upbits_table() -> None:
    from orders.exchanges.ccxt.upbit import KRW_PRICE_UNITS

    # https://docs.upbit.com/kr/docs/krw-market-info (2025-07-31 policy)
    for price, unit in [
        ("2500000", "1000"), ("1500000", "1000"), ("700000", "500"), ("200000", "100"), ("70000", "50"),
        ("20000", "10"), ("7000", "5"), ("2000", "1"), ("500", "1"), ("50", "0.01"), ("5", "0.001"),
    ]:  # fmt: skip
        assert KRW_PRICE_UNITS.step_for(D(price)) == D(unit), price


# --- client ids: identifier is unique for the account, whatever became of the earlier order ---


def test_identifier_of_a_refused_order_is_refused_again(upbit_account: Any, upbit_sim: UpbitSim) -> None:
    from orders.exchanges.ccxt.upbit import UpbitAdapter

    adapter = adapter_for(upbit_account())
    adapter.market("SPOT", "BTC/KRW")
    client, _lock = adapter._client("SPOT")
    too_big = {
        "market": "KRW-BTC",
        "side": "bid",
        "ord_type": "price",
        "price": "99000000",
        "identifier": "x1",
    }
    with pytest.raises(ccxt.InsufficientFunds):
        client.privatePostOrders(too_big)

    with pytest.raises(ccxt.BaseError, match="identifier"):
        client.privatePostOrders({**too_big, "price": "10000"})

    assert upbit_sim.orders == []
    assert UpbitAdapter.client_id_refused_in_every_state is True
