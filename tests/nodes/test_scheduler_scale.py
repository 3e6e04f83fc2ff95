"""The scheduler at depth: fair whatever one team queues, passes that cost the same at any queue depth,
passes coalesced and heartbeats that do not place, pools and GPU targeting, and "why is my job waiting"."""

import pytest
from django.db import connection
from django.db.models import Count
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from django_q.models import OrmQ

from apps.accounts.models import TeamQuota
from apps.jobs import scheduler, services
from apps.jobs.kinds import KINDS, register_kind
from apps.jobs.models import GpuLease, Job, SchedulerState
from apps.jobs.selectors import job_waiting
from apps.jobs.services import job_submit
from apps.nodes.models import Node
from apps.nodes.services import node_heartbeat
from apps.nodes.signals import node_alive
from tests.factories import bearer, online_node


@pytest.fixture
def noop_kind(monkeypatch):
    monkeypatch.setattr("apps.jobs.kinds.KINDS", dict(KINDS))
    register_kind("train", validate=lambda spec, team, actor: spec, run=lambda context: {})
    return "train"


def _queue(team, user, count, *, gpus=1, **fields):
    """`count` queued jobs of `team` in one statement (as if submitted one by one, oldest first)."""
    now = timezone.now()
    Job.objects.bulk_create(
        [
            Job(
                team=team,
                submitted_by=user,
                kind="train",
                spec={},
                gpus=gpus,
                status_reason="waiting to be placed",
                created_at=now - timezone.timedelta(seconds=count - i),
                **fields,
            )
            for i in range(count)
        ]
    )


def _unlimited(*teams):
    TeamQuota.objects.filter(team__in=teams).update(max_concurrent_gpus=10_000, max_running_jobs=10_000)


def _end(job):
    """The job's attempt ended: its GPUs and slot are free (what the runner's transition does)."""
    Job.objects.filter(pk=job.pk).update(status="succeeded", finished_at=timezone.now())
    GpuLease.objects.filter(job=job).delete()


def test_one_teams_thousand_queued_jobs_do_not_delay_another_teams_one_job(world, noop_kind):
    online_node("gpu-1", slots=4, gpus=4)
    _unlimited(world.acme, world.globex)
    _queue(world.acme, world.bob, 1000)
    scheduler.jobs_place_queued()  # the cluster fills with acme's oldest jobs
    assert Job.objects.filter(team=world.acme, status="scheduled").count() == 4
    _queue(world.globex, world.charlie, 1)  # globex's single job comes after all of acme's
    globex_job = Job.objects.get(team=world.globex)

    _end(Job.objects.filter(team=world.acme, status="scheduled").first())  # a GPU frees
    scheduler.jobs_place_queued()

    globex_job.refresh_from_db()
    assert globex_job.status == "scheduled"
    assert Job.objects.filter(team=world.acme, status="scheduled").count() == 3


def _pass_queries() -> int:
    with CaptureQueriesContext(connection) as captured:
        scheduler.jobs_place_queued()
    return len(captured.captured_queries)


def test_a_pass_costs_the_same_queries_at_any_queue_depth(world, noop_kind, django_capture_on_commit_callbacks):
    for index in range(4):
        online_node(f"gpu-{index}", slots=8, gpus=8)
    _unlimited(world.acme, world.globex)
    _queue(world.acme, world.bob, 40)
    _queue(world.globex, world.charlie, 40, gpus=0)
    with django_capture_on_commit_callbacks(execute=True):  # the dispatch after the commit too
        filling = _pass_queries()
    assert Job.objects.filter(status="scheduled").count() == 32  # every slot of the 4 nodes
    full = _pass_queries()

    _queue(world.acme, world.bob, 2000)
    _queue(world.globex, world.charlie, 2000, gpus=0)
    deeper = _pass_queries()

    assert full == deeper, f"a pass with the cluster full grew from {full} to {deeper} queries with 4,000 more jobs"
    assert deeper <= 15
    assert filling <= 25  # 32 placements: leases, transitions and dispatch marks in bulk


