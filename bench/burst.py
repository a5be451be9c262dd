"""A burst of signals to one account: how long it drains, how often the sweep re-sends work,
whether any order is placed twice, and how many venue calls each signal costs.

Not a test (tests/venues/test_burst.py pins the behaviour). One run:

    .venv/bin/python bench/burst.py --redis-url redis://127.0.0.1:6379/5 --signals 200

What runs: the Binance simulator in this process (each order answered ``--venue-delay`` s late,
as a busy venue does); Celery worker processes (``--workers`` x ``--concurrency`` threads) on the
Redis broker; the sweep in this process every ``--sweep-every`` s with ORDER_STALE_AFTER_SECONDS
= ``--stale`` (shorter than the drain, so a sweep that re-sends queued work shows it). The
orders are written as the intake writes them (one webhook per signal, alternating over
``--symbols`` symbols) and dispatched together. The price layer gets the simulator's price from
a ``ccxt``-feed publisher, as the real feed would.

The database is SQLite in a temporary folder unless ``--database-url`` names PostgreSQL (that
database is dropped and created again).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from decimal import Decimal
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

SYMBOLS = ["BTC/USDT", "ETH/USDT", "SOL/USDT"]


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--redis-url", required=True)
    parser.add_argument("--database-url", default="")
    parser.add_argument("--signals", type=int, default=200)
    parser.add_argument("--symbols", type=int, default=1, choices=[1, 2, 3])
    parser.add_argument(
        "--venue-delay", type=float, default=0.05, help="seconds each order waits at the venue"
    )
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--concurrency", type=int, default=4)
    parser.add_argument("--sweep-every", type=float, default=1.0)
    parser.add_argument("--stale", type=float, default=3.0, help="ORDER_STALE_AFTER_SECONDS for the sweep")
    parser.add_argument(
        "--no-venue-limits",
        action="store_true",
        help="enable_rate_limit false: no rate-limit buckets (nor ccxt's throttle); the venue's limits unkept",
    )
    parser.add_argument("--timeout", type=float, default=600.0)
    parser.add_argument("--json", type=Path, help="also write the figures here")
    args = parser.parse_args()

    data_dir = tempfile.mkdtemp(prefix="qt-bench-burst-")
    env = {
        **os.environ,
        "REDIS_URL": args.redis_url,
        "QT_DATA_DIR": data_dir,
        "QT_ALLOW_LOCAL_SECRETS": "1",
        "QT_SKIP_VENUE_WARMUP": "1",
        "LOG_LEVEL": "WARNING",
        "DJANGO_SETTINGS_MODULE": "quanttrade.settings",
        "ORDER_STALE_AFTER_SECONDS": str(int(args.stale)),
    }
    if args.database_url:
        env["DATABASE_URL"] = args.database_url
        sys.path.insert(0, str(ROOT / "bench"))
        from venue_latency import recreate_database

        recreate_database(args.database_url)
    os.environ.update(env)

    import django

    django.setup()
    from django.core.cache import cache
    from django.core.management import call_command

    call_command("migrate", verbosity=0)
    from orders.models import Order
    from orders.services import orders_dispatch, orders_sweep
    from prices.services import price_publish
    from quanttrade.celery import app
    from strategies.models import Account, Strategy, StrategyAccount
    from venuesim.binance import BinanceSim
    from webhooks.models import WebhookEvent

    cache.clear()
    app.control.purge()
    sim = BinanceSim()
    sim.spot_balances["USDT"] = Decimal("1000000000")
    base_url = sim.start()
    sim.inject("late", "/api/v3/order", method="POST", count=10**9, delay=args.venue_delay)

    symbols = SYMBOLS[: args.symbols]
    strategy = Strategy.objects.create(group_name="burst", market_type="SPOT", token="burst-token")
    account = Account.objects.create(
        name="burst",
        exchange="BINANCE",
        api_key="sim-key",
        api_secret="sim-secret",
        settings={
            "api_base_url": base_url,
            "timeout_seconds": 5,
            "price_layer_for_base_url": True,
            "enable_rate_limit": not args.no_venue_limits,
        },
    )
    StrategyAccount.objects.create(strategy=strategy, account=account)

    stop = threading.Event()

    def publish_prices() -> None:  # what the ccxt feed does for the real venue
        while not stop.is_set():
            for symbol in symbols:
                price_publish(f"BINANCE:{symbol}", sim.prices[symbol.replace("/", "")], feed="ccxt")
            stop.wait(0.5)

    threading.Thread(target=publish_prices, daemon=True).start()
    workers = [
        subprocess.Popen(
            [
                str(ROOT / ".venv/bin/celery"),
                "-A",
                "quanttrade",
                "worker",
                "-P",
                "threads",
                "-c",
                str(args.concurrency),
                "--hostname",
                f"burst{index}@%h",
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
    try:
        time.sleep(5)  # the workers connect
        events = []
        for index in range(args.signals):
            event = WebhookEvent.objects.create(
                strategy=strategy, group_name="burst", outcome="accepted", http_status=202
            )
            order = Order(
                webhook=event,
                strategy=strategy,
                account=account,
                sequence=0,
                batch_index=1,
                market_type="SPOT",
                symbol=symbols[index % len(symbols)],
                currency="USDT",
                side="BUY",
                order_type="MARKET",
                qty_per=Decimal("0.001"),
            )
            order.client_order_id = "qt" + order.id.hex
            order.save()
            events.append(event)
        requests_before = len(sim.requests)
        started = time.monotonic()
        for event in events:
            orders_dispatch(event.id, [account.id])
        redispatched = 0
        sweeps = 0
        while time.monotonic() - started < args.timeout:
            time.sleep(args.sweep_every)
            if not Order.objects.filter(status__in=["queued", "submitted"]).exists():
                break
            redispatched += orders_sweep(stale_after_seconds=args.stale)["redispatched"]
            sweeps += 1
        drained = time.monotonic() - started
    finally:
        stop.set()
        for worker in workers:
            worker.terminate()
        for worker in workers:
            worker.wait(30)
        sim.stop()

    statuses = Counter(Order.objects.values_list("status", flat=True))
    placed = Counter(
        r.form.get("newClientOrderId") or r.query.get("newClientOrderId")
        for r in sim.seen("/api/v3/order", "POST")
    )
    calls = [f"{r.method} {r.path}" for r in sim.requests[requests_before:]]
    other_calls = Counter(call for call in calls if not call.startswith("POST /api/v3/order"))
    figures: dict[str, Any] = {
        "signals": args.signals,
        "symbols": len(symbols),
        "drain_seconds": round(drained, 1),
        "sweeps": sweeps,
        "redispatched": redispatched,
        "statuses": dict(statuses),
        "placed_twice": sum(1 for count in placed.values() if count > 1),
        "order_requests": sum(placed.values()),
        "other_venue_calls": dict(other_calls),
        "other_calls_per_signal": round(sum(other_calls.values()) / args.signals, 2),
    }
    print(json.dumps(figures, indent=2))
    if args.json:
        args.json.write_text(json.dumps(figures, indent=2))


if __name__ == "__main__":
    main()
