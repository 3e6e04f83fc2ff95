"""How the registry re-applies each compression transform when it rebuilds a stored version.

Importing this module registers them (the experiments app does it in `ready()`; plain
processes that rebuild versions, such as data-parallel ranks, import it themselves).
- structure phase, before the weights load: `resize` (structured pruning: layers re-made
  at their stored shapes), `low_rank` (layers replaced by their factor pairs);
- weights phase, after: `quantize` (re-quantized so the module computes what was saved);
- `prune` and `distill` change no structure (the zeros and the student's spec are stored).
"""

from apps.experiments.compression import lowrank, prune, quantize
from apps.registry.rebuild import register_transform
from apps.registry.weights import QuantizedTensor


@register_transform("resize", phase="structure")
def _resize(module, transform, weights):
    shapes = {name: list(value.shape) for name, value in weights.items()}
    return prune.resize_to(module, shapes)


@register_transform("low_rank", phase="structure")
def _low_rank(module, transform, weights):
    return lowrank.restructure(module, {name: int(rank) for name, rank in transform["ranks"].items()})


@register_transform("quantize", phase="weights")
def _quantize(module, transform, weights):
    stored = {name: value for name, value in weights.items() if isinstance(value, QuantizedTensor)}
    return quantize.rebuild(module, transform, stored)


@register_transform("prune", phase="weights")
def _prune(module, transform, weights):
    return module


@register_transform("distill", phase="weights")
def _distill(module, transform, weights):
    return module
