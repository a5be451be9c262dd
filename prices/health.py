"""Feed health: running or not, ticks, last tick, reconnects, errors — per feed, all processes.

Each feed owns one :class:`FeedHealth`. It is written to the price store (expiring, so a dead
process's feeds disappear) whenever its state changes and at most once a second while ticking.
"""

from __future__ import annotations

import os
import socket
import threading
import time
from typing import Any

from django.utils import timezone

from live.store import live_store
from notify.events import emit
from notify.models import EventKind

STATUS_KIND = "feed"
TTL_SECONDS = 60.0


class FeedHealth:
    def __init__(self, name: str, *, simulated: bool = False) -> None:
        self.name = name
        self.key = f"{name}@{socket.gethostname()}:{os.getpid()}"
        self.simulated = simulated
        self.running = False
        self.started_at: str | None = None
        self.last_tick_at: str | None = None
        self.last_instrument = ""
        self.ticks = 0
        self.reconnects = 0
        self.errors = 0
        self.last_error = ""
        # Down since an error and no tick since: the operator was told (feed_down), and is told
        # again when the next tick arrives (feed_up). Only the changes are notified.
        self.down = False
        self.detail: dict[str, Any] = {}
        self._lock = threading.Lock()
        self._flushed = 0.0

    def as_dict(self) -> dict[str, Any]:
        return {
            "feed": self.name,
            "process": self.key.split("@", 1)[1],
            "running": self.running,
            "simulated": self.simulated,
            "started_at": self.started_at,
            "last_tick_at": self.last_tick_at,
            "last_instrument": self.last_instrument,
            "ticks": self.ticks,
            "reconnects": self.reconnects,
            "errors": self.errors,
            "last_error": self.last_error,
            **self.detail,
        }

    def flush(self, force: bool = True) -> None:
        now = time.monotonic()
        if not force and now - self._flushed < 1.0:
            return
        self._flushed = now
        try:
            live_store().put_status(STATUS_KIND, self.key, self.as_dict(), TTL_SECONDS)
        except Exception:  # noqa: S110 - health reporting never stops a feed
            pass

    def started(self) -> None:
        self.running = True
        self.started_at = timezone.now().isoformat()
        self.flush()

    def stopped(self) -> None:
        self.running = False
        self.flush()

    def tick(self, instrument: str, count: int = 1) -> None:
        with self._lock:
            self.ticks += count
            self.last_tick_at = timezone.now().isoformat()
            self.last_instrument = instrument
            recovered, self.down = self.down, False
        if recovered:
            emit(EventKind.FEED_UP, feed=self.name)
        self.flush(force=False)

    def reconnected(self) -> None:
        with self._lock:
            self.reconnects += 1
        self.flush()

    def error(self, message: str, *, down: bool = True) -> None:
        """Count an error; ``down`` (the default) means no prices arrive until the next tick
        (a lost connection, a failed poll), as opposed to one refused subscription."""
        with self._lock:
            self.errors += 1
            self.last_error = message[:300]
            went_down = down and not self.down
            if down:
                self.down = True
        if went_down:
            emit(EventKind.FEED_DOWN, feed=self.name, message=message[:300])
        self.flush()

    def set_detail(self, **detail: Any) -> None:
        self.detail.update(detail)
        self.flush()


def feed_statuses() -> list[dict[str, Any]]:
    """Every live feed's health, across processes (distributed) or in this process."""
    return sorted(live_store().statuses(STATUS_KIND).values(), key=lambda s: (s["feed"], s["process"]))
