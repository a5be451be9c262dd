"""Webhook accept latency (p50/p99) and achieved rate at fixed request rates.

Not a test: a measurement (SPEC §7, target p99 <= 25 ms at 100 req/s on PostgreSQL + Redis).

For each target it starts a server on 127.0.0.1, sends POST /api/webhook at fixed rates with an
open-loop schedule (request i is due at t0 + i/rate whatever happened to earlier ones, and its
latency is counted from that due time, so a stalled server cannot hide its queue: no coordinated
omission), and prints p50/p99/max latency, the achieved rate of expected answers and the errors.
Before the rates, a "serial" row sends requests one at a time: the service time with no queue.
"cpu ms/req" is the CPU time of the server's own processes per answered request, less their idle
background use: on a shared machine it is the steadiest figure (PostgreSQL and Redis not counted).
A rate the server cannot sustain (achieved < 90 %) ends that server's rates.

Targets, measured in one run on the same machine:
  bare        bench/bare_app.py, a bare Django JSON view (the baseline), on each server
  embedded    the product as `manage.py serve [--server uvicorn]` runs it: SQLite, in-process
              broker, worker threads, periodic sweep and paper matcher, simulated price feed
  distributed the product on PostgreSQL + Redis, on each server, with a Celery worker running
Servers: daphne (the stack's), uvicorn (one process), gunicorn with 2 uvicorn workers.

The webhook targets get their own throwaway data: a temp data folder (embedded) and a
PostgreSQL database created and dropped here (distributed; --database-url names it, default
qt_c_bench) plus one Redis DB that is flushed (--redis-url, default DB 3).

    .venv/bin/python bench/webhook_accept.py                      # everything, ~4 minutes
    .venv/bin/python bench/webhook_accept.py --only bare,distributed --rates 100 --duration 20
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import secrets
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

ROOT = Path(__file__).resolve().parent.parent
VENV_BIN = Path(sys.executable).parent
SERVERS = ("daphne", "uvicorn", "gunicorn")
BARE_APP = "bench.bare_app:application"
STRATEGY = "bench_spot"
TOKEN = "bench-token-" + "x" * 20


@dataclass
class Result:
    target: str
    server: str
    rate: int
    sent: int
    ok: int
    seconds: float
    latencies_ms: list[float]
    errors: Counter[str] = field(default_factory=Counter)
    cpu_seconds: float = 0.0  # CPU time the server's processes used during the run

    @property
    def cpu_ms_per_request(self) -> float:
        return self.cpu_seconds * 1000 / self.ok if self.ok else float("nan")

    def pct(self, q: float) -> float:
        if not self.latencies_ms:
            return float("nan")
        data = sorted(self.latencies_ms)
        return data[min(len(data) - 1, int(q * len(data)))]

    @property
    def achieved(self) -> float:
        return self.ok / self.seconds if self.seconds else 0.0


# --- load generator ---------------------------------------------------------------------


async def _load(url: str, body: bytes, rate: int, duration: float, expect: int) -> Result:
    import aiohttp

    count = max(1, round(rate * duration))
    latencies: list[float] = []
    errors: Counter[str] = Counter()
    connector = aiohttp.TCPConnector(limit=0)
    timeout = aiohttp.ClientTimeout(total=10)
    headers = {"Content-Type": "application/json"}
    async with aiohttp.ClientSession(connector=connector, timeout=timeout) as session:
        loop = asyncio.get_running_loop()
        start = loop.time() + 0.05

        async def one(i: int) -> None:
            due = start + i / rate
            delay = due - loop.time()
            if delay > 0:
                await asyncio.sleep(delay)
            try:
                async with session.post(url, data=body, headers=headers) as resp:
                    await resp.read()
                    status = resp.status
            except (aiohttp.ClientError, TimeoutError) as exc:
                errors[type(exc).__name__] += 1
                return
            if status == expect:
                latencies.append((loop.time() - due) * 1000)
            else:
                errors[f"HTTP {status}"] += 1

        await asyncio.gather(*(one(i) for i in range(count)))
        seconds = loop.time() - start
    return Result("", "", rate, count, len(latencies), seconds, latencies, errors)


async def _serial(url: str, body: bytes, count: int, expect: int) -> Result:
    """One request at a time: the service time with no queueing (rate column "serial")."""
    import aiohttp

    latencies: list[float] = []
    errors: Counter[str] = Counter()
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=10)) as session:
        start = time.perf_counter()
        for _ in range(count):
            sent = time.perf_counter()
            async with session.post(url, data=body, headers={"Content-Type": "application/json"}) as resp:
                await resp.read()
                if resp.status == expect:
                    latencies.append((time.perf_counter() - sent) * 1000)
                else:
                    errors[f"HTTP {resp.status}"] += 1
        seconds = time.perf_counter() - start
    return Result("", "", 0, count, len(latencies), seconds, latencies, errors)


# --- processes --------------------------------------------------------------------------


def free_port() -> int:
    """A loopback port for a server this bench starts (outside the ephemeral range: tests/ports.py)."""
    sys.path.insert(0, str(ROOT))
    from tests.ports import free_port as pick

    return pick()


def group_cpu_seconds(pgid: int) -> float:
    """User + system CPU seconds of the live processes in process group ``pgid`` (Linux /proc).

    Unlike latency, this barely depends on what else the machine is doing, so it compares the
    per-request cost of targets fairly on a shared machine.
    """
    ticks = 0
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rpartition(")")[2].split()
        except OSError:
            continue
        if int(fields[2]) == pgid:
            ticks += int(fields[11]) + int(fields[12])
    return ticks / os.sysconf("SC_CLK_TCK")


def idle_cpu_rate(pgid: int, seconds: float) -> float:
    """CPU seconds per second that process group ``pgid`` uses while no request arrives."""
    started, cpu = time.monotonic(), group_cpu_seconds(pgid)
    time.sleep(seconds)
    return (group_cpu_seconds(pgid) - cpu) / (time.monotonic() - started)


def server_command(server: str, app: str, port: int) -> list[str]:
    """The command line of ``server`` serving ``app``; app "serve" = `manage.py serve` (embedded)."""
    if app == "serve":
        # The product's own command: its server in the main thread, worker threads, feeds.
        return [
            sys.executable, "manage.py", "serve", "--server", server, "--host", "127.0.0.1", "--port", str(port),
        ]  # fmt: skip
    if server == "daphne":
        return [str(VENV_BIN / "daphne"), "-b", "127.0.0.1", "-p", str(port), app]
    if server == "uvicorn":
        return [
            str(VENV_BIN / "uvicorn"), app, "--host", "127.0.0.1", "--port", str(port),
            "--no-access-log", "--log-level", "warning",
        ]  # fmt: skip
    if server == "gunicorn":
        # The product's worker class starts the product's order threads once the application is
        # loaded, which the bare view (not the product) has none of: it gets the class that one
        # is made from.
        worker = "uvicorn_worker.UvicornWorker" if app == BARE_APP else "quanttrade.gunicorn_worker.Worker"
        return [
            str(VENV_BIN / "gunicorn"), app, "-w", "2", "-k", worker,
            "-b", f"127.0.0.1:{port}", "--log-level", "warning",
        ]  # fmt: skip
    raise ValueError(server)


@contextmanager
def process(cmd: list[str], env: dict[str, str], log: Path) -> Iterator[subprocess.Popen[bytes]]:
    """Run ``cmd`` in its own process group; stop the whole group on exit."""
    with log.open("ab") as out:
        proc = subprocess.Popen(
            cmd, cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
        )
    try:
        yield proc
    finally:
        for sig, wait in ((signal.SIGTERM, 10), (signal.SIGKILL, 5)):
            if proc.poll() is not None:
                break
            try:
                os.killpg(proc.pid, sig)
            except ProcessLookupError:
                break
            try:
                proc.wait(wait)
            except subprocess.TimeoutExpired:
                continue


def wait_http(port: int, proc: subprocess.Popen[bytes], path: str, log: Path, timeout: float = 60) -> None:
    """Wait until the server answers any HTTP response on ``path``."""
    import urllib.error
    import urllib.request

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited ({proc.returncode}); see {log}")
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=2):
                return
        except urllib.error.HTTPError:
            return
        except OSError:
            time.sleep(0.3)
    raise RuntimeError(f"server did not answer within {timeout} s; see {log}")


# --- data set-up (runs in a child process with the target's environment) ----------------


def setup_data() -> None:
    """Migrate, then create the bench strategy with one funded paper account and a BTC price."""
    import django

    sys.path.insert(0, str(ROOT))
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "quanttrade.settings")
    django.setup()
    from decimal import Decimal

    from django.core.management import call_command

    from orders.models import PaperBalance
    from prices.services import price_publish
    from strategies.models import Account, Strategy, StrategyAccount

    call_command("migrate", verbosity=0, interactive=False)
    strategy, _ = Strategy.objects.update_or_create(
        group_name=STRATEGY,
        # The per-strategy rate limit (default 120/m) would turn most of the load into 429s.
        defaults={"market_type": "SPOT", "token": TOKEN, "rate_limit": "10000000/m", "is_active": True},
    )
    account, _ = Account.objects.get_or_create(name="bench-paper", defaults={"exchange": "PAPER"})
    PaperBalance.objects.update_or_create(account=account, asset="USDT", defaults={"free": Decimal("1e12")})
    StrategyAccount.objects.get_or_create(strategy=strategy, account=account)
    price_publish("BINANCE:BTC/USDT", Decimal("65000"))


def run_setup(env: dict[str, str]) -> None:
    subprocess.run([sys.executable, __file__, "--setup-data"], cwd=ROOT, env=env, check=True)


# --- distributed back-ends --------------------------------------------------------------


def recreate_database(url: str, *, drop_only: bool = False) -> None:
    import psycopg

    parts = urlsplit(url)
    name = parts.path.lstrip("/")
    admin_url = urlunsplit(parts._replace(scheme="postgresql", path="/postgres"))
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        if not drop_only:
            conn.execute(f'CREATE DATABASE "{name}"')


@contextmanager
def throwaway_backends(tmpdir: Path) -> Iterator[tuple[str, str]]:
    """A private PostgreSQL cluster and Redis server on free loopback ports, stopped on exit.

    Keeps the load (and the connections it opens) off any shared server. initdb refuses to run
    as root, so as root the cluster runs as the `postgres` user.
    """
    import glob
    import shutil

    initdb = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
    if not initdb or not shutil.which("redis-server"):
        raise SystemExit("--own-servers needs PostgreSQL (initdb) and redis-server installed")
    pgbin = Path(initdb[-1]).parent
    as_pg = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
    pgdata = tmpdir / "pg"
    pgdata.mkdir(parents=True)
    for folder in (tmpdir.parent, tmpdir):  # the postgres user must reach its data folder
        folder.chmod(0o755)
    if as_pg:
        shutil.chown(pgdata, "postgres", "postgres")
    pg_port, redis_port = free_port(), free_port()
    quiet = {"stdout": subprocess.DEVNULL, "stderr": subprocess.STDOUT, "check": True}
    subprocess.run(
        [*as_pg, str(pgbin / "initdb"), "-D", str(pgdata), "-U", "postgres", "--auth=trust"], **quiet
    )
    options = f"-c listen_addresses=127.0.0.1 -p {pg_port} -k {pgdata} -c max_connections=200"
    pg_ctl = [*as_pg, str(pgbin / "pg_ctl"), "-D", str(pgdata), "-l", str(pgdata / "server.log"), "-w"]
    subprocess.run([*pg_ctl, "-o", options, "start"], **quiet)
    redis_cmd = [
        "redis-server",
        "--bind",
        "127.0.0.1",
        "--port",
        str(redis_port),
        "--save",
        "",
        "--appendonly",
        "no",
    ]
    try:
        with process(redis_cmd, os.environ.copy(), tmpdir / "redis.log"):
            yield (
                f"postgres://postgres@127.0.0.1:{pg_port}/qt_bench",
                f"redis://127.0.0.1:{redis_port}/0",
            )
    finally:
        subprocess.run([*pg_ctl, "-m", "fast", "stop"], **quiet)


def flush_redis(url: str) -> None:
    import redis

    redis.Redis.from_url(url).flushdb()


# --- orchestration ----------------------------------------------------------------------


def base_env(data_dir: Path) -> dict[str, str]:
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in {"DATABASE_URL", "REDIS_URL", "CELERY_BROKER_URL", "DJANGO_SETTINGS_MODULE"}
    }
    env.update({"QT_DATA_DIR": str(data_dir), "PYTHONUNBUFFERED": "1", "PYTHONPATH": str(ROOT)})
    return env


def run_target(
    target: str, server: str, app: str, env: dict[str, str], args: argparse.Namespace, logdir: Path
) -> list[Result]:
    port = free_port()
    log = logdir / f"{target}-{server}.log"
    body = json.dumps(
        {
            "group_name": STRATEGY,
            "token": TOKEN,
            "symbol": "BTC/USDT",
            "order_type": "MARKET",
            "side": "buy",
            "qty_per": 1,
        }
    ).encode()
    results = []
    with process(server_command(server, app, port), env, log) as proc:
        wait_http(port, proc, "/" if target == "bare" else "/healthz", log)
        url = f"http://127.0.0.1:{port}/api/webhook"
        asyncio.run(_serial(url, body, 20, 202))  # first requests pay for lazy imports and connections
        # Background CPU (embedded: price feed, paper matcher, sweep) is subtracted per second;
        # measured once the warm-up's orders have been executed, as the lower of two windows.
        time.sleep(1.5)
        idle_rate = min(idle_cpu_rate(proc.pid, 1.5) for _ in range(2))
        for rate in [0, *args.rates]:
            if rate and args.warmup > 0:
                asyncio.run(_load(url, body, rate, args.warmup, 202))
            started, cpu_before = time.monotonic(), group_cpu_seconds(proc.pid)
            if rate == 0:
                result = asyncio.run(_serial(url, body, args.serial, 202))
            else:
                result = asyncio.run(_load(url, body, rate, args.duration, 202))
            busy = group_cpu_seconds(proc.pid) - cpu_before
            result.cpu_seconds = max(0.0, busy - idle_rate * (time.monotonic() - started))
            result.target, result.server = target, server
            print_row(result)
            results.append(result)
            if rate and result.achieved < 0.9 * rate:
                # Saturated: a higher rate only grows the backlog (and pollutes the next run).
                skipped = [r for r in args.rates if r > rate]
                if skipped:
                    print(f"{target:<12} {server:<9} saturated at {rate}/s: skipped {skipped}", flush=True)
                break
    return results


HEADER = (
    f"{'target':<12} {'server':<9} {'rate/s':>6} {'achieved/s':>10} {'p50 ms':>8} {'p99 ms':>8} "
    f"{'max ms':>8} {'cpu ms/req':>10}  errors"
)


def print_row(r: Result) -> None:
    errors = ", ".join(f"{k}: {v}" for k, v in r.errors.items()) or "-"
    print(
        f"{r.target:<12} {r.server:<9} {r.rate or 'serial':>6} {r.achieved:>10.1f} {r.pct(0.50):>8.1f} "
        f"{r.pct(0.99):>8.1f} {max(r.latencies_ms, default=float('nan')):>8.1f} "
        f"{r.cpu_ms_per_request:>10.1f}  {errors}",
        flush=True,
    )


def markdown(results: list[Result]) -> str:
    lines = [
        "| target | server | rate (req/s) | achieved (req/s) | p50 (ms) | p99 (ms) | max (ms) | server CPU ms/req | errors |",
        "|---|---|---:|---:|---:|---:|---:|---:|---|",
    ]
    for r in results:
        errors = ", ".join(f"{k}: {v}" for k, v in r.errors.items()) or "0"
        lines.append(
            f"| {r.target} | {r.server} | {r.rate or 'serial'} | {r.achieved:.1f} | {r.pct(0.5):.1f} | "
            f"{r.pct(0.99):.1f} | {max(r.latencies_ms, default=float('nan')):.1f} | "
            f"{r.cpu_ms_per_request:.1f} | {errors} |"
        )
    return "\n".join(lines)


def run_distributed(
    target: str, servers: list[str], args: argparse.Namespace, tmpdir: Path, logdir: Path
) -> list[Result]:
    """The product on PostgreSQL + Redis (fresh database, flushed Redis DB), with a Celery worker."""
    env = base_env(tmpdir / target)
    env.update(
        {
            "DATABASE_URL": args.database_url,
            "REDIS_URL": args.redis_url,
            "SECRET_KEY": secrets.token_urlsafe(50),
            "FIELD_ENCRYPTION_KEYS": _fernet_key(),
            "PRICE_FEEDS": "",
            "DJANGO_SETTINGS_MODULE": "quanttrade.settings",
        }
    )
    recreate_database(args.database_url)
    flush_redis(args.redis_url)
    results: list[Result] = []
    try:
        run_setup(env)
        worker = [str(VENV_BIN / "celery"), "-A", "quanttrade", "worker", "-c", "2", "--loglevel", "WARNING"]
        if args.no_worker:
            worker = [sys.executable, "-c", "import time; time.sleep(1e6)"]
        with process(worker, env, logdir / f"{target}-celery-worker.log"):
            for server in servers:
                results += run_target(target, server, "quanttrade.asgi:application", env, args, logdir)
    finally:
        recreate_database(args.database_url, drop_only=True)
        flush_redis(args.redis_url)
    return results


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rates", default="50,100,200", help="comma list of request rates (req/s)")
    parser.add_argument("--duration", type=float, default=10.0, help="seconds measured per rate")
    parser.add_argument(
        "--warmup", type=float, default=2.0, help="seconds of unmeasured load before each rate"
    )
    parser.add_argument(
        "--serial", type=int, default=100, help="requests sent one at a time before the rates (service time)"
    )
    parser.add_argument("--servers", default=",".join(SERVERS), help="servers for bare and distributed")
    parser.add_argument("--only", default="bare,embedded,distributed", help="targets to run")
    parser.add_argument(
        "--database-url",
        default="postgres://postgres:postgres@127.0.0.1:5432/qt_c_bench",
        help="PostgreSQL database for the distributed target: CREATED AND DROPPED by this script",
    )
    parser.add_argument(
        "--redis-url", default="redis://127.0.0.1:6379/3", help="Redis DB for the distributed target: FLUSHED"
    )
    parser.add_argument(
        "--own-servers",
        action="store_true",
        help="distributed: start a throwaway PostgreSQL cluster and Redis server for the run "
        "(recommended on a shared machine; ignores --database-url/--redis-url)",
    )
    parser.add_argument("--no-worker", action="store_true", help="distributed: do not run a Celery worker")
    parser.add_argument("--logs", type=Path, help="keep the servers' logs in this folder")
    parser.add_argument("--markdown", type=Path, help="also write the table as Markdown to this file")
    parser.add_argument("--setup-data", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.setup_data:
        setup_data()
        return
    args.rates = [int(r) for r in args.rates.split(",") if r]
    servers = [s for s in args.servers.split(",") if s]
    targets = {t for t in args.only.split(",") if t}

    print(
        f"# {platform.node()}: {os.cpu_count()} CPUs, Python {platform.python_version()}, "
        f"load average {' '.join(f'{x:.2f}' for x in os.getloadavg())}; "
        f"{args.duration:g} s per rate after {args.warmup:g} s warm-up, open loop, client on the same machine"
    )
    print(HEADER, flush=True)
    results: list[Result] = []
    with tempfile.TemporaryDirectory(prefix="qt-bench-") as tmp, ExitStack() as stack:
        tmpdir = Path(tmp)
        if args.own_servers and "distributed" in targets:
            args.database_url, args.redis_url = stack.enter_context(throwaway_backends(tmpdir / "backends"))
        logdir = args.logs or tmpdir / "logs"
        logdir.mkdir(parents=True, exist_ok=True)
        try:
            if "bare" in targets:
                env = base_env(tmpdir / "bare")
                for server in servers:
                    results += run_target("bare", server, BARE_APP, env, args, logdir)
            if "embedded" in targets:
                # `serve` runs daphne (default) or uvicorn; gunicorn's processes would each
                # have their own in-memory broker, which embedded mode does not support.
                for server in (s for s in servers if s in ("daphne", "uvicorn")):
                    # A fresh data folder each: `serve` re-dispatches the orders a previous
                    # run left queued, which would run during this server's measurements.
                    env = base_env(tmpdir / f"embedded-{server}")
                    run_setup(env)
                    results += run_target("embedded", server, "serve", env, args, logdir)
            if "distributed" in targets:
                results += run_distributed("distributed", servers, args, tmpdir, logdir)
        except Exception:
            for path in sorted(logdir.glob("*.log")):
                print(f"--- {path.name} (last 20 lines) ---", file=sys.stderr)
                print("\n".join(path.read_text(errors="replace").splitlines()[-20:]), file=sys.stderr)
            raise
    if args.markdown:
        args.markdown.write_text(markdown(results) + "\n", encoding="utf-8")
        print(f"# Markdown table written to {args.markdown}")


def _fernet_key() -> str:
    from cryptography.fernet import Fernet

    return Fernet.generate_key().decode()


if __name__ == "__main__":
    main()
