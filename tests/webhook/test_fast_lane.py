"""The webhook's fast lane (webhooks/middleware.py): a POST to /api/webhook skips the browser
middleware and DRF's wrapping, and answers exactly as the whole stack answers it."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest
from django.conf import settings
from django.http import HttpRequest, HttpResponseBase
from django.test import Client, override_settings
from django.urls import reverse

from orders.models import Order
from quanttrade.errors import ApiError
from tests.webhook.test_intake import spot
from webhooks import views as webhook_views
from webhooks.models import WebhookEvent
from webhooks.paths import WEBHOOK_PATHS

pytestmark = pytest.mark.django_db

LANE = "webhooks.middleware.WebhookFastLane"
SEEN: list[tuple[str, str]] = []


class Tracer:
    """A middleware after the fast lane: it records the requests that went down the stack."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponseBase]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponseBase:
        SEEN.append((request.method or "", request.path_info))
        return self.get_response(request)


def _stack(*, lane: bool) -> list[str]:
    stack = [name for name in settings.MIDDLEWARE if name != LANE]
    assert len(stack) == len(settings.MIDDLEWARE) - 1, "the fast lane is in the product's stack"
    if lane:
        stack.insert(settings.MIDDLEWARE.index(LANE), LANE)
    stack.insert(stack.index("django.contrib.sessions.middleware.SessionMiddleware"), f"{__name__}.Tracer")
    return stack


def _send(lane: bool, path: str, data: bytes | str, content_type: str, **headers: str) -> Any:
    with override_settings(MIDDLEWARE=_stack(lane=lane)):
        return Client().post(path, data=data, content_type=content_type, headers=headers)


IDS = {"webhook_id", "id", "order_id", "client_order_id", "received_at", "created_at"}


def _shape(value: Any) -> Any:
    """The answer without what differs from one webhook to the next (ids, times)."""
    if isinstance(value, dict):
        return {key: ("<id>" if key in IDS else _shape(item)) for key, item in value.items()}
    if isinstance(value, list):
        return [_shape(item) for item in value]
    return value


def _signal(**fields: Any) -> str:
    return json.dumps(spot(**fields))


CASES: list[tuple[str, str, str | bytes, str, dict[str, str], int]] = [
    ("accepted", "/api/webhook", _signal(), "application/json", {}, 202),
    ("accepted, trailing slash", "/api/webhook/", _signal(), "application/json", {}, 202),
    ("accepted, text/plain", "/api/webhook", _signal(), "text/plain; charset=utf-8", {}, 202),
    ("bad token", "/api/webhook", _signal(token="bad"), "application/json", {}, 401),
    (
        "bad token, English",
        "/api/webhook",
        _signal(token="bad"),
        "application/json",
        {"Accept-Language": "en"},
        401,
    ),
    ("not JSON", "/api/webhook", b"{not json", "application/json", {}, 400),
    ("not UTF-8", "/api/webhook", b'{"a": "\xff\xfe"}', "application/json", {"Accept-Language": "en"}, 400),
    ("invalid symbol", "/api/webhook", _signal(symbol="BTCUSDT"), "application/json", {}, 400),
    ("over 64 KiB", "/api/webhook", _signal(comment="x" * 70_000), "application/json", {}, 413),
]
HEADERS = ("Content-Type", "Content-Language", "Content-Length", "X-Frame-Options", "X-Content-Type-Options")


@pytest.mark.parametrize(
    ("path", "data", "content_type", "headers", "status"), [c[1:] for c in CASES], ids=[c[0] for c in CASES]
)
def test_the_fast_lane_answers_as_the_whole_stack_does(
    make_strategy: Any, path: str, data: str | bytes, content_type: str, headers: dict[str, str], status: int
) -> None:
    make_strategy()
    SEEN.clear()
    slow = _send(False, path, data, content_type, **headers)
    assert SEEN == [("POST", path)]  # the whole stack ran
    SEEN.clear()
    fast = _send(True, path, data, content_type, **headers)
    assert SEEN == []  # nothing after the fast lane ran
    assert fast.status_code == slow.status_code == status, (fast.content, slow.content)
    assert _shape(fast.json()) == _shape(slow.json())
    assert {h: fast.headers.get(h) for h in HEADERS} == {h: slow.headers.get(h) for h in HEADERS}
    assert "Accept-Language" in fast.headers["Vary"] and "Accept-Language" in slow.headers["Vary"]
    assert int(fast.headers["Content-Length"]) == len(fast.content)
    # Each lane's webhook was recorded the same way.
    events = list(WebhookEvent.objects.order_by("received_at"))
    if status == 413:  # refused before its body is read, in either lane: no event
        assert events == []
        return
    assert len(events) == 2
    assert (events[0].outcome, events[0].http_status) == (events[1].outcome, events[1].http_status) != ("", 0)
    assert Order.objects.filter(webhook=events[0]).count() == Order.objects.filter(webhook=events[1]).count()


