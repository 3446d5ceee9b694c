"""Settings for the reel editor.

Every knob an operator can turn is read from the environment here, and only here.
Unset variables give the embedded default: SQLite, local folders, in-memory channel
layer, in-process export workers, no other server (see README and
docs/architecture.md for the production values).
"""

import os
from datetime import timedelta
from pathlib import Path
from urllib.parse import urlsplit

import dj_database_url
from django.core.exceptions import ImproperlyConfigured

BASE_DIR = Path(__file__).resolve().parent.parent


def env(name, default=None):
    """A string from the environment; ``NAME_FILE`` (a path) wins, for secrets."""
    file_path = os.environ.get(f"{name}_FILE")
    if file_path:
        return Path(file_path).read_text().strip()
    return os.environ.get(name, default)


def envbool(name, default):
    value = env(name)
    if value is None or value == "":
        return default
    if value.lower() in ("1", "true", "yes", "on"):
        return True
    if value.lower() in ("0", "false", "no", "off"):
        return False
    raise ImproperlyConfigured(f"{name} must be true or false, got {value!r}")


def envint(name, default):
    value = env(name)
    if value is None or value == "":
        return default
    try:
        return int(value)
    except ValueError:
        raise ImproperlyConfigured(f"{name} must be an integer, got {value!r}") from None


DEBUG = envbool("DJANGO_DEBUG", True)
SECRET_KEY = env("DJANGO_SECRET_KEY", "dev-only-insecure-key-change-me")
if not DEBUG and SECRET_KEY.startswith("dev-only"):
    raise ImproperlyConfigured("Set DJANGO_SECRET_KEY when DJANGO_DEBUG is false.")
ALLOWED_HOSTS = [
    h.strip() for h in env("ALLOWED_HOSTS", "127.0.0.1,localhost").split(",") if h.strip()
]
CSRF_TRUSTED_ORIGINS = [o.strip() for o in env("CSRF_TRUSTED_ORIGINS", "").split(",") if o.strip()]

# Where working copies of the per-user databases, local media and local snapshots live.
# Read through settings at run time (never cached at import) so tests can point each
# test at its own folder.
REELEDITOR_DATA_DIR = Path(env("REELEDITOR_DATA_DIR", str(BASE_DIR / "var"))).resolve()
# SQLite creates database files but not their folder.
REELEDITOR_DATA_DIR.mkdir(parents=True, exist_ok=True)

INSTALLED_APPS = [
    "daphne",  # must come first: its runserver serves the ASGI app (HTTP + WebSocket)
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "channels",
    "axes",  # sign-in throttling: failed attempts counted in the central database
    "accounts",
    "syncstore",
    "projects",
    "games",
    "exports",
    "sharing",
    "reframing",
]

MIDDLEWARE = [
    # Request ids, request metrics (reeleditor/observability.py).
    "reeleditor.observability.ObservabilityMiddleware",
    "django.middleware.security.SecurityMiddleware",
    # A strict Content-Security-Policy with a per-request nonce (reeleditor/csp.py).
    "reeleditor.csp.ContentSecurityPolicyMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "reeleditor.middleware.LoginRequiredMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    # Binds the signed-in user's own database for the rest of the request, and makes
    # its writes durable (a committed snapshot) before the response leaves.
    "syncstore.middleware.SyncMiddleware",
    # Answers a locked-out sign-in with the lockout page (django-axes wants it last).
    "axes.middleware.AxesMiddleware",
]

ROOT_URLCONF = "reeleditor.urls"
ASGI_APPLICATION = "reeleditor.asgi.application"

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
                "reeleditor.csp.nonce",
            ],
        },
    },
]

