"""``/ws``: live prices for everyone, order and webhook events for staff (SPEC §3 protocol)."""

from __future__ import annotations

import asyncio
import json
import logging
import time
import uuid
from typing import Any

from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncWebsocketConsumer
from django.conf import settings
from django.utils import timezone, translation
from django.utils.translation import gettext as _

from live import bus, hub, wsstats
from live.topics import family_of

log = logging.getLogger("quanttrade.live")

MAX_TOPICS = 200
MAX_MESSAGE_BYTES = 4096
MISSED_PONGS_CLOSE = 2
STAFF_TOPICS = {"orders": "orders", "webhooks": "webhooks", "portfolio": "portfolio"}
CLOSE_PONG_TIMEOUT = 4008
# Frames waiting for one connection's socket: a client that reads slower than its topics
# publish is closed once this many wait, instead of holding up the others (a hub writes to
# every subscriber of a tick) or growing the process's memory.
OUTBOX_FRAMES = 1000
CLOSE_TOO_SLOW = 4009
# A client's messages: a page subscribing to its topics at once is a burst, then pongs and the
# odd subscription; past this the connection is closed (a flood of pings grew daphne's memory
# by gigabytes and slowed everyone's replies).
# Counted per connection, in windows of MESSAGE_WINDOW_SECONDS (a shared in-memory limiter kept
# a key for every connection the process ever had).
MESSAGE_LIMIT = 300
MESSAGE_WINDOW_SECONDS = 10.0
CLOSE_FLOOD = 4029


def _language(scope: dict[str, Any]) -> str:
    for name, value in scope.get("headers", []):
        if name == b"accept-language":
            header = value.decode("latin1").lower()
            if header.startswith("en"):
                return "en"
    return settings.LANGUAGE_CODE


