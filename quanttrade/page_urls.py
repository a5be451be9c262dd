"""The web pages (login-protected, beside the admin). Views live in each app's ``pages.py``."""

from __future__ import annotations

from django.urls import URLPattern, URLResolver, include, path

from access import views as access_views
from orders import account_pages
from orders import pages as order_pages
from prices import pages as price_pages
from strategies import pages as strategy_pages
from webhooks import pages as webhook_pages

urlpatterns: list[URLPattern | URLResolver] = [
    path("accounts/login/", access_views.PasswordLoginView.as_view(), name="login"),
    path("accounts/login/otp/", access_views.login_otp, name="login-otp"),
    path("accounts/otp/enrol/", access_views.otp_enrol, name="otp-enrol"),
    # The account pages come before auth's own "accounts/" URLs (login, logout, password).
    path("accounts/", account_pages.account_list, name="account-list"),
    path("accounts/<int:pk>/", account_pages.account_detail, name="account-detail"),
    path("accounts/<int:pk>/cancel-all/", order_pages.account_cancel_all_view, name="account-cancel-all"),
    path("accounts/", include("django.contrib.auth.urls")),
    path("accounts/<int:pk>/check/", order_pages.account_connection_check, name="account-check"),
    path("", price_pages.dashboard, name="dashboard"),
    # Instrument ids may contain "/" and ":" (BINANCE:BTC/USDT), hence <path:>.
    path("instruments/<path:instrument>/", price_pages.instrument_detail, name="instrument"),
    path("strategies/", strategy_pages.strategy_list, name="strategy-list"),
    path("strategies/<int:pk>/", strategy_pages.strategy_detail, name="strategy-detail"),
    path("strategies/<int:pk>/token/", strategy_pages.strategy_token, name="strategy-token"),
    path("strategies/<int:pk>/accounts/", strategy_pages.strategy_link_account, name="strategy-link-account"),
    path("strategies/<int:pk>/test-signal/", webhook_pages.strategy_test_signal, name="strategy-test-signal"),
    path(
        "strategies/<int:pk>/limits/",
        strategy_pages.limits_edit,
        {"kind": "strategy"},
        name="strategy-limits",
    ),
    path("accounts/<int:pk>/limits/", strategy_pages.limits_edit, {"kind": "account"}, name="account-limits"),
    path(
        "strategies/<int:pk>/kill-switch/",
        webhook_pages.kill_switch_action,
        {"kind": "strategy"},
        name="strategy-kill-switch",
    ),
    path(
        "accounts/<int:pk>/kill-switch/",
        webhook_pages.kill_switch_action,
        {"kind": "account"},
        name="account-kill-switch",
    ),
    path("orders/", order_pages.order_list, name="order-list"),
    path("orders/count/", order_pages.order_count, name="order-count"),
    path("orders/<uuid:pk>/", order_pages.order_detail, name="order-detail"),
    path("orders/<uuid:pk>/row/", order_pages.order_row, name="order-row"),
    path("orders/<uuid:pk>/cancel/", order_pages.order_cancel_view, name="order-cancel"),
    path("approvals/", order_pages.approval_list, name="approval-list"),
    path("approvals/<uuid:webhook_id>/<int:account_id>/", order_pages.approval_card, name="approval-card"),
    path(
        "approvals/<uuid:webhook_id>/<int:account_id>/<str:decision>/",
        order_pages.approval_decide_view,
        name="approval-decide",
    ),
    path("latency/", order_pages.latency_page, name="latency"),
    path("webhooks/", webhook_pages.webhook_list, name="webhook-list"),
    path("webhooks/<uuid:pk>/", webhook_pages.webhook_detail, name="webhook-detail"),
    path("webhooks/<uuid:pk>/replay/", webhook_pages.webhook_replay_view, name="webhook-replay"),
]
