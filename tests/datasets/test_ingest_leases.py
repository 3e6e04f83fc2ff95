"""No lost work: an ingest whose worker dies is re-dispatched or failed with a reason, never stuck."""

from datetime import timedelta

import pytest
from django.utils import timezone

from apps.core.leases import LeaseLost, lease_claim, lease_write
from apps.datasets import services
from apps.datasets.models import DatasetVersion
from apps.datasets.sources import validate_options
from tests.factories import dataset_with_version

ACTIVE = DatasetVersion.ACTIVE


@pytest.fixture
def queued(world):
    """A bundled version waiting for its first worker (attempt 1 dispatched)."""
    dataset, _ = dataset_with_version(world.acme, bundled="iris", name="iris")
    options = validate_options("bundled", dataset.task, {"name": "iris"})
    return DatasetVersion.objects.create(
        dataset=dataset,
        number=2,
        source_format="bundled",
        source_name="iris",
        source_options=options,
        attempts=1,
        heartbeat_at=timezone.now(),
    )


def _age(version, seconds):
    DatasetVersion.objects.filter(pk=version.pk).update(heartbeat_at=timezone.now() - timedelta(seconds=seconds))


def test_a_task_delivered_twice_runs_once(queued):
    services.version_ingest(queued.pk, 1)
    finished = DatasetVersion.objects.get(pk=queued.pk).finished_at

    services.version_ingest(queued.pk, 1)  # the broker hands it out again

    queued.refresh_from_db()
    assert queued.status == "ready"
    assert queued.finished_at == finished


def test_a_silent_worker_is_replaced_and_its_late_writes_are_dropped(
    queued, settings, django_capture_on_commit_callbacks
):
    assert lease_claim(DatasetVersion, queued.pk, attempt=1, active=ACTIVE)  # worker 1 starts, then goes silent
    _age(queued, settings.LEPTON_WORK_STALE_SECONDS + 1)

    with django_capture_on_commit_callbacks() as queued_tasks:
        assert services.versions_reap_stale() == 1
    queued.refresh_from_db()
    assert (queued.attempts, queued.claimed_at) == (2, None)
    assert [c.__name__ for c in queued_tasks] == ["<lambda>"]  # attempt 2 is queued

    with pytest.raises(LeaseLost):
        lease_write(DatasetVersion, queued.pk, attempt=1, active=ACTIVE, progress=0.9)  # worker 1 wakes up
    services.version_ingest(queued.pk, 1)  # worker 1's task re-delivered: refused
    assert DatasetVersion.objects.get(pk=queued.pk).status == "processing"

    services.version_ingest(queued.pk, 2)
    queued.refresh_from_db()
    assert (queued.status, queued.attempts) == ("ready", 2)


def test_work_waiting_behind_busy_workers_is_never_failed(queued, settings):
    _age(queued, settings.LEPTON_WORK_STALE_SECONDS + 1)  # dispatched long ago, never claimed

    assert services.versions_reap_stale() == 0

    queued.refresh_from_db()
    assert (queued.status, queued.attempts) == ("processing", 1)


def test_a_task_the_broker_lost_is_queued_again_as_the_same_attempt(
    queued, settings, django_capture_on_commit_callbacks
):
    _age(queued, settings.LEPTON_DISPATCH_TIMEOUT_SECONDS + 1)

    with django_capture_on_commit_callbacks() as queued_tasks:
        assert services.versions_reap_stale() == 1

    queued.refresh_from_db()
    assert (queued.status, queued.attempts) == ("processing", 1)
    assert len(queued_tasks) == 1
    services.version_ingest(queued.pk, 1)  # whichever copy of the task runs first wins
    services.version_ingest(queued.pk, 1)
    assert DatasetVersion.objects.get(pk=queued.pk).status == "ready"


def test_after_the_last_attempt_the_version_fails_with_the_reason(queued, settings):
    DatasetVersion.objects.filter(pk=queued.pk).update(
        attempts=settings.LEPTON_WORK_MAX_ATTEMPTS, claimed_at=timezone.now()
    )  # its worker took it, then died
    _age(queued, settings.LEPTON_WORK_STALE_SECONDS + 1)

    services.versions_reap_stale()

    queued.refresh_from_db()
    assert queued.status == "failed"
    assert queued.error == "stopped: no worker finished it after 3 attempt(s)"


def test_a_fresh_heartbeat_is_left_alone(queued):
    assert lease_claim(DatasetVersion, queued.pk, attempt=1, active=ACTIVE)

    assert services.versions_reap_stale() == 0


def test_a_crash_inside_ingest_fails_the_version_and_leaves_no_file(queued, settings, monkeypatch):
    def explode(*args, **kwargs):
        raise RuntimeError("disk on fire")

    monkeypatch.setattr(services, "build_version_file", explode)
    before = sorted(p for p in settings.MEDIA_ROOT.rglob("*") if p.is_file())

    services.version_ingest(queued.pk, 1)

    queued.refresh_from_db()
    assert queued.status == "failed"
    assert queued.error == "internal error (RuntimeError); see the server log"
    assert sorted(p for p in settings.MEDIA_ROOT.rglob("*") if p.is_file()) == before


def test_finished_versions_are_never_written_again(queued):
    services.version_ingest(queued.pk, 1)

    with pytest.raises(LeaseLost):
        lease_write(DatasetVersion, queued.pk, attempt=1, active=ACTIVE, error="rewritten")
