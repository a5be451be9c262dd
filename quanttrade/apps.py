from __future__ import annotations

from django.apps import AppConfig


class QuantTradeConfig(AppConfig):
    name = "quanttrade"
    verbose_name = "QuantTrade"
