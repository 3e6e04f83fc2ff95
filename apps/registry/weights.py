"""Model weights in safetensors, at their real compressed size.

A state dict may hold plain tensors and `QuantizedTensor`s (int8 values with per-channel
float32 scales). Each tensor is stored the smallest of two ways:
- dense, as is (an int8 tensor takes one byte per value, plus its scales);
- sparse: a bitmask of the non-zero positions (one bit per value) plus the non-zero
  values, when that is smaller, so a 90%-sparse fp32 matrix takes about 0.13x its dense bytes.
The layout is in the file's metadata (`__metadata__`, JSON), so a file explains itself.
Zeros come back as +0.0 (a pruned weight may have been -0.0; the value is the same).
Safetensors cannot execute anything; a malformed file raises `WeightsFileError`.
"""

import json
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import save_file

FORMAT = "lepton-weights-1"
SPARSE_MIN_ELEMENTS = 256
_SEP = "::"


class WeightsFileError(ValueError):
    """The file is not readable safetensors, or its layout does not add up."""


@dataclass(frozen=True)
class QuantizedTensor:
    """Symmetric per-channel int8: value = q * scale, the scale broadcast along `axis`."""

    q: torch.Tensor
    scale: torch.Tensor
    axis: int = 0

    @classmethod
    def from_float(cls, weight: torch.Tensor, axis: int = 0) -> "QuantizedTensor":
        dims = [d for d in range(weight.dim()) if d != axis]
        absmax = weight.detach().abs().amax(dim=dims) if dims else weight.detach().abs()
        scale = (absmax / 127.0).clamp(min=torch.finfo(torch.float32).tiny).to(torch.float32)
        q = torch.clamp(torch.round(weight.detach() / _broadcast(scale, weight.dim(), axis)), -127, 127)
        return cls(q.to(torch.int8), scale, axis)

    def dequantize(self) -> torch.Tensor:
        return self.q.to(torch.float32) * _broadcast(self.scale, self.q.dim(), self.axis)

    @property
    def shape(self) -> torch.Size:
        return self.q.shape


def _broadcast(scale: torch.Tensor, dims: int, axis: int) -> torch.Tensor:
    shape = [1] * dims
    shape[axis] = -1
    return scale.reshape(shape)


def _dense_or_sparse(name: str, data: torch.Tensor, tensors: dict, entry: dict) -> None:
    data = data.detach().to("cpu").contiguous()
    flat = data.reshape(-1)
    nonzero = flat != 0
    count = int(nonzero.sum())
    sparse_bytes = (flat.numel() + 7) // 8 + count * data.element_size()
    can_be_sparse = (data.is_floating_point() or data.dtype == torch.int8) and flat.numel() >= SPARSE_MIN_ELEMENTS
    if can_be_sparse and sparse_bytes < flat.numel() * data.element_size():
        mask = np.packbits(nonzero.numpy())
        tensors[f"{name}{_SEP}mask"] = torch.from_numpy(mask)
        tensors[f"{name}{_SEP}values"] = flat[nonzero].clone()
        entry["sparse"] = True
        return
    tensors[name] = data


def encode(state: Mapping[str, "torch.Tensor | QuantizedTensor"]) -> tuple[dict[str, torch.Tensor], dict[str, str]]:
    """The tensors and metadata safetensors will write for this state dict."""
    tensors: dict[str, torch.Tensor] = {}
    layout: dict[str, dict] = {}
    for name, value in state.items():
        if _SEP in name:
            raise ValueError(f"parameter names cannot contain {_SEP!r}: {name}")
        entry: dict = {"shape": list(value.shape)}
        if isinstance(value, QuantizedTensor):
            entry.update(int8=True, axis=value.axis)
            tensors[f"{name}{_SEP}scale"] = value.scale.detach().to("cpu", torch.float32).contiguous()
            _dense_or_sparse(f"{name}{_SEP}q", value.q, tensors, entry)
        else:
            _dense_or_sparse(name, value, tensors, entry)
        layout[name] = entry
    return tensors, {"format": FORMAT, "layout": json.dumps(layout, separators=(",", ":"))}


