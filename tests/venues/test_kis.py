"""KisAdapter and KisClient against the KIS simulator over real HTTP: TR ids, body fields,
market orders per market, tokens, rate limits and the fault classes."""

from __future__ import annotations

import json
import threading
from collections import Counter
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
from django.core.cache import cache

from orders.exchanges import adapter_for
from orders.exchanges.base import (
    OrderRejected,
    OrderRequest,
    OrderUncertain,
    PermanentVenueError,
    RetryableVenueError,
)
from orders.exchanges.kis import KisAdapter
from orders.exchanges.kis.sessions import KST
from quanttrade.vocabulary import OrderStatus
from venuesim.kis import KisSim

D = Decimal
# A Tuesday morning in Korea: the day session of KRX futures and options.
DAYTIME = datetime(2026, 12, 1, 10, 0, tzinfo=KST)


@pytest.fixture(autouse=True)
def _day_session(kst_clock: Any) -> None:
    """Every test here runs at DAYTIME unless it moves the clock itself (kst_clock): the F&O
    session, inquiry dates and intent times all follow the clock, never the hour CI runs at."""
    kst_clock(DAYTIME)


def req(market: str = "DOMESTIC_STOCK", cid: str = "qt1", **kw: Any) -> OrderRequest:
    fields: dict[str, Any] = {"symbol": "005930", "side": "BUY", "order_type": "MARKET", "qty_per": D("100")}
    fields.update(kw)
    return OrderRequest(client_order_id=cid, market_type=market, **fields)


def test_registry_maps_kis_to_the_kis_adapter(kis_account: Any) -> None:
    assert isinstance(adapter_for(kis_account()), KisAdapter)


def test_domestic_market_buy_sends_the_order_cash_body(kis_account: Any, kis_sim: KisSim) -> None:
    result = adapter_for(kis_account()).place_order(req())

    (sent,) = kis_sim.order_requests()
    assert sent.path == "/uapi/domestic-stock/v1/trading/order-cash"
    assert (sent.header("tr_id"), sent.header("custtype")) == ("TTTC0012U", "P")
    assert sent.header("authorization").startswith("Bearer ")
    body = json.loads(sent.body)
    assert {
        k: body[k]
        for k in ("CANO", "ACNT_PRDT_CD", "PDNO", "ORD_DVSN", "ORD_QTY", "ORD_UNPR", "EXCG_ID_DVSN_CD")
    } == {
        "CANO": "12345678",
        "ACNT_PRDT_CD": "01",
        "PDNO": "005930",
        "ORD_DVSN": "01",
        "ORD_QTY": "100",
        "ORD_UNPR": "0",
        "EXCG_ID_DVSN_CD": "KRX",
    }
    assert result.status == OrderStatus.FILLED
    assert (result.filled_qty, result.avg_price) == (D("100"), D("70000"))
    assert result.exchange_order_id == kis_sim.orders[0]["odno"]
    assert kis_sim.holdings["005930"] == D("200")


def test_domestic_limit_order_reads_open(kis_account: Any) -> None:
    result = adapter_for(kis_account()).place_order(req(order_type="LIMIT", price=D("60000"), qty_per=D("1")))

    assert (result.status, result.filled_qty, result.message) == (
        OrderStatus.OPEN,
        D("0"),
        "주문 전송 완료 되었습니다.",
    )


# The seed guide's Korean stock scenarios.
@pytest.mark.parametrize(
    ("symbol", "side", "order_type", "price", "qty", "tr_id", "ord_dvsn", "unpr"),
    [
        ("005930", "BUY", "MARKET", None, "100", "TTTC0012U", "01", "0"),
        ("005930", "SELL", "MARKET", None, "50", "TTTC0011U", "01", "0"),
        ("005930", "BUY", "LIMIT", "70000", "100", "TTTC0012U", "00", "70000"),
        ("005930", "SELL", "LIMIT", "75000", "100", "TTTC0011U", "00", "75000"),
        ("005930", "BUY", "CONDITIONAL_LIMIT", "72000", "100", "TTTC0012U", "02", "72000"),
        ("005930", "BUY", "BEST_LIMIT", None, "100", "TTTC0012U", "03", "0"),
        ("005930", "BUY", "PRE_MARKET", "71000", "100", "TTTC0012U", "05", "71000"),
        ("005930", "SELL", "AFTER_MARKET", "73000", "100", "TTTC0011U", "06", "73000"),
        ("069500", "BUY", "MARKET", None, "50", "TTTC0012U", "01", "0"),
        ("KR005930", "BUY", "LIMIT", "70000", "1", "TTTC0012U", "00", "70000"),
    ],
)
def test_domestic_scenarios_map_to_ord_dvsn(
    kis_account: Any,
    kis_sim: KisSim,
    symbol: str,
    side: str,
    order_type: str,
    price: str | None,
    qty: str,
    tr_id: str,
    ord_dvsn: str,
    unpr: str,
) -> None:
    adapter_for(kis_account()).place_order(
        req(
            symbol=symbol, side=side, order_type=order_type, price=D(price) if price else None, qty_per=D(qty)
        )
    )

    assert kis_sim.order_requests()[0].header("tr_id") == tr_id
    body = kis_sim.last_body()
    assert (body["PDNO"], body["ORD_DVSN"], body["ORD_QTY"], body["ORD_UNPR"]) == (
        symbol[-6:],
        ord_dvsn,
        qty,
        unpr,
    )


def test_virtual_account_uses_the_virtual_tr_ids(kis_account: Any, make_account: Any) -> None:
    sim = KisSim(virtual=True)
    sim.start()
    try:
        account = kis_account("kis-virtual")
        account.is_testnet = True
        account.settings = {**account.settings, "api_base_url": sim.base_url}
        account.save()

        adapter_for(account).place_order(req())

        assert sim.order_requests()[0].header("tr_id") == "VTTC0012U"
    finally:
        sim.stop()


