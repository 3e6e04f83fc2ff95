"""The datasets API: create, upload each format, safety at the door, quotas, preview, download, delete."""

import io
import json

import numpy as np
import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from safetensors import safe_open

from apps.accounts.models import TeamQuota, UsageRecord
from apps.accounts.quotas import team_usage
from apps.datasets.models import Dataset, DatasetVersion
from tests.datasets.builders import class_folders, image_zip, iris_like_rows, symlink_zip, write_csv
from tests.factories import MembershipFactory, TeamFactory, dataset_with_version
from tests.queries import assert_queries_constant

DATASETS = "/api/v1/datasets/"


def _csv_bytes(tmp_path, rows=None) -> bytes:
    return write_csv(tmp_path / "flowers.csv", ["a", "b", "c", "species"], rows or iris_like_rows(10)).read_bytes()


def _files_under(root):
    return sorted(str(p.relative_to(root)) for p in root.rglob("*") if p.is_file()) if root.exists() else []


@pytest.fixture
def tabular(world):
    return Dataset.objects.create(team=world.acme, name="flowers", task="tabular_classification", created_by=world.bob)


@pytest.fixture
def images(world):
    return Dataset.objects.create(team=world.acme, name="pets", task="image_classification", created_by=world.bob)


def _upload(client, dataset, name, data, **options):
    payload = {"file": SimpleUploadedFile(name, data), **options}
    return client.post(f"{DATASETS}{dataset.pk}/versions/", payload, format="multipart")


# --- datasets ----------------------------------------------------------------------------------


def test_member_creates_a_dataset_in_their_team(api_as, world):
    response = api_as(world.bob).post(
        DATASETS, {"team": "acme", "name": "flowers", "task": "tabular_classification"}, format="json"
    )

    assert response.status_code == 201
    assert response.json()["team"] == "acme"
    assert response.json()["version_count"] == 0


def test_viewer_cannot_create_a_dataset(api_as, world):
    response = api_as(world.vera).post(
        DATASETS, {"team": "acme", "name": "flowers", "task": "tabular_classification"}, format="json"
    )

    assert response.status_code == 403
    assert not Dataset.objects.exists()


def test_creating_in_another_teams_name_is_404(api_as, world):
    response = api_as(world.bob).post(
        DATASETS, {"team": "globex", "name": "x", "task": "tabular_classification"}, format="json"
    )

    assert response.status_code == 404


def test_dataset_names_are_unique_in_a_team(api_as, world, tabular):
    response = api_as(world.bob).post(
        DATASETS, {"team": "acme", "name": "flowers", "task": "tabular_classification"}, format="json"
    )

    assert response.status_code == 409
    assert response.json()["error"]["fields"] == {"name": ["Already taken."]}


def test_list_filters_by_team_task_and_name(api_as, world):
    dataset_with_version(world.acme, bundled="iris", name="iris-a")
    dataset_with_version(world.acme, bundled="digits", name="digits-a")
    dataset_with_version(world.globex, bundled="iris", name="iris-globex")
    client = api_as(world.alice)

    everything = client.get(DATASETS).json()
    images = client.get(DATASETS, {"task": "image_classification"}).json()
    named = client.get(DATASETS, {"name": "IRIS", "team": "acme"}).json()

    assert [d["name"] for d in everything["results"]] == ["digits-a", "iris-a"]
    assert [d["name"] for d in images["results"]] == ["digits-a"]
    assert [d["name"] for d in named["results"]] == ["iris-a"]
    assert everything["results"][1]["latest_status"] == "ready"
    assert everything["results"][1]["total_bytes"] > 0


def test_list_refuses_unknown_filters(api_as, world):
    response = api_as(world.alice).get(DATASETS, {"team__memberships__user__password": "x"})

    assert response.status_code == 400


def test_list_queries_do_not_grow_with_datasets(api_as, world):
    dataset_with_version(world.acme, bundled="iris", name="first")
    client = api_as(world.alice)

    def add():
        for n in range(5):
            dataset_with_version(world.acme, bundled="iris", name=f"iris-{n}")

    assert_queries_constant(lambda: client.get(DATASETS), add, at_most=5)


