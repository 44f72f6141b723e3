"""Tianmu settings. Everything that differs between machines comes from the environment.

Variables (all optional in development):
  TIANMU_ENV            development (default) | production
  TIANMU_SECRET_KEY     required in production
  TIANMU_DEBUG          1/0; default 1 in development, must be 0 in production
  TIANMU_DATABASE_URL   default sqlite:///var/tianmu.sqlite3 (e.g. postgresql://user@host/db)
  TIANMU_REDIS_URL      if set, background jobs and the cache use Redis; else embedded SQLite/locmem
  TIANMU_MQTT_URL       sensor broker, default mqtt://127.0.0.1:1883
  TIANMU_TILE_URL       map tile template; empty = no tiles, region boundaries as the base layer
  TIANMU_ALLOWED_HOSTS  comma-separated; default localhost names in development
  TIANMU_VAR_DIR        where the embedded database and job store live; default ./var
  TIANMU_TRUSTED_PROXIES  comma-separated addresses or networks of the reverse proxies in front of Tianmu;
                        only their X-Forwarded-For / X-Forwarded-Proto count (default none: REMOTE_ADDR only)
"""

from __future__ import annotations

import ipaddress
import os
from pathlib import Path

import dj_database_url
from django.core.exceptions import ImproperlyConfigured
from django.utils.translation import gettext_lazy as _

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = Path(os.environ.get("TIANMU_VAR_DIR", BASE_DIR / "var"))
VAR_DIR.mkdir(parents=True, exist_ok=True)


def env_bool(name: str, default: bool) -> bool:
    value = os.environ.get(name)
    if value is None or value == "":
        return default
    return value.strip().lower() in {"1", "true", "yes", "on"}


TIANMU_ENV = os.environ.get("TIANMU_ENV", "development").strip().lower()
PRODUCTION = TIANMU_ENV == "production"

DEBUG = env_bool("TIANMU_DEBUG", not PRODUCTION)
# Django's technical 404/500 pages for developers; otherwise people get the platform's own even with DEBUG on.
TIANMU_DEBUG_PAGES = env_bool("TIANMU_DEBUG_PAGES", False)
SECRET_KEY = os.environ.get("TIANMU_SECRET_KEY", "")
if PRODUCTION:
    if not SECRET_KEY or len(SECRET_KEY) < 32:
        raise ImproperlyConfigured("TIANMU_ENV=production needs TIANMU_SECRET_KEY (at least 32 characters).")
    if DEBUG:
        raise ImproperlyConfigured("TIANMU_ENV=production refuses to start with TIANMU_DEBUG on.")
if not SECRET_KEY:
    SECRET_KEY = "dev-insecure-tianmu-key-do-not-use-in-production-0123456789"

ALLOWED_HOSTS = [
    h.strip()
    for h in os.environ.get("TIANMU_ALLOWED_HOSTS", "" if PRODUCTION else "127.0.0.1,localhost,testserver").split(",")
    if h.strip()
]

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "simple_history",
    "axes",
    "huey.contrib.djhuey",
    "ninja",
    "tianmu.core",
    "tianmu.registry",
    "tianmu.sensing",
    "tianmu.comms",
    "tianmu.warnings",
    "tianmu.commandmap",
    "tianmu.demo",
]

MIDDLEWARE = [
    "tianmu.core.network.TrustedProxyMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "tianmu.core.middleware.SecurityHeadersMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "tianmu.core.middleware.LanguageMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "tianmu.core.middleware.ErrorPagesMiddleware",
    "tianmu.core.middleware.RequestLimitsMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "simple_history.middleware.HistoryRequestMiddleware",
    "axes.middleware.AxesMiddleware",
]

ROOT_URLCONF = "tianmu.urls"
ASGI_APPLICATION = "tianmu.asgi.application"
WSGI_APPLICATION = "tianmu.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "tianmu" / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "django.template.context_processors.i18n",
                "tianmu.core.context.platform",
            ],
        },
    }
]

DATABASES = {
    "default": dj_database_url.parse(
        os.environ.get("TIANMU_DATABASE_URL") or f"sqlite:///{VAR_DIR / 'tianmu.sqlite3'}",
        conn_max_age=int(os.environ.get("TIANMU_DB_CONN_MAX_AGE", "60")),
    )
}
if DATABASES["default"]["ENGINE"].endswith("postgresql"):
    # A connection pool instead of per-thread persistent connections: under ASGI every request may run in a
    # new thread, and persistent connections would leak until PostgreSQL refuses more.
    DATABASES["default"]["CONN_MAX_AGE"] = 0
    DATABASES["default"].setdefault("OPTIONS", {})["pool"] = {
        "min_size": int(os.environ.get("TIANMU_DB_POOL_MIN", "2")),
        "max_size": int(os.environ.get("TIANMU_DB_POOL_MAX", "20")),
        "timeout": 10,
    }
