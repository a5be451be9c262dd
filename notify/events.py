"""The public API of notifications: ``emit(kind, ...)``, callable from any layer above.

Callers pass plain values (names, strings, Decimals, ids), never model instances: notify sits
below the domain apps. ``emit`` never raises and never waits on a destination: after the
caller's transaction commits, one outbox row is written per destination that wants the event
and a flush task is scheduled (``notify.services``). If the database or the broker is down
the event is logged and dropped (or left for the sweep): an order never fails for it.
"""

from __future__ import annotations

import asyncio
import atexit
import functools
import logging
import threading
from decimal import Decimal
from typing import Any
from uuid import UUID

from django.conf import settings
from django.db import connections, transaction

from notify.models import EventKind
from notify.services import notifications_enqueue, notifications_enqueue_many
from quanttrade.gather import Gathering

log = logging.getLogger("quanttrade.notify")

KINDS = frozenset(EventKind.values)


def _plain(value: Any) -> str:
    if isinstance(value, Decimal):
        return f"{value:f}"  # 50000, not 5E+4
    return "" if value is None else str(value)


def emit(
    kind: str,
    *,
    strategy: str = "",
    account: str = "",
    symbol: str = "",
    side: str = "",
    quantity: Decimal | str | None = None,
    price: Decimal | str | None = None,
    order_id: UUID | str | None = None,
    webhook_id: UUID | str | None = None,
    feed: str = "",
    message: str = "",
    link: str = "",
) -> None:
    """Notify every active destination that wants ``kind`` (an :class:`EventKind` value).

    ``side`` is BUY/SELL; ``quantity``/``price`` are Decimals (or their strings); ``order_id``
    and ``webhook_id`` become links to the order or webhook page (PUBLIC_BASE_URL); ``link``
    is any other page (a path or an absolute URL); ``message`` is the detail (a venue's
    reason, a risk limit's explanation) — it is passed through the log redaction, but callers
    must not put secrets in it. Returns at once; never raises.
    """
    try:
        if kind not in KINDS:
            log.error("알 수 없는 알림 종류: %s", kind)
            return
        fields = {
            name: _plain(value)
            for name, value in {
                "strategy": strategy,
                "account": account,
                "symbol": symbol,
                "side": side,
                "quantity": quantity,
                "price": price,
                "order_id": order_id,
                "webhook_id": webhook_id,
                "feed": feed,
                "message": message,
                "link": link,
            }.items()
            if value not in (None, "")
        }
        if _in_event_loop():
            # An async caller (a price feed): the database work runs in a thread of its own.
            threading.Thread(target=_enqueue_in_thread, args=(kind, fields), daemon=True).start()
        else:
            transaction.on_commit(functools.partial(_enqueue_soon, kind, fields))
    except Exception:  # notifications never fail their caller
        log.exception("알림 등록 실패: %s", kind)


def _enqueue_soon(kind: str, fields: dict[str, str]) -> None:
    """Gather the event for NOTIFY_GATHER_SECONDS with the others of this process, then write
    them together (``_enqueue_gathered``, from a timer's thread): a fan-out's fills each wrote
    their outbox rows and scheduled their flushes on the order's thread, between one account's
    order and the next's. 0 writes each event at once."""
    seconds = float(getattr(settings, "NOTIFY_GATHER_SECONDS", 0.0))
    if seconds <= 0:
        _enqueue(kind, fields)
    else:
        _gathered.add((kind, fields), seconds)


def _enqueue_gathered(events: list[tuple[str, dict[str, str]]]) -> int:
    try:
        return notifications_enqueue_many(events)
    except Exception:  # the database or the broker is down: the events are lost, orders are not
        log.exception("알림 등록 실패: %s", sorted({kind for kind, _ in events}))
        return 0


_gathered: Gathering[tuple[str, dict[str, str]]] = Gathering(0.25, _enqueue_gathered, "notify-events")
atexit.register(_gathered.flush)


def notifications_flush() -> int:
    """Write the events this process has gathered now (shutdown, tests); the rows written."""
    return int(_gathered.flush() or 0)


def notifications_discard() -> None:
    """Drop the events this process has gathered, unwritten (tests)."""
    _gathered.discard()


def _in_event_loop() -> bool:
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return False
    return True


def _enqueue_in_thread(kind: str, fields: dict[str, str]) -> None:
    try:
        _enqueue(kind, fields)
    finally:
        connections.close_all()


def _enqueue(kind: str, fields: dict[str, str]) -> None:
    try:
        notifications_enqueue(kind, fields)
    except Exception:  # the database or the broker is down: the event is lost, the order is not
        log.exception("알림 등록 실패: %s", kind)
