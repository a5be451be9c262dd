"""Real processes for the chaos tests: a throwaway PostgreSQL cluster and redis-server on free
loopback ports, the web server (gunicorn + quanttrade.gunicorn_worker.Worker), a Celery worker
(--pool threads), Celery beat and the Binance simulator, each in its own process group so that
everything started here is stopped here, even when a test fails. Servers given in DATABASE_URL
or REDIS_URL (CI's own) are never touched: every child gets this stack's addresses."""

from __future__ import annotations

import contextlib
import glob
import http.client
import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tests.health import wait_healthy
from tests.ports import free_port

ROOT = Path(__file__).resolve().parents[2]
PYTHON = str(ROOT / ".venv" / "bin" / "python")
BIN = ROOT / ".venv" / "bin"
TOKEN = "chaos-token"
GROUP = "chaos"
# A strategy linked to this many accounts on the same venue: its webhooks are fan-outs, run by
# the worker in chunks of accounts (orders.services.fan_out_chunk).
FAN_GROUP = "chaos_fan"
FAN_ACCOUNTS = 12
FINAL = {"filled", "cancelled", "rejected", "failed", "open", "partially_filled"}


def pg_bin() -> Path | None:
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), key=lambda p: int(p.split("/")[4]))
    return Path(found[-1]).parent if found else None


def available() -> str:
    """Why the chaos stack cannot run here, or ''."""
    if shutil.which("redis-server") is None:
        return "redis-server is not installed"
    if pg_bin() is None:
        return "PostgreSQL server binaries (/usr/lib/postgresql/*/bin) are not installed"
    if not Path(PYTHON).exists():
        return ".venv is missing"
    return ""


