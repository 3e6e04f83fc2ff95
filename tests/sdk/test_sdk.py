"""The SDK against a live server: datasets, models, training jobs, downloads, deployments, typed errors."""

import io

import numpy as np
import pytest
import torch

import lepton_ai as la
from apps.registry.models import ModelVersion
from apps.registry.weights import load_weights
from lepton_ai.progress import ProgressBar
from tests.deployments.conftest import own_probabilities
from tests.factories import model_with_version

pytestmark = pytest.mark.django_db(transaction=True, serialized_rollback=True)


def test_upload_a_csv_and_wait_for_its_version(sdk_as, world, iris_csv):
    client = sdk_as(world.bob)
    assert client.team == "acme"  # Bob's only team

    dataset = client.datasets.upload("flowers", iris_csv, label_column="species")

    version = dataset.upload_version
    assert (dataset.name, dataset.task, dataset.team) == ("flowers", "tabular_classification", "acme")
    assert (version.number, version.status, version.sample_count) == (1, "ready", 150)
    assert version.class_names == ["setosa", "versicolor", "virginica"]
    assert client.datasets.get("flowers").id == dataset.id
    assert [d.name for d in client.datasets.list()] == ["flowers"]
    again = client.datasets.upload("flowers", iris_csv, label_column="species")  # the same dataset, a new version
    assert (again.id, again.upload_version.number) == (dataset.id, 2)


def test_a_failed_ingest_raises_with_the_servers_message(sdk_as, world, tmp_path):
    bad = tmp_path / "bad.csv"
    bad.write_text("a,b,label\n1,2,x\n3,abc,y\n")
    with pytest.raises(la.WorkFailed, match="failed: row 2, column 'b': 'abc' is not a number"):
        sdk_as(world.bob).datasets.upload("bad", bad)


def test_train_wait_with_a_progress_bar_logs_and_the_new_version(sdk_as, world, iris_csv, cpu_node, tmp_path):
    client = sdk_as(world.bob)
    dataset = client.datasets.upload("flowers", iris_csv, label_column="species")
    model = client.models.create("iris-mlp", arch={"family": "mlp", "hidden_sizes": [16]}, dataset=dataset)
    assert (model.task, model.team) == ("tabular_classification", "acme")

    job = model.train(dataset, epochs=3, batch_size=16)
    terminal = io.StringIO()
    job.wait(progress=ProgressBar("train", stream=terminal))

    assert job.status == "succeeded"
    assert "train [##############################] 100.0%" in terminal.getvalue()
    messages = [line["message"] for line in job.logs()]
    assert any("epoch 3" in message for message in messages), messages
    assert [line["message"] for line in job.logs(follow=True)] == messages  # a finished job: follow ends
    assert len(job.metrics()) == 3
    version = job.version
    assert (version.number, version.status, version.source) == (1, "ready", "train")
    assert model.version().number == 1

    saved = version.save(tmp_path / "iris.safetensors")
    stored = ModelVersion.objects.get(model_id=model.id, number=1)
    assert saved.stat().st_size == stored.bytes
    weights = load_weights(saved)
    assert set(weights) == set(load_weights_of(stored))


def load_weights_of(version):
    from apps.core.storage import local_path

    return load_weights(local_path(version.artifact))


def test_deploy_a_version_and_predict_what_it_computes(sdk_as, world, cpu_node):
    from tests.factories import dataset_with_version

    iris = dataset_with_version(world.acme, bundled="iris", name="iris")[1]
    _, stored, _ = model_with_version(world.acme, iris, name="iris-mlp", creator=world.bob)
    client = sdk_as(world.bob)
    version = client.models.get("iris-mlp").version(1)

    deployment = version.deploy("iris")
    inputs = np.array([[5.1, 3.5, 1.4, 0.2], [6.7, 3.0, 5.2, 2.3]], dtype=np.float32)
    predictions = deployment.predict(inputs, k=3)

    expected = own_probabilities(stored, inputs)
    for prediction, probs in zip(predictions, expected, strict=True):
        got = {s["index"]: s["probability"] for s in prediction["top_k"]}
        assert got == pytest.approx({i: float(p) for i, p in enumerate(probs)}, abs=1e-6)
        assert prediction["top_k"][0]["name"] == iris.class_names[int(torch.argmax(probs))]
    assert client.deployments.get("iris").serving_version == 1
    assert deployment.stats(minutes=5)["totals"]["requests"] == 1

    key = deployment.create_key("shop")
    with_key = la.Client(client.base_url, key["key"])
    assert with_key.predict(deployment.id, inputs.tolist(), k=1)["predictions"][0]["top_k"][0]["index"] == int(
        torch.argmax(expected[0])
    )
    with pytest.raises(la.AuthenticationError):
        with_key.deployments.list()  # a deployment key is good for predict only


def test_a_follower_deployment_switches_when_the_alias_moves(sdk_as, world):
    from tests.factories import dataset_with_version

    iris = dataset_with_version(world.acme, bundled="iris", name="iris")[1]
    model_with_version(world.acme, iris, name="iris-mlp", creator=world.bob)
    client = sdk_as(world.bob)
    model = client.models.get("iris-mlp")
    model.version(1).set_alias("production")
    deployment = model.deploy("iris-prod", alias="production")
    assert (deployment.alias, deployment.serving_version) == ("production", 1)
    assert model.aliases() == {"production": 1}


