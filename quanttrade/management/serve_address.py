"""Where ``manage.py serve`` listens by default (HOST, PORT) and the URL that reaches it from this
machine: ``seed_demo`` prints the addresses ``serve`` will actually answer on."""

from __future__ import annotations

import errno
import ipaddress
import os
import socket

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


def _ip_address(host: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    """``host`` as an IP address (an IPv6 one with or without brackets); None for a name."""
    try:
        return ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return None


def local_base_url(host: str, port: int) -> str:
    """The URL a browser on this machine uses for a server bound to ``host``:``port``. A
    wildcard bind (0.0.0.0, ::) is reached through the loopback address; IPv6 goes in brackets."""
    address = _ip_address(host)
    if address is None:
        return f"http://{host}:{port}"  # a host name
    if address.is_unspecified:
        address = ipaddress.ip_address("::1" if address.version == 6 else "127.0.0.1")
    shown = f"[{address}]" if address.version == 6 else str(address)
    return f"http://{shown}:{port}"


def ensure_can_listen(host: str, port: int) -> None:
    """Stop ``serve`` before it starts anything when HOST:PORT cannot be listened on (another
    process holds the port, the address is not this machine's): a clear message and exit status 1
    instead of a server that announces itself and then quits. The check binds as the ASGI servers
    do: an IPv6 socket for an IPv6 address, else IPv4 with the host resolved as given, and
    SO_REUSEADDR (a port a stopped server left in TIME_WAIT is free). The server binding the port
    itself a moment later still reports a port taken in between (``serve`` exits 1)."""
    address = _ip_address(host)
    # A name (localhost) is resolved to IPv4, as daphne and uvicorn do.
    family = socket.AF_INET6 if address is not None and address.version == 6 else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host if address is None else str(address), port))
        except socket.gaierror as exc:
            raise CommandError(f"cannot listen on {host}:{port}: unknown host ({exc.strerror})") from None
        except OSError as exc:
            hint = " (another process listens on it: stop it, or choose another --port / PORT)"
            if exc.errno != errno.EADDRINUSE:
                hint = ""
            raise CommandError(f"cannot listen on {host}:{port}: {exc.strerror}{hint}") from None
