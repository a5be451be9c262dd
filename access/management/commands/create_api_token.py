"""`manage.py create_api_token USERNAME`: a new API token, its key printed once."""

from __future__ import annotations

from typing import Any

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.utils.translation import gettext as _

from access.services import api_token_create


class Command(BaseCommand):
    help = "Create an API token for a user and print its key (stored hashed: shown only now)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("username")
        parser.add_argument("--name", default="", help="What the token is for, e.g. the bot's name.")

    def handle(self, *args: Any, **options: Any) -> None:
        user = get_user_model().objects.filter(username=options["username"]).first()
        if user is None:
            raise CommandError(_("No user named %(username)s") % {"username": options["username"]})
        _token, key = api_token_create(user, options["name"])
        self.stderr.write(_("API token for %(username)s (shown once: copy it now):") % options)
        self.stdout.write(key)
