"""Issue #10 findings on KIS, each against the simulator made as strict as KIS: overseas
cancel-all (NASD lists all of the US), a failing cancel that must not stop a cancel-all, the
NXT/SOR order lookup, night-session balances and price steps."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any

import pytest

from orders.exchanges import adapter_for
from orders.exchanges.base import CancelAllIncomplete, OrderRequest, OrderUncertain
from orders.exchanges.kis.sessions import KST
from venuesim.kis import KisSim

D = Decimal
DAYTIME = datetime(2026, 12, 1, 10, 0, tzinfo=KST)
NIGHT = datetime(2026, 12, 1, 20, 0, tzinfo=KST)


@pytest.fixture(autouse=True)
def _day_session(kst_clock: Any) -> None:
    kst_clock(DAYTIME)


def req(market: str = "DOMESTIC_STOCK", cid: str = "qt1", **kw: Any) -> OrderRequest:
    fields: dict[str, Any] = {"symbol": "005930", "side": "BUY", "order_type": "LIMIT", "qty_per": D("1")}
    fields.update(kw)
    return OrderRequest(client_order_id=cid, market_type=market, **fields)


def overseas_limit(cid: str, exchange: str, symbol: str, price: str) -> OrderRequest:
    return req("OVERSEAS_STOCK", cid, symbol=symbol, price=D(price), params={"exchange_code": exchange})


# --- #1 overseas cancel-all ------------------------------------------------------------------


def test_overseas_cancel_all_cancels_each_us_order_once(kis_account: Any, kis_sim: KisSim) -> None:
    kis_sim.overseas_prices[("AMEX", "SPY")] = D("500.00")
    adapter = adapter_for(kis_account())
    adapter.place_order(overseas_limit("a", "NASD", "AAPL", "150.00"))
    adapter.place_order(overseas_limit("b", "NYSE", "TSLA", "200.00"))
    adapter.place_order(overseas_limit("c", "AMEX", "SPY", "400.00"))
    adapter.place_order(overseas_limit("d", "SEHK", "9988", "70.000"))

    assert adapter.cancel_all("OVERSEAS_STOCK", None) == 4

    cancels = kis_sim.seen("/uapi/overseas-stock/v1/trading/order-rvsecncl")
    assert sorted(r.json()["ORGN_ODNO"] for r in cancels) == sorted(o["odno"] for o in kis_sim.orders)
    assert all(o["cancelled"] for o in kis_sim.orders)
    asked = [r.query["OVRS_EXCG_CD"] for r in kis_sim.seen("/uapi/overseas-stock/v1/trading/inquire-nccs")]
    assert asked == ["NASD", "SEHK", "SHAA", "SZAA", "TKSE", "HASE", "VNSE"]


def test_the_simulator_lists_every_us_exchange_for_nasd_and_refuses_a_second_cancel(
    kis_account: Any, kis_sim: KisSim
) -> None:
    adapter = adapter_for(kis_account())
    adapter.place_order(overseas_limit("b", "NYSE", "TSLA", "200.00"))
    market = adapter._markets["OVERSEAS_STOCK"]

    (order,) = market.open_orders()
    assert order.row["ovrs_excg_cd"] == "NYSE"
    market.cancel(order)
    with pytest.raises(Exception, match="정정/취소할 수량이 없습니다"):
        market.cancel(order)


@pytest.mark.parametrize("market", ["DOMESTIC_STOCK", "OVERSEAS_STOCK"])
def test_one_failing_cancel_does_not_stop_the_cancel_all(
    kis_account: Any, kis_sim: KisSim, market: str
) -> None:
    adapter = adapter_for(kis_account())
    if market == "DOMESTIC_STOCK":
        for cid in ("a", "b", "c"):
            adapter.place_order(req(cid=cid, price=D("60000")))
        path = "/uapi/domestic-stock/v1/trading/order-rvsecncl"
    else:
        for cid, symbol in (("a", "AAPL"), ("b", "MSFT"), ("c", "NVDA")):
            adapter.place_order(overseas_limit(cid, "NASD", symbol, "100.00"))
        path = "/uapi/overseas-stock/v1/trading/order-rvsecncl"
    kis_sim.inject("reject", path, message="주문처리 불가")  # the first cancel fails

    with pytest.raises(CancelAllIncomplete) as raised:
        adapter.cancel_all(market, None)

    assert len(kis_sim.seen(path)) == 3  # every order tried once
    assert raised.value.cancelled == 2
    (failure,) = raised.value.failures
    assert failure[1].endswith("주문처리 불가") or "주문처리 불가" in failure[1]
    assert sum(o["cancelled"] for o in kis_sim.orders) == 2
    assert "2" in raised.value.message and failure[0] in raised.value.message


# --- #5 the domestic lookup sees NXT and SOR orders ------------------------------------------


@pytest.mark.parametrize("venue", ["NXT", "SOR"])
def test_an_unanswered_nxt_or_sor_order_is_found_not_sent_again(
    kis_account: Any, kis_sim: KisSim, venue: str
) -> None:
    adapter = adapter_for(kis_account(timeout_seconds=0.5))
    adapter.client.token()
    kis_sim.inject("timeout", "/uapi/domestic-stock/v1/trading/order-cash", delay=1.0)
    order = req(price=D("60000"), params={"exchange_id": venue})

    with pytest.raises(OrderUncertain):
        adapter.place_order(order)
    found = adapter.fetch_order_by_client_id(order)

    assert found is not None and found.exchange_order_id == kis_sim.orders[0]["odno"]
    lookups = kis_sim.seen("/uapi/domestic-stock/v1/trading/inquire-daily-ccld")
    assert lookups and all(r.query["EXCG_ID_DVSN_CD"] == "ALL" for r in lookups)


def test_the_simulator_lists_krx_orders_only_unless_asked(kis_account: Any, kis_sim: KisSim) -> None:
    adapter = adapter_for(kis_account())
    adapter.place_order(req("DOMESTIC_STOCK", "a", price=D("60000"), params={"exchange_id": "NXT"}))
    market = adapter._markets["DOMESTIC_STOCK"]
    params = {**adapter.kis.fields(), "INQR_STRT_DT": "20261201", "INQR_END_DT": "20261201"}
    params |= {"SLL_BUY_DVSN_CD": "00", "CCLD_DVSN": "00", "INQR_DVSN": "00", "INQR_DVSN_3": "00"}
    path, tr = "/uapi/domestic-stock/v1/trading/inquire-daily-ccld", "TTTC0081R"

    assert market.client.request("GET", path, tr, params=params)["output1"] == []
    assert (
        len(market.client.request("GET", path, tr, params={**params, "EXCG_ID_DVSN_CD": "NXT"})["output1"])
        == 1
    )
    assert (
        len(market.client.request("GET", path, tr, params={**params, "EXCG_ID_DVSN_CD": "ALL"})["output1"])
        == 1
    )


# --- #6 the night session closes from the night balance -------------------------------------


def test_a_night_close_sells_what_the_night_session_bought(
    kis_account: Any, kis_sim: KisSim, kst_clock: Any
) -> None:
    kst_clock(NIGHT)
    adapter = adapter_for(kis_account(product_code="03"))
    fo = "DOMESTIC_FUTUREOPTION"
    adapter.place_order(req(fo, "open", symbol="101TC000", order_type="MARKET", qty_per=D("2")))
    assert kis_sim.fo_night_positions["101TC000"] == D("2")

    result = adapter.place_order(
        req(fo, "close", symbol="101TC000", side="SELL", order_type="MARKET", qty_per=D("-100"))
    )

    assert result.filled_qty == D("2")
    assert kis_sim.fo_night_positions["101TC000"] == 0
    sent = kis_sim.order_requests()
    assert [r.header("tr_id") for r in sent] == ["STTN1101U", "STTN1101U"]
    assert [r.json()["SLL_BUY_DVSN_CD"] for r in sent] == ["02", "01"]
    (balance,) = kis_sim.seen("/uapi/domestic-futureoption/v1/trading/inquire-ngt-balance")
    assert balance.header("tr_id") == "CTFN6118R"
    assert not kis_sim.seen("/uapi/domestic-futureoption/v1/trading/inquire-balance")


def test_a_day_close_reads_the_day_balance(kis_account: Any, kis_sim: KisSim) -> None:
    kis_sim.fo_positions["101TC000"] = D("3")
    adapter = adapter_for(kis_account(product_code="03"))

    adapter.place_order(
        req("DOMESTIC_FUTUREOPTION", symbol="101TC000", side="SELL", order_type="MARKET", qty_per=D("-100"))
    )

    assert kis_sim.fo_positions["101TC000"] == 0
    assert (
        kis_sim.seen("/uapi/domestic-futureoption/v1/trading/inquire-balance")[0].header("tr_id")
        == "CTFO6118R"
    )
