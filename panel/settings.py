"""Dockyard settings. Strict: only the DOCKYARD_* variables (and DATABASE_URL) are read."""

import os
import secrets
from pathlib import Path

from workers.runtime import userns as _userns_remap

BASE_DIR = Path(__file__).resolve().parent.parent


def _env_bool(name: str, default: bool = False) -> bool:
    value = os.environ.get(name)
    if value is None:
        return default
    if value.lower() in ("1", "true", "yes", "on"):
        return True
    if value.lower() in ("0", "false", "no", "off", ""):
        return False
    raise ValueError(f"{name} must be a boolean (1/0), not {value!r}")


STATE_ROOT = Path(os.environ.get("DOCKYARD_STATE_ROOT", "/var/lib/dockyard"))
NODE_NAME = os.environ.get("DOCKYARD_NODE", "local")
REDIS_URL = os.environ.get("DOCKYARD_REDIS_URL", "redis://127.0.0.1:6379/0")
API_SOCKET = os.environ.get("DOCKYARD_API_SOCKET", "/run/dockyard/docker.sock")
API_TCP = os.environ.get("DOCKYARD_API_TCP", "127.0.0.1:2375")
RESOURCE_PREFIX = os.environ.get("DOCKYARD_PREFIX", "dy")
# userns-remap: "" (off), "default" (100000:65536) or "<first host id>:<count>"
USERNS_REMAP = os.environ.get("DOCKYARD_USERNS_REMAP", "")
_userns_remap.parse_remap(USERNS_REMAP)  # refuse a bad value at start-up


def _env_subnet(name: str, default: str) -> str:
    import ipaddress

    value = os.environ.get(name, default)
    try:
        network = ipaddress.IPv4Network(value, strict=True)
    except ValueError:
        raise ValueError(f"{name} must be an IPv4 subnet like 172.31.0.0/16, not {value!r}") \
            from None
    if network.prefixlen > 30:
        raise ValueError(f"{name} is too small for containers: {value!r}")
    return str(network)


# The default "bridge" network's subnet (away from Docker's own 172.17.0.0/16).
BRIDGE_SUBNET = _env_subnet("DOCKYARD_BRIDGE_SUBNET", "172.31.0.0/16")


def _env_seconds(name: str, default: float) -> float:
    value = os.environ.get(name)
    if value is None:
        return default
    try:
        seconds = float(value)
    except ValueError:
        raise ValueError(f"{name} must be a number of seconds, not {value!r}") from None
    if not 0 < seconds <= 3600:
        raise ValueError(f"{name} must be in (0, 3600] seconds, not {value!r}")
    return seconds


# Restart policies: the shim waits BASE, 2*BASE, 4*BASE ... (at most CAP) between restarts.
RESTART_BACKOFF_BASE = _env_seconds("DOCKYARD_RESTART_BACKOFF_BASE", 1.0)
RESTART_BACKOFF_CAP = _env_seconds("DOCKYARD_RESTART_BACKOFF_CAP", 60.0)
if RESTART_BACKOFF_CAP < RESTART_BACKOFF_BASE:
    raise ValueError("DOCKYARD_RESTART_BACKOFF_CAP must not be less than "
                     "DOCKYARD_RESTART_BACKOFF_BASE")
DEBUG = _env_bool("DOCKYARD_DEBUG")

# Registries reached over plain HTTP (Docker's --insecure-registry): host[:port] names or CIDRs.
# Loopback is insecure by default, as in Docker.
INSECURE_REGISTRIES = [r.strip() for r in os.environ.get(
    "DOCKYARD_INSECURE_REGISTRIES", "127.0.0.0/8,localhost").split(",") if r.strip()]


def _env_bytes(name: str, default: int) -> int:
    raw = os.environ.get(name, "").strip()
    if not raw:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ValueError(f"{name} must be a number of bytes, not {raw!r}") from None
    if value <= 0:
        raise ValueError(f"{name} must be positive")
    return value


# The largest uncompressed layer a pull, load or import may unpack (a size bomb stops there).
MAX_LAYER_SIZE = _env_bytes("DOCKYARD_MAX_LAYER_SIZE", 16 * 1024**3)


def _env_days(name: str) -> int:
    raw = os.environ.get(name, "").strip() or "0"
    try:
        days = int(raw)
    except ValueError:
        raise ValueError(f"{name} must be a whole number of days, not {raw!r}") from None
    if days < 0:
        raise ValueError(f"{name} must not be negative")
    return days


# Audit rows older than this many days are archived and pruned by the worker; 0 keeps them.
AUDIT_RETENTION_DAYS = _env_days("DOCKYARD_AUDIT_RETENTION_DAYS")
AUDIT_ARCHIVE_DIR = STATE_ROOT / "audit-archive"


def _secret_key() -> str:
    key = os.environ.get("DOCKYARD_SECRET_KEY")
    if key:
        return key
    path = STATE_ROOT / "secret_key"
    try:
        return path.read_text().strip()
    except FileNotFoundError:
        pass
    key = secrets.token_urlsafe(50)
    try:
        STATE_ROOT.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(key)
    except FileExistsError:
        return path.read_text().strip()
    except OSError:
        # Read-only or foreign state root (e.g. a linter run): a throwaway key is fine there.
        pass
    return key


