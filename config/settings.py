"""Steward settings: one module, configured from the environment (README.md lists every variable).

Defaults work on a developer's machine; production mode (DEBUG off) refuses to start with a default secret key.
"""

from __future__ import annotations

from base64 import urlsafe_b64encode
from pathlib import Path

import dj_database_url
from cryptography.fernet import Fernet
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from django.core.exceptions import ImproperlyConfigured

from config import localservices
from config.env import env_bool, env_choice, env_float, env_int, env_list, env_str, env_url

BASE_DIR = Path(__file__).resolve().parent.parent

# --- Core --------------------------------------------------------------------------------------------------------

DEBUG = env_bool("DEBUG", False)
_DEV_SECRET_KEY = "steward-insecure-development-key-do-not-use-in-production"
SECRET_KEY = env_str("SECRET_KEY", _DEV_SECRET_KEY)
if not DEBUG and SECRET_KEY == _DEV_SECRET_KEY:
    raise ImproperlyConfigured(
        "SECRET_KEY must be set when DEBUG is off (production mode): a long random string, e.g. the output of "
        "`python -c 'import secrets; print(secrets.token_urlsafe(50))'`. For development set DEBUG=true."
    )
if len(SECRET_KEY) < 32:
    raise ImproperlyConfigured("SECRET_KEY must be at least 32 characters long.")

ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", ["localhost", "127.0.0.1", "[::1]"] if DEBUG else [])
if not DEBUG and not ALLOWED_HOSTS:
    raise ImproperlyConfigured("ALLOWED_HOSTS must be set when DEBUG is off: a comma-separated list of host names.")
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS", [])
for _origin in CSRF_TRUSTED_ORIGINS:
    if not _origin.startswith(("http://", "https://")):
        raise ImproperlyConfigured(
            f"CSRF_TRUSTED_ORIGINS must list origins with a scheme, e.g. https://support.example.com; got {_origin!r}."
        )

SITE_ID = 1
SITE_URL = env_url("SITE_URL", "http://127.0.0.1:8000", schemes=["http", "https"])

INSTALLED_APPS = [
    "daphne",  # first: its runserver serves websockets too
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "django.contrib.sites",  # django-helpdesk
    "django.contrib.humanize",  # django-helpdesk
    "django.contrib.postgres",
    "rest_framework",
    "drf_spectacular",
    "guardian",
    "channels",
    "django_celery_beat",
    "helpdesk",
    # Steward
    "governance",
    "knowledge",
    "connectors",
    "analytics",
    "agent",
    # The evidence loop: regression suites run through the agent's turn code; QA reviews its transcripts.
    "suites",
    "qa",
    # The support lead's dashboard, ROI and roadmap: reads every app above, read by none.
    "dashboard",
    # The demo company's own CRM and order system, served at /brewline-api/ and reached only over HTTP.
    "brewline",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "config.urls"
WSGI_APPLICATION = "config.wsgi.application"
ASGI_APPLICATION = "config.asgi.application"

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

AUTHENTICATION_BACKENDS = [
    "django.contrib.auth.backends.ModelBackend",
    "guardian.backends.ObjectPermissionBackend",
]
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

LANGUAGE_CODE = "en-us"
TIME_ZONE = env_str("TIME_ZONE", "UTC")
USE_I18N = True
USE_TZ = True

STATIC_URL = "/static/"
STATIC_ROOT = BASE_DIR / "var" / "static"
STATICFILES_DIRS = [BASE_DIR / "static"]
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": "whitenoise.storage.CompressedManifestStaticFilesStorage"
        if not DEBUG
        else "django.contrib.staticfiles.storage.StaticFilesStorage"
    },
}
MEDIA_ROOT = Path(env_str("MEDIA_ROOT", str(BASE_DIR / "var" / "media")))
MEDIA_URL = "/media/"
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# --- Database: PostgreSQL with pgvector, always -------------------------------------------------------------------

DATABASE_URL = env_url("DATABASE_URL", None, schemes=["postgres", "postgresql"])
if DATABASE_URL is None:
    # No outside database configured: the embedded PostgreSQL 18 + pgvector under var/pg (config/localservices.py).
    try:
        DATABASE_URL, _ = localservices.embedded_pg_ensure_running()
    except localservices.ServiceError as exc:
        raise ImproperlyConfigured(
            f"DATABASE_URL is not set and the embedded PostgreSQL could not start: {exc}"
        ) from None