if DATABASES["default"]["ENGINE"].endswith("sqlite3"):
    # WAL lets the web server read while a worker writes; wait rather than fail on a busy lock.
    DATABASES["default"]["OPTIONS"] = {
        "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL; PRAGMA foreign_keys=ON;",
        "timeout": 30,
        "transaction_mode": "IMMEDIATE",
    }
    DATABASES["default"]["CONN_MAX_AGE"] = 0
    DATABASES["default"]["TEST"] = {"NAME": os.environ.get("TIANMU_TEST_SQLITE", "")} if os.environ.get(
        "TIANMU_TEST_SQLITE"
    ) else {}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_USER_MODEL = "core.User"
AUTHENTICATION_BACKENDS = ["axes.backends.AxesStandaloneBackend", "django.contrib.auth.backends.ModelBackend"]
PASSWORD_HASHERS = [
    "django.contrib.auth.hashers.Argon2PasswordHasher",
    "django.contrib.auth.hashers.PBKDF2PasswordHasher",
]
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator", "OPTIONS": {"min_length": 10}},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "/"
LOGOUT_REDIRECT_URL = "login"

# Reverse proxies whose forwarding headers are believed (tianmu/core/network.py): addresses or networks. Empty:
# the client address is the connection's (REMOTE_ADDR) and every X-Forwarded-* header is dropped.
TIANMU_TRUSTED_PROXIES = [p.strip() for p in os.environ.get("TIANMU_TRUSTED_PROXIES", "").split(",") if p.strip()]
for _proxy in TIANMU_TRUSTED_PROXIES:
    try:
        ipaddress.ip_network(_proxy, strict=False)
    except ValueError as _e:
        raise ImproperlyConfigured(f"TIANMU_TRUSTED_PROXIES: {_proxy!r} is not an address or network") from _e

# Login throttling (django-axes): 5 failures lock the account (from every address) and the address (for every
# account) for 15 minutes. A successful login clears only its own account's failures (core/loginthrottle.py),
# so logging in to one's own account does not reset the guesses at another's.
AXES_FAILURE_LIMIT = int(os.environ.get("TIANMU_LOGIN_FAILURE_LIMIT", "5"))
AXES_COOLOFF_TIME = 0.25  # hours
AXES_LOCKOUT_PARAMETERS = ["username", "ip_address"]
AXES_RESET_ON_SUCCESS = True
AXES_HANDLER = "tianmu.core.loginthrottle.AccountResetHandler"
AXES_CLIENT_IP_CALLABLE = "tianmu.core.network.client_ip"
AXES_VERBOSE = False
AXES_LOCKOUT_TEMPLATE = "core/locked_out.html"

# Language and time: Chinese first, English available; UTC stored, Asia/Shanghai shown.
LANGUAGE_CODE = "zh-hans"
LANGUAGES = [("zh-hans", "简体中文"), ("en", "English")]
LOCALE_PATHS = [BASE_DIR / "tianmu" / "locale"]
TIME_ZONE = "Asia/Shanghai"
USE_I18N = True
USE_TZ = True

STATIC_URL = "/static/"
STATIC_ROOT = VAR_DIR / "static"
STATIC_ROOT.mkdir(parents=True, exist_ok=True)
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": "whitenoise.storage.CompressedManifestStaticFilesStorage"
        if PRODUCTION
        else "django.contrib.staticfiles.storage.StaticFilesStorage"
    },
}
WHITENOISE_USE_FINDERS = not PRODUCTION

# Security baseline.
SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_SAMESITE = "Lax"
CSRF_COOKIE_SAMESITE = "Lax"
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
X_FRAME_OPTIONS = "DENY"
SESSION_COOKIE_SECURE = env_bool("TIANMU_SECURE_COOKIES", PRODUCTION)
CSRF_COOKIE_SECURE = SESSION_COOKIE_SECURE
CSRF_TRUSTED_ORIGINS = [o for o in os.environ.get("TIANMU_CSRF_TRUSTED_ORIGINS", "").split(",") if o]
# HTTPS is terminated by the reverse proxy. X-Forwarded-Proto reaches Django only from a trusted proxy
# (TrustedProxyMiddleware drops it from anyone else), so it may always be believed.
SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
if PRODUCTION:
    SECURE_HSTS_SECONDS = int(os.environ.get("TIANMU_HSTS_SECONDS", "31536000"))