def test_versions_list_queries_do_not_grow_with_versions(api_as, world, tabular, run_tasks):
    client = api_as(world.alice)

    def add(count=4):
        for _ in range(count):
            with run_tasks():
                client.post(f"{DATASETS}{tabular.pk}/versions/", {"bundled": "iris"}, format="json")

    add(1)  # every version has its ingest job: the jobs are looked up in one query for the page
    assert_queries_constant(lambda: client.get(f"{DATASETS}{tabular.pk}/versions/"), add, at_most=7)


# --- versions: every format through the API --------------------------------------------------


def test_csv_upload_is_ingested_by_a_worker(api_as, world, tabular, tmp_path, run_tasks):
    client = api_as(world.bob)
    with run_tasks():
        response = _upload(client, tabular, "flowers.csv", _csv_bytes(tmp_path))

    assert response.status_code == 202
    assert response.json()["status"] == "processing"
    version = client.get(f"{DATASETS}{tabular.pk}/versions/1/").json()
    assert version["status"] == "ready"
    assert version["class_names"] == ["setosa", "versicolor", "virginica"]
    assert version["class_counts"] == [10, 10, 10]
    assert version["sample_shape"] == [3]
    assert (version["progress"], version["progress_message"]) == (1.0, "ready")
    assert version["job"]["kind"] == "ingest"
    assert (version["job"]["status"], version["job"]["attempts"], version["job"]["node"]) == ("succeeded", 1, "cpu-1")


def test_npz_upload(api_as, world, tabular, run_tasks):
    buffer = io.BytesIO()
    np.savez(buffer, X=np.random.default_rng(0).normal(size=(40, 6)), y=np.repeat([0, 1], 20))
    with run_tasks():
        _upload(api_as(world.bob), tabular, "data.npz", buffer.getvalue())

    assert DatasetVersion.objects.get(dataset=tabular).sample_shape == [6]


def test_image_zip_upload_with_chosen_geometry(api_as, world, images, tmp_path, run_tasks):
    archive = image_zip(tmp_path / "pets.zip", class_folders(("cat", "dog"), per_class=5)).read_bytes()
    with run_tasks():
        response = _upload(api_as(world.bob), images, "pets.zip", archive, height=16, width=12, channels=3)

    assert response.status_code == 202
    version = DatasetVersion.objects.get(dataset=images)
    assert version.status == "ready"
    assert version.sample_shape == [3, 16, 12]


def test_bundled_version_from_json(api_as, world, images, run_tasks):
    with run_tasks():
        response = api_as(world.bob).post(f"{DATASETS}{images.pk}/versions/", {"bundled": "digits"}, format="json")

    assert response.status_code == 202
    assert DatasetVersion.objects.get(dataset=images).sample_count == 1797


def test_each_upload_makes_the_next_version(api_as, world, tabular, tmp_path, run_tasks):
    client = api_as(world.bob)
    with run_tasks():
        numbers = [_upload(client, tabular, "f.csv", _csv_bytes(tmp_path)).json()["number"] for _ in range(3)]

    assert numbers == [1, 2, 3]


@pytest.mark.parametrize(
    ("options", "field"),
    [
        ({"channels": 2}, "channels"),
        ({"format": "parquet"}, "format"),
        ({"height": 0}, "height"),
    ],
)
def test_bad_options_answer_400_naming_the_field(api_as, world, images, tmp_path, options, field):
    archive = image_zip(tmp_path / "p.zip", class_folders()).read_bytes()

    response = _upload(api_as(world.bob), images, "p.zip", archive, **options)

    assert response.status_code == 400
    assert field in response.json()["error"]["fields"]
    assert not DatasetVersion.objects.exists()


def test_a_csv_for_an_image_dataset_is_refused(api_as, world, images, tmp_path):
    response = _upload(api_as(world.bob), images, "f.csv", _csv_bytes(tmp_path))

    assert response.status_code == 400
    assert response.json()["error"]["message"] == "format: CSV files make tabular datasets; this dataset is for images"


