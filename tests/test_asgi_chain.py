"""The HTTP application runs Django's middleware chain and the view in one thread hop
(quanttrade.asgi.SyncChainASGIHandler): the chain is synchronous, and a request through the
ASGI application still passes every middleware."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from asgiref.testing import ApplicationCommunicator


def test_the_middleware_chain_is_built_synchronous() -> None:
    from quanttrade.asgi import SyncChainASGIHandler, django_asgi_app

    assert isinstance(django_asgi_app, SyncChainASGIHandler)
    assert not asyncio.iscoroutinefunction(django_asgi_app._middleware_chain)


@pytest.mark.django_db(transaction=True)
def test_a_request_through_the_asgi_application_passes_the_middleware() -> None:
    from quanttrade.asgi import application

    async def get(path: str) -> tuple[int, dict[str, str], bytes]:
        scope: dict[str, Any] = {
            "type": "http",
            "asgi": {"version": "3.0"},
            "http_version": "1.1",
            "method": "GET",
            "scheme": "http",
            "path": path,
            "raw_path": path.encode(),
            "query_string": b"",
            "headers": [(b"host", b"127.0.0.1")],
            "client": ("127.0.0.1", 50000),
            "server": ("127.0.0.1", 8000),
        }
        communicator = ApplicationCommunicator(application, scope)
        await communicator.send_input({"type": "http.request", "body": b"", "more_body": False})
        start = await communicator.receive_output(10)
        body = b""
        while True:
            message = await communicator.receive_output(10)
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        headers = {k.decode().lower(): v.decode() for k, v in start["headers"]}
        return start["status"], headers, body

    status, headers, _ = asyncio.run(get("/accounts/login/"))
    assert status == 200
    assert headers["x-frame-options"] == "DENY"  # XFrameOptionsMiddleware
    assert "csrftoken" in headers.get("set-cookie", "")  # CsrfViewMiddleware on the login form
    status, _, _ = asyncio.run(get("/api/webhook"))
    assert status == 405  # the webhook view itself answered (GET is not allowed)
