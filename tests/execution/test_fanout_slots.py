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
def _auto(settings: Any, no_heartbeat_thread: None) -> Iterator[None]:
    settings.ORDER_FANOUT_TASKS = None  # "auto", whatever the environment of the run says
    # (no_heartbeat_thread: nothing announces the slots behind the tests' backs)
    liveness.order_slots_forget()
    yield
    liveness.order_slots_forget()


def ready(concurrency: int, max_concurrency: int | None = None) -> None:
    """Celery's ``worker_ready`` as it reaches the handler: the consumer, whose controller is the
    WorkController (see test_the_handler_reads_a_real_work_controller)."""
    controller = SimpleNamespace(concurrency=concurrency, max_concurrency=max_concurrency)
    _announce_order_slots(sender=SimpleNamespace(controller=controller))


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


def test_the_record_is_read_at_most_every_few_seconds(monkeypatch: pytest.MonkeyPatch) -> None:
    """On the webhook's request path the record costs two cache reads per SLOTS_READ_SECONDS,
    not per fan-out: a change shows once the memo is older than that."""
    now = [1000.0]
    monkeypatch.setattr(liveness, "_clock", lambda: now[0])
    other_worker("host-a:11", 8)
    assert liveness.order_slots() == 8
    other_worker("host-b:12", 8)
    now[0] += liveness.SLOTS_READ_SECONDS - 0.01
    assert liveness.order_slots() == 8  # the memo
    now[0] += 0.01
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
    ready(6)
    record = cache.get(liveness._SLOTS_KEY)
    # Listed with its pool's concurrency; the dead entry it found is dropped as it writes.
    assert record == {"host-a:11": 8, liveness.worker_id(): 6}
    assert cache.get(liveness._heartbeat_key(liveness.worker_id())) == 1  # it beats
    assert liveness.order_slots() == 14
    _withdraw_order_slots()
    assert cache.get(liveness._SLOTS_KEY) == {"host-a:11": 8}
    liveness.beat()  # a beat after the withdrawal does not list it again
    assert cache.get(liveness._SLOTS_KEY) == {"host-a:11": 8}


def test_an_autoscaled_worker_announces_the_most_it_grows_to() -> None:
    ready(2, max_concurrency=10)
    assert cache.get(liveness._SLOTS_KEY) == {liveness.worker_id(): 10}


def test_the_handler_reads_a_real_work_controller() -> None:
    """What Celery 5.7 hands the handler: ``worker_ready`` is sent with the consumer, whose
    ``controller`` is the WorkController, its concurrency resolved to a number ("auto" too)."""
    from celery.worker import WorkController

    from quanttrade.celery import app

    for given in (3, "auto"):
        worker = WorkController(app=app, pool_cls="threads", concurrency=given)
        # "auto": what this machine allows (its CPUs, affinity and cgroup quota), as a number.
        assert isinstance(worker.concurrency, int) and worker.concurrency >= 1
        assert worker.concurrency == 3 or given == "auto"
        assert worker.max_concurrency is None
        _announce_order_slots(sender=SimpleNamespace(controller=worker))
        assert cache.get(liveness._SLOTS_KEY) == {liveness.worker_id(): worker.concurrency}
    scaled = WorkController(app=app, pool_cls="threads", autoscale="10,2")
    _announce_order_slots(sender=SimpleNamespace(controller=scaled))
    assert cache.get(liveness._SLOTS_KEY) == {liveness.worker_id(): 10}


def test_a_worker_dropped_from_the_record_is_listed_again_at_its_next_beat() -> None:
    """Two workers writing the record at once may drop one: its next beat lists it again."""
    ready(6)
    cache.set(liveness._SLOTS_KEY, {"host-a:11": 8}, timeout=None)  # the other's write won
    other_worker("host-a:11", 8)
    liveness.beat()
    assert cache.get(liveness._SLOTS_KEY) == {"host-a:11": 8, liveness.worker_id(): 6}


def test_a_forked_child_does_not_announce_its_parents_slots() -> None:
    """A prefork child inherits what its parent announced; only the parent (the pid that
    announced) lists it."""
    liveness._own_slots = (liveness.os.getpid() + 1, 6)  # announced by the parent, before the fork
    liveness.beat()
    assert cache.get(liveness._SLOTS_KEY) is None


def test_the_cache_failing_mid_write_leaves_the_record_alone(monkeypatch: pytest.MonkeyPatch) -> None:
    """A record that could not be read in full is never written over (that would drop the
    other workers); the next beat tries again."""
    other_worker("host-a:11", 8)
    ready(6)
    liveness._own_slots = (liveness.os.getpid(), 7)  # a change to write

    def down(*_: Any, **__: Any) -> Any:
        raise ConnectionError("cache down")

    for failing in ("get", "get_many"):
        written: list[str] = []
        with monkeypatch.context() as patch:
            patch.setattr(cache, failing, down)
            patch.setattr(cache, "set", lambda key, *_, seen=written, **__: seen.append(key))
            liveness.beat()
            if failing == "get":
                _withdraw_order_slots()
                liveness._own_slots = (liveness.os.getpid(), 7)
        assert liveness._SLOTS_KEY not in written, failing
    assert cache.get(liveness._SLOTS_KEY) == {"host-a:11": 8, liveness.worker_id(): 6}
    liveness.beat()  # the cache is back
    assert cache.get(liveness._SLOTS_KEY) == {"host-a:11": 8, liveness.worker_id(): 7}


def test_a_sender_without_a_pool_announces_nothing(caplog: pytest.LogCaptureFixture) -> None:
    _announce_order_slots(sender=None)
    assert cache.get(liveness._SLOTS_KEY) is None
    assert "ORDER_FANOUT_TASKS" in caplog.text


def test_a_forked_child_names_itself_not_its_parent() -> None:
    """``worker_id`` is worked out once per process: a prefork child inherits the parent's
    answer, and still names itself by its own pid in its claims and heartbeats."""
    import os
    import socket

    parent = liveness.worker_id()
    assert parent == f"{socket.gethostname()}:{os.getpid()}"
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: answer through the pipe, never return into pytest
        try:
            os.write(write, liveness.worker_id().encode())
        finally:
            os._exit(0)
    os.close(write)
    child = os.read(read, 200).decode()
    os.close(read)
    os.waitpid(pid, 0)
    assert child == f"{socket.gethostname()}:{pid}"
    assert liveness.worker_id() == parent
