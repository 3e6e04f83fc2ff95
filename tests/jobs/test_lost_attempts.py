"""Attempts that end without finishing their job: a cancel requested meanwhile wins; a task never sent is sent."""

import pytest
from django.utils import timezone

from apps.jobs import scheduler, services
from apps.jobs.kinds import KINDS, register_kind
from apps.jobs.models import Job
from apps.jobs.services import job_cancel, job_submit


@pytest.fixture(autouse=True)
def _no_heartbeat_thread(settings):
    settings.LEPTON_HEARTBEAT_THREAD = False  # jobs live in this test's transaction


@pytest.fixture
def kind(monkeypatch):
    monkeypatch.setattr("apps.jobs.kinds.KINDS", dict(KINDS))

    def register(run):
        register_kind("train", validate=lambda spec, team, actor: spec, run=run)
        return "train"

    return register


def _running_with_a_cancel_requested(world, kind_name, **fields) -> Job:
    job = job_submit(actor=world.bob, team=world.acme, kind=kind_name, spec={})
    Job.objects.filter(pk=job.pk).update(status="running", attempts=1, **fields)
    return job_cancel(actor=world.bob, job=Job.objects.get(pk=job.pk))


def test_the_reaper_ends_a_lost_attempt_cancelled_when_its_cancel_was_requested(world, kind, settings):
    stale = timezone.now() - timezone.timedelta(seconds=settings.LEPTON_JOB_STALE_SECONDS + 5)
    job = _running_with_a_cancel_requested(world, kind(lambda context: {}), heartbeat_at=stale)
    assert job.status == "running"

    services.jobs_reap_stale()

    job.refresh_from_db()
    assert (job.status, job.attempts) == ("cancelled", 1)
    assert job.status_reason == "cancelled: the cancel was requested before attempt 1 ended"
    assert not job.gpu_leases.exists()


def test_an_attempt_that_crashes_after_a_cancel_request_ends_cancelled_not_requeued(world, kind, run_tasks):
    def cancelled_then_crashes(context):
        Job.objects.filter(pk=context.job.pk).update(cancel_requested_at=timezone.now())
        raise RuntimeError("the worker fell over before its next check")

    with run_tasks():
        job = job_submit(actor=world.bob, team=world.acme, kind=kind(cancelled_then_crashes), spec={})

    job.refresh_from_db()
    assert (job.status, job.attempts) == ("cancelled", 1)


def test_a_queued_job_whose_cancel_was_requested_is_never_placed_and_ends_cancelled(world, kind):
    job = job_submit(actor=world.bob, team=world.acme, kind=kind(lambda context: {}), spec={})
    Job.objects.filter(pk=job.pk).update(cancel_requested_at=timezone.now())  # as left by an older release

    assert scheduler.jobs_place_queued() == 0
    job.refresh_from_db()
    assert (job.status, job.attempts) == ("queued", 0)

    services.jobs_reap_stale()  # and the reaper ends it
    job.refresh_from_db()
    assert (job.status, job.attempts) == ("cancelled", 0)


def test_a_placed_attempt_whose_task_never_reached_the_broker_is_sent_after_the_grace(
    world, kind, settings, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks() as placed:  # commits, but the task is never handed over
        job = job_submit(actor=world.bob, team=world.acme, kind=kind(lambda context: {}), spec={})
    assert len(placed) == 1  # it asks for a pass; the pass's own on-commit hand-over (the part a dying
    with django_capture_on_commit_callbacks():  # process never runs) is dropped
        scheduler.jobs_place_queued()
    job.refresh_from_db()
    assert (job.status, job.dispatched_at) == ("scheduled", None)
    assert scheduler.jobs_dispatch_undelivered() == 0  # within the grace the placer may still send it

    earlier = timezone.now() - timezone.timedelta(seconds=settings.LEPTON_DISPATCH_GRACE_SECONDS + 1)
    Job.objects.filter(pk=job.pk).update(scheduled_at=earlier)
    assert scheduler.jobs_dispatch_undelivered() == 1
    assert scheduler.jobs_dispatch_undelivered() == 0  # sent once, recorded
    job.refresh_from_db()
    assert job.dispatched_at is not None


def test_a_delivered_attempt_is_not_sent_again(world, kind, settings, django_capture_on_commit_callbacks):
    job = job_submit(actor=world.bob, team=world.acme, kind=kind(lambda context: {}), spec={})
    with django_capture_on_commit_callbacks(execute=True):  # the pass and its hand-over
        scheduler.jobs_place_queued()
    job.refresh_from_db()
    assert job.status == "scheduled"
    assert job.dispatched_at is not None

    earlier = timezone.now() - timezone.timedelta(seconds=settings.LEPTON_DISPATCH_GRACE_SECONDS + 1)
    Job.objects.filter(pk=job.pk).update(scheduled_at=earlier)
    assert scheduler.jobs_dispatch_undelivered() == 0


def test_a_cancel_that_finds_its_running_job_requeued_meanwhile_still_cancels_it(world, kind):
    """The page read the job running; before the cancel was written the reaper requeued it."""
    job = job_submit(actor=world.bob, team=world.acme, kind=kind(lambda context: {}), spec={})
    as_read = Job.objects.get(pk=job.pk)
    as_read.status = "running"  # what the request saw
    Job.objects.filter(pk=job.pk).update(status="queued", attempts=1)  # what the database holds by now

    cancelled = job_cancel(actor=world.bob, job=as_read)

    assert cancelled.status == "cancelled"
    job.refresh_from_db()
    assert job.status == "cancelled"


def test_a_second_cancel_of_a_running_job_keeps_the_first_request_time(world, kind):
    first = _running_with_a_cancel_requested(world, kind(lambda context: {}))
    second = job_cancel(actor=world.bob, job=Job.objects.get(pk=first.pk))
    assert second.status == "running"
    assert second.cancel_requested_at == first.cancel_requested_at
