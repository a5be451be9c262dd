"""Which worker process holds a `submitted` order, and whether that process is alive.

A worker killed mid-order (kill -9, OOM, power) leaves its orders `submitted`. Judged by age
alone the sweep must wait long enough for the slowest live venue call (minutes); with a
heartbeat it can tell a dead holder at once. Each worker process refreshes a short-lived key
in the shared cache (Redis in distributed mode) every HEARTBEAT_SECONDS; a claim records the
holder next to the order. The sweep reconciles an order whose holder's heartbeat is gone.
Any cache trouble means "unknown": the sweep then falls back to the order's age.
"""

from __future__ import annotations

import contextlib
import logging
import os
import socket
import threading
import time
from collections.abc import Iterator
from typing import Any
from uuid import UUID

from django.core.cache import cache

from orders.exchanges.base import AttemptTakenBack
from quanttrade.cache import add_each, set_each, store_keys_matching, store_run_id

log = logging.getLogger("quanttrade.orders")

HEARTBEAT_SECONDS = 3.0
HEARTBEAT_TTL = 10  # a holder silent this long is dead
CLAIM_TTL = 6 * 3600

_started: dict[int, threading.Event] = {}
_lock = threading.Lock()


_worker_ids: dict[int, str] = {}


def worker_id() -> str:
    """This process, as it names itself in claims and heartbeats (pid: not inherited by a fork).
    Worked out once per process: an order asks for it several times."""
    pid = os.getpid()
    name = _worker_ids.get(pid)
    if name is None:
        name = _worker_ids[pid] = f"{socket.gethostname()}:{pid}"
    return name


def _heartbeat_key(worker: str) -> str:
    return f"qt:worker:{worker}"


def _claim_key(order_id: UUID | str) -> str:
    return f"qt:claim:{order_id}"


def beat() -> None:
    try:
        cache.set(_heartbeat_key(worker_id()), 1, timeout=HEARTBEAT_TTL)
    except Exception as exc:  # the cache is down: claims cannot be judged either
        log.debug("heartbeat failed: %s", exc)
        return
    _slots_announce()
    _clear_left_behind()
    _forget_records_of_a_past_store()


def start_heartbeat() -> None:
    """Beat from a daemon thread of this process, once per process (idempotent)."""
    if os.getpid() in _started:  # every order asks: the lock only for the first
        return
    with _lock:
        if os.getpid() in _started:
            return
        stop = _started[os.getpid()] = threading.Event()
    beat()

    def run() -> None:
        while not stop.wait(HEARTBEAT_SECONDS):
            beat()

    threading.Thread(target=run, name="worker-heartbeat", daemon=True).start()


# --- order slots: how many order executions the live workers run at once ----------------------
#
# A fan-out is cut into as many tasks as the workers have threads (orders.services.fan_out_chunk):
# more would only add broker messages (a publish, a delivery, an acknowledgement each: a quarter
# of a worker's interpreter time in a 100-account fan-out), fewer would leave threads idle
# while a distant venue answers. Each worker process announces its concurrency in one shared
# record, {worker: slots}, and checks on each beat that it is still listed; a reader counts the
# listed workers whose heartbeat is alive. Two workers writing the record at the same moment
# can drop one of them: it is listed again at its next beat (HEARTBEAT_SECONDS), meanwhile a
# fan-out is cut into fewer tasks (slower, never wrong).

_SLOTS_KEY = "qt:order-slots"
SLOTS_READ_SECONDS = HEARTBEAT_SECONDS  # a process reads the record at most this often
_own_slots: tuple[int, int] = (0, 0)  # (the announcing process, its slots)
_slots_read: tuple[float, int] = (float("-inf"), 0)
# This process's writes of the record, one at a time: a beat that read the record just before
# a warm shutdown withdrew it must not list the process again after.
_slots_lock = threading.RLock()
_clock = time.monotonic  # the memo's clock (the tests move it)


def _slots_record() -> tuple[dict[str, int], dict[str, int]]:
    """The shared record as stored, and its entries whose worker's heartbeat is alive (two cache
    reads; raises on cache trouble)."""
    record = cache.get(_SLOTS_KEY) or {}
    alive = cache.get_many([_heartbeat_key(w) for w in record]) if record else {}
    return record, {w: n for w, n in record.items() if _heartbeat_key(w) in alive}


