"""Run the web server and a local node agent (its workers) together; Ctrl-C stops both.

`make run` uses this so a laptop needs one command. The web server is the same gunicorn that
`serve` runs in production, not Django's runserver: runserver answers a kept-alive request in
two writes and the second waits for the client's delayed ACK, so every SDK call on a reused
connection took ~44 ms instead of ~2 ms. On SQLite its few workers share the database through
WAL and the busy timeout (settings.SQLITE_OPTIONS), like the node agent's workers do.
"""

import sys

from django.conf import settings
from django.core.management.base import BaseCommand

from apps.core.processes import AGENT_STOP_SECONDS, run_together
from apps.core.webserver import gunicorn_command

# A laptop: two web workers are plenty for one person, and each one loads torch.
LOCAL_WEB_WORKERS = 2


class Command(BaseCommand):
    help = "Start the web server (gunicorn) and a local node agent; stop both on Ctrl-C or SIGTERM."

    def add_arguments(self, parser):
        parser.add_argument("addrport", nargs="?", default="127.0.0.1:8000")
        parser.add_argument("--workers", type=int, default=LOCAL_WEB_WORKERS, help="Web worker processes.")

    def handle(self, *args, addrport, workers, **options):
        web = gunicorn_command(bind=addrport, workers=workers, threads=settings.LEPTON_WEB_THREADS)
        commands = {"web": web, "node": [sys.executable, "manage.py", "node_agent", "--name", "local"]}
        self.stdout.write(self.style.SUCCESS(f"Lepton is starting on http://{addrport}/ (Ctrl-C stops it)"))
        self.stdout.flush()
        ended = run_together(commands, stop_seconds=AGENT_STOP_SECONDS + 20)  # the agent waits for its clusters
        if ended:
            self.stderr.write(f"{', '.join(ended)} exited unexpectedly; stopped the rest.")
            sys.exit(1)
