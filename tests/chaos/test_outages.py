"""Issue #11: the distributed deployment under faults, as real processes (tests/chaos/harness.py):
a PostgreSQL cluster and a redis-server of our own, gunicorn with the QuantTrade worker class,
a Celery worker (--pool threads), Celery beat (the sweep every 2 s, orders stale after 3 s) and
the Binance simulator as the venue (0.2 s per order, so tasks are in flight when a fault hits).

Under a steady stream of webhooks each scenario breaks one part and asserts what SPEC §7a
promises: no 5xx, every answer within TradingView's 3 s, every webhook answered 202 placed at
the venue exactly once and in a final state, the worker alive. Nothing here depends on the
clock beyond generous bounds; the figures are printed at the end of the run."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import tempfile
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.chaos.harness import (
    FAN_ACCOUNTS,
    FAN_GROUP,
    FINAL,
    Answer,
    Load,
    Stack,
    available,
    post_webhook,
    report,
    wait_until_settled,
)

pytestmark = pytest.mark.chaos

WARM_SECONDS = 2.0
OUTAGE_SECONDS = 10.0  # the issue measures 10-s outages
AFTER_SECONDS = 3.0
SETTLE_TIMEOUT = 60.0
TRADINGVIEW_BUDGET = 3.0


@pytest.fixture
def stack() -> Iterator[Stack]:
    """A stack of its own for each scenario: a scenario's load spends about a third of the
    venue's USDT (1 % of the balance per order), so on a shared stack a scenario run after
    another on the same test worker saw orders under the venue's minimum notional, rejected."""
    reason = available()
    if reason:
        pytest.skip(reason)
    # Not under pytest's tmp folder: that one is owner-only, and PostgreSQL runs as `postgres`.
    workdir = Path(tempfile.mkdtemp(prefix="qt-chaos-"))
    try:
        with Stack(workdir, venue_delay=0.2) as running:
            # The first requests of a fresh web process load Django's lazy parts (1-2 s on a busy
            # 2-core machine): measured once here, so the scenarios measure the outages.
            warm = [post_webhook(running.web_port, index) for index in range(3)]
            assert [a.status for a in warm] == [202] * 3, f"{warm}\n{running.logs()}"
            report("warm-up (fresh web process)", {"first_answer_s": round(warm[0].seconds, 3)})
            yield running
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


@pytest.fixture
def healthy(stack: Stack) -> Stack:
    dead = [name for name, proc in stack.procs.items() if not proc.alive()]
    assert not dead, f"processes down before the scenario: {dead}\n{stack.logs()}"
    return stack


def check(
    stack: Stack,
    name: str,
    answers: list[Answer],
    *,
    unknown_fate_ok: bool = False,
    web_restarted: bool = False,
    **extra: Any,
) -> dict[str, Any]:
    """The common assertions; returns the figures (also printed). ``unknown_fate_ok``: a worker
    killed between recording "sending" and the request leaving leaves orders whose fate the
    venue cannot prove; they end `failed` ("check the venue"), never placed a second time.
    ``web_restarted``: the requests a killed web process was answering got no answer, and those
    sent while its successor started waited for it (no 3 s promise); nothing else changes (a
    web process stopped with SIGTERM answers what it has, but its successor's start is as
    slow)."""
    statuses = Counter(a.status for a in answers)
    accepted = [a for a in answers if a.status == 202]
    kinds = Counter(str(a.body.get("status")) for a in accepted)
    ids = [str(a.body["webhook_id"]) for a in accepted]
    started = time.monotonic()
    rows = wait_until_settled(stack, ids, SETTLE_TIMEOUT)
    settled_after = time.monotonic() - started
    venue = stack.venue()
    venue_orders = Counter(o["client_id"] for o in venue["orders"])
    stored = {w for w, _c, _s in rows}
    lost = sorted(set(ids) - stored)
    not_final = [(w, s) for w, _c, s in rows if s != "filled"]
    duplicated = [c for _w, c, _s in rows if venue_orders[c] > 1 or venue["posts"].get(c, 0) > 1]
    never_placed = [c for _w, c, _s in rows if venue_orders[c] == 0]
    figures = {
        "webhooks": len(answers),
        "answers": dict(sorted(statuses.items())),
        "accepted": dict(sorted(kinds.items())),
        "5xx": sum(n for s, n in statuses.items() if s >= 500),
        "unanswered": statuses.get(0, 0),
        "max_answer_s": round(max(a.seconds for a in answers), 3),
        "lost": len(lost),
        "duplicated": len(duplicated),
        "not_filled": len(not_final),
        "settled_after_load_s": round(settled_after, 1),
        "worker_alive": stack.procs["worker"].alive(),
        **extra,
    }
    report(name, figures)
    diagnosis = (
        f"{figures}\n{_not_filled(stack, [c for _w, c, st in rows if st != 'filled'])}\n{stack.logs()}"
    )
    if web_restarted:
        assert figures["5xx"] == 0 and set(statuses) <= {202, 0}, diagnosis
    else:
        assert figures["5xx"] == 0 and figures["unanswered"] == 0, diagnosis
        assert set(statuses) == {202}, diagnosis
        assert figures["max_answer_s"] < TRADINGVIEW_BUDGET, diagnosis
    assert lost == [], diagnosis
    if unknown_fate_ok:
        failed = {c for _w, c, st in rows if st == "failed"}
        assert all(st == "failed" for _w, st in not_final), diagnosis
        assert duplicated == [] and set(never_placed) <= failed, diagnosis
    else:
        assert not_final == [], diagnosis
        assert duplicated == [] and never_placed == [], diagnosis
    assert figures["worker_alive"], diagnosis
    return figures


