from __future__ import annotations

from django.urls import path

from orders.views import WebhookResultView

urlpatterns = [
    path("webhooks/<uuid:webhook_id>", WebhookResultView.as_view(), name="webhook-result"),
    path("webhooks/<uuid:webhook_id>/", WebhookResultView.as_view()),
]
