"""Limits daphne does not keep by itself: a request body's size, a WebSocket's incoming queue.

**Request bodies** (HTTP_MAX_BODY_BYTES).

daphne (through twisted.web) receives a request's whole body before the application sees any
of it, into a temporary file, then hands the application every chunk at once, in memory: a
client that sends gigabytes fills the disk and then the memory of the one embedded process,
whatever the application does (uvicorn hands the body over as it arrives, and
``quanttrade.asgi`` stops reading it at the limit). daphne has no setting for it. This request
keeps nothing past the limit and answers 413 with the JSON envelope once the body has arrived.

**WebSocket messages** (WS_QUEUE_MAX). daphne reads a client's frames as fast as they come and
queues each for the application without bound: a client flooding pings grew the process by
hundreds of megabytes (about 250 bytes a queued message) before the application, which closes a
flooding connection (live/consumers.py), could read its way to them. This protocol drops the
connection once that many of its messages wait.

``install`` makes daphne build both (its factories read the classes at every connection)."""

from __future__ import annotations

import json
import logging
from typing import Any

from daphne import http_protocol, ws_protocol
from django.conf import settings

from quanttrade.errors import request_too_large

log = logging.getLogger("quanttrade.live")


class CappedWebRequest(http_protocol.WebRequest):
    too_large = False

    def gotLength(self, length: int | None) -> None:  # noqa: N802 - twisted's name
        self.too_large = length is not None and length > settings.HTTP_MAX_BODY_BYTES
        super().gotLength(None if self.too_large else length)

    def handleContentChunk(self, data: bytes) -> None:  # noqa: N802 - twisted's name
        if self.too_large:
            return
        if self.content.tell() + len(data) > settings.HTTP_MAX_BODY_BYTES:
            self.too_large = True
            self.content.seek(0)
            self.content.truncate()
            return
        super().handleContentChunk(data)

    def process(self) -> None:
        if not self.too_large:
            super().process()
            return
        body = json.dumps(request_too_large().envelope(), ensure_ascii=False).encode()
        self.setResponseCode(413, b"Request Entity Too Large")
        self.responseHeaders.setRawHeaders(b"Content-Type", [b"application/json"])
        self.responseHeaders.setRawHeaders(b"Content-Length", [str(len(body)).encode()])
        self.write(body)
        self.finish()


# Messages of one WebSocket waiting for the application before the connection is dropped: far
# more than a page subscribing to all its topics at once sends (live.consumers.MAX_TOPICS).
WS_QUEUE_MAX = 1000


class CappedWebSocketProtocol(ws_protocol.WebSocketProtocol):
    def onMessage(self, payload: bytes, isBinary: bool) -> None:  # noqa: N802, N803 - autobahn's names
        queue = self.application_queue
        if queue is not None and queue.qsize() >= WS_QUEUE_MAX:
            if not getattr(self, "qt_dropped", False):
                self.qt_dropped = True
                log.warning(
                    "WebSocket 연결 끊음 (처리 대기 메시지 %d건 초과): %s", WS_QUEUE_MAX, self.client_addr
                )
                self.dropConnection(abort=True)
            return
        super().onMessage(payload, isBinary)


def install() -> None:
    """daphne builds CappedWebRequest and CappedWebSocketProtocol from now on (this process)."""
    http_module: Any = http_protocol
    http_module.WebRequest = CappedWebRequest
    ws_factory: Any = ws_protocol.WebSocketFactory
    ws_factory.protocol = CappedWebSocketProtocol
