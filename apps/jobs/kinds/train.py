"""The `train` kind: real torch training of a model on a dataset version, stored as a new version.

Spec (validated at submit):
    {"model": id, "dataset": id, "dataset_version": n (default: latest ready),
     "base_version": n (fine-tune it) or absent (train the model's architecture from scratch),
     "epochs": 10, "batch_size": 64, "optimizer": "adam"|"adamw"|"sgd", "learning_rate": 0.001,
     "momentum": 0.9, "weight_decay": 0, "schedule": "constant"|"cosine"|"step", "step_size": 10,
     "gamma": 0.1, "seed": 0, "early_stopping_patience": null or n, "label": ""}
The best validation epoch's weights become the version, evaluated on the test split.
"""

import math

import torch

from apps.core.errors import ApplicationError, NotFound
from apps.core.storage import local_path
from apps.datasets.models import DatasetVersion
from apps.datasets.selectors import latest_ready_version, version_splits
from apps.jobs.kinds import register_kind
from apps.jobs.training.distributed import train_data_parallel
from apps.jobs.training.loop import TrainConfig, TrainingState, train
from apps.registry.architectures import build_model
from apps.registry.evaluations import check_compatible, evaluate_now
from apps.registry.loading import version_module
from apps.registry.models import Model, ModelVersion, VersionSource
from apps.registry.services import version_from_weights

NUMBERS = {  # name: (type, low, high)
    "epochs": (int, 1, 1000),
    "batch_size": (int, 1, 65536),
    "learning_rate": (float, 1e-8, 10.0),
    "momentum": (float, 0.0, 0.999),
    "weight_decay": (float, 0.0, 1.0),
    "step_size": (int, 1, 1000),
    "gamma": (float, 1e-6, 1.0),
    "seed": (int, 0, 2**31 - 1),
}
CHOICES = {"optimizer": ("adam", "adamw", "sgd"), "schedule": ("constant", "cosine", "step")}
KNOWN = {"model", "dataset", "dataset_version", "base_version", "label", "early_stopping_patience", *NUMBERS, *CHOICES}


def _invalid(field: str, message: str) -> ApplicationError:
    return ApplicationError(f"spec.{field}: {message}", fields={f"spec.{field}": [message]})


def _number(spec: dict, name: str, kind, low, high):
    value = spec.get(name, getattr(TrainConfig, name))
    if (
        isinstance(value, bool)
        or not isinstance(value, (int, float))
        or (kind is int and not float(value).is_integer())
    ):
        raise _invalid(name, f"must be {'an integer' if kind is int else 'a number'}; got {value!r}")
    if not (low <= value <= high) or (isinstance(value, float) and not math.isfinite(value)):
        raise _invalid(name, f"must be from {low} to {high}")
    return kind(value)


def _hyperparameters(spec: dict) -> dict:
    values = {name: _number(spec, name, *rule) for name, rule in NUMBERS.items()}
    for name, allowed in CHOICES.items():
        value = spec.get(name, getattr(TrainConfig, name))
        if value not in allowed:
            raise _invalid(name, f"must be one of {', '.join(allowed)}")
        values[name] = value
    patience = spec.get("early_stopping_patience")
    if patience is not None and (isinstance(patience, bool) or not isinstance(patience, int) or patience < 1):
        raise _invalid("early_stopping_patience", "must be a positive integer or null")
    values["early_stopping_patience"] = patience
    return values


def _model(spec: dict, team) -> Model:
    model = (
        Model.objects.filter(pk=spec.get("model"), team=team).first() if isinstance(spec.get("model"), int) else None
    )
    if model is None:
        raise NotFound("spec.model: no such model in this team.", fields={"spec.model": ["Not found."]})
    return model


def _dataset_version(spec: dict, model: Model) -> DatasetVersion:
    for name in ("dataset", "dataset_version"):
        value = spec.get(name)
        if value is not None and (isinstance(value, bool) or not isinstance(value, int)):
            raise _invalid(name, f"must be an integer id; got {value!r}")
    dataset = model.team.datasets.filter(pk=spec.get("dataset") or model.dataset_id or 0).first()
    if dataset is None:
        raise NotFound("spec.dataset: no such dataset in this team.", fields={"spec.dataset": ["Not found."]})
    number = spec.get("dataset_version")
    version = (
        dataset.versions.filter(number=number, status="ready").first() if number else latest_ready_version(dataset)
    )
    if version is None:
        raise _invalid("dataset_version", f"{dataset.name} has no such ready version")
    return version


