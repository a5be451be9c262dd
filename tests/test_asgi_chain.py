"""The HTTP application runs Django's middleware chain and the view in one thread hop
(quanttrade.asgi.SyncChainASGIHandler): the chain is synchronous, and a request through the
ASGI application still passes every middleware."""

from __future__ import annotations

import asyncio

import pytest

from tests.asgi_client import asgi_request


def test_the_middleware_chain_is_built_synchronous() -> None:
    from quanttrade.asgi import SyncChainASGIHandler, django_asgi_app

    assert isinstance(django_asgi_app, SyncChainASGIHandler)
    assert not asyncio.iscoroutinefunction(django_asgi_app._middleware_chain)


@pytest.mark.django_db(transaction=True)
def test_a_request_through_the_asgi_application_passes_the_middleware() -> None:
    status, headers, _ = asgi_request("GET", "/accounts/login/")
    assert status == 200
    assert headers["x-frame-options"] == "DENY"  # XFrameOptionsMiddleware
    assert "csrftoken" in headers.get("set-cookie", "")  # CsrfViewMiddleware on the login form
    status, _, _ = asgi_request("GET", "/api/webhook")
    assert status == 405  # the webhook view itself answered (GET is not allowed)
