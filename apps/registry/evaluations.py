"""Measuring a version on a dataset version's test split, in a worker.

Every figure is measured on the stored artifact as rebuilt from storage, never computed
from a formula: accuracy, loss and macro-F1 on the test split, the confusion matrix,
parameter and non-zero counts of the stored weights, the artifact's bytes on disk,
FLOPs per sample (torch's FlopCounterMode), latency at batch 1 and throughput at batch 64
on the device the worker picked at run time (recorded beside the figures).
"""

from collections.abc import Callable

import torch
from django.db import transaction
from django.utils import timezone

from apps.accounts.models import Role
from apps.accounts.services import require_role
from apps.core import work
from apps.core.errors import ApplicationError, Conflict
from apps.core.storage import local_path
from apps.datasets.models import DatasetVersion
from apps.datasets.selectors import version_splits
from apps.registry.loading import version_module
from apps.registry.measure import (
    describe_device,
    evaluate_classifier,
    flops_per_sample,
    latency_per_sample,
    parameter_counts,
    throughput,
)
from apps.registry.models import Evaluation, ModelVersion
from apps.registry.weights import load_weights


def check_compatible(version: ModelVersion, dataset_version: DatasetVersion) -> None:
    """The dataset version must feed this version: same task, input shape and class count."""
    problems = []
    if dataset_version.dataset.team_id != version.model.team_id:
        problems.append("it belongs to another team")
    if dataset_version.status != DatasetVersion.Status.READY:
        problems.append(f"it is {dataset_version.status}")
    elif list(dataset_version.sample_shape) != list(version.input_shape):
        problems.append(f"its samples are {dataset_version.sample_shape}, the model takes {version.input_shape}")
    elif len(dataset_version.class_names) != version.num_classes:
        problems.append(f"it has {len(dataset_version.class_names)} classes, the model {version.num_classes}")
    if problems:
        message = f"dataset: {dataset_version} cannot evaluate {version}: {'; '.join(problems)}."
        raise ApplicationError(message, fields={"dataset": problems})


def evaluation_spec(version: ModelVersion, dataset_version: DatasetVersion) -> dict:
    """The spec of the `evaluate` job that measures `version` on `dataset_version`."""
    return {
        "model": version.model_id,
        "version": version.number,
        "dataset": dataset_version.dataset_id,
        "dataset_version": dataset_version.number,
    }


@transaction.atomic
def evaluation_request(*, actor, version: ModelVersion, dataset_version: DatasetVersion, gpus: int = 0) -> Evaluation:
    """Queue (or re-run) the evaluation of `version` on `dataset_version` as an `evaluate` job."""
    require_role(actor, version.model.team, Role.MEMBER)
    if version.status != ModelVersion.Status.READY:
        raise ApplicationError(
            f"version: v{version.number} is {version.status}, not ready.", fields={"version": ["Not ready."]}
        )
    check_compatible(version, dataset_version)
    evaluation = Evaluation.objects.select_for_update().filter(version=version, dataset_version=dataset_version).first()
    if evaluation is not None and evaluation.status == Evaluation.Status.PROCESSING:
        return evaluation  # already on its way
    job_id = work.request(
        "evaluate", actor=actor, team=version.model.team, spec=evaluation_spec(version, dataset_version), gpus=gpus
    )
    return evaluation_start(actor=actor, version=version, dataset_version=dataset_version, job_id=job_id)


def evaluation_start(
    *, actor, version: ModelVersion, dataset_version: DatasetVersion, job_id: int | None
) -> Evaluation:
    """The (version, dataset version) row, processing for `job_id`: created, or reset for a new run.

    The row records which job measures it, and only that job's result is stored, so a job
    of an earlier run still finishing can never write into the new one.
    """
    reset = {
        "status": Evaluation.Status.PROCESSING,
        "error": "",
        "finished_at": None,
        "produced_by_job": job_id,
        "requested_by": actor,
        "created_at": timezone.now(),
    }
    evaluation, _ = Evaluation.objects.update_or_create(
        version=version, dataset_version=dataset_version, defaults=reset
    )
    return evaluation


def evaluate_now(
    *,
    actor,
    version: ModelVersion,
    dataset_version: DatasetVersion,
    job_id: int | None,  # None: measured outside any job (tests, scripts)
    device: torch.device,
    report: Callable[[float, str], None] = lambda fraction, message: None,
    fence: Callable[[], None] = lambda: None,
) -> Evaluation:
    """Measure in this process (a job's worker), recording the usual Evaluation row as that job's.

    An earlier attempt of the same job that already stored it is not repeated.
    """
    check_compatible(version, dataset_version)
    done = Evaluation.objects.filter(
        version=version, dataset_version=dataset_version, produced_by_job=job_id, status=Evaluation.Status.READY
    ).first()
    if done is not None:
        return done
    with transaction.atomic():
        fence()  # a stale attempt must not take the row over from the run that owns it now
        evaluation = evaluation_start(actor=actor, version=version, dataset_version=dataset_version, job_id=job_id)
    figures = measure(version, dataset_version, device=device, report=report)
    with transaction.atomic():
        fence()
        stored = Evaluation.objects.filter(
            pk=evaluation.pk, produced_by_job=job_id, status=Evaluation.Status.PROCESSING
        ).update(status=Evaluation.Status.READY, finished_at=timezone.now(), **figures)
        if not stored:
            raise Conflict(f"the evaluation of {version} on {dataset_version} was re-requested or deleted meanwhile.")
    evaluation.refresh_from_db()
    return evaluation


def measure(version: ModelVersion, dataset_version: DatasetVersion, *, device: torch.device, report) -> dict:
    """Every figure of an evaluation, measured on the stored artifact on `device`."""
    module = version_module(version)
    _, _, test = version_splits(dataset_version)
    features, labels = test.tensors()
    report(0.05, f"evaluating {len(labels):,} test samples on {device.type}")
    metrics = evaluate_classifier(
        module,
        features,
        labels,
        num_classes=version.num_classes,
        device=device,
        progress=lambda fraction: report(0.05 + 0.6 * fraction, "evaluating the test split"),
    )
    report(0.7, "counting FLOPs and measuring speed")
    shape = tuple(version.input_shape)
    module = module.to(device)
    artifact = local_path(version.artifact)
    total, nonzero = parameter_counts(load_weights(artifact))
    figures = {
        **{key: metrics[key] for key in ("accuracy", "loss", "macro_f1", "confusion_matrix", "sample_count")},
        "parameter_count": total,
        "nonzero_parameters": nonzero,
        "artifact_bytes": artifact.stat().st_size,
        "flops_per_sample": flops_per_sample(version_module(version, computing_as_stored=False), shape),
        "latency_ms": 1000 * latency_per_sample(module, shape, device=device),
        "throughput": throughput(module, shape, device=device),
        "device": describe_device(device),
    }
    if device.type == "cuda":
        torch.cuda.empty_cache()
    return figures
