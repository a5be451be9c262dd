"""Per-process fan-out of price ticks to this process's WebSocket connections.

A tick for one instrument goes to every subscriber of that instrument. Making every connection
a member of the instrument's channel-layer group costs, per subscriber and tick, a message in
that connection's own bounded buffer (100 by default, overflow silently dropped), a wake-up of
its consumer task and a handler dispatch; at a few thousand deliveries a second that saturates
the process and drops ticks. Instead each process (each event loop) has one :class:`PriceHub`:
it joins the instrument's group *once*, with its own channel, as soon as one local connection
subscribes, and hands each tick it receives straight to the local subscribers' sockets. The
group per topic stays the unit of routing between processes (a feed process publishes to it);
within a process the fan-out is a loop over sockets, in arrival order.

With the in-memory layer (embedded mode: one process) publishers hand ticks to the hub of the
server's event loop directly (thread-safe), without any queue in between.
Staff events (groups ``orders``, ``webhooks`` and ``portfolio``, contract 3) reach connections the same way,
so a connection needs no channel of its own (the consumer opts out of one: with channels_redis
hundreds of idle per-connection receivers contend for the process's single receive lock).
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
import uuid
import weakref
from collections import defaultdict
from typing import Any

from channels.layers import BaseChannelLayer, InMemoryChannelLayer, get_channel_layer
from channels_redis.core import RedisChannelLayer

log = logging.getLogger("quanttrade.prices")

HUB_NAME = "priceshub"
# A hub channel carries every tick its process subscribed to; bursts (all instruments at once)
# must not hit the default capacity of 100 messages.
HUB_CAPACITY = 20_000
# channels_redis forgets group members after group_expiry (default one day): re-join hourly.
REJOIN_SECONDS = 3600.0

_hubs: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, PriceHub] = weakref.WeakKeyDictionary()
_tuned_layers: weakref.WeakSet[Any] = weakref.WeakSet()


def channel_layer() -> Any:
    """The default layer, with a large capacity for hub channels (sender side decides)."""
    layer = get_channel_layer()
    if isinstance(layer, BaseChannelLayer) and layer not in _tuned_layers:
        layer.channel_capacity = [
            (re.compile(rf"^specific\.[0-9a-f]+!{HUB_NAME}"), HUB_CAPACITY),
            *layer.channel_capacity,
        ]
        _tuned_layers.add(layer)
    return layer


def _is_redis_core(layer: Any) -> bool:
    return isinstance(layer, RedisChannelLayer)


# Channel-layer events for staff topics (contract 3) -> (group, outgoing message type, payload key).
EVENT_GROUPS = {"orders", "webhooks", "portfolio"}
_EVENTS = {
    "order.update": ("orders", "order_update", "order"),
    "webhook.update": ("webhooks", "webhook_update", "webhook"),
    "portfolio.update": ("portfolio", "portfolio_update", "portfolio"),
}


# Several messages to one group, sent as one (live.bus: a process's send thread gathers what was
# queued while it sent): one PUBLISH and one delivery instead of one each. A hub takes it apart
# and dispatches each message in order, so a WebSocket sees the same frames either way.
BATCH_TYPE = "live.batch"
BATCH_MAX = 200


def batch_message(messages: list[dict[str, Any]]) -> dict[str, Any]:
    return {"type": BATCH_TYPE, "messages": messages}


def unbatched(message: dict[str, Any]) -> list[dict[str, Any]]:
    """The messages a channel-layer message carries: itself, or a batch's, in order."""
    if message.get("type") == BATCH_TYPE:
        return [m for m in message.get("messages") or () if isinstance(m, dict)]
    return [message]


def _frame(message: dict[str, Any]) -> tuple[str, str] | None:
    """(group, WebSocket text) for a channel-layer message received by a hub."""
    if "text" in message:
        return message.get("group", ""), message["text"]
    event = _EVENTS.get(message.get("type", ""))
    if event is None:
        return None
    group, kind, key = event
    return group, json.dumps({"type": kind, key: message.get(key)}, ensure_ascii=False, separators=(",", ":"))


def hub_for(loop: asyncio.AbstractEventLoop) -> PriceHub:
    hub = _hubs.get(loop)
    if hub is None:
        hub = _hubs[loop] = PriceHub(loop)
    return hub


def existing_hub(loop: asyncio.AbstractEventLoop | None) -> PriceHub | None:
    return _hubs.get(loop) if loop is not None else None


class PriceHub:
    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self.layer = channel_layer()
        # In-memory layer: price ticks arrive by dispatch_threadsafe(), never through the layer.
        self.local = isinstance(self.layer, InMemoryChannelLayer)
        self.channel: str | None = None
        self.members: dict[str, set[Any]] = defaultdict(set)
        self.lock = asyncio.Lock()
        self.tasks: list[asyncio.Task[None]] = []

    async def _start(self) -> None:
        if self.layer is None or self.channel is not None:
            return
        if _is_redis_core(self.layer):
            # channels_redis keeps all of a process's channels in one Redis list, read by one
            # receive loop; a hub channel outside it would starve behind the consumers' reads.
            self.channel = f"specific.{self.layer.client_prefix}!{HUB_NAME}{uuid.uuid4().hex}"
        else:
            self.channel = await self.layer.new_channel()
        self.tasks = [self.loop.create_task(self._read()), self.loop.create_task(self._rejoin())]

    async def join(self, group: str, consumer: Any) -> None:
        async with self.lock:
            await self._start()
            first = not self.members[group]
            self.members[group].add(consumer)
            if first and self._via_layer(group):
                await self.layer.group_add(group, self.channel)

    async def leave(self, group: str, consumer: Any) -> None:
        async with self.lock:
            members = self.members.get(group)
            if not members or consumer not in members:
                return
            members.discard(consumer)
            if not members:
                del self.members[group]
                if self._via_layer(group):
                    await self.layer.group_discard(group, self.channel)

    def _via_layer(self, group: str) -> bool:
        """Staff event groups always travel through the layer; price groups unless local."""
        return self.layer is not None and (group in EVENT_GROUPS or not self.local)

    async def dispatch(self, group: str, text: str) -> None:
        """Send one frame to every local subscriber of ``group`` (in arrival order)."""
        for consumer in list(self.members.get(group, ())):
            try:
                await consumer.send(text_data=text)
            except Exception as exc:  # a closing socket must not stop the others
                log.debug("hub send failed: %s", exc)

    def dispatch_threadsafe(self, group: str, text: str) -> None:
        """Called from any thread (in-memory mode): queue the dispatch on the hub's loop."""
        if not self.loop.is_closed():
            self.loop.call_soon_threadsafe(lambda: self.loop.create_task(self.dispatch(group, text)))

    async def _read(self) -> None:
        while True:
            try:
                message = await self.layer.receive(self.channel)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.warning("가격 허브 수신 오류: %s", exc)
                await asyncio.sleep(0.5)
                continue
            for one in unbatched(message):
                routed = _frame(one)
                if routed is not None:
                    await self.dispatch(*routed)

    async def _rejoin(self) -> None:
        while True:
            await asyncio.sleep(REJOIN_SECONDS)
            for group in list(self.members):
                try:
                    await self.layer.group_add(group, self.channel)
                except Exception as exc:
                    log.warning("가격 허브 그룹 갱신 오류: %s", exc)
