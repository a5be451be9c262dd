"""seed_demo prints the URLs `manage.py serve` will answer on: PUBLIC_BASE_URL when set, else
the HOST/PORT serve binds (a wildcard bind reached through loopback)."""

from __future__ import annotations

import io
import json
import socket
from typing import Any

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from quanttrade.management.commands.serve import Command as ServeCommand
from quanttrade.management.serve_address import ensure_can_listen, local_base_url
from tests.ports import free_port

pytestmark = pytest.mark.django_db


def seed(*args: str) -> dict[str, Any]:
    out = io.StringIO()
    call_command("seed_demo", "--json", "--no-daily", *args, stdout=out)
    return json.loads(out.getvalue())


@pytest.fixture(autouse=True)
def _no_public_url(settings: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    settings.PUBLIC_BASE_URL = ""
    monkeypatch.delenv("HOST", raising=False)
    monkeypatch.delenv("PORT", raising=False)


def test_default_is_the_default_serve_address() -> None:
    assert seed()["base_url"] == "http://127.0.0.1:8000"


@pytest.mark.parametrize(
    ("host", "port", "expected"),
    [
        ("127.0.0.1", "9100", "http://127.0.0.1:9100"),
        ("0.0.0.0", "8080", "http://127.0.0.1:8080"),
        ("::", "8080", "http://[::1]:8080"),
        ("192.168.0.7", "8000", "http://192.168.0.7:8000"),
        ("trade.local", "8000", "http://trade.local:8000"),
    ],
)
def test_host_and_port_are_the_ones_serve_binds(
    monkeypatch: pytest.MonkeyPatch, host: str, port: str, expected: str
) -> None:
    monkeypatch.setenv("HOST", host)
    monkeypatch.setenv("PORT", port)

    result = seed()

    assert result["base_url"] == expected
    assert {s["webhook_url"] for s in result["strategies"]} == {expected + "/api/webhook"}
    serve = ServeCommand().create_parser("manage.py", "serve").parse_args([])
    assert local_base_url(serve.host, serve.port) == expected


def test_public_base_url_wins_over_host_and_port(settings: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PORT", "9100")
    settings.PUBLIC_BASE_URL = "https://trade.example.com/"
    assert seed()["base_url"] == "https://trade.example.com"


def test_base_url_option_wins_over_everything(settings: Any) -> None:
    settings.PUBLIC_BASE_URL = "https://trade.example.com"
    assert seed("--base-url", "http://10.0.0.2:7000")["base_url"] == "http://10.0.0.2:7000"


def test_the_text_output_names_the_dashboard_and_webhook_urls(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PORT", "9100")
    out = io.StringIO()
    call_command("seed_demo", "--no-daily", stdout=out)
    text = out.getvalue()
    assert "http://127.0.0.1:9100/\n" in text
    assert "http://127.0.0.1:9100/admin/" in text
    assert "http://127.0.0.1:9100/api/webhook" in text
    assert "127.0.0.1:8000" not in text


def test_a_malformed_port_is_a_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PORT", "80a")
    with pytest.raises(CommandError, match="PORT must be a port number"):
        seed()


def _ipv6_loopback() -> bool:
    try:
        with socket.socket(socket.AF_INET6) as probe:
            probe.bind(("::1", 0))
    except OSError:
        return False
    return True


IPV6 = pytest.mark.skipif(not _ipv6_loopback(), reason="this machine has no IPv6 loopback")


@pytest.mark.parametrize("host", ["127.0.0.1", "localhost", "0.0.0.0", pytest.param("[::1]", marks=IPV6)])
def test_serve_s_check_passes_a_free_port_on_every_form_of_host(host: str) -> None:
    ensure_can_listen(host, free_port())  # raises CommandError when it would refuse


@pytest.mark.parametrize(
    ("host", "taken", "says"),
    [
        ("127.0.0.1", True, "Address already in use (another process listens on it"),
        ("localhost", True, "Address already in use (another process listens on it"),
        ("0.0.0.0", True, "Address already in use (another process listens on it"),
        ("no-such-host.invalid", False, "unknown host"),
        ("192.0.2.1", False, "Cannot assign requested address"),  # TEST-NET-1: not this machine's
    ],
)
def test_serve_s_check_refuses_an_address_it_cannot_listen_on(host: str, taken: bool, says: str) -> None:
    port = free_port()
    with socket.socket() as holder:
        if taken:
            holder.bind(("127.0.0.1", port))
            holder.listen()
        with pytest.raises(CommandError) as refused:
            ensure_can_listen(host, port)
    assert str(refused.value).startswith(f"cannot listen on {host}:{port}: {says}")
