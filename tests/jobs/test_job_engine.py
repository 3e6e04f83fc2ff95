"""The job engine: state machine, submission, leases, crashes, cancel, retry, checkpoints and resume."""

import time

import pytest
import torch
from django.utils import timezone

from apps.core.errors import ApplicationError, NotFound
from apps.core.storage import local_path
from apps.jobs import runner, services
from apps.jobs.kinds import KINDS, JobFailed, register_kind
from apps.jobs.models import Job, JobEpoch, JobLogLine
from apps.jobs.services import job_submit
from apps.jobs.transitions import IllegalTransition, LeaseLost, job_transition, lease_write
from apps.registry.models import Model
from apps.registry.weights import load_weights
from tests.factories import dataset_with_version, online_node


@pytest.fixture(autouse=True)
def _no_heartbeat_thread(settings):
    settings.LEPTON_HEARTBEAT_THREAD = False  # jobs live in this test's transaction


@pytest.fixture
def kind(monkeypatch):
    """Register a throwaway job kind for a test: kind(run) -> its name."""
    monkeypatch.setattr("apps.jobs.kinds.KINDS", dict(KINDS))

    def register(run, validate=lambda spec, team, actor: spec):
        register_kind("train", validate=validate, run=run)  # reuse a real kind name: Job.kind has choices
        return "train"

    return register


@pytest.fixture
def iris(world):
    return dataset_with_version(world.acme, bundled="iris", name="iris")[1]


@pytest.fixture
def iris_model(world, iris):
    return Model.objects.create(
        team=world.acme,
        name="iris-mlp",
        task="tabular_classification",
        architecture={"family": "mlp", "hidden_sizes": [16], "dropout": 0.2},
        dataset=iris.dataset,
        created_by=world.bob,
    )


def _submit(world, kind_name, spec=None, **extra):
    return job_submit(actor=world.bob, team=world.acme, kind=kind_name, spec=spec or {}, **extra)


# --- the state machine --------------------------------------------------------------------------


def test_only_allowed_transitions_happen(world, kind):
    job = _submit(world, kind(lambda context: {}))

    with pytest.raises(IllegalTransition):
        job_transition(job, "succeeded")  # queued -> succeeded skips running
    job_transition(job, "scheduled")
    job_transition(job, "running")
    job_transition(job, "succeeded")
    with pytest.raises(IllegalTransition, match="is succeeded; it cannot become running"):
        job_transition(job, "running")


def test_a_transition_can_be_fenced_by_attempt(world, kind):
    job = _submit(world, kind(lambda context: {}))
    Job.objects.filter(pk=job.pk).update(status="running", attempts=2)

    with pytest.raises(IllegalTransition):
        job_transition(job, "succeeded", attempt=1)  # a stale attempt
    assert job_transition(job, "succeeded", attempt=2).status == "succeeded"


# --- submitting ---------------------------------------------------------------------------------------


def test_a_submitted_job_runs_and_succeeds(world, kind, run_tasks):
    name = kind(lambda context: {"answer": 42})

    with run_tasks():
        job = _submit(world, name)

    job.refresh_from_db()
    assert (job.status, job.result, job.attempts, job.progress) == ("succeeded", {"answer": 42}, 1, 1.0)
    assert job.started_at is not None
    assert job.finished_at is not None
    assert JobLogLine.objects.filter(job=job, message="succeeded").exists()


def test_viewer_cannot_submit(world, kind):
    with pytest.raises(ApplicationError, match="your role is viewer"):
        job_submit(actor=world.vera, team=world.acme, kind=kind(lambda c: {}), spec={})


