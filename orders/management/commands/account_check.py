"""``manage.py account_check NAME …``: the connection test of the account page, from a shell.

Authenticates and reads the balance through each named account's real adapter, prints what
happened and stores it on the account. Exits non-zero when any account failed.
"""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from orders.connection import account_check
from strategies.models import Account


class Command(BaseCommand):
    help = "Test accounts' connections: authenticate and read the balance through the real adapter."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("names", nargs="*", metavar="NAME", help="account names")
        parser.add_argument("--all", action="store_true", help="every active account")

    def handle(self, *args: Any, **options: Any) -> None:
        names: list[str] = options["names"]
        if options["all"]:
            accounts = list(Account.objects.filter(is_active=True))
        elif names:
            found = {account.name: account for account in Account.objects.filter(name__in=names)}
            unknown = [name for name in names if name not in found]
            if unknown:
                raise CommandError(f"unknown account: {', '.join(unknown)}")
            accounts = [found[name] for name in names]
        else:
            raise CommandError("name at least one account (or --all)")
        failed = []
        for account in accounts:
            result = account_check(account)
            if result.ok:
                self.stdout.write(self.style.SUCCESS(f"OK      {account}: {result.message}"))
            else:
                failed.append(account.name)
                self.stdout.write(self.style.ERROR(f"FAILED  {account}: {result.message}"))
        if failed:
            raise CommandError(f"connection test failed: {', '.join(failed)}")
