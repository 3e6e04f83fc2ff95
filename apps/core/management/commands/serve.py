"""The production web server and this machine's node agent, together; SIGTERM or Ctrl-C stops both.

    manage.py serve [--bind 127.0.0.1:8000] [--workers N] [--node-name local | --no-node-agent]

Each option's default comes from the environment (LEPTON_BIND, LEPTON_WEB_WORKERS,
LEPTON_NODE_NAME, LEPTON_SERVE_NODE_AGENT), so `make serve` is configured like the rest.

`make serve` runs `migrate` and `collectstatic` first. gunicorn (gthread workers: see
apps/core/webserver.py for why) listens on LEPTON_BIND with LEPTON_WEB_WORKERS worker processes
(default: one per core); a web machine that runs no jobs passes --no-node-agent.
"""

import sys

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.core.management.base import BaseCommand, CommandError

from apps.core.processes import AGENT_STOP_SECONDS, run_together
from apps.core.webserver import gunicorn_command, require_collected_static


class Command(BaseCommand):
    help = "Run gunicorn and a node agent; stop both on SIGTERM or Ctrl-C."

    def add_arguments(self, parser):
        parser.add_argument("--bind", default=settings.LEPTON_BIND, help="host:port (LEPTON_BIND).")
        parser.add_argument("--workers", type=int, default=settings.LEPTON_WEB_WORKERS, help="LEPTON_WEB_WORKERS.")
        parser.add_argument("--node-name", default=settings.LEPTON_NODE_NAME, help="LEPTON_NODE_NAME.")
        parser.add_argument(
            "--no-node-agent",
            action="store_true",
            default=not settings.LEPTON_SERVE_NODE_AGENT,
            help="Serve the web only, a web machine (LEPTON_SERVE_NODE_AGENT=0).",
        )

    def handle(self, *args, bind, workers, node_name, no_node_agent, **options):
        if workers < 1:
            raise CommandError(f"--workers (LEPTON_WEB_WORKERS) must be 1 or more; got {workers}")
        try:
            require_collected_static()  # here too, so the message is one line and not each worker's traceback
        except ImproperlyConfigured as error:
            raise CommandError(str(error)) from None
        commands = {"web": gunicorn_command(bind=bind, workers=workers, threads=settings.LEPTON_WEB_THREADS)}
        if not no_node_agent:
            commands["node"] = [sys.executable, "manage.py", "node_agent", "--name", node_name]
        started = f"Lepton is serving on http://{bind}/ with {workers} web workers (SIGTERM or Ctrl-C stops it)"
        self.stdout.write(self.style.SUCCESS(started))
        self.stdout.flush()
        ended = run_together(commands, stop_seconds=AGENT_STOP_SECONDS + 20)
        if ended:
            self.stderr.write(f"{', '.join(ended)} exited unexpectedly; stopped the rest.")
            sys.exit(1)
