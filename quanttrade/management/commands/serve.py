"""`manage.py serve`: run the whole product (contract 6).

Embedded mode (the Celery broker is the in-memory one, i.e. no REDIS_URL): the ASGI server
(HTTP + WebSocket) in the main thread, plus, in background threads of the same process, a
Celery worker (threads pool), a periodic loop running the order sweep and the paper matcher,
and the price feeds. At start the sweep resends every order left queued or submitted by the
previous run (an in-memory broker loses its messages with the process).

Distributed mode: the ASGI server, with a few order threads of its own (ORDER_WEB_THREADS,
orders/handoff.py); workers, beat and the price feed are their own processes (printed at start).
"""

from __future__ import annotations

import logging
import os
import signal
import socket
import threading
import time
from typing import Any

from celery.worker import WorkController
from celery.worker import state as worker_state
from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import close_old_connections, connections

import notify.tasks  # noqa: F401 - registers the notification tasks with the app
import orders.tasks  # noqa: F401 - registers the execution tasks with the app
from feeds import run_in_background
from notify.services import notifications_sweep
from orders import handoff
from orders.approval import approvals_expire
from orders.handoff import LocalPool
from orders.portfolio.services import portfolios_refresh
from orders.services import orders_sweep, paper_match_run, web_execution_start, web_execution_stop
from quanttrade.celery import app, broker_in_memory
from quanttrade.management.serve_address import ensure_can_listen, serve_host, serve_port
from quanttrade.uvicorn_options import UVICORN_OPTIONS
from webhooks.services import webhooks_sweep

log = logging.getLogger("quanttrade.serve")


def concurrency_note(environ: Any = os.environ) -> str | None:
    """What to tell a user who set EMBEDDED_WORKER_CONCURRENCY for how many orders run at once,
    which it no longer decides (EMBEDDED_ORDER_TURNS does, since round 32); None otherwise."""
    if "EMBEDDED_WORKER_CONCURRENCY" in environ and "EMBEDDED_ORDER_TURNS" not in environ:
        return (
            "EMBEDDED_WORKER_CONCURRENCY는 이제 내장 Celery 워커의 스레드 수만 정합니다. 동시에 실행할 "
            "주문 수는 EMBEDDED_ORDER_TURNS(기본 1)로 설정하세요."
        )
    return None


class EmbeddedWorker:
    """A Celery worker consuming the in-memory broker from a thread of this process, and the
    order threads (orders.handoff) that take each account's execution straight from the
    request, without a broker hop."""

    def __init__(self, concurrency: int, order_threads: int | None = None, turns: int | None = None):
        # ``order_threads`` (EMBEDDED_ORDER_THREADS) threads, ``turns`` (EMBEDDED_ORDER_TURNS) of
        # them running at once (orders.handoff.LocalPool); ``concurrency``: the Celery worker's.
        threads = settings.EMBEDDED_ORDER_THREADS if order_threads is None else order_threads
        running = settings.EMBEDDED_ORDER_TURNS if turns is None else turns
        if running < 1:  # LocalPool takes 0 for "all of them", which no setting means here
            raise ValueError(f"orders running at once must be at least 1, got {running}")
        self.pool = LocalPool(max(threads, running), running=running)
        app.conf.worker_hijack_root_logger = False
        # The in-memory transport polls for messages; 1 s (its default) would be the latency.
        app.conf.broker_transport_options = {**app.conf.broker_transport_options, "polling_interval": 0.01}
        app.loader.import_default_modules()

        self.worker = WorkController(
            app=app,
            pool="threads",
            concurrency=concurrency,
            hostname=f"embedded@{socket.gethostname()}",
            loglevel="WARNING",
            without_heartbeat=True,
            without_mingle=True,
            without_gossip=True,
        )
        self.thread = threading.Thread(target=self.worker.start, name="celery-worker", daemon=True)

    def start(self) -> None:
        handoff.install(self.pool)
        self.thread.start()

    def stop(self, timeout: float = 10.0) -> None:
        handoff.uninstall(self.pool)
        self.pool.shutdown(wait=True)  # orders being placed finish; retries not yet due are dropped
        worker_state.should_terminate = 0  # the consumer loop exits, the worker shuts down warm
        self.thread.join(timeout)