def save_weights(path: Path | str, state: Mapping[str, "torch.Tensor | QuantizedTensor"]) -> int:
    """Write the state dict; returns the file's size in bytes."""
    tensors, metadata = encode(state)
    save_file(tensors, str(path), metadata=metadata)
    return Path(path).stat().st_size


def _decode(handle, key: str, entry: dict) -> torch.Tensor:
    if not entry.get("sparse"):
        return handle.get_tensor(key)
    mask = handle.get_tensor(f"{key}{_SEP}mask").numpy()
    values = handle.get_tensor(f"{key}{_SEP}values")
    count = int(np.prod(entry["shape"], dtype=np.int64))
    if not (mask.size - 1) * 8 < count <= mask.size * 8:
        raise WeightsFileError(f"{key}: the shape {entry['shape']} does not match its mask")
    positions = torch.from_numpy(np.unpackbits(mask, count=count).astype(bool))
    if int(positions.sum()) != values.numel():
        raise WeightsFileError(f"{key}: the mask and the values disagree")
    dense = torch.zeros(count, dtype=values.dtype)
    dense[positions] = values
    return dense.reshape(entry["shape"])


def _open(path: Path | str):
    try:
        return safe_open(str(path), framework="pt")
    except (SafetensorError, OSError, ValueError) as error:
        raise WeightsFileError(f"not a valid safetensors file ({error})") from None


def _valid_entry(entry) -> bool:
    if not isinstance(entry, dict) or not isinstance(entry.get("shape"), list):
        return False
    if not all(isinstance(d, int) and not isinstance(d, bool) and 0 <= d < 2**40 for d in entry["shape"]):
        return False
    flags_ok = all(isinstance(entry.get(flag, False), bool) for flag in ("int8", "sparse"))
    axis = entry.get("axis", 0)
    return flags_ok and isinstance(axis, int) and 0 <= axis < max(len(entry["shape"]), 1)


def _layout(handle) -> dict | None:
    """The Lepton layout of an open file (None for a plain safetensors file); malformed ones are refused."""
    raw = (handle.metadata() or {}).get("layout")
    if raw is None:
        return None
    try:
        layout = json.loads(raw)
    except (json.JSONDecodeError, TypeError):
        raise WeightsFileError("the weights layout in the metadata is not JSON") from None
    if not isinstance(layout, dict) or not all(isinstance(k, str) and _valid_entry(v) for k, v in layout.items()):
        raise WeightsFileError("the weights layout in the metadata is malformed") from None
    return layout


def load_weights(path: Path | str) -> dict[str, "torch.Tensor | QuantizedTensor"]:
    """Exactly what was saved. A plain safetensors file (no Lepton layout) loads as dense tensors."""
    with _open(path) as handle:
        layout = _layout(handle)
        if layout is None:
            return {key: handle.get_tensor(key) for key in handle.keys()}  # noqa: SIM118 (not a dict)
        state = {}
        try:
            for name, entry in layout.items():
                if entry.get("int8"):
                    q = _decode(handle, f"{name}{_SEP}q", entry)
                    state[name] = QuantizedTensor(q, handle.get_tensor(f"{name}{_SEP}scale"), entry["axis"])
                else:
                    state[name] = _decode(handle, name, entry)
        except (SafetensorError, KeyError, RuntimeError, ValueError, IndexError) as error:
            raise WeightsFileError(f"the weights layout does not match the tensors ({error})") from None
        return state


def dequantized(state: Mapping[str, "torch.Tensor | QuantizedTensor"]) -> dict[str, torch.Tensor]:
    """Plain float tensors (int8 values times their scales) for loading into a float module."""
    return {name: v.dequantize() if isinstance(v, QuantizedTensor) else v for name, v in state.items()}


def header_shapes(path: Path | str) -> dict[str, list[int]]:
    """Parameter name -> shape from the header alone (no tensor data is read)."""
    with _open(path) as handle:
        layout = _layout(handle)
        if layout is not None:
            return {name: list(entry["shape"]) for name, entry in layout.items()}
        return {key: list(handle.get_slice(key).get_shape()) for key in handle.keys()}  # noqa: SIM118
