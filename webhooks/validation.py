"""Webhook message validation (SPEC §2): raw fields in, normalized order specs out.

Everything here is pure: no database, no network. The intake service runs the checks that need
the database (strategy, token, accounts) in the order SPEC §2.3 fixes and calls into this
module for the message itself.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal, InvalidOperation
from typing import Any

from django.conf import settings
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from orders.models import MONEY
from quanttrade.errors import ApiError
from quanttrade.vocabulary import CRYPTO_MARKETS, MarketType, OrderType, Side


class WebhookError(ApiError):
    """A rejected webhook: 400 unless the code says otherwise."""


# --- vocabulary -----------------------------------------------------------------------------

COMMON_ORDER_TYPES = (
    OrderType.MARKET,
    OrderType.LIMIT,
    OrderType.STOP_MARKET,
    OrderType.STOP_LIMIT,
    OrderType.CANCEL_ALL_ORDER,
)
DOMESTIC_STOCK_ORDER_TYPES = (
    OrderType.CONDITIONAL_LIMIT,
    OrderType.BEST_LIMIT,
    OrderType.PRE_MARKET,
    OrderType.AFTER_MARKET,
)
ALL_ORDER_TYPES = COMMON_ORDER_TYPES + DOMESTIC_STOCK_ORDER_TYPES
# "CANCEL" is accepted as another name of CANCEL_ALL_ORDER (the guide's priority table uses it).
ORDER_TYPE_ALIASES = {"CANCEL": OrderType.CANCEL_ALL_ORDER}
CANCEL_TYPES = frozenset({OrderType.CANCEL_ALL_ORDER})

# SPEC §2.4: execution priority, stable within a priority.
PRIORITY: dict[str, int] = {
    OrderType.MARKET: 1,
    OrderType.CANCEL_ALL_ORDER: 2,
    OrderType.LIMIT: 3,
    OrderType.BEST_LIMIT: 3,
    OrderType.PRE_MARKET: 3,
    OrderType.AFTER_MARKET: 3,
    OrderType.STOP_MARKET: 4,
    OrderType.STOP_LIMIT: 5,
    OrderType.CONDITIONAL_LIMIT: 6,
}

PRICE_REQUIRED = frozenset({OrderType.LIMIT, OrderType.STOP_LIMIT, OrderType.CONDITIONAL_LIMIT})
STOP_PRICE_REQUIRED = frozenset({OrderType.STOP_MARKET, OrderType.STOP_LIMIT})
# Types for which a price means nothing: it is dropped with a warning.
PRICE_IGNORED = frozenset({OrderType.MARKET, OrderType.STOP_MARKET, OrderType.CANCEL_ALL_ORDER})
STOP_PRICE_IGNORED = frozenset(ALL_ORDER_TYPES) - STOP_PRICE_REQUIRED

SIDES = {"BUY": Side.BUY, "SELL": Side.SELL, "LONG": Side.BUY, "SHORT": Side.SELL}

DEPRECATED_FIELDS = ("market_type", "exchange", "platform")
TOP_LEVEL_FIELDS = frozenset(
    {
        "group_name",
        "token",
        "symbol",
        "side",
        "order_type",
        "qty_per",
        "price",
        "stop_price",
        "currency",
        "params",
        "orders",
        "idempotency_key",
        "timestamp",
    }
)
BATCH_ORDER_FIELDS = frozenset({"order_type", "side", "price", "stop_price", "qty_per", "params"})
# In a batch the order fields live in `orders`; at the top level they are unknown.
BATCH_TOP_LEVEL_FIELDS = frozenset(
    {"group_name", "token", "symbol", "currency", "params", "orders", "idempotency_key", "timestamp"}
)

# Every number is stored in a DecimalField of MONEY's size (room for 20 integer digits), but
# SQLite keeps decimals as REAL (a double, 15-17 significant digits): a 20-digit value reads
# back rounded up to 21 digits and can then never be loaded again. 15 fits both, and is far
# above any real price or quantity.
MAX_INTEGER_DIGITS = min(15, MONEY["max_digits"] - MONEY["decimal_places"])
# The longest currency code an Order stores (Order.currency).
MAX_CURRENCY_LENGTH = 16
# How many unknown field names a warning lists, and how much of each.
UNKNOWN_FIELDS_SHOWN, FIELD_NAME_SHOWN = 10, 40

SECURITY_SYMBOL = re.compile(r"^[A-Za-z0-9._-]{1,30}$")
CRYPTO_SYMBOL = re.compile(r"^([A-Z0-9]{1,20})/([A-Z0-9]{1,10})$")
# Quote currencies tried, longest first, when suggesting BTC/USDT for BTCUSDT.
KNOWN_QUOTES = (
    "FDUSD",
    "USDT",
    "USDC",
    "BUSD",
    "TUSD",
    "USDE",
    "DAI",
    "KRW",
    "USD",
    "EUR",
    "TRY",
    "BRL",
    "JPY",
    "GBP",
    "BTC",
    "ETH",
    "BNB",
)

MARKET_LABELS = {
    MarketType.SPOT: gettext_lazy("Crypto spot"),
    MarketType.FUTURES: gettext_lazy("Crypto futures"),
    MarketType.DOMESTIC_STOCK: gettext_lazy("Korean stock"),
    MarketType.OVERSEAS_STOCK: gettext_lazy("Overseas stock"),
    MarketType.DOMESTIC_FUTUREOPTION: gettext_lazy("Korean futures/options"),
    MarketType.OVERSEAS_FUTUREOPTION: gettext_lazy("Overseas futures/options"),
}
SYMBOL_EXAMPLES = {
    MarketType.DOMESTIC_STOCK: "005930, KR005930, 123456A",
    MarketType.OVERSEAS_STOCK: "AAPL, BRK.B, 9988",
    MarketType.DOMESTIC_FUTUREOPTION: "101TC000, 201PC260",
    MarketType.OVERSEAS_FUTUREOPTION: "ESZ4, NQH5, CL-DEC24",
}
# Markets whose quantities are whole shares/contracts.
WHOLE_QUANTITY_MARKETS = frozenset(
    {MarketType.DOMESTIC_STOCK, MarketType.DOMESTIC_FUTUREOPTION, MarketType.OVERSEAS_FUTUREOPTION}
)
DEFAULT_SECURITY_CURRENCY = {
    MarketType.DOMESTIC_STOCK: "KRW",
    MarketType.DOMESTIC_FUTUREOPTION: "KRW",
    MarketType.OVERSEAS_STOCK: "USD",
    MarketType.OVERSEAS_FUTUREOPTION: "USD",
}


# --- results --------------------------------------------------------------------------------


@dataclass(frozen=True)
class OrderSpec:
    """One normalized order of a webhook (before fan-out to accounts)."""

    batch_index: int  # 1-based position as sent
    order_type: str
    side: str
    qty_per: Decimal | None
    price: Decimal | None
    stop_price: Decimal | None
    params: dict[str, Any]

    @property
    def priority(self) -> int:
        return PRIORITY[self.order_type]


@dataclass
class WebhookMessage:
    symbol: str
    currency: str
    orders: list[OrderSpec]
    warnings: list[str] = field(default_factory=list)
    # When the sender says the signal was made (TradingView's {{timenow}}), if it says.
    timestamp: datetime | None = None


# --- helpers --------------------------------------------------------------------------------


class _Context:
    """Prefixes messages with the batch position ("배치 주문 2번째 주문: …") when in a batch."""

    def __init__(self, position: int | None):
        self.position = position

    def error(self, message: str, code: str, status: int = 400) -> WebhookError:
        return WebhookError(self.warn(message), code=code, status=status)

    def warn(self, message: str) -> str:
        if self.position is not None:
            return _("Batch order #%(position)d: %(message)s") % {
                "position": self.position,
                "message": message,
            }
        return message


def parse_decimal(value: Any, name: str, ctx: _Context) -> Decimal:
    """A JSON number or numeric string as a finite Decimal (never through float)."""
    if isinstance(value, bool) or not isinstance(value, int | float | str | Decimal):
        raise ctx.error(
            _("%(field)s must be a number, got %(value)s") % {"field": name, "value": _show(value)},
            "invalid_field",
        )
    try:
        number = (
            Decimal(value.strip())
            if isinstance(value, str)
            else Decimal(str(value))
            if isinstance(value, float)
            else Decimal(value)
        )
    except (InvalidOperation, ValueError):
        raise ctx.error(
            _("%(field)s must be a number, got %(value)s") % {"field": name, "value": _show(value)},
            "invalid_field",
        ) from None
    if not number.is_finite():
        raise ctx.error(
            _("%(field)s must be a finite number, got %(value)s") % {"field": name, "value": _show(value)},
            "invalid_field",
        )
    if number and number.adjusted() >= MAX_INTEGER_DIGITS:
        raise ctx.error(
            _("%(field)s is out of range: at most %(digits)d digits before the decimal point, got %(value)s")
            % {"field": name, "digits": MAX_INTEGER_DIGITS, "value": _show(value)},
            "invalid_field",
        )
    return number


def _show(value: Any) -> str:
    text = repr(value) if not isinstance(value, str) else f"'{value}'"
    return text if len(text) <= 40 else text[:37] + "...'"


def _positive(value: Any, name: str, ctx: _Context) -> Decimal:
    number = parse_decimal(value, name, ctx)
    if number <= 0:
        raise ctx.error(_("%(field)s must be greater than 0") % {"field": name}, "invalid_field")
    return number


def _rank(quote: str) -> int:
    """Lower = more likely to be the quote currency (KRW before BTC: KRW-BTC is BTC/KRW)."""
    return KNOWN_QUOTES.index(quote)


def suggest_crypto_symbol(symbol: str) -> str | None:
    """BTCUSDT -> BTC/USDT, KRW-BTC -> BTC/KRW, BTC-USDT / BTC_USDT -> BTC/USDT, BTC/USDT:USDT -> BTC/USDT."""
    text = re.sub(r"\s+", "", symbol).upper()
    if ":" in text:
        text = text.split(":", 1)[0]
    for sep in ("-", "_", "/"):
        if sep in text:
            left, _sep, right = text.partition(sep)
            if not left or not right or not left.isalnum() or not right.isalnum():
                return None
            # Upbit writes QUOTE-BASE (KRW-BTC); everyone else BASE-QUOTE.
            if (
                sep == "-"
                and left in KNOWN_QUOTES
                and (right not in KNOWN_QUOTES or _rank(left) < _rank(right))
            ):
                return f"{right}/{left}"
            return f"{left}/{right}"
    if not text.isalnum():
        return None
    for quote in KNOWN_QUOTES:
        if text.endswith(quote) and len(text) > len(quote):
            return f"{text[: -len(quote)]}/{quote}"
    return None


def validate_symbol(raw: Any, market_type: str, ctx: _Context) -> str:
    if not isinstance(raw, str) or not raw.strip():
        raise (
            ctx.error(_("Missing required field: %(field)s") % {"field": "symbol"}, "missing_field")
            if raw in (None, "")
            else ctx.error(_("%(field)s must be a string") % {"field": "symbol"}, "invalid_field")
        )
    if market_type in CRYPTO_MARKETS:
        symbol = raw.strip().upper()
        if CRYPTO_SYMBOL.match(symbol):
            return symbol
        suggestion = suggest_crypto_symbol(raw)
        if suggestion and CRYPTO_SYMBOL.match(suggestion):
            message = _(
                "Invalid symbol format: '%(symbol)s'. Correct format: '%(suggestion)s' (use the COIN/CURRENCY format)"
            ) % {
                "symbol": raw[:40],
                "suggestion": suggestion,
            }
        else:
            message = _(
                "Invalid symbol format: '%(symbol)s'. Use the COIN/CURRENCY format (e.g. BTC/USDT)"
            ) % {"symbol": raw[:40]}
        raise ctx.error(message, "invalid_symbol")
    symbol = raw.strip()
    if not SECURITY_SYMBOL.match(symbol):
        raise ctx.error(
            _(
                "%(market)s symbol format is invalid (e.g. %(examples)s). Only letters, digits, "
                "period (.), hyphen (-) and underscore (_) are allowed."
            )
            % {
                "market": MARKET_LABELS[MarketType(market_type)],
                "examples": SYMBOL_EXAMPLES[MarketType(market_type)],
            },
            "invalid_symbol",
        )
    return symbol.upper()


def validate_order_type(raw: Any, market_type: str, ctx: _Context) -> str:
    if raw is None or raw == "":
        raise ctx.error(_("Missing required field: %(field)s") % {"field": "order_type"}, "missing_field")
    if not isinstance(raw, str):
        raise ctx.error(_("%(field)s must be a string") % {"field": "order_type"}, "invalid_field")
    order_type = raw.strip().upper()
    order_type = ORDER_TYPE_ALIASES.get(order_type, order_type)
    if order_type not in ALL_ORDER_TYPES:
        raise ctx.error(
            _("Unknown order type '%(order_type)s'. Allowed: %(allowed)s")
            % {"order_type": raw[:40], "allowed": ", ".join(ALL_ORDER_TYPES)},
            "unsupported_order_type",
        )
    if order_type in DOMESTIC_STOCK_ORDER_TYPES and market_type != MarketType.DOMESTIC_STOCK:
        raise ctx.error(
            _("Order type %(order_type)s is not supported in the %(market)s market (Korean stocks only)")
            % {"order_type": order_type, "market": market_type},
            "unsupported_order_type",
        )
    return order_type


def validate_side(raw: Any, ctx: _Context) -> str:
    if raw is None or raw == "":
        raise ctx.error(_("Missing required field: %(field)s") % {"field": "side"}, "missing_field")
    side = SIDES.get(raw.strip().upper()) if isinstance(raw, str) else None
    if side is None:
        raise ctx.error(
            _("Invalid side %(value)s. Allowed: BUY, SELL, buy, sell, long, short") % {"value": _show(raw)},
            "invalid_field",
        )
    return side


def validate_qty(raw: Any, market_type: str, ctx: _Context) -> Decimal:
    if raw is None or raw == "":
        raise ctx.error(_("Missing required field: %(field)s") % {"field": "qty_per"}, "missing_field")
    qty = parse_decimal(raw, "qty_per", ctx)
    if qty < 0:
        # -N closes N% of the position, in every market.
        if not Decimal(-100) <= qty <= Decimal(-1):
            raise ctx.error(
                _(
                    "A negative qty_per closes that percentage of the position and must be between -100 and -1"
                ),
                "invalid_field",
            )
        return qty
    if qty == 0:
        raise ctx.error(_("qty_per must not be 0"), "invalid_field")
    if market_type in CRYPTO_MARKETS:
        if qty > 100:
            raise ctx.error(
                _("qty_per for crypto is a percentage of capital and must be at most 100"), "invalid_field"
            )
    elif market_type in WHOLE_QUANTITY_MARKETS and (qty != qty.to_integral_value() or qty < 1):
        raise ctx.error(
            _("qty_per for %(market)s is a quantity and must be a whole number of at least 1")
            % {"market": MARKET_LABELS[MarketType(market_type)]},
            "invalid_field",
        )
    return qty


def validate_params(raw: Any, ctx: _Context) -> dict[str, Any]:
    if raw is None:
        return {}
    if not isinstance(raw, dict):
        raise ctx.error(_("params must be a JSON object"), "invalid_field")
    params = dict(raw)
    for key, allowed in (("position_action", ("OPEN", "CLOSE")), ("option_type", ("CALL", "PUT"))):
        if key in params:
            value = params[key]
            if not isinstance(value, str) or value.strip().upper() not in allowed:
                raise ctx.error(
                    _("params.%(key)s must be one of %(allowed)s")
                    % {"key": key, "allowed": ", ".join(allowed)},
                    "invalid_field",
                )
            params[key] = value.strip().upper()
    if "strike_price" in params:
        params["strike_price"] = str(_positive(params["strike_price"], "params.strike_price", ctx))
    for key in ("exchange_code", "currency", "contract_month", "exchange_timezone"):
        if key in params:
            if not isinstance(params[key], str) or not params[key].strip() or len(params[key]) > 40:
                raise ctx.error(
                    _("params.%(key)s must be a non-empty string") % {"key": key}, "invalid_field"
                )
            params[key] = params[key].strip().upper() if key != "exchange_timezone" else params[key].strip()
    return params


def validate_order(
    raw: dict[str, Any], market_type: str, index: int, ctx: _Context, base_params: dict[str, Any]
) -> tuple[OrderSpec, list[str]]:
    warnings: list[str] = []
    order_type = validate_order_type(raw.get("order_type"), market_type, ctx)
    params = {**base_params, **validate_params(raw.get("params"), ctx)}
    if order_type in CANCEL_TYPES:
        return OrderSpec(index, order_type, "", None, None, None, params), warnings
    side = validate_side(raw.get("side"), ctx)
    qty = validate_qty(raw.get("qty_per"), market_type, ctx)

    price = raw.get("price")
    stop_price = raw.get("stop_price")
    if order_type in PRICE_REQUIRED and price in (None, ""):
        raise ctx.error(
            _("%(order_type)s orders require price") % {"order_type": order_type}, "price_required"
        )
    if order_type in STOP_PRICE_REQUIRED and stop_price in (None, ""):
        raise ctx.error(
            _("%(order_type)s orders require stop_price") % {"order_type": order_type}, "stop_price_required"
        )
    price_value = _positive(price, "price", ctx) if price not in (None, "") else None
    stop_value = _positive(stop_price, "stop_price", ctx) if stop_price not in (None, "") else None
    if price_value is not None and order_type in PRICE_IGNORED:
        warnings.append(
            ctx.warn(_("price is ignored for %(order_type)s orders") % {"order_type": order_type})
        )
        price_value = None
    if stop_value is not None and order_type in STOP_PRICE_IGNORED:
        warnings.append(
            ctx.warn(_("stop_price is ignored for %(order_type)s orders") % {"order_type": order_type})
        )
        stop_value = None
    return OrderSpec(index, order_type, side, qty, price_value, stop_value, params), warnings


def validate_message(payload: dict[str, Any], market_type: str, default_currency: str = "") -> WebhookMessage:
    """Validate everything the message itself decides (no database). Raises WebhookError."""
    top = _Context(None)
    warnings: list[str] = []
    is_batch = "orders" in payload
    allowed = BATCH_TOP_LEVEL_FIELDS if is_batch else TOP_LEVEL_FIELDS
    unknown = [name for name in payload if name not in allowed]
    if unknown:
        warnings.append(_("Unknown fields were ignored: %(fields)s") % {"fields": _field_names(unknown)})

    base_params = validate_params(payload.get("params"), top)
    raw_orders: list[Any]
    if is_batch:
        raw_orders = payload["orders"]
        if not isinstance(raw_orders, list) or not raw_orders:
            raise top.error(_("orders must be a non-empty list of order objects"), "invalid_field")
        if len(raw_orders) > settings.MAX_BATCH_ORDERS:
            raise top.error(
                _("A batch may hold at most %(max)d orders") % {"max": settings.MAX_BATCH_ORDERS},
                "invalid_field",
            )
    else:
        raw_orders = [payload]

    specs: list[OrderSpec] = []
    for index, raw in enumerate(raw_orders, start=1):
        ctx = _Context(index if is_batch else None)
        if not isinstance(raw, dict):
            raise ctx.error(_("each order must be a JSON object"), "invalid_field")
        if is_batch:
            if "symbol" in raw:
                raise ctx.error(
                    _(
                        "a per-order symbol is the deprecated batch format and is no longer supported; "
                        "put symbol (and currency) at the top level"
                    ),
                    "deprecated_fields",
                )
            deprecated = [name for name in DEPRECATED_FIELDS if name in raw]
            if deprecated:
                raise ctx.error(deprecated_message(deprecated), "deprecated_fields")
            inner_unknown = [name for name in raw if name not in BATCH_ORDER_FIELDS]
            if inner_unknown:
                warnings.append(
                    ctx.warn(
                        _("Unknown fields were ignored: %(fields)s") % {"fields": _field_names(inner_unknown)}
                    )
                )
        spec, order_warnings = validate_order(raw, market_type, index, ctx, base_params)
        specs.append(spec)
        warnings.extend(order_warnings)

    needs_symbol = any(spec.order_type not in CANCEL_TYPES for spec in specs)
    raw_symbol = payload.get("symbol")
    if raw_symbol in (None, "") and not needs_symbol:
        symbol = ""
    else:
        symbol = validate_symbol(raw_symbol, market_type, top)

    currency = _currency(payload.get("currency"), symbol, market_type, default_currency, base_params, top)
    specs.sort(key=lambda spec: spec.priority)  # stable: keeps the sent order within a priority
    timestamp = validate_timestamp(payload.get("timestamp"), top)
    return WebhookMessage(
        symbol=symbol, currency=currency, orders=specs, warnings=warnings, timestamp=timestamp
    )


# Epoch milliseconds between 2001-09-09 and 2286-11-20: anything else is not a signal time.
EPOCH_MS_RANGE = (10**12, 10**13)
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def validate_timestamp(raw: Any, ctx: _Context) -> datetime | None:
    """The optional ``timestamp``: ISO 8601 (``2026-12-01T00:00:00Z``; without an offset, UTC)
    or epoch milliseconds (number or numeric string). None when absent."""
    if raw is None or raw == "":
        return None
    problem = _("timestamp must be ISO 8601 (2026-12-01T09:00:00Z) or epoch milliseconds: %(value)s") % {
        "value": _show(raw)
    }
    if isinstance(raw, bool) or not isinstance(raw, str | int | Decimal):
        raise ctx.error(problem, "invalid_field")
    text = str(raw).strip()
    if re.fullmatch(r"\d{1,16}(\.\d+)?", text):
        millis = Decimal(text)
        if not EPOCH_MS_RANGE[0] <= millis < EPOCH_MS_RANGE[1]:
            raise ctx.error(problem, "invalid_field")
        return EPOCH + timedelta(milliseconds=int(millis))
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00").replace("z", "+00:00"))
    except ValueError:
        raise ctx.error(problem, "invalid_field") from None
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def _currency(
    raw: Any, symbol: str, market_type: str, default: str, params: dict[str, Any], ctx: _Context
) -> str:
    if raw not in (None, "") and not isinstance(raw, str):
        raise ctx.error(_("%(field)s must be a string") % {"field": "currency"}, "invalid_field")
    given = (raw or "").strip().upper()
    currency = _currency_of(given, symbol, market_type, default, params, ctx)
    if len(currency) > MAX_CURRENCY_LENGTH:
        raise ctx.error(
            _("%(field)s must be at most %(length)d characters")
            % {"field": "currency", "length": MAX_CURRENCY_LENGTH},
            "invalid_field",
        )
    return currency


def _currency_of(
    given: str, symbol: str, market_type: str, default: str, params: dict[str, Any], ctx: _Context
) -> str:
    if market_type in CRYPTO_MARKETS:
        quote = symbol.split("/", 1)[1] if symbol else ""
        if given and quote and given != quote:
            raise ctx.error(
                _("currency '%(currency)s' does not match the quote currency of %(symbol)s")
                % {"currency": given, "symbol": symbol},
                "invalid_field",
            )
        return quote or given or default.upper()
    return given or str(params.get("currency") or DEFAULT_SECURITY_CURRENCY[MarketType(market_type)]).upper()


def _field_names(names: list[str]) -> str:
    """Unknown field names for a warning: sorted, each cut short, at most a few (a sender's
    field names are echoed back, so a 60 KB key must not be)."""
    shown = [
        name if len(name) <= FIELD_NAME_SHOWN else name[:FIELD_NAME_SHOWN] + "…" for name in sorted(names)
    ]
    if len(shown) > UNKNOWN_FIELDS_SHOWN:
        shown = [*shown[:UNKNOWN_FIELDS_SHOWN], f"(+{len(shown) - UNKNOWN_FIELDS_SHOWN})"]
    return ", ".join(shown)


def deprecated_message(fields: list[str]) -> str:
    return _(
        "The webhook message contains fields that are no longer supported: %(fields)s. Remove them. "
        "market_type is decided by the strategy settings, exchange by the linked accounts."
    ) % {"fields": ", ".join(fields)}
