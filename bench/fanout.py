"""Time to market, read from the orders' own latency trail (orders/trail.py).

Not a test: a measurement (issue #12). One webhook goes to 1, 10, 100 or 1,000 linked accounts;
for every order the trail says when it was received, committed, dispatched, claimed by a worker,
sent to the venue and answered. Printed per run: the webhook's 202 time (the intake, measured by
the caller), p50 of received -> `sent` over every order, and the *last* account's `sent` and
`answered` (the figure a fan-out is judged by), the whole machine's busy CPU time over each
signal's window (from the POST until its orders settled) per order, median over the signals,
and the load average beside each row.

Venues: ``paper`` is the product's paper venue behind a bench adapter that waits
``--latency-ms`` before each placement (a distant venue's round trip, with no HTTP of its own);
``binance`` is the Binance simulator (venuesim) over real HTTP with the same added latency per
answer (each order is a balance, a ticker and an order request: three round trips).

Backends: ``embedded`` runs as `manage.py serve` does (SQLite in a temp folder, in-memory broker,
the Celery worker as threads of this process); ``distributed`` starts a throwaway PostgreSQL
cluster and Redis server (as bench/webhook_accept.py --own-servers does) and 1, 2 or 4 Celery
worker processes (threads pool, --threads each). The intake runs in this process through
Django's test client (the same code as the HTTP view, without a server in front; see
bench/webhook_accept.py for the HTTP figures).

Baselines measured in the same run: the simulator's own round trip (a signed order POST with
`requests`) and the bare webhook view's CPU (see bench/accept_cpu.py).

    .venv/bin/python bench/fanout.py --backend embedded --accounts 1,10,100 --latency-ms 0,50
    .venv/bin/python bench/fanout.py --backend distributed --workers 1,2,4 --accounts 1,10,100,1000
    .venv/bin/python bench/fanout.py --backend distributed --venue binance --accounts 1,10 --signals 50
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

TOKEN = "bench-token-" + "x" * 20
LATENCY_ENV = "BENCH_VENUE_LATENCY_MS"


def _latency_paper() -> type:
    from orders.exchanges.paper import PaperAdapter
    from orders.handoff import venue_sleep

    class LatencyPaper(PaperAdapter):
        """The paper venue, answering each placement BENCH_VENUE_LATENCY_MS later."""

        def place_order(self, request: Any) -> Any:
            delay = float(os.environ.get(LATENCY_ENV) or 0) / 1000
            if delay:
                # As a venue's HTTP answer is awaited (orders.exchanges.http): another order
                # runs meanwhile.
                venue_sleep(delay)
            return super().place_order(request)

    return LatencyPaper


_classes: dict[str, type] = {}


def __getattr__(name: str) -> type:
    """``bench.fanout.LatencyPaper``, built on first use (Django must be set up first)."""
    if name != "LatencyPaper":
        raise AttributeError(name)
    if name not in _classes:
        _classes[name] = _latency_paper()
    return _classes[name]


def register_bench_venue() -> None:
    """Make BENCHPAPER an exchange of this process (the registry names adapters by path)."""
    from orders import exchanges

    exchanges.ADAPTERS["BENCHPAPER"] = "bench.fanout.LatencyPaper"


def start_server_loop() -> None:
    """An event loop in a thread, registered as the ASGI server's (live.bus): in embedded mode
    pushes to the in-memory channel layer go there, as they do under `manage.py serve`."""
    import asyncio
    import threading

    from live.bus import register_server_loop

    loop = asyncio.new_event_loop()
    threading.Thread(target=loop.run_forever, name="server-loop", daemon=True).start()
    register_server_loop(loop)


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    index = min(len(ordered) - 1, max(0, round(q / 100 * len(ordered) + 0.5) - 1))
    return ordered[index]


def load() -> str:
    one, five, _ = os.getloadavg()
    return f"{one:.1f}/{five:.1f}"


def machine_busy_seconds() -> float:
    """CPU seconds the whole machine has spent busy since boot (Linux ``/proc/stat``: every
    state but idle and iowait), 0 where there is none. The servers of a run share the
    machine (PostgreSQL, Redis, the workers, this process): the difference over a signal's
    window is the work that signal cost, whatever waited for what."""
    try:
        with open("/proc/stat") as stat:
            fields = [int(x) for x in stat.readline().split()[1:]]
    except OSError:
        return 0.0
    idle = fields[3] + (fields[4] if len(fields) > 4 else 0)
    return (sum(fields[:8]) - idle) / os.sysconf("SC_CLK_TCK")


# --- the worker side ------------------------------------------------------------------------


def worker_main(threads: int, name: str) -> None:
    import django

    django.setup()
    register_bench_venue()
    from quanttrade.celery import app

    app.worker_main(
        [
            "worker",
            "-P",
            "threads",
            "-c",
            str(threads),
            "--hostname",
            f"{name}@%h",
            "--without-gossip",
            "--without-mingle",
            "--without-heartbeat",
            "--loglevel",
            # As the product's worker command (README, Procfile, deploy/) runs it: INFO there.
            os.environ.get("LOG_LEVEL") or "INFO",
        ]
    )


# --- the measuring side ---------------------------------------------------------------------


def setup_data(venue: str, counts: list[int], sim_url: str | None, price_feed: bool = False) -> None:
    from decimal import Decimal

    from orders.models import PaperBalance
    from prices.services import price_publish
    from strategies.models import Account, Strategy, StrategyAccount

    for n in counts:
        strategy = Strategy.objects.create(
            group_name=f"fan_{n}", market_type="SPOT", token=TOKEN, rate_limit="100000/m"
        )
        accounts = []
        for i in range(n):
            if venue == "binance":
                account = Account(
                    name=f"fan{n}-{i:04d}",
                    exchange="BINANCE",
                    api_key="sim-key",
                    api_secret="sim-secret",
                    settings={
                        "api_base_url": sim_url,
                        "enable_rate_limit": False,
                        # --price-feed: size from the price layer as on the real venue
                        "price_layer_for_base_url": price_feed,
                    },
                )
            else:
                account = Account(name=f"fan{n}-{i:04d}", exchange="BENCHPAPER")
            accounts.append(account)
        Account.objects.bulk_create(accounts)
        accounts = list(Account.objects.filter(name__startswith=f"fan{n}-"))
        StrategyAccount.objects.bulk_create(
            [StrategyAccount(strategy=strategy, account=account) for account in accounts]
        )
        if venue != "binance":
            PaperBalance.objects.bulk_create(
                [PaperBalance(account=a, asset="USDT", free=Decimal("1000000000")) for a in accounts]
            )
    price_publish("BINANCE:BTC/USDT", Decimal("50000"))


@contextmanager
def venue_price_feed(instrument: str = "BINANCE:BTC/USDT", every: float = 0.5) -> Iterator[None]:
    """The venue's own ticker feed, as `pricefeed` runs it for the real venue (feed "ccxt"):
    a tick every ``every`` seconds, so a market order is sized from the price layer, not from a
    ticker read at the venue (the adapter's ``price_max_age_seconds``, 3 s)."""
    from decimal import Decimal

    from prices.services import price_publish

    stop = threading.Event()

    def run() -> None:
        while not stop.is_set():
            price_publish(instrument, Decimal("50000"), feed="ccxt")
            stop.wait(every)

    thread = threading.Thread(target=run, name="bench-price-feed", daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join(5)


@contextmanager
def notification_destination() -> Iterator[None]:
    """An active notification destination that wants every fill (``--notify``), as a trader
    who follows fills on Telegram has: a local sink stands in for the messenger (apprise's
    json:// scheme; the batched messages it gets are few and cost next to nothing)."""
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    from notify.models import EventKind, NotificationDestination

    class Sink(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            self.rfile.read(int(self.headers.get("Content-Length") or 0))
            self.send_response(200)
            self.end_headers()

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Sink)
    threading.Thread(target=server.serve_forever, name="notify-sink", daemon=True).start()
    NotificationDestination.objects.create(
        name="bench",
        url=f"json://127.0.0.1:{server.server_address[1]}/fills",
        events=[EventKind.ORDER_FILLED],
    )
    try:
        yield
    finally:
        server.shutdown()
        server.server_close()


def body(n: int) -> str:
    return json.dumps(
        {
            "group_name": f"fan_{n}",
            "token": TOKEN,
            "symbol": "BTC/USDT",
            "currency": "USDT",
            "order_type": "MARKET",
            "side": "buy",
            "qty_per": "0.001",
        }
    )


def settle(webhook_id: str, n: int, timeout: float = 120.0) -> list[dict[str, Any]]:
    from orders.models import Order

    deadline = time.monotonic() + timeout
    # The first look comes after the orders have had time to reach the venue: a query from this
    # thread while they are on their way would take the interpreter from them (embedded: same
    # process) or a core (distributed), and the figures would include the bench's own load.
    time.sleep(0.1 if n <= 10 else 0.05)
    orders = Order.objects.filter(webhook_id=webhook_id)
    while True:
        # Whether any is still on its way, by the index: reading every row's trail on each look
        # (a thousand JSON documents) took ~8 % of the interpreter from a 1,000-account fan-out
        # it was waiting for (round 32). The trails are read once, when all have settled.
        if orders.count() == n and not orders.filter(status__in=("queued", "submitted")).exists():
            return list(orders.values("status", "trail"))  # a settled order stays settled
        if time.monotonic() > deadline:
            statuses = list(orders.values_list("status", flat=True)[:10])
            raise SystemExit(f"webhook {webhook_id}: not settled after {timeout}s: {statuses}")
        # Every figure comes from the trail, not from this loop: polling gently keeps the loop's
        # own queries from loading the machine the servers share.
        time.sleep(0.01 if n == 1 else 0.05)


def run_signals(n: int, signals: int, gap: float) -> dict[str, Any]:
    """``signals`` webhooks to the strategy of ``n`` accounts, one at a time."""
    from django.test import Client

    client = Client(HTTP_HOST="127.0.0.1")
    accepted: list[float] = []
    sent_all: list[float] = []
    last_sent: list[float] = []
    last_answered: list[float] = []
    stages: dict[str, list[float]] = {}
    statuses: dict[str, int] = {}
    busy: list[float] = []
    warmup = 2 if n <= 10 else 1
    for index in range(signals + warmup):
        busy_before = machine_busy_seconds()
        started = time.perf_counter()
        response = client.post("/api/webhook", data=body(n), content_type="application/json")
        took = time.perf_counter() - started
        assert response.status_code == 202, response.content
        rows = settle(response.json()["webhook_id"], n)
        if index < warmup:
            continue
        busy.append((machine_busy_seconds() - busy_before) * 1000 / n)
        accepted.append(took * 1000)
        trails = [r["trail"] for r in rows]
        for row in rows:
            statuses[row["status"]] = statuses.get(row["status"], 0) + 1
        sent = [t["sent"] / 1000 for t in trails if "sent" in t]
        sent_all.extend(sent)
        last_sent.append(max(sent) if sent else float("nan"))
        last_answered.append(max(t.get("answered", 0) for t in trails) / 1000)
        for trail in trails:
            for stage in ("committed", "dispatched", "claimed", "sent", "answered"):
                if stage in trail:
                    stages.setdefault(stage, []).append(trail[stage] / 1000)
        time.sleep(gap)
    return {
        "accounts": n,
        "signals": signals,
        "accept_ms_p50": percentile(accepted, 50),
        "accept_ms_max": max(accepted),
        "sent_ms_p50": percentile(sent_all, 50),
        "sent_ms_p99": percentile(sent_all, 99),
        "last_sent_ms_p50": percentile(last_sent, 50),
        "last_sent_ms_max": max(last_sent),
        "last_answered_ms_p50": percentile(last_answered, 50),
        "stages_p50": {stage: percentile(values, 50) for stage, values in stages.items()},
        "statuses": statuses,
        "machine_cpu_ms_per_order": statistics.median(busy),
        "load": load(),
    }


def sim_round_trip(base_url: str, count: int = 100) -> float:
    from bench.venue_latency import baseline_round_trip

    return statistics.median(baseline_round_trip(None, base_url, count)) * 1000


def signals_for(n: int, signals: int) -> int:
    """Fewer webhooks for the big fan-outs (each is n orders)."""
    return max(3, min(signals, 2000 // n)) if n > 1 else signals


def measure(args: argparse.Namespace, backend: str, workers: int, latency_ms: float) -> list[dict[str, Any]]:
    rows = []
    try:
        from orders.services import fan_out_tasks

        print(f"fan-out tasks: {fan_out_tasks()}", flush=True)
    except ImportError:  # a tree from before the workers announced their slots
        pass
    for n in args.accounts:
        result = run_signals(n, signals_for(n, args.signals), args.gap)
        result.update({"backend": backend, "workers": workers, "latency_ms": latency_ms, "venue": args.venue})
        print(row_text(result), flush=True)
        rows.append(result)
    return rows


def row_text(r: dict[str, Any]) -> str:
    stages = " ".join(f"{k}={v:.1f}" for k, v in r["stages_p50"].items())
    return (
        f"{r['backend']:<11} {r['venue']:<7} w={r['workers']} lat={r['latency_ms']:>3.0f}ms "
        f"n={r['accounts']:<5} x{r['signals']:<4} 202 p50 {r['accept_ms_p50']:7.1f} max {r['accept_ms_max']:7.1f} | "
        f"sent p50 {r['sent_ms_p50']:7.1f} p99 {r['sent_ms_p99']:7.1f} | last sent p50 {r['last_sent_ms_p50']:7.1f} "
        f"max {r['last_sent_ms_max']:7.1f} answered {r['last_answered_ms_p50']:7.1f} | "
        f"machine CPU/order {r['machine_cpu_ms_per_order']:.2f} ms | load {r['load']} "
        f"| p50 stages {stages} | {r['statuses']}"
    )


def _web_execution_start() -> Any:
    """This process posts the webhooks as a web process would: with its own order threads
    (orders.services.web_execution_start) where the tree measured has them."""
    try:
        from orders.services import web_execution_start
    except ImportError:  # a tree from before web processes ran orders (an A/B's "before")
        return None
    pool = web_execution_start()
    print(f"web order threads: {pool.threads if pool else 0}", flush=True)
    return pool


def _busy_thread() -> threading.Event:
    """Start a thread that runs pure Python until the returned event is set."""
    stop = threading.Event()

    def spin() -> None:
        while not stop.is_set():
            sum(range(2000))

    threading.Thread(target=spin, name="bench-busy", daemon=True).start()
    return stop


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--backend", choices=["embedded", "distributed"], default="embedded")
    parser.add_argument("--venue", choices=["paper", "binance"], default="paper")
    parser.add_argument("--accounts", type=lambda s: [int(x) for x in s.split(",")], default=[1, 10, 100])
    parser.add_argument("--latency-ms", type=lambda s: [float(x) for x in s.split(",")], default=[0.0])
    parser.add_argument("--workers", type=lambda s: [int(x) for x in s.split(",")], default=[1])
    parser.add_argument(
        "--threads",
        type=int,
        default=None,
        help="distributed: threads per worker process (default 8); embedded: how many orders run at "
        "once (EMBEDDED_ORDER_TURNS; default the product's)",
    )
    parser.add_argument(
        "--worker-turns",
        type=int,
        default=None,
        help="distributed: order tasks a worker process runs at once (WORKER_ORDER_TURNS; default "
        "the product's; 0: all its threads)",
    )
    parser.add_argument(
        "--order-threads",
        type=int,
        default=None,
        help="embedded: order threads, --threads of them running at once (default: EMBEDDED_ORDER_THREADS)",
    )
    parser.add_argument("--signals", type=int, default=100, help="webhooks per row (fewer for big fan-outs)")
    parser.add_argument("--gap", type=float, default=0.05, help="seconds between webhooks")
    parser.add_argument(
        "--busy-thread",
        action="store_true",
        help="embedded: a thread of the process keeps the interpreter busy meanwhile (pure Python, as "
        "another signal's orders or a feed's ticks would), so a step that waits for another thread "
        "to run waits for the interpreter's switch interval",
    )
    parser.add_argument(
        "--log-level",
        default="INFO",
        help="LOG_LEVEL of the product's processes (default INFO, the product's own; rounds 1-28 ran WARNING)",
    )
    parser.add_argument("--json", type=Path)
    parser.add_argument(
        "--notify", action="store_true", help="a notification destination that wants every fill"
    )
    parser.add_argument(
        "--web-threads",
        type=int,
        default=None,
        help="distributed: this process's own order threads, as a web process has (ORDER_WEB_THREADS; "
        "default the product's; 0: every execution goes to the workers)",
    )
    parser.add_argument(
        "--price-feed",
        action="store_true",
        help="--venue binance: the venue's ticker feed in the price layer (as on the real venue), "
        "so a market order is sized without a ticker read",
    )
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--name", default="bench", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.threads is None and args.backend == "distributed":
        args.threads = 8
    if args.worker:
        worker_main(args.threads, args.name)
        return

    tmp = Path(tempfile.mkdtemp(prefix="qt-bench-fanout-"))
    env = {k: v for k, v in os.environ.items() if k not in {"DATABASE_URL", "REDIS_URL", "CELERY_BROKER_URL"}}
    env.update(
        {
            "QT_DATA_DIR": str(tmp),
            "QT_ALLOW_LOCAL_SECRETS": "1",
            "LOG_LEVEL": args.log_level,
            "DJANGO_SETTINGS_MODULE": "quanttrade.settings",
            "PYTHONPATH": str(ROOT),
            "ORDER_STALE_AFTER_SECONDS": "600",  # no sweep re-dispatch during a run
        }
    )
    if args.web_threads is not None:
        env["ORDER_WEB_THREADS"] = str(args.web_threads)
    if args.worker_turns is not None:
        env["WORKER_ORDER_TURNS"] = str(args.worker_turns)
    results: list[dict[str, Any]] = []
    print(f"{os.cpu_count()} cores, load average at start {load()}", flush=True)
    with ExitStack() as stack:
        if args.backend == "distributed":
            from bench.webhook_accept import throwaway_backends

            # Not under QT_DATA_DIR: the product makes that folder private, and the cluster runs
            # as the postgres user.
            servers = Path(tempfile.mkdtemp(prefix="qt-bench-servers-")) / "servers"
            database_url, redis_url = stack.enter_context(throwaway_backends(servers))
            env.update({"DATABASE_URL": database_url, "REDIS_URL": redis_url})
            import psycopg

            admin = database_url.rsplit("/", 1)[0].replace("postgres://", "postgresql://") + "/postgres"
            with psycopg.connect(admin, autocommit=True) as conn:
                conn.execute('CREATE DATABASE "qt_bench"')
        os.environ.update(env)
        import django

        django.setup()
        register_bench_venue()
        if args.backend == "embedded":
            start_server_loop()
        from django.core.management import call_command

        call_command("migrate", verbosity=0)
        sim_url = None
        if args.venue == "binance":
            from venuesim.binance import BinanceSim

            sim = BinanceSim()
            sim.spot_balances["USDT"] = sim.spot_balances["USDT"] * 10**6
            sim_url = sim.start()
            stack.callback(sim.stop)
            print(f"baseline: simulator round trip p50 {sim_round_trip(sim_url):.2f} ms", flush=True)
        setup_data(args.venue, args.accounts, sim_url, args.price_feed)
        if args.price_feed:
            stack.enter_context(venue_price_feed())
        if args.notify:
            stack.enter_context(notification_destination())
        from quanttrade.heap import startup_heap_freeze

        startup_heap_freeze()  # as a started server does (quanttrade/asgi.py)
        for latency in args.latency_ms:
            os.environ[LATENCY_ENV] = env[LATENCY_ENV] = str(latency)
            if args.venue == "binance":
                sim.latency = latency / 1000
            if args.backend == "embedded":
                from django.conf import settings

                from quanttrade.management.commands.serve import EmbeddedWorker

                worker = EmbeddedWorker(
                    settings.EMBEDDED_WORKER_CONCURRENCY, args.order_threads, args.threads
                )
                print(f"order turns: {worker.pool.running} of {worker.pool.threads} threads", flush=True)
                worker.start()
                time.sleep(1.0)
                busy = _busy_thread() if args.busy_thread else None
                try:
                    results += measure(args, "embedded", 1, latency)
                finally:
                    if busy is not None:
                        busy.set()
                    worker.stop()
                continue
            web_pool = _web_execution_start()
            from django.conf import settings

            print(
                f"worker: {args.threads} task threads, WORKER_ORDER_THREADS={settings.WORKER_ORDER_THREADS}, "
                f"WORKER_ORDER_TURNS={settings.WORKER_ORDER_TURNS}",
                flush=True,
            )
            for count in args.workers:
                procs = [
                    subprocess.Popen(
                        [
                            sys.executable,
                            __file__,
                            "--worker",
                            "--threads",
                            str(args.threads),
                            "--name",
                            f"w{i}",
                        ],
                        cwd=ROOT,
                        env=env,
                        stdout=subprocess.DEVNULL,
                        stderr=open(tmp / f"worker{i}.log", "w"),
                    )
                    for i in range(count)
                ]
                time.sleep(4.0)  # workers connect and warm their venues
                try:
                    results += measure(args, "distributed", count, latency)
                finally:
                    for proc in procs:
                        proc.terminate()
                    for proc in procs:
                        proc.wait(timeout=30)
            if web_pool is not None:
                from orders.services import web_execution_stop

                web_execution_stop(web_pool)
        from django.db import connections

        connections.close_all()
    print(f"load average at end {load()}", flush=True)
    if args.json:
        args.json.write_text(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
