"""The architecture catalog: specs are validated field by field, and every family builds,
trains a step on its bundled dataset, saves, reloads bit-identically and exports to ONNX."""

import functools
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import load_file, save_file
from sklearn import datasets as sk
from torch import nn

from apps.registry.architectures import (
    ARCHITECTURES,
    IMAGE,
    TABULAR,
    SpecError,
    build_model,
    catalog,
    validate_spec,
)
from apps.registry.onnx_export import export_onnx_checked

IMAGE_FAMILIES = ["cnn_small", "resnet", "mobilenet_v2"]
ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(autouse=True)
def _seeded():
    torch.manual_seed(0)


@functools.cache
def bundled(name: str) -> tuple[torch.Tensor, torch.Tensor]:
    """A bundled scikit-learn set as model inputs: digits as (N, 1, 8, 8) in 0..1, tables standardized."""
    if name == "digits":
        bunch = sk.load_digits()
        features = torch.from_numpy(bunch.images / 16.0).to(torch.float32).unsqueeze(1)
    else:
        bunch = getattr(sk, f"load_{name}")()
        data = np.asarray(bunch.data, dtype=np.float64)
        features = torch.from_numpy((data - data.mean(0)) / data.std(0)).to(torch.float32)
    return features, torch.from_numpy(np.asarray(bunch.target, dtype=np.int64))


def _batch(name: str, size: int = 64) -> tuple[torch.Tensor, torch.Tensor, int]:
    features, labels = bundled(name)
    rows = torch.randperm(len(labels), generator=torch.Generator().manual_seed(1))[:size]
    return features[rows], labels[rows], int(labels.max()) + 1