# --- Databases ---------------------------------------------------------------------
# The central database ("default") holds auth, sessions, admin log, the sync registry
# and export jobs. The projects app lives in one SQLite file per user, registered as a
# database alias at run time (syncstore/userdb.py) and chosen by the router below.
SQLITE_OPTIONS = {
    # IMMEDIATE makes atomic blocks take the write lock up front, so concurrent
    # writers wait for the busy timeout instead of failing with "database is locked".
    "transaction_mode": "IMMEDIATE",
    "timeout": 20,
    # FULL: a transaction that returned is on disk, WAL included. The central database
    # is the commit point and a user database that is marked committed must not lose a
    # write in a power cut (NORMAL may drop the last transactions of the WAL).
    "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous="
    # Only bench/write_latency.py sets this, to measure what FULL costs.
    + env("REELEDITOR_BENCH_SQLITE_SYNC", "FULL")
    + ";",
}
# User databases: the sync layer owns their checkpoints (syncstore/walsegments.py), so
# the WAL keeps every frame a push has not shipped yet.
USER_SQLITE_OPTIONS = {
    **SQLITE_OPTIONS,
    "init_command": SQLITE_OPTIONS["init_command"] + " PRAGMA wal_autocheckpoint=0;",
}

_default_db = dj_database_url.parse(
    env("DATABASE_URL", f"sqlite:///{REELEDITOR_DATA_DIR / 'central.sqlite3'}"),
    conn_max_age=envint("DATABASE_CONN_MAX_AGE", 0),
)
if _default_db["ENGINE"] == "django.db.backends.sqlite3":
    _default_db["OPTIONS"] = dict(SQLITE_OPTIONS)
# PostgreSQL: a pool of open connections per process (psycopg_pool, Django's "pool"
# option). Without it every request connects anew (4-6 ms on localhost, more across
# machines): under ASGI each request runs in a thread of its own, so CONN_MAX_AGE
# cannot keep a connection between them. A connection is taken for a request or task
# and given back at its end; at most DATABASE_POOL_MAX per process, so the server's
# max_connections must cover instances x web processes x that (plus the workers).
# Celery workers run with DATABASE_POOL=false (compose, the cluster): in its forked
# children Celery closes the pool around every task, so one would only add connections.
if _default_db["ENGINE"] == "django.db.backends.postgresql" and envbool("DATABASE_POOL", True):
    _default_db["CONN_MAX_AGE"] = 0  # Django refuses a pool with persistent connections
    _default_db.setdefault("OPTIONS", {})["pool"] = {
        "min_size": envint("DATABASE_POOL_MIN", 2),
        "max_size": envint("DATABASE_POOL_MAX", 20),
        "timeout": envint("DATABASE_POOL_TIMEOUT", 10),  # s waiting for a free connection
    }
DATABASES = {"default": _default_db}
DATABASE_ROUTERS = ["syncstore.routers.UserDatabaseRouter"]
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# Apps whose models live in the per-user databases.
USER_DATABASE_APPS = {"projects", "games"}
# Idle per-user aliases are evicted beyond this many, so the per-request scans Django
# makes over all aliases stay cheap (measured: ~13 us at 10 aliases, ~240 us at 10k).
USER_DATABASE_MAX_OPEN = envint("USER_DATABASE_MAX_OPEN", 256)

# --- Auth ---------------------------------------------------------------------------
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
LOGIN_URL = "login"

# Sign-in throttling (django-axes), for the site and the admin alike. Failed attempts are
# rows in the central database, so every instance and process counts the same ones.
# An account is locked after AXES_FAILURE_LIMIT failures from anywhere, and an address
# after as many on any accounts, for AXES_COOLOFF_SECONDS; staff unlock in the admin
# ("Access attempts": delete the rows) or with `manage.py axes_reset_username <name>`.
AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",
    # Django's ModelBackend, letting an account waiting for deletion sign in (and so
    # keep the account): accounts/deletion.py.
    "accounts.deletion.AccountBackend",
]
AXES_FAILURE_LIMIT = envint("AXES_FAILURE_LIMIT", 5)
AXES_COOLOFF_TIME = timedelta(seconds=envint("AXES_COOLOFF_SECONDS", 15 * 60))
AXES_LOCKOUT_PARAMETERS = ["username", "ip_address"]
AXES_RESET_ON_SUCCESS = True
AXES_LOCKOUT_CALLABLE = "accounts.signin.locked_out"
# Behind proxies (nginx, a load balancer), the client is the address the outermost of
# them saw: TRUSTED_PROXY_COUNT of them append to X-Forwarded-For. 0: REMOTE_ADDR.
TRUSTED_PROXY_COUNT = envint("TRUSTED_PROXY_COUNT", 0)
AXES_CLIENT_IP_CALLABLE = "accounts.signin.client_ip"
# Sign-up: at most SIGNUP_LIMIT forms sent per address in SIGNUP_WINDOW_SECONDS.
SIGNUP_LIMIT = envint("SIGNUP_LIMIT", 10)
SIGNUP_WINDOW_SECONDS = envint("SIGNUP_WINDOW_SECONDS", 60 * 60)
LOGIN_REDIRECT_URL = "projects:index"
LOGOUT_REDIRECT_URL = "login"

