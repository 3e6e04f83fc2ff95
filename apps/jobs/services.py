"""Every change to a job but its status itself: submit, cancel, retry, and the reaper.

A lost worker's job goes back to queued (its next attempt resumes from the last checkpoint)
until `max_attempts`, then fails with the reason. Status changes go through
`apps.jobs.transitions.job_transition`; placement is the scheduler's (apps.jobs.scheduler).
"""

import contextlib
import logging
from datetime import timedelta

from django.conf import settings
from django.db import transaction
from django.db.models import Count, F, Max, Q
from django.db.models.functions import Coalesce, Now
from django.utils import timezone

from apps.accounts.models import Role, Team
from apps.accounts.plans import quota_ensure
from apps.accounts.services import require_role
from apps.core.errors import ApplicationError, Conflict, QuotaExceeded
from apps.core.queue import enqueue_on_commit
from apps.core.work import work_retrying
from apps.jobs.gang import gang_dispatch_undelivered, gangs_lost
from apps.jobs.kinds import kind_handler
from apps.jobs.models import Job, JobLogLine, JobStatus
from apps.jobs.scheduler import NEW_JOB_REASON, RUN_TASK, jobs_dispatch_undelivered, jobs_request_pass
from apps.jobs.transitions import CANCEL_REQUESTED, IllegalTransition, job_log, job_requeue_or_end, job_transition
from apps.nodes.models import Node

logger = logging.getLogger(__name__)


# --- submitting, cancelling, retrying ----------------------------------------------------------------


def job_submit(
    *,
    actor,
    team: Team,
    kind: str,
    spec: dict,
    priority: int = 0,
    gpus: int = 0,
    nodes: int = 1,
    max_attempts: int | None = None,
    time_limit_seconds: int | None = None,
    pool: str = "",
    gpu_model: str = "",
    min_gpu_memory_bytes: int | None = None,
    on_behalf_of_app: bool = False,
) -> Job:
    """Check the spec with its kind's declaration and queue the job; placement happens once it commits.

    `nodes` > 1 asks for that many nodes with `gpus` GPUs each, at once (apps.jobs.gang): only
    kinds that can run a node's share (train) may ask. Kinds that only their own app starts (an
    ingest is the worker's half of a dataset upload) are refused here unless that app asks
    (`on_behalf_of_app`, through apps.core.work).
    """
    require_role(actor, team, Role.MEMBER)
    handler = kind_handler(kind)
    if handler.started_by and not on_behalf_of_app:
        raise ApplicationError(
            f"kind: {kind} jobs start when you {handler.started_by}.", fields={"kind": ["Not submittable."]}
        )
    if not -100 <= int(priority) <= 100:
        raise ApplicationError("priority: must be from -100 to 100.", fields={"priority": ["Out of range."]})
    if (gpu_model or min_gpu_memory_bytes) and not gpus:
        field = "gpu_model" if gpu_model else "min_gpu_memory_bytes"
        problem = f"{field}: only a job that asks for GPUs can name them."
        raise ApplicationError(problem, fields={field: ["Needs gpus."]})
    if nodes > 1 and handler.run_rank is None:
        raise ApplicationError(
            f"nodes: {kind} jobs run on one node; only train jobs can span nodes.",
            fields={"nodes": ["Only train jobs can span nodes."]},
        )
    _refuse_what_can_never_fit(team, gpus, nodes, pool=pool, gpu_model=gpu_model, min_memory=min_gpu_memory_bytes)
    clean = handler.check(spec, team=team, actor=actor)
    with transaction.atomic():
        job = Job.objects.create(
            team=team,
            submitted_by=actor,
            kind=kind,
            spec=clean,
            summary=handler.describe(clean)[:300],
            priority=priority,
            gpus=gpus,
            pool=pool,
            gpu_model=gpu_model,
            min_gpu_memory_bytes=min_gpu_memory_bytes,
            nodes=nodes,
            max_attempts=max_attempts or settings.LEPTON_JOB_MAX_ATTEMPTS,
            status_reason=NEW_JOB_REASON,
            time_limit_seconds=time_limit_seconds or settings.LEPTON_JOB_TIME_LIMIT_SECONDS,
        )
        jobs_request_pass()
    return job


def work_request(kind: str, *, actor, team: Team, spec: dict, gpus: int = 0) -> int:
    """What `apps.core.work.request` runs: an app's own work as a job of its team (returns its id)."""
    return job_submit(actor=actor, team=team, kind=kind, spec=spec, gpus=gpus, on_behalf_of_app=True).pk