def test_neither_or_both_file_and_bundled_is_refused(api_as, world, tabular):
    response = api_as(world.bob).post(f"{DATASETS}{tabular.pk}/versions/", {}, format="json")

    assert response.status_code == 400
    assert "file" in response.json()["error"]["fields"]


def test_viewer_cannot_upload(api_as, world, tabular, tmp_path, settings):
    response = _upload(api_as(world.vera), tabular, "f.csv", _csv_bytes(tmp_path))

    assert response.status_code == 403
    assert not DatasetVersion.objects.exists()
    assert _files_under(settings.MEDIA_ROOT) == []


# --- safety at the door ----------------------------------------------------------------------------


@pytest.mark.parametrize("extra", [10_000, 2_000_000], ids=["cut-while-streaming", "refused-by-length"])
def test_an_upload_over_the_size_limit_is_refused_while_streaming(api_as, world, tabular, settings, extra):
    settings.LEPTON_MAX_UPLOAD_BYTES = 100_000
    data = b"a,b,y\n" + b"1,2,x\n" * ((100_000 + extra) // 6)

    response = _upload(api_as(world.bob), tabular, "big.csv", data)

    assert response.status_code == 413
    assert response.json()["error"] == {
        "code": "upload_too_large",
        "message": "file: the upload is larger than the limit of 97.7 KiB",
        "fields": {"file": ["Larger than 97.7 KiB."]},
    }
    assert not DatasetVersion.objects.exists()
    assert _files_under(settings.MEDIA_ROOT) == []


def test_a_bad_csv_fails_the_version_with_its_message_and_leaves_no_file(
    api_as, world, tabular, tmp_path, settings, run_tasks
):
    rows = iris_like_rows(10)
    rows[4][2] = "oops"
    with run_tasks():
        _upload(api_as(world.bob), tabular, "bad.csv", _csv_bytes(tmp_path, rows))

    version = DatasetVersion.objects.get(dataset=tabular)
    assert version.status == "failed"
    assert version.error == "row 5, column 'c': 'oops' is not a number"
    assert (version.artifact, version.upload, version.sha256, version.bytes, version.sample_count) == ("", "", "", 0, 0)
    assert _files_under(settings.MEDIA_ROOT) == []
    assert team_usage(world.acme).storage_bytes == 0


def test_a_hostile_zip_fails_the_version_and_leaves_no_file(api_as, world, images, tmp_path, settings, run_tasks):
    files = class_folders()
    files["../../etc/x.png"] = files["pets/cat/img0.png"]
    with run_tasks():
        _upload(api_as(world.bob), images, "evil.zip", image_zip(tmp_path / "e.zip", files).read_bytes())

    version = DatasetVersion.objects.get(dataset=images)
    assert version.status == "failed"
    assert version.error == "zip entry '../../etc/x.png' contains '..'; it was refused"
    assert _files_under(settings.MEDIA_ROOT) == []


def test_an_upload_past_the_storage_quota_is_refused_with_the_quota(api_as, world, tabular, tmp_path, settings):
    TeamQuota.objects.filter(team=world.acme).update(storage_bytes=500)

    response = _upload(api_as(world.bob), tabular, "f.csv", _csv_bytes(tmp_path))

    assert response.status_code == 403
    error = response.json()["error"]
    assert error["code"] == "quota_exceeded"
    assert error["message"].startswith("team quota: storage 0 B of 500 B used; this needs")
    assert not DatasetVersion.objects.exists()
    assert _files_under(settings.MEDIA_ROOT) == []


def test_a_version_whose_file_outgrows_the_quota_fails_with_the_quota(
    api_as, world, images, tmp_path, settings, run_tasks
):
    archive = image_zip(tmp_path / "p.zip", class_folders(per_class=10, size=(32, 32))).read_bytes()
    TeamQuota.objects.filter(team=world.acme).update(
        storage_bytes=len(archive) + 100
    )  # upload fits; 20x32x32 bytes do not
    with run_tasks():
        _upload(api_as(world.bob), images, "p.zip", archive)

    version = DatasetVersion.objects.get(dataset=images)
    assert version.status == "failed"
    assert version.error.startswith("team quota: storage 0 B of")
    assert _files_under(settings.MEDIA_ROOT) == []


def test_storage_is_recorded_when_ready_and_given_back_on_delete(api_as, world, tabular, tmp_path, settings, run_tasks):
    client = api_as(world.bob)
    with run_tasks():
        _upload(client, tabular, "f.csv", _csv_bytes(tmp_path))
    version = DatasetVersion.objects.get(dataset=tabular)
    assert team_usage(world.acme).storage_bytes == version.bytes > 0
    assert UsageRecord.objects.filter(source=f"dataset_version:{version.pk}").count() == 1

    with run_tasks():  # files go once the deletion commits
        assert client.delete(f"{DATASETS}{tabular.pk}/").status_code == 204

    assert team_usage(world.acme).storage_bytes == 0
    assert _files_under(settings.MEDIA_ROOT) == []


# --- reading ----------------------------------------------------------------------------------------------


def test_tabular_preview_has_statistics_rows_and_a_chart(api_as, world):
    dataset, _ = dataset_with_version(world.acme, bundled="wine")

    body = api_as(world.vera).get(f"{DATASETS}{dataset.pk}/versions/1/preview/").json()

    assert len(body["features"]) == 13
    assert set(body["features"][0]) == {"name", "min", "max", "mean", "std", "missing"}
    assert len(body["rows"]) == 10
    assert body["class_counts"] == {"class_0": 59, "class_1": 71, "class_2": 48}
    assert body["chart"]["data"][0]["type"] == "bar"


def test_image_preview_points_at_a_grid_image(api_as, world):
    dataset, _ = dataset_with_version(world.acme, bundled="digits")
    client = api_as(world.vera)

    body = client.get(f"{DATASETS}{dataset.pk}/versions/1/preview/").json()
    image = client.get(body["grid_url"])

    assert body["grid"]["classes"] == [str(d) for d in range(10)]
    assert image["Content-Type"] == "image/png"
    assert b"".join(image.streaming_content)[:8] == b"\x89PNG\r\n\x1a\n"


def test_a_processing_version_has_no_preview_yet(api_as, world, tabular, tmp_path):
    _upload(api_as(world.bob), tabular, "f.csv", _csv_bytes(tmp_path))  # no worker runs

    response = api_as(world.bob).get(f"{DATASETS}{tabular.pk}/versions/1/preview/")

    assert response.status_code == 404
    assert response.json()["error"]["message"] == "Version 1 is processing; it has no data yet."


def test_download_is_an_attachment_in_safetensors_format(api_as, world, tmp_path):
    dataset, _version = dataset_with_version(world.acme, bundled="iris", name="iris")

    response = api_as(world.vera).get(f"{DATASETS}{dataset.pk}/versions/1/download/")

    assert response["Content-Disposition"] == 'attachment; filename="iris-v1.safetensors"'
    path = tmp_path / "d.safetensors"
    path.write_bytes(b"".join(response.streaming_content))
    with safe_open(path, framework="np") as handle:
        assert handle.get_tensor("features").shape == (150, 4)
        assert json.loads(handle.metadata()["class_names"]) == ["setosa", "versicolor", "virginica"]


def test_only_admins_or_the_creator_delete_a_dataset(api_as, world, tabular):
    other_member = MembershipFactory(team=world.acme, role="member").user

    assert api_as(other_member).delete(f"{DATASETS}{tabular.pk}/").status_code == 403
    assert api_as(world.vera).delete(f"{DATASETS}{tabular.pk}/").status_code == 403
    assert api_as(world.adam).delete(f"{DATASETS}{tabular.pk}/").status_code == 204


def test_a_user_in_two_teams_sees_both_and_can_filter(api_as, world):
    lab = TeamFactory(slug="lab")
    MembershipFactory(user=world.alice, team=lab, role="owner")
    dataset_with_version(lab, bundled="iris", name="lab-iris")
    dataset_with_version(world.acme, bundled="iris", name="acme-iris")

    body = api_as(world.alice).get(DATASETS, {"team": "lab"}).json()

    assert [d["name"] for d in body["results"]] == ["lab-iris"]


def _hostile_inputs(tmp_path, bomb):
    good = class_folders()
    npz = io.BytesIO()
    np.savez(npz, X=np.array([{"x": 1}, None], dtype=object), y=np.array([0, 1]))
    bad_rows, nan_rows = iris_like_rows(5), iris_like_rows(5)
    bad_rows[1][0], nan_rows[2][1] = "abc", "NaN"
    return {
        "dotdot": (
            "images",
            "z.zip",
            image_zip(tmp_path / "a.zip", {**good, "../x.png": b"x"}).read_bytes(),
            "contains '..'",
        ),
        "backslash": (
            "images",
            "z.zip",
            image_zip(tmp_path / "b.zip", {**good, "pets\\x.png": b"x"}).read_bytes(),
            "backslash",
        ),
        "absolute": (
            "images",
            "z.zip",
            image_zip(tmp_path / "c.zip", {**good, "/x.png": b"x"}).read_bytes(),
            "absolute path",
        ),
        "symlink": (
            "images",
            "z.zip",
            symlink_zip(tmp_path / "d.zip", "pets/cat/l.png", "/etc/passwd").read_bytes(),
            "symbolic link",
        ),
        "bomb": ("images", "z.zip", bomb.read_bytes(), "would unpack to 1,073,741,824 bytes"),
        "not-images": (
            "images",
            "z.zip",
            image_zip(tmp_path / "e.zip", {**good, "pets/cat/x.txt": b"x"}).read_bytes(),
            "'pets/cat/x.txt'",
        ),
        "corrupt-image": (
            "images",
            "z.zip",
            image_zip(tmp_path / "f.zip", {**good, "pets/cat/bad.png": b"\x89PNG..."}).read_bytes(),
            "corrupt image: 'pets/cat/bad.png'",
        ),
        "csv-text": ("tabular", "f.csv", _csv_bytes(tmp_path, bad_rows), "row 2, column 'a': 'abc' is not a number"),
        "csv-nan": ("tabular", "f.csv", _csv_bytes(tmp_path, nan_rows), "row 3, column 'b': the cell is empty or NaN"),
        "npz-objects": ("tabular", "f.npz", npz.getvalue(), "object arrays are refused"),
    }


HOSTILE = [
    "dotdot",
    "backslash",
    "absolute",
    "symlink",
    "bomb",
    "not-images",
    "corrupt-image",
    "csv-text",
    "csv-nan",
    "npz-objects",
]


@pytest.fixture(scope="session")
def gib_bomb(tmp_path_factory):
    from tests.datasets.builders import zeros_zip

    return zeros_zip(tmp_path_factory.mktemp("api-bomb") / "bomb.zip", gib=1.0)


@pytest.mark.parametrize("case", HOSTILE)
def test_every_hostile_input_fails_its_version_clearly_and_leaves_no_file(
    api_as, world, tabular, images, tmp_path, settings, run_tasks, gib_bomb, case
):
    kind, name, data, expected = _hostile_inputs(tmp_path, gib_bomb)[case]
    dataset = images if kind == "images" else tabular

    with run_tasks():
        response = _upload(api_as(world.bob), dataset, name, data)

    assert response.status_code == 202
    version = DatasetVersion.objects.get(dataset=dataset)
    assert version.status == "failed"
    assert expected in version.error
    assert (version.artifact, version.preview_image, version.upload, version.bytes) == ("", "", "", 0)
    assert _files_under(settings.MEDIA_ROOT) == []


def test_synthetic_parameters_are_checked_at_the_door(api_as, world, tabular):
    response = api_as(world.bob).post(
        f"{DATASETS}{tabular.pk}/versions/", {"bundled": "synthetic", "params": {"samples": 10**30}}, format="json"
    )

    assert response.status_code == 400
    assert "params" in response.json()["error"]["fields"]
    assert not DatasetVersion.objects.exists()


def test_a_quota_refusal_names_the_limit_for_scripts(api_as, world, tabular, tmp_path):
    TeamQuota.objects.filter(team=world.acme).update(storage_bytes=10)

    response = _upload(api_as(world.bob), tabular, "f.csv", _csv_bytes(tmp_path))

    assert list(response.json()["error"]["fields"]) == ["storage_bytes"]
