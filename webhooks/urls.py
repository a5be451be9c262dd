from __future__ import annotations

from django.urls import path

from webhooks.views import WebhookResultView, WebhookView

urlpatterns = [
    path("webhook", WebhookView.as_view(), name="webhook"),
    path("webhook/", WebhookView.as_view(), name="webhook-slash"),
    path("webhooks/<uuid:webhook_id>", WebhookResultView.as_view(), name="webhook-result"),
    path("webhooks/<uuid:webhook_id>/", WebhookResultView.as_view()),
]
