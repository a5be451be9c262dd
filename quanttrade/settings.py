"""QuantTrade settings: every value comes from the environment, in this one place.

No environment variables at all means *embedded mode*: SQLite, in-process channel layer,
cache and Celery broker, paper accounts and a simulated price feed, with the secret key and
the credential encryption key created in the local data folder on first run.
Setting ``DATABASE_URL`` and ``REDIS_URL`` switches to the distributed mode (PostgreSQL,
Redis broker, channels-redis, Redis cache). Every variable is listed in the README (## Configuration).
"""

from __future__ import annotations

import math
import os
import secrets
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

import environ
from cryptography.fernet import Fernet
from django.core.exceptions import ImproperlyConfigured
from kombu import Exchange, Queue

from quanttrade.i18n import compile_catalogs
from quanttrade.rates import rate_seconds

BASE_DIR = Path(__file__).resolve().parent.parent

_BOOLEANS = {
    **dict.fromkeys(("true", "1", "yes", "on"), True),
    **dict.fromkeys(("false", "0", "no", "off"), False),
}


def _boolean(raw: str) -> bool:
    try:
        return _BOOLEANS[raw.lower()]
    except KeyError:
        raise ValueError(raw) from None


def _finite(raw: str) -> float:
    value = float(raw)
    if not math.isfinite(value):  # "nan" and "inf" parse, but no interval or size means them
        raise ValueError(raw)
    return value


class StrictEnv(environ.Env):
    """django-environ, except that a boolean or number it cannot read stops the start.

    ``environ.Env.bool`` reads any value it does not recognise as False, so a typo such as
    ``SESSION_COOKIE_SECURE=treu`` would quietly send cookies over plain HTTP; ``int``/``float``
    fail with a bare ValueError that does not name the variable. Every ``env.bool``/``env.int``/
    ``env.float`` below goes through :meth:`strict` instead.
    """

    def bool(self, var: str, default: Any = environ.Env.NOTSET) -> bool:
        return self.strict(var, default, _boolean, "true or false")

    def int(self, var: str, default: Any = environ.Env.NOTSET) -> int:
        return self.strict(var, default, int, "a whole number")

    def float(self, var: str, default: Any = environ.Env.NOTSET) -> float:
        return self.strict(var, default, _finite, "a number")

    def strict(self, var: str, default: Any, parse: Callable[[str], Any], expected: str) -> Any:
        """The variable parsed by ``parse``; unset = ``default``; anything unreadable refuses to start."""
        raw = self.ENVIRON.get(var)
        if raw is None:
            if default is self.NOTSET:
                raise ImproperlyConfigured(f"Set the {var} environment variable")
            return default
        try:
            return parse(raw.strip())
        except ValueError:
            raise ImproperlyConfigured(f"{var} must be {expected}, got {raw!r}") from None


env = StrictEnv()
environ.Env.read_env(BASE_DIR / ".env") if (BASE_DIR / ".env").exists() else None

DATA_DIR = Path(env.str("QT_DATA_DIR", default=str(BASE_DIR / "data")))
DATA_DIR.mkdir(parents=True, exist_ok=True, mode=0o700)


def _private(path: Path, mode: int) -> None:
    """Owner-only permissions on the data folder and what it holds (the SQLite database has the
    API tokens and encrypted credentials, the log folder the request logs). A folder someone
    else owns (a mounted volume) is left alone."""
    try:
        if path.exists() and path.stat().st_uid == os.getuid():
            path.chmod(mode)
    except OSError:
        pass


_private(DATA_DIR, 0o700)

REDIS_URL: str = env.str("REDIS_URL", default="")
DATABASE_URL: str = env.str("DATABASE_URL", default="")
# Embedded = nothing external configured. Secrets may then live in the data folder.
EMBEDDED = not (REDIS_URL or DATABASE_URL)


def _local_secret(name: str, make: Callable[[], str]) -> str:
    """Read a secret from the data folder, creating it on first use (embedded mode only)."""
    path = DATA_DIR / name
    if not path.exists():
        with os.fdopen(os.open(path, os.O_CREAT | os.O_WRONLY | os.O_EXCL, 0o600), "w") as secret:
            secret.write(make())
    return path.read_text().strip()


