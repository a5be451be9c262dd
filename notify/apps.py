from __future__ import annotations

from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class NotifyConfig(AppConfig):
    name = "notify"
    verbose_name = _("Notifications")

    def ready(self) -> None:
        from django.db.models.signals import post_delete, post_save  # noqa: PLC0415

        from notify.services import destinations_changed  # noqa: PLC0415 - needs the app registry

        for signal in (post_save, post_delete):
            signal.connect(
                destinations_changed,
                sender="notify.NotificationDestination",
                weak=False,
                dispatch_uid=f"qt-notify-destinations-{signal is post_save}",
            )
