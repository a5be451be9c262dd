"""The Kiwoom realtime feed over a real WebSocket against the Kiwoom simulator
(venuesim/kiwoom.py): token over REST, LOGIN, REG by group, 0B ticks into the one price store
(the same record on REST and on a /ws client), the server's PING echoed, a dropped connection
re-logged-in and re-registered, Kiwoom's per-group limit respected."""

from __future__ import annotations

import asyncio
import json
import threading
import time
from collections.abc import Callable, Iterator
from decimal import Decimal
from typing import Any

import pytest
from channels.testing import WebsocketCommunicator
from django.contrib.auth.models import AnonymousUser
from django.core.cache import cache
from django.test import Client

from feeds import feed_class
from feeds.kiwoom import KiwoomFeed, parse_real, register_messages
from live.consumers import LiveConsumer
from orders.exchanges.kiwoom.client import KiwoomClient
from prices.services import price_latest
from venuesim.kiwoom import KiwoomSim, tick_values

# The guide's own 0B example (kiwoom_api_spec.json, 주식체결(0B) response_example), abridged.
GUIDE_0B = {
    "trnm": "REAL",
    "data": [
        {
            "type": "0B",
            "name": "주식체결",
            "item": "005930",
            "values": {
                "20": "165208",
                "10": "-20800",
                "11": "-50",
                "12": "-0.24",
                "27": "-20800",
                "28": "-20700",
                "13": "30379732",
            },
        }
    ],
}


def wait_for(condition: Callable[[], bool], timeout: float = 10) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        time.sleep(0.02)


@pytest.fixture
def sim() -> Iterator[KiwoomSim]:
    sim = KiwoomSim(app_key="app", secret_key="secret")
    sim.start()
    sim.start_ws()
    yield sim
    sim.stop()


@pytest.fixture
def run_feed() -> Iterator[Callable[[KiwoomFeed], threading.Event]]:
    running: list[tuple[threading.Event, threading.Thread]] = []

    def start(feed: KiwoomFeed) -> threading.Event:
        stop = threading.Event()
        thread = threading.Thread(target=lambda: asyncio.run(feed.run(stop)), daemon=True)
        thread.start()
        running.append((stop, thread))
        return stop

    yield start
    for stop, thread in running:
        stop.set()
        thread.join(5)


def feed_for(sim: KiwoomSim, tickers: list[str], **kw: Any) -> KiwoomFeed:
    return KiwoomFeed(
        rest_url=sim.base_url,
        ws_url=sim.ws_url,
        app_key="app",
        secret_key="secret",
        tickers=tickers,
        backoff_base=0.05,
        **kw,
    )


def test_guide_example_parses_signed_fields() -> None:
    [tick] = parse_real(GUIDE_0B)
    assert (tick.ticker, tick.price, tick.change, tick.change_rate) == (
        "005930",
        Decimal(20800),
        Decimal(-50),
        Decimal("-0.24"),
    )
    assert (tick.ask_price, tick.bid_price, tick.volume) == (Decimal(20800), Decimal(20700), 30379732)


def test_register_messages_split_into_groups() -> None:
    messages = register_messages([f"{n:06d}" for n in range(250)], 100)
    assert [m["grp_no"] for m in messages] == ["1", "2", "3"]
    assert [len(m["data"][0]["item"]) for m in messages] == [100, 100, 50]
    assert messages[0]["data"][0]["type"] == ["0B"] and messages[0]["trnm"] == "REG"


def test_feed_is_registered_as_kiwoom() -> None:
    assert feed_class("kiwoom") is KiwoomFeed


