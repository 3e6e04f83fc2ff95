"""Class labels: raw values (numbers or strings) to indices 0..K-1, with the names kept."""

import numpy as np

from apps.datasets.ingest.errors import IngestError


def _integral_text(values: np.ndarray) -> np.ndarray | None:
    """ "3", "3.0", 3.0 -> "3" when every value is an integer; None if any is not."""
    try:
        numbers = values.astype(np.float64)
    except ValueError:
        return None
    if not np.all(np.isfinite(numbers)):
        raise IngestError("labels contain NaN or infinite values")
    if not np.all(numbers == np.round(numbers)):
        raise IngestError("labels are fractional numbers; a class label must be a name or an integer")
    return numbers.astype(np.int64).astype(str)


def _name_key(name: str):
    try:
        return (0, int(name), "")
    except ValueError:
        return (1, 0, name)


def encode_labels(raw, *, min_classes: int = 2) -> tuple[np.ndarray, list[str]]:
    """(class index per sample as int64, class names in index order: integers numerically, else by text)."""
    raw = np.asarray(raw)
    unique, inverse = np.unique(raw, return_inverse=True)
    text = np.char.strip(unique.astype(str))
    canonical = _integral_text(unique) if unique.dtype.kind in "fiu" else _integral_text(text)
    names_of_unique = canonical if canonical is not None else text
    names = sorted(set(names_of_unique.tolist()), key=_name_key)
    if len(names) < min_classes:
        raise IngestError(f"found {len(names)} class(es); classification needs at least {min_classes}")
    index = {name: i for i, name in enumerate(names)}
    remap = np.array([index[name] for name in names_of_unique], dtype=np.int64)
    return remap[inverse.reshape(-1)], names
