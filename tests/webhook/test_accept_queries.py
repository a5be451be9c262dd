"""The accept path's database cost is pinned: a fixed number of queries whatever the number of
linked accounts (one query for the strategy with its links, none while the process's copy is
current; bulk inserts), and one broker publish per webhook."""

from __future__ import annotations

import json
from typing import Any

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext

from quanttrade.celery import app as celery_app

BODY = {
    "group_name": "q",
    "token": "tok",
    "symbol": "BTC/USDT",
    "currency": "USDT",
    "order_type": "MARKET",
    "side": "buy",
    "qty_per": 10,
}


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("cached", [True, False], ids=["strategy-cached", "strategy-read"])
@pytest.mark.parametrize("accounts", [1, 10])
def test_accept_path_queries_and_publishes_do_not_grow_with_the_accounts(
    client: Client,
    make_strategy: Any,
    make_account: Any,
    monkeypatch: pytest.MonkeyPatch,
    settings: Any,
    accounts: int,
    cached: bool,
) -> None:
    if not cached:
        settings.WEBHOOK_STRATEGY_CACHE_SECONDS = 0
    linked = [make_account(f"acct-{i:02d}") for i in range(accounts)]
    make_strategy(group_name="q", token="tok", accounts=linked)
    published: list[tuple[str, Any]] = []
    monkeypatch.setattr(celery_app, "send_task", lambda name, args, **kw: published.append((name, args)))
    client.post("/api/webhook", data=json.dumps(BODY), content_type="application/json")  # warm caches
    published.clear()
    with CaptureQueriesContext(connection) as queries:
        response = client.post("/api/webhook", data=json.dumps(BODY), content_type="application/json")
    assert response.status_code == 202, response.json()
    assert len(response.json()["orders"]) == accounts
    statements = [q["sql"].split(" ", 1)[0] for q in queries.captured_queries]
    # One SELECT (the strategy with its links; none while this process's copy is current), the
    # event and the orders inserted together: on PostgreSQL by one statement (WITH … INSERT), on
    # SQLite in one transaction (which shows BEGIN/COMMIT as statements).
    reads = [] if cached else ["SELECT"]
    writes = ["WITH"] if connection.vendor == "postgresql" else ["INSERT", "INSERT"]
    assert [s for s in statements if s in ("SELECT", "INSERT", "WITH")] == [*reads, *writes]
    assert len(queries) == len(reads) + (1 if connection.vendor == "postgresql" else 4)
    assert len(published) == 1
    name, args = published[0]
    expected = (
        "orders.tasks.execute_account_orders" if accounts == 1 else "orders.tasks.execute_webhook_orders"
    )
    assert name == expected
    assert args[1] == ([account.pk for account in linked] if accounts > 1 else linked[0].pk)


@pytest.mark.django_db(transaction=True)
def test_a_fan_out_is_logged_as_one_record_with_a_line_per_order(
    client: Client, make_strategy: Any, make_account: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A record per order cost the log handlers more than the rest of a 1,000-account accept."""
    import logging

    linked = [make_account(f"acct-{i:02d}") for i in range(3)]
    make_strategy(group_name="q", token="tok", accounts=linked)
    monkeypatch.setattr(celery_app, "send_task", lambda name, args, **kw: None)
    records: list[logging.LogRecord] = []
    handler = logging.Handler(logging.INFO)
    handler.emit = records.append  # type: ignore[method-assign]
    logger = logging.getLogger("quanttrade.webhook")
    logger.addHandler(handler)
    monkeypatch.setattr(logger, "level", logging.INFO)
    try:
        response = client.post("/api/webhook", data=json.dumps(BODY), content_type="application/json")
    finally:
        logger.removeHandler(handler)
    assert response.status_code == 202
    assert len(records) == 1  # the webhook's one line: what came, and the orders it made
    lines = records[0].getMessage().splitlines()
    assert lines[0].startswith("웹훅 수신: {") and "'token': '***'" in lines[0]
    assert lines[0].endswith(f" → 주문 생성 3건 (webhook_id={response.json()['webhook_id']}):")
    assert [line.split()[0] for line in lines[1:]] == [
        f"order_id={o['order_id']}" for o in response.json()["orders"]
    ]
    assert all("BTC/USDT BUY MARKET qty_per=10" in line for line in lines[1:])


def test_a_publish_on_a_new_thread_builds_no_result_backend(monkeypatch: pytest.MonkeyPatch) -> None:
    """Celery keeps its result backend per thread, and every request runs on a new one: a
    publish that reached for it (the result it would track, the AsyncResult it returns) built
    one per webhook. The product keeps no results, and its messages say so."""
    import threading

    from orders.services import _publish

    built: list[object] = []
    get_backend = celery_app._get_backend

    def counting() -> Any:
        backend = get_backend()
        built.append(backend)
        return backend

    monkeypatch.setattr(celery_app, "_get_backend", counting)
    sent: list[dict[str, Any]] = []
    send_message = celery_app.amqp.send_task_message

    def capture(producer: Any, name: str, message: Any, **options: Any) -> Any:
        sent.append(message.headers)
        return send_message(producer, name, message, **options)

    monkeypatch.setattr(celery_app.amqp, "send_task_message", capture)
    failed: list[BaseException] = []

    def publish() -> None:  # as a request's thread; an error after the send must not pass unseen
        try:
            _publish("tests.never-run", ["x", 1], {}, queue="qt-test-only")  # no worker reads it
        except BaseException as error:
            failed.append(error)

    thread = threading.Thread(target=publish)
    thread.start()
    thread.join()
    assert failed == []
    assert [headers["task"] for headers in sent] == ["tests.never-run"]
    assert sent[0]["ignore_result"] is True
    assert built == []
