"""Registry pages: list, create, model page (versions, lineage, aliases), version page (measurements)."""

import io

import pytest
import torch
from django.core.files.uploadedfile import SimpleUploadedFile

from apps.registry import services
from apps.registry.models import Model, ModelVersion
from apps.registry.weights import QuantizedTensor
from tests.factories import dataset_with_version, model_with_version
from tests.queries import assert_queries_constant


@pytest.fixture
def iris(world):
    return dataset_with_version(world.acme, bundled="iris", name="iris")[1]


def test_list_shows_the_current_teams_models(page_as, world, iris):
    model_with_version(world.acme, iris, name="acme-mlp", steps=1)
    globex_iris = dataset_with_version(world.globex, bundled="iris", name="iris")[1]
    model_with_version(world.globex, globex_iris, name="globex-mlp", steps=1)

    html = page_as(world.vera).get("/models/").content.decode()

    assert "acme-mlp" in html
    assert "globex-mlp" not in html
    assert "New model" not in html


def test_empty_list_says_what_to_do_next(page_as, world):
    assert "No models in Acme yet" in page_as(world.bob).get("/models/").content.decode()


def test_list_queries_do_not_grow(page_as, world, iris):
    model_with_version(world.acme, iris, name="first", steps=1)
    client = page_as(world.alice)

    def add():
        for n in range(4):
            model_with_version(world.acme, iris, name=f"m{n}", steps=1)

    assert_queries_constant(lambda: client.get("/models/"), add, at_most=12)


def test_model_page_queries_do_not_grow_with_versions(page_as, world, iris):
    model, v1, module = model_with_version(world.acme, iris, name="m", steps=1)
    client = page_as(world.alice)

    def add():
        for _ in range(4):
            services.version_from_weights(
                actor=world.bob,
                model=model,
                weights=module.state_dict(),
                spec=v1.spec,
                dataset_version=iris,
                parent=v1,
                source="compress",
            )

    assert_queries_constant(lambda: client.get(f"/models/{model.pk}/"), add, at_most=20)


def test_create_a_model_from_the_page(page_as, world, iris):
    response = page_as(world.bob).post(
        "/models/new/",
        {
            "name": "iris-mlp",
            "task": "tabular_classification",
            "dataset": iris.dataset_id,
            "family": "mlp",
            "params": '{"hidden_sizes": [16]}',
            "description": "",
        },
    )

    model = Model.objects.get(name="iris-mlp")
    assert response["Location"] == f"/models/{model.pk}/"
    assert model.architecture == {"family": "mlp", "hidden_sizes": [16], "dropout": 0.0}


def test_create_page_explains_bad_parameters(page_as, world):
    response = page_as(world.bob).post(
        "/models/new/", {"name": "m", "task": "tabular_classification", "family": "mlp", "params": '{"depth": 3}'}
    )

    assert response.status_code == 400
    assert "architecture.depth" in response.content.decode()


def test_model_page_shows_versions_lineage_and_aliases(page_as, world, iris):
    model, v1, module = model_with_version(world.acme, iris, name="m", steps=1)
    quantized = {k: QuantizedTensor.from_float(v) if v.dim() == 2 else v for k, v in module.state_dict().items()}
    services.version_from_weights(
        actor=world.bob,
        model=model,
        weights=quantized,
        spec=v1.spec,
        dataset_version=None,
        parent=v1,
        source="compress",
        label="int8",
    )
    services.alias_set(actor=world.bob, model=model, name="production", version=v1)

    html = page_as(world.vera).get(f"/models/{model.pk}/").content.decode()

    assert 'data-figure="lineage-chart"' in html
    assert "production → v1" in html
    assert 'data-version="2"' in html
    assert "int8" in html
    assert 'id="upload-form"' not in html  # viewers read only


