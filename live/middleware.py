"""The ``/ws`` connection's user, from the session cookie, without wrapping every send.

Channels' ``AuthMiddlewareStack`` puts its ``SessionMiddleware`` around the application's
``send``: on every message it reads the session's ``modified`` and ``is_empty()`` through a
``LazyObject``, to save the session on an HTTP response. A WebSocket never writes its session
and never answers with ``http.response.start``, so for ``/ws`` the wrapper is cost only: at
10,000 price deliveries a second it took about 8 % of a web process's time
(docs/benchmarks-ws.md). Here the session is opened once, read-only, when the connection
arrives (its row is read when ``AuthMiddleware`` resolves the user), and ``send`` goes to the
server untouched.
"""

from __future__ import annotations

from typing import Any

from channels.auth import AuthMiddleware
from channels.sessions import CookieMiddleware, InstanceSessionWrapper


class ReadOnlySessionMiddleware:
    """``scope["session"]`` from the session cookie, as channels' ``SessionMiddleware`` resolves
    it (CookieMiddleware must be above), with the server's own ``send`` passed on."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> Any:
        session = InstanceSessionWrapper(scope, send)
        await session.resolve_session()
        return await self.inner(session.scope, receive, send)


def WebSocketAuthStack(inner: Any) -> Any:  # noqa: N802 - named like channels' AuthMiddlewareStack
    """Cookies, the session (read-only) and ``scope["user"]``, as ``AuthMiddlewareStack`` gives
    them, for a WebSocket application."""
    return CookieMiddleware(ReadOnlySessionMiddleware(AuthMiddleware(inner)))
