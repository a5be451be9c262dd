"""DRF authentication with hashed API tokens: ``Authorization: Token <key>``, as before."""

from __future__ import annotations

from typing import Any

from django.utils.translation import gettext_lazy as _
from rest_framework import exceptions
from rest_framework.authentication import TokenAuthentication

from access.models import ApiToken
from access.services import api_token_check


class ApiTokenAuthentication(TokenAuthentication):
    """DRF's header parsing and 401 answers, with the key checked against its stored digest."""

    def authenticate_credentials(self, key: str) -> tuple[Any, ApiToken]:
        token = api_token_check(key)
        if token is None:
            raise exceptions.AuthenticationFailed(_("Invalid token."))
        if not token.user.is_active:
            raise exceptions.AuthenticationFailed(_("User inactive or deleted."))
        return token.user, token
