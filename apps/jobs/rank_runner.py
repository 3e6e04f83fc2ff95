"""What a worker does with rank 1.. of a multi-node job's attempt (rank 0 is the job's own attempt: apps.jobs.runner).

claim the rank row (conditional on the job still being at that attempt) -> heartbeat it in a
background thread, which notices when the attempt is gone (requeued after another rank's
loss, cancelled, finished) -> run the kind's `run_rank` -> done. A rank writes no status,
result, metrics or checkpoint: rank 0 decides for the gang. A rank that fails logs why and
leaves the process group, which makes rank 0 crash and requeue the whole job; a rank that
finds its attempt gone stops at its next step.
"""

import logging
import time
import traceback

from django.conf import settings
from django.db.models import F
from django.utils import timezone

from apps.core.reconnect import retry_on_disconnect
from apps.jobs.kinds import kind_handler
from apps.jobs.models import Job, JobLogLine, JobRank, JobStatus
from apps.jobs.runner import Heartbeat, log_line
from apps.jobs.training.distributed import rank_device
from apps.jobs.transitions import HOLDING, LeaseLost

logger = logging.getLogger(__name__)


@retry_on_disconnect
def rank_write(job_id: int, attempt: int, rank: int, **fields) -> None:
    """A rank's heartbeat (and `fields`), only while the job is still at `attempt` and holding its nodes."""
    mine = JobRank.objects.filter(job_id=job_id, rank=rank, attempt=attempt)
    alive = Job.objects.filter(pk=job_id, attempts=attempt, status__in=HOLDING, cancel_requested_at__isnull=True)
    if not alive.exists() or not mine.update(heartbeat_at=timezone.now(), **fields):
        raise LeaseLost(f"job {job_id}: attempt {attempt} rank {rank} is no longer current")


class RankHeartbeat(Heartbeat):
    """Keeps the rank row fresh; sets `lease_lost` once the attempt is gone (or its cancel was requested)."""

    def __init__(self, job_id: int, attempt: int, rank: int, interval: float):
        super().__init__(job_id, attempt, interval)
        self.rank = rank

    def beat(self) -> None:
        try:
            rank_write(self.job_id, self.attempt, self.rank)
        except LeaseLost:
            self.lease_lost.set()


class RankContext:
    """What a kind's `run_rank` gets: the job, its node's rank and device, and the attempt's liveness."""

    def __init__(self, job: Job, row: JobRank, heartbeat: RankHeartbeat | None):
        self.job, self.attempt, self.rank, self._heartbeat = job, row.attempt, row.rank, heartbeat
        self.gpu_indexes, self.node_name = row.gpu_indexes, row.node.name
        self.device = rank_device(job.gpus, row.gpu_indexes, 0)

    def check_lost(self) -> None:
        """Between steps: raises LeaseLost once the attempt is gone (another rank was lost, a cancel, the end)."""
        if self._heartbeat is not None and self._heartbeat.lease_lost.is_set():
            raise LeaseLost(f"job {self.job.pk} attempt {self.attempt} rank {self.rank}")

    def rendezvous(self) -> tuple[str, int]:
        """Rank 0's address and port for this attempt, once it has written them (waits LEPTON_RENDEZVOUS_SECONDS)."""
        deadline = time.monotonic() + settings.LEPTON_RENDEZVOUS_SECONDS
        while time.monotonic() < deadline:
            self.check_lost()
            row = _rendezvous(self.job.pk, self.attempt)
            if row is None:
                raise LeaseLost(f"job {self.job.pk}: attempt {self.attempt} is over")
            if row[1]:
                return row
            time.sleep(0.2)
        raise TimeoutError(f"rank 0 gave no rendezvous within {settings.LEPTON_RENDEZVOUS_SECONDS} s")

    def log(self, message: str, level: str = JobLogLine.Level.INFO) -> None:
        log_line(self.job.pk, self.attempt, message, level)


@retry_on_disconnect
def _rendezvous(job_id: int, attempt: int) -> tuple[str, int | None] | None:
    rows = Job.objects.filter(pk=job_id, attempts=attempt, status__in=HOLDING)
    return rows.values_list("rendezvous_address", "rendezvous_port").first()


@retry_on_disconnect
def _claim(job_id: int, attempt: int, rank: int) -> JobRank | None:
    now = timezone.now()
    claimed = JobRank.objects.filter(
        job_id=job_id,
        rank=rank,
        attempt=attempt,
        attempt__exact=F("job__attempts"),
        claimed_at__isnull=True,
        job__status__in=(JobStatus.SCHEDULED, JobStatus.RUNNING),
    ).update(claimed_at=now, heartbeat_at=now)
    return JobRank.objects.select_related("job", "node").get(job_id=job_id, rank=rank) if claimed else None


def run_job_rank(job_id: int, attempt: int, rank: int) -> None:
    """The worker's entry point for rank `rank` (1..) of one attempt of a multi-node job."""
    row = _claim(job_id, attempt, rank)
    if row is None:
        logger.info("job %s attempt %s rank %s: not ours to run", job_id, attempt, rank)
        return
    heartbeat = None
    if settings.LEPTON_HEARTBEAT_THREAD:
        heartbeat = RankHeartbeat(job_id, attempt, rank, settings.LEPTON_HEARTBEAT_SECONDS)
        heartbeat.start()
    context = RankContext(row.job, row, heartbeat)
    try:
        context.log(f"rank {rank} of attempt {attempt} started on node {context.node_name}")
        kind_handler(row.job.kind).run_rank(context)
        context.log(f"rank {rank} finished")
    except LeaseLost:
        logger.warning("job %s attempt %s rank %s: the attempt is over; stopping", job_id, attempt, rank)
    except Exception as error:  # rank 0 sees this rank leave the process group and requeues the gang
        summary = f"{type(error).__name__}: {error}"
        logger.warning("job %s attempt %s rank %s stopped: %s", job_id, attempt, rank, summary)
        context.log(f"rank {rank} stopped: {summary}\n{traceback.format_exc()}"[:5000], JobLogLine.Level.WARNING)
    finally:
        if heartbeat is not None:
            heartbeat.stop()