DATABASES = {
    "default": dj_database_url.parse(
        DATABASE_URL,
        conn_max_age=env_int("DATABASE_CONN_MAX_AGE", 60, minimum=0),
        conn_health_checks=True,
    )
}
# Django's backend with a connection check that needs no round trip when nothing can be wrong (config/postgresql).
DATABASES["default"]["ENGINE"] = "config.postgresql"
DATABASES["default"]["OPTIONS"] = {"connect_timeout": env_int("DATABASE_CONNECT_TIMEOUT", 5, minimum=1)}
# A connection pool (psycopg_pool, Django's "pool" option) of at most this many connections per process; 0: none.
# Opening a PostgreSQL connection costs 5-11 ms here (a backend process is forked and initialised), which the web
# process paid on every websocket frame it stored when it closed each connection (docs/benchmarks.md, "Chat
# latency"). config/asgi.py turns it on for daphne; Celery's prefork children keep one persistent connection each.
DATABASE_POOL_MAX_SIZE = env_int("DATABASE_POOL_MAX_SIZE", 0, minimum=0, maximum=1000)
if DATABASE_POOL_MAX_SIZE:
    if DATABASES["default"]["CONN_MAX_AGE"]:
        raise ImproperlyConfigured(
            "DATABASE_POOL_MAX_SIZE needs DATABASE_CONN_MAX_AGE=0: a pooled connection goes back to the pool "
            "after each request instead of being kept by its thread."
        )
    # Each connection is checked as it leaves the pool (conn_health_checks above; config/postgresql: a round trip only
    # when its socket says something happened), so one broken by a server restart is replaced, not handed out.
    DATABASES["default"]["OPTIONS"]["pool"] = {
        "min_size": min(2, DATABASE_POOL_MAX_SIZE),
        "max_size": DATABASE_POOL_MAX_SIZE,
        # Seconds a thread waits for a free connection before its request fails with a clear error.
        "timeout": env_int("DATABASE_POOL_TIMEOUT", 10, minimum=1),
    }

# --- Redis: cache, Celery broker and results, Channels layer -------------------------------------------------------

REDIS_URL = env_url("REDIS_URL", localservices.DEFAULT_REDIS_URL, schemes=["redis", "rediss", "unix"])
# A namespace for everything this deployment keeps in a shared Redis (queue, control exchange, channel and cache key
# prefixes). Two deployments, or a test run beside `make run`, on one Redis must not steal each other's tasks.
STEWARD_NAMESPACE = env_str("STEWARD_NAMESPACE", "steward")
if not STEWARD_NAMESPACE.replace("-", "").replace("_", "").isalnum():
    raise ImproperlyConfigured(f"STEWARD_NAMESPACE must be letters, digits, - or _; got {STEWARD_NAMESPACE!r}.")

CACHES = {
    "default": {
        "BACKEND": "django.core.cache.backends.redis.RedisCache",
        "LOCATION": REDIS_URL,
        "KEY_PREFIX": STEWARD_NAMESPACE,
        "OPTIONS": {"socket_connect_timeout": 2, "socket_timeout": 2},
    }
}

CHANNEL_LAYERS = {
    "default": {
        "BACKEND": "config.channel_layer.RedisChannelLayer",  # channels_redis's, cheaper group_send
        # redis-py 8 reads with a 5 s socket timeout by default, the same 5 s channels_redis blocks in BZPOPMIN while a
        # connection is idle: the read timed out first and every websocket quiet for 5 s died with 1011. Read longer.
        "CONFIG": {
            "hosts": [{"address": REDIS_URL, "socket_timeout": 15}],
            "prefix": f"{STEWARD_NAMESPACE}:asgi",
            "capacity": 500,
            "expiry": 60,
        },
    }
}

# Celery (config/celery.py reads the CELERY_* names).
CELERY_BROKER_URL = REDIS_URL
CELERY_RESULT_BACKEND = REDIS_URL
CELERY_TASK_DEFAULT_QUEUE = STEWARD_NAMESPACE
CELERY_CONTROL_EXCHANGE = f"{STEWARD_NAMESPACE}-control"
CELERY_EVENT_EXCHANGE = f"{STEWARD_NAMESPACE}-event"
CELERY_TASK_SOFT_TIME_LIMIT = env_int("CELERY_TASK_SOFT_TIME_LIMIT", 60, minimum=1)
CELERY_TASK_TIME_LIMIT = env_int("CELERY_TASK_TIME_LIMIT", 90, minimum=2)
if CELERY_TASK_TIME_LIMIT <= CELERY_TASK_SOFT_TIME_LIMIT:
    raise ImproperlyConfigured("CELERY_TASK_TIME_LIMIT must be greater than CELERY_TASK_SOFT_TIME_LIMIT.")
