"""Lepton settings: one module, every deployment choice read from the environment.

With no environment variables at all Lepton runs on a laptop: a SQLite file under
`var/`, django-q2's ORM broker, files on the local disk, DEBUG on. Production sets
`DEBUG=0`, a real `SECRET_KEY`, `ALLOWED_HOSTS`, and usually `DATABASE_URL` and
`REDIS_URL` (see README.md, "Configuration").
"""

import os
from datetime import timedelta
from pathlib import Path

import dj_database_url
from csp.constants import NONCE, NONE, SELF
from django.core.exceptions import ImproperlyConfigured

from lepton_web.env import env_bool, env_int, env_list, env_s3_options, env_str, s3_storage

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = Path(env_str("LEPTON_VAR_DIR", str(BASE_DIR / "var")))

DEBUG = env_bool("DEBUG", True)

# The development key is public (it is in this file); production must bring its own.
DEVELOPMENT_SECRET_KEY = "lepton-development-key-public-and-insecure-never-use-it-in-production"  # noqa: S105
SECRET_KEY = env_str("SECRET_KEY", DEVELOPMENT_SECRET_KEY)
if not DEBUG and (
    SECRET_KEY == DEVELOPMENT_SECRET_KEY
    or SECRET_KEY.startswith("django-insecure")
    or len(SECRET_KEY) < 50
    or len(set(SECRET_KEY)) < 5
):
    raise ImproperlyConfigured(
        "SECRET_KEY must be set to a random value of at least 50 characters when DEBUG is off; "
        "generate one with: python -c 'import secrets; print(secrets.token_urlsafe(64))'"
    )

ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", ["127.0.0.1", "localhost", "[::1]"] if DEBUG else [])
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS", [])

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "django_filters",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "django_htmx",
    "django_q",
    "axes",
    "csp",
    "apps.core",
    "apps.accounts",
    "apps.datasets",
    "apps.registry",
    "apps.nodes",
    "apps.jobs",
    "apps.deployments",
    "apps.experiments",
    "apps.dashboard",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "csp.middleware.CSPMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "apps.core.middleware.RequestSizeLimitMiddleware",  # before CSRF: it may read the body
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
    "axes.middleware.AxesMiddleware",  # last: turns a lockout flagged during the view into the lockout page
]

ROOT_URLCONF = "lepton_web.urls"
WSGI_APPLICATION = "lepton_web.wsgi.application"
ASGI_APPLICATION = "lepton_web.asgi.application"

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
                "apps.core.context_processors.navigation",
                "apps.accounts.context_processors.current_team",
            ],
        },
    },
]

# --- Database -------------------------------------------------------------------------
# SQLite is shared by the web process and the workers: WAL lets readers run beside a
# writer, IMMEDIATE transactions take the write lock up front (no upgrade deadlocks),
# and the timeout waits for the lock instead of failing with "database is locked".
SQLITE_OPTIONS = {
    "transaction_mode": "IMMEDIATE",
    "timeout": 20,
    "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
}
DATABASE_URL = env_str("DATABASE_URL", f"sqlite:///{VAR_DIR / 'lepton.sqlite3'}")
DATABASES = {
    "default": dj_database_url.parse(DATABASE_URL, conn_max_age=env_int("DB_CONN_MAX_AGE", 60), conn_health_checks=True)
}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    DATABASES["default"]["OPTIONS"] = {**SQLITE_OPTIONS, **DATABASES["default"].get("OPTIONS", {})}
    DATABASES["default"]["CONN_MAX_AGE"] = 0
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# --- Cache and queue -----------------------------------------------------------------
REDIS_URL = env_str("REDIS_URL", "")
if REDIS_URL:
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": REDIS_URL}}
else:
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}

