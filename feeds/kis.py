"""KIS (한국투자증권) realtime WebSocket feed: H0STCNT0 (domestic stock trades).

Protocol (koreainvestment/open-trading-api):
* ``POST {rest}/oauth2/Approval`` with app key/secret gives an ``approval_key`` for the socket.
* Subscribe per ticker with a JSON message (``tr_type`` "1"; "2" unsubscribes).
* Data frames are text ``<enc>|<tr_id>|<count>|<payload>``: ``enc`` "1" means the payload is
  AES-256-CBC encrypted (base64) with the key/iv from the subscribe reply; the payload holds
  ``count`` records of 46 ``^``-separated fields each.
* JSON frames are replies, or ``PINGPONG`` heartbeats, answered as the official client
  (``examples_llm/kis_auth.py`` KISWebSocket) answers them: a WebSocket pong frame carrying the
  PINGPONG text, not a text echo.
* One app key may register at most 41 realtime items, over all its sessions together
  (open-trading-api's guidance: "1개 appkey당 최대 41건 등록 제한"); a session more on the same
  key buys nothing. So the feed opens one session, registers the first 41 tickers and reports
  the others (and any the venue refuses) in its health as ``unregistered``.
A dropped session reconnects with exponential backoff (with jitter) and resubscribes.
"""

from __future__ import annotations

import asyncio
import base64
import json
import logging
import random
import threading
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

import requests
import websockets
from channels.db import database_sync_to_async
from cryptography.hazmat.primitives import padding
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from django.conf import settings

from feeds.base import Feed
from prices.calendar import KST
from prices.models import Instrument
from prices.records import is_kr_stock
from strategies.models import Account

log = logging.getLogger("quanttrade.prices")

TR_ID = "H0STCNT0"
FIELDS_PER_RECORD = 46
MAX_REGISTRATIONS_PER_APP_KEY = 41
# Field positions in an H0STCNT0 record.
F_TICKER, F_TIME, F_PRICE, F_SIGN, F_CHANGE, F_RATE = 0, 1, 2, 3, 4, 5
F_ASK1, F_BID1, F_ACC_VOLUME, F_BUSINESS_DATE, F_HALTED = 10, 11, 13, 33, 35
NEGATIVE_SIGNS = {"4", "5"}  # 4 lower limit, 5 down


@dataclass(frozen=True)
class KisTick:
    ticker: str
    price: Decimal
    change: Decimal
    change_rate: Decimal
    volume: int
    bid_price: Decimal | None
    ask_price: Decimal | None
    timestamp: datetime | None
    halted: bool


def _signed(value: str, sign: str) -> Decimal:
    number = Decimal(value or "0")
    return -abs(number) if sign in NEGATIVE_SIGNS else number


def _tick(fields: list[str]) -> KisTick:
    timestamp = None
    day, clock = fields[F_BUSINESS_DATE], fields[F_TIME]
    if len(day) == 8 and len(clock) == 6:
        timestamp = datetime.strptime(day + clock, "%Y%m%d%H%M%S").replace(tzinfo=KST)
    return KisTick(
        ticker=fields[F_TICKER],
        price=Decimal(fields[F_PRICE]),
        change=_signed(fields[F_CHANGE], fields[F_SIGN]),
        change_rate=_signed(fields[F_RATE], fields[F_SIGN]),
        volume=int(fields[F_ACC_VOLUME] or 0),
        bid_price=Decimal(fields[F_BID1]) if fields[F_BID1] else None,
        ask_price=Decimal(fields[F_ASK1]) if fields[F_ASK1] else None,
        timestamp=timestamp,
        halted=fields[F_HALTED] == "Y",
    )


def aes_decrypt(key: str, iv: str, payload: str) -> str:
    decryptor = Cipher(algorithms.AES(key.encode()), modes.CBC(iv.encode())).decryptor()
    padded = decryptor.update(base64.b64decode(payload)) + decryptor.finalize()
    unpadder = padding.PKCS7(128).unpadder()
    return (unpadder.update(padded) + unpadder.finalize()).decode()


