"""Low-rank factorization (plain torch): a layer's weight replaced by two thinner ones from its SVD.

Linear(in, out) -> Linear(in, r, no bias) then Linear(r, out); Conv2d(in, out, k) ->
Conv2d(in, r, k) then Conv2d(r, out, 1). The rank is a ratio of the full rank, or the
smallest that keeps a share of the singular values' energy. A layer is only factorized
when that saves parameters. The transform names the factorized layers and their ranks,
so a rebuilt module gets the same structure before its weights are loaded.
"""

import torch
from torch import nn


def _rank(singular: torch.Tensor, *, rank_ratio: float | None, energy: float | None) -> int:
    if energy is not None:
        cumulative = torch.cumsum(singular**2, 0) / torch.sum(singular**2)
        return int(torch.searchsorted(cumulative, torch.tensor(energy)).item()) + 1
    return max(1, round(rank_ratio * len(singular)))


def _factorized(layer: nn.Module, rank: int) -> nn.Sequential:
    if isinstance(layer, nn.Linear):
        return nn.Sequential(
            nn.Linear(layer.in_features, rank, bias=False),
            nn.Linear(rank, layer.out_features, bias=layer.bias is not None),
        )
    return nn.Sequential(
        nn.Conv2d(layer.in_channels, rank, layer.kernel_size, layer.stride, layer.padding, layer.dilation, bias=False),
        nn.Conv2d(rank, layer.out_channels, 1, bias=layer.bias is not None),
    )


def _fill(pair: nn.Sequential, layer: nn.Module, u: torch.Tensor, s: torch.Tensor, v: torch.Tensor) -> None:
    root = torch.sqrt(s)
    first, second = (v * root).T, u * root  # W ~ second @ first: [out, r] @ [r, in * k * k]
    with torch.no_grad():
        pair[0].weight.copy_(first.reshape(pair[0].weight.shape))
        pair[1].weight.copy_(second.reshape(pair[1].weight.shape))
        if layer.bias is not None:
            pair[1].bias.copy_(layer.bias)


def _candidates(module: nn.Module):
    return [
        (name, child)
        for name, child in module.named_modules()
        if isinstance(child, nn.Linear | nn.Conv2d) and name != "classifier" and getattr(child, "groups", 1) == 1
    ]


def factorize(module: nn.Module, *, rank_ratio: float | None = None, energy: float | None = None) -> dict:
    """Factorize every layer where it saves parameters; returns {layer name: rank}."""
    ranks = {}
    for name, layer in _candidates(module):
        matrix = layer.weight.detach().reshape(layer.weight.shape[0], -1)  # [out, in * k * k]
        u, s, vh = torch.linalg.svd(matrix, full_matrices=False)
        rank = _rank(s, rank_ratio=rank_ratio, energy=energy)
        if rank * (matrix.shape[0] + matrix.shape[1]) >= matrix.numel():
            continue  # no saving at this rank
        pair = _factorized(layer, rank)
        _fill(pair, layer, u[:, :rank], s[:rank], vh[:rank].T)
        module.set_submodule(name, pair, strict=True)
        ranks[name] = rank
    return ranks


def restructure(module: nn.Module, ranks: dict[str, int]) -> nn.Module:
    """The factorized structure, without values (the stored weights are loaded next)."""
    for name, rank in ranks.items():
        module.set_submodule(name, _factorized(module.get_submodule(name), rank), strict=True)
    return module
