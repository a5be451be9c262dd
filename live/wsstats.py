"""WebSocket statistics: connections and subscribed topics, per process and in total.

Each process counts its own connections; in distributed mode it also publishes the counts to
the price store (short expiry) so the status endpoint adds up every web process.
"""

from __future__ import annotations

import os
import socket
import threading
import time
from collections import Counter
from typing import Any

from django.conf import settings

from live.store import live_store

STATUS_KIND = "ws"
PUBLISH_TTL_SECONDS = 120.0
_PROCESS = f"{socket.gethostname()}:{os.getpid()}"

_lock = threading.Lock()
_connections = 0
_topics: Counter[str] = Counter()
_last_publish = 0.0


def _publish(force: bool = False) -> None:
    global _last_publish
    if not settings.REDIS_URL:
        return
    now = time.monotonic()
    # At most once a second under churn; the final state of a burst is written by the next change
    # or the ping loop's refresh.
    if not force and now - _last_publish < 1.0:
        return
    _last_publish = now
    try:
        live_store().put_status(STATUS_KIND, _PROCESS, local_stats(), PUBLISH_TTL_SECONDS)
    except Exception:  # noqa: S110 - statistics must never break a connection
        pass


def connection_opened() -> None:
    global _connections
    with _lock:
        _connections += 1
    _publish()


def connection_closed(topics: set[str]) -> None:
    global _connections
    with _lock:
        _connections -= 1
        for topic in topics:
            _topics[topic] -= 1
            if _topics[topic] <= 0:
                del _topics[topic]
    _publish()


def topic_added(topic: str) -> None:
    with _lock:
        _topics[topic] += 1
    _publish()


def topic_removed(topic: str) -> None:
    with _lock:
        _topics[topic] -= 1
        if _topics[topic] <= 0:
            del _topics[topic]
    _publish()


def refresh() -> None:
    """Re-publish this process's counts (throttled) so they do not expire while idle."""
    _publish()


def local_stats() -> dict[str, Any]:
    with _lock:
        return {"active_connections": _connections, "subscribed_topics": dict(_topics)}


def total_stats() -> dict[str, Any]:
    """Connections and topic subscriber counts summed over every live web process."""
    if settings.REDIS_URL:
        _publish(force=True)
        per_process = live_store().statuses(STATUS_KIND)
    else:
        per_process = {_PROCESS: local_stats()}
    topics: Counter[str] = Counter()
    for stats in per_process.values():
        topics.update(stats.get("subscribed_topics", {}))
    return {
        "active_connections": sum(s.get("active_connections", 0) for s in per_process.values()),
        "subscribed_topics": dict(sorted(topics.items())),
        "topic_count": len(topics),
        "processes": len(per_process),
    }
