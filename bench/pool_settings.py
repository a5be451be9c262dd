"""Bench-only settings: the product's settings with psycopg's connection pool (Django 5.1+).

Under ASGI every request runs its sync code in its own thread, and Django's connections are
per thread: persistent connections (DB_CONN_MAX_AGE > 0) pile up under load until PostgreSQL
refuses new clients. A pool bounds them. Needs `pip install psycopg-pool`; used by
bench/webhook_accept.py for its `dist-pool` target to measure that choice.
"""

from __future__ import annotations

from quanttrade.settings import *  # noqa: F403
from quanttrade.settings import DATABASES

DATABASES["default"]["CONN_MAX_AGE"] = 0  # the pool replaces persistent connections
DATABASES["default"].setdefault("OPTIONS", {})["pool"] = {"min_size": 2, "max_size": 10, "timeout": 10}
