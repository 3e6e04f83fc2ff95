"""Weights files: bit-identical round trips, real compressed sizes, malformed files refused."""

import json
import struct

import pytest
import torch

from apps.registry.architectures import build_model
from apps.registry.rebuild import RebuildError, expected_shapes, rebuild_module, shape_problems
from apps.registry.weights import (
    QuantizedTensor,
    WeightsFileError,
    dequantized,
    header_shapes,
    load_weights,
    save_weights,
)


def _mlp(seed=0):
    torch.manual_seed(seed)
    return build_model({"family": "mlp", "hidden_sizes": [256, 128]}, input_shape=(64,), num_classes=10).eval()


def _prune(state: dict, sparsity: float) -> dict:
    """Zero the smallest weights of every matrix (magnitude pruning, for the size tests)."""
    pruned = {}
    for name, tensor in state.items():
        if tensor.dim() >= 2:
            threshold = tensor.abs().flatten().kthvalue(int(sparsity * tensor.numel())).values
            tensor = torch.where(tensor.abs() <= threshold, torch.zeros_like(tensor), tensor)
        pruned[name] = tensor
    return pruned


def _quantize(state: dict) -> dict:
    return {name: QuantizedTensor.from_float(t) if t.dim() >= 2 else t for name, t in state.items()}


def test_a_dense_state_dict_reloads_bit_identically(tmp_path):
    state = _mlp().state_dict()

    save_weights(tmp_path / "w.safetensors", state)
    loaded = load_weights(tmp_path / "w.safetensors")

    assert loaded.keys() == state.keys()
    for name in state:
        assert torch.equal(loaded[name], state[name])
        assert loaded[name].dtype == state[name].dtype


def test_sparse_and_quantized_tensors_reload_exactly(tmp_path):
    state = _quantize(_prune(_mlp().state_dict(), 0.8))

    save_weights(tmp_path / "w.safetensors", state)
    loaded = load_weights(tmp_path / "w.safetensors")

    for name, value in state.items():
        if isinstance(value, QuantizedTensor):
            assert torch.equal(loaded[name].q, value.q)
            assert torch.equal(loaded[name].scale, value.scale)
        else:
            assert torch.equal(loaded[name], value)


def test_int8_weights_take_at_most_0_30x_of_fp32(tmp_path):
    state = _mlp().state_dict()
    dense = save_weights(tmp_path / "fp32.safetensors", state)

    int8 = save_weights(tmp_path / "int8.safetensors", _quantize(state))

    assert int8 <= 0.30 * dense, f"{int8} bytes is {int8 / dense:.3f}x of {dense}"


def test_a_90_percent_sparse_version_takes_at_most_0_35x(tmp_path):
    state = _mlp().state_dict()
    dense = save_weights(tmp_path / "dense.safetensors", state)

    sparse = save_weights(tmp_path / "sparse.safetensors", _prune(state, 0.9))

    assert sparse <= 0.35 * dense, f"{sparse / dense:.3f}x"


def test_the_file_shrinks_as_sparsity_grows(tmp_path):
    state = _mlp().state_dict()

    sizes = [save_weights(tmp_path / f"{s}.safetensors", _prune(state, s)) for s in (0.5, 0.7, 0.9, 0.97)]

    assert sizes == sorted(sizes, reverse=True)


def test_quantized_values_dequantize_to_within_half_a_step():
    weight = torch.randn(16, 32)

    quantized = QuantizedTensor.from_float(weight)

    step = quantized.scale[:, None]
    assert quantized.q.dtype == torch.int8
    assert torch.all((quantized.dequantize() - weight).abs() <= step / 2 + 1e-7)


def test_a_rebuilt_module_predicts_what_the_saved_one_did(tmp_path):
    module = _mlp(seed=3)
    x = torch.randn(20, 64)
    save_weights(tmp_path / "w.safetensors", module.state_dict())

    rebuilt = rebuild_module(
        {"family": "mlp", "hidden_sizes": [256, 128]},
        input_shape=(64,),
        num_classes=10,
        transforms=[],
        weights=load_weights(tmp_path / "w.safetensors"),
    )

    assert torch.equal(rebuilt(x), module(x))


def test_a_rebuild_with_wrong_weights_names_the_problem():
    state = _mlp().state_dict()

    with pytest.raises(RebuildError, match="do not fit"):
        rebuild_module(
            {"family": "mlp", "hidden_sizes": [64]}, input_shape=(64,), num_classes=10, transforms=[], weights=state
        )


def test_an_unknown_transform_is_refused():
    with pytest.raises(RebuildError, match="unknown transform 'teleport'"):
        rebuild_module(
            {"family": "mlp"}, input_shape=(4,), num_classes=2, transforms=[{"kind": "teleport"}], weights={}
        )


