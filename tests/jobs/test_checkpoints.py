"""A job's checkpoints: charged to the team's storage, deleted when the job succeeds, kept for a retry
until the retention passes, and removed when nothing points at them. Real train jobs on iris."""

import os
from datetime import timedelta

import pytest
import torch
from django.db.models import Sum
from django.utils import timezone

from apps.accounts.models import UsageRecord
from apps.accounts.quotas import team_usage
from apps.core.cleanup import cleanup_run
from apps.jobs import runner
from apps.jobs.kinds import JobFailed
from apps.jobs.models import Job, JobLogLine
from apps.jobs.services import job_cancel, job_retry, job_submit
from apps.registry.models import Model
from tests.factories import dataset_with_version


@pytest.fixture(autouse=True)
def _no_heartbeat_thread(settings):
    settings.LEPTON_HEARTBEAT_THREAD = False  # the job lives in this test's transaction


@pytest.fixture
def iris(world):
    return dataset_with_version(world.acme, bundled="iris", name="iris")[1]


@pytest.fixture
def iris_model(world, iris):
    return Model.objects.create(
        team=world.acme,
        name="iris-mlp",
        task="tabular_classification",
        architecture={"family": "mlp", "hidden_sizes": [16], "dropout": 0.0},
        dataset=iris.dataset,
        created_by=world.bob,
    )


@pytest.fixture
def fails_after_epoch(monkeypatch):
    """fails_after_epoch(n): the next train job stores its epoch-n checkpoint, then fails (once)."""
    original = runner.JobContext.save_checkpoint

    def arm(epoch_to_fail: int):
        failed = []

        def save_then_fail(self, state, epoch):
            original(self, state, epoch)
            if epoch == epoch_to_fail and not failed:
                failed.append(epoch)
                raise JobFailed(f"stopped after epoch {epoch} (test)")

        monkeypatch.setattr(runner.JobContext, "save_checkpoint", save_then_fail)

    return arm


def _train(world, iris_model, iris, epochs=4):
    return job_submit(
        actor=world.bob,
        team=world.acme,
        kind="train",
        spec={"model": iris_model.pk, "dataset": iris.dataset_id, "epochs": epochs, "seed": 1, "batch_size": 16},
    )


def _checkpoint_files(settings) -> list:
    return sorted((settings.MEDIA_ROOT / "checkpoints").rglob("*.pt"))


def _checkpoint_bytes_charged(team) -> int:
    rows = UsageRecord.objects.filter(team=team, kind="storage_bytes", source__startswith="checkpoint:")
    return rows.aggregate(total=Sum("amount"))["total"] or 0


def _stored_bytes_of_versions(team) -> int:
    return sum(m.bytes for m in Model.objects.get(team=team).versions.all()) + sum(
        v.bytes for d in team.datasets.all() for v in d.versions.all()
    )


def test_a_succeeded_jobs_checkpoint_is_deleted_and_its_storage_released(world, iris_model, iris, run_tasks, settings):
    with run_tasks():
        job = _train(world, iris_model, iris)

    job.refresh_from_db()
    assert job.status == "succeeded", job.status_reason
    assert (job.checkpoint, job.checkpoint_epoch) == ("", 4)
    assert _checkpoint_files(settings) == []
    charged = UsageRecord.objects.filter(source__startswith="checkpoint:", amount__gt=0)
    assert charged.count() == 4  # each epoch's checkpoint was charged while it existed...
    assert _checkpoint_bytes_charged(world.acme) == 0  # ...and given back when it went
    assert team_usage(world.acme).storage_bytes == _stored_bytes_of_versions(world.acme)
    assert _checkpoint_bytes_charged(world.globex) == 0


