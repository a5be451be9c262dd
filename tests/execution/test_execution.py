"""Execution: webhook → orders → Celery worker → paper venue → statuses (a real worker thread)."""

from __future__ import annotations

import asyncio
import itertools
import json
import time
from datetime import timedelta
from decimal import Decimal
from typing import Any

import pytest
from asgiref.sync import async_to_sync, sync_to_async
from channels.layers import get_channel_layer
from django.contrib.auth import get_user_model
from django.test import Client
from django.utils import timezone

from live import bus
from orders import exchanges
from orders.exchanges.base import (
    AttemptTakenBack,
    OrderRejected,
    OrderRequest,
    OrderResult,
    OrderUncertain,
    RetryableVenueError,
)
from orders.exchanges.paper import PaperAdapter
from orders.models import Order, PaperBalance, PaperOrder
from orders.services import (
    ExecutionRetry,
    account_orders_execute,
    order_claim,
    order_record,
    order_request,
    orders_sweep,
)
from orders.tasks import execute_account_orders, paper_match
from webhooks.models import WebhookEvent, WebhookOutcome
from webhooks.selectors import webhook_result

D = Decimal


def make_orders(
    strategy: Any, accounts: list[Any], specs: list[dict[str, Any]], symbol: str = "BTC/USDT"
) -> WebhookEvent:
    """Rows as the intake writes them (contract 1), without dispatching any task."""
    event = WebhookEvent.objects.create(
        strategy=strategy, group_name=strategy.group_name, outcome=WebhookOutcome.ACCEPTED, http_status=202
    )
    for account in accounts:
        for sequence, spec in enumerate(specs):
            order = Order(
                webhook=event,
                strategy=strategy,
                account=account,
                sequence=sequence,
                batch_index=sequence + 1,
                market_type=strategy.market_type,
                symbol=spec.get("symbol", symbol),
                currency=symbol.split("/")[-1] if "/" in symbol else "KRW",
                side=spec.get("side", ""),
                order_type=spec.get("order_type", "MARKET"),
                qty_per=D(str(spec["qty_per"])) if "qty_per" in spec else None,
                price=D(str(spec["price"])) if "price" in spec else None,
                stop_price=D(str(spec["stop_price"])) if "stop_price" in spec else None,
            )
            order.client_order_id = "qt" + order.id.hex
            order.save()
    return event


def statuses(event: WebhookEvent, account: Any | None = None) -> list[str]:
    qs = Order.objects.filter(webhook=event).order_by("account__name", "sequence")
    if account is not None:
        qs = qs.filter(account=account)
    return list(qs.values_list("status", flat=True))


# --- the task, without a worker --------------------------------------------------------------


@pytest.mark.django_db
def test_running_the_task_twice_places_each_order_once(
    make_strategy: Any, make_account: Any, publish_price: Any
) -> None:
    account = make_account("a1", balances={"USDT": "10000"})
    strategy = make_strategy(accounts=[account])
    event = make_orders(strategy, [account], [{"side": "BUY", "qty_per": 10}])
    publish_price("BINANCE:BTC/USDT", "50000")
    execute_account_orders.apply(args=[str(event.id), account.pk])
    execute_account_orders.apply(args=[str(event.id), account.pk])
    order = Order.objects.get(webhook=event)
    assert (order.status, order.attempts, order.filled_qty) == ("filled", 1, D("0.02"))
    assert PaperOrder.objects.count() == 1
    assert PaperBalance.objects.get(account=account, asset="USDT").free == D("9000")


@pytest.mark.django_db
def test_an_eager_task_keeps_the_tests_connection_while_the_session_worker_runs(
    _celery_worker_session: Any, make_strategy: Any, make_account: Any, publish_price: Any
) -> None:
    """Once a test in this process has started the session's Celery worker, the worker's
    "close the thread's connections after a task" hook is connected; a task applied eagerly runs
    in the test's own thread, inside its transaction, and must leave that connection open (it
    closed it: whichever test ran eagerly after a worker test failed, by test order)."""
    account = make_account("a1", balances={"USDT": "10000"})
    strategy = make_strategy(accounts=[account])
    event = make_orders(strategy, [account], [{"side": "BUY", "qty_per": 10}])
    publish_price("BINANCE:BTC/USDT", "50000")
    execute_account_orders.apply(args=[str(event.id), account.pk])
    order = Order.objects.get(webhook=event)
    assert (order.status, order.filled_qty) == ("filled", D("0.02"))


@pytest.mark.django_db
def test_a_rejected_order_records_the_reason_and_the_next_order_still_runs(
    make_strategy: Any, make_account: Any, publish_price: Any
) -> None:
    account = make_account("f1", balances={"USDT": "10000"})
    strategy = make_strategy(market_type="FUTURES", accounts=[account])
    event = make_orders(
        strategy, [account], [{"side": "SELL", "qty_per": -100}, {"side": "BUY", "qty_per": 10}]
    )
    publish_price("BINANCE:BTC/USDT", "20000")
    account_orders_execute(event.id, account.pk)
    close, buy = Order.objects.filter(webhook=event).order_by("sequence")
    assert (close.status, close.message) == ("rejected", "청산할 롱 포지션이 없습니다")
    assert buy.status == "filled"


@pytest.mark.django_db
def test_market_order_without_a_price_is_rejected_on_the_order(
    make_strategy: Any, make_account: Any, no_prices: None
) -> None:
    account = make_account("a1", balances={"USDT": "10000"})
    event = make_orders(make_strategy(accounts=[account]), [account], [{"side": "BUY", "qty_per": 10}])
    account_orders_execute(event.id, account.pk)
    order = Order.objects.get(webhook=event)
    assert (order.status, order.message) == ("rejected", "시세 정보가 없습니다: BINANCE:BTC/USDT")


def resting_buy(make_strategy: Any, make_account: Any, publish_price: Any) -> tuple[Any, Any, WebhookEvent]:
    """A funded paper account of its own strategy, with a limit buy resting under the price."""
    account = make_account("a1", balances={"USDT": "10000"})
    strategy = make_strategy(accounts=[account])
    publish_price("BINANCE:BTC/USDT", "50000")
    limits = make_orders(
        strategy, [account], [{"side": "BUY", "order_type": "LIMIT", "price": 40000, "qty_per": 10}]
    )
    account_orders_execute(limits.id, account.pk)
    assert statuses(limits) == ["open"]
    return account, strategy, limits


