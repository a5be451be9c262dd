"""KisClient: the Korea Investment & Securities Open API over ``requests``.

What it guarantees:
- one access token per (environment, app key) shared by every process through Django's cache
  (Redis when distributed), issued under a cross-process lock, refreshed an hour before its
  24 h expiry and never requested more than once a minute (KIS answers EGW00133 otherwise);
- a per-app-key request rate shared across processes (cache counter per second); KIS's own
  EGW00201 "too many requests" is backed off and retried, then reported as retryable;
- an expired token (EGW00123/EGW00121) is refreshed once and the request repeated once; if
  that fails the error says the token expired and re-authentication is needed;
- real and virtual (모의투자) base URLs and TR ids.
Secrets and tokens are never logged. The token cache and the rate limiter are broker-neutral
(brokerkit/token_cache.py, brokerkit/rate_limit.py); KIS's codes, URLs and TR ids stay here.
"""

from __future__ import annotations

import json
import logging
from typing import Any

import requests
from django.utils.translation import gettext as _

from orders.exchanges.base import OrderRejected, OrderUncertain, PermanentVenueError, RetryableVenueError
from orders.exchanges.brokerkit.rate_limit import SharedRateLimiter
from orders.exchanges.brokerkit.token_cache import SharedTokenCache, TokenUnavailableError, app_key_id
from orders.exchanges.http import venue_session
from orders.handoff import venue_sleep

log = logging.getLogger("quanttrade.orders")

REAL_URL = "https://openapi.koreainvestment.com:9443"
VIRTUAL_URL = "https://openapivts.koreainvestment.com:29443"
TOKEN_LIFETIME = 24 * 3600
REFRESH_BEFORE = 3600  # refresh this long before the token's expiry
TOKEN_MIN_INTERVAL = 60  # KIS: one tokenP per minute (EGW00133)
TOKEN_EXPIRED_CODES = frozenset({"EGW00123", "EGW00121"})
RATE_LIMIT_CODE = "EGW00201"
TOKEN_TOO_OFTEN_CODE = "EGW00133"
# Real accounts: 20 requests/s per app key; virtual: 2/s (KIS's published limits, kept under).
DEFAULT_RATE = {False: 18, True: 2}
# EGW00201 (rate limited) is retried this many times, waiting RATE_LIMIT_BACKOFF × the retry's number.
RATE_LIMIT_RETRIES = 2
RATE_LIMIT_BACKOFF = 0.5
# Inquiry pages followed at most (100 rows each): an order lookup must see the whole list, so a
# longer one fails (retryable) rather than answering from part of it.
MAX_PAGES = 30


def kis_error(message: str) -> str:
    return _("KIS API error: %(message)s") % {"message": message}


def token_expired_message() -> str:
    return _("KIS access token has expired. Re-authentication is required.")


class KisResponseError(Exception):
    """A KIS answer with rt_cd != "0" (or an HTTP error with a KIS body)."""

    def __init__(self, code: str, message: str, status: int):
        self.code = code
        self.message = message
        self.status = status
        super().__init__(f"{code} {message}")


