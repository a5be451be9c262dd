"""The latency trail (orders/trail.py) through the real path: webhook POST -> real Celery
worker -> paper venue / Binance simulator over HTTP. Every stage is recorded, in order, never
negative, and `sent`/`answered` bracket the moment the venue saw the request."""

from __future__ import annotations

import json
import threading
from typing import Any

import pytest
from django.core.cache import cache
from django.test import Client

from orders import liveness
from orders.models import Order
from orders.trail import STAGES, StageClock, trail_merge, trail_rows, trail_set
from quanttrade.celery import app as celery_app
from venuesim.binance import BinanceSim

BODY = {
    "group_name": "trail",
    "token": "tok",
    "symbol": "BTC/USDT",
    "currency": "USDT",
    "order_type": "MARKET",
    "side": "buy",
    "qty_per": 10,
}


def post(client: Client, **fields: Any) -> str:
    response = client.post(
        "/api/webhook", data=json.dumps({**BODY, **fields}), content_type="application/json"
    )
    assert response.status_code == 202, response.json()
    return str(response.json()["webhook_id"])


def assert_complete(order: Order) -> list[int]:
    trail = order.trail
    assert isinstance(trail["t0"], int) and trail["t0"] > 0
    offsets = [trail[stage] for stage in STAGES]  # every stage is there
    assert offsets[0] == 0
    assert all(isinstance(value, int) and value >= 0 for value in offsets)
    assert offsets == sorted(offsets), trail  # in the order of the stages
    return offsets


def test_a_paper_order_records_every_stage_in_order(
    client: Client,
    celery_worker: Any,
    make_strategy: Any,
    make_account: Any,
    publish_price: Any,
    wait_orders: Any,
) -> None:
    account = make_account("paper-trail", balances={"USDT": "10000"})
    make_strategy(group_name="trail", token="tok", accounts=[account])
    publish_price("BINANCE:BTC/USDT", "50000")
    webhook_id = post(client)
    [order] = wait_orders(webhook_id=webhook_id)
    assert order.status == "filled"
    assert_complete(order)
    assert "clamped" not in order.trail  # one machine, one clock: nothing to correct
    # The worker recorded the queue's progress from the message's trail, without reading
    # (orders.liveness.mark_started_dispatched_at): the intake's dispatch time.
    progress = cache.get("qt:dispatch:started")
    assert progress["due"] == (order.trail["t0"] + order.trail["dispatched"]) / 1_000_000


def test_a_binance_simulator_order_records_every_stage_around_the_venue_request(
    client: Client,
    celery_worker: Any,
    make_strategy: Any,
    binance_sim: BinanceSim,
    binance_account: Any,
    wait_orders: Any,
) -> None:
    binance_sim.latency = 0.05  # the venue takes 50 ms to answer
    make_strategy(group_name="trail", token="tok", accounts=[binance_account()])
    webhook_id = post(client)
    [order] = wait_orders(webhook_id=webhook_id, timeout=20)
    assert order.status == "filled", order.message
    offsets = assert_complete(order)
    [request] = binance_sim.seen("/api/v3/order", "POST")
    at_venue = round(request.received_at * 1_000_000) - order.trail["t0"]
    slack = 2_000  # µs: the simulator stamps with time.time(), the trail with its own reads
    assert order.trail["sent"] - slack <= at_venue <= order.trail["answered"] + slack
    assert order.trail["answered"] - order.trail["sent"] >= 50_000  # the venue's 50 ms are in it
    assert offsets[-1] - offsets[0] >= 50_000


