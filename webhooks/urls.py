from __future__ import annotations

from django.urls import path

from webhooks.views import (
    AccountFlattenView,
    AccountPauseView,
    StrategyFlattenView,
    StrategyPauseView,
    WebhookResultView,
    WebhookView,
)

urlpatterns = [
    path("webhook", WebhookView.as_view(), name="webhook"),
    path("webhook/", WebhookView.as_view(), name="webhook-slash"),
    path("webhooks/<uuid:webhook_id>", WebhookResultView.as_view(), name="webhook-result"),
    path("webhooks/<uuid:webhook_id>/", WebhookResultView.as_view()),
    path("accounts/<int:pk>/flatten", AccountFlattenView.as_view(), name="account-flatten"),
    path("accounts/<int:pk>/pause", AccountPauseView.as_view(), name="account-pause"),
    path("strategies/<int:pk>/flatten", StrategyFlattenView.as_view(), name="strategy-flatten"),
    path("strategies/<int:pk>/pause", StrategyPauseView.as_view(), name="strategy-pause"),
]