# django-q2 hands a task out again when it is still unacknowledged after `retry`
# seconds, so `retry` must exceed `timeout`, and `timeout` must exceed the longest job.
# Attempts are fenced in our own Job rows, so django-q2 itself never retries.
TASK_TIMEOUT_SECONDS = env_int("LEPTON_TASK_TIMEOUT", 24 * 3600)
Q_CLUSTER = {
    "name": "lepton",
    "workers": env_int("LEPTON_WORKERS", 2),
    "timeout": TASK_TIMEOUT_SECONDS,
    "retry": TASK_TIMEOUT_SECONDS + 600,
    "max_attempts": 1,
    "ack_failures": True,
    "catch_up": False,
    "daemonize_workers": False,
    "save_limit": 1000,
    "label": "Task queue",
    # A node agent runs its own cluster (Q_CLUSTER_NAME=lepton-node-<name>) next to the general one.
    "ALT_CLUSTERS": {},
}
if REDIS_URL:
    Q_CLUSTER["redis"] = REDIS_URL
else:
    Q_CLUSTER["orm"] = "default"

# --- Auth ------------------------------------------------------------------------------
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
# Password guessing: django-axes counts failed logins (the form, the admin and the token API all
# call authenticate() with the request) and refuses further tries for a while once a username,
# or an address, reaches the limit. Addresses follow the same proxy rule as the throttles.
AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",  # first: refuses a locked-out attempt before any password check
    "django.contrib.auth.backends.ModelBackend",
]
AXES_FAILURE_LIMIT = env_int("LEPTON_LOGIN_FAILURE_LIMIT", 10)
AXES_COOLOFF_TIME = timedelta(minutes=env_int("LEPTON_LOGIN_LOCKOUT_MINUTES", 15))
AXES_LOCKOUT_PARAMETERS = ["username", "ip_address"]  # either one at the limit locks
AXES_CLIENT_IP_CALLABLE = "apps.core.client_address.client_address"
AXES_RESET_ON_SUCCESS = True
# A try during the lockout does not restart it, so "try again in N minutes" stays true.
AXES_RESET_COOL_OFF_ON_FAILURE_DURING_LOCKOUT = False
AXES_LOCKOUT_CALLABLE = "apps.accounts.views.login_locked_out"
AXES_VERBOSE = False  # its start-up banner; failures are still logged
AXES_DISABLE_ACCESS_LOG = True  # no row per successful login: that table would only grow

LOGIN_URL = "accounts:login"
LOGIN_REDIRECT_URL = "dashboard:home"
LOGOUT_REDIRECT_URL = "accounts:login"

# --- Security (production defaults follow DEBUG; each can be overridden) ----------------
SECURE_SSL_REDIRECT = env_bool("SECURE_SSL_REDIRECT", not DEBUG)
SECURE_HSTS_SECONDS = env_int("SECURE_HSTS_SECONDS", 0 if DEBUG else 31_536_000)
SECURE_HSTS_INCLUDE_SUBDOMAINS = env_bool("SECURE_HSTS_INCLUDE_SUBDOMAINS", not DEBUG)
SECURE_HSTS_PRELOAD = env_bool("SECURE_HSTS_PRELOAD", not DEBUG)
SESSION_COOKIE_SECURE = env_bool("SESSION_COOKIE_SECURE", not DEBUG)
CSRF_COOKIE_SECURE = env_bool("CSRF_COOKIE_SECURE", not DEBUG)
if env_bool("LEPTON_BEHIND_TLS_PROXY", False):
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
SECURE_REFERRER_POLICY = "same-origin"
# How many reverse proxies of our own stand in front of the app. Each appends the address it
# saw to X-Forwarded-For; only those last N entries are believed. 0 (no proxy): the header is
# ignored and REMOTE_ADDR is the client, so a client cannot pick its own throttle bucket.
LEPTON_NUM_PROXIES = env_int("LEPTON_NUM_PROXIES", 0)
if LEPTON_NUM_PROXIES < 0:
    raise ImproperlyConfigured(f"LEPTON_NUM_PROXIES must be 0 or more; got {LEPTON_NUM_PROXIES}")