@pytest.mark.parametrize("qty", [D("0"), D("1.5"), D("-0")])
def test_domestic_quantity_must_be_a_whole_number(kis_account: Any, kis_sim: KisSim, qty: Decimal) -> None:
    with pytest.raises(OrderRejected, match="수량은 1 이상의 정수여야 합니다"):
        adapter_for(kis_account()).place_order(req(qty_per=qty))

    assert kis_sim.order_requests() == []


def test_domestic_close_sells_percent_of_the_holding(kis_account: Any, kis_sim: KisSim) -> None:
    adapter_for(kis_account()).place_order(req(side="SELL", qty_per=D("-50")))

    body = kis_sim.last_body()
    assert (kis_sim.order_requests()[0].header("tr_id"), body["ORD_QTY"]) == ("TTTC0011U", "50")


def test_venue_rejection_is_reported_with_msg1(kis_account: Any, kis_sim: KisSim) -> None:
    with pytest.raises(OrderRejected) as caught:
        adapter_for(kis_account()).place_order(req(qty_per=D("100000")))

    assert caught.value.message == "한투 API 오류: 주문가능금액을 초과 했습니다"


# The seed guide's overseas scenarios the KIS order API supports.
@pytest.mark.parametrize(
    ("symbol", "side", "order_type", "price", "params", "tr_id", "excg", "unpr"),
    [
        (
            "AAPL",
            "BUY",
            "MARKET",
            None,
            {"exchange_code": "NASD", "currency": "USD"},
            "TTTT1002U",
            "NASD",
            "190.95",
        ),
        (
            "TSLA",
            "BUY",
            "LIMIT",
            "250.50",
            {"exchange_code": "NYSE", "currency": "USD"},
            "TTTT1002U",
            "NYSE",
            "250.50",
        ),
        (
            "MSFT",
            "SELL",
            "MARKET",
            None,
            {"exchange_code": "NASD", "currency": "USD"},
            "TTTT1006U",
            "NASD",
            "407.95",
        ),
        (
            "BRK.B",
            "SELL",
            "LIMIT",
            "420.00",
            {"exchange_code": "NYSE", "currency": "USD"},
            "TTTT1006U",
            "NYSE",
            "420.00",
        ),
        (
            "9988",
            "BUY",
            "MARKET",
            None,
            {"exchange_code": "SEHK", "currency": "HKD"},
            "TTTS1002U",
            "SEHK",
            "80.40",  # on the SEHK step (0.05 from 20 HKD)
        ),
        (
            "7203",
            "BUY",
            "MARKET",
            None,
            {"exchange_code": "TSE", "currency": "JPY"},
            "TTTS0308U",
            "TKSE",
            "2512",  # a buy rounds down onto the yen step
        ),
        (
            "VNM",
            "BUY",
            "LIMIT",
            "85000",
            {"exchange_code": "HCM", "currency": "VND"},
            "TTTS0311U",
            "VNSE",
            "85000",
        ),
    ],
)
def test_overseas_scenarios(
    kis_account: Any,
    kis_sim: KisSim,
    symbol: str,
    side: str,
    order_type: str,
    price: str | None,
    params: dict[str, str],
    tr_id: str,
    excg: str,
    unpr: str,
) -> None:
    adapter_for(kis_account()).place_order(
        req(
            "OVERSEAS_STOCK",
            symbol=symbol,
            side=side,
            order_type=order_type,
            price=D(price) if price else None,
            qty_per=D("3"),
            params=params,
        )
    )

    (sent,) = kis_sim.order_requests()
    body = json.loads(sent.body)
    assert sent.header("tr_id") == tr_id
    # Market orders go out as limit orders (00) priced through the quote.
    assert (body["OVRS_EXCG_CD"], body["PDNO"], body["ORD_DVSN"], body["OVRS_ORD_UNPR"]) == (
        excg,
        symbol,
        "00",
        unpr,
    )


def test_overseas_market_sell_on_a_virtual_account_uses_vttt1001u(kis_account: Any) -> None:
    sim = KisSim(virtual=True)
    sim.start()
    try:
        account = kis_account("kis-virtual")
        account.is_testnet = True
        account.settings = {**account.settings, "api_base_url": sim.base_url}
        account.save()

        adapter_for(account).place_order(
            req(
                "OVERSEAS_STOCK", symbol="MSFT", side="SELL", qty_per=D("2"), params={"exchange_code": "NASD"}
            )
        )

        assert sim.order_requests()[0].header("tr_id") == "VTTT1001U"
    finally:
        sim.stop()


@pytest.mark.parametrize("code", ["XETRA", "LSE"])
def test_overseas_exchanges_kis_cannot_trade_are_rejected(
    kis_account: Any, kis_sim: KisSim, code: str
) -> None:
    with pytest.raises(OrderRejected, match=f"알 수 없는 해외 거래소 코드입니다: {code}"):
        adapter_for(kis_account()).place_order(
            req("OVERSEAS_STOCK", symbol="SAP", params={"exchange_code": code})
        )

    assert kis_sim.order_requests() == []


def test_overseas_stop_limit_is_not_supported(kis_account: Any) -> None:
    with pytest.raises(OrderRejected, match="STOP_LIMIT"):
        adapter_for(kis_account()).place_order(
            req(
                "OVERSEAS_STOCK",
                symbol="NVDA",
                side="SELL",
                order_type="STOP_LIMIT",
                price=D("480"),
                stop_price=D("485"),
                qty_per=D("5"),
                params={"exchange_code": "NASD"},
            )
        )


