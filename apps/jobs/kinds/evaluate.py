"""The `evaluate` kind: measure a version on a dataset version's test split, placed like any job.

What the version page's Evaluate button, `POST .../evaluations/` and an experiment's baseline
start. It asks for no GPU unless the submitter gives it one (an evaluation of a GPU model on a
GPU node); the figures are measured on the device the job was given.
"""

from apps.core.params import Param, Params
from apps.datasets.models import DatasetVersion
from apps.jobs.kinds import register_kind
from apps.jobs.kinds.references import (
    DATASET,
    DATASET_VERSION,
    MODEL,
    dataset_version_name,
    model_dataset_version,
    model_version_name,
    ready_version,
    team_model,
)
from apps.registry.evaluations import check_compatible, evaluate_now
from apps.registry.models import Model

EVALUATE_PARAMS = Params(
    MODEL,
    Param("version", int, low=1, help="The version number to measure."),
    DATASET,
    DATASET_VERSION,
)


def validate(spec: dict, *, team, actor) -> dict:
    model = team_model(spec, team)
    version = ready_version(model, spec["version"])
    dataset_version = model_dataset_version(spec, model)
    check_compatible(version, dataset_version)
    return {**spec, "dataset": dataset_version.dataset_id, "dataset_version": dataset_version.number}


def run(context) -> dict:
    spec = context.job.spec
    version = Model.objects.get(pk=spec["model"]).versions.get(number=spec["version"])
    dataset_version = DatasetVersion.objects.get(dataset_id=spec["dataset"], number=spec["dataset_version"])
    context.log(f"measuring {version} on {dataset_version}")
    evaluation = measure_in_job(context, version, dataset_version, report=context.progress)
    context.log(f"test accuracy {evaluation.accuracy:.4f}, {evaluation.latency_ms:.3f} ms per sample")
    return measured_result(evaluation)


def measure_in_job(context, version, dataset_version, report=lambda fraction, message: None):
    """Evaluate `version` as part of the running job (train, compress and evaluate all end so)."""
    return evaluate_now(
        actor=context.job.submitted_by,
        version=version,
        dataset_version=dataset_version,
        job_id=context.job.pk,
        device=context.device,
        report=report,
        fence=context.fence,
    )


def measured_result(evaluation) -> dict:
    """What a job that measured a version returns: links to the version and its evaluation."""
    version = evaluation.version
    return {
        "model": version.model_id,
        "version": version.number,
        "evaluation": evaluation.pk,
        "test_accuracy": evaluation.accuracy,
    }


def describe(spec: dict) -> str:
    return (
        f"{model_version_name(spec['model'], spec['version'])} on "
        f"{dataset_version_name(spec['dataset'], spec['dataset_version'])}"
    )


def register() -> None:
    register_kind("evaluate", params=EVALUATE_PARAMS, validate=validate, run=run, describe=describe)