def test_errors_are_typed_and_carry_the_apis_message(sdk_as, world, live_server, cpu_node):
    from tests.factories import dataset_with_version

    iris = dataset_with_version(world.acme, bundled="iris", name="iris")[1]
    model, _, _ = model_with_version(world.acme, iris, name="iris-mlp", creator=world.bob)
    bob = sdk_as(world.bob)

    with pytest.raises(la.AuthenticationError, match="Invalid username or password"):
        la.Client.login(live_server.url, "bob", "wrong")
    with pytest.raises(la.AuthenticationError):
        la.Client(live_server.url, "lep_not-a-token").models.list()
    with pytest.raises(la.NotFound):
        sdk_as(world.charlie).models.get(model.pk)
    with pytest.raises(la.PermissionDenied, match="must be a member of team 'acme'"):
        sdk_as(world.vera).models.create("v", arch={"family": "mlp"}, dataset=iris.dataset_id)
    with pytest.raises(la.BadRequest) as caught:
        bob.models.get(model.pk).train(iris.dataset_id, epochs=0)
    assert caught.value.fields == {"spec.epochs": ["must be from 1 to 1000; got 0"]}  # from the train declaration
    assert caught.value.status == 400
    deployment = bob.models.get(model.pk).version(1).deploy("iris")
    with pytest.raises(la.BadRequest, match=r"inputs: each sample must have shape \[4\]; got \[2\]") as caught:
        deployment.predict([[1, 2]])
    assert list(caught.value.fields) == ["inputs"]
    with pytest.raises(la.Conflict, match="already has a deployment named 'iris'"):
        bob.models.get(model.pk).version(1).deploy("iris")
    with pytest.raises(la.ConnectionFailed):
        la.Client("http://127.0.0.1:9", "lep_x", timeout=2).nodes.list()


def test_throttled_requests_say_when_to_come_back(sdk_as, world, settings):
    from tests.factories import dataset_with_version

    settings.LEPTON_PREDICT_RATE = "2/minute"
    iris = dataset_with_version(world.acme, bundled="iris", name="iris")[1]
    model_with_version(world.acme, iris, name="iris-mlp", creator=world.bob)
    client = sdk_as(world.bob)
    deployment = client.models.get("iris-mlp").version(1).deploy("iris")
    deployment.predict([[5.1, 3.5, 1.4, 0.2]])
    deployment.predict([[5.1, 3.5, 1.4, 0.2]])
    with pytest.raises(la.Throttled) as caught:
        deployment.predict([[5.1, 3.5, 1.4, 0.2]])
    assert 0 < caught.value.retry_after <= 60


def test_cancel_a_queued_job_and_wait_raises_job_failed(sdk_as, world, cpu_node):
    """No node is online, so the job stays queued until it is cancelled."""
    from tests.factories import dataset_with_version

    cpu_node.delete()
    iris = dataset_with_version(world.acme, bundled="iris", name="iris")[1]
    model_with_version(world.acme, iris, name="iris-mlp", creator=world.bob)
    client = sdk_as(world.bob)
    job = client.models.get("iris-mlp").train(iris.dataset_id, epochs=2)
    assert job.status == "queued"
    assert [j.id for j in client.jobs.list(status="queued")] == [job.id]

    job.cancel()

    with pytest.raises(la.JobFailed, match=f"job {job.id} cancelled") as caught:
        job.wait(timeout=30)
    assert caught.value.resource.status == "cancelled"


def test_the_sdk_imports_nothing_of_the_server():
    import subprocess
    import sys

    code = "import sys, lepton_ai; bad = [m for m in sys.modules if m.split('.')[0] in ('django', 'apps', 'lepton_web', 'rest_framework', 'torch')]; print(bad)"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60)
    assert result.stdout.strip() == "[]"


def test_compress_wait_for_the_recommendation_and_serve_it_as_stored(sdk_as, world, cpu_node):
    """A quantized version comes out of the experiment; its deployment answers what it computes as stored."""
    from tests.factories import dataset_with_version

    iris = dataset_with_version(world.acme, bundled="iris", name="iris")[1]
    model_with_version(
        world.acme, iris, spec={"family": "mlp", "hidden_sizes": [64]}, name="iris-mlp", creator=world.bob, steps=200
    )
    client = sdk_as(world.bob)
    model = client.models.get("iris-mlp")

    experiment = model.compress(
        iris.dataset_id,
        max_accuracy_drop=5.0,
        strategy="grid",
        recipes=[[{"step": "quantize", "scheme": "int8_weight_only"}]],
        budget=1,
        finetune_epochs=0,
    )
    best = experiment.wait(timeout=120).recommended

    assert experiment.status == "succeeded"
    assert [e.id for e in client.experiments.list()] == [experiment.id]
    assert best.number == 2
    assert [t["kind"] for t in best.transforms] == ["quantize"]
    assert best.bytes < model.version(1).bytes
    assert experiment.frontier()
    stored = ModelVersion.objects.get(model__name="iris-mlp", number=2)
    inputs = np.array([[5.1, 3.5, 1.4, 0.2], [6.7, 3.0, 5.2, 2.3], [5.9, 3.0, 4.2, 1.5]], dtype=np.float32)
    predictions = best.deploy("iris-int8").predict(inputs, k=3)
    for prediction, probs in zip(predictions, own_probabilities(stored, inputs), strict=True):
        got = {s["index"]: s["probability"] for s in prediction["top_k"]}
        assert got == pytest.approx({i: float(p) for i, p in enumerate(probs)}, abs=1e-6)
    assert experiment.promote(version=best.number)["version"] == 2


def test_a_member_of_several_teams_names_the_team(sdk_as, world):
    from apps.accounts.models import Membership

    Membership.objects.create(user=world.bob, team=world.globex, role="member")
    with pytest.raises(la.BadRequest, match="you are in 2 teams \\(acme, globex\\): pass team= to the Client"):
        sdk_as(world.bob).team  # noqa: B018
    assert sdk_as(world.bob, team="globex").datasets.create("g", task="tabular_classification").team == "globex"