# With acks_late, Redis redelivers a task not acknowledged within the visibility timeout; it must outlast the longest
# task (its hard limit) or a slow task runs twice (Celery docs, "Using Redis: Caveats").
# The longest task is a knowledge ingestion run (hard limit 31 min, knowledge/tasks.py).
CELERY_VISIBILITY_TIMEOUT = max(CELERY_TASK_TIME_LIMIT * 2 + 60, 3600)
CELERY_BROKER_TRANSPORT_OPTIONS = {"visibility_timeout": CELERY_VISIBILITY_TIMEOUT}
CELERY_RESULT_BACKEND_TRANSPORT_OPTIONS = {"visibility_timeout": CELERY_VISIBILITY_TIMEOUT}

# --- Responders and embeddings -------------------------------------------------------------------------------------

STEWARD_RESPONDER = env_choice("STEWARD_RESPONDER", "embedded", ["embedded", "openai"])
OPENAI_BASE_URL = env_url("OPENAI_BASE_URL", None, schemes=["http", "https"])
OPENAI_API_KEY = env_str("OPENAI_API_KEY", None)
OPENAI_MODEL = env_str("OPENAI_MODEL", None)
OPENAI_TIMEOUT = env_float("OPENAI_TIMEOUT", 30.0, minimum=1.0)
if STEWARD_RESPONDER == "openai":
    for _name, _value in (
        ("OPENAI_BASE_URL", OPENAI_BASE_URL),
        ("OPENAI_API_KEY", OPENAI_API_KEY),
        ("OPENAI_MODEL", OPENAI_MODEL),
    ):
        if not _value:
            raise ImproperlyConfigured(f"{_name} must be set when STEWARD_RESPONDER=openai.")

STEWARD_EMBEDDINGS = env_choice("STEWARD_EMBEDDINGS", "embedded", ["embedded", "openai"])
STEWARD_EMBEDDING_DIMENSIONS = env_int("STEWARD_EMBEDDING_DIMENSIONS", 384, minimum=1, maximum=16000)
STEWARD_EMBEDDING_THREADS = env_int("STEWARD_EMBEDDING_THREADS", 2, minimum=1, maximum=64)
STEWARD_EMBEDDING_BATCH_SIZE = env_int("STEWARD_EMBEDDING_BATCH_SIZE", 16, minimum=1, maximum=512)
# The web process embeds a customer's question while its turn waits for a worker (agent/query_vectors.py).
STEWARD_EMBED_AHEAD = env_bool("STEWARD_EMBED_AHEAD", True)
EMBEDDINGS_BASE_URL = env_url("EMBEDDINGS_BASE_URL", OPENAI_BASE_URL, schemes=["http", "https"])
EMBEDDINGS_API_KEY = env_str("EMBEDDINGS_API_KEY", OPENAI_API_KEY)
EMBEDDINGS_MODEL = env_str("EMBEDDINGS_MODEL", None)
if STEWARD_EMBEDDINGS == "openai" and not (EMBEDDINGS_BASE_URL and EMBEDDINGS_MODEL):
    raise ImproperlyConfigured(
        "EMBEDDINGS_BASE_URL (or OPENAI_BASE_URL) and EMBEDDINGS_MODEL must be set when STEWARD_EMBEDDINGS=openai."
    )

# --- Secrets: keys for connector credentials encrypted in the database (governance/secrets.py) -----------------------

# Fernet keys: the first encrypts, every one decrypts, so a new key goes first and the old one stays until
# `secret_reencrypt_all` has run. Never defaulted in production: without a key, encrypted secrets cannot be created
# or read there (environment-variable secrets still work).
STEWARD_SECRETS_KEYS = env_list("STEWARD_SECRETS_KEYS", [])
for _position, _key in enumerate(STEWARD_SECRETS_KEYS, start=1):
    try:
        Fernet(_key)
    except ValueError:
        # The message names the position, never the value: it may be one character away from a real key.
        raise ImproperlyConfigured(
            f"STEWARD_SECRETS_KEYS item {_position} is not a Fernet key (32 bytes, url-safe base64); generate one "
            "with `python -c 'from cryptography.fernet import Fernet; print(Fernet.generate_key().decode())'`."
        ) from None
