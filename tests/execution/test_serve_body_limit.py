"""A request body past HTTP_MAX_BODY_BYTES on the servers `manage.py serve` runs: answered 413
with the JSON envelope, and not kept. daphne received any body whole and then held all of it
in memory for the application (a 400 MB body: +400 MB of the one embedded process); uvicorn
handed it over as it came and Django wrote it to a temporary file. Found by a review on the
real servers."""

from __future__ import annotations

import http.client
import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import connect as ws_connect

from tests.embedded import embedded_env
from tests.execution.test_serve import MANAGE, manage
from tests.health import wait_healthy
from tests.ports import free_port

MIB = 1024 * 1024


def post(port: int, path: str, body: bytes, content_type: str = "application/json") -> tuple[int, Any]:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    try:
        connection.request("POST", path, body=body, headers={"Content-Type": content_type})
        response = connection.getresponse()
        content = response.read()
        is_json = "json" in (response.getheader("Content-Type") or "")
        return response.status, json.loads(content) if is_json else content
    finally:
        connection.close()


def peak_resident_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    raise AssertionError("no VmHWM")


@pytest.fixture(scope="module", params=["daphne", "uvicorn"])
def server(request: Any, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, int, int, Any]]:
    folder = tmp_path_factory.mktemp(request.param)
    env = embedded_env(folder, PRICE_FEEDS="simulated", PYTHONUNBUFFERED="1")
    manage(env, "migrate", "--verbosity", "0")
    seed = json.loads(manage(env, "seed_demo", "--json"))
    port = free_port()
    args = ["--server", "uvicorn"] if request.param == "uvicorn" else []
    process = subprocess.Popen(
        [sys.executable, MANAGE, "serve", "--host", "127.0.0.1", "--port", str(port), *args],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        wait_healthy(f"http://127.0.0.1:{port}", 30, process=process)
        yield request.param, port, process.pid, seed["strategies"][0]["sample_payload"]
    finally:
        process.kill()
        process.wait(20)


@pytest.mark.parametrize("path", ["/api/webhook", "/accounts/login/", "/api/prices"])
def test_a_body_past_the_limit_is_answered_413_with_the_envelope(
    server: tuple[str, int, int, Any], path: str
) -> None:
    _, port, _, _ = server

    status, answer = post(port, path, b"{" + b" " * (3 * MIB))

    assert status == 413, answer
    assert (answer["code"], answer["status"]) == ("payload_too_large", 413)


def test_a_large_body_is_not_held_in_memory_and_the_server_goes_on(server: tuple[str, int, int, Any]) -> None:
    name, port, pid, payload = server
    before = peak_resident_kib(pid)

    status, _ = post(port, "/accounts/login/", b"x" * (80 * MIB), "application/x-www-form-urlencoded")

    assert status == 413
    grown_mib = (peak_resident_kib(pid) - before) / 1024
    assert grown_mib < 40, f"{name} grew by {grown_mib:.0f} MiB for an 80 MiB body"
    status, answer = post(port, "/api/webhook", json.dumps(payload).encode())
    assert status == 202 and answer["status"] == "queued"


def test_a_websocket_message_far_past_the_applications_limit_closes_the_connection(
    server: tuple[str, int, int, Any],
) -> None:
    """uvicorn read /ws messages of up to 16 MiB into memory before the application, which takes
    4 KiB, refused them; it now closes past 64 KiB (1009). daphne's own bound is 1 MiB (it drops
    the connection)."""
    name, port, _, _ = server
    size = 100 * 1024 if name == "uvicorn" else 2 * MIB
    with ws_connect(f"ws://127.0.0.1:{port}/ws", origin=f"http://127.0.0.1:{port}", open_timeout=5) as ws:
        assert json.loads(ws.recv(timeout=5))["type"] == "connected"
        ws.send("x" * size)
        with pytest.raises(ConnectionClosed) as closed:
            while True:
                ws.recv(timeout=5)
    if name == "uvicorn":  # daphne (autobahn) drops the connection without a close frame
        assert closed.value.rcvd is not None and closed.value.rcvd.code == 1009