# Email (password reset links). The embedded default prints messages on the console;
# with EMAIL_HOST set they go out by SMTP.
EMAIL_HOST = env("EMAIL_HOST", "")
EMAIL_BACKEND = (
    "django.core.mail.backends.smtp.EmailBackend"
    if EMAIL_HOST
    else "django.core.mail.backends.console.EmailBackend"
)
EMAIL_PORT = envint("EMAIL_PORT", 587)
EMAIL_HOST_USER = env("EMAIL_HOST_USER", "")
EMAIL_HOST_PASSWORD = env("EMAIL_HOST_PASSWORD", "")
EMAIL_USE_TLS = envbool("EMAIL_USE_TLS", True)
DEFAULT_FROM_EMAIL = env("DEFAULT_FROM_EMAIL", "Reel editor <no-reply@localhost>")
PASSWORD_RESET_TIMEOUT = envint("PASSWORD_RESET_TIMEOUT", 3 * 60 * 60)

# --- Redis, channels, celery --------------------------------------------------------
REDIS_URL = env("REDIS_URL", "")


def channel_layers_for(redis_url: str) -> dict:
    """Channels on Redis, or in memory (one process) without it.

    channels_redis waits for messages with a 5 s blocking pop; redis-py 8 reads with a
    5 s timeout by default, which then fires first and kills every quiet consumer
    (channels_redis issue 422). The read timeout must outlast the pop, and stays finite
    so a connection that died silently is still noticed.
    """
    if not redis_url:
        return {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}
    host = {"address": redis_url, "socket_timeout": 15, "socket_connect_timeout": 5}
    return {
        "default": {
            "BACKEND": "channels_redis.core.RedisChannelLayer",
            "CONFIG": {"hosts": [host]},
        }
    }


CHANNEL_LAYERS = channel_layers_for(REDIS_URL)
CELERY_BROKER_URL = REDIS_URL or "memory://"
CELERY_TASK_ACKS_LATE = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
# Queues: plain exports on EXPORT_QUEUE (every worker), AI-upscaled ones on
# EXPORT_UPSCALE_QUEUE, which only GPU workers consume (-Q upscale).
EXPORT_QUEUE = env("EXPORT_QUEUE", "celery")
EXPORT_UPSCALE_QUEUE = env("EXPORT_UPSCALE_QUEUE", "upscale")
CELERY_TASK_DEFAULT_QUEUE = EXPORT_QUEUE
# An export that runs past the hard limit is killed (its job ends as worker_lost and can
# be retried); the soft limit comes first so the task can end cleanly.
CELERY_TASK_TIME_LIMIT = envint("EXPORT_TIME_LIMIT", 3 * 3600)
CELERY_TASK_SOFT_TIME_LIMIT = max(1, CELERY_TASK_TIME_LIMIT - 60)

# --- Media and static files ---------------------------------------------------------
# Media (uploaded clips, rendered videos) never gets a public URL: the media view
# checks ownership and serves local files with HTTP Range, or redirects to a short-
# lived presigned URL when the files live in S3.
S3_BUCKET = env("S3_BUCKET", "")
S3_ENDPOINT_URL = env("S3_ENDPOINT_URL", "") or None
S3_REGION = env("S3_REGION", "auto" if S3_ENDPOINT_URL else "us-east-1")
# Where browsers reach the store, when not at S3_ENDPOINT_URL (an internal name, as in
# compose.yaml): media links are signed for this host (projects/mediastorage.py).
S3_PUBLIC_ENDPOINT_URL = env("S3_PUBLIC_ENDPOINT_URL", "") or None
MEDIA_ROOT = REELEDITOR_DATA_DIR / "media"


