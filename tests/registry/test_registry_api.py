"""The registry API: models, uploads (safe), measurements, exports, aliases, lineage."""

import io
import pickle
import uuid
from pathlib import Path

import numpy as np
import onnxruntime
import pytest
import torch
from django.core.files.uploadedfile import SimpleUploadedFile

from apps.accounts.quotas import team_usage
from apps.datasets.models import Dataset
from apps.registry.architectures import build_model
from apps.registry.loading import version_module
from apps.registry.models import Model, ModelVersion
from apps.registry.weights import load_weights, save_weights
from tests.factories import dataset_with_version, model_with_version
from tests.queries import assert_queries_constant

MODELS = "/api/v1/models/"
MLP = {"family": "mlp", "hidden_sizes": [32]}


@pytest.fixture
def iris(world):
    return dataset_with_version(world.acme, bundled="iris", name="iris", creator=world.bob)[1]


@pytest.fixture
def iris_model(world, iris):
    return Model.objects.create(
        team=world.acme,
        name="iris-mlp",
        task="tabular_classification",
        architecture={"family": "mlp", "hidden_sizes": [32], "dropout": 0.0},
        dataset=iris.dataset,
        created_by=world.bob,
    )


def _safetensors_bytes(tmp_path, state) -> bytes:
    save_weights(tmp_path / "w.safetensors", state)
    return (tmp_path / "w.safetensors").read_bytes()


def _upload(client, model, dataset_version, name, data, **extra):
    payload = {"file": SimpleUploadedFile(name, data), "dataset": dataset_version.dataset_id, **extra}
    return client.post(f"{MODELS}{model.pk}/versions/", payload, format="multipart")


def _files_under(root):
    return sorted(str(p.relative_to(root)) for p in root.rglob("*") if p.is_file()) if root.exists() else []


# --- models ---------------------------------------------------------------------------------------


def test_member_creates_a_model_with_a_validated_architecture(api_as, world, iris):
    response = api_as(world.bob).post(
        MODELS,
        {
            "team": "acme",
            "name": "m",
            "task": "tabular_classification",
            "architecture": {"family": "mlp"},
            "dataset": iris.dataset_id,
        },
        format="json",
    )

    assert response.status_code == 201
    assert response.json()["architecture"] == {"family": "mlp", "hidden_sizes": [128, 64], "dropout": 0.0}


@pytest.mark.parametrize(
    ("task", "architecture", "field"),
    [
        ("tabular_classification", {"family": "transformer"}, "architecture.family"),
        ("image_classification", {"family": "resnet", "depth": 14}, "architecture.depth"),
        ("tabular_classification", {"family": "cnn_small"}, "architecture.family"),  # images only
    ],
)
def test_a_bad_architecture_names_the_field(api_as, world, task, architecture, field):
    response = api_as(world.bob).post(
        MODELS, {"team": "acme", "name": "m", "task": task, "architecture": architecture}, format="json"
    )

    assert response.status_code == 400
    assert field in response.json()["error"]["fields"]


def test_viewer_cannot_create_a_model(api_as, world):
    response = api_as(world.vera).post(
        MODELS, {"team": "acme", "name": "m", "task": "tabular_classification", "architecture": MLP}, format="json"
    )

    assert response.status_code == 403


def test_the_architecture_catalog_lists_every_family(api_as, world):
    families = {a["family"] for a in api_as(world.vera).get("/api/v1/architectures/").json()["results"]}

    assert families == {"mlp", "cnn_small", "resnet", "mobilenet_v2"}


def test_models_list_shows_best_accuracy_and_smallest_size(api_as, world, iris, run_tasks):
    model, version, _ = model_with_version(world.acme, iris, name="iris-mlp")
    client = api_as(world.alice)
    with run_tasks():
        client.post(f"{MODELS}{model.pk}/versions/1/evaluations/", {"dataset": iris.dataset_id}, format="json")

    row = client.get(MODELS).json()["results"][0]

    version.refresh_from_db()
    assert row["smallest_bytes"] == version.bytes
    assert row["best_accuracy"] == version.evaluations.get().accuracy
    assert row["version_count"] == 1


def test_models_list_queries_do_not_grow(api_as, world, iris):
    model_with_version(world.acme, iris, name="first", steps=1)
    client = api_as(world.alice)

    def add():
        for n in range(4):
            model_with_version(world.acme, iris, name=f"m{n}", steps=1)

    assert_queries_constant(lambda: client.get(MODELS), add, at_most=6)


