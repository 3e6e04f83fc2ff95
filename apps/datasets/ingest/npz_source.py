"""NPZ with arrays `X` (samples first) and `y` (one label per sample).

An .npz is a zip, so it goes through the same checks as any archive, and its two
members are read with `allow_pickle=False` through the decompression budget: object
arrays (which would unpickle) are refused, and a lying size cannot inflate memory.
"""

import io
from collections.abc import Callable
from pathlib import Path

import numpy as np

from apps.datasets.ingest.errors import IngestError
from apps.datasets.ingest.limits import DEFAULT_LIMITS, IngestLimits
from apps.datasets.ingest.safezip import DecompressionBudget, open_checked
from apps.datasets.ingest.source import IMAGE, TABULAR, SourceData


def _read_member(archive, infos, name: str, budget: DecompressionBudget) -> np.ndarray:
    info = next((i for i in infos if i.filename == f"{name}.npy"), None)
    if info is None:
        found = ", ".join(sorted(i.filename.removesuffix(".npy") for i in infos)) or "none"
        raise IngestError(f"the NPZ needs arrays 'X' and 'y'; it has: {found}")
    try:
        return np.load(io.BytesIO(budget.read_member(archive, info)), allow_pickle=False)
    except ValueError as error:
        if "allow_pickle" in str(error) or "Object arrays" in str(error):
            raise IngestError(f"array '{name}' holds Python objects; object arrays are refused") from None
        raise IngestError(f"array '{name}' is not a valid .npy array ({error})") from None


def _features(x: np.ndarray, task_kind: str) -> tuple[np.ndarray, tuple[int, ...]]:
    if x.dtype.kind not in "biuf":
        raise IngestError(f"X must be numeric; its dtype is {x.dtype}")
    if task_kind == TABULAR:
        if x.ndim != 2:
            raise IngestError(f"X must be 2-D (samples x features) for tabular data; its shape is {x.shape}")
        values = x.astype(np.float32)
        bad = ~np.isfinite(values)
        if bad.any():
            row, col = (int(v) for v in np.argwhere(bad)[0])
            raise IngestError(f"X[{row}, {col}] is NaN or infinite ({int(bad.sum())} such values)")
        return values, (x.shape[1],)
    if x.ndim == 3:
        x = x[:, None, :, :]
    if x.ndim != 4 or x.shape[1] not in (1, 3):
        raise IngestError(f"X must be N x H x W or N x C x H x W (C = 1 or 3) for images; its shape is {x.shape}")
    if x.dtype != np.uint8:
        if x.min() < 0 or x.max() > 255 or not np.all(np.isfinite(x)):
            raise IngestError("image X must be uint8, or numbers between 0 and 255")
        x = np.rint(x).astype(np.uint8)
    return np.ascontiguousarray(x), tuple(x.shape[1:])


def read_npz(
    path: Path,
    *,
    task_kind: str,
    limits: IngestLimits = DEFAULT_LIMITS,
    progress: Callable[[float, str], None] = lambda fraction, message: None,
) -> SourceData:
    archive, infos = open_checked(path, limits)
    with archive:
        budget = DecompressionBudget(limits)
        x = _read_member(archive, infos, "X", budget)
        progress(0.5, "read X")
        y = _read_member(archive, infos, "y", budget)
    if y.ndim != 1 or len(y) != len(x):
        raise IngestError(f"y must be 1-D with one label per sample; X has {len(x)} samples, y has shape {y.shape}")
    if y.dtype.kind not in "biufU":
        raise IngestError(f"y must hold integers or strings; its dtype is {y.dtype}")
    features, shape = _features(x, task_kind)
    progress(1.0, f"read {len(x):,} samples")
    names = [f"x{i}" for i in range(shape[0])] if task_kind == TABULAR else None
    return SourceData(
        kind=task_kind if task_kind == IMAGE else TABULAR,
        chunks=[features],
        labels=y,
        sample_shape=shape,
        feature_names=names,
    )
