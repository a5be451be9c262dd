"""Log filter that keeps secrets out of every log line."""

from __future__ import annotations

import logging
import re

# "token": "abc", 'token': 'abc', token=abc, api_secret=..., Authorization: Bearer ...
_SECRET_PATTERN = re.compile(
    r"""(?P<key>["']?(?:token|api_key|api_secret|secret|passphrase|password|appsecret|appkey|access_token|authorization)["']?\s*[:=]\s*)"""
    r"""(?P<quote>["']?)(?P<value>(?:Bearer\s+)?[^"',\s}]+)""",
    re.IGNORECASE,
)


def redact(text: str) -> str:
    """Return ``text`` with the value of every secret-looking key replaced by ``***``."""
    return _SECRET_PATTERN.sub(lambda m: f"{m['key']}{m['quote']}***", text)


class RedactSecretsFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        redacted = redact(message)
        if redacted != message:
            record.msg, record.args = redacted, None
        return True
