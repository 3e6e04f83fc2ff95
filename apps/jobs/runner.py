"""The runner: what a worker does with one attempt of a job.

claim the attempt (scheduled -> running, conditional on the attempt number) -> heartbeat in
a background thread (which also notices cancel requests) -> run the kind -> finish:
succeeded, cancelled, failed with the reason, or back to queued for another attempt when it
crashed and attempts remain. Every write goes through the attempt's lease, so a stale
worker's late writes are refused. A database blip (a lost connection) costs no attempt: each
of the runner's writes reconnects and tries again within the lease (apps.core.reconnect).
"""

import contextlib
import logging
import threading
import time
import traceback
import warnings
from collections.abc import Callable

import torch
from django.conf import settings
from django.db import DatabaseError, connections
from django.db.models import F, Value
from django.db.models.functions import Coalesce
from django.utils import timezone

from apps.accounts.models import UsageRecord
from apps.accounts.quotas import usage_record
from apps.core.errors import ApplicationError
from apps.core.reconnect import TRANSIENT, retry_on_disconnect
from apps.core.storage import local_path, scratch_path
from apps.jobs.checkpoints import checkpoint_delete, checkpoint_name, checkpoint_store
from apps.jobs.kinds import JobFailed, kind_handler
from apps.jobs.models import Job, JobEpoch, JobLogLine, JobStatus
from apps.jobs.scheduler import jobs_request_pass
from apps.jobs.transitions import (
    IllegalTransition,
    LeaseLost,
    job_log,
    job_requeue_or_end,
    job_transition,
    lease_write,
)
from apps.registry.measure import describe_device

logger = logging.getLogger(__name__)

# The runner's writes, each one reconnecting and retrying after a database blip (they are fenced
# by the attempt, so a repeat is harmless: at worst a transition finds the job already moved on).
transition = retry_on_disconnect(job_transition)
requeue_or_end = retry_on_disconnect(job_requeue_or_end)
log_line = retry_on_disconnect(job_log)
write_leased = retry_on_disconnect(lease_write)
request_pass = retry_on_disconnect(jobs_request_pass)
record_usage = retry_on_disconnect(usage_record)


@retry_on_disconnect
def cancel_requested(job_id: int) -> bool:
    return Job.objects.filter(pk=job_id, cancel_requested_at__isnull=False).exists()


@retry_on_disconnect
def stored_checkpoint(job_id: int) -> str:
    return Job.objects.filter(pk=job_id).values_list("checkpoint", flat=True).first() or ""


class JobCancelled(Exception):
    """Raised inside a kind when the job was cancelled; the runner marks it cancelled."""


class JobTimedOut(Exception):
    """The job ran past its time limit; it is stopped and failed."""


class ProgressReporter:
    """Writes progress at most every `interval` seconds (and always at 100%)."""

    def __init__(self, write: Callable[[float, str], None], *, interval: float = 1.0):
        self._write = write
        self._interval = interval
        self._last = 0.0

    def __call__(self, fraction: float, message: str = "") -> None:
        now = time.monotonic()
        if fraction < 1.0 and now - self._last < self._interval:
            return
        self._last = now
        self._write(max(0.0, min(1.0, fraction)), message)


class Heartbeat(threading.Thread):
    """A safety net for long steps: keeps the lease fresh and watches for cancel requests.

    The main thread already does both whenever it reports progress (at most once a second);
    this thread covers steps that report nothing for a long time. It is off in tests that run
    jobs inside a test transaction, where another connection cannot see the job.
    """

    def __init__(self, job_id: int, attempt: int, interval: float):
        super().__init__(name=f"job-{job_id}-heartbeat", daemon=True)
        self.job_id, self.attempt, self.interval = job_id, attempt, interval
        self.cancel_requested = threading.Event()
        self.lease_lost = threading.Event()
        self._stop_event = threading.Event()

    def run(self):
        try:
            while not self._stop_event.wait(self.interval):
                try:
                    self.beat()
                except TRANSIENT as error:  # down for a whole lease: the reaper decides; keep beating
                    logger.error("job %s heartbeat: the database is unreachable: %s", self.job_id, error)
        finally:
            connections.close_all()  # this thread's own connection

    @retry_on_disconnect
    def beat(self) -> None:
        try:
            lease_write(self.job_id, self.attempt)
        except LeaseLost:
            self.lease_lost.set()
            return
        if Job.objects.filter(pk=self.job_id, cancel_requested_at__isnull=False).exists():
            self.cancel_requested.set()

    def stop(self) -> None:
        self._stop_event.set()
        self.join(timeout=10)


