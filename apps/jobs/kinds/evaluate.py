"""The `evaluate` kind: measure a version on a dataset version, as a scheduled job.

Spec: {"model": id, "version": n, "dataset": id, "dataset_version": n (default latest ready)}.
Useful where measurements must run on a particular (GPU) node under the team's quotas.
"""

from apps.core.errors import ApplicationError
from apps.datasets.models import DatasetVersion
from apps.jobs.kinds import register_kind
from apps.jobs.kinds.train import _dataset_version, _model
from apps.registry.evaluations import check_compatible, evaluate_now
from apps.registry.models import Model


def validate(spec: dict, *, team, actor) -> dict:
    model = _model(spec, team)
    version = model.versions.filter(number=spec.get("version"), status="ready").first()
    if version is None:
        raise ApplicationError("spec.version: no such ready version.", fields={"spec.version": ["Not found."]})
    dataset_version = _dataset_version(spec, model)
    check_compatible(version, dataset_version)
    return {
        "model": model.pk,
        "version": version.number,
        "dataset": dataset_version.dataset_id,
        "dataset_version": dataset_version.number,
    }


def run(context) -> dict:
    spec = context.job.spec
    version = Model.objects.get(pk=spec["model"]).versions.get(number=spec["version"])
    dataset_version = DatasetVersion.objects.get(dataset_id=spec["dataset"], number=spec["dataset_version"])
    context.progress(0.1, "evaluating")
    evaluation = evaluate_now(actor=context.job.submitted_by, version=version, dataset_version=dataset_version)
    return {
        "model": spec["model"],
        "version": spec["version"],
        "evaluation": evaluation.pk,
        "test_accuracy": evaluation.accuracy,
    }


def register() -> None:
    register_kind(
        "evaluate",
        validate=validate,
        run=run,
        describe=lambda spec: f"model {spec.get('model')} v{spec.get('version')} on dataset {spec.get('dataset')}",
    )
