"""Sending to WebSocket subscribers through the channel layer, from any thread or loop.

Group names allow only ASCII letters, digits, ``-``, ``_`` and ``.``; :func:`group_name`
escapes every other character (and ``_`` itself) as ``_XX`` hex, which keeps the mapping
one-to-one (instrument ids contain ``:`` and ``/``).

The in-memory channel layer is not thread-safe: its queues belong to the server's event loop.
Consumers register that loop on connect, and publishers on other threads (feed threads, the
in-process workers) hand the send over to it with ``run_coroutine_threadsafe``. Redis layers
are safe from any loop or thread.
"""

from __future__ import annotations

import asyncio
import atexit
import logging
import os
import threading
from typing import Any

from asgiref.sync import async_to_sync
from channels.layers import InMemoryChannelLayer, get_channel_layer

from live.hub import BATCH_MAX, batch_message, channel_layer, existing_hub

log = logging.getLogger("quanttrade.live")

_SAFE = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789.")
_server_loop: asyncio.AbstractEventLoop | None = None


def group_name(prefix: str, key: str) -> str:
    """A valid channel-layer group name for ``key`` (escaped one-to-one) under ``prefix``."""
    return prefix + "".join(c if c in _SAFE else f"_{ord(c):02X}" for c in key)


def register_server_loop(loop: asyncio.AbstractEventLoop) -> None:
    global _server_loop
    _server_loop = loop


def _running_loop() -> asyncio.AbstractEventLoop | None:
    try:
        return asyncio.get_running_loop()
    except RuntimeError:
        return None


def _sends(
    pending: list[tuple[Any, str, dict[str, Any]]], gather: bool
) -> list[tuple[Any, str, dict[str, Any]]]:
    """What to send for ``pending``, in call order; ``gather``: each run of consecutive sends
    to one group of one layer as one message (``live.hub.batch_message``, at most BATCH_MAX)."""
    if not gather:
        return pending
    runs: list[tuple[Any, str, list[dict[str, Any]]]] = []
    for layer, group, message in pending:
        if runs and runs[-1][0] is layer and runs[-1][1] == group and len(runs[-1][2]) < BATCH_MAX:
            runs[-1][2].append(message)
        else:
            runs.append((layer, group, [message]))
    return [(layer, group, one[0] if len(one) == 1 else batch_message(one)) for layer, group, one in runs]


class _LoopSender:
    """Sends handed from other threads to an event loop, in batches, in call order: the
    server's loop with the in-memory layer, the process's send thread with a Redis layer
    (:class:`_SendThread`).

    One ``run_coroutine_threadsafe`` (or queue put) per send cost the caller a wake-up of the
    loop's thread, and the loop a task and a future per message: in embedded mode an order's
    way to its venue passes two sends (the webhook's, the claim's), and that thread competes
    with it for the interpreter. Here a send appends to a list; the first one of a batch wakes
    the loop, which sends everything appended until the list is empty. ``gather``: a run of
    sends to one group goes as one message (one PUBLISH on Redis; a hub takes it apart)."""

    def __init__(self, loop: asyncio.AbstractEventLoop, gather: bool = False) -> None:
        self.loop = loop
        self.gather = gather
        self._lock = threading.Lock()
        self._pending: list[tuple[Any, str, dict[str, Any]]] = []
        self._scheduled = False
        self._idle = threading.Event()  # nothing pending nor being sent (``flush``)
        self._idle.set()

    def submit(self, layer: Any, group: str, message: dict[str, Any]) -> None:
        with self._lock:
            self._pending.append((layer, group, message))
            self._idle.clear()
            if self._scheduled:
                return
            self._scheduled = True
        try:
            self.loop.call_soon_threadsafe(self._start)
        except BaseException:  # the loop closed: these sends are lost, as its queues are
            with self._lock:
                self._pending.clear()
                self._scheduled = False
                self._idle.set()
            raise

    def flush(self, timeout: float) -> None:
        """Wait until everything submitted so far has been sent (or ``timeout``)."""
        if not self._idle.wait(timeout):
            log.warning("전송 대기열 비우기 실패: %.1f초 안에 끝나지 않음", timeout)

    def _start(self) -> None:
        self.loop.create_task(self._drain())

    async def _drain(self) -> None:
        try:
            while True:
                with self._lock:
                    batch, self._pending = self._pending, []
                    if not batch:
                        self._scheduled = False
                        self._idle.set()
                        return
                for layer, group, message in _sends(batch, self.gather):
                    try:
                        await layer.group_send(group, message)
                    except Exception as exc:  # a push failure must not stop the sender
                        log.warning("실시간 전송 실패: %s %s", group, exc)
        except BaseException:
            # Cancelled (the loop is shutting down): the rest of this batch is lost, as the
            # loop's queues are; sends made meanwhile get a drain of their own, and later ones
            # start one, instead of waiting forever behind this one.
            with self._lock:
                self._scheduled = bool(self._pending)
                if not self._scheduled:
                    self._idle.set()
            if self._scheduled:
                try:
                    self.loop.call_soon(self._start)
                except RuntimeError:  # the loop is closed
                    with self._lock:
                        self._pending.clear()
                        self._scheduled = False
                        self._idle.set()
            raise