def test_one_webhook_to_several_accounts_is_one_publish_and_every_account_runs(
    client: Client,
    celery_worker: Any,
    make_strategy: Any,
    make_account: Any,
    publish_price: Any,
    wait_orders: Any,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    accounts = [make_account(f"fan-{i}", balances={"USDT": "10000"}) for i in range(5)]
    make_strategy(group_name="trail", token="tok", accounts=accounts)
    publish_price("BINANCE:BTC/USDT", "50000")
    send_task = celery_app.send_task
    published: list[str] = []

    from_request: list[str] = []

    def spy(name: str, *args: Any, **kwargs: Any) -> Any:
        if name.startswith("orders.tasks.execute_"):  # not the portfolio refreshes after fills
            published.append(name)
            if threading.current_thread() is threading.main_thread():  # the test client's request
                from_request.append(name)
        return send_task(name, *args, **kwargs)

    monkeypatch.setattr(celery_app, "send_task", spy)
    webhook_id = post(client)
    orders = wait_orders(webhook_id=webhook_id)
    assert from_request == ["orders.tasks.execute_webhook_orders"]  # one publish from the intake
    assert [o.status for o in orders] == ["filled"] * 5
    assert [o.attempts for o in orders] == [1] * 5  # each placed once
    for order in orders:
        assert_complete(order)
    # The workers split the rest: 5 accounts, 4 hand-offs in all.
    assert len(published) == 1 + 4


def test_a_fan_out_beyond_the_task_limit_runs_in_chunks_each_account_once(
    client: Client,
    celery_worker: Any,
    make_strategy: Any,
    make_account: Any,
    publish_price: Any,
    wait_orders: Any,
    monkeypatch: pytest.MonkeyPatch,
    settings: Any,
) -> None:
    """With ORDER_FANOUT_TASKS below the number of accounts, the last hand-offs carry chunks
    (here 7 accounts, at most 3 tasks: chunks of at most 3), each executed in sequence by
    the task that receives it: fewer messages, every account's order placed exactly once."""
    from orders.services import fan_out_chunk

    settings.ORDER_FANOUT_TASKS = 3
    assert [fan_out_chunk(n) for n in (1, 3, 4, 7, 9, 10)] == [1, 1, 2, 3, 3, 4]
    accounts = [make_account(f"chunk-{i}", balances={"USDT": "10000"}) for i in range(7)]
    make_strategy(group_name="trail", token="tok", accounts=accounts)
    publish_price("BINANCE:BTC/USDT", "50000")
    send_task = celery_app.send_task
    published: list[tuple[str, Any]] = []

    def spy(name: str, *args: Any, **kwargs: Any) -> Any:
        if name.startswith("orders.tasks.execute_"):
            published.append((name, kwargs.get("args")))
        return send_task(name, *args, **kwargs)

    monkeypatch.setattr(celery_app, "send_task", spy)
    mark_started_many = liveness.mark_started_many
    started: list[int] = []

    def started_spy(webhook_id: Any, account_ids: list[int]) -> None:
        started.extend(account_ids)
        mark_started_many(webhook_id, account_ids)

    monkeypatch.setattr(liveness, "mark_started_many", started_spy)
    webhook_id = post(client)
    orders = wait_orders(webhook_id=webhook_id)
    assert [o.status for o in orders] == ["filled"] * 7
    # Each account marked started once: its chunk's mark, not another of its own.
    assert sorted(started) == sorted(a.id for a in accounts)
    assert [o.attempts for o in orders] == [1] * 7
    assert len({o.account_id for o in orders}) == 7
    for order in orders:
        assert_complete(order)
    # The intake's publish (7 accounts), then one hand-off of 4 (split again: 2 + 2), and
    # every task's chunk at most 3 accounts: 3 publishes where one account a task took 7.
    names = [name for name, _ in published]
    assert names == ["orders.tasks.execute_webhook_orders"] * 3, published
    handed = sorted(len(args[1]) for _, args in published[1:])
    assert handed == [2, 4]


def test_a_stage_is_never_stored_before_an_earlier_one() -> None:
    trail: dict[str, Any] = {"t0": 1_000, "received": 0, "committed": 900, "dispatched": 950}
    trail_merge(trail, {"t0": 1_000, "committed": 5})  # already stored: kept
    assert trail["committed"] == 900
    assert trail_set(trail, "claimed", 400) == 950  # a worker whose clock runs behind
    assert trail["clamped"] == ["claimed"]
    assert [row["stage"] for row in trail_rows(trail)] == ["received", "committed", "dispatched", "claimed"]
    assert trail_rows(trail)[3]["step_ms"] == 0.0 and trail_rows(trail)[3]["clamped"]


def test_stages_of_one_process_come_from_its_monotonic_clock() -> None:
    clock = StageClock.start()
    first = clock.mark("committed")
    second = clock.mark("dispatched")
    assert 0 <= first <= second
    other = {"t0": clock.trail["t0"], "received": 0}
    trail_merge(other, clock.trail)
    assert (other["committed"], other["dispatched"]) == (first, second)
    trail_merge(other, {"t0": 1, "committed": 10**9})  # another webhook's stages: ignored
    assert other["committed"] == first
