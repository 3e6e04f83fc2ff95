"""Faults around real node agents: a cancel sent while the worker is dead, a submit killed before its enqueue."""

import signal
import subprocess
import sys
import textwrap

import pytest

from tests.nodes.test_cluster import SETUP, SUBMIT, _db, _nodes
from tests.processes import ROOT, lepton_env, manage, start, stop, wait_until

CANCEL = """
from django.contrib.auth import get_user_model
from apps.jobs.models import Job
from apps.jobs.services import job_cancel
print(job_cancel(actor=get_user_model().objects.get(username="ops"), job=Job.objects.get(pk={pk})).status)
"""

# The process that places the job dies where the broker enqueue would happen: after the commit
# that made the job scheduled (and gave it a GPU), before the task reached the broker.
DIE_BEFORE_ENQUEUE = (
    "import os, signal\n"
    "from apps.core import queue\n"
    "queue.async_task = lambda *args, **kwargs: os.kill(os.getpid(), signal.SIGKILL)\n"
)

# The submit and its placement pass commit together in this process, which then dies at its first
# enqueue after the commit: the job is scheduled, holding its GPU, and its task never left.
PLACED_IN_ONE_COMMIT = """
from django.db import transaction
from apps.jobs.scheduler import jobs_place_queued
with transaction.atomic():
{submit}
    jobs_place_queued()
"""

JOB = "SELECT status, attempts, status_reason FROM jobs_job WHERE id = ?"
FAST = {
    "LEPTON_WORKERS": "1",
    "LEPTON_JOB_STALE_SECONDS": "3",
    "LEPTON_HEARTBEAT_SECONDS": "1",
    "LEPTON_NODE_HEARTBEAT_SECONDS": "1",
    "LEPTON_NODE_STALE_SECONDS": "3",
    "LEPTON_FAKE_GPUS": "1",
}


def _job(env, pk) -> tuple:
    with _db(env) as db:
        return db.execute(JOB, (pk,)).fetchone()


def _ended(env, pk):
    row = _job(env, pk)
    return row if row[0] in ("succeeded", "failed", "cancelled") else None


def _epochs(env, pk) -> int:
    with _db(env) as db:
        return db.execute("SELECT COUNT(*) FROM jobs_jobepoch WHERE job_id = ?", (pk,)).fetchone()[0]


def _submit(env, epochs: int) -> int:
    output = manage(env, "shell", "-c", SUBMIT.format(plan=[("alpha", 1)], spec={"epochs": epochs, "seed": 3}))
    return int(output.strip().splitlines()[-1])


def test_a_cancel_sent_while_the_worker_is_dead_ends_the_job_cancelled_without_another_attempt(tmp_path):
    env = lepton_env(tmp_path, **FAST)
    manage(env, "shell", "-c", SETUP.format(quotas={"alpha": 1}, hidden="[128, 128]"))
    first = start(env, "node_agent", "--name", "first")
    try:
        wait_until(lambda: _nodes(env) == 1, seconds=60, what="the first node registering")
        job = _submit(env, epochs=400)
        wait_until(lambda: _epochs(env, job) >= 1, seconds=60, what="the first epoch on the first node")
    finally:
        stop(first, signal.SIGKILL)  # the worker dies; the job still reads running
    assert manage(env, "shell", "-c", CANCEL.format(pk=job)).strip().endswith("running")  # cancel requested only
    second = start(env, "node_agent", "--name", "second", "--no-general")  # its heartbeats run the reaper
    try:
        state = wait_until(lambda: _ended(env, job), seconds=60, what="the job ending")
    finally:
        stop(second)
    assert state[:2] == ("cancelled", 1), state
    with _db(env) as db:
        node = db.execute("SELECT n.name FROM jobs_job j JOIN nodes_node n ON n.id = j.node_id WHERE j.id = ?", (job,))
        ledger = db.execute("SELECT source FROM accounts_usagerecord WHERE kind = 'gpu_seconds'").fetchall()
        leases = db.execute("SELECT COUNT(*) FROM jobs_gpulease").fetchone()[0]
    assert node.fetchone()[0] == "first"  # never started on the second node
    assert ledger == [(f"job:{job}:attempt:1",)]  # billed once
    assert leases == 0


@pytest.mark.parametrize("broker", ["orm", "redis"])
def test_a_placement_killed_before_its_broker_enqueue_frees_the_gpu_within_seconds(tmp_path, broker, request):
    extra = {"REDIS_URL": request.getfixturevalue("redis_url")} if broker == "redis" else {}
    env = lepton_env(tmp_path, **FAST, **extra)  # LEPTON_DISPATCH_TIMEOUT_SECONDS stays at its 900 s default
    manage(env, "shell", "-c", SETUP.format(quotas={"alpha": 1}, hidden="[16]"))
    agent = start(env, "node_agent", "--name", f"undelivered-{broker}")
    try:
        wait_until(lambda: _nodes(env) == 1, seconds=60, what="the node registering")
        submit = SUBMIT.format(plan=[("alpha", 1)], spec={"epochs": 2})
        script = DIE_BEFORE_ENQUEUE + PLACED_IN_ONE_COMMIT.format(submit=textwrap.indent(submit, "    "))
        died = subprocess.run(
            [sys.executable, "manage.py", "shell", "-c", script], cwd=ROOT, env=env, capture_output=True, timeout=120
        )
        assert died.returncode == -signal.SIGKILL, died.stderr.decode(errors="replace")
        with _db(env) as db:
            job, status = db.execute("SELECT id, status FROM jobs_job").fetchone()
            leases = db.execute("SELECT COUNT(*) FROM jobs_gpulease").fetchone()[0]
        assert (status, leases) == ("scheduled", 1)  # committed, holding its GPU, with no task in the broker
        state = wait_until(lambda: _ended(env, job), seconds=60, what="the job running and ending")
    finally:
        stop(agent)
    assert state[:2] == ("succeeded", 1), state