X_FRAME_OPTIONS = "DENY"
# Content-Security-Policy (django-csp): every asset is our own (vendored, no CDN), scripts run
# only from files or with this response's nonce, so an injected <script> or onclick= is refused.
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": [SELF],
        "script-src": [SELF, NONCE],
        # Plotly adds two empty <style> elements and fills them through the CSSOM: only those
        # two hashes (the empty string's and its other one's, as Chromium reports them) are allowed.
        "style-src": [
            SELF,
            "'sha256-47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU='",
            "'sha256-ji27qzEtxXZW+7dun6UwjHXJ18e6WAin1VvNtkzIE/o='",
        ],
        # Plotly (its d3) writes chart styles with setAttribute("style", ...), which only this
        # allows. A style attribute cannot run script or hold a selector, and url() in it is
        # still held to img-src 'self'; our own templates use none (lepton.js sizes the bars).
        "style-src-attr": ["'unsafe-inline'"],
        "img-src": [SELF, "data:"],  # Bootstrap's icons and Swagger UI's logo are data: URLs
        "font-src": [SELF, "data:"],
        "connect-src": [SELF],
        "object-src": [NONE],
        "base-uri": [SELF],
        "form-action": [SELF],
        "frame-ancestors": [NONE],
    },
}

# --- Web server (`manage.py serve`, `make serve`) --------------------------------------------
LEPTON_BIND = env_str("LEPTON_BIND", "127.0.0.1:8000")
# Worker processes: one per core this process may use (the affinity mask, where there is one).
CORES = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
LEPTON_WEB_WORKERS = env_int("LEPTON_WEB_WORKERS", CORES)
# Threads per worker: they run requests while others wait on the database; idle kept-alive
# connections wait in the worker's poller and hold none.
LEPTON_WEB_THREADS = env_int("LEPTON_WEB_THREADS", 4)
# `serve` runs this machine's node agent too, under this name; a web machine that runs no jobs sets it off.
LEPTON_SERVE_NODE_AGENT = env_bool("LEPTON_SERVE_NODE_AGENT", True)
LEPTON_NODE_NAME = env_str("LEPTON_NODE_NAME", "local")

# --- Files -------------------------------------------------------------------------------
STATIC_URL = "/static/"
STATIC_ROOT = Path(env_str("LEPTON_STATIC_ROOT", str(BASE_DIR / "staticfiles")))
STATICFILES_DIRS = [BASE_DIR / "static"]
MEDIA_URL = "/media/"
MEDIA_ROOT = Path(env_str("LEPTON_MEDIA_ROOT", str(VAR_DIR / "media")))
# S3 storage: what workers read is downloaded once into LEPTON_CACHE_DIR, least recently used
# copies evicted past this size (a copy being downloaded, or held open through it, is never evicted).
LEPTON_CACHE_MAX_BYTES = env_int("LEPTON_CACHE_MAX_BYTES", 20 * 1024**3)
# Uploads to S3 go up in parts of this size, a few at a time: what a web process holds of an upload.
LEPTON_S3_PART_BYTES = env_int("LEPTON_S3_PART_BYTES", 8 * 1024**2)
# Artifacts: the local disk by default; an S3-compatible bucket when LEPTON_STORAGE_URL or
# AWS_STORAGE_BUCKET_NAME is set (then nodes share no disk with the web machine, see README).
S3_OPTIONS = env_s3_options()
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"}
    if S3_OPTIONS is None
    else s3_storage(
        S3_OPTIONS, part_bytes=LEPTON_S3_PART_BYTES, url_seconds=env_int("LEPTON_DOWNLOAD_URL_SECONDS", 600)
    ),
    "staticfiles": {
        "BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"
        if DEBUG
        else "whitenoise.storage.CompressedManifestStaticFilesStorage"
    },
}
WHITENOISE_USE_FINDERS = DEBUG
LEPTON_CACHE_DIR = Path(env_str("LEPTON_CACHE_DIR", str(VAR_DIR / "cache")))
# Uploads stream to temp files here, not in $TMPDIR: a web process killed mid-upload leaves its
# file where the periodic cleanup (apps.core.cleanup) finds it, and beside MEDIA_ROOT the move
# into storage is a rename.
FILE_UPLOAD_TEMP_DIR = env_str("LEPTON_UPLOAD_TEMP_DIR", str(VAR_DIR / "tmp" / "uploads"))
# Temp files (uploads, scratch files in media/.tmp) untouched this long are left-overs of a killed
# process: longer than any upload or any step that writes one takes between two writes.
LEPTON_TEMP_FILE_MAX_AGE_HOURS = env_int("LEPTON_TEMP_FILE_MAX_AGE_HOURS", 24)
# A failed or cancelled job's checkpoint is kept this long for a retry to resume from.
LEPTON_CHECKPOINT_RETENTION_HOURS = env_int("LEPTON_CHECKPOINT_RETENTION_HOURS", 7 * 24)

