"""Every server the product runs on believes X-Forwarded-For only from TRUSTED_PROXIES (#11):
a local caller claiming a TradingView address does not pass WEBHOOK_IP_ALLOWLIST."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import pytest
from django.conf import settings

from tests.embedded import embedded_env
from tests.execution.test_serve import MANAGE, free_port, manage
from tests.health import wait_healthy

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


@pytest.mark.parametrize("server", list(SERVERS))
def test_a_forged_forwarding_header_does_not_pass_the_allowlist(seeded: dict[str, Any], server: str) -> None:
    port = free_port()
    process = subprocess.Popen(
        SERVERS[server](port), env=seeded["env"], cwd=settings.BASE_DIR,
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
    )  # fmt: skip
    try:
        wait_healthy(f"http://127.0.0.1:{port}", 60, process=process)
        spot = seeded["spot"]
        body = {**spot["sample_payload"], "token": spot["token"]}
        forged = {
            "X-Forwarded-For": "52.89.214.238",
            "X-Real-IP": "52.89.214.238",
            "Forwarded": "for=52.89.214.238",
        }

        assert post(f"http://127.0.0.1:{port}/api/webhook", body, forged) == 403
    finally:
        os.killpg(process.pid, 15)
        process.wait(20)