def test_versions_list_queries_do_not_grow(api_as, world, iris, tmp_path, run_tasks):
    model, _version, module = model_with_version(world.acme, iris, name="m", steps=1)
    client = api_as(world.alice)
    data = _safetensors_bytes(tmp_path, module.state_dict())

    def add(count=4):
        for _ in range(count):
            with run_tasks():
                _upload(client, model, iris, "w.safetensors", data)

    add(1)  # imported versions have their jobs: looked up in one query for the page
    assert_queries_constant(lambda: client.get(f"{MODELS}{model.pk}/versions/"), add, at_most=9)


# --- uploads ----------------------------------------------------------------------------------------


def test_a_safetensors_upload_is_checked_and_imported(api_as, world, iris_model, iris, tmp_path, run_tasks):
    module = build_model(iris_model.architecture, input_shape=(4,), num_classes=3)
    with run_tasks():
        response = _upload(
            api_as(world.bob), iris_model, iris, "w.safetensors", _safetensors_bytes(tmp_path, module.state_dict())
        )

    assert response.status_code == 202
    version = ModelVersion.objects.get(model=iris_model)
    assert version.status == "ready"
    assert version.parameter_count == sum(p.numel() for p in module.parameters())
    assert version.upload == ""
    x = torch.randn(5, 4)
    assert torch.equal(version_module(version)(x), module.eval()(x))


def test_a_malformed_safetensors_upload_answers_400_and_stores_nothing(api_as, world, iris_model, iris, settings):
    response = _upload(
        api_as(world.bob), iris_model, iris, "w.safetensors", b"\x10\x00\x00\x00\x00\x00\x00\x00{garbage"
    )

    assert response.status_code == 400
    assert response.json()["error"]["message"].startswith("file: not a valid safetensors file")
    assert not ModelVersion.objects.exists()
    assert [f for f in _files_under(settings.MEDIA_ROOT) if not f.startswith("datasets/")] == []


def test_weights_that_do_not_fit_the_spec_are_refused_before_storing(
    api_as, world, iris_model, iris, tmp_path, settings
):
    wrong = build_model({"family": "mlp", "hidden_sizes": [16]}, input_shape=(4,), num_classes=3)

    response = _upload(
        api_as(world.bob), iris_model, iris, "w.safetensors", _safetensors_bytes(tmp_path, wrong.state_dict())
    )

    assert response.status_code == 400
    assert (
        "'features.0.linear.weight' is [16, 4], the architecture needs [32, 4]" in response.json()["error"]["message"]
    )
    assert not ModelVersion.objects.exists()
    assert [f for f in _files_under(settings.MEDIA_ROOT) if not f.startswith("datasets/")] == []


def test_a_pytorch_state_dict_is_loaded_by_a_worker_and_resaved_as_safetensors(
    api_as, world, iris_model, iris, run_tasks
):
    module = build_model(iris_model.architecture, input_shape=(4,), num_classes=3)
    buffer = io.BytesIO()
    torch.save({"state_dict": module.state_dict()}, buffer)

    with run_tasks():
        _upload(api_as(world.bob), iris_model, iris, "w.pt", buffer.getvalue())

    version = ModelVersion.objects.get(model=iris_model)
    assert version.status == "ready"
    assert version.artifact.endswith(".safetensors")
    assert set(load_weights(Path(settings_media(version)))) == set(module.state_dict())


def settings_media(version):
    from apps.core.storage import local_path

    return local_path(version.artifact)


class RunsACommand:
    """Unpickling this would run a shell command that leaves a marker file."""

    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        import os

        return (os.system, (f"touch {self.marker}",))


@pytest.mark.parametrize("packing", ["torch.save", "raw-pickle", "inside-a-state-dict"])
def test_a_malicious_pickle_is_refused_and_its_command_never_runs(
    api_as, world, iris_model, iris, tmp_path, run_tasks, packing
):
    marker = tmp_path / f"pwned-{uuid.uuid4().hex}"
    evil = RunsACommand(marker)
    buffer = io.BytesIO()
    if packing == "torch.save":
        torch.save(evil, buffer)
    elif packing == "raw-pickle":
        pickle.dump(evil, buffer)
    else:
        torch.save({"features.0.linear.weight": torch.zeros(32, 4), "hook": evil}, buffer)

    with run_tasks():
        response = _upload(api_as(world.bob), iris_model, iris, "evil.pt", buffer.getvalue())

    assert response.status_code == 202  # accepted for the worker, never opened by the web process
    version = ModelVersion.objects.get(model=iris_model)
    assert version.status == "failed"
    assert "not a plain PyTorch state dict" in version.error
    assert "Nothing in the file was run" in version.error
    assert not marker.exists()