def test_fair_order_takes_the_team_holding_least_first(world, noop_kind):
    online_node("gpu-1", slots=8, gpus=8)
    _unlimited(world.acme, world.globex)
    _queue(world.acme, world.bob, 20)
    _queue(world.globex, world.charlie, 20)

    scheduler.jobs_place_queued()

    held = dict(Job.objects.filter(status="scheduled").values_list("team__slug").annotate(n=Count("pk")).order_by())
    assert held == {"acme": 4, "globex": 4}


def test_two_hundred_submissions_in_a_moment_make_one_pass(world, noop_kind, django_capture_on_commit_callbacks):
    online_node("gpu-1", slots=8, gpus=8)
    _unlimited(world.acme)
    for _ in range(200):
        with django_capture_on_commit_callbacks(execute=True):  # each submit's commit asks for a pass
            job_submit(actor=world.bob, team=world.acme, kind=noop_kind, spec={}, gpus=0)

    passes = OrmQ.objects.filter(key="lepton").count()  # the pass tasks in the broker (ORM broker in tests)
    assert passes == 1
    assert SchedulerState.objects.get().pass_pending
    assert Job.objects.filter(status="scheduled").count() == 0  # a submit answers without placing inline

    placed = scheduler.jobs_pass()  # the one pass a worker runs places for all of them
    assert placed == 8
    assert not SchedulerState.objects.get().pass_pending


def test_two_hundred_heartbeats_in_a_second_run_a_handful_of_passes_and_reaps(
    world, noop_kind, monkeypatch, django_capture_on_commit_callbacks
):
    nodes = [online_node(f"node-{i}", slots=2, gpus=1) for i in range(100)]
    _unlimited(world.acme)
    _queue(world.acme, world.bob, 50)
    passes, reaps = [], []
    real_place, real_reap = scheduler.jobs_place_queued, services.jobs_reap_stale
    monkeypatch.setattr(scheduler, "jobs_place_queued", lambda: passes.append(1) or real_place())
    monkeypatch.setattr("apps.jobs.services.jobs_reap_stale", lambda: reaps.append(1) or real_reap())

    with django_capture_on_commit_callbacks(execute=True):
        for beat in range(200):  # every node beats twice within the second
            node = node_heartbeat(node_id=nodes[beat % 100].pk, gpus=[])
            node_alive.send(sender=Node, node=node)

    assert len(reaps) <= 2
    assert len(passes) <= 2
    assert OrmQ.objects.filter(key="lepton").count() <= 2  # pass tasks asked of the workers


def test_a_heartbeat_runs_a_requested_pass_no_worker_started(world, noop_kind, settings):
    node = online_node("gpu-1", slots=2, gpus=1)
    _unlimited(world.acme)
    _queue(world.acme, world.bob, 1)
    long_ago = timezone.now() - timezone.timedelta(seconds=settings.LEPTON_SCHEDULER_PASS_GRACE + 1)
    SchedulerState.objects.create(pk=1, pass_pending=True, pass_requested_at=long_ago)

    node_alive.send(sender=Node, node=node_heartbeat(node_id=node.pk, gpus=[]))

    assert Job.objects.get().status == "scheduled"
    assert not SchedulerState.objects.get().pass_pending


def test_a_job_for_a_pool_lands_only_on_that_pools_nodes(world, noop_kind, django_capture_on_commit_callbacks):
    online_node("cpu-1", slots=8, gpus=8, pool="cpu")
    online_node("a100-1", slots=8, gpus=2, pool="a100", gpu_model="NVIDIA A100-SXM4-80GB", gpu_memory=80 * 2**30)
    _unlimited(world.acme)
    jobs = [
        job_submit(actor=world.bob, team=world.acme, kind=noop_kind, spec={}, gpus=1, pool="a100") for _ in range(3)
    ]

    scheduler.jobs_place_queued()

    placed = Job.objects.filter(pk__in=[j.pk for j in jobs], status="scheduled")
    assert {job.node.name for job in placed} == {"a100-1"}
    assert placed.count() == 2
    waiting = Job.objects.get(pk__in=[j.pk for j in jobs], status="queued")
    assert waiting.status_reason == "waiting: no pool-a100 node has 1 free GPU"


