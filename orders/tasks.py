"""Celery tasks: thin wrappers around orders.services (names match CELERY_BEAT_SCHEDULE)."""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable, Sequence
from typing import Any

from celery import Task, shared_task
from celery.concurrency.thread import TaskPool as ThreadsPool
from celery.exceptions import Retry
from celery.signals import worker_process_init, worker_ready, worker_shutdown
from django.conf import settings

from orders import handoff, liveness
from orders.approval import approvals_expire as expire_approvals
from orders.portfolio.services import (
    portfolio_refresh_requested,
    portfolios_refresh,
    portfolios_refresh_requested,
)
from orders.services import (
    ExecutionRetry,
    account_orders_execute,
    account_orders_execute_or_schedule,
    paper_match_run,
    venues_warm_in_background,
    webhook_orders_fan_out,
)
from orders.services import orders_sweep as sweep

log = logging.getLogger("quanttrade.orders")


@shared_task(name="orders.tasks.execute_account_orders", bind=True, acks_late=True, max_retries=None)
def execute_account_orders(
    self: Task, webhook_id: str, account_id: int, trail: dict[str, Any] | None = None
) -> None:
    """Run one account's orders of one webhook in sequence. Idempotent; venue errors are
    recorded on the orders, retryable ones re-run the task with backoff. ``trail``: the
    intake's stages (orders/trail.py), absent on re-dispatches and retries."""
    dispatched_at = _first_dispatch_time(self, trail)
    if dispatched_at is not None:  # one round trip instead of two (orders.liveness)
        liveness.mark_started_dispatched_at(webhook_id, account_id, dispatched_at)
    try:
        _on_order_threads(
            functools.partial(
                account_orders_execute, webhook_id, account_id, trail, started=dispatched_at is not None
            )
        )
    except ExecutionRetry as retry:
        liveness.mark_dispatched(webhook_id, account_id, retry.countdown)
        try:
            raise self.retry(countdown=retry.countdown) from retry
        except Retry:
            raise
        except Exception as exc:
            liveness.clear_dispatch(webhook_id, account_id)
            # The broker refused the retry: the order stays `queued` and the sweep resends it.
            log.error(
                "주문 재시도 예약 실패 (스윕에서 재전달): webhook=%s account=%s %s",
                webhook_id,
                account_id,
                exc,
            )


def _on_order_threads(call: Callable[[], Any]) -> Any:
    """``call()`` on this worker's order threads, waiting for it (its exception raised here), or
    on this thread when the worker has none: so the worker runs no more executions at once than
    it has turns, whatever its task's thread."""
    pool = handoff.worker()
    if pool is None:
        return call()
    [(result, exc)] = pool.run_all([call])
    if exc is not None:
        raise exc
    return result


def _first_dispatch_time(task: Task, trail: dict[str, Any] | None) -> float | None:
    """When the intake dispatched this task (seconds since the epoch, from the trail its message
    carries), on the task's first delivery only: a retry is due later than that, out of the
    queue's turn, and a message delivered again waited for a dead worker."""
    request = task.request
    if not trail or request.retries or request.eta or (request.delivery_info or {}).get("redelivered"):
        return None
    t0, dispatched = trail.get("t0"), trail.get("dispatched")
    if not isinstance(t0, int) or not isinstance(dispatched, int):
        return None
    return (t0 + dispatched) / 1_000_000


@shared_task(name="orders.tasks.execute_webhook_orders", acks_late=True)
def execute_webhook_orders(
    webhook_id: str, account_ids: list[int], trail: dict[str, Any] | None = None, chunk: int | None = None
) -> None:
    """One webhook's orders for several accounts, from one publish: half of the accounts go on
    to another worker, and so on, until each task holds at most ``chunk`` accounts
    (``orders.services.fan_out_chunk``), which it executes: on the worker's order threads, all
    at once, or without them one after another, the chunk ending at the first error."""
    kept = webhook_orders_fan_out(webhook_id, account_ids, trail, chunk)
    liveness.mark_started_many(webhook_id, kept)  # the chunk at once: one read, one write
    calls = [
        functools.partial(
            account_orders_execute_or_schedule, webhook_id, account_id, trail, started=True, clear=False
        )
        for account_id in kept
    ]
    pool = handoff.worker()
    try:
        outcomes = pool.run_all(calls) if pool is not None else _in_sequence(calls)
    except BaseException:
        # The wait itself ended (the worker is being stopped): none may stay recorded as run by
        # this live worker.
        liveness.clear_dispatch_many(webhook_id, kept)
        raise
    # The chunk's records at once: those run to the end, those that failed (the database went
    # away) and those a failure left unreached must not stay recorded as run by this live
    # worker, or the sweep would never resend them. An account whose retry is scheduled keeps
    # its record (it says when the retry is due). A pair dispatched again meanwhile (an
    # approval, the sweep after a reconcile) loses its new record too: the sweep then sends it
    # once more, and the claims keep that to one placement.
    liveness.clear_dispatch_many(
        webhook_id, [a for a, outcome in zip(kept, outcomes, strict=True) if outcome != (False, None)]
    )
    failed = [(a, exc) for a, (_ended, exc) in zip(kept, outcomes, strict=True) if exc is not None]
    for account_id, exc in failed[1:]:  # the task raises the first; the others are logged
        log.error(
            "주문 실행 오류 (스윕에서 재전달): webhook=%s account=%s", webhook_id, account_id, exc_info=exc
        )
    if failed:
        raise failed[0][1]


