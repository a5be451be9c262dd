"""The portfolio refreshes that fills ask for (orders.portfolio.services): with a broker, one
worker process gathers them and sends one message for many accounts; the refresh yields to
queued orders, for every account of the message still to be read."""

from __future__ import annotations

import json
import time
from typing import Any

import pytest
from django.core.cache import cache
from django.test import Client

from orders.models import Order
from orders.portfolio import services
from orders.portfolio.services import (
    REFRESH_MANY_TASK,
    portfolio_cached,
    portfolio_refresh_soon,
    portfolios_refresh_requested,
    refresh_requests_flush,
)
from quanttrade.celery import app as celery_app

BODY = {
    "group_name": "gather",
    "token": "tok",
    "symbol": "BTC/USDT",
    "currency": "USDT",
    "order_type": "MARKET",
    "side": "buy",
    "qty_per": 10,
}


def _refresh_spy(monkeypatch: pytest.MonkeyPatch, *, through: bool) -> list[tuple[str, Any, Any]]:
    """The portfolio messages sent to the broker (passed on to it when ``through``)."""
    send_task = celery_app.send_task
    sent: list[tuple[str, Any, Any]] = []

    def spy(name: str, *args: Any, **kwargs: Any) -> Any:
        if "portfolio" in name:
            sent.append((name, kwargs.get("args"), kwargs.get("countdown")))
            if not through:
                return None
        return send_task(name, *args, **kwargs)

    monkeypatch.setattr(celery_app, "send_task", spy)
    return sent


def _wait_tasks_done(timeout: float = 20.0) -> None:
    """Until the test's in-process worker runs no task (the orders' tasks have ended)."""
    from celery.worker import state

    deadline = time.monotonic() + timeout
    while state.active_requests:
        assert time.monotonic() < deadline, "the worker's tasks never ended"
        time.sleep(0.02)