if DEBUG and not STEWARD_SECRETS_KEYS:
    # So that `make run` works with no set-up: one key derived from SECRET_KEY (HKDF, RFC 5869), stable across runs.
    STEWARD_SECRETS_KEYS = [
        urlsafe_b64encode(
            HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=b"steward secrets development key").derive(
                SECRET_KEY.encode()
            )
        ).decode()
    ]

# --- Chat widget -------------------------------------------------------------------------------------------------

# Origins (scheme://host[:port]) whose pages may embed the chat widget; Steward's own SITE_URL is always allowed.
# A conversation with the AI that has been quiet this long is closed (the widget asks for a rating; containment
# counts it). Conversations waiting for or with a person are never closed by time.
STEWARD_IDLE_CLOSE_MINUTES = env_int("STEWARD_IDLE_CLOSE_MINUTES", 30, minimum=1, maximum=7 * 24 * 60)
# A QA review passes at this weighted score (0-100) when no auto-fail criterion failed (qa/scoring.py).
STEWARD_QA_PASS_MARK = env_float("STEWARD_QA_PASS_MARK", 80.0, minimum=0.0, maximum=100.0)
# The nightly analytics rollup recomputes this many days before today: a ticket reopened or a customer returning on
# the same topic within the resolution window changes an earlier day's figures (docs/analytics.md).
STEWARD_ROLLUP_REFRESH_DAYS = env_int("STEWARD_ROLLUP_REFRESH_DAYS", 8, minimum=1, maximum=90)
# A customer coming back about the same intent this many days after a conversation closed is a return on the topic;
# the resolution metrics (first-contact, durable, deflection) judge a conversation over the same days after its close
# (docs/analytics.md). Keep STEWARD_ROLLUP_REFRESH_DAYS above it, so a day's rollup is recomputed once it has matured.
STEWARD_RETURN_WINDOW_DAYS = env_int("STEWARD_RETURN_WINDOW_DAYS", 7, minimum=1, maximum=90)
STEWARD_WIDGET_ORIGINS = env_list("STEWARD_WIDGET_ORIGINS", [])
for _origin in STEWARD_WIDGET_ORIGINS:
    if not _origin.startswith(("http://", "https://")) or _origin.rstrip("/") != _origin:
        raise ImproperlyConfigured(
            f"STEWARD_WIDGET_ORIGINS must list origins like https://www.example.com (no path); got {_origin!r}."
        )

# --- Customer identity ----------------------------------------------------------------------------------------------

# The SecretReference holding the HMAC key the host site signs identity tokens with (agent/identity.py).
STEWARD_IDENTITY_SECRET_NAME = env_str("STEWARD_IDENTITY_SECRET_NAME", "identity_token_secret")

# --- Knowledge ----------------------------------------------------------------------------------------------------

# Folder sources may only be read below these directories, so an admin cannot point one at any file the worker can
# read. An empty value (STEWARD_KNOWLEDGE_FOLDER_ROOTS="") lifts the restriction.
# Stale sources are excluded from answers; "downrank" serves them below fresh ones instead.
KNOWLEDGE_STALE_POLICY = env_choice("KNOWLEDGE_STALE_POLICY", "exclude", ["exclude", "downrank"])
KNOWLEDGE_FOLDER_ROOTS = env_list("STEWARD_KNOWLEDGE_FOLDER_ROOTS", [str(BASE_DIR / "var" / "knowledge")])

# --- PII masking ------------------------------------------------------------------------------------------------

# Regions whose national phone formats are recognised without a +country prefix (international numbers always are).
PII_PHONE_REGIONS = env_list("STEWARD_PII_PHONE_REGIONS", ["US", "GB", "DE", "FR", "NL"])
for _region in PII_PHONE_REGIONS:
    if not (len(_region) == 2 and _region.isalpha() and _region.isupper()):
        raise ImproperlyConfigured(
            f"STEWARD_PII_PHONE_REGIONS must list ISO 3166 two-letter region codes (e.g. US,GB); got {_region!r}."
        )

# --- REST API ------------------------------------------------------------------------------------------------------

