"""Honest measurements of a classifier: quality on labelled data, size, FLOPs and speed.

Every number says what it measured: `describe_device` names the hardware that a latency
came from, and timings are medians of repeated runs after a warm-up, not best cases.
Functions put the model in eval mode for the measurement and give its modes back after.
"""

import math
import platform
import statistics
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import torch
from torch import nn
from torch.nn import functional
from torch.utils.flop_counter import FlopCounterMode

# Buffers that a state dict holds beside the weights: BatchNorm's statistics are not
# learned parameters, and pruning masks describe a weight rather than add to it.
NOT_PARAMETERS = ("running_mean", "running_var", "num_batches_tracked")
MASK_SUFFIX = "_mask"
ORIG_SUFFIX = "_orig"


@contextmanager
def evaluating(model: nn.Module) -> Iterator[nn.Module]:
    """Eval mode inside the block; each submodule's own train/eval flag is restored after,
    so measuring a model halfway through training does not change how it trains."""
    flags = [(module, module.training) for module in model.modules()]
    model.eval()
    try:
        yield model
    finally:
        for module, training in flags:
            module.training = training


def model_device(model: nn.Module) -> torch.device:
    """Where the model's weights are (CPU for a model without any)."""
    tensor = next(model.parameters(), None)
    if tensor is None:
        tensor = next(model.buffers(), None)
    return tensor.device if tensor is not None else torch.device("cpu")


# --- devices ------------------------------------------------------------------------


def pick_device(prefer: str | None = None) -> torch.device:
    """CUDA when there is one (unless `prefer` says cpu), else CPU: a preference for a GPU
    that is absent falls back instead of failing, since jobs may land on CPU-only nodes."""
    try:
        wanted = torch.device(prefer or "cuda")
    except RuntimeError:
        wanted = None
    if wanted is None or wanted.type not in ("cpu", "cuda"):
        raise ValueError(f"unsupported device {prefer!r}; use 'cpu' or 'cuda'")
    present = wanted.type == "cuda" and torch.cuda.is_available()
    if present and (wanted.index is None or wanted.index < torch.cuda.device_count()):
        return wanted
    return torch.device("cpu")


def _cpu_model_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass  # not Linux: fall back to what the platform module knows
    return platform.processor() or platform.machine() or "unknown CPU"


def describe_device(device: torch.device | str) -> str:
    """The hardware in words, stored beside every timing so numbers can be compared fairly."""
    device = torch.device(device)
    if device.type == "cuda":
        return f"cuda: {torch.cuda.get_device_name(device)}"
    return f"cpu: {_cpu_model_name()} ({torch.get_num_threads()} threads)"


# --- quality ------------------------------------------------------------------------


def macro_f1(confusion: torch.Tensor) -> float:
    """Mean F1 over the classes that occur in the labels or the predictions; a class absent
    from both has no F1 to speak of and is skipped. That is scikit-learn's convention for
    `f1_score(average="macro")` without `labels=`, so the two agree."""
    confusion = confusion.to(torch.float64)
    true_positives = confusion.diagonal()
    predicted, actual = confusion.sum(dim=0), confusion.sum(dim=1)
    present = (predicted + actual) > 0
    if not present.any():
        return 0.0
    f1 = 2 * true_positives[present] / (predicted[present] + actual[present])
    return float(f1.mean())


def _check_labels(labels: torch.Tensor, num_classes: int, features: torch.Tensor) -> None:
    if len(labels) != len(features):
        raise ValueError(f"{len(features)} samples but {len(labels)} labels")
    if len(labels) == 0:
        raise ValueError("no samples to evaluate")
    if int(labels.min()) < 0 or int(labels.max()) >= num_classes:
        raise ValueError(f"labels must be from 0 to {num_classes - 1}")


def evaluate_classifier(
    model: nn.Module,
    features: torch.Tensor,
    labels: torch.Tensor,
    *,
    num_classes: int,
    batch_size: int = 256,
    device: torch.device | str | None = None,
    progress: Callable[[float], None] | None = None,
) -> dict:
    """Top-1 accuracy, mean cross-entropy, macro F1 and the confusion matrix (rows = true
    class, columns = predicted), computed batch by batch so memory stays constant.
    The model is moved to `device` (default: where it already is)."""
    _check_labels(labels, num_classes, features)
    device = torch.device(device) if device is not None else model_device(model)
    model.to(device)
    confusion = torch.zeros(num_classes * num_classes, dtype=torch.int64, device=device)
    loss_sum, count = 0.0, len(labels)
    with evaluating(model), torch.inference_mode():
        for start in range(0, count, batch_size):
            x = features[start : start + batch_size].to(device)
            y = labels[start : start + batch_size].to(device, torch.int64)
            logits = model(x)
            loss_sum += float(functional.cross_entropy(logits.float(), y, reduction="sum"))
            confusion += torch.bincount(y * num_classes + logits.argmax(dim=1), minlength=num_classes**2)
            if progress is not None:
                progress(min(start + batch_size, count) / count)
    matrix = confusion.view(num_classes, num_classes).cpu()
    return {
        "accuracy": float(matrix.diagonal().sum()) / count,
        "loss": loss_sum / count,
        "macro_f1": macro_f1(matrix),
        "confusion_matrix": matrix.tolist(),
        "sample_count": count,
    }


