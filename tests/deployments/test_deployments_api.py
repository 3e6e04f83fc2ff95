"""The deployments API: CRUD and keys, predict (JSON and images), its 400s, alias switches, key scope,
throttling, request statistics and query counts."""

import io

import numpy as np
import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from PIL import Image

from apps.deployments.cache import MODELS
from apps.deployments.models import Deployment, RequestBucket
from apps.deployments.services import key_create
from apps.registry.models import VersionSource
from apps.registry.services import alias_set, version_from_weights
from tests.deployments.conftest import own_probabilities, raw_test_samples
from tests.factories import trained_module
from tests.queries import assert_queries_constant

DEPLOYMENTS = "/api/v1/deployments/"


def predict_url(deployment) -> str:
    return f"{DEPLOYMENTS}{deployment.pk}/predict"


def _probabilities_by_class(prediction: dict) -> dict[int, float]:
    return {score["index"]: score["probability"] for score in prediction["top_k"]}


# --- CRUD -------------------------------------------------------------------------------------------------


def test_create_a_deployment_of_a_version_and_read_it_back(api_as, world, iris_model):
    model, version = iris_model
    client = api_as(world.bob)

    response = client.post(DEPLOYMENTS, {"name": "iris", "model": model.pk, "version": 1}, format="json")

    assert response.status_code == 201, response.json()
    body = response.json()
    assert body["team"] == "acme"
    assert (body["model"], body["model_name"], body["version"], body["alias"]) == (model.pk, "iris-mlp", 1, None)
    assert body["serving_version"] == 1
    assert body["status"] == "active"
    assert body["predict_url"] == f"/api/v1/deployments/{body['id']}/predict"
    assert body["last_24h"] == {
        "requests": 0,
        "errors": 0,
        "mean_ms": None,
        "p50_ms": None,
        "p95_ms": None,
        "p99_ms": None,
    }
    assert client.get(f"{DEPLOYMENTS}{body['id']}/").json() == body


def test_create_refusals_name_the_field(api_as, world, iris_model):
    model, _ = iris_model
    client = api_as(world.bob)
    cases = [
        ({"name": "x", "model": model.pk, "version": 7}, "version", "version: model iris-mlp has no version 7."),
        ({"name": "x", "model": model.pk}, "version", "name either a version to serve or an alias"),
        ({"name": "x", "model": model.pk, "alias": "production"}, "alias", "has no alias 'production'"),
        ({"model": model.pk, "version": 1}, "name", "name: This field is required."),
    ]
    for body, field, message in cases:
        response = client.post(DEPLOYMENTS, body, format="json")
        assert response.status_code == 400, body
        assert message in response.json()["error"]["message"]
        assert field in response.json()["error"]["fields"]
    response = api_as(world.vera).post(DEPLOYMENTS, {"name": "x", "model": model.pk, "version": 1}, format="json")
    assert response.status_code == 403
    response = api_as(world.charlie).post(DEPLOYMENTS, {"name": "x", "model": model.pk, "version": 1}, format="json")
    assert response.status_code == 404


def test_patch_pauses_and_switches_targets_and_delete_removes(api_as, world, iris_model, iris_deployment):
    model, _ = iris_model
    alias_set(actor=world.bob, model=model, name="production", version=iris_deployment.version)
    client = api_as(world.bob)
    url = f"{DEPLOYMENTS}{iris_deployment.pk}/"

    assert client.patch(url, {"status": "paused"}, format="json").json()["status"] == "paused"
    body = client.patch(url, {"alias": "production", "name": "iris-prod"}, format="json").json()
    assert (body["name"], body["version"], body["alias"], body["serving_version"]) == (
        "iris-prod",
        None,
        "production",
        1,
    )
    response = client.patch(url, {"status": "asleep"}, format="json")
    assert response.status_code == 400
    assert response.json()["error"]["fields"] == {"status": ['"asleep" is not a valid choice.']}

    assert client.delete(url).status_code == 204
    assert not Deployment.objects.exists()


