"""Placing queued jobs on nodes: fair across teams, never past a quota, never a GPU twice.

Each placement is one transaction: lock the team's quota row and check it (GPUs held,
running jobs, GPU-hours this month), pick a node with enough free GPUs and a free worker
slot, write one `GpuLease` per GPU (the unique constraint makes a double allocation
impossible even if two placers race), move the job to scheduled as its next attempt and
queue it on that node's queue once committed, and record in the job that the task reached the
broker (`dispatched_at`): a placer that dies between its commit and the enqueue leaves that
empty, and `jobs_dispatch_undelivered` sends the task within seconds instead of the GPU and the
quota staying held by a job no worker will ever hear of. A job that cannot be placed stays
queued with the reason.
"""

import logging
from collections import defaultdict
from datetime import timedelta
from functools import partial

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import Count, F
from django.utils import timezone

from apps.accounts.quotas import LiveUsage, check_quota
from apps.core.errors import QuotaExceeded
from apps.core.queue import enqueue
from apps.jobs.models import GpuLease, Job, JobStatus
from apps.jobs.transitions import CANCEL_REQUESTED, HOLDING, IllegalTransition, job_transition
from apps.nodes.models import Gpu, Node
from apps.nodes.services import placeable_nodes

logger = logging.getLogger(__name__)
RUN_TASK = "apps.jobs.tasks.run_job"  # what a node's worker runs for one attempt of a job


def live_usage(team_ids: list[int]) -> dict[int, LiveUsage]:
    """GPUs held and jobs scheduled or running, per team (the quotas' live figures)."""
    gpus = dict(GpuLease.objects.filter(job__team_id__in=team_ids).values_list("job__team_id").annotate(n=Count("pk")))
    jobs = dict(
        Job.objects.filter(team_id__in=team_ids, status__in=HOLDING).values_list("team_id").annotate(n=Count("pk"))
    )
    return {team: LiveUsage(gpus=gpus.get(team, 0), running_jobs=jobs.get(team, 0)) for team in team_ids}


def node_load(node_ids: list[int]):
    """The jobs each node runs and the GPUs they hold (the nodes app's load source)."""
    from apps.nodes.load import NodeJob, NodeLoad

    loads = {node_id: NodeLoad() for node_id in node_ids}
    holding = Job.objects.filter(node_id__in=node_ids, status__in=HOLDING).order_by("pk")
    for job in holding.only("pk", "team_id", "kind", "status", "gpu_indexes", "node_id"):
        loads[job.node_id].jobs.append(NodeJob(job.pk, job.team_id, job.kind, job.status, tuple(job.gpu_indexes)))
    return loads


def _fair_order(queued: list[Job]) -> list[Job]:
    """Round-robin across teams (each team's jobs by priority, then age); teams holding less go first."""
    holding = dict(Job.objects.filter(status__in=HOLDING).values_list("team_id").annotate(n=Count("pk")))
    rank, seen = {}, defaultdict(int)
    for job in queued:
        rank[job.pk] = seen[job.team_id]
        seen[job.team_id] += 1
    return sorted(queued, key=lambda j: (rank[j.pk], holding.get(j.team_id, 0), -j.priority, j.created_at, j.pk))


def jobs_place_queued(limit: int = 200) -> int:
    """Place what fits now; note why the rest waits. Returns how many jobs were placed."""
    queued = list(
        Job.objects.filter(status=JobStatus.QUEUED)
        .exclude(CANCEL_REQUESTED)  # ends cancelled, never placed (see transitions.job_requeue_or_end)
        .select_related("team")
        .order_by("-priority", "created_at", "pk")[:limit]
    )
    placed = 0
    for job in _fair_order(queued):
        outcome = _place(job)
        if outcome is True:
            placed += 1
        elif outcome:
            Job.objects.filter(pk=job.pk, status=JobStatus.QUEUED).exclude(status_reason=outcome).update(
                status_reason=outcome
            )
    return placed


def _node_load(nodes: list[Node]) -> dict[int, int]:
    rows = Job.objects.filter(node__in=nodes, status__in=HOLDING).values_list("node_id").annotate(n=Count("pk"))
    return dict(rows)


