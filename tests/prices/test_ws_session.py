"""/ws through the product's whole ASGI stack (quanttrade.asgi.application): the user comes
from the session cookie (live/middleware.py), read once at the handshake; sends are not
wrapped by a session saver."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest
from channels.testing import WebsocketCommunicator
from django.conf import settings
from django.contrib.auth.models import User
from django.test import Client

pytestmark = pytest.mark.django_db(transaction=True)


def _session_cookie(user: User | None) -> list[tuple[bytes, bytes]]:
    if user is None:
        return []
    client = Client()
    client.force_login(user)
    key = client.cookies[settings.SESSION_COOKIE_NAME].value
    return [(b"cookie", f"{settings.SESSION_COOKIE_NAME}={key}".encode())]


def _subscribe_orders(headers: list[tuple[bytes, bytes]]) -> tuple[dict[str, Any], dict[str, Any]]:
    from quanttrade.asgi import application

    async def scenario() -> tuple[dict[str, Any], dict[str, Any]]:
        ws = WebsocketCommunicator(application, "/ws", headers=headers)
        connected, _ = await ws.connect()
        assert connected
        try:
            first = json.loads(await ws.receive_from(timeout=5))
            await ws.send_json_to({"type": "subscribe", "topic": "orders"})
            return first, json.loads(await ws.receive_from(timeout=5))
        finally:
            await ws.disconnect()

    return asyncio.run(scenario())


def test_a_staff_session_cookie_opens_the_staff_topics() -> None:
    staff = User.objects.create_user("ops", password="x", is_staff=True)
    first, answer = _subscribe_orders(_session_cookie(staff))
    assert first["type"] == "connected"
    assert answer["type"] == "subscribed", answer


@pytest.mark.parametrize("who", ["nobody", "non-staff", "unknown session"])
def test_without_a_staff_session_the_staff_topics_are_refused(who: str) -> None:
    if who == "nobody":
        headers: list[tuple[bytes, bytes]] = []
    elif who == "non-staff":
        headers = _session_cookie(User.objects.create_user("viewer", password="x"))
    else:
        headers = [(b"cookie", f"{settings.SESSION_COOKIE_NAME}=not-a-session-key".encode())]
    first, answer = _subscribe_orders(headers)
    assert first["type"] == "connected"
    assert answer["code"] == "forbidden"


def test_the_connection_sends_straight_to_the_server(monkeypatch: pytest.MonkeyPatch) -> None:
    """No session saver sits between the consumer and the server: channels' wrapper read the
    session's state on every frame."""
    from channels.sessions import InstanceSessionWrapper

    def fail(*args: Any, **kwargs: Any) -> None:
        raise AssertionError("a session wrapper handled a /ws send")

    monkeypatch.setattr(InstanceSessionWrapper, "send", fail)
    staff = User.objects.create_user("ops2", password="x", is_staff=True)
    first, answer = _subscribe_orders(_session_cookie(staff))
    assert (first["type"], answer["type"]) == ("connected", "subscribed")
