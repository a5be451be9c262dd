from __future__ import annotations

from django.urls import URLPattern, path

from orders import api

urlpatterns: list[URLPattern] = [
    path("accounts/", api.AccountListView.as_view(), name="api-accounts"),
    path(
        "accounts/<int:account_id>/portfolio",
        api.AccountPortfolioView.as_view(),
        name="api-account-portfolio",
    ),
    path("accounts/<int:account_id>/fills", api.AccountFillsView.as_view(), name="api-account-fills"),
    path("fills", api.InstrumentFillsView.as_view(), name="api-instrument-fills"),
]
