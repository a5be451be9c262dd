"""KiwoomAdapter: domestic stocks on one Kiwoom Securities account.

Account.settings keys (docs/venues.md): ``account_number`` (shown only: the token identifies the
account), ``api_base_url`` (simulator), ``timeout_seconds``, ``rate_limit_per_second``;
``Account.is_testnet`` selects 모의투자 (KRX only).

Kiwoom has no client order id, so "an order is never placed twice" rests on the broker-neutral
ledger (brokerkit/ledger.py): the intent is recorded before sending, the order number bound when
answered, and after a lost answer the day's order list (kt00007) is searched and the match
claimed atomically. Every accepted order is read back once from that list, so a market order
that traded reports filled; the sweep's refresh reads it again later (no ``00`` push needed).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Collection
from datetime import datetime
from decimal import ROUND_DOWN, Decimal
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
    OrderUncertain,
    VenueError,
    VenuePosition,
    balance_summary,
    state_after_cancel,
)
from orders.exchanges.brokerkit.ledger import Intent, OrderLedger
from orders.exchanges.brokerkit.venue_orders import (
    VenueOrder,
    collect_orders,
    find_order,
    state_after_acceptance,
)
from orders.exchanges.kiwoom import domestic_stock as ds
from orders.exchanges.kiwoom.client import DISPLAY_NAME, KST, KiwoomClient, kiwoom_error
from quanttrade.vocabulary import ZERO, MarketType, OrderStatus, Side, to_decimal

log = logging.getLogger("quanttrade.orders")


def kst_now() -> datetime:
    return datetime.now(KST)


class KiwoomAdapter(ExchangeAdapter):
    display_name = DISPLAY_NAME

    def __init__(self, account: Any, clock: Callable[[], datetime] = kst_now):
        super().__init__(account)
        self.settings: dict[str, Any] = dict(account.settings or {})
        self.clock = clock
        rate = self.settings.get("rate_limit_per_second")
        self.client = KiwoomClient(
            app_key=account.api_key,
            secret_key=account.api_secret,
            mock=account.is_testnet,
            base_url=self.settings.get("api_base_url") or None,
            timeout=float(self.settings.get("timeout_seconds", 10)),
            rate_per_second=int(rate) if rate else None,
        )
        self.ledger = OrderLedger(
            namespace="kiwoom",
            account_id=account.pk,
            tz=KST,
            error=kiwoom_error,
            http_timeout=self.client.timeout,
        )

    def warm(self, market_type: str) -> None:
        self.client.token()

    def close(self) -> None:
        self.client.session.close()

    @staticmethod
    def _domestic_only(market_type: str) -> None:
        if market_type != MarketType.DOMESTIC_STOCK:
            raise ds.unsupported(market_type)

    # --- quantities -------------------------------------------------------------------
    def quantity(self, request: OrderRequest) -> tuple[str, Decimal]:
        """(side, whole quantity): qty_per is shares; a negative one closes that percent of
        the orderable holding (kt00018 trde_able_qty)."""
        qty = request.qty_per
        if qty is None:
            raise OrderRejected(_("qty_per is required"))
        side = request.side
        if request.is_close:
            held = self.position(request.market_type, request.symbol)
            if held <= 0:
                raise OrderRejected(_("No position to close for %(symbol)s") % {"symbol": request.symbol})
            qty = (held * min(abs(qty), Decimal(100)) / 100).to_integral_value(rounding=ROUND_DOWN)
            side = Side.SELL
        if qty < 1 or qty != qty.to_integral_value():
            raise OrderRejected(_("Quantity must be a whole number of at least 1: %(qty)s") % {"qty": qty})
        return side, qty

    # --- place ------------------------------------------------------------------------
    def place_order(self, request: OrderRequest) -> OrderResult:
        self._domestic_only(request.market_type)
        if request.order_type not in ds.TRDE_TP:
            raise ds.unsupported(request.order_type)
        side, qty = self.quantity(request)
        api_id, body = ds.order_body(request, side, qty, self.client.mock)
        intent = self.ledger.new_intent(
            request.market_type, body["stk_cd"], side, qty, self.clock(), exchange=body["dmst_stex_tp"]
        )
        self.ledger.record(request.client_order_id, intent)
        log.info(
            "키움 주문 전송: %s %s %s qty=%s api=%s", request.symbol, side, request.order_type, qty, api_id
        )
        with self.ledger.in_flight(intent):
            try:
                data = self.client.call(api_id, ds.ORDER_PATH, body, place=True)
                ord_no = str(data.get("ord_no") or "")
                intent["odno"] = ord_no
                self.ledger.record(request.client_order_id, intent)
                if ord_no:
                    # Claimed before the in-flight mark goes: a lookup sees one or the other.
                    self.ledger.bind(ord_no, request.client_order_id)
            except OrderUncertain:
                raise  # the intent stays: the lookup resolves it
            except VenueError:
                self.ledger.forget(request.client_order_id)
                raise
        accepted = OrderResult(
            status=OrderStatus.OPEN,
            exchange_order_id=ord_no,
            quantity=qty,
            message=str(data.get("return_msg") or "").strip(),
        )
        return self._state_after_acceptance(intent, accepted)

    def _state_after_acceptance(self, intent: Intent, accepted: OrderResult) -> OrderResult:
        return state_after_acceptance(
            lambda: self._find(intent), accepted, venue=DISPLAY_NAME, order_no=intent["odno"]
        )

    # --- order list -------------------------------------------------------------------
    def orders(self, day: str, code: str = "", side: str = "") -> list[VenueOrder]:
        pages = self.client.pages(ds.ORDER_LIST, ds.ACCOUNT_PATH, ds.order_list_body(day, code, side))
        return collect_orders(pages, "acnt_ord_cntr_prps_dtl", lambda row: ds.read_order(row, day))

    def _intent_orders(self, intent: Intent) -> list[VenueOrder]:
        day = self.ledger.sent_on(intent).strftime("%Y%m%d")
        return self.orders(day, intent["pdno"], intent["side"])

    def _find(self, intent: Intent) -> VenueOrder | None:
        return find_order(self._intent_orders(intent), intent["odno"])

    def fetch_order_by_client_id(self, request: OrderRequest) -> OrderResult | None:
        intent = self.ledger.get(request.client_order_id)
        if intent is None or intent["market_type"] != MarketType.DOMESTIC_STOCK:
            return None  # never sent from here
        if intent["odno"]:
            found = self._find(intent)
            if found is not None:
                return found.result()
            return OrderResult(
                status=OrderStatus.OPEN,
                exchange_order_id=intent["odno"],
                quantity=to_decimal(intent["qty"], ZERO),
            )
        found = self.ledger.claim(request.client_order_id, intent, self._intent_orders(intent))
        if found is None:
            return None
        intent["odno"] = found.order_no
        self.ledger.record(request.client_order_id, intent)
        return found.result()

    # --- cancel -----------------------------------------------------------------------
    def cancel_order(self, request: OrderRequest, exchange_order_id: str) -> OrderResult:
        """Cancel by order number (the one the ledger recorded when the Order has none) when
        today's order list shows something of it left; the state is read back from that list."""
        self._domestic_only(request.market_type)
        intent = self.ledger.get(request.client_order_id)
        order_no = exchange_order_id or (intent["odno"] if intent else "")
        if not order_no:
            raise OrderNotFound(_("The venue has no such order"))
        found = find_order(self.orders(self.clock().strftime("%Y%m%d")), order_no)
        accepted = found is not None and found.remaining > 0
        if found is not None and accepted:
            self._cancel(found)
        known = self.fetch_order_by_client_id(request)
        return state_after_cancel(known, order_no, accepted=accepted)

    def cancel_all(self, market_type: str, symbol: str | None) -> int:
        self._domestic_only(market_type)
        code = ds.stock_code(symbol) if symbol else ""
        count = 0
        for order in self.orders(self.clock().strftime("%Y%m%d"), code):
            if order.remaining <= 0:
                continue
            self._cancel(order)
            count += 1
        return count

    def _cancel(self, order: VenueOrder) -> None:
        """kt10003: the whole remainder of ``order``."""
        self.client.call(
            ds.CANCEL,
            ds.ORDER_PATH,
            {
                "dmst_stex_tp": str(order.row.get("dmst_stex_tp") or "KRX"),
                "orig_ord_no": order.order_no,
                "stk_cd": order.product,
                "cncl_qty": "0",  # the guide: 0 cancels the whole remainder
            },
        )

    # --- portfolio --------------------------------------------------------------------
    def stock_holdings(self) -> dict[str, Decimal]:
        """Orderable shares per code (kt00018, every page)."""
        pages = self.client.pages(ds.HOLDINGS, ds.ACCOUNT_PATH, {"qry_tp": "1", "dmst_stex_tp": "KRX"})
        held: dict[str, Decimal] = {}
        for page in pages:
            for row in page.get("acnt_evlt_remn_indv_tot") or []:
                code = ds.stock_code(str(row.get("stk_cd") or ""))
                held[code] = held.get(code, ZERO) + to_decimal(row.get("trde_able_qty"), ZERO)
        return held

    def check_connection(self, market_types: Collection[str] = ()) -> str:
        """An access token first (named as such when refused), then the deposit and holdings."""
        try:
            self.client.token()
        except VenueError as e:
            raise type(e)(
                _(
                    "Kiwoom refused the access token (check the app key, the secret key and 실전/모의투자): %(message)s"
                )
                % {"message": e.message}
            ) from e
        return balance_summary(self.balances())

    def balances(self) -> dict[str, Balance]:
        """KRW: orderable cash (kt00001 ord_alow_amt) free, the rest of the deposit locked."""
        data = self.client.call(ds.DEPOSIT, ds.ACCOUNT_PATH, {"qry_tp": "3"})
        deposit, orderable = to_decimal(data.get("entr"), ZERO), to_decimal(data.get("ord_alow_amt"), ZERO)
        balances = {"KRW": Balance(asset="KRW", free=orderable, locked=max(ZERO, deposit - orderable))}
        for code, qty in self.stock_holdings().items():
            balances[code] = Balance(asset=code, free=qty)
        return balances

    def holdings(self, market_type: str) -> Holdings:
        """KRW from 예수금상세현황 (kt00001) and each stock of 계좌평가잔고내역 (kt00018)."""
        if market_type != MarketType.DOMESTIC_STOCK:
            return Holdings(market_type=market_type)
        balances = self.balances()
        positions = [
            VenuePosition(market_type=market_type, symbol=code, quantity=b.total, currency="KRW")
            for code, b in balances.items()
            if code != "KRW" and b.total
        ]
        return Holdings(market_type=market_type, balances={"KRW": balances["KRW"]}, positions=positions)

    def position(self, market_type: str, symbol: str, params: dict[str, Any] | None = None) -> Decimal:
        if market_type != MarketType.DOMESTIC_STOCK:
            return Decimal(0)
        return self.stock_holdings().get(ds.stock_code(symbol), Decimal(0))
