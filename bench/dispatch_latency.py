"""Time from submit to `running`, through a real django-q2 cluster, ORM broker and Redis broker.

    .venv/bin/python bench/dispatch_latency.py [--jobs 20] [--redis redis://127.0.0.1:6379/14]

For each broker: a fresh SQLite installation, one `qcluster` process, then jobs submitted one
at a time (each waits for the previous to finish, so the worker is idle when a job arrives).
Latency = the job's `started_at` (the worker's claim) minus its `created_at` (the submit),
both written by the same machine's clock. Prints median and p95 per broker.
"""

import argparse
import os
import signal
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

SETUP = """
from django.contrib.auth import get_user_model
from apps.accounts.services import team_create
from apps.datasets import services as datasets
from apps.datasets.models import DatasetVersion
from apps.registry.services import model_create
user = get_user_model().objects.create_user("bench", password="x")
team = team_create(creator=user, name="Bench")
dataset = datasets.dataset_create(actor=user, team=team, name="iris", task="tabular_classification")
version = DatasetVersion.objects.create(dataset=dataset, number=1, source_format="bundled", source_name="iris",
                                        source_options={"name": "iris", "params": {}, "seed": 0})
datasets.version_ingest(version)
model_create(actor=user, team=team, name="mlp", task="tabular_classification",
             architecture={"family": "mlp", "hidden_sizes": [8]}, dataset=dataset)
"""

SUBMIT_MANY = """
import sqlite3, sys, time
from django.contrib.auth import get_user_model
from django.conf import settings
from apps.accounts.models import Team
from apps.jobs.services import job_submit
from apps.registry.models import Model
user, team, model = get_user_model().objects.get(username="bench"), Team.objects.get(), Model.objects.get()
database = settings.DATABASES["default"]["NAME"]
for n in range({jobs}):
    job = job_submit(actor=user, team=team, kind="train", spec={{"model": model.pk, "dataset": model.dataset_id,
                                                               "epochs": 1}})
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        with sqlite3.connect(database, timeout=20) as db:
            status = db.execute("SELECT status FROM jobs_job WHERE id = ?", (job.pk,)).fetchone()[0]
        if status in ("succeeded", "failed", "cancelled"):
            break
        time.sleep(0.05)
    print("done", n, status, flush=True)
"""


def _env(workdir: Path, redis_url: str | None) -> dict:
    env = {k: v for k, v in os.environ.items() if k not in {"DATABASE_URL", "REDIS_URL"}}
    env.update(
        DATABASE_URL=f"sqlite:///{workdir / 'lepton.sqlite3'}",
        LEPTON_VAR_DIR=str(workdir),
        LEPTON_MEDIA_ROOT=str(workdir / "media"),
        LEPTON_WORKERS="1",
    )
    if redis_url:
        env["REDIS_URL"] = redis_url
    return env


def _manage(env: dict, *args: str) -> str:
    return subprocess.run(
        [sys.executable, "manage.py", *args], cwd=ROOT, env=env, check=True, capture_output=True, text=True
    ).stdout


def _latencies(database: Path) -> list[float]:
    with sqlite3.connect(database) as db:
        rows = db.execute("SELECT created_at, started_at FROM jobs_job ORDER BY id").fetchall()
    parse = datetime.fromisoformat
    return [(parse(started) - parse(created)).total_seconds() for created, started in rows if started]


def measure(broker: str, jobs: int, redis_url: str | None) -> list[float]:
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        env = _env(workdir, redis_url if broker == "redis" else None)
        _manage(env, "migrate", "--noinput")
        _manage(env, "shell", "-c", SETUP)
        cluster = subprocess.Popen(
            [sys.executable, "manage.py", "qcluster"],
            cwd=ROOT,
            env=env,
            start_new_session=True,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            time.sleep(3)  # let the cluster start its worker
            _manage(env, "shell", "-c", SUBMIT_MANY.format(jobs=jobs))
        finally:
            os.killpg(cluster.pid, signal.SIGINT)
            cluster.wait(timeout=30)
        return _latencies(workdir / "lepton.sqlite3")


def _p95(values: list[float]) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=20)
    parser.add_argument("--redis", default=os.environ.get("LEPTON_TEST_REDIS_URL", "redis://127.0.0.1:6379/14"))
    args = parser.parse_args()
    print(f"{'broker':>6} {'jobs':>5} {'median s':>9} {'p95 s':>7} {'max s':>7}")
    for broker in ("orm", "redis"):
        latencies = measure(broker, args.jobs, args.redis)
        print(
            f"{broker:>6} {len(latencies):>5} {statistics.median(latencies):>9.3f} {_p95(latencies):>7.3f} "
            f"{max(latencies):>7.3f}"
        )


if __name__ == "__main__":
    main()
