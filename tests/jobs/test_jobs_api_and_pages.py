"""Jobs through the API and the pages: submit, list, get, cancel, retry, metrics, logs."""

import pytest

from apps.jobs.models import Job, JobLogLine
from apps.registry.models import Model
from tests.factories import dataset_with_version
from tests.queries import assert_queries_constant

JOBS = "/api/v1/jobs/"


@pytest.fixture(autouse=True)
def _no_heartbeat_thread(settings):
    settings.LEPTON_HEARTBEAT_THREAD = False


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


def _train_body(model, iris, **spec):
    return {
        "team": "acme",
        "kind": "train",
        "spec": {"model": model.pk, "dataset": iris.dataset_id, "epochs": 3, "batch_size": 16, **spec},
    }


def test_submit_through_the_api_and_read_everything_back(api_as, world, iris_model, iris, run_tasks):
    client = api_as(world.bob)

    with run_tasks():
        response = client.post(JOBS, _train_body(iris_model, iris), format="json")

    assert response.status_code == 201
    job = client.get(f"{JOBS}{response.json()['id']}/").json()
    assert job["status"] == "succeeded"
    assert job["spec"]["optimizer"] == "adam"  # defaults filled in by validation
    assert [e["epoch"] for e in job["epochs"]] == [1, 2, 3]
    assert job["result"]["version"] == 1
    assert job["log_tail"][-1]["message"] == "succeeded"
    assert job["duration_seconds"] > 0


def test_a_bad_spec_answers_400_naming_the_field(api_as, world, iris_model, iris):
    response = api_as(world.bob).post(JOBS, _train_body(iris_model, iris, epochs="many"), format="json")

    assert response.status_code == 400
    assert response.json()["error"]["fields"] == {"spec.epochs": ["must be an integer; got 'many'"]}
    assert not Job.objects.exists()


def test_viewer_cannot_submit_through_the_api(api_as, world, iris_model, iris):
    assert api_as(world.vera).post(JOBS, _train_body(iris_model, iris), format="json").status_code == 403


def test_cancel_and_retry_through_the_api(
    api_as, world, iris_model, iris, django_capture_on_commit_callbacks, run_tasks
):
    client = api_as(world.bob)
    with django_capture_on_commit_callbacks():  # queued, never placed
        job_id = client.post(JOBS, _train_body(iris_model, iris), format="json").json()["id"]

    cancelled = client.post(f"{JOBS}{job_id}/cancel/").json()
    again = client.post(f"{JOBS}{job_id}/cancel/")
    with run_tasks():
        retried = client.post(f"{JOBS}{job_id}/retry/").json()

    assert cancelled["status"] == "cancelled"
    assert again.status_code == 409
    assert retried["status"] in ("queued", "scheduled", "running", "succeeded")
    assert Job.objects.get(pk=job_id).status == "succeeded"


def test_logs_can_be_tailed_with_an_offset(api_as, world, iris_model, iris, run_tasks):
    client = api_as(world.bob)
    with run_tasks():
        job_id = client.post(JOBS, _train_body(iris_model, iris), format="json").json()["id"]

    first = client.get(f"{JOBS}{job_id}/logs/").json()
    rest = client.get(f"{JOBS}{job_id}/logs/", {"after": first[2]["id"]}).json()

    assert [line["id"] for line in rest] == [line["id"] for line in first[3:]]
    assert client.get(f"{JOBS}{job_id}/logs/", {"after": "x"}).status_code == 400


def test_metrics_are_the_epoch_rows(api_as, world, iris_model, iris, run_tasks):
    client = api_as(world.bob)
    with run_tasks():
        job_id = client.post(JOBS, _train_body(iris_model, iris), format="json").json()["id"]

    metrics = client.get(f"{JOBS}{job_id}/metrics/").json()

    assert [m["epoch"] for m in metrics] == [1, 2, 3]
    assert set(metrics[0]) >= {"train_loss", "val_loss", "val_accuracy", "samples_per_second", "learning_rate"}


def test_jobs_list_filters_and_keeps_its_queries_flat(api_as, world, iris_model, iris, run_tasks):
    client = api_as(world.alice)
    with run_tasks():
        client.post(JOBS, _train_body(iris_model, iris, epochs=1), format="json")

    def add():
        with run_tasks():
            for _ in range(3):
                api_as(world.bob).post(JOBS, _train_body(iris_model, iris, epochs=1), format="json")

    assert_queries_constant(lambda: client.get(JOBS), add, at_most=5)
    assert client.get(JOBS, {"status": "succeeded", "submitted_by": "bob"}).json()["count"] == 3
    assert client.get(JOBS, {"status": "bogus"}).status_code == 400


def test_jobs_page_lists_and_filters(page_as, world, iris_model, iris, run_tasks, api_as):
    with run_tasks():
        api_as(world.bob).post(JOBS, _train_body(iris_model, iris, epochs=1), format="json")
    client = page_as(world.vera)

    html = client.get("/jobs/").content.decode()
    none = client.get("/jobs/", {"status": "failed"}).content.decode()

    assert 'data-job="' in html
    assert "succeeded" in html
    assert "No job matches these filters" in none


def test_jobs_page_queries_do_not_grow(page_as, world, iris_model, iris, run_tasks, api_as):
    with run_tasks():
        api_as(world.bob).post(JOBS, _train_body(iris_model, iris, epochs=1), format="json")
    client = page_as(world.alice)

    def add():
        with run_tasks():
            for _ in range(3):
                api_as(world.bob).post(JOBS, _train_body(iris_model, iris, epochs=1), format="json")

    assert_queries_constant(lambda: client.get("/jobs/"), add, at_most=8)


