"""Settings, all from the environment (see README "Configuration").

The embedded default needs nothing: SQLite under var/, tasks run in process, DEBUG on.
Production sets DEBUG=0, SECRET_KEY, ALLOWED_HOSTS, DATABASE_URL and REDIS_URL.
"""
import os
from datetime import timedelta
from pathlib import Path

import dj_database_url
from csp.constants import NONE, SELF
from django.core.exceptions import ImproperlyConfigured

BASE_DIR = Path(__file__).resolve().parent.parent


def envbool(name, default):
    value = os.environ.get(name)
    if value is None or value == "":
        return default
    if value.lower() in ("1", "true", "yes", "on"):
        return True
    if value.lower() in ("0", "false", "no", "off"):
        return False
    raise ImproperlyConfigured(f"{name}={value!r}: use 1/0, true/false, yes/no or on/off")


def envint(name, default):
    value = os.environ.get(name)
    if value is None or value == "":
        return default
    try:
        return int(value)
    except ValueError:
        raise ImproperlyConfigured(f"{name}={value!r}: expected a whole number") from None


def envlist(name, default):
    value = os.environ.get(name)
    if value is None or value.strip() == "":
        return default
    return [part.strip() for part in value.split(",") if part.strip()]


DEBUG = envbool("DEBUG", True)

SECRET_KEY = os.environ.get("SECRET_KEY", "")
if not SECRET_KEY:
    if not DEBUG:
        raise ImproperlyConfigured("SECRET_KEY must be set when DEBUG is off")
    SECRET_KEY = "django-insecure-local-development-only-never-deploy-this-key-0123456789"

ALLOWED_HOSTS = envlist("ALLOWED_HOSTS", ["localhost", "127.0.0.1", "[::1]"])
CSRF_TRUSTED_ORIGINS = envlist("CSRF_TRUSTED_ORIGINS", [])
SITE_URL = os.environ.get("SITE_URL", "http://127.0.0.1:8000")

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django.contrib.humanize",
    "rest_framework",
    "rest_framework.authtoken",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "django_htmx",
    "axes",
    "csp",
    "annotations",
    "generation",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "csp.middleware.CSPMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.locale.LocaleMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
    "annotations.middleware.DatabaseConnectionLostMiddleware",
    # Last, so it sees a lockout flagged by any view's login attempt.
    "axes.middleware.AxesMiddleware",
]

ROOT_URLCONF = "evalsite.urls"
WSGI_APPLICATION = "evalsite.wsgi.application"

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
            ],
        },
    },
]

VAR_DIR = Path(os.environ.get("VAR_DIR", BASE_DIR / "var"))
if not os.environ.get("DATABASE_URL"):
    # The embedded default: SQLite cannot create its file in a folder that does not exist yet.
    VAR_DIR.mkdir(parents=True, exist_ok=True)
DATABASES = {
    "default": dj_database_url.parse(
        os.environ.get("DATABASE_URL") or f"sqlite:///{VAR_DIR / 'db.sqlite3'}",
        conn_max_age=envint("DB_CONN_MAX_AGE", 60),
        conn_health_checks=True,
    )
}
# Every request is one transaction: a failed upload leaves nothing behind.
DATABASES["default"]["ATOMIC_REQUESTS"] = True
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # Every transaction takes the write lock when it begins (waiting up to `timeout` seconds for
    # it): a transaction that read first could not upgrade later and would fail at once with
    # "database is locked" whenever two people write at the same time.
    DATABASES["default"]["OPTIONS"] = {"init_command": "PRAGMA journal_mode=WAL;", "timeout": 20,
                                       "transaction_mode": "IMMEDIATE"}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

REDIS_URL = os.environ.get("REDIS_URL", "")
# Seconds to wait for Redis (cache, broker) before giving up: with Redis down no request may hang.
REDIS_TIMEOUT = envint("REDIS_TIMEOUT", 1)
if REDIS_URL:
    # A Redis outage degrades instead of failing requests (README "Configuration"): the cache
    # misses (logged) instead of raising, so sessions come from the database and nothing is lost.
    CACHES = {"default": {"BACKEND": "django_redis.cache.RedisCache", "LOCATION": REDIS_URL,
                          "OPTIONS": {"IGNORE_EXCEPTIONS": True, "SOCKET_CONNECT_TIMEOUT": REDIS_TIMEOUT,
                                      "SOCKET_TIMEOUT": REDIS_TIMEOUT}}}
    DJANGO_REDIS_LOG_IGNORED_EXCEPTIONS = True
    # Sessions are read on every request: from Redis, written through to the database.
    SESSION_ENGINE = "django.contrib.sessions.backends.cached_db"
else:
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}
# New crowd participants (accounts made by crowd links) per fixed window, counted in the cache.
CROWD_JOIN_WINDOW_SECONDS = envint("CROWD_JOIN_WINDOW_SECONDS", 600)
CROWD_JOIN_PER_ADDRESS = envint("CROWD_JOIN_PER_ADDRESS", 30)
CROWD_JOIN_PER_STUDY = envint("CROWD_JOIN_PER_STUDY", 200)