@pytest.mark.django_db(transaction=True)
def test_ticks_reach_rest_and_a_ws_client_identically_ping_is_echoed_and_a_drop_reregisters(
    sim: KiwoomSim, run_feed: Callable[[KiwoomFeed], threading.Event], admin_client: Client
) -> None:
    feed = feed_for(sim, ["005930", "000660"])
    run_feed(feed)
    wait_for(lambda: sim.registered() == [{"005930", "000660"}])
    assert sim.ws_messages[0]["trnm"] == "LOGIN" and sim.ws_logins == [next(iter(sim.tokens))]

    async def scenario() -> dict[str, Any]:
        ws = WebsocketCommunicator(LiveConsumer.as_asgi(), "/ws")
        ws.scope["user"] = AnonymousUser()
        assert (await ws.connect())[0]
        try:
            await ws.receive_from(timeout=2)  # connected
            await ws.send_json_to({"type": "subscribe", "topic": "price:005930"})
            assert json.loads(await ws.receive_from(timeout=2))["type"] == "subscribed"
            await asyncio.to_thread(
                sim.push_tick, "005930", tick_values(158600, -700, "0.44", 36358081, 158700, 158600)
            )
            while True:
                message = json.loads(await ws.receive_from(timeout=5))
                if message["type"] == "price_update" and message["data"]["price"] == 158600:
                    return dict(message)
        finally:
            await ws.disconnect()

    update = asyncio.run(scenario())
    rest = Client().get("/api/kr/stocks/005930/realtime-price").json()
    assert rest["price"] == update["data"]["price"] == 158600
    for field in ("change", "change_rate", "volume", "bid_price", "ask_price", "timestamp", "source"):
        assert rest[field] == update["data"][field], field
    assert (rest["change"], rest["change_rate"], rest["volume"]) == (-700, -0.44, 36358081)
    assert rest["feed"] == "kiwoom"

    sim.ping_all()
    wait_for(lambda: sim.ws_echoes == [{"trnm": "PING"}])

    sim.drop_all()
    wait_for(lambda: len(sim.ws_logins) == 2 and sim.registered() == [{"005930", "000660"}])
    sim.push_tick("000660", tick_values(128500, 500, "0.39", 1000, 128600, 128500))
    wait_for(lambda: (r := price_latest("000660")) is not None and r.price == Decimal(128500))
    wait_for(lambda: feed.health.ticks == 2)  # counted just after the tick is stored
    assert feed.health.reconnects == 1 and feed.health.ticks == 2 and sim.token_requests == 1

    def kiwoom_status() -> dict[str, Any]:
        feeds = admin_client.get("/api/prices/status").json()["feeds"]
        return next((f for f in feeds if f["feed"] == "kiwoom"), {})

    # Health is written on every state change and at most once a second while ticking.
    wait_for(lambda: kiwoom_status().get("reconnects") == 1)
    status = kiwoom_status()
    assert status["running"] and status["ticks"] >= 1 and status["errors"] == 1  # the drop
    assert (status["subscriptions"], status["groups"]) == (2, 1)


def test_registration_stays_within_the_group_limit(
    sim: KiwoomSim, run_feed: Callable[[KiwoomFeed], threading.Event]
) -> None:
    sim.max_items_per_group = 40
    tickers = [f"{n:06d}" for n in range(95)]
    feed = feed_for(sim, tickers, items_per_group=40)
    run_feed(feed)
    wait_for(lambda: sum(len(r) for r in sim.registered()) == 95)
    [groups] = sim.ws_registrations.values()
    assert sorted(len(items) for items in groups.values()) == [15, 40, 40]
    assert feed.health.errors == 0


def test_the_simulator_refuses_a_group_over_its_limit(
    sim: KiwoomSim, run_feed: Callable[[KiwoomFeed], threading.Event]
) -> None:
    sim.max_items_per_group = 10
    feed = feed_for(sim, [f"{n:06d}" for n in range(11)], items_per_group=11)
    run_feed(feed)
    wait_for(lambda: feed.health.errors >= 1)
    assert "REG" in feed.health.last_error and sim.registered() == [set()]


@pytest.mark.django_db(transaction=True)
def test_an_expired_token_is_replaced_on_reconnect(
    sim: KiwoomSim, run_feed: Callable[[KiwoomFeed], threading.Event]
) -> None:
    feed = feed_for(sim, ["005930"])
    run_feed(feed)
    wait_for(lambda: sim.registered() == [{"005930"}])
    sim.expire_tokens()
    assert feed.client is not None
    cache.delete(feed.client.tokens.issued_key)  # issued a day ago: a new one may be asked for
    sim.drop_all()
    wait_for(lambda: sim.token_requests == 2 and sim.registered() == [{"005930"}])
    assert len(sim.ws_logins) == 3  # the first, the refused expired one, the new token's


@pytest.mark.django_db
def test_feed_shares_the_adapters_token(
    sim: KiwoomSim, run_feed: Callable[[KiwoomFeed], threading.Event]
) -> None:
    adapter_client = KiwoomClient(app_key="app", secret_key="secret", base_url=sim.base_url)
    token = adapter_client.token()
    run_feed(feed_for(sim, ["005930"]))
    wait_for(lambda: sim.registered() == [{"005930"}])
    assert sim.ws_logins == [token] and sim.token_requests == 1


@pytest.mark.django_db(transaction=True)
def test_feed_takes_its_credentials_from_an_active_kiwoom_account(
    sim: KiwoomSim, run_feed: Callable[[KiwoomFeed], threading.Event], make_account: Callable[..., Any]
) -> None:
    make_account(
        name="kiwoom-1",
        exchange="KIWOOM",
        api_key="app",
        api_secret="secret",
        settings={"api_base_url": sim.base_url, "ws_url": sim.ws_url},
    )
    run_feed(KiwoomFeed(tickers=["005930"], backoff_base=0.05))
    wait_for(lambda: sim.registered() == [{"005930"}])