# Expired idempotency keys and old refusals (the beat schedule's webhooks-sweep).
HOUSEKEEPING_INTERVAL_SECONDS = 3600.0
# Notification flushes lost to a crash (the beat schedule's notify-sweep).
NOTIFY_SWEEP_INTERVAL_SECONDS = 30.0


class PeriodicLoop:
    """Runs the order sweep every ORDER_SWEEP_INTERVAL_SECONDS, the paper matcher every
    PAPER_MATCH_INTERVAL_SECONDS, the approval expiry every APPROVAL_EXPIRE_INTERVAL_SECONDS,
    the notification sweep every 30 s and the portfolio refresh every PORTFOLIO_REFRESH_SECONDS
    (what `celery beat` does in distributed mode)."""

    def __init__(self) -> None:
        self.stop_event = threading.Event()
        self.thread = threading.Thread(target=self._run, name="periodic", daemon=True)

    def start(self) -> None:
        self.thread.start()

    def stop(self) -> None:
        self.stop_event.set()
        self.thread.join(5)

    def _run(self) -> None:
        sweep_every = float(settings.ORDER_SWEEP_INTERVAL_SECONDS)
        match_every = float(settings.PAPER_MATCH_INTERVAL_SECONDS)
        portfolio_every = float(settings.PORTFOLIO_REFRESH_SECONDS)
        next_portfolio = time.monotonic() + portfolio_every
        next_sweep = time.monotonic() + sweep_every
        next_match = time.monotonic()
        next_housekeeping = time.monotonic()
        expire_every = float(settings.APPROVAL_EXPIRE_INTERVAL_SECONDS)
        next_expire = time.monotonic()
        next_notify_sweep = time.monotonic() + NOTIFY_SWEEP_INTERVAL_SECONDS
        while not self.stop_event.is_set():
            close_old_connections()
            now = time.monotonic()
            if now >= next_match:
                next_match = now + match_every
                _guarded("paper_match", paper_match_run)
            if now >= next_sweep:
                next_sweep = now + sweep_every
                _guarded("orders_sweep", orders_sweep)
            if now >= next_expire:
                next_expire = now + expire_every
                _guarded("approvals_expire", approvals_expire)
            if now >= next_portfolio:
                next_portfolio = now + portfolio_every
                _guarded("portfolios_refresh", portfolios_refresh)
            if now >= next_housekeeping:
                next_housekeeping = now + HOUSEKEEPING_INTERVAL_SECONDS
                _guarded("webhooks_sweep", webhooks_sweep)
            if now >= next_notify_sweep:
                next_notify_sweep = now + NOTIFY_SWEEP_INTERVAL_SECONDS
                _guarded("notify_sweep", notifications_sweep)
            self.stop_event.wait(
                max(
                    0.0,
                    min(next_sweep, next_match, next_expire, next_portfolio, next_notify_sweep)
                    - time.monotonic(),
                )
            )
        connections.close_all()


def _guarded(name: str, func: Any, *args: Any) -> Any:
    try:
        return func(*args)
    except Exception:
        # A failing round is logged and retried at the next interval; the server stays up.
        log.exception("주기 작업 실패: %s", name)
        return None