def test_job_page_shows_progress_curves_log_and_result(page_as, world, iris_model, iris, run_tasks, api_as):
    with run_tasks():
        job_id = api_as(world.bob).post(JOBS, _train_body(iris_model, iris), format="json").json()["id"]

    html = page_as(world.vera).get(f"/jobs/{job_id}/").content.decode()

    assert 'data-figure="curves-chart"' in html
    assert 'id="job-progress"' in html
    assert "epoch 3: train loss" in html
    assert f'href="/models/{iris_model.pk}/versions/1/"' in html
    assert 'id="cancel-job"' not in html  # finished, and a viewer anyway


def test_the_live_part_polls_while_running_and_stops_when_done(
    page_as, world, iris_model, iris, django_capture_on_commit_callbacks, api_as
):
    with django_capture_on_commit_callbacks():
        job_id = api_as(world.bob).post(JOBS, _train_body(iris_model, iris), format="json").json()["id"]
    client = page_as(world.bob)

    running = client.get(f"/jobs/{job_id}/live/").content.decode()
    Job.objects.filter(pk=job_id).update(status="succeeded")
    done = client.get(f"/jobs/{job_id}/live/").content.decode()

    assert 'hx-trigger="every 1s"' in running
    assert "hx-trigger" not in done


def test_cancel_from_the_page(page_as, world, iris_model, iris, django_capture_on_commit_callbacks, api_as):
    with django_capture_on_commit_callbacks():
        job_id = api_as(world.bob).post(JOBS, _train_body(iris_model, iris), format="json").json()["id"]

    response = page_as(world.bob).post(f"/jobs/{job_id}/cancel/")

    assert response["Location"] == f"/jobs/{job_id}/"
    assert Job.objects.get(pk=job_id).status == "cancelled"


def test_viewer_cannot_cancel_from_the_page(
    page_as, world, iris_model, iris, django_capture_on_commit_callbacks, api_as
):
    with django_capture_on_commit_callbacks():
        job_id = api_as(world.bob).post(JOBS, _train_body(iris_model, iris), format="json").json()["id"]

    response = page_as(world.vera).post(f"/jobs/{job_id}/cancel/")

    assert response.status_code == 403
    assert Job.objects.get(pk=job_id).status == "queued"


def test_warnings_raised_inside_a_job_land_in_its_log(world, iris_model, iris, run_tasks, monkeypatch):
    import warnings

    from apps.jobs.kinds import KINDS, register_kind
    from apps.jobs.services import job_submit

    monkeypatch.setattr("apps.jobs.kinds.KINDS", dict(KINDS))
    register_kind(
        "train",
        validate=lambda spec, team, actor: spec,
        run=lambda context: warnings.warn("learning rate looks high", UserWarning, stacklevel=1) or {},
    )

    with run_tasks():
        job = job_submit(actor=world.bob, team=world.acme, kind="train", spec={})

    line = JobLogLine.objects.get(job=job, level="warning")
    assert line.message == "UserWarning: learning rate looks high"


class _Noisy:
    """A query parameter whose conversion warns: the warning comes from inside the driver, while
    it runs a query on the job's own connection (psycopg did this once, mid-run, in CI)."""


def test_a_warning_raised_inside_a_database_query_is_logged_after_it_not_inside_it(
    world, iris_model, iris, run_tasks, monkeypatch
):
    import warnings

    from django.db import connection
    from psycopg.adapt import Dumper

    from apps.jobs.kinds import KINDS, register_kind
    from apps.jobs.services import job_submit

    if connection.vendor != "postgresql":
        pytest.skip("a psycopg dumper is how the driver is made to warn mid-query; CI runs PostgreSQL")

    class NoisyDumper(Dumper):
        def dump(self, obj):
            warnings.warn("converted a noisy value", UserWarning, stacklevel=1)
            return b"1"

    def run(context):
        connection.ensure_connection()
        connection.connection.adapters.register_dumper(_Noisy, NoisyDumper)
        with connection.cursor() as cursor:
            cursor.execute("SELECT %s::int", [_Noisy()])
        return {}

    monkeypatch.setattr("apps.jobs.kinds.KINDS", dict(KINDS))
    register_kind("train", validate=lambda spec, team, actor: spec, run=run)

    with run_tasks():
        job = job_submit(actor=world.bob, team=world.acme, kind="train", spec={})

    job.refresh_from_db()
    assert job.status == "succeeded"
    line = JobLogLine.objects.get(job=job, level="warning")
    assert line.message == "UserWarning: converted a noisy value"


def test_train_from_the_model_page(page_as, world, iris_model, iris, run_tasks):
    form = {
        "dataset_version": f"{iris.dataset_id}:1",
        "epochs": "2",
        "batch_size": "16",
        "optimizer": "adam",
        "learning_rate": "0.01",
        "schedule": "cosine",
        "seed": "0",
        "label": "first",
    }

    with run_tasks():
        response = page_as(world.bob).post(f"/models/{iris_model.pk}/train/", form)

    job = Job.objects.get()
    assert response["Location"] == f"/jobs/{job.pk}/"
    assert job.status == "succeeded"
    assert iris_model.versions.get().label == "first"


def test_viewer_cannot_train_from_the_model_page(page_as, world, iris_model, iris):
    form = {
        "dataset_version": f"{iris.dataset_id}:1",
        "epochs": "2",
        "batch_size": "16",
        "optimizer": "adam",
        "learning_rate": "0.01",
        "schedule": "cosine",
        "seed": "0",
    }

    response = page_as(world.vera).post(f"/models/{iris_model.pk}/train/", form)

    assert response.status_code == 403
    assert not Job.objects.exists()