def _choose(job: Job) -> tuple[Node, list[Gpu]] | str:
    """The node (and GPUs) for this job, or the reason there is none right now."""
    nodes = list(placeable_nodes())
    if not nodes:
        return "waiting: no node is online"
    load = _node_load(nodes)
    with_slots = [n for n in nodes if load.get(n.pk, 0) < n.worker_slots]
    if not with_slots:
        return f"waiting: every worker slot of the {len(nodes)} online node(s) is busy"
    if job.gpus == 0:
        return min(with_slots, key=lambda n: (load.get(n.pk, 0) / n.worker_slots, n.name)), []
    free = defaultdict(list)
    for gpu in Gpu.objects.filter(node__in=with_slots, lease__isnull=True).order_by("node_id", "index"):
        free[gpu.node_id].append(gpu)
    fitting = [n for n in with_slots if len(free[n.pk]) >= job.gpus]
    if not fitting:
        return f"waiting: no online node has {job.gpus} free GPU{'s' if job.gpus > 1 else ''}"
    node = min(fitting, key=lambda n: (len(free[n.pk]), n.name))  # best fit: keep big gaps for big jobs
    return node, free[node.pk][: job.gpus]


def _place(job: Job) -> bool | str:
    try:
        with transaction.atomic():
            try:
                check_quota(job.team, gpus=job.gpus, jobs=1)  # locks the team's quota row
            except QuotaExceeded as refused:
                return f"waiting: {refused.message}"
            choice = _choose(job)
            if isinstance(choice, str):
                return choice
            node, gpus = choice
            GpuLease.objects.bulk_create([GpuLease(gpu=gpu, job=job) for gpu in gpus])
            attempt, now = job.attempts + 1, timezone.now()
            job_transition(
                job,
                JobStatus.SCHEDULED,
                attempt=job.attempts,
                when=~CANCEL_REQUESTED,
                reason=f"placed on {node.name}; starting",
                attempts=F("attempts") + 1,
                node=node,
                gpu_indexes=[g.index for g in gpus],
                dispatched_at=None,
                claimed_at=None,
                heartbeat_at=now,
                scheduled_at=now,
            )
            transaction.on_commit(partial(job_dispatch, job.pk, attempt, node.queue))
            return True
    except IntegrityError:
        logger.info("job %s: its GPUs were taken by a concurrent placement; it will be placed later", job.pk)
        return "waiting: its GPUs were just taken by another placement"
    except IllegalTransition:
        return False  # cancelled or placed by someone else meanwhile


def job_dispatch(job_id: int, attempt: int, queue: str | None) -> None:
    """Hand an attempt's task to its node's queue, then record in the job that it was handed over.

    Sent before it is recorded: a death in between sends it twice, which is harmless (only one
    worker can claim the attempt), where the other order would lose it.
    """
    enqueue(RUN_TASK, job_id, attempt, group="jobs", queue=queue)
    Job.objects.filter(pk=job_id, attempts=attempt, dispatched_at__isnull=True).update(dispatched_at=timezone.now())


def jobs_dispatch_undelivered() -> int:
    """Send the tasks of attempts placed over LEPTON_DISPATCH_GRACE_SECONDS ago that never reached the broker.

    Each is claimed first (a conditional update), so of two sweeps running at once one sends it.
    Returns how many were sent.
    """
    cutoff = timezone.now() - timedelta(seconds=settings.LEPTON_DISPATCH_GRACE_SECONDS)
    undelivered = Job.objects.filter(
        status=JobStatus.SCHEDULED, claimed_at__isnull=True, dispatched_at__isnull=True, scheduled_at__lt=cutoff
    ).select_related("node")
    sent = 0
    for job in undelivered:
        mine = Job.objects.filter(pk=job.pk, attempts=job.attempts, dispatched_at__isnull=True)
        if mine.update(dispatched_at=timezone.now()):
            sent += _send_claimed(job)
    return sent


def _send_claimed(job: Job) -> int:
    try:
        enqueue(RUN_TASK, job.pk, job.attempts, group="jobs", queue=job.node.queue if job.node else None)
    except Exception:  # the broker is down: leave it for the next sweep
        logger.exception("job %s attempt %s: could not reach the broker", job.pk, job.attempts)
        Job.objects.filter(pk=job.pk, attempts=job.attempts).update(dispatched_at=None)
        return 0
    logger.warning("job %s attempt %s: its placer never sent it; sent now", job.pk, job.attempts)
    return 1
