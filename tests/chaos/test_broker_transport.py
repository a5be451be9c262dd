"""Issue #11, finding 2: the worker died when Redis dropped with tasks in flight.

The kombu sequence (quanttrade/broker.py has it with file:line): the consumer's connection is
collected first (``transport.client = None``), then the task channel is closed, and restoring
its unacknowledged messages rebuilt a Redis pool from the client-less transport:
``AttributeError: 'NoneType' object has no attribute 'hostname'``, which nothing catches. With
``quanttrade.broker.Transport`` the same close reports a lost connection, which the worker's
``ignore_errors`` swallows before it reconnects."""

from __future__ import annotations

import contextlib
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from kombu import Connection
from kombu.common import ignore_errors

from tests.chaos.harness import available
from tests.ports import free_port

pytestmark = pytest.mark.chaos


@pytest.fixture
def redis_port(tmp_path: Path) -> Iterator[int]:
    reason = available()
    if reason:
        pytest.skip(reason)
    port = free_port()
    proc = subprocess.Popen(
        ["redis-server", "--bind", "127.0.0.1", "--port", str(port), "--save", "", "--dir", str(tmp_path)],
        stdout=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        deadline = time.monotonic() + 10
        while (
            subprocess.run(
                ["redis-cli", "-p", str(port), "ping"], capture_output=True, text=True, check=False
            ).stdout.strip()
            != "PONG"
        ):
            assert time.monotonic() < deadline, "redis-server did not start"
            time.sleep(0.05)
        yield port
    finally:
        proc.kill()
        proc.wait(10)


def _close_after_broker_loss(port: int, transport: str | None) -> None:
    """Deliver messages without acknowledging them (tasks in flight), lose Redis, then close as
    Celery's consumer does: collect the connection (Consumer.on_connection_error_after_connected),
    then shut the task consumer's channel down (Tasks.shutdown), each under ``ignore_errors``."""
    conn = Connection(f"redis://127.0.0.1:{port}/0", transport=transport)
    channels = [conn.channel(), conn.channel()]
    for index, channel in enumerate(channels):
        queue = conn.SimpleQueue(f"inflight{index}", channel=channel)
        queue.put({"task": index})
        assert not queue.get(timeout=5).acknowledged
    subprocess.run(["redis-cli", "-p", str(port), "shutdown", "nosave"], capture_output=True, check=False)
    with contextlib.suppress(Exception):
        # close_connection closes the channels last first; the first one that cannot reach
        # Redis ends the loop, and the collect then drops the transport's client all the same.
        conn.collect(socket_timeout=0.1)
    channel = channels[0]
    ignore_errors(conn, channel.close)  # a first try: the lost connection, ignored
    ignore_errors(conn, channel.close)  # the bootstep's: kombu alone now needs client.hostname


def test_kombu_alone_crashes_closing_a_channel_with_unacked_messages(redis_port: int) -> None:
    """The upstream behaviour this fixes (if a kombu release fixes it, this test says so)."""
    with pytest.raises(AttributeError, match="hostname"):
        _close_after_broker_loss(redis_port, None)


def test_quanttrade_transport_turns_it_into_an_ignored_connection_error(redis_port: int) -> None:
    _close_after_broker_loss(redis_port, "quanttrade.broker:Transport")


def test_a_channel_publishes_through_one_client_per_pool(redis_port: int) -> None:
    """kombu built a redis.Redis per publish (a third of a publish's CPU); the channel keeps one
    per connection pool, and a new one once a closed connection dropped the pool."""
    conn = Connection(f"redis://127.0.0.1:{redis_port}/0", transport="quanttrade.broker:Transport")
    try:
        channel = conn.channel()
        queue = conn.SimpleQueue("one-client", channel=channel)
        queue.put({"n": 1})
        first = channel._create_client()
        queue.put({"n": 2})
        assert channel._create_client() is first
        channel._disconnect_pools()  # what a closed channel does with its pools
        queue.put({"n": 3})
        assert channel._create_client() is not first
        assert [queue.get(timeout=5).payload["n"] for _ in range(3)] == [1, 2, 3]
    finally:
        conn.release()
