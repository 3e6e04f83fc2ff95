"""Every change to a job: the state machine, submit, cancel, retry, placement and the reaper.

States: queued -> scheduled -> running -> succeeded | failed | cancelled. A lost worker's
job goes back to queued (its next attempt resumes from the last checkpoint) until
`max_attempts`, then fails with the reason. `job_transition` is the only writer of
`status`: a conditional update from the allowed source states, so two processes racing
on one job can never both win.
"""

import logging
from datetime import timedelta

from django.conf import settings
from django.db import transaction
from django.db.models import F
from django.utils import timezone

from apps.accounts.models import Role, Team
from apps.accounts.services import require_role
from apps.core.errors import ApplicationError, Conflict
from apps.core.queue import enqueue_on_commit
from apps.jobs.kinds import kind_handler
from apps.jobs.models import TERMINAL, Job, JobLogLine, JobStatus

logger = logging.getLogger(__name__)
RUN_TASK = "apps.jobs.tasks.run_job"
S = JobStatus

ALLOWED_FROM = {
    S.QUEUED: {S.SCHEDULED, S.RUNNING, S.FAILED, S.CANCELLED},  # requeue (lost), retry
    S.SCHEDULED: {S.QUEUED},
    S.RUNNING: {S.SCHEDULED},
    S.SUCCEEDED: {S.RUNNING},
    S.FAILED: {S.QUEUED, S.SCHEDULED, S.RUNNING},
    S.CANCELLED: {S.QUEUED, S.SCHEDULED, S.RUNNING},
}


class IllegalTransition(Conflict):
    """The job is not in a state that may move to the requested one (or another process moved it first)."""


def job_transition(job: Job, to: str, *, reason: str = "", attempt: int | None = None, **fields) -> Job:
    """Move `job` to `to` if it is in an allowed state (and, when given, still at `attempt`).

    Raises `IllegalTransition` otherwise; on success the instance is refreshed.
    """
    now = timezone.now()
    rows = Job.objects.filter(pk=job.pk, status__in=ALLOWED_FROM[to])
    if attempt is not None:
        rows = rows.filter(attempts=attempt)
    if to in TERMINAL:
        fields.setdefault("finished_at", now)
    if not rows.update(status=to, status_reason=reason, **fields):
        job.refresh_from_db(fields=["status"])
        raise IllegalTransition(f"Job {job.pk} is {job.status}; it cannot become {to}.")
    job.refresh_from_db()
    return job


def job_log(job_id: int, attempt: int, message: str, level: str = JobLogLine.Level.INFO) -> None:
    JobLogLine.objects.create(job_id=job_id, attempt=attempt, level=level, message=message)


# --- submitting, cancelling, retrying ----------------------------------------------------------------


def job_submit(
    *, actor, team: Team, kind: str, spec: dict, priority: int = 0, gpus: int = 0, max_attempts: int | None = None
) -> Job:
    """Validate the spec with its kind and queue the job; placement happens once it commits."""
    require_role(actor, team, Role.MEMBER)
    handler = kind_handler(kind)
    if not isinstance(spec, dict):
        raise ApplicationError("spec: must be an object.", fields={"spec": ["Must be an object."]})
    if not -100 <= int(priority) <= 100:
        raise ApplicationError("priority: must be from -100 to 100.", fields={"priority": ["Out of range."]})
    clean = handler.validate(spec, team=team, actor=actor)
    with transaction.atomic():
        job = Job.objects.create(
            team=team,
            submitted_by=actor,
            kind=kind,
            spec=clean,
            priority=priority,
            gpus=gpus,
            max_attempts=max_attempts or settings.LEPTON_JOB_MAX_ATTEMPTS,
            status_reason="waiting to be placed",
        )
        transaction.on_commit(jobs_place_queued)
    return job


def job_cancel(*, actor, job: Job) -> Job:
    """Queued or scheduled: cancelled at once. Running: the runner stops at its next check (within seconds)."""
    require_role(actor, job.team, Role.MEMBER)
    if job.status in (S.QUEUED, S.SCHEDULED):
        try:
            return job_transition(job, S.CANCELLED, reason=f"cancelled by {actor.username} before it ran")
        except IllegalTransition:
            job.refresh_from_db()  # a worker started it meanwhile
    if job.status == S.RUNNING:
        return _request_cancel(job, actor)
    raise Conflict(f"Job {job.pk} is already {job.status}.")


