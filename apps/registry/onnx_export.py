"""ONNX export of a classifier, checked against torch in onnxruntime before anyone serves it.

The file takes a float32 tensor named `input` of shape (batch, *input_shape) and returns
`logits` of shape (batch, classes); the batch size is free.

We use torch's TorchScript-based exporter (`dynamo=False`): the default dynamo exporter
needs `onnxscript`, which is not a dependency. Opset 17 is what that exporter handles
well and what onnxruntime has long run.
"""

import copy
import warnings
from pathlib import Path

import numpy as np
import onnxruntime
import torch
from torch import nn

from apps.registry.measure import evaluating, model_device

OPSET = 17
INPUT_NAME = "input"
OUTPUT_NAME = "logits"


class OnnxMismatch(RuntimeError):
    """The exported file computes something other than the torch model did."""

    def __init__(self, max_abs_diff: float, atol: float):
        super().__init__(
            f"ONNX outputs differ from torch's by up to {max_abs_diff:.3g} (allowed: {atol:.3g}); "
            "the exported file does not compute what the model does"
        )
        self.max_abs_diff = max_abs_diff
        self.atol = atol


def _cpu_model(model: nn.Module) -> nn.Module:
    """The model on CPU without moving the caller's copy off its GPU."""
    return model if model_device(model).type == "cpu" else copy.deepcopy(model).cpu()


def export_onnx(model: nn.Module, input_shape: tuple[int, ...], path: Path | str) -> None:
    """Write `model` (traced in eval mode on CPU) to `path` with a dynamic batch axis."""
    cpu_model = _cpu_model(model)
    dummy = torch.zeros(1, *input_shape)
    with evaluating(cpu_model), torch.no_grad(), warnings.catch_warnings():
        # the legacy exporter is chosen on purpose (see the module docstring); its
        # deprecation notice would only repeat that in every job log
        warnings.filterwarnings("ignore", category=DeprecationWarning)
        torch.onnx.export(
            cpu_model,
            (dummy,),
            str(path),
            dynamo=False,
            opset_version=OPSET,
            input_names=[INPUT_NAME],
            output_names=[OUTPUT_NAME],
            dynamic_axes={INPUT_NAME: {0: "batch"}, OUTPUT_NAME: {0: "batch"}},
        )


def onnx_max_abs_diff(path: Path | str, model: nn.Module, sample: torch.Tensor) -> float:
    """Largest absolute difference between the file's outputs in onnxruntime (CPU) and the
    torch model's (in eval mode) on `sample`."""
    session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    inputs = sample.detach().cpu().to(torch.float32)
    (onnx_logits,) = session.run([OUTPUT_NAME], {INPUT_NAME: inputs.numpy()})
    with evaluating(model), torch.inference_mode():
        torch_logits = model(inputs.to(model_device(model))).cpu().numpy()
    if onnx_logits.shape != torch_logits.shape:
        return float("inf")
    return float(np.max(np.abs(onnx_logits - torch_logits), initial=0.0))


def export_onnx_checked(
    model: nn.Module,
    input_shape: tuple[int, ...],
    path: Path | str,
    *,
    atol: float = 1e-4,
    sample: torch.Tensor | None = None,
) -> float:
    """Export, then compare with torch on `sample` (default: a seeded random batch of 2, so
    the free batch axis is exercised too). Returns the max abs difference; raises
    OnnxMismatch beyond `atol`, after deleting the file so no one serves it."""
    export_onnx(model, input_shape, path)
    if sample is None:
        sample = torch.randn(2, *input_shape, generator=torch.Generator().manual_seed(0))
    difference = onnx_max_abs_diff(path, model, sample)
    if not difference <= atol:  # NaN fails too
        Path(path).unlink(missing_ok=True)
        raise OnnxMismatch(difference, atol)
    return difference
