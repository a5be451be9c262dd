"""Admin for notification destinations: the apprise URL is write-only and shown masked; a
"send test notification" button per destination (and the same as a list action)."""

from __future__ import annotations

from typing import Any

import apprise
from django import forms
from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import get_object_or_404
from django.urls import path, reverse
from django.utils.translation import gettext_lazy as _
from django.views.decorators.http import require_POST

from notify.models import EventKind, Notification, NotificationDestination, NotificationState
from notify.services import destination_test


def masked_url(url: str) -> str:
    """What the admin shows of a stored apprise URL: its scheme only ('tgram://••••••••')."""
    if not url:
        return "—"
    scheme = url.split("://", 1)[0] if "://" in url else "?"
    return f"{scheme}://••••••••"


class DestinationForm(forms.ModelForm):
    """The URL holds the destination's tokens: write-only, blank keeps the stored one."""

    url = forms.CharField(
        label=_("apprise URL"),
        required=False,
        widget=forms.PasswordInput(render_value=False, attrs={"size": 80}),
        help_text=_("e.g. tgram://bot-token/chat-id, discord://webhook-id/token, mailto://user:pass@host"),
    )
    events = forms.MultipleChoiceField(
        label=_("events"), choices=EventKind.choices, widget=forms.CheckboxSelectMultiple, required=False
    )

    class Meta:
        model = NotificationDestination
        fields = ["name", "url", "events", "language", "is_active"]

    def __init__(self, *args: Any, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self.initial["url"] = ""
        if self.instance.pk and self.instance.url:
            self.fields["url"].help_text = _("Stored: %(masked)s — leave blank to keep it.") % {
                "masked": masked_url(self.instance.url)
            }
        elif not self.instance.pk:
            self.initial["events"] = list(EventKind.values)  # a new destination wants everything

    def clean_url(self) -> str:
        url = str(self.cleaned_data.get("url") or "").strip()
        if not url:
            if self.instance.pk:
                return NotificationDestination.objects.get(pk=self.instance.pk).url
            raise forms.ValidationError(_("An apprise URL is required"))
        if apprise.Apprise.instantiate(url) is None:
            raise forms.ValidationError(_("The apprise URL is not valid"))
        return url


@admin.register(NotificationDestination)
class NotificationDestinationAdmin(admin.ModelAdmin):
    form = DestinationForm
    list_display = ["name", "stored_url", "language", "is_active", "pending", "last_ok", "last_attempt_at"]
    list_filter = ["is_active", "language"]
    search_fields = ["name"]
    actions = ["send_test"]
    readonly_fields = ["stored_url", "last_ok", "last_result", "last_attempt_at", "pending"]
    change_form_template = "admin/notify/notificationdestination/change_form.html"

    @admin.display(description=_("apprise URL"))
    def stored_url(self, obj: NotificationDestination) -> str:
        return masked_url(obj.url)

    @admin.display(description=_("pending"))
    def pending(self, obj: NotificationDestination) -> int:
        return Notification.objects.filter(destination=obj, state=NotificationState.PENDING).count()

    def get_urls(self) -> list[Any]:
        test = path(
            "<int:pk>/send-test/",
            self.admin_site.admin_view(require_POST(self.send_test_view)),
            name="notify_notificationdestination_send_test",
        )
        return [test, *super().get_urls()]

    def _report(self, request: HttpRequest, destination: NotificationDestination) -> None:
        sent, detail = destination_test(destination)
        if sent:
            self.message_user(
                request,
                _("Test notification sent to %(name)s") % {"name": destination.name},
                messages.SUCCESS,
            )
        else:
            self.message_user(
                request,
                _("Test notification to %(name)s failed: %(detail)s")
                % {"name": destination.name, "detail": detail},
                messages.ERROR,
            )

    def send_test_view(self, request: HttpRequest, pk: int) -> HttpResponse:
        if not self.has_change_permission(request):
            return HttpResponseRedirect(reverse("admin:index"))
        destination = get_object_or_404(NotificationDestination, pk=pk)
        self._report(request, destination)
        return HttpResponseRedirect(reverse("admin:notify_notificationdestination_change", args=[pk]))

    @admin.action(description=_("Send test notification"))
    def send_test(self, request: HttpRequest, queryset: QuerySet[NotificationDestination]) -> None:
        for destination in queryset:
            self._report(request, destination)


@admin.register(Notification)
class NotificationAdmin(admin.ModelAdmin):
    """The outbox, read-only: what waits for its destination, and what was given up."""

    list_display = ["created_at", "destination", "kind", "state", "attempts", "last_error"]
    list_filter = ["state", "kind", "destination"]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False