def _refuse_what_can_never_fit(
    team: Team, gpus: int, span: int = 1, *, pool: str, gpu_model: str, min_memory: int | None
) -> None:
    """A job that no node, pool or quota could ever run is refused now, not left queued forever.

    `span` > 1 (a job's `nodes`) needs that many distinct nodes of `gpus` such GPUs each, and
    `gpus` x `span` GPUs of the team's quota.
    """
    quota = quota_ensure(team)  # a team without a row is on the default plan
    if pool and quota.pools and pool not in quota.pools:
        allowed = ", ".join(sorted(quota.pools))
        raise ApplicationError(
            f"pool: team {team.slug} may use only pool(s) {allowed}; {pool} is not one of them.",
            fields={"pool": [f"Team {team.slug} may not use pool {pool}."]},
        )
    nodes = Node.objects.exclude(status=Node.Status.OFFLINE)
    if pool:
        if not nodes.filter(pool=pool).exists():
            raise ApplicationError(f"pool: no online node is in pool {pool}.", fields={"pool": ["No such pool."]})
        nodes = nodes.filter(pool=pool)
    elif quota.pools:
        nodes = nodes.filter(pool__in=quota.pools)
    matching = Q()
    if gpu_model:
        matching &= Q(gpus__model_name__icontains=gpu_model)
    if min_memory:
        matching &= Q(gpus__memory_total_bytes__gte=min_memory)
    if gpus > 0:
        _refuse_past_the_gpu_quota(team, quota, gpus, span)
        largest = nodes.annotate(n=Count("gpus", filter=matching)).aggregate(m=Max("n"))["m"]
        if not largest or gpus > largest:
            where = f" in pool {pool}" if pool else ""
            kind = " matching" if gpu_model or min_memory else ""
            raise ApplicationError(
                f"gpus: no node{where} has {gpus}{kind} GPUs (the largest has {largest or 0}).",
                fields={"gpus": [f"No node{where} has {gpus}{kind} GPUs."]},
            )
    if span > 1:
        able = nodes.annotate(n=Count("gpus", filter=matching)).filter(n__gte=gpus).count()
        if span > able:
            each = f" with {gpus} GPU{'s' if gpus > 1 else ''}" if gpus else ""
            raise ApplicationError(
                f"nodes: the job asks for {span} nodes{each}; there are {able}.",
                fields={"nodes": [f"Only {able} node(s){each}."]},
            )


def _refuse_past_the_gpu_quota(team: Team, quota, gpus: int, span: int) -> None:
    allowed = quota.limit("max_concurrent_gpus")
    if gpus * span > allowed:
        each = f" ({gpus} on each of {span} nodes)" if span > 1 else ""
        raise QuotaExceeded(
            f"team quota: the job asks for {gpus * span} GPUs{each}; team {team.slug} may hold at most {allowed}",
            limit="max_concurrent_gpus",
        )


# A job changes state at most a few times in a moment; more misses than this mean something is wrong.
CANCEL_TRIES = 5


def job_cancel(*, actor, job: Job) -> Job:
    """Queued or scheduled: cancelled at once. Running: the runner stops at its next check (within seconds).

    The job can move between our read and our write (a reaper requeues a lost attempt, a worker
    starts it): each write is conditional, and a miss reads the job again and takes the path
    its new status needs, so a cancel is never silently dropped.
    """
    require_role(actor, job.team, Role.MEMBER)
    for _ in range(CANCEL_TRIES):
        if job.status in (JobStatus.QUEUED, JobStatus.SCHEDULED):
            with contextlib.suppress(IllegalTransition):  # it started (or ended) meanwhile: read again
                held = job.status == JobStatus.SCHEDULED
                job = job_transition(job, JobStatus.CANCELLED, reason=f"cancelled by {actor.username} before it ran")
                if held:
                    jobs_request_pass()  # its slot and GPUs are free again
                return job
        elif job.status == JobStatus.RUNNING:
            if _request_cancel(job, actor):
                return job
        else:
            raise Conflict(f"Job {job.pk} is already {job.status}.")
        job.refresh_from_db()
    raise Conflict(f"Job {job.pk} kept changing state while it was being cancelled; try again.")


def _request_cancel(job: Job, actor) -> bool:
    """Ask the running attempt to stop; False when the job is no longer running."""
    updated = Job.objects.filter(pk=job.pk, status=JobStatus.RUNNING).update(
        cancel_requested_at=Coalesce(F("cancel_requested_at"), Now()),
        status_reason=f"cancel requested by {actor.username}",
    )
    job.refresh_from_db()
    return bool(updated)


def job_retry(*, actor, job: Job) -> Job:
    """A failed or cancelled job runs again: a new attempt, resuming from its last checkpoint.

    The rows the job was making go back to processing with it (`work_retrying`); an app refuses
    with a Conflict when the job cannot run again (its upload was deleted when it failed).
    """
    require_role(actor, job.team, Role.MEMBER)
    if job.status not in (JobStatus.FAILED, JobStatus.CANCELLED):
        raise Conflict(f"Job {job.pk} is {job.status}; only failed or cancelled jobs can be retried.")
    with transaction.atomic():
        work_retrying.send(sender=Job, job_id=job.pk)
        job = job_transition(
            job,
            JobStatus.QUEUED,
            reason=f"retry requested by {actor.username}",
            finished_at=None,
            cancel_requested_at=None,
            max_attempts=job.attempts + settings.LEPTON_JOB_MAX_ATTEMPTS,
        )
        jobs_request_pass()
    return job