def job_device(job: Job) -> torch.device:
    """The GPU the scheduler gave the job when the machine has CUDA; the CPU otherwise (and for gpus=0)."""
    if job.gpus > 0 and torch.cuda.is_available():
        index = job.gpu_indexes[0] if job.gpu_indexes else 0
        return torch.device(f"cuda:{index}")
    return torch.device("cpu")


class JobContext:
    """What a kind's `run` gets: the job, its device, and ways to report, log, check and checkpoint."""

    def __init__(self, job: Job, attempt: int, heartbeat: Heartbeat | None):
        self.job, self.attempt, self._heartbeat = job, attempt, heartbeat
        self._cancelled = False
        self.resumed_from = ""  # the checkpoint this attempt resumed from (load_checkpoint)
        self._warnings: list[str] = []  # noted by the warnings hook, written at the next safe point
        self.device = job_device(job)
        self._started, self._start_fraction = time.monotonic(), job.progress
        self._report = ProgressReporter(self._write_progress, interval=settings.LEPTON_PROGRESS_INTERVAL)

    def write(self, **fields) -> None:
        """Write to the job while this attempt owns it (raises LeaseLost otherwise)."""
        write_leased(self.job.pk, self.attempt, **fields)  # inside a caller's transaction: never retried

    def fence(self) -> None:
        """Inside a transaction that stores results: raises LeaseLost unless this attempt still owns the job.

        On PostgreSQL the update also locks the job's row until that transaction ends, so the
        reaper cannot hand the job to another attempt between this check and the commit.
        """
        self.write()

    def log(self, message: str, level: str = JobLogLine.Level.INFO) -> None:
        self.flush_warnings()
        log_line(self.job.pk, self.attempt, message, level)

    def note_warning(self, message: str) -> None:
        """What the warnings hook calls. A warning can be raised anywhere, even inside the database
        driver while it runs a query on this very connection: a query from here would wait on
        that query forever. So it is only noted, and written by the next log or progress report."""
        self._warnings.append(message)

    def flush_warnings(self) -> None:
        pending, self._warnings = self._warnings, []
        for message in pending:
            log_line(self.job.pk, self.attempt, message, JobLogLine.Level.WARNING)

    def check_cancelled(self) -> None:
        """Call between steps: raises when the job was cancelled or this attempt lost its lease."""
        beat = self._heartbeat
        if beat is not None and beat.lease_lost.is_set():
            raise LeaseLost(f"job {self.job.pk} attempt {self.attempt}")
        if self._cancelled or (beat is not None and beat.cancel_requested.is_set()):
            raise JobCancelled()
        limit, started = self.job.time_limit_seconds, self.job.started_at
        if limit and started and (timezone.now() - started).total_seconds() > limit:
            raise JobTimedOut()

    def progress(self, fraction: float, step: str = "") -> None:
        """Report progress (written at most every LEPTON_PROGRESS_INTERVAL seconds) and check cancellation."""
        self.check_cancelled()
        if self._warnings:
            self.flush_warnings()
        self._report(fraction, step)

    def _write_progress(self, fraction: float, step: str) -> None:
        done = fraction - self._start_fraction
        elapsed = time.monotonic() - self._started
        eta = elapsed / done * (1 - fraction) if done > 0 else None
        self.write(progress=fraction, progress_step=step[:200], eta_seconds=eta)
        self._cancelled = cancel_requested(self.job.pk)

    @retry_on_disconnect
    def record_epoch(self, epoch: int, **figures) -> None:
        lease_write(self.job.pk, self.attempt)  # the lease first: a stale attempt writes no figures
        JobEpoch.objects.update_or_create(
            job_id=self.job.pk, epoch=epoch, defaults={"attempt": self.attempt, **figures}
        )

    def save_checkpoint(self, state: dict, epoch: int) -> None:
        """Write atomically: a new file under a new name, then the job points at it, then the old goes."""
        name = checkpoint_name(self.job, epoch)
        with scratch_path(".pt") as local:
            torch.save(state, local)
            checkpoint_store(self.job, local, name)  # charged to the team's storage (apps.jobs.checkpoints)
        previous = stored_checkpoint(self.job.pk)
        try:
            self.write(checkpoint=name, checkpoint_epoch=epoch)
        except LeaseLost:
            checkpoint_delete(name)
            raise
        checkpoint_delete(previous)

    def load_checkpoint(self) -> dict | None:
        name = stored_checkpoint(self.job.pk)
        if not name:
            return None
        self.log(f"resuming from checkpoint {name.rsplit('/', 1)[-1]}")
        self.resumed_from = name
        return torch.load(local_path(name), map_location="cpu", weights_only=True)


