"""Writes for notifications: the outbox, batching per destination, sending through apprise.

Per destination: ``emit`` adds outbox rows and schedules one flush task (only when none is
scheduled), NOTIFY_BATCH_SECONDS later or at the destination's ``next_send_at``, whichever is
later. The flush claims the destination's send slot (``next_send_at`` moves NOTIFY_MIN_INTERVAL
ahead), claims every pending row and sends them as one message. A failed send puts the rows
back with one more attempt and pushes ``next_send_at`` out (backoff); after
NOTIFY_MAX_ATTEMPTS a row is given up. Nothing here reads or writes an order.
"""

from __future__ import annotations

import logging
import re
import time
from datetime import datetime, timedelta
from typing import Any

import apprise
from django.conf import settings
from django.db import transaction
from django.db.models import F, Q
from django.utils import timezone
from django.utils.translation import gettext as _

from notify.messages import batch_render, sample_message
from notify.models import Notification, NotificationDestination, NotificationState
from quanttrade.celery import app as celery_app
from quanttrade.generation import Generation
from quanttrade.logging import redact

log = logging.getLogger("quanttrade.notify")

FLUSH_TASK = "notify.tasks.notify_flush"
# Events per message; more wait for the next one (a backlog drains at one message per interval).
MAX_BATCH = 100
MAX_BACKOFF_SECONDS = 600.0
# A flush that has not run this long after its due time is presumed lost (broker outage).
FLUSH_LOST_AFTER = timedelta(seconds=60)
# Rows left `sending` this long by a worker that died are sent again.
SENDING_STALE_AFTER = timedelta(minutes=5)
GIVEN_UP_RETENTION = timedelta(days=7)


class FlushRetry(Exception):  # noqa: N818 - a signal to the task, not an error
    """The destination failed (or is rate-limited): flush again at ``due`` (which is now the
    destination's ``flush_due_at``)."""

    def __init__(self, due: datetime):
        self.due = due
        super().__init__(due.isoformat())

    @property
    def countdown(self) -> float:
        return max((self.due - timezone.now()).total_seconds(), 0.0)


def _min_interval() -> float:
    return float(settings.NOTIFY_MIN_INTERVAL)


def _backoff(attempts: int) -> float:
    return min(max(_min_interval(), 1.0) * 2 ** max(attempts - 1, 0), MAX_BACKOFF_SECONDS)


# The kinds some active destination wants, as this process last read them: (the destinations'
# generation token then, when, the kinds). Most events (every order's) are wanted by nobody:
# they then cost no query. Used while no destination has been saved or deleted since (the
# token, quanttrade/generation.py) and for at most KINDS_WANTED_MAX_AGE seconds.
DESTINATIONS = Generation("qt:notify:destinations:generation", "notification destinations")
KINDS_WANTED_MAX_AGE = 60.0
_kinds_wanted_copy: tuple[str, float, frozenset[str]] | None = None


def destinations_changed(*args: Any, **kwargs: Any) -> None:
    """A destination was saved or deleted (a signal receiver, notify.apps)."""
    DESTINATIONS.changed()


def _kinds_wanted() -> frozenset[str]:
    global _kinds_wanted_copy
    token = DESTINATIONS.current()
    copy = _kinds_wanted_copy
    if (
        token is not None
        and copy is not None
        and copy[0] == token
        and time.monotonic() - copy[1] < KINDS_WANTED_MAX_AGE
    ):
        return copy[2]
    kinds = frozenset(
        kind
        for events in NotificationDestination.objects.filter(is_active=True).values_list("events", flat=True)
        for kind in (events or [])
    )
    if token is not None:
        _kinds_wanted_copy = (token, time.monotonic(), kinds)
    return kinds


def notifications_enqueue(kind: str, fields: dict[str, str]) -> int:
    """Add the event to the outbox of every active destination that wants it and schedule
    their flushes. Returns how many outbox rows were written."""
    return notifications_enqueue_many([(kind, fields)])


