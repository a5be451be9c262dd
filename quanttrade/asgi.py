"""ASGI entry point: HTTP through Django, WebSocket through Channels."""

from __future__ import annotations

import asyncio
import contextvars
import functools
import os
import tempfile
import threading
from concurrent.futures import ThreadPoolExecutor
from typing import IO, Any

import django
from asgiref.sync import sync_to_async
from django.conf import settings
from django.core import signals
from django.core.exceptions import RequestAborted, RequestDataTooBig
from django.core.handlers.asgi import ASGIHandler, ASGIRequest, get_script_prefix
from django.http import HttpRequest, HttpResponseBase
from django.urls import set_script_prefix
from django.utils.translation import gettext as _

from quanttrade.errors import ApiError, error_response, raised_response, request_too_large
from webhooks.paths import WEBHOOK_PATHS

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "quanttrade.settings")


class SyncChainASGIHandler(ASGIHandler):
    """Django's ASGI handler, with the middleware chain and the view run in ONE thread hop.

    Every HTTP view of the product is synchronous. Django's async chain runs each
    middleware's process_request and process_response in a sync_to_async hop of its own
    (MiddlewareMixin.__acall__), a dozen hops per request for this middleware stack, and one
    sync-only middleware (whitenoise) adds two more: measured through the servers, most of a
    webhook's CPU beyond the view itself (docs/benchmarks-speed.md). Here the chain is built
    synchronous and the whole of it runs in one hop to the sync thread, as a WSGI server would
    run it. An async view would still work (Django adapts it), at the cost of a hop.

    A webhook (``POST`` to ``WEBHOOK_PATHS``) goes further: once its body has arrived, the whole
    of its request — Django's request signals, the middleware chain and the view, the response's
    close — runs in ONE hop to a thread of the process's webhook pool (``WEBHOOK_THREADS``,
    started as needed and kept), and the answer is sent. Django's own handling gives every
    request a new thread (asgiref's per-request context), starts and stops it, and hops to it
    three times, with two tasks watching for a disconnect: measured through the web server, a
    fifth of a webhook's CPU (docs/benchmarks-speed.md, round 31). Each webhook runs in a copy of
    the server's context, so nothing it activates (its language) outlives it, and its database
    connections are closed or given back at its end as on Django's path. A client that goes away
    once the body has arrived does not stop the intake: the signal is stored and placed
    (Django's path could not stop the view's thread either)."""

    _pool: ThreadPoolExecutor | None = None  # forgotten by a forked child (below the class)
    _pool_lock = threading.Lock()

    @classmethod
    def webhook_pool(cls) -> ThreadPoolExecutor:
        """This process's webhook threads, made on the first webhook."""
        with cls._pool_lock:
            if cls._pool is None:
                cls._pool = ThreadPoolExecutor(settings.WEBHOOK_THREADS, thread_name_prefix="webhook")
            return cls._pool

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "http" and scope["method"] == "POST" and _path_info(scope) in WEBHOOK_PATHS:
            await self._handle_webhook(scope, receive, send)
        else:
            await super().__call__(scope, receive, send)

    async def _handle_webhook(self, scope: Any, receive: Any, send: Any) -> None:
        try:
            body_file = await self._read_webhook_body(scope, receive)
        except RequestAborted:
            return  # the client left before its body arrived: nothing was received
        context = contextvars.copy_context()
        respond = functools.partial(context.run, self._respond, scope, body_file)
        response = await asyncio.get_running_loop().run_in_executor(self.webhook_pool(), respond)
        await self.send_response(response, send)

    async def _read_webhook_body(self, scope: Any, receive: Any) -> IO[bytes]:
        """The body, read no further than a webhook may be long (WEBHOOK_MAX_BODY_BYTES): a body
        declared longer is not read at all (the view answers 413 from its Content-Length), one
        sent in chunks is read up to one byte past the limit (the intake answers 413 from its
        length). Django's ``read_body`` read any body whole first, to memory then to a
        temporary file: gigabytes from anyone who cared to send them."""
        limit = settings.WEBHOOK_MAX_BODY_BYTES
        if _declared_length(scope) > limit:
            return _body_file()
        body_file, _past = await _read_capped(receive, limit)
        return body_file

    async def read_body(self, receive: Any) -> IO[bytes]:
        """Django's, stopping one byte past HTTP_MAX_BODY_BYTES (the file is marked, and
        ``create_request`` answers 413): Django's read any body whole, to memory then to disk."""
        body_file, past = await _read_capped(receive, settings.HTTP_MAX_BODY_BYTES)
        if past:
            body_file.qt_too_large = True  # type: ignore[attr-defined]  # read by create_request
        return body_file

    def _respond(self, scope: Any, body_file: IO[bytes]) -> HttpResponseBase:
        """What ``ASGIHandler.handle`` does around the view, on the pool's thread. A webhook's
        answer is never streamed (the view's JSON, or an error page of the middleware before
        the lane), so it is closed here (``request_finished``: the thread's database connections
        closed or given back) before its bytes are sent; the body file too, by the thread that
        read it."""
        try:
            try:
                set_script_prefix(get_script_prefix(scope))
                signals.request_started.send(sender=self.__class__, scope=scope)
                request, refusal = self.create_request(scope, body_file)
                response = refusal if request is None else self.get_response(request)
                assert response is not None  # create_request gives a request or its error's answer
            except Exception as exc:  # outside the view (its own errors are answered by the lane)
                response = raised_response(exc)  # the JSON envelope, never the server's page
            response._handler_class = self.__class__  # type: ignore[attr-defined]  # request_finished's sender
            response.close()
            return response
        finally:
            body_file.close()

    def create_request(
        self, scope: Any, body_file: IO[bytes]
    ) -> tuple[ASGIRequest, None] | tuple[None, HttpResponseBase]:
        """Django's, with a request it cannot read answered by the JSON envelope: Django 5.2 lets
        a ``ValueError`` out of a header it cannot parse (an RFC 2231 parameter naming an unknown
        charset, ``Content-Type: text/plain; charset*=bogus''utf-8``), which became the server's
        500 page on every path, and answers an undecodable one with an empty HTML 400."""
        if getattr(body_file, "qt_too_large", False):
            return None, error_response(request_too_large())
        try:
            return self.request_class(scope, body_file), None
        except ValueError:  # UnicodeDecodeError included
            return None, error_response(
                ApiError(_("The request's headers cannot be read"), code="bad_request", status=400)
            )
        except RequestDataTooBig:
            return None, error_response(request_too_large())

    def load_middleware(self, is_async: bool = False) -> None:
        super().load_middleware(is_async=False)

    async def get_response_async(self, request: HttpRequest) -> HttpResponseBase:
        response: HttpResponseBase = await sync_to_async(self.get_response, thread_sensitive=True)(request)
        return response


