"""The KIS simulator against the recorded answers of tests/venues/recorded/kis/ (official
koreainvestment/open-trading-api material, source and commit in each file).

The official samples carry field lists, not literal answers, for the order APIs: for those
(``shape_only``) the request is the sample's own field list and the answer is compared by
shape — the envelope (rt_cd, msg_cd, msg1), every row value a string, every field the
simulator sends one KIS documents (key case aside: the samples spell some in lower case and
some in upper), the fields each file says the adapter reads present — and by paging (tr_cont,
page sizes). The error files are literal answers and are compared as they are.
"""

from __future__ import annotations

import json
from datetime import datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
import requests

from orders.exchanges import adapter_for
from orders.exchanges.kis.sessions import KST
from venuesim.kis import KisSim

RECORDED = Path(__file__).parent / "recorded" / "kis"
FILES = sorted(RECORDED.glob("*.json"))
DAYTIME = datetime(2026, 12, 1, 10, 0, tzinfo=KST)
TODAY = "20261201"

# Values for the sample's request fields (anything not here is sent blank, as the samples do
# for optional fields).
VALUES: dict[str, str] = {
    "CANO": "12345678",
    "INQR_STRT_DT": TODAY,
    "INQR_END_DT": TODAY,
    "ORD_STRT_DT": "20261130",
    "ORD_END_DT": TODAY,
    "STRT_ORD_DT": TODAY,
    "END_ORD_DT": "20261202",
    "SLL_BUY_DVSN_CD": "00",
    "SLL_BUY_DVSN": "00",
    "CCLD_DVSN": "00",
    "CCLD_NCCS_DVSN": "00",
    "INQR_DVSN": "00",
    "INQR_DVSN_1": "0",
    "INQR_DVSN_2": "0",
    "INQR_DVSN_3": "00",
    "SORT_SQN": "DS",
    "OVRS_EXCG_CD": "NASD",
    "EXCG_ID_DVSN_CD": "ALL",
    "MGNA_DVSN": "01",
    "EXCC_STAT_CD": "1",
    "FUOP_DVSN": "00",
    "SCRN_DVSN": "02",
}
PER_FILE: dict[str, dict[str, str]] = {
    "overseas_futureoption_inquire_ccld.json": {"CCLD_NCCS_DVSN": "01", "SLL_BUY_DVSN_CD": "%%"},
    "overseas_stock_inquire_ccnl.json": {"PDNO": "%", "OVRS_EXCG_CD": "%"},
}
# What the adapter reads from each answer (these must be present).
READS: dict[str, set[str]] = {
    "domestic_stock_order_cash.json": {"odno", "krx_fwdg_ord_orgno"},
    "domestic_stock_inquire_daily_ccld.json": {
        "odno",
        "pdno",
        "ord_qty",
        "tot_ccld_qty",
        "cncl_yn",
        "rjct_qty",
    },
    "domestic_stock_inquire_psbl_rvsecncl.json": {"odno", "pdno", "ord_qty", "ord_gno_brno", "ord_dvsn_cd"},
    "overseas_stock_order.json": {"odno"},
    "overseas_stock_inquire_ccnl.json": {
        "odno",
        "pdno",
        "ft_ord_qty",
        "ft_ccld_qty",
        "nccs_qty",
        "prcs_stat_name",
    },
    "overseas_stock_inquire_nccs.json": {
        "odno",
        "pdno",
        "ft_ord_qty",
        "ft_ccld_qty",
        "nccs_qty",
        "ovrs_excg_cd",
    },
    "domestic_futureoption_order.json": {"odno"},
    "domestic_futureoption_inquire_ccnl.json": {"odno", "pdno", "ord_qty", "tot_ccld_qty", "qty", "rjct_qty"},
    "domestic_futureoption_inquire_ngt_ccnl.json": {
        "odno",
        "pdno",
        "ord_qty",
        "tot_ccld_qty",
        "qty",
        "rjct_qty",
    },
    "domestic_futureoption_inquire_ngt_balance.json": {"shtn_pdno", "cblc_qty", "sll_buy_dvsn_cd"},
    "overseas_futureoption_order.json": {"odno", "ord_dt"},
    "overseas_futureoption_inquire_ccld.json": {
        "odno",
        "ovrs_futr_fx_pdno",
        "fm_ord_qty",
        "fm_ccld_qty",
        "fm_ord_rmn_qty",
    },
}
# Fields the simulator sends that the official field list of that API does not have, with why.
EXEMPT: dict[str, dict[str, str]] = {}


def load(path: Path) -> dict[str, Any]:
    return dict(json.loads(path.read_text(encoding="utf-8")))


