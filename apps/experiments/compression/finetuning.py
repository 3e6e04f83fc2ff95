"""Training a compressed module back (plain torch): the settings, the shared progress bar, one fit.

Pruning, factorization and distillation lose accuracy that a few epochs of training win
back. Every step that trains goes through `fit`, so they all keep their best validation
epoch, and through one `Progress`, so the job's bar runs once from 0 to 1 over the recipe.
"""

from collections.abc import Callable
from dataclasses import dataclass, field

import torch
from torch import nn

from apps.jobs.training.loop import TrainConfig, train


@dataclass(frozen=True)
class FinetuneSettings:
    """How pruned, factorized and distilled modules are trained back (per step unless the step says)."""

    epochs: int = 3
    learning_rate: float = 5e-4
    batch_size: int = 64
    seed: int = 0
    device: torch.device = field(default_factory=lambda: torch.device("cpu"))


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


def fit(module, splits, settings: FinetuneSettings, epochs: int, on_step, loss_fn=None) -> nn.Module:
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