# Celery: with no REDIS_URL every task runs in process, so the embedded default needs no broker.
CELERY_BROKER_URL = REDIS_URL or "memory://"
CELERY_RESULT_BACKEND = None
CELERY_TASK_ALWAYS_EAGER = not REDIS_URL
CELERY_TASK_EAGER_PROPAGATES = True
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
# Redis hands a task that a killed worker never acknowledged to another worker once this many
# seconds passed since its delivery: it bounds how long a killed worker stalls work. A task still
# running by then would run twice, so the time limits below (and the time box of generation
# chunks, GENERATION_CHUNK_SECONDS) keep every task well inside it. README "Generation" says why.
visibility_timeout = envint("CELERY_VISIBILITY_TIMEOUT", 180)
CELERY_TASK_SOFT_TIME_LIMIT = envint("CELERY_TASK_SOFT_TIME_LIMIT", visibility_timeout * 8 // 10)
CELERY_TASK_TIME_LIMIT = envint("CELERY_TASK_TIME_LIMIT", max(visibility_timeout * 9 // 10,
                                                              CELERY_TASK_SOFT_TIME_LIMIT + 1))
CELERY_BROKER_TRANSPORT_OPTIONS = {"visibility_timeout": visibility_timeout,
                                   "socket_connect_timeout": REDIS_TIMEOUT, "socket_timeout": 5 * REDIS_TIMEOUT}
# A publish (a .delay() after a request's commit) gives up within about a second when the broker is
# down, instead of holding the request; what it enqueues is recovered later (README "Configuration").
CELERY_BROKER_CONNECTION_TIMEOUT = REDIS_TIMEOUT
CELERY_TASK_PUBLISH_RETRY_POLICY = {"max_retries": 2, "interval_start": 0, "interval_step": 0.2,
                                    "interval_max": 0.2}

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
# Login throttling (django-axes): AxesStandaloneBackend refuses a locked-out username+address
# before ModelBackend checks the password, so the right password is refused too while locked.
AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",
    "django.contrib.auth.backends.ModelBackend",
]
AXES_ENABLED = envbool("LOGIN_THROTTLING", True)
AXES_FAILURE_LIMIT = envint("LOGIN_FAILURE_LIMIT", 5)
AXES_COOLOFF_TIME = timedelta(minutes=envint("LOGIN_LOCKOUT_MINUTES", 15))
# Locking a username everywhere would let anyone lock a researcher out; an address alone would
# lock a whole office behind one NAT. The pair stops guessing one account's password.
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]
AXES_RESET_ON_SUCCESS = True
AXES_LOCKOUT_TEMPLATE = "registration/locked_out.html"
AXES_VERBOSE = False
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "home"
LOGOUT_REDIRECT_URL = "login"

LANGUAGE_CODE = "en"
LANGUAGES = [("en", "English"), ("zh-hans", "简体中文")]
LOCALE_PATHS = [BASE_DIR / "locale"]
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = BASE_DIR / "staticfiles"
STATICFILES_DIRS = [BASE_DIR / "static"]
# Files of background file jobs (large uploads and imports waiting for a worker, written exports).
# Never served directly: the job's page checks who asks. The web and the workers must share it
# (docker-compose mounts one volume into both).
MEDIA_ROOT = Path(os.environ.get("MEDIA_ROOT", VAR_DIR / "media"))
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedStaticFilesStorage"},
}
WHITENOISE_USE_FINDERS = DEBUG

# Uploaded files above this many bytes are refused with a 413 before any parsing.
EVALSITE_MAX_UPLOAD_BYTES = envint("EVALSITE_MAX_UPLOAD_BYTES", 256 * 1024 * 1024)
# The longest row of an upload or import (a line, a CSV record, an AlpacaEval entry), in bytes; a
# longer one is refused as a located error without being held in memory. 0: derived from the text
# limits below, every text at its limit written at its longest plus 1 MiB (about 4.4 MiB).
EVALSITE_MAX_ROW_BYTES = envint("EVALSITE_MAX_ROW_BYTES", 0)
# Uploaded outputs and rankings files above this many bytes are stored and loaded by a worker (a
# FileJob with a progress bar, which survives a worker restart); smaller ones in the request.
EVALSITE_BACKGROUND_BYTES = envint("EVALSITE_BACKGROUND_BYTES", 5 * 1024 * 1024)
# A prepared rankings export is kept this many hours (or until a newer one of the study replaces it).
EVALSITE_EXPORT_KEEP_HOURS = envint("EVALSITE_EXPORT_KEEP_HOURS", 24)
# Longest prompt, response or reasoning accepted, in characters.
EVALSITE_MAX_TEXT_CHARS = envint("EVALSITE_MAX_TEXT_CHARS", 50_000)
EVALSITE_MAX_REASONING_CHARS = envint("EVALSITE_MAX_REASONING_CHARS", 200_000)
# An upload stops listing errors after this many (it is refused either way).
EVALSITE_MAX_REPORTED_ERRORS = 100

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        # Token first, so an anonymous API call gets 401 with a WWW-Authenticate header.
        "rest_framework.authentication.TokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "DEFAULT_PAGINATION_CLASS": "annotations.pagination.BoundedLimitOffsetPagination",
    "PAGE_SIZE": 100,
}
SPECTACULAR_SETTINGS = {
    "TITLE": "evalsite API",
    "DESCRIPTION": "Studies, items, systems and responses for blind ranking evaluations.",
    "VERSION": "0.1.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    # A study's status and a file job's are both called `status`: each enum gets its own name.
    "ENUM_NAME_OVERRIDES": {"StatusEnum": "annotations.models.Study.Status",
                            "FileJobStatusEnum": "annotations.models.FileJob.Status"},
}

