"""Quantization steps (plain torch): int8 weight-only, int8 dynamic (torchao), fp16, bf16.

- int8 weight-only: every Linear and Conv2d weight becomes int8 with a float32 scale per
  output channel (symmetric, absmax / 127). Only the stored file is int8 (about a quarter of
  the size): the module's weights are the dequantized values (q x scale) in float32, so it
  computes in fp32 on every device, as fast as the original and with the rounding error of
  int8 weights, nothing faster.
- int8 dynamic: torchao's Int8DynamicActivationInt8WeightConfig on Linear layers: weights int8
  per channel, activations quantized per token at run time.
- fp16 / bf16: weights stored in half precision and the module runs in it (inputs are cast
  on the way in and logits back to float32 on the way out). On CPUs without native bf16 this
  is usually slower than fp32: the measured latency says so.
"""

import logging
import warnings

import torch
from torch import nn

from apps.registry.weights import QuantizedTensor

SCHEMES = ("int8_weight_only", "int8_dynamic", "fp16", "bf16")
HALF = {"fp16": torch.float16, "bf16": torch.bfloat16}


def _torchao():
    """torchao, imported quietly (it logs about optional GPU kernels it cannot load on CPU)."""
    logging.getLogger("torchao").setLevel(logging.ERROR)
    previous = logging.root.manager.disable
    logging.disable(logging.WARNING)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            import torchao.quantization as quantization
    finally:
        logging.disable(previous)
    return quantization


class CastInputs(nn.Module):
    """Runs `inner` in a lower precision: casts the input in and the logits back to float32."""

    def __init__(self, inner: nn.Module, dtype: torch.dtype):
        super().__init__()
        self.inner, self.dtype = inner, dtype

    def forward(self, x):
        return self.inner(x.to(self.dtype)).to(torch.float32)


def quantizable_weights(module: nn.Module, kinds=(nn.Linear, nn.Conv2d)) -> list[str]:
    return [f"{name}.weight" for name, child in module.named_modules() if isinstance(child, kinds)]


def int8_weight_only(module: nn.Module) -> tuple[nn.Module, dict]:
    """(module computing with the int8 values, the int8 tensors to store in place of the weights)."""
    stored = {}
    params = dict(module.named_parameters())
    with torch.no_grad():
        for name in quantizable_weights(module):
            quantized = QuantizedTensor.from_float(params[name].detach().cpu(), axis=0)
            params[name].copy_(quantized.dequantize().to(params[name].dtype))
            stored[name] = quantized
    return module, stored


def int8_dynamic(module: nn.Module) -> tuple[nn.Module, dict]:
    quantization = _torchao()
    module = module.cpu().eval()
    quantization.quantize_(module, quantization.Int8DynamicActivationInt8WeightConfig())
    stored = {}
    for name, value in module.state_dict().items():
        if hasattr(value, "qdata") and hasattr(value, "scale"):
            stored[name] = QuantizedTensor(value.qdata.detach().clone(), value.scale.detach().reshape(-1).clone(), 0)
    return module, stored


def half(module: nn.Module, scheme: str) -> tuple[nn.Module, dict]:
    module = module.to(HALF[scheme])
    return CastInputs(module, HALF[scheme]), {}


def quantize(module: nn.Module, scheme: str) -> tuple[nn.Module, dict]:
    """Apply `scheme`; returns the module to run and the quantized tensors that replace stored weights."""
    if scheme == "int8_weight_only":
        return int8_weight_only(module)
    if scheme == "int8_dynamic":
        return int8_dynamic(module)
    return half(module, scheme)


def state_to_store(module: nn.Module, quantized: dict) -> dict:
    """The state dict to save: plain tensors, with int8 tensors in place of quantized weights."""
    inner = module.inner if isinstance(module, CastInputs) else module
    return {
        name: quantized[name] if name in quantized else value.detach().clone()
        for name, value in inner.state_dict().items()
    }


def rebuild(module: nn.Module, transform: dict, stored: dict) -> nn.Module:
    """Re-apply a quantization to a freshly loaded module so it computes exactly what was saved."""
    scheme = transform["scheme"]
    if scheme == "int8_weight_only":
        return module  # the loaded weights are already q x scale
    if scheme == "int8_dynamic":
        quantization = _torchao()
        quantization.quantize_(module, quantization.Int8DynamicActivationInt8WeightConfig())
        for name, value in module.state_dict().items():
            if name in stored and hasattr(value, "qdata"):
                value.qdata.copy_(stored[name].q)
                value.scale.copy_(stored[name].scale.reshape(value.scale.shape))
        return module
    return half(module, scheme)[0]
