"""Which worker process holds a `submitted` order, and whether that process is alive.

A worker killed mid-order (kill -9, OOM, power) leaves its orders `submitted`. Judged by age
alone the sweep must wait long enough for the slowest live venue call (minutes); with a
heartbeat it can tell a dead holder at once. Each worker process refreshes a short-lived key
in the shared cache (Redis in distributed mode) every HEARTBEAT_SECONDS; a claim records the
holder next to the order. The sweep reconciles an order whose holder's heartbeat is gone.
Any cache trouble means "unknown": the sweep then falls back to the order's age.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
from uuid import UUID

from django.core.cache import cache

log = logging.getLogger("quanttrade.orders")

HEARTBEAT_SECONDS = 3.0
HEARTBEAT_TTL = 10  # a holder silent this long is dead
CLAIM_TTL = 6 * 3600

_started: dict[int, threading.Event] = {}
_lock = threading.Lock()


def worker_id() -> str:
    """This process, as it names itself in claims and heartbeats (pid: not inherited by a fork)."""
    return f"{socket.gethostname()}:{os.getpid()}"


def _heartbeat_key(worker: str) -> str:
    return f"qt:worker:{worker}"


def _claim_key(order_id: UUID | str) -> str:
    return f"qt:claim:{order_id}"


def beat() -> None:
    try:
        cache.set(_heartbeat_key(worker_id()), 1, timeout=HEARTBEAT_TTL)
    except Exception as exc:  # the cache is down: claims cannot be judged either
        log.debug("heartbeat failed: %s", exc)


def start_heartbeat() -> None:
    """Beat from a daemon thread of this process, once per process (idempotent)."""
    with _lock:
        if os.getpid() in _started:
            return
        stop = _started[os.getpid()] = threading.Event()
    beat()

    def run() -> None:
        while not stop.wait(HEARTBEAT_SECONDS):
            beat()

    threading.Thread(target=run, name="worker-heartbeat", daemon=True).start()


def mark_claim(order_id: UUID | str) -> None:
    """Record this process as the order's holder; a process that claims orders beats."""
    start_heartbeat()
    try:
        cache.set(_claim_key(order_id), worker_id(), timeout=CLAIM_TTL)
    except Exception as exc:
        log.debug("claim mark failed: %s", exc)


def clear_claim(order_id: UUID | str) -> None:
    try:
        cache.delete(_claim_key(order_id))
    except Exception as exc:
        log.debug("claim clear failed: %s", exc)


def _sending_key(order_id: UUID | str) -> str:
    return f"qt:sending:{order_id}"


def mark_sending(order_id: UUID | str) -> bool:
    """Record, before the order request leaves, that it may have left. False when that cannot
    be recorded: the caller must then not send (a dead holder could not be judged safely)."""
    try:
        cache.set(_sending_key(order_id), worker_id(), timeout=CLAIM_TTL)
    except Exception as exc:
        log.warning("order send mark failed: %s", exc)
        return False
    return True


def never_sent(order_id: UUID | str) -> bool:
    """True only when the order's holder is known and no request of it ever started to leave:
    a worker that died between its claim and its request (the order may simply be sent)."""
    try:
        return bool(cache.get(_claim_key(order_id))) and not cache.get(_sending_key(order_id))
    except Exception:
        return False


def holder_is_dead(order_id: UUID | str) -> bool:
    """True only when the order's holder is known and its heartbeat has stopped."""
    try:
        holder = cache.get(_claim_key(order_id))
        return bool(holder) and not cache.get(_heartbeat_key(str(holder)))
    except Exception:
        return False
