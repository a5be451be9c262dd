"""Writes for orders: dispatch to the workers, execution, status changes."""

from __future__ import annotations

import atexit
import functools
import logging
import os
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any
from uuid import UUID

from django.conf import settings
from django.db import close_old_connections, connections, transaction
from django.db.models import BooleanField, Exists, F, Field, OuterRef, QuerySet
from django.db.models.expressions import RawSQL
from django.utils import timezone
from django.utils.translation import gettext as _

from live.bus import group_send
from notify.events import emit
from notify.models import EventKind
from orders import handoff, liveness
from orders.exchanges import adapter_for
from orders.exchanges.base import (
    AttemptTakenBack,
    CancelAllIncomplete,
    CancelSentUnread,
    ExchangeAdapter,
    OrderRejected,
    OrderRequest,
    OrderResult,
    OrderUncertain,
    RetryableVenueError,
    VenueError,
)
from orders.exchanges.brokerkit.buckets import RateLimitWaitError
from orders.exchanges.paper import paper_match, paper_result
from orders.models import Order, PaperOrder
from orders.portfolio.services import portfolio_refresh_soon
from orders.risk import RISK_LIMIT, loss_check_after_fill, order_refusal, risk_limit_hit
from orders.selectors import order_payload
from orders.trail import StageClock, trail_merge
from quanttrade.celery import app as celery_app
from quanttrade.celery import broker_in_memory
from quanttrade.errors import ApiError
from quanttrade.prepared import PreparedSelect, PreparedUpdate
from quanttrade.vocabulary import LIVE_STATUSES, OrderStatus, OrderType, decimal_str
from strategies.models import Account, StrategyAccount

log = logging.getLogger("quanttrade.orders")

EXECUTE_TASK = "orders.tasks.execute_account_orders"
FANOUT_TASK = "orders.tasks.execute_webhook_orders"


def orders_dispatch(
    webhook_id: UUID | str, account_ids: Iterable[int], *, clock: StageClock | None = None, new: bool = False
) -> None:
    """Enqueue the execution of a webhook's orders with ONE broker publish: one account's task
    directly, or for several accounts one fan-out task that the workers split among themselves
    (``webhook_orders_fan_out``). In embedded mode (an installed ``orders.handoff`` pool) no
    broker at all: each account goes straight to the process's order threads. Never raises: a broker outage is logged and the periodic sweep
    re-dispatches the orders, which stay `queued` in the database.

    ``clock`` is the intake's stage clock (orders/trail.py): called on commit, this marks
    `committed` and `dispatched` and carries them to the worker in the message.

    ``new``: the webhook was just accepted, none of its pairs was ever dispatched (the intake).
    Their dispatch records (orders.liveness) are then written after the publish instead of
    before, where absent only: a task that started in between has recorded itself already. The
    worker gets the message one Redis round trip sooner. Any other dispatch (the sweep's
    re-dispatch replaces a record) writes them before, as the task may start at once.

    A web process with order threads of its own (distributed mode, ``handoff.install_web``)
    runs the accounts itself when it has an idle thread for each, and publishes them otherwise."""
    ids = list(account_ids)
    if not ids:
        return
    kwargs: dict[str, Any] = {}
    if clock is not None and "t0" in clock.trail:
        if "committed" not in clock.trail:
            clock.mark("committed")
        clock.mark("dispatched")
        kwargs["trail"] = {key: clock.trail[key] for key in ("t0", "committed", "dispatched")}
    pool = handoff.current()
    web = handoff.web() if pool is None else None
    if (
        web is not None
        and len(ids) <= web.threads  # a large fan-out never fits: no arguments built for it
        and web.submit_all_if_idle(
            account_orders_execute_here, [(str(webhook_id), a, kwargs.get("trail")) for a in ids]
        )
    ):
        time.sleep(0)  # as embedded mode does: the order before the 202 (round 8)
        return
    after = new and pool is None  # embedded mode's records cost microseconds: written before
    if not after:
        liveness.mark_dispatched_many(webhook_id, ids)  # before: the task may start at once
    try:
        if pool is not None:
            # Embedded mode: straight to this process's order threads, one account each.
            for account_id in ids:
                pool.submit(
                    account_orders_execute_or_schedule, str(webhook_id), account_id, kwargs.get("trail")
                )
            # Give the interpreter to the order threads now: otherwise this request thread keeps
            # it until the response is built (1-2 ms), and the order waits. The order's time to
            # market comes before the 202's (docs/benchmarks-speed.md, round 8).
            time.sleep(0)
        elif len(ids) == 1:
            _publish(EXECUTE_TASK, [str(webhook_id), ids[0]], kwargs, retry=False)
        else:
            _publish(FANOUT_TASK, [str(webhook_id), ids], kwargs, retry=False)
    except Exception as exc:  # any broker failure must not fail the webhook
        if not after:
            for account_id in ids:
                liveness.clear_dispatch(webhook_id, account_id)
        log.error("주문 전달 실패 (스윕에서 재전달): webhook=%s accounts=%s %s", webhook_id, ids, exc)
        return
    if after:
        liveness.mark_dispatched_new(webhook_id, ids)


REPR_MAX = 200


def _publish(name: str, args: list[Any], kwargs: dict[str, Any], **options: Any) -> None:
    """``send_task`` with the arguments' text for logs and monitors (``argsrepr``) written with
    ``repr`` and cut at REPR_MAX characters: Celery's own (``saferepr``) cost ~0.1 ms of each
    publish on a webhook's request for what is a UUID, an account id and a few stage times."""

    def brief(value: Any) -> str:
        text = repr(value)
        return text if len(text) <= REPR_MAX else text[: REPR_MAX - 1] + "…"

    celery_app.send_task(
        name,
        args=args,
        kwargs=kwargs,
        argsrepr=brief(tuple(args)),
        kwargsrepr=brief(kwargs),
        # No result is kept (CELERY_RESULT_BACKEND is None): said in the message, and no
        # AsyncResult built. Either reaches for the app's result backend, which Celery keeps per
        # thread: a new one on every webhook's request thread (~0.3 ms, round 28).
        ignore_result=True,
        result_cls=_NoResult,
        add_to_parent=False,  # a fan-out task's hand-offs are no results of it either
        **options,
    )


class _NoResult:
    """What ``_publish`` asks ``send_task`` to build from the task's id instead of an
    AsyncResult: the id alone (``send_task`` then sets ``ignored`` on it)."""

    __slots__ = ("id", "ignored")

    def __init__(self, task_id: str) -> None:
        self.id = task_id
        self.ignored = True


# The fan-out's tasks when ORDER_FANOUT_TASKS is "auto" and no worker has announced itself (or
# the cache is away): the default before the workers announced their slots.
FANOUT_TASKS_UNKNOWN = 64


def fan_out_tasks() -> int:
    """How many tasks a fan-out is cut into at most: ORDER_FANOUT_TASKS, or with "auto" the
    order tasks the live workers run at once (``liveness.order_slots``)."""
    fixed = settings.ORDER_FANOUT_TASKS
    if fixed:
        return max(1, int(fixed))
    return liveness.order_slots() or FANOUT_TASKS_UNKNOWN