# ---- Limits on requests and fields (docs/security.md, "Limits"): the one place they are set. Each can be changed
# through its environment variable. A request over a size limit is refused before its body is read (413, or 414
# for the query string); a field over its limit is a per-field error (422 in the API, 400 on pages).
def env_int(name: str, default: int) -> int:
    value = os.environ.get(name, "").strip()
    return int(value) if value else default


MiB = 1024 * 1024
# The whole request body, uploaded files included (Excel and CSV imports).
TIANMU_MAX_REQUEST_BYTES = env_int("TIANMU_MAX_REQUEST_BYTES", 20 * MiB)
# The body without its uploaded files: JSON, form fields (Django's RequestDataTooBig above it).
DATA_UPLOAD_MAX_MEMORY_SIZE = env_int("TIANMU_MAX_FORM_BYTES", 2 * MiB + MiB // 2)
DATA_UPLOAD_MAX_NUMBER_FIELDS = env_int("TIANMU_MAX_FORM_FIELDS", 1000)
# Uploads larger than this are spooled to a temporary file instead of being held in memory.
FILE_UPLOAD_MAX_MEMORY_SIZE = env_int("TIANMU_UPLOAD_MEMORY_BYTES", 2 * MiB + MiB // 2)
# The query string (after "?"), in bytes as sent; and each query parameter's value, in characters.
TIANMU_MAX_QUERY_STRING = env_int("TIANMU_MAX_QUERY_STRING", 4096)
TIANMU_MAX_PARAM_LENGTH = env_int("TIANMU_MAX_PARAM_LENGTH", 1000)
# Long text fields of records (notes, a notice's body): characters. Short fields have their model's max_length.
TIANMU_MAX_TEXT_LENGTH = env_int("TIANMU_MAX_TEXT_LENGTH", 4000)
# API lists: the largest page_size, and the largest page number.
TIANMU_MAX_PAGE_SIZE = env_int("TIANMU_MAX_PAGE_SIZE", 1000)
TIANMU_MAX_PAGE = env_int("TIANMU_MAX_PAGE", 1_000_000)
# How often every open page asks for new alarms (core/attention.py): the delay before a red alarm rings. [U]
TIANMU_ATTENTION_POLL_SECONDS = env_int("TIANMU_ATTENTION_POLL_SECONDS", 15)

REDIS_URL = os.environ.get("TIANMU_REDIS_URL", "")
if REDIS_URL:
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": REDIS_URL}}
else:
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}

# Background jobs: Huey on SQLite for the embedded setup, Redis in production.
if REDIS_URL:
    HUEY = {
        "huey_class": "huey.RedisHuey",
        "name": "tianmu",
        "url": REDIS_URL,
        "immediate": False,
        "consumer": {"workers": 2, "worker_type": "thread"},
    }
else:
    HUEY = {
        "huey_class": "huey.SqliteHuey",
        "name": "tianmu",
        "filename": str(VAR_DIR / "huey.sqlite3"),
        "immediate": False,
        "consumer": {"workers": 2, "worker_type": "thread"},
    }

MQTT_URL = os.environ.get("TIANMU_MQTT_URL", "mqtt://127.0.0.1:1883")
TILE_URL = os.environ.get("TIANMU_TILE_URL", "")
TILE_ATTRIBUTION = os.environ.get("TIANMU_TILE_ATTRIBUTION", "")

TIANMU = {
    "DISTRICT_CODE": "330112",
    "DISTRICT_NAME": _("临安区"),
    # Lin'an's extent (shared/domain/facts.md §8): 118°51'–119°52' E, 29°56'–30°23' N.
    "DISTRICT_BBOX": (118.85, 29.933, 119.867, 30.383),
    "MAP_CENTER": (30.20, 119.40),
}

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": os.environ.get("TIANMU_LOG_LEVEL", "INFO")},
    "loggers": {
        "django.db.backends": {"level": "WARNING"},
        "axes": {"level": "WARNING"},
        "huey": {"level": "WARNING"},
    },
}

# Apps declare their own settings with defaults on their AppConfig (core.plugins.TianmuApp.settings, read
# with core.plugins.setting): set any of them here or through the environment variables those defaults read.