class LiveConsumer(AsyncWebsocketConsumer):
    """One browser or bot connection. Topics: ``price:<id>``, and ``orders``/``webhooks`` (staff)."""

    # No channel per connection: the process's hub receives group messages and writes to the
    # sockets (see live/hub.py). An alias that names no layer makes channels skip it.
    channel_layer_alias = "prices-hub-only"

    async def connect(self) -> None:
        loop = asyncio.get_running_loop()
        bus.register_server_loop(loop)
        self.hub = hub.hub_for(loop)
        self.client_id = str(uuid.uuid4())
        self.topics: set[str] = set()
        self.language = _language(self.scope)
        self.awaiting_pong = False
        self.missed_pongs = 0
        self.ping_task: asyncio.Task[None] | None = None
        self.closing = False
        self.window = (time.monotonic(), 0)  # (start, messages) of the current window
        self.outbox: asyncio.Queue[str | None] = asyncio.Queue(OUTBOX_FRAMES)  # None: close
        self.writer = asyncio.create_task(self._write())
        self.closer: asyncio.Task[None] | None = None
        await self.accept()
        wsstats.connection_opened()
        self.counted = True
        await self.send_json(
            {"type": "connected", "client_id": self.client_id, "message": "WebSocket connection established"}
        )
        self.ping_task = asyncio.create_task(self._ping_loop())

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        """Channels' consumer, with its clean-up also when the server cancels it: daphne cancels
        a connection still busy with its backlog when it closes (``application_close_timeout``),
        and ``disconnect`` then never ran: the connection stayed counted and in its groups."""
        try:
            await super().__call__(scope, receive, send)
        finally:
            await self._clean_up()

    async def disconnect(self, code: int) -> None:
        await self._clean_up()

    async def _clean_up(self) -> None:
        """Once per connection: its tasks stopped, its count closed, its groups left. The
        process's own book-keeping first: a server may cancel this too, and leaving a group on a
        Redis layer can wait."""
        for task in (getattr(self, "ping_task", None), getattr(self, "writer", None)):
            if task is not None:
                task.cancel()
        topics: set[str] = getattr(self, "topics", set())
        self.topics = set()
        if getattr(self, "counted", False):
            wsstats.connection_closed(topics)
            self.counted = False
        for topic in list(topics):
            try:
                await self._leave(topic)
            except Exception as exc:  # the layer is away: its group membership expires
                log.debug("leaving %s failed: %s", topic, exc)

    # --- incoming ---------------------------------------------------------------------

    async def receive(self, text_data: str | None = None, bytes_data: bytes | None = None) -> None:
        if self.closing:
            return  # a flood's backlog, after the close
        started, count = self.window
        now = time.monotonic()
        if now - started >= MESSAGE_WINDOW_SECONDS:
            started, count = now, 0
        self.window = (started, count + 1)
        if count + 1 > MESSAGE_LIMIT:
            log.warning("WebSocket 종료 (메시지 과다): %s", self.client_id)
            return await self._close(CLOSE_FLOOD)
        with translation.override(self.language):
            if text_data is None:
                return await self._error("invalid_message", _("Messages must be JSON text."))
            if len(text_data.encode()) > MAX_MESSAGE_BYTES:
                return await self._error(
                    "message_too_large",
                    _("Message too large: at most %(limit)d bytes.") % {"limit": MAX_MESSAGE_BYTES},
                )
            try:
                message = json.loads(text_data)
            except (ValueError, RecursionError):  # nesting deeper than the parser's stack
                return await self._error("invalid_json", _("The message is not valid JSON."))
            if not isinstance(message, dict) or not isinstance(message.get("type"), str):
                return await self._error("invalid_message", _("A message is a JSON object with a type."))
            kind = message["type"]
            if kind == "pong":
                self.awaiting_pong = False
                self.missed_pongs = 0
            elif kind == "ping":
                await self.send_json({"type": "pong", "timestamp": timezone.now().isoformat()})
            elif kind in ("subscribe", "unsubscribe"):
                await self._topic_message(kind, message.get("topic"))
            else:
                await self._error("unknown_type", _("Unknown message type: %(type)s") % {"type": kind[:50]})

    async def _topic_message(self, kind: str, raw_topic: Any) -> None:
        topic = self._topic(raw_topic)
        if topic is None:
            return await self._error(
                "invalid_topic",
                _("Invalid topic: use price:<ticker>, price:<EXCHANGE:SYMBOL>, orders or webhooks."),
            )
        if topic in STAFF_TOPICS and not self._is_staff():
            return await self._error(
                "forbidden", _("Only staff may subscribe to %(topic)s.") % {"topic": topic}
            )
        if kind == "unsubscribe":
            if topic in self.topics:
                self.topics.discard(topic)
                await self._leave(topic)
                wsstats.topic_removed(topic)
            return await self.send_json(
                {"type": "unsubscribed", "topic": topic, "message": f"Unsubscribed from {topic}"}
            )
        if topic not in self.topics:
            if len(self.topics) >= MAX_TOPICS:
                return await self._error(
                    "too_many_topics",
                    _("At most %(limit)d topics per connection.") % {"limit": MAX_TOPICS},
                )
            self.topics.add(topic)
            await self._join(topic)
            wsstats.topic_added(topic)
        await self.send_json({"type": "subscribed", "topic": topic, "message": f"Subscribed to {topic}"})
        found = family_of(topic)
        if found is not None:
            family, key = found
            text = await database_sync_to_async(family.snapshot, thread_sensitive=False)(key)
            if text is not None:
                await self.send(text_data=text)

    def _topic(self, raw: Any) -> str | None:
        if not isinstance(raw, str):
            return None
        raw = raw.strip()
        if raw in STAFF_TOPICS:
            return raw
        found = family_of(raw)
        if found is None:
            return None
        family, key = found
        normalized = family.normalize(key)
        return f"{family.name}:{normalized}" if normalized else None

    def _group(self, topic: str) -> str:
        if topic in STAFF_TOPICS:
            return STAFF_TOPICS[topic]
        found = family_of(topic)
        assert found is not None  # only topics _topic() accepted are joined
        family, key = found
        return family.group(key)

    async def _join(self, topic: str) -> None:
        # Every topic fans out through the process's hub (live/hub.py).
        await self.hub.join(self._group(topic), self)

    async def _leave(self, topic: str) -> None:
        await self.hub.leave(self._group(topic), self)

    def _is_staff(self) -> bool:
        user = self.scope.get("user")
        return bool(user is not None and user.is_authenticated and user.is_staff)

    # --- outgoing ---------------------------------------------------------------------

    async def send(
        self, text_data: str | None = None, bytes_data: bytes | None = None, close: bool = False
    ) -> None:
        """A frame for this connection, queued for its writer (``_write``): whoever sends (the
        hub, for every subscriber of a tick) never waits for this client's socket. A client
        whose queue is full is closed as too slow to read."""
        if self.closing:
            return
        try:
            if text_data is not None:  # the protocol is JSON text: this consumer sends no bytes
                self.outbox.put_nowait(text_data)
            if close:
                self.outbox.put_nowait(None)  # after what is queued
        except asyncio.QueueFull:
            log.warning("WebSocket 종료 (수신 지연, 대기 %d건): %s", OUTBOX_FRAMES, self.client_id)
            self.closing = True
            self.closer = asyncio.get_running_loop().create_task(self._close(CLOSE_TOO_SLOW))

    async def _write(self) -> None:
        """This connection's frames to its socket, in order. A send to a client that has just
        gone away is dropped quietly: a normal disconnect racing a reply or a ping is not an
        error of the application."""
        while True:
            text = await self.outbox.get()
            if text is None:
                await self._close(1000)
                return
            try:
                await super().send(text_data=text)
            except Exception as exc:
                log.debug("send to a closed WebSocket dropped (%s): %s", self.client_id, exc)

    async def _close(self, code: int) -> None:
        self.closing = True
        try:
            await self.close(code=code)
        except Exception as exc:
            log.debug("close of a WebSocket failed (%s): %s", self.client_id, exc)

    async def send_json(self, content: dict[str, Any]) -> None:
        await self.send(text_data=json.dumps(content, ensure_ascii=False, separators=(",", ":")))

    async def _error(self, code: str, message: str) -> None:
        await self.send_json({"type": "error", "code": code, "message": str(message)})

    async def _ping_loop(self) -> None:
        interval = float(settings.WS_PING_INTERVAL_SECONDS)
        try:
            while True:
                await asyncio.sleep(interval)
                if self.awaiting_pong:
                    self.missed_pongs += 1
                    if self.missed_pongs >= MISSED_PONGS_CLOSE:
                        log.info("[INFO] WebSocket 종료 (pong 없음): %s", self.client_id)
                        await self._close(CLOSE_PONG_TIMEOUT)
                        return
                self.awaiting_pong = True
                await self.send_json({"type": "ping", "timestamp": timezone.now().isoformat()})
                wsstats.refresh()
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # a dead socket ends the loop quietly
            log.debug("ping loop ended: %s", exc)
