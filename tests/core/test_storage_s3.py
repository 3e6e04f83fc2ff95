"""Artifacts on S3 (a real S3 HTTP server, moto's, on loopback): stored, read through a bounded
local cache, downloaded by users through presigned URLs, deleted with what they belong to."""

import hashlib
import os
import subprocess
import sys
import time
import urllib.request

import pytest
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.urls import reverse

from apps.core.storage import cache_bytes, delete_stored, local_path, reading, scratch_path, store_file
from lepton_web.env import env_s3_options
from tests.datasets.builders import class_folders, image_zip
from tests.factories import bearer, dataset_with_version, model_with_version
from tests.processes import ROOT

MB = 1024**2


def _stored(name: str, size: int, fill: bytes = b"x") -> str:
    with scratch_path() as local:
        local.write_bytes(fill * size)
        return store_file(local, name)


def test_a_stored_file_is_an_object_its_read_a_cached_copy_and_its_delete_removes_both(s3_storage):
    name = _stored("models/1/2/weights.safetensors", 6 * MB)  # over the part size: a multipart upload
    assert s3_storage.object_keys() == [name]
    assert not (settings.MEDIA_ROOT / name).exists()
    path = local_path(name)
    assert path == settings.LEPTON_CACHE_DIR / name
    assert path.stat().st_size == 6 * MB
    delete_stored(name)
    assert s3_storage.object_keys() == []
    assert not path.exists()


def test_reading_a_missing_object_is_file_not_found_as_on_disk(s3_storage):
    with pytest.raises(FileNotFoundError):
        local_path("checkpoints/1/2/gone.pt")
    assert not (settings.LEPTON_CACHE_DIR / "checkpoints/1/2/gone.pt").exists()


def test_the_cache_stays_under_its_limit_over_a_run_touching_more_than_it(s3_storage, settings):
    settings.LEPTON_CACHE_MAX_BYTES = 3 * MB
    names = [_stored(f"datasets/1/{i}.safetensors", MB, bytes([65 + i])) for i in range(8)]
    held = []
    for _ in range(2):  # 16 reads of 8 MB in all through a 3 MB cache
        for i, name in enumerate(names):
            path = local_path(name)
            assert path.read_bytes() == bytes([65 + i]) * MB
            local_path(names[0])  # the first one is used all the time: least recently used never
            held.append(cache_bytes())
    assert max(held) <= 3 * MB
    assert (settings.LEPTON_CACHE_DIR / names[0]).exists()
    assert not (settings.LEPTON_CACHE_DIR / names[1]).exists()  # long unused: evicted


def test_a_copy_in_use_is_not_evicted(s3_storage, settings):
    settings.LEPTON_CACHE_MAX_BYTES = 2 * MB
    first, *others = [_stored(f"datasets/1/{i}.bin", MB) for i in range(4)]
    with reading(first) as path:
        for name in others:
            local_path(name)
        assert path.exists()  # the oldest, but held: the others went instead
        assert local_path(first) == path  # its holder may ask for it again (no lock against itself)
    assert cache_bytes() <= 2 * MB


FETCH = """
import os, sys
from apps.core.storage import local_path
print("ready", flush=True)
sys.stdin.readline()
path = local_path(sys.argv[1])
print(os.stat(path).st_ino, path.stat().st_size)
"""