# --- the reaper ---------------------------------------------------------------------------------------------


def jobs_reap_stale() -> int:
    """Deal with jobs whose worker or node went silent, or that ran past their time limit.

    Running on a node that went offline, or silent for LEPTON_JOB_STALE_SECONDS: requeue (the
    next attempt resumes from the last checkpoint) or fail after the last attempt. Past the
    time limit (with a minute's grace for the runner to stop it itself): fail. Scheduled jobs no
    worker has taken yet are only waiting: after LEPTON_DISPATCH_TIMEOUT_SECONDS their attempt
    is queued again (harmless: only one claim can win), never counted as a failure; those whose
    task never reached the broker at all are sent after only LEPTON_DISPATCH_GRACE_SECONDS.
    """
    from apps.nodes.services import nodes_mark_silent_offline

    nodes_mark_silent_offline()
    now = timezone.now()
    sent = jobs_dispatch_undelivered() + gang_dispatch_undelivered()
    handled = _cancel_queued_with_a_cancel_request()
    lost_node = Job.objects.filter(
        status__in=(JobStatus.SCHEDULED, JobStatus.RUNNING), node__status=Node.Status.OFFLINE
    )
    for job in lost_node.select_related("node"):
        handled += _requeue_or_fail(job, f"node {job.node.name} went offline ({job.node.status_reason})")
    for job, why in gangs_lost():  # any rank's loss is the whole job's (apps.jobs.gang)
        handled += _requeue_or_fail(job, why)
    silent = now - timedelta(seconds=settings.LEPTON_JOB_STALE_SECONDS)
    for job in Job.objects.filter(status=JobStatus.RUNNING, heartbeat_at__lt=silent):
        handled += _requeue_or_fail(
            job, f"no sign of life from attempt {job.attempts} for {settings.LEPTON_JOB_STALE_SECONDS} s"
        )
    for job in Job.objects.filter(status=JobStatus.RUNNING, time_limit_seconds__isnull=False, started_at__isnull=False):
        if (now - job.started_at).total_seconds() > job.time_limit_seconds + 60:
            handled += _fail_over_time(job)
    if handled:  # jobs were requeued or ended, and their slots and GPUs freed: place what waits
        jobs_request_pass()
    waiting = now - timedelta(seconds=settings.LEPTON_DISPATCH_TIMEOUT_SECONDS)
    for job in Job.objects.filter(status=JobStatus.SCHEDULED, claimed_at__isnull=True, heartbeat_at__lt=waiting):
        if Job.objects.filter(pk=job.pk, status=JobStatus.SCHEDULED, attempts=job.attempts).update(heartbeat_at=now):
            enqueue_on_commit(RUN_TASK, job.pk, job.attempts, group="jobs", queue=job.node.queue if job.node else None)
            sent += 1
    return handled + sent


def _cancel_queued_with_a_cancel_request() -> int:
    """Queued jobs whose cancel was requested (left so by an older release) end cancelled: none is ever placed."""
    ended = 0
    for job in Job.objects.filter(CANCEL_REQUESTED, status=JobStatus.QUEUED):
        try:
            job_transition(job, JobStatus.CANCELLED, when=CANCEL_REQUESTED, reason="cancelled: requested before it ran")
        except IllegalTransition:
            continue
        ended += 1
    return ended


def _record_lost_attempt(job: Job) -> None:
    """GPU-seconds of an attempt whose worker died: from its claim to its last heartbeat.

    Written under the attempt's usual source, so if the worker turns out alive and records
    its own time later, the ledger keeps one line (usage_record is exactly-once per source).
    """
    from apps.accounts.models import UsageRecord
    from apps.accounts.quotas import usage_record

    if job.gpus and job.claimed_at and job.heartbeat_at:
        seconds = max(0.0, (job.heartbeat_at - job.claimed_at).total_seconds())
        usage_record(
            team=job.team,
            kind=UsageRecord.Kind.GPU_SECONDS,
            amount=round(job.gpus * job.nodes * seconds),
            source=f"job:{job.pk}:attempt:{job.attempts}",
        )


def _requeue_or_fail(job: Job, why: str) -> int:
    _record_lost_attempt(job)
    try:
        job_requeue_or_end(
            job,
            attempt=job.attempts,
            retry_reason=f"worker lost ({why}); the next attempt resumes from the last checkpoint",
            failed_reason=f"worker lost ({why}); gave up after {job.attempts} attempt(s)",
        )
    except IllegalTransition:
        return 0  # it moved on by itself in the meantime
    job_log(job.pk, job.attempts, f"reaper: {why}", JobLogLine.Level.WARNING)
    return 1


def _fail_over_time(job: Job) -> int:
    try:
        job_transition(
            job,
            JobStatus.FAILED,
            attempt=job.attempts,
            reason=f"stopped: over its time limit of {job.time_limit_seconds} s",
        )
    except IllegalTransition:
        return 0
    return 1
