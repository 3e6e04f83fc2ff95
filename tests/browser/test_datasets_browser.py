"""Datasets in real Chromium: upload a CSV through the form, watch it become ready, see the chart."""

import pytest

from apps.datasets.models import Dataset
from tests.browser.test_smoke import _log_in
from tests.datasets.builders import iris_like_rows, write_csv

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True, serialized_rollback=True)]


def test_upload_a_csv_and_see_its_preview(page, live_server, world, tmp_path, inline_tasks):
    csv = write_csv(tmp_path / "flowers.csv", ["sepal", "petal", "stem", "species"], iris_like_rows(10))
    _log_in(page, live_server.url, "alice")

    page.goto(f"{live_server.url}/datasets/")
    page.click("text=Create the first dataset")
    page.fill("#id_name", "flowers")
    page.select_option("#id_task", "tabular_classification")
    page.set_input_files("#id_file", str(csv))
    page.click("#dataset-form button[type=submit]")

    dataset_url = f"{live_server.url}/datasets/{{}}/"
    page.wait_for_url(
        lambda url: url.startswith(f"{live_server.url}/datasets/") and url.rstrip("/").split("/")[-1].isdigit()
    )
    dataset = Dataset.objects.get(name="flowers")
    assert page.url == dataset_url.format(dataset.pk)
    page.wait_for_selector("#preview .plotly-chart .main-svg")  # plotly drew the class counts
    assert page.locator("#versions-table .badge").first.inner_text() == "ready"
    assert "setosa" in page.locator("#sample-rows").inner_text()
    assert page.problems.items == []


def test_bundled_digits_show_a_grid_of_images(page, live_server, world, inline_tasks):
    _log_in(page, live_server.url, "alice")

    page.goto(f"{live_server.url}/datasets/new/")
    page.fill("#id_name", "digits")
    page.select_option("#id_task", "image_classification")
    page.check("input[name=source][value=bundled]")
    assert page.locator(".source-upload").is_hidden()
    page.select_option("#id_bundled", "digits")
    page.click("#dataset-form button[type=submit]")

    page.wait_for_selector("img.preview-grid")
    loaded = page.eval_on_selector("img.preview-grid", "img => img.complete && img.naturalWidth > 0")
    assert loaded
    assert page.problems.items == []
