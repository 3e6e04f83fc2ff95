"""Placement: GPUs and slots respected, quotas checked, fair across teams, reasons shown, drain, offline, time limits."""

from datetime import timedelta

import pytest
from django.utils import timezone

from apps.accounts.models import TeamQuota
from apps.jobs import scheduler, services
from apps.jobs.kinds import KINDS, register_kind
from apps.jobs.models import GpuLease, Job
from apps.jobs.transitions import job_transition
from apps.nodes.models import Node
from apps.nodes.services import node_drain
from tests.factories import TeamFactory, member, online_node


@pytest.fixture
def noop_kind(monkeypatch):
    monkeypatch.setattr("apps.jobs.kinds.KINDS", dict(KINDS))
    register_kind("train", validate=lambda spec, team, actor: spec, run=lambda context: {})
    return "train"


@pytest.fixture
def queued(world, noop_kind, django_capture_on_commit_callbacks):
    """submit(team_user, gpus=...) -> a queued job (placement deferred: call scheduler.jobs_place_queued)."""

    def submit(user, team, gpus=0, priority=0):
        with django_capture_on_commit_callbacks():
            return services.job_submit(actor=user, team=team, kind=noop_kind, spec={}, gpus=gpus, priority=priority)

    return submit


def _gpus(team) -> int:
    return GpuLease.objects.filter(job__team=team).count()


def test_a_job_is_placed_on_a_node_with_enough_free_gpus(world, queued):
    online_node("small", slots=4, gpus=1)
    online_node("big", slots=4, gpus=4)
    TeamQuota.objects.filter(team=world.acme).update(max_concurrent_gpus=8)
    job = queued(world.bob, world.acme, gpus=3)

    scheduler.jobs_place_queued()

    job.refresh_from_db()
    assert (job.status, job.node.name, job.gpu_indexes) == ("scheduled", "big", [0, 1, 2])


def test_best_fit_keeps_big_gaps_for_big_jobs(world, queued):
    online_node("small", slots=4, gpus=1)
    online_node("big", slots=4, gpus=4)
    job = queued(world.bob, world.acme, gpus=1)

    scheduler.jobs_place_queued()

    job.refresh_from_db()
    assert job.node.name == "small"


def test_a_job_that_cannot_fit_yet_says_why(world, queued):
    online_node("big", slots=4, gpus=4)
    TeamQuota.objects.filter(team=world.acme).update(max_concurrent_gpus=8)
    first, second = queued(world.bob, world.acme, gpus=3), queued(world.bob, world.acme, gpus=2)

    scheduler.jobs_place_queued()

    first.refresh_from_db(), second.refresh_from_db()
    assert first.status == "scheduled"
    assert (second.status, second.status_reason) == ("queued", "waiting: no online node has 2 free GPUs")


def test_the_team_quota_holds_placement_back_and_says_so(world, queued):
    online_node("big", slots=8, gpus=8)  # the free-trial quota is 1 GPU
    first, second = queued(world.bob, world.acme, gpus=1), queued(world.bob, world.acme, gpus=1)

    scheduler.jobs_place_queued()

    second.refresh_from_db()
    assert second.status == "queued"
    assert second.status_reason == "waiting: team quota: 1 of 1 GPUs in use; this needs 1 more"
    job_transition(first, "running")
    job_transition(first, "succeeded")  # releases its GPU
    scheduler.jobs_place_queued()
    second.refresh_from_db()
    assert second.status == "scheduled"


def test_running_jobs_quota_counts_cpu_jobs_too(world, queued):
    online_node("cpu", slots=8)  # the free-trial quota is 2 running jobs
    jobs = [queued(world.bob, world.acme) for _ in range(3)]

    scheduler.jobs_place_queued()

    assert [Job.objects.get(pk=j.pk).status for j in jobs] == ["scheduled", "scheduled", "queued"]
    assert Job.objects.get(pk=jobs[2].pk).status_reason == "waiting: team quota: 2 of 2 running jobs"


def test_worker_slots_are_respected(world, queued):
    online_node("cpu", slots=1)
    TeamQuota.objects.filter(team=world.acme).update(max_running_jobs=10)
    _first, second = queued(world.bob, world.acme), queued(world.bob, world.acme)

    scheduler.jobs_place_queued()

    second.refresh_from_db()
    assert second.status_reason == "waiting: every worker slot of the 1 online node(s) is busy"


