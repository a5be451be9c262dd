"""daphne's HTTP request with a body limit (HTTP_MAX_BODY_BYTES).

daphne (through twisted.web) receives a request's whole body before the application sees any
of it, into a temporary file, then hands the application every chunk at once, in memory: a
client that sends gigabytes fills the disk and then the memory of the one embedded process,
whatever the application does (uvicorn hands the body over as it arrives, and
``quanttrade.asgi`` stops reading it at the limit). daphne has no setting for it. This request
keeps nothing past the limit and answers 413 with the JSON envelope once the body has arrived.
``install`` makes daphne's HTTP factory build it (the factory reads the class from its module at
every connection)."""

from __future__ import annotations

import json
from typing import Any

from daphne import http_protocol
from django.conf import settings
from django.utils.translation import gettext as _

from quanttrade.errors import ApiError


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
        error = ApiError(_("The request body is too large"), code="payload_too_large", status=413)
        body = json.dumps(error.envelope(), ensure_ascii=False).encode()
        self.setResponseCode(413, b"Request Entity Too Large")
        self.responseHeaders.setRawHeaders(b"Content-Type", [b"application/json"])
        self.responseHeaders.setRawHeaders(b"Content-Length", [str(len(body)).encode()])
        self.write(body)
        self.finish()


def install() -> None:
    """daphne builds CappedWebRequest for every request from now on (this process)."""
    module: Any = http_protocol
    module.WebRequest = CappedWebRequest
