"""Recorded Binance answers (tests/venues/recorded/binance/, each with its source) replayed
against the Binance simulator: for the same request the simulator must answer with the same
fields, the same JSON types, the same states and the same error codes. What a replay cannot
reproduce (the venue's ids, the moment, a symbol the simulator does not list) is listed in the
recording's ``exempt`` with the reason, and compared by type only."""

from __future__ import annotations

import json
import re
import time
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import pytest
import requests

from venuesim.binance import BinanceSim
from venuesim.core import hmac_sha256

RECORDED = Path(__file__).parent / "recorded" / "binance"
# Fields whose value is a state the replay reproduces: compared by value unless exempt.
STATE_FIELDS = {
    "status",
    "type",
    "side",
    "timeInForce",
    "origType",
    "positionSide",
    "workingType",
    "reduceOnly",
    "closePosition",
    "priceProtect",
    "priceMatch",
    "isWorking",
    "orderListId",
    "fills",
    "goodTillDate",
    "code",
    "msg",
    "algoType",
    "orderType",
    "algoStatus",
    "actualOrderId",
    "tpOrderType",
    "triggerTime",
}
# Words of an ``exempt`` key standing for several fields.
GROUPS = {
    "quantities": [
        "origQty",
        "executedQty",
        "cummulativeQuoteQty",
        "origQuoteOrderQty",
        "cumQuote",
        "cumQty",
        "avgPrice",
    ],
    "price": ["price", "stopPrice"],
}
# Recorded fields the simulator does not send at all (the exemption says why).
ABSENT_OK = {"spot_new_order": {"icebergQty"}}
CID = "qt-fidelity-1"
RESTING_SPOT = {
    "symbol": "BTCUSDT",
    "side": "BUY",
    "type": "LIMIT",
    "timeInForce": "GTC",
    "quantity": "0.001",
    "price": "40000",
}
RESTING_USDM = {**RESTING_SPOT, "quantity": "0.002", "price": "50000"}
# A take-profit sell above the market: it waits in the algo book.
RESTING_ALGO = {
    "algoType": "CONDITIONAL",
    "symbol": "BTCUSDT",
    "side": "SELL",
    "type": "TAKE_PROFIT",
    "timeInForce": "GTC",
    "quantity": "0.002",
    "price": "60000",
    "triggerPrice": "60000",
}

# name -> (setup requests, the replayed request); the client id is CID throughout.
REPLAYS: dict[str, tuple[list[tuple[str, str, dict[str, str]]], tuple[str, str, dict[str, str]]]] = {
    "spot_new_order": (
        [],
        (
            "POST",
            "/api/v3/order",
            {
                "symbol": "SOLUSDT",
                "side": "BUY",
                "type": "LIMIT",
                "timeInForce": "GTC",
                "quantity": "0.05",
                "price": "241",
            },
        ),
    ),
    "spot_query_order_filled": (
        [
            (
                "POST",
                "/api/v3/order",
                {"symbol": "BTCUSDT", "side": "SELL", "type": "MARKET", "quantity": "0.001"},
            )
        ],
        ("GET", "/api/v3/order", {"symbol": "BTCUSDT", "origClientOrderId": CID}),
    ),
    "spot_open_orders": (
        [("POST", "/api/v3/order", RESTING_SPOT)],
        ("GET", "/api/v3/openOrders", {"symbol": "BTCUSDT"}),
    ),
    "spot_cancel_order": (
        [("POST", "/api/v3/order", RESTING_SPOT)],
        ("DELETE", "/api/v3/order", {"symbol": "BTCUSDT", "origClientOrderId": CID}),
    ),
    "spot_error_no_such_order": (
        [],
        ("GET", "/api/v3/order", {"symbol": "BTCUSDT", "origClientOrderId": CID}),
    ),
    "spot_error_duplicate_order": (
        [("POST", "/api/v3/order", RESTING_SPOT)],
        ("POST", "/api/v3/order", RESTING_SPOT),
    ),
    "usdm_new_order": (
        [],
        (
            "POST",
            "/fapi/v1/order",
            {
                "symbol": "BTCUSDT",
                "side": "SELL",
                "type": "LIMIT",
                "timeInForce": "GTC",
                "quantity": "0.002",
                "price": "110001",
            },
        ),
    ),
    "usdm_query_open_order": (
        [("POST", "/fapi/v1/order", RESTING_USDM)],
        ("GET", "/fapi/v1/openOrder", {"symbol": "BTCUSDT", "origClientOrderId": CID}),
    ),
    "usdm_query_order": (
        [("POST", "/fapi/v1/order", RESTING_USDM)],
        ("GET", "/fapi/v1/order", {"symbol": "BTCUSDT", "origClientOrderId": CID}),
    ),
    "usdm_query_algo_order": (
        [
            ("POST", "/fapi/v1/algoOrder", {**RESTING_ALGO, "clientAlgoId": CID}),
            ("DELETE", "/fapi/v1/algoOrder", {"clientAlgoId": CID}),
        ],
        ("GET", "/fapi/v1/algoOrder", {"clientAlgoId": CID}),
    ),
    "usdm_error_no_such_order": (
        [],
        ("GET", "/fapi/v1/order", {"symbol": "BTCUSDT", "origClientOrderId": CID}),
    ),
    "usdm_error_duplicate_order": (
        [("POST", "/fapi/v1/order", RESTING_USDM)],
        ("POST", "/fapi/v1/order", RESTING_USDM),
    ),
}