def test_list_filters_orders_and_refuses_unknown_parameters(api_as, world, iris_model, iris_deployment):
    model, version = iris_model
    Deployment.objects.create(team=world.acme, name="b-paused", model=model, version=version, status="paused")
    client = api_as(world.vera)
    assert [d["name"] for d in client.get(DEPLOYMENTS).json()["results"]] == ["b-paused", "iris"]
    assert [d["name"] for d in client.get(f"{DEPLOYMENTS}?status=paused").json()["results"]] == ["b-paused"]
    assert [d["name"] for d in client.get(f"{DEPLOYMENTS}?ordering=-name").json()["results"]] == ["iris", "b-paused"]
    response = client.get(f"{DEPLOYMENTS}?owner=1")
    assert response.status_code == 400
    assert "Unknown query parameter" in response.json()["error"]["message"]
    assert api_as(world.charlie).get(DEPLOYMENTS).json()["count"] == 0


def test_list_runs_a_constant_number_of_queries(api_as, world, iris_model):
    model, version = iris_model
    alias_set(actor=world.bob, model=model, name="production", version=version)
    client = api_as(world.bob)
    count = iter(range(100))

    def add():
        for _ in range(3):
            n = next(count)
            deployment = Deployment.objects.create(
                team=world.acme, name=f"d{n}", model=model, alias="production", created_by=world.bob
            )
            RequestBucket.objects.create(
                deployment=deployment,
                minute=deployment.created_at.replace(second=0, microsecond=0),
                bucket=40,
                requests=3,
            )

    add()
    assert_queries_constant(lambda: client.get(DEPLOYMENTS), add, at_most=8)
    assert client.get(DEPLOYMENTS).json()["results"][0]["last_24h"]["requests"] == 3


# --- predict ------------------------------------------------------------------------------------------------


def test_predictions_match_the_stored_versions_own_outputs(api_as, world, iris, iris_deployment):
    raw = raw_test_samples(iris, 8)
    client = api_as(world.vera)  # a viewer may call predict: it changes nothing

    response = client.post(predict_url(iris_deployment), {"inputs": raw.tolist(), "k": 3}, format="json")

    assert response.status_code == 200, response.json()
    body = response.json()
    assert (body["deployment"], body["version"], body["alias"]) == (iris_deployment.pk, 1, None)
    expected = own_probabilities(iris_deployment.version, raw)
    assert len(body["predictions"]) == 8
    for prediction, probs in zip(body["predictions"], expected, strict=True):
        assert [s["name"] for s in prediction["top_k"]] == [iris.class_names[i] for i in probs.argsort(descending=True)]
        for index, probability in _probabilities_by_class(prediction).items():
            assert probability == pytest.approx(float(probs[index]), abs=1e-6)


def test_k_defaults_to_five_or_the_class_count_and_is_checked(api_as, world, iris_deployment):
    client = api_as(world.bob)
    body = client.post(predict_url(iris_deployment), {"inputs": [[5.1, 3.5, 1.4, 0.2]]}, format="json").json()
    assert len(body["predictions"][0]["top_k"]) == 3  # iris has three classes
    assert sum(s["probability"] for s in body["predictions"][0]["top_k"]) == pytest.approx(1.0, abs=1e-5)
    for k in (0, 4, "two", True):
        response = client.post(predict_url(iris_deployment), {"inputs": [[5.1, 3.5, 1.4, 0.2]], "k": k}, format="json")
        assert response.status_code == 400, k
        assert "k" in response.json()["error"]["fields"]
    body = client.post(f"{predict_url(iris_deployment)}?k=1", {"inputs": [[5.1, 3.5, 1.4, 0.2]]}, format="json").json()
    assert len(body["predictions"][0]["top_k"]) == 1


