"""The KIS realtime client against a local server speaking KIS's frame format.

The local server issues approval keys over HTTP (``POST /oauth2/Approval``) and, over a
WebSocket, answers subscriptions, sends ``0|H0STCNT0|<n>|...`` frames with several 46-field
records, an encrypted ``1|...`` frame, a PINGPONG that must come back as a pong frame carrying
it (as the official client, open-trading-api examples_llm/kis_auth.py, answers), and then drops
the connection to force a reconnect and resubscription. It holds KIS's registration limit: 41
realtime items per app key over all its sessions; beyond it a subscription is refused (the
answer's code and text are not in the official material: OPSP0008 "MAX SUBSCRIBE OVER" here is
what KIS is reported to send, unverified).
"""

from __future__ import annotations

import asyncio
import base64
import json
import threading
import time
from collections import defaultdict
from collections.abc import Callable, Iterator
from decimal import Decimal
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from cryptography.hazmat.primitives import padding
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from websockets.asyncio.server import serve

from feeds.kis import KisFeed, parse_data_frame
from prices.models import Instrument
from prices.services import price_latest

AES_KEY, AES_IV = "k" * 32, "i" * 16
PINGPONG = json.dumps({"header": {"tr_id": "PINGPONG", "datetime": "20260213093001"}})
MAX_REGISTRATIONS_PER_APP_KEY = 41


def record(
    ticker: str, price: int, *, sign: str = "2", change: str = "700", rate: str = "0.44", halted: str = "N"
) -> list[str]:
    fields = [""] * 46
    fields[0], fields[1], fields[2], fields[3], fields[4], fields[5] = (
        ticker,
        "093001",
        str(price),
        sign,
        change,
        rate,
    )
    fields[10], fields[11], fields[13] = str(price + 100), str(price), "36358081"
    fields[33], fields[35] = "20260213", halted
    return fields


def frame(*records: list[str]) -> str:
    return f"0|H0STCNT0|{len(records):03d}|" + "^".join("^".join(r) for r in records)


def encrypted_frame(*records: list[str]) -> str:
    payload = "^".join("^".join(r) for r in records).encode()
    padder = padding.PKCS7(128).padder()
    padded = padder.update(payload) + padder.finalize()
    encryptor = Cipher(algorithms.AES(AES_KEY.encode()), modes.CBC(AES_IV.encode())).encryptor()
    data = base64.b64encode(encryptor.update(padded) + encryptor.finalize()).decode()
    return f"1|H0STCNT0|{len(records):03d}|{data}"


