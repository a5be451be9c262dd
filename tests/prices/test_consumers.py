"""The /ws protocol (SPEC §3) through WebsocketCommunicator: every test disconnects."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import Awaitable, Callable
from typing import Any

import pytest
from asgiref.sync import sync_to_async
from channels.layers import get_channel_layer
from channels.testing import WebsocketCommunicator
from django.contrib.auth.models import AnonymousUser, User

from live import consumers, hub
from live.consumers import LiveConsumer
from live.security import OriginValidator, origin_allowed
from prices.services import price_publish

pytestmark = pytest.mark.django_db(transaction=True)


async def _open(user: Any = None, headers: list[tuple[bytes, bytes]] | None = None) -> WebsocketCommunicator:
    communicator = WebsocketCommunicator(LiveConsumer.as_asgi(), "/ws", headers=headers or [])
    communicator.scope["user"] = user or AnonymousUser()
    connected, _ = await communicator.connect()
    assert connected
    return communicator


async def _next(communicator: WebsocketCommunicator, timeout: float = 2) -> dict[str, Any]:
    return json.loads(await communicator.receive_from(timeout=timeout))


def run(test: Callable[[], Awaitable[None]]) -> None:
    asyncio.run(test())


def test_connect_sends_connected_with_client_id() -> None:
    async def scenario() -> None:
        ws = await _open()
        try:
            message = await _next(ws)
            assert message["type"] == "connected"
            assert message["message"] == "WebSocket connection established"
            assert len(message["client_id"]) == 36
        finally:
            await ws.disconnect()

    run(scenario)


def test_subscribe_answers_subscribed_then_snapshot() -> None:
    price_publish("005930", 158600, change=-700, volume=36358081, bid=158500, ask=158600)

    async def scenario() -> None:
        ws = await _open()
        try:
            await _next(ws)
            await ws.send_json_to({"type": "subscribe", "topic": "price:005930"})
            assert await _next(ws) == {
                "type": "subscribed",
                "topic": "price:005930",
                "message": "Subscribed to price:005930",
            }
            update = await _next(ws)
            assert update["type"] == "price_update" and update["ticker"] == "005930"
            assert update["data"]["price"] == 158600 and update["data"]["change"] == -700
            assert update["timestamp"] == update["data"]["timestamp"]
        finally:
            await ws.disconnect()

    run(scenario)


def test_tick_published_from_another_thread_reaches_subscriber() -> None:
    async def scenario() -> None:
        ws = await _open()
        try:
            await _next(ws)
            await ws.send_json_to({"type": "subscribe", "topic": "price:BINANCE:BTC/USDT"})
            assert (await _next(ws))["type"] == "subscribed"
            await sync_to_async(price_publish, thread_sensitive=False)("BINANCE:BTC/USDT", "67123.45")
            update = await _next(ws)
            assert update["ticker"] == "BINANCE:BTC/USDT" and update["data"]["price"] == 67123.45
        finally:
            await ws.disconnect()

    run(scenario)


def test_unsubscribe_stops_updates() -> None:
    async def scenario() -> None:
        ws = await _open()
        try:
            await _next(ws)
            await ws.send_json_to({"type": "subscribe", "topic": "price:000660"})
            await _next(ws)
            await ws.send_json_to({"type": "unsubscribe", "topic": "price:000660"})
            assert (await _next(ws))["type"] == "unsubscribed"
            await sync_to_async(price_publish, thread_sensitive=False)("000660", 128000)
            assert await ws.receive_nothing(timeout=0.3)
        finally:
            await ws.disconnect()

    run(scenario)


def test_client_ping_gets_pong() -> None:
    async def scenario() -> None:
        ws = await _open()
        try:
            await _next(ws)
            await ws.send_json_to({"type": "ping"})
            assert (await _next(ws))["type"] == "pong"
        finally:
            await ws.disconnect()

    run(scenario)


@pytest.mark.parametrize(
    ("text", "code"),
    [
        ("not json", "invalid_json"),
        ("[1, 2]", "invalid_message"),
        ('{"type": "dance"}', "unknown_type"),
        ('{"type": "subscribe", "topic": "price:<script>"}', "invalid_topic"),
        ('{"type": "subscribe", "topic": "news"}', "invalid_topic"),
        ('{"type": "ping", "pad": "' + "x" * 4100 + '"}', "message_too_large"),
    ],
)
def test_bad_message_gets_error_and_connection_stays_open(text: str, code: str) -> None:
    async def scenario() -> None:
        ws = await _open()
        try:
            await _next(ws)
            await ws.send_to(text_data=text)
            error = await _next(ws)
            assert error["type"] == "error" and error["code"] == code and error["message"]
            await ws.send_json_to({"type": "ping"})
            assert (await _next(ws))["type"] == "pong"
        finally:
            await ws.disconnect()

    run(scenario)


def test_error_messages_are_korean_by_default_and_english_on_request() -> None:
    async def scenario() -> None:
        for headers, expected in (([], "JSON"), ([(b"accept-language", b"en")], "not valid JSON")):
            ws = await _open(headers=headers)
            try:
                await _next(ws)
                await ws.send_to(text_data="{")
                message = (await _next(ws))["message"]
                assert expected in message
                if not headers:
                    assert "not valid" not in message
            finally:
                await ws.disconnect()

    run(scenario)


def test_topic_limit_is_200() -> None:
    async def scenario() -> None:
        ws = await _open()
        try:
            await _next(ws)
            for n in range(200):
                await ws.send_json_to({"type": "subscribe", "topic": f"price:T{n:05d}"})
                assert (await _next(ws))["type"] == "subscribed"
            await ws.send_json_to({"type": "subscribe", "topic": "price:T99999"})
            error = await _next(ws)
            assert error["code"] == "too_many_topics"
        finally:
            await ws.disconnect()

    run(scenario)


def test_orders_topic_is_staff_only() -> None:
    async def scenario() -> None:
        ws = await _open()
        try:
            await _next(ws)
            await ws.send_json_to({"type": "subscribe", "topic": "orders"})
            assert (await _next(ws))["code"] == "forbidden"
        finally:
            await ws.disconnect()

    run(scenario)


def test_staff_receive_order_and_webhook_updates() -> None:
    staff = User.objects.create_user("ops", password="x", is_staff=True)

    async def scenario() -> None:
        ws = await _open(user=staff)
        try:
            await _next(ws)
            for topic in ("orders", "webhooks"):
                await ws.send_json_to({"type": "subscribe", "topic": topic})
                assert (await _next(ws))["type"] == "subscribed"
            layer = get_channel_layer()
            order = {"order_id": "o1", "status": "filled", "avg_price": "67000.5"}
            await layer.group_send("orders", {"type": "order.update", "order": order})
            assert await _next(ws) == {"type": "order_update", "order": order}
            hook = {"webhook_id": "w1", "outcome": "accepted", "http_status": 202}
            await layer.group_send("webhooks", {"type": "webhook.update", "webhook": hook})
            assert await _next(ws) == {"type": "webhook_update", "webhook": hook}
        finally:
            await ws.disconnect()

    run(scenario)


def test_two_missed_pongs_close_the_connection(settings: Any) -> None:
    settings.WS_PING_INTERVAL_SECONDS = 0.15

    async def scenario() -> None:
        ws = await _open()
        try:
            await _next(ws)
            assert (await _next(ws))["type"] == "ping"
            assert (await _next(ws))["type"] == "ping"
            closed = await ws.receive_output(timeout=2)
            assert closed == {"type": "websocket.close", "code": 4008}
        finally:
            await ws.disconnect()

    run(scenario)


def test_answered_pings_keep_the_connection_open(settings: Any) -> None:
    settings.WS_PING_INTERVAL_SECONDS = 0.1

    async def scenario() -> None:
        ws = await _open()
        try:
            await _next(ws)
            for _ in range(5):
                assert (await _next(ws))["type"] == "ping"
                await ws.send_json_to({"type": "pong"})
            await ws.send_json_to({"type": "ping"})
            while (message := await _next(ws))["type"] == "ping":
                await ws.send_json_to({"type": "pong"})
            assert message["type"] == "pong"
        finally:
            await ws.disconnect()

    run(scenario)


def test_foreign_origin_is_refused_and_own_origin_accepted(settings: Any) -> None:
    settings.ALLOWED_HOSTS = ["trade.example.com"]
    settings.WS_ALLOWED_ORIGINS = ["https://app.example.net"]

    async def attempt(origin: bytes) -> bool:
        communicator = WebsocketCommunicator(
            OriginValidator(LiveConsumer.as_asgi()), "/ws", headers=[(b"origin", origin)]
        )
        communicator.scope["user"] = AnonymousUser()
        connected, _ = await communicator.connect()
        await communicator.disconnect()
        return connected

    async def scenario() -> None:
        assert await attempt(b"https://evil.example.org") is False
        assert await attempt(b"https://trade.example.com") is True
        assert await attempt(b"https://app.example.net") is True

    run(scenario)


@pytest.mark.parametrize(
    ("origin", "allowed"),
    [
        ("http://[::1]:8000", True),
        ("http://[::1]", True),
        ("http://[::2]", False),
        ("http://127.0.0.1", True),
    ],
)
def test_an_ipv6_origin_matches_its_bracketed_allowed_host(settings: Any, origin: str, allowed: bool) -> None:
    """The default ALLOWED_HOSTS lists [::1] as Host writes it; an Origin's host is read without
    the brackets, and a page served on http://[::1] could not open /ws."""
    settings.ALLOWED_HOSTS = ["localhost", "127.0.0.1", "[::1]"]
    settings.WS_ALLOWED_ORIGINS = []
    assert origin_allowed(origin) is allowed


