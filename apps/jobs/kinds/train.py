"""The `train` kind: real torch training of a model on a dataset version, stored as a new version.

Its spec is declared once in `TRAIN_PARAMS` (the API, the train form and the published schema
derive from it); the references (model, dataset, base version) are checked in `validate`.
The best validation epoch's weights become the version, evaluated on the test split.
"""

import torch

from apps.core.params import Param, Params, invalid
from apps.core.storage import held, local_path
from apps.datasets.models import DatasetVersion
from apps.datasets.selectors import version_splits
from apps.jobs.kinds import register_kind
from apps.jobs.kinds.evaluate import measure_in_job, measured_result
from apps.jobs.kinds.references import DATASET, DATASET_VERSION, MODEL, model_dataset_version, ready_version, team_model
from apps.jobs.training.distributed import join_data_parallel, train_data_parallel
from apps.jobs.training.loop import TrainConfig, TrainingState, train
from apps.registry.architectures import build_model
from apps.registry.evaluations import check_compatible
from apps.registry.loading import version_module
from apps.registry.models import Model, ModelVersion, VersionSource
from apps.registry.services import version_from_weights

DEFAULTS = TrainConfig()
HYPERPARAMETERS = Params(
    Param("epochs", int, DEFAULTS.epochs, low=1, high=1000, help="Passes over the train split."),
    Param("batch_size", int, DEFAULTS.batch_size, low=1, high=65536, help="Samples per optimizer step."),
    Param("optimizer", str, DEFAULTS.optimizer, choices=("adam", "adamw", "sgd")),
    Param("learning_rate", float, DEFAULTS.learning_rate, low=1e-8, high=10.0, help="The initial learning rate."),
    Param("momentum", float, DEFAULTS.momentum, low=0.0, high=0.999, help="SGD only."),
    Param("weight_decay", float, DEFAULTS.weight_decay, low=0.0, high=1.0),
    Param("schedule", str, DEFAULTS.schedule, choices=("constant", "cosine", "step"), help="Learning-rate schedule."),
    Param("step_size", int, DEFAULTS.step_size, low=1, high=1000, help="Step schedule: epochs between decays."),
    Param("gamma", float, DEFAULTS.gamma, low=1e-6, high=1.0, help="Step schedule: the decay factor."),
    Param("seed", int, DEFAULTS.seed, low=0, high=2**31 - 1, help="Initial weights and shuffling."),
    Param(
        "early_stopping_patience",
        int,
        None,
        low=1,
        high=1000,
        nullable=True,
        help="Stop after this many epochs without a better validation accuracy; blank: never.",
    ),
)
TRAIN_PARAMS = Params(
    MODEL,
    DATASET,
    DATASET_VERSION,
    Param("base_version", int, None, low=1, nullable=True, help="Fine-tune this version; blank: from scratch."),
    *HYPERPARAMETERS,
    Param("label", str, "", max_length=100, help='A name for the new version, e.g. "baseline".'),
)


def validate(spec: dict, *, team, actor) -> dict:
    model = team_model(spec, team)
    dataset_version = model_dataset_version(spec, model)
    spec = {**spec, "model": model.pk, "dataset": dataset_version.dataset_id, "dataset_version": dataset_version.number}
    if spec["base_version"] is not None:
        check_compatible(ready_version(model, spec["base_version"], "base_version"), dataset_version)
    elif dataset_version.dataset.task != model.task:
        raise invalid("spec.dataset", f"a {dataset_version.dataset.task} dataset cannot train a {model.task} model")
    return spec


def _module(model: Model, base: ModelVersion | None, dataset_version: DatasetVersion, seed: int):
    torch.manual_seed(seed)  # the initial weights depend on the seed only
    if base is not None:
        return version_module(base), base.spec, base.transforms
    shape, classes = tuple(dataset_version.sample_shape), len(dataset_version.class_names)
    return build_model(model.architecture, input_shape=shape, num_classes=classes), model.architecture, []


def run(context) -> dict:
    spec, job = context.job.spec, context.job
    model = Model.objects.get(pk=spec["model"])
    dataset_version = DatasetVersion.objects.get(dataset_id=spec["dataset"], number=spec["dataset_version"])
    base = model.versions.get(number=spec["base_version"]) if spec["base_version"] else None
    existing = model.versions.filter(produced_by_job=job.pk).first()
    if existing is None:
        config = TrainConfig(**{name: spec[name] for name in TrainConfig.__dataclass_fields__})
        existing = _train(context, model, base, dataset_version, config)
    context.progress(0.97, "evaluating the new version on the test split")
    evaluation = measure_in_job(context, existing, dataset_version)
    context.log(f"v{existing.number}: test accuracy {evaluation.accuracy:.4f} on {evaluation.sample_count} samples")
    return measured_result(evaluation)


