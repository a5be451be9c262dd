"""Origin check for WebSocket handshakes: ALLOWED_HOSTS plus WS_ALLOWED_ORIGINS."""

from __future__ import annotations

from typing import Any

from channels.security.websocket import OriginValidator as _ChannelsOriginValidator
from django.conf import settings


def OriginValidator(application: Any) -> _ChannelsOriginValidator:  # noqa: N802 - reads like a class
    allowed = list(settings.ALLOWED_HOSTS) + list(settings.WS_ALLOWED_ORIGINS)
    return _ChannelsOriginValidator(application, allowed)
