"""`manage.py otp_reset USERNAME`: remove a user's two-factor devices (a lost phone)."""

from __future__ import annotations

from typing import Any

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.utils.translation import gettext as _
from django_otp import devices_for_user


class Command(BaseCommand):
    help = "Delete every OTP device of a user; the next login asks a superuser to enrol again."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("username")

    def handle(self, *args: Any, **options: Any) -> None:
        user = get_user_model().objects.filter(username=options["username"]).first()
        if user is None:
            raise CommandError(_("No user named %(username)s") % {"username": options["username"]})
        devices = list(devices_for_user(user, confirmed=None))
        for device in devices:
            device.delete()
        self.stdout.write(
            _("Removed %(count)d two-factor device(s) of %(username)s")
            % {"count": len(devices), "username": user.get_username()}
        )
