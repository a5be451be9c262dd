"""manage.py flatten --account NAME | --strategy GROUP_NAME [--pause] [--yes]: the kill switch
from a shell (issue #14). Cancels every open order and closes every position through the normal
execution path (the workers place the orders); prints one line per action."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from strategies.models import Account, Strategy
from webhooks.kill_switch import KillSwitchResult, account_flatten, kill_switch_pause, strategy_flatten


class Command(BaseCommand):
    help = "Cancel every open order and close every position of an account or a strategy's accounts."

    def add_arguments(self, parser: CommandParser) -> None:
        target = parser.add_mutually_exclusive_group(required=True)
        target.add_argument("--account", help="account name or id")
        target.add_argument("--strategy", help="strategy group_name or id")
        parser.add_argument("--pause", action="store_true", help="also pause it (new signals refused)")
        parser.add_argument("--yes", action="store_true", help="do not ask for confirmation")

    def handle(self, *args: Any, **options: Any) -> None:
        target: Account | Strategy
        if options["account"]:
            target = self._find(Account, "name", options["account"])
        else:
            target = self._find(Strategy, "group_name", options["strategy"])
        if not options["yes"]:
            answer = input(f"Flatten {target}: cancel every open order and close every position? [y/N] ")
            if answer.strip().lower() not in ("y", "yes"):
                raise CommandError("Not confirmed: nothing done.")
        if options["pause"]:
            kill_switch_pause(
                target, reason="manage.py flatten", cancel_open=False, source="manage.py flatten"
            )
        result: KillSwitchResult = (
            account_flatten(target, source="manage.py flatten")
            if isinstance(target, Account)
            else strategy_flatten(target, source="manage.py flatten")
        )
        self.stdout.write(f"webhook_id {result.body['webhook_id']}")
        for row in result.body["orders"]:
            what = "cancel all" if row["order_type"] == "CANCEL_ALL_ORDER" else f"close {row['symbol']}"
            self.stdout.write(f"  {row['account']}: {what} -> {row['status']} (order {row['order_id']})")
        for warning in result.body["warnings"]:
            self.stderr.write(f"  {warning}")
        if not result.body["orders"]:
            self.stdout.write("  nothing to cancel or close")

    def _find(self, model: Any, field: str, key: str) -> Any:
        found = model.objects.filter(**{field: key}).first()
        if found is None and key.isdigit():
            found = model.objects.filter(pk=int(key)).first()
        if found is None:
            raise CommandError(f"No {model.__name__.lower()} {key!r}")
        return found
