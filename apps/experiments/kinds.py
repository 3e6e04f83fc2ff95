"""The `compress` job kind: run a recipe on a stored version, store the result as a new version, measure it.

Spec (validated at submit):
    {"model": id, "base_version": n, "dataset": id, "dataset_version": n (default latest ready),
     "eval_dataset": id, "eval_dataset_version": n (default: the training dataset version),
     "recipe": [steps], "finetune_epochs": 3, "learning_rate": 0.0005, "batch_size": 64,
     "seed": 0, "label": ""}
The new version's parent is the base version; its transforms are the base's plus the
recipe's, so the registry rebuilds it exactly. It is evaluated on the evaluation dataset
version's test split; every figure an experiment shows comes from that evaluation.
"""

from apps.core.errors import ApplicationError, NotFound
from apps.datasets.models import DatasetVersion
from apps.datasets.selectors import version_splits
from apps.experiments.compression.pipeline import FinetuneSettings, compress
from apps.experiments.compression.recipes import RecipeError, describe, validate_recipe
from apps.jobs.kinds import register_kind
from apps.jobs.kinds.train import _dataset_version, _invalid, _model
from apps.registry.evaluations import check_compatible, evaluate_now
from apps.registry.loading import version_module
from apps.registry.models import Model, ModelVersion, VersionSource
from apps.registry.services import version_from_weights

FINETUNE_NUMBERS = {  # name: (type, low, high, default)
    "finetune_epochs": (int, 0, 200, FinetuneSettings.epochs),
    "learning_rate": (float, 1e-7, 1.0, FinetuneSettings.learning_rate),
    "batch_size": (int, 1, 65536, FinetuneSettings.batch_size),
    "seed": (int, 0, 2**31 - 1, 0),
}
KNOWN = {
    "model",
    "base_version",
    "dataset",
    "dataset_version",
    "eval_dataset",
    "eval_dataset_version",
    "recipe",
    "label",
    "experiment",
    *FINETUNE_NUMBERS,
}


def checked_recipe(recipe, field: str = "spec.recipe") -> list[dict]:
    try:
        return validate_recipe(recipe)
    except RecipeError as error:
        where = field + error.field.removeprefix("recipe")
        raise ApplicationError(f"{where}: {error.message}", fields={where: [error.message]}) from None


def compressible_base(model: Model, number) -> ModelVersion:
    if isinstance(number, bool) or not isinstance(number, int):
        raise _invalid("base_version", f"must be a version number; got {number!r}")
    base = model.versions.filter(number=number, status=ModelVersion.Status.READY).first()
    if base is None:
        raise _invalid("base_version", f"{model.name} has no ready version {number}")
    if any(transform.get("kind") == "quantize" for transform in base.transforms):
        raise _invalid("base_version", f"v{base.number} is already quantized; compress a float version")
    return base


def _setting(spec: dict, name: str):
    kind, low, high, default = FINETUNE_NUMBERS[name]
    value = spec.get(name, default)
    if isinstance(value, bool) or not isinstance(value, int | float) or (kind is int and float(value) % 1):
        raise _invalid(name, f"must be {'an integer' if kind is int else 'a number'}; got {value!r}")
    if not low <= value <= high:
        raise _invalid(name, f"must be from {low} to {high}")
    return kind(value)


def _own_experiment(value, team) -> int | None:
    """The experiment a trial's job reports to: only one of the submitting team."""
    from apps.experiments.models import Experiment

    if value is None:
        return None
    if (
        isinstance(value, bool)
        or not isinstance(value, int)
        or not Experiment.objects.filter(pk=value, team=team).exists()
    ):
        raise NotFound("spec.experiment: no such experiment in this team.", fields={"spec.experiment": ["Not found."]})
    return value


