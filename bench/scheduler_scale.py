"""The scheduler at cluster scale: placements/s to fill the cluster, and the cost of a pass once it is full.

    .venv/bin/python bench/scheduler_scale.py [--nodes 100] [--jobs 10000] [--teams 20] [--smoke]

On PostgreSQL (the server of DATABASE_URL, default postgres://postgres@127.0.0.1:5432; a fresh
database `lepton_bench_scheduler` is made and dropped): N nodes with 8 GPUs and 8 worker slots
each, and J queued 1-GPU jobs from T teams (one team holds half of them, the rest share the
other half), every quota wide open. Then placement passes run, as the pass task runs them, until
the cluster is full: placements/s is the jobs placed over the wall time of those passes,
including the hand-over of every attempt to the broker (the ORM broker, in the same database).
Then, with the cluster full and the queue still deep, one more pass: its queries and its wall
time (the median of 5). The same run is repeated at a tenth of the size (N/10 nodes, J/10 jobs):
the full-cluster pass must not cost more with 10x the queued jobs.

Goals (issue "The scheduler at cluster scale"): >= 1,000 placements/s, a full-cluster pass
<= 50 queries and <= 100 ms. --smoke: 4 nodes, 200 jobs, 4 teams (and 1 node, 20 jobs); the same
table, no goals judged; without PostgreSQL it runs on a temporary SQLite file and says so.
"""

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
BENCH_DB = "lepton_bench_scheduler"
GOALS = {"placements_per_second": 1000, "full_pass_queries": 50, "full_pass_ms": 100}


def _database_url() -> tuple[str, str | None]:
    """(the bench database's URL, the admin URL to create and drop it) — SQLite if no PostgreSQL answers."""
    base = os.environ.get("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/postgres")
    if base.startswith("postgres"):
        import psycopg

        admin = base.rsplit("/", 1)[0] + "/postgres"
        try:
            with psycopg.connect(admin.replace("postgres://", "postgresql://", 1), autocommit=True) as db:
                db.execute(f"DROP DATABASE IF EXISTS {BENCH_DB} WITH (FORCE)")
                db.execute(f"CREATE DATABASE {BENCH_DB}")
            return base.rsplit("/", 1)[0] + f"/{BENCH_DB}", admin
        except psycopg.OperationalError as error:
            print(f"PostgreSQL not reachable ({error}); using SQLite", flush=True)
    return f"sqlite:///{tempfile.mkdtemp(prefix='lepton-bench-')}/bench.sqlite3", None


def _drop(admin: str | None) -> None:
    if admin:
        import psycopg
        from django.db import connections

        connections.close_all()
        with psycopg.connect(admin.replace("postgres://", "postgresql://", 1), autocommit=True) as db:
            db.execute(f"DROP DATABASE IF EXISTS {BENCH_DB} WITH (FORCE)")


def _setup_django(url: str) -> None:
    os.environ["DATABASE_URL"] = url
    os.environ.pop("REDIS_URL", None)  # the ORM broker: the hand-over's cost is measured in the same database
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "lepton_web.settings")
    os.environ["LEPTON_SCHEDULER_MIN_INTERVAL"] = "0"
    import logging

    import django

    django.setup()
    logging.getLogger("django-q").setLevel(logging.WARNING)  # a line per enqueued task otherwise
    from django.core.management import call_command

    call_command("migrate", verbosity=0)


def _cluster(nodes: int, jobs: int, teams: int) -> None:
    """A fresh cluster: nodes with 8 GPUs, teams with open quotas, queued 1-GPU jobs (half from one team)."""
    from django.contrib.auth import get_user_model
    from django.utils import timezone
    from django_q.models import OrmQ

    from apps.accounts.models import Team, TeamQuota
    from apps.jobs.models import GpuLease, Job, SchedulerState
    from apps.nodes.models import Gpu, Node

    GpuLease.objects.all().delete()
    Job.objects.all().delete()
    Gpu.objects.all().delete()
    Node.objects.all().delete()
    OrmQ.objects.all().delete()
    SchedulerState.objects.all().delete()
    user, _ = get_user_model().objects.get_or_create(username="bench")
    team_rows = [Team.objects.get_or_create(slug=f"team-{i}", defaults={"name": f"Team {i}"})[0] for i in range(teams)]
    TeamQuota.objects.filter(team__in=team_rows).update(max_concurrent_gpus=100_000, max_running_jobs=100_000)
    now = timezone.now()
    made = Node.objects.bulk_create(
        [Node(name=f"node-{i:03d}", pool="default", worker_slots=8, last_heartbeat_at=now) for i in range(nodes)]
    )
    Gpu.objects.bulk_create([Gpu(node=n, index=g, model_name="bench GPU") for n in made for g in range(8)])
    rows = []
    for i in range(jobs):
        team = team_rows[0] if i % 2 == 0 or teams == 1 else team_rows[1 + i % (teams - 1)]
        rows.append(
            Job(
                team=team,
                submitted_by=user,
                kind="train",
                spec={},
                gpus=1,
                status_reason="waiting to be placed",
                created_at=now - timezone.timedelta(microseconds=jobs - i),
            )
        )
    Job.objects.bulk_create(rows, batch_size=2000)