@pytest.mark.parametrize(
    ("symbol", "side", "order_type", "price", "params", "ord_dvsn", "unit_price"),
    [
        ("101TC000", "BUY", "MARKET", None, {"position_action": "OPEN"}, "02", "0"),
        ("101TC000", "BUY", "LIMIT", "320.50", {"position_action": "OPEN"}, "01", "320.5"),
        ("201PC260", "BUY", "LIMIT", "5.00", {"option_type": "PUT", "strike_price": "260.00"}, "01", "5"),
        ("201CA320", "SELL", "MARKET", None, {"option_type": "CALL", "strike_price": "320.00"}, "02", "0"),
    ],
)
def test_domestic_futureoption_scenarios(
    kis_account: Any,
    kis_sim: KisSim,
    symbol: str,
    side: str,
    order_type: str,
    price: str | None,
    params: dict[str, str],
    ord_dvsn: str,
    unit_price: str,
) -> None:
    adapter_for(kis_account(product_code="03")).place_order(
        req(
            "DOMESTIC_FUTUREOPTION",
            symbol=symbol,
            side=side,
            order_type=order_type,
            price=D(price) if price else None,
            qty_per=D("2"),
            params={**params, "session": "day"},
        )
    )

    (sent,) = kis_sim.order_requests()
    body = json.loads(sent.body)
    assert sent.header("tr_id") == "TTTO1101U"
    assert (body["ACNT_PRDT_CD"], body["SHTN_PDNO"], body["SLL_BUY_DVSN_CD"]) == (
        "03",
        symbol,
        "02" if side == "BUY" else "01",
    )
    assert (body["ORD_DVSN_CD"], body["NMPR_TYPE_CD"], body["UNIT_PRICE"], body["ORD_QTY"]) == (
        ord_dvsn,
        ord_dvsn,
        unit_price,
        "2",
    )


def test_domestic_futureoption_night_session_uses_the_night_tr(kis_account: Any, kis_sim: KisSim) -> None:
    adapter_for(kis_account(product_code="03")).place_order(
        req("DOMESTIC_FUTUREOPTION", symbol="101TC000", qty_per=D("1"), params={"session": "night"})
    )

    assert kis_sim.order_requests()[0].header("tr_id") == "STTN1101U"


@pytest.mark.parametrize(
    ("kst", "tr_id"),
    [
        ("03:00", "STTN1101U"),
        ("05:59", "STTN1101U"),
        ("06:00", "TTTO1101U"),
        ("14:00", "TTTO1101U"),
        ("17:59", "TTTO1101U"),
        ("18:00", "STTN1101U"),
        ("23:30", "STTN1101U"),
    ],
)
def test_domestic_futureoption_session_follows_the_clock(
    kis_account: Any, kis_sim: KisSim, kst_clock: Any, kst: str, tr_id: str
) -> None:
    hour, minute = map(int, kst.split(":"))
    kst_clock(DAYTIME.replace(hour=hour, minute=minute))

    adapter_for(kis_account(product_code="03")).place_order(
        req("DOMESTIC_FUTUREOPTION", symbol="101TC000", qty_per=D("1"))
    )

    assert kis_sim.order_requests()[0].header("tr_id") == tr_id


def test_a_night_order_placed_before_midnight_is_found_and_cancelled_after_it(
    kis_account: Any, kis_sim: KisSim, kst_clock: Any
) -> None:
    kst_clock(DAYTIME.replace(hour=23, minute=30))
    adapter = market_adapter(kis_account, "DOMESTIC_FUTUREOPTION")
    order = market_order("DOMESTIC_FUTUREOPTION", order_type="LIMIT", price=D("300"), params={})
    placed = adapter.place_order(order)
    assert kis_sim.order_requests()[0].header("tr_id") == "STTN1101U"

    kst_clock(DAYTIME.replace(hour=0, minute=30) + timedelta(days=1))  # the same night session
    assert adapter.fetch_order_by_client_id(order).status == OrderStatus.OPEN
    assert adapter.cancel_all("DOMESTIC_FUTUREOPTION", None) == 1

    [cancel] = kis_sim.seen("/uapi/domestic-futureoption/v1/trading/order-rvsecncl")
    assert (cancel.header("tr_id"), json.loads(cancel.body)["ORGN_ODNO"]) == (
        "TTTN1103U",
        placed.exchange_order_id,
    )
    assert adapter.fetch_order_by_client_id(order).status == OrderStatus.CANCELLED


def test_domestic_futureoption_close_sells_the_long(kis_account: Any, kis_sim: KisSim) -> None:
    kis_sim.fo_positions["101TC000"] = D("2")

    adapter_for(kis_account(product_code="03")).place_order(
        req(
            "DOMESTIC_FUTUREOPTION",
            symbol="101TC000",
            side="SELL",
            qty_per=D("-100"),
            params={"position_action": "CLOSE", "session": "day"},
        )
    )

    assert kis_sim.fo_positions["101TC000"] == 0


@pytest.mark.parametrize(
    ("symbol", "side", "order_type", "price", "pric_dvsn", "ccld", "limit"),
    [
        ("ESZ4", "BUY", "MARKET", None, "2", "2", ""),
        ("NQH5", "BUY", "LIMIT", "16500.00", "1", "6", "16500"),
        ("CL-DEC24", "BUY", "MARKET", None, "2", "2", ""),
        ("GCZ24", "BUY", "LIMIT", "2050.00", "1", "6", "2050"),
        ("6E_Z4", "SELL", "MARKET", None, "2", "2", ""),
    ],
)
def test_overseas_futureoption_scenarios(
    kis_account: Any,
    kis_sim: KisSim,
    symbol: str,
    side: str,
    order_type: str,
    price: str | None,
    pric_dvsn: str,
    ccld: str,
    limit: str,
) -> None:
    adapter_for(kis_account(product_code="08")).place_order(
        req(
            "OVERSEAS_FUTUREOPTION",
            symbol=symbol,
            side=side,
            order_type=order_type,
            price=D(price) if price else None,
            qty_per=D("1"),
            params={"exchange_code": "CME", "contract_month": "Z4", "currency": "USD"},
        )
    )

    (sent,) = kis_sim.order_requests()
    body = json.loads(sent.body)
    assert sent.header("tr_id") == "OTFM3001U"
    assert (
        body["OVRS_FUTR_FX_PDNO"],
        body["PRIC_DVSN_CD"],
        body["CCLD_CNDT_CD"],
        body["FM_LIMIT_ORD_PRIC"],
    ) == (symbol, pric_dvsn, ccld, limit)