def test_a_team_with_a_long_queue_does_not_starve_another(world, queued):
    online_node("cpu", slots=2)
    for team in (world.acme, world.globex):
        TeamQuota.objects.filter(team=team).update(max_running_jobs=10)
    backlog = [queued(world.bob, world.acme) for _ in range(5)]
    later = queued(world.charlie, world.globex)

    scheduler.jobs_place_queued()

    placed = set(Job.objects.filter(status="scheduled").values_list("team__slug", flat=True))
    assert placed == {"acme", "globex"}
    assert Job.objects.get(pk=later.pk).status == "scheduled"
    assert Job.objects.get(pk=backlog[0].pk).status == "scheduled"


def test_priorities_order_jobs_within_a_team(world, queued):
    online_node("cpu", slots=1)
    low, high = queued(world.bob, world.acme, priority=0), queued(world.bob, world.acme, priority=9)

    scheduler.jobs_place_queued()

    assert Job.objects.get(pk=high.pk).status == "scheduled"
    assert Job.objects.get(pk=low.pk).status == "queued"


def test_a_draining_node_gets_nothing_new(world, queued):
    node = online_node("cpu", slots=4)
    admin_user = member(TeamFactory(slug="ops"), "operator", "owner")
    admin_user.is_staff = True
    admin_user.save()
    node_drain(actor=admin_user, node=node)
    job = queued(world.bob, world.acme)

    scheduler.jobs_place_queued()

    job.refresh_from_db()
    assert (job.status, job.status_reason) == ("queued", "waiting: no node is online")


def test_a_silent_node_goes_offline_and_its_jobs_are_requeued(
    world, queued, settings, django_capture_on_commit_callbacks
):
    node = online_node("cpu", slots=4)
    job = queued(world.bob, world.acme)
    scheduler.jobs_place_queued()
    Job.objects.filter(pk=job.pk).update(status="running", claimed_at=timezone.now())
    Node.objects.filter(pk=node.pk).update(
        last_heartbeat_at=timezone.now() - timedelta(seconds=settings.LEPTON_NODE_STALE_SECONDS + 1)
    )

    with django_capture_on_commit_callbacks() as asked:
        services.jobs_reap_stale()
    assert asked  # the reaper asks for a pass (it does not place inline)
    scheduler.jobs_place_queued()

    node.refresh_from_db(), job.refresh_from_db()
    assert node.status == "offline"
    assert job.status == "queued"
    assert job.status_reason == "waiting: no node is online"  # requeued, and nowhere to go yet
    from apps.jobs.models import JobLogLine

    assert JobLogLine.objects.get(job=job, level="warning").message.startswith("reaper: node cpu went offline")


def test_a_job_past_its_time_limit_is_stopped_and_failed(world, noop_kind, run_tasks, monkeypatch):
    import time as clock

    online_node("cpu", slots=2)
    monkeypatch.setattr("apps.jobs.kinds.KINDS", dict(KINDS))

    def slow(context):
        for step in range(500):
            context.progress(step / 500)
            clock.sleep(0.01)
        return {}

    register_kind("train", validate=lambda spec, team, actor: spec, run=slow)

    with run_tasks():
        job = services.job_submit(actor=world.bob, team=world.acme, kind="train", spec={}, time_limit_seconds=1)

    job.refresh_from_db()
    assert (job.status, job.status_reason) == ("failed", "stopped: over its time limit of 1 s")


def test_the_reaper_fails_a_job_whose_worker_hangs_past_its_limit(world, queued):
    online_node("cpu", slots=2)
    job = queued(world.bob, world.acme)
    Job.objects.filter(pk=job.pk).update(
        status="running",
        attempts=1,
        time_limit_seconds=10,
        started_at=timezone.now() - timedelta(seconds=120),
        heartbeat_at=timezone.now(),
    )

    services.jobs_reap_stale()

    job.refresh_from_db()
    assert (job.status, job.status_reason) == ("failed", "stopped: over its time limit of 10 s")


def test_quota_usage_shows_gpus_and_jobs_held(world, queued):
    from apps.accounts.quotas import team_usage

    online_node("big", slots=4, gpus=4)
    TeamQuota.objects.filter(team=world.acme).update(max_concurrent_gpus=4)
    queued(world.bob, world.acme, gpus=2)
    scheduler.jobs_place_queued()

    usage = team_usage(world.acme)

    assert (usage.gpus, usage.running_jobs) == (2, 1)