def notifications_enqueue_many(events: list[tuple[str, dict[str, str]]]) -> int:
    """:func:`notifications_enqueue` of several events (``(kind, fields)``, in their order):
    one read of the destinations, one INSERT, one flush scheduled per destination. Returns how
    many outbox rows were written."""
    kinds = _kinds_wanted()
    events = [(kind, fields) for kind, fields in events if kind in kinds]
    if not events:
        return 0
    destinations = list(NotificationDestination.objects.filter(is_active=True))
    rows = [
        Notification(destination=destination, kind=kind, fields=fields)
        for kind, fields in events
        for destination in destinations
        if destination.wants(kind)
    ]
    if not rows:
        return 0
    Notification.objects.bulk_create(rows)
    receiving = {row.destination_id for row in rows}
    for destination in destinations:
        if destination.pk in receiving:
            flush_schedule(destination)
    return len(rows)


def flush_schedule(destination: NotificationDestination) -> None:
    """Schedule the destination's flush unless one is already scheduled. A broker outage is
    logged: the rows stay and the sweep schedules the flush later."""
    now = timezone.now()
    due = now + timedelta(seconds=float(settings.NOTIFY_BATCH_SECONDS))
    if destination.next_send_at and destination.next_send_at > due:
        due = destination.next_send_at
    scheduled = NotificationDestination.objects.filter(pk=destination.pk, flush_due_at__isnull=True).update(
        flush_due_at=due
    )
    if scheduled:
        _send_flush(destination.pk, due)


def _send_flush(destination_id: int, due: datetime) -> None:
    countdown = max((due - timezone.now()).total_seconds(), 0.0)
    try:
        celery_app.send_task(
            FLUSH_TASK, args=[destination_id, due.isoformat()], countdown=countdown, retry=False
        )
    except Exception as exc:  # the sweep schedules it again
        log.error("알림 전송 예약 실패 (스윕에서 재시도): destination=%s %s", destination_id, exc)


def deliver(url: str, title: str, body: str) -> tuple[bool, str]:
    """Send one message to one apprise URL. Returns (sent, what happened) — the detail never
    holds the URL (it carries the destination's tokens)."""
    sender = apprise.Apprise()
    if not sender.add(url):
        return False, _("The apprise URL is not valid")
    try:
        result = sender.notify(title=title, body=body)
    except Exception as exc:  # a plugin bug must not escape
        return False, _mask(f"{type(exc).__name__}: {exc}", url)
    if result:
        return True, _("Sent")
    # This call's own log (apprise keeps it per call: other threads' sends do not mix in).
    problems = [str(entry.message) for entry in result.logs() if entry.level in ("WARNING", "ERROR")]
    return False, _mask(problems[-1] if problems else _("The destination did not accept the message"), url)


def _mask(text: str, url: str) -> str:
    """The text without the URL or any of its parts that could be a secret."""
    text = text.replace(url, "***")
    for part in re.split(r"[/:@?&=#]+", url):
        if len(part) >= 8:
            text = text.replace(part, "***")
    return redact(text)[:300]


def destination_flush(destination_id: int, due: datetime | None = None) -> int:
    """Send the destination's pending notifications as one message. Returns how many were
    sent. Raises :class:`FlushRetry` when it must run again later (rate limit, failure).

    ``due`` is the moment the flush was scheduled for: a flush whose ``due`` is no longer the
    destination's ``flush_due_at`` was superseded (by a send, a retry or the sweep) and does
    nothing, so each destination has one live flush however many were scheduled."""
    now = timezone.now()
    destination = NotificationDestination.objects.filter(pk=destination_id).first()
    if destination is None or (due is not None and destination.flush_due_at != due):
        return 0
    if not destination.is_active:
        NotificationDestination.objects.filter(pk=destination_id).update(flush_due_at=None)
        return 0
    if destination.next_send_at and destination.next_send_at > now:
        NotificationDestination.objects.filter(pk=destination_id).update(
            flush_due_at=destination.next_send_at
        )
        raise FlushRetry(destination.next_send_at)
    pending = Notification.objects.filter(destination_id=destination_id, state=NotificationState.PENDING)
    if not pending.exists():
        NotificationDestination.objects.filter(pk=destination_id).update(flush_due_at=None)
        return 0
    # The send slot: of two flushes of one destination, one sends and the other stops here.
    if not NotificationDestination.objects.filter(
        pk=destination_id, next_send_at=destination.next_send_at
    ).update(next_send_at=now + timedelta(seconds=_min_interval()), flush_due_at=None):
        return 0
    ids = list(pending.order_by("created_at", "pk").values_list("pk", flat=True)[:MAX_BATCH])
    Notification.objects.filter(pk__in=ids, state=NotificationState.PENDING).update(
        state=NotificationState.SENDING, claimed_at=now
    )
    rows = list(
        Notification.objects.filter(pk__in=ids, state=NotificationState.SENDING, claimed_at=now).order_by(
            "created_at", "pk"
        )
    )
    if not rows:
        return 0
    title, body = batch_render([(row.kind, row.fields) for row in rows], destination.language)
    sent, detail = deliver(destination.url, title, body)
    if sent:
        # Together: whoever sees the outbox emptied sees the destination's result too.
        with transaction.atomic():
            Notification.objects.filter(pk__in=[row.pk for row in rows]).delete()
            _record_result(destination_id, ok=True, detail=detail, at=now)
        if pending.exists():  # more than one message's worth: the next one after the interval
            destination.refresh_from_db()
            flush_schedule(destination)
        return len(rows)
    return _flush_failed(destination_id, rows, detail, now)


