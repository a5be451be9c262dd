"""The database is down: authenticated webhooks are spooled (202 "spooled", fsync'd file) and
replayed through the intake once it is back, exactly once, under the webhook_id the sender got
(issue #11, finding 3). The outage is simulated here; tests/chaos/ stops a real PostgreSQL."""

from __future__ import annotations

import json
import shutil
import stat
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from django.db import OperationalError
from django.test import Client

from orders.models import Order
from webhooks import services
from webhooks.models import WebhookEvent
from webhooks.spool import spool_files

pytestmark = pytest.mark.django_db

# The function itself, taken before the fixture below stubs the module attribute.
replay = services.webhooks_spool_replay


@pytest.fixture(autouse=True)
def _spool(settings: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    settings.DATA_DIR = tmp_path
    # Background replayers (started by any earlier webhook in this process) stay out of it:
    # the test drives the replay itself.
    monkeypatch.setattr(services, "webhooks_spool_replay", lambda: {})
    services._strategy_cache.clear()
    monkeypatch.setattr(services, "_db_down_until", 0.0)
    yield tmp_path / "spool"
    services._strategy_cache.clear()
    # What a test left spooled goes with it: the replayer thread, real again once the
    # monkeypatch is undone, must not replay it into the database after the test.
    shutil.rmtree(tmp_path / "spool", ignore_errors=True)


def body(**extra: Any) -> dict[str, Any]:
    return {
        "group_name": "my_strategy",
        "token": "test-token",
        "symbol": "BTC/USDT",
        "order_type": "MARKET",
        "side": "buy",
        "qty_per": 10,
        **extra,
    }


def post(client: Client, payload: dict[str, Any]) -> Any:
    return client.post("/api/webhook", data=json.dumps(payload), content_type="application/json")


class _Down:
    """Every query the intake makes fails as if the database were unreachable.

    Its patches are its own: leaving the block undoes them alone, so the fixture's stub of the
    background replayer stays (undoing the test's monkeypatch would let this process's replayer
    thread claim a spooled file while the test replays)."""

    def __init__(self) -> None:
        self.monkeypatch = pytest.MonkeyPatch()

    def __enter__(self) -> pytest.MonkeyPatch:
        def refuse(*_a: Any, **_k: Any) -> Any:
            raise OperationalError("connection refused (test)")

        self.monkeypatch.setattr(services.Strategy.objects, "filter", refuse)
        self.monkeypatch.setattr(services.StrategyAccount.objects, "filter", refuse)
        self.monkeypatch.setattr(services.WebhookEvent, "save", refuse)
        self.monkeypatch.setattr(services, "bulk_insert", refuse)  # the accepted event's insert
        self.monkeypatch.setattr(services, "bulk_insert_together", refuse)  # (without a key)
        return self.monkeypatch

    def __exit__(self, *_exc: Any) -> None:
        self.monkeypatch.undo()


def test_database_down_spools_an_authenticated_webhook_and_replays_it_once(
    client: Client, make_strategy: Any, _spool: Path
) -> None:
    make_strategy()
    assert post(client, body()).status_code == 202  # the process has now seen the strategy
    with _Down():
        response = post(client, body(idempotency_key="k-1"))
    assert response.status_code == 202
    answer = response.json()
    assert answer["status"] == "spooled" and answer["success"] is True and answer["orders"] == []
    webhook_id = answer["webhook_id"]
    [path] = spool_files()
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(_spool.stat().st_mode) == 0o700
    assert webhook_id in path.name
    assert not WebhookEvent.objects.filter(pk=webhook_id).exists()

    assert replay() == {"ingested": 1, "already": 0, "waiting": 0, "held": 0, "failed": 0}
    event = WebhookEvent.objects.get(pk=webhook_id)
    assert event.outcome == "accepted" and event.idempotency_key == "k-1"
    assert Order.objects.filter(webhook_id=webhook_id, status="queued").count() == 1
    assert spool_files() == []
    assert replay() == {"ingested": 0, "already": 0, "waiting": 0, "held": 0, "failed": 0}
    assert Order.objects.filter(webhook_id=webhook_id).count() == 1


def test_a_replayer_that_died_after_the_commit_does_not_ingest_twice(
    client: Client, make_strategy: Any
) -> None:
    make_strategy()
    post(client, body())
    with _Down():
        webhook_id = post(client, body()).json()["webhook_id"]
    [path] = spool_files()
    saved = path.read_bytes()
    assert replay()["ingested"] == 1
    path.write_bytes(saved)  # as if the process died between the commit and the unlink
    assert replay() == {"ingested": 0, "already": 1, "waiting": 0, "held": 0, "failed": 0}
    assert Order.objects.filter(webhook_id=webhook_id).count() == 1
    assert spool_files() == []


def test_replay_waits_while_the_database_is_still_down(client: Client, make_strategy: Any) -> None:
    make_strategy()
    post(client, body())
    with _Down() as down:
        post(client, body())
        post(client, body())
        down.setattr(services.WebhookEvent.objects, "filter", services.Strategy.objects.filter)
        assert replay() == {"ingested": 0, "already": 0, "waiting": 2, "held": 0, "failed": 0}
    assert len(spool_files()) == 2
    assert replay() == {
        "ingested": 2,
        "already": 0,
        "waiting": 0,
        "held": 0,
        "failed": 0,
    }  # back up: both ingested
    assert spool_files() == []
    assert Order.objects.count() == 3  # the first webhook's order and the two replayed ones


def test_database_error_while_storing_spools_too(client: Client, make_strategy: Any) -> None:
    make_strategy()

    def refuse(*_a: Any, **_k: Any) -> Any:
        raise OperationalError("server closed the connection unexpectedly (test)")

    with pytest.MonkeyPatch.context() as down:  # its own: the replayer's stub stays
        down.setattr(services, "bulk_insert", refuse)  # the accepted event's insert
        down.setattr(services, "bulk_insert_together", refuse)  # (without a key)
        answer = post(client, body()).json()
    assert answer["status"] == "spooled"
    assert replay()["ingested"] == 1
    assert Order.objects.filter(webhook_id=answer["webhook_id"]).count() == 1


def test_while_down_a_known_strategy_still_refuses_a_wrong_token_and_an_invalid_message(
    client: Client, make_strategy: Any
) -> None:
    make_strategy()
    post(client, body())
    with _Down():
        assert post(client, body(token="wrong")).status_code == 401
        refused = post(client, body(symbol="BTCUSDT"))
        assert refused.status_code == 400 and refused.json()["code"] == "invalid_symbol"
    assert spool_files() == []


def test_an_unknown_strategy_is_spooled_and_checked_on_replay(client: Client, make_strategy: Any) -> None:
    make_strategy()  # but this process has never looked it up: nothing in memory
    with _Down():
        good = post(client, body()).json()
        bad = post(client, body(token="wrong")).json()
    assert good["status"] == bad["status"] == "spooled"
    assert replay()["ingested"] == 2
    assert Order.objects.filter(webhook_id=good["webhook_id"]).count() == 1
    refused = WebhookEvent.objects.get(pk=bad["webhook_id"])
    assert refused.outcome == "rejected" and refused.error_code == "token_invalid"
    assert not Order.objects.filter(webhook_id=bad["webhook_id"]).exists()


def test_a_full_spool_is_refused_with_retry_later(client: Client, make_strategy: Any, settings: Any) -> None:
    settings.WEBHOOK_SPOOL_MAX_FILES = 1
    make_strategy()
    post(client, body())
    with _Down():
        assert post(client, body()).status_code == 202
        full = post(client, body())
    assert full.status_code == 503 and full.json()["code"] == "unavailable"


def test_a_fault_in_one_spooled_webhook_does_not_hold_up_the_ones_behind_it(
    client: Client, make_strategy: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Any error but the database's, on one spooled signal (here a fault planted in the intake
    for one of three): it is recorded as refused under the webhook_id its sender got, and the
    other two are placed. Before, the replay stopped at it on every pass, for good."""
    strategy = make_strategy()
    post(client, body())
    with _Down():
        ids = [post(client, body(comment=name)).json()["webhook_id"] for name in ("a", "bad", "b")]
    real_accept = services._accept

    def accept(state: Any, *args: Any, **kwargs: Any) -> Any:
        if state.payload.get("comment") == "bad":
            raise ArithmeticError("a planted fault")
        return real_accept(state, *args, **kwargs)

    monkeypatch.setattr(services, "_accept", accept)
    assert replay() == {"ingested": 3, "already": 0, "waiting": 0, "held": 0, "failed": 0}

    assert spool_files() == []
    good, bad, later = (WebhookEvent.objects.get(pk=i) for i in ids)
    assert (good.outcome, later.outcome) == ("accepted", "accepted")
    assert (bad.outcome, bad.error_code, bad.http_status) == ("rejected", "internal_error", 500)
    assert bad.strategy == strategy
    assert Order.objects.filter(webhook_id__in=[ids[0], ids[2]]).count() == 2
    assert not Order.objects.filter(webhook_id=ids[1]).exists()


def test_a_spooled_webhook_whose_refusal_cannot_be_stored_is_kept_aside(
    client: Client, make_strategy: Any, monkeypatch: pytest.MonkeyPatch, _spool: Path
) -> None:
    make_strategy()
    post(client, body())
    with _Down():
        ids = [post(client, body(comment=name)).json()["webhook_id"] for name in ("bad", "b")]

    def fail(state: Any, *args: Any, **kwargs: Any) -> Any:
        if b'"bad"' in state.raw_body:
            raise ArithmeticError("a planted fault")
        return real_ingest(state, *args, **kwargs)

    real_ingest = services._ingest
    monkeypatch.setattr(services, "_ingest", fail)
    monkeypatch.setattr(services, "_refused", lambda *_a: (_ for _ in ()).throw(ValueError("no record")))
    assert replay() == {"ingested": 1, "already": 0, "waiting": 0, "held": 0, "failed": 1}

    assert spool_files() == []
    [kept] = list(_spool.glob("*.failed"))
    assert ids[0] in kept.name
    assert not WebhookEvent.objects.filter(pk=ids[0]).exists()
    assert WebhookEvent.objects.get(pk=ids[1]).outcome == "accepted"


def test_a_signal_arriving_while_spooled_ones_wait_goes_behind_them(
    client: Client, make_strategy: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The database is back, the replay has not run yet: a signal sent after the outage (a sell
    closing what the spooled buy opened) is spooled behind the ones sent during it, and the replay
    creates their orders in the senders' order. Before, it was placed at once, ahead of them."""
    make_strategy()
    post(client, body())
    with _Down():
        during = post(client, body(side="buy")).json()["webhook_id"]
    monkeypatch.setattr(services, "_db_down_until", 0.0)  # the intake's backoff after the outage is over

    after = post(client, body(side="sell")).json()  # the database answers again

    assert after["status"] == "spooled" and after["orders"] == []
    assert not WebhookEvent.objects.filter(pk=after["webhook_id"]).exists()
    assert replay() == {"ingested": 2, "already": 0, "waiting": 0, "held": 0, "failed": 0}
    first = Order.objects.get(webhook_id=during)
    second = Order.objects.get(webhook_id=after["webhook_id"])
    assert (first.side, second.side) == ("BUY", "SELL")
    assert first.created_at <= second.created_at and first.pk != second.pk
    assert post(client, body()).json()["status"] == "queued"  # the spool is empty: straight in again


def test_with_replays_left_to_the_operator_no_replayer_runs_and_signals_go_straight_in(
    client: Client, make_strategy: Any, monkeypatch: pytest.MonkeyPatch, settings: Any
) -> None:
    """WEBHOOK_SPOOL_REPLAY_SECONDS=0 is "never" (README): no replayer thread (it looped without
    a pause before), and a signal after the outage is not held behind a spool nobody replays."""
    settings.WEBHOOK_SPOOL_REPLAY_SECONDS = 0
    monkeypatch.setattr(services, "_replayer", None)
    services.spool_replayer_start()
    assert services._replayer is None
    make_strategy()
    post(client, body())
    with _Down():
        post(client, body(side="buy"))
    monkeypatch.setattr(services, "_db_down_until", 0.0)

    assert post(client, body(side="sell")).json()["status"] == "queued"
    assert len(spool_files()) == 1  # waiting for `manage.py webhook_spool --replay`


def test_a_file_another_process_replays_stops_the_pass_so_nothing_overtakes_it(
    client: Client, make_strategy: Any
) -> None:
    """Two web processes replay the same spool: the second found the first's file locked,
    skipped it and ingested the next (a close sent after the open), which could commit first."""
    import fcntl
    import os

    make_strategy()
    post(client, body())
    with _Down():
        first = post(client, body(side="buy")).json()["webhook_id"]
        post(client, body(side="sell"))
    opening = spool_files()[0]
    assert first in opening.name
    fd = os.open(opening, os.O_RDONLY)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)  # another process replays it now
        assert replay() == {"ingested": 0, "already": 0, "waiting": 0, "held": 2, "failed": 0}
    finally:
        os.close(fd)
    assert replay() == {"ingested": 2, "already": 0, "waiting": 0, "held": 0, "failed": 0}


def test_a_spooled_signal_the_database_refuses_is_set_aside_and_the_rest_go_in(
    client: Client, make_strategy: Any, monkeypatch: pytest.MonkeyPatch, _spool: Path
) -> None:
    """A database error that is no outage (its data refused, every time): before, every pass
    stopped there as if the database were down, and every later signal waited behind it."""
    from django.db import DataError

    make_strategy()
    post(client, body())
    with _Down():
        ids = [post(client, body(comment=name)).json()["webhook_id"] for name in ("bad", "b")]
    real_ingest = services._ingest

    def refuse(state: Any, *args: Any, **kwargs: Any) -> Any:
        if b'"bad"' in state.raw_body:
            raise DataError("value too long for type character varying(20)")
        return real_ingest(state, *args, **kwargs)

    monkeypatch.setattr(services, "_ingest", refuse)
    assert replay() == {"ingested": 1, "already": 0, "waiting": 0, "held": 0, "failed": 1}
    [kept] = list(_spool.glob("*.failed"))
    assert ids[0] in kept.name
    assert WebhookEvent.objects.get(pk=ids[1]).outcome == "accepted"
    assert spool_files() == []