def announce_slots(slots: int) -> None:
    """This worker process runs ``slots`` tasks at once (its pool's concurrency): list it in
    the shared record now and at every beat."""
    global _own_slots
    with _slots_lock:
        _own_slots = (os.getpid(), max(0, int(slots)))
    start_heartbeat()
    beat()  # listed with a live heartbeat now, whenever the heartbeat thread last beat


def _slots_announce() -> None:
    """List this process with its slots, if it announced any (not a forked child: its parent
    announced the pool); entries whose heartbeat is gone (killed workers) leave the record as
    it is written. Written only when that changes it."""
    me = worker_id()
    with _slots_lock:
        pid, slots = _own_slots
        if pid != os.getpid():
            return
        try:
            record, live = _slots_record()
            kept = {**{w: n for w, n in live.items() if w != me}, me: slots}
            if kept != record:
                cache.set(_SLOTS_KEY, kept, timeout=None)
        except Exception as exc:
            log.debug("order slots announce failed: %s", exc)


def withdraw_slots() -> None:
    """This worker process stops (a warm shutdown, its tasks done): off the record now rather
    than when its heartbeat expires."""
    global _own_slots
    with _slots_lock:
        if _own_slots[0] != os.getpid():
            return
        _own_slots = (0, 0)
        try:
            record = cache.get(_SLOTS_KEY) or {}
            if record.pop(worker_id(), None) is not None:
                cache.set(_SLOTS_KEY, record, timeout=None)
        except Exception as exc:
            log.debug("order slots withdraw failed: %s", exc)


def order_slots_forget() -> None:
    """Forget what this process read and announced (the tests: each starts with neither)."""
    global _own_slots, _slots_read
    with _slots_lock:
        _own_slots, _slots_read = (0, 0), (float("-inf"), 0)


def order_slots() -> int:
    """The order tasks the live workers run at once, all together; 0 when unknown (no worker
    has announced itself, or the cache is away). Read at most every SLOTS_READ_SECONDS."""
    global _slots_read
    read_at, slots = _slots_read
    now = _clock()
    if now - read_at < SLOTS_READ_SECONDS:
        return slots
    try:
        slots = sum(int(n) for n in _slots_record()[1].values())
    except Exception as exc:
        log.debug("order slots read failed: %s", exc)
        slots = 0
    _slots_read = (now, slots)
    return slots


def mark_claim(order_id: UUID | str) -> None:
    """Record this process as the order's holder; a process that claims orders beats. The first
    claim of a pair run here (:func:`started_here`) records the pair's start in the same write."""
    start_heartbeat()
    pending: tuple[UUID | str, int] | None = getattr(_here, "pair", None)
    try:
        if pending is None:
            cache.set(_claim_key(order_id), worker_id(), timeout=CLAIM_TTL)
            return
        _here.pair = None
        _running_add([_dispatch_key(*pending)])
        set_each(
            {
                _claim_key(order_id): (worker_id(), CLAIM_TTL),
                _dispatch_key(*pending): ({"due": time.time(), "worker": worker_id()}, CLAIM_TTL),
                _heartbeat_key(worker_id()): (1, HEARTBEAT_TTL),
            }
        )
    except Exception as exc:
        log.debug("claim mark failed: %s", exc)


def release_claim(order_id: UUID | str) -> None:
    """This process no longer runs the order (its execution ended without settling it): its
    claim names a holder that never beats, so the sweep settles the order at once as a dead
    holder's (``never_sent`` still tells whether a request of it started to leave)."""
    try:
        cache.set(_claim_key(order_id), f"released:{worker_id()}", timeout=CLAIM_TTL)
    except Exception as exc:
        log.debug("claim release failed: %s", exc)


def clear_claim(order_id: UUID | str) -> None:
    try:
        cache.delete(_claim_key(order_id))
    except Exception as exc:
        log.debug("claim clear failed: %s", exc)


def _sending_key(order_id: UUID | str) -> str:
    return f"qt:sending:{order_id}"


def _taken_back(attempt: int) -> str:
    return f"swept:{attempt}"


def _attempt_of(mark: Any) -> int | None:
    """The attempt a send mark (``sent:N:worker``) or a taken-back mark (``swept:N``) is of;
    None for a mark without one (written by a release before attempts were marked)."""
    if isinstance(mark, str) and mark.startswith(("sent:", "swept:")):
        number = mark.split(":", 2)[1]
        return int(number) if number.isdigit() else None
    return None