def _secret(var: str, filename: str, make: Callable[[], str]) -> str:
    value = env.str(var, default="")
    if value:
        return value
    if EMBEDDED or env.bool("QT_ALLOW_LOCAL_SECRETS", default=False):
        return _local_secret(filename, make)
    raise ImproperlyConfigured(f"{var} is required outside embedded mode (see the README, ## Configuration)")


SECRET_KEY = _secret("SECRET_KEY", "secret_key", lambda: secrets.token_urlsafe(50))
# Comma-separated Fernet keys: the first encrypts, all decrypt (rotation: prepend a new key,
# run `manage.py rotate_credentials`, then drop the old one).
FIELD_ENCRYPTION_KEYS: list[str] = [
    k.strip()
    for k in _secret(
        "FIELD_ENCRYPTION_KEYS", "encryption_keys", lambda: Fernet.generate_key().decode()
    ).split(",")
    if k.strip()
]

DEBUG = env.bool("DEBUG", default=False)
ALLOWED_HOSTS: list[str] = env.list("ALLOWED_HOSTS", default=["localhost", "127.0.0.1", "[::1]"])
CSRF_TRUSTED_ORIGINS: list[str] = env.list("CSRF_TRUSTED_ORIGINS", default=[])
# Origins allowed to open the /ws WebSocket, besides those matching ALLOWED_HOSTS.
WS_ALLOWED_ORIGINS: list[str] = env.list("WS_ALLOWED_ORIGINS", default=[])
PUBLIC_BASE_URL: str = env.str("PUBLIC_BASE_URL", default="")

INSTALLED_APPS = [
    "daphne",
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "rest_framework",
    "django_otp",
    "django_otp.plugins.otp_totp",
    "axes",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "channels",
    "quanttrade",
    "access",
    "live",
    "notify",
    "prices",
    "strategies",
    "orders",
    "webhooks",
    "feeds",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    # POST /api/webhook goes from here straight to the intake (webhooks/middleware.py).
    "webhooks.middleware.WebhookFastLane",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.locale.LocaleMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django_otp.middleware.OTPMiddleware",
    "access.middleware.OtpSessionMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    # Last, as django-axes asks: it turns a login flagged as locked out into the lockout page.
    "axes.middleware.AxesMiddleware",
]

ROOT_URLCONF = "quanttrade.urls"
TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "django.template.context_processors.i18n",
                "orders.context_processors.order_counts",
            ],
        },
    },
]
WSGI_APPLICATION = None
ASGI_APPLICATION = "quanttrade.asgi.application"

# --- database ---------------------------------------------------------------------------
if DATABASE_URL:
    DATABASES = {"default": env.db_url("DATABASE_URL")}
else:
    DATABASES = {
        "default": {
            "ENGINE": "django.db.backends.sqlite3",
            "NAME": str(DATA_DIR / "db.sqlite3"),
        }
    }
if DATABASES["default"]["ENGINE"].endswith("sqlite3"):
    # Created owner-only before SQLite opens it (its -wal and -shm files take the same mode).
    _db_file = Path(DATABASES["default"]["NAME"])
    if not _db_file.exists() and _db_file.parent.is_dir():
        os.close(os.open(_db_file, os.O_CREAT | os.O_WRONLY, 0o600))
    _private(_db_file, 0o600)
    # Django's SQLite backend whose writers in one process take turns on a lock instead of
    # SQLite's sleep-and-poll busy handler (quanttrade/embedded_sqlite3/base.py).
    DATABASES["default"]["ENGINE"] = "quanttrade.embedded_sqlite3"
    # WAL + IMMEDIATE transactions let the web thread and the worker threads write
    # concurrently without "database is locked" failures.
    DATABASES["default"].setdefault("OPTIONS", {}).update(
        {
            "timeout": 30,
            "transaction_mode": "IMMEDIATE",
            "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
        }
    )
