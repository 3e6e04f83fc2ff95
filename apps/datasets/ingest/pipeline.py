"""From a parsed source to a version's tensor file, statistics and preview.

The file holds three tensors: `features` (float32 rows, or uint8 images as C x H x W),
`labels` (int64 class indices) and `split` (uint8: 0 train, 1 val, 2 test), plus JSON
metadata (class names, feature names, preprocessing), so it describes itself.
Preprocessing is what models trained on the version expect: tabular features are
standardized with the train split's mean and std; images are scaled to 0..1.
"""

import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from apps.core.digests import file_sha256
from apps.datasets.ingest.errors import IngestError
from apps.datasets.ingest.labels import encode_labels
from apps.datasets.ingest.source import IMAGE, SourceData
from apps.datasets.ingest.split import TRAIN, split_counts, stratified_split
from apps.datasets.ingest.tensorfile import TensorPlan, write_tensor_file

FILE_FORMAT = "lepton-dataset-1"
PREVIEW_ROWS = 10
PREVIEW_PER_CLASS = 8
PREVIEW_MAX_CLASSES = 20


@dataclass
class IngestResult:
    sample_count: int
    sample_shape: list[int]
    feature_names: list[str]
    class_names: list[str]
    class_counts: list[int]
    split_counts: dict[str, int]
    preprocessing: dict
    preview: dict
    bytes: int
    sha256: str


def _labels(source: SourceData) -> tuple[np.ndarray, list[str]]:
    if source.class_names is None:
        return encode_labels(source.labels)
    labels = np.asarray(source.labels, dtype=np.int64)
    if labels.min() < 0 or labels.max() >= len(source.class_names):
        raise IngestError("labels do not match the class names")
    return labels, list(source.class_names)


def _tabular_stats(chunks: list[np.ndarray], split: np.ndarray) -> tuple[list[dict], dict]:
    """Per-feature statistics of all rows, and the train split's mean/std for standardizing."""
    width = chunks[0].shape[1]
    total, total_sq, train, train_sq = (np.zeros(width) for _ in range(4))
    low, high = np.full(width, np.inf), np.full(width, -np.inf)
    start = 0
    for chunk in chunks:
        values = chunk.astype(np.float64)
        is_train = split[start : start + len(chunk)] == TRAIN
        total += values.sum(0)
        total_sq += np.square(values).sum(0)
        train += values[is_train].sum(0)
        train_sq += np.square(values[is_train]).sum(0)
        low, high = np.minimum(low, values.min(0)), np.maximum(high, values.max(0))
        start += len(chunk)
    n, n_train = len(split), int((split == TRAIN).sum())
    mean, train_mean = total / n, train / n_train
    std = np.sqrt(np.maximum(total_sq / n - mean**2, 0))
    train_std = np.sqrt(np.maximum(train_sq / n_train - train_mean**2, 0))
    stats = [
        {"min": float(low[i]), "max": float(high[i]), "mean": float(mean[i]), "std": float(std[i]), "missing": 0}
        for i in range(width)
    ]
    standardize = {
        "kind": "standardize",
        "mean": train_mean.tolist(),
        "std": np.where(train_std > 0, train_std, 1.0).tolist(),
    }
    return stats, standardize


def _image_grid(images: np.ndarray, labels: np.ndarray, class_names: list[str], path: Path) -> dict:
    """A PNG with a row of sample images per class; returns which samples it shows."""
    shown = {}
    for cls in range(min(len(class_names), PREVIEW_MAX_CLASSES)):
        shown[class_names[cls]] = np.flatnonzero(labels == cls)[:PREVIEW_PER_CLASS].tolist()
    _, channels, height, width = images.shape
    scale = max(1, 48 // max(height, width))
    cell_h, cell_w, gap = height * scale, width * scale, 2
    grid = Image.new("RGB", (PREVIEW_PER_CLASS * (cell_w + gap), max(1, len(shown)) * (cell_h + gap)), "white")
    for row, indices in enumerate(shown.values()):
        for col, index in enumerate(indices):
            pixels = images[index]
            tile = Image.fromarray(pixels[0] if channels == 1 else pixels.transpose(1, 2, 0))
            tile = tile.resize((cell_w, cell_h), Image.Resampling.NEAREST).convert("RGB")
            grid.paste(tile, (col * (cell_w + gap), row * (cell_h + gap)))
    grid.save(path, format="PNG")
    return {"classes": list(shown), "samples": shown, "cell": [cell_h, cell_w]}


def build_version_file(
    source: SourceData,
    *,
    out_path: Path,
    preview_path: Path,
    seed: int,
    progress: Callable[[float, str], None] = lambda fraction, message: None,
) -> IngestResult:
    """Write the version's tensor file (and, for images, the preview grid) from a parsed source."""
    labels, class_names = _labels(source)
    split = stratified_split(labels, seed=seed)
    counts = split_counts(split)
    if min(counts.values()) == 0:
        raise IngestError(f"too few samples to split into train/val/test ({counts}); give each class 3 or more")
    class_counts = np.bincount(labels, minlength=len(class_names)).tolist()
    if source.kind == IMAGE:
        preprocessing, stats = {"kind": "scale", "factor": 1 / 255}, None
    else:
        stats, preprocessing = _tabular_stats(source.chunks, split)
    progress(0.2, "computed statistics")
    shape = (source.sample_count, *source.sample_shape)
    dtype = np.uint8 if source.kind == IMAGE else np.float32
    metadata = {
        "format": FILE_FORMAT,
        "kind": source.kind,
        "class_names": json.dumps(class_names),
        "feature_names": json.dumps(source.feature_names or []),
        "preprocessing": json.dumps(preprocessing),
    }
    tensors = {
        "features": TensorPlan(np.dtype(dtype), shape, source.chunks),
        "labels": TensorPlan(np.dtype(np.int64), (len(labels),), labels),
        "split": TensorPlan(np.dtype(np.uint8), (len(split),), split),
    }
    size = write_tensor_file(out_path, tensors, metadata)
    progress(0.8, "wrote the tensor file")
    preview = {"class_counts": dict(zip(class_names, class_counts, strict=True))}
    if source.kind == IMAGE:
        preview["grid"] = _image_grid(source.chunks[0], labels, class_names, preview_path)
    else:
        preview["features"] = [{"name": n, **s} for n, s in zip(source.feature_names, stats, strict=True)]
        first = source.chunks[0][:PREVIEW_ROWS]
        preview["rows"] = [
            {"features": [float(v) for v in row], "label": class_names[labels[i]]} for i, row in enumerate(first)
        ]
    return IngestResult(
        sample_count=shape[0],
        sample_shape=list(source.sample_shape),
        feature_names=source.feature_names or [],
        class_names=class_names,
        class_counts=class_counts,
        split_counts=counts,
        preprocessing=preprocessing,
        preview=preview,
        bytes=size,
        sha256=file_sha256(out_path),
    )