def store_origins(bucket: str, endpoint_url, public_endpoint_url, region: str) -> list[str]:
    """The origins a browser fetches presigned media links from.

    With an endpoint (moto, R2, MinIO) the links are path-style on its origin, or
    virtual-hosted on ``<bucket>.<host>``; on AWS they are virtual-hosted on the region's
    S3 host.
    """
    if not bucket:
        return []
    endpoint = public_endpoint_url or endpoint_url
    if endpoint:
        parts = urlsplit(endpoint)
        return [f"{parts.scheme}://{parts.netloc}", f"{parts.scheme}://{bucket}.{parts.netloc}"]
    return [f"https://{bucket}.s3.amazonaws.com", f"https://{bucket}.s3.{region}.amazonaws.com"]


# The origins presigned media links point to, allowed by the Content-Security-Policy
# (reeleditor/csp.py); set CSP_MEDIA_ORIGINS (comma-separated) for a CDN in front of it.
CSP_MEDIA_ORIGINS = [
    o.strip() for o in env("CSP_MEDIA_ORIGINS", "").split(",") if o.strip()
] or store_origins(S3_BUCKET, S3_ENDPOINT_URL, S3_PUBLIC_ENDPOINT_URL, S3_REGION)
STATIC_URL = "static/"
STATIC_ROOT = BASE_DIR / "staticfiles"
STATICFILES_DIRS = [BASE_DIR / "static"]
# Serve static files straight from the source folders when collectstatic has not run
# (the embedded default); the Docker image collects them.
WHITENOISE_USE_FINDERS = True
# The web app manifest (static/manifest.webmanifest, linked from templates/base.html):
# whitenoise's own table has no type for the extension.
WHITENOISE_MIMETYPES = {".webmanifest": "application/manifest+json"}


def s3_media_storage(bucket: str, endpoint_url, region: str, public_endpoint_url=None) -> dict:
    """Media files in the S3 bucket, under media/, served by short-lived signed links."""
    return {
        "BACKEND": "projects.mediastorage.MediaStorage",
        "OPTIONS": {
            "bucket_name": bucket,
            "endpoint_url": endpoint_url,
            "public_endpoint_url": public_endpoint_url,
            "region_name": region,
            "location": "media",
            "default_acl": None,
            "querystring_auth": True,
            "querystring_expire": 600,
            "file_overwrite": False,
        },
    }


if S3_BUCKET:
    _media_storage = s3_media_storage(S3_BUCKET, S3_ENDPOINT_URL, S3_REGION, S3_PUBLIC_ENDPOINT_URL)
else:
    _media_storage = {"BACKEND": "django.core.files.storage.FileSystemStorage"}
STORAGES = {
    "default": _media_storage,
    "staticfiles": {
        "BACKEND": "whitenoise.storage.CompressedStaticFilesStorage"
        if not DEBUG
        else "django.contrib.staticfiles.storage.StaticFilesStorage"
    },
}

# Uploads always go to a temporary file so the prober can open them by path and a
# large clip never sits in memory; the size limit is enforced while the body streams.
FILE_UPLOAD_HANDLERS = [
    "projects.uploads.SizeLimitHandler",
    "django.core.files.uploadhandler.TemporaryFileUploadHandler",
]
MAX_UPLOAD_BYTES = envint("MAX_UPLOAD_BYTES", 2 * 1024**3)
MAX_CLIPS_PER_PROJECT = envint("MAX_CLIPS_PER_PROJECT", 50)
MAX_KEYFRAMES_PER_CLIP = envint("MAX_KEYFRAMES_PER_CLIP", 500)
MAX_SEGMENTS_PER_CLIP = envint("MAX_SEGMENTS_PER_CLIP", 100)
MAX_HIGHLIGHT_REGIONS = envint("MAX_HIGHLIGHT_REGIONS", 50)
# Whole games arrive in chunks (games/chunked.py): resumable, any instance takes any
# chunk. On S3 a chunk is at least 5 MiB (the smallest multipart part).
MAX_GAME_UPLOAD_BYTES = envint("MAX_GAME_UPLOAD_BYTES", 10 * 1024**3)
GAME_UPLOAD_CHUNK_BYTES = envint("GAME_UPLOAD_CHUNK_BYTES", 8 * 1024**2)
# An upload nothing arrived for in this long is removed by manage.py sweep_game_uploads.
GAME_UPLOAD_ABANDON_HOURS = envint("GAME_UPLOAD_ABANDON_HOURS", 72)
GAME_FILMSTRIP_TILES = envint("GAME_FILMSTRIP_TILES", 100)
# How long a game's media job waits for the upload's commit to reach the store.
GAME_MEDIA_WAIT_SECONDS = envint("GAME_MEDIA_WAIT_SECONDS", 30)
MAX_PLAYS_PER_GAME = envint("MAX_PLAYS_PER_GAME", 500)
# Share links of final videos (sharing/): how many per video, and requests per minute
# one address may make to the public share routes (0: no limit).
MAX_SHARE_LINKS_PER_VIDEO = envint("MAX_SHARE_LINKS_PER_VIDEO", 20)
SHARE_RATE_LIMIT_PER_MINUTE = envint("SHARE_RATE_LIMIT_PER_MINUTE", 120)
MAX_TAGS_PER_PLAY = envint("MAX_TAGS_PER_PLAY", 20)