def test_a_pytorch_file_that_does_not_fit_fails_with_the_shapes(api_as, world, iris_model, iris, run_tasks):
    buffer = io.BytesIO()
    torch.save(
        build_model({"family": "mlp", "hidden_sizes": [8]}, input_shape=(4,), num_classes=3).state_dict(), buffer
    )

    with run_tasks():
        _upload(api_as(world.bob), iris_model, iris, "w.pt", buffer.getvalue())

    version = ModelVersion.objects.get(model=iris_model)
    assert version.status == "failed"
    assert "the weights do not match the architecture" in version.error


def test_an_unknown_file_type_is_refused(api_as, world, iris_model, iris):
    response = _upload(api_as(world.bob), iris_model, iris, "w.onnx", b"whatever")

    assert response.status_code == 400
    assert "file" in response.json()["error"]["fields"]


# --- measurements, export, lineage ------------------------------------------------------------------------


def test_an_evaluation_measures_the_stored_artifact(api_as, world, iris, run_tasks):
    model, version, module = model_with_version(world.acme, iris, name="m", steps=60)
    client = api_as(world.bob)

    with run_tasks():
        response = client.post(
            f"{MODELS}{model.pk}/versions/1/evaluations/", {"dataset": iris.dataset_id}, format="json"
        )

    assert response.status_code == 202
    result = client.get(f"{MODELS}{model.pk}/versions/1/").json()["evaluations"][0]
    assert result["status"] == "ready"
    test_count = iris.split_counts["test"]
    assert result["sample_count"] == test_count
    assert sum(map(sum, result["confusion_matrix"])) == test_count
    correct = sum(result["confusion_matrix"][i][i] for i in range(3))
    assert result["accuracy"] == pytest.approx(correct / test_count)
    assert result["accuracy"] > 0.8
    assert result["artifact_bytes"] == Path(settings_media(version)).stat().st_size
    assert result["parameter_count"] == sum(p.numel() for p in module.parameters())
    assert result["flops_per_sample"] == 2 * (4 * 32 + 32 * 3)
    assert result["latency_ms"] > 0
    assert result["throughput"] > 0
    assert result["device"].startswith("cpu")


def test_an_evaluation_on_an_incompatible_dataset_is_refused(api_as, world, iris):
    model, _, _ = model_with_version(world.acme, iris, name="m", steps=1)
    wine, _ = dataset_with_version(world.acme, bundled="wine", name="wine")

    response = api_as(world.bob).post(
        f"{MODELS}{model.pk}/versions/1/evaluations/", {"dataset": wine.pk}, format="json"
    )

    assert response.status_code == 400
    assert "its samples are [13], the model takes [4]" in response.json()["error"]["message"]


def test_viewer_cannot_request_an_evaluation(api_as, world, iris):
    model, _, _ = model_with_version(world.acme, iris, name="m", steps=1)

    response = api_as(world.vera).post(
        f"{MODELS}{model.pk}/versions/1/evaluations/", {"dataset": iris.dataset_id}, format="json"
    )

    assert response.status_code == 403


def test_onnx_export_runs_in_onnxruntime_and_matches_torch(api_as, world, tmp_path, run_tasks):
    digits = dataset_with_version(world.acme, bundled="digits", name="digits")[1]
    model, _version, module = model_with_version(world.acme, digits, spec={"family": "cnn_small"}, name="cnn", steps=2)
    client = api_as(world.bob)

    with run_tasks():
        response = client.post(f"{MODELS}{model.pk}/versions/1/exports/", {"format": "onnx"}, format="json")

    assert response.status_code == 202
    export = client.get(f"{MODELS}{model.pk}/versions/1/exports/onnx/").json()
    assert export["status"] == "ready"
    assert export["max_abs_diff"] < 1e-4
    download = client.get(export["download_url"])
    assert download["Content-Disposition"] == 'attachment; filename="cnn-v1.onnx"'
    path = tmp_path / "m.onnx"
    path.write_bytes(b"".join(download.streaming_content))
    x = torch.rand(3, 1, 8, 8)
    session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    onnx_out = session.run(None, {"input": x.numpy()})[0]
    assert np.abs(onnx_out - module(x).detach().numpy()).max() < 1e-4


def test_weights_download_is_an_attachment(api_as, world, iris):
    model, _, _ = model_with_version(world.acme, iris, name="iris-mlp", steps=1)

    response = api_as(world.vera).get(f"{MODELS}{model.pk}/versions/1/download/")

    assert response["Content-Disposition"] == 'attachment; filename="iris-mlp-v1.safetensors"'


