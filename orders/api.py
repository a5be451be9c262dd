"""REST reads of the accounts' portfolios (staff session or API token, like every API here):
``GET /api/accounts/``, ``/api/accounts/<id>/portfolio``, ``/api/accounts/<id>/fills``."""

from __future__ import annotations

from django.shortcuts import get_object_or_404
from django.utils.translation import gettext as _
from drf_spectacular.utils import OpenApiParameter, extend_schema, inline_serializer
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from orders.portfolio.selectors import (
    account_summary,
    equity_curve_payload,
    fill_payload,
    instrument_fills,
    recent_fills,
)
from orders.portfolio.services import portfolio_get, portfolio_refresh
from prices.records import instrument_normalize
from quanttrade.errors import ApiError
from strategies.models import Account

MAX_FILLS = 1000


class _Total(serializers.Serializer):
    currency = serializers.CharField()
    cash = serializers.CharField(help_text="decimal string")
    holdings_value = serializers.CharField(help_text="marked value of stocks and coins")
    margin_pnl = serializers.CharField(help_text="unrealised PnL of futures/F&O positions")
    unrealised_pnl = serializers.CharField()
    realised_pnl = serializers.CharField(help_text="FIFO over the stored fills")
    fees = serializers.CharField()
    day_pnl = serializers.CharField(allow_null=True, help_text="equity less the last snapshot before today")
    equity = serializers.CharField(help_text="cash + holdings_value + margin_pnl")


class _Balance(serializers.Serializer):
    market_type = serializers.CharField()
    asset = serializers.CharField()
    free = serializers.CharField()
    locked = serializers.CharField()


class _Position(serializers.Serializer):
    market_type = serializers.CharField()
    symbol = serializers.CharField()
    instrument = serializers.CharField(help_text="price-layer id used to mark it")
    quantity = serializers.CharField(help_text="signed: negative is short")
    currency = serializers.CharField()
    margin = serializers.BooleanField()
    entry_price = serializers.CharField(allow_null=True)
    mark_price = serializers.CharField(allow_null=True)
    mark_source = serializers.CharField(help_text='"price" (price layer), "venue" or ""')
    unrealised_pnl = serializers.CharField(allow_null=True)
    realised_pnl = serializers.CharField()
    fees = serializers.CharField()
    leverage = serializers.CharField(allow_null=True)
    liquidation_price = serializers.CharField(allow_null=True)
    value = serializers.CharField(allow_null=True)


# An inline serializer: a declared field named "errors" would shadow Serializer.errors.
PortfolioOutput = inline_serializer(
    "PortfolioOutput",
    fields={
        "account_id": serializers.IntegerField(),
        "account_name": serializers.CharField(),
        "exchange": serializers.CharField(),
        "refreshed_at": serializers.DateTimeField(),
        "balances": _Balance(many=True),
        "positions": _Position(many=True),
        "totals": serializers.DictField(child=_Total()),
        "total_krw": serializers.CharField(allow_null=True, help_text="equity in KRW where a rate exists"),
        "unconverted": serializers.ListField(child=serializers.CharField()),
        "errors": serializers.ListField(
            child=serializers.CharField(), help_text="venue read failures, per market"
        ),
        "error": serializers.CharField(),
        "equity_curve": serializers.DictField(child=serializers.ListField(child=serializers.DictField())),
    },
)


class _Connection(serializers.Serializer):
    ok = serializers.BooleanField()
    message = serializers.CharField()
    checked_at = serializers.DateTimeField()


class _Summary(serializers.Serializer):
    refreshed_at = serializers.DateTimeField()
    totals = serializers.DictField(child=_Total())
    total_krw = serializers.CharField(allow_null=True)
    unconverted = serializers.ListField(child=serializers.CharField())
    error = serializers.CharField()
    positions = serializers.IntegerField()


class AccountOutput(serializers.Serializer):
    id = serializers.IntegerField()
    name = serializers.CharField()
    exchange = serializers.CharField()
    is_testnet = serializers.BooleanField()
    is_active = serializers.BooleanField()
    connection = _Connection(allow_null=True)
    portfolio = _Summary(allow_null=True, help_text="the last portfolio read (null before the first)")


class FillOutput(serializers.Serializer):
    order_id = serializers.UUIDField()
    market_type = serializers.CharField()
    symbol = serializers.CharField()
    side = serializers.CharField()
    order_type = serializers.CharField()
    status = serializers.CharField()
    quantity = serializers.CharField(help_text="filled quantity")
    price = serializers.CharField(help_text="average fill price")
    fee = serializers.CharField(allow_null=True)
    fee_currency = serializers.CharField()
    at = serializers.DateTimeField()


def _flag(request: Request, name: str) -> bool:
    return str(request.query_params.get(name, "")).lower() in ("1", "true", "yes")


class AccountListView(APIView):
    """Every account with its venue, connection state and last portfolio totals."""

    @extend_schema(operation_id="accounts_list", responses={200: AccountOutput(many=True)})
    def get(self, request: Request) -> Response:
        return Response([account_summary(a) for a in Account.objects.order_by("name")])


class AccountPortfolioView(APIView):
    """Balances, positions (marked), totals and the equity curve of one account. The last read
    is served (read now when there is none); ``?refresh=1`` reads the venue now."""

    @extend_schema(
        operation_id="account_portfolio",
        parameters=[OpenApiParameter("refresh", bool, description="read the venue now")],
        responses={200: PortfolioOutput},
    )
    def get(self, request: Request, account_id: int) -> Response:
        account = get_object_or_404(Account, pk=account_id)
        portfolio = portfolio_refresh(account) if _flag(request, "refresh") else portfolio_get(account)
        body = portfolio.to_dict()
        body["equity_curve"] = equity_curve_payload(account.pk)
        return Response(body)


class AccountFillsView(APIView):
    """The account's fills, newest first: each filled order at its average price with its fee."""

    @extend_schema(
        operation_id="account_fills",
        parameters=[
            OpenApiParameter("limit", int, description=f"at most this many (default 100, max {MAX_FILLS})"),
            OpenApiParameter("symbol", str, description="only this symbol"),
        ],
        responses={200: FillOutput(many=True)},
    )
    def get(self, request: Request, account_id: int) -> Response:
        account = get_object_or_404(Account, pk=account_id)
        raw = request.query_params.get("limit", "100")
        try:
            limit = int(raw)
        except ValueError:
            limit = 0
        if not 1 <= limit <= MAX_FILLS:
            raise ApiError(
                _("limit must be a whole number from 1 to %(max)d") % {"max": MAX_FILLS}, code="invalid_limit"
            )
        fills = recent_fills(account.pk, limit, str(request.query_params.get("symbol", "")).strip())
        return Response([fill_payload(order) for order in fills])


class InstrumentFillsView(APIView):
    """Every account's fills of one price-layer instrument, newest first (at most 500): the
    markers on the instrument chart. Each fill names its account."""

    @extend_schema(
        operation_id="instrument_fills",
        parameters=[
            OpenApiParameter("instrument", str, required=True, description="e.g. BINANCE:BTC/USDT, 005930")
        ],
        responses={200: FillOutput(many=True)},
    )
    def get(self, request: Request) -> Response:
        instrument = instrument_normalize(str(request.query_params.get("instrument", "")))
        if instrument is None:
            raise ApiError(
                _("instrument is required, e.g. BINANCE:BTC/USDT or 005930"), code="invalid_instrument"
            )
        return Response(
            [{**fill_payload(order), "account": order.account.name} for order in instrument_fills(instrument)]
        )
