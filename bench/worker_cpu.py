"""CPU per order on a worker's side of a fan-out, and who spends it: the worker process, and the
PostgreSQL and Redis servers it talks to.

Not a test: a measurement (issue #12). The full fan-out benchmark (bench/fanout.py) measures what
a signal costs the whole machine; on two shared cores its run-to-run spread (10-20 %) hides any
single change below that. This one measures only the part a fan-out is bound by, in one process:
webhooks to N paper accounts are accepted with no worker consuming, then each round's orders run
here exactly as a Celery worker's threads run a fan-out's chunks (``execute_webhook_orders`` with
the whole chunk, on ``--threads`` threads). Per round: this process's CPU time per order (all its
threads: the executing ones and the live-push sender) and the servers' (every PostgreSQL and
Redis process, read from /proc), median over the rounds after two warm-up rounds.

The same run measures what each part costs by leaving it out (``--without``), in alternating
rounds so the machine's drift falls on all of them alike:
``marks`` the liveness marks in Redis (claim, sending, the chunk's start and end records),
``sending`` the send mark alone,
``pushes`` the live pushes (order updates to the `orders` group), ``venue`` the paper venue
(a placement answered filled without touching its book). Leaving a part out is not a product
mode: it says how much of the total that part is.

PostgreSQL and Redis are throwaway servers of this run (as bench/fanout.py --backend distributed).

    .venv/bin/python bench/worker_cpu.py --accounts 100 --rounds 12 --without marks,pushes,venue
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack
from decimal import Decimal
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def server_cpu_seconds(database_url: str, redis_url: str) -> float:
    """CPU seconds spent so far by this run's PostgreSQL server (its postmaster and every process
    it started) and Redis server, found by their ports; other servers on the machine are not
    counted."""
    tick = os.sysconf("SC_CLK_TCK")
    pg_port = urlsplit(database_url).port
    redis_port = urlsplit(redis_url).port
    processes: dict[int, tuple[bytes, int, float]] = {}  # pid -> (command line, parent, CPU)
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as f:
                command = f.read()
            with open(f"/proc/{pid}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        processes[int(pid)] = (command, int(fields[1]), (int(fields[11]) + int(fields[12])) / tick)
    postmasters = {
        pid
        for pid, (command, _, _) in processes.items()
        if command.split(b"\0")[0].endswith(b"/postgres") and f"\0-p\0{pg_port}\0".encode() in command + b"\0"
    }
    return sum(
        cpu
        for pid, (command, parent, cpu) in processes.items()
        if pid in postmasters
        or parent in postmasters
        or (command.startswith(b"redis-server") and command.rstrip(b"\0").endswith(f":{redis_port}".encode()))
    )


def without(part: str) -> Callable[[], None]:
    """Leave ``part`` out (see the module's docstring); returns what puts it back."""
    from bench.fanout import LatencyPaper
    from orders import liveness, services
    from orders.exchanges.base import OrderResult

    saved: list[tuple[Any, str, Any]] = []

    def patch(owner: Any, name: str, value: Any) -> None:
        saved.append((owner, name, getattr(owner, name)))
        setattr(owner, name, value)

    if part == "marks":
        for name in ("mark_started_many", "mark_claim", "clear_dispatch", "clear_dispatch_many"):
            if hasattr(liveness, name):  # clear_dispatch_many: since round 18
                patch(liveness, name, lambda *a, **k: None)
        patch(liveness, "mark_sending", lambda *a, **k: True)
    elif part == "sending":
        patch(liveness, "mark_sending", lambda *a, **k: True)
    elif part == "pushes":
        patch(services, "order_broadcast", lambda *a, **k: None)
    elif part == "venue":

        def filled(self: Any, request: Any) -> OrderResult:
            return OrderResult(
                status="filled",
                exchange_order_id="BENCH",
                quantity=Decimal("0.001"),
                filled_qty=Decimal("0.001"),
                avg_price=Decimal("50000"),
            )

        patch(LatencyPaper, "place_order", filled)
    elif part:
        raise SystemExit(f"--without: unknown part {part!r} (marks, sending, pushes, venue)")

    def restore() -> None:
        for owner, name, value in reversed(saved):
            setattr(owner, name, value)

    return restore


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--accounts", type=int, default=100)
    parser.add_argument("--rounds", type=int, default=12, help="rounds per variant (two more warm up)")
    parser.add_argument("--threads", type=int, default=8, help="as a worker's --concurrency")
    parser.add_argument("--without", default="", help="comma-separated parts to measure by leaving out")
    parser.add_argument(
        "--order-threads",
        choices=["on", "off", "both"],
        default="both",
        help="the chunks' accounts on the worker's order threads (WORKER_ORDER_THREADS, "
        "WORKER_ORDER_TURNS running: as a started worker runs them), on the task's threads one "
        "after another (WORKER_ORDER_THREADS=0), or both in alternating rounds",
    )
    args = parser.parse_args()
    parts = ["", *[p for p in args.without.split(",") if p]]
    modes = {"on": [True], "off": [False], "both": [True, False]}[args.order_threads]
    variants = [(part, threaded) for part in parts for threaded in modes]

    tmp = Path(tempfile.mkdtemp(prefix="qt-bench-workercpu-"))
    with ExitStack() as stack:
        from bench.webhook_accept import throwaway_backends

        database_url, redis_url = stack.enter_context(throwaway_backends(tmp / "servers"))
        import psycopg

        admin = database_url.rsplit("/", 1)[0].replace("postgres://", "postgresql://") + "/postgres"
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute('CREATE DATABASE "qt_bench"')
        os.environ.update(
            {
                "DATABASE_URL": database_url,
                "REDIS_URL": redis_url,
                "QT_DATA_DIR": str(tmp / "data"),
                "QT_ALLOW_LOCAL_SECRETS": "1",
                "LOG_LEVEL": "WARNING",
                "DJANGO_SETTINGS_MODULE": "quanttrade.settings",
                "ORDER_WEB_THREADS": "0",  # the intake only publishes: nothing consumes
                "ORDER_STALE_AFTER_SECONDS": "600",
            }
        )
        import django

        django.setup()
        from django.core.management import call_command

        from bench import fanout

        fanout.register_bench_venue()
        call_command("migrate", verbosity=0)
        fanout.setup_data("paper", [args.accounts], None)

        from django.db import close_old_connections
        from django.test import Client

        from live import bus
        from orders.models import Order
        from orders.tasks import execute_webhook_orders, worker_order_threads
        from prices.services import price_publish
        from quanttrade.celery import app as celery_app

        client = Client(HTTP_HOST="127.0.0.1")
        pool = ThreadPoolExecutor(args.threads)

        def one_round() -> tuple[float, float]:
            price_publish("BINANCE:BTC/USDT", Decimal("50000"))
            response = client.post(
                "/api/webhook", data=fanout.body(args.accounts), content_type="application/json"
            )
            assert response.status_code == 202, response.content[:300]
            celery_app.control.purge()  # the intake's message: this process runs the orders
            webhook_id = response.json()["webhook_id"]
            accounts = list(Order.objects.filter(webhook_id=webhook_id).values_list("account_id", flat=True))
            chunks = [accounts[i :: args.threads] for i in range(args.threads)]
            cpu, servers = time.process_time(), server_cpu_seconds(database_url, redis_url)

            def task(chunk: list[int]) -> None:
                execute_webhook_orders.run(webhook_id, chunk, None, len(chunk))
                # As Celery's Django fix-up does after each task: the connections go back to
                # the pool (kept, the task threads would hold what the order threads need).
                close_old_connections()

            list(pool.map(task, chunks))
            bus.flush(5)
            time.sleep(0.3)  # the servers finish what they were sent (their CPU is read after)
            statuses = set(Order.objects.filter(webhook_id=webhook_id).values_list("status", flat=True))
            assert statuses == {"filled"}, statuses
            n = len(accounts)
            return (time.process_time() - cpu) * 1000 / n, (
                server_cpu_seconds(database_url, redis_url) - servers
            ) * 1000 / n

        from orders import handoff

        order_threads = worker_order_threads()
        if order_threads is None and True in modes:
            raise SystemExit("--order-threads on/both: WORKER_ORDER_THREADS is 0")
        results: dict[tuple[str, bool], list[tuple[float, float]]] = {v: [] for v in variants}
        for _ in range(2):
            one_round()
        for _ in range(args.rounds):
            for variant in variants:
                part, threaded = variant
                restore = without(part)
                handoff.install_worker(order_threads if threaded else None)
                try:
                    results[variant].append(one_round())
                finally:
                    handoff.install_worker(None)
                    restore()
        if order_threads is not None:
            order_threads.shutdown(wait=True)

        print(
            f"{os.cpu_count()} cores, load {os.getloadavg()[0]:.1f}; {args.accounts} accounts, "
            f"{args.threads} threads, {args.rounds} rounds per row (median)"
        )
        if order_threads is not None:
            print(
                f"order threads: {order_threads.threads}, {order_threads.running} running "
                "(WORKER_ORDER_THREADS, WORKER_ORDER_TURNS)"
            )
        print("| variant | worker CPU ms/order | PostgreSQL + Redis CPU ms/order | total |")
        print("|---|---|---|---|")
        for variant in variants:
            worker = statistics.median(r[0] for r in results[variant])
            server = statistics.median(r[1] for r in results[variant])
            part, threaded = variant
            name = (f"without {part}" if part else "as shipped") + (
                ", on the order threads" if threaded else ", on the task's threads"
            )
            print(f"| {name} | {worker:.2f} | {server:.2f} | {worker + server:.2f} |")


if __name__ == "__main__":
    main()