elif DATABASES["default"]["ENGINE"].endswith("postgresql"):
    # Under ASGI every request runs in its own thread and Django's connections are per thread:
    # persistent connections pile up until PostgreSQL refuses clients. psycopg's pool bounds
    # them per process (docs/benchmarks-webhook.md); CONN_MAX_AGE must be 0 with a pool.
    DATABASES["default"]["CONN_MAX_AGE"] = 0
    DATABASES["default"].setdefault("OPTIONS", {})["pool"] = {
        "min_size": env.int("DB_POOL_MIN_SIZE", default=2),
        "max_size": env.int("DB_POOL_MAX_SIZE", default=10),
        # A dead database must fail a request fast: the webhook intake then spools the signal
        # (webhooks/spool.py) and still answers within TradingView's 3 s.
        "timeout": env.float("DB_POOL_TIMEOUT", default=1.5),
    }
    DATABASES["default"]["OPTIONS"].setdefault("connect_timeout", env.int("DB_CONNECT_TIMEOUT", default=2))
# The hot path's statements (quanttrade/prepared.py) are bound on the server and prepared once
# per pooled PostgreSQL connection instead of planned on every execution. Off for a pooler that
# does not keep prepared statements (PgBouncer in transaction mode before 1.21, or without
# max_prepared_statements): docs/deployment.md. No effect on SQLite.
DATABASE_PREPARED_STATEMENTS = env.bool("DB_PREPARED_STATEMENTS", default=True)
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# --- cache, channel layer ---------------------------------------------------------------
EMBEDDED_CACHE_MAX_ENTRIES = 100_000
if REDIS_URL:
    CACHES = {
        "default": {
            "BACKEND": "quanttrade.cache.RedisCache",
            "LOCATION": REDIS_URL,
            # The intake reads the cache (the strategies' generation token): an unreachable or
            # hung Redis must cost about a second there, never the 3 s budget.
            "OPTIONS": {"socket_connect_timeout": 1, "socket_timeout": 1},
        }
    }
    CHANNEL_LAYERS = {
        "default": {
            # Pub/sub measured best for the price fan-out (docs/benchmarks-ws.md).
            "BACKEND": env.str(
                "CHANNEL_LAYER_BACKEND", default="channels_redis.pubsub.RedisPubSubChannelLayer"
            ),
            # Pub/sub channels are not per Redis database: two installations (or two parallel
            # test workers, tests/parallel.py) sharing a Redis server need different prefixes.
            "CONFIG": {"hosts": [REDIS_URL], "prefix": env.str("CHANNEL_LAYER_PREFIX", default="asgi")},
        }
    }
else:
    CACHES = {
        "default": {
            "BACKEND": "quanttrade.cache.EmbeddedCache",  # LocMemCache, batch writes at once
            # Django's default of 300 entries is far too few: a 100-account fan-out writes a
            # dispatch record per account, and culling the least recently used third evicted
            # what must stay (the strategy cache's generation token, the KIS order ledger's
            # claims, workers' liveness marks) long before it expired. 100,000 entries is a few
            # tens of MB at most; Redis, in distributed mode, never evicts (noeviction).
            "OPTIONS": {"MAX_ENTRIES": EMBEDDED_CACHE_MAX_ENTRIES},
        }
    }
    CHANNEL_LAYERS = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}

