"""Loopback ports for the servers tests start in child processes.

A test that starts a server in another process must name its port before the server binds it.
Asking the kernel for a free one (bind to port 0, close, hand the number on) picks it from the
ephemeral range, the same range the kernel gives every outgoing connection its local port from:
on a busy machine (the suite's workers, CI's smoke test and pinned tests beside it) an outgoing
connection can take that port in the second before the server binds it, and the server dies with
"Address already in use" (CI failed so on 2026-12-05). Ports are therefore drawn at random below
the ephemeral range, where the kernel never hands one out by itself, and probed before they are
returned; a process never hands out the same port twice. Only another process drawing the same
port within that second can still collide (about one in five thousand per pair of draws).
"""

from __future__ import annotations

import random
import socket
import threading

# CI's own services prefer 25432 (PostgreSQL), 26379 (Redis) and 28000 (the smoke test's server):
# below LOW and above HIGH.
LOW, HIGH = 20000, 25000
_handed: set[int] = set()
_lock = threading.Lock()


def ephemeral_low() -> int:
    """The first port of the kernel's ephemeral range (32768 where it cannot be read)."""
    try:
        with open("/proc/sys/net/ipv4/ip_local_port_range", encoding="ascii") as fh:
            return int(fh.read().split()[0])
    except (OSError, ValueError, IndexError):
        return 32768


def bindable(port: int) -> bool:
    with socket.socket() as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True


def free_port() -> int:
    """A loopback port nothing listens on, outside the ephemeral range, new to this process."""
    high = min(HIGH, ephemeral_low())
    if high - LOW < 1000:  # a machine whose ephemeral range starts low: nothing is outside it
        high = HIGH
    rng = random.SystemRandom()
    with _lock:
        for _ in range(200):
            port = rng.randrange(LOW, high)
            if port not in _handed and bindable(port):
                _handed.add(port)
                return port
    raise RuntimeError(f"no free loopback port in {LOW}..{high - 1}")
