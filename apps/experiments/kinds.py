"""The `compress` job kind: run a recipe on a stored version, store the result as a new version, measure it.

Its spec is declared once in `COMPRESS_PARAMS` (the fine-tuning settings in `FINETUNE_PARAMS`,
which experiments share). The new version's parent is the base version; its transforms are the base's plus the
recipe's, so the registry rebuilds it exactly. It is evaluated on the evaluation dataset
version's test split; every figure an experiment shows comes from that evaluation.
"""

from apps.core.errors import NotFound
from apps.core.params import Param, ParamError, Params, invalid
from apps.datasets.models import DatasetVersion
from apps.datasets.selectors import version_splits
from apps.experiments.compression.pipeline import FinetuneSettings, compress
from apps.experiments.compression.recipes import RecipeError, describe, validate_recipe
from apps.jobs.kinds import register_kind
from apps.jobs.kinds.evaluate import measure_in_job, measured_result
from apps.jobs.kinds.references import (
    DATASET,
    DATASET_VERSION,
    MODEL,
    model_dataset_version,
    model_version_name,
    ready_version,
    team_model,
)
from apps.registry.evaluations import check_compatible
from apps.registry.loading import version_module
from apps.registry.models import Model, ModelVersion, VersionSource
from apps.registry.services import version_from_weights


def checked_recipe(recipe, field: str = "spec.recipe") -> list[dict]:
    try:
        return validate_recipe(recipe)
    except RecipeError as error:
        where = field + error.field.removeprefix("recipe")
        raise invalid(where, error.message) from None


def _recipe(value) -> list[dict]:
    """Param check of `recipe`: the recipe validated, errors naming the step field below it."""
    try:
        return validate_recipe(value)
    except RecipeError as error:
        raise ParamError(error.message, error.field.removeprefix("recipe")) from None


DEFAULTS = FinetuneSettings()
FINETUNE_PARAMS = Params(
    Param(
        "finetune_epochs",
        int,
        DEFAULTS.epochs,
        low=0,
        high=200,
        label="Fine-tuning epochs per step",
        help="Epochs of fine-tuning after each pruning, low-rank or distillation step.",
    ),
    Param(
        "learning_rate",
        float,
        DEFAULTS.learning_rate,
        low=1e-7,
        high=1.0,
        label="Fine-tuning learning rate",
    ),
    Param("batch_size", int, DEFAULTS.batch_size, low=1, high=65536),
    Param("seed", int, DEFAULTS.seed, low=0, high=2**31 - 1),
)
COMPRESS_PARAMS = Params(
    MODEL,
    Param("base_version", int, low=1, help="The float version to compress."),
    DATASET,
    DATASET_VERSION,
    Param("eval_dataset", int, None, low=1, nullable=True, help="Measure on this dataset; default: the training one."),
    Param("eval_dataset_version", int, None, low=1, nullable=True),
    Param("recipe", list, help='Steps, e.g. [{"step": "prune", "sparsity": 0.9}]', check=_recipe),
    *FINETUNE_PARAMS,
    Param("label", str, "", max_length=100, help="A name for the new version; default: the recipe's."),
    Param("experiment", int, None, low=1, nullable=True, help="The experiment this trial reports to."),
)


def compressible_base(model: Model, number) -> ModelVersion:
    base = ready_version(model, number, "base_version")
    if any(transform.get("kind") == "quantize" for transform in base.transforms):
        raise invalid("spec.base_version", f"v{base.number} is already quantized; compress a float version")
    return base


def _own_experiment(value, team) -> int | None:
    """The experiment a trial's job reports to: only one of the submitting team."""
    from apps.experiments.models import Experiment

    if value is not None and not Experiment.objects.filter(pk=value, team=team).exists():
        raise NotFound("spec.experiment: no such experiment in this team.", fields={"spec.experiment": ["Not found."]})
    return value


def validate(spec: dict, *, team, actor) -> dict:
    model = team_model(spec, team)
    base = compressible_base(model, spec["base_version"])
    dataset_version = model_dataset_version(spec, model)
    check_compatible(base, dataset_version)
    eval_version = dataset_version
    if spec["eval_dataset"] is not None:
        eval_version = model_dataset_version(spec, model, prefix="eval_")
        check_compatible(base, eval_version)
    return {
        **spec,
        "dataset": dataset_version.dataset_id,
        "dataset_version": dataset_version.number,
        "eval_dataset": eval_version.dataset_id,
        "eval_dataset_version": eval_version.number,
        "label": spec["label"] or describe(spec["recipe"])[:100],
        "experiment": _own_experiment(spec["experiment"], team),
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
    evaluation = measure_in_job(context, version, eval_version)
    context.log(
        f"v{version.number}: {version.bytes:,} bytes ({version.bytes / max(base.bytes, 1):.3f}x of v{base.number}), "
        f"test accuracy {evaluation.accuracy:.4f}, {evaluation.latency_ms:.3f} ms per sample"
    )
    return measured_result(evaluation)


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
        fence=context.fence,
        input_shape=base.input_shape,
        class_names=base.class_names,
        preprocessing=base.preprocessing,
    )


def register() -> None:
    register_kind(
        "compress",
        params=COMPRESS_PARAMS,
        validate=validate,
        run=run,
        describe=lambda spec: f"{model_version_name(spec['model'], spec['base_version'])}: {spec['label']}",
    )
