from __future__ import annotations

from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class PricesConfig(AppConfig):
    name = "prices"
    verbose_name = _("Prices")

    def ready(self) -> None:
        # Imported once the app registry is ready: prices.services imports models.
        from live import topics  # noqa: PLC0415
        from prices.services import PRICE_TOPICS  # noqa: PLC0415

        topics.register(PRICE_TOPICS)
