"""A webhook through the ASGI application runs on the process's kept webhook threads
(quanttrade.asgi.SyncChainASGIHandler): one hop to a thread of the pool instead of Django's new
thread per request, answering as Django's path answers, and leaving nothing behind on the
thread (its language, its database connections)."""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import Iterator
from typing import Any

import pytest
from asgiref.testing import ApplicationCommunicator
from django.core import signals
from django.db import connections

from orders.models import Order
from quanttrade.asgi import SyncChainASGIHandler, application
from tests.asgi_client import asgi_request, http_scope
from tests.forked import holds_in_a_forked_child
from tests.webhook.test_intake import spot
from webhooks.models import WebhookEvent

pytestmark = pytest.mark.django_db(transaction=True)


def signal(**fields: Any) -> bytes:
    return json.dumps(spot(**fields)).encode()


@pytest.fixture
def one_thread(settings: Any) -> Iterator[None]:
    """A webhook pool of this test's own, with one thread."""
    settings.WEBHOOK_THREADS = 1
    saved = SyncChainASGIHandler._pool
    SyncChainASGIHandler._pool = None
    yield
    pool = SyncChainASGIHandler._pool
    SyncChainASGIHandler._pool = saved
    if pool is not None:
        pool.shutdown(wait=True)


@pytest.fixture
def threads_seen() -> Iterator[list[tuple[str, int]]]:
    """The thread (name, ident) each request began on, as Django's request_started tells it."""
    seen: list[tuple[str, int]] = []

    def record(**_: Any) -> None:
        seen.append((threading.current_thread().name, threading.get_ident()))

    signals.request_started.connect(record, dispatch_uid="test-webhook-threads")
    yield seen
    signals.request_started.disconnect(dispatch_uid="test-webhook-threads")


def test_webhooks_run_on_the_kept_webhook_threads(
    make_strategy: Any, one_thread: None, threads_seen: list[tuple[str, int]]
) -> None:
    make_strategy()
    for path in ("/api/webhook", "/api/webhook/", "/api/webhook"):
        status, _, body = asgi_request("POST", path, signal(), **{"content-type": "application/json"})
        assert (status, body["status"]) == (202, "queued")
    asgi_request("GET", "/accounts/login/")
    asgi_request("GET", "/api/webhook")
    webhooks, pages = threads_seen[:3], threads_seen[3:]
    assert all(name.startswith("webhook") for name, _ in webhooks), threads_seen
    assert len(set(webhooks)) == 1  # the same kept thread each time
    # Anything else goes Django's way: a new thread per request, none of the pool's.
    assert len(pages) == 2 and not any(name.startswith("webhook") for name, _ in pages), threads_seen
    # (A new thread's name is new; its ident may be an ended thread's again.)
    assert len({name for name, _ in pages}) == 2
    assert Order.objects.count() == 3


def test_a_webhook_on_the_pool_answers_as_the_whole_stack_does(make_strategy: Any) -> None:
    make_strategy()
    status, headers, body = asgi_request(
        "POST", "/api/webhook", signal(), **{"content-type": "application/json"}
    )
    assert status == 202 and body["status"] == "queued" and len(body["orders"]) == 1
    assert headers["x-frame-options"] == "DENY" and headers["x-content-type-options"] == "nosniff"
    assert headers["content-language"] == "ko" and "Accept-Language" in headers["vary"]
    event = WebhookEvent.objects.get(pk=body["webhook_id"])
    assert event.http_status == 202 and Order.objects.filter(webhook=event).count() == 1
    # A refusal: the JSON envelope, in the request's language.
    status, headers, body = asgi_request(
        "POST",
        "/api/webhook",
        signal(token="bad"),
        **{"content-type": "application/json", "accept-language": "en"},
    )
    assert (status, body["error"], headers["content-language"]) == (401, "The webhook token is invalid", "en")
    status, _, body = asgi_request(
        "POST", "/api/webhook", b"{not json", **{"content-type": "application/json"}
    )
    assert status == 400 and body["status"] == 400
    # A foreign host is refused before the intake, as everywhere (ALLOWED_HOSTS).
    status, _, _ = asgi_request(
        "POST", "/api/webhook", signal(), "evil.example", **{"content-type": "application/json"}
    )
    assert status == 400
    assert WebhookEvent.objects.count() == 3


def test_nothing_a_webhook_set_on_its_thread_outlives_it(
    make_strategy: Any, one_thread: None, threads_seen: list[tuple[str, int]]
) -> None:
    """One thread answers every webhook: an English answer does not leak into the next one's
    language, and the thread's database connection is closed (or given back to the pool) at
    each request's end, as Django's request_finished does on its own path."""
    make_strategy()
    english = asgi_request(
        "POST",
        "/api/webhook",
        signal(token="bad"),
        **{"content-type": "application/json", "accept-language": "en"},
    )
    korean = asgi_request("POST", "/api/webhook", signal(token="bad"), **{"content-type": "application/json"})
    assert (english[1]["content-language"], korean[1]["content-language"]) == ("en", "ko")
    assert english[2]["error"] != korean[2]["error"] and not korean[2]["error"].isascii()
    asgi_request("POST", "/api/webhook", signal(), **{"content-type": "application/json"})
    pool = SyncChainASGIHandler.webhook_pool()
    ran_on = pool.submit(lambda: (threading.get_ident(), connections["default"].connection is None))
    ident, closed = ran_on.result(10)
    assert {i for _, i in threads_seen} == {ident} and closed


def test_a_client_gone_before_its_body_arrived_leaves_nothing(make_strategy: Any) -> None:
    make_strategy()

    async def leave() -> None:
        communicator = ApplicationCommunicator(application, http_scope("POST", "/api/webhook", {}))
        await communicator.send_input({"type": "http.request", "body": signal()[:10], "more_body": True})
        await communicator.send_input({"type": "http.disconnect"})
        await communicator.wait(10)
        assert await communicator.receive_nothing()

    asyncio.run(leave())
    assert not WebhookEvent.objects.exists()


def test_a_forked_process_makes_its_own_pool() -> None:
    """A forked child (gunicorn's workers after --preload) has none of its parent's threads: its
    first webhook gets a pool of its own, whose thread runs."""
    parent = SyncChainASGIHandler.webhook_pool()
    assert parent.submit(lambda: 1).result(10) == 1  # the parent's pool has a thread

    def own_pool_runs() -> bool:
        child = SyncChainASGIHandler.webhook_pool()
        return child is not parent and child.submit(lambda: 42).result(10) == 42

    assert holds_in_a_forked_child(own_pool_runs)
    assert SyncChainASGIHandler.webhook_pool() is parent
