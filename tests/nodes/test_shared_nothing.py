"""Acceptance: machines that share no disk. A web server and two node agents, each with its own
var directory, MEDIA_ROOT and cache; nothing shared but PostgreSQL, Redis and an S3 bucket (moto's
server, a real S3 HTTP API on loopback). The SDK runs the whole flow on it: upload a CSV and an image
zip, train with checkpoints, SIGKILL the agent running the training (a machine that dies) so the
other resumes from the checkpoint in S3, compress, export ONNX, deploy, predict, delete. Objects
appear in the bucket and go with what they belong to; no machine's MEDIA_ROOT ever holds a file.
"""

import csv
import io
import os
import signal
import socket
import urllib.request
import zipfile

import numpy as np
import onnxruntime
import pytest
from django.contrib.auth import get_user_model
from django.db import connection
from PIL import Image

import lepton_ai as la
from apps.accounts.services import team_create
from apps.accounts.tokens import token_create
from apps.jobs.models import Job, JobEpoch
from apps.nodes.models import Node
from tests.processes import start, stop, wait_until

EPOCHS = 24  # long enough to be killed mid-job after two checkpoints, short on CI
INT8 = [{"step": "quantize", "scheme": "int8_weight_only"}]


@pytest.fixture(autouse=True)
def _postgresql_only():
    if connection.vendor != "postgresql":
        pytest.skip("machines that share no disk share PostgreSQL (the test run's database is SQLite)")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _answers(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2) as response:  # noqa: S310 (a localhost URL)
            return response.status == 200
    except OSError:
        return False


def _machine(tmp_path, name: str, shared: dict) -> dict:
    """The env of one machine: its own var directory, MEDIA_ROOT, cache and upload temp folder."""
    root = tmp_path / name
    return {
        **shared,
        "LEPTON_VAR_DIR": str(root),
        "LEPTON_MEDIA_ROOT": str(root / "media"),
        "LEPTON_CACHE_DIR": str(root / "cache"),
        "LEPTON_UPLOAD_TEMP_DIR": str(root / "uploads"),
    }


def _shared_env(redis_url: str, bucket) -> dict:
    db = connection.settings_dict
    password = f":{db['PASSWORD']}" if db.get("PASSWORD") else ""
    database = f"postgres://{db['USER']}{password}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{db['NAME']}"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("LEPTON_", "AWS_")) and k != "DATABASE_URL"}
    return {
        **env,
        **bucket.env,
        "DATABASE_URL": database,
        "REDIS_URL": redis_url,
        "LEPTON_WORKERS": "2",
        "LEPTON_PROGRESS_INTERVAL": "0.2",
        "LEPTON_HEARTBEAT_SECONDS": "1",
        "LEPTON_NODE_HEARTBEAT_SECONDS": "1",
        "LEPTON_JOB_STALE_SECONDS": "3",
        "LEPTON_NODE_STALE_SECONDS": "3",
    }


def _iris_csv(path):
    from sklearn.datasets import load_iris

    iris = load_iris()
    with path.open("w", newline="") as out:
        writer = csv.writer(out)
        writer.writerow([*iris.feature_names, "species"])
        for row, label in zip(iris.data, iris.target, strict=True):
            writer.writerow([*row, iris.target_names[label]])
    return iris.data.astype(np.float32), iris.target


def _digits_zip(path, per_class: int = 6):
    from sklearn.datasets import load_digits

    digits = load_digits()
    taken = dict.fromkeys(range(10), 0)
    with zipfile.ZipFile(path, "w") as archive:
        for index, (image, label) in enumerate(zip(digits.images, digits.target, strict=True)):
            if taken[label] < per_class:
                taken[label] += 1
                buffer = io.BytesIO()
                Image.fromarray(np.rint(image * (255 / 16)).astype(np.uint8), mode="L").save(buffer, format="PNG")
                archive.writestr(f"{label}/{index:04d}.png", buffer.getvalue())


def _files(folder) -> list[str]:
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*") if p.is_file()) if folder.exists() else []


