"""Where ``manage.py serve`` listens by default (HOST, PORT) and the URL that reaches it from this
machine: ``seed_demo`` prints the addresses ``serve`` will actually answer on."""

from __future__ import annotations

import ipaddress
import os

from django.core.management.base import CommandError

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8000


def serve_host() -> str:
    return os.environ.get("HOST", "").strip() or DEFAULT_HOST


def serve_port() -> int:
    """PORT as an int (1-65535); a malformed value stops the command with a clear message."""
    raw = os.environ.get("PORT", "").strip() or str(DEFAULT_PORT)
    try:
        port = int(raw)
    except ValueError:
        raise CommandError(f"PORT must be a port number (1-65535), not {raw!r}") from None
    if not 0 < port < 65536:
        raise CommandError(f"PORT must be a port number (1-65535), not {raw!r}")
    return port


def local_base_url(host: str, port: int) -> str:
    """The URL a browser on this machine uses for a server bound to ``host``:``port``. A
    wildcard bind (0.0.0.0, ::) is reached through the loopback address; IPv6 goes in brackets."""
    try:
        address = ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return f"http://{host}:{port}"  # a host name
    if address.is_unspecified:
        address = ipaddress.ip_address("::1" if address.version == 6 else "127.0.0.1")
    shown = f"[{address}]" if address.version == 6 else str(address)
    return f"http://{shown}:{port}"