def _in_sequence(calls: Sequence[Callable[[], Any]]) -> list[tuple[Any, BaseException | None]]:
    """Each call's result and exception, as ``LocalPool.run_all`` returns them, run one after
    another on this thread up to the first that raises (those after it: ``(None, None)``)."""
    outcomes: list[tuple[Any, BaseException | None]] = [(None, None)] * len(calls)
    for index, call in enumerate(calls):
        try:
            outcomes[index] = (call(), None)
        except BaseException as exc:
            outcomes[index] = (None, exc)
            break
    return outcomes


@shared_task(name="orders.tasks.orders_sweep", ignore_result=True)
def orders_sweep() -> dict[str, int]:
    """Re-dispatch orders left `queued`, reconcile orders stuck `submitted`."""
    return sweep()


@shared_task(name="orders.tasks.approvals_expire", ignore_result=True)
def approvals_expire() -> int:
    """Drop orders whose approval wait has run out (never sent); returns how many."""
    return expire_approvals()


@shared_task(name="orders.tasks.paper_match", ignore_result=True)
def paper_match() -> int:
    """Fill resting paper orders whose price was crossed; returns how many orders changed."""
    return paper_match_run()


@shared_task(name="orders.tasks.portfolio_refresh", ignore_result=True)
def portfolio_refresh(account_id: int, asked_at: float | None = None) -> None:
    """Refresh one account's portfolio (the message of releases before requests were
    gathered, still in a broker across an upgrade)."""
    portfolio_refresh_requested(account_id, asked_at)


@shared_task(name="orders.tasks.portfolios_refresh_requested", ignore_result=True)
def portfolios_refresh_requested_task(account_ids: list[int], asked_at: float | None = None) -> int:
    """Refresh the accounts whose fills asked for it, gathered by one worker process; yields to
    queued orders (orders.portfolio.services.portfolios_refresh_requested)."""
    return portfolios_refresh_requested(account_ids, asked_at)


@shared_task(name="orders.tasks.portfolios_refresh", ignore_result=True)
def portfolios_refresh_all() -> int:
    """Refresh every active account's portfolio and keep today's equity snapshots."""
    return portfolios_refresh()


@worker_ready.connect(weak=False)
def _announce_order_slots(sender: Any = None, **_: Any) -> None:
    """List this worker's concurrency among the live workers' order slots (a fan-out is cut
    into that many tasks: orders.services.fan_out_chunk). ``sender``: the worker's consumer,
    whose controller (the WorkController) has the pool's size resolved to a number, and with
    ``--autoscale`` the most it grows to."""
    controller = getattr(sender, "controller", None)
    slots = getattr(controller, "max_concurrency", None) or getattr(controller, "concurrency", None)
    if isinstance(slots, int) and slots > 0:
        liveness.announce_slots(slots)
    else:
        log.warning(
            "작업자 동시 실행 수를 알 수 없음: 분산 작업 수는 ORDER_FANOUT_TASKS 또는 기본값 (%r)", slots
        )


@worker_ready.connect(weak=False)
def _start_order_threads(sender: Any = None, **_: Any) -> None:
    """A worker whose pool runs threads (distributed mode) executes its order tasks on
    WORKER_ORDER_THREADS order threads of its own, WORKER_ORDER_TURNS of them running at once
    (orders.handoff.LocalPool): a fan-out's chunk runs its accounts all at once, each waiting for
    its venue while another runs. Not in embedded mode, whose order threads are the process's
    (orders.handoff.install), nor with another pool (a prefork child runs one task)."""
    controller = getattr(sender, "controller", None)
    if (
        handoff.current() is None
        and handoff.worker() is None
        and isinstance(getattr(controller, "pool", None), ThreadsPool)
        and (pool := worker_order_threads()) is not None
    ):
        handoff.install_worker(pool)
        database_pool = settings.DATABASES["default"].get("OPTIONS", {}).get("pool")
        if isinstance(database_pool, dict) and pool.running > int(database_pool.get("max_size", 0)):
            log.warning(
                "동시 실행 주문 %d개가 DB 연결 풀(DB_POOL_MAX_SIZE=%s)보다 많음: WORKER_ORDER_TURNS를 줄이세요",
                pool.running,
                database_pool.get("max_size"),
            )
        log.info(
            "주문 스레드 %d개, 동시 실행 %d개 (WORKER_ORDER_THREADS, WORKER_ORDER_TURNS)",
            pool.threads,
            pool.running,
        )


def worker_order_threads() -> handoff.LocalPool | None:
    """A worker's order threads as the settings ask: WORKER_ORDER_THREADS threads,
    WORKER_ORDER_TURNS of them running (0: all); None with WORKER_ORDER_THREADS=0."""
    threads = int(settings.WORKER_ORDER_THREADS)
    if threads <= 0:
        return None
    return handoff.LocalPool(threads, running=int(settings.WORKER_ORDER_TURNS) or None)


@worker_shutdown.connect(weak=False)
def _withdraw_order_slots(**_: Any) -> None:
    liveness.withdraw_slots()


@worker_shutdown.connect(weak=False)
def _stop_order_threads(**_: Any) -> None:
    """The worker's own tasks have ended (a warm shutdown waits for them), and with them the
    executions they waited for: its order threads end."""
    pool = handoff.worker()
    if pool is not None:
        handoff.install_worker(None)
        pool.shutdown(wait=True)


@worker_ready.connect(weak=False)
@worker_process_init.connect(weak=False)
def _start_venue_warmup(**_: Any) -> None:
    """Load venue markets and tokens in the background as the worker (or a prefork child)
    starts, so the first order after a restart does not wait for them."""
    venues_warm_in_background()
