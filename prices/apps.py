from __future__ import annotations

from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class PricesConfig(AppConfig):
    name = "prices"
    verbose_name = _("Prices")

    def ready(self) -> None:
        from live import topics
        from prices.services import PRICE_TOPICS

        topics.register(PRICE_TOPICS)
