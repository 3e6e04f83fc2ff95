"""Experiments in real Chromium: build a grid from the form, watch the chart, switch to latency, open a point."""

import pytest

from apps.experiments.models import Experiment
from tests.browser.test_smoke import _log_in
from tests.factories import dataset_with_version, model_with_version

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True, serialized_rollback=True)]


def test_a_grid_experiment_from_the_form_to_the_chart_and_a_version(page, live_server, world, inline_tasks):
    iris = dataset_with_version(world.acme, bundled="iris", name="iris")[1]
    model, version, _ = model_with_version(
        world.acme, iris, spec={"family": "mlp", "hidden_sizes": [64]}, name="iris-mlp", creator=world.alice, steps=200
    )
    _log_in(page, live_server.url, "alice")

    page.goto(f"{live_server.url}/experiments/")
    page.click("#new-experiment")
    assert page.locator("#grid-builder").is_hidden()  # auto is the default: no recipes to build
    page.fill("input[name=name]", "iris sweep")
    page.check("#strategy-grid")
    assert page.locator("#grid-builder").is_visible()
    page.check("#scheme-int8_weight_only")
    page.check("#scheme-fp16")
    page.fill("input[name=sparsities]", "0.5, 0.8")
    page.fill("input[name=max_accuracy_drop]", "5")
    page.fill("input[name=finetune_epochs]", "1")
    page.click("#start-experiment")

    experiment = Experiment.objects.get(name="iris sweep")
    page.wait_for_url(f"{live_server.url}/experiments/{experiment.pk}/")
    page.wait_for_selector("#live .badge:has-text('succeeded')")
    page.wait_for_selector(".plotly-chart[data-figure=tradeoff-chart] .main-svg")
    assert page.locator("#trials-table tbody tr").count() == 5  # the base and four recipes
    assert "Recommended" in page.locator("#recommended").inner_text()
    assert "artifact size" in page.locator("#tradeoff .xtitle").text_content()

    page.click("#tradeoff .updatemenu-button:has-text('Latency')")
    page.wait_for_function("document.querySelector('#tradeoff .xtitle').textContent.includes('latency')")

    page.click("#trials-table th a:has-text('Artifact')")
    page.wait_for_url("**?sort=bytes")
    sizes = page.locator("#trials-table tbody tr").evaluate_all("rows => rows.map(r => r.dataset.trial)")
    assert len(sizes) == 5

    point = page.locator("#tradeoff .scatterlayer .trace .points path").first
    box = point.bounding_box()
    page.mouse.click(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
    page.wait_for_url(f"{live_server.url}/models/{model.pk}/versions/**")
    assert page.problems.items == []