# --- Celery -----------------------------------------------------------------------------
CELERY_BROKER_URL = env.str("CELERY_BROKER_URL", default=REDIS_URL or "memory://")
CELERY_TASK_IGNORE_RESULT = True
CELERY_RESULT_BACKEND = None
# A task is acknowledged only after it ran, so a worker that dies mid-task gives it back.
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
# Short socket timeouts: publishing happens on the webhook's request path (after commit), and
# a broker outage must cost milliseconds there, not hang the response. The sweep re-dispatches.
CELERY_BROKER_TRANSPORT_OPTIONS = {
    "visibility_timeout": 3600,
    "socket_connect_timeout": 1,
    "socket_timeout": 2,
    # A publish tries the broker once. kombu's default retries the connection for
    # broker_connection_timeout (4 s) plus backoff: 6 s per publish measured with Redis down,
    # on the webhook's response path (TradingView gives up after 3 s). The worker's own
    # reconnection is separate (broker_connection_max_retries below) and unaffected.
    "max_retries": 0,
    # A worker takes from the queues in CELERY_TASK_QUEUES' order: orders before background.
    "queue_order_strategy": "priority",
}
# Two queues, consumed by every worker (no -Q needed): "celery" for order executions and
# everything else, "background" for portfolio refreshes. A fan-out to 1,000 accounts asks for
# 1,000 refreshes (one per fill, ~10 ms of CPU each); in one queue the next signal's orders
# waited behind them. With the Redis broker a worker always takes an order first (BRPOP over
# the queues in this order); the in-memory broker of the tests takes them in turn.
CELERY_TASK_DEFAULT_QUEUE = "celery"
CELERY_TASK_QUEUES = (
    Queue("celery", Exchange("celery", type="direct"), routing_key="celery"),
    Queue("background", Exchange("background", type="direct"), routing_key="background"),
)
CELERY_TASK_ROUTES = {
    "orders.tasks.portfolio_refresh": {"queue": "background"},
    "orders.tasks.portfolios_refresh_requested": {"queue": "background"},
    "orders.tasks.portfolios_refresh": {"queue": "background"},
}
CELERY_TASK_PUBLISH_RETRY = False
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
# A worker reconnects for as long as the broker is away (Celery's default gives up after 100).
CELERY_BROKER_CONNECTION_MAX_RETRIES = None
if CELERY_BROKER_URL.startswith(("redis://", "rediss://")):
    # kombu's Redis transport with a fix: a broker outage with tasks in flight no longer kills
    # the worker (quanttrade/broker.py has the cause, with file:line in kombu and Celery).
    CELERY_BROKER_TRANSPORT = "quanttrade.broker:Transport"
CELERY_TASK_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_TIMEZONE = "UTC"
# Orders still `queued` (or stuck `submitted`) this long after creation are re-dispatched.
ORDER_SWEEP_INTERVAL_SECONDS: int = env.int("ORDER_SWEEP_INTERVAL_SECONDS", default=15)
ORDER_STALE_AFTER_SECONDS: int = env.int("ORDER_STALE_AFTER_SECONDS", default=30)
# A cancel the venue accepted while still showing the order live is sent again by the live
# refresh once the order is still live this long after it, at most ORDER_CANCEL_RESENDS times
# (the operator is told at the first and at the last); 0 resends: never sent again.
ORDER_CANCEL_RESEND_SECONDS: float = env.float("ORDER_CANCEL_RESEND_SECONDS", default=30.0)
ORDER_CANCEL_RESENDS: int = env.int("ORDER_CANCEL_RESENDS", default=3)


# A fan-out is spread over at most this many worker tasks: beyond it, each task executes a
# chunk of accounts one after another (orders.services.fan_out_chunk). "auto" (the default):
# as many as the live worker processes run at once together (processes x --concurrency, as
# they announce it: orders.liveness.order_slots), FANOUT_TASKS_UNKNOWN when none is known.
# A number fixes it.
def _at_least_one(raw: str) -> int:
    value = int(raw)
    if value < 1:
        raise ValueError(raw)
    return value


def _fanout_tasks(raw: str) -> int | None:
    return None if raw.lower() == "auto" else _at_least_one(raw)


