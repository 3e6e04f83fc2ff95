"""Concurrent gang placements never split a gang or give a GPU twice: real threads, separate connections, PostgreSQL.

The placers race without the placement pass's turn-taking lock, so only the quota row lock and
the unique lease keep the guarantee.
"""

import threading

import pytest
from django.db import connection, connections
from django.db.models import Count

from apps.accounts.models import TeamQuota
from apps.jobs.gang import place_gang
from apps.jobs.kinds import KINDS, register_kind
from apps.jobs.models import GpuLease, Job, JobRank
from apps.jobs.services import job_submit
from tests.factories import online_node

pytestmark = pytest.mark.django_db(transaction=True, serialized_rollback=True)


@pytest.fixture(autouse=True)
def _postgresql_only():
    if connection.vendor != "postgresql":
        pytest.skip("row-lock races need PostgreSQL (CI runs this with DATABASE_URL set)")


@pytest.fixture(autouse=True)
def spanning_kind(monkeypatch):
    monkeypatch.setattr("apps.jobs.kinds.KINDS", dict(KINDS))
    register_kind(
        "train", validate=lambda spec, team, actor: spec, run=lambda context: {}, run_rank=lambda context: None
    )


def test_gangs_of_two_teams_submitted_at_once_never_split_or_share_a_gpu(world):
    for name in ("g1", "g2", "g3"):
        online_node(name, slots=8, gpus=1)
    TeamQuota.objects.filter(team__in=[world.acme, world.globex]).update(max_concurrent_gpus=8, max_running_jobs=8)
    submitters = [(world.bob, world.acme), (world.charlie, world.globex)] * 6
    start, errors = threading.Barrier(len(submitters)), []

    def submit(actor, team):
        try:
            start.wait()
            job = job_submit(actor=actor, team=team, kind="train", spec={}, gpus=1, nodes=2)
            place_gang(job)  # straight to the gang placer: no pass's turn-taking lock in between
        except Exception as error:
            errors.append(error)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=submit, args=pair) for pair in submitters]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)

    assert errors == []
    assert Job.objects.count() == 12
    assert Job.objects.filter(status="scheduled").count() == 1  # three GPUs hold one gang of two, not two halves
    held = dict(Job.objects.annotate(n=Count("gpu_leases")).values_list("pk", "n"))
    assert sorted(held.values()) == [0] * 11 + [2]  # all or nothing
    assert GpuLease.objects.count() == 2
    placed = Job.objects.get(status="scheduled")
    assert JobRank.objects.filter(job=placed).values("node").distinct().count() == 2
