"""The ports tests give the servers they start (tests/ports.py)."""

from __future__ import annotations

import socket

import pytest

import tests.ports as ports
from tests.ports import LOW, ephemeral_low, free_port


def test_ports_come_from_below_the_ephemeral_range_are_free_and_never_repeat() -> None:
    ports = [free_port() for _ in range(50)]
    assert len(set(ports)) == len(ports)
    assert all(LOW <= port < min(25000, ephemeral_low()) for port in ports)
    for port in ports[:5]:
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", port))  # raises if the port was not free


def test_a_port_something_listens_on_is_never_handed_out(monkeypatch: pytest.MonkeyPatch) -> None:
    with socket.socket() as holder, socket.socket() as probe:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        probe.bind(("127.0.0.1", 0))
        held, free = holder.getsockname()[1], probe.getsockname()[1]
        probe.close()
        draws = iter([held, held, free])
        monkeypatch.setattr(ports.random.SystemRandom, "randrange", lambda self, a, b: next(draws))
        assert ports.free_port() == free
