"""End to end on a real server: daphne on a port, the `websockets` client, HTTP with requests.

The seed report's bug — REST serving a daily close (58,200, float) while the WebSocket served the
live price (158,600, int) — is the regression checked here: for the same instrument at the same
moment REST and WebSocket give the same fields, values and JSON types.
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import pytest
import requests
import websockets

from tests.prices.conftest import redis_url, requires_redis
from tests.prices.live import daphne, manage, server_env

INSTRUMENTS = ("005930", "BINANCE:BTC/USDT")


def _types(record: dict[str, Any]) -> dict[str, str]:
    return {key: type(value).__name__ for key, value in record.items()}


async def _subscribe(ws: Any, instruments: tuple[str, ...]) -> None:
    assert json.loads(await ws.recv())["type"] == "connected"
    for instrument in instruments:
        await ws.send(json.dumps({"type": "subscribe", "topic": f"price:{instrument}"}))


async def _updates_until(
    ws: Any, want: dict[str, str], seen: dict[tuple[str, str], dict], timeout: float
) -> None:
    """Read price updates until one per instrument matches the wanted timestamp."""
    async with asyncio.timeout(timeout):
        while not all((i, ts) in seen for i, ts in want.items()):
            message = json.loads(await ws.recv())
            if message["type"] == "price_update":
                seen[(message["ticker"], message["data"]["timestamp"])] = message["data"]


def test_embedded_server_rest_and_websocket_agree(tmp_path: Path) -> None:
    """Embedded mode: simulated feed thread in the server process, ticks pushed to the client."""
    env = server_env(tmp_path)
    with daphne(env, "tests.prices.embedded_asgi:application") as port:
        base = f"http://127.0.0.1:{port}"

        async def scenario() -> None:
            async with websockets.connect(f"ws://127.0.0.1:{port}/ws", origin=base) as ws:
                await _subscribe(ws, INSTRUMENTS)
                seen: dict[tuple[str, str], dict] = {}
                # A few live ticks arrive (the feed ticks every 0.3 s) ...
                async with asyncio.timeout(5):
                    while len(seen) < 6:
                        message = json.loads(await ws.recv())
                        if message["type"] == "price_update":
                            seen[(message["ticker"], message["data"]["timestamp"])] = message["data"]
                # ... and REST at any moment equals the WebSocket record with that timestamp.
                rest = await asyncio.to_thread(
                    lambda: requests.get(
                        f"{base}/api/prices", params={"ids": ",".join(INSTRUMENTS)}, timeout=5
                    ).json()
                )
                want = {i: rest["prices"][i]["timestamp"] for i in INSTRUMENTS}
                await _updates_until(ws, want, seen, 5)
                for instrument, timestamp in want.items():
                    ws_record = seen[(instrument, timestamp)]
                    assert ws_record == rest["prices"][instrument]
                    assert _types(ws_record) == _types(rest["prices"][instrument])
                    assert ws_record["source"] == "simulated" and ws_record["feed"] == "simulated"
                assert type(rest["prices"]["005930"]["price"]) is int
                assert type(rest["prices"]["BINANCE:BTC/USDT"]["price"]) is float

        asyncio.run(scenario())


def test_foreign_origin_is_refused_by_the_server(tmp_path: Path) -> None:
    with daphne(server_env(tmp_path)) as port:

        async def scenario() -> None:
            with pytest.raises(websockets.exceptions.InvalidStatus) as refused:
                async with websockets.connect(f"ws://127.0.0.1:{port}/ws", origin="https://evil.example.org"):
                    pass
            assert refused.value.response.status_code == 403
            async with websockets.connect(
                f"ws://127.0.0.1:{port}/ws", origin=f"http://localhost:{port}"
            ) as ws:
                assert json.loads(await ws.recv())["type"] == "connected"

        asyncio.run(scenario())


@pytest.mark.redis
@requires_redis
def test_redis_mode_tick_from_another_process_reaches_websocket_and_rest(tmp_path: Path) -> None:
    """Distributed mode: `publish_price` in a second process; the web process pushes and serves it."""
    env = server_env(tmp_path, REDIS_URL=redis_url(), QT_ALLOW_LOCAL_SECRETS="1", PRICE_FEEDS="")
    with daphne(env) as port:
        base = f"http://127.0.0.1:{port}"

        async def scenario() -> None:
            async with websockets.connect(f"ws://127.0.0.1:{port}/ws", origin=base) as ws:
                await _subscribe(ws, INSTRUMENTS)
                for _ in INSTRUMENTS:
                    assert json.loads(await ws.recv())["type"] == "subscribed"
                for args in (
                    (
                        "005930",
                        "--price",
                        "158600",
                        "--change",
                        "-700",
                        "--volume",
                        "36358081",
                        "--bid",
                        "158500",
                        "--ask",
                        "158600",
                    ),
                    (
                        "BINANCE:BTC/USDT",
                        "--price",
                        "67123.45",
                        "--change",
                        "-120.5",
                        "--bid",
                        "67123.44",
                        "--ask",
                        "67123.46",
                    ),
                ):
                    done = await asyncio.to_thread(manage, env, "publish_price", *args)
                    assert done.returncode == 0, done.stderr
                received: dict[str, dict] = {}
                async with asyncio.timeout(10):
                    while len(received) < 2:
                        message = json.loads(await ws.recv())
                        if message["type"] == "price_update":
                            received[message["ticker"]] = message["data"]
                for instrument in INSTRUMENTS:
                    rest = await asyncio.to_thread(
                        lambda i=instrument: requests.get(f"{base}/api/prices/{i}", timeout=5).json()
                    )
                    assert rest == received[instrument]
                    assert _types(rest) == _types(received[instrument])
                assert received["005930"]["price"] == 158600 and type(received["005930"]["price"]) is int
                assert received["005930"]["change"] == -700
                assert received["BINANCE:BTC/USDT"]["price"] == 67123.45
                kr = requests.get(f"{base}/api/kr/realtime-prices?tickers=005930", timeout=5).json()
                assert kr["prices"]["005930"] == received["005930"]

        asyncio.run(scenario())


@pytest.mark.redis
@requires_redis
@pytest.mark.django_db
def test_pricefeed_process_feeds_this_process_and_reports_health(tmp_path: Path) -> None:
    """`manage.py pricefeed` in its own process: its ticks and its health are read here via Redis."""
    import subprocess
    import sys
    import time

    from prices.health import feed_statuses
    from prices.services import price_latest
    from tests.prices.live import ROOT

    env = server_env(tmp_path, REDIS_URL=redis_url(), QT_ALLOW_LOCAL_SECRETS="1")
    assert manage(env, "migrate", "-v0").returncode == 0
    proc = subprocess.Popen(
        [sys.executable, "manage.py", "pricefeed", "--feeds", "simulated"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 20
        # The feed publishes its instruments one by one: wait for both that are checked below.
        while (
            price_latest("BINANCE:BTC/USDT") is None or price_latest("005930") is None or not feed_statuses()
        ):
            assert proc.poll() is None and time.monotonic() < deadline
            time.sleep(0.1)
        status = feed_statuses()[0]
        assert (
            status["feed"] == "simulated"
            and status["running"] is True
            and status["process"].endswith(f":{proc.pid}")
        )
        assert price_latest("005930").feed == "simulated"
    finally:
        proc.terminate()
        proc.wait(10)
    deadline = time.monotonic() + 5
    while feed_statuses() and feed_statuses()[0]["running"]:
        assert time.monotonic() < deadline, "a stopped feed must say so"
        time.sleep(0.1)
