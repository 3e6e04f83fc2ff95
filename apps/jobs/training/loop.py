"""The training loop: plain torch, deterministic with a seed, resumable from a checkpoint.

Everything that decides the run's randomness is either derived from (seed, epoch) — the
shuffle of each epoch — or saved in the checkpoint (torch's CPU RNG state and, on a CUDA
machine, every GPU's, for dropout), so an attempt resumed after epoch k draws exactly the
numbers an uninterrupted run would. On the CPU that makes the resumed weights identical. On
GPUs the random streams are as exact, but some CUDA kernels (atomic adds in backward passes,
cuDNN's algorithm search) are not deterministic, so weights match bit for bit only where the
kernels used are deterministic (torch.use_deterministic_algorithms); we do not force that,
since it refuses or slows some layers. A checkpoint taken on a machine with another number
of GPUs restores the CPU state only.
The caller gets hooks: `on_step` (progress, cancellation), `on_epoch` (metrics, checkpoint).
"""

import copy
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field, fields

import torch
from torch import nn
from torch.nn import functional

IN_MEMORY_LIMIT_BYTES = 1024**3  # splits up to this size are gathered once; larger ones stream by batch


@dataclass(frozen=True)
class TrainConfig:
    epochs: int = 10
    batch_size: int = 64
    optimizer: str = "adam"  # adam | adamw | sgd
    learning_rate: float = 1e-3
    momentum: float = 0.9  # sgd only
    weight_decay: float = 0.0
    schedule: str = "constant"  # constant | cosine | step
    step_size: int = 10  # step schedule: epochs between decays
    gamma: float = 0.1  # step schedule: decay factor
    seed: int = 0
    early_stopping_patience: int | None = None  # epochs without a better val accuracy before stopping


@dataclass
class EpochFigures:
    epoch: int
    train_loss: float
    train_accuracy: float
    val_loss: float | None
    val_accuracy: float | None
    samples_per_second: float
    learning_rate: float
    seconds: float


@dataclass
class TrainingState:
    """What a checkpoint holds: enough to continue exactly where the run stopped."""

    epoch: int = 0  # epochs completed
    model: dict = field(default_factory=dict)
    optimizer: dict = field(default_factory=dict)
    scheduler: dict = field(default_factory=dict)
    rng: torch.Tensor | None = None
    cuda_rng: list | None = None  # torch.cuda.get_rng_state_all() where CUDA is available
    best_val_accuracy: float = -1.0
    best_epoch: int = 0
    best_model: dict = field(default_factory=dict)
    epochs_without_improvement: int = 0

    def as_checkpoint(self) -> dict:
        return {f.name: getattr(self, f.name) for f in fields(self)}

    @classmethod
    def from_checkpoint(cls, data: dict) -> "TrainingState":
        return cls(**data)


def make_optimizer(model: nn.Module, config: TrainConfig) -> torch.optim.Optimizer:
    params = model.parameters()
    if config.optimizer == "sgd":
        return torch.optim.SGD(
            params, lr=config.learning_rate, momentum=config.momentum, weight_decay=config.weight_decay
        )
    if config.optimizer == "adamw":
        return torch.optim.AdamW(params, lr=config.learning_rate, weight_decay=config.weight_decay)
    return torch.optim.Adam(params, lr=config.learning_rate, weight_decay=config.weight_decay)


def make_scheduler(optimizer, config: TrainConfig):
    if config.schedule == "cosine":
        return torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=max(1, config.epochs))
    if config.schedule == "step":
        return torch.optim.lr_scheduler.StepLR(optimizer, step_size=config.step_size, gamma=config.gamma)
    return torch.optim.lr_scheduler.LambdaLR(optimizer, lambda epoch: 1.0)


