"""`manage.py seed_demo`: demo strategies (one per market type) on paper accounts.

Idempotent: a second run creates nothing new and changes no balance; it prints the same
strategies, URLs and strategy tokens again. The admin password and the admin's API token are
printed only when they are created (neither is stored anywhere in clear); later runs say how to
make a new API token (``manage.py create_api_token admin``).
"""

from __future__ import annotations

import json
import secrets
import shlex
from decimal import Decimal
from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandParser
from django.db import transaction
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext as _

from access.models import ApiToken
from access.services import api_token_create
from feeds.simulated import simulated_daily_history
from orders.models import PaperBalance
from prices.calendar import last_closed_trading_day
from prices.models import DailyPrice
from prices.watchlist import DEMO_INSTRUMENTS
from quanttrade.management.serve_address import local_base_url, serve_host, serve_port
from quanttrade.vocabulary import MarketType
from strategies.addressing import public_base_url, sample_payload
from strategies.models import Account, Strategy, StrategyAccount

ADMIN_USERNAME = "admin"

# group_name, market type, paper account, starting balances, account settings
DEMO: list[tuple[str, str, str, dict[str, str], dict[str, Any]]] = [
    (
        "demo_spot",
        MarketType.SPOT,
        "paper_spot",
        {"USDT": "100000", "KRW": "100000000", "BTC": "1", "ETH": "10", "SOL": "100"},
        {},
    ),
    ("demo_futures", MarketType.FUTURES, "paper_futures", {"USDT": "100000"}, {"leverage": 3}),
    ("demo_kr_stock", MarketType.DOMESTIC_STOCK, "paper_kr_stock", {"KRW": "100000000"}, {}),
    ("demo_us_stock", MarketType.OVERSEAS_STOCK, "paper_us_stock", {"USD": "100000"}, {}),
    ("demo_kr_fo", MarketType.DOMESTIC_FUTUREOPTION, "paper_kr_fo", {"KRW": "100000000"}, {}),
    ("demo_global_fo", MarketType.OVERSEAS_FUTUREOPTION, "paper_global_fo", {"USD": "100000"}, {}),
]


def curl_command(url: str, payload: dict[str, Any]) -> str:
    body = json.dumps(payload, ensure_ascii=False)
    return f"curl -sS -X POST {shlex.quote(url)} -H 'Content-Type: application/json' -d {shlex.quote(body)}"


class Command(BaseCommand):
    help = "Create demo strategies on paper accounts (idempotent) and print how to send them webhooks."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--json", action="store_true", help="Print one JSON object instead of text.")
        parser.add_argument(
            "--no-daily",
            action="store_true",
            help="Do not create made-up daily bars for the demo instruments.",
        )
        parser.add_argument(
            "--base-url",
            default="",
            help=(
                "Base URL in the printed URLs (default: PUBLIC_BASE_URL, else the address "
                "`manage.py serve` listens on: HOST and PORT, default http://127.0.0.1:8000)."
            ),
        )

    def handle(self, *args: Any, **options: Any) -> None:
        with transaction.atomic():
            password = self._admin()
            api_token = self._api_token()
            strategies = [self._strategy(*demo) for demo in DEMO]
            if not options["no_daily"]:
                self._daily_history()
        # What `serve` will answer on: PUBLIC_BASE_URL when set (behind a proxy), else HOST/PORT.
        base_url = public_base_url(
            options["base_url"] or settings.PUBLIC_BASE_URL or local_base_url(serve_host(), serve_port())
        )
        url = base_url + reverse("webhook")
        result = {
            "admin": {"username": ADMIN_USERNAME, "password": password},
            "api_token": api_token,
            "api_token_hint": None
            if api_token
            else _("An API token exists for %(username)s; make a new one with: %(command)s")
            % {"username": ADMIN_USERNAME, "command": f"manage.py create_api_token {ADMIN_USERNAME}"},
            "base_url": base_url,
            "strategies": [
                {
                    "group_name": s.group_name,
                    "market_type": s.market_type,
                    "token": s.token,
                    "webhook_url": url,
                    "sample_payload": sample_payload(s, token=s.token),
                    "curl": curl_command(url, sample_payload(s, token=s.token)),
                }
                for s in strategies
            ],
        }
        if options["json"]:
            self.stdout.write(json.dumps(result, ensure_ascii=False))
            return
        self._print(result)

    def _daily_history(self, days: int = 120) -> None:
        """Made-up daily bars for the demo instruments that have none, so the chart pages have
        a history (the simulated feed then starts from their last close)."""
        end = last_closed_trading_day(timezone.now())
        have = set(DailyPrice.objects.filter(ticker__in=DEMO_INSTRUMENTS).values_list("ticker", flat=True))
        DailyPrice.objects.bulk_create(
            DailyPrice(
                ticker=instrument,
                date=bar.date,
                open=bar.open,
                high=bar.high,
                low=bar.low,
                close=bar.close,
                volume=bar.volume,
            )
            for instrument in DEMO_INSTRUMENTS
            if instrument not in have
            for bar in simulated_daily_history(instrument, days, end=end)
        )

    def _admin(self) -> str | None:
        """Create the admin user if missing; returns its new password, or None if it existed."""
        user_model = get_user_model()
        if user_model.objects.filter(username=ADMIN_USERNAME).exists():
            return None
        password = secrets.token_urlsafe(12)
        user_model.objects.create_superuser(ADMIN_USERNAME, "admin@localhost", password)
        return password

    def _api_token(self) -> str | None:
        """A new API token's key if the admin has none yet, else None (keys are stored hashed)."""
        admin = get_user_model().objects.get(username=ADMIN_USERNAME)
        if ApiToken.objects.filter(user=admin).exists():
            return None
        return api_token_create(admin, name="seed_demo")[1]

    def _strategy(
        self, group_name: str, market_type: str, account_name: str, balances: dict[str, str], venue: dict
    ) -> Strategy:
        account, created = Account.objects.get_or_create(
            name=account_name, defaults={"exchange": "PAPER", "settings": venue}
        )
        if created:
            for asset, amount in balances.items():
                PaperBalance.objects.create(account=account, asset=asset, free=Decimal(amount))
        strategy, _created = Strategy.objects.get_or_create(
            group_name=group_name,
            defaults={"market_type": market_type, "description": _("Demo strategy on a paper account")},
        )
        StrategyAccount.objects.get_or_create(strategy=strategy, account=account)
        return strategy

    def _print(self, result: dict[str, Any]) -> None:
        out = self.stdout
        admin = result["admin"]
        if admin["password"]:
            out.write(
                _("Admin user created: %(username)s / %(password)s (shown once: write it down)")
                % {"username": admin["username"], "password": admin["password"]}
            )
        else:
            out.write(_("Admin user %(username)s already exists (password unchanged)") % admin)
        if result["api_token"]:
            out.write(
                _("API token (Authorization: Token …, shown once: copy it now): %(token)s")
                % {"token": result["api_token"]}
            )
        else:
            out.write(result["api_token_hint"])
        out.write(_("Dashboard: %(url)s/") % {"url": result["base_url"]})
        out.write(_("Admin: %(url)s/admin/") % {"url": result["base_url"]})
        for strategy in result["strategies"]:
            out.write("")
            out.write(f"[{strategy['group_name']}] {strategy['market_type']}")
            out.write(_("  webhook URL: %(url)s") % {"url": strategy["webhook_url"]})
            out.write(_("  token: %(token)s") % {"token": strategy["token"]})
            out.write("  " + strategy["curl"])
