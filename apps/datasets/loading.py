"""A dataset version's tensor file as torch datasets: (train, val, test), same split every time.

Nothing is parsed again and nothing is copied up front: the file is memory-mapped and a
split is a list of row indices into it, so a batch reads only its own rows. Features
come out preprocessed the way the version says (standardized table rows, images in 0..1).
"""

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import Dataset

from apps.datasets.ingest.split import TEST, TRAIN, VAL
from apps.datasets.ingest.tensorfile import read_tensor_file


def preprocess(features: torch.Tensor, spec: dict) -> torch.Tensor:
    """Raw stored features -> model inputs (float32)."""
    values = features.to(torch.float32)
    if spec["kind"] == "scale":
        return values * spec["factor"]
    if spec["kind"] == "standardize":
        mean = torch.tensor(spec["mean"], dtype=torch.float32)
        std = torch.tensor(spec["std"], dtype=torch.float32)
        return (values - mean) / std
    raise ValueError(f"unknown preprocessing {spec['kind']!r}")


@dataclass
class VersionSplit(Dataset):
    """One split of a version: rows of the memory-mapped tensors, preprocessed on access."""

    features: np.ndarray
    labels: np.ndarray
    indices: np.ndarray
    preprocessing: dict

    def __len__(self) -> int:
        return len(self.indices)

    def __getitem__(self, item):
        rows = self.indices[item]
        x = torch.from_numpy(np.ascontiguousarray(self.features[rows]))
        y = torch.from_numpy(np.asarray(self.labels[rows], dtype=np.int64))
        return preprocess(x, self.preprocessing), y

    def tensors(self) -> tuple[torch.Tensor, torch.Tensor]:
        """The whole split in memory (for small sets and evaluation)."""
        return self[np.arange(len(self))]


def load_splits(path: Path) -> tuple[VersionSplit, VersionSplit, VersionSplit]:
    arrays, metadata = read_tensor_file(Path(path))
    spec = json.loads(metadata["preprocessing"])
    split = np.asarray(arrays["split"])
    return tuple(
        VersionSplit(arrays["features"], arrays["labels"], np.flatnonzero(split == part), spec)
        for part in (TRAIN, VAL, TEST)
    )