def validate(spec: dict, *, team, actor) -> dict:
    unknown = sorted(set(spec) - KNOWN)
    if unknown:
        raise _invalid(unknown[0], "not a compress parameter")
    model = _model(spec, team)
    base = compressible_base(model, spec.get("base_version"))
    dataset_version = _dataset_version(spec, model)
    check_compatible(base, dataset_version)
    eval_version = dataset_version
    if spec.get("eval_dataset") is not None:
        eval_version = _dataset_version(
            {"dataset": spec["eval_dataset"], "dataset_version": spec.get("eval_dataset_version")}, model
        )
        check_compatible(base, eval_version)
    numbers = {name: _setting(spec, name) for name in FINETUNE_NUMBERS}
    recipe = checked_recipe(spec.get("recipe"))
    return {
        "model": model.pk,
        "base_version": base.number,
        "dataset": dataset_version.dataset_id,
        "dataset_version": dataset_version.number,
        "eval_dataset": eval_version.dataset_id,
        "eval_dataset_version": eval_version.number,
        "recipe": recipe,
        "label": str(spec.get("label") or describe(recipe))[:100],
        "experiment": _own_experiment(spec.get("experiment"), team),
        **numbers,
    }


def run(context) -> dict:
    spec, job = context.job.spec, context.job
    model = Model.objects.get(pk=spec["model"])
    base = model.versions.get(number=spec["base_version"])
    dataset_version = DatasetVersion.objects.get(dataset_id=spec["dataset"], number=spec["dataset_version"])
    eval_version = DatasetVersion.objects.get(dataset_id=spec["eval_dataset"], number=spec["eval_dataset_version"])
    version = model.versions.filter(produced_by_job=job.pk).first()  # stored by an earlier attempt
    if version is None:
        version = _compress(context, model, base, dataset_version)
    context.progress(0.96, "measuring the new version on the test split")
    evaluation = evaluate_now(actor=job.submitted_by, version=version, dataset_version=eval_version)
    context.log(
        f"v{version.number}: {version.bytes:,} bytes ({version.bytes / max(base.bytes, 1):.3f}x of v{base.number}), "
        f"test accuracy {evaluation.accuracy:.4f}, {evaluation.latency_ms:.3f} ms per sample"
    )
    return {
        "model": model.pk,
        "version": version.number,
        "evaluation": evaluation.pk,
        "test_accuracy": evaluation.accuracy,
    }


def _compress(context, model: Model, base: ModelVersion, dataset_version: DatasetVersion) -> ModelVersion:
    spec, job = context.job.spec, context.job
    train_split, val_split, _ = version_splits(dataset_version)
    settings = FinetuneSettings(
        epochs=spec["finetune_epochs"],
        learning_rate=spec["learning_rate"],
        batch_size=spec["batch_size"],
        seed=spec["seed"],
        device=context.device,
    )
    context.log(f"compressing v{base.number} ({base.bytes:,} bytes): {describe(spec['recipe'])}")
    result = compress(
        version_module(base),
        spec=base.spec,
        transforms=base.transforms,
        recipe=spec["recipe"],
        input_shape=tuple(base.input_shape),
        num_classes=base.num_classes,
        splits=(train_split, val_split),
        settings=settings,
        report=lambda fraction, message: context.progress(0.9 * fraction, message or "compressing"),
        log=context.log,
    )
    context.progress(0.92, "storing the compressed weights as a new version")
    return version_from_weights(
        actor=job.submitted_by,
        model=model,
        weights=result.state,
        spec=result.spec,
        dataset_version=dataset_version,
        source=VersionSource.COMPRESS,
        parent=base,
        transforms=result.transforms,
        job_id=job.pk,
        label=spec["label"],
        input_shape=base.input_shape,
        class_names=base.class_names,
        preprocessing=base.preprocessing,
    )


def register() -> None:
    register_kind(
        "compress",
        validate=validate,
        run=run,
        describe=lambda spec: f"model {spec.get('model')} v{spec.get('base_version')}: {spec.get('label', '')}",
    )