def test_every_market_has_five_recorded_answers() -> None:
    kinds: dict[str, set[str]] = {}
    for path in FILES:
        record = load(path)
        assert record["source"]["repo"] == "koreainvestment/open-trading-api"
        assert len(record["source"]["commit"]) == 40
        kinds.setdefault(record["market"], set()).add(record["kind"])
    for market in ("DOMESTIC_STOCK", "OVERSEAS_STOCK", "DOMESTIC_FUTUREOPTION", "OVERSEAS_FUTUREOPTION"):
        assert {"placement", "lookup", "cancel", "error"} <= kinds[market], market
        assert "open_orders" in kinds[market] or market == "OVERSEAS_FUTUREOPTION", market
        assert len([p for p in FILES if load(p)["market"] == market]) >= 4


@pytest.fixture
def sim(kis_sim: KisSim, kis_account: Any, kst_clock: Any) -> tuple[KisSim, dict[str, str]]:
    """The simulator with an order resting in each market and a night position, and the
    headers of an authorised request."""
    kst_clock(DAYTIME)
    kis_sim.clock = lambda: DAYTIME
    adapter = adapter_for(kis_account())
    token = adapter.client.token()
    with kis_sim.lock:
        kis_sim._new_order(
            "domestic", pdno="005930", side="BUY", qty=Decimal(1), price=Decimal(60000), dvsn="00", excg="KRX"
        )
        kis_sim._new_order(
            "overseas", pdno="AAPL", excg="NASD", side="BUY", qty=Decimal(1), price=Decimal(150), dvsn="00"
        )
        kis_sim._new_order(
            "dfo",
            pdno="101TC000",
            side="BUY",
            qty=Decimal(1),
            price=Decimal(300),
            dvsn="01",
            excg="KRX",
            session="TTTO1101U",
        )
        kis_sim._new_order(
            "dfo",
            pdno="101TC000",
            side="BUY",
            qty=Decimal(1),
            price=Decimal(300),
            dvsn="01",
            excg="KRX",
            session="STTN1101U",
        )
        kis_sim._new_order(
            "ofo", pdno="NQH5", side="BUY", qty=Decimal(1), price=Decimal(15000), dvsn="1", excg="", stop=""
        )
        kis_sim.fo_night_positions["101TC000"] = Decimal(2)
    headers = {
        "appkey": "sim-appkey",
        "appsecret": "sim-appsecret",
        "authorization": f"Bearer {token}",
        "custtype": "P",
        "content-type": "application/json; charset=utf-8",
    }
    return kis_sim, headers


def send(
    sim: KisSim, headers: dict[str, str], request: dict[str, Any], fields: dict[str, str], tr_cont: str = ""
) -> requests.Response:
    url = sim.base_url + request["path"]
    head = {**headers, "tr_id": request["tr_id"], "tr_cont": tr_cont}
    if request["method"] == "GET":
        return requests.get(url, params=fields, headers=head, timeout=5)
    return requests.post(url, data=json.dumps(fields), headers=head, timeout=5)


def order_fields(sim: KisSim, name: str) -> dict[str, str]:
    """The placement and cancel bodies: the sample's fields with values for an order that can be
    placed (or the resting order to cancel)."""
    odno = {o["market"]: o["odno"] for o in sim.orders}
    return {
        "domestic_stock_order_cash.json": {
            "PDNO": "005930",
            "ORD_DVSN": "00",
            "ORD_QTY": "1",
            "ORD_UNPR": "60000",
            "EXCG_ID_DVSN_CD": "KRX",
        },
        "domestic_stock_order_rvsecncl.json": {
            "ORGN_ODNO": odno["domestic"],
            "KRX_FWDG_ORD_ORGNO": "91252",
            "ORD_DVSN": "00",
            "RVSE_CNCL_DVSN_CD": "02",
            "ORD_QTY": "0",
            "ORD_UNPR": "0",
            "QTY_ALL_ORD_YN": "Y",
            "EXCG_ID_DVSN_CD": "KRX",
        },
        "overseas_stock_order.json": {
            "OVRS_EXCG_CD": "NASD",
            "PDNO": "AAPL",
            "ORD_QTY": "1",
            "OVRS_ORD_UNPR": "150.00",
            "ORD_SVR_DVSN_CD": "0",
            "ORD_DVSN": "00",
        },
        "overseas_stock_order_rvsecncl.json": {
            "OVRS_EXCG_CD": "NASD",
            "PDNO": "AAPL",
            "ORGN_ODNO": odno["overseas"],
            "RVSE_CNCL_DVSN_CD": "02",
            "ORD_QTY": "1",
            "OVRS_ORD_UNPR": "0",
            "ORD_SVR_DVSN_CD": "0",
        },
        "domestic_futureoption_order.json": {
            "ORD_PRCS_DVSN_CD": "02",
            "SLL_BUY_DVSN_CD": "02",
            "SHTN_PDNO": "101TC000",
            "ORD_QTY": "1",
            "UNIT_PRICE": "300",
            "NMPR_TYPE_CD": "01",
            "KRX_NMPR_CNDT_CD": "0",
            "ORD_DVSN_CD": "01",
        },
        "domestic_futureoption_order_rvsecncl.json": {
            "ORD_PRCS_DVSN_CD": "02",
            "RVSE_CNCL_DVSN_CD": "02",
            "ORGN_ODNO": odno["dfo"],
            "ORD_QTY": "0",
            "UNIT_PRICE": "0",
            "NMPR_TYPE_CD": "01",
            "KRX_NMPR_CNDT_CD": "0",
            "RMN_QTY_YN": "Y",
            "ORD_DVSN_CD": "01",
        },
        "overseas_futureoption_order.json": {
            "OVRS_FUTR_FX_PDNO": "NQH5",
            "SLL_BUY_DVSN_CD": "02",
            "PRIC_DVSN_CD": "1",
            "FM_LIMIT_ORD_PRIC": "15000",
            "FM_ORD_QTY": "1",
            "CCLD_CNDT_CD": "6",
            "CPLX_ORD_DVSN_CD": "0",
            "ECIS_RSVN_ORD_YN": "N",
            "FM_HDGE_ORD_SCRN_YN": "N",
        },
        "overseas_futureoption_order_rvsecncl.json": {
            "ORGN_ORD_DT": TODAY,
            "ORGN_ODNO": odno["ofo"],
            "FM_HDGE_ORD_SCRN_YN": "N",
            "FM_MKPR_CVSN_YN": "N",
        },
    }.get(name, {})