def test_websocket_stats_count_connections_and_topics() -> None:
    from live import wsstats

    async def scenario() -> None:
        before = wsstats.total_stats()["active_connections"]
        ws = await _open()
        try:
            await _next(ws)
            await ws.send_json_to({"type": "subscribe", "topic": "price:005930"})
            await _next(ws)
            stats = wsstats.total_stats()
            assert stats["active_connections"] == before + 1
            assert stats["subscribed_topics"].get("price:005930") == 1
        finally:
            await ws.disconnect()
        after = wsstats.total_stats()
        assert after["active_connections"] == before and "price:005930" not in after["subscribed_topics"]

    run(scenario)


def test_a_message_nested_deeper_than_the_parser_gets_an_error_and_the_connection_stays() -> None:
    async def scenario() -> None:
        ws = await _open()
        try:
            await _next(ws)
            await ws.send_to(text_data="[" * 2000 + "]" * 2000)  # 4 KB: under the size limit
            assert (await _next(ws))["code"] == "invalid_json"
            await ws.send_json_to({"type": "ping"})
            assert (await _next(ws))["type"] == "pong"  # still open
        finally:
            await ws.disconnect()

    run(scenario)


def test_a_send_racing_a_disconnect_is_dropped_not_raised() -> None:
    """What the server answers when the application sends after the client closed: the
    connection's writer drops it instead of failing ("Exception inside application" in the log),
    and goes on with the next frame."""
    consumer = LiveConsumer()
    consumer.client_id, consumer.closing = "c", False
    attempts: list[dict[str, Any]] = []

    async def closed_socket(message: dict[str, Any]) -> None:
        attempts.append(message)
        raise RuntimeError("Unexpected ASGI message 'websocket.send', after sending 'websocket.close'")

    consumer.base_send = closed_socket

    async def scenario() -> None:
        consumer.outbox = asyncio.Queue(5)
        writer = asyncio.create_task(consumer._write())
        await consumer.send(text_data='{"type":"pong"}')
        await consumer.send(text_data='{"type":"pong"}')
        while len(attempts) < 2:
            await asyncio.sleep(0.01)
        assert not writer.done()
        writer.cancel()

    asyncio.run(asyncio.wait_for(scenario(), 5))


