"""Jobs that span nodes (gangs): admitted whole or not at all, dispatched rank by rank, lost as one.

A job with `nodes` = N > 1 needs N distinct placeable nodes, each with a free worker slot and
`gpus` free GPUs. `place_gang` takes them in one transaction: the team's quota row is locked
and checked for N x `gpus` GPUs and one running job (a gang is one job and one attempt, so it
counts once against `max_running_jobs`, like the job row the live usage counts), every GPU gets
its `GpuLease` (the unique constraint still refuses a GPU to two placers), every node its
`JobRank`, and the job becomes scheduled as its next attempt; or nothing is written. Once
committed each rank's task goes to its node's queue: rank 0 is the job's ordinary attempt
(`run_job`, recorded in the job's `dispatched_at`), ranks 1.. run `run_job_rank` (recorded in
their rank row). A placer that dies between the commit and an enqueue leaves that empty, and
`gang_dispatch_undelivered` sends it, like `jobs_dispatch_undelivered` does for rank 0.

Any rank's loss ends the attempt for all: rank 0 crashes when a peer leaves the process
group and requeues the job as any crash does; a rank whose node went offline or whose
heartbeat went stale is found by `gangs_lost` for the reaper. The next attempt is placed
afresh (any nodes) and resumes from rank 0's checkpoint; the ranks of the old attempt see
that their attempt is gone at their next lease check and stop.
"""

import logging
from collections import defaultdict
from datetime import timedelta
from functools import partial

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import Count, F
from django.utils import timezone

from apps.accounts.plans import quota_ensure
from apps.accounts.quotas import check_quota
from apps.core.errors import QuotaExceeded
from apps.core.queue import enqueue
from apps.core.units import format_bytes
from apps.jobs.models import GpuLease, Job, JobRank, JobStatus
from apps.jobs.transitions import CANCEL_REQUESTED, HOLDING, IllegalTransition, job_transition
from apps.nodes.models import Gpu, Node
from apps.nodes.services import placeable_nodes

logger = logging.getLogger(__name__)
RUN_TASK = "apps.jobs.tasks.run_job"  # rank 0: the job's own attempt (as apps.jobs.scheduler sends it)
RANK_TASK = "apps.jobs.tasks.run_job_rank"  # ranks 1..: their node's share of the attempt


def gang_rank_load(node_ids) -> dict[int, int]:
    """Worker slots the ranks 1.. of holding gangs take on each node (rank 0 counts as its job's node)."""
    rows = (
        JobRank.objects.filter(node_id__in=node_ids, rank__gt=0, job__status__in=HOLDING, attempt=F("job__attempts"))
        .values_list("node_id")
        .annotate(n=Count("pk"))
    )
    return dict(rows)


def _node_load(node_ids: list[int]) -> dict[int, int]:
    jobs = Job.objects.filter(node_id__in=node_ids, status__in=HOLDING).values_list("node_id").annotate(n=Count("pk"))
    load = defaultdict(int, dict(jobs))
    for node_id, ranks in gang_rank_load(node_ids).items():
        load[node_id] += ranks
    return load


def _choose_nodes(job: Job, team_pools: frozenset[str]) -> list[tuple[Node, list[Gpu]]] | str:
    """`job.nodes` distinct nodes (and their GPUs) for the gang, or why there are not enough now.

    Nodes narrow as for any job: the job's pool, else the pools its team is limited to; GPUs
    by the job's GPU model and memory.
    """
    nodes = placeable_nodes()
    pool = getattr(job, "pool", "")
    if pool:
        if team_pools and pool not in team_pools:
            return f"waiting: team may not use pool {pool} (allowed: {', '.join(sorted(team_pools))})"
        nodes = nodes.filter(pool=pool)
    elif team_pools:
        nodes = nodes.filter(pool__in=team_pools)
    nodes = list(nodes)
    where = f" in pool {pool}" if pool else (f" in pool(s) {', '.join(sorted(team_pools))}" if team_pools else "")
    if len(nodes) < job.nodes:
        return f"waiting: needs {job.nodes} nodes; {len(nodes)} online{where}"
    load = _node_load([n.pk for n in nodes])
    with_slots = [n for n in nodes if load[n.pk] < n.worker_slots]
    free = defaultdict(list)
    if job.gpus:
        for gpu in Gpu.objects.filter(node__in=with_slots, lease__isnull=True).order_by("node_id", "index"):
            if _gpu_fits(gpu, job):
                free[gpu.node_id].append(gpu)
    fitting = [n for n in with_slots if len(free[n.pk]) >= job.gpus]
    if len(fitting) < job.nodes:
        each = f" with {job.gpus} free {_gpu_words(job)}" if job.gpus else ""
        return f"waiting: needs {job.nodes} nodes{each} and a free worker slot; {len(fitting)} have them{where}"
    # Best fit (fewest free GPUs first, then the least loaded): big gaps stay for big jobs.
    chosen = sorted(fitting, key=lambda n: (len(free[n.pk]), load[n.pk] / n.worker_slots, n.name))[: job.nodes]
    return [(node, free[node.pk][: job.gpus]) for node in chosen]


def _gpu_fits(gpu: Gpu, job: Job) -> bool:
    if job.gpu_model and job.gpu_model.lower() not in gpu.model_name.lower():
        return False
    return not job.min_gpu_memory_bytes or gpu.memory_total_bytes >= job.min_gpu_memory_bytes


def _gpu_words(job: Job) -> str:
    noun = "GPU" if job.gpus == 1 else "GPUs"
    memory = f" with {format_bytes(job.min_gpu_memory_bytes)} or more" if job.min_gpu_memory_bytes else ""
    return f"{job.gpu_model} {noun}{memory}" if job.gpu_model else f"{noun}{memory}"


