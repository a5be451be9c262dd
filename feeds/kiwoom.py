"""Kiwoom (키움증권) realtime WebSocket feed: 0B 주식체결 ticks for domestic stocks.

Protocol (official guide, kiwoom_api_spec.json in Kiwoom-Securities/Kiwoom-REST-API):
* a REST token (``POST /oauth2/token``, api-id au10001; the one the Kiwoom adapter shares through
  the cache, see orders/exchanges/kiwoom/client.py) is sent first: ``{"trnm": "LOGIN",
  "token": …}``; the server answers ``{"trnm": "LOGIN", "return_code": 0, …}``;
* ``{"trnm": "REG", "grp_no": "1", "refresh": "1", "data": [{"item": [...], "type": ["0B"]}]}``
  registers items in a group (``REMOVE`` drops them); each answer carries ``return_code``;
* ticks arrive as ``{"trnm": "REAL", "data": [{"type": "0B", "item": …, "values": {field id:
  signed string}}]}`` — 10 현재가, 11 전일대비, 12 등락율, 13 누적거래량, 27/28 최우선 매도/매수호가,
  20 체결시간 (HHMMSS);
* the server's ``{"trnm": "PING"}`` is sent back unchanged.
The guide states no registration limit; items are split into groups of at most
``ITEMS_PER_GROUP`` (100) on one connection. A dropped connection reconnects with
exponential backoff (with jitter), logs in again and re-registers every group.
"""

from __future__ import annotations

import asyncio
import json
import logging
import random
import threading
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal, InvalidOperation
from typing import Any

import websockets
from channels.db import database_sync_to_async

from feeds.base import Feed
from orders.exchanges.kiwoom.client import KiwoomClient
from prices.calendar import KST
from prices.records import is_kr_stock
from strategies.models import Account

log = logging.getLogger("quanttrade.prices")

REAL_REST, MOCK_REST = "https://api.kiwoom.com", "https://mockapi.kiwoom.com"
REAL_WS = "wss://api.kiwoom.com:10000/api/dostk/websocket"
MOCK_WS = "wss://mockapi.kiwoom.com:10000/api/dostk/websocket"
TICK_TYPE = "0B"
ITEMS_PER_GROUP = 100
EXCHANGE_SUFFIXES = ("_NX", "_AL")  # NXT / SOR items; the ticker is the KRX code


@dataclass(frozen=True)
class KiwoomTick:
    ticker: str
    price: Decimal
    change: Decimal
    change_rate: Decimal
    volume: int
    bid_price: Decimal | None
    ask_price: Decimal | None
    timestamp: datetime | None


def _number(value: Any) -> Decimal | None:
    """A signed field (``-20800``, ``+82``, `` 67300``) as a Decimal; None when empty."""
    text = str(value or "").strip()
    if not text:
        return None
    try:
        return Decimal(text)
    except InvalidOperation:
        return None


def parse_real(message: dict[str, Any], today: datetime | None = None) -> list[KiwoomTick]:
    """The 0B ticks of one REAL message. Price fields carry the direction as a sign (the
    price itself is its absolute value); 11 and 12 are the signed change and rate."""
    ticks = []
    for entry in message.get("data") or []:
        if entry.get("type") != TICK_TYPE:
            continue
        values = entry.get("values") or {}
        price = _number(values.get("10"))
        if price is None:
            continue
        item = str(entry.get("item") or "")
        for suffix in EXCHANGE_SUFFIXES:
            item = item.removesuffix(suffix)
        timestamp = None
        clock = str(values.get("20") or "")
        if today is not None and len(clock) == 6 and clock.isdigit():
            timestamp = datetime.strptime(today.strftime("%Y%m%d") + clock, "%Y%m%d%H%M%S").replace(
                tzinfo=KST
            )
        ask, bid = _number(values.get("27")), _number(values.get("28"))
        ticks.append(
            KiwoomTick(
                ticker=item,
                price=abs(price),
                change=_number(values.get("11")) or Decimal(0),
                change_rate=_number(values.get("12")) or Decimal(0),
                volume=int(abs(_number(values.get("13")) or Decimal(0))),
                bid_price=abs(bid) if bid else None,
                ask_price=abs(ask) if ask else None,
                timestamp=timestamp,
            )
        )
    return ticks


def register_messages(items: list[str], per_group: int) -> list[dict[str, Any]]:
    """One REG message per group of at most ``per_group`` items (groups numbered from 1)."""
    return [
        {
            "trnm": "REG",
            "grp_no": str(n + 1),
            "refresh": "1",
            "data": [{"item": items[i : i + per_group], "type": [TICK_TYPE]}],
        }
        for n, i in enumerate(range(0, len(items), per_group))
    ]


@dataclass(frozen=True)
class KiwoomCredentials:
    app_key: str
    secret_key: str
    rest_url: str
    ws_url: str


def kiwoom_credentials() -> KiwoomCredentials | None:
    """The first active KIWOOM account's app key and secret, with its ``api_base_url`` /
    ``ws_url`` settings, else the real or 모의투자 URLs by ``is_testnet``; None without one.
    Shared by the realtime feed and ``collect_daily --kiwoom``."""
    account = (
        Account.objects.filter(exchange="KIWOOM", is_active=True).exclude(api_key="").order_by("id").first()
    )
    if account is None:
        return None
    options = account.settings or {}
    return KiwoomCredentials(
        app_key=account.api_key,
        secret_key=account.api_secret,
        rest_url=options.get("api_base_url") or (MOCK_REST if account.is_testnet else REAL_REST),
        ws_url=options.get("ws_url") or (MOCK_WS if account.is_testnet else REAL_WS),
    )


