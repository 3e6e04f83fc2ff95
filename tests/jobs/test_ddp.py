"""A job holding 2 GPUs trains data-parallel: two processes (gloo on CPU), identical weights, one result."""

import re

import pytest

from apps.accounts.models import TeamQuota, UsageRecord
from apps.jobs.models import GpuLease, Job, JobEpoch, JobLogLine
from apps.jobs.services import job_submit
from apps.registry.models import Model
from tests.factories import dataset_with_version, online_node


@pytest.fixture(autouse=True)
def _no_heartbeat_thread(settings):
    settings.LEPTON_HEARTBEAT_THREAD = False


def test_a_two_gpu_job_trains_with_two_ranks_that_end_identical(world, run_tasks):
    online_node("two-gpus", slots=2, gpus=2)
    TeamQuota.objects.filter(team=world.acme).update(max_concurrent_gpus=4)
    digits = dataset_with_version(world.acme, bundled="digits", name="digits")[1]
    model = Model.objects.create(
        team=world.acme,
        name="mlp",
        task="image_classification",
        architecture={"family": "mlp", "hidden_sizes": [64], "dropout": 0.1},
        dataset=digits.dataset,
    )

    with run_tasks():
        job = job_submit(
            actor=world.bob,
            team=world.acme,
            kind="train",
            gpus=2,
            spec={"model": model.pk, "dataset": digits.dataset_id, "epochs": 3, "batch_size": 32, "seed": 4},
        )

    job.refresh_from_db()
    assert job.status == "succeeded", job.status_reason
    assert (job.node.name, job.gpu_indexes) == ("two-gpus", [0, 1])
    log = "\n".join(JobLogLine.objects.filter(job=job).values_list("message", flat=True))
    assert "data-parallel training: 2 processes on 1 node(s), gloo" in log
    digests = dict(re.findall(r"rank (\d) final weights sha256 ([0-9a-f]{64})", log))
    assert set(digests) == {"0", "1"}
    assert digests["0"] == digests["1"]
    assert model.versions.count() == 1  # rank 0 alone writes the result
    assert list(JobEpoch.objects.filter(job=job).values_list("epoch", flat=True)) == [1, 2, 3]
    assert not GpuLease.objects.filter(job=job).exists()  # its GPUs are free again
    assert UsageRecord.objects.filter(source=f"job:{job.pk}:attempt:1", kind="gpu_seconds").count() == 1


def test_a_job_asking_for_more_gpus_than_any_node_has_is_refused_at_once(world):
    online_node("two-gpus", slots=2, gpus=2)
    TeamQuota.objects.filter(team=world.acme).update(max_concurrent_gpus=16)
    from apps.core.errors import ApplicationError

    with pytest.raises(ApplicationError) as refused:
        job_submit(actor=world.bob, team=world.acme, kind="train", gpus=8, spec={})

    assert refused.value.message == "gpus: no node has 8 GPUs (the largest has 2)."
    assert not Job.objects.exists()


def test_a_job_asking_for_more_gpus_than_the_quota_is_refused_with_the_limit(world):
    online_node("eight-gpus", slots=8, gpus=8)
    from apps.core.errors import QuotaExceeded

    with pytest.raises(QuotaExceeded) as refused:
        job_submit(actor=world.bob, team=world.acme, kind="train", gpus=2, spec={})

    assert refused.value.limit == "max_concurrent_gpus"
    assert "may hold at most 1" in refused.value.message
