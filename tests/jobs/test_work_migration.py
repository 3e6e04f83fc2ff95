"""The migration that made background work jobs carries existing rows over: each gets the job that made it."""

import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor
from django.utils import timezone

BEFORE = [
    ("datasets", "0002_reaper_schedule"),
    ("registry", "0002_reaper_schedule"),
    ("jobs", "0003_job_gpu_indexes_job_node_job_time_limit_seconds_and_more"),
]
AFTER = [
    ("datasets", "0004_remove_datasetversion_lease_fields"),
    ("registry", "0004_remove_work_lease_fields"),
    ("jobs", "0004_work_rows_become_jobs"),
]


def _migrate(targets):
    executor = MigrationExecutor(connection)
    executor.loader.build_graph()
    executor.migrate(targets)
    return executor.loader.project_state(targets).apps


@pytest.fixture
def back_to_the_latest_schema():
    """Whatever the test migrated to, the database ends at the newest migrations (the next tests need them)."""
    yield
    executor = MigrationExecutor(connection)
    executor.loader.build_graph()
    executor.migrate(executor.loader.graph.leaf_nodes())


def _old_rows(apps):
    """What a database held before: LeasedRunner rows, finished and still processing, and their schedules."""
    team = apps.get_model("accounts", "Team").objects.create(slug="old", name="Old")
    user = apps.get_model("auth", "User").objects.create(username="olduser")
    dataset = apps.get_model("datasets", "Dataset").objects.create(
        team=team, name="iris", task="tabular_classification"
    )
    DatasetVersion = apps.get_model("datasets", "DatasetVersion")
    then = timezone.now() - timezone.timedelta(hours=1)
    ready = DatasetVersion.objects.create(
        dataset=dataset,
        number=1,
        source_format="bundled",
        source_name="iris",
        status="ready",
        attempts=2,
        claimed_at=then,
        finished_at=then + timezone.timedelta(seconds=4),
        created_by=user,
        sample_shape=[4],
        class_names=["a", "b", "c"],
        progress=1.0,
    )
    waiting = DatasetVersion.objects.create(
        dataset=dataset, number=2, source_format="bundled", source_name="iris", attempts=1, created_by=user
    )
    failed = DatasetVersion.objects.create(
        dataset=dataset,
        number=3,
        source_format="csv",
        source_name="x.csv",
        status="failed",
        attempts=1,
        error="row 3, column 'a': 'x' is not a number",
        created_by=user,
    )
    model = apps.get_model("registry", "Model").objects.create(
        team=team, name="mlp", task="tabular_classification", architecture={"family": "mlp"}, dataset=dataset
    )
    common = {"spec": {"family": "mlp"}, "input_shape": [4], "num_classes": 3, "status": "ready", "attempts": 1}
    ModelVersion = apps.get_model("registry", "ModelVersion")
    trained = ModelVersion.objects.create(model=model, number=1, source="train", produced_by_job=None, **common)
    uploaded = ModelVersion.objects.create(model=model, number=2, source="upload", **common)
    evaluation = apps.get_model("registry", "Evaluation").objects.create(
        version=trained, dataset_version=ready, status="ready", attempts=1, requested_by=user, accuracy=0.9
    )
    export = apps.get_model("registry", "ModelExport").objects.create(
        version=trained, format="onnx", status="processing", attempts=1, requested_by=user
    )
    for name in ("datasets: reap stale ingests", "registry: reap stale work"):
        apps.get_model("django_q", "Schedule").objects.create(name=name, func="apps.gone.tasks.reap", schedule_type="I")
    return {
        "ready": ready,
        "waiting": waiting,
        "failed": failed,
        "uploaded": uploaded,
        "evaluation": evaluation,
        "export": export,
        "trained": trained,
    }


@pytest.mark.django_db(transaction=True, serialized_rollback=True)  # keeps the plans migrations made
def test_existing_rows_get_their_jobs_and_lose_their_lease_fields(back_to_the_latest_schema):
    old = _old_rows(_migrate(BEFORE))

    apps = _migrate(AFTER)

    Job = apps.get_model("jobs", "Job")

    def job_of(model_label, pk):
        row = apps.get_model(*model_label.split(".")).objects.get(pk=pk)
        return Job.objects.get(pk=row.produced_by_job)

    ready = job_of("datasets.DatasetVersion", old["ready"].pk)
    assert (ready.kind, ready.status, ready.attempts, ready.summary) == ("ingest", "succeeded", 2, "iris v1")
    assert ready.spec == {"dataset": old["ready"].dataset_id, "version": 1}
    assert (ready.finished_at - ready.started_at).total_seconds() == pytest.approx(4)
    waiting = job_of("datasets.DatasetVersion", old["waiting"].pk)
    assert (waiting.status, waiting.attempts, waiting.status_reason) == ("queued", 0, "waiting to be placed")
    failed = job_of("datasets.DatasetVersion", old["failed"].pk)
    assert (failed.status, failed.status_reason) == ("failed", "row 3, column 'a': 'x' is not a number")
    assert job_of("registry.ModelVersion", old["uploaded"].pk).kind == "import"
    assert job_of("registry.Evaluation", old["evaluation"].pk).spec == {
        "model": old["trained"].model_id,
        "version": 1,
        "dataset": old["ready"].dataset_id,
        "dataset_version": 1,
    }
    assert job_of("registry.ModelExport", old["export"].pk).status == "queued"  # it will be placed and made
    assert apps.get_model("registry", "ModelVersion").objects.get(pk=old["trained"].pk).produced_by_job is None
    assert Job.objects.count() == 6
    fields = {field.name for field in apps.get_model("datasets", "DatasetVersion")._meta.get_fields()}
    assert not fields & {"attempts", "claimed_at", "heartbeat_at", "progress", "progress_message"}
    schedules = set(apps.get_model("django_q", "Schedule").objects.values_list("name", flat=True))
    assert not schedules & {"datasets: reap stale ingests", "registry: reap stale work"}
