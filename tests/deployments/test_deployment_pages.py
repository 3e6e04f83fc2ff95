"""The deployment pages: list with 24-hour figures, create, the page's chart, "try it", keys, pause, switch."""

import io
import json
import re

import numpy as np
from django.core.files.uploadedfile import SimpleUploadedFile
from PIL import Image

from apps.deployments import stats
from apps.deployments.models import Deployment, DeploymentKey
from apps.registry.services import alias_set
from tests.deployments.conftest import own_probabilities, raw_test_samples
from tests.queries import assert_queries_constant


def test_list_shows_what_each_deployment_serves_and_its_requests(page_as, world, iris_model, iris_deployment):
    model, version = iris_model
    alias_set(actor=world.bob, model=model, name="production", version=version)
    Deployment.objects.create(team=world.acme, name="follower", model=model, alias="production")
    for latency in (2.0, 3.0, 40.0):
        stats.record(iris_deployment.pk, latency, error=latency > 10)

    html = page_as(world.vera).get("/deployments/").content.decode()

    assert "iris-mlp v1" in html
    assert "production</span> → v1" in html
    row = re.search(rf'<tr data-deployment="{iris_deployment.pk}">(.*?)</tr>', html, re.S).group(1)
    assert re.findall(r'<td class="text-end">([^<]*)</td>', row)[:2] == ["3", "1"]
    assert 'id="deployment-form"' not in html  # a viewer cannot deploy


def test_list_page_runs_a_constant_number_of_queries(page_as, world, iris_model):
    model, version = iris_model
    client = page_as(world.bob)
    names = iter(range(100))

    def add():
        for _ in range(3):
            deployment = Deployment.objects.create(
                team=world.acme, name=f"d{next(names)}", model=model, version=version
            )
            stats.record(deployment.pk, 1.0, error=False)

    add()
    assert_queries_constant(lambda: client.get("/deployments/"), add, at_most=16)


def test_create_from_the_list_page(page_as, world, iris_model):
    model, _ = iris_model
    client = page_as(world.bob)
    form = client.get("/deployments/").content.decode()
    assert f'value="v:{model.pk}:1"' in form

    response = client.post("/deployments/new/", {"name": "iris", "target": f"v:{model.pk}:1"})

    deployment = Deployment.objects.get(name="iris")
    assert response.status_code == 302
    assert response["Location"] == f"/deployments/{deployment.pk}/"
    response = client.post("/deployments/new/", {"name": "iris", "target": f"v:{model.pk}:1"})
    assert response.status_code == 409
    assert "already has a deployment named" in response.content.decode()
    response = page_as(world.vera).post("/deployments/new/", {"name": "v", "target": f"v:{model.pk}:1"})
    assert response.status_code == 403


def test_page_shows_the_chart_once_requests_arrive(page_as, world, iris_deployment):
    client = page_as(world.bob)
    assert "No requests in the last hour" in client.get(f"/deployments/{iris_deployment.pk}/").content.decode()
    stats.record(iris_deployment.pk, 4.0, error=False)
    html = client.get(f"/deployments/{iris_deployment.pk}/").content.decode()
    assert 'data-figure="latency-chart"' in html
    assert f"/api/v1/deployments/{iris_deployment.pk}/predict" in html
    partial = client.get(f"/deployments/{iris_deployment.pk}/stats/").content.decode()
    assert 'data-stat="requests">1<' in partial


def test_try_it_with_feature_lines(page_as, world, iris, iris_deployment):
    raw = raw_test_samples(iris, 2)
    lines = "\n".join(", ".join(str(v) for v in row) for row in raw.tolist())
    client = page_as(world.vera)

    response = client.post(f"/deployments/{iris_deployment.pk}/try/", {"features": lines, "k": "1"})

    assert response.status_code == 200
    html = response.content.decode()
    expected = own_probabilities(iris_deployment.version, raw).argmax(dim=1)
    shown = re.findall(r'data-class="(\d+)"', html)
    assert [int(i) for i in shown] == expected.tolist()
    assert "Answered by v1" in html
    assert stats.window(iris_deployment.pk, minutes=1)[1].requests == 1  # counted like an API request


def test_try_it_names_the_bad_value(page_as, world, iris_deployment):
    client = page_as(world.bob)
    response = client.post(f"/deployments/{iris_deployment.pk}/try/", {"features": "1, 2, 3, 4\n1, x, 3, 4"})
    assert response.status_code == 400
    assert "features: line 2: &#x27;x&#x27; is not a number" in response.content.decode()
    response = client.post(f"/deployments/{iris_deployment.pk}/try/", {"features": "1, 2, 3"})
    assert "inputs: each sample must have shape [4]; got [3]" in response.content.decode()