def place_gang(job: Job) -> bool | str:
    """Admit a multi-node job whole: True when placed, the reason when it waits, False when it moved meanwhile."""
    try:
        with transaction.atomic():
            try:  # locks the team's quota row: two placers of one team cannot both pass it
                check_quota(job.team, gpus=job.gpus * job.nodes, jobs=1)
            except QuotaExceeded as refused:
                return f"waiting: {refused.message}"
            choice = _choose_nodes(job, quota_ensure(job.team).pools)
            if isinstance(choice, str):
                return choice
            _admit(job, choice)
            return True
    except IntegrityError:
        logger.info("job %s: a GPU of its gang was taken by a concurrent placement; it will be placed later", job.pk)
        return "waiting: its GPUs were just taken by another placement"
    except IllegalTransition:
        return False  # cancelled or placed by someone else meanwhile


def _admit(job: Job, choice: list[tuple[Node, list[Gpu]]]) -> None:
    """Inside place_gang's transaction: leases, the transition, the rank rows, the dispatch on commit."""
    GpuLease.objects.bulk_create([GpuLease(gpu=gpu, job=job) for _, gpus in choice for gpu in gpus])
    attempt, now = job.attempts + 1, timezone.now()
    (first, first_gpus) = choice[0]
    names = ", ".join(node.name for node, _ in choice)
    job_transition(
        job,
        JobStatus.SCHEDULED,
        attempt=job.attempts,
        when=~CANCEL_REQUESTED,
        reason=f"placed on {names}; starting"[:2000],
        attempts=F("attempts") + 1,
        node=first,
        gpu_indexes=[g.index for g in first_gpus],
        dispatched_at=None,
        claimed_at=None,
        heartbeat_at=now,
        scheduled_at=now,
        rendezvous_address="",
        rendezvous_port=None,
    )
    JobRank.objects.filter(job=job).delete()  # the last attempt's ranks
    JobRank.objects.bulk_create(
        JobRank(job=job, rank=rank, node=node, gpu_indexes=[g.index for g in gpus], attempt=attempt)
        for rank, (node, gpus) in enumerate(choice)
    )
    queues = [node.queue for node, _ in choice]
    transaction.on_commit(partial(gang_dispatch, job.pk, attempt, queues))


def gang_dispatch(job_id: int, attempt: int, queues: list[str]) -> None:
    """Hand each rank's task to its node's queue, then record that it was handed over (see jobs_dispatch)."""
    from apps.jobs.scheduler import jobs_dispatch

    jobs_dispatch([(job_id, attempt, queues[0])])
    for rank, queue in enumerate(queues[1:], start=1):
        enqueue(RANK_TASK, job_id, attempt, rank, group="jobs", queue=queue)
        JobRank.objects.filter(job_id=job_id, rank=rank, attempt=attempt, dispatched_at__isnull=True).update(
            dispatched_at=timezone.now()
        )


def gang_dispatch_undelivered() -> int:
    """Send the tasks of ranks 1.. placed over LEPTON_DISPATCH_GRACE_SECONDS ago that never reached the broker.

    Claimed first by a conditional update, so of two sweeps one sends each. Returns how many were sent.
    """
    cutoff = timezone.now() - timedelta(seconds=settings.LEPTON_DISPATCH_GRACE_SECONDS)
    undelivered = JobRank.objects.filter(
        rank__gt=0,
        dispatched_at__isnull=True,
        attempt=F("job__attempts"),
        job__status__in=HOLDING,
        job__scheduled_at__lt=cutoff,
    ).select_related("node")
    sent = 0
    for rank in undelivered:
        if JobRank.objects.filter(pk=rank.pk, dispatched_at__isnull=True).update(dispatched_at=timezone.now()):
            try:
                enqueue(RANK_TASK, rank.job_id, rank.attempt, rank.rank, group="jobs", queue=rank.node.queue)
            except Exception:  # the broker is down: leave it for the next sweep
                logger.exception("job %s rank %s: could not reach the broker", rank.job_id, rank.rank)
                JobRank.objects.filter(pk=rank.pk).update(dispatched_at=None)
                continue
            logger.warning("job %s attempt %s rank %s: its placer never sent it; sent now", *_ids(rank))
            sent += 1
    return sent


def _ids(rank: JobRank) -> tuple[int, int, int]:
    return rank.job_id, rank.attempt, rank.rank


def gangs_lost() -> list[tuple[Job, str]]:
    """Gangs whose current attempt lost a rank 1..: its node went offline, or its heartbeat went stale.

    What the reaper requeues (the whole job: apps.jobs.services.jobs_reap_stale); rank 0's own
    losses are the job row's and found as for any job.
    """
    silent = timezone.now() - timedelta(seconds=settings.LEPTON_JOB_STALE_SECONDS)
    current = JobRank.objects.filter(rank__gt=0, attempt=F("job__attempts"), job__status__in=HOLDING)
    offline = current.filter(node__status=Node.Status.OFFLINE)
    stale = current.filter(job__status=JobStatus.RUNNING, claimed_at__isnull=False, heartbeat_at__lt=silent)
    lost = {}
    for rank in offline.select_related("job", "node"):
        lost.setdefault(rank.job_id, (rank.job, f"rank {rank.rank}'s node {rank.node.name} went offline"))
    for rank in stale.select_related("job"):
        seconds = settings.LEPTON_JOB_STALE_SECONDS
        lost.setdefault(rank.job_id, (rank.job, f"no sign of life from rank {rank.rank} for {seconds} s"))
    return list(lost.values())