def test_upload_from_the_page_goes_to_a_worker(page_as, world, iris, run_tasks):
    model, v1, module = model_with_version(world.acme, iris, name="m", steps=1)
    buffer = io.BytesIO()
    torch.save(module.state_dict(), buffer)

    with run_tasks():
        response = page_as(world.bob).post(
            f"/models/{model.pk}/upload/",
            {
                "file": SimpleUploadedFile("w.pt", buffer.getvalue()),
                "dataset_version": f"{iris.dataset_id}:1",
                "label": "from disk",
            },
        )

    assert response["Location"] == f"/models/{model.pk}/"
    assert model.versions.get(number=2).status == "ready"


def test_versions_partial_polls_while_importing_and_reloads_when_done(page_as, world, iris):
    model, version, _ = model_with_version(world.acme, iris, name="m", steps=1)
    client = page_as(world.bob)
    ModelVersion.objects.filter(pk=version.pk).update(status="processing")

    polling = client.get(f"/models/{model.pk}/versions-table/", HTTP_HX_REQUEST="true")
    ModelVersion.objects.filter(pk=version.pk).update(status="ready")
    done = client.get(f"/models/{model.pk}/versions-table/?was=processing", HTTP_HX_REQUEST="true")

    assert 'hx-trigger="every 1s"' in polling.content.decode()
    assert done["HX-Refresh"] == "true"


def test_set_an_alias_from_the_page(page_as, world, iris):
    model, _, _ = model_with_version(world.acme, iris, name="m", steps=1)

    response = page_as(world.bob).post(f"/models/{model.pk}/alias/", {"name": "staging", "version": "1"})

    assert response.status_code == 302
    assert model.aliases.get().name == "staging"


def test_viewer_cannot_set_an_alias_on_the_page(page_as, world, iris):
    model, _, _ = model_with_version(world.acme, iris, name="m", steps=1)

    response = page_as(world.vera).post(f"/models/{model.pk}/alias/", {"name": "staging", "version": "1"})

    assert response.status_code == 403
    assert not model.aliases.exists()


def test_version_page_evaluates_and_shows_the_confusion_matrix(page_as, world, iris, run_tasks):
    model, _, _ = model_with_version(world.acme, iris, name="m", steps=30)
    client = page_as(world.bob)

    with run_tasks():
        response = client.post(f"/models/{model.pk}/versions/1/evaluate/", {"dataset_version": f"{iris.dataset_id}:1"})

    assert response.status_code == 302
    html = client.get(f"/models/{model.pk}/versions/1/").content.decode()
    assert 'data-figure="confusion-chart"' in html
    assert '"type":"heatmap"' in html.replace(" ", "")
    assert "samples/s at batch 64" in html


def test_version_page_exports_to_onnx(page_as, world, iris, run_tasks):
    model, _, _ = model_with_version(world.acme, iris, name="m", steps=1)
    client = page_as(world.bob)

    with run_tasks():
        client.post(f"/models/{model.pk}/versions/1/export/")

    html = client.get(f"/models/{model.pk}/versions/1/").content.decode()
    assert f"/api/v1/models/{model.pk}/versions/1/exports/onnx/download/" in html
    assert "max difference from torch" in html


def test_work_partial_polls_while_an_evaluation_runs(page_as, world, iris):
    from apps.registry.evaluations import evaluation_request

    model, version, _ = model_with_version(world.acme, iris, name="m", steps=1)
    evaluation = evaluation_request(actor=world.bob, version=version, dataset_version=iris)  # no worker runs

    html = page_as(world.bob).get(f"/models/{model.pk}/versions/1/work/", HTTP_HX_REQUEST="true").content.decode()

    assert 'hx-trigger="every 1s"' in html
    assert "waiting to be placed" in html  # the evaluate job's own words
    job = evaluation.produced_by_job
    assert f'queued by <a href="/jobs/{job}/">job #{job}</a>' in html


def test_delete_a_model_from_the_page(page_as, world, iris, run_tasks):
    model, _, _ = model_with_version(world.acme, iris, name="m", creator=world.bob, steps=1)

    with run_tasks():
        response = page_as(world.bob).post(f"/models/{model.pk}/delete/")

    assert response["Location"] == "/models/"
    assert not Model.objects.exists()