class Command(BaseCommand):
    help = (
        "Run QuantTrade: ASGI server (HTTP + WebSocket); in embedded mode also the worker, sweep and feeds."
    )

    requires_system_checks: list[str] = []

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--host", default=serve_host())
        parser.add_argument("--port", type=int, default=serve_port())
        parser.add_argument(
            "--server", choices=["daphne", "uvicorn"], default="daphne", help="ASGI server (default daphne)."
        )
        parser.add_argument(
            "--no-feeds", action="store_true", help="Do not start the price feeds (embedded mode)."
        )

    def handle(self, *args: Any, **options: Any) -> None:
        host, port = options["host"], options["port"]
        ensure_can_listen(host, port)
        embedded = broker_in_memory()
        worker: EmbeddedWorker | None = None
        periodic: PeriodicLoop | None = None
        feeds_stop: threading.Event | None = None
        if embedded:
            if not options["no_feeds"]:
                feeds_stop = run_in_background()
            note = concurrency_note()
            if note:
                log.warning(note)
            worker = EmbeddedWorker(settings.EMBEDDED_WORKER_CONCURRENCY)
            worker.start()
            # Nothing from a previous run survives in the in-memory broker: resend it all now.
            counts = _guarded("orders_sweep", orders_sweep, 0)
            if counts and counts["redispatched"]:
                log.info("이전 실행의 대기 주문 재전달: %s", counts)
            periodic = PeriodicLoop()
            periodic.start()
            log.info(
                "QuantTrade 시작 (embedded): http://%s:%s  orders running=%s (at venues up to %s), "
                "worker threads=%s, sweep=%ss, paper match=%ss",
                host,
                port,
                settings.EMBEDDED_ORDER_TURNS,
                settings.EMBEDDED_ORDER_THREADS,
                settings.EMBEDDED_WORKER_CONCURRENCY,
                settings.ORDER_SWEEP_INTERVAL_SECONDS,
                settings.PAPER_MATCH_INTERVAL_SECONDS,
            )
        else:
            log.info("QuantTrade 시작 (distributed, web only): http://%s:%s", host, port)
            web_execution_start()  # this process's own order threads (ORDER_WEB_THREADS)
            self.stdout.write(
                "Distributed mode: run these as their own processes (any number of workers):\n"
                "  celery -A quanttrade worker --loglevel INFO --concurrency 4\n"
                "  celery -A quanttrade beat --loglevel INFO   (exactly one)\n"
                "  python manage.py pricefeed                  (exactly one per feed)"
            )
        try:
            if options["server"] == "uvicorn":
                _run_uvicorn(host, port)
            else:
                _run_daphne(host, port)
        finally:
            log.info("QuantTrade 종료 중…")
            if periodic is not None:
                periodic.stop()
            if feeds_stop is not None:
                feeds_stop.set()
            if worker is not None:
                worker.stop()
            web_execution_stop()  # distributed mode: the orders on this process's own threads
            log.info("QuantTrade 종료")


def _run_daphne(host: str, port: int) -> None:
    """daphne in this (main) thread; it handles SIGINT/SIGTERM by stopping its reactor."""
    # Imported here: daphne.server installs Twisted's asyncio reactor and quanttrade.asgi builds
    # the ASGI application, which only a daphne run wants (uvicorn loads the app itself).
    from daphne.endpoints import build_endpoint_description_strings  # noqa: PLC0415
    from daphne.server import Server  # noqa: PLC0415

    from quanttrade.asgi import application  # noqa: PLC0415
    from quanttrade.daphne_limits import install  # noqa: PLC0415 - daphne's, as above

    install()  # a request body past HTTP_MAX_BODY_BYTES, a WebSocket past WS_QUEUE_MAX queued messages

    # A process started in the background inherits SIGINT as ignored; Ctrl-C / kill -INT must
    # still stop the server (twisted only takes over the default handler).
    signal.signal(signal.SIGINT, signal.default_int_handler)
    failures: list[str] = []

    class _Server(Server):
        def listen_error(self, failure: Any) -> None:
            failures.append(str(failure.getErrorMessage()))
            super().listen_error(failure)  # logs it and stops the reactor

    _Server(
        application=application,
        endpoints=build_endpoint_description_strings(host=host, port=port),
        signal_handlers=True,
        verbosity=0,
        websocket_handshake_timeout=5,
        application_close_timeout=5,
    ).run()
    if failures:  # the port was taken after ensure_can_listen: exit 1, not 0
        raise CommandError(f"cannot listen on {host}:{port}: {failures[0]}")


def _run_uvicorn(host: str, port: int) -> None:
    import uvicorn  # noqa: PLC0415 - only when serving with uvicorn (the alternative server)

    # uvicorn handles SIGINT/SIGTERM itself, then re-raises the signal once it has shut down;
    # ignoring that replay lets this command stop the worker and feeds cleanly afterwards.
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: None)
    # The gunicorn worker's options (quanttrade/uvicorn_options.py: proxy headers and /ws
    # compression off).
    uvicorn.run(
        "quanttrade.asgi:application",
        host=host,
        port=port,
        lifespan="off",
        log_level="warning",
        **UVICORN_OPTIONS,
    )
