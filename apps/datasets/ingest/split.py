"""The train/val/test split: stratified per class, seeded, stored with the data.

The split is written into the tensor file (one byte per sample), so a version's split
never changes, whatever numpy version later loads it.
"""

import numpy as np

TRAIN, VAL, TEST = 0, 1, 2
SPLIT_NAMES = ("train", "val", "test")
DEFAULT_FRACTIONS = (0.7, 0.15, 0.15)


def stratified_split(labels: np.ndarray, *, seed: int, fractions=DEFAULT_FRACTIONS) -> np.ndarray:
    """One of TRAIN/VAL/TEST per sample. Each class with 3+ samples puts at least one in each part."""
    rng = np.random.default_rng(seed)
    split = np.full(len(labels), TRAIN, dtype=np.uint8)
    for cls in np.unique(labels):
        members = rng.permutation(np.flatnonzero(labels == cls))
        n = len(members)
        n_val, n_test = round(n * fractions[1]), round(n * fractions[2])
        if n >= 3:
            n_val, n_test = max(1, n_val), max(1, n_test)
        split[members[:n_val]] = VAL
        split[members[n_val : n_val + n_test]] = TEST
    return split


def split_counts(split: np.ndarray) -> dict[str, int]:
    counts = np.bincount(split, minlength=3)
    return {name: int(counts[i]) for i, name in enumerate(SPLIT_NAMES)}