# --- Sync store (snapshots of the per-user databases) --------------------------------
# Snapshots go to the S3 bucket when S3_BUCKET is set (under SNAPSHOT_PREFIX), to a
# local folder otherwise. Keep that folder off the machine's data disk in production
# if you run without S3: it is the durable copy.
SNAPSHOT_PREFIX = env("SNAPSHOT_PREFIX", "")
SNAPSHOT_LOCAL_DIR = env("SNAPSHOT_LOCAL_DIR", "") or None
SNAPSHOT_RETENTION = envint("SNAPSHOT_RETENTION", 10)  # committed versions kept per user
# A push uploads only the WAL frames its writes added (a segment) when it can; a pull
# applies the segments after the latest whole image. After this many segments in a row
# a whole image is made again, after the answer (bounds what a pull downloads).
SNAPSHOT_IMAGE_EVERY = envint("SNAPSHOT_IMAGE_EVERY", 16)
# Pushes fold the WAL into the database file once it is this large (then start anew).
WAL_CHECKPOINT_BYTES = envint("WAL_CHECKPOINT_BYTES", 8 * 1024 * 1024)
# Off: every push uploads a whole image (what a push did before segments; benchmarks).
SYNC_SEGMENTS = envbool("SYNC_SEGMENTS", True)
# A deleted account's data (copies, snapshots, media) is purged this long after deletion.
ACCOUNT_PURGE_GRACE_SECONDS = envint("ACCOUNT_PURGE_GRACE_SECONDS", 7 * 24 * 3600)
# "Export my data": a zip not downloaded this long after it was built is deleted.
DATA_EXPORT_EXPIRY_SECONDS = envint("DATA_EXPORT_EXPIRY_SECONDS", 24 * 3600)
SNAPSHOT_CONNECT_TIMEOUT = envint("SNAPSHOT_CONNECT_TIMEOUT", 5)
SNAPSHOT_READ_TIMEOUT = envint("SNAPSHOT_READ_TIMEOUT", 30)
# Retries of a failed push inside the request, in seconds between tries, before the
# response says X-Sync-Status: failed (and the periodic retry takes over).
SYNC_PUSH_BACKOFF = [0.2, 0.6]
SYNC_RETRY_INTERVAL = envint("SYNC_RETRY_INTERVAL", 30)  # periodic retry of dirty copies
# The per-user write lease lives in the central database (syncstore/leases.py): how long
# a write waits for another writer, and how long a claim lives unless renewed.
LEASE_WAIT_SECONDS = envint("LEASE_WAIT_SECONDS", 30)
LEASE_TTL_SECONDS = envint("LEASE_TTL_SECONDS", 30)
# How long a request waits for another pull or push of the same copy on this machine
# before it answers 503 busy.
COPY_LOCK_WAIT_SECONDS = envint("COPY_LOCK_WAIT_SECONDS", 15)
# Test-only: kill the process with SIGKILL at a named point of a push (before_upload,
# after_upload, after_commit), or freeze it there with SIGSTOP (stop_<point>), for the
# fault-injection suite.
SYNC_CRASH_POINT = env("SYNC_CRASH_POINT", "")

# --- Exports ------------------------------------------------------------------------
EXPORT_MODE = env("EXPORT_MODE", "real")
if EXPORT_MODE not in ("real", "mock"):
    raise ImproperlyConfigured(f"EXPORT_MODE must be real or mock, got {EXPORT_MODE!r}")
