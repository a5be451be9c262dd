from __future__ import annotations

from django.apps import AppConfig


class QuantTradeConfig(AppConfig):
    name = "quanttrade"
    verbose_name = "QuantTrade"

    def ready(self) -> None:
        from quanttrade.i18n import compile_catalogs

        compile_catalogs()
