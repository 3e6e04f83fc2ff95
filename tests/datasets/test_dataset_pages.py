"""Dataset pages: list, create (plain form and htmx), detail with preview, live status, delete."""

from django.core.files.uploadedfile import SimpleUploadedFile

from apps.datasets.models import Dataset, DatasetVersion
from tests.datasets.builders import iris_like_rows, write_csv
from tests.factories import dataset_with_version
from tests.queries import assert_queries_constant


def test_list_shows_the_current_teams_datasets_only(page_as, world):
    dataset_with_version(world.acme, bundled="iris", name="acme-iris")
    dataset_with_version(world.globex, bundled="iris", name="globex-iris")

    html = page_as(world.vera).get("/datasets/").content.decode()

    assert "acme-iris" in html
    assert "globex-iris" not in html
    assert "New dataset" not in html  # viewers cannot create


def test_empty_list_says_what_to_do_next(page_as, world):
    html = page_as(world.bob).get("/datasets/").content.decode()

    assert "No datasets in Acme yet" in html
    assert 'href="/datasets/new/"' in html


def test_list_page_queries_do_not_grow_with_datasets(page_as, world):
    dataset_with_version(world.acme, bundled="iris", name="first")
    client = page_as(world.alice)

    def add():
        for n in range(5):
            dataset_with_version(world.acme, bundled="iris", name=f"iris-{n}")

    assert_queries_constant(lambda: client.get("/datasets/"), add, at_most=10)


def test_list_page_filters_by_name(page_as, world):
    dataset_with_version(world.acme, bundled="iris", name="iris-one")
    dataset_with_version(world.acme, bundled="wine", name="wine-one")

    html = page_as(world.alice).get("/datasets/", {"name": "wine"}).content.decode()

    assert "wine-one" in html
    assert "iris-one" not in html


def test_create_from_a_bundled_set_redirects_to_the_detail_page(page_as, world, run_tasks):
    client = page_as(world.bob)
    form = {"name": "digits", "task": "image_classification", "source": "bundled", "bundled": "digits", "seed": "0"}

    with run_tasks():
        response = client.post("/datasets/new/", form)

    dataset = Dataset.objects.get(name="digits")
    assert response["Location"] == f"/datasets/{dataset.pk}/"
    page = client.get(response["Location"]).content.decode()
    assert "Samples per class" in page
    assert f"/api/v1/datasets/{dataset.pk}/versions/1/preview.png" in page
    assert '"type":"bar"' in page.replace(" ", "")  # the plotly figure's JSON


def test_create_with_an_upload_through_htmx_answers_a_redirect_header(page_as, world, tmp_path, run_tasks):
    csv = write_csv(tmp_path / "f.csv", ["a", "b", "c", "y"], iris_like_rows(10)).read_bytes()
    form = {
        "name": "flowers",
        "task": "tabular_classification",
        "source": "upload",
        "seed": "3",
        "file": SimpleUploadedFile("f.csv", csv),
    }

    with run_tasks():
        response = page_as(world.bob).post("/datasets/new/", form, HTTP_HX_REQUEST="true")

    dataset = Dataset.objects.get(name="flowers")
    assert response.status_code == 204
    assert response["HX-Redirect"] == f"/datasets/{dataset.pk}/"
    version = dataset.versions.get()
    assert (version.status, version.split_seed) == ("ready", 3)


def test_create_form_errors_name_the_field_and_keep_the_form(page_as, world):
    response = page_as(world.bob).post(
        "/datasets/new/", {"name": "", "task": "tabular_classification", "source": "upload"}, HTTP_HX_REQUEST="true"
    )

    assert response.status_code == 400
    html = response.content.decode()
    assert "Name: This field is required." in html
    assert "File: Choose a file to upload." in html
    assert 'id="dataset-form"' in html
    assert "<html" not in html
    assert not Dataset.objects.exists()


def test_create_page_refuses_an_upload_over_the_limit(page_as, world, settings):
    settings.LEPTON_MAX_UPLOAD_BYTES = 1000
    form = {
        "name": "big",
        "task": "tabular_classification",
        "source": "upload",
        "file": SimpleUploadedFile("big.csv", b"a,y\n" + b"1,x\n" * 2000),
    }

    response = page_as(world.bob).post("/datasets/new/", form)

    assert response.status_code == 413
    assert "larger than the limit of 1000 B" in response.content.decode()
    assert not Dataset.objects.exists()


def test_viewer_cannot_create_on_the_page(page_as, world):
    response = page_as(world.vera).post(
        "/datasets/new/", {"name": "x", "task": "tabular_classification", "source": "bundled", "bundled": "iris"}
    )

    assert response.status_code == 403
    assert "You must be a member" in response.content.decode()
    assert not Dataset.objects.exists()


