"""Browser-test machinery: the real product in a subprocess, Debian's Chromium through Playwright.

The server is started with ``manage.py serve`` from a temporary data folder, after ``migrate`` and
``seed_demo --json``. When Redis is available it runs in distributed mode — SQLite file + Redis
(cache, channel layer, broker) + a separate ``celery worker`` process — so that another process
(``manage.py publish_price``) can publish into its price layer. Otherwise it runs in embedded
mode and the tests that need a second publisher are skipped.

Redis: a private ``redis-server`` on a free port when the binary is installed (CI installs it).
Sharing the suite's REDIS_URL database is only the fallback: the suite's session-wide Celery
worker consumes that broker too and would steal this server's tasks.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.embedded import embedded_env
from tests.health import wait_healthy
from tests.ports import free_port

ROOT = Path(__file__).resolve().parents[2]
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
ARTIFACTS = ROOT / "test-artifacts"
PING_SECONDS = 2


@pytest.fixture(autouse=True)
def _clear_cache(request: pytest.FixtureRequest) -> Iterator[None]:
    """Overrides the suite-wide cache flush: with REDIS_URL the flush is a FLUSHDB, which would
    wipe the browser server's broker queues and price cache in the shared Redis database."""
    if request.node.get_closest_marker("browser"):
        yield
        return
    from django.core.cache import cache

    cache.clear()
    yield
    cache.clear()


def _spawn_logged(
    args: list[str], log_path: Path, env: dict[str, str] | None = None
) -> subprocess.Popen[bytes]:
    log = log_path.open("ab")
    return subprocess.Popen(
        args, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
    )


def _stop_process(proc: subprocess.Popen[bytes] | None) -> None:
    """SIGTERM the process group we started (then SIGKILL if it lingers)."""
    if proc is None or proc.poll() is not None:
        return
    os.killpg(proc.pid, signal.SIGTERM)
    try:
        proc.wait(timeout=15)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=5)


class PrivateRedis:
    """A throwaway redis-server on a free loopback port, no persistence."""

    def __init__(self, data_dir: Path) -> None:
        self.port = free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        binary = shutil.which("redis-server") or "redis-server"
        self.proc = _spawn_logged(
            [
                binary,
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
                "--dir",
                str(data_dir),
            ],
            data_dir / "redis.log",
        )
        import redis

        deadline = time.monotonic() + 15
        while True:
            try:
                redis.Redis(host="127.0.0.1", port=self.port, socket_timeout=1).ping()
                return
            except redis.ConnectionError:
                if time.monotonic() > deadline or self.proc.poll() is not None:
                    self.stop()
                    raise RuntimeError("the private redis-server did not start") from None
                time.sleep(0.1)

    def stop(self) -> None:
        _stop_process(self.proc)