@pytest.mark.django_db
def test_cancel_all_ends_cancelled_with_the_count_and_cancels_the_resting_orders(
    make_strategy: Any, make_account: Any, publish_price: Any
) -> None:
    account, strategy, limits = resting_buy(make_strategy, make_account, publish_price)
    cancel = make_orders(strategy, [account], [{"order_type": "CANCEL_ALL_ORDER"}])
    account_orders_execute(cancel.id, account.pk)
    order = Order.objects.get(webhook=cancel)
    assert (order.status, order.cancelled_orders) == ("cancelled", 1)
    assert statuses(limits) == ["cancelled"]
    assert PaperBalance.objects.get(account=account, asset="USDT").locked == 0
    again = make_orders(strategy, [account], [{"order_type": "CANCEL_ALL_ORDER", "symbol": ""}])
    account_orders_execute(again.id, account.pk)
    order = Order.objects.get(webhook=again)
    assert (order.status, order.cancelled_orders, order.message) == (
        "cancelled",
        0,
        "취소할 미체결 주문이 없습니다",
    )
    assert webhook_result(again)["orders"][0]["cancelled_orders"] == 0


@pytest.mark.django_db
def test_paper_match_fills_a_resting_order_and_pushes_its_new_status(
    make_strategy: Any, make_account: Any, publish_price: Any
) -> None:
    account = make_account("a1", balances={"USDT": "10000"})
    event = make_orders(
        make_strategy(accounts=[account]),
        [account],
        [{"side": "BUY", "order_type": "LIMIT", "price": 40000, "qty_per": 10}],
    )
    publish_price("BINANCE:BTC/USDT", "50000")
    account_orders_execute(event.id, account.pk)
    bus.flush(5)  # the execution's own pushes are out before the listener joins
    layer = get_channel_layer()

    async def listen_while_matching() -> tuple[int, dict[str, Any]]:
        # One event loop for the whole exchange: the pub/sub Redis layer is per event loop.
        channel = await layer.new_channel()
        await layer.group_add("orders", channel)
        await sync_to_async(publish_price)("BINANCE:BTC/USDT", "39500")
        changed = await sync_to_async(paper_match)()
        return changed, await asyncio.wait_for(layer.receive(channel), 10)

    changed, message = async_to_sync(listen_while_matching)()
    assert changed == 1
    order = Order.objects.get(webhook=event)
    assert (order.status, order.filled_qty, order.avg_price) == ("filled", D("0.025"), D("39500"))
    assert message["type"] == "order.update"
    assert message["order"]["order_id"] == str(order.id) and message["order"]["status"] == "filled"
    assert message["order"]["avg_price"] == "39500" and message["order"]["filled_qty"] == "0.025"
    json.dumps(message)  # JSON-safe
    assert paper_match() == 0


@pytest.mark.django_db
def test_a_fill_found_by_the_matcher_is_not_overwritten_by_the_workers_late_answer(
    make_strategy: Any, make_account: Any, publish_price: Any
) -> None:
    account = make_account("a1", balances={"USDT": "10000"})
    event = make_orders(
        make_strategy(accounts=[account]),
        [account],
        [{"side": "BUY", "order_type": "LIMIT", "price": 40000, "qty_per": 10}],
    )
    publish_price("BINANCE:BTC/USDT", "50000")
    order = order_claim(Order.objects.get(webhook=event).pk)
    answer = PaperAdapter(account).place_order(order_request(order))  # the venue says: open
    publish_price("BINANCE:BTC/USDT", "39000")
    assert paper_match() == 1  # the matcher fills it before the worker records its answer
    assert order_record(order, answer) is False
    order.refresh_from_db()
    assert (order.status, order.avg_price) == ("filled", D("39000"))


@pytest.mark.django_db
def test_cancel_all_records_a_resting_order_the_venue_filled_first_as_filled(
    make_strategy: Any, make_account: Any, publish_price: Any
) -> None:
    from orders.exchanges.paper import paper_match as venue_match  # fills without syncing Orders

    account = make_account("a1", balances={"USDT": "10000"})
    strategy = make_strategy(accounts=[account])
    publish_price("BINANCE:BTC/USDT", "50000")
    limit = make_orders(
        strategy, [account], [{"side": "BUY", "order_type": "LIMIT", "price": 40000, "qty_per": 10}]
    )
    account_orders_execute(limit.id, account.pk)
    publish_price("BINANCE:BTC/USDT", "39000")
    assert len(venue_match()) == 1
    cancel = make_orders(strategy, [account], [{"order_type": "CANCEL_ALL_ORDER"}])
    account_orders_execute(cancel.id, account.pk)
    assert statuses(limit) == ["filled"]
    assert Order.objects.get(webhook=cancel).cancelled_orders == 0


class UncertainPaper(PaperAdapter):
    """The paper venue behind a network that loses the first answer (the order did go through)."""

    lost: set[str] = set()
    placed: list[str] = []  # the client ids of every placement the venue received

    def place_order(self, request: OrderRequest) -> OrderResult:
        self.placed.append(request.client_order_id)
        result = super().place_order(request)
        if request.client_order_id not in self.lost:
            self.lost.add(request.client_order_id)
            raise OrderUncertain("timeout after sending")
        return result