@pytest.fixture
def machines(tmp_path, redis_url, s3_bucket):
    """(url, token, agents by name, env by machine) of a web server and two node agents sharing no disk."""
    user = get_user_model().objects.create_user("ops", password="ops-password-123")
    team_create(creator=user, name="Shared nothing", slug="sn")
    token = token_create(user=user, name="sdk")[1]
    shared = _shared_env(redis_url, s3_bucket)
    envs = {name: _machine(tmp_path, name, shared) for name in ("web", "n1", "n2")}
    url = f"http://127.0.0.1:{_free_port()}"
    web = start(envs["web"], "runserver", url.removeprefix("http://"), "--noreload")
    agents = {name: start(envs[name], "node_agent", "--name", name) for name in ("n1", "n2")}
    try:
        wait_until(lambda: _answers(f"{url}/healthz"), seconds=60, what="the web server")
        wait_until(lambda: Node.objects.filter(status="online").count() == 2, seconds=60, what="two nodes")
        yield url, token, agents, envs
    finally:
        logs = {name: stop(agent) for name, agent in agents.items()}
        logs["web"] = stop(web)
        for name, log in logs.items():
            print(f"--- {name} ---", log[-2000:], sep="\n")


@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_the_whole_flow_on_s3_across_machines_that_share_no_disk(machines, s3_bucket, tmp_path):
    url, token, agents, envs = machines
    client = la.Client(url, token=token)
    features, labels = _iris_csv(tmp_path / "iris.csv")
    _digits_zip(tmp_path / "digits.zip")

    iris = client.datasets.upload("iris", tmp_path / "iris.csv", task="tabular_classification", timeout=120)
    digits = client.datasets.upload("digits", tmp_path / "digits.zip", task="image_classification", timeout=120)
    assert iris.upload_version.status == digits.upload_version.status == "ready"
    assert sum(key.startswith("datasets/") for key in s3_bucket.object_keys()) >= 3  # two tensor files, a preview grid
    assert not any(key.startswith("uploads/") for key in s3_bucket.object_keys())  # the raw uploads went after ingest

    model = client.models.create("iris-mlp", arch={"family": "mlp", "hidden_sizes": [256, 256]}, dataset=iris)
    job = model.train(iris, epochs=EPOCHS, learning_rate=0.01, batch_size=8)
    wait_until(lambda: (Job.objects.get(pk=job.id).checkpoint_epoch or 0) >= 2, seconds=120, what="two checkpoints")
    first = Job.objects.select_related("node").get(pk=job.id).node.name
    assert any(key.startswith("checkpoints/") for key in s3_bucket.object_keys())
    stop(agents[first], signal.SIGKILL)  # the machine dies: its cache and MEDIA_ROOT are gone with it
    killed_at = Job.objects.get(pk=job.id).checkpoint_epoch

    trained = job.wait(timeout=240)
    assert trained.status == "succeeded", trained.status_reason
    row = Job.objects.select_related("node").get(pk=job.id)
    second = "n2" if first == "n1" else "n1"
    assert (row.node.name, row.attempts) == (second, 2)
    resumed = JobEpoch.objects.filter(job_id=job.id, attempt=2).order_by("epoch").values_list("epoch", flat=True)
    assert list(resumed) == list(range(killed_at + 1, EPOCHS + 1))  # from the checkpoint epoch on, not from 1
    assert _files(tmp_path / second / "cache")  # the survivor read the checkpoint and the data from S3

    experiment = model.compress(
        iris, max_accuracy_drop=10.0, strategy="grid", recipes=[INT8], budget=1, finetune_epochs=0
    )
    best = experiment.wait(timeout=240).recommended
    assert best is not None, experiment.status_reason
    client.http.request("POST", f"{best.url}exports/", json={"format": "onnx"})
    wait_until(
        lambda: client.http.request("GET", f"{best.url}exports/onnx/")["status"] == "ready",
        seconds=120,
        what="the ONNX export",
    )
    onnx_file = tmp_path / "best.onnx"
    client.http.download(f"{best.url}exports/onnx/download/", onnx_file)  # a presigned URL of the bucket
    session = onnxruntime.InferenceSession(str(onnx_file), providers=["CPUExecutionProvider"])
    assert session.get_inputs()

    deployment = best.deploy("iris")
    predictions = deployment.predict(features[:30].tolist(), k=3)
    top = np.array([p["top_k"][0]["index"] for p in predictions])
    assert (top == labels[:30]).mean() > 0.5
    assert any(key.startswith("models/") for key in s3_bucket.object_keys())
    assert any(key.startswith("exports/") for key in s3_bucket.object_keys())

    deployment.delete()
    model.delete()
    iris.delete()
    digits.delete()
    wait_until(
        lambda: s3_bucket.object_keys() == [], seconds=60, what=f"an empty bucket (left: {s3_bucket.object_keys()})"
    )
    for name in ("web", "n1", "n2"):
        assert _files(tmp_path / name / "media") == [], name  # every artifact lived in S3 only
