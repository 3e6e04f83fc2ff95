"""Deployments in real Chromium: deploy from the list, try it with feature lines, draw a digit on the canvas."""

import json

import pytest

from apps.deployments.cache import MODELS
from apps.deployments.models import Deployment
from tests.browser.test_smoke import _log_in
from tests.factories import dataset_with_version, model_with_version

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True, serialized_rollback=True)]


@pytest.fixture(autouse=True)
def _empty_model_cache():
    MODELS.clear()
    yield
    MODELS.clear()


def test_deploy_a_version_and_try_it_with_features(page, live_server, world):
    iris = dataset_with_version(world.acme, bundled="iris", name="iris")[1]
    model, _, _ = model_with_version(world.acme, iris, name="iris-mlp", creator=world.bob)
    _log_in(page, live_server.url, "bob")

    page.goto(f"{live_server.url}/deployments/")
    page.fill("#deployment-form #id_name", "iris")
    page.select_option("#deployment-form #id_target", f"v:{model.pk}:1")
    page.click("#deployment-form button[type=submit]")
    deployment = Deployment.objects.get(name="iris")
    page.wait_for_url(f"{live_server.url}/deployments/{deployment.pk}/")

    page.fill("#try-features", "5.1, 3.5, 1.4, 0.2\n6.7, 3.0, 5.2, 2.3")
    page.click("#try-form button[type=submit]")
    page.wait_for_selector("#prediction [data-sample='1'] table.predictions")
    names = page.locator("#prediction [data-sample] tr.fw-semibold td[data-class]").all_inner_texts()
    assert len(names) == 2
    assert set(names) <= {"setosa", "versicolor", "virginica"}

    page.fill("#try-features", "5.1, 3.5")
    page.click("#try-form button[type=submit]")
    page.wait_for_selector("#prediction-error")
    assert "each sample must have shape [4]; got [2]" in page.locator("#prediction-error").inner_text()
    assert [p for p in page.problems.items if "400" not in p] == []  # the refused try answers 400, and shows why


def test_draw_a_digit_on_the_canvas_and_get_classes(page, live_server, world):
    digits = dataset_with_version(world.acme, bundled="digits", name="digits")[1]
    model, version, _ = model_with_version(
        world.acme, digits, spec={"family": "cnn_small"}, name="digits-cnn", creator=world.bob, steps=5
    )
    deployment = Deployment.objects.create(team=world.acme, name="digits", model=model, version=version)
    _log_in(page, live_server.url, "bob")
    page.goto(f"{live_server.url}/deployments/{deployment.pk}/")

    box = page.locator("#draw-canvas").bounding_box()
    x = box["x"] + box["width"] / 2
    page.mouse.move(x, box["y"] + 30)
    page.mouse.down()
    page.mouse.move(x, box["y"] + box["height"] / 2, steps=5)
    page.mouse.move(x, box["y"] + box["height"] - 30, steps=5)
    page.mouse.up()

    pixels = json.loads(page.locator("#pixels").input_value())
    assert len(pixels) == 1  # channels x height x width
    assert len(pixels[0]) == 8
    assert len(pixels[0][0]) == 8
    assert max(max(row) for row in pixels[0]) > 200  # the stroke, light on dark
    assert pixels[0][4][0] == 0
    page.select_option("#try-k", "3")
    page.click("#try-form button[type=submit]")
    page.wait_for_selector("#prediction table.predictions")
    assert page.locator("#prediction td[data-class]").count() == 3
    page.wait_for_selector(".plotly-chart[data-figure=latency-chart] .main-svg", timeout=20_000)  # polled in
    assert page.problems.items == []
