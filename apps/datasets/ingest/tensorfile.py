"""The tensor file of a dataset version: the safetensors format, written in a stream, read by mmap.

Writing by hand (the format is an 8-byte header length, a JSON header, then raw bytes)
lets a tensor arrive in chunks straight from the parser: memory holds one chunk, not
a second copy of the whole tensor as `safetensors.numpy.save_file` would. Reading
maps the file (`np.memmap`), so loading a version re-parses nothing and copies only
what a batch touches. The files are valid safetensors: any safetensors reader opens them.
"""

import json
import struct
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

_DTYPE_CODES = {
    np.dtype(np.float32): "F32",
    np.dtype(np.float64): "F64",
    np.dtype(np.uint8): "U8",
    np.dtype(np.int8): "I8",
    np.dtype(np.int32): "I32",
    np.dtype(np.int64): "I64",
}
_CODE_DTYPES = {code: dtype for dtype, code in _DTYPE_CODES.items()}


@dataclass(frozen=True)
class TensorPlan:
    """A tensor to write: its dtype and shape up front, its data as one array or chunks along axis 0."""

    dtype: np.dtype
    shape: tuple[int, ...]
    data: np.ndarray | Iterable[np.ndarray]

    @property
    def nbytes(self) -> int:
        return int(np.prod(self.shape, dtype=np.int64)) * np.dtype(self.dtype).itemsize


def _header(tensors: dict[str, TensorPlan], metadata: dict[str, str]) -> bytes:
    entries, offset = {}, 0
    for name, plan in tensors.items():
        entries[name] = {
            "dtype": _DTYPE_CODES[np.dtype(plan.dtype)],
            "shape": list(plan.shape),
            "data_offsets": [offset, offset + plan.nbytes],
        }
        offset += plan.nbytes
    entries["__metadata__"] = metadata
    raw = json.dumps(entries, separators=(",", ":")).encode()
    return raw + b" " * (-len(raw) % 8)  # data starts 8-byte aligned


def write_tensor_file(path: Path, tensors: dict[str, TensorPlan], metadata: dict[str, str] | None = None) -> int:
    """Write the tensors in order; returns the file size. Raises if a tensor's chunks miss its shape."""
    header = _header(tensors, metadata or {})
    with path.open("wb") as out:
        out.write(struct.pack("<Q", len(header)))
        out.write(header)
        for name, plan in tensors.items():
            chunks = [plan.data] if isinstance(plan.data, np.ndarray) else plan.data
            written = 0
            for chunk in chunks:
                array = np.ascontiguousarray(chunk, dtype=plan.dtype)
                array.tofile(out)
                written += array.nbytes
            if written != plan.nbytes:
                raise ValueError(f"tensor {name}: wrote {written} bytes, its shape needs {plan.nbytes}")
    return path.stat().st_size


def read_tensor_file(path: Path) -> tuple[dict[str, np.ndarray], dict[str, str]]:
    """Memory-map every tensor of the file (copy-on-write: writable, never written back)."""
    with path.open("rb") as handle:
        (length,) = struct.unpack("<Q", handle.read(8))
        header = json.loads(handle.read(length))
    metadata = header.pop("__metadata__", {}) or {}
    start = 8 + length
    arrays = {}
    for name, entry in header.items():
        begin, end = entry["data_offsets"]
        shape = tuple(entry["shape"])
        if end == begin:
            arrays[name] = np.zeros(shape, dtype=_CODE_DTYPES[entry["dtype"]])
            continue
        arrays[name] = np.memmap(path, dtype=_CODE_DTYPES[entry["dtype"]], mode="c", offset=start + begin, shape=shape)
    return arrays, metadata