class _Socket:
    """A connection's socket for the hub tests: ``stuck`` never takes a frame (a client that
    stopped reading: uvicorn's send then waits for room), the other records them."""

    def __init__(self, stuck: bool) -> None:
        self.stuck = stuck
        self.frames: list[str] = []
        self.closed: list[int] = []

    async def __call__(self, message: dict[str, Any]) -> None:
        if message["type"] == "websocket.close":
            self.closed.append(message["code"])
        elif self.stuck:
            await asyncio.Event().wait()
        else:
            self.frames.append(message["text"])


def _connection(socket: _Socket) -> LiveConsumer:
    consumer = LiveConsumer()
    consumer.client_id, consumer.closing = f"c{id(socket)}", False
    consumer.base_send = socket
    consumer.outbox = asyncio.Queue(consumers.OUTBOX_FRAMES)
    consumer.writer = asyncio.get_running_loop().create_task(consumer._write())
    return consumer


def test_a_client_that_stopped_reading_holds_up_no_one_and_is_closed_past_its_queue() -> None:
    """uvicorn: a tick went to each subscriber in turn, waiting for each socket; one client
    that never read stalled every subscriber after it, for as long as it stayed connected."""

    async def scenario() -> None:
        loop = asyncio.get_running_loop()
        price_hub = hub.hub_for(loop)
        stuck, reader = _Socket(stuck=True), _Socket(stuck=False)
        slow, fast = _connection(stuck), _connection(reader)
        price_hub.members["prices.test-slow"] = {slow, fast}
        try:
            ticks = consumers.OUTBOX_FRAMES + 10
            for n in range(ticks):
                await asyncio.wait_for(price_hub.dispatch("prices.test-slow", f'{{"n":{n}}}'), 1)
            while len(reader.frames) < ticks:
                await asyncio.sleep(0.01)
            assert reader.frames[-1] == f'{{"n":{ticks - 1}}}' and not reader.closed
            while not stuck.closed:
                await asyncio.sleep(0.01)
            assert stuck.closed == [consumers.CLOSE_TOO_SLOW]
        finally:
            del price_hub.members["prices.test-slow"]
            slow.writer.cancel()
            fast.writer.cancel()

    asyncio.run(asyncio.wait_for(scenario(), 20))


