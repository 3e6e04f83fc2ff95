"""Running a compression recipe on a module: the steps in order, fine-tuning where they call for it.

Plain torch (no Django). The caller gives the module of a stored version, its architecture
spec and transforms, the data splits and fine-tuning settings; it gets back the module to
run, the state dict to store (int8 tensors in place of quantized weights, masks folded in)
and the spec and transforms that rebuild it (`apps.experiments.compression.rebuilding`
registers how). What each step does is its entry in the step table (`steps.py`).
"""

from collections.abc import Callable
from dataclasses import dataclass

from torch import nn

from apps.experiments.compression import quantize
from apps.experiments.compression.finetuning import FinetuneSettings, Progress  # callers import the settings here
from apps.experiments.compression.steps import STEP_KINDS, StepRun


@dataclass
class Compressed:
    module: nn.Module
    state: dict
    spec: dict
    transforms: list[dict]


def training_epochs(recipe: list[dict], settings: FinetuneSettings) -> int:
    """All the epochs the recipe trains for: the progress bar's whole length."""
    return sum(STEP_KINDS[step["step"]].epochs(step, settings.epochs) for step in recipe)


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
    run = StepRun(settings, splits, input_shape, num_classes, progress, log, spec, list(transforms))
    for index, step in enumerate(recipe, start=1):
        kind = STEP_KINDS[step["step"]]
        run.where, run.epochs = f"step {index} ({kind.name})", kind.epochs(step, settings.epochs)
        module = kind.apply(module, step, run)
    module = module.cpu().eval()
    return Compressed(module, quantize.state_to_store(module, run.quantized), run.spec, run.transforms)
