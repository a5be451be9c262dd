"""CPU per accepted webhook, next to the bare Django view's, measured the same way in one run.

Not a test: a measurement (issue #12: accept path <= 2x the bare view's CPU). Each target runs
in its own process and sends ``--requests`` webhooks one after the other through Django's test
client (request handling, the view, the response; no HTTP server, no load generator in the
way); the figure is the CPU time of the thread that handles the requests (``time.thread_time``)
per request after a warm-up: the accept path's own cost, not the executions that embedded mode
runs on other threads of the same process.

Targets:
  bare         bench/bare_app.py's view: parse the JSON body, answer 202 (the baseline)
  embedded     the product's POST /api/webhook on SQLite, as `manage.py serve` runs it: the
               orders go straight to the process's order threads (orders/handoff.py), which
               execute them on the paper venue while the requests go on
  distributed  the same on a throwaway PostgreSQL + Redis (as bench/webhook_accept.py
               --own-servers starts them); the PostgreSQL/Redis servers' own CPU is not counted

Each with 1 and 10 linked paper accounts (distributed: no worker runs, the orders stay queued).

    .venv/bin/python bench/accept_cpu.py --requests 200
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def run_bare(requests: int) -> dict[str, float]:
    from django.test import Client

    import bench.bare_app  # noqa: F401 - configures Django for the bare view

    client = Client(HTTP_HOST="127.0.0.1")
    payload = json.dumps({"group_name": "x", "token": "y", "symbol": "BTC/USDT", "side": "buy", "qty_per": 1})
    return _measure(
        lambda: client.post("/api/webhook", data=payload, content_type="application/json"), requests
    )


def _measure(send: Any, requests: int) -> dict[str, float]:
    for _ in range(20):
        assert send().status_code == 202
    # As a started server does (quanttrade/asgi.py): both targets, so the comparison stays fair.
    from quanttrade.heap import startup_heap_freeze

    startup_heap_freeze()
    cpu, wall = time.thread_time(), time.perf_counter()
    for _ in range(requests):
        response = send()
        assert response.status_code == 202, response.content
    return {
        "cpu_ms": (time.thread_time() - cpu) * 1000 / requests,
        "wall_ms": (time.perf_counter() - wall) * 1000 / requests,
    }


def run_product(requests: int, accounts: int) -> dict[str, float]:
    import django

    django.setup()
    from django.core.management import call_command
    from django.test import Client

    from bench.fanout import body, register_bench_venue, setup_data, start_server_loop

    register_bench_venue()
    if not os.environ.get("REDIS_URL"):
        from orders import handoff

        start_server_loop()
        handoff.install(handoff.LocalPool(4))  # as `manage.py serve` does in embedded mode
    call_command("migrate", verbosity=0)
    setup_data("paper", [accounts], None)
    client = Client(HTTP_HOST="127.0.0.1")
    payload = body(accounts)
    return _measure(
        lambda: client.post("/api/webhook", data=payload, content_type="application/json"), requests
    )


def child(args: argparse.Namespace) -> None:
    if args.child == "bare":
        result = run_bare(args.requests)
    else:
        result = run_product(args.requests, args.accounts)
    print(json.dumps({**result, "load": os.getloadavg()[0]}))


def spawn(target: str, requests: int, accounts: int, env: dict[str, str]) -> dict[str, Any]:
    out = subprocess.run(
        [
            sys.executable,
            __file__,
            "--child",
            target,
            "--requests",
            str(requests),
            "--accounts",
            str(accounts),
        ],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    if out.returncode:
        raise SystemExit(out.stderr[-3000:])
    return dict(json.loads(out.stdout.strip().splitlines()[-1]))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--requests", type=int, default=200)
    parser.add_argument("--accounts", type=int, default=1)
    parser.add_argument("--targets", default="bare,embedded,distributed")
    parser.add_argument(
        "--log-level",
        default="INFO",
        help="LOG_LEVEL of the product (default INFO, the product's own; rounds 1-28 ran WARNING)",
    )
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args)
        return
    targets = args.targets.split(",")
    base = {
        k: v for k, v in os.environ.items() if k not in {"DATABASE_URL", "REDIS_URL", "CELERY_BROKER_URL"}
    }
    base.update(
        {
            "QT_ALLOW_LOCAL_SECRETS": "1",
            "LOG_LEVEL": args.log_level,
            "DJANGO_SETTINGS_MODULE": "quanttrade.settings",
            "PYTHONPATH": str(ROOT),
        }
    )
    print(f"{os.cpu_count()} cores, load average at start {os.getloadavg()[0]:.1f}", flush=True)
    rows: list[tuple[str, int, dict[str, Any]]] = []
    bare_env = {k: v for k, v in base.items() if k != "DJANGO_SETTINGS_MODULE"}
    if "bare" in targets:
        rows.append(("bare", 0, spawn("bare", args.requests, 0, bare_env)))
    for accounts in (1, 10):
        if "embedded" in targets:
            env = {**base, "QT_DATA_DIR": tempfile.mkdtemp(prefix="qt-bench-cpu-")}
            rows.append(("embedded", accounts, spawn("product", args.requests, accounts, env)))
        if "bare" in targets:  # the baseline again, so each product row has a neighbour in time
            rows.append(("bare", 0, spawn("bare", args.requests, 0, bare_env)))
    if "distributed" in targets:
        from bench.webhook_accept import throwaway_backends

        servers = Path(tempfile.mkdtemp(prefix="qt-bench-servers-")) / "servers"
        with throwaway_backends(servers) as (database_url, redis_url):
            import psycopg

            admin = database_url.rsplit("/", 1)[0].replace("postgres://", "postgresql://") + "/postgres"
            for accounts in (1, 10):
                name = f"qt_bench_{accounts}"
                with psycopg.connect(admin, autocommit=True) as conn:
                    conn.execute(f'CREATE DATABASE "{name}"')
                env = {
                    **base,
                    "QT_DATA_DIR": tempfile.mkdtemp(prefix="qt-bench-cpu-"),
                    "DATABASE_URL": database_url.rsplit("/", 1)[0] + "/" + name,
                    "REDIS_URL": redis_url,
                }
                rows.append(("distributed", accounts, spawn("product", args.requests, accounts, env)))
                rows.append(("bare", 0, spawn("bare", args.requests, 0, bare_env)))
    bare = [r for t, _, r in rows if t == "bare"]
    bare_cpu = sorted(r["cpu_ms"] for r in bare)[len(bare) // 2]
    print(
        f"\n| target | accounts | CPU ms/request | wall ms/request | × bare (median {bare_cpu:.2f} ms) | load (1 min) |"
    )
    print("|---|---:|---:|---:|---:|---:|")
    for target, accounts, r in rows:
        print(
            f"| {target} | {accounts or '–'} | {r['cpu_ms']:.2f} | {r['wall_ms']:.2f} | "
            f"{r['cpu_ms'] / bare_cpu:.1f} | {r['load']:.1f} |"
        )


if __name__ == "__main__":
    main()
