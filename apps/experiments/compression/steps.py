"""The step table: every kind of recipe step, and everything the rest of Lepton needs to know about it.

One `StepKind` entry per step ("prune", "quantize", ...) owns its parameters (checked by
`recipes.validate_recipe`), the training epochs it costs (the progress bar), how it is
applied (`pipeline.compress` is a loop over the table), the transforms it records and how
the registry re-applies them (`register_step` registers them with
`apps.registry.rebuild`), its short name (`recipes.describe`) and its chart family
(`recipes.family`). Adding a method is adding one entry: write its apply function (module
in, module out; it appends the transforms that rebuild it) and call `register_step`.
Recipe-wide rules (quantize last and once, distill at most once) stay in `recipes.py`.

The transform kinds that stored versions record ("prune", "resize", "low_rank", "quantize",
"distill") must keep rebuilding the same way: a version in a database is rebuilt from them.
Plain torch, no Django.
"""

from collections.abc import Callable
from dataclasses import dataclass, field, replace

import torch
from torch import nn

from apps.experiments.compression import distill, lowrank, prune, quantize
from apps.experiments.compression.finetuning import FinetuneSettings, Progress, fit
from apps.experiments.compression.params import Architecture, Choice, Number, Param, RecipeError
from apps.registry.architectures import build_model
from apps.registry.rebuild import TRANSFORMS, TransformApplier, register_transform
from apps.registry.weights import QuantizedTensor


@dataclass(frozen=True)
class Rebuild:
    """How the registry re-applies one transform kind a step records (see `apps.registry.rebuild`)."""

    transform: str  # the "kind" stored in a version's transforms
    phase: str  # "structure" (before the weights load) or "weights" (after)
    apply: TransformApplier


@dataclass
class StepRun:
    """What a step's apply function works with besides the module and its parameters, and what it may change.

    `pipeline.compress` sets `where` and `epochs` before each step (the epochs from the step's
    own rule, so the training and the progress bar agree). A step appends the transforms that
    rebuild it; a distillation replaces `spec` and `transforms` (its student is a new
    architecture); a quantization leaves the tensors to store in their place in `quantized`.
    """

    settings: FinetuneSettings
    splits: tuple
    input_shape: tuple[int, ...]
    num_classes: int
    progress: Progress
    log: Callable[[str], None]
    spec: dict
    transforms: list[dict]
    quantized: dict = field(default_factory=dict)
    where: str = ""
    epochs: int = 0

    def fine_tune(
        self, module: nn.Module, epochs: int, message: str, *, splits=None, settings=None, loss_fn=None
    ) -> nn.Module:
        """Train back for `epochs` (best validation epoch kept) and count them in the progress.

        Distillation trains with its own splits (scarce labels), settings and loss.
        """
        splits = self.splits if splits is None else splits
        settings = self.settings if settings is None else settings
        fit(module, splits, settings, epochs, self.progress.step(message), loss_fn)
        self.progress.finish(epochs)
        return module


def no_epochs(step: dict, default: int) -> int:
    """The epochs of a step that does not train."""
    return 0


@dataclass(frozen=True)
class StepKind:
    """One kind of recipe step: its parameters, cost, application, rebuilding, name and family."""

    name: str
    params: tuple[Param, ...]
    apply: Callable[[nn.Module, dict, StepRun], nn.Module]
    describe: Callable[[dict], str]  # a validated step -> "prune 90%"
    family: str | None  # the chart family; None for a step that changes no method (fine-tuning)
    epochs: Callable[[dict, int], int] = no_epochs  # (validated step, default fine-tune epochs) -> epochs
    check: Callable[[dict, str], None] | None = None  # a rule across the step's parameters
    rebuilds: tuple[Rebuild, ...] = ()

    def param(self, name: str) -> Param:
        for param in self.params:
            if param.name == name:
                return param
        raise KeyError(f"{self.name} has no parameter {name!r}")

    def clean(self, step: dict, where: str) -> dict:
        """The step with each parameter checked and the defaults filled in; RecipeError names the field."""
        unknown = sorted(set(step) - {param.name for param in self.params} - {"step"})
        if unknown:
            raise RecipeError(f"not a parameter of {self.name}", f"{where}.{unknown[0]}")
        missing = sorted(param.name for param in self.params if param.required and param.name not in step)
        if missing:
            raise RecipeError("is required", f"{where}.{missing[0]}")
        if self.check is not None:
            self.check(step, where)
        clean = {"step": self.name}
        for param in self.params:
            if param.name in step:
                clean[param.name] = param.clean(step[param.name], f"{where}.{param.name}")
            elif param.default is not None:
                clean[param.name] = param.default
        return clean


STEP_KINDS: dict[str, StepKind] = {}  # in the order error messages list them


