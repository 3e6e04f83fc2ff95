"""ONNX export: named input and logits, a free batch axis, and a check that refuses files
whose outputs differ from torch's."""

import numpy as np
import onnx
import onnxruntime
import pytest
import torch
from torch import nn

from apps.registry.architectures import build_model
from apps.registry.onnx_export import OnnxMismatch, export_onnx, export_onnx_checked, onnx_max_abs_diff

DIGIT_SHAPE = (1, 8, 8)


@pytest.fixture(autouse=True)
def _seeded():
    torch.manual_seed(0)


def _resnet() -> nn.Module:
    return build_model(
        {"family": "resnet", "depth": 8, "width_multiplier": 0.5}, input_shape=DIGIT_SHAPE, num_classes=10
    )


class BatchSizeBaked(nn.Module):
    """Adds the batch size as a Python number: tracing freezes it at the traced batch of 1,
    so the exported file disagrees with torch on any other batch."""

    def __init__(self):
        super().__init__()
        self.linear = nn.Linear(4, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.linear(x) + float(x.shape[0])


def test_export_names_input_and_logits_with_a_free_batch_axis(tmp_path):
    path = tmp_path / "model.onnx"
    export_onnx(_resnet(), DIGIT_SHAPE, path)

    graph = onnx.load(path).graph
    assert [node.name for node in graph.input] == ["input"]
    assert [node.name for node in graph.output] == ["logits"]
    assert graph.input[0].type.tensor_type.shape.dim[0].dim_param == "batch"
    session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    (logits,) = session.run(["logits"], {"input": np.zeros((5, *DIGIT_SHAPE), dtype=np.float32)})
    assert logits.shape == (5, 10)


def test_export_uses_eval_mode_and_leaves_the_model_as_it_was(tmp_path):
    model = _resnet().train()
    difference = export_onnx_checked(model, DIGIT_SHAPE, tmp_path / "model.onnx")

    assert difference < 1e-4  # BatchNorm with running stats, dropout off: eval mode was exported
    assert model.training
    assert all(p.device.type == "cpu" for p in model.parameters())


def test_max_abs_diff_is_zero_for_the_same_model_and_large_for_another(tmp_path):
    path = tmp_path / "model.onnx"
    model = _resnet()
    export_onnx(model, DIGIT_SHAPE, path)
    sample = torch.rand(4, *DIGIT_SHAPE)

    assert onnx_max_abs_diff(path, model, sample) < 1e-4
    with torch.no_grad():
        model.classifier.bias.add_(1.0)
    assert onnx_max_abs_diff(path, model, sample) == pytest.approx(1.0, abs=1e-4)


@pytest.mark.filterwarnings("ignore::torch.jit.TracerWarning")
def test_a_mismatching_export_raises_and_leaves_no_file(tmp_path):
    path = tmp_path / "model.onnx"

    with pytest.raises(OnnxMismatch, match="differ from torch") as error:
        export_onnx_checked(BatchSizeBaked(), (4,), path, sample=torch.randn(3, 4))

    assert error.value.max_abs_diff == pytest.approx(2.0)  # batch 3 in torch, 1 in the file
    assert error.value.atol == 1e-4
    assert not path.exists()


def test_checked_export_returns_the_difference_on_a_given_sample(tmp_path):
    model = build_model({"family": "mlp"}, input_shape=(13,), num_classes=3)
    difference = export_onnx_checked(model, (13,), tmp_path / "model.onnx", sample=torch.randn(7, 13), atol=1e-5)
    assert 0.0 <= difference <= 1e-5