@pytest.mark.parametrize(
    ("inputs", "message"),
    [
        ([[5.1, 3.5, 1.4]], "inputs: each sample must have shape [4]; got [3] (a batch of shape [1, 3])"),
        ([[5.1, 3.5, 1.4, 0.2], [1, 2, 3]], "inputs: inputs[1]: expected 4 values, got 3"),
        ([[5.1, "3.5", 1.4, 0.2]], "inputs: inputs[0][1]: expected a number, got the string '3.5'"),
        ([[5.1, 3.5, 1.4, None]], "inputs: inputs[0][3]: expected a number, got null"),
        ("5.1, 3.5", "inputs: not valid JSON"),
        ({"x": 1}, "inputs: expected a list of samples, got an object"),
        ([[0.0] * 4] * 6, "inputs: a batch holds at most 5 samples; got 6"),
        (None, "inputs: this field is required"),
    ],
    ids=["wrong-shape", "ragged", "string", "null", "not-json", "object", "too-large-batch", "missing"],
)
def test_bad_inputs_answer_400_naming_the_problem(api_as, world, iris_deployment, settings, inputs, message):
    settings.LEPTON_PREDICT_MAX_BATCH = 5
    body = {} if inputs is None else {"inputs": inputs}
    response = api_as(world.bob).post(predict_url(iris_deployment), body, format="json")
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["code"] == "invalid"
    assert error["message"].startswith(message)
    assert list(error["fields"]) == ["inputs"]


def test_a_body_that_is_not_an_object_or_not_json_is_a_400(api_as, world, iris_deployment):
    client = api_as(world.bob)
    response = client.post(predict_url(iris_deployment), [[1, 2, 3, 4]], format="json")
    assert response.status_code == 400
    assert response.json()["error"]["message"].startswith("The body must be a JSON object")
    response = client.post(predict_url(iris_deployment), "{inputs:", content_type="application/json")
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "parse_error"