ORDER_FANOUT_TASKS: int | None = env.strict(
    "ORDER_FANOUT_TASKS", None, _fanout_tasks, '"auto" or a whole number of at least 1'
)
# Distributed mode: each web process runs this many order executions itself, on threads of
# its own, while one is idle (a signal's order then skips the broker: orders/handoff.py); the
# rest go to the workers. 0: every execution goes to the workers.
ORDER_WEB_THREADS: int = env.int("ORDER_WEB_THREADS", default=2)
# Distributed mode: a Celery worker with a threads pool (``--pool threads``) executes its order
# tasks on WORKER_ORDER_THREADS threads of its own, WORKER_ORDER_TURNS of them running at once:
# a fan-out's chunk runs its accounts at once, and an order waiting for its venue lets another
# run (orders.handoff.LocalPool, as embedded mode's). Two turns: a worker process is one
# interpreter, and a second order overlaps the first's database round trips (with more, each
# order cost more CPU: docs/benchmarks-speed.md, round 23). 0 threads: each task executes its
# orders on its own thread, a chunk's one after another; 0 turns: every thread runs at once.
WORKER_ORDER_THREADS: int = env.int("WORKER_ORDER_THREADS", default=32)
WORKER_ORDER_TURNS: int = env.int("WORKER_ORDER_TURNS", default=2)
# A retryable venue error (rate limit, 5xx, timeout looked up) is retried this many times.
ORDER_MAX_ATTEMPTS: int = env.int("ORDER_MAX_ATTEMPTS", default=5)
# A placement whose fate is unknown (timeout, lost answer, 5xx) is looked up by client id this
# many more times, waiting ORDER_UNCERTAIN_BACKOFF_SECONDS, then twice as long each time (at
# most 30 s), before the order ends `failed` with "check the venue". It is never sent again
# unless the venue refuses a repeated client id in every state (docs/venues.md).
ORDER_UNCERTAIN_LOOKUPS: int = env.int("ORDER_UNCERTAIN_LOOKUPS", default=6)
ORDER_UNCERTAIN_BACKOFF_SECONDS: float = env.float("ORDER_UNCERTAIN_BACKOFF_SECONDS", default=2.0)
# A venue request waits at most this long for its rate-limit buckets (orders/exchanges/brokerkit/
# buckets.py), then is retried later (nothing sent).
VENUE_RATE_MAX_WAIT_SECONDS: float = env.float("VENUE_RATE_MAX_WAIT_SECONDS", default=10.0)
PAPER_MATCH_INTERVAL_SECONDS: float = env.float("PAPER_MATCH_INTERVAL_SECONDS", default=1.0)
# Orders waiting for approval past their strategy's approval_timeout_seconds are dropped by a
# pass this often (a late approval is refused on the spot anyway, so this only sets how soon
# the queue page shows them expired).
APPROVAL_EXPIRE_INTERVAL_SECONDS = 2.0
# Every active account's portfolio is read from its venue this often (and after each fill);
# the refresh also keeps the day's equity snapshot.
PORTFOLIO_REFRESH_SECONDS: float = env.float("PORTFOLIO_REFRESH_SECONDS", default=60.0)
# ... and after every fill (a venue read of the account per fill, at most one waiting per account).
PORTFOLIO_REFRESH_AFTER_FILL = True
CELERY_BEAT_SCHEDULE = {
    "orders-sweep": {
        "task": "orders.tasks.orders_sweep",
        "schedule": float(ORDER_SWEEP_INTERVAL_SECONDS),
    },
    "approvals-expire": {
        "task": "orders.tasks.approvals_expire",
        "schedule": APPROVAL_EXPIRE_INTERVAL_SECONDS,
    },
    "paper-match": {
        "task": "orders.tasks.paper_match",
        "schedule": PAPER_MATCH_INTERVAL_SECONDS,
    },
    "portfolios-refresh": {
        "task": "orders.tasks.portfolios_refresh",
        "schedule": PORTFOLIO_REFRESH_SECONDS,
    },
    "webhooks-sweep": {
        "task": "webhooks.tasks.webhooks_sweep",
        "schedule": 3600.0,
    },
    "notify-sweep": {
        "task": "notify.tasks.notify_sweep",
        "schedule": 30.0,
    },
}
# Embedded mode: how many accounts' orders run on the interpreter at once (turns of the order
# threads). An order waiting for its venue's answer, a rate limit or a lock does not count
# (orders.handoff.venue_wait): up to EMBEDDED_ORDER_THREADS orders can be at their venues at the
# same time. One: a second order running at the same time only shares the one interpreter, and
# the hand-overs between them cost CPU (docs/benchmarks-speed.md, round 32: with the paper venue
# a quarter less CPU per order than four).
EMBEDDED_ORDER_TURNS: int = env.strict(
    "EMBEDDED_ORDER_TURNS", 1, _at_least_one, "a whole number of at least 1"
)
EMBEDDED_ORDER_THREADS: int = env.int("EMBEDDED_ORDER_THREADS", default=32)
# Embedded mode: the in-process Celery worker's threads (the tasks that come through the
# in-memory broker; orders go to the order threads above).
EMBEDDED_WORKER_CONCURRENCY: int = env.int("EMBEDDED_WORKER_CONCURRENCY", default=4)

