"""Multi-node jobs: admitted whole or not at all, counted once per job and per GPU, lost and requeued as one."""

from datetime import timedelta

import pytest
from django.utils import timezone

from apps.accounts.models import TeamQuota
from apps.core.errors import ApplicationError, QuotaExceeded
from apps.jobs import gang
from apps.jobs.kinds import KINDS, register_kind
from apps.jobs.models import GpuLease, Job, JobRank
from apps.jobs.scheduler import jobs_place_queued
from apps.jobs.services import job_submit, jobs_reap_stale
from apps.nodes.models import Node
from tests.factories import online_node

JOBS = "/api/v1/jobs/"


@pytest.fixture(autouse=True)
def spanning_kind(monkeypatch):
    """A train kind that does nothing (placement is what is tested), able to span nodes."""
    monkeypatch.setattr("apps.jobs.kinds.KINDS", dict(KINDS))
    register_kind(
        "train", validate=lambda spec, team, actor: spec, run=lambda context: {}, run_rank=lambda context: None
    )


@pytest.fixture
def quota(world):
    TeamQuota.objects.filter(team=world.acme).update(max_concurrent_gpus=8, max_running_jobs=4)


def _gang(world, *, nodes=2, gpus=1, team=None, capture=None) -> Job:
    """Submit a gang; with `capture`, also run a pass and its on-commit dispatch."""
    job = job_submit(actor=world.bob, team=team or world.acme, kind="train", spec={}, gpus=gpus, nodes=nodes)
    if capture is not None:
        with capture(execute=True):
            jobs_place_queued()
        job.refresh_from_db()
    return job


def test_a_gang_is_placed_whole_on_distinct_nodes_and_each_rank_is_dispatched(
    world, quota, django_capture_on_commit_callbacks
):
    for name in ("g1", "g2", "g3"):
        online_node(name, slots=2, gpus=2)

    job = _gang(world, nodes=2, gpus=2, capture=django_capture_on_commit_callbacks)

    assert job.status == "scheduled", job.status_reason
    ranks = list(JobRank.objects.filter(job=job).select_related("node"))
    assert [r.rank for r in ranks] == [0, 1]
    assert len({r.node_id for r in ranks}) == 2
    assert all(r.gpu_indexes == [0, 1] and r.attempt == 1 for r in ranks)
    assert job.node_id == ranks[0].node_id  # rank 0 is the job's own attempt
    leased = GpuLease.objects.filter(job=job).values_list("gpu__node_id", "gpu__index")
    assert sorted(leased) == sorted((r.node_id, i) for r in ranks for i in (0, 1))
    assert job.dispatched_at is not None  # rank 0's task
    assert ranks[1].dispatched_at is not None  # rank 1's task, on its own node's queue


def test_a_gang_waits_whole_when_only_one_node_has_room(world, quota):
    online_node("g1", slots=2, gpus=1), online_node("g2", slots=2, gpus=1)
    single = job_submit(actor=world.bob, team=world.acme, kind="train", spec={}, gpus=1)
    jobs_place_queued()  # one of the two GPUs is taken
    assert GpuLease.objects.filter(job=single).count() == 1

    job = _gang(world)
    jobs_place_queued()

    job.refresh_from_db()
    assert job.status == "queued"
    assert job.status_reason == "waiting: needs 2 nodes with 1 free GPU and a free worker slot; 1 have them"
    assert not GpuLease.objects.filter(job=job).exists()  # nothing held: all or nothing
    assert not JobRank.objects.filter(job=job).exists()


def test_a_gang_counts_its_gpus_on_every_node_and_one_running_job(world):
    for name in ("g1", "g2", "g3"):
        online_node(name, slots=4, gpus=2)
    TeamQuota.objects.filter(team=world.acme).update(max_concurrent_gpus=3, max_running_jobs=1)
    with pytest.raises(QuotaExceeded) as refused:
        _gang(world, nodes=2, gpus=2)
    assert "asks for 4 GPUs (2 on each of 2 nodes)" in refused.value.message

    TeamQuota.objects.filter(team=world.acme).update(max_concurrent_gpus=4)
    first, second = _gang(world, nodes=2, gpus=1), _gang(world, nodes=2, gpus=1)
    jobs_place_queued()

    first.refresh_from_db(), second.refresh_from_db()
    assert first.status == "scheduled"
    assert GpuLease.objects.filter(job__team=world.acme).count() == 2
    assert second.status == "queued"
    assert "running jobs" in second.status_reason  # a gang is one running job, whatever it spans


def test_only_kinds_that_run_a_nodes_share_may_span_nodes(world, quota):
    online_node("g1", gpus=1), online_node("g2", gpus=1)
    register_kind("evaluate", validate=lambda spec, team, actor: spec, run=lambda context: {})

    with pytest.raises(ApplicationError) as refused:
        job_submit(actor=world.bob, team=world.acme, kind="evaluate", spec={}, gpus=1, nodes=2)

    assert refused.value.fields == {"nodes": ["Only train jobs can span nodes."]}
    assert not Job.objects.exists()


