"""What every uvicorn the product runs is given (the gunicorn worker class,
``manage.py serve --server uvicorn``).

- ``proxy_headers`` off: uvicorn would believe X-Forwarded-For from FORWARDED_ALLOW_IPS and hand
  the claimed address to the application as the peer; only TRUSTED_PROXIES decide whom to
  believe (strategies/net.py).
- ``ws_per_message_deflate`` off: /ws frames are small JSON (a price tick ~200 bytes) sent to
  every subscriber; compressing each one for each connection took about a quarter of a web
  process's time at 10,000 deliveries a second (docs/benchmarks-ws.md), to save a few dozen
  bytes a frame.
- ``ws_max_size`` 64 KiB: a /ws message the application takes is at most 4 KiB
  (live.consumers.MAX_MESSAGE_BYTES); uvicorn read messages up to 16 MiB into memory first.
"""

from __future__ import annotations

from typing import Any

UVICORN_OPTIONS: dict[str, Any] = {
    "proxy_headers": False,
    "ws_per_message_deflate": False,
    "ws_max_size": 64 * 1024,
}