SECRET_KEY = _secret_key()
ALLOWED_HOSTS = ["*"]
CSRF_TRUSTED_ORIGINS = ["http://127.0.0.1:8000", "http://localhost:8000"]

INSTALLED_APPS = [
    "daphne",
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "channels",
    "django_otp",
    "django_otp.plugins.otp_totp",
    "panel.teams",
    "panel.nodes",
    "panel.audit",
    "panel.jobs",
    "panel.images",
    "panel.containers",
    "panel.volumes",
    "panel.networks",
    "panel.events",
    "panel.dockerapi",
    "panel.web",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    # Daphne serves no static files; WhiteNoise serves the collected, hashed assets.
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django_otp.middleware.OTPMiddleware",  # request.user.is_verified() after a TOTP code
    # Who asks from where, for the audit rows; writes the request's refusals at its end.
    "panel.audit.middleware.AuditContextMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "panel.urls"
ASGI_APPLICATION = "panel.asgi.application"

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

if os.environ.get("DATABASE_URL"):
    import dj_database_url

    DATABASES = {"default": dj_database_url.parse(os.environ["DATABASE_URL"], conn_max_age=60)}
else:
    DATABASES = {
        "default": {
            "ENGINE": "django.db.backends.sqlite3",
            "NAME": os.environ.get("DOCKYARD_DB_PATH", str(STATE_ROOT / "dockyard.sqlite3")),
            # Opening SQLite and setting its pragmas costs about a millisecond per request.
            "CONN_MAX_AGE": 600,
            "CONN_HEALTH_CHECKS": True,
            "OPTIONS": {
                # Web, API server and worker write concurrently: WAL plus immediate
                # transactions avoid "database is locked" on upgrade from read to write.
                "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
                "transaction_mode": "IMMEDIATE",
                "timeout": 30,
            },
        }
    }

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "web:container-list"
LOGOUT_REDIRECT_URL = "login"

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATICFILES_DIRS = [BASE_DIR / "static"]
STATIC_ROOT = STATE_ROOT / "static"
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedStaticFilesStorage"},
}
# Fresh checkouts and tests serve straight from static/, before any collectstatic.
WHITENOISE_USE_FINDERS = True

# Cookies out of scripts' reach (no script reads csrftoken: forms carry {% csrf_token %}),
# not sent on cross-site requests; a session lasts 12 hours.
SESSION_COOKIE_HTTPONLY = True
CSRF_COOKIE_HTTPONLY = True
CSRF_COOKIE_SAMESITE = "Lax"
SESSION_COOKIE_SAMESITE = "Lax"
SESSION_COOKIE_AGE = 12 * 3600
X_FRAME_OPTIONS = "DENY"
# DOCKYARD_HTTPS=1: the panel is served over HTTPS by a proxy that sets X-Forwarded-Proto.
HTTPS = _env_bool("DOCKYARD_HTTPS")
if HTTPS:
    SESSION_COOKIE_SECURE = CSRF_COOKIE_SECURE = True
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    SECURE_HSTS_SECONDS = 365 * 24 * 3600


def _env_count(name: str, default: int) -> int:
    raw = os.environ.get(name, "").strip()
    if not raw:
        return default
    if not raw.isdigit() or int(raw) < 1:
        raise ValueError(f"{name} must be a positive whole number, not {raw!r}")
    return int(raw)


# Failed sign-ins (panel.teams.login): at most LOGIN_MAX_FAILURES per account, and four times
# that per address, within LOGIN_WINDOW seconds; further attempts are refused unchecked.
LOGIN_MAX_FAILURES = _env_count("DOCKYARD_LOGIN_MAX_FAILURES", 5)
LOGIN_ADDRESS_MAX_FAILURES = 4 * LOGIN_MAX_FAILURES
LOGIN_WINDOW = _env_seconds("DOCKYARD_LOGIN_WINDOW", 15 * 60)
OTP_TOTP_ISSUER = "Dockyard"
# Wrong TOTP codes count as failed sign-ins above; django-otp's own per-device back-off is off
# so that one limit (audited) applies, and a right code right after a typo is accepted.
OTP_TOTP_THROTTLE_FACTOR = 0

CHANNEL_LAYERS = {
    "default": {
        "BACKEND": "channels_redis.core.RedisChannelLayer",
        "CONFIG": {"hosts": [REDIS_URL], "prefix": "dockyard:channels:"},
    }
}

CELERY_BROKER_URL = REDIS_URL
CELERY_RESULT_BACKEND = None
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
# Jobs mostly wait on the kernel and on shims; threads hand a job over without the
# prefork pool's pipe hop (about 10 ms), and a slow stop does not block the others.
CELERY_WORKER_POOL = "threads"
CELERY_WORKER_CONCURRENCY = 8
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_TASK_DEFAULT_QUEUE = f"node.{NODE_NAME}"

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "root": {"handlers": ["console"], "level": "INFO"},
    "loggers": {"django.channels.server": {"level": "WARNING"}},
}