class KisClient:
    """One app key on one KIS environment. Thread-safe; cheap to create."""

    def __init__(
        self,
        *,
        app_key: str,
        app_secret: str,
        virtual: bool = False,
        base_url: str | None = None,
        timeout: float = 10.0,
        rate_per_second: int | None = None,
    ):
        self.app_key = app_key
        self.app_secret = app_secret
        self.virtual = virtual
        self.base_url = (base_url or (VIRTUAL_URL if virtual else REAL_URL)).rstrip("/")
        self.timeout = timeout
        self.rate_per_second = rate_per_second or DEFAULT_RATE[virtual]
        self.session = venue_session()
        self.tokens = SharedTokenCache(
            namespace="kis",
            base_url=self.base_url,
            app_key=app_key,
            app_secret=app_secret,
            error=kis_error,
            refresh_before=REFRESH_BEFORE,
            min_interval=TOKEN_MIN_INTERVAL,
        )
        self.limiter = SharedRateLimiter(
            f"kis:rate:{app_key_id(self.base_url, app_key)}", self.rate_per_second
        )

    @property
    def _token_key(self) -> str:
        return self.tokens.key

    @property
    def _token_issued_key(self) -> str:
        return self.tokens.issued_key

    # --- TR ids -----------------------------------------------------------------------
    def tr(self, real: str, virtual: str | None = None) -> str:
        """The TR id for this environment: virtual ids swap the leading T/J/C for V."""
        if not self.virtual:
            return real
        if virtual:
            return virtual
        return "V" + real[1:] if real[0] in "TJC" else real

    # --- token ------------------------------------------------------------------------
    def token(self) -> str:
        """A valid access token, from the shared cache or freshly issued."""
        return self.tokens.get(self._request_token, self._token_wait())

    def _issue_token(self, stale: str | None) -> str:
        """Issue a token under the shared cache's lock (see SharedTokenCache.refresh)."""
        return self.tokens.refresh(self._request_token, self._token_wait(), stale=stale)

    def _token_wait(self) -> float:
        return max(self.timeout, 5.0)

    def _request_token(self) -> str:
        body = {"grant_type": "client_credentials", "appkey": self.app_key, "appsecret": self.app_secret}
        try:
            response = self.session.post(
                f"{self.base_url}/oauth2/tokenP",
                data=json.dumps(body),
                headers={"content-type": "application/json; charset=utf-8"},
                timeout=self.timeout,
            )
        except requests.RequestException as e:
            raise RetryableVenueError(kis_error(str(e.__class__.__name__))) from e
        data = _json(response)
        if response.status_code != 200 or "access_token" not in data:
            code = str(data.get("error_code") or data.get("msg_cd") or response.status_code)
            message = str(data.get("error_description") or data.get("msg1") or response.reason)
            if code == TOKEN_TOO_OFTEN_CODE:
                raise RetryableVenueError(kis_error(message))
            if response.status_code >= 500:
                raise RetryableVenueError(kis_error(message))
            raise PermanentVenueError(kis_error(message))
        lifetime = int(data.get("expires_in") or TOKEN_LIFETIME)
        token = str(data["access_token"])
        self.tokens.store(token, lifetime)
        log.info("한투 access token 발급 완료 (만료까지 %d초)", lifetime)
        return token

    # --- rate limit -------------------------------------------------------------------
    def _throttle(self) -> None:
        """Wait for this app key's next request slot (shared by all processes)."""
        self.limiter.wait()

    # --- requests ---------------------------------------------------------------------
    def hashkey(self, body: dict[str, Any]) -> str:
        data, _more = self._send("POST", "/uapi/hashkey", None, body=body, place=False, auth=False)
        return str(data["HASH"])

    def request(
        self,
        method: str,
        path: str,
        tr_id: str,
        *,
        params: dict[str, Any] | None = None,
        body: dict[str, Any] | None = None,
        place: bool = False,
        use_hashkey: bool = False,
    ) -> dict[str, Any]:
        """Call one TR. ``place`` marks an order request: a timeout then raises OrderUncertain
        (it may have been accepted), never a blind retry."""
        return self._call(
            method, path, tr_id, params=params, body=body, place=place, use_hashkey=use_hashkey
        )[0]

    def inquire_pages(
        self, path: str, tr_id: str, params: dict[str, Any], *, context_size: int = 200
    ) -> list[dict[str, Any]]:
        """Every page of a GET inquiry: KIS answers ``tr_cont`` F/M while more follow, and the
        next page is asked with ``tr_cont: N`` and the CTX_AREA_FK/NK keys of the last answer."""
        fk, nk = f"CTX_AREA_FK{context_size}", f"CTX_AREA_NK{context_size}"
        params = {**params, fk: params.get(fk, ""), nk: params.get(nk, "")}
        pages, continuation = [], ""
        for _page in range(MAX_PAGES):
            data, more = self._call("GET", path, tr_id, params=params, continuation=continuation)
            pages.append(data)
            if more not in ("F", "M"):
                return pages
            params = {**params, fk: str(data.get(fk.lower(), "")), nk: str(data.get(nk.lower(), ""))}
            continuation = "N"
        raise RetryableVenueError(kis_error(_("too many pages in %(path)s") % {"path": path}))

    def _call(
        self,
        method: str,
        path: str,
        tr_id: str,
        *,
        params: dict[str, Any] | None = None,
        body: dict[str, Any] | None = None,
        place: bool = False,
        use_hashkey: bool = False,
        continuation: str = "",
    ) -> tuple[dict[str, Any], str]:
        """(answer, the answer's ``tr_cont`` header), with the token, rate limit and error rules."""
        refreshed = False
        rate_retries = 0
        while True:
            try:
                headers = {"tr_id": tr_id, "custtype": "P", "tr_cont": continuation}
                if use_hashkey and body is not None:
                    headers["hashkey"] = self.hashkey(body)
                return self._send(method, path, headers, params=params, body=body, place=place, auth=True)
            except TokenUnavailableError as e:
                raise PermanentVenueError(token_expired_message()) from e
            except KisResponseError as e:
                if e.code in TOKEN_EXPIRED_CODES:
                    if refreshed:
                        raise PermanentVenueError(token_expired_message()) from e
                    refreshed = True
                    log.warning("한투 access token 만료: 재발급 후 1회 재시도")
                    try:
                        self._issue_token(stale=self._current_token())
                    except (TokenUnavailableError, PermanentVenueError) as e2:
                        raise PermanentVenueError(token_expired_message()) from e2
                    continue
                if e.code == RATE_LIMIT_CODE:
                    if rate_retries < RATE_LIMIT_RETRIES:
                        rate_retries += 1
                        venue_sleep(RATE_LIMIT_BACKOFF * rate_retries)
                        continue
                    raise RetryableVenueError(kis_error(e.message)) from e
                if e.code.isdigit() and e.status >= 500:
                    # An HTTP error without a KIS answer code: the request's fate is unknown.
                    if place:
                        raise OrderUncertain(kis_error(e.message)) from e
                    raise RetryableVenueError(kis_error(e.message)) from e
                if e.code == TOKEN_TOO_OFTEN_CODE:
                    raise RetryableVenueError(kis_error(e.message)) from e
                if place:
                    raise OrderRejected(kis_error(e.message)) from e
                raise PermanentVenueError(kis_error(e.message)) from e

    def _current_token(self) -> str | None:
        return self.tokens.current()

    def _send(
        self,
        method: str,
        path: str,
        extra_headers: dict[str, str] | None,
        *,
        params: dict[str, Any] | None = None,
        body: dict[str, Any] | None = None,
        place: bool,
        auth: bool,
    ) -> tuple[dict[str, Any], str]:
        headers = {
            "content-type": "application/json; charset=utf-8",
            "appkey": self.app_key,
            "appsecret": self.app_secret,
            **(extra_headers or {}),
        }
        if auth:
            headers["authorization"] = f"Bearer {self.token()}"
        self._throttle()
        try:
            response = self.session.request(
                method,
                f"{self.base_url}{path}",
                params=params,
                data=json.dumps(body) if body is not None else None,
                headers=headers,
                timeout=self.timeout,
            )
        except (requests.Timeout, requests.ConnectionError) as e:
            message = kis_error(_("no answer (%(error)s)") % {"error": e.__class__.__name__})
            if place and not isinstance(e, requests.ConnectTimeout):
                raise OrderUncertain(message) from e
            raise RetryableVenueError(message) from e
        except requests.RequestException as e:
            raise RetryableVenueError(kis_error(e.__class__.__name__)) from e
        data = _json(response)
        rt_cd = data.get("rt_cd")
        if response.status_code == 200 and (rt_cd in (None, "0")):
            return data, response.headers.get("tr_cont", "")
        code = str(data.get("msg_cd") or data.get("error_code") or response.status_code)
        message = str(data.get("msg1") or data.get("error_description") or response.reason or code).strip()
        if not data and response.status_code >= 500:
            # A bare gateway error: an order may or may not have been taken.
            if place:
                raise OrderUncertain(kis_error(message))
            raise RetryableVenueError(kis_error(message))
        raise KisResponseError(code, message, response.status_code)


def _json(response: requests.Response) -> dict[str, Any]:
    try:
        data = response.json()
    except ValueError:
        return {}
    return data if isinstance(data, dict) else {}