def _measure(nodes: int, jobs: int, teams: int) -> dict:
    from django.db import connection, transaction
    from django.test.utils import CaptureQueriesContext

    from apps.jobs import scheduler
    from apps.jobs.models import Job

    _cluster(nodes, jobs, teams)
    capacity = nodes * 8
    placed, passes, started = 0, 0, time.perf_counter()
    while placed < min(capacity, jobs):
        got = scheduler.jobs_place_queued()  # commits, then hands each attempt to the broker
        passes += 1
        if not got:
            break
        placed += got
    fill_seconds = time.perf_counter() - started
    assert transaction.get_autocommit()
    scheduled = Job.objects.filter(status="scheduled").count()
    if scheduled != min(capacity, jobs):
        raise SystemExit(f"the cluster did not fill: {scheduled} scheduled of {min(capacity, jobs)}")
    with CaptureQueriesContext(connection) as captured:
        assert scheduler.jobs_place_queued() == 0
    times = []
    for _ in range(5):
        began = time.perf_counter()
        scheduler.jobs_place_queued()
        times.append(time.perf_counter() - began)
    return {
        "nodes": nodes,
        "gpus": capacity,
        "jobs": jobs,
        "teams": teams,
        "placed": placed,
        "passes": passes,
        "placements_per_second": placed / fill_seconds,
        "full_pass_queries": len(captured.captured_queries),
        "full_pass_ms": 1000 * statistics.median(times),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--nodes", type=int, default=100)
    parser.add_argument("--jobs", type=int, default=10_000)
    parser.add_argument("--teams", type=int, default=20)
    parser.add_argument("--smoke", action="store_true", help="a small cluster; no goals judged")
    args = parser.parse_args()
    if args.smoke:
        args.nodes, args.jobs, args.teams = 4, 200, 4
    url, admin = _database_url()
    try:
        _setup_django(url)
        from django.db import connection

        print(f"database: {connection.vendor}; broker: ORM (same database)", flush=True)
        runs = [
            _measure(args.nodes, args.jobs, args.teams),
            _measure(max(1, args.nodes // 10), max(1, args.jobs // 10), args.teams),
        ]
    finally:
        _drop(admin)
    header = f"{'nodes':>5} {'GPUs':>5} {'queued':>7} {'teams':>5} {'placed':>6} {'passes':>6} "
    header += f"{'placements/s':>12} {'full-pass queries':>17} {'full-pass ms':>12}"
    print(header)
    for r in runs:
        print(
            f"{r['nodes']:>5} {r['gpus']:>5} {r['jobs']:>7} {r['teams']:>5} {r['placed']:>6} {r['passes']:>6} "
            f"{r['placements_per_second']:>12.0f} {r['full_pass_queries']:>17} {r['full_pass_ms']:>12.1f}"
        )
    big, small = runs
    print(
        f"full-pass queries at {big['jobs']} vs {small['jobs']} queued jobs: "
        f"{big['full_pass_queries']} vs {small['full_pass_queries']}"
    )
    if args.smoke:
        print("smoke: no goals judged")
        return
    missed = []
    if big["placements_per_second"] < GOALS["placements_per_second"]:
        missed.append(f"placements/s {big['placements_per_second']:.0f} < {GOALS['placements_per_second']}")
    if big["full_pass_queries"] > GOALS["full_pass_queries"]:
        missed.append(f"full-pass queries {big['full_pass_queries']} > {GOALS['full_pass_queries']}")
    if big["full_pass_ms"] > GOALS["full_pass_ms"]:
        missed.append(f"full-pass {big['full_pass_ms']:.1f} ms > {GOALS['full_pass_ms']} ms")
    if big["full_pass_queries"] > small["full_pass_queries"]:
        missed.append("the full-cluster pass costs more queries with 10x the queued jobs")
    print("goals: " + ("all met" if not missed else "MISSED: " + "; ".join(missed)))
    sys.exit(1 if missed else 0)


if __name__ == "__main__":
    main()