def _not_filled(stack: Stack, client_ids: list[str]) -> str:
    """What a failure needs to say about each order that did not fill: its row and the venue's
    requests under its client id (the venue's log tail seldom reaches back to it)."""
    if not client_ids:
        return ""
    venue = stack.venue()
    rows = stack.sql(
        "SELECT client_order_id, status, attempts, uncertain_attempt, exchange_order_id, message"
        " FROM orders_order WHERE client_order_id = ANY(%s)",
        client_ids,
    )
    return "\n".join(
        f"not filled: {row} venue orders={sum(o['client_id'] == row[0] for o in venue['orders'])}"
        f" posts={venue['posts'].get(row[0], 0)}"
        for row in rows
    )


def test_redis_stopped_and_restarted_under_load(healthy: Stack) -> None:
    with Load(healthy.web_port) as load:
        time.sleep(WARM_SECONDS)
        healthy.kill_redis()  # SIGKILL: no goodbye to the clients
        in_flight = healthy.sql("SELECT count(*) FROM orders_order WHERE status = 'submitted'")[0][0]
        time.sleep(OUTAGE_SECONDS)
        healthy.start_redis()
        time.sleep(AFTER_SECONDS)
    check(healthy, f"redis killed {OUTAGE_SECONDS:g} s", load.answers, in_flight_at_kill=in_flight)


def test_postgresql_restarted_under_load(healthy: Stack) -> None:
    with Load(healthy.web_port) as load:
        time.sleep(WARM_SECONDS)
        healthy.stop_pg()  # immediate: connections cut mid-transaction
        time.sleep(OUTAGE_SECONDS)
        healthy.start_pg()
        time.sleep(AFTER_SECONDS)
    figures = check(healthy, f"postgresql stopped {OUTAGE_SECONDS:g} s", load.answers)
    assert figures["accepted"].get("spooled", 0) > 0, "the outage never reached the intake"


def test_postgresql_stopped_while_fan_outs_run(healthy: Stack) -> None:
    """Webhooks to FAN_ACCOUNTS accounts are run by the worker in chunks, an account after
    another; PostgreSQL stopped while they run ends the chunks midway. The accounts a chunk did
    not reach are not left to the worker that stopped (alive, so the sweep would never resend
    them): once PostgreSQL is back, every order is placed, once."""
    answers = [post_webhook(healthy.web_port, index, group=FAN_GROUP) for index in range(3)]
    assert [a.status for a in answers] == [202] * 3, f"{answers}\n{healthy.logs()}"
    time.sleep(0.6)  # the chunks are under way (0.2 s per order at the venue)
    in_flight = healthy.sql("SELECT count(*) FROM orders_order WHERE status IN ('queued', 'submitted')")[0][0]
    healthy.stop_pg()
    time.sleep(OUTAGE_SECONDS / 2)
    healthy.start_pg()
    figures = check(
        healthy, f"postgresql stopped during {FAN_ACCOUNTS}-account fan-outs", answers, left_at_stop=in_flight
    )
    assert in_flight > 0, f"the fan-outs had finished before PostgreSQL stopped: {figures}"


def test_worker_killed_under_load(healthy: Stack) -> None:
    with Load(healthy.web_port) as load:
        time.sleep(WARM_SECONDS)
        healthy.procs["worker"].signal(signal.SIGKILL)
        killed_at = time.monotonic()
        healthy.procs["worker"].popen.wait(10)
        in_flight = healthy.sql("SELECT count(*) FROM orders_order WHERE status = 'submitted'")[0][0]
        time.sleep(1.0)  # a supervisor's restart delay
        healthy.restart("worker")
        time.sleep(AFTER_SECONDS)
    figures = check(healthy, "worker kill -9", load.answers, unknown_fate_ok=True)
    report(
        "worker kill -9",
        {"in_flight_at_kill": in_flight, "all_final_s_after_kill": round(time.monotonic() - killed_at, 1)},
    )
    assert figures["worker_alive"]
    # The restarted worker announces its order slots once ready (a fan-out is cut into that
    # many tasks: orders.liveness.order_slots), and the killed one's entry leaves the record at
    # the first beat after its heartbeat expired (the web threads may have settled the load
    # before either, so they are waited for).
    restarted = f"{socket.gethostname()}:{healthy.procs['worker'].popen.pid}"
    deadline = time.monotonic() + 30
    while healthy.order_slots() != {restarted: 4} and time.monotonic() < deadline:
        time.sleep(0.2)
    assert healthy.order_slots() == {restarted: 4}