def _request_cancel(job: Job, actor) -> Job:
    Job.objects.filter(pk=job.pk, status=S.RUNNING, cancel_requested_at__isnull=True).update(
        cancel_requested_at=timezone.now(), status_reason=f"cancel requested by {actor.username}"
    )
    job.refresh_from_db()
    return job


def job_retry(*, actor, job: Job) -> Job:
    """A failed or cancelled job runs again: a new attempt, resuming from its last checkpoint."""
    require_role(actor, job.team, Role.MEMBER)
    if job.status not in (S.FAILED, S.CANCELLED):
        raise Conflict(f"Job {job.pk} is {job.status}; only failed or cancelled jobs can be retried.")
    with transaction.atomic():
        job = job_transition(
            job,
            S.QUEUED,
            reason=f"retry requested by {actor.username}",
            finished_at=None,
            cancel_requested_at=None,
            max_attempts=job.attempts + settings.LEPTON_JOB_MAX_ATTEMPTS,
        )
        transaction.on_commit(jobs_place_queued)
    return job


# --- placement (the scheduler) and the reaper --------------------------------------------------------


def jobs_place_queued() -> int:
    """Dispatch queued jobs, highest priority first, oldest first; returns how many were placed."""
    placed = 0
    for job in Job.objects.filter(status=S.QUEUED).order_by("-priority", "created_at", "pk")[:100]:
        if _dispatch(job):
            placed += 1
    return placed


def _dispatch(job: Job) -> bool:
    """queued -> scheduled as the next attempt, and hand that attempt to the workers."""
    attempt = job.attempts + 1
    with transaction.atomic():
        try:
            now = timezone.now()
            job_transition(
                job,
                S.SCHEDULED,
                attempt=job.attempts,
                reason="waiting for a worker to start it",
                attempts=F("attempts") + 1,
                claimed_at=None,
                heartbeat_at=now,
                scheduled_at=now,
            )
        except IllegalTransition:
            return False
        enqueue_on_commit(RUN_TASK, job.pk, attempt, group="jobs")
    return True


def jobs_reap_stale() -> int:
    """Running jobs whose attempt went silent: requeue them (resume), or fail them after the last attempt.

    Scheduled jobs no worker has taken yet are only waiting (behind busy workers, or their task
    was lost with a broker restart): after LEPTON_DISPATCH_TIMEOUT_SECONDS their attempt is
    queued again, which is harmless (only one claim can win) and never counts as a failure.
    """
    now = timezone.now()
    handled = 0
    silent = now - timedelta(seconds=settings.LEPTON_JOB_STALE_SECONDS)
    for job in Job.objects.filter(status=S.RUNNING, heartbeat_at__lt=silent):
        handled += _reap_running(job)
    waiting = now - timedelta(seconds=settings.LEPTON_DISPATCH_TIMEOUT_SECONDS)
    for job in Job.objects.filter(status=S.SCHEDULED, claimed_at__isnull=True, heartbeat_at__lt=waiting):
        if Job.objects.filter(pk=job.pk, status=S.SCHEDULED, attempts=job.attempts).update(heartbeat_at=now):
            enqueue_on_commit(RUN_TASK, job.pk, job.attempts, group="jobs")
            handled += 1
    if handled:
        jobs_place_queued()
    return handled


def _reap_running(job: Job) -> int:
    silence = f"no sign of life from attempt {job.attempts} for {settings.LEPTON_JOB_STALE_SECONDS} s"
    try:
        if job.attempts < job.max_attempts:
            job_transition(
                job,
                S.QUEUED,
                attempt=job.attempts,
                reason=f"worker lost ({silence}); the next attempt resumes from the last checkpoint",
            )
        else:
            job_transition(
                job,
                S.FAILED,
                attempt=job.attempts,
                reason=f"worker lost ({silence}); gave up after {job.attempts} attempt(s)",
            )
    except IllegalTransition:
        return 0  # it moved on by itself in the meantime
    job_log(job.pk, job.attempts, f"reaper: {silence}", JobLogLine.Level.WARNING)
    return 1