# --- size and cost ------------------------------------------------------------------


def _counted_tensors(state: dict) -> Iterator[torch.Tensor]:
    """The state dict's weights as they act: BatchNorm statistics and pruning masks are left
    out, and a pruned `weight_orig` is counted through its mask."""
    for name, tensor in state.items():
        tensor = getattr(tensor, "q", tensor)  # a QuantizedTensor counts through its int8 values
        leaf = name.rsplit(".", 1)[-1]
        if not isinstance(tensor, torch.Tensor) or leaf in NOT_PARAMETERS or leaf.endswith(MASK_SUFFIX):
            continue
        if tensor.dtype == torch.bool or tensor.is_complex():
            continue
        mask = state.get(name.removesuffix(ORIG_SUFFIX) + MASK_SUFFIX) if leaf.endswith(ORIG_SUFFIX) else None
        yield tensor * mask if mask is not None else tensor


def parameter_counts(model_or_state_dict: nn.Module | dict) -> tuple[int, int]:
    """(total, non-zero) parameter values across floating and integer weight tensors, so
    quantized (int8) weights count too. Excludes BatchNorm running stats and
    `num_batches_tracked`, boolean tensors and pruning masks."""
    state = model_or_state_dict.state_dict() if isinstance(model_or_state_dict, nn.Module) else model_or_state_dict
    total = nonzero = 0
    for tensor in _counted_tensors(state):
        total += tensor.numel()
        nonzero += int(torch.count_nonzero(tensor))
    return total, nonzero


def flops_per_sample(model: nn.Module, input_shape: tuple[int, ...]) -> int:
    """Floating-point operations of one forward pass on one sample, as torch's FlopCounterMode
    counts them (a multiply-add is 2 FLOPs; only matmul/conv-like ops are counted)."""
    sample = torch.zeros(1, *input_shape, device=model_device(model))
    with evaluating(model), torch.no_grad(), FlopCounterMode(display=False) as counter:
        model(sample)
    return int(counter.get_total_flops())


# --- speed --------------------------------------------------------------------------


def _synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _forward_seconds(model: nn.Module, batch: torch.Tensor, warmup: int, repeats: int) -> list[float]:
    """Wall time of each of `repeats` forward passes after `warmup` untimed ones; CUDA runs
    asynchronously, so each timing waits for the GPU to finish."""
    if repeats < 1:
        raise ValueError("repeats must be at least 1")
    times = []
    with evaluating(model), torch.inference_mode():
        for index in range(warmup + repeats):
            _synchronize(batch.device)
            started = time.perf_counter()
            model(batch)
            _synchronize(batch.device)
            if index >= warmup:
                times.append(time.perf_counter() - started)
    return times


def latency_per_sample(
    model: nn.Module, input_shape: tuple[int, ...], *, device: torch.device | str, warmup: int = 5, repeats: int = 30
) -> float:
    """Median seconds for one forward pass at batch size 1 on `device` (the model moves there)."""
    device = torch.device(device)
    model.to(device)
    sample = torch.randn(1, *input_shape, device=device)
    return statistics.median(_forward_seconds(model, sample, warmup, repeats))


def throughput(
    model: nn.Module,
    input_shape: tuple[int, ...],
    *,
    device: torch.device | str,
    batch_size: int = 64,
    warmup: int = 3,
    repeats: int = 10,
) -> float:
    """Samples per second at `batch_size`, from the median batch time (the model moves to `device`)."""
    device = torch.device(device)
    model.to(device)
    batch = torch.randn(batch_size, *input_shape, device=device)
    seconds = statistics.median(_forward_seconds(model, batch, warmup, repeats))
    # a timer that reads 0 on a tiny model would otherwise divide by zero
    return batch_size / max(seconds, math.ulp(1.0))