class KisSimulator:
    """HTTP approval endpoint + WebSocket endpoint, each in its own thread."""

    def __init__(self, script: Callable[[Any, int, KisSimulator], Any] | None = None) -> None:
        self.script = script
        self.approvals: list[dict[str, Any]] = []
        self.subscriptions: dict[int, list[str]] = defaultdict(list)
        self.approval_keys: set[str] = set()
        self.echoes: list[str] = []
        self.pongs: list[bytes] = []
        self.refused: list[str] = []
        self.registered: dict[str, set[tuple[int, str]]] = defaultdict(set)  # approval key -> items
        self.connections = 0
        self.subscribed = threading.Event()

    def __enter__(self) -> KisSimulator:
        sim = self

        class Approval(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                sim.approvals.append(body)
                data = json.dumps({"approval_key": f"approval-{len(sim.approvals)}"}).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        self.http = ThreadingHTTPServer(("127.0.0.1", 0), Approval)
        threading.Thread(target=self.http.serve_forever, daemon=True).start()
        self.loop = asyncio.new_event_loop()
        started = threading.Event()

        async def main() -> None:
            async with serve(self._handler, "127.0.0.1", 0) as server:
                self.ws_port = server.sockets[0].getsockname()[1]
                self.stop_future = asyncio.get_running_loop().create_future()
                started.set()
                await self.stop_future

        self.thread = threading.Thread(target=self.loop.run_until_complete, args=(main(),), daemon=True)
        self.thread.start()
        started.wait(5)
        return self

    def __exit__(self, *exc: object) -> None:
        self.loop.call_soon_threadsafe(self.stop_future.set_result, None)
        self.thread.join(5)
        self.http.shutdown()

    @property
    def rest_url(self) -> str:
        return f"http://127.0.0.1:{self.http.server_port}"

    @property
    def ws_url(self) -> str:
        return f"ws://127.0.0.1:{self.ws_port}"

    def register(self, approval_key: str, conn: int, ticker: str) -> dict[str, Any]:
        """The venue's answer to one registration: refused beyond 41 per app key."""
        items = self.registered[approval_key]
        if (conn, ticker) not in items and len(items) >= MAX_REGISTRATIONS_PER_APP_KEY:
            self.refused.append(ticker)
            return {
                "header": {"tr_id": "H0STCNT0", "tr_key": ticker, "encrypt": "N"},
                "body": {"rt_cd": "1", "msg_cd": "OPSP0008", "msg1": "MAX SUBSCRIBE OVER"},
            }
        items.add((conn, ticker))
        self.subscriptions[conn].append(ticker)
        return {
            "header": {"tr_id": "H0STCNT0", "tr_key": ticker, "encrypt": "N"},
            "body": {
                "rt_cd": "0",
                "msg_cd": "OPSP0000",
                "msg1": "SUBSCRIBE SUCCESS",
                "output": {"iv": AES_IV, "key": AES_KEY},
            },
        }

    def watch_pongs(self, ws: Any) -> None:
        """Record the pong frames the client sends (unsolicited pongs carry the PINGPONG)."""
        acknowledge = ws.acknowledge_pings

        def record(data: bytes) -> Any:
            self.pongs.append(bytes(data))
            return acknowledge(data)

        ws.acknowledge_pings = record

    async def subscribe_replies(self, ws: Any, conn: int, count: int) -> None:
        for _ in range(count):
            message = json.loads(await ws.recv())
            header, body = message["header"], message["body"]["input"]
            assert header["tr_type"] == "1" and body["tr_id"] == "H0STCNT0"
            self.approval_keys.add(header["approval_key"])
            await ws.send(json.dumps(self.register(header["approval_key"], conn, body["tr_key"])))
        self.subscribed.set()

    async def _handler(self, ws: Any) -> None:
        self.connections += 1
        conn = self.connections
        self.watch_pongs(ws)
        try:
            if self.script is not None:
                await self.script(ws, conn, self)
            else:
                async for message in ws:
                    data = json.loads(message)
                    await ws.send(
                        json.dumps(
                            self.register(
                                data["header"]["approval_key"], conn, data["body"]["input"]["tr_key"]
                            )
                        )
                    )
        finally:  # a closed session frees its registrations
            for items in self.registered.values():
                items.difference_update({item for item in items if item[0] == conn})


def wait_for(condition: Callable[[], bool], timeout: float = 10) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        time.sleep(0.02)


@pytest.fixture
def run_feed() -> Iterator[Callable[[KisFeed], threading.Event]]:
    stops: list[tuple[threading.Event, threading.Thread]] = []

    def start(feed: KisFeed) -> threading.Event:
        stop = threading.Event()
        thread = threading.Thread(target=lambda: asyncio.run(feed.run(stop)), daemon=True)
        thread.start()
        stops.append((stop, thread))
        return stop

    yield start
    for stop, thread in stops:
        stop.set()
        thread.join(5)


def test_parse_frame_with_several_records_and_signs() -> None:
    ticks = parse_data_frame(
        frame(record("005930", 158600, sign="5", change="700", rate="0.44"), record("000660", 128000))
    )
    assert [t.ticker for t in ticks] == ["005930", "000660"]
    assert ticks[0].price == Decimal("158600") and ticks[0].change == Decimal("-700")
    assert ticks[0].change_rate == Decimal("-0.44") and ticks[0].volume == 36358081
    assert ticks[0].bid_price == Decimal("158600") and ticks[0].ask_price == Decimal("158700")
    assert ticks[1].change == Decimal("700")
    assert ticks[0].timestamp.isoformat() == "2026-02-13T09:30:01+09:00"


def test_parse_encrypted_frame() -> None:
    ticks = parse_data_frame(encrypted_frame(record("035420", 190000)), {"H0STCNT0": (AES_KEY, AES_IV)})
    assert ticks[0].ticker == "035420" and ticks[0].price == Decimal("190000")


def test_truncated_frame_is_refused() -> None:
    with pytest.raises(ValueError, match="fields for 2 records"):
        parse_data_frame("0|H0STCNT0|002|" + "^".join(record("005930", 1)))


@pytest.mark.django_db(transaction=True)
def test_feed_subscribes_publishes_answers_pingpong_with_a_pong_and_resubscribes(
    run_feed: Callable[[KisFeed], threading.Event],
) -> None:
    async def script(ws: Any, conn: int, sim: KisSimulator) -> None:
        await sim.subscribe_replies(ws, conn, 2)
        if conn == 1:
            await ws.send(
                frame(record("005930", 158600, sign="5", change="700", rate="0.44"), record("000660", 128000))
            )
            await ws.send(PINGPONG)
            try:  # the answer is a pong frame: no text frame comes back
                sim.echoes.append(await asyncio.wait_for(ws.recv(), timeout=0.3))
            except TimeoutError:
                pass
            await ws.send(encrypted_frame(record("000660", 128500)))
            await asyncio.sleep(0.2)
            await ws.close()  # the venue drops the session
        else:
            await ws.send(frame(record("005930", 159000, halted="Y")))
            await ws.wait_closed()

    with KisSimulator(script) as sim:
        feed = KisFeed(
            rest_url=sim.rest_url,
            ws_url=sim.ws_url,
            app_key="app",
            app_secret="secret",
            tickers=["005930", "000660"],
            backoff_base=0.05,
        )
        run_feed(feed)
        wait_for(lambda: (r := price_latest("005930")) is not None and r.price == Decimal("159000"))
        wait_for(lambda: feed.health.ticks >= 4)  # counted on the feed's thread just after each store

        assert sim.approvals[0] == {
            "grant_type": "client_credentials",
            "appkey": "app",
            "secretkey": "secret",
        }
        assert sim.approval_keys == {"approval-1"}
        assert sim.echoes == []
        assert sim.pongs == [PINGPONG.encode()]
        assert sim.subscriptions[1] == ["005930", "000660"] and sim.subscriptions[2] == ["005930", "000660"]
        assert price_latest("000660").price == Decimal("128500")  # from the encrypted frame
        assert feed.health.reconnects == 1 and feed.health.ticks >= 4
        wait_for(lambda: Instrument.objects.filter(ticker="005930", halted=True).exists())


def test_one_app_key_registers_41_tickers_and_reports_the_others(
    run_feed: Callable[[KisFeed], threading.Event],
) -> None:
    tickers = [f"{n:06d}" for n in range(45)]
    with KisSimulator() as sim:
        feed = KisFeed(rest_url=sim.rest_url, ws_url=sim.ws_url, app_key="a", app_secret="s", tickers=tickers)
        run_feed(feed)
        wait_for(lambda: sum(len(s) for s in sim.subscriptions.values()) == 41)
        time.sleep(0.2)

        assert sim.connections == 1 and sim.refused == []
        assert sorted(t for s in sim.subscriptions.values() for t in s) == tickers[:41]
        assert feed.health.detail["unregistered"] == tickers[41:]
        assert feed.health.detail["subscriptions"] == 41
        assert len(sim.approvals) == 1


def test_a_registration_the_venue_refuses_is_reported(run_feed: Callable[[KisFeed], threading.Event]) -> None:
    with KisSimulator() as sim:
        sim.registered["approval-1"] = {(0, f"x{n}") for n in range(40)}  # another session of the key
        feed = KisFeed(
            rest_url=sim.rest_url,
            ws_url=sim.ws_url,
            app_key="a",
            app_secret="s",
            tickers=["005930", "000660"],
        )
        run_feed(feed)
        wait_for(lambda: feed.health.detail.get("unregistered") == ["000660"])

        assert sim.refused == ["000660"]
        assert feed.health.detail["subscriptions"] == 1
        assert "MAX SUBSCRIBE OVER" in feed.health.last_error


@pytest.mark.django_db(transaction=True)
def test_feed_without_credentials_reports_error_and_stops() -> None:
    feed = KisFeed(app_key="", app_secret="", tickers=["005930"])
    asyncio.run(feed.run(threading.Event()))
    assert feed.health.running is False and "KIS_APP_KEY" in feed.health.last_error


@pytest.mark.django_db(transaction=True)
def test_feed_uses_an_active_kis_account_when_no_app_key_is_configured(
    run_feed: Callable[[KisFeed], threading.Event], make_account: Callable[..., Any]
) -> None:
    make_account(name="kis-1", exchange="KIS", api_key="account-app", api_secret="account-secret")
    with KisSimulator() as sim:
        run_feed(
            KisFeed(rest_url=sim.rest_url, ws_url=sim.ws_url, app_key="", app_secret="", tickers=["005930"])
        )
        wait_for(lambda: sum(len(s) for s in sim.subscriptions.values()) == 1)
        assert (
            sim.approvals[0]["appkey"] == "account-app" and sim.approvals[0]["secretkey"] == "account-secret"
        )