# --- Datasets ----------------------------------------------------------------------------
LEPTON_MAX_UPLOAD_BYTES = env_int("LEPTON_MAX_UPLOAD_BYTES", 2 * 1024**3)
LEPTON_MAX_REQUEST_BYTES = env_int("LEPTON_MAX_REQUEST_BYTES", 2 * 1024**2)  # any other request body
# --- Jobs (every piece of background work is one) -------------------------------------------
# A job placed on a node but not yet taken by any worker is queued again after this long (never failed).
LEPTON_DISPATCH_TIMEOUT_SECONDS = env_int("LEPTON_DISPATCH_TIMEOUT_SECONDS", 900)
# A placed job whose task never reached the broker (its placer died after the commit) is sent again after this long.
LEPTON_DISPATCH_GRACE_SECONDS = env_int("LEPTON_DISPATCH_GRACE_SECONDS", 10)
LEPTON_JOB_MAX_ATTEMPTS = env_int("LEPTON_JOB_MAX_ATTEMPTS", 3)
LEPTON_JOB_STALE_SECONDS = env_int("LEPTON_JOB_STALE_SECONDS", 60)
LEPTON_HEARTBEAT_SECONDS = env_int("LEPTON_HEARTBEAT_SECONDS", 5)
LEPTON_HEARTBEAT_THREAD = env_bool("LEPTON_HEARTBEAT_THREAD", True)
LEPTON_PROGRESS_INTERVAL = float(env_str("LEPTON_PROGRESS_INTERVAL", "1.0"))
LEPTON_JOB_TIME_LIMIT_SECONDS = env_int("LEPTON_JOB_TIME_LIMIT_SECONDS", 24 * 3600)
# The ranks of a data-parallel run wait this long for each other: to join, and in any step (rank 0's checkpoint
# upload between epochs included); then the attempt crashes and is retried from its checkpoint.
LEPTON_RENDEZVOUS_SECONDS = env_int("LEPTON_RENDEZVOUS_SECONDS", 300)

# --- Nodes ----------------------------------------------------------------------------------
LEPTON_NODE_HEARTBEAT_SECONDS = env_int("LEPTON_NODE_HEARTBEAT_SECONDS", 5)
LEPTON_NODE_STALE_SECONDS = env_int("LEPTON_NODE_STALE_SECONDS", 30)
# Placement passes are coalesced: at most one per this many seconds (requests in between share it).
LEPTON_SCHEDULER_MIN_INTERVAL = float(env_str("LEPTON_SCHEDULER_MIN_INTERVAL", "0.5"))
# A requested pass no worker has started after this many seconds is run by the next node heartbeat.
LEPTON_SCHEDULER_PASS_GRACE = env_int("LEPTON_SCHEDULER_PASS_GRACE", 2 * LEPTON_NODE_HEARTBEAT_SECONDS)
# Node heartbeats run the reaper at most this often, cluster-wide (not once per node per beat).
LEPTON_REAP_INTERVAL_SECONDS = env_int("LEPTON_REAP_INTERVAL_SECONDS", LEPTON_NODE_HEARTBEAT_SECONDS)
# How other nodes reach this one for a multi-node job's rendezvous (rank 0's); default: its host name's address.
LEPTON_NODE_ADDRESS = env_str("LEPTON_NODE_ADDRESS", "")
LEPTON_FAKE_GPUS = env_int("LEPTON_FAKE_GPUS", 0)  # test-only: a node agent reports this many pretend GPUs