def _train(context, model, base, dataset_version, config: TrainConfig) -> ModelVersion:
    """Train (resuming from the job's checkpoint) and store the best epoch's weights as a new version."""
    module, arch, transforms = _module(model, base, dataset_version, config.seed)
    splits = version_splits(dataset_version)[:2]
    saved = context.load_checkpoint()
    resume = TrainingState.from_checkpoint(saved) if saved else None
    context.log(
        f"training {arch['family']} on {dataset_version} ({len(splits[0])} train, {len(splits[1])} val "
        f"samples) for {config.epochs} epochs" + (f", resuming after epoch {resume.epoch}" if resume else "")
    )
    hooks = {"on_step": _progress_hook(context, config), "on_epoch": _epoch_hook(context), "resume": resume}
    if (
        context.job.gpus > 1 or context.job.nodes > 1
    ):  # the rank processes open these files themselves: no eviction meanwhile
        with held(dataset_version.artifact, base.artifact if base else ""):
            rank_config = _rank_config(arch, transforms, base, dataset_version)
            final = train_data_parallel(context, module, *splits, config, rank_config=rank_config, **hooks)
    else:
        final = train(module, *splits, config, device=context.device, **hooks)
    context.progress(0.96, "storing the best epoch's weights as a new version")
    context.log(f"best epoch {final.best_epoch} (val accuracy {final.best_val_accuracy:.4f})")
    return version_from_weights(
        actor=context.job.submitted_by,
        model=model,
        weights=final.best_model,
        spec=arch,
        dataset_version=dataset_version,
        source=VersionSource.TRAIN,
        parent=base,
        transforms=transforms,
        job_id=context.job.pk,
        label=context.job.spec.get("label") or f"{config.epochs} epochs",
        fence=context.fence,
    )


def _progress_hook(context, config: TrainConfig):
    def on_step(epoch: int, fraction: float) -> None:
        context.progress(0.95 * (epoch - 1 + fraction) / config.epochs, f"epoch {epoch} of {config.epochs}")

    return on_step


def _epoch_hook(context):
    """Each finished epoch: its figures, a checkpoint to resume from, a line of log."""

    def on_epoch(figures, state) -> None:
        context.record_epoch(
            figures.epoch,
            train_loss=figures.train_loss,
            train_accuracy=figures.train_accuracy,
            val_loss=figures.val_loss,
            val_accuracy=figures.val_accuracy,
            samples_per_second=figures.samples_per_second,
            learning_rate=figures.learning_rate,
            seconds=figures.seconds,
        )
        context.save_checkpoint(state.as_checkpoint(), figures.epoch)
        accuracy = figures.val_accuracy if figures.val_accuracy is None else round(figures.val_accuracy, 4)
        context.log(
            f"epoch {figures.epoch}: train loss {figures.train_loss:.4f}, val accuracy {accuracy}, "
            f"{figures.samples_per_second:,.0f} samples/s"
        )

    return on_epoch


def _rank_config(arch: dict, transforms: list, base, dataset_version: DatasetVersion) -> dict:
    """What each data-parallel rank process needs to rebuild the module and read the data itself."""
    return {
        "spec": arch,
        "input_shape": list(dataset_version.sample_shape),
        "num_classes": len(dataset_version.class_names),
        "transforms": transforms,
        "base_weights": str(local_path(base.artifact)) if base else None,
        "dataset_path": str(local_path(dataset_version.artifact)),
    }


def run_rank(context) -> None:
    """A further node's share of a multi-node train job: the same module, data and checkpoint as rank 0."""
    spec = context.job.spec
    model = Model.objects.get(pk=spec["model"])
    dataset_version = DatasetVersion.objects.get(dataset_id=spec["dataset"], number=spec["dataset_version"])
    base = model.versions.get(number=spec["base_version"]) if spec["base_version"] else None
    arch, transforms = (base.spec, base.transforms) if base else (model.architecture, [])
    config = TrainConfig(**{name: spec[name] for name in TrainConfig.__dataclass_fields__})
    with held(dataset_version.artifact, base.artifact if base else ""):  # the rank processes open them
        digest = join_data_parallel(context, config, _rank_config(arch, transforms, base, dataset_version))
    context.log(f"node {context.node_name}: its first rank's final weights sha256 {digest}")


def describe(spec: dict) -> str:
    base = f"from v{spec['base_version']}" if spec.get("base_version") else "from scratch"
    return (
        f"model {spec.get('model')} {base}, {spec.get('epochs')} epochs, "
        f"{spec.get('optimizer')} lr {spec.get('learning_rate')}"
    )


def register() -> None:
    register_kind("train", params=TRAIN_PARAMS, validate=validate, run=run, describe=describe, run_rank=run_rank)