def mark_sending(order_id: UUID | str, attempt: int) -> bool:
    """Record, before the order request of ``attempt`` leaves, that it may have left. False when
    that cannot be recorded (a dead holder could not then be judged safely): the caller must then
    not send. Raises ``AttemptTakenBack`` when the sweep has taken this attempt back as never sent
    (:func:`never_sent`: it judged the holder dead, wrongly) or a later attempt has marked: the
    order is a newer attempt's, and this one must neither send nor write it.

    One write as a rule (an add, which a sweep's mark before it makes fail); a later attempt
    finds an earlier attempt's mark and writes its own over it."""
    key = _sending_key(order_id)
    mine = f"sent:{attempt}:{worker_id()}"
    try:
        if cache.add(key, mine, timeout=CLAIM_TTL):
            return True
        current = cache.get(key)
        marked = _attempt_of(current)
        if current == _taken_back(attempt) or (marked is not None and marked > attempt):
            raise AttemptTakenBack(f"attempt {attempt} of order {order_id} was taken back ({current})")
        cache.set(key, mine, timeout=CLAIM_TTL)
    except AttemptTakenBack:
        raise
    except Exception as exc:
        log.warning("order send mark failed: %s", exc)
        return False
    return True


def untake(order_id: UUID | str, attempt: int) -> None:
    """Withdraw :func:`never_sent`'s taken-back mark of ``attempt`` (the sweep could not put the
    order back: that attempt had ended, and a new claim may have the same number again)."""
    key = _sending_key(order_id)
    try:
        if cache.get(key) == _taken_back(attempt):
            cache.delete(key)
    except Exception as exc:
        log.warning("taken-back mark not withdrawn: %s", exc)


def take_back(order_id: UUID | str, attempt: int) -> None:
    """Mark ``attempt`` taken back whether or not its request began to leave: for a
    CANCEL_ALL_ORDER its holder was judged dead on, which is run again either way (cancelling
    the open orders twice cancels nothing more). A holder that was only slow and had not yet
    sent it then never does (:func:`mark_sending` raises): otherwise its late cancel-all could
    cancel the orders placed after the one run again (a batch's next order). One already in
    flight cannot be called back. A later attempt's mark is left as it is."""
    key = _sending_key(order_id)
    try:
        marked = _attempt_of(cache.get(key))
        if marked is None or marked <= attempt:
            cache.set(key, _taken_back(attempt), timeout=CLAIM_TTL)
    except Exception as exc:
        log.warning("take-back mark failed: %s", exc)


def never_sent(order_id: UUID | str, attempt: int) -> bool:
    """True only when the order's holder is known and no request of it ever started to leave:
    a worker that died between its claim and its request (the order may simply be sent). The
    answer holds: the same write marks ``attempt`` taken back, so a holder judged dead that was
    only slow (its heartbeat lost for a moment) finds it so and never sends it
    (:func:`mark_sending`); an order whose request may have left is never taken for unsent."""
    try:
        return bool(cache.get(_claim_key(order_id))) and bool(
            cache.add(_sending_key(order_id), _taken_back(attempt), timeout=CLAIM_TTL)
        )
    except Exception:
        return False


HOLDER_DEAD, HOLDER_ALIVE, HOLDER_UNKNOWN = "dead", "alive", "unknown"


def _beats(worker: str) -> bool:
    """Whether ``worker``'s heartbeat is alive (raises on cache trouble)."""
    return bool(cache.get(_heartbeat_key(worker)))


def holder_state(order_id: UUID | str) -> str:
    """Whether the order's holder is known and beating (HOLDER_ALIVE), known and silent
    (HOLDER_DEAD), or not known (HOLDER_UNKNOWN: no claim recorded, or the cache is away)."""
    try:
        holder = cache.get(_claim_key(order_id))
        if not holder:
            return HOLDER_UNKNOWN
        return HOLDER_ALIVE if _beats(str(holder)) else HOLDER_DEAD
    except Exception:
        return HOLDER_UNKNOWN


# The sweep, one at a time across the processes: two sweeps working from lists read at
# different moments could each settle the same order, the later one from an old copy.
_SWEEP_KEY = "qt:orders-sweep"