class Batches:
    """(inputs, labels) batches of a split, in memory when small enough, else gathered per batch."""

    def __init__(self, split, batch_size: int, device: torch.device):
        self.split, self.batch_size, self.device = split, batch_size, device
        float_bytes_per_row = 4 * math.prod(split.features.shape[1:])
        self.tensors = None
        if len(split) * float_bytes_per_row <= IN_MEMORY_LIMIT_BYTES:
            x, y = split.tensors()
            self.tensors = x.to(device), y.to(device)

    def __len__(self) -> int:
        return len(self.split)

    def __iter__(self):
        return self.iterate(None)

    def iterate(self, generator: torch.Generator | None, shard: tuple[int, int] = (0, 1)):
        """Batches of a permutation; with shard=(rank, world) only this rank's share.

        Every rank draws the same permutation and takes every world-th batch, and all ranks
        take the same number of batches (a tail that does not divide evenly is left out), so
        data-parallel ranks step in lockstep.
        """
        n = len(self.split)
        order = torch.randperm(n, generator=generator) if generator is not None else torch.arange(n)
        if self.tensors is not None and self.device.type != "cpu":
            order = order.to(self.device)
        rank, world = shard
        starts = list(range(0, n, self.batch_size))
        starts = starts[: len(starts) // world * world][rank::world] if world > 1 else starts
        for start in starts:
            rows = order[start : start + self.batch_size]
            if self.tensors is not None:
                yield self.tensors[0][rows], self.tensors[1][rows]
            else:
                x, y = self.split[rows.numpy()]
                yield x.to(self.device), y.to(self.device)


def evaluate_split(model: nn.Module, batches: Batches) -> tuple[float, float]:
    """(mean loss, accuracy) over a split, in eval mode."""
    model.eval()
    total_loss, correct, count = 0.0, 0, 0
    with torch.inference_mode():
        for x, y in batches:  # sums stay on the device: one read back per split, not one per batch
            logits = model(x)
            total_loss = total_loss + functional.cross_entropy(logits, y, reduction="sum")
            correct = correct + (logits.argmax(1) == y).sum()
            count += len(y)
    return float(total_loss) / max(count, 1), int(correct) / max(count, 1)


def cross_entropy(logits: torch.Tensor, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    return functional.cross_entropy(logits, y)


def _train_epoch(model, optimizer, batches: Batches, generator, on_step, shard, loss_fn=cross_entropy):
    model.train()
    # The sums stay on the device and are read back once per epoch: `.item()` per step would
    # wait for every step to finish (a GPU stall) and costs a sync per step on the CPU too.
    total_loss = correct = None
    seen = 0
    steps = max(1, math.ceil(len(batches) / batches.batch_size) // shard[1])
    for step, (x, y) in enumerate(batches.iterate(generator, shard)):
        optimizer.zero_grad(set_to_none=True)
        logits = model(x)
        loss = loss_fn(logits, x, y)
        loss.backward()
        optimizer.step()
        with torch.no_grad():
            batch_loss, batch_correct = loss.detach() * len(y), (logits.argmax(1) == y).sum()
            total_loss = batch_loss if total_loss is None else total_loss + batch_loss
            correct = batch_correct if correct is None else correct + batch_correct
        seen += len(y)
        on_step((step + 1) / steps)
    if seen == 0:
        return 0.0, 0.0, 0
    return float(total_loss) / seen, int(correct) / seen, seen


def train(
    model: nn.Module,
    train_split,
    val_split,
    config: TrainConfig,
    *,
    device: torch.device,
    resume: TrainingState | None = None,
    on_step: Callable[[int, float], None] = lambda epoch, fraction: None,
    on_epoch: Callable[[EpochFigures, TrainingState], None] = lambda figures, state: None,
    shard: tuple[int, int] = (0, 1),
    loss_fn: Callable[[torch.Tensor, torch.Tensor, torch.Tensor], torch.Tensor] = cross_entropy,
) -> TrainingState:
    """Train `model` in place; returns the final state (its `best_model` is the best val epoch's weights).

    With shard=(rank, world) and a process group already initialized, the model trains
    data-parallel (DistributedDataParallel: gradients averaged across ranks each step).
    `loss_fn(logits, inputs, labels)` replaces the cross-entropy (distillation adds the teacher).
    """
    model.to(device)
    if resume is not None:
        model.load_state_dict(resume.model)
    net = model if shard[1] == 1 else _data_parallel(model, device)
    optimizer, state = make_optimizer(model, config), resume or TrainingState()
    scheduler = make_scheduler(optimizer, config)
    if resume is not None:
        optimizer.load_state_dict(resume.optimizer)
        scheduler.load_state_dict(resume.scheduler)
        _restore_rng(resume)
    else:
        torch.manual_seed(config.seed)
    train_batches = Batches(train_split, config.batch_size, device)
    val_batches = Batches(val_split, max(config.batch_size, 256), device) if len(val_split) else None
    for epoch in range(state.epoch + 1, config.epochs + 1):
        started = time.perf_counter()
        learning_rate = optimizer.param_groups[0]["lr"]
        generator = torch.Generator().manual_seed(config.seed * 100_003 + epoch)
        train_loss, train_accuracy, seen = _train_epoch(
            net, optimizer, train_batches, generator, lambda fraction, e=epoch: on_step(e, fraction), shard, loss_fn
        )
        seen *= shard[1]  # every rank trained on its own share
        scheduler.step()
        val_loss, val_accuracy = evaluate_split(model, val_batches) if val_batches else (None, None)
        seconds = time.perf_counter() - started
        state = _advance(state, model, optimizer, scheduler, epoch, val_accuracy)
        figures = EpochFigures(
            epoch, train_loss, train_accuracy, val_loss, val_accuracy, seen / seconds, learning_rate, seconds
        )
        on_epoch(figures, state)
        patience = config.early_stopping_patience
        if patience is not None and state.epochs_without_improvement >= patience:
            break
    return state


def _data_parallel(model: nn.Module, device: torch.device) -> nn.Module:
    """DDP over the initialized process group; on a GPU it is told its device (this rank's only one)."""
    if device.type == "cuda":
        return nn.parallel.DistributedDataParallel(model, device_ids=[device.index], output_device=device.index)
    return nn.parallel.DistributedDataParallel(model)


def _restore_rng(resume: TrainingState) -> None:
    torch.set_rng_state(resume.rng)
    saved = resume.cuda_rng
    if saved and torch.cuda.is_available() and len(saved) == torch.cuda.device_count():
        torch.cuda.set_rng_state_all(saved)


def _advance(state: TrainingState, model, optimizer, scheduler, epoch: int, val_accuracy) -> TrainingState:
    better = val_accuracy is not None and val_accuracy > state.best_val_accuracy
    if val_accuracy is None or better:
        best = copy.deepcopy({k: v.detach().cpu() for k, v in model.state_dict().items()})
        best_accuracy = val_accuracy if val_accuracy is not None else state.best_val_accuracy
        best_epoch, waited = epoch, 0
    else:
        best, best_accuracy, best_epoch = state.best_model, state.best_val_accuracy, state.best_epoch
        waited = state.epochs_without_improvement + 1
    return TrainingState(
        epoch=epoch,
        model={k: v.detach().cpu().clone() for k, v in model.state_dict().items()},
        optimizer=optimizer.state_dict(),
        scheduler=scheduler.state_dict(),
        rng=torch.get_rng_state(),
        cuda_rng=torch.cuda.get_rng_state_all() if torch.cuda.is_available() else None,
        best_val_accuracy=best_accuracy,
        best_epoch=best_epoch,
        best_model=best,
        epochs_without_improvement=waited,
    )