def test_a_send_that_closes_closes_after_the_frames_before_it() -> None:
    async def scenario() -> None:
        socket = _Socket(stuck=False)
        consumer = _connection(socket)
        await consumer.send(text_data="a")
        await consumer.send(text_data="b", close=True)
        while not socket.closed:
            await asyncio.sleep(0.01)
        assert (socket.frames, socket.closed) == (["a", "b"], [1000])
        await consumer.send(text_data="c")  # after the close: dropped
        assert socket.frames == ["a", "b"]

    asyncio.run(asyncio.wait_for(scenario(), 5))


def test_a_flood_of_messages_closes_the_connection() -> None:
    """daphne queued a client's messages without bound (a ping flood: +500 MB in 25 s, and
    every other client's replies slowed): past 300 messages in 10 s the connection is closed."""

    async def scenario() -> None:
        ws = await _open()
        await _next(ws)
        for _ in range(consumers.MESSAGE_LIMIT + 20):
            await ws.send_json_to({"type": "ping"})
        pongs = 0
        while True:
            output = await ws.receive_output(5)
            if output["type"] == "websocket.close":
                break
            pongs += json.loads(output["text"])["type"] == "pong"
        assert output["code"] == consumers.CLOSE_FLOOD
        assert pongs == consumers.MESSAGE_LIMIT
        await ws.disconnect()

    run(scenario)


def test_a_connection_the_server_cancels_still_leaves_its_groups_and_counts() -> None:
    """daphne cancels a connection still busy when it closes (application_close_timeout):
    disconnect never ran, and the connection stayed counted and subscribed for good."""
    from live import wsstats

    async def scenario() -> None:
        before = wsstats.total_stats()["active_connections"]
        ws = await _open()
        await _next(ws)
        await ws.send_json_to({"type": "subscribe", "topic": "price:000660"})
        await _next(ws)
        assert wsstats.total_stats()["subscribed_topics"].get("price:000660") == 1
        ws.future.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await ws.future
        after = wsstats.total_stats()
        assert after["active_connections"] == before and "price:000660" not in after["subscribed_topics"]
        price_hub = hub.hub_for(asyncio.get_running_loop())
        assert not any(price_hub.members.values())

    run(scenario)
