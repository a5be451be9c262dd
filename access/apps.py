from __future__ import annotations

from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class AccessConfig(AppConfig):
    """Who gets in: operator logins (password, TOTP, lockout) and API tokens for bots."""

    name = "access"
    verbose_name = _("Access")
