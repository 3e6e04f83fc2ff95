"""Ingest through a real django-q2 cluster, including one killed in the middle of the work."""

import signal
import sqlite3

import pytest

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

STATE = "SELECT status, attempts, claimed_at, progress, error, sample_count FROM datasets_datasetversion WHERE id = ?"


def _state(env, pk) -> dict:
    """Read the row straight from the SQLite file (no Django start-up per poll)."""
    with sqlite3.connect(env["DATABASE_URL"].removeprefix("sqlite:///"), timeout=20) as db:
        status, attempts, claimed_at, progress, error, samples = db.execute(STATE, (pk,)).fetchone()
    return {
        "status": status,
        "attempts": attempts,
        "claimed": claimed_at is not None,
        "progress": progress,
        "error": error,
        "samples": samples,
    }


def _create(env, params) -> int:
    return int(manage(env, "shell", "-c", SETUP.format(params=params)).strip().splitlines()[-1])


@pytest.fixture
def env(tmp_path):
    return lepton_env(tmp_path, LEPTON_WORK_STALE_SECONDS="2", LEPTON_WORKERS="1")


def test_a_real_worker_ingests_a_version(env):
    pk = _create(env, {"samples": 2000, "features": 10})
    cluster = start(env, "qcluster")
    try:
        state = wait_until(lambda: (s := _state(env, pk))["status"] != "processing" and s, seconds=60, what="ingest")
    finally:
        stop(cluster)
    assert state == {"status": "ready", "attempts": 1, "claimed": True, "progress": 1.0, "error": "", "samples": 2000}


def test_a_worker_killed_mid_ingest_is_replaced_and_the_version_still_lands(env):
    pk = _create(env, {"samples": 3_000_000, "features": 40})  # big enough to take seconds
    cluster = start(env, "qcluster")
    wait_until(lambda: _state(env, pk)["claimed"], seconds=60, what="the worker claiming the ingest")
    stop(cluster, signal.SIGKILL)  # the whole cluster dies at once, mid-work

    killed = _state(env, pk)
    assert (killed["status"], killed["attempts"]) == ("processing", 1)

    cluster = start(env, "qcluster")  # its scheduler runs the reaper every minute; run it now
    try:
        wait_until(lambda: manage(env, "shell", "-c", REAP).strip().endswith("1"), seconds=30, what="the reaper")
        state = wait_until(lambda: (s := _state(env, pk))["status"] != "processing" and s, seconds=120, what="retry")
    finally:
        stop(cluster)
    assert (state["status"], state["attempts"], state["samples"]) == ("ready", 2, 3_000_000)


REAP = "from apps.datasets.services import versions_reap_stale; print(versions_reap_stale())"