class _SendThread(_LoopSender):
    """One event loop thread per process that sends to a Redis channel layer, in call order.

    ``async_to_sync`` from a sync thread (the webhook view, a Celery task, a feed) builds a new
    event loop and Redis connection per send: 3-15 ms on the caller's critical path. Here the
    caller only hands the send over; what was handed over while the thread sent goes out
    together, a run of one group's sends as one message (a fan-out's order updates: one
    PUBLISH for many). :func:`flush` (also run at exit) waits until all is sent."""

    def __init__(self) -> None:
        super().__init__(asyncio.new_event_loop(), gather=True)
        self.pid = os.getpid()
        threading.Thread(target=self.loop.run_forever, name="channel-send", daemon=True).start()


_loop_senders: dict[asyncio.AbstractEventLoop, _LoopSender] = {}
_loop_senders_lock = threading.Lock()


def _loop_sender(loop: asyncio.AbstractEventLoop) -> _LoopSender:
    sender = _loop_senders.get(loop)
    if sender is None:
        with _loop_senders_lock:
            for closed in [known for known in _loop_senders if known.is_closed()]:
                del _loop_senders[closed]
            sender = _loop_senders.setdefault(loop, _LoopSender(loop))
    return sender


_send_thread: _SendThread | None = None
_send_thread_lock = threading.Lock()


def _sender() -> _SendThread:
    global _send_thread
    with _send_thread_lock:
        if _send_thread is None or _send_thread.pid != os.getpid():  # not inherited over fork
            _send_thread = _SendThread()
            atexit.register(_send_thread.flush, 2.0)
        return _send_thread


def flush(timeout: float = 2.0) -> None:
    """Wait until every send queued by this process so far has gone out (or ``timeout``)."""
    sender = _send_thread
    if sender is not None and sender.pid == os.getpid():
        sender.flush(timeout)


def group_send(group: str, message: dict[str, Any]) -> None:
    """Send to a group from any thread, sync or async context, without waiting. Never raises.

    In-memory layer: nothing when the group has no member; else handed to the server's event
    loop (its queues live there), in batches (:class:`_LoopSender`). Redis layers: a task on the
    caller's running loop, else queued to this process's send thread."""
    layer = channel_layer()
    if layer is None:
        return
    try:
        running = _running_loop()
        if isinstance(layer, InMemoryChannelLayer):
            if not layer.groups.get(group):
                return  # nobody is subscribed (one process: the layer knows every member)
            target = _server_loop if _server_loop is not None and not _server_loop.is_closed() else None
            if target is not None and target is not running:
                _loop_sender(target).submit(layer, group, message)
            elif running is not None:
                running.create_task(layer.group_send(group, message))
            else:
                async_to_sync(layer.group_send)(group, message)
        elif running is not None:
            running.create_task(layer.group_send(group, message))
        else:
            _sender().submit(layer, group, message)
    except Exception as exc:  # a push failure must not fail the publisher
        log.warning("실시간 전송 실패: %s %s", group, exc)


async def group_send_async(group: str, message: dict[str, Any]) -> None:
    layer = channel_layer()
    if layer is None:
        return
    try:
        target = _server_loop if isinstance(layer, InMemoryChannelLayer) else None
        if target is not None and target is not asyncio.get_running_loop() and not target.is_closed():
            asyncio.run_coroutine_threadsafe(layer.group_send(group, message), target)
        else:
            await layer.group_send(group, message)
    except Exception as exc:
        log.warning("실시간 전송 실패: %s %s", group, exc)


def local_dispatch(group: str, text: str) -> bool:
    """In-memory layer (one process): hand a frame to the server loop's hub directly.

    Returns False when frames travel through the channel layer instead (Redis layers)."""
    if not isinstance(get_channel_layer(), InMemoryChannelLayer):
        return False
    local = existing_hub(_server_loop)
    if local is not None:
        local.dispatch_threadsafe(group, text)
    return True