def _forget_pool_after_fork() -> None:
    # A forked child (gunicorn with --preload) has none of its parent's threads: it makes its own.
    SyncChainASGIHandler._pool = None
    SyncChainASGIHandler._pool_lock = threading.Lock()


os.register_at_fork(after_in_child=_forget_pool_after_fork)


def _body_file() -> IO[bytes]:
    """Where a request's body goes, as Django's ``read_body`` keeps it (memory, then disk)."""
    return tempfile.SpooledTemporaryFile(max_size=settings.FILE_UPLOAD_MAX_MEMORY_SIZE, mode="w+b")


async def _read_capped(receive: Any, limit: int) -> tuple[IO[bytes], bool]:
    """The body as it arrives, kept up to one byte past ``limit``, and whether it went past it
    (reading stops there: the rest is never taken from the server)."""
    body_file, size = _body_file(), 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            body_file.close()
            raise RequestAborted()
        chunk = message.get("body", b"")
        body_file.write(chunk[: limit + 1 - size])
        size += len(chunk)
        if size > limit or not message.get("more_body", False):
            break
    body_file.seek(0)
    return body_file, size > limit


def _declared_length(scope: Any) -> int:
    """The request's Content-Length, 0 when it has none (chunked) or none that reads as one
    (the servers refuse those themselves)."""
    for name, value in scope["headers"]:
        if name == b"content-length":
            try:
                return int(value)
            except ValueError:
                return 0
    return 0


def _path_info(scope: Any) -> str:
    """The request's path below the script prefix, as ``ASGIRequest.path_info`` reads it."""
    prefix = get_script_prefix(scope)
    path: str = scope["path"]
    return path.removeprefix(prefix) if prefix else path


def _django_http_app() -> Any:
    django.setup(set_prefix=False)
    return SyncChainASGIHandler()


# Build the Django app (and so load the apps) before importing anything that touches models.
django_asgi_app = _django_http_app()

from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402

from live.middleware import WebSocketAuthStack  # noqa: E402
from live.routing import websocket_urlpatterns  # noqa: E402
from live.security import OriginValidator  # noqa: E402
from quanttrade.heap import startup_heap_freeze  # noqa: E402
from webhooks.services import spool_replayer_start  # noqa: E402

# Webhooks spooled while the database was down (by this or an earlier process) are replayed
# by every web process as soon as the database answers (webhooks/spool.py).
spool_replayer_start()

application = ProtocolTypeRouter(
    {
        "http": django_asgi_app,
        "websocket": OriginValidator(WebSocketAuthStack(URLRouter(websocket_urlpatterns))),
    }
)

# Everything alive now lives as long as the process: out of the garbage collector's walks.
startup_heap_freeze()