def _flush_failed(destination_id: int, rows: list[Notification], detail: str, now: datetime) -> int:
    log.warning("알림 전송 실패: destination=%s %s", destination_id, detail)
    max_attempts = int(settings.NOTIFY_MAX_ATTEMPTS)
    ids = [row.pk for row in rows]
    with transaction.atomic():
        Notification.objects.filter(pk__in=ids).update(
            attempts=F("attempts") + 1, last_error=detail, state=NotificationState.PENDING, claimed_at=None
        )
        given_up = Notification.objects.filter(pk__in=ids, attempts__gte=max_attempts).update(
            state=NotificationState.FAILED
        )
        _record_result(destination_id, ok=False, detail=detail, at=timezone.now())
    if given_up:
        log.error("알림 포기 (%d회 실패): destination=%s %d건", max_attempts, destination_id, given_up)
    attempts = max(row.attempts for row in rows) + 1
    retry_at = timezone.now() + timedelta(seconds=_backoff(attempts))
    pending = Notification.objects.filter(destination_id=destination_id, state=NotificationState.PENDING)
    if not pending.exists():
        NotificationDestination.objects.filter(pk=destination_id).update(next_send_at=retry_at)
        return 0
    NotificationDestination.objects.filter(pk=destination_id).update(
        next_send_at=retry_at, flush_due_at=retry_at
    )
    raise FlushRetry(retry_at)


def _record_result(destination_id: int, *, ok: bool, detail: str, at: datetime) -> None:
    NotificationDestination.objects.filter(pk=destination_id).update(
        last_ok=ok, last_result=detail[:300], last_attempt_at=at
    )


def destination_test(destination: NotificationDestination) -> tuple[bool, str]:
    """Send a test message now (the admin's button), outside the outbox and its rate limit.
    Returns (sent, what happened) and records it on the destination."""
    title, body = sample_message(destination.language)
    sent, detail = deliver(destination.url, title, body)
    _record_result(destination.pk, ok=sent, detail=detail, at=timezone.now())
    return sent, detail


def notifications_sweep() -> dict[str, int]:
    """Recover what a crash or a broker outage left behind (run periodically): rows a dead
    worker left `sending`, flushes that never ran; delete given-up rows after a week."""
    now = timezone.now()
    released = Notification.objects.filter(
        state=NotificationState.SENDING, claimed_at__lt=now - SENDING_STALE_AFTER
    ).update(state=NotificationState.PENDING, claimed_at=None)
    waiting = (
        NotificationDestination.objects.filter(is_active=True, notifications__state=NotificationState.PENDING)
        .filter(Q(flush_due_at__isnull=True) | Q(flush_due_at__lt=now - FLUSH_LOST_AFTER))
        .distinct()
    )
    rescheduled = 0
    for destination in waiting:
        NotificationDestination.objects.filter(pk=destination.pk).update(flush_due_at=None)
        destination.flush_due_at = None
        flush_schedule(destination)
        rescheduled += 1
    deleted, _deleted = Notification.objects.filter(
        state=NotificationState.FAILED, created_at__lt=now - GIVEN_UP_RETENTION
    ).delete()
    return {"released": released, "rescheduled": rescheduled, "deleted": deleted}
