"""Ingest through real node agents: placed on a node, requeued on another when its agent is killed mid-work.

One test covers both: the first agent's worker takes the ingest job (placed on its node), the
second finishes it as the job's second attempt. (The plain path of an ingest job, without a
kill, runs through a real agent in tests/sdk/test_end_to_end.py: an image zip uploaded with the SDK.)
"""

import signal
import sqlite3

from tests.processes import lepton_env, manage, start, stop, wait_until

SETUP = """
from django.contrib.auth import get_user_model
from apps.accounts.services import team_create
from apps.datasets import services
user = get_user_model().objects.create_user("w", password="x")
team = team_create(creator=user, name="Workers")
dataset = services.dataset_create(actor=user, team=team, name="big", task="tabular_classification")
version = services.version_bundled(actor=user, dataset=dataset, name="synthetic", params={params})
print(version.pk)
"""

STATE = """
SELECT v.status, v.error, v.sample_count, j.status, j.attempts, j.claimed_at, n.name
FROM datasets_datasetversion v JOIN jobs_job j ON j.id = v.produced_by_job LEFT JOIN nodes_node n ON n.id = j.node_id
WHERE v.id = ?
"""


def _state(env, pk) -> dict:
    """Read the rows straight from the SQLite file (no Django start-up per poll)."""
    with sqlite3.connect(env["DATABASE_URL"].removeprefix("sqlite:///"), timeout=20) as db:
        status, error, samples, job_status, attempts, claimed_at, node = db.execute(STATE, (pk,)).fetchone()
    return {
        "status": status,
        "error": error,
        "samples": samples,
        "job": job_status,
        "attempts": attempts,
        "claimed": claimed_at is not None,
        "node": node,
    }


def _create(env, params) -> int:
    return int(manage(env, "shell", "-c", SETUP.format(params=params)).strip().splitlines()[-1])


def _finished(env, pk):
    state = _state(env, pk)
    return state if state["status"] != "processing" else None


def test_killing_the_node_agent_mid_ingest_requeues_it_and_it_finishes_on_another_node(tmp_path):
    env = lepton_env(
        tmp_path,
        LEPTON_WORKERS="1",
        LEPTON_NODE_HEARTBEAT_SECONDS="1",
        LEPTON_NODE_STALE_SECONDS="3",
        LEPTON_JOB_STALE_SECONDS="3",
        LEPTON_HEARTBEAT_SECONDS="1",
    )
    pk = _create(env, {"samples": 3_000_000, "features": 40})  # big enough to take seconds
    first = start(env, "node_agent", "--name", "first")
    wait_until(lambda: _state(env, pk)["claimed"], seconds=90, what="the first node's worker taking the ingest")
    stop(first, signal.SIGKILL)  # the agent and its workers die at once, mid-work

    killed = _state(env, pk)
    assert (killed["status"], killed["job"], killed["attempts"], killed["node"]) == (
        "processing",
        "running",
        1,
        "first",
    )
    second = start(env, "node_agent", "--name", "second")  # its heartbeats notice the silent node
    try:
        state = wait_until(lambda: _finished(env, pk), seconds=180, what="the ingest on the second node")
    finally:
        stop(second, signal.SIGTERM)
    assert (state["status"], state["samples"]) == ("ready", 3_000_000), (state, _log(env, pk))
    assert (state["job"], state["attempts"], state["node"]) == ("succeeded", 2, "second")


def _log(env, pk) -> list[str]:
    with sqlite3.connect(env["DATABASE_URL"].removeprefix("sqlite:///"), timeout=20) as db:
        query = (
            "SELECT l.message FROM jobs_joblogline l JOIN datasets_datasetversion v ON v.produced_by_job = l.job_id "
            "WHERE v.id = ? ORDER BY l.id"
        )
        return [row[0] for row in db.execute(query, (pk,))]
