"""Every server the product runs on believes X-Forwarded-For only from TRUSTED_PROXIES (#11):
a local caller claiming a TradingView address does not pass WEBHOOK_IP_ALLOWLIST; and none
compresses /ws frames."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from django.conf import settings

from tests.embedded import embedded_env
from tests.execution.test_serve import MANAGE, manage
from tests.health import wait_healthy
from tests.ports import free_port

VENV_BIN = Path(sys.executable).parent
SERVERS = {
    "serve (daphne)": lambda port: [sys.executable, MANAGE, "serve", "--port", str(port), "--no-feeds"],
    "serve --server uvicorn": lambda port: [
        sys.executable, MANAGE, "serve", "--port", str(port), "--no-feeds", "--server", "uvicorn",
    ],
    "gunicorn (Procfile)": lambda port: [
        str(VENV_BIN / "gunicorn"), "quanttrade.asgi:application", "--worker-class",
        "quanttrade.gunicorn_worker.Worker", "--workers", "1", "--bind", f"127.0.0.1:{port}",
    ],
}  # fmt: skip


def post(url: str, body: dict[str, Any], headers: dict[str, str]) -> int:
    request = urllib.request.Request(
        url, data=json.dumps(body).encode(), headers={"Content-Type": "application/json", **headers}
    )
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status
    except urllib.error.HTTPError as error:
        return error.code


@pytest.fixture(scope="module")
def seeded(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    data = tmp_path_factory.mktemp("proxy-data")
    env = embedded_env(data, WEBHOOK_IP_ALLOWLIST="tradingview", PYTHONUNBUFFERED="1")
    manage(env, "migrate", "-v", "0")
    seed = json.loads(manage(env, "seed_demo", "--json", "--no-daily"))
    return {"env": env, "spot": next(s for s in seed["strategies"] if s["group_name"] == "demo_spot")}


@pytest.fixture(scope="module", params=list(SERVERS))
def running(seeded: dict[str, Any], request: pytest.FixtureRequest) -> Iterator[int]:
    """Each server the product runs on, started once for this module's tests: its port."""
    port = free_port()
    process = subprocess.Popen(
        SERVERS[request.param](port), env=seeded["env"], cwd=settings.BASE_DIR,
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
    )  # fmt: skip
    try:
        wait_healthy(f"http://127.0.0.1:{port}", 60, process=process)
        yield port
    finally:
        os.killpg(process.pid, 15)
        process.wait(20)


def test_a_forged_forwarding_header_does_not_pass_the_allowlist(seeded: dict[str, Any], running: int) -> None:
    spot = seeded["spot"]
    body = {**spot["sample_payload"], "token": spot["token"]}
    forged = {
        "X-Forwarded-For": "52.89.214.238",
        "X-Real-IP": "52.89.214.238",
        "Forwarded": "for=52.89.214.238",
    }

    assert post(f"http://127.0.0.1:{running}/api/webhook", body, forged) == 403


def test_websocket_frames_are_not_compressed(running: int) -> None:
    """A client offering permessage-deflate (the `websockets` default, as browsers do) gets
    uncompressed frames: every tick goes to every subscriber, and compressing each one for each
    connection cost a web process about a quarter of its time (docs/benchmarks-ws.md)."""
    import websockets

    async def scenario() -> tuple[str | None, dict[str, Any]]:
        async with websockets.connect(f"ws://127.0.0.1:{running}/ws", compression="deflate") as ws:
            assert ws.response is not None
            extensions = ws.response.headers.get("Sec-WebSocket-Extensions")
            return extensions, json.loads(await asyncio.wait_for(ws.recv(), 10))

    extensions, first = asyncio.run(scenario())
    assert extensions is None
    assert first["type"] == "connected"
