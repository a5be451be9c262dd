from __future__ import annotations

from django.urls import URLPattern, path

from prices import views

urlpatterns: list[URLPattern] = [
    path("kr/realtime-prices", views.KrRealtimePricesView.as_view(), name="kr-realtime-prices"),
    path(
        "kr/stocks/<str:ticker>/realtime-price", views.KrRealtimePriceView.as_view(), name="kr-realtime-price"
    ),
    path("kr/stocks/<str:ticker>/daily", views.DailyBarsView.as_view(), name="kr-daily"),
    path("prices", views.PricesView.as_view(), name="prices"),
    path("prices/status", views.PriceStatusView.as_view(), name="prices-status"),
    path("prices/gaps", views.PriceGapsView.as_view(), name="prices-gaps"),
    path("prices/<path:ticker>/daily", views.InstrumentDailyBarsView.as_view(), name="price-daily"),
    path("prices/<path:instrument>", views.PriceView.as_view(), name="price"),
]
