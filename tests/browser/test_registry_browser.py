"""The registry in real Chromium: create a model, upload weights, evaluate, see lineage and the heat map."""

import pytest

from apps.registry.architectures import build_model
from apps.registry.models import Model
from apps.registry.weights import save_weights
from tests.browser.test_smoke import _log_in
from tests.factories import dataset_with_version

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True, serialized_rollback=True)]


def test_create_upload_evaluate_and_export(page, live_server, world, tmp_path, inline_tasks):
    iris = dataset_with_version(world.acme, bundled="iris", name="iris")[1]
    weights = tmp_path / "iris.safetensors"
    save_weights(
        weights, build_model({"family": "mlp", "hidden_sizes": [16]}, input_shape=(4,), num_classes=3).state_dict()
    )
    _log_in(page, live_server.url, "alice")

    page.goto(f"{live_server.url}/models/")
    page.click("text=Create the first model")
    page.fill("#id_name", "iris-mlp")
    page.select_option("#id_task", "tabular_classification")
    page.select_option("#id_dataset", str(iris.dataset_id))
    page.select_option("#id_family", "mlp")
    page.fill("#id_params", '{"hidden_sizes": [16]}')
    page.click("#model-form button[type=submit]")
    model = Model.objects.get(name="iris-mlp")
    page.wait_for_url(f"{live_server.url}/models/{model.pk}/")

    page.set_input_files("#id_file", str(weights))
    page.click("#upload-form button[type=submit]")
    page.wait_for_selector('#versions-table tr[data-version="1"] .badge.text-bg-success')
    page.wait_for_selector(".plotly-chart[data-figure=lineage-chart] .main-svg")

    page.click('#versions-table a:has-text("v1")')
    page.click("#evaluate-form button[type=submit]")
    page.wait_for_selector(".plotly-chart[data-figure=confusion-chart] .main-svg")
    assert "samples/s at batch 64" in page.locator("#metrics").inner_text()

    page.click('button:has-text("Export to ONNX")')
    page.wait_for_selector('[data-export="onnx"] a:has-text("Download")')
    assert page.problems.items == []


def test_train_from_the_model_page_and_watch_the_job_page(page, live_server, world, inline_tasks, settings):
    from apps.registry.models import Model

    iris = dataset_with_version(world.acme, bundled="iris", name="iris")[1]
    model = Model.objects.create(
        team=world.acme,
        name="iris-mlp",
        task="tabular_classification",
        architecture={"family": "mlp", "hidden_sizes": [16], "dropout": 0.0},
        dataset=iris.dataset,
    )
    _log_in(page, live_server.url, "alice")

    page.goto(f"{live_server.url}/models/{model.pk}/")
    page.fill("#train-form #id_epochs", "3")
    page.click("#train-form button[type=submit]")

    page.wait_for_selector(".plotly-chart[data-figure=curves-chart] .main-svg")
    assert "succeeded" in page.locator("#live").inner_text()
    page.click("#job-result a")
    page.wait_for_selector("#metrics")
    assert page.problems.items == []