# Mock mode only: seconds added to each rendered frame, so that a browser test can act
# while an export runs (cancel it). 0 (the default) adds nothing.
EXPORT_MOCK_FRAME_DELAY = float(env("EXPORT_MOCK_FRAME_DELAY", "0"))
UPSCALE_MODEL_PATH = env("UPSCALE_MODEL_PATH", "")
# "Follow the play": an optional TorchScript person/ball detector (reframing/detectors.py);
# without one the analysis uses classical vision only.
FOLLOW_DETECTOR_PATH = env("FOLLOW_DETECTOR_PATH", "")
EXPORT_PRESET = env("EXPORT_PRESET", "veryfast")  # libx264 preset of real exports
# Framing exports render one segment per clip and reuse unchanged ones (exports/
# segments.py) from this machine's cache: a folder (default <data dir>/segments) kept
# under this many bytes, least recently used out first.
EXPORT_SEGMENT_CACHE_DIR = env("EXPORT_SEGMENT_CACHE_DIR", "") or None
EXPORT_SEGMENT_CACHE_BYTES = envint("EXPORT_SEGMENT_CACHE_BYTES", 4 * 1024**3)
EXPORT_WORKERS = envint("EXPORT_WORKERS", 1)  # in-process pool size (embedded default)
# A processing job whose heartbeat is older than this lost its worker.
EXPORT_STALE_AFTER = envint("EXPORT_STALE_AFTER", 120)
# How often a running export beats while it uploads and finalizes (no progress then).
EXPORT_HEARTBEAT_SECONDS = envint("EXPORT_HEARTBEAT_SECONDS", min(10, EXPORT_STALE_AFTER // 4) or 1)
# Without Redis each web process has its own channel layer: a watcher whose export runs
# in another process (reeleditor.serve) follows the job row this often instead.
EXPORT_FOLLOW_ROW_SECONDS = float(env("EXPORT_FOLLOW_ROW_SECONDS", "1.0"))
# Waits between retries of the commit of a finished export before it ends "sync_failed".
EXPORT_FINALIZE_RETRY_DELAYS = [0.5, 2.0]

# --- Internationalisation -----------------------------------------------------------
LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

# --- Security in production ---------------------------------------------------------
# Behind TLS (SECURE_COOKIES, on by default in production): cookies only over HTTPS, and
# HSTS for HSTS_SECONDS (Django sends it on HTTPS responses only). The proxy in front
# says which requests came over TLS with X-Forwarded-Proto.
if not DEBUG:
    SECURE_COOKIES = envbool("SECURE_COOKIES", True)
    SESSION_COOKIE_SECURE = SECURE_COOKIES
    CSRF_COOKIE_SECURE = SECURE_COOKIES
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    SECURE_HSTS_SECONDS = envint("HSTS_SECONDS", 365 * 24 * 3600) if SECURE_COOKIES else 0

CSRF_FAILURE_VIEW = "reeleditor.jsonapi.csrf_failure"

# --- Observability -----------------------------------------------------------------
# /metrics (Prometheus text format) needs "Authorization: Bearer <METRICS_TOKEN>" when set.
METRICS_TOKEN = env("METRICS_TOKEN", "")
# A Celery worker serves its own metrics (export durations, outcomes) on this port (0: off).
WORKER_METRICS_PORT = envint("WORKER_METRICS_PORT", 0)
# LOG_FORMAT=json: one JSON object per line with request_id, user_id and job_id.
LOG_FORMAT = env("LOG_FORMAT", "text")
if LOG_FORMAT not in ("text", "json"):
    raise ImproperlyConfigured(f"LOG_FORMAT must be text or json, got {LOG_FORMAT!r}")

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "filters": {"context": {"()": "reeleditor.logs.ContextFilter"}},
    "formatters": {
        "text": {"format": "%(levelname)s %(name)s %(message)s"},
        "json": {"()": "reeleditor.logs.JsonFormatter"},
    },
    "handlers": {
        "console": {
            "class": "logging.StreamHandler",
            "filters": ["context"],
            "formatter": LOG_FORMAT,
        }
    },
    "root": {"handlers": ["console"], "level": env("LOG_LEVEL", "INFO")},
    "loggers": {"django.db.backends": {"level": "INFO"}},
}