def test_more_nodes_than_could_ever_hold_the_gpus_answers_400_naming_nodes(api_as, world, quota):
    online_node("g1", gpus=2), online_node("g2", gpus=2), online_node("g3", gpus=1)
    Node.objects.create(name="gone", status=Node.Status.OFFLINE)

    response = api_as(world.bob).post(
        JOBS, {"team": "acme", "kind": "train", "spec": {}, "gpus": 2, "nodes": 3}, format="json"
    )

    assert response.status_code == 400
    assert response.json()["error"]["fields"] == {"nodes": ["Only 2 node(s) with 2 GPUs."]}
    assert not Job.objects.exists()


def test_a_gang_through_the_api_shows_its_ranks(api_as, world, quota, django_capture_on_commit_callbacks):
    online_node("g1", gpus=1), online_node("g2", gpus=1)
    client = api_as(world.bob)
    response = client.post(JOBS, {"team": "acme", "kind": "train", "spec": {}, "gpus": 1, "nodes": 2}, format="json")
    with django_capture_on_commit_callbacks(execute=True):
        jobs_place_queued()

    assert response.status_code == 201
    job = client.get(f"{JOBS}{response.json()['id']}/").json()
    assert job["nodes"] == 2
    assert [(r["rank"], r["node"]) for r in job["ranks"]] == [(0, "g1"), (1, "g2")]
    assert api_as(world.charlie).get(f"{JOBS}{job['id']}/").status_code == 404  # the outsider


def test_the_job_page_names_every_node_of_a_gang(page_as, world, quota):
    online_node("g1", gpus=1), online_node("g2", gpus=1)
    job = _gang(world)
    jobs_place_queued()

    page = page_as(world.bob).get(f"/jobs/{job.pk}/")

    assert page.status_code == 200
    assert "nodes g1, g2" in page.content.decode()


def test_a_rank_task_that_never_reached_the_broker_is_sent_by_the_sweep(world, quota, settings):
    online_node("g1", gpus=1), online_node("g2", gpus=1)
    job = _gang(world)
    jobs_place_queued()  # committed, but its on-commit dispatch never ran (the placer died there)
    assert JobRank.objects.get(job=job, rank=1).dispatched_at is None

    assert gang.gang_dispatch_undelivered() == 0  # within the grace the placer may still send it
    Job.objects.filter(pk=job.pk).update(scheduled_at=timezone.now() - timedelta(seconds=60))
    assert gang.gang_dispatch_undelivered() == 1
    assert gang.gang_dispatch_undelivered() == 0  # sent once, recorded
    assert JobRank.objects.get(job=job, rank=1).dispatched_at is not None


def test_a_lost_rank_node_requeues_the_whole_gang_and_frees_every_gpu(world, quota):
    online_node("g1", gpus=1), online_node("g2", gpus=1)
    job = _gang(world)
    jobs_place_queued()
    Job.objects.filter(pk=job.pk).update(status="running", claimed_at=timezone.now())
    rank1 = JobRank.objects.get(job=job, rank=1)
    Node.objects.filter(pk=rank1.node_id).update(status=Node.Status.OFFLINE)

    assert jobs_reap_stale() >= 1
    jobs_place_queued()  # the pass the reaper asked for

    job.refresh_from_db()
    assert job.status == "queued"  # and it stays so: one node is left for a job that needs two
    assert job.status_reason.startswith("waiting: needs 2 nodes")
    assert not GpuLease.objects.filter(job=job).exists()


def test_a_silent_rank_requeues_the_whole_gang(world, quota, settings):
    online_node("g1", gpus=1), online_node("g2", gpus=1)
    job = _gang(world)
    jobs_place_queued()
    now = timezone.now()
    Job.objects.filter(pk=job.pk).update(status="running", claimed_at=now, heartbeat_at=now)
    stale = now - timedelta(seconds=settings.LEPTON_JOB_STALE_SECONDS + 5)
    JobRank.objects.filter(job=job, rank=1).update(claimed_at=stale, heartbeat_at=stale)

    assert [(lost.pk, why) for lost, why in gang.gangs_lost()] == [
        (job.pk, f"no sign of life from rank 1 for {settings.LEPTON_JOB_STALE_SECONDS} s")
    ]
    jobs_reap_stale()
    jobs_place_queued()  # the pass the reaper asked for

    job.refresh_from_db()
    assert job.attempts == 2  # requeued and placed again at once, both nodes being there
    assert job.status == "scheduled"
    assert set(JobRank.objects.filter(job=job).values_list("attempt", flat=True)) == {2}


def test_the_nodes_page_counts_a_gangs_share_on_every_node(page_as, world, quota):
    from apps.jobs.scheduler import node_load
    from apps.nodes.models import Node

    online_node("g1", gpus=1), online_node("g2", gpus=1)
    job = _gang(world)
    jobs_place_queued()

    loads = node_load(list(Node.objects.filter(name__in=["g1", "g2"]).values_list("pk", flat=True)))
    held = {Node.objects.get(pk=pk).name: [(j.job_id, j.gpu_indexes) for j in load.jobs] for pk, load in loads.items()}
    assert held == {"g1": [(job.pk, (0,))], "g2": [(job.pk, (0,))]}
    assert page_as(world.bob).get("/nodes/").status_code == 200
