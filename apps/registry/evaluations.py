"""Measuring a version on a dataset version's test split, in a worker.

Every figure is measured on the stored artifact as rebuilt from storage, never computed
from a formula: accuracy, loss and macro-F1 on the test split, the confusion matrix,
parameter and non-zero counts of the stored weights, the artifact's bytes on disk,
FLOPs per sample (torch's FlopCounterMode), latency at batch 1 and throughput at batch 64
on the device the worker picked at run time (recorded beside the figures).
"""

import torch
from django.db import transaction
from django.db.models import F
from django.utils import timezone

from apps.accounts.models import Role
from apps.accounts.services import require_role
from apps.core.errors import ApplicationError
from apps.core.leases import LeasedRunner
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
    pick_device,
    throughput,
)
from apps.registry.models import Evaluation, ModelVersion
from apps.registry.weights import load_weights

EVALUATE_TASK = "apps.registry.tasks.evaluate_version"
EVALUATE = LeasedRunner(Evaluation, EVALUATE_TASK, expected_errors=(ApplicationError,))


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


@transaction.atomic
def evaluation_request(*, actor, version: ModelVersion, dataset_version: DatasetVersion) -> Evaluation:
    """Queue (or re-run) the evaluation of `version` on `dataset_version`."""
    require_role(actor, version.model.team, Role.MEMBER)
    if version.status != ModelVersion.Status.READY:
        raise ApplicationError(
            f"version: v{version.number} is {version.status}, not ready.", fields={"version": ["Not ready."]}
        )
    check_compatible(version, dataset_version)
    evaluation = Evaluation.objects.select_for_update().filter(version=version, dataset_version=dataset_version).first()
    if evaluation is not None and evaluation.status == Evaluation.Status.PROCESSING:
        return evaluation  # already on its way
    evaluation, attempt = _fresh_evaluation(actor, version, dataset_version)
    EVALUATE.dispatch(evaluation, attempt)
    return evaluation


def _fresh_evaluation(actor, version: ModelVersion, dataset_version: DatasetVersion) -> tuple[Evaluation, int]:
    """A new run of the (version, dataset version) evaluation row, as the row's next attempt.

    Re-running bumps `attempts` instead of resetting it, so a worker still holding an
    older attempt of this row can never write into the new run.
    """
    now = timezone.now()
    reset = {
        "status": Evaluation.Status.PROCESSING,
        "error": "",
        "progress": 0.0,
        "progress_message": "",
        "finished_at": None,
        "claimed_at": None,
        "heartbeat_at": now,
        "requested_by": actor,
        "created_at": now,
    }
    existing = Evaluation.objects.select_for_update().filter(version=version, dataset_version=dataset_version).first()
    if existing is None:
        return Evaluation.objects.create(version=version, dataset_version=dataset_version, attempts=1, **reset), 1
    Evaluation.objects.filter(pk=existing.pk).update(attempts=F("attempts") + 1, **reset)
    existing.refresh_from_db()
    return existing, existing.attempts


def evaluate_now(*, actor, version: ModelVersion, dataset_version: DatasetVersion) -> Evaluation:
    """Measure in this process (a job's worker already), recording the usual Evaluation row."""
    check_compatible(version, dataset_version)
    with transaction.atomic():
        evaluation, attempt = _fresh_evaluation(actor, version, dataset_version)
    evaluation_run(evaluation.pk, attempt)
    evaluation.refresh_from_db()
    return evaluation


def evaluation_run(evaluation_id: int, attempt: int) -> None:
    EVALUATE.run(evaluation_id, attempt, lambda evaluation, report: _evaluate(evaluation, attempt, report))


def _evaluate(evaluation: Evaluation, attempt: int, report) -> None:
    version, dataset_version = evaluation.version, evaluation.dataset_version
    module = version_module(version)
    _, _, test = version_splits(dataset_version)
    features, labels = test.tensors()
    device = pick_device()
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
    EVALUATE.complete(
        evaluation.pk,
        attempt,
        accuracy=metrics["accuracy"],
        loss=metrics["loss"],
        macro_f1=metrics["macro_f1"],
        confusion_matrix=metrics["confusion_matrix"],
        sample_count=metrics["sample_count"],
        parameter_count=total,
        nonzero_parameters=nonzero,
        artifact_bytes=artifact.stat().st_size,
        flops_per_sample=flops_per_sample(version_module(version, computing_as_stored=False), shape),
        latency_ms=1000 * latency_per_sample(module.to(device), shape, device=device),
        throughput=throughput(module, shape, device=device),
        device=describe_device(device),
    )
    if device.type == "cuda":
        torch.cuda.empty_cache()