def parse_data_frame(frame: str, keys: dict[str, tuple[str, str]] | None = None) -> list[KisTick]:
    """The ticks of one ``<enc>|<tr_id>|<count>|<payload>`` frame (H0STCNT0 only)."""
    encrypted, tr_id, count_text, payload = frame.split("|", 3)
    if tr_id != TR_ID:
        return []
    if encrypted == "1":
        if not keys or tr_id not in keys:
            raise ValueError(f"encrypted {tr_id} frame before its key arrived")
        payload = aes_decrypt(*keys[tr_id], payload)
    fields = payload.split("^")
    count = int(count_text)
    if len(fields) < count * FIELDS_PER_RECORD:
        raise ValueError(f"{tr_id} frame has {len(fields)} fields for {count} records")
    return [_tick(fields[i * FIELDS_PER_RECORD : (i + 1) * FIELDS_PER_RECORD]) for i in range(count)]


def subscribe_message(approval_key: str, ticker: str, *, subscribe: bool = True) -> str:
    return json.dumps(
        {
            "header": {
                "approval_key": approval_key,
                "custtype": "P",
                "tr_type": "1" if subscribe else "2",
                "content-type": "utf-8",
            },
            "body": {"input": {"tr_id": TR_ID, "tr_key": ticker}},
        }
    )


