"""The `lepton` command against a live server: login (0600 config), ls commands, upload, logs, deploy, predict."""

import io
import json
import os
import stat
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from apps.deployments.models import Deployment
from apps.experiments.models import Experiment
from lepton_ai.cli import main
from tests.factories import PASSWORD, dataset_with_version, model_with_version
from tests.sdk.conftest import token_of

pytestmark = pytest.mark.django_db(transaction=True, serialized_rollback=True)


@pytest.fixture
def config(tmp_path, monkeypatch):
    path = tmp_path / "home" / "lepton.json"
    monkeypatch.setenv("LEPTON_CONFIG", str(path))
    for name in ("LEPTON_URL", "LEPTON_TOKEN", "LEPTON_TEAM"):
        monkeypatch.delenv(name, raising=False)
    return path


def run(*argv) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    code = main(list(argv), out=out, err=err)
    return code, out.getvalue(), err.getvalue()


@pytest.fixture
def logged_in(live_server, world, config):
    code, out, err = run("--url", live_server.url, "login", "--username", "bob", "--password", PASSWORD)
    assert code == 0, err
    return config


def test_login_stores_the_token_readable_by_its_owner_only(live_server, world, config):
    config.parent.mkdir()
    config.write_text("{}")
    config.chmod(0o644)

    code, out, _ = run("--url", live_server.url, "login", "--username", "bob", "--password", PASSWORD)

    assert code == 0
    assert "Logged in" in out
    assert "as bob" in out
    assert stat.S_IMODE(config.stat().st_mode) == 0o600
    stored = json.loads(config.read_text())
    assert stored["url"] == live_server.url
    assert stored["token"].startswith("lep_")
    assert world.bob.api_tokens.get().name == "lepton-cli"


def test_login_with_a_wrong_password_fails_and_stores_nothing(live_server, world, config):
    code, _, err = run("--url", live_server.url, "login", "--username", "bob", "--password", "nope")
    assert code == 1
    assert err == "error: Invalid username or password.\n"
    assert not config.exists()


def test_datasets_upload_and_ls(logged_in, iris_csv):
    code, out, err = run("datasets", "upload", "flowers", str(iris_csv), "--label-column", "species")
    assert code == 0, err
    assert "version 1 ready (150 samples)" in out
    assert "dataset flowers [" in err  # the progress bar (stderr is not a terminal: plain lines)
    code, out, _ = run("datasets", "ls")
    lines = out.splitlines()
    assert lines[0].split() == ["ID", "NAME", "TASK", "LATEST_VERSION", "LATEST_STATUS", "TEAM"]
    assert lines[1].split()[1:] == ["flowers", "tabular_classification", "1", "ready", "acme"]
    code, out, _ = run("--json", "datasets", "ls")
    assert json.loads(out)[0]["name"] == "flowers"


def test_models_jobs_logs_and_cancel(logged_in, world, cpu_node):
    iris = dataset_with_version(world.acme, bundled="iris", name="iris")[1]
    model, _, _ = model_with_version(world.acme, iris, name="iris-mlp", creator=world.bob)
    from lepton_ai import Client

    client = Client(None, None)  # from the config the login wrote
    finished = client.models.get(model.pk).train(iris.dataset_id, epochs=2)
    cpu_node.delete()  # no node: the next job stays queued
    queued = client.models.get(model.pk).train(iris.dataset_id, epochs=2)

    code, out, _ = run("models", "ls")
    assert "iris-mlp" in out
    code, out, _ = run("jobs", "ls")
    assert [line.split()[:3] for line in out.splitlines()[1:]] == [
        [str(queued.id), "train", "queued"],
        [str(finished.id), "train", "succeeded"],
    ]
    code, out, _ = run("jobs", "logs", str(finished.id), "-f")
    assert code == 0
    assert "epoch 2" in out
    code, out, _ = run("jobs", "cancel", str(queued.id))
    assert out == f"job {queued.id}: cancel requested (cancelled)\n"
    code, _, err = run("jobs", "cancel", "999999")
    assert (code, err) == (1, "error: Not found.\n")


def test_experiments_ls_and_show(logged_in, world, cpu_node):
    iris = dataset_with_version(world.acme, bundled="iris", name="iris")[1]
    model_with_version(
        world.acme, iris, spec={"family": "mlp", "hidden_sizes": [64]}, name="iris-mlp", creator=world.bob, steps=200
    )
    from lepton_ai import Client

    client = Client(None, None)
    experiment = client.models.get("iris-mlp").compress(
        iris.dataset_id,
        strategy="grid",
        recipes=[[{"step": "quantize", "scheme": "int8_weight_only"}]],
        budget=1,
        finetune_epochs=0,
        max_accuracy_drop=5.0,
        name="int8",
    )

    code, out, _ = run("experiments", "ls")
    assert out.splitlines()[1].split()[:5] == [str(experiment.id), "int8", "succeeded", "1", "1"]
    code, out, _ = run("experiments", "show", str(experiment.id))
    assert f"experiment {experiment.id} int8: succeeded" in out
    assert "recommended: v2" in out
    assert Experiment.objects.get().recommended.version.number == 2