def run_job(job_id: int, attempt: int) -> None:
    """The worker's entry point for one attempt of one job (django-q2 refreshes stale connections)."""
    job = Job.objects.filter(pk=job_id).first()
    if job is None:
        return
    now = timezone.now()
    try:
        job = transition(
            job,
            JobStatus.RUNNING,
            attempt=attempt,
            reason=f"running (attempt {attempt})",
            claimed_at=now,
            heartbeat_at=now,
            started_at=Coalesce(F("started_at"), Value(now)),
        )
    except IllegalTransition:
        logger.info("job %s attempt %s: not ours to run (%s)", job_id, attempt, job.status)
        return
    heartbeat = (
        Heartbeat(job.pk, attempt, settings.LEPTON_HEARTBEAT_SECONDS) if settings.LEPTON_HEARTBEAT_THREAD else None
    )
    if heartbeat is not None:
        heartbeat.start()
    started = time.monotonic()
    try:
        _run_attempt(job, attempt, heartbeat)
    finally:
        if heartbeat is not None:
            heartbeat.stop()
        _record_gpu_time(job, attempt, time.monotonic() - started)
        request_pass()  # its slot and GPUs are free: place what waits for them


def _run_attempt(job: Job, attempt: int, heartbeat: Heartbeat | None) -> None:
    context = JobContext(job, attempt, heartbeat)
    where = f" on node {job.node.name}" if job.node_id else ""
    context.write(device=describe_device(context.device))
    context.log(f"attempt {attempt} of {job.max_attempts} started{where} ({describe_device(context.device)})")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("default")
            warnings.showwarning = lambda message, category, *rest, **kw: context.note_warning(
                f"{category.__name__}: {message}"
            )
            try:
                result = kind_handler(job.kind).run(context) or {}
            finally:
                with contextlib.suppress(DatabaseError):  # never hide why the run ended
                    context.flush_warnings()
        transition(
            job, JobStatus.SUCCEEDED, attempt=attempt, result=result, progress=1.0, eta_seconds=0, progress_step="done"
        )
        context.log("succeeded")
    except JobCancelled:
        _finish(job, attempt, JobStatus.CANCELLED, "cancelled while running")
        context.log("cancelled", JobLogLine.Level.WARNING)
    except JobTimedOut:
        _finish(job, attempt, JobStatus.FAILED, f"stopped: over its time limit of {job.time_limit_seconds} s")
        context.log("stopped: over its time limit", JobLogLine.Level.ERROR)
    except LeaseLost:
        logger.warning("job %s attempt %s lost its lease; a newer attempt owns the job", job.pk, attempt)
    except IllegalTransition:  # lost a race (cancelled, reaped or finished elsewhere): not this job's error
        logger.info("job %s attempt %s: the job moved on before this attempt could finish it", job.pk, attempt)
    except (JobFailed, ApplicationError) as error:
        context.log(error.message, JobLogLine.Level.ERROR)
        _finish(job, attempt, JobStatus.FAILED, error.message)
    except Exception as error:
        _crashed(job, attempt, context, error)


def _crashed(job: Job, attempt: int, context: JobContext, error: Exception) -> None:
    """An unexpected error: try again (resuming from the checkpoint) while attempts remain."""
    summary = f"{type(error).__name__}: {error}"
    context.log(f"attempt {attempt} crashed: {summary}\n{traceback.format_exc()}", JobLogLine.Level.ERROR)
    try:
        requeue_or_end(
            job,
            attempt=attempt,
            retry_reason=f"attempt {attempt} crashed ({summary}); retrying from the last checkpoint"[:2000],
            failed_reason=f"crashed in each of {attempt} attempt(s); last: {summary}"[:2000],
        )
    except IllegalTransition:
        logger.info("job %s: already moved on; not requeueing it", job.pk)


def _finish(job: Job, attempt: int, status: str, reason: str) -> None:
    try:
        transition(job, status, attempt=attempt, reason=reason[:2000])
    except IllegalTransition:
        logger.info("job %s: already moved on; not marking %s", job.pk, status)


def _record_gpu_time(job: Job, attempt: int, seconds: float) -> None:
    """GPU-seconds of this attempt into the usage ledger, exactly once per attempt.

    A multi-node job's rank 0 records the whole gang's: its attempt spans every rank's.
    """
    if job.gpus:
        record_usage(
            team=job.team,
            kind=UsageRecord.Kind.GPU_SECONDS,
            amount=round(job.gpus * job.nodes * seconds),
            source=f"job:{job.pk}:attempt:{attempt}",
        )
