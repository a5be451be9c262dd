"""Prices made up by the simulated feed say so everywhere: ``source: "simulated"`` in the layer,
the REST API and the WebSocket message (never "realtime"), and a paper fill names the feed
whose tick priced it."""

from __future__ import annotations

import io
import json
from decimal import Decimal
from typing import Any

import pytest
from django.core.management import call_command
from django.test import Client

from feeds.simulated import SimulatedFeed
from orders.models import Order
from orders.services import account_orders_execute
from prices.records import PriceRecord
from prices.serializers import price_update_message
from prices.services import price_latest, price_publish
from tests.execution.test_execution import make_orders

pytestmark = pytest.mark.django_db


def test_the_simulated_feed_publishes_simulated_ticks(no_prices: None) -> None:
    feed = SimulatedFeed(seed=1)
    feed.reference["005930"] = feed.last["005930"] = Decimal("58200")
    fields = feed.step("005930")

    price_publish("005930", fields.pop("price"), **fields)

    record = price_latest("005930")
    assert record is not None and (record.source, record.feed) == ("simulated", "simulated")
    assert price_update_message(record)["data"]["source"] == "simulated"


def test_rest_serves_a_simulated_tick_as_simulated(no_prices: None) -> None:
    price_publish("BINANCE:BTC/USDT", Decimal("65000"), feed="simulated")
    price_publish("005930", Decimal("58200"), feed="kis")

    body = Client().get("/api/prices?ids=BINANCE:BTC/USDT,005930").json()

    assert body["prices"]["BINANCE:BTC/USDT"]["source"] == "simulated"
    assert body["prices"]["005930"]["source"] == "realtime"
    assert Client().get("/api/kr/stocks/005930/realtime-price").json()["source"] == "realtime"


def test_a_stored_simulated_tick_without_a_source_reads_simulated() -> None:
    stored = {"ticker": "005930", "price": "58200", "feed": "simulated"}
    assert PriceRecord.from_store(stored).source == "simulated"


def test_publish_price_can_publish_a_simulated_tick(no_prices: None) -> None:
    out = io.StringIO()
    call_command("publish_price", "005930", "--price", "58200", "--simulated", stdout=out)
    assert json.loads(out.getvalue())["source"] == "simulated"
    out = io.StringIO()
    call_command("publish_price", "005930", "--price", "58300", stdout=out)
    assert json.loads(out.getvalue())["source"] == "realtime"


@pytest.mark.parametrize(
    ("feed", "said"), [("simulated", "(simulated 시세로 체결)"), ("kis", "(kis 시세로 체결)")]
)
def test_a_paper_fill_names_the_feed_that_priced_it(
    no_prices: None, make_account: Any, make_strategy: Any, feed: str, said: str
) -> None:
    account = make_account(balances={"USDT": "10000"})
    strategy = make_strategy(accounts=[account])
    price_publish("BINANCE:BTC/USDT", Decimal("50000"), feed=feed)
    event = make_orders(strategy, [account], [{"side": "BUY", "qty_per": 10}])

    account_orders_execute(event.id, account.pk)

    order = Order.objects.get(webhook=event)
    assert order.status == "filled"
    assert order.message == f"체결 완료: 0.02 @ 50000 {said}"
