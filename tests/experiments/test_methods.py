"""The compression methods on tensors: each stores smaller, rebuilds exactly, and keeps the network working."""

import copy

import pytest
import torch
from torch import nn

from apps.experiments.compression import (
    distill,
    lowrank,
    prune,
    rebuilding,  # noqa: F401 (registers the transforms)
)
from apps.experiments.compression.pipeline import FinetuneSettings, compress
from apps.experiments.compression.recipes import RecipeError, describe, family, validate_recipe
from apps.registry.architectures import build_model
from apps.registry.measure import flops_per_sample, parameter_counts
from apps.registry.rebuild import rebuild_module
from apps.registry.weights import QuantizedTensor, load_weights, save_weights

SPEC = {"family": "mlp", "hidden_sizes": [64, 64]}
CNN = {"family": "cnn_small"}


def _mlp(spec=SPEC, features=12, classes=3):
    torch.manual_seed(0)
    return build_model(spec, input_shape=(features,), num_classes=classes).eval()


def _stored_and_rebuilt(tmp_path, result, input_shape, classes):
    path = tmp_path / "w.safetensors"
    size = save_weights(path, result.state)
    weights = load_weights(path)
    rebuilt = rebuild_module(
        result.spec, input_shape=input_shape, num_classes=classes, transforms=result.transforms, weights=weights
    )
    return size, weights, rebuilt


def _run(recipe, module, input_shape, classes, spec=SPEC):
    return compress(
        module,
        spec=spec,
        transforms=[],
        recipe=validate_recipe(recipe),
        input_shape=input_shape,
        num_classes=classes,
        splits=(None, None),
        settings=FinetuneSettings(epochs=0),
    )


@pytest.mark.parametrize("scheme", ["int8_weight_only", "int8_dynamic", "fp16", "bf16"])
def test_each_quantization_rebuilds_to_the_module_that_was_saved(tmp_path, scheme):
    wide = {"family": "mlp", "hidden_sizes": [256, 256]}
    x = torch.randn(16, 64)
    result = _run([{"step": "quantize", "scheme": scheme}], _mlp(wide, 64, 10), (64,), 10, spec=wide)
    size, _, rebuilt = _stored_and_rebuilt(tmp_path, result, (64,), 10)
    with torch.no_grad():
        assert torch.equal(rebuilt(x), result.module(x))
        assert rebuilt(x).dtype == torch.float32
    dense = save_weights(tmp_path / "dense", _mlp(wide, 64, 10).state_dict())
    assert size < (0.3 if scheme.startswith("int8") else 0.55) * dense


def test_int8_weight_only_is_per_channel_and_close_to_the_float_weights():
    weight = torch.randn(8, 16) * torch.logspace(-2, 1, 8)[:, None]  # channels of very different scales
    quantized = QuantizedTensor.from_float(weight, axis=0)
    assert quantized.scale.shape == (8,)
    assert quantized.q.dtype == torch.int8
    error = (quantized.dequantize() - weight).abs().amax(dim=1)
    assert torch.all(error <= quantized.scale / 2 + 1e-6)  # each channel within half its own step


def test_global_magnitude_pruning_zeroes_the_smallest_weights_and_folding_drops_the_masks():
    module = _mlp()
    weights = torch.cat([m.weight.detach().abs().flatten() for m in module.modules() if isinstance(m, nn.Linear)])
    threshold = weights.kthvalue(int(0.8 * weights.numel())).values
    prune.apply_magnitude_pruning(module, 0.8, scope="global")
    assert any(name.endswith("weight_mask") for name in module.state_dict())
    prune.fold_masks(module)
    assert not any(name.endswith(("_mask", "_orig")) for name in module.state_dict())
    assert prune.sparsity(module) == pytest.approx(0.8, abs=0.002)
    for layer in (m for m in module.modules() if isinstance(m, nn.Linear)):
        kept = layer.weight[layer.weight != 0].abs()
        assert kept.numel() == 0 or kept.min() >= threshold - 1e-7


def test_per_layer_pruning_reaches_the_sparsity_in_every_layer():
    module = _mlp()
    prune.apply_magnitude_pruning(module, 0.5, scope="layer")
    prune.fold_masks(module)
    for layer in (m for m in module.modules() if isinstance(m, nn.Linear)):
        assert float((layer.weight == 0).float().mean()) == pytest.approx(0.5, abs=0.02)


def test_the_gradual_schedule_prunes_most_early_and_ends_at_the_target():
    schedule = prune.gradual_schedule(0.9, 4)
    assert schedule[-1] == pytest.approx(0.9)
    steps = [b - a for a, b in zip([0, *schedule], schedule, strict=False)]
    assert steps == sorted(steps, reverse=True)


