"""Running a compression recipe on a module: the steps in order, fine-tuning where they call for it.

Plain torch (no Django). The caller gives the module of a stored version, its architecture
spec and transforms, the data splits and fine-tuning settings; it gets back the module to
run, the state dict to store (int8 tensors in place of quantized weights, masks folded in)
and the spec and transforms that rebuild it (`apps.experiments.rebuilding` registers them).
"""

from collections.abc import Callable
from dataclasses import dataclass, field, replace

import torch
from torch import nn

from apps.experiments.compression import distill, lowrank, prune, quantize
from apps.jobs.training.loop import TrainConfig, train
from apps.registry.architectures import build_model


@dataclass(frozen=True)
class FinetuneSettings:
    """How pruned, factorized and distilled modules are trained back (per step unless the step says)."""

    epochs: int = 3
    learning_rate: float = 5e-4
    batch_size: int = 64
    seed: int = 0
    device: torch.device = field(default_factory=lambda: torch.device("cpu"))


@dataclass
class Compressed:
    module: nn.Module
    state: dict
    spec: dict
    transforms: list[dict]


class Progress:
    """Shares one 0..1 progress range among the recipe's training runs."""

    def __init__(self, report: Callable[[float, str], None], units: int):
        self.report, self.units, self.done = report, max(units, 1), 0

    def step(self, message: str) -> Callable[[int, float], None]:
        start = self.done

        def on_step(epoch: int, fraction: float, total: int = 1) -> None:
            self.report(min(1.0, (start + epoch - 1 + fraction) / self.units), message)

        return on_step

    def finish(self, epochs: int) -> None:
        self.done += epochs
        self.report(min(1.0, self.done / self.units), "")


def training_epochs(recipe: list[dict], settings: FinetuneSettings) -> int:
    total = 0
    for step in recipe:
        if step["step"] in ("prune", "structured_prune", "low_rank"):
            total += step.get("finetune_epochs", settings.epochs)
        elif step["step"] == "distill":
            total += step.get("epochs", settings.epochs)
        elif step["step"] == "finetune":
            total += step["epochs"]
    return total


def _fit(module, splits, settings: FinetuneSettings, epochs: int, on_step, loss_fn=None) -> nn.Module:
    """Train `module` for `epochs` and keep its best validation epoch's weights."""
    if epochs < 1:
        return module
    train_split, val_split = splits
    config = TrainConfig(
        epochs=epochs, batch_size=settings.batch_size, learning_rate=settings.learning_rate, seed=settings.seed
    )
    extra = {"loss_fn": loss_fn} if loss_fn is not None else {}
    final = train(module, train_split, val_split, config, device=settings.device, on_step=on_step, **extra)
    module.load_state_dict(final.best_model)
    return module


def compress(
    module: nn.Module,
    *,
    spec: dict,
    transforms: list[dict],
    recipe: list[dict],
    input_shape: tuple[int, ...],
    num_classes: int,
    splits: tuple,
    settings: FinetuneSettings,
    report: Callable[[float, str], None] = lambda fraction, message: None,
    log: Callable[[str], None] = lambda message: None,
) -> Compressed:
    """Apply `recipe` (already validated) to `module`; `splits` is (train, val)."""
    progress = Progress(report, training_epochs(recipe, settings))
    transforms = list(transforms)
    quantized: dict = {}
    for index, step in enumerate(recipe, start=1):
        kind = step["step"]
        where = f"step {index} ({kind})"
        if kind == "prune":
            epochs = step.get("finetune_epochs", settings.epochs)
            schedule = prune.gradual_schedule(step["sparsity"], step["rounds"])
            per_round = [
                epochs // len(schedule) + (1 if r < epochs % len(schedule) else 0) for r in range(len(schedule))
            ]
            for target, round_epochs in zip(schedule, per_round, strict=True):
                prune.apply_magnitude_pruning(module, target, scope=step["scope"])
                _fit(module, splits, settings, round_epochs, progress.step(f"{where}: fine-tuning at {target:.0%}"))
                progress.finish(round_epochs)
            prune.fold_masks(module)
            log(f"{where}: {prune.sparsity(module):.1%} of prunable weights are zero")
            transforms.append({"kind": "prune", "sparsity": step["sparsity"], "scope": step["scope"]})
        elif kind == "structured_prune":
            before = sum(p.numel() for p in module.parameters())
            module = prune.prune_channels(module.cpu(), step["ratio"], input_shape)
            after = sum(p.numel() for p in module.parameters())
            log(f"{where}: {before:,} → {after:,} parameters")
            epochs = step.get("finetune_epochs", settings.epochs)
            _fit(module, splits, settings, epochs, progress.step(f"{where}: fine-tuning"))
            progress.finish(epochs)
            transforms.append({"kind": "resize", "ratio": step["ratio"]})
        elif kind == "low_rank":
            module = module.cpu()
            ranks = lowrank.factorize(module, rank_ratio=step.get("rank_ratio"), energy=step.get("energy"))
            log(f"{where}: factorized {len(ranks)} layers ({', '.join(f'{k}: rank {v}' for k, v in ranks.items())})")
            epochs = step.get("finetune_epochs", settings.epochs)
            _fit(module, splits, settings, epochs, progress.step(f"{where}: fine-tuning"))
            progress.finish(epochs)
            transforms.append({"kind": "low_rank", "ranks": ranks})
        elif kind == "distill":
            module, spec, transforms = _distill(module, step, input_shape, num_classes, splits, settings, progress)
            log(f"{where}: student {spec['family']} with {sum(p.numel() for p in module.parameters()):,} parameters")
        elif kind == "finetune":
            _fit(module, splits, settings, step["epochs"], progress.step(f"{where}: fine-tuning"))
            progress.finish(step["epochs"])
        elif kind == "quantize":
            module, quantized = quantize.quantize(module.cpu().eval(), step["scheme"])
            transforms.append({"kind": "quantize", "scheme": step["scheme"]})
            log(f"{where}: {step['scheme']}, {len(quantized)} weight tensors in int8")
    module = module.cpu().eval()
    return Compressed(module, quantize.state_to_store(module, quantized), spec, transforms)


def _distill(teacher, step, input_shape, num_classes, splits, settings, progress):
    """A fresh student trained on the teacher's softened logits (and the labels it is allowed to see)."""
    torch.manual_seed(settings.seed)
    student = build_model(step["student"], input_shape=tuple(input_shape), num_classes=num_classes)
    teacher = teacher.to(settings.device).eval()
    train_split, val_split = splits
    train_split = distill.scarce_labels(train_split, step["label_fraction"], settings.seed)
    loss_fn = distill.distillation_loss(teacher, temperature=step["temperature"], alpha=step["alpha"])
    epochs = step.get("epochs", settings.epochs)
    student_settings = replace(settings, learning_rate=max(settings.learning_rate, 1e-3))  # trained from scratch
    _fit(student, (train_split, val_split), student_settings, epochs, progress.step("distilling"), loss_fn=loss_fn)
    progress.finish(epochs)
    transform = {
        "kind": "distill",
        "temperature": step["temperature"],
        "alpha": step["alpha"],
        "label_fraction": step["label_fraction"],
    }
    return student, step["student"], [transform]
