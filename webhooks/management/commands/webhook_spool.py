"""``manage.py webhook_spool``: how many webhooks wait in the spool (accepted while the
database was down); ``--replay`` feeds them through the intake now (the web processes do it on
their own every WEBHOOK_SPOOL_REPLAY_SECONDS)."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandParser

from webhooks.services import webhooks_spool_replay
from webhooks.spool import spool_dir, spool_files


class Command(BaseCommand):
    help = "Show (and with --replay, ingest) the webhooks spooled while the database was down."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--replay", action="store_true", help="ingest the spooled webhooks now")

    def handle(self, *args: Any, **options: Any) -> None:
        if options["replay"]:
            counts = webhooks_spool_replay()
            self.stdout.write(
                f"ingested {counts['ingested']}, already ingested {counts['already']}, "
                f"waiting for the database {counts['waiting']}, held by another process {counts['held']}, "
                f"failed (kept as .failed) {counts['failed']}"
            )
        waiting = spool_files()
        self.stdout.write(f"{len(waiting)} webhook(s) waiting in {spool_dir()}")
        for path in waiting:
            self.stdout.write(f"  {path.name}")
