"""live.bus with a Redis channel layer (distributed mode): a process's send thread sends what was
queued while it sent as one message per run of one group (one PUBLISH), and a web process's hub
takes it apart, so a WebSocket receives the same frames, in call order, either way."""

from __future__ import annotations

import asyncio
import json
import threading
from typing import Any

import pytest
from channels.testing import WebsocketCommunicator
from django.contrib.auth.models import User

from live import bus
from live.consumers import LiveConsumer
from live.hub import BATCH_TYPE, channel_layer
from tests.prices.conftest import requires_redis

pytestmark = [pytest.mark.redis, requires_redis, pytest.mark.django_db(transaction=True)]


def _update(n: int) -> dict[str, Any]:
    return {"type": "order.update", "order": {"order_id": f"o{n}", "status": "filled"}}


def _held_first_send(
    monkeypatch: pytest.MonkeyPatch, fail_first: bool = False
) -> tuple[list, threading.Event, threading.Event]:
    """The layer's group_send, recording what it is given and holding the first send until
    released (what is queued meanwhile gathers behind it); ``fail_first``: that one fails."""
    bus.flush(5)  # a push an earlier test left in this process's send thread goes first
    layer = channel_layer()
    original = layer.group_send
    sent: list[tuple[str, dict[str, Any]]] = []
    sending, release = threading.Event(), threading.Event()

    async def recording(group: str, message: dict[str, Any]) -> None:
        sent.append((group, message))
        if len(sent) == 1:
            sending.set()
            await asyncio.to_thread(release.wait, 5)
            if fail_first:
                raise ConnectionError("Redis went away")
        await original(group, message)

    monkeypatch.setattr(layer, "group_send", recording)
    return sent, sending, release


def _send_from_a_thread(
    sends: list[tuple[str, dict[str, Any]]], sending: threading.Event, release: threading.Event
) -> None:
    """As a worker's thread sends (no running loop: the process's send thread sends them)."""
    group, message = sends[0]
    bus.group_send(group, message)
    assert sending.wait(5)
    for group, message in sends[1:]:
        bus.group_send(group, message)
    release.set()


def _frames_received(
    sends: list[tuple[str, dict[str, Any]]],
    count: int,
    sending: threading.Event,
    release: threading.Event,
    topics: tuple[str, ...] = ("orders",),
) -> list[dict[str, Any]]:
    """What a staff member's WebSocket subscribed to ``topics`` receives (its first ``count``
    frames) while ``sends`` are made from a worker's thread (``_send_from_a_thread``)."""

    staff = User.objects.create_user("ops", password="x", is_staff=True)

    async def scenario() -> list[dict[str, Any]]:
        ws = WebsocketCommunicator(LiveConsumer.as_asgi(), "/ws")
        ws.scope["user"] = staff
        connected, _ = await ws.connect()
        assert connected
        try:
            assert json.loads(await ws.receive_from(timeout=5))["type"] == "connected"
            for topic in topics:
                await ws.send_json_to({"type": "subscribe", "topic": topic})
                assert json.loads(await ws.receive_from(timeout=5))["type"] == "subscribed"
            await asyncio.to_thread(_send_from_a_thread, sends, sending, release)
            return [json.loads(await ws.receive_from(timeout=5)) for _ in range(count)]
        finally:
            await ws.disconnect()

    return asyncio.run(scenario())


def test_sends_queued_while_one_is_sent_go_out_as_one_and_arrive_as_frames_in_order(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    sent, sending, release = _held_first_send(monkeypatch)

    frames = _frames_received([("orders", _update(n)) for n in range(30)], 30, sending, release)
    received = [frame["order"]["order_id"] for frame in frames]

    assert received == [f"o{n}" for n in range(30)]
    assert [message["type"] for _, message in sent] == ["order.update", BATCH_TYPE]
    assert [m["order"]["order_id"] for m in sent[1][1]["messages"]] == [f"o{n}" for n in range(1, 30)]


def test_a_batch_keeps_the_order_across_groups_one_run_of_a_group_at_a_time(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    sent, sending, release = _held_first_send(monkeypatch)
    webhook = {"type": "webhook.update", "webhook": {"webhook_id": "w1"}}
    sends = [
        ("orders", _update(0)),
        ("orders", _update(1)),
        ("orders", _update(2)),
        ("webhooks", webhook),
        ("orders", _update(3)),
    ]

    frames = _frames_received(sends, 5, sending, release, topics=("orders", "webhooks"))

    assert [(frame["type"], (frame.get("order") or frame.get("webhook"))) for frame in frames] == [
        ("order_update", _update(0)["order"]),
        ("order_update", _update(1)["order"]),
        ("order_update", _update(2)["order"]),
        ("webhook_update", webhook["webhook"]),
        ("order_update", _update(3)["order"]),
    ]
    assert [(group, message["type"]) for group, message in sent] == [
        ("orders", "order.update"),
        ("orders", BATCH_TYPE),
        ("webhooks", "webhook.update"),
        ("orders", "order.update"),
    ]
    assert [m["order"]["order_id"] for m in sent[1][1]["messages"]] == ["o1", "o2"]


def test_a_failed_send_does_not_stop_the_sends_queued_behind_it(monkeypatch: pytest.MonkeyPatch) -> None:
    sent, sending, release = _held_first_send(monkeypatch, fail_first=True)

    frames = _frames_received([("orders", _update(n)) for n in range(5)], 4, sending, release)

    assert [frame["order"]["order_id"] for frame in frames] == ["o1", "o2", "o3", "o4"]
    assert len(sent) == 2