@contextlib.contextmanager
def sweep_turn(timeout: float) -> Iterator[bool]:
    """Around a sweep: yields True when no other sweep runs (then holds the turn for at most
    ``timeout`` seconds), False when one does. A turn whose process stopped beating (killed
    mid-sweep) is taken over. The cache away: True (sweeping beats not sweeping; the orders'
    writes are guarded by their attempt anyway)."""
    start_heartbeat()
    me = worker_id()
    try:
        mine = bool(cache.add(_SWEEP_KEY, me, timeout=timeout))
        if not mine:
            holder = cache.get(_SWEEP_KEY)
            if holder and holder != me and not _beats(str(holder)):
                cache.set(_SWEEP_KEY, me, timeout=timeout)
                mine = True
    except Exception as exc:
        log.debug("sweep turn not taken: %s", exc)
        yield True
        return
    try:
        yield mine
    finally:
        if mine:
            try:
                if cache.get(_SWEEP_KEY) == me:  # not a turn taken over from this one meanwhile
                    cache.delete(_SWEEP_KEY)
            except Exception as exc:
                log.debug("sweep turn not given back: %s", exc)


# --- dispatches: queued behind a backlog, or lost ------------------------------------------
#
# A queued order whose task waits in the broker behind other work is not lost, and sending
# another task for it only lengthens the backlog (a burst once drew thousands of re-dispatches).
# Each dispatch of (webhook, account) records when it was sent (or when its retry is due); the
# task records the worker running it. The sweep re-sends a pair only when its task is lost:
# - no record (the broker refused the dispatch, or the record is gone);
# - the worker running it stopped beating (killed mid-task);
# - not started although a task dispatched ORDER_STALE_AFTER_SECONDS later has started (the
#   queue is first-in first-out: a message passed by one sent that much later is not in it);
#   retries (a countdown: held by a worker until due, out of turn) are not judged this way;
# - not started DISPATCH_LOST_FACTOR x ORDER_STALE_AFTER_SECONDS after it was due, and no task
#   has started for ORDER_STALE_AFTER_SECONDS (the queue is not moving towards it).
# Any cache trouble counts as lost: the sweep then re-sends by age, as before (claims keep it
# to one placement whatever the number of tasks).

DISPATCH_LOST_FACTOR = 10
_STARTED_KEY = "qt:dispatch:started"


def _dispatch_key(webhook_id: UUID | str, account_id: int) -> str:
    return f"qt:dispatch:{webhook_id}:{account_id}"


def mark_dispatched(webhook_id: UUID | str, account_id: int, countdown: float = 0.0) -> None:
    """A task for the pair was handed to the broker (due ``countdown`` seconds from now)."""
    key = _dispatch_key(webhook_id, account_id)
    _running_discard([key])
    try:
        cache.set(
            key, {"due": time.time() + countdown, "worker": "", "eta": countdown > 0}, timeout=CLAIM_TTL
        )
    except Exception as exc:
        log.debug("dispatch mark failed: %s", exc)
        _left_behind([key])  # it may still name this process as running the pair


def mark_dispatched_many(webhook_id: UUID | str, account_ids: list[int]) -> None:
    """:func:`mark_dispatched` for each account of a fan-out, in one round trip."""
    record = {"due": time.time(), "worker": "", "eta": False}
    try:
        cache.set_many({_dispatch_key(webhook_id, a): record for a in account_ids}, timeout=CLAIM_TTL)
    except Exception as exc:
        log.debug("dispatch mark failed: %s", exc)


def mark_dispatched_new(webhook_id: UUID | str, account_ids: list[int]) -> None:
    """:func:`mark_dispatched_many` written after the publish of pairs never dispatched before
    (``orders_dispatch(new=True)``): only where no record is, in one round trip. A task that
    started first keeps its `started` record; one that finished first has deleted its record,
    and the one written here then belongs to a pair with nothing queued, which the sweep never
    asks about (it expires)."""
    record = {"due": time.time(), "worker": "", "eta": False}
    keys = [_dispatch_key(webhook_id, a) for a in account_ids]
    try:
        add_each(keys, record, CLAIM_TTL)
    except Exception as exc:
        log.debug("dispatch mark failed: %s", exc)


def mark_started(webhook_id: UUID | str, account_id: int) -> None:
    """This process runs the pair's task now (it beats while it does)."""
    mark_started_many(webhook_id, [account_id])