@pytest.mark.django_db
def test_an_uncertain_placement_is_looked_up_by_client_id_not_placed_twice(
    make_strategy: Any, make_account: Any, publish_price: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(exchanges.ADAPTERS, "UNCERTAIN", f"{__name__}.UncertainPaper")
    monkeypatch.setattr(UncertainPaper, "placed", [])
    account = make_account("u1", exchange="UNCERTAIN", balances={"USDT": "10000"})
    event = make_orders(make_strategy(accounts=[account]), [account], [{"side": "BUY", "qty_per": 10}])
    publish_price("BINANCE:BTC/USDT", "50000")
    account_orders_execute(event.id, account.pk)
    assert statuses(event) == ["filled"]
    # The lost answer was looked up by client id: the venue received the order once.
    assert UncertainPaper.placed == [Order.objects.get(webhook=event).client_order_id]
    assert PaperOrder.objects.count() == 1
    assert PaperBalance.objects.get(account=account, asset="USDT").free == D("9000")


class LostRequestPaper(PaperAdapter):
    """The paper venue behind a network that drops the first request before it arrives."""

    dropped: set[str] = set()

    def place_order(self, request: OrderRequest) -> OrderResult:
        if request.client_order_id not in self.dropped:
            self.dropped.add(request.client_order_id)
            raise OrderUncertain("timeout")
        return super().place_order(request)


@pytest.mark.django_db
def test_an_uncertain_placement_the_venue_never_saw_is_placed_again_with_the_same_client_id(
    make_strategy: Any, make_account: Any, publish_price: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(exchanges.ADAPTERS, "LOST", f"{__name__}.LostRequestPaper")
    account = make_account("l1", exchange="LOST", balances={"USDT": "10000"})
    event = make_orders(make_strategy(accounts=[account]), [account], [{"side": "BUY", "qty_per": 10}])
    publish_price("BINANCE:BTC/USDT", "50000")
    with pytest.raises(ExecutionRetry):  # not found at once: looked up again after a backoff
        account_orders_execute(event.id, account.pk)
    # The paper venue refuses a repeated client id whatever the order's state: it is sent again.
    account_orders_execute(event.id, account.pk)
    order = Order.objects.get(webhook=event)
    assert order.status == "filled"
    assert list(PaperOrder.objects.values_list("client_order_id", flat=True)) == [order.client_order_id]


class ScriptedPaper(PaperAdapter):
    """The paper venue behind a network that answers each placement as ``script`` says, in
    turn: "lost" (the request never arrives), "timeout" (placed, the answer lost), "ok"."""

    script: list[str] = []
    requests: list[str] = []  # every placement request sent (client ids)

    def place_order(self, request: OrderRequest) -> OrderResult:
        self.requests.append(request.client_order_id)
        step = self.script.pop(0) if self.script else "ok"
        if step == "lost":
            raise OrderUncertain("Paper API 오류: connection closed")
        result = super().place_order(request)
        if step == "timeout":
            raise OrderUncertain("Paper API 오류: read timeout")
        return result


class ScriptedOpenIdsPaper(ScriptedPaper):
    """The same network in front of a venue that, like Binance, accepts a closed order's id."""

    client_id_refused_in_every_state = False


def _run_until_settled(event: WebhookEvent, account: Any) -> int:
    """Run the task as the worker would, retry after retry; returns how many runs it took."""
    for runs in range(1, 20):
        try:
            account_orders_execute(event.id, account.pk)
        except ExecutionRetry:
            continue
        return runs
    raise AssertionError("the order never settled")


@pytest.mark.django_db
@pytest.mark.parametrize("script", [["lost", "timeout"], ["lost", "lost", "timeout"], ["timeout", "timeout"]])
def test_a_second_uncertain_answer_ends_with_one_venue_order_where_a_repeat_is_refused(
    make_strategy: Any,
    make_account: Any,
    publish_price: Any,
    monkeypatch: pytest.MonkeyPatch,
    settings: Any,
    script: list[str],
) -> None:
    """Finding #7: `lost` then `timeout` ended the order `failed` after one attempt while the
    venue held it filled (OrderUncertain was not retried)."""
    settings.ORDER_UNCERTAIN_LOOKUPS = 4
    monkeypatch.setitem(exchanges.ADAPTERS, "SCRIPTED", f"{__name__}.ScriptedPaper")
    monkeypatch.setattr(ScriptedPaper, "script", list(script))
    monkeypatch.setattr(ScriptedPaper, "requests", [])
    account = make_account("s1", exchange="SCRIPTED", balances={"USDT": "10000"})
    event = make_orders(make_strategy(accounts=[account]), [account], [{"side": "BUY", "qty_per": 10}])
    publish_price("BINANCE:BTC/USDT", "50000")

    _run_until_settled(event, account)

    order = Order.objects.get(webhook=event)
    assert (order.status, order.uncertain_attempt) == ("filled", 1)
    assert list(PaperOrder.objects.values_list("client_order_id", flat=True)) == [order.client_order_id]


@pytest.mark.django_db
def test_an_uncertain_order_is_only_looked_up_where_a_closed_orders_id_is_accepted_again(
    make_strategy: Any, make_account: Any, publish_price: Any, monkeypatch: pytest.MonkeyPatch, settings: Any
) -> None:
    settings.ORDER_UNCERTAIN_LOOKUPS = 3
    monkeypatch.setitem(exchanges.ADAPTERS, "OPENIDS", f"{__name__}.ScriptedOpenIdsPaper")
    monkeypatch.setattr(ScriptedPaper, "script", ["lost"])
    monkeypatch.setattr(ScriptedPaper, "requests", [])
    account = make_account("o1", exchange="OPENIDS", balances={"USDT": "10000"})
    event = make_orders(make_strategy(accounts=[account]), [account], [{"side": "BUY", "qty_per": 10}])
    publish_price("BINANCE:BTC/USDT", "50000")

    runs = _run_until_settled(event, account)

    order = Order.objects.get(webhook=event)
    assert runs == 4  # the first attempt, then three lookups
    assert ScriptedPaper.requests == [order.client_order_id]  # sent once, never again
    assert PaperOrder.objects.count() == 0
    assert order.status == "failed"
    assert order.message == (
        "주문 접수 여부를 확인할 수 없습니다. 거래소에서 직접 확인하세요. (Paper API 오류: connection closed)"
    )


class DownPaper(PaperAdapter):
    def place_order(self, request: OrderRequest) -> OrderResult:
        raise RetryableVenueError("Paper API 오류: 점검 중")


@pytest.mark.django_db
def test_retryable_errors_end_in_failed_after_the_maximum_attempts(
    make_strategy: Any, make_account: Any, monkeypatch: pytest.MonkeyPatch, settings: Any
) -> None:
    settings.ORDER_MAX_ATTEMPTS = 2
    monkeypatch.setitem(exchanges.ADAPTERS, "DOWN", f"{__name__}.DownPaper")
    account = make_account("d1", exchange="DOWN", balances={"USDT": "10000"})
    event = make_orders(
        make_strategy(accounts=[account]),
        [account],
        [{"side": "BUY", "qty_per": 10}, {"side": "BUY", "qty_per": 5}],
    )
    with pytest.raises(ExecutionRetry):
        account_orders_execute(event.id, account.pk)
    assert statuses(event) == ["queued", "queued"]  # the second waits for the first
    with pytest.raises(ExecutionRetry):  # the first gives up; the second gets its first try
        account_orders_execute(event.id, account.pk)
    first, second = Order.objects.filter(webhook=event).order_by("sequence")
    assert (first.status, first.attempts, first.message) == ("failed", 2, "Paper API 오류: 점검 중")
    assert (second.status, second.attempts) == ("queued", 1)


@pytest.mark.django_db
def test_sweep_reconciles_a_submitted_order_the_venue_already_has(
    make_strategy: Any, make_account: Any, publish_price: Any
) -> None:
    account = make_account("a1", balances={"USDT": "10000"})
    event = make_orders(make_strategy(accounts=[account]), [account], [{"side": "BUY", "qty_per": 10}])
    order = Order.objects.get(webhook=event)
    publish_price("BINANCE:BTC/USDT", "50000")
    # The worker sent the order, then died before recording the answer.
    placed = PaperAdapter(account).place_order(
        OrderRequest(order.client_order_id, "SPOT", "BTC/USDT", "BUY", "MARKET", qty_per=D(10))
    )
    Order.objects.filter(pk=order.pk).update(
        status="submitted", attempts=1, updated_at=timezone.now() - timedelta(seconds=60)
    )
    assert orders_sweep(stale_after_seconds=30) == {
        "redispatched": 0,
        "reconciled": 0,
        "refreshed": 0,
    }  # may be in flight
    Order.objects.filter(pk=order.pk).update(updated_at=timezone.now() - timedelta(minutes=5))
    assert orders_sweep(stale_after_seconds=30) == {"redispatched": 0, "reconciled": 1, "refreshed": 0}
    order.refresh_from_db()
    assert (order.status, order.exchange_order_id, order.filled_qty) == (
        "filled",
        placed.exchange_order_id,
        D("0.02"),
    )
    assert PaperOrder.objects.count() == 1


@pytest.mark.django_db
def test_sweep_settles_at_once_an_order_whose_worker_died(
    make_strategy: Any, make_account: Any, publish_price: Any
) -> None:
    """A worker killed mid-order (kill -9) stops beating: its submitted orders are settled at
    the next sweep, not after SUBMITTED_STALE_FACTOR x ORDER_STALE_AFTER_SECONDS (#11)."""
    from django.core.cache import cache

    from orders import liveness

    account = make_account("a1", balances={"USDT": "10000"})
    event = make_orders(make_strategy(accounts=[account]), [account], [{"side": "BUY", "qty_per": 10}])
    order = Order.objects.get(webhook=event)
    publish_price("BINANCE:BTC/USDT", "50000")
    placed = PaperAdapter(account).place_order(
        OrderRequest(order.client_order_id, "SPOT", "BTC/USDT", "BUY", "MARKET", qty_per=D(10))
    )
    Order.objects.filter(pk=order.pk).update(status="submitted", attempts=1, updated_at=timezone.now())
    cache.set(f"qt:claim:{order.pk}", "gone-host:4242", timeout=60)  # its holder: no heartbeat
    cache.set("qt:worker:live-host:1", 1, timeout=60)

    assert orders_sweep(stale_after_seconds=30)["reconciled"] == 1
    order.refresh_from_db()
    assert (order.status, order.exchange_order_id) == ("filled", placed.exchange_order_id)

    # An order whose holder still beats is left to it, however the sweep is asked.
    Order.objects.filter(pk=order.pk).update(status="submitted", updated_at=timezone.now())
    cache.set(f"qt:claim:{order.pk}", "live-host:1", timeout=60)
    assert orders_sweep(stale_after_seconds=30)["reconciled"] == 0
    assert liveness.holder_state(order.pk) == liveness.HOLDER_ALIVE


@pytest.mark.django_db
def test_an_order_whose_worker_died_before_sending_is_simply_sent_again(
    make_strategy: Any, make_account: Any
) -> None:
    """Claimed, then the worker died before any request left (no send mark): the venue cannot
    have it, so it goes back to the queue as a normal order, not an uncertain one."""
    from django.core.cache import cache

    account = make_account("a1", balances={"USDT": "10000"})
    event = make_orders(make_strategy(accounts=[account]), [account], [{"side": "BUY", "qty_per": 10}])
    order = Order.objects.get(webhook=event)
    Order.objects.filter(pk=order.pk).update(status="submitted", attempts=1, updated_at=timezone.now())
    cache.set(f"qt:claim:{order.pk}", "gone-host:4242", timeout=60)

    assert orders_sweep(stale_after_seconds=30)["redispatched"] == 1
    order.refresh_from_db()
    assert (order.status, order.uncertain_attempt) == ("queued", None)

    # Had the request started to leave, whether the venue got it is unknown: looked up only.
    Order.objects.filter(pk=order.pk).update(status="submitted", updated_at=timezone.now())
    cache.set(f"qt:sending:{order.pk}", "gone-host:4242", timeout=60)
    orders_sweep(stale_after_seconds=30)
    order.refresh_from_db()
    assert order.status == "queued" and order.uncertain_attempt is not None


@pytest.mark.django_db
def test_a_holder_judged_dead_while_only_slow_never_sends_the_attempt_the_sweep_took_back(
    make_strategy: Any, make_account: Any, publish_price: Any
) -> None:
    """The sweep judged the holder dead (its heartbeat lost for a moment, Redis restarting) before
    any request left, and put the order back to be simply sent again. The holder, only slow,
    then reaches the point of sending: it must not, or the venue would get the order from
    both attempts (KIS and Kiwoom have no client id to catch a repeat). Exactly one order
    reaches the venue, from the next attempt."""
    from orders.services import order_execute, order_reconcile

    account = make_account("a1", balances={"USDT": "10000"})
    event = make_orders(make_strategy(accounts=[account]), [account], [{"side": "BUY", "qty_per": 10}])
    publish_price("BINANCE:BTC/USDT", "50000")
    slow = order_claim(Order.objects.get(webhook=event).pk)  # this process holds attempt 1
    assert slow is not None and slow.attempts == 1

    assert order_reconcile(Order.objects.get(pk=slow.pk)) is True  # judged dead, never sent
    assert Order.objects.get(pk=slow.pk).status == "queued"
    with pytest.raises(AttemptTakenBack):
        order_execute(slow, PaperAdapter(account))  # the slow holder goes on
    assert PaperOrder.objects.count() == 0  # it did not send
    assert Order.objects.get(pk=slow.pk).status == "queued"  # nor wrote anything

    account_orders_execute(event.id, account.pk)
    order = Order.objects.get(pk=slow.pk)
    assert (order.status, order.attempts) == ("filled", 2)
    assert PaperOrder.objects.count() == 1


@pytest.mark.django_db
def test_a_slow_holder_that_comes_back_after_the_newer_attempt_sent_does_not_send_again(
    make_strategy: Any, make_account: Any, publish_price: Any
) -> None:
    """As above, but the newer attempt marks and sends first: the slow holder then finds a
    later attempt's mark and neither sends nor writes (the order stays as the newer attempt
    recorded it)."""
    from orders.services import order_execute, order_reconcile

    account = make_account("a1", balances={"USDT": "10000"})
    event = make_orders(make_strategy(accounts=[account]), [account], [{"side": "BUY", "qty_per": 10}])
    publish_price("BINANCE:BTC/USDT", "50000")
    slow = order_claim(Order.objects.get(webhook=event).pk)
    assert slow is not None
    assert order_reconcile(Order.objects.get(pk=slow.pk)) is True  # judged dead, never sent

    account_orders_execute(event.id, account.pk)  # the newer attempt sends and fills
    with pytest.raises(AttemptTakenBack):
        order_execute(slow, PaperAdapter(account))
    order = Order.objects.get(pk=slow.pk)
    assert (order.status, order.attempts, PaperOrder.objects.count()) == ("filled", 2, 1)


def _cancel_all_then_a_resting_buy(
    make_strategy: Any, make_account: Any, publish_price: Any
) -> tuple[Any, Any]:
    """An account with a resting buy, and a webhook whose batch cancels all and then places a
    new resting buy: its cancel-all claimed by this process (attempt 1), which the sweep then
    judges dead while it is only slow."""
    from orders.services import order_reconcile

    account, strategy, _ = resting_buy(make_strategy, make_account, publish_price)
    event = make_orders(
        strategy,
        [account],
        [
            {"order_type": "CANCEL_ALL_ORDER", "symbol": ""},
            {"order_type": "LIMIT", "side": "BUY", "qty_per": 1, "price": 41000},
        ],
    )
    slow = order_claim(Order.objects.get(webhook=event, sequence=0).pk)
    assert slow is not None and slow.attempts == 1
    assert order_reconcile(Order.objects.get(pk=slow.pk)) is True  # judged dead: run again
    return event, slow


@pytest.mark.django_db
def test_a_slow_holder_of_a_cancel_all_run_again_does_not_cancel_what_the_rerun_placed(
    make_strategy: Any, make_account: Any, publish_price: Any
) -> None:
    """The rerun cancels the resting buy and places the batch's new one; the slow holder then
    reaches its cancel-all: it finds the later attempt's mark and sends nothing, so the new
    resting buy stays open (before, a cancel-all took no send mark and cancelled it late)."""
    from orders.services import order_execute

    event, slow = _cancel_all_then_a_resting_buy(make_strategy, make_account, publish_price)
    account = slow.account
    account_orders_execute(event.id, account.pk)
    assert statuses(event) == ["cancelled", "open"]
    with pytest.raises(AttemptTakenBack):
        order_execute(slow, PaperAdapter(account))
    assert statuses(event) == ["cancelled", "open"]  # the rerun's buy still rests
    assert Order.objects.get(webhook=event, sequence=0).attempts == 2


@pytest.mark.django_db
def test_a_slow_holder_of_a_cancel_all_taken_back_sends_nothing_and_the_rerun_runs_it(
    make_strategy: Any, make_account: Any, publish_price: Any
) -> None:
    """The slow holder comes back before the rerun: the sweep's verdict took its attempt back,
    so it neither sends nor writes; the rerun then cancels and places as the batch says."""
    from orders.services import order_execute

    event, slow = _cancel_all_then_a_resting_buy(make_strategy, make_account, publish_price)
    account = slow.account
    with pytest.raises(AttemptTakenBack):
        order_execute(slow, PaperAdapter(account))
    earlier_open = Order.objects.filter(account=account, status="open").count()
    assert earlier_open == 1  # nothing was cancelled by the slow holder
    assert statuses(event) == ["queued", "queued"]
    account_orders_execute(event.id, account.pk)
    assert statuses(event) == ["cancelled", "open"]
    cancel_all = Order.objects.get(webhook=event, sequence=0)
    assert (cancel_all.attempts, cancel_all.cancelled_orders) == (2, 1)


@pytest.mark.django_db
def test_an_attempt_the_sweep_could_not_take_back_is_sent_when_claimed_again(
    make_strategy: Any, make_account: Any, publish_price: Any
) -> None:
    """The sweep judged the holder dead from a copy read a moment ago, but the holder had given
    its attempt back meanwhile (held by a rate limit: the order `queued`, the attempt number
    given back). The sweep cannot put it back, so its taken-back mark goes too: the next claim,
    which has the same attempt number again, sends the order."""
    from orders.services import order_reconcile

    account = make_account("a1", balances={"USDT": "10000"})
    event = make_orders(make_strategy(accounts=[account]), [account], [{"side": "BUY", "qty_per": 10}])
    publish_price("BINANCE:BTC/USDT", "50000")
    claimed = order_claim(Order.objects.get(webhook=event).pk)
    assert claimed is not None
    sweeps_copy = Order.objects.get(pk=claimed.pk)
    Order.objects.filter(pk=claimed.pk).update(status="queued", attempts=0)  # given back

    assert order_reconcile(sweeps_copy) is False
    account_orders_execute(event.id, account.pk)
    order = Order.objects.get(pk=claimed.pk)
    assert (order.status, order.attempts, PaperOrder.objects.count()) == ("filled", 1, 1)


@pytest.mark.django_db
def test_a_slow_holders_refusal_never_overwrites_the_newer_attempt(
    make_strategy: Any, make_account: Any
) -> None:
    """A holder judged dead, only slow, that refuses its order (a guard rail) before it would
    send writes nothing: the order is the newer attempt's, which is sending it."""
    from orders.services import _order_fail, order_reconcile

    account = make_account("a1", balances={"USDT": "10000"})
    event = make_orders(make_strategy(accounts=[account]), [account], [{"side": "BUY", "qty_per": 10}])
    slow = order_claim(Order.objects.get(webhook=event).pk)
    assert slow is not None
    assert order_reconcile(Order.objects.get(pk=slow.pk)) is True
    newer = order_claim(slow.pk)
    assert newer is not None and newer.attempts == 2

    _order_fail(slow, "rejected", "risk limit")
    order = Order.objects.get(pk=slow.pk)
    assert (order.status, order.attempts, order.message) == ("submitted", 2, "")


@pytest.mark.django_db
def test_a_second_run_of_a_pair_never_overtakes_the_order_the_first_is_executing(
    make_strategy: Any, make_account: Any, publish_price: Any
) -> None:
    """The pair was dispatched twice (a re-dispatch while a busy worker held the first
    message). The first run is executing the batch's cancel-all; the second must not place
    the batch's next order before it (the cancel-all could then cancel it at the venue)."""
    account = make_account("a1", balances={"USDT": "10000"})
    publish_price("BINANCE:BTC/USDT", "50000")
    event = make_orders(
        make_strategy(accounts=[account]),
        [account],
        [
            {"order_type": "CANCEL_ALL_ORDER"},
            {"order_type": "LIMIT", "side": "BUY", "qty_per": 10, "price": 40000},
        ],
    )
    cancel_all, limit = Order.objects.filter(webhook=event).order_by("sequence")
    Order.objects.filter(pk=cancel_all.pk).update(status="submitted", attempts=1)  # the first run's

    account_orders_execute(event.id, account.pk)  # the second run
    limit.refresh_from_db()
    assert (limit.status, PaperOrder.objects.count()) == ("queued", 0)

    Order.objects.filter(pk=cancel_all.pk).update(status="cancelled")  # the first run's cancel-all ended
    account_orders_execute(event.id, account.pk)  # (the first run would take it now)
    limit.refresh_from_db()
    assert limit.status == "open"


@pytest.mark.django_db
def test_a_slow_live_holders_order_is_only_looked_up_never_simply_sent_again(
    make_strategy: Any, make_account: Any
) -> None:
    """Claimed by a worker that still beats but has not sent for longer than the sweep's bound
    (waiting for its venue, a lock, a rate limit): it may yet send, so the next attempt only
    looks the order up, whether or not its send mark is there."""
    from django.core.cache import cache

    account = make_account("a1", balances={"USDT": "10000"})
    event = make_orders(make_strategy(accounts=[account]), [account], [{"side": "BUY", "qty_per": 10}])
    order = Order.objects.get(webhook=event)
    Order.objects.filter(pk=order.pk).update(
        status="submitted", attempts=1, updated_at=timezone.now() - timedelta(minutes=5)
    )
    cache.set(f"qt:claim:{order.pk}", "slow-host:7", timeout=60)
    cache.set("qt:worker:slow-host:7", 1, timeout=60)  # it beats

    assert orders_sweep(stale_after_seconds=30)["reconciled"] == 1
    order.refresh_from_db()
    assert (order.status, order.uncertain_attempt) == ("queued", 1)


@pytest.mark.django_db
def test_a_sweep_from_an_old_copy_never_takes_an_order_from_a_newer_claim(
    make_strategy: Any, make_account: Any
) -> None:
    """A sweep read the order at its first attempt; meanwhile it was requeued and claimed again
    (attempt 2, its worker about to send). Settling the old copy leaves the new claim alone."""
    from orders.services import order_reconcile

    account = make_account("a1", balances={"USDT": "10000"})
    event = make_orders(make_strategy(accounts=[account]), [account], [{"side": "BUY", "qty_per": 10}])
    Order.objects.filter(webhook=event).update(status="submitted", attempts=1)
    old_copy = Order.objects.select_related("account").get(webhook=event)
    Order.objects.filter(webhook=event).update(attempts=2)  # requeued and claimed again since

    assert order_reconcile(old_copy) is False
    order = Order.objects.get(webhook=event)
    assert (order.status, order.attempts, order.uncertain_attempt) == ("submitted", 2, None)


@pytest.mark.django_db
def test_one_sweep_at_a_time_and_a_dead_sweepers_turn_is_taken_over(
    make_strategy: Any, make_account: Any
) -> None:
    from django.core.cache import cache

    from orders import liveness

    account = make_account("a1", balances={"USDT": "10000"})
    event = make_orders(make_strategy(accounts=[account]), [account], [{"side": "BUY", "qty_per": 10}])
    Order.objects.filter(webhook=event).update(updated_at=timezone.now() - timedelta(minutes=5))
    cache.set(liveness._SWEEP_KEY, "sweeping-host:3", timeout=60)
    cache.set("qt:worker:sweeping-host:3", 1, timeout=60)  # another sweep runs, its process beats
    assert orders_sweep(stale_after_seconds=30) == {"redispatched": 0, "reconciled": 0, "refreshed": 0}
    assert cache.get(liveness._SWEEP_KEY) == "sweeping-host:3"

    cache.delete("qt:worker:sweeping-host:3")  # that process was killed mid-sweep
    assert orders_sweep(stale_after_seconds=30)["redispatched"] == 1
    assert cache.get(liveness._SWEEP_KEY) is None  # given back


class DatabaseGoneError(BaseException):
    """Escapes the execution's own error handling, as a database gone mid-order can."""


@pytest.mark.django_db
def test_an_order_whose_execution_escaped_before_sending_is_sent_again_by_the_sweep(
    make_strategy: Any, make_account: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The execution ended without settling its claimed order, before any request left, while
    its process beats on (embedded mode: the sweep's own process). The order is not held any
    more: the next sweep puts it back as never sent, not as an uncertain placement that would
    only be looked up until it failed."""
    from orders import services

    account = make_account("a1", balances={"USDT": "10000"})
    event = make_orders(make_strategy(accounts=[account]), [account], [{"side": "BUY", "qty_per": 10}])

    def database_gone(*args: Any, **kwargs: Any) -> None:
        raise DatabaseGoneError("server closed the connection")

    monkeypatch.setattr(services, "order_refusal", database_gone)
    with pytest.raises(DatabaseGoneError):
        account_orders_execute(event.id, account.pk)
    monkeypatch.undo()
    order = Order.objects.get(webhook=event)
    assert order.status == "submitted"

    assert orders_sweep(stale_after_seconds=30)["redispatched"] == 1
    order.refresh_from_db()
    assert (order.status, order.uncertain_attempt) == ("queued", None)


class UnreadableAnswerPaper(PaperAdapter):
    """The paper venue places the order, then the answer cannot be read (an adapter bug)."""

    def place_order(self, request: OrderRequest) -> OrderResult:
        super().place_order(request)
        raise KeyError("status")


@pytest.mark.django_db
def test_an_internal_error_after_the_request_left_is_looked_up_not_failed(
    make_strategy: Any, make_account: Any, publish_price: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An error of ours after the order request left: the venue may hold the order, so the
    order is looked up (and found) instead of ending `failed` as if nothing was placed."""
    from orders.services import order_execute

    account = make_account("a1", balances={"USDT": "10000"})
    event = make_orders(make_strategy(accounts=[account]), [account], [{"side": "BUY", "qty_per": 10}])
    publish_price("BINANCE:BTC/USDT", "50000")
    order = order_claim(Order.objects.get(webhook=event).pk)
    assert order is not None
    with pytest.raises(ExecutionRetry):
        order_execute(order, UnreadableAnswerPaper(account))
    order.refresh_from_db()
    assert (order.status, order.uncertain_attempt) == ("queued", 1)

    account_orders_execute(event.id, account.pk)
    order.refresh_from_db()
    assert (order.status, order.attempts) == ("filled", 2)
    assert PaperOrder.objects.count() == 1


# --- with a real worker thread ---------------------------------------------------------------


def test_webhook_to_filled_orders_end_to_end(
    celery_worker: Any, make_strategy: Any, make_account: Any, publish_price: Any, wait_orders: Any
) -> None:
    accounts = [
        make_account("acct-a", balances={"USDT": "10000"}),
        make_account("acct-b", balances={"USDT": "20000"}),
    ]
    make_strategy(accounts=accounts)
    publish_price("BINANCE:BTC/USDT", "50000")
    body = {
        "group_name": "my_strategy",
        "token": "test-token",
        "symbol": "BTC/USDT",
        "currency": "USDT",
        "orders": [
            {"order_type": "LIMIT", "side": "buy", "price": "45000", "qty_per": 10},
            {"order_type": "MARKET", "side": "buy", "qty_per": 10},
        ],
    }
    response = Client().post("/api/webhook", data=json.dumps(body), content_type="application/json")
    assert response.status_code == 202, response.content
    webhook_id = response.json()["webhook_id"]
    orders = wait_orders(webhook_id=webhook_id)
    assert [(o.account.name, o.order_type, o.status) for o in orders] == [
        ("acct-a", "MARKET", "filled"),
        ("acct-a", "LIMIT", "open"),
        ("acct-b", "MARKET", "filled"),
        ("acct-b", "LIMIT", "open"),
    ]
    assert [o.filled_qty for o in orders if o.status == "filled"] == [D("0.02"), D("0.04")]
    admin = get_user_model().objects.create_superuser("admin", "a@example.com", "pw")
    client = Client()
    client.force_login(admin)
    result = client.get(f"/api/webhooks/{webhook_id}").json()
    assert result["status"] == "completed" and result["success"] is True
    assert [(o["account"], o["order_type"], o["status"]) for o in result["orders"]] == [
        (o.account.name, o.order_type, o.status) for o in orders
    ]
    first = result["orders"][0]
    assert first["avg_price"] == "50000" and first["filled_qty"] == "0.02" and first["exchange_order_id"]


def test_sweep_redispatches_orders_no_task_was_sent_for(
    celery_worker: Any, make_strategy: Any, make_account: Any, publish_price: Any, wait_orders: Any
) -> None:
    account = make_account("a1", balances={"USDT": "10000"})
    event = make_orders(make_strategy(accounts=[account]), [account], [{"side": "BUY", "qty_per": 10}])
    publish_price("BINANCE:BTC/USDT", "50000")
    assert orders_sweep() == {"redispatched": 0, "reconciled": 0, "refreshed": 0}  # not stale yet
    time.sleep(0.3)
    assert statuses(event) == ["queued"]
    Order.objects.filter(webhook=event).update(updated_at=timezone.now() - timedelta(minutes=5))
    assert orders_sweep() == {"redispatched": 1, "reconciled": 0, "refreshed": 0}
    [order] = wait_orders(webhook=event)
    assert order.status == "filled"


def test_sweep_requeues_a_submitted_order_the_venue_never_saw(
    celery_worker: Any, make_strategy: Any, make_account: Any, publish_price: Any, wait_orders: Any
) -> None:
    account = make_account("a1", balances={"USDT": "10000"})
    event = make_orders(make_strategy(accounts=[account]), [account], [{"side": "BUY", "qty_per": 10}])
    publish_price("BINANCE:BTC/USDT", "50000")
    Order.objects.filter(webhook=event).update(
        status="submitted", attempts=1, updated_at=timezone.now() - timedelta(minutes=5)
    )
    assert orders_sweep() == {"redispatched": 1, "reconciled": 1, "refreshed": 0}
    [order] = wait_orders(webhook=event)
    assert (order.status, order.attempts) == ("filled", 2)
    assert PaperOrder.objects.count() == 1


class SlowPaper(PaperAdapter):
    """The paper venue with a 0.3 s round trip, to make sequencing and parallelism visible."""

    def place_order(self, request: OrderRequest) -> OrderResult:
        time.sleep(0.3)
        return super().place_order(request)

    def cancel_all(self, market_type: str, symbol: str | None) -> int:
        time.sleep(0.3)
        return super().cancel_all(market_type, symbol)


def test_orders_run_in_sequence_per_account_and_accounts_in_parallel(
    celery_worker: Any,
    make_strategy: Any,
    make_account: Any,
    publish_price: Any,
    wait_orders: Any,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setitem(exchanges.ADAPTERS, "SLOWPAPER", f"{__name__}.SlowPaper")
    accounts = [make_account(f"slow-{i}", exchange="SLOWPAPER", balances={"USDT": "10000"}) for i in range(2)]
    strategy = make_strategy(accounts=accounts)
    publish_price("BINANCE:BTC/USDT", "50000")
    event = make_orders(
        strategy,
        accounts,
        [
            {"side": "BUY", "qty_per": 10},
            {"order_type": "CANCEL_ALL_ORDER"},
            {"side": "BUY", "order_type": "LIMIT", "price": 40000, "qty_per": 10},
        ],
    )
    from orders.services import orders_dispatch

    orders_dispatch(event.id, [a.pk for a in accounts])
    orders = wait_orders(webhook=event)
    windows = []
    for account in accounts:
        mine = [o for o in orders if o.account_id == account.pk]
        assert [o.status for o in mine] == ["filled", "cancelled", "open"]
        for earlier, later in itertools.pairwise(mine):
            assert later.submitted_at >= earlier.updated_at  # the previous one had finished
        windows.append((mine[0].submitted_at, mine[-1].updated_at))
    (start_a, end_a), (start_b, end_b) = windows
    assert start_a < end_b and start_b < end_a  # the two accounts ran at the same time


class FlakyPaper(PaperAdapter):
    """The paper venue answering "try again" to the first request of each order."""

    seen: set[str] = set()

    def place_order(self, request: OrderRequest) -> OrderResult:
        if request.client_order_id not in self.seen:
            self.seen.add(request.client_order_id)
            raise RetryableVenueError("Paper API 오류: 일시적인 오류")
        return super().place_order(request)


def flaky_order(
    make_strategy: Any, make_account: Any, publish_price: Any, monkeypatch: Any
) -> tuple[Any, Any]:
    """An account on the venue that answers "try again" once per order, and one queued BUY
    order of it (not dispatched): (account, webhook event)."""
    monkeypatch.setitem(exchanges.ADAPTERS, "FLAKY", f"{__name__}.FlakyPaper")
    FlakyPaper.seen.clear()
    account = make_account("flaky", exchange="FLAKY", balances={"USDT": "10000"})
    event = make_orders(make_strategy(accounts=[account]), [account], [{"side": "BUY", "qty_per": 10}])
    publish_price("BINANCE:BTC/USDT", "50000")
    return account, event


def test_a_retryable_venue_error_puts_the_order_back_and_the_task_retries(
    celery_worker: Any,
    make_strategy: Any,
    make_account: Any,
    publish_price: Any,
    wait_orders: Any,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    account, event = flaky_order(make_strategy, make_account, publish_price, monkeypatch)
    from orders.services import orders_dispatch

    orders_dispatch(event.id, [account.pk])
    [order] = wait_orders(webhook=event, settled={"filled", "failed", "rejected"})
    assert (order.status, order.attempts) == ("filled", 2)
    assert PaperOrder.objects.count() == 1


class LateArrivalPaper(PaperAdapter):
    """A venue refusing a repeated client id in every state (as Upbit does), where the first
    request of each order arrives late: after the client gave up and after the lookup that
    followed, just before the repeat (which it then refuses as a duplicate)."""

    client_id_refused_in_every_state = True
    in_flight: set[str] = set()

    def place_order(self, request: OrderRequest) -> OrderResult:
        if request.client_order_id not in self.in_flight:
            self.in_flight.add(request.client_order_id)
            raise OrderUncertain("Paper API 오류: 응답 시간 초과")
        super().place_order(request)  # the first request lands now
        raise OrderRejected("Paper API 오류: identifier가 중복되었습니다.")


@pytest.mark.django_db
def test_a_repeat_refused_because_the_first_request_arrived_meanwhile_records_the_venues_order(
    make_strategy: Any, make_account: Any, publish_price: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(exchanges.ADAPTERS, "LATE", f"{__name__}.LateArrivalPaper")
    LateArrivalPaper.in_flight.clear()
    account = make_account("late", exchange="LATE", balances={"USDT": "10000"})
    event = make_orders(make_strategy(accounts=[account]), [account], [{"side": "BUY", "qty_per": 10}])
    publish_price("BINANCE:BTC/USDT", "50000")
    with pytest.raises(ExecutionRetry):
        account_orders_execute(event.id, account.pk)  # timed out, and the lookup found nothing
    assert statuses(event) == ["queued"]
    account_orders_execute(event.id, account.pk)  # the repeat is refused: the first one landed
    [order] = Order.objects.filter(webhook=event)
    assert (order.status, order.attempts, order.uncertain_attempt) == ("filled", 2, 1), order.message
    assert PaperOrder.objects.count() == 1


@pytest.mark.django_db
def test_a_placed_fill_is_one_info_line_and_a_matched_fill_still_has_its_own(
    make_strategy: Any, make_account: Any, publish_price: Any, caplog: pytest.LogCaptureFixture
) -> None:
    account = make_account("a1", balances={"USDT": "10000"})
    strategy = make_strategy(accounts=[account])
    publish_price("BINANCE:BTC/USDT", "50000")
    caplog.set_level("INFO", logger="quanttrade")

    def fill_lines() -> list[str]:
        return [r.getMessage() for r in caplog.records if r.levelname == "INFO" and "체결" in r.getMessage()]

    market = make_orders(strategy, [account], [{"side": "BUY", "qty_per": 10}])
    account_orders_execute(market.id, account.pk)
    order = Order.objects.get(webhook=market)
    # The order's own line carries the fill (the paper venue's answer says it); the venue writes
    # no line of its own at INFO (it would be written inside the placement's transaction).
    assert fill_lines() == [f"Paper SPOT 주문 생성 성공: order_id={order.id} status=filled {order.message}"]
    assert "0.02 @ 50000" in order.message
    caplog.clear()
    resting = make_orders(
        strategy, [account], [{"side": "BUY", "order_type": "LIMIT", "price": 40000, "qty_per": 10}]
    )
    account_orders_execute(resting.id, account.pk)
    publish_price("BINANCE:BTC/USDT", "39500")
    assert paper_match() == 1
    # The matcher's fill has no other line: the venue's own stays at INFO.
    assert [line for line in fill_lines() if "주문 체결" in line and "@ 39500" in line] != []


@pytest.mark.django_db
@pytest.mark.parametrize("kind", ["order", "cancel-all"])
def test_nothing_is_sent_while_the_send_mark_cannot_be_written(
    kind: str, make_strategy: Any, make_account: Any, publish_price: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The send mark is what lets a dead holder be judged safely: with the cache refusing it, an
    order is not placed and a cancel-all cancels nothing; both are retried."""
    from orders import liveness

    account, strategy, limits = resting_buy(make_strategy, make_account, publish_price)
    signal = {"side": "BUY", "qty_per": 10} if kind == "order" else {"order_type": "CANCEL_ALL_ORDER"}
    event = make_orders(strategy, [account], [signal])
    monkeypatch.setattr(liveness, "mark_sending", lambda *args: False)
    with pytest.raises(ExecutionRetry):
        account_orders_execute(event.id, account.pk)
    assert PaperOrder.objects.count() == 1  # only the resting buy
    assert statuses(limits) == ["open"]
    assert statuses(event) == ["queued"]
