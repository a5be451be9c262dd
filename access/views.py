"""Operator login in two steps: password, then (for those who need it) a TOTP code or its
enrolment. Serves the page login (/accounts/login/) and the admin login (/admin/login/).

Until the second step succeeds nobody is logged in: the session only remembers, for a few
minutes, whose password was right and where to go next.
"""

from __future__ import annotations

from base64 import b32encode
from datetime import datetime, timedelta
from typing import Any

import segno
from axes.handlers.proxy import AxesProxyHandler
from axes.helpers import get_failure_limit, get_lockout_response
from django.conf import settings
from django.contrib import messages
from django.contrib.auth import get_user_model
from django.contrib.auth import login as auth_login
from django.contrib.auth.signals import user_login_failed
from django.contrib.auth.views import LoginView, redirect_to_login
from django.forms import Form
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import redirect, render
from django.utils import timezone
from django.utils.safestring import mark_safe
from django.utils.translation import gettext as _
from django_otp import login as otp_login
from django_otp.plugins.otp_totp.models import TOTPDevice

from access.forms import TotpCodeForm
from access.policy import confirmed_devices, otp_enrolment_required

PENDING_KEY = "access_pending_login"
PENDING_FOR = timedelta(minutes=5)
VERIFY, ENROL = "verify", "enrol"


class PasswordLoginView(LoginView):
    """Django's LoginView (django-axes counts its failures); a user who owes a TOTP code is
    sent to the code step, a superuser who must have a device to the enrolment step."""

    template_name = "registration/login.html"
    redirect_authenticated_user = False

    def form_valid(self, form: Any) -> HttpResponse:
        user = form.get_user()
        step = VERIFY if confirmed_devices(user) else ENROL if otp_enrolment_required(user) else None
        if step is None:
            return super().form_valid(form)
        self.request.session.cycle_key()  # a session id known before the password is worth nothing
        self.request.session[PENDING_KEY] = {
            "user": user.pk,
            "backend": user.backend,
            "step": step,
            "next": self.get_success_url(),
            "until": (timezone.now() + PENDING_FOR).isoformat(),
        }
        return redirect("login-otp" if step == VERIFY else "otp-enrol")


def _pending(request: HttpRequest, step: str) -> tuple[Any, dict[str, Any]] | None:
    """The user whose password was just right and who is at ``step``, or None."""
    pending = request.session.get(PENDING_KEY)
    if not pending or pending.get("step") != step:
        return None
    if datetime.fromisoformat(pending["until"]) < timezone.now():
        del request.session[PENDING_KEY]
        return None
    user = get_user_model().objects.filter(pk=pending["user"], is_active=True).first()
    return (user, pending) if user is not None else None


def _finish(request: HttpRequest, user: Any, pending: dict[str, Any], device: TOTPDevice) -> HttpResponse:
    del request.session[PENDING_KEY]
    auth_login(request, user, backend=pending["backend"])
    otp_login(request, device)
    return HttpResponseRedirect(pending["next"])


def login_otp(request: HttpRequest) -> HttpResponse:
    """Step two: the code from one of the user's confirmed devices. A wrong code counts as a
    failed login for django-axes, like a wrong password."""
    found = _pending(request, VERIFY)
    if found is None:
        return redirect("login")
    user, pending = found
    credentials = {"username": user.get_username()}
    if not AxesProxyHandler.is_allowed(request, credentials):
        return get_lockout_response(request, None, credentials)
    form = TotpCodeForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        code = form.cleaned_data["code"].strip()
        for device in confirmed_devices(user):
            if device.verify_token(code):
                return _finish(request, user, pending, device)
        user_login_failed.send(sender=__name__, credentials=credentials, request=request)
        form.add_error("code", _("The code is not right (or was already used). Try the next one."))
    return render(request, "registration/login_otp.html", {"form": form})


def _enrolment_device(user: Any) -> TOTPDevice:
    """The user's device being enrolled: the unconfirmed one, or a new one."""
    device = TOTPDevice.objects.filter(user=user, confirmed=False).order_by("-pk").first()
    return device or TOTPDevice.objects.create(user=user, name=_("Authenticator app"), confirmed=False)


def otp_enrol(request: HttpRequest) -> HttpResponse:
    """Add a TOTP device: for a logged-in staff user, or for a superuser in the middle of a
    login who must have one. Shows the otpauth:// URI (QR code and text); a first right code
    confirms it."""
    found = _pending(request, ENROL)
    user: Any = found[0] if found else request.user
    if found is None and not (user.is_authenticated and user.is_staff):
        return redirect_to_login(request.get_full_path())
    device = _enrolment_device(user)
    form: Form = TotpCodeForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        if device.verify_token(form.cleaned_data["code"].strip()):
            device.confirmed = True
            device.save(update_fields=["confirmed"])
            if found is not None:
                return _finish(request, user, found[1], device)
            otp_login(request, device)
            messages.success(request, _("Two-factor login is on: the next login asks for a code."))
            return redirect("dashboard")
        form.add_error("code", _("The code is not right. Check the time on your phone and try again."))
    url = device.config_url
    return render(
        request,
        "registration/otp_enrol.html",
        {
            "form": form,
            "otpauth_url": url,
            "secret": b32encode(device.bin_key).decode(),
            "qr_svg": mark_safe(segno.make(url, error="m").svg_inline(scale=4)),  # noqa: S308 - segno's own SVG markup
            "during_login": found is not None,
        },
    )


def lockout_response(
    request: HttpRequest, original_response: HttpResponse | None, credentials: dict[str, Any] | None
) -> HttpResponse:
    """django-axes' answer to a locked-out username + address: 429 and a page saying how long."""
    return render(
        request,
        "registration/locked_out.html",
        {
            "failure_limit": get_failure_limit(request, credentials),
            "minutes": int(settings.AXES_COOLOFF_TIME.total_seconds() // 60),
        },
        status=429,
    )
