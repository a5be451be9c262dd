"""Webhook received -> order request seen by the venue: p50/p99 for 1 and 10 accounts.

Not a test. One run on PostgreSQL + Redis (the distributed mode, SPEC §7):

    .venv/bin/python bench/venue_latency.py --database-url postgres://postgres:postgres@127.0.0.1:5432/qt_e \\
        --redis-url redis://127.0.0.1:6379/5 --rounds 100

What runs: the Binance simulator (venuesim.binance) in this process; a Celery worker as a
separate process (threads pool with one thread per account, or --pool/--concurrency); the webhook intake in this process
through Django's test client (validation, one transaction, enqueue on commit — the same code
as the HTTP view, without an HTTP server in front). Every account is a BINANCE account whose
``api_base_url`` points at the simulator.

Measured: for each webhook, from just before the POST is handed to Django to the moment the
simulator receives each account's ``POST /api/v3/order`` (both clocks are this machine's
``time.time()``). Baselines measured in the same run: the simulator's own round trip for a
signed order request sent with ``requests``, and ccxt's ``create_order`` round trip with its
markets loaded.

The database named by --database-url is dropped and created again.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(q / 100 * len(ordered) + 0.5) - 1))
    return ordered[index]


def summary(values: list[float]) -> str:
    ms = [v * 1000 for v in values]
    return f"p50 {percentile(ms, 50):6.1f} ms  p99 {percentile(ms, 99):6.1f} ms  (n={len(ms)}, mean {statistics.mean(ms):.1f})"


def recreate_database(url: str) -> None:
    import psycopg

    parts = urlsplit(url)
    name = parts.path.lstrip("/")
    admin_url = urlunsplit(parts._replace(scheme="postgresql", path="/postgres"))
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{name}"')


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--database-url", default="postgres://postgres:postgres@127.0.0.1:5432/qt_e")
    parser.add_argument("--redis-url", default="redis://127.0.0.1:6379/5")
    parser.add_argument("--accounts", type=int, nargs="+", default=[1, 10])
    parser.add_argument("--rounds", type=int, default=100)
    parser.add_argument("--interval", type=float, default=1.0, help="seconds between webhooks (per strategy)")
    parser.add_argument(
        "--no-ccxt-throttle", action="store_true", help="accounts set enable_rate_limit: false"
    )
    parser.add_argument(
        "--pool", default="threads", choices=["threads", "prefork"], help="the Celery worker's pool"
    )
    parser.add_argument(
        "--concurrency",
        type=int,
        help="worker threads/processes (default: one per account of the largest run)",
    )
    parser.add_argument("--workers", type=int, default=1, help="worker processes (each with the pool above)")
    parser.add_argument("--json", type=Path, help="also write the figures here")
    args = parser.parse_args()

    data_dir = tempfile.mkdtemp(prefix="qt-bench-venue-")
    env = {
        **os.environ,
        "DATABASE_URL": args.database_url,
        "REDIS_URL": args.redis_url,
        "QT_DATA_DIR": data_dir,
        "QT_ALLOW_LOCAL_SECRETS": "1",
        "LOG_LEVEL": "WARNING",
        "DJANGO_SETTINGS_MODULE": "quanttrade.settings",
    }
    os.environ.update(env)
    recreate_database(args.database_url)

    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)
    from django.core.cache import cache

    from quanttrade.celery import app

    cache.clear()
    app.control.purge()

    from venuesim.binance import BinanceSim

    sim = BinanceSim()
    sim.spot_balances["USDT"] = sim.spot_balances["USDT"] * 1000
    base_url = sim.start()
    print(f"simulator {base_url}; worker starting…", flush=True)

    max_accounts = max(args.accounts)
    workers = [
        subprocess.Popen(
            [
                str(ROOT / ".venv/bin/celery"),
                "-A",
                "quanttrade",
                "worker",
                "-P",
                args.pool,
                "-c",
                str(args.concurrency or max_accounts),
                "--hostname",
                f"bench{index}@%h",
                "--without-gossip",
                "--without-mingle",
                "--without-heartbeat",
                "--loglevel",
                "WARNING",
            ],
            cwd=ROOT,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=open(Path(data_dir) / f"worker{index}.log", "w"),
        )
        for index in range(args.workers)
    ]
    results: dict[str, Any] = {}
    load_before = os.getloadavg()
    try:
        results["baseline_sim_round_trip"] = baseline_round_trip(sim, base_url)
        results["baseline_ccxt_create_order"] = baseline_ccxt(sim, base_url)
        for n in args.accounts:
            results[f"{n}_accounts"] = run(
                n, sim, base_url, args.rounds, throttle=not args.no_ccxt_throttle, interval=args.interval
            )
    finally:
        for worker in workers:
            worker.terminate()
        for worker in workers:
            worker.wait(timeout=30)
        sim.stop()
    print()
    print(f"workers: {args.workers} x -P {args.pool} -c {args.concurrency or max_accounts}")
    print(
        f"load average (1 min) before {load_before[0]:.1f}, after {os.getloadavg()[0]:.1f}, {os.cpu_count()} cores"
    )
    print(
        f"simulator round trip (signed order POST, requests): {summary(results['baseline_sim_round_trip'])}"
    )
    print(
        f"ccxt create_order round trip (markets loaded):      {summary(results['baseline_ccxt_create_order'])}"
    )
    for n in args.accounts:
        per_order, last = results[f"{n}_accounts"]
        print(f"{n:>2} account(s): webhook -> order at venue, every order: {summary(per_order)}")
        print(f"{n:>2} account(s): webhook -> last account's order:       {summary(last)}")
    for step, values in BREAKDOWN.items():
        print(f" 1 account: webhook -> {step:<20} {summary(values)}")
    if args.json:
        args.json.write_text(json.dumps({k: v for k, v in results.items()}, default=list))


def baseline_round_trip(sim: Any, base_url: str, count: int = 200) -> list[float]:
    import hashlib
    import hmac
    from urllib.parse import urlencode

    import requests

    session = requests.Session()
    times = []
    for i in range(count):
        query = urlencode(
            {
                "symbol": "BTCUSDT",
                "side": "BUY",
                "type": "LIMIT",
                "timeInForce": "GTC",
                "quantity": "0.001",
                "price": "40000",
                "newClientOrderId": f"base{i}",
                "timestamp": int(time.time() * 1000),
            }
        )
        signature = hmac.new(b"sim-secret", query.encode(), hashlib.sha256).hexdigest()
        started = time.perf_counter()
        response = session.post(
            f"{base_url}/api/v3/order",
            data=f"{query}&signature={signature}",
            headers={"X-MBX-APIKEY": "sim-key", "Content-Type": "application/x-www-form-urlencoded"},
        )
        times.append(time.perf_counter() - started)
        response.raise_for_status()
    return times


def baseline_ccxt(sim: Any, base_url: str, count: int = 200) -> list[float]:
    import ccxt

    # Imported here: the project's modules need the sys.path entry and Django set up first.
    from orders.exchanges.ccxt.base import _rebase
    from orders.exchanges.ccxt.binance import BinanceAdapter

    client = ccxt.binance(
        {
            "apiKey": "sim-key",
            "secret": "sim-secret",
            "enableRateLimit": False,
            "options": {**BinanceAdapter.venue_options},
        }
    )
    client.urls["api"] = _rebase(client.urls["api"], base_url)
    client.load_markets()
    times = []
    for i in range(count):
        started = time.perf_counter()
        client.create_order("BTC/USDT", "limit", "buy", 0.001, 40000, {"clientOrderId": f"cc{i}"})
        times.append(time.perf_counter() - started)
    return times


BREAKDOWN: dict[str, list[float]] = {}


def run(
    n: int, sim: Any, base_url: str, rounds: int, *, throttle: bool, interval: float
) -> tuple[list[float], list[float]]:
    from django.test import Client

    from strategies.models import Account, Strategy, StrategyAccount

    group = f"bench_{n}_{int(time.time())}"
    strategy = Strategy.objects.create(
        group_name=group, market_type="SPOT", token="bench-token", rate_limit="100000/m"
    )
    for i in range(n):
        settings: dict[str, Any] = {"api_base_url": base_url}
        if not throttle:
            settings["enable_rate_limit"] = False
        account = Account.objects.create(
            name=f"{group}-{i}",
            exchange="BINANCE",
            api_key="sim-key",
            api_secret="sim-secret",
            settings=settings,
        )
        StrategyAccount.objects.create(strategy=strategy, account=account)
    client = Client(HTTP_HOST="127.0.0.1")
    body = json.dumps(
        {
            "group_name": group,
            "token": "bench-token",
            "symbol": "BTC/USDT",
            "currency": "USDT",
            "order_type": "MARKET",
            "side": "buy",
            "qty_per": "0.01",
        }
    )
    per_order: list[float] = []
    last: list[float] = []
    breakdown = BREAKDOWN
    warmup = 3
    for round_ in range(rounds + warmup):
        seen_before = len(sim.seen("/api/v3/order", "POST"))
        started = time.time()
        response = client.post("/api/webhook", data=body, content_type="application/json")
        if n == 1 and round_ >= warmup:
            breakdown.setdefault("202 answered (intake)", []).append(time.time() - started)
        assert response.status_code == 202, response.content
        deadline = time.monotonic() + 30
        while len(sim.seen("/api/v3/order", "POST")) < seen_before + n:
            if time.monotonic() > deadline:
                raise SystemExit(f"orders did not reach the simulator (round {round_})")
            time.sleep(0.001)
        arrivals = [r.received_at - started for r in sim.seen("/api/v3/order", "POST")[seen_before:]]
        if n == 1 and round_ >= warmup:
            # Where the time goes: the first venue request (balance), the ticker, the order.
            with sim.lock:
                recent = [r for r in sim.requests if r.received_at >= started]
            stamps = {r.path: r.received_at - started for r in reversed(recent)}
            for step in ("/api/v3/account", "/api/v3/ticker/24hr", "/api/v3/order"):
                if step in stamps:
                    breakdown.setdefault(step, []).append(stamps[step])
        if round_ >= warmup:  # the first webhooks load each account's markets
            per_order.extend(arrivals)
            last.append(max(arrivals))
        time.sleep(interval)
    return per_order, last


if __name__ == "__main__":
    main()