def _wait_cached(account_ids: list[int], timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while any(portfolio_cached(a) is None for a in account_ids):
        assert time.monotonic() < deadline, "the gathered refresh never ran"
        time.sleep(0.05)


@pytest.mark.django_db(transaction=True)
def test_a_workers_fills_ask_for_their_refreshes_in_one_message(
    client: Client,
    celery_worker: Any,
    make_strategy: Any,
    make_account: Any,
    publish_price: Any,
    wait_orders: Any,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(services._gathered, "seconds", 60.0)  # only the flush below sends
    accounts = [make_account(f"gather-{i}", balances={"USDT": "10000"}) for i in range(3)]
    make_strategy(group_name="gather", token="tok", accounts=accounts)
    publish_price("BINANCE:BTC/USDT", "50000")
    sent = _refresh_spy(monkeypatch, through=True)
    response = client.post("/api/webhook", data=json.dumps(BODY), content_type="application/json")
    assert response.status_code == 202, response.json()
    orders = wait_orders(webhook_id=response.json()["webhook_id"])
    assert [o.status for o in orders] == ["filled"] * 3
    _wait_tasks_done()  # a fill's refresh is asked for after its status is stored
    assert sent == []  # three fills, no message yet: gathered in the worker's process
    ids = sorted(a.pk for a in accounts)
    assert sorted(refresh_requests_flush()) == ids
    [(name, args, countdown)] = sent
    assert (name, sorted(args[0]), countdown) == (REFRESH_MANY_TASK, ids, None)
    _wait_cached(ids)
    for order in orders:
        portfolio = portfolio_cached(order.account_id)
        assert portfolio is not None
        [btc] = [b for b in portfolio.balances if b.asset == "BTC"]
        assert btc.total == order.filled_qty


@pytest.mark.django_db
def test_gathered_requests_go_once_per_account_and_skip_one_already_asked_for(
    make_account: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(services._gathered, "seconds", 60.0)
    a, b, c = (make_account(f"acct-{i}").pk for i in range(3))
    sent = _refresh_spy(monkeypatch, through=False)
    cache.add(services._pending_key(c), 1, 60)  # another process asked for c, not yet read
    for account_id in (a, b, a, c, b):
        portfolio_refresh_soon(account_id)
    assert sent == []
    assert refresh_requests_flush() == [a, b]
    assert [(name, args[0]) for name, args, _ in sent] == [(REFRESH_MANY_TASK, [a, b])]
    # Asked for and not yet read: a later fill does not ask again.
    portfolio_refresh_soon(a)
    assert refresh_requests_flush() == []
    assert refresh_requests_flush() == []  # nothing gathered: nothing sent
    assert len(sent) == 1


@pytest.mark.django_db
def test_the_timer_sends_what_was_gathered(make_account: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(services._gathered, "seconds", 0.05)
    account_id = make_account("timer").pk
    sent = _refresh_spy(monkeypatch, through=False)
    portfolio_refresh_soon(account_id)
    deadline = time.monotonic() + 10
    while not sent:
        assert time.monotonic() < deadline, "the gathered request was never sent"
        time.sleep(0.01)
    assert [(name, args[0]) for name, args, _ in sent] == [(REFRESH_MANY_TASK, [account_id])]


@pytest.mark.django_db(transaction=True)
def test_a_gathered_refresh_yields_to_queued_orders_then_reads_every_account(
    make_account: Any, make_strategy: Any, publish_price: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    from tests.execution.test_execution import make_orders

    accounts = [make_account(f"yield-{i}", balances={"USDT": "100"}) for i in range(2)]
    ids = [a.pk for a in accounts]
    waiting = make_orders(
        make_strategy("other", accounts=accounts[:1]), accounts[:1], [{"side": "BUY", "qty_per": 10}]
    )
    sent = _refresh_spy(monkeypatch, through=False)
    asked_at = time.time()
    assert portfolios_refresh_requested(ids, asked_at) == 0
    [(name, args, countdown)] = sent
    assert (name, args, countdown) == (REFRESH_MANY_TASK, [ids, asked_at], 1.0)
    assert all(portfolio_cached(a) is None for a in ids)
    # Asked for longer ago than a refresh may wait: read although an order is queued.
    assert portfolios_refresh_requested(ids[1:], time.time() - services.REFRESH_YIELD_MAX_SECONDS - 1) == 1
    assert portfolio_cached(ids[1]) is not None
    Order.objects.filter(webhook=waiting).update(status="cancelled")
    assert portfolios_refresh_requested(ids, asked_at) == 2
    assert all(portfolio_cached(a) is not None for a in ids)
    assert len(sent) == 1


@pytest.mark.django_db(transaction=True)
def test_an_embedded_refresh_yields_while_a_webhook_is_being_accepted(
    make_account: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Embedded mode: a webhook's intake shares the interpreter with the refreshes, so one in
    progress puts them off as queued orders do; once it has answered they run."""
    from orders import handoff

    ids = [make_account(f"intake-{i}", balances={"USDT": "100"}).pk for i in range(2)]
    pool = handoff.LocalPool(1)
    later: list[tuple[Any, ...]] = []
    monkeypatch.setattr(pool, "submit", lambda fn, *args, **kwargs: later.append((fn, args, kwargs)))
    handoff.install(pool)
    try:
        asked_at = time.time()
        with handoff.intake():
            assert handoff.intakes_running()
            assert portfolios_refresh_requested(ids, asked_at) == 0
        assert not handoff.intakes_running()
        [(fn, args, kwargs)] = later
        assert (fn, args, kwargs) == (
            portfolios_refresh_requested,
            (ids, asked_at),
            {"delay": 1.0, "lane": handoff.BACKGROUND},
        )
        assert all(portfolio_cached(a) is None for a in ids)
        assert portfolios_refresh_requested(ids, asked_at) == 2  # the webhook was answered
        assert all(portfolio_cached(a) is not None for a in ids)
    finally:
        handoff.uninstall(pool)
        pool.shutdown()


@pytest.mark.django_db
def test_a_webhook_counts_as_an_intake_while_it_is_accepted_whatever_its_outcome(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A real POST, refused (no token): counted while the intake reads it, not after."""
    from orders import handoff
    from webhooks import services as intake

    seen: list[bool] = []
    parse = intake.parse_body

    def parse_counted(raw: bytes) -> Any:
        seen.append(handoff.intakes_running())
        return parse(raw)

    monkeypatch.setattr(intake, "parse_body", parse_counted)
    response = Client().post(
        "/api/webhook", json.dumps({"symbol": "BTC/USDT"}), content_type="application/json"
    )
    assert response.status_code == 400 and response.json()["code"] == "token_missing"
    assert seen == [True]
    assert not handoff.intakes_running()


@pytest.mark.django_db
def test_discarded_requests_are_never_sent(make_account: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(services._gathered, "seconds", 0.05)
    sent = _refresh_spy(monkeypatch, through=False)
    portfolio_refresh_soon(make_account("dropped").pk)
    services.refresh_requests_discard()
    time.sleep(0.3)  # past the timer's moment: cancelled with the requests
    assert sent == []
    assert refresh_requests_flush() == []
