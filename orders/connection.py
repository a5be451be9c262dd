"""The connection test: authenticate and read the balance through the account's real adapter.

``account_check`` says plainly what failed (a refused key, an IP not on the key's whitelist, a
missing futures permission, a refused KIS token …), with the venue's own words after it, and
stores the result and its time on the account (``connection_ok``, ``connection_message``,
``connection_checked_at``), which the account lists show.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime

import ccxt
from django.utils import timezone
from django.utils.translation import gettext as _

from notify.events import emit
from notify.models import EventKind
from orders.exchanges import adapter_for
from orders.exchanges.base import ExchangeAdapter, VenueError
from orders.exchanges.brokerkit.token_cache import TokenUnavailableError
from orders.exchanges.ccxt.base import venue_code
from strategies.models import Account, StrategyAccount

log = logging.getLogger("quanttrade.orders")

# (exchange, venue error code) -> what failed, where the venue's code says more than ccxt's
# class for it. The venues' own docs name them; the simulators answer them.
KEY_REFUSED = "key_refused"  # Binance -2015: "Invalid API-key, IP, or permissions for action."
KEY_WRONG = "key_wrong"
SECRET_WRONG = "secret_wrong"
PASSPHRASE_WRONG = "passphrase_wrong"
IP_REFUSED = "ip_refused"
VENUE_CODES: dict[tuple[str, str], str] = {
    ("BINANCE", "-2015"): KEY_REFUSED,
    ("BINANCE", "-2014"): KEY_WRONG,  # API-key format invalid
    ("BINANCE", "-1022"): SECRET_WRONG,  # Signature for this request is not valid
    ("BYBIT", "10003"): KEY_WRONG,  # API key is invalid
    ("BYBIT", "10004"): SECRET_WRONG,  # error sign
    ("BYBIT", "10010"): IP_REFUSED,  # Unmatched IP
    ("OKX", "50111"): KEY_WRONG,  # Invalid OK-ACCESS-KEY
    ("OKX", "50113"): SECRET_WRONG,  # Invalid Sign
    ("OKX", "50105"): PASSPHRASE_WRONG,  # OK-ACCESS-PASSPHRASE incorrect
    ("OKX", "50110"): IP_REFUSED,  # IP not in the key's trusted addresses
    ("BITGET", "40006"): KEY_WRONG,  # Invalid ACCESS_KEY
    ("BITGET", "40009"): SECRET_WRONG,  # sign signature error
    ("BITGET", "40012"): PASSPHRASE_WRONG,  # apikey/password is incorrect
    ("BITGET", "40018"): IP_REFUSED,  # Invalid IP
}


@dataclass(frozen=True)
class CheckResult:
    ok: bool
    message: str
    checked_at: datetime


def linked_market_types(account: Account) -> list[str]:
    """The markets the account's active strategy links trade (what its orders will need)."""
    links = StrategyAccount.objects.filter(account=account, is_active=True, strategy__is_active=True)
    return sorted(set(links.values_list("strategy__market_type", flat=True)))


def explain(exchange: str, error: VenueError) -> str:
    """What failed, in plain words, then the venue's own message."""
    cause = error.__cause__
    code = venue_code(cause) if isinstance(cause, Exception) else None
    kind = VENUE_CODES.get((exchange.upper(), code or ""))
    plain: str | None = None
    if kind == KEY_REFUSED:
        plain = _(
            "The API key was refused: it is wrong, this server's IP address is not on the key's "
            "whitelist, or the key lacks the permission (e.g. futures)"
        )
    elif kind == KEY_WRONG:
        plain = _("The API key is wrong or malformed: paste it again")
    elif kind == SECRET_WRONG:
        plain = _("The API secret is wrong: the venue refused the request's signature")
    elif kind == PASSPHRASE_WRONG:
        plain = _("The passphrase is wrong (or does not belong to this API key)")
    elif kind == IP_REFUSED:
        plain = _("This server's IP address is not on the API key's whitelist")
    elif isinstance(cause, ccxt.AccountSuspended):
        plain = _("The venue has suspended this account")
    elif isinstance(cause, ccxt.AccountNotEnabled | ccxt.PermissionDenied):
        plain = _("The API key lacks a permission this needs (reading, trading or futures)")
    elif isinstance(cause, ccxt.AuthenticationError):
        plain = _("Authentication failed: check the API key, secret and passphrase")
    elif isinstance(cause, ccxt.ExchangeNotAvailable):
        plain = _("The venue is unavailable (maintenance or an outage): try again later")
    elif isinstance(cause, ccxt.NetworkError):
        plain = _("The venue could not be reached (network or timeout)")
    return f"{plain}. {error.message}" if plain else error.message


def _check(account: Account) -> tuple[bool, str]:
    adapter: ExchangeAdapter | None = None
    try:
        adapter = adapter_for(account)
        summary = adapter.check_connection(linked_market_types(account))
    except VenueError as e:
        return False, explain(account.exchange, e)
    except TokenUnavailableError:
        return False, _(
            "A token was issued for this app key less than a minute ago and the broker issues one a "
            "minute: test again in a minute"
        )
    except Exception as e:  # whatever broke is reported on the account, not raised
        log.exception("connection test of account %s failed unexpectedly", account.pk)
        return False, _("Unexpected error: %(error)s") % {"error": e.__class__.__name__}
    finally:
        if adapter is not None:
            adapter.close()
    return True, _("Connected; balance read: %(summary)s") % {"summary": summary}


def account_check(account: Account) -> CheckResult:
    """Test ``account``'s connection and store the result on it (nothing else is written)."""
    ok, message = _check(account)
    result = CheckResult(ok=ok, message=message, checked_at=timezone.now())
    Account.objects.filter(pk=account.pk).update(
        connection_ok=result.ok, connection_message=result.message, connection_checked_at=result.checked_at
    )
    account.connection_ok = result.ok
    account.connection_message = result.message
    account.connection_checked_at = result.checked_at
    if ok:
        log.info("connection test of account %s passed", account.pk)
    else:
        log.warning("connection test of account %s failed: %s", account.pk, message)
        emit(EventKind.CONNECTION_FAILED, account=account.name, feed=account.exchange, message=message)
    return result