def mark_started_many(webhook_id: UUID | str, account_ids: list[int]) -> None:
    """This process runs the pairs' task now: a fan-out's chunk of accounts, executed one after
    another (orders.services.fan_out_chunk), is started as a whole, so an account waiting for
    the chunk's earlier ones is not taken for lost while this process beats."""
    start_heartbeat()
    keys = [_dispatch_key(webhook_id, account_id) for account_id in account_ids]
    _running_add(keys)
    try:
        # One read and one write (two round trips to Redis; the write beats too, so the
        # heartbeat is there from the start, whenever the heartbeat thread last beat).
        found = cache.get_many([*keys, _STARTED_KEY])
        # Only a task that came through the queue in turn says how far the queue has moved (a
        # retry waits in a worker for its time, out of turn).
        latest = found.get(_STARTED_KEY) or {}
        now = time.time()
        items: dict[str, tuple[Any, float]] = {}
        for key in keys:
            record = found.get(key)
            due = float(record["due"]) if record else now
            if record and not record.get("eta") and due > float(latest.get("due") or 0):
                latest = {**latest, "due": due}
            items[key] = ({"due": due, "worker": worker_id()}, CLAIM_TTL)
        items[_STARTED_KEY] = ({**latest, "at": now}, CLAIM_TTL)
        items[_heartbeat_key(worker_id())] = (1, HEARTBEAT_TTL)
        set_each(items)
    except Exception as exc:
        log.debug("dispatch start mark failed: %s", exc)


# A first delivery's dispatch time is trusted for the queue's progress only this fresh: an
# older one is a message delivered again (its worker died), read the slow way.
START_FRESH_SECONDS = 60.0


def mark_started_dispatched_at(webhook_id: UUID | str, account_id: int, dispatched_at: float) -> None:
    """:func:`mark_started` for a task on its first delivery whose message says when it was
    dispatched (the intake's trail, orders.tasks): written without reading, in one round trip
    instead of two. The pair's record needs no `due` once a worker holds it (its heartbeat
    decides), and the queue's progress is this task's dispatch time: a task of the same queue
    started a moment earlier may have written a later one, which only delays the judgement of
    a lost message until the next start (never judges one lost too early: every time written
    is a dispatch the workers have reached). A dispatch time in the future (another machine's
    clock) counts as now; one older than START_FRESH_SECONDS takes the reading way."""
    now = time.time()
    if now - dispatched_at > START_FRESH_SECONDS:
        mark_started(webhook_id, account_id)
        return
    due = min(dispatched_at, now)
    start_heartbeat()
    _running_add([_dispatch_key(webhook_id, account_id)])
    try:
        set_each(
            {
                _dispatch_key(webhook_id, account_id): ({"due": due, "worker": worker_id()}, CLAIM_TTL),
                _STARTED_KEY: ({"due": due, "at": now}, CLAIM_TTL),
                _heartbeat_key(worker_id()): (1, HEARTBEAT_TTL),
            }
        )
    except Exception as exc:
        log.debug("dispatch start mark failed: %s", exc)


_here = threading.local()


@contextlib.contextmanager
def started_here(webhook_id: UUID | str, account_id: int) -> Iterator[None]:
    """This thread runs the pair now, handed to it without the broker (a web process's own order
    threads, orders.handoff.install_web): held by this process, judged by its heartbeat. The
    record is written with the pair's first claim (:func:`mark_claim`), in its round trip, not
    one of its own ahead of the order: until then the pair's orders are younger than the sweep's
    bound (the claim follows the read at once, or a wait for earlier orders shorter than that
    bound), and a process that dies first leaves no record, which the sweep reads as lost. A
    pair that ends without a claim has nothing to record. The queue's progress (_STARTED_KEY)
    is left alone: this pair never was in the queue, and a start out of it says nothing about
    the messages still waiting there."""
    _here.pair = (webhook_id, account_id)
    try:
        yield
    finally:
        _here.pair = None


def clear_dispatch(webhook_id: UUID | str, account_id: int) -> None:
    """The pair's task ended (or its retry could not be handed to the broker)."""
    clear_dispatch_many(webhook_id, [account_id])


def clear_dispatch_many(webhook_id: UUID | str, account_ids: list[int]) -> None:
    """:func:`clear_dispatch` of several accounts of one webhook (a fan-out's chunk), in one
    round trip."""
    if not account_ids:
        return
    keys = [_dispatch_key(webhook_id, account_id) for account_id in account_ids]
    _running_discard(keys)
    try:
        cache.delete_many(keys)
    except Exception as exc:
        log.debug("dispatch clear failed: %s", exc)
        _left_behind(keys)


