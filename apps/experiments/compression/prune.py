"""Pruning (plain torch): unstructured magnitude pruning and structured channel pruning.

Unstructured: torch.nn.utils.prune zeroes the smallest weights (globally across layers or
per layer) to a target sparsity, in one shot or over several rounds (a cubic schedule that
prunes most early); the masks stay attached during fine-tuning, so pruned weights stay zero,
and are folded in before saving (`prune.remove`): a masked module saved as is keeps
`weight_orig` and `weight_mask` and is larger than the dense one. Zeros are then stored
sparse by the registry's weights format.

Structured: torch-pruning's dependency graph removes whole output channels / neurons (and
everything that depends on them) by L2 magnitude, so layers really get smaller and faster.
"""

import torch
from torch import nn
from torch.nn.utils import prune

PRUNABLE = (nn.Linear, nn.Conv2d)


def _targets(module: nn.Module) -> list[tuple[nn.Module, str]]:
    return [(child, "weight") for child in module.modules() if isinstance(child, PRUNABLE)]


def gradual_schedule(target: float, rounds: int) -> list[float]:
    """Sparsity after each round: s_t = target * (1 - (1 - t/rounds)^3), pruning most early (Zhu & Gupta)."""
    return [target * (1 - (1 - step / rounds) ** 3) for step in range(1, rounds + 1)]


def apply_magnitude_pruning(module: nn.Module, sparsity: float, *, scope: str = "global") -> None:
    """Mask the smallest weights so that `sparsity` of the prunable weights are zero (masks stay on)."""
    targets = _targets(module)
    if scope == "global":
        already = sum(float((child.weight == 0).sum()) for child, _ in targets)
        total = sum(child.weight.numel() for child, _ in targets)
        more = max(0, round(sparsity * total - already))
        prune.global_unstructured(targets, pruning_method=prune.L1Unstructured, amount=more)
        return
    for child, name in targets:
        zeros = float((child.weight == 0).sum())
        more = max(0, round(sparsity * child.weight.numel() - zeros))
        prune.l1_unstructured(child, name, amount=more)


def fold_masks(module: nn.Module) -> nn.Module:
    """Make the zeros permanent and drop the masks (weight_orig / weight_mask become one weight)."""
    for child in module.modules():
        if isinstance(child, PRUNABLE) and prune.is_pruned(child):
            for name in [
                hook._tensor_name
                for hook in child._forward_pre_hooks.values()
                if isinstance(hook, prune.BasePruningMethod)
            ]:
                prune.remove(child, name)
    return module


def sparsity(module: nn.Module) -> float:
    weights = [child.weight for child in module.modules() if isinstance(child, PRUNABLE)]
    total = sum(w.numel() for w in weights)
    return sum(float((w == 0).sum()) for w in weights) / max(total, 1)


def prune_channels(module: nn.Module, ratio: float, input_shape: tuple[int, ...]) -> nn.Module:
    """Remove `ratio` of the channels/neurons of every layer but the classifier, by L2 magnitude."""
    import torch_pruning as tp

    module = module.cpu().eval()
    example = torch.randn(1, *input_shape)
    classifier = [child for name, child in module.named_modules() if name == "classifier"]
    pruner = tp.pruner.MagnitudePruner(
        module,
        example,
        importance=tp.importance.MagnitudeImportance(p=2),
        pruning_ratio=ratio,
        ignored_layers=classifier,
        round_to=None,
    )
    pruner.step()
    return module


def resize_to(module: nn.Module, shapes: dict[str, list[int]]) -> nn.Module:
    """Replace layers whose stored weights have other shapes by layers of those shapes (for rebuilding).

    Structured pruning only changes channel counts, so each Conv2d, Linear and BatchNorm can be
    re-made from its stored shape; a depthwise convolution stays depthwise.
    """
    for name, child in list(module.named_modules()):
        weight = shapes.get(f"{name}.weight")
        if weight is None or list(getattr(child, "weight", torch.empty(0)).shape) == weight:
            continue
        module.set_submodule(name, _resized(child, weight), strict=True)
    return module


def _resized(child: nn.Module, shape: list[int]) -> nn.Module:
    if isinstance(child, nn.Linear):
        return nn.Linear(shape[1], shape[0], bias=child.bias is not None)
    if isinstance(child, nn.Conv2d):
        depthwise = child.groups > 1 and child.groups == child.in_channels == child.out_channels
        out_channels, in_per_group = shape[0], shape[1]
        groups = out_channels if depthwise else child.groups
        return nn.Conv2d(
            in_per_group * groups,
            out_channels,
            child.kernel_size,
            child.stride,
            child.padding,
            child.dilation,
            groups,
            bias=child.bias is not None,
        )
    if isinstance(child, nn.BatchNorm2d | nn.BatchNorm1d):
        return type(child)(shape[0], eps=child.eps, momentum=child.momentum)
    raise ValueError(f"cannot resize a {type(child).__name__}")
