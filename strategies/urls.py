from __future__ import annotations

from django.urls import path

from strategies.views import WebhookView

urlpatterns = [
    path("webhook", WebhookView.as_view(), name="webhook"),
    path("webhook/", WebhookView.as_view(), name="webhook-slash"),
]