class KisFeed(Feed):
    """Settings: KIS_APP_KEY, KIS_APP_SECRET (default: the first active KIS account's keys),
    KIS_REST_URL, KIS_WS_URL, KIS_WS_BACKOFF_SECONDS (docs/prices.md)."""

    name = "kis"

    def __init__(
        self,
        *,
        rest_url: str | None = None,
        ws_url: str | None = None,
        app_key: str | None = None,
        app_secret: str | None = None,
        tickers: list[str] | None = None,
        backoff_base: float | None = None,
        backoff_max: float = 60.0,
    ) -> None:
        super().__init__()
        self.rest_url = (rest_url or settings.KIS_REST_URL).rstrip("/")
        self.ws_url = ws_url or settings.KIS_WS_URL
        self.app_key = app_key if app_key is not None else settings.KIS_APP_KEY
        self.app_secret = app_secret if app_secret is not None else settings.KIS_APP_SECRET
        self.fixed_tickers = tickers
        self.backoff_base = (
            backoff_base if backoff_base is not None else float(settings.KIS_WS_BACKOFF_SECONDS)
        )
        self.backoff_max = backoff_max
        self.approval_key: str | None = None
        self._approval_lock = asyncio.Lock()
        self.keys: dict[str, tuple[str, str]] = {}
        self.halted: dict[str, bool] = {}
        # Tickers the app key could not register: over the limit, or refused by the venue.
        self.unregistered: set[str] = set()
        self._registered_tickers: list[str] = []

    def _credentials_from_account(self) -> None:
        """Without KIS_APP_KEY/KIS_APP_SECRET, use the first active KIS account's app key
        (the realtime feed needs one app key, not one per account)."""
        account = (
            Account.objects.filter(exchange="KIS", is_active=True).exclude(api_key="").order_by("id").first()
        )
        if account is not None:
            self.app_key, self.app_secret = account.api_key, account.api_secret

    # --- approval key -----------------------------------------------------------------

    def _request_approval_key(self) -> str:
        response = requests.post(
            f"{self.rest_url}/oauth2/Approval",
            json={"grant_type": "client_credentials", "appkey": self.app_key, "secretkey": self.app_secret},
            timeout=10,
        )
        response.raise_for_status()
        key = response.json().get("approval_key")
        if not key:
            raise RuntimeError("KIS approval response without approval_key")
        return str(key)

    async def approval(self) -> str:
        """One approval key shared by every session (requested once, not once per session)."""
        async with self._approval_lock:
            if self.approval_key is None:
                self.approval_key = await asyncio.to_thread(self._request_approval_key)
            return self.approval_key

    # --- sessions ---------------------------------------------------------------------

    async def run(self, stop: threading.Event) -> None:
        self.health.started()
        try:
            if not self.app_key or not self.app_secret:
                await database_sync_to_async(self._credentials_from_account, thread_sensitive=False)()
            if not self.app_key or not self.app_secret:
                self.health.error("KIS_APP_KEY / KIS_APP_SECRET not set and no active KIS account")
                return
            tickers = self.fixed_tickers
            if tickers is None:
                tickers = [i for i in await self.instruments() if is_kr_stock(i)]
            registered = tickers[:MAX_REGISTRATIONS_PER_APP_KEY]
            self.unregistered = set(tickers[MAX_REGISTRATIONS_PER_APP_KEY:])
            if self.unregistered:
                log.warning(
                    "KIS 실시간 등록 한도(%d건) 초과: %d종목은 시세를 받지 못합니다",
                    MAX_REGISTRATIONS_PER_APP_KEY,
                    len(self.unregistered),
                )
            self._registered_tickers = registered
            self._report_registrations()
            await self.session(registered, stop)
        finally:
            self.health.stopped()

    def _report_registrations(self) -> None:
        registered = set(self._registered_tickers) - self.unregistered
        self.health.set_detail(
            subscriptions=len(registered),
            sessions=1,
            unregistered=sorted(self.unregistered),
        )

    async def session(self, tickers: list[str], stop: threading.Event) -> None:
        """The one socket of the app key (at most 41 tickers), reconnected with backoff until
        ``stop``."""
        self._registered_tickers = list(tickers)
        failures = 0
        first = True
        while not stop.is_set():
            if not first:
                self.health.reconnected()
            first = False
            try:
                key = await self.approval()
                async with websockets.connect(self.ws_url, ping_interval=None, open_timeout=10) as socket:
                    for ticker in tickers:
                        await socket.send(subscribe_message(key, ticker))
                    failures = 0
                    await self._read(socket, stop)
            except Exception as exc:  # every failure means: back off, reconnect
                failures += 1
                log.warning("KIS 실시간 연결 오류 (%d회): %s", failures, exc)
                self.health.error(f"{type(exc).__name__}: {exc}")
                if isinstance(exc, requests.HTTPError):
                    self.approval_key = None
            if stop.is_set():
                break
            delay = min(self.backoff_max, self.backoff_base * 2 ** max(0, failures - 1))
            if await self.sleep(delay * random.uniform(0.8, 1.2), stop):
                break

    async def _read(self, socket: Any, stop: threading.Event) -> None:
        while not stop.is_set():
            try:
                frame = await asyncio.wait_for(socket.recv(), timeout=0.5)
            except TimeoutError:
                continue
            if isinstance(frame, bytes):
                frame = frame.decode()
            if frame[:1] in ("0", "1"):
                await self._publish(parse_data_frame(frame, self.keys))
                continue
            message = json.loads(frame)
            header = message.get("header", {})
            if header.get("tr_id") == "PINGPONG":
                await socket.pong(frame)  # as the official client: a pong frame, not a text echo
                continue
            body = message.get("body", {})
            if body.get("rt_cd") not in (None, "0"):
                ticker = str(header.get("tr_key") or "")
                self.health.error(f"{ticker}: {body.get('msg1', '')}", down=False)
                if ticker:  # a refused registration (e.g. over the app key's limit)
                    self.unregistered.add(ticker)
                    self._report_registrations()
            elif (
                header.get("tr_key") in self.unregistered and header.get("tr_key") in self._registered_tickers
            ):
                self.unregistered.discard(header["tr_key"])  # accepted after a reconnect
                self._report_registrations()
            output = body.get("output") or {}
            if output.get("key") and output.get("iv"):
                self.keys[header.get("tr_id", TR_ID)] = (output["key"], output["iv"])

    async def _publish(self, ticks: list[KisTick]) -> None:
        for tick in ticks:
            await self.publish_tick(tick)
            previous = self.halted.get(tick.ticker)
            self.halted[tick.ticker] = tick.halted
            # Only a change touches the database (the first tick only when it says halted).
            if tick.halted != bool(previous) or (previous is None and tick.halted):
                await database_sync_to_async(_mark_halted, thread_sensitive=False)(tick.ticker, tick.halted)


def _mark_halted(ticker: str, halted: bool) -> None:
    """Record a halt reported by the exchange (TRHT_YN) on the Instrument row."""
    if halted:
        Instrument.objects.update_or_create(
            ticker=ticker, defaults={"halted": True, "halted_reason": "KIS TRHT_YN=Y"}
        )
    else:
        Instrument.objects.filter(ticker=ticker, halted=True, halted_reason="KIS TRHT_YN=Y").update(
            halted=False, halted_reason=""
        )