def signed(sim: BinanceSim, method: str, path: str, params: dict[str, str]) -> requests.Response:
    """One request signed as Binance wants it (HMAC-SHA256 of the query string)."""
    query = urlencode({**params, "timestamp": str(int(time.time() * 1000))})
    signature = hmac_sha256("sim-secret", query).hex()
    return requests.request(
        method,
        f"{sim.base_url}{path}?{query}&signature={signature}",
        headers={"X-MBX-APIKEY": "sim-key"},
        timeout=5,
    )


def exempt_fields(recording: dict[str, Any]) -> set[str]:
    names: set[str] = set()
    for key in recording.get("exempt", {}):
        for word in key.split(","):
            word = word.strip()
            names.update(GROUPS.get(word, [word]))
    return names


def same_type(recorded: Any, replayed: Any, integers_as_strings: bool) -> bool:
    if integers_as_strings and isinstance(recorded, str) and re.fullmatch(r"-?\d+", recorded):
        return isinstance(replayed, int | str) and not isinstance(replayed, bool)
    return type(recorded) is type(replayed)


def compare(name: str, recorded: Any, replayed: Any, recording: dict[str, Any]) -> list[str]:
    """The differences between a recorded answer object and the simulator's, as messages."""
    exempt = exempt_fields(recording)
    as_strings = bool(recording.get("integers_as_strings"))
    problems = []
    absent_ok = ABSENT_OK.get(name, set())
    for field, value in recorded.items():
        if field not in replayed:
            if field not in absent_ok:
                problems.append(f"missing field {field}")
            continue
        got = replayed[field]
        if not same_type(value, got, as_strings):
            problems.append(f"{field}: type {type(got).__name__}, recorded {type(value).__name__}")
        elif field in STATE_FIELDS and field not in exempt and str(value) != str(got):
            problems.append(f"{field}: {got!r}, recorded {value!r}")
        elif isinstance(value, str) and re.fullmatch(r"-?\d+\.\d+", value):
            try:
                Decimal(str(got))
            except InvalidOperation:
                problems.append(f"{field}: {got!r} is not a decimal string")
    extra_ok = set(recording.get("extra_ok", []))
    problems += [
        f"extra field {field}" for field in replayed if field not in recorded and field not in extra_ok
    ]
    return problems


@pytest.mark.parametrize("name", sorted(REPLAYS))
def test_the_simulator_answers_as_binance_did(binance_sim: BinanceSim, name: str) -> None:
    recording = json.loads((RECORDED / f"{name}.json").read_text())
    assert recording["source"] and ("commit" in recording["source"] or "version" in recording["source"])
    setup, (method, path, params) = REPLAYS[name]
    for setup_method, setup_path, setup_params in setup:
        answer = signed(binance_sim, setup_method, setup_path, {**setup_params, "newClientOrderId": CID})
        assert answer.status_code == 200, answer.text
    if method == "POST":
        params = {**params, "newClientOrderId": CID}

    answer = signed(binance_sim, method, path, params)

    assert answer.status_code == recording["status"], answer.text
    recorded, replayed = recording["answer"], answer.json()
    if isinstance(recorded, list):
        assert isinstance(replayed, list) and len(replayed) == len(recorded)
        pairs = list(zip(recorded, replayed, strict=True))
    else:
        pairs = [(recorded, replayed)]
    problems = [p for rec, rep in pairs for p in compare(name, rec, rep, recording)]
    assert problems == [], problems


def test_every_recording_is_replayed() -> None:
    assert sorted(p.stem for p in RECORDED.glob("*.json")) == sorted(REPLAYS)
    spot = [n for n in REPLAYS if n.startswith("spot_")]
    usdm = [n for n in REPLAYS if n.startswith("usdm_")]
    assert len(spot) >= 5 and len(usdm) >= 5
