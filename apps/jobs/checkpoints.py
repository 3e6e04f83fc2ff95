"""A job's checkpoints: stored, charged to the team's storage quota, and deleted when no resume can need them.

A checkpoint counts against the team's storage like any other artifact: storing one writes
its bytes to the usage ledger ("checkpoint:<name>"), deleting it writes them back
("checkpoint:<name>:deleted"); the ledger is exactly-once per source, so a deletion retried
after a crash frees nothing twice. Saving a checkpoint is never refused for the quota: the
job was admitted, a checkpoint replaces the previous one within seconds, and failing a
training run for its own resume point would waste every epoch before it.

When a checkpoint goes:
- the next one replaces it (only the last is kept);
- its job succeeded: nothing can resume from it any more, so it goes with that commit;
- its job failed or was cancelled: `job_retry` resumes from it, so it is kept, and the
  periodic cleanup (`checkpoints_expire`) deletes it once the job has been over for
  LEPTON_CHECKPOINT_RETENTION_HOURS; a retry after that starts from the first epoch;
- nothing points at it (a worker died between storing it and recording it): the cleanup
  deletes it once it is older than that retention too.
"""

import uuid
from datetime import timedelta
from pathlib import Path

from django.conf import settings
from django.core.files.storage import default_storage
from django.db import transaction
from django.utils import timezone

from apps.accounts.models import UsageRecord
from apps.accounts.quotas import usage_record
from apps.core.reconnect import retry_on_disconnect
from apps.core.storage import delete_stored, store_file
from apps.jobs.models import Job, JobStatus

FOLDER = "checkpoints"


def checkpoint_name(job: Job, epoch: int) -> str:
    """A new name each time: a checkpoint is never overwritten in place."""
    return f"{FOLDER}/{job.team_id}/{job.pk}/epoch-{epoch:05d}-{uuid.uuid4().hex[:8]}.pt"


def checkpoint_store(job: Job, local: Path, name: str) -> str:
    """Move a written checkpoint into storage and charge its bytes to the team."""
    size = local.stat().st_size
    stored = store_file(local, name)
    _charge(job, size, stored)
    return stored


@retry_on_disconnect  # a running job's write: a database blip must not cost the attempt (once per source)
def _charge(job: Job, size: int, stored: str) -> None:
    usage_record(team=job.team, kind=UsageRecord.Kind.STORAGE_BYTES, amount=size, source=f"checkpoint:{stored}")


def checkpoint_delete(name: str) -> None:
    """Delete a stored checkpoint and give its bytes back to the team (what was charged, once)."""
    if name:
        _release(name)
        delete_stored(name)


@retry_on_disconnect  # outside a transaction only (see apps.core.reconnect); the ledger is once per source
def _release(name: str) -> None:
    charged = UsageRecord.objects.filter(kind=UsageRecord.Kind.STORAGE_BYTES, source=f"checkpoint:{name}").first()
    if charged is not None:
        usage_record(
            team=charged.team,
            kind=UsageRecord.Kind.STORAGE_BYTES,
            amount=-charged.amount,
            source=f"checkpoint:{name}:deleted",
        )


@transaction.atomic
def _forget_checkpoint(job_id: int, **still) -> bool:
    """Unlink the job from its checkpoint, release its bytes, and delete the file once that commits.

    `still` narrows the conditional update (e.g. the job is still failed: a retry that took it
    meanwhile keeps its checkpoint). Returns whether the checkpoint went.
    """
    name = Job.objects.filter(pk=job_id).values_list("checkpoint", flat=True).first()
    if not name or not Job.objects.filter(pk=job_id, checkpoint=name, **still).update(checkpoint=""):
        return False
    _release(name)
    transaction.on_commit(lambda: delete_stored(name))
    return True


def checkpoints_end_with_job(sender, *, job_id: int, succeeded: bool, **kwargs) -> None:
    """`work_ended`: a succeeded job's checkpoint goes; a failed or cancelled one's is kept for a retry."""
    if succeeded:
        _forget_checkpoint(job_id)


def checkpoints_expire(*, older_than: timedelta | None = None) -> int:
    """Delete the checkpoints of jobs over for longer than the retention, and stored ones no job points at."""
    older_than = older_than or timedelta(hours=settings.LEPTON_CHECKPOINT_RETENTION_HOURS)
    cutoff = timezone.now() - older_than
    over = {"status__in": (JobStatus.FAILED, JobStatus.CANCELLED), "finished_at__lt": cutoff}
    ended = Job.objects.filter(**over).exclude(checkpoint="").values_list("pk", flat=True)
    removed = sum(_forget_checkpoint(job_id, **over) for job_id in ended)
    return removed + _delete_unreferenced(cutoff)


def _delete_unreferenced(cutoff) -> int:
    """Checkpoint files older than `cutoff` that no job points at (a worker died between store and record)."""
    referenced = set(Job.objects.exclude(checkpoint="").values_list("checkpoint", flat=True))
    removed = 0
    for name in _stored_checkpoints():
        if name not in referenced and default_storage.get_modified_time(name) < cutoff:
            _release(name)
            delete_stored(name)
            removed += 1
    return removed


def _stored_checkpoints():
    """Every file under checkpoints/<team>/<job>/ in storage."""
    try:
        teams = default_storage.listdir(FOLDER)[0]
    except FileNotFoundError:  # nothing was ever checkpointed
        return
    for team in teams:
        for job in default_storage.listdir(f"{FOLDER}/{team}")[0]:
            for file in default_storage.listdir(f"{FOLDER}/{team}/{job}")[1]:
                yield f"{FOLDER}/{team}/{job}/{file}"