def test_a_pruned_module_is_stored_sparse_and_smaller_than_dense(tmp_path):
    dense_size = save_weights(tmp_path / "dense", _mlp().state_dict())
    result = _run([{"step": "prune", "sparsity": 0.9}], _mlp(), (12,), 3)
    size, weights, rebuilt = _stored_and_rebuilt(tmp_path, result, (12,), 3)
    assert size < 0.35 * dense_size
    total, nonzero = parameter_counts(weights)
    assert nonzero < 0.2 * total
    x = torch.randn(4, 12)
    with torch.no_grad():
        assert torch.allclose(rebuilt(x), result.module(x))


def test_structured_pruning_really_removes_channels_of_a_cnn(tmp_path):
    torch.manual_seed(0)
    module = build_model(CNN, input_shape=(1, 8, 8), num_classes=10).eval()
    before = flops_per_sample(module, (1, 8, 8))
    result = compress(
        module,
        spec=CNN,
        transforms=[],
        recipe=validate_recipe([{"step": "structured_prune", "ratio": 0.5}]),
        input_shape=(1, 8, 8),
        num_classes=10,
        splits=(None, None),
        settings=FinetuneSettings(epochs=0),
    )
    _, _, rebuilt = _stored_and_rebuilt(tmp_path, result, (1, 8, 8), 10)
    assert flops_per_sample(rebuilt, (1, 8, 8)) <= 0.6 * before
    x = torch.randn(2, 1, 8, 8)
    with torch.no_grad():
        assert torch.allclose(rebuilt(x), result.module(x), atol=1e-5)
        assert rebuilt(x).shape == (2, 10)


def test_low_rank_factors_reproduce_the_layer_at_full_energy_and_shrink_it_at_low_rank():
    layer = nn.Linear(32, 32)
    module = nn.Sequential(layer, nn.ReLU(), nn.Linear(32, 3))
    full = copy.deepcopy(module)
    ranks = lowrank.factorize(full, energy=0.9999)
    x = torch.randn(5, 32)
    assert ranks == {}  # full rank saves nothing: the layer is left alone
    ranks = lowrank.factorize(module, rank_ratio=0.25)
    assert ranks["0"] == 8  # a quarter of the full rank of 32
    assert sum(p.numel() for p in module[0].parameters()) < layer.weight.numel()
    with torch.no_grad():
        assert module(x).shape == (5, 3)


def test_low_rank_energy_keeps_an_exactly_low_rank_matrix():
    torch.manual_seed(0)
    layer = nn.Linear(40, 40, bias=False)
    with torch.no_grad():
        layer.weight.copy_(torch.randn(40, 3) @ torch.randn(3, 40))
    module = nn.Sequential(layer)
    expected = layer(torch.ones(1, 40)).detach()
    ranks = lowrank.factorize(module, energy=0.999)
    assert ranks == {"0": 3}
    assert torch.allclose(module(torch.ones(1, 40)), expected, atol=1e-3)


def test_distillation_loss_is_zero_when_the_student_matches_the_teacher_and_unlabelled_rows_only_use_it():
    teacher = nn.Linear(4, 3)
    loss = distill.distillation_loss(teacher, temperature=4.0, alpha=1.0)
    x = torch.randn(6, 4)
    with torch.no_grad():
        assert loss(teacher(x), x, torch.full((6,), -1)).item() == pytest.approx(0.0, abs=1e-6)
    mixed = distill.distillation_loss(teacher, temperature=2.0, alpha=0.5)
    value = mixed(torch.zeros(6, 3, requires_grad=True), x, torch.tensor([0, -1, -1, -1, -1, -1]))
    assert torch.isfinite(value)


def test_recipes_are_validated_with_the_field_at_fault():
    with pytest.raises(RecipeError) as error:
        validate_recipe([{"step": "prune", "sparsity": 1.5}])
    assert error.value.field == "recipe.0.sparsity"
    with pytest.raises(RecipeError) as error:
        validate_recipe([{"step": "quantize", "scheme": "int8_weight_only"}, {"step": "prune", "sparsity": 0.5}])
    assert "last step" in error.value.message
    with pytest.raises(RecipeError):
        validate_recipe([{"step": "low_rank"}])
    with pytest.raises(RecipeError):
        validate_recipe([{"step": "prune", "sparsity": 0.5, "surprise": 1}])
    recipe = validate_recipe(
        [{"step": "structured_prune", "ratio": 0.5}, {"step": "quantize", "scheme": "int8_weight_only"}]
    )
    assert describe(recipe) == "structured 50% → int8"
    assert family(recipe) == "pipeline"
