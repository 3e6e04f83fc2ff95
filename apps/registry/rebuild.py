"""Rebuilding a version's module from its spec, its transforms and its stored weights.

A version records the transforms that made it from its architecture (pruned channel
counts, low-rank factors, quantization, ...). Each kind of transform registers how to
re-apply it: `structure` transforms reshape the freshly built module before the weights
are loaded (a smaller layer, a factorized one); `weights` transforms run after loading
and may read the stored tensors as they are (int8 values and scales), so the rebuilt
module computes exactly what the saved one did. Plain torch; no Django.
"""

from collections.abc import Callable, Mapping
from dataclasses import dataclass

import torch
from torch import nn

from apps.registry.architectures import build_model
from apps.registry.weights import QuantizedTensor, dequantized

TransformApplier = Callable[[nn.Module, dict, Mapping], nn.Module]


@dataclass(frozen=True)
class TransformKind:
    phase: str  # "structure" (before loading weights) or "weights" (after)
    apply: TransformApplier


TRANSFORMS: dict[str, TransformKind] = {}


class RebuildError(ValueError):
    """The stored weights or transforms do not fit the architecture."""


def register_transform(kind: str, *, phase: str):
    """Decorator: `apply(module, transform, stored_weights) -> module` re-applies one transform kind."""
    if phase not in ("structure", "weights"):
        raise ValueError(f"unknown phase {phase!r}")

    def register(apply: TransformApplier) -> TransformApplier:
        TRANSFORMS[kind] = TransformKind(phase, apply)
        return apply

    return register


def _apply(module: nn.Module, transforms: list[dict], weights: Mapping, phase: str) -> nn.Module:
    for transform in transforms:
        kind = TRANSFORMS.get(transform.get("kind"))
        if kind is None:
            raise RebuildError(f"unknown transform {transform.get('kind')!r}")
        if kind.phase == phase:
            module = kind.apply(module, transform, weights)
    return module


def rebuild_module(
    spec: dict,
    *,
    input_shape: tuple[int, ...],
    num_classes: int,
    transforms: list[dict],
    weights: Mapping[str, "torch.Tensor | QuantizedTensor"],
    computing_as_stored: bool = True,
) -> nn.Module:
    """The module a version describes, with its weights, in eval mode on the CPU.

    With computing_as_stored=False the weights-phase transforms (quantization) are left
    out: a float module of the same structure, doing the same operations (for counting FLOPs,
    which FlopCounterMode cannot see inside quantized tensor subclasses).
    """
    module = build_model(spec, input_shape=tuple(input_shape), num_classes=num_classes)
    module = _apply(module, transforms, weights, "structure")
    try:
        module.load_state_dict(dequantized(weights), strict=True)
    except RuntimeError as error:
        raise RebuildError(f"the weights do not fit the architecture: {error}") from None
    if computing_as_stored:
        module = _apply(module, transforms, weights, "weights")
    return module.eval()


def expected_shapes(spec: dict, *, input_shape: tuple[int, ...], num_classes: int) -> dict[str, list[int]]:
    """Parameter and buffer shapes of a plain architecture, without allocating its weights."""
    with torch.device("meta"):
        module = build_model(spec, input_shape=tuple(input_shape), num_classes=num_classes)
    return {name: list(tensor.shape) for name, tensor in module.state_dict().items()}


def shape_problems(found: dict[str, list[int]], expected: dict[str, list[int]]) -> list[str]:
    """What differs between stored weight shapes and an architecture's, in words."""
    problems = [f"missing '{name}' {shape}" for name, shape in expected.items() if name not in found]
    problems += [f"unexpected '{name}'" for name in found if name not in expected]
    problems += [
        f"'{name}' is {found[name]}, the architecture needs {shape}"
        for name, shape in expected.items()
        if name in found and found[name] != shape
    ]
    return problems
