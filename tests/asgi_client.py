"""One HTTP request through the product's ASGI application (asgiref's ApplicationCommunicator),
as a server would hand it over: no server, no socket."""

from __future__ import annotations

import asyncio
import json
from typing import Any

from asgiref.testing import ApplicationCommunicator


def http_scope(method: str, path: str, headers: dict[str, str], host: str = "127.0.0.1") -> dict[str, Any]:
    return {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": method,
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": b"",
        "headers": [(b"host", host.encode())]
        + [(name.lower().encode(), value.encode()) for name, value in headers.items()],
        "client": ("127.0.0.1", 50000),
        "server": ("127.0.0.1", 8000),
    }


async def read_answer(communicator: ApplicationCommunicator) -> tuple[dict[str, Any], bytes]:
    """The application's answer (its start message and its whole body), once it has finished."""
    start = await communicator.receive_output(10)
    content = b""
    while True:
        message = await communicator.receive_output(10)
        content += message.get("body", b"")
        if not message.get("more_body"):
            break
    await communicator.wait(10)
    return start, content


async def _exchange(scope: dict[str, Any], body: bytes) -> tuple[int, dict[str, str], bytes]:
    from quanttrade.asgi import application

    communicator = ApplicationCommunicator(application, scope)
    await communicator.send_input({"type": "http.request", "body": body, "more_body": False})
    start, content = await read_answer(communicator)
    return start["status"], {k.decode().lower(): v.decode() for k, v in start["headers"]}, content


def asgi_request(
    method: str, path: str, body: bytes = b"", host: str = "127.0.0.1", **headers: str
) -> tuple[int, dict[str, str], Any]:
    """Status, headers (lower-case names) and the body (parsed when it is JSON)."""
    status, answer_headers, content = asyncio.run(_exchange(http_scope(method, path, headers, host), body))
    return (
        status,
        answer_headers,
        json.loads(content) if "json" in answer_headers.get("content-type", "") else content,
    )
