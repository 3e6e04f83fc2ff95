"""A job on a real node agent rides out PostgreSQL cutting every connection (pg_terminate_backend)."""

import os

import pytest
from django.db import connection

from apps.jobs.models import Job, JobEpoch, JobLogLine
from apps.nodes.models import Node
from tests.nodes.test_cluster import SETUP, SUBMIT
from tests.processes import manage, start, stop, wait_until

pytestmark = pytest.mark.skipif(
    connection.vendor != "postgresql",
    reason="cuts connections with PostgreSQL's pg_terminate_backend; SQLite has none to cut (CI runs it on PG)",
)

EPOCHS = 50  # cuts after epochs 10, 20 and 30, each while it runs
CUT_EVERY_OTHER_CONNECTION = (
    "SELECT COUNT(pg_terminate_backend(pid)) FROM pg_stat_activity "
    "WHERE datname = current_database() AND pid <> pg_backend_pid()"
)


@pytest.fixture
def cpu_node():
    """No pretend node here (the jobs tests' default): the real agent is the only node."""


def _env_on_the_test_database(tmp_path, **extra) -> dict:
    """Processes that share this test's PostgreSQL database (already migrated by pytest-django)."""
    db = connection.settings_dict
    password = f":{db['PASSWORD']}" if db.get("PASSWORD") else ""
    url = f"postgres://{db['USER']}{password}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{db['NAME']}"
    env = {k: v for k, v in os.environ.items() if k not in {"DATABASE_URL", "REDIS_URL"}}
    return {
        **env,
        "DATABASE_URL": url,
        "LEPTON_VAR_DIR": str(tmp_path),
        "LEPTON_MEDIA_ROOT": str(tmp_path / "media"),
        **extra,
    }


def _cut_every_connection() -> int:
    with connection.cursor() as cursor:
        cursor.execute(CUT_EVERY_OTHER_CONNECTION)
        return cursor.fetchone()[0]


def _log(pk) -> list[str]:
    return [f"{line.attempt} {line.level} {line.message[:300]}" for line in JobLogLine.objects.filter(job_id=pk)]


def _epochs(pk) -> int:
    return JobEpoch.objects.filter(job_id=pk).count()


@pytest.mark.django_db(transaction=True, serialized_rollback=True)  # keeps the plans migrations made
def test_three_database_disconnects_during_a_long_job_cost_it_no_attempt(tmp_path):
    env = _env_on_the_test_database(
        tmp_path,
        LEPTON_WORKERS="1",
        LEPTON_HEARTBEAT_SECONDS="1",
        LEPTON_NODE_HEARTBEAT_SECONDS="1",
        LEPTON_PROGRESS_INTERVAL="0.1",
    )
    manage(env, "shell", "-c", SETUP.format(quotas={"alpha": 1}, hidden="[128, 128]"))
    agent = start(env, "node_agent", "--name", "blips")
    try:
        wait_until(lambda: Node.objects.filter(status="online").exists(), seconds=60, what="the node registering")
        output = manage(env, "shell", "-c", SUBMIT.format(plan=[("alpha", 0)], spec={"epochs": EPOCHS, "seed": 3}))
        job = int(output.strip().splitlines()[-1])
        for blip in (1, 2, 3):
            wait_until(lambda blip=blip: _epochs(job) >= 10 * blip, seconds=60, what=f"epoch {10 * blip}")
            running = Job.objects.get(pk=job)
            assert (running.status, running.attempts) == ("running", 1), _log(job)
            # the job's connections are open most of the time, not always: cut until one was there
            wait_until(lambda: _cut_every_connection() >= 1, seconds=10, interval=0.05, what=f"cut {blip}")
        state = wait_until(
            lambda: (j := Job.objects.get(pk=job)).status in ("succeeded", "failed", "cancelled") and j,
            seconds=120,
            what="the job ending",
        )
    finally:
        print(stop(agent)[-20000:])  # the agent's own account, shown when the test fails
    assert (state.status, state.attempts) == ("succeeded", 1), state.status_reason
    assert _epochs(job) == EPOCHS