# --- webhook ----------------------------------------------------------------------------
WEBHOOK_MAX_BODY_BYTES = 64 * 1024
DATA_UPLOAD_MAX_MEMORY_SIZE = WEBHOOK_MAX_BODY_BYTES
# The longest request body any path takes (no page uploads files, no form comes near): the web
# servers stop reading past it and answer 413, instead of buffering whatever arrives.
HTTP_MAX_BODY_BYTES = 1024 * 1024
WEBHOOK_RATE_LIMIT: str = env.str("WEBHOOK_RATE_LIMIT", default="120/m")
# Refusals before authentication (unknown strategy, bad token, bad JSON) recorded per source
# IP and period; past it they are still answered, but no longer stored.
WEBHOOK_REFUSED_RECORD_LIMIT: str = env.str("WEBHOOK_REFUSED_RECORD_LIMIT", default="60/m")
for _rate_name in ("WEBHOOK_RATE_LIMIT", "WEBHOOK_REFUSED_RECORD_LIMIT"):
    try:
        rate_seconds(globals()[_rate_name])
    except ValueError as _rate_error:
        raise ImproperlyConfigured(f"{_rate_name}: {_rate_error}") from None
# Comma list of IPs/CIDRs allowed to POST webhooks; "tradingview" expands to its four
# addresses. Empty = every source allowed.
WEBHOOK_IP_ALLOWLIST: list[str] = env.list("WEBHOOK_IP_ALLOWLIST", default=[])
# X-Forwarded-For is honoured only when the direct peer is one of these IPs/CIDRs.
TRUSTED_PROXIES: list[str] = env.list("TRUSTED_PROXIES", default=[])
IDEMPOTENCY_TTL_SECONDS = 24 * 3600
# Refused webhooks are kept this many days (the sweep deletes older ones; accepted ones stay).
WEBHOOK_REFUSED_RETENTION_DAYS: int = env.int("WEBHOOK_REFUSED_RETENTION_DAYS", default=14)
# How much of an unauthenticated refused body is stored.
WEBHOOK_REFUSED_MAX_STORED_BYTES = 4096
MAX_BATCH_ORDERS = 50
# While the database is unreachable, accepted webhooks are written to QT_DATA_DIR/spool (one
# fsync'd file each, answered 202 "spooled") and replayed through the intake once it is back.
WEBHOOK_SPOOL_REPLAY_SECONDS: float = env.float("WEBHOOK_SPOOL_REPLAY_SECONDS", default=2.0)
WEBHOOK_SPOOL_MAX_FILES: int = env.int("WEBHOOK_SPOOL_MAX_FILES", default=10000)
# How long a web process may authenticate a strategy from memory while the database is down.
WEBHOOK_AUTH_CACHE_SECONDS: int = env.int("WEBHOOK_AUTH_CACHE_SECONDS", default=300)


# The threads a web process runs its webhooks on (quanttrade.asgi): started as needed and kept
# for the process's life, instead of Django's new thread for every request. A webhook waits for
# a free one. As many as the database connections a PostgreSQL process pools (DB_POOL_MAX_SIZE),
# so a burst waits here rather than at the pool, whose timeout would spool the signal.
WEBHOOK_THREADS: int = env.strict(
    "WEBHOOK_THREADS", env.int("DB_POOL_MAX_SIZE", default=10), _at_least_one, "a whole number of at least 1"
)
# How long a web process reuses a strategy (and its links) it read, while nothing about
# strategies, accounts or links has changed (strategies/generation.py); 0 reads every time. Bounds
# how long a change made outside the product (SQL) can go unseen.
WEBHOOK_STRATEGY_CACHE_SECONDS: float = env.float("WEBHOOK_STRATEGY_CACHE_SECONDS", default=60.0)

