"""The job state machine and the attempt lease: the only writers of a job's status and of a running job.

States: queued -> scheduled -> running -> succeeded | failed | cancelled. A lost worker's
job goes back to queued (its next attempt resumes from the last checkpoint) until
`max_attempts`. `job_transition` is the only writer of `status`: a conditional update from
the allowed source states, so two processes racing on one job can never both win. The
scheduler, the runner and the services all build on this module; it imports none of them.
"""

import logging

from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from apps.core.errors import Conflict
from apps.core.work import work_ended
from apps.jobs.models import TERMINAL, GpuLease, Job, JobLogLine, JobStatus
from apps.jobs.signals import job_finished

logger = logging.getLogger(__name__)

ALLOWED_FROM = {
    JobStatus.QUEUED: {JobStatus.SCHEDULED, JobStatus.RUNNING, JobStatus.FAILED, JobStatus.CANCELLED},
    JobStatus.SCHEDULED: {JobStatus.QUEUED},
    JobStatus.RUNNING: {JobStatus.SCHEDULED},
    JobStatus.SUCCEEDED: {JobStatus.RUNNING},
    JobStatus.FAILED: {JobStatus.QUEUED, JobStatus.SCHEDULED, JobStatus.RUNNING},
    JobStatus.CANCELLED: {JobStatus.QUEUED, JobStatus.SCHEDULED, JobStatus.RUNNING},
}
HOLDING = (JobStatus.SCHEDULED, JobStatus.RUNNING)  # states that hold a worker slot (and GPUs)
CANCEL_REQUESTED = Q(cancel_requested_at__isnull=False)


class IllegalTransition(Conflict):
    """The job is not in a state that may move to the requested one (or another process moved it first)."""


class LeaseLost(Exception):
    """This attempt no longer owns the job (a newer attempt took it, or it was finished)."""


def job_transition(
    job: Job, to: str, *, reason: str = "", attempt: int | None = None, when: Q | None = None, **fields
) -> Job:
    """Move `job` to `to` if it is in an allowed state (and, when given, still at `attempt` and matching `when`).

    Raises `IllegalTransition` otherwise; on success the instance is refreshed. Ending a job
    tells the apps whose rows it was making (`work_ended`, in this transaction: a row never
    stays processing after its job ended) and, once committed, the `job_finished` listeners.
    """
    rows = Job.objects.filter(pk=job.pk, status__in=ALLOWED_FROM[to])
    if attempt is not None:
        rows = rows.filter(attempts=attempt)
    if when is not None:
        rows = rows.filter(when)
    if to in TERMINAL:
        fields.setdefault("finished_at", timezone.now())
    with transaction.atomic():
        if not rows.update(status=to, status_reason=reason, **fields):
            job.refresh_from_db(fields=["status"])
            raise IllegalTransition(f"Job {job.pk} is {job.status}; it cannot become {to}.")
        if to not in HOLDING:
            GpuLease.objects.filter(job_id=job.pk).delete()  # its GPUs are free again
        if to in TERMINAL:
            work_ended.send(sender=Job, job_id=job.pk, succeeded=to == JobStatus.SUCCEEDED, reason=reason)
            job_id = job.pk
            transaction.on_commit(lambda: _announce_finished(job_id))
    job.refresh_from_db()
    return job


def job_requeue_or_end(job: Job, *, attempt: int, retry_reason: str, failed_reason: str) -> Job:
    """An attempt ended without finishing its job (it crashed, or its worker was lost): what next.

    A job whose cancel was requested ends cancelled: the attempt that would have acted on the
    request is gone, and another would start on some node and be billed before it stopped. Other
    jobs are queued for their next attempt while attempts remain, and fail after the last. Each
    way is one conditional update, so a cancel requested meanwhile is never requeued past.
    """
    cancelled = f"cancelled: the cancel was requested before attempt {attempt} ended"
    try:
        return job_transition(job, JobStatus.CANCELLED, attempt=attempt, when=CANCEL_REQUESTED, reason=cancelled)
    except IllegalTransition:
        pass  # no cancel requested (or the job moved on: the next update finds that out too)
    if attempt < job.max_attempts:
        return job_transition(job, JobStatus.QUEUED, attempt=attempt, when=~CANCEL_REQUESTED, reason=retry_reason)
    return job_transition(job, JobStatus.FAILED, attempt=attempt, when=~CANCEL_REQUESTED, reason=failed_reason)


def _announce_finished(job_id: int) -> None:
    """Tell listeners (experiments) a job is over; their failure must not fail the caller."""
    job = Job.objects.filter(pk=job_id).first()
    if job is None:
        return
    for receiver, response in job_finished.send_robust(sender=Job, job=job):
        if isinstance(response, Exception):
            logger.error("job_finished receiver %s failed for job %s: %r", receiver, job_id, response)


def lease_write(job_id: int, attempt: int, **fields) -> None:
    """Write `fields` (and a heartbeat) only while `attempt` still owns the running job."""
    updated = Job.objects.filter(pk=job_id, status=JobStatus.RUNNING, attempts=attempt).update(
        heartbeat_at=timezone.now(), **fields
    )
    if not updated:
        raise LeaseLost(f"job {job_id}: attempt {attempt} no longer owns it")


def job_log(job_id: int, attempt: int, message: str, level: str = JobLogLine.Level.INFO) -> None:
    JobLogLine.objects.create(job_id=job_id, attempt=attempt, level=level, message=message)