def _wait(check: Any, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with contextlib.suppress(Exception):
            if check():
                return
        time.sleep(0.1)
    raise TimeoutError(f"{what} not ready within {timeout:.0f} s")


def _port_open(port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(0.5)
        return sock.connect_ex(("127.0.0.1", port)) == 0


@dataclass
class Proc:
    name: str
    popen: subprocess.Popen[bytes]
    log: Path

    def alive(self) -> bool:
        return self.popen.poll() is None

    def signal(self, sig: int) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.popen.pid, sig)

    def stop(self, timeout: float = 8.0) -> None:
        if self.alive():
            self.signal(signal.SIGTERM)
            try:
                self.popen.wait(timeout)
            except subprocess.TimeoutExpired:
                pass
        # Whatever is left of the group (a child of the process) goes too.
        self.signal(signal.SIGKILL)
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.popen.wait(5)

    def tail(self, lines: int = 40) -> str:
        try:
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""


@dataclass
class Stack:
    """The whole distributed deployment on loopback. Use as a context manager."""

    workdir: Path
    venue_delay: float = 0.0  # seconds the venue takes per order: tasks are in flight longer
    procs: dict[str, Proc] = field(default_factory=dict)
    pg_port: int = 0
    redis_port: int = 0
    web_port: int = 0
    sim_port: int = 0
    pgdata: Path = Path()
    _pg_running: bool = False

    # --- lifecycle ------------------------------------------------------------------------
    def __enter__(self) -> Stack:
        try:
            self.start()
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(self, *_exc: Any) -> None:
        self.close()

    def start(self) -> None:
        self.workdir.mkdir(parents=True, exist_ok=True)
        os.chmod(self.workdir, 0o755)
        (self.workdir / "data").mkdir(mode=0o700, exist_ok=True)
        self.pg_port, self.redis_port = free_port(), free_port()
        self.web_port, self.sim_port = free_port(), free_port()
        self.env = self._env()
        self.start_redis()
        self.init_pg()
        self.start_pg()
        self.spawn("sim", [PYTHON, str(ROOT / "tests" / "chaos" / "simserver.py"), str(self.sim_port)])
        self.setup_db()
        self.start_web()
        self.start_worker()
        self.start_beat()
        # Not merely the port: gunicorn's arbiter listens before its worker has loaded Django
        # (10 s on a loaded 2-core machine), and a request sent meanwhile waits that long.
        web = self.procs["web"]
        wait_healthy(f"http://127.0.0.1:{self.web_port}", 60, process=web.popen, log=web.tail)
        _wait(lambda: _port_open(self.sim_port), 30, "venue simulator")

    def close(self) -> None:
        for proc in reversed(list(self.procs.values())):
            proc.stop()
        if self._pg_running:
            self.pg_ctl("stop", "-m", "immediate")
            self._pg_running = False

    def _env(self) -> dict[str, str]:
        env = {
            k: v
            for k, v in os.environ.items()
            if not k.startswith(("DATABASE_", "REDIS_", "CELERY_", "PRICE_", "DJANGO_", "PYTEST_"))
        }
        from cryptography.fernet import Fernet

        env.update(
            {
                "DATABASE_URL": f"postgres://postgres@127.0.0.1:{self.pg_port}/qt_chaos",
                "REDIS_URL": f"redis://127.0.0.1:{self.redis_port}/0",
                "SECRET_KEY": secrets.token_urlsafe(40),
                "FIELD_ENCRYPTION_KEYS": Fernet.generate_key().decode(),
                "QT_DATA_DIR": str(self.workdir / "data"),
                "ORDER_SWEEP_INTERVAL_SECONDS": "2",
                "ORDER_STALE_AFTER_SECONDS": "3",
                # An order whose worker was killed as it was sending is looked up at the venue six
                # times before it ends `failed`; at the default backoff (2 s doubling, 30 s at
                # most) that takes 90 s, longer than a scenario waits (SETTLE_TIMEOUT): 31.5 s.
                "ORDER_UNCERTAIN_BACKOFF_SECONDS": "0.5",
                "WEBHOOK_RATE_LIMIT": "100000/m",
                "WEBHOOK_SPOOL_REPLAY_SECONDS": "1",
                "QT_SKIP_VENUE_WARMUP": "1",
                "PRICE_FEEDS": "",
                "DJANGO_SETTINGS_MODULE": "quanttrade.settings",
                "PYTHONUNBUFFERED": "1",
                "CHAOS_VENUE_DELAY": str(self.venue_delay),
                "PYTHONPATH": str(ROOT),
            }
        )
        return env

    def spawn(self, name: str, argv: list[str]) -> Proc:
        log = self.workdir / f"{name}.log"
        with open(log, "ab") as out:
            popen = subprocess.Popen(
                argv, cwd=ROOT, env=self.env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
            )
        proc = self.procs[name] = Proc(name, popen, log)
        return proc

    # --- Redis ------------------------------------------------------------------------------
    def start_redis(self) -> None:
        self.spawn(
            "redis",
            [
                "redis-server",
                "--bind",
                "127.0.0.1",
                "--port",
                str(self.redis_port),
                "--save",
                "",
                "--appendonly",
                "no",
                "--dir",
                str(self.workdir),
            ],
        )
        _wait(lambda: _port_open(self.redis_port), 20, "redis-server")

    def restart(self, name: str) -> Proc:
        """Start ``name`` (web, worker, beat) again after it stopped."""
        self.procs[name].stop()
        return {"web": self.start_web, "worker": self.start_worker, "beat": self.start_beat}[name]()

    def children(self, name: str) -> list[int]:
        """The pids of ``name``'s child processes (gunicorn's arbiter: its workers)."""
        parent = self.procs[name].popen.pid
        found = []
        for stat in glob.glob("/proc/[0-9]*/stat"):
            with contextlib.suppress(OSError, IndexError, ValueError):
                fields = Path(stat).read_text().rsplit(")", 1)[1].split()
                if int(fields[1]) == parent:
                    found.append(int(stat.split("/")[2]))
        return found

    def cached(self, match: str) -> dict[str, Any]:
        """The product's cache entries (Django's pickled values in Redis) whose key matches
        ``match``: key (without the cache's prefix and version) -> value."""
        import pickle

        import redis

        client = redis.Redis(host="127.0.0.1", port=self.redis_port, socket_timeout=3)
        found: dict[str, Any] = {}
        for key in client.scan_iter(match=f"*{match}", count=500):
            value = client.get(key)
            if value is not None:
                found[key.decode().split(":", 2)[2]] = pickle.loads(value)
        return found

    def claims(self) -> dict[str, str]:
        """Each claimed order's holder: order id -> "host:pid" (orders.liveness's claim marks)."""
        return {key.rsplit(":", 1)[1]: str(holder) for key, holder in self.cached("qt:claim:*").items()}

    def order_slots(self) -> dict[str, int]:
        """The workers' announced order slots: "host:pid" -> concurrency (orders.liveness)."""
        return dict(self.cached("qt:order-slots").get("qt:order-slots") or {})

    def holders(self) -> dict[str, int]:
        """How many orders each process claimed ("host:pid")."""
        return dict(Counter(self.claims().values()))

    def kill_redis(self) -> None:
        proc = self.procs["redis"]
        proc.signal(signal.SIGKILL)
        proc.popen.wait(10)

    # --- PostgreSQL -------------------------------------------------------------------------
    def _as_postgres(self, argv: list[str]) -> list[str]:
        return ["runuser", "-u", "postgres", "--", *argv] if os.getuid() == 0 else argv

    def init_pg(self) -> None:
        self.pgdata = self.workdir / "pg"
        self.pgdata.mkdir()
        if os.getuid() == 0:
            shutil.chown(self.pgdata, "postgres", "postgres")
        bindir = pg_bin()
        assert bindir is not None
        subprocess.run(
            self._as_postgres(
                [
                    str(bindir / "initdb"),
                    "-D",
                    str(self.pgdata),
                    "-U",
                    "postgres",
                    "--auth=trust",
                    "-E",
                    "UTF8",
                    "--no-locale",
                    "--no-sync",
                ]
            ),
            check=True,
            capture_output=True,
        )

    def pg_ctl(self, *args: str) -> None:
        bindir = pg_bin()
        assert bindir is not None
        subprocess.run(
            self._as_postgres([str(bindir / "pg_ctl"), "-D", str(self.pgdata), "-w", "-t", "60", *args]),
            check=True,
            capture_output=True,
        )

    def start_pg(self) -> None:
        # fsync=off only skips flushing the OS cache: a server killed (-m immediate) loses nothing
        # acknowledged. synchronous_commit stays on, as in production: with it off, PostgreSQL
        # may forget a commit it already acknowledged (the intake's 202, a worker's claim).
        options = (
            f"-c listen_addresses=127.0.0.1 -p {self.pg_port} -k {self.pgdata} -c fsync=off "
            "-c max_connections=100"
        )
        self.pg_ctl("-l", str(self.pgdata / "server.log"), "-o", options, "start")
        self._pg_running = True

    def stop_pg(self) -> None:
        self.pg_ctl("stop", "-m", "immediate")
        self._pg_running = False

    def setup_db(self) -> None:
        bindir = pg_bin()
        assert bindir is not None
        subprocess.run(
            self._as_postgres(
                [
                    str(bindir / "createdb"),
                    "-h",
                    "127.0.0.1",
                    "-p",
                    str(self.pg_port),
                    "-U",
                    "postgres",
                    "qt_chaos",
                ]
            ),
            check=True,
            capture_output=True,
        )
        script = f"""
import django
django.setup()
from django.core.management import call_command
call_command("migrate", verbosity=0)
from strategies.models import Account, Strategy, StrategyAccount
account = Account.objects.create(
    name="binance-chaos", exchange="BINANCE", api_key="sim-key", api_secret="sim-secret",
    settings={{"api_base_url": "http://127.0.0.1:{self.sim_port}", "timeout_seconds": 2,
              "enable_rate_limit": False}},
)
strategy = Strategy.objects.create(group_name="{GROUP}", market_type="SPOT", token="{TOKEN}")
StrategyAccount.objects.create(strategy=strategy, account=account)
fan = Strategy.objects.create(group_name="{FAN_GROUP}", market_type="SPOT", token="{TOKEN}")
for index in range({FAN_ACCOUNTS}):
    member = Account.objects.create(
        name=f"binance-fan-{{index:02d}}", exchange="BINANCE", api_key="sim-key", api_secret="sim-secret",
        settings=account.settings,
    )
    StrategyAccount.objects.create(strategy=fan, account=member)
"""
        result = subprocess.run(
            [PYTHON, "-c", script], cwd=ROOT, env=self.env, capture_output=True, text=True, timeout=120
        )
        assert result.returncode == 0, result.stderr[-3000:]

    # --- application processes --------------------------------------------------------------
    def start_web(self) -> Proc:
        return self.spawn(
            "web",
            [
                str(BIN / "gunicorn"),
                "quanttrade.asgi:application",
                "--worker-class",
                "quanttrade.gunicorn_worker.Worker",
                "--workers",
                "1",
                "--bind",
                f"127.0.0.1:{self.web_port}",
            ],
        )

    def start_worker(self) -> Proc:
        return self.spawn(
            "worker",
            [
                str(BIN / "celery"),
                "-A",
                "quanttrade",
                "worker",
                "--pool",
                "threads",
                "--concurrency",
                "4",
                "--without-gossip",
                "--without-mingle",
                "--without-heartbeat",
                "--loglevel",
                "INFO",
                "--hostname",
                f"chaos{len(self.procs)}@%h",
            ],
        )

    def start_beat(self) -> Proc:
        return self.spawn(
            "beat",
            [
                str(BIN / "celery"),
                "-A",
                "quanttrade",
                "beat",
                "--loglevel",
                "INFO",
                "--schedule",
                str(self.workdir / "celerybeat-schedule"),
            ],
        )

    # --- observing ----------------------------------------------------------------------------
    def sql(self, query: str, *params: Any) -> list[tuple[Any, ...]]:
        import psycopg

        with psycopg.connect(
            f"host=127.0.0.1 port={self.pg_port} user=postgres dbname=qt_chaos connect_timeout=3"
        ) as conn:
            return list(conn.execute(query, params).fetchall())  # type: ignore[arg-type]

    def venue(self) -> dict[str, Any]:
        conn = http.client.HTTPConnection("127.0.0.1", self.sim_port, timeout=5)
        try:
            conn.request("GET", "/__orders")
            return dict(json.loads(conn.getresponse().read()))
        finally:
            conn.close()

    def logs(self) -> str:
        return "\n".join(f"--- {p.name} (alive={p.alive()}) ---\n{p.tail()}" for p in self.procs.values())


@dataclass
class Answer:
    index: int
    status: int  # 0 = no HTTP answer at all
    seconds: float
    body: dict[str, Any]


def post_webhook(port: int, index: int, timeout: float = 10.0, group: str = GROUP) -> Answer:
    payload = {
        "group_name": group,
        "token": TOKEN,
        "symbol": "BTC/USDT",
        "order_type": "MARKET",
        "side": "buy",
        "qty_per": 1,
        "idempotency_key": f"chaos-{os.getpid()}-{index}-{secrets.token_hex(4)}",
    }
    started = time.monotonic()
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        conn.request("POST", "/api/webhook", json.dumps(payload), {"Content-Type": "application/json"})
        response = conn.getresponse()
        raw = response.read()
        try:
            body = json.loads(raw)
        except ValueError:
            body = {"raw": raw[:300].decode(errors="replace")}
        return Answer(index, response.status, time.monotonic() - started, body)
    except (OSError, http.client.HTTPException) as exc:
        return Answer(index, 0, time.monotonic() - started, {"error": repr(exc)})
    finally:
        conn.close()


class Load:
    """Posts webhooks at about ``rate`` per second from a few threads until stopped."""

    def __init__(self, port: int, rate: float = 8.0, threads: int = 6) -> None:
        self.port, self.interval, self.answers = port, 1.0 / rate, []  # type: ignore[var-annotated]
        self._stop = threading.Event()
        self._next = 0
        self._lock = threading.Lock()
        self._threads = [threading.Thread(target=self._run, daemon=True) for _ in range(threads)]
        self._clock = time.monotonic()

    def __enter__(self) -> Load:
        for thread in self._threads:
            thread.start()
        return self

    def __exit__(self, *_exc: Any) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(30)

    def _run(self) -> None:
        while not self._stop.is_set():
            with self._lock:
                index = self._next
                self._next += 1
                due = self._clock + index * self.interval
            delay = due - time.monotonic()
            if delay > 0 and self._stop.wait(delay):
                return
            answer = post_webhook(self.port, index)
            with self._lock:
                self.answers.append(answer)


def order_rows(stack: Stack, webhook_ids: list[str]) -> list[tuple[str, str, str]]:
    """(webhook id, client order id, status) of every order of these webhooks."""
    return [
        (str(w), c, s)
        for w, c, s in stack.sql(
            "SELECT webhook_id::text, client_order_id, status FROM orders_order WHERE webhook_id::text = ANY(%s)",
            webhook_ids,
        )
    ]


def wait_until_settled(stack: Stack, webhook_ids: list[str], timeout: float) -> list[tuple[str, str, str]]:
    """Wait until every accepted webhook has its order(s) in a final state (or ``timeout``)."""
    deadline = time.monotonic() + timeout
    rows: list[tuple[str, str, str]] = []
    while time.monotonic() < deadline:
        with contextlib.suppress(Exception):
            rows = order_rows(stack, webhook_ids)
            if {w for w, _c, _s in rows} == set(webhook_ids) and all(s in FINAL for _w, _c, s in rows):
                return rows
        time.sleep(0.5)
    return rows


#: One line per scenario, printed at the end of the run (tests/chaos/conftest.py).
FIGURES: list[str] = []


def report(name: str, figures: dict[str, Any]) -> None:
    line = f"{name}: " + ", ".join(f"{k}={v}" for k, v in figures.items())
    FIGURES.append(line)
    print("CHAOS " + line, file=sys.stderr, flush=True)