@pytest.mark.parametrize(
    ("spec", "field"),
    [
        ({"model": 999999}, "spec.model"),
        ({"epochs": 0}, "spec.epochs"),
        ({"epochs": 2.5}, "spec.epochs"),
        ({"optimizer": "lion"}, "spec.optimizer"),
        ({"learning_rate": -1}, "spec.learning_rate"),
        ({"warp_speed": 9}, "spec.warp_speed"),
        ({"base_version": 7}, "spec.base_version"),
        ({"early_stopping_patience": 0}, "spec.early_stopping_patience"),
    ],
)
def test_a_bad_train_spec_names_the_field(world, iris_model, iris, spec, field):
    full = {"model": iris_model.pk, "dataset": iris.dataset_id, **spec}

    with pytest.raises(ApplicationError) as refused:
        job_submit(actor=world.bob, team=world.acme, kind="train", spec=full)

    assert field in refused.value.fields
    assert not Job.objects.exists()


def test_another_teams_model_cannot_be_trained(world, iris):
    globex_iris = dataset_with_version(world.globex, bundled="iris", name="iris")[1]
    theirs = Model.objects.create(
        team=world.globex,
        name="x",
        task="tabular_classification",
        architecture={"family": "mlp"},
        dataset=globex_iris.dataset,
    )

    with pytest.raises(NotFound):
        job_submit(
            actor=world.bob, team=world.acme, kind="train", spec={"model": theirs.pk, "dataset": iris.dataset_id}
        )


def test_queued_jobs_are_placed_by_priority_then_age(world, kind, django_capture_on_commit_callbacks, monkeypatch):
    from apps.jobs import scheduler

    name = kind(lambda context: {})
    with django_capture_on_commit_callbacks():  # placement waits; nothing runs
        low, high, later_high = _submit(world, name), _submit(world, name, priority=5), _submit(world, name, priority=5)
    Job.objects.update(status="queued", attempts=0)
    online_node("cpu", slots=3)
    order = []
    real = scheduler._fit
    monkeypatch.setattr(scheduler, "_fit", lambda job, *rest: order.append(job.pk) or real(job, *rest))

    scheduler.jobs_place_queued()

    assert order == [high.pk, later_high.pk, low.pk]


# --- crashes, leases, the reaper -----------------------------------------------------------------------------


def test_a_job_that_crashes_every_time_fails_after_max_attempts(world, kind, run_tasks):
    calls = []

    def explode(context):
        calls.append(context.attempt)
        raise RuntimeError("out of luck")

    with run_tasks():
        job = _submit(world, kind(explode), max_attempts=3)

    job.refresh_from_db()
    assert calls == [1, 2, 3]
    assert job.status == "failed"
    assert job.status_reason == "crashed in each of 3 attempt(s); last: RuntimeError: out of luck"
    assert JobLogLine.objects.filter(job=job, level="error").count() == 3


def test_a_bad_input_failure_is_not_retried(world, kind, run_tasks):
    def refuse(context):
        raise JobFailed("the dataset has no test split")

    with run_tasks():
        job = _submit(world, kind(refuse))

    job.refresh_from_db()
    assert (job.status, job.attempts, job.status_reason) == ("failed", 1, "the dataset has no test split")


def test_an_attempt_another_worker_holds_is_refused(world, kind, django_capture_on_commit_callbacks):
    ran = []
    name = kind(lambda context: ran.append(context.attempt) or {})
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        job = _submit(world, name)
    for callback in callbacks:
        callback()  # place: scheduled as attempt 1 (its task is queued, not run)
    Job.objects.filter(pk=job.pk).update(status="running", claimed_at=timezone.now())  # another worker took it

    runner.run_job(job.pk, 1)

    assert ran == []


def test_a_stale_workers_late_writes_are_rejected(world, kind):
    job = _submit(world, kind(lambda context: {}))
    Job.objects.filter(pk=job.pk).update(status="running", attempts=2)

    with pytest.raises(LeaseLost):
        lease_write(job.pk, 1, progress=0.99)
    assert Job.objects.get(pk=job.pk).progress == 0.0