class LoginRefused(Exception):  # noqa: N818 - the venue's answer
    pass


class KiwoomFeed(Feed):
    """Credentials and URLs: the first active KIWOOM account's app key and secret; its
    ``api_base_url`` / ``ws_url`` settings, else the real or 모의투자 URLs by ``is_testnet``."""

    name = "kiwoom"

    def __init__(
        self,
        *,
        rest_url: str | None = None,
        ws_url: str | None = None,
        app_key: str | None = None,
        secret_key: str | None = None,
        tickers: list[str] | None = None,
        backoff_base: float = 1.0,
        backoff_max: float = 60.0,
        items_per_group: int | None = None,
    ) -> None:
        super().__init__()
        self.rest_url = rest_url
        self.ws_url = ws_url
        self.app_key = app_key or ""
        self.secret_key = secret_key or ""
        self.fixed_tickers = tickers
        self.backoff_base = backoff_base
        self.backoff_max = backoff_max
        self.items_per_group = items_per_group or ITEMS_PER_GROUP
        self.token: str | None = None
        self.refused: str | None = None  # the token LOGIN refused last
        self.client: KiwoomClient | None = None

    def _from_account(self) -> None:
        credentials = kiwoom_credentials()
        if credentials is None:
            return
        self.app_key, self.secret_key = credentials.app_key, credentials.secret_key
        self.rest_url = self.rest_url or credentials.rest_url
        self.ws_url = self.ws_url or credentials.ws_url

    def _token(self) -> str:
        """The app key's token from the shared cache (the one the Kiwoom adapter uses), issued
        when there is none; a different one when the last was refused at LOGIN."""
        if self.client is None:
            self.client = KiwoomClient(
                app_key=self.app_key, secret_key=self.secret_key, base_url=self.rest_url, timeout=10.0
            )
        if self.refused is not None:
            token = self.client.refresh_token(stale=self.refused)
            self.refused = None
            return token
        return self.client.token()

    async def run(self, stop: threading.Event) -> None:
        self.health.started()
        try:
            if not self.app_key or not self.secret_key:
                await database_sync_to_async(self._from_account, thread_sensitive=False)()
            if not self.app_key or not self.secret_key:
                self.health.error("no active KIWOOM account with an app key")
                return
            self.rest_url = self.rest_url or REAL_REST
            self.ws_url = self.ws_url or REAL_WS
            tickers = self.fixed_tickers
            if tickers is None:
                tickers = [i for i in await self.instruments() if is_kr_stock(i)]
            messages = register_messages(tickers, self.items_per_group)
            self.health.set_detail(subscriptions=len(tickers), groups=len(messages))
            await self.session(messages, stop)
        finally:
            self.health.stopped()

    async def session(self, registrations: list[dict[str, Any]], stop: threading.Event) -> None:
        """One socket carrying every group, reconnected with backoff until ``stop``."""
        failures, first = 0, True
        while not stop.is_set():
            if not first:
                self.health.reconnected()
            first = False
            try:
                self.token = await asyncio.to_thread(self._token)
                assert self.ws_url is not None
                async with websockets.connect(self.ws_url, ping_interval=None, open_timeout=10) as socket:
                    await self._login(socket)
                    for message in registrations:
                        await socket.send(json.dumps(message))
                    failures = 0
                    await self._read(socket, stop)
            except Exception as exc:  # every failure means: back off, reconnect
                failures += 1
                log.warning("키움 실시간 연결 오류 (%d회): %s", failures, exc)
                self.health.error(f"{type(exc).__name__}: {exc}")
                if isinstance(exc, LoginRefused):
                    self.refused = self.token  # expired or revoked: another one next time
            if stop.is_set():
                break
            delay = min(self.backoff_max, self.backoff_base * 2 ** max(0, failures - 1))
            if await self.sleep(delay * random.uniform(0.8, 1.2), stop):
                break

    async def _login(self, socket: Any) -> None:
        await socket.send(json.dumps({"trnm": "LOGIN", "token": self.token}))
        while True:
            reply = json.loads(await asyncio.wait_for(socket.recv(), timeout=10))
            if reply.get("trnm") == "PING":
                await socket.send(json.dumps(reply))
                continue
            if reply.get("trnm") == "LOGIN":
                if str(reply.get("return_code")) != "0":
                    raise LoginRefused(f"LOGIN: {reply.get('return_code')} {reply.get('return_msg')}")
                return

    async def _read(self, socket: Any, stop: threading.Event) -> None:
        while not stop.is_set():
            try:
                frame = await asyncio.wait_for(socket.recv(), timeout=0.5)
            except TimeoutError:
                continue
            message = json.loads(frame)
            trnm = message.get("trnm")
            if trnm == "PING":
                await socket.send(frame if isinstance(frame, str) else frame.decode())
            elif trnm == "REAL":
                await self._publish(parse_real(message, datetime.now(KST)))
            elif trnm in ("REG", "REMOVE") and str(message.get("return_code")) != "0":
                self.health.error(
                    f"{trnm}: {message.get('return_code')} {message.get('return_msg')}", down=False
                )

    async def _publish(self, ticks: list[KiwoomTick]) -> None:
        for tick in ticks:
            await self.publish_tick(tick)