SHAPES = [p for p in FILES if load(p)["shape_only"]]


@pytest.mark.parametrize("path", SHAPES, ids=[p.name for p in SHAPES])
def test_the_simulator_answers_in_the_recorded_shape(sim: tuple[KisSim, dict[str, str]], path: Path) -> None:
    kis_sim, headers = sim
    record = load(path)
    request = record["request"]
    fields = {name: VALUES.get(name, "") for name in request["fields"]}
    fields |= PER_FILE.get(path.name, {})
    fields |= order_fields(kis_sim, path.name)

    response = send(kis_sim, headers, request, fields)
    body = response.json()

    assert (response.status_code, body["rt_cd"]) == (200, "0"), body
    assert isinstance(body["msg_cd"], str) and isinstance(body["msg1"], str) and body["msg1"]
    rows = body[record["answer"]["rows"]]
    rows = rows if isinstance(rows, list) else [rows]
    assert rows, body
    documented = {name.lower() for name in record["answer"]["documented_fields"]}
    exempt = EXEMPT.get(path.name, {})
    for row in rows:
        assert all(isinstance(value, str) for value in row.values()), row
        sent = {name.lower() for name in row}
        assert sent - documented - set(exempt) == set(), (
            f"fields KIS does not document: {sorted(sent - documented)}"
        )
        assert READS.get(path.name, set()) <= sent
    if request["method"] == "GET":
        assert response.headers.get("tr_cont") in ("D", "E", "M", "F"), response.headers


@pytest.mark.parametrize(("virtual", "size"), [(False, 100), (True, 15)])
def test_the_domestic_order_list_pages_at_kis_page_sizes(virtual: bool, size: int) -> None:
    """inquire_daily_ccld: 100 rows a call (모의 15), continued with tr_cont N and CTX_AREA_NK100."""
    record = load(RECORDED / "domestic_stock_inquire_daily_ccld.json")
    assert record["page_size"] == {"real": 100, "virtual": 15}
    kis_sim = KisSim(virtual=virtual)
    kis_sim.start()
    try:
        kis_sim.clock = lambda: DAYTIME
        for _ in range(size + 1):
            kis_sim._new_order(
                "domestic",
                pdno="005930",
                side="BUY",
                qty=Decimal(1),
                price=Decimal(60000),
                dvsn="00",
                excg="KRX",
            )
        token = requests.post(
            kis_sim.base_url + "/oauth2/tokenP",
            json={"grant_type": "client_credentials", "appkey": "sim-appkey", "appsecret": "sim-appsecret"},
            timeout=5,
        ).json()["access_token"]
        headers = {
            "appkey": "sim-appkey",
            "appsecret": "sim-appsecret",
            "authorization": f"Bearer {token}",
            "custtype": "P",
        }
        request = {**record["request"], "tr_id": "VTTC0081R" if virtual else "TTTC0081R"}
        fields = {name: VALUES.get(name, "") for name in request["fields"]}
        first = send(kis_sim, headers, request, fields)
        second = send(
            kis_sim, headers, request, {**fields, "CTX_AREA_NK100": first.json()["ctx_area_nk100"]}, "N"
        )
    finally:
        kis_sim.stop()

    assert (len(first.json()["output1"]), first.headers["tr_cont"]) == (size, "M")
    assert (len(second.json()["output1"]), second.headers["tr_cont"]) == (1, "D")


ERRORS = [p for p in FILES if load(p)["kind"] == "error"]


@pytest.mark.parametrize("path", ERRORS, ids=[p.name for p in ERRORS])
def test_the_simulator_answers_the_recorded_error(sim: tuple[KisSim, dict[str, str]], path: Path) -> None:
    kis_sim, headers = sim
    record = load(path)
    kis_sim.inject("rate_limit", record["request"]["path"])

    body = send(kis_sim, headers, record["request"], {}).json()

    assert body == record["answer"]["literal"]
