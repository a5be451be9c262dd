"""Items that several threads of one process hand over, sent together after a short wait.

A worker's order threads each end an order with small requests to other parts of the system (a
portfolio refresh, a notification). Sent one by one they cost a broker message or a few
statements each, on the order thread, between one account's order and the next's. Gathered for
a fraction of a second they are one message or one INSERT, sent from a timer's thread: the
first item handed over starts the timer, and when it runs out everything handed over meanwhile
goes to ``send`` at once.

What is gathered lives in the process's memory: a process that exits sends it first
(``atexit``, registered by the owner), one that is killed loses it. Use it only for what the
system recovers anyway (a periodic refresh) or may lose by design (notifications are best
effort).
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any, Generic, TypeVar

from django.db import connections

T = TypeVar("T")


class Gathering(Generic[T]):
    """Items handed over by any thread, sent together ``seconds`` after the first of them."""

    def __init__(self, seconds: float, send: Callable[[list[T]], Any], name: str) -> None:
        self.seconds = seconds
        self._send = send
        self._name = name
        self._lock = threading.Lock()
        self._items: list[T] = []
        self._timer: threading.Timer | None = None

    def add(self, item: T, seconds: float | None = None) -> None:
        """Hand ``item`` over; the first item starts the timer (``seconds``, default the
        gathering's own)."""
        with self._lock:
            self._items.append(item)
            if self._timer is None:
                self._timer = threading.Timer(self.seconds if seconds is None else seconds, self._on_timer)
                self._timer.name = self._name
                self._timer.daemon = True
                self._timer.start()

    def _take(self) -> list[T]:
        with self._lock:
            items, self._items = self._items, []
            timer, self._timer = self._timer, None
        if timer is not None and timer is not threading.current_thread():
            timer.cancel()
        return items

    def flush(self) -> Any:
        """Send what is gathered now, on the calling thread; ``send``'s result (None when there
        was nothing to send)."""
        items = self._take()
        return self._send(items) if items else None

    def discard(self) -> None:
        """Drop what is gathered, unsent (tests: one test's items never reach another's)."""
        self._take()

    def _on_timer(self) -> None:
        try:
            self.flush()
        finally:
            # The timer's thread is new each time: a database connection it opened would never
            # go back to the pool.
            connections.close_all()
