"""Training through a job: real torch on bundled data, a new version with lineage and measurements."""

import time

import pytest

from apps.jobs.models import JobEpoch
from apps.jobs.services import job_submit
from apps.registry.models import Model
from tests.factories import dataset_with_version


@pytest.fixture(autouse=True)
def _no_heartbeat_thread(settings):
    settings.LEPTON_HEARTBEAT_THREAD = False  # the job lives in this test's transaction


@pytest.fixture
def digits(world):
    return dataset_with_version(world.acme, bundled="digits", name="digits")[1]


@pytest.fixture
def digits_mlp(world, digits):
    return Model.objects.create(
        team=world.acme,
        name="digits-mlp",
        task="image_classification",
        architecture={"family": "mlp", "hidden_sizes": [128, 64], "dropout": 0.0},
        dataset=digits.dataset,
        created_by=world.bob,
    )


def test_training_an_mlp_on_digits_reaches_95_percent(world, digits, digits_mlp, run_tasks):
    started = time.monotonic()
    with run_tasks():
        job = job_submit(
            actor=world.bob,
            team=world.acme,
            kind="train",
            spec={
                "model": digits_mlp.pk,
                "dataset": digits.dataset_id,
                "epochs": 30,
                "schedule": "cosine",
                "learning_rate": 0.002,
                "seed": 0,
            },
        )

    job.refresh_from_db()
    assert job.status == "succeeded", job.status_reason
    version = digits_mlp.versions.get(number=job.result["version"])
    evaluation = version.evaluations.get()
    assert evaluation.accuracy >= 0.95
    assert job.result["test_accuracy"] == evaluation.accuracy
    assert (version.source, version.produced_by_job, version.trained_on) == ("train", job.pk, digits)
    assert JobEpoch.objects.filter(job=job).count() == 30
    assert time.monotonic() - started < 60
