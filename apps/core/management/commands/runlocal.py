"""Run the web server and a local node agent (its workers) together; Ctrl-C stops both.

`make run` uses this so a laptop needs one command. In production run the web server
(gunicorn or similar) and the workers as separate services instead.
"""

import signal
import subprocess
import sys
import time

from django.core.management.base import BaseCommand

from apps.core.processes import kill_tree


class Command(BaseCommand):
    help = "Start the development web server and a local node agent; stop both on Ctrl-C."

    def add_arguments(self, parser):
        parser.add_argument("addrport", nargs="?", default="127.0.0.1:8000")

    def handle(self, *args, addrport, **options):
        stopping = False

        def stop(signum, frame):
            nonlocal stopping
            stopping = True

        # Before starting anything: a signal that comes while they start must stop them too.
        signal.signal(signal.SIGINT, stop)
        signal.signal(signal.SIGTERM, stop)
        manage = [sys.executable, "manage.py"]
        processes = {
            "web": subprocess.Popen([*manage, "runserver", "--noreload", addrport]),  # noqa: S603
            "node": subprocess.Popen([*manage, "node_agent", "--name", "local"]),  # noqa: S603
        }
        self.stdout.write(self.style.SUCCESS(f"Lepton is starting on http://{addrport}/ (Ctrl-C stops it)"))
        try:
            while not stopping and all(p.poll() is None for p in processes.values()):
                time.sleep(0.5)
        finally:
            self._stop_all(processes)
        exited = [name for name, p in processes.items() if p.returncode not in (0, -signal.SIGINT, -signal.SIGTERM)]
        if exited and not stopping:
            self.stderr.write(f"{', '.join(exited)} exited unexpectedly; stopped the rest.")
            sys.exit(1)

    def _stop_all(self, processes):
        for process in processes.values():
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + 45  # the node agent waits for its worker clusters
        for process in processes.values():
            try:
                process.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                kill_tree(process)
