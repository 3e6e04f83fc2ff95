"""Jobs through real django-q2 clusters: each broker, cancel within 5 s, a SIGKILLed worker resumed."""

import json
import sqlite3

import pytest

from tests.processes import lepton_env, manage, start, stop, wait_until

SETUP = """
from django.contrib.auth import get_user_model
from apps.accounts.services import team_create
from apps.datasets import services as datasets
from apps.datasets.models import DatasetVersion
from apps.registry.services import model_create
from apps.jobs.services import job_submit
user = get_user_model().objects.create_user("w", password="x")
team = team_create(creator=user, name="Workers")
dataset = datasets.dataset_create(actor=user, team=team, name="digits", task="image_classification")
version = DatasetVersion.objects.create(dataset=dataset, number=1, source_format="bundled", source_name="digits",
                                        source_options={{"name": "digits", "params": {{}}, "seed": 0}})
datasets.version_ingest(version)
model = model_create(actor=user, team=team, name="mlp", task="image_classification",
                     architecture={{"family": "mlp", "hidden_sizes": {hidden}}}, dataset=dataset)
job = job_submit(actor=user, team=team, kind="train", spec={{"model": model.pk, "dataset": dataset.pk, **{spec}}})
print(job.pk)
"""

CANCEL = """
from django.contrib.auth import get_user_model
from apps.jobs.models import Job
from apps.jobs.services import job_cancel
job_cancel(actor=get_user_model().objects.get(username="w"), job=Job.objects.get(pk={pk}))
"""

REAP = "from apps.jobs.services import jobs_reap_stale; print(jobs_reap_stale())"
QUERY = "SELECT status, attempts, checkpoint_epoch, status_reason, result FROM jobs_job WHERE id = ?"


def _job(env, pk) -> dict:
    with sqlite3.connect(env["DATABASE_URL"].removeprefix("sqlite:///"), timeout=20) as db:
        status, attempts, epoch, reason, result = db.execute(QUERY, (pk,)).fetchone()
        epochs = [
            row[0] for row in db.execute("SELECT epoch FROM jobs_jobepoch WHERE job_id = ? ORDER BY epoch", (pk,))
        ]
        log = _log(db, pk)
    return {
        "status": status,
        "attempts": attempts,
        "checkpoint_epoch": epoch,
        "reason": reason,
        "result": json.loads(result or "{}"),
        "epochs": epochs,
        "log": log,
    }


def _log(db, pk) -> list[str]:
    return [row[0] for row in db.execute("SELECT message FROM jobs_joblogline WHERE job_id = ? ORDER BY id", (pk,))]


def _submit(env, *, hidden="[64]", spec=None) -> int:
    output = manage(env, "shell", "-c", SETUP.format(hidden=hidden, spec=spec or {"epochs": 3}))
    return int(output.strip().splitlines()[-1])


def _finished(env, pk):
    state = _job(env, pk)
    return state if state["status"] in ("succeeded", "failed", "cancelled") else None


@pytest.mark.parametrize("broker", ["orm", "redis"])
def test_a_training_job_runs_through_a_real_cluster(tmp_path, broker, request):
    extra = {"REDIS_URL": request.getfixturevalue("redis_url")} if broker == "redis" else {}
    env = lepton_env(tmp_path, LEPTON_WORKERS="1", **extra)
    pk = _submit(env)
    agent = start(env, "node_agent", "--name", "w1")
    try:
        state = wait_until(lambda: _finished(env, pk), seconds=120, what="the job finishing")
    finally:
        stop(agent)
    assert state["status"] == "succeeded", state["reason"]
    assert state["epochs"] == [1, 2, 3]
    assert state["result"]["version"] == 1


def test_cancel_takes_effect_within_5_seconds(tmp_path):
    env = lepton_env(tmp_path, LEPTON_WORKERS="1")
    pk = _submit(env, hidden="[256]", spec={"epochs": 1000})
    cluster = start(env, "node_agent", "--name", "w1")
    try:
        wait_until(lambda: _job(env, pk)["epochs"], seconds=120, what="the first epoch")
        manage(env, "shell", "-c", CANCEL.format(pk=pk))
        state = wait_until(lambda: _finished(env, pk), seconds=30, interval=0.1, what="the cancel")
    finally:
        stop(cluster)
    assert state["status"] == "cancelled"
    took = _cancel_seconds(env, pk)  # from the request's commit to the job's end, as the database saw them
    assert took < 5, f"cancel took {took:.1f} s"


def _cancel_seconds(env, pk) -> float:
    from datetime import datetime

    with sqlite3.connect(env["DATABASE_URL"].removeprefix("sqlite:///"), timeout=20) as db:
        requested, finished = db.execute(
            "SELECT cancel_requested_at, finished_at FROM jobs_job WHERE id = ?", (pk,)
        ).fetchone()
    return (datetime.fromisoformat(finished) - datetime.fromisoformat(requested)).total_seconds()


# The SIGKILLed node agent case lives in tests/nodes/test_cluster.py (two nodes, GPUs, the ledger).
