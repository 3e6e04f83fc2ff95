"""Time from submit to `running`, through a real node agent's django-q2 clusters, ORM broker and Redis broker.

    .venv/bin/python bench/dispatch_latency.py [--jobs 20] [--redis redis://127.0.0.1:6379/14] [--smoke]

For each broker: a fresh copy of one new SQLite installation (migrated, with a user, an iris
dataset and a model), one `node_agent` process (as `runlocal` starts it: its node's queue with
the default worker slots, and the general queue), then jobs submitted one at a time (each
waits for the previous to finish, so a worker is idle when a job arrives). Latency = the job's
`started_at` (the worker's claim) minus its `created_at` (the submit): the scheduler's
placement on the node, the broker and the claim, both written by the same machine's clock.
Prints median and p95 per broker. A job that does not succeed, or never starts, stops the
run with an error.

--smoke: the same for both brokers (a fresh installation, a real node agent, real jobs) with
2 jobs each, and the same table; there are no thresholds to judge.
"""

import argparse
import os
import shutil
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
SMOKE = {"jobs": 2}  # --smoke

SETUP = """
from django.core.management import call_command
call_command("migrate", verbosity=0)
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
    if status != "succeeded":
        job.refresh_from_db()
        sys.exit(f"job {{job.pk}} ended {{status}} (waited 120 s at most): {{job.status_reason}}")
    print("done", n, status, flush=True)
"""


def _env(workdir: Path, redis_url: str | None) -> dict:
    env = {k: v for k, v in os.environ.items() if k not in {"DATABASE_URL", "REDIS_URL"}}
    env.update(
        DATABASE_URL=f"sqlite:///{workdir / 'lepton.sqlite3'}",
        LEPTON_VAR_DIR=str(workdir),
        LEPTON_MEDIA_ROOT=str(workdir / "media"),
        LOG_LEVEL="INFO",  # the clusters' "running." lines say when the workers are up
    )
    if redis_url:
        env["REDIS_URL"] = redis_url
    return env


def _manage(env: dict, *args: str) -> str:
    done = subprocess.run([sys.executable, "manage.py", *args], cwd=ROOT, env=env, capture_output=True, text=True)
    if done.returncode:
        raise RuntimeError(f"manage.py {args[0]} exited {done.returncode}:\n{done.stderr[-3000:]}")
    return done.stdout


def _wait_for_workers(log: Path, agent: subprocess.Popen) -> None:
    """Until both clusters of the agent (its node's queue, the general one) say they are running."""
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline and agent.poll() is None:
        if log.read_text(errors="replace").count(" running.") >= 2:  # django-q2: "Q Cluster <name> running."
            return
        time.sleep(0.2)
    tail = log.read_text(errors="replace")[-3000:]
    raise RuntimeError(f"the node agent's workers did not start (agent exit status {agent.poll()}):\n{tail}")


def _stop(agent: subprocess.Popen) -> None:
    """SIGTERM, as runlocal stops it: the agent stops its clusters and marks its node offline."""
    agent.send_signal(signal.SIGTERM)
    try:
        agent.wait(timeout=60)
    except subprocess.TimeoutExpired:
        os.killpg(agent.pid, signal.SIGKILL)  # the agent and the clusters it started (its own session)
        agent.wait()


def _latencies(database: Path) -> list[float]:
    with sqlite3.connect(database) as db:
        rows = db.execute("SELECT created_at, started_at FROM jobs_job ORDER BY id").fetchall()
    parse = datetime.fromisoformat
    return [(parse(started) - parse(created)).total_seconds() for created, started in rows if started]


def installation(workdir: Path) -> Path:
    """A new installation (database and media) that each broker's run starts from a copy of."""
    _manage(_env(workdir, None), "shell", "-c", SETUP)
    return workdir


def measure(broker: str, jobs: int, redis_url: str | None, template: Path) -> list[float]:
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp) / "lepton"
        shutil.copytree(template, workdir)
        env = _env(workdir, redis_url if broker == "redis" else None)
        log = workdir / "agent.log"
        with log.open("w") as output:
            agent = subprocess.Popen(
                [sys.executable, "manage.py", "node_agent", "--name", "bench"],
                cwd=ROOT,
                env=env,
                start_new_session=True,
                stdout=output,
                stderr=subprocess.STDOUT,
            )
        try:
            _wait_for_workers(log, agent)
            _manage(env, "shell", "-c", SUBMIT_MANY.format(jobs=jobs))
        finally:
            _stop(agent)
        latencies = _latencies(workdir / "lepton.sqlite3")
        if len(latencies) < jobs:
            raise RuntimeError(f"{broker}: {jobs - len(latencies)} of {jobs} jobs never started")
        return latencies


def _p95(values: list[float]) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=20)
    parser.add_argument("--redis", default=os.environ.get("LEPTON_TEST_REDIS_URL", "redis://127.0.0.1:6379/14"))
    parser.add_argument("--smoke", action="store_true", help="CI's quick run at the smallest sizes (docstring)")
    args = parser.parse_args()
    if args.smoke:  # smoke sizes replace the defaults only; flags given still win
        parser.set_defaults(**SMOKE)
        args = parser.parse_args()
    # `timeout` (CI) sends SIGTERM: exit through the `finally` that stops the processes started here
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    with tempfile.TemporaryDirectory() as tmp:
        template = installation(Path(tmp))
        print(f"{'broker':>6} {'jobs':>5} {'median s':>9} {'p95 s':>7} {'max s':>7}")
        for broker in ("orm", "redis"):
            latencies = measure(broker, args.jobs, args.redis, template)
            print(
                f"{broker:>6} {len(latencies):>5} {statistics.median(latencies):>9.3f} {_p95(latencies):>7.3f} "
                f"{max(latencies):>7.3f}"
            )


if __name__ == "__main__":
    main()