def fan_out_chunk(accounts: int) -> int:
    """How many accounts the last hand-offs of a fan-out of ``accounts`` carry: enough that the
    fan-out is at most ``fan_out_tasks()`` tasks. Up to that many accounts each has a task of
    its own, as many as the workers can run at once; beyond it, a task per account would only
    add a message (a publish, a delivery, an acknowledgement) and a task's start to each
    account, with no worker free to run it sooner (docs/benchmarks-speed.md, round 17)."""
    return max(1, -(-accounts // fan_out_tasks()))


def webhook_orders_fan_out(
    webhook_id: UUID | str,
    account_ids: list[int],
    trail: dict[str, Any] | None = None,
    chunk: int | None = None,
) -> list[int]:
    """The worker's side of one fan-out message: hand half of the accounts on to another
    worker (one publish, which splits again), keep the other half, until at most ``chunk``
    accounts are left; returns them for the caller to execute (orders.tasks). The
    publishes are spread over the workers instead of being paid on the webhook's request; each
    account's orders stay in one task, in sequence. Accounts whose hand-off fails are returned
    too: the caller executes them with its own (on the worker's order threads, in its turns)."""
    ids = list(account_ids)
    kept_back: list[int] = []
    # The first task of the fan-out sizes the chunks (the intake's message has none: reading the
    # workers' slots is not the webhook request's work) and hands the size on with each half.
    chunk = fan_out_chunk(len(ids)) if chunk is None else max(1, int(chunk))
    kwargs: dict[str, Any] = {"trail": trail} if trail else {}
    while len(ids) > chunk:
        half = len(ids) // 2
        rest, ids = ids[half:], ids[:half]
        liveness.mark_dispatched_many(webhook_id, rest)
        try:
            if len(rest) == 1:
                _publish(EXECUTE_TASK, [str(webhook_id), rest[0]], kwargs)
            else:
                _publish(FANOUT_TASK, [str(webhook_id), rest], {**kwargs, "chunk": chunk})
        except Exception as exc:
            log.error("주문 분배 실패 (이 작업자가 실행): webhook=%s accounts=%s %s", webhook_id, rest, exc)
            kept_back += rest
    return ids + kept_back


def account_orders_execute_here(
    webhook_id: str, account_id: int, trail: dict[str, Any] | None = None
) -> None:
    """Run one account's orders on a web process's own order thread (``orders_dispatch``):
    held by this process as a worker holds a task (``liveness.started_here``); a retry the
    venue asks for goes to the broker."""
    with liveness.started_here(webhook_id, account_id):
        account_orders_execute_or_schedule(webhook_id, account_id, trail, started=True)


def account_orders_execute_or_schedule(
    webhook_id: UUID | str,
    account_id: int,
    trail: dict[str, Any] | None = None,
    started: bool = False,
    clear: bool = True,
) -> bool:
    """Run one account's orders here; a retry the venue asked for is scheduled as that
    account's own task, or on the local pool's timer in embedded mode (a refused schedule is
    logged: the sweep resends the orders). Returns True when the account's run ended without
    a retry (``clear``: see ``account_orders_execute``)."""
    try:
        account_orders_execute(webhook_id, account_id, trail, started=started, clear=clear)
        return True
    except ExecutionRetry as retry:
        liveness.mark_dispatched(webhook_id, account_id, retry.countdown)
        try:
            pool = handoff.current()
            if pool is not None:
                pool.submit(
                    account_orders_execute_or_schedule, str(webhook_id), account_id, delay=retry.countdown
                )
            else:
                celery_app.send_task(
                    EXECUTE_TASK, args=[str(webhook_id), account_id], countdown=retry.countdown
                )
        except Exception as exc:
            liveness.clear_dispatch(webhook_id, account_id)
            log.error(
                "주문 재시도 예약 실패 (스윕에서 재전달): webhook=%s account=%s %s",
                webhook_id,
                account_id,
                exc,
            )
        return False


# --- execution ------------------------------------------------------------------------------


class ExecutionRetry(Exception):  # noqa: N818 - a signal to the task, not an error
    """A venue error that may pass: the task should run again after ``countdown`` seconds."""

    def __init__(self, countdown: float):
        self.countdown = countdown
        super().__init__(countdown)


# A task held back by a venue's rate-limit buckets comes back this soon.
RATE_LIMIT_RETRY_SECONDS = 1.0
# States a venue's later news may still change (a fill found by the paper matcher may arrive
# before the worker has recorded the placement: it wins, the worker's stale answer is dropped).
SYNCABLE_STATUSES = LIVE_STATUSES | {OrderStatus.SUBMITTED}
# An order `submitted` this many times ORDER_STALE_AFTER_SECONDS ago is presumed orphaned.
SUBMITTED_STALE_FACTOR = 4


def _max_attempts() -> int:
    return int(getattr(settings, "ORDER_MAX_ATTEMPTS", 5))


def _backoff(attempts: int) -> float:
    return float(min(2 ** max(attempts - 1, 0), 30))


def _uncertain_lookups() -> int:
    return int(getattr(settings, "ORDER_UNCERTAIN_LOOKUPS", 6))


def _uncertain_backoff(lookups: int) -> float:
    """Seconds before the next lookup of an uncertain placement: doubling from
    ORDER_UNCERTAIN_BACKOFF_SECONDS, at most 30."""
    base = float(getattr(settings, "ORDER_UNCERTAIN_BACKOFF_SECONDS", 2.0))
    return min(base * 2**lookups, 30.0)


def unconfirmed_message(detail: str) -> str:
    """What an order whose placement could not be confirmed shows (pages, results API)."""
    message = _("Could not confirm whether the venue accepted the order. Check it on the venue directly.")
    return f"{message} ({detail})" if detail else message


def order_broadcast(order: Order) -> None:
    """Push the order's current state to the `orders` group (contract 3), without waiting on
    the channel layer (see ``live.bus.group_send``). Never raises."""
    group_send("orders", {"type": "order.update", "order": order_payload(order)})


def order_request(order: Order) -> OrderRequest:
    return OrderRequest(
        client_order_id=order.client_order_id,
        market_type=order.market_type,
        symbol=order.symbol,
        side=order.side,
        order_type=order.order_type,
        qty_per=order.qty_per,
        price=order.price,
        stop_price=order.stop_price,
        currency=order.currency,
        params=dict(order.params or {}),
        exchange_order_id=order.exchange_order_id or "",
    )


# What a worker reads of an order to execute it: its account and strategy come along.
_EXECUTION_RELATED = ("account", "strategy", "approved_by")


# The worker's two writes per order, their SQL written once (quanttrade/prepared.py).
_CLAIM: PreparedUpdate[Order] = PreparedUpdate(Order, where=("pk", "status", "attempts"))
_RECORD: PreparedUpdate[Order] = PreparedUpdate(Order, where=("pk", "status__in"))
_RECORD_ATTEMPT: PreparedUpdate[Order] = PreparedUpdate(Order, where=("pk", "status__in", "attempts"))


def order_claim(
    order_id: UUID,
    carried: dict[str, Any] | None = None,
    *,
    loaded: Order | None = None,
    claimed_at: Any = None,
) -> Order | None:
    """Move a queued order to `submitted` atomically; None when another worker (or an earlier
    run of the same task) already took it. This is what makes execution idempotent.

    ``loaded``: the order as the task read it a moment ago (with its account and strategy).
    The claim then costs one UPDATE, guarded by the attempts read: no other claim came in
    between, so nothing else of the queued row can have changed and the copy in memory is the
    row (a row another attempt touched is read again).

    ``claimed_at``: the task's read claimed ``loaded`` already, at that time (PostgreSQL,
    ``_claim_first``); what the UPDATE would have changed is set on it in memory.

    The claimed order carries its stage clock (``Order.stage_clock``): `claimed` is marked
    here, `sent` and `answered` around the venue call, and the trail is written with the
    UPDATE that records the outcome. ``carried``: the web stages from the task message."""
    now = timezone.now()
    fields = {"status": OrderStatus.SUBMITTED, "submitted_at": now, "updated_at": now}
    order: Order | None = None
    if loaded is not None and claimed_at is not None:
        order = loaded
        order.attempts += 1
        order.status, order.submitted_at, order.updated_at = OrderStatus.SUBMITTED, claimed_at, claimed_at
    elif loaded is not None and loaded.status == OrderStatus.QUEUED:
        if _CLAIM.run(
            {**fields, "attempts": loaded.attempts + 1},
            pk=order_id,
            status=OrderStatus.QUEUED,
            attempts=loaded.attempts,
        ):
            order = loaded
            order.attempts += 1
            for name, value in fields.items():
                setattr(order, name, value)
    if order is None:
        if not Order.objects.filter(pk=order_id, status=OrderStatus.QUEUED).update(
            attempts=F("attempts") + 1, **fields
        ):
            return None
        order = Order.objects.select_related(*_EXECUTION_RELATED).get(pk=order_id)
        order.loaded_at = time.monotonic()
    liveness.mark_claim(order_id)
    trail = order.trail if isinstance(order.trail, dict) else {}
    order.trail = trail
    trail_merge(trail, carried)
    for stage in ("claimed", "sent", "answered"):  # this attempt's stages replace the last one's
        trail.pop(stage, None)
    order.stage_clock = StageClock(trail)
    order.stage_clock.mark("claimed")
    order_broadcast(order)
    return order


def _stage(order: Order, stage: str) -> None:
    if order.stage_clock is not None:
        order.stage_clock.mark(stage)


def order_record(
    order: Order,
    result: OrderResult,
    *,
    expect: Iterable[str] = (OrderStatus.SUBMITTED,),
    attempt: int | None = None,
) -> bool:
    """Store the venue's answer on the order and push it — only while the order is still in one
    of the ``expect`` statuses, so a late writer never overwrites a newer state (a worker
    recording `open` after the paper matcher already recorded the fill). Returns True when stored.

    An answer that fills more than the order had is checked against the daily-loss limit at
    once (``loss_check_after_fill``), whoever records it: the placement's answer, the live
    refresh reading a resting order's fill, the sweep's reconcile, a cancel's read-back.

    ``attempt``: the executing attempt's number; stored only while the order is still that
    attempt's (a holder the sweep judged dead, only slow, never overwrites a newer attempt)."""
    fields: dict[str, Any] = {
        "status": result.status,
        "exchange_order_id": result.exchange_order_id or order.exchange_order_id,
        "filled_qty": result.filled_qty,
        "avg_price": result.avg_price,
        "message": result.message,
        "updated_at": timezone.now(),
    }
    if result.quantity is not None:
        fields["quantity"] = result.quantity
    if result.cancelled_orders is not None:
        fields["cancelled_orders"] = result.cancelled_orders
    if order.stage_clock is not None:
        fields["trail"] = order.trail  # the executing worker's stages, in the same UPDATE
    if result.fee is not None:
        fields["fee"] = result.fee
        fields["fee_currency"] = result.fee_currency
    filled_more = result.filled_qty > (order.filled_qty or 0)
    if filled_more:
        fields["filled_at"] = fields["updated_at"]
    if attempt is None:
        stored = _RECORD.run(fields, pk=order.pk, status__in=tuple(expect))
    else:
        stored = _RECORD_ATTEMPT.run(fields, pk=order.pk, status__in=tuple(expect), attempts=attempt)
    if not stored:
        if order.stage_clock is not None:
            # A newer state won (the paper matcher's fill): the trail is still this worker's
            # (not a newer attempt's).
            mine = Order.objects.filter(pk=order.pk)
            if attempt is not None:
                mine = mine.filter(attempts=attempt)
            mine.update(trail=order.trail)
        return False
    previous = order.status
    for name, value in fields.items():
        setattr(order, name, value)
    order_broadcast(order)
    if order.status != previous:
        order_notify(order)
    if filled_more:
        _loss_check(order)
    if filled_more and settings.PORTFOLIO_REFRESH_AFTER_FILL:
        # After the commit, so the worker reads the account as this fill left it.
        account_id = order.account_id
        transaction.on_commit(lambda: portfolio_refresh_soon(account_id))
    return True


def _loss_check(order: Order) -> None:
    """The daily-loss check after a fill; never fails the recording (the next order's own check
    still applies the limit)."""
    try:
        loss_check_after_fill(order)
    except Exception:
        log.exception("일일 손실 한도 확인 실패: order_id=%s", order.pk)


def order_notify(order: Order) -> None:
    """Tell the operator's notification destinations about an order that just ended filled,
    rejected or failed (a failed one whose placement could not be confirmed is its own kind:
    the venue must be checked). An order that ended cancelled after trading in part is a fill
    too, saying so: what filled moved money. Never raises."""
    try:
        message = order.message
        if order.status == OrderStatus.FILLED:
            kind, message = EventKind.ORDER_FILLED, ""
        elif order.status == OrderStatus.CANCELLED and (order.filled_qty or 0) > 0:
            kind = EventKind.ORDER_FILLED
            part = _("Filled in part (%(filled)s of %(quantity)s); the rest was cancelled") % {
                "filled": decimal_str(order.filled_qty, "0"),
                "quantity": decimal_str(order.quantity, "?"),
            }
            message = f"{part}. {order.message}" if order.message else part
        elif order.status == OrderStatus.FAILED and order.uncertain_attempt is not None:
            kind = EventKind.ORDER_UNCERTAIN
        elif order.status in (OrderStatus.REJECTED, OrderStatus.FAILED):
            kind = EventKind.ORDER_FAILED
        else:
            return
        quantity = order.filled_qty if kind == EventKind.ORDER_FILLED else order.quantity
        _order_emit(kind, order, quantity=quantity, price=order.avg_price or order.price, message=message)
    except Exception:  # a notification never fails an order
        log.exception("주문 알림 실패: order_id=%s", order.pk)


def _order_emit(kind: str, order: Order, *, quantity: Any, price: Any, message: str) -> None:
    """``emit`` an event about ``order`` (its strategy, account, symbol, side and page)."""
    emit(
        kind,
        strategy=order.strategy.group_name,
        account=order.account.name,
        symbol=order.symbol,
        side=order.side,
        quantity=quantity,
        price=price,
        order_id=order.pk,
        message=message,
    )


def _order_fail(order: Order, status: str, message: str) -> None:
    """End the executing attempt's order ``status`` (only while it is still that attempt's)."""
    order_record(order, OrderResult(status=status, message=message), attempt=order.attempts)


def _requeue(order: Order, message: str) -> bool:
    """Put the order back to `queued` — only while it is still this attempt's: a sweep working
    from an old copy, or an earlier attempt's late retry, must never take it from a newer
    claim (that claim's worker may be about to send). False when it was not."""
    fields: dict[str, Any] = {"status": OrderStatus.QUEUED, "message": message, "updated_at": timezone.now()}
    if order.stage_clock is not None:
        fields["trail"] = order.trail
    requeued = bool(
        Order.objects.filter(pk=order.pk, status=OrderStatus.SUBMITTED, attempts=order.attempts).update(
            **fields
        )
    )
    order.refresh_from_db()
    order_broadcast(order)
    return requeued


def _mark_uncertain(order: Order) -> None:
    """Remember that this attempt's placement may have reached the venue (first time only;
    only while the order is still this attempt's)."""
    if order.uncertain_attempt is None:
        order.uncertain_attempt = order.attempts
        Order.objects.filter(
            pk=order.pk, status=OrderStatus.SUBMITTED, uncertain_attempt__isnull=True, attempts=order.attempts
        ).update(uncertain_attempt=order.attempts)


def _cancel_all(adapter: ExchangeAdapter, order: Order) -> OrderResult:
    """Cancel the account's open orders. One that cannot be cancelled does not stop the others
    (the adapter tries each once): the cancel order ends `cancelled` with the count and the
    failures in its message when some were cancelled, `failed` with the failures when none
    could be (``cancelled_orders`` holds the count either way)."""
    failures: list[str] = []
    # Marked as an order's request is (raises AttemptTakenBack for an attempt the sweep took
    # back): a holder judged dead, only slow, must not cancel what the rerun placed after it.
    _mark_sending_or_retry(order)
    try:
        count = adapter.cancel_all(order.market_type, order.symbol or None)
    except CancelAllIncomplete as error:
        count, failures = error.cancelled, error.failures
        log.error("일괄 취소 일부 실패: order_id=%s %s", order.id, error.message)
    finally:
        _stage(order, "answered")
    _resting_follow_venue(adapter, order.account_id, order.market_type, order.symbol, exclude=order.pk)
    if failures:
        detail = "; ".join(failures)
        if count == 0:
            return OrderResult(
                status=OrderStatus.FAILED,
                message=_("No open order could be cancelled: %(failures)s") % {"failures": detail},
                cancelled_orders=0,
            )
        message = _("Cancelled %(count)d open orders; not cancelled: %(failures)s") % {
            "count": count,
            "failures": detail,
        }
    elif count == 0:
        message = _("No open orders to cancel")
    else:
        message = _("Cancelled %(count)d open orders") % {"count": count}
    # A completed cancel request ends as `cancelled` (not `filled`), with the count.
    return OrderResult(status=OrderStatus.CANCELLED, message=message, cancelled_orders=count)


def _keep_known_fills(order: Order, result: OrderResult) -> None:
    """A venue read that shows fewer fills than the Order already knows lags behind (a list
    not yet updated): fills never go back, so the Order's are kept (a resting order with
    fills is partly filled, not open)."""
    if result.filled_qty < (order.filled_qty or 0):
        result.filled_qty, result.avg_price = order.filled_qty, order.avg_price
        if result.status == OrderStatus.OPEN:
            result.status = OrderStatus.PARTIALLY_FILLED


def _resting_follow_venue(
    adapter: ExchangeAdapter, account_id: int, market_type: str, symbol: str, *, exclude: Any = None
) -> None:
    """After a cancel-all, the product's resting orders of that account (one symbol, or all
    when empty) follow the venue: each takes the venue's state (cancelled, or filled just
    before the cancel); one the venue cannot find by client id is taken as cancelled. One the
    venue cannot be asked about keeps its state."""
    resting = Order.objects.filter(account_id=account_id, market_type=market_type, status__in=LIVE_STATUSES)
    if exclude is not None:
        resting = resting.exclude(pk=exclude)
    if symbol:
        resting = resting.filter(symbol=symbol)
    for other in resting.select_related("account"):
        try:
            known = adapter.fetch_order_by_client_id(order_request(other))
        except VenueError as error:
            log.warning("취소 후 주문 상태 확인 실패: order_id=%s %s", other.id, error.message)
            continue
        if known is None:
            known = OrderResult(
                status=OrderStatus.CANCELLED,
                exchange_order_id=other.exchange_order_id,
                quantity=other.quantity,
                filled_qty=other.filled_qty,
                avg_price=other.avg_price,
                message=_("Cancelled by CANCEL_ALL_ORDER"),
            )
        _keep_known_fills(other, known)
        order_record(other, known, expect=LIVE_STATUSES)


def _place(adapter: ExchangeAdapter, order: Order) -> OrderResult:
    """Place the order, or find it at the venue. Never sends it a second time unless the venue
    proves it cannot make a second order of it: an attempt whose fate was unknown
    (``Order.uncertain_attempt``) is only looked up by client id, except on venues that refuse
    a repeated client id in every state (``client_id_refused_in_every_state``). Raises
    ``OrderUncertain`` while the order may still appear at the venue."""
    request = order_request(order)
    if order.attempts > 1:
        # An earlier attempt may have reached the venue: look it up before anything else.
        known = adapter.fetch_order_by_client_id(request)
        if known is not None:
            return known
        if order.uncertain_attempt is not None and not adapter.client_id_refused_in_every_state:
            # Not there (yet): a busy venue may still be processing it, and would take a
            # repeat as a second order. Look again later.
            raise OrderUncertain(order.message)
    if adapter.marks_sending:
        # The adapter marks it right before the request leaves.
        adapter.before_send = functools.partial(_mark_sending, order)
    else:
        _mark_sending_or_retry(order)
    try:
        try:
            return adapter.place_order(request)
        finally:
            if "sent" in order.trail:
                _stage(order, "answered")
    except OrderUncertain:
        _mark_uncertain(order)
        known = adapter.fetch_order_by_client_id(request)
        if known is not None:
            return known
        raise
    except OrderRejected:
        if order.uncertain_attempt is None:
            raise
        # The repeat of a placement whose fate was unknown was refused: on a venue that refuses
        # a repeated client id, because the first request arrived meanwhile (after the lookup
        # that missed it). What the venue holds wins over its refusal of the repeat.
        known = adapter.fetch_order_by_client_id(request)
        if known is not None:
            return known
        raise


def _mark_sending(order: Order) -> bool:
    """Record (in the cache) that the order request may leave, then its `sent` stage."""
    if not liveness.mark_sending(order.pk, order.attempts):  # raises AttemptTakenBack
        return False
    order.send_marked = True
    _stage(order, "sent")
    return True


def _mark_sending_or_retry(order: Order) -> None:
    """:func:`_mark_sending`, or a retry when the mark cannot be written (a request that left
    unmarked could not be judged safely if its holder died)."""
    if not _mark_sending(order):
        raise RetryableVenueError(_("The order could not be marked as being sent; it will be retried"))


def _uncertain_retry(order: Order, label: str, detail: str) -> None:
    """The next step for an order whose placement may be at the venue but was not found: look
    again after a backoff (raises ``ExecutionRetry``), or, once ORDER_UNCERTAIN_LOOKUPS
    lookups have missed, end it `failed` with the message that the venue must be checked."""
    assert order.uncertain_attempt is not None
    lookups = order.attempts - order.uncertain_attempt
    if lookups >= _uncertain_lookups():
        log.error("%s 주문 접수 여부 확인 불가: order_id=%s %s", label, order.id, detail)
        _order_fail(order, OrderStatus.FAILED, unconfirmed_message(detail))
        return
    log.warning("%s 주문 접수 여부 확인 예정: order_id=%s %s", label, order.id, detail)
    _requeue(order, detail)
    raise ExecutionRetry(_uncertain_backoff(lookups))


def _after_order(adapter: ExchangeAdapter, order: Order, *, placed: bool) -> None:
    try:
        adapter.after_order(order.market_type, placed=placed)
    except Exception:  # a snapshot is a shortcut: losing it never fails an order
        log.exception("잔고 스냅샷 갱신 오류: order_id=%s", order.id)


def order_execute(order: Order, adapter: ExchangeAdapter) -> None:
    """Send one claimed (`submitted`) order to its venue and record the outcome.

    Venue errors become the order's status and message. A retryable error puts the order back
    to `queued` and raises :class:`ExecutionRetry` (until the attempts run out: `failed`).
    """
    label = f"{adapter.display_name} {order.market_type}"
    placed = False
    try:
        if order.order_type == OrderType.CANCEL_ALL_ORDER:
            result = _cancel_all(adapter, order)
        else:
            # An order that may already be at the venue is only looked up, never re-judged.
            refusal = order_refusal(order, adapter) if order.uncertain_attempt is None else None
            if refusal is not None:
                log.error("%s 주문 거부 (%s): order_id=%s %s", label, refusal.code, order.id, refusal.message)
                _order_fail(order, OrderStatus.REJECTED, refusal.message)
                if refusal.code == RISK_LIMIT:
                    risk_limit_hit(refusal, where="worker", subject=f"order {order.id}")
                return
            result = _place(adapter, order)
        placed = result.status != OrderStatus.REJECTED
    except OrderUncertain as error:
        _uncertain_retry(order, label, error.message)
        return
    except RateLimitWaitError as error:
        # Held back by the venue's rate limit before anything left: not a venue failure, so it
        # does not use up the order's attempts; back soon (the buckets pace it).
        if order.uncertain_attempt is not None:
            _uncertain_retry(order, label, error.message)
            return
        log.info("%s 요청 한도 대기 (재시도 예정): order_id=%s %s", label, order.id, error.message)
        # This attempt never reached the venue: it does not count, whichever attempt it was (a
        # first one stays a first one, sent without a lookup; after a retryable failure the
        # failures so far are what the ORDER_MAX_ATTEMPTS count).
        if Order.objects.filter(pk=order.pk, status=OrderStatus.SUBMITTED, attempts=order.attempts).update(
            attempts=order.attempts - 1
        ):
            order.attempts -= 1
        _requeue(order, error.message)
        raise ExecutionRetry(RATE_LIMIT_RETRY_SECONDS) from error
    except RetryableVenueError as error:
        if order.uncertain_attempt is not None:
            _uncertain_retry(order, label, error.message)  # a lookup or a safe re-send failed
            return
        if order.attempts >= _max_attempts():
            log.error("%s 주문 실패 (재시도 한도): order_id=%s %s", label, order.id, error.message)
            _order_fail(order, OrderStatus.FAILED, error.message)
            return
        log.warning("%s 주문 재시도 예정: order_id=%s %s", label, order.id, error.message)
        _requeue(order, error.message)
        raise ExecutionRetry(_backoff(order.attempts)) from error
    except OrderRejected as error:
        log.error("%s 주문 거부: order_id=%s %s", label, order.id, error.message)
        _order_fail(order, OrderStatus.REJECTED, error.message)
        return
    except VenueError as error:
        log.error("%s 주문 실패: order_id=%s %s", label, order.id, error.message)
        if order.uncertain_attempt is not None:
            _order_fail(order, OrderStatus.FAILED, unconfirmed_message(error.message))
        else:
            _order_fail(order, OrderStatus.FAILED, error.message)
        return
    except AttemptTakenBack:
        raise  # the order is a newer attempt's: nothing of it is written here
    except Exception as error:
        # A bug must not leave the order `submitted` forever nor kill the account's sequence.
        log.exception("%s 주문 처리 중 내부 오류: order_id=%s", label, order.id)
        message = _("Internal error: %(error)s") % {"error": error}
        if order.send_marked and order.order_type != OrderType.CANCEL_ALL_ORDER:
            # After the request left (reading the answer, say): the venue may hold the order,
            # so it is looked up, never failed as if nothing had been placed.
            _mark_uncertain(order)
            _uncertain_retry(order, label, message)
            return
        _order_fail(order, OrderStatus.FAILED, message)
        return
    finally:
        if not placed:
            _after_order(adapter, order, placed=False)
    order_record(order, result, attempt=order.attempts)
    # After the order left and was recorded, before the account's next one: the balance
    # snapshot follows it (orders.exchanges.ccxt: sizing without a venue read).
    if placed:
        _after_order(adapter, order, placed=True)
    if result.status == OrderStatus.REJECTED:
        log.error("%s 주문 거부: order_id=%s %s", label, order.id, result.message)
    else:
        log.info(
            "%s 주문 생성 성공: order_id=%s status=%s %s", label, order.id, result.status, result.message
        )


# Orders of one account run in parallel (tasks of different webhooks; ccxt: a client per task up
# to ``parallel_orders``), except where the order matters: a webhook's own orders one after the
# other by `sequence` (the batch's priority); a close (negative qty_per) or a CANCEL_ALL_ORDER
# after every earlier-created order of the account on its symbol (all symbols without one); any
# order after an earlier CANCEL_ALL_ORDER on its symbol (or on all). Opens of one symbol do not
# wait for each other (as two worker processes never did). A task waits up to
# EARLIER_WAIT_SECONDS for those (they are running: the queue is first-in first-out), then comes
# back later (a retry of the earlier one may need its thread).
EARLIER_WAIT_SECONDS = 10.0
EARLIER_RETRY_SECONDS = 1.0
EARLIER_POLL_SECONDS = 0.05


def _earlier_pending(order: Order) -> bool:
    """Whether an order of the same account, of another webhook, created before this one and
    not yet out of the worker must go first (see above). One EXISTS query."""
    pending = Order.objects.filter(
        account_id=order.account_id,
        market_type=order.market_type,
        status__in=[OrderStatus.QUEUED, OrderStatus.SUBMITTED],
        created_at__lt=order.created_at,
    ).exclude(webhook_id=order.webhook_id)
    if order.symbol:
        pending = pending.filter(symbol__in=[order.symbol, ""])
    goes_last = order.order_type == OrderType.CANCEL_ALL_ORDER or (
        order.qty_per is not None and order.qty_per < 0
    )
    if not goes_last:
        pending = pending.filter(order_type=OrderType.CANCEL_ALL_ORDER)
    return pending.exists()


# Read with the task's orders (one query): whether the account has ANY order of the market,
# created before this one, not yet out of the worker. It is a superset of what
# ``_earlier_pending`` asks, so False (the usual case) settles it without that query, and it
# stays False: orders created later are not earlier.
_MAYBE_AFTER = Exists(
    Order.objects.filter(
        account_id=OuterRef("account_id"),
        market_type=OuterRef("market_type"),
        status__in=[OrderStatus.QUEUED, OrderStatus.SUBMITTED],
        created_at__lt=OuterRef("created_at"),
    )
)


def _task_orders(webhook_id: UUID, account_id: int) -> QuerySet[Order]:
    """What a task reads to execute one account's orders of one webhook."""
    return (
        Order.objects.filter(webhook_id=webhook_id, account_id=account_id, status=OrderStatus.QUEUED)
        .select_related(*_EXECUTION_RELATED)
        .defer("strategy__token")
        .annotate(maybe_after=_MAYBE_AFTER)
        .order_by("sequence", "pk")
    )


# Compiled once per database (quanttrade/prepared.py): the compile cost ~2 ms per task, more
# than the query. tests/test_prepared.py compares it with the queryset.
_TASK_ORDERS = PreparedSelect(
    _task_orders,
    {"webhook_id": Order._meta.get_field("webhook"), "account_id": Order._meta.get_field("account")},
)


# PostgreSQL: the task's read claims its first order in the same statement, when nothing earlier
# of the account can be pending (``_MAYBE_AFTER`` false, the usual case): a data-modifying WITH
# moves the order to `submitted` as ``order_claim`` does (attempts + 1, submitted_at and
# updated_at = ``now``), and the read says which row it claimed. One round trip instead of two
# on the path to the venue; the same guard as ``order_claim``'s (the row still `queued` with the
# attempts the read saw: another claim in between, even one undone since, wins and this one
# claims nothing), and never while an earlier order of the pair is in flight in another run of
# it (``_earlier_in_flight``). The read's rows show the orders as they were before the claim (PostgreSQL's
# WITH: one snapshot), so the claimed one is completed in memory as ``order_claim`` completes a
# loaded one.
def _claim_first(connection: Any, *, webhook_id: Any, account_id: Any, now: Any) -> tuple[str, list[Any]]:
    quote = connection.ops.quote_name
    table = quote(Order._meta.db_table)

    def column(name: str) -> str:
        field = Order._meta.get_field(name)
        assert isinstance(field, Field)  # a concrete column, not a reverse relation
        return quote(field.column)

    pk = quote(Order._meta.pk.column)
    status, account, market, created, attempts = (
        column("status"),
        column("account"),
        column("market_type"),
        column("created_at"),
        column("attempts"),
    )
    webhook, sequence = column("webhook"), column("sequence")
    sql = (
        f'WITH "head" AS (SELECT {pk}, {attempts} FROM {table} WHERE {webhook} = %s '  # noqa: S608 - names from the model
        f"AND {account} = %s AND {status} = %s ORDER BY {sequence}, {pk} LIMIT 1), "
        f'"claimed" AS (UPDATE {table} SET {status} = %s, {column("submitted_at")} = %s, '
        f"{column('updated_at')} = %s, {attempts} = {table}.{attempts} + 1 "
        f'WHERE {table}.{pk} = (SELECT {pk} FROM "head") AND {table}.{attempts} = (SELECT {attempts} FROM "head") '
        f"AND {table}.{status} = %s AND NOT EXISTS (SELECT 1 FROM {table} earlier "
        f"WHERE earlier.{account} = {table}.{account} AND earlier.{market} = {table}.{market} "
        f"AND earlier.{status} IN (%s, %s) AND earlier.{created} < {table}.{created}) "
        f"AND NOT EXISTS (SELECT 1 FROM {table} prior_order WHERE prior_order.{webhook} = {table}.{webhook} "
        f"AND prior_order.{account} = {table}.{account} AND prior_order.{sequence} < {table}.{sequence} "
        f"AND prior_order.{status} = %s) RETURNING {table}.{pk})"
    )
    queued, submitted = OrderStatus.QUEUED.value, OrderStatus.SUBMITTED.value
    return sql, [webhook_id, account_id, queued, submitted, now, now, queued, queued, submitted, submitted]


def _task_orders_claiming(webhook_id: UUID, account_id: int, now: Any) -> QuerySet[Order]:
    """:func:`_task_orders`, each row saying whether the statement's WITH claimed it."""
    table, pk = Order._meta.db_table, Order._meta.pk.column
    claimed = f'EXISTS (SELECT 1 FROM "claimed" WHERE "claimed"."{pk}" = "{table}"."{pk}")'  # noqa: S608 - names from the model
    flag = RawSQL(claimed, (), output_field=BooleanField())  # noqa: S611 - no parameters
    return _task_orders(webhook_id, account_id).annotate(claimed_by_read=flag)


_TASK_ORDERS_CLAIMING = PreparedSelect(
    _task_orders_claiming,
    {
        "webhook_id": Order._meta.get_field("webhook"),
        "account_id": Order._meta.get_field("account"),
        "now": Order._meta.get_field("submitted_at"),
    },
    prefix=_claim_first,
)


def _task_orders_read(webhook_id: UUID, account_id: int, now: Any) -> list[Order]:
    """The task's queued orders of the pair; on PostgreSQL the first one claimed already when it
    can be (``claimed_by_read``, see ``_claim_first``)."""
    if connections["default"].vendor == "postgresql":
        return _TASK_ORDERS_CLAIMING.fetch(webhook_id=webhook_id, account_id=account_id, now=now)
    return _TASK_ORDERS.fetch(webhook_id=webhook_id, account_id=account_id)


def _earlier_in_flight(order: Order) -> bool:
    """Whether an earlier order of ``order``'s webhook and account is being executed by another
    run of the pair (the pair was dispatched twice: a re-dispatch while a busy worker held the
    first message). That run goes on to the rest in their order; this one must not overtake
    it (a batch's next order before its cancel-all has run). Asked only when the pair's first
    queued order is not its first order (a retry, or such a second run): one EXISTS query."""
    return Order.objects.filter(
        webhook_id=order.webhook_id,
        account_id=order.account_id,
        sequence__lt=order.sequence,
        status=OrderStatus.SUBMITTED,
    ).exists()


def _wait_for_earlier(order: Order) -> None:
    """Return once no earlier order of the account on the same symbol is pending; raises
    :class:`ExecutionRetry` when that takes longer than EARLIER_WAIT_SECONDS (the task's thread
    is then free for the earlier order itself)."""
    if getattr(order, "maybe_after", True) is False:
        return
    deadline = time.monotonic() + EARLIER_WAIT_SECONDS
    while _earlier_pending(order):
        if time.monotonic() >= deadline:
            log.info("앞선 같은 종목 주문 대기 (재시도 예정): order_id=%s", order.pk)
            raise ExecutionRetry(EARLIER_RETRY_SECONDS)
        handoff.venue_sleep(EARLIER_POLL_SECONDS)


def account_orders_execute(
    webhook_id: UUID | str,
    account_id: int,
    trail: dict[str, Any] | None = None,
    started: bool = False,
    clear: bool = True,
) -> None:
    """Run one account's queued orders of one webhook, one after the other by `sequence`, each
    after the account's earlier orders that must go first (``_wait_for_earlier``).

    Safe to run any number of times: each order is claimed atomically, so an order past
    `queued` is never sent again. Raises :class:`ExecutionRetry` when the task should run
    again later; the orders after the one that must be retried wait for it.

    ``started``: the caller has marked the pair started already (a fan-out's chunk is marked as
    a whole, ``liveness.mark_started_many``). ``clear=False``: a run that ends normally leaves
    the pair's dispatch record to the caller, who clears a chunk's at once
    (``liveness.clear_dispatch_many``). A run that fails clears its own.
    """
    if not started:
        liveness.mark_started(webhook_id, account_id)
    try:
        now = timezone.now()
        queued = _task_orders_read(UUID(str(webhook_id)), account_id, now)
        loaded_at = time.monotonic()
        for row in queued:
            row.loaded_at = loaded_at
    except BaseException:
        # The database is down: this task ends and its record with it, so the sweep resends the
        # pair (a record left "started by a live worker" would hide the orders from it forever).
        liveness.clear_dispatch(webhook_id, account_id)
        raise
    if not queued or (
        queued[0].sequence > 0
        and not getattr(queued[0], "claimed_by_read", False)  # claimed: nothing earlier in flight
        and _earlier_in_flight(queued[0])
    ):
        if clear:
            liveness.clear_dispatch(webhook_id, account_id)
        return
    adapter: ExchangeAdapter | None = None
    running: Order | None = None  # claimed here, its execution not yet ended
    try:
        for row in queued:
            if getattr(row, "claimed_by_read", False):
                order = order_claim(row.pk, trail, loaded=row, claimed_at=now)
            else:
                _wait_for_earlier(row)
                order = order_claim(row.pk, trail, loaded=row)
            if order is None:
                if Order.objects.filter(pk=row.pk, status=OrderStatus.SUBMITTED).exists():
                    # Another run of this pair is executing it (the pair was dispatched twice):
                    # that run goes on to the rest in their order; this one stops rather than
                    # overtake it (a batch's next order before its cancel-all has run).
                    log.info("같은 주문을 다른 실행이 처리 중 (중단): order_id=%s", row.pk)
                    break
                continue
            running = order
            if adapter is None:
                try:
                    adapter = adapter_for(order.account)
                except VenueError as error:
                    _order_fail(order, OrderStatus.FAILED, error.message)
                    running = None
                    continue
            order_execute(order, adapter)
            running = None
    except ExecutionRetry:
        raise  # the task's retry is the pair's next dispatch
    except AttemptTakenBack as taken:
        # The sweep judged this process dead while it was only slow and gave the order to a
        # newer attempt, which now runs the pair: this run stops without sending or writing
        # anything, and leaves the claim and the dispatch record to that attempt.
        log.warning("주문 시도가 회수됨 (실행 중단): webhook=%s account=%s %s", webhook_id, account_id, taken)
        return
    except BaseException:
        liveness.clear_dispatch(webhook_id, account_id)  # orders left queued: the sweep's
        if running is not None:
            # Its execution ended without settling it (an error in the error handling, the
            # database gone): this process, though it beats on, holds it no longer, so the
            # sweep settles it now as a dead holder's (sent again when nothing left).
            liveness.release_claim(running.pk)
        raise
    finally:
        if adapter is not None:
            adapter.close()
    if clear:
        liveness.clear_dispatch(webhook_id, account_id)


def order_reconcile(order: Order, *, holder_alive: bool = False) -> bool:
    """Settle an order stuck in `submitted` (a worker died mid-call): record what the venue
    has under its client id, or put it back to `queued` when the venue has nothing.
    Returns True when the order went back to `queued` (the caller dispatches it).

    ``holder_alive``: the process holding it still beats (it is slow, not dead: waiting for
    its venue, a lock or a rate limit). It may yet send, so the order is never simply sent
    again: the next attempt only looks it up (or re-sends where the venue refuses a repeated
    client id), as after a lost answer.

    A CANCEL_ALL_ORDER is no order at the venue, so there is nothing to look up (the lookup
    failed at every sweep, and the account's later closes waited for it forever): a dead
    holder's is run again (cancelling the open orders twice cancels nothing more, and the
    account's later orders wait for it), its attempt taken back so that a holder only slow does
    not cancel late what the rerun placed after it; a live holder's is left to it. An order whose lookup
    fails is asked again at the next sweep."""
    if order.order_type == OrderType.CANCEL_ALL_ORDER:
        if holder_alive:
            return False
        log.info("일괄 취소 재실행: order_id=%s", order.id)
        attempt = order.attempts
        liveness.take_back(order.pk, attempt)  # a slow holder that has not sent it never will
        if _requeue(order, ""):
            return True
        liveness.untake(order.pk, attempt)  # the attempt ended meanwhile: not taken back
        return False
    try:
        adapter = adapter_for(order.account)
        try:
            known = adapter.fetch_order_by_client_id(order_request(order))
        finally:
            adapter.close()
    except VenueError as error:
        log.warning("주문 상태 확인 실패: order_id=%s %s", order.id, error.message)
        return False
    if known is not None:
        log.info("주문 상태 복구: order_id=%s status=%s", order.id, known.status)
        order_record(order, known)
        return False
    log.info("주문 재전달: order_id=%s (거래소에 없음)", order.id)
    attempt = order.attempts
    if not holder_alive and liveness.never_sent(order.pk, attempt):
        # Its worker died after the claim and before any request left: simply send it.
        if _requeue(order, ""):
            return True
        # The attempt ended meanwhile (its holder gave it back or settled it): not taken back.
        liveness.untake(order.pk, attempt)
        return False
    # The worker died somewhere around the order request: whether it left is unknown, so the
    # order is only looked up again (or re-sent where the venue refuses a repeated client id).
    _mark_uncertain(order)
    return _requeue(order, "")


def orders_sweep(stale_after_seconds: float | None = None) -> dict[str, int]:
    """Recover orders a crash or broker outage left behind (run periodically).

    Orders still `queued` after ``stale_after_seconds`` (default ORDER_STALE_AFTER_SECONDS) whose
    task is lost (``liveness.dispatch_lost``: not merely waiting in the broker) are dispatched
    again, one task per (webhook, account); orders `submitted` for
    SUBMITTED_STALE_FACTOR times as long are reconciled with their venue (longer, so a slow but
    live venue call is not mistaken for a dead worker). Returns the counts, for logs and tests.
    """
    if stale_after_seconds is None:
        stale_after_seconds = settings.ORDER_STALE_AFTER_SECONDS
    with liveness.sweep_turn(timeout=SWEEP_TURN_SECONDS) as mine:
        if not mine:
            log.info("다른 스윕 실행 중: 이번 스윕 생략")
            return {"redispatched": 0, "reconciled": 0, "refreshed": 0}
        return _orders_sweep(stale_after_seconds)


# A sweep holds its turn at most this long (one whose process was killed is taken over as soon
# as its heartbeat is gone).
SWEEP_TURN_SECONDS = 300


def _orders_sweep(stale_after_seconds: float) -> dict[str, int]:
    now = timezone.now()
    cutoff = now - timedelta(seconds=stale_after_seconds)
    submitted_cutoff = now - timedelta(seconds=stale_after_seconds * SUBMITTED_STALE_FACTOR)
    # A submitted order whose worker is known dead (its heartbeat stopped) is settled now; one
    # whose holder is unknown, or alive but silent for longer than any live venue call can
    # explain, once it is that old (an alive holder's only looked up: it may yet send).
    stuck: list[tuple[Order, str]] = []
    for order in Order.objects.filter(status=OrderStatus.SUBMITTED, updated_at__lt=now).select_related(
        "account"
    ):
        holder = liveness.holder_state(order.pk)
        if holder == liveness.HOLDER_DEAD or order.updated_at < submitted_cutoff:
            stuck.append((order, holder))
    pairs = {
        (order.webhook_id, order.account_id)
        for order, holder in stuck
        if _reconcile_or_log(order, holder_alive=holder == liveness.HOLDER_ALIVE)
    }
    # A queued order is re-sent only when its task is lost, not while it waits behind a backlog
    # or runs behind the account's earlier orders (orders.liveness: dispatch records).
    pairs.update(
        (webhook_id, account_id)
        for webhook_id, account_id in set(
            Order.objects.filter(status=OrderStatus.QUEUED, updated_at__lt=cutoff).values_list(
                "webhook_id", "account_id"
            )
        )
        if liveness.dispatch_lost(webhook_id, account_id, stale_after_seconds)
    )
    for webhook_id, account_id in sorted(pairs, key=str):
        log.warning("대기 주문 재전달: webhook=%s account=%s", webhook_id, account_id)
        orders_dispatch(webhook_id, [account_id])
    return {"redispatched": len(pairs), "reconciled": len(stuck), "refreshed": live_orders_refresh()}


def _reconcile_or_log(order: Order, *, holder_alive: bool) -> bool:
    """``order_reconcile``, an unexpected error logged instead of raised: one order's bug must
    not stop the sweep's re-dispatches and the other orders' settling at every run."""
    try:
        return order_reconcile(order, holder_alive=holder_alive)
    except Exception:
        log.exception("주문 상태 복구 중 오류: order_id=%s", order.pk)
        return False


LIVE_REFRESH_BATCH = 200
# What a resting order's venue read cannot move it back to: a status the venue's answer did not
# map (an adapter's default) must not take an order out of the refresh and the cancel button.
_NOT_RESTING_NEWS = (OrderStatus.QUEUED, OrderStatus.SUBMITTED, OrderStatus.PENDING_APPROVAL)


def live_orders_refresh(limit: int = LIVE_REFRESH_BATCH) -> int:
    """Ask live venues for the state of orders resting there (`open`, `partially_filled`), so
    fills and cancels that happen at the venue reach the Order and the pages. Paper orders are
    kept current by the matcher instead. At most ``limit`` orders a run, the least recently
    asked about first (``Order.checked_at``; never asked: before any), so with more resting
    orders than that every one is still reached, in turn; an order whose venue could not be
    asked waits its turn again rather than holding the head of the line. Returns how many
    Orders changed."""
    resting = list(
        Order.objects.filter(status__in=LIVE_STATUSES)
        .exclude(account__exchange="PAPER")
        .select_related("account")
        .order_by(F("checked_at").asc(nulls_first=True), "updated_at", "pk")[:limit]
    )
    if not resting:
        return 0
    # Taken as asked at the start: a run that fails half-way leaves its batch behind the rest.
    Order.objects.filter(pk__in=[order.pk for order in resting]).update(checked_at=timezone.now())
    by_account: dict[int, list[Order]] = {}
    for order in resting:
        by_account.setdefault(order.account_id, []).append(order)
    changed = 0
    for orders in by_account.values():
        try:
            adapter = adapter_for(orders[0].account)
        except VenueError as error:
            log.warning("주문 상태 갱신 불가: account=%s %s", orders[0].account.name, error.message)
            continue
        try:
            for order in orders:
                try:
                    known = adapter.fetch_order_by_client_id(order_request(order))
                except VenueError as error:
                    log.warning("주문 상태 갱신 실패: order_id=%s %s", order.id, error.message)
                    continue
                except Exception:  # an adapter's bug: the other orders are still asked about
                    log.exception("주문 상태 갱신 중 오류: order_id=%s", order.id)
                    continue
                if known is None or known.status in _NOT_RESTING_NEWS:
                    continue
                _keep_known_fills(order, known)
                if known.status in LIVE_STATUSES and order.cancel_requested_at is not None:
                    try:
                        if _cancel_follow_up(adapter, order):
                            changed += 1
                            _after_order(adapter, order, placed=False)
                            continue
                    except Exception:  # the refresh goes on to the others
                        log.exception("취소 재전송 중 오류: order_id=%s", order.id)
                if known.status == order.status and known.filled_qty == order.filled_qty:
                    continue
                if order_record(order, known, expect=LIVE_STATUSES):
                    log.info("주문 상태 갱신: order_id=%s status=%s", order.id, known.status)
                    changed += 1
                    # A fill (or cancel) at the venue moved the balances: the next sizing reads them.
                    _after_order(adapter, order, placed=False)
        finally:
            adapter.close()
    return changed


def paper_orders_sync(papers: Iterable[PaperOrder]) -> int:
    """Copy the paper venue's state of changed orders onto the product's Orders and push them."""
    papers = list(papers)
    orders = Order.objects.select_related("account").in_bulk(
        {paper.client_order_id for paper in papers}, field_name="client_order_id"
    )
    synced = 0
    for paper in papers:
        order = orders.get(paper.client_order_id)
        if order is None or (order.status == paper.status and order.filled_qty == paper.filled):
            continue
        if order_record(order, paper_result(paper), expect=SYNCABLE_STATUSES):
            synced += 1
    return synced


def paper_match_run() -> int:
    """Match resting paper orders against the latest prices; returns how many Orders changed."""
    return paper_orders_sync(paper_match())


def web_execution_start() -> handoff.LocalPool | None:
    """In a web process of distributed mode: order threads of its own (ORDER_WEB_THREADS), on
    which a signal runs when each of its accounts finds one idle (``handoff.install_web``), and the
    venues warmed for them in the background as a worker warms them. Called by the web servers
    (the gunicorn worker class, ``manage.py serve``) once the application is loaded; nothing in
    embedded mode (its own pool runs every execution) or with ORDER_WEB_THREADS=0. At the
    process's exit the executions under way finish (a process killed before that is settled by
    the sweep, as a killed worker is)."""
    threads = int(settings.ORDER_WEB_THREADS)
    if threads <= 0 or handoff.current() is not None or handoff.web() is not None or broker_in_memory():
        return None
    pool = handoff.LocalPool(threads)
    handoff.install_web(pool)
    atexit.register(web_execution_stop, pool)
    venues_warm_in_background()
    return pool


def web_execution_stop(pool: handoff.LocalPool | None = None) -> None:
    """Stop handing executions to ``pool`` (default: this process's, if any) and let those under
    way finish: at exit, in `serve`'s shutdown, and before a SIGTERM ends a gunicorn worker."""
    pool = pool or handoff.web()
    if pool is not None:
        handoff.uninstall_web(pool)
        pool.shutdown(wait=True)


def venues_warm_in_background() -> None:
    """:func:`venues_warm` on a thread of its own, as a worker or a web process with order
    threads starts (not with QT_SKIP_VENUE_WARMUP)."""
    if os.environ.get("QT_SKIP_VENUE_WARMUP"):
        return

    def warm() -> None:
        try:
            venues_warm()
        finally:
            close_old_connections()

    threading.Thread(target=warm, name="venue-warmup", daemon=True).start()


def venues_warm() -> int:
    """Load markets and tokens for every account an active strategy trades through, so the
    first signal after a worker starts does not pay for them (a ccxt market list is seconds
    on a real venue). Failures are logged, never raised: the order path loads them itself.
    Returns how many (account, market type) pairs were warmed."""
    pairs = sorted(
        set(
            StrategyAccount.objects.filter(
                is_active=True, account__is_active=True, strategy__is_active=True
            ).values_list("account_id", "strategy__market_type")
        )
    )
    accounts = Account.objects.in_bulk({account_id for account_id, _market_type in pairs})
    warmed = 0
    for account_id, market_type in pairs:
        account = accounts[account_id]
        try:
            adapter = adapter_for(account)
            try:
                adapter.warm(market_type)
            finally:
                adapter.close()
            warmed += 1
        except Exception as exc:  # best effort: the order path does the same work itself
            log.warning("거래소 준비 실패: account=%s %s", account.name, getattr(exc, "message", exc))
    return warmed


# --- operator actions (the order and account pages) -------------------------------------------


class OrderNotOpenError(ApiError):
    """Only a resting order (`open`, `partially_filled`) can be cancelled."""

    code = "order_not_open"
    status = 409


@dataclass(frozen=True)
class CancelAllReport:
    """What a cancel-all of an account did: venue orders cancelled, and one "what: why" per
    market / symbol (or order) that could not be cancelled."""

    cancelled: int
    failures: list[str]


def order_cancel(order: Order) -> Order:
    """Cancel one resting Order at its venue and record the venue's answer on it (pushed to the
    `orders` topic). Returns the Order as recorded: `cancelled`, or `filled` /
    `partially_filled` when it traded before the cancel arrived, or still live with a message
    saying the cancel was asked for when the venue accepted it but still shows the order live
    (the live refresh reads how it ends).

    Raises :class:`OrderNotOpenError` for an order that is not resting, and the venue's
    :class:`VenueError` when the cancel failed: the order then keeps its status and its message
    says the cancel failed."""
    if order.status not in LIVE_STATUSES:
        raise OrderNotOpenError(
            _("Only open orders can be cancelled; this one is %(status)s.")
            % {"status": order.get_status_display()}
        )
    adapter = adapter_for(order.account)
    try:
        result = adapter.cancel_order(order_request(order), order.exchange_order_id)
    except VenueError as error:
        log.error("주문 취소 실패: order_id=%s %s", order.id, error.message)
        message = _("Cancel failed: %(error)s") % {"error": error.message}
        if Order.objects.filter(pk=order.pk, status__in=LIVE_STATUSES).update(
            message=message, updated_at=timezone.now()
        ):
            order.refresh_from_db()
            if isinstance(error, CancelSentUnread):  # accepted: followed up as one not applied
                _cancel_outstanding(order, resends=0)
            order_broadcast(order)
        raise
    finally:
        adapter.close()
    if _cancel_answer_record(order, result):
        log.info("주문 취소: order_id=%s status=%s", order.id, result.status)
        if result.status in LIVE_STATUSES:
            # Accepted, not applied yet: the live refresh follows it up (_cancel_follow_up).
            _cancel_outstanding(order, resends=0)
    else:
        order.refresh_from_db()  # the venue's news (a fill, a cancel) reached it first
    return order


def _cancel_answer_record(order: Order, result: OrderResult) -> bool:
    """Record a cancel's answer on the still-live ``order`` (the fills the Order knows kept);
    True when stored."""
    _keep_known_fills(order, result)
    if result.status == OrderStatus.CANCELLED and not result.message:
        result.message = _("Cancelled on request")
    return order_record(order, result, expect=LIVE_STATUSES)


def _cancel_outstanding(order: Order, *, resends: int) -> bool:
    """Note on ``order`` (still live) that a cancel was sent now, the ``resends``-th resend (0:
    the one asked for); False when the order is no longer live or another process noted a
    later resend first (then this one sends nothing)."""
    now = timezone.now()
    rows = Order.objects.filter(pk=order.pk, status__in=LIVE_STATUSES)
    if resends:
        rows = rows.filter(cancel_resends=resends - 1)
    if not rows.update(cancel_requested_at=now, cancel_resends=resends):
        return False
    order.cancel_requested_at, order.cancel_resends = now, resends
    return True


def _cancel_follow_up(adapter: ExchangeAdapter, order: Order) -> bool:
    """A cancel the venue accepted (``order.cancel_requested_at``) and the venue still shows the
    order live: once ORDER_CANCEL_RESEND_SECONDS have passed since it was sent, send it again
    (a venue may drop an accepted cancel; sending it again cancels nothing more), at most
    ORDER_CANCEL_RESENDS times, and tell the operator (``order_cancel_unconfirmed``) at the first
    resend and when they run out (the order may still be live: the venue must be checked).
    Returns True when the resend's answer ended the order (recorded)."""
    assert order.cancel_requested_at is not None  # the caller's condition
    limit = int(settings.ORDER_CANCEL_RESENDS)
    waited = (timezone.now() - order.cancel_requested_at).total_seconds()
    if order.cancel_resends >= limit or waited < float(settings.ORDER_CANCEL_RESEND_SECONDS):
        return False
    resends = order.cancel_resends + 1
    if not _cancel_outstanding(order, resends=resends):
        return False
    log.warning(
        "취소가 적용되지 않아 다시 보냄: order_id=%s (%d/%d, %.0f초 경과)", order.id, resends, limit, waited
    )
    result: OrderResult | None = None
    try:
        result = adapter.cancel_order(order_request(order), order.exchange_order_id)
    except VenueError as error:
        log.warning("취소 재전송 실패: order_id=%s %s", order.id, error.message)
    if result is not None and result.status not in LIVE_STATUSES:
        return _cancel_answer_record(order, result)
    message = (
        _("The venue accepted the cancel but still shows the order live; the cancel was sent again")
        if resends < limit
        else _("The venue still shows the order live after every resend of its cancel; check the venue")
    )
    if Order.objects.filter(pk=order.pk, status__in=LIVE_STATUSES).update(
        message=message, updated_at=timezone.now()
    ):
        order.message = message  # the order page says so too
        order_broadcast(order)
    if resends in (1, limit):
        _order_emit(
            EventKind.ORDER_CANCEL_UNCONFIRMED,
            order,
            quantity=order.quantity,
            price=order.price,
            message=message,
        )
    return False


def account_cancel_all(account: Account) -> CancelAllReport:
    """Cancel, at the venue, every open order of each market and symbol the account has resting
    Orders in (the venue's cancel-all per symbol, so orders placed there by other means in those
    symbols go too), then bring those Orders to the venue's state. One market or symbol that
    fails does not stop the others."""
    groups = sorted(
        set(
            Order.objects.filter(account=account, status__in=LIVE_STATUSES).values_list(
                "market_type", "symbol"
            )
        )
    )
    if not groups:
        return CancelAllReport(cancelled=0, failures=[])
    count = 0
    failures: list[str] = []
    adapter = adapter_for(account)
    try:
        for market_type, symbol in groups:
            try:
                count += adapter.cancel_all(market_type, symbol or None)
            except CancelAllIncomplete as error:
                count += error.cancelled
                failures.extend(error.failures)
            except VenueError as error:
                failures.append(f"{market_type} {symbol}: {error.message}")
            _resting_follow_venue(adapter, account.pk, market_type, symbol)
    finally:
        adapter.close()
    if failures:
        log.error("계정 일괄 취소 일부 실패: account=%s %s", account.name, "; ".join(failures))
    log.info("계정 일괄 취소: account=%s cancelled=%d", account.name, count)
    return CancelAllReport(cancelled=count, failures=failures)