def test_two_workers_fetching_one_file_at_once_download_it_once_and_both_read_it_whole(s3_storage, settings):
    name = _stored("checkpoints/1/7/last.pt", 24 * MB)
    env = {
        **os.environ,
        **s3_storage.env,
        "LEPTON_CACHE_DIR": str(settings.LEPTON_CACHE_DIR),
        "LEPTON_MEDIA_ROOT": str(settings.MEDIA_ROOT),
        "DJANGO_SETTINGS_MODULE": "lepton_web.settings",
    }
    launcher = "import sys; exec(sys.argv.pop(1))"  # settings and storage only: no app registry needed
    workers = [
        subprocess.Popen(
            [sys.executable, "-c", launcher, FETCH, name],
            cwd=ROOT,
            env=env,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        for _ in range(2)
    ]
    assert [worker.stdout.readline() for worker in workers] == ["ready\n"] * 2
    for worker in workers:  # both set up: let them fetch at the same moment
        worker.stdin.write("go\n")
        worker.stdin.flush()
    answers = [worker.communicate(timeout=120)[0].split() for worker in workers]
    assert [worker.returncode for worker in workers] == [0, 0]
    assert answers[0] == answers[1] == [str((settings.LEPTON_CACHE_DIR / name).stat().st_ino), str(24 * MB)]
    assert list((settings.LEPTON_CACHE_DIR / ".tmp").iterdir()) == []  # no half-written copy left


def test_a_download_is_a_redirect_to_a_presigned_url_of_the_bucket(s3_storage, world, api):
    _, version = dataset_with_version(world.acme)
    _, model_version, _ = model_with_version(world.acme, version)
    api.credentials(**bearer(world.alice))
    response = api.get(f"/api/v1/models/{model_version.model_id}/versions/{model_version.number}/download/")
    assert response.status_code == 302
    assert response["Location"].startswith(f"{s3_storage.endpoint}/{s3_storage.name}/")
    with urllib.request.urlopen(response["Location"], timeout=10) as answer:  # noqa: S310 (loopback)
        body = answer.read()
        assert f'filename="{model_version.model.name}-v1.safetensors"' in answer.headers["Content-Disposition"]
    stored = s3_storage.client.get_object(Bucket=s3_storage.name, Key=model_version.artifact)["Body"].read()
    assert hashlib.sha256(body).digest() == hashlib.sha256(stored).digest()
    api.credentials(**bearer(world.charlie))  # the outsider gets no URL at all
    assert api.get(f"/api/v1/models/{model_version.model_id}/versions/1/download/").status_code == 404


@pytest.mark.parametrize(
    ("env", "options"),
    [
        (
            {"LEPTON_STORAGE_URL": "s3://art?endpoint_url=http://127.0.0.1:9000&region=eu-west-1"},
            {"bucket_name": "art", "endpoint_url": "http://127.0.0.1:9000", "region_name": "eu-west-1"},
        ),
        (
            {"AWS_STORAGE_BUCKET_NAME": "named", "AWS_S3_REGION_NAME": "eu-west-1"},
            {"bucket_name": "named", "region_name": "eu-west-1"},
        ),
        ({}, None),  # the filesystem
    ],
)
def test_storage_settings_come_from_either_env_form(monkeypatch, env, options):
    for name in ("LEPTON_STORAGE_URL", "AWS_STORAGE_BUCKET_NAME", "AWS_S3_ENDPOINT_URL", "AWS_S3_REGION_NAME"):
        monkeypatch.delenv(name, raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    assert env_s3_options() == options


@pytest.mark.parametrize("url", ["https://bucket", "s3://", "s3://b?endpoint=http://x"])
def test_a_storage_url_that_is_not_understood_stops_the_start(monkeypatch, url):
    monkeypatch.setenv("LEPTON_STORAGE_URL", url)
    with pytest.raises(ImproperlyConfigured, match="LEPTON_STORAGE_URL"):
        env_s3_options()


@pytest.mark.django_db
def test_the_cleanup_command_removes_checkpoints_no_job_points_at_from_the_bucket(s3_storage, settings):
    from django.core.management import call_command

    settings.LEPTON_CHECKPOINT_RETENTION_HOURS = 0
    orphan = _stored("checkpoints/1/99/epoch-3.pt", 1024)
    time.sleep(1.1)  # S3 times its objects to the second: older than "now" for certain
    call_command("cleanup")
    assert orphan not in s3_storage.object_keys()


def test_an_image_datasets_preview_grid_is_served_by_django_and_its_download_is_presigned(
    s3_storage, world, api, tmp_path
):
    from django.core.files.uploadedfile import SimpleUploadedFile

    from apps.datasets import services
    from apps.datasets.models import Dataset

    dataset = Dataset.objects.create(team=world.acme, name="pets", task="image_classification")
    archive = image_zip(tmp_path / "pets.zip", class_folders(per_class=5)).read_bytes()
    uploaded = SimpleUploadedFile("pets.zip", archive, content_type="application/zip")
    version = services.version_upload(
        actor=world.bob, dataset=dataset, uploaded_file=uploaded, source_format=None, options={}
    )
    version = services.version_ingest(version)
    api.credentials(**bearer(world.bob))
    base = f"/api/v1/datasets/{dataset.pk}/versions/{version.number}"
    grid = api.get(
        reverse("api:dataset-version-preview-image", args=[dataset.pk, version.number])
    )  # shown in a page: the CSP keeps images to our own origin
    assert (grid.status_code, grid["Content-Type"]) == (200, "image/png")
    stored = s3_storage.client.get_object(Bucket=s3_storage.name, Key=version.preview_image)["Body"].read()
    assert b"".join(grid.streaming_content) == stored
    download = api.get(f"{base}/download/")
    assert download.status_code == 302
    assert download["Location"].startswith(f"{s3_storage.endpoint}/{s3_storage.name}/{version.artifact}?")