# --- notifications (notify/) -----------------------------------------------------------
# One destination gets at most one message per NOTIFY_MIN_INTERVAL seconds: what happens in
# between is batched into the next message. The first event of a quiet spell waits
# NOTIFY_BATCH_SECONDS for the rest of its burst (a webhook's fills arrive together).
NOTIFY_MIN_INTERVAL: float = env.float("NOTIFY_MIN_INTERVAL", default=10.0)
NOTIFY_BATCH_SECONDS: float = env.float("NOTIFY_BATCH_SECONDS", default=2.0)
# A process gathers its events for this long and writes them together (a fan-out's fills: one
# INSERT instead of one per fill, off the order threads); 0 writes each at once.
NOTIFY_GATHER_SECONDS: float = env.float("NOTIFY_GATHER_SECONDS", default=0.25)
# A destination that fails is retried with backoff; a message is dropped after this many tries.
NOTIFY_MAX_ATTEMPTS: int = env.int("NOTIFY_MAX_ATTEMPTS", default=8)
for _notify_name in (
    "NOTIFY_MIN_INTERVAL",
    "NOTIFY_BATCH_SECONDS",
    "NOTIFY_GATHER_SECONDS",
    "NOTIFY_MAX_ATTEMPTS",
):
    if globals()[_notify_name] < 0:
        raise ImproperlyConfigured(f"{_notify_name} must not be negative")

# --- prices -----------------------------------------------------------------------------
# Comma list of feeds started with the server (embedded) or by `manage.py pricefeed`.
PRICE_FEEDS: list[str] = env.list("PRICE_FEEDS", default=["simulated"] if EMBEDDED else [])
PRICE_WATCHLIST: list[str] = env.list("PRICE_WATCHLIST", default=[])
WS_PING_INTERVAL_SECONDS: float = env.float("WS_PING_INTERVAL_SECONDS", default=30.0)
PRICE_SIMULATED_INTERVAL_SECONDS: float = env.float("PRICE_SIMULATED_INTERVAL_SECONDS", default=1.0)
# ccxt feed: "auto" (ccxt.pro watch_tickers, polling fallback), "watch" or "poll".
PRICE_CCXT_MODE: str = env.str("PRICE_CCXT_MODE", default="auto")
PRICE_CCXT_POLL_SECONDS: float = env.float("PRICE_CCXT_POLL_SECONDS", default=2.0)
# KIS realtime feed and daily collection; blank keys = the first active KIS account's keys.
KIS_APP_KEY: str = env.str("KIS_APP_KEY", default="")
KIS_APP_SECRET: str = env.str("KIS_APP_SECRET", default="")
KIS_REST_URL: str = env.str("KIS_REST_URL", default="https://openapi.koreainvestment.com:9443")
KIS_WS_URL: str = env.str("KIS_WS_URL", default="ws://ops.koreainvestment.com:21000")
KIS_WS_BACKOFF_SECONDS: float = env.float("KIS_WS_BACKOFF_SECONDS", default=1.0)

# --- i18n -------------------------------------------------------------------------------
LANGUAGE_CODE = "ko"
LANGUAGES = [("ko", "한국어"), ("en", "English")]
# One catalog folder per area (locale/<area>/ko/LC_MESSAGES/django.po); Django merges them.
LOCALE_PATHS = sorted(p for p in (BASE_DIR / "locale").iterdir() if p.is_dir())
compile_catalogs(LOCALE_PATHS)  # .mo files are build output; compiled before any app loads
USE_I18N = True
TIME_ZONE = env.str("TIME_ZONE", default="Asia/Seoul")
USE_TZ = True

# --- static -----------------------------------------------------------------------------
STATIC_URL = "static/"
STATIC_ROOT = BASE_DIR / "staticfiles"
STATIC_ROOT.mkdir(exist_ok=True)  # git-ignored; WhiteNoise warns when it is missing
STATICFILES_DIRS = [BASE_DIR / "static"]
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedStaticFilesStorage"},
}
WHITENOISE_USE_FINDERS = True

