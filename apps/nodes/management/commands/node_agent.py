"""The node agent: register this machine, run its workers, heartbeat until stopped.

    manage.py node_agent --name gpu-01 [--pool a100] [--slots 4] [--no-general]

It starts two django-q2 clusters: one on this node's own queue (`lepton-node-<name>`, where the
scheduler puts every job placed here: ingests, imports, training, evaluations, compressions,
exports; one worker per slot) and, unless --no-general, one with a single worker on the general
queue (the engine's periodic housekeeping: the reaper, placement, reconciles). Every
LEPTON_NODE_HEARTBEAT_SECONDS it reports that it is alive, with live GPU figures. Ctrl-C or
SIGTERM stops the workers and marks the node offline; its running jobs are requeued.
"""

import os
import signal
import subprocess
import sys
import time

from django.conf import settings
from django.core.management.base import BaseCommand
from django.db import close_old_connections

from apps.core.processes import AGENT_STOP_SECONDS, kill_tree
from apps.core.reconnect import TRANSIENT, retry_on_disconnect
from apps.nodes.inventory import host_facts, read_gpus
from apps.nodes.services import node_heartbeat, node_register, node_stopped
from apps.nodes.signals import node_alive

STOP_SECONDS = AGENT_STOP_SECONDS  # workers' time to finish their current task after SIGTERM


class Command(BaseCommand):
    help = "Register this machine as a node, run its job workers and heartbeat until stopped."

    def add_arguments(self, parser):
        parser.add_argument("--name", required=True, help="Unique node name (letters, digits, '-').")
        parser.add_argument("--pool", default="default")
        parser.add_argument("--slots", type=int, default=None, help="Jobs at once (default: one per GPU, at least 2).")
        parser.add_argument("--no-general", action="store_true", help="Do not serve the general queue.")

    def handle(self, *args, name, pool, slots, no_general, **options):
        # First of all: a SIGTERM that comes while the node registers or its clusters start must
        # still stop them in order (by default it would kill this process and orphan them).
        stopping = []
        for sig in (signal.SIGINT, signal.SIGTERM):
            signal.signal(sig, lambda *_: stopping.append(True))
        fake = settings.LEPTON_FAKE_GPUS
        gpus = read_gpus(fake_gpus=fake)
        # Every piece of work takes a slot: at least two, so an ingest or an evaluation can run beside a training.
        slots = slots or max(2, len(gpus))
        node = node_register(name=name, pool=pool, facts=host_facts(), gpus=gpus, worker_slots=slots)
        self.stdout.write(
            self.style.SUCCESS(
                f"node {node.name} ({pool}): {len(gpus)} GPU(s){' (fake)' if fake else ''}, {slots} slot(s); "
                f"queue {node.queue}"
            )
        )
        workers = {}
        try:
            workers["jobs"] = self._cluster(node.queue, slots)
            node_alive.send(sender=type(node), node=node, joined=True)
            if not no_general:
                workers["general"] = self._cluster(None, 1)  # housekeeping only: all work is placed on the node queue
            self._heartbeat(node, workers, stopping, fake)
        finally:
            self._stop(workers)
            retry_on_disconnect(node_stopped)(node_id=node.pk)  # its connection may have been cut meanwhile
            self.stdout.write(f"node {node.name} stopped")

    def _cluster(self, queue: str | None, workers: int) -> subprocess.Popen:
        env = {**os.environ, "LEPTON_WORKERS": str(workers)}
        if queue:
            env["Q_CLUSTER_NAME"] = queue
        return subprocess.Popen([sys.executable, "manage.py", "qcluster"], env=env)

    def _heartbeat(self, node, workers: dict, stopping: list, fake: int) -> None:
        while not stopping:
            dead = [label for label, process in workers.items() if process.poll() is not None]
            if dead:
                self.stderr.write(f"the {', '.join(dead)} worker cluster stopped; stopping the node")
                return
            try:
                node = self._beat(node, fake)
            except TRANSIENT as error:  # the database is down for longer than a lease: its workers carry on
                self.stderr.write(f"heartbeat: the database is unreachable ({error}); trying again")
            deadline = time.monotonic() + settings.LEPTON_NODE_HEARTBEAT_SECONDS
            while not stopping and time.monotonic() < deadline:
                time.sleep(0.2)

    @retry_on_disconnect
    def _beat(self, node, fake: int):
        """Report this node alive (and let the jobs app place and reap); a database blip is ridden out."""
        close_old_connections()
        node = node_heartbeat(node_id=node.pk, gpus=read_gpus(fake_gpus=fake))
        node_alive.send(sender=type(node), node=node)
        return node

    def _stop(self, workers: dict) -> None:
        for process in workers.values():
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + STOP_SECONDS
        for process in workers.values():
            try:
                process.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                kill_tree(process)  # the cluster and its workers: none may linger as an orphan
