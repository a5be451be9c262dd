"""CcxtAdapter against the Upbit simulator: JWT auth, KRW-BTC markets, market buys by cost,
identifier as the client order id, the 5,000 KRW minimum, and error mapping."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest

from orders.exchanges import adapter_for
from orders.exchanges.base import (
    OrderRejected,
    OrderRequest,
    OrderUncertain,
    PermanentVenueError,
    RetryableVenueError,
)
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
