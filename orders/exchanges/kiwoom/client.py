"""KiwoomClient: the Kiwoom REST API over ``requests``.

Every call is ``POST`` with a JSON body, the API named in the ``api-id`` header, the token in
``authorization: Bearer``; inquiries page with the ``cont-yn``/``next-key`` headers; an answer
with ``return_code`` other than 0 is an error (kiwoom_api_spec.json, Kiwoom-Securities/
Kiwoom-REST-API). What it guarantees, like the KIS client:
- one token per (environment, app key) shared by every process (brokerkit SharedTokenCache),
  refreshed an hour before ``expires_dt`` and never requested more than once a minute;
- a per-app-key request rate shared across processes; Kiwoom's own 1700 "too many requests" is
  backed off and retried, then reported as retryable;
- an invalid/expired token (8003, 8005, …) is refreshed once and the request repeated once;
- an order request whose answer is lost raises OrderUncertain, never a blind retry.
Secrets and tokens are never logged.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

import requests
from django.utils.translation import gettext as _

from orders.exchanges.base import OrderRejected, OrderUncertain, PermanentVenueError, RetryableVenueError
from orders.exchanges.brokerkit.rate_limit import SharedRateLimiter
from orders.exchanges.brokerkit.token_cache import SharedTokenCache, TokenUnavailableError, app_key_id
from orders.exchanges.http import venue_session
from orders.handoff import venue_sleep

log = logging.getLogger("quanttrade.orders")

KST = ZoneInfo("Asia/Seoul")
DISPLAY_NAME = "키움"
REAL_URL = "https://api.kiwoom.com"
MOCK_URL = "https://mockapi.kiwoom.com"
REAL_WS_URL = "wss://api.kiwoom.com:10000/api/dostk/websocket"
MOCK_WS_URL = "wss://mockapi.kiwoom.com:10000/api/dostk/websocket"
TOKEN_LIFETIME = 24 * 3600
REFRESH_BEFORE = 3600
TOKEN_MIN_INTERVAL = 60
# Return codes as the official client classifies them (kiwoom/core/errors.py).
TOKEN_CODES = frozenset({8003, 8005, 8006, 8009, 8015, 8016})
RATE_LIMIT_CODES = frozenset({1700})
DEFAULT_RATE = {False: 15, True: 4}  # requests/s per app key (kept well under Kiwoom's limits)
RATE_LIMIT_RETRIES = 2
RATE_LIMIT_BACKOFF = 0.5
MAX_PAGES = 30


def kiwoom_error(message: str) -> str:
    return _("%(venue)s API error: %(message)s") % {"venue": DISPLAY_NAME, "message": message}


def token_expired_message() -> str:
    return _("Kiwoom access token has expired. Re-authentication is required.")


class KiwoomResponseError(Exception):
    def __init__(self, code: int, message: str, status: int):
        self.code = code
        self.message = message
        self.status = status
        super().__init__(f"{code} {message}")


def token_lifetime(expires_dt: str, now: float | None = None) -> int:
    """Seconds until ``expires_dt`` (YYYYMMDDHHMMSS, KST); a day when it cannot be read."""
    try:
        expires = datetime.strptime(expires_dt, "%Y%m%d%H%M%S").replace(tzinfo=KST).timestamp()
    except ValueError:
        return TOKEN_LIFETIME
    return max(60, int(expires - (time.time() if now is None else now)))


class KiwoomClient:
    """One app key on one Kiwoom environment (real or 모의투자). Thread-safe; cheap to create."""

    def __init__(
        self,
        *,
        app_key: str,
        secret_key: str,
        mock: bool = False,
        base_url: str | None = None,
        timeout: float = 10.0,
        rate_per_second: int | None = None,
    ):
        self.app_key = app_key
        self.secret_key = secret_key
        self.mock = mock
        self.base_url = (base_url or (MOCK_URL if mock else REAL_URL)).rstrip("/")
        self.timeout = timeout
        self.session = venue_session()
        self.tokens = SharedTokenCache(
            namespace="kiwoom",
            base_url=self.base_url,
            app_key=app_key,
            app_secret=secret_key,
            error=kiwoom_error,
            refresh_before=REFRESH_BEFORE,
            min_interval=TOKEN_MIN_INTERVAL,
        )
        self.limiter = SharedRateLimiter(
            f"kiwoom:rate:{app_key_id(self.base_url, app_key)}", rate_per_second or DEFAULT_RATE[mock]
        )

    # --- token ------------------------------------------------------------------------
    def token(self) -> str:
        return self.tokens.get(self._request_token, max(self.timeout, 5.0))

    def refresh_token(self, stale: str | None) -> str:
        """A token other than ``stale`` (refused by the venue): another process's newer one, or
        a new one. Raises TokenUnavailableError within a minute of the last issue."""
        return self.tokens.refresh(self._request_token, max(self.timeout, 5.0), stale=stale)

    def _request_token(self) -> str:
        body = {"grant_type": "client_credentials", "appkey": self.app_key, "secretkey": self.secret_key}
        try:
            response = self.session.post(
                f"{self.base_url}/oauth2/token",
                data=json.dumps(body),
                headers={"content-type": "application/json;charset=UTF-8", "api-id": "au10001"},
                timeout=self.timeout,
            )
        except requests.RequestException as e:
            raise RetryableVenueError(kiwoom_error(e.__class__.__name__)) from e
        data = _json(response)
        if response.status_code != 200 or not data.get("token") or data.get("return_code") not in (0, None):
            message = str(data.get("return_msg") or response.reason or response.status_code)
            if response.status_code >= 500 or data.get("return_code") in RATE_LIMIT_CODES:
                raise RetryableVenueError(kiwoom_error(message))
            raise PermanentVenueError(kiwoom_error(message))
        lifetime = token_lifetime(str(data.get("expires_dt") or ""))
        self.tokens.store(str(data["token"]), lifetime)
        log.info("키움 access token 발급 완료 (만료까지 %d초)", lifetime)
        return str(data["token"])

    # --- requests ---------------------------------------------------------------------
    def call(self, api_id: str, path: str, body: dict[str, Any], *, place: bool = False) -> dict[str, Any]:
        """One API call. ``place`` marks an order: a lost answer raises OrderUncertain."""
        return self._call(api_id, path, body, place=place)[0]

    def pages(
        self,
        api_id: str,
        path: str,
        body: dict[str, Any],
        *,
        enough: Callable[[dict[str, Any]], bool] | None = None,
    ) -> list[dict[str, Any]]:
        """Every page of an inquiry: while the answer says ``cont-yn: Y`` the next page is asked
        with its ``next-key`` — unless ``enough(page)`` says the caller has what it needs (a
        chart reaching back far enough). A list longer than MAX_PAGES fails (retryable) rather
        than answering from part of it."""
        pages, cont = [], ("", "")
        for _page in range(MAX_PAGES):
            data, headers = self._call(api_id, path, body, continuation=cont)
            pages.append(data)
            if headers.get("cont-yn") != "Y" or (enough is not None and enough(data)):
                return pages
            cont = ("Y", headers.get("next-key", ""))
        raise RetryableVenueError(kiwoom_error(_("too many pages in %(path)s") % {"path": api_id}))

    def _call(
        self,
        api_id: str,
        path: str,
        body: dict[str, Any],
        *,
        place: bool = False,
        continuation: tuple[str, str] = ("", ""),
    ) -> tuple[dict[str, Any], dict[str, str]]:
        refreshed, rate_retries = False, 0
        while True:
            try:
                return self._send(api_id, path, body, place=place, continuation=continuation)
            except TokenUnavailableError as e:
                raise PermanentVenueError(token_expired_message()) from e
            except KiwoomResponseError as e:
                if e.code in TOKEN_CODES:
                    if refreshed:
                        raise PermanentVenueError(token_expired_message()) from e
                    refreshed = True
                    log.warning("키움 access token 만료: 재발급 후 1회 재시도")
                    try:
                        self.refresh_token(stale=self.tokens.current())
                    except (TokenUnavailableError, PermanentVenueError) as e2:
                        raise PermanentVenueError(token_expired_message()) from e2
                    continue
                if e.code in RATE_LIMIT_CODES:
                    if rate_retries < RATE_LIMIT_RETRIES:
                        rate_retries += 1
                        venue_sleep(RATE_LIMIT_BACKOFF * rate_retries)
                        continue
                    raise RetryableVenueError(kiwoom_error(e.message)) from e
                if place:
                    raise OrderRejected(kiwoom_error(e.message)) from e
                raise PermanentVenueError(kiwoom_error(e.message)) from e

    def _send(
        self, api_id: str, path: str, body: dict[str, Any], *, place: bool, continuation: tuple[str, str]
    ) -> tuple[dict[str, Any], dict[str, str]]:
        headers = {
            "content-type": "application/json;charset=UTF-8",
            "api-id": api_id,
            "authorization": f"Bearer {self.token()}",
        }
        if continuation[0] == "Y":
            headers["cont-yn"], headers["next-key"] = continuation
        self.limiter.wait()
        try:
            response = self.session.post(
                f"{self.base_url}{path}", data=json.dumps(body), headers=headers, timeout=self.timeout
            )
        except (requests.Timeout, requests.ConnectionError) as e:
            message = kiwoom_error(_("no answer (%(error)s)") % {"error": e.__class__.__name__})
            if place and not isinstance(e, requests.ConnectTimeout):
                raise OrderUncertain(message) from e
            raise RetryableVenueError(message) from e
        except requests.RequestException as e:
            raise RetryableVenueError(kiwoom_error(e.__class__.__name__)) from e
        data = _json(response)
        code = data.get("return_code")
        if response.status_code == 200 and code in (0, None) and data:
            return data, {k.lower(): v for k, v in response.headers.items()}
        if not data or (response.status_code >= 500 and code is None):
            # A bare gateway error: an order may or may not have been taken.
            message = kiwoom_error(str(response.status_code))
            if place:
                raise OrderUncertain(message)
            raise RetryableVenueError(message)
        raise KiwoomResponseError(
            int(str(code)) if str(code).lstrip("-").isdigit() else -1,
            str(data.get("return_msg") or "").strip(),
            response.status_code,
        )


def _json(response: requests.Response) -> dict[str, Any]:
    try:
        data = response.json()
    except ValueError:
        return {}
    return data if isinstance(data, dict) else {}