def validate(spec: dict, *, team, actor) -> dict:
    unknown = sorted(set(spec) - KNOWN)
    if unknown:
        raise _invalid(unknown[0], "not a train parameter")
    model = _model(spec, team)
    dataset_version = _dataset_version(spec, model)
    clean = {
        "model": model.pk,
        "dataset": dataset_version.dataset_id,
        "dataset_version": dataset_version.number,
        "base_version": None,
        "label": str(spec.get("label", ""))[:100],
        **_hyperparameters(spec),
    }
    if spec.get("base_version") is not None:
        base = model.versions.filter(number=spec["base_version"], status="ready").first()
        if base is None:
            raise _invalid("base_version", f"{model.name} has no ready version {spec['base_version']}")
        check_compatible(base, dataset_version)
        clean["base_version"] = base.number
    elif dataset_version.dataset.task != model.task:
        raise _invalid("dataset", f"a {dataset_version.dataset.task} dataset cannot train a {model.task} model")
    return clean


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
    evaluation = evaluate_now(actor=job.submitted_by, version=existing, dataset_version=dataset_version)
    context.log(f"v{existing.number}: test accuracy {evaluation.accuracy:.4f} on {evaluation.sample_count} samples")
    return {
        "model": model.pk,
        "version": existing.number,
        "evaluation": evaluation.pk,
        "test_accuracy": evaluation.accuracy,
    }


def _train(context, model, base, dataset_version, config: TrainConfig) -> ModelVersion:
    module, arch, transforms = _module(model, base, dataset_version, config.seed)
    train_split, val_split, _ = version_splits(dataset_version)
    saved = context.load_checkpoint()
    resume = TrainingState.from_checkpoint(saved) if saved else None
    context.log(
        f"training {arch['family']} on {dataset_version} ({len(train_split)} train, {len(val_split)} val "
        f"samples) for {config.epochs} epochs" + (f", resuming after epoch {resume.epoch}" if resume else "")
    )

    def on_step(epoch: int, fraction: float) -> None:
        context.progress(0.95 * (epoch - 1 + fraction) / config.epochs, f"epoch {epoch} of {config.epochs}")

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
        context.log(
            f"epoch {figures.epoch}: train loss {figures.train_loss:.4f}, val accuracy "
            f"{figures.val_accuracy if figures.val_accuracy is None else round(figures.val_accuracy, 4)}, "
            f"{figures.samples_per_second:,.0f} samples/s"
        )

    if context.job.gpus > 1:
        rank_config = {
            "spec": arch,
            "input_shape": list(dataset_version.sample_shape),
            "num_classes": len(dataset_version.class_names),
            "transforms": transforms,
            "base_weights": str(local_path(base.artifact)) if base else None,
            "dataset_path": str(local_path(dataset_version.artifact)),
        }
        final = train_data_parallel(
            context,
            module,
            train_split,
            val_split,
            config,
            resume=resume,
            on_step=on_step,
            on_epoch=on_epoch,
            rank_config=rank_config,
        )
    else:
        final = train(
            module,
            train_split,
            val_split,
            config,
            device=context.device,
            resume=resume,
            on_step=on_step,
            on_epoch=on_epoch,
        )
    context.progress(0.96, "storing the best epoch's weights as a new version")
    context.log(f"best epoch {final.best_epoch} (val accuracy {final.best_val_accuracy:.4f})")
    job = context.job
    return version_from_weights(
        actor=job.submitted_by,
        model=model,
        weights=final.best_model,
        spec=arch,
        dataset_version=dataset_version,
        source=VersionSource.TRAIN,
        parent=base,
        transforms=transforms,
        job_id=job.pk,
        label=job.spec.get("label") or f"{config.epochs} epochs",
    )


def describe(spec: dict) -> str:
    base = f"from v{spec['base_version']}" if spec.get("base_version") else "from scratch"
    return (
        f"model {spec.get('model')} {base}, {spec.get('epochs')} epochs, "
        f"{spec.get('optimizer')} lr {spec.get('learning_rate')}"
    )


def register() -> None:
    register_kind("train", validate=validate, run=run, describe=describe)
