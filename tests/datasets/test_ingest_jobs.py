"""An ingest is a job like any other: placed, logged, fenced by its lease, retried, and never stuck."""

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.utils import timezone

from apps.datasets import services
from apps.datasets.models import Dataset, DatasetVersion
from apps.jobs import runner
from apps.jobs.models import Job, JobLogLine
from apps.jobs.services import job_cancel, job_retry, job_submit, jobs_reap_stale
from apps.jobs.transitions import LeaseLost, lease_write
from apps.nodes.models import Node
from tests.datasets.builders import iris_like_rows, write_csv


@pytest.fixture(autouse=True)
def _inline_jobs(settings):
    settings.LEPTON_HEARTBEAT_THREAD = False  # jobs run inside the test's transaction


@pytest.fixture
def node(cpu_node):
    return cpu_node


@pytest.fixture
def flowers(world):
    return Dataset.objects.create(team=world.acme, name="flowers", task="tabular_classification", created_by=world.bob)


def _bundled(world, dataset, name="iris"):
    return services.version_bundled(actor=world.bob, dataset=dataset, name=name)


def _csv_upload(world, dataset, tmp_path, rows):
    path = write_csv(tmp_path / "flowers.csv", ["a", "b", "c", "species"], rows)
    upload = SimpleUploadedFile("flowers.csv", path.read_bytes())
    return services.version_upload(
        actor=world.bob, dataset=dataset, uploaded_file=upload, source_format=None, options={}
    )


def _files(settings):
    root = settings.MEDIA_ROOT
    return sorted(str(p.relative_to(root)) for p in root.rglob("*") if p.is_file()) if root.exists() else []


def test_a_new_version_is_ingested_by_a_job_with_a_node_a_log_and_a_duration(world, flowers, node, run_tasks):
    with run_tasks():
        version = _bundled(world, flowers)

    version.refresh_from_db()
    job = Job.objects.get(pk=version.produced_by_job)
    assert (version.status, version.sample_count) == ("ready", 150)
    assert (job.kind, job.status, job.node, job.attempts) == ("ingest", "succeeded", node, 1)
    assert job.summary == "flowers v1"
    assert job.duration_seconds > 0
    log = list(JobLogLine.objects.filter(job=job).values_list("message", flat=True))
    assert any("ingesting flowers v1 from Bundled 'iris'" in line for line in log)
    assert any("150 samples of shape [4]" in line for line in log)


def test_an_ingest_waits_for_a_node_like_any_job(world, flowers, run_tasks):
    Node.objects.all().delete()
    with run_tasks():
        version = _bundled(world, flowers)

    job = Job.objects.get(pk=version.produced_by_job)
    assert (version.status, job.status, job.status_reason) == ("processing", "queued", "waiting: no node is online")


def test_an_ingest_cannot_be_submitted_on_its_own(world, flowers, node):
    from apps.core.errors import ApplicationError

    with pytest.raises(ApplicationError, match=r"kind: ingest jobs start when you add a dataset version"):
        job_submit(actor=world.bob, team=world.acme, kind="ingest", spec={"dataset": flowers.pk, "version": 1})


def test_bad_input_fails_the_job_at_once_and_the_version_says_why(world, flowers, node, run_tasks, tmp_path, settings):
    rows = iris_like_rows(5)
    rows[3][1] = "abc"
    with run_tasks():
        version = _csv_upload(world, flowers, tmp_path, rows)

    version.refresh_from_db()
    job = Job.objects.get(pk=version.produced_by_job)
    assert (job.status, job.attempts) == ("failed", 1)  # another attempt would not fix the file
    assert version.status == "failed"
    assert version.error == job.status_reason
    assert "column 'b'" in version.error
    assert "'abc' is not a number" in version.error
    assert version.upload == ""
    assert _files(settings) == []
    assert JobLogLine.objects.filter(job=job, level="error").exists()


def test_a_crash_is_retried_and_after_the_last_attempt_the_version_fails_leaving_no_file(
    world, flowers, node, run_tasks, monkeypatch, settings
):
    def explode(*args, **kwargs):
        raise RuntimeError("disk on fire")

    monkeypatch.setattr(services, "build_version_file", explode)
    with run_tasks():
        version = _bundled(world, flowers)

    version.refresh_from_db()
    job = Job.objects.get(pk=version.produced_by_job)
    assert (job.status, job.attempts) == ("failed", 3)
    assert version.status == "failed"
    assert version.error == "crashed in each of 3 attempt(s); last: RuntimeError: disk on fire"
    assert _files(settings) == []


def test_a_task_delivered_twice_runs_once(world, flowers, node, run_tasks):
    with run_tasks():
        version = _bundled(world, flowers)
    version.refresh_from_db()
    job = Job.objects.get(pk=version.produced_by_job)

    runner.run_job(job.pk, 1)  # the broker hands attempt 1 out again

    assert DatasetVersion.objects.get(pk=version.pk).finished_at == version.finished_at
    assert Job.objects.get(pk=job.pk).attempts == 1


def test_a_stale_attempt_stores_nothing(world, flowers, node, settings):
    version = _bundled(world, flowers)
    job = Job.objects.get(pk=version.produced_by_job)
    Job.objects.filter(pk=job.pk).update(status="running", attempts=2)  # attempt 1 was reaped; 2 owns the job

    with pytest.raises(LeaseLost):
        services.version_ingest(version, fence=lambda: lease_write(job.pk, 1))

    assert DatasetVersion.objects.get(pk=version.pk).status == "processing"
    assert _files(settings) == []


def test_a_silent_ingest_is_requeued_by_the_jobs_reaper_and_lands_on_the_next_attempt(
    world, flowers, node, run_tasks, settings
):
    version = _bundled(world, flowers)
    silent = timezone.now() - timezone.timedelta(seconds=settings.LEPTON_JOB_STALE_SECONDS + 1)
    Job.objects.filter(pk=version.produced_by_job).update(
        status="running", attempts=1, node=node, claimed_at=silent, heartbeat_at=silent
    )

    with run_tasks():
        assert jobs_reap_stale() == 1

    version.refresh_from_db()
    job = Job.objects.get(pk=version.produced_by_job)
    assert (version.status, job.status, job.attempts) == ("ready", "succeeded", 2)


def test_cancelling_a_queued_ingest_fails_the_version_with_the_reason(world, flowers):
    version = _bundled(world, flowers)

    job_cancel(actor=world.bob, job=Job.objects.get(pk=version.produced_by_job))

    version.refresh_from_db()
    assert (version.status, version.error) == ("failed", "cancelled by bob before it ran")


def test_a_failed_bundled_ingest_can_be_retried_but_an_upload_whose_file_is_gone_cannot(
    world, flowers, node, run_tasks, tmp_path
):
    from apps.core.errors import Conflict

    bundled = _bundled(world, flowers)
    job_cancel(actor=world.bob, job=Job.objects.get(pk=bundled.produced_by_job))
    with run_tasks():
        job_retry(actor=world.bob, job=Job.objects.get(pk=bundled.produced_by_job))
    bundled.refresh_from_db()
    assert (bundled.status, bundled.error) == ("ready", "")

    uploaded = _csv_upload(world, flowers, tmp_path, iris_like_rows(5))
    job = Job.objects.get(pk=uploaded.produced_by_job)
    job_cancel(actor=world.bob, job=job)
    with pytest.raises(Conflict, match="its upload was deleted when the ingest failed; upload the file again"):
        job_retry(actor=world.bob, job=job)
    assert Job.objects.get(pk=job.pk).status == "cancelled"