def test_overseas_futureoption_needs_contract_month(kis_account: Any) -> None:
    with pytest.raises(OrderRejected, match=r"params\.contract_month"):
        adapter_for(kis_account(product_code="08")).place_order(
            req("OVERSEAS_FUTUREOPTION", symbol="ESZ4", qty_per=D("1"), params={"exchange_code": "CME"})
        )


def test_cancel_all_domestic_for_one_symbol(kis_account: Any, kis_sim: KisSim) -> None:
    adapter = adapter_for(kis_account())
    adapter.place_order(req(cid="a", order_type="LIMIT", price=D("60000"), qty_per=D("1")))
    adapter.place_order(req(cid="b", order_type="LIMIT", price=D("61000"), qty_per=D("1")))
    adapter.place_order(req(cid="c", symbol="000660", order_type="LIMIT", price=D("100000"), qty_per=D("1")))

    assert adapter.cancel_all("DOMESTIC_STOCK", "005930") == 2
    assert [o["cancelled"] for o in kis_sim.orders] == [True, True, False]
    assert adapter.cancel_all("DOMESTIC_STOCK", None) == 1


def test_cancel_all_domestic_on_a_virtual_account_lists_unfilled_orders(kis_account: Any) -> None:
    sim = KisSim(virtual=True)
    sim.start()
    try:
        account = kis_account("kis-virtual")
        account.is_testnet = True
        account.settings = {**account.settings, "api_base_url": sim.base_url}
        account.save()
        adapter = adapter_for(account)
        adapter.place_order(req(cid="a", order_type="LIMIT", price=D("60000"), qty_per=D("1")))
        adapter.place_order(req(cid="b", qty_per=D("1")))  # market: filled, nothing to cancel

        assert adapter.cancel_all("DOMESTIC_STOCK", None) == 1
        assert [o["cancelled"] for o in sim.orders] == [True, False]
        assert sim.seen("/uapi/domestic-stock/v1/trading/inquire-psbl-rvsecncl") == []
        assert sim.seen("/uapi/domestic-stock/v1/trading/order-rvsecncl")[0].header("tr_id") == "VTTC0013U"
    finally:
        sim.stop()


def test_cancel_all_domestic_futureoption(kis_account: Any, kis_sim: KisSim) -> None:
    adapter = adapter_for(kis_account(product_code="03", session="day"))
    fo = "DOMESTIC_FUTUREOPTION"
    adapter.place_order(
        req(fo, cid="a", symbol="101TC000", order_type="LIMIT", price=D("300"), qty_per=D("1"))
    )
    adapter.place_order(req(fo, cid="b", symbol="201PC260", order_type="LIMIT", price=D("4"), qty_per=D("1")))
    adapter.place_order(req(fo, cid="c", symbol="101TC000", qty_per=D("1")))  # market: filled

    assert adapter.cancel_all(fo, "101TC000") == 1
    assert [o["cancelled"] for o in kis_sim.orders] == [True, False, False]
    assert (
        kis_sim.seen("/uapi/domestic-futureoption/v1/trading/order-rvsecncl")[0].header("tr_id")
        == "TTTO1103U"
    )


def test_cancel_all_overseas_futureoption(kis_account: Any, kis_sim: KisSim) -> None:
    adapter = adapter_for(kis_account(product_code="08"))
    params = {"exchange_code": "CME", "contract_month": "H5"}
    fo = "OVERSEAS_FUTUREOPTION"
    adapter.place_order(
        req(fo, symbol="NQH5", order_type="LIMIT", price=D("15000"), qty_per=D("1"), params=params)
    )

    assert adapter.cancel_all(fo, None) == 1
    assert kis_sim.orders[0]["cancelled"] is True
    assert adapter.cancel_all(fo, None) == 0


def test_cancel_all_overseas(kis_account: Any, kis_sim: KisSim) -> None:
    adapter = adapter_for(kis_account())
    adapter.place_order(
        req(
            "OVERSEAS_STOCK",
            symbol="AAPL",
            order_type="LIMIT",
            price=D("150"),
            qty_per=D("1"),
            params={"exchange_code": "NASD"},
        )
    )

    assert adapter.cancel_all("OVERSEAS_STOCK", None) == 1
    assert kis_sim.orders[0]["cancelled"] is True


# --- tokens -------------------------------------------------------------------------------