LOGIN_URL = "/accounts/login/"
LOGIN_REDIRECT_URL = "/"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
]

# --- operator logins (access/) ----------------------------------------------------------
# django-axes first: it refuses a locked-out username+IP before any password is checked, and
# needs the request, so a login without one (e.g. `authenticate(username=…)` in a shell) fails.
AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",
    "django.contrib.auth.backends.ModelBackend",
]
# A superuser must have a TOTP device (enrolled at the first login) when this is on; a staff
# user who has a confirmed device always gives its code, whatever this says.
OTP_REQUIRED_FOR_SUPERUSERS: bool = env.bool("OTP_REQUIRED_FOR_SUPERUSERS", default=not EMBEDDED)
OTP_TOTP_ISSUER = "QuantTrade"
# Failed logins (password or TOTP code) per username + client IP before the pair is locked out.
AXES_FAILURE_LIMIT: int = env.int("LOGIN_FAILURE_LIMIT", default=5)
AXES_COOLOFF_TIME = timedelta(minutes=env.int("LOGIN_LOCKOUT_MINUTES", default=15))
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]
AXES_RESET_ON_SUCCESS = True
AXES_LOCKOUT_CALLABLE = "access.views.lockout_response"
# The same proxy-aware address as the webhook's allowlist (TRUSTED_PROXIES).
AXES_CLIENT_IP_CALLABLE = "access.policy.login_client_ip"
# Attempts are counted in the database: shared by every process, in both modes.
AXES_HANDLER = "axes.handlers.database.AxesDatabaseHandler"

# --- security ---------------------------------------------------------------------------
SECURE_PROXY_SSL_HEADER = (
    ("HTTP_X_FORWARDED_PROTO", "https") if env.bool("BEHIND_TLS_PROXY", default=False) else None
)
SESSION_COOKIE_SECURE = env.bool("SESSION_COOKIE_SECURE", default=False)
CSRF_COOKIE_SECURE = SESSION_COOKIE_SECURE
X_FRAME_OPTIONS = "DENY"

# --- DRF / OpenAPI ----------------------------------------------------------------------
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "rest_framework.authentication.SessionAuthentication",
        "access.authentication.ApiTokenAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAdminUser"],
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "EXCEPTION_HANDLER": "quanttrade.errors.exception_handler",
    "UNAUTHENTICATED_USER": "django.contrib.auth.models.AnonymousUser",
}
SPECTACULAR_SETTINGS = {
    "TITLE": "QuantTrade API",
    "DESCRIPTION": "Webhook trading server: webhook intake, results, realtime prices.",
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
}

# --- logging ----------------------------------------------------------------------------
LOG_DIR = DATA_DIR / "logs"
LOG_DIR.mkdir(parents=True, exist_ok=True, mode=0o700)
_private(LOG_DIR, 0o700)
LOG_LEVEL: str = env.str("LOG_LEVEL", default="INFO")
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "filters": {"redact": {"()": "quanttrade.logging.RedactSecretsFilter"}},
    "formatters": {
        "seed": {"format": "%(asctime)s [%(levelname)s] %(message)s"},
    },
    "handlers": {
        "console": {
            "class": "logging.StreamHandler",
            "formatter": "seed",
            "filters": ["redact"],
        },
        "file": {
            # Several processes (web workers, Celery workers, beat, the feed) write one file:
            # rotation under a lock, so after a rotation they all write the new file.
            "class": "concurrent_log_handler.ConcurrentRotatingFileHandler",
            "filename": str(LOG_DIR / "app.log"),
            "maxBytes": 10 * 1024 * 1024,
            "backupCount": 5,
            "encoding": "utf-8",
            "formatter": "seed",
            "filters": ["redact"],
        },
    },
    "loggers": {
        "quanttrade": {"handlers": ["console", "file"], "level": LOG_LEVEL, "propagate": False},
        "django.request": {"handlers": ["console", "file"], "level": "ERROR"},
    },
}
