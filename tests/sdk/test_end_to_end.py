"""Acceptance: the SDK drives a running Lepton (a web server process and a node agent with its workers)
through upload → train → compress → deploy → predict, and the predictions are what the stored model computes.

The server and the worker are real processes sharing a throwaway SQLite file; the check at the end
downloads the recommended version's weights and rebuilds the module here, from them alone.
"""

import io
import socket
import threading
import urllib.request
import zipfile

import numpy as np
import pytest
import torch
from PIL import Image

import lepton_ai as la
from apps.datasets.loading import preprocess
from apps.registry.rebuild import rebuild_module
from apps.registry.weights import load_weights
from lepton_ai.progress import ProgressBar
from tests.processes import lepton_env, manage, start, stop, wait_until

SETUP = """
from django.contrib.auth import get_user_model
from apps.accounts.services import team_create
from apps.accounts.tokens import token_create
user = get_user_model().objects.create_user("e2e", password="e2e-password-123")
team_create(creator=user, name="End to end", slug="e2e")
print(token_create(user=user, name="sdk")[1])
"""
INT8 = [{"step": "quantize", "scheme": "int8_weight_only"}]
PER_CLASS = 40  # training images per digit in the zip; the rest are held out for predict


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


@pytest.fixture
def running_lepton(tmp_path):
    """(url, token): a web server and a node agent (its django-q2 workers) on one fresh installation."""
    env = lepton_env(tmp_path, LEPTON_WORKERS="2", LEPTON_PROGRESS_INTERVAL="0.2")
    token = manage(env, "shell", "-c", SETUP).strip().splitlines()[-1]
    url = f"http://127.0.0.1:{_free_port()}"
    web = start(env, "runserver", url.removeprefix("http://"), "--noreload")
    agent = start(env, "node_agent", "--name", "e2e-node")
    try:
        wait_until(lambda: _answers(f"{url}/healthz"), seconds=60, what="the web server")
        yield url, token
    finally:
        agent_log, web_log = stop(agent), stop(web)
        print("--- node agent ---", agent_log[-3000:], "--- web ---", web_log[-3000:], sep="\n")


def _digits():
    """scikit-learn's digits as 8x8 uint8 images (0-255, like the bundled set) and labels."""
    from sklearn.datasets import load_digits

    digits = load_digits()
    return np.rint(digits.images * (255 / 16)).astype(np.uint8), digits.target


def _digits_zip(path, images, labels) -> tuple[np.ndarray, np.ndarray]:
    """A <class>/<image>.png zip of PER_CLASS images per digit; returns the held-out images and labels."""
    taken = dict.fromkeys(range(10), 0)
    held_out = []
    with zipfile.ZipFile(path, "w") as archive:
        for index, (image, label) in enumerate(zip(images, labels, strict=True)):
            if taken[label] == PER_CLASS:
                held_out.append(index)
                continue
            taken[label] += 1
            buffer = io.BytesIO()
            Image.fromarray(image, mode="L").save(buffer, format="PNG")
            archive.writestr(f"{label}/{index:04d}.png", buffer.getvalue())
    return images[held_out][:, None].astype(np.float32), labels[held_out]


def test_upload_train_compress_deploy_predict(running_lepton, tmp_path):
    url, token = running_lepton
    images, labels = _digits()
    held_out, held_out_labels = _digits_zip(tmp_path / "digits.zip", images, labels)
    terminal = io.StringIO()
    client = la.Client(url, token=token)

    ds = client.datasets.upload("digits-png", tmp_path / "digits.zip", task="image_classification", timeout=120)
    assert (ds.upload_version.status, ds.upload_version.sample_shape) == ("ready", [1, 8, 8])

    model = client.models.create("digits-cnn", arch={"family": "cnn_small"}, dataset=ds)
    job = model.train(ds, epochs=15, learning_rate=0.003)
    follower = la.Client(url, token=token).jobs.get(job.id)  # tails the log while the job runs
    followed = []
    tail = threading.Thread(target=lambda: followed.extend(follower.logs(follow=True, interval=0.3)))
    tail.start()
    job.wait(progress=ProgressBar("train", stream=terminal), timeout=300)
    tail.join(timeout=60)
    assert not tail.is_alive()
    assert "100.0%" in terminal.getvalue()
    epochs = [int(line["message"].split()[1].rstrip(":")) for line in followed if line["message"].startswith("epoch ")]
    assert epochs == list(range(1, 16)), followed  # every epoch's line: follow ended with the job, not before

    experiment = model.compress(ds, max_accuracy_drop=5.0, strategy="grid", recipes=[INT8], budget=1, finetune_epochs=0)
    best = experiment.wait(progress=ProgressBar("compress", stream=terminal), timeout=300).recommended
    assert best is not None, experiment.status_reason
    assert [t["kind"] for t in best.transforms] == ["quantize"]
    assert best.bytes < job.version.bytes
    weights_file = best.save(tmp_path / "digits-int8.safetensors")

    deployment = best.deploy("digits")
    predictions = deployment.predict(held_out[:64], k=10)

    module = rebuild_module(
        best.spec,
        input_shape=tuple(best.input_shape),
        num_classes=best.num_classes,
        transforms=best.transforms,
        weights=load_weights(weights_file),
    )
    with torch.no_grad():
        own = torch.softmax(module(preprocess(torch.from_numpy(held_out[:64]), best.preprocessing)), dim=1)
    for prediction, probs in zip(predictions, own, strict=True):
        served = {score["index"]: score["probability"] for score in prediction["top_k"]}
        assert served == pytest.approx({i: float(p) for i, p in enumerate(probs)}, abs=1e-5)
    top = np.array([prediction["top_k"][0]["index"] for prediction in predictions])
    assert (top == held_out_labels[:64]).mean() > 0.5  # a trained model (chance is 0.1)
    assert deployment.stats(minutes=5)["totals"]["requests"] == 1