def register_step(kind: StepKind) -> StepKind:
    """Add a step kind to the table and its transforms to the registry's rebuilders.

    A transform kind already registered is refused: re-registering it would change how the
    versions that recorded it rebuild.
    """
    if kind.name in STEP_KINDS:
        raise ValueError(f"step {kind.name!r} is already registered")
    taken = [rebuild.transform for rebuild in kind.rebuilds if rebuild.transform in TRANSFORMS]
    if taken:
        raise ValueError(f"transform {taken[0]!r} is already registered (stored versions rebuild with it)")
    for rebuild in kind.rebuilds:
        register_transform(rebuild.transform, phase=rebuild.phase)(rebuild.apply)
    STEP_KINDS[kind.name] = kind
    return kind


def step_param(kind: str, name: str) -> Param:
    """A parameter's rule, for whoever needs its range or choices (the sweep parser, forms)."""
    return STEP_KINDS[kind].param(name)


def _percent(fraction: float) -> str:
    return f"{100 * fraction:.4g}%"


def _parameter_count(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


def _unchanged(module: nn.Module, transform: dict, weights) -> nn.Module:
    """Nothing to re-apply: what the transform did is in the stored weights (zeros) or the spec (a student)."""
    return module


def _finetune_epochs(step: dict, default: int) -> int:
    """Pruning and factorization train back for their own `finetune_epochs`, else the experiment's."""
    return step.get("finetune_epochs", default)


FINETUNE_EPOCHS = Number("finetune_epochs", 0, 100, True, help="epochs of training back (default: the experiment's)")

# prune: unstructured magnitude pruning, gradually over rounds


def _epochs_per_round(epochs: int, rounds: int) -> list[int]:
    """`epochs` shared among the rounds, the first ones taking the remainder (5 over 3: [2, 2, 1])."""
    return [epochs // rounds + (1 if index < epochs % rounds else 0) for index in range(rounds)]


def _prune(module: nn.Module, step: dict, run: StepRun) -> nn.Module:
    """Mask towards the target round by round, training back in between, then make the zeros permanent."""
    schedule = prune.gradual_schedule(step["sparsity"], step["rounds"])
    for target, epochs in zip(schedule, _epochs_per_round(run.epochs, len(schedule)), strict=True):
        prune.apply_magnitude_pruning(module, target, scope=step["scope"])
        run.fine_tune(module, epochs, f"{run.where}: fine-tuning at {target:.0%}")
    prune.fold_masks(module)
    run.log(f"{run.where}: {prune.sparsity(module):.1%} of prunable weights are zero")
    run.transforms.append({"kind": "prune", "sparsity": step["sparsity"], "scope": step["scope"]})
    return module


def _describe_prune(step: dict) -> str:
    rounds = f" ({step['rounds']} rounds)" if step.get("rounds", 1) > 1 else ""
    return f"prune {_percent(step['sparsity'])}{rounds}"


register_step(
    StepKind(
        name="prune",
        params=(
            Number("sparsity", 0.01, 0.995, required=True, help="share of the prunable weights set to zero"),
            Number("rounds", 1, 20, True, 1, help="prune gradually over this many rounds, training back after each"),
            FINETUNE_EPOCHS,
            Choice("scope", ("global", "layer"), "global", help="smallest weights of the whole network or per layer"),
        ),
        apply=_prune,
        describe=_describe_prune,
        family="prune",
        epochs=_finetune_epochs,
        rebuilds=(Rebuild("prune", "weights", _unchanged),),  # the zeros are in the stored weights
    )
)

# structured_prune: whole channels and neurons removed


def _structured_prune(module: nn.Module, step: dict, run: StepRun) -> nn.Module:
    """Remove channels (the layers really shrink), then train back."""
    before = _parameter_count(module)
    module = prune.prune_channels(module.cpu(), step["ratio"], run.input_shape)
    run.log(f"{run.where}: {before:,} → {_parameter_count(module):,} parameters")
    run.fine_tune(module, run.epochs, f"{run.where}: fine-tuning")
    run.transforms.append({"kind": "resize", "ratio": step["ratio"]})
    return module


def _rebuild_resize(module: nn.Module, transform: dict, weights) -> nn.Module:
    """Before the weights load: re-make the layers at the shapes they were stored with."""
    return prune.resize_to(module, {name: list(value.shape) for name, value in weights.items()})


register_step(
    StepKind(
        name="structured_prune",
        params=(
            Number("ratio", 0.05, 0.95, required=True, help="share of each layer's channels removed"),
            FINETUNE_EPOCHS,
        ),
        apply=_structured_prune,
        describe=lambda step: f"structured {_percent(step['ratio'])}",
        family="structured_prune",
        epochs=_finetune_epochs,
        rebuilds=(Rebuild("resize", "structure", _rebuild_resize),),
    )
)

# low_rank: layers factorized by their SVD


def _one_of_rank_or_energy(step: dict, where: str) -> None:
    if ("rank_ratio" in step) == ("energy" in step):
        raise RecipeError("give rank_ratio or energy (one of the two)", f"{where}.rank_ratio")


def _low_rank(module: nn.Module, step: dict, run: StepRun) -> nn.Module:
    """Replace layers by factor pairs where that saves parameters, then train back."""
    module = module.cpu()
    ranks = lowrank.factorize(module, rank_ratio=step.get("rank_ratio"), energy=step.get("energy"))
    layers = ", ".join(f"{name}: rank {rank}" for name, rank in ranks.items())
    run.log(f"{run.where}: factorized {len(ranks)} layers ({layers})")
    run.fine_tune(module, run.epochs, f"{run.where}: fine-tuning")
    run.transforms.append({"kind": "low_rank", "ranks": ranks})
    return module


def _describe_low_rank(step: dict) -> str:
    if "rank_ratio" in step:
        return f"low-rank {_percent(step['rank_ratio'])}"
    return f"low-rank {_percent(step['energy'])} energy"


def _rebuild_low_rank(module: nn.Module, transform: dict, weights) -> nn.Module:
    """Before the weights load: the factorized layers at their recorded ranks."""
    return lowrank.restructure(module, {name: int(rank) for name, rank in transform["ranks"].items()})


register_step(
    StepKind(
        name="low_rank",
        params=(
            Number("rank_ratio", 0.01, 1.0, help="rank kept, as a share of each layer's full rank"),
            Number("energy", 0.5, 0.9999, help="share of the singular values' energy kept (the rank follows)"),
            FINETUNE_EPOCHS,
        ),
        apply=_low_rank,
        describe=_describe_low_rank,
        family="low_rank",
        epochs=_finetune_epochs,
        check=_one_of_rank_or_energy,
        rebuilds=(Rebuild("low_rank", "structure", _rebuild_low_rank),),
    )
)

# distill: a smaller student trained on the module's outputs


def _distill(teacher: nn.Module, step: dict, run: StepRun) -> nn.Module:
    """A fresh student trained on the teacher's softened logits (and the labels it may see); it replaces all."""
    torch.manual_seed(run.settings.seed)
    student = build_model(step["student"], input_shape=tuple(run.input_shape), num_classes=run.num_classes)
    teacher = teacher.to(run.settings.device).eval()
    train_split, val_split = run.splits
    splits = (distill.scarce_labels(train_split, step["label_fraction"], run.settings.seed), val_split)
    loss_fn = distill.distillation_loss(teacher, temperature=step["temperature"], alpha=step["alpha"])
    settings = replace(run.settings, learning_rate=max(run.settings.learning_rate, 1e-3))  # trained from scratch
    run.fine_tune(student, run.epochs, "distilling", splits=splits, settings=settings, loss_fn=loss_fn)
    run.spec = step["student"]
    run.transforms = [{"kind": "distill", **{name: step[name] for name in ("temperature", "alpha", "label_fraction")}}]
    run.log(f"{run.where}: student {run.spec['family']} with {_parameter_count(student):,} parameters")
    return student


register_step(
    StepKind(
        name="distill",
        params=(
            Architecture("student", required=True, help="the student's architecture spec"),
            Number("temperature", 1, 20, False, 4.0, help="softening of the teacher's logits"),
            Number("alpha", 0, 1, False, 0.7, help="weight of the teacher's term against the labels'"),
            Number("epochs", 1, 1000, True, help="epochs of training the student (default: the experiment's)"),
            Number("label_fraction", 0.01, 1.0, False, 1.0, help="share of the training samples keeping a label"),
        ),
        apply=_distill,
        describe=lambda step: f"distill to {step['student'].get('family')}",
        family="distill",
        epochs=lambda step, default: step.get("epochs", default),
        rebuilds=(Rebuild("distill", "weights", _unchanged),),  # the student's spec is stored
    )
)

# finetune: more training, on its own


register_step(
    StepKind(
        name="finetune",
        params=(Number("epochs", 1, 1000, True, required=True, help="epochs of training"),),
        apply=lambda module, step, run: run.fine_tune(module, run.epochs, f"{run.where}: fine-tuning"),
        describe=lambda step: f"fine-tune {step['epochs']}",
        family=None,
        epochs=lambda step, default: step["epochs"],
    )
)

# quantize: lower-precision weights, the last step


QUANTIZED_NAMES = {"int8_weight_only": "int8", "int8_dynamic": "int8 dynamic"}


def _quantize(module: nn.Module, step: dict, run: StepRun) -> nn.Module:
    """Quantize for good (nothing trains after it); the int8 tensors are what gets stored."""
    module, run.quantized = quantize.quantize(module.cpu().eval(), step["scheme"])
    run.transforms.append({"kind": "quantize", "scheme": step["scheme"]})
    run.log(f"{run.where}: {step['scheme']}, {len(run.quantized)} weight tensors in int8")
    return module


def _rebuild_quantize(module: nn.Module, transform: dict, weights) -> nn.Module:
    """After the weights load: quantize again from the stored int8 values, so it computes what was saved."""
    stored = {name: value for name, value in weights.items() if isinstance(value, QuantizedTensor)}
    return quantize.rebuild(module, transform, stored)


register_step(
    StepKind(
        name="quantize",
        params=(Choice("scheme", quantize.SCHEMES, required=True, help="the precision of the weights"),),
        apply=_quantize,
        describe=lambda step: QUANTIZED_NAMES.get(step["scheme"], step["scheme"]),
        family="quantize",
        rebuilds=(Rebuild("quantize", "weights", _rebuild_quantize),),
    )
)