def _train_step(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> float:
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    model.train()
    loss = nn.functional.cross_entropy(model(x), y)
    optimizer.zero_grad()
    loss.backward()
    optimizer.step()
    return loss.item()


CASES = [
    ("mlp", "wine", {}),
    ("mlp", "breast_cancer", {"hidden_sizes": [32], "dropout": 0.2}),
    ("mlp", "iris", {}),
    ("mlp", "iris", {"hidden_sizes": [16, 16, 8]}),
    ("mlp", "digits", {}),
    ("mlp", "digits", {"dropout": 0.5}),
    ("cnn_small", "digits", {}),
    ("cnn_small", "digits", {"channels": [4, 8], "hidden": 16, "dropout": 0.1}),
    ("resnet", "digits", {}),
    ("resnet", "digits", {"depth": 8, "width_multiplier": 1.5}),
    ("resnet", "digits", {"depth": 56, "width_multiplier": 0.25}),
    ("mobilenet_v2", "digits", {}),
    ("mobilenet_v2", "digits", {"width_multiplier": 0.5}),
]


@pytest.mark.parametrize(
    ("family", "dataset", "params"), CASES, ids=lambda v: json.dumps(v) if isinstance(v, dict) else v
)
def test_every_family_trains_saves_reloads_and_exports(family, dataset, params, tmp_path):
    x, y, num_classes = _batch(dataset)
    spec = {"family": family, **params}
    model = build_model(spec, input_shape=tuple(x.shape[1:]), num_classes=num_classes)
    before = {name: p.detach().clone() for name, p in model.named_parameters()}

    loss = _train_step(model, x, y)

    assert np.isfinite(loss)
    unchanged = [name for name, p in model.named_parameters() if torch.equal(p, before[name])]
    assert unchanged == []

    save_file(model.state_dict(), tmp_path / "weights.safetensors")
    reloaded = build_model(spec, input_shape=tuple(x.shape[1:]), num_classes=num_classes)
    reloaded.load_state_dict(load_file(tmp_path / "weights.safetensors"))
    for name, tensor in model.state_dict().items():
        assert torch.equal(tensor, reloaded.state_dict()[name]), name
    model.eval()
    reloaded.eval()
    with torch.inference_mode():
        assert torch.equal(model(x), reloaded(x))

    assert export_onnx_checked(reloaded, tuple(x.shape[1:]), tmp_path / "model.onnx", sample=x[:8]) < 1e-4


@pytest.mark.parametrize("family", IMAGE_FAMILIES)
@pytest.mark.parametrize("input_shape", [(3, 32, 32), (1, 8, 8), (1, 5, 7)])
def test_image_families_fit_any_image_size(family, input_shape):
    model = build_model({"family": family}, input_shape=input_shape, num_classes=10).eval()
    with torch.inference_mode():
        logits = model(torch.randn(2, *input_shape))
    assert logits.shape == (2, 10)
    assert torch.isfinite(logits).all()


@pytest.mark.parametrize("family", IMAGE_FAMILIES)
def test_image_weights_do_not_depend_on_the_image_size(family):
    """A model trained on 8x8 digits loads into one built for 32x32: pooling, not flattening."""
    small = build_model({"family": family}, input_shape=(3, 8, 8), num_classes=10)
    large = build_model({"family": family}, input_shape=(3, 32, 32), num_classes=10)
    large.load_state_dict(small.state_dict())


@pytest.mark.parametrize("family", IMAGE_FAMILIES)
def test_image_families_refuse_tabular_input(family):
    with pytest.raises(SpecError) as error:
        build_model({"family": family}, input_shape=(13,), num_classes=3)
    assert error.value.field == "family"
    assert "tabular_classification" in error.value.message


@pytest.mark.parametrize("family", list(ARCHITECTURES))
def test_every_model_names_its_features_and_classifier(family):
    """Pruning and factorization find layers by these names."""
    shape = (1, 8, 8)
    model = build_model({"family": family}, input_shape=shape, num_classes=10)
    modules = dict(model.named_modules())
    assert "features" in modules
    assert isinstance(modules["classifier"], nn.Linear)
    assert modules["classifier"].out_features == 10


@pytest.mark.parametrize(("depth", "blocks"), [(8, 1), (20, 3), (56, 9)])
def test_resnet_depth_counts_its_weighted_layers(depth, blocks):
    """6n+2: a stem conv, 3 stages of n two-conv blocks, a classifier (projections aside)."""
    model = build_model({"family": "resnet", "depth": depth}, input_shape=(3, 32, 32), num_classes=10)
    convs = [m for m in model.modules() if isinstance(m, nn.Conv2d) and m.kernel_size == (3, 3)]
    assert len(convs) + 1 == depth
    assert len(model.features.stage2) == blocks


def test_resnet_width_multiplier_scales_the_stages():
    model = build_model({"family": "resnet", "width_multiplier": 0.5}, input_shape=(3, 32, 32), num_classes=10)
    assert model.features.stem.conv.out_channels == 8
    assert model.classifier.in_features == 32


def test_resnet_downsamples_only_while_the_map_is_larger_than_two_pixels():
    model = build_model({"family": "resnet"}, input_shape=(1, 4, 4), num_classes=10)
    assert model.features.stage2[0].conv1.stride == (2, 2)  # 4x4 -> 2x2
    assert model.features.stage3[0].conv1.stride == (1, 1)  # already 2x2


def test_mobilenet_v2_adds_the_input_back_only_where_shapes_match():
    model = build_model({"family": "mobilenet_v2"}, input_shape=(3, 32, 32), num_classes=10)
    blocks = list(model.features.blocks)
    assert len(blocks) == 17
    assert [block.residual for block in blocks[:4]] == [False, False, True, False]
    assert isinstance(blocks[0].expand, nn.Identity)  # expansion 1 in the first block


def test_validate_spec_fills_defaults():
    assert validate_spec({"family": "resnet"}) == {"family": "resnet", "depth": 20, "width_multiplier": 1.0}
    assert validate_spec({"family": "mlp", "hidden_sizes": (8,)}, task=TABULAR) == {
        "family": "mlp",
        "hidden_sizes": [8],
        "dropout": 0.0,
    }


def test_validate_spec_accepts_an_int_for_a_float():
    spec = validate_spec({"family": "mobilenet_v2", "width_multiplier": 2}, task=IMAGE)
    assert spec["width_multiplier"] == 2.0
    assert isinstance(spec["width_multiplier"], float)


@pytest.mark.parametrize(
    ("spec", "task", "field"),
    [
        ({"family": "transformer"}, None, "family"),
        ({}, None, "family"),
        ("resnet", None, "spec"),
        ({"family": "resnet", "layers": 3}, None, "layers"),
        ({"family": "resnet", "depth": 14}, None, "depth"),
        ({"family": "resnet", "depth": "20"}, None, "depth"),
        ({"family": "resnet", "depth": 20.0}, None, "depth"),
        ({"family": "resnet", "depth": True}, None, "depth"),
        ({"family": "resnet", "width_multiplier": 0}, None, "width_multiplier"),
        ({"family": "resnet", "width_multiplier": float("nan")}, None, "width_multiplier"),
        ({"family": "mlp", "hidden_sizes": 64}, None, "hidden_sizes"),
        ({"family": "mlp", "hidden_sizes": [64, 0]}, None, "hidden_sizes"),
        ({"family": "mlp", "hidden_sizes": [64, 1.5]}, None, "hidden_sizes"),
        ({"family": "mlp", "hidden_sizes": []}, None, "hidden_sizes"),
        ({"family": "mlp", "dropout": 1.0}, None, "dropout"),
        ({"family": "mlp", "dropout": -0.1}, None, "dropout"),
        ({"family": "cnn_small", "channels": [8, 16, 32]}, None, "channels"),
        ({"family": "cnn_small"}, TABULAR, "family"),
        ({"family": "mlp"}, "regression", "task"),
    ],
)
def test_invalid_specs_name_the_field_at_fault(spec, task, field):
    with pytest.raises(SpecError) as error:
        validate_spec(spec, task=task)
    assert error.value.field == field
    assert error.value.message
    assert str(error.value).startswith(f"{field}: ")


@pytest.mark.parametrize(
    ("input_shape", "num_classes", "field"),
    [((1, 8), 10, "input_shape"), ((0,), 10, "input_shape"), ((4,), 1, "num_classes")],
)
def test_build_model_refuses_bad_shapes_and_class_counts(input_shape, num_classes, field):
    with pytest.raises(SpecError) as error:
        build_model({"family": "mlp"}, input_shape=input_shape, num_classes=num_classes)
    assert error.value.field == field


def test_catalog_lists_every_family_with_tasks_and_defaults_as_json():
    entries = {entry["family"]: entry for entry in json.loads(json.dumps(catalog()))}
    assert set(entries) == {"mlp", "cnn_small", "resnet", "mobilenet_v2"}
    assert entries["mlp"]["tasks"] == [IMAGE, TABULAR]
    assert entries["resnet"]["tasks"] == [IMAGE]
    assert entries["resnet"]["params"]["depth"] == {
        "kind": "int",
        "default": 20,
        "description": entries["resnet"]["params"]["depth"]["description"],
        "choices": [8, 20, 56],
    }
    assert entries["mlp"]["params"]["dropout"]["lt"] == 1.0
    assert all(entry["description"] for entry in entries.values())


def test_catalog_defaults_are_valid_specs():
    for entry in catalog():
        defaults = {name: param["default"] for name, param in entry["params"].items()}
        assert validate_spec({"family": entry["family"], **defaults}) == validate_spec({"family": entry["family"]})


def test_torch_modules_import_no_django():
    """Workers and benchmarks use these modules on tensors alone (DESIGN.md)."""
    code = (
        "import sys, apps.registry.architectures, apps.registry.measure, apps.registry.onnx_export; "
        "sys.exit('django' in sys.modules)"
    )
    env = {key: value for key, value in os.environ.items() if key != "DJANGO_SETTINGS_MODULE"}
    assert subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, check=False).returncode == 0
