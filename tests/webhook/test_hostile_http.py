"""Hostile HTTP around a webhook, through the product's ASGI application as a server hands it
over: every answer is the JSON envelope with a 4xx, and a body longer than a webhook may be is
not read (found by a review on the real servers, session 37)."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest
from asgiref.testing import ApplicationCommunicator

from orders.models import Order
from quanttrade.asgi import application
from tests.asgi_client import asgi_request, http_scope, read_answer
from tests.webhook.test_intake import spot

pytestmark = pytest.mark.django_db(transaction=True)

BAD_CONTENT_TYPES = [
    "application/json; charset*=bogus''utf-8",  # RFC 2231, a charset Python does not know
    "text/plain; a*0*=bogus''x; a*1=y",
]


@pytest.mark.parametrize("content_type", BAD_CONTENT_TYPES)
@pytest.mark.parametrize(("method", "path"), [("POST", "/api/webhook"), ("GET", "/api/prices"), ("GET", "/")])
def test_a_content_type_django_cannot_parse_is_a_json_400_on_every_path(
    make_strategy: Any, content_type: str, method: str, path: str
) -> None:
    make_strategy()
    body = json.dumps(spot()).encode() if method == "POST" else b""

    status, headers, answer = asgi_request(method, path, body, **{"content-type": content_type})

    assert status == 400
    assert headers["content-type"].startswith("application/json")
    assert answer["code"] == "bad_request" and answer["status"] == 400 and answer["error"]
    assert Order.objects.count() == 0


def test_a_webhook_from_a_host_not_allowed_gets_the_envelope_naming_the_host(make_strategy: Any) -> None:
    make_strategy()

    status, headers, answer = asgi_request(
        "POST",
        "/api/webhook",
        json.dumps(spot()).encode(),
        "evil.example",
        **{"content-type": "application/json"},
    )

    assert status == 400 and headers["content-type"].startswith("application/json")
    assert answer["code"] == "host_not_allowed" and "evil.example" in answer["error"]
    assert Order.objects.count() == 0


@pytest.mark.parametrize("path", ["/api/webhook//", "/api/webhook;x", "/api/nothing-here"])
def test_an_unknown_api_path_is_a_json_404(path: str) -> None:
    status, headers, answer = asgi_request("POST", path, b"{}", **{"content-type": "application/json"})

    assert status == 404 and headers["content-type"].startswith("application/json")
    assert (answer["code"], answer["status"]) == ("not_found", 404)


def test_an_unknown_page_keeps_the_html_404() -> None:
    status, headers, _ = asgi_request("GET", "/nothing-here/")
    assert status == 404 and headers["content-type"].startswith("text/html")


async def _answer_without_the_rest(
    headers: dict[str, str], chunks: list[bytes]
) -> tuple[int, dict[str, Any]]:
    """Send the chunks, each saying more follows, and never the rest: the answer must come."""
    communicator = ApplicationCommunicator(application, http_scope("POST", "/api/webhook", headers))
    for chunk in chunks:
        await communicator.send_input({"type": "http.request", "body": chunk, "more_body": True})
    start, content = await read_answer(communicator)  # the old path waited for the rest for ever
    return start["status"], json.loads(content)


def test_a_body_declared_longer_than_a_webhook_is_answered_413_unread(make_strategy: Any) -> None:
    make_strategy()
    headers = {"content-type": "application/json", "content-length": "3000000000"}

    status, answer = asyncio.run(_answer_without_the_rest(headers, [b"{" + b" " * 1000]))

    assert (status, answer["code"]) == (413, "payload_too_large")
    assert Order.objects.count() == 0


def test_a_chunked_body_is_read_no_further_than_a_webhook_may_be(make_strategy: Any, settings: Any) -> None:
    make_strategy()
    limit = settings.WEBHOOK_MAX_BODY_BYTES
    chunks = [b" " * 16384] * (limit // 16384 + 1)  # one chunk past the limit, and more to come

    status, answer = asyncio.run(_answer_without_the_rest({"content-type": "application/json"}, chunks))

    assert (status, answer["code"]) == (413, "payload_too_large")
    assert Order.objects.count() == 0


def test_a_chunked_webhook_within_the_limit_is_accepted(make_strategy: Any) -> None:
    make_strategy()
    body = json.dumps(spot(comment=" " * 60000)).encode()

    async def send() -> int:
        communicator = ApplicationCommunicator(
            application, http_scope("POST", "/api/webhook", {"content-type": "application/json"})
        )
        for start in range(0, len(body), 7000):
            part = body[start : start + 7000]
            await communicator.send_input(
                {"type": "http.request", "body": part, "more_body": start + 7000 < len(body)}
            )
        answer = await communicator.receive_output(10)
        await communicator.wait(10)
        return int(answer["status"])

    assert asyncio.run(send()) == 202
    assert Order.objects.count() == 1
