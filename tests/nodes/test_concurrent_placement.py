"""Concurrent submissions never over-allocate: real threads, separate connections, PostgreSQL.

Each thread submits through the service like a request would, then runs a placement pass as a
worker would (a submit only asks for one), so 50 placers race for the same team's quota row and
the same GPUs.
"""

import threading

import pytest
from django.db import connection, connections
from django.utils import timezone

from apps.accounts.models import TeamQuota
from apps.jobs.kinds import KINDS, register_kind
from apps.jobs.models import GpuLease, Job
from apps.jobs.scheduler import jobs_place_queued
from apps.jobs.services import job_submit
from tests.factories import online_node

pytestmark = pytest.mark.django_db(transaction=True, serialized_rollback=True)


@pytest.fixture(autouse=True)
def _postgresql_only():
    if connection.vendor != "postgresql":
        pytest.skip("row-lock races need PostgreSQL (CI runs this with DATABASE_URL set)")


@pytest.fixture
def noop_kind(monkeypatch):
    monkeypatch.setattr("apps.jobs.kinds.KINDS", dict(KINDS))
    register_kind("train", validate=lambda spec, team, actor: spec, run=lambda context: {})


def _submit_concurrently(world, count: int, gpus: int) -> list[Exception]:
    start, errors = threading.Barrier(count), []

    def submit():
        try:
            start.wait()
            job_submit(actor=world.bob, team=world.acme, kind="train", spec={}, gpus=gpus)
            jobs_place_queued()
        except Exception as error:
            errors.append(error)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=submit) for _ in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    return errors


def _monitor(world, stop: threading.Event, peaks: list[int]):
    try:
        while not stop.is_set():
            peaks.append(GpuLease.objects.filter(job__team=world.acme).count())
    finally:
        connections.close_all()


def test_fifty_concurrent_submissions_never_hold_more_gpus_than_the_quota(world, noop_kind):
    for name in ("node-a", "node-b"):
        online_node(name, slots=64, gpus=32)
    TeamQuota.objects.filter(team=world.acme).update(max_concurrent_gpus=4, max_running_jobs=100)
    stop, peaks = threading.Event(), []
    watcher = threading.Thread(target=_monitor, args=(world, stop, peaks))
    watcher.start()

    errors = _submit_concurrently(world, 50, gpus=1)

    stop.set()
    watcher.join()
    assert errors == []
    assert Job.objects.count() == 50
    assert GpuLease.objects.filter(job__team=world.acme).count() == 4
    assert Job.objects.filter(status="scheduled").count() == 4
    assert max(peaks) <= 4


def test_with_one_gpu_of_quota_left_exactly_one_of_fifty_is_placed(world, noop_kind):
    node = online_node("node-a", slots=64, gpus=32)
    TeamQuota.objects.filter(team=world.acme).update(max_concurrent_gpus=4, max_running_jobs=100)
    for index in range(3):  # three GPUs already held by running jobs
        held = Job.objects.create(
            team=world.acme,
            submitted_by=world.bob,
            kind="train",
            spec={},
            gpus=1,
            status="running",
            attempts=1,
            node=node,
            gpu_indexes=[index],
            started_at=timezone.now(),
        )
        GpuLease.objects.create(gpu=node.gpus.get(index=index), job=held)

    errors = _submit_concurrently(world, 50, gpus=1)

    assert errors == []
    new = Job.objects.exclude(status="running")
    assert new.filter(status="scheduled").count() == 1
    assert new.filter(status="queued").count() == 49
    assert GpuLease.objects.filter(job__team=world.acme).count() == 4
    reasons = set(new.filter(status="queued").values_list("status_reason", flat=True))
    assert reasons == {"waiting: team quota: 4 of 4 GPUs in use; this needs 1 more"}
