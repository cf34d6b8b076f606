"""Settings read from the environment, with defaults that run on one machine and no services."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Any

import dj_database_url
import django_stubs_ext
from django.core.exceptions import ImproperlyConfigured

# Lets admin classes be written ModelAdmin[Model] for the type checker.
django_stubs_ext.monkeypatch()

BASE_DIR = Path(__file__).resolve().parent.parent


def _env_bool(name: str, default: bool) -> bool:
    value = os.environ.get(name)
    if value is None:
        return default
    return value.strip().lower() in {"1", "true", "yes", "on"}


def _env_list(name: str, default: str = "") -> list[str]:
    return [item.strip() for item in os.environ.get(name, default).split(",") if item.strip()]


#: DJANGO_ENV=production turns on the secure defaults below and makes SECRET_KEY and
#: ALLOWED_HOSTS mandatory; anything else is development (`make run`, the tests).
DJANGO_ENV = os.environ.get("DJANGO_ENV", "development").strip().lower()
PRODUCTION = DJANGO_ENV == "production"
if PRODUCTION:
    for _required in ("SECRET_KEY", "ALLOWED_HOSTS"):
        if not os.environ.get(_required, "").strip():
            raise ImproperlyConfigured(f"{_required} must be set when DJANGO_ENV=production")

SECRET_KEY = os.environ.get("SECRET_KEY", "dev-only-insecure-key-change-me-in-production")
DEBUG = _env_bool("DEBUG", not PRODUCTION)
ALLOWED_HOSTS = _env_list("ALLOWED_HOSTS", "127.0.0.1,localhost")
#: Origins (scheme://host) trusted for unsafe requests arriving through another host name.
CSRF_TRUSTED_ORIGINS = _env_list("CSRF_TRUSTED_ORIGINS")

# Transport security: HTTPS only, secure cookies and HSTS in production, each overridable.
SECURE_SSL_REDIRECT = _env_bool("SECURE_SSL_REDIRECT", PRODUCTION)
#: Probes and scrapers on the private network speak plain HTTP (paths without the leading /).
SECURE_REDIRECT_EXEMPT = [r"^healthz$", r"^readyz$", r"^metrics$"]
SESSION_COOKIE_SECURE = _env_bool("SESSION_COOKIE_SECURE", PRODUCTION)
CSRF_COOKIE_SECURE = _env_bool("CSRF_COOKIE_SECURE", PRODUCTION)
SECURE_HSTS_SECONDS = int(os.environ.get("SECURE_HSTS_SECONDS", "31536000" if PRODUCTION else "0"))
SECURE_HSTS_INCLUDE_SUBDOMAINS = _env_bool("SECURE_HSTS_INCLUDE_SUBDOMAINS", PRODUCTION)
SECURE_HSTS_PRELOAD = _env_bool("SECURE_HSTS_PRELOAD", PRODUCTION)
if os.environ.get("SECURE_PROXY_SSL_HEADER"):
    # Only behind a proxy that sets this header itself (e.g. HTTP_X_FORWARDED_PROTO).
    SECURE_PROXY_SSL_HEADER = (os.environ["SECURE_PROXY_SSL_HEADER"], "https")
# Django's defaults, stated because the security headers test relies on them.
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
SECURE_CROSS_ORIGIN_OPENER_POLICY = "same-origin"
X_FRAME_OPTIONS = "DENY"

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "paper_trading",
]

MIDDLEWARE = [
    # First, so the latency it records for /metrics covers every other middleware too.
    "paper_trading.observability.middleware.RequestLatencyMiddleware",
    "django.middleware.security.SecurityMiddleware",
    # Serves static files (the dashboard's, the API docs') from this process: no CDN, no nginx.
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "dexproject.urls"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

WSGI_APPLICATION = "dexproject.wsgi.application"
ASGI_APPLICATION = "dexproject.asgi.application"

DATABASES: dict[str, Any] = {
    "default": dj_database_url.parse(
        os.environ.get("DATABASE_URL", f"sqlite:///{BASE_DIR / 'db.sqlite3'}"),
        conn_max_age=int(os.environ.get("DB_CONN_MAX_AGE", "0")),
    )
}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # WAL lets the web server read while a bot writes; IMMEDIATE takes the write lock up front so
    # two writers queue instead of failing with "database is locked" halfway through a tick.
    DATABASES["default"]["OPTIONS"] = {
        "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
        "transaction_mode": "IMMEDIATE",
        "timeout": 30,
    }
    # Tests get a file too: an in-memory database fails with "table is locked" as soon as a
    # bot thread writes while a request reads, which is exactly what the API tests exercise.
    # One file per test process, so parallel runs never share (and corrupt) one.
    DATABASES["default"]["TEST"] = {
        "NAME": os.environ.get(
            "TEST_DATABASE_FILE",
            str(Path(tempfile.gettempdir()) / f"dexpaper-test-{os.getpid()}.sqlite3"),
        )
    }

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
]

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = BASE_DIR / "staticfiles"
# Without collectstatic (development, `make run`), serve straight from the apps' folders.
WHITENOISE_USE_FINDERS = True
WHITENOISE_AUTOREFRESH = DEBUG
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

#: Set to use Redis for the shared price cache and its lock (and, later, channels and Celery).
REDIS_URL = os.environ.get("REDIS_URL", "")
PRICE_CACHE_DIR = Path(os.environ.get("PRICE_CACHE_DIR", str(BASE_DIR / ".cache" / "prices")))
CACHES: dict[str, Any] = {
    "default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"},
    # Shared by every bot process on the machine, so N bots make one upstream call per TTL.
    "prices": (
        {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": REDIS_URL,
            "KEY_PREFIX": os.environ.get("PRICE_CACHE_KEY_PREFIX", "dexpaper"),
        }
        if REDIS_URL
        else {
            "BACKEND": "django.core.cache.backends.filebased.FileBasedCache",
            "LOCATION": str(PRICE_CACHE_DIR),
        }
    ),
}
# Live updates: one process needs no service (in-memory layer); several need Redis.
CHANNEL_LAYERS: dict[str, Any] = {
    "default": (
        {
            "BACKEND": "channels_redis.core.RedisChannelLayer",
            "CONFIG": {"hosts": [REDIS_URL], "prefix": os.environ.get("CHANNELS_PREFIX", "asgi")},
        }
        if REDIS_URL
        else {"BACKEND": "paper_trading.realtime.layers.InMemoryChannelLayer"}
    )
}

# Background bots and periodic jobs: Celery workers when a broker is configured, otherwise
# threads inside the server process ("embedded"), so one machine needs no service at all.
CELERY_BROKER_URL = os.environ.get("CELERY_BROKER_URL", REDIS_URL)
BACKGROUND_MODE = "celery" if CELERY_BROKER_URL else "embedded"
CELERY_TASK_DEFAULT_QUEUE = "paper_trading"
#: Short jobs (stop requests, revaluation, the reaper, clean-up) get their own queue: a bot task
#: holds a worker process for as long as it runs, and must never starve them.
CELERY_JOBS_QUEUE = "paper_trading_jobs"
CELERY_TASK_ACKS_LATE = False
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_SERIALIZER = "json"
CELERY_RESULT_BACKEND = os.environ.get("CELERY_RESULT_BACKEND", "") or None
CELERY_TIMEZONE = "UTC"
#: Seconds between revaluations of open live positions (design notes: 60 s).
POSITION_UPDATE_INTERVAL_SECONDS = float(os.environ.get("POSITION_UPDATE_INTERVAL_SECONDS", "60"))
#: Sessions that ended longer ago than this are deleted by the daily clean-up.
SESSION_RETENTION_DAYS = int(os.environ.get("SESSION_RETENTION_DAYS", "90"))
#: A running bot writes a heartbeat this often; one silent for HEARTBEAT_TIMEOUT is dead.
HEARTBEAT_INTERVAL_SECONDS = float(os.environ.get("HEARTBEAT_INTERVAL_SECONDS", "10"))
HEARTBEAT_TIMEOUT_SECONDS = float(os.environ.get("HEARTBEAT_TIMEOUT_SECONDS", "60"))
#: A dead bot is resumed this many times before its session is marked FAILED.
MAX_BOT_RESUMES = int(os.environ.get("MAX_BOT_RESUMES", "3"))

#: Seconds a fetched price serves every bot before anyone calls upstream again.
PRICE_CACHE_TTL_SECONDS = float(os.environ.get("PRICE_CACHE_TTL_SECONDS", "30"))
#: Upstream calls allowed per minute per machine (CoinGecko's demo tier allows about 30).
COINGECKO_CALLS_PER_MINUTE = float(os.environ.get("COINGECKO_CALLS_PER_MINUTE", "30"))
#: After an upstream failure, wait this long (doubling per failure, with jitter) before retrying.
PRICE_BACKOFF_BASE_SECONDS = float(os.environ.get("PRICE_BACKOFF_BASE_SECONDS", "5"))
PRICE_BACKOFF_MAX_SECONDS = float(os.environ.get("PRICE_BACKOFF_MAX_SECONDS", "300"))
#: A live price older than this (by the API's own last-updated time) is stale: no trading on it.
PRICE_MAX_AGE_SECONDS = float(os.environ.get("PRICE_MAX_AGE_SECONDS", "300"))
#: Seconds between live ticks unless --tick-interval says otherwise.
LIVE_TICK_INTERVAL_SECONDS = int(os.environ.get("LIVE_TICK_INTERVAL_SECONDS", "30"))

#: Operator alerts (breaker tripped, feed outage and recovery, session failed): a webhook that
#: gets JSON, and/or a Telegram chat. Nothing set: no alerts, no alert thread.
ALERT_WEBHOOK_URL = os.environ.get("ALERT_WEBHOOK_URL", "")
TELEGRAM_BOT_TOKEN = os.environ.get("TELEGRAM_BOT_TOKEN", "")
TELEGRAM_CHAT_ID = os.environ.get("TELEGRAM_CHAT_ID", "")
TELEGRAM_API_URL = os.environ.get("TELEGRAM_API_URL", "https://api.telegram.org")
ALERT_TIMEOUT_SECONDS = float(os.environ.get("ALERT_TIMEOUT_SECONDS", "3"))

#: Where `make run` keeps the generated demo password (readable only by you).
DEMO_CREDENTIALS_FILE = Path(
    os.environ.get("DEMO_CREDENTIALS_FILE", str(BASE_DIR / ".demo-credentials"))
)

REST_FRAMEWORK: dict[str, Any] = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "paper_trading.api.authentication.ApiTokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    "DEFAULT_PARSER_CLASSES": ["paper_trading.api.parsers.JSONParser"],
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "EXCEPTION_HANDLER": "paper_trading.api.errors.exception_handler",
    "DEFAULT_THROTTLE_CLASSES": [
        "rest_framework.throttling.ScopedRateThrottle",
    ],
    "DEFAULT_THROTTLE_RATES": {
        "auth": os.environ.get("THROTTLE_AUTH", "20/min"),
        "write": os.environ.get("THROTTLE_WRITE", "120/min"),
    },
}
if _env_bool("API_BROWSABLE", DEBUG):
    REST_FRAMEWORK["DEFAULT_RENDERER_CLASSES"].append(
        "rest_framework.renderers.BrowsableAPIRenderer"
    )

SPECTACULAR_SETTINGS: dict[str, Any] = {
    "TITLE": "dexpaper API",
    "DESCRIPTION": (
        "Paper trading for DEX bots. Every endpoint is scoped to the signed-in user's own "
        'accounts; errors share one shape: {"error": {"code", "message", "fields"}}.'
    ),
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    # Swagger UI from the installed sidecar package: no CDN.
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "COMPONENT_SPLIT_REQUEST": True,
    "POSTPROCESSING_HOOKS": [
        "drf_spectacular.hooks.postprocess_schema_enums",
        "paper_trading.api.schema_hooks.require_decimal_digits",
        "paper_trading.api.schema_hooks.document_refusals",
    ],
    "ENUM_NAME_OVERRIDES": {
        "TradeStatusEnum": "paper_trading.models.PaperTrade.Status",
        "SessionStatusEnum": "paper_trading.models.PaperTradingSession.Status",
        "DecisionTypeEnum": "paper_trading.models.PaperAIThoughtLog.DecisionType",
    },
}

#: Sign-In with Ethereum: the domain a message must name (default: the request's host),
#: the chain ids accepted, and how long a nonce lives.
SIWE_DOMAIN = os.environ.get("SIWE_DOMAIN", "")
SIWE_NONCE_TTL_SECONDS = int(os.environ.get("SIWE_NONCE_TTL_SECONDS", "300"))

LOG_LEVEL = os.environ.get("LOG_LEVEL", "INFO")
#: "json": one JSON object per line (timestamp, level, logger, message and any extra fields).
#: A bot's lines carry its `session_id` and `account_id` (plain text: the session's first 8).
LOG_FORMAT = os.environ.get("LOG_FORMAT", "plain")
LOGGING: dict[str, Any] = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {
        "plain": {
            "()": "paper_trading.observability.log_context.PlainFormatter",
            "fmt": "%(asctime)s %(levelname)s %(message)s",
        },
        "json": {
            "()": "pythonjsonlogger.json.JsonFormatter",
            "fmt": "%(levelname)s %(name)s %(message)s",
            "rename_fields": {"levelname": "level", "name": "logger"},
            "timestamp": True,
        },
    },
    "filters": {
        "bot_session": {"()": "paper_trading.observability.log_context.SessionContextFilter"}
    },
    "handlers": {
        "console": {
            "class": "logging.StreamHandler",
            "formatter": "json" if LOG_FORMAT == "json" else "plain",
            "filters": ["bot_session"],
        }
    },
    "loggers": {
        "paper_trading": {"handlers": ["console"], "level": LOG_LEVEL, "propagate": False},
        # httpx logs full request URLs at INFO, and RPC URLs may carry an API key.
        "httpx": {"handlers": ["console"], "level": "WARNING", "propagate": False},
    },
}
if LOG_FORMAT == "json":
    # Django's own request and server lines too, so a log shipper sees one format.
    for _name in ("django", "django.server"):
        LOGGING["loggers"][_name] = {"handlers": ["console"], "level": "INFO", "propagate": False}

#: If set, /metrics requires `Authorization: Bearer <token>`; open otherwise (loopback setups).
METRICS_TOKEN = os.environ.get("METRICS_TOKEN", "")
