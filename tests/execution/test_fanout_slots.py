"""How many tasks a fan-out is cut into: ORDER_FANOUT_TASKS, or with "auto" (the default) the
order slots the live workers announce (orders.liveness.announce_slots / order_slots). The
real worker process announcing and withdrawing itself is in tests/chaos/test_outages.py."""

from __future__ import annotations

from collections.abc import Iterator
from types import SimpleNamespace
from typing import Any

import pytest
from django.core.cache import cache

from orders import liveness
from orders.services import FANOUT_TASKS_UNKNOWN, fan_out_chunk, fan_out_tasks
from orders.tasks import _announce_order_slots, _withdraw_order_slots


@pytest.fixture(autouse=True)
def _auto(settings: Any) -> Iterator[None]:
    settings.ORDER_FANOUT_TASKS = None  # "auto", whatever the environment of the run says
    liveness.order_slots_forget()
    yield
    liveness.order_slots_forget()


def other_worker(name: str, slots: int, *, alive: bool = True) -> str:
    """Another worker process's entry in the shared record (and its heartbeat when alive)."""
    record = cache.get(liveness._SLOTS_KEY) or {}
    cache.set(liveness._SLOTS_KEY, {**record, name: slots}, timeout=None)
    if alive:
        cache.set(liveness._heartbeat_key(name), 1, timeout=liveness.HEARTBEAT_TTL)
    return name


def test_with_no_worker_known_a_fan_out_is_cut_as_before() -> None:
    assert liveness.order_slots() == 0
    assert fan_out_tasks() == FANOUT_TASKS_UNKNOWN == 64
    assert fan_out_chunk(100) == 2


def test_the_live_workers_slots_are_added_up_and_cut_the_fan_out() -> None:
    other_worker("host-a:11", 8)
    other_worker("host-b:12", 8)
    assert liveness.order_slots() == 16
    assert fan_out_tasks() == 16
    # 100 accounts in at most 16 tasks: chunks of 7 (64 tasks cut them in chunks of 2).
    assert [fan_out_chunk(n) for n in (1, 10, 16, 17, 100, 1000)] == [1, 1, 1, 2, 7, 63]


def test_a_worker_whose_heartbeat_stopped_is_not_counted() -> None:
    other_worker("host-a:11", 8)
    other_worker("host-b:12", 4, alive=False)  # killed: its heartbeat expired
    assert liveness.order_slots() == 8


def test_a_fixed_number_wins_over_the_announced_slots(settings: Any) -> None:
    other_worker("host-a:11", 8)
    settings.ORDER_FANOUT_TASKS = 3
    assert fan_out_tasks() == 3
    assert [fan_out_chunk(n) for n in (1, 3, 4, 7)] == [1, 1, 2, 3]


def test_the_record_is_read_at_most_every_few_seconds() -> None:
    """On the webhook's request path the record costs two cache reads per SLOTS_READ_SECONDS,
    not per fan-out: a change shows once the memo is older than that."""
    other_worker("host-a:11", 8)
    assert liveness.order_slots() == 8
    other_worker("host-b:12", 8)
    assert liveness.order_slots() == 8  # the memo
    liveness._slots_read = (liveness._slots_read[0] - liveness.SLOTS_READ_SECONDS, 8)
    assert liveness.order_slots() == 16


def test_the_cache_away_means_unknown(monkeypatch: pytest.MonkeyPatch) -> None:
    other_worker("host-a:11", 8)

    def down(*_: Any, **__: Any) -> Any:
        raise ConnectionError("cache down")

    monkeypatch.setattr(cache, "get", down)
    assert liveness.order_slots() == 0
    assert fan_out_tasks() == FANOUT_TASKS_UNKNOWN


def test_a_worker_announces_its_concurrency_when_ready_and_withdraws_it_when_it_stops() -> None:
    other_worker("host-a:11", 8)
    other_worker("host-gone:13", 4, alive=False)
    _announce_order_slots(sender=SimpleNamespace(controller=SimpleNamespace(concurrency=6)))
    record = cache.get(liveness._SLOTS_KEY)
    # Listed with its pool's concurrency; the dead entry it found is dropped as it writes.
    assert record == {"host-a:11": 8, liveness.worker_id(): 6}
    assert cache.get(liveness._heartbeat_key(liveness.worker_id())) == 1  # it beats
    assert liveness.order_slots() == 14
    _withdraw_order_slots()
    assert cache.get(liveness._SLOTS_KEY) == {"host-a:11": 8}
    liveness.beat()  # a beat after the withdrawal does not list it again
    assert cache.get(liveness._SLOTS_KEY) == {"host-a:11": 8}


def test_a_worker_dropped_from_the_record_is_listed_again_at_its_next_beat() -> None:
    """Two workers writing the record at once may drop one: its next beat lists it again."""
    _announce_order_slots(sender=SimpleNamespace(controller=SimpleNamespace(concurrency=6)))
    try:
        cache.set(liveness._SLOTS_KEY, {"host-a:11": 8}, timeout=None)  # the other's write won
        other_worker("host-a:11", 8)
        liveness.beat()
        assert cache.get(liveness._SLOTS_KEY) == {"host-a:11": 8, liveness.worker_id(): 6}
    finally:
        _withdraw_order_slots()


def test_a_forked_child_does_not_announce_its_parents_slots() -> None:
    """A prefork child inherits what its parent announced; only the parent (the pid that
    announced) lists it."""
    liveness._own_slots = (liveness.os.getpid() + 1, 6)  # announced by the parent, before the fork
    liveness.beat()
    assert cache.get(liveness._SLOTS_KEY) is None


def test_a_sender_without_a_pool_announces_nothing() -> None:
    _announce_order_slots(sender=None)
    assert cache.get(liveness._SLOTS_KEY) is None