def test_header_shapes_match_expected_shapes_without_allocating(tmp_path):
    spec = {"family": "cnn_small"}
    module = build_model(spec, input_shape=(1, 8, 8), num_classes=10)
    save_weights(tmp_path / "w.safetensors", _quantize(module.state_dict()))

    found = header_shapes(tmp_path / "w.safetensors")

    assert shape_problems(found, expected_shapes(spec, input_shape=(1, 8, 8), num_classes=10)) == []
    assert shape_problems(found, expected_shapes(spec, input_shape=(1, 8, 8), num_classes=3))[0].startswith(
        "'classifier.weight' is [10, 64], the architecture needs [3, 64]"
    )


def test_dequantized_gives_plain_float_tensors():
    state = _quantize(_mlp().state_dict())

    plain = dequantized(state)

    assert all(isinstance(t, torch.Tensor) and t.is_floating_point() for t in plain.values())


@pytest.mark.parametrize(
    "payload",
    [
        b"",
        b"\x08\x00\x00\x00\x00\x00\x00\x00{bad json",
        struct.pack("<Q", 10**9) + b"{}",
        struct.pack("<Q", 60)
        + json.dumps({"w": {"dtype": "F32", "shape": [1000], "data_offsets": [0, 4000]}}).encode().ljust(60)
        + b"\0" * 8,
    ],
    ids=["empty", "bad-json", "header-too-long", "offsets-past-the-end"],
)
def test_malformed_safetensors_raise_a_clear_error(tmp_path, payload):
    path = tmp_path / "bad.safetensors"
    path.write_bytes(payload)

    with pytest.raises(WeightsFileError, match="not a valid safetensors file"):
        header_shapes(path)
    with pytest.raises(WeightsFileError):
        load_weights(path)


FAMILY_INPUTS = [
    ({"family": "mlp"}, (13,)),
    ({"family": "cnn_small"}, (1, 8, 8)),
    ({"family": "resnet", "depth": 8, "width_multiplier": 0.5}, (3, 16, 16)),
    ({"family": "mobilenet_v2", "width_multiplier": 0.25}, (3, 16, 16)),
]


@pytest.mark.parametrize(("spec", "shape"), FAMILY_INPUTS, ids=[s["family"] for s, _ in FAMILY_INPUTS])
def test_every_family_rebuilds_from_lepton_weights_with_identical_outputs(tmp_path, spec, shape):
    torch.manual_seed(0)
    module = build_model(spec, input_shape=shape, num_classes=5)
    module.train()
    module(torch.randn(8, *shape)).sum().backward()  # move BatchNorm statistics off their defaults
    module.eval()
    path = tmp_path / "w.safetensors"
    save_weights(path, module.state_dict())

    rebuilt = rebuild_module(spec, input_shape=shape, num_classes=5, transforms=[], weights=load_weights(path))

    x = torch.randn(4, *shape)
    assert torch.equal(rebuilt(x), module(x))


def test_a_pruned_version_rebuilds_with_identical_predictions(tmp_path):
    module = _mlp(seed=5)
    module.load_state_dict(_prune(module.state_dict(), 0.9))
    path = tmp_path / "w.safetensors"
    save_weights(path, module.state_dict())

    rebuilt = rebuild_module(
        {"family": "mlp", "hidden_sizes": [256, 128]},
        input_shape=(64,),
        num_classes=10,
        transforms=[],
        weights=load_weights(path),
    )

    x = torch.randn(16, 64)
    assert torch.equal(rebuilt(x), module(x))


def test_an_int8_weight_only_version_rebuilds_with_identical_predictions(tmp_path):
    """The saved module computes with int8 values times their scales; so does the rebuilt one."""
    module = _mlp(seed=6)
    quantized = _quantize(module.state_dict())
    module.load_state_dict(dequantized(quantized))
    path = tmp_path / "w.safetensors"
    save_weights(path, quantized)

    rebuilt = rebuild_module(
        {"family": "mlp", "hidden_sizes": [256, 128]},
        input_shape=(64,),
        num_classes=10,
        transforms=[],
        weights=load_weights(path),
    )

    x = torch.randn(16, 64)
    assert torch.equal(rebuilt(x), module(x))


@pytest.mark.parametrize(
    "layout",
    [
        "not json",
        "[1, 2]",
        '{"a": {}}',
        '{"a": {"shape": 3}}',
        '{"a": {"shape": [-1]}}',
        '{"a": {"shape": [2], "int8": "yes"}}',
    ],
)
def test_a_crafted_layout_is_a_weights_error_not_a_crash(tmp_path, layout):
    from safetensors.torch import save_file

    path = tmp_path / "crafted.safetensors"
    save_file({"a": torch.zeros(2)}, str(path), metadata={"format": "lepton-weights-1", "layout": layout})

    with pytest.raises(WeightsFileError):
        header_shapes(path)
    with pytest.raises(WeightsFileError):
        load_weights(path)


def test_a_layout_that_points_at_missing_tensors_is_refused(tmp_path):
    from safetensors.torch import save_file

    path = tmp_path / "liar.safetensors"
    save_file({"a": torch.zeros(2)}, str(path), metadata={"layout": '{"b": {"shape": [2], "sparse": true}}'})

    with pytest.raises(WeightsFileError, match="does not match"):
        load_weights(path)