def test_the_language_is_chosen_per_request(make_strategy: Any) -> None:
    """The fast lane activates the request's language on its thread for every request, as
    LocaleMiddleware does: an English answer does not leak into the next request's."""
    make_strategy()
    client = Client()
    english = client.post(
        "/api/webhook",
        data=_signal(token="bad"),
        content_type="application/json",
        headers={"Accept-Language": "en"},
    )
    korean = client.post("/api/webhook", data=_signal(token="bad"), content_type="application/json")
    assert english.json()["error"] == "The webhook token is invalid"
    assert (english.headers["Content-Language"], korean.headers["Content-Language"]) == ("en", "ko")
    assert korean.json()["error"] != english.json()["error"]
    assert korean.json()["error"].isascii() is False


@pytest.mark.parametrize("method", ["get", "put", "delete"])
def test_other_methods_go_down_the_whole_stack(make_strategy: Any, method: str) -> None:
    make_strategy()
    SEEN.clear()
    with override_settings(MIDDLEWARE=_stack(lane=True)):
        response = getattr(Client(), method)("/api/webhook")
    assert response.status_code == 405
    assert SEEN == [(method.upper(), "/api/webhook")]
    assert not WebhookEvent.objects.exists()


@pytest.mark.parametrize(
    "error", [RuntimeError("boom"), ApiError("refused here", code="x_refused", status=409)]
)
def test_an_error_the_view_raises_gets_the_same_envelope_in_both_lanes(
    make_strategy: Any, monkeypatch: pytest.MonkeyPatch, error: Exception
) -> None:
    """DRF's exception handler answered an exception with the JSON envelope; the fast lane does too
    (never Django's HTML error page)."""
    make_strategy()

    def raising(*args: Any, **kwargs: Any) -> Any:
        raise error

    monkeypatch.setattr(webhook_views, "webhook_ingest", raising)
    answers = [_send(lane, "/api/webhook", _signal(), "application/json") for lane in (False, True)]
    expected = (
        (409, {"error": "refused here", "status": 409, "code": "x_refused"})
        if isinstance(error, ApiError)
        else (500, {"error": "서버 내부 오류입니다.", "status": 500, "code": "internal_error"})
    )
    for answer in answers:
        assert (answer.status_code, answer.json()) == expected
        assert answer.headers["Content-Type"] == "application/json"


def test_the_product_stack_has_the_lane_right_after_the_security_middleware() -> None:
    """Its HTTPS redirect and security headers apply to webhooks too; nothing else runs first;
    and the lane's paths are the URLconf's webhook routes."""
    assert settings.MIDDLEWARE[:2] == ["django.middleware.security.SecurityMiddleware", LANE]
    assert {reverse("webhook"), reverse("webhook-slash")} == WEBHOOK_PATHS


def test_a_host_not_allowed_is_refused_in_both_lanes(make_strategy: Any) -> None:
    """ALLOWED_HOSTS holds for webhooks too (CommonMiddleware reads the host in either lane):
    a signal sent with a foreign Host header is refused before the intake and stores nothing."""
    make_strategy()
    for lane in (False, True):
        with override_settings(MIDDLEWARE=_stack(lane=lane)):
            response = Client().post(
                "/api/webhook", data=_signal(), content_type="application/json", HTTP_HOST="evil.example"
            )
        assert response.status_code == 400
    assert not WebhookEvent.objects.exists() and not Order.objects.exists()
