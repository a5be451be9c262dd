"""live.bus.group_send with the in-memory channel layer (embedded mode): sends from other threads
reach the server loop's members in call order, in batches; a group nobody is in costs nothing."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from typing import Any

import pytest
from channels.layers import channel_layers

from live import bus

IN_MEMORY = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}


@pytest.fixture
def server_loop(settings: Any) -> Iterator[asyncio.AbstractEventLoop]:
    """An in-memory layer and a running event loop registered as the server's, as under
    `manage.py serve`."""
    settings.CHANNEL_LAYERS = IN_MEMORY
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    previous = bus._server_loop
    bus.register_server_loop(loop)
    try:
        yield loop
    finally:
        bus._server_loop = previous
        loop.call_soon_threadsafe(loop.stop)
        thread.join(5)
        loop.close()
        channel_layers.backends.clear()


def _on(loop: asyncio.AbstractEventLoop, coroutine: Any) -> Any:
    return asyncio.run_coroutine_threadsafe(coroutine, loop).result(5)


async def _receive_all(layer: Any, channel: str, count: int) -> list[int]:
    return [(await asyncio.wait_for(layer.receive(channel), 5))["n"] for _ in range(count)]


def test_sends_from_another_thread_arrive_in_call_order_also_those_made_while_it_sends(
    server_loop: asyncio.AbstractEventLoop, monkeypatch: pytest.MonkeyPatch
) -> None:
    layer = bus.channel_layer()
    original = layer.group_send
    sending, more_sent = threading.Event(), threading.Event()

    async def first_waits(group: str, message: dict[str, Any]) -> None:
        if message["n"] == 0:  # the loop is sending the first batch while the rest come in
            sending.set()
            more_sent.wait(5)
        await original(group, message)

    monkeypatch.setattr(layer, "group_send", first_waits)
    channel = _on(server_loop, layer.new_channel())
    _on(server_loop, layer.group_add("orders", channel))

    bus.group_send("orders", {"type": "order.update", "n": 0})
    assert sending.wait(5)
    for n in range(1, 40):
        bus.group_send("orders", {"type": "order.update", "n": n})
    more_sent.set()

    assert _on(server_loop, _receive_all(layer, channel, 40)) == list(range(40))


def test_a_group_nobody_is_in_is_not_sent_to(
    server_loop: asyncio.AbstractEventLoop, monkeypatch: pytest.MonkeyPatch
) -> None:
    layer = bus.channel_layer()
    sent: list[str] = []
    original = layer.group_send

    async def counting(group: str, message: dict[str, Any]) -> None:
        sent.append(group)
        await original(group, message)

    monkeypatch.setattr(layer, "group_send", counting)
    channel = _on(server_loop, layer.new_channel())
    _on(server_loop, layer.group_add("orders", channel))

    bus.group_send("webhooks", {"type": "webhook.update", "n": 0})  # no member
    bus.group_send("orders", {"type": "order.update", "n": 1})
    _on(server_loop, layer.group_discard("orders", channel))
    bus.group_send("orders", {"type": "order.update", "n": 2})  # its last member left

    assert _on(server_loop, _receive_all(layer, channel, 1)) == [1]
    assert sent == ["orders"]


def test_a_cancelled_drain_does_not_stop_later_sends(
    server_loop: asyncio.AbstractEventLoop, monkeypatch: pytest.MonkeyPatch
) -> None:
    layer = bus.channel_layer()
    original = layer.group_send
    taken = threading.Event()

    async def cancelled_first(group: str, message: dict[str, Any]) -> None:
        if message["n"] == 0:
            taken.set()
            raise asyncio.CancelledError  # as when the loop shuts its tasks down
        await original(group, message)

    monkeypatch.setattr(layer, "group_send", cancelled_first)
    channel = _on(server_loop, layer.new_channel())
    _on(server_loop, layer.group_add("orders", channel))

    bus.group_send("orders", {"type": "order.update", "n": 0})  # its drain is cancelled
    assert taken.wait(5)
    # Sent while that drain ends (or after): either way it gets a drain of its own.
    bus.group_send("orders", {"type": "order.update", "n": 1})

    assert _on(server_loop, _receive_all(layer, channel, 1)) == [1]