def test_a_failed_jobs_checkpoint_counts_against_storage_and_a_retry_resumes_from_it(
    world, iris_model, iris, run_tasks, settings, fails_after_epoch
):
    fails_after_epoch(2)
    with run_tasks():
        job = _train(world, iris_model, iris)
    job.refresh_from_db()

    assert job.status == "failed"
    [kept] = _checkpoint_files(settings)
    assert job.checkpoint_epoch == 2
    assert kept.name.startswith("epoch-00002")
    assert _checkpoint_bytes_charged(world.acme) == kept.stat().st_size
    assert team_usage(world.acme).storage_bytes == _stored_bytes_of_versions(world.acme) + kept.stat().st_size

    with run_tasks():
        job_retry(actor=world.bob, job=job)
    job.refresh_from_db()

    assert job.status == "succeeded", job.status_reason
    assert JobLogLine.objects.filter(job=job, message__startswith="resuming from checkpoint").exists()
    assert _checkpoint_files(settings) == []
    assert _checkpoint_bytes_charged(world.acme) == 0


def test_a_cancelled_jobs_checkpoint_is_kept_for_a_retry(world, iris_model, iris, run_tasks, settings, monkeypatch):
    original = runner.JobContext.save_checkpoint

    def cancel_after_epoch_1(self, state, epoch):
        original(self, state, epoch)
        if epoch == 1:
            job_cancel(actor=world.bob, job=Job.objects.get(pk=self.job.pk))

    monkeypatch.setattr(runner.JobContext, "save_checkpoint", cancel_after_epoch_1)
    settings.LEPTON_PROGRESS_INTERVAL = 0.0  # the runner notices the cancel at its next step
    with run_tasks():
        job = _train(world, iris_model, iris)
    job.refresh_from_db()

    assert job.status == "cancelled"
    assert job.checkpoint
    assert len(_checkpoint_files(settings)) == 1
    assert torch.load(settings.MEDIA_ROOT / job.checkpoint, weights_only=True)["epoch"] == 1


def test_cleanup_deletes_a_failed_jobs_checkpoint_once_the_retention_has_passed(
    world, iris_model, iris, run_tasks, settings, fails_after_epoch, django_capture_on_commit_callbacks
):
    fails_after_epoch(1)
    with run_tasks():
        job = _train(world, iris_model, iris, epochs=2)
    job.refresh_from_db()
    assert job.status == "failed"
    assert len(_checkpoint_files(settings)) == 1

    assert cleanup_run()["job checkpoints"] == 0  # just failed: a retry may still resume from it
    Job.objects.filter(pk=job.pk).update(
        finished_at=timezone.now() - timedelta(hours=settings.LEPTON_CHECKPOINT_RETENTION_HOURS, minutes=1)
    )
    with django_capture_on_commit_callbacks(execute=True):  # the file goes once the release commits
        assert cleanup_run()["job checkpoints"] == 1

    job.refresh_from_db()
    assert (job.checkpoint, _checkpoint_files(settings), _checkpoint_bytes_charged(world.acme)) == ("", [], 0)
    with run_tasks():
        job_retry(actor=world.bob, job=job)
    job.refresh_from_db()
    assert job.status == "succeeded", job.status_reason
    assert not JobLogLine.objects.filter(job=job, message__startswith="resuming from checkpoint").exists()


def test_cleanup_deletes_an_old_checkpoint_file_that_no_job_points_at(world, settings):
    long_ago = timezone.now() - timedelta(hours=settings.LEPTON_CHECKPOINT_RETENTION_HOURS + 1)
    folder = settings.MEDIA_ROOT / "checkpoints" / str(world.acme.pk) / "999"
    folder.mkdir(parents=True)
    orphan, fresh = folder / "epoch-00001-dead.pt", folder / "epoch-00002-busy.pt"
    orphan.write_bytes(b"left by a worker killed before it recorded it")
    fresh.write_bytes(b"being recorded right now")
    os.utime(orphan, (long_ago.timestamp(), long_ago.timestamp()))
    UsageRecord.objects.create(
        team=world.acme,
        kind="storage_bytes",
        amount=orphan.stat().st_size,
        source=f"checkpoint:{orphan.relative_to(settings.MEDIA_ROOT)}",
    )

    assert cleanup_run()["job checkpoints"] == 1

    assert (orphan.exists(), fresh.exists()) == (False, True)
    assert _checkpoint_bytes_charged(world.acme) == 0
