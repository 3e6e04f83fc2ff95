"""A dataset upload, a weight import, an evaluation and an export each show on the Jobs page with node, duration, log."""

import re

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from apps.datasets import services as datasets
from apps.datasets.models import Dataset
from apps.jobs.models import Job
from apps.registry import services as registry
from apps.registry.evaluations import evaluation_request
from apps.registry.exports import export_request
from apps.registry.weights import save_weights
from tests.datasets.builders import iris_like_rows, write_csv
from tests.factories import model_with_version
from tests.queries import count_queries


@pytest.fixture(autouse=True)
def _inline_jobs(settings):
    settings.LEPTON_HEARTBEAT_THREAD = False


@pytest.fixture
def work(world, run_tasks, tmp_path):
    """One of each kind of work, each run as a job on the conftest's CPU node."""
    flowers = Dataset.objects.create(team=world.acme, name="flowers", task="tabular_classification")
    csv = write_csv(tmp_path / "flowers.csv", ["a", "b", "c", "species"], iris_like_rows(10)).read_bytes()
    with run_tasks():
        version = datasets.version_upload(
            actor=world.bob,
            dataset=flowers,
            uploaded_file=SimpleUploadedFile("flowers.csv", csv),
            source_format=None,
            options={},
        )
    version.refresh_from_db()
    model, base, module = model_with_version(world.acme, version, name="flowers-mlp", creator=world.bob, steps=1)
    save_weights(tmp_path / "w.safetensors", module.state_dict())
    upload = SimpleUploadedFile("w.safetensors", (tmp_path / "w.safetensors").read_bytes())
    with run_tasks():
        imported = registry.version_upload(actor=world.bob, model=model, uploaded_file=upload, dataset_version=version)
        evaluation = evaluation_request(actor=world.bob, version=base, dataset_version=version)
        export = export_request(actor=world.bob, version=base)
    return {
        "ingest": version,
        "import": imported,
        "evaluate": evaluation,
        "export": export,
    }


def test_each_kind_of_work_is_a_finished_job_on_the_jobs_page_with_node_duration_and_log(page_as, world, work):
    client = page_as(world.bob)
    for kind, row in work.items():
        row.refresh_from_db()
        job = Job.objects.get(pk=row.produced_by_job)
        assert (row.status, job.kind, job.status, job.node.name) == ("ready", kind, "succeeded", "cpu-1")

        listed = client.get(f"/jobs/?kind={kind}").content.decode()
        row_html = re.search(rf'<tr data-job="{job.pk}">(.*?)</tr>', listed, re.S).group(1)
        assert "cpu-1" in row_html
        assert re.search(r"\d+\.\d s</td>", row_html), row_html  # the duration
        assert job.summary in row_html

        page = client.get(f"/jobs/{job.pk}/").content.decode()
        assert "node cpu-1" in page
        assert "succeeded" in page
        assert 'id="job-log"' in page
        assert job.log_lines.count() >= 3  # started, what it did, succeeded


def test_the_rows_link_to_the_jobs_that_made_them(page_as, world, work):
    client = page_as(world.bob)
    version, evaluation = work["ingest"], work["evaluate"]

    dataset_page = client.get(f"/datasets/{version.dataset_id}/").content.decode()
    version_page = client.get(f"/models/{evaluation.version.model_id}/versions/1/").content.decode()
    imported_page = client.get(f"/models/{evaluation.version.model_id}/versions/2/").content.decode()

    assert re.search(
        rf'ingested by <a href="/jobs/{version.produced_by_job}/">job #\d+</a>, [\d.]+ s on node cpu-1', dataset_page
    )
    assert f'measured by <a href="/jobs/{evaluation.produced_by_job}/">' in version_page
    assert f'exported by <a href="/jobs/{work["export"].produced_by_job}/">' in version_page
    assert f'Imported by <a href="/jobs/{work["import"].produced_by_job}/">' in imported_page


def test_the_jobs_list_costs_the_same_queries_however_many_kinds_it_shows(page_as, world, work, run_tasks):
    client = page_as(world.bob)
    before = count_queries(lambda: client.get("/jobs/"))
    with run_tasks():
        datasets.version_bundled(actor=world.bob, dataset=work["ingest"].dataset, name="iris")
        evaluation_request(actor=world.bob, version=work["evaluate"].version, dataset_version=work["ingest"])

    assert count_queries(lambda: client.get("/jobs/")) == before