def test_create_checks_the_csrf_token_only_after_limiting_the_upload(world, settings, monkeypatch):
    """The CSRF check reads the body; the size limit must already be in place when it does."""
    from django.test import Client

    from apps.core import uploads
    from apps.datasets import views

    settings.LEPTON_MAX_UPLOAD_BYTES = 5_000
    handlers = []
    real = uploads.limit_uploads
    monkeypatch.setattr(views, "limit_uploads", lambda request: handlers.append(real(request)) or handlers[-1])
    strict = Client(enforce_csrf_checks=True)
    strict.force_login(world.bob)
    strict.cookies["csrftoken"] = "a" * 32  # a cookie, but no token in the form: the check reads the body
    big = SimpleUploadedFile("big.csv", b"a,y\n" + b"1,x\n" * 20_000)  # 80 KB, no CSRF token

    response = strict.post(
        "/datasets/new/", {"name": "x", "task": "tabular_classification", "source": "upload", "file": big}
    )

    assert response.status_code == 403
    assert handlers[0].exceeded
    assert handlers[0].received <= 5_000 + 64 * 1024  # stopped at the limit, not after 80 KB
    assert not Dataset.objects.exists()


def test_detail_of_a_table_shows_statistics_and_rows(page_as, world):
    dataset, _ = dataset_with_version(world.acme, bundled="wine", name="wine")

    html = page_as(world.vera).get(f"/datasets/{dataset.pk}/").content.decode()

    assert 'id="feature-stats"' in html
    assert "alcohol" in html
    assert 'id="sample-rows"' in html
    assert "Delete" not in html  # viewers get no write buttons


def test_adding_a_version_on_the_detail_page(page_as, world, run_tasks):
    dataset, _ = dataset_with_version(world.acme, bundled="iris", name="iris", creator=world.bob)

    with run_tasks():
        response = page_as(world.bob).post(
            f"/datasets/{dataset.pk}/versions/", {"source": "bundled", "bundled": "iris", "seed": "5"}
        )

    assert response["Location"] == f"/datasets/{dataset.pk}/?version=2"
    assert dataset.versions.get(number=2).split_seed == 5


def test_status_partial_polls_while_processing_and_reloads_when_done(page_as, world):
    from apps.jobs.models import Job

    dataset, version = dataset_with_version(world.acme, bundled="iris", name="iris")
    client = page_as(world.alice)
    url = f"/datasets/{dataset.pk}/versions/1/status/"
    job = Job.objects.create(
        team=world.acme, kind="ingest", spec={}, status="running", progress=0.42, progress_step="parsing"
    )
    DatasetVersion.objects.filter(pk=version.pk).update(status="processing", produced_by_job=job.pk)

    polling = client.get(url, HTTP_HX_REQUEST="true")
    DatasetVersion.objects.filter(pk=version.pk).update(status="ready")
    finished = client.get(f"{url}?was=processing", HTTP_HX_REQUEST="true")

    assert 'hx-trigger="every 1s"' in polling.content.decode()
    assert "42%" in polling.content.decode()
    assert "parsing" in polling.content.decode()
    assert f'running by <a href="/jobs/{job.pk}/">job #{job.pk}</a>' in polling.content.decode()
    assert "HX-Refresh" not in polling
    assert finished["HX-Refresh"] == "true"
    assert "hx-trigger" not in finished.content.decode()


def test_a_failed_version_shows_its_error(page_as, world):
    dataset, version = dataset_with_version(world.acme, bundled="iris", name="iris")
    DatasetVersion.objects.filter(pk=version.pk).update(status="failed", error="row 3, column 'a': the cell is empty")

    html = page_as(world.alice).get(f"/datasets/{dataset.pk}/").content.decode()

    assert "row 3, column &#x27;a&#x27;: the cell is empty" in html


def test_delete_from_the_page(page_as, world, run_tasks):
    dataset, _ = dataset_with_version(world.acme, bundled="iris", name="iris", creator=world.bob)

    with run_tasks():
        response = page_as(world.bob).post(f"/datasets/{dataset.pk}/delete/")

    assert response["Location"] == "/datasets/"
    assert not Dataset.objects.exists()


def test_a_viewer_cannot_delete_from_the_page(page_as, world):
    dataset, _ = dataset_with_version(world.acme, bundled="iris", name="iris")

    response = page_as(world.vera).post(f"/datasets/{dataset.pk}/delete/")

    assert response.status_code == 403
    assert Dataset.objects.filter(pk=dataset.pk).exists()