# --- Deployments ------------------------------------------------------------------------------
LEPTON_DEPLOYMENT_CACHE_SIZE = env_int("LEPTON_DEPLOYMENT_CACHE_SIZE", 8)  # modules kept loaded per process
LEPTON_PREDICT_MAX_BATCH = env_int("LEPTON_PREDICT_MAX_BATCH", 256)  # samples in one predict request
LEPTON_PREDICT_RATE = env_str("LEPTON_PREDICT_RATE", "6000/minute")  # per deployment key, API token or user
# Predict statistics are counted in each web process and written at most this often (seconds).
LEPTON_STATS_FLUSH_SECONDS = float(env_str("LEPTON_STATS_FLUSH_SECONDS", "1.0"))
LEPTON_DEPLOYMENT_STATS_DAYS = env_int("LEPTON_DEPLOYMENT_STATS_DAYS", 30)  # request statistics kept this long

LEPTON_INGEST_LIMITS = {
    "zip_max_entries": env_int("LEPTON_ZIP_MAX_ENTRIES", 200_000),
    "zip_max_total_bytes": env_int("LEPTON_ZIP_MAX_TOTAL_BYTES", 4 * 1024**3),
    "zip_max_entry_bytes": env_int("LEPTON_ZIP_MAX_ENTRY_BYTES", 64 * 1024**2),
}

# --- API -----------------------------------------------------------------------------------
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "apps.accounts.authentication.BearerTokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_PAGINATION_CLASS": "apps.core.api.pagination.PagePagination",
    "PAGE_SIZE": 50,
    "DEFAULT_FILTER_BACKENDS": [
        "apps.core.api.filtering.StrictFilterBackend",
        "apps.core.api.filtering.StrictOrderingFilter",
    ],
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    "DEFAULT_PARSER_CLASSES": [
        "rest_framework.parsers.JSONParser",
        "rest_framework.parsers.FormParser",
        "rest_framework.parsers.MultiPartParser",
    ],
    "EXCEPTION_HANDLER": "apps.core.api.errors.api_exception_handler",
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "DEFAULT_THROTTLE_RATES": {"token_create": env_str("LEPTON_TOKEN_CREATE_RATE", "10/minute")},
    "TEST_REQUEST_DEFAULT_FORMAT": "json",
    # Throttles key anonymous callers by address: believe X-Forwarded-For only from our proxies.
    "NUM_PROXIES": LEPTON_NUM_PROXIES,
}
SPECTACULAR_SETTINGS = {
    "TITLE": "Lepton API",
    "DESCRIPTION": "Datasets, models, jobs, compression experiments, nodes and deployments.",
    "VERSION": "1",
    "SCHEMA_PATH_PREFIX": r"/api/v1",
    "SERVE_INCLUDE_SCHEMA": False,
    "COMPONENT_SPLIT_REQUEST": True,
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "ENUM_NAME_OVERRIDES": {
        "QuotaLimitEnum": "apps.accounts.models.QUOTA_LIMITS",
        "SourceFormatEnum": "apps.datasets.models.SourceFormat",
        "ExportFormatEnum": "apps.registry.models.ModelExport.Format",
        "JobStatusEnum": "apps.jobs.models.JobStatus",
        "JobKindEnum": "apps.jobs.models.JobKind",
        "UsageKindEnum": "apps.accounts.models.UsageRecord.Kind",
        "WorkStatusEnum": "apps.core.models.WorkResult.Status",
        "DeploymentStatusEnum": "apps.deployments.models.Deployment.Status",
    },
}

# --- Site --------------------------------------------------------------------------------------
LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True
EMAIL_BACKEND = env_str("EMAIL_BACKEND", "django.core.mail.backends.console.EmailBackend")

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s: %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": env_str("LOG_LEVEL", "INFO")},
}
