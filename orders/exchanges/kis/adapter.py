"""KisAdapter: Korean and overseas stocks and futures/options on one KIS account.

Account.settings keys (docs/venues.md): ``account_number`` ("12345678" or "12345678-01"),
``product_code`` (ACNT_PRDT_CD, default "01"; F&O accounts "03", overseas F&O "08"),
``api_base_url`` (simulator), ``timeout_seconds``, ``rate_limit_per_second``,
``overseas_market_slippage_pct`` (how far through the quote a MARKET order on an overseas
exchange is priced, default 0.5), ``use_hashkey`` (send the hashkey header on orders).

The adapter is the registry's entry point and only dispatches: each market is one object
(domestic_stock.py, overseas_stock.py, domestic_fo.py, overseas_fo.py) over the shared flow in
base.py, chosen through the one table ``MARKETS``.
"""

from __future__ import annotations

from collections.abc import Callable, Collection
from datetime import datetime
from decimal import Decimal
from typing import Any

from django.utils.translation import gettext as _

from orders.exchanges.base import (
    Balance,
    ExchangeAdapter,
    Holdings,
    OrderNotFound,
    OrderRejected,
    OrderRequest,
    OrderResult,
    VenueError,
    balance_summary,
    state_after_cancel,
)
from orders.exchanges.kis.base import DISPLAY_NAME, KisAccount, KisMarket, unsupported
from orders.exchanges.kis.client import KisClient
from orders.exchanges.kis.domestic_fo import DomesticFutureOption
from orders.exchanges.kis.domestic_stock import DomesticStock
from orders.exchanges.kis.overseas_fo import OverseasFutureOption
from orders.exchanges.kis.overseas_stock import OverseasStock
from quanttrade.vocabulary import MarketType

MARKETS: dict[MarketType, type[KisMarket]] = {
    market.market_type: market
    for market in (DomesticStock, OverseasStock, DomesticFutureOption, OverseasFutureOption)
}


class KisAdapter(ExchangeAdapter):
    display_name = DISPLAY_NAME

    def __init__(self, account: Any):
        super().__init__(account)
        self.kis = KisAccount(account)
        self._markets: dict[str, KisMarket] = {kind: market(self.kis) for kind, market in MARKETS.items()}

    @property
    def clock(self) -> Callable[[], datetime]:
        """The adapter's only clock (KST): F&O sessions, inquiry dates and intent times."""
        return self.kis.clock

    @clock.setter
    def clock(self, clock: Callable[[], datetime]) -> None:
        self.kis.clock = clock

    @property
    def client(self) -> KisClient:
        return self.kis.client

    @property
    def settings(self) -> dict[str, Any]:
        return self.kis.settings

    def _market_of(self, market_type: str) -> KisMarket | None:
        return self._markets.get(market_type)

    def warm(self, market_type: str) -> None:
        """Have a valid access token in the shared cache before the first order needs one."""
        self.client.token()

    def close(self) -> None:
        self.client.session.close()

    def _intent_key(self, client_order_id: str) -> str:
        return self.kis.ledger.intent_key(client_order_id)

    def place_order(self, request: OrderRequest) -> OrderResult:
        market = self._market_of(request.market_type)
        if market is None:
            raise unsupported(request.market_type)
        return market.place(request)

    def fetch_order_by_client_id(self, request: OrderRequest) -> OrderResult | None:
        intent = self.kis.ledger.get(request.client_order_id)
        if intent is None:
            return None  # never sent from here
        market = self._market_of(intent["market_type"])
        if market is None:
            return None  # recorded by no market this adapter knows
        return market.lookup(request.client_order_id, intent)

    def cancel_order(self, request: OrderRequest, exchange_order_id: str) -> OrderResult:
        """Cancel through the market's order-rvsecncl TR, by the order number (the one the
        ledger recorded when the Order has none); the state is read back from the order list."""
        market = self._market_of(request.market_type)
        if market is None:
            raise unsupported(request.market_type)
        intent = self.kis.ledger.get(request.client_order_id)
        order_no = exchange_order_id or (intent["odno"] if intent else "")
        if not order_no:
            raise OrderNotFound(_("The venue has no such order"))
        accepted = market.cancel_open(order_no)
        known = self.fetch_order_by_client_id(request)
        return state_after_cancel(known, order_no, accepted=accepted)

    def cancel_all(self, market_type: str, symbol: str | None) -> int:
        market = self._market_of(market_type)
        if market is None:
            raise OrderRejected(
                _("KIS does not support cancelling all orders for %(market)s") % {"market": market_type}
            )
        return market.cancel_all(symbol)

    def check_connection(self, market_types: Collection[str] = ()) -> str:
        """An access token first (named as such when refused), then the cash of a stock
        account; an F&O account (product code 03/08) has no cash inquiry here: the token is it."""
        try:
            self.client.token()
        except VenueError as e:
            raise type(e)(
                _(
                    "KIS refused the access token (check the app key, the app secret and 실전/모의투자): %(message)s"
                )
                % {"message": e.message}
            ) from e
        if self.kis.product_code != "01":
            return _("access token issued (product code %(code)s: no balance inquiry)") % {
                "code": self.kis.product_code
            }
        return balance_summary(self.balances())

    def balances(self) -> dict[str, Balance]:
        """Cash (KRW) from the domestic stock balance, the account's only balance TR here."""
        domestic = self._markets[MarketType.DOMESTIC_STOCK]
        assert isinstance(domestic, DomesticStock)
        return domestic.cash()

    def holdings(self, market_type: str) -> Holdings:
        """The market's own balance inquiry (see each market's ``holdings``); overseas stocks
        are read on the exchange in ``settings["overseas_exchange"]`` (default NASD: every US
        exchange)."""
        market = self._market_of(market_type)
        if market is None:
            raise unsupported(market_type)
        return market.holdings({"exchange_code": self.settings.get("overseas_exchange") or "NASD"})

    def position(self, market_type: str, symbol: str, params: dict[str, Any] | None = None) -> Decimal:
        market = self._market_of(market_type)
        return market.position(symbol, params or {}) if market is not None else Decimal(0)