def test_the_reaper_requeues_a_silent_attempt_then_gives_up(world, kind, settings):
    job = _submit(world, kind(lambda context: {}), max_attempts=2)
    stale = timezone.now() - timezone.timedelta(seconds=settings.LEPTON_JOB_STALE_SECONDS + 5)
    Job.objects.filter(pk=job.pk).update(status="running", attempts=1, heartbeat_at=stale)

    services.jobs_reap_stale()
    job.refresh_from_db()
    assert job.status in ("queued", "scheduled")  # requeued, and placed again at once
    assert "worker lost" in job.status_reason or job.status == "scheduled"

    Job.objects.filter(pk=job.pk).update(status="running", attempts=2, heartbeat_at=stale)
    services.jobs_reap_stale()
    job.refresh_from_db()
    assert job.status == "failed"
    assert job.status_reason.startswith("worker lost (no sign of life from attempt 2")
    assert job.status_reason.endswith("gave up after 2 attempt(s)")


# --- cancel and retry ---------------------------------------------------------------------------------------


def test_a_queued_job_is_cancelled_at_once(world, kind, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks():
        job = _submit(world, kind(lambda context: {}))

    services.job_cancel(actor=world.bob, job=job)

    job.refresh_from_db()
    assert job.status == "cancelled"
    assert job.status_reason == "cancelled by bob before it ran"


def test_a_running_job_stops_at_its_next_check(world, kind, run_tasks):
    seen = []

    def long_running(context):
        for step in range(1000):  # 10 ms a step: 10 s if nothing stops it
            if step == 3:
                services.job_cancel(actor=context.job.submitted_by, job=Job.objects.get(pk=context.job.pk))
                seen.append(time.monotonic())
            context.progress(step / 1000, f"step {step}")
            time.sleep(0.01)
        return {}

    with run_tasks():
        job = _submit(world, kind(long_running))

    job.refresh_from_db()
    assert job.status == "cancelled"
    assert time.monotonic() - seen[0] < 2.0  # progress is written (and the cancel seen) about once a second


def test_retry_makes_a_new_attempt_of_a_failed_job(world, kind, run_tasks):
    outcomes = iter([RuntimeError("flaky"), None])

    def flaky(context):
        error = next(outcomes)
        if error:
            raise JobFailed("flaky")
        return {"ok": True}

    with run_tasks():
        job = _submit(world, kind(flaky))
    job.refresh_from_db()
    assert job.status == "failed"

    with run_tasks():
        services.job_retry(actor=world.bob, job=job)

    job.refresh_from_db()
    assert (job.status, job.attempts, job.result) == ("succeeded", 2, {"ok": True})


def test_viewer_cannot_cancel(world, kind, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks():
        job = _submit(world, kind(lambda context: {}))

    with pytest.raises(ApplicationError):
        services.job_cancel(actor=world.vera, job=job)
    assert Job.objects.get(pk=job.pk).status == "queued"


# --- training: checkpoints and resume ---------------------------------------------------------------------


def _train(world, iris_model, iris, **spec):
    return job_submit(
        actor=world.bob,
        team=world.acme,
        kind="train",
        spec={"model": iris_model.pk, "dataset": iris.dataset_id, "epochs": 6, "seed": 3, "batch_size": 16, **spec},
    )


def test_a_checkpoint_is_written_each_epoch_and_only_the_last_is_kept(
    world, iris_model, iris, run_tasks, settings, monkeypatch
):
    original, kept = runner.JobContext.save_checkpoint, []

    def save_and_look(self, state, epoch):
        original(self, state, epoch)
        name = Job.objects.get(pk=self.job.pk).checkpoint
        on_disk = [p.name.split("-")[1] for p in (settings.MEDIA_ROOT / "checkpoints").rglob("*.pt")]
        kept.append((on_disk, torch.load(local_path(name), weights_only=True)["epoch"]))

    monkeypatch.setattr(runner.JobContext, "save_checkpoint", save_and_look)
    with run_tasks():
        job = _train(world, iris_model, iris)

    job.refresh_from_db()
    assert job.checkpoint_epoch == 6
    assert kept == [([f"{epoch:05d}"], epoch) for epoch in range(1, 7)]
    assert job.checkpoint == ""  # it succeeded: nothing can resume from it (tests/jobs/test_checkpoints.py)


def test_a_resumed_run_ends_with_the_same_weights_as_an_uninterrupted_one(
    world, iris_model, iris, run_tasks, monkeypatch
):
    with run_tasks():
        straight = _train(world, iris_model, iris)
    straight.refresh_from_db()

    original = runner.JobContext.save_checkpoint
    crashed = []

    def crash_after_epoch_3(self, state, epoch):
        original(self, state, epoch)
        if epoch == 3 and not crashed:
            crashed.append(epoch)
            raise RuntimeError("the worker died after epoch 3")

    monkeypatch.setattr(runner.JobContext, "save_checkpoint", crash_after_epoch_3)
    with run_tasks():
        resumed = _train(world, iris_model, iris)
    resumed.refresh_from_db()

    assert (resumed.status, resumed.attempts) == ("succeeded", 2)
    assert JobLogLine.objects.filter(job=resumed, message__startswith="resuming from checkpoint").exists()
    assert list(JobEpoch.objects.filter(job=resumed).values_list("epoch", "attempt")) == [
        (1, 1),
        (2, 1),
        (3, 1),
        (4, 2),
        (5, 2),
        (6, 2),
    ]
    a = load_weights(local_path(iris_model.versions.get(number=straight.result["version"]).artifact))
    b = load_weights(local_path(iris_model.versions.get(number=resumed.result["version"]).artifact))
    assert a.keys() == b.keys()
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_a_kill_while_writing_a_checkpoint_leaves_the_previous_one_loadable(
    world, iris_model, iris, run_tasks, monkeypatch
):
    real_save = torch.save

    def dies_writing_epoch_4(obj, path, *args, **kwargs):
        if obj.get("epoch") == 4:
            with open(path, "wb") as partial:
                partial.write(b"PK\x03\x04 half a checkpoint")
            raise OSError("killed mid-write")
        return real_save(obj, path, *args, **kwargs)

    monkeypatch.setattr(runner.torch, "save", dies_writing_epoch_4)
    with run_tasks():
        job = _train(world, iris_model, iris, epochs=5)
    monkeypatch.setattr(runner.torch, "save", real_save)

    job.refresh_from_db()
    assert job.status == "failed"  # it dies at epoch 4 in every attempt
    assert job.checkpoint_epoch == 3
    assert torch.load(local_path(job.checkpoint), weights_only=True)["epoch"] == 3


def test_training_from_a_base_version_records_the_lineage(world, iris_model, iris, run_tasks):
    with run_tasks():
        first = _train(world, iris_model, iris, epochs=2)
    first.refresh_from_db()

    with run_tasks():
        second = _train(world, iris_model, iris, epochs=2, base_version=first.result["version"])
    second.refresh_from_db()

    child = iris_model.versions.get(number=second.result["version"])
    assert child.parent.number == first.result["version"]
    assert child.produced_by_job == second.pk


def test_a_scheduled_job_waiting_for_a_worker_is_never_failed(
    world, kind, settings, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        job = _submit(world, kind(lambda context: {}), max_attempts=1)
    Job.objects.filter(pk=job.pk).update(
        status="scheduled", attempts=1, claimed_at=None, heartbeat_at=timezone.now() - timezone.timedelta(seconds=3600)
    )

    with django_capture_on_commit_callbacks() as requeued:
        services.jobs_reap_stale()

    job.refresh_from_db()
    assert (job.status, job.attempts) == ("scheduled", 1)
    assert len(requeued) == 1  # the same attempt queued again


def test_a_job_that_moved_on_meanwhile_is_left_as_it_is_not_failed_by_the_runner(world, kind, run_tasks):
    """The reaper (or a cancel) got there first: the runner's lost race is not an error of the job."""

    def reaped_while_running(context):
        job_transition(context.job, "failed", attempt=context.attempt, reason="worker lost (reaped meanwhile)")
        return {"late": True}

    with run_tasks():
        job = _submit(world, kind(reaped_while_running))

    job.refresh_from_db()
    assert (job.status, job.status_reason, job.result) == ("failed", "worker lost (reaped meanwhile)", {})
    assert not JobLogLine.objects.filter(job=job, level="error").exists()