def _png_bytes(array: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(array.astype(np.uint8), mode="L").save(buffer, format="PNG")
    return buffer.getvalue()


def test_images_as_arrays_or_an_uploaded_file(api_as, world, digits, digits_deployment):
    raw = raw_test_samples(digits, 4)  # (4, 1, 8, 8), pixels 0-255
    client = api_as(world.bob)
    expected = own_probabilities(digits_deployment.version, raw)

    as_arrays = client.post(predict_url(digits_deployment), {"inputs": raw.tolist(), "k": 10}, format="json").json()
    without_channel = client.post(
        predict_url(digits_deployment), {"inputs": raw[:, 0].tolist(), "k": 10}, format="json"
    )
    upload = SimpleUploadedFile("three.png", _png_bytes(raw[0, 0]), content_type="image/png")
    as_file = client.post(predict_url(digits_deployment), {"image": upload, "k": "10"}, format="multipart")

    for prediction, probs in zip(as_arrays["predictions"], expected, strict=True):
        assert _probabilities_by_class(prediction) == pytest.approx(
            {i: float(p) for i, p in enumerate(probs)}, abs=1e-6
        )
    assert without_channel.json()["predictions"] == as_arrays["predictions"]
    assert as_file.status_code == 200, as_file.json()
    # a PNG of the same pixels, losslessly (a batch of one may round differently from a batch of four)
    assert _probabilities_by_class(as_file.json()["predictions"][0]) == pytest.approx(
        _probabilities_by_class(as_arrays["predictions"][0]), abs=1e-6
    )


def test_an_image_for_a_tabular_model_or_a_broken_file_is_a_400(api_as, world, iris_deployment, digits_deployment):
    client = api_as(world.bob)
    png = SimpleUploadedFile("x.png", _png_bytes(np.zeros((8, 8))), content_type="image/png")
    response = client.post(predict_url(iris_deployment), {"image": png}, format="multipart")
    assert response.status_code == 400
    assert response.json()["error"]["message"] == "image: this model takes feature vectors of shape [4], not images"
    broken = SimpleUploadedFile("x.png", b"\x89PNG broken", content_type="image/png")
    response = client.post(predict_url(digits_deployment), {"image": broken}, format="multipart")
    assert response.json()["error"] == {
        "code": "invalid",
        "message": "image: not a readable PNG or JPEG image",
        "fields": {"image": ["not a readable PNG or JPEG image"]},
    }


def test_moving_the_alias_switches_the_deployment_on_the_next_request(api_as, world, iris, iris_model):
    model, v1 = iris_model
    alias_set(actor=world.bob, model=model, name="production", version=v1)
    client = api_as(world.bob)
    deployment_id = client.post(
        DEPLOYMENTS, {"name": "iris", "model": model.pk, "alias": "production"}, format="json"
    ).json()["id"]
    deployment = Deployment.objects.get(pk=deployment_id)
    raw = raw_test_samples(iris, 6)
    first = client.post(predict_url(deployment), {"inputs": raw.tolist(), "k": 3}, format="json").json()

    v2 = version_from_weights(
        actor=world.bob,
        model=model,
        weights=trained_module(model.architecture, iris, seed=7, steps=5).state_dict(),
        spec=model.architecture,
        dataset_version=iris,
        source=VersionSource.TRAIN,
    )
    alias_set(actor=world.bob, model=model, name="production", version=v2)
    second = client.post(predict_url(deployment), {"inputs": raw.tolist(), "k": 3}, format="json").json()

    assert (first["version"], first["alias"], second["version"], second["alias"]) == (1, "production", 2, "production")
    for prediction, probs in zip(second["predictions"], own_probabilities(v2, raw), strict=True):
        assert _probabilities_by_class(prediction) == pytest.approx(
            {i: float(p) for i, p in enumerate(probs)}, abs=1e-6
        )
    assert first["predictions"] != second["predictions"]
    assert client.get(f"{DEPLOYMENTS}{deployment_id}/").json()["serving_version"] == 2


def test_a_paused_deployment_or_an_unset_alias_answers_409(api_as, world, iris_model, iris_deployment):
    model, version = iris_model
    client = api_as(world.bob)
    client.patch(f"{DEPLOYMENTS}{iris_deployment.pk}/", {"status": "paused"}, format="json")
    response = client.post(predict_url(iris_deployment), {"inputs": [[1, 2, 3, 4]]}, format="json")
    assert response.status_code == 409
    assert response.json()["error"]["message"] == "Deployment iris is paused; resume it to serve requests."


def test_the_module_is_loaded_once_and_shared_across_requests(api_as, world, iris_deployment):
    client = api_as(world.bob)
    loads = MODELS.stats.loads
    for _ in range(3):
        assert client.post(predict_url(iris_deployment), {"inputs": [[5, 3, 1, 0]]}, format="json").status_code == 200
    assert MODELS.stats.loads == loads + 1
    assert MODELS.cached_keys() == [(iris_deployment.version.pk, iris_deployment.version.sha256)]


def test_the_cache_keeps_at_most_its_setting_and_evicts_the_least_recently_used(
    api_as, world, iris, iris_model, settings
):
    settings.LEPTON_DEPLOYMENT_CACHE_SIZE = 2
    model, v1 = iris_model
    versions = [v1] + [
        version_from_weights(
            actor=world.bob,
            model=model,
            weights=trained_module(model.architecture, iris, seed=seed, steps=1).state_dict(),
            spec=model.architecture,
            dataset_version=iris,
            source=VersionSource.TRAIN,
        )
        for seed in (1, 2)
    ]
    deployments = [
        Deployment.objects.create(team=world.acme, name=f"v{v.number}", model=model, version=v) for v in versions
    ]
    client = api_as(world.bob)

    def call(index):
        response = client.post(predict_url(deployments[index]), {"inputs": [[5, 3, 1, 0]]}, format="json")
        assert response.status_code == 200

    call(0), call(1), call(0), call(2)  # v2 is the least recently used when v3 arrives
    assert [key[0] for key in MODELS.cached_keys()] == [versions[0].pk, versions[2].pk]
    loads = MODELS.stats.loads
    call(1)
    assert MODELS.stats.loads == loads + 1


# --- keys -------------------------------------------------------------------------------------------------------


def test_a_deployment_key_works_for_its_own_predict_and_nothing_else(api, api_as, world, iris_model, iris_deployment):
    model, version = iris_model
    other = Deployment.objects.create(team=world.acme, name="other", model=model, version=version)
    created = api_as(world.bob).post(f"{DEPLOYMENTS}{iris_deployment.pk}/keys/", {"name": "shop"}, format="json")
    assert created.status_code == 201
    secret = created.json()["key"]
    api.credentials(HTTP_AUTHORIZATION=f"Bearer {secret}")

    assert api.post(predict_url(iris_deployment), {"inputs": [[5, 3, 1, 0]]}, format="json").status_code == 200
    response = api.post(predict_url(other), {"inputs": [[5, 3, 1, 0]]}, format="json")
    assert (response.status_code, response.json()["error"]["code"]) == (404, "not_found")
    for url in (DEPLOYMENTS, f"{DEPLOYMENTS}{iris_deployment.pk}/", "/api/v1/models/"):
        assert api.get(url).status_code == 401
    listed = api_as(world.bob).get(f"{DEPLOYMENTS}{iris_deployment.pk}/keys/").json()["results"]
    assert "key" not in listed[0]
    assert listed[0]["prefix"] == secret[:13]
    assert listed[0]["last_used_at"] is not None


def test_a_revoked_key_fails_on_the_next_request(api, api_as, world, iris_deployment):
    key, secret = key_create(actor=world.bob, deployment=iris_deployment, name="shop")
    api.credentials(HTTP_AUTHORIZATION=f"Bearer {secret}")
    assert api.post(predict_url(iris_deployment), {"inputs": [[5, 3, 1, 0]]}, format="json").status_code == 200
    assert api_as(world.vera).delete(f"{DEPLOYMENTS}{iris_deployment.pk}/keys/{key.pk}/").status_code == 403
    assert api_as(world.bob).delete(f"{DEPLOYMENTS}{iris_deployment.pk}/keys/{key.pk}/").status_code == 204
    response = api.post(predict_url(iris_deployment), {"inputs": [[5, 3, 1, 0]]}, format="json")
    assert response.status_code == 401
    assert response.json()["error"]["message"] == "This deployment key has been revoked."


def test_predict_without_credentials_is_401_and_another_team_gets_404(api, api_as, world, iris_deployment):
    response = api.post(predict_url(iris_deployment), {"inputs": [[5, 3, 1, 0]]}, format="json")
    assert (response.status_code, response.json()["error"]["code"]) == (401, "not_authenticated")
    response = api_as(world.charlie).post(predict_url(iris_deployment), {"inputs": [[5, 3, 1, 0]]}, format="json")
    assert response.status_code == 404
    assert not RequestBucket.objects.exists()  # neither reached the deployment


def test_requests_are_throttled_per_key(api_as, world, iris_deployment, settings, client):
    settings.LEPTON_PREDICT_RATE = "3/minute"
    from rest_framework.test import APIClient

    _, first = key_create(actor=world.bob, deployment=iris_deployment, name="a")
    _, second = key_create(actor=world.bob, deployment=iris_deployment, name="b")
    a, b = APIClient(), APIClient()
    a.credentials(HTTP_AUTHORIZATION=f"Bearer {first}")
    b.credentials(HTTP_AUTHORIZATION=f"Bearer {second}")

    statuses = [
        a.post(predict_url(iris_deployment), {"inputs": [[5, 3, 1, 0]]}, format="json").status_code for _ in range(4)
    ]
    assert statuses == [200, 200, 200, 429]
    throttled = a.post(predict_url(iris_deployment), {"inputs": [[5, 3, 1, 0]]}, format="json")
    assert throttled.json()["error"]["code"] == "throttled"
    assert int(throttled["Retry-After"]) > 0
    assert b.post(predict_url(iris_deployment), {"inputs": [[5, 3, 1, 0]]}, format="json").status_code == 200
    user = api_as(world.bob)  # a user's API token has its own allowance
    assert user.post(predict_url(iris_deployment), {"inputs": [[5, 3, 1, 0]]}, format="json").status_code == 200


# --- statistics ---------------------------------------------------------------------------------------------


def test_every_request_is_counted_with_its_latency_and_errors(api_as, world, iris_deployment):
    client = api_as(world.bob)
    for _ in range(5):
        client.post(predict_url(iris_deployment), {"inputs": [[5, 3, 1, 0]]}, format="json")
    for _ in range(2):
        client.post(predict_url(iris_deployment), {"inputs": [[5, 3, 1]]}, format="json")

    stats = client.get(f"{DEPLOYMENTS}{iris_deployment.pk}/stats/?minutes=5").json()

    assert stats["window_minutes"] == 5
    assert (stats["totals"]["requests"], stats["totals"]["errors"]) == (7, 2)
    assert 0 < stats["totals"]["p50_ms"] <= stats["totals"]["p95_ms"] <= stats["totals"]["p99_ms"]
    assert len(stats["minutes"]) >= 1
    assert sum(m["requests"] for m in stats["minutes"]) == 7
    assert {trace["name"] for trace in stats["chart"]["data"]} == {"requests", "errors", "p50 latency", "p95 latency"}
    detail = client.get(f"{DEPLOYMENTS}{iris_deployment.pk}/").json()["last_24h"]
    assert (detail["requests"], detail["errors"]) == (7, 2)
    assert sum(RequestBucket.objects.values_list("requests", flat=True)) == 7
    response = client.get(f"{DEPLOYMENTS}{iris_deployment.pk}/stats/?minutes=0")
    assert response.status_code == 400
    assert "minutes" in response.json()["error"]["fields"]


def test_recorded_latency_reflects_what_the_request_took(world, iris_deployment, monkeypatch):
    """The percentiles come from measured time: a request made slow shows up as slow."""
    import time

    from apps.deployments import services, stats

    real = services.probabilities
    monkeypatch.setattr(services, "probabilities", lambda *a: (time.sleep(0.06), real(*a))[1])
    services.deployment_predict(
        deployment=iris_deployment, read_inputs=lambda v: (np.zeros((1, 4), dtype=np.float32), None)
    )
    _, totals = stats.window(iris_deployment.pk, minutes=1)
    assert totals.requests == 1
    assert 57 <= totals.p50_ms < 1000  # 60 ms slept, read back from a bucket within 5 %


def test_an_integer_too_large_for_a_float_is_a_400_naming_it(api_as, world, iris_deployment):
    response = api_as(world.bob).post(predict_url(iris_deployment), {"inputs": [[10**400, 1, 1, 1]]}, format="json")
    assert response.status_code == 400
    assert response.json()["error"]["message"].startswith("inputs: inputs[0][0]: expected a finite number")


def test_a_served_model_is_not_deleted_from_under_its_deployment(api_as, world, iris_deployment, iris_model):
    model, _ = iris_model
    response = api_as(world.alice).delete(f"/api/v1/models/{model.pk}/")
    assert response.status_code == 409
    assert "deployment iris" in response.json()["error"]["message"]
    assert Deployment.objects.filter(pk=iris_deployment.pk).exists()
    model.refresh_from_db()  # still there, storage untouched
    api_as(world.alice).delete(f"/api/v1/deployments/{iris_deployment.pk}/")
    assert api_as(world.alice).delete(f"/api/v1/models/{model.pk}/").status_code == 204