REST_FRAMEWORK = {
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "rest_framework.authentication.SessionAuthentication",
        "rest_framework.authentication.BasicAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAdminUser"],
    # Rate limits by client address trust X-Forwarded-For only through this many proxies in front of Steward (0: the
    # socket's address; a client's own X-Forwarded-For header is never believed).
    "NUM_PROXIES": env_int("STEWARD_NUM_PROXIES", 0, minimum=0, maximum=10),
}
SPECTACULAR_SETTINGS = {
    "TITLE": "Steward API",
    "DESCRIPTION": "Governed AI customer-service agent: knowledge, governance and conversation APIs.",
    "VERSION": "0.1.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "PREPROCESSING_HOOKS": ["config.openapi.exclude_foreign_endpoints"],
}

# --- django-helpdesk (the embedded helpdesk) -------------------------------------------------------------------------

# Must be False before the first migrate: otherwise helpdesk's migrations depend on pinax_teams (STACK-NOTES.md).
HELPDESK_TEAMS_MODE_ENABLED = False
HELPDESK_DEFAULT_SETTINGS = {
    "use_email_as_submitter": True,
    "email_on_ticket_assign": False,
    "email_on_ticket_change": False,
    "login_view_ticketlist": True,
    "tickets_per_page": 25,
}
HELPDESK_REDIRECT_TO_LOGIN_BY_DEFAULT = True
LOGIN_URL = "/admin/login/"
LOGIN_REDIRECT_URL = "/helpdesk/"

# --- Email ---------------------------------------------------------------------------------------------------------

EMAIL_BACKEND = env_str(
    "EMAIL_BACKEND",
    "django.core.mail.backends.console.EmailBackend" if DEBUG else "django.core.mail.backends.smtp.EmailBackend",
)
EMAIL_HOST = env_str("EMAIL_HOST", "localhost")
EMAIL_PORT = env_int("EMAIL_PORT", 25, minimum=1, maximum=65535)
EMAIL_HOST_USER = env_str("EMAIL_HOST_USER", "")
EMAIL_HOST_PASSWORD = env_str("EMAIL_HOST_PASSWORD", "")
EMAIL_USE_TLS = env_bool("EMAIL_USE_TLS", False)
DEFAULT_FROM_EMAIL = env_str("DEFAULT_FROM_EMAIL", "steward@localhost")
# For EMAIL_BACKEND=django.core.mail.backends.filebased.EmailBackend (the end-to-end tests read codes from there).
EMAIL_FILE_PATH = env_str("EMAIL_FILE_PATH", str(BASE_DIR / "var" / "mail"))
SERVER_EMAIL = DEFAULT_FROM_EMAIL

# --- Security (production mode) --------------------------------------------------------------------------------------

SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https") if env_bool("SECURE_PROXY_SSL_HEADER", False) else None
SECURE_SSL_REDIRECT = env_bool("SECURE_SSL_REDIRECT", not DEBUG)
# /healthz is probed by load balancers over plain HTTP inside the network.
SECURE_REDIRECT_EXEMPT = [r"^healthz$"]
SESSION_COOKIE_SECURE = env_bool("SESSION_COOKIE_SECURE", not DEBUG)
CSRF_COOKIE_SECURE = env_bool("CSRF_COOKIE_SECURE", not DEBUG)
SECURE_HSTS_SECONDS = env_int("SECURE_HSTS_SECONDS", 0 if DEBUG else 31536000, minimum=0)
SECURE_HSTS_INCLUDE_SUBDOMAINS = env_bool("SECURE_HSTS_INCLUDE_SUBDOMAINS", not DEBUG)
SECURE_HSTS_PRELOAD = env_bool("SECURE_HSTS_PRELOAD", False)
SECURE_CONTENT_TYPE_NOSNIFF = True
X_FRAME_OPTIONS = "DENY"
# security.W021 (HSTS preload) is silenced by default: submitting a domain to the browsers' preload list is a
# commitment its owner makes deliberately; set SECURE_HSTS_PRELOAD=true (and this list) when you do.
SILENCED_SYSTEM_CHECKS = env_list("SILENCED_SYSTEM_CHECKS", [] if SECURE_HSTS_PRELOAD else ["security.W021"])

# --- Logging -------------------------------------------------------------------------------------------------------

LOG_LEVEL = env_choice("LOG_LEVEL", "INFO", ["DEBUG", "INFO", "WARNING", "ERROR"])
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": LOG_LEVEL},
    "loggers": {"pgserver": {"level": "WARNING"}, "daphne": {"level": "WARNING"}},
}
