from __future__ import annotations

from django.contrib import admin
from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularRedocView, SpectacularSwaggerView

from access.views import PasswordLoginView
from orders.views import LatencyView
from quanttrade.views import healthz

urlpatterns = [
    # The admin logs in through the same two steps as the pages (password, then TOTP).
    path("admin/login/", PasswordLoginView.as_view(), name="admin-login"),
    path("admin/", admin.site.urls),
    path("healthz", healthz, name="healthz"),
    path("api/schema/", SpectacularAPIView.as_view(permission_classes=[]), name="schema"),
    path(
        "api/docs/", SpectacularSwaggerView.as_view(url_name="schema", permission_classes=[]), name="api-docs"
    ),
    path(
        "api/redoc/", SpectacularRedocView.as_view(url_name="schema", permission_classes=[]), name="api-redoc"
    ),
    path("api/", include("webhooks.urls")),
    path("api/latency", LatencyView.as_view(), name="latency-api"),
    path("api/", include("prices.urls")),
    path("api/", include("orders.urls")),
    path("i18n/", include("django.conf.urls.i18n")),
    path("", include("quanttrade.page_urls")),
]

# Under /api/ an unknown path or a bad request (a host not in ALLOWED_HOSTS) is answered with the
# JSON envelope as every API error is; the pages keep Django's.
handler400 = "quanttrade.views.bad_request"
handler404 = "quanttrade.views.not_found"