def test_try_it_with_a_drawing_or_an_image(page_as, world, digits, digits_deployment):
    client = page_as(world.bob)
    sample = raw_test_samples(digits, 1)[0]  # (1, 8, 8)
    expected = int(own_probabilities(digits_deployment.version, sample[None]).argmax())
    html = client.get(f"/deployments/{digits_deployment.pk}/").content.decode()
    assert 'id="draw-canvas"' in html
    assert 'data-height="8"' in html

    drawn = client.post(f"/deployments/{digits_deployment.pk}/try/", {"pixels": json.dumps(sample.tolist()), "k": "3"})
    buffer = io.BytesIO()
    Image.fromarray(sample[0].astype(np.uint8), mode="L").resize((32, 32), Image.Resampling.NEAREST).save(buffer, "PNG")
    uploaded = client.post(
        f"/deployments/{digits_deployment.pk}/try/",
        {"image": SimpleUploadedFile("digit.png", buffer.getvalue(), content_type="image/png"), "k": "3"},
    )

    assert re.findall(r'data-class="(\d+)"', drawn.content.decode())[0] == str(expected)
    assert uploaded.status_code == 200
    assert len(re.findall(r'data-class="(\d+)"', uploaded.content.decode())) == 3


def test_a_key_is_shown_once_and_can_be_revoked(page_as, world, iris_deployment):
    client = page_as(world.bob)
    response = client.post(f"/deployments/{iris_deployment.pk}/keys/", {"name": "shop"})
    secret = re.search(r'<code id="new-key"[^>]*>(lepd_[^<]+)</code>', response.content.decode()).group(1)
    key = DeploymentKey.objects.get()
    assert key.prefix == secret[:13]
    assert secret not in client.get(f"/deployments/{iris_deployment.pk}/").content.decode()

    response = client.post(f"/deployments/{iris_deployment.pk}/keys/{key.pk}/revoke/")
    assert response.status_code == 302
    key.refresh_from_db()
    assert key.revoked_at is not None
    assert page_as(world.vera).post(f"/deployments/{iris_deployment.pk}/keys/", {"name": "x"}).status_code == 403


def test_pause_resume_and_switch_to_an_alias(page_as, world, iris_model, iris_deployment):
    model, version = iris_model
    alias_set(actor=world.bob, model=model, name="production", version=version)
    client = page_as(world.bob)

    client.post(f"/deployments/{iris_deployment.pk}/status/", {"status": "paused"})
    assert 'id="resume"' in client.get(f"/deployments/{iris_deployment.pk}/").content.decode()
    client.post(f"/deployments/{iris_deployment.pk}/status/", {"status": "active"})
    response = client.post(f"/deployments/{iris_deployment.pk}/target/", {"target": f"a:{model.pk}:production"})

    assert response.status_code == 302
    iris_deployment.refresh_from_db()
    assert (iris_deployment.status, iris_deployment.version, iris_deployment.alias) == ("active", None, "production")
    response = page_as(world.vera).post(f"/deployments/{iris_deployment.pk}/status/", {"status": "paused"})
    assert response.status_code == 403


def test_delete_from_the_page(page_as, world, iris_deployment):
    response = page_as(world.alice).post(f"/deployments/{iris_deployment.pk}/delete/")
    assert response.status_code == 302
    assert not Deployment.objects.exists()


def test_operators_see_deployments_and_key_prefixes_in_the_admin(client, world, iris_deployment):
    from apps.deployments.services import key_create
    from tests.factories import UserFactory

    key, secret = key_create(actor=world.bob, deployment=iris_deployment, name="shop")
    stats.record(iris_deployment.pk, 1.0, error=False)
    client.force_login(UserFactory(username="root", is_staff=True, is_superuser=True))
    for path in (
        "/admin/deployments/deployment/",
        f"/admin/deployments/deployment/{iris_deployment.pk}/change/",
        "/admin/deployments/deploymentkey/",
        f"/admin/deployments/deploymentkey/{key.pk}/change/",
    ):
        response = client.get(path)
        assert response.status_code == 200, path
        html = response.content.decode()
        assert secret not in html
        assert key.key_hash not in html
    assert key.prefix in client.get("/admin/deployments/deploymentkey/").content.decode()
    assert client.get("/admin/deployments/deploymentkey/add/").status_code == 403