def test_jobs_kinds_shows_each_parameter_as_the_server_declares_it(logged_in):
    code, out, _ = run("jobs", "kinds", "--kind", "train")

    assert code == 0
    header, *rows = out.splitlines()
    assert header.split() == ["KIND", "NAME", "TYPE", "DEFAULT", "RANGE", "HELP"]
    epochs = next(row for row in rows if row.split()[1] == "epochs")
    assert epochs.split()[:5] == ["train", "epochs", "integer", "10", "1..1000"]
    assert "Passes over the train split." in epochs
    assert all(row.startswith("train") for row in rows)
    _, everything, _ = run("jobs", "kinds")
    assert "ingest" not in everything  # started by its app, not submitted: nothing to set


def test_nodes_ls(logged_in, cpu_node):
    code, out, _ = run("nodes", "ls")
    assert out.splitlines()[1].split()[:4] == [str(cpu_node.pk), "cpu-1", "default", "online"]


def _png(path: Path, pixels: np.ndarray) -> Path:
    Image.fromarray(pixels.astype(np.uint8), mode="L").save(path)
    return path


def test_deploy_then_predict_with_inputs_an_image_or_a_key(logged_in, world, tmp_path):
    digits = dataset_with_version(world.acme, bundled="digits", name="digits")[1]
    model_with_version(world.acme, digits, spec={"family": "cnn_small"}, name="digits-cnn", creator=world.bob, steps=5)

    code, out, err = run("deploy", "digits", "--model", "digits-cnn", "--version", "1")
    assert code == 0, err
    deployment = Deployment.objects.get()
    assert f"deployment {deployment.pk} digits serves digits-cnn v1" in out

    pixels = np.zeros((8, 8))
    pixels[1:7, 3:5] = 255
    code, by_inputs, err = run("predict", "digits", "--inputs", json.dumps([pixels.tolist()]), "-k", "2")
    assert code == 0, err
    code, by_image, _ = run(
        "predict", str(deployment.pk), "--image", str(_png(tmp_path / "one.png", pixels)), "-k", "2"
    )
    assert by_inputs.startswith("0: ")
    assert by_inputs.split(",")[0].split()[1] == by_image.split(",")[0].split()[1]  # the same top class

    code, out, _ = run("--json", "deploy", "again", "--model", "digits-cnn", "--version", "1")
    assert json.loads(out)["name"] == "again"
    from apps.deployments.services import key_create

    _, secret = key_create(actor=world.bob, deployment=deployment, name="cli")
    code, out, _ = run(
        "--token",
        "lep_unused",
        "predict",
        str(deployment.pk),
        "--key",
        secret,
        "--inputs",
        json.dumps([pixels.tolist()]),
    )
    assert code == 0
    assert out.startswith("0: ")

    code, _, err = run("predict", "digits", "--inputs", "[[1, 2, 3]]")
    assert code == 1
    assert err.startswith("error: inputs: each sample must have shape [1, 8, 8]")
    assert "  inputs: " in err


def test_deploy_needs_a_version_or_an_alias(logged_in):
    with pytest.raises(SystemExit) as caught:
        run("deploy", "x", "--model", "1")
    assert caught.value.code == 2


def test_the_installed_command_and_python_dash_m_work(live_server, world, config, cpu_node):
    env = {
        **os.environ,
        "LEPTON_CONFIG": str(config),
        "LEPTON_URL": live_server.url,
        "LEPTON_TOKEN": token_of(world.bob),
    }
    lepton = Path(sys.executable).parent / "lepton"
    assert lepton.exists(), "pip install -e . (requirements.txt does) installs the `lepton` command"
    for command in ([str(lepton)], [sys.executable, "-m", "lepton_ai"]):
        result = subprocess.run([*command, "nodes", "ls"], env=env, capture_output=True, text=True, timeout=60)
        assert result.returncode == 0, result.stderr
        assert "cpu-1" in result.stdout


def test_login_with_an_existing_token_checks_it_before_storing_it(live_server, world, config):
    token = token_of(world.vera)
    code, out, _ = run("--url", live_server.url, "--token", token, "--team", "acme", "login")
    assert code == 0
    assert "as vera" in out
    assert json.loads(config.read_text()) == {"url": live_server.url, "token": token, "team": "acme"}
    code, _, err = run("--url", live_server.url, "--token", "lep_wrong", "login")
    assert (code, err) == (1, "error: Invalid token.\n")
