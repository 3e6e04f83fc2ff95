"""The application server: how `serve` and `runlocal` start gunicorn, and what it needs to start.

gthread workers, not sync ones, measured for this app (bench/serve_throughput.py, 50 kept-alive
clients, 2 cores): a sync worker answers `Connection: close` to every request, so each SDK call
pays a new TCP connection, and it holds one client at a time until the response is written;
gthread parks idle kept-alive connections in its poller and keeps them open. Its timeout watches
the worker's main loop, not each request, so a long upload in a thread is not killed at 30 s
the way a sync worker would be.
"""

import sys

from django.conf import settings
from django.contrib.staticfiles.storage import ManifestFilesMixin, staticfiles_storage
from django.core.exceptions import ImproperlyConfigured


def gunicorn_command(*, bind: str, workers: int, threads: int) -> list[str]:
    """The command line of a gunicorn serving Lepton on `bind` (host:port)."""
    return [
        sys.executable,
        "-m",
        "gunicorn",
        "lepton_web.wsgi:application",
        "--bind",
        bind,
        "--workers",
        str(workers),
        "--worker-class",
        "gthread",
        "--threads",
        str(threads),
        "--keep-alive",
        "5",  # an SDK's next call within seconds reuses its connection
        "--graceful-timeout",
        "20",  # in-flight requests get this long after SIGTERM (runlocal and serve wait longer)
        "--no-control-socket",  # one fixed socket file per user would clash between two servers
        "--access-logfile",
        "-",
    ]


def require_collected_static() -> None:
    """Refuse to start when DEBUG is off and `collectstatic` has not written the manifest.

    With DEBUG off, `{% static %}` asks whitenoise's manifest for each file's hashed name;
    without the manifest every page would answer 500. Better one clear error at start.
    """
    storage = staticfiles_storage  # a lazy object: isinstance() and attributes reach the configured storage
    if isinstance(storage, ManifestFilesMixin) and storage.read_manifest() is None:
        raise ImproperlyConfigured(
            f"DEBUG is off and the static files manifest {settings.STATIC_ROOT / storage.manifest_name} is missing: "
            "run `python manage.py collectstatic --noinput` (make serve does) before starting the web server."
        )