def test_one_token_is_shared_by_every_adapter_of_the_app_key(kis_account: Any, kis_sim: KisSim) -> None:
    accounts = [kis_account(f"kis-{i}") for i in range(3)]
    threads = [
        threading.Thread(target=adapter_for(a).place_order, args=(req(cid=f"t{i}", qty_per=D("1")),))
        for i, a in enumerate(accounts)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert kis_sim.token_requests == 1
    assert len(kis_sim.orders) == 3


def test_expired_token_is_refreshed_exactly_once(kis_account: Any, kis_sim: KisSim) -> None:
    adapter = adapter_for(kis_account())
    adapter.place_order(req(cid="first", qty_per=D("1")))
    kis_sim.expire_tokens()
    # The first token was issued over a minute ago: a refresh is allowed.
    kis_sim.last_token_at.clear()
    cache.delete(adapter.client._token_issued_key)

    adapter.place_order(req(cid="second", qty_per=D("1")))

    assert kis_sim.token_requests == 2
    assert len(kis_sim.orders) == 2


def test_token_still_expired_after_one_refresh_asks_for_reauthentication(
    kis_account: Any, kis_sim: KisSim
) -> None:
    adapter = adapter_for(kis_account())
    adapter.client.token()
    cache.delete(adapter.client._token_issued_key)
    kis_sim.last_token_at.clear()
    kis_sim.inject("token_expired", "/uapi/domestic-stock", count=2)

    with pytest.raises(PermanentVenueError) as caught:
        adapter.place_order(req(qty_per=D("1")))

    assert caught.value.message == "한투 access token이 만료되었습니다. 재인증이 필요합니다."
    assert kis_sim.token_requests == 2
    assert kis_sim.orders == []


def test_token_is_not_requested_twice_within_a_minute(kis_account: Any, kis_sim: KisSim) -> None:
    adapter = adapter_for(kis_account())
    adapter.client.token()
    kis_sim.expire_tokens()

    with pytest.raises(PermanentVenueError, match="access token이 만료되었습니다"):
        adapter.place_order(req(qty_per=D("1")))

    assert kis_sim.token_requests == 1
    assert kis_sim.orders == []


def test_token_egw00133_from_the_venue_is_retryable(kis_account: Any, kis_sim: KisSim) -> None:
    kis_sim.last_token_at["sim-appkey"] = 9e18  # the venue believes a token was just issued

    with pytest.raises(RetryableVenueError, match="1분당 1회"):
        adapter_for(kis_account()).place_order(req(qty_per=D("1")))


def test_bad_app_secret_is_permanent(kis_account: Any) -> None:
    account = kis_account()
    account.api_secret = "wrong"
    account.save()

    with pytest.raises(PermanentVenueError, match=r"한투 API 오류: 유효하지 않은 AppKey입니다\."):
        adapter_for(account).place_order(req(qty_per=D("1")))


def test_hashkey_header_is_sent_when_enabled(kis_account: Any, kis_sim: KisSim) -> None:
    adapter_for(kis_account(use_hashkey=True)).place_order(req(qty_per=D("1")))

    (sent,) = kis_sim.order_requests()
    assert len(kis_sim.seen("/uapi/hashkey")) == 1
    assert sent.header("hashkey") and len(sent.header("hashkey")) == 64


# --- rate limits and faults -----------------------------------------------------------------


def test_egw00201_is_backed_off_and_retried(kis_account: Any, kis_sim: KisSim) -> None:
    kis_sim.inject("rate_limit", "/uapi/domestic-stock/v1/trading/order-cash")

    result = adapter_for(kis_account()).place_order(req(qty_per=D("1")))

    assert result.status == OrderStatus.FILLED
    assert len(kis_sim.order_requests()) == 2
    assert len(kis_sim.orders) == 1


def test_persistent_egw00201_is_retryable(kis_account: Any, kis_sim: KisSim) -> None:
    kis_sim.inject("rate_limit", "/uapi/domestic-stock/v1/trading/order-cash", count=10)

    with pytest.raises(RetryableVenueError, match=r"한투 API 오류: 초당 거래건수를 초과하였습니다\."):
        adapter_for(kis_account()).place_order(req(qty_per=D("1")))

    assert kis_sim.orders == []


def test_a_definite_failure_leaves_nothing_to_look_up(kis_account: Any, kis_sim: KisSim) -> None:
    adapter = adapter_for(kis_account())
    order = req("OVERSEAS_STOCK", symbol="AAPL", qty_per=D("1"), params={"exchange_code": "NASD"})
    kis_sim.inject("rate_limit", "/uapi/overseas-stock/v1/trading/order", count=10)

    with pytest.raises(RetryableVenueError):
        adapter.place_order(order)

    # The intent is gone: the retry's lookup knows the order was never taken without asking
    # the venue's order list, so it may be placed again.
    assert cache.get(adapter._intent_key(order.client_order_id)) is None
    assert adapter.fetch_order_by_client_id(order) is None
    assert kis_sim.seen("/uapi/overseas-stock/v1/trading/inquire-ccnl") == []


def test_the_client_keeps_under_the_per_second_limit(kis_account: Any, kis_sim: KisSim) -> None:
    adapter = adapter_for(kis_account(rate_limit_per_second=3))
    adapter.client.token()

    for _ in range(5):
        adapter.balances()

    per_second = Counter(
        int(r.received_at) for r in kis_sim.seen("/uapi/domestic-stock/v1/trading/inquire-balance")
    )
    assert max(per_second.values()) <= 3


def test_timeout_after_accepting_is_found_again_and_placed_once(kis_account: Any, kis_sim: KisSim) -> None:
    adapter = adapter_for(kis_account(timeout_seconds=1.0))
    adapter.client.token()
    kis_sim.inject("timeout", "/uapi/domestic-stock/v1/trading/order-cash", delay=2.0)
    order = req(qty_per=D("10"))

    with pytest.raises(OrderUncertain):
        adapter.place_order(order)
    found = adapter.fetch_order_by_client_id(order)

    assert found is not None and found.exchange_order_id == kis_sim.orders[0]["odno"]
    assert found.status == OrderStatus.FILLED and found.filled_qty == D("10")
    assert len(kis_sim.orders) == 1


def test_5xx_without_an_answer_is_looked_up_then_placed_once(kis_account: Any, kis_sim: KisSim) -> None:
    adapter = adapter_for(kis_account())
    kis_sim.inject("5xx", "/uapi/domestic-stock/v1/trading/order-cash")
    order = req(qty_per=D("10"))

    with pytest.raises(OrderUncertain):
        adapter.place_order(order)
    assert adapter.fetch_order_by_client_id(order) is None
    adapter.place_order(order)

    assert len(kis_sim.orders) == 1


# --- finding an unanswered order again, on every market -------------------------------------

# market -> (account product code, order path, a market order the simulator fills at once)
MARKETS = {
    "DOMESTIC_STOCK": ("01", "/uapi/domestic-stock/v1/trading/order-cash", {"symbol": "005930"}),
    "OVERSEAS_STOCK": (
        "01",
        "/uapi/overseas-stock/v1/trading/order",
        {"symbol": "AAPL", "params": {"exchange_code": "NASD"}},
    ),
    "DOMESTIC_FUTUREOPTION": (
        "03",
        "/uapi/domestic-futureoption/v1/trading/order",
        {"symbol": "101TC000", "params": {"session": "day"}},
    ),
    "OVERSEAS_FUTUREOPTION": (
        "08",
        "/uapi/overseas-futureoption/v1/trading/order",
        {"symbol": "ESZ4", "params": {"exchange_code": "CME", "contract_month": "Z4"}},
    ),
}
EVERY_MARKET = pytest.mark.parametrize("market", list(MARKETS))
OTHER_MARKETS = pytest.mark.parametrize("market", [m for m in MARKETS if m != "DOMESTIC_STOCK"])
# A limit price that rests on the simulator (below its price for a buy).
RESTING = {
    "DOMESTIC_STOCK": "60000",
    "OVERSEAS_STOCK": "150",
    "DOMESTIC_FUTUREOPTION": "300",
    "OVERSEAS_FUTUREOPTION": "4900",
}
# The order inquiry each market's accepted orders are read from (and looked up in).
INQUIRY = {
    "DOMESTIC_STOCK": "/uapi/domestic-stock/v1/trading/inquire-daily-ccld",
    "OVERSEAS_STOCK": "/uapi/overseas-stock/v1/trading/inquire-ccnl",
    "DOMESTIC_FUTUREOPTION": "/uapi/domestic-futureoption/v1/trading/inquire-ccnl",
    "OVERSEAS_FUTUREOPTION": "/uapi/overseas-futureoption/v1/trading/inquire-ccld",
}


def market_order(market: str, cid: str = "qt1", qty: str = "2", **kw: Any) -> OrderRequest:
    return req(market, cid=cid, qty_per=D(qty), **{**MARKETS[market][2], **kw})


def market_adapter(kis_account: Any, market: str, **settings: Any) -> KisAdapter:
    settings = {"timeout_seconds": 1.0, **settings}
    adapter = adapter_for(kis_account(product_code=MARKETS[market][0], **settings))
    adapter.client.token()
    return adapter


# --- the state of an accepted order, read once right after placement ------------------------


@EVERY_MARKET
def test_a_market_order_reads_filled_right_after_placement(
    kis_account: Any, kis_sim: KisSim, market: str
) -> None:
    placed = market_adapter(kis_account, market).place_order(market_order(market))

    [venue_order] = kis_sim.orders
    assert (placed.status, placed.exchange_order_id) == (OrderStatus.FILLED, venue_order["odno"])
    assert (placed.quantity, placed.filled_qty, placed.avg_price) == (D("2"), D("2"), venue_order["avg"])
    assert placed.message == "주문 전송 완료 되었습니다."
    assert len(kis_sim.seen(INQUIRY[market])) == 1  # read once, from that market's order list


@EVERY_MARKET
def test_a_resting_limit_order_reads_open_right_after_placement(
    kis_account: Any, kis_sim: KisSim, market: str
) -> None:
    placed = market_adapter(kis_account, market).place_order(
        market_order(market, order_type="LIMIT", price=D(RESTING[market]))
    )

    [venue_order] = kis_sim.orders
    assert (placed.status, placed.exchange_order_id) == (OrderStatus.OPEN, venue_order["odno"])
    assert (placed.quantity, placed.filled_qty, placed.avg_price) == (D("2"), D("0"), None)


@EVERY_MARKET
def test_a_failed_read_after_placement_keeps_the_order_open_and_placed_once(
    kis_account: Any, kis_sim: KisSim, market: str
) -> None:
    adapter = market_adapter(kis_account, market)
    kis_sim.inject("5xx", INQUIRY[market])
    order = market_order(market)

    placed = adapter.place_order(order)

    [venue_order] = kis_sim.orders
    assert (placed.status, placed.exchange_order_id) == (OrderStatus.OPEN, venue_order["odno"])
    assert len(kis_sim.order_requests()) == 1
    # The order's fill is read later (the sweep's refresh), not placed again.
    assert adapter.fetch_order_by_client_id(order).status == OrderStatus.FILLED
    assert len(kis_sim.orders) == 1


@EVERY_MARKET
def test_an_order_not_listed_yet_after_placement_reads_open(
    kis_account: Any, kis_sim: KisSim, market: str
) -> None:
    adapter = market_adapter(kis_account, market)
    order = market_order(market)
    kis_sim.clock = lambda: datetime.now(KST) - timedelta(days=3)  # listed under another day

    placed = adapter.place_order(order)

    [venue_order] = kis_sim.orders
    assert (placed.status, placed.exchange_order_id) == (OrderStatus.OPEN, venue_order["odno"])
    assert len(kis_sim.order_requests()) == 1


@OTHER_MARKETS
def test_timeout_after_accepting_is_found_again_with_its_state(
    kis_account: Any, kis_sim: KisSim, market: str
) -> None:
    adapter = market_adapter(kis_account, market)
    kis_sim.inject("timeout", MARKETS[market][1], delay=2.0)
    order = market_order(market)

    with pytest.raises(OrderUncertain):
        adapter.place_order(order)
    found = adapter.fetch_order_by_client_id(order)

    [venue_order] = kis_sim.orders
    assert found is not None and found.exchange_order_id == venue_order["odno"]
    assert (found.status, found.filled_qty, found.avg_price) == (
        OrderStatus.FILLED,
        D("2"),
        venue_order["avg"],
    )
    # Asked again (a retry, the sweep), the answer is the same order.
    assert adapter.fetch_order_by_client_id(order).exchange_order_id == venue_order["odno"]


@OTHER_MARKETS
def test_an_order_lost_before_the_venue_is_placed_once_after_the_lookup(
    kis_account: Any, kis_sim: KisSim, market: str
) -> None:
    adapter = market_adapter(kis_account, market)
    kis_sim.inject("lost", MARKETS[market][1])
    order = market_order(market)

    with pytest.raises(OrderUncertain):
        adapter.place_order(order)
    assert kis_sim.orders == []
    assert adapter.fetch_order_by_client_id(order) is None
    placed = adapter.place_order(order)

    [venue_order] = kis_sim.orders
    assert placed.exchange_order_id == venue_order["odno"]
    assert len(kis_sim.order_requests()) == 2


@OTHER_MARKETS
def test_two_unanswered_orders_of_the_same_kind_each_find_their_own(
    kis_account: Any, kis_sim: KisSim, market: str
) -> None:
    adapter = market_adapter(kis_account, market)
    stamp = datetime.now(KST) + timedelta(seconds=3)
    kis_sim.clock = lambda: stamp  # both stamped alike: only the claims tell them apart
    kis_sim.inject("timeout", MARKETS[market][1], delay=2.0, count=2)
    first, second = market_order(market, cid="first"), market_order(market, cid="second")
    for order in (first, second):
        with pytest.raises(OrderUncertain):
            adapter.place_order(order)

    found = [adapter.fetch_order_by_client_id(o) for o in (second, first, second, first)]

    odnos = [o["odno"] for o in kis_sim.orders]
    assert len(odnos) == 2
    assert {f.exchange_order_id for f in found[:2]} == set(odnos)  # one each, none taken twice
    assert [f.exchange_order_id for f in found[2:]] == [f.exchange_order_id for f in found[:2]]


@OTHER_MARKETS
def test_a_lookup_waits_while_an_order_of_the_same_kind_is_in_flight(
    kis_account: Any, kis_sim: KisSim, market: str
) -> None:
    """The first request never reached the venue; a second, identical one did and awaits its
    answer. The first's lookup must not take the second's order: it would never be placed."""
    adapter = market_adapter(kis_account, market, timeout_seconds=3)
    other = adapter_for(adapter.account)
    kis_sim.inject("lost", MARKETS[market][1])
    kis_sim.inject("timeout", MARKETS[market][1], delay=2.0)
    first, second = market_order(market, cid="first"), market_order(market, cid="second")
    with pytest.raises(OrderUncertain):
        adapter.place_order(first)
    answers: list[Any] = []
    in_flight = threading.Thread(target=lambda: answers.append(other.place_order(second)))
    in_flight.start()
    while not kis_sim.orders:  # the venue has the second order; its answer is on the way
        pass

    with pytest.raises(RetryableVenueError, match="같은 종류의 주문이 전송 중입니다"):
        adapter.fetch_order_by_client_id(first)
    in_flight.join()
    assert adapter.fetch_order_by_client_id(first) is None
    placed = adapter.place_order(first)

    assert [o["odno"] for o in kis_sim.orders] == [answers[0].exchange_order_id, placed.exchange_order_id]


def test_overseas_lookup_asks_from_the_day_before_in_exchange_dates(
    kis_account: Any, kis_sim: KisSim
) -> None:
    adapter = market_adapter(kis_account, "OVERSEAS_STOCK")
    kis_sim.inject("timeout", MARKETS["OVERSEAS_STOCK"][1], delay=2.0)
    order = market_order("OVERSEAS_STOCK")
    with pytest.raises(OrderUncertain):
        adapter.place_order(order)

    assert adapter.fetch_order_by_client_id(order) is not None
    [inquiry] = kis_sim.seen("/uapi/overseas-stock/v1/trading/inquire-ccnl")
    today = datetime.now(KST).date()
    assert inquiry.header("tr_id") == "TTTS3035R"
    assert {k: inquiry.query[k] for k in ("PDNO", "OVRS_EXCG_CD", "SLL_BUY_DVSN", "ODNO")} == {
        "PDNO": "AAPL",
        "OVRS_EXCG_CD": "NASD",
        "SLL_BUY_DVSN": "02",
        "ODNO": "",
    }
    assert (inquiry.query["ORD_STRT_DT"], inquiry.query["ORD_END_DT"]) == (
        (today - timedelta(days=1)).strftime("%Y%m%d"),
        today.strftime("%Y%m%d"),
    )


def test_virtual_overseas_lookup_sends_the_unfiltered_query(kis_account: Any) -> None:
    sim = KisSim(virtual=True)
    sim.start()
    try:
        account = kis_account("kis-virtual", timeout_seconds=1.0)
        account.is_testnet = True
        account.settings = {**account.settings, "api_base_url": sim.base_url}
        account.save()
        adapter = adapter_for(account)
        adapter.client.token()
        sim.inject("timeout", MARKETS["OVERSEAS_STOCK"][1], delay=2.0)
        order = market_order("OVERSEAS_STOCK")
        with pytest.raises(OrderUncertain):
            adapter.place_order(order)

        found = adapter.fetch_order_by_client_id(order)

        assert found is not None and found.exchange_order_id == sim.orders[0]["odno"]
        [inquiry] = sim.seen("/uapi/overseas-stock/v1/trading/inquire-ccnl")
        assert inquiry.header("tr_id") == "VTTS3035R"
        assert (inquiry.query["PDNO"], inquiry.query["OVRS_EXCG_CD"], inquiry.query["SLL_BUY_DVSN"]) == (
            "",
            "",
            "00",
        )
    finally:
        sim.stop()


def test_night_session_order_is_found_in_the_night_list(kis_account: Any, kis_sim: KisSim) -> None:
    adapter = market_adapter(kis_account, "DOMESTIC_FUTUREOPTION")
    kis_sim.inject("timeout", MARKETS["DOMESTIC_FUTUREOPTION"][1], delay=2.0)
    order = market_order("DOMESTIC_FUTUREOPTION", params={"session": "night"})
    with pytest.raises(OrderUncertain):
        adapter.place_order(order)

    found = adapter.fetch_order_by_client_id(order)

    assert found is not None and found.exchange_order_id == kis_sim.orders[0]["odno"]
    [inquiry] = kis_sim.seen("/uapi/domestic-futureoption/v1/trading/inquire-ngt-ccnl")
    assert inquiry.header("tr_id") == "STTN5201R"
    assert kis_sim.seen("/uapi/domestic-futureoption/v1/trading/inquire-ccnl") == []


def test_the_lookup_reads_every_page_of_the_order_list(kis_account: Any, kis_sim: KisSim) -> None:
    adapter = market_adapter(kis_account, "OVERSEAS_FUTUREOPTION")
    kis_sim.page_size = 2
    for i in range(4):  # orders of another kind before it
        adapter.place_order(market_order("OVERSEAS_FUTUREOPTION", cid=f"other{i}", qty="1"))
    kis_sim.inject("timeout", MARKETS["OVERSEAS_FUTUREOPTION"][1], delay=2.0)
    order = market_order("OVERSEAS_FUTUREOPTION")
    with pytest.raises(OrderUncertain):
        adapter.place_order(order)
    read_before = len(kis_sim.seen(INQUIRY["OVERSEAS_FUTUREOPTION"]))  # after each placement

    found = adapter.fetch_order_by_client_id(order)

    assert found is not None and found.exchange_order_id == kis_sim.orders[-1]["odno"]
    pages = kis_sim.seen(INQUIRY["OVERSEAS_FUTUREOPTION"])[read_before:]
    assert [p.header("tr_cont") for p in pages] == ["", "N", "N"]


@OTHER_MARKETS
def test_an_answered_order_reads_its_state_at_the_venue(
    kis_account: Any, kis_sim: KisSim, market: str
) -> None:
    adapter = market_adapter(kis_account, market)
    order = market_order(market, order_type="LIMIT", price=D(RESTING[market]))
    placed = adapter.place_order(order)
    assert adapter.fetch_order_by_client_id(order).status == OrderStatus.OPEN

    kis_sim.fill_order(placed.exchange_order_id)
    filled = adapter.fetch_order_by_client_id(order)

    assert (filled.status, filled.filled_qty, filled.avg_price) == (
        OrderStatus.FILLED,
        D("2"),
        D(RESTING[market]),
    )
    assert filled.exchange_order_id == placed.exchange_order_id


@OTHER_MARKETS
def test_a_cancelled_order_reads_cancelled(kis_account: Any, kis_sim: KisSim, market: str) -> None:
    adapter = market_adapter(kis_account, market)
    order = market_order(market, order_type="LIMIT", price=D(RESTING[market]))
    adapter.place_order(order)

    assert adapter.cancel_all(market, None) == 1
    assert adapter.fetch_order_by_client_id(order).status == OrderStatus.CANCELLED


def test_fetch_order_by_client_id_of_a_never_sent_order_is_none(kis_account: Any) -> None:
    assert adapter_for(kis_account()).fetch_order_by_client_id(req(cid="never")) is None


def test_a_token_close_to_its_expiry_is_replaced_before_use(kis_account: Any, kis_sim: KisSim) -> None:
    import time

    adapter = adapter_for(kis_account())
    old = adapter.client.token()
    # 30 minutes left: inside the refresh window; the one-a-minute marker has passed.
    cache.set(adapter.client._token_key, {"access_token": old, "expires_at": time.time() + 1800})
    cache.delete(adapter.client._token_issued_key)
    kis_sim.last_token_at.clear()

    new = adapter.client.token()

    assert new != old
    assert kis_sim.token_requests == 2
    assert adapter.client.token() == new  # cached again: no third request
    assert kis_sim.token_requests == 2


def test_overseas_cash_is_asked_as_the_official_sample_asks_it(kis_account: Any, kis_sim: KisSim) -> None:
    kis_sim.cash_usd = D("1234.56")
    holdings = adapter_for(kis_account()).holdings("OVERSEAS_STOCK")
    assert holdings.balances["USD"].total == D("1234.56")
    [inquiry] = kis_sim.seen("/uapi/overseas-stock/v1/trading/inquire-present-balance")
    assert inquiry.header("tr_id") == "CTRP6504R"
    assert {k: inquiry.query[k] for k in ("WCRC_FRCR_DVSN_CD", "NATN_CD", "TR_MKET_CD", "INQR_DVSN_CD")} == {
        "WCRC_FRCR_DVSN_CD": "02",
        "NATN_CD": "000",
        "TR_MKET_CD": "00",
        "INQR_DVSN_CD": "00",
    }


def test_overseas_cash_on_a_virtual_account_uses_vtrp6504r(kis_account: Any) -> None:
    sim = KisSim(virtual=True)
    sim.start()
    try:
        account = kis_account("kis-virtual")
        account.is_testnet = True
        account.settings = {**account.settings, "api_base_url": sim.base_url}
        account.save()
        assert adapter_for(account).holdings("OVERSEAS_STOCK").balances["USD"].total == sim.cash_usd
        [inquiry] = sim.seen("/uapi/overseas-stock/v1/trading/inquire-present-balance")
        assert inquiry.header("tr_id") == "VTRP6504R"
    finally:
        sim.stop()


def test_present_balance_without_a_country_is_refused_by_the_simulator(kis_account: Any) -> None:
    adapter = adapter_for(kis_account())
    assert isinstance(adapter, KisAdapter)
    params = {"CANO": "12345678", "ACNT_PRDT_CD": "01", "WCRC_FRCR_DVSN_CD": "02", "TR_MKET_CD": "00"}
    with pytest.raises(PermanentVenueError, match="NATN_CD"):
        adapter.client.request(
            "GET",
            "/uapi/overseas-stock/v1/trading/inquire-present-balance",
            "CTRP6504R",
            params={**params, "INQR_DVSN_CD": "00"},
        )


def test_domestic_futureoption_cash_is_dnca_cash(kis_account: Any, kis_sim: KisSim) -> None:
    kis_sim.fo_cash_krw = D("7654321")
    holdings = adapter_for(kis_account(product_code="03")).holdings("DOMESTIC_FUTUREOPTION")
    assert {a: b.total for a, b in holdings.balances.items()} == {"KRW": D("7654321")}
    # Positions and cash come from one 잔고현황 answer.
    assert len(kis_sim.seen("/uapi/domestic-futureoption/v1/trading/inquire-balance")) == 1


def test_overseas_futureoption_deposit_is_asked_for_today_in_total_usd(
    kis_account: Any, kis_sim: KisSim
) -> None:
    kis_sim.ofo_cash_usd = D("4321.5")
    holdings = adapter_for(kis_account(product_code="08")).holdings("OVERSEAS_FUTUREOPTION")
    assert {a: b.total for a, b in holdings.balances.items()} == {"USD": D("4321.5")}
    [inquiry] = kis_sim.seen("/uapi/overseas-futureoption/v1/trading/inquire-deposit")
    assert inquiry.header("tr_id") == "OTFM1411R"
    assert (inquiry.query["CRCY_CD"], inquiry.query["INQR_DT"]) == ("TUS", DAYTIME.strftime("%Y%m%d"))