def test_a_version_records_its_lineage(api_as, world, iris):
    from apps.registry import services
    from apps.registry.weights import QuantizedTensor

    model, parent, module = model_with_version(world.acme, iris, name="m", steps=1)
    state = {k: QuantizedTensor.from_float(v) if v.dim() == 2 else v for k, v in module.state_dict().items()}
    child = services.version_from_weights(
        actor=world.bob,
        model=model,
        weights=state,
        spec=parent.spec,
        dataset_version=None,
        parent=parent,
        source="compress",
        label="int8",
    )

    body = api_as(world.vera).get(f"{MODELS}{model.pk}/versions/2/").json()

    assert (body["parent"], body["label"], body["source"]) == (1, "int8", "compress")
    assert body["input_shape"] == [4]
    assert child.bytes < parent.bytes


# --- aliases -----------------------------------------------------------------------------------------------


def test_aliases_move_and_keep_their_history(api_as, world, iris, tmp_path):
    from apps.registry import services
    from apps.registry.models import VersionSource

    model, v1, module = model_with_version(world.acme, iris, name="m", steps=1)
    services.version_from_weights(
        actor=world.bob,
        model=model,
        weights=module.state_dict(),
        spec=v1.spec,
        dataset_version=iris,
        source=VersionSource.TRAIN,
    )
    client = api_as(world.bob)

    assert (
        client.post(f"{MODELS}{model.pk}/aliases/", {"name": "production", "version": 1}, format="json").status_code
        == 200
    )
    moved = client.patch(f"{MODELS}{model.pk}/aliases/production/", {"version": 2}, format="json").json()

    assert moved["version"] == 2
    assert [(m["from_version"], m["to_version"]) for m in moved["history"]] == [(1, 2), (None, 1)]
    assert client.get(f"{MODELS}{model.pk}/versions/2/").json()["aliases"] == ["production"]
    assert client.get(MODELS).json()["results"][0]["aliases"] == {"production": 2}


def test_viewer_cannot_move_an_alias(api_as, world, iris):
    model, _, _ = model_with_version(world.acme, iris, name="m", steps=1)

    response = api_as(world.vera).post(
        f"{MODELS}{model.pk}/aliases/", {"name": "production", "version": 1}, format="json"
    )

    assert response.status_code == 403


def test_an_alias_needs_a_ready_version_and_a_proper_name(api_as, world, iris):
    model, version, _ = model_with_version(world.acme, iris, name="m", steps=1)
    client = api_as(world.bob)

    bad_name = client.post(f"{MODELS}{model.pk}/aliases/", {"name": "prod uction!", "version": 1}, format="json")
    ModelVersion.objects.filter(pk=version.pk).update(status="failed")
    not_ready = client.post(f"{MODELS}{model.pk}/aliases/", {"name": "prod", "version": 1}, format="json")

    assert bad_name.status_code == not_ready.status_code == 400
    assert "name" in bad_name.json()["error"]["fields"]
    assert "only ready versions" in not_ready.json()["error"]["message"]


# --- deleting ---------------------------------------------------------------------------------------------


def test_deleting_a_model_gives_its_storage_back(api_as, world, iris, settings, run_tasks):
    model, _, _ = model_with_version(world.acme, iris, name="m", creator=world.bob, steps=1)
    before = team_usage(world.acme).storage_bytes

    with run_tasks():
        assert api_as(world.bob).delete(f"{MODELS}{model.pk}/").status_code == 204

    assert team_usage(world.acme).storage_bytes < before
    assert not any(f.startswith("models/") for f in _files_under(settings.MEDIA_ROOT))


def test_a_dataset_that_model_versions_came_from_cannot_be_deleted(api_as, world, iris):
    model_with_version(world.acme, iris, name="m", steps=1)

    response = api_as(world.alice).delete(f"/api/v1/datasets/{iris.dataset_id}/")

    assert response.status_code == 409
    assert "is used by m v1" in response.json()["error"]["message"]
    assert Dataset.objects.filter(pk=iris.dataset_id).exists()