def test_web_process_killed_under_load(healthy: Stack) -> None:
    """The web process runs orders of its own (ORDER_WEB_THREADS, orders/handoff.py): killed
    with orders in its hands, as the OOM killer would, it loses none and places none twice. Its
    claims name it and its heartbeat stops, so the sweep settles them as a dead worker's; the
    gunicorn arbiter starts another web process. Every order in the database counts, also
    those of requests the killed process never answered (it may have stored them)."""
    [web] = healthy.children("web")
    with Load(healthy.web_port) as load:
        time.sleep(WARM_SECONDS)
        placed_by_web = healthy.holders().get(f"{socket.gethostname()}:{web}", 0)
        os.kill(web, signal.SIGKILL)
        killed_at = time.monotonic()
        in_flight = healthy.sql("SELECT count(*) FROM orders_order WHERE status = 'submitted'")[0][0]
        time.sleep(AFTER_SECONDS)
    figures = check(healthy, "web kill -9", load.answers, unknown_fate_ok=True, web_restarted=True)
    stored = [str(w) for (w,) in healthy.sql("SELECT DISTINCT webhook_id::text FROM orders_order")]
    rows = wait_until_settled(healthy, stored, SETTLE_TIMEOUT)
    venue = healthy.venue()
    placed = Counter(o["client_id"] for o in venue["orders"])
    twice = [c for _w, c, _s in rows if placed[c] > 1 or venue["posts"].get(c, 0) > 1]
    unsettled = [(c, s) for _w, c, s in rows if s not in FINAL]
    report(
        "web kill -9",
        {
            "placed_by_killed_web_before_kill": placed_by_web,
            "in_flight_at_kill": in_flight,
            "orders_stored": len(rows),
            "all_final_s_after_kill": round(time.monotonic() - killed_at, 1),
        },
    )
    diagnosis = f"{figures}\n{healthy.logs()}"
    assert placed_by_web > 0, f"the web process placed no order itself\n{diagnosis}"
    assert twice == [] and unsettled == [], f"{twice} {unsettled}\n{diagnosis}"
    assert healthy.children("web") not in ([], [web]), "gunicorn did not start another web process"


def test_web_process_stopped_under_load(healthy: Stack) -> None:
    """SIGTERM to the web process (a deploy, gunicorn's max-requests) while it holds orders: it
    finishes them before it exits, and nothing is left for the sweep to settle: every order
    filled, none uncertain, none placed twice; its successor answers the load meanwhile."""
    [web] = healthy.children("web")
    stopped = f"{socket.gethostname()}:{web}"
    stored = [str(w) for (w,) in healthy.sql("SELECT DISTINCT webhook_id::text FROM orders_order")]
    wait_until_settled(healthy, stored, SETTLE_TIMEOUT)  # the warm-up's orders: both threads idle
    # Two signals, one for each of its idle order threads, each held 0.2 s by the venue: the
    # signal arrives with both under way.
    in_hand = [post_webhook(healthy.web_port, 100_000 + i) for i in range(2)]
    os.kill(web, signal.SIGTERM)
    with Load(healthy.web_port) as load:  # while its successor starts
        time.sleep(AFTER_SECONDS)
    figures = check(healthy, "web SIGTERM", in_hand + load.answers, web_restarted=True)
    assert figures["answers"].get(0, 0) <= 1, f"requests left unanswered by a graceful stop\n{figures}"
    claims = healthy.claims()
    held = [claims.get(str(a.body["orders"][0]["order_id"])) for a in in_hand]
    settled_by_sweep = [
        line
        for line in (healthy.workdir / "worker.log").read_text(errors="replace").splitlines()
        if "주문 상태 복구" in line or "주문 재전달" in line
    ]
    report(
        "web SIGTERM", {"held_at_sigterm": held.count(stopped), "settled_by_the_sweep": len(settled_by_sweep)}
    )
    assert held == [stopped, stopped], f"the signals were not in the stopped web process's hands: {held}"
    assert settled_by_sweep == [], f"orders the stopped web process left to the sweep: {settled_by_sweep}"
    assert healthy.children("web") not in ([], [web]), "gunicorn did not start another web process"
