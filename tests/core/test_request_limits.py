"""Request bodies are bounded before anything reads them; only upload views take large ones."""

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile


@pytest.fixture
def small_limit(settings):
    settings.LEPTON_MAX_REQUEST_BYTES = 10_000


def test_an_oversized_json_body_is_refused_before_parsing(api, db, small_limit):
    body = '{"username": "x", "password": "' + "a" * 20_000 + '"}'

    response = api.generic("POST", "/api/v1/auth/tokens/", body, content_type="application/json")

    assert response.status_code == 413
    assert response.json()["error"]["code"] == "request_too_large"


def test_a_file_sent_to_a_view_that_takes_none_is_refused(api, db, small_limit):
    response = api.post(
        "/api/v1/auth/tokens/",
        {"username": "x", "password": "y", "junk": SimpleUploadedFile("a.bin", b"\0" * 50_000)},
        format="multipart",
    )

    assert response.status_code == 413


def test_upload_views_take_bodies_above_the_small_limit(api_as, world, small_limit, run_tasks):
    from apps.datasets.models import Dataset

    dataset = Dataset.objects.create(team=world.acme, name="d", task="tabular_classification")
    csv = b"a,b,y\n" + b"1.5,2.5,x\n3.5,4.5,y\n" * 2000  # ~40 KB

    response = api_as(world.bob).post(
        f"/api/v1/datasets/{dataset.pk}/versions/", {"file": SimpleUploadedFile("d.csv", csv)}, format="multipart"
    )

    assert response.status_code == 202


def test_pages_answer_413_too(client, world, small_limit):
    client.force_login(world.alice)

    response = client.post("/teams/acme/rename/", {"name": "x" * 20_000})

    assert response.status_code == 413