def test_gpu_model_and_memory_pick_the_gpus(world, noop_kind):
    online_node("t4", slots=8, gpus=4, gpu_model="Tesla T4", gpu_memory=16 * 2**30)
    online_node("h100", slots=8, gpus=1, gpu_model="NVIDIA H100", gpu_memory=80 * 2**30)
    _unlimited(world.acme)
    big = job_submit(actor=world.bob, team=world.acme, kind=noop_kind, spec={}, gpus=1, min_gpu_memory_bytes=40 * 2**30)
    t4 = job_submit(actor=world.bob, team=world.acme, kind=noop_kind, spec={}, gpus=1, gpu_model="t4")
    second_big = job_submit(
        actor=world.bob, team=world.acme, kind=noop_kind, spec={}, gpus=1, min_gpu_memory_bytes=40 * 2**30
    )

    scheduler.jobs_place_queued()

    big.refresh_from_db(), t4.refresh_from_db(), second_big.refresh_from_db()
    assert (big.node.name, t4.node.name) == ("h100", "t4")
    assert second_big.status == "queued"
    assert second_big.status_reason == "waiting: no online node has 1 free GPU with 40.0 GiB or more"


def test_a_team_limited_to_pool_cpu_cannot_submit_to_a100(world, api, noop_kind):
    online_node("cpu-1", slots=8, pool="cpu")
    online_node("a100-1", slots=8, gpus=2, pool="a100")
    TeamQuota.objects.filter(team=world.acme).update(allowed_pools="cpu", max_concurrent_gpus=8)
    body = {"team": "acme", "kind": "train", "spec": {}, "gpus": 1, "pool": "a100"}

    answer = api.post("/api/v1/jobs/", body, format="json", **bearer(world.bob))

    assert answer.status_code == 400, answer.content
    error = answer.json()["error"]
    assert error["fields"] == {"pool": ["Team acme may not use pool a100."]}
    assert "a100" in error["message"]
    assert not Job.objects.exists()


def test_a_team_limited_to_a_pool_is_placed_only_there(world, noop_kind):
    online_node("a100-1", slots=8, pool="a100")
    TeamQuota.objects.filter(team=world.acme).update(allowed_pools="cpu", max_running_jobs=8)
    online_node("cpu-1", slots=8, pool="cpu")
    job = job_submit(actor=world.bob, team=world.acme, kind=noop_kind, spec={})

    scheduler.jobs_place_queued()

    job.refresh_from_db()
    assert job.node.name == "cpu-1"


def test_a_waiting_job_says_where_it_stands_and_when_it_could_start(world, api, noop_kind, page_as):
    online_node("gpu-1", slots=8, gpus=2)
    _unlimited(world.acme, world.globex)
    _queue(world.acme, world.bob, 2)
    scheduler.jobs_place_queued()
    Job.objects.filter(status="scheduled").update(status="running", eta_seconds=120)
    Job.objects.filter(status="running").order_by("pk").filter(pk=Job.objects.order_by("pk").first().pk).update(
        eta_seconds=30
    )
    _queue(world.acme, world.bob, 3)
    _queue(world.globex, world.charlie, 2)
    scheduler.jobs_place_queued()
    third = Job.objects.filter(team=world.acme, status="queued").order_by("created_at")[1]  # acme's 2nd waiting

    waiting = job_waiting(third)
    assert (waiting.team_position, waiting.team_queued) == (2, 3)
    assert (waiting.cluster_position, waiting.cluster_queued) == (3, 5)  # globex's first goes before it
    assert "free GPU" in waiting.held_by
    assert waiting.estimated_start_seconds is None  # 2 GPUs free at 30 s and 120 s; it needs the third

    first = Job.objects.filter(team=world.acme, status="queued").order_by("created_at")[0]
    answer = api.get(f"/api/v1/jobs/{first.pk}/", **bearer(world.bob)).json()
    assert answer["waiting"]["team_position"] == 1
    assert answer["waiting"]["cluster_position"] == 1
    assert answer["waiting"]["estimated_start_seconds"] == 30
    assert answer["waiting"]["held_by"] == "no online node has 1 free GPU"
    page = page_as(world.bob).get(f"/jobs/{first.pk}/").content.decode()
    page = " ".join(page.split())
    assert "Why it waits:</strong> no online node has 1 free GPU." in page
    assert "#1 of 3 in Acme's queue, about #1 of 5 in the cluster's" in page
    assert "Could start in about 30.0 s" in page
