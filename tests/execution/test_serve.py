"""`manage.py serve` as a user runs it: a real process, embedded mode, HTTP on a free port."""

from __future__ import annotations

import json
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any

import pytest
from django.conf import settings
from websockets.sync.client import connect as ws_connect

from tests.embedded import embedded_env
from tests.health import wait_healthy
from tests.ports import free_port

MANAGE = str(Path(settings.BASE_DIR) / "manage.py")


def manage(env: dict[str, str], *args: str) -> str:
    done = subprocess.run(
        [sys.executable, MANAGE, *args], env=env, capture_output=True, text=True, timeout=60, check=False
    )
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stdout


def http(url: str, body: Any = None, token: str = "") -> Any:
    headers = {"Content-Type": "application/json"}
    if token:
        headers["Authorization"] = f"Token {token}"
    data = json.dumps(body).encode() if body is not None else None
    with urllib.request.urlopen(
        urllib.request.Request(url, data=data, headers=headers), timeout=5
    ) as response:
        return json.loads(response.read())


def wait_until(check: Any, timeout: float, what: str) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            result = check()
            if result:
                return result
        except OSError:
            pass
        time.sleep(0.1)
    pytest.fail(f"timed out waiting for {what}")


def test_serve_answers_healthz_recovers_queued_orders_and_executes_webhooks(tmp_path: Path) -> None:
    env = embedded_env(tmp_path, PRICE_FEEDS="simulated", PYTHONUNBUFFERED="1")
    # One process prepares the database: migrate, seed, and a webhook accepted while no worker
    # runs (as after a crash), whose order therefore stays queued.
    setup = (
        "import io, json; from django.core.management import call_command; "
        "from webhooks.services import webhook_ingest; "
        "call_command('migrate', verbosity=0); out = io.StringIO(); "
        "call_command('seed_demo', '--json', stdout=out); seed = json.loads(out.getvalue()); "
        "body = json.dumps(seed['strategies'][0]['sample_payload']).encode(); "
        "seed['left_queued'] = webhook_ingest(body, source_ip=None).body['webhook_id']; "
        "from django.contrib.auth.models import User; "
        "from django.contrib.sessions.backends.db import SessionStore; "
        "user = User.objects.get(username='admin'); session = SessionStore(); "
        "session.update({'_auth_user_id': str(user.pk), "
        "'_auth_user_backend': 'django.contrib.auth.backends.ModelBackend', "
        "'_auth_user_hash': user.get_session_auth_hash()}); session.create(); "
        "seed['session'] = session.session_key; "
        "print(json.dumps(seed))"
    )
    seed = json.loads(manage(env, "shell", "-c", setup).strip().splitlines()[-1])
    spot, left_queued = seed["strategies"][0], seed["left_queued"]
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    server = subprocess.Popen(
        [sys.executable, MANAGE, "serve"],
        env={**env, "PORT": str(port), "HOST": "127.0.0.1"},  # the env form of --port/--host
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        assert wait_healthy(base, 30, process=server) == {"status": "ok"}

        def final(webhook_id: str) -> Any:
            result = http(f"{base}/api/webhooks/{webhook_id}", token=seed["api_token"])
            return result if result["status"] == "completed" else None

        recovered = wait_until(lambda: final(left_queued), 20, "the queued order")
        assert recovered["orders"][0]["status"] == "filled", recovered
        with ws_connect(
            f"ws://127.0.0.1:{port}/ws",
            origin=base,
            additional_headers={"Cookie": f"sessionid={seed['session']}"},
            open_timeout=5,
        ) as ws:
            assert json.loads(ws.recv(timeout=10))["type"] == "connected"
            ws.send(json.dumps({"type": "subscribe", "topic": "orders"}))
            assert json.loads(ws.recv(timeout=10))["type"] == "subscribed"
            accepted = http(f"{base}/api/webhook", spot["sample_payload"])
            assert accepted["status"] == "queued"
            order_id = accepted["orders"][0]["order_id"]
            pushed: list[str] = []
            while "filled" not in pushed:  # recv times out (fails) if the push never comes
                message = json.loads(ws.recv(timeout=10))
                if message["type"] == "order_update" and message["order"]["order_id"] == order_id:
                    pushed.append(message["order"]["status"])
            assert pushed == ["submitted", "filled"]
        result = final(accepted["webhook_id"])
        order = result["orders"][0]
        assert order["status"] == "filled" and order["account"] == "paper_spot" and order["avg_price"], result
    except BaseException:
        server.kill()
        print(server.communicate()[0][-5000:])  # the server's log, shown with the failure
        raise
    server.send_signal(signal.SIGTERM)
    try:
        output, _ = server.communicate(timeout=20)
    except subprocess.TimeoutExpired:
        server.kill()
        output, _ = server.communicate()
    assert server.returncode == 0, output[-3000:]
    assert "status=filled 체결 완료" in output and "QuantTrade 종료" in output
    assert spot["token"] not in output  # tokens never reach the logs


@pytest.mark.parametrize(("turns", "concurrency"), [(None, None), (3, 2)])
def test_the_embedded_orders_run_on_their_turns_and_the_worker_on_its_threads(
    settings: Any, turns: int | None, concurrency: int | None
) -> None:
    """EMBEDDED_ORDER_TURNS orders run at once on the order threads (one by default: a second
    only shares the interpreter, round 32), while the in-process Celery worker keeps its own
    EMBEDDED_WORKER_CONCURRENCY threads."""
    from quanttrade.management.commands.serve import EmbeddedWorker

    if turns is not None:
        settings.EMBEDDED_ORDER_TURNS, settings.EMBEDDED_WORKER_CONCURRENCY = turns, concurrency
    worker = EmbeddedWorker(settings.EMBEDDED_WORKER_CONCURRENCY, order_threads=8)
    try:
        assert worker.pool.running == settings.EMBEDDED_ORDER_TURNS
        assert worker.pool.threads == 8
        assert worker.worker.concurrency == settings.EMBEDDED_WORKER_CONCURRENCY
    finally:
        worker.pool.shutdown(wait=True)
    with pytest.raises(ValueError, match="at least 1"):
        EmbeddedWorker(settings.EMBEDDED_WORKER_CONCURRENCY, order_threads=8, turns=0)


def test_a_user_who_set_the_old_concurrency_for_orders_is_told_the_new_setting() -> None:
    from quanttrade.management.commands.serve import concurrency_note

    note = concurrency_note({"EMBEDDED_WORKER_CONCURRENCY": "8"})
    assert note is not None and "EMBEDDED_ORDER_TURNS" in note
    assert concurrency_note({"EMBEDDED_WORKER_CONCURRENCY": "8", "EMBEDDED_ORDER_TURNS": "2"}) is None
    assert concurrency_note({}) is None


@pytest.mark.parametrize("server", ["daphne", "uvicorn"])
def test_serve_on_a_port_another_process_holds_stops_with_a_clear_message_and_starts_nothing(
    tmp_path: Path, server: str
) -> None:
    """Before: the server announced itself, started the worker and feeds, logged twisted's "Listen
    failure" and exited 0 (CI's smoke test saw only "the server exited before it was ready")."""
    port = free_port()
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", port))
        holder.listen()
        done = subprocess.run(
            [sys.executable, MANAGE, "serve", "--host", "127.0.0.1", "--port", str(port), "--server", server],
            env=embedded_env(tmp_path, PRICE_FEEDS="simulated", PYTHONUNBUFFERED="1"),
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
    output = done.stdout + done.stderr
    assert done.returncode == 1, output
    assert f"cannot listen on 127.0.0.1:{port}: Address already in use" in done.stderr, output
    assert "another process listens on it" in done.stderr, output
    assert "QuantTrade 시작" not in output and "가격 피드 시작" not in output, output


def test_a_port_taken_after_the_check_still_ends_serve_with_status_1(tmp_path: Path) -> None:
    """The server's own bind failing (the port taken between serve's check and it) is an error
    too, not a clean stop: daphne's listen failure becomes serve's exit status 1."""
    port = free_port()
    code = (
        "import sys, django; django.setup()\n"
        "from django.core.management.base import CommandError\n"
        "from quanttrade.management.commands.serve import _run_daphne\n"
        "try:\n"
        f"    _run_daphne('127.0.0.1', {port})\n"
        "except CommandError as exc:\n"
        "    print('CommandError:', exc); sys.exit(1)\n"
        "print('returned normally')\n"
    )
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", port))
        holder.listen()
        done = subprocess.run(
            [sys.executable, "-c", code],
            cwd=Path(settings.BASE_DIR),
            env=embedded_env(tmp_path),
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
    assert done.returncode == 1, done.stdout + done.stderr
    assert f"CommandError: cannot listen on 127.0.0.1:{port}:" in done.stdout, done.stdout + done.stderr