def test_a_rerun_evaluation_cannot_be_taken_over_by_the_previous_runs_job(world, iris, run_tasks):
    from apps.jobs.models import Job
    from apps.jobs.services import job_cancel
    from apps.jobs.transitions import LeaseLost, lease_write
    from apps.registry.evaluations import evaluate_now, evaluation_request
    from apps.registry.models import Evaluation

    model, version, _ = model_with_version(world.acme, iris, name="m", steps=1)
    first = evaluation_request(actor=world.bob, version=version, dataset_version=iris)
    job_cancel(actor=world.bob, job=Job.objects.get(pk=first.produced_by_job))
    first.refresh_from_db()
    assert (first.status, first.error) == ("failed", "cancelled by bob before it ran")
    again = evaluation_request(actor=world.bob, version=version, dataset_version=iris)
    assert again.pk == first.pk
    assert again.produced_by_job != first.produced_by_job

    with pytest.raises(LeaseLost):  # the first run's worker wakes up late
        evaluate_now(
            actor=world.bob,
            version=version,
            dataset_version=iris,
            job_id=first.produced_by_job,
            device=torch.device("cpu"),
            fence=lambda: lease_write(first.produced_by_job, 1),
        )
    assert Evaluation.objects.get(pk=again.pk).produced_by_job == again.produced_by_job
    with run_tasks():
        from apps.jobs.scheduler import jobs_place_queued

        jobs_place_queued()
    assert Evaluation.objects.get(pk=again.pk).status == "ready"


def test_a_silent_evaluation_is_requeued_by_the_jobs_reaper_and_fails_with_the_reason_after_the_last_attempt(
    world, iris, settings
):
    from django.utils import timezone

    from apps.jobs.models import Job
    from apps.jobs.services import jobs_reap_stale
    from apps.registry.evaluations import evaluation_request
    from apps.registry.models import Evaluation

    model, version, _ = model_with_version(world.acme, iris, name="m", steps=1)
    evaluation = evaluation_request(actor=world.bob, version=version, dataset_version=iris)
    silent = timezone.now() - timezone.timedelta(seconds=settings.LEPTON_JOB_STALE_SECONDS + 1)
    job = Job.objects.filter(pk=evaluation.produced_by_job)
    job.update(status="running", attempts=1, claimed_at=silent, heartbeat_at=silent)

    assert jobs_reap_stale() == 1
    assert Evaluation.objects.get(pk=evaluation.pk).status == "processing"  # queued again, not failed

    job.update(status="running", attempts=3, claimed_at=silent, heartbeat_at=silent)
    jobs_reap_stale()
    evaluation.refresh_from_db()
    assert evaluation.status == "failed"
    assert evaluation.error.startswith("worker lost (no sign of life from attempt 3")


@pytest.mark.parametrize("name", ["prodü", "²", "-lead", "a" * 51, "with space"])
def test_alias_names_follow_one_rule_everywhere(api_as, world, iris, name):
    model, _, _ = model_with_version(world.acme, iris, name="m", steps=1)

    response = api_as(world.bob).post(f"{MODELS}{model.pk}/aliases/", {"name": name, "version": 1}, format="json")

    assert response.status_code == 400


def test_a_crafted_weights_layout_answers_400_not_500(api_as, world, iris_model, iris, tmp_path):
    from safetensors.torch import save_file

    path = tmp_path / "crafted.safetensors"
    save_file({"a": torch.zeros(2)}, str(path), metadata={"layout": '{"a": {"shape": 3}}'})

    response = _upload(api_as(world.bob), iris_model, iris, "w.safetensors", path.read_bytes())

    assert response.status_code == 400
    assert "layout" in response.json()["error"]["message"]


def test_an_onnx_export_counts_against_storage_and_comes_back_on_delete(api_as, world, iris, run_tasks):
    from apps.accounts.models import UsageRecord

    model, version, _ = model_with_version(world.acme, iris, name="m", creator=world.bob, steps=1)
    client = api_as(world.bob)
    with run_tasks():
        client.post(f"{MODELS}{model.pk}/versions/1/exports/", {"format": "onnx"}, format="json")
    export_bytes = version.exports.get().bytes
    assert UsageRecord.objects.filter(source__startswith="model_export:").get().amount == export_bytes

    with run_tasks():
        client.delete(f"{MODELS}{model.pk}/")

    assert team_usage(world.acme).storage_bytes == iris.bytes


def test_another_teams_ids_in_a_body_answer_404(api_as, world, iris):
    theirs = dataset_with_version(world.globex, bundled="iris", name="theirs")[1]
    model, _, _ = model_with_version(world.acme, iris, name="m", steps=1)
    client = api_as(world.bob)

    create = client.post(
        MODELS,
        {
            "team": "acme",
            "name": "x",
            "task": "tabular_classification",
            "architecture": MLP,
            "dataset": theirs.dataset_id,
        },
        format="json",
    )
    evaluate = client.post(f"{MODELS}{model.pk}/versions/1/evaluations/", {"dataset": theirs.dataset_id}, format="json")
    upload = _upload(client, model, theirs, "w.pt", b"whatever")

    assert [create.status_code, evaluate.status_code, upload.status_code] == [404, 404, 404]
