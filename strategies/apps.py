from __future__ import annotations

from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class StrategiesConfig(AppConfig):
    name = "strategies"
    verbose_name = _("Strategies and accounts")

    def ready(self) -> None:
        from strategies.generation import connect  # noqa: PLC0415 - needs the app registry

        connect()