# Content-Security-Policy (django-csp) on every page: scripts and styles only from our own static
# files, no inline script, style or handler (templates use static/js/ and data-* attributes).
# The API docs pages relax it per view (annotations/urls.py).
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": [SELF],
        "script-src": [SELF],
        "style-src": [SELF],
        "img-src": [SELF],
        "font-src": [SELF],
        "connect-src": [SELF],
        "object-src": [NONE],
        "base-uri": [NONE],
        "frame-ancestors": [NONE],
        "form-action": [SELF],
    },
}

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "root": {"handlers": ["console"], "level": os.environ.get("LOG_LEVEL", "INFO")},
}

# Production hardening: on whenever DEBUG is off (python manage.py check --deploy passes).
if not DEBUG:
    SECURE_SSL_REDIRECT = envbool("SECURE_SSL_REDIRECT", True)
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    SECURE_HSTS_SECONDS = envint("SECURE_HSTS_SECONDS", 60 * 60 * 24 * 365)
    SECURE_HSTS_INCLUDE_SUBDOMAINS = envbool("SECURE_HSTS_INCLUDE_SUBDOMAINS", True)
    SECURE_HSTS_PRELOAD = envbool("SECURE_HSTS_PRELOAD", True)
    SESSION_COOKIE_SECURE = True
    CSRF_COOKIE_SECURE = True
    # The health check is probed over plain HTTP inside the container network.
    SECURE_REDIRECT_EXEMPT = [r"^healthz$"]

# vLLM's OpenAI-compatible servers (several serving the same model share the load).
VLLM_BASE_URLS = envlist("VLLM_BASE_URLS", ["http://127.0.0.1:8000/v1"])
VLLM_API_KEY = os.environ.get("VLLM_API_KEY", "")

# Generation jobs (generation/): their tasks run on a queue of their own, so a long job never
# holds up leaderboard refreshes; the worker consumes both queues (docker-compose.yml).
CELERY_TASK_ROUTES = {"generation.tasks.*": {"queue": "generation"}}
# Items per task: small enough that a redelivered chunk repeats little, large enough to keep
# GENERATION_MAX_IN_FLIGHT requests busy with few tasks.
GENERATION_CHUNK_SIZE = envint("GENERATION_CHUNK_SIZE", 64)
GENERATION_MAX_IN_FLIGHT = envint("GENERATION_MAX_IN_FLIGHT", 64)  # per vLLM server
# A chunk sends requests for GENERATION_CHUNK_SECONDS, waits for those in flight until
# GENERATION_CHUNK_HARD_SECONDS (before the soft time limit), stores what finished and hands its
# pending items to a continuation chunk; so no chunk outlives the visibility timeout.
GENERATION_CHUNK_HARD_SECONDS = max(1, CELERY_TASK_SOFT_TIME_LIMIT * 9 // 10)
GENERATION_CHUNK_SECONDS = min(envint("GENERATION_CHUNK_SECONDS", 100), GENERATION_CHUNK_HARD_SECONDS)
# Seconds per request; a request must finish inside one chunk, so it is clamped to the hard bound.
GENERATION_REQUEST_TIMEOUT = min(envint("GENERATION_REQUEST_TIMEOUT", 120), GENERATION_CHUNK_HARD_SECONDS)
GENERATION_BACKEND_RETRIES = envint("GENERATION_BACKEND_RETRIES", 3)  # per request, in the task
# Then the chunk task itself retries its still-failing items, backing off exponentially.
GENERATION_TASK_RETRIES = envint("GENERATION_TASK_RETRIES", 5)
GENERATION_RETRY_BACKOFF = envint("GENERATION_RETRY_BACKOFF", 10)  # seconds, doubled per retry
GENERATION_RETRY_BACKOFF_MAX = envint("GENERATION_RETRY_BACKOFF_MAX", 600)
# How often a worker sweeps Redis for tasks whose worker died before acknowledging them (kombu
# scans every interval x throttle seconds; each task comes back once visibility_timeout passed).
CELERY_BROKER_TRANSPORT_OPTIONS.update(
    unacked_restore_interval=envint("CELERY_UNACKED_RESTORE_INTERVAL", 10),
    unacked_restore_throttle=envint("CELERY_UNACKED_RESTORE_THROTTLE", 1),
)