class ProductServer:
    """`manage.py serve` (plus a Celery worker in distributed mode) in child processes."""

    def __init__(self, data_dir: Path, redis_url: str | None) -> None:
        self.data_dir = data_dir
        self.port = free_port()
        self.base_url = f"http://127.0.0.1:{self.port}"
        self.distributed = bool(redis_url)
        env = embedded_env(
            data_dir,
            PYTHONUNBUFFERED="1",
            ORDER_SWEEP_INTERVAL_SECONDS="5",
            # Frequent server pings, so the heartbeat test sees missed pongs close a socket.
            WS_PING_INTERVAL_SECONDS=str(PING_SECONDS),
            ALLOWED_HOSTS="127.0.0.1,localhost",
            PUBLIC_BASE_URL=self.base_url,
            # No simulated feed: prices change only when a test publishes them.
            PRICE_FEEDS="",
            # The browser logs in as seed_demo's admin with its password only (the TOTP steps
            # have their own tests, tests/test_access.py).
            OTP_REQUIRED_FOR_SUPERUSERS="false",
        )
        if redis_url:
            # Distributed mode on this folder's SQLite file: the Redis layers, a Celery worker.
            env |= {
                "REDIS_URL": redis_url,
                "DATABASE_URL": f"sqlite:///{data_dir / 'db.sqlite3'}",
                "QT_ALLOW_LOCAL_SECRETS": "1",
            }
        self.env = env
        self.server: subprocess.Popen[bytes] | None = None
        self.worker: subprocess.Popen[bytes] | None = None
        self.seed: dict[str, Any] = {}

    # --- commands ---------------------------------------------------------------------
    def manage(self, *args: str, timeout: float = 120) -> str:
        result = subprocess.run(
            [sys.executable, "manage.py", *args],
            cwd=ROOT,
            env=self.env,
            capture_output=True,
            text=True,
            timeout=timeout,
        )
        if result.returncode != 0:
            raise RuntimeError(f"manage.py {' '.join(args)} failed:\n{result.stdout}\n{result.stderr}")
        return result.stdout

    def publish_price(self, instrument: str, price: str) -> None:
        self.manage("publish_price", instrument, "--price", price, timeout=60)

    def setup(self) -> None:
        self.manage("migrate", "--noinput", "-v", "0")
        out = self.manage("seed_demo", "--json", "--no-daily")
        self.seed = json.loads(out[out.index("{") : out.rindex("}") + 1])

    # --- processes --------------------------------------------------------------------
    def _spawn(self, args: list[str], log_name: str) -> subprocess.Popen[bytes]:
        return _spawn_logged(args, self.data_dir / log_name, self.env)

    def start(self) -> None:
        self.server = self._spawn(
            [sys.executable, "manage.py", "serve", "--host", "127.0.0.1", "--port", str(self.port)],
            "serve.log",
        )
        if self.distributed and self.worker is None:
            celery = str(Path(sys.executable).with_name("celery"))
            self.worker = self._spawn(
                [celery, "-A", "quanttrade", "worker", "--pool", "threads", "-c", "2", "-l", "info"],
                "worker.log",
            )
        self.wait_ready()

    def wait_ready(self, timeout: float = 60) -> None:
        wait_healthy(self.base_url, timeout, process=self.server, log=self.log_tail)

    def stop_server(self) -> None:
        _stop_process(self.server)
        self.server = None

    def stop(self) -> None:
        self.stop_server()
        _stop_process(self.worker)
        self.worker = None

    def log_tail(self, lines: int = 40) -> str:
        out = []
        for name in ("serve.log", "worker.log", "redis.log"):
            path = self.data_dir / name
            if path.exists():
                out.append(f"--- {name} ---")
                out.extend(path.read_text(errors="replace").splitlines()[-lines:])
        return "\n".join(out)


@pytest.fixture(scope="module")
def product(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ProductServer]:
    if not Path(CHROMIUM).exists():
        pytest.skip(f"{CHROMIUM} is not installed (apt-get install chromium)")
    data_dir = tmp_path_factory.mktemp("qt-browser")
    private_redis = PrivateRedis(data_dir) if shutil.which("redis-server") else None
    redis_url = private_redis.url if private_redis else os.environ.get("REDIS_URL")
    server = ProductServer(data_dir, redis_url)
    try:
        server.setup()
        server.start()
        yield server
    finally:
        server.stop()
        if private_redis:
            private_redis.stop()


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    if not Path(CHROMIUM).exists():
        pytest.skip(f"{CHROMIUM} is not installed (apt-get install chromium)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            yield chromium
        finally:
            chromium.close()


@pytest.fixture
def page(browser: Any, product: ProductServer) -> Iterator[Any]:
    context = browser.new_context(viewport={"width": 1280, "height": 860}, locale="ko-KR")
    context.set_default_timeout(20_000)
    pg = context.new_page()
    pg.console_messages = []
    pg.on("console", lambda message: pg.console_messages.append(f"{message.type}: {message.text}"))
    pg.on("pageerror", lambda error: pg.console_messages.append(f"pageerror: {error}"))
    try:
        yield pg
    finally:
        context.close()


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[None]:
    """On a failed browser test keep a screenshot, the page HTML, console and server logs."""
    outcome = yield
    report = outcome.get_result()
    if report.when != "call" or not report.failed:
        return
    pg = getattr(item, "funcargs", {}).get("page")
    server = getattr(item, "funcargs", {}).get("product")
    if pg is None:
        return
    ARTIFACTS.mkdir(exist_ok=True)
    stem = ARTIFACTS / item.name.replace("/", "_").replace("[", "_").replace("]", "")
    try:
        pg.screenshot(path=f"{stem}.png", full_page=True)
        Path(f"{stem}.html").write_text(pg.content())
        Path(f"{stem}.console.txt").write_text("\n".join(getattr(pg, "console_messages", [])))
        if server is not None:
            Path(f"{stem}.server.txt").write_text(server.log_tail(200))
    except Exception as exc:  # the page may be gone; the report must still be written
        Path(f"{stem}.error.txt").write_text(repr(exc))