# Dispatch records this process could not delete or rewrite as its task ended (the cache was
# away): each still names this process, whose heartbeat comes back with the cache, so the sweep
# would take the pair's queued orders for held by it until the record expires (CLAIM_TTL, hours).
# Every beat tries again, for pairs this process is not running (again) by then, and only while
# the record still names it.
_unclear: set[str] = set()
_running: set[str] = set()  # records naming this process as running their pair now
_records_lock = threading.Lock()


def _running_add(keys: list[str]) -> None:
    with _records_lock:
        _running.update(keys)


def _running_discard(keys: list[str]) -> None:
    with _records_lock:
        _running.difference_update(keys)


def _left_behind(keys: list[str]) -> None:
    with _records_lock:
        _unclear.update(keys)


def _clear_left_behind() -> None:
    with _records_lock:
        keys = [key for key in _unclear if key not in _running]
    if not keys:
        return
    me = worker_id()
    try:
        found = cache.get_many(keys)
        mine = [key for key in keys if (found.get(key) or {}).get("worker") == me]
        if mine:
            cache.delete_many(mine)
    except Exception as exc:
        log.debug("dispatch clear retry failed: %s", exc)
        return
    with _records_lock:
        _unclear.difference_update(keys)
    if mine:
        log.info("남은 작업 기록 정리: %d건", len(mine))


# Redis started again from a snapshot (an RDB save, an append-only file, a replica promoted)
# brings records back as they were when it was taken: a pair's record naming this process as
# running it, although its task has ended since, or has scheduled a retry whose message the
# restored broker no longer has. This process still beats, so the sweep would take the pair's
# queued orders for held here until the record expired (CLAIM_TTL: hours), then send them hours
# late. Each beat reads the server's run id; when it has changed, the records naming this
# process for pairs it is not running are deleted, and the sweep judges those pairs lost.
_store_run: list[str] = []  # the server's run id at this process's last beat


def _forget_records_of_a_past_store() -> None:
    try:
        run_id = store_run_id()
        if run_id is None:
            return
        seen, _store_run[:] = list(_store_run), [run_id]
        if not seen or seen[0] == run_id:
            return
        me = worker_id()
        keys = [key for key in store_keys_matching("qt:dispatch:*") if key != _STARTED_KEY]
        found = cache.get_many(keys) if keys else {}
        with _records_lock:
            running = set(_running)
        stale = [
            key
            for key, record in found.items()
            if isinstance(record, dict) and record.get("worker") == me and key not in running
        ]
        if stale:
            cache.delete_many(stale)
    except Exception as exc:  # the next restart seen tries again; a record left expires
        log.debug("records of a restarted store not checked: %s", exc)
        return
    log.warning(
        "공유 저장소(Redis) 재시작 감지: 이 프로세스가 실행하지 않는 작업 기록 %d건 삭제 (스윕에서 재전달)",
        len(stale),
    )


def dispatch_lost(webhook_id: UUID | str, account_id: int, stale_after_seconds: float) -> bool:
    """Whether the pair's queued orders have no task that will run them (see above)."""
    try:
        record = cache.get(_dispatch_key(webhook_id, account_id))
        if not record:
            return True
        worker = str(record.get("worker") or "")
        if worker:
            return not _beats(worker)
        due = float(record.get("due") or 0)
        latest = cache.get(_STARTED_KEY) or {}
    except Exception:
        return True
    now = time.time()
    if not record.get("eta") and float(latest.get("due") or 0) - due > stale_after_seconds:
        return True
    if record.get("eta") and now - due > DISPATCH_LOST_FACTOR * stale_after_seconds:
        # A retry long past its time: the worker holding its message (a countdown is held by
        # the worker that took it) was killed, and the broker gives it back only after its
        # visibility timeout (an hour). However busy the queue, it is lost; sent again, a
        # second task finds the orders claimed (never a second placement).
        return True
    # Long overdue, and the workers have started nothing for a while: the queue is not moving
    # towards it (a moving queue reaches it, or passes it, above).
    moving = now - float(latest.get("at") or 0) <= stale_after_seconds
    return now - due > DISPATCH_LOST_FACTOR * stale_after_seconds and not moving
